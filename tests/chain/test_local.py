"""The local chain (LiteSVM in-process): genesis, trading through relayed consents,
refusals that change nothing, and a restore from saved accounts (a real SQLite file)
that rebuilds the identical chain and keeps trading."""

from __future__ import annotations

from pathlib import Path

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.sysvar import CLOCK
from spl.token.constants import TOKEN_PROGRAM_ID

from perpd.chain import close_consent
from perpd.chain._backend import ChainRefused, Landed
from perpd.chain._client import QuoteTerms, RequestTerms
from perpd.chain._loader import parse_programdata
from perpd.chain._local import LocalChain, account_rows, accounts_from_rows
from perpd.chain._program import LOCAL_PROGRAM_ID, packaged_program
from perpd.chain._pyth_account import PYTH_RECEIVER_ID
from perpd.markets import MARKETS
from perpd.store import Store
from perpd.store import chain as qc
from perpd.store import queries as q

T0 = 1_700_000_000
USDC = 1_000_000
BTC = 0
PERIOD = 3_600


class World:
    """A clock and an oracle the test moves (BTC at 60,000 unless set)."""

    def __init__(self) -> None:
        self.now = float(T0)
        self.prices = {m.index: m.sim_start_price for m in MARKETS.values()}
        self.prices[BTC] = 60_000 * 10**8

    def clock(self) -> float:
        return self.now

    def oracle(self, market: int) -> tuple[int, int, int]:
        price = self.prices[market]
        return price, price // 1_000, int(self.now)

    def chain(self, **kw: object) -> LocalChain:
        return LocalChain.create(clock=self.clock, oracle=self.oracle, **kw)  # type: ignore[arg-type]


def sign(agent: Keypair, message: bytes) -> bytes:
    return bytes(agent.sign_message(message))


def lock(chain: LocalChain, world: World, alice: Keypair, bob: Keypair, nonce: int) -> Landed:
    """Alice asks 10,000 USDC of BTC long at 20x; Bob quotes 500 ppm with 600 USDC."""
    program = chain.client.program_id
    request = RequestTerms(
        alice.pubkey(), nonce, BTC, 0, 10_000 * USDC, 20, 1_000, 0, int(world.now) + 30
    )
    quote = QuoteTerms(bob.pubkey(), 500, 600 * USDC, int(world.now) + 10)
    ixs = chain.client.lock_position_ixs(
        router=chain.router.pubkey(),
        request=request,
        request_sig=sign(alice, request.consent(program)),
        quote=quote,
        quote_sig=sign(bob, quote.consent(program, request)),
        price_account=chain.price_account(BTC),
    )
    return chain.execute(ixs, prices=[BTC])


def close(
    chain: LocalChain, world: World, alice: Keypair, bob: Keypair, position: Pubkey, pct: int
) -> Landed:
    closes = position_state(chain, position).closes
    expires = int(world.now) + 30
    ixs = chain.client.close_position_ixs(
        position=position,
        requester=alice.pubkey(),
        maker=bob.pubkey(),
        size_percent=pct,
        closes=closes,
        expires_at=expires,
        consent_sig=sign(
            alice, close_consent(chain.client.program_id, position, pct, closes, expires)
        ),
        price_account=chain.price_account(BTC),
    )
    return chain.execute(ixs, prices=[BTC])


def position_state(chain: LocalChain, position: Pubkey):
    account = chain.account(position)
    assert account is not None
    return chain.client.decode_position(bytes(account.data))


def free(chain: LocalChain, agent: Pubkey) -> int:
    account = chain.account(chain.client.collateral_address(agent))
    return 0 if account is None else chain.client.decode_collateral(bytes(account.data)).free


def test_genesis_deploys_initializes_and_lists_the_markets() -> None:
    world = World()
    chain = world.chain()
    client = chain.client
    # The packaged program at the local program id, its upgrade authority the chain's
    assert client.program_id == LOCAL_PROGRAM_ID
    program = chain.account(LOCAL_PROGRAM_ID)
    assert program is not None and program.executable
    data = chain.account(client.programdata)
    assert data is not None
    state = parse_programdata(bytes(data.data))
    assert state.program == packaged_program()
    assert state.upgrade_authority == chain.keys.authority.pubkey()
    # initialized by it, with SPEC §2's markets
    config_account = chain.account(client.config)
    assert config_account is not None
    config = client.decode_config(bytes(config_account.data))
    assert config.admin == chain.keys.authority.pubkey()
    assert config.router_authority == chain.router.pubkey()
    assert (config.usdc_mint, config.vault, config.fee_account) == (
        client.usdc_mint,
        client.vault,
        client.fee_account,
    )
    assert config.pyth_receiver == PYTH_RECEIVER_ID and config.accrued_fees == 0
    listed = [(m.feed_id.hex(), m.max_leverage) for m in config.markets[:3]]
    assert listed == [(m.feed_id, m.max_leverage) for m in MARKETS.values()]
    # a 6-decimal test USDC mint whose authority the chain holds
    mint = chain.account(client.usdc_mint)
    assert mint is not None and mint.owner == TOKEN_PROGRAM_ID
    raw = bytes(mint.data)
    assert raw[:4] == b"\x01\x00\x00\x00" and raw[4:36] == bytes(chain.keys.mint_authority.pubkey())
    assert raw[44] == 6
    # Every genesis account is reported for saving; the Clock follows the given clock
    genesis = chain.genesis_accounts()
    assert {LOCAL_PROGRAM_ID, client.programdata, client.config, client.vault, CLOCK} <= set(
        genesis
    )
    assert chain.svm.get_clock().unix_timestamp == T0
    # Two databases never share keys; the same secret gives the same keys
    other = world.chain()
    assert other.router.pubkey() != chain.router.pubkey()
    assert other.client.usdc_mint != client.usdc_mint
    same = world.chain(secret=chain.secret)
    assert same.router.pubkey() == chain.router.pubkey() and same.client.vault == client.vault


def test_a_refused_transaction_changes_nothing_and_says_why() -> None:
    world = World()
    chain = world.chain()
    alice, bob = Keypair(), Keypair()
    chain.mint_to_and_deposit(alice.pubkey(), 2_000 * USDC)
    chain.mint_to_and_deposit(bob.pubkey(), 2_000 * USDC)
    # Given a request consent that expired before the lock
    request = RequestTerms(alice.pubkey(), 1, BTC, 0, 10_000 * USDC, 20, 1_000, 0, T0 - 1)
    quote = QuoteTerms(bob.pubkey(), 500, 600 * USDC, T0 + 10)
    program = chain.client.program_id
    ixs = chain.client.lock_position_ixs(
        router=chain.router.pubkey(),
        request=request,
        request_sig=sign(alice, request.consent(program)),
        quote=quote,
        quote_sig=sign(bob, quote.consent(program, request)),
        price_account=chain.price_account(BTC),
    )
    before = chain.pre_images(ixs, prices=[BTC])
    with pytest.raises(ChainRefused) as caught:
        chain.execute(ixs, prices=[BTC])
    # Then it is the program's ConsentExpired, and no account moved (not even the fee)
    assert (caught.value.name, caught.value.code, caught.value.instruction) == (
        "ConsentExpired",
        6035,
        1,
    )
    assert any("ConsentExpired" in line for line in caught.value.logs)
    assert chain.pre_images(ixs, prices=[BTC]) == before
    # And a signer the chain does not hold is refused before sending
    with pytest.raises(ValueError, match="does not hold"):
        chain.execute(
            [chain.client.withdraw_ix(agent=alice.pubkey(), destination=chain.faucet, amount=1)]
        )


def test_prices_and_the_clock_are_written_before_the_transaction() -> None:
    world = World()
    chain = world.chain()
    alice, bob = Keypair(), Keypair()
    chain.mint_to_and_deposit(alice.pubkey(), 2_000 * USDC)
    chain.mint_to_and_deposit(bob.pubkey(), 2_000 * USDC)
    world.now = T0 + 100
    world.prices[BTC] = 61_000 * 10**8
    landed = lock(chain, world, alice, bob, nonce=5)
    position = chain.client.position_address(alice.pubkey(), 5)[0]
    # The position's entry price is the oracle's, read by the program from the account
    assert position_state(chain, position).entry_price == 61_000 * 10**8
    price = chain.account(chain.price_account(BTC))
    assert price is not None and price.owner == PYTH_RECEIVER_ID
    assert landed.accounts[chain.price_account(BTC)] == price
    assert chain.svm.get_clock().unix_timestamp == T0 + 100
    # A clock that steps back does not move the chain's time back
    world.now = T0 + 50
    chain.mint_to_and_deposit(alice.pubkey(), 1)
    assert chain.svm.get_clock().unix_timestamp == T0 + 100
    # revert puts every written account back
    pre = chain.pre_images([], prices=[BTC])
    world.prices[BTC] = 10**8
    chain.execute([chain.client.settle_funding_ix([position])], prices=[BTC])
    assert chain.account(chain.price_account(BTC)) != pre[chain.price_account(BTC)]
    chain.revert(pre)
    assert chain.pre_images([], prices=[BTC]) == pre


async def test_a_chain_restored_from_the_database_is_identical_and_keeps_trading(
    tmp_path: Path,
) -> None:
    world = World()
    chain = world.chain(funding_period_s=PERIOD)
    db = tmp_path / "perpd.db"
    store = Store(db)
    await store.open()

    async def save(accounts: dict, kind: str, landed: Landed | None = None) -> None:
        rows = account_rows(accounts)

        def unit(conn) -> None:
            qc.save_chain_accounts(conn, rows)
            if landed is not None:
                qc.record_chain_tx(conn, landed.signature, landed.slot, kind, None)

        await store.write(unit)

    await store.write(lambda conn: qc.set_chain_meta(conn, "secret", chain.secret.hex()))
    await save(chain.genesis_accounts(), "genesis")
    alice, bob, carol = Keypair(), Keypair(), Keypair()
    for agent in (alice, bob, carol):
        landed = chain.mint_to_and_deposit(agent.pubkey(), 5_000 * USDC)
        await save(landed.accounts, "deposit", landed)
    # lock, settle a period later, close half, then liquidate after a drop
    landed = lock(chain, world, alice, bob, nonce=1)
    await save(landed.accounts, "lock", landed)
    position = chain.client.position_address(alice.pubkey(), 1)[0]
    world.now += PERIOD
    landed = chain.execute([chain.client.settle_funding_ix([position])], prices=[BTC])
    await save(landed.accounts, "settle", landed)
    assert position_state(chain, position).funding_paid != 0
    landed = close(chain, world, alice, bob, position, 50)
    await save(landed.accounts, "close", landed)
    world.prices[BTC] = 57_500 * 10**8
    landed = chain.execute(
        [
            chain.client.liquidate_ix(
                position=position,
                requester=alice.pubkey(),
                maker=bob.pubkey(),
                liquidator=chain.router.pubkey(),
                reward_to=chain.client.config,
                price_account=chain.price_account(BTC),
            )
        ],
        prices=[BTC],
    )
    await save(landed.accounts, "liquidate", landed)
    assert position_state(chain, position).status == 2
    await store.close()

    # When a new chain is built from a fresh Store on the same file
    store = Store(db)
    await store.open()
    rows = await store.read(qc.load_chain_accounts)
    secret = bytes.fromhex(await store.read(lambda conn: qc.get_chain_meta(conn, "secret")))
    txs = await store.read(lambda conn: qc.recent_chain_txs(conn, 100))
    await store.close()
    restored = world.chain(saved=accounts_from_rows(rows), secret=secret)
    # Then every saved account is byte for byte what the running chain holds
    assert len(rows) >= 15
    for address, _ in accounts_from_rows(rows):
        assert restored.account(address) == chain.account(address), address
    assert restored.svm.get_clock() == chain.svm.get_clock()
    assert [t["kind"] for t in txs][:3] == ["liquidate", "close", "settle"]
    # and both chains answer the next trades with the same accounts, slot and units
    world.now += 60
    world.prices[BTC] = 60_000 * 10**8
    for target in (chain, restored):
        first = lock(target, world, carol, bob, nonce=2)
        second = close(
            target, world, carol, bob, target.client.position_address(carol.pubkey(), 2)[0], 100
        )
        if target is chain:
            expected = (first, second)
    for was, now in zip(expected, (first, second), strict=True):
        assert now.accounts == was.accounts and now.slot == was.slot and now.units == was.units
    assert free(restored, carol.pubkey()) == free(chain, carol.pubkey()) < 5_000 * USDC


def test_a_restore_with_another_secret_is_refused() -> None:
    world = World()
    chain = world.chain()
    saved = [(a, acc) for a, acc in chain.genesis_accounts().items() if acc is not None]
    with pytest.raises(ValueError, match="not made with this secret"):
        world.chain(saved=saved, secret=bytes(32))
    with pytest.raises(ValueError, match="needs the secret"):
        world.chain(saved=saved)


async def test_saved_accounts_survive_a_store_restart_and_touch_nothing_else(
    tmp_path: Path,
) -> None:
    db = tmp_path / "perpd.db"
    store = Store(db)
    await store.open()
    before = await store.read(q.state_digest)
    a, b = str(Pubkey.new_unique()), str(Pubkey.new_unique())
    big = 2**64 - 1  # a u64 rent epoch (agave's "rent exempt" marker)
    rows = account_rows(
        dict(
            accounts_from_rows(
                [
                    (a, 10, str(TOKEN_PROGRAM_ID), False, big - 2**64, b"\x01" * 165),
                    (b, 5, str(Pubkey.default()), True, 0, b""),
                ]
            )
        )
    )
    await store.write(lambda conn: qc.save_chain_accounts(conn, rows))
    await store.write(lambda conn: qc.save_chain_accounts(conn, {b: None}))
    await store.write(lambda conn: qc.record_chain_tx(conn, "sig1", 7, "lock", "pos-1"))
    await store.write(lambda conn: qc.record_chain_tx(conn, "sig1", 7, "lock", "pos-1"))
    await store.close()
    store = Store(db)
    await store.open()
    loaded = await store.read(qc.load_chain_accounts)
    txs = await store.read(lambda conn: qc.chain_txs_of(conn, "pos-1"))
    after = await store.read(q.state_digest)
    await store.close()
    assert loaded == [(a, 10, str(TOKEN_PROGRAM_ID), False, -1, b"\x01" * 165)]
    ((_, account),) = accounts_from_rows(loaded)
    assert account.rent_epoch == big and bytes(account.data) == b"\x01" * 165
    assert txs == [{"signature": "sig1", "slot": 7, "kind": "lock", "ref": "pos-1"}]
    assert after == before
