"""Bad input over real HTTP: each refusal is a 4xx with the SPEC code and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from perpd.auth import sign_headers
from tests.conftest import Agent, Server

# Issue 10: these run on the in-process chain by default; every assert_balanced reads
# the money back from the SVM (PERPD_TEST_CHAIN=none runs them off-chain).
CHAIN = "local"

REQUEST = {
    "market": "BTC-PERP",
    "side": "long",
    "size_usdc": "1000",
    "leverage": 10,
    "max_funding_rate": "0.001",
    "duration": "perpetual",
    "expires_in": 30,
}


@pytest.fixture
async def setup(server: Server) -> tuple[Server, Agent, Agent, str]:
    requester, maker = server.agent(), server.agent()
    await requester.fund("10000")
    await maker.fund("10000")
    await server.pin("BTC-PERP", "50000")
    rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
    return server, requester, maker, rid


async def refused(server: Server, call: Any, status: int, code: str) -> None:
    """Run ``call``; it must fail with ``status``/``code`` and leave the state as it was."""
    before = await server.digest()
    response = await call
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text
    assert isinstance(response.json()["error"]["message"], str)
    assert await server.digest() == before


async def test_signature_failures(setup: tuple[Server, Agent, Agent, str]) -> None:
    server, requester, maker, rid = setup
    body = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100"}
    raw = await maker.raw("/trade/quote", body)
    good = sign_headers(maker.keypair, "POST", "/trade/quote", raw, timestamp_ms=maker.stamp())

    forged = dict(good, **{"X-Signature": str(requester.keypair.sign_message(b"x"))})
    await refused(
        server, server.http.post("/trade/quote", content=raw, headers=forged), 401, "unauthorized"
    )
    # signed by the maker, presented as the requester
    wrong_agent = dict(good, **{"X-Agent-Id": requester.id})
    await refused(
        server,
        server.http.post("/trade/quote", content=raw, headers=wrong_agent),
        401,
        "unauthorized",
    )
    # body tampered after signing
    await refused(
        server,
        server.http.post("/trade/quote", content=raw + b" ", headers=good),
        401,
        "unauthorized",
    )
    stale = sign_headers(
        maker.keypair, "POST", "/trade/quote", raw, timestamp_ms=int(server.clock() * 1000) - 31_000
    )
    await refused(
        server, server.http.post("/trade/quote", content=raw, headers=stale), 401, "unauthorized"
    )
    future = sign_headers(
        maker.keypair, "POST", "/trade/quote", raw, timestamp_ms=int(server.clock() * 1000) + 31_000
    )
    await refused(
        server, server.http.post("/trade/quote", content=raw, headers=future), 401, "unauthorized"
    )
    await refused(server, server.http.post("/trade/quote", content=raw), 401, "unauthorized")
    garbage = dict(good, **{"X-Agent-Id": "not-a-key!"})
    await refused(
        server, server.http.post("/trade/quote", content=raw, headers=garbage), 401, "unauthorized"
    )

    first = await server.http.post("/trade/quote", content=raw, headers=good)
    assert first.status_code == 201
    await refused(
        server, server.http.post("/trade/quote", content=raw, headers=good), 401, "unauthorized"
    )


async def test_refused_call_cannot_be_replayed_later(server: Server) -> None:
    """A refused call's signature is spent too: replaying it once it would pass fails."""
    requester = server.agent()
    await server.pin("BTC-PERP", "50000")
    raw = await requester.raw("/trade/request", REQUEST)
    headers = sign_headers(
        requester.keypair, "POST", "/trade/request", raw, timestamp_ms=requester.stamp()
    )
    poor = await server.http.post("/trade/request", content=raw, headers=headers)
    assert poor.status_code == 422
    await requester.fund("10000")
    await refused(
        server,
        server.http.post("/trade/request", content=raw, headers=headers),
        401,
        "unauthorized",
    )


async def test_acting_for_another_agent(setup: tuple[Server, Agent, Agent, str]) -> None:
    server, requester, maker, rid = setup
    await refused(
        server,
        maker.post("/trade/request", {**REQUEST, "agent_id": requester.id}),
        403,
        "forbidden",
    )
    r = await requester.get(f"/accounts/{maker.id}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    await refused(
        server,
        requester.post(f"/accounts/{maker.id}/withdraw", {"amount_usdc": "1"}),
        403,
        "forbidden",
    )
    qid = (
        await maker.ok(
            "/trade/quote",
            {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100"},
            201,
        )
    )["quote_id"]
    await refused(
        server, maker.post("/trade/accept", {"request_id": rid, "quote_id": qid}), 403, "forbidden"
    )
    pos = await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid})
    pid = pos["position"]["position_id"]
    await refused(
        server,
        maker.post("/trade/close", {"position_id": pid, "size_percent": 100}),
        403,
        "forbidden",
    )
    await server.assert_balanced()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"market": "DOGE-PERP"}, "unknown_market"),
        ({"leverage": 51}, "leverage_too_high"),
        ({"size_usdc": "100.1234567"}, "invalid_request"),
        ({"size_usdc": "-5"}, "invalid_request"),
        ({"size_usdc": 0}, "invalid_request"),
        ({"size_usdc": "1000000000.000001"}, "invalid_request"),
        ({"size_usdc": "1e400"}, "invalid_request"),
        ({"size_usdc": "NaN"}, "invalid_request"),
        ({"size_usdc": True}, "invalid_request"),
        ({"size_usdc": [1]}, "invalid_request"),
        ({"leverage": 2.5}, "invalid_request"),
        ({"leverage": 0}, "invalid_request"),
        ({"side": "up"}, "invalid_request"),
        ({"max_funding_rate": "0.06"}, "invalid_request"),
        ({"duration": "3d"}, "invalid_request"),
        ({"expires_in": 301}, "invalid_request"),
        ({"surprise": 1}, "invalid_request"),
    ],
)
async def test_bad_request_fields(server: Server, change: dict[str, Any], code: str) -> None:
    requester = server.agent()
    await requester.fund("10000")
    await refused(server, requester.post("/trade/request", {**REQUEST, **change}), 400, code)


async def test_malformed_bodies(server: Server) -> None:
    requester = server.agent()
    await requester.fund("10000")
    for raw in (b"{", b"[]", b"", b'{"size_usdc": NaN}', b"\xff\xfe", b"1" * 5000, b'{"a":' * 2000):
        await refused(server, requester.post("/trade/request", raw), 400, "invalid_request")
    big = b'{"x": "' + b"a" * 70_000 + b'"}'
    r = await requester.post("/trade/request", big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "invalid_request"


async def test_quote_rules(setup: tuple[Server, Agent, Agent, str]) -> None:
    server, requester, maker, rid = setup
    base = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100"}
    await refused(server, requester.post("/trade/quote", base), 400, "self_quote")
    await refused(
        server, maker.post("/trade/quote", {**base, "funding_rate": "0.002"}), 400, "rate_above_max"
    )
    await refused(
        server,
        maker.post("/trade/quote", {**base, "funding_rate": "-0.0500001"}),
        400,
        "invalid_request",
    )
    await refused(
        server,
        maker.post("/trade/quote", {**base, "collateral_usdc": "19.999999"}),
        422,
        "insufficient_collateral",
    )
    await refused(
        server,
        maker.post("/trade/quote", {**base, "collateral_usdc": "20000"}),
        422,
        "insufficient_collateral",
    )
    await refused(
        server, maker.post("/trade/quote", {**base, "valid_for": 61}), 400, "invalid_request"
    )
    await refused(
        server, maker.post("/trade/quote", {**base, "request_id": "req_nope"}), 404, "not_found"
    )


async def test_accept_after_expiry_and_double_accept(
    setup: tuple[Server, Agent, Agent, str],
) -> None:
    server, requester, maker, rid = setup
    base = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100", "valid_for": 5}
    q1 = (await maker.ok("/trade/quote", base, 201))["quote_id"]
    other = server.agent()
    await other.fund("1000")
    q2 = (await other.ok("/trade/quote", {**base, "valid_for": 60}, 201))["quote_id"]

    server.clock.advance(5)  # q1's deadline passes; accept checks it itself, timer or not
    await server.expired()
    await refused(
        server,
        requester.post("/trade/accept", {"request_id": rid, "quote_id": q1}),
        409,
        "quote_expired",
    )
    opened = await requester.ok("/trade/accept", {"request_id": rid, "quote_id": q2})
    if server.chain["mode"] == "none":
        await refused(
            server,
            requester.post("/trade/accept", {"request_id": rid, "quote_id": q2}),
            409,
            "request_filled",
        )
    else:  # with a chain a retried accept is answered with its position (never a second lock)
        before = await server.digest()
        again = await requester.ok("/trade/accept", {"request_id": rid, "quote_id": q2})
        assert again == opened and await server.digest() == before

    rid2 = (await requester.ok("/trade/request", {**REQUEST, "expires_in": 3}, 201))["request_id"]
    q3 = (await maker.ok("/trade/quote", {**base, "request_id": rid2, "valid_for": 60}, 201))[
        "quote_id"
    ]
    server.clock.advance(3)
    await server.expired()
    await refused(
        server,
        requester.post("/trade/accept", {"request_id": rid2, "quote_id": q3}),
        409,
        "request_expired",
    )
    await refused(
        server, maker.post("/trade/quote", {**base, "request_id": rid2}), 409, "request_expired"
    )
    await server.assert_balanced()


async def test_racing_accepts_one_wins(setup: tuple[Server, Agent, Agent, str]) -> None:
    server, requester, maker, rid = setup
    quotes = []
    for _ in range(4):
        mm = server.agent()
        await mm.fund("1000")
        quotes.append(
            (
                await mm.ok(
                    "/trade/quote",
                    {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100"},
                    201,
                )
            )["quote_id"]
        )
    results: list[int] = []

    async def accept(qid: str) -> None:
        r = await requester.post("/trade/accept", {"request_id": rid, "quote_id": qid})
        results.append(r.status_code)

    async with trio.open_nursery() as n:
        for qid in quotes:
            n.start_soon(accept, qid)
    assert sorted(results) == [200, 409, 409, 409]
    positions = (await server.http.get(f"/positions?agent_id={requester.id}")).json()
    assert len(positions["positions"]) == 1
    await server.assert_balanced()


async def test_oracle_and_lookup_errors(server: Server) -> None:
    agent = server.agent()
    for path, body in (
        ("/trade/close", {"position_id": "pos_x"}),
        ("/trade/liquidate", {"position_id": "pos_x"}),
        ("/trade/accept", {"request_id": "req_x", "quote_id": "quo_x"}),
    ):
        await refused(server, agent.post(path, body), 404, "not_found")
    r = await server.http.get("/positions?status=weird")
    assert r.status_code == 400
    r = await server.http.get("/positions/pos_nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await server.http.post("/dev/price", json={"market": "BTC-PERP", "price": "-1"})
    assert r.status_code == 400
    r = await server.http.post("/dev/faucet", json={"agent_id": "x", "amount_usdc": "1"})
    assert r.status_code == 400
    r = await agent.get("/events?since=abc")
    assert r.status_code == 400


async def test_dev_endpoints_absent_without_dev(tmp_path: Any, nursery: trio.Nursery) -> None:
    from tests.conftest import base_config, start_server

    s = await start_server(nursery, base_config(tmp_path, dev=False))
    r = await s.http.post("/dev/faucet", json={"agent_id": s.agent().id, "amount_usdc": "1"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await s.http.post("/dev/price", json={"market": "BTC-PERP", "price": "1"})
    assert r.status_code == 404
    await s.http.aclose()
    s.shutdown.set()
