"""Running a payload the way payload test suites written for the original dranspose do.

Those suites start ``dranspose.replay.replay(...)`` in a thread with positional arguments
``(wclass, rclass, zmq_files, source, parameter_file)`` and the keywords ``port``,
``stop_event`` and ``done_event``, wait on ``done_event`` and then read the reducer's
``publish`` over HTTP with h5pyd. :func:`replay_like_a_payload_test` does exactly that, so a
test here exercises the same contract.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Iterator, Optional

from dranspose.replay import replay
from tests.ports import free_port, port_is_free  # noqa: F401  (for the compat tests)


@contextlib.contextmanager
def replay_like_a_payload_test(
    wclass: Any,
    rclass: Any,
    zmq_files: Optional[list[Any]] = None,
    source: Any = None,
    parameter_file: Any = None,
    timeout: float = 60,
    **kwargs: Any,
) -> Iterator[str]:
    """Yield the results URL once ``done_event`` is set; stop the replay afterwards."""
    port = free_port()
    done, stop = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=replay,
        args=(wclass, rclass, zmq_files, source, parameter_file),
        kwargs={"port": port, "stop_event": stop, "done_event": done, **kwargs},
        daemon=True,
    )
    thread.start()
    try:
        assert done.wait(timeout), "replay did not set done_event"
        yield f"http://localhost:{port}"
    finally:
        stop.set()
        thread.join(timeout)
    assert not thread.is_alive(), "replay did not end after stop_event"


def open_domain(h5pyd: Any, url: str) -> Any:
    """Open the results as an HDF5 domain with whichever h5pyd is installed (0.18 or 1.x)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        if int(h5pyd.version.version.split(".")[0]) < 1:
            return h5pyd.File(url + "/", "r", use_cache=False, retries=1)
        return h5pyd.File(url + "/", "r", retries=1)
    finally:  # h5pyd 1.x sets the root logger to ERROR; keep the suite's logging as it was
        root.setLevel(level)
        root.handlers[:] = handlers


def text(value: Any) -> Any:
    """An h5pyd string attribute or value as ``str`` (0.18 gives bytes, 1.x str)."""
    return value.decode() if isinstance(value, bytes) else value
