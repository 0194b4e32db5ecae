"""The SDK's consents are the daemon's (SPEC §6) byte for byte, on hand-worked bytes
and on many random inputs, and their signatures verify with the agent's key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

import agents
from perpd.chain import _consent as daemon

PROGRAM = bytes(range(1, 33))
AGENT = bytes(range(0x41, 0x61))


def u(bits: int) -> st.SearchStrategy[int]:
    return st.integers(0, 2**bits - 1)


def i(bits: int) -> st.SearchStrategy[int]:
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


keys = st.binary(min_size=32, max_size=32)


def test_a_request_is_the_spec_layout_with_names_for_market_and_side() -> None:
    consent = agents.request_consent(
        PROGRAM, AGENT, 7, "ETH-PERP", "short", 1_000_000_000, 10, -25, 3600, 1_800_000_000
    )
    assert consent == (
        b"perpd:request:v1"
        + PROGRAM
        + AGENT
        + (7).to_bytes(8, "little")
        + bytes([1, 1])  # ETH-PERP is market 1; short is 1
        + (1_000_000_000).to_bytes(8, "little")
        + bytes([10])
        + (-25).to_bytes(8, "little", signed=True)
        + (3600).to_bytes(4, "little")
        + (1_800_000_000).to_bytes(8, "little")
    )
    assert len(consent) == 16 + 32 + 32 + 8 + 1 + 1 + 8 + 1 + 8 + 4 + 8
    assert agents.request_hash(consent) == hashlib.sha256(consent).digest()


def test_quote_close_and_withdraw_are_the_spec_layouts() -> None:
    digest = bytes([0xAB] * 32)
    assert agents.quote_consent(PROGRAM, AGENT, digest, 150, 2_000_000, 99) == (
        b"perpd:quote:v1"
        + PROGRAM
        + AGENT
        + digest
        + (150).to_bytes(8, "little", signed=True)
        + (2_000_000).to_bytes(8, "little")
        + (99).to_bytes(8, "little", signed=True)
    )
    assert agents.close_consent(PROGRAM, AGENT, 50, 3, 123) == (
        b"perpd:close:v1" + PROGRAM + AGENT + bytes([50]) + (3).to_bytes(4, "little")
        + (123).to_bytes(8, "little", signed=True)
    )  # fmt: skip
    destination = str(Pubkey(bytes([9] * 32)))  # base58 text works too
    assert agents.withdraw_consent(PROGRAM, AGENT, destination, 5, 2, 77) == (
        b"perpd:withdraw:v1" + PROGRAM + AGENT + bytes([9] * 32) + (5).to_bytes(8, "little")
        + (2).to_bytes(8, "little") + (77).to_bytes(8, "little", signed=True)
    )  # fmt: skip


def test_a_signed_consent_verifies_with_the_agents_key_only() -> None:
    keypair = Keypair()
    consent = agents.close_consent(PROGRAM, AGENT, 100, 0, 1)
    signature = Signature.from_string(agents.sign_consent(keypair, consent))
    assert signature.verify(keypair.pubkey(), consent)
    assert not signature.verify(keypair.pubkey(), consent[:-1] + b"\x02")
    assert not signature.verify(Keypair().pubkey(), consent)


@pytest.mark.parametrize(
    "call",
    [
        lambda: agents.request_consent(PROGRAM, AGENT, -1, 0, 0, 1, 1, 0, 0, 1),
        lambda: agents.request_consent(PROGRAM, AGENT, 0, "DOGE-PERP", 0, 1, 1, 0, 0, 1),
        lambda: agents.request_consent(PROGRAM, AGENT, 0, 0, "up", 1, 1, 0, 0, 1),
        lambda: agents.request_consent(PROGRAM, AGENT, 0, 0, 0, 1, 256, 0, 0, 1),
        lambda: agents.request_consent(PROGRAM, AGENT, 0, 0, 0, 1, True, 0, 0, 1),
        lambda: agents.quote_consent(PROGRAM, AGENT, b"short", 1, 1, 1),
        lambda: agents.close_consent(PROGRAM, b"\x00" * 31, 1, 0, 1),
        lambda: agents.withdraw_consent(PROGRAM, AGENT, "not-base58!", 1, 0, 1),
        lambda: agents.withdraw_consent(PROGRAM, AGENT, AGENT, 2**64, 0, 1),
    ],
)
def test_a_value_that_does_not_fit_its_field_is_refused(call: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError):
        call()


@settings(max_examples=300, deadline=None)
@given(
    program=keys,
    requester=keys,
    nonce=u(64),
    market=u(8),
    side=u(8),
    size=u(64),
    leverage=u(8),
    max_rate=i(64),
    duration=u(32),
    expires_at=i(64),
    rate=i(64),
    collateral=u(64),
    valid_until=i(64),
    maker=keys,
)
def test_request_and_quote_match_the_daemon(
    program: bytes,
    requester: bytes,
    nonce: int,
    market: int,
    side: int,
    size: int,
    leverage: int,
    max_rate: int,
    duration: int,
    expires_at: int,
    rate: int,
    collateral: int,
    valid_until: int,
    maker: bytes,
) -> None:
    args = (program, requester, nonce, market, side, size, leverage, max_rate, duration)
    sdk = agents.request_consent(*args, expires_at)
    assert sdk == daemon.request_consent(*args, expires_at)
    digest = agents.request_hash(sdk)
    assert digest == daemon.request_hash(sdk)
    assert agents.quote_consent(
        Pubkey(program), maker, digest, rate, collateral, valid_until
    ) == daemon.quote_consent(program, Pubkey(maker), digest, rate, collateral, valid_until)


@settings(max_examples=300, deadline=None)
@given(
    program=keys,
    position=keys,
    size_percent=u(8),
    closes=u(32),
    expires_at=i(64),
    agent=keys,
    destination=keys,
    amount=u(64),
    withdrawals=u(64),
)
def test_close_and_withdraw_match_the_daemon(
    program: bytes,
    position: bytes,
    size_percent: int,
    closes: int,
    expires_at: int,
    agent: bytes,
    destination: bytes,
    amount: int,
    withdrawals: int,
) -> None:
    assert agents.close_consent(
        program, position, size_percent, closes, expires_at
    ) == daemon.close_consent(program, position, size_percent, closes, expires_at)
    assert agents.withdraw_consent(
        program, agent, destination, amount, withdrawals, expires_at
    ) == daemon.withdraw_consent(program, agent, destination, amount, withdrawals, expires_at)


@settings(max_examples=100, deadline=None)
@given(nonce=st.integers(2**64, 2**70) | st.integers(-(2**70), -1))
def test_both_refuse_the_same_out_of_range_nonce(nonce: int) -> None:
    for build in (agents.request_consent, daemon.request_consent):
        with pytest.raises(ValueError):
            build(PROGRAM, AGENT, nonce, 0, 0, 1, 1, 0, 0, 1)
