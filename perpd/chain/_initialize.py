"""``perpd chain initialize``: a deployed escrow program made ready to trade, over RPC.

As its upgrade authority (``initialize`` checks it against ProgramData): create the
vault (the USDC associated token account of the ``["vault"]`` PDA) and the fee account
(the fee owner's USDC associated token account) if they are missing, ``initialize``
(router authority, Pyth receiver, funding period), then ``set_market`` for SPEC §2's
markets with their Pyth feed ids and maximum leverage. Re-running it is safe: the token
accounts are created idempotently, an initialized config is left as it is (and must
name the same router), and markets already listed as wanted are not sent again.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
)

from perpd.chain._client import EscrowClient
from perpd.chain._deploy import DeployRefused
from perpd.chain._pyth_account import PYTH_RECEIVER_ID
from perpd.chain._rpc import RpcTransport
from perpd.markets import MARKETS

__all__ = ["Initialized", "initialize_program"]


@dataclass(frozen=True)
class Initialized:
    client: EscrowClient
    router: Pubkey
    signatures: list[Signature]  # what this run sent (none if nothing was missing)


async def initialize_program(
    transport: RpcTransport,
    authority: Keypair,
    program_id: Pubkey,
    usdc_mint: Pubkey,
    *,
    router: Pubkey | None = None,
    fee_owner: Pubkey | None = None,
    funding_period_s: int,
    pyth_receiver: Pubkey = PYTH_RECEIVER_ID,
) -> Initialized:
    """Initializes ``program_id`` (router and fee owner default to the authority) and
    lists the markets. `DeployRefused` if the config exists with another router or
    mint; `TransactionFailed` if the program refuses (e.g. ``NotUpgradeAuthority``)."""
    router = router or authority.pubkey()
    fee_owner = fee_owner or authority.pubkey()
    probe = EscrowClient(program_id, usdc_mint=usdc_mint, vault=usdc_mint, fee_account=usdc_mint)
    client = EscrowClient(
        program_id,
        usdc_mint=usdc_mint,
        vault=get_associated_token_address(probe.vault_authority, usdc_mint),
        fee_account=get_associated_token_address(fee_owner, usdc_mint),
    )
    admin = authority.pubkey()
    sent: list[Signature] = []
    config_account = await transport.get_account(client.config)
    if config_account is None:
        ixs = [
            create_idempotent_associated_token_account(admin, client.vault_authority, usdc_mint),
            create_idempotent_associated_token_account(admin, fee_owner, usdc_mint),
            client.initialize_ix(
                admin=admin,
                router_authority=router,
                funding_period_s=funding_period_s,
                pyth_receiver=pyth_receiver,
            ),
        ]
        sent.append((await transport.send_and_confirm(ixs, authority)).signature)
        config_account = await transport.get_account(client.config)
        assert config_account is not None
    config = client.decode_config(bytes(config_account.data))
    if (config.router_authority, config.usdc_mint) != (router, usdc_mint):
        raise DeployRefused(
            f"the program is initialized with router {config.router_authority} and mint "
            f"{config.usdc_mint}, not {router} and {usdc_mint}"
        )
    client = EscrowClient.from_config(program_id, bytes(config_account.data))
    markets = [
        client.set_market_ix(
            admin=admin,
            market=m.index,
            feed_id=bytes.fromhex(m.feed_id),
            max_leverage=m.max_leverage,
        )
        for m in MARKETS.values()
        if (config.markets[m.index].feed_id.hex(), config.markets[m.index].max_leverage)
        != (m.feed_id, m.max_leverage)
    ]
    if markets:
        sent.append((await transport.send_and_confirm(markets, authority)).signature)
    return Initialized(client, router, sent)
