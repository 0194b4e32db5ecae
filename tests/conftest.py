"""Shared fixtures: a real daemon on an ephemeral loopback port, and signing test agents."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from trio.testing import MockClock

from perpd import daemon
from perpd.auth import sign_headers
from perpd.clock import TrioClock
from perpd.config import Config
from perpd.store import queries as q
from perpd.store._thread import DbThread
from perpd.venue import Venue
from tests.chain_books import assert_chain_matches
from tests.consent_signing import Consents


def usdc(text: str) -> int:
    """Decimal string → micro-USDC, for assertions."""
    return int(Decimal(text) * 1_000_000)


T0 = 1_795_680_000  # a funding boundary (multiple of 8 h), 2026-11-26 00:00 UTC


class Clock:
    """The daemon's clock in tests: frozen (exact funding arithmetic) unless ``real``.

    ``advance`` moves it forward; in real mode it follows the wall clock plus the
    advances, so timers that sleep in real time still see deadlines pass.
    """

    def __init__(self, start: float = T0 + 100, *, real: bool = False, mock: bool = False) -> None:
        self.offset = start - (time.time() if real else 0.0)
        self.real = real
        # ``mock``: follows trio's clock (`perpd.clock.TrioClock`), for `mock_clock` tests
        self.trio = TrioClock(start) if mock else None

    def __call__(self) -> float:
        if self.trio is not None:
            return self.trio()
        return self.offset + (time.time() if self.real else 0.0)

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        if self.trio is not None:
            self.trio.advance(seconds)


@dataclass
class Agent:
    """A test agent: a keypair that signs its calls exactly as SPEC §6 says."""

    http: httpx.AsyncClient
    keypair: Keypair
    clock: Clock
    consents: Consents | None = None  # signs SPEC §6 consents into bodies (with a chain)
    _last_ms: int = 0

    def stamp(self) -> int:
        """A timestamp from the daemon's clock, distinct per call (a frozen clock repeats)."""
        self._last_ms = max(int(self.clock() * 1000), self._last_ms + 1)
        return self._last_ms

    @property
    def id(self) -> str:
        return str(self.keypair.pubkey())

    async def raw(self, path: str, body: Any) -> bytes:
        """The bytes this agent would POST to ``path``: ``body`` with its consent."""
        if isinstance(body, bytes):
            return body
        if self.consents is not None:
            body = await self.consents.sign(path, body, self.clock(), self.read)
        return json.dumps(body).encode()

    async def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        raw = await self.raw(path, body)
        kw.setdefault("timestamp_ms", self.stamp())
        headers = sign_headers(self.keypair, "POST", path, raw, **kw)
        headers["Content-Type"] = "application/json"
        return await self.http.post(path, content=raw, headers=headers)

    async def get(self, path: str) -> httpx.Response:
        headers = sign_headers(self.keypair, "GET", path, b"", timestamp_ms=self.stamp())
        return await self.http.get(path, headers=headers)

    async def read(self, path: str) -> dict[str, Any] | None:
        """A signed GET's JSON, or None when it is not a 200 (the consent's lookups)."""
        r = await self.get(path)
        return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

    async def ok(self, path: str, body: Any, status: int = 200) -> dict[str, Any]:
        r = await self.post(path, body)
        assert r.status_code == status, r.text
        return r.json()  # type: ignore[no-any-return]

    async def balances(self) -> tuple[int, int]:
        r = await self.get(f"/accounts/{self.id}")
        assert r.status_code == 200, r.text
        return usdc(r.json()["free_usdc"]), usdc(r.json()["locked_usdc"])

    async def fund(self, amount: str) -> None:
        r = await self.http.post("/dev/faucet", json={"agent_id": self.id, "amount_usdc": amount})
        assert r.status_code == 200, r.text


def make_agent(
    http: httpx.AsyncClient, keypair: Keypair, clock: Clock, chain: dict[str, Any], consents: bool
) -> Agent:
    """An agent of the daemon whose ``GET /chain`` is ``chain``: with a chain (and
    ``consents``) it signs SPEC §6 consents into its bodies."""
    if not consents or chain["mode"] == "none":
        return Agent(http, keypair, clock)
    mint = chain.get("usdc_mint")
    signer = Consents(
        keypair,
        Pubkey.from_string(chain["program_id"]),
        Pubkey.from_string(mint) if mint else None,
    )
    return Agent(http, keypair, clock, signer)


async def chain_of(http: httpx.AsyncClient) -> dict[str, Any]:
    """The daemon's ``GET /chain``."""
    return (await http.get("/chain")).raise_for_status().json()  # type: ignore[no-any-return]


@dataclass
class Server:
    venue: Venue
    url: str
    http: httpx.AsyncClient
    shutdown: trio.Event
    clock: Clock
    chain: dict[str, Any]  # GET /chain

    def agent(self, keypair: Keypair | None = None, *, consents: bool = True) -> Agent:
        """An agent (a new one unless ``keypair``); with a chain it signs consents unless
        ``consents=False``."""
        return make_agent(self.http, keypair or Keypair(), self.clock, self.chain, consents)

    async def pin(self, market: str, price: str) -> None:
        r = await self.http.post("/dev/price", json={"market": market, "price": price})
        assert r.status_code == 200, r.text

    async def books(self) -> dict[str, int]:
        return await self.venue.read(q.ledger)

    async def expired(self) -> None:
        """Wait until the expiry timer has caught up with the (possibly moved) clock."""

        def due(conn: Any) -> bool:
            now = self.clock()
            return bool(q.requests_due(conn, now) or q.quotes_due(conn, now))

        with trio.fail_after(5):
            while True:
                if not await self.venue.read(due):
                    return
                await trio.sleep(0.02)

    async def digest(self) -> str:
        return await self.venue.read(q.state_digest)

    async def assert_balanced(self) -> None:
        """Conservation, per-agent locked = open collateral, no hole in the event log;
        with a local chain, the mirror equals the program's accounts too."""
        assert await self.venue.read(q.verify) == []
        if self.venue.backend is not None and self.venue.backend.mode == "local":
            await assert_chain_matches(self.venue)


# The chain mode of every test daemon unless a test sets its own: a test file may set
# ``CHAIN = "local"`` for its ``server`` fixture; PERPD_TEST_CHAIN (local or none)
# overrides every file, to run a suite both ways.
TEST_CHAIN_ENV = os.environ.get("PERPD_TEST_CHAIN")
TEST_CHAIN = TEST_CHAIN_ENV or "none"


def chain_for(request: pytest.FixtureRequest) -> str:
    """The chain mode of a test's daemon: PERPD_TEST_CHAIN, else its file's ``CHAIN``."""
    return TEST_CHAIN_ENV or str(getattr(request.module, "CHAIN", TEST_CHAIN))


async def funded(s: Server, n: int) -> list[Agent]:
    """``n`` new agents of ``s``, each with 100,000 USDC from the faucet."""
    agents = [s.agent() for _ in range(n)]
    for a in agents:
        await a.fund("100000")
    return agents


# The tests read anonymously through one client (`Server.http`) faster than the daemon
# lets an anonymous client (10/s per address): they keep 100/s. The SDK's tests
# (tests/agents) run on the default, which the SDK's signed reads do not meet.
TEST_PUBLIC_RATE: dict[str, Any] = {"public_rate_per_s": 100.0, "public_burst": 200}
DEFAULT_PUBLIC_RATE: dict[str, Any] = {
    "public_rate_per_s": Config.public_rate_per_s,
    "public_burst": Config.public_burst,
}


def base_config(tmp_path: Path, **changes: Any) -> Config:
    cfg = Config(
        chain=TEST_CHAIN,
        db=str(tmp_path / "perpd.db"),
        port=0,
        dev=True,
        keeper=False,
        sim_interval_s=0.2,
        graceful_timeout_s=1.0,
        # issue 13's throttled funding_curve announcements are written on their own
        # time; the tests that pin a subscriber's exact stream predate them (they are
        # on by default, and on in tests/test_funding_curve.py and the SDK's history test)
        funding_curve_events=False,
        **TEST_PUBLIC_RATE,
    )
    return replace(cfg, **changes)


async def start_server(nursery: trio.Nursery, config: Config, clock: Clock | None = None) -> Server:
    shutdown = trio.Event()
    clock = clock or Clock()

    async def runner(task_status: trio.TaskStatus[Venue]) -> None:
        await daemon.run(config, shutdown=shutdown, clock=clock, task_status=task_status)

    venue = await nursery.start(runner)
    url = venue.binds[0]
    http = httpx.AsyncClient(base_url=url, timeout=10)
    return Server(venue, url, http, shutdown, clock, await chain_of(http))


@pytest.fixture
async def server(
    tmp_path: Path, nursery: trio.Nursery, request: pytest.FixtureRequest
) -> AsyncIterator[Server]:
    s = await start_server(nursery, base_config(tmp_path, chain=chain_for(request)))
    yield s
    await s.http.aclose()
    s.shutdown.set()


@pytest.fixture
async def chain_server(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    """A daemon on the in-process chain, whatever the module's ``CHAIN`` (for the tests
    of a module that also run off chain)."""
    s = await start_server(nursery, base_config(tmp_path, chain="local"))
    yield s
    await s.http.aclose()
    s.shutdown.set()


def db_aware_mock_clock() -> MockClock:
    """trio's ``MockClock(autojump_threshold=0)``, except that it does not jump while a
    database job is on its thread: trio sees a task waiting for the writer as idle, and
    would otherwise jump to the next deadline (a test's timeout) under a running unit.
    (``MockClock`` is final: the instance's autojump is wrapped instead.)"""
    clock = MockClock(autojump_threshold=0)
    jump = clock._autojump

    def autojump() -> None:
        if DbThread.in_flight == 0:
            jump()

    clock._autojump = autojump  # type: ignore[method-assign]
    return clock


@pytest.fixture
def mock_clock() -> MockClock:
    """Run the test under the autojump clock: services' sleeps take no real time."""
    return db_aware_mock_clock()
