"""Read a PV kernel: ELF64 headers, loadable segments and Xen's ELF notes.

Xen finds everything it needs to boot a PV kernel in notes owned by "Xen"
(``XEN_ELFNOTE_ENTRY``, ``HYPERCALL_PAGE``, ``VIRT_BASE``, ...). The notes are
read here from the raw bytes of each PT_NOTE segment and SHT_NOTE section:
pyelftools decodes notes of any owner with GNU note-type names, which would
turn ``XEN_ELFNOTE_ENTRY`` (1) into ``NT_GNU_ABI_TAG``.

Every way an image can be broken becomes an ``ImageError`` with one line.

Real Xen: xen/common/libelf/libelf-dominfo.c (elf_xen_parse_note,
elf_xen_addr_calc_check), tools/libs/guest/xg_dom_elfloader.c
"""

from __future__ import annotations

import io
import itertools
import os
import struct
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from xenlab.errors import ImageError
from xenlab.public.elfnote import STRING_NOTES, XEN_ELFNOTE_OWNER, ElfNote
from xenlab.tools.libs.guest.xg_dom_core import read_image_file

__all__ = ["ElfImage", "Segment", "load_elf_kernel", "parse_xen_notes"]

EM_X86_64 = 62
PT_LOAD = 1
PT_NOTE = 4
SHT_NOTE = 7
MAX_IMAGE = 64 << 20
UNSET = None


@dataclass(frozen=True)
class Segment:
    vaddr: int
    paddr: int
    data: bytes
    memsz: int


@dataclass
class ElfImage:
    path: str
    entry_elf: int
    segments: list[Segment]
    notes: dict[ElfNote, int | str] = field(default_factory=dict)
    raw_size: int = 0

    # -- the values the builder uses (elf_xen_addr_calc_check) -------------------
    @property
    def virt_base(self) -> int:
        return int(self.notes.get(ElfNote.XEN_ELFNOTE_VIRT_BASE, 0))

    @property
    def paddr_offset(self) -> int:
        return int(self.notes.get(ElfNote.XEN_ELFNOTE_PADDR_OFFSET, self.virt_base))

    @property
    def entry(self) -> int:
        return int(self.notes.get(ElfNote.XEN_ELFNOTE_ENTRY, self.entry_elf))

    @property
    def hypercall_page(self) -> int | None:
        hp = self.notes.get(ElfNote.XEN_ELFNOTE_HYPERCALL_PAGE)
        return None if hp is None else int(hp)

    def load_va(self, seg: Segment) -> int:
        """Where a segment lands: virt_base + (p_paddr - paddr_offset), as libelf computes."""
        return self.virt_base + seg.paddr - self.paddr_offset

    @property
    def virt_kstart(self) -> int:
        return min(self.load_va(s) for s in self.segments)

    @property
    def virt_kend(self) -> int:
        return max(self.load_va(s) + s.memsz for s in self.segments)

    def contains(self, va: int) -> bool:
        return any(self.load_va(s) <= va < self.load_va(s) + s.memsz for s in self.segments)


def _walk_notes(blob: bytes, where: str, path: str) -> list[tuple[str, int, bytes]]:
    out = []
    off = 0
    while off + 12 <= len(blob):
        namesz, descsz, ntype = struct.unpack_from("<III", blob, off)
        name_off = off + 12
        desc_off = name_off + ((namesz + 3) & ~3)
        end = desc_off + ((descsz + 3) & ~3)
        if namesz > 256 or descsz > 4096 or desc_off + descsz > len(blob):
            raise ImageError(f"{path}: malformed ELF note in {where} at offset {off}")
        name = blob[name_off : name_off + namesz].rstrip(b"\0").decode("latin-1")
        out.append((name, ntype, blob[desc_off : desc_off + descsz]))
        off = end
    return out


def parse_xen_notes(raw_notes: list[tuple[str, int, bytes]], path: str) -> dict[ElfNote, int | str]:
    """elf_xen_parse_note: keep the notes owned by "Xen", decoded by type."""
    notes: dict[ElfNote, int | str] = {}
    for owner, ntype, desc in raw_notes:
        if owner != XEN_ELFNOTE_OWNER:
            continue
        try:
            kind = ElfNote(ntype)
        except ValueError:
            continue  # unknown note types are ignored, as libelf does
        if kind in STRING_NOTES:
            notes[kind] = desc.split(b"\0", 1)[0].decode("latin-1")
        elif len(desc) in (4, 8):
            notes[kind] = int.from_bytes(desc, "little")
        else:
            raise ImageError(f"{path}: Xen note {kind.name} has a {len(desc)}-byte value")
    return notes


def load_elf_kernel(path: str | os.PathLike[str], max_size: int = MAX_IMAGE,
                    limit_text: str | None = None) -> ElfImage:
    """Open, check and parse a PV kernel; raise ImageError with one line on any problem.

    Only a regular file of at most ``max_size`` bytes (and never more than
    ``MAX_IMAGE``) is read; ``limit_text`` says where a smaller bound comes from."""
    p = os.fspath(path)
    if max_size >= MAX_IMAGE:
        max_size, limit_text = MAX_IMAGE, "64 MiB, the largest kernel image xenlab loads"
    blob = read_image_file(p, "kernel image", max_size, limit_text=limit_text)
    if blob[:4] != b"\x7fELF":
        shown = blob[:4].decode("latin-1").encode("unicode_escape").decode()
        raise ImageError(f"{p}: not an ELF file (starts with '{shown}')")
    if len(blob) < 64 or blob[4] != 2:
        raise ImageError(f"{p}: not a 64-bit ELF file (xenlab boots 64-bit PV kernels)")
    try:
        elf = ELFFile(io.BytesIO(blob))
        if elf["e_machine"] != "EM_X86_64":
            raise ImageError(f"{p}: ELF for {elf['e_machine']}, not x86-64")
        segments: list[Segment] = []
        raw_notes: list[tuple[str, int, bytes]] = []
        for seg in elf.iter_segments():
            off, filesz = seg["p_offset"], seg["p_filesz"]
            if off + filesz > len(blob):
                raise ImageError(f"{p}: truncated ELF (segment at file offset {off:#x} "
                                 f"runs past the end)")
            if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]:
                if filesz > seg["p_memsz"]:
                    raise ImageError(f"{p}: ELF segment with filesz > memsz")
                segments.append(Segment(seg["p_vaddr"], seg["p_paddr"],
                                        blob[off : off + filesz], seg["p_memsz"]))
            elif seg["p_type"] == "PT_NOTE":
                raw_notes += _walk_notes(blob[off : off + filesz], "PT_NOTE", p)
        if not raw_notes:
            for sec in elf.iter_sections():
                if sec["sh_type"] == "SHT_NOTE":
                    off, sz = sec["sh_offset"], sec["sh_size"]
                    if off + sz > len(blob):
                        raise ImageError(f"{p}: truncated ELF (note section past the end)")
                    raw_notes += _walk_notes(blob[off : off + sz], sec.name, p)
        entry = elf["e_entry"]
    except ELFError as err:
        raise ImageError(f"{p}: malformed ELF: {err}") from None
    except (struct.error, ValueError, IndexError, KeyError, OverflowError) as err:
        raise ImageError(f"{p}: malformed ELF: {err}") from None
    if not segments:
        raise ImageError(f"{p}: ELF has no loadable segments")
    notes = parse_xen_notes(raw_notes, p)
    if not notes:
        raise ImageError(f"{p}: ELF has no Xen ELF notes (XEN_ELFNOTE_*): not a PV kernel "
                         "Xen can boot")
    img = ElfImage(p, entry, segments, notes, len(blob))
    _check(img)
    return img


def _check(img: ElfImage) -> None:
    p = img.path
    loader = img.notes.get(ElfNote.XEN_ELFNOTE_LOADER)
    if loader is not None and loader != "generic" and not str(loader).startswith("linux"):
        raise ImageError(f"{p}: XEN_ELFNOTE_LOADER is '{loader}'; Xen loads only "
                         "'generic' or Linux images")
    xver = img.notes.get(ElfNote.XEN_ELFNOTE_XEN_VERSION)
    if xver is not None and xver != "xen-3.0":
        raise ImageError(f"{p}: built for '{xver}'; Xen loads images built for xen-3.0")
    spans = sorted((img.load_va(s), img.load_va(s) + s.memsz) for s in img.segments)
    for (_a0, a1), (b0, _b1) in itertools.pairwise(spans):
        if b0 < a1:
            raise ImageError(f"{p}: ELF segments overlap at {b0:#x}")
    if img.virt_kstart < img.virt_base or img.virt_kend >= (1 << 64):
        raise ImageError(f"{p}: segments lie below VIRT_BASE {img.virt_base:#x}")
    if not img.contains(img.entry):
        raise ImageError(f"{p}: entry point {img.entry:#x} is outside the loaded image")
    hp = img.hypercall_page
    if hp is not None and (hp & 0xFFF or not img.contains(hp) or not img.contains(hp + 4095)):
        raise ImageError(f"{p}: HYPERCALL_PAGE {hp:#x} is not a page inside the image")
