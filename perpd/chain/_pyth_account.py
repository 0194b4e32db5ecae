"""Pyth receiver `PriceUpdateV2` account data, byte for byte (SPEC §7 "Prices").

What the Pyth Solana receiver program (`rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ`)
holds for a posted price update: the tests write these bytes into a LiteSVM account
owned by the receiver id, and the escrow program reads them with `src/pyth.rs`. The
layout (checked against Pyth's `pyth_solana_receiver_sdk::price_update` and
`pythnet_sdk::messages`) is Anchor's 8-byte discriminator, then Borsh:
``write_authority[32]``, ``verification_level`` (enum tag u8: 0 ``Partial
{num_signatures: u8}``, 1 ``Full``), ``PriceFeedMessage`` (``feed_id[32]``, ``price``
i64, ``conf`` u64, ``exponent`` i32, ``publish_time`` i64, ``prev_publish_time`` i64,
``ema_price`` i64, ``ema_conf`` u64), ``posted_slot`` u64. The receiver always allocates
134 bytes (``PriceUpdateV2::LEN``, sized for ``Partial``), so a ``Full`` update ends with
one zero byte; this module returns the same 134 bytes.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from solders.pubkey import Pubkey

from perpd.chain._consent import _int
from perpd.markets import MARKETS

__all__ = [
    "BTC_USD_FEED_ID",
    "ETH_USD_FEED_ID",
    "PRICE_UPDATE_V2_DISCRIMINATOR",
    "PRICE_UPDATE_V2_LEN",
    "PYTH_PUSH_ORACLE_ID",
    "PYTH_RECEIVER_ID",
    "SOL_USD_FEED_ID",
    "Verification",
    "price_feed_account",
    "price_update_v2",
]

PYTH_RECEIVER_ID = Pubkey.from_string("rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ")
PRICE_UPDATE_V2_DISCRIMINATOR = hashlib.sha256(b"account:PriceUpdateV2").digest()[:8]
PRICE_UPDATE_V2_LEN = 8 + 32 + 2 + 84 + 8  # = 134, the receiver's allocation

# Pyth's mainnet USD feeds, the same ids the daemon polls Hermes for (perpd.markets).
BTC_USD_FEED_ID = bytes.fromhex(MARKETS["BTC-PERP"].feed_id)
ETH_USD_FEED_ID = bytes.fromhex(MARKETS["ETH-PERP"].feed_id)
SOL_USD_FEED_ID = bytes.fromhex(MARKETS["SOL-PERP"].feed_id)

Verification = Literal["full"] | tuple[Literal["partial"], int]


def _verification(level: Verification) -> bytes:
    if level == "full":
        return b"\x01"
    if isinstance(level, tuple) and len(level) == 2 and level[0] == "partial":
        return b"\x00" + _int("num_signatures", level[1], 1, signed=False)
    raise ValueError(f"verification must be 'full' or ('partial', n), got {level!r}")


def price_update_v2(
    feed_id: bytes | str,
    price: int,
    conf: int,
    exponent: int,
    publish_time: int,
    *,
    prev_publish_time: int | None = None,
    ema_price: int | None = None,
    ema_conf: int | None = None,
    write_authority: Pubkey | bytes = bytes(32),
    verification: Verification = "full",
    posted_slot: int = 0,
) -> bytes:
    """The 134 bytes of a `PriceUpdateV2` account for one price of ``feed_id``.

    ``feed_id`` is 32 bytes or 64 hex digits (``0x`` allowed). Values are the raw Pyth
    integers at ``exponent`` (nothing is normalised here; that is the reader's job).
    Unset EMA fields repeat the price; ``prev_publish_time`` defaults to one second
    before ``publish_time`` (a feed that publishes every second). Out-of-range integers
    are a ValueError.
    """
    if isinstance(feed_id, str):
        text = feed_id.removeprefix("0x")
        if len(text) != 64:
            raise ValueError(f"feed_id must be 64 hex digits, got {feed_id!r}")
        feed_id = bytes.fromhex(text)
    if not isinstance(feed_id, bytes) or len(feed_id) != 32:
        raise ValueError(f"feed_id must be 32 bytes, got {feed_id!r}")
    authority = bytes(write_authority)
    if len(authority) != 32:
        raise ValueError(f"write_authority must be 32 bytes, got {write_authority!r}")
    if prev_publish_time is None:
        prev_publish_time = max(publish_time - 1, -(2**63)) if type(publish_time) is int else 0
    message = b"".join(
        (
            feed_id,
            _int("price", price, 8, signed=True),
            _int("conf", conf, 8, signed=False),
            _int("exponent", exponent, 4, signed=True),
            _int("publish_time", publish_time, 8, signed=True),
            _int("prev_publish_time", prev_publish_time, 8, signed=True),
            _int("ema_price", price if ema_price is None else ema_price, 8, signed=True),
            _int("ema_conf", conf if ema_conf is None else ema_conf, 8, signed=False),
        )
    )
    data = b"".join(
        (
            PRICE_UPDATE_V2_DISCRIMINATOR,
            authority,
            _verification(verification),
            message,
            _int("posted_slot", posted_slot, 8, signed=False),
        )
    )
    return data.ljust(PRICE_UPDATE_V2_LEN, b"\x00")


PYTH_PUSH_ORACLE_ID = Pubkey.from_string("pythWSnswVUd12oZpeFP8e9CVaEqJg25g1Vtc2biRsT")


def price_feed_account(feed_id: bytes, shard: int = 0) -> Pubkey:
    """Where Pyth's push oracle keeps ``feed_id``'s `PriceUpdateV2` on every cluster
    (PDA ``[shard u16 LE, feed_id]`` of the push oracle; the account is owned by the
    receiver). The local chain writes its prices at the same addresses."""
    seeds = [_int("shard", shard, 2), bytes(feed_id)]
    return Pubkey.find_program_address(seeds, PYTH_PUSH_ORACLE_ID)[0]
