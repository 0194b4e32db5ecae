"""The local chain in the SQLite file: its accounts and its secret (the keys derive from
it), saved with `perpd.store.chain`'s queries in the unit that records what wrote them."""

from __future__ import annotations

import sqlite3
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey

from perpd.chain._local import account_rows, accounts_from_rows
from perpd.store import chain as chain_store

SECRET_KEY = "secret"


def load_local_chain(conn: sqlite3.Connection) -> tuple[list[tuple[Pubkey, Account]], bytes | None]:
    """The saved accounts (empty: no chain yet) and the chain's secret."""
    secret = chain_store.get_chain_meta(conn, SECRET_KEY)
    rows = chain_store.load_chain_accounts(conn)
    return accounts_from_rows(rows), None if secret is None else bytes.fromhex(secret)


def save_accounts(conn: sqlite3.Connection, accounts: dict[Pubkey, Any]) -> None:
    chain_store.save_chain_accounts(conn, account_rows(accounts))


def save_genesis(conn: sqlite3.Connection, accounts: dict[Pubkey, Any], secret: bytes) -> None:
    """A new local chain: every account genesis wrote, and its secret, in one unit."""
    if chain_store.count_chain_accounts(conn):
        raise RuntimeError("this database already holds a local chain")
    save_accounts(conn, accounts)
    chain_store.set_chain_meta(conn, SECRET_KEY, secret.hex())
