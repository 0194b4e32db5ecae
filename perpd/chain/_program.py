"""The escrow program that ships inside the package: perpd runs and deploys with no
toolchain. ``escrow.so`` is the reproducible build of escrow-program/ (``make -C
escrow-program package`` refreshes it and ``escrow.so.sha256``); a test rebuilds it
from source and fails when the two differ."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from solders.keypair import Keypair

__all__ = [
    "LOCAL_PROGRAM_ID",
    "PROGRAM_FILE",
    "elf_length",
    "packaged_program",
    "packaged_sha256",
]

PROGRAM_FILE = "escrow.so"
# Where the local chain deploys the program (the default `Config.program_id`): a fixed
# address, so agents' consents (which sign the program id) are the same on every run.
LOCAL_PROGRAM_ID = Keypair.from_seed(
    hashlib.sha256(b"perpd local escrow program").digest()
).pubkey()


@cache
def packaged_program() -> bytes:
    """The program's bytes, checked against the packaged sha256 (ValueError if not)."""
    data = resources.files(__package__).joinpath(PROGRAM_FILE).read_bytes()
    if hashlib.sha256(data).hexdigest() != packaged_sha256():
        raise ValueError(f"{PROGRAM_FILE} does not match {PROGRAM_FILE}.sha256")
    return data


def packaged_sha256() -> str:
    """The hex sha256 recorded next to the program (``sha256sum`` format)."""
    text = resources.files(__package__).joinpath(f"{PROGRAM_FILE}.sha256").read_text()
    digest, _, name = text.strip().partition("  ")
    if name != PROGRAM_FILE or len(digest) != 64:
        raise ValueError(f"{PROGRAM_FILE}.sha256 is not a sha256sum line for {PROGRAM_FILE}")
    return digest


def elf_length(data: bytes) -> int | None:
    """The length of the ELF at the start of ``data`` (its section header table ends
    it), or None when ``data`` is not a 64-bit little-endian ELF.

    A ProgramData account holds the program followed by zeros up to its maximum
    length; this finds the program's own bytes so that its sha256 can be compared
    with a build's."""
    if len(data) < 64 or data[:6] != b"\x7fELF\x02\x01":
        return None
    shoff = int.from_bytes(data[40:48], "little")
    shentsize = int.from_bytes(data[58:60], "little")
    shnum = int.from_bytes(data[60:62], "little")
    end = shoff + shentsize * shnum
    return end if 64 <= end <= len(data) else None
