"""Debian's chromium driven by Playwright, for the tests of what people see in a browser.

The flags keep a headless chromium off the network it would otherwise contact at start (this
machine's network is closed; a beamline's often is too).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Any, Iterator, Optional

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 30_000


def find_chromium() -> Optional[str]:
    """Debian's chromium (or $DRANSPOSE_CHROMIUM); None when there is none."""
    explicit = os.environ.get("DRANSPOSE_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextlib.contextmanager
def chromium_context(what: str) -> Iterator[Any]:
    """A persistent Playwright context of Debian's chromium; skips (saying why) without one."""
    executable = find_chromium()
    if executable is None:
        pytest.skip(
            "no chromium binary found (apt-get install chromium, or set "
            f"$DRANSPOSE_CHROMIUM): {what} need one"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install '.[test]')"
    )
    with (
        tempfile.TemporaryDirectory(prefix="dranspose-chromium-") as profile,
        sync_api.sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()
