"""Cursor pages shared by the lists: opaque cursors bound to their list, and (issue 13)
the history window (``limit``, ``cursor``, ``since``, ``until``, ``market``,
``format``) with its JSON or csv answer."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

from quart import Response, jsonify, request

from perpd.errors import InvalidRequest
from perpd.history_views import to_csv
from perpd.markets import get_market
from perpd.store.history import Window
from perpd.units import parse_int

_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,40}")
PAGE_DEFAULT, PAGE_MAX = 100, 500  # the history lists' limit: default and maximum
FORMATS = ("json", "csv")
TIME_MAX = 10**18 - 1  # what parse_int reads (18 digits), as GET /events' since
CSV_TYPE = "text/csv; charset=utf-8"


def encode_cursor(kind: str, key: int) -> str:
    """An opaque page cursor: which list it belongs to and the last key served."""
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, text: str) -> int:
    try:
        if not _CURSOR.fullmatch(text):
            raise ValueError
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        tag, _, key = raw.partition(":")
        if tag != kind or not key.isdigit() or len(key) > 19:
            raise ValueError
        return int(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest(f"cursor is not a cursor of this list ({kind})") from None


def query_window(
    kind: str, sizes: tuple[int, int] = (PAGE_DEFAULT, PAGE_MAX)
) -> tuple[Window, str]:
    """``(window, format)`` from ``limit`` (``sizes``: default, maximum), ``cursor`` (of
    list ``kind`` only), ``since``, ``until``, ``market`` and ``format``; any bad one is
    a 400 naming it."""
    args = request.args
    limit = parse_int(args.get("limit", str(sizes[0])), "limit", 1, sizes[1])
    cursor = args.get("cursor")
    after = 0 if cursor is None else decode_cursor(kind, cursor)
    since = None if "since" not in args else parse_int(args["since"], "since", 0, TIME_MAX)
    until = None if "until" not in args else parse_int(args["until"], "until", 0, TIME_MAX)
    if since is not None and until is not None and since > until:
        raise InvalidRequest(f"since ({since}) is after until ({until})")
    market = args.get("market")
    if market is not None:
        get_market(market)
    fmt = args.get("format", "json")
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}")
    return Window(after, limit, market, since, until), fmt


def listing(
    name: str,
    kind: str,
    fields: Sequence[str],
    rows: Sequence[tuple[int, dict[str, Any]]],
    w: Window,
    fmt: str,
) -> Response:
    """A page of ``(key, item)`` rows (fetched ``limit + 1``) as JSON ``{name: [...],
    next_cursor}`` or csv (the cursor in the ``X-Next-Cursor`` header)."""
    more = len(rows) > w.limit
    items = [item for _, item in rows[: w.limit]]
    cursor = encode_cursor(kind, rows[w.limit - 1][0]) if more else None
    if fmt == "csv":
        resp = Response(to_csv(fields, items), content_type=CSV_TYPE)
        if cursor is not None:
            resp.headers["X-Next-Cursor"] = cursor
        return resp
    return jsonify({name: items, "next_cursor": cursor})
