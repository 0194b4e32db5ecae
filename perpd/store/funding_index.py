"""A funding tick's audience and history rows, indexed in one sorted pass after the tick.

A tick appends one ``funding_settled`` per position. Its rows in ``agent_history``
(agent, kind, seq; and by market: also how the readers find a payment's audience, which
``event_audience`` does not hold since migration 10) land at every agent's end of those
trees, so each unit that wrote them rewrote a page per agent it touched: most of a
tick's time (docs/decisions.md, "one sorted pass per tick"). The
funding scheduler's units therefore write only the events, and record the seqs they
left unindexed in ``funding_unindexed`` (migration 9, one row: ``lo..hi``); after the
tick the rows are written agent by agent, in key order, a slice per unit. Until then
the readers of those indexes (`queries.events_visible_to`, the events' audiences,
`history.page_history`) also take the range's funding events from their data (payer,
receiver: exactly the audience a settlement has), so nothing is ever missing; the
inserts ignore rows already there, so a pass cut short by a crash is redone from the
log (`Backlog.load`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import msgspec

from perpd.records import Event

_encode = msgspec.json.Encoder().encode


def ascii_json(doc: Any) -> str:
    """``doc`` as compact JSON text, for a tick's documents, whose strings are ASCII by
    construction (agent and position ids, markets, decimal amounts): there it is byte
    for byte ``json.dumps(doc, separators=(",", ":"))``, in a fraction of the time (the
    events' JSON was about a tenth of a tick's writer time)."""
    return _encode(doc).decode()


# (agent, seq, market, ts, position_id): one agent's audience and history row of an event
IndexRow = tuple[str, int, str | None, int, str | None]

# SQL for "this funding event is in the unindexed range" (e: the events table)
UNINDEXED = (
    "(e.type = 'funding_settled' AND e.seq BETWEEN "
    "(SELECT lo FROM funding_unindexed) AND (SELECT hi FROM funding_unindexed))"
)
# a payment's audience (its payer and receiver), in key order as the events' audience
# column keeps the others' (`queries.stored_audience`)
FUNDING_AUDIENCE = (
    "(CASE WHEN e.data ->> 'payer' = e.data ->> 'receiver' THEN e.data ->> 'payer' "
    "WHEN e.data ->> 'payer' < e.data ->> 'receiver' "
    "THEN (e.data ->> 'payer') || ' ' || (e.data ->> 'receiver') "
    "ELSE (e.data ->> 'receiver') || ' ' || (e.data ->> 'payer') END)"
)


def defer(conn: sqlite3.Connection, first: int, last: int) -> None:
    """Record seqs ``first..last`` (funding events just appended) as not yet indexed."""
    conn.execute(
        "INSERT INTO funding_unindexed (id, lo, hi) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET lo = min(lo, excluded.lo), hi = max(hi, excluded.hi)",
        (first, last),
    )


def unindexed_range(conn: sqlite3.Connection) -> tuple[int, int] | None:
    row = conn.execute("SELECT lo, hi FROM funding_unindexed").fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def index_rows(conn: sqlite3.Connection, rows: list[IndexRow], *, done_to: int | None) -> bool:
    """Write ``rows`` (sorted by agent, then seq) as the funding ``agent_history`` (by
    which the readers also find a payment's audience). ``done_to``: the backlog is then
    empty and held every seq up to it, so a range that ends there is indexed
    (forgotten); returns whether one is left (a unit the backlog never heard of:
    `Backlog.load` finds its rows)."""
    if rows:
        conn.execute(
            "INSERT OR IGNORE INTO agent_history (agent_id, kind, seq, market, ts, position_id) "
            "SELECT r.value ->> 0, 'funding', r.value ->> 1, r.value ->> 2, r.value ->> 3, "
            "r.value ->> 4 FROM json_each(?) AS r",
            (ascii_json(rows),),
        )
    if done_to is not None:
        conn.execute("DELETE FROM funding_unindexed WHERE hi <= ?", (done_to,))
    return unindexed_range(conn) is not None


class Backlog:
    """The rows a tick left unindexed, per agent in seq order (seqs only grow, so each
    agent's list stays sorted as units append to it); taken in agent order."""

    def __init__(self) -> None:
        self._rows: dict[str, list[IndexRow]] = {}
        self._order: list[str] | None = None
        self.count = 0
        self.high = 0  # the highest seq ever added

    def __len__(self) -> int:
        return self.count

    def add(self, rows: Iterable[IndexRow]) -> None:
        for row in rows:
            mine = self._rows.get(row[0])
            if mine is None:
                self._rows[row[0]] = [row]
                self._order = None
            else:
                mine.append(row)
            self.count += 1
            self.high = max(self.high, row[1])

    def add_events(self, events: Iterable[Event]) -> None:
        self.add(index_rows_of(events))

    def peek(self, n: int, skip: int = 0) -> list[IndexRow]:
        """The ``n`` rows after the first ``skip`` in key order (``drop`` them once they
        are committed)."""
        if self._order is None:
            self._order = sorted(self._rows, reverse=True)
        out: list[IndexRow] = []
        for agent in reversed(self._order):
            mine = self._rows[agent]
            if skip >= len(mine):
                skip -= len(mine)
                continue
            out.extend(mine[skip : skip + n - len(out)])
            skip = 0
            if len(out) >= n:
                break
        return out

    def drop(self, n: int) -> None:
        """Forget the first ``n`` rows `peek` gave (they are committed)."""
        assert self._order is not None
        while n:
            agent = self._order[-1]
            mine = self._rows[agent]
            k = min(n, len(mine))
            del mine[:k]
            n -= k
            self.count -= k
            if not mine:
                del self._rows[agent]
                self._order.pop()

    def load(self, conn: sqlite3.Connection) -> bool:
        """Add the rows of the recorded unindexed range, read back from the event log (a
        restart cut a pass short; rows already written are ignored when written again);
        False if no range is recorded."""
        span = unindexed_range(conn)
        if span is not None:
            self.add(
                conn.execute(
                    "SELECT a.value, e.seq, e.market, e.ts, e.data ->> 'position_id' "
                    "FROM events e, json_each(json_array(e.data ->> 'payer', "
                    "e.data ->> 'receiver')) AS a "
                    "WHERE e.seq BETWEEN ? AND ? AND e.type = 'funding_settled' "
                    "GROUP BY a.value, e.seq ORDER BY e.seq",
                    span,
                )
            )
            self.high = max(self.high, span[1])
        return span is not None


def index_rows_of(events: Iterable[Event]) -> list[IndexRow]:
    return [
        (who, e.seq, e.market, e.ts, e.data.get("position_id"))
        for e in events
        for who in e.audience
    ]
