"""The tutorial's "Writing the diffractograms" reducer, for the pyFAI worker.

Writes ``<raw>_processed.h5`` exactly like :class:`~.reducer.TestReducer` (``reduced``, ``till_x``,
``from_y``, provenance attributes) and adds:

* ``radial_axis``: the centres of the *q* bins in nm^-1, from the first start message;
* ``I``: one row of integrated intensities per event (float32, ``events x bins``), grown to the
  largest event number seen. Rows of events without an image (the series header) stay zero.

Results may arrive in any order and the start message once per worker; the file is created on the
first start message only.
"""

from __future__ import annotations

import logging

import numpy as np

from .azint_worker import AzintResult, AzintStart
from .reducer import TestReducer

logger = logging.getLogger(__name__)


class AzintReducer(TestReducer):
    def __init__(self, *args, state=None, **kwargs):
        super().__init__(*args, state=state, **kwargs)
        self._Iset = None

    def _open_azint(self, radial_axis):
        radial_axis = np.asarray(radial_axis)
        number_bins = len(radial_axis)
        self._Iset = self._fh.create_dataset(
            "I", (0, number_bins), maxshape=(None, number_bins), dtype=np.float32
        )
        self._fh.create_dataset("radial_axis", data=radial_axis)

    def process_result(self, result, parameters=None):
        payload = result.payload
        if isinstance(payload, AzintStart):
            logger.info("start message")
            if self._fh is None and payload.filename:
                self._open(payload.filename, parameters)
                self._open_azint(payload.radial_axis)
            return
        # The ROI mean, its evolution and the "reduced" dataset are handled as in the tutorial.
        super().process_result(result, parameters)
        if isinstance(payload, AzintResult) and self._Iset is not None:
            oldsize = self._Iset.shape[0]
            self._Iset.resize(max(1 + result.event_number, oldsize), axis=0)
            self._Iset[result.event_number] = payload.integrated

    def finish(self, parameters=None):
        super().finish(parameters)
        self._Iset = None
