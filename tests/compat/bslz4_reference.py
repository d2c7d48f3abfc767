"""Reference decoders for compressed detector frames, independent of dranspose and of the C
libraries it uses: LZ4 blocks come from the ``lz4`` package, the bit transpose is numpy, and the
HDF5 variant reads the frame back through the HDF5 filters of ``hdf5plugin``.

A frame is an 8-byte big-endian count of uncompressed bytes, a 4-byte big-endian block size in
bytes, then blocks of a 4-byte big-endian compressed length and the compressed bytes. For bslz4 a
block holds ``n`` elements (a multiple of 8) bit-transposed: the ``8 * itemsize`` bit planes in
turn, each ``n / 8`` bytes with element ``e`` in bit ``e % 8`` of byte ``e // 8``; the last
``count % 8`` elements follow the blocks as they are.
"""

from __future__ import annotations

import io
import struct

import lz4.block
import numpy as np


def _default_block(itemsize: int) -> int:
    return max(8192 // itemsize // 8 * 8, 128)


def unshuffle(planes: bytes, count: int, itemsize: int) -> bytes:
    """Undo the bit transpose of one block of ``count`` elements of ``itemsize`` bytes."""
    matrix = np.frombuffer(planes, dtype=np.uint8).reshape(8 * itemsize, count // 8)
    bits = np.unpackbits(matrix, axis=1, bitorder="little")  # (bit planes, elements)
    per_element = bits.reshape(itemsize, 8, count).transpose(2, 0, 1)  # (element, byte, bit)
    return np.packbits(per_element, axis=2, bitorder="little").tobytes()


def decode_bslz4(frame: bytes, dtype: np.dtype) -> np.ndarray:
    """The flat array of a whole bslz4 frame; asserts the frame is exactly used up."""
    frame = bytes(frame)
    itemsize = np.dtype(dtype).itemsize
    nbytes, block_bytes = struct.unpack_from(">QI", frame, 0)
    count = nbytes // itemsize
    block = block_bytes // itemsize or _default_block(itemsize)
    out = bytearray()
    pos, done = 12, 0
    while count - done >= 8:
        n = min(block, (count - done) // 8 * 8)
        (length,) = struct.unpack_from(">I", frame, pos)
        planes = lz4.block.decompress(
            frame[pos + 4 : pos + 4 + length], uncompressed_size=n * itemsize
        )
        out += unshuffle(planes, n, itemsize)
        pos += 4 + length
        done += n
    tail = (count - done) * itemsize
    out += frame[pos : pos + tail]
    assert pos + tail == len(frame), (pos, tail, len(frame))
    assert len(out) == nbytes
    return np.frombuffer(bytes(out), dtype=dtype)


def decode_lz4(frame: bytes, dtype: np.dtype) -> np.ndarray:
    """The flat array of a whole frame of the HDF5 LZ4 filter's layout ("lz4")."""
    frame = bytes(frame)
    nbytes, block_bytes = struct.unpack_from(">QI", frame, 0)
    out = bytearray()
    pos = 12
    while len(out) < nbytes:
        n = min(block_bytes, nbytes - len(out))
        (length,) = struct.unpack_from(">I", frame, pos)
        block = frame[pos + 4 : pos + 4 + length]
        out += block if length == n else lz4.block.decompress(block, uncompressed_size=n)
        pos += 4 + length
    assert pos == len(frame)
    return np.frombuffer(bytes(out), dtype=dtype)


def hdf5_filter(compression: str) -> dict:
    """The h5py dataset options of the HDF5 filter whose chunks have ``compression``'s layout."""
    import hdf5plugin

    if compression == "lz4":
        return dict(hdf5plugin.LZ4())
    return dict(hdf5plugin.Bitshuffle(cname={"bslz4": "lz4", "bszstd": "zstd"}[compression]))


def hdf5_decode(frame: bytes, compression: str, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Decode a frame with the HDF5 filter: write it as the only chunk, read the dataset back."""
    import h5py

    shape = tuple(shape) or (1,)
    with h5py.File(io.BytesIO(), "w") as fh:
        dset = fh.create_dataset(
            "x", shape=shape, dtype=dtype, chunks=shape, **hdf5_filter(compression)
        )
        dset.id.write_direct_chunk((0,) * len(shape), bytes(frame))
        return dset[()]


def hdf5_encode(array: np.ndarray, compression: str) -> bytes:
    """The chunk the HDF5 filter writes for ``array`` (at least 1-d)."""
    import h5py

    with h5py.File(io.BytesIO(), "w") as fh:
        dset = fh.create_dataset("x", data=array, chunks=array.shape, **hdf5_filter(compression))
        mask, chunk = dset.id.read_direct_chunk((0,) * array.ndim)
    assert mask == 0
    return bytes(chunk)
