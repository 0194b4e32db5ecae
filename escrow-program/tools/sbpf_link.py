#!/usr/bin/env python3
"""Link one BPF relocatable object (llc-14 output) into an SBPF v0 shared object.

No linker on this machine accepts BPF objects, so this is the project's own. It
does exactly what Solana's SBPF v0 loader (solana-sbpf, "lenient" ELF parser)
needs and refuses everything else, loudly:

* Every ``.text*`` input section is merged into the one ``.text``; ``.eh_frame``
  is dropped (SBPF never unwinds).
* Output: ELF64 LE, ``ET_DYN``, ``e_machine`` 247 (EM_BPF), ``e_flags`` 0,
  ``e_entry`` = the ``entrypoint`` symbol. Sections: ``.text``, ``.rodata`` (every
  ``.rodata*`` and ``.data.rel.ro*`` input merged), ``.dynamic``, ``.dynsym``,
  ``.dynstr``, ``.rel.dyn``, ``.shstrtab``. Virtual address = file offset.
* ``R_BPF_64_64`` on ``lddw``: the absolute address is written into the two
  immediates and a ``R_BPF_64_RELATIVE`` (8) dynamic relocation is emitted (the
  loader adds ``MM_PROGRAM_START``).
* ``R_BPF_64_ABS64`` in read-only data: SBPF v0 reads the address from the
  *upper* half of the 8-byte word; written there, with a type-8 relocation.
* ``R_BPF_64_32`` on ``call``: a defined function becomes a pc-relative call
  (src = 1); a syscall gets imm = -1 and a type-10 dynamic relocation against an
  undefined ``.dynsym`` entry. Syscall names are checked against a known list,
  because the loader accepts an unknown name and the program fails only when it
  runs.
* Refused: JMP32 and atomic instructions, 32-bit ALU (SBPF v0 sign-extends
  them, eBPF zero-extends), writable data (``.data``/``.bss``), unknown
  relocation types.

The output depends only on the input bytes (no time, no paths), so the build is
reproducible.

Usage: ``sbpf_link.py input.o output.so``
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field

from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

# Syscalls the SBPF v0 runtime registers (agave's `create_program_runtime_environment_v1`).
KNOWN_SYSCALLS = frozenset(
    {
        "abort",
        "sol_panic_",
        "sol_log_",
        "sol_log_64_",
        "sol_log_compute_units_",
        "sol_log_pubkey",
        "sol_log_data",
        "sol_create_program_address",
        "sol_try_find_program_address",
        "sol_sha256",
        "sol_keccak256",
        "sol_blake3",
        "sol_curve_validate_point",
        "sol_secp256k1_recover",
        "sol_get_clock_sysvar",
        "sol_get_epoch_schedule_sysvar",
        "sol_get_rent_sysvar",
        "sol_get_sysvar",
        "sol_memcpy_",
        "sol_memmove_",
        "sol_memcmp_",
        "sol_memset_",
        "sol_invoke_signed_c",
        "sol_invoke_signed_rust",
        "sol_set_return_data",
        "sol_get_return_data",
        "sol_get_stack_height",
        "sol_get_processed_sibling_instruction",
        "sol_remaining_compute_units",
    }
)

EM_BPF = 247
ET_DYN = 3
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_DYNAMIC, SHT_REL, SHT_DYNSYM = 1, 2, 3, 6, 9, 11
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
PT_LOAD, PT_DYNAMIC = 1, 2
PF_X, PF_W, PF_R = 1, 2, 4
DT_NULL, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT = 0, 5, 6, 10, 11
DT_REL, DT_RELSZ, DT_RELENT, DT_TEXTREL, DT_FLAGS, DT_RELCOUNT = 17, 18, 19, 22, 30, 0x6FFFFFFA
DF_TEXTREL = 4
STB_GLOBAL, STT_NOTYPE, STT_FUNC = 1, 0, 2

R_BPF_64_64, R_BPF_64_ABS64, R_BPF_64_32 = 1, 2, 10
R_BPF_64_RELATIVE = 8

INSN = 8
# Allocated input sections left out: SBPF never unwinds.
UNLINKED = frozenset({".eh_frame"})
ELF_HEADER_SIZE, PHDR_SIZE, SHDR_SIZE = 64, 56, 64


class LinkError(Exception):
    """The input cannot be turned into a valid SBPF v0 program."""


def align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


@dataclass
class Image:
    """Merged output sections, before addresses are final."""

    text: bytearray = field(default_factory=bytearray)
    rodata: bytearray = field(default_factory=bytearray)
    # input section index -> (output section name, offset inside it)
    placement: dict[int, tuple[str, int]] = field(default_factory=dict)


def is_rodata(name: str) -> bool:
    return name.startswith(".rodata") or name.startswith(".data.rel.ro")


def merge_sections(elf: ELFFile) -> Image:
    image = Image()
    for index, section in enumerate(elf.iter_sections()):
        name, flags = section.name, section["sh_flags"]
        if not flags & SHF_ALLOC or section["sh_type"] not in ("SHT_PROGBITS", "SHT_NOBITS"):
            continue
        if section["sh_size"] == 0 or name in UNLINKED:
            continue
        if name == ".text" or name.startswith(".text."):
            # .text, .text.unlikely., .text.hot., ...: one output .text, as the loader wants.
            image.text += bytes(align(len(image.text), INSN) - len(image.text))
            image.placement[index] = (".text", len(image.text))
            image.text += section.data()
        elif is_rodata(name):
            if section["sh_type"] == "SHT_NOBITS":
                raise LinkError(f"{name}: NOBITS read-only data is not supported")
            pad = align(len(image.rodata), max(section["sh_addralign"], 1)) - len(image.rodata)
            image.rodata += bytes(pad)
            image.placement[index] = (".rodata", len(image.rodata))
            image.rodata += section.data()
        else:
            raise LinkError(f"{name}: writable or unknown allocated section (SBPF has no .data)")
    if not image.text:
        raise LinkError("no .text section")
    return image


def check_instructions(text: bytes) -> None:
    """Refuse instructions whose SBPF v0 meaning differs from eBPF or that it lacks."""
    i, count = 0, len(text) // INSN
    while i < count:
        opcode = text[i * INSN]
        cls = opcode & 0x07
        if cls == 0x06:
            raise LinkError(f"instruction {i}: JMP32 class is not in SBPF v0")
        if cls == 0x04 and opcode not in (0xD4, 0xDC):  # le/be are ALU-class, fine
            raise LinkError(f"instruction {i}: 32-bit ALU op {opcode:#04x} (SBPF v0 sign-extends)")
        if cls == 0x03 and opcode & 0xE0 == 0xC0:
            raise LinkError(f"instruction {i}: atomic operation is not in SBPF v0")
        if opcode == 0x18:  # lddw takes two slots
            i += 1
        i += 1


@dataclass
class DynSym:
    name: str
    value: int = 0
    info: int = (STB_GLOBAL << 4) | STT_NOTYPE
    shndx: int = 0


def link(data: bytes) -> bytes:
    import io

    elf = ELFFile(io.BytesIO(data))
    if elf["e_machine"] != "EM_BPF" or elf["e_type"] != "ET_REL" or elf.elfclass != 64:
        raise LinkError("input must be a 64-bit BPF relocatable object")
    if not elf.little_endian:
        raise LinkError("input must be little-endian (bpfel)")

    image = merge_sections(elf)
    symtab = elf.get_section_by_name(".symtab")
    if not isinstance(symtab, SymbolTableSection):
        raise LinkError("no .symtab")
    symbols = list(symtab.iter_symbols())

    # ---- layout: header, program headers, .text, .rodata, dynamic tables ----
    n_phdrs = 4
    text_off = align(ELF_HEADER_SIZE + n_phdrs * PHDR_SIZE, 8)
    rodata_off = align(text_off + len(image.text), 8)
    base = {".text": text_off, ".rodata": rodata_off}

    def symbol_address(sym) -> int | None:
        shndx = sym["st_shndx"]
        if not isinstance(shndx, int):
            return None  # SHN_UNDEF / SHN_ABS
        where = image.placement.get(shndx)
        if where is None:
            raise LinkError(f"symbol {sym.name!r} lives in a section that is not linked")
        out, offset = where
        return base[out] + offset + sym["st_value"]

    entry_syms = [s for s in symbols if s.name == "entrypoint"]
    if len(entry_syms) != 1:
        raise LinkError("exactly one `entrypoint` symbol is required")
    entry = symbol_address(entry_syms[0])

    text = image.text
    rodata = image.rodata
    dyn_syms: list[DynSym] = [DynSym("", info=0)]
    syscall_index: dict[str, int] = {}
    # (r_offset in file, type, dynsym index)
    dyn_rels: list[tuple[int, int, int]] = []

    for section in elf.iter_sections():
        if not isinstance(section, RelocationSection):
            continue
        if section["sh_type"] != "SHT_REL":
            raise LinkError(f"{section.name}: RELA relocations are not expected from llc")
        target = section["sh_info"]
        if target not in image.placement:
            target_name = elf.get_section(target).name
            if target_name in UNLINKED or target_name.startswith((".debug", ".BTF")):
                continue
            raise LinkError(f"{section.name}: relocations for an unlinked section {target_name}")
        out, out_offset = image.placement[target]
        buf = text if out == ".text" else rodata
        for rel in section.iter_relocations():
            rtype = rel["r_info_type"]
            sym = symbols[rel["r_info_sym"]]
            at = out_offset + rel["r_offset"]  # offset inside the output section
            file_at = base[out] + at
            if rtype == R_BPF_64_64:
                if out != ".text" or buf[at] != 0x18:
                    raise LinkError(f"R_BPF_64_64 not on an lddw at {out}+{at:#x}")
                addend = struct.unpack_from("<i", buf, at + 4)[0]
                addr = symbol_address(sym)
                if addr is None:
                    raise LinkError(f"lddw of undefined symbol {sym.name!r}")
                addr += addend
                struct.pack_into("<I", buf, at + 4, addr & 0xFFFFFFFF)
                struct.pack_into("<I", buf, at + 12, addr >> 32)
                dyn_rels.append((file_at, R_BPF_64_RELATIVE, 0))
            elif rtype == R_BPF_64_ABS64:
                if out != ".rodata":
                    raise LinkError(f"R_BPF_64_ABS64 outside read-only data ({out})")
                addend = struct.unpack_from("<q", buf, at)[0]
                addr = symbol_address(sym)
                if addr is None:
                    raise LinkError(f"data pointer to undefined symbol {sym.name!r}")
                addr += addend
                if not 0 < addr < 1 << 32:
                    raise LinkError(f"address {addr:#x} does not fit the SBPF v0 encoding")
                # SBPF v0 quirk: the loader reads the address from the upper half.
                struct.pack_into("<II", buf, at, 0, addr)
                dyn_rels.append((file_at, R_BPF_64_RELATIVE, 0))
            elif rtype == R_BPF_64_32:
                if out != ".text" or buf[at] != 0x85:
                    raise LinkError(f"R_BPF_64_32 not on a call at {out}+{at:#x}")
                addr = symbol_address(sym)
                if addr is None:
                    name = sym.name
                    if name not in KNOWN_SYSCALLS:
                        raise LinkError(f"call to unknown function or syscall {name!r}")
                    if name not in syscall_index:
                        syscall_index[name] = len(dyn_syms)
                        dyn_syms.append(DynSym(name))
                    buf[at + 1] = 0x00  # src = 0: external call
                    struct.pack_into("<i", buf, at + 4, -1)
                    dyn_rels.append((file_at, R_BPF_64_32, syscall_index[name]))
                else:
                    if sym["st_info"]["type"] == "STT_SECTION":
                        addend = struct.unpack_from("<i", buf, at + 4)[0]
                        addr += (addend + 1) * INSN
                    target_pc = (addr - text_off) // INSN
                    pc = at // INSN
                    buf[at + 1] = 0x10  # src = 1: pc-relative call
                    struct.pack_into("<i", buf, at + 4, target_pc - pc - 1)
            else:
                raise LinkError(f"unsupported relocation type {rtype} at {out}+{at:#x}")

    check_instructions(text)
    for i in range(0, len(text), INSN):
        if text[i] == 0x85 and text[i + 1] == 0x10:  # every pc-relative call lands inside .text
            imm = struct.unpack_from("<i", text, i + 4)[0]
            if not 0 <= i // INSN + 1 + imm < len(text) // INSN:
                raise LinkError(f"call at instruction {i // INSN} jumps out of .text")

    dyn_syms.append(DynSym("entrypoint", entry, (STB_GLOBAL << 4) | STT_FUNC, 1))

    # ---- dynamic tables ----
    dynstr = bytearray(b"\0")
    name_off = {}
    for s in dyn_syms[1:]:
        name_off[s.name] = len(dynstr)
        dynstr += s.name.encode() + b"\0"
    dynsym = bytearray()
    for s in dyn_syms:
        dynsym += struct.pack("<IBBHQQ", name_off.get(s.name, 0), s.info, 0, s.shndx, s.value, 0)
    dyn_rels.sort(key=lambda r: r[0])
    reldyn = b"".join(struct.pack("<QQ", off, (sym << 32) | t) for off, t, sym in dyn_rels)
    if not reldyn:
        raise LinkError("no relocations: the loader requires a non-empty DT_RELSZ")
    n_relative = sum(1 for r in dyn_rels if r[1] == R_BPF_64_RELATIVE)

    dynamic_off = align(rodata_off + len(rodata), 8)
    n_dyn = 10
    dynsym_off = dynamic_off + n_dyn * 16
    dynstr_off = dynsym_off + len(dynsym)
    reldyn_off = align(dynstr_off + len(dynstr), 8)
    dyn_end = reldyn_off + len(reldyn)
    dynamic = b"".join(
        struct.pack("<qQ", tag, val)
        for tag, val in (
            (DT_FLAGS, DF_TEXTREL),
            (DT_REL, reldyn_off),
            (DT_RELSZ, len(reldyn)),
            (DT_RELENT, 16),
            (DT_RELCOUNT, n_relative),
            (DT_SYMTAB, dynsym_off),
            (DT_SYMENT, 24),
            (DT_STRTAB, dynstr_off),
            (DT_STRSZ, len(dynstr)),
            (DT_NULL, 0),
        )
    )
    assert len(dynamic) == n_dyn * 16

    # ---- section headers ----
    shstrtab = bytearray(b"\0")
    sections = []  # (name, type, flags, addr/offset, size, link, info, align, entsize)

    def add_section(name, stype, flags, off, size, link=0, info=0, salign=8, entsize=0):
        if len(name) >= 16:
            raise LinkError(f"section name {name!r} too long for the loader")
        name_index = len(shstrtab)
        shstrtab.extend(name.encode() + b"\0")
        sections.append((name_index, stype, flags, off, size, link, info, salign, entsize))
        return len(sections)  # index counting the NULL section

    add_section(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text_off, len(text))
    if rodata:
        add_section(".rodata", SHT_PROGBITS, SHF_ALLOC, rodata_off, len(rodata))
    dynamic_index = len(sections) + 1
    dynsym_index = dynamic_index + 1
    dynstr_index = dynamic_index + 2
    add_section(
        ".dynamic",
        SHT_DYNAMIC,
        SHF_ALLOC | SHF_WRITE,
        dynamic_off,
        len(dynamic),
        link=dynstr_index,
        entsize=16,
    )
    add_section(
        ".dynsym",
        SHT_DYNSYM,
        SHF_ALLOC,
        dynsym_off,
        len(dynsym),
        link=dynstr_index,
        info=1,
        entsize=24,
    )
    add_section(".dynstr", SHT_STRTAB, SHF_ALLOC, dynstr_off, len(dynstr), salign=1)
    add_section(
        ".rel.dyn", SHT_REL, SHF_ALLOC, reldyn_off, len(reldyn), link=dynsym_index, entsize=16
    )
    shstrtab_off = dyn_end
    shstrtab_index = len(sections) + 1
    add_section(".shstrtab", SHT_STRTAB, 0, shstrtab_off, 0, salign=1)
    # the size of .shstrtab is known only now
    last = sections[-1]
    sections[-1] = (last[0], last[1], last[2], last[3], len(shstrtab), *last[5:])
    shoff = align(shstrtab_off + len(shstrtab), 8)

    out = bytearray(shoff + (len(sections) + 1) * SHDR_SIZE)
    # ELF header
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    struct.pack_into(
        "<16sHHIQQQIHHHHHH",
        out,
        0,
        ident,
        ET_DYN,
        EM_BPF,
        1,
        entry,
        ELF_HEADER_SIZE,
        shoff,
        0,
        ELF_HEADER_SIZE,
        PHDR_SIZE,
        n_phdrs,
        SHDR_SIZE,
        len(sections) + 1,
        shstrtab_index,
    )
    # program headers: ascending PT_LOADs, then PT_DYNAMIC
    rodata_end = rodata_off + len(rodata)
    phdrs = [
        (PT_LOAD, PF_R | PF_X, text_off, len(text)),
        (PT_LOAD, PF_R, rodata_off, len(rodata)),
        (PT_LOAD, PF_R, dynamic_off, dyn_end - dynamic_off),
        (PT_DYNAMIC, PF_R | PF_W, dynamic_off, len(dynamic)),
    ]
    assert rodata_end <= dynamic_off
    for i, (ptype, flags, off, size) in enumerate(phdrs):
        struct.pack_into(
            "<IIQQQQQQ",
            out,
            ELF_HEADER_SIZE + i * PHDR_SIZE,
            ptype,
            flags,
            off,
            off,
            off,
            size,
            size,
            8,
        )
    out[text_off : text_off + len(text)] = text
    out[rodata_off:rodata_end] = rodata
    out[dynamic_off : dynamic_off + len(dynamic)] = dynamic
    out[dynsym_off : dynsym_off + len(dynsym)] = dynsym
    out[dynstr_off : dynstr_off + len(dynstr)] = dynstr
    out[reldyn_off:dyn_end] = reldyn
    out[shstrtab_off : shstrtab_off + len(shstrtab)] = shstrtab
    for i, (name, stype, flags, off, size, link_, info, salign, entsize) in enumerate(sections):
        addr = off if flags & SHF_ALLOC else 0
        struct.pack_into(
            "<IIQQQQIIQQ",
            out,
            shoff + (i + 1) * SHDR_SIZE,
            name,
            stype,
            flags,
            addr,
            off,
            size,
            link_,
            info,
            salign,
            entsize,
        )
    return bytes(out)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        data = f.read()
    try:
        linked = link(data)
    except LinkError as exc:
        print(f"sbpf_link: {exc}", file=sys.stderr)
        return 1
    with open(argv[2], "wb") as f:
        f.write(linked)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
