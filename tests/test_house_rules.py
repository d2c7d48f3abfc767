"""The house rules of dranspose/ that no linter checks, each listing every offender at once.

A module over 500 lines or a function over 80 lines is one that does too much to read in one
sitting (issue 26); the public facades (``dranspose.event``, ``.protocol``, ``.parameters``,
``.replay``, ``.data.*``, ``.middlewares.*``) are import paths kept for payloads and must hold no
code of their own, only re-exports, so each piece of logic has one owner in the layered packages.
Which package may import which is ``lint-imports``' job ([tool.importlinter] in pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Union

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dranspose"

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

FACADES = [
    PACKAGE / "event.py",
    PACKAGE / "protocol.py",
    PACKAGE / "parameters.py",
    PACKAGE / "replay.py",
    *sorted((PACKAGE / "data").glob("*.py")),
    *sorted((PACKAGE / "middlewares").glob("*.py")),
]

Function = Union[ast.FunctionDef, ast.AsyncFunctionDef]


def modules(folder: Path = PACKAGE) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def functions(tree: ast.AST) -> Iterator[tuple[str, Function]]:
    """Every function and method, nested ones included, with its dotted name in the module."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, Function]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    return walk(tree, "")


def function_lines(function: Function) -> int:
    """Lines from the ``def`` (decorators not counted) to the last line of the body."""
    assert function.end_lineno is not None
    return function.end_lineno - function.lineno + 1


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{shown(path)}:{function.lineno} {name} ({function_lines(function)} lines)"
        for name, function in functions(tree)
        if function_lines(function) > limit
    ]


def facade_code(path: Path) -> list[str]:
    """The statements of a facade other than its docstring, imports from dranspose and
    ``__all__``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for index, node in enumerate(tree.body):
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module == "__future__" or node.module.startswith("dranspose."):
                continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if [getattr(target, "id", None) for target in targets] == ["__all__"]:
                continue
        found.append(f"{shown(path)}:{node.lineno} {ast.unparse(node)[:80]!r}")
    return found


def test_no_module_is_over_500_lines() -> None:
    offenders = [
        f"{shown(path)} ({count} lines)"
        for path in modules()
        if (count := line_count(path)) > MAX_MODULE_LINES
    ]
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(offenders)


def test_no_function_is_over_80_lines() -> None:
    offenders = [line for path in modules() for line in long_functions(path)]
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(offenders)


def test_facades_only_reexport() -> None:
    assert len(FACADES) > 10  # the globs found the packages
    offenders = [line for path in FACADES for line in facade_code(path)]
    assert not offenders, "code in a public facade (move it to its layer):\n" + "\n".join(offenders)


# the checks themselves, on small sources


def test_function_length_counts_from_def_to_last_line_nested_and_methods(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    source = (
        f"def short():\n{body[: body.index(chr(10))]}\n\n"
        f"def long():\n{body}\n\n"
        "class K:\n"
        "    @property\n"
        "    def method(self):\n" + "\n".join(f"    {line}" for line in body.splitlines()) + "\n"
        "\n"
        "async def outer():\n"
        "    def inner():\n" + "\n".join(f"    {line}" for line in body.splitlines()) + "\n"
    )
    path = tmp_path / "sample.py"
    path.write_text(source)
    found = [line.split(" ", 1)[1] for line in long_functions(path)]
    assert found == [
        "long (81 lines)",
        "K.method (81 lines)",
        "outer (82 lines)",
        "outer.inner (81 lines)",
    ]


def test_facade_check_names_code_but_not_reexports(tmp_path: Path) -> None:
    path = tmp_path / "facade.py"
    path.write_text(
        '"""A facade."""\n'
        "from __future__ import annotations\n"
        "from dranspose.core.event import EventData\n"
        "import os\n"
        "LIMIT = 3\n"
        "def helper():\n"
        "    return LIMIT\n"
        '__all__ = ["EventData"]\n'
    )
    found = [line.split(" ", 1)[1] for line in facade_code(path)]
    assert found == ["'import os'", "'LIMIT = 3'", "'def helper():\\n    return LIMIT'"]
