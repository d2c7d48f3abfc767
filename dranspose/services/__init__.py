"""Services: the processes that do I/O (controller, ingester, worker, reducer, sources)."""
