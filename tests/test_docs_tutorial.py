"""The outputs shown in docs/tutorial.md are what the tutorial's steps print.

A block marked ``<!-- tutorial-output: STEP [ARGS...] -->`` shows (an excerpt of) what the replay
of ``tests/tutorial/STEP`` prints with ``LOG_LEVEL=DEBUG`` and the extra ARGS. Its lines must
appear in the output in the same order (lines in between may be left out); ``...`` inside a line
stands for any text, a line that is only ``...`` marks left-out lines. The code shown on the page
is included from the same folders (``--8<--``), so code and output cannot drift apart.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import XRD_CAPTURE, run_cli

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "tutorial.md"
STEPS = ROOT / "tests" / "tutorial"
BLOCK = re.compile(
    r"<!-- tutorial-output: ([\w-]+)((?: [^ >]+)*) -->\n```text\n(.*?)^```$", re.S | re.M
)
REPLAY = [
    "replay",
    "-w",
    "src.worker:TestWorker",
    "-r",
    "src.reducer:TestReducer",
    "-f",
    "data/dump_xrd.cbors",
]


def shown_outputs() -> list[tuple[str, tuple[str, ...], str]]:
    return [
        (m.group(1), tuple(m.group(2).split()), m.group(3))
        for m in BLOCK.finditer(PAGE.read_text())
    ]


def appears_in_order(expected: str, actual: str) -> tuple[bool, str]:
    """Every shown line matches a later output line than the one before; the first miss."""
    lines = [line.rstrip() for line in actual.splitlines()]
    position = 0
    for shown in expected.splitlines():
        shown = shown.rstrip()
        if shown in ("", "..."):
            continue
        regex = re.compile(".*".join(re.escape(part) for part in shown.split("...")))
        while position < len(lines) and not regex.fullmatch(lines[position]):
            position += 1
        if position == len(lines):
            return False, shown
        position += 1
    return True, ""


OUTPUTS = shown_outputs()


def test_the_page_shows_the_output_of_every_step():
    shown = {step for step, _, _ in OUTPUTS}
    assert shown == {p.name for p in STEPS.iterdir() if p.is_dir()}


def test_the_matcher_rejects_a_wrong_or_misordered_line():
    output = "a 1\nb 2\nc 3\n"
    assert appears_in_order("a ...\nc 3", output) == (True, "")
    assert appears_in_order("c 3\na 1", output) == (False, "a 1")
    assert appears_in_order("b 3", output) == (False, "b 3")


@pytest.mark.parametrize(
    "step, args, expected", OUTPUTS, ids=[" ".join((s, *a)) for s, a, _ in OUTPUTS]
)
def test_shown_output_is_what_the_step_prints(tmp_path, step, args, expected):
    shutil.copytree(STEPS / step / "src", tmp_path / "src")
    for extra in (STEPS / step).glob("*.json"):
        shutil.copy(extra, tmp_path / extra.name)
    (tmp_path / "data").mkdir()
    shutil.copy(XRD_CAPTURE, tmp_path / "data" / "dump_xrd.cbors")
    result = run_cli([*REPLAY, *args], cwd=tmp_path, env={"LOG_LEVEL": "DEBUG"})
    ok, missing = appears_in_order(expected, result.stdout + result.stderr)
    assert ok, f"not printed (in this order): {missing!r}\n--- output:\n{result.stderr}"
