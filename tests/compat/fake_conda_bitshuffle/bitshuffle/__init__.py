"""Stand-in for the conda package *bitshuffle-python*, the ``bitshuffle`` module facility
environments often have first on ``sys.path``. Its API differs from PyPI ``bitshuffle``:

* ``decompress_lz4(frame, shape, dtype)`` takes a whole bslz4 frame, 12-byte header included,
  and reads the block size from that header (there is no block-size argument);
* ``compress_lz4(array)`` returns a uint8 array holding the frame, header included.

Only for tests (tests/compat/test_bitshuffle_module.py): the work is done by the HDF5 bitshuffle
filter of hdf5plugin through an in-memory h5py file, not by dranspose's decoder. Calls in the
PyPI style (a fourth block-size argument, a headerless body) fail, as with the real package.
"""

from __future__ import annotations

import io
import struct

import h5py
import hdf5plugin
import numpy as np

__version__ = "0.0-conda-stand-in"
CONDA_API = True
_HEADER = struct.Struct(">QI")


def decompress_lz4(frame, shape, dtype):
    """Decode a bslz4 frame (12-byte header included) into an array of ``shape`` and ``dtype``."""
    raw = frame.buffer if hasattr(frame, "buffer") else frame
    raw = bytes(memoryview(raw).cast("B"))
    dtype = np.dtype(dtype)
    shape = tuple(int(n) for n in shape)
    nbytes, _block = _HEADER.unpack_from(raw, 0)
    if nbytes != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"frame header announces {nbytes} bytes, not {shape} of {dtype}")
    chunks = shape or (1,)
    with h5py.File(io.BytesIO(), "w") as fh:
        dset = fh.create_dataset(
            "x", shape=chunks, dtype=dtype, chunks=chunks, **hdf5plugin.Bitshuffle(cname="lz4")
        )
        dset.id.write_direct_chunk((0,) * len(chunks), raw)
        return dset[()].reshape(shape)


def compress_lz4(array):
    """A uint8 array holding the bslz4 frame of ``array``, 12-byte header included."""
    flat = np.ascontiguousarray(array).reshape(-1)
    with h5py.File(io.BytesIO(), "w") as fh:
        dset = fh.create_dataset(
            "x", data=flat, chunks=flat.shape, **hdf5plugin.Bitshuffle(cname="lz4")
        )
        _mask, chunk = dset.id.read_direct_chunk((0,))
    return np.frombuffer(chunk, dtype=np.uint8)
