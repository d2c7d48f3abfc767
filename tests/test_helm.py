"""The Helm chart, rendered and checked without a cluster or a helm binary.

``helm-python-sdk`` renders and lints with Helm's own Go library (bundled in its wheel);
``kubernetes-validate`` checks every manifest against the bundled Kubernetes OpenAPI schemas in
strict mode (unknown fields are errors). The container arguments are parsed with dranspose's own
command line, and the ``helm test`` script runs against a real pipeline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dranspose.cli.main import build_parser
from dranspose.core.parameters import read_parameter_file

helm = pytest.importorskip(
    "helm_python",
    reason="helm-python-sdk not installed (pip install -e '.[test]'; it ships "
    "wheels for Linux/macOS x86_64+arm64 and Windows x86_64)",
)
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate not installed (pip install -e '.[test]')"
)

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "dranspose"
TWO_STREAMS = ROOT / "helm" / "examples" / "two-streams.yaml"
KUBERNETES_VERSION = "1.30.0"
EXAMPLES = {"default": {}, "two-streams": yaml.safe_load(TWO_STREAMS.read_text())}


def render(values: dict[str, Any], release: str = "dranspose") -> list[dict[str, Any]]:
    """Validate values against values.schema.json and render every manifest."""
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)
        rendered = chart.render(values, name=release, namespace="beamline")
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith(".txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def render_error(values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as exc:
        render(values)
    return str(exc.value)


def find(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} rendered"
    return matches[0]


def container(doc: dict) -> dict:
    spec = doc["spec"]["template"]["spec"] if doc["kind"] != "Pod" else doc["spec"]
    (only,) = spec["containers"]
    return only


def env(cont: dict) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in cont.get("env", [])}


def cli_args(cont: dict) -> Any:
    """The container's arguments as dranspose parses them (downward-API variables filled in)."""
    args = [
        a.replace("$(POD_IP)", "10.1.2.3").replace("$(POD_NAME)", "pod-0") for a in cont["args"]
    ]
    return build_parser().parse_args(args)


def dranspose_containers(docs: list[dict]) -> list[tuple[dict, dict]]:
    return [
        (d, container(d))
        for d in docs
        if d["kind"] == "Deployment"
        and d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] != "redis"
    ]


# -- the whole chart --------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_chart_lints_without_warnings(example):
    report = helm.lint(str(CHART), EXAMPLES[example], strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_manifest_is_valid_kubernetes(example):
    docs = render(EXAMPLES[example])
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_schema_validation_catches_a_wrong_manifest():
    """The validation above can fail: a misspelt field in a Deployment is rejected."""
    deployment = find(render({}), "Deployment", "dranspose-worker")
    deployment["spec"]["template"]["spec"]["containers"][0]["arg"] = ["worker"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("example", EXAMPLES)
def test_container_args_are_valid_dranspose_command_lines(example):
    docs = render(EXAMPLES[example])
    containers = dranspose_containers(docs)
    assert containers
    for doc, cont in containers:
        parsed = cli_args(cont)
        assert parsed.command == doc["metadata"]["labels"]["app.kubernetes.io/component"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_service_reaches_a_declared_port(example):
    docs = render(EXAMPLES[example])
    pods = [d for d in docs if d["kind"] == "Deployment"]
    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        targets = [
            p
            for p in pods
            if selector.items() <= p["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(targets) == 1, service["metadata"]["name"]
        ports = {p["name"] for p in container(targets[0])["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)


# -- the default values: the tutorial demo ------------------------------------------------------


def test_default_values_deploy_every_component():
    docs = render({})
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == sorted(
        [
            ("Deployment", "dranspose-controller"),
            ("Service", "dranspose-controller"),
            ("Deployment", "dranspose-redis"),
            ("Service", "dranspose-redis"),
            ("Deployment", "dranspose-ingester-xrd"),
            ("Deployment", "dranspose-worker"),
            ("Deployment", "dranspose-reducer"),
            ("Service", "dranspose-reducer"),
            ("Deployment", "dranspose-source-xrd"),
            ("Service", "dranspose-source-xrd"),
            ("Pod", "dranspose-test-connection"),
        ]
    )
    redis_url = env(container(find(docs, "Deployment", "dranspose-worker")))["REDIS_URL"]
    redis_port = find(docs, "Service", "dranspose-redis")["spec"]["ports"][0]["port"]
    assert redis_url == f"redis://dranspose-redis:{redis_port}/0"


def test_ingester_reads_the_chart_source_through_its_service():
    docs = render({})
    ingester = cli_args(container(find(docs, "Deployment", "dranspose-ingester-xrd")))
    source = find(docs, "Service", "dranspose-source-xrd")
    assert ingester.upstream == [f"tcp://dranspose-source-xrd:{source['spec']['ports'][0]['port']}"]
    source_args = cli_args(container(find(docs, "Deployment", "dranspose-source-xrd")))
    assert source_args.bind == f"tcp://*:{source['spec']['ports'][0]['port']}"


def test_all_pods_run_as_the_image_user_without_privileges():
    for doc in render({}):
        if doc["kind"] not in ("Deployment", "Pod"):
            continue
        spec = doc["spec"]["template"]["spec"] if doc["kind"] == "Deployment" else doc["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        cont = container(doc)
        assert cont["securityContext"]["allowPrivilegeEscalation"] is False
        assert cont["securityContext"]["capabilities"]["drop"] == ["ALL"]
    worker = find(render({}), "Deployment", "dranspose-worker")
    assert worker["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


@pytest.mark.parametrize("role", ["controller", "reducer"])
def test_http_probes_ask_healthz_on_the_served_port(role):
    cont = container(find(render({}), "Deployment", f"dranspose-{role}"))
    port = {p["name"]: p["containerPort"] for p in cont["ports"]}["http"]
    assert cli_args(cont).port == port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert cont[probe]["httpGet"] == {"path": "/healthz", "port": "http"}


@pytest.mark.parametrize("role", ["worker", "reducer"])
def test_data_socket_is_advertised_at_the_pod_ip_and_declared(role):
    cont = container(find(render({}), "Deployment", f"dranspose-{role}"))
    assert "--advertise=$(POD_IP)" in cont["args"]
    assert env(cont)["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    declared = {p["name"]: p["containerPort"] for p in cont["ports"]}["data"]
    assert cli_args(cont).data_port == declared


def test_a_controller_pod_is_replaced_never_doubled_and_its_scan_outlives_it():
    """Kubernetes reschedules the controller pod (drain, eviction, upgrade): the old pod goes
    before the new one starts (``Recreate``; a rolling update would run two, and the second
    would wait for the lock), the new one waits for the lock of a crashed one, and every
    component keeps its part of the running scan longer than that takes."""
    docs = render({})
    controller = find(docs, "Deployment", "dranspose-controller")
    assert controller["spec"]["strategy"] == {"type": "Recreate"}
    assert controller["spec"]["replicas"] == 1
    takeover = cli_args(container(controller)).takeover_wait
    assert takeover >= 10  # the 5 s lock of a crashed controller expires meanwhile
    for role in ("ingester-xrd", "worker", "reducer"):
        cont = container(find(docs, "Deployment", f"dranspose-{role}"))
        assert float(env(cont)["DRANSPOSE_CONTROLLER_GRACE"]) == 60.0 > takeover
        assert cli_args(cont).controller_grace == 60.0  # the option the variable sets
    worker = container(find(render({"controllerGrace": 120}), "Deployment", "dranspose-worker"))
    assert env(worker)["DRANSPOSE_CONTROLLER_GRACE"] == "120"
    assert "controllerGrace" in render_error({"controllerGrace": 0})


# -- the two-stream example -----------------------------------------------------------------


def test_two_streams_get_one_ingester_each():
    values = EXAMPLES["two-streams"]
    docs = render(values, release="xrd")
    ingesters = [
        d
        for d in docs
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == "ingester"
    ]
    seen = {}
    for doc in ingesters:
        args = cli_args(container(doc))
        seen[doc["metadata"]["name"]] = (args.stream, args.upstream, args.protocol)
    assert seen == {
        f"xrd-dranspose-ingester-{i['name']}": ([i["stream"]], [i["upstream"]], i["protocol"])
        for i in values["ingesters"]
    }
    assert any("_" in stream[0] for stream, _, _ in seen.values())


# Device ports whose transport is fixed by the device: the PandA's position-capture data port
# is a raw TCP byte stream, not ZMQ.
_KNOWN_DEVICE_PORTS = {8889: "tcp"}
_SCHEMES = {
    "pull": ("tcp", "ipc"),
    "sub": ("tcp", "ipc"),
    "tcp": ("tcp",),
    "http": ("http", "https"),
}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_each_ingester_protocol_matches_its_upstream(example):
    """An ingester's protocol decides its transport (ZMQ PULL/SUB, raw TCP, HTTP); the upstream
    URL must be one that transport reads, and a device port with a fixed transport must get a
    protocol spoken over it."""
    from urllib.parse import urlsplit

    from dranspose.protocols.registry import get_protocol

    docs = render(EXAMPLES[example])
    ingesters = [
        d
        for d in docs
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == "ingester"
    ]
    assert ingesters
    for doc in ingesters:
        args = cli_args(container(doc))
        transport = get_protocol(args.protocol).socket
        for upstream in args.upstream:
            url = urlsplit(upstream)
            assert url.scheme in _SCHEMES[transport], (
                f"{doc['metadata']['name']}: protocol {args.protocol} reads {transport}, "
                f"upstream {upstream}"
            )
            fixed = _KNOWN_DEVICE_PORTS.get(url.port or 0)
            assert fixed in (None, transport), (
                f"{doc['metadata']['name']}: port {url.port} is a {fixed} port, "
                f"protocol {args.protocol} reads {transport}"
            )


def test_two_streams_use_the_external_redis_and_payload_image():
    values = EXAMPLES["two-streams"]
    docs = render(values, release="xrd")
    assert not [d for d in docs if "redis" in d["metadata"]["name"]]
    image = f"{values['image']['repository']}:{values['image']['tag']}"
    for _, cont in dranspose_containers(docs):
        assert env(cont)["REDIS_URL"] == values["redis"]["url"]
        assert cont["image"] == image
        assert cli_args(cont).prefix == values["prefix"]


def test_two_streams_workers_have_replicas_class_tags_resources_and_placement():
    values = EXAMPLES["two-streams"]
    worker = find(render(values, release="xrd"), "Deployment", "xrd-dranspose-worker")
    args = cli_args(container(worker))
    assert worker["spec"]["replicas"] == values["workers"]["replicas"]
    assert args.cls == values["workers"]["class"]
    assert args.tags.split(",") == values["workers"]["tags"]
    assert container(worker)["resources"] == values["workers"]["resources"]
    assert worker["spec"]["template"]["spec"]["nodeSelector"] == values["workers"]["nodeSelector"]
    reducer = cli_args(
        container(find(render(values, release="xrd"), "Deployment", "xrd-dranspose-reducer"))
    )
    assert reducer.worker_class == values["workers"]["class"]


def test_two_streams_expose_controller_and_reducer_through_ingresses():
    values = EXAMPLES["two-streams"]
    docs = render(values, release="xrd")
    for role in ("controller", "reducer"):
        ingress = find(docs, "Ingress", f"xrd-dranspose-{role}")
        (rule,) = ingress["spec"]["rules"]
        assert rule["host"] == values[role]["ingress"]["host"]
        backend = rule["http"]["paths"][0]["backend"]["service"]
        service = find(docs, "Service", backend["name"])
        assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_parameter_configmap_is_what_the_controller_reads(tmp_path):
    values = {
        **EXAMPLES["two-streams"],
        "parameters": {"roi_rows": "3", "scale": 0.5, "integrate": True},
    }
    docs = render(values, release="xrd")
    configmap = find(docs, "ConfigMap", "xrd-dranspose-parameters")
    controller = find(docs, "Deployment", "xrd-dranspose-controller")
    cont = container(controller)
    (mount,) = cont["volumeMounts"]
    (volume,) = controller["spec"]["template"]["spec"]["volumes"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    (key,) = configmap["data"]
    assert cli_args(cont).parameters == f"{mount['mountPath']}/{key}"
    mounted = tmp_path / key  # the file as the controller finds it in the pod
    mounted.write_text(configmap["data"][key])
    assert read_parameter_file(mounted) == {"roi_rows": b"3", "scale": b"0.5", "integrate": b"true"}


def test_no_parameters_means_no_configmap_and_no_option():
    docs = render({})
    assert not [d for d in docs if d["kind"] == "ConfigMap"]
    assert cli_args(container(find(docs, "Deployment", "dranspose-controller"))).parameters is None


# -- mistakes in values are refused with a message that names them -----------------------------


def test_kubernetes_name_with_underscore_is_refused():
    values = {"ingesters": [{"name": "eiger_4m", "stream": "eiger_4m", "upstream": "tcp://d:1"}]}
    message = render_error(values)
    assert "ingesters" in message and "eiger_4m" in message


def test_misspelt_ingester_key_is_refused():
    message = render_error(
        {"ingesters": [{"name": "eiger", "stream": "eiger", "upsteam": "tcp://d:1"}]}
    )
    assert "upsteam" in message


def test_two_ingesters_for_one_stream_are_refused():
    message = render_error(
        {
            "sources": [],
            "ingesters": [
                {"name": "a", "stream": "eiger", "upstream": "tcp://d:1"},
                {"name": "b", "stream": "eiger", "upstream": "tcp://d:2"},
            ],
        }
    )
    assert 'ingesters[1]: stream "eiger" already has an ingester (ingesters[0])' in message


def test_ingester_without_upstream_is_refused():
    message = render_error({"ingesters": [{"name": "eiger", "stream": "eiger"}]})
    assert "ingesters[0] (eiger): set upstream" in message


def test_ingester_of_an_unknown_source_is_refused():
    message = render_error({"ingesters": [{"name": "eiger", "stream": "eiger", "source": "nope"}]})
    assert 'source "nope" is not in sources' in message


def test_external_redis_without_url_is_refused():
    message = render_error({"redis": {"enabled": False}})
    assert "redis.enabled is false: set redis.url" in message


def test_ingress_without_host_is_refused():
    message = render_error({"reducer": {"ingress": {"enabled": True}}})
    assert "reducer.ingress.enabled: set reducer.ingress.host" in message


def test_external_redis_url_from_a_secret():
    docs = render({"redis": {"enabled": False, "existingSecret": "redis-auth"}})
    for _, cont in dranspose_containers(docs):
        if cont["args"][0] == "source":  # a synthetic detector needs no Redis
            continue
        assert env(cont)["REDIS_URL"] == {"secretKeyRef": {"name": "redis-auth", "key": "url"}}


# -- helm test ------------------------------------------------------------------------------


def connection_test(values: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    pod = find(render(values), "Pod", "dranspose-test-connection")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    cont = container(pod)
    return cont["command"] + cont["args"], {
        k: v for k, v in env(cont).items() if isinstance(v, str)
    }


def test_helm_test_pod_expects_what_the_values_deploy():
    _, variables = connection_test(EXAMPLES["two-streams"])
    assert variables["EXPECT_WORKERS"] == "8"
    assert variables["EXPECT_STREAMS"] == "eiger_4m,panda_pcap"
    assert variables["CONTROLLER_URL"] == "http://dranspose-controller:5000"
    assert variables["REDUCER_URL"] == "http://dranspose-reducer:5001"


@pytest.fixture
def pipeline(payload_dir):
    """The tutorial pipeline as real processes, as the default values deploy it."""
    from dranspose.io.local_redis import PrivateRedis
    from tests.ports import free_port
    from tests.support.processes import Processes, wait_until

    with PrivateRedis() as redis_server:
        procs = Processes(payload_dir, redis_server.url)
        api, results = free_port(), free_port()
        try:
            procs.start("controller", "--host", "127.0.0.1", "--port", str(api))
            for i in range(2):
                procs.start("worker", "--class", "src.worker:TestWorker", "--name", f"w{i}")
            procs.start("reducer", "--class", "src.reducer:TestReducer", "--port", str(results))
            procs.start(
                "ingester", "--stream", "xrd", "--upstream", f"tcp://127.0.0.1:{free_port()}"
            )
            import httpx

            wait_until(
                lambda: httpx.get(f"http://127.0.0.1:{results}/api/v1/status").status_code == 200,
                60,
                "reducer API",
            )
            yield f"http://127.0.0.1:{api}", f"http://127.0.0.1:{results}"
        finally:
            procs.stop_all()


def run_connection_test(
    command: list[str], variables: dict[str, str], controller: str, reducer: str, **overrides: str
) -> subprocess.CompletedProcess:
    assert command[:2] == ["python", "-c"]
    environment = {
        **os.environ,
        **variables,
        "CONTROLLER_URL": controller,
        "REDUCER_URL": reducer,
        **overrides,
    }
    return subprocess.run(
        [sys.executable, *command[1:]], env=environment, capture_output=True, text=True, timeout=180
    )


def test_helm_test_script_passes_against_the_deployed_components(pipeline):
    controller, reducer = pipeline
    command, variables = connection_test({})
    proc = run_connection_test(command, variables, controller, reducer, TIMEOUT_SECONDS="60")
    assert proc.returncode == 0, proc.stderr
    assert "ok: controller and reducer healthy; 2 workers" in proc.stdout


def test_helm_test_script_names_what_is_missing(pipeline):
    controller, reducer = pipeline
    command, variables = connection_test({})
    proc = run_connection_test(
        command,
        variables,
        controller,
        reducer,
        TIMEOUT_SECONDS="2",
        EXPECT_WORKERS="3",
        EXPECT_STREAMS="xrd,pcap",
    )
    assert proc.returncode == 1
    assert "2 of 3 workers registered" in proc.stderr
    assert "no ingester registered for pcap" in proc.stderr


# -- the rendered commands form a working pipeline -----------------------------------------------


def test_default_values_commands_run_a_scan(payload_dir, tmp_path):
    """Every pod's command line of the default values, run as local processes, completes a scan.

    Only what Kubernetes would provide is filled in: the pod IP (127.0.0.1 here), Service names
    (127.0.0.1), Redis; ports are moved to free ones because all pods share this one host.
    """
    import h5py
    import httpx

    from dranspose.core.triggermap import TriggerMap
    from dranspose.io.local_redis import PrivateRedis
    from tests.ports import free_port
    from tests.support.processes import Processes, wait_until

    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    api, results, worker_data, reducer_data, upstream = (free_port() for _ in range(5))
    source = {**defaults["sources"][0], "port": upstream}
    values = {
        "controller": {"port": api},
        "workers": {"replicas": 1, "dataPort": worker_data},
        "reducer": {"port": results, "dataPort": reducer_data},
        "sources": [source],
    }
    docs = render(values)
    frames = int(source["args"][source["args"].index("--frames") + 1])
    output = tmp_path / "xrd.h5"
    with PrivateRedis() as redis_server:
        procs = Processes(payload_dir, redis_server.url)
        try:
            for doc, cont in dranspose_containers(docs):
                args = [
                    a.replace("$(POD_IP)", "127.0.0.1")
                    .replace("$(POD_NAME)", doc["metadata"]["name"] + "-0")
                    .replace("dranspose-source-xrd", "127.0.0.1")
                    .replace("/tmp/xrd.h5", str(output))
                    for a in cont["args"]
                ]
                procs.start(*args)
            client = procs.client(api)
            wait_until(
                lambda: len(client.get("/api/v1/config").json()["components"]) >= 4,
                60,
                "registration",
            )
            request = TriggerMap.simple(["xrd"], frames).request.model_dump(
                mode="json"
            )  # + start, end
            response = client.post("/api/v1/sequence", content=json.dumps(request))
            assert response.status_code == 200, response.text
            wait_until(lambda: client.get("/api/v1/status").json()["finished"], 120, "scan end")
            progress = client.get("/api/v1/progress").json()
            assert progress["completed"] == frames + 2, progress
            reduced = httpx.get(f"http://127.0.0.1:{results}/api/v1/result/reduced").json()
            assert len(reduced) == frames + 1
        finally:
            procs.stop_all()
    with h5py.File(tmp_path / "xrd_processed.h5") as fh:
        assert fh["reduced"].shape == (frames + 1,)


# -- the access token ---------------------------------------------------------------------------

AUTH_VALUES = {"auth": {"existingSecret": "dranspose-token", "protectReads": True}}


def test_access_token_comes_from_the_secret_into_controller_and_reducer_only():
    docs = render(AUTH_VALUES)
    secret = {"secretKeyRef": {"name": "dranspose-token", "key": "token"}}
    for doc, cont in dranspose_containers(docs):
        variables = env(cont)
        if doc["metadata"]["name"] in ("dranspose-controller", "dranspose-reducer"):
            assert variables["DRANSPOSE_TOKEN"] == secret
            assert variables["DRANSPOSE_TOKEN_READS"] == "1"
        else:  # workers, ingesters and sources serve no REST API
            assert "DRANSPOSE_TOKEN" not in variables, doc["metadata"]["name"]
        assert not any("token" in arg for arg in cont["args"])  # never visible in 'ps'
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_helm_test_pod_gets_the_token_to_read_a_protected_api():
    pod = find(render(AUTH_VALUES), "Pod", "dranspose-test-connection")
    assert env(container(pod))["DRANSPOSE_TOKEN"] == {
        "secretKeyRef": {"name": "dranspose-token", "key": "token"}
    }


def test_no_secret_means_no_token_anywhere():
    for _, cont in dranspose_containers(render({})):
        assert not {"DRANSPOSE_TOKEN", "DRANSPOSE_TOKEN_READS"} & env(cont).keys()


def test_protected_reads_without_a_secret_are_refused():
    message = render_error({"auth": {"protectReads": True}})
    assert "auth.protectReads needs auth.existingSecret" in message


def test_helm_test_script_reads_a_protected_api_with_the_release_token(payload_dir):
    """Controller and reducer with the token on reads too: the script passes only with it."""
    import httpx

    from dranspose.io.local_redis import PrivateRedis
    from tests.ports import free_port
    from tests.support.processes import Processes, wait_until

    token = "helm-test-token"
    with PrivateRedis() as redis_server:
        procs = Processes(payload_dir, redis_server.url)
        procs.env.update({"DRANSPOSE_TOKEN": token, "DRANSPOSE_TOKEN_READS": "1"})
        api, results = free_port(), free_port()
        try:
            procs.start("controller", "--host", "127.0.0.1", "--port", str(api))
            procs.start("reducer", "--class", "src.reducer:TestReducer", "--port", str(results))
            wait_until(
                lambda: httpx.get(f"http://127.0.0.1:{results}/healthz").status_code == 200,
                60,
                "reducer API",
            )
            command, variables = connection_test(AUTH_VALUES)
            urls = (f"http://127.0.0.1:{api}", f"http://127.0.0.1:{results}")
            common = {"EXPECT_WORKERS": "0", "EXPECT_STREAMS": ""}
            with_token = run_connection_test(
                command, variables, *urls, TIMEOUT_SECONDS="30", DRANSPOSE_TOKEN=token, **common
            )
            without = run_connection_test(
                command, variables, *urls, TIMEOUT_SECONDS="1", DRANSPOSE_TOKEN="", **common
            )
        finally:
            procs.stop_all()
    assert with_token.returncode == 0, with_token.stderr
    assert without.returncode == 1
    assert "401" in without.stderr
