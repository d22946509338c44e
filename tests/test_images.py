"""The committed guest kernel images (images/*/*.elf): Xen PV ELF contract and rebuilds.

(a) every image is an ELF64 x86-64 executable carrying the seven Xen ELF notes
    the domain builder needs, with ENTRY and HYPERCALL_PAGE inside a PT_LOAD;
(b) (toolchain) rebuilding from source gives byte-identical files;
(c) pv-pubhdr.c uses only Xen's public headers.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

IMAGES = Path(__file__).resolve().parent.parent / "images"
GUESTS = ("pv-hello", "pv-crash", "pv-spin", "pv-pubhdr")
VIRT_BASE = 0xFFFF_FFFF_8000_0000
PAGE = 4096

# xen/include/public/elfnote.h
XEN_ELFNOTE_ENTRY = 1
XEN_ELFNOTE_HYPERCALL_PAGE = 2
XEN_ELFNOTE_VIRT_BASE = 3
XEN_ELFNOTE_PADDR_OFFSET = 4
XEN_ELFNOTE_XEN_VERSION = 5
XEN_ELFNOTE_GUEST_OS = 6
XEN_ELFNOTE_LOADER = 8
NUMERIC_NOTES = {
    XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_HYPERCALL_PAGE, XEN_ELFNOTE_VIRT_BASE, XEN_ELFNOTE_PADDR_OFFSET,
}


def _xen_notes(data: bytes) -> dict[int, bytes]:
    """Walk raw note records ourselves: pyelftools names notes by GNU types."""
    notes: dict[int, bytes] = {}
    off = 0
    while off + 12 <= len(data):
        namesz, descsz, n_type = struct.unpack_from("<III", data, off)
        off += 12
        name = data[off:off + namesz]
        off += (namesz + 3) & ~3
        desc = data[off:off + descsz]
        off += (descsz + 3) & ~3
        assert off <= len(data), "note runs past the end of its section"
        if name == b"Xen\0":
            assert n_type not in notes, f"duplicate Xen note {n_type}"
            notes[n_type] = desc
    return notes


def _load(guest: str):
    path = IMAGES / guest / f"{guest}.elf"
    with path.open("rb") as f:
        elf = ELFFile(f)
        header = elf.header
        loads = [(s["p_vaddr"], s["p_memsz"], s["p_filesz"])
                 for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        pt_notes = [s.data() for s in elf.iter_segments() if s["p_type"] == "PT_NOTE"]
        section = elf.get_section_by_name(".note.Xen")
        section_data = section.data() if section is not None else None
        section_type = section["sh_type"] if section is not None else None
    return header, loads, pt_notes, section_data, section_type


def _in_load(addr: int, loads, *, size: int = 1, in_file: bool = True) -> bool:
    return any(v <= addr and addr + size <= v + (filesz if in_file else memsz)
               for v, memsz, filesz in loads)


@pytest.mark.parametrize("guest", GUESTS)
def test_elf_is_a_xen_pv_kernel(guest: str) -> None:
    header, loads, pt_notes, section_data, section_type = _load(guest)
    assert header["e_ident"]["EI_CLASS"] == "ELFCLASS64"
    assert header["e_ident"]["EI_DATA"] == "ELFDATA2LSB"
    assert header["e_machine"] == "EM_X86_64"
    assert header["e_type"] == "ET_EXEC"
    assert loads, "no PT_LOAD segment"
    assert min(v for v, _, _ in loads) == VIRT_BASE

    assert section_data is not None and section_type == "SHT_NOTE"
    assert len(pt_notes) == 1 and pt_notes[0] == section_data
    notes = _xen_notes(section_data)

    assert notes[XEN_ELFNOTE_GUEST_OS] == f"xenlab-{guest}\0".encode()
    assert notes[XEN_ELFNOTE_XEN_VERSION] == b"xen-3.0\0"
    assert notes[XEN_ELFNOTE_LOADER] == b"generic\0"
    for n in NUMERIC_NOTES:
        assert len(notes[n]) == 8, f"note {n} is not a 64-bit number"
    num = {n: struct.unpack("<Q", notes[n])[0] for n in NUMERIC_NOTES}

    assert num[XEN_ELFNOTE_VIRT_BASE] == VIRT_BASE
    assert num[XEN_ELFNOTE_PADDR_OFFSET] == 0
    entry = num[XEN_ELFNOTE_ENTRY]
    assert entry == header["e_entry"]
    assert _in_load(entry, loads)
    hcall = num[XEN_ELFNOTE_HYPERCALL_PAGE]
    assert hcall % PAGE == 0
    assert _in_load(hcall, loads, size=PAGE)


def test_pv_pubhdr_uses_only_public_headers() -> None:
    source = (IMAGES / "pv-pubhdr" / "pv-pubhdr.c").read_text()
    includes = re.findall(r"^\s*#\s*include\s*([<\"][^>\"]+[>\"])", source, re.M)
    assert includes, "no #include found"
    for inc in includes:
        assert "xenlab" not in inc.lower(), inc
        name = inc[1:-1]
        assert name.startswith("xen/") or name in {"stdarg.h", "stddef.h", "stdint.h"}, inc
    assert '"' not in "".join(includes), "only <system> headers expected"


def _toolchain_missing() -> str | None:
    for tool in ("gcc", "as", "ld", "make", "cmp"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not Path("/usr/include/xen/xen.h").exists():
        return "Xen public headers missing (apt install libxen-dev)"
    return None


@pytest.mark.toolchain
@pytest.mark.skipif(_toolchain_missing() is not None, reason=str(_toolchain_missing()))
def test_images_rebuild_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "out"
    subprocess.run(["make", "-s", "-C", str(IMAGES), f"OUT={out}", "all"],
                   check=True, capture_output=True, text=True)
    for guest in GUESTS:
        built = (out / guest / f"{guest}.elf").read_bytes()
        committed = (IMAGES / guest / f"{guest}.elf").read_bytes()
        assert built == committed, (
            f"{guest}.elf differs from a fresh build (toolchain other than gcc 12.2 / "
            "binutils 2.40, or a source changed without `make -C images`)")
