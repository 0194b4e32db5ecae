"""The store's time queries answer right on a thread that has just run the local chain.

solders' LiteSVM (agave 2.2) leaves the x87 register stack full on the thread where a
fresh SVM first runs the Associated Token program: the next x87 instruction there
faults and yields NaN. SQLite compares an INTEGER column with a REAL parameter on the
x87 unit, so ``expires_at > 1795680100.0`` once answered false for a live quote. The
store binds clock readings as whole seconds (`queries.whole`), which is exact for
INTEGER columns and never touches the x87 unit.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from perpd.records import Quote, TradeRequest
from perpd.store import queries as q
from perpd.store._store import connect
from tests.chain.test_local import World

NOW = 1_795_680_100.0  # a frozen clock reading: a float, as the daemon's clock gives


def _book(conn: sqlite3.Connection) -> None:
    """One open request and four live quotes on it, all due 60 s after NOW."""
    t = int(NOW)
    terms = ("req_1", "alice", "BTC-PERP", 1, 10**8, 10, 1000, None)
    request = TradeRequest(*terms, created_at=t, expires_at=t + 60, status="open")
    q.insert_request(conn, request)
    for i in range(4):
        q.insert_quote(conn, Quote(f"quo_{i}", "req_1", f"maker{i}", 0, 10**7, t, t + 60, "live"))


def _on_a_chain_thread(db: Path) -> dict[str, object]:
    """Run the chain's genesis, then the time queries, on one fresh thread."""
    out: dict[str, object] = {}

    def work() -> None:
        conn = connect(db)
        _book(conn)
        World().chain()  # genesis: the Associated Token program's first run
        out["page"] = [x.quote_id for _, x in q.page_live_quotes(conn, "req_1", NOW, 0, 10)]
        out["on_request"] = len(q.live_quotes_on_request(conn, "req_1", NOW, 10))
        out["requests"] = len(q.page_open_requests(conn, None, NOW, 0, 10))
        out["due"] = len(q.quotes_due(conn, NOW + 60)) + len(q.requests_due(conn, NOW + 60))
        conn.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return out


def test_time_queries_after_the_local_chain_ran_on_the_same_thread(tmp_path: Path) -> None:
    got = _on_a_chain_thread(tmp_path / "perpd.db")
    assert got == {
        "page": ["quo_0", "quo_1", "quo_2", "quo_3"],
        "on_request": 4,
        "requests": 1,
        "due": 5,
    }
