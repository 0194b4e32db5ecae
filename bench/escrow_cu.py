#!/usr/bin/env python3
"""Compute units of each escrow instruction, measured in LiteSVM.

Builds nothing: it loads the program `make -C escrow-program` left in
``escrow-program/target/escrow.so`` and runs every instruction once on fixed
keys (so PDA bumps, hence units, are the same every run). Where an instruction
calls SPL Token, the units inside SPL Token are reported beside the program's
own share (its code, PDA work, 1,000 CU per CPI invoke, and the System
Program's units, which a builtin does not log separately).

The last line printed is one JSON object: ``{instruction: units}``, where
units is an integer (no token CPI) or ``{"escrow": own, "spl_token": n}``.
Targets (own share): lock_position <= 6,000 (at bump 255 and at
``lock_position_bump_252``), settle_funding <= 2,000 per
position, close_position <= 6,000, liquidate <= 6,000, deposit/withdraw <= 2,000.

Usage: ``python bench/escrow_cu.py``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "escrow"))

from anchorpy import Coder  # noqa: E402
from escrow_harness import (  # noqa: E402
    BTC,
    MARKETS,
    PERIOD,
    PRICE,
    PROGRAM_SO,
    USDC,
    Escrow,
    Trade,
    load_idl,
)
from spl.token.constants import TOKEN_PROGRAM_ID  # noqa: E402

# The lowest canonical bump measured: the program hashes each higher bump to check
# that none gives an address (1 nonce in 16 has a bump of 252 or lower).
WORST_BUMP = 252
TARGETS = {
    "lock_position": 6_000,
    f"lock_position_bump_{WORST_BUMP}": 6_000,
    "settle_funding_per_position": 2_000,
    "close_position": 6_000,
    "liquidate": 6_000,
    "deposit": 2_000,
    "withdraw": 2_000,
}
BATCH = 20  # positions settled in one transaction


def main() -> int:
    if not PROGRAM_SO.exists():
        print(f"{PROGRAM_SO} is missing: run `make -C escrow-program` first", file=sys.stderr)
        return 1
    idl = load_idl()
    escrow = Escrow(PROGRAM_SO.read_bytes(), idl, Coder(idl))
    units: dict[str, object] = {}

    def measure(name: str, ixs, *signers) -> int:
        outcome = escrow.send_all(ixs if isinstance(ixs, list) else [ixs], *signers)
        if not outcome.ok:
            raise SystemExit(f"{name} failed: {outcome.logs}")
        token = outcome.inner_units(TOKEN_PROGRAM_ID)
        own = outcome.compute_units - token
        units[name] = {"escrow": own, "spl_token": token} if token else own
        return own

    measure("initialize", escrow.initialize_ix(), escrow.admin)
    feed, leverage = MARKETS[BTC]
    measure("set_market", escrow.set_market_ix(BTC, feed, leverage), escrow.admin)
    listed = [escrow.set_market_ix(i, f, lev) for i, (f, lev) in enumerate(MARKETS) if i != BTC]
    assert escrow.send_all(listed, escrow.admin).ok

    alice = escrow.funded_keypair(seed=1)
    bob = escrow.funded_keypair(seed=2)
    alice_wallet = escrow.token_account(alice.pubkey(), 100_000 * USDC)
    bob_wallet = escrow.token_account(bob.pubkey(), 100_000 * USDC)
    measure(
        "deposit_creating_collateral",
        escrow.deposit_ix(alice, alice_wallet, alice.pubkey(), 50_000 * USDC),
        alice,
    )
    assert escrow.send(escrow.deposit_ix(bob, bob_wallet, bob.pubkey(), 50_000 * USDC), bob).ok
    measure("deposit", escrow.deposit_ix(alice, alice_wallet, alice.pubkey(), 1 * USDC), alice)
    measure("withdraw", escrow.withdraw_ix(alice.pubkey(), alice_wallet, 1 * USDC), alice)
    expires_at = escrow.now + 30
    consent = escrow.withdraw_consent_ix(alice, alice_wallet, 1 * USDC, 0, expires_at)
    relayed = escrow.withdraw_with_consent_ix(alice.pubkey(), alice_wallet, 1 * USDC, 0, expires_at)
    measure("withdraw_with_consent", [consent, relayed], escrow.router)

    escrow.set_price(BTC, PRICE)
    trade = Trade(alice, bob, nonce=0)
    measure("lock_position", [trade.consents(), escrow.lock_ix(trade)], escrow.router)
    positions = [escrow.position_address(alice.pubkey(), 0)]
    worst = next(
        n
        for n in range(BATCH + 1, 10_000)
        if escrow.position_pda(alice.pubkey(), n)[1] == WORST_BUMP
    )
    at_worst = trade.but(nonce=worst)
    measure(
        f"lock_position_bump_{WORST_BUMP}",
        [at_worst.consents(), escrow.lock_ix(at_worst)],
        escrow.router,
    )
    for nonce in range(1, BATCH + 1):
        positions.append(escrow.open(trade.but(nonce=nonce)))

    escrow.set_time(escrow.now + PERIOD)
    escrow.set_price(BTC, PRICE)
    measure("settle_funding", escrow.settle_ix(positions[:1]), escrow.router)
    escrow.set_time(escrow.now + PERIOD)
    escrow.set_price(BTC, PRICE)
    batch = measure(
        f"settle_funding_{BATCH}_positions", escrow.settle_ix(positions[1:]), escrow.router
    )
    units["settle_funding_per_position"] = batch // BATCH

    escrow.set_price(BTC, PRICE * 101 // 100)
    closes = escrow.position(positions[0]).closes
    expires_at = escrow.now + 30
    close = [
        escrow.close_consent_ix(alice, positions[0], 50, closes, expires_at),
        escrow.close_ix(positions[0], 50, closes, expires_at),
    ]
    measure("close_position", close, escrow.router)

    escrow.set_price(BTC, 56_000 * 10**8)
    carol = escrow.funded_keypair(seed=3)
    carol_wallet = escrow.token_account(carol.pubkey(), 1 * USDC)
    assert escrow.send(escrow.deposit_ix(carol, carol_wallet, carol.pubkey(), 1 * USDC), carol).ok
    reward = escrow.collateral_address(carol.pubkey())
    measure("liquidate", escrow.liquidate_ix(carol.pubkey(), positions[1], reward), carol)
    measure("collect_fees", escrow.collect_fees_ix(), escrow.admin)
    escrow.assert_conserved()

    print(f"{'instruction':<34} {'escrow':>8} {'SPL Token':>10} {'target':>8}")
    for name, value in units.items():
        own, token = (
            (value["escrow"], value["spl_token"]) if isinstance(value, dict) else (value, 0)
        )
        target = TARGETS.get(name)
        verdict = "" if target is None else f"{target:>8} {'ok' if own <= target else 'MISSED'}"
        print(f"{name:<34} {own:>8} {token or '':>10} {verdict}")
    print(json.dumps(units))
    return 0


if __name__ == "__main__":
    sys.exit(main())
