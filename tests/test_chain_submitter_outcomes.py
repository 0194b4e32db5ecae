"""A chain action that lands before its caller starts waiting still gives the caller
its outcome (found as a 500 from the dev faucet under load: the submitter landed the
deposit between the commit of its outbox row and the caller's wait)."""

from __future__ import annotations

from perpd import custody
from perpd.records import Account
from perpd.store import outbox
from tests.conftest import Server

CHAIN = "local"


async def test_an_outcome_waits_for_a_caller_that_comes_late(server: Server) -> None:
    submitter = server.venue.submitter
    assert submitter is not None
    agent = server.agent().id

    def ask(conn, ctx):  # type: ignore[no-untyped-def]
        return custody.ask_deposit(conn, ctx, agent_id=agent, amount=5_000_000)

    _, row_id = await server.venue.mutate(ask, None, urgent=True)
    assert row_id is not None
    await submitter.drain()  # it lands before anyone waits
    row = await server.venue.read(lambda conn: outbox.get(conn, row_id))
    assert row is not None and row.status == "done"
    account = await submitter.wait_row(row_id, timeout_s=1)
    assert isinstance(account, Account) and account.free == 5_000_000
    await server.assert_balanced()
