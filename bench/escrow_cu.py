#!/usr/bin/env python3
"""Compute units of each escrow instruction, measured in LiteSVM.

Builds the program (``make -C escrow-program``), runs every instruction once on
fixed keys (so PDA bumps, hence units, are the same every run) and prints, per
instruction: the transaction's total units, the part spent inside SPL Token
(the CPI callee), and the escrow program's own part (its code, PDA
derivations, 1,000 CU per CPI invoke, and the System Program's units, which a
builtin does not log separately). The issue's target is deposit and
withdraw under 5,000 CU, CPI included.

Usage: ``python bench/escrow_cu.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "escrow"))

from anchorpy import Coder  # noqa: E402
from escrow_harness import USDC, Escrow, build_program, load_idl  # noqa: E402
from spl.token.constants import TOKEN_PROGRAM_ID  # noqa: E402

TARGET = 5_000


def main() -> int:
    idl = load_idl()
    escrow = Escrow(build_program(), idl, Coder(idl))
    rows = []

    def measure(label: str, ix, *signers) -> None:
        outcome = escrow.send(ix, *signers)
        if not outcome.ok:
            raise SystemExit(f"{label} failed: {outcome.logs}")
        rows.append((label, outcome.compute_units, outcome.inner_units(TOKEN_PROGRAM_ID)))

    measure("initialize", escrow.initialize_ix(), escrow.admin)
    agent = escrow.funded_keypair(seed=1)
    wallet = escrow.token_account(agent.pubkey(), 100 * USDC)
    measure(
        "deposit (first: creates collateral)",
        escrow.deposit_ix(agent, wallet, agent.pubkey(), 60 * USDC),
        agent,
    )
    measure("deposit", escrow.deposit_ix(agent, wallet, agent.pubkey(), 40 * USDC), agent)
    measure("withdraw", escrow.withdraw_ix(agent.pubkey(), wallet, 30 * USDC), agent)

    print(f"{'instruction':<38} {'total':>7} {'SPL Token':>10} {'escrow':>7}")
    for label, total, token in rows:
        print(f"{label:<38} {total:>7} {token:>10} {total - token:>7}")
    print(f"\ntarget: deposit and withdraw < {TARGET} CU including the CPI.")
    for label, total, token in rows:
        if label in ("deposit", "withdraw"):
            verdict = "meets" if total < TARGET else "misses"
            print(
                f"  {label}: {total} CU total {verdict} it; {total - token} CU are the escrow's "
                f"own (code + 1,000-CU invoke), {token} CU are SPL Token's Transfer."
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
