"""The Pyth Hermes poller: keeps the `PriceBook` fed with what Hermes last published.

It records Hermes' prices as they are, publish time included, and never makes a price
look fresher than it is: staleness and confidence are judged by `PriceBook.usable()`.
When Hermes is down the poller keeps trying with exponential backoff; the book's prices
then age out and trading answers ``oracle_unavailable`` until Hermes is back.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal

import httpx
import trio

from perpd.markets import MARKETS
from perpd.oracle import PriceBook
from perpd.pyth import HermesError, normalize_feed_id, parse

__all__ = ["PollerStatistics", "run"]

log = logging.getLogger(__name__)

LATEST_PATH = "/v2/updates/price/latest"
# A Hermes answer for a handful of feeds is a few KiB; refuse to buffer a runaway body.
MAX_BODY_BYTES = 1 << 20
# A publish time further ahead of our clock than this is not believed: the book keeps the
# newest publish time, so one bogus future time would freeze that market's price.
MAX_FUTURE_SKEW_S = 10


@dataclass
class PollerStatistics:
    """Counters for `run`, handed out by ``nursery.start`` (updated in place)."""

    polls: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    recorded: int = 0  # prices the book accepted
    skipped: int = 0  # malformed or implausible entries dropped
    last_success: float | None = None  # wall-clock time of the last good poll
    last_error: str | None = None
    next_delay_s: float = 0.0

    def statistics(self) -> dict[str, object]:
        return {
            "polls": self.polls,
            "errors": self.errors,
            "consecutive_errors": self.consecutive_errors,
            "recorded": self.recorded,
            "skipped": self.skipped,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "next_delay_s": self.next_delay_s,
        }


async def run(
    book: PriceBook,
    *,
    hermes_url: str,
    api_key: str = "",
    feeds: dict[str, str] | None = None,
    interval_s: float = 1.0,
    timeout_s: float = 5.0,
    max_backoff_s: float = 30.0,
    client: httpx.AsyncClient | None = None,
    task_status: trio.TaskStatus[PollerStatistics] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Poll Hermes forever, writing each price into ``book``.

    ``feeds`` maps Pyth feed id to market name (default: the listed markets the book
    holds). Started, with the `PollerStatistics`, after the first poll *attempt*, good or
    not, so the daemon comes up when Hermes is down; each attempt is bounded by
    ``timeout_s``. After n failures in a row the next poll waits
    ``min(interval_s * 2**n, max_backoff_s)``; a good poll resets it to ``interval_s``.
    Cancel-safe: a cancelled poll leaves the book as it was or with whole prices.
    A ``client`` passed in is used as is and not closed. ``api_key``, when set, goes in
    an ``Authorization: Bearer`` header (Pyth's upgraded Core requires one).
    """
    if feeds is None:
        feeds = {MARKETS[m].feed_id: m for m in book.markets if m in MARKETS}
    feeds = {normalize_feed_id(k): v for k, v in feeds.items()}
    if not feeds:
        raise ValueError("no Pyth feeds to poll")
    unknown = sorted(set(feeds.values()) - set(book.markets))
    if unknown:
        raise ValueError(f"feeds name markets the book does not hold: {unknown}")
    if not 0 < interval_s <= max_backoff_s or timeout_s <= 0:
        raise ValueError("need 0 < interval_s <= max_backoff_s and timeout_s > 0")

    url = hermes_url.rstrip("/") + LATEST_PATH
    pairs: list[tuple[str, str | int | float | bool | None]] = [("ids[]", f) for f in feeds]
    params = httpx.QueryParams([*pairs, ("parsed", "true")])
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    stats = PollerStatistics()
    async with AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=timeout_s))
        started = False
        delay = interval_s
        while True:
            ok = await _poll_once(book, client, (url, params, headers), feeds, timeout_s, stats)
            delay = interval_s if ok else min(delay * 2, max_backoff_s)
            stats.next_delay_s = delay
            if not started:
                task_status.started(stats)
                started = True
            await trio.sleep(delay)


async def _poll_once(
    book: PriceBook,
    client: httpx.AsyncClient,
    get: tuple[str, httpx.QueryParams, dict[str, str]],
    feeds: dict[str, str],
    timeout_s: float,
    stats: PollerStatistics,
) -> bool:
    """One bounded GET-parse-record round; False (logged, counted) if it failed."""
    stats.polls += 1
    try:
        with trio.fail_after(timeout_s):
            payload = await _fetch(client, get)
        parsed = parse(payload, feeds)
    except (HermesError, trio.TooSlowError) as exc:
        reason = str(exc) or f"no answer within {timeout_s} s"
        stats.errors += 1
        stats.consecutive_errors += 1
        stats.last_error = reason
        log.warning(
            "pyth: poll of %s failed (%d in a row): %s", get[0], stats.consecutive_errors, reason
        )
        return False

    for why in parsed.skipped:
        log.warning("pyth: skipped an entry: %s", why)
    stats.skipped += len(parsed.skipped)
    horizon = time.time() + MAX_FUTURE_SKEW_S
    for price in parsed.prices:
        if price.publish_time > horizon:
            stats.skipped += 1
            log.warning(
                "pyth: %s publish_time %d is in the future; clock skew? not recorded",
                price.market,
                price.publish_time,
            )
            continue
        if book.update(price):
            stats.recorded += 1
    missing = set(feeds.values()) - {p.market for p in parsed.prices}
    if missing:
        log.debug("pyth: no price in this answer for %s", sorted(missing))
    stats.consecutive_errors = 0
    stats.last_success = time.time()
    return True


async def _fetch(
    client: httpx.AsyncClient, get: tuple[str, httpx.QueryParams, dict[str, str]]
) -> object:
    """GET and decode Hermes' JSON; every failure becomes a `HermesError` (one boundary)."""
    url, params, headers = get
    try:
        async with client.stream("GET", url, params=params, headers=headers) as resp:
            if resp.status_code != 200:
                raise HermesError(f"HTTP {resp.status_code} from Hermes")
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise HermesError(f"answer larger than {MAX_BODY_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise HermesError(f"{type(exc).__name__}: {exc}") from exc
    try:
        # Fractions decode as Decimal, never float; the parser refuses them as prices.
        return json.loads(body, parse_float=Decimal, parse_constant=Decimal)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise HermesError(f"answer is not JSON: {exc}") from exc
