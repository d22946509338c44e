"""The instruction counter (xenlab/cpu/icount.py) on a bare vCPU: exact counts, a stop
before any instruction, a breakpoint, the ring of recent addresses, and the vCPU's
code traps (wrmsr here) called by the counter's hook exactly as unicorn called them."""

from __future__ import annotations

import struct

from xenlab.cpu.icount import InstructionCounter
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


def test_counts_every_instruction_started_and_calls_the_traps_once() -> None:
    cpu, exits = _machine()
    counter = InstructionCounter(cpu)
    assert counter.native                   # x86-64 Linux: the hook is native code
    assert cpu.run(100_000).reason is ExitReason.HLT
    assert counter.count == INSTRUCTIONS and not counter.reached
    assert exits.outs == list(range(1, 11))
    assert exits.msrs == [(0xC0000000, 0x42)]  # the trap ran once, called by the counter
    assert counter.recent(3) == [0x7C0A, 0x7C10, 0x7C12]
    counter.close()                         # the vCPU traps wrmsr itself again
    assert all(handle is not None for handle in cpu._wrmsr_hooks.values())


def test_stops_before_any_instruction_as_single_steps_leave_it() -> None:
    for n in (0, 1, 7, 31, 33, INSTRUCTIONS - 1):
        cpu, _ = _machine()
        counter = InstructionCounter(cpu)
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


def test_a_breakpoint_stops_before_the_instruction_at_an_address() -> None:
    cpu, _ = _machine()
    counter = InstructionCounter(cpu)
    counter.break_at(0x7C03, after=5)         # the loop's first instruction, once armed
    cpu.run(100_000)
    assert counter.reached and counter.count == 7 and cpu.reg("eip") == 0x7C03
    assert cpu.reg("ecx") & 0xFFFF == 8
    counter.break_at(None)
    cpu.run(100_000)
    assert counter.count == INSTRUCTIONS
