"""``perpd chain deploy`` and ``status``: the escrow program through the upgradeable
loader over any RPC (`RpcTransport`), the way ``solana program deploy`` does it.

Deploy: a fresh buffer (``CreateAccount`` + ``InitializeBuffer``, authority = the
upgrade authority), the program written in packet-sized ``Write`` chunks (several in
flight: each lands once by the transport's rules, and writes to distinct offsets
commute), the buffer read back and compared byte for byte, then the program account
created and ``DeployWithMaxDataLen`` in one transaction signed by the payer, the
program keypair and the authority (one keypair pays and holds the authority). The
upgrade authority is what issue 9's ``initialize`` checks against ProgramData, so
``initialize`` can follow with the same keypair.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import trio
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from perpd.chain import _loader as loader
from perpd.chain._errors import ChainError
from perpd.chain._program import elf_length, packaged_program, packaged_sha256
from perpd.chain._rpc import RpcTransport

__all__ = ["DeployRefused", "Deployed", "ProgramStatus", "deploy", "program_status"]

PACKET_DATA_SIZE = 1232  # the largest transaction a validator accepts


class DeployRefused(ChainError):
    """Deploying would not do what was asked (the address is taken, a bad length…)."""


@dataclass(frozen=True)
class Deployed:
    program_id: Pubkey
    programdata: Pubkey
    signature: Signature
    slot: int
    writes: int


def write_chunk_size(transport: RpcTransport, authority: Keypair, buffer: Pubkey) -> int:
    """The most program bytes one ``Write`` transaction can carry with this transport's
    ComputeBudget instructions."""
    empty = loader.write(buffer, authority.pubkey(), 0, b"")
    size = len(bytes(transport.sign([empty], authority, [], Hash.default())))
    return PACKET_DATA_SIZE - size


async def deploy(
    transport: RpcTransport,
    authority: Keypair,
    program: Keypair,
    *,
    program_so: bytes | None = None,
    max_data_len: int | None = None,
    concurrency: int = 8,
) -> Deployed:
    """Deploys ``program_so`` (default: the packaged escrow) at ``program``'s address
    with ``authority`` as payer and upgrade authority; ``max_data_len`` defaults to
    twice the program, room for upgrades."""
    so = packaged_program() if program_so is None else program_so
    max_len = 2 * len(so) if max_data_len is None else max_data_len
    if max_len < len(so):
        raise DeployRefused(f"max data length {max_len} is below the program's {len(so)} bytes")
    if await transport.get_account(program.pubkey()) is not None:
        raise DeployRefused(
            f"{program.pubkey()} already has an account: deploy makes new programs only"
        )
    buffer = Keypair()
    rent = await transport.minimum_balance(loader.BUFFER_METADATA + len(so))
    await transport.send_and_confirm(
        loader.create_buffer(
            authority.pubkey(), buffer.pubkey(), authority.pubkey(), rent, len(so)
        ),
        authority,
        [buffer],
    )
    chunk = write_chunk_size(transport, authority, buffer.pubkey())
    offsets = list(range(0, len(so), chunk))
    failures: list[ChainError] = []
    limiter = trio.CapacityLimiter(concurrency)

    async def write_at(offset: int) -> None:
        ix = loader.write(buffer.pubkey(), authority.pubkey(), offset, so[offset : offset + chunk])
        async with limiter:
            if failures:
                return
            try:
                await transport.send_and_confirm([ix], authority)
            except ChainError as exc:
                failures.append(exc)

    async with trio.open_nursery() as nursery:
        for offset in offsets:
            nursery.start_soon(write_at, offset)
    if failures:
        raise failures[0]
    written = await transport.get_account(buffer.pubkey())
    if written is None or bytes(written.data)[loader.BUFFER_METADATA :] != so:
        raise DeployRefused(f"buffer {buffer.pubkey()} does not hold the program after writing")
    program_rent = await transport.minimum_balance(loader.PROGRAM_SIZE)
    done = await transport.send_and_confirm(
        loader.deploy_with_max_data_len(
            authority.pubkey(),
            program.pubkey(),
            buffer.pubkey(),
            authority.pubkey(),
            program_rent,
            max_len,
        ),
        authority,
        [program],
    )
    programdata = loader.programdata_address(program.pubkey())
    return Deployed(program.pubkey(), programdata, done.signature, done.slot, len(offsets))


@dataclass(frozen=True)
class ProgramStatus:
    """What ``perpd chain status`` prints (as JSON)."""

    program_id: Pubkey
    deployed: bool
    programdata: Pubkey | None = None
    upgrade_authority: Pubkey | None = None
    slot: int | None = None
    program_len: int | None = None
    max_data_len: int | None = None
    program_sha256: str | None = None
    config: dict[str, Any] | None = None

    @property
    def matches_package(self) -> bool:
        return self.program_sha256 == packaged_sha256()

    def to_json(self) -> dict[str, Any]:
        def text(key: Pubkey | None) -> str | None:
            return None if key is None else str(key)

        return {
            "program_id": str(self.program_id),
            "deployed": self.deployed,
            "programdata": text(self.programdata),
            "upgrade_authority": text(self.upgrade_authority),
            "programdata_slot": self.slot,
            "program_len": self.program_len,
            "max_data_len": self.max_data_len,
            "program_sha256": self.program_sha256,
            "packaged_sha256": packaged_sha256(),
            "matches_package": self.matches_package,
            "initialized": self.config is not None,
            "config": self.config,
        }


async def program_status(transport: RpcTransport, program_id: Pubkey) -> ProgramStatus:
    """The program's loader state, the sha256 of its deployed bytes, its config."""
    account = await transport.get_account(program_id)
    if account is None or account.owner != loader.LOADER_V3:
        return ProgramStatus(program_id, deployed=False)
    programdata = loader.parse_program(bytes(account.data))
    config_address = Pubkey.find_program_address([b"config"], program_id)[0]
    pd_account, config_account = await transport.get_accounts([programdata, config_address])
    if pd_account is None:
        return ProgramStatus(program_id, deployed=False, programdata=programdata)
    state = loader.parse_programdata(bytes(pd_account.data))
    length = elf_length(state.program)
    digest = None if length is None else hashlib.sha256(state.program[:length]).hexdigest()
    config = None
    if config_account is not None and config_account.owner == program_id:
        config = decode_config(bytes(config_account.data))
    return ProgramStatus(
        program_id,
        deployed=True,
        programdata=programdata,
        upgrade_authority=state.upgrade_authority,
        slot=state.slot,
        program_len=length,
        max_data_len=len(state.program),
        program_sha256=digest,
        config=config,
    )


def decode_config(data: bytes) -> dict[str, Any]:
    """The config account decoded with the packaged IDL through anchorpy's coder."""
    from anchorpy import Coder, Idl  # heavy; only status needs it

    idl = Idl.from_json(resources.files(__package__).joinpath("escrow.json").read_text())
    decoded = _plain(Coder(idl).accounts.decode(data))
    if not isinstance(decoded, dict):
        raise ValueError("the config account did not decode to a struct")
    return decoded


def _plain(value: Any) -> Any:
    """A decoded Borsh value as JSON: keys as base58, structs as objects."""
    if isinstance(value, Pubkey):
        return str(value)
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if hasattr(value, "__dict__"):
        return {k: _plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return json.loads(json.dumps(value, default=str))
