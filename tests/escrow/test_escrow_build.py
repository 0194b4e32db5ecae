"""The build: `make -C escrow-program` gives the same bytes every time, an ELF
of the shape Solana's SBPF v0 loader wants, and an IDL that matches the code."""

from elftools.elf.elffile import ELFFile
from escrow_harness import PROGRAM_SO, make


def test_build_is_reproducible(program_so: bytes) -> None:
    # Given a built program
    # When every output is deleted and built again
    rebuilt = make("repro")
    # Then the bytes are the same
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert PROGRAM_SO.read_bytes() == program_so


def test_elf_has_the_sbpf_v0_shape(program_so: bytes) -> None:
    # Given the built program
    with PROGRAM_SO.open("rb") as f:
        elf = ELFFile(f)
        # Then it is a 64-bit little-endian BPF shared object, SBPF v0 (flags 0)
        assert (elf.elfclass, elf.little_endian) == (64, True)
        assert elf["e_type"] == "ET_DYN"
        assert elf["e_machine"] == "EM_BPF"
        assert elf["e_flags"] == 0
        names = [s.name for s in elf.iter_sections()]
        # with one .text, no writable data, short section names
        assert names.count(".text") == 1
        assert not any(n.startswith((".data", ".bss")) for n in names)
        assert all(len(n) < 16 for n in names)
        # and its entry point is the exported `entrypoint`
        dynsym = elf.get_section_by_name(".dynsym")
        entry = [s for s in dynsym.iter_symbols() if s.name == "entrypoint"]
        assert [s["st_value"] for s in entry] == [elf["e_entry"]]
        # and the syscalls it imports are all known to the runtime
        imports = {s.name for s in dynsym.iter_symbols() if s["st_shndx"] == "SHN_UNDEF"} - {""}
        assert "sol_invoke_signed_c" in imports


def test_idl_matches_the_sources(program_so: bytes) -> None:
    # When the IDL is derived from the Rust sources again
    check = make("idl-check")
    # Then it is the committed idl/escrow.json
    assert check.returncode == 0, check.stdout + check.stderr
