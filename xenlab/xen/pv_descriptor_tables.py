"""A PV guest's descriptor tables: set_gdt and update_descriptor, with Xen's checks.

A PV kernel may not load GDTR: it hands Xen the frames of its GDT
(``HYPERVISOR_set_gdt(frame_list, entries)``, at most 14 pages: Xen's own
descriptors fill the last two of the 16). Each frame takes the type
``PGT_seg_desc_page``, which it can only get while nobody maps it writable,
and getting it validates all 512 descriptors (``check_descriptor``):

* a not-present descriptor, or type 0 (a call gate's upper half), is safe;
* code and data segments are accepted, their DPL raised to 3 (the kernel's
  ring): a PV guest never gets a ring 0 segment;
* a call gate must target a code selector of the guest's GDT or LDT, or the
  flat kernel CS, never one of Xen's; its DPL is forced to 0 (so that using
  it faults into Xen) with the original DPL kept in the selector's RPL, and
  its reserved bits must be zero;
* anything else (TSS, LDT, interrupt or trap gates) makes the page invalid.

``update_descriptor(maddr, desc)`` changes one 8-byte descriptor of a frame
the guest owns, after the same check; a frame in use as a GDT keeps its
type, any other must be one the guest could write (not a page table).

xenlab validates and accounts the frames; the CPU keeps loading segments from
Xen's own GDT (selectors 0xe000 up), which is all a 64-bit PV kernel using
the flat selectors needs.

Real Xen: xen/arch/x86/pv/descriptor-tables.c (do_set_gdt, pv_set_gdt,
do_update_descriptor, check_descriptor), xen/arch/x86/mm.c (alloc_segdesc_page)
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.xen import FLAT_KERNEL_CS
from xenlab.xen.mm import get_page, get_page_type, put_page, put_page_and_type, put_page_type
from xenlab.xen.page_alloc import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PGT_count_mask,
    PGT_seg_desc_page,
    PGT_type_mask,
    PGT_writable_page,
)
from xenlab.xen.pv_traps import pv_vcpu

if TYPE_CHECKING:
    from xenlab.xen.domain import Vcpu
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.setup import XenHost

__all__ = ["check_descriptor", "do_set_gdt", "do_update_descriptor", "pv_destroy_gdt"]

FIRST_RESERVED_GDT_ENTRY = 14 * 512
_SEGMENT_TYPE = 15 << 8
_SEGMENT_S = 1 << 12
_SEGMENT_DPL = 3 << 13
_SEGMENT_P = 1 << 15
_CALL_GATE = 0xC << 8


def _gate_selector_okay(sel: int) -> bool:
    """guest_gate_selector_okay: the guest's GDT or LDT, or Xen's flat kernel CS."""
    return ((sel >> 3) < FIRST_RESERVED_GDT_ENTRY or bool(sel & 4)
            or (sel & ~3) == (FLAT_KERNEL_CS & ~3))


def check_descriptor(desc: int) -> int | None:
    """The descriptor as Xen stores it (DPL fixed up), or None if it is refused."""
    a, b = desc & 0xFFFFFFFF, desc >> 32
    if not b & _SEGMENT_P:
        return desc
    dpl = (b >> 13) & 3
    if dpl < 3:          # __fixup_guest_selector: the guest kernel's RPL is 3
        dpl = 3
    b = (b & ~_SEGMENT_DPL) | (dpl << 13)
    if b & _SEGMENT_S:   # code and data: no base or limit checks
        return a | (b << 32)
    if b & _SEGMENT_TYPE == 0:
        return desc      # the upper half of a call gate
    if b & _SEGMENT_TYPE != _CALL_GATE:
        return None
    cs = a >> 16
    if not _gate_selector_okay(cs):
        return None
    b &= ~_SEGMENT_DPL   # DPL 0: using the gate faults into Xen, which emulates it
    cs = (cs & ~3) | dpl
    a = (a & 0xFFFF) | (cs << 16)
    if b & 0xFF:         # reserved bits
        return None
    return a | (b << 32)


def _checked_segdesc_page(host: XenHost, mfn: int) -> bytes | None:
    """alloc_segdesc_page: every descriptor checked; the page as Xen leaves it (DPLs
    fixed up), or None if one is refused."""
    fixed = []
    for (desc,) in struct.iter_unpack("<Q", host.mem.read(mfn << PAGE_SHIFT, PAGE_SIZE)):
        new = check_descriptor(desc)
        if new is None:
            return None
        fixed.append(new)
    return struct.pack("<512Q", *fixed)


def _get_segdesc_type(host: XenHost, v: Vcpu, mfn: int) -> bool:
    """get_page_and_type(PGT_seg_desc_page), validating the page on its first use."""
    d = v.domain
    mem = host.mem
    if mfn >= len(mem.type_info) or not d.owns_mfn(mfn) or mfn in d.shared_mfns:
        return False
    if not get_page(host, mfn, d):
        return False
    info = mem.type_info[mfn]
    fixed = None
    if info & PGT_count_mask and info & PGT_type_mask != PGT_seg_desc_page:
        put_page(host, mfn)     # mapped writable, or a page table: not a GDT
        return False
    if not info & PGT_count_mask:
        fixed = _checked_segdesc_page(host, mfn)
        if fixed is None:
            put_page(host, mfn)
            return False
    if not get_page_type(host, mfn, d, PGT_seg_desc_page):
        put_page(host, mfn)
        return False
    if fixed is not None:
        host.mem.write(mfn << PAGE_SHIFT, fixed)
    # Xen's reference while the frame is a GDT (a view of Xen's, for check_invariants)
    held = host.xen_maps.setdefault(mfn, [0, 0])
    held[0] += 1
    held[1] += 1
    return True


def _put_segdesc(host: XenHost, mfn: int) -> None:
    held = host.xen_maps[mfn]
    held[0] -= 1
    held[1] -= 1
    if not held[0]:
        del host.xen_maps[mfn]
    put_page_and_type(host, mfn)


def pv_destroy_gdt(host: XenHost, v: Vcpu) -> None:
    """Drop the references of the vCPU's GDT frames (a new GDT, or the vCPU's end)."""
    pv = v.pv
    if pv is None:
        return
    for mfn in pv.gdt_frames:
        _put_segdesc(host, mfn)
    pv.gdt_frames = []
    pv.gdt_ents = 0


def do_set_gdt(ctx: HypercallContext, frame_list: int, entries: int) -> int:
    """``long do_set_gdt(XEN_GUEST_HANDLE_PARAM(xen_ulong_t) frame_list,
    unsigned int entries)``"""
    entries &= 0xFFFFFFFF
    ctx.decode(entries=entries)
    if entries > FIRST_RESERVED_GDT_ENTRY:
        return -Errno.EINVAL
    nr = (entries + 511) // 512
    raw = ctx.copy_from_guest(frame_list, 8 * nr)
    if raw is None:
        return -Errno.EFAULT
    frames = list(struct.unpack(f"<{nr}Q", raw))
    ctx.decode(frames=[hex(f) for f in frames])
    host, v = ctx.host, ctx.vcpu
    taken: list[int] = []
    for mfn in frames:
        if not _get_segdesc_type(host, v, mfn):
            for m in taken:
                _put_segdesc(host, m)
            return -Errno.EINVAL
        taken.append(mfn)
    pv_destroy_gdt(host, v)
    pv = pv_vcpu(v)
    pv.gdt_frames, pv.gdt_ents = taken, entries
    return 0


def do_update_descriptor(ctx: HypercallContext, gaddr: int, desc: int) -> int:
    """``long do_update_descriptor(uint64_t gaddr, seg_desc_t d)``"""
    ctx.decode(gaddr=hex(gaddr), desc=hex(desc))
    host, d = ctx.host, ctx.domain
    new = check_descriptor(desc)
    if gaddr & 7 or new is None:
        return -Errno.EINVAL
    mfn = gaddr >> PAGE_SHIFT
    mem = host.mem
    if mfn >= len(mem.type_info) or not d.owns_mfn(mfn) or mfn in d.shared_mfns:
        return -Errno.EINVAL
    if not get_page(host, mfn, d):
        return -Errno.EINVAL
    try:
        info = mem.type_info[mfn]
        want = (PGT_seg_desc_page if info & PGT_count_mask
                and info & PGT_type_mask == PGT_seg_desc_page else PGT_writable_page)
        if not get_page_type(host, mfn, d, want):
            return -Errno.EINVAL
        mem.write_u64(gaddr, new)
        put_page_type(host, mfn)
    finally:
        put_page(host, mfn)
    return 0
