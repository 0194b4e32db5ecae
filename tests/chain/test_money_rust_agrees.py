"""Property test: the escrow program's money.rs answers random cases exactly as perpd.money.

The Rust host test cannot call Python, so this writes a vectors file of fresh random
cases (money_vectors' own generators on new seeds, plus states drawn near the 64-bit
limits) and runs `cargo test` with ``PERPD_MONEY_VECTORS`` pointing at it. Cases are kept
only inside the port's documented domain (money.rs docstring: every value and result in
64 bits, a full-position PnL in i64, 10^6 × period_s in u64); the seed is in the failure
message.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from perpd import money, money_vectors
from perpd.money import PositionState

ESCROW = Path(__file__).resolve().parents[2] / "escrow-program"
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
ON_CHAIN = [
    "initial_margin",
    "open_fee",
    "pnl",
    "funding_due",
    "settle_funding",
    "liquidatable_side",
    "close_position",
    "liquidate",
]
SEEDS_PER_RUN = 10
WILD_PER_OP = 300


def _near_limit(rng: random.Random, hi: int) -> int:
    """A value in 1..hi, spread over magnitudes and crowded at the top."""
    kind = rng.randrange(4)
    if kind == 0:
        return hi - rng.randrange(min(hi, 1000))
    if kind == 1:
        return max(1, min(hi, 2 ** rng.randrange(64) + rng.randrange(-2, 3)))
    return rng.randrange(1, 2 ** rng.randrange(1, hi.bit_length() + 1)) % hi + 1


def _wild_state(rng: random.Random) -> PositionState:
    return PositionState(
        side=rng.choice([1, -1]),
        notional=_near_limit(rng, I64_MAX),
        entry_price=_near_limit(rng, I64_MAX),
        cr=_near_limit(rng, I64_MAX) - 1,
        cm=_near_limit(rng, I64_MAX) - 1,
        imr=_near_limit(rng, I64_MAX) - 1,
        imm=_near_limit(rng, I64_MAX) - 1,
        rate_ppm=rng.choice([1, -1]) * _near_limit(rng, I64_MAX) if rng.randrange(3) else 0,
        t_base=rng.randrange(I64_MIN, I64_MAX),
        funding_paid=rng.randrange(I64_MIN, I64_MAX) if rng.randrange(2) else 0,
    )


def _ints(obj: Any) -> list[int]:
    if isinstance(obj, dict):
        return [i for v in obj.values() for i in _ints(v)]
    if isinstance(obj, list):
        return [i for v in obj for i in _ints(v)]
    return [obj] if isinstance(obj, int) and not isinstance(obj, bool) else []


def _in_domain(op: str, inputs: dict[str, Any], expected: Any) -> bool:
    """Inside money.rs's domain: everything in i64 (as the golden vectors), the period's
    10^6 × T in u64, and for margin checks the full PnL in i64."""
    if not all(I64_MIN <= v <= I64_MAX for v in _ints([inputs, expected])):
        return False
    if inputs.get("period_s", 1) * money.PPM >= 2**64:
        return False
    s = inputs.get("state")
    if s is not None and "price" in inputs and op in ("liquidatable_side", "liquidate"):
        p = money.pnl(s["side"], s["notional"], s["entry_price"], inputs["price"])
        if not I64_MIN <= p <= I64_MAX:
            return False
    if s is not None and "now" in inputs and inputs["now"] > s["t_base"]:
        # settle_funding's intermediates: elapsed, due and due - paid in i64
        elapsed = inputs["now"] - s["t_base"]
        due = money.funding_due(s["notional"], s["rate_ppm"], elapsed, inputs["period_s"])
        if not (elapsed <= I64_MAX and I64_MIN <= due - s["funding_paid"] <= I64_MAX):
            return False
    return True


def _answer(op: str, inputs: dict[str, Any]) -> Any:
    """perpd.money's answer in the vectors' JSON shape."""
    st = PositionState(**inputs["state"]) if "state" in inputs else None
    if op == "initial_margin":
        return money.initial_margin(inputs["notional"], inputs["leverage"])
    if op == "open_fee":
        return money.open_fee(inputs["notional"])
    if op == "pnl":
        return money.pnl(**inputs)
    if op == "funding_due":
        return money.funding_due(**inputs)
    assert st is not None
    if op == "settle_funding":
        return money_vectors._funding(money.settle_funding(st, inputs["now"], inputs["period_s"]))
    if op == "liquidatable_side":
        return money.liquidatable_side(st, inputs["price"])
    if op == "close_position":
        args = (inputs["pct"], inputs["price"], inputs["now"], inputs["period_s"])
        return money_vectors._close(money.close_position(st, *args))
    if money.liquidatable_side(st, inputs["price"]) is None:
        return {"error": "not_liquidatable"}
    r = money.liquidate(st, inputs["price"], inputs["now"], inputs["period_s"])
    return money_vectors._liquidation(r)


def _wild_inputs(op: str, rng: random.Random) -> dict[str, Any]:
    s = money_vectors._state(_wild_state(rng))
    assert s is not None
    price = _near_limit(rng, I64_MAX)
    now = s["t_base"] + rng.choice([-1, 0, 1, rng.randrange(1, 2**40), _near_limit(rng, I64_MAX)])
    period = rng.choice([1, 60, 28_800, _near_limit(rng, 18_446_744_073_709)])
    if op == "initial_margin":
        return {"notional": _near_limit(rng, I64_MAX), "leverage": _near_limit(rng, I64_MAX)}
    if op == "open_fee":
        return {"notional": _near_limit(rng, I64_MAX)}
    if op == "pnl":
        keys = ("side", "notional", "entry_price")
        return {**{k: s[k] for k in keys}, "price": price}
    if op == "funding_due":
        return {
            "notional": s["notional"],
            "rate_ppm": s["rate_ppm"],
            "elapsed_s": max(0, now - s["t_base"]),
            "period_s": period,
        }
    if op == "settle_funding":
        return {"state": s, "now": now, "period_s": period}
    if op == "liquidatable_side":
        return {"state": s, "price": price}
    if op == "close_position":
        pct = rng.choice([1, 50, 99, 100, rng.randrange(1, 101)])
        return {"state": s, "pct": pct, "price": price, "now": now, "period_s": period}
    return {"state": s, "price": price, "now": now, "period_s": period}


def _cases(seed: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    doc: dict[str, list[dict[str, Any]]] = {op: [] for op in ON_CHAIN}
    for k in range(SEEDS_PER_RUN):
        for op in ON_CHAIN:
            for case in money_vectors.SECTIONS[op](money_vectors.SplitMix64(seed + 977 * k)):
                if _in_domain(op, case["inputs"], case["expected"]):
                    doc[op].append(case)
    for op in ON_CHAIN:
        kept = 0
        for _ in range(WILD_PER_OP * 20):
            if kept == WILD_PER_OP:
                break
            inputs = _wild_inputs(op, rng)
            try:
                expected = _answer(op, inputs)
            except (ValueError, OverflowError):
                continue
            if _in_domain(op, inputs, expected):
                doc[op].append({"inputs": inputs, "expected": expected})
                kept += 1
    return doc


@pytest.mark.skipif(
    shutil.which("cargo") is None, reason="needs cargo (make -C escrow-program test)"
)
def test_random_cases_agree_with_rust(tmp_path: Path) -> None:
    seed = int(os.environ.get("PERPD_PROPERTY_SEED", random.SystemRandom().randrange(2**32)))
    doc = _cases(seed)
    total = sum(len(v) for v in doc.values())
    for op, cases in doc.items():
        assert len(cases) >= 100, f"seed {seed}: only {len(cases)} cases for {op}"
    path = tmp_path / "money_random.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run(
        ["cargo", "test", "--quiet", "--lib", "money::tests::agrees_with_extra_vectors_when_given"]
        + ["--", "--nocapture"],
        cwd=ESCROW,
        env={**os.environ, "PERPD_MONEY_VECTORS": str(path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"seed {seed} ({path}):\n{out[-4000:]}"
    m = re.search(r"PERPD_MONEY_VECTORS: (\d+) cases agree", out)
    assert m is not None and int(m.group(1)) == total, out[-2000:]
