"""Serve a live ``publish`` tree as a read-only HDF5 domain over the HDF REST API.

Scientists open the reducer's results with the HDF Group's client or with silx::

    f = h5pyd.File("http://host:port/", "r")     # h5pyd 0.18 ... 1.x
    silx view http://host:port/

:func:`create_h5_router` returns a FastAPI router answering the requests h5pyd makes (the
subset of the HDF REST API a reader needs). Mount it at the root of the app
(``app.include_router(router)``) so the URL above works; under a prefix, clients must pass
``endpoint="http://host:port/prefix"`` and the domain ``"/"`` instead. The ``domain`` query
parameter is accepted and ignored: every domain name shows the same tree.

The tree
--------
``get_tree()`` returns the ``publish`` tree; ``get_lock()`` returns a context manager held while
the tree is read (the reducer's ``publish_rlock``), so a reader never sees a half-updated array:
every value is copied while the lock is held and serialised after it is released.

* A dict (any ``Mapping``) is a group; its members are listed in insertion order.
  Non-string keys are shown as ``str(key)`` (a string key of the same name wins); keys that are
  empty, ``"."``, ``".."`` or contain ``"/"`` cannot be HDF5 link names and are not listed,
  nor are ``None`` values.
* Everything else is a dataset: numpy arrays and scalars, Python ``bool``/``int``/``float``/
  ``complex``, ``str`` (a variable-length UTF-8 string), ``bytes`` (a fixed-length string),
  lists/tuples of numbers or strings (converted with ``numpy.asarray``) and
  :class:`GrowingBuffer`. Numbers go out as little-endian HDF5 types, ``bool`` as h5py's
  ``FALSE``/``TRUE`` enum, complex numbers as h5py's ``r``/``i`` compound, structured arrays as
  compounds (without padding), numpy unicode (``U``), datetime and timedelta arrays as
  variable-length UTF-8 strings. Anything else (ragged lists, arbitrary objects, structured
  arrays with complex or unicode fields) is shown as a scalar string holding its ``repr``, as
  the JSON API does.
* Attributes, by convention: a dict stored under ``"<name>_attrs"`` next to the key ``<name>``
  holds the attributes of member ``<name>``, and a dict under ``"_attrs"`` inside a group holds
  the group's own attributes (for a sub-group both apply; the sibling ``<name>_attrs`` wins on
  a clash). These keys are not listed as members; an ``"x_attrs"`` dict with no key ``"x"``
  next to it is an ordinary group. Attribute values follow the dataset rules above; dicts and
  ``None`` inside an attribute dict are skipped::

      publish = {
          "_attrs": {"NX_class": "NXentry", "default": "image"},   # the root group's
          "image": np.zeros((100, 100), np.uint16),
          "image_attrs": {"units": "counts", "interpretation": "image"},
      }

Object ids are derived from the path: ``g-``/``d-`` and a 128-bit hash of the member names,
formatted like a UUID (h5pyd 1.x rejects ids of any other form, so a reversible encoding of the
path does not fit). An id is found again from a bounded cache of the ids handed out, or else by
walking the tree: ids stay valid across server restarts and no id table follows the tree.

The modules
-----------
One job each: :mod:`.buffer` (:class:`GrowingBuffer`), :mod:`.types` (numpy dtypes and shapes
as HDF5/JSON), :mod:`.values` (a tree value as an array, its bytes and JSON), :mod:`.selections`
(``select=`` and point selections), :mod:`.tree` (the naming rules of groups, members and
attributes), :mod:`.ids` (stable ids), :mod:`.domain` (the JSON answers, read under the lock),
:mod:`.web` (HTTP helpers and OpenAPI entries) and :mod:`.routes` (the router).

Live data and the clients
-------------------------
Every non-scalar dataset declares all its dimensions unlimited (``maxdims`` 0), since any value
of the tree may be replaced by a larger one, and a chunked layout of about 1 MiB chunks (which
lets h5pyd 0.18 split a read that the server refuses as too large into smaller ones).
Clients keep the metadata they have read:

* h5pyd 0.18 caches every small JSON answer (links, shapes, attributes) for the life of the
  ``File`` unless it is opened with ``use_cache=False``; then
  ``dset.get_shape(check_server=True)`` re-reads ``/shape`` and ``f["name"]`` finds new members.
* h5pyd 1.x keeps each object's JSON (links, attributes, shape) until ``obj.refresh()``; call
  ``dset.refresh()`` before reading a dataset that changed shape (a read of the whole old
  shape is sent without a selection and fails when the size differs).

Reopening the file always shows the current tree.

Values
------
``/datasets/{id}/value?select=[start:stop:step,...]`` answers raw C-order little-endian bytes
(``application/octet-stream``) when the request's ``Accept`` asks for that type, JSON
``{"value": ...}`` otherwise. Variable-length strings go out in the HDF REST binary form (per
element a little-endian int32 byte count, then the UTF-8 bytes) when asked for octet-stream:
JSON nests values by the selection's dimensions and cannot tell ``ds[0]`` from ``ds[0:1]``
(both are sent as ``[0:1,...]``), which made h5pyd misread a row of a 2-d string dataset.
In JSON, NaN and infinities are written as ``NaN``/``Infinity``/``-Infinity`` (as Python's
``json`` module, and so h5pyd, reads them). A dimension may be ``start:stop[:step]``
(``start``/``stop`` may be left out), a single index (dropped from the JSON nesting), or one
coordinate list ``[i,j,k]`` per selection; a POST to the same URL takes point selections
(uint64 coordinates as ``application/octet-stream``, or JSON ``{"points": ...}``) and long
selections (JSON ``{"select": ...}``). Negative indices, steps below 1, out-of-range selections
and the unsupported ``query``/``fields`` parameters answer 400 with the reason. A selection of
more than ``max_selection_bytes`` (:data:`MAX_SELECTION_BYTES`, 512 MiB, by default: elements
times item size, 16 bytes per variable-length string) answers 413. Unknown ids, links and
attributes answer 404. Writes are not routed (PUT/DELETE answer 405): the domain is read-only.
"""

from dranspose.http.h5rest.buffer import GrowingBuffer
from dranspose.http.h5rest.routes import MAX_SELECTION_BYTES, create_h5_router

__all__ = ["MAX_SELECTION_BYTES", "GrowingBuffer", "create_h5_router"]

# Payloads know GrowingBuffer by this path; pickles and reprs keep naming it, as before the split.
GrowingBuffer.__module__ = __name__
