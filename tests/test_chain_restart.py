"""kill -9 of the daemon between an accept and its lock's confirmation (issue 10).

The submitter is stopped deterministically before it executes anything with the
test-only ``PERPD_TEST_SUBMITTER_HANG=1``: the accept has reserved the money and written
its lock row (unit 1) but nothing is on chain. After kill -9 and a restart without it,
the lock is sent exactly once, the position opens, and `perpd verify` is clean.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from perpd.chain_mirror import CHAIN_STATUS
from tests.conftest import Clock, chain_of, make_agent
from tests.daemon_proc import daemon, free_port, spawn, verify, wait_ready
from tests.test_consent_http import Book

CHAIN = ("--chain", "local", "--chain-confirm-timeout", "1")


def _rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def test_kill_9_between_accept_and_lock_sends_the_lock_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "perpd.db"
    async with daemon(db, *CHAIN) as d:
        requester, maker = d.agent(), d.agent()
        for a in (requester, maker):
            await a.fund("10000")
    # Given a daemon whose submitter stops before sending anything
    monkeypatch.setenv("PERPD_TEST_SUBMITTER_HANG", "1")
    port = free_port()
    proc = spawn(db, port, tmp_path / "hung.log", "--log-level", "WARNING", *CHAIN)
    monkeypatch.delenv("PERPD_TEST_SUBMITTER_HANG")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as http:
            await wait_ready(http, proc)
            clock = Clock(real=True, start=time.time())
            chain = await chain_of(http)
            requester, maker = (
                make_agent(http, a.keypair, clock, chain, True) for a in (requester, maker)
            )
            assert (
                await http.post("/dev/price", json={"market": "BTC-PERP", "price": "50000"})
            ).status_code == 200
            book = Book(SimpleNamespace(clock=clock), requester, maker, maker)  # type: ignore[arg-type]
            req = await book.request()
            quote = await maker.ok("/trade/quote", book.quote_body(req), 201)
            body = {"request_id": req["request_id"], "quote_id": quote["quote_id"]}
            r = await requester.post("/trade/accept", body)
            # When the accept is not confirmed in time: 503, the money reserved, no position
            assert (r.status_code, r.json()["error"]["code"]) == (503, "chain_unavailable")
            assert _rows(db, "SELECT status FROM positions") == [("pending",)]
            assert _rows(db, "SELECT kind, status FROM outbox WHERE kind = 'lock'") == [
                ("lock", "pending")
            ]
            # and the daemon is killed
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    # Then a restart sends the lock, once
    async with daemon(db, *CHAIN) as d:
        requester = d.agent(requester.keypair)
        retried = await requester.ok("/trade/accept", body)  # a retry answers the same one
        position = retried["position"]
        assert position["status"] == "open" and position["lock_signature"]
    locks = _rows(db, "SELECT status, signature FROM outbox WHERE kind = 'lock'")
    assert locks == [("done", position["lock_signature"])]
    assert _rows(db, "SELECT count(*) FROM chain_txs WHERE kind = 'lock'") == [(1,)]
    assert _rows(db, "SELECT status FROM positions") == [("open",)]
    assert CHAIN_STATUS["open"] == 0
    code, out = await verify(db)
    assert code == 0, out
    assert "compared every balance and position with the chain" in out
