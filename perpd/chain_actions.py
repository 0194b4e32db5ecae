"""What each outbox row sends, and what a refusal means to the caller. Pure.

A row's payload is JSON written by the unit that asked for the action (the consents,
counters and addresses it needs, all known then); `instructions` turns it into the
program's instructions through the backend's `EscrowClient`, with the markets whose
price account the transaction reads. `refusal` maps the program's error to the API's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.signature import Signature
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
)

from perpd.errors import (
    ApiError,
    Conflict,
    Forbidden,
    InsufficientCollateral,
    InvalidRequest,
    LeverageTooHigh,
    OracleUnavailable,
    RateAboveMax,
    SelfQuote,
    Unauthorized,
    UnknownMarket,
)

SETTLE_BATCH = 24  # positions per settle_funding transaction (each a 32-byte account key)
KEEPER_REWARD_TO = "config"  # the keeper names the config: the reward joins accrued fees


class _Client(Protocol):
    config: Pubkey

    def collateral_address(self, agent: Pubkey) -> Pubkey: ...
    def position_address(self, requester: Pubkey, nonce: int) -> tuple[Pubkey, int]: ...
    def lock_position_ixs(self, **kw: Any) -> list[Instruction]: ...
    def settle_funding_ix(self, positions: Sequence[Pubkey]) -> Instruction: ...
    def close_position_ixs(self, **kw: Any) -> list[Instruction]: ...
    def liquidate_ix(self, **kw: Any) -> Instruction: ...
    def withdraw_with_consent_ixs(self, **kw: Any) -> list[Instruction]: ...


class _Chain(Protocol):
    @property
    def client(self) -> Any: ...
    @property
    def router(self) -> Any: ...
    def price_account(self, market: int) -> Pubkey: ...


def _key(text: str) -> Pubkey:
    return Pubkey.from_string(text)


def _sig(text: str | None) -> bytes | None:
    return None if text is None else bytes(Signature.from_string(text))


def instructions(
    chain: _Chain, kind: str, payload: dict[str, Any]
) -> tuple[list[Instruction], list[int]]:
    """The instructions of one outbox row, and the market indexes whose prices they read."""
    from perpd.chain._client import QuoteTerms, RequestTerms

    client = chain.client
    if kind == "lock":
        r, qt = payload["request"], payload["quote"]
        request = RequestTerms(**{**r, "requester": _key(r["requester"])})
        quote = QuoteTerms(**{**qt, "maker": _key(qt["maker"])})
        ixs = client.lock_position_ixs(
            router=chain.router.pubkey(),
            request=request,
            request_sig=_sig(payload["request_sig"]),
            quote=quote,
            quote_sig=_sig(payload["quote_sig"]),
            price_account=chain.price_account(r["market"]),
        )
        return ixs, [r["market"]]
    if kind == "settle":
        return [client.settle_funding_ix([_key(a) for a in payload["positions"]])], []
    if kind == "close":
        ixs = client.close_position_ixs(
            position=_key(payload["position"]),
            requester=_key(payload["requester"]),
            maker=_key(payload["maker"]),
            size_percent=payload["size_percent"],
            closes=payload["closes"],
            expires_at=payload["expires_at"],
            consent_sig=_sig(payload.get("consent")),
            price_account=chain.price_account(payload["market"]),
        )
        return ixs, [payload["market"]]
    if kind == "liquidate":
        to = payload["reward_to"]
        reward_to = client.config if to == KEEPER_REWARD_TO else client.collateral_address(_key(to))
        ix = client.liquidate_ix(
            position=_key(payload["position"]),
            requester=_key(payload["requester"]),
            maker=_key(payload["maker"]),
            liquidator=chain.router.pubkey(),
            reward_to=reward_to,
            price_account=chain.price_account(payload["market"]),
        )
        return [ix], [payload["market"]]
    if kind == "withdraw":
        agent, destination = _key(payload["agent"]), _key(payload["destination"])
        wallet: list[Instruction] = []
        if destination == get_associated_token_address(agent, client.usdc_mint):
            # to the agent's own USDC wallet: the router opens it if it is not there yet
            wallet.append(
                create_idempotent_associated_token_account(
                    chain.router.pubkey(), agent, client.usdc_mint
                )
            )
        ixs = wallet + client.withdraw_with_consent_ixs(
            agent=_key(payload["agent"]),
            destination=_key(payload["destination"]),
            amount=payload["amount"],
            withdrawals=payload["withdrawals"],
            expires_at=payload["expires_at"],
            consent_sig=_sig(payload["consent"]),
        )
        return ixs, []
    raise ValueError(f"no instructions for an outbox row of kind {kind!r}")


# The program's refusals that an API code already names (SPEC §6); the rest are 409
# with the program's error name as the code, in snake case (decisions.md).
_CONSENT_ERRORS = {
    "ConsentWrongSigner",
    "RequestConsentMismatch",
    "QuoteConsentMismatch",
    "CloseConsentMismatch",
    "WithdrawConsentMismatch",
    "MissingConsentSignature",
    "ConsentSignatureMissing",
    "ConsentOutsideCall",
}
_MAPPED: dict[str, type[ApiError]] = {
    "InsufficientFreeCollateral": InsufficientCollateral,
    "MakerCollateralTooLow": InsufficientCollateral,
    "RateAboveMax": RateAboveMax,
    "RateOutOfRange": InvalidRequest,
    "InvalidLeverage": LeverageTooHigh,
    "InvalidMarket": UnknownMarket,
    "MarketNotListed": UnknownMarket,
    "SelfTrade": SelfQuote,
    "MakerCannotClose": Forbidden,
    "RewardToLiquidatedSide": Forbidden,
    "InvalidSizePercent": InvalidRequest,
    "TermCloseMustBeFull": InvalidRequest,
}
_CONFLICT_CODES = {
    "PositionNotOpen": "position_not_open",
    "NotLiquidatable": "not_liquidatable",
    "PositionExists": "nonce_used",
}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def refused_by(exc: Any, kind: str, ixs: Sequence[Instruction] = ()) -> ApiError:
    """The API's error for a `ChainRefused` of the transaction ``ixs``: the Ed25519
    precompile's own refusal (a consent whose signature does not verify over the terms
    the router relays) is 401 like the daemon's check; else `refusal`."""
    from perpd.chain._client import ED25519_PROGRAM_ID

    at = getattr(exc, "instruction", None)
    if at is not None and 0 <= at < len(ixs) and ixs[at].program_id == ED25519_PROGRAM_ID:
        return Unauthorized(
            f"the chain refused the {kind}: a consent's signature does not verify over "
            f"the terms relayed (Ed25519 precompile error {exc.code})"
        )
    return refusal(exc.name, exc.code, kind)


def refusal(name: str | None, code: int | None, kind: str) -> ApiError:
    """The API's error for the program's refusal ``name`` (custom ``code``) of a ``kind``."""
    label = name or (f"error {code}" if code is not None else "an error")
    message = f"the escrow program refused the {kind}: {label}"
    if name is None:
        return Conflict(message, code="chain_refused")
    if name in _CONSENT_ERRORS:
        return Unauthorized(f"{message} (the consent does not match what was signed)")
    if name.startswith("Price"):
        return OracleUnavailable(f"{message} (the on-chain price is not usable)")
    if name in _MAPPED:
        return _MAPPED[name](message)
    return Conflict(message, code=_CONFLICT_CODES.get(name, snake(name)))
