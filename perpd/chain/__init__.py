"""Pure helpers shared by the daemon, the agents and the escrow tests: consent bytes
(SPEC §6) and Pyth receiver `PriceUpdateV2` account data (SPEC §7). No I/O."""

from perpd.chain._consent import (
    CLOSE_PREFIX,
    QUOTE_PREFIX,
    REQUEST_PREFIX,
    WITHDRAW_PREFIX,
    close_consent,
    quote_consent,
    request_consent,
    request_hash,
    withdraw_consent,
)
from perpd.chain._pyth_account import (
    BTC_USD_FEED_ID,
    ETH_USD_FEED_ID,
    PRICE_UPDATE_V2_DISCRIMINATOR,
    PRICE_UPDATE_V2_LEN,
    PYTH_RECEIVER_ID,
    SOL_USD_FEED_ID,
    Verification,
    price_update_v2,
)

__all__ = [
    "BTC_USD_FEED_ID",
    "CLOSE_PREFIX",
    "ETH_USD_FEED_ID",
    "PRICE_UPDATE_V2_DISCRIMINATOR",
    "PRICE_UPDATE_V2_LEN",
    "PYTH_RECEIVER_ID",
    "QUOTE_PREFIX",
    "REQUEST_PREFIX",
    "SOL_USD_FEED_ID",
    "WITHDRAW_PREFIX",
    "Verification",
    "close_consent",
    "price_update_v2",
    "quote_consent",
    "request_consent",
    "request_hash",
    "withdraw_consent",
]
