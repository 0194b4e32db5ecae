"""Issue 11: an event row keeps its audience (migration 10), so reading events back never
searches ``event_audience`` by seq (a scan of the whole table per event, 1.2 s for 50
events after a 100,000-position tick); a payment's audience is its payer and receiver,
found by agent through its funding history rows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from perpd.store import _schema, connect
from perpd.store import queries as q
from perpd.store.history import plan

A, B, C = "A" * 44, "B" * 44, "C" * 44
LOGGED = [  # (type, public, data, audience as the writers gave it)
    ("trade_request", 1, {"request_id": "r1"}, ()),
    ("quote", 0, {"quote_id": "q1"}, (B,)),
    ("position_opened", 0, {"position_id": "p1", "status": "open"}, (B, A)),
    ("funding_settled", 0, {"position_id": "p1", "payer": B, "receiver": A}, (B, A)),
    ("funding_settled", 0, {"position_id": "p1", "payer": A, "receiver": B}, (A, B)),
    ("liquidation", 0, {"position_id": "p1", "status": "liquidated"}, (C, B, A)),
]


def _old_file(path: Path) -> None:
    """A file at migration 9 whose events were logged with an audience row each."""
    raw = sqlite3.connect(path, isolation_level=None)
    for version, migration in enumerate(_schema.MIGRATIONS[:9], start=1):
        migration(raw)
        raw.execute(f"PRAGMA user_version = {version}")
    for seq, (kind, public, data, who) in enumerate(LOGGED, start=1):
        raw.execute(
            "INSERT INTO events (seq, ts, type, market, public, data) "
            "VALUES (?, ?, ?, 'BTC-PERP', ?, ?)",
            (seq, 100 + seq, kind, public, json.dumps(data)),
        )
        raw.executemany("INSERT INTO event_audience VALUES (?, ?)", [(x, seq) for x in who])
        if kind == "funding_settled":  # what the writers of migrations 7-9 added
            raw.executemany(
                "INSERT INTO agent_history VALUES (?, 'funding', ?, 'BTC-PERP', ?, 'p1')",
                [(x, seq, 100 + seq) for x in who],
            )
    raw.close()


def test_migration_moves_each_audience_onto_its_event(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_file(path)
    conn = connect(path)
    stored = conn.execute("SELECT seq, audience FROM events ORDER BY seq").fetchall()
    assert stored == [
        (1, None),
        (2, B),
        (3, f"{A} {B}"),  # key order, as the old read-back gave it
        (4, None),  # a payment: its payer and receiver
        (5, None),
        (6, f"{A} {B} {C}"),
    ]
    audience_seqs = {r[0] for r in conn.execute("SELECT seq FROM event_audience")}
    assert audience_seqs == {2, 3, 6}
    log = q.events_after(conn, 0, 100)
    assert [e.audience for e in log] == [
        tuple(sorted(who)) for _kind, _public, _data, who in LOGGED
    ]
    assert [e.seq for e in q.events_visible_to(conn, A, 0, 100)] == [1, 3, 4, 5, 6]
    assert [e.seq for e in q.events_visible_to(conn, B, 0, 100)] == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in q.events_visible_to(conn, C, 0, 100)] == [1, 6]
    assert [e.seq for e in q.events_visible_to(conn, A, 3, 2)] == [4, 5]
    assert q.verify(conn) == []


def test_new_events_keep_their_audience_and_payments_none(tmp_path: Path) -> None:
    conn = connect(tmp_path / "new.db")
    conn.execute("BEGIN IMMEDIATE")
    q.append_event(conn, 1, "quote", {"quote_id": "q1"}, market="BTC-PERP", audience=[B, A, B])
    q.append_event(
        conn,
        2,
        "funding_settled",
        {"position_id": "p1", "payer": B, "receiver": A},
        market="BTC-PERP",
        audience=[B, A],
    )
    q.append_events_bulk(conn, 3, "quote_rejected", [("BTC-PERP", {"quote_id": "q2"}, (C, A))])
    conn.execute("COMMIT")
    assert conn.execute("SELECT seq, audience FROM events ORDER BY seq").fetchall() == [
        (1, f"{A} {B}"),
        (2, None),
        (3, f"{A} {C}"),
    ]
    assert conn.execute("SELECT agent_id, seq FROM event_audience ORDER BY 2, 1").fetchall() == [
        (A, 1),
        (B, 1),
        (A, 3),
        (C, 3),
    ]
    assert [e.audience for e in q.events_after(conn, 0, 10)] == [(A, B), (A, B), (A, C)]
    assert [e.seq for e in q.events_visible_to(conn, A, 0, 10)] == [1, 2, 3]
    assert [e.seq for e in q.events_visible_to(conn, C, 0, 10)] == [3]


def test_reading_events_back_searches_no_audience_by_seq(tmp_path: Path) -> None:
    """Each event is one rowid lookup; the agent's rows are key ranges of their trees."""
    conn = connect(tmp_path / "plan.db")
    text = " | ".join(plan(conn, *q.visible_sql(A, 0, 500)))
    assert "SCAN event_audience" not in text and "SCAN a" not in text, text
    assert "event_audience USING PRIMARY KEY (agent_id=? AND seq>?)" in text, text
    assert "agent_history USING PRIMARY KEY (agent_id=? AND kind=? AND seq>?)" in text, text
    after = " | ".join(plan(conn, f"SELECT {q._EVENT_COLS} FROM events e WHERE seq > 0", []))
    assert "SCAN" not in after.replace("SCAN funding_unindexed", ""), after
