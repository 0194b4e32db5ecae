"""SQL of issue 13's order-flow controls: cancels, client ids, maker protection.

Like `perpd.store.queries`, each function takes the writer's (or a reader's)
connection and runs inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from perpd.store.queries import whole


def cancel_live_quotes_of_agent(
    conn: sqlite3.Connection, agent_id: str, now: float
) -> list[tuple[str, str, str, str]]:
    """Cancel every live quote of ``agent_id`` still before its deadline (one UPDATE on
    the live-quote index; at most ``max_live_quotes_per_agent`` rows); returns
    ``(quote_id, request_id, market, requester)`` of each, oldest first."""
    ids = conn.execute(
        "UPDATE quotes SET status = 'cancelled' WHERE agent_id = ? AND status = 'live' "
        "AND expires_at > ? RETURNING quote_id",
        (agent_id, whole(now)),
    ).fetchall()
    return _with_requests(conn, [i for (i,) in ids])


def cancel_live_quotes_on_request(
    conn: sqlite3.Connection, request_id: str
) -> list[tuple[str, str]]:
    """Cancel every live quote on a request; returns ``(quote_id, maker)`` of each."""
    rows = conn.execute(
        "UPDATE quotes SET status = 'cancelled' WHERE request_id = ? AND status = 'live' "
        "RETURNING quote_id, agent_id",
        (request_id,),
    ).fetchall()
    return sorted((quote_id, maker) for quote_id, maker in rows)


def _with_requests(
    conn: sqlite3.Connection, quote_ids: list[str]
) -> list[tuple[str, str, str, str]]:
    if not quote_ids:
        return []
    rows = conn.execute(
        "SELECT q.quote_id, q.request_id, r.market, r.agent_id FROM quotes q "
        "JOIN requests r ON r.request_id = q.request_id "
        "WHERE q.quote_id IN (SELECT value FROM json_each(?)) ORDER BY q.rowid",
        (json.dumps(quote_ids),),
    )
    return [(a, b, c, d) for a, b, c, d in rows]


# ---------------------------------------------------------------- client ids


def recall_client_id(
    conn: sqlite3.Connection, agent_id: str, kind: str, client_id: str
) -> tuple[str, int, dict[str, Any]] | None:
    """``(fingerprint, status, body)`` of the call first made with this client id."""
    row = conn.execute(
        "SELECT fingerprint, status, body FROM client_ids "
        "WHERE agent_id = ? AND kind = ? AND client_id = ?",
        (agent_id, kind, client_id),
    ).fetchone()
    return None if row is None else (row[0], int(row[1]), json.loads(row[2]))


def remember_client_id(
    conn: sqlite3.Connection,
    agent_id: str,
    kind: str,
    client_id: str,
    fingerprint: str,
    status: int,
    body: dict[str, Any],
    now: int,
) -> None:
    conn.execute(
        "INSERT INTO client_ids (agent_id, kind, client_id, fingerprint, status, body, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (agent_id, kind, client_id, fingerprint, status, json.dumps(body), now),
    )


def prune_client_ids(conn: sqlite3.Connection, before: int, limit: int) -> int:
    """Forget up to ``limit`` client ids first used before ``before``."""
    return conn.execute(
        "DELETE FROM client_ids WHERE (agent_id, kind, client_id) IN (SELECT agent_id, "
        "kind, client_id FROM client_ids WHERE created_at < ? ORDER BY created_at LIMIT ?)",
        (before, limit),
    ).rowcount


# ---------------------------------------------------------------- maker protection


@dataclass(frozen=True)
class Protection:
    agent_id: str
    window_s: int
    max_fills: int | None
    max_notional: int | None  # micro-USDC
    cooldown_s: int
    frozen_until: int  # 0: never frozen
    counted_after: int  # fills count from the position after this rowid (reset on trigger)
    updated_at: int


_PROTECTION_COLS = (
    "agent_id, window_s, max_fills, max_notional, cooldown_s, frozen_until, counted_after, "
    "updated_at"
)


def get_protection(conn: sqlite3.Connection, agent_id: str) -> Protection | None:
    row = conn.execute(
        f"SELECT {_PROTECTION_COLS} FROM maker_protection WHERE agent_id = ?", (agent_id,)
    ).fetchone()
    return None if row is None else Protection(*row)


def save_protection(conn: sqlite3.Connection, p: Protection) -> None:
    conn.execute(
        f"INSERT INTO maker_protection ({_PROTECTION_COLS}) VALUES (?,?,?,?,?,?,?,?) "
        "ON CONFLICT (agent_id) DO UPDATE SET window_s = excluded.window_s, "
        "max_fills = excluded.max_fills, max_notional = excluded.max_notional, "
        "cooldown_s = excluded.cooldown_s, frozen_until = excluded.frozen_until, "
        "counted_after = excluded.counted_after, updated_at = excluded.updated_at",
        (
            p.agent_id,
            p.window_s,
            p.max_fills,
            p.max_notional,
            p.cooldown_s,
            p.frozen_until,
            p.counted_after,
            p.updated_at,
        ),
    )


def last_position_rowid(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(rowid) FROM positions").fetchone()
    return int(row[0] or 0)


def maker_fills_since(
    conn: sqlite3.Connection, maker: str, opened_after: int, counted_after: int
) -> tuple[int, int]:
    """(fills, notional) of ``maker``'s positions opened after ``opened_after`` (unix s)
    and with rowid > ``counted_after``, of every status but ``failed`` (a refused lock):
    a range of the (maker, opened_at) index, as long as the window's fills."""
    row = conn.execute(
        "SELECT count(*), coalesce(sum(notional), 0) FROM positions "
        "INDEXED BY positions_maker_opened WHERE maker = ? AND opened_at > ? "
        "AND rowid > ? AND status != 'failed'",
        (maker, opened_after, counted_after),
    ).fetchone()
    return int(row[0]), int(row[1])
