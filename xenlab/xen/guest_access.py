"""copy_from_guest / copy_to_guest: every guest pointer is checked, never trusted.

A hypercall argument is a *guest virtual* address. For a PV guest Xen walks
the guest's own 4-level page tables (CR3 holds a machine address; each entry
holds a machine frame number, because PV guests use direct paging) and
checks, at each level, Present, User (the PV kernel runs in ring 3) and, for
writes, Writable. The final frame must belong to the calling domain (or be a
Xen page shared with it). Anything else is ``-EFAULT`` for the guest, never a
Python exception in the hypervisor.

An HVM or PVH guest passes guest-physical addresses while its paging is off and
linear ones once it sets CR0.PG: Xen then walks the guest's own page tables (32-bit,
PAE or 4-level, whichever CR0, CR4 and EFER select), whose entries hold
guest-physical frames, each read through the P2M (``hvm_linear_to_gpa``).

Real Xen: xen/arch/x86/usercopy.c, xen/include/xen/guest_access.h,
xen/arch/x86/pv/mm.c (guest_get_eff_l1e), xen/arch/x86/hvm/hvm.c
(hvm_copy_from_guest_linear), xen/arch/x86/mm/guest_walk.c (guest_walk_tables)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenlab.xen.page_alloc import PAGE_SIZE

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain
    from xenlab.xen.page_alloc import HostMemory

__all__ = ["GuestFault", "HvmPaging", "copy_from_guest", "copy_to_guest", "guest_va_to_maddr",
           "hvm_linear_to_gpa"]

#: An HVM vCPU's paging registers: (CR0, CR3, CR4, EFER)
HvmPaging = tuple[int, int, int, int]
_CR0_WP, _CR0_PG = 1 << 16, 1 << 31
_CR4_PSE, _CR4_PAE = 1 << 4, 1 << 5
_EFER_LMA = 1 << 10

_P, _RW, _US, _PS = 1, 2, 4, 0x80
_ADDR_MASK = 0x000F_FFFF_FFFF_F000
MAX_COPY = 1 << 20  # no single hypercall argument is larger than 1 MiB


class GuestFault(Exception):
    """A bad guest pointer; hypercall handlers turn it into -EFAULT."""

    def __init__(self, va: int, why: str) -> None:
        super().__init__(f"{va:#x}: {why}")
        self.va = va
        self.why = why


def _canonical(va: int) -> bool:
    top = va >> 47
    return top == 0 or top == 0x1FFFF


def guest_va_to_maddr(mem: HostMemory, d: Domain, cr3: int, va: int, *, write: bool) -> int:
    """Translate one guest virtual address through the PV guest's page tables."""
    if not 0 <= va < (1 << 64) or not _canonical(va):
        raise GuestFault(va, "non-canonical address")
    table = cr3 & _ADDR_MASK
    for shift in (39, 30, 21, 12):
        if not d.owns_mfn(table >> 12):
            raise GuestFault(va, "page table not owned by the domain")
        entry = mem.read_u64(table + ((va >> shift) & 0x1FF) * 8)
        if not entry & _P:
            raise GuestFault(va, "not present")
        if not entry & _US:
            raise GuestFault(va, "supervisor-only mapping")
        if write and not entry & _RW:
            raise GuestFault(va, "read-only mapping")
        if entry & _PS and shift in (30, 21):
            frame = (entry & _ADDR_MASK & ~((1 << shift) - 1)) + (va & ((1 << shift) - 1))
            if not d.owns_mfn(frame >> 12):
                raise GuestFault(va, "frame not owned by the domain")
            return frame
        table = entry & _ADDR_MASK
    if not d.can_access_mfn(table >> 12):
        raise GuestFault(va, "frame not owned by the domain")
    return table | (va & 0xFFF)


def _translate_phys(d: Domain, gpa: int) -> int:
    """HVM/PVH: guest-physical to machine through the P2M."""
    mfn = d.pfn_to_mfn(gpa >> 12)
    if mfn >= (1 << 52) or not d.owns_mfn(mfn):
        raise GuestFault(gpa, "no RAM at this guest-physical address")
    return (mfn << 12) | (gpa & 0xFFF)


def hvm_linear_to_gpa(mem: HostMemory, d: Domain, paging: HvmPaging, va: int, *,
                      write: bool) -> int:
    """guest_walk_tables for an HVM vCPU in ring 0: linear ``va`` to guest-physical
    through the guest's own tables (4-level with EFER.LMA, PAE with CR4.PAE, else
    32-bit with 4 MiB pages if CR4.PSE); a write needs R/W at every level only if CR0.WP
    is set, as for supervisor code on the CPU."""
    cr0, cr3, cr4, efer = paging
    if not cr0 & _CR0_PG:
        return va & 0xFFFF_FFFF
    check_rw = write and bool(cr0 & _CR0_WP)

    def entry(table: int, index: int, size: int) -> int:
        maddr = _translate_phys(d, table + index * size)
        e = mem.read_u64(maddr) if size == 8 else int.from_bytes(mem.read(maddr, 4), "little")
        if not e & _P:
            raise GuestFault(va, "not present in the guest's page tables")
        if check_rw and not e & _RW:
            raise GuestFault(va, "read-only mapping")
        return e

    if efer & _EFER_LMA:
        if not _canonical(va):
            raise GuestFault(va, "non-canonical address")
        table = cr3 & _ADDR_MASK
        for shift in (39, 30, 21, 12):
            e = entry(table, (va >> shift) & 0x1FF, 8)
            if e & _PS and shift in (30, 21):
                return (e & _ADDR_MASK & ~((1 << shift) - 1)) | (va & ((1 << shift) - 1))
            table = e & _ADDR_MASK
        return table | (va & 0xFFF)
    va &= 0xFFFF_FFFF
    if cr4 & _CR4_PAE:
        pdpte = entry(cr3 & 0xFFFF_FFE0, va >> 30, 8)   # no R/W in a PDPTE
        pde = entry(pdpte & _ADDR_MASK, (va >> 21) & 0x1FF, 8)
        if pde & _PS:
            return (pde & _ADDR_MASK & ~0x1F_FFFF) | (va & 0x1F_FFFF)
        return (entry(pde & _ADDR_MASK, (va >> 12) & 0x1FF, 8) & _ADDR_MASK) | (va & 0xFFF)
    pde = entry(cr3 & 0xFFFF_F000, va >> 22, 4)
    if pde & _PS and cr4 & _CR4_PSE:
        return ((pde & 0xFFC0_0000) | ((pde >> 13 & 0xFF) << 32)) + (va & 0x3F_FFFF)
    return (entry(pde & 0xFFFF_F000, (va >> 12) & 0x3FF, 4) & 0xFFFF_F000) | (va & 0xFFF)


def _chunks(mem: HostMemory, d: Domain, cr3: int | None, va: int, size: int,
            write: bool, hvm: HvmPaging | None = None) -> list[tuple[int, int]]:
    if size < 0 or size > MAX_COPY:
        raise GuestFault(va, f"size {size} out of range")
    out = []
    done = 0
    while done < size:
        cur = va + done
        n = min(size - done, PAGE_SIZE - (cur & 0xFFF))
        if cr3 is None:
            maddr = _translate_phys(d, cur if hvm is None else
                                    hvm_linear_to_gpa(mem, d, hvm, cur, write=write))
        else:
            maddr = guest_va_to_maddr(mem, d, cr3, cur, write=write)
        out.append((maddr, n))
        done += n
    return out


def copy_from_guest(mem: HostMemory, d: Domain, cr3: int | None, va: int, size: int, *,
                    hvm: HvmPaging | None = None) -> bytes:
    """Read ``size`` bytes at guest address ``va`` (cr3=None: an HVM guest's address,
    guest-physical, or linear through its page tables if ``hvm`` says paging is on)."""
    return b"".join(mem.read(m, n) for m, n in _chunks(mem, d, cr3, va, size, False, hvm))


def copy_to_guest(mem: HostMemory, d: Domain, cr3: int | None, va: int, data: bytes, *,
                  hvm: HvmPaging | None = None) -> None:
    """Write ``data`` at guest address ``va``; all pages are checked before any byte lands."""
    chunks = _chunks(mem, d, cr3, va, len(data), True, hvm)
    pos = 0
    for maddr, n in chunks:
        mem.write(maddr, data[pos : pos + n])
        pos += n
