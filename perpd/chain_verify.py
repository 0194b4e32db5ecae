"""`perpd verify` against the chain: every balance and position of the mirror compared
with the program's accounts, and conservation checked on the chain's side too.

Local chain: the accounts saved in the same SQLite file (the chain the daemon rebuilds
at start), read in the same snapshot as the mirror. Rpc: the cluster's accounts, read
over the transport (collaterals of every agent the mirror knows, every position it has
an address for, the config and the vault); a daemon still running may land a
transaction between the two reads, so run it on a quiet venue.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from solders.pubkey import Pubkey

from perpd.chain._client import EscrowClient
from perpd.chain._program import LOCAL_PROGRAM_ID
from perpd.chain_mirror import chain_books, chain_conservation, differences
from perpd.store import outbox
from perpd.store import queries as q
from perpd.store.outbox import OutboxStatus


def _config_address(program_id: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([b"config"], program_id)[0]


def local_problems(conn: sqlite3.Connection) -> list[str] | None:
    """The differences between the mirror and the local chain saved in this file; None
    if the file holds no local chain (``--chain none`` or rpc)."""
    from perpd.chain_persist import load_local_chain

    saved, _secret = load_local_chain(conn)
    if not saved:
        return None
    accounts = dict(saved)
    config = accounts.get(_config_address(LOCAL_PROGRAM_ID))
    if config is None:
        return ["chain: the saved local chain has no config account (not initialized)"]
    client = EscrowClient.from_config(LOCAL_PROGRAM_ID, bytes(config.data))
    return compare(conn, client, accounts.items())


def compare(conn: sqlite3.Connection, client: EscrowClient, accounts: Any) -> list[str]:
    books = chain_books(client, accounts)
    problems = differences(q.mirror_books(conn), books, complete=True)
    problems += chain_conservation(books)
    unfinished = outbox.counts(conn)
    waiting = unfinished.get(OutboxStatus.PENDING, 0) + unfinished.get(OutboxStatus.SENT, 0)
    if waiting:
        problems.append(
            f"outbox: {waiting} chain action(s) not landed yet (start the daemon to send them)"
        )
    return problems


async def rpc_problems(conn_reader: Any, url: str, program_id: str) -> list[str]:
    """The same comparison against a cluster (``conn_reader(fn)`` runs ``fn`` on the
    database in one snapshot)."""
    from perpd.chain._rpc import RpcTransport

    program = Pubkey.from_string(program_id)
    transport = RpcTransport(url)
    try:
        config = await transport.get_account(_config_address(program))
        if config is None:
            return [f"chain: no config account for program {program_id} at {url}"]
        client = EscrowClient.from_config(program, bytes(config.data))
        agents, addresses = conn_reader(q.chain_addresses)
        keys = [client.config, client.vault]
        keys += [client.collateral_address(Pubkey.from_string(a)) for a in agents]
        keys += [Pubkey.from_string(a) for a in addresses]
        got = await transport.get_accounts(keys)
        return conn_reader(lambda conn: compare(conn, client, zip(keys, got, strict=True)))
    finally:
        await transport.aclose()
