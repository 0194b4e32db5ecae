# ruff: noqa: F811, ASYNC110  (the fixtures come from test_consent_http; polls wait on the chain)
"""The venue on its default local chain, over real HTTP: every trade lands in the escrow
program (LiteSVM in the daemon), and each test reads the money back from the SVM.

Given three funded agents (the faucet mints test USDC and deposits it through the
program) and BTC pinned at 50,000, a 1,000 USDC 10x position with a 200 USDC maker.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from perpd import money
from perpd.store import outbox
from perpd.store import queries as q
from tests.chain_books import chain_balances, chain_fees, chain_position
from tests.conftest import usdc
from tests.test_consent_http import Book, M, book, chain  # noqa: F401  (fixtures)

SIZE, CR, CM = 1000 * M, 100 * M, 200 * M
FEE = money.open_fee(SIZE)


async def events_of(book: Book, agent: Any, type_: str) -> list[dict[str, Any]]:
    r = await agent.get("/events?since=0")
    return [e["data"] for e in r.json()["events"] if e["type"] == type_]


async def test_faucet_deposits_through_the_program(book: Book) -> None:
    v = book.server.venue
    assert await chain_balances(v, book.requester.id) == (10_000 * M, 0)
    rows = await v.read(lambda conn: outbox.of_ref(conn, book.requester.id, "deposit"))
    assert [r.status for r in rows] == ["done"] and rows[0].signature
    await book.server.assert_balanced()


async def test_accept_locks_both_collaterals_and_the_fee_on_chain(book: Book) -> None:
    v = book.server.venue
    fees_before = await chain_fees(v)
    position = await book.open()
    # Then the position account holds both collaterals, the fee is accrued
    onchain = await chain_position(v, position["position_address"])
    assert (onchain.status, onchain.cr, onchain.cm, onchain.notional) == (0, CR, CM, SIZE)
    assert onchain.entry_price == 50_000 * 10**8
    assert await chain_fees(v) - fees_before == FEE
    assert await chain_balances(v, book.requester.id) == (10_000 * M - CR - FEE, CR)
    assert await chain_balances(v, book.maker.id) == (10_000 * M - CM, CM)
    # and position_opened carried the lock's signature, which the outbox recorded
    lock = await v.read(lambda conn: outbox.of_ref(conn, position["position_id"], "lock"))
    assert [r.status for r in lock] == ["done"]
    opened = await events_of(book, book.maker, "position_opened")
    assert [e["lock_signature"] for e in opened] == [lock[0].signature]
    assert (await book.requester.balances()) == (10_000 * M - CR - FEE, CR)
    await book.server.assert_balanced()


async def test_close_releases_pnl_on_chain(book: Book) -> None:
    v = book.server.venue
    position = await book.open()
    await book.server.pin("BTC-PERP", "51000")  # +2 %: the long requester wins 20 USDC
    half = await book.requester.ok("/trade/close", book.close_body(position, 50))
    onchain = await chain_position(v, position["position_address"])
    assert (onchain.status, onchain.closes, onchain.notional) == (0, 1, SIZE // 2)
    assert usdc(half["realized_pnl_usdc"]) == 10 * M
    full = await book.requester.ok("/trade/close", book.close_body(half["position"], 100))
    onchain = await chain_position(v, position["position_address"])
    assert (onchain.status, onchain.cr, onchain.cm, onchain.closes) == (1, 0, 0, 2)
    assert full["position"]["close_signature"]
    # everything released: the requester won 20 USDC from the maker, on chain
    assert await chain_balances(v, book.requester.id) == (10_000 * M - FEE + 20 * M, 0)
    assert await chain_balances(v, book.maker.id) == (10_000 * M - 20 * M, 0)
    await book.server.assert_balanced()


async def test_funding_is_settled_by_the_program(book: Book) -> None:
    v = book.server.venue
    position = await book.open()
    # When a funding period passes, the scheduler cranks settle_funding
    book.server.clock.advance(v.funding_period_s)
    with trio.fail_after(10):
        while not (p := await v.read(lambda c: q.get_position(c, position["position_id"]))) or (
            p.settle_signature is None
        ):
            await trio.sleep(0.05)
    onchain = await chain_position(v, position["position_address"])
    # 500 ppm of 1,000 USDC per period, requester -> maker, moved between the collaterals
    assert onchain.funding_paid == p.state.funding_paid > 0
    assert (onchain.cr, onchain.cm) == (p.state.cr, p.state.cm) == (CR - 500_000, CM + 500_000)
    settled = await events_of(book, book.requester, "funding_settled")
    assert [e["amount_usdc"] for e in settled] == ["0.500000"]
    await book.server.assert_balanced()


async def test_liquidation_by_an_agent_pays_its_reward_on_chain(book: Book) -> None:
    v = book.server.venue
    position = await book.open()
    await book.server.pin("BTC-PERP", "45500")  # -9 %: the requester's equity < IM / 2
    done = await book.other.ok("/trade/liquidate", {"position_id": position["position_id"]})
    onchain = await chain_position(v, position["position_address"])
    assert onchain.status == 2
    reward = usdc(done["reward_usdc"])
    assert reward > 0
    assert await chain_balances(v, book.other.id) == (10_000 * M + reward, 0)
    await book.server.assert_balanced()


async def test_withdraw_goes_through_the_program_to_the_agents_wallet(book: Book) -> None:
    v = book.server.venue
    wallet = book.wallet(book.maker)
    path = f"/accounts/{book.maker.id}/withdraw"
    account = await book.maker.ok(path, book.withdraw_body(book.maker, 250 * M, 0, wallet))
    assert (usdc(account["free_usdc"]), account["withdrawals"]) == (9_750 * M, 1)
    assert await chain_balances(v, book.maker.id) == (9_750 * M, 0)
    (token,) = await v.backend.get_accounts([wallet])
    assert int.from_bytes(bytes(token.data)[64:72], "little") == 250 * M
    await book.server.assert_balanced()


async def test_a_lock_the_program_refuses_releases_the_reservation(book: Book) -> None:
    """Terms changed after signing (the quote's rate, in the outbox row) are refused by
    the program: both collaterals and the fee go back to free, both sides are told."""
    v, s = book.server.venue, book.server
    submitter = v.submitter
    req = await book.request()
    quote = await book.maker.ok("/trade/quote", book.quote_body(req), 201)
    before = await book.requester.balances(), await book.maker.balances()
    submitter.pause()

    async def accept() -> Any:
        return await book.requester.post(
            "/trade/accept", {"request_id": req["request_id"], "quote_id": quote["quote_id"]}
        )

    async with trio.open_nursery() as n:
        answer: list[Any] = []
        n.start_soon(lambda: _collect(answer, accept))
        with trio.fail_after(5):
            while not (rows := await v.read(lambda c: outbox.unfinished(c, 10))):
                await trio.sleep(0.02)
        # reserved meanwhile: free -> locked for both collaterals and the fee
        assert await book.requester.balances() == (before[0][0] - CR - FEE, CR + FEE)
        row = rows[0]
        tampered = {**row.payload, "quote": {**row.payload["quote"], "rate": 499}}
        await s.venue.store.write(
            lambda c: c.execute(
                "UPDATE outbox SET payload = ? WHERE id = ?", (_json(tampered), row.id)
            )
        )
        submitter.resume()
    r = answer[0]
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized"), r.text
    assert "does not verify" in r.json()["error"]["message"]
    assert (await book.requester.balances(), await book.maker.balances()) == before
    for agent in (book.requester, book.maker):
        failed = await events_of(book, agent, "position_failed")
        assert [e["code"] for e in failed] == ["unauthorized"]
    got = (await s.http.get(f"/requests/{req['request_id']}")).json()
    assert got["status"] == "open"  # it may be filled by another quote while it lives
    await s.assert_balanced()


async def _collect(out: list[Any], fn: Any) -> None:
    out.append(await fn())


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@pytest.mark.parametrize("pct", [100])
async def test_term_end_is_closed_on_chain_by_the_scheduler(book: Book, pct: int) -> None:
    v = book.server.venue
    req = await book.request(book.terms(duration=3600))
    quote = await book.maker.ok("/trade/quote", book.quote_body(req), 201)
    body = {"request_id": req["request_id"], "quote_id": quote["quote_id"]}
    position = (await book.requester.ok("/trade/accept", body))["position"]
    book.server.clock.advance(3600)
    with trio.fail_after(10):
        while (await chain_position(v, position["position_address"])).status != 1:
            await trio.sleep(0.05)
    await book.server.assert_balanced()


async def test_perpd_verify_compares_the_mirror_with_the_saved_chain(
    book: Book, tmp_path: Any, capsys: Any
) -> None:
    """`perpd verify` is clean after trading, and names the difference when a balance in
    the mirror no longer equals the collateral account on chain."""
    import shutil
    import sqlite3

    from perpd import cli

    position = await book.open()
    await book.requester.ok("/trade/close", book.close_body(position, 50))
    db = book.server.venue.store.path
    assert cli.verify(db) == 0
    assert "compared every balance and position with the chain" in capsys.readouterr().out
    copy = tmp_path / "tampered.db"
    await book.server.venue.store.checkpoint()
    shutil.copy(db, copy)
    conn = sqlite3.connect(copy)
    conn.execute("UPDATE accounts SET free = free + 1 WHERE agent_id = ?", (book.maker.id,))
    conn.execute("UPDATE ledger SET deposits = deposits + 1")
    conn.commit()
    conn.close()
    assert cli.verify(str(copy)) == 1
    out = capsys.readouterr().out
    assert f"agent {book.maker.id}: free" in out and "on chain" in out
