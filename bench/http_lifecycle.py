"""Full HTTP lifecycles per second against a bare POST on the same server, as a ratio.

One lifecycle is four signed POSTs, each its own SQLite transaction: request, quote,
accept, close. The baseline is ``POST /dev/echo`` (the body back, no auth, no store) on
the same daemon, with the same client concurrency, in the same run.

    python bench/http_lifecycle.py [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import REQUEST, BenchAgent, daemon  # noqa: E402


async def measure(seconds: float, concurrency: int, worker) -> int:  # type: ignore[no-untyped-def]
    count = 0
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:

            async def loop(i: int) -> None:
                nonlocal count
                state = await worker.setup(i)
                while True:
                    await worker.once(state)
                    count += 1

            for i in range(concurrency):
                nursery.start_soon(loop, i)
    return count


class Echo:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def setup(self, i: int) -> None:
        return None

    async def once(self, state: None) -> None:
        r = await self.http.post("/dev/echo", content=b'{"market":"BTC-PERP","size":"100"}')
        r.raise_for_status()


class Lifecycle:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def setup(self, i: int) -> tuple[BenchAgent, BenchAgent]:
        requester, maker = BenchAgent(self.http), BenchAgent(self.http)
        await requester.fund("1000000")
        await maker.fund("1000000")
        return requester, maker

    async def once(self, state: tuple[BenchAgent, BenchAgent]) -> None:
        requester, maker = state
        rid = (await requester.post("/trade/request", REQUEST))["request_id"]
        qid = (
            await maker.post(
                "/trade/quote",
                {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "10"},
            )
        )["quote_id"]
        pos = await requester.post("/trade/accept", {"request_id": rid, "quote_id": qid})
        await requester.post(
            "/trade/close", {"position_id": pos["position"]["position_id"], "size_percent": 100}
        )


async def main(seconds: float, concurrency: int) -> None:
    async with daemon() as url:
        limits = httpx.Limits(max_connections=concurrency * 2)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
            await http.post("/dev/price", json={"market": "BTC-PERP", "price": "50000"})
            await measure(1.0, concurrency, Echo(http))  # warm-up
            echoes = await measure(seconds, concurrency, Echo(http))
            cycles = await measure(seconds, concurrency, Lifecycle(http))
    echo_rps = echoes / seconds
    cycle_rps = cycles / seconds
    print(f"bare POST /dev/echo: {echo_rps:.0f} req/s")
    print(
        f"full lifecycle (4 signed POSTs): {cycle_rps:.1f} lifecycles/s "
        f"= {4 * cycle_rps:.0f} trading POSTs/s"
    )
    print(f"ratio trading POST / bare POST: {4 * cycle_rps / echo_rps:.2f}")
    print(f"ratio lifecycle / bare POST: {cycle_rps / echo_rps:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    trio.run(main, args.seconds, args.concurrency)
