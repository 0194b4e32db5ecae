"""The daemon's chain from its configuration: `open_chain` yields the `Chain` that
``--chain`` names (None for ``none``) for as long as the daemon runs.

``local``: the database's local chain (`open_local_chain`), prices from the daemon's
`PriceBook` (the usable price: a transaction that needs a stale price fails before it
is sent, like the daemon's own checks). ``rpc``: `RpcChain` on an `RpcTransport`, the
router keypair paying (the authority's when no router keypair is given), the program id
``--program-id`` (default: the local program id)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from solders.pubkey import Pubkey

from perpd.chain._backend import Chain, RpcChain
from perpd.chain._keyfile import read_keyfile
from perpd.chain._local import open_local_chain
from perpd.chain._program import LOCAL_PROGRAM_ID
from perpd.chain._rpc import RpcTransport
from perpd.config import Config
from perpd.markets import MARKETS
from perpd.oracle import PriceBook
from perpd.store import Store

__all__ = ["book_oracle", "open_chain", "program_id_of"]


def program_id_of(config: Config) -> Pubkey:
    return Pubkey.from_string(config.program_id) if config.program_id else LOCAL_PROGRAM_ID


def book_oracle(book: PriceBook) -> Callable[[int], tuple[int, int, int]]:
    """``oracle(market index)`` over the book's usable prices (`OracleUnavailable`)."""
    names = {m.index: m.name for m in MARKETS.values()}

    def oracle(market: int) -> tuple[int, int, int]:
        p = book.usable(names[market])
        return p.price, p.conf, p.publish_time

    return oracle


@asynccontextmanager
async def open_chain(
    config: Config,
    store: Store,
    book: PriceBook,
    clock: Callable[[], float],
    *,
    oracle: Callable[[int], tuple[int, int, int]] | None = None,
) -> AsyncIterator[Chain | None]:
    """``oracle`` (submitter): the local chain's prices, instead of the book's usable
    ones (the submitter pins the price a unit's mirror change uses)."""
    if config.chain == "none":
        yield None
        return
    if config.chain == "local":
        if config.program_id and program_id_of(config) != LOCAL_PROGRAM_ID:
            raise ValueError(f"the local chain's program is {LOCAL_PROGRAM_ID}")
        yield await open_local_chain(
            store,
            clock=clock,
            oracle=oracle or book_oracle(book),
            funding_period_s=config.funding_period_s,
        )
        return
    authority = read_keyfile(config.authority_keypair) if config.authority_keypair else None
    router = read_keyfile(config.router_keypair) if config.router_keypair else authority
    assert router is not None  # Config refuses rpc without either
    async with RpcTransport(
        config.rpc_url,
        priority_fee=config.priority_fee_micro_lamports,
        confirm_timeout_s=config.chain_confirm_timeout_s,
    ) as transport:
        yield await RpcChain.connect(transport, program_id_of(config), router, authority=authority)
