"""The OpenAPI 3 description served at ``/openapi.json`` (the wire contract of SPEC §6)."""

from __future__ import annotations

from typing import Any

_SIGNED: list[dict[str, list[str]]] = [{"agentSignature": []}]


def _op(
    summary: str,
    *,
    signed: bool = False,
    body: list[str] | None = None,
    query: list[str] | None = None,
    ok: int = 200,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(ok): {"description": "success"},
            "4XX": {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if signed:
        op["security"] = _SIGNED
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {f: {} for f in body}}
                }
            },
        }
    if query:
        op["parameters"] = [{"name": q, "in": "query", "schema": {"type": "string"}} for q in query]
    return op


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {
        "/trade/request": {
            "post": _op(
                "Ask for a position",
                signed=True,
                ok=201,
                body=[
                    "agent_id",
                    "market",
                    "side",
                    "size_usdc",
                    "leverage",
                    "max_funding_rate",
                    "duration",
                    "expires_in",
                ],
            )
        },
        "/trade/quote": {
            "post": _op(
                "Quote a funding rate",
                signed=True,
                ok=201,
                body=["request_id", "agent_id", "funding_rate", "collateral_usdc", "valid_for"],
            )
        },
        "/trade/accept": {
            "post": _op("Accept a quote", signed=True, body=["request_id", "quote_id", "agent_id"])
        },
        "/trade/close": {
            "post": _op(
                "Close (part of) a position", signed=True, body=["position_id", "size_percent"]
            )
        },
        "/trade/liquidate": {
            "post": _op("Liquidate an under-margined position", signed=True, body=["position_id"])
        },
        "/positions": {
            "get": _op("List positions", query=["agent_id", "status", "limit", "cursor"])
        },
        "/positions/{position_id}": {"get": _op("One position")},
        "/quotes": {
            "get": _op("Live quotes of a request", query=["request_id", "limit", "cursor"])
        },
        "/requests": {"get": _op("Open requests", query=["market", "limit", "cursor"])},
        "/requests/{request_id}": {"get": _op("One request")},
        "/markets": {"get": _op("Markets and oracle prices")},
        "/accounts/{agent_id}": {"get": _op("Balances", signed=True)},
        "/accounts/{agent_id}/withdraw": {
            "post": _op("Withdraw free collateral", signed=True, body=["amount_usdc"])
        },
        "/events": {
            "get": _op(
                "Events visible to the caller", signed=True, query=["since", "limit", "cursor"]
            )
        },
        "/chain": {"get": _op("Which chain holds the money: mode, program id, mint, vault, slot")},
        "/health": {"get": _op("Health")},
        "/metrics": {"get": _op("Prometheus metrics")},
        "/dev/faucet": {"post": _op("Dev: credit an agent", body=["agent_id", "amount_usdc"])},
        "/dev/price": {"post": _op("Dev: pin the simulated price", body=["market", "price"])},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "perpd", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "agentSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Signature",
                    "description": "base58 ed25519 signature of "
                    "'{X-Timestamp}\\n{METHOD}\\n{path}\\n{sha256 hex of body}', "
                    "with X-Agent-Id and X-Timestamp (unix ms)",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            },
        },
    }
