"""The tutorial's "Heavy Processing" worker, with pyFAI instead of ``azint``.

Besides the mean of the region of interest (exactly as :class:`~.worker.TestWorker`, with the same
``till_x``/``from_y`` parameters), every image is azimuthally integrated into 5 bins of the
scattering vector *q*. The worker announces the bin centres once per series in the start message
and sends the integrated intensities with every image.

pyFAI is an optional extra of this project: ``pip install -e ".[examples]"``.

Integration settings, and how they differ from the tutorial's ``azint`` call:

* geometry: pixels of 0.75 µm on a 10 x 10 detector, sample-detector distance of 30 pixels, point
  of normal incidence at (5, 5) pixels, no rotations, wavelength 1 Å;
* radial unit ``"q_nm^-1"``: *q* in inverse nanometres (azint's ``unit='q'`` is in inverse
  ångström, so the same axis is 10 times larger here);
* solid-angle correction on;
* method ``("full", "csr", "cython")``: every pixel is split exactly over the bins its area
  covers (azint approximates this with 4 x 4 sub-pixels), the resulting sparse matrix is built
  once and reused for every image, and the CPU (Cython) code is used. This is deterministic: the
  same image always gives bit-identical results, unlike OpenCL back-ends whose results may vary
  with the device. pyFAI returns the *normalised* intensity of each bin (signal divided by the
  summed solid angle of the pixel fractions in it), not a sum.

The results are therefore comparable with azint's but not identical: besides the unit, pyFAI's
automatic *q* range spans the pixel corners (here 0 to the farthest corner) while azint's spans
the pixel centres, so the bin edges differ; the two may also normalise the intensities differently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from dranspose.data.stream1 import Stream1Data, Stream1Start
from dranspose.middlewares.stream1 import parse as parse_stins

from .worker import Result, Start, TestWorker

logger = logging.getLogger(__name__)

PIXEL_SIZE = 0.75e-6
"""Edge of a (square) pixel in metres."""
DETECTOR_SHAPE = (10, 10)
WAVELENGTH = 1e-10
"""Metres (1 Å)."""
NUMBER_BINS = 5
RADIAL_UNIT = "q_nm^-1"
METHOD = ("full", "csr", "cython")
"""pyFAI's (pixel splitting, algorithm, implementation)."""

MISSING_PYFAI = (
    "the azimuthal-integration example needs pyFAI, which is an optional extra of dranspose; "
    'install it with: pip install -e ".[examples]"  (from the dranspose source folder)'
)


@dataclass
class AzintStart(Start):
    """Start of a series: where the raw data goes, and the centres of the *q* bins (nm^-1)."""

    radial_axis: np.ndarray


@dataclass
class AzintResult(Result):
    """One image: the ROI mean and its azimuthally integrated intensities, one per *q* bin."""

    integrated: np.ndarray


def _import_pyfai():
    """pyFAI's integrator and detector classes, or an ImportError that says what to install."""
    try:
        import pyFAI  # noqa: F401
        from pyFAI.detectors import Detector
    except ImportError as exc:
        raise ImportError(MISSING_PYFAI) from exc
    try:
        from pyFAI.integrator.azimuthal import AzimuthalIntegrator
    except ImportError:
        # pyFAI before 2024.10 keeps the class in its old module.
        from pyFAI.azimuthalIntegrator import AzimuthalIntegrator
    return AzimuthalIntegrator, Detector


class AzintWorker(TestWorker):
    """ROI mean plus azimuthal integration; parameters are inherited from ``TestWorker``."""

    def __init__(self, *args, **kwargs):
        AzimuthalIntegrator, Detector = _import_pyfai()
        detector = Detector(pixel1=PIXEL_SIZE, pixel2=PIXEL_SIZE, max_shape=DETECTOR_SHAPE)
        self.ai = AzimuthalIntegrator(
            dist=30 * PIXEL_SIZE,
            poni1=5 * PIXEL_SIZE,
            poni2=5 * PIXEL_SIZE,
            rot1=0.0,
            rot2=0.0,
            rot3=0.0,
            detector=detector,
            wavelength=WAVELENGTH,
        )
        # The bin centres depend only on geometry, bin count and method, not on the pixel values,
        # so a blank image gives them before the first real one arrives (and builds the sparse
        # matrix that every later image reuses).
        self.radial_axis = self._integrate(np.zeros(DETECTOR_SHAPE, dtype=np.float32)).radial

    def _integrate(self, image):
        return self.ai.integrate1d(
            image,
            NUMBER_BINS,
            unit=RADIAL_UNIT,
            correctSolidAngle=True,
            method=METHOD,
        )

    def process_event(self, event, *args, parameters=None, **kwargs):
        if "xrd" not in event.streams:
            return None
        acq = parse_stins(event.streams["xrd"])
        if isinstance(acq, Stream1Start):
            logger.info("start message %s", acq)
            return AzintStart(acq.filename, self.radial_axis)
        if isinstance(acq, Stream1Data):
            roi = acq.data[: parameters["till_x"].value, parameters["from_y"].value :]
            intensity = float(np.mean(roi))
            integrated = self._integrate(acq.data).intensity
            logger.debug("intensity %f, I %s over q %s", intensity, integrated, self.radial_axis)
            return AzintResult(intensity, integrated)
        return None
