"""Issue 11, latency: a call's wake-up that reaches the chain submitter while it drains
is not lost (the call's row would otherwise wait for the next poll, a second later)."""

from __future__ import annotations

import time

import trio

from perpd.nursery.chain_submitter import POLL_S
from tests.conftest import Server

CHAIN = "local"


async def test_a_wake_during_a_drain_drains_again_at_once(server: Server) -> None:
    submitter = server.venue.submitter
    assert submitter is not None
    real = submitter.drain
    calls: list[float] = []
    again = trio.Event()

    async def drain() -> int:
        calls.append(time.monotonic())
        if len(calls) == 1:
            submitter._wake.set()  # a caller's row is written while this drain runs
        elif len(calls) == 2:
            again.set()
        return await real()

    submitter.drain = drain  # type: ignore[method-assign]
    submitter._wake.set()  # start a drain now
    with trio.fail_after(POLL_S / 2):
        await again.wait()
    assert calls[1] - calls[0] < POLL_S / 2
