"""Issue 8 finding 8: `perpd verify` on a live database under write load must never
raise a false alarm: its totals come from one read transaction (one snapshot)."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import trio

from perpd import cli
from tests.conftest import Agent
from tests.daemon_proc import daemon, open_position

RUNS = 1500  # main's verify: 4 false alarms in 1,500 runs here
AT_LEAST = 300  # a slow machine may not reach RUNS within the minute; this many, at least


async def test_verify_under_write_load_never_false_alarms(tmp_path: Path) -> None:
    db = tmp_path / "perpd.db"
    async with daemon(db) as d:
        await d.pin("ETH-PERP", "3000")
        stop = trio.Event()
        writes = 0

        async def faucet(agent: Agent) -> None:
            nonlocal writes
            while not stop.is_set():
                await agent.fund("1.000001")
                writes += 1

        async def trade(requester: Agent, maker: Agent) -> None:
            nonlocal writes
            await requester.fund("100000")
            await maker.fund("100000")
            while not stop.is_set():
                pos = await open_position(requester, maker, "ETH-PERP", size_usdc="500")
                await requester.ok("/trade/close", {"position_id": pos["position_id"]})
                writes += 4

        alarms: list[str] = []
        runs = 0

        def verify_loop() -> None:
            nonlocal runs
            deadline = time.monotonic() + 60
            while runs < RUNS and time.monotonic() < deadline:
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    status = cli.verify(str(db))
                runs += 1
                if status != 0:
                    alarms.append(out.getvalue())

        async with trio.open_nursery() as n:
            for _ in range(8):
                n.start_soon(faucet, d.agent())
            for _ in range(2):
                n.start_soon(trade, d.agent(), d.agent())
            await trio.sleep(0.3)
            await trio.to_thread.run_sync(verify_loop)
            stop.set()
        assert runs >= AT_LEAST, runs
        assert writes > 200, writes
        assert alarms == [], f"{len(alarms)} false alarm(s) in {runs} runs:\n{alarms[0]}"
