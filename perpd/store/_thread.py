"""One dedicated thread that owns the SQLite connection (aiosqlite's shape, under trio).

sqlite3 connections are not async; running every statement on one thread keeps the
connection single-threaded and serialises all units of work, so each is a plain
`BEGIN IMMEDIATE` … `COMMIT` with nothing interleaved. Grouped jobs found queued
together are handed over together (the store commits them in one transaction).
"""

from __future__ import annotations

import heapq
import itertools
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, TypeVar

import outcome
import trio

T = TypeVar("T")


class _Job(NamedTuple):
    fn: Callable[[sqlite3.Connection], Any]
    deliver: Callable[[outcome.Outcome[Any]], None]
    grouped: bool


# runs the functions of grouped jobs together; one outcome per function, in order
GroupRunner = Callable[[sqlite3.Connection, list[Any]], list[outcome.Outcome[Any]]]

URGENT = 0  # settlement: accept, close, liquidate, funding, expiry
NORMAL = 1  # order flow (requests, quotes) and reads
_LAST = 9  # the stop marker, after everything queued


class DbThread:
    """Runs functions of a `sqlite3.Connection` on its own thread, one at a time.

    With ``threads`` > 1 (the read-only readers) each thread owns its own connection
    and takes the next job from the shared queue.

    Jobs run by priority, then in submission order: urgent work (a fill, a close, a
    liquidation) does not wait behind a burst of quotes.

    With a ``group`` runner, a grouped job at the head of the queue is taken together
    with the grouped jobs right behind it (at most ``group_max``), and ``group`` runs
    them all at once: under load the writer commits many units at the cost of one.
    """

    # jobs of every DbThread submitted and not yet returned to their task: work trio
    # cannot see (its autojump clock in tests must not jump while a job runs)
    in_flight: ClassVar[int] = 0

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        name: str = "perpd-sqlite",
        threads: int = 1,
        group: GroupRunner | None = None,
        group_max: int = 1,
    ) -> None:
        if threads < 1 or group_max < 1:
            raise ValueError("a DbThread needs at least one thread and groups of one")
        self._connect = connect
        self._group = group
        self._group_max = group_max
        self._heap: list[tuple[int, int, _Job | None]] = []
        self._wake = threading.Condition()
        self._order = itertools.count()
        self._ready = threading.Semaphore(0)
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._main, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        self.jobs_done = 0
        self.groups = 0  # groups of more than one job run together

    def queued(self) -> int:
        """How many jobs wait for a thread now (read without the lock: a hint, which a
        long unit polls to end early when others wait behind it)."""
        return len(self._heap)

    def _put(self, priority: int, job: _Job | None) -> None:
        with self._wake:
            heapq.heappush(self._heap, (priority, next(self._order), job))
            self._wake.notify()

    def _take(self) -> list[_Job] | None:
        """The next job, with the grouped jobs queued right behind a grouped one."""
        with self._wake:
            while not self._heap:
                self._wake.wait()
            first = heapq.heappop(self._heap)[2]
            if first is None:
                return None
            jobs = [first]
            if first.grouped and self._group is not None:
                while len(jobs) < self._group_max and self._heap:
                    nxt = self._heap[0][2]
                    if nxt is None or not nxt.grouped:
                        break
                    jobs.append(heapq.heappop(self._heap)[2])  # type: ignore[arg-type]
            return jobs

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
            while (jobs := self._take()) is not None:
                if jobs[0].grouped and self._group is not None:
                    results = self._group(conn, [job.fn for job in jobs])
                    self.groups += len(jobs) > 1
                else:
                    results = [outcome.capture(jobs[0].fn, conn)]
                self.jobs_done += len(jobs)
                for job, result in zip(jobs, results, strict=True):
                    job.deliver(result)
        finally:
            conn.close()

    async def run(
        self,
        fn: Callable[[sqlite3.Connection], T],
        priority: int = NORMAL,
        *,
        grouped: bool = False,
    ) -> T:
        """Run ``fn(conn)`` on the database thread and return its result (``grouped``:
        ``fn`` goes to the group runner, maybe with others).

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

        self._put(priority, _Job(fn, deliver, grouped))
        DbThread.in_flight += 1
        try:
            return await trio.lowlevel.wait_task_rescheduled(  # type: ignore[no-any-return]
                lambda _: trio.lowlevel.Abort.FAILED
            )
        finally:
            DbThread.in_flight -= 1

    def stop(self) -> None:
        """Let queued work finish, then close the connections and join the threads."""
        for _ in self._threads:
            self._put(_LAST, None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
