"""The whole RFQ lifecycle over real HTTP on loopback, balances exact to the micro-USDC.

Expected figures are worked out by hand from SPEC §4 in the comments, not with the
money module, so that this test checks the module as much as the daemon.
"""

from __future__ import annotations

from tests.conftest import Server, usdc

# Issue 10: these run on the in-process chain by default; every assert_balanced reads
# the money back from the SVM (PERPD_TEST_CHAIN=none runs them off-chain).
CHAIN = "local"

M = 1_000_000  # micro-USDC per USDC


async def test_request_quotes_accept_partial_and_full_close(server: Server) -> None:
    requester, mm1, mm2 = server.agent(), server.agent(), server.agent()
    for a in (requester, mm1, mm2):
        await a.fund("10000")
    await server.pin("BTC-PERP", "50000")

    req = await requester.ok(
        "/trade/request",
        {
            "agent_id": requester.id,
            "market": "BTC-PERP",
            "side": "long",
            "size_usdc": "1000",
            "leverage": 10,
            "max_funding_rate": "0.001",
            "duration": "perpetual",
            "expires_in": 30,
        },
        201,
    )
    assert req["status"] == "open"
    rid = req["request_id"]
    q1 = await mm1.ok(
        "/trade/quote",
        {
            "request_id": rid,
            "agent_id": mm1.id,
            "funding_rate": "0.0008",
            "collateral_usdc": "100",
            "valid_for": 30,
        },
        201,
    )
    q2 = await mm2.ok(
        "/trade/quote",
        {
            "request_id": rid,
            "agent_id": mm2.id,
            "funding_rate": 0.0005,
            "collateral_usdc": 200,
            "valid_for": 30,
        },
        201,
    )
    assert q1["status"] == q2["status"] == "live"
    live = (await server.http.get(f"/quotes?request_id={rid}")).json()["quotes"]
    best = min(live, key=lambda x: usdc(x["funding_rate"]))
    assert best["quote_id"] == q2["quote_id"]

    opened = (
        await requester.ok("/trade/accept", {"request_id": rid, "quote_id": best["quote_id"]})
    )["position"]
    pid = opened["position_id"]
    assert opened["entry_price"] == "50000.00000000"
    assert opened["maker"] == mm2.id and opened["side"] == "long"
    assert opened["funding_rate"] == "0.0005"
    # IMr = 1000/10 = 100; fee = ceil(1000 × 0.0005) = 0.5
    assert await requester.balances() == (9899_500_000, 100 * M)
    assert await mm2.balances() == (9800 * M, 200 * M)
    assert await mm1.balances() == (10000 * M, 0)
    assert (await server.books())["fees"] == 500_000
    await server.assert_balanced()

    # One hour later the price is +4%. Funding due = 1000e6 × 500 × 3600 / (1e6 × 28800)
    # = 62 500 micro-USDC, requester -> maker.
    server.clock.advance(3600)
    await server.pin("BTC-PERP", "52000")
    pos = (await server.http.get(f"/positions/{pid}")).json()
    assert pos["unrealized_pnl_usdc"] == "40.000000"  # 1000 × 2000 / 50000

    half = await requester.ok("/trade/close", {"position_id": pid, "size_percent": 50})
    # Cr = 100e6 − 62 500 = 99 937 500 → Cr_c = 49 968 750; Cm = 200 062 500 → Cm_c = 100 031 250
    # pnl_c = 1000e6 × 50 × 2000 / (100 × 50000) = 20e6; released = 69 968 750
    assert half["realized_pnl_usdc"] == "20.000000"
    assert half["released_usdc"] == "69.968750"
    assert half["position"]["size_usdc"] == "500.000000"
    assert half["position"]["status"] == "open"
    assert await requester.balances() == (9899_500_000 + 69_968_750, 49_968_750)
    assert await mm2.balances() == (9800 * M + 80_031_250, 100_031_250)
    await server.assert_balanced()

    # Half an hour later at 49 000: funding = 500e6 × 500 × 1800 / 2.88e10 = 15 625;
    # Cr = 49 953 125, Cm = 100 046 875, pnl = 500e6 × (−1000) / 50000 = −10e6.
    server.clock.advance(1800)
    await server.pin("BTC-PERP", "49000")
    full = await requester.ok("/trade/close", {"position_id": pid, "size_percent": 100})
    assert full["realized_pnl_usdc"] == "-10.000000"
    assert full["released_usdc"] == "39.953125"
    assert full["position"]["status"] == "closed"
    assert full["position"]["funding_paid_usdc"] == "0.078125"
    assert full["position"]["realized_pnl_usdc"] == "10.000000"
    assert await requester.balances() == (10_009_421_875, 0)
    assert await mm2.balances() == (9_990_078_125, 0)
    assert await mm1.balances() == (10000 * M, 0)
    led = await server.books()
    assert led["fees"] == 500_000 and led["deposits"] == 30_000 * M
    await server.assert_balanced()

    again = await requester.post("/trade/close", {"position_id": pid, "size_percent": 100})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "position_not_open"


async def test_liquidation_by_a_third_agent_earns_five_percent(server: Server) -> None:
    requester, maker, liquidator = server.agent(), server.agent(), server.agent()
    await requester.fund("1000")
    await maker.fund("10000")
    # the reward is paid into the liquidator's collateral account, which on a chain
    # exists once it has deposited: 1 USDC opens it
    await liquidator.fund("1")
    await server.pin("BTC-PERP", "50000")
    rid = (
        await requester.ok(
            "/trade/request",
            {
                "market": "BTC-PERP",
                "side": "long",
                "size_usdc": "1000",
                "leverage": 2,
                "max_funding_rate": "0.001",
            },
            201,
        )
    )["request_id"]
    qid = (
        await maker.ok(
            "/trade/quote",
            {"request_id": rid, "funding_rate": "0.0001", "collateral_usdc": "100"},
            201,
        )
    )["quote_id"]
    pid = (await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid}))["position"][
        "position_id"
    ]
    # IMr = 500, fee 0.5
    assert await requester.balances() == (499_500_000, 500 * M)

    # At 40 000: pnl = −200, Er = 300 ≥ IMr/2 = 250: not liquidatable.
    await server.pin("BTC-PERP", "40000")
    early = await liquidator.post("/trade/liquidate", {"position_id": pid})
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "not_liquidatable"

    # At 35 000: pnl = −300, Er = 200 < 250. The maker takes 300; the liquidator
    # min(5% × 1000, 200) = 50; the requester keeps 150.
    await server.pin("BTC-PERP", "35000")
    done = await liquidator.ok("/trade/liquidate", {"position_id": pid})
    assert done["reward_usdc"] == "50.000000"
    assert done["liquidated_side"] == "requester"
    assert done["position"]["status"] == "liquidated"
    assert done["position"]["liquidator"] == liquidator.id
    assert await liquidator.balances() == (51 * M, 0)
    assert await requester.balances() == (499_500_000 + 150 * M, 0)
    assert await maker.balances() == (10_300 * M, 0)
    await server.assert_balanced()

    twice = await liquidator.post("/trade/liquidate", {"position_id": pid})
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "position_not_open"


async def test_the_liquidated_side_cannot_liquidate_itself(server: Server) -> None:
    requester, maker = server.agent(), server.agent()
    await requester.fund("1000")
    await maker.fund("1000")
    await server.pin("BTC-PERP", "50000")
    rid = (
        await requester.ok(
            "/trade/request",
            {
                "market": "BTC-PERP",
                "side": "short",
                "size_usdc": "1000",
                "leverage": 10,
                "max_funding_rate": "0.001",
            },
            201,
        )
    )["request_id"]
    qid = (
        await maker.ok(
            "/trade/quote", {"request_id": rid, "funding_rate": "0", "collateral_usdc": "20"}, 201
        )
    )["quote_id"]
    pid = (await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid}))["position"][
        "position_id"
    ]
    await server.pin("BTC-PERP", "49000")  # maker: Em = 20 − 20 = 0 < IMm/2 = 10
    before = await server.digest()
    own = await maker.post("/trade/liquidate", {"position_id": pid})
    assert own.status_code == 403 and own.json()["error"]["code"] == "forbidden"
    assert await server.digest() == before
    # the winning counterparty may: maker pays 20, the reward is min(50, 0) = 0
    done = await requester.ok("/trade/liquidate", {"position_id": pid})
    assert done["liquidated_side"] == "maker" and done["reward_usdc"] == "0.000000"
    await server.assert_balanced()
