"""What the tutorial pipeline (examples/tutorial) computes, from numpy alone."""

from __future__ import annotations

import numpy as np

from tests.conftest import xrd_images


def expected_reduced(till_x: int, from_y: int) -> np.ndarray:
    """Row 0 is the header event (no image, stays 0); rows 1..9 the ROI means, from numpy."""
    images = xrd_images()
    out = np.zeros(max(images) + 1, dtype=np.float32)
    for number, image in images.items():
        out[number] = np.mean(image[:till_x, from_y:])
    return out
