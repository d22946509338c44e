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
cannot write a page-table entry directly. ``HYPERVISOR_update_va_mapping(va, pte,
flags)`` asks Xen to write the L1 entry that maps ``va`` (``mod_l1_entry``): the new
entry's references are taken (``get_page_from_l1e``) before it is written and the old
entry's dropped after. The domain builder pins the guest's L4 table, which validates
the whole tree of tables below it (``pin_page_table``).

xenlab implements update_va_mapping; mmu_update and mmuext_op (pinning by the guest,
new page tables, CR3 switches) are not implemented yet and return -ENOSYS. A
superpage entry (``_PAGE_PSE``) and a table that maps itself (a linear page table)
are refused where Xen would accept them under conditions.

Real Xen: xen/arch/x86/mm.c (get_page, put_page, get_page_type, put_page_type,
get_page_from_l1e, mod_l1_entry, alloc_l1_table..alloc_l4_table), xen/arch/x86/pv/mm.c,
xen/common/page_alloc.c (free_domheap_pages)
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.xen import DOMID_XEN
from xenlab.xen.page_alloc import (
    PAGE_SHIFT,
    PAGE_SIZE,
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
    Extent,
)

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.page_alloc import HostMemory
    from xenlab.xen.setup import XenHost

__all__ = [
    "UVMF_INVLPG", "UVMF_TLB_FLUSH", "_PAGE_GNTTAB", "do_update_va_mapping",
    "free_domheap_page", "get_page", "get_page_and_type", "get_page_from_l1e",
    "get_page_type", "l1e_address", "pin_page_table", "put_page", "put_page_and_type",
    "put_page_from_l1e", "put_page_type",
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
_L1_DISALLOW_MASK = 0x180 | (0x7FF << 52) & ~(1 << 63)  # PAT/global bits and high bits
_LN_DISALLOW_MASK = 0x180 | (0x7FF << 52) & ~(1 << 63)  # and no superpages (PSE is 0x80)
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
    entries = _table_entries(host.mem, mfn)
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
    mem.write_u64(l1e, val)
    put_page_from_l1e(host, old)
    if flags & UVMF_FLUSHTYPE_MASK:
        ctx.cpu.flush_tlb()
    return 0


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
        for mfn in d.guest_tables:
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
