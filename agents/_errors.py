"""The SDK's error tree: every refusal the daemon can send, plus the SDK's own failures.

    AgentError
    ├── ApiError                    the daemon refused the call (status, code, message)
    │   ├── InvalidRequest          400 invalid_request
    │   ├── UnknownMarket           400 unknown_market
    │   ├── LeverageTooHigh         400 leverage_too_high
    │   ├── RateAboveMax            400 rate_above_max
    │   ├── SelfQuote               400 self_quote
    │   ├── Unauthorized            401 unauthorized
    │   ├── Forbidden               403 forbidden
    │   ├── NotFound                404 not_found
    │   ├── Conflict                409 (any other 409 code)
    │   │   ├── RequestExpired      409 request_expired
    │   │   ├── QuoteExpired        409 quote_expired
    │   │   ├── RequestFilled       409 request_filled
    │   │   ├── PositionNotOpen     409 position_not_open
    │   │   ├── NotLiquidatable     409 not_liquidatable
    │   │   └── NonceUsed           409 nonce_used
    │   ├── InsufficientCollateral  422 insufficient_collateral
    │   └── OracleUnavailable       503 oracle_unavailable
    ├── TransportError              the daemon could not be reached, or the link broke
    │   └── ConnectionLost          a WebSocket call's connection dropped before its answer
    ├── ProtocolError               the daemon answered something the SPEC does not allow
    └── KeypairError                a keypair file is missing, malformed or inconsistent

A refusal (`ApiError`) means the daemon changed nothing, so the agent may decide what
to do next; a `TransportError` means the outcome of a mutating call is unknown and the
agent should look before retrying (SPEC §6: a refused call changes no state, but a call
whose answer was lost may have succeeded). Lower-layer errors (httpx, httpx-ws, JSON,
solders) are translated into these at one boundary each, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any


class AgentError(Exception):
    """Root of every error the SDK raises on purpose."""


class ApiError(AgentError):
    """The daemon refused a call; ``code`` is the SPEC error code. Nothing was changed."""

    status: int = 400
    code: str = "invalid_request"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.message}"


class InvalidRequest(ApiError):
    status, code = 400, "invalid_request"


class UnknownMarket(ApiError):
    status, code = 400, "unknown_market"


class LeverageTooHigh(ApiError):
    status, code = 400, "leverage_too_high"


class RateAboveMax(ApiError):
    status, code = 400, "rate_above_max"


class SelfQuote(ApiError):
    status, code = 400, "self_quote"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    """409: the object is not in a state that allows the call; ``code`` says which."""

    status, code = 409, "conflict"


class RequestExpired(Conflict):
    code = "request_expired"


class QuoteExpired(Conflict):
    code = "quote_expired"


class RequestFilled(Conflict):
    code = "request_filled"


class PositionNotOpen(Conflict):
    code = "position_not_open"


class NotLiquidatable(Conflict):
    code = "not_liquidatable"


class NonceUsed(Conflict):
    """The request's nonce was used before by this agent (pick another)."""

    code = "nonce_used"


class InsufficientCollateral(ApiError):
    status, code = 422, "insufficient_collateral"


class OracleUnavailable(ApiError):
    status, code = 503, "oracle_unavailable"


class TransportError(AgentError):
    """The daemon could not be reached or the connection broke mid-call."""


class ConnectionLost(TransportError):
    """A WebSocket connection dropped while a call on it waited for its answer."""


class ProtocolError(AgentError):
    """The daemon's answer does not follow the wire contract (SPEC §6)."""


class KeypairError(AgentError):
    """A keypair file cannot be used."""


_BY_CODE: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        UnknownMarket,
        LeverageTooHigh,
        RateAboveMax,
        SelfQuote,
        Unauthorized,
        Forbidden,
        NotFound,
        RequestExpired,
        QuoteExpired,
        RequestFilled,
        PositionNotOpen,
        NotLiquidatable,
        NonceUsed,
        InsufficientCollateral,
        OracleUnavailable,
    )
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InsufficientCollateral,
    503: OracleUnavailable,
}


def error_from_wire(status: int | None, body: Any) -> ApiError:
    """The exception for an error answer: by SPEC code first, then by HTTP status.

    ``body`` is the decoded ``{"error": {"code", "message"}}`` object (HTTP), or the
    ``error`` member itself (WebSocket). A code the SDK does not know yet still comes
    back as an `ApiError` (or the class of its status) carrying that code, so newer
    daemons never crash older agents.
    """
    err = body.get("error", body) if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    message = err.get("message") if isinstance(err, dict) else None
    if not isinstance(message, str):
        message = "no message"
    cls = _BY_CODE.get(code) if isinstance(code, str) else None
    if cls is None:
        cls = _BY_STATUS.get(status or 0, ApiError)
    return cls(
        message,
        status=status if status is not None else cls.status,
        code=code if isinstance(code, str) else cls.code,
    )
