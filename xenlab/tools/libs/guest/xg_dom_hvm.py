"""The HVM domain builder: guest-physical memory, hvmloader, its firmware module, the tables.

What libxl/libxenguest do before an HVM guest's first instruction:

1. populate guest-physical RAM (pfn = guest-physical frame), leaving the
   legacy VGA hole 0xA0000-0xBFFFF to the device model's video memory;
2. load ``hvmloader`` (an ELF32 executable) at 0x100000 and the BIOS image as
   a module after it, described by ``struct hvm_start_info`` and its module
   list (the module's command line is ``firmware``);
3. write ``struct hvm_info_table`` at 0x9F800 (vCPUs, where low memory ends);
4. reserve the special pages (ioreq, xenstore, console) at the top of low
   memory and publish them as HVM params;
5. start vCPU 0 in 32-bit flat protected mode at hvmloader's entry with EBX
   pointing at hvm_start_info.

Real Xen: tools/libs/guest/xg_dom_hvmloader.c, tools/libs/guest/xg_dom_x86.c
(meminit_hvm, alloc_magic_pages_hvm), tools/libs/light/libxl_dom.c (hvm_build_set_params)
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from xenlab.errors import ImageError
from xenlab.public.hvm import (
    HVM_INFO_PADDR,
    HvmParam,
    hvm_info_table,
    hvm_modlist_entry,
    hvm_start_info,
)
from xenlab.tools.libs.guest.xg_dom_core import read_image_file
from xenlab.tools.libs.guest.xg_dom_elfloader import MAX_UNPACKED, unpack_bzimage
from xenlab.xen.domain import Domain
from xenlab.xen.page_alloc import PAGE_SHIFT, PAGE_SIZE
from xenlab.xen.setup import XenHost

__all__ = ["HvmFirmware", "build_hvm", "build_pvh", "load_hvmloader", "load_pvh_kernel"]

VGA_HOLE = range(0xA0, 0xC0)
GDT_PADDR = 0x7000
START_INFO_PADDR = 0x6000
SPECIAL_PAGES = ("ioreq", "store", "console")
E820_RAM, E820_RESERVED = 1, 2


@dataclass
class HvmFirmware:
    path: str
    entry: int
    segments: list[tuple[int, bytes, int]]  # paddr, data, memsz
    bios: bytes
    bios_path: str

    @property
    def end(self) -> int:
        return max(p + m for p, _d, m in self.segments)


_ELF32_EHDR = struct.Struct("<16sHHIIIIIHHHHHH")   # Elf32_Ehdr
_ELF32_PHDR = struct.Struct("<8I")                   # Elf32_Phdr
_EM_386, _PT_LOAD = 3, 1


def load_hvmloader(path: str, bios_path: str) -> HvmFirmware:
    """Read hvmloader (ELF32 x86) and the BIOS image; ImageError with one line if unusable.

    Only the ELF header and the program headers matter here (the loadable segments and
    the entry), so they are read with ``struct`` as libelf's loader reads them: a
    general ELF library costs more than the rest of the domain's creation."""
    blob = read_image_file(path, "hvmloader image", 16 << 20)
    if blob[:4] != b"\x7fELF" or len(blob) < _ELF32_EHDR.size or blob[4] != 1:
        raise ImageError(f"{path}: not a 32-bit ELF file (hvmloader is ELF32)")
    if blob[5] != 1:
        raise ImageError(f"{path}: malformed ELF: not little-endian (EI_DATA {blob[5]})")
    (_ident, _etype, machine, _version, entry, phoff, _shoff, _flags, _ehsize, phentsize,
     phnum, *_rest) = _ELF32_EHDR.unpack_from(blob, 0)
    if machine != _EM_386:
        raise ImageError(f"{path}: ELF for machine {machine}, not x86 (EM_386)")
    if phnum and (phentsize < _ELF32_PHDR.size or phoff + phnum * phentsize > len(blob)):
        raise ImageError(f"{path}: malformed ELF: program headers past the end of the file")
    segs = []
    for i in range(phnum):
        ptype, off, _vaddr, paddr, filesz, memsz, _pflags, _align = _ELF32_PHDR.unpack_from(
            blob, phoff + i * phentsize)
        if ptype == _PT_LOAD and memsz:
            if off + filesz > len(blob):
                raise ImageError(f"{path}: truncated ELF segment")
            segs.append((paddr, blob[off : off + filesz], memsz))
    if not segs or any(p < 0x100000 or p + m > 0x1000000 for p, _d, m in segs):
        raise ImageError(f"{path}: hvmloader must load between 1 MiB and 16 MiB")
    bios = read_image_file(bios_path, "BIOS image", 1 << 20)
    if not bios or len(bios) % 0x10000:
        raise ImageError(f"{bios_path}: a BIOS image is a multiple of 64 KiB "
                         f"({len(bios)} bytes here)")
    return HvmFirmware(os.fspath(path), entry, segs, bios, os.fspath(bios_path))


XEN_ELFNOTE_PHYS32_ENTRY = 18
MAX_PVH_KERNEL = 64 << 20
PVH_LOAD_MIN = 0x100000  # below: hvm_start_info, the GDT, the VGA hole and the ROMs


def load_pvh_kernel(path: str, max_size: int = MAX_PVH_KERNEL,
                    limit_text: str | None = None) -> HvmFirmware:
    """A PVH kernel: an ELF whose XEN_ELFNOTE_PHYS32_ENTRY note gives the 32-bit entry,
    or a Linux bzImage holding one (as libxenguest's loaders probe it).

    Only a regular file of at most ``max_size`` bytes (never more than 64 MiB) is read.
    The segments load at their physical addresses, anywhere from 1 MiB up: whether
    they fit in the guest's memory is ``build_pvh``'s check (xc_dom_alloc_segment)."""
    unpacked_limit = min(max(max_size, 1), MAX_UNPACKED)
    if max_size >= MAX_PVH_KERNEL:
        max_size, limit_text = MAX_PVH_KERNEL, "64 MiB, the largest kernel image xenlab loads"
    blob = read_image_file(path, "kernel image", max_size, limit_text=limit_text)
    if blob[:4] != b"\x7fELF" and blob[0x202:0x206] == b"HdrS":
        blob, _kind = unpack_bzimage(blob, path, unpacked_limit)
    if blob[:4] != b"\x7fELF":
        raise ImageError(f"{path}: not an ELF file")
    try:
        elf = ELFFile(io.BytesIO(blob))
        segs, entry = [], None
        for seg in elf.iter_segments():
            off, filesz = seg["p_offset"], seg["p_filesz"]
            if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]:
                if off + filesz > len(blob):
                    raise ImageError(f"{path}: truncated ELF segment")
                segs.append((seg["p_paddr"], blob[off : off + filesz], seg["p_memsz"]))
            elif seg["p_type"] == "PT_NOTE":
                data = blob[off : off + filesz]
                pos = 0
                while pos + 12 <= len(data):
                    namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
                    name = data[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
                    dpos = pos + 12 + ((namesz + 3) & ~3)
                    if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY and descsz >= 4:
                        entry = struct.unpack_from("<I", data, dpos)[0]
                    pos = dpos + ((descsz + 3) & ~3)
    except (ELFError, ValueError, OverflowError, KeyError, struct.error) as err:
        raise ImageError(f"{path}: malformed ELF: {err}") from None
    if entry is None:
        raise ImageError(f"{path}: no XEN_ELFNOTE_PHYS32_ENTRY note: not a PVH kernel")
    if not segs:
        raise ImageError(f"{path}: no loadable segment")
    if any(p < PVH_LOAD_MIN or len(d) > m or p + m > 1 << 32 for p, d, m in segs):
        raise ImageError(f"{path}: a PVH kernel's segments must load between 1 MiB and 4 GiB")
    return HvmFirmware(os.fspath(path), entry, segs, b"", "")


def build_pvh(host: XenHost, d: Domain, kernel: HvmFirmware, *, memory_pages: int,
              cmdline: str = "", ramdisk: bytes = b"") -> None:
    """A PVH guest: HVM's container without firmware or device model. The kernel's
    segments are loaded where they ask, vCPU 0 enters at PHYS32_ENTRY in 32-bit flat mode
    with EBX -> hvm_start_info: the command line and, with a ramdisk, one module in the
    first page after the kernel (xc_dom_build_image places modules after it)."""
    assert d.hvm is not None
    special_base = memory_pages - len(SPECIAL_PAGES)
    for first, count in ((0, VGA_HOLE.start), (VGA_HOLE.stop, memory_pages - VGA_HOLE.stop)):
        if host.guest_add_pages(d, count, first) is None:
            raise MemoryError("cannot populate the guest's memory")
    if kernel.end > special_base << PAGE_SHIFT:
        raise ImageError(f"{kernel.path}: the kernel ends at {kernel.end:#x}, past the RAM "
                         f"below Xen's special pages ({special_base << PAGE_SHIFT:#x}): it "
                         "does not fit in the guest's memory (raise memory)")

    def write(paddr: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            cur = paddr + pos
            n = min(len(data) - pos, PAGE_SIZE - (cur & 0xFFF))
            host.mem.write((d.pfn_to_mfn(cur >> PAGE_SHIFT) << PAGE_SHIFT) | (cur & 0xFFF),
                           data[pos : pos + n])
            pos += n

    for paddr, data, _memsz in kernel.segments:
        write(paddr, data)
    cmd = START_INFO_PADDR + 0x200
    modlist = START_INFO_PADDR + 0x100
    if ramdisk:
        mod = (kernel.end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        if mod + len(ramdisk) > special_base << PAGE_SHIFT:
            raise ImageError(f"{kernel.path}: the kernel and its ramdisk end at "
                             f"{mod + len(ramdisk):#x}, past the RAM below Xen's special "
                             f"pages ({special_base << PAGE_SHIFT:#x}) (raise memory)")
        write(mod, ramdisk)
        write(modlist, hvm_modlist_entry(mod, len(ramdisk), 0))
    write(START_INFO_PADDR, hvm_start_info(modlist if ramdisk else 0, 1 if ramdisk else 0,
                                           cmdline_paddr=cmd if cmdline else 0))
    write(cmd, cmdline.encode("latin-1", "replace")[:1000] + b"\0")
    write(GDT_PADDR, struct.pack("<QQQ", 0, 0x00CF9B000000FFFF, 0x00CF93000000FFFF))
    d.hvm.e820 = [(0, 0xA0000, E820_RAM),
                  (0x100000, (special_base << PAGE_SHIFT) - 0x100000, E820_RAM),
                  (special_base << PAGE_SHIFT, len(SPECIAL_PAGES) << PAGE_SHIFT, E820_RESERVED)]
    params = d.hvm.params
    params[HvmParam.HVM_PARAM_STORE_PFN] = special_base + 1
    params[HvmParam.HVM_PARAM_CONSOLE_PFN] = special_base + 2
    params[HvmParam.HVM_PARAM_STORE_EVTCHN] = d.store_port
    params[HvmParam.HVM_PARAM_CONSOLE_EVTCHN] = d.console_port
    d.store_mfn = d.pfn_to_mfn(special_base + 1)
    d.console_mfn = d.pfn_to_mfn(special_base + 2)
    host.vcpu_initialise_hvm(d.vcpus[0], eip=kernel.entry, ebx=START_INFO_PADDR,
                             gdt_base=GDT_PADDR)


def build_hvm(host: XenHost, d: Domain, fw: HvmFirmware, *, memory_pages: int) -> None:
    """Populate RAM, load the firmware, write the tables, set the params, ready vCPU 0."""
    assert d.hvm is not None
    special_base = memory_pages - len(SPECIAL_PAGES)
    for first, count in ((0, VGA_HOLE.start), (VGA_HOLE.stop, memory_pages - VGA_HOLE.stop)):
        if host.guest_add_pages(d, count, first) is None:  # one contiguous extent each
            raise MemoryError("cannot populate the guest's memory")

    def write(paddr: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            cur = paddr + pos
            n = min(len(data) - pos, PAGE_SIZE - (cur & 0xFFF))
            host.mem.write((d.pfn_to_mfn(cur >> PAGE_SHIFT) << PAGE_SHIFT) | (cur & 0xFFF),
                           data[pos : pos + n])
            pos += n

    for paddr, data, _memsz in fw.segments:
        write(paddr, data)
    bios_paddr = (fw.end + 0xFFFF) & ~0xFFFF
    if bios_paddr + len(fw.bios) > special_base << PAGE_SHIFT:
        raise ImageError(f"{fw.bios_path}: the firmware does not fit in the guest's memory")
    write(bios_paddr, fw.bios)
    # hvm_start_info, its module list and the module's command line, in one page
    cmdline = START_INFO_PADDR + 0x200
    modlist = START_INFO_PADDR + 0x100
    write(START_INFO_PADDR, hvm_start_info(modlist, 1))
    write(modlist, hvm_modlist_entry(bios_paddr, len(fw.bios), cmdline))
    write(cmdline, b"firmware\0")
    low_end = special_base
    write(HVM_INFO_PADDR, hvm_info_table(len(d.vcpus), low_end))
    write(GDT_PADDR, struct.pack("<QQQ", 0, 0x00CF9B000000FFFF, 0x00CF93000000FFFF))
    d.hvm.e820 = [(0, 0xA0000, E820_RAM), (0x100000, (low_end << PAGE_SHIFT) - 0x100000,
                                              E820_RAM),
                  (special_base << PAGE_SHIFT, len(SPECIAL_PAGES) << PAGE_SHIFT, E820_RESERVED)]
    params = d.hvm.params
    params[HvmParam.HVM_PARAM_IOREQ_PFN] = special_base
    params[HvmParam.HVM_PARAM_STORE_PFN] = special_base + 1
    params[HvmParam.HVM_PARAM_CONSOLE_PFN] = special_base + 2
    params[HvmParam.HVM_PARAM_STORE_EVTCHN] = d.store_port
    params[HvmParam.HVM_PARAM_CONSOLE_EVTCHN] = d.console_port
    d.store_mfn = d.pfn_to_mfn(special_base + 1)
    d.console_mfn = d.pfn_to_mfn(special_base + 2)
    for v in d.vcpus:
        assert v.cpu is not None
        for paddr, data, _memsz in fw.segments:
            v.cpu.scan_wrmsr(paddr, data)
    host.vcpu_initialise_hvm(d.vcpus[0], eip=fw.entry, ebx=START_INFO_PADDR,
                             gdt_base=GDT_PADDR)
