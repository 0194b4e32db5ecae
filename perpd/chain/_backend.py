"""One interface to the escrow program, two backends: `LocalChain` (LiteSVM inside the
daemon, perpd.chain._local) and `RpcChain` (any cluster over JSON-RPC, here).

The daemon's chain submitter only sees `Chain`: it builds instructions with
``chain.client`` (an `EscrowClient`), sends them with ``chain.send`` (the router signs
and pays; the chain adds any other key it holds that an instruction needs), and reads
accounts back with ``chain.get_accounts``. A refusal by the program (or the runtime) is
`ChainRefused`, with the program's error code and IDL name; a cluster that cannot be
reached or did not confirm in time is `ChainUnavailable` (perpd.chain._errors).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from solders.account import Account
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from perpd.chain._client import EscrowClient, error_names
from perpd.chain._errors import ChainUnavailable, TransactionFailed
from perpd.chain._pyth_account import price_feed_account
from perpd.chain._rpc import RpcTransport
from perpd.markets import MARKETS

__all__ = ["Chain", "ChainRefused", "Landed", "RpcChain", "market_price_account", "signers_for"]


@dataclass(frozen=True)
class Landed:
    """A transaction that landed without error. ``accounts``: the post-images of every
    account it wrote (local backend: what the store saves in the same commit; None is an
    account that no longer exists); {} for rpc."""

    signature: str
    slot: int
    units: int | None
    logs: list[str]
    accounts: dict[Pubkey, Account | None] = field(default_factory=dict)


class ChainRefused(TransactionFailed):
    """The program (or the runtime) refused the transaction; nothing it asked was applied.

    ``code`` is the custom error (the escrow's 6000-up, or a precompile's / SPL Token's
    small numbers), ``name`` the escrow's IDL name for it (``ConsentExpired``…) or the
    runtime's error name, ``logs`` the program logs."""

    def __init__(
        self,
        error: str,
        *,
        code: int | None = None,
        name: str | None = None,
        instruction: int | None = None,
        logs: list[str] | None = None,
        signature: Any = None,
        slot: int | None = None,
    ) -> None:
        super().__init__(
            error, code=code, instruction=instruction, logs=logs, signature=signature, slot=slot
        )
        self.name = name

    @classmethod
    def of(cls, failed: TransactionFailed) -> ChainRefused:
        """The transport's `TransactionFailed` with the program's error name."""
        name = error_names().get(failed.code) if failed.code is not None else None
        return cls(
            failed.error,
            code=failed.code,
            name=name or failed.error,
            instruction=failed.instruction,
            logs=failed.logs,
            signature=failed.signature,
            slot=failed.slot,
        )


class Chain(Protocol):
    """What the daemon needs of a chain (both backends)."""

    mode: str  # "local" | "rpc"
    client: EscrowClient
    router: Keypair  # signs lock_position and pays every fee

    async def send(
        self, instructions: Sequence[Instruction], *, prices: Iterable[int] = ()
    ) -> Landed:
        """Lands one transaction. ``prices``: the market indexes whose price account it
        reads (the local backend writes them from the oracle first). `ChainRefused` /
        `ChainUnavailable`."""
        ...

    async def get_accounts(self, addresses: Sequence[Pubkey]) -> list[Account | None]: ...

    async def slot(self) -> int: ...

    def price_account(self, market: int) -> Pubkey: ...

    def info(self) -> dict[str, Any]:
        """GET /chain: mode, program_id, cluster, usdc_mint, vault, slot (rpc: the last
        slot seen, None before any; await `slot` for a fresh one)."""
        ...


def market_price_account(market: int) -> Pubkey:
    """The Pyth push-oracle `PriceUpdateV2` account (shard 0) of market index ``market``."""
    for m in MARKETS.values():
        if m.index == market:
            return price_feed_account(bytes.fromhex(m.feed_id))
    raise ValueError(f"no market with index {market}")


def signers_for(instructions: Sequence[Instruction], held: Iterable[Keypair]) -> list[Keypair]:
    """The held keypairs the instructions need as signers; ValueError naming any signer
    that is not held (an agent's key never is: agents sign consents, not transactions)."""
    keys = {k.pubkey(): k for k in held}
    needed = {m.pubkey for ix in instructions for m in ix.accounts if m.is_signer}
    missing = needed - set(keys)
    if missing:
        names = ", ".join(sorted(map(str, missing)))
        raise ValueError(f"transaction needs signatures the chain does not hold: {names}")
    return [keys[k] for k in keys if k in needed]


class RpcChain:
    """The escrow on a cluster over JSON-RPC (`RpcTransport`: trio-safe confirmation,
    re-sends, fresh blockhash on expiry). The router pays; ``authority`` (the upgrade
    authority, optional) signs what needs the admin. Price accounts are the Pyth push
    oracle's (kept fresh by Pyth's price pushers on real clusters); ``prices`` is unused."""

    mode = "rpc"

    def __init__(
        self,
        transport: RpcTransport,
        client: EscrowClient,
        router: Keypair,
        *,
        authority: Keypair | None = None,
        cluster: str | None = None,
    ) -> None:
        self.transport = transport
        self.client = client
        self.router = router
        self.authority = authority
        self.cluster = cluster or transport.url
        self.last_slot: int | None = None

    @classmethod
    async def connect(
        cls,
        transport: RpcTransport,
        program_id: Pubkey,
        router: Keypair,
        *,
        authority: Keypair | None = None,
    ) -> RpcChain:
        """The chain of an initialized program: the mint, vault and fee account are read
        from its config account. ValueError if the program is not initialized."""
        config = Pubkey.find_program_address([b"config"], program_id)[0]
        account = await transport.get_account(config)
        if account is None or account.owner != program_id:
            raise ValueError(f"escrow program {program_id} is not initialized (no config account)")
        client = EscrowClient.from_config(program_id, bytes(account.data))
        return cls(transport, client, router, authority=authority)

    def _held(self) -> list[Keypair]:
        return [self.router] + ([self.authority] if self.authority is not None else [])

    async def send(
        self, instructions: Sequence[Instruction], *, prices: Iterable[int] = ()
    ) -> Landed:
        signers = signers_for(instructions, self._held())
        try:
            done = await self.transport.send_and_confirm(instructions, self.router, signers)
        except ChainRefused:
            raise
        except TransactionFailed as exc:
            raise ChainRefused.of(exc) from exc
        self.last_slot = max(self.last_slot or 0, done.slot)
        return Landed(str(done.signature), done.slot, None, [])

    async def get_accounts(self, addresses: Sequence[Pubkey]) -> list[Account | None]:
        return await self.transport.get_accounts(addresses)

    async def slot(self) -> int:
        self.last_slot = await self.transport.slot()
        return self.last_slot

    async def block_time(self, slot: int) -> int:
        """The time the program computed at in ``slot`` (its block's Clock)."""
        return await self.transport.block_time(slot)

    async def landed_slot(self, signature: str) -> int:
        """The slot a transaction executed in without error (`ChainUnavailable` if it is
        unseen or failed: another signature of the same action is the one that landed)."""
        (status,) = await self.transport.statuses([Signature.from_string(signature)], history=True)
        if status is None or status.err is not None:
            raise ChainUnavailable(f"transaction {signature} not found landed")
        return int(status.slot)

    def price_account(self, market: int) -> Pubkey:
        return market_price_account(market)

    def info(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "program_id": str(self.client.program_id),
            "cluster": self.cluster,
            "usdc_mint": str(self.client.usdc_mint),
            "vault": str(self.client.vault),
            "slot": self.last_slot,
        }
