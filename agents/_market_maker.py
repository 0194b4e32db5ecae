"""`MarketMaker`: answer trade requests with quotes, within inventory and risk limits.

A maker writes one hook, `MarketMaker.quote`, that prices a request (or declines it);
the base class does the rest: it follows the event stream, quotes every eligible
request, enforces the limits, tracks its fills, releases what a rejected or expired
quote held, and liquidates counterparties that fall under maintenance (the
liquidator's reward is the maker's, and it stops a losing counterparty from eating
further into the maker's winnings).

Limits are checked *before* a quote is sent and count live quotes as if they were
already filled: quotes are firm, any of them may be accepted at any moment, and the
daemon accepts racing quotes independently, so counting only filled positions would let
a burst of accepts blow straight through a limit.

Issue 13: the maker subscribes with cancel-on-disconnect (its live quotes die with its
connection, never left firm while it cannot see fills), gives each quote a client id
(a lost answer is resent safely), and re-prices a live quote whose hook rate moved by
``requote_ppm`` with one replace (never cancel-then-quote: no gap, no double fill).
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import anyio
import anyio.abc

from agents._client import Client
from agents._errors import AgentError, ApiError, Conflict, ProtocolError, TransportError
from agents._models import (
    MICRO,
    Event,
    FundingSettledEvent,
    LiquidationEvent,
    Market,
    MmpTriggeredEvent,
    Position,
    PositionClosedEvent,
    PositionOpenedEvent,
    QuoteAcceptedEvent,
    QuoteCancelledEvent,
    QuoteExpiredEvent,
    QuoteRejectedEvent,
    RequestExpiredEvent,
    TradeRequest,
    TradeRequestEvent,
    parse_usdc,
)

__all__ = ["MakerStatistics", "MarketMaker", "QuoteTerms", "RiskLimits"]

log = logging.getLogger("agents.maker")

MAX_RATE_PPM = 50_000  # SPEC §3: any rate lies within ±0.05 per period


@dataclass(frozen=True)
class QuoteTerms:
    """What a maker offers on a request.

    Attributes:
        funding_rate: ppm per funding period; positive = the requester pays the maker.
        collateral: micro-USDC the maker locks if accepted (raised to the market's
            minimum, ``size / max_leverage``, if below it).
        valid_for: seconds the quote stays firm (1–60).
    """

    funding_rate: int
    collateral: int
    valid_for: int = 10


@dataclass(frozen=True)
class RiskLimits:
    """A maker's hard limits, all in micro-USDC; live quotes count as filled.

    Attributes:
        max_open_notional_per_market: open positions plus live quotes, per market.
        max_notional_per_counterparty: the same, per requester.
        min_free_collateral: free balance that must remain after every live quote's
            collateral is set aside.
    """

    max_open_notional_per_market: int = 100_000 * MICRO
    max_notional_per_counterparty: int = 25_000 * MICRO
    min_free_collateral: int = 1_000 * MICRO


@dataclass(frozen=True)
class MakerStatistics:
    requests_seen: int
    quotes_sent: int
    declined: int
    limited: int
    too_late: int
    refused: Counter[str]
    fills: int
    closes: int
    liquidated: int
    liquidations_made: int
    funding_received: int
    open_positions: int
    live_quotes: int
    replaced: int = 0  # live quotes re-priced with a replace
    frozen: int = 0  # times the maker's protection froze it


@dataclass
class _Reserved:
    """A quote in flight or live: what it would add if accepted."""

    market: str
    counterparty: str
    size: int
    collateral: int
    exposure: int  # signed: the maker's side (opposite of the requester)
    expires_at: int
    quote_id: str | None = None
    request: TradeRequest | None = None  # what a re-price prices again
    rate: int = 0  # the live quote's rate, ppm
    replaces: int = 0  # how many times it was re-priced (its next client id)


class MarketMaker:
    """Base class of a market-making agent; subclasses implement `quote`.

    Args:
        client: the agent's `Client`.
        markets: markets to make (default: every listed market).
        limits: the `RiskLimits`.
        quote_concurrency: quotes in flight at once.
        refresh_s: how often balances, markets and margins are refreshed.
        liquidate: liquidate requesters that fall under maintenance on this maker's
            positions (the reward is the maker's; its own side it leaves to others).
        cancel_on_disconnect: subscribe with it (default): the daemon cancels this
            maker's live quotes when its connection goes.
        requote_ppm: on each refresh, a live quote whose hook now prices it at least this
            far (ppm) from its rate is replaced at the new rate; 0 never re-prices.

    Run it with ``await maker.run()`` (or ``task_group.start(maker.run)``, which returns
    once the maker is subscribed and quoting).
    """

    default_limits: ClassVar[RiskLimits] = RiskLimits()  # a subclass sets its own

    def __init__(
        self,
        client: Client,
        *,
        markets: Iterable[str] | None = None,
        limits: RiskLimits | None = None,
        quote_concurrency: int = 8,
        refresh_s: float = 1.0,
        liquidate: bool = True,
        cancel_on_disconnect: bool = True,
        requote_ppm: int = 20,
    ) -> None:
        self.client = client
        self.limits = limits or self.default_limits
        self._wanted = None if markets is None else list(markets)
        self.markets: dict[str, Market] = {}
        self.positions: dict[str, Position] = {}
        self.free: int = 0
        self._reserved: dict[str, _Reserved] = {}  # by request_id
        self._by_quote: dict[str, str] = {}  # quote_id -> request_id
        self._seen: dict[str, int] = {}  # request_id -> expires_at
        self._limiter = anyio.CapacityLimiter(quote_concurrency)
        self._refresh_s = refresh_s
        self._liquidate = liquidate
        self._cancel_on_disconnect = cancel_on_disconnect
        self._requote_ppm = requote_ppm
        self._tag = secrets.token_hex(4)  # this run's client ids: a restart quotes anew
        self._tg: anyio.abc.TaskGroup | None = None
        self._stats = Counter[str]()
        self._refused = Counter[str]()
        self._funding = 0
        self._epoch = 0  # bumped by every event that moves this maker's free balance

    # ------------------------------------------------------------ hooks

    def quote(self, request: TradeRequest, market: Market) -> QuoteTerms | None:
        """Price ``request`` (on ``market``, with its latest oracle state) or decline (None).

        Called only for requests the limits already allow in principle; the base class
        re-checks the limits with the returned collateral. Must not block.
        """
        raise NotImplementedError

    async def refresh(self) -> None:
        """Called before the first quote and then every ``refresh_s``: fetch what `quote`
        needs (reference prices, feeds) here, because `quote` itself must not block."""

    def on_fill(self, position: Position) -> None:
        """Called when one of this maker's quotes became ``position``."""

    def on_close(self, position: Position) -> None:
        """Called when a position of this maker closed (fully or in part) or was liquidated."""

    # ------------------------------------------------------------ state

    @property
    def agent_id(self) -> str:
        return self.client.agent_id

    def now(self) -> float:
        return self.client.signer.clock()

    def inventory(self, market: str) -> int:
        """The maker's signed open notional in ``market`` (long > 0), filled positions only."""
        return sum(
            p.exposure_of(self.agent_id) for p in self.positions.values() if p.market == market
        )

    def pending_inventory(self, market: str) -> int:
        """The signed notional of live quotes in ``market``, as if all were accepted."""
        return sum(r.exposure for r in self._reserved.values() if r.market == market)

    def open_notional(self, market: str) -> int:
        """Open positions plus live quotes in ``market``, unsigned."""
        filled = sum(p.size for p in self.positions.values() if p.market == market)
        return filled + sum(r.size for r in self._reserved.values() if r.market == market)

    def notional_with(self, counterparty: str) -> int:
        """Open positions plus live quotes with ``counterparty``, unsigned."""
        filled = sum(p.size for p in self.positions.values() if p.requester == counterparty)
        return filled + sum(
            r.size for r in self._reserved.values() if r.counterparty == counterparty
        )

    def reserved_collateral(self) -> int:
        return sum(r.collateral for r in self._reserved.values())

    def statistics(self) -> MakerStatistics:
        s = self._stats
        return MakerStatistics(
            requests_seen=s["requests_seen"],
            quotes_sent=s["quotes_sent"],
            declined=s["declined"],
            limited=s["limited"],
            too_late=s["too_late"],
            refused=Counter(self._refused),
            fills=s["fills"],
            closes=s["closes"],
            liquidated=s["liquidated"],
            liquidations_made=s["liquidations_made"],
            funding_received=self._funding,
            open_positions=len(self.positions),
            live_quotes=len(self._reserved),
            replaced=s["replaced"],
            frozen=s["frozen"],
        )

    # ------------------------------------------------------------ running

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Make markets until cancelled. Cancel-safe: live quotes simply expire."""
        await self._load_markets()
        await self.client.chain()  # read once, before the first quote needs it to sign
        names = list(self.markets)
        async with self.client.subscribe(
            names, cancel_on_disconnect=self._cancel_on_disconnect
        ) as session:
            await self._reconcile()
            await self.refresh()
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._refresh_loop)
                for request in await self.client.open_requests():
                    self._consider(request)
                task_status.started()
                async for event in session:
                    self._handle(event)

    async def _load_markets(self) -> None:
        listed = {m.market: m for m in await self.client.markets()}
        wanted = self._wanted if self._wanted is not None else list(listed)
        self.markets = {name: listed[name] for name in wanted if name in listed}

    async def _reconcile(self) -> None:
        """Start from the daemon's truth: open positions where this agent is the maker."""
        mine = await self.client.my_positions("open")
        self.positions = {p.position_id: p for p in mine if p.maker == self.agent_id}
        self.free = (await self.client.balances()).free

    async def _refresh_loop(self) -> None:
        while True:
            await anyio.sleep(self._refresh_s)
            try:
                await self._refresh()
            except AgentError as exc:  # a transient failure must not stop the maker
                log.warning("maker %s refresh failed: %s", self.agent_id[:8], exc)

    async def _refresh(self) -> None:
        await self._load_markets()
        try:
            await self.refresh()
        except Exception:  # a failing feed must not stop the maker: quotes just go stale
            log.exception("maker %s: refresh hook failed", self.agent_id[:8])
        epoch = self._epoch
        balances = await self.client.balances()
        if epoch == self._epoch:  # no fill or close crossed the read: it is current
            self.free = balances.free
        now = self.now()
        for request_id, r in list(self._reserved.items()):
            if r.expires_at + 2 < now:  # its expiry event was missed or never sent
                self._release(request_id)
        for request_id, expires_at in list(self._seen.items()):
            if expires_at + 2 < now:
                del self._seen[request_id]
        await self._requote()
        if not self._liquidate or not self.positions:
            return
        for p in await self.client.my_positions("open"):
            if p.maker != self.agent_id or p.position_id not in self.positions:
                continue
            if p.liquidatable_side() != "requester":
                continue
            try:
                await self.client.liquidate(p.position_id)
                self._stats["liquidations_made"] += 1
            except Conflict:
                pass  # someone was faster, or the price moved back

    # ------------------------------------------------------------ requests → quotes

    def _consider(self, request: TradeRequest) -> None:
        """Decide on one request now (synchronously, so limits see every earlier quote)."""
        if request.request_id in self._seen or request.agent_id == self.agent_id:
            return
        market = self.markets.get(request.market)
        if market is None or request.status != "open" or request.expires_at <= self.now() + 1:
            return
        self._seen[request.request_id] = request.expires_at
        self._stats["requests_seen"] += 1
        if not self._within_limits(request, 0):
            self._stats["limited"] += 1
            return
        try:
            terms = self.quote(request, market)
        except Exception:
            log.exception("maker %s: quote hook failed", self.agent_id[:8])
            terms = None
        if terms is None or not -MAX_RATE_PPM <= terms.funding_rate <= request.max_funding_rate:
            self._stats["declined"] += 1
            return
        collateral = max(terms.collateral, market.min_collateral(request.size))
        if not self._within_limits(request, collateral):
            self._stats["limited"] += 1
            return
        sign = 1 if request.side == "long" else -1
        self._reserved[request.request_id] = _Reserved(
            market=request.market,
            counterparty=request.agent_id,
            size=request.size,
            collateral=collateral,
            exposure=-sign * request.size,
            expires_at=request.expires_at,
            request=request,
            rate=terms.funding_rate,
        )
        assert self._tg is not None
        valid_for = max(1, min(60, terms.valid_for))
        self._tg.start_soon(self._send_quote, request, terms.funding_rate, collateral, valid_for)

    def _within_limits(self, request: TradeRequest, collateral: int) -> bool:
        lim = self.limits
        if self.open_notional(request.market) + request.size > lim.max_open_notional_per_market:
            return False
        if self.notional_with(request.agent_id) + request.size > lim.max_notional_per_counterparty:
            return False
        free_after = self.free - self.reserved_collateral() - collateral
        return free_after >= lim.min_free_collateral

    async def _send_quote(
        self, request: TradeRequest, rate: int, collateral: int, valid_for: int
    ) -> None:
        async with self._limiter:
            if request.expires_at <= self.now() + 0.5:  # waited too long behind others
                self._stats["too_late"] += 1
                self._release(request.request_id)
                return
            try:
                q = await self.client.quote(
                    request,
                    funding_rate=rate,
                    collateral=collateral,
                    valid_for=valid_for,
                    client_id=f"mm{self._tag}:{request.request_id}",  # one per request
                )
            except ApiError as exc:
                self._refused[exc.code] += 1
                self._release(request.request_id)
                return
            except TransportError as exc:
                # The quote may exist: keep its reservation until the request expires.
                log.warning("maker %s: quote lost in transit: %s", self.agent_id[:8], exc)
                return
        self._stats["quotes_sent"] += 1
        reserved = self._reserved.get(request.request_id)
        if reserved is not None:
            reserved.quote_id = q.quote_id
            reserved.expires_at = min(reserved.expires_at, q.expires_at)
            self._by_quote[q.quote_id] = request.request_id

    async def _requote(self) -> None:
        """Replace each live quote whose hook rate moved by ``requote_ppm`` or more."""
        if self._requote_ppm <= 0:
            return
        now = self.now()
        for request_id, r in list(self._reserved.items()):
            market = self.markets.get(r.market)
            if self._reserved.get(request_id) is not r:
                continue  # released (filled, expired, cancelled) during an earlier replace
            if r.quote_id is None or r.request is None or market is None:
                continue
            if r.expires_at <= now + 1:
                continue  # about to expire anyway
            # priced as when it was first quoted: without its own reservation
            del self._reserved[request_id]
            try:
                terms = self.quote(r.request, market)
            except Exception:
                log.exception("maker %s: quote hook failed", self.agent_id[:8])
                continue
            finally:
                self._reserved[request_id] = r
            if terms is None or abs(terms.funding_rate - r.rate) < self._requote_ppm:
                continue
            if not -MAX_RATE_PPM <= terms.funding_rate <= r.request.max_funding_rate:
                continue
            await self._replace(request_id, r, terms.funding_rate, max(1, min(60, terms.valid_for)))

    async def _replace(self, request_id: str, r: _Reserved, rate: int, valid_for: int) -> None:
        old = r.quote_id
        assert old is not None
        r.replaces += 1
        try:
            q = await self.client.replace_quote(
                old,
                rate,
                r.collateral,
                request=r.request,
                valid_for=valid_for,
                client_id=f"mm{self._tag}:{request_id}:{r.replaces}",
            )
        except ApiError as exc:  # filled, expired or cancelled meanwhile: events settle it
            self._refused[exc.code] += 1
            return
        except TransportError as exc:
            log.warning("maker %s: replace lost in transit: %s", self.agent_id[:8], exc)
            return
        self._stats["replaced"] += 1
        if self._reserved.get(request_id) is r and r.quote_id == old:
            self._by_quote.pop(old, None)
            r.quote_id, r.rate = q.quote_id, rate
            r.expires_at = min(r.request.expires_at if r.request else q.expires_at, q.expires_at)
            self._by_quote[q.quote_id] = request_id

    def _release(self, request_id: str) -> None:
        r = self._reserved.pop(request_id, None)
        if r is not None and r.quote_id is not None:
            self._by_quote.pop(r.quote_id, None)

    def _release_quote(self, quote_id: str, request_id: str) -> None:
        """The quote ``quote_id`` is gone: release what it held, unless the request's
        reservation now belongs to another quote of it (the new one of a replace)."""
        if quote_id in self._by_quote:
            self._release(self._by_quote[quote_id])
            return
        r = self._reserved.get(request_id)
        if r is not None and r.quote_id in (None, quote_id):
            self._release(request_id)

    # ------------------------------------------------------------ events

    def _handle(self, event: Event) -> None:
        if isinstance(event, TradeRequestEvent):
            self._consider(event.request)
        elif isinstance(event, QuoteAcceptedEvent):
            self._release_quote(event.quote_id, event.request_id)
        elif isinstance(event, QuoteRejectedEvent | QuoteExpiredEvent):
            self._release_quote(event.quote_id, event.request_id)
        elif isinstance(event, QuoteCancelledEvent):
            if event.reason != "replaced":  # a replace's new quote holds the reservation
                self._release_quote(event.quote_id, event.request_id)
        elif isinstance(event, MmpTriggeredEvent):
            self._stats["frozen"] += 1
            log.warning(
                "maker %s: protection froze quoting until %d (%s)",
                self.agent_id[:8],
                event.frozen_until,
                event.reason,
            )
        elif isinstance(event, RequestExpiredEvent):
            self._release(event.request_id)
        elif isinstance(event, PositionOpenedEvent):
            p = event.position
            if p.maker == self.agent_id:
                self.positions[p.position_id] = p
                self.free -= p.maker_collateral
                self._epoch += 1
                self._stats["fills"] += 1
                self._call_hook(self.on_fill, p)
        elif isinstance(event, PositionClosedEvent):
            p = event.position
            if p.maker == self.agent_id:
                self._stats["closes"] += 1
                self._epoch += 1
                self.free += _released(event, "maker_released_usdc")
                if p.is_open:
                    self.positions[p.position_id] = p
                else:
                    self.positions.pop(p.position_id, None)
                self._call_hook(self.on_close, p)
        elif isinstance(event, LiquidationEvent):
            p = event.position
            if p.maker == self.agent_id:
                self._stats["liquidated"] += event.liquidated_side == "maker"
                self._epoch += 1
                self.free += _released(event, "maker_released_usdc")
                self.positions.pop(p.position_id, None)
                self._call_hook(self.on_close, p)
            if event.liquidator == self.agent_id:
                self.free += event.reward
                self._epoch += 1
        elif isinstance(event, FundingSettledEvent):
            if event.receiver == self.agent_id:
                self._funding += event.amount
            elif event.payer == self.agent_id:
                self._funding -= event.amount

    def _call_hook(self, hook: Callable[[Position], None], position: Position) -> None:
        try:
            hook(position)
        except Exception:
            log.exception("maker %s: hook failed", self.agent_id[:8])


def _released(event: Event, key: str) -> int:
    """A released amount from an event's data (0 if this daemon does not send it)."""
    value = event.data.get(key)
    try:
        return parse_usdc(value) if value is not None else 0
    except ProtocolError:
        return 0
