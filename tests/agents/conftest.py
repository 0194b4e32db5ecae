"""Fixtures for the SDK tests: the real daemon (real clock), SDK clients, a TCP proxy.

The daemon runs in-process on an ephemeral loopback port (``tests.conftest``); agents
reach it only through the SDK, over real HTTP and WebSocket connections. The proxy sits
between an agent and the daemon so that a test can cut every connection mid-stream,
or point the agent at a restarted daemon, exactly as a network or a restart would.
"""

from __future__ import annotations

import inspect
import itertools
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from agents import MICRO, Client, Keypair, parse_usdc
from tests.conftest import DEFAULT_PUBLIC_RATE, TEST_CHAIN, Clock, Server, base_config, start_server

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def live_server(
    tmp_path: Path, nursery: trio.Nursery, **changes: Any
) -> AsyncIterator[Server]:
    """A daemon on the wall clock, so timers, expiry and the SDK's own clock all agree,
    on the default public rate and ``changes`` to the test config."""
    config = base_config(tmp_path, **DEFAULT_PUBLIC_RATE, **changes)
    s = await start_server(nursery, config, Clock(real=True, start=time.time()))
    yield s
    await s.http.aclose()
    s.shutdown.set()


@pytest.fixture
async def live(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    async with live_server(tmp_path, nursery) as s:
        yield s


@asynccontextmanager
async def clients(url: str, n: int, *, fund: int = 0) -> AsyncIterator[list[Client]]:
    """``n`` SDK clients with fresh keypairs, each funded with ``fund`` micro-USDC."""
    made = [Client(url, Keypair()) for _ in range(n)]
    try:
        if fund:
            for c in made:
                await c.faucet(fund)
        yield made
    finally:
        with trio.CancelScope(shield=True):
            for c in made:
                await c.aclose()


def usdc(n: int | str) -> int:
    """Whole USDC (or a decimal string) to micro-USDC, for readable test figures."""
    return parse_usdc(n) if isinstance(n, str) else n * MICRO


class Proxy:
    """A loopback TCP proxy whose connections a test can cut at any moment.

    ``cut()`` aborts every open connection with a TCP reset (SO_LINGER 0), as a
    dropped network or a killed peer would; ``upstream`` can be changed to follow a
    restarted daemon.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.accepted = 0
        self._conns: set[trio.CancelScope] = set()
        self._socks: list[trio.SocketStream] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        self.accepted += 1
        try:
            upstream = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
        except OSError:
            await client.aclose()
            return
        pair = [client, upstream]
        self._socks += pair
        try:
            with trio.CancelScope() as scope:
                self._conns.add(scope)
                async with trio.open_nursery() as n:
                    n.start_soon(self._pump, client, upstream, n.cancel_scope)
                    n.start_soon(self._pump, upstream, client, n.cancel_scope)
        finally:
            self._conns.discard(scope)
            for s in pair:
                self._socks.remove(s)
                s.socket.close()  # synchronous: an await here could be cancelled half-way

    @staticmethod
    async def _pump(src: trio.SocketStream, dst: trio.SocketStream, done: trio.CancelScope) -> None:
        try:
            while data := await src.receive_some(65536):
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        done.cancel()

    def cut(self) -> int:
        """Reset every open connection; returns how many were cut."""
        for s in self._socks:
            s.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        n = len(self._conns)
        for scope in list(self._conns):
            scope.cancel()
        return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DaemonProcess:
    """A daemon run as ``python -m perpd run --dev`` (asyncio and command-line tests).

    ``restart`` stops it with SIGINT and starts it again on the same port and database,
    as an operator (or systemd) would.
    """

    db: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    chain: str = TEST_CHAIN

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "perpd", "run", "--db", str(self.db)]
                + ["--port", str(self.port), "--dev", "--log-level", "WARNING"]
                + ["--chain", self.chain],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGINT, then wait (kill after 15 s); returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def restart(self) -> None:
        assert self.stop() == 0
        self.start()


@pytest.fixture
def daemon_process(tmp_path: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path / "perpd.db", free_port(), tmp_path / "daemon.log")
    d.start()
    try:
        yield d
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()


async def eventually(predicate: Callable[[], Awaitable[bool] | bool], within: float = 10.0) -> None:
    """Wait until ``predicate()`` is true (polled every 20 ms); fail after ``within`` s."""
    with trio.fail_after(within):
        for _ in itertools.count():
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await trio.sleep(0.02)
