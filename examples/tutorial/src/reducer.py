"""The analysis tutorial's reducer: writes the ROI intensities to ``<raw>_processed.h5``.

Results may arrive for any event in any order, and the start message once per worker, so the
file is opened on the first start message only and the dataset grows to the largest event seen.
"""

import logging
import os

import h5py
import numpy as np

from .worker import Result, Start

logger = logging.getLogger(__name__)


class TestReducer:
    def __init__(self, *args, state=None, **kwargs):
        self.state = state
        self.evolution = [0]
        self.last_value = 0
        self._fh = None
        self._dset = None
        self.publish = {"reduced": []}

    def _open(self, filename, parameters):
        name, ext = os.path.splitext(filename)
        dest_filename = f"{name}_processed{ext}"
        os.makedirs(os.path.dirname(dest_filename) or ".", exist_ok=True)
        self._fh = h5py.File(dest_filename, "w")
        self._dset = self._fh.create_dataset(
            "reduced", (0,), maxshape=(None,), dtype=np.float32
        )
        self._fh.create_dataset("till_x", data=parameters["till_x"].value)
        self._fh.create_dataset("from_y", data=parameters["from_y"].value)
        if self.state is not None:
            # Provenance: which framework and which payload build produced this file.
            self._fh.attrs["dranspose_version"] = self.state.dranspose_version
            meta = self.state.mapreduce_version
            if meta is not None:
                for key, value in meta.model_dump().items():
                    if value is not None:
                        self._fh.attrs[f"mapreduce_{key}"] = str(value)

    def process_result(self, result, parameters=None):
        if isinstance(result.payload, Start):
            logger.info("start message")
            if self._fh is None and result.payload.filename:
                self._open(result.payload.filename, parameters)
        elif isinstance(result.payload, Result):
            intensity = result.payload.intensity
            if result.event_number > len(self.evolution) - 1:
                self.evolution += [None] * (1 + result.event_number - len(self.evolution))
            self.evolution[result.event_number] = intensity - self.last_value
            self.last_value = intensity
            reduced = self.publish["reduced"]
            if len(reduced) <= result.event_number:
                # NaN, not None, for events without a value yet: the list stays a float array
                # for h5pyd and silx, and the JSON API still shows them as null
                reduced.extend([float("nan")] * (1 + result.event_number - len(reduced)))
            reduced[result.event_number] = intensity
            if self._dset is not None:
                oldsize = self._dset.shape[0]
                self._dset.resize(max(1 + result.event_number, oldsize), axis=0)
                self._dset[result.event_number] = intensity

    def finish(self, parameters=None):
        logger.info("delta were %s", self.evolution)
        if self._fh is not None:
            self._fh.close()
            self._fh = None
