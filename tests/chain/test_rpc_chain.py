"""The rpc backend end to end against the JSON-RPC server on loopback in front of
LiteSVM: ``perpd chain deploy`` then ``perpd chain initialize`` (the CLI), then
`RpcChain` locking a position the agents signed, through a dropped transaction and a
blockhash expiry, and the program's refusal surfacing as `ChainRefused`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from solders.account import Account
from solders.clock import Clock
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from perpd import cli
from perpd.chain._backend import ChainRefused, RpcChain
from perpd.chain._client import QuoteTerms, RequestTerms
from perpd.chain._deploy import deploy
from perpd.chain._keyfile import create_keyfile
from perpd.chain._pyth_account import PYTH_RECEIVER_ID, price_update_v2
from perpd.chain._rpc import RpcTransport
from perpd.markets import MARKETS
from tests.chain.rpc_server import Chain, RpcServer
from tests.escrow.escrow_harness import mint_data, token_account_data

SOL = 10**9
USDC = 1_000_000
T0 = 1_700_000_000
BTC = 0
PRICE = 60_000 * 10**8


def fast(url: str) -> RpcTransport:
    return RpcTransport(url, poll_interval_s=0.01, resend_interval_s=0.05, confirm_timeout_s=20)


def put(server: RpcServer, address: Pubkey, data: bytes, owner: Pubkey) -> None:
    server.chain.svm.set_account(address, Account(server.chain.rent(len(data)), data, owner, False))


@pytest.fixture
async def server(nursery: trio.Nursery) -> RpcServer:
    s = RpcServer(Chain())
    await nursery.start(s.serve)
    clock = s.chain.svm.get_clock()
    s.chain.svm.set_clock(Clock(clock.slot, 0, 0, 0, T0))
    return s


async def perpd_chain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await trio.to_thread.run_sync(cli.main, ["chain", *args])
    out, err = capsys.readouterr()
    return code, out, err


async def test_initialize_then_lock_through_drops_and_expiry(
    server: RpcServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svm = server.chain.svm
    auth_path = tmp_path / "authority.json"
    authority = create_keyfile(auth_path)
    router = Keypair()
    for key in (authority, router):
        svm.airdrop(key.pubkey(), 10 * SOL)
    program = Keypair()
    mint = Pubkey.new_unique()
    put(server, mint, mint_data(6), TOKEN_PROGRAM_ID)
    async with fast(server.url) as transport:
        await deploy(transport, authority, program)
    # When the CLI initializes it (twice: the second run finds everything done)
    args = [
        "initialize",
        "--rpc-url",
        server.url,
        "--authority-keypair",
        str(auth_path),
        "--program-id",
        str(program.pubkey()),
        "--usdc-mint",
        str(mint),
        "--router",
        str(router.pubkey()),
    ]
    code, out, err = await perpd_chain(capsys, *args)
    assert code == 0, err
    first = json.loads(out)
    assert len(first["signatures"]) == 2
    code, out, err = await perpd_chain(capsys, *args)
    assert code == 0, err
    assert json.loads(out)["signatures"] == [] and json.loads(out)["vault"] == first["vault"]
    # Then the rpc chain connects from the config, with SPEC §2's markets listed
    async with fast(server.url) as transport:
        chain = await RpcChain.connect(transport, program.pubkey(), router)
        client = chain.client
        assert str(client.vault) == first["vault"] and client.usdc_mint == mint
        (config_account,) = await chain.get_accounts([client.config])
        assert config_account is not None
        config = client.decode_config(bytes(config_account.data))
        assert config.router_authority == router.pubkey()
        assert config.admin == authority.pubkey()
        assert [m.max_leverage for m in config.markets[:3]] == [50, 50, 20]
        # Given two agents who deposited themselves, and Pyth's BTC account fresh
        agents = [Keypair(), Keypair()]
        for agent in agents:
            svm.airdrop(agent.pubkey(), SOL)
            wallet = Pubkey.new_unique()
            put(
                server,
                wallet,
                token_account_data(mint, agent.pubkey(), 2_000 * USDC),
                TOKEN_PROGRAM_ID,
            )
            deposit = client.deposit_ix(
                depositor=agent.pubkey(), source=wallet, agent=agent.pubkey(), amount=2_000 * USDC
            )
            await transport.send_and_confirm([deposit], agent)
        feed = bytes.fromhex(MARKETS["BTC-PERP"].feed_id)
        put(
            server,
            chain.price_account(BTC),
            price_update_v2(feed, PRICE, PRICE // 1_000, -8, T0),
            PYTH_RECEIVER_ID,
        )
        alice, bob = agents
        request = RequestTerms(alice.pubkey(), 3, BTC, 0, 10_000 * USDC, 20, 1_000, 0, T0 + 30)
        quote = QuoteTerms(bob.pubkey(), 500, 600 * USDC, T0 + 10)
        ixs = client.lock_position_ixs(
            router=router.pubkey(),
            request=request,
            request_sig=bytes(alice.sign_message(request.consent(client.program_id))),
            quote=quote,
            quote_sig=bytes(bob.sign_message(quote.consent(client.program_id, request))),
            price_account=chain.price_account(BTC),
        )
        # When the lock is dropped once and its blockhash expires meanwhile
        server.chain.faults.drop = 1
        server.chain.faults.expire_after_send = 1
        landed = await chain.send(ixs, prices=[BTC])
        # Then it landed once, under a fresh signature, and the position is on chain
        sent = list(dict.fromkeys(server.chain.received))
        assert str(sent[-1]) == landed.signature and len(sent) >= 2
        assert server.chain.statuses[sent[-1]].slot == landed.slot
        assert chain.info()["slot"] == landed.slot
        address = client.position_address(alice.pubkey(), 3)[0]
        (account,) = await chain.get_accounts([address])
        assert account is not None
        position = client.decode_position(bytes(account.data))
        assert (position.entry_price, position.notional, position.status) == (
            PRICE,
            10_000 * USDC,
            0,
        )
        # and relaying the same consents again is the program's refusal, by name
        with pytest.raises(ChainRefused) as caught:
            await chain.send(ixs, prices=[BTC])
        assert caught.value.name == "PositionExists" and caught.value.instruction == 1
        assert await chain.slot() >= landed.slot
        # and a transaction needing a key the rpc chain does not hold is refused unsent
        before = len(server.chain.received)
        with pytest.raises(ValueError, match="does not hold"):
            await chain.send([client.collect_fees_ix(admin=authority.pubkey())])
        assert len(server.chain.received) == before


async def test_connect_refuses_a_program_that_is_not_initialized(server: RpcServer) -> None:
    async with fast(server.url) as transport:
        with pytest.raises(ValueError, match="not initialized"):
            await RpcChain.connect(transport, Pubkey.new_unique(), Keypair())
