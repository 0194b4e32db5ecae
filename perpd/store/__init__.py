"""The store: the only code that runs SQL. `Store` runs units of work; `queries` names them."""

from perpd.store import chain, outbox, queries
from perpd.store._schema import MIGRATIONS, migrate, status
from perpd.store._store import Store, connect, on_rollback

__all__ = [
    "MIGRATIONS",
    "chain",
    "Store",
    "connect",
    "migrate",
    "on_rollback",
    "outbox",
    "queries",
    "status",
]
