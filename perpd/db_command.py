"""``perpd backup PATH`` and ``perpd db status``: the state file's copy and its schema.

    perpd backup [--db PATH] DEST   an online, verified copy (the daemon may be running)
    perpd db status [--db PATH]     applied and pending migrations; never writes

Each prints one JSON object. Exit status: 0 done, 1 the copy did not verify (nothing
left at DEST) or migrations are pending, 2 a missing database or an existing DEST.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys

from perpd.config import Config
from perpd.store import inspect as si

BACKUP_HELP = "an online copy of the state file, checked before it is kept"
DB_HELP = "the state file's schema: applied and pending migrations (reads only)"


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=Config.db)
    parser.add_argument("dest", metavar="DEST", help="the backup file (must not exist)")


def add_db_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", required=True)
    status = sub.add_parser("status", help=DB_HELP)
    status.add_argument("--db", default=Config.db)


def _fail(command: str, exc: BaseException, code: int) -> int:
    print(f"perpd {command}: {exc}", file=sys.stderr)
    return code


def run_backup(args: argparse.Namespace) -> int:
    try:
        report = si.backup(args.db, args.dest)
    except (FileNotFoundError, FileExistsError) as exc:
        return _fail("backup", exc, 2)
    except (RuntimeError, sqlite3.Error) as exc:
        return _fail("backup", exc, 1)
    print(json.dumps(report))
    return 0


def run_db(args: argparse.Namespace) -> int:
    try:
        status = si.db_status(args.db)
    except FileNotFoundError as exc:
        return _fail("db status", exc, 2)
    print(json.dumps(status))
    return 1 if status["pending"] or status["newer_than_this_perpd"] else 0
