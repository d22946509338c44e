"""The PV MMU: mmu_update, mmuext_op, multicall, the M2P table and writable page tables.

Guests are tiny PV kernels built by tests/elfgen.py. Frame numbers are only known once
a domain is built, so the values a guest passes (machine addresses of its own
page-table entries, frames) are written into its data page after it is created and
loaded into registers from there (``M(offset)``). Every expectation is derived from
Xen's rules (xen/arch/x86/mm.c), not from the code under test.
"""

from __future__ import annotations

import os
import struct

import pytest
from elfgen import (
    ARG_REGS,
    DATA_VA,
    RESULTS_VA,
    VIRT_BASE,
    Asm,
    create,
    hypercall,
    new_host,
    results,
)

from xenlab.lab import Lab
from xenlab.public.errno import Errno
from xenlab.public.memory import MemoryOp
from xenlab.public.xen import (
    DOMID_SELF,
    MACH2PHYS_VIRT_END,
    MACH2PHYS_VIRT_START,
    MMU_MACHPHYS_UPDATE,
    Hypercall,
    MmuextCmd,
)
from xenlab.xen.mm import l1e_address
from xenlab.xen.page_alloc import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PGT_l1_page_table,
    PGT_type_mask,
    PGT_writable_page,
)
from xenlab.xen.trace import Kind

H = Hypercall
EXTRA_VA = RESULTS_VA + PAGE_SIZE          # the first extra bss page
EXTRA2_VA = RESULTS_VA + 2 * PAGE_SIZE     # the second
DATA_PFN = (DATA_VA - VIRT_BASE) >> PAGE_SHIFT
P, RW, US = 1, 2, 4
_LOAD = {"rdi": "488b38", "rsi": "488b30", "rdx": "488b10", "r10": "4c8b10", "r8": "4c8b00",
         "rax": "488b00"}


class M(int):
    """An argument read from the guest's data page at this offset (set after create)."""


def call(a: Asm, nr: int, *args: int) -> Asm:
    for reg, value in zip(ARG_REGS, args, strict=False):
        if isinstance(value, M):
            a.mov("rax", DATA_VA + value).raw(_LOAD[reg])    # mov (%rax), %reg
        else:
            a.mov(reg, value)
    a.code += hypercall(int(nr), a.here)
    return a


def read_to(a: Asm, va: int | M, slot: int) -> Asm:
    """results[slot] = *(uint64_t *)va"""
    if isinstance(va, M):
        a.mov("rax", DATA_VA + va).raw(_LOAD["rax"])
    else:
        a.mov("rax", va)
    return a.raw("488b00").store_rax(slot)                   # mov (%rax), %rax


def put(host, d, offset: int, data: bytes) -> None:
    host.mem.write((d.pfn_to_mfn(DATA_PFN) << PAGE_SHIFT) + offset, data)


def frame_of(host, d, va: int) -> int:
    """The machine frame the guest's boot page tables map ``va`` to."""
    l1e = l1e_address(host.mem, d, d.vcpus[0].cpu.reg("cr3"), va)
    assert l1e is not None
    return (host.mem.read_u64(l1e) >> PAGE_SHIFT) & 0xFFFFFFFFFF


def l1e_of(host, d, va: int) -> int:
    l1e = l1e_address(host.mem, d, d.vcpus[0].cpu.reg("cr3"), va)
    assert l1e is not None
    return l1e


# ------------------------------------------------------------------ mmu_update
REQ, REQ2, PDONE = 0x100, 0x200, 0x300


def test_mmu_update_writes_validated_entries_and_the_m2p() -> None:
    host = new_host()
    code = Asm()
    call(code, H.mmu_update, DATA_VA + REQ, 1, DATA_VA + PDONE, DOMID_SELF).store_rax(0)
    read_to(code, EXTRA_VA + 0x10, 1)                        # the data page, seen again
    for i, off in enumerate((0x110, 0x120, 0x130, 0x140), start=2):
        call(code, H.mmu_update, DATA_VA + off, 1, 0, DOMID_SELF).store_rax(i)
    call(code, H.mmu_update, DATA_VA + REQ2, 2, DATA_VA + PDONE + 8, DOMID_SELF)
    code.store_rax(6)
    read_to(code, M(0x400), 7)                               # the M2P entry it set
    read_to(code, M(0x408), 8)                               # an M2P entry of its own
    code.shutdown(0)
    victim = create(host, Asm().spin().bytes(), name="victim", unpause=False)
    d = create(host, code.bytes(), bss=2 * PAGE_SIZE, unpause=False)
    data = frame_of(host, d, DATA_VA)
    l1 = l1e_of(host, d, EXTRA_VA) >> PAGE_SHIFT
    l4 = d.vcpus[0].cpu.reg("cr3")
    stack = host.xen_frames["stack"]
    put(host, d, 0x10, struct.pack("<Q", 0xC0FFEE))
    put(host, d, REQ, struct.pack("<QQ", l1e_of(host, d, EXTRA_VA), (data << 12) | P | US))
    put(host, d, 0x110, struct.pack("<QQ", l1e_of(host, d, EXTRA2_VA), (l1 << 12) | P | RW | US))
    put(host, d, 0x120, struct.pack("<QQ", l1e_of(host, d, EXTRA2_VA),
                                    (victim.pfn_to_mfn(2) << 12) | P | US))
    put(host, d, 0x130, struct.pack("<QQ", l4 + 8 * 260, (stack << 12) | P | RW | US))
    put(host, d, 0x140, struct.pack("<QQ", (data << 12) | MMU_MACHPHYS_UPDATE, 0x1234))
    put(host, d, REQ2, struct.pack("<QQQQ",
                                   (victim.pfn_to_mfn(3) << 12) | MMU_MACHPHYS_UPDATE, 7,
                                   (data << 12) | MMU_MACHPHYS_UPDATE, 8))
    put(host, d, 0x400, struct.pack("<QQ", MACH2PHYS_VIRT_START + 8 * data,
                                    MACH2PHYS_VIRT_START + 8 * frame_of(host, d, RESULTS_VA)))
    host.domain_unpause(d)
    host.run(max_instructions=1_000_000)
    assert not d.is_crashed and d.shutdown_code == 0, d.crash_reason
    got = results(host, d, 9)
    assert got[0] == 0 and got[1] == 0xC0FFEE                # mapped, read through EXTRA_VA
    assert got[2] == -Errno.EINVAL                           # its L1, writable: never
    assert got[3] == -Errno.EINVAL                           # another domain's frame
    assert got[4] == -Errno.EINVAL                           # Xen's L4 slots
    assert got[5] == 0                                       # M2P of its own frame
    assert got[6] == -Errno.EINVAL                           # M2P of another's: refused,
    pdone = struct.unpack("<II", host.mem.read((data << 12) + PDONE, 8))
    assert pdone == (1, 0)                                   # ... and nothing was done
    assert got[7] == 0x1234                                  # the guest reads the M2P
    results_pfn = (RESULTS_VA - VIRT_BASE) >> PAGE_SHIFT
    assert got[8] == results_pfn
    assert host.mem.read(victim.maddr(3), 8) != struct.pack("<Q", 7)
    host.check_invariants()

    # the trace keeps each call's first request, and the view reads it as Xen did
    from xenlab.views.pagetables import check_l1e, explain_mmu_update
    calls = [r for r in host.trace.select(dom=d.domid) if r.name == "mmu_update"]
    assert [int(r.args["ptr"], 16) for r in calls[:2]] == [l1e_of(host, d, EXTRA_VA),
                                                           l1e_of(host, d, EXTRA2_VA)]
    first, second = explain_mmu_update(host, calls[0]), explain_mmu_update(host, calls[1])
    assert "MMU_NORMAL_PT_UPDATE" in first and f"owner d{d.domid}, L1 page table" in first
    assert f"maps mfn {data:#x}: owner d{d.domid}" in first and "-> accepted" in first
    assert "flags PRESENT|RW|USER" in second and "-> refused" in second
    assert "MMU_MACHPHYS_UPDATE" in explain_mmu_update(host, calls[4])
    assert check_l1e(host, d.domid, (l1 << 12) | P | RW).startswith(
        "refused: writable mapping of a page-table page")
    assert check_l1e(host, d.domid, (l1 << 12) | P).startswith("accepted")
    assert check_l1e(host, d.domid, (victim.pfn_to_mfn(2) << 12) | P).startswith(
        "refused: frame not owned by the domain")
    assert check_l1e(host, d.domid, (data << 12) | P | RW).startswith("accepted")
    host.check_invariants()                                  # the checks took no reference


def test_machphys_mapping_and_mfn_list_describe_the_m2p() -> None:
    host = new_host()
    code = Asm()
    call(code, H.memory_op, MemoryOp.XENMEM_machphys_mapping, DATA_VA + 0x100).store_rax(0)
    call(code, H.memory_op, MemoryOp.XENMEM_machphys_mfn_list, DATA_VA + 0x200).store_rax(1)
    code.shutdown(0)
    d = create(host, code.bytes(), unpause=False)
    put(host, d, 0x200, struct.pack("<I4xQI", 16, DATA_VA + 0x300, 0))
    host.domain_unpause(d)
    host.run(max_instructions=1_000_000)
    assert results(host, d, 2) == [0, 0]
    page = host.mem.read(d.maddr(DATA_PFN), PAGE_SIZE)
    start, end, max_mfn = struct.unpack_from("<QQQ", page, 0x100)
    assert (start, end) == (MACH2PHYS_VIRT_START, MACH2PHYS_VIRT_END)
    assert max_mfn == ((end - start) >> 3) - 1
    nr = struct.unpack_from("<I", page, 0x210)[0]
    need = -(-host.mem.total_pages * 8 // (2 << 20))         # one per 2 MiB of table
    assert nr == need
    mfns = struct.unpack_from(f"<{nr}Q", page, 0x300)
    for i, mfn in enumerate(mfns):                # each holds 2 MiB of the table
        first = i * 512 * 512                     # entries: 512 a frame, 512 frames
        assert host.mem.read(mfn << 12, 8) == struct.pack("<Q", host.m2p[first])
        assert host.mem.owner[mfn] == host.mem.owner[host.xen_frames["stack"]]  # Xen's


# ------------------------------------------------------------------ mmuext_op
OPS = 0x100


def _op(cmd: int, arg1: int = 0, arg2: int = 0) -> bytes:
    return struct.pack("<I4xQQ", cmd, arg1, arg2)


def test_mmuext_pins_types_and_frees_page_tables() -> None:
    host = new_host()
    code = Asm()
    call(code, H.update_va_mapping, EXTRA_VA, 0, 2).store_rax(0)        # drop its RW map
    call(code, H.mmuext_op, DATA_VA + OPS, 1, 0, DOMID_SELF).store_rax(1)      # pin L1
    call(code, H.update_va_mapping, EXTRA_VA, M(0x10), 2).store_rax(2)  # RW: refused
    call(code, H.update_va_mapping, EXTRA_VA, M(0x18), 2).store_rax(3)  # RO: fine
    read_to(code, EXTRA_VA, 4)                                          # entry 0 of it
    call(code, H.update_va_mapping, EXTRA_VA, 0, 2).store_rax(5)
    call(code, H.mmuext_op, DATA_VA + OPS + 24, 1, 0, DOMID_SELF).store_rax(6)  # unpin
    call(code, H.update_va_mapping, EXTRA_VA, M(0x10), 2).store_rax(7)  # RW again: fine
    for i in range(5):                                                  # one op each
        call(code, H.mmuext_op, DATA_VA + OPS + 48 + 24 * i, 1, DATA_VA + 0x300 + 4 * i,
             DOMID_SELF).store_rax(8 + i)
    code.shutdown(0)
    victim = create(host, Asm().spin().bytes(), name="victim", unpause=False)
    d = create(host, code.bytes(), bss=2 * PAGE_SIZE, unpause=False)
    x = frame_of(host, d, EXTRA_VA)
    y = frame_of(host, d, EXTRA2_VA)
    data = frame_of(host, d, DATA_VA)
    l4 = d.vcpus[0].cpu.reg("cr3") >> 12
    host.mem.write_u64(x << 12, (data << 12) | P | US)       # X: an L1 mapping data, RO
    host.mem.write_u64(y << 12, (victim.pfn_to_mfn(1) << 12) | P | US)  # Y: a foreign one
    put(host, d, 0x10, struct.pack("<QQ", (x << 12) | P | RW | US, (x << 12) | P | US))
    put(host, d, OPS, _op(MmuextCmd.MMUEXT_PIN_L1_TABLE, x)
        + _op(MmuextCmd.MMUEXT_UNPIN_TABLE, x)
        + _op(MmuextCmd.MMUEXT_PIN_L1_TABLE, y)               # names another's frame
        + _op(MmuextCmd.MMUEXT_NEW_BASEPTR, x)                # not an L4
        + _op(MmuextCmd.MMUEXT_NEW_USER_BASEPTR, l4)          # its own L4: fine
        + _op(MmuextCmd.MMUEXT_MARK_SUPER, x)
        + _op(MmuextCmd.MMUEXT_FLUSH_CACHE))
    host.domain_unpause(d)
    host.run(max_instructions=1_000_000)
    assert not d.is_crashed, d.crash_reason
    got = results(host, d, 13)
    assert got[:4] == [0, 0, -Errno.EINVAL, 0]
    assert got[4] == (data << 12) | P | US
    assert got[5:8] == [0, 0, 0]
    assert got[8:13] == [-Errno.EINVAL, -Errno.EINVAL, 0, -Errno.EOPNOTSUPP, -Errno.EACCES]
    done = struct.unpack("<5I", host.mem.read((data << 12) + 0x300, 20))
    assert done == (0, 0, 1, 0, 0)                            # pdone: ops completed
    assert d.vcpus[0].guest_table_user == l4
    assert host.mem.type_info[x] & PGT_type_mask == PGT_writable_page
    host.check_invariants()
    host.domain_destroy(d)
    host.check_invariants()


def test_multicall_runs_each_entry_and_writes_its_result() -> None:
    host = new_host()
    code = Asm()
    call(code, H.multicall, DATA_VA + 0x100, 3).store_rax(0)
    read_to(code, EXTRA_VA, 1)
    code.shutdown(0)
    d = create(host, code.bytes(), bss=PAGE_SIZE, unpause=False)
    data = frame_of(host, d, DATA_VA)
    l1 = l1e_of(host, d, EXTRA_VA) >> 12
    put(host, d, 0x100, struct.pack("<QQ6Q", H.update_va_mapping, 99, EXTRA_VA,
                                    (data << 12) | P | US, 2, 0, 0, 0)
        + struct.pack("<QQ6Q", H.update_va_mapping, 99, EXTRA_VA,
                      (l1 << 12) | P | RW | US, 2, 0, 0, 0)
        + struct.pack("<QQ6Q", H.multicall, 99, 0, 0, 0, 0, 0, 0))
    put(host, d, 0, struct.pack("<Q", 0xABCD))
    host.domain_unpause(d)
    host.run(max_instructions=1_000_000)
    assert results(host, d, 2) == [0, 0xABCD]
    page = host.mem.read(data << 12, PAGE_SIZE)
    got = [struct.unpack_from("<q", page, 0x100 + 64 * i + 8)[0] for i in range(3)]
    assert got == [0, -Errno.EINVAL, -Errno.ENOSYS]
    recs = [r for r in host.trace.records if r.kind is Kind.HYPERCALL and r.dom == d.domid]
    names = [(r.name, (r.args or {}).get("via")) for r in recs]
    assert names[:4] == [("update_va_mapping", "multicall"), ("update_va_mapping", "multicall"),
                         ("multicall", "multicall"), ("multicall", None)]
    host.check_invariants()


# ------------------------------------------------------------------ writable page tables
def _ptwr_guest(host, value_of):
    code = Asm()
    code.mov("rax", DATA_VA + 0x10).raw("488b18")            # mov (%rax), %rbx: the PTE VA
    code.mov("rax", DATA_VA + 0x18).raw("488b00")            # mov (%rax), %rax: the value
    code.raw("488903")                                       # mov %rax, (%rbx): the store
    read_to(code, EXTRA_VA, 0)
    code.shutdown(0)
    victim = create(host, Asm().spin().bytes(), name="victim", unpause=False)
    d = create(host, code.bytes(), bss=PAGE_SIZE, unpause=False)
    l1e = l1e_of(host, d, EXTRA_VA)
    l1_pfn = d.mfn_to_pfn(l1e >> PAGE_SHIFT)
    pte_va = VIRT_BASE + (l1_pfn << PAGE_SHIFT) + (l1e & 0xFFF)   # where it sees its L1
    put(host, d, 0x10, struct.pack("<QQ", pte_va, value_of(d, victim)))
    put(host, d, 0, struct.pack("<Q", 0x9A9E))
    host.domain_unpause(d)
    host.run(max_instructions=1_000_000)
    return d, victim, l1e


def test_a_store_into_its_own_l1_is_emulated_and_validated() -> None:
    host = new_host()
    d, _, l1e = _ptwr_guest(host, lambda d, v: (d.pfn_to_mfn(DATA_PFN) << 12) | P | US)
    assert not d.is_crashed and d.shutdown_code == 0, d.crash_reason
    assert results(host, d, 1) == [0x9A9E]                   # the new mapping works
    assert host.mem.type_info[l1e >> 12] & PGT_type_mask == PGT_l1_page_table
    host.check_invariants()


def test_a_store_of_a_bad_entry_into_its_l1_is_a_page_fault() -> None:
    host = new_host()
    d, victim, _l1e = _ptwr_guest(host, lambda d, v: (v.pfn_to_mfn(2) << 12) | P | RW | US)
    assert d.is_crashed and "#14" in d.crash_reason          # no handler: the domain dies
    assert not victim.is_crashed
    host.check_invariants()


# ------------------------------------------------------------------ a real PV kernel
PV_GRUB = "/usr/lib/grub-xen/grub-x86_64-xen.bin"


@pytest.mark.skipif(not os.path.exists(PV_GRUB),
                    reason="needs Debian's grub-xen-host (/usr/lib/grub-xen/grub-x86_64-xen.bin)")
def test_debians_pv_grub_reaches_its_prompt_and_answers() -> None:
    """The distribution's PV GRUB: its own page tables validated by the PV MMU, the PV
    console ring and xenstore, to grub>, and a command typed at it is answered."""
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {Lab.image('pv-grub.cfg')}")
    lab.run(max_instructions=30_000_000)
    console = lab.console("pv-grub")
    assert "GNU GRUB" in console and console.rstrip().endswith("grub>"), console[-300:]
    assert lab.console_input("pv-grub", "echo hi from xl console\r") > 0
    lab.run(max_instructions=30_000_000)
    assert "hi from xl console\n\rgrub> " in lab.console("pv-grub")
    d = lab.domain("pv-grub")
    assert not d.is_crashed
    calls = {r.name for r in lab.trace.records
             if r.kind is Kind.HYPERCALL and r.dom == d.domid and r.ret == 0}
    assert {"mmu_update", "mmuext_op", "update_va_mapping", "grant_table_op"} <= calls
    lab.host.check_invariants()


def test_entries_without_page_user_are_made_user_accessible() -> None:
    """adjust_guest_l1e: a 64-bit PV kernel runs in ring 3, so Xen adds _PAGE_USER to
    every present entry it writes for it; a mapping without it still works."""
    host = new_host()
    code = Asm()
    call(code, H.update_va_mapping, EXTRA_VA, M(0x10), 2).store_rax(0)
    read_to(code, EXTRA_VA, 1)
    code.shutdown(0)
    d = create(host, code.bytes(), bss=PAGE_SIZE, unpause=False)
    data = frame_of(host, d, DATA_VA)
    put(host, d, 0x10, struct.pack("<Q", (data << 12) | P))          # no _PAGE_USER
    put(host, d, 0, struct.pack("<Q", 0x5EE))
    host.domain_unpause(d)
    host.run(max_instructions=1_000_000)
    assert not d.is_crashed, d.crash_reason
    assert results(host, d, 2) == [0, 0x5EE]
    assert host.mem.read_u64(l1e_of(host, d, EXTRA_VA)) & ~0x60 == (data << 12) | P | US  # A, D
    host.check_invariants()
