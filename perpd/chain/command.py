"""``perpd chain deploy | initialize | status``: the escrow program on any cluster over
JSON-RPC, and the status of a database's local chain.

    perpd chain deploy --rpc-url URL --authority-keypair AUTH.json --program-keypair PROG.json
    perpd chain initialize --rpc-url URL --authority-keypair AUTH.json --program-id ID \
        --usdc-mint MINT [--router ADDRESS] [--fee-owner ADDRESS] [--funding-period S]
    perpd chain status --rpc-url URL --program-id ID
    perpd chain status --db PATH

Each prints one JSON object. Exit status: 0 done (status: deployed and byte-identical
to the packaged program), 1 refused or different, 2 bad arguments or keypair file,
3 the cluster is unavailable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import trio
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpd.chain._deploy import deploy, program_status
from perpd.chain._errors import ChainError, ChainUnavailable
from perpd.chain._initialize import initialize_program
from perpd.chain._keyfile import KeyfileError, create_keyfile, read_keyfile
from perpd.chain._local_status import local_status
from perpd.chain._rpc import RpcTransport
from perpd.markets import DEFAULT_FUNDING_PERIOD_S

HELP = "deploy and initialize the escrow program over JSON-RPC; show a chain's status"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="chain_command", required=True)
    dep = sub.add_parser("deploy", help="deploy the packaged escrow program (upgradeable loader)")
    _common(dep)
    dep.add_argument(
        "--authority-keypair",
        required=True,
        metavar="FILE",
        help="Solana CLI keypair: pays, and becomes the upgrade authority (mode 0600)",
    )
    dep.add_argument(
        "--program-keypair",
        required=True,
        metavar="FILE",
        help="the program's address keypair (created, mode 0600, if the file does not exist)",
    )
    dep.add_argument(
        "--max-data-len",
        type=int,
        metavar="BYTES",
        help="room for upgrades (default: twice the program)",
    )
    init = sub.add_parser(
        "initialize", help="create the vault and fee account, initialize, list the markets"
    )
    _common(init)
    init.add_argument(
        "--authority-keypair",
        required=True,
        metavar="FILE",
        help="the program's upgrade authority (pays; mode 0600)",
    )
    init.add_argument("--program-id", required=True, type=_address, metavar="ADDRESS")
    init.add_argument("--usdc-mint", required=True, type=_address, metavar="ADDRESS")
    init.add_argument(
        "--router", type=_address, metavar="ADDRESS", help="router authority (default: authority)"
    )
    init.add_argument(
        "--fee-owner",
        type=_address,
        metavar="ADDRESS",
        help="owner of the USDC fee account (default: authority)",
    )
    init.add_argument("--funding-period", type=int, default=DEFAULT_FUNDING_PERIOD_S, metavar="S")
    status = sub.add_parser("status", help="program id, upgrade authority, sha256, config")
    _common(status, rpc_required=False)
    status.add_argument("--db", metavar="PATH", help="a perpd database: its local chain")
    which = status.add_mutually_exclusive_group()
    which.add_argument("--program-id", metavar="ADDRESS")
    which.add_argument("--program-keypair", metavar="FILE")


def _address(text: str) -> Pubkey:
    try:
        return Pubkey.from_string(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address") from None


def _common(parser: argparse.ArgumentParser, *, rpc_required: bool = True) -> None:
    parser.add_argument("--rpc-url", required=rpc_required, help="the cluster's JSON-RPC URL")
    parser.add_argument(
        "--priority-fee",
        type=_micro_lamports,
        default=0,
        metavar="MICROLAMPORTS",
        help="compute-unit price (micro-lamports per CU) for every transaction",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds to wait for each transaction's confirmation",
    )


def _micro_lamports(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def main(args: argparse.Namespace) -> int:
    try:
        if args.chain_command == "deploy":
            authority = read_keyfile(args.authority_keypair)
            path = Path(args.program_keypair)
            program = read_keyfile(path) if path.exists() else create_keyfile(path)
            return trio.run(_deploy, args, authority, program)
        if args.chain_command == "initialize":
            return trio.run(_initialize, args, read_keyfile(args.authority_keypair))
        if (args.db is None) == (args.rpc_url is None):
            print("perpd chain status: give --rpc-url or --db", file=sys.stderr)
            return 2
        if args.db is not None:
            return _local_status(args.db)
        if args.program_id is None and args.program_keypair is None:
            print(
                "perpd chain status: --rpc-url needs --program-id or --program-keypair",
                file=sys.stderr,
            )
            return 2
        if args.program_id is not None:
            try:
                program_id = Pubkey.from_string(args.program_id)
            except ValueError:
                print(
                    f"perpd chain: --program-id {args.program_id!r} is not an address",
                    file=sys.stderr,
                )
                return 2
        else:
            program_id = read_keyfile(args.program_keypair).pubkey()
        return trio.run(_status, args, program_id)
    except KeyfileError as exc:
        print(f"perpd chain: {exc}", file=sys.stderr)
        return 2
    except ChainUnavailable as exc:
        print(f"perpd chain: cluster unavailable: {exc}", file=sys.stderr)
        return 3
    except ChainError as exc:
        print(f"perpd chain: {exc}", file=sys.stderr)
        return 1


def _transport(args: argparse.Namespace) -> RpcTransport:
    return RpcTransport(
        args.rpc_url, priority_fee=args.priority_fee, confirm_timeout_s=args.timeout
    )


async def _deploy(args: argparse.Namespace, authority: Keypair, program: Keypair) -> int:
    async with _transport(args) as transport:
        done = await deploy(transport, authority, program, max_data_len=args.max_data_len)
    _print(
        {
            "program_id": str(done.program_id),
            "programdata": str(done.programdata),
            "upgrade_authority": str(authority.pubkey()),
            "signature": str(done.signature),
            "slot": done.slot,
            "writes": done.writes,
        }
    )
    return 0


async def _initialize(args: argparse.Namespace, authority: Keypair) -> int:
    async with _transport(args) as transport:
        done = await initialize_program(
            transport,
            authority,
            args.program_id,
            args.usdc_mint,
            router=args.router,
            fee_owner=args.fee_owner,
            funding_period_s=args.funding_period,
        )
    client = done.client
    _print(
        {
            "program_id": str(client.program_id),
            "config": str(client.config),
            "router_authority": str(done.router),
            "usdc_mint": str(client.usdc_mint),
            "vault": str(client.vault),
            "fee_account": str(client.fee_account),
            "signatures": [str(s) for s in done.signatures],
        }
    )
    return 0


def _local_status(db: str) -> int:
    if not Path(db).exists():
        print(f"perpd chain: no database at {db}", file=sys.stderr)
        return 1
    status = local_status(db)
    _print(status)
    if not status["initialized"]:
        print(
            f"perpd chain: {db} holds no local chain (never run with --chain local)",
            file=sys.stderr,
        )
        return 1
    return 0 if status["matches_package"] else 1


async def _status(args: argparse.Namespace, program_id: Pubkey) -> int:
    async with _transport(args) as transport:
        status = await program_status(transport, program_id)
    _print(status.to_json())
    if not status.deployed:
        print(f"perpd chain: no program deployed at {program_id}", file=sys.stderr)
        return 1
    if not status.matches_package:
        print("perpd chain: the deployed program differs from the packaged one", file=sys.stderr)
        return 1
    return 0


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, indent=2))
