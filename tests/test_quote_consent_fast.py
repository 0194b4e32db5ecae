"""Issue 11, latency: a quote consent on a request this daemon took is checked against
the request's hash in memory: the quote's critical path has no read before its unit
(after a restart, or for an unknown request, it reads as before)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from perpd.api import _trade
from tests.conftest import Server, funded

CHAIN = "local"

REQ = {
    "market": "ETH-PERP",
    "side": "long",
    "size_usdc": "500",
    "leverage": 5,
    "max_funding_rate": "0.001",
    "expires_in": 60,
}


@pytest.fixture
def request_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The request ids the quote handler reads (a count of the reader pool's jobs would
    also count the chain submitter's and the keeper's reads, which run meanwhile)."""
    seen: list[str] = []
    real = _trade.q

    def get_request(conn: Any, request_id: str) -> Any:
        seen.append(request_id)
        return real.get_request(conn, request_id)

    proxy = SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if not k.startswith("__")})
    proxy.get_request = get_request
    monkeypatch.setattr(_trade, "q", proxy)
    return seen


async def test_a_quote_consent_needs_no_read_and_still_binds_the_request(
    server: Server, request_reads: list[str]
) -> None:
    maker, taker = await funded(server, 2)
    await server.pin("ETH-PERP", "3000")
    req = await taker.ok("/trade/request", REQ, 201)
    quote = {"request_id": req["request_id"], "funding_rate": "0.0005", "collateral_usdc": "50"}
    raw = await maker.raw("/trade/quote", quote)  # the maker reads the request to sign
    request_reads.clear()
    assert (await maker.post("/trade/quote", raw)).status_code == 201
    assert request_reads == []  # no read on the daemon's side
    assert server.venue.request_hashes.hits == 1

    # a consent for another request's hash is still refused
    other = await taker.ok("/trade/request", {**REQ, "size_usdc": "600"}, 201)
    forged = (await maker.raw("/trade/quote", quote)).replace(
        req["request_id"].encode(), other["request_id"].encode()
    )
    r = await maker.post("/trade/quote", forged)
    assert r.status_code == 401, r.text


async def test_without_the_hash_in_memory_the_quote_reads_it(
    server: Server, request_reads: list[str]
) -> None:
    maker, taker = await funded(server, 2)
    await server.pin("ETH-PERP", "3000")
    req = await taker.ok("/trade/request", REQ, 201)
    server.venue.request_hashes._hashes.clear()  # as after a restart
    quote = {"request_id": req["request_id"], "funding_rate": "0.0005", "collateral_usdc": "50"}
    raw = await maker.raw("/trade/quote", quote)
    request_reads.clear()
    assert (await maker.post("/trade/quote", raw)).status_code == 201
    assert request_reads == [req["request_id"]]
    assert server.venue.request_hashes.get(req["request_id"]) is not None
