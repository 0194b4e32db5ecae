"""Issue 8 finding 4: another process holding the write lock (``BEGIN IMMEDIATE`` in a
``sqlite3`` shell) must not freeze reads, turn writes into 500s or kill the daemon."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from perpd.auth import sign_headers
from perpd.store import Store
from perpd.store import queries as q
from tests.conftest import Agent
from tests.daemon_proc import SqliteShell, daemon, open_position, verify

BUSY_MS = 1500


async def test_external_write_lock_is_503_reads_flow_services_survive(tmp_path: Path) -> None:
    db = tmp_path / "perpd.db"
    args = ("--funding-period", "3", "--keeper-grace", "1.5", "--db-busy-timeout", str(BUSY_MS))
    async with daemon(db, *args) as d:
        agents = [d.agent() for _ in range(4)]
        for a in agents:
            await a.fund("10000")
        a1, m1, a2, m2 = agents
        assert (await d.pin("ETH-PERP", "3000")).status_code == 200
        assert (await d.pin("BTC-PERP", "60000")).status_code == 200
        funded = await open_position(a1, m1, "ETH-PERP", leverage=5, size_usdc="500")
        doomed = await open_position(a2, m2, "BTC-PERP", leverage=50, size_usdc="5000")
        short_lived = await a1.ok("/trade/request", {**_REQ, "expires_in": 1}, 201)
        assert (await d.pin("BTC-PERP", "59000")).status_code == 200  # a2 now under margin
        locked_at = time.monotonic()
        shell = SqliteShell(db)
        try:
            await shell.ask("BEGIN IMMEDIATE;", "locked")

            # signed and public reads answer at once: they never wait for the writer
            for _ in range(5):
                t = time.monotonic()
                assert (await a1.get(f"/accounts/{a1.id}")).status_code == 200
                assert (await d.http.get(f"/positions/{funded['position_id']}")).status_code == 200
                assert time.monotonic() - t < 0.5

            # writes: 503 unavailable with Retry-After after the bounded wait, never a 500;
            # ten at once all answer within about one wait (they do not queue up behind it)
            raw = json.dumps(_REQ).encode()
            headers = sign_headers(
                a1.keypair, "POST", "/trade/request", raw, timestamp_ms=a1.stamp()
            )
            headers["Content-Type"] = "application/json"
            t = time.monotonic()
            refused = await d.http.post("/trade/request", content=raw, headers=headers)
            waited = time.monotonic() - t
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "unavailable"
            assert refused.headers["Retry-After"] == "1"
            assert BUSY_MS / 1000 - 0.3 <= waited < BUSY_MS / 1000 + 1.5

            statuses: list[int] = []

            async def faucet() -> None:
                body = {"agent_id": m1.id, "amount_usdc": "1"}
                statuses.append((await d.http.post("/dev/faucet", json=body)).status_code)

            t = time.monotonic()
            async with trio.open_nursery() as n:
                for _ in range(10):
                    n.start_soon(faucet)
            assert statuses == [503] * 10
            assert time.monotonic() - t < BUSY_MS / 1000 + 1.5

            # the funding time, the request's expiry and the keeper's grace all pass
            # while the lock is held: the daemon must still be up afterwards
            await trio.sleep(max(0.0, 4.5 - (time.monotonic() - locked_at)))
            assert d.alive()
            assert (await d.http.get("/health")).status_code == 200
        finally:
            shell.send("ROLLBACK;")
            shell.close()

        # once released, everything proceeds: the refused call (never recorded) goes
        # through as sent, and funding, expiry and the keeper catch up
        retried = await d.http.post("/trade/request", content=raw, headers=headers)
        assert retried.status_code == 201, retried.text
        with trio.fail_after(10):
            while True:
                kinds = {e["type"] for e in await _events(a1)} | {
                    e["type"] for e in await _events(a2)
                }
                liq = (await d.http.get(f"/positions/{doomed['position_id']}")).json()
                if {"funding_settled", "request_expired", "liquidation"} <= kinds and liq[
                    "status"
                ] == "liquidated":
                    break
                await trio.sleep(0.2)
        assert liq["liquidator"] == "keeper"
        assert short_lived["request_id"] in {
            e["data"]["request_id"] for e in await _events(a1) if e["type"] == "request_expired"
        }
        log = d.log_text()
        for service in ("funding scheduler", "expiry timer", "liquidation watcher"):
            assert f"{service}: the database is busy" in log, log[-3000:]
        assert "Traceback" not in log
    code, out = await verify(db)
    assert code == 0 and "books balance" in out, out


_REQ = {
    "market": "ETH-PERP",
    "side": "long",
    "size_usdc": "100",
    "leverage": 5,
    "max_funding_rate": "0.01",
    "expires_in": 60,
}


async def _events(agent: Agent) -> list[dict[str, Any]]:
    r = await agent.get("/events?since=0")
    assert r.status_code == 200, r.text
    return r.json()["events"]  # type: ignore[no-any-return]


async def test_reads_run_on_read_only_connections(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly database"):
            await store.read(lambda c: c.execute("INSERT INTO pinned_prices VALUES ('X', 1, 1)"))
        assert await store.read(q.pinned_prices) == {}
    finally:
        await store.close()
