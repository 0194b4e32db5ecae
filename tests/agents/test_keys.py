"""Keypair files in the Solana CLI's format: 64 bytes as a JSON array, checked on load."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from solders.keypair import Keypair

from agents import KeypairError, generate_keypair, load_keypair, load_or_generate_keypair


def test_a_solana_keygen_file_loads_to_the_same_key(tmp_path: Path) -> None:
    original = Keypair()
    path = tmp_path / "id.json"
    path.write_text(original.to_json())  # what `solana-keygen new -o` writes
    loaded = load_keypair(path)
    assert loaded == original
    assert str(loaded.pubkey()) == str(original.pubkey())


def test_generate_writes_a_private_file_that_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "maker.json"
    kp = generate_keypair(path)
    assert load_keypair(path) == kp
    data = json.loads(path.read_text())
    assert len(data) == 64 and all(0 <= b < 256 for b in data)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["maker.json"]  # no temp file left


def test_generate_never_overwrites_a_key(tmp_path: Path) -> None:
    path = tmp_path / "id.json"
    first = generate_keypair(path)
    with pytest.raises(KeypairError, match="overwrite"):
        generate_keypair(path)
    assert load_keypair(path) == first


def test_load_or_generate_creates_once_then_loads(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    a = load_or_generate_keypair(path)
    b = load_or_generate_keypair(path)
    assert a == b


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not JSON"),
        ("[1, 2, 3]", "64 bytes"),
        (json.dumps([256] * 64), "64 bytes"),
        (json.dumps([True] * 64), "64 bytes"),
        ('{"secret": 1}', "64 bytes"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(KeypairError, match=message):
        load_keypair(path)


def test_a_public_half_that_does_not_match_the_secret_is_refused(tmp_path: Path) -> None:
    a, b = Keypair(), Keypair()
    path = tmp_path / "spliced.json"
    path.write_text(json.dumps(list(bytes(a)[:32] + bytes(b.pubkey()))))
    with pytest.raises(KeypairError):
        load_keypair(path)


def test_a_missing_file_is_a_keypair_error(tmp_path: Path) -> None:
    with pytest.raises(KeypairError, match="cannot read"):
        load_keypair(tmp_path / "nope.json")
