"""``perpd inspect``: look into a state file while the daemon runs, never writing it.

    perpd inspect [--db PATH] [--json] positions [--status S] [--agent ID] [--limit N]
    perpd inspect agents [--limit N]
    perpd inspect requests [--status S] [--limit N]
    perpd inspect events [--since SEQ] [--limit N] [--follow]
    perpd inspect books
    perpd inspect chain

Tables on a terminal; JSON otherwise (or with ``--json``): one object per line for the
lists, one object for ``books`` and ``chain``. Amounts are decimal USDC strings, as on
the API. Each view reads one snapshot on a read-only connection. Exit status: 0, 1 when
``books`` finds a problem (as ``perpd verify``), 2 for a missing database.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TextIO

from perpd.config import Config
from perpd.records import PositionStatus, RequestStatus
from perpd.store import chain as qc
from perpd.store import inspect as si
from perpd.store import queries as q
from perpd.units import format_usdc, iso
from perpd.views import account_view, position_view, request_view

HELP = "look into a state file (read-only; the daemon may be running)"
FOLLOW_POLL_S = 0.2  # how often --follow looks for newly committed events
PAGE = 500  # rows read per query
REQUEST_FILTERS = (RequestStatus.OPEN, RequestStatus.FILLED, RequestStatus.EXPIRED)

Row = dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=Config.db)
    parser.add_argument("--json", action="store_true", help="JSON even on a terminal")
    sub = parser.add_subparsers(dest="view", required=True)
    pos = sub.add_parser("positions", help="positions, oldest first")
    pos.add_argument("--status", choices=[s.value for s in PositionStatus])
    pos.add_argument("--agent", help="only those where this agent is a side")
    agents = sub.add_parser("agents", help="accounts: free and locked collateral")
    req = sub.add_parser("requests", help="trade requests, oldest first")
    req.add_argument("--status", choices=[s.value for s in REQUEST_FILTERS])
    ev = sub.add_parser("events", help="the event log, in seq order")
    ev.add_argument("--since", type=int, default=0, metavar="SEQ", help="after this seq")
    ev.add_argument("--follow", action="store_true", help="then print events as they commit")
    for p in (pos, agents, req, ev):
        p.add_argument("--limit", type=int, default=100, help="at most N rows (0: all)")
    sub.add_parser("books", help="conservation and the ledger totals (as perpd verify)")
    sub.add_parser("chain", help="the local chain's metadata, recent transactions, outbox")


def table(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """``rows`` as aligned text columns under a header."""
    cells = [[str(c) for c in columns]]
    cells += [["" if r.get(c) is None else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def _pages(fetch: Callable[[Any, int], list[tuple[Any, Row]]], limit: int) -> Iterable[Row]:
    """Rows from keyset pages ``fetch(after, n)`` → [(key, row)], up to ``limit`` (0: all)."""
    after: Any = None
    left = limit or -1
    while left != 0:
        n = PAGE if left < 0 else min(PAGE, left)
        page = fetch(after, n)
        for key, row in page:
            after = key
            yield row
        left = left - len(page) if left > 0 else left
        if len(page) < n:
            return


def _positions(args: argparse.Namespace, conn: sqlite3.Connection) -> list[Row]:
    def fetch(after: int | None, n: int) -> list[tuple[Any, Row]]:
        rows = q.page_positions(conn, args.agent, args.status, after or 0, n)
        return [(k, position_view(p, None)) for k, p in rows]

    return list(_pages(fetch, args.limit))


def _agents(args: argparse.Namespace, conn: sqlite3.Connection) -> list[Row]:
    def fetch(after: str | None, n: int) -> list[tuple[Any, Row]]:
        rows = si.page_accounts(conn, after or "", n)
        return [(a.agent_id, account_view(a) | {"open_positions": k}) for a, k in rows]

    return list(_pages(fetch, args.limit))


def _requests(args: argparse.Namespace, conn: sqlite3.Connection) -> list[Row]:
    def fetch(after: int | None, n: int) -> list[tuple[Any, Row]]:
        rows = q.page_requests(conn, args.status, after or 0, n)
        return [(k, request_view(r)) for k, r in rows]

    return list(_pages(fetch, args.limit))


def _event_row(e: Any) -> Row:
    return {
        "seq": e.seq,
        "ts": e.ts,
        "time": iso(e.ts),
        "type": e.type,
        "market": e.market,
        "public": e.public,
        "audience": list(e.audience),
        "data": e.data,
    }


def _events(since: int, limit: int, conn: sqlite3.Connection) -> list[Row]:
    def fetch(after: int | None, n: int) -> list[tuple[Any, Row]]:
        return [(e.seq, _event_row(e)) for e in q.events_after(conn, after or since, n)]

    return list(_pages(fetch, limit))


def books(conn: sqlite3.Connection) -> Row:
    """The ledger totals in USDC and every problem `perpd verify` would report."""
    totals = {k: format_usdc(v) for k, v in q.ledger(conn).items()}
    return {"books": totals, "problems": q.verify(conn), "last_seq": si.last_seq(conn)}


def chain(conn: sqlite3.Connection) -> Row:
    local = si.has_local_chain(conn)
    return {
        "local_chain": local,
        "meta": si.chain_meta(conn) if local else {},
        "chain_accounts": qc.count_chain_accounts(conn) if local else 0,
        "recent_transactions": qc.recent_chain_txs(conn, 10) if local else [],
        "outbox": si.outbox_depth(conn),
    }


COLUMNS: dict[str, tuple[str, ...]] = {
    "positions": (
        "position_id",
        "market",
        "side",
        "size_usdc",
        "entry_price",
        "leverage",
        "requester_collateral_usdc",
        "maker_collateral_usdc",
        "funding_paid_usdc",
        "realized_pnl_usdc",
        "status",
        "requester",
        "maker",
    ),
    "agents": ("agent_id", "free_usdc", "locked_usdc", "open_positions", "withdrawals"),
    "requests": (
        "request_id",
        "agent_id",
        "market",
        "side",
        "size_usdc",
        "leverage",
        "status",
        "expires_at_iso",
        "position_id",
    ),
    "events": ("seq", "time", "type", "market", "public", "data"),
}


def _print_rows(rows: list[Row], view: str, as_json: bool, out: TextIO) -> None:
    if as_json:
        for r in rows:
            out.write(json.dumps(r, separators=(",", ":")) + "\n")
    elif rows:
        shown = [r | {"data": json.dumps(r["data"])} if view == "events" else r for r in rows]
        out.write(table(shown, COLUMNS[view]) + "\n")
    out.flush()


def _print_object(obj: Row, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        return
    for key, value in obj.items():
        if isinstance(value, dict):
            out.write(f"{key}:\n")
            for k, v in value.items():
                out.write(f"  {k:<14} {v}\n")
        elif isinstance(value, list):
            out.write(f"{key}: {len(value)}\n")
            for item in value:
                out.write(f"  {json.dumps(item) if isinstance(item, dict) else item}\n")
        else:
            out.write(f"{key}: {value}\n")


def _follow(args: argparse.Namespace, as_json: bool, out: TextIO) -> None:
    """Print events after ``--since`` as they commit, until interrupted."""
    since = args.since
    while True:
        rows = si.read(args.db, partial(_events, since, PAGE))
        if rows:
            _print_rows(rows, "events", as_json, out)
            since = rows[-1]["seq"]
        else:
            time.sleep(FOLLOW_POLL_S)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    as_json = args.json or not out.isatty()
    views: dict[str, Callable[[sqlite3.Connection], list[Row]]] = {
        "positions": partial(_positions, args),
        "agents": partial(_agents, args),
        "requests": partial(_requests, args),
    }
    try:
        if args.view in views:
            _print_rows(si.read(args.db, views[args.view]), args.view, as_json, out)
        elif args.view == "events":
            limit = 0 if args.follow else args.limit
            rows = si.read(args.db, partial(_events, args.since, limit))
            _print_rows(rows, "events", as_json, out)
            if args.follow:
                args.since = rows[-1]["seq"] if rows else args.since
                _follow(args, as_json, out)
        elif args.view == "books":
            report = si.read(args.db, books)
            _print_object(report, as_json, out)
            return 1 if report["problems"] else 0
        else:
            _print_object(si.read(args.db, chain), as_json, out)
    except FileNotFoundError as exc:
        print(f"perpd inspect: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
