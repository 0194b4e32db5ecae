"""The venue: the store, the price book and the clock behind one async facade.

The router, the WebSocket hub and the services all act through `Venue`, so every
change goes the same way: replay check and state change in one transaction
(`mutate`), with the oracle price read at the moment the transaction runs.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from solders.pubkey import Pubkey

from perpd import engine
from perpd.auth import Verified
from perpd.chain._program import LOCAL_PROGRAM_ID
from perpd.errors import ApiError, InvalidRequest, RateLimited, Unauthorized, Unavailable
from perpd.limits import TradeLimits
from perpd.oracle import Price, PriceBook
from perpd.request_hashes import RequestHashes
from perpd.sim_feed import SimulatedFeed
from perpd.spent import SpentSignatures
from perpd.store import Store
from perpd.store import queries as q

T = TypeVar("T")
Unit = Callable[[sqlite3.Connection, engine.Ctx], T]


REPLAYED = "this signature was already used (replay)"

# Refusals that tell the caller to retry the same call: its signature stays unspent.
_NOT_SPENT = (Unauthorized, Unavailable, RateLimited)


class Venue:
    def __init__(
        self,
        store: Store,
        book: PriceBook,
        *,
        funding_period_s: int,
        clock: Callable[[], float] = time.time,
        sim_feed: SimulatedFeed | None = None,
        limits: TradeLimits | None = None,
        chain: str = "none",
        program_id: Pubkey = LOCAL_PROGRAM_ID,
    ) -> None:
        self.store = store
        self.book = book
        self.funding_period_s = funding_period_s
        self.clock = clock
        self.sim_feed = sim_feed
        self.limits = limits or TradeLimits()
        self.chain = chain  # local | rpc | none: with a chain, consents are required
        self.program_id = program_id
        self.binds: list[str] = []  # where the HTTP service listens, once it does
        # with a chain: the backend and the submitter that lands the outbox (daemon sets)
        self.backend: Any | None = None
        self.submitter: Any | None = None
        self.deposits: Any | None = None  # the direct deposit pickup (DepositWatch)
        self.services: dict[str, Any] = {}  # running services, for statistics
        self.spent = SpentSignatures()  # the replay check's fast path (perpd.spent)
        self.request_hashes = RequestHashes()  # quote consents checked without a read

    def ctx(self) -> engine.Ctx:
        """The context a unit of work runs with: the time now, the period, the prices."""
        return self._ctx()

    def _ctx(self) -> engine.Ctx:
        return engine.Ctx(
            self.clock(), self.funding_period_s, self._price_of, self.limits, self.program_id
        )

    def _price_of(self, market: str) -> int:
        return self.book.usable(market).price

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def mutate(
        self,
        unit: Unit[T],
        auth: Verified | None = None,
        *,
        urgent: bool = False,
        wait: bool = True,
        alone: bool = False,
    ) -> T:
        """Run ``unit`` as one transaction, refusing a replayed signature inside it.

        A refused call (any `ApiError`) changes no state, but its signature is still
        recorded in a transaction of its own: otherwise a refused call could be replayed
        later, once the state lets it through. A call refused with a Retry-After
        (`Unavailable`: the database could record nothing; `RateLimited`: a cap or a
        rate) is not remembered: the same signed call may be retried after its
        Retry-After, and its first success is its only effect.
        ``urgent`` settlement (accept, close, liquidate, funding, expiry) runs ahead of
        queued order flow. ``wait=False``: do not wait for a lock held by another
        process (background services, which retry; see `Store.write`). A ``session``
        auth (an action on a socket) was recorded once, when its socket opened.
        ``alone``: a long unit (a funding batch) commits by itself, never in a group.
        """
        record = auth is not None and not auth.session
        if record:
            assert auth is not None
            if auth.signature in self.spent:  # a known replay: no transaction for it
                raise Unauthorized(REPLAYED)

        def work(conn: sqlite3.Connection) -> T:
            if record:
                assert auth is not None
                _remember(conn, auth)
            return unit(conn, self._ctx())

        try:
            result = await self.store.write(work, urgent=urgent, wait=wait, alone=alone)
        except ApiError as exc:
            if record and auth is not None:
                if not isinstance(exc, _NOT_SPENT):
                    await self.store.write(lambda conn: _remember(conn, auth))
                    self._spent(auth)
                elif exc.message == REPLAYED:
                    self._spent(auth)
            raise
        if record:
            assert auth is not None
            self._spent(auth)
        return result

    def _spent(self, auth: Verified) -> None:
        self.spent.add(auth.signature, auth.timestamp_ms, self.now_ms())

    async def login(self, auth: Verified) -> None:
        """Spend a WebSocket login's signature (SPEC §6: single-use); 401 on a replay."""
        await self.mutate(lambda conn, ctx: None, auth)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.store.read(fn)

    def mark_price(self, market: str) -> int | None:
        """The usable price for display, or None (views show nulls rather than fail)."""
        try:
            return self.book.usable(market).price
        except ApiError:
            return None

    async def pin_price(self, market: str, price: int) -> Price:
        """Dev mode: hold the simulated price of ``market`` at ``price`` (kept across restarts)."""
        if self.sim_feed is None:
            raise InvalidRequest("prices can only be pinned on the simulated oracle")
        now = int(self.clock())
        await self.store.write(lambda conn: q.pin_price(conn, market, price, now))
        return self.sim_feed.pin(market, price)

    async def forget_old_signatures(self) -> int:
        """Drop signatures whose 30 s window has closed: they can no longer be replayed."""
        cutoff = self.now_ms() - 2 * 30_000
        return await self.store.write(
            lambda conn: q.forget_signatures_before(conn, cutoff), wait=False
        )


def _remember(conn: sqlite3.Connection, auth: Verified) -> None:
    if not q.remember_signature(conn, auth.signature, auth.timestamp_ms):
        raise Unauthorized(REPLAYED)
