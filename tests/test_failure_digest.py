"""A payload failing on every event reads as one failure: shown once, then counted.

The digest itself (pure) and a real replay of 2,000 events whose worker raises on each of them:
one traceback is logged, the broadcast first event counts once with both workers named, the
failure count equals the events, and the summary line is the last thing printed.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from dranspose.core.failures import FailureDigest, format_events
from dranspose.core.ranges import RangeSet
from dranspose.event import InternalWorkerMessage, StreamData
from dranspose.replay import replay

EVENTS = 2000


def _traceback(line: int) -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/x/dranspose/core/calling.py", line 64, in _call\n'
        f'  File "/payload/src/worker.py", line {line}, in process_event\n'
        "ZeroDivisionError: division by zero\n"
    )


def test_kinds_are_stage_exception_and_line():
    digest = FailureDigest()
    add = digest.add
    assert add(0, "w0", "process_event", "ZeroDivisionError: x", "event 0: ...", _traceback(7))
    assert not add(0, "w1", "process_event", "ZeroDivisionError: x", "event 0: ...", _traceback(7))
    for n in range(1, 10):
        assert not add(n, "w0", "process_event", "ZeroDivisionError: y", "...", _traceback(7))
    # another line of the payload, another exception, another stage: three more kinds
    assert add(3, "w0", "process_event", "ZeroDivisionError: x", "...", _traceback(9))
    assert add(4, "w0", "process_event", "KeyError: 'a'", "...", _traceback(7))
    assert add(None, "reducer", "finish", "ZeroDivisionError: x", "...", _traceback(7))
    kinds = digest.kinds
    assert len(kinds) == 4
    first = kinds[0]
    assert first.components == ["w0", "w1"] and first.calls == 11 and len(first.events) == 10
    assert first.repeat_line() == "... and 9 more events failed the same way (events 1-9)"
    assert len(digest.failed_events) == 10 and digest.other == 1


def test_event_lists_are_ranges_and_stay_short():
    events = RangeSet()
    for n in [1, 2, 3, 7, 9, 10]:
        events.add(n)
    assert format_events(events) == "events 1-3, 7, 9-10"
    many = RangeSet()
    for n in range(0, 40, 2):
        many.add(n)
    assert format_events(many, limit=3) == "events 0, 2, 4, and 17 more ranges"


class FailingWorker:
    def __init__(self, *args, **kwargs):
        pass

    def process_event(self, event, parameters=None):
        return 1 / 0


class Reducer:
    def __init__(self, *args, **kwargs):
        self.publish = {}

    def process_result(self, result, parameters=None):
        pass


class Source:
    def get_source_generators(self):
        def stream():
            for n in range(EVENTS):
                yield InternalWorkerMessage(
                    event_number=n, streams={"s": StreamData(typ="raw", frames=[b"%d" % n])}
                )

        return [stream()]


@pytest.mark.expect_errors
def test_a_replay_failing_every_event_shows_one_traceback(caplog):
    caplog.set_level(logging.DEBUG, logger="dranspose.replay")
    summary = replay(FailingWorker, Reducer, source=Source)
    assert summary.events == EVENTS and summary.results == 0
    # every event failed, the broadcast first one on both workers: EVENTS + 1 calls
    assert len(summary.failures) == EVENTS + 1
    assert len(summary.digest.failed_events) == EVENTS
    (kind,) = summary.digest.kinds
    assert kind.components == ["development0", "development1"]
    with_traceback = [r for r in caplog.records if "Traceback" in r.getMessage()]
    assert len(with_traceback) == 1
    assert "event 0: development0 process_event failed: ZeroDivisionError" in (
        with_traceback[0].getMessage()
    )
    lines = summary.report_lines()
    assert lines[0].startswith("FAILED event 0: development0 process_event failed")
    assert lines[0].endswith("(on development0, development1)")
    assert lines[1] == (
        f"  ... and {EVENTS - 1:,} more events failed the same way (events 1-{EVENTS - 1})"
    )
    assert summary.describe().startswith(
        f"replay: {EVENTS} events, 0 results, {EVENTS} failures, 0 lost in "
    )


def test_the_command_line_prints_the_summary_last(tmp_path):
    (tmp_path / "payload.py").write_text(
        textwrap.dedent(
            """
            from dranspose.event import InternalWorkerMessage, StreamData

            class FailingWorker:
                def __init__(self, *args, **kwargs):
                    pass

                def process_event(self, event, parameters=None):
                    return 1 / 0

            class Reducer:
                def __init__(self, *args, **kwargs):
                    self.publish = {}

                def process_result(self, result, parameters=None):
                    pass

            class Source:
                def get_source_generators(self):
                    def stream():
                        for n in range(300):
                            yield InternalWorkerMessage(
                                event_number=n, streams={"s": StreamData(typ="raw", frames=[b"x"])}
                            )
                    return [stream()]
            """
        )
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dranspose.cli.main",
            "replay",
            "-w",
            "payload:FailingWorker",
            "-r",
            "payload:Reducer",
            "-s",
            "payload:Source",
            "--no-progress",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.rstrip("\n").splitlines()
    assert lines[-1].startswith("replay: 300 events, 0 results, 300 failures, 0 lost in "), lines
    assert lines[-2].strip() == "... and 299 more events failed the same way (events 1-299)"
    assert done.stderr.count("Traceback (most recent call last)") == 1
    assert len(lines) < 40, f"{len(lines)} lines for one bug"
