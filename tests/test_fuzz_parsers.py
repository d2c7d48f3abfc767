"""Fuzzing every protocol parser and the capture readers with malformed input (hypothesis).

Only the documented errors may come out (``ParseError``, ``CaptureError``), never another
exception, a crash or a hang; see ``tests/fuzz_targets.py`` for the inputs and the contract per
target. ``DRANSPOSE_FUZZ_EXAMPLES`` sets the inputs per target (default 150, a quick check in CI);
``bench/badinput.py fuzz`` runs the full campaign of 10,000 per target.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz_targets import TARGETS, time_limit

EXAMPLES = int(os.environ.get("DRANSPOSE_FUZZ_EXAMPLES", "150"))


def fuzz(name: str, examples: int) -> int:
    """Run ``examples`` generated inputs through target ``name``; the count actually run."""
    target = TARGETS[name]
    count = 0

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(target.inputs())
    def run(value):
        nonlocal count
        count += 1
        with time_limit():
            target.run(value)

    run()
    return count


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_malformed_input_raises_only_the_documented_error(name):
    assert fuzz(name, EXAMPLES) >= min(EXAMPLES, 50)
