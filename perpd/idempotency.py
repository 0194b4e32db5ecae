"""Client ids (issue 13): a retried request or quote returns its first answer.

A ``client_id`` is unique per agent and kind (``request``; ``quote``, which a replace's
new quote shares). "The same body" is the same *parsed* call: the fingerprint hashes
the exact values the router parsed (integers for money and rates, the deadline as
given, the consent), never the raw bytes or the signature headers, which differ on
every retry. So ``"100"`` and ``100.0`` are the same size; ``valid_for`` absent and
``valid_for: 10`` are the same quote. Only a success is remembered (a refusal changed
nothing, and its retry runs again), in the unit that made it, with its status and body.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable
from typing import Any

from perpd.errors import Conflict, InvalidRequest
from perpd.store import quote_controls as qc

CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
KINDS = ("request", "quote")


def parse_client_id(value: object) -> str | None:
    """The optional ``client_id`` field: 1-64 chars of ``[A-Za-z0-9._:-]`` (400 otherwise)."""
    if value is None:
        return None
    if not isinstance(value, str) or not CLIENT_ID.fullmatch(value):
        raise InvalidRequest("client_id must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    return value


def fingerprint(call: str, fields: dict[str, Any]) -> str:
    """The hash of a parsed call: ``call`` names it (``quote`` and ``replace`` share a
    namespace but are never the same body); values are ints, strings or None."""
    text = json.dumps({"call": call, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def once(
    conn: sqlite3.Connection,
    now: int,
    agent_id: str,
    kind: str,
    client_id: str | None,
    print_: str,
    make: Callable[[], tuple[int, dict[str, Any]]],
) -> tuple[int, dict[str, Any]]:
    """``make()``'s (status, body), or the first answer given for this client id.

    Inside one unit of work: a first call makes it and remembers it in the same
    transaction; a retry with the same fingerprint gets the same answer and changes
    nothing; another body under the same id is 409 ``client_id_conflict``."""
    assert kind in KINDS
    if client_id is None:
        return make()
    held = qc.recall_client_id(conn, agent_id, kind, client_id)
    if held is not None:
        held_print, status, body = held
        if held_print != print_:
            raise Conflict(
                f"client_id {client_id!r} was used by {agent_id} for another {kind} "
                "(a different body)",
                code="client_id_conflict",
            )
        return status, body
    status, body = make()
    qc.remember_client_id(conn, agent_id, kind, client_id, print_, status, body, now)
    return status, body
