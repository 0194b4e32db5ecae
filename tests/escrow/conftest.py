"""Fixtures for the escrow program tests (see escrow_harness.py).

The program is built once per session with ``make -C escrow-program``; a
failing build fails every test (nothing is skipped).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anchorpy import Coder, Idl
from escrow_harness import BuildError, Escrow, build_program, load_idl


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
