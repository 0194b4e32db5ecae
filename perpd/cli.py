"""Command line: ``perpd run`` (the daemon; SIGINT/SIGTERM stop it cleanly), and the
operator's tools beside it: demo, chain, verify, inspect, backup, db; and ``perpd mcp``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple, TypeVar

from perpd import config_sources, logs
from perpd.config import CHAIN_MODES, Config

T = TypeVar("T")


class Tool(NamedTuple):
    """An operator's subcommand: its module, imported only when it runs (so that
    ``perpd inspect`` does not load the daemon, the SVM or the agents), and the names
    of its functions there."""

    module: str
    add_arguments: str
    run: str
    help: str
    raw_help: bool = False


TOOLS = {
    "demo": Tool(
        "perpd.demo",
        "add_arguments",
        "main",
        "run the daemon with three market makers and two traders, and watch them trade",
    ),
    "chain": Tool(
        "perpd.chain.command",
        "add_arguments",
        "main",
        "deploy and initialize the escrow program over JSON-RPC; show a chain's status",
    ),
    "inspect": Tool(
        "perpd.inspect_command",
        "add_arguments",
        "run",
        "look into a state file (read-only; the daemon may be running)",
        raw_help=True,
    ),
    "backup": Tool(
        "perpd.db_command",
        "add_backup_arguments",
        "run_backup",
        "an online copy of the state file, checked before it is kept",
    ),
    "db": Tool(
        "perpd.db_command",
        "add_db_arguments",
        "run_db",
        "the state file's schema: applied and pending migrations (reads only)",
    ),
    "mcp": Tool(
        "perpd.mcp.command",
        "add_arguments",
        "main",
        "serve an MCP server that trades as one agent, within limits a person sets",
    ),
}


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the top level takes no option values)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _tool(name: str) -> ModuleType:
    return importlib.import_module(TOOLS[name].module)


def _parser(argv: list[str]) -> argparse.ArgumentParser:
    """Every subcommand; of the operator's tools only the one named in ``argv`` gets its
    arguments (from its module: the others are listed by their help alone)."""
    chosen = _chosen(argv)
    parser = argparse.ArgumentParser(prog="perpd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--db", default=Config.db, help="SQLite file (default ./perpd.db)")
    run.add_argument("--host", default=Config.host)
    run.add_argument("--port", type=int, default=Config.port)
    run.add_argument("--dev", action="store_true", help="enable /dev/faucet and /dev/price")
    run.add_argument(
        "--funding-period",
        type=int,
        default=Config.funding_period_s,
        metavar="S",
        help="funding period in seconds (default 28800)",
    )
    run.add_argument("--oracle", choices=("sim", "pyth"), default=Config.oracle)
    run.add_argument("--hermes-url", default=Config.hermes_url)
    run.add_argument("--sim-seed", type=int, default=Config.sim_seed)
    run.add_argument(
        "--no-keeper", action="store_true", help="never liquidate as the protocol's keeper"
    )
    run.add_argument(
        "--keeper-grace",
        type=float,
        default=Config.keeper_grace_s,
        metavar="S",
        help="seconds agents get to liquidate before the keeper does",
    )
    run.add_argument(
        "--max-connections",
        type=int,
        default=Config.max_connections,
        metavar="N",
        help="live TCP connections before new ones get 503 (keep below the fd limit)",
    )
    run.add_argument(
        "--ws-max-sockets",
        type=int,
        default=Config.ws_max_sockets,
        metavar="N",
        help="live WebSockets in all",
    )
    run.add_argument(
        "--ws-max-per-agent",
        type=int,
        default=Config.ws_max_per_agent,
        metavar="N",
        help="live WebSockets per agent",
    )
    # chain-local: chain
    run.add_argument(
        "--chain",
        choices=CHAIN_MODES,
        default=Config.chain,
        help="where the money lives: the in-process SVM (default), a cluster over RPC, or "
        "none (custodial, SQLite the only ledger: for tests)",
    )
    run.add_argument(
        "--program-id",
        default=Config.program_id,
        metavar="ADDRESS",
        help="the escrow program consents name (default: the local program's)",
    )
    run.add_argument(
        "--chain-confirm-timeout",
        type=float,
        default=Config.chain_confirm_timeout_s,
        metavar="S",
        help="how long a call waits for its chain transaction before 503 chain_unavailable",
    )
    run.add_argument("--rpc-url", default=Config.rpc_url, metavar="URL")
    run.add_argument("--authority-keypair", default=Config.authority_keypair, metavar="FILE")
    run.add_argument("--router-keypair", default=Config.router_keypair, metavar="FILE")
    run.add_argument(
        "--priority-fee",
        type=int,
        default=Config.priority_fee_micro_lamports,
        metavar="MICROLAMPORTS",
        help="compute-unit price of every rpc transaction",
    )
    run.add_argument(
        "--db-busy-timeout",
        type=int,
        default=Config.db_busy_timeout_ms,
        metavar="MS",
        help="longest a write waits for the database lock before a 503 (default 2000)",
    )
    run.add_argument(
        "--db-wal-limit",
        type=int,
        default=Config.db_wal_limit_bytes,
        metavar="BYTES",
        help="WAL size the file is cut back to after a checkpoint (default 16 MiB)",
    )
    run.add_argument(
        "--db-readers",
        type=int,
        default=Config.db_readers,
        metavar="N",
        help="read-only connections, each on its own thread, serving reads (default 2)",
    )
    run.add_argument(
        "--db-group-max",
        type=int,
        default=Config.db_group_max,
        metavar="N",
        help="most units of work queued together that commit together (default 32)",
    )
    run.add_argument("--log-level", default="INFO")
    run.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default="auto",
        help="json (one object per line), text, or auto: text on a terminal, else json",
    )
    run.add_argument(
        "--config",
        metavar="PATH",
        help=f"TOML file of Config keys (default {config_sources.DEFAULT_FILE} if it exists); "
        "PERPD_<KEY> variables override it, flags override both",
    )
    for action in run._actions:  # only the flags given reach config_from_args
        if action.dest not in ("help", *NOT_CONFIG):
            action.default = argparse.SUPPRESS
    for name, tool in TOOLS.items():
        if name == "inspect":  # in the order `perpd --help` has always listed them
            _add_verify(sub)
        kind = argparse.RawDescriptionHelpFormatter if tool.raw_help else argparse.HelpFormatter
        if chosen == name:
            module = _tool(name)
            p = sub.add_parser(
                name, help=tool.help, description=module.__doc__, formatter_class=kind
            )
            getattr(module, tool.add_arguments)(p)
        else:
            sub.add_parser(name, help=tool.help)
    return parser


def _add_verify(sub: Any) -> None:
    verify = sub.add_parser(
        "verify", help="check that the books balance, and that they equal the chain's"
    )
    verify.add_argument("--db", default=Config.db)
    verify.add_argument("--rpc-url", default="", help="compare with this cluster (--chain rpc)")
    verify.add_argument("--program-id", default="", help="the escrow program on that cluster")


def verify(db: str, rpc_url: str = "", program_id: str = "") -> int:
    """Read-only check of a database's books, and of the mirror against the chain (the
    local chain saved in the file, or ``rpc_url``'s); prints the totals and any problem."""
    if not os.path.exists(db):
        print(f"perpd verify: no database at {db}", file=sys.stderr)
        return 2
    from perpd import chain_verify
    from perpd.store import queries

    uri = Path(db).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        # one read transaction: every total comes from the same snapshot, so a daemon
        # committing meanwhile cannot make the books look unbalanced
        conn.execute("BEGIN")
        print(json.dumps(queries.ledger(conn)))
        problems = queries.verify(conn)
        on_chain = chain_verify.local_problems(conn) if not rpc_url else None
        conn.execute("COMMIT")
        if rpc_url:

            def reader(fn: Callable[[sqlite3.Connection], T]) -> T:
                conn.execute("BEGIN")
                try:
                    return fn(conn)
                finally:
                    conn.execute("COMMIT")

            import trio

            on_chain = trio.run(chain_verify.rpc_problems, reader, rpc_url, program_id)
    finally:
        conn.close()
    if on_chain is not None:
        print("chain: compared every balance and position with the chain")
        problems += on_chain
    for problem in problems:
        print(f"PROBLEM {problem}")
    print("books balance" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


# `perpd run` flags whose Config field has another name (the rest are named alike)
FLAG_FIELDS = {
    "funding_period": "funding_period_s",
    "keeper_grace": "keeper_grace_s",
    "db_busy_timeout": "db_busy_timeout_ms",
    "db_wal_limit": "db_wal_limit_bytes",
    "priority_fee": "priority_fee_micro_lamports",
    "chain_confirm_timeout": "chain_confirm_timeout_s",
}
NOT_CONFIG = ("command", "log_level", "log_format", "config")


def config_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    """Defaults < the config file < PERPD_* variables < the flags given."""
    flags: dict[str, object] = {}
    for dest, value in vars(args).items():
        if dest == "no_keeper":
            flags["keeper"] = not value
        elif dest not in NOT_CONFIG:
            flags[FLAG_FIELDS.get(dest, dest)] = value
    return config_sources.build(flags, config_path=args.config, environ=environ)


def _freeze_startup_heap() -> None:
    """Move what the daemon's process holds once the whole stack is imported (modules,
    classes, the router's tables: alive until the process ends) out of the collector's
    sight. A full collection otherwise walks all of it and stopped every caller for
    30–110 ms a few times a minute (bench/soak.py); after this it walks only what the
    daemon made since. Only in ``perpd run``'s own process: in-process tests start many
    daemons, and frozen objects are never collected."""
    import gc

    gc.collect()
    gc.freeze()


async def _serve(config: Config) -> None:
    import trio

    from perpd import daemon

    _freeze_startup_heap()
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

            async def watch_signals() -> None:
                async for signum in signals:
                    logging.getLogger("perpd").info("signal %d: shutting down", signum)
                    shutdown.set()
                    return

            nursery.start_soon(watch_signals)
            await daemon.run(config, shutdown=shutdown)
            nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(argv).parse_args(argv)
    if args.command == "verify":
        return verify(args.db, args.rpc_url, args.program_id)
    if args.command in TOOLS:
        code: int = getattr(_tool(args.command), TOOLS[args.command].run)(args)
        return code
    logs.configure(args.log_level, args.log_format)
    if args.command == "run":
        try:
            config = config_from_args(args)
        except ValueError as exc:
            print(f"perpd: {exc}", file=sys.stderr)
            return 2
        import trio

        try:
            trio.run(_serve, config)
        except Exception:  # a service crashed: say so and exit non-zero for systemd
            logging.getLogger("perpd").exception("perpd stopped on an error")
            return 1
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
