"""Trust boundaries that the code must keep (docs/security.md): where pickles are read, and
which addresses the components listen on by default."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from dranspose.cli.main import build_parser
from dranspose.cli.services import data_bind
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


ENVIRONMENT_READERS = {
    "dranspose/tools/up.py": "hands its whole environment on to the children it starts",
    "dranspose/io/memory.py": "$DRANSPOSE_MALLOC_TUNING, applied before anything is allocated",
    "dranspose/io/build_meta.py": "read_build_meta's default, for payload code and replay()",
}
"""Every module that touches ``os.environ`` besides the command line's one Settings class
(dranspose/cli/settings.py, through pydantic-settings): configuration such as the token is read
there once and passed on, so no module can read it behind the command line's back."""


def environment_uses(path: Path) -> list[str]:
    """``os.environ`` and ``os.getenv`` uses in one module, found in its syntax tree."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv", "putenv")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            found.append(f"os.{node.attr} (line {node.lineno})")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"from os import {a.name}" for a in node.names if "env" in a.name]
    return found


def test_only_the_listed_modules_touch_the_environment():
    modules = {
        str(p.relative_to(ROOT)): environment_uses(p)
        for p in sorted((ROOT / "dranspose").rglob("*.py"))
    }
    assert {m for m, uses in modules.items() if uses} == set(ENVIRONMENT_READERS), modules


def test_the_cli_hands_the_token_to_the_children_of_up_without_writing_its_environment(
    monkeypatch,
):
    from dranspose.cli.settings import Settings
    from dranspose.tools.up import child_environment

    monkeypatch.setenv("DRANSPOSE_TOKEN", "from-the-shell")
    monkeypatch.delenv("DRANSPOSE_TOKEN_READS", raising=False)
    access = Settings().access(token="from-the-option", protect_reads=True)
    env = child_environment({"PATH": "/bin", "DRANSPOSE_TOKEN": "from-the-shell"}, access, X="1")
    assert env == {
        "PATH": "/bin",
        "DRANSPOSE_TOKEN": "from-the-option",
        "DRANSPOSE_TOKEN_READS": "1",
        "X": "1",
    }
    assert child_environment({"DRANSPOSE_TOKEN": "old"}, Settings(token=None).access("")) == {}
    assert os.environ["DRANSPOSE_TOKEN"] == "from-the-shell"
