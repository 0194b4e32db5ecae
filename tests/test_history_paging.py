"""Issue 13: history pages never skip or repeat under concurrent writes, and their
queries are index range scans (EXPLAIN QUERY PLAN)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from perpd.store import _schema, connect
from perpd.store.history import Window, closed_positions_sql, history_sql, plan
from tests.conftest import Agent, Server, base_config, start_server
from tests.test_history import open_position, page

WRITERS = 4
EACH = 10  # positions each writer opens


@pytest.fixture
async def srv(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    # the reader pages as fast as it can: the per-agent rate limit is not under test here
    s = await start_server(nursery, base_config(tmp_path, agent_rate_per_s=0))
    yield s
    await s.http.aclose()
    s.shutdown.set()


async def walk(agent: Agent, path: str, limit: int) -> list[dict[str, Any]]:
    """Every page of ``path``, ``limit`` at a time, following next_cursor to its end."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        sep = "&" if "?" in path else "?"
        url = f"{path}{sep}limit={limit}" + ("" if cursor is None else f"&cursor={cursor}")
        body = await page(agent, url)
        items += body["fills"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_pages_under_four_concurrent_writers_return_every_fill_once(srv: Server) -> None:
    maker = srv.agent()
    writers = [srv.agent() for _ in range(WRITERS)]
    for a in (maker, *writers):
        await a.fund("1000000")
    await srv.pin("BTC-PERP", "50000")
    await srv.pin("ETH-PERP", "3000")
    opened: list[str] = []
    walks: list[list[dict[str, Any]]] = []
    done = trio.Event()

    async def writer(a: Agent, i: int) -> None:
        for n in range(EACH):
            market = "BTC-PERP" if (i + n) % 2 else "ETH-PERP"
            opened.append((await open_position(a, maker, market=market))["position_id"])

    async def reader() -> None:
        while not done.is_set():
            walks.append(await walk(maker, "/fills", 3))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        async with trio.open_nursery() as writing:
            for i, a in enumerate(writers):
                writing.start_soon(writer, a, i)
        done.set()

    final = await walk(maker, "/fills", 500)
    assert len(final) == WRITERS * EACH
    assert sorted(f["position_id"] for f in final) == sorted(opened)
    keys = [f["fill_id"] for f in final]
    assert keys == sorted(set(keys))  # strictly increasing: each once, in seq order
    assert len(walks) >= 3, "the reader should have walked while the writers wrote"
    for w in walks:
        # a walk made while fills were being written is exactly the start of the final
        # list: nothing skipped, nothing repeated, nothing out of order
        assert w == final[: len(w)]
    for a in writers:
        theirs = await walk(a, "/fills", 4)
        assert len(theirs) == EACH and {f["role"] for f in theirs} == {"requester"}
    # the market filter pages the same way: the two halves make up the whole list
    btc = await walk(maker, "/fills?market=BTC-PERP", 2)
    eth = await walk(maker, "/fills?market=ETH-PERP", 2)
    assert sorted(f["fill_id"] for f in btc + eth) == keys
    assert {f["market"] for f in btc} == {"BTC-PERP"}


async def test_history_queries_are_index_range_scans(srv: Server) -> None:
    agent = "A" * 44
    full = Window(after=7, limit=101, market=None, since=10, until=20)

    def plans(conn: Any) -> dict[str, list[str]]:
        return {
            "fill": plan(conn, *history_sql(agent, "fill", full)),
            "market": plan(conn, *history_sql(agent, "funding", Window(0, 10, "BTC-PERP"))),
            "closed": plan(conn, *closed_positions_sql(agent, "closed", Window(0, 10))),
        }

    got = await srv.venue.read(plans)
    joined = {k: " | ".join(v) for k, v in got.items()}
    assert "SEARCH h USING PRIMARY KEY (agent_id=? AND kind=? AND seq>?)" in joined["fill"]
    assert "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)" in joined["fill"]
    index = "agent_history_market (agent_id=? AND kind=? AND market=? AND seq>?)"
    assert f"INDEX {index}" in joined["market"], joined["market"]
    assert "SEARCH p USING INDEX sqlite_autoindex_positions_1 (position_id=?)" in joined["closed"]
    for text in joined.values():  # no table scan, no sort: pages stream in key order
        assert "SCAN" not in text and "TEMP B-TREE" not in text, text


def test_migration_copies_the_history_of_events_logged_before_it(tmp_path: Path) -> None:
    """A file from before migration 7: its fills, payments, liquidations and final closes
    are in agent_history once the daemon's connect migrates it; partial closes and other
    events are not."""
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path, isolation_level=None)
    for version, migration in enumerate(_schema.MIGRATIONS[:6], start=1):
        migration(raw)
        raw.execute(f"PRAGMA user_version = {version}")
    a, b, c = "A" * 44, "B" * 44, "C" * 44
    logged = [
        ("quote", {"quote_id": "q1"}, (a,)),
        ("position_opened", {"position_id": "p1", "status": "open"}, (a, b)),
        ("funding_settled", {"position_id": "p1", "payer": a}, (a, b)),
        ("position_closed", {"position_id": "p1", "status": "open"}, (a, b)),  # partial
        ("position_closed", {"position_id": "p1", "status": "closed"}, (a, b)),
        ("liquidation", {"position_id": "p2", "status": "liquidated"}, (a, b, c)),
    ]
    for seq, (kind, data, who) in enumerate(logged, start=1):
        raw.execute(
            "INSERT INTO events (seq, ts, type, market, public, data) VALUES (?, ?, ?, ?, 0, ?)",
            (seq, 100 + seq, kind, "BTC-PERP", json.dumps(data)),
        )
        raw.executemany("INSERT INTO event_audience VALUES (?, ?)", [(x, seq) for x in who])
    raw.close()
    conn = connect(path)
    rows = conn.execute(
        "SELECT agent_id, kind, seq, market, ts, position_id FROM agent_history "
        "ORDER BY agent_id, seq"
    ).fetchall()
    conn.close()
    mine = [(kind, seq, pid) for who, kind, seq, _, _, pid in rows if who == a]
    assert mine == [
        ("fill", 2, "p1"),
        ("funding", 3, "p1"),
        ("closed", 5, "p1"),
        ("liquidation", 6, "p2"),
    ]
    assert [(kind, seq) for who, kind, seq, *_ in rows if who == c] == [("liquidation", 6)]
    assert {(m, ts) for _, _, seq, m, ts, _ in rows if seq == 2} == {("BTC-PERP", 102)}
