"""Read a PV kernel: ELF64 headers, loadable segments and Xen's ELF notes.

Xen finds everything it needs to boot a PV kernel in notes owned by "Xen"
(``XEN_ELFNOTE_ENTRY``, ``HYPERCALL_PAGE``, ``VIRT_BASE``, ...). The notes are
read here from the raw bytes of each PT_NOTE segment and SHT_NOTE section:
pyelftools decodes notes of any owner with GNU note-type names, which would
turn ``XEN_ELFNOTE_ENTRY`` (1) into ``NT_GNU_ABI_TAG``. Each note is decoded as
``elf_xen_parse_note`` does: strings, numbers of 1, 2, 4 or 8 bytes,
``SUPPORTED_FEATURES`` as an array of 32-bit feature words, ``L1_MFN_VALID`` as
(mask, value) pairs of 8-byte words, ``FEATURES`` as ``name|!required|...``
(``elf_xen_parse_features``); note types Xen does not know are ignored. A kernel
without notes may carry the legacy ``__xen_guest`` section
(``"GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0x...,..."``).

A Linux ``bzImage`` is accepted as well (``xg_dom_bzimageloader.c``): the setup
header ("HdrS") says where the compressed payload is; gzip, xz, lzma, bzip2,
lz4 and zstd payloads are unpacked here (lzo is not: a clear error).

Every way an image can be broken becomes an ``ImageError`` with one line.

Real Xen: xen/common/libelf/libelf-dominfo.c (elf_xen_parse_note,
elf_xen_parse_features, elf_xen_parse_guest_info, elf_xen_addr_calc_check),
tools/libs/guest/xg_dom_elfloader.c, tools/libs/guest/xg_dom_bzimageloader.c
"""

from __future__ import annotations

import bz2
import io
import itertools
import lzma
import os
import struct
import zlib
from dataclasses import dataclass, field

import zstandard
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from xenlab.errors import ImageError
from xenlab.public.elfnote import STRING_NOTES, XEN_ELFNOTE_OWNER, ElfNote
from xenlab.tools.libs.guest.xg_dom_core import read_image_file

__all__ = ["BUILDER_FEATURES", "XENFEAT_NAMES", "ElfImage", "Segment", "load_elf_kernel",
           "parse_features", "parse_xen_notes", "unpack_bzimage"]

EM_X86_64 = 62
PT_LOAD = 1
PT_NOTE = 4
SHT_NOTE = 7
MAX_IMAGE = 64 << 20
MAX_UNPACKED = 1 << 30   # XC_DOM_DECOMPRESS_MAX: the largest kernel a bzImage unpacks to
UNSET = None

#: elf_xen_feature_names: the feature names a FEATURES note may use (xen/include/public/features.h)
XENFEAT_NAMES = {
    "writable_page_tables": 0,
    "writable_descriptor_tables": 1,
    "auto_translated_physmap": 2,
    "supervisor_mode_kernel": 3,
    "pae_pgdir_above_4gb": 4,
    "hvm_callback_vector": 8,
    "dom0": 11,
}
#: what xenlab's 64-bit PV builder can give a kernel that *requires* a feature ("!name"):
#: writable page tables (Xen's ptwr, VMASST_TYPE_writable_pagetables) and PAE page
#: directories above 4 GiB (meaningless for 64-bit). Not: auto-translated PV or a
#: ring-0 (supervisor mode) kernel, which Xen 4.17 no longer runs, writable descriptor
#: tables (never implemented by Xen), the HVM callback vector, or Dom0 (a DomU build).
BUILDER_FEATURES = frozenset({0, 4})


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
    f_supported: int = 0                 # XENFEAT_* bits the kernel can use
    f_required: int = 0                  # XENFEAT_* bits it cannot run without ("!name")
    l1_mfn_valid: tuple[tuple[int, int], ...] = ()   # (mask, value) pairs
    legacy_guest_info: bool = False      # notes came from a __xen_guest section
    bzimage: str | None = None           # the payload's compression, for a bzImage

    # -- the values the builder uses (elf_xen_addr_calc_check) -------------------
    @property
    def virt_base(self) -> int:
        return int(self.notes.get(ElfNote.XEN_ELFNOTE_VIRT_BASE, 0))

    @property
    def paddr_offset(self) -> int:
        """elf_xen_addr_calc_check: unset means 0 with ELF notes, VIRT_BASE with __xen_guest."""
        default = self.virt_base if self.legacy_guest_info else 0
        return int(self.notes.get(ElfNote.XEN_ELFNOTE_PADDR_OFFSET, default))

    @property
    def p2m_base(self) -> int | None:
        """INIT_P2M: where the kernel wants its P2M list mapped. xc_dom_build_image ignores
        it (the list goes after the kernel) unless it is page aligned and below VIRT_BASE."""
        base = self.notes.get(ElfNote.XEN_ELFNOTE_INIT_P2M)
        if base is None or int(base) >= self.virt_base or int(base) & 0xFFF:
            return None
        return int(base)

    @property
    def unmapped_initrd(self) -> bool:
        """MOD_START_PFN != 0: the ramdisk goes outside the initial mappings, named by pfn."""
        return bool(self.notes.get(ElfNote.XEN_ELFNOTE_MOD_START_PFN, 0))

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


def parse_features(text: str, path: str) -> tuple[int, int]:
    """elf_xen_parse_features: "a|!b|c" -> (supported, required) bit masks.

    A name Xen does not know is ignored, unless it is required ("!name"): then
    the image is refused, as libelf refuses it."""
    supported = required = 0
    for name in text.split("|"):
        name = name[:63]
        want = name.startswith("!")
        bit = XENFEAT_NAMES.get(name[1:] if want else name)
        if bit is None:
            if want:
                raise ImageError(f"{path}: XEN_ELFNOTE_FEATURES requires '{name[1:]}', a "
                                 "feature Xen does not know")
            continue
        supported |= 1 << bit
        if want:
            required |= 1 << bit
    return supported, required


def _numeric(kind: ElfNote, desc: bytes, path: str) -> int:
    """elf_note_numeric: a little-endian number of 1, 2, 4 or 8 bytes."""
    if len(desc) in (1, 2, 4, 8):
        return int.from_bytes(desc, "little")
    # libelf reads any other size as 0; xenlab says so instead of booting with a 0
    raise ImageError(f"{path}: Xen note {kind.name} has a {len(desc)}-byte value")


def parse_xen_notes(raw_notes: list[tuple[str, int, bytes]], path: str) -> dict[ElfNote, int | str]:
    """elf_xen_parse_note: keep the notes owned by "Xen", decoded by type."""
    return _parse_notes(raw_notes, path)[0]


def _parse_notes(raw_notes: list[tuple[str, int, bytes]], path: str
                 ) -> tuple[dict[ElfNote, int | str], int, int, tuple[tuple[int, int], ...]]:
    notes: dict[ElfNote, int | str] = {}
    supported = required = 0
    l1_valid: tuple[tuple[int, int], ...] = ()
    for owner, ntype, desc in raw_notes:
        if owner != XEN_ELFNOTE_OWNER:
            continue
        try:
            kind = ElfNote(ntype)
        except ValueError:
            continue  # unknown note types are ignored, as libelf does
        if kind in STRING_NOTES:
            notes[kind] = desc.split(b"\0", 1)[0].decode("latin-1")
            if kind is ElfNote.XEN_ELFNOTE_FEATURES:
                s_bits, r_bits = parse_features(str(notes[kind]), path)
                supported, required = supported | s_bits, required | r_bits
        elif kind is ElfNote.XEN_ELFNOTE_SUPPORTED_FEATURES:
            # elf_note_numeric_array(note, 4, i) for each of XENFEAT_NR_SUBMAPS (1) words
            if len(desc) % 4:
                raise ImageError(f"{path}: Xen note {kind.name} has a {len(desc)}-byte "
                                 "value (an array of 4-byte feature words)")
            word = int.from_bytes(desc[:4], "little") if desc else 0
            notes[kind] = word
            supported |= word
        elif kind is ElfNote.XEN_ELFNOTE_L1_MFN_VALID:
            # (mask, value) pairs of 8-byte words; libelf's number is the first word
            # when the value is one word and 0 otherwise
            if len(desc) == 8:
                l1_valid = ((int.from_bytes(desc, "little"),) * 2,)
            elif len(desc) and not len(desc) % 16:
                l1_valid = tuple(struct.unpack_from("<QQ", desc, i)
                                 for i in range(0, len(desc), 16))
            else:
                raise ImageError(f"{path}: Xen note {kind.name} has a {len(desc)}-byte value "
                                 "(pairs of 8-byte mask and value words)")
            notes[kind] = int.from_bytes(desc, "little") if len(desc) == 8 else 0
        else:
            notes[kind] = _numeric(kind, desc, path)
    return notes, supported, required, l1_valid


#: elf_xen_parse_guest_info: the keys of a __xen_guest section and the notes they stand for
_GUEST_INFO_STRINGS = {"LOADER": ElfNote.XEN_ELFNOTE_LOADER,
                       "GUEST_OS": ElfNote.XEN_ELFNOTE_GUEST_OS,
                       "GUEST_VER": ElfNote.XEN_ELFNOTE_GUEST_VERSION,
                       "XEN_VER": ElfNote.XEN_ELFNOTE_XEN_VERSION,
                       "PAE": ElfNote.XEN_ELFNOTE_PAE_MODE,
                       "FEATURES": ElfNote.XEN_ELFNOTE_FEATURES}
_GUEST_INFO_NUMBERS = {"VIRT_BASE": ElfNote.XEN_ELFNOTE_VIRT_BASE,
                       "VIRT_ENTRY": ElfNote.XEN_ELFNOTE_ENTRY,
                       "ELF_PADDR_OFFSET": ElfNote.XEN_ELFNOTE_PADDR_OFFSET,
                       "HYPERCALL_PAGE": ElfNote.XEN_ELFNOTE_HYPERCALL_PAGE}


def _strtoull(text: str, key: str, path: str) -> int:
    try:
        return int(text, 0) if text.lower().startswith("0x") or text == "0" else int(text, 10)
    except ValueError:
        raise ImageError(f"{path}: __xen_guest: {key}={text!r} is not a number") from None


def parse_guest_info(text: str, path: str) -> tuple[dict[ElfNote, int | str], int, int]:
    """The legacy ``__xen_guest`` section: "KEY=VALUE,KEY=VALUE,..." (elf_xen_parse_guest_info)."""
    notes: dict[ElfNote, int | str] = {}
    supported = required = 0
    for item in text.split(","):
        key, _, value = item.partition("=")
        key, value = key[:31], value[:127]
        if key in _GUEST_INFO_STRINGS:
            notes[_GUEST_INFO_STRINGS[key]] = value
            if key == "FEATURES":
                supported, required = parse_features(value, path)
        elif key in _GUEST_INFO_NUMBERS:
            notes[_GUEST_INFO_NUMBERS[key]] = _strtoull(value, key, path)
    if ElfNote.XEN_ELFNOTE_HYPERCALL_PAGE in notes:  # a page number, from VIRT_BASE
        notes[ElfNote.XEN_ELFNOTE_HYPERCALL_PAGE] = (
            (int(notes[ElfNote.XEN_ELFNOTE_HYPERCALL_PAGE]) << 12)
            + int(notes.get(ElfNote.XEN_ELFNOTE_VIRT_BASE, 0))) & ((1 << 64) - 1)
    return notes, supported, required


# -- bzImage (xg_dom_bzimageloader.c) ---------------------------------------------------
_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x89LZO", "lzo"),
)


def _zstd(data: bytes, limit: int) -> bytes:
    """One zstd frame (Linux's CONFIG_KERNEL_ZSTD); the 4-byte size after it is ignored."""
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
    return reader.read(limit + 1)


def _lz4_legacy(data: bytes, limit: int, path: str) -> bytes:
    """The LZ4 legacy frame Linux uses for kernels: magic, then (size, block) pairs."""
    out = bytearray()
    pos = 4
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "little")
        if size == 0x184C2102:  # a further frame's magic
            pos += 4
            continue
        pos += 4
        block, pos = data[pos:pos + size], pos + size
        if len(block) < size:
            break  # the trailing 4-byte size Linux appends, or the end
        i = 0
        while i < len(block):
            token = block[i]
            i += 1
            n = token >> 4
            if n == 15:
                while True:
                    b = block[i]
                    i += 1
                    n += b
                    if b != 255:
                        break
            out += block[i:i + n]
            i += n
            if i >= len(block):
                break
            off = block[i] | block[i + 1] << 8
            i += 2
            m = token & 15
            if m == 15:
                while True:
                    b = block[i]
                    i += 1
                    m += b
                    if b != 255:
                        break
            m += 4
            if off == 0 or off > len(out):
                raise ImageError(f"{path}: bzImage: corrupt lz4 payload")
            start = len(out) - off
            for k in range(m):  # may overlap itself
                out.append(out[start + k])
            if len(out) > limit:
                raise ImageError(f"{path}: bzImage: the kernel unpacks to more than "
                                 f"{limit:,} bytes")
    return bytes(out)


def unpack_bzimage(blob: bytes, path: str, limit: int) -> tuple[bytes, str]:
    """xc_dom_probe_bzimage_kernel + the decompressors: (the payload ELF, its compression)."""
    if len(blob) < 0x250:
        raise ImageError(f"{path}: truncated bzImage setup header")
    version = struct.unpack_from("<H", blob, 0x206)[0]
    if version < 0x208:
        raise ImageError(f"{path}: bzImage boot protocol {version >> 8}.{version & 0xFF:02d} "
                         "has no payload fields (Xen needs 2.08 or later)")
    setup_sects = blob[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", blob, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    if payload_length == 0 or start + payload_length > len(blob):
        raise ImageError(f"{path}: bzImage payload ({payload_length:,} bytes at "
                         f"{start:#x}) runs past the end of the file")
    payload = blob[start:start + payload_length]
    kind = next((name for magic, name in _MAGICS if payload.startswith(magic)), None)
    if kind is None:
        shown = payload[:6].hex(" ")
        raise ImageError(f"{path}: bzImage payload compressed in an unknown format "
                         f"(starts with {shown})")
    too_big = ImageError(f"{path}: bzImage: the kernel unpacks to more than {limit:,} bytes")
    try:
        if kind == "gzip":
            dz = zlib.decompressobj(wbits=31)
            out = dz.decompress(payload, limit + 1)
        elif kind in ("xz", "lzma"):
            dl = lzma.LZMADecompressor(lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE)
            out = dl.decompress(payload, limit + 1)
        elif kind == "bzip2":
            out = bz2.BZ2Decompressor().decompress(payload, limit + 1)
        elif kind == "lz4":
            out = _lz4_legacy(payload, limit, path)
        elif kind == "zstd":
            out = _zstd(payload, limit)
        else:
            raise ImageError(f"{path}: bzImage payload is {kind}-compressed, which xenlab "
                             "cannot unpack (it has gzip, xz, lzma, bzip2, lz4 and zstd; rebuild "
                             "the kernel with one of those, or pass the ELF vmlinux)")
    except (zlib.error, lzma.LZMAError, zstandard.ZstdError, OSError, EOFError,
            IndexError) as err:
        raise ImageError(f"{path}: bzImage: corrupt {kind} payload ({err})") from None
    if len(out) > limit:
        raise too_big
    if out[:4] != b"\x7fELF":
        raise ImageError(f"{path}: bzImage payload ({kind}) is not an ELF kernel")
    return out, kind


def load_elf_kernel(path: str | os.PathLike[str], max_size: int = MAX_IMAGE,
                    limit_text: str | None = None) -> ElfImage:
    """Open, check and parse a PV kernel; raise ImageError with one line on any problem.

    Only a regular file of at most ``max_size`` bytes (and never more than
    ``MAX_IMAGE``) is read; ``limit_text`` says where a smaller bound comes from."""
    p = os.fspath(path)
    unpacked_limit = min(max(max_size, 1), MAX_UNPACKED)
    if max_size >= MAX_IMAGE:
        max_size, limit_text = MAX_IMAGE, "64 MiB, the largest kernel image xenlab loads"
    blob = read_image_file(p, "kernel image", max_size, limit_text=limit_text)
    bzimage = None
    if blob[:4] != b"\x7fELF" and blob[0x202:0x206] == b"HdrS":
        blob, bzimage = unpack_bzimage(blob, p, unpacked_limit)
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
        if not parse_xen_notes(raw_notes, p):  # no Xen notes in PT_NOTE: the sections
            for sec in elf.iter_sections():
                if sec["sh_type"] == "SHT_NOTE":
                    off, sz = sec["sh_offset"], sec["sh_size"]
                    if off + sz > len(blob):
                        raise ImageError(f"{p}: truncated ELF (note section past the end)")
                    raw_notes += _walk_notes(blob[off : off + sz], sec.name, p)
        guest_info = None
        if not parse_xen_notes(raw_notes, p):
            sec = elf.get_section_by_name("__xen_guest")
            if sec is not None:
                off, sz = sec["sh_offset"], sec["sh_size"]
                guest_info = blob[off : off + min(sz, 4096)].split(b"\0", 1)[0]
        entry = elf["e_entry"]
    except ELFError as err:
        raise ImageError(f"{p}: malformed ELF: {err}") from None
    except (struct.error, ValueError, IndexError, KeyError, OverflowError) as err:
        raise ImageError(f"{p}: malformed ELF: {err}") from None
    if not segments:
        raise ImageError(f"{p}: ELF has no loadable segments")
    notes, supported, required, l1_valid = _parse_notes(raw_notes, p)
    if not notes and guest_info is not None:
        notes, supported, required = parse_guest_info(guest_info.decode("latin-1"), p)
    if not notes:
        raise ImageError(f"{p}: ELF has no Xen ELF notes (XEN_ELFNOTE_*): not a PV kernel "
                         "Xen can boot")
    img = ElfImage(p, entry, segments, notes, len(blob), supported, required, l1_valid,
                   legacy_guest_info=guest_info is not None and bool(notes), bzimage=bzimage)
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
    p2m = img.notes.get(ElfNote.XEN_ELFNOTE_INIT_P2M)
    if p2m is not None and img.virt_kstart <= int(p2m) < img.virt_kend:
        raise ImageError(f"{p}: INIT_P2M {p2m:#x} lies inside the kernel (P->M table base "
                         "is out of bounds)")
    # xc_dom_parse_elf_kernel and xc_dom_boot's feature check: every feature the kernel
    # requires must be one the builder gives
    if img.f_required & (1 << XENFEAT_NAMES["dom0"]):
        raise ImageError(f"{p}: kernel does not support unprivileged (DomU) operation "
                         "(its FEATURES require dom0)")
    missing = [name for name, bit in XENFEAT_NAMES.items()
               if img.f_required >> bit & 1 and bit not in BUILDER_FEATURES]
    if missing:
        raise ImageError(f"{p}: kernel requires XENFEAT_{missing[0]}, which a 64-bit PV "
                         "guest on xenlab cannot have (it gives writable_page_tables and "
                         "pae_pgdir_above_4gb)")
