"""The program against every case of tests/vectors/money.json (and of
money_extremes.json, at the price bounds) in the SVM:
each case's position is written at its PDA (with both agents' collateral
accounts and the vault's money), the Pyth account holds the case's price and
the Clock its time; the program's settle_funding, close_position and liquidate
must give the case's expected result to the micro-USDC."""

import json

import pytest
from escrow_harness import BTC, ROOT, Escrow
from solders.keypair import Keypair

from perpd import money

VECTORS = json.loads((ROOT / "tests" / "vectors" / "money.json").read_text())
# Every case of the three operations the program performs runs (30 each).
assert [len(VECTORS[k]) for k in ("settle_funding", "close_position", "liquidate")] == [30] * 3
EXTREMES = json.loads((ROOT / "tests" / "vectors" / "money_extremes.json").read_text())
assert [len(EXTREMES[k]) for k in ("close_position", "liquidate")] == [100, 30]
FILES = pytest.mark.parametrize("doc", [VECTORS, EXTREMES], ids=["money", "extremes"])


def state(case_state: dict) -> money.PositionState:
    return money.PositionState(**case_state)


@pytest.fixture
def liquidator(initialized: Escrow) -> Keypair:
    keypair = initialized.funded_keypair(seed=4)
    initialized.write_collateral(keypair.pubkey(), 0, 0)
    return keypair


def place(escrow: Escrow, inputs: dict, price: int | None = None):
    """The case's position, its two agents, the Clock and the price."""
    requester, maker = Keypair(), Keypair()
    address = escrow.write_position(requester.pubkey(), maker.pubkey(), inputs["state"])
    escrow.set_time(inputs["now"])
    if price is not None:
        escrow.set_price(BTC, price)
    return requester, maker, address


def free(escrow: Escrow, keypair: Keypair) -> int:
    return escrow.free(keypair.pubkey())


def test_settle_funding_agrees_on_every_case(initialized: Escrow) -> None:
    escrow = initialized
    for case in VECTORS["settle_funding"]:
        # Given the case's position and Clock
        _, _, address = place(escrow, case["inputs"])
        # When it is settled
        outcome = escrow.send(escrow.settle_ix([address]), escrow.router)
        # Then its money is perpd.money's to the micro-USDC
        assert outcome.ok, (case, outcome.logs)
        assert escrow.money_state(address) == state(case["expected"]["state"]), case


@FILES
def test_close_position_agrees_on_every_case(initialized: Escrow, doc: dict) -> None:
    escrow = initialized
    for case in doc["close_position"]:
        # Given the case's position, Clock and price
        inputs, expected = case["inputs"], case["expected"]
        requester, maker, address = place(escrow, inputs, inputs["price"])
        # When the requester closes the case's percentage
        ok = escrow.close(requester, address, inputs["pct"])
        # Then both releases and what remains are perpd.money's
        assert ok.ok, (case, ok.logs)
        assert free(escrow, requester) == expected["requester_release"], case
        assert free(escrow, maker) == expected["maker_release"], case
        if expected["remaining"] is None:
            assert escrow.position(address).status == 1
        else:
            assert escrow.money_state(address) == state(expected["remaining"]), case


@FILES
def test_liquidate_agrees_on_every_case(
    initialized: Escrow, liquidator: Keypair, doc: dict
) -> None:
    escrow = initialized
    reward_account = escrow.collateral_address(liquidator.pubkey())
    for case in doc["liquidate"]:
        # Given the case's position, Clock and price
        inputs, expected = case["inputs"], case["expected"]
        requester, maker, address = place(escrow, inputs, inputs["price"])
        ix = escrow.liquidate_ix(liquidator.pubkey(), address, reward_account)
        if "error" in expected:
            # When it is healthy, Then a liquidation is refused and nothing moves
            assert expected["error"] == "not_liquidatable"
            escrow.refuse([ix], [liquidator], "NotLiquidatable")
            continue
        rewards = free(escrow, liquidator)
        # When the liquidator liquidates it
        outcome = escrow.send(ix, liquidator)
        # Then both releases and the reward are perpd.money's
        assert outcome.ok, (case, outcome.logs)
        assert free(escrow, requester) == expected["requester_release"], case
        assert free(escrow, maker) == expected["maker_release"], case
        assert free(escrow, liquidator) == rewards + expected["reward"], case
        assert escrow.position(address).status == 2
