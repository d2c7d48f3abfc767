"""``dranspose up``: a whole pipeline on one machine from one command line or one YAML file.

Each component runs as its own child process with the same commands a facility deployment uses,
so what works here works there. Without a Redis URL a private redis-server is started and removed
again on exit. Ctrl-C (or SIGTERM) stops every child cleanly, then Redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dranspose.http.auth import PROTECT_READS_ENV, TOKEN_ENV, AccessPolicy
from dranspose.io.local_redis import PrivateRedis

STOP_GRACE_SECONDS = 10.0
"""After Ctrl-C, how long all children together get to exit before they are killed."""

_Children = list[tuple[str, subprocess.Popen[bytes]]]
"""The running components: a label for messages, and the process."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ControllerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(5000, ge=1, le=65535)
    retry_lost: bool = False


class ReducerConfig(_Strict):
    cls: str = Field(alias="class", pattern=r"^[\w.]+:\w+$")
    host: str = "127.0.0.1"
    port: int = Field(5001, ge=1, le=65535)


class WorkersConfig(_Strict):
    cls: str = Field(alias="class", pattern=r"^[\w.]+:\w+$")
    count: int = Field(2, ge=1, le=256)
    tags: list[str] = ["generic"]


class IngesterConfig(_Strict):
    stream: str = Field(pattern=r"^[\w.-]+$")
    upstream: str = Field(pattern=r"^(tcp|ipc|inproc|http)://.+")
    protocol: str = "stins"
    sub: bool = False
    dump: Optional[str] = None

    @model_validator(mode="after")
    def _protocol_fits_upstream(self) -> IngesterConfig:
        from dranspose.protocols.registry import PROTOCOLS

        protocol = PROTOCOLS.get(self.protocol.lower())
        if protocol is None:
            raise ValueError(
                f"unknown protocol {self.protocol!r}; known: {', '.join(sorted(PROTOCOLS))}"
            )
        scheme = self.upstream.split("://", 1)[0]
        if protocol.socket == "http" and scheme != "http":
            raise ValueError(
                f"protocol {protocol.name} listens for HTTP posts: upstream must be "
                f"the http://HOST:PORT address to listen on, not {self.upstream!r}"
            )
        if protocol.socket != "http" and scheme == "http":
            raise ValueError(
                f"protocol {protocol.name} reads a {protocol.socket.upper()} "
                f"upstream, not the HTTP address {self.upstream!r}"
            )
        return self


class PipelineConfig(_Strict):
    """Everything ``dranspose up`` starts; the YAML file has exactly these keys."""

    redis_url: Optional[str] = None
    prefix: str = "dranspose"
    controller: ControllerConfig = ControllerConfig()
    reducer: ReducerConfig
    workers: WorkersConfig
    ingesters: list[IngesterConfig] = []

    @field_validator("ingesters")
    @classmethod
    def _unique_streams(cls, value: list[IngesterConfig]) -> list[IngesterConfig]:
        seen: set[str] = set()
        for ing in value:
            if ing.stream in seen:
                raise ValueError(f"stream {ing.stream!r} has two ingesters")
            seen.add(ing.stream)
        return value


class PipelineConfigError(ValueError):
    """The pipeline description is invalid; the message lists every mistake."""


def _explain(exc: ValidationError, source: str) -> PipelineConfigError:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {where}: {err['msg']}{shown}")
    return PipelineConfigError(f"{source}: {len(lines)} problem(s):\n" + "\n".join(lines))


def load_config(path: Optional[str], overrides: dict[str, Any]) -> PipelineConfig:
    """Merge a YAML file (if any) with command-line values and validate the result."""
    data: dict[str, Any] = {}
    source = "command line"
    if path:
        import yaml

        source = path
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise PipelineConfigError(f"{path}: cannot read ({exc.strerror})") from exc
        except yaml.YAMLError as exc:
            raise PipelineConfigError(f"{path}: not valid YAML ({exc})") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise PipelineConfigError(f"{path}: expected a mapping at the top level")
        data = loaded or {}
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, field = key.partition(".")
        if field:
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                raise PipelineConfigError(f"{source}: {section} must be a mapping")
            data[section][field] = value
        else:
            data[section] = value
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, source) from None


def commands(config: PipelineConfig) -> list[list[str]]:
    """The ``dranspose`` command lines of every component."""
    base = ["--prefix", config.prefix]
    out = [
        [
            "controller",
            *base,
            "--host",
            config.controller.host,
            "--port",
            str(config.controller.port),
            *(["--retry-lost"] if config.controller.retry_lost else []),
        ]
    ]
    for i in range(config.workers.count):
        out.append(
            [
                "worker",
                *base,
                "--class",
                config.workers.cls,
                "--name",
                f"worker{i}",
                "--tags",
                ",".join(config.workers.tags),
            ]
        )
    out.append(
        [
            "reducer",
            *base,
            "--class",
            config.reducer.cls,
            "--worker-class",
            config.workers.cls,
            "--host",
            config.reducer.host,
            "--port",
            str(config.reducer.port),
        ]
    )
    for ing in config.ingesters:
        cmd = [
            "ingester",
            *base,
            "--stream",
            ing.stream,
            "--upstream",
            ing.upstream,
            "--protocol",
            ing.protocol,
        ]
        if ing.sub:
            cmd.append("--sub")
        if ing.dump:
            cmd += ["--dump", ing.dump]
        out.append(cmd)
    return out


def child_environment(
    base: Mapping[str, str], access: AccessPolicy, **extra: str
) -> dict[str, str]:
    """The environment of the children: ``base`` with ``access`` and ``extra`` in it.

    The token reaches the controller and the reducer here, never on their command lines (where
    ``ps`` would show it); the policy the command line settled on (``--token`` or the variables)
    replaces whatever token variables ``base`` has.
    """
    env = {k: v for k, v in base.items() if k not in (TOKEN_ENV, PROTECT_READS_ENV)}
    if access.token is not None:
        env[TOKEN_ENV] = access.token.get_secret_value()
    if access.protect_reads:
        env[PROTECT_READS_ENV] = "1"
    env.update(extra)
    return env


def run_pipeline(
    config: PipelineConfig, ready_file: Optional[str] = None, access: Optional[AccessPolicy] = None
) -> int:
    """Start everything, wait for Ctrl-C/SIGTERM or a child's death, stop everything.

    The children get this process's environment (``PATH``, ``LOG_LEVEL``...) with the Redis URL
    and ``access`` (default: open) set.
    """
    redis_server: Optional[PrivateRedis] = None
    url = config.redis_url
    if url is None:
        redis_server = PrivateRedis().start()
        url = redis_server.url
        print(f"dranspose up: private Redis at {url}", file=sys.stderr)
    env = child_environment(
        os.environ, access or AccessPolicy(), REDIS_URL=url, PYTHONUNBUFFERED="1"
    )
    children: _Children = []
    stop_requested = False

    def request_stop(signum: int, frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    exit_code = 0
    try:
        _start_children(config, env, children)
        print(
            f"dranspose up: controller on http://{config.controller.host}:"
            f"{config.controller.port}/, results on http://{config.reducer.host}:"
            f"{config.reducer.port}/api/v1/result/, viewer on http://{config.reducer.host}:"
            f"{config.reducer.port}/viewer/ (Ctrl-C stops everything)",
            file=sys.stderr,
        )
        if ready_file:
            Path(ready_file).write_text(url)
        while not stop_requested:
            dead = [(label, c) for label, c in children if c.poll() is not None]
            if dead:
                for label, child in dead:
                    print(
                        f"dranspose up: {label} exited with status {child.returncode}; "
                        "stopping everything",
                        file=sys.stderr,
                    )
                exit_code = 1
                break
            time.sleep(0.1)
    finally:
        _stop_children(children)
        if redis_server is not None:
            redis_server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code


def _start_children(config: PipelineConfig, env: dict[str, str], children: _Children) -> None:
    """Start every component, appending each to ``children`` as soon as it runs.

    Appending one by one (rather than returning the list) lets the caller stop those already
    started when a later one fails to start.
    """
    for cmd in commands(config):
        # children ignore the terminal's Ctrl-C; we forward it, in order
        label = f"{cmd[0]} {cmd[cmd.index('--name') + 1]}" if "--name" in cmd else cmd[0]
        children.append(
            (
                label,
                subprocess.Popen(
                    [sys.executable, "-m", "dranspose", *cmd], env=env, start_new_session=True
                ),
            )
        )
        if cmd[0] == "controller":
            time.sleep(0.5)  # let it take the lock before the others register


def _stop_children(children: _Children) -> None:
    """SIGINT every child still running, newest first; kill those that outlast the grace."""
    for _, child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    # one deadline for all: the children stop in parallel, not one grace period each
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for label, child in reversed(children):
        try:
            child.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            print(
                f"dranspose up: {label} did not stop within {STOP_GRACE_SECONDS:.0f} s; killed",
                file=sys.stderr,
            )
            child.kill()
            child.wait(5)
