"""One dedicated thread that owns the SQLite connection (aiosqlite's shape, under trio).

sqlite3 connections are not async; running every statement on one thread keeps the
connection single-threaded and serialises all units of work, so each is a plain
`BEGIN IMMEDIATE` … `COMMIT` with nothing interleaved.
"""

from __future__ import annotations

import itertools
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

T = TypeVar("T")
_Job = tuple[Callable[[sqlite3.Connection], Any], Callable[[outcome.Outcome[Any]], None]]

URGENT = 0  # settlement: accept, close, liquidate, funding, expiry
NORMAL = 1  # order flow (requests, quotes) and reads
_LAST = 9  # the stop marker, after everything queued


class DbThread:
    """Runs functions of a `sqlite3.Connection` on its own thread, one at a time.

    With ``threads`` > 1 (the read-only readers) each thread owns its own connection
    and takes the next job from the shared queue.

    Jobs run by priority, then in submission order: urgent work (a fill, a close, a
    liquidation) does not wait behind a burst of quotes.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        name: str = "perpd-sqlite",
        threads: int = 1,
    ) -> None:
        if threads < 1:
            raise ValueError("a DbThread needs at least one thread")
        self._connect = connect
        self._jobs: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._ready = threading.Semaphore(0)
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._main, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        self.jobs_done = 0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        for _ in self._threads:
            self._ready.acquire()
        if self._error is not None:
            self.stop()
            raise self._error

    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.release()
            return
        self._ready.release()
        try:
            while (job := self._jobs.get()[2]) is not None:
                fn, deliver = job
                result = outcome.capture(fn, conn)
                self.jobs_done += 1
                deliver(result)
        finally:
            conn.close()

    async def run(self, fn: Callable[[sqlite3.Connection], T], priority: int = NORMAL) -> T:
        """Run ``fn(conn)`` on the database thread and return its result.

        Not cancellable once submitted: the unit of work always finishes (commit or
        rollback) and its outcome reaches the caller, so a cancelled HTTP handler can
        never leave a half-known state. Each unit is short and bounded.
        """
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()

        def deliver(result: outcome.Outcome[Any]) -> None:
            try:
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)
            except trio.RunFinishedError:  # the run ended under us; nobody to tell
                pass

        self._jobs.put((priority, next(self._order), (fn, deliver)))
        return await trio.lowlevel.wait_task_rescheduled(  # type: ignore[no-any-return]
            lambda _: trio.lowlevel.Abort.FAILED
        )

    def stop(self) -> None:
        """Let queued work finish, then close the connections and join the threads."""
        for _ in self._threads:
            self._jobs.put((_LAST, next(self._order), None))
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
