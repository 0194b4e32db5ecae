"""tests/vectors/money_extremes.json: perpd.money at the price bounds, where the PnL
goes past 64 bits. The file is exactly what the generator writes, replays from its
JSON through perpd.money, and covers what the on-chain agreement tests rely on
(both bounds as entry, both sides, N = 10^15 and 10^12, partial and full closes,
both liquidated sides, a PnL beyond i64 in every operation)."""

from __future__ import annotations

import json
from typing import Any

from perpd import bounds, money, money_vectors

DOC = json.loads(money_vectors.EXTREMES_PATH.read_text())
I64_MAX = 2**63 - 1


def test_the_file_is_what_the_generator_writes() -> None:
    assert money_vectors.EXTREMES_PATH.read_text() == money_vectors.render_extremes()
    assert money_vectors.main(["--check"]) == 0


def _replay(op: str, i: dict[str, Any]) -> Any:
    s = money.PositionState(**i["state"])
    if op == "liquidatable_side":
        return money.liquidatable_side(s, i["price"])
    if op == "close_position":
        r = money.close_position(s, i["pct"], i["price"], i["now"], i["period_s"])
        return money_vectors._close(r)
    try:
        return money_vectors._liquidation(money.liquidate(s, i["price"], i["now"], i["period_s"]))
    except ValueError:
        return {"error": "not_liquidatable"}


def test_every_case_replays_through_perpd_money() -> None:
    for op in ("liquidatable_side", "close_position", "liquidate"):
        for case in DOC[op]:
            assert _replay(op, case["inputs"]) == case["expected"], (op, case)


def test_the_cases_cover_the_extremes() -> None:
    closes = DOC["close_position"]
    shapes = {
        (c["inputs"]["state"]["entry_price"], c["inputs"]["price"], c["inputs"]["state"]["side"])
        for c in closes
    }
    lo, hi = bounds.MIN_PRICE, bounds.MAX_PRICE
    assert {(lo, hi, 1), (lo, hi, -1), (hi, lo, 1), (hi, lo, -1)} <= shapes
    assert {10**12, 10**15} <= {c["inputs"]["state"]["notional"] for c in closes}
    assert {1, 50, 100} <= {c["inputs"]["pct"] for c in closes}
    assert any(abs(c["expected"]["pnl"]) > I64_MAX for c in closes)
    liquidations = [c["expected"] for c in DOC["liquidate"]]
    assert {"requester", "maker", "not_liquidatable"} <= {
        e.get("side", e.get("error")) for e in liquidations
    }
    assert any(abs(e.get("pnl", 0)) > I64_MAX for e in liquidations)
    assert {"requester", "maker", None} <= {c["expected"] for c in DOC["liquidatable_side"]}
    # the winner of a PnL past 64 bits takes the whole pool, the loser nothing
    for c in closes:
        e = c["expected"]
        if abs(e["pnl"]) > I64_MAX:
            assert 0 in (e["requester_release"], e["maker_release"]), c
