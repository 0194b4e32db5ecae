"""Keypair files for ``perpd chain``: the Solana CLI's JSON format (64 bytes, secret
seed then public key), refused when group or others may read them (a leaked upgrade
authority replaces the program that holds every agent's money)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from solders.keypair import Keypair

__all__ = ["KeyfileError", "create_keyfile", "read_keyfile"]


class KeyfileError(Exception):
    """A keypair file that is missing, malformed, or readable by others."""


def read_keyfile(path: str | os.PathLike[str]) -> Keypair:
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text()
    except OSError as exc:
        raise KeyfileError(f"cannot read keypair file {p}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyfileError(
            f"keypair file {p} is accessible by group or others "
            f"(mode {stat.filemode(mode)}): chmod 600 {p}"
        )
    try:
        raw = bytes(json.loads(text))
        keypair = Keypair.from_bytes(raw)
    except (ValueError, TypeError) as exc:
        raise KeyfileError(f"keypair file {p} is not a JSON array of 64 bytes") from exc
    if bytes(keypair.pubkey()) != raw[32:]:
        raise KeyfileError(f"keypair file {p}: public key does not match the secret key")
    return keypair


def create_keyfile(path: str | os.PathLike[str]) -> Keypair:
    """A fresh keypair written to ``path`` with mode 0600; never over an existing file."""
    keypair = Keypair()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyfileError(f"{path} exists: not overwriting a keypair") from exc
    with os.fdopen(fd, "w") as f:
        json.dump(list(bytes(keypair)), f)
    return keypair
