"""The four consents of SPEC §6, byte for byte, written out by hand field by field."""

from __future__ import annotations

import hashlib

import pytest
from solders.pubkey import Pubkey

import perpd.chain
from perpd.chain import (
    close_consent,
    quote_consent,
    request_consent,
    request_hash,
    withdraw_consent,
)

PROGRAM = bytes(range(1, 33))  # 01 02 .. 20
AGENT = bytes(range(0x41, 0x61))  # 41 .. 60
OTHER = bytes([0xEE] * 32)


def hx(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def test_public_surface() -> None:
    assert set(perpd.chain.__all__) >= {
        "request_consent",
        "request_hash",
        "quote_consent",
        "close_consent",
        "withdraw_consent",
    }
    for name in perpd.chain.__all__:
        assert hasattr(perpd.chain, name)


def test_request_layout() -> None:
    got = request_consent(
        PROGRAM,
        Pubkey.from_bytes(AGENT),
        nonce=0x0102030405060708,
        market=2,
        side=1,
        size=1_000_000_000,  # 0x3b9aca00
        leverage=50,
        max_rate=-5000,  # 0xffff...ec78
        duration=86_400,  # 0x00015180
        expires_at=1_700_000_030,  # 0x6553f11e
    )
    want = (
        b"perpd:request:v1"
        + PROGRAM
        + AGENT
        + hx("08 07 06 05 04 03 02 01")  # nonce u64
        + hx("02")  # market u8
        + hx("01")  # side u8: short
        + hx("00 ca 9a 3b 00 00 00 00")  # size u64
        + hx("32")  # leverage u8
        + hx("78 ec ff ff ff ff ff ff")  # max_rate i64
        + hx("80 51 01 00")  # duration u32
        + hx("1e f1 53 65 00 00 00 00")  # expires_at i64
    )
    assert got == want
    assert len(got) == 16 + 32 + 32 + 8 + 1 + 1 + 8 + 1 + 8 + 4 + 8 == 119
    assert request_hash(got) == hashlib.sha256(want).digest()


def test_quote_layout() -> None:
    rh = bytes([0xAB] * 32)
    got = quote_consent(PROGRAM, AGENT, rh, rate=1234, collateral=2**64 - 1, valid_until=-1)
    want = (
        b"perpd:quote:v1"
        + PROGRAM
        + AGENT
        + rh
        + hx("d2 04 00 00 00 00 00 00")  # rate i64 = 0x04d2
        + hx("ff ff ff ff ff ff ff ff")  # collateral u64 max
        + hx("ff ff ff ff ff ff ff ff")  # valid_until i64 = -1
    )
    assert got == want
    assert len(got) == 14 + 3 * 32 + 3 * 8 == 134


def test_close_layout() -> None:
    got = close_consent(PROGRAM, OTHER, size_percent=100, closes=3, expires_at=2**63 - 1)
    want = (
        b"perpd:close:v1"
        + PROGRAM
        + OTHER
        + hx("64")  # size_percent u8
        + hx("03 00 00 00")  # closes u32
        + hx("ff ff ff ff ff ff ff 7f")  # expires_at i64 max
    )
    assert got == want
    assert len(got) == 14 + 64 + 1 + 4 + 8 == 91


def test_withdraw_layout() -> None:
    got = withdraw_consent(
        Pubkey.from_bytes(PROGRAM), AGENT, OTHER, amount=5, withdrawals=256, expires_at=-(2**63)
    )
    want = (
        b"perpd:withdraw:v1"
        + PROGRAM
        + AGENT
        + OTHER
        + hx("05 00 00 00 00 00 00 00")  # amount u64
        + hx("00 01 00 00 00 00 00 00")  # withdrawals u64
        + hx("00 00 00 00 00 00 00 80")  # expires_at i64 min
    )
    assert got == want
    assert len(got) == 17 + 96 + 24 == 137


def _request(**over: object) -> bytes:
    args: dict[str, object] = dict(
        program=PROGRAM,
        requester=AGENT,
        nonce=0,
        market=0,
        side=0,
        size=1,
        leverage=1,
        max_rate=0,
        duration=0,
        expires_at=0,
    )
    args.update(over)
    return request_consent(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "ok", "bad"),
    [
        ("nonce", [0, 2**64 - 1], [-1, 2**64]),
        ("market", [0, 255], [-1, 256]),
        ("side", [0, 1, 255], [-1, 256]),
        ("size", [0, 2**64 - 1], [-1, 2**64]),
        ("leverage", [0, 255], [-1, 256]),
        ("max_rate", [-(2**63), 2**63 - 1], [-(2**63) - 1, 2**63]),
        ("duration", [0, 2**32 - 1], [-1, 2**32]),
        ("expires_at", [-(2**63), 2**63 - 1], [-(2**63) - 1, 2**63]),
    ],
)
def test_request_ranges(field: str, ok: list[int], bad: list[int]) -> None:
    for v in ok:
        _request(**{field: v})
    for v in bad:
        with pytest.raises(ValueError, match=field):
            _request(**{field: v})


@pytest.mark.parametrize("value", [True, 1.0, "1", None])
def test_non_int_refused(value: object) -> None:
    with pytest.raises(ValueError, match="nonce"):
        _request(nonce=value)


def test_other_ranges() -> None:
    rh = bytes(32)
    with pytest.raises(ValueError, match="rate"):
        quote_consent(PROGRAM, AGENT, rh, 2**63, 0, 0)
    with pytest.raises(ValueError, match="collateral"):
        quote_consent(PROGRAM, AGENT, rh, 0, -1, 0)
    with pytest.raises(ValueError, match="valid_until"):
        quote_consent(PROGRAM, AGENT, rh, 0, 0, 2**63)
    with pytest.raises(ValueError, match="request_hash"):
        quote_consent(PROGRAM, AGENT, bytes(31), 0, 0, 0)
    with pytest.raises(ValueError, match="size_percent"):
        close_consent(PROGRAM, OTHER, 256, 0, 0)
    with pytest.raises(ValueError, match="closes"):
        close_consent(PROGRAM, OTHER, 1, 2**32, 0)
    with pytest.raises(ValueError, match="expires_at"):
        close_consent(PROGRAM, OTHER, 1, 0, -(2**63) - 1)
    with pytest.raises(ValueError, match="amount"):
        withdraw_consent(PROGRAM, AGENT, OTHER, 2**64, 0, 0)
    with pytest.raises(ValueError, match="withdrawals"):
        withdraw_consent(PROGRAM, AGENT, OTHER, 0, -1, 0)


@pytest.mark.parametrize("key", [bytes(31), bytes(33), "11111111111111111111111111111111", None])
def test_bad_keys(key: object) -> None:
    with pytest.raises(ValueError, match="program"):
        _request(program=key)
    with pytest.raises(ValueError, match="destination"):
        withdraw_consent(PROGRAM, AGENT, key, 0, 0, 0)  # type: ignore[arg-type]


def test_prefixes_keep_consents_apart() -> None:
    """No consent's bytes can be read as another kind: each starts with its own tag."""
    prefixes = [b"perpd:request:v1", b"perpd:quote:v1", b"perpd:close:v1", b"perpd:withdraw:v1"]
    for a in prefixes:
        for b in prefixes:
            assert a == b or not a.startswith(b)
