"""Durability: a clean restart keeps everything; a kill -9 under load keeps the books balanced."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
from solders.keypair import Keypair

from perpd.store import queries as q
from tests.conftest import Clock, base_config, chain_of, make_agent, start_server
from tests.daemon_proc import free_port, wait_ready

REQUEST = {
    "market": "ETH-PERP",
    "side": "short",
    "size_usdc": "500",
    "leverage": 5,
    "max_funding_rate": "0.002",
    "expires_in": 300,
}


async def test_restart_keeps_every_record(tmp_path: Path) -> None:
    clock = Clock()
    async with trio.open_nursery() as nursery:
        s = await start_server(nursery, base_config(tmp_path), clock)
        requester, maker = s.agent(), s.agent()
        await requester.fund("5000")
        await maker.fund("5000")
        await s.pin("ETH-PERP", "3000")
        rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
        qid = (
            await maker.ok(
                "/trade/quote",
                {
                    "request_id": rid,
                    "funding_rate": "0.001",
                    "collateral_usdc": "50",
                    "valid_for": 60,
                },
                201,
            )
        )["quote_id"]
        pid = (await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid}))[
            "position"
        ]["position_id"]
        open_rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
        live_qid = (
            await maker.ok(
                "/trade/quote",
                {
                    "request_id": open_rid,
                    "funding_rate": "0.001",
                    "collateral_usdc": "50",
                    "valid_for": 60,
                },
                201,
            )
        )["quote_id"]
        digest = await s.digest()
        balances = (await requester.balances(), await maker.balances())
        events = (await requester.get("/events?since=0")).json()["events"]
        await s.http.aclose()
        s.shutdown.set()

    async with trio.open_nursery() as nursery:
        s = await start_server(nursery, base_config(tmp_path), clock)
        assert await s.digest() == digest
        r2, m2 = (s.agent(a.keypair) for a in (requester, maker))
        assert (await r2.balances(), await m2.balances()) == balances
        assert (await r2.get("/events?since=0")).json()["events"] == events
        pos = (await s.http.get(f"/positions/{pid}")).json()
        assert pos["status"] == "open" and pos["entry_price"] == "3000.00000000"
        markets = (await s.http.get("/markets")).json()["markets"]
        eth = next(m for m in markets if m["market"] == "ETH-PERP")
        assert eth["oracle_price"] == "3000.00000000"  # the pin survived
        open_ids = [r["request_id"] for r in (await s.http.get("/requests")).json()["requests"]]
        assert open_ids == [open_rid]
        quotes = (await s.http.get(f"/quotes?request_id={open_rid}")).json()["quotes"]
        assert [x["quote_id"] for x in quotes] == [live_qid]
        # and it still trades: the pending request can be filled after the restart
        await r2.ok("/trade/accept", {"request_id": open_rid, "quote_id": live_qid})
        await s.assert_balanced()
        await s.http.aclose()
        s.shutdown.set()


def _spawn(db: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perpd",
            "run",
            "--db",
            str(db),
            "--port",
            str(port),
            "--dev",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _check_books(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        assert q.verify(conn) == []
        return q.ledger(conn)
    finally:
        conn.close()


# Requests cut off by the kill leave httpx's body iterators to the garbage collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_kill_9_under_load_leaves_books_balanced(tmp_path: Path) -> None:
    db, port = tmp_path / "perpd.db", free_port()
    proc = _spawn(db, port)
    clock = Clock(real=True, start=__import__("time").time())
    done = 0
    enough = trio.Event()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            await wait_ready(http)
            await http.post("/dev/price", json={"market": "ETH-PERP", "price": "3000"})

            async def trader() -> None:
                nonlocal done
                chain = await chain_of(http)
                requester, maker = (make_agent(http, Keypair(), clock, chain, True) for _ in "rm")
                try:
                    await requester.fund("100000")
                    await maker.fund("100000")
                    while True:
                        rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
                        qid = (
                            await maker.ok(
                                "/trade/quote",
                                {
                                    "request_id": rid,
                                    "funding_rate": "0.001",
                                    "collateral_usdc": "50",
                                },
                                201,
                            )
                        )["quote_id"]
                        pos = await requester.ok(
                            "/trade/accept", {"request_id": rid, "quote_id": qid}
                        )
                        await requester.ok(
                            "/trade/close",
                            {"position_id": pos["position"]["position_id"], "size_percent": 40},
                        )
                        done += 1
                        if done > 20:
                            enough.set()
                except (httpx.TransportError, AssertionError):
                    return  # the daemon died under us: expected

            async with trio.open_nursery() as n:
                for _ in range(8):
                    n.start_soon(trader)
                with trio.move_on_after(20):  # a loaded machine is slower: wait for the work
                    await enough.wait()
                await trio.sleep(0.2)  # and kill it mid-flight
                os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert done > 20, done
    before = _check_books(db)
    assert before["deposits"] > 0

    proc = _spawn(db, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            await wait_ready(http)
            assert (await http.get("/health")).json()["last_seq"] > 0
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0  # a clean stop on SIGINT exits 0
    assert _check_books(db)["deposits"] == before["deposits"]
    verified = await trio.run_process(
        [sys.executable, "-m", "perpd", "verify", "--db", str(db)], capture_stdout=True
    )
    assert verified.returncode == 0 and b"books balance" in verified.stdout
