"""Trading POSTs per second against a bare POST on the same server, as a ratio.

One lifecycle is four signed POSTs, each its own SQLite transaction: request, quote,
accept, close (``--chain local``: by the agents SDK, `agents.Client`, which signs the
four consents; ``--chain none``: plain signed calls, `BenchAgent`). The baseline is
``POST /dev/echo`` (the body back, no auth, no store) on the same daemon, with the same
client concurrency, in the same run.
Prints the rates, the ratio, the daemon's CPU per call (from /proc: steadier than
rates on a shared machine) and each call's p50/p99, then one JSON object (keys
bare_rps, trading_rps, ratio, bare_cpu_us, trading_cpu_us, <call>_p50_ms, <call>_p99_ms).

    python bench/http_lifecycle.py [--seconds 5] [--concurrency 8] [--chain none]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import REQUEST, BenchAgent, cpu_s, daemon_process, pct  # noqa: E402

from agents import Client, Keypair  # noqa: E402

M = 1_000_000
CALLS = ("request", "quote", "accept", "close")
Timings = dict[str, list[float]]


async def measure(seconds: float, workers: list[Callable[[], Awaitable[None]]]) -> float:
    """Run every worker in a loop for ``seconds``; rounds completed per second."""
    count = 0

    async def loop(once: Callable[[], Awaitable[None]]) -> None:
        nonlocal count
        while True:
            await once()
            count += 1

    began = time.perf_counter()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for once in workers:
                nursery.start_soon(loop, once)
    return count / (time.perf_counter() - began)


def echo(http: httpx.AsyncClient) -> Callable[[], Awaitable[None]]:
    async def once() -> None:
        r = await http.post("/dev/echo", content=b'{"market":"BTC-PERP","size":"100"}')
        r.raise_for_status()

    return once


def sdk_lifecycle(
    requester: Client, maker: Client, times: Timings
) -> Callable[[], Awaitable[None]]:
    """The lifecycle by the SDK (consents signed when the daemon has a chain)."""

    async def timed(call: str, step: Awaitable[object]) -> object:
        start = time.perf_counter()
        result = await step
        times[call].append(time.perf_counter() - start)
        return result

    async def once() -> None:
        start = time.perf_counter()
        req = await requester.request_trade(
            "BTC-PERP", "long", 100 * M, leverage=10, max_funding_rate=1000, expires_in=60
        )
        times["request"].append(time.perf_counter() - start)
        quote = await timed(
            "quote", maker.quote(req, funding_rate=500, collateral=10 * M, valid_for=30)
        )
        position = await timed(
            "accept",
            requester.accept(req.request_id, quote.quote_id),  # type: ignore[attr-defined]
        )
        await timed("close", requester.close(position, 100))  # type: ignore[arg-type]
        times["lifecycle"].append(time.perf_counter() - start)

    return once


def plain_lifecycle(
    requester: BenchAgent, maker: BenchAgent, times: Timings
) -> Callable[[], Awaitable[None]]:
    """The lifecycle as four plain signed POSTs (no consents: ``--chain none``)."""

    async def once() -> None:
        start = time.perf_counter()
        rid = (await requester.post("/trade/request", REQUEST))["request_id"]
        t1 = time.perf_counter()
        quote = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "10"}
        qid = (await maker.post("/trade/quote", quote))["quote_id"]
        t2 = time.perf_counter()
        pos = await requester.post("/trade/accept", {"request_id": rid, "quote_id": qid})
        t3 = time.perf_counter()
        close = {"position_id": pos["position"]["position_id"], "size_percent": 100}
        await requester.post("/trade/close", close)
        t4 = time.perf_counter()
        for call, took in zip(CALLS, (t1 - start, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[call].append(took)
        times["lifecycle"].append(t4 - start)

    return once


async def main(seconds: float, concurrency: int, chain: str) -> None:
    async with daemon_process("--chain", chain) as running:
        url = running.url
        limits = httpx.Limits(max_connections=concurrency * 2)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
            await http.post("/dev/price", json={"market": "BTC-PERP", "price": "50000"})
            times: Timings = {call: [] for call in (*CALLS, "lifecycle")}
            cycles = []
            for _ in range(concurrency):
                if chain == "none":
                    plain = (BenchAgent(http), BenchAgent(http))
                    for bench_agent in plain:
                        await bench_agent.fund("1000000")
                    cycles.append(plain_lifecycle(*plain, times))
                else:
                    pair = (Client(url, Keypair(), http=http), Client(url, Keypair(), http=http))
                    for agent in pair:
                        await agent.faucet(1_000_000 * M)
                    cycles.append(sdk_lifecycle(*pair, times))
            await measure(1.0, [echo(http)] * concurrency)  # warm-up
            await measure(1.0, cycles)
            for samples in times.values():
                samples.clear()
            cpu0 = cpu_s(running.pid)
            bare_rps = await measure(seconds, [echo(http)] * concurrency)
            cpu1 = cpu_s(running.pid)
            cycle_rps = await measure(seconds, cycles)
            cpu2 = cpu_s(running.pid)
    trading_rps = 4 * cycle_rps
    figures: dict[str, float] = {
        "bare_rps": round(bare_rps, 1),
        "trading_rps": round(trading_rps, 1),
        "ratio": round(trading_rps / bare_rps, 3),
        "bare_cpu_us": round((cpu1 - cpu0) / (bare_rps * seconds) * 1e6),
        "trading_cpu_us": round((cpu2 - cpu1) / (trading_rps * seconds) * 1e6),
    }
    print(f"bare POST /dev/echo: {bare_rps:.0f} req/s ({concurrency} clients, --chain {chain})")
    print(f"full lifecycle: {cycle_rps:.1f} lifecycles/s = {trading_rps:.0f} trading POSTs/s")
    print(f"ratio trading POST / bare POST: {figures['ratio']:.3f}")
    print(
        f"daemon CPU per call: bare {figures['bare_cpu_us']:.0f} us, "
        f"trading {figures['trading_cpu_us']:.0f} us"
    )
    for call, samples in times.items():
        ms = [x * 1000 for x in samples]
        figures[f"{call}_p50_ms"] = round(pct(ms, 50), 2)
        figures[f"{call}_p99_ms"] = round(pct(ms, 99), 2)
        print(f"  {call}: n={len(ms)} p50={pct(ms, 50):.2f} ms p99={pct(ms, 99):.2f} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--chain", choices=("none", "local"), default="none")
    args = parser.parse_args()
    trio.run(main, args.seconds, args.concurrency, args.chain)
