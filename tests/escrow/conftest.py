"""Fixtures for the escrow program tests (see escrow_harness.py).

The program is built once per session with ``make -C escrow-program``; a
failing build fails every test (nothing is skipped).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anchorpy import Coder, Idl
from escrow_harness import BTC, PRICE, USDC, BuildError, Escrow, Trade, build_program, load_idl


@pytest.fixture(scope="session")
def program_so() -> bytes:
    """The program, built from source by the project's one build command."""
    try:
        return build_program()
    except BuildError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def idl() -> Idl:
    return load_idl()


@pytest.fixture(scope="session")
def coder(idl: Idl) -> Coder:
    return Coder(idl)


@pytest.fixture
def escrow(program_so: bytes, idl: Idl, coder: Coder) -> Iterator[Escrow]:
    """A fresh SVM with the program deployed and nothing initialized; after
    the test, the vault must still hold exactly what the books say (SPEC §7)."""
    chain = Escrow(program_so, idl, coder)
    yield chain
    chain.assert_conserved()


@pytest.fixture
def initialized(escrow: Escrow) -> Escrow:
    """A fresh SVM with the escrow initialized and SPEC §2's markets listed."""
    escrow.initialize()
    return escrow


@pytest.fixture
def trade(initialized: Escrow) -> Trade:
    """Alice (2,000 USDC free) asks for 10,000 USDC of BTC long at 10x; Bob
    (5,000 USDC free) quotes 500 ppm with 1,000 USDC; BTC is at 60,000."""
    alice, _ = initialized.funded_agent(2_000 * USDC, seed=1)
    bob, _ = initialized.funded_agent(5_000 * USDC, seed=2)
    initialized.set_price(BTC, PRICE)
    return Trade(requester=alice, maker=bob)
