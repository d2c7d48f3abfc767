"""Pure models and algorithms: ids, events, parameters, coordination messages, the trigger
map and its assigner, the scan account, backpressure, statistics and the payload calling
policy.

No sockets, Redis or environment. Two functions touch files, for what the user names:
:func:`~dranspose.core.parameters.read_parameter_file` reads a parameter file and
:func:`~dranspose.core.payload.import_class` imports the payload's module from the working
directory. Clocks: timestamps default to ``time.time()`` (a heartbeat's ``last_seen``, a scan's
``started_at``), and backpressure, statistics and the scan account's grace period read
``time.monotonic()`` themselves; the rest is given the time by its caller.
"""
