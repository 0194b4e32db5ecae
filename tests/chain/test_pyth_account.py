"""`perpd.chain.price_update_v2`: the receiver's bytes, by hand, and the Rust fixture."""

from __future__ import annotations

import hashlib

import pytest
from solders.pubkey import Pubkey

from perpd.chain import (
    BTC_USD_FEED_ID,
    ETH_USD_FEED_ID,
    PRICE_UPDATE_V2_DISCRIMINATOR,
    PRICE_UPDATE_V2_LEN,
    PYTH_RECEIVER_ID,
    SOL_USD_FEED_ID,
    price_update_v2,
)
from tests.chain import pyth_vectors


def hx(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def test_constants() -> None:
    assert str(PYTH_RECEIVER_ID) == "rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ"
    assert PRICE_UPDATE_V2_DISCRIMINATOR == bytes([34, 241, 35, 99, 157, 126, 244, 205])
    assert PRICE_UPDATE_V2_DISCRIMINATOR == hashlib.sha256(b"account:PriceUpdateV2").digest()[:8]
    assert PRICE_UPDATE_V2_LEN == 134
    # Pyth's published mainnet ids (SOL's is the one in Pyth's receiver SDK docs)
    assert (
        BTC_USD_FEED_ID.hex() == "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
    )
    assert (
        ETH_USD_FEED_ID.hex() == "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"
    )
    assert (
        SOL_USD_FEED_ID.hex() == "ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d"
    )


def test_full_layout_by_hand() -> None:
    authority = Pubkey.from_bytes(bytes([7] * 32))
    got = price_update_v2(
        "0x" + SOL_USD_FEED_ID.hex(),
        price=15_012_345_678,  # 0x3_7ece_374e
        conf=0x0102,
        exponent=-8,
        publish_time=1_700_000_000,  # 0x6553f100
        prev_publish_time=1_699_999_998,
        ema_price=-2,
        ema_conf=3,
        write_authority=authority,
        posted_slot=0x0A0B,
    )
    want = (
        hx("22 f1 23 63 9d 7e f4 cd")  # discriminator
        + bytes([7] * 32)  # write_authority
        + hx("01")  # VerificationLevel::Full
        + SOL_USD_FEED_ID
        + hx("4e 37 ce 7e 03 00 00 00")  # price i64
        + hx("02 01 00 00 00 00 00 00")  # conf u64
        + hx("f8 ff ff ff")  # exponent i32 = -8
        + hx("00 f1 53 65 00 00 00 00")  # publish_time
        + hx("fe f0 53 65 00 00 00 00")  # prev_publish_time
        + hx("fe ff ff ff ff ff ff ff")  # ema_price = -2
        + hx("03 00 00 00 00 00 00 00")  # ema_conf
        + hx("0b 0a 00 00 00 00 00 00")  # posted_slot
        + hx("00")  # the receiver's allocation is sized for Partial
    )
    assert got == want
    assert len(got) == 134


def test_partial_layout_shifts_the_message_by_one() -> None:
    full = price_update_v2(BTC_USD_FEED_ID, 1, 2, -8, 3)
    partial = price_update_v2(BTC_USD_FEED_ID, 1, 2, -8, 3, verification=("partial", 13))
    assert partial[40:42] == hx("00 0d")  # Partial { num_signatures: 13 }
    assert partial[42:] == full[41:133]
    assert len(partial) == len(full) == 134
    # defaults: EMA repeats the price, prev_publish_time is one second earlier
    assert full[41 + 52 : 41 + 60] == (3).to_bytes(8, "little")
    assert full[41 + 60 : 41 + 68] == (2).to_bytes(8, "little")
    assert full[41 + 68 : 41 + 84] == full[41 + 32 : 41 + 48]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"price": 2**63}, "price"),
        ({"conf": -1}, "conf"),
        ({"exponent": 2**31}, "exponent"),
        ({"publish_time": 2**63}, "publish_time"),
        ({"posted_slot": -1}, "posted_slot"),
        ({"verification": ("partial", 256)}, "num_signatures"),
        ({"verification": "partial"}, "verification"),
        ({"feed_id": "abcd"}, "feed_id"),
        ({"feed_id": bytes(31)}, "feed_id"),
        ({"write_authority": bytes(5)}, "write_authority"),
        ({"price": True}, "price"),
    ],
)
def test_refuses_out_of_range(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = dict(
        feed_id=BTC_USD_FEED_ID, price=1, conf=0, exponent=-8, publish_time=0
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        price_update_v2(**args)  # type: ignore[arg-type]


def test_fixture_is_current() -> None:
    """tests/vectors/pyth_price_update.json is exactly what the generator writes now."""
    assert pyth_vectors.PATH.read_text() == pyth_vectors.render(), (
        "stale: run python -m tests.chain.pyth_vectors"
    )
    assert pyth_vectors.main(["--check"]) == 0
