"""Bench harness: the real daemon in a subprocess on loopback, and signing test agents."""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio
from solders.keypair import Keypair

from perpd.auth import sign_headers, signing_message

# The request every bench asks for: small, so collateral never runs out.
REQUEST = {
    "market": "BTC-PERP",
    "side": "long",
    "size_usdc": "100",
    "leverage": 10,
    "max_funding_rate": "0.001",
    "expires_in": 60,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Running:
    """A daemon started by `daemon_process`: where it listens, its pid and database."""

    url: str
    pid: int
    db: str


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of ``pid`` from /proc (VmRSS now, VmHWM the peak), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) ``pid`` has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def daemon_process(
    *extra: str, tree: str | None = None, config: dict[str, str] | None = None
) -> AsyncIterator[Running]:
    """``perpd run --dev`` on a fresh database in a subprocess, until the block ends
    (``tree``: the perpd of another source tree, for a baseline in the same run;
    ``config``: ``PERPD_*`` settings for it)."""
    env = {**os.environ, **(config or {})}
    if tree is not None:
        env["PYTHONPATH"] = tree
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        proc = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "perpd",
                "run",
                "--dev",
                "--no-keeper",
                "--log-level",
                "WARNING",
                "--db",
                db,
                "--port",
                str(port),
                *extra,
            ],
            env=env,
            cwd=tree,  # ``-m perpd`` looks in the working directory first
        )
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=url) as http:
                with trio.fail_after(20):
                    while True:
                        try:
                            if (await http.get("/health")).status_code == 200:
                                break
                        except httpx.TransportError:
                            await trio.sleep(0.05)
            yield Running(url, proc.pid, db)
        finally:
            proc.terminate()
            with trio.fail_after(20):
                await proc.wait()


@asynccontextmanager
async def daemon(*extra: str) -> AsyncIterator[str]:
    """``perpd run --dev`` on a fresh database in a subprocess; yields its base URL.

    ``$PERPD_BENCH_URL`` points the bench at a daemon started by hand (to profile it).
    """
    if os.environ.get("PERPD_BENCH_URL"):
        yield os.environ["PERPD_BENCH_URL"]
        return
    async with daemon_process(*extra) as running:
        yield running.url


@dataclass
class BenchAgent:
    http: httpx.AsyncClient
    keypair: Keypair = field(default_factory=Keypair)
    _last: int = 0

    @property
    def id(self) -> str:
        return str(self.keypair.pubkey())

    def stamp(self) -> int:
        self._last = max(int(time.time() * 1000), self._last + 1)
        return self._last

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(body).encode()
        headers = sign_headers(self.keypair, "POST", path, raw, timestamp_ms=self.stamp())
        r = await self.http.post(path, content=raw, headers=headers)
        if r.status_code >= 300:
            raise RuntimeError(f"{path}: {r.status_code} {r.text}")
        return r.json()  # type: ignore[no-any-return]

    async def fund(self, amount: str) -> None:
        r = await self.http.post("/dev/faucet", json={"agent_id": self.id, "amount_usdc": amount})
        r.raise_for_status()

    def ws_auth(self) -> str:
        ts = self.stamp()
        sig = self.keypair.sign_message(signing_message(ts, "GET", "/ws", b""))
        return json.dumps(
            {"type": "auth", "agent_id": self.id, "timestamp": ts, "signature": str(sig)}
        )


def pct(samples: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))
    return ordered[k]


def summary(name: str, samples_s: list[float]) -> str:
    ms = [x * 1000 for x in samples_s]
    return (
        f"{name}: n={len(ms)} p50={pct(ms, 50):.2f} ms p99={pct(ms, 99):.2f} ms "
        f"mean={statistics.fmean(ms):.2f} ms"
    )
