"""The documentation site builds with ``mkdocs build --strict`` and its generated parts are right.

The build runs once per module into a temporary directory, with every proxy variable pointing at
a closed port: a plugin that fetched anything from the network would fail the build. Strict mode
turns every warning into an error: broken links and anchors, pages missing from the nav,
snippets (``--8<--``) naming missing files, docstrings that do not render.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="the docs need the test extra: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    dead = f"http://127.0.0.1:{closed_port()}"
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "http_proxy": dead,
        "https_proxy": dead,
        "ALL_PROXY": dead,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def page_text(site: Path, name: str) -> str:
    """The visible text of a built page's article, tags stripped, entities decoded."""
    raw = (site / name / "index.html").read_text()
    article = raw[raw.index("<article") : raw.index("</article>")]
    return html.unescape(re.sub(r"<[^>]+>", "", article))


def test_strict_build_succeeds_offline(site):
    assert (site / "index.html").is_file()
    assert (site / "getting-started" / "index.html").is_file()


def test_cli_page_shows_every_subcommands_help(site):
    from dranspose.cli.main import build_parser

    text = page_text(site, "cli")
    parser = build_parser()
    commands = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"][0]  # noqa: RUF015
    assert len(commands.choices) >= 10
    for name, sub in commands.choices.items():
        assert f"dranspose {name}" in text, name
        for action in sub._actions:
            if action.help == argparse.SUPPRESS:  # hidden on purpose (e.g. up --ready-file)
                continue
            for option in action.option_strings:
                assert option in text, f"{name} {option}"


def openapi_documents() -> dict[str, dict]:
    from dranspose.http.controller_api import create_app as create_controller_app
    from dranspose.http.reducer_api import create_app
    from dranspose.io.store import Store
    from dranspose.runtime.controller import Controller

    return {
        "controller": create_controller_app(Controller(Store("redis://127.0.0.1:1/0"))).openapi(),
        "reducer": create_app(None).openapi(),
    }


def test_rest_page_lists_every_operation_of_both_apis(site):
    text = page_text(site, "rest-api")
    for name, document in openapi_documents().items():
        for path, operations in document["paths"].items():
            for method in operations:
                assert f"{method.upper()} {path}" in text, f"{name}: {method} {path}"


def test_openapi_documents_are_published_with_the_site(site):
    for name, document in openapi_documents().items():
        published = json.loads((site / f"{name}-openapi.json").read_text())
        assert published == json.loads(json.dumps(document))


def test_protocol_reference_lists_the_registry(site):
    from dranspose.protocols.registry import PROTOCOLS

    text = page_text(site, "protocols")
    for proto in PROTOCOLS.values():
        assert proto.description in text, proto.name


def test_payload_reference_is_rendered_from_docstrings(site):
    from dranspose.core.event import EventData, ResultData

    text = " ".join(page_text(site, "payload-api").split())
    for cls in (EventData, ResultData):
        # ``code`` in a docstring renders as code: the page shows the text without the quotes
        assert " ".join(cls.__doc__.replace("``", "").split()) in text, cls.__name__


def test_parameters_reference_is_rendered_from_docstrings(site):
    from dranspose.core.parameters import BinaryParameter, read_parameter_file

    text = " ".join(page_text(site, "parameters").split())
    assert " ".join(BinaryParameter.__doc__.replace("``", "").split()) in text
    first_line = read_parameter_file.__doc__.strip().splitlines()[0]
    assert first_line.replace("``", "") in text


def test_architecture_diagram_is_a_mermaid_block(site):
    raw = (site / "architecture" / "index.html").read_text()
    assert re.search(r'<pre class="mermaid"><code>flowchart', raw)


TRIGGER_MAP = re.compile(r"<!-- trigger-map: (\d+) events -->\n```json\n(.*?)^```$", re.S | re.M)


def test_trigger_map_examples_are_valid_maps_of_the_stated_length():
    from dranspose.core.triggermap import TriggerMap

    examples = TRIGGER_MAP.findall((DOCS / "trigger-maps.md").read_text())
    assert len(examples) >= 4
    for events, body in examples:
        # the controller adds the reserved first and last events
        assert len(TriggerMap.from_request_json(body)) == int(events) + 2, body


def test_readme_links_to_the_documentation_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    targets = [
        t.split("#")[0]
        for t in re.findall(r"\]\(([^)\s]+)\)", readme)
        if not re.match(r"[a-z]+:", t)
    ]
    assert "docs/getting-started.md" in targets
    for target in targets:
        assert (ROOT / target).exists(), target
