"""A PV guest's page-table updates, read as Xen reads them.

``explain_mmu_update(lab, record)`` takes one ``mmu_update`` hypercall record of the
trace (the hypervisor records the first request of each call, ``ptr`` and ``val``) and
says what each number is: ``ptr`` is the *machine* address of one page-table entry
(its low two bits the command, ``MMU_NORMAL_PT_UPDATE``), inside a frame Xen typed as an
L1..L4 table; ``val`` is the new entry, a machine frame number and flag bits. Then it
walks the checks Xen made before writing (``mod_l1_entry`` -> ``get_page_from_l1e``):
the frame the entry names must belong to the domain, and a writable mapping must not be
one of its page tables, or the guest could rewrite its own page tables behind Xen.
What it reports about frames is their state *now*, when the view runs.

``check_l1e(lab, domid, val)`` runs those same checks on a value of your own, as if the
domain asked for it, and gives the answer back without changing anything (the
references a granted entry takes are dropped again).

Real Xen: xen/arch/x86/mm.c (do_mmu_update, mod_l1_entry, get_page_from_l1e)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xenlab.xen import mm
from xenlab.xen.page_alloc import (
    FREE,
    PGT_count_mask,
    PGT_l1_page_table,
    PGT_l2_page_table,
    PGT_l3_page_table,
    PGT_l4_page_table,
    PGT_none,
    PGT_pinned,
    PGT_seg_desc_page,
    PGT_type_mask,
    PGT_writable_page,
)
from xenlab.xen.setup import XenHost

if TYPE_CHECKING:
    from xenlab.lab import Lab
    from xenlab.xen.domain import Domain


def _host(lab: Lab | XenHost) -> XenHost:
    return lab if isinstance(lab, XenHost) else lab.host

__all__ = ["check_l1e", "explain_mmu_update", "pte_flags"]

PAGE_SHIFT = 12
ADDR_MASK = 0x000F_FFFF_FFFF_F000
#: x86 page-table entry bits, as Linux's pgtable_types.h names them (_PAGE_*)
FLAGS = ((0, "PRESENT"), (1, "RW"), (2, "USER"), (3, "PWT"), (4, "PCD"), (5, "ACCESSED"),
         (6, "DIRTY"), (7, "PSE/PAT"), (8, "GLOBAL"), (63, "NX"))
TYPES = {PGT_none: "no type", PGT_l1_page_table: "L1 page table",
         PGT_l2_page_table: "L2 page table", PGT_l3_page_table: "L3 page table",
         PGT_l4_page_table: "L4 page table", PGT_seg_desc_page: "descriptor table",
         PGT_writable_page: "writable page"}
COMMANDS = {0: "MMU_NORMAL_PT_UPDATE", 1: "MMU_MACHPHYS_UPDATE",
            2: "MMU_PT_UPDATE_PRESERVE_AD", 3: "MMU_PT_UPDATE_NO_TRANSLATE"}


def pte_flags(val: int) -> str:
    """The flag bits of a page-table entry by name: ``PRESENT|RW|USER|ACCESSED``."""
    return "|".join(name for bit, name in FLAGS if val >> bit & 1) or "none (not present)"


def _frame(lab: Lab | XenHost, mfn: int) -> str:
    mem = _host(lab).mem
    if not 0 <= mfn < mem.total_pages:
        return f"mfn {mfn:#x}: beyond the host's {mem.total_pages:#x} frames"
    owner = mem.owner[mfn]
    who = "free" if owner == FREE else "Xen" if owner >= 0x7FF0 else f"d{owner}"
    ti = mem.type_info[mfn]
    kind = TYPES.get(ti & PGT_type_mask, "?") if ti & PGT_count_mask else "no type"
    pinned = ", pinned" if ti & PGT_pinned else ""
    return f"mfn {mfn:#x}: owner {who}, {kind} (type count {ti & PGT_count_mask}{pinned})"


def explain_mmu_update(lab: Lab | XenHost, record: Any) -> str:
    """What one ``mmu_update`` record's first request asked and what Xen checked."""
    args = record.args
    if record.name != "mmu_update" or "ptr" not in args:
        return "not an mmu_update record with a request (ptr, val)"
    ptr, val = int(args["ptr"], 16), int(args["val"], 16)
    cmd = ptr & 3
    lines = [f"mmu_update by d{record.dom} (trace seq {record.seq}, "
             f"t = {record.time / 1e6:.3f} ms): {args.get('count')} request(s), "
             f"done {args.get('done')}, returned {record.ret}",
             f"  ptr {ptr:#x}: low bits {cmd} = {COMMANDS[cmd]}"]
    if cmd not in (0, 2):
        lines.append(f"  val {val:#x}: the M2P entry of frame {ptr >> PAGE_SHIFT:#x}")
        return "\n".join(lines)
    table = (ptr & ADDR_MASK) >> PAGE_SHIFT
    lines += [f"      the entry at machine address {ptr & ~7:#x}, slot {(ptr & 0xFFF) >> 3} "
              f"of the table frame", f"      {_frame(lab, table)}"]
    target = (val & ADDR_MASK) >> PAGE_SHIFT
    lines.append(f"  val {val:#x}: flags {pte_flags(val)}")
    if not val & 1:
        lines.append("      not present: nothing to check, the mapping goes away")
    else:
        lines.append(f"      maps {_frame(lab, target)}")
        lines.append("  Xen's checks (mod_l1_entry -> get_page_from_l1e): the frame must "
                     f"belong to d{record.dom}"
                     + ("; RW, so it must not be one of its page tables (it takes the "
                        "frame's writable type)" if val & 2 else "; read-only, so any of "
                        "its frames will do, page tables too")
                     + f" -> {'accepted' if record.ret == 0 else 'refused'}")
    return "\n".join(lines)


def check_l1e(lab: Lab | XenHost, domid: int, val: int) -> str:
    """Would Xen write ``val`` into one of ``domid``'s L1 tables? ``accepted`` or
    ``refused: <why>``, from Xen's own checks; nothing is changed."""
    host = _host(lab)
    d: Domain | None = host.domains.get(domid)
    if d is None:
        return f"refused: there is no domain {domid} -> -ESRCH"
    val &= (1 << 64) - 1
    why = mm.get_page_from_l1e(host, d, mm.adjust_guest_entry(val))
    if why is not None:
        return f"refused: {why} ({_frame(lab, (val & ADDR_MASK) >> PAGE_SHIFT)}) -> -EINVAL"
    mm.put_page_from_l1e(host, mm.adjust_guest_entry(val))
    return f"accepted ({pte_flags(val)} of {_frame(lab, (val & ADDR_MASK) >> PAGE_SHIFT)})"
