"""Page reference counts and PV memory management: who may use a frame, and as what.

Every machine frame has two counts in the frame table (``xenlab/xen/page_alloc.py``):

- the **general count** (``count_info``): every use of the frame holds one reference,
  taken with ``get_page`` and dropped with ``put_page``: the owner's allocation
  (``PGC_allocated``), each page-table entry that maps it, each grant mapping, each
  foreign mapping Dom0 makes, each view Xen keeps of it (the ioreq page), a pin, a
  vCPU's CR3. ``get_page`` fails unless the frame belongs to the domain named (or is a
  Xen page shared with it). The frame goes back to the heap only when the last
  reference is dropped, so it can never reach another domain while anyone maps it.
- the **type count** (``type_info``): what the frame is used as. A page table of level
  1 to 4, a descriptor table, or *writable*. ``get_page_type`` fails if the frame has
  another type with a non-zero count: a frame is a page table or writable, never both.
  That is what keeps a PV guest (which sees machine frame numbers) from ever getting a
  writable mapping of a page table, its own or through another domain's grant: giving
  a frame a page-table type *validates* it (every entry must itself be a frame the
  domain may map, with the type its level requires), and every writable mapping, by
  the guest's page tables, by a grant or by Dom0, needs the writable type.

A PV guest's page-table pages are mapped read-only in its own address space, so it
cannot write a page-table entry directly; it asks Xen (the PV MMU):

- ``mmu_update`` writes entries by machine address (``mod_entry``: the new entry's
  references are taken before it is written, the old entry's dropped after) and
  updates the machine-to-phys table (``MMU_MACHPHYS_UPDATE``);
- ``update_va_mapping`` writes the L1 entry that maps one virtual address;
- ``mmuext_op`` pins and unpins tables (pinning validates the whole tree below),
  switches the kernel and user base pointers (CR3), flushes TLBs, sets the LDT;
- a plain store into one of its own L1 tables faults and is emulated and validated
  (``ptwr_do_page_fault``, Xen's writable page tables).

The domain builder pins the guest's L4 table (``pin_page_table``), as xc_dom_boot does.
A superpage entry (``_PAGE_PSE``) and a table that maps itself (a linear page table)
are refused where Xen would accept them under conditions.

Real Xen: xen/arch/x86/mm.c (get_page, put_page, get_page_type, put_page_type,
get_page_from_l1e, mod_l1_entry, alloc_l1_table..alloc_l4_table), xen/arch/x86/pv/mm.c,
xen/common/page_alloc.c (free_domheap_pages)
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.xen import (
    DOMID_SELF,
    DOMID_XEN,
    MMU_MACHPHYS_UPDATE,
    MMU_NORMAL_PT_UPDATE,
    MMU_PT_UPDATE_PRESERVE_AD,
    MmuextCmd,
)
from xenlab.xen.page_alloc import (
    PAGE_SHIFT,
    PAGE_SIZE,
    Extent,
    PGC_allocated,
    PGC_count_mask,
    PGT_count_mask,
    PGT_l1_page_table,
    PGT_l2_page_table,
    PGT_l3_page_table,
    PGT_l4_page_table,
    PGT_pinned,
    PGT_type_mask,
    PGT_writable_page,
)

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain, Vcpu
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.page_alloc import HostMemory
    from xenlab.xen.setup import XenHost

__all__ = [
    "UVMF_INVLPG",
    "UVMF_TLB_FLUSH",
    "_PAGE_GNTTAB",
    "do_mmu_update",
    "do_mmuext_op",
    "do_update_va_mapping",
    "free_domheap_page",
    "get_page",
    "get_page_and_type",
    "get_page_from_l1e",
    "get_page_type",
    "l1e_address",
    "mod_entry",
    "pin_page_table",
    "ptwr_do_page_fault",
    "put_page",
    "put_page_and_type",
    "put_page_from_l1e",
    "put_page_type",
]

UVMF_NONE = 0
UVMF_TLB_FLUSH = 1
UVMF_INVLPG = 2
UVMF_FLUSHTYPE_MASK = 3
_P, _RW, _US, _PS = 1, 2, 4, 0x80
_ADDR = 0x000F_FFFF_FFFF_F000
#: a grant mapping's PTE (bit 62, ``_PAGE_GNTTAB`` as get_pte_flags places it): its
#: references belong to the grant, not to the page table; guests may not set it
_PAGE_GNTTAB = 1 << 62
_AD = 0x60  # accessed, dirty: the CPU sets them in page tables by itself
# What a guest may set in an entry (arch_init_memory's base_disallow_mask): present, RW,
# user, accessed, dirty, the available bits (9-11 and 52-62) and NX; an L1 entry also
# global but not bit 62 (_PAGE_GNTTAB). Cache attributes (PWT, PCD, PAT) are for domains
# with I/O memory, and PSE (superpages) for none.
_ALLOWED_BASE = 0x1 | 0x2 | 0x4 | 0x20 | 0x40 | 0xE00 | (0x7FF << 52) | (1 << 63)
_L1_DISALLOW_MASK = ~(_ALLOWED_BASE | 0x100 | _ADDR) & ((1 << 64) - 1) | _PAGE_GNTTAB
_LN_DISALLOW_MASK = ~(_ALLOWED_BASE | _ADDR) & ((1 << 64) - 1)
L4_XEN_SLOTS = range(256, 272)          # Xen's own L4 slots: never a guest's to validate
PT_TYPES = {1: PGT_l1_page_table, 2: PGT_l2_page_table, 3: PGT_l3_page_table,
            4: PGT_l4_page_table}
_LEVEL_OF = {t: level for level, t in PT_TYPES.items()}


# ============================================================== general references
def _may_use(mem: HostMemory, mfn: int, d: Domain) -> bool:
    owner = mem.owner[mfn]
    return owner == d.domid or (owner == DOMID_XEN and mfn in d.shared_mfns)


def get_page(host: XenHost, mfn: int, d: Domain) -> bool:
    """Take a general reference to ``mfn`` on behalf of ``d``: it must be an allocated
    frame of ``d``'s (or a Xen page shared with ``d``)."""
    mem = host.mem
    if not 0 <= mfn < mem.total_pages:
        return False
    count = mem.count_info[mfn]
    if not count & PGC_count_mask or not _may_use(mem, mfn, d):
        return False
    mem.count_info[mfn] = count + 1
    return True


def put_page(host: XenHost, mfn: int) -> None:
    """Drop a general reference; the last one sends the frame back to the heap."""
    mem = host.mem
    count = mem.count_info[mfn]
    assert count & PGC_count_mask, f"put_page of mfn {mfn:#x} with no reference"
    count -= 1
    mem.count_info[mfn] = count
    if not count & PGC_count_mask:
        free_domheap_page(host, mfn)


def free_domheap_page(host: XenHost, mfn: int) -> None:
    """The frame's last reference is gone: take it from its owner and scrub it."""
    mem = host.mem
    owner = mem.owner[mfn]
    d = host.domains.get(owner) or host.zombies.get(owner)
    if d is not None:
        if owner != DOMID_XEN:
            _drop_from_extents(d, mfn)
            if d.is_pv:
                for v in d.vcpus:
                    if v.cpu is not None:
                        v.cpu.unmap(mfn << PAGE_SHIFT, PAGE_SIZE)
                        v.cpu.flush_tlb()
        if owner in host.zombies and not d.extents:
            del host.zombies[owner]
    mem.free([Extent(mfn, 1)])


def _drop_from_extents(d: Domain, mfn: int) -> None:
    new: list[Extent] = []
    for ext in d.extents:
        if ext.mfn <= mfn < ext.end:
            if ext.mfn < mfn:
                new.append(Extent(ext.mfn, mfn - ext.mfn))
            if mfn + 1 < ext.end:
                new.append(Extent(mfn + 1, ext.end - mfn - 1))
        else:
            new.append(ext)
    d.extents = new


# ============================================================== type references
def get_page_type(host: XenHost, mfn: int, d: Domain, type_: int) -> bool:
    """Take a type reference: the frame is used as ``type_`` (a page-table level or
    writable). A frame with another type in use refuses; a frame becoming a page table
    is validated first. The caller holds a general reference."""
    mem = host.mem
    info = mem.type_info[mfn]
    if info & PGT_count_mask:
        if info & PGT_type_mask != type_:
            return False
        mem.type_info[mfn] = info + 1
        return True
    # the frame's first use of this kind: a page table must be validated
    mem.type_info[mfn] = type_ | 1
    level = _LEVEL_OF.get(type_)
    if level is not None:
        mem.pt_frames.add(mfn)
        if not _alloc_page_table(host, d, mfn, level):
            mem.type_info[mfn] = 0
            mem.pt_frames.discard(mfn)
            return False
    return True


def put_page_type(host: XenHost, mfn: int) -> None:
    """Drop a type reference; a page table whose last one goes drops its entries'."""
    mem = host.mem
    info = mem.type_info[mfn]
    assert info & PGT_count_mask, f"put_page_type of mfn {mfn:#x} with no type reference"
    if info & PGT_count_mask > 1:
        mem.type_info[mfn] = info - 1
        return
    level = _LEVEL_OF.get(info & PGT_type_mask)
    mem.type_info[mfn] = 0
    if level is not None:
        mem.pt_frames.discard(mfn)
        owner = host.domains.get(mem.owner[mfn]) or host.zombies.get(mem.owner[mfn])
        _free_page_table(host, owner, mfn, level)


def get_page_and_type(host: XenHost, mfn: int, d: Domain, type_: int) -> bool:
    if not get_page(host, mfn, d):
        return False
    if not get_page_type(host, mfn, d, type_):
        put_page(host, mfn)
        return False
    return True


def put_page_and_type(host: XenHost, mfn: int) -> None:
    put_page_type(host, mfn)
    put_page(host, mfn)


# ============================================================== page-table entries
def get_page_from_l1e(host: XenHost, d: Domain, l1e: int) -> str | None:
    """The references a new L1 entry needs; None if granted, or why it is refused."""
    if not l1e & _P:
        return None
    if l1e & _L1_DISALLOW_MASK:
        return "reserved bits set in the entry"
    mfn = (l1e & _ADDR) >> PAGE_SHIFT
    if not get_page(host, mfn, d):
        return "frame not owned by the domain"
    if l1e & _RW and not get_page_type(host, mfn, d, PGT_writable_page):
        put_page(host, mfn)
        return "writable mapping of a page-table page"
    return None


def put_page_from_l1e(host: XenHost, l1e: int) -> None:
    if not l1e & _P or l1e & _PAGE_GNTTAB:
        return  # a grant mapping's references belong to the grant
    mfn = (l1e & _ADDR) >> PAGE_SHIFT
    if l1e & _RW:
        put_page_type(host, mfn)
    put_page(host, mfn)


def adjust_guest_entry(entry: int) -> int:
    """adjust_guest_l1e .. l4e: a 64-bit PV kernel runs in ring 3, so Xen makes every
    present entry of its page tables user-accessible (``_PAGE_USER``)."""
    return entry | _US if entry & _P else entry


def _table_entries(mem: HostMemory, mfn: int) -> tuple[int, ...]:
    return struct.unpack("<512Q", mem.read(mfn << PAGE_SHIFT, PAGE_SIZE))


def _entry_slots(level: int) -> range | list[int]:
    return [i for i in range(512) if i not in L4_XEN_SLOTS] if level == 4 else range(512)


def _get_page_from_entry(host: XenHost, d: Domain, entry: int, level: int) -> bool:
    if level == 1:
        return get_page_from_l1e(host, d, entry) is None
    if entry & _LN_DISALLOW_MASK or entry & _PS:
        return False
    return get_page_and_type(host, (entry & _ADDR) >> PAGE_SHIFT, d, PT_TYPES[level - 1])


def _put_page_from_entry(host: XenHost, entry: int, level: int) -> None:
    if level == 1:
        put_page_from_l1e(host, entry)
    else:
        put_page_and_type(host, (entry & _ADDR) >> PAGE_SHIFT)


def _alloc_page_table(host: XenHost, d: Domain, mfn: int, level: int) -> bool:
    """alloc_l1_table .. alloc_l4_table: take every present entry's references, or none."""
    mem = host.mem
    entries = _table_entries(mem, mfn)
    taken: list[int] = []
    for i in _entry_slots(level):
        e = entries[i]
        if not e & _P:
            continue
        if not _get_page_from_entry(host, d, e, level):
            for done in reversed(taken):
                _put_page_from_entry(host, done, level)
            return False
        taken.append(e)
        if not e & _US:
            mem.write_u64((mfn << PAGE_SHIFT) + 8 * i, adjust_guest_entry(e))
    if level == 4:
        host.init_xen_l4_slots(mfn)
    return True


def _free_page_table(host: XenHost, d: Domain | None, mfn: int, level: int) -> None:
    entries = _table_entries(host.mem, mfn)
    for i in _entry_slots(level):
        if entries[i] & _P:
            _put_page_from_entry(host, entries[i], level)


def pin_page_table(host: XenHost, d: Domain, mfn: int, level: int) -> bool:
    """MMUEXT_PIN_L<level>_TABLE: validate the table and keep it typed while pinned."""
    mem = host.mem
    if mem.type_info[mfn] & PGT_pinned or not get_page_and_type(host, mfn, d,
                                                               PT_TYPES[level]):
        return False
    mem.type_info[mfn] |= PGT_pinned
    return True


def unpin_page_table(host: XenHost, mfn: int) -> bool:
    """MMUEXT_UNPIN_TABLE (and guest_remove_page's implicit unpin)."""
    mem = host.mem
    if not mem.type_info[mfn] & PGT_pinned:
        return False
    mem.type_info[mfn] &= ~PGT_pinned
    put_page_and_type(host, mfn)
    return True


def is_page_table(mem: HostMemory, mfn: int) -> bool:
    return mfn in mem.pt_frames


# ============================================================== update_va_mapping
def l1e_address(mem: HostMemory, d: Domain, cr3: int, va: int) -> int | None:
    """Machine address of the L1 entry that maps ``va`` (guest_map_l1e), or None.

    Every table on the way must be one of the domain's validated page tables."""
    if (va >> 47) not in (0, 0x1FFFF) or (0xFFFF800000000000 <= va < 0xFFFF880000000000):
        return None
    table = cr3 & _ADDR
    for shift, want in ((39, PGT_l4_page_table), (30, PGT_l3_page_table),
                        (21, PGT_l2_page_table)):
        mfn = table >> PAGE_SHIFT
        if not d.owns_mfn(mfn) or mem.type_info[mfn] & PGT_type_mask != want:
            return None
        entry = mem.read_u64(table + ((va >> shift) & 0x1FF) * 8)
        if not entry & _P or entry & _PS:
            return None
        table = entry & _ADDR
    mfn = table >> PAGE_SHIFT
    if not d.owns_mfn(mfn) or mem.type_info[mfn] & PGT_type_mask != PGT_l1_page_table:
        return None
    return table + ((va >> 12) & 0x1FF) * 8


def do_update_va_mapping(ctx: HypercallContext, va: int, val: int, flags: int) -> int:
    """``long do_update_va_mapping(unsigned long va, u64 val64, unsigned long flags)``"""
    ctx.decode(va=hex(va), val=hex(val), flags=flags)
    d = ctx.domain
    if not d.is_pv:
        return -Errno.ENOSYS
    host = ctx.host
    mem = host.mem
    if (va >> 47) not in (0, 0x1FFFF) or (0xFFFF800000000000 <= va < 0xFFFF880000000000):
        return -Errno.EINVAL  # non-canonical, or inside Xen's own area
    l1e = l1e_address(mem, d, ctx.cpu.reg("cr3"), va)
    if l1e is None:
        return -Errno.EINVAL  # no L1 table of the guest's maps this address
    old = mem.read_u64(l1e)
    if old & _P and old & _PAGE_GNTTAB:
        ctx.decode(refused="the entry is a grant mapping (unmap the grant)")
        return -Errno.EINVAL
    why = get_page_from_l1e(host, d, val)
    if why is not None:
        ctx.decode(refused=why)
        return -Errno.EINVAL
    mem.write_u64(l1e, adjust_guest_entry(val))
    put_page_from_l1e(host, old)
    if flags & UVMF_FLUSHTYPE_MASK:
        ctx.cpu.flush_tlb()
    return 0


# ============================================================== mmu_update
def _pg_owner(ctx: HypercallContext, foreigndom: int) -> Domain | int:
    """get_pg_owner: whose pages the requests name (the caller's unless it is privileged)."""
    d = ctx.domain
    dom = foreigndom & 0xFFFF
    if dom in (DOMID_SELF, d.domid):
        return d
    if not d.privileged:
        return -Errno.EPERM
    other = ctx.host.domains.get(dom)
    return other if other is not None else -Errno.ESRCH


def mod_entry(host: XenHost, d: Domain, maddr: int, new: int, level: int) -> str | None:
    """mod_l1_entry .. mod_l4_entry: write one entry of a validated table, the new entry's
    references taken first and the old one's dropped after. None, or why it is refused."""
    mem = host.mem
    if level == 4 and (maddr & 0xFFF) >> 3 in L4_XEN_SLOTS:
        return "an entry of Xen's own L4 slots"
    old = mem.read_u64(maddr)
    new = adjust_guest_entry(new)
    if level == 1:
        if old & _P and old & _PAGE_GNTTAB:
            return "the entry is a grant mapping (unmap the grant)"
        why = get_page_from_l1e(host, d, new)
        if why is not None:
            return why
    elif new & _P and not _get_page_from_entry(host, d, new, level):
        return f"the new L{level} entry does not name a valid L{level - 1} table of the domain"
    mem.write_u64(maddr, new)
    if old & _P:
        _put_page_from_entry(host, old, level)
    return None


def _flush_domain(d: Domain) -> None:
    for v in d.vcpus:
        if v.cpu is not None:
            v.cpu.flush_tlb()


def do_mmu_update(ctx: HypercallContext, ureqs: int, count: int, pdone: int,
                  foreigndom: int) -> int:
    """``long do_mmu_update(XEN_GUEST_HANDLE_PARAM(mmu_update_t) ureqs, unsigned int count,
    XEN_GUEST_HANDLE_PARAM(uint) pdone, unsigned int foreigndom)``

    Each request is ``{uint64 ptr; uint64 val}``; the low two bits of ``ptr`` say what it
    is: MMU_NORMAL_PT_UPDATE (``*ptr = val`` on one of the domain's page tables,
    validated), MMU_MACHPHYS_UPDATE (the M2P entry of frame ``ptr >> 12`` becomes
    ``val``)."""
    count &= 0x7FFFFFFF  # MMU_UPDATE_PREEMPTED
    ctx.decode(count=count, foreigndom=foreigndom)
    d = ctx.domain
    if not d.is_pv:
        return -Errno.ENOSYS
    pg_owner = _pg_owner(ctx, foreigndom)
    if isinstance(pg_owner, int):
        return pg_owner
    if count > 1 << 20:
        return -Errno.EINVAL
    host = ctx.host
    mem = host.mem
    rc = 0
    done = 0
    for i in range(count):
        raw = ctx.copy_from_guest(ureqs + 16 * i, 16)
        if raw is None:
            rc = -Errno.EFAULT
            break
        ptr, val = struct.unpack("<QQ", raw)
        if i == 0:     # the first request, as xentrace's PV_PTWR/mmu_update records show
            ctx.decode(ptr=f"{ptr:#x}", val=f"{val:#x}")
        cmd = ptr & 3
        if cmd in (MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD):
            maddr = ptr & ~7 & ((1 << 52) - 1)
            mfn = maddr >> PAGE_SHIFT
            if not get_page(host, mfn, d):
                ctx.decode(refused=f"ptr {ptr:#x}: not a frame of the domain's")
                rc = -Errno.EINVAL
                break
            level = _LEVEL_OF.get(mem.type_info[mfn] & PGT_type_mask) if (
                mem.type_info[mfn] & PGT_count_mask) else None
            if level is not None:
                why = mod_entry(host, pg_owner, maddr, val, level)
            elif get_page_type(host, mfn, d, PGT_writable_page):
                mem.write_u64(maddr, val)        # not a page table: a plain write
                put_page_type(host, mfn)
                why = None
            else:
                why = "the frame is in use as a descriptor table"
            put_page(host, mfn)
            if why is not None:
                ctx.decode(refused=f"ptr {ptr:#x} val {val:#x}: {why}")
                rc = -Errno.EINVAL
                break
        elif cmd == MMU_MACHPHYS_UPDATE:
            mfn = ptr >> PAGE_SHIFT
            m2p = mem.m2p
            if m2p is None or not get_page(host, mfn, pg_owner):
                ctx.decode(refused=f"mfn {mfn:#x}: not a frame of the domain's")
                rc = -Errno.EINVAL
                break
            m2p[mfn] = val & ((1 << 64) - 1)
            put_page(host, mfn)
        else:
            rc = -Errno.ENOSYS
            break
        done += 1
    _flush_domain(d)
    ctx.decode(done=done)
    if pdone and not ctx.copy_to_guest(pdone, struct.pack("<I", done)):
        return -Errno.EFAULT
    return rc


# ============================================================== mmuext_op
MMUEXT_OP = struct.Struct("<I4xQQ")  # cmd, arg1 (mfn / linear_addr), arg2 (nr_ents / src_mfn)
_PIN_LEVEL = {MmuextCmd.MMUEXT_PIN_L1_TABLE: 1, MmuextCmd.MMUEXT_PIN_L2_TABLE: 2,
              MmuextCmd.MMUEXT_PIN_L3_TABLE: 3, MmuextCmd.MMUEXT_PIN_L4_TABLE: 4}
_FLUSHES = {MmuextCmd.MMUEXT_TLB_FLUSH_LOCAL, MmuextCmd.MMUEXT_INVLPG_LOCAL,
            MmuextCmd.MMUEXT_TLB_FLUSH_MULTI, MmuextCmd.MMUEXT_INVLPG_MULTI,
            MmuextCmd.MMUEXT_TLB_FLUSH_ALL, MmuextCmd.MMUEXT_INVLPG_ALL}
LDT_ENTRY_SIZE = 8


def _new_baseptr(host: XenHost, v: Vcpu, mfn: int, user: bool) -> int:
    """new_guest_cr3 / MMUEXT_NEW_USER_BASEPTR: the vCPU's kernel (or user) L4."""
    d = v.domain
    old = v.guest_table_user if user else v.guest_table
    if mfn == old:
        return 0
    if (mfn or not user) and not get_page_and_type(host, mfn, d, PGT_l4_page_table):
        return -Errno.EINVAL
    if user:
        v.guest_table_user = mfn
    else:
        v.guest_table = mfn
    if v.cpu is not None and v.user_mode == user:
        host.pv_switch_cr3(v)
    if old:
        put_page_and_type(host, old)
    return 0


def _mmuext_one(ctx: HypercallContext, pg_owner: Domain, cmd: int, arg1: int,
                arg2: int) -> int:
    host = ctx.host
    d = ctx.domain
    v = ctx.vcpu
    level = _PIN_LEVEL.get(cmd)  # type: ignore[call-overload]
    if level is not None:
        if pg_owner is not d:
            return -Errno.EPERM
        if not 0 <= arg1 < host.mem.total_pages or host.mem.owner[arg1] != d.domid:
            return -Errno.EINVAL
        return 0 if pin_page_table(host, d, arg1, level) else -Errno.EINVAL
    if cmd == MmuextCmd.MMUEXT_UNPIN_TABLE:
        if not (0 <= arg1 < host.mem.total_pages) or host.mem.owner[arg1] != pg_owner.domid:
            return -Errno.EINVAL
        return 0 if unpin_page_table(host, arg1) else -Errno.EINVAL
    if cmd in (MmuextCmd.MMUEXT_NEW_BASEPTR, MmuextCmd.MMUEXT_NEW_USER_BASEPTR):
        if pg_owner is not d:
            return -Errno.EPERM
        return _new_baseptr(host, v, arg1, cmd == MmuextCmd.MMUEXT_NEW_USER_BASEPTR)
    if cmd in _FLUSHES:
        targets = [v] if cmd in (MmuextCmd.MMUEXT_TLB_FLUSH_LOCAL,
                                 MmuextCmd.MMUEXT_INVLPG_LOCAL) else d.vcpus
        for t in targets:
            if t.cpu is not None:
                t.cpu.flush_tlb()
        return 0
    if cmd in (MmuextCmd.MMUEXT_FLUSH_CACHE, MmuextCmd.MMUEXT_FLUSH_CACHE_GLOBAL):
        return -Errno.EACCES if not d.privileged else 0
    if cmd == MmuextCmd.MMUEXT_SET_LDT:
        base, ents = arg1, arg2
        if (ents > 8192 or base & 0xFFF or (base >> 47) not in (0, 0x1FFFF)
                or 0xFFFF800000000000 <= base < 0xFFFF880000000000):
            return -Errno.EINVAL
        v.ldt = (base, ents)
        return 0
    if cmd in (MmuextCmd.MMUEXT_CLEAR_PAGE, MmuextCmd.MMUEXT_COPY_PAGE):
        if not get_page_and_type(host, arg1, pg_owner, PGT_writable_page):
            return -Errno.EINVAL
        try:
            if cmd == MmuextCmd.MMUEXT_CLEAR_PAGE:
                host.mem.write(arg1 << PAGE_SHIFT, bytes(PAGE_SIZE))
                return 0
            if not get_page(host, arg2, pg_owner):
                return -Errno.EINVAL
            host.mem.write(arg1 << PAGE_SHIFT, host.mem.read(arg2 << PAGE_SHIFT, PAGE_SIZE))
            put_page(host, arg2)
            return 0
        finally:
            put_page_and_type(host, arg1)
    if cmd in (MmuextCmd.MMUEXT_MARK_SUPER, MmuextCmd.MMUEXT_UNMARK_SUPER):
        return -Errno.EOPNOTSUPP  # superpage support left Xen in 4.13
    return -Errno.ENOSYS


def do_mmuext_op(ctx: HypercallContext, uops: int, count: int, pdone: int,
                 foreigndom: int) -> int:
    """``long do_mmuext_op(XEN_GUEST_HANDLE_PARAM(mmuext_op_t) uops, unsigned int count,
    XEN_GUEST_HANDLE_PARAM(uint) pdone, unsigned int foreigndom)``: pin and unpin page
    tables, switch the base pointer, flush TLBs, set the LDT. Stops at the first error."""
    count &= 0x7FFFFFFF
    ctx.decode(count=count, foreigndom=foreigndom)
    if not ctx.domain.is_pv:
        return -Errno.ENOSYS
    pg_owner = _pg_owner(ctx, foreigndom)
    if isinstance(pg_owner, int):
        return pg_owner
    if count > 1 << 20:
        return -Errno.EINVAL
    rc = 0
    done = 0
    cmds: list[str | int] = []
    for i in range(count):
        raw = ctx.copy_from_guest(uops + MMUEXT_OP.size * i, MMUEXT_OP.size)
        if raw is None:
            rc = -Errno.EFAULT
            break
        cmd, arg1, arg2 = MMUEXT_OP.unpack(raw)
        cmds.append(ctx.enum_name(MmuextCmd, cmd))
        rc = _mmuext_one(ctx, pg_owner, cmd, arg1, arg2)
        if rc:
            ctx.decode(failed={"cmd": cmds[-1], "arg1": hex(arg1)})
            break
        done += 1
    ctx.decode(ops=cmds if len(cmds) <= 8 else [*cmds[:8], "..."], done=done)
    if pdone and not ctx.copy_to_guest(pdone, struct.pack("<I", done)):
        return -Errno.EFAULT
    return rc


# ============================================================== ptwr
def ptwr_do_page_fault(host: XenHost, v: Vcpu, cr2: int, error_code: int | None = None
                       ) -> bool:
    """Writable page tables (ptwr_do_page_fault): the guest wrote straight into one of its
    own L1 tables, which are mapped read-only. Xen emulates the one store and validates
    the new entry as mmu_update would; True if it did (the guest goes on after the
    store), False for a real page fault (the guest's handler gets it).

    xenlab emulates by running the faulting instruction once with that mapping made
    writable, then takes the entry it changed back out, and writes it through
    ``mod_entry``; an instruction that changed more than one entry is refused."""
    d = v.domain
    cpu = v.cpu
    if not d.is_pv or cpu is None or (error_code is not None and error_code & 3 != 3):
        return False
    mem = host.mem
    pte_at = l1e_address(mem, d, cpu.reg("cr3"), cr2)
    if pte_at is None:
        return False
    pte = mem.read_u64(pte_at)
    target = (pte & _ADDR) >> PAGE_SHIFT
    if (not pte & _P or pte & _RW or mem.owner[target] != d.domid
            or mem.type_info[target] & PGT_type_mask != PGT_l1_page_table
            or not mem.type_info[target] & PGT_count_mask):
        return False
    before = mem.read(target << PAGE_SHIFT, PAGE_SIZE)
    budget = (cpu.slice_budget, cpu.budget.left)
    state = cpu.save_state()
    mem.write_u64(pte_at, pte | _RW)
    cpu.flush_tlb()
    rip = cpu.reg("rip")
    cpu.invalidate_code(rip, rip + 16)  # a block translated without the step's counter
    try:
        result = cpu.step()
    finally:
        mem.write_u64(pte_at, pte)
        cpu.flush_tlb()
        cpu.slice_budget, cpu.budget.left = budget
    after = mem.read(target << PAGE_SHIFT, PAGE_SIZE)
    # the entries the store changed; the CPU's own accessed/dirty updates (it walks this
    # table too, and may set them at any time) do not count
    olds = struct.unpack("<512Q", before)
    news = struct.unpack("<512Q", after)
    changed = [8 * i for i in range(512) if (olds[i] ^ news[i]) & ~_AD]
    for i in changed:
        mem.write_u64((target << PAGE_SHIFT) + i, olds[i // 8])
    why = None
    if result.vector is not None:
        why = "the store faulted"
    elif len(changed) > 1:
        why = "it changed more than one entry: " + ", ".join(
            f"{i // 8}: {int.from_bytes(before[i:i + 8], 'little'):#x} -> "
            f"{int.from_bytes(after[i:i + 8], 'little'):#x}" for i in changed[:4])
    elif changed:
        at = (target << PAGE_SHIFT) + changed[0]
        new = int.from_bytes(after[changed[0]:changed[0] + 8], "little")
        why = mod_entry(host, d, at, new, 1)
    if why is not None:
        # as if it never ran: the #PF goes to the guest at the store, as Xen's does
        cpu.restore_state(state)
        host.log.printk(f"d{d.domid}v{v.vcpu_id} ptwr: store at {cr2:#x} refused: {why}")
        return False
    if changed:
        _flush_domain(d)
    return True


def do_update_va_mapping_otherdomain(ctx: HypercallContext, va: int, val: int, flags: int,
                                     domid: int) -> int:
    """``long do_update_va_mapping_otherdomain(unsigned long va, u64 val64, unsigned long
    flags, domid_t domid)``: update_va_mapping with the frame named in ``domid``'s
    space; another domain's only for a privileged caller (get_pg_owner)."""
    ctx.decode(domid=domid & 0xFFFF)
    owner = _pg_owner(ctx, domid)
    if isinstance(owner, int):
        return owner
    if owner is not ctx.domain:
        return -Errno.EPERM  # xenlab's Dom0 maps foreign frames in Python, not by this
    return do_update_va_mapping(ctx, va, val, flags)


# ============================================================== invariants
def expected_references(host: XenHost) -> tuple[dict[int, int], dict[int, int]]:
    """Every reference the frame table should hold, recomputed from what holds them:
    (general references, type references) per frame, beyond the allocation reference.
    ``XenHost.check_invariants`` compares them with the counts."""
    mem = host.mem
    refs: dict[int, int] = {}
    types: dict[int, int] = {}

    def add(mfn: int, typed: bool) -> None:
        refs[mfn] = refs.get(mfn, 0) + 1
        if typed:
            types[mfn] = types.get(mfn, 0) + 1

    for mfn in mem.pt_frames:
        info = mem.type_info[mfn]
        level = _LEVEL_OF[info & PGT_type_mask]
        if info & PGT_pinned:
            add(mfn, True)
        entries = _table_entries(mem, mfn)
        for i in _entry_slots(level):
            e = entries[i]
            if not e & _P or (level == 1 and e & _PAGE_GNTTAB):
                continue
            add((e & _ADDR) >> PAGE_SHIFT, level > 1 or bool(e & _RW))
    for d in list(host.domains.values()) + list(host.zombies.values()):
        for v in d.vcpus:
            for mfn in (v.guest_table, v.guest_table_user):
                if mfn:
                    add(mfn, True)
        if d.grant_table is not None:
            for m in d.grant_table.maptrack.values():
                add(m.mfn, not m.readonly)
        for mfn, (count, writable) in d.foreign_maps.items():
            for i in range(count):
                add(mfn, i < writable)
    for mfn, (count, writable) in host.xen_maps.items():
        for i in range(count):
            add(mfn, i < writable)
    return refs, types


def check_references(host: XenHost) -> None:
    """The counts in the frame table are exactly what holds them (see expected_references):
    no reference leaked, none missing; page tables are typed as their level, and no
    frame is both a page table and writable (one type per frame)."""
    mem = host.mem
    refs, types = expected_references(host)
    allocated = mem.total_pages - mem.free_pages
    for mfn, n in refs.items():
        count = mem.count_info[mfn]
        own = 1 if count & PGC_allocated else 0
        assert count & PGC_count_mask == own + n, (
            f"mfn {mfn:#x} (owner {mem.owner[mfn]}): {count & PGC_count_mask} references, "
            f"{own + n} holders")
    plain = PGC_allocated | 1
    assert mem.count_info.count(plain) == allocated - len(refs), (
        "a frame holds references nothing accounts for")
    for mfn, n in types.items():
        info = mem.type_info[mfn]
        assert info & PGT_count_mask == n, (
            f"mfn {mfn:#x}: type count {info & PGT_count_mask}, {n} holders")
    assert mem.type_info.count(0) == mem.total_pages - len(types), (
        "a frame has a type nothing accounts for")
    for mfn in mem.pt_frames:
        assert mem.type_info[mfn] & PGT_type_mask in _LEVEL_OF, mfn
