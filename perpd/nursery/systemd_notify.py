"""systemd integration (``Type=notify``): READY/STOPPING messages and the watchdog.

Speaks the sd_notify datagram protocol on ``$NOTIFY_SOCKET`` directly (no libsystemd).
The watchdog pings only after a round trip through the database thread succeeds, so a
wedged store stops the pings and systemd restarts the daemon.
"""

from __future__ import annotations

import logging
import os
import socket

import trio

from perpd.store import Store

log = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send ``message`` to systemd if it is listening; False when not under systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode())
        except OSError as exc:
            log.warning("sd_notify %r failed: %s", message, exc)
            return False
    return True


def watchdog_interval_s() -> float | None:
    """Half of ``$WATCHDOG_USEC`` (systemd's advice), or None if no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


async def run(
    store: Store, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Ping the watchdog forever (if one is configured), each ping after a store round trip."""
    interval = watchdog_interval_s()
    task_status.started()
    if interval is None:
        return
    while True:
        with trio.move_on_after(interval):
            await store.ping()
            notify("WATCHDOG=1")
        await trio.sleep(interval)
