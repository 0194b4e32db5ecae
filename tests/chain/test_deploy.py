"""``perpd chain deploy`` and ``status`` end to end: the CLI (a real process) against
the JSON-RPC server on loopback in front of LiteSVM, then the deployed program run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import trio
from anchorpy import Coder
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpd import cli
from perpd.chain import _loader as loader
from perpd.chain._deploy import deploy, program_status
from perpd.chain._errors import TransactionFailed
from perpd.chain._keyfile import create_keyfile
from perpd.chain._program import packaged_program, packaged_sha256
from perpd.chain._rpc import RpcTransport
from tests.chain.rpc_server import Chain, RpcServer
from tests.escrow.escrow_harness import Escrow, load_idl

SOL = 10**9
MAX_LEN = 300_000  # above the program, below the default of twice its length


@pytest.fixture
async def server(nursery: trio.Nursery) -> RpcServer:
    s = RpcServer(Chain())
    await nursery.start(s.serve)
    return s


def fast(url: str, **kw: object) -> RpcTransport:
    return RpcTransport(url, poll_interval_s=0.01, resend_interval_s=0.05, **kw)  # type: ignore[arg-type]


def authority_file(server: RpcServer, tmp_path: Path) -> tuple[Path, Keypair]:
    path = tmp_path / "authority.json"
    keypair = create_keyfile(path)
    server.chain.svm.airdrop(keypair.pubkey(), 10 * SOL)
    return path, keypair


async def perpd(*args: str) -> tuple[int, str, str]:
    """``perpd chain ARGS`` in a process of its own: exit status, stdout, stderr."""
    done = await trio.run_process(
        [sys.executable, "-m", "perpd", "chain", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def perpd_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same through `perpd.cli.main` in a worker thread (its own trio loop): the
    full command line without a process start-up."""
    code = await trio.to_thread.run_sync(cli.main, ["chain", *args])
    out, err = capsys.readouterr()
    return code, out, err


async def test_deploy_then_status_through_the_cli(server: RpcServer, tmp_path: Path) -> None:
    auth_path, authority = authority_file(server, tmp_path)
    program_path = tmp_path / "program.json"
    # When the packaged program is deployed by the CLI (the program keypair is created)
    code, out, err = await perpd(
        "deploy",
        "--rpc-url",
        server.url,
        "--authority-keypair",
        str(auth_path),
        "--program-keypair",
        str(program_path),
        "--priority-fee",
        "1000",
    )
    assert code == 0, err
    result = json.loads(out)
    program_id = Pubkey.from_string(result["program_id"])
    assert oct(program_path.stat().st_mode & 0o777) == "0o600"
    # Then the Program account points to its ProgramData, which holds the packaged
    # bytes with room to grow, the deploy slot and the upgrade authority
    chain = server.chain
    program = chain.account(program_id)
    assert program is not None and program.executable and program.owner == loader.LOADER_V3
    assert loader.parse_program(bytes(program.data)) == loader.programdata_address(program_id)
    pd = chain.account(loader.programdata_address(program_id))
    assert pd is not None
    state = loader.parse_programdata(bytes(pd.data))
    so = packaged_program()
    assert state.program == so + bytes(len(so))
    assert state.upgrade_authority == authority.pubkey()
    assert state.slot == result["slot"] and result["writes"] > 1
    assert pd.lamports == chain.rent(loader.PROGRAMDATA_METADATA + 2 * len(so))
    # and the program runs: an unknown instruction is its own InvalidInstruction (6000)
    async with fast(server.url) as transport:
        with pytest.raises(TransactionFailed) as caught:
            await transport.send_and_confirm([Instruction(program_id, bytes(8), [])], authority)
    assert caught.value.code == 6000
    # When its status is asked for
    code, out, err = await perpd("status", "--rpc-url", server.url, "--program-id", str(program_id))
    assert code == 0, err
    status = json.loads(out)
    assert status["upgrade_authority"] == str(authority.pubkey())
    assert status["programdata_slot"] == result["slot"]
    assert status["program_sha256"] == packaged_sha256() and status["matches_package"]
    assert (status["program_len"], status["max_data_len"]) == (len(so), 2 * len(so))
    assert status["initialized"] is False


async def test_deploy_lands_every_write_once_through_drops_and_expiry(server: RpcServer) -> None:
    authority = Keypair()
    server.chain.svm.airdrop(authority.pubkey(), 10 * SOL)
    server.chain.faults.drop = 3
    server.chain.faults.expire_after_send = 2
    program = Keypair()
    async with fast(server.url) as transport:
        done = await deploy(transport, authority, program, max_data_len=MAX_LEN)
        status = await program_status(transport, program.pubkey())
    assert status.matches_package and status.max_data_len == MAX_LEN
    assert status.slot == done.slot


async def test_a_group_readable_authority_keypair_is_refused(
    server: RpcServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    auth_path, _ = authority_file(server, tmp_path)
    os.chmod(auth_path, 0o640)
    code, _, err = await perpd_main(
        capsys,
        "deploy",
        "--rpc-url",
        server.url,
        "--authority-keypair",
        str(auth_path),
        "--program-keypair",
        str(tmp_path / "p.json"),
    )
    assert code == 2 and f"chmod 600 {auth_path}" in err
    assert server.chain.received == []


async def test_deploy_refuses_an_address_that_has_an_account(
    server: RpcServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    auth_path, _ = authority_file(server, tmp_path)
    program_path = tmp_path / "program.json"
    taken = create_keyfile(program_path)
    server.chain.svm.airdrop(taken.pubkey(), SOL)
    args = ["--authority-keypair", str(auth_path), "--program-keypair", str(program_path)]
    code, _, err = await perpd_main(capsys, "deploy", "--rpc-url", server.url, *args)
    assert code == 1 and "already has an account" in err
    assert server.chain.received == []


async def test_status_of_an_address_without_a_program(
    server: RpcServer, capsys: pytest.CaptureFixture[str]
) -> None:
    address = str(Pubkey.new_unique())
    code, out, err = await perpd_main(
        capsys, "status", "--rpc-url", server.url, "--program-id", address
    )
    assert code == 1 and "no program deployed" in err
    assert json.loads(out)["deployed"] is False


async def test_an_unreachable_cluster_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--rpc-url", "http://127.0.0.1:9", "--program-id", str(Pubkey.new_unique())]
    code, _, err = await perpd_main(capsys, "status", *args, "--timeout", "1")
    assert code == 3 and "cluster unavailable" in err


async def test_the_modelled_deploy_refuses_a_buffer_of_another_authority(
    server: RpcServer,
) -> None:
    # Given a buffer whose authority is A, and B trying to deploy it
    a, b, program, buffer = Keypair(), Keypair(), Keypair(), Keypair()
    for k in (a, b):
        server.chain.svm.airdrop(k.pubkey(), 10 * SOL)
    so = packaged_program()
    async with fast(server.url) as transport:
        rent = await transport.minimum_balance(loader.BUFFER_METADATA + 8)
        await transport.send_and_confirm(
            loader.create_buffer(a.pubkey(), buffer.pubkey(), a.pubkey(), rent, 8), a, [buffer]
        )
        await transport.send_and_confirm([loader.write(buffer.pubkey(), a.pubkey(), 0, so[:8])], a)
        ixs = loader.deploy_with_max_data_len(
            b.pubkey(), program.pubkey(), buffer.pubkey(), b.pubkey(), 10**7, 100
        )
        with pytest.raises(TransactionFailed, match="IncorrectAuthority") as caught:
            await transport.send_and_confirm(ixs, b, [program])
    # Then the whole transaction is undone: no program account, the buffer intact
    assert caught.value.instruction == 1 and caught.value.signature is not None
    assert server.chain.account(program.pubkey()) is None
    held = server.chain.account(buffer.pubkey())
    assert held is not None and bytes(held.data)[loader.BUFFER_METADATA :] == so[:8]


async def test_status_decodes_the_config_once_initialized(nursery: trio.Nursery) -> None:
    # Given the escrow deployed over RPC into an SVM holding a USDC mint
    idl = load_idl()
    escrow = Escrow(packaged_program(), idl, Coder(idl))
    server = RpcServer(Chain(svm=escrow.svm))
    await nursery.start(server.serve)
    program = Keypair()
    async with fast(server.url) as transport:
        await deploy(transport, escrow.admin, program)
        # and initialized by its upgrade authority
        escrow.program_id = program.pubkey()
        escrow.config = Pubkey.find_program_address([b"config"], program.pubkey())[0]
        escrow.vault_authority = Pubkey.find_program_address([b"vault"], program.pubkey())[0]
        escrow.vault = escrow.token_account(escrow.vault_authority, 0)
        escrow.programdata = loader.programdata_address(program.pubkey())
        await transport.send_and_confirm([escrow.initialize_ix()], escrow.admin)
        status = await program_status(transport, program.pubkey())
    # Then status shows the config the program wrote
    assert status.config is not None
    assert status.config["admin"] == str(escrow.admin.pubkey())
    assert status.config["router_authority"] == str(escrow.router.pubkey())
    assert status.config["vault"] == str(escrow.vault)
    assert status.to_json()["initialized"] is True
