"""Read latency (``GET /positions``, ``GET /markets``) idle, under a full write load, and
while another process holds the database's write lock.

1. Baseline: one reader in a loop, alternating ``GET /positions?status=open`` (a page
   of 100 open positions) and ``GET /markets``, on an idle daemon.
2. The same reader while ``--writers`` clients run full lifecycles (request, quote,
   accept, close: four signed writes each) as fast as the daemon takes them.
3. The same reader while a ``sqlite3`` connection of this process holds
   ``BEGIN IMMEDIATE`` on the daemon's file and the writers keep writing: every write
   waits for the lock (then 503), and reads, on their own read-only connections,
   must not.

Prints each phase's p50/p99 and the ratios against the idle baseline, then one JSON
object (keys read_p99_idle_ms, read_p99_loaded_ms, read_p99_locked_ms, ...).

    python bench/reads_under_load.py [--seconds 5] [--writers 8]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import REQUEST, BenchAgent, daemon_process, pct  # noqa: E402

READS = ("/positions?status=open&limit=100", "/markets")
OPEN_POSITIONS = 100


async def reader(http: httpx.AsyncClient, seconds: float) -> dict[str, list[float]]:
    """Each read's latency in s, by route, for ``seconds``."""
    samples: dict[str, list[float]] = {path: [] for path in READS}
    with trio.move_on_after(seconds):
        while True:
            for path in READS:
                start = time.perf_counter()
                r = await http.get(path)
                r.raise_for_status()
                samples[path].append(time.perf_counter() - start)
    return samples


async def open_position(requester: BenchAgent, maker: BenchAgent) -> None:
    rid = (await requester.post("/trade/request", REQUEST))["request_id"]
    quote = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "10"}
    qid = (await maker.post("/trade/quote", quote))["quote_id"]
    await requester.post("/trade/accept", {"request_id": rid, "quote_id": qid})


async def write_load(pairs: list[tuple[BenchAgent, BenchAgent]], counts: list[int]) -> None:
    """Lifecycles on every pair until cancelled; ``counts[0]`` += writes answered
    (2xx), ``counts[1]`` += writes refused (503 while the lock is held)."""

    async def loop(requester: BenchAgent, maker: BenchAgent) -> None:
        while True:
            try:
                rid = (await requester.post("/trade/request", REQUEST))["request_id"]
                quote = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "10"}
                qid = (await maker.post("/trade/quote", quote))["quote_id"]
                accept = {"request_id": rid, "quote_id": qid}
                pos = await requester.post("/trade/accept", accept)
                close = {"position_id": pos["position"]["position_id"], "size_percent": 100}
                await requester.post("/trade/close", close)
                counts[0] += 4
            except RuntimeError as exc:  # a 503 while another process holds the lock
                if " 503 " not in str(exc):
                    raise
                counts[1] += 1

    async with trio.open_nursery() as nursery:
        for pair in pairs:
            nursery.start_soon(loop, *pair)


def figures(samples: dict[str, list[float]]) -> tuple[float, float, int]:
    ms = [x * 1000 for path in READS for x in samples[path]]
    return pct(ms, 50), pct(ms, 99), len(ms)


async def main(seconds: float, writers: int) -> None:
    # the reader is one anonymous client reading as fast as it is answered: its subject
    # is the reads' latency, not the anonymous rate (10 calls/s), which is turned off
    async with daemon_process(
        "--chain", "none", config={"PERPD_PUBLIC_RATE_PER_S": "0"}
    ) as running:
        limits = httpx.Limits(max_connections=writers * 2 + 2)
        async with (
            httpx.AsyncClient(base_url=running.url, limits=limits, timeout=30) as http,
            httpx.AsyncClient(base_url=running.url, timeout=30) as reads,
        ):
            await http.post("/dev/price", json={"market": "BTC-PERP", "price": "50000"})
            pairs = [(BenchAgent(http), BenchAgent(http)) for _ in range(writers)]
            for pair in pairs:
                for agent in pair:
                    await agent.fund("1000000")
            async with trio.open_nursery() as nursery:  # a page of open positions to read
                for i in range(OPEN_POSITIONS):
                    nursery.start_soon(open_position, *pairs[i % writers])
            await reader(reads, 1.0)  # warm-up
            phases: dict[str, dict[str, list[float]]] = {"idle": await reader(reads, seconds)}
            counts = {"loaded": [0, 0], "locked": [0, 0]}
            for phase in ("loaded", "locked"):
                lock = None
                if phase == "locked":
                    lock = sqlite3.connect(running.db, isolation_level=None)
                    lock.execute("BEGIN IMMEDIATE")
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(write_load, pairs, counts[phase])
                        await trio.sleep(0.5)  # the writers get going
                        phases[phase] = await reader(reads, seconds)
                        nursery.cancel_scope.cancel()
                finally:
                    if lock is not None:
                        lock.execute("ROLLBACK")
                        lock.close()
    out: dict[str, float] = {}
    idle_p99 = figures(phases["idle"])[1]
    for phase, samples in phases.items():
        p50, p99, n = figures(samples)
        out[f"read_p50_{phase}_ms"] = round(p50, 2)
        out[f"read_p99_{phase}_ms"] = round(p99, 2)
        for path, key in zip(READS, ("positions", "markets"), strict=True):
            out[f"{key}_p99_{phase}_ms"] = round(pct([x * 1000 for x in samples[path]], 99), 2)
        line = f"{phase}: n={n} reads p50={p50:.2f} ms p99={p99:.2f} ms"
        if phase != "idle":
            done, refused = counts[phase]
            out[f"writes_{phase}_per_s"] = round(done / seconds, 1)
            line += f" (x{p99 / idle_p99:.2f} idle p99; writes {done / seconds:.0f}/s"
            line += f", {refused} refused 503)" if refused else ")"
        print(line)
    out["loaded_over_idle_p99"] = round(out["read_p99_loaded_ms"] / idle_p99, 2)
    out["locked_over_idle_p99"] = round(out["read_p99_locked_ms"] / idle_p99, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    trio.run(main, args.seconds, args.writers)
