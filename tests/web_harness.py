"""The web view's browser tests: a real `perpd demo`, Debian's chromium under Playwright,
and a public-stream watcher of our own to time the page against.

Playwright is asyncio-only, and these tests are plain synchronous functions (pytest-trio
leaves those alone), so its sync API runs on the test's own thread; the watcher runs
its own trio loop on a second thread. Chromium is Debian's (``ci-deps.sh`` installs
it); without it the tests fail, never skip, and Playwright's browser download is never
used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.daemon_proc import free_port
from tests.wsclient import raw_socket

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts" / "web"  # screenshots (git-ignored)
CHROMIUM = os.environ.get("PERPD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def chromium_path() -> str:
    if not Path(CHROMIUM).is_file():
        raise AssertionError(
            f"chromium not found at {CHROMIUM}: run ./ci-deps.sh (Debian's chromium package)"
        )
    return CHROMIUM


@dataclass
class Demo:
    """A `perpd demo` subprocess on a fixed port and database (so it can be restarted)."""

    db: Path
    port: int
    log: Path
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "perpd", "demo", "--no-tty", "--db", str(self.db)]
                + ["--port", str(self.port), "--funding-period", "5", *self.args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the demo did not start: {self.log.read_text()}")

    def stop(self) -> None:
        """SIGINT, as a user's Ctrl-C; the demo exits 0 and frees the port."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=30) == 0, self.log.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def get(self, path: str) -> Any:
        r = httpx.get(f"{self.url}{path}", timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = httpx.post(f"{self.url}{path}", json=body, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()


@contextmanager
def demo(tmp: Path, *args: str) -> Iterator[Demo]:
    d = Demo(tmp / "perpd.db", free_port(), tmp / "demo.log", args)
    d.start()
    try:
        yield d
    finally:
        d.stop()


@dataclass
class Frame:
    seq: int
    type: str
    data: dict[str, Any]
    ts: int  # the event's own time (whole unix seconds)
    arrived: float  # time.time() when our socket got it


@dataclass
class Watcher:
    """Our own public-stream socket on a thread: every frame and when it arrived."""

    url: str
    since: int | None = None
    frames: list[Frame] = field(default_factory=list)
    hello: int | None = None
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Watcher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), f"the watcher did not subscribe: {self.error!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported by the test's assertions
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        async with raw_socket(self.url, "/ws/public") as ws:
            hello = await ws.recv()
            assert hello["type"] == "hello", hello
            self.hello = hello["seq"]
            sub: dict[str, Any] = {"type": "subscribe"}
            if self.since is not None:
                sub["since"] = self.since
            await ws.conn.send_message(json.dumps(sub))
            self._ready.set()
            while not self._stop.is_set():
                with trio.move_on_after(0.1):
                    msg = json.loads(await ws.conn.get_message())
                    if "seq" in msg:
                        self.frames.append(
                            Frame(msg["seq"], msg["type"], msg["data"], msg["ts"], time.time())
                        )

    def wait(self, predicate: Any, timeout: float = 30.0) -> Any:
        """The first value ``predicate(frames)`` returns that is not None, polling."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.error is None, repr(self.error)
            found = predicate(list(self.frames))
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"not seen within {timeout} s; frames: {len(self.frames)}")


class Console:
    """Every console message and page error of a page, to assert none is an error."""

    def __init__(self, page: Any) -> None:
        self.messages: list[str] = []
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg: Any) -> None:
        self.messages.append(f"{msg.type}: {msg.text}")
        if msg.type in ("error", "warning"):
            self.errors.append(f"{msg.type}: {msg.text}")


def wait_for(probe: Any, timeout: float = 30.0, what: str = "") -> Any:
    """``probe()``'s first truthy value, polling every 50 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what or probe} still false after {timeout} s")


def wait_js(page: Any, expression: str, timeout: float = 20.0) -> Any:
    """Poll ``expression`` with page.evaluate until truthy (the page's CSP forbids the
    string eval that Playwright's wait_for_function uses)."""
    return wait_for(lambda: page.evaluate(expression), timeout, expression)
