"""``GET /chain`` (SPEC §6): which chain holds custody, and the program consents name.

Minimal until the chain backends land (chain-local's ``GET /chain`` adds the cluster,
USDC mint, vault and slot): ``{"mode": "none"}`` off chain, else the mode and the
program id, which is all an agent needs to build its consents.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify

from perpd.api._common import venue

bp = Blueprint("chain", __name__)


@bp.get("/chain")
async def get_chain() -> Any:
    v = venue()
    if v.chain == "none":
        return jsonify({"mode": "none"})
    return jsonify({"mode": v.chain, "program_id": str(v.program_id)})
