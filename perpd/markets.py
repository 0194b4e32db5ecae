"""The listed markets: index (as on chain), Pyth USD feed id, maximum leverage."""

from __future__ import annotations

from dataclasses import dataclass

from perpd.errors import UnknownMarket

DEFAULT_FUNDING_PERIOD_S = 28_800


@dataclass(frozen=True)
class Market:
    name: str
    index: int
    feed_id: str  # Pyth price feed id, hex without 0x
    max_leverage: int
    sim_start_price: int  # exponent -8; where the simulated walk starts


MARKETS: dict[str, Market] = {
    m.name: m
    for m in (
        Market(
            "BTC-PERP",
            0,
            "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43",
            50,
            65_000_00000000,
        ),
        Market(
            "ETH-PERP",
            1,
            "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace",
            50,
            3_200_00000000,
        ),
        Market(
            "SOL-PERP",
            2,
            "ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d",
            20,
            150_00000000,
        ),
    )
}


def get_market(name: object) -> Market:
    """The market called ``name``; ``unknown_market`` for anything else."""
    if not isinstance(name, str) or name not in MARKETS:
        raise UnknownMarket(f"unknown market {name!r}; listed: {', '.join(MARKETS)}")
    return MARKETS[name]
