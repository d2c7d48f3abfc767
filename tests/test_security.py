"""Trust boundaries that the code must keep (docs/security.md): where pickles are read, and
which addresses the components listen on by default."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from dranspose.cli.main import build_parser, data_bind
from dranspose.io.dataplane import Inbox

ROOT = Path(__file__).resolve().parent.parent
SECURITY_PAGE = ROOT / "docs" / "security.md"

UNPICKLING = {
    "dranspose/io/capture.py": "`.pkls` capture files the user names",
    "dranspose/core/parameters.py": "parameter files the user names (any name: format by content)",
    "dranspose/tools/replay.py": "a round trip of the payload's own result",
    "dranspose/runtime/reducer.py": "results of the pipeline's own workers",
    "dranspose/protocols/common/safe_pickle.py": "the restricted unpickler for network data",
}
"""Every module that unpickles, with what it unpickles; docs/security.md explains each."""


def unpickling_calls(path: Path) -> list[str]:
    """``pickle.load``/``loads``/``Unpickler`` uses in one module, found in its syntax tree."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("load", "loads", "Unpickler")
            and isinstance(node.value, ast.Name)
            and node.value.id in ("pickle", "_pickle")
        ):
            found.append(f"pickle.{node.attr} (line {node.lineno})")
        if isinstance(node, ast.ImportFrom) and node.module in ("pickle", "_pickle"):
            found += [
                f"from pickle import {a.name}"
                for a in node.names
                if a.name in ("load", "loads", "Unpickler")
            ]
    return found


def test_only_the_audited_modules_unpickle():
    modules = {
        str(p.relative_to(ROOT)): unpickling_calls(p)
        for p in sorted((ROOT / "dranspose").rglob("*.py"))
    }
    assert {m for m, calls in modules.items() if calls} == set(UNPICKLING), modules


def test_the_security_page_explains_every_module_that_unpickles():
    text = SECURITY_PAGE.read_text()
    for module in UNPICKLING:
        assert f"`{module}`" in text, module


@pytest.mark.parametrize("command", ["controller", "reducer"])
def test_http_apis_listen_on_loopback_by_default(monkeypatch, command):
    monkeypatch.delenv("DRANSPOSE_HOST", raising=False)
    extra = ["--class", "m:C"] if command == "reducer" else []
    assert build_parser().parse_args([command, *extra]).host == "127.0.0.1"


def test_the_image_variable_opens_the_http_apis_to_every_interface(monkeypatch):
    monkeypatch.setenv("DRANSPOSE_HOST", "0.0.0.0")
    assert build_parser().parse_args(["controller"]).host == "0.0.0.0"
    assert build_parser().parse_args(["controller", "--host", "10.0.0.5"]).host == "10.0.0.5"


@pytest.mark.parametrize(
    "advertise,bind",
    [
        ("127.0.0.1", "tcp://127.0.0.1:9100"),
        ("localhost", "tcp://127.0.0.1:9100"),
        ("10.1.2.3", "tcp://*:9100"),
        ("worker-7.beamline", "tcp://*:9100"),
    ],
)
def test_data_sockets_listen_where_they_are_advertised(advertise, bind):
    assert data_bind(advertise, 9100) == bind


def test_a_loopback_data_socket_is_bound_to_loopback_only():
    ctx = zmq.asyncio.Context()
    try:
        inbox = Inbox(ctx, data_bind("127.0.0.1", 0), "127.0.0.1")
        endpoint = inbox.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        inbox.close()
    finally:
        ctx.term()
    assert endpoint.startswith("tcp://127.0.0.1:")
