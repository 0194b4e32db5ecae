"""Agent identity: Solana JSON keypair files, as ``solana-keygen`` writes them.

An agent *is* its ed25519 keypair (SPEC §6); the file is a JSON array of the 64 bytes
``secret seed (32) ‖ public key (32)``. Loading checks that the public half matches the
secret half, so a hand-edited or truncated file fails loudly here instead of producing
signatures the daemon rejects later. New files are written owner-read/write only
(0600), atomically, and never over an existing key: losing a funded key loses its money.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from solders.keypair import Keypair

from agents._errors import KeypairError

__all__ = ["Keypair", "generate_keypair", "load_keypair", "load_or_generate_keypair"]


def load_keypair(path: str | os.PathLike[str]) -> Keypair:
    """Read a Solana JSON keypair file; `KeypairError` if it is missing or malformed."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise KeypairError(f"cannot read keypair file {p}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KeypairError(f"keypair file {p} is not JSON") from exc
    if (
        not isinstance(data, list)
        or len(data) != 64
        or not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in data)
    ):
        raise KeypairError(f"keypair file {p} must hold a JSON array of 64 bytes")
    raw = bytes(data)
    try:
        keypair = Keypair.from_bytes(raw)
    except ValueError as exc:
        raise KeypairError(f"keypair file {p} holds an invalid ed25519 key") from exc
    if bytes(keypair.pubkey()) != raw[32:]:
        raise KeypairError(f"keypair file {p}: public key does not match the secret key")
    return keypair


def generate_keypair(path: str | os.PathLike[str] | None = None) -> Keypair:
    """A fresh keypair, written to ``path`` (mode 0600) if given.

    Refuses to overwrite an existing file (`KeypairError`): that file may hold the
    only copy of a funded key.
    """
    keypair = Keypair()
    if path is not None:
        _write_new(Path(path), keypair)
    return keypair


def load_or_generate_keypair(path: str | os.PathLike[str]) -> Keypair:
    """The keypair in ``path``, creating the file first if there is none."""
    p = Path(path)
    if not p.exists():
        try:
            return generate_keypair(p)
        except KeypairError:
            if not p.exists():
                raise
            # another process created it between our check and our write: use theirs
    return load_keypair(p)


def _write_new(path: Path, keypair: Keypair) -> None:
    text = json.dumps(list(bytes(keypair)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if path exists: never replace a key
        except FileExistsError as exc:
            raise KeypairError(f"refusing to overwrite existing keypair file {path}") from exc
    except OSError as exc:
        raise KeypairError(f"cannot write keypair file {path}: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)
