"""``perpd demo``: the daemon with reference agents trading, and a live terminal view.

One trio process runs everything: the daemon on its embedded defaults (dev mode,
simulated oracle, a fresh SQLite file in a temporary directory, funding every 60 s so
funding shows up within a minute) and, as tasks in the same nursery, the three
reference market makers and two random traders from the ``agents`` SDK, each funded
from the dev faucet. The agents talk to the daemon over loopback HTTP and WebSocket
exactly as outside agents do; the view reads the public API too.

Ctrl-C (or SIGTERM, or ``--duration``) stops the agents first, then the daemon
(which drains and closes its database), prints a final summary and exits 0. With
``--no-tty`` (the default when stdout is not a terminal) the view is a summary line
every few seconds instead of a full-screen redraw.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

from agents import (
    MICRO,
    AgentError,
    Client,
    Keypair,
    MarketMaker,
    Position,
    RiskLimits,
    SimulatedFundingFeed,
    format_rate,
)
from agents.aggressive_mm import AggressiveMM
from agents.arbitrage_mm import ArbitrageMM
from agents.conservative_mm import ConservativeMM
from agents.trader import RandomTrader
from perpd import daemon
from perpd.config import Config
from perpd.records import PositionStatus
from perpd.store.chain import recent_chain_txs
from perpd.venue import Venue

HELP = "run the daemon with three market makers and two traders, and watch them trade"
log = logging.getLogger("perpd.demo")

MAKER_FUNDS = 100_000 * MICRO
TRADER_FUNDS = 25_000 * MICRO
CLEAR = "\x1b[H\x1b[2J"
CHAIN_TXS = 4  # signatures the view shows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="SQLite file (default: a fresh one in a temporary directory)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="default: any free port")
    p.add_argument("--funding-period", type=int, default=60, metavar="S", help="default 60 s")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument(
        "--chain",
        choices=("local", "none"),
        default="local",
        help="local (default): the escrow program in an in-process SVM; none: off-chain test mode",
    )
    p.add_argument("--no-tty", action="store_true", help="summary lines instead of a screen")
    p.add_argument("--refresh", type=float, default=1.0, metavar="S", help="view refresh")
    p.add_argument("--seed", type=int, default=7, help="seed of the oracle walk and the agents")
    p.add_argument("--log-level", default="WARNING")


@dataclass
class Cast:
    """The demo's agents and what the view needs to name them."""

    makers: list[tuple[str, MarketMaker]] = field(default_factory=list)
    traders: list[tuple[str, RandomTrader]] = field(default_factory=list)
    clients: dict[str, Client] = field(default_factory=dict)  # name -> client
    names: dict[str, str] = field(default_factory=dict)  # agent id -> name


@dataclass(frozen=True)
class Snapshot:
    """One reading of the venue through its public API (and each agent's account)."""

    elapsed: float
    prices: dict[str, int | None]
    requests: int
    quotes: int
    fills: int
    unfilled: int
    closes: int
    liquidations: int
    open_positions: list[Position]
    funding_paid: int  # |funding| moved so far, all positions
    balances: dict[str, tuple[int, int]]  # name -> (free, locked)
    maker_funding: dict[str, int]
    maker_fills: dict[str, int]
    ledger: dict[str, int]
    chain: dict[str, Any]  # GET /chain: mode, slot, program id...
    chain_txs: list[dict[str, Any]]  # the newest transactions the daemon landed

    @property
    def balanced(self) -> bool | None:
        led = self.ledger
        keys = ("deposits", "withdrawals", "free", "locked", "fees")
        if not all(k in led for k in keys):
            return None
        return led["deposits"] - led["withdrawals"] == led["free"] + led["locked"] + led["fees"]

    def line(self) -> str:
        fees = self.ledger.get("fees", 0)
        return (
            f"t={self.elapsed:.0f}s requests={self.requests} quotes={self.quotes} "
            f"fills={self.fills} unfilled={self.unfilled} open={len(self.open_positions)} "
            f"closes={self.closes} liquidations={self.liquidations} "
            f"by_maker={','.join(f'{k}:{v}' for k, v in self.maker_fills.items())} "
            f"funding={usd(self.funding_paid)} fees={usd(fees)} books_balance={self.balanced} "
            f"chain={self.chain_text()}"
        )

    def chain_text(self) -> str:
        mode = self.chain.get("mode", "?")
        if mode == "none":
            return "none (off-chain test mode: SQLite is the only ledger)"
        text = f"{mode} slot={self.chain.get('slot')}"
        if self.chain_txs:  # the newest transaction that landed
            tx = self.chain_txs[0]
            text += f" last_tx={tx['kind']}:{tx['signature']}"
        return text


def usd(micro: int) -> str:
    """Micro-USDC for display: thousands separators, cents truncated (integers only)."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO)
    return f"{sign}{whole:,}.{frac // 10_000:02d}"


def price_text(price: int | None) -> str:
    if price is None:
        return "n/a"
    whole, frac = divmod(price, 100_000_000)
    return f"{whole:,}.{frac // 1_000_000:02d}"


async def _cast(url: str, funding_period_s: int, seed: int, stack: list[Client]) -> Cast:
    """Make, fund and name the agents (not yet running)."""
    cast = Cast()

    async def client(name: str, funds: int) -> Client:
        c = Client(url, Keypair())
        stack.append(c)
        await c.faucet(funds)
        cast.clients[name] = c
        cast.names[c.agent_id] = name
        return c

    feed = SimulatedFundingFeed(
        seed=seed, mean=400, step=80, interval_s=3.0, period_s=funding_period_s
    )
    # Tighter limits than the agents' defaults, so that within a minute the cheap makers
    # hit them and the conservative one gets fills too.
    aggressive_limits = RiskLimits(
        max_open_notional_per_market=12_000 * MICRO,
        max_notional_per_counterparty=6_000 * MICRO,
        min_free_collateral=500 * MICRO,
    )
    cast.makers = [
        ("conservative", ConservativeMM(await client("conservative", MAKER_FUNDS))),
        (
            "aggressive",
            AggressiveMM(
                await client("aggressive", MAKER_FUNDS), seed=seed, limits=aggressive_limits
            ),
        ),
        (
            "arbitrage",
            ArbitrageMM(
                await client("arbitrage", MAKER_FUNDS), feed, inventory_limit=6_000 * MICRO
            ),
        ),
    ]
    for i in (1, 2):
        c = await client(f"trader-{i}", TRADER_FUNDS)
        cast.traders.append(
            (
                f"trader-{i}",
                RandomTrader(
                    c,
                    seed=seed * 10 + i,
                    hold_s=(5.0, 25.0),
                    think_s=(0.5, 2.5),
                    max_open=4,
                    expires_in=8,
                    quote_window=1.0,
                    cautious=0.25,
                ),
            )
        )
    return cast


async def _snapshot(observer: Client, cast: Cast, started: float, venue: Venue) -> Snapshot:
    markets = await observer.markets()
    positions = await observer.positions()
    balances = {}
    for name, c in cast.clients.items():
        b = await c.balances()
        balances[name] = (b.free, b.locked)
    ledger = _ledger(await observer.metrics())
    trader_stats = [t.trader.statistics() for _, t in cast.traders]
    maker_stats = {name: m.statistics() for name, m in cast.makers}
    return Snapshot(
        elapsed=time.monotonic() - started,
        prices={m.market: m.oracle_price for m in markets},
        requests=sum(s.requests for s in trader_stats),
        quotes=sum(s.quotes_sent for s in maker_stats.values()),
        fills=sum(s.fills for s in trader_stats),
        unfilled=sum(s.unfilled for s in trader_stats),
        closes=sum(1 for p in positions if p.status == PositionStatus.CLOSED),
        liquidations=sum(1 for p in positions if p.status == PositionStatus.LIQUIDATED),
        open_positions=[p for p in positions if p.is_open],
        funding_paid=sum(abs(p.funding_paid) for p in positions),
        balances=balances,
        maker_funding={name: s.funding_received for name, s in maker_stats.items()},
        maker_fills={name: s.fills for name, s in maker_stats.items()},
        ledger=ledger,
        chain=await _chain(venue),
        chain_txs=await venue.read(partial(recent_chain_txs, limit=CHAIN_TXS)),
    )


async def _chain(venue: Venue) -> dict[str, Any]:
    """The chain as GET /chain shows it (mode, slot...), from the daemon in this process."""
    backend = venue.backend
    if backend is None:
        return {"mode": "none"}
    return backend.info() | {"slot": await backend.slot()}  # type: ignore[no-any-return]


def _ledger(metrics: str) -> dict[str, int]:
    """The ``perpd_ledger_*_micro_usdc`` gauges of ``/metrics``."""
    out = {}
    for line in metrics.splitlines():
        if line.startswith("perpd_ledger_") and "_micro_usdc " in line:
            key, value = line.split(" ", 1)
            out[key.removeprefix("perpd_ledger_").removesuffix("_micro_usdc")] = int(value)
    return out


def render(s: Snapshot, cast: Cast, url: str, funding_period_s: int) -> str:
    """The full-screen view."""
    names = cast.names
    rows = [
        f"perpd demo  {url}/ (live web view)   oracle: simulated   "
        f"funding every {funding_period_s} s   "
        f"up {int(s.elapsed) // 60:02d}:{int(s.elapsed) % 60:02d}    Ctrl-C to stop",
        "",
        "markets   " + "   ".join(f"{m} {price_text(p)}" for m, p in s.prices.items()),
        f"flow      requests {s.requests}   quotes {s.quotes}   fills {s.fills}   "
        f"unfilled {s.unfilled}   closed {s.closes}   liquidated {s.liquidations}",
        f"money     funding paid {usd(s.funding_paid)}   protocol fees "
        f"{usd(s.ledger.get('fees', 0))}   books balance: {s.balanced}",
        "",
        f"open positions ({len(s.open_positions)})",
        f"  {'market':<9} {'side':<5} {'size':>10} {'entry':>12} {'lev':>4} {'rate':>8} "
        f"{'requester':<10} {'maker':<13} {'uPnL':>9} {'funding':>8}",
    ]
    for p in s.open_positions[:12]:
        rows.append(
            f"  {p.market:<9} {p.side:<5} {usd(p.size):>10} {price_text(p.entry_price):>12} "
            f"{p.leverage:>3}x {format_rate(p.funding_rate):>8} "
            f"{names.get(p.requester, p.requester[:8]):<10} "
            f"{names.get(p.maker, p.maker[:8]):<13} "
            f"{usd(p.unrealized_pnl or 0):>9} {usd(p.funding_paid):>8}"
        )
    rows[5:5] = [f"chain     {s.chain_text()}"] + [
        f"          {tx['kind']:<9} {tx['ref'] or '':<22} slot {tx['slot']:<6} {tx['signature']}"
        for tx in s.chain_txs
    ]
    if len(s.open_positions) > 12:
        rows.append(f"  ... and {len(s.open_positions) - 12} more")
    rows += [
        "",
        f"  {'agent':<13} {'free':>12} {'locked':>10} {'funding recv':>13} {'fills':>6}",
    ]
    for name, (free, locked) in s.balances.items():
        funding, fills = s.maker_funding.get(name), s.maker_fills.get(name)
        rows.append(
            f"  {name:<13} {usd(free):>12} {usd(locked):>10} "
            f"{'' if funding is None else usd(funding):>13} {'' if fills is None else fills:>6}"
        )
    return "\n".join(rows)


async def _view(
    observer: Client, cast: Cast, url: str, opts: argparse.Namespace, tty: bool, venue: Venue
) -> None:
    started = time.monotonic()
    last_line = 0.0
    while True:
        await trio.sleep(opts.refresh)
        try:
            snap = await _snapshot(observer, cast, started, venue)
        except AgentError as exc:
            log.warning("view: %s", exc)
            continue
        if tty:
            sys.stdout.write(CLEAR + render(snap, cast, url, opts.funding_period) + "\n")
            sys.stdout.flush()
        elif snap.elapsed - last_line >= 5.0:
            last_line = snap.elapsed
            print(snap.line(), flush=True)


async def run_demo(opts: argparse.Namespace, stop: trio.Event, *, tty: bool) -> Snapshot | None:
    """Run until ``stop`` is set; returns the last snapshot (None if it never got one)."""
    with tempfile.TemporaryDirectory(prefix="perpd-demo-") as tmp:
        db = opts.db or str(Path(tmp) / "perpd.db")
        config = Config(
            db=db,
            host=opts.host,
            port=opts.port,
            dev=True,
            funding_period_s=opts.funding_period,
            oracle="sim",
            sim_seed=opts.seed,
            keeper=True,
            chain=opts.chain,
        )
        shutdown = trio.Event()
        clients: list[Client] = []
        final: Snapshot | None = None
        async with trio.open_nursery() as root:

            async def serve(task_status: trio.TaskStatus[Venue]) -> None:
                await daemon.run(config, shutdown=shutdown, task_status=task_status)

            venue: Venue = await root.start(serve)
            url = venue.binds[0]
            # the live web view's address comes first, before anything else is printed
            print(f"perpd demo: live view at {url}/", flush=True)
            try:
                observer = Client(url, Keypair())
                clients.append(observer)
                cast = await _cast(url, opts.funding_period, opts.seed, clients)
                started = time.monotonic()
                if not tty:
                    print(f"perpd demo on {url} (db {db}); Ctrl-C to stop", flush=True)
                async with trio.open_nursery() as agents:
                    runners: list[MarketMaker | RandomTrader] = [m for _, m in cast.makers]
                    runners += [t for _, t in cast.traders]
                    for agent in runners:
                        await agents.start(agent.run)
                    agents.start_soon(_view, observer, cast, url, opts, tty, venue)
                    await stop.wait()
                    agents.cancel_scope.cancel()
                with trio.move_on_after(5):
                    final = await _snapshot(observer, cast, started, venue)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    for c in clients:
                        await c.aclose()
                shutdown.set()
        return final


async def _main(opts: argparse.Namespace, tty: bool) -> Snapshot | None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

            async def on_signal() -> None:
                async for _ in signals:
                    stop.set()
                    return

            async def on_timer() -> None:
                await trio.sleep(opts.duration)
                stop.set()

            nursery.start_soon(on_signal)
            if opts.duration is not None:
                nursery.start_soon(on_timer)
            final = await run_demo(opts, stop, tty=tty)
            nursery.cancel_scope.cancel()
    return final


def main(opts: argparse.Namespace) -> int:
    """Run the demo; 0 after a clean stop (signal or ``--duration``)."""
    tty = not opts.no_tty and sys.stdout.isatty()
    logging.basicConfig(
        level=opts.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    final = trio.run(_main, opts, tty)
    if final is None:
        print("perpd demo stopped before the agents started")
        return 0
    if tty:
        sys.stdout.write(CLEAR)
    print(f"perpd demo stopped: {final.line()}", flush=True)
    return 0
