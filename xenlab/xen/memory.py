"""The memory_op hypercall: a domain's reservation of machine frames.

``XENMEM_increase_reservation`` and ``XENMEM_decrease_reservation`` are the
balloon driver's tools: the guest gives frames back to Xen or asks for more,
up to its ``max_pages`` (``maxmem`` in xl.cfg). ``XENMEM_populate_physmap``
fills guest pfns with fresh frames. A PV guest sees machine frame numbers
(direct paging), so Xen writes the new MFNs back into the guest's array.

Real Xen: xen/common/memory.c (do_memory_op, increase_reservation,
decrease_reservation, populate_physmap), xen/arch/x86/mm.c (arch_memory_op)
"""

from __future__ import annotations

import ctypes
import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.memory import MEMOP_CMD_MASK, MemoryOp, XenMemoryReservation
from xenlab.public.xen import DOMID_SELF, MACH2PHYS_VIRT_END, MACH2PHYS_VIRT_START
from xenlab.xen.domain import INVALID_MFN

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["do_memory_op"]

MAX_ORDER = 9  # a 64-bit PV guest may ask for 2 MiB extents at most (without superpages)
E820_RAM = 1


def _target(ctx: HypercallContext, domid: int) -> Domain | int:
    """rcu_lock_domain_by_any_id + xsm check: self, or anyone if privileged."""
    if domid in (DOMID_SELF, ctx.domain.domid):
        return ctx.domain
    if not ctx.domain.privileged:
        return -Errno.EPERM
    target = ctx.host.domains.get(domid)
    return target if target is not None else -Errno.ESRCH


def _gmfn_to_pfn(d: Domain, mfn: int, count: int) -> int | None:
    """A PV guest names frames by MFN (what increase_reservation wrote back): the M2P lookup.

    The ``count`` frames of an extent must be consecutive in both spaces.
    """
    if mfn == INVALID_MFN or not d.owns_mfn(mfn):
        return None
    pfn = d.mfn_to_pfn(mfn)
    if pfn is None:
        return None
    if any(d.pfn_to_mfn(pfn + i) != mfn + i for i in range(count)):
        return None
    return pfn


def _reservation(ctx: HypercallContext, op: int, arg: int) -> int:
    if ctx.compat:  # struct compat_memory_reservation: 4-byte handle, longs
        raw = ctx.copy_from_guest(arg, 18)
        if raw is None:
            return -Errno.EFAULT
        res = XenMemoryReservation(*struct.unpack("<IIIIH", raw))
    else:
        raw = ctx.copy_from_guest(arg, ctypes.sizeof(XenMemoryReservation))
        if raw is None:
            return -Errno.EFAULT
        res = XenMemoryReservation.from_buffer_copy(raw)
    psize, pfmt = (4, "<I") if ctx.compat else (8, "<Q")
    ctx.decode(nr_extents=res.nr_extents, extent_order=res.extent_order, domid=res.domid,
               extent_start=hex(res.extent_start))
    if res.extent_order > MAX_ORDER or res.nr_extents > (1 << 20):
        return -Errno.EINVAL
    d = _target(ctx, res.domid)
    if isinstance(d, int):
        return d
    pages_per = 1 << res.extent_order
    done = 0
    for i in range(res.nr_extents):
        slot = res.extent_start + psize * i
        if op == MemoryOp.XENMEM_decrease_reservation:
            raw_pfn = ctx.copy_from_guest(slot, psize)
            if raw_pfn is None:
                return done if done else -Errno.EFAULT
            frame = struct.unpack(pfmt, raw_pfn)[0]
            pfn = _gmfn_to_pfn(d, frame, pages_per) if d.is_pv else frame
            if pfn is None:
                break
            if not ctx.host.guest_remove_pages(d, pfn, pages_per):
                break
        else:
            if d.tot_pages + pages_per > d.max_pages:
                break
            gpfn: int | None = None
            if op == MemoryOp.XENMEM_populate_physmap:
                raw_pfn = ctx.copy_from_guest(slot, psize)
                if raw_pfn is None:
                    return done if done else -Errno.EFAULT
                gpfn = struct.unpack(pfmt, raw_pfn)[0]
            mfn = ctx.host.guest_add_pages(d, pages_per, gpfn)
            if mfn is None:
                break
            if d.is_pv and res.extent_start and not ctx.copy_to_guest(
                    slot, struct.pack("<Q", mfn)):
                return done if done else -Errno.EFAULT
        done += 1
    return done


def _memory_map(ctx: HypercallContext, arg: int) -> int:
    # struct xen_memory_map { unsigned int nr_entries; XEN_GUEST_HANDLE(void) buffer; }
    raw = ctx.copy_from_guest(arg, 8 if ctx.compat else 16)
    if raw is None:
        return -Errno.EFAULT
    nr, buf = struct.unpack("<II" if ctx.compat else "<I4xQ", raw)
    entries = ctx.host.guest_e820(ctx.domain)
    if nr < len(entries):
        return -Errno.EINVAL
    # struct e820entry is packed: addr u64, size u64, type u32 -> 20 bytes
    data = b"".join(struct.pack("<QQI", base, size, kind) for base, size, kind in entries)
    if not ctx.copy_to_guest(buf, data) or not ctx.copy_to_guest(
            arg, struct.pack("<I", len(entries))):
        return -Errno.EFAULT
    ctx.decode(nr_entries=len(entries))
    return 0


def _machphys_mfn_list(ctx: HypercallContext, arg: int) -> int:
    """The frames of the M2P table, one per 2 MiB of it (the first frame of each)."""
    # struct xen_machphys_mfn_list { unsigned int max_extents;
    #     XEN_GUEST_HANDLE(xen_pfn_t) extent_start; unsigned int nr_extents; }
    if ctx.compat or not ctx.domain.is_pv:
        return -Errno.ENOSYS
    raw = ctx.copy_from_guest(arg, 24)
    if raw is None:
        return -Errno.EFAULT
    max_extents, handle = struct.unpack("<I4xQ", raw[:16])
    data = ctx.host.m2p_data
    mfns = list(range(data.mfn, data.end, 512))[:max_extents]
    ctx.decode(max_extents=max_extents, nr_extents=len(mfns))
    if mfns and not ctx.copy_to_guest(handle, struct.pack(f"<{len(mfns)}Q", *mfns)):
        return -Errno.EFAULT
    return 0 if ctx.copy_to_guest(arg + 16, struct.pack("<I", len(mfns))) else -Errno.EFAULT


XENMAPSPACE_shared_info = 0
XENMAPSPACE_grant_table = 1


def _add_to_physmap(ctx: HypercallContext, arg: int) -> int:
    """An HVM guest chooses where its shared_info page and grant table frames appear in
    its physical address space (a PV guest maps them with page tables instead)."""
    fmt = "<HHIII" if ctx.compat else "<HHIQQ"
    raw = ctx.copy_from_guest(arg, struct.calcsize(fmt))
    if raw is None:
        return -Errno.EFAULT
    domid, _size, space, idx, gpfn = struct.unpack(fmt, raw)
    ctx.decode(domid=domid, space={0: "XENMAPSPACE_shared_info",
                                   1: "XENMAPSPACE_grant_table"}.get(space, space),
               idx=idx, gpfn=hex(gpfn))
    d = _target(ctx, domid)
    if isinstance(d, int):
        return d
    if d.is_pv:
        return -Errno.EINVAL
    if space == XENMAPSPACE_shared_info and idx == 0:
        mfn = d.shared_info_mfn
    elif space == XENMAPSPACE_grant_table:
        if not ctx.host.gnttab_grow(d, (idx & 0x7FFFFFFF) + 1) or d.grant_table is None:
            return -Errno.EINVAL
        mfn = d.grant_table.frames[idx & 0x7FFFFFFF]
    else:
        return -Errno.ENOSYS
    if mfn is None or gpfn >= 1 << 20:
        return -Errno.EINVAL
    return ctx.host.hvm_map_xen_page(d, gpfn, mfn)


def do_memory_op(ctx: HypercallContext, cmd: int, arg: int) -> int:
    """``long do_memory_op(unsigned long cmd, XEN_GUEST_HANDLE_PARAM(void) arg)``"""
    op = cmd & MEMOP_CMD_MASK
    ctx.decode(cmd=ctx.enum_name(MemoryOp, op), arg=hex(arg))
    if op in (MemoryOp.XENMEM_increase_reservation, MemoryOp.XENMEM_decrease_reservation,
              MemoryOp.XENMEM_populate_physmap):
        return _reservation(ctx, op, arg)
    if op == MemoryOp.XENMEM_maximum_ram_page:
        return ctx.host.mem.total_pages - 1
    if op in (MemoryOp.XENMEM_current_reservation, MemoryOp.XENMEM_maximum_reservation):
        raw = ctx.copy_from_guest(arg, 2)
        if raw is None:
            return -Errno.EFAULT
        domid = struct.unpack("<H", raw)[0]
        ctx.decode(domid=domid)
        d = _target(ctx, domid)
        if isinstance(d, int):
            return d
        return d.tot_pages if op == MemoryOp.XENMEM_current_reservation else d.max_pages
    if op == MemoryOp.XENMEM_memory_map:
        return _memory_map(ctx, arg)
    if op == MemoryOp.XENMEM_add_to_physmap:
        return _add_to_physmap(ctx, arg)
    if op == MemoryOp.XENMEM_machphys_mapping:
        # struct xen_machphys_mapping { xen_ulong_t v_start, v_end, max_mfn; }
        start, end = MACH2PHYS_VIRT_START, MACH2PHYS_VIRT_END
        if ctx.compat or not ctx.domain.is_pv:
            return -Errno.ENOSYS
        data = struct.pack("<QQQ", start, end, ((end - start) >> 3) - 1)
        return 0 if ctx.copy_to_guest(arg, data) else -Errno.EFAULT
    if op == MemoryOp.XENMEM_machphys_mfn_list:
        return _machphys_mfn_list(ctx, arg)
    if op == MemoryOp.XENMEM_maximum_gpfn:
        raw = ctx.copy_from_guest(arg, 2)
        if raw is None:
            return -Errno.EFAULT
        d = _target(ctx, struct.unpack("<H", raw)[0])
        if isinstance(d, int):
            return d
        return d.max_gpfn()
    return -Errno.ENOSYS
