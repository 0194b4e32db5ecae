"""The SDK under asyncio (the rest of the suite runs it under trio), and the reference
agents as programs: ``python -m agents.<name>`` against a daemon process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx

from agents import (
    Client,
    Keypair,
    PositionOpenedEvent,
    QuoteEvent,
    Trader,
    TradeRequestEvent,
    generate_keypair,
)
from agents.aggressive_mm import AggressiveMM
from tests.agents.conftest import ROOT, DaemonProcess, usdc

ALL = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]


async def _trade_across_a_restart(d: DaemonProcess) -> None:
    async with Client(d.url, Keypair()) as mc, Client(d.url, Keypair()) as tc:
        await mc.faucet(usdc(50_000))
        await tc.faucet(usdc(10_000))
        maker = AggressiveMM(mc, seed=1, refresh_s=0.2)
        trader = Trader(tc, quote_window=0.5)
        seen: list[int] = []
        async with anyio.create_task_group() as tg:
            await tg.start(maker.run)
            async with tc.subscribe(ALL, backoff_max=0.5) as session:

                async def until_opened() -> None:
                    with anyio.fail_after(20):
                        async for ev in session:
                            seen.append(ev.seq)
                            if isinstance(ev, PositionOpenedEvent):
                                return

                first = await trader.open(
                    "SOL-PERP", "short", usdc(500), leverage=5, max_funding_rate=1000
                )
                assert first is not None and first.maker == mc.agent_id
                await until_opened()

                await anyio.to_thread.run_sync(d.restart)  # both sessions see 1001

                second = None
                # until the maker's session is back (its reconnect backs off up to 5 s)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    second = await trader.open(
                        "BTC-PERP",
                        "long",
                        usdc(500),
                        leverage=5,
                        max_funding_rate=1000,
                        expires_in=3,
                    )
                    if second is not None:
                        break
                assert second is not None and second.maker == mc.agent_id
                await until_opened()
                assert session.statistics().connects >= 2
            tg.cancel_scope.cancel()
        # up to the last event read: the maker's quotes die with its socket once it stops
        # (cancel-on-disconnect), after the reading ended
        expected = [e.seq for e in await tc.events(0) if e.seq <= seen[-1]]
        assert seen == expected  # resumed across the restart: nothing lost, nothing twice
        kinds = {type(e) for e in await tc.events(0)}
        assert {TradeRequestEvent, QuoteEvent, PositionOpenedEvent} <= kinds


def test_sdk_under_asyncio_survives_a_daemon_restart(daemon_process: DaemonProcess) -> None:
    asyncio.run(_trade_across_a_restart(daemon_process))


def test_reference_agents_run_as_programs_and_stop_on_sigint(
    daemon_process: DaemonProcess, tmp_path: Path
) -> None:
    maker_key = tmp_path / "amm.json"
    maker_id = str(generate_keypair(maker_key).pubkey())
    url = daemon_process.url
    common = ["--url", url, "--log-level", "WARNING"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "agents.aggressive_mm", "--keypair", str(maker_key)]
            + ["--fund", "50000", "--backend", "asyncio", *common],
            cwd=ROOT,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "agents.trader", "--keypair", str(tmp_path / "t.json")]
            + ["--fund", "20000", "--backend", "trio", "--seed", "3", *common],
            cwd=ROOT,
        ),
    ]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            positions = httpx.get(f"{url}/positions?agent_id={maker_id}").json()["positions"]
            if positions:
                break
            time.sleep(0.2)
        assert positions, "the trader never traded with the maker"
        assert (tmp_path / "t.json").exists()  # created on first run
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        codes = [p.wait(timeout=15) for p in procs]
    assert codes == [0, 0]
