"""``/openapi.json`` (OpenAPI 3.1), generated from the wire models of `perpd.api._models`.

One table of routes says, for each, its summary, body or query, success model and the
statuses it can refuse with; the schemas come from msgspec, so the document cannot
drift from what the routes accept and answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from msgspec import Struct

from perpd.api import _models as m

_SIGNED: list[dict[str, list[str]]] = [{"X-Agent-Id": [], "X-Timestamp": [], "X-Signature": []}]
_HEADERS = {
    "X-Agent-Id": "base58 ed25519 public key of the agent",
    "X-Timestamp": "unix time in milliseconds, within 30 s of the server clock",
    "X-Signature": "base58 ed25519 signature of "
    "'{X-Timestamp}\\n{METHOD}\\n{path?query}\\n{sha256 hex of the raw body}' (SPEC §6)",
}
_REASONS = {
    400: "invalid request (malformed JSON, wrong types, bad amounts, unknown market, ...)",
    401: "missing, forged, stale or replayed signature",
    403: "acting for another agent",
    404: "not found",
    405: "method not allowed (see Allow)",
    409: "not in a state that allows it",
    413: "body over 64 KiB",
    422: "insufficient collateral",
    429: "rate limited (see Retry-After)",
    503: "oracle, chain or database unavailable (see Retry-After)",
}
_PAGE: list[tuple[str, dict[str, Any]]] = [
    ("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
    ("cursor", {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"}),
]


_HISTORY: list[tuple[str, dict[str, Any]]] = [
    ("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
    _PAGE[1],
    ("since", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}),
    ("until", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}),
    ("market", {"enum": list(m.MARKETS)}),
    ("format", {"enum": ["json", "csv"]}),
]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    ok: type[Struct] | None  # None: not JSON (Prometheus text)
    status: int = 200
    body: type[Struct] | None = None
    query: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    signed: bool = False
    errors: tuple[int, ...] = (429, 503)
    dev: bool = False
    csv: bool = False  # also answers text/csv (``format=csv``)


_TRADE = (400, 401, 403, 404, 409, 422, 429, 503)
ROUTES = [
    Route(
        "post",
        "/trade/request",
        "Ask for a position",
        m.TradeRequest,
        201,
        m.TradeRequestBody,
        signed=True,
        errors=_TRADE,
    ),
    Route(
        "post",
        "/trade/quote",
        "Quote a funding rate",
        m.Quote,
        201,
        m.QuoteBody,
        signed=True,
        errors=_TRADE,
    ),
    Route(
        "post",
        "/trade/accept",
        "Accept a quote",
        m.Accepted,
        body=m.AcceptBody,
        signed=True,
        errors=_TRADE,
    ),
    Route(
        "post",
        "/trade/close",
        "Close (part of) a position",
        m.Closed,
        body=m.CloseBody,
        signed=True,
        errors=_TRADE,
    ),
    Route(
        "post",
        "/trade/liquidate",
        "Liquidate an under-margined position",
        m.Liquidated,
        body=m.LiquidateBody,
        signed=True,
        errors=_TRADE,
    ),
    Route(
        "post",
        "/accounts/{agent_id}/withdraw",
        "Withdraw free collateral",
        m.Account,
        body=m.WithdrawBody,
        signed=True,
        errors=_TRADE,
    ),
    Route(
        "post",
        "/trade/quote/cancel",
        "Cancel a live quote (its maker)",
        m.QuoteCancelled,
        body=m.CancelQuoteBody,
        signed=True,
        errors=_TRADE,
    ),
    Route(
        "post",
        "/trade/quote/replace",
        "Replace a live quote: one unit cancels it and quotes the new terms",
        m.ReplacedQuote,
        201,
        m.ReplaceQuoteBody,
        signed=True,
        errors=_TRADE,
    ),
    Route(
        "post",
        "/trade/request/cancel",
        "Cancel an open request (its requester); its live quotes die with it",
        m.RequestCancelled,
        body=m.CancelRequestBody,
        signed=True,
        errors=_TRADE,
    ),
    Route(
        "post",
        "/maker/protection",
        "Set the caller's maker protection (limits per window, cool-down)",
        m.Protection,
        body=m.ProtectionBody,
        signed=True,
        errors=(400, 401, 403, 429, 503),
    ),
    Route(
        "get",
        "/maker/protection",
        "The caller's maker protection and freeze",
        m.Protection,
        signed=True,
        errors=(400, 401, 429, 503),
    ),
    Route(
        "get",
        "/accounts/{agent_id}",
        "Balances",
        m.Account,
        signed=True,
        errors=(400, 401, 403, 429, 503),
    ),
    Route(
        "get",
        "/events",
        "Events visible to the caller",
        m.EventPage,
        signed=True,
        query=[
            ("since", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}),
            ("limit", {"type": "integer", "minimum": 1, "maximum": 10_000}),
            _PAGE[1],
        ],
        errors=(400, 401, 429, 503),
    ),
    Route(
        "get",
        "/positions",
        "List positions (with agent_id and status closed|liquidated: in the order they "
        "ended, since/until on closed_at)",
        m.PositionPage,
        query=[
            ("agent_id", {"type": "string", "minLength": 1, "maxLength": 64}),
            ("status", {"enum": ["open", "closed", "liquidated"]}),
            *_HISTORY,
        ],
        errors=(400, 429, 503),
        csv=True,
    ),
    Route("get", "/positions/{position_id}", "One position", m.Position, errors=(404, 429, 503)),
    Route(
        "get",
        "/quotes",
        "Live quotes of a request",
        m.QuotePage,
        query=[("request_id", {"type": "string", "minLength": 1, "maxLength": 64}), *_PAGE],
        errors=(400, 429, 503),
    ),
    Route("get", "/quotes/{quote_id}", "One quote, in any status", m.Quote, errors=(404, 429, 503)),
    Route(
        "get",
        "/requests",
        "Open requests",
        m.RequestPage,
        query=[("market", {"enum": list(m.MARKETS)}), *_PAGE],
        errors=(400, 429, 503),
    ),
    Route("get", "/requests/{request_id}", "One request", m.TradeRequest, errors=(404, 429, 503)),
    Route("get", "/markets", "Markets, oracle prices and what is gated", m.Markets),
    Route("get", "/chain", "Which chain holds the money", m.ChainInfo),
    Route(
        "get",
        "/chain/transactions",
        "The newest chain transactions the daemon landed (public: all are on chain)",
        m.ChainTxs,
        query=[
            ("ref", {"type": "string", "minLength": 1, "maxLength": 64}),
            ("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
        ],
        errors=(400, 429, 503),
    ),
    Route("get", "/health", "Health", m.Health),
    Route("get", "/metrics", "Prometheus metrics", None),
    Route(
        "post",
        "/dev/faucet",
        "Dev: credit an agent (--dev only)",
        m.Account,
        body=m.FaucetBody,
        errors=(400, 429, 503),
        dev=True,
    ),
    Route(
        "post",
        "/dev/price",
        "Dev: pin the simulated price (--dev only)",
        m.PricePinned,
        body=m.PriceBody,
        errors=(400, 429, 503),
        dev=True,
    ),
]
# issue 13 (i13-history): the caller's history, signed, cursor-paged on the event seq
ROUTES += [
    Route(
        "get",
        path,
        summary,
        model,
        signed=True,
        query=_HISTORY,
        errors=(400, 401, 403, 429, 503),
        csv=True,
    )
    for path, summary, model in (
        ("/fills", "The caller's fills", m.FillPage),
        ("/funding", "The caller's funding payments", m.FundingPage),
        ("/liquidations", "Liquidations the caller was party to or made", m.LiquidationPage),
    )
]
REQUIRED_QUERY = {("/quotes", "request_id")}


def _ref(model: type[Struct]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(status: int) -> dict[str, Any]:
    resp: dict[str, Any] = {"description": _REASONS[status], "content": _json(_ref(m.Error))}
    if status in (429, 503):
        resp["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    if status == 405:
        resp["headers"] = {"Allow": {"required": True, "schema": {"type": "string"}}}
    return resp


def _operation(r: Route) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "success"}
    ok["content"] = (
        _json(_ref(r.ok)) if r.ok is not None else {"text/plain": {"schema": {"type": "string"}}}
    )
    if r.csv:  # a header row, then one line per item (the JSON's fields)
        ok["content"]["text/csv"] = {"schema": {"type": "string"}}
        ok["headers"] = {"X-Next-Cursor": {"schema": {"type": "string"}}}
    errors = set(r.errors)
    if r.body is not None:
        errors |= {400, 413}
    if r.method == "get" and not r.signed and not r.dev:
        errors.add(401)  # a public read may be signed; a signature that fails is refused
    op: dict[str, Any] = {
        "summary": r.summary,
        "operationId": f"{r.method}{r.path}".replace("/", "_").replace("{", "").replace("}", ""),
        "responses": {str(r.status): ok} | {str(s): _error(s) for s in sorted(errors)},
    }
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 64},
        }
        for name in _path_names(r.path)
    ]
    params += [
        {
            "name": name,
            "in": "query",
            "required": (r.path, name) in REQUIRED_QUERY,
            "schema": schema,
        }
        for name, schema in r.query
    ]
    if params:
        op["parameters"] = params
    if r.signed:
        op["security"] = _SIGNED
    if r.body is not None:
        op["requestBody"] = {"required": True, "content": _json(_ref(r.body))}
    return op


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def document(*, dev: bool = True) -> dict[str, Any]:
    """The whole document; ``dev`` adds ``/dev/*`` (served only with ``--dev``)."""
    routes = [r for r in ROUTES if dev or not r.dev]
    models = {r.ok for r in routes if r.ok} | {r.body for r in routes if r.body}
    models |= {m.Error, m.FundingCurveEvent, *m.WS_MODELS, *m.PUBLIC_WS_MODELS}
    _, schemas = msgspec.json.schema_components(
        sorted(models, key=lambda t: t.__name__), ref_template="#/components/schemas/{name}"
    )
    for name, rules in m.BODY_RULES.items():
        schemas[name] |= rules
    schemas["TradeRequestBody"]["properties"]["nonce"]["anyOf"][0]["maximum"] = m.NONCE_MAX
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        paths.setdefault(r.path, {})[r.method] = _operation(r)
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document",
            "operationId": "get_openapi",
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}
            },
        }
    }
    paths["/ws"] = {
        "get": {
            "summary": "WebSocket: login, subscribe, events in order, quotes (SPEC §6)",
            "operationId": "get_ws",
            "x-websocket": {
                "client": [
                    f"#/components/schemas/{t.__name__}"
                    for t in (m.WsAuth, m.WsSubscribe, m.WsQuote, m.WsCancel, m.WsReplace, m.WsPing)
                ],
                "server": [
                    f"#/components/schemas/{t.__name__}"
                    for t in (
                        m.WsAuthOk,
                        m.WsEvent,
                        m.WsQuoteAck,
                        m.WsCancelAck,
                        m.WsPong,
                        m.WsError,
                    )
                ],
                "close_codes": {
                    "4002": "no heartbeat: a cancel-on-disconnect socket was silent too long",
                    "1000": "normal",
                    "1001": "shutting down",
                    "1008": "login failed",
                    "1009": "message too large",
                    "1011": "internal error",
                    "4001": "too far behind: resubscribe",
                },
            },
            "responses": {
                "400": {"description": "not a WebSocket upgrade", "content": _json(_ref(m.Error))}
            },
        }
    }
    paths["/ws/public"] = {
        "get": {
            "summary": "WebSocket, no login: public events in order, resumable (docs/api.md)",
            "operationId": "get_ws_public",
            "x-websocket": {
                "client": [
                    f"#/components/schemas/{t.__name__}" for t in (m.WsPublicSubscribe, m.WsPing)
                ],
                "server": [
                    f"#/components/schemas/{t.__name__}"
                    for t in (m.WsHello, m.WsEvent, m.WsPong, m.WsError)
                ],
                "close_codes": {
                    "1001": "shutting down",
                    "1008": "no subscribe within 10 s",
                    "1009": "message too large",
                    "1011": "internal error",
                    "4001": "too far behind: resubscribe",
                },
            },
            "responses": {
                "400": {"description": "not a WebSocket upgrade", "content": _json(_ref(m.Error))},
                "503": {
                    "description": "public socket caps reached",
                    "content": _json(_ref(m.Error)),
                },
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "perpd",
            "version": "1",
            "description": "Peer-to-peer perpetual futures where agents are the "
            "liquidity. Amounts are decimal strings (numbers accepted on the way in). "
            "A public read may carry the three signature headers: it then counts on the "
            "agent's rate instead of the address's unsigned rate (docs/api.md).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                name: {"type": "apiKey", "in": "header", "name": name, "description": text}
                for name, text in _HEADERS.items()
            },
        },
    }
