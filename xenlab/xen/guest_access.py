"""copy_from_guest / copy_to_guest: every guest pointer is checked, never trusted.

A hypercall argument is a *guest virtual* address. For a PV guest Xen walks
the guest's own 4-level page tables (CR3 holds a machine address; each entry
holds a machine frame number, because PV guests use direct paging) and
checks, at each level, Present, User (the PV kernel runs in ring 3) and, for
writes, Writable. The final frame must belong to the calling domain (or be a
Xen page shared with it). Anything else is ``-EFAULT`` for the guest, never a
Python exception in the hypervisor.

Real Xen: xen/arch/x86/usercopy.c, xen/include/xen/guest_access.h,
xen/arch/x86/pv/mm.c (guest_get_eff_l1e)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenlab.xen.page_alloc import PAGE_SIZE

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain
    from xenlab.xen.page_alloc import HostMemory

__all__ = ["GuestFault", "copy_from_guest", "copy_to_guest", "guest_va_to_maddr"]

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


def _chunks(mem: HostMemory, d: Domain, cr3: int | None, va: int, size: int,
            write: bool) -> list[tuple[int, int]]:
    if size < 0 or size > MAX_COPY:
        raise GuestFault(va, f"size {size} out of range")
    out = []
    done = 0
    while done < size:
        cur = va + done
        n = min(size - done, PAGE_SIZE - (cur & 0xFFF))
        if cr3 is None:
            maddr = _translate_phys(d, cur)
        else:
            maddr = guest_va_to_maddr(mem, d, cr3, cur, write=write)
        out.append((maddr, n))
        done += n
    return out


def copy_from_guest(mem: HostMemory, d: Domain, cr3: int | None, va: int, size: int) -> bytes:
    """Read ``size`` bytes at guest address ``va`` (cr3=None: guest-physical, HVM)."""
    return b"".join(mem.read(m, n) for m, n in _chunks(mem, d, cr3, va, size, False))


def copy_to_guest(mem: HostMemory, d: Domain, cr3: int | None, va: int, data: bytes) -> None:
    """Write ``data`` at guest address ``va``; all pages are checked before any byte lands."""
    chunks = _chunks(mem, d, cr3, va, len(data), True)
    pos = 0
    for maddr, n in chunks:
        mem.write(maddr, data[pos : pos + n])
        pos += n
