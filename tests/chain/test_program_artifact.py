"""The packaged program is the reproducible build of the sources, and the wheel
carries it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from perpd.chain._program import elf_length, packaged_program, packaged_sha256
from tests.escrow.escrow_harness import PROGRAM_SO, make

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = ROOT / "perpd" / "chain" / "escrow.so"
REFRESH = "run `make -C escrow-program package` and commit perpd/chain/escrow.{so,so.sha256,json}"


def test_the_packaged_program_is_a_fresh_build_of_the_sources() -> None:
    # When the program is rebuilt from scratch (make repro deletes every output)
    build = make("repro")
    assert build.returncode == 0, build.stdout + build.stderr
    fresh = PROGRAM_SO.read_bytes()
    # Then the committed escrow.so and its sha256 file are that build
    assert PACKAGED.read_bytes() == fresh, f"perpd/chain/escrow.so is stale: {REFRESH}"
    assert packaged_sha256() == hashlib.sha256(fresh).hexdigest(), (
        f"perpd/chain/escrow.so.sha256 is stale: {REFRESH}"
    )
    assert packaged_program() == fresh
    # and the packaged IDL is the program's
    idl = ROOT / "escrow-program" / "idl" / "escrow.json"
    assert (PACKAGED.parent / "escrow.json").read_bytes() == idl.read_bytes(), (
        f"perpd/chain/escrow.json is stale: {REFRESH}"
    )


def test_the_elf_length_finds_the_program_inside_zero_padding() -> None:
    program = packaged_program()
    assert elf_length(program) == len(program)
    assert elf_length(program + bytes(4096)) == len(program)
    assert elf_length(b"not an elf" * 10) is None


def test_the_wheel_carries_the_program(tmp_path: Path) -> None:
    # When the wheel is built from this tree (no dependencies, offline)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps"]
        + ["-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("perpd-*.whl")
    # Then it holds the program byte for byte, and its sha256 file
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("perpd/chain/escrow.so") == PACKAGED.read_bytes()
        assert zf.read("perpd/chain/escrow.json") == (PACKAGED.parent / "escrow.json").read_bytes()
        assert zf.read("perpd/chain/escrow.so.sha256").decode().startswith(packaged_sha256())
