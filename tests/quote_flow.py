"""Shared steps of issue 13's tests: a request, quotes on it, and what they became."""

from __future__ import annotations

from typing import Any

from tests.conftest import Agent, Server

REQUEST = {
    "market": "BTC-PERP",
    "side": "long",
    "size_usdc": "1000",
    "leverage": 10,
    "max_funding_rate": "0.001",
    "expires_in": 60,
}


async def open_request(requester: Agent, **changes: Any) -> str:
    return str((await requester.ok("/trade/request", REQUEST | changes, 201))["request_id"])


async def quote(maker: Agent, request_id: str, rate: str = "0.0005", **more: Any) -> str:
    body = {"request_id": request_id, "funding_rate": rate, "collateral_usdc": "100", **more}
    return str((await maker.ok("/trade/quote", body, 201))["quote_id"])


async def status_of(server: Server, quote_id: str) -> str:
    r = await server.http.get(f"/quotes/{quote_id}")
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def live_quotes(server: Server, request_id: str) -> set[str]:
    r = await server.http.get("/quotes", params={"request_id": request_id})
    assert r.status_code == 200, r.text
    return {x["quote_id"] for x in r.json()["quotes"]}


async def setup(server: Server, makers: int = 1) -> list[Agent]:
    """A funded requester and ``makers`` funded makers, the BTC price pinned."""
    agents = [server.agent() for _ in range(makers + 1)]
    for a in agents:
        await a.fund("100000")
    await server.pin("BTC-PERP", "50000")
    return agents


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text
