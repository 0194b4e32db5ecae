"""A funding tick over many open positions, and trading latency while it runs.

Builds ``--positions`` open positions (2,000 requesters, 200 makers, three markets) in
bulk in a fresh SQLite file, every one due at the same instant T0, then starts the real
daemon (``--chain none``: the store's mirror is the whole ledger) on that file. Two
pairs of agents run full HTTP lifecycles (request, quote, accept, close: four signed
POSTs) before T0 (the idle baseline, same daemon, same run) and while the tick settles
the positions. ``tick_s`` runs from T0 until no position is due (polled read-only every
20 ms); ``rss_mb`` is the daemon's peak RSS. Afterwards the books are checked
(`queries.verify`: conservation, locked = open collaterals, no hole in the event log)
and every position must carry exactly one ``funding_settled``.

With ``--chain-positions K`` (default 480; 0 skips it) a second daemon on ``--chain
local`` opens K positions through the SDK (each locked on the in-process SVM), and the
next funding boundary (``--funding-period 30``) settles them with batched
``settle_funding`` transactions: ``chain_tick_s`` and ``chain_positions_per_s``.

With ``--baseline TREE`` the mirror tick runs first on the daemon of another source
tree (e.g. a checkout of main), then on this one, in the same run: the ratios are
printed and the baseline's figures join the JSON line as ``baseline_*``. The machine's
load average is recorded with each figure (``loadavg``).

    python bench/funding_scale.py [--positions 100000] [--chain-positions 480]
                                  [--baseline TREE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import daemon_process, pct, rss_kb  # noqa: E402
from chain_lifecycle import M, lifecycle  # noqa: E402

from agents import Client, Keypair  # noqa: E402
from perpd import liq_bounds, money  # noqa: E402
from perpd.markets import DEFAULT_FUNDING_PERIOD_S, MARKETS  # noqa: E402
from perpd.records import Position  # noqa: E402
from perpd.store import migrate  # noqa: E402
from perpd.store import queries as q  # noqa: E402

REQUESTERS, MAKERS = 2_000, 200
LEAD_S = 35.0  # from the positions' making to T0: the writes, the daemon's start, idle
POLL_S = 0.02
# a pair starts a lifecycle at most every PACE_S: its requester's three signed calls then
# stay under the venue's 100 calls/s per agent however fast the machine is (a 429 would
# end the run), and every run samples the same load
PACE_S = 0.05


def build(db: str, n: int, lead_s: float, period: int) -> int:
    """``n`` open positions due at T0 = ``lead_s`` after the build (returned), each one
    whole period past its funding base, and the accounts that lock their collaterals,
    with the ledger in balance."""
    rnd = random.Random(11)
    requesters = [str(Keypair().pubkey()) for _ in range(REQUESTERS)]
    makers = [str(Keypair().pubkey()) for _ in range(MAKERS)]
    markets = list(MARKETS.values())
    t_base = int(time.time() + lead_s) // period * period - period
    locked: dict[str, int] = {}
    made = []
    for i in range(n):
        market = markets[i % len(markets)]
        notional = rnd.randrange(100, 10_000) * M
        state, _fee = money.open_position(
            rnd.choice((1, -1)),
            notional,
            market.sim_start_price,
            5,
            notional // 5,
            rnd.choice((-300, 100, 250, 1000)),
            t_base,
        )
        requester, maker = requesters[i % REQUESTERS], makers[i % MAKERS]
        locked[requester] = locked.get(requester, 0) + state.cr
        locked[maker] = locked.get(maker, 0) + state.cm
        # index columns as the daemon keeps them in a steady state: each payer's bound
        # counts its funding to its phase's boundary, so about one in HORIZON is due a
        # rewrite at T0 (`perpd.liq_bounds`)
        liq = liq_bounds.stored(state, f"bench_{i:010d}", t_base - period, period)
        made.append((i, market.name, requester, maker, state, liq))
    t0 = int(time.time() + lead_s)
    rows = (
        (
            Position(
                f"bench_{i:010d}",
                f"req_{i:016x}",
                f"quo_{i:016x}",
                market,
                requester,
                maker,
                5,
                state,
                0,
                0,
                "open",
                t_base,
                None,
                t0,
            ),  # fmt: skip
            liq,
        )
        for i, market, requester, maker, state, liq in made
    )
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn)
    conn.execute("BEGIN")
    for agent in requesters + makers:
        q.record_deposit(conn, agent, 10_000_000 * M + locked.get(agent, 0))
        q.adjust_account(conn, agent, -locked.get(agent, 0), locked.get(agent, 0))
    q.insert_positions(conn, rows)
    conn.execute("COMMIT")
    conn.close()
    return t0


# the migrations a freshly built file (no events yet) can be taken back out of, newest
# first: a baseline tree's daemon refuses a file newer than its perpd
UNDO = (
    ("m011_", "ALTER TABLE positions DROP COLUMN bound_until"),
    ("m010_", "ALTER TABLE events DROP COLUMN audience"),
    ("m009_", "DROP TABLE funding_unindexed"),
)


def schema_for(db: str, tree: str) -> None:
    """Leave the file at the schema of ``tree``'s perpd, if that predates migration 9, 10
    or 11 (each only adds a table or a column, unused by an older perpd)."""
    known = (Path(tree) / "perpd" / "store" / "_schema.py").read_text()
    conn = sqlite3.connect(db, isolation_level=None)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for name, undo in UNDO:
        if name in known:
            break
        conn.execute(undo)
        version -= 1
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()


def reader(db: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, check_same_thread=False)


async def pairs(url: str, http: httpx.AsyncClient, count: int) -> list[tuple[Client, Client]]:
    """``count`` funded (requester, maker) pairs, each warmed up by one lifecycle."""
    out = []
    for _ in range(count):
        pair = (Client(url, Keypair(), http=http), Client(url, Keypair(), http=http))
        for agent in pair:
            await agent.faucet(1_000_000 * M)
        await lifecycle(*pair)
        out.append(pair)
    return out


def unindexed(conn: sqlite3.Connection) -> bool:
    """Whether a tick's audience and history rows are still to be written (a baseline
    tree older than migration 9 writes them with each batch: never)."""
    try:
        return conn.execute("SELECT 1 FROM funding_unindexed").fetchone() is not None
    except sqlite3.OperationalError:  # no such table
        return False


def ticking(conn: sqlite3.Connection, at: int) -> bool:
    return q.any_funding_due(conn, at) or unindexed(conn)


async def wait_settled(conn: sqlite3.Connection, at: int, start: float) -> float:
    """Seconds from ``start`` (wall clock) until no open position is due at ``at`` and
    the tick's rows are all written (its sorted pass is part of the tick)."""
    # another process's file: there is nothing to wait on but the file itself
    while await trio.to_thread.run_sync(ticking, conn, at):  # noqa: ASYNC110
        await trio.sleep(POLL_S)
    return time.time() - start


async def mirror_tick(n: int, tree: str | None = None, lead_s: float = LEAD_S) -> dict[str, float]:
    period = DEFAULT_FUNDING_PERIOD_S
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "funding.db")
        began = time.perf_counter()
        t0 = build(db, n, lead_s, period)
        if tree is not None:
            schema_for(db, tree)
        print(f"built {n} positions in {time.perf_counter() - began:.1f} s")
        idle: list[float] = []
        during: list[float] = []
        async with daemon_process("--chain", "none", "--db", db, tree=tree) as running:
            async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
                agents = await pairs(running.url, http, 2)
                if time.time() > t0 - 3:
                    raise SystemExit("the daemon took too long to start: raise --lead")
                print(f"daemon up; {t0 - time.time():.1f} s of idle baseline before T0")
                done = trio.Event()
                tick_s = 0.0

                async def loop(requester: Client, maker: Client) -> None:
                    while not done.is_set():
                        start = time.perf_counter()
                        await lifecycle(requester, maker)
                        ended = time.time()
                        if ended < t0:
                            idle.append(time.perf_counter() - start)
                        elif ended - (time.perf_counter() - start) >= t0:
                            during.append(time.perf_counter() - start)
                        await trio.sleep(max(0.0, PACE_S - (time.perf_counter() - start)))

                async def tick() -> None:
                    nonlocal tick_s
                    ro = reader(db)
                    await trio.sleep(max(0.0, t0 - time.time()))
                    tick_s = await wait_settled(ro, t0, float(t0))
                    ro.close()
                    await trio.sleep(0.5)  # a few lifecycles just after the tick, too
                    done.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(tick)
                    for pair in agents:
                        nursery.start_soon(loop, *pair)
                peak_kb = rss_kb(running.pid, "VmHWM")
        conn = sqlite3.connect(db)
        problems = q.verify(conn)
        settled, distinct = q.funding_settled_counts(conn, "bench_")
        conn.close()
    if problems:
        raise SystemExit(f"the books do not balance after the tick: {problems}")
    if settled != n or distinct != n:
        raise SystemExit(f"{settled} funding_settled events for {distinct} of {n} positions")
    idle_ms = [x * 1000 for x in idle]
    during_ms = [x * 1000 for x in during] or [float("nan")]
    print(
        f"tick: {n} positions in {tick_s:.2f} s ({n / tick_s:,.0f}/s), peak RSS "
        f"{peak_kb / 1024:.0f} MB, {settled} funding_settled events, books balance"
    )
    print(
        f"lifecycle (4 POSTs, 2 pairs): idle n={len(idle_ms)} p99={pct(idle_ms, 99):.1f} ms; "
        f"during the tick n={len(during)} p99={pct(during_ms, 99):.1f} ms "
        f"(x{pct(during_ms, 99) / pct(idle_ms, 99):.2f} of idle)"
    )
    return {
        "positions": n,
        "tick_s": round(tick_s, 3),
        "positions_per_s": round(n / tick_s),
        "rss_mb": round(peak_kb / 1024, 1),
        "lifecycle_p99_idle_ms": round(pct(idle_ms, 99), 2),
        "lifecycle_p99_during_ms": round(pct(during_ms, 99), 2),
        "lifecycles_during": len(during),
        "p99_ratio": round(pct(during_ms, 99) / pct(idle_ms, 99), 2),
        "loadavg": round(os.getloadavg()[0], 2),
    }


async def chain_tick(k: int) -> dict[str, float]:
    period = 30
    async with daemon_process("--chain", "local", "--funding-period", str(period)) as running:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=running.url, timeout=60, limits=limits) as http:
            agents = await pairs(running.url, http, 8)
            began = time.perf_counter()

            async def open_some(requester: Client, maker: Client, count: int) -> None:
                for _ in range(count):
                    req = await requester.request_trade(
                        "BTC-PERP", "long", 100 * M, leverage=10, max_funding_rate=1000,
                        expires_in=60,
                    )  # fmt: skip
                    quote = await maker.quote(req, funding_rate=500, collateral=10 * M)
                    await requester.accept(req.request_id, quote.quote_id)

            async with trio.open_nursery() as nursery:
                for i, pair in enumerate(agents):
                    nursery.start_soon(open_some, *pair, k // 8 + (i < k % 8))
            print(f"opened {k} positions on chain in {time.perf_counter() - began:.1f} s")
            boundary = (int(time.time()) // period + 1) * period
            ro = reader(running.db)
            due_at_boundary = await trio.to_thread.run_sync(q.count_funding_due, ro, boundary)
            await trio.sleep(max(0.0, boundary - time.time()))
            tick_s = await wait_settled(ro, boundary, float(boundary))
            ro.close()
    print(
        f"chain tick: {due_at_boundary} positions in {tick_s:.2f} s "
        f"({due_at_boundary / tick_s:,.0f}/s) with batched settle_funding"
    )
    return {
        "chain_positions": due_at_boundary,
        "chain_tick_s": round(tick_s, 3),
        "chain_positions_per_s": round(due_at_boundary / tick_s, 1),
    }


async def main(n: int, k: int, baseline: str | None, lead_s: float) -> None:
    before: dict[str, float] = {}
    if baseline is not None:
        print(f"baseline: the daemon of {baseline}")
        before = await mirror_tick(n, baseline, lead_s)
        print("this tree:")
    figures = await mirror_tick(n, None, lead_s)
    if before:
        for key in ("tick_s", "lifecycle_p99_during_ms", "p99_ratio"):
            print(f"{key}: {before[key]} -> {figures[key]} (x{figures[key] / before[key]:.2f})")
        figures |= {f"baseline_{key}": value for key, value in before.items()}
    if k:
        figures |= await chain_tick(k)
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument("--chain-positions", type=int, default=480)
    parser.add_argument("--baseline", metavar="TREE", help="source tree of a baseline daemon")
    parser.add_argument(
        "--lead",
        type=float,
        default=LEAD_S,
        help="seconds from the build to T0 (a loaded machine needs more)",
    )
    args = parser.parse_args()
    trio.run(main, args.positions, args.chain_positions, args.baseline, args.lead)
