"""PV memory management: a guest changes its own page tables only through Xen.

A PV guest's page-table pages are mapped read-only in its own address space
(the builder maps them so), so it cannot write a page-table entry directly.
``HYPERVISOR_update_va_mapping(va, pte, flags)`` asks Xen to write the L1
entry that maps ``va``. Xen checks the new entry first: the frame must be one
the guest owns or one Xen shares with it (shared_info, grant table frames),
never a frame of another domain, and never a *writable* mapping of one of the
guest's page-table pages. This check is what keeps PV guests isolated even
though they see real machine frame numbers. This is how Mini-OS and Linux map
``shared_info``.

xenlab implements update_va_mapping; mmu_update and mmuext_op (pinning,
new page tables, CR3 switches) are not implemented and return -ENOSYS.

Real Xen: xen/arch/x86/pv/mm.c, xen/arch/x86/mm.c (do_update_va_mapping,
mod_l1_entry, get_page_from_l1e)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenlab.public.errno import Errno

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.page_alloc import HostMemory

__all__ = ["UVMF_INVLPG", "UVMF_TLB_FLUSH", "do_update_va_mapping", "l1e_address"]

UVMF_NONE = 0
UVMF_TLB_FLUSH = 1
UVMF_INVLPG = 2
UVMF_FLUSHTYPE_MASK = 3
_P, _RW, _US, _PS = 1, 2, 4, 0x80
_ADDR = 0x000F_FFFF_FFFF_F000
_L1_DISALLOW_MASK = 0x180 | (0x7FF << 52) & ~(1 << 63)  # PAT/global bits and high bits


def l1e_address(mem: HostMemory, d: Domain, cr3: int, va: int) -> int | None:
    """Machine address of the L1 entry that maps ``va`` (guest_map_l1e), or None."""
    if (va >> 47) not in (0, 0x1FFFF) or (0xFFFF800000000000 <= va < 0xFFFF880000000000):
        return None
    table = cr3 & _ADDR
    for shift in (39, 30, 21):
        if not d.owns_mfn(table >> 12):
            return None
        entry = mem.read_u64(table + ((va >> shift) & 0x1FF) * 8)
        if not entry & _P or entry & _PS:
            return None
        table = entry & _ADDR
    if not d.owns_mfn(table >> 12):
        return None
    return table + ((va >> 12) & 0x1FF) * 8


def do_update_va_mapping(ctx: HypercallContext, va: int, val: int, flags: int) -> int:
    """``long do_update_va_mapping(unsigned long va, u64 val64, unsigned long flags)``"""
    ctx.decode(va=hex(va), val=hex(val), flags=flags)
    d = ctx.domain
    if not d.is_pv:
        return -Errno.ENOSYS
    mem = ctx.host.mem
    if (va >> 47) not in (0, 0x1FFFF) or (0xFFFF800000000000 <= va < 0xFFFF880000000000):
        return -Errno.EINVAL  # non-canonical, or inside Xen's own area
    table = ctx.cpu.reg("cr3") & _ADDR
    for shift in (39, 30, 21):
        if not d.owns_mfn(table >> 12):
            return -Errno.EINVAL
        entry = mem.read_u64(table + ((va >> shift) & 0x1FF) * 8)
        if not entry & _P or entry & _PS:
            return -Errno.EINVAL  # no L1 table maps this address (guest_map_l1e fails)
        table = entry & _ADDR
    if not d.owns_mfn(table >> 12):
        return -Errno.EINVAL
    if val & _P:
        mfn = (val & _ADDR) >> 12
        if not d.owns_mfn(mfn):
            ctx.decode(refused="frame not owned by the domain")
            return -Errno.EINVAL
        if val & _RW and mfn in d.pt_mfns:
            ctx.decode(refused="writable mapping of a page-table page")
            return -Errno.EINVAL
        if val & _L1_DISALLOW_MASK:
            return -Errno.EINVAL
    mem.write_u64(table + ((va >> 12) & 0x1FF) * 8, val)
    if flags & UVMF_FLUSHTYPE_MASK:
        ctx.cpu.flush_tlb()
    return 0
