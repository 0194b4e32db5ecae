"""The loopback JSON-RPC server speaks JSON-RPC 2.0 as a validator does: errors, batches,
blockhash ages, preflight."""

from __future__ import annotations

import base64

import httpx
import pytest
import trio
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from perpd.chain._rpc import RpcTransport
from tests.chain.rpc_server import MAX_PROCESSING_AGE, Chain, RpcServer


@pytest.fixture
async def server(nursery: trio.Nursery) -> RpcServer:
    s = RpcServer(Chain())
    await nursery.start(s.serve)
    return s


async def post(server: RpcServer, body: object) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(server.url, json=body)


async def test_unknown_methods_bad_json_and_batches(server: RpcServer) -> None:
    one = (await post(server, {"jsonrpc": "2.0", "id": 3, "method": "getFoo"})).json()
    error = {"code": -32601, "message": "Method not found: getFoo"}
    assert one == {"jsonrpc": "2.0", "error": error, "id": 3}
    async with httpx.AsyncClient() as http:
        bad = (await http.post(server.url, content=b"{nope")).json()
    assert bad["error"]["code"] == -32700
    batch = (
        await post(
            server,
            [
                {"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "getMinimumBalanceForRentExemption",
                    "params": [0],
                },  # noqa: E501
            ],
        )
    ).json()
    assert [r["id"] for r in batch] == [1, 2]
    assert batch[1]["result"] == server.chain.rent(0)


async def test_a_blockhash_lives_150_blocks(server: RpcServer) -> None:
    async with RpcTransport(server.url) as chain:
        blockhash, last_valid = await chain.latest_blockhash()
        assert last_valid == await chain.block_height() + MAX_PROCESSING_AGE
        server.chain.advance(MAX_PROCESSING_AGE)
        assert server.chain.blockhash_valid(blockhash)
        server.chain.advance(1)
        assert not server.chain.blockhash_valid(blockhash)
        assert await chain.block_height() == last_valid + 1


async def test_a_stale_blockhash_is_refused_in_preflight_then_re_fetched(
    server: RpcServer,
) -> None:
    # Given every blockhash expiring just before the first send reaches the node
    payer, to = Keypair(), Pubkey.new_unique()
    server.chain.svm.airdrop(payer.pubkey(), 10**9)
    server.chain.faults.expire_before_send = 1
    async with RpcTransport(server.url, poll_interval_s=0.01) as chain:
        ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=10))
        done = await chain.send_and_confirm([ix], payer)
    # Then the refused copy was never counted as sent: a second signature landed, once
    first, second = server.chain.received
    assert first != second == done.signature and first not in server.chain.statuses
    assert server.chain.svm.get_balance(to) == 10


async def test_a_forged_signature_is_refused(server: RpcServer) -> None:
    payer = Keypair()
    server.chain.svm.airdrop(payer.pubkey(), 10**9)
    ix = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=1)
    )  # noqa: E501
    message = Message.new_with_blockhash([ix], payer.pubkey(), server.chain.latest()[0])
    forged = VersionedTransaction.populate(message, [Keypair().sign_message(bytes(message))])
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "sendTransaction",
        "params": [base64.b64encode(bytes(forged)).decode(), {"encoding": "base64"}],
    }
    answer = (await post(server, body)).json()
    assert answer["error"]["code"] == -32003
    assert server.chain.statuses == {}
