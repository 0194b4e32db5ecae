"""Named queries of the chain tables (migration m004): the local chain's accounts, its
key material, and the transactions that landed. Plain values only (no solders types):
perpd.chain._local converts accounts to and from these rows."""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = [
    "AccountRow",
    "chain_txs_of",
    "count_chain_accounts",
    "get_chain_meta",
    "load_chain_accounts",
    "recent_chain_txs",
    "record_chain_tx",
    "save_chain_accounts",
    "set_chain_meta",
]

# address, lamports, owner (base58), executable, rent_epoch (u64 as i64 bits), data
AccountRow = tuple[str, int, str, bool, int, bytes]


def save_chain_accounts(
    conn: sqlite3.Connection, accounts: dict[str, tuple[int, str, bool, int, bytes] | None]
) -> None:
    """Upsert each account's post-image; None deletes it (the account is gone)."""
    gone = [(a,) for a, row in accounts.items() if row is None]
    kept = [(a, *row) for a, row in accounts.items() if row is not None]
    conn.executemany("DELETE FROM chain_accounts WHERE address = ?", gone)
    conn.executemany(
        "INSERT INTO chain_accounts (address, lamports, owner, executable, rent_epoch, data) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET "
        "lamports = excluded.lamports, owner = excluded.owner, "
        "executable = excluded.executable, rent_epoch = excluded.rent_epoch, "
        "data = excluded.data",
        [(a, lam, owner, int(ex), epoch, data) for a, lam, owner, ex, epoch, data in kept],
    )


def load_chain_accounts(conn: sqlite3.Connection) -> list[AccountRow]:
    rows = conn.execute(
        "SELECT address, lamports, owner, executable, rent_epoch, data FROM chain_accounts "
        "ORDER BY address"
    ).fetchall()
    return [
        (a, lam, owner, bool(ex), epoch, bytes(data)) for a, lam, owner, ex, epoch, data in rows
    ]


def count_chain_accounts(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM chain_accounts").fetchone()[0])


def get_chain_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM chain_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_chain_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO chain_meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def record_chain_tx(
    conn: sqlite3.Connection, signature: str, slot: int, kind: str, ref: str | None
) -> None:
    """A transaction that landed: what it did (lock, settle, close, …) and for what
    (a position id, an agent). Recording the same signature twice is a no-op."""
    conn.execute(
        "INSERT INTO chain_txs (signature, slot, kind, ref) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (signature) DO NOTHING",
        (signature, slot, kind, ref),
    )


def _txs(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [{"signature": s, "slot": slot, "kind": k, "ref": r} for s, slot, k, r in rows]


def recent_chain_txs(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The newest transactions first."""
    rows = conn.execute(
        "SELECT signature, slot, kind, ref FROM chain_txs ORDER BY seq DESC LIMIT ?", (limit,)
    ).fetchall()
    return _txs(rows)


def chain_txs_of(conn: sqlite3.Connection, ref: str) -> list[dict[str, Any]]:
    """Every transaction recorded for ``ref``, oldest first."""
    rows = conn.execute(
        "SELECT signature, slot, kind, ref FROM chain_txs WHERE ref = ? ORDER BY seq", (ref,)
    ).fetchall()
    return _txs(rows)
