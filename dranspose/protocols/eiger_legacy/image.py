"""The pixels of a parsed EIGER legacy image: :class:`EigerImageArray`, a numpy array that also
answers the original dranspose's ``data`` dict.

A class of its own beside the packet models (:mod:`dranspose.protocols.eiger_legacy.packets`,
which re-exports it for ``dranspose.data.eiger_legacy``): it is numpy machinery (views, copies,
pickles, ufunc results), not message structure. The parser makes one per image with
:meth:`EigerImageArray.described`.
"""

from __future__ import annotations

import copy
from collections.abc import ItemsView, KeysView, ValuesView
from typing import Any, Optional, Union, cast

import numpy as np

_NO_DESCRIPTOR = "has no EIGER descriptor"


class EigerImageArray(np.ndarray):
    """A parsed EIGER image: the decoded pixels, which also answer the original's ``data`` dict.

    For every array use it is the image (numpy order, dtype ``type`` in the encoding's byte
    order, read-only exactly when the plain array would be): shape, dtype, indexing by ints,
    slices, masks, ufuncs, ``np.testing``. String keys read what the original dranspose 0.2.0 put
    in ``image.data``, a dict of the ``"dimage_d-1.0"`` descriptor plus the raw frame:
    ``data["buffer"]`` (the data frame as ``bytes``, compressed as received), ``data["shape"]``
    (Dectris' ``[x, y]`` list), ``data["type"]``, ``data["encoding"]``, ``data["htype"]``,
    ``data["size"]`` and any other key the descriptor had; ``keys()``, ``values()``,
    ``items()``, ``get(key, default)``, ``"buffer" in data`` and ``dict(data)`` work as on that
    dict (so ``len`` and iteration stay the array's: rows). A missing key raises ``KeyError``.

    Only the image itself carries the descriptor, since derived arrays are not what it
    describes: indexing and slicing (``data[0]``, ``data[mask]``), ufuncs and reductions
    (``data + 1``, ``data.sum(axis=0)``, ``data == 0``) give plain ``ndarray`` results or numpy
    scalars, as for any array; the other views and conversions numpy makes of a subclass
    (``reshape``, ``.T``, ``view()``, ``astype``, ``flatten``) stay of this class but without
    descriptor: string keys on them raise ``KeyError``, ``keys()`` is empty. Copies of the whole
    image (``copy()``, :func:`copy.copy`, :func:`copy.deepcopy`) and pickles keep it, raw frame
    included (so a payload returning ``packet.data`` itself sends the frame along; return
    ``np.asarray(packet.data)``, a plain view, to send the pixels alone). In-place operations
    (``data += 1``) keep the object and its descriptor, which still describes the received frame.

    The descriptor and frame are set by :meth:`described`; an array made otherwise (``view``
    of another array, ``np.empty_like``) has none.
    """

    _descriptor: Optional[dict[str, Any]]
    _frame: Optional[Union[bytes, memoryview]]

    @classmethod
    def described(
        cls,
        array: np.ndarray,
        descriptor: dict[str, Any],
        frame: Union[bytes, memoryview],
    ) -> EigerImageArray:
        """``array`` (a view of it) with the ``"dimage_d-1.0"`` ``descriptor`` and the raw data
        ``frame`` it was decoded from; the frame is copied to ``bytes`` on the first read of
        ``["buffer"]`` only if it is not ``bytes`` already."""
        return cls._attach(array.view(cls), descriptor, frame)

    def __array_finalize__(self, obj: Any) -> None:
        self._descriptor = None
        self._frame = None

    def _attach(
        self,
        descriptor: Optional[dict[str, Any]],
        frame: Optional[Union[bytes, memoryview]],
    ) -> EigerImageArray:
        """Sets the descriptor and raw frame of a fresh view or copy and returns it: the one
        place they are set besides numpy's hooks. Called through the class
        (``EigerImageArray._attach(clone, ...)``), since the array is not ``self`` there."""
        self._descriptor = descriptor
        self._frame = frame
        return self

    @property
    def descriptor(self) -> Optional[dict[str, Any]]:
        """The original's ``data`` dict (descriptor and ``"buffer"``), ``None`` on a derived
        array."""
        if self._descriptor is None:
            return None
        return {**self._descriptor, "buffer": self._buffer()}

    def _buffer(self) -> bytes:
        frame = self._frame
        if type(frame) is not bytes:
            frame = self._frame = bytes(cast(memoryview, frame))
        return frame

    def _lookup(self, key: str) -> Any:
        descriptor = self._descriptor
        if descriptor is None:
            raise KeyError(
                f"{key!r}: this array {_NO_DESCRIPTOR}; only the parsed image itself "
                f"(packet.data, or a copy of it) carries the descriptor and raw frame, not "
                f"arrays derived from it"
            )
        if key == "buffer":
            return self._buffer()
        try:
            return descriptor[key]
        except KeyError:
            known = ", ".join(repr(name) for name in [*descriptor, "buffer"])
            raise KeyError(f"{key!r}: the EIGER image descriptor has {known}") from None

    def __getitem__(self, key: Any) -> Any:
        if type(key) is str:
            return self._lookup(key)
        item = super().__getitem__(key)
        return item.view(np.ndarray) if isinstance(item, EigerImageArray) else item

    def __array_wrap__(self, array: Any, context: Any = None, return_scalar: bool = False) -> Any:
        # ufunc and reduction results are numbers computed from the image, not the image: left
        # as numpy made them (a plain array), an explicit ``out=`` array (``image += 1``) as is
        if return_scalar:
            return array[()]
        return array

    def __setitem__(self, key: Any, value: Any) -> None:
        if type(key) is str:
            raise TypeError(
                f"cannot set {key!r}: the EIGER descriptor of a parsed image is read-only"
            )
        super().__setitem__(key, value)

    def __contains__(self, key: Any) -> bool:
        if type(key) is str:
            return self._descriptor is not None and (key == "buffer" or key in self._descriptor)
        return bool(super().__contains__(key))

    def _mapping(self) -> dict[str, Any]:
        return self.descriptor or {}

    def keys(self) -> KeysView[str]:
        """The original's ``data`` keys: the descriptor's, then ``"buffer"``; empty on a
        derived array."""
        return self._mapping().keys()

    def values(self) -> ValuesView[Any]:
        """The original's ``data`` values, in the order of :meth:`keys`."""
        return self._mapping().values()

    def items(self) -> ItemsView[str, Any]:
        """The original's ``data`` items, in the order of :meth:`keys`."""
        return self._mapping().items()

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]`` for a descriptor key or ``"buffer"``, else ``default``."""
        return self._lookup(key) if type(key) is str and key in self else default

    def copy(self, order: Any = "C") -> EigerImageArray:
        """A copy of the whole image, descriptor and raw frame included."""
        clone = cast(EigerImageArray, super().copy(order))
        return EigerImageArray._attach(clone, self._descriptor, self._frame)

    def __copy__(self) -> EigerImageArray:
        return self.copy()

    def __deepcopy__(self, memo: Any) -> EigerImageArray:
        descriptor = self._descriptor
        if descriptor is not None:
            descriptor = copy.deepcopy(descriptor, memo)
        return EigerImageArray._attach(self.copy(), descriptor, self._frame)

    def __reduce__(self) -> Any:
        rebuild, args, state = cast(tuple[Any, Any, Any], super().__reduce__())
        extra = None if self._descriptor is None else (self._descriptor, self._buffer())
        return rebuild, args, (state, extra)

    def __setstate__(self, state: Any) -> None:
        array_state, extra = state
        super().__setstate__(array_state)
        self._descriptor, self._frame = extra if extra is not None else (None, None)
