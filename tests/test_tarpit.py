"""A rate refusal is answered late, so a flood slows itself (`perpd.tarpit`), and no
more than ``refusal_hold_max`` are held at once."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from tests.conftest import base_config, start_server

DELAY = 0.3


async def test_a_caller_looping_on_429s_waits_for_each(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    cfg = base_config(
        tmp_path, public_rate_per_s=0.01, public_burst=2, refusal_delay_s=DELAY, refusal_hold_max=4
    )
    s = await start_server(nursery, cfg)
    assert (
        await s.http.get("/markets")
    ).status_code == 200  # the last token (start_server read /chain)
    start = trio.current_time()
    for _ in range(3):
        r = await s.http.get("/markets")
        assert r.status_code == 429 and r.headers["Retry-After"]
        assert r.json()["error"]["code"] == "rate_limited"
    assert trio.current_time() - start >= 3 * DELAY
    assert s.venue.services["limiter"].tarpit.held_total == 3  # type: ignore[union-attr]
    await s.http.aclose()
    s.shutdown.set()


async def test_past_the_hold_cap_refusals_go_out_at_once(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    cfg = base_config(
        tmp_path, public_rate_per_s=0.01, public_burst=2, refusal_delay_s=2.0, refusal_hold_max=2
    )
    s = await start_server(nursery, cfg)
    assert (await s.http.get("/markets")).status_code == 200
    statuses: list[tuple[int, float]] = []

    async def call(http: httpx.AsyncClient) -> None:
        start = trio.current_time()
        r = await http.get("/markets")
        statuses.append((r.status_code, trio.current_time() - start))

    clients = [httpx.AsyncClient(base_url=s.url, timeout=10) for _ in range(5)]
    async with trio.open_nursery() as calls:
        for http in clients:
            calls.start_soon(call, http)
    for http in clients:
        await http.aclose()
    assert [code for code, _ in statuses] == [429] * 5
    quick = [t for _, t in statuses if t < 1.0]
    assert len(quick) == 3, statuses  # two held 2 s, the other three answered at once
    await s.http.aclose()
    s.shutdown.set()
