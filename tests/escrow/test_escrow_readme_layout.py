"""escrow-program/README.md's byte layouts are the real ones: each consent table
against the bytes `perpd.chain._consent` builds (the bytes the program accepts in
the lock, close and withdraw tests), each account table against the IDL (which
`make` checks against `src/state/*.rs`)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from perpd.chain import _consent

README = Path(__file__).resolve().parents[2] / "escrow-program" / "README.md"
IDL = README.parent / "idl" / "escrow.json"
MARKET_LEN = 40  # the one defined type, inside Config
SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "i64": 8, "publicKey": 32}
# One distinct value per field (keys and hash as 32 distinct bytes).
KEYS = {
    name: bytes([i] * 32)
    for i, name in enumerate(
        ["program", "requester", "maker", "position", "agent", "destination", "request_hash"],
        start=1,
    )
}
VALUES = {
    "request": {
        "nonce": 2**63 + 5,
        "market": 2,
        "side": 1,
        "size": 7_000_001,
        "leverage": 20,
        "max_rate": -1_234,
        "duration": 3_600,
        "expires_at": 1_700_000_030,
    },
    "quote": {"rate": -500, "collateral": 1_000_000_007, "valid_until": 1_700_000_010},
    "close": {"size_percent": 50, "closes": 3, "expires_at": 1_700_000_040},
    "withdraw": {"amount": 9_000_000, "withdrawals": 4, "expires_at": 1_700_000_050},
}
BUILDERS = {
    "request": lambda k, v: _consent.request_consent(k["program"], k["requester"], **v),
    "quote": lambda k, v: _consent.quote_consent(k["program"], k["maker"], k["request_hash"], **v),
    "close": lambda k, v: _consent.close_consent(k["program"], k["position"], **v),
    "withdraw": lambda k, v: _consent.withdraw_consent(
        k["program"], k["agent"], k["destination"], **v
    ),
}


def tables() -> dict[str, tuple[int, list[tuple[int, int, str, str]]]]:
    """Each `#### <name> (<n> B...)` heading's declared size and table rows."""
    found: dict[str, tuple[int, list[tuple[int, int, str, str]]]] = {}
    sections = re.split(r"^#### ", README.read_text(), flags=re.M)[1:]
    for section in sections:
        heading = re.match(r"(\w+) \((\d+) B", section)
        assert heading, section[:40]
        rows = re.findall(r"^\| (\d+) \| (\d+) \| (\w+) \| (.+?) \|$", section, flags=re.M)
        found[heading[1]] = (
            int(heading[2]),
            [(int(at), int(size), field, kind) for at, size, field, kind in rows],
        )
    return found


def _contiguous(declared: int, rows: list[tuple[int, int, str, str]]) -> None:
    at = 0
    for offset, size, field, _ in rows:
        assert offset == at, f"{field} at {offset}, the previous field ends at {at}"
        at += size
    assert at == declared


@pytest.mark.parametrize("name", ["request", "quote", "close", "withdraw"])
def test_each_consent_table_is_the_signed_bytes(name: str) -> None:
    # Given the README's table of a consent and the bytes the daemon and SDK sign
    declared, rows = tables()[name]
    signed = BUILDERS[name](KEYS, VALUES[name])
    # Then the table covers them exactly, field after field
    assert len(signed) == declared
    _contiguous(declared, rows)
    # and each field holds its value in the stated encoding
    for offset, size, field, encoding in rows:
        got = signed[offset : offset + size]
        if field == "prefix":
            assert encoding == f"ASCII `{got.decode()}`"
        elif encoding.startswith("Pubkey") or field == "request_hash":
            assert got == KEYS[field], field
        else:
            kind = encoding.split()[0]
            assert SIZES[kind] == size, field
            value = int.from_bytes(got, "little", signed=kind.startswith("i"))
            assert value == VALUES[name][field], field


def test_the_quote_commits_to_the_request_hash() -> None:
    # Given a request consent
    request = BUILDERS["request"](KEYS, VALUES["request"])
    # When its hash for a quote is taken
    committed = _consent.request_hash(request)
    # Then it is the sha256 of its bytes, as the quote table says
    assert committed == hashlib.sha256(request).digest()


def _idl_kind(kind: object) -> tuple[str, int]:
    """How the README names an IDL type, and its size in bytes."""
    if isinstance(kind, str):
        return ("Pubkey" if kind == "publicKey" else kind), SIZES[kind]
    assert isinstance(kind, dict)
    if "array" in kind:
        element, count = kind["array"]
        name, size = _idl_kind(element)
        return f"[{name}; {count}]", size * count
    return kind["defined"], MARKET_LEN


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


@pytest.mark.parametrize("name", ["Config", "Market", "Collateral", "Position"])
def test_each_account_table_is_the_idl_layout(name: str) -> None:
    # Given the README's table of an account and the IDL's fields
    declared, rows = tables()[name]
    idl = json.loads(IDL.read_text())
    fields = {t["name"]: t for t in idl["accounts"] + idl["types"]}[name]["type"]["fields"]
    # Then the table covers the account, an account's discriminator first
    _contiguous(declared, rows)
    if name != "Market":
        assert rows[0] == (0, 8, "discriminator", f'`sha256("account:{name}")[..8]`')
        rows = rows[1:]
    # and lists the IDL's fields in order, with their types and sizes
    at = rows[0][0]
    for (offset, size, field, kind), idl_field in zip(rows, fields, strict=True):
        idl_kind, idl_size = _idl_kind(idl_field["type"])
        assert (offset, size, _camel(field)) == (at, idl_size, idl_field["name"])
        assert kind.split(" (")[0].split(",")[0] == idl_kind, field
        at += size
