"""``GET /chain`` (SPEC §6): which chain holds the money, and where on it."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify

from perpd.chain._backend import Chain
from perpd.chain._errors import ChainUnavailable
from perpd.errors import Unavailable

__all__ = ["chain_blueprint"]


def chain_blueprint(chain: Chain | None) -> Blueprint:
    """The route bound to ``chain`` (None: ``--chain none``, the custodial venue)."""
    bp = Blueprint("chain", __name__)

    @bp.get("/chain")
    async def get_chain() -> Any:
        if chain is None:
            return jsonify({"mode": "none"})
        info = chain.info()
        try:
            info["slot"] = await chain.slot()
        except ChainUnavailable as exc:
            raise Unavailable(f"the chain is unavailable: {exc}", code="chain_unavailable") from exc
        return jsonify(info)

    return bp
