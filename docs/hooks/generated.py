"""MkDocs hook: reference sections generated from the code itself, so they cannot go stale.

A page asks for a generated section with an HTML comment on a line of its own::

    <!-- generated: cli -->                  every sub-command's --help, from cli.build_parser()
    <!-- generated: openapi controller -->   the controller's REST API, from its OpenAPI schema
    <!-- generated: openapi reducer -->      the reducer's REST API (also served by replay --port)
    <!-- generated: protocols -->            the ingesters' protocol registry
    <!-- generated: trigger-map-schema -->   JSON schema of a trigger map (SequenceRequest)

Docstrings rendered by mkdocstrings keep their Sphinx roles as text; ``on_page_content`` turns
``:class:`X``` into plain code.

On GitHub the comments are invisible and the page's text says where to look instead. An unknown
name fails the build. The OpenAPI documents are also written to the site as
``controller-openapi.json`` and ``reducer-openapi.json``.

Nothing here starts a server or touches the network: the FastAPI apps are built in memory (the
controller's Redis client connects lazily and is never used) and asked for ``openapi()``.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any, Callable

MARKER = re.compile(r"^<!-- generated: ([\w-]+)(?: ([\w-]+))? -->$", re.M)
HELP_WIDTH = 96
UNUSED_REDIS = "redis://127.0.0.1:1/0"  # never contacted: building the app does no I/O


# -- command line ------------------------------------------------------------------------------


def _fixed_width(parser: argparse.ArgumentParser) -> None:
    """Wrap help text at a fixed width, whatever terminal the build runs in."""
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=HELP_WIDTH)


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, one-line help, parser)`` of every sub-command, in the order ``--help`` lists them."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((name, helps.get(name, ""), sub))
    return out


def cli_markdown() -> str:
    from dranspose.cli.main import build_parser

    parser = build_parser()
    _fixed_width(parser)
    commands = subcommands(parser)
    lines = ["| command | what it does |", "|---|---|"]
    lines += [f"| [`dranspose {name}`](#dranspose-{name}) | {text} |" for name, text, _ in commands]
    lines += ["", "```text", parser.format_help().rstrip(), "```", ""]
    for name, text, sub in commands:
        _fixed_width(sub)
        lines += [
            f"## dranspose {name}",
            "",
            text[:1].upper() + text[1:] + ".",
            "",
            "```text",
            sub.format_help().rstrip(),
            "```",
            "",
        ]
    return "\n".join(lines)


# -- REST APIs ---------------------------------------------------------------------------------


def controller_openapi() -> dict[str, Any]:
    from dranspose.http.controller_api import create_app
    from dranspose.io.store import Store
    from dranspose.runtime.controller import Controller

    return create_app(Controller(Store(UNUSED_REDIS))).openapi()


def reducer_openapi() -> dict[str, Any]:
    from dranspose.http.reducer_api import create_app

    return create_app(None).openapi()  # type: ignore[arg-type]  # the host is only used per request


OPENAPI: dict[str, Callable[[], dict[str, Any]]] = {
    "controller": controller_openapi,
    "reducer": reducer_openapi,
}


def schema_type(schema: dict[str, Any], anchors: str = "") -> str:
    """A short human spelling of a JSON schema: ``array of object``, ``string | null``.

    A reference links to the schema's section, whose anchor is ``{anchors}schema-{name}``.
    """
    if not schema:
        return "any"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{anchors}schema-{name.lower()})"
    for combiner in ("anyOf", "oneOf"):
        if combiner in schema:
            return " | ".join(schema_type(s, anchors) for s in schema[combiner])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "array":
        return f"array of {schema_type(schema.get('items', {}), anchors)}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {schema_type(schema['additionalProperties'], anchors)}"
    return str(kind)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _operation(method: str, path: str, op: dict[str, Any], anchors: str) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    lines += [f"**{op.get('summary', '')}**", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {schema_type(p.get('schema', {}), anchors)} | "
                f"{'yes' if p.get('required') else 'no'} | "
                f"{_cell(p.get('description', ''))} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            lines += [
                f"Request body (`{media}`): {schema_type(content.get('schema', {}), anchors)}",
                "",
            ]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, response in op.get("responses", {}).items():
        bodies = [
            f"`{media}` {schema_type(content.get('schema', {}), anchors)}"
            for media, content in response.get("content", {}).items()
        ]
        lines.append(
            f"| {status} | {_cell(response.get('description', ''))} | {', '.join(bodies) or '-'} |"
        )
    lines.append("")
    return lines


def _schema_section(name: str, schema: dict[str, Any], anchors: str) -> list[str]:
    lines = [f"#### {name} {{ #{anchors}schema-{name.lower()} }}", ""]
    if schema.get("description"):
        lines += [schema["description"].strip(), ""]
    props = schema.get("properties", {})
    if props:
        required = set(schema.get("required", []))
        lines += ["| field | type | required |", "|---|---|---|"]
        for field, sub in props.items():
            lines.append(
                f"| `{field}` | {schema_type(sub, anchors)} | "
                f"{'yes' if field in required else 'no'} |"
            )
        lines.append("")
    return lines


def openapi_markdown(schema: dict[str, Any], anchors: str = "", api_prefix: str = "/api/") -> str:
    """Every operation of an OpenAPI document, the ``/api/`` ones first, then the others.

    ``anchors`` prefixes the schema sections' anchors, so two documents fit on one page.
    """
    info = schema.get("info", {})
    lines = [
        f"OpenAPI {schema.get('openapi', '')}: *{info.get('title', '')}*, "
        f"version {info.get('version', '')}.",
        "",
    ]
    paths = schema.get("paths", {})
    main = [p for p in paths if p.startswith(api_prefix)]
    other = [p for p in paths if not p.startswith(api_prefix)]
    for group, intro in ((main, None), (other, f"Endpoints outside `{api_prefix}`:")):
        if not group:
            continue
        if intro:
            lines += [f"**{intro}**", ""]
        for path in group:
            for method, op in paths[path].items():
                lines += _operation(method, path, op, anchors)
    schemas = schema.get("components", {}).get("schemas", {})
    if schemas:
        lines += ["### Schemas", ""]
        for name, sub in schemas.items():
            lines += _schema_section(name, sub, anchors)
    return "\n".join(lines)


# -- protocols and trigger maps ----------------------------------------------------------------


def protocols_markdown() -> str:
    from dranspose.protocols.registry import PROTOCOLS

    lines = ["| `--protocol` | socket | `StreamData.typ` | messages |", "|---|---|---|---|"]
    for proto in sorted(PROTOCOLS.values(), key=lambda p: p.name):
        lines.append(
            f"| `{proto.name}` | {proto.socket.upper()} | `{proto.typ}` | "
            f"{_cell(proto.description)} |"
        )
    return "\n".join(lines) + "\n"


def trigger_map_schema_markdown() -> str:
    from dranspose.core.triggermap import SequenceRequest

    schema = SequenceRequest.model_json_schema()
    return "```json\n" + json.dumps(schema, indent=2) + "\n```\n"


# -- the hook ----------------------------------------------------------------------------------


def render(name: str, arg: str | None) -> str:
    if name == "cli" and arg is None:
        return cli_markdown()
    if name == "openapi" and arg in OPENAPI:
        return openapi_markdown(OPENAPI[arg](), anchors=f"{arg}-")
    if name == "protocols" and arg is None:
        return protocols_markdown()
    if name == "trigger-map-schema" and arg is None:
        return trigger_map_schema_markdown()
    raise ValueError(f"unknown generated section {name!r} {arg or ''}".rstrip())


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        try:
            return render(match.group(1), match.group(2))
        except ValueError as exc:
            raise ValueError(f"{page.file.src_uri}: {exc}") from None

    return MARKER.sub(replace, markdown)


SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([\w.]+)</code>")


def on_page_content(html: str, **kwargs: Any) -> str:
    """Docstrings use Sphinx roles (``:class:`X```), which Markdown leaves as text: drop the role.

    ``~a.b.C`` shows as ``C``, as Sphinx would.
    """
    return SPHINX_ROLE.sub(
        lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>",
        html,
    )


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    from mkdocs.structure.files import File

    for name, make in OPENAPI.items():
        files.append(
            File.generated(config, f"{name}-openapi.json", content=json.dumps(make(), indent=2))
        )
    return files
