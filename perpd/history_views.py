"""History items as the wire shows them (issue 13), from the events that recorded them.

Pure functions of a history row (`perpd.store.history.HistoryRow`) and the caller: the
same fact (a fill, a payment, a liquidation) reads from each party's side. The field
tuples fix the order of the JSON objects and of the csv columns alike.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from perpd.store.history import HistoryRow
from perpd.units import format_usdc

FILL_FIELDS = (
    "fill_id",
    "position_id",
    "request_id",
    "quote_id",
    "market",
    "role",
    "side",
    "size_usdc",
    "entry_price",
    "funding_rate",
    "leverage",
    "collateral_usdc",
    "fee_usdc",
    "filled_at",
)
FUNDING_FIELDS = (
    "payment_id",
    "position_id",
    "market",
    "amount_usdc",
    "direction",
    "period",
    "settled_at",
    "funding_rate",
    "settled_to",
)
LIQUIDATION_FIELDS = (
    "position_id",
    "market",
    "role",
    "liquidator",
    "reward_usdc",
    "price",
    "liquidated_at",
    "liquidated_side",
    "released_usdc",
)
OTHER_SIDE = {"long": "short", "short": "long"}


def _role(data: Mapping[str, Any], agent_id: str) -> str:
    if data["requester"] == agent_id:
        return "requester"
    return "maker" if data["maker"] == agent_id else "liquidator"


def fill_item(row: HistoryRow, agent_id: str) -> dict[str, Any]:
    """A fill from its ``position_opened`` event; side, collateral and fee are the caller's
    (only the requester pays the open fee)."""
    d = row.data
    role = _role(d, agent_id)
    requester = role == "requester"
    return {
        "fill_id": row.seq,
        "position_id": d["position_id"],
        "request_id": d["request_id"],
        "quote_id": d["quote_id"],
        "market": d["market"],
        "role": role,
        "side": d["side"] if requester else OTHER_SIDE[d["side"]],
        "size_usdc": d["size_usdc"],
        "entry_price": d["entry_price"],
        "funding_rate": d["funding_rate"],
        "leverage": d["leverage"],
        "collateral_usdc": d["requester_collateral_usdc" if requester else "maker_collateral_usdc"],
        "fee_usdc": d.get("open_fee_usdc", format_usdc(0)) if requester else format_usdc(0),
        "filled_at": d["opened_at"],
    }


def funding_item(row: HistoryRow, agent_id: str, period_s: int) -> dict[str, Any]:
    """A payment from its ``funding_settled`` event; ``period`` = floor(settled_at / T)."""
    d = row.data
    return {
        "payment_id": row.seq,
        "position_id": d["position_id"],
        "market": row.market,
        "amount_usdc": d["amount_usdc"],
        "direction": "paid" if d["payer"] == agent_id else "received",
        "period": row.ts // period_s,
        "settled_at": row.ts,
        "funding_rate": d.get("funding_rate"),
        "settled_to": d.get("settled_to"),
    }


def liquidation_item(row: HistoryRow, agent_id: str) -> dict[str, Any]:
    """A liquidation from its event; ``released_usdc`` is what the caller got back (its
    collateral left for a party, the reward for the liquidator)."""
    d = row.data
    role = _role(d, agent_id)
    released = {
        "requester": d["requester_released_usdc"],
        "maker": d["maker_released_usdc"],
        "liquidator": d["reward_usdc"],
    }[role]
    return {
        "position_id": d["position_id"],
        "market": d["market"],
        "role": role,
        "liquidator": d["liquidator"],
        "reward_usdc": d["reward_usdc"],
        "price": d["exit_price"],
        "liquidated_at": d["closed_at"],
        "liquidated_side": d["liquidated_side"],
        "released_usdc": released,
    }


def to_csv(fields: Sequence[str], items: Iterable[Mapping[str, Any]]) -> str:
    """A header row and one line per item, the same fields as the JSON (null: empty)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(fields)
    for item in items:
        writer.writerow("" if item[f] is None else item[f] for f in fields)
    return out.getvalue()
