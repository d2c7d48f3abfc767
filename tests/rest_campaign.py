"""Schema-driven bad-input campaign against a running REST server (schemathesis + hypothesis).

Every operation of an OpenAPI schema gets requests generated both to fit the schema (positive)
and to break it (negative: wrong types, missing or extra parts). Each response is judged by the
two rules of the bad-input campaign: no 5xx ever, and every 4xx carries a human-readable
``detail`` string. Problems are collected, not raised on the first one, so one run lists them all.

Used by ``tests/test_rest_campaign.py`` (a modest number of requests) and by
``bench/badinput.py`` (the full campaign); not collected by pytest itself.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

STREAMING = {"/api/v1/log_stream"}
"""Operations that answer an endless event stream: read for at most ``STREAM_SECONDS``."""
STREAM_SECONDS = 0.3


@dataclass
class Tally:
    """What a campaign sent and saw; ``problems`` lists each rule broken, with the request."""

    requests: int = 0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    per_operation: collections.Counter = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timing: dict = field(default_factory=dict)

    def summary(self) -> str:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"{self.requests} requests in {self.seconds:.1f} s over "
            f"{len(self.per_operation)} operations; statuses {statuses}; "
            f"{len(self.problems)} problems"
        )


def load_schema(base_url: str) -> Any:
    """The server's own OpenAPI document, fetched over HTTP like any client would."""
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


def _describe(response: requests.Response) -> str:
    request = response.request
    body = request.body
    if isinstance(body, bytes):
        body = body[:200]
    elif isinstance(body, str):
        body = body[:200]
    return f"{request.method} {request.url} body={body!r}"


def judge(status: int, content: bytes, where: str) -> list[str]:
    """The campaign's two rules for one response."""
    if status >= 500:
        return [f"{where}: server error {status}: {content[:300]!r}"]
    if 400 <= status < 500:
        try:
            detail = json.loads(content).get("detail")
        except (ValueError, AttributeError):
            return [f"{where}: {status} without a JSON body holding 'detail': {content[:200]!r}"]
        if not isinstance(detail, str) or not detail.strip():
            return [f"{where}: {status} whose detail is not a message: {detail!r}"[:400]]
    return []


def _send(case: Any, base_url: str, session: requests.Session) -> requests.Response:
    kwargs = case.as_transport_kwargs(base_url=base_url)
    kwargs.pop("base_url", None)
    streaming = case.operation.path in STREAMING
    timeout = (10, STREAM_SECONDS) if streaming else 10
    response = session.request(**kwargs, timeout=timeout, stream=streaming, allow_redirects=False)
    if streaming:
        # an event stream never ends: keep what arrives within a short window, then hang up
        deadline = time.monotonic() + STREAM_SECONDS
        chunks = []
        if response.status_code >= 400:
            chunks.append(response.content)
        else:
            try:
                for chunk in response.iter_content(chunk_size=None):
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        break
            except requests.ConnectionError:
                if not chunks:  # not even the stream's opening comment arrived
                    raise
        response.close()
        response._content = b"".join(chunks)
    return response


def known_path_values(base_url: str) -> dict[str, list[str]]:
    """Path parameters that name something that exists (random ones are nearly always 404, which
    tests only the lookup): declared parameter names, ``publish`` paths, the HDF5 object ids."""
    session = requests.Session()
    values: dict[str, list[str]] = {"user": ["default"]}
    names = [p["name"] for p in session.get(f"{base_url}/api/v1/parameters", timeout=10).json()]
    values["name"] = names[:3]
    root = session.get(f"{base_url}/", timeout=10)
    is_json = root.headers.get("content-type", "").startswith("application/json")
    if (
        root.status_code == 200 and is_json and "root" in root.json()
    ):  # the reducer: publish tree and HDF5
        values["path"] = ["info", "info/nested/list", "image/1"]
        groups, datasets = [root.json()["root"]], []
        for link in session.get(f"{base_url}/groups/{groups[0]}/links", timeout=10).json()["links"]:
            (groups if link.get("collection") == "groups" else datasets).append(link["id"])
        values["obj_id"] = groups[:2] + datasets[:3]
    session.close()
    return values


def _passes(
    operation: Any, known: dict[str, list[str]], limit: Optional[int] = None
) -> list[dict[str, str]]:
    """Fixed path parameters per pass: one pass generating all of them, one per known value
    (at most ``limit`` per parameter)."""
    path_params = [p.name for p in operation.path_parameters]
    passes: list[dict[str, str]] = [{}]
    for name in path_params:
        kind = (
            "g" if "/groups/" in operation.path else "d" if "/datasets/" in operation.path else ""
        )
        values = [
            v
            for v in known.get(name, [])
            if not (name == "obj_id" and kind and not v.startswith(kind + "-"))
        ]
        passes.extend({name: value} for value in values[:limit])
    return passes


def _typed(schema: Any) -> bool:
    """Whether a parameter schema asks for more than a string (a number, a bound, an enum)."""
    if not isinstance(schema, dict):
        return False
    if any(_typed(branch) for branch in schema.get("anyOf", [])):
        return True
    return schema.get("type") not in (None, "string", "null") or "enum" in schema


def _breakable(operation: Any) -> bool:
    """Whether negative generation has anything to break: a typed query parameter or a JSON
    body. Every path and query value is a string on the wire and any bytes fit a binary body,
    so for those schemathesis searches long for a "wrong" value and finds none."""
    typed_query = any(_typed(p.definition.get("schema")) for p in operation.query)
    json_body = any(b.media_type == "application/json" for b in operation.body)
    return typed_query or json_body


def run_campaign(
    base_url: str,
    examples_per_pass: int,
    tally: Tally,
    skip: Iterable[tuple[str, str]] = (),
    known_per_parameter: Optional[int] = None,
) -> Tally:
    """Send generated requests to every operation of the server at ``base_url`` and add what was
    seen to ``tally``. Each operation gets passes with its path parameters generated and fixed to
    known values; each pass sends up to ``examples_per_pass`` requests fitting the schema and as
    many breaking it (where it has a query or a body to break)."""
    schema = load_schema(base_url)
    known = known_path_values(base_url)
    skipped = {(m.upper(), p) for m, p in skip}
    session = requests.Session()
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = f"{operation.method.upper()} {operation.path}"
        if (operation.method.upper(), operation.path) in skipped:
            continue
        for fixed in _passes(operation, known, known_per_parameter):
            modes = [GenerationMode.POSITIVE]
            if _breakable(operation):
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=fixed or None
                )

                @settings(
                    max_examples=examples_per_pass,
                    deadline=None,
                    database=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy)
                def send(case: Any) -> None:
                    response = _send(case, base_url, session)
                    tally.requests += 1
                    tally.statuses[response.status_code] += 1
                    tally.per_operation[key] += 1  # noqa: B023
                    tally.problems.extend(
                        judge(response.status_code, response.content, _describe(response))
                    )

                t0 = time.monotonic()
                try:
                    send()
                except Unsatisfiable:
                    pass  # nothing left to generate (e.g. no way to break this operation)
                tally.timing[(key, mode.value, tuple(fixed.values()))] = time.monotonic() - t0
    session.close()
    tally.seconds += time.monotonic() - started
    return tally
