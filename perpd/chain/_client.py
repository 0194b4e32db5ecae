"""The escrow program's client: instructions and accounts, pure (no I/O).

Instruction data and account decoding go through anchorpy's `Coder` over the packaged
IDL (``perpd/chain/escrow.json``, the program's own interface), and account metas
follow the IDL's ``isMut``/``isSigner`` flags, so the client cannot drift from the
program. The caller passes only what varies: the client fills in the config, the vault,
its authority, sysvars and programs.

A relayed instruction is preceded by one call of the Ed25519 signature-verify precompile
over the agents' SPEC §6 consents (`ed25519_verify_ix`): lock_position's call carries
both (request first, quote second), close's and withdraw's one. The consents' bytes are
`perpd.chain._consent`'s; the router only relays signatures the agents made.

Interface change from the issue-10 split: ``close_position_ixs`` and
``withdraw_with_consent_ixs`` take no ``caller`` (neither instruction has a signer; the
backend's router pays the fee).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from anchorpy import Coder, Idl, NamedInstruction
from anchorpy_core.idl import IdlAccount
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.sysvar import INSTRUCTIONS as INSTRUCTIONS_SYSVAR
from spl.token.constants import TOKEN_PROGRAM_ID

from perpd.chain._consent import (
    close_consent,
    quote_consent,
    request_consent,
    request_hash,
    withdraw_consent,
)
from perpd.chain._loader import programdata_address
from perpd.chain._pyth_account import PYTH_RECEIVER_ID

__all__ = [
    "ED25519_PROGRAM_ID",
    "CollateralAccount",
    "ConfigAccount",
    "EscrowClient",
    "MarketConfig",
    "PositionAccount",
    "QuoteTerms",
    "RequestTerms",
    "ed25519_verify_ix",
    "escrow_idl",
]

ED25519_PROGRAM_ID = Pubkey.from_string("Ed25519SigVerify111111111111111111111111111")
SYSTEM_PROGRAM_ID = Pubkey.default()
INLINE = 0xFFFF  # an Ed25519 offset's instruction index meaning "this very call"
POSITION_OPEN, POSITION_CLOSED, POSITION_LIQUIDATED = 0, 1, 2


@cache
def escrow_idl() -> Idl:
    """The packaged IDL (the same file as escrow-program/idl/escrow.json)."""
    return Idl.from_json(resources.files(__package__).joinpath("escrow.json").read_text())


@cache
def _coder() -> Coder:
    return Coder(escrow_idl())


@cache
def error_names() -> dict[int, str]:
    """The program's custom error codes (6000 up) and their IDL names."""
    return {e.code: e.name for e in escrow_idl().errors or ()}


# ---------------------------------------------------------------- consent terms


@dataclass(frozen=True)
class RequestTerms:
    """The request consent's fields (SPEC §6); side 0 long, 1 short; duration 0 perpetual."""

    requester: Pubkey
    nonce: int
    market: int
    side: int
    size: int
    leverage: int
    max_rate: int
    duration: int
    expires_at: int

    def consent(self, program_id: Pubkey) -> bytes:
        return request_consent(
            program_id,
            self.requester,
            self.nonce,
            self.market,
            self.side,
            self.size,
            self.leverage,
            self.max_rate,
            self.duration,
            self.expires_at,
        )


@dataclass(frozen=True)
class QuoteTerms:
    """The quote consent's fields (SPEC §6), on the request it answers."""

    maker: Pubkey
    rate: int
    collateral: int
    valid_until: int

    def consent(self, program_id: Pubkey, request: RequestTerms) -> bytes:
        digest = request_hash(request.consent(program_id))
        return quote_consent(
            program_id, self.maker, digest, self.rate, self.collateral, self.valid_until
        )


def ed25519_verify_ix(
    signed: Sequence[tuple[Pubkey, bytes, bytes]], *, data_in: int = INLINE
) -> Instruction:
    """One call of the Ed25519 precompile over ``(public key, signature, message)``
    entries, signature n for entry n, each entry's bytes inside this call.

    ``data_in=i`` (tests only) points every offset at instruction ``i`` and leaves the
    bytes out, which the program must refuse (``ConsentOutsideCall``)."""
    header = 2 + 14 * len(signed)
    offsets, payload = b"", b""
    for key, signature, message in signed:
        if len(signature) != 64:
            raise ValueError(f"an ed25519 signature is 64 bytes, got {len(signature)}")
        key_at = header + len(payload)
        payload += bytes(key)
        sig_at = header + len(payload)
        payload += signature
        msg_at = header + len(payload)
        payload += message
        fields = (sig_at, data_in, key_at, data_in, msg_at, len(message), data_in)
        offsets += b"".join(f.to_bytes(2, "little") for f in fields)
    data = bytes([len(signed), 0]) + offsets + (payload if data_in == INLINE else b"")
    return Instruction(ED25519_PROGRAM_ID, data, [])


# ---------------------------------------------------------------- accounts


@dataclass(frozen=True)
class MarketConfig:
    feed_id: bytes  # 32 bytes; all zero: not listed
    max_leverage: int  # 0: not listed


@dataclass(frozen=True)
class ConfigAccount:
    admin: Pubkey
    router_authority: Pubkey
    usdc_mint: Pubkey
    vault: Pubkey
    vault_authority: Pubkey
    fee_account: Pubkey
    pyth_receiver: Pubkey
    accrued_fees: int
    funding_period_s: int
    bump: int
    vault_authority_bump: int
    markets: tuple[MarketConfig, ...]


@dataclass(frozen=True)
class CollateralAccount:
    agent: Pubkey
    free: int
    locked: int
    withdrawals: int
    bump: int


@dataclass(frozen=True)
class PositionAccount:
    """The program's Position (SPEC §4 state); side 0 long, 1 short (the requester's);
    status 0 open, 1 closed, 2 liquidated; term_end 0: perpetual."""

    requester: Pubkey
    maker: Pubkey
    nonce: int
    notional: int
    entry_price: int
    cr: int
    cm: int
    imr: int
    imm: int
    rate_ppm: int
    t_base: int
    funding_paid: int
    opened_at: int
    term_end: int
    closes: int
    market: int
    side: int
    leverage: int
    status: int
    bump: int


def _decode(data: bytes, name: str) -> Any:
    """An account of type ``name`` by anchorpy (ValueError if it is another)."""
    expected = _coder().accounts.acc_name_to_discriminator[name]
    if bytes(data[:8]) != expected:
        raise ValueError(f"not a {name} account (discriminator {bytes(data[:8]).hex()})")
    return _coder().accounts.decode(bytes(data))


def _fields(decoded: Any, cls: type) -> dict[str, Any]:
    return {f.name: getattr(decoded, f.name) for f in dataclasses.fields(cls)}


def _idl_accounts(name: str) -> list[IdlAccount]:
    """The accounts of instruction ``name`` in the IDL's order (none are nested)."""
    idl_ix = next(ix for ix in escrow_idl().instructions if ix.name == name)
    flat = [acc for acc in idl_ix.accounts if isinstance(acc, IdlAccount)]
    assert len(flat) == len(idl_ix.accounts), f"{name}: nested account groups"
    return flat


# ---------------------------------------------------------------- the client


class EscrowClient:
    """Builds the escrow program's instructions and decodes its accounts."""

    def __init__(
        self, program_id: Pubkey, *, usdc_mint: Pubkey, vault: Pubkey, fee_account: Pubkey
    ) -> None:
        self.program_id = program_id
        self.usdc_mint = usdc_mint
        self.vault = vault
        self.fee_account = fee_account
        self.config = Pubkey.find_program_address([b"config"], program_id)[0]
        self.vault_authority = Pubkey.find_program_address([b"vault"], program_id)[0]
        self.programdata = programdata_address(program_id)

    # ---- addresses ----------------------------------------------------------

    def collateral_address(self, agent: Pubkey) -> Pubkey:
        return Pubkey.find_program_address([b"collateral", bytes(agent)], self.program_id)[0]

    def position_address(self, requester: Pubkey, nonce: int) -> tuple[Pubkey, int]:
        """The position's address and canonical bump (the one lock_position takes)."""
        seeds = [b"position", bytes(requester), nonce.to_bytes(8, "little")]
        return Pubkey.find_program_address(seeds, self.program_id)

    # ---- generic ------------------------------------------------------------

    def instruction(
        self,
        name: str,
        args: Mapping[str, Any],
        accounts: Mapping[str, Pubkey],
        extra: Sequence[AccountMeta] = (),
    ) -> Instruction:
        """``name`` from the IDL: data by anchorpy's coder (``args`` by snake_case name),
        metas in the IDL's order with its flags (``accounts`` by the IDL's names)."""
        metas = [
            AccountMeta(accounts[acc.name], is_signer=acc.is_signer, is_writable=acc.is_mut)
            for acc in _idl_accounts(name)
        ]
        data = _coder().instruction.build(NamedInstruction(name=name, data=dict(args)))
        return Instruction(self.program_id, data, metas + list(extra))

    @staticmethod
    def with_accounts(ix: Instruction, name: str, **accounts: Pubkey) -> Instruction:
        """``ix`` (an instruction ``name``) with some of its IDL-named accounts replaced
        (flags kept): how tests show the program refuses a wrong account."""
        idl_accounts = _idl_accounts(name)
        unknown = set(accounts) - {a.name for a in idl_accounts}
        if unknown:
            raise ValueError(f"{name} has no account(s) {sorted(unknown)}")
        metas = list(ix.accounts)
        for i, acc in enumerate(idl_accounts):
            if acc.name in accounts:
                m = metas[i]
                metas[i] = AccountMeta(accounts[acc.name], m.is_signer, m.is_writable)
        return Instruction(ix.program_id, ix.data, metas)

    # ---- administration -----------------------------------------------------

    def initialize_ix(
        self,
        *,
        admin: Pubkey,
        router_authority: Pubkey,
        funding_period_s: int,
        pyth_receiver: Pubkey = PYTH_RECEIVER_ID,
    ) -> Instruction:
        """``initialize``, signed by the program's upgrade authority (``admin``)."""
        accounts = {
            "admin": admin,
            "config": self.config,
            "vault": self.vault,
            "usdcMint": self.usdc_mint,
            "feeAccount": self.fee_account,
            "tokenProgram": TOKEN_PROGRAM_ID,
            "systemProgram": SYSTEM_PROGRAM_ID,
            "program": self.program_id,
            "programData": self.programdata,
        }
        args = {
            "router_authority": router_authority,
            "pyth_receiver": pyth_receiver,
            "funding_period_s": funding_period_s,
        }
        return self.instruction("initialize", args, accounts)

    def set_market_ix(
        self, *, admin: Pubkey, market: int, feed_id: bytes, max_leverage: int
    ) -> Instruction:
        accounts = {"admin": admin, "config": self.config}
        args = {"market": market, "feed_id": list(feed_id), "max_leverage": max_leverage}
        return self.instruction("set_market", args, accounts)

    def collect_fees_ix(self, *, admin: Pubkey) -> Instruction:
        accounts = {
            "admin": admin,
            "config": self.config,
            "vault": self.vault,
            "feeAccount": self.fee_account,
            "vaultAuthority": self.vault_authority,
            "tokenProgram": TOKEN_PROGRAM_ID,
        }
        return self.instruction("collect_fees", {}, accounts)

    # ---- collateral ---------------------------------------------------------

    def deposit_ix(
        self, *, depositor: Pubkey, source: Pubkey, agent: Pubkey, amount: int
    ) -> Instruction:
        """``amount`` from ``source`` (a USDC account the depositor owns) to ``agent``'s
        collateral (created on first deposit, paid by the depositor)."""
        accounts = {
            "depositor": depositor,
            "source": source,
            "vault": self.vault,
            "collateral": self.collateral_address(agent),
            "agent": agent,
            "config": self.config,
            "tokenProgram": TOKEN_PROGRAM_ID,
            "systemProgram": SYSTEM_PROGRAM_ID,
        }
        return self.instruction("deposit", {"amount": amount}, accounts)

    def _payout_accounts(self, agent: Pubkey, destination: Pubkey) -> dict[str, Pubkey]:
        return {
            "collateral": self.collateral_address(agent),
            "vault": self.vault,
            "destination": destination,
            "vaultAuthority": self.vault_authority,
            "config": self.config,
            "tokenProgram": TOKEN_PROGRAM_ID,
        }

    def withdraw_ix(self, *, agent: Pubkey, destination: Pubkey, amount: int) -> Instruction:
        """A withdrawal signed by the agent itself."""
        accounts = {"agent": agent} | self._payout_accounts(agent, destination)
        return self.instruction("withdraw", {"amount": amount}, accounts)

    def withdraw_with_consent_ix(
        self, *, agent: Pubkey, destination: Pubkey, amount: int, withdrawals: int, expires_at: int
    ) -> Instruction:
        accounts = self._payout_accounts(agent, destination) | {"instructions": INSTRUCTIONS_SYSVAR}
        args = {"amount": amount, "withdrawals": withdrawals, "expires_at": expires_at}
        return self.instruction("withdraw_with_consent", args, accounts)

    def withdraw_with_consent_ixs(
        self,
        *,
        agent: Pubkey,
        destination: Pubkey,
        amount: int,
        withdrawals: int,
        expires_at: int,
        consent_sig: bytes,
    ) -> list[Instruction]:
        """The agent's withdraw consent, then ``withdraw_with_consent`` (anyone relays)."""
        message = withdraw_consent(
            self.program_id, agent, destination, amount, withdrawals, expires_at
        )
        return [
            ed25519_verify_ix([(agent, consent_sig, message)]),
            self.withdraw_with_consent_ix(
                agent=agent,
                destination=destination,
                amount=amount,
                withdrawals=withdrawals,
                expires_at=expires_at,
            ),
        ]

    # ---- positions ----------------------------------------------------------

    def lock_position_ix(
        self,
        *,
        router: Pubkey,
        request: RequestTerms,
        quote: QuoteTerms,
        price_account: Pubkey,
        position_bump: int | None = None,
    ) -> Instruction:
        """``lock_position`` alone (its consents' call must come right before it);
        ``position_bump`` defaults to the canonical one."""
        position, canonical = self.position_address(request.requester, request.nonce)
        accounts = {
            "router": router,
            "config": self.config,
            "position": position,
            "requesterCollateral": self.collateral_address(request.requester),
            "makerCollateral": self.collateral_address(quote.maker),
            "priceUpdate": price_account,
            "instructions": INSTRUCTIONS_SYSVAR,
            "systemProgram": SYSTEM_PROGRAM_ID,
        }
        args = {
            "nonce": request.nonce,
            "market": request.market,
            "side": request.side,
            "size": request.size,
            "leverage": request.leverage,
            "max_rate": request.max_rate,
            "duration": request.duration,
            "expires_at": request.expires_at,
            "rate": quote.rate,
            "collateral": quote.collateral,
            "valid_until": quote.valid_until,
            "position_bump": canonical if position_bump is None else position_bump,
        }
        return self.instruction("lock_position", args, accounts)

    def lock_position_ixs(
        self,
        *,
        router: Pubkey,
        request: RequestTerms,
        request_sig: bytes,
        quote: QuoteTerms,
        quote_sig: bytes,
        price_account: Pubkey,
    ) -> list[Instruction]:
        """Both consents in one Ed25519 call (request 0, quote 1), then the lock, which
        the router signs and pays for (it creates the position account)."""
        consents = ed25519_verify_ix(
            [
                (request.requester, request_sig, request.consent(self.program_id)),
                (quote.maker, quote_sig, quote.consent(self.program_id, request)),
            ]
        )
        lock = self.lock_position_ix(
            router=router, request=request, quote=quote, price_account=price_account
        )
        return [consents, lock]

    def settle_funding_ix(self, positions: Sequence[Pubkey]) -> Instruction:
        """Funding due on every listed position (anyone; several per transaction)."""
        extra = [AccountMeta(p, is_signer=False, is_writable=True) for p in positions]
        return self.instruction("settle_funding", {}, {"config": self.config}, extra)

    def _position_accounts(
        self, position: Pubkey, requester: Pubkey, maker: Pubkey, price_account: Pubkey
    ) -> dict[str, Pubkey]:
        return {
            "config": self.config,
            "position": position,
            "requesterCollateral": self.collateral_address(requester),
            "makerCollateral": self.collateral_address(maker),
            "priceUpdate": price_account,
        }

    def close_position_ix(
        self,
        *,
        position: Pubkey,
        requester: Pubkey,
        maker: Pubkey,
        size_percent: int,
        closes: int,
        expires_at: int,
        price_account: Pubkey,
    ) -> Instruction:
        accounts = self._position_accounts(position, requester, maker, price_account)
        accounts["instructions"] = INSTRUCTIONS_SYSVAR
        args = {"size_percent": size_percent, "closes": closes, "expires_at": expires_at}
        return self.instruction("close_position", args, accounts)

    def close_position_ixs(
        self,
        *,
        position: Pubkey,
        requester: Pubkey,
        maker: Pubkey,
        size_percent: int,
        closes: int,
        expires_at: int,
        consent_sig: bytes | None,
        price_account: Pubkey,
    ) -> list[Instruction]:
        """The requester's close consent, then ``close_position``; ``consent_sig`` None:
        the term has ended and anyone closes it in full, with no consent."""
        close = self.close_position_ix(
            position=position,
            requester=requester,
            maker=maker,
            size_percent=size_percent,
            closes=closes,
            expires_at=expires_at,
            price_account=price_account,
        )
        if consent_sig is None:
            return [close]
        message = close_consent(self.program_id, position, size_percent, closes, expires_at)
        return [ed25519_verify_ix([(requester, consent_sig, message)]), close]

    def liquidate_ix(
        self,
        *,
        position: Pubkey,
        requester: Pubkey,
        maker: Pubkey,
        liquidator: Pubkey,
        reward_to: Pubkey,
        price_account: Pubkey,
    ) -> Instruction:
        """``reward_to``: the liquidator's collateral account, or the config (the
        router's keeper: the reward goes to accrued fees)."""
        accounts = self._position_accounts(position, requester, maker, price_account)
        accounts |= {"liquidator": liquidator, "rewardAccount": reward_to}
        return self.instruction("liquidate", {}, accounts)

    # ---- decoding -----------------------------------------------------------

    def decode_config(self, data: bytes) -> ConfigAccount:
        d = _decode(data, "Config")
        fields = _fields(d, ConfigAccount) | {
            "markets": tuple(MarketConfig(bytes(m.feed_id), m.max_leverage) for m in d.markets)
        }
        return ConfigAccount(**fields)

    def decode_collateral(self, data: bytes) -> CollateralAccount:
        return CollateralAccount(**_fields(_decode(data, "Collateral"), CollateralAccount))

    def decode_position(self, data: bytes) -> PositionAccount:
        return PositionAccount(**_fields(_decode(data, "Position"), PositionAccount))

    @classmethod
    def from_config(cls, program_id: Pubkey, data: bytes) -> EscrowClient:
        """The client of a deployed, initialized program, from its config account."""
        probe = cls(program_id, usdc_mint=program_id, vault=program_id, fee_account=program_id)
        config = probe.decode_config(data)
        return cls(
            program_id,
            usdc_mint=config.usdc_mint,
            vault=config.vault,
            fee_account=config.fee_account,
        )
