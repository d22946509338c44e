"""The CPU layer alone: real mode with IVT dispatch, the switch to protected mode,
vmcall and int 0x82 hypercalls, port I/O, CPUID, WRMSR, HLT, single-stepping, and
the identity TLB HVM vCPUs use while paging is off."""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from unicorn import Uc
from unicorn.unicorn_const import UC_ARCH_X86, UC_MODE_32

from xenlab.cpu import x86
from xenlab.cpu.x86 import CpuMode, ExitReason, X86Vcpu, _native_fill


class Exits:
    """A minimal 'hypervisor' that records what the vCPU hands it."""

    def __init__(self) -> None:
        self.outs: list[tuple[int, int]] = []
        self.hypercalls: list[tuple[str, list[int]]] = []
        self.msrs: list[tuple[int, int]] = []

    def hypercall(self, vcpu: X86Vcpu, via: str) -> None:
        args = vcpu.hypercall_args()
        self.hypercalls.append((via, args))
        vcpu.set_return(0x40011 if args[0] == 17 else -38)

    def io_in(self, vcpu: X86Vcpu, port: int, size: int) -> int:
        return 0xFF

    def io_out(self, vcpu: X86Vcpu, port: int, size: int, value: int) -> None:
        self.outs.append((port, value))

    def cpuid(self, vcpu: X86Vcpu, leaf: int, subleaf: int) -> tuple[int, int, int, int] | None:
        if leaf == 0x40000000:
            return (0x40000002, 0x566E6558, 0x65584D4D, 0x4D4D566E)  # "XenVMMXenVMM"
        return None

    def interrupt(self, vcpu: X86Vcpu, vector: int) -> bool:
        return False

    def msr_write(self, vcpu: X86Vcpu, msr: int, value: int) -> bool:
        self.msrs.append((msr, value))
        return True

    def io_rep(self, vcpu: X86Vcpu, port: int, size: int, count: int, addr: int,
               write: bool) -> int:
        return 0

    def tsc(self, vcpu: X86Vcpu) -> int:
        return 0x1234_5678_9ABC


# Real mode at 0000:7C00, then protected mode; assembly beside every byte string.
REAL_MODE_PROGRAM = b"".join([
    bytes.fromhex("66b800000040"),    # 7C00 mov eax, 0x40000000
    bytes.fromhex("0fa2"),            # 7C06 cpuid           ; ebx = "XenV"
    bytes.fromhex("88d8"),            # 7C08 mov al, bl      ; 'X'
    bytes.fromhex("e6e9"),            # 7C0A out 0xe9, al
    bytes.fromhex("cd10"),            # 7C0C int 0x10        ; IVT -> 0000:8000
    bytes.fromhex("e6e9"),            # 7C0E out 0xe9, al    ; 0x42 from the handler
    bytes.fromhex("66b811000000"),    # 7C10 mov eax, 17     ; __HYPERVISOR_xen_version
    bytes.fromhex("0f01c1"),          # 7C16 vmcall
    bytes.fromhex("e6e9"),            # 7C19 out 0xe9, al    ; 0x11 (from 0x40011)
    bytes.fromhex("0f0116007d"),      # 7C1B lgdt [0x7d00]
    bytes.fromhex("0f20c0"),          # 7C20 mov eax, cr0
    bytes.fromhex("0c01"),            # 7C23 or al, 1
    bytes.fromhex("0f22c0"),          # 7C25 mov cr0, eax    ; PE on
    bytes.fromhex("66ea307c00000800"),  # 7C28 jmp dword 0x08:0x7c30
    bytes.fromhex("b850000000"),      # 7C30 mov eax, 0x50   (32-bit code now)
    bytes.fromhex("b9000000c0"),      # 7C35 mov ecx, 0xc0000000 (an MSR number)
    bytes.fromhex("0f30"),            # 7C3A wrmsr
    bytes.fromhex("e6e9"),            # 7C3C out 0xe9, al
    bytes.fromhex("f4"),              # 7C3E hlt
])
HANDLER = bytes.fromhex("b042" "cf")  # 8000: mov al, 0x42 ; iret
GDTR = struct.pack("<HI", 0x17, 0x7D10)
GDT = bytes(8) + bytes.fromhex("ffff0000009acf00") + bytes.fromhex("ffff00000092cf00")


def _machine() -> tuple[X86Vcpu, Exits]:
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    memory = bytearray(0x10000)
    memory[0x10 * 4 : 0x10 * 4 + 4] = struct.pack("<HH", 0x8000, 0)  # IVT[0x10]
    memory[0x7C00 : 0x7C00 + len(REAL_MODE_PROGRAM)] = REAL_MODE_PROGRAM
    memory[0x7D00 : 0x7D06] = GDTR
    memory[0x7D10 : 0x7D10 + len(GDT)] = GDT
    memory[0x8000 : 0x8000 + len(HANDLER)] = HANDLER
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x7C00)
    cpu.set_reg("esp", 0x7000)
    cpu.scan_wrmsr(0x7C00, REAL_MODE_PROGRAM)
    return cpu, exits


def test_real_mode_to_protected_mode_with_every_exit() -> None:
    cpu, exits = _machine()
    assert cpu.mode() is CpuMode.REAL
    result = cpu.run(10_000)
    assert result.reason is ExitReason.HLT
    assert exits.outs == [(0xE9, 0x58), (0xE9, 0x42), (0xE9, 0x11), (0xE9, 0x50)]
    # EAX, EBX, ECX, EDX, ESI, EDI: EBX..EDX still hold "XenVMMXenVMM" from cpuid
    assert exits.hypercalls == [("vmcall", [17, 0x566E6558, 0x65584D4D, 0x4D4D566E, 0, 0])]
    assert exits.msrs == [(0xC0000000, (0x4D4D566E << 32) | 0x50)]  # EDX:EAX
    assert cpu.mode() is CpuMode.PROTECTED
    assert cpu.reg("eip") == 0x7C3F  # just after hlt


def test_single_step_and_budget() -> None:
    cpu, _ = _machine()
    assert cpu.step().reason is ExitReason.STEP
    assert cpu.reg("eip") == 0x7C06
    cpu.step()
    assert cpu.reg("ebx") == 0x566E6558
    loop = X86Vcpu(Exits(), long_mode=False)
    loop.map_bytes(0, bytes.fromhex("ebfe").ljust(0x1000, b"\0"))  # jmp $
    loop.setup_real_mode(0, 0)
    result = loop.run(1_000_000)
    assert result.reason is ExitReason.BUDGET
    assert result.executed >= 1_000_000


# cli ; mov cx, 50 ; 1: pushf ; popf ; jmp 2f ; 2: loop 1b  (IF clear, a block a turn)
_IF_CLEAR_LOOP = "fa" "b93200" "9c" "9d" "eb00" "e2fa"
_WINDOW_OPENERS = {
    "sti": ("fb" "40" "40" "f4", 0x7C0C, 1),          # sti ; inc ax (its shadow) ; inc ax
    "popf": ("680202" "9d" "40" "f4", 0x7C0E, 0),     # push 0x202 ; popf ; inc ax ; hlt
}


def _window_run(opener: str, how: str) -> tuple[int, int, int]:
    cpu = X86Vcpu(Exits(), long_mode=False, native_budget=how != "python")
    if how == "uc_reg_read":
        cpu.budget.eflags_at = 0                     # IF read through unicorn's API
    program = bytes.fromhex(_IF_CLEAR_LOOP + _WINDOW_OPENERS[opener][0])
    cpu.map_bytes(0, bytes(0x7C00) + program.ljust(0x8400, b"\0"), writable=True)  # 64 KiB
    cpu.setup_real_mode(0, 0x7C00)
    cpu.enable_intr_window(True)
    result = cpu.run(100_000)
    assert result.reason is ExitReason.INTR_WINDOW
    return cpu.reg("eip"), cpu.reg("eax") & 0xFFFF, result.executed


@pytest.mark.parametrize("opener", sorted(_WINDOW_OPENERS))
def test_the_interrupt_window_opens_where_if_is_set_whoever_reads_it(opener: str) -> None:
    """An interrupt waits while a loop runs fifty blocks with IF clear; the window opens
    at the first block after ``sti`` (and its shadow) or a ``popf`` that sets IF. The
    native block callback reads IF in place in the engine (``budget.eflags_at``), through
    uc_reg_read where that word was not found, or the Python block hook does: the same
    stop, at the same instruction, after the same virtual time."""
    eip, ax = _WINDOW_OPENERS[opener][1:]
    runs = {how: _window_run(opener, how) for how in ("in place", "uc_reg_read", "python")}
    assert runs["in place"] == runs["uc_reg_read"] == runs["python"]
    assert runs["in place"][:2] == (eip, ax)


@pytest.mark.skipif(x86._native_thunk() is None, reason="native callbacks: x86-64 Linux")
def test_the_engines_eflags_word_is_found_and_follows_if() -> None:
    """``_eflags_word`` finds QEMU's env->eflags in each engine (32- and 64-bit), and the
    word follows what the guest's EFLAGS.IF is."""
    for long_mode in (False, True, False):
        cpu = X86Vcpu(Exits(), long_mode=long_mode)
        assert cpu.budget.eflags_at
        for flags in (0x202, 0x2, 0x246, 0x46):
            cpu.set_reg("eflags", flags)
            word = struct.unpack("<I", ctypes.string_at(cpu.budget.eflags_at, 4))[0]
            assert word & 0x200 == flags & 0x200
    assert not X86Vcpu(Exits(), long_mode=False, native_budget=False).budget.eflags_at
    # the search itself, in a heap strewn with copies of its probe's bytes and in an
    # engine whose CPU is made in a fresh mapping after them (a long test run's heap)
    litter = [struct.pack("<8Q", *x86._ENV_MAGIC) * 3 + bytes(i) for i in range(500)]
    ballast = [bytearray(1 << 20) for _ in range(8)]
    assert x86._find_env_path(Uc(UC_ARCH_X86, UC_MODE_32)) == x86._ENV_PATH
    del litter, ballast


class _ChargingExits(Exits):
    def io_out(self, vcpu: X86Vcpu, port: int, size: int, value: int) -> None:
        super().io_out(vcpu, port, size, value)
        vcpu.charge(1_000)          # what Xen's port handler costs the guest's clock


def test_a_hlt_right_after_an_exit_that_used_the_budget_up_halts() -> None:
    """``out; hlt`` in one block, the ``out``'s cost using the slice up: the run ends at
    the ``hlt`` and says HLT (it said BUDGET, and the next slice ran on past the hlt)."""
    cpu = X86Vcpu(_ChargingExits(), long_mode=False)
    cpu.map_bytes(0, bytes.fromhex("b041" "e6e9" "f4").ljust(0x1000, b"\0"))
    cpu.setup_real_mode(0, 0)        # mov al, 'A' ; out 0xe9, al ; hlt ; (zeros)
    result = cpu.run(500)
    assert result.reason is ExitReason.HLT and cpu.reg("eip") == 5
    # a budget used up the same way, the run stopped at the next block's start: BUDGET,
    # even where the byte before that block is an F4 that is not an instruction
    cpu = X86Vcpu(_ChargingExits(), long_mode=False)
    cpu.map_bytes(0, bytes.fromhex("e6e9" "eb01" "f4" "ebfe").ljust(0x1000, b"\0"))
    cpu.setup_real_mode(0, 0)        # out 0xe9, al ; jmp 1f ; .byte 0xf4 ; 1: jmp 1b
    result = cpu.run(500)
    assert result.reason is ExitReason.BUDGET and cpu.reg("eip") == 5


@pytest.mark.parametrize("first", [False, True], ids=["later-block", "first-block"])
@pytest.mark.parametrize("cs", [0x0000, 0x07C0, 0x1234])
def test_msr_traps_reach_the_hypervisor_whatever_the_code_segment(cs: int,
                                                                   first: bool) -> None:
    """A boot sector's rdmsr and wrmsr (real mode, CS 07C0): their code traps read the
    instruction at its linear address. They read it at CS base + the linear address, so
    with a CS whose base is not a multiple of 64 KiB they found other bytes and let
    unicorn answer (rdmsr 0, the wrmsr lost). In the very first block the vCPU runs
    (which unicorn reports to no new-block hook) the entry scan traps them."""
    class MsrExits(Exits):
        def msr_read(self, vcpu: X86Vcpu, msr: int) -> int | None:
            self.msrs.append((msr, -1))
            return 0x1122_3344_5566_7788

    exits = MsrExits()
    cpu = X86Vcpu(exits, long_mode=False)
    code = bytes.fromhex(("" if first else
                          "eb00")         # jmp 1f  (the traps are in a block of their own)
                         + "b91b00"       # 1: mov cx, 0x1b (IA32_APIC_BASE)
                         "0f32"           # rdmsr
                         "0f30"           # wrmsr
                         "f4")            # hlt
    memory = bytearray(0x20000)
    memory[(cs << 4) + 0x100:(cs << 4) + 0x100 + len(code)] = code
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(cs, 0x100)
    cpu.watch_new_code_for_wrmsr()
    reasons = [cpu.run(1_000_000).reason for _ in range(3)]   # a new trap yields first
    assert ExitReason.HLT in reasons
    assert exits.msrs == [(0x1B, -1), (0x1B, 0x1122_3344_5566_7788)]
    assert cpu.reg("eax") == 0x5566_7788 and cpu.reg("edx") == 0x1122_3344


def test_int82_is_a_hypercall_for_32bit_pv() -> None:
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    cpu.int82_hypercalls = True
    code = bytes.fromhex("b826000000" "cd82" "e6e9" "f4")  # mov eax,38; int 0x82; out; hlt
    cpu.map_bytes(0, code.ljust(0x1000, b"\0"), writable=True)
    cpu.setup_real_mode(0, 0)
    cpu.run(1000)
    assert exits.hypercalls[0][0] == "int 0x82"
    assert exits.outs == [(0xE9, (-38) & 0xFF)]


def test_invalid_opcode_is_a_fault() -> None:
    cpu = X86Vcpu(Exits(), long_mode=False)
    cpu.map_bytes(0, bytes.fromhex("0f0b").ljust(0x1000, b"\0"))  # ud2
    cpu.setup_real_mode(0, 0)
    result = cpu.run(1000)
    assert result.reason is ExitReason.FAULT and result.vector == 6


# -- the identity TLB for HVM vCPUs with paging off (fast guest stores) ----------------
# unicorn 2.1.4 sends every store through an executable TLB entry down its slow path,
# and with paging off x86 makes every entry executable. ``identity_tlb_until_paging``
# enters data pages read-write only, pages that ever held code read-write-executable,
# and hands translation back to unicorn's page walk when the guest turns paging on.
# These tests pin what must not change: self-modifying code is still seen, paging still
# translates, and unassigned memory still reads as all ones.

needs_native_fill = pytest.mark.skipif(_native_fill() is None,
                                       reason="the native TLB fill needs x86-64 Linux")


def _page_bit(cpu: X86Vcpu, page: int) -> bool:
    assert cpu._code_pages is not None
    return bool(cpu._code_pages[page >> 6] >> (page & 63) & 1)


# Real mode, code at 0000:2000; a subroutine at 0x1800 with data beside it at 0x1900; a
# page at 0x3000 that holds only data until the program writes code into it.
def _call(at: int, target: int) -> str:
    return "e8" + struct.pack("<H", (target - (at + 3)) & 0xFFFF).hex()


SMC_PROGRAM = bytes.fromhex(
    _call(0x2000, 0x1800) +  # 2000 call 0x1800         ; mov al, 0x11 ; ret
    "e6e9"                   # 2003 out 0xe9, al
    "0f20c0"                 # 2005 mov eax, cr0
    "0c01" "0f22c0"          # 2008 or al, 1 ; mov cr0, eax   ; PE on and off again:
    "24fe" "0f22c0"          # 200D and al, 0xfe ; mov cr0, eax ; the TLB is flushed,
    "c606001977"             # 2012 mov byte [0x1900], 0x77   ; so the subroutine's page
    "c606011822" +           # 2017 mov byte [0x1801], 0x22   ; is entered for data
    _call(0x201C, 0x1800) +  # 201C call 0x1800
    "e6e9"                   # 201F out 0xe9, al       ; 0x22, not the stale 0x11
    "c6060030b0"             # 2021 mov byte [0x3000], 0xb0   ; write code into a data page
    "c606013033"             # 2026 mov byte [0x3001], 0x33
    "c6060230c3" +           # 202B mov byte [0x3002], 0xc3   ; mov al, 0x33 ; ret
    _call(0x2030, 0x3000) +  # 2030 call 0x3000
    "e6e9"                   # 2033 out 0xe9, al
    "c606013044" +           # 2035 mov byte [0x3001], 0x44   ; patch it after it ran
    _call(0x203A, 0x3000) +  # 203A call 0x3000
    "e6e9"                   # 203D out 0xe9, al
    "c606005055"             # 203F mov byte [0x5000], 0x55   ; a page only ever of data
    "f4"                     # 2044 hlt
)


@needs_native_fill
def test_self_modifying_code_is_seen_with_the_identity_tlb() -> None:
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    memory = bytearray(0x10000)
    memory[0x2000:0x2000 + len(SMC_PROGRAM)] = SMC_PROGRAM
    memory[0x1800:0x1803] = bytes.fromhex("b011c3")  # mov al, 0x11 ; ret
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x2000)
    cpu.set_reg("esp", 0x7000)
    assert cpu.identity_tlb_until_paging()
    assert cpu.run(100_000).reason is ExitReason.HLT
    assert exits.outs == [(0xE9, 0x11), (0xE9, 0x22), (0xE9, 0x33), (0xE9, 0x44)]
    # pages that held code are entered executable (their stores stay checked); the
    # pure data pages are not
    assert _page_bit(cpu, 1) and _page_bit(cpu, 2) and _page_bit(cpu, 3)
    assert not _page_bit(cpu, 5) and not _page_bit(cpu, 7)
    assert cpu._identity_tlb


# 32-bit flat protected mode at 0x1000: turn paging on with linear 0x400000 mapped to
# physical 0x9000, and read through that mapping.
PAGING_PROGRAM = bytes.fromhex(
    "b800200000"    # mov eax, 0x2000       ; page directory
    "0f22d8"        # mov cr3, eax
    "0f20c1"        # mov ecx, cr0
    "81c900000080"  # or ecx, 0x80000000    ; PG
    "0f22c1"        # mov cr0, ecx          ; paging on, from ECX
    "a000004000"    # mov al, [0x400000]    ; linear 0x400000 = physical 0x9000
    "e6e9"          # out 0xe9, al
    "f4"            # hlt
)


def _paging_machine() -> tuple[X86Vcpu, Exits]:
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    memory = bytearray(0x10000)
    memory[0x800:0x800 + len(GDT)] = GDT
    memory[0x1000:0x1000 + len(PAGING_PROGRAM)] = PAGING_PROGRAM
    memory[0x2000:0x2008] = struct.pack("<II", 0x3003, 0x4003)  # PDE 0 and PDE 1
    for i in range(16):                                          # 0-64 KiB: identity
        memory[0x3000 + 4 * i:0x3004 + 4 * i] = struct.pack("<I", (i << 12) | 3)
    memory[0x4000:0x4004] = struct.pack("<I", 0x9003)            # 4 MiB -> 0x9000
    memory[0x9000] = 0x5A
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_flat32(gdt_base=0x800, eip=0x1000)
    cpu.set_reg("esp", 0x7000)
    return cpu, exits


@needs_native_fill
def test_turning_paging_on_hands_translation_back_to_the_page_walk() -> None:
    cpu, exits = _paging_machine()
    assert cpu.identity_tlb_until_paging()
    result = cpu.run(100_000)
    assert result.reason is ExitReason.HLT, result
    assert exits.outs == [(0xE9, 0x5A)]  # read through the page tables, not 1:1
    assert not cpu._identity_tlb


def test_the_same_program_without_the_identity_tlb() -> None:
    cpu, exits = _paging_machine()
    assert cpu.run(100_000).reason is ExitReason.HLT
    assert exits.outs == [(0xE9, 0x5A)]


# The same, after moves to control registers that leave paging off (CR0 without PG, one
# with an operand-size prefix, CR4, CR3): the native filter answers those itself.
CR_PROGRAM = bytes.fromhex(
    "0f20c0"        # mov eax, cr0
    "0f22c0"        # mov cr0, eax          ; PE, no PG: the filter's
    "660f22c0"      # mov cr0, eax (66)     ; a prefix before it: the filter's
    "31d2"          # xor edx, edx
    "0f22e2"        # mov cr4, edx          ; not CR0: the filter's
) + PAGING_PROGRAM


@needs_native_fill
def test_moves_to_cr0_without_paging_never_reach_python(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """The native filter answers each move to CR0 that leaves PG clear and each move to
    another control register; the one that sets PG (from ECX) goes to Python, which
    hands translation to the page walk, and the program reads through its page tables.
    With a block counter attached every trap is Python's (the counter hears of each)."""
    for counted in (False, True):
        cpu, exits = _paging_machine()
        cpu.uc.mem_write(0x1000, CR_PROGRAM)
        assert cpu.identity_tlb_until_paging()
        calls: list[int] = []
        original = cpu._on_mov_cr
        monkeypatch.setattr(cpu, "_on_mov_cr", lambda uc, at, size, user, calls=calls,
                            original=original: (calls.append(at), original(uc, at, size, user)))
        if counted:
            from xenlab.cpu.icount import counter_for

            counter_for(cpu)
        assert cpu.run(100_000).reason is ExitReason.HLT
        assert exits.outs == [(0xE9, 0x5A)] and not cpu._identity_tlb
        if cpu._crw.python == 0:
            pytest.skip("the native callbacks cannot run here")
        pg_at = 0x1000 + len(CR_PROGRAM) - len(PAGING_PROGRAM) + 17
        if counted:
            assert cpu._crw.answered == 0 and len(calls) == 5
        else:
            assert cpu._crw.answered == 4 and calls == [pg_at]


@needs_native_fill
def test_a_cr0_with_paging_set_from_outside_leaves_the_identity_tlb() -> None:
    """A context restored (the stepper's Back) or a register written by the hypervisor."""
    cpu, exits = _paging_machine()
    assert cpu.identity_tlb_until_paging()
    cpu.set_reg("cr3", 0x2000)
    cpu.set_reg("cr0", 0x80000011)
    cpu.set_reg("eip", 0x1000 + 20)  # at ``mov al, [0x400000]``
    assert cpu.run(1000).reason is ExitReason.HLT
    assert exits.outs == [(0xE9, 0x5A)]
    assert not cpu._identity_tlb


# Real mode: read a byte beyond RAM and one RAM page the host took away.
READ_PROGRAM = bytes.fromhex(
    "a10000"        # mov ax, [0x0000] with DS set by the test
    "e6e9"          # out 0xe9, al
    "f4"            # hlt
)


# Real mode: store a byte past the end of RAM, read it back.
WRITE_READ_PROGRAM = bytes.fromhex(
    "c606000042"    # mov byte [0x0000], 0x42 with DS set by the test
    "a00000"        # mov al, [0x0000]
    "e6e9"          # out 0xe9, al
    "f4"            # hlt
)


@pytest.mark.parametrize("identity_tlb", [True, False])
@pytest.mark.parametrize("native", [True, False])
def test_a_write_to_unassigned_memory_is_dropped(identity_tlb: bool, native: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty bus: the store goes nowhere, the read after it is still all ones (with
    the native MMIO callbacks, and with the Python ones used where those cannot run)."""
    if not native:
        monkeypatch.setattr(x86, "_native_unassigned", lambda: None)
    elif x86._native_unassigned() is None:
        pytest.skip("native callbacks cannot run here")
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    cpu.fill_unassigned_with_ones()
    if identity_tlb and not cpu.identity_tlb_until_paging():
        pytest.skip("the identity TLB needs the native fill callback")
    cpu.map_bytes(0, bytes(WRITE_READ_PROGRAM).ljust(0x10000, b"\x11"), writable=True)
    cpu.setup_real_mode(0, 0)
    cpu.set_reg("ds", 0x2000)                 # 0x20000: past the end of RAM
    assert cpu.run(1000).reason is ExitReason.HLT
    assert exits.outs == [(0xE9, 0xFF)]
    assert cpu.mem(0x20000, 2) == b"\xff\xff"


@needs_native_fill
def test_unassigned_memory_reads_all_ones_but_ram_is_not_hooked() -> None:
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    cpu.fill_unassigned_with_ones()
    assert cpu.identity_tlb_until_paging()
    cpu.map_bytes(0, bytes(READ_PROGRAM).ljust(0x10000, b"\x11"), writable=True)
    cpu.setup_real_mode(0, 0)
    cpu.set_reg("ds", 0x2000)                 # 0x20000: past the end of RAM
    assert cpu.run(1000).reason is ExitReason.HLT
    assert exits.outs == [(0xE9, 0xFF)]
    # the all-ones hook covers what was unassigned, not the RAM below 64 KiB
    assert all(first >= 0x10000 for first, _last, _h in cpu._ones_hooks)
    cpu.unmap(0, 0x10000)                     # the host takes the RAM away ...
    cpu.map_bytes(0, bytes(READ_PROGRAM).ljust(0x1000, b"\x22"), writable=True)
    cpu.setup_real_mode(0, 0)
    cpu.set_reg("ds", 0x900)                  # ... and 0x9000 is now unassigned
    assert cpu.run(1000).reason is ExitReason.HLT
    assert exits.outs == [(0xE9, 0xFF), (0xE9, 0xFF)]
    cpu.set_reg("ds", 0)
    cpu.setup_real_mode(0, 0)
    cpu.set_reg("ds", 0)
    assert cpu.run(1000).reason is ExitReason.HLT
    assert exits.outs[-1] == (0xE9, READ_PROGRAM[0])  # RAM still reads as RAM


@needs_native_fill
def test_single_steps_through_the_switch_to_paging() -> None:
    """Each step is one instruction, also where a new block first gets its traps."""
    cpu, exits = _paging_machine()
    assert cpu.identity_tlb_until_paging()
    eips = []
    for _ in range(7):
        assert cpu.step().reason is ExitReason.STEP
        eips.append(cpu.reg("eip") - 0x1000)
    assert eips == [5, 8, 11, 17, 20, 25, 27]
    assert not cpu._identity_tlb and exits.outs == [(0xE9, 0x5A)]


def test_a_real_mode_interrupt_frame_wraps_around_the_stack_segment() -> None:
    """FLAGS, CS and IP are pushed at SS:SP-2, -4, -6 modulo 64 KiB, and iret pops them."""
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    memory = bytearray(0x10000)
    memory[0x10 * 4:0x10 * 4 + 4] = struct.pack("<HH", 0x8000, 0)   # IVT[0x10]
    memory[0x7C00:0x7C08] = bytes.fromhex("bc0200" "cd10" "e6e9" "f4")  # mov sp,2; int; out
    # the handler: mov ax, [0xFFFC] (the pushed IP) ; out 0xe9, al ; mov al, 0x42 ; iret
    memory[0x8000:0x8009] = bytes.fromhex("a1fcff" "e6e9" "b042" "cf" "90")
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x7C00)
    assert cpu.run(1000).reason is ExitReason.HLT
    assert exits.outs == [(0xE9, 0x05), (0xE9, 0x42)]  # return IP 0x7C05, then the handler's AL
    assert cpu.reg("esp") & 0xFFFF == 2 and cpu.reg("eip") == 0x7C08
    assert struct.unpack("<H", cpu.mem(0xFFFE, 2))[0] == 0  # CS at SS:0xFFFE


@pytest.mark.parametrize("native", [True, False])
def test_rdtsc_and_rdtscp_read_the_hypervisors_tsc(native: bool) -> None:
    """unicorn's TSC is the host's cycle counter; a vCPU answers ``rdtsc``/``rdtscp``
    (also in the engine's very first block) with ``tsc()``, natively or in Python."""
    exits = Exits()  # tsc() = 0x1234_5678_9ABC
    cpu = X86Vcpu(exits, long_mode=False, native_budget=native)
    program = bytes.fromhex(
        "0f31"      # 7C00 rdtsc            ; in the first block
        "e6e9"      # 7C02 out 0xe9, al     ; 0xBC
        "eb00"      # 7C04 jmp 7C06         ; a new block
        "0f01f9"    # 7C06 rdtscp           ; ECX = TSC_AUX = 0
        "88e0e6e9"  # 7C09 mov al, ah ; out ; 0x9A
        "88d0e6e9"  # 7C0D mov al, dl ; out ; 0x34
        "88c8e6e9"  # 7C11 mov al, cl ; out ; 0x00
        "f4")       # 7C15 hlt
    cpu.map_bytes(0, bytes(0x7C00) + program.ljust(0x400, b"\0"), writable=True)
    cpu.setup_real_mode(0, 0x7C00)
    cpu.set_reg("ecx", 0x55)
    cpu.watch_new_code_for_wrmsr()
    assert cpu.run(10_000).reason is ExitReason.HLT
    assert exits.outs == [(0xE9, 0xBC), (0xE9, 0x9A), (0xE9, 0x34), (0xE9, 0x00)]


class ClockExits(Exits):
    """A TSC that runs with the slice's virtual time, as an HVM guest's does."""

    def __init__(self) -> None:
        super().__init__()
        self.time = (0x10000 << 32) - 100  # the high half changes on the way

    def tsc(self, vcpu: X86Vcpu) -> int:
        return self.time + vcpu.elapsed()


def _tsc_loop(native: bool) -> tuple[X86Vcpu, list[int]]:
    exits = ClockExits()
    cpu = X86Vcpu(exits, long_mode=False, native_budget=native)
    program = bytes.fromhex(
        "bf0060"      # 7C00 mov di, 0x6000
        "b92800"      # 7C03 mov cx, 40
        "0f31"        # 7C06 rdtsc
        "668905"      # 7C08 mov [di], eax
        "66895504"    # 7C0B mov [di+4], edx
        "83c708"      # 7C0F add di, 8
        "e2f2"        # 7C12 loop 7C06        ; a block per read: the clock moves on
        "f4")         # 7C14 hlt
    cpu.map_bytes(0, bytes(0x7C00) + program.ljust(0x400, b"\0") + bytes(0x8000),
                  writable=True)
    cpu.setup_real_mode(0, 0x7C00)
    while True:                        # slices that end mid-loop
        result = cpu.run(37)
        exits.time += result.executed
        if result.reason is ExitReason.HLT:
            break
    return cpu, list(struct.unpack("<40Q", cpu.mem(0x6000, 320)))


def test_the_native_tsc_callback_and_python_read_the_same_clock() -> None:
    """x86._TSC_THUNK answers rdtsc from a base Python works out at the first read of each
    run (``tsc() + budget left``): over many slices it reads what ``tsc()`` says, the
    same values, read for read, as the Python callback."""
    native, native_reads = _tsc_loop(True)
    python, python_reads = _tsc_loop(False)
    assert native_reads == python_reads
    assert all(a < b for a, b in itertools.pairwise(native_reads))
    assert native_reads[0] >> 32 == 0xFFFF and native_reads[-1] >> 32 == 0x10000
    if native.native_budget:
        assert 20 < native.native_tsc_reads() < 40  # the first read of each run: Python
    assert python.native_tsc_reads() == 0


def test_the_native_tsc_callback_reads_the_struct_where_it_is() -> None:
    """x86._TSC_THUNK addresses _Tsc's fields by fixed offsets; rdtscp enters it at
    _TSCP_ENTRY."""
    from xenlab.cpu.x86 import _TSC_THUNK, _TSCP_ENTRY, _Tsc

    offsets = {name: getattr(_Tsc, name).offset for name in (
        "valid", "base", "left", "reg_write_batch", "python", "n", "ids", "ptrs", "vals",
        "answered")}
    assert offsets == {"valid": 0, "base": 8, "left": 16, "reg_write_batch": 24,
                       "python": 32, "n": 40, "ids": 48, "ptrs": 64, "vals": 88,
                       "answered": 112}
    assert _TSC_THUNK[_TSCP_ENTRY:_TSCP_ENTRY + 5] == bytes.fromhex("b903000000")
    assert len(_TSC_THUNK) == 76 and _TSC_THUNK.endswith(b"\xff\x66\x20")


@pytest.mark.skipif(shutil.which("as") is None, reason="needs GNU as (Debian: binutils)")
def test_the_native_callbacks_are_their_assembly_source(tmp_path: Path) -> None:
    """xenlab/cpu/native.S, assembled by GNU as, is byte for byte the machine code the CPU
    layer copies into its executable page: the comments beside the bytes say what runs."""
    from elftools.elf.elffile import ELFFile

    from xenlab.cpu import icount

    source = Path(x86.__file__).with_name("native.S")
    subprocess.run(["as", "--64", "-o", str(tmp_path / "native.o"), str(source)], check=True)
    expected = {".text.budget": x86._THUNK, ".text.fill": x86._FILL_THUNK,
                ".text.ones": x86._ONES_THUNK, ".text.drop": x86._DROP_THUNK,
                ".text.rm_intr": x86._RM_INTR_THUNK, ".text.tsc": x86._TSC_THUNK,
                ".text.ioout": x86._IOOUT_THUNK, ".text.ioin": x86._IOIN_THUNK,
                ".text.newtb": x86._NEWTB_THUNK, ".text.crwatch": x86._CRWATCH_THUNK,
                ".text.cpuid": x86._CPUID_THUNK,
                ".text.newtb64": x86._NEWTB64_THUNK, ".text.walk": x86._WALK_THUNK,
                ".text.icount": icount._CODE, ".text.bcount": icount._BLOCK_CODE,
                ".text.bfine": icount._FINE_CODE, ".text.bedge": icount._EDGE_CODE}
    with open(tmp_path / "native.o", "rb") as f:
        elf = ELFFile(f)
        found = {s.name: s.data() for s in elf.iter_sections() if s.name.startswith(".text.")}
        relocated = [s.name for s in elf.iter_sections() if s.name.startswith(".rela")]
    assert found == expected
    assert not relocated        # position-independent: it runs wherever the page is
    assert found[".text.tsc"][x86._TSCP_ENTRY:].startswith(bytes.fromhex("b903000000"))


def test_the_native_callbacks_fit_their_places_in_the_page() -> None:
    """Each native callback ends before the next one's offset and the last inside the
    page: a callback that grew past its place would move every later one (the Python
    side calls them at fixed offsets)."""
    layout = x86._native_layout()
    ends = [offset + len(code) for offset, code in layout]
    assert all(end <= nxt for end, (nxt, _) in zip(ends, layout[1:], strict=False))
    assert ends[-1] <= x86.NATIVE_CODE_SIZE
    assert [offset for offset, _ in layout] == sorted({offset for offset, _ in layout})


# -- differential: the identity TLB against unicorn's own, on self-modifying programs ------
_SUBS = (0x2000, 0x2100, 0x3000, 0x3100)            # mov al, imm ; ret  (two code pages)
_DATA = (0x2080, 0x3080, 0x5000, 0x5001, 0x6000)    # beside code, and in pure data pages
_op = st.one_of(
    st.tuples(st.just("store"), st.sampled_from([s + 1 for s in _SUBS] + list(_DATA)),
              st.integers(0, 255)),
    st.tuples(st.just("call"), st.sampled_from(_SUBS)),
    st.tuples(st.just("load"), st.sampled_from([s + 1 for s in _SUBS] + list(_DATA))),
    st.tuples(st.just("inc"), st.sampled_from([s + 1 for s in _SUBS] + list(_DATA))),
    st.tuples(st.just("flush")),
)


def _smc_program(ops: list[tuple]) -> bytes:
    code = bytearray()
    for op in ops:
        at = 0x1000 + len(code)
        if op[0] == "store":    # mov byte [addr], imm
            code += b"\xc6\x06" + struct.pack("<HB", op[1], op[2])
        elif op[0] == "call":   # call sub ; out 0xe9, al
            code += b"\xe8" + struct.pack("<H", (op[1] - (at + 3)) & 0xFFFF) + b"\xe6\xe9"
        elif op[0] == "load":   # mov al, [addr] ; out 0xe9, al
            code += b"\xa0" + struct.pack("<H", op[1]) + b"\xe6\xe9"
        elif op[0] == "inc":    # inc byte [addr]
            code += b"\xfe\x06" + struct.pack("<H", op[1])
        else:                   # PE on and off: unicorn flushes its TLB
            code += bytes.fromhex("0f20c0" "0c01" "0f22c0" "24fe" "0f22c0")
    return bytes(code) + b"\xf4"


@contextlib.contextmanager
def aging_at_every_run() -> object:
    """x86.CODE_AGING_PERIOD 0: every run() first ages the vCPU's code-page bitmap."""
    period, x86.CODE_AGING_PERIOD = x86.CODE_AGING_PERIOD, 0
    try:
        yield
    finally:
        x86.CODE_AGING_PERIOD = period


def _run_smc(ops: list[tuple], identity: bool, *, aging: bool = False
             ) -> tuple[list[tuple[int, int]], bytes]:
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    memory = bytearray(0x10000)
    program = _smc_program(ops)
    memory[0x1000:0x1000 + len(program)] = program
    for i, sub in enumerate(_SUBS):
        memory[sub:sub + 3] = bytes([0xB0, 0x10 + i, 0xC3])
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x1000)
    cpu.set_reg("esp", 0x7000)
    cpu.watch_new_code_for_wrmsr()
    if identity:
        assert cpu.identity_tlb_until_paging()
    if not aging:
        assert cpu.run(1_000_000).reason is ExitReason.HLT
        return exits.outs, cpu.mem(0x2000, 0x5000)
    with aging_at_every_run():      # slices of a block or so, the bitmap aged before each
        for _ in range(100_000):
            result = cpu.run(64)      # (more than any block of these costs)
            if result.reason is not ExitReason.BUDGET:
                break
    assert result.reason is ExitReason.HLT
    return exits.outs, cpu.mem(0x2000, 0x5000)


@needs_native_fill
@settings(derandomize=True, deadline=None, max_examples=100)
@given(ops=st.lists(_op, min_size=1, max_size=40))
@example(ops=[("call", 0x2000), ("flush",), ("store", 0x2080, 5), ("store", 0x2001, 0x77),
              ("call", 0x2000)])  # a code page entered for data after a flush
def test_the_identity_tlb_runs_self_modifying_programs_as_unicorn_does(ops) -> None:
    """Random stores into code and data, calls of the patched code, loads, read-modify-
    writes and TLB flushes: the same outputs and memory with either TLB, and with the
    code-page bitmap aged before every slice of a few blocks."""
    expected = _run_smc(ops, identity=False)
    assert _run_smc(ops, identity=True) == expected
    assert _run_smc(ops, identity=True, aging=True) == expected


# call 0x2000 ; out 0xe9, al ; hlt -- mov byte [0x2080], 7 ; hlt -- mov byte [0x2080], 8 ;
# mov byte [0x2001], 0x42 ; hlt -- call 0x2000 ; out 0xe9, al ; hlt   (at 0x2000: mov
# al, 0x10 ; ret). The first store after a TLB fill takes unicorn's slow path whatever the
# entry: the second one is the store to code that only the aging's drop of the page's
# translated code makes seen.
AGING_PROGRAM = bytes.fromhex("e8fd0fe6e9f4" "c606802007f4" "c606802008" "c606012042f4"
                              "e8e60fe6e9f4")


@needs_native_fill
def test_a_page_that_ran_no_code_since_the_last_aging_is_a_data_page_again() -> None:
    """The code-page bitmap's aging (X86Vcpu._age_code_pages): a page whose code ran
    before the last aging but not since loses its translated code and its bit, so
    stores to it take the fast path; code written there then runs as written, and the
    page is code again."""
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    memory = bytearray(0x10000)
    memory[0x1000:0x1000 + len(AGING_PROGRAM)] = AGING_PROGRAM
    memory[0x2000:0x2003] = bytes([0xB0, 0x10, 0xC3])
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x1000)
    cpu.set_reg("esp", 0x7000)
    assert cpu.identity_tlb_until_paging()
    page = 0x2

    def code_page() -> bool:
        held = bool(cpu._code_pages[0] >> page & 1)
        # the new-block filter's copy says the same (else new code there would not be
        # noted: no TLB flush when the page turns code again)
        assert bool(cpu._newtb_seen[0] >> page & 1) == (page in cpu._seen_code_pages)
        return held

    with aging_at_every_run():
        assert cpu.run(10_000).reason is ExitReason.HLT        # calls into the page
        assert code_page() and exits.outs == [(0xE9, 0x10)]
        assert cpu.run(10_000).reason is ExitReason.HLT        # aged (code ran): a store
        assert code_page() and cpu.aged_code_pages == 0
        assert cpu.run(10_000).reason is ExitReason.HLT        # aged (none ran): a store
        assert not code_page() and cpu.aged_code_pages == 1    # into a data page now
        assert page not in cpu._seen_code_pages
        assert cpu.run(10_000).reason is ExitReason.HLT        # calls the patched code
    assert code_page() and exits.outs == [(0xE9, 0x10), (0xE9, 0x42)]
    assert page in cpu._seen_code_pages
    assert cpu.mem(0x2080, 1) == b"\x08"


def test_many_holes_fall_back_to_one_all_ones_hook() -> None:
    """Past MAX_UNASSIGNED_HOOKS separate holes, one hook covers all of the space below
    4 GiB (correct, only slower), and a hole still reads as all ones."""
    from xenlab.cpu.x86 import MAX_UNASSIGNED_HOOKS

    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    cpu.fill_unassigned_with_ones()
    cpu.map_bytes(0, READ_PROGRAM.ljust(0x40000, b"\x11"), writable=True)
    cpu.setup_real_mode(0, 0)
    cpu.set_reg("ds", 0x3000)
    assert cpu.run(1000).reason is ExitReason.HLT
    for i in range(MAX_UNASSIGNED_HOOKS + 3):  # every other page from 64 KiB on
        cpu.unmap(0x10000 + 0x2000 * i, 0x1000)
    assert [(f, la) for f, la, _h in cpu._ones_hooks] == [(0, (1 << 32) - 1)]
    cpu.setup_real_mode(0, 0)
    cpu.set_reg("ds", 0x1200)  # 0x12000, a hole
    assert cpu.run(1000).reason is ExitReason.HLT
    assert exits.outs == [(0xE9, 0x11), (0xE9, 0xFF)]
    cpu.close()


def test_unmapping_one_page_of_a_larger_mapping_keeps_the_rest() -> None:
    """A page taken out of the middle of the guest's RAM (Xen frees it, add_to_physmap):
    the rest of the mapping is still there, reads and all, and the page can be mapped
    again (with the old bookkeeping the second unmap of a page that was part of a larger
    mapping asked unicorn for a page it no longer had: UC_ERR_NOMEM)."""
    import ctypes

    ram = ctypes.create_string_buffer(16 * 4096)
    ram[0x2000:0x2004] = b"low!"
    ram[0xE000:0xE004] = b"high"
    other = ctypes.create_string_buffer(4096)
    other[0:4] = b"xen!"
    cpu = X86Vcpu(Exits(), long_mode=False)
    cpu.map_host(0x100000, 16 * 4096, ctypes.addressof(ram))
    cpu.unmap(0x105000, 4096)
    assert not cpu.is_mapped(0x105000)
    assert cpu.is_mapped(0x104FFF) and cpu.is_mapped(0x106000)
    assert cpu.mem(0x102000, 4) == b"low!" and cpu.mem(0x10E000, 4) == b"high"
    cpu.map_host(0x105000, 4096, ctypes.addressof(other))
    assert cpu.mem(0x105000, 4) == b"xen!"
    cpu.unmap(0x105000, 4096)        # and out again, as when it moves on
    assert not cpu.is_mapped(0x105000)
    assert sorted(cpu.mapped) == [(0x100000, 0x5000), (0x106000, 0xA000)]
    cpu.close()


# A PV vCPU in long mode: the low 2 MiB mapped 1:1, linear 0x400000 mapped to FRAME
PV_FRAME = 0x800000
PV_FREE_PROGRAM = bytes.fromhex(
    "b800004000"          # 1000 mov eax, 0x400000
    "ffd0"                # 1005 call rax              ; FRAME's code: mov eax, N ; ret
    "0f05"                # 1007 syscall               ; the hypercall records eax
    "f4"                  # 1009 hlt
)


def test_a_frame_freed_in_a_pv_hypercall_leaves_no_fault_and_no_old_code() -> None:
    """A PV vCPU's hypercall frees a frame (memory_op) and it comes back with other code
    (as a page the guest populates again). unicorn looks the start of a region it
    unmaps up as a *linear* address: where the guest maps nothing (a machine frame's
    address, as here) that lookup was a page fault left pending, delivered after the
    hypercall (the PV fuzzer's seed 6 crashed on it), and CR2 changed. And the code
    translated from the old frame ran again (its RAM offset reused) unless all
    translations are dropped."""
    seen: list[tuple[int, int]] = []

    class Freeing(Exits):
        def hypercall(self, vcpu: X86Vcpu, via: str) -> None:
            n, rax = len(seen), vcpu.reg("rax")
            vcpu.unmap(PV_FRAME, 4096)
            vcpu.flush_tlb()       # as free_domheap_page does
            code = bytes.fromhex(f"b8{n + 2:02x}000000c3")
            vcpu.map_bytes(PV_FRAME, code.ljust(4096, b"\xcc"), writable=True)
            seen.append((rax, vcpu.reg("cr2")))
            vcpu.request_stop()

    cpu = X86Vcpu(Freeing(), long_mode=True)
    ram = ctypes.create_string_buffer(2 << 20)
    for at, data in ((0x10000, struct.pack("<Q", 0x11000 | 7)),      # PML4[0]
                     (0x11000, struct.pack("<Q", 0x12000 | 7)),      # PDPT[0]
                     (0x12000, struct.pack("<3Q", 0x87, 0, 0x13007)),  # PD: 2 MiB at 0
                     (0x13000, struct.pack("<Q", PV_FRAME | 7)),     # PT: 0x400000
                     (0x2000, struct.pack("<3Q", 0, 0x00AF9A000000FFFF, 0x00CF92000000FFFF)),
                     (0x1000, PV_FREE_PROGRAM)):
        ctypes.memmove(ctypes.addressof(ram) + at, data, len(data))
    cpu.map_host(0, 2 << 20, ctypes.addressof(ram))
    cpu.map_bytes(PV_FRAME, bytes.fromhex("b801000000c3").ljust(4096, b"\xcc"), writable=True)
    cpu.setup_long_mode(cr3=0x10000, gdt_base=0x2000, gdt_limit=23)
    cpu.set_reg("cs", 0x08)
    cpu.set_reg("ss", 0x10)
    for _ in range(3):
        cpu.set_reg("cr2", 0x5A5A000)
        cpu.set_reg("rsp", 0x9000)
        cpu.set_reg("rip", 0x1000)
        result = cpu.run(10_000)
        assert result.reason is ExitReason.YIELD, result
        assert cpu.reg("rip") == 0x1009
    assert seen == [(1, 0x5A5A000), (2, 0x5A5A000), (3, 0x5A5A000)]
    cpu.close()


# Real-mode interrupts every way they come: `int n`, a fault (#DE) whose handler fixes
# the cause and returns to the faulting instruction, and `int n` again through an IVT
# moved with lidt; ESP's upper half set and EFLAGS.AC set before the first one.
RM_INT_PROGRAM = bytes.fromhex(
    "66bc00703412"        # 7C00 mov esp, 0x12347000
    "669c6658"            # pushfd ; pop eax
    "660d00000400"        # or eax, 0x40000       ; AC
    "6650669d"            # push eax ; popfd
    "cd10"                # int 0x10              ; IVT[0x10] -> 0000:8000
    "31db"                # xor bx, bx
    "b80700"              # mov ax, 7
    "f6f3"                # div bl                ; #DE -> IVT[0] -> 0000:8040
    "a22060"              # mov [0x6020], al
    "0f011e007d"          # lidt [0x7d00]         ; the IVT at 0x9000
    "cd10"                # int 0x10              ; -> 0000:8080
    "669c668f062460"      # pushfd ; pop dword [0x6024]
    "6689262860"          # mov [0x6028], esp
    "f4")                 # hlt
RM_INT_HANDLERS = {
    0x8000: bytes.fromhex("669c668f060060" "6689260460" "fe061060" "cf"),
    0x8040: bytes.fromhex("b301" "669c668f060860" "6689260c60" "cf"),  # mov bl, 1 first
    0x8080: bytes.fromhex("fe061160" "6689261460" "cf"),
}


def _rm_int_run(native: bool) -> tuple[X86Vcpu, bytes]:
    cpu = X86Vcpu(Exits(), long_mode=False, native_budget=native)
    memory = bytearray(0x10000)
    memory[0:4] = struct.pack("<HH", 0x8040, 0)                       # IVT[0]: #DE
    memory[0x40:0x44] = struct.pack("<HH", 0x8000, 0)                 # IVT[0x10]
    memory[0x9040:0x9044] = struct.pack("<HH", 0x8080, 0)             # moved IVT[0x10]
    memory[0x7C00:0x7C00 + len(RM_INT_PROGRAM)] = RM_INT_PROGRAM
    memory[0x7D00:0x7D06] = struct.pack("<HI", 0x3FF, 0x9000)
    for at, code in RM_INT_HANDLERS.items():
        memory[at:at + len(code)] = code
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x7C00)
    assert cpu.run(10_000).reason is ExitReason.HLT
    return cpu, cpu.mem(0, 0x10000)


def test_real_mode_interrupts_native_and_in_python_leave_the_same_machine() -> None:
    """The native interrupt callback (x86._RM_INTR_THUNK) and the Python path
    (_vector_through_ivt) leave the same registers and memory, and both do what QEMU's
    do_interrupt_real does: SP decremented in ESP's low half only, AC (like IF and TF)
    clear in the handler and after its 16-bit iret."""
    native, native_mem = _rm_int_run(True)
    python, python_mem = _rm_int_run(False)
    if native.native_budget:
        assert native.native_interrupts() == 3
    assert python.native_interrupts() == 0
    assert native_mem == python_mem
    for name in ("eax", "ebx", "ecx", "edx", "esp", "eip", "eflags", "cs", "ss"):
        assert native.reg(name) == python.reg(name), name
    flags_in_int, esp_in_int, flags_in_de, esp_in_de = struct.unpack_from(
        "<IIII", native_mem, 0x6000)
    assert esp_in_int == esp_in_de == 0x12347000 - 6
    assert not flags_in_int & (1 << 18 | 1 << 9 | 1 << 8) and not flags_in_de & (1 << 18)
    assert native_mem[0x6010:0x6012] == b"\x01\x01" and native_mem[0x6020] == 7
    flags_after, esp_after = struct.unpack_from("<II", native_mem, 0x6024)
    assert esp_after == 0x12347000 and not flags_after & (1 << 18)
    assert struct.unpack_from("<I", native_mem, 0x6014)[0] == 0x12347000 - 6


def test_the_native_interrupt_callback_reads_the_struct_where_it_is() -> None:
    """x86._RM_INTR_THUNK addresses _RmIntr's fields by fixed offsets (and the IDTR's
    base and limit inside it): the struct must keep them."""
    from xenlab.cpu.x86 import _RM_INTR_THUNK, _RmIntr, _UcMmr

    offsets = {name: getattr(_RmIntr, name).offset for name in (
        "python", "reg_read_batch", "reg_write_batch", "mem_read", "mem_write", "to_python",
        "delivered", "read_ids", "write_ids", "read_ptrs", "write_ptrs", "cr0", "idtr",
        "regs", "entry", "frame")}
    assert offsets == {"python": 0, "reg_read_batch": 8, "reg_write_batch": 16,
                       "mem_read": 24, "mem_write": 32, "to_python": 40, "delivered": 72,
                       "read_ids": 80, "write_ids": 112, "read_ptrs": 136,
                       "write_ptrs": 192, "cr0": 232, "idtr": 240, "regs": 264,
                       "entry": 304, "frame": 308}
    assert (_UcMmr.base.offset, _UcMmr.limit.offset) == (8, 16)
    assert len(_RM_INTR_THUNK) == 318 and _RM_INTR_THUNK.endswith(b"\xff\x22")
