"""The SDK signs its own consents (SPEC §6) against a daemon with a chain.

The daemon runs as ``perpd run --dev --chain local`` in its own process (its in-process
SVM stays out of the test process, whose later daemons are timed), on the wall clock;
agents reach it only through the SDK over real HTTP and WebSocket. Code written on the
SDK (a `Trader`, the reference makers) is the same as without a chain: the client
reads ``GET /chain`` once, picks nonces, signs, and keeps ``closes`` / ``withdrawals``
from the daemon's objects.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import trio
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from agents import (
    Client,
    NonceUsed,
    ProtocolError,
    Trader,
    TradeRequest,
    position_address,
)
from agents.conservative_mm import ConservativeMM
from perpd.chain._program import LOCAL_PROGRAM_ID
from tests.agents.conftest import DaemonProcess, clients, eventually, free_port, usdc
from tests.conftest import DEFAULT_PUBLIC_RATE, Clock, base_config, start_server


@pytest.fixture
def chain_live(tmp_path: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path / "chain.db", free_port(), tmp_path / "chain.log", chain="local")
    d.start()
    try:
        yield d
    finally:
        if d.proc is not None and d.proc.poll() is None:
            assert d.stop() == 0


def pin(d: DaemonProcess, market: str, price: str) -> None:
    r = httpx.post(f"{d.url}/dev/price", json={"market": market, "price": price})
    assert r.status_code == 200, r.text


def assert_balanced(d: DaemonProcess) -> None:
    """`perpd verify` on the stopped daemon's file: the books balance."""
    assert d.stop() == 0
    done = subprocess.run(
        [sys.executable, "-m", "perpd", "verify", "--db", str(d.db)], capture_output=True
    )
    assert done.returncode == 0, done.stdout


async def _request(c: Client, **kw: object) -> TradeRequest:
    return await c.request_trade(
        "BTC-PERP",
        "long",
        usdc(1000),
        leverage=10,
        max_funding_rate=1000,
        **kw,  # type: ignore[arg-type]
    )


async def test_the_sdk_signs_request_quote_close_and_withdraw(chain_live: DaemonProcess) -> None:
    pin(chain_live, "BTC-PERP", "50000")
    async with clients(chain_live.url, 3, fund=usdc(10_000)) as (requester, maker, other):
        info = await requester.chain()
        assert (info.mode, info.program_id, info.signs) == ("local", str(LOCAL_PROGRAM_ID), True)
        req = await _request(requester)
        assert req.consent and req.request_hash and req.nonce is not None
        address, bump = position_address(LOCAL_PROGRAM_ID, requester.agent_id, req.nonce)
        assert bump == 255  # the SDK prefers nonces whose lock costs the least

        q1 = await maker.quote(req, funding_rate=500, collateral=usdc(200), valid_for=20)
        assert q1.consent and q1.expires_at <= int(time.time()) + 20
        async with other.subscribe(["BTC-PERP"]) as session:  # a quote on the socket, by id
            q2 = await session.quote(req.request_id, funding_rate=400, collateral=usdc(100))
        quotes = {q.quote_id: q for q in await requester.quotes(req.request_id)}
        assert set(quotes) == {q1.quote_id, q2} and all(q.consent for q in quotes.values())

        position = await Trader(requester).fill(req, quote_window=0)
        assert position is not None and position.maker == other.agent_id
        assert (position.position_address, position.closes) == (str(address), 0)
        half = await requester.close(position.position_id, 50)
        assert (half.position.closes, half.position.status) == (1, "open")
        full = await requester.close(position.position_id)
        assert (full.position.closes, full.position.status) == (2, "closed")

        # the destination must be a USDC token account (the program refuses anything
        # else): first named, then the default, both the agent's own USDC account
        assert info.usdc_mint is not None
        mine = get_associated_token_address(
            Pubkey.from_string(requester.agent_id), Pubkey.from_string(info.usdc_mint)
        )
        first = await requester.withdraw(usdc(10), destination=mine)
        assert first.withdrawals == 1
        second = await requester.withdraw(usdc(10))
        assert second.withdrawals == 2 and second.free == first.free - usdc(10)
    assert_balanced(chain_live)


async def test_stale_counters_are_read_again_and_signed_once_more(
    chain_live: DaemonProcess,
) -> None:
    """Two clients of one agent: each close or withdrawal by one makes the other's
    counter stale; its next call is refused once (401), re-read and signed again."""
    pin(chain_live, "BTC-PERP", "50000")
    async with clients(chain_live.url, 2, fund=usdc(10_000)) as (a, maker):
        b = Client(chain_live.url, a.keypair)
        try:
            req = await _request(a)
            q = await maker.quote(req, funding_rate=500, collateral=usdc(200))
            position = await a.accept(req.request_id, q.quote_id)
            await b.position(position.position_id)  # b has seen it with closes = 0
            await a.close(position.position_id, 20)
            refused = b.statistics().refused
            closed = await b.close(position.position_id, 25)
            assert closed.position.closes == 2
            assert b.statistics().refused == refused + 1  # one 401, then a fresh consent

            await b.balances()  # b has seen withdrawals = 0
            await a.withdraw(usdc(1))  # to the agent's USDC account (a token account)
            after = await b.withdraw(usdc(1))
            assert after.withdrawals == 2 and b.statistics().refused == refused + 2
        finally:
            await b.aclose()


async def test_a_maker_never_signs_terms_the_requester_did_not(chain_live: DaemonProcess) -> None:
    async with clients(chain_live.url, 2, fund=usdc(10_000)) as (requester, maker):
        req = await _request(requester)
        await maker.chain()
        forged = [
            {**req.raw, "size_usdc": "2000.000000"},  # terms changed after signing
            {**req.raw, "nonce": (req.nonce or 0) ^ 1},
            {**req.raw, "consent": None},  # no consent at all
            {**req.raw, "agent_id": maker.agent_id},  # someone else's request
        ]
        calls = maker.statistics().calls
        for raw in forged:
            with pytest.raises(ProtocolError):
                await maker.quote(TradeRequest.from_wire(raw), funding_rate=1, collateral=usdc(100))
        assert maker.statistics().calls == calls  # nothing was sent
        await maker.quote(req, funding_rate=1, collateral=usdc(100))  # the real one is fine


async def test_a_nonce_is_used_once_and_without_a_chain_nothing_is_signed(
    chain_live: DaemonProcess, tmp_path: Path, nursery: trio.Nursery
) -> None:
    async with clients(chain_live.url, 1, fund=usdc(10_000)) as (c,):
        await _request(c, nonce=12345)
        with pytest.raises(NonceUsed):
            await _request(c, nonce=12345)
    off_chain = base_config(tmp_path, chain="none", **DEFAULT_PUBLIC_RATE)
    none = await start_server(nursery, off_chain, Clock(real=True, start=time.time()))
    async with clients(none.url, 1, fund=usdc(10_000)) as (plain,):
        assert not (await plain.chain()).signs
        req = await _request(plain)
        assert (req.consent, req.nonce, req.request_hash) == (None, None, None)
    await none.http.aclose()
    none.shutdown.set()


async def test_agents_written_on_the_sdk_trade_unchanged_on_a_chain(
    chain_live: DaemonProcess,
) -> None:
    pin(chain_live, "ETH-PERP", "3000")
    async with clients(chain_live.url, 2, fund=usdc(50_000)) as (mm_client, trader_client):
        maker = ConservativeMM(mm_client, refresh_s=0.1)
        async with anyio.create_task_group() as tg:
            await tg.start(maker.run)
            trader = Trader(trader_client, quote_window=1.0)
            pos = await trader.open(
                "ETH-PERP", "short", usdc(500), leverage=5, max_funding_rate=5000, expires_in=10
            )
            assert pos is not None and pos.maker == mm_client.agent_id
            await eventually(lambda: maker.statistics().fills == 1)
            await trader.close(pos.position_id, 50)
            closed = await trader.close(pos.position_id)
            assert closed.position.status == "closed" and closed.position.closes == 2
            await eventually(lambda: not maker.positions)
            tg.cancel_scope.cancel()
    assert_balanced(chain_live)
