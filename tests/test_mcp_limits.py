"""The limits of `perpd mcp` as pure logic (perpd/mcp/limits.py), its start-up checks
(the limits file, ``--http`` on loopback only), and the keypair file refused when group
or others can read it, through the real command."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agents import MICRO, Position, generate_keypair
from perpd.mcp.command import parse_http
from perpd.mcp.limits import (
    DAY_S,
    Exposure,
    LimitError,
    Limits,
    LimitsFileError,
    check_quote,
    check_trade,
    exposure_of,
    limits_from_file,
    limits_from_mapping,
)

ME, OTHER = (
    "Me1111111111111111111111111111111111111111",
    "Other111111111111111111111111111111111111",
)
NOW = 20_000 * DAY_S + 3_600  # 01:00 UTC
LIMITS = Limits(
    markets=frozenset({"BTC-PERP"}),
    max_notional=1_000 * MICRO,
    max_leverage=5,
    max_open_notional=2_000 * MICRO,
    max_daily_loss=100 * MICRO,
    confirm_above=500 * MICRO,
)
FLAT = Exposure(open_notional=0, daily_loss=0)


def position(**changes: Any) -> Position:
    wire: dict[str, Any] = {
        "position_id": "p",
        "market": "BTC-PERP",
        "requester": ME,
        "maker": OTHER,
        "side": "long",
        "size_usdc": "1000",
        "entry_price": "60000",
        "leverage": 5,
        "requester_collateral_usdc": "200",
        "maker_collateral_usdc": "1000",
        "funding_rate": "0.001",
        "funding_paid_usdc": "0",
        "realized_pnl_usdc": "0",
        "unrealized_pnl_usdc": "0",
        "status": "open",
        "opened_at": NOW - 10,
        "closed_at": None,
    }
    return Position.from_wire(wire | changes)


def test_defaults_are_small_and_confirm_above_500() -> None:
    assert limits_from_mapping({}) == Limits()
    assert Limits().confirm_above == 500 * MICRO and Limits().max_leverage == 5


def test_the_readme_example_is_the_defaults_on_two_markets() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("```toml\n[limits]\n", 1)[1].split("```", 1)[0]
    table = tomllib.loads(block)
    assert limits_from_mapping(table) == replace(
        Limits(), markets=frozenset({"BTC-PERP", "ETH-PERP"})
    )


def test_file_values_decimal_strings_and_integers() -> None:
    got = limits_from_mapping(
        {
            "markets": ["BTC-PERP"],
            "max_notional_usdc": "1000",
            "max_leverage": 5,
            "max_open_notional_usdc": 2000,
            "max_daily_loss_usdc": "100.000000",
            "confirm_above_usdc": "500",
        }
    )
    assert got == LIMITS


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"max_notional": "1"}, "unknown key limits.max_notional"),
        ({"max_notional_usdc": 10.5}, "must be a decimal string"),
        ({"max_notional_usdc": "1.0000001"}, "more than 6 decimals"),
        ({"max_daily_loss_usdc": "-1"}, "must not be negative"),
        ({"max_leverage": 0}, "positive integer"),
        ({"max_leverage": True}, "positive integer"),
        ({"markets": "BTC-PERP"}, "list of market names"),
    ],
)
def test_bad_values_refused_by_name(table: dict[str, Any], message: str) -> None:
    with pytest.raises(LimitsFileError, match=message):
        limits_from_mapping(table)


def test_file_reading(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[limits]\nmax_leverage = 3\nconfirm_above_usdc = "0"\n')
    assert limits_from_file(good) == Limits(max_leverage=3, confirm_above=0)
    assert limits_from_file(None) == Limits()
    other = tmp_path / "other.toml"
    other.write_text("[limit]\nmax_leverage = 3\n")
    with pytest.raises(LimitsFileError, match="unknown table or key 'limit'"):
        limits_from_file(other)
    with pytest.raises(LimitsFileError, match="cannot read"):
        limits_from_file(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("market", "notional", "leverage", "exposure", "code"),
    [
        ("ETH-PERP", 100 * MICRO, 2, FLAT, "market_not_allowed"),
        ("BTC-PERP", 1_000 * MICRO + 1, 2, FLAT, "notional_above_limit"),
        ("BTC-PERP", 100 * MICRO, 6, FLAT, "leverage_above_limit"),
        ("BTC-PERP", 501 * MICRO, 2, Exposure(1_500 * MICRO, 0), "open_notional_above_limit"),
        ("BTC-PERP", 1 * MICRO, 2, Exposure(0, 100 * MICRO), "daily_loss_limit_reached"),
    ],
)
def test_each_limit_refuses_with_its_code(
    market: str, notional: int, leverage: int, exposure: Exposure, code: str
) -> None:
    with pytest.raises(LimitError) as refused:
        check_trade(LIMITS, exposure, market, notional, leverage)
    assert refused.value.code == code


def test_at_the_limits_allowed_and_confirmation_above_the_threshold() -> None:
    assert (
        check_trade(LIMITS, Exposure(1_000 * MICRO, 100 * MICRO - 1), "BTC-PERP", 500 * MICRO, 5)
        is False
    )
    assert check_trade(LIMITS, FLAT, "BTC-PERP", 500 * MICRO + 1, 1) is True
    assert check_trade(LIMITS, FLAT, "BTC-PERP", 1_000 * MICRO, 5) is True
    never = Limits(markets=None, confirm_above=None)
    assert check_trade(never, FLAT, "ANY-PERP", 1_000 * MICRO, 5) is False
    always = Limits(confirm_above=0)
    assert check_trade(always, FLAT, "BTC-PERP", 1, 1) is True
    with pytest.raises(LimitError, match="daily_loss_limit_reached"):
        check_trade(Limits(max_daily_loss=0), FLAT, "BTC-PERP", 1, 1)  # 0: no loss allowed


def test_a_quotes_leverage_is_notional_over_collateral() -> None:
    assert check_quote(LIMITS, FLAT, "BTC-PERP", 1_000 * MICRO, 200 * MICRO) is True
    with pytest.raises(LimitError, match="leverage_above_limit") as refused:
        check_quote(LIMITS, FLAT, "BTC-PERP", 1_000 * MICRO, 200 * MICRO - 1)
    assert "6x" in refused.value.message
    with pytest.raises(LimitError, match="leverage_above_limit"):
        check_quote(LIMITS, FLAT, "BTC-PERP", 1_000 * MICRO, 0)


def test_exposure_open_notional_and_todays_loss() -> None:
    positions = [
        position(position_id="a", unrealized_pnl_usdc="-30", funding_paid_usdc="5"),
        # as maker: the requester's +10 unrealised is my -10
        position(position_id="b", requester=OTHER, maker=ME, unrealized_pnl_usdc="10"),
        position(position_id="c", status="closed", closed_at=NOW - 60, realized_pnl_usdc="-20"),
        # closed yesterday: not today's
        position(
            position_id="d", status="closed", closed_at=NOW - 2 * 3_600, realized_pnl_usdc="-99"
        ),
        position(position_id="e", requester=OTHER, maker="Third"),  # not mine
    ]
    got = exposure_of(positions, ME, NOW)
    assert got == Exposure(open_notional=2_000 * MICRO, daily_loss=(30 + 5 + 10 + 20) * MICRO)
    winning = [position(unrealized_pnl_usdc="50")]
    assert exposure_of(winning, ME, NOW) == Exposure(1_000 * MICRO, 0)


def test_http_only_on_loopback() -> None:
    assert parse_http("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_http("[::1]:8765") == ("::1", 8765)
    assert parse_http("localhost:1") == ("localhost", 1)
    for bad in ("0.0.0.0:8765", "192.168.1.2:80", "example.com:80"):
        with pytest.raises(ValueError, match="only a loopback address"):
            parse_http(bad)
    for bad in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="expected HOST:PORT"):
            parse_http(bad)


def test_command_refuses_a_keypair_readable_by_others_and_a_bad_config(tmp_path: Path) -> None:
    key = tmp_path / "agent.json"
    generate_keypair(key)
    key.chmod(0o644)
    run = [sys.executable, "-m", "perpd", "mcp", "--url", "http://127.0.0.1:9", "--keypair"]
    done = subprocess.run([*run, str(key)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "accessible by group or others" in done.stderr and "chmod 600" in done.stderr
    key.chmod(0o600)
    config = tmp_path / "mcp.toml"
    config.write_text("[limits]\nmax_leverage = 2.5\n")
    direct = [sys.executable, "-m", "perpd.mcp", *run[4:]]  # the same, without perpd.cli
    done = subprocess.run(
        [*direct, str(key), "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "limits.max_leverage must be a positive integer" in done.stderr


def test_the_cli_does_not_load_the_mcp_sdk_for_other_commands() -> None:
    code = (
        "import sys, perpd.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'mcp'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
