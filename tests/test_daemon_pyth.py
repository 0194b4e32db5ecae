"""The daemon on ``--oracle pyth``: trades on Hermes prices, refuses when they go stale."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import trio

from perpd.markets import MARKETS
from tests.conftest import Clock, base_config, start_server
from tests.test_pyth_poller import FakeHermes, hermes_answer

BTC = MARKETS["BTC-PERP"].feed_id
REQUEST = {
    "market": "BTC-PERP",
    "side": "short",
    "size_usdc": "100",
    "leverage": 5,
    "max_funding_rate": "0.001",
}


async def test_trading_on_pyth_prices(tmp_path: Path, nursery: trio.Nursery) -> None:
    hermes = FakeHermes()
    # 64 000.12345 with expo -5 → 6400012345000 at exponent -8
    hermes.payload = hermes_answer((BTC, 6_400_012_345, 1_000_000, -5, int(time.time())))
    await hermes.start(nursery)
    cfg = base_config(tmp_path, oracle="pyth", hermes_url=hermes.url)
    s = await start_server(nursery, cfg, Clock(real=True, start=time.time()))
    try:
        markets = {m["market"]: m for m in (await s.http.get("/markets")).json()["markets"]}
        assert markets["BTC-PERP"]["price_source"] == "pyth"
        assert markets["BTC-PERP"]["oracle_price"] == "64000.12345000"
        assert markets["ETH-PERP"]["oracle_price"] is None  # Hermes gave no ETH price
        btc = markets["BTC-PERP"]
        assert (btc["gated_actions"], btc["price_unusable_reason"]) == ([], None)
        assert btc["oracle_confidence_ratio"] == "0.000156"  # 10 USD on 64,000.12
        assert 0 <= btc["oracle_age_s"] < 5
        eth = markets["ETH-PERP"]
        assert eth["gated_actions"] == ["accept", "close", "liquidate"]
        assert "no oracle price" in eth["price_unusable_reason"] and eth["oracle_age_s"] is None

        requester, maker = s.agent(), s.agent()
        await requester.fund("1000")
        await maker.fund("1000")
        rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
        qid = (
            await maker.ok(
                "/trade/quote",
                {"request_id": rid, "funding_rate": "0", "collateral_usdc": "10"},
                201,
            )
        )["quote_id"]
        pos = await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid})
        assert pos["position"]["entry_price"] == "64000.12345000"

        # Hermes publishes nothing newer for 61 s: the held price is stale, close is refused
        s.clock.advance(61)
        with trio.fail_after(5):
            while True:
                r = await requester.post(
                    "/trade/close", {"position_id": pos["position"]["position_id"]}
                )
                if r.status_code == 503:
                    break
                await trio.sleep(0.05)
        assert r.json()["error"]["code"] == "oracle_unavailable"
        stale = next(
            m for m in (await s.http.get("/markets")).json()["markets"] if m["market"] == "BTC-PERP"
        )
        assert stale["gated_actions"] == ["accept", "close", "liquidate"]
        assert "stale" in stale["price_unusable_reason"] and stale["oracle_age_s"] >= 61
        assert (await s.http.get("/health")).json()["status"] == "degraded"
        pin = await s.http.post("/dev/price", json={"market": "BTC-PERP", "price": "1"})
        assert pin.status_code == 400  # pinning needs the simulated oracle
    finally:
        await s.http.aclose()
        s.shutdown.set()
        hermes.close()


async def test_the_hermes_api_key_is_sent_and_a_missing_one_leaves_no_price(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """Pyth's upgraded Core answers 401 without a key: the daemon sends the configured
    one as a Bearer token; without it, no price becomes usable and the venue says so."""
    hermes = FakeHermes()
    hermes.api_key = "k-123"
    hermes.payload = hermes_answer((BTC, 6_400_012_345, 1_000_000, -5, int(time.time())))
    await hermes.start(nursery)
    try:
        for key, usable in (("", False), ("k-123", True)):
            home = tmp_path / ("with" if key else "without")
            home.mkdir()
            cfg = base_config(home, oracle="pyth", hermes_url=hermes.url)
            cfg = replace(cfg, hermes_api_key=key)
            assert "k-123" not in repr(cfg)  # the key never reaches a log line of the config
            s = await start_server(nursery, cfg, Clock(real=True, start=time.time()))
            try:
                with trio.fail_after(5):
                    await hermes.wait_requests(len(hermes.requests) + 1)
                markets = (await s.http.get("/markets")).json()["markets"]
                btc = next(m for m in markets if m["market"] == "BTC-PERP")
                assert btc["price_usable"] is usable
                assert hermes.authorized[-1] is usable
            finally:
                await s.http.aclose()
                s.shutdown.set()
    finally:
        hermes.close()
