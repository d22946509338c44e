"""The instruction counter (xenlab/cpu/icount.py) on a bare vCPU: exact counts, a stop
before any instruction, a breakpoint, the ring of recent addresses, and the vCPU's
code traps (wrmsr here) called by the counter's hook exactly as unicorn called them."""

from __future__ import annotations

import struct

import pytest

from xenlab.cpu.icount import BlockCounter, InstructionCounter
from xenlab.cpu.x86 import ExitReason, X86Vcpu


class Exits:
    """A minimal 'hypervisor' that records what the vCPU hands it."""

    def __init__(self) -> None:
        self.outs: list[int] = []
        self.msrs: list[tuple[int, int]] = []

    def hypercall(self, vcpu: X86Vcpu, via: str) -> None:
        vcpu.set_return(0)

    def io_in(self, vcpu: X86Vcpu, port: int, size: int) -> int:
        return 0xFF

    def io_out(self, vcpu: X86Vcpu, port: int, size: int, value: int) -> None:
        self.outs.append(value)

    def cpuid(self, vcpu: X86Vcpu, leaf: int, subleaf: int) -> tuple[int, int, int, int] | None:
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
        return 0


# Real mode at 0000:7C00; assembly beside every byte string.
PROGRAM = b"".join([
    bytes.fromhex("b90a00"),          # 7C00 mov cx, 10
    bytes.fromhex("40"),              # 7C03 inc ax          ; the loop: 3 instructions
    bytes.fromhex("e6e9"),            # 7C04 out 0xe9, al
    bytes.fromhex("e2fb"),            # 7C06 loop 7C03
    bytes.fromhex("cd10"),            # 7C08 int 0x10        ; IVT -> 0000:8000
    bytes.fromhex("66b9000000c0"),    # 7C0A mov ecx, 0xc0000000
    bytes.fromhex("0f30"),            # 7C10 wrmsr           ; a code trap
    bytes.fromhex("f4"),              # 7C12 hlt
])
HANDLER = bytes.fromhex("b042" "cf")  # 8000: mov al, 0x42 ; iret
INSTRUCTIONS = 1 + 10 * 3 + 1 + 2 + 3   # mov, the loop, int, the handler, mov/wrmsr/hlt


def _machine() -> tuple[X86Vcpu, Exits]:
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)
    memory = bytearray(0x10000)
    memory[0x10 * 4 : 0x10 * 4 + 4] = struct.pack("<HH", 0x8000, 0)
    memory[0x7C00 : 0x7C00 + len(PROGRAM)] = PROGRAM
    memory[0x8000 : 0x8000 + len(HANDLER)] = HANDLER
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x7C00)
    cpu.set_reg("esp", 0x7000)
    cpu.scan_wrmsr(0x7C00, PROGRAM)
    return cpu, exits


COUNTERS = pytest.mark.parametrize("Counter", [InstructionCounter, BlockCounter],
                                   ids=["per-instruction", "per-block"])


@COUNTERS
def test_counts_every_instruction_started_and_calls_the_traps_once(Counter: type) -> None:
    cpu, exits = _machine()
    counter = Counter(cpu)
    assert counter.native                   # x86-64 Linux: the hook is native code
    assert cpu.run(100_000).reason is ExitReason.HLT
    assert counter.count == INSTRUCTIONS and not counter.reached
    assert exits.outs == list(range(1, 11))
    assert exits.msrs == [(0xC0000000, 0x42)]  # the trap ran once, called by the counter
    assert counter.recent(3) == [0x7C0A, 0x7C10, 0x7C12]
    counter.close()                         # the vCPU traps wrmsr itself again
    assert all(handle is not None for handle in cpu._wrmsr_hooks.values())


@COUNTERS
def test_stops_before_any_instruction_as_single_steps_leave_it(Counter: type) -> None:
    for n in range(INSTRUCTIONS):
        cpu, _ = _machine()
        counter = Counter(cpu)
        counter.stop_before(n)
        cpu.run(100_000)
        assert counter.count == n and counter.reached
        stepped, _ = _machine()
        for _ in range(n):
            stepped.step()
        assert cpu.registers() == stepped.registers(), n
        counter.stop_before(None)             # and on to the end from there
        assert cpu.run(100_000).reason is ExitReason.HLT
        assert counter.count == INSTRUCTIONS


@COUNTERS
def test_a_breakpoint_stops_before_the_instruction_at_an_address(Counter: type) -> None:
    cpu, _ = _machine()
    counter = Counter(cpu)
    counter.break_at(0x7C03, after=5)         # the loop's first instruction, once armed
    cpu.run(100_000)
    assert counter.reached and counter.count == 7 and cpu.reg("eip") == 0x7C03
    assert cpu.reg("ecx") & 0xFFFF == 8
    counter.break_at(None)
    cpu.run(100_000)
    assert counter.count == INSTRUCTIONS


# A fault in the middle of a block: #DE from div, vectored through the IVT (its handler
# makes the divisor 1 and returns to the div, which runs again).
FAULTING = b"".join([
    bytes.fromhex("b80700"),          # 7C00 mov ax, 7
    bytes.fromhex("30db"),            # 7C03 xor bl, bl
    bytes.fromhex("f6f3"),            # 7C05 div bl          ; #DE -> 0000:8100
    bytes.fromhex("40"),              # 7C07 inc ax
    bytes.fromhex("f4"),              # 7C08 hlt
])
DE_HANDLER = bytes.fromhex("b301" "cf")   # 8100: mov bl, 1 ; iret
FAULTING_INSTRUCTIONS = 3 + 2 + 3        # mov, xor, div (faults); the handler; div, inc, hlt


def _faulting() -> X86Vcpu:
    cpu = X86Vcpu(Exits(), long_mode=False)
    memory = bytearray(0x10000)
    memory[0:4] = struct.pack("<HH", 0x8100, 0)
    memory[0x7C00 : 0x7C00 + len(FAULTING)] = FAULTING
    memory[0x8100 : 0x8100 + len(DE_HANDLER)] = DE_HANDLER
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x7C00)
    cpu.set_reg("esp", 0x7000)
    return cpu


@COUNTERS
def test_a_fault_inside_a_block_counts_the_instructions_before_it(Counter: type) -> None:
    """The per-block counter adds a block's instructions when it starts: the #DE in the
    middle of one leaves the instructions after the div uncounted, exactly."""
    cpu = _faulting()
    counter = Counter(cpu)
    assert cpu.run(100_000).reason is ExitReason.HLT
    assert counter.count == FAULTING_INSTRUCTIONS and cpu.reg("eax") & 0xFFFF == 0x0008
    for n in range(FAULTING_INSTRUCTIONS):
        cpu = _faulting()
        counter = Counter(cpu)
        counter.stop_before(n)
        cpu.run(100_000)
        assert counter.count == n and counter.reached
        stepped = _faulting()
        for _ in range(n):
            stepped.step()
        assert cpu.registers() == stepped.registers(), n
        counter.stop_before(None)
        assert cpu.run(100_000).reason is ExitReason.HLT
        assert counter.count == FAULTING_INSTRUCTIONS
        counter.close()


def test_the_per_block_counter_gives_back_the_real_mode_vectors() -> None:
    cpu = _faulting()
    before = tuple(cpu._rm.to_python)
    counter = BlockCounter(cpu)
    assert tuple(cpu._rm.to_python) != before       # #DE and the like go through Python
    counter.close()
    assert tuple(cpu._rm.to_python) == before and cpu._counter is None


# 32-bit flat protected mode: an exception ends the slice (Xen injects it), here after a
# #DE in the middle of a block; the "hypervisor" (the test) sets the divisor to 1 and
# runs the div again.
FLAT_GDT = bytes(8) + bytes.fromhex("ffff0000009acf00" "ffff00000092cf00")
PROTECTED = b"".join([
    bytes.fromhex("b807000000"),      # 1000 mov eax, 7
    bytes.fromhex("31c9"),            # 1005 xor ecx, ecx
    bytes.fromhex("f7f1"),            # 1007 div ecx         ; #DE: the slice ends
    bytes.fromhex("40"),              # 1009 inc eax
    bytes.fromhex("f4"),              # 100A hlt
])


def _protected() -> X86Vcpu:
    cpu = X86Vcpu(Exits(), long_mode=False)
    memory = bytearray(0x10000)
    memory[0x800 : 0x800 + len(FLAT_GDT)] = FLAT_GDT
    memory[0x1000 : 0x1000 + len(PROTECTED)] = PROTECTED
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_flat32(gdt_base=0x800, eip=0x1000)
    return cpu


@COUNTERS
def test_a_protected_mode_fault_that_ends_the_slice_counts_the_faulting_instruction(
        Counter: type) -> None:
    cpu = _protected()
    counter = Counter(cpu)
    result = cpu.run(100_000)
    assert result.reason is ExitReason.FAULT and result.vector == 0
    assert cpu.reg("eip") == 0x1007 and counter.count == 3   # mov, xor, the div
    cpu.set_reg("ecx", 1)
    assert cpu.run(100_000).reason is ExitReason.HLT
    assert counter.count == 6 and cpu.reg("eax") == 8


@COUNTERS
def test_an_access_to_unmapped_memory_inside_a_block_counts_up_to_it(Counter: type) -> None:
    """unicorn's error (not a CPU exception) stops the run inside the block."""
    cpu = _protected()
    cpu.uc.mem_write(0x1000, bytes.fromhex("b807000000" "8b0d00002000" "40" "f4"))
    # mov eax, 7 ; mov ecx, [0x200000] (nothing mapped there) ; inc eax ; hlt
    counter = Counter(cpu)
    assert cpu.run(100_000).reason is ExitReason.FAULT
    assert cpu.reg("eip") == 0x1005 and counter.count == 2


def test_the_instruction_in_an_sti_shadow_runs_alone_and_counts_once() -> None:
    """An interrupt waits (the window is armed): after ``sti`` the CPU runs one more
    instruction before it takes it (X86Vcpu._run_one: a code hook stops the CPU before
    the next one, inside a block the counter has already counted whole). (The
    per-instruction counter's hook runs before that stop hook and counts the instruction
    stopped before as started, 4 here: consistent from run to run, one too many.)"""
    Counter = BlockCounter
    cpu = X86Vcpu(Exits(), long_mode=False)
    memory = bytearray(0x10000)
    program = bytes.fromhex("b90300" "fb" "40" "40" "f4")  # mov cx, 3; sti; inc ax; inc ax; hlt
    memory[0x7C00 : 0x7C00 + len(program)] = program
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x7C00)
    counter = Counter(cpu)
    cpu.enable_intr_window(True)
    assert cpu.run(100_000).reason is ExitReason.INTR_WINDOW
    assert cpu.reg("eip") == 0x7C05 and counter.count == 3      # mov, sti, inc
    assert cpu.run(100_000).reason is ExitReason.HLT
    assert counter.count == 5 and cpu.reg("eax") & 0xFFFF == 2


class StoppingExits(Exits):
    """A hypervisor that ends the slice at the first ``out`` (as Xen does for an ioreq
    the device model must answer)."""

    def io_out(self, vcpu: X86Vcpu, port: int, size: int, value: int) -> None:
        super().io_out(vcpu, port, size, value)
        if len(self.outs) == 1:
            vcpu.request_stop()


def test_a_stop_asked_for_by_an_out_takes_effect_at_the_end_of_its_block() -> None:
    """Without a code hook on the next instruction unicorn ends the run at the end of
    the ``out``'s block (here after the ``loop``, at the loop's start), as in any run
    without a counter: the whole block counted. (The per-instruction counter's hook
    stops the CPU at the instruction after the ``out`` and counts it as started.)"""
    cpu, _ = _machine()
    cpu.exits = stopping = StoppingExits()
    counter = BlockCounter(cpu)
    assert cpu.run(100_000).reason is ExitReason.YIELD
    assert cpu.reg("eip") == 0x7C03 and cpu.reg("ecx") & 0xFFFF == 9
    assert counter.count == 4 and stopping.outs == [1]       # mov, inc, out, loop
    assert cpu.run(100_000).reason is ExitReason.HLT
    assert counter.count == INSTRUCTIONS and stopping.outs == list(range(1, 11))


def test_a_stop_from_an_mmio_write_counts_the_access_when_it_runs_again() -> None:
    """A handler's stop from an MMIO write leaves the CPU at that instruction, which
    unicorn runs again (and writes again) in the next run: the per-block counter counts
    it there, once. (The per-instruction counter has counted it at each attempt.)"""
    cpu = X86Vcpu(Exits(), long_mode=False)
    memory = bytearray(0x9000)
    program = bytes.fromhex("40" "a20090" "40" "f4")  # inc ax; mov [0x9000], al; inc ax; hlt
    memory[0x7C00 : 0x7C00 + len(program)] = program
    cpu.map_bytes(0, bytes(memory), writable=True)
    writes: list[int] = []

    def write(uc: object, offset: int, size: int, value: int, user: object) -> None:
        writes.append(value)
        if len(writes) == 1:
            cpu.request_stop()

    cpu.map_mmio(0x9000, 0x1000, lambda offset, size: 0,
                 lambda offset, size, value: write(None, offset, size, value, None))
    cpu.setup_real_mode(0, 0x7C00)
    counter = BlockCounter(cpu)
    assert cpu.run(100_000).reason is ExitReason.YIELD
    assert cpu.reg("eip") == 0x7C01 and counter.count == 1 and writes == [1]
    assert cpu.run(100_000).reason is ExitReason.HLT
    assert counter.count == 4 and writes == [1, 1] and cpu.reg("eax") & 0xFFFF == 2


def test_a_stop_asked_for_by_an_out_ends_before_a_later_slow_memory_access() -> None:
    """After the ``out`` whose handler asked for a stop, the block's next instruction
    misses unicorn's TLB (the stack's page, touched for the first time by a pop):
    unicorn ends the run before it, inside the block."""
    cpu = X86Vcpu(StoppingExits(), long_mode=False)
    memory = bytearray(0x10000)
    memory[0x800 : 0x800 + len(FLAT_GDT)] = FLAT_GDT
    program = bytes.fromhex("b801000000" "bafc0c0000" "ef" "5b" "5e" "f4")
    memory[0x1000 : 0x1000 + len(program)] = program  # mov eax; mov edx, 0xcfc; out; pop; pop
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_flat32(gdt_base=0x800, eip=0x1000)
    cpu.set_reg("esp", 0x8000)
    counter = BlockCounter(cpu)
    assert cpu.run(100_000).reason is ExitReason.YIELD
    assert cpu.reg("eip") == 0x100B and counter.count == 3      # mov, mov, out
    assert cpu.run(100_000).reason is ExitReason.HLT
    assert counter.count == 6
