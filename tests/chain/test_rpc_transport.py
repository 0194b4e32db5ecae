"""The trio RPC transport against a JSON-RPC server on loopback in front of LiteSVM:
landing once through dropped transactions, expired blockhashes and lost responses;
errors translated at one boundary."""

from __future__ import annotations

import pytest
import trio
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from perpd.chain._errors import ChainUnavailable, ConfirmationTimeout, TransactionFailed
from perpd.chain._rpc import Confirmed, RpcTransport
from tests.chain.rpc_server import Chain, RpcServer
from tests.escrow.escrow_harness import Escrow, build_program, load_idl

SOL = 10**9


@pytest.fixture
async def server(nursery: trio.Nursery) -> RpcServer:
    s = RpcServer(Chain())
    await nursery.start(s.serve)
    return s


def fast(url: str, **kw: object) -> RpcTransport:
    """A transport that polls every 10 ms and re-sends after 50 ms (test pace)."""
    return RpcTransport(url, poll_interval_s=0.01, resend_interval_s=0.05, **kw)  # type: ignore[arg-type]


def funded(server: RpcServer) -> Keypair:
    payer = Keypair()
    server.chain.svm.airdrop(payer.pubkey(), 10 * SOL)
    return payer


def pay(payer: Keypair, to: Pubkey, lamports: int) -> list:
    return [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))]


async def test_a_transfer_lands_and_reads_back(server: RpcServer) -> None:
    # Given a funded payer
    payer, to = funded(server), Pubkey.new_unique()
    async with fast(server.url) as chain:
        # When a transfer is sent and confirmed
        done = await chain.send_and_confirm(pay(payer, to, 1_000_000), payer)
        # Then it landed in the slot its status gives, and the account reads back
        assert isinstance(done, Confirmed)
        assert server.chain.statuses[done.signature].slot == done.slot
        account = await chain.get_account(to)
        assert account is not None and account.lamports == 1_000_000
        assert server.chain.received == [done.signature]


async def test_a_dropped_transaction_is_resent_with_the_same_signature(server: RpcServer) -> None:
    # Given a cluster that drops the next transaction (accepted, never lands)
    payer, to = funded(server), Pubkey.new_unique()
    server.chain.faults.drop = 1
    async with fast(server.url) as chain:
        done = await chain.send_and_confirm(pay(payer, to, 5_000_000), payer)
    # Then the same bytes were sent again and applied once
    assert set(server.chain.received) == {done.signature}
    assert len(server.chain.received) >= 2
    assert server.chain.svm.get_balance(to) == 5_000_000


async def test_an_expired_blockhash_is_re_signed_once_the_old_one_is_dead(
    server: RpcServer,
) -> None:
    # Given a transaction dropped while its blockhash expires
    payer, to = funded(server), Pubkey.new_unique()
    server.chain.faults.drop = 1
    server.chain.faults.expire_after_send = 1
    async with fast(server.url) as chain:
        done = await chain.send_and_confirm(pay(payer, to, 7_000_000), payer)
    # Then a second signature (fresh blockhash) landed, and the money moved once
    signatures = list(dict.fromkeys(server.chain.received))
    assert len(signatures) == 2 and signatures[1] == done.signature
    assert server.chain.svm.get_balance(to) == 7_000_000


async def test_a_transaction_that_landed_unseen_is_not_signed_again(server: RpcServer) -> None:
    # Given a transaction that lands but whose answer is lost (HTTP 503), and whose
    # blockhash expires at once
    payer, to = funded(server), Pubkey.new_unique()
    server.chain.faults.lose_response = 1
    server.chain.faults.expire_after_send = 1
    async with fast(server.url) as chain:
        done = await chain.send_and_confirm(pay(payer, to, 3_000_000), payer)
    # Then the transport found it by its status instead of signing a second one
    assert set(server.chain.received) == {done.signature}
    assert server.chain.svm.get_balance(to) == 3_000_000


async def test_no_confirmation_before_the_deadline_is_a_timeout_naming_the_signature(
    server: RpcServer,
) -> None:
    # Given a cluster that drops everything and never moves on
    payer, to = funded(server), Pubkey.new_unique()
    server.chain.faults.drop = 10**6
    async with fast(server.url) as chain:
        with pytest.raises(ConfirmationTimeout) as caught:
            await chain.send_and_confirm(pay(payer, to, 1), payer, timeout_s=0.5)
    # Then it is a ChainUnavailable naming what may still land, and until when
    assert isinstance(caught.value, ChainUnavailable)
    assert caught.value.signatures == list(dict.fromkeys(server.chain.received))
    _, last_valid = server.chain.latest()
    assert caught.value.last_valid_block_height == last_valid
    assert server.chain.svm.get_balance(to) in (None, 0)


async def test_an_unreachable_node_is_chain_unavailable() -> None:
    # Given nothing listening (a port that was free a moment ago)
    async with fast("http://127.0.0.1:9", http_timeout_s=1) as chain:
        with pytest.raises(ChainUnavailable, match="RPC request failed"):
            await chain.slot()
        with pytest.raises(ConfirmationTimeout) as caught:
            payer = Keypair()
            await chain.send_and_confirm(pay(payer, Pubkey.new_unique(), 1), payer, timeout_s=0.3)
    # Then nothing was sent
    assert caught.value.signatures == []


async def test_transient_503s_are_ridden_out(server: RpcServer) -> None:
    # Given a node that answers 503 to the next few requests
    payer, to = funded(server), Pubkey.new_unique()
    server.chain.faults.unavailable = 3
    async with fast(server.url) as chain:
        done = await chain.send_and_confirm(pay(payer, to, 2_000_000), payer)
    assert server.chain.statuses[done.signature].err is None
    assert server.chain.svm.get_balance(to) == 2_000_000


async def test_reads_fail_as_chain_unavailable_on_503(server: RpcServer) -> None:
    server.chain.faults.unavailable = 1
    async with fast(server.url) as chain:
        with pytest.raises(ChainUnavailable):
            await chain.get_account(Pubkey.new_unique())


@pytest.fixture(scope="module")
def program_so() -> bytes:
    return build_program()


@pytest.fixture
async def escrow_server(nursery: trio.Nursery, program_so: bytes) -> tuple[RpcServer, Escrow]:
    from anchorpy import Coder

    idl = load_idl()
    escrow = Escrow(program_so, idl, Coder(idl))
    escrow.initialize()
    s = RpcServer(Chain(svm=escrow.svm))
    await nursery.start(s.serve)
    return s, escrow


async def test_a_program_refusal_carries_its_custom_code_and_the_callers_index(
    escrow_server: tuple[RpcServer, Escrow],
) -> None:
    server, escrow = escrow_server
    agent, wallet = escrow.funded_agent(1_000_000)
    ix = escrow.withdraw_ix(agent.pubkey(), wallet, 2_000_000)  # more than is free
    # Given a transport that prepends ComputeBudget instructions
    async with fast(server.url, priority_fee=1_000, compute_unit_limit=50_000) as chain:
        # When the program refuses in preflight
        with pytest.raises(TransactionFailed) as caught:
            await chain.send_and_confirm([ix], agent)
    # Then the error is the IDL's code at the caller's instruction 0, with the logs
    code = escrow.error_code("InsufficientFreeCollateral")
    assert (caught.value.code, caught.value.instruction) == (code, 0)
    assert any(
        "Error Code: InsufficientFreeCollateral. Error Number: " in line
        for line in caught.value.logs
    )
    assert caught.value.signature is None  # never landed: nothing applied
    assert escrow.free(agent.pubkey()) == 1_000_000


async def test_a_transaction_that_fails_after_preflight_reports_its_landed_error(
    escrow_server: tuple[RpcServer, Escrow],
) -> None:
    # Given a preflight that passes and then a state change before execution
    server, escrow = escrow_server
    agent, wallet = escrow.funded_agent(1_000_000)
    server.chain.faults.skip_simulation = 1
    ix = escrow.withdraw_ix(agent.pubkey(), wallet, 2_000_000)
    async with fast(server.url) as chain:
        with pytest.raises(TransactionFailed) as caught:
            await chain.send_and_confirm([ix], agent)
    # Then the landed failure names its signature and slot and the program's code
    failed = caught.value
    assert failed.code == escrow.error_code("InsufficientFreeCollateral")
    assert failed.signature is not None
    assert server.chain.statuses[failed.signature].slot == failed.slot


async def test_a_priority_fee_is_a_compute_budget_instruction_the_payer_pays(
    escrow_server: tuple[RpcServer, Escrow],
) -> None:
    server, escrow = escrow_server
    agent, wallet = escrow.funded_agent(1_000_000)
    async with fast(server.url, priority_fee=2_000_000, compute_unit_limit=20_000) as chain:
        done = await chain.send_and_confirm(
            [escrow.withdraw_ix(agent.pubkey(), wallet, 400_000)], agent
        )
    # Then the transaction began with the two ComputeBudget instructions
    sent = server.chain.instructions[done.signature]
    assert sent[:2] == [set_compute_unit_limit(20_000), set_compute_unit_price(2_000_000)]
    assert escrow.free(agent.pubkey()) == 600_000


async def test_a_compute_unit_limit_is_enforced_by_the_chain(
    escrow_server: tuple[RpcServer, Escrow],
) -> None:
    server, escrow = escrow_server
    agent, wallet = escrow.funded_agent(1_000_000)
    async with fast(server.url, compute_unit_limit=300) as chain:
        with pytest.raises(
            TransactionFailed, match="in instruction 0: ProgramFailedToComplete$"
        ) as caught:
            await chain.send_and_confirm([escrow.withdraw_ix(agent.pubkey(), wallet, 1)], agent)
    assert caught.value.instruction == 0 and caught.value.code is None
    assert escrow.free(agent.pubkey()) == 1_000_000


async def test_simulation_reports_units_and_refusals_and_changes_nothing(
    escrow_server: tuple[RpcServer, Escrow],
) -> None:
    server, escrow = escrow_server
    agent, wallet = escrow.funded_agent(1_000_000)
    async with fast(server.url) as chain:
        ok = await chain.simulate([escrow.withdraw_ix(agent.pubkey(), wallet, 1)], agent)
        bad = await chain.simulate([escrow.withdraw_ix(agent.pubkey(), wallet, 10**9)], agent)
    assert ok.error is None and ok.units is not None and ok.units > 4_000
    assert bad.error is not None and bad.error.code == escrow.error_code(
        "InsufficientFreeCollateral"
    )
    assert escrow.free(agent.pubkey()) == 1_000_000
    assert server.chain.received == []


async def test_many_accounts_read_in_order_and_rent_matches_the_chain(server: RpcServer) -> None:
    payers = [funded(server) for _ in range(3)]
    addresses = [Pubkey.new_unique() for _ in range(150)]
    addresses[7], addresses[120], addresses[149] = (p.pubkey() for p in payers)
    async with fast(server.url) as chain:
        accounts = await chain.get_accounts(addresses)
        rent = await chain.minimum_balance(165)
    present = [i for i, a in enumerate(accounts) if a is not None]
    assert present == [7, 120, 149]
    assert rent == server.chain.svm.minimum_balance_for_rent_exemption(165)
