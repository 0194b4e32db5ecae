"""``GET /chain`` over real HTTP from the daemon, for ``--chain none`` and ``local``; the
local chain kept in the database across a restart; ``perpd chain status --db``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from perpd import cli
from perpd.chain._program import LOCAL_PROGRAM_ID, packaged_sha256
from perpd.store import chain as qc
from tests.conftest import base_config, start_server


async def test_chain_none_shows_only_its_mode(tmp_path: Path, nursery: trio.Nursery) -> None:
    server = await start_server(nursery, base_config(tmp_path, chain="none"))
    r = await server.http.get("/chain")
    assert r.status_code == 200 and r.json() == {"mode": "none"}
    await server.http.aclose()
    server.shutdown.set()


async def test_the_local_chain_is_shown_and_survives_a_restart(
    tmp_path: Path, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    config = base_config(tmp_path, chain="local")
    server = await start_server(nursery, config)
    r = await server.http.get("/chain")
    assert r.status_code == 200, r.text
    shown = r.json()
    assert set(shown) == {"mode", "program_id", "cluster", "usdc_mint", "vault", "slot"}
    assert (shown["mode"], shown["program_id"], shown["cluster"]) == (
        "local",
        str(LOCAL_PROGRAM_ID),
        "local",
    )
    assert isinstance(shown["slot"], int) and shown["slot"] >= 3  # genesis transactions
    saved = await server.venue.read(qc.count_chain_accounts)
    assert saved >= 10
    await server.http.aclose()
    server.shutdown.set()
    await trio.sleep(0.5)  # let the first daemon close its database
    # When the daemon starts again on the same file
    again = await start_server(nursery, config)
    r = await again.http.get("/chain")
    # Then it is the same chain: same mint and vault (the keys came from the file)
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("usdc_mint", "vault", "program_id")} == {
        k: shown[k] for k in ("usdc_mint", "vault", "program_id")
    }
    assert r.json()["slot"] == shown["slot"]
    assert await again.venue.read(qc.count_chain_accounts) == saved
    # and `perpd chain status --db` reads it (the daemon still running)
    code = await trio.to_thread.run_sync(cli.main, ["chain", "status", "--db", config.db])
    out, err = capsys.readouterr()
    assert code == 0, err
    status = json.loads(out)
    assert status["initialized"] and status["matches_package"]
    assert status["program_sha256"] == packaged_sha256()
    assert status["usdc_mint"] == shown["usdc_mint"] and status["slot"] == shown["slot"]
    assert status["config"]["vault"] == shown["vault"]
    assert [m["max_leverage"] for m in status["config"]["markets"][:3]] == [50, 50, 20]
    await again.http.aclose()
    again.shutdown.set()


async def test_status_of_a_database_without_a_local_chain(
    tmp_path: Path, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    config = base_config(tmp_path, chain="none")
    server = await start_server(nursery, config)
    await server.http.aclose()
    server.shutdown.set()
    await trio.sleep(0.3)
    code = await trio.to_thread.run_sync(cli.main, ["chain", "status", "--db", config.db])
    out, err = capsys.readouterr()
    assert code == 1 and "holds no local chain" in err
    assert json.loads(out)["initialized"] is False
    code = await trio.to_thread.run_sync(
        cli.main, ["chain", "status", "--db", str(tmp_path / "missing.db")]
    )
    assert code == 1 and "no database" in capsys.readouterr().err
