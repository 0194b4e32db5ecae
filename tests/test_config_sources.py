"""`perpd run`'s configuration (issue 12): defaults < TOML file < PERPD_* environment <
flags; unknown keys refused by name; a keypair file others can read refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from solders.keypair import Keypair

from perpd import cli
from perpd.config import Config
from perpd.config_sources import ConfigError, build
from tests.daemon_proc import free_port, wait_ready


def config(argv: list[str], environ: dict[str, str], tmp_path: Path) -> Config:
    args = cli._parser(["run"]).parse_args(["run", *argv])
    return cli.config_from_args(args, environ=environ)


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_each_source_overrides_the_one_before(tmp_path: Path) -> None:
    toml = write(
        tmp_path / "perpd.toml",
        'funding_period_s = 100\nkeeper_grace_s = 3\nhost = "0.0.0.0"\n'
        "[min_size_usdc]\n'BTC-PERP' = 20000000\n",
    )
    file_only = config(["--config", str(toml)], {}, tmp_path)
    assert (file_only.funding_period_s, file_only.keeper_grace_s) == (100, 3.0)
    assert file_only.host == "0.0.0.0" and file_only.min_size_usdc == (("BTC-PERP", 20_000_000),)
    assert file_only.port == Config.port  # not set anywhere: the default

    env = {"PERPD_FUNDING_PERIOD_S": "200", "PERPD_KEEPER": "false", "PERPD_TEST_CHAIN": "x"}
    with_env = config(["--config", str(toml)], env, tmp_path)
    assert (with_env.funding_period_s, with_env.keeper, with_env.keeper_grace_s) == (200, False, 3)

    flags = config(["--config", str(toml), "--funding-period", "300", "--port", "9"], env, tmp_path)
    assert (flags.funding_period_s, flags.port, flags.keeper) == (300, 9, False)
    # a flag given with the default's value still wins over the file
    same = config(
        ["--config", str(toml), "--funding-period", str(Config.funding_period_s)], {}, tmp_path
    )
    assert same.funding_period_s == Config.funding_period_s


def test_the_default_file_is_read_only_when_it_exists(tmp_path: Path) -> None:
    missing = tmp_path / "etc.toml"
    assert build({}, environ={}, default_file=missing) == Config()
    write(missing, "port = 7\n")
    assert build({}, environ={}, default_file=missing).port == 7


@pytest.mark.parametrize(
    ("text", "env", "said"),
    [
        ("fundng_period_s = 3\n", {}, "unknown key 'fundng_period_s'"),
        ("port = '80'\n", {}, "port must be a int, not str"),
        ("dev = 1\n", {}, "dev must be a bool, not int"),
        ("port = 70000\n", {}, "port 70000 out of range"),
        ("[min_size_usdc]\n'BTC-PERP' = '1'\n", {}, "min_size_usdc must be a table"),
        ("port = [\n", {}, "config file"),
        ("", {"PERPD_PORTT": "1"}, "unknown variable PERPD_PORTT"),
        ("", {"PERPD_PORT": "eighty"}, "environment: port must be a int"),
        ("", {"PERPD_DEV": "maybe"}, "environment: dev must be a bool"),
    ],
)
def test_bad_keys_and_values_are_refused_by_name(
    tmp_path: Path, text: str, env: dict[str, str], said: str
) -> None:
    toml = write(tmp_path / "perpd.toml", text)
    with pytest.raises(ConfigError, match=said.replace("[", r"\[")):
        config(["--config", str(toml)], env, tmp_path)


def test_a_keypair_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "authority.json"
    key.write_text(json.dumps(list(bytes(Keypair()))))
    rpc = ["--chain", "rpc", "--rpc-url", "http://127.0.0.1:1", "--authority-keypair", str(key)]
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="accessible by group or others"):
        config(rpc, {}, tmp_path)
    key.chmod(0o600)
    assert config(rpc, {}, tmp_path).authority_keypair == str(key)
    # through the command line: a clear message and exit 2, before anything starts
    key.chmod(0o640)
    done = subprocess.run(
        [sys.executable, "-m", "perpd", "run", "--db", str(tmp_path / "x.db"), *rpc],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "chmod 600" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.db").exists()


async def test_perpd_run_takes_its_port_and_period_from_file_and_environment(
    tmp_path: Path,
) -> None:
    port = free_port()
    toml = write(tmp_path / "perpd.toml", f"port = {port}\nfunding_period_s = 111\ndev = true\n")
    env = os.environ | {"PERPD_FUNDING_PERIOD_S": "222", "PERPD_CHAIN": "none"}
    cmd = [
        sys.executable,
        "-m",
        "perpd",
        "run",
        "--config",
        str(toml),
        "--db",
        str(tmp_path / "p.db"),
    ]
    proc = start(cmd, env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await wait_ready(http, proc)
            markets = (await http.get("/markets")).json()["markets"]
            assert {m["funding_period_s"] for m in markets} == {222}
            assert (await http.get("/chain")).json()["mode"] == "none"
    finally:
        proc.terminate()
        code = proc.wait(timeout=20)
    assert code == 0  # SIGTERM: a clean stop


def test_the_example_file_in_systemd_is_a_valid_config(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "systemd" / "perpd.toml"
    cfg = build({}, config_path=str(example), environ={})
    assert (cfg.oracle, cfg.chain, cfg.db) == ("pyth", "local", "/var/lib/perpd/perpd.db")
