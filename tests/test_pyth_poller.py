"""The Hermes poller end to end: the real poller, real httpx, a real loopback HTTP server.

Real time, not autojump_clock: sockets are involved. Intervals are tens of milliseconds
so every test finishes well under a second or two.
"""

from __future__ import annotations

import functools
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio

from perpd.errors import OracleUnavailable
from perpd.markets import MARKETS
from perpd.nursery import pyth_poller
from perpd.nursery.pyth_poller import PollerStatistics
from perpd.oracle import Price, PriceBook

BTC = MARKETS["BTC-PERP"].feed_id
ETH = MARKETS["ETH-PERP"].feed_id
SOL = MARKETS["SOL-PERP"].feed_id


def hermes_answer(*prices: tuple[str, int, int, int, int]) -> dict[str, Any]:
    """A Hermes ``latest`` answer for (feed id, price, conf, expo, publish_time) tuples."""
    parsed = []
    for feed_id, price, conf, expo, publish_time in prices:
        p = {"price": str(price), "conf": str(conf), "expo": expo, "publish_time": publish_time}
        parsed.append(
            {
                "id": feed_id,
                "price": p,
                "ema_price": dict(p),
                "metadata": {"slot": 1, "proof_available_time": publish_time},
            }
        )
    return {"binary": {"encoding": "hex", "data": ["504e4155"]}, "parsed": parsed}


def now() -> int:
    return int(time.time())


def refusing_socket(port: int = 0) -> trio.socket.SocketType:
    """A TCP socket bound to 127.0.0.1:``port`` but not listening: connects are refused."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAITs
    sock.bind(("127.0.0.1", port))
    return trio.socket.from_stdlib_socket(sock)


class FakeHermes:
    """A tiny HTTP/1.1 server on 127.0.0.1 whose answer each test controls.

    ``mode``: "ok" (``status`` + ``payload`` as JSON), "raw" (``status`` + ``raw`` bytes),
    "drop" (close without answering), "hang" (never answer).
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.status = 200
        self.payload: object = hermes_answer()
        self.raw = b""
        self.requests: list[tuple[float, str]] = []  # (trio.current_time(), request target)
        self.api_key = ""  # when set: 401 unless "Authorization: Bearer <api_key>"
        self.authorized: list[bool] = []  # per request: did it carry that header
        self.port = 0
        self._scope: trio.CancelScope | None = None
        self._stopped = trio.Event()
        self._hold: trio.socket.SocketType | None = None  # the port, while stopped
        self._arrived = trio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, nursery: trio.Nursery) -> None:
        """Listen (on the same port again after `stop`) and serve in ``nursery``."""
        if self._hold is None:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
        else:
            self._hold.listen()
            listeners, self._hold = [trio.SocketListener(self._hold)], None
        self._stopped = trio.Event()
        await nursery.start(self._serve, listeners)

    async def wait_requests(self, n: int) -> None:
        """Block until ``n`` requests have arrived in all (bounded by the caller)."""
        while len(self.requests) < n:
            await self._arrived.wait()

    async def stop(self) -> None:
        """Close the listener and open connections: clients now get connection refused.

        The port stays bound (not listening, so connections are refused) so that no
        other process takes it before `start` listens on it again.
        """
        assert self._scope is not None
        self._scope.cancel()
        with trio.fail_after(1):
            await self._stopped.wait()

    def close(self) -> None:
        if self._hold is not None:
            self._hold.close()

    async def _serve(
        self, listeners: list[trio.SocketListener], *, task_status: trio.TaskStatus[None]
    ) -> None:
        try:
            with trio.CancelScope() as self._scope:
                task_status.started()
                await trio.serve_listeners(self._handle, listeners)
        finally:
            for listener in listeners:
                listener.socket.close()
            if self._scope is not None and self._scope.cancel_called:  # stop(), not teardown
                self._hold = refusing_socket(self.port)
            self._stopped.set()

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            head = b""
            with trio.move_on_after(2):
                while b"\r\n\r\n" not in head:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        return
                    head += chunk
            if b"\r\n\r\n" not in head:
                return
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
            bearer = f"\r\nauthorization: bearer {self.api_key}\r\n".encode()
            self.authorized.append(bool(self.api_key) and bearer in head.lower())
            self.requests.append((trio.current_time(), target))
            self._arrived.set()
            self._arrived = trio.Event()
            if self.mode == "drop":
                return
            if self.mode == "hang":
                await trio.sleep_forever()
            body = self.raw if self.mode == "raw" else json.dumps(self.payload).encode()
            status = self.status
            if self.api_key and not self.authorized[-1]:
                status, body = 401, b'{"error":"missing or bad API key"}'
            await stream.send_all(
                b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (status, len(body), body)
            )


class Attempts:
    """Times of the poller's requests as its client sends them (an httpx event hook)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._sent = trio.Event()

    async def hook(self, request: httpx.Request) -> None:
        self.times.append(trio.current_time())
        self._sent.set()
        self._sent = trio.Event()

    async def wait(self, n: int) -> None:
        """Block until ``n`` requests have been sent in all (bounded by the caller)."""
        while len(self.times) < n:
            await self._sent.wait()


@pytest.fixture
async def hermes(nursery: trio.Nursery) -> AsyncIterator[FakeHermes]:
    server = FakeHermes()
    await server.start(nursery)
    yield server
    server.close()


@pytest.fixture
def book() -> PriceBook:
    return PriceBook(MARKETS)


async def start_poller(
    nursery: trio.Nursery, book: PriceBook, url: str, **kw: Any
) -> PollerStatistics:
    kw.setdefault("interval_s", 0.02)
    kw.setdefault("timeout_s", 1.0)
    kw.setdefault("max_backoff_s", 0.2)
    with trio.fail_after(3):
        stats: PollerStatistics = await nursery.start(
            functools.partial(pyth_poller.run, book, hermes_url=url, **kw)
        )
    return stats


async def test_fresh_price_is_usable_and_normalised(
    nursery: trio.Nursery, hermes: FakeHermes, book: PriceBook
) -> None:
    t = now()
    hermes.payload = hermes_answer(
        (BTC, 6512345678900, 1234567, -8, t),
        (ETH, 32001234567891, 99999, -10, t),  # 3200.1234567891 ± 0.0000099999
        ("0x" + SOL.upper(), 15012345, 100, -5, t),
    )
    stats = await start_poller(nursery, book, hermes.url)

    assert book.usable("BTC-PERP") == Price("BTC-PERP", 6512345678900, 1234567, t, "pyth")
    assert book.usable("ETH-PERP") == Price("ETH-PERP", 320012345678, 1000, t, "pyth")
    assert book.usable("SOL-PERP") == Price("SOL-PERP", 15012345000, 100000, t, "pyth")
    assert (stats.errors, stats.recorded) == (0, 3)

    _, target = hermes.requests[0]
    url = urlsplit(target)
    assert url.path == "/v2/updates/price/latest"
    query = parse_qs(url.query)
    assert sorted(query["ids[]"]) == sorted([BTC, ETH, SOL])
    assert query["parsed"] == ["true"]

    # The next poll brings the next price.
    seen = book.version
    hermes.payload = hermes_answer((BTC, 6600000000000, 1234567, -8, t + 1))
    with trio.fail_after(1):
        await book.wait_update(seen)
    assert book.usable("BTC-PERP").price == 6600000000000


async def test_stale_price_is_recorded_but_not_usable(
    nursery: trio.Nursery, hermes: FakeHermes, book: PriceBook
) -> None:
    stale = now() - 61
    hermes.payload = hermes_answer((BTC, 6512345678900, 1234567, -8, stale))
    await start_poller(nursery, book, hermes.url)
    with trio.fail_after(1):
        await hermes.wait_requests(3)  # polling again must not freshen it

    held = book.latest("BTC-PERP")
    assert held is not None and held.publish_time == stale
    with pytest.raises(OracleUnavailable, match="stale"):
        book.usable("BTC-PERP")


async def test_confidence_wider_than_2_percent_is_not_usable(
    nursery: trio.Nursery, hermes: FakeHermes, book: PriceBook
) -> None:
    t = now()
    hermes.payload = hermes_answer(
        (BTC, 10000000000000, 200000000001, -8, t),  # 100000 ± 2000.00000001: > 2%
        (ETH, 320000000000000, 6400000000000, -10, t),  # 32000 ± 640: exactly 2%
    )
    await start_poller(nursery, book, hermes.url)

    with pytest.raises(OracleUnavailable, match="confidence"):
        book.usable("BTC-PERP")
    assert book.usable("ETH-PERP").conf == 64000000000


async def test_outage_backs_off_then_recovers(
    nursery: trio.Nursery, hermes: FakeHermes, book: PriceBook
) -> None:
    interval, cap = 0.015, 0.12
    hermes.status, hermes.payload = 500, {"error": "down"}
    attempts = Attempts()
    client = httpx.AsyncClient(event_hooks={"request": [attempts.hook]})
    async with client:
        stats = await start_poller(
            nursery, book, hermes.url, interval_s=interval, max_backoff_s=cap, client=client
        )
        await check_outage_and_recovery(nursery, hermes, book, stats, attempts, interval, cap)


async def check_outage_and_recovery(
    nursery: trio.Nursery,
    hermes: FakeHermes,
    book: PriceBook,
    stats: PollerStatistics,
    attempts: Attempts,
    interval: float,
    cap: float,
) -> None:
    # Started after the first (failed) attempt; no price to trade on.
    assert stats.errors >= 1 and stats.recorded == 0
    with pytest.raises(OracleUnavailable, match="no oracle price"):
        book.usable("BTC-PERP")

    # 500s: the gap between requests doubles, then stays at the cap.
    with trio.fail_after(1.5):
        await hermes.wait_requests(6)
    times = [t for t, _ in hermes.requests[:6]]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Lower bounds are exact (the server logs a request before answering it, and the
    # poller sleeps after the answer); a poller that did not back off would show 0.015.
    # No upper bounds beyond the cap's: a loaded machine only makes gaps longer.
    for gap, want in zip(gaps, [0.03, 0.06, 0.12, 0.12, 0.12], strict=True):
        assert gap >= want, gaps
    assert gaps[4] < 4 * cap, gaps  # uncapped it would be at least 0.48
    assert stats.next_delay_s == cap
    assert "HTTP 500" in (stats.last_error or "")

    # Connection refused: still running, still no price.
    await hermes.stop()
    with trio.fail_after(2):
        await attempts.wait(len(attempts.times) + 3)  # two or more attempts fail whole
    assert stats.errors >= 8
    refused = attempts.times[-3:]
    assert all(b - a >= cap for a, b in zip(refused, refused[1:], strict=False)), refused
    assert "ConnectError" in (stats.last_error or "")
    assert stats.next_delay_s == cap
    with pytest.raises(OracleUnavailable):
        book.usable("BTC-PERP")

    # Hermes is back on the same address: the price appears, the backoff resets.
    t = now()
    hermes.status, hermes.payload = 200, hermes_answer((BTC, 6512345678900, 1234567, -8, t))
    await hermes.start(nursery)
    with trio.fail_after(1):
        await book.wait_update(book.version)
    assert book.usable("BTC-PERP") == Price("BTC-PERP", 6512345678900, 1234567, t, "pyth")
    assert stats.consecutive_errors == 0
    assert stats.next_delay_s == interval


@pytest.mark.parametrize(
    ("mode", "raw", "error"),
    [
        ("drop", b"", "RemoteProtocolError"),
        ("hang", b"", "no answer within"),
        ("raw", b"<html>502 Bad Gateway</html>", "not JSON"),
        ("raw", b"[1, 2, 3]", "expected a JSON object"),
        ("raw", b'{"binary": {}}', "no 'parsed' list"),
    ],
)
async def test_misbehaving_hermes_is_survived(
    nursery: trio.Nursery, hermes: FakeHermes, book: PriceBook, mode: str, raw: bytes, error: str
) -> None:
    hermes.mode, hermes.raw = mode, raw
    # Only "hang" wants the timeout to expire (the default 1 s leaves loaded machines room).
    kw = {"timeout_s": 0.1} if mode == "hang" else {}
    stats = await start_poller(nursery, book, hermes.url, **kw)
    assert stats.errors >= 1
    assert error in (stats.last_error or "")
    with pytest.raises(OracleUnavailable):
        book.usable("BTC-PERP")

    t = now()
    hermes.mode, hermes.payload = "ok", hermes_answer((BTC, 6512345678900, 1234567, -8, t))
    with trio.fail_after(1):
        await book.wait_update(book.version)
    assert book.usable("BTC-PERP").publish_time == t


async def test_starts_when_nothing_listens_and_leaves_a_given_client_open(
    book: PriceBook,
) -> None:
    with refusing_socket() as sock:
        port = sock.getsockname()[1]
        async with httpx.AsyncClient() as client:
            async with trio.open_nursery() as nursery:
                stats = await start_poller(
                    nursery, book, f"http://127.0.0.1:{port}/", client=client
                )
                assert stats.errors == 1
                assert "ConnectError" in (stats.last_error or "")
                with pytest.raises(OracleUnavailable, match="no oracle price"):
                    book.usable("BTC-PERP")
                nursery.cancel_scope.cancel()
            assert not client.is_closed  # the caller's client is the caller's to close


async def test_malformed_entry_and_future_time_are_skipped(
    nursery: trio.Nursery, hermes: FakeHermes, book: PriceBook
) -> None:
    t = now()
    answer = hermes_answer(
        (BTC, 6512345678900, 1234567, -8, t + 3600),  # would pin a "fresh" price for an hour
        (SOL, 15012345, 100, -5, t),
    )
    answer["parsed"].append({"id": ETH, "price": {"price": 3200.5, "conf": "1", "expo": -8}})
    hermes.payload = answer
    stats = await start_poller(nursery, book, hermes.url)

    assert stats.errors == 0 and stats.skipped == 2
    assert book.latest("BTC-PERP") is None and book.latest("ETH-PERP") is None
    assert book.usable("SOL-PERP").price == 15012345000


async def test_feeds_must_name_markets_in_the_book(book: PriceBook) -> None:
    with pytest.raises(ValueError, match="DOGE-PERP"):
        await pyth_poller.run(book, hermes_url="http://127.0.0.1:9", feeds={BTC: "DOGE-PERP"})
