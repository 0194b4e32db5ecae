"""What every route shares: the venue, signed-call checks, strict JSON bodies, errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from quart import Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from perpd import auth
from perpd.api._limits import charge_invalid, charge_verified
from perpd.api._models import fields_of
from perpd.api._services import services
from perpd.errors import ApiError, Forbidden, InvalidRequest
from perpd.units import loads
from perpd.venue import Venue

MAX_BODY = 64 * 1024


def venue() -> Venue:
    """The venue of the serving app (`services().venue`, the one most routes need)."""
    return services().venue


def request_target() -> str:
    """The request target exactly as sent (path and ``?query``), which the agent signed."""
    scope = request.scope
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    return (path + (b"?" + query if query else b"")).decode("latin-1")


def signed_by(body: bytes) -> auth.Verified:
    """Who signed this request over ``body`` (SPEC §6's three headers); 401 if no one."""
    return auth.verify(
        request.headers.get("X-Agent-Id"),
        request.headers.get("X-Timestamp"),
        request.headers.get("X-Signature"),
        request.method,
        request_target(),
        body,
        now_ms=venue().now_ms(),
    )


async def verified() -> tuple[auth.Verified, bytes]:
    """Check the three auth headers against the raw body; returns who signed and the body."""
    body = await request.get_data(cache=True)
    assert isinstance(body, bytes)
    v = signed_by(body)
    charge_verified(v.agent_id)
    return v, body


def check_fields(
    data: dict[str, Any], *, required: Iterable[str], optional: Iterable[str] = ()
) -> None:
    """Exactly the known fields: a missing one or an unknown one (a typo) is refused."""
    required = tuple(required)
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
    missing = [f for f in required if f not in data]
    if missing:
        raise InvalidRequest(f"missing field(s): {', '.join(missing)}")


def json_object(body: bytes | str, model: type[msgspec.Struct]) -> dict[str, Any]:
    """The body as a JSON object with exactly the fields of its wire ``model``
    (`perpd.api._models`); the values are parsed by the route (`perpd.units`)."""
    data = loads(body)
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object")
    required, optional = fields_of(model)
    check_fields(data, required=required, optional=optional)
    return data


def acting_agent(data: dict[str, Any], signer: str) -> str:
    """A body ``agent_id`` must be the signer (SPEC §6: otherwise 403)."""
    claimed = data.get("agent_id", signer)
    if claimed != signer:
        raise Forbidden("agent_id in the body differs from X-Agent-Id")
    return signer


def text_field(data: dict[str, Any], field: str, *, max_len: int = 64) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise InvalidRequest(f"{field} must be a non-empty string")
    return value


def error_response(exc: ApiError) -> Response:
    charge_invalid(exc.status)
    resp = jsonify(exc.body())
    resp.status_code = exc.status
    if exc.retry_after_s is not None:
        resp.headers["Retry-After"] = str(exc.retry_after_s)
    return resp


def http_error_response(exc: HTTPException) -> Response:
    """Framework errors (unknown route, wrong method, body too large) in the SPEC shape.

    A 5xx is the daemon's fault, never the caller's: code ``internal`` and a fixed
    message (the traceback goes to the log, never into the body).
    """
    status = exc.code or 400
    if status >= 500:
        code, message = "internal", "internal error; the daemon logged it"
    else:
        code = "not_found" if status == 404 else "invalid_request"
        message = exc.description or exc.name
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        resp.headers["Allow"] = ", ".join(sorted(exc.valid_methods))  # RFC 9110 §15.5.6
    return resp
