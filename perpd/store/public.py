"""Reads for the public stream (``GET /ws/public``): the events it may replay."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from perpd.records import Event


def public_events(
    conn: sqlite3.Connection,
    markets: Iterable[str],
    types: Iterable[str],
    since: int,
    limit: int,
    until: int,
) -> list[Event]:
    """Events in ``(since, until]`` of ``markets`` that are public or of ``types`` (the
    private types the stream projects), in ``seq`` order, without their audience (the
    stream shows none). A walk of the primary key from ``since``."""
    names, kinds = list(markets), list(types)
    rows = conn.execute(
        "SELECT seq, ts, type, market, public, data FROM events "
        f"WHERE seq > ? AND seq <= ? AND market IN ({','.join('?' * len(names))}) "
        f"AND (public = 1 OR type IN ({','.join('?' * len(kinds))})) ORDER BY seq LIMIT ?",
        (since, until, *names, *kinds, limit),
    )
    return [
        Event(seq, ts, type_, market, bool(public), (), json.loads(data))
        for seq, ts, type_, market, public, data in rows
    ]
