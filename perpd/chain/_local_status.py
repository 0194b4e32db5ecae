"""``perpd chain status --db PATH``: the local chain a database holds, rebuilt read-only
from its saved accounts (the daemon may be running: one read snapshot, nothing written)."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from typing import Any

from perpd.chain._deploy import decode_config
from perpd.chain._loader import parse_programdata
from perpd.chain._local import LocalChain, accounts_from_rows
from perpd.chain._program import LOCAL_PROGRAM_ID, elf_length, packaged_sha256
from perpd.store import chain as qc
from perpd.store._store import connect_reader

__all__ = ["local_status"]

RECENT = 10  # last signatures shown


def _no_price(market: int) -> tuple[int, int, int]:
    raise RuntimeError("status sends no transaction")


def local_status(db: str) -> dict[str, Any]:
    conn = connect_reader(db)
    try:
        conn.execute("BEGIN")
        try:
            secret = qc.get_chain_meta(conn, "secret")
            rows = qc.load_chain_accounts(conn) if secret is not None else []
            recent = qc.recent_chain_txs(conn, RECENT) if secret is not None else []
        except sqlite3.OperationalError:  # a database from before migration m004
            secret, rows, recent = None, [], []
        conn.execute("COMMIT")
    finally:
        conn.close()
    base: dict[str, Any] = {
        "mode": "local",
        "program_id": str(LOCAL_PROGRAM_ID),
        "packaged_sha256": packaged_sha256(),
    }
    if secret is None or not rows:
        return base | {"initialized": False, "matches_package": False}
    chain = LocalChain.create(
        clock=time.time,
        oracle=_no_price,
        saved=accounts_from_rows(rows),
        secret=bytes.fromhex(secret),
    )
    client = chain.client
    programdata = chain.account(client.programdata)
    assert programdata is not None
    state = parse_programdata(bytes(programdata.data))
    length = elf_length(state.program)
    digest = None if length is None else hashlib.sha256(state.program[:length]).hexdigest()
    config = chain.account(client.config)
    assert config is not None
    clock = chain.svm.get_clock()
    return base | {
        "initialized": True,
        "programdata": str(client.programdata),
        "upgrade_authority": str(state.upgrade_authority),
        "program_sha256": digest,
        "matches_package": digest == packaged_sha256(),
        "slot": clock.slot,
        "unix_timestamp": clock.unix_timestamp,
        "usdc_mint": str(client.usdc_mint),
        "vault": str(client.vault),
        "router": str(chain.router.pubkey()),
        "accounts": len(rows),
        "config": decode_config(bytes(config.data)),
        "recent_transactions": recent,
    }
