"""A real `perpd run` in its own process (for what an in-process daemon cannot show: a
crash, a lock held by another process, a full disk), with agents on the wall clock."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from solders.keypair import Keypair

from tests.conftest import TEST_CHAIN, Agent, Clock, chain_of, make_agent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    http: httpx.AsyncClient
    log: Path
    clock: Clock
    chain: dict[str, Any]  # GET /chain

    def agent(self, keypair: Keypair | None = None) -> Agent:
        """An agent on the wall clock, signing consents when the daemon has a chain."""
        return make_agent(self.http, keypair or Keypair(), self.clock, self.chain, True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def pin(self, market: str, price: str) -> httpx.Response:
        return await self.http.post("/dev/price", json={"market": market, "price": price})


async def wait_ready(http: httpx.AsyncClient, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until ``GET /health`` answers (failing at once if ``proc`` exits meanwhile)."""
    with trio.fail_after(30):
        while True:
            assert proc is None or proc.poll() is None, "the daemon exited during start-up"
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await trio.sleep(0.05)


def spawn(db: Path, port: int, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`perpd run --dev` on ``db``, on the tests' chain mode unless ``args`` name one."""
    if "--chain" not in args:
        args = ("--chain", TEST_CHAIN, *args)
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "perpd", "run", "--db", str(db), "--port", str(port), "--dev"]
            + list(args),
            stdout=sink,
            stderr=sink,
        )


@asynccontextmanager
async def daemon(
    db: Path, *args: str, log_level: str = "WARNING", log: Path | None = None
) -> AsyncIterator[Daemon]:
    """`perpd run --dev` on ``db`` (extra ``args``); stopped with SIGINT, which must exit 0.

    Its output goes to ``log`` (default: next to ``db``)."""
    port = free_port()
    log = log or db.with_name(db.name + f".{port}.log")
    proc = spawn(db, port, log, "--log-level", log_level, *args)
    clean = False
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as http:
            await wait_ready(http, proc)
            clock = Clock(real=True, start=time.time())
            yield Daemon(proc, http, log, clock, await chain_of(http))
        clean = True
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    if clean:
        assert code == 0, f"perpd exited {code}:\n{log.read_text(errors='replace')[-3000:]}"


REQUEST: dict[str, Any] = {
    "side": "long",
    "size_usdc": "1000",
    "leverage": 10,
    "max_funding_rate": "0.01",
    "expires_in": 60,
}


async def open_position(
    requester: Agent,
    maker: Agent,
    market: str,
    *,
    rate: str = "0.001",
    collateral: str = "100",
    **request: Any,
) -> dict[str, Any]:
    """Request, quote and accept; the position object."""
    body = {**REQUEST, "market": market, **request}
    rid = (await requester.ok("/trade/request", body, 201))["request_id"]
    quote = {"request_id": rid, "funding_rate": rate, "collateral_usdc": collateral}
    qid = (await maker.ok("/trade/quote", quote, 201))["quote_id"]
    accepted = await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid})
    return accepted["position"]  # type: ignore[no-any-return]


async def verify(db: Path) -> tuple[int, str]:
    """`perpd verify --db db` as a process: (exit status, output)."""
    done = await trio.run_process(
        [sys.executable, "-m", "perpd", "verify", "--db", str(db)],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode()


_FALLBACK_SHELL = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
for line in sys.stdin:
    line = line.strip()
    if line.startswith(".timeout"):
        conn.execute(f"PRAGMA busy_timeout = {int(line.split()[1])}")
    elif line:
        for row in conn.execute(line):
            print("|".join(map(str, row)), flush=True)
"""


class SqliteShell:
    """Another process on the same file: Debian's ``sqlite3`` shell if installed, else a
    Python process with its own connection, fed one statement per line."""

    def __init__(self, db: Path) -> None:
        cmd = (
            ["sqlite3", str(db)]
            if shutil.which("sqlite3")
            else [sys.executable, "-c", _FALLBACK_SHELL, str(db)]
        )
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.send(".timeout 10000")

    def send(self, sql: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()

    async def ask(self, sql: str, marker: str) -> None:
        """Run ``sql``, then wait until the shell has printed ``marker`` (it is done)."""
        self.send(sql)
        self.send(f"SELECT '{marker}';")
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        def read_until() -> None:
            while (line := stdout.readline()) and line.strip() != marker:
                pass
            assert line, "the sqlite shell exited"

        with trio.fail_after(15):
            await trio.to_thread.run_sync(read_until, abandon_on_cancel=True)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
