"""``perpd mcp --url URL --keypair FILE [--config FILE] [--http HOST:PORT]``: argument
parsing and start-up checks, with the MCP SDK imported only once they pass."""

from __future__ import annotations

import argparse
import ipaddress
import sys

HELP = "serve an MCP server that trades as one agent, within limits a person sets"
LOOPBACK_NAMES = {"localhost"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="the venue, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--keypair",
        required=True,
        metavar="FILE",
        help="the agent's Solana JSON keypair (refused if group or others can read it)",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML file with a [limits] table")
    parser.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve streamable HTTP on a loopback address (at /mcp) instead of stdio",
    )


def parse_http(text: str) -> tuple[str, int]:
    """``HOST:PORT`` on loopback only: the server signs trades and has no login."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--http {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    if host not in LOOPBACK_NAMES:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"--http {text!r}: only a loopback address is allowed (the server holds the "
                "agent's key and has no authentication)"
            )
    return host, int(port)


def main(args: argparse.Namespace) -> int:
    from perpd.chain._keyfile import KeyfileError, read_keyfile
    from perpd.mcp.limits import LimitsFileError, limits_from_file

    try:
        keypair = read_keyfile(args.keypair)
        limits = limits_from_file(args.config)
        http = None if args.http is None else parse_http(args.http)
    except (KeyfileError, LimitsFileError, ValueError) as exc:
        print(f"perpd mcp: {exc}", file=sys.stderr)
        return 2
    import anyio

    from perpd.mcp.server import serve

    try:
        anyio.run(serve, args.url, keypair, limits, http)
    except KeyboardInterrupt:
        pass
    return 0
