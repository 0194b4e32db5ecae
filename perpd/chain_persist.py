"""The local chain in the SQLite file: its accounts and its secret (the keys derive from
it), saved with `perpd.store.chain`'s queries in the unit that records what wrote them."""

from __future__ import annotations

import sqlite3

from solders.account import Account
from solders.pubkey import Pubkey

from perpd.chain._local import accounts_from_rows
from perpd.store import chain as chain_store

SECRET_KEY = "secret"


def load_local_chain(conn: sqlite3.Connection) -> tuple[list[tuple[Pubkey, Account]], bytes | None]:
    """The saved accounts (empty: no chain yet) and the chain's secret."""
    secret = chain_store.get_chain_meta(conn, SECRET_KEY)
    rows = chain_store.load_chain_accounts(conn)
    return accounts_from_rows(rows), None if secret is None else bytes.fromhex(secret)
