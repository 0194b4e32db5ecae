"""Statuses are enums that stay their strings: in the file, in the records read back, on
the wire, and in the OpenAPI models."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import get_args, get_type_hints

from perpd import engine
from perpd.api import _models
from perpd.records import PositionStatus, Quote, QuoteStatus, RequestStatus
from perpd.store import Store
from perpd.store import queries as q
from perpd.views import position_view, quote_view
from tests.engine_units import funded_request

PRICE = 50_000 * 10**8
T = 1_000_000.0


def ctx() -> engine.Ctx:
    return engine.Ctx(T, 28_800, lambda market: PRICE)


async def test_statuses_are_stored_as_text_and_read_back_as_enums(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    await store.open()
    try:

        def fill(conn: sqlite3.Connection) -> tuple[str, str, str]:
            r = funded_request(conn, ctx())
            quote = engine.create_quote(
                conn, ctx(), request_id=r.request_id, agent_id="mm", rate=500, collateral=10**8
            )
            p = engine.accept(
                conn, ctx(), agent_id="req", request_id=r.request_id, quote_id=quote.quote_id
            )
            return r.request_id, quote.quote_id, p.position_id

        rid, qid, pid = await store.write(fill)

        def raw(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            return [
                conn.execute(f"SELECT status, typeof(status) FROM {table}").fetchone()
                for table in ("requests", "quotes", "positions")
            ]

        assert await store.read(raw) == [("filled", "text"), ("accepted", "text"), ("open", "text")]
        r = await store.read(lambda c: q.get_request(c, rid))
        quote = await store.read(lambda c: q.get_quote(c, qid))
        p = await store.read(lambda c: q.get_position(c, pid))
        assert r is not None and r.status is RequestStatus.FILLED
        assert quote is not None and quote.status is QuoteStatus.ACCEPTED
        assert p is not None and p.status is PositionStatus.OPEN
        # the wire text is the bare string, as SPEC §6 has it
        assert '"status": "open"' in json.dumps(position_view(p, PRICE))
        assert json.dumps(quote_view(quote))  # serialisable as it is
        assert f"{p.status}" == "open" and str(quote.status) == "accepted"
    finally:
        await store.close()


def test_a_record_made_from_a_string_holds_the_member() -> None:
    quote = Quote("q", "r", "a", 0, 1, 0, 1, "live")  # type: ignore[arg-type]
    assert quote.status is QuoteStatus.LIVE


def test_the_wire_models_list_exactly_the_enums_values() -> None:
    """`perpd.api._models` keeps `Literal`s (inline enums in the OpenAPI document): they
    must name the same statuses as the records."""
    for model, enum in (
        (_models.TradeRequest, RequestStatus),
        (_models.Quote, QuoteStatus),
        (_models.Position, PositionStatus),
    ):
        literal = get_type_hints(model)["status"]
        assert set(get_args(literal)) == {s.value for s in enum}, model
