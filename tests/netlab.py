"""A private LAN of Linux network namespaces, so a test can cut one host's cable.

Each host is a network namespace with one veth pair: ``eth0`` inside the host, the other end on a
bridge in a hub namespace. The test process itself joins the bridge through one more veth pair,
so it reaches every host's REST API without entering a namespace. Cutting a host sets its
bridge-side end down: packets to and from it vanish silently, as when a switch port or cable
dies, and nobody gets a connection error. Names carry a random tag, so parallel runs and stale
leftovers of killed runs do not collide; ``close`` stops every process started in the lab and
deletes every namespace and link it made (deleting the hub removes the bridge and veth ends).

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and ``ip`` from iproute2; ``unavailable`` says why
not, for a skip reason.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from typing import Optional, Sequence


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def unavailable() -> Optional[str]:
    """Why network namespaces cannot be made here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces exist only on Linux"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)"
    probe = f"drprobe-{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"'ip netns add' is not permitted here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class NetLab:
    """Hosts on one bridged /24; ``address(host)`` is a host's IP, ``gateway`` the test's own."""

    def __init__(self, hosts: Sequence[str]) -> None:
        self.tag = secrets.token_hex(3)
        self.hub = f"drhub-{self.tag}"
        self.namespaces = {host: f"dr{host}-{self.tag}" for host in hosts}
        self.ports = {host: f"p{i}" for i, host in enumerate(hosts)}
        # a /24 drawn at random from 10.0.0.0/8, so concurrent labs use different ones
        subnet = f"10.{secrets.randbelow(150) + 100}.{secrets.randbelow(254) + 1}"
        self.gateway = f"{subnet}.1"
        self.addresses = {host: f"{subnet}.{i + 2}" for i, host in enumerate(hosts)}
        self.test_link = f"drt{self.tag}"
        self.processes: list[subprocess.Popen[str]] = []

    def address(self, host: str) -> str:
        return self.addresses[host]

    def __enter__(self) -> NetLab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "set", "lo", "up")
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for host, ns in self.namespaces.items():
            port = self.ports[host]
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip(
                "-n",
                self.hub,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            )
            _ip("-n", self.hub, "link", "set", port, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.addresses[host]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        _ip(
            "link",
            "add",
            self.test_link,
            "type",
            "veth",
            "peer",
            "name",
            "ptest",
            "netns",
            self.hub,
        )
        _ip("-n", self.hub, "link", "set", "ptest", "master", "br0", "up")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.test_link)
        _ip("link", "set", self.test_link, "up")

    def cut(self, host: str) -> None:
        """Unplug ``host``: its switch port goes down, packets are dropped without an error."""
        _ip("-n", self.hub, "link", "set", self.ports[host], "down")

    def restore(self, host: str) -> None:
        _ip("-n", self.hub, "link", "set", self.ports[host], "up")

    def start(
        self, host: str, argv: Sequence[str], env: dict[str, str], **popen: object
    ) -> subprocess.Popen[str]:
        """Run ``argv`` inside ``host``'s namespace (``ip netns exec`` execs it: same pid)."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.namespaces[host], *argv], env=env, text=True, **popen
        )  # type: ignore[call-overload]
        self.processes.append(proc)
        return proc

    def stop_processes(self, grace: float = 10.0) -> None:
        """SIGINT, then SIGKILL after ``grace`` s; the first process started (a server such as
        Redis that the others use) stops last, so the others shut down cleanly."""
        rest, first = self.processes[1:], self.processes[:1]
        for group in (rest, first):
            for proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            for proc in group:
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    def close(self) -> None:
        """Stop the lab's processes, then remove its namespaces and links; never raises."""
        try:
            self.stop_processes()
        finally:
            for ns in [*self.namespaces.values(), self.hub]:
                _ip("netns", "del", ns, check=False)
            _ip("link", "del", self.test_link, check=False)  # gone with the hub, normally
