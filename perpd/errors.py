"""The daemon's error tree: every refusal an agent can see, with its HTTP status and SPEC code.

    PerpdError
    └── ApiError                 (status, code, message) -> {"error": {"code", "message"}}
        ├── InvalidRequest       400 invalid_request
        ├── UnknownMarket        400 unknown_market
        ├── LeverageTooHigh      400 leverage_too_high
        ├── RateAboveMax         400 rate_above_max
        ├── SelfQuote            400 self_quote
        ├── Unauthorized         401 unauthorized
        ├── Forbidden            403 forbidden
        ├── NotFound             404 not_found
        ├── Conflict             409 request_expired | quote_expired | request_filled |
        │                            position_not_open | not_liquidatable
        ├── InsufficientCollateral 422 insufficient_collateral
        ├── OracleUnavailable    503 oracle_unavailable
        ├── ChainUnconfirmed     503 chain_unavailable (not confirmed in time)
        ├── RateLimited          429 rate_limited (a rate limit or a cap; Retry-After)
        └── Unavailable          503 unavailable (database busy or full; Retry-After)

Lower-layer errors (sqlite3, HTTP, RPC) are translated into these at one boundary each,
with ``raise ... from exc``; anything else that escapes a handler is a bug and a 500.
"""

from __future__ import annotations


class PerpdError(Exception):
    """Root of every error the daemon raises on purpose."""


class ApiError(PerpdError):
    """A refusal shown to the caller: nothing was changed."""

    status: int = 400
    code: str = "invalid_request"
    retry_after_s: int | None = None  # sent as Retry-After: when a retry may succeed

    def __init__(
        self, message: str, *, code: str | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


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
    """409: the object exists but is not in a state that allows this call (code says which)."""

    status, code = 409, "conflict"


class InsufficientCollateral(ApiError):
    status, code = 422, "insufficient_collateral"


class OracleUnavailable(ApiError):
    status, code = 503, "oracle_unavailable"


class RateLimited(ApiError):
    """429: an agent's or an address's rate, or a cap on open requests or live quotes."""

    status, code = 429, "rate_limited"
    retry_after_s = 1


class Unavailable(ApiError):
    """503: the database could not take the call now (busy, full, I/O); nothing changed."""

    status, code = 503, "unavailable"
    retry_after_s = 1


class ChainUnconfirmed(Unavailable):
    """503: the chain did not confirm the action in time; nothing was applied (yet: the
    submitter keeps at it, and a retried call answers with what landed, never twice).
    An `Unavailable`: services back off and retry it as they do a busy database."""

    status, code = 503, "chain_unavailable"
    retry_after_s = 2
