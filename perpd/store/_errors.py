"""SQLite failures that are the database's state, not a bug, as the API's 503 `unavailable`.

The store's one boundary for sqlite3 errors: a busy or locked file (another writer holds
it past the busy wait), a full disk and an I/O error change nothing (the unit rolled
back) and may succeed if retried, so callers see `Unavailable` with a Retry-After and
the services retry them. Anything else (a constraint, a type, a syntax error) is a bug
and propagates unchanged.
"""

from __future__ import annotations

import sqlite3

from perpd.errors import Unavailable

# primary result codes (the extended code's low byte)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL = 5, 6, 10, 13

BUSY_RETRY_S = 1
FULL_RETRY_S = 5


def primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def transient(exc: BaseException) -> Unavailable | None:
    """The `Unavailable` that ``exc`` stands for, or None if it is not transient."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = primary_code(exc)
    name = getattr(exc, "sqlite_errorname", "?")
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return Unavailable(
            "the database is busy (another writer holds it); nothing was changed, retry",
            retry_after_s=BUSY_RETRY_S,
        )
    if code == SQLITE_FULL:
        return Unavailable(
            "the database disk is full; nothing was changed, retry once space is freed",
            retry_after_s=FULL_RETRY_S,
        )
    if code == SQLITE_IOERR:
        return Unavailable(
            f"database I/O error ({name}); nothing was changed, retry",
            retry_after_s=FULL_RETRY_S,
        )
    return None
