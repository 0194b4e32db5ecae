"""Full HTTP lifecycles with custody on chain against the off-chain venue, in one run.

Two daemons in turn on fresh databases, ``--chain none`` then ``--chain local``; the
same agents' code on the SDK (`agents.Client`, which signs the four consents whenever
the daemon has a chain) runs lifecycles of four signed POSTs: request, quote, accept,
close. With ``local`` the accept lands ``lock_position`` and the close
``close_position`` in the daemon's LiteSVM, each in the SQLite commit that records it.
Prints each mode's lifecycles/s and per-lifecycle latency, then one JSON object (keys
none_rps, local_rps, rps_ratio, none_p50_ms, local_p50_ms, none_p99_ms, local_p99_ms).

    python bench/chain_lifecycle.py [--seconds 8] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import daemon, pct  # noqa: E402

from agents import Client, Keypair  # noqa: E402

M = 1_000_000


async def lifecycle(requester: Client, maker: Client) -> None:
    req = await requester.request_trade(
        "BTC-PERP", "long", 100 * M, leverage=10, max_funding_rate=1000, expires_in=60
    )
    quote = await maker.quote(req, funding_rate=500, collateral=10 * M, valid_for=30)
    position = await requester.accept(req.request_id, quote.quote_id)
    await requester.close(position, 100)


async def run_mode(chain: str, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    """(lifecycles/s, latencies in s) against a fresh daemon on ``--chain chain``."""
    latencies: list[float] = []
    async with daemon("--chain", chain) as url:
        limits = httpx.Limits(max_connections=concurrency * 2)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
            await http.post("/dev/price", json={"market": "BTC-PERP", "price": "50000"})
            pairs = []
            for _ in range(concurrency):
                pair = (Client(url, Keypair(), http=http), Client(url, Keypair(), http=http))
                for agent in pair:
                    await agent.faucet(1_000_000 * M)
                await lifecycle(*pair)  # warm-up: GET /chain read, code paths hot
                pairs.append(pair)

            async def loop(requester: Client, maker: Client) -> None:
                while True:
                    start = time.perf_counter()
                    await lifecycle(requester, maker)
                    latencies.append(time.perf_counter() - start)

            began = time.perf_counter()
            with trio.move_on_after(seconds):
                async with trio.open_nursery() as nursery:
                    for pair in pairs:
                        nursery.start_soon(loop, *pair)
            elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, latencies


async def main(seconds: float, concurrency: int) -> None:
    figures: dict[str, float] = {}
    for chain in ("none", "local"):
        rps, latencies = await run_mode(chain, seconds, concurrency)
        ms = [x * 1000 for x in latencies]
        figures |= {
            f"{chain}_rps": round(rps, 2),
            f"{chain}_p50_ms": round(pct(ms, 50), 2),
            f"{chain}_p99_ms": round(pct(ms, 99), 2),
        }
        print(
            f"--chain {chain}: {rps:.1f} lifecycles/s, n={len(ms)}, "
            f"p50={pct(ms, 50):.1f} ms p99={pct(ms, 99):.1f} ms (concurrency {concurrency})"
        )
    figures["rps_ratio"] = round(figures["local_rps"] / figures["none_rps"], 3)
    print(
        f"local / none: {figures['rps_ratio']:.3f} of the throughput, "
        f"p50 x{figures['local_p50_ms'] / figures['none_p50_ms']:.2f}"
    )
    keys = "none_rps local_rps rps_ratio none_p50_ms local_p50_ms none_p99_ms local_p99_ms".split()
    print(json.dumps({k: figures[k] for k in keys}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    trio.run(main, args.seconds, args.concurrency)
