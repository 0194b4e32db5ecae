"""Issue 8 finding 10: repeated faucet calls must stop at a ceiling with a clear 4xx,
never push a balance past 2^63 into a SQLite REAL; every amount stays an INTEGER."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from perpd.bounds import MAX_AMOUNT, MAX_BALANCE, MAX_TOTAL_DEPOSITS
from perpd.store import connect
from perpd.units import format_usdc
from tests.conftest import Server, usdc

MAX = format_usdc(MAX_AMOUNT)  # the largest single amount: 1,000,000,000 USDC


async def test_repeated_faucet_stops_at_the_balance_ceiling(server: Server) -> None:
    agent = server.agent()
    calls = MAX_BALANCE // MAX_AMOUNT
    for _ in range(calls):
        await agent.fund(MAX)
    refused = await server.http.post("/dev/faucet", json={"agent_id": agent.id, "amount_usdc": MAX})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_request" and "ceiling" in error["message"]
    more = await server.http.post(
        "/dev/faucet", json={"agent_id": agent.id, "amount_usdc": "0.000001"}
    )
    assert more.status_code == 400  # not even one micro-USDC past it
    assert await agent.balances() == (MAX_BALANCE, 0)

    # the agent can still use and withdraw it all, exactly
    r = await agent.post(f"/accounts/{agent.id}/withdraw", {"amount_usdc": MAX})
    assert r.status_code == 200, r.text
    assert usdc(r.json()["free_usdc"]) == MAX_BALANCE - MAX_AMOUNT
    await agent.fund(MAX)  # back under the ceiling: allowed again
    await server.assert_balanced()

    def types(conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute(
            "SELECT typeof(free), typeof(locked) FROM accounts UNION "
            "SELECT typeof(deposits), typeof(withdrawals) FROM ledger"
        )
        return {t for row in rows for t in row}

    assert await server.venue.read(types) == {"integer"}


async def test_venue_wide_deposits_have_a_ceiling(server: Server) -> None:
    """Deposits over the venue's life stop at 2^62 micro-USDC, so every sum of balances
    (bounded by deposits through conservation) fits in 64 bits."""
    near = MAX_TOTAL_DEPOSITS - MAX_AMOUNT // 2

    def pretend_history(conn: sqlite3.Connection) -> None:  # as if many agents came and went
        conn.execute("UPDATE ledger SET deposits = ?, withdrawals = ? WHERE id = 1", (near, near))

    await server.venue.store.write(pretend_history)
    agent = server.agent()
    refused = await server.http.post("/dev/faucet", json={"agent_id": agent.id, "amount_usdc": MAX})
    assert refused.status_code == 400 and "ceiling" in refused.json()["error"]["message"]
    await agent.fund(format_usdc(MAX_AMOUNT // 2))  # exactly up to it
    await server.assert_balanced()


def test_a_balance_past_64_bits_is_refused_not_stored_as_real(tmp_path: Path) -> None:
    """The schema's last line of defence: SQL arithmetic past 2^63 - 1 becomes a REAL in
    SQLite; the trigger refuses the unit instead."""
    conn = connect(f"{tmp_path}/t.db")
    conn.execute("INSERT INTO accounts (agent_id, free, locked) VALUES ('a', ?, 0)", (2**63 - 1,))
    with pytest.raises(sqlite3.IntegrityError, match="64-bit integers"):
        conn.execute("UPDATE accounts SET free = free + 1 WHERE agent_id = 'a'")
    with pytest.raises(sqlite3.IntegrityError, match="64-bit integers"):
        conn.execute("UPDATE ledger SET deposits = deposits + ? WHERE id = 1", (2**63 - 1,))
        conn.execute("UPDATE ledger SET deposits = deposits + 1 WHERE id = 1")
    assert conn.execute("SELECT typeof(free) FROM accounts").fetchone() == ("integer",)
    conn.close()
