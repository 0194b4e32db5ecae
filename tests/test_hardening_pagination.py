"""Issue 8, finding 3: cursor pagination on every list, over real HTTP.

GET /requests, /quotes, /positions and /events page with ``limit`` (bounded default
and maximum) and an opaque ``cursor``; ``next_cursor`` is null on the last page. A walk
under concurrent inserts (and updates) sees every row exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import Server, base_config, funded, start_server

REQUEST = {
    "market": "BTC-PERP",
    "side": "long",
    "size_usdc": "100",
    "leverage": 10,
    "max_funding_rate": "0.001",
    "expires_in": 300,
}


@pytest.fixture
async def small_pages(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    s = await start_server(nursery, base_config(tmp_path, page_default=2, page_max=3))
    await s.pin("BTC-PERP", "50000")
    yield s
    await s.http.aclose()
    s.shutdown.set()


Fetch = Callable[[str], Awaitable[Any]]


async def walk(
    fetch: Fetch, path: str, key: str, between: Callable[[], Awaitable[None]] | None = None
) -> list[dict[str, Any]]:
    """Follow ``next_cursor`` to the end, calling ``between`` after each page."""
    seen: list[dict[str, Any]] = []
    url = path
    while True:
        r = await fetch(url)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {key, "next_cursor"}
        seen += body[key]
        if body["next_cursor"] is None:
            return seen
        if between is not None:
            await between()
        sep = "&" if "?" in path else "?"
        url = f"{path}{sep}cursor={body['next_cursor']}"


async def test_open_requests_page_without_skip_or_repeat_under_inserts(
    small_pages: Server,
) -> None:
    s = small_pages
    a, b = await funded(s, 2)
    made = [(await a.ok("/trade/request", REQUEST, 201))["request_id"] for _ in range(5)]
    inserted: list[str] = []

    async def insert() -> None:
        inserted.append((await b.ok("/trade/request", REQUEST, 201))["request_id"])

    first = (await s.http.get("/requests")).json()
    assert len(first["requests"]) == 2 and first["next_cursor"]  # the default page is 2
    seen = await walk(s.http.get, "/requests", "requests", insert)
    ids = [r["request_id"] for r in seen]
    assert len(ids) == len(set(ids))  # nothing twice
    assert ids == made + inserted[: len(ids) - len(made)]  # in order, nothing skipped
    assert set(made) <= set(ids) and len(inserted) >= 2
    # by market: the filter pages too
    assert await walk(s.http.get, "/requests?market=ETH-PERP", "requests") == []


async def test_quotes_and_positions_page_by_cursor(small_pages: Server) -> None:
    s = small_pages
    requester, *makers = await funded(s, 6)
    rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
    qids = []
    for m in makers[:4]:
        qids.append(
            (
                await m.ok(
                    "/trade/quote",
                    {
                        "request_id": rid,
                        "funding_rate": "0",
                        "collateral_usdc": "10",
                        "valid_for": 60,
                    },
                    201,
                )
            )["quote_id"]
        )
    seen = await walk(s.http.get, f"/quotes?request_id={rid}&limit=3", "quotes")
    assert [x["quote_id"] for x in seen] == qids

    # positions: the requester on one side of each; walk while closing one (an update)
    pids = []
    for m in makers[:5]:
        r = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
        q = (
            await m.ok(
                "/trade/quote", {"request_id": r, "funding_rate": "0", "collateral_usdc": "10"}, 201
            )
        )["quote_id"]
        pids.append(
            (await requester.ok("/trade/accept", {"request_id": r, "quote_id": q}))["position"][
                "position_id"
            ]
        )
    closes = iter(pids)

    async def close_one() -> None:
        await requester.ok("/trade/close", {"position_id": next(closes), "size_percent": 50})

    mine = await walk(s.http.get, f"/positions?agent_id={requester.id}", "positions", close_one)
    assert [p["position_id"] for p in mine] == pids
    maker_side = await walk(s.http.get, f"/positions?agent_id={makers[4].id}", "positions")
    assert [p["position_id"] for p in maker_side] == pids[4:]
    await requester.ok("/trade/close", {"position_id": pids[1], "size_percent": 100})
    open_ = await walk(s.http.get, "/positions?status=open&limit=1", "positions")
    assert [p["position_id"] for p in open_] == [p for p in pids if p != pids[1]]


async def test_events_page_by_cursor_or_since(small_pages: Server) -> None:
    s = small_pages
    (a,) = await funded(s, 1)
    for _ in range(3):
        await a.ok("/trade/request", REQUEST, 201)
    all_ = (await a.get("/events?since=0")).json()
    assert all_["next_cursor"] is None and len(all_["events"]) == 3
    page = (await a.get("/events?limit=2")).json()
    assert [e["seq"] for e in page["events"]] == [e["seq"] for e in all_["events"][:2]]
    rest = (await a.get(f"/events?limit=2&cursor={page['next_cursor']}")).json()
    assert [e["seq"] for e in rest["events"]] == [all_["events"][2]["seq"]]
    assert rest["next_cursor"] is None
    both = await a.get(f"/events?since=0&cursor={page['next_cursor']}")
    assert both.status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "/requests?limit=0",
        "/requests?limit=4",
        "/requests?limit=x",
        "/requests?cursor=@@",
        "/requests?cursor=",
        "/quotes?request_id=r&cursor=cjox",
    ],  # cjox = a /requests cursor
)
async def test_bad_limits_and_cursors_are_400(small_pages: Server, query: str) -> None:
    r = await small_pages.http.get(query)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request"


async def test_default_limits_are_bounded(server: Server) -> None:
    assert (await server.http.get("/requests?limit=500")).status_code == 200
    assert (await server.http.get("/requests?limit=501")).status_code == 400
    a = server.agent()
    assert (await a.get("/events?limit=10000")).status_code == 200
    assert (await a.get("/events?limit=10001")).status_code == 400
