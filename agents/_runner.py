"""The command line shared by the reference agents: ``python -m agents.<name> --url ...``.

Each agent module gives a builder that turns a connected `Client` and the parsed
arguments into something with ``async run(task_status=...)``; this module loads (or
creates) the keypair, optionally funds it from the dev faucet, runs the agent under
asyncio or trio, and stops it cleanly on SIGINT or SIGTERM (exit status 0).
"""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc

from agents._client import Client
from agents._errors import AgentError
from agents._keys import load_or_generate_keypair
from agents._models import parse_usdc

log = logging.getLogger("agents")


class Runnable(Protocol):
    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = ...) -> None: ...


Builder = Callable[[Client, argparse.Namespace], Runnable]


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The common options; an agent adds its own before calling `main`."""
    p = argparse.ArgumentParser(prog=f"python -m agents.{name}", description=description)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the perpd daemon")
    p.add_argument(
        "--keypair",
        default=f"{name}.json",
        help="Solana JSON keypair file (created, mode 0600, if it does not exist)",
    )
    p.add_argument(
        "--fund",
        metavar="USDC",
        help="first credit this much from the dev faucet (perpd run --dev only)",
    )
    p.add_argument("--markets", help="comma-separated markets (default: all listed)")
    p.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    p.add_argument("--log-level", default="INFO")
    return p


def markets_arg(args: argparse.Namespace) -> list[str] | None:
    return [m.strip() for m in args.markets.split(",") if m.strip()] if args.markets else None


async def _serve(build: Builder, args: argparse.Namespace) -> None:
    keypair = load_or_generate_keypair(Path(args.keypair))
    async with Client(args.url, keypair) as client:
        log.info("agent %s on %s", client.agent_id, args.url)
        if args.fund:
            balances = await client.faucet(parse_usdc(args.fund))
            log.info("funded: %s USDC free", balances.free / 1_000_000)
        agent = build(client, args)
        # The receiver must outlive the task group: leaving its block restores the
        # default handlers while the agent still runs.
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:

                async def stop_on_signal() -> None:
                    async for signum in signals:
                        log.info("signal %d: stopping", signum)
                        tg.cancel_scope.cancel()
                        return

                tg.start_soon(stop_on_signal)
                await tg.start(agent.run)


def main(build: Builder, args: argparse.Namespace) -> int:
    """Run the agent until a signal; 0 on a clean stop, 1 on a fatal `AgentError`."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    status = 0
    try:
        try:
            anyio.run(_serve, build, args, backend=args.backend)
        except* AgentError as group:
            log.error("stopped: %s", "; ".join(str(e) for e in group.exceptions))
            status = 1
    except KeyboardInterrupt:  # Ctrl-C before the signal handler was installed
        pass
    return status
