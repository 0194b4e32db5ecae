"""schemathesis hooks (``SCHEMATHESIS_HOOKS``): sign every call as SPEC §6 says.

The agents' keys come from ``PERPD_FUZZ_KEYS`` (requester, maker; funded by the test via
``POST /dev/faucet``). A requests auth signs the prepared request, so the signature
covers the body bytes and the target exactly as sent; a call schemathesis sends without
its auth (the ``ignored_auth`` check) is sent unsigned and must be refused.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import requests
import schemathesis
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from perpd.auth import sign_headers

# the requester signs everything but quotes, which its counterparty (the maker) signs
KEYPAIR, MAKER = (Keypair.from_base58_string(k) for k in os.environ["PERPD_FUZZ_KEYS"].split())
AGENT = str(KEYPAIR.pubkey())
_B58 = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,88}")


class _Sign(requests.auth.AuthBase):
    """Fill X-Timestamp and X-Signature of a request that carries our X-Agent-Id."""

    last_ms = 0

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if r.headers.get("X-Agent-Id") != AGENT:
            return r
        keypair = MAKER if r.path_url.startswith("/trade/quote") else KEYPAIR
        _Sign.last_ms = max(int(time.time() * 1000), _Sign.last_ms + 1)  # never a replay
        body = r.body or b""
        raw = body.encode() if isinstance(body, str) else body
        assert r.method is not None
        r.headers.update(
            sign_headers(keypair, r.method, r.path_url, raw, timestamp_ms=_Sign.last_ms)
        )
        return r


@schemathesis.auth()
class Agent:
    """The auth schemathesis applies (and removes to test that it is required)."""

    def get(self, case: Any, ctx: Any) -> str:
        return AGENT

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {
            **(case.headers or {}),
            "X-Agent-Id": data,
            "X-Timestamp": "0",
            "X-Signature": "1",
        }


def _pubkey(value: object) -> object:
    try:
        Pubkey.from_string(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return AGENT
    return value


def _signer(case: Any) -> str:
    return str(MAKER.pubkey()) if case.path.startswith("/trade/quote") else AGENT


def _signature(value: object) -> object:
    try:
        Signature.from_string(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(KEYPAIR.sign_message(b"not this call"))
    return value


_REPAIRS = {"agent_id": _pubkey, "destination": _pubkey, "consent": _signature}


def _repair(body: dict[str, Any]) -> None:
    """What JSON Schema cannot say, made true of a schema-valid body: a base58 string of
    the right length that is a real key or signature, and an integer not written 2.0
    (the wire refuses ``2.0`` where an integer goes, SPEC-pinned)."""
    for name, value in body.items():
        if name in ("valid_until", "expires_at") and isinstance(value, int | float):
            body[name] = int(time.time()) + 30  # a deadline is relative to now
        elif name == "size_usdc" and isinstance(value, int | float | str):
            body[name] = "25"  # at least every market's minimum (GET /markets, a setting)
        elif isinstance(value, float) and value.is_integer():
            body[name] = int(value)
        elif name in _REPAIRS and isinstance(value, str) and _B58.fullmatch(value):
            body[name] = _REPAIRS[name](value)


def _whole(value: object) -> int | None:
    """A query value as the integer it spells (the coverage phase sends some as text)."""
    try:
        return int(value) if isinstance(value, int | str) else None
    except ValueError:
        return None


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if positive and isinstance(case.body, dict):
        _repair(case.body)
        if case.path in ("/trade/quote", "/trade/quote/replace", "/trade/close"):
            # their consents name a consented request or an on-chain position, which
            # these calls' requests never had (tests/test_consent_http.py signs them)
            case.body.pop("consent", None)
        if case.path.startswith("/trade/quote") and "funding_rate" in case.body:
            case.body["funding_rate"] = "-0.05"  # within every request's maximum
        if case.body.get("agent_id") == AGENT:  # the body names its signer
            case.body["agent_id"] = _signer(case)
    if positive and isinstance(case.query, dict):
        # an opaque token only the daemon mints; its refusals: test_hardening_pagination.py
        case.query.pop("cursor", None)
        since, until = _whole(case.query.get("since")), _whole(case.query.get("until"))
        if since is not None and until is not None and since > until:
            # a window that ends before it starts is a 400 (tests/test_history.py)
            case.query["since"], case.query["until"] = case.query["until"], case.query["since"]
    kwargs["auth"] = _Sign()
