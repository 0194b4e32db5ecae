"""The daemon on ``--chain rpc``, end to end: the JSON-RPC server on loopback in front of
LiteSVM is the cluster; ``perpd chain deploy`` and ``perpd chain initialize`` (the CLI)
put the escrow on it; the daemon runs against it with keypair files; agents on the SDK
(which signs every consent) deposit on chain themselves and trade a lifecycle over real
HTTP, the lock going through a dropped transaction and a blockhash expiry; ``perpd
verify --rpc-url`` finds the mirror equal to the chain at the end.

The cluster's Clock is its own, as a real cluster's is: it moves one second further
ahead of the wall clock at every transaction the cluster simulates or runs, so the
mirror settles funding right only at the second the program did. Its Pyth
``PriceUpdateV2`` account for BTC is rewritten before every transaction from the price
the test sets (as price pushers keep it fresh on a real cluster); the daemon's oracle is
pinned to the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from solders.account import Account
from solders.clock import Clock as SvmClock
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from agents import Client
from perpd import cli, money
from perpd.chain._client import EscrowClient
from perpd.chain._keyfile import create_keyfile
from perpd.chain._pyth_account import PYTH_RECEIVER_ID, price_update_v2
from perpd.chain._rpc import RpcTransport
from perpd.markets import MARKETS
from perpd.store import outbox
from perpd.store import queries as q
from tests.chain.rpc_server import Chain, RpcServer
from tests.conftest import Clock, Server, base_config, start_server
from tests.escrow.escrow_harness import mint_data, token_account_data

SOL = 10**9
M = 1_000_000
FEED = bytes.fromhex(MARKETS["BTC-PERP"].feed_id)


@dataclass
class Cluster:
    """The loopback cluster with the escrow deployed and initialized by the CLI."""

    rpc: RpcServer
    program_id: Pubkey
    client: EscrowClient
    authority_path: Path
    router_path: Path
    price: list[int]  # BTC e-8, what the Pyth account says before every transaction

    def put(self, address: Pubkey, data: bytes, owner: Pubkey) -> None:
        svm = self.rpc.chain.svm
        svm.set_account(address, Account(self.rpc.chain.rent(len(data)), data, owner, False))

    def token_balance(self, address: Pubkey) -> int:
        account = self.rpc.chain.account(address)
        assert account is not None
        return int.from_bytes(bytes(account.data)[64:72], "little")


async def perpd(*args: str) -> int:
    return await trio.to_thread.run_sync(cli.main, list(args))


@pytest.fixture
async def cluster(
    tmp_path: Path, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> Cluster:
    rpc = RpcServer(Chain())
    await nursery.start(rpc.serve)
    svm = rpc.chain.svm
    price = [60_000 * 10**8]
    skew, stepping = [0], [0]
    oracle = Pubkey.from_string(str(_btc_account()))

    def refresh() -> None:
        skew[0] += stepping[0]  # one second more per transaction once deployed
        now = max(int(time.time()) + skew[0], svm.get_clock().unix_timestamp)
        c = svm.get_clock()
        svm.set_clock(
            SvmClock(c.slot, c.epoch_start_timestamp, c.epoch, c.leader_schedule_epoch, now)
        )
        data = price_update_v2(FEED, price[0], price[0] // 10_000, -8, now)
        svm.set_account(oracle, Account(rpc.chain.rent(len(data)), data, PYTH_RECEIVER_ID, False))

    rpc.chain.refresh = refresh
    authority_path, router_path = tmp_path / "authority.json", tmp_path / "router.json"
    for key in (create_keyfile(authority_path), create_keyfile(router_path)):
        svm.airdrop(key.pubkey(), 10 * SOL)
    mint = Pubkey.new_unique()
    svm.set_account(mint, Account(rpc.chain.rent(82), mint_data(6), TOKEN_PROGRAM_ID, False))
    common = ["--rpc-url", rpc.url, "--authority-keypair", str(authority_path)]
    program_path = tmp_path / "program.json"
    assert await perpd("chain", "deploy", *common, "--program-keypair", str(program_path)) == 0
    program_id = Pubkey.from_string(json.loads(capsys.readouterr().out)["program_id"])
    router = Keypair.from_json(router_path.read_text())
    init = [
        "--program-id",
        str(program_id),
        "--usdc-mint",
        str(mint),
        "--router",
        str(router.pubkey()),
    ]
    assert await perpd("chain", "initialize", *common, *init) == 0
    done = json.loads(capsys.readouterr().out)
    client = EscrowClient(
        program_id,
        usdc_mint=mint,
        vault=Pubkey.from_string(done["vault"]),
        fee_account=Pubkey.from_string(done["fee_account"]),
    )
    stepping[0] = 1
    return Cluster(rpc, program_id, client, authority_path, router_path, price)


def _btc_account() -> Pubkey:
    from perpd.chain._backend import market_price_account

    return market_price_account(MARKETS["BTC-PERP"].index)


@pytest.fixture
async def daemon(cluster: Cluster, tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    config = base_config(
        tmp_path,
        chain="rpc",
        rpc_url=cluster.rpc.url,
        program_id=str(cluster.program_id),
        authority_keypair=str(cluster.authority_path),
        router_keypair=str(cluster.router_path),
    )
    s = await start_server(nursery, config, Clock(real=True, start=time.time()))
    await s.pin("BTC-PERP", "60000")
    yield s
    await s.http.aclose()
    s.shutdown.set()


async def deposit_on_chain(cluster: Cluster, agent: Keypair, amount: int) -> Pubkey:
    """The agent funds its own USDC account and deposits from it, signing the
    transaction itself: the daemon sends nothing."""
    cluster.rpc.chain.svm.airdrop(agent.pubkey(), SOL)
    wallet = get_associated_token_address(agent.pubkey(), cluster.client.usdc_mint)
    held = cluster.rpc.chain.account(wallet)
    before = cluster.token_balance(wallet) if held is not None else 0
    data = token_account_data(cluster.client.usdc_mint, agent.pubkey(), before + amount)
    cluster.put(wallet, data, TOKEN_PROGRAM_ID)
    ix = cluster.client.deposit_ix(
        depositor=agent.pubkey(), source=wallet, agent=agent.pubkey(), amount=amount
    )
    async with RpcTransport(cluster.rpc.url, poll_interval_s=0.02) as transport:
        await transport.send_and_confirm([ix], agent)
    return wallet


async def both_deposit(cluster: Cluster, *agents: tuple[Client, Keypair], amount: int) -> None:
    """Each agent deposits ``amount`` on chain itself; its first read picks it up."""
    for _, key in agents:
        await deposit_on_chain(cluster, key, amount)
    for client, _ in agents:
        assert (await client.balances()).free == amount


async def onchain_free(cluster: Cluster, agent: Keypair) -> tuple[int, int]:
    account = cluster.rpc.chain.account(cluster.client.collateral_address(agent.pubkey()))
    assert account is not None
    c = cluster.client.decode_collateral(bytes(account.data))
    return c.free, c.locked


async def test_a_lifecycle_on_the_rpc_chain(
    cluster: Cluster, daemon: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v = daemon.venue
    info = (await daemon.http.get("/chain")).json()
    assert (info["mode"], info["program_id"]) == ("rpc", str(cluster.program_id))
    # The faucet is refused: the daemon holds no mint on a cluster
    r = await daemon.http.post(
        "/dev/faucet", json={"agent_id": str(Keypair().pubkey()), "amount_usdc": "1"}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_request"), r.text
    assert "local chain" in r.json()["error"]["message"]
    assert await v.read(lambda c: outbox.counts(c)) == {}
    alice_key, bob_key = Keypair(), Keypair()
    async with (
        Client(daemon.url, alice_key) as alice,
        Client(daemon.url, bob_key) as bob,
    ):
        # Given both agents deposited on chain themselves
        wallet = await deposit_on_chain(cluster, alice_key, 5_000 * M)
        await deposit_on_chain(cluster, bob_key, 3_000 * M)
        # alice's read of her account picks hers up, exactly once
        assert (await alice.balances()).free == 5_000 * M
        assert (await alice.balances()).free == 5_000 * M
        # bob's the daemon finds by itself once bob is known (he read his account once)
        assert (await bob.balances()).free == 3_000 * M
        await deposit_on_chain(cluster, bob_key, 1_000 * M)
        with trio.fail_after(15):
            while (await v.read(lambda c: q.get_account(c, bob.agent_id))).free != 4_000 * M:  # noqa: ASYNC110
                await trio.sleep(0.1)
        assert (await v.read(q.ledger))["deposits"] == 9_000 * M

        # When alice asks for a position and takes bob's quote, the lock being dropped
        # once and its blockhash expiring after the resend
        req = await alice.request_trade(
            "BTC-PERP", "long", 10_000 * M, leverage=20, max_funding_rate=1000
        )
        quote = await bob.quote(req, funding_rate=500, collateral=600 * M, valid_for=30)
        cluster.rpc.chain.faults.drop = 1
        cluster.rpc.chain.faults.expire_after_send = 1
        sent_before = len(cluster.rpc.chain.received)
        position = await alice.accept(req.request_id, quote.quote_id)
        # Then the lock landed once, under the signature the outbox recorded
        (lock,) = await v.read(lambda c: outbox.of_ref(c, position.position_id, "lock"))
        assert lock.status == "done" and lock.signature
        sent = list(dict.fromkeys(str(s) for s in cluster.rpc.chain.received[sent_before:]))
        assert len(sent) >= 2 and sent[-1] == lock.signature
        landed = [
            s for s in cluster.rpc.chain.received[sent_before:] if s in cluster.rpc.chain.statuses
        ]
        assert {str(s) for s in landed} == {lock.signature}
        address = Pubkey.from_string(position.position_address or "")
        account = cluster.rpc.chain.account(address)
        assert account is not None
        onchain = cluster.client.decode_position(bytes(account.data))
        assert (onchain.entry_price, onchain.notional, onchain.status) == (
            60_000 * 10**8,
            10_000 * M,
            0,
        )
        assert (onchain.cr, onchain.cm) == (500 * M, 600 * M)
        assert (
            (await alice.balances()).locked
            == 500 * M
            == (await onchain_free(cluster, alice_key))[1]
        )

        # When BTC rises 1 % and alice closes half, then the rest
        cluster.price[0] = 60_600 * 10**8
        await daemon.pin("BTC-PERP", "60600")
        half = await alice.close(position.position_id, 50)
        assert half.position.closes == 1
        account = cluster.rpc.chain.account(address)
        assert account is not None
        assert cluster.client.decode_position(bytes(account.data)).closes == 1
        full = await alice.close(position.position_id)
        assert full.position.status == "closed"
        account = cluster.rpc.chain.account(address)
        assert account is not None
        assert cluster.client.decode_position(bytes(account.data)).status == 1
        # alice won 1 % of 10,000 USDC from bob (less the seconds of funding she owed
        # him: 500 ppm a period accrues by the second), on chain and in the mirror alike
        a = await alice.balances()
        assert (a.free, a.locked) == await onchain_free(cluster, alice_key)
        assert a.locked == 0 and a.free > 5_000 * M
        b = await bob.balances()
        assert (b.free, b.locked) == await onchain_free(cluster, bob_key)
        funding = b.free - (4_000 * M - 100 * M)
        assert b.locked == 0 and 0 <= funding < 60 * 174  # under a minute of it
        assert a.free + b.free == 9_000 * M - money.open_fee(10_000 * M)  # the fee: accrued

        # When alice withdraws to her USDC account, through the program
        before = cluster.token_balance(wallet)
        after = await alice.withdraw(1_000 * M)
        assert after.withdrawals == 1 and after.free == a.free - 1_000 * M
        assert cluster.token_balance(wallet) == before + 1_000 * M
        assert (after.free, 0) == await onchain_free(cluster, alice_key)

    # Then the mirror balances and equals the chain: perpd verify against the cluster
    assert await v.read(q.verify) == []
    capsys.readouterr()
    db = str(tmp_path / "perpd.db")
    code = await perpd(
        "verify", "--db", db, "--rpc-url", cluster.rpc.url, "--program-id", str(cluster.program_id)
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err


async def test_a_deposit_while_a_lock_is_in_flight_is_credited_once_after_it(
    cluster: Cluster, daemon: Server
) -> None:
    """The pickup credits only an agent no outbox row is in flight for: the chain's
    free then equals the mirror's plus what came in from outside, nothing else."""
    v = daemon.venue
    watch, submitter = v.deposits, v.submitter
    assert watch is not None and submitter is not None
    alice_key, bob_key = Keypair(), Keypair()
    async with Client(daemon.url, alice_key) as alice, Client(daemon.url, bob_key) as bob:
        await both_deposit(cluster, (alice, alice_key), (bob, bob_key), amount=2_000 * M)
        req = await alice.request_trade(
            "BTC-PERP", "long", 1_000 * M, leverage=10, max_funding_rate=1000
        )
        quote = await bob.quote(req, funding_rate=500, collateral=100 * M, valid_for=30)
        # When the submitter holds the lock (reserved in the mirror, not yet on chain)
        # and alice deposits 300 USDC more on chain meanwhile
        submitter.pause()
        opened: list[object] = []
        async with trio.open_nursery() as nursery:

            async def accept() -> None:
                opened.append(await alice.accept(req.request_id, quote.quote_id))

            nursery.start_soon(accept)
            with trio.fail_after(10):
                while not await v.read(lambda c: outbox.counts(c).get("pending")):  # noqa: ASYNC110
                    await trio.sleep(0.02)
            await deposit_on_chain(cluster, alice_key, 300 * M)
            # Then nothing is credited while her lock is in flight (chain and mirror differ
            # by the reservation as well as the deposit)
            assert await watch.pick_up([alice.agent_id, bob.agent_id]) == {}
            submitter.resume()
        assert opened
        fee = money.open_fee(1_000 * M)
        # and once it landed the deposit is credited, exactly once (here, or by the
        # daemon's own poll just before)
        assert await watch.pick_up([alice.agent_id]) in ({alice.agent_id: 300 * M}, {})
        assert await watch.pick_up([alice.agent_id, bob.agent_id]) == {}
        assert (await v.read(q.ledger))["deposits"] == 4_300 * M
        a = await alice.balances()
        assert (a.free, a.locked) == (2_300 * M - 100 * M - fee, 100 * M)
        assert (a.free, a.locked) == await onchain_free(cluster, alice_key)
    assert await v.read(q.verify) == []


async def test_a_close_confirmed_after_its_timeout_settles_at_the_programs_second(
    cluster: Cluster, daemon: Server
) -> None:
    """A close whose status the node shows only after the confirmation timeout is
    retried, found landed (never sent twice), and mirrored at its block's time: the
    cluster's clock is a second further at every transaction, so the daemon's own
    second would pay different funding."""
    v = daemon.venue
    submitter = v.submitter
    assert submitter is not None
    submitter.chain.transport.confirm_timeout_s = 1.0
    alice_key, bob_key = Keypair(), Keypair()
    async with Client(daemon.url, alice_key) as alice, Client(daemon.url, bob_key) as bob:
        await both_deposit(cluster, (alice, alice_key), (bob, bob_key), amount=2_000 * M)
        req = await alice.request_trade(
            "BTC-PERP", "long", 10_000 * M, leverage=20, max_funding_rate=1000
        )
        quote = await bob.quote(req, funding_rate=500, collateral=600 * M, valid_for=30)
        position = await alice.accept(req.request_id, quote.quote_id)
        # When alice closes half and the node shows no status for longer than the
        # submitter waits for a confirmation
        unconfirmed, sent_before = submitter.stats.unconfirmed, len(cluster.rpc.chain.received)
        cluster.rpc.chain.faults.hide_statuses_until = time.time() + 2.5
        half = await alice.close(position.position_id, 50)
        # Then the submitter gave up once, found the close landed and did not send it again
        assert submitter.stats.unconfirmed > unconfirmed
        landed = {
            s for s in cluster.rpc.chain.received[sent_before:] if s in cluster.rpc.chain.statuses
        }
        assert len(landed) == 1 and half.position.closes == 1
        (row,) = await v.read(lambda c: outbox.of_ref(c, position.position_id, "close"))
        assert row.signature == str(next(iter(landed)))
        assert row.slot == cluster.rpc.chain.statuses[next(iter(landed))].slot
        # and both agents' free balances and the position's collaterals are the chain's,
        # funding settled to the program's second
        for agent, key in ((alice, alice_key), (bob, bob_key)):
            assert (await agent.balances()).free == (await onchain_free(cluster, key))[0]
        account = cluster.rpc.chain.account(Pubkey.from_string(position.position_address or ""))
        assert account is not None
        onchain = cluster.client.decode_position(bytes(account.data))
        mirrored = await v.read(lambda c: q.get_position(c, position.position_id))
        assert mirrored is not None
        m = mirrored.state
        assert (m.cr, m.cm, m.notional, m.t_base) == (
            onchain.cr,
            onchain.cm,
            onchain.notional,
            onchain.t_base,
        )
    assert await v.read(q.verify) == []
