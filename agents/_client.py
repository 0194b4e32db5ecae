"""`Client`: typed, signed calls for the whole REST API (SPEC §6).

Built on ``httpx.AsyncClient``, so it runs under asyncio and trio alike. Every call
either returns a typed model (`agents._models`) or raises: an `ApiError` subclass that
carries the daemon's error code (the daemon changed nothing), a `TransportError` (the
answer was lost: a mutating call may or may not have happened), or a `ProtocolError`
(the answer breaks the wire contract). httpx's exceptions never leak out; they are
translated in `Client._send`, the one boundary.

Amounts are ``int`` micro-USDC and rates ``int`` ppm (use `parse_usdc` / `parse_rate`
to write ``"1000"`` or ``"0.001"``); they go on the wire as exact decimal strings.

Consents (SPEC §6): when the daemon has a chain (``GET /chain``, read once), the client
signs every request, quote, close and withdrawal itself: it picks request nonces,
sends ``expires_at`` / ``valid_until`` (its clock + ``expires_in`` / ``valid_for``), and
keeps each position's ``closes`` and its own ``withdrawals`` from the objects the
daemon returns, so code written on it does not change. Before quoting, it checks that
the request's consent is the requester's and matches the terms shown: a maker never
signs a quote on terms the requester did not sign.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import httpx
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.associated import get_associated_token_address

from agents._consent import (
    close_consent,
    pick_nonce,
    quote_consent,
    request_consent,
    request_hash,
    sign_consent,
    withdraw_consent,
)
from agents._errors import NotFound, ProtocolError, TransportError, Unauthorized, error_from_wire
from agents._models import (
    Balances,
    ChainInfo,
    CloseResult,
    Event,
    Fill,
    FundingPayment,
    HistoryPage,
    LiquidationRecord,
    LiquidationResult,
    MakerProtection,
    Market,
    Position,
    Quote,
    Side,
    TradeRequest,
    duration_seconds,
    format_price,
    format_rate,
    format_usdc,
    parse_event,
    parse_price,
)
from agents._signing import Signer
from agents._ws import Session, open_session

__all__ = ["Client", "ClientStatistics"]

T = TypeVar("T")
CONSENT_S = 30  # how long a close or withdraw consent stays good (the daemon allows 60)


@dataclass(frozen=True)
class ClientStatistics:
    """Counters since the client was made: calls sent, refusals, lost answers."""

    calls: int
    refused: int
    transport_errors: int


class _Body(httpx.AsyncByteStream):
    """A request body that iterates without an async generator.

    httpx's own bytes stream is an async generator; when a write fails half-way (the
    connection was reset), httpcore abandons it suspended and trio's finalizer warns
    about it at garbage collection. A plain iterator has nothing to finalize.
    """

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> _Body:
        return _Body(self._data or b"")

    async def __anext__(self) -> bytes:
        if self._data is None:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data


def _decode(content: bytes) -> Any:
    """JSON with numbers kept exact (`Decimal`), NaN and infinities refused."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(content, parse_float=Decimal, parse_constant=no_constants)


def _object(data: Any, key: str, what: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise ProtocolError(f"{what}: expected an object with {key!r}")
    return data[key]


def _list(data: Any, key: str, what: str) -> list[Any]:
    value = _object(data, key, what)
    if not isinstance(value, list):
        raise ProtocolError(f"{what}: {key!r} is not a list")
    return value


class Client:
    """One agent's connection to a perpd daemon.

    Args:
        url: the daemon's base URL, e.g. ``http://127.0.0.1:8000``.
        keypair: the agent's Solana keypair (`load_keypair`); its public key is the
            agent id.
        clock: unix seconds used for signature timestamps; must be within 30 s of the
            daemon's clock.
        timeout: seconds for each HTTP call.
        http: an ``httpx.AsyncClient`` to use instead of a new one (its ``base_url``
            must be the daemon's); the caller keeps ownership and closes it.

    Use it as an async context manager, or call `aclose`. Safe to share between tasks.
    """

    def __init__(
        self,
        url: str,
        keypair: Keypair,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.keypair = keypair
        self.signer = Signer(keypair, clock=clock)
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self._calls = self._refused = self._transport_errors = 0
        self._chain: ChainInfo | None = None
        self._closes: dict[str, tuple[str, int]] = {}  # open position -> (address, closes)
        self._withdrawals = 0  # the highest count seen: counters only grow

    @property
    def agent_id(self) -> str:
        """This agent's id: the base58 public key of its keypair."""
        return self.signer.agent_id

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (if this client opened them)."""
        if self._own_http:
            await self.http.aclose()

    def statistics(self) -> ClientStatistics:
        return ClientStatistics(self._calls, self._refused, self._transport_errors)

    # ------------------------------------------------------------ transport

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        signed: bool = True,
        raw_text: bool = False,
    ) -> Any:
        """Send one call and decode its answer; the only place httpx errors are translated.

        The signature covers the request target as httpx will send it (path and encoded
        query), read back from the built request, so that quoting can never differ
        between what was signed and what went out.
        """
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        query = {k: v for k, v in (params or {}).items() if v is not None}
        # A read is retried once after a network error: a pooled keep-alive connection
        # that a peer or a middlebox dropped fails the first call on it, and reading
        # twice is harmless. A mutating call is retried only with a client id (issue
        # 13): the same body under it returns the first answer, never a second effect.
        attempts = 2 if method == "GET" or (body is not None and "client_id" in body) else 1
        for attempt in range(attempts):
            request = self.http.build_request(
                method,
                path,
                params=query or None,
                content=raw if body is not None else None,
                headers={"Content-Type": "application/json"} if body is not None else None,
            )
            if body is not None:
                request.stream = _Body(raw)
            if signed:
                target = request.url.raw_path.decode("ascii")
                request.headers.update(self.signer.headers(method, target, raw))
            self._calls += 1
            try:
                response = await self.http.send(request)
                break
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if attempt + 1 < attempts:
                    continue
                self._transport_errors += 1
                raise TransportError(f"{method} {path}: {exc!r}") from exc
            except httpx.HTTPError as exc:
                self._transport_errors += 1
                raise TransportError(f"{method} {path}: {exc!r}") from exc
        if raw_text and response.status_code < 400:
            return response.text
        try:
            data = _decode(response.content) if response.content else None
        except ValueError as exc:
            if response.status_code >= 400:
                self._refused += 1
                raise ProtocolError(
                    f"{method} {path}: HTTP {response.status_code} without a JSON error body"
                ) from exc
            raise ProtocolError(f"{method} {path}: answer is not JSON") from exc
        if response.status_code >= 400:
            self._refused += 1
            raise error_from_wire(response.status_code, data)
        return data

    # ------------------------------------------------------------ trading

    async def request_trade(
        self,
        market: str,
        side: Side,
        size: int,
        *,
        leverage: int,
        max_funding_rate: int,
        duration: str = "perpetual",
        expires_in: int = 30,
        nonce: int | None = None,
        client_id: str | None = None,
    ) -> TradeRequest:
        """Ask makers for a position (``POST /trade/request``).

        Args:
            size: notional in micro-USDC.
            max_funding_rate: the highest rate per funding period this agent will pay,
                in ppm.
            duration: ``"perpetual"`` or ``"<n>h"``.
            expires_in: seconds (1–300) the request stays open for quotes.
            nonce: the request's u64 nonce (unique per agent); with a chain the client
                picks a random one when None.
            client_id: an idempotency key (1-64 of ``[A-Za-z0-9._:-]``, unique per
                agent): the same body sent again under it returns the first request,
                never a second one, so the client resends a call with a client id once
                after a lost answer (the same bytes, signed anew). A call made again
                later is a new body (a new deadline and consent): use a new client id.
        """
        body: dict[str, Any] = {
            "agent_id": self.agent_id,
            "market": market,
            "side": side,
            "size_usdc": format_usdc(size),
            "leverage": leverage,
            "max_funding_rate": format_rate(max_funding_rate),
            "duration": duration,
        }
        program = await self._program()
        if program is None:
            body["expires_in"] = expires_in
            if nonce is not None:
                body["nonce"] = nonce
        else:
            nonce = pick_nonce(program, self.keypair.pubkey()) if nonce is None else nonce
            expires_at = self._deadline(expires_in)
            try:
                term = duration_seconds(duration)
            except ValueError:
                term = -1  # no consent: the daemon refuses the duration with its code
            consent = self._sign(
                request_consent,
                program,
                self.keypair.pubkey(),
                nonce,
                market,
                side,
                size,
                leverage,
                max_funding_rate,
                term,
                expires_at,
            )
            body |= {"nonce": nonce, "expires_at": expires_at, **consent}
        if client_id is not None:
            body["client_id"] = client_id
        data = await self._send("POST", "/trade/request", body=body)
        return TradeRequest.from_wire(data)

    async def quote(
        self,
        request: str | TradeRequest,
        *,
        funding_rate: int,
        collateral: int,
        valid_for: int = 10,
        client_id: str | None = None,
    ) -> Quote:
        """Quote a request (``POST /trade/quote``): ``funding_rate`` ppm, ``collateral`` micro.

        ``request`` is its id or the `TradeRequest` itself (with a chain, an id costs one
        ``GET /requests/{id}`` for the terms the quote consent names). ``client_id``: an
        idempotency key, as for `request_trade`."""
        body = await self.quote_body(request, funding_rate, collateral, valid_for)
        if client_id is not None:
            body["client_id"] = client_id
        data = await self._send("POST", "/trade/quote", body=body)
        return Quote.from_wire(data)

    async def cancel_quote(self, quote_id: str) -> Quote:
        """Pull a live quote (``POST /trade/quote/cancel``); returns it, ``cancelled``.

        A quote no longer live raises `Conflict` with the code saying why
        (``quote_filled``: accepted, or being accepted right now)."""
        body = {"agent_id": self.agent_id, "quote_id": quote_id}
        data = await self._send("POST", "/trade/quote/cancel", body=body)
        return Quote.from_wire(_object(data, "quote", "POST /trade/quote/cancel"))

    async def replace_quote(
        self,
        quote_id: str,
        funding_rate: int,
        collateral: int,
        *,
        request: str | TradeRequest | None = None,
        valid_for: int = 10,
        client_id: str | None = None,
    ) -> Quote:
        """Re-price a live quote in one step (``POST /trade/quote/replace``): the old one
        is cancelled and the new one live, or nothing changed. Returns the new quote
        (``replaced_quote_id`` names the old one).

        With a chain the new quote carries its own consent, which names the request:
        pass ``request`` (its id or the `TradeRequest`) when you have it, else the
        quote is read first (``GET /quotes/{id}``)."""
        body = await self.replace_body(quote_id, funding_rate, collateral, request, valid_for)
        if client_id is not None:
            body["client_id"] = client_id
        data = await self._send("POST", "/trade/quote/replace", body=body)
        return Quote.from_wire(data)

    async def replace_body(
        self,
        quote_id: str,
        funding_rate: int,
        collateral: int,
        request: str | TradeRequest | None,
        valid_for: int,
    ) -> dict[str, Any]:
        """The fields of a replace (HTTP or socket), with the new quote's consent."""
        if request is None and await self._program() is not None:
            data = await self._send("GET", f"/quotes/{quote_id}")
            request = str(_object(data, "request_id", "GET /quotes/{id}"))
        body = await self.quote_body(request or "", funding_rate, collateral, valid_for)
        del body["request_id"]
        return {"quote_id": quote_id, **body}

    async def cancel_request(self, request_id: str) -> TradeRequest:
        """Withdraw an open request (``POST /trade/request/cancel``); its quotes die."""
        body = {"agent_id": self.agent_id, "request_id": request_id}
        data = await self._send("POST", "/trade/request/cancel", body=body)
        return TradeRequest.from_wire(_object(data, "request", "POST /trade/request/cancel"))

    async def set_protection(
        self,
        *,
        window_s: int,
        cooldown_s: int,
        max_fills: int | None = None,
        max_notional: int | None = None,
    ) -> MakerProtection:
        """Set this maker's protection (``POST /maker/protection``): the fill that reaches
        ``max_fills`` or ``max_notional`` (micro-USDC) within ``window_s`` freezes its
        quoting for ``cooldown_s`` and cancels its live quotes. Neither limit: off."""
        body: dict[str, Any] = {
            "agent_id": self.agent_id,
            "window_s": window_s,
            "cooldown_s": cooldown_s,
        }
        if max_fills is not None:
            body["max_fills"] = max_fills
        if max_notional is not None:
            body["max_notional_usdc"] = format_usdc(max_notional)
        return MakerProtection.from_wire(await self._send("POST", "/maker/protection", body=body))

    async def protection(self) -> MakerProtection:
        """This maker's protection and whether it is frozen (a signed read)."""
        return MakerProtection.from_wire(await self._send("GET", "/maker/protection"))

    async def quote_body(
        self, request: str | TradeRequest, funding_rate: int, collateral: int, valid_for: int
    ) -> dict[str, Any]:
        """The fields of a quote (HTTP or socket), with its consent when there is a chain."""
        request_id = request if isinstance(request, str) else request.request_id
        body: dict[str, Any] = {
            "request_id": request_id,
            "agent_id": self.agent_id,
            "funding_rate": format_rate(funding_rate),
            "collateral_usdc": format_usdc(collateral),
        }
        program = await self._program()
        if program is None:
            body["valid_for"] = valid_for
            return body
        if isinstance(request, str):
            request = await self.trade_request(request)
        valid_until = self._deadline(valid_for)
        digest = _checked_request_hash(program, request)
        me = self.keypair.pubkey()
        consent = self._sign(
            quote_consent, program, me, digest, funding_rate, collateral, valid_until
        )
        return body | {"valid_until": valid_until, **consent}

    async def accept(self, request_id: str, quote_id: str) -> Position:
        """Take a quote on this agent's request (``POST /trade/accept``): the new position."""
        data = await self._send(
            "POST",
            "/trade/accept",
            body={"request_id": request_id, "quote_id": quote_id, "agent_id": self.agent_id},
        )
        return self.note_position(Position.from_wire(_object(data, "position", "accept")))

    async def close(self, position: str | Position, size_percent: int = 100) -> CloseResult:
        """Close ``size_percent`` (1–100) of a position this agent requested.

        With a chain the close consent names the position's ``closes``, as this client
        last saw it; if another close advanced it meanwhile (401), the position is read
        again and the close signed once more."""
        position_id = position if isinstance(position, str) else position.position_id
        if not isinstance(position, str):
            self.note_position(position)
        body: dict[str, Any] = {
            "position_id": position_id,
            "size_percent": size_percent,
            "agent_id": self.agent_id,
        }
        program = await self._program()
        if program is None:
            return self._closed(await self._send("POST", "/trade/close", body=body))
        for fresh in (False, True):
            terms = None if fresh else self._closes.get(position_id)
            if terms is None:  # not seen open yet, or stale: as the daemon has it now
                current = await self.position(position_id)
                if current.position_address is None:
                    raise ProtocolError(f"position {position_id} shows no position_address")
                terms = (current.position_address, current.closes)
            address, closes = terms
            expires_at = self._deadline(CONSENT_S)
            consent = self._sign(close_consent, program, address, size_percent, closes, expires_at)
            signed = body | {"expires_at": expires_at, **consent}
            try:
                return self._closed(await self._send("POST", "/trade/close", body=signed))
            except Unauthorized:
                if fresh:
                    raise
        raise AssertionError("unreachable")

    def _closed(self, data: Any) -> CloseResult:
        result = CloseResult.from_wire(data)
        self.note_position(result.position)
        return result

    async def liquidate(self, position_id: str) -> LiquidationResult:
        """Liquidate an under-margined position; this agent earns the liquidator's reward."""
        data = await self._send(
            "POST",
            "/trade/liquidate",
            body={"position_id": position_id, "agent_id": self.agent_id},
        )
        result = LiquidationResult.from_wire(data)
        self.note_position(result.position)
        return result

    async def withdraw(self, amount: int, *, destination: str | Pubkey | None = None) -> Balances:
        """Withdraw ``amount`` micro-USDC of free collateral.

        With a chain the money goes to ``destination``, a USDC token account (default:
        this agent's associated token account for the chain's USDC mint), and the
        consent names this agent's ``withdrawals`` count (read again once if stale)."""
        path = f"/accounts/{self.agent_id}/withdraw"
        body: dict[str, Any] = {"amount_usdc": format_usdc(amount), "agent_id": self.agent_id}
        program = await self._program()
        if program is None:
            if destination is not None:
                body["destination"] = str(destination)
            return self._balances(await self._send("POST", path, body=body))
        to = Pubkey.from_string(destination) if isinstance(destination, str) else destination
        to = to or await self._usdc_account()
        for fresh in (False, True):
            if fresh:
                await self.balances()
            expires_at = self._deadline(CONSENT_S)
            me, count = self.keypair.pubkey(), self._withdrawals
            consent = self._sign(withdraw_consent, program, me, to, amount, count, expires_at)
            signed = body | {"destination": str(to), "expires_at": expires_at, **consent}
            try:
                return self._balances(await self._send("POST", path, body=signed))
            except Unauthorized:
                if fresh:
                    raise
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ consents

    async def chain(self) -> ChainInfo:
        """``GET /chain``, read once: the chain mode and the program id consents name."""
        if self._chain is None:
            try:
                self._chain = ChainInfo.from_wire(await self._send("GET", "/chain"))
            except NotFound:  # a daemon from before custody on chain
                self._chain = ChainInfo("none", None, None, {})
        return self._chain

    async def _program(self) -> Pubkey | None:
        """The program id to sign consents for, or None when the daemon has no chain."""
        info = await self.chain()
        if not info.signs:
            return None
        assert info.program_id is not None
        try:
            return Pubkey.from_string(info.program_id)
        except ValueError as exc:
            raise ProtocolError(f"GET /chain: program_id {info.program_id!r}") from exc

    async def _usdc_account(self) -> Pubkey:
        mint = (await self.chain()).usdc_mint
        if mint is None:
            raise ValueError("withdraw needs a destination: GET /chain names no USDC mint")
        return get_associated_token_address(self.keypair.pubkey(), Pubkey.from_string(mint))

    def _deadline(self, seconds: int) -> int:
        """A consent deadline ``seconds`` from now, in whole seconds of this client's clock."""
        return int(self.signer.clock()) + seconds

    def _sign(self, build: Callable[..., bytes], *terms: Any) -> dict[str, str]:
        """``{"consent": signature}`` of ``build(*terms)``, or ``{}`` when a term does
        not fit its consent field (an unknown market, a negative amount...): the daemon
        then refuses that term with its own code, as it would without a chain."""
        try:
            return {"consent": sign_consent(self.keypair, build(*terms))}
        except ValueError:
            return {}

    def note_position(self, position: Position) -> Position:
        """Keep what the next close consent names: the position's address and ``closes``."""
        pid = position.position_id
        if not position.is_open or position.position_address is None:
            self._closes.pop(pid, None)
        elif position.closes >= self._closes.get(pid, ("", -1))[1]:
            self._closes[pid] = (position.position_address, position.closes)
        return position

    def _balances(self, data: Any) -> Balances:
        balances = Balances.from_wire(data)
        if balances.agent_id == self.agent_id:
            self._withdrawals = max(self._withdrawals, balances.withdrawals)
        return balances

    # ------------------------------------------------------------ reads

    async def markets(self) -> list[Market]:
        data = await self._send("GET", "/markets")
        return [Market.from_wire(m) for m in _list(data, "markets", "GET /markets")]

    async def market(self, name: str) -> Market:
        """One market by name; `ProtocolError` if the daemon does not list it."""
        for m in await self.markets():
            if m.market == name:
                return m
        raise ProtocolError(f"market {name!r} is not listed")

    async def open_requests(self, market: str | None = None) -> list[TradeRequest]:
        """Requests still open for quotes (all markets, or one)."""
        data = await self._send("GET", "/requests", params={"market": market})
        return [TradeRequest.from_wire(r) for r in _list(data, "requests", "GET /requests")]

    async def trade_request(self, request_id: str) -> TradeRequest:
        """One request, in whatever state it is now."""
        data = await self._send("GET", f"/requests/{request_id}")
        return TradeRequest.from_wire(data)

    async def quotes(self, request_id: str) -> list[Quote]:
        """The live quotes on a request."""
        data = await self._send("GET", "/quotes", params={"request_id": request_id})
        return [Quote.from_wire(q) for q in _list(data, "quotes", "GET /quotes")]

    async def positions(
        self, *, agent_id: str | None = None, status: str | None = None
    ) -> list[Position]:
        """Positions, newest first: of ``agent_id`` (either side) or all; by ``status``."""
        data = await self._send(
            "GET", "/positions", params={"agent_id": agent_id, "status": status}
        )
        return [
            self.note_position(Position.from_wire(p))
            for p in _list(data, "positions", "GET /positions")
        ]

    async def my_positions(self, status: str | None = "open") -> list[Position]:
        """This agent's positions (as requester or maker), open ones by default."""
        return await self.positions(agent_id=self.agent_id, status=status)

    async def position(self, position_id: str) -> Position:
        data = await self._send("GET", f"/positions/{position_id}")
        return self.note_position(Position.from_wire(data))

    async def balances(self) -> Balances:
        """This agent's free and locked collateral (a signed read)."""
        return self._balances(await self._send("GET", f"/accounts/{self.agent_id}"))

    async def events(self, since: int = 0, *, limit: int | None = None) -> list[Event]:
        """Events after ``since`` visible to this agent, in ``seq`` order (a signed read)."""
        data = await self._send("GET", "/events", params={"since": since, "limit": limit})
        return [parse_event(e) for e in _list(data, "events", "GET /events")]

    async def health(self) -> dict[str, Any]:
        data = await self._send("GET", "/health")
        if not isinstance(data, dict):
            raise ProtocolError("GET /health: expected an object")
        return data

    async def metrics(self) -> str:
        """The Prometheus text exposition."""
        text = await self._send("GET", "/metrics", raw_text=True)
        assert isinstance(text, str)
        return text

    async def openapi(self) -> dict[str, Any]:
        data = await self._send("GET", "/openapi.json")
        if not isinstance(data, dict):
            raise ProtocolError("GET /openapi.json: expected an object")
        return data

    # ------------------------------------------------------------ dev mode

    async def faucet(self, amount: int, *, agent_id: str | None = None) -> Balances:
        """Dev mode only: credit ``amount`` micro-USDC to this agent (or ``agent_id``)."""
        data = await self._send(
            "POST",
            "/dev/faucet",
            body={"agent_id": agent_id or self.agent_id, "amount_usdc": format_usdc(amount)},
            signed=False,
        )
        return self._balances(data)

    async def set_price(self, market: str, price: int) -> int:
        """Dev mode only: pin the simulated oracle of ``market`` at ``price`` (exponent -8).

        Returns the published price.
        """
        data = await self._send(
            "POST",
            "/dev/price",
            body={"market": market, "price": format_price(price)},
            signed=False,
        )
        return parse_price(_object(data, "oracle_price", "POST /dev/price"))

    # ------------------------------------------------------------ WebSocket

    def subscribe(
        self, markets: Sequence[str], *, since: int | None = None, **options: Any
    ) -> AbstractAsyncContextManager[Session]:
        """A WebSocket `Session` streaming this agent's events; see `agents.Session`.

        ``async with client.subscribe(["BTC-PERP"]) as session: async for ev in session``.
        """
        return open_session(self, markets, since=since, **options)

    # ------------------------------------------------------------ history (issue 13)

    async def _history(
        self,
        path: str,
        key: str,
        parse: Callable[[object], T],
        window: dict[str, Any],
    ) -> HistoryPage[T]:
        """One signed page of this agent's ``path`` list, decoded."""
        data = await self._send("GET", path, params=window)
        items = tuple(parse(x) for x in _list(data, key, f"GET {path}"))
        cursor = data.get("next_cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise ProtocolError(f"GET {path}: next_cursor must be a string or null")
        return HistoryPage(items, cursor)

    async def fills(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        since: int | None = None,
        until: int | None = None,
        market: str | None = None,
    ) -> HistoryPage[Fill]:
        """A page of this agent's fills, oldest first (``since`` inclusive, ``until``
        exclusive, unix s); pass the page's ``next_cursor`` for the next one."""
        window = {"limit": limit, "cursor": cursor, "since": since, "until": until}
        return await self._history("/fills", "fills", Fill.from_wire, window | {"market": market})

    async def funding(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        since: int | None = None,
        until: int | None = None,
        market: str | None = None,
    ) -> HistoryPage[FundingPayment]:
        """A page of the funding payments on this agent's positions, oldest first."""
        window = {"limit": limit, "cursor": cursor, "since": since, "until": until}
        return await self._history(
            "/funding", "funding", FundingPayment.from_wire, window | {"market": market}
        )

    async def liquidations(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        since: int | None = None,
        until: int | None = None,
        market: str | None = None,
    ) -> HistoryPage[LiquidationRecord]:
        """A page of the liquidations this agent was party to or made, oldest first."""
        window = {"limit": limit, "cursor": cursor, "since": since, "until": until}
        return await self._history(
            "/liquidations",
            "liquidations",
            LiquidationRecord.from_wire,
            window | {"market": market},
        )

    def iter_fills(
        self,
        *,
        since: int | None = None,
        until: int | None = None,
        market: str | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[Fill]:
        """Every fill of this agent in the window, page after page, each once."""
        return _every(partial(self.fills, limit=page_size, since=since, until=until, market=market))

    def iter_funding(
        self,
        *,
        since: int | None = None,
        until: int | None = None,
        market: str | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[FundingPayment]:
        """Every funding payment of this agent in the window, page after page."""
        return _every(
            partial(self.funding, limit=page_size, since=since, until=until, market=market)
        )


async def _every(page: Callable[..., Awaitable[HistoryPage[T]]]) -> AsyncIterator[T]:
    """The items of every page ``page(cursor=...)`` returns, following next_cursor."""
    cursor: str | None = None
    while True:
        got = await page(cursor=cursor)
        for item in got.items:
            yield item
        if got.next_cursor is None:
            return
        cursor = got.next_cursor


def _checked_request_hash(program: Pubkey, request: TradeRequest) -> bytes:
    """The request consent's hash, after checking that the consent is the requester's
    signature of exactly the terms the daemon shows (`ProtocolError` otherwise)."""
    rid = request.request_id
    if request.consent is None or request.nonce is None or request.request_hash is None:
        raise ProtocolError(f"request {rid} carries no consent: the daemon must not relay it")
    message = request_consent(
        program,
        request.agent_id,
        request.nonce,
        request.market,
        request.side,
        request.size,
        request.leverage,
        request.max_funding_rate,
        request.duration_s,
        request.expires_at,
    )
    digest = request_hash(message)
    try:
        signed = Signature.from_string(request.consent).verify(
            Pubkey.from_string(request.agent_id), message
        )
    except ValueError:
        signed = False
    if digest.hex() != request.request_hash or not signed:
        raise ProtocolError(f"request {rid}: its consent does not match its terms; not quoting")
    return digest
