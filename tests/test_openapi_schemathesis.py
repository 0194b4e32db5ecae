"""schemathesis (all checks) against a live daemon's own ``/openapi.json``: no failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from solders.keypair import Keypair

from perpd.api._models import _DURATION
from perpd.api._trade import parse_duration
from perpd.errors import InvalidRequest
from tests.conftest import Server
from tests.daemon_proc import daemon

ROOT = Path(__file__).resolve().parent.parent


async def test_schemathesis_all_checks_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requester, maker = Keypair(), Keypair()
    # one client address sends every case: its unsigned calls must not meet the
    # per-address rate, or a 429 answers a case that checks for 401 (rates: elsewhere)
    monkeypatch.setenv("PERPD_PUBLIC_RATE_PER_S", "0")
    async with daemon(tmp_path / "perpd.db", "--chain", "none") as d:
        for keypair in (requester, maker):
            funded = await d.http.post(
                "/dev/faucet", json={"agent_id": str(keypair.pubkey()), "amount_usdc": "1000000"}
            )
            assert funded.status_code == 200, funded.text
        cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
        assert cli is not None
        env = os.environ | {
            "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
            "PERPD_FUZZ_KEYS": f"{requester} {maker}",
            "PYTHONPATH": str(ROOT),
        }
        # 422: a well-formed trade the accounts cannot fund (SPEC §6), not a bad input
        (tmp_path / "schemathesis.toml").write_text(
            "[checks.positive_data_acceptance]\n"
            'expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]\n'
        )
        url = f"{str(d.http.base_url).rstrip('/')}/openapi.json"
        bounds = ["--max-examples", "15", "--seed", "12", "--max-time", "60", "--workers", "1"]
        run = await trio.run_process(
            [
                cli,
                "--config-file",
                str(tmp_path / "schemathesis.toml"),
                "run",
                url,
                "--checks",
                "all",
                "--mode",
                "all",
                *bounds,
                "--request-timeout",
                "30",
                "--no-color",
                "--exclude-path",
                "/ws",
                "--exclude-path",
                "/ws/public",
            ],  # /ws, /ws/public: WebSockets (x-websocket)
            cwd=tmp_path,
            env=env,
            capture_stdout=True,
            stderr=subprocess.STDOUT,
            check=False,
        )
    out = run.stdout.decode()
    assert run.returncode == 0, out[-20_000:]
    assert "No issues found" in out or "passed" in out, out[-5000:]


async def test_405_names_the_allowed_methods(server: Server) -> None:
    r = await server.http.put("/trade/quote", content=b"{}")
    assert r.status_code == 405
    assert r.headers["Allow"] == "OPTIONS, POST"
    assert r.json()["error"]["code"] == "invalid_request"


async def test_document_is_generated_from_the_models(server: Server) -> None:
    doc = (await server.http.get("/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    op = doc["paths"]["/positions/{position_id}"]["get"]
    assert op["parameters"][0] == {
        "name": "position_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    }
    body = doc["components"]["schemas"]["TradeRequestBody"]
    assert body["additionalProperties"] is False
    assert set(body["required"]) == {"market", "side", "size_usdc", "leverage", "max_funding_rate"}
    signed = doc["paths"]["/trade/request"]["post"]
    assert signed["security"] == [{"X-Agent-Id": [], "X-Timestamp": [], "X-Signature": []}]
    assert {"201", "400", "401", "403", "409", "422", "429", "503"} <= set(signed["responses"])
    assert "x-websocket" in doc["paths"]["/ws"]["get"]


def test_the_duration_pattern_takes_exactly_what_the_router_takes() -> None:
    """The schema's `duration` pattern and `parse_duration` agree on every term (the
    fuzzer once sent a schema-valid "9999h" that the router refused)."""
    pattern = re.compile(_DURATION)
    for value in [f"{n}h" for n in range(10_001)] + ["perpetual", "01h", "h", "1H", "²h"]:
        try:
            parse_duration(value)
            taken = True
        except InvalidRequest:
            taken = False
        assert bool(pattern.match(value)) == taken, value
