"""`GET /metrics` (issue 12): every family with HELP and TYPE; trading counted by market
from the committed events; latency histograms by route, for the accept lifecycle and
for chain confirmations; open positions and notional; oracle age; exact money."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from perpd.markets import MARKETS
from perpd.store import queries as q
from tests.conftest import Server, funded

CHAIN = "local"  # chain confirmations are measured with a chain

REQUEST = {
    "market": "ETH-PERP",
    "side": "long",
    "size_usdc": "1000",
    "leverage": 10,
    "max_funding_rate": "0.01",
}


async def scrape(s: Server) -> tuple[str, dict[str, Any]]:
    text = (await s.http.get("/metrics")).text
    return text, {f.name: f for f in text_string_to_metric_families(text)}


def value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    found = [x.value for x in families[family].samples if x.name == sample and x.labels == labels]
    assert len(found) == 1, (family, sample, labels, families[family].samples)
    return float(found[0])


async def test_metrics_count_trading_time_requests_and_show_the_books(server: Server) -> None:
    s = server
    await s.pin("ETH-PERP", "3000")
    requester, maker = await funded(s, 2)
    for _ in range(2):
        rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
        quote = {"request_id": rid, "funding_rate": "0.001", "collateral_usdc": "100"}
        qid = (await maker.ok("/trade/quote", quote, 201))["quote_id"]
        accepted = await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid})
        pos = accepted["position"]
    await requester.ok("/trade/close", {"position_id": pos["position_id"]})
    assert (await s.http.get("/positions/nope")).status_code == 404

    text, families = await scrape(s)
    for f in families.values():  # HELP and TYPE for every family
        assert f.documentation and f.type in ("counter", "gauge", "histogram"), f.name

    eth = {"market": "ETH-PERP"}
    assert value(families, "perpd_requests", "perpd_requests_total", **eth) == 2
    assert value(families, "perpd_quotes", "perpd_quotes_total", **eth) == 2
    assert value(families, "perpd_fills", "perpd_fills_total", **eth) == 2
    assert value(families, "perpd_closes", "perpd_closes_total", **eth) == 1
    assert value(families, "perpd_open_positions", "perpd_open_positions", **eth) == 1
    assert value(families, "perpd_open_positions", "perpd_open_positions", market="BTC-PERP") == 0
    notional = 'perpd_open_notional_micro_usdc{market="ETH-PERP"} 1000000000\n'
    assert notional in text  # money is written as exact integers

    accept = {"method": "POST", "route": "/trade/accept"}
    hist = "perpd_http_request_duration_seconds"
    assert value(families, hist, hist + "_count", **accept) == 2
    missing = {"method": "GET", "route": "/positions/<position_id>", "status": "404"}
    assert value(families, "perpd_http_requests", "perpd_http_requests_total", **missing) == 1
    life = "perpd_lifecycle_accept_seconds"
    assert value(families, life, life + "_count") == 2 and value(families, life, life + "_sum") > 0
    chain = "perpd_chain_confirmation_seconds"
    assert value(families, chain, chain + "_count", kind="lock") == 2
    assert value(families, chain, chain + "_count", kind="close") == 1
    assert value(families, "perpd_outbox_depth", "perpd_outbox_depth") == 0
    for market in MARKETS:
        age = value(families, "perpd_oracle_age_seconds", "perpd_oracle_age_seconds", market=market)
        assert 0 <= age < 60

    ledger = await s.venue.read(q.ledger)
    for key, amount in ledger.items():
        assert f"perpd_ledger_{key}_micro_usdc {amount}\n" in text

    # counters only move for what is committed after: a second scrape adds nothing
    _, again = await scrape(s)
    assert value(again, "perpd_fills", "perpd_fills_total", **eth) == 2
    await requester.ok("/trade/request", REQUEST, 201)
    _, third = await scrape(s)
    assert value(third, "perpd_requests", "perpd_requests_total", **eth) == 3
