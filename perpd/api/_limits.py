"""Rate limits at the router's door (docs/limits.md): per address before any work,
per agent once a signature has verified (so forged calls cannot drain a victim's
bucket). A refusal is 429 `rate_limited` with Retry-After and spends nothing, not
even the call's signature: the agent may send the same call again after the wait.
"""

from __future__ import annotations

from typing import Any, cast

from quart import has_request_context, request

from perpd.api._services import services
from perpd.errors import RateLimited, Unauthorized
from perpd.ratelimit import Limiter, address_key, retry_after

# Endpoints that verify a signature: limited per agent, not by the unsigned-call bucket.
SIGNED_ENDPOINTS = frozenset(
    {
        "trade.post_request",
        "trade.post_quote",
        "trade.post_accept",
        "trade.post_close",
        "trade.post_liquidate",
        "trade.post_withdraw",
        "reads.get_account",
        "reads.get_events",
    }
)
UNLIMITED_BLUEPRINTS = frozenset({"dev"})  # --dev only: test and bench tooling


def limiter() -> Limiter:
    return services().limiter


async def limit_address() -> None:
    """``before_request``: every HTTP call takes a token from its address's bucket, and
    an unsigned one also from the address's bucket for unsigned calls. A public read
    may be signed (docs/limits.md): it then counts on its agent's bucket instead, so
    many agents on one host are not held to one anonymous client's rate."""
    if request.blueprint in UNLIMITED_BLUEPRINTS:
        return
    lim = limiter()
    key = address_key(request.remote_addr)
    wait = lim.address.take(key)
    if not wait and request.endpoint not in SIGNED_ENDPOINTS:
        if (
            request.url_rule is not None  # a read that exists: else its 404/405 answers
            and request.method in ("GET", "HEAD")
            and "X-Agent-Id" in request.headers
        ):
            _signed_read(lim, key)
            return
        wait = lim.public.take(key)
    if wait:
        raise _address_refusal(wait)


def _address_refusal(wait: float) -> RateLimited:
    return RateLimited(
        f"too many calls from this address; retry in {retry_after(wait)} s",
        retry_after_s=retry_after(wait),
    )


def _signed_read(lim: Limiter, key: str) -> None:
    """A signed public read: verified, then charged to its agent. A signature that does
    not verify is charged to the address as unsigned, then refused 401 (the caller
    meant to sign: a silent downgrade would hide its bug)."""
    from perpd.api._common import signed_by  # _common imports this module

    try:
        v = signed_by(b"")
    except Unauthorized:
        if wait := lim.public.take(key):
            raise _address_refusal(wait) from None
        raise
    charge_verified(v.agent_id)


AGENT_KEY = "perpd.agent"  # the scope's verified agent, for `charge_invalid`


def charge_agent(agent_id: str) -> None:
    """One signed call (HTTP or a socket quote) of ``agent_id``; 429 past its rate."""
    wait = limiter().agent.take(agent_id)
    if wait:
        raise RateLimited(
            f"too many calls by agent {agent_id[:8]}…; retry in {retry_after(wait)} s",
            retry_after_s=retry_after(wait),
        )


def charge_verified(agent_id: str) -> None:
    """A signed HTTP call of ``agent_id`` whose signature verified: charged, and noted
    on the request for `charge_invalid`."""
    cast(dict[str, Any], request.scope)[AGENT_KEY] = agent_id
    charge_agent(agent_id)


def charge_invalid(status: int) -> None:
    """A verified call refused 400 (malformed or invalid: the caller's own doing) costs
    its agent `invalid_call_cost` tokens in all, so a loop of bad calls runs out of its
    rate ten times sooner and then waits in the tarpit like any 429 (an honest agent's
    rare mistake costs nothing it would notice). Unverified callers are not charged:
    a forger must not drain the agent it names."""
    if status != 400 or not has_request_context():  # a socket's refusals: `_ws`
        return
    agent = cast(dict[str, Any], request.scope).get(AGENT_KEY)
    if isinstance(agent, str):
        charge_invalid_of(agent)


def charge_invalid_of(agent_id: str) -> None:
    """The rest of `invalid_call_cost` for a call of ``agent_id`` (HTTP or socket)
    already charged one token and refused 400."""
    lim = limiter()
    lim.agent.spend(agent_id, lim.limits.invalid_call_cost - 1)
