# helm test: the controller and the reducer answer /healthz, and every component of the release
# has registered with the controller (the workers, the reducer, an ingester for every stream).
import json
import os
import sys
import time
import urllib.request

controller = os.environ["CONTROLLER_URL"].rstrip("/")
reducer = os.environ["REDUCER_URL"].rstrip("/")
workers = int(os.environ["EXPECT_WORKERS"])
streams = {s for s in os.environ["EXPECT_STREAMS"].split(",") if s}
deadline = time.monotonic() + float(os.environ.get("TIMEOUT_SECONDS", "120"))


# the release's access token, when it has one (reads may be protected too)
token = os.environ.get("DRANSPOSE_TOKEN", "").strip()
headers = {"Authorization": f"Bearer {token}"} if token else {}


def get(url):
    with urllib.request.urlopen(
        urllib.request.Request(url, headers=headers), timeout=5
    ) as response:
        return response.status, json.loads(response.read())


def missing():
    problems = []
    for name, base in (("controller", controller), ("reducer", reducer)):
        try:
            status, _ = get(base + "/healthz")
            if status != 200:
                problems.append(f"{name} {base}/healthz answered {status}")
        except Exception as exc:
            problems.append(f"{name} {base}/healthz: {exc}")
    try:
        _, config = get(controller + "/api/v1/config")
        components = config["components"]
    except Exception as exc:
        return problems + [f"{controller}/api/v1/config: {exc}"]
    kinds = [c.get("kind") for c in components]
    served = {s for c in components if c.get("kind") == "ingester" for s in c.get("streams", [])}
    if kinds.count("worker") < workers:
        problems.append(f"{kinds.count('worker')} of {workers} workers registered")
    if "reducer" not in kinds:
        problems.append("no reducer registered")
    if streams - served:
        problems.append(f"no ingester registered for {', '.join(sorted(streams - served))}")
    return problems


while True:
    problems = missing()
    if not problems:
        print(
            f"ok: controller and reducer healthy; {workers} workers, reducer and ingesters "
            f"for {', '.join(sorted(streams)) or 'no streams'} registered"
        )
        sys.exit(0)
    if time.monotonic() > deadline:
        print("not ready: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)
    time.sleep(2)
