"""History reads (issue 13): an agent's fills, funding payments, liquidations and closed
positions, paged on the event ``seq``; and the funding curve's starting snapshot.

Rows come from ``agent_history`` (migration 7), which `queries.append_event` and
`queries.append_events_bulk` fill for each event's audience in the event's own unit
(a funding tick's: in its sorted pass after the tick, `funding_index`; until then its
payments come from the log); the items' fields are the events' data, which the log
keeps forever (pruning removes finished requests and quotes, never events).
All of these run on the read-only connections.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from perpd.records import Position, PositionStatus
from perpd.store import funding_index
from perpd.store.queries import _POSITION_COLS, _position, whole

KINDS = ("fill", "funding", "liquidation", "closed")


@dataclass(frozen=True)
class Window:
    """What a page asks for: after which ``seq``, how many, which market, which times
    (``since`` inclusive, ``until`` exclusive, on the row's time)."""

    after: int
    limit: int
    market: str | None = None
    since: int | None = None
    until: int | None = None


@dataclass(frozen=True)
class HistoryRow:
    seq: int
    ts: int
    market: str | None
    data: dict[str, Any]


def _window(w: Window, t: str) -> tuple[str, list[Any]]:
    """``w``'s seq, market and time conditions on table alias ``t``."""
    sql = f"{t}.seq > ?"
    args: list[Any] = [w.after]
    if w.market is not None:
        sql += f" AND {t}.market = ?"
        args.append(w.market)
    if w.since is not None:
        sql += f" AND {t}.ts >= ?"
        args.append(w.since)
    if w.until is not None:
        sql += f" AND {t}.ts < ?"
        args.append(w.until)
    return sql, args


def _where(agent_id: str, kind: str, w: Window) -> tuple[str, list[Any]]:
    sql, args = _window(w, "h")
    return f"h.agent_id = ? AND h.kind = ? AND {sql}", [agent_id, kind, *args]


def history_sql(
    agent_id: str, kind: str, w: Window, span: tuple[int, int] | None = None
) -> tuple[str, list[Any]]:
    """The page query (also what the tests ask EXPLAIN QUERY PLAN about). ``span``:
    funding events whose rows are not written yet (`funding_index`), read from the log."""
    assert kind in KINDS
    where, args = _where(agent_id, kind, w)
    sql = (
        "SELECT h.seq, e.ts, e.market, e.data FROM agent_history h "
        f"JOIN events e ON e.seq = h.seq WHERE {where}"
    )
    if span is not None and kind == "funding":
        log_where, log_args = _window(w, "e")
        sql += (
            " UNION SELECT e.seq, e.ts, e.market, e.data FROM events e "
            "WHERE e.seq BETWEEN ? AND ? AND e.type = 'funding_settled' "
            f"AND ? IN (e.data ->> 'payer', e.data ->> 'receiver') AND {log_where}"
        )
        args = [*args, *span, agent_id, *log_args]
        return f"{sql} ORDER BY 1 LIMIT ?", [*args, w.limit]
    return f"{sql} ORDER BY h.seq LIMIT ?", [*args, w.limit]


def page_history(conn: sqlite3.Connection, agent_id: str, kind: str, w: Window) -> list[HistoryRow]:
    """Up to ``w.limit`` rows of ``kind`` for ``agent_id`` after ``w.after``, in seq order:
    a range of the (agent, kind, seq) key (or its market index), one event lookup each
    (and, while a funding tick's rows are unwritten, its events from the log: the same
    read snapshot tells which)."""
    span = funding_index.unindexed_range(conn) if kind == "funding" else None
    sql, args = history_sql(agent_id, kind, w, span)
    return [
        HistoryRow(seq, ts, market, json.loads(data))
        for seq, ts, market, data in conn.execute(sql, args)
    ]


def closed_positions_sql(agent_id: str, status: PositionStatus, w: Window) -> tuple[str, list[Any]]:
    """Positions ``agent_id`` was a party to that ended as ``status``, in the order they
    ended (the seq of the final close or of the liquidation)."""
    kind = "closed" if status == PositionStatus.CLOSED else "liquidation"
    where, args = _where(agent_id, kind, w)
    cols = ", ".join(f"p.{c}" for c in _POSITION_COLS.split(", "))
    sql = (
        f"SELECT h.seq, {cols} FROM agent_history h "
        "JOIN positions p ON p.position_id = h.position_id "
        f"WHERE {where} AND p.status = ? AND (p.requester = ? OR p.maker = ?) "
        "ORDER BY h.seq LIMIT ?"
    )
    return sql, [*args, status, agent_id, agent_id, w.limit]


def page_closed_positions(
    conn: sqlite3.Connection, agent_id: str, status: PositionStatus, w: Window
) -> list[tuple[int, Position]]:
    sql, args = closed_positions_sql(agent_id, status, w)
    return [(r[0], _position(r[1:])) for r in conn.execute(sql, args)]


def plan(conn: sqlite3.Connection, sql: str, args: list[Any]) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN details for ``sql`` (tests and the decision note)."""
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args)]


# ---------------------------------------------------------------- funding curve


@dataclass(frozen=True)
class LiveQuote:
    quote_id: str
    request_id: str
    market: str
    duration_s: int | None
    rate: int
    expires_at: int


@dataclass(frozen=True)
class LastFill:
    market: str
    duration_s: int | None
    rate: int
    filled_at: int


@dataclass(frozen=True)
class CurveSnapshot:
    seq: int
    requests: list[tuple[str, str, int | None]]  # request_id, market, duration_s
    quotes: list[LiveQuote]
    fills: list[LastFill]


def curve_snapshot(conn: sqlite3.Connection, now: float) -> CurveSnapshot:
    """The funding curve's state in one snapshot: the last event ``seq``, the requests
    that may still be quoted and their live quotes (partial indexes; bounded by the
    caps on open requests and live quotes) and the last fill per market and duration
    (one pass over the positions, once at start)."""
    last = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    requests = conn.execute(
        "SELECT request_id, market, duration_s FROM requests "
        "WHERE status IN ('open', 'pending') AND expires_at > ?",
        (whole(now),),
    ).fetchall()
    quotes = [
        LiveQuote(*row)
        for row in conn.execute(
            "SELECT q.quote_id, q.request_id, r.market, r.duration_s, q.rate, q.expires_at "
            "FROM quotes q INDEXED BY quotes_live JOIN requests r ON r.request_id = q.request_id "
            "WHERE q.status = 'live' AND q.expires_at > ? AND r.status = 'open'",
            (whole(now),),
        )
    ]
    fills = [
        LastFill(*row)
        for row in conn.execute(
            "SELECT market, d, rate, opened_at FROM (SELECT market, expires_at - opened_at AS d, "
            "rate, opened_at, row_number() OVER (PARTITION BY market, expires_at - opened_at "
            "ORDER BY opened_at DESC, rowid DESC) AS n FROM positions "
            "WHERE status IN ('open', 'closed', 'liquidated')) WHERE n = 1"
        )
    ]
    return CurveSnapshot(int(last), requests, quotes, fills)
