"""The supervisor: opens the store, starts every service in order, stops them cleanly.

Order (STYLE): store → chain → oracle → timers/funding/watcher → HTTP. The HTTP service runs in
an inner nursery so that on shutdown it drains first (in-flight requests finish within
the graceful timeout); the other services are cancelled after it, and the store closes
last, after every unit of work has committed or rolled back. A service that crashes
takes the daemon down with it (non-zero exit; systemd restarts it) rather than leaving
it half-alive.
"""

from __future__ import annotations

import logging
import sys
from functools import partial
from typing import Any

import trio

from perpd.api import create_app
from perpd.chain._open import open_chain
from perpd.chain_pins import ChainPins
from perpd.clock import Clock, system
from perpd.config import Config
from perpd.http_limits import ConnectionGate
from perpd.hub import Hub
from perpd.markets import MARKETS
from perpd.metrics import Metrics
from perpd.nursery import (
    chain_submitter,
    checkpointer,
    deposit_watch,
    event_hub,
    expiry,
    funding,
    funding_curve,
    http,
    liquidation_watcher,
    pruner,
    pyth_poller,
    sim_oracle,
    systemd_notify,
)
from perpd.oracle import PriceBook
from perpd.ratelimit import Limiter
from perpd.sim_feed import SimulatedFeed
from perpd.socket_limits import SocketGate, SocketLimits
from perpd.store import Store
from perpd.store import queries as q
from perpd.venue import Venue

log = logging.getLogger("perpd")


async def _start_submitter(
    config: Config,
    services: trio.Nursery,
    venue: Venue,
    chain: Any,
    pins: ChainPins,
) -> chain_submitter.ChainSubmitter | None:
    """Start the chain submitter, which first sends what a previous run left in the
    outbox (None with ``--chain none``)."""
    if chain is None:
        return None
    submitter = chain_submitter.ChainSubmitter(
        venue, chain, pins=pins, confirm_timeout_s=config.chain_confirm_timeout_s
    )
    venue.backend, venue.submitter = chain, submitter
    await services.start(chain_submitter.run, submitter)
    if chain.mode == "rpc":  # nothing outside the daemon reaches the local SVM
        venue.deposits = deposit_watch.DepositWatch(venue, chain)
        await services.start(deposit_watch.run, venue.deposits)
    return submitter


async def run(
    config: Config,
    *,
    shutdown: trio.Event,
    clock: Clock = system,
    task_status: trio.TaskStatus[Venue] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the daemon until ``shutdown`` is set. ``started`` gets the `Venue`.

    ``clock`` is the daemon's one clock (`perpd.clock`): every service reads the time
    through it, and a `TrioClock` runs them all under trio's ``MockClock``."""
    # Every SQLite call releases the GIL; with CPython's 5 ms hand-over the writer thread
    # waits that long to get it back while the trio thread serves HTTP, so a unit of a
    # dozen statements took ~5 ms instead of ~0.3 ms and the write queue grew by seconds.
    sys.setswitchinterval(config.gil_switch_interval_s)
    store = Store(
        config.db,
        busy_timeout_ms=config.db_busy_timeout_ms,
        readers=config.db_readers,
        wal_limit_bytes=config.db_wal_limit_bytes,
        group_max=config.db_group_max,
    )
    await store.open()
    try:
        book = PriceBook(MARKETS, clock=clock)
        chain_pins = ChainPins(clock, book)
        async with (
            open_chain(config, store, book, chain_pins, oracle=chain_pins.oracle) as chain,
            trio.open_nursery() as services,
        ):
            feed = None
            if config.oracle == "sim":
                pins = await store.read(q.pinned_prices)
                feed = SimulatedFeed(book, seed=config.sim_seed, pins=pins, clock=clock)
                await services.start(sim_oracle.run, feed, config.sim_interval_s)
            else:
                poll = partial(
                    pyth_poller.run,
                    book,
                    hermes_url=config.hermes_url,
                    api_key=config.hermes_api_key,
                )
                await services.start(poll)
            venue = Venue(
                store,
                book,
                funding_period_s=config.funding_period_s,
                clock=clock,
                sim_feed=feed,
                limits=config.trade_limits(),
                chain=config.chain,
                program_id=config.program_pubkey(),
            )
            submitter = await _start_submitter(config, services, venue, chain, chain_pins)
            await services.start(
                partial(
                    checkpointer.run,
                    store,
                    interval_s=config.db_checkpoint_interval_s,
                    wal_limit_bytes=config.db_wal_limit_bytes,
                )
            )
            timer = expiry.ExpiryTimer(venue)
            await services.start(timer.run)
            scheduler = funding.FundingScheduler(venue)
            await services.start(scheduler.run)
            watcher = liquidation_watcher.Watcher(
                venue, keeper=config.keeper, grace_s=config.keeper_grace_s
            )
            await services.start(liquidation_watcher.run, watcher)
            prune = pruner.Pruner(
                venue,
                retention_s=config.retention_s,
                interval_s=config.prune_interval_s,
                batch=config.prune_batch,
                client_id_retention_s=config.client_id_retention_s,
            )
            await services.start(pruner.run, prune)
            hub = Hub(store)
            await services.start(event_hub.run, hub)
            curve = funding_curve.FundingCurve(venue, publish=config.funding_curve_events)
            await services.start(funding_curve.run, curve)
            limiter = Limiter(config.rate_limits())
            sockets = SocketGate(
                SocketLimits(
                    max_sockets=config.ws_max_sockets,
                    max_unauthenticated=config.ws_max_unauthenticated,
                    max_per_agent=config.ws_max_per_agent,
                    auth_timeout_s=config.ws_auth_timeout_s,
                    heartbeat_timeout_s=config.ws_heartbeat_timeout_s,
                )
            )
            connections = ConnectionGate(
                config.max_connections, per_address=limiter.connection, tarpit=limiter.tarpit
            )
            venue.services = {
                "hub": hub,
                "watcher": watcher,
                "pruner": prune,
                "limiter": limiter,
                "sockets": sockets,
                "connections": connections,
                "store": store,
                "expiry": timer,
                "funding": scheduler,
                "funding_curve": curve,
            }
            metrics = Metrics()
            metrics.start_at(store.last_seq)
            if submitter is not None:
                venue.services["chain"] = submitter
                submitter.metrics = metrics
            app = create_app(
                venue,
                hub=hub,
                shutdown=shutdown,
                dev=config.dev,
                limiter=limiter,
                pages=(config.page_default, config.page_max),
                sockets=sockets,
                chain=chain,
                metrics=metrics,
                curves=curve.book,
            )
            async with trio.open_nursery() as front:
                binds = await front.start(
                    partial(
                        http.run,
                        app,
                        host=config.host,
                        port=config.port,
                        shutdown=shutdown,
                        graceful_timeout_s=config.graceful_timeout_s,
                        ws_max_message=config.ws_max_message,
                        connections=connections,
                    )
                )
                venue.binds = binds
                log.info(
                    "perpd listening on %s (db %s, chain %s)",
                    ", ".join(binds),
                    config.db,
                    config.chain if config.chain != "none" else "none: off-chain test mode",
                )
                await services.start(systemd_notify.run, store)
                systemd_notify.notify("READY=1")
                task_status.started(venue)
                await shutdown.wait()
                systemd_notify.notify("STOPPING=1")
            services.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await store.close()
        log.info("perpd stopped; database closed")
