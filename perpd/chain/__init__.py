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

__all__ = [
    "CLOSE_PREFIX",
    "QUOTE_PREFIX",
    "REQUEST_PREFIX",
    "WITHDRAW_PREFIX",
    "close_consent",
    "quote_consent",
    "request_consent",
    "request_hash",
    "withdraw_consent",
]
