"""Pure helpers shared by the daemon, the agents and the escrow tests: consent bytes
(SPEC §6) and Pyth receiver `PriceUpdateV2` account data (SPEC §7). No I/O.

And the chain's I/O side: `RpcTransport` (any cluster over JSON-RPC, trio-safe), its
error tree, the packaged escrow program and its deploy/status.

The names are loaded on first use (PEP 562): the pure helpers are imported by the
daemon's configuration and by the command line, which must not pay for the RPC stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from perpd.chain._deploy import Deployed, DeployRefused, ProgramStatus, deploy, program_status
    from perpd.chain._errors import (
        ChainError,
        ChainUnavailable,
        ConfirmationTimeout,
        TransactionFailed,
    )
    from perpd.chain._program import packaged_program, packaged_sha256
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
    from perpd.chain._rpc import Confirmed, RpcTransport, Simulation

_HOME = {
    "CLOSE_PREFIX": "perpd.chain._consent",
    "QUOTE_PREFIX": "perpd.chain._consent",
    "REQUEST_PREFIX": "perpd.chain._consent",
    "WITHDRAW_PREFIX": "perpd.chain._consent",
    "close_consent": "perpd.chain._consent",
    "quote_consent": "perpd.chain._consent",
    "request_consent": "perpd.chain._consent",
    "request_hash": "perpd.chain._consent",
    "withdraw_consent": "perpd.chain._consent",
    "Deployed": "perpd.chain._deploy",
    "DeployRefused": "perpd.chain._deploy",
    "ProgramStatus": "perpd.chain._deploy",
    "deploy": "perpd.chain._deploy",
    "program_status": "perpd.chain._deploy",
    "ChainError": "perpd.chain._errors",
    "ChainUnavailable": "perpd.chain._errors",
    "ConfirmationTimeout": "perpd.chain._errors",
    "TransactionFailed": "perpd.chain._errors",
    "packaged_program": "perpd.chain._program",
    "packaged_sha256": "perpd.chain._program",
    "BTC_USD_FEED_ID": "perpd.chain._pyth_account",
    "ETH_USD_FEED_ID": "perpd.chain._pyth_account",
    "PRICE_UPDATE_V2_DISCRIMINATOR": "perpd.chain._pyth_account",
    "PRICE_UPDATE_V2_LEN": "perpd.chain._pyth_account",
    "PYTH_RECEIVER_ID": "perpd.chain._pyth_account",
    "SOL_USD_FEED_ID": "perpd.chain._pyth_account",
    "Verification": "perpd.chain._pyth_account",
    "price_update_v2": "perpd.chain._pyth_account",
    "Confirmed": "perpd.chain._rpc",
    "RpcTransport": "perpd.chain._rpc",
    "Simulation": "perpd.chain._rpc",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


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
    # chain transport, errors, the packaged program (chain-rpc)
    "ChainError",
    "ChainUnavailable",
    "ConfirmationTimeout",
    "Confirmed",
    "DeployRefused",
    "Deployed",
    "ProgramStatus",
    "RpcTransport",
    "Simulation",
    "TransactionFailed",
    "deploy",
    "packaged_program",
    "packaged_sha256",
    "program_status",
]
