"""Numbered migrations, tracked with ``PRAGMA user_version``.

Each migration is a named function applied in its own transaction together with its
version bump, so a crash leaves the file either before or after a migration, never
inside one. `status()` lists applied and pending migrations without writing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: ``executescript`` would COMMIT the open transaction."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            conn.execute(pending)
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending!r}")


def m001_initial(conn: sqlite3.Connection) -> None:
    """Accounts, requests, quotes, positions, the event log, replay memory, pinned prices."""
    _execute_script(
        conn,
        """
        CREATE TABLE accounts (
            agent_id TEXT PRIMARY KEY,
            free INTEGER NOT NULL DEFAULT 0 CHECK (free >= 0),
            locked INTEGER NOT NULL DEFAULT 0 CHECK (locked >= 0)
        );
        -- One row: what entered and left the venue and what the protocol earned.
        -- Invariant: deposits - withdrawals = sum(free + locked) + fees.
        CREATE TABLE ledger (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            deposits INTEGER NOT NULL,
            withdrawals INTEGER NOT NULL,
            fees INTEGER NOT NULL
        );
        INSERT INTO ledger VALUES (1, 0, 0, 0);

        CREATE TABLE requests (
            request_id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL,
            market TEXT NOT NULL,
            side INTEGER NOT NULL CHECK (side IN (-1, 1)),
            size INTEGER NOT NULL CHECK (size > 0),
            leverage INTEGER NOT NULL,
            max_rate INTEGER NOT NULL,
            duration_s INTEGER,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            status TEXT NOT NULL,
            position_id TEXT
        );
        CREATE INDEX requests_open ON requests (expires_at) WHERE status = 'open';
        CREATE INDEX requests_market ON requests (market, status);

        CREATE TABLE quotes (
            quote_id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL REFERENCES requests (request_id),
            agent_id TEXT NOT NULL,
            rate INTEGER NOT NULL,
            collateral INTEGER NOT NULL CHECK (collateral > 0),
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            status TEXT NOT NULL
        );
        CREATE INDEX quotes_request ON quotes (request_id);
        CREATE INDEX quotes_live ON quotes (expires_at) WHERE status = 'live';

        CREATE TABLE positions (
            position_id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL,
            quote_id TEXT NOT NULL,
            market TEXT NOT NULL,
            requester TEXT NOT NULL,
            maker TEXT NOT NULL,
            side INTEGER NOT NULL,
            leverage INTEGER NOT NULL,
            entry_price INTEGER NOT NULL,
            notional INTEGER NOT NULL,
            cr INTEGER NOT NULL CHECK (cr >= 0),
            cm INTEGER NOT NULL CHECK (cm >= 0),
            imr INTEGER NOT NULL,
            imm INTEGER NOT NULL,
            rate INTEGER NOT NULL,
            t_base INTEGER NOT NULL,
            funding_paid INTEGER NOT NULL,
            funding_total INTEGER NOT NULL,
            realized_pnl INTEGER NOT NULL,
            status TEXT NOT NULL,
            opened_at INTEGER NOT NULL,
            expires_at INTEGER,
            next_funding_at INTEGER NOT NULL,
            closed_at INTEGER,
            exit_price INTEGER,
            liquidator TEXT,
            -- liquidation index: liquidatable only if price <= liq_low or >= liq_high
            liq_low INTEGER,
            liq_high INTEGER
        );
        CREATE INDEX positions_requester ON positions (requester, status);
        CREATE INDEX positions_maker ON positions (maker, status);
        CREATE INDEX positions_liq_low ON positions (market, liq_low) WHERE status = 'open';
        CREATE INDEX positions_liq_high ON positions (market, liq_high) WHERE status = 'open';
        CREATE INDEX positions_funding ON positions (next_funding_at) WHERE status = 'open';
        CREATE INDEX positions_term ON positions (expires_at) WHERE status = 'open';

        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts INTEGER NOT NULL,
            type TEXT NOT NULL,
            market TEXT,
            public INTEGER NOT NULL,
            data TEXT NOT NULL
        );
        CREATE TABLE event_audience (
            agent_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (agent_id, seq)
        ) WITHOUT ROWID;

        CREATE TABLE used_signatures (
            signature TEXT PRIMARY KEY,
            seen_ms INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX used_signatures_age ON used_signatures (seen_ms);

        CREATE TABLE pinned_prices (
            market TEXT PRIMARY KEY,
            price INTEGER NOT NULL,
            pinned_at INTEGER NOT NULL
        );
        """,
    )


def m002_integer_money(conn: sqlite3.Connection) -> None:
    """Balances and ledger totals stay INTEGER: a sum past 2^63 - 1 would become a REAL.

    `perpd.bounds` keeps every total far below that by construction; these triggers are
    the last line of defence, refusing the unit rather than storing a rounded amount.
    """
    checks = {
        "accounts": ("free", "locked"),
        "ledger": ("deposits", "withdrawals", "fees"),
    }
    for table, columns in checks.items():
        when = " OR ".join(f"typeof(NEW.{c}) != 'integer'" for c in columns)
        for op in ("INSERT", "UPDATE"):
            conn.execute(
                f"CREATE TRIGGER {table}_integer_{op.lower()} BEFORE {op} ON {table} "
                f"WHEN {when} BEGIN "
                f"SELECT RAISE(ABORT, '{table}: amounts must be 64-bit integers'); END"
            )


def m003_limits(conn: sqlite3.Connection) -> None:
    """Indexes for the caps (live rows per agent and per request), keyset pages in rowid
    order, and pruning finished requests and quotes."""
    _execute_script(
        conn,
        """
        CREATE INDEX requests_agent_open ON requests (agent_id, expires_at)
            WHERE status = 'open';
        CREATE INDEX requests_open_page ON requests (status) WHERE status = 'open';
        CREATE INDEX requests_done ON requests (expires_at) WHERE status != 'open';
        CREATE INDEX quotes_agent_live ON quotes (agent_id, expires_at) WHERE status = 'live';
        CREATE INDEX quotes_request_live ON quotes (request_id, expires_at)
            WHERE status = 'live';
        CREATE INDEX quotes_done ON quotes (expires_at) WHERE status != 'live';
        CREATE INDEX positions_requester_page ON positions (requester);
        CREATE INDEX positions_maker_page ON positions (maker);
        CREATE INDEX positions_status_page ON positions (status);
        """,
    )


def m004_chain(conn: sqlite3.Connection) -> None:
    """The local chain's persistence: every account as the SVM holds it (saved in the
    commit that records the transaction that wrote it), the chain's own key material,
    and the transactions that landed."""
    _execute_script(
        conn,
        """
        CREATE TABLE chain_accounts (
            address TEXT PRIMARY KEY,
            lamports INTEGER NOT NULL CHECK (lamports >= 0),
            owner TEXT NOT NULL,
            executable INTEGER NOT NULL CHECK (executable IN (0, 1)),
            rent_epoch INTEGER NOT NULL,
            data BLOB NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE chain_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE chain_txs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            signature TEXT NOT NULL UNIQUE,
            slot INTEGER NOT NULL,
            kind TEXT NOT NULL,
            ref TEXT
        );
        CREATE INDEX chain_txs_ref ON chain_txs (ref, seq);
        """,
    )


def m005_consents(conn: sqlite3.Connection) -> None:
    """Consents (SPEC §6): what each request, quote and position was signed for, the
    counters the next close and withdraw consents name, and one nonce per requester.

    Nonces are u64 and SQLite integers i64: `queries` stores a nonce as its
    two's-complement i64 (2^63 and above wrap negative), so the UNIQUE indexes hold."""
    _execute_script(
        conn,
        """
        ALTER TABLE requests ADD COLUMN nonce INTEGER;
        ALTER TABLE requests ADD COLUMN consent TEXT;
        ALTER TABLE requests ADD COLUMN consent_expires_at INTEGER;
        ALTER TABLE requests ADD COLUMN request_hash TEXT;
        ALTER TABLE quotes ADD COLUMN consent TEXT;
        ALTER TABLE quotes ADD COLUMN valid_until INTEGER;
        ALTER TABLE positions ADD COLUMN nonce INTEGER;
        ALTER TABLE positions ADD COLUMN position_address TEXT;
        ALTER TABLE positions ADD COLUMN closes INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE accounts ADD COLUMN withdrawals INTEGER NOT NULL DEFAULT 0;
        CREATE UNIQUE INDEX requests_nonce ON requests (agent_id, nonce)
            WHERE nonce IS NOT NULL;
        CREATE UNIQUE INDEX positions_nonce ON positions (requester, nonce)
            WHERE nonce IS NOT NULL;
        """,
    )


def m006_outbox(conn: sqlite3.Connection) -> None:
    """The chain outbox (one row per chain action, written with the change that asks
    for it) and, on positions, the signatures of the transactions that moved them.

    A position is ``pending`` from accept until its lock lands (``open``) or the chain
    refuses it (``failed``): meanwhile both collaterals and the fee are reserved.
    """
    _execute_script(
        conn,
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL
                CHECK (kind IN ('lock', 'settle', 'close', 'liquidate', 'withdraw', 'deposit')),
            ref TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sent', 'done', 'failed')),
            signature TEXT,
            slot INTEGER,
            error TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER
        );
        CREATE INDEX outbox_unfinished ON outbox (id) WHERE status IN ('pending', 'sent');
        CREATE INDEX outbox_ref ON outbox (ref, id);
        ALTER TABLE positions ADD COLUMN lock_signature TEXT;
        ALTER TABLE positions ADD COLUMN settle_signature TEXT;
        ALTER TABLE positions ADD COLUMN close_signature TEXT;
        """,
    )


def m007_history(conn: sqlite3.Connection) -> None:
    """Issue 13's history: one row per (agent, kind, event) for fills, funding payments,
    liquidations and final closes, keyed by the event's ``seq``; `queries.append_event`
    and `queries.append_events_bulk` write them with their event, and the events logged
    before this migration are copied in here.

    ``seq`` is allocated inside the writer's transaction and SQLite serialises writers,
    so seqs become visible in increasing order: a reader past ``seq`` k never meets a
    later commit below k."""
    kinds = (
        "CASE e.type WHEN 'position_opened' THEN 'fill' WHEN 'funding_settled' THEN 'funding' "
        "WHEN 'liquidation' THEN 'liquidation' ELSE 'closed' END"
    )
    wanted = (
        "(e.type IN ('position_opened', 'funding_settled', 'liquidation') "
        "OR (e.type = 'position_closed' AND e.data ->> 'status' = 'closed'))"
    )
    _execute_script(
        conn,
        f"""
        CREATE TABLE agent_history (
            agent_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('fill', 'funding', 'liquidation', 'closed')),
            seq INTEGER NOT NULL,
            market TEXT,
            ts INTEGER NOT NULL,
            position_id TEXT,
            PRIMARY KEY (agent_id, kind, seq)
        ) WITHOUT ROWID;
        CREATE INDEX agent_history_market ON agent_history (agent_id, kind, market, seq);
        INSERT INTO agent_history (agent_id, kind, seq, market, ts, position_id)
            SELECT a.agent_id, {kinds}, e.seq, e.market, e.ts, e.data ->> 'position_id'
            FROM event_audience a JOIN events e ON e.seq = a.seq WHERE {wanted};
        """,
    )


def m008_quote_controls(conn: sqlite3.Connection) -> None:
    """Issue 13: client ids (idempotency keys, with the first answer to replay), maker
    protection settings and freezes, and the index that counts a maker's recent fills."""
    _execute_script(
        conn,
        """
        ALTER TABLE requests ADD COLUMN client_id TEXT;
        ALTER TABLE quotes ADD COLUMN client_id TEXT;
        CREATE TABLE client_ids (
            agent_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('request', 'quote')),
            client_id TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            status INTEGER NOT NULL,
            body TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (agent_id, kind, client_id)
        ) WITHOUT ROWID;
        CREATE INDEX client_ids_age ON client_ids (created_at);
        CREATE TABLE maker_protection (
            agent_id TEXT PRIMARY KEY,
            window_s INTEGER NOT NULL CHECK (window_s > 0),
            max_fills INTEGER CHECK (max_fills > 0),
            max_notional INTEGER CHECK (max_notional > 0),
            cooldown_s INTEGER NOT NULL CHECK (cooldown_s > 0),
            frozen_until INTEGER NOT NULL DEFAULT 0,
            counted_after INTEGER NOT NULL DEFAULT 0,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX positions_maker_opened ON positions (maker, opened_at);
        """,
    )


def m009_funding_unindexed(conn: sqlite3.Connection) -> None:
    """Issue 11: the seqs of funding events whose audience and history rows a tick has
    not written yet (`perpd.store.funding_index`); at most one range."""
    _execute_script(
        conn,
        """
        CREATE TABLE funding_unindexed (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            lo INTEGER NOT NULL,
            hi INTEGER NOT NULL CHECK (hi >= lo)
        );
        """,
    )


def m010_event_audience(conn: sqlite3.Connection) -> None:
    """Issue 11: each event row keeps its audience (``audience``: the agent ids in key
    order, space-separated), so reading an event back never searches ``event_audience``
    by seq (its key is (agent, seq): that lookup scanned the whole table, per event);
    and a ``funding_settled``'s audience is its payer and receiver, found by agent
    through its ``agent_history`` rows, so ``event_audience`` no longer holds a row per
    payment (a funding tick writes one index fewer)."""
    _execute_script(
        conn,
        """
        ALTER TABLE events ADD COLUMN audience TEXT;
        DELETE FROM event_audience
            WHERE seq IN (SELECT seq FROM events WHERE type = 'funding_settled');
        CREATE INDEX event_audience_by_seq ON event_audience (seq, agent_id);
        UPDATE events SET audience = (
            SELECT group_concat(a.agent_id, ' ') FROM event_audience a
            INDEXED BY event_audience_by_seq WHERE a.seq = events.seq
        ) WHERE type != 'funding_settled';
        DROP INDEX event_audience_by_seq;
        """,
    )


def m011_bound_until(conn: sqlite3.Connection) -> None:
    """Issue 11: the funding time up to which a position's stored payer's liquidation
    bound already counts its payments (`perpd.liq_bounds`); NULL (the rows before this
    migration, whose bounds were exact): the next settlement rewrites it."""
    conn.execute("ALTER TABLE positions ADD COLUMN bound_until INTEGER")


MIGRATIONS: tuple[Migration, ...] = (
    m001_initial,
    m002_integer_money,
    m003_limits,
    m004_chain,
    m005_consents,
    m006_outbox,
    m007_history,
    m008_quote_controls,
    m009_funding_unindexed,
    m010_event_audience,
    m011_bound_until,
)


def status(conn: sqlite3.Connection) -> list[tuple[int, str, bool]]:
    """(version, name, applied) for every migration; reads only."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    return [(i, m.__name__, i <= current) for i, m in enumerate(MIGRATIONS, start=1)]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations, each in its own transaction; returns the new version."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > len(MIGRATIONS):
        raise RuntimeError(f"database is at version {current}, newer than this perpd")
    for version, migration in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            migration(conn)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
