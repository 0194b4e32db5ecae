"""The WAL checkpointer: keeps the write-ahead log from staying large behind a reader.

SQLite checkpoints on its own every 1,000 pages, but a reader holding an old snapshot
stops those checkpoints short and the WAL grows; ``journal_size_limit`` cuts it back
only once it restarts. This service looks at the WAL's size every ``interval_s`` and,
above half the limit, runs a PASSIVE checkpoint and then a TRUNCATE when no reader
still needs the old frames (neither waits for readers: the next pass tries again).
"""

from __future__ import annotations

import logging

import trio

from perpd.errors import Unavailable
from perpd.store import Store

log = logging.getLogger(__name__)


async def run(
    store: Store,
    *,
    interval_s: float,
    wal_limit_bytes: int,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Checkpoint whenever the WAL is above half of ``wal_limit_bytes``, forever."""
    task_status.started()
    while True:
        await trio.sleep(interval_s)
        size = store.wal_bytes()
        if size <= wal_limit_bytes // 2:
            continue
        try:
            frames, done, truncated = await store.checkpoint()
        except Unavailable as exc:  # a full or failing disk: the next pass tries again
            log.warning("WAL checkpoint postponed: %s", exc.message)
            continue
        log.info(
            "WAL checkpoint at %d bytes: %d/%d frames back in the database%s",
            size,
            done,
            frames,
            ", truncated" if truncated else "",
        )
