"""The tests' own client signs SPEC §6 consents the way the agents SDK does.

With a chain every money-moving call needs its consent; the test agents (`Agent.post`,
`Ws.send`) add it to the bodies tests write by hand, so the same tests run with and
without a chain. Like the SDK: a request gets a nonce (bump 255) and ``expires_at``
instead of ``expires_in``, a quote ``valid_until`` instead of ``valid_for`` and the hash
of the request's consent (read back with ``GET /requests/{id}``), a close the position's
address and ``closes`` (``GET /positions/{id}``), a withdrawal the agent's USDC token
account and ``withdrawals`` (``GET /accounts/{id}``). A term the consent cannot carry
(an unknown market, a malformed amount) leaves the consent out, so the daemon refuses
that term with its own code; a body that already names consent fields is sent as is
(the test is signing, or not signing, on purpose).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from agents._consent import (
    close_consent,
    pick_nonce,
    quote_consent,
    request_consent,
    sign_consent,
    withdraw_consent,
)
from agents._models import duration_seconds
from perpd.errors import PerpdError
from perpd.units import parse_rate, parse_usdc

CONSENT_S = 30  # close and withdraw consents (the daemon allows up to 60 s)
OWN_FIELDS = ("consent", "nonce", "expires_at", "valid_until", "destination")

Reader = Callable[[str], Awaitable[dict[str, Any] | None]]  # a GET: its JSON, or None


def _number(value: Any) -> Any:
    """A value as the daemon reads it: a JSON float is its exact decimal text."""
    return Decimal(repr(value)) if isinstance(value, float) else value


def _usdc(body: dict[str, Any], field: str) -> int:
    return parse_usdc(_number(body.get(field)), field)


def _rate(body: dict[str, Any], field: str) -> int:
    return parse_rate(_number(body.get(field)), field)


class Consents:
    """Signs one agent's bodies for the program ``program`` (None: the daemon has no chain)."""

    def __init__(self, keypair: Keypair, program: Pubkey | None, usdc_mint: Pubkey | None):
        self.keypair = keypair
        self.program = program
        self.usdc_mint = usdc_mint

    async def sign(self, path: str, body: Any, now: float, read: Reader) -> Any:
        """``body`` with the consent its call needs (unchanged without a chain)."""
        if self.program is None or not isinstance(body, dict):
            return body
        if any(k in body for k in OWN_FIELDS):
            return body
        if path == "/trade/request":
            return self.request(body, now)
        if path == "/trade/quote":
            return await self.quote(body, now, read)
        if path == "/trade/quote/replace":
            return await self.replace(body, now, read)
        if path == "/trade/close":
            return await self.close(body, now, read)
        if path.startswith("/accounts/") and path.endswith("/withdraw"):
            return await self.withdraw(body, now, read)
        return body

    def _signed(self, message: Callable[[], bytes]) -> dict[str, str]:
        """``{"consent": ...}`` over ``message()``; the terms are parsed inside it."""
        try:
            return {"consent": sign_consent(self.keypair, message())}
        except (ValueError, TypeError, PerpdError):
            return {}  # a term the consent cannot carry: the daemon names it

    def request(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        me = self.keypair.pubkey()
        nonce = pick_nonce(self.program, me)  # type: ignore[arg-type]
        rest = {k: v for k, v in body.items() if k != "expires_in"}
        expires_in = body.get("expires_in", 30)
        if not isinstance(expires_in, int) or isinstance(expires_in, bool):
            return body  # the daemon refuses it as it is
        expires_at = int(now) + expires_in
        consent = self._signed(
            lambda: request_consent(
                self.program,
                me,
                nonce,
                body.get("market"),
                body.get("side"),
                _usdc(body, "size_usdc"),
                body.get("leverage", 0),
                _rate(body, "max_funding_rate"),
                duration_seconds(body.get("duration", "perpetual")),
                expires_at,
            )
        )
        return rest | {"nonce": nonce, "expires_at": expires_at, **consent}

    async def quote(self, body: dict[str, Any], now: float, read: Reader) -> dict[str, Any]:
        valid_for = body.get("valid_for", 10)
        if not isinstance(valid_for, int) or isinstance(valid_for, bool):
            return body
        request = await read(f"/requests/{body.get('request_id')}")
        # no such request (or none with a consent): sign some hash, the daemon says which
        digest = bytes.fromhex((request or {}).get("request_hash") or "00" * 32)
        valid_until = int(now) + valid_for
        rest = {k: v for k, v in body.items() if k != "valid_for"}
        consent = self._signed(
            lambda: quote_consent(
                self.program,
                self.keypair.pubkey(),
                digest,
                _rate(body, "funding_rate"),
                _usdc(body, "collateral_usdc"),
                valid_until,
            )
        )
        return rest | {"valid_until": valid_until, **consent}

    async def replace(self, body: dict[str, Any], now: float, read: Reader) -> dict[str, Any]:
        """A replace's new quote: its consent names the old quote's request."""
        old = await read(f"/quotes/{body.get('quote_id')}") or {}
        signed = await self.quote({**body, "request_id": old.get("request_id")}, now, read)
        return {k: v for k, v in signed.items() if k != "request_id"}

    async def close(self, body: dict[str, Any], now: float, read: Reader) -> dict[str, Any]:
        position = await read(f"/positions/{body.get('position_id')}") or {}
        # no such position: sign for the system program's address, the daemon says 404
        address = position.get("position_address") or "11111111111111111111111111111111"
        expires_at = int(now) + CONSENT_S
        consent = self._signed(
            lambda: close_consent(
                self.program,
                address,
                body.get("size_percent", 100),
                position.get("closes", 0),
                expires_at,
            )
        )
        return body | {"expires_at": expires_at, **consent}

    async def withdraw(self, body: dict[str, Any], now: float, read: Reader) -> dict[str, Any]:
        me = self.keypair.pubkey()
        account = await read(f"/accounts/{me}")
        withdrawals = account["withdrawals"] if account else 0
        assert self.usdc_mint is not None, "GET /chain names no USDC mint"
        to = get_associated_token_address(me, self.usdc_mint)
        expires_at = int(now) + CONSENT_S
        consent = self._signed(
            lambda: withdraw_consent(
                self.program,
                me,
                to,
                _usdc(body, "amount_usdc"),
                withdrawals,
                expires_at,
            )
        )
        return body | {"destination": str(to), "expires_at": expires_at, **consent}
