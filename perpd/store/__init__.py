"""The store: the only code that runs SQL. `Store` runs units of work; `queries` names them."""

from perpd.store import chain, outbox, queries
from perpd.store._schema import MIGRATIONS, migrate, status
from perpd.store._store import (
    TICK_CACHE_KIB,
    WRITER_CACHE_KIB,
    Store,
    connect,
    on_rollback,
    size_cache,
)

__all__ = [
    "MIGRATIONS",
    "TICK_CACHE_KIB",
    "WRITER_CACHE_KIB",
    "chain",
    "Store",
    "connect",
    "migrate",
    "on_rollback",
    "outbox",
    "queries",
    "size_cache",
    "status",
]
