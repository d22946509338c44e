"""The CPU layer alone: real mode with IVT dispatch, the switch to protected mode,
vmcall and int 0x82 hypercalls, port I/O, CPUID, WRMSR, HLT, single-stepping."""

from __future__ import annotations

import struct

from xenlab.cpu.x86 import CpuMode, ExitReason, X86Vcpu


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
