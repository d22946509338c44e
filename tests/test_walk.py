"""The native page walk (xenlab/cpu/walk.c) against QEMU's own, access by access.

An HVM vCPU whose guest turns paging on keeps unicorn's virtual TLB with the native
walk (``X86Vcpu._enter_walk``); the other vCPU here runs on QEMU's walk (unicorn's
UC_TLB_CPU). Both run the same accesses through the same randomly drawn page tables
(32-bit, 4 MiB PSE pages, PAE, 2 MiB pages, NX, WP, SMEP, CPL 0 and 3) and must end the
same:
the same exit, the same #PF error code and CR2, the same registers, the same memory,
page tables' accessed and dirty bits included.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cpu import Exits

from xenlab.cpu import x86
from xenlab.cpu.x86 import ExitReason, X86Vcpu

pytestmark = pytest.mark.skipif(
    x86._native_thunk() is None or not x86._walk_layout(),
    reason="the native page walk: x86-64 Linux, unicorn 2.1's layout")

RAM = 16 << 20
P, RW, US, A, D, PS = 1, 2, 4, 0x20, 0x40, 0x80
NX = 1 << 63
TEST = 0x400000          # four linear pages under test (PDE 2 in PAE, PDE 1 in 32-bit)
TARGET = 0x800000        # the physical pages they map to
STUBS = 0x3000           # one access, then hlt, 16 bytes each
GDT = 0x1000


def _tables(mode: str, pde_flags: int, pte_flags: list[int], us: int = US) -> dict[int, bytes]:
    """Page tables for ``mode``: the low 2 MiB identity-mapped (code, stack, tables),
    read-write, user pages if ``us``; the test pages with the drawn flags, as 4 KiB
    pages or one large page."""
    low = b"".join(struct.pack("<Q", (i << 12) | P | RW | us) for i in range(512))
    if mode in ("pae", "pae-2m"):
        out = {0x10000: struct.pack("<Q", 0x11000 | P),            # PDPTE 0
               0x11000: struct.pack("<Q", 0x12000 | P | RW | US)}  # PDE 0: low 2 MiB
        if mode == "pae-2m":
            out[0x11010] = struct.pack("<Q", TARGET | PS | pde_flags)
        else:
            out[0x11010] = struct.pack("<Q", 0x13000 | pde_flags)
            out[0x13000] = b"".join(struct.pack("<Q", TARGET + (k << 12) | f)
                                    for k, f in enumerate(pte_flags))
        out[0x12000] = low
        return out
    low32 = b"".join(struct.pack("<I", (i << 12) | P | RW | us) for i in range(1024))
    out = {0x10000: struct.pack("<I", 0x12000 | P | RW | US), 0x12000: low32}
    if mode == "32-4m":
        out[0x10004] = struct.pack("<I", (TARGET & ~0x3FFFFF) | PS | (pde_flags & 0xFFF))
    else:
        out[0x10004] = struct.pack("<I", 0x13000 | (pde_flags & 0xFFF))
        out[0x13000] = b"".join(struct.pack("<I", (TARGET + (k << 12)) | (f & 0xFFF))
                                for k, f in enumerate(pte_flags))
    return out


def _access(kind: str, page: int, offset: int) -> bytes:
    addr = TEST + (page << 12) + offset
    if kind == "read":
        code = b"\x8b\x05" + struct.pack("<I", addr)            # mov eax, [addr]
    elif kind == "write":
        code = b"\x89\x1d" + struct.pack("<I", addr)            # mov [addr], ebx
    else:
        code = b"\xb8" + struct.pack("<I", addr) + b"\xff\xd0"  # mov eax, addr ; call eax
    return code + b"\xf4"                                        # hlt


Ram = ctypes.Array[ctypes.c_char]


def _machine(walk: bool, mode: str, tables: dict[int, bytes], accesses: list, *, wp: bool,
             nxe: bool, cpl: int, smep: bool = False) -> tuple[X86Vcpu, Ram]:
    cpu = X86Vcpu(Exits(), long_mode=False)
    ram = (ctypes.c_char * RAM)()
    base = ctypes.addressof(ram)

    def put(at: int, data: bytes) -> None:
        ctypes.memmove(base + at, data, len(data))

    put(GDT, struct.pack("<5Q", 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF,
                         0x00CFFA000000FFFF, 0x00CFF2000000FFFF))
    for at, data in tables.items():
        put(at, data)
    for i, (kind, page, offset) in enumerate(accesses):
        put(STUBS + 16 * i, _access(kind, page, offset))
    for k in range(4):       # each target page: ret where calls land, its number between
        put(TARGET + (k << 12), b"\xc3" * 0x100 + bytes([k + 1]) * 0xEFC + b"\xc3" * 4)
    cpu.map_host(0, RAM, base)
    cpu.setup_flat32(gdt_base=GDT, eip=STUBS)
    cpu.uc.reg_write(x86.X.UC_X86_REG_GDTR, (0, GDT, 39, 0))
    cpu.set_reg("esp", 0x9000)
    cpu.set_reg("ebx", 0x5A5A5A5A)
    if not walk:
        cpu._enter_walk = lambda: False  # type: ignore[method-assign]
    assert cpu.identity_tlb_until_paging()
    cpu.set_reg("cr3", 0x10000)
    cr4 = (0x20 if mode.startswith("pae") else 0x10) | (1 << 20 if smep else 0)
    cpu.set_reg("cr4", cr4)
    if nxe:
        cpu.uc.reg_write(x86.X.UC_X86_REG_MSR, (0xC0000080, 0x800))
    cpu.set_reg("cr0", 0x80000011 | (0x10000 if wp else 0))
    if cpl == 3:
        assert cpu._set_cpl(3)
        cpu.set_reg("ss", 0x23)
        cpu.set_reg("cs", 0x1B)
        for seg in ("ds", "es"):
            cpu.set_reg(seg, 0x23)
    return cpu, ram


def _run(cpu: X86Vcpu, ram: Ram, accesses: list) -> list:
    seen = []
    for i in range(len(accesses)):
        cpu.set_reg("eip", STUBS + 16 * i)
        cpu.set_reg("esp", 0x9000)
        cpu.forget_exceptions()   # (QEMU's walk: else unicorn drops a fault after a fault)
        result = cpu.run(10_000)
        fault = ((result.vector, cpu.fault_error_code, cpu.fault_cr2)
                 if result.reason is ExitReason.FAULT else None)
        seen.append((result.reason, fault, cpu.reg("eax"), cpu.reg("eip")))
    seen.append(bytes(ram[0x10000:0x14000]))       # the tables: accessed and dirty bits
    seen.append(bytes(ram[TARGET:TARGET + 0x4000]))
    return seen


RSVD = 1 << 45     # past the CPU's physical address bits: QEMU's walk faults (RSVD)
_flags = st.builds(lambda p, rw, us, a, d, nx, rsvd: p | rw | us | a | d | nx | rsvd,
                   st.sampled_from([0, P, P, P]), st.sampled_from([0, RW]),
                   st.sampled_from([0, US]), st.sampled_from([0, A]), st.sampled_from([0, D]),
                   st.sampled_from([0, 0, NX]), st.sampled_from([0, 0, 0, RSVD]))
_accesses = st.lists(st.tuples(st.sampled_from(["read", "write", "fetch"]),
                               st.integers(0, 3), st.sampled_from([0, 0x80, 0xFFC])),
                     min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(mode=st.sampled_from(["32", "32-4m", "pae", "pae-2m"]),
       pde=_flags, ptes=st.lists(_flags, min_size=4, max_size=4), accesses=_accesses,
       wp=st.booleans(), nxe=st.booleans(), cpl=st.sampled_from([0, 3]), smep=st.booleans())
def test_the_walk_ends_every_access_as_qemus_walk_does(mode: str, pde: int, ptes: list[int],
                                                       accesses: list, wp: bool, nxe: bool,
                                                       cpl: int, smep: bool) -> None:
    tables = _tables(mode, pde, ptes, US if cpl == 3 else 0)   # (SMEP: supervisor code)
    runs = []
    for walk in (True, False):
        cpu, ram = _machine(walk, mode, tables, accesses, wp=wp, nxe=nxe, cpl=cpl, smep=smep)
        runs.append(_run(cpu, ram, accesses))
        assert (cpu._walk is not None) == walk
    assert runs[0] == runs[1]


def test_the_walk_comes_back_after_a_slice_on_qemus() -> None:
    """A reserved bit is QEMU's walk's to judge: that access runs again on it (the #PF
    with the RSVD bit), and the next run is the native walk's again."""
    flags = [P | RW | US | RSVD, P | RW | US, P | RW | US, P | RW | US]
    accesses = [("read", 1, 0), ("read", 0, 0), ("read", 1, 0)]
    cpu, _ram = _machine(True, "pae", _tables("pae", P | RW | US, flags, 0), accesses,
                         wp=True, nxe=False, cpl=0)
    for i, expect_paused in ((0, False), (1, True), (2, False)):
        cpu.set_reg("eip", STUBS + 16 * i)
        result = cpu.run(10_000)
        assert cpu._walk_paused is expect_paused
        if i == 1:
            assert result.reason is ExitReason.FAULT and result.vector == 14
            assert cpu.fault_error_code == 0x9 and cpu.fault_cr2 == TEST   # RSVD | P, read
        else:
            assert result.reason is ExitReason.HLT and cpu.reg("eax") == 0xC3C3C3C3


def test_a_data_page_is_entered_without_execute_permission() -> None:
    """What the walk is for: after paging is on, stores to a page no code came from
    run without unicorn's self-modifying-code checks, and code written into a page and
    then run is the new code (the page turns executable, the TLB is dropped)."""
    accesses = [("write", 0, 0), ("fetch", 0, 0), ("write", 0, 0), ("fetch", 0, 0)]
    flags = [P | RW | US | A | D] * 4
    cpu, ram = _machine(True, "pae", _tables("pae", P | RW | US, flags), accesses,
                        wp=True, nxe=False, cpl=0)
    cpu.set_reg("ebx", 0x00C3C3C3)          # the first store writes ret where calls land
    first = _run(cpu, ram, accesses[:1])
    assert first[0][0] is ExitReason.HLT
    page = TARGET >> 12
    assert not cpu._code_pages[page >> 6] >> (page & 63) & 1   # data only so far
    cpu.set_reg("eip", STUBS + 16)
    assert cpu.run(10_000).reason is ExitReason.HLT           # calls the ret it wrote
    assert cpu._code_pages[page >> 6] >> (page & 63) & 1      # code now
    cpu.set_reg("ebx", 0x90F4F4F4)          # hlt where the call lands: the new code runs
    cpu.set_reg("eip", STUBS + 32)
    assert cpu.run(10_000).reason is ExitReason.HLT
    cpu.set_reg("eip", STUBS + 48)
    cpu.set_reg("esp", 0x9000)
    result = cpu.run(10_000)
    assert result.reason is ExitReason.HLT and cpu.reg("eip") == TEST + 1


def test_native_s_carries_what_gcc_makes_of_walk_c(tmp_path: Path) -> None:
    """native.S's .text.walk is gcc 12.2's output for xenlab/cpu/walk.c with the options
    written there (the native.S test checks the bytes against the assembly)."""
    gcc = shutil.which("gcc")
    if gcc is None or "12.2." not in subprocess.run([gcc, "--version"], capture_output=True,
                                                     text=True).stdout:
        pytest.skip("needs Debian 12's gcc (12.2), the compiler native.S was made with")
    source = Path(x86.__file__).with_name("walk.c")
    out = tmp_path / "walk.s"
    subprocess.run([gcc, "-O2", "-S", "-masm=intel", "-fno-pic",
                    "-fno-asynchronous-unwind-tables", "-fcf-protection=none",
                    "-fno-stack-protector", "-mno-red-zone", str(source), "-o", str(out)],
                   check=True)
    skip = re.compile(r"^\s*\.(file|text|globl|type|size|ident|intel_syntax)\b|\.note\.GNU-stack")
    made = [line for line in out.read_text().splitlines() if not skip.search(line)]
    native = source.with_name("native.S").read_text().splitlines()
    start = native.index('        .section .text.walk, "ax"') + 1
    assert native[start:] == made


@pytest.mark.parametrize("walk", [True, False])
def test_code_the_host_rewrote_in_a_frame_runs_as_rewritten(walk: bool) -> None:
    """The host writes new code into a guest frame (a device model's DMA, Xen's hypercall
    page) and drops the code translated from it by its guest-physical address
    (``invalidate_code_phys``): with paging on, where the frame's linear address is
    another, the new code runs. (unicorn takes the range of ``invalidate_code`` as
    linear: given the frame's physical address it dropped nothing, and the old code
    ran again.)"""
    flags = [P | RW | US | A | D] * 4
    cpu, _ram = _machine(walk, "pae", _tables("pae", P | RW | US, flags), [("read", 0, 0)],
                        wp=True, nxe=False, cpl=0)
    for _ in range(2):        # paging on: the walk entered, its fresh start behind it
        cpu.set_reg("eip", STUBS)
        assert cpu.run(10_000).reason is ExitReason.HLT
    outs = cpu.exits.outs  # type: ignore[attr-defined]
    for value in (1, 2, 3):   # mov al, value ; out 0xe9, al ; hlt   at TEST -> TARGET
        cpu.phys_write(TARGET, bytes([0xB0, value, 0xE6, 0xE9, 0xF4]))
        cpu.invalidate_code_phys(TARGET, TARGET + 5)
        cpu.set_reg("eip", TEST)
        assert cpu.run(10_000).reason is ExitReason.HLT
    assert outs[-3:] == [(0xE9, 1), (0xE9, 2), (0xE9, 3)]
