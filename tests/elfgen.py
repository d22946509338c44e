"""Test helper (not a test): build minimal Xen PV ELF kernels from raw machine code.

``build_elf(code)`` returns the bytes of an ELF64 x86-64 executable with

* one PT_LOAD at VIRT_BASE (p_paddr = vaddr - VIRT_BASE) holding
  ``code`` at +0 (the entry point), a 4 KiB page-aligned hypercall page at
  +0x1000, the data page at +0x2000 (DATA_VA) and a zeroed results page
  (bss) at +0x3000 (RESULTS_VA), plus optional extra bss;
* one PT_NOTE with the Xen notes (owner "Xen"): GUEST_OS, XEN_VERSION
  "xen-3.0", LOADER "generic", VIRT_BASE, PADDR_OFFSET 0, ENTRY, HYPERCALL_PAGE.

Every part can be altered to make broken images (see the keyword arguments).

``Asm`` assembles guest code from hand-encoded instructions (unicorn-samples
style: the bytes with their assembly beside them); ``boot(code)`` loads such a
kernel into a fresh XenHost and runs it to completion.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterable

from xenlab.public.elfnote import ElfNote
from xenlab.public.sched import SchedOp
from xenlab.public.xen import Hypercall

VIRT_BASE = 0xFFFF_FFFF_8000_0000
PAGE = 4096
CODE_VA = VIRT_BASE                 # entry point
HYPERCALL_PAGE_VA = VIRT_BASE + 0x1000
DATA_VA = VIRT_BASE + 0x2000
RESULTS_VA = VIRT_BASE + 0x3000     # bss page: Asm.store_rax(slot) writes here
CODE_MAX = 0x1000
DATA_MAX = 0x1000
LOAD_FILE_OFFSET = 0x1000           # PT_LOAD contents start here in the file

EM_X86_64 = 62
EM_ARM = 40
PT_LOAD, PT_NOTE = 1, 4
PF_X, PF_W, PF_R = 1, 2, 4

N = ElfNote  # short alias for callers: N.XEN_ELFNOTE_ENTRY

# ------------------------------------------------------------------ ELF notes
NoteValue = int | str | bytes


def note(owner: str | bytes, ntype: int, desc: NoteValue, *, descsz: int | None = None) -> bytes:
    """One ELF note record: namesz, descsz, type, name, desc (each padded to 4).

    ``desc``: int -> 8-byte little-endian; str -> NUL-terminated; bytes as is.
    ``descsz`` overrides the size field (to make a note that runs past its segment).
    """
    name = owner.encode() if isinstance(owner, str) else owner
    name += b"\0"
    if isinstance(desc, int):
        d = struct.pack("<Q", desc & (2**64 - 1))
    elif isinstance(desc, str):
        d = desc.encode() + b"\0"
    else:
        d = desc
    size = len(d) if descsz is None else descsz

    def pad(b: bytes) -> bytes:
        return b + b"\0" * (-len(b) % 4)

    return struct.pack("<III", len(name), size, ntype) + pad(name) + pad(d)


def default_notes(*, entry: int = CODE_VA, hypercall_page: int = HYPERCALL_PAGE_VA,
                  virt_base: int = VIRT_BASE, paddr_offset: int = 0,
                  guest_os: str = "xenlab-elfgen", xen_version: str = "xen-3.0",
                  loader: str = "generic") -> dict[int, NoteValue]:
    return {
        N.XEN_ELFNOTE_GUEST_OS: guest_os,
        N.XEN_ELFNOTE_XEN_VERSION: xen_version,
        N.XEN_ELFNOTE_LOADER: loader,
        N.XEN_ELFNOTE_VIRT_BASE: virt_base,
        N.XEN_ELFNOTE_PADDR_OFFSET: paddr_offset,
        N.XEN_ELFNOTE_ENTRY: entry,
        N.XEN_ELFNOTE_HYPERCALL_PAGE: hypercall_page,
    }


# ------------------------------------------------------------------ the ELF file
def build_elf(
    code: bytes,
    *,
    data: bytes = b"",
    bss: int = 0,
    notes: dict[int, NoteValue] | None = None,
    omit: Iterable[int] = (),
    override: dict[int, NoteValue] | None = None,
    owner: str = "Xen",
    extra_notes: bytes = b"",
    last_descsz: int | None = None,
    entry: int | None = None,
    e_entry: int | None = None,
    hypercall_page: int | None = None,
    machine: int = EM_X86_64,
    ei_class: int = 2,
    extra_loads: Iterable[tuple[int, int, bytes, int]] = (),
    pt_note: bool = True,
    truncate: int | None = None,
    patch: dict[int, bytes] | None = None,
) -> bytes:
    """The bytes of a PV kernel.

    omit: note types to leave out; override: note type -> new value (also adds);
    owner: the owner name of every Xen note ("Xen"); extra_notes: raw records
    appended; last_descsz: lie in the last note's descsz field; entry /
    hypercall_page: the values of those notes (ELF e_entry follows ``entry``
    unless ``e_entry`` is given); machine / ei_class: e_machine and EI_CLASS;
    extra_loads: more PT_LOADs as (vaddr, paddr, data, memsz), e.g. overlapping;
    pt_note=False: no PT_NOTE at all; truncate: cut the file at that length;
    patch: offset -> bytes written over the finished file.
    """
    if len(code) > CODE_MAX:
        raise ValueError(f"code is {len(code)} bytes; at most {CODE_MAX}")
    if len(data) > DATA_MAX:
        raise ValueError(f"data is {len(data)} bytes; at most {DATA_MAX}")
    entry = CODE_VA if entry is None else entry
    hp = HYPERCALL_PAGE_VA if hypercall_page is None else hypercall_page
    table = dict(notes if notes is not None else default_notes(entry=entry, hypercall_page=hp))
    for t in omit:
        table.pop(t, None)
    table.update(override or {})
    records = [note(owner, t, v) for t, v in table.items()]
    if last_descsz is not None and records:
        namesz, _descsz, ntype = struct.unpack_from("<III", records[-1])
        records[-1] = struct.pack("<III", namesz, last_descsz, ntype) + records[-1][12:]
    note_blob = b"".join(records) + extra_notes

    # PT_LOAD image: code page, hypercall page (int3 filled: Xen overwrites it), data page
    image = code.ljust(CODE_MAX, b"\xcc") + b"\xcc" * PAGE + data.ljust(DATA_MAX, b"\0")
    memsz = len(image) + PAGE + bss  # + results page + extra bss (zero, not in the file)
    loads: list[tuple[int, int, bytes, int, int]] = [
        (VIRT_BASE, 0, image, memsz, PF_R | PF_W | PF_X)]
    loads += [(va, pa, blob, msz, PF_R | PF_W) for va, pa, blob, msz in extra_loads]

    phnum = len(loads) + (1 if pt_note else 0)
    ehsize, phentsize = 64, 56
    note_off = ehsize + phnum * phentsize
    file_off = max(LOAD_FILE_OFFSET, (note_off + len(note_blob) + PAGE - 1) & ~(PAGE - 1))
    phdrs = b""
    payload = b""
    pos = file_off
    for va, pa, blob, msz, flags in loads:
        # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
        phdrs += struct.pack("<IIQQQQQQ", PT_LOAD, flags, pos, va, pa, len(blob), msz, PAGE)
        payload += blob.ljust((len(blob) + PAGE - 1) & ~(PAGE - 1), b"\0")
        pos = file_off + len(payload)
    if pt_note:
        phdrs += struct.pack("<IIQQQQQQ", PT_NOTE, PF_R, note_off, 0, 0, len(note_blob),
                             len(note_blob), 4)
    ident = b"\x7fELF" + bytes([ei_class, 1, 1, 0]) + b"\0" * 8
    # e_type ET_EXEC, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags,
    # e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1,
                                 (entry if e_entry is None else e_entry) & (2**64 - 1),
                                 ehsize, 0, 0, ehsize, phentsize, phnum, 64, 0, 0)
    head = header + phdrs + note_blob
    blob = bytearray(head.ljust(file_off, b"\0") + payload)
    for off, chunk in (patch or {}).items():
        blob[off : off + len(chunk)] = chunk
    out = bytes(blob)
    return out if truncate is None else out[:truncate]


def build_elf32(machine: int = 3) -> bytes:
    """A tiny but well-formed ELF32 (i386 by default) executable header and nothing else."""
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + b"\0" * 8
    return ident + struct.pack("<HHIIIIIHHHHHH", 2, machine, 1, 0x100000, 0, 0, 0,
                               52, 32, 0, 40, 0, 0)


# ------------------------------------------------------------------ guest code
REGS = {name: i for i, name in enumerate(
    ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"))}
#: The 64-bit PV hypercall argument registers, in order.
ARG_REGS = ("rdi", "rsi", "rdx", "r10", "r8")


def mov_imm64(reg: str, value: int) -> bytes:
    """``movabs $value, %reg``: REX.W(+B) B8+r imm64."""
    r = REGS[reg]
    rex = 0x48 | (1 if r >= 8 else 0)
    return bytes([rex, 0xB8 + (r & 7)]) + struct.pack("<Q", value & (2**64 - 1))


def hypercall(nr: int, at: int) -> bytes:
    """``call hypercall_page + nr*32`` for a call instruction at virtual address ``at``.

    E8 rel32, relative to the end of the 5-byte instruction.
    """
    target = HYPERCALL_PAGE_VA + 32 * nr
    rel = target - (at + 5)
    return b"\xe8" + struct.pack("<i", rel)


class Asm:
    """Guest code builder that knows where each instruction lands (from CODE_VA)."""

    def __init__(self) -> None:
        self.code = bytearray()

    @property
    def here(self) -> int:
        return CODE_VA + len(self.code)

    def raw(self, hexbytes: str) -> Asm:
        self.code += bytes.fromhex(hexbytes)
        return self

    def mov(self, reg: str, value: int) -> Asm:
        self.code += mov_imm64(reg, value)                   # movabs $value, %reg
        return self

    def call(self, nr: int, *args: int) -> Asm:
        """Load args into RDI, RSI, RDX, R10, R8, then call the hypercall page stub."""
        for reg, value in zip(ARG_REGS, args, strict=False):
            self.mov(reg, value)
        self.code += hypercall(int(nr), self.here)           # call hypercall_page+nr*32
        return self

    def store_rax(self, slot: int) -> Asm:
        """``movabs %rax, RESULTS_VA + 8*slot`` (48 A3 moffs64)."""
        self.code += b"\x48\xa3" + struct.pack("<Q", RESULTS_VA + 8 * slot)
        return self

    def shutdown(self, reason: int = 0) -> Asm:
        """sched_op(SCHEDOP_shutdown, &{reason}) with the struct on the stack."""
        self.raw("6a" + f"{reason & 0x7F:02x}")              # push $reason
        self.raw("4889e6")                                   # mov %rsp, %rsi
        self.mov("rdi", SchedOp.SCHEDOP_shutdown)            # movabs $2, %rdi
        self.code += hypercall(Hypercall.sched_op, self.here)  # call hypercall_page+29*32
        return self

    def spin(self) -> Asm:
        self.raw("ebfe")                                     # 1: jmp 1b
        return self

    def bytes(self) -> bytes:
        return bytes(self.code)


# ------------------------------------------------------------------ booting
def write_image(blob: bytes, directory: str | os.PathLike[str] | None = None,
                name: str = "kernel.elf") -> str:
    d = os.fspath(directory) if directory is not None else tempfile.mkdtemp(prefix="elfgen-")
    path = os.path.join(d, name)
    with open(path, "wb") as fp:
        fp.write(blob)
    return path


def new_host():
    from xenlab.xen.setup import XenHost

    return XenHost(memory_mib=256, dom0_mem_mib=16)


def create(host, code: bytes, *, memory_mib: int = 16, data: bytes = b"", cmdline: str = "",
           name: str = "elfgen", unpause: bool = True, max_pages: int | None = None,
           vcpus: int = 1, **elf_kw):
    """Create, populate and build a PV domain from ``code`` on ``host``; returns the domain."""
    from xenlab.tools.libs.guest.xg_dom_elfloader import load_elf_kernel
    from xenlab.tools.libs.guest.xg_dom_x86 import build_pv
    from xenlab.xen.domain import DomainType

    blob = build_elf(code, data=data, **elf_kw)
    with tempfile.TemporaryDirectory(prefix="elfgen-") as tmp:
        img = load_elf_kernel(write_image(blob, tmp))
    pages = memory_mib * 256
    d = host.domain_create(name, DomainType.PV, vcpus=vcpus,
                           max_pages=pages if max_pages is None else max_pages)
    host.populate_physmap(d, pages)
    build_pv(host, d, img, cmdline=cmdline)
    if unpause:
        host.domain_unpause(d)
    return d


def boot(code: bytes, *, memory_mib: int = 16, data: bytes = b"", cmdline: str = "",
         host=None, max_instructions: int = 2_000_000, max_pages: int | None = None,
         **elf_kw):
    """Boot ``code`` as a PV kernel on a fresh (or the given) XenHost and run it to completion.

    Returns (host, domain). The run ends when nothing is runnable or after
    ``max_instructions``.
    """
    host = new_host() if host is None else host
    d = create(host, code, memory_mib=memory_mib, data=data, cmdline=cmdline,
               max_pages=max_pages, **elf_kw)
    host.run(max_instructions=max_instructions)
    return host, d


def results(host, d, count: int) -> list[int]:
    """The first ``count`` quadwords of the guest's results page (signed)."""
    pfn = (RESULTS_VA - VIRT_BASE) >> 12
    raw = host.mem.read(d.maddr(pfn), 8 * count)
    return list(struct.unpack(f"<{count}q", raw))


def hypercall_rets(host, d, name: str | None = None) -> list[int]:
    """Return values of the domain's hypercalls, from the trace (optionally one name)."""
    return [r.ret for r in host.trace.select(kind="hypercall", dom=d.domid, name=name)]
