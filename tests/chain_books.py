"""The shared check that the mirror equals the chain (issue 10): every balance and
position in SQLite against the program's accounts, conservation on both sides, and the
accounts saved in the file equal to the live SVM's (what a restart rebuilds)."""

from __future__ import annotations

import sqlite3
from typing import Any

from solders.sysvar import CLOCK

from perpd.chain_persist import load_local_chain
from perpd.chain_verify import compare
from perpd.store import queries as q


async def assert_chain_matches(venue: Any) -> None:
    """With a local chain: no difference between the mirror, the saved chain and the SVM."""
    chain = venue.backend
    assert chain is not None and chain.mode == "local"

    def check(conn: sqlite3.Connection) -> tuple[list[str], list[Any]]:
        saved, _secret = load_local_chain(conn)
        return q.verify(conn) + compare(conn, chain.client, saved), saved

    problems, saved = await venue.read(check)
    assert problems == []
    # The Clock sysvar is left out: the backend sets it before every transaction (a
    # refused one ticks it too, and saves nothing), so it is the time, not state.
    kept = [(a, acc) for a, acc in saved if a != CLOCK]
    live = await chain.get_accounts([address for address, _ in kept])
    stale = [str(a) for (a, acc), now in zip(kept, live, strict=True) if acc != now]
    assert stale == [], f"saved accounts differ from the SVM's: {stale}"


async def chain_balances(venue: Any, agent_id: str) -> tuple[int, int]:
    """(free, locked) of an agent's collateral account on chain (locked: margins)."""
    from solders.pubkey import Pubkey

    client = venue.backend.client
    (account,) = await venue.backend.get_accounts(
        [client.collateral_address(Pubkey.from_string(agent_id))]
    )
    if account is None:
        return 0, 0
    c = client.decode_collateral(bytes(account.data))
    return c.free, c.locked


async def chain_position(venue: Any, address: str) -> Any:
    """The program's Position account at ``address``."""
    from solders.pubkey import Pubkey

    (account,) = await venue.backend.get_accounts([Pubkey.from_string(address)])
    assert account is not None, f"no position account at {address}"
    return venue.backend.client.decode_position(bytes(account.data))


async def chain_fees(venue: Any) -> int:
    client = venue.backend.client
    (account,) = await venue.backend.get_accounts([client.config])
    return int(client.decode_config(bytes(account.data)).accrued_fees)
