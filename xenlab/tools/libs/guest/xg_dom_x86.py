"""The PV domain builder: lay out a 64-bit PV guest's memory and its first page tables.

What ``xl create`` does (through libxl and libxenguest) before the guest's
first instruction, in order:

1. load the kernel's PT_LOAD segments at ``VIRT_BASE + p_paddr - PADDR_OFFSET``;
2. behind the kernel, each on its own 4 KiB page(s): the ramdisk, the P2M list
   (``mfn_list``: pfn -> mfn for every page the guest owns), ``start_info``,
   the xenstore ring page, the console ring page, the bootstrap page tables
   (L4, L3, L2, L1 mapping everything from VIRT_BASE to ``v_end``; the
   page-table pages themselves read-only, as Xen requires), and a stack page;
   a kernel whose ``MOD_START_PFN`` note is set gets its ramdisk *after*
   ``v_end``, outside the initial mappings (``start_info.mod_start`` is then a
   pfn and ``SIF_MOD_START_PFN`` is set), and one whose ``INIT_P2M`` note names
   an address below VIRT_BASE gets its P2M list last, mapped there by page
   tables of its own (``first_p2m_pfn``/``nr_p2m_frames``), as Linux asks;
3. write Xen's stubs into the HYPERCALL_PAGE named by the kernel's ELF note;
4. fill ``start_info`` (magic ``xen-3.0-x86_64``, nr_pages, the machine
   address of shared_info, pt_base, mfn_list, cmd_line, ...) and set up the
   vCPU: RIP = XEN_ELFNOTE_ENTRY, RSP = top of the boot stack, RSI = start_info.

Real Xen: tools/libs/guest/xg_dom_x86.c (alloc_magic_pages, setup_pgtables_x86_64,
start_info_x86_64, vcpu_x86_64), tools/libs/guest/xg_dom_core.c
"""

from __future__ import annotations

import ctypes
import struct
import zlib
from dataclasses import dataclass

from xenlab.errors import ImageError
from xenlab.public.grant_table import (
    GNTTAB_RESERVED_CONSOLE,
    GNTTAB_RESERVED_XENSTORE,
    GTF_permit_access,
)
from xenlab.public.xen import (
    SIF_INITDOMAIN,
    SIF_MOD_START_PFN,
    SIF_PRIVILEGED,
    START_INFO_MAGIC_X86_64,
    StartInfo,
)
from xenlab.tools.libs.guest.xg_dom_elfloader import ElfImage
from xenlab.xen import traps
from xenlab.xen.domain import Domain
from xenlab.xen.mm import pin_page_table
from xenlab.xen.page_alloc import PAGE_SHIFT, PAGE_SIZE
from xenlab.xen.setup import XenHost

__all__ = ["BootLayout", "boot_layout", "build_pv", "unzip_module"]

_P, _RW, _US = 1, 2, 4
BOOTSTRAP_SLACK = 512 * 1024
V_END_ALIGN = 4 << 20


def _pages(nbytes: int) -> int:
    return (nbytes + PAGE_SIZE - 1) >> PAGE_SHIFT


@dataclass
class BootLayout:
    """Where everything goes, as virtual addresses (pfn = (va - virt_base) >> 12)."""

    virt_base: int
    kernel_start: int
    kernel_end: int
    ramdisk: int
    ramdisk_len: int
    p2m: int
    start_info: int
    xenstore: int
    console: int
    pgtables: int
    nr_pt_frames: int
    stack: int
    v_end: int
    mod_start: int = 0          # start_info.mod_start: a VA, or a pfn with SIF_MOD_START_PFN
    si_flags: int = 0           # SIF_MOD_START_PFN when the ramdisk is unmapped
    p2m_base: int | None = None  # INIT_P2M: the P2M list's VA (its pfn is p2m's)
    p2m_frames: int = 0         # P2M pages + the page tables that map them at p2m_base
    end_pfn: int = 0            # first pfn past everything the builder placed

    def pfn(self, va: int) -> int:
        return (va - self.virt_base) >> PAGE_SHIFT

    def va(self, pfn: int) -> int:
        """The builder's address of a pfn (also for pfns outside the initial mappings)."""
        return self.virt_base + (pfn << PAGE_SHIFT)


def _count_pgtables(virt_base: int, v_end: int) -> int:
    """How many L4/L3/L2/L1 pages map [virt_base, v_end) (count_pgtables)."""
    total = 1  # L4
    for shift in (39, 30, 21):
        first = virt_base >> shift
        last = (v_end - 1) >> shift
        total += last - first + 1
    return total


def _table_keys(start: int, end: int) -> set[tuple[int, int]]:
    """The L3, L2 and L1 tables (level, index) that map [start, end)."""
    return {(level, i) for level, shift in ((3, 39), (2, 30), (1, 21))
            for i in range(start >> shift, ((end - 1) >> shift) + 1)}


def boot_layout(img: ElfImage, nr_pages: int, ramdisk_len: int = 0) -> BootLayout:
    """xc_dom_build_image's order: kernel, mapped ramdisk, P2M list, alloc_magic_pages,
    the page-table sizing loop of alloc_pgtables_pv, the boot stack; then, past the
    initial mappings, an unmapped ramdisk and a P2M list placed at INIT_P2M."""
    vb = img.virt_base
    kstart = img.virt_kstart & ~(PAGE_SIZE - 1)
    va = (img.virt_kend + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    unmapped = img.unmapped_initrd and ramdisk_len > 0
    p2m_base = img.p2m_base
    ramdisk = va
    if not unmapped:
        va += _pages(ramdisk_len) << PAGE_SHIFT
    p2m = va
    if p2m_base is None:
        va += _pages(nr_pages * 8) << PAGE_SHIFT
    start_info, xenstore, console = va, va + PAGE_SIZE, va + 2 * PAGE_SIZE
    va += 3 * PAGE_SIZE
    pgtables = va
    nr_pt = 1
    while True:  # page tables must map themselves, the stack and some slack
        end = pgtables + ((nr_pt + 1) << PAGE_SHIFT) + BOOTSTRAP_SLACK
        v_end = (end + V_END_ALIGN - 1) & ~(V_END_ALIGN - 1)
        need = _count_pgtables(vb, v_end)
        if need <= nr_pt:
            break
        nr_pt = need
    stack = pgtables + (nr_pt << PAGE_SHIFT)
    # xc_dom_alloc_pad: everything the initial page tables map is the guest's first pages
    end_pfn = (v_end - vb) >> PAGE_SHIFT
    mod_start, flags = (ramdisk if ramdisk_len else 0), 0
    if unmapped:
        ramdisk, mod_start, flags = vb + (end_pfn << PAGE_SHIFT), end_pfn, SIF_MOD_START_PFN
        ramdisk_len = _pages(ramdisk_len) << PAGE_SHIFT  # Xen passes whole pages
        end_pfn += ramdisk_len >> PAGE_SHIFT
    p2m_frames = 0
    if p2m_base is not None:
        p2m = vb + (end_pfn << PAGE_SHIFT)
        size = _pages(nr_pages * 8) << PAGE_SHIFT
        new_tables = _table_keys(p2m_base, p2m_base + size) - _table_keys(vb, v_end)
        p2m_frames = (size >> PAGE_SHIFT) + len(new_tables)
        end_pfn += p2m_frames
    return BootLayout(vb, kstart, img.virt_kend, ramdisk, ramdisk_len, p2m, start_info,
                      xenstore, console, pgtables, nr_pt, stack, v_end, mod_start, flags,
                      p2m_base, p2m_frames, end_pfn)


def unzip_module(data: bytes, limit: int) -> bytes:
    """xc_dom_build_module (Xen 4.17): a gzip'd module is loaded unpacked when it fits in
    ``limit``; otherwise (or when it is not gzip) as it is."""
    if data[:2] != b"\x1f\x8b" or len(data) < 18:
        return data
    size = int.from_bytes(data[-4:], "little")  # xc_dom_check_gzip: ISIZE, sanity-checked
    if size == 0 or size > limit or size > 16384 * len(data):
        return data
    try:
        dz = zlib.decompressobj(wbits=31)
        out = dz.decompress(data, limit + 1)
    except zlib.error:
        return data
    return out if dz.eof and len(out) <= limit else data


def build_pv(host: XenHost, d: Domain, img: ElfImage, *, cmdline: str = "",
             ramdisk: bytes = b"", store_evtchn: int = 0, console_evtchn: int = 0) -> BootLayout:
    """Load ``img`` into ``d`` (already populated with RAM) and make vCPU 0 ready to run."""
    nr_pages = d.tot_pages
    lay = boot_layout(img, nr_pages, len(ramdisk))
    mapped_pages = lay.end_pfn
    if mapped_pages > nr_pages:
        need_mib = -(-(lay.stack + PAGE_SIZE - lay.virt_base) // (1 << 20))
        raise ImageError(
            f"{img.path}: kernel and boot structures need {mapped_pages * 4 // 1024} MiB of "
            f"bootstrap mappings (at least {need_mib} MiB), but memory = "
            f"{nr_pages * 4 // 1024} MiB")
    mem = host.mem

    def maddr(va: int) -> int:
        return d.maddr(lay.pfn(va)) | (va & 0xFFF)

    def write_va(va: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            cur = va + pos
            n = min(len(data) - pos, PAGE_SIZE - (cur & 0xFFF))
            mem.write(maddr(cur), data[pos : pos + n])
            pos += n

    # 1. the kernel (memory is scrubbed, so .bss is already zero)
    for seg in img.segments:
        write_va(img.load_va(seg), seg.data)
    if ramdisk:
        write_va(lay.ramdisk, ramdisk)
    # 2. the P2M list the guest reads as start_info.mfn_list
    write_va(lay.p2m, struct.pack(f"<{nr_pages}Q", *d.p2m[:nr_pages]))
    p2m_pt_pages: list[int] = []
    if lay.p2m_base is not None:  # its own page tables follow it (alloc_p2m_list_x86_64)
        first = lay.pfn(lay.p2m) + _pages(nr_pages * 8)
        p2m_pt_pages = [lay.va(pfn) for pfn in range(first, lay.pfn(lay.p2m) + lay.p2m_frames)]
    # 3. hypercall page
    if img.hypercall_page is not None:
        write_va(img.hypercall_page, traps.pv_hypercall_page())
    # 4. page tables: L4 first, then L3s, L2s, L1s, in the order they are needed
    pt_pages = [lay.pgtables + (i << PAGE_SHIFT) for i in range(lay.nr_pt_frames)]
    next_pt = iter(pt_pages[1:])
    l4 = pt_pages[0]
    pt_pfns = {lay.pfn(va) for va in pt_pages + p2m_pt_pages}
    d.pt_mfns = {d.pfn_to_mfn(pfn) for pfn in pt_pfns}
    tables: dict[tuple[int, int], int] = {}

    def table_for(level: int, index_va: int, parent_va: int, slot: int) -> int:
        key = (level, index_va)
        if key not in tables:
            va = next(next_pt)
            tables[key] = va
            mem.write_u64(maddr(parent_va) + 8 * slot, maddr(va) | _P | _RW | _US)
        return tables[key]

    for va in range(lay.virt_base, lay.v_end, PAGE_SIZE):
        l3 = table_for(3, va >> 39, l4, (va >> 39) & 0x1FF)
        l2 = table_for(2, va >> 30, l3, (va >> 30) & 0x1FF)
        l1 = table_for(1, va >> 21, l2, (va >> 21) & 0x1FF)
        pfn = lay.pfn(va)
        flags = _P | _US | (0 if pfn in pt_pfns else _RW)
        mem.write_u64(maddr(l1) + 8 * ((va >> 12) & 0x1FF), d.maddr(pfn) | flags)
    if lay.p2m_base is not None:  # the second mapping: the P2M list at INIT_P2M
        next_pt = iter(p2m_pt_pages)
        p2m_pfn = lay.pfn(lay.p2m)
        for i in range(_pages(nr_pages * 8)):
            va = lay.p2m_base + (i << PAGE_SHIFT)
            l3 = table_for(3, va >> 39, l4, (va >> 39) & 0x1FF)
            l2 = table_for(2, va >> 30, l3, (va >> 30) & 0x1FF)
            l1 = table_for(1, va >> 21, l2, (va >> 21) & 0x1FF)
            mem.write_u64(maddr(l1) + 8 * ((va >> 12) & 0x1FF),
                          d.maddr(p2m_pfn + i) | _P | _RW | _US)
    # xc_dom_boot pins the L4 (MMUEXT_PIN_L4_TABLE): Xen validates every table and
    # entry below it and types the tables, so none can ever be mapped writable; it also
    # writes its own L4 slots (init_xen_l4_slots: the read-only machine-to-phys table
    # the guest may read at slot 256, Xen's per-domain area at slot 260)
    if not pin_page_table(host, d, maddr(l4) >> PAGE_SHIFT, 4):
        raise ImageError(f"{img.path}: Xen refused the boot page tables")
    # 5. start_info
    si = StartInfo()
    si.magic = START_INFO_MAGIC_X86_64
    si.nr_pages = nr_pages
    assert d.shared_info_mfn is not None
    si.shared_info = d.shared_info_mfn << PAGE_SHIFT
    si.flags = ((SIF_PRIVILEGED | SIF_INITDOMAIN) if d.privileged else 0) | lay.si_flags
    si.store_mfn = d.pfn_to_mfn(lay.pfn(lay.xenstore))
    si.store_evtchn = store_evtchn
    si.console.domU.mfn = d.pfn_to_mfn(lay.pfn(lay.console))
    si.console.domU.evtchn = console_evtchn
    si.pt_base = lay.pgtables
    si.nr_pt_frames = lay.nr_pt_frames
    si.mfn_list = lay.p2m if lay.p2m_base is None else lay.p2m_base
    if lay.p2m_base is not None:
        si.first_p2m_pfn = lay.pfn(lay.p2m)
        si.nr_p2m_frames = lay.p2m_frames
    si.mod_start = lay.mod_start
    si.mod_len = lay.ramdisk_len if lay.si_flags & SIF_MOD_START_PFN else len(ramdisk)
    si.cmd_line = cmdline.encode("latin-1", "replace")[:1023]
    write_va(lay.start_info, bytes(si)[: ctypes.sizeof(StartInfo)])
    d.store_mfn, d.store_port = si.store_mfn, store_evtchn
    d.console_mfn, d.console_port = si.console.domU.mfn, console_evtchn
    # 6. the grant table's reserved entries, as xc_dom_gnttab_init seeds them: Dom0 may
    #    map the console page (ref 0) and the xenstore page (ref 1)
    host.gnttab_grow(d, 1)
    assert d.grant_table is not None
    table = d.grant_table.frames[0] << PAGE_SHIFT
    for ref, mfn in ((GNTTAB_RESERVED_CONSOLE, d.console_mfn),
                     (GNTTAB_RESERVED_XENSTORE, d.store_mfn)):
        mem.write(table + 8 * ref, struct.pack("<HHI", GTF_permit_access, 0, mfn))
    # 7. shared_info: events masked on every vCPU until the guest is ready
    si_maddr = d.shared_info_mfn << PAGE_SHIFT
    for v in d.vcpus:
        mem.write(si_maddr + 64 * v.vcpu_id + 1, b"\x01")
    mem.write_u64(si_maddr + 3088, nr_pages)  # arch.max_pfn
    # 8. vCPU 0 enters at the ELF entry point, RSI -> start_info
    host.vcpu_initialise_pv(d.vcpus[0], rip=img.entry, rsp=lay.stack + PAGE_SIZE,
                            rsi=lay.start_info, cr3=maddr(l4))
    return lay
