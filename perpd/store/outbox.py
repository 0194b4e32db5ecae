"""Named queries of the chain outbox: one row per chain action, sent in ``id`` order.

A row is written in the same transaction as the state change that asks for it
(``pending``), becomes ``sent`` once a transaction carrying it may be in flight (rpc),
and ends ``done`` (with the signature and slot that landed it) or ``failed`` (with the
chain's refusal). Nothing here talks to a chain: the submitter does.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

KINDS = ("lock", "settle", "close", "liquidate", "withdraw", "deposit")
_COLS = "id, kind, ref, payload, status, signature, slot, error, created_at, updated_at"


class OutboxStatus(StrEnum):
    PENDING = "pending"  # written with the change that asks for it
    SENT = "sent"  # a transaction carrying it may be in flight (rpc)
    DONE = "done"  # landed: signature and slot recorded
    FAILED = "failed"  # the chain refused it: error recorded


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    ref: str  # a position id, or an agent id (withdraw, deposit), or a batch label
    payload: dict[str, Any]
    status: OutboxStatus
    signature: str | None
    slot: int | None
    error: str | None
    created_at: int
    updated_at: int | None

    @property
    def finished(self) -> bool:
        return self.status in (OutboxStatus.DONE, OutboxStatus.FAILED)


def _row(r: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(r[0], r[1], r[2], json.loads(r[3]), OutboxStatus(r[4]), *r[5:])


def add(conn: sqlite3.Connection, kind: str, ref: str, payload: dict[str, Any], now: int) -> int:
    """Queue one chain action; returns its id (its place in the sending order)."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    cur = conn.execute(
        "INSERT INTO outbox (kind, ref, payload, created_at) VALUES (?, ?, ?, ?)",
        (kind, ref, json.dumps(payload, separators=(",", ":"), sort_keys=True), now),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def get(conn: sqlite3.Connection, row_id: int) -> OutboxRow | None:
    r = conn.execute(f"SELECT {_COLS} FROM outbox WHERE id = ?", (row_id,)).fetchone()
    return _row(r) if r else None


def unfinished(conn: sqlite3.Connection, limit: int) -> list[OutboxRow]:
    """Rows still to send or confirm, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLS} FROM outbox WHERE status IN ('pending', 'sent') ORDER BY id LIMIT ?",
        (limit,),
    )
    return [_row(r) for r in rows]


def mark_sent(conn: sqlite3.Connection, row_id: int, signature: str, now: int) -> None:
    """A transaction carrying the row may be in flight under ``signature``."""
    conn.execute(
        "UPDATE outbox SET status = 'sent', signature = ?, updated_at = ? WHERE id = ?",
        (signature, now, row_id),
    )


def mark_done(
    conn: sqlite3.Connection, row_id: int, signature: str, slot: int | None, now: int
) -> None:
    cur = conn.execute(
        "UPDATE outbox SET status = 'done', signature = ?, slot = ?, error = NULL, "
        "updated_at = ? WHERE id = ? AND status IN ('pending', 'sent')",
        (signature, slot, now, row_id),
    )
    if cur.rowcount != 1:
        raise RuntimeError(f"outbox row {row_id} was not pending")


def mark_failed(conn: sqlite3.Connection, row_id: int, error: str, now: int) -> None:
    cur = conn.execute(
        "UPDATE outbox SET status = 'failed', error = ?, updated_at = ? "
        "WHERE id = ? AND status IN ('pending', 'sent')",
        (error, now, row_id),
    )
    if cur.rowcount != 1:
        raise RuntimeError(f"outbox row {row_id} was not pending")


def of_ref(conn: sqlite3.Connection, ref: str, kind: str | None = None) -> list[OutboxRow]:
    sql = f"SELECT {_COLS} FROM outbox WHERE ref = ?"
    args: tuple[Any, ...] = (ref,)
    if kind is not None:
        sql += " AND kind = ?"
        args += (kind,)
    return [_row(r) for r in conn.execute(sql + " ORDER BY id", args)]


def recent_done(conn: sqlite3.Connection, limit: int) -> list[OutboxRow]:
    """The last landed transactions, newest first (the demo's chain view)."""
    rows = conn.execute(
        f"SELECT {_COLS} FROM outbox WHERE status = 'done' ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [_row(r) for r in rows]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per status (for /metrics and `perpd verify`)."""
    return dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())


def last_id(conn: sqlite3.Connection) -> int:
    """The newest row's id (0 for none): rows after it were written since it was read."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0])


def touches(conn: sqlite3.Connection, agent_id: str, after: int) -> bool:
    """Is a row naming ``agent_id`` (as its ref or anywhere in its payload) unfinished, or
    written after row ``after``? While neither, the mirror's balance of the agent moved
    with the chain's exactly (the direct deposit pickup reads it then)."""
    row = conn.execute(
        "SELECT 1 FROM outbox WHERE id > :after AND (ref = :agent OR instr(payload, :agent) > 0) "
        "UNION ALL SELECT 1 FROM outbox WHERE status IN ('pending', 'sent') "
        "AND (ref = :agent OR instr(payload, :agent) > 0) LIMIT 1",
        {"after": after, "agent": agent_id},
    ).fetchone()
    return row is not None
