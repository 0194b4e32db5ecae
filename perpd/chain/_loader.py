"""BPF Loader Upgradeable (loader v3): its instructions and account states, as agave
serialises them (bincode: a u32 variant tag, ``Option`` as one byte then the key).

Only what deploying and inspecting a program needs: ``InitializeBuffer``, ``Write``,
``DeployWithMaxDataLen`` and the Buffer / Program / ProgramData states.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.sysvar import CLOCK, RENT

__all__ = [
    "BUFFER_METADATA",
    "LOADER_V3",
    "PROGRAMDATA_METADATA",
    "PROGRAM_SIZE",
    "ProgramData",
    "create_buffer",
    "deploy_with_max_data_len",
    "parse_program",
    "parse_programdata",
    "programdata_address",
    "write",
]

LOADER_V3 = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
SYSTEM_PROGRAM = Pubkey.default()
BUFFER_METADATA = 37  # tag u32 + Option<Pubkey>
PROGRAM_SIZE = 36  # tag u32 + programdata Pubkey
PROGRAMDATA_METADATA = 45  # tag u32 + slot u64 + Option<Pubkey>
_INITIALIZE_BUFFER, _WRITE, _DEPLOY = 0, 1, 2
_BUFFER, _PROGRAM, _PROGRAMDATA = 1, 2, 3


def programdata_address(program: Pubkey) -> Pubkey:
    """Where the loader keeps a program's bytes: PDA ``[program]`` of the loader."""
    return Pubkey.find_program_address([bytes(program)], LOADER_V3)[0]


def create_buffer(
    payer: Pubkey, buffer: Pubkey, authority: Pubkey, lamports: int, program_len: int
) -> list[Instruction]:
    """System ``CreateAccount`` of the buffer, then ``InitializeBuffer`` (same tx, or
    anyone could initialise it first)."""
    create = create_account(
        CreateAccountParams(
            from_pubkey=payer,
            to_pubkey=buffer,
            lamports=lamports,
            space=BUFFER_METADATA + program_len,
            owner=LOADER_V3,
        )
    )
    init = Instruction(
        LOADER_V3,
        struct.pack("<I", _INITIALIZE_BUFFER),
        [AccountMeta(buffer, False, True), AccountMeta(authority, False, False)],
    )
    return [create, init]


def write(buffer: Pubkey, authority: Pubkey, offset: int, chunk: bytes) -> Instruction:
    """``Write {offset: u32, bytes: Vec<u8>}`` (a u64 length prefix) into the buffer."""
    data = struct.pack("<IIQ", _WRITE, offset, len(chunk)) + chunk
    return Instruction(
        LOADER_V3, data, [AccountMeta(buffer, False, True), AccountMeta(authority, True, False)]
    )


def deploy_with_max_data_len(
    payer: Pubkey,
    program: Pubkey,
    buffer: Pubkey,
    authority: Pubkey,
    program_lamports: int,
    max_data_len: int,
) -> list[Instruction]:
    """``CreateAccount`` of the program (36 bytes, owned by the loader; the program
    keypair signs), then ``DeployWithMaxDataLen`` with the account order agave expects."""
    create = create_account(
        CreateAccountParams(
            from_pubkey=payer,
            to_pubkey=program,
            lamports=program_lamports,
            space=PROGRAM_SIZE,
            owner=LOADER_V3,
        )
    )
    metas = [
        AccountMeta(payer, True, True),
        AccountMeta(programdata_address(program), False, True),
        AccountMeta(program, False, True),
        AccountMeta(buffer, False, True),
        AccountMeta(RENT, False, False),
        AccountMeta(CLOCK, False, False),
        AccountMeta(SYSTEM_PROGRAM, False, False),
        AccountMeta(authority, True, False),
    ]
    deploy = Instruction(LOADER_V3, struct.pack("<IQ", _DEPLOY, max_data_len), metas)
    return [create, deploy]


def _option_key(data: bytes, at: int) -> Pubkey | None:
    if data[at] == 0:
        return None
    if data[at] != 1:
        raise ValueError("bad Option tag")
    return Pubkey.from_bytes(data[at + 1 : at + 33])


def parse_program(data: bytes) -> Pubkey:
    """The ProgramData address a ``Program`` account points to (ValueError if not one)."""
    if len(data) < PROGRAM_SIZE or struct.unpack_from("<I", data)[0] != _PROGRAM:
        raise ValueError("not an upgradeable Program account")
    return Pubkey.from_bytes(data[4:36])


@dataclass(frozen=True)
class ProgramData:
    """A ``ProgramData`` account: the slot of the last deploy, the upgrade authority
    (None: immutable) and the bytes after the header (the program, zero-padded)."""

    slot: int
    upgrade_authority: Pubkey | None
    program: bytes


def parse_programdata(data: bytes) -> ProgramData:
    if len(data) < PROGRAMDATA_METADATA or struct.unpack_from("<I", data)[0] != _PROGRAMDATA:
        raise ValueError("not an upgradeable ProgramData account")
    (slot,) = struct.unpack_from("<Q", data, 4)
    return ProgramData(slot, _option_key(data, 12), bytes(data[PROGRAMDATA_METADATA:]))


def parse_buffer_authority(data: bytes) -> Pubkey | None:
    if len(data) < 5 or struct.unpack_from("<I", data)[0] != _BUFFER:
        raise ValueError("not an upgradeable Buffer account")
    return _option_key(data, 4)
