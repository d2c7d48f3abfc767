"""The pyFAI azimuthal-integration example (examples/tutorial/src/azint_*.py), end to end.

The replayed output file is checked against pyFAI called directly on images decoded from the
capture with plain cbor2 and numpy, without any dranspose code.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import cbor2
import h5py
import numpy as np
import pytest

pytest.importorskip("pyFAI", reason='pyFAI is an optional extra: pip install -e ".[examples]"')

from dranspose.tools.replay import replay

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "data" / "dump_xrd.cbors"
TUTORIAL = ROOT / "examples" / "tutorial"

# The geometry and integration settings the example documents, restated independently here.
PIXEL = 0.75e-6
SHAPE = (10, 10)
BINS = 5
UNIT = "q_nm^-1"
METHOD = ("full", "csr", "cython")


def _forget_src() -> None:
    for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
        del sys.modules[name]


@pytest.fixture
def azint_dir(tmp_path, monkeypatch):
    """A copy of the tutorial's src/ as the working directory, with ``src`` freshly importable."""
    folder = tmp_path / "tutorial"
    shutil.copytree(TUTORIAL / "src", folder / "src")
    monkeypatch.chdir(folder)
    _forget_src()
    yield folder
    _forget_src()


def _capture_images() -> dict[int, np.ndarray]:
    """Event number -> image, decoded with cbor2 and numpy only."""
    blob = CAPTURE.read_bytes()
    stream = io.BytesIO(blob)
    images = {}
    while stream.tell() < len(blob):
        item = cbor2.load(stream)
        assert item.tag == 42877
        number, streams = item.value[0], item.value[1]
        stream_tag = streams["xrd"]
        assert stream_tag.tag == 42878
        typ, frames = stream_tag.value
        assert typ == "STINS"
        header = json.loads(bytes(frames[0]))
        if header["htype"] == "image":
            images[number] = np.frombuffer(bytes(frames[1]), dtype=header["type"]).reshape(
                header["shape"]
            )
    return images


def _integrator():
    try:
        from pyFAI.integrator.azimuthal import AzimuthalIntegrator
    except ImportError:
        from pyFAI.azimuthalIntegrator import AzimuthalIntegrator
    from pyFAI.detectors import Detector

    detector = Detector(pixel1=PIXEL, pixel2=PIXEL, max_shape=SHAPE)
    return AzimuthalIntegrator(
        dist=30 * PIXEL,
        poni1=5 * PIXEL,
        poni2=5 * PIXEL,
        rot1=0,
        rot2=0,
        rot3=0,
        detector=detector,
        wavelength=1e-10,
    )


def test_azint_example_writes_pyfai_diffractograms(azint_dir):
    images = _capture_images()
    assert sorted(images) == list(range(1, 10))

    summary = replay(
        "src.azint_worker:AzintWorker",
        "src.azint_reducer:AzintReducer",
        [str(CAPTURE)],
        None,
        None,
    )
    assert summary.ok, [f.describe() for f in summary.failures]
    assert summary.events == 11

    ai = _integrator()
    expected = {
        n: ai.integrate1d(img, BINS, unit=UNIT, correctSolidAngle=True, method=METHOD)
        for n, img in images.items()
    }

    out = azint_dir / "output" / "xrd_processed.h5"
    assert out.is_file()
    with h5py.File(out, "r") as fh:
        assert int(fh["till_x"][()]) == 2
        assert int(fh["from_y"][()]) == 8

        reduced = fh["reduced"][()]
        assert reduced.shape == (10,)
        assert reduced[0] == 0
        for n, img in images.items():
            assert reduced[n] == pytest.approx(np.mean(img[:2, 8:]))

        radial = fh["radial_axis"][()]
        assert radial.shape == (BINS,)
        for result in expected.values():
            np.testing.assert_allclose(radial, result.radial, rtol=1e-12)
        assert np.all(np.diff(radial) > 0)

        intensity = fh["I"]
        assert intensity.dtype == np.float32
        assert intensity.shape == (10, BINS)
        assert intensity.maxshape == (None, BINS)
        rows = intensity[()]
    np.testing.assert_array_equal(rows[0], np.zeros(BINS, dtype=np.float32))
    for n, result in expected.items():
        np.testing.assert_allclose(
            rows[n],
            np.asarray(result.intensity, dtype=np.float32),
            rtol=1e-6,
            err_msg=f"event {n}",
        )
        # Non-trivial data: every bin receives intensity from this image.
        assert np.all(rows[n] > 0)


def test_azint_worker_explains_missing_pyfai(azint_dir, monkeypatch):
    """Without pyFAI, the worker tells the user which extra to install."""
    monkeypatch.setitem(sys.modules, "pyFAI", None)  # makes ``import pyFAI`` raise ImportError
    from src.azint_worker import AzintWorker

    with pytest.raises(ImportError, match=r'pip install -e "\.\[examples\]"'):
        AzintWorker()
