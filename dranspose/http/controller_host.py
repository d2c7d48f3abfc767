"""What the controller's routes need from the service behind them: :class:`ControllerHost`.

The routes (``controller_api``, ``dashboard``, ``metrics``, ``parameters_api``) are written
against this seam, not against ``dranspose.runtime.controller.Controller``: the app does not
import the service (whoever runs both composes them, see ``controller_api.create_app``), and a
test can serve the routes over a stand-in.
"""

from __future__ import annotations

from typing import Optional, Protocol

from dranspose.core.controller_parameters import ParameterBoard
from dranspose.core.coordination import ComponentInfo, ScanInfo
from dranspose.core.scan_account import ScanAccount
from dranspose.core.triggermap import TriggerMap
from dranspose.io.store import Store


class ControllerHost(Protocol):
    """The controller as its HTTP API sees it: its scan, its parameters, its lock."""

    @property
    def store(self) -> Store:
        """Where the registry, counters and logs the routes list are read."""
        ...

    @property
    def info(self) -> ComponentInfo:
        """The controller's own registry entry (its name)."""
        ...

    @property
    def owner(self) -> str:
        """This controller's id in the single-controller lock."""
        ...

    @property
    def acquired(self) -> bool:
        """Whether it took the lock (``/healthz`` answers 503 otherwise)."""
        ...

    @property
    def run_state(self) -> Optional[ScanAccount]:
        """The current (or last) scan's account; None before the first scan."""
        ...

    @property
    def released_events(self) -> int:
        """Events of the current scan handed out so far (the original's ``last_assigned``)."""
        ...

    @property
    def parameters(self) -> ParameterBoard:
        """The declarations and values; the one way a value is set."""
        ...

    async def start_scan(
        self, trigger_map: TriggerMap, retry_lost: Optional[bool] = None
    ) -> ScanInfo:
        """Start a scan (``TriggerMapError`` when the registered components cannot run it)."""
        ...

    async def stop_scan(self) -> None:
        """End the current scan, if any."""
        ...
