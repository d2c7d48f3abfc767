"""Acceptance: every step of the analysis tutorial, copied verbatim, replays as the tutorial says.

``tests/tutorial/<step>/`` holds the tutorial's code blocks byte for byte (see its README). Each
test copies one step into a fresh folder next to the shipped capture and runs the tutorial's
command in a subprocess, like a user:

    LOG_LEVEL="DEBUG" dranspose replay -w "src.worker:TestWorker" -r "src.reducer:TestReducer" \
        -f data/dump_xrd.cbors [-p test_params.json]

The tutorial's printed values come from another capture, so the expected lines below keep the
tutorial's *format* and fill in values decoded from ``data/dump_xrd.cbors`` with cbor2/numpy only
(``raw_xrd_events``, ``xrd_images``), never with dranspose code.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import XRD_CAPTURE, raw_xrd_events, run_cli, xrd_images

STEPS = Path(__file__).resolve().parent / "tutorial"
REPLAY = [
    "replay",
    "-w",
    "src.worker:TestWorker",
    "-r",
    "src.reducer:TestReducer",
    "-f",
    "data/dump_xrd.cbors",
]
WORKERS = 2  # replay's default; the first event is broadcast to each of them
PROCESSED = Path("output") / "xrd_processed.h5"


@dataclass
class Run:
    folder: Path
    result: subprocess.CompletedProcess

    @property
    def lines(self) -> list[str]:
        return self.result.stderr.splitlines()


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """``replayed(step, *extra_args)``: the step's replay, run once per module and shared."""
    runs: dict[tuple[str, ...], Run] = {}

    def replay(step: str, *extra: str) -> Run:
        key = (step, *extra)
        if key not in runs:
            folder = tmp_path_factory.mktemp(step)
            shutil.copytree(STEPS / step / "src", folder / "src")
            for extra_file in (STEPS / step).glob("*.json"):
                shutil.copy(extra_file, folder / extra_file.name)
            (folder / "data").mkdir()
            shutil.copy(XRD_CAPTURE, folder / "data" / "dump_xrd.cbors")
            result = run_cli([*REPLAY, *extra], cwd=folder, env={"LOG_LEVEL": "DEBUG"})
            runs[key] = Run(folder, result)
        return runs[key]

    return replay


def header(frames: list[bytes]) -> dict:
    return json.loads(frames[0])


def image_events() -> dict[int, dict]:
    """Event number -> STINS header of the image events."""
    return {
        n: header(frames) for n, frames in raw_xrd_events() if header(frames)["htype"] == "image"
    }


def start_header() -> dict:
    _, frames = raw_xrd_events()[0]
    assert header(frames)["htype"] == "header"
    return header(frames)


def roi_means(till_x: int, from_y: int) -> np.ndarray:
    """What the file-writing reducer stores: row 0 (the header event) stays 0, then ROI means."""
    images = xrd_images()
    out = np.zeros(max(images) + 1, dtype=np.float32)
    for number, image in images.items():
        out[number] = np.mean(image[:till_x, from_y:])  # float64 mean cast to float32, as h5py does
    return out


# -- Worker and Reducer / Replaying captured data ---------------------------------------------


def test_skeleton_replays_without_errors(replayed):
    run = replayed("01_skeleton")
    assert run.result.returncode == 0, run.result.stderr


# -- Events ------------------------------------------------------------------------------------


def test_events_worker_logs_every_event_with_its_raw_frames(replayed):
    run = replayed("02_events")
    assert run.result.returncode == 0, run.result.stderr
    for number, frames in raw_xrd_events():
        line = (
            f"DEBUG:src.worker:event is event_number={number} "
            f"streams={{'xrd': StreamData(typ='STINS', frames={frames!r}, "
            f"length={len(frames)})}}"
        )
        assert line in run.lines, f"event {number}"


# -- Parse StreamData --------------------------------------------------------------------------


def test_parse_worker_logs_the_start_message(replayed):
    run = replayed("03_parse")
    start = start_header()
    line = (
        f"DEBUG:src.worker:acquisition is msg_number={start['msg_number']} "
        f"htype='header' filename={start['filename']!r}"
    )
    assert start["filename"] == "output/xrd.h5"
    assert line in run.lines


def test_parse_worker_logs_every_image_with_its_pixels(replayed):
    run = replayed("03_parse")
    images = xrd_images()
    for number, head in image_events().items():
        # the array repr spans several lines: look for the whole block as one piece of text
        block = (
            f"DEBUG:src.worker:acquisition is msg_number={head['msg_number']} "
            f"htype='image' frame={head['frame']} shape={head['shape']} "
            f"type={head['type']!r} compression={head['compression']!r} "
            f"data={images[number]!r}\n"
        )
        assert "\n" + block in "\n" + run.result.stderr, f"event {number}"


# -- Useful Map function -----------------------------------------------------------------------


def test_map_worker_logs_the_roi_intensity_of_every_image(replayed):
    run = replayed("04_map")
    assert run.result.returncode == 0, run.result.stderr
    expected = [
        "DEBUG:src.worker:intensity is {:f}".format(np.mean(image[:2, 8:]))  # noqa: UP032
        for _, image in sorted(xrd_images().items())
    ]
    assert [line for line in run.lines if line.startswith("DEBUG:src.worker:")] == expected


# -- Reduce Function ---------------------------------------------------------------------------


def result_line(number: int) -> re.Pattern:
    return re.compile(
        rf"DEBUG:src\.reducer:result is event_number={number} "
        rf"worker='development\d+' parameters_hash='[0-9a-f]{{64}}' "
        rf"payload=(?P<payload>.*)"
    )


def test_reducer_logs_each_worker_result(replayed):
    run = replayed("05_reduce")
    assert run.result.returncode == 0, run.result.stderr
    for number, image in xrd_images().items():
        matches = [m for m in map(result_line(number).fullmatch, run.lines) if m]
        assert len(matches) == 1, f"event {number}"
        mean = float(np.mean(image[:2, 8:]))
        # The tutorial shows ``payload=9.5``; numpy >= 2 prints np.float64 scalars as
        # ``np.float64(9.25)``, so both spellings of the same value are accepted.
        assert matches[0]["payload"] in (repr(mean), f"np.float64({mean!r})"), f"event {number}"


def test_reducer_is_not_called_when_the_worker_returns_none(replayed):
    run = replayed("05_reduce")
    silent = sorted({n for n, _ in raw_xrd_events()} - set(xrd_images()))
    assert silent == [0, 10]  # start and end messages
    for number in silent:
        assert not any(map(result_line(number).fullmatch, run.lines)), f"event {number}"


# -- Inter Event Analysis ----------------------------------------------------------------------
# The tutorial's reducer computes ``result.payload - self.evolution`` (a number minus the list),
# which raises TypeError for every result. Replay must report each failure and still finish.


def _spans(numbers: list[int]) -> str:
    """``2-9, 12`` for sorted numbers, worked out here (not with dranspose's RangeSet)."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and spans[-1][1] == n - 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def test_inter_event_reducer_failures_are_reported_once_then_counted(replayed):
    """One bug, one report: the first failing event in full, then the other events counted."""
    run = replayed("06_inter_event")
    images = sorted(xrd_images())
    first, rest = images[0], images[1:]
    failed = re.compile(r"\s*FAILED event (\d+): reducer process_result failed: TypeError: .*")
    shown = [int(m[1]) for m in map(failed.fullmatch, run.lines) if m]
    assert shown == [first]
    repeat = f"... and {len(rest)} more events failed the same way (events {_spans(rest)})"
    assert repeat in [line.strip() for line in run.lines]
    # the traceback is logged once, for the first failure
    assert sum(1 for line in run.lines if line.startswith("Traceback")) == 1


def test_inter_event_replay_completes_and_exits_1(replayed):
    run = replayed("06_inter_event")
    n_events, n_images = len(raw_xrd_events()), len(xrd_images())
    last = run.result.stderr.rstrip("\n").splitlines()[-1]
    assert re.match(
        rf"replay: {n_events} events, {n_images} results, {n_images} failures, 0 lost in ", last
    ), run.result.stderr
    assert run.result.returncode == 1


def test_inter_event_reducer_finish_still_runs(replayed):
    run = replayed("06_inter_event")
    # process_result pads self.evolution with None up to the event number *before* the failing
    # subtraction, so finish logs ``[0]`` followed by one None per image event.
    evolution = [0] + [None] * max(xrd_images())
    assert f"INFO:src.reducer:delta were {evolution!r}" in run.lines


# -- Write results to file: dict and dataclass workers -----------------------------------------


@pytest.mark.parametrize(
    "step", ["07_dict_worker", "08_dataclass", "09_write_file", "10_parameters"]
)
def test_start_message_reaches_every_worker(replayed, step):
    run = replayed(step)
    assert run.result.returncode == 0, run.result.stderr
    start = start_header()
    line = (
        f"INFO:src.worker:start message msg_number={start['msg_number']} "
        f"htype='header' filename={start['filename']!r}"
    )
    assert run.lines.count(line) == WORKERS


def test_dataclass_reducer_receives_one_start_per_worker(replayed):
    run = replayed("08_dataclass")
    assert run.lines.count("INFO:src.reducer:start message") == WORKERS


def test_file_writing_reducer_creates_the_reduced_dataset(replayed):
    run = replayed("09_write_file")
    assert run.result.returncode == 0, run.result.stderr
    with h5py.File(run.folder / PROCESSED) as fh:
        assert list(fh) == ["reduced"]
        assert fh["reduced"].dtype == np.float32
        assert fh["reduced"].shape == (10,)
        assert fh["reduced"].maxshape == (None,)


def test_file_writing_reducer_stores_the_roi_means(replayed):
    run = replayed("09_write_file")
    with h5py.File(run.folder / PROCESSED) as fh:
        np.testing.assert_array_equal(fh["reduced"][:], roi_means(2, 8))


# -- Processing Parameters ---------------------------------------------------------------------


def test_parameter_step_reducer_is_the_file_reducer_plus_the_fragment():
    """The tutorial shows the parameter datasets as a fragment; the step inserts it in place."""
    before = (STEPS / "09_write_file" / "src" / "reducer.py").read_text().splitlines()
    after = (STEPS / "10_parameters" / "src" / "reducer.py").read_text().splitlines()
    at = next(i for i, line in enumerate(before) if '.create_dataset("reduced"' in line) + 1
    indent = " " * 16
    assert (
        after
        == before[:at]
        + [
            indent + 'self._fh.create_dataset("till_x", data=parameters["till_x"].value)',
            indent + 'self._fh.create_dataset("from_y", data=parameters["from_y"].value)',
        ]
        + before[at:]
    )


def test_parameter_file_sets_the_roi(replayed):
    run = replayed("10_parameters", "-p", "test_params.json")
    assert run.result.returncode == 0, run.result.stderr
    with h5py.File(run.folder / PROCESSED) as fh:
        assert list(fh) == ["from_y", "reduced", "till_x"]
        np.testing.assert_array_equal(fh["reduced"][:], roi_means(3, 7))


@pytest.mark.parametrize(
    "args, till_x, from_y",
    [
        (["-p", "test_params.json"], 3, 7),
        ([], 2, 8),
    ],
    ids=["parameter-file", "defaults"],
)
def test_parameters_are_stored_as_int64_scalars(replayed, args, till_x, from_y):
    run = replayed("10_parameters", *args)
    assert run.result.returncode == 0, run.result.stderr
    with h5py.File(run.folder / PROCESSED) as fh:
        for name, value in (("till_x", till_x), ("from_y", from_y)):
            assert fh[name].shape == () and fh[name].dtype == np.int64, name
            assert fh[name][()] == value, name


def test_without_parameter_file_the_default_roi_is_used(replayed):
    run = replayed("10_parameters")
    assert run.result.returncode == 0, run.result.stderr
    with h5py.File(run.folder / PROCESSED) as fh:
        np.testing.assert_array_equal(fh["reduced"][:], roi_means(2, 8))
