"""The SQLite mirror beside the chain: where they disagree, as sentences. Pure.

With a chain the program's accounts are the ledger and SQLite is its mirror. Two
places compare them: the submitter after every landed transaction (only the accounts
it touched: a mismatch there is a bug, and the unit is undone on both sides), and
`perpd verify` (everything, plus conservation on the chain's side).

Semantics differ in one place, on purpose: the chain's collateral ``locked`` is the
initial margin committed (Σ imr + imm), the mirror's is the money in the positions
(Σ cr + cm, the SPEC §4 books). So ``free`` is compared per agent, positions field by
field, and each side's ``locked`` against its own rule. A position whose lock is still
pending holds a reservation in the mirror that the chain does not know of yet: the
mirror's ``free`` plus its reservations is what the chain must show free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from perpd.records import Position, PositionStatus

CHAIN_STATUS = {PositionStatus.OPEN: 0, PositionStatus.CLOSED: 1, PositionStatus.LIQUIDATED: 2}
CHAIN_SIDE = {1: 0, -1: 1}  # the mirror's +1/-1 -> the program's 0 long / 1 short
_MONEY_FIELDS = (
    "notional",
    "entry_price",
    "cr",
    "cm",
    "imr",
    "imm",
    "rate_ppm",
    "t_base",
    "funding_paid",
)


@dataclass(frozen=True)
class ChainBooks:
    """Decoded program accounts: collaterals by agent, positions by address (base58)."""

    collaterals: Mapping[str, Any]  # .free .locked .withdrawals
    positions: Mapping[str, Any]  # the program's Position fields
    accrued_fees: int | None  # None: the config was not among the accounts
    vault_balance: int | None = None  # the vault's token amount, when known


@dataclass(frozen=True)
class MirrorBooks:
    """The mirror's side: free (+ pending reservations) by agent, positions by address."""

    free: Mapping[str, int]
    positions: Mapping[str, Position]
    fees: int


COLLATERAL_LEN = 72  # the program's account sizes (escrow-program/README.md)
POSITION_LEN = 184
TOKEN_AMOUNT = slice(64, 72)  # an SPL Token account's amount (u64 LE)


def chain_books(client: Any, accounts: Iterable[tuple[Any, Any]]) -> ChainBooks:
    """Decode the program's accounts among ``(address, account)`` pairs; the vault's
    balance if the vault is among them. Accounts of other programs are ignored."""
    collaterals: dict[str, Any] = {}
    positions: dict[str, Any] = {}
    fees = vault = None
    for address, account in accounts:
        if account is None:
            continue
        data = bytes(account.data)
        if address == client.vault:
            vault = int.from_bytes(data[TOKEN_AMOUNT], "little")
        if account.owner != client.program_id:
            continue
        if address == client.config:
            fees = client.decode_config(data).accrued_fees
        elif len(data) == COLLATERAL_LEN:
            c = client.decode_collateral(data)
            collaterals[str(c.agent)] = c
        elif len(data) == POSITION_LEN:
            positions[str(address)] = client.decode_position(data)
    return ChainBooks(collaterals, positions, fees, vault)


def position_differences(address: str, mine: Position | None, chain: Any) -> list[str]:
    if mine is None:
        return [f"position {address}: on chain (status {chain.status}) but not in the mirror"]
    out = []
    want = CHAIN_STATUS.get(mine.status)
    if want != chain.status:
        out.append(
            f"position {mine.position_id} ({address}): status {mine.status} in the "
            f"mirror, {chain.status} on chain"
        )
    if CHAIN_SIDE[mine.state.side] != chain.side:
        out.append(f"position {mine.position_id}: side differs")
    fields = _MONEY_FIELDS if mine.status == PositionStatus.OPEN else ("cr", "cm")
    for name in fields:
        a, b = getattr(mine.state, name), getattr(chain, name)
        if a != b:
            out.append(
                f"position {mine.position_id} ({address}): {name} {a} in the mirror, {b} on chain"
            )
    return out


def differences(mirror: MirrorBooks, chain: ChainBooks, *, complete: bool) -> list[str]:
    """Every disagreement. ``complete``: both sides list everything (verify), so an
    entry on one side only is a difference; otherwise only the chain's entries count."""
    out: list[str] = []
    agents: Iterable[str] = chain.collaterals
    if complete:
        agents = sorted(set(chain.collaterals) | {a for a, v in mirror.free.items() if v})
    for agent in agents:
        c = chain.collaterals.get(agent)
        mine, theirs = mirror.free.get(agent, 0), (c.free if c is not None else 0)
        if mine != theirs:
            out.append(
                f"agent {agent}: free {mine} in the mirror (with reservations), {theirs} on chain"
            )
    addresses: Iterable[str] = chain.positions
    if complete:
        addresses = sorted(set(chain.positions) | set(mirror.positions))
    for address in addresses:
        onchain = chain.positions.get(address)
        if onchain is None:
            p = mirror.positions[address]
            out.append(
                f"position {p.position_id} ({address}): {p.status} in the mirror, missing on chain"
            )
            continue
        out += position_differences(address, mirror.positions.get(address), onchain)
    if chain.accrued_fees is not None and chain.accrued_fees != mirror.fees:
        out.append(f"fees: {mirror.fees} in the mirror, {chain.accrued_fees} accrued on chain")
    return out


def chain_conservation(chain: ChainBooks) -> list[str]:
    """The program's own books: vault = Σ free + Σ open positions' cr + cm + accrued fees,
    and Σ locked = Σ open positions' imr + imm."""
    out = []
    free = sum(c.free for c in chain.collaterals.values())
    locked = sum(c.locked for c in chain.collaterals.values())
    opened = [p for p in chain.positions.values() if p.status == 0]
    in_positions = sum(p.cr + p.cm for p in opened)
    margins = sum(p.imr + p.imm for p in opened)
    fees = chain.accrued_fees or 0
    if chain.vault_balance is not None and chain.vault_balance != free + in_positions + fees:
        out.append(
            f"chain conservation: vault holds {chain.vault_balance} but Σ free {free} "
            f"+ Σ open positions {in_positions} + fees {fees} = "
            f"{free + in_positions + fees}"
        )
    if locked != margins:
        out.append(f"chain locked: Σ locked {locked} but open positions' margins {margins}")
    return out
