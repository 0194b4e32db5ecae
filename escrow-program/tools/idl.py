#!/usr/bin/env python3
"""The escrow program's Anchor IDL (pre-0.30 layout, as anchorpy 0.21 reads it).

The IDL is derived from the Rust sources, so the two cannot drift apart:

* instructions: the "Accounts expected" and "Data expected" doc comments of
  ``src/instruction.rs`` (order, names, ``writable``/``signer``), and each
  discriminator constant is checked against ``sha256("global:<name>")[..8]``;
* accounts: the ``#[repr(C)]`` structs of ``src/state/`` (field order and byte
  sizes), their discriminators checked against ``sha256("account:<Name>")[..8]``;
  the Borsh type of each field is declared below (the Rust side stores numbers as
  byte arrays), and its size is checked against the Rust field;
* errors: the numbered enum of ``src/error.rs`` and its doc comments.

Usage: ``idl.py --write`` (rewrite ``idl/escrow.json``) or ``idl.py --check``
(fail if the file differs from what the sources give).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IDL_PATH = ROOT / "idl" / "escrow.json"
VERSION = "0.1.0"
NAME = "perpd_escrow"

# Borsh types of the fields whose Rust representation is a byte array.
FIELD_TYPES: dict[str, dict[str, object]] = {
    "Collateral": {"free": "u64", "locked": "u64", "withdrawals": "u64"},
    "Config": {"accrued_fees": "u64", "funding_period_s": "i64"},
    "Market": {},
    "Position": {
        "nonce": "u64",
        "notional": "u64",
        "entry_price": "u64",
        "cr": "u64",
        "cm": "u64",
        "imr": "u64",
        "imm": "u64",
        "rate_ppm": "i64",
        "t_base": "i64",
        "funding_paid": "i64",
        "opened_at": "i64",
        "term_end": "i64",
        "closes": "u32",
    },
}
ACCOUNTS = ("Config", "Collateral", "Position")
TYPES = ("Market",)
STATE_FILES = ("state/config.rs", "state/collateral.rs", "state/position.rs")
INSTRUCTION_COUNT = 10

BORSH_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "i64": 8, "publicKey": 32}


class IdlError(Exception):
    """The sources disagree with themselves or with Anchor's conventions."""


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def sighash(namespace: str, name: str) -> list[int]:
    return list(hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8])


def rust_array(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def read(relative: str) -> str:
    return (ROOT / "src" / relative).read_text()


# ---------------------------------------------------------------- instructions


def rust_type_to_borsh(rust: str) -> object:
    mapping: dict[str, object] = {
        "Pubkey": "publicKey",
        "u64": "u64",
        "u8": "u8",
        "u32": "u32",
        "i64": "i64",
        "[u8; 32]": {"array": ["u8", 32]},
    }
    if rust not in mapping:
        raise IdlError(f"argument type {rust!r} has no Borsh mapping here")
    return mapping[rust]


def instructions() -> list[dict]:
    source = read("instruction.rs")
    found = []
    # A doc block followed by `pub const NAME: [u8; 8] = [...];`
    pattern = re.compile(
        r"((?:^///.*\n)+)pub const ([A-Z_]+): \[u8; 8\] = (\[[^\]]*\]);", re.MULTILINE
    )
    for doc, const, value in pattern.findall(source):
        lines = [line[3:].strip() for line in doc.splitlines()]
        name = re.match(r"`(\w+)`", lines[0]).group(1)
        if const != name.upper():
            raise IdlError(f"constant {const} documents instruction {name}")
        if rust_array(value) != sighash("global", name):
            raise IdlError(f"{const} is not sha256('global:{name}')[..8]")
        accounts = []
        for line in lines:
            m = re.match(r"\d+\. `\[([a-z, ]*)\]` (\w+)[:.]", line)
            if m:
                flags = {f.strip() for f in m.group(1).split(",") if f.strip()}
                if flags - {"writable", "signer"}:
                    raise IdlError(f"{name}: unknown account flags {flags}")
                accounts.append(
                    {
                        "name": camel(m.group(2)),
                        "isMut": "writable" in flags,
                        "isSigner": "signer" in flags,
                    }
                )
        # The "Data expected:" paragraph, which may wrap over several lines.
        start = next((i for i, line in enumerate(lines) if line.startswith("Data expected:")), None)
        data = None
        if start is not None:
            end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
            data = " ".join(lines[start:end])
        if data is None or not accounts:
            raise IdlError(f"{name}: missing 'Accounts expected' or 'Data expected'")
        args = [
            {"name": camel(arg), "type": rust_type_to_borsh(ty)}
            for arg, ty in re.findall(r"`(\w+): (\w+|\[u8; 32\])`", data)
        ]
        found.append({"name": name, "accounts": accounts, "args": args})
    if len(found) != INSTRUCTION_COUNT:
        raise IdlError(f"expected {INSTRUCTION_COUNT} documented instructions, found {len(found)}")
    return found


# ---------------------------------------------------------------- accounts, types


def rust_structs() -> dict[str, tuple[list[tuple[str, str]], list[int] | None]]:
    """Struct name -> ([(field, rust type)], discriminator or None)."""
    structs = {}
    for relative in STATE_FILES:
        source = read(relative)
        for name, body in re.findall(r"pub struct (\w+) \{\n(.*?)\n\}", source, re.DOTALL):
            fields = re.findall(r"^\s*(?:pub )?(\w+): ([^,]+),", body, re.MULTILINE)
            structs[name] = (fields, None)
        for name, value in re.findall(
            r"impl ProgramAccount for (\w+) \{\s*const DISCRIMINATOR: \[u8; 8\] = (\[[^\]]*\]);",
            source,
        ):
            structs[name] = (structs[name][0], rust_array(value))
    return structs


def rust_consts() -> dict[str, int]:
    consts = {}
    for relative in STATE_FILES:
        consts.update(
            (k, int(v)) for k, v in re.findall(r"pub const (\w+): usize = (\d+);", read(relative))
        )
    return consts


def rust_size(rust: str, structs, consts) -> int:
    rust = rust.strip()
    if rust in ("u8", "Pubkey"):
        return 1 if rust == "u8" else 32
    m = re.fullmatch(r"\[(\w+); (\w+)\]", rust)
    if m:
        inner, count = m.groups()
        count = int(count) if count.isdigit() else consts[count]
        return rust_size(inner, structs, consts) * count
    if rust in structs:
        return sum(rust_size(t, structs, consts) for _, t in structs[rust][0])
    raise IdlError(f"cannot size Rust type {rust!r}")


def borsh_type(struct: str, field: str, rust: str, structs, consts):
    declared = FIELD_TYPES[struct].get(field)
    if declared is not None:
        return declared
    rust = rust.strip()
    if rust == "Pubkey":
        return "publicKey"
    if rust == "u8":
        return "u8"
    m = re.fullmatch(r"\[(\w+); (\w+)\]", rust)
    if m:
        inner, count = m.groups()
        count = int(count) if count.isdigit() else consts[count]
        inner_type = {"u8": "u8"}.get(inner, {"defined": inner} if inner in structs else None)
        if inner_type is None:
            raise IdlError(f"{struct}.{field}: no Borsh type for {rust}")
        return {"array": [inner_type, count]}
    raise IdlError(f"{struct}.{field}: no Borsh type for {rust}")


def borsh_size(ty, types: dict[str, list[dict]]) -> int:
    if isinstance(ty, str):
        return BORSH_SIZES[ty]
    if "array" in ty:
        inner, count = ty["array"]
        return borsh_size(inner, types) * count
    return sum(borsh_size(f["type"], types) for f in types[ty["defined"]])


def typedefs() -> tuple[list[dict], list[dict]]:
    structs = rust_structs()
    consts = rust_consts()
    fields_of: dict[str, list[dict]] = {}
    for name in (*TYPES, *ACCOUNTS):
        if name not in structs:
            raise IdlError(f"struct {name} not found in {STATE_FILES}")
        rust_fields, discriminator = structs[name]
        if name in ACCOUNTS:
            if rust_fields[0] != ("discriminator", "[u8; 8]"):
                raise IdlError(f"{name} must start with its discriminator")
            if discriminator != sighash("account", name):
                raise IdlError(f"{name}::DISCRIMINATOR is not sha256('account:{name}')[..8]")
            rust_fields = rust_fields[1:]
        fields = []
        for field, rust in rust_fields:
            ty = borsh_type(name, field, rust, structs, consts)
            fields.append({"name": camel(field), "type": ty})
            fields_of[name] = fields
            if borsh_size(ty, fields_of) != rust_size(rust, structs, consts):
                raise IdlError(f"{name}.{field}: Borsh {ty} and Rust {rust} differ in size")
        fields_of[name] = fields
    accounts = [{"name": n, "type": {"kind": "struct", "fields": fields_of[n]}} for n in ACCOUNTS]
    types = [{"name": n, "type": {"kind": "struct", "fields": fields_of[n]}} for n in TYPES]
    return accounts, types


# ---------------------------------------------------------------- errors


def errors() -> list[dict]:
    source = read("error.rs")
    found = [
        {"code": int(code), "name": name, "msg": msg}
        for name, code, msg in re.findall(r'^\s*(\w+) = (\d+) => "([^"]*)",$', source, re.MULTILINE)
    ]
    codes = [e["code"] for e in found]
    if not found or codes != list(range(6000, 6000 + len(found))):
        raise IdlError("error codes must be 6000, 6001, ... in order, each with a message")
    return found


def build() -> dict:
    accounts, types = typedefs()
    return {
        "version": VERSION,
        "name": NAME,
        "instructions": instructions(),
        "accounts": accounts,
        "types": types,
        "errors": errors(),
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    if argv[1:] not in (["--write"], ["--check"]):
        print("usage: idl.py --write | --check", file=sys.stderr)
        return 2
    try:
        text = render()
    except IdlError as exc:
        print(f"idl: {exc}", file=sys.stderr)
        return 1
    if argv[1] == "--write":
        IDL_PATH.parent.mkdir(exist_ok=True)
        IDL_PATH.write_text(text)
        return 0
    if not IDL_PATH.exists() or IDL_PATH.read_text() != text:
        print(f"idl: {IDL_PATH} is stale: run `make -C escrow-program idl`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
