"""Named queries: the only SQL in the daemon. Each takes the writer thread's connection.

Functions that change balances keep the ``ledger`` row in step, and the table CHECKs
(free, locked, collaterals >= 0) are a last line of defence: the engine checks first
and refuses with a clear error, so a CHECK firing is a bug, never a user's mistake.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from perpd.chain_mirror import MirrorBooks
from perpd.liq_bounds import Stored
from perpd.money import PositionState, open_fee
from perpd.records import (
    Account,
    Event,
    Position,
    PositionStatus,
    Quote,
    QuoteStatus,
    RequestStatus,
    TradeRequest,
)
from perpd.store import funding_index


def whole(now: float) -> int:
    """A clock reading as whole seconds, for comparing with the INTEGER time columns.

    ``expires_at > now`` is exactly ``expires_at > floor(now)`` for an integer column,
    and binding the integer keeps SQLite off its integer-versus-REAL comparison, which
    runs on the x87 unit: solders' LiteSVM (the local chain) can leave that unit's
    register stack full on its thread, and then one such comparison answers wrongly
    (a live quote looked expired). See docs/decisions.md, "Integer clocks in SQL".
    """
    return math.floor(now)


# ---------------------------------------------------------------- accounts & ledger


def get_account(conn: sqlite3.Connection, agent_id: str) -> Account:
    row = conn.execute(
        "SELECT free, locked, withdrawals FROM accounts WHERE agent_id = ?", (agent_id,)
    ).fetchone()
    return Account(agent_id, *row) if row else Account(agent_id, 0, 0)


def adjust_account(conn: sqlite3.Connection, agent_id: str, free: int, locked: int) -> None:
    """Add ``free`` and ``locked`` (either may be negative) to an agent's balances."""
    cur = conn.execute(
        "UPDATE accounts SET free = free + ?, locked = locked + ? WHERE agent_id = ?",
        (free, locked, agent_id),
    )
    if cur.rowcount == 0:
        conn.execute(
            "INSERT INTO accounts (agent_id, free, locked) VALUES (?, ?, ?)",
            (agent_id, free, locked),
        )


def record_deposit(conn: sqlite3.Connection, agent_id: str, amount: int) -> None:
    adjust_account(conn, agent_id, amount, 0)
    conn.execute("UPDATE ledger SET deposits = deposits + ? WHERE id = 1", (amount,))


def agent_ids(conn: sqlite3.Connection) -> list[str]:
    """Every agent with an account row, in order."""
    return [r[0] for r in conn.execute("SELECT agent_id FROM accounts ORDER BY agent_id")]


def record_withdrawal(
    conn: sqlite3.Connection, agent_id: str, amount: int, *, consented: bool = False
) -> None:
    """Debit a withdrawal; a consented one advances the agent's ``withdrawals`` count."""
    adjust_account(conn, agent_id, -amount, 0)
    if consented:
        conn.execute(
            "UPDATE accounts SET withdrawals = withdrawals + 1 WHERE agent_id = ?", (agent_id,)
        )
    conn.execute("UPDATE ledger SET withdrawals = withdrawals + ? WHERE id = 1", (amount,))


def add_fees(conn: sqlite3.Connection, amount: int) -> None:
    conn.execute("UPDATE ledger SET fees = fees + ? WHERE id = 1", (amount,))


def total_deposits(conn: sqlite3.Connection) -> int:
    """Everything ever deposited (the ceiling in `perpd.bounds` applies to it)."""
    return int(conn.execute("SELECT deposits FROM ledger WHERE id = 1").fetchone()[0])


def ledger(conn: sqlite3.Connection) -> dict[str, int]:
    """Totals for the conservation check: deposits, withdrawals, fees, free, locked."""
    d, w, f = conn.execute("SELECT deposits, withdrawals, fees FROM ledger").fetchone()
    free, locked = conn.execute(
        "SELECT coalesce(sum(free), 0), coalesce(sum(locked), 0) FROM accounts"
    ).fetchone()
    in_positions = conn.execute(
        "SELECT coalesce(sum(cr + cm), 0) FROM positions WHERE status = 'open'"
    ).fetchone()[0]
    return {
        "deposits": d,
        "withdrawals": w,
        "fees": f,
        "free": free,
        "locked": locked,
        "in_positions": in_positions,
    }


# ---------------------------------------------------------------- nonces

_U64 = 1 << 64


def _nonce_in(nonce: int | None) -> int | None:
    """A u64 nonce as the i64 SQLite stores (two's complement: 2^63.. wrap negative)."""
    return None if nonce is None else (nonce - _U64 if nonce >= 1 << 63 else nonce)


def _nonce_out(stored: int | None) -> int | None:
    return None if stored is None else stored % _U64


def nonce_used(conn: sqlite3.Connection, agent_id: str, nonce: int) -> bool:
    """Whether ``agent_id`` named ``nonce`` in a request, or has a position with it
    (positions are kept forever; a request row may have been pruned)."""
    stored = _nonce_in(nonce)
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM requests WHERE agent_id = ? AND nonce = ?) "
        "OR EXISTS (SELECT 1 FROM positions WHERE requester = ? AND nonce = ?)",
        (agent_id, stored, agent_id, stored),
    ).fetchone()
    return bool(row[0])


# ---------------------------------------------------------------- requests

_REQUEST_COLS = (
    "request_id, agent_id, market, side, size, leverage, max_rate, duration_s, "
    "created_at, expires_at, status, position_id, nonce, consent, consent_expires_at, "
    "request_hash, client_id"
)


def _request(row: tuple[Any, ...]) -> TradeRequest:
    r = TradeRequest(*row)
    return replace(r, nonce=_nonce_out(r.nonce)) if r.nonce is not None else r


def insert_request(conn: sqlite3.Connection, r: TradeRequest) -> None:
    conn.execute(
        f"INSERT INTO requests ({_REQUEST_COLS}) VALUES ({','.join('?' * 17)})",
        (
            r.request_id,
            r.agent_id,
            r.market,
            r.side,
            r.size,
            r.leverage,
            r.max_rate,
            r.duration_s,
            r.created_at,
            r.expires_at,
            r.status,
            r.position_id,
            _nonce_in(r.nonce),
            r.consent,
            r.consent_expires_at,
            r.request_hash,
            r.client_id,
        ),
    )


def get_request(conn: sqlite3.Connection, request_id: str) -> TradeRequest | None:
    row = conn.execute(
        f"SELECT {_REQUEST_COLS} FROM requests WHERE request_id = ?", (request_id,)
    ).fetchone()
    return _request(row) if row else None


def set_request_status(
    conn: sqlite3.Connection,
    request_id: str,
    status: RequestStatus,
    position_id: str | None = None,
) -> None:
    conn.execute(
        "UPDATE requests SET status = ?, position_id = ? WHERE request_id = ?",
        (status, position_id, request_id),
    )


def requests_due(conn: sqlite3.Connection, now: float, limit: int = -1) -> list[TradeRequest]:
    """Open requests whose deadline has passed, earliest first, at most ``limit`` (-1: all)."""
    rows = conn.execute(
        f"SELECT {_REQUEST_COLS} FROM requests WHERE status = 'open' AND expires_at <= ? "
        "ORDER BY expires_at LIMIT ?",
        (whole(now), limit),
    )
    return [_request(r) for r in rows]


def open_requests_of(
    conn: sqlite3.Connection, agent_id: str, now: float, cap: int
) -> tuple[int, int | None]:
    """How many live requests ``agent_id`` has (counting at most ``cap``), and the
    earliest deadline among them: O(cap) on the partial index, whatever the table holds."""
    row = conn.execute(
        "SELECT count(*), min(expires_at) FROM (SELECT expires_at FROM requests "
        "WHERE agent_id = ? AND status = 'open' AND expires_at > ? ORDER BY expires_at LIMIT ?)",
        (agent_id, whole(now), cap),
    ).fetchone()
    return int(row[0]), row[1]


def page_open_requests(
    conn: sqlite3.Connection, market: str | None, now: float, after: int, limit: int
) -> list[tuple[int, TradeRequest]]:
    """Live requests with rowid > ``after`` in rowid (insertion) order, with their rowid."""
    sql = (
        f"SELECT rowid, {_REQUEST_COLS} FROM requests WHERE status = 'open' AND rowid > ? "
        "AND expires_at > ?"
    )
    args: tuple[Any, ...] = (after, whole(now))
    if market is not None:
        sql += " AND market = ?"
        args += (market,)
    rows = conn.execute(sql + " ORDER BY rowid LIMIT ?", (*args, limit))
    return [(r[0], _request(r[1:])) for r in rows]


def next_request_deadline(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT min(expires_at) FROM requests WHERE status = 'open'").fetchone()
    return row[0]


# ---------------------------------------------------------------- quotes

_QUOTE_COLS = (
    "quote_id, request_id, agent_id, rate, collateral, created_at, expires_at, status, "
    "consent, valid_until, client_id"
)


def insert_quote(conn: sqlite3.Connection, q: Quote) -> None:
    conn.execute(
        f"INSERT INTO quotes ({_QUOTE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            q.quote_id,
            q.request_id,
            q.agent_id,
            q.rate,
            q.collateral,
            q.created_at,
            q.expires_at,
            q.status,
            q.consent,
            q.valid_until,
            q.client_id,
        ),
    )


def get_quote(conn: sqlite3.Connection, quote_id: str) -> Quote | None:
    row = conn.execute(
        f"SELECT {_QUOTE_COLS} FROM quotes WHERE quote_id = ?", (quote_id,)
    ).fetchone()
    return Quote(*row) if row else None


def quotes_of_request(
    conn: sqlite3.Connection, request_id: str, status: QuoteStatus | None = None
) -> list[Quote]:
    sql = f"SELECT {_QUOTE_COLS} FROM quotes WHERE request_id = ?"
    args: tuple[Any, ...] = (request_id,)
    if status is not None:
        sql += " AND status = ?"
        args += (status,)
    return [Quote(*r) for r in conn.execute(sql + " ORDER BY created_at, quote_id", args)]


def set_quote_status(conn: sqlite3.Connection, quote_id: str, status: QuoteStatus) -> None:
    conn.execute("UPDATE quotes SET status = ? WHERE quote_id = ?", (status, quote_id))


def quotes_due(conn: sqlite3.Connection, now: float, limit: int = -1) -> list[Quote]:
    """Live quotes whose deadline has passed, earliest first, at most ``limit`` (-1: all)."""
    rows = conn.execute(
        f"SELECT {_QUOTE_COLS} FROM quotes WHERE status = 'live' AND expires_at <= ? "
        "ORDER BY expires_at LIMIT ?",
        (whole(now), limit),
    )
    return [Quote(*r) for r in rows]


def quotes_due_with_request(
    conn: sqlite3.Connection, now: float, limit: int
) -> list[tuple[Quote, str, str]]:
    """Like `quotes_due`, each with its request's market and requester (one query)."""
    cols = ", ".join(f"q.{c}" for c in _QUOTE_COLS.split(", "))
    rows = conn.execute(
        f"SELECT {cols}, r.market, r.agent_id FROM quotes q "
        "JOIN requests r ON r.request_id = q.request_id "
        "WHERE q.status = 'live' AND q.expires_at <= ? ORDER BY q.expires_at LIMIT ?",
        (whole(now), limit),
    )
    n = len(_QUOTE_COLS.split(", "))
    return [(Quote(*r[:n]), r[n], r[n + 1]) for r in rows]


def live_quotes_of_agent(
    conn: sqlite3.Connection, agent_id: str, now: float, cap: int
) -> tuple[int, int | None]:
    """How many live quotes ``agent_id`` has (at most ``cap`` counted), earliest deadline."""
    row = conn.execute(
        "SELECT count(*), min(expires_at) FROM (SELECT expires_at FROM quotes "
        "WHERE agent_id = ? AND status = 'live' AND expires_at > ? ORDER BY expires_at LIMIT ?)",
        (agent_id, whole(now), cap),
    ).fetchone()
    return int(row[0]), row[1]


def live_quotes_on_request(
    conn: sqlite3.Connection, request_id: str, now: float, cap: int
) -> list[tuple[str, int]]:
    """(maker, expires_at) of up to ``cap`` live quotes on a request, earliest first."""
    rows = conn.execute(
        "SELECT agent_id, expires_at FROM quotes WHERE request_id = ? AND status = 'live' "
        "AND expires_at > ? ORDER BY expires_at LIMIT ?",
        (request_id, whole(now), cap),
    )
    return [(a, e) for a, e in rows]


def page_requests(
    conn: sqlite3.Connection, status: RequestStatus | None, after: int, limit: int
) -> list[tuple[int, TradeRequest]]:
    """Requests of any status (or ``status``) with rowid > ``after``, in rowid order."""
    where, args = ("AND status = ? ", (status,)) if status is not None else ("", ())
    rows = conn.execute(
        f"SELECT rowid, {_REQUEST_COLS} FROM requests WHERE rowid > ? {where}"
        "ORDER BY rowid LIMIT ?",
        (after, *args, limit),
    )
    return [(r[0], _request(r[1:])) for r in rows]


def page_live_quotes(
    conn: sqlite3.Connection, request_id: str, now: float, after: int, limit: int
) -> list[tuple[int, Quote]]:
    """Live quotes on a request with rowid > ``after``, in rowid order, with their rowid."""
    rows = conn.execute(
        f"SELECT rowid, {_QUOTE_COLS} FROM quotes WHERE request_id = ? AND status = 'live' "
        "AND expires_at > ? AND rowid > ? ORDER BY rowid LIMIT ?",
        (request_id, whole(now), after, limit),
    )
    return [(r[0], Quote(*r[1:])) for r in rows]


def reject_live_quotes(conn: sqlite3.Connection, request_id: str) -> list[tuple[str, str]]:
    """Mark every live quote of a request rejected in one statement; (quote_id, maker)."""
    rows = conn.execute(
        "UPDATE quotes SET status = 'rejected' WHERE request_id = ? AND status = 'live' "
        "RETURNING quote_id, agent_id",
        (request_id,),
    ).fetchall()
    return sorted((qid, agent) for qid, agent in rows)


def prune_finished(conn: sqlite3.Connection, before: int, limit: int) -> tuple[int, int]:
    """Delete up to ``limit`` finished quotes and then up to ``limit`` finished requests
    (with no quote left) whose deadline is before ``before``; returns (quotes, requests).

    The row with the largest rowid of each table is always kept, so SQLite never hands
    out a rowid again (it allocates max(rowid) + 1): page cursors stay monotonic.
    """
    quotes = conn.execute(
        "DELETE FROM quotes WHERE rowid IN (SELECT rowid FROM quotes WHERE status != 'live' "
        "AND expires_at < ? AND rowid < (SELECT max(rowid) FROM quotes) "
        "ORDER BY expires_at LIMIT ?)",
        (before, limit),
    ).rowcount
    requests = conn.execute(
        "DELETE FROM requests WHERE rowid IN (SELECT rowid FROM requests r "
        "WHERE status != 'open' AND expires_at < ? AND rowid < (SELECT max(rowid) FROM requests) "
        "AND NOT EXISTS (SELECT 1 FROM quotes q WHERE q.request_id = r.request_id) "
        "ORDER BY expires_at LIMIT ?)",
        (before, limit),
    ).rowcount
    return quotes, requests


def next_quote_deadline(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT min(expires_at) FROM quotes WHERE status = 'live'").fetchone()
    return row[0]


# ---------------------------------------------------------------- positions

_POSITION_COLS = (
    "position_id, request_id, quote_id, market, requester, maker, leverage, "
    "side, notional, entry_price, cr, cm, imr, imm, rate, t_base, funding_paid, "
    "funding_total, realized_pnl, status, opened_at, expires_at, next_funding_at, "
    "closed_at, exit_price, liquidator, nonce, position_address, closes, "
    "lock_signature, settle_signature, close_signature"
)


def _position(row: tuple[Any, ...]) -> Position:
    state = PositionState(*row[7:17])
    p = Position(*row[:7], state, *row[17:])  # type: ignore[arg-type, call-arg]
    return replace(p, nonce=_nonce_out(p.nonce)) if p.nonce is not None else p


def _position_values(p: Position, liq: Stored) -> tuple[Any, ...]:
    s = p.state
    return (
        p.position_id,
        p.request_id,
        p.quote_id,
        p.market,
        p.requester,
        p.maker,
        p.leverage,
        s.side,
        s.notional,
        s.entry_price,
        s.cr,
        s.cm,
        s.imr,
        s.imm,
        s.rate_ppm,
        s.t_base,
        s.funding_paid,
        p.funding_total,
        p.realized_pnl,
        p.status,
        p.opened_at,
        p.expires_at,
        p.next_funding_at,
        p.closed_at,
        p.exit_price,
        p.liquidator,
        _nonce_in(p.nonce),
        p.position_address,
        p.closes,
        p.lock_signature,
        p.settle_signature,
        p.close_signature,
        liq[0],
        liq[1],
        liq[2],
    )


_POSITION_WRITE_COLS = (*_POSITION_COLS.split(", "), "liq_low", "liq_high", "bound_until")


def save_position(conn: sqlite3.Connection, p: Position, liq: Stored) -> None:
    """Insert a position, or update only the columns that changed, with its index bounds
    (`perpd.liq_bounds`).

    Never ``INSERT OR REPLACE``: that deletes and re-inserts the row, rewriting every one
    of its index entries per settlement; an UPDATE of the changed columns touches only
    the indexes on those columns, and the row keeps its rowid.
    """
    values = _position_values(p, liq)
    held = conn.execute(
        f"SELECT {', '.join(_POSITION_WRITE_COLS)} FROM positions WHERE position_id = ?",
        (p.position_id,),
    ).fetchone()
    if held is None:
        conn.execute(
            f"INSERT INTO positions ({', '.join(_POSITION_WRITE_COLS)}) "
            f"VALUES ({','.join('?' * len(values))})",
            values,
        )
        return
    pairs = zip(_POSITION_WRITE_COLS, values, held, strict=True)
    changed = [(c, v) for c, v, old in pairs if v != old]
    if changed:
        conn.execute(
            f"UPDATE positions SET {', '.join(f'{c} = ?' for c, _ in changed)} "
            "WHERE position_id = ?",
            (*(v for _, v in changed), p.position_id),
        )


_SIGNATURE_COLUMNS = {
    "lock": "lock_signature",
    "settle": "settle_signature",
    "close": "close_signature",
}


def set_position_signature(
    conn: sqlite3.Connection, position_id: str, which: str, signature: str
) -> None:
    """Record the chain transaction that locked, last settled or last closed a position."""
    column = _SIGNATURE_COLUMNS[which]
    conn.execute(
        f"UPDATE positions SET {column} = ? WHERE position_id = ?", (signature, position_id)
    )


def reserved_of(conn: sqlite3.Connection, agent_id: str) -> int:
    """What ``agent_id`` has reserved for positions whose chain lock is pending."""
    total = 0
    rows = conn.execute(
        "SELECT requester, cr, cm, notional FROM positions WHERE status = 'pending' "
        "AND (requester = ? OR maker = ?)",
        (agent_id, agent_id),
    )
    for requester, cr, cm, notional in rows:
        total += cr + open_fee(notional) if requester == agent_id else cm
    return total


def get_position(conn: sqlite3.Connection, position_id: str) -> Position | None:
    row = conn.execute(
        f"SELECT {_POSITION_COLS} FROM positions WHERE position_id = ?", (position_id,)
    ).fetchone()
    return _position(row) if row else None


def page_positions(
    conn: sqlite3.Connection,
    agent_id: str | None,
    status: PositionStatus | None,
    after: int,
    limit: int,
    market: str | None = None,
    closed: tuple[int | None, int | None] = (None, None),
) -> list[tuple[int, Position]]:
    """Positions with rowid > ``after`` in rowid (opening) order, with their rowid.

    For an agent, the requester and maker sides are two index range scans of at most
    ``limit`` rows each, merged: a page costs O(limit) however many positions exist.
    ``market`` and ``closed`` (since, until on closed_at) filter those scans (issue 13).
    """
    status_sql, status_args = ("AND status = ? ", (status,)) if status is not None else ("", ())
    for cond, value in (("market = ?", market), ("closed_at >= ?", closed[0])):
        if value is not None:
            status_sql, status_args = f"{status_sql}AND {cond} ", (*status_args, value)
    if closed[1] is not None:
        status_sql, status_args = f"{status_sql}AND closed_at < ? ", (*status_args, closed[1])
    if agent_id is None:
        rows = conn.execute(
            f"SELECT rowid, {_POSITION_COLS} FROM positions WHERE rowid > ? {status_sql}"
            "ORDER BY rowid LIMIT ?",
            (after, *status_args, limit),
        )
    else:
        side = (
            f"SELECT rowid AS k, {_POSITION_COLS} FROM positions WHERE {{who}} = ? AND rowid > ? "
            f"{status_sql}ORDER BY rowid LIMIT ?"
        )
        one = (agent_id, after, *status_args, limit)
        rows = conn.execute(
            f"SELECT * FROM ({side.format(who='requester')}) UNION "
            f"SELECT * FROM ({side.format(who='maker')}) ORDER BY k LIMIT ?",
            (*one, *one, limit),
        )
    return [(r[0], _position(r[1:])) for r in rows]


def liquidation_candidates(conn: sqlite3.Connection, market: str, price: int) -> list[Position]:
    """Open positions of ``market`` whose index bounds say ``price`` may liquidate them."""
    rows = conn.execute(
        f"SELECT {_POSITION_COLS} FROM positions WHERE status = 'open' AND market = ? "
        "AND liq_low >= ? UNION "
        f"SELECT {_POSITION_COLS} FROM positions WHERE status = 'open' AND market = ? "
        "AND liq_high <= ?",
        (market, price, market, price),
    )
    return [_position(r) for r in rows]


def positions_funding_due(conn: sqlite3.Connection, now: int, limit: int) -> list[Position]:
    rows = conn.execute(
        f"SELECT {_POSITION_COLS} FROM positions INDEXED BY positions_funding "
        "WHERE status = 'open' AND next_funding_at <= ? ORDER BY next_funding_at LIMIT ?",
        (whole(now), limit),
    )
    return [_position(r) for r in rows]


def positions_term_due(conn: sqlite3.Connection, now: int, limit: int) -> list[Position]:
    rows = conn.execute(
        f"SELECT {_POSITION_COLS} FROM positions WHERE status = 'open' AND expires_at <= ? "
        "ORDER BY expires_at LIMIT ?",
        (whole(now), limit),
    )
    return [_position(r) for r in rows]


def next_position_deadline(conn: sqlite3.Connection) -> int | None:
    """The earliest funding time or term expiry among open positions: two seeks on the
    partial indexes (one min() over both columns scans every open position)."""
    row = conn.execute(
        "SELECT min((SELECT min(next_funding_at) FROM positions INDEXED BY positions_funding "
        "WHERE status = 'open'), coalesce((SELECT min(expires_at) FROM positions "
        "INDEXED BY positions_term WHERE status = 'open'), 1 << 62))"
    ).fetchone()
    return row[0]


# ---------------------------------------------------------------- events


_HISTORY_KINDS = {
    "position_opened": "fill",
    "funding_settled": "funding",
    "liquidation": "liquidation",
    "position_closed": "closed",
}


def history_kind(type_: str, data: dict[str, Any]) -> str | None:
    """The ``agent_history`` kind an event is recorded under (issue 13), if any: fills,
    funding payments, liquidations, and the close that ends a position."""
    kind = _HISTORY_KINDS.get(type_)
    if kind == "closed" and data.get("status") != PositionStatus.CLOSED:
        return None  # a partial close: the position is still open
    return kind


def append_event(
    conn: sqlite3.Connection,
    ts: int,
    type_: str,
    data: dict[str, Any],
    *,
    market: str | None,
    audience: Iterable[str] = (),
    public: bool = False,
) -> int:
    """Append one event in the current transaction; returns its ``seq``."""
    who = tuple(dict.fromkeys(audience))
    funding = type_ == FUNDING_SETTLED
    cur = conn.execute(
        "INSERT INTO events (ts, type, market, public, data, audience) VALUES (?, ?, ?, ?, ?, ?)",
        (
            ts,
            type_,
            market,
            int(public),
            json.dumps(data, separators=(",", ":")),
            None if funding else stored_audience(who),
        ),
    )
    seq = cur.lastrowid
    assert seq is not None
    if not funding:  # a payment is found by agent through its history rows
        conn.executemany(
            "INSERT INTO event_audience (agent_id, seq) VALUES (?, ?)", [(a, seq) for a in who]
        )
    kind = history_kind(type_, data)
    if kind is not None:  # issue 13: the audience's history rows, in the same unit
        conn.executemany(
            "INSERT INTO agent_history (agent_id, kind, seq, market, ts, position_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(a, kind, seq, market, ts, data.get("position_id")) for a in who],
        )
    pending = getattr(conn, "pending", None)
    if pending is not None:  # the store publishes these after COMMIT
        pending.append(Event(seq, ts, type_, market, public, who, data))
    return seq


FUNDING_SETTLED = "funding_settled"


def stored_audience(who: Iterable[str]) -> str | None:
    """An event's audience as its row keeps it (migration 10): the ids in key order."""
    return " ".join(sorted(who)) or None


# a payment's audience is its payer and receiver (`funding_index.FUNDING_AUDIENCE`)
_EVENT_COLS = (
    "seq, ts, type, market, public, data, "
    f"CASE WHEN e.type = 'funding_settled' THEN {funding_index.FUNDING_AUDIENCE} "
    "ELSE e.audience END"
)


def _events(rows: Iterable[tuple[Any, ...]]) -> list[Event]:
    return [
        Event(seq, ts, type_, market, bool(public), tuple((aud or "").split()), json.loads(data))
        for seq, ts, type_, market, public, data, aud in rows
    ]


def events_after(conn: sqlite3.Connection, since: int, limit: int) -> list[Event]:
    """Every event after ``since`` in ``seq`` order, with its audience (for the hub)."""
    rows = conn.execute(
        f"SELECT {_EVENT_COLS} FROM events e WHERE seq > ? ORDER BY seq LIMIT ?",
        (since, limit),
    )
    return _events(rows)


def events_visible_to(
    conn: sqlite3.Connection, agent_id: str, since: int, limit: int, until: int | None = None
) -> list[Event]:
    """Events in ``(since, until]`` that ``agent_id`` may see: public ones and its own
    (its payments by its funding history rows, or from the log while a tick has not
    written them yet: `funding_index`)."""
    return _events(conn.execute(*visible_sql(agent_id, since, limit, until)))


def visible_sql(
    agent_id: str, since: int, limit: int, until: int | None = None
) -> tuple[str, tuple[Any, ...]]:
    """`events_visible_to`'s query (also what the tests ask EXPLAIN QUERY PLAN about)."""
    top = 1 << 62 if until is None else until
    sql = (
        f"SELECT {_EVENT_COLS} FROM events e WHERE seq > ? AND seq <= ? AND "
        "(public = 1 OR seq IN (SELECT seq FROM event_audience WHERE agent_id = ? "
        "AND seq > ?) OR seq IN (SELECT seq FROM agent_history WHERE agent_id = ? "
        f"AND kind = 'funding' AND seq > ?) OR ({funding_index.UNINDEXED} "
        "AND ? IN (e.data ->> 'payer', e.data ->> 'receiver'))) ORDER BY seq LIMIT ?"
    )
    return sql, (since, top, agent_id, since, agent_id, since, agent_id, limit)


def count_events(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


# ---------------------------------------------------------------- replay memory & prices


def remember_signature(conn: sqlite3.Connection, signature: str, now_ms: int) -> bool:
    """Record an accepted signature; False if it was already used (a replay)."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO used_signatures (signature, seen_ms) VALUES (?, ?)",
        (signature, now_ms),
    )
    return cur.rowcount == 1


def forget_signatures_before(conn: sqlite3.Connection, before_ms: int) -> int:
    """Drop signatures too old to be replayed (their timestamp window has closed)."""
    return conn.execute("DELETE FROM used_signatures WHERE seen_ms < ?", (before_ms,)).rowcount


def pin_price(conn: sqlite3.Connection, market: str, price: int, now: int) -> None:
    conn.execute(
        "INSERT INTO pinned_prices (market, price, pinned_at) VALUES (?, ?, ?) "
        "ON CONFLICT (market) DO UPDATE SET price = excluded.price, pinned_at = excluded.pinned_at",
        (market, price, now),
    )


def pinned_prices(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT market, price FROM pinned_prices").fetchall())


STATE_TABLES = (
    "accounts",
    "ledger",
    "requests",
    "quotes",
    "positions",
    "events",
    "event_audience",
    "pinned_prices",
    "client_ids",
    "maker_protection",
)


# events derived from the state and written by a service on its own time (issue 13's
# funding_curve announcements): not state of their own, so a digest leaves them out
DERIVED_EVENTS = ("funding_curve",)


def state_digest(conn: sqlite3.Connection) -> str:
    """A hash of every row of venue state (not replay memory): equal digests, equal state."""
    h = hashlib.sha256()
    derived = ", ".join(f"'{t}'" for t in DERIVED_EVENTS)
    for table in STATE_TABLES:
        where = f" WHERE type NOT IN ({derived})" if table == "events" else ""
        for row in conn.execute(f"SELECT * FROM {table}{where} ORDER BY 1, 2"):
            h.update(repr(row).encode())
    return h.hexdigest()


def locked_by_positions(conn: sqlite3.Connection) -> dict[str, int]:
    """What each agent should hold locked: its collateral in open positions, plus, for a
    position whose chain lock is still pending, the reservation (requester: collateral and
    open fee; maker: collateral)."""
    out: dict[str, int] = {}
    rows = conn.execute(
        "SELECT requester, maker, cr, cm, notional, status FROM positions "
        "WHERE status IN ('open', 'pending')"
    )
    for requester, maker, cr, cm, notional, status in rows:
        fee = open_fee(notional) if status == PositionStatus.PENDING else 0
        out[requester] = out.get(requester, 0) + cr + fee
        out[maker] = out.get(maker, 0) + cm
    return out


def mirror_books(
    conn: sqlite3.Connection,
    *,
    agents: Iterable[str] | None = None,
    addresses: Iterable[str] | None = None,
) -> MirrorBooks:
    """The mirror's side of a comparison with the chain (`perpd.chain_mirror`): each
    agent's free balance plus its pending reservations, positions by chain address
    (pending and failed ones excluded: the chain has none of them), accrued fees.
    ``agents`` / ``addresses`` None: all of them (verify)."""
    if agents is None:
        agents = [r[0] for r in conn.execute("SELECT agent_id FROM accounts")]
    free = {a: get_account(conn, a).free + reserved_of(conn, a) for a in agents}
    positions: dict[str, Position] = {}
    if addresses is None:
        rows = conn.execute(
            f"SELECT {_POSITION_COLS} FROM positions WHERE position_address IS NOT NULL "
            "AND status IN ('open', 'closed', 'liquidated')"
        )
        positions = {p.position_address: p for p in map(_position, rows) if p.position_address}
    else:
        for address in addresses:
            p = position_by_address(conn, address)
            if p is not None:
                positions[address] = p
    return MirrorBooks(free, positions, ledger(conn)["fees"])


def chain_addresses(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """Every agent with an account and every position address the mirror knows."""
    agents = [r[0] for r in conn.execute("SELECT agent_id FROM accounts ORDER BY agent_id")]
    addresses = [
        r[0]
        for r in conn.execute(
            "SELECT position_address FROM positions WHERE position_address IS NOT NULL "
            "AND status IN ('open', 'closed', 'liquidated') ORDER BY rowid"
        )
    ]
    return agents, addresses


def position_by_address(conn: sqlite3.Connection, address: str) -> Position | None:
    row = conn.execute(
        f"SELECT {_POSITION_COLS} FROM positions WHERE position_address = ? "
        "AND status IN ('open', 'closed', 'liquidated')",
        (address,),
    ).fetchone()
    return _position(row) if row else None


def verify(conn: sqlite3.Connection) -> list[str]:
    """Every way the books could be wrong, as sentences; an empty list means they balance.

    Checks the file (integrity_check), conservation (deposits − withdrawals = free +
    locked + fees), that locked balances are exactly the open positions' collaterals,
    per agent, and that the event log has no hole.
    """
    problems: list[str] = []
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        problems.append(f"integrity_check: {integrity}")
    led = ledger(conn)
    held = led["free"] + led["locked"] + led["fees"]
    if led["deposits"] - led["withdrawals"] != held:
        problems.append(
            f"conservation: deposits − withdrawals = {led['deposits'] - led['withdrawals']} "
            f"but free + locked + fees = {held}"
        )
    expected = locked_by_positions(conn)
    held_locked = dict(conn.execute("SELECT agent_id, locked FROM accounts WHERE locked != 0"))
    for a in sorted(set(expected) | set(held_locked)):
        lk, c = held_locked.get(a, 0), expected.get(a, 0)
        if lk != c:
            problems.append(f"locked: {a} holds {lk} locked but {c} in open positions")
    first, last, count = conn.execute("SELECT min(seq), max(seq), count(*) FROM events").fetchone()
    if count and (first != 1 or last != count):
        problems.append(f"events: {count} events but seq runs {first}..{last}")
    return problems


# ---------------------------------------------------------------- funding at scale


def insert_positions(conn: sqlite3.Connection, rows: Iterable[tuple[Position, Stored]]) -> None:
    """Insert new positions with their liquidation bounds in one statement (bulk loads:
    the funding bench builds 100,000 at once)."""
    conn.executemany(
        f"INSERT INTO positions ({', '.join(_POSITION_WRITE_COLS)}) "
        f"VALUES ({','.join('?' * len(_POSITION_WRITE_COLS))})",
        (_position_values(p, liq) for p, liq in rows),
    )


def count_funding_due(conn: sqlite3.Connection, now: int) -> int:
    """How many open positions are due a funding settlement at ``now`` (for progress)."""
    return int(
        conn.execute(
            "SELECT count(*) FROM positions INDEXED BY positions_funding "
            "WHERE status = 'open' AND next_funding_at <= ?",
            (whole(now),),
        ).fetchone()[0]
    )


def funding_settled_counts(conn: sqlite3.Connection, prefix: str = "") -> tuple[int, int]:
    """(``funding_settled`` events, distinct positions they name), for positions whose
    id starts with ``prefix``: a check that each position was told exactly once."""
    row = conn.execute(
        "SELECT count(*), count(DISTINCT data ->> 'position_id') FROM events "
        "WHERE type = 'funding_settled' AND substr(data ->> 'position_id', 1, ?) = ?",
        (len(prefix), prefix),
    ).fetchone()
    return int(row[0]), int(row[1])


_FUNDING_COLS = (
    "rowid, position_id, market, requester, maker, side, notional, entry_price, "
    "cr, cm, imr, imm, rate, t_base, funding_paid, bound_until"
)
# (rowid, position_id, market, requester, maker, side, N, P0, Cr, Cm, IMr, IMm, f, t_base,
#  paid, bound_until)
FundingRow = tuple[
    int, str, str, str, str, int, int, int, int, int, int, int, int, int, int, int | None
]
# (rowid, Cr, Cm, paid, transfer, next_funding_at): a settlement that leaves the bounds
FundingUpdate = tuple[int, int, int, int, int, int]
# ... and the payer's new bound and its bound_until (`perpd.liq_bounds`)
BoundUpdate = tuple[int, int, int, int, int, int, int | None, int]


def funding_due_rows(conn: sqlite3.Connection, now: int, limit: int) -> list[FundingRow]:
    """The columns funding needs of up to ``limit`` due positions, earliest due first.

    ``INDEXED BY`` the partial index on next_funding_at: left to itself the planner
    takes the status index, reads every open position and sorts them, per batch."""
    rows = conn.execute(
        f"SELECT {_FUNDING_COLS} FROM positions INDEXED BY positions_funding "
        "WHERE status = 'open' AND next_funding_at <= ? ORDER BY next_funding_at LIMIT ?",
        (whole(now), limit),
    )
    return rows.fetchall()


def apply_funding(
    conn: sqlite3.Connection,
    kept: list[FundingUpdate],
    lows: list[BoundUpdate],
    highs: list[BoundUpdate],
) -> None:
    """Write a batch's settled collaterals, funding counters and next funding times, and
    the payers' liquidation bounds where they are rewritten, in one statement per kind
    (each batch travels as one JSON array), by rowid: the due rows come in rowid order,
    so the table is walked forward, not by its text key. ``kept`` leave both bounds,
    ``lows`` set ``liq_low``, ``highs`` ``liq_high``: a statement that set both would
    rewrite both indexes' entries of every row, even where the value stays (measured:
    SQLite does)."""
    common = (
        "UPDATE positions SET cr = u.value ->> 1, cm = u.value ->> 2, "
        "funding_paid = u.value ->> 3, funding_total = funding_total + (u.value ->> 4), "
        "next_funding_at = u.value ->> 5"
    )
    where = " FROM json_each(?) AS u WHERE positions.rowid = u.value ->> 0"
    if kept:
        conn.execute(common + where, (funding_index.ascii_json(kept),))
    for updates, column in ((lows, "liq_low"), (highs, "liq_high")):
        if updates:
            conn.execute(
                f"{common}, {column} = u.value ->> 6, bound_until = u.value ->> 7{where}",
                (funding_index.ascii_json(updates),),
            )


def liquidation_bounds(conn: sqlite3.Connection, position_id: str) -> Stored:
    """A position's stored index columns (liq_low, liq_high, bound_until)."""
    row = conn.execute(
        "SELECT liq_low, liq_high, bound_until FROM positions WHERE position_id = ?",
        (position_id,),
    ).fetchone()
    return row[0], row[1], row[2]


def adjust_locked(conn: sqlite3.Connection, deltas: dict[str, int]) -> None:
    """Add each agent's net ``locked`` change in one statement (funding moves locked
    collateral between agents that hold it, so every agent already has a row; a net
    change of 0 writes nothing)."""
    changed = [(agent, d) for agent, d in deltas.items() if d]
    if changed:
        conn.execute(
            "UPDATE accounts SET locked = locked + (d.value ->> 1) FROM json_each(?) AS d "
            "WHERE accounts.agent_id = d.value ->> 0",
            (funding_index.ascii_json(changed),),
        )


def append_events_bulk(
    conn: sqlite3.Connection,
    ts: int,
    type_: str,
    events: list[tuple[str, dict[str, Any], tuple[str, ...]]],
    *,
    index: bool = True,
) -> list[Event]:
    """Append private events ``(market, data, audience)``: one statement for the events,
    one for their audiences; seqs follow on from the log's in list order, exactly as that
    many `append_event` calls would number them. ``index=False`` (funding events only):
    the audience and history rows are left to `funding_index`'s sorted pass, the seqs
    recorded as unindexed. Returns the events."""
    if not events:
        return []
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    first = (row[0] if row else 0) + 1
    made = [
        Event(first + i, ts, type_, market, False, tuple(dict.fromkeys(who)), data)
        for i, (market, data, who) in enumerate(events)
    ]
    # one JSON document of [seq, market, data, audience]: the data as objects (SQLite
    # writes each back as the same compact text `append_event` stores), and the
    # audiences sorted by SQLite in key order, so each insert lands next to the last in
    # the (agent_id, seq) tree; both statements run without the GIL
    # (a funding tick's data are ASCII by construction: `funding_index.ascii_json`).
    # A payment's audience is not stored: it is its payer and receiver (`append_event`).
    funding = type_ == FUNDING_SETTLED
    rows = [
        (e.seq, e.market, e.data, None if funding else stored_audience(e.audience)) for e in made
    ]
    doc = funding_index.ascii_json(rows) if funding else json.dumps(rows, separators=(",", ":"))
    conn.execute(
        "INSERT INTO events (seq, ts, type, market, public, data, audience) "
        "SELECT e.value ->> 0, ?, ?, e.value ->> 1, 0, e.value -> 2, e.value ->> 3 "
        "FROM json_each(?) AS e",
        (ts, type_, doc),
    )
    pending = getattr(conn, "pending", None)
    if pending is not None:  # the store publishes these after COMMIT
        pending.extend(made)
    if not index:
        assert funding  # the readers fill in only these from the data
        funding_index.defer(conn, first, made[-1].seq)
        return made
    if not funding:
        conn.execute(
            "INSERT INTO event_audience (agent_id, seq) SELECT a.value, e.value ->> 0 "
            "FROM json_each(?) AS e, json_each(e.value, '$[1]') AS a ORDER BY 1, 2",
            (json.dumps([(e.seq, e.audience) for e in made]),),
        )
    kind = history_kind(type_, made[0].data)
    if kind is not None:  # issue 13: one statement for the audience's history rows
        history = sorted(
            (who, e.seq, e.market, e.data.get("position_id")) for e in made for who in e.audience
        )
        conn.execute(
            "INSERT INTO agent_history (agent_id, kind, seq, market, ts, position_id) "
            "SELECT h.value ->> 0, ?, h.value ->> 1, h.value ->> 2, ?, h.value ->> 3 "
            "FROM json_each(?) AS h",
            (kind, ts, json.dumps(history)),
        )
    return made


def any_funding_due(conn: sqlite3.Connection, now: int) -> bool:
    """Whether some open position is due a funding settlement (one index seek)."""
    return (
        conn.execute(
            "SELECT 1 FROM positions INDEXED BY positions_funding "
            "WHERE status = 'open' AND next_funding_at <= ? LIMIT 1",
            (whole(now),),
        ).fetchone()
        is not None
    )
