"""`GET /metrics`: the Prometheus exposition, every family with HELP and TYPE.

prometheus_client holds and renders the histograms (HTTP latency by route, the accept
→ open lifecycle, chain confirmations) and the gauges and counters that are not money.
Amounts of money (the ledger, open notional) and the services' integer statistics are
written as exact integers after it: Prometheus parses integers, while the client
library renders every value as a float64, which cannot hold a micro-USDC total past
2^53 exactly (`docs/decisions.md`, "Metrics").

Event counters come from the event log itself: each scrape counts the events committed
since the one before (one indexed range read), so a counter moves only for what was
committed, by type and market, and nothing on the hot path pays for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from perpd.markets import MARKETS
from perpd.store import inspect as si
from perpd.store import queries as q
from perpd.store.outbox import OutboxStatus

SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# event type -> the counter family it feeds (every type also counts in perpd_events_total)
NAMED = {
    "trade_request": ("perpd_requests", "trade requests posted"),
    "quote": ("perpd_quotes", "quotes posted"),
    "position_opened": ("perpd_fills", "positions opened (a quote accepted and locked)"),
    "position_closed": ("perpd_closes", "closes, partial or full"),
    "liquidation": ("perpd_liquidations", "liquidations, by agents or the keeper"),
}


@dataclass
class Scrape:
    """What one scrape read from the database (one snapshot)."""

    last_seq: int
    events: dict[tuple[str, str], int]
    open: dict[str, tuple[int, int]]
    outbox: dict[OutboxStatus, int]
    ledger: dict[str, int]


def read_scrape(since: int, conn: sqlite3.Connection) -> Scrape:
    last, events = si.event_counts_after(conn, since)
    return Scrape(last, events, si.open_by_market(conn), si.outbox_depth(conn), q.ledger(conn))


@dataclass
class _EventTotals:
    seq: int = 0
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, s: Scrape) -> None:
        for key, n in s.events.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.seq = max(self.seq, s.last_seq)


class _State(Collector):
    """The families built from the latest scrape and the venue's live objects."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m, s = self.m, self.m.scrape
        if s is None:
            return
        events = CounterMetricFamily(
            "perpd_events",
            "events committed since start, by type and market",
            labels=["type", "market"],
        )
        named = {
            t: CounterMetricFamily(name, help_ + " since start, by market", labels=["market"])
            for t, (name, help_) in NAMED.items()
        }
        for (type_, market), n in sorted(m.totals.counts.items()):
            events.add_metric([type_, market], n)
            if type_ in named:
                named[type_].add_metric([market], n)
        yield events
        yield from named.values()
        positions = GaugeMetricFamily(
            "perpd_open_positions", "open positions, by market", labels=["market"]
        )
        for market in MARKETS:
            positions.add_metric([market], s.open.get(market, (0, 0))[0])
        yield positions
        outbox = GaugeMetricFamily(
            "perpd_outbox_rows", "chain outbox rows, by status", labels=["status"]
        )
        for status, n in s.outbox.items():
            outbox.add_metric([status], n)
        yield outbox
        yield GaugeMetricFamily(
            "perpd_outbox_depth",
            "chain actions not yet confirmed",
            value=s.outbox[OutboxStatus.PENDING] + s.outbox[OutboxStatus.SENT],
        )


class Metrics:
    """The daemon's metrics: histograms fed as things happen, the rest read at scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_seconds = Histogram(
            "perpd_http_request_duration_seconds",
            "HTTP request handling time, by method and route",
            ["method", "route"],
            buckets=SECONDS,
            registry=r,
        )
        self.http_requests = Counter(
            "perpd_http_requests",
            "HTTP requests answered, by method, route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.lifecycle_seconds = Histogram(
            "perpd_lifecycle_accept_seconds",
            "POST /trade/accept until the position is open (its lock confirmed with a chain)",
            buckets=SECONDS,
            registry=r,
        )
        self.chain_seconds = Histogram(
            "perpd_chain_confirmation_seconds",
            "a chain action from its first send until it is confirmed, by kind",
            ["kind"],
            buckets=SECONDS,
            registry=r,
        )
        self.oracle_age = Gauge(
            "perpd_oracle_age_seconds",
            "age of the latest oracle price, by market",
            ["market"],
            registry=r,
        )
        self.oracle_conf = Gauge(
            "perpd_oracle_confidence_ratio",
            "confidence interval over price, by market",
            ["market"],
            registry=r,
        )
        self.sockets = Gauge(
            "perpd_sockets_connected", "open WebSockets, logged in or not", registry=r
        )
        self.totals = _EventTotals()
        self.scrape: Scrape | None = None
        r.register(_State(self))

    def start_at(self, seq: int) -> None:
        """Count events after ``seq`` (the log's end when the daemon starts)."""
        self.totals.seq = seq

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_seconds.labels(method, route).observe(seconds)
        self.http_requests.labels(method, route, str(status)).inc()
        if route == "/trade/accept" and status == 200:
            self.lifecycle_seconds.observe(seconds)

    def render(self, s: Scrape, venue: Any) -> bytes:
        """The exposition for scrape ``s`` of ``venue`` (a `perpd.venue.Venue`)."""
        self.totals.add(s)
        self.scrape = s
        now = venue.clock()
        for market in MARKETS:
            p = venue.book.latest(market)
            if p is not None:
                self.oracle_age.labels(market).set(max(0.0, now - p.publish_time))
                self.oracle_conf.labels(market).set(p.conf / p.price if p.price else 0.0)
        sockets = venue.services.get("sockets")
        if sockets is not None:
            self.sockets.set(sockets.open)
        return generate_latest(self.registry) + exact_lines(s, venue).encode()


def _family(lines: list[str], name: str, kind: str, help_: str) -> None:
    lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]


def exact_lines(s: Scrape, venue: Any) -> str:
    """Money and the services' integer statistics, as exact integers."""
    lines: list[str] = []
    for key, value in s.ledger.items():
        _family(lines, f"perpd_ledger_{key}_micro_usdc", "gauge", f"the ledger's {key}, micro-USDC")
        lines.append(f"perpd_ledger_{key}_micro_usdc {value}")
    _family(lines, "perpd_open_notional_micro_usdc", "gauge", "open notional by market, micro-USDC")
    for market in MARKETS:
        lines.append(
            f'perpd_open_notional_micro_usdc{{market="{market}"}} {s.open.get(market, (0, 0))[1]}'
        )
    _family(lines, "perpd_store_writes_total", "counter", "units of work committed since start")
    lines.append(f"perpd_store_writes_total {venue.store.writes}")
    _family(lines, "perpd_last_event_seq", "gauge", "the seq of the last committed event")
    lines.append(f"perpd_last_event_seq {venue.store.last_seq}")
    for service, obj in venue.services.items():
        for key, value in obj.statistics().items():
            if isinstance(value, int) and not isinstance(value, bool):
                name = f"perpd_{service}_{key}"
                _family(lines, name, "gauge", f"the {service} service's {key}")
                lines.append(f"{name} {value}")
    _family(
        lines, "perpd_oracle_price", "gauge", "the latest oracle price at exponent -8, by market"
    )
    for market in MARKETS:
        p = venue.book.latest(market)
        if p is not None:
            lines.append(f'perpd_oracle_price{{market="{market}"}} {p.price}')
    return "\n".join(lines) + "\n"
