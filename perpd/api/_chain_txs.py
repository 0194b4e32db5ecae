"""``GET /chain/transactions``: the newest transactions the daemon landed (issue 15).

Public like ``GET /chain``: each is a transaction on the chain, visible to anyone
there, and positions already show the signatures that locked, settled and closed them.
``?ref=`` narrows to one position's (or agent's) transactions, oldest first.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from quart import Blueprint, jsonify, request

from perpd.api._common import venue
from perpd.errors import InvalidRequest
from perpd.store import chain as qc
from perpd.units import parse_int

bp = Blueprint("chain_txs", __name__)

MAX_TXS = 100


@bp.get("/chain/transactions")
async def get_chain_transactions() -> Any:
    limit = parse_int(request.args.get("limit", "20"), "limit", 1, MAX_TXS)
    ref = request.args.get("ref")
    if ref is not None and not 1 <= len(ref) <= 64:
        raise InvalidRequest("query parameter ref is malformed")
    if ref is None:
        txs = await venue().read(partial(qc.recent_chain_txs, limit=limit))
    else:
        txs = (await venue().read(partial(qc.chain_txs_of, ref=ref)))[-limit:]
    return jsonify({"transactions": txs})
