"""The settled-event account as ranges: the same answers as a plain set, in memory that grows
with the gaps, and a 10^7-event scan accounted within 100 MB."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.core.ranges import RangeSet


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60), max_size=80), st.integers(0, 70))
def test_rangeset_answers_like_a_set(numbers, total):
    ranges, reference = RangeSet(), set()
    for number in numbers:
        assert ranges.add(number) == (number not in reference)
        reference.add(number)
        assert len(ranges) == len(reference)
    for number in range(-2, 65):
        assert (number in ranges) == (number in reference)
    first_missing = next(n for n in range(len(reference) + 1) if n not in reference)
    assert ranges.first_missing() == first_missing
    expected, run = [], None
    for number in range(total):
        if number in reference:
            run = None
        elif run is not None and run[1] == number - 1:
            run[1] = number
        else:
            run = [number, number]
            expected.append(run)
    assert [list(r) for r in ranges.missing(total)] == expected
    # ranges never touch: their count is the number of maximal runs of members
    runs = sum(1 for n in reference if n - 1 not in reference)
    assert ranges.ranges == runs


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("range"), st.integers(0, 60), st.integers(0, 8)),
            st.tuples(st.just("discard"), st.integers(-2, 70), st.just(0)),
        ),
        max_size=80,
    )
)
def test_ranges_added_and_numbers_discarded_answer_like_a_set(operations):
    ranges, reference = RangeSet(), set()
    for operation, number, length in operations:
        if operation == "discard":
            assert ranges.discard(number) == (number in reference)
            reference.discard(number)
        else:
            span = set(range(number, number + length))
            if span & reference:
                try:
                    ranges.add_range(number, number + length)
                except ValueError as exc:
                    assert "overlaps numbers already in the set" in str(exc)
                else:
                    raise AssertionError("an overlapping range was added")
                continue
            ranges.add_range(number, number + length)
            reference |= span
        assert len(ranges) == len(reference)
        assert list(ranges) == sorted(reference)
        assert ranges.ranges == sum(1 for n in reference if n - 1 not in reference)


ACCOUNT_SCRIPT = """
import sys
from dranspose.core.coordination import ScanInfo
from dranspose.core.protocol import WorkerName
from dranspose.core.scan_account import ScanAccount
from dranspose.core.triggermap import TriggerMap

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096

total, first, second = (int(a) for a in sys.argv[1:4])
workers = [WorkerName(f"w{i}") for i in range(4)]
scan = ScanInfo(scan_id="s", n_events=total, workers=list(workers), streams=["eiger"])
run = ScanAccount(scan, TriggerMap.simple(["eiger"], total - 2), None,
              {w: {"generic"} for w in workers})
marks = [rss()]
done = 0
for stop in (first, second):
    while done < stop:
        for worker in workers:
            batch = run.released(run.assigner.request(worker, 10_000))
            # the last worker's batch completes first: reports interleave, gaps open and close
            for assignment in reversed(batch):
                for name in {w for names in assignment.streams.values() for w in names}:
                    run.completed(name, assignment.event_number)
            done += len(batch)
    marks.append(rss())
print(done, run.progress.completed, run.confirmed_below, run.accounted.ranges, *marks)
"""


def test_ten_million_event_account_does_not_grow_with_events():
    """A 10^7-event scan: the account's memory depends on its gaps, not on the events done.

    Completing every event takes minutes in CI, so this completes 1.2 million of them in
    batches of 10,000 per worker (40,000 in flight) and checks that the second million adds (almost) nothing; as
    a set of ints the account grew by about 60 bytes per event (60 MB per million).
    ``bench/controller_account.py`` runs the whole 10^7 events and prints the peak.
    """
    import subprocess
    import sys

    total = 10_000_000
    out = subprocess.run(
        [sys.executable, "-c", ACCOUNT_SCRIPT, str(total), "200000", "1200000"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout.split()
    done, completed, confirmed, ranges, start, mid, end = (int(v) for v in out)
    assert done >= 1_200_000 and completed == done
    assert confirmed == done and ranges == 1
    assert end - start < 100 * 2**20, f"account grew {(end - start) / 2**20:.0f} MB"
    assert end - mid < 8 * 2**20, f"the second million events added {(end - mid) / 2**20:.1f} MB"
