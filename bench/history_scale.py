"""What issue 13's history and funding curve cost, measured on the real store code.

- ``page_ms``: one page of 500 fills for an agent with ``--rows`` history rows (and as
  many other events of its own in between), first page, middle, last; and a first page
  with ``since`` half-way through (rows before it are read and skipped: residual filter).
- ``bulk_funding_ms``: `queries.append_events_bulk` of ``--payments`` funding_settled
  events (two audience rows and two history rows each), and without the history rows.
- the ratios: ``bulk_funding_ratio`` (with the history rows over without) and
  ``page_last_over_first`` (the last page's time over the first's).
- ``curve_us``: `CurveBook.curve` of one market holding ``--quotes`` live quotes over
  five terms (what ``GET /markets`` computes per market).

    python bench/history_scale.py [--rows 100000] [--payments 20000] [--quotes 5000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from perpd.funding_curve import CurveBook
from perpd.records import Event
from perpd.store import _store
from perpd.store import queries as q
from perpd.store.history import CurveSnapshot, Window, page_history

AGENT, MAKER = "A" * 44, "M" * 44


def _fill(i: int) -> dict[str, Any]:
    return {
        "position_id": f"pos_{i}",
        "request_id": f"req_{i}",
        "quote_id": f"quo_{i}",
        "market": "BTC-PERP",
        "requester": AGENT,
        "maker": MAKER,
        "side": "long",
        "size_usdc": "1000.000000",
        "entry_price": "50000.00000000",
        "funding_rate": "0.0005",
        "leverage": 10,
        "requester_collateral_usdc": "100.000000",
        "maker_collateral_usdc": "100.000000",
        "open_fee_usdc": "0.500000",
        "opened_at": 1_000 + i,
        "expires_at": None,
    }


def _ms(fn: Any, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return round(best * 1000, 2)


def pages(conn: sqlite3.Connection, rows: int) -> dict[str, float]:
    conn.execute("BEGIN")
    for i in range(rows):
        q.append_event(conn, 1_000 + i, "quote", {"quote_id": f"q{i}"}, market="BTC-PERP",
                       audience=[AGENT])  # fmt: skip
        q.append_event(conn, 1_000 + i, "position_opened", _fill(i), market="BTC-PERP",
                       audience=[AGENT, MAKER])  # fmt: skip
    conn.execute("COMMIT")
    last = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    out = {}
    for name, after in (("first", 0), ("middle", last // 2), ("last", last - 1200)):
        w = Window(after, 501)
        out[f"page_{name}_ms"] = _ms(lambda w=w: page_history(conn, AGENT, "fill", w))
    w = Window(0, 501, since=1_000 + rows // 2)
    out["page_since_half_ms"] = _ms(lambda: page_history(conn, AGENT, "fill", w))
    return out


def bulk_funding(conn: sqlite3.Connection, payments: int) -> dict[str, float]:
    events = [
        ("BTC-PERP", {"position_id": f"p{i}", "amount_usdc": "0.500000", "payer": f"r{i % 999}",
                      "receiver": f"m{i % 99}"}, (f"r{i % 999}", f"m{i % 99}"))
        for i in range(payments)
    ]  # fmt: skip

    def once() -> float:
        conn.execute("BEGIN")
        t = time.perf_counter()
        q.append_events_bulk(conn, 5_000, "funding_settled", events)
        took = time.perf_counter() - t
        conn.execute("ROLLBACK")
        return took

    with_history = min(once() for _ in range(3))
    kind, q.history_kind = q.history_kind, lambda *_: None  # the same, without history rows
    try:
        without = min(once() for _ in range(3))
    finally:
        q.history_kind = kind
    return {
        "bulk_funding_ms": round(with_history * 1000, 1),
        "bulk_funding_ms_without_history": round(without * 1000, 1),
    }


def curve(quotes: int) -> dict[str, float]:
    book = CurveBook()
    terms = [None, 3600, 86400, 7 * 86400, 30 * 86400]
    requests = [(f"r{i}", "BTC-PERP", terms[i % 5]) for i in range(quotes)]
    book.load(CurveSnapshot(0, requests, [], []))
    book.apply(
        Event(i + 1, 0, "quote", "BTC-PERP", False, (),
              {"quote_id": f"q{i}", "request_id": f"r{i}", "funding_rate": f"0.00{i % 9}",
               "expires_at": 10**9})
        for i in range(quotes)
    )  # fmt: skip
    n = 200
    t = time.perf_counter()
    for _ in range(n):
        book.curve("BTC-PERP", 0)
    return {"curve_us": round((time.perf_counter() - t) / n * 1e6, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--payments", type=int, default=20_000)
    p.add_argument("--quotes", type=int, default=5_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        conn = _store.connect(Path(tmp) / "bench.db")
        conn.pending = None
        out = {"rows": args.rows, "payments": args.payments, "quotes": args.quotes}
        out |= pages(conn, args.rows)
        out |= bulk_funding(conn, args.payments)
        out |= curve(args.quotes)
        conn.close()
    # ratios against baselines of the same run: the funding batch without its history
    # rows, and the first page (paging deeper must not cost more)
    out["bulk_funding_ratio"] = round(
        out["bulk_funding_ms"] / out["bulk_funding_ms_without_history"], 2
    )
    out["page_last_over_first"] = round(out["page_last_ms"] / out["page_first_ms"], 2)
    print(
        f"funding batch with history rows / without: {out['bulk_funding_ratio']}; "
        f"last page / first page: {out['page_last_over_first']}"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
