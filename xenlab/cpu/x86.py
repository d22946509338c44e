"""An x86 vCPU on unicorn: real, protected and long mode, with every trap to the hypervisor.

This is the only module that imports unicorn. It knows nothing about domains
or Xen: it runs guest machine code for a bounded slice of *virtual time* and
reports why it stopped, calling the hypervisor back (``VcpuExits``) for what
real hardware would hand to Xen: ``syscall`` from a 64-bit PV guest, ``int
0x82`` from a 32-bit one, ``vmcall`` from an HVM guest, port I/O, CPUID,
WRMSR, HLT and faults.

Virtual time. The clock advances per executed basic block by an estimate of
its instruction count (block bytes / 4, rounded up); one such instruction is
one virtual nanosecond. The budget counter is decremented by a tiny native
callback (a few bytes of x86-64 machine code in an executable page) that
calls ``uc_emu_stop`` when the budget is spent, so there is no per-instruction
or per-block Python code on the hot path. ``emu_start(count=N)`` would be
exact but costs ~20x (unicorn adds a per-instruction hook); wall-clock
``timeout=`` is nondeterministic and replays ``rep ins`` iterations
(see ../shared/UNICORN_NOTES.md). On hosts that are not x86-64 Linux the same
accounting runs in a Python block hook (slower, same results).

Guest stores. unicorn 2.1.4 sends every store through an executable TLB entry
down its slow path, and with paging off x86 makes every entry executable. An
HVM vCPU therefore uses unicorn's virtual TLB 1:1 while CR0.PG is clear, with a
second native callback that enters data pages read-write only and pages that
held code read-write-executable (``identity_tlb_until_paging``; a page that ran
no code for a while is data again, ``_age_code_pages``): stores to data run at
full speed, stores to code stay checked for self-modifying code,
and a ``mov cr0`` that sets PG hands translation to a native page walk that does
the same through the guest's page tables (``_enter_walk``, walk.c), or to
unicorn's own walk where that cannot run.

Real Xen: xen/arch/x86/x86_64/entry.S (syscall entry), xen/arch/x86/traps.c,
xen/arch/x86/hvm/vmx/vmx.c (vmx_vmexit_handler)
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import mmap
import platform
import re
import struct
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import capstone
import unicorn
from unicorn import Uc, UcError
from unicorn import unicorn_const as uc_const
from unicorn import x86_const as X

from xenlab.cpu.idle import IdleLoops

__all__ = [
    "PAGE_SIZE",
    "CpuMode",
    "ExitReason",
    "RunResult",
    "VcpuExits",
    "X86Vcpu",
    "unicorn_version",
]

PAGE_SIZE = 4096
_UNTIL = 0xFFFF_FFFF_FFFF_F000  # an address guest code never reaches (non-canonical range)

# Exception vectors (Intel SDM vol. 3, 6.3.1)
VEC_DE, VEC_DB, VEC_NMI, VEC_BP, VEC_OF, VEC_BR, VEC_UD, VEC_NM, VEC_DF = range(9)
VEC_TS, VEC_NP, VEC_SS, VEC_GP, VEC_PF = 10, 11, 12, 13, 14
VECTOR_NAMES = {
    0: "#DE divide error", 1: "#DB debug", 2: "NMI", 3: "#BP breakpoint", 4: "#OF overflow",
    5: "#BR bound range", 6: "#UD invalid opcode", 7: "#NM device not available",
    8: "#DF double fault", 10: "#TS invalid TSS", 11: "#NP segment not present",
    12: "#SS stack fault", 13: "#GP general protection", 14: "#PF page fault",
    16: "#MF x87 error", 17: "#AC alignment check", 18: "#MC machine check",
    19: "#XM SIMD exception",
}


def unicorn_version() -> str:
    return str(unicorn.__version__)


class CpuMode(enum.Enum):
    REAL = "real"
    PROTECTED = "protected"
    LONG = "long"


class ExitReason(enum.Enum):
    BUDGET = "budget"        # the slice of virtual time is spent
    YIELD = "yield"          # the hypervisor asked the vCPU to stop (block, yield, shutdown)
    HLT = "hlt"              # the guest halted (ring 0 guests only)
    FAULT = "fault"          # an exception the hypervisor must handle (the domain crashes)
    STEP = "step"            # single-step finished
    STALLED = "stalled"      # stopped at an instruction without running it or saying why
    INTR_WINDOW = "intr_window"  # IF set with an interrupt waiting (EXIT_REASON_PENDING_VIRT_INTR)


@dataclass(frozen=True)
class RunResult:
    reason: ExitReason
    executed: int            # virtual ns consumed: instructions plus ``charged``
    vector: int | None = None
    detail: str = ""
    charged: int = 0         # of which spent in the hypervisor (``X86Vcpu.charge``)


class VcpuExits(Protocol):
    """What the hypervisor handles for a vCPU (the VM-exit / trap handlers)."""

    def hypercall(self, vcpu: X86Vcpu, via: str) -> None: ...
    def io_in(self, vcpu: X86Vcpu, port: int, size: int) -> int: ...
    def io_out(self, vcpu: X86Vcpu, port: int, size: int, value: int) -> None: ...
    def cpuid(self, vcpu: X86Vcpu, leaf: int, subleaf: int) -> tuple[int, int, int, int] | None: ...
    # asked about an interrupt the native real-mode callback did not vector
    def interrupt(self, vcpu: X86Vcpu, vector: int) -> bool: ...
    def msr_write(self, vcpu: X86Vcpu, msr: int, value: int) -> bool: ...
    def msr_read(self, vcpu: X86Vcpu, msr: int) -> int | None: ...
    def io_rep(self, vcpu: X86Vcpu, port: int, size: int, count: int, addr: int,
               write: bool) -> int: ...
    def tsc(self, vcpu: X86Vcpu) -> int: ...


# ---------------------------------------------------------------------------
# Registers: one explicit table from our names to unicorn's constants.
REGS: dict[str, int] = {
    "rax": X.UC_X86_REG_RAX, "rbx": X.UC_X86_REG_RBX, "rcx": X.UC_X86_REG_RCX,
    "rdx": X.UC_X86_REG_RDX, "rsi": X.UC_X86_REG_RSI, "rdi": X.UC_X86_REG_RDI,
    "rbp": X.UC_X86_REG_RBP, "rsp": X.UC_X86_REG_RSP, "r8": X.UC_X86_REG_R8,
    "r9": X.UC_X86_REG_R9, "r10": X.UC_X86_REG_R10, "r11": X.UC_X86_REG_R11,
    "r12": X.UC_X86_REG_R12, "r13": X.UC_X86_REG_R13, "r14": X.UC_X86_REG_R14,
    "r15": X.UC_X86_REG_R15, "rip": X.UC_X86_REG_RIP, "rflags": X.UC_X86_REG_EFLAGS,
    "eax": X.UC_X86_REG_EAX, "ebx": X.UC_X86_REG_EBX, "ecx": X.UC_X86_REG_ECX,
    "edx": X.UC_X86_REG_EDX, "esi": X.UC_X86_REG_ESI, "edi": X.UC_X86_REG_EDI,
    "ebp": X.UC_X86_REG_EBP, "esp": X.UC_X86_REG_ESP, "eip": X.UC_X86_REG_EIP,
    "eflags": X.UC_X86_REG_EFLAGS,
    "cs": X.UC_X86_REG_CS, "ds": X.UC_X86_REG_DS, "es": X.UC_X86_REG_ES,
    "ss": X.UC_X86_REG_SS, "fs": X.UC_X86_REG_FS, "gs": X.UC_X86_REG_GS,
    "cr0": X.UC_X86_REG_CR0, "cr2": X.UC_X86_REG_CR2, "cr3": X.UC_X86_REG_CR3,
    "cr4": X.UC_X86_REG_CR4,
}
MSR_EFER = 0xC0000080
MSR_STAR, MSR_LSTAR, MSR_SYSCALL_MASK = 0xC0000081, 0xC0000082, 0xC0000084
EFER_SCE = 1 << 0
EFER_LME, EFER_LMA = 1 << 8, 1 << 10
GPRS64 = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
          "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
_HC_REGS = [X.UC_X86_REG_RAX, X.UC_X86_REG_RDI, X.UC_X86_REG_RSI, X.UC_X86_REG_RDX,
            X.UC_X86_REG_R10, X.UC_X86_REG_R8]
_HC_REGS32 = [X.UC_X86_REG_EAX, X.UC_X86_REG_EBX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX,
              X.UC_X86_REG_ESI, X.UC_X86_REG_EDI]

_CPUID_REGS64 = (X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX)
_CPUID_REGS32 = (X.UC_X86_REG_EAX, X.UC_X86_REG_EBX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX)

EFLAGS_IF = 1 << 9
EFLAGS_TF = 1 << 8
EFLAGS_NT, EFLAGS_RF, EFLAGS_VM = 1 << 14, 1 << 16, 1 << 17
EFLAGS_AC = 1 << 18

# Instruction prefixes, as regex classes: segment overrides, operand and address size;
# and those plus LOCK, REPNE and REP.
_SEG_SIZE = rb"[\x26\x2e\x36\x3e\x64\x65\x66\x67]"
_ANY_PREFIX = rb"[\x26\x2e\x36\x3e\x64\x65\x66\x67\xf0\xf2\xf3]"
# rep ins/outs with up to two operand-size / address-size / segment prefixes around F3
_REP_STRING_IO = re.compile(_SEG_SIZE + rb"{0,2}\xf3" + _SEG_SIZE + rb"{0,2}[\x6c-\x6f]")
_PREFIXES = frozenset((0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF3))
_PREFIXES_ALL = _PREFIXES | {0xF0, 0xF2}
# what every code trap's pattern in an HVM guest's code contains: wrmsr, mov to CR,
# rdmsr, rdrand to a register, F3 before ins/outs (rdtsc has its own hook there, see
# _TSC_THUNK)
_ANY_CODE_TRAP = re.compile(rb"\x0f(?:[\x22\x30\x32]|\xc7[\xf0-\xf7])|\xf3" + _SEG_SIZE
                            + rb"{0,2}[\x6c-\x6f]")
# rdrand to a register (0F C7 /6, mod 11) with up to four prefixes (and a REX in 64-bit
# code) before it: trapped in every guest's code, since unicorn's answers with the host's
# randomness, which would make two runs of the same guest differ
_RDRAND = re.compile(rb"(?:" + _ANY_PREFIX + rb"|[\x40-\x4f]){0,4}\x0f\xc7[\xf0-\xf7]")
_RDRAND_CLEARED = (1 << 11) | (1 << 7) | (1 << 6) | (1 << 4) | (1 << 2)  # OF SF ZF AF PF
_M64 = 0xFFFF_FFFF_FFFF_FFFF
# rdtsc (0F 31) and rdtscp (0F 01 F9) with up to four prefixes before them: trapped in a
# PV guest's code, where CR4.TSD would make them a #GP before any UC_HOOK_INSN runs
_RDTSC = re.compile(_ANY_PREFIX + rb"{0,4}\x0f(?:\x31|\x01\xf9)")
_SEG_OVERRIDE = {0x26: "es", 0x2E: "cs", 0x36: "ss", 0x3E: "ds", 0x64: "fs", 0x65: "gs"}
# Code that keeps generating new wrmsr or string I/O instructions (a hostile guest)
# gets no more code traps of each kind than this (each one slows every translation):
# beyond it, its strings run element by element and its wrmsr reach no handler.
MAX_CODE_TRAPS = 1024
#: Virtual instructions between two agings of a vCPU's code-page bitmap (about 4 ms of
#: guest time): pages that held code but ran none since the last aging lose their
#: translated code and become data pages again (X86Vcpu._age_code_pages).
CODE_AGING_PERIOD = 1 << 22
_CODE_PAGE_WORDS = 1 << 14     # a bitmap with a bit per 4 KiB page below 4 GiB
_AGING_CHUNK = 2048            # bytes of the bitmap an aging looks at in one go (64 MiB)
_AGING_ZEROS = bytes(_AGING_CHUNK)
# Ranges the all-ones hook for unassigned memory may cover before one hook covers all.
MAX_UNASSIGNED_HOOKS = 16
CR0_PG = 1 << 31
_GPR32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
_GPR64 = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11",
          "r12", "r13", "r14", "r15")
# mov to a control register (0F 22 /r) with up to four prefixes before it
_MOV_TO_CR = re.compile(_ANY_PREFIX + rb"{0,4}\x0f\x22")


def rdrand_value(seed: str, tsc: int, address: int) -> int:
    """What ``rdrand`` gives a guest: splitmix64's finalizer over the vCPU's name (its
    seed), the virtual TSC and the instruction's address, so that every run of the same
    guest draws the same numbers (an emulator's choice: a CPU's come from its entropy
    source, unicorn's from the host's)."""
    z = (zlib.crc32(seed.encode()) * 0xD1B5_4A32_D192_ED03 + tsc * 0x9E37_79B9_7F4A_7C15
         + address) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & _M64
    return z ^ (z >> 31)


def _skip_prefixes(code: bytes) -> int:
    """Index of the opcode after at most four prefixes."""
    i = 0
    while i < min(4, len(code)) and code[i] in _PREFIXES_ALL:
        i += 1
    return i


# ---------------------------------------------------------------------------
# The native callbacks below are x86-64 machine code, written out as bytes with their
# assembly beside them; their source is xenlab/cpu/native.S, one section each, which
# tests/test_cpu.py assembles and compares with these constants byte for byte.
#
# The native budget callback (native.S: .text.budget).
class _Budget(ctypes.Structure):
    """What the native block callback reads and writes: the budget left, uc_emu_stop,
    and the interrupt window (``window`` armed: stop at the first block that starts with
    EFLAGS.IF set, read in place at ``eflags_at`` (``_eflags_word``) or, where that was
    not found, with ``reg_read`` = uc_reg_read into ``eflags``); the address of the
    block it stopped the run at (before the block ran)."""
    _fields_ = (("left", ctypes.c_int64), ("stop", ctypes.c_uint64),
                ("window", ctypes.c_uint64), ("reg_read", ctypes.c_uint64),
                ("eflags", ctypes.c_uint64), ("uc", ctypes.c_uint64),
                ("stopped_at", ctypes.c_uint64),   # the block it stopped at, or _NOT_STOPPED
                ("eflags_at", ctypes.c_uint64))    # &env->eflags in the engine, or 0


_NOT_STOPPED = 0xFFFF_FFFF_FFFF_FFFF
_ALL_ONES = 0xFFFF_FFFF_FFFF_FFFF


# void cb(uc_engine *uc /*rdi*/, uint64_t addr /*rsi*/, uint32_t size /*edx*/, void *user /*rcx*/)
_THUNK = bytes.fromhex(
    "89d0"          # mov  eax, edx          ; block size in bytes
    "83c003"        # add  eax, 3
    "c1e802"        # shr  eax, 2            ; ~instructions = ceil(bytes / 4)
    "482901"        # sub  [rcx], rax        ; budget->left -= cost
    "7e40"          # jle  stop
    "4883791000"    # cmp  qword [rcx+16], 0 ; the interrupt window armed?
    "7501"          # jne  window
    "c3"            # ret
    "488b4138"      # window: mov rax, [rcx+56] ; budget->eflags_at (0: not found)
    "4885c0"        # test rax, rax
    "7409"          # jz   slow
    "f70000020000"  # test dword [rax], 0x200 ; IF, read in place
    "7527"          # jnz  stop
    "c3"            # ret
    "53"            # slow: push rbx         ; (keeps the stack 16-byte aligned)
    "4889cb"        # mov  rbx, rcx
    "48897b28"      # mov  [rbx+40], rdi     ; budget->uc = uc
    "be19000000"    # mov  esi, 25           ; UC_X86_REG_EFLAGS
    "488d5320"      # lea  rdx, [rbx+32]     ; &budget->eflags
    "ff5318"        # call [rbx+24]          ; uc_reg_read(uc, EFLAGS, &eflags)
    "4889d9"        # mov  rcx, rbx
    "488b7b28"      # mov  rdi, [rbx+40]     ; uc
    "5b"            # pop  rbx
    "f7412000020000"  # test dword [rcx+32], 0x200 ; IF set: the window is open
    "7501"          # jnz  stop
    "c3"            # ret
    "48897130"      # stop: mov [rcx+48], rsi ; budget->stopped_at = the block
    "488b4108"      # mov  rax, [rcx+8]      ; budget->stop = &uc_emu_stop
    "ffe0"          # jmp  rax               ; tail call uc_emu_stop(uc)
)

# The native TLB-fill callback (UC_HOOK_TLB_FILL, for unicorn's virtual TLB while an HVM
# guest runs with paging off, where linear = physical). Data pages are entered read-write
# but not executable, pages that held code read-write-executable; ``user`` is two bitmaps
# with one bit per 4 KiB page below 4 GiB, both set here when code is fetched from it:
# the pages that held code, and (_CODE_PAGE_WORDS words on) the pages code was fetched
# from since the last aging (X86Vcpu._age_code_pages). The page walk (walk.c) keeps the
# first bitmap only.
# bool cb(uc_engine *uc /*rdi*/, uint64_t addr /*rsi*/, uc_mem_type type /*edx*/,
#         uc_tlb_entry *e /*rcx*/, uint64_t *code_pages /*r8*/)
_FILL_THUNK = bytes.fromhex(
    "488931"        # mov  [rcx], rsi        ; e->paddr = addr (identity)
    "4889f0"        # mov  rax, rsi
    "48c1e80c"      # shr  rax, 12           ; page number
    "41b907000000"  # mov  r9d, 7            ; UC_PROT_ALL
    "483d00001000"  # cmp  rax, 0x100000     ; at or above 4 GiB: no bitmap
    "731f"          # jae  done
    "83fa12"        # cmp  edx, 18           ; UC_MEM_FETCH?
    "750e"          # jne  data
    "490fab00"      # bts  [r8], rax         ; code is fetched from this page
    "490fab8000000200"  # bts [r8+0x20000], rax ; (and since the last aging)
    "eb0c"          # jmp  done
    "490fa300"      # data: bt [r8], rax     ; a page that held code?
    "7206"          # jc   done              ; yes: executable too (stores stay checked)
    "41b903000000"  # mov  r9d, 3            ; UC_PROT_READ | UC_PROT_WRITE
    "44894908"      # done: mov [rcx+8], r9d ; e->perms
    "b801000000"    # mov  eax, 1            ; handled
    "c3"            # ret
)
_FILL_OFFSET = 96

# The native MMIO callbacks of unassigned memory. Every read is all ones (unicorn keeps
# the low ``size`` bytes): uint64_t cb(uc_engine *uc, uint64_t offset, unsigned size,
# void *user). Every write is dropped: void cb(uc_engine *uc, uint64_t offset,
# unsigned size, uint64_t value, void *user).
_ONES_THUNK = bytes.fromhex(
    "48c7c0ffffffff"  # mov  rax, -1
    "c3"              # ret
)
_ONES_OFFSET = 176
_DROP_THUNK = bytes.fromhex("c3")  # ret
_DROP_OFFSET = 192


class _UcMmr(ctypes.Structure):  # uc_x86_mmr: IDTR, GDTR
    _fields_ = [("selector", ctypes.c_uint16), ("base", ctypes.c_uint64),
                ("limit", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


class _RmIntr(ctypes.Structure):
    """What the native real-mode ``int`` callback reads and writes (its offsets are in
    the code below): unicorn's functions, the vectors that go to Python, the register
    ids and value pointers of its two batch calls, and the values themselves."""
    _fields_ = (("python", ctypes.c_uint64),          # 0: the Python hook (_INTR_CB)
                ("reg_read_batch", ctypes.c_uint64),  # 8
                ("reg_write_batch", ctypes.c_uint64),  # 16
                ("mem_read", ctypes.c_uint64),        # 24
                ("mem_write", ctypes.c_uint64),       # 32
                ("to_python", ctypes.c_uint64 * 4),   # 40: a bit per vector
                ("delivered", ctypes.c_uint64),       # 72: ints vectored natively
                ("read_ids", ctypes.c_int * 8),       # 80: CR0 IDTR EFLAGS CS EIP SS ESP
                ("write_ids", ctypes.c_int * 6),      # 112: EFLAGS CS EIP SS ESP (each
                #   array one int longer than used: the next field 8-byte aligned)
                ("read_ptrs", ctypes.c_void_p * 7),   # 136
                ("write_ptrs", ctypes.c_void_p * 5),  # 192
                ("cr0", ctypes.c_uint64),             # 232
                ("idtr", _UcMmr),                     # 240: base at 248, limit at 256
                ("regs", ctypes.c_uint64 * 5),        # 264: EFLAGS CS EIP SS ESP
                ("entry", ctypes.c_uint16 * 2),       # 304: the IVT entry (IP, CS)
                ("frame", ctypes.c_uint16 * 3))       # 308: IP, CS, FLAGS as pushed


# The native real-mode interrupt callback (UC_HOOK_INTR of a 32-bit engine). unicorn
# never vectors an interrupt itself, so without it every `int n` of real-mode firmware
# is a trip to Python. It does what QEMU's do_interrupt_real does: FLAGS, CS, IP pushed
# on SS:SP, IF, TF, AC and RF cleared, CS:IP loaded from the IVT entry; everything else
# (protected mode, a vector past the IVT's limit, a stack that wraps, a vector in
# ``to_python``, an engine error) it hands, unchanged, to the Python hook.
# void cb(uc_engine *uc /*rdi*/, uint32_t intno /*esi*/, struct _RmIntr *r /*rdx*/)
_RM_INTR_THUNK = bytes.fromhex(
    "89f6"              # mov  esi, esi
    "480fa37228"        # bt   [rdx+40], rsi      ; r->to_python has this vector?
    "0f822f010000"      # jc   python
    "53" "4154" "4155"  # push rbx; push r12; push r13 (the stack stays 16-byte aligned)
    "4889d3"            # mov  rbx, rdx           ; r
    "4989fc"            # mov  r12, rdi           ; uc
    "4189f5"            # mov  r13d, esi          ; intno
    "488d7350"          # lea  rsi, [rbx+80]      ; read_ids
    "488d9388000000"    # lea  rdx, [rbx+136]     ; read_ptrs
    "b907000000"        # mov  ecx, 7
    "ff5308"            # call [rbx+8]            ; uc_reg_read_batch(uc, ids, ptrs, 7)
    "85c0"              # test eax, eax
    "0f85f8000000"      # jnz  back
    "f683e800000001"    # test byte [rbx+232], 1  ; CR0.PE: protected mode
    "0f85eb000000"      # jnz  back
    "428d04ad03000000"  # lea  eax, [r13*4+3]
    "3b8300010000"      # cmp  eax, [rbx+256]     ; past the IVT's limit?
    "0f87d7000000"      # ja   back
    "6683bb2801000006"  # cmp  word [rbx+296], 6  ; SP < 6: the stack wraps
    "0f82c9000000"      # jb   back
    "4c89e7"            # mov  rdi, r12
    "488bb3f8000000"    # mov  rsi, [rbx+248]     ; the IVT's base
    "4a8d34ae"          # lea  rsi, [rsi+r13*4]
    "488d9330010000"    # lea  rdx, [rbx+304]     ; &entry
    "b904000000"        # mov  ecx, 4
    "ff5318"            # call [rbx+24]           ; uc_mem_read(uc, base + 4n, entry, 4)
    "85c0"              # test eax, eax
    "0f85a4000000"      # jnz  back
    "668b8318010000"    # mov  ax, [rbx+280]      ; IP
    "66898334010000"    # mov  [rbx+308], ax
    "668b8310010000"    # mov  ax, [rbx+272]      ; CS
    "66898336010000"    # mov  [rbx+310], ax
    "668b8308010000"    # mov  ax, [rbx+264]      ; FLAGS
    "66898338010000"    # mov  [rbx+312], ax
    "0fb7b320010000"    # movzx esi, word [rbx+288] ; SS
    "c1e604"            # shl  esi, 4
    "0fb78328010000"    # movzx eax, word [rbx+296] ; SP
    "8d7406fa"          # lea  esi, [rsi+rax-6]
    "4c89e7"            # mov  rdi, r12
    "488d9334010000"    # lea  rdx, [rbx+308]     ; &frame
    "b906000000"        # mov  ecx, 6
    "ff5320"            # call [rbx+32]           ; uc_mem_write(uc, SS*16+SP-6, frame, 6)
    "85c0"              # test eax, eax
    "754f"              # jnz  back
    "4881a308010000fffcfaff"  # and qword [rbx+264], ~(AC|RF|IF|TF)
    "0fb78330010000"    # movzx eax, word [rbx+304]
    "48898318010000"    # mov  [rbx+280], rax     ; EIP = the entry's offset
    "0fb78332010000"    # movzx eax, word [rbx+306]
    "48898310010000"    # mov  [rbx+272], rax     ; CS = its segment
    "6683ab2801000006"  # sub  word [rbx+296], 6  ; SP -= 6 (ESP's upper half kept)
    "4c89e7"            # mov  rdi, r12
    "488d7370"          # lea  rsi, [rbx+112]     ; write_ids
    "488d93c0000000"    # lea  rdx, [rbx+192]     ; write_ptrs
    "b905000000"        # mov  ecx, 5
    "ff5310"            # call [rbx+16]           ; uc_reg_write_batch(uc, ids, ptrs, 5)
    "48ff4348"          # inc  qword [rbx+72]     ; delivered
    "415d" "415c" "5b"  # pop r13; pop r12; pop rbx
    "c3"                # ret
    "4c89e7"            # back: mov rdi, r12
    "4489ee"            # mov  esi, r13d
    "4889da"            # mov  rdx, rbx
    "415d" "415c" "5b"  # pop r13; pop r12; pop rbx
    "ff22"              # python: jmp [rdx]      ; tail call the Python hook
)
_RM_INTR_OFFSET = 256


_GPRS64 = (X.UC_X86_REG_RAX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX, X.UC_X86_REG_RBX,
           X.UC_X86_REG_RSP, X.UC_X86_REG_RBP, X.UC_X86_REG_RSI, X.UC_X86_REG_RDI,
           X.UC_X86_REG_R8, X.UC_X86_REG_R9, X.UC_X86_REG_R10, X.UC_X86_REG_R11,
           X.UC_X86_REG_R12, X.UC_X86_REG_R13, X.UC_X86_REG_R14, X.UC_X86_REG_R15,
           X.UC_X86_REG_RFLAGS)
_GPRS32 = (X.UC_X86_REG_EAX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX, X.UC_X86_REG_EBX,
           X.UC_X86_REG_ESP, X.UC_X86_REG_EBP, X.UC_X86_REG_ESI, X.UC_X86_REG_EDI,
           X.UC_X86_REG_EFLAGS)


class _Tsc(ctypes.Structure):
    """What the native ``rdtsc``/``rdtscp`` callback reads and writes (its offsets are in
    the code below). The guest's TSC is ``base - *left``: ``base`` is worked out in Python
    (``VcpuExits.tsc`` plus the budget left) at the first ``rdtsc`` of each emulation run
    and whenever ``valid`` is cleared; from then on the callback alone answers."""
    _fields_ = (("valid", ctypes.c_uint64),            # 0: base is up to date
                ("base", ctypes.c_uint64),             # 8
                ("left", ctypes.c_uint64),             # 16: &budget.left
                ("reg_write_batch", ctypes.c_uint64),  # 24
                ("python", ctypes.c_uint64),           # 32: the Python callback (_TSC_CB)
                ("n", ctypes.c_uint64),                # 40: 2 rdtsc (EAX, EDX), 3 rdtscp
                ("ids", ctypes.c_int * 4),             # 48: RAX RDX RCX (EAX EDX ECX)
                ("ptrs", ctypes.c_void_p * 3),         # 64
                ("vals", ctypes.c_uint64 * 3),         # 88: low, high, TSC_AUX (0)
                ("answered", ctypes.c_uint64))         # 112: answered natively


# The native rdtsc/rdtscp callback (UC_HOOK_INSN; unicorn's helper_rdtsc calls it after
# the CR4.TSD check, with EIP at the instruction, and skips its own TSC when it returns
# 1). Without it every rdtsc is a trip to Python: memtest86+ and Linux poll the TSC.
# int cb(uc_engine *uc /*rdi*/, struct _Tsc *t /*rsi*/); rdtscp enters 7 bytes in.
_TSC_THUNK = bytes.fromhex(
    "b902000000"        # rdtsc: mov ecx, 2       ; EAX, EDX
    "eb05"              # jmp  common
    "b903000000"        # rdtscp: mov ecx, 3      ; EAX, EDX, ECX (TSC_AUX)
    "48894e28"          # common: mov [rsi+40], rcx ; t->n
    "48833e00"          # cmp  qword [rsi], 0     ; base valid?
    "7433"              # je   python
    "488b4608"          # mov  rax, [rsi+8]       ; base
    "488b5610"          # mov  rdx, [rsi+16]      ; &budget.left
    "482b02"            # sub  rax, [rdx]         ; TSC = base - left
    "89c2"              # mov  edx, eax
    "48895658"          # mov  [rsi+88], rdx      ; vals[0] = low half
    "48c1e820"          # shr  rax, 32
    "48894660"          # mov  [rsi+96], rax      ; vals[1] = high half
    "48ff4670"          # inc  qword [rsi+112]    ; answered
    "53"                # push rbx                ; (the stack 16-byte aligned)
    "488b4618"          # mov  rax, [rsi+24]
    "488d5640"          # lea  rdx, [rsi+64]      ; ptrs
    "488d7630"          # lea  rsi, [rsi+48]      ; ids
    "ffd0"              # call rax                ; uc_reg_write_batch(uc, ids, ptrs, n)
    "5b"                # pop  rbx
    "b801000000"        # mov  eax, 1             ; skip unicorn's own TSC
    "c3"                # ret
    "ff6620"            # python: jmp [rsi+32]    ; tail call the Python callback
)
_TSC_OFFSET = 640
_TSCP_ENTRY = 7

# The native port-I/O callbacks (native.S: .text.ioout, .text.ioin): UC_HOOK_INSN for
# ``out`` and ``in`` of an HVM vCPU. The exits Xen answers without anything Python keeps
# are answered there and kept in a log with the budget left before each, their cost
# charged, until Python takes the log at the vCPU's next exit or the run's end: by each
# port's kind (``set_port_kinds``) nobody's ports (Xen's null handler: reads all ones),
# a dword latch (the PCI address register), its data window while the latched function
# is nobody's, a dword clock port (the ACPI PM timer), a port whose byte reads give all
# ones (the RTC's index register), and byte writes to one logged
# port (an HVM vCPU's 0xE9 debug port: SeaBIOS writes its whole log there, one character
# per exit, some 4,000 in a boot; the exit byte, a newline, and a write beyond the room
# the sink allows always exit). Everything else is the Python callbacks.
PORT_LOG_ENTRIES = 512
_NO_PORT = 0xFFFF_FFFF      # log no port (ports are 16 bits)
#: a port's kind for the native callbacks (X86Vcpu.set_port_kinds)
PORT_PYTHON, PORT_NULL, PORT_LATCH, PORT_WINDOW, PORT_CLOCK = 0, 1, 2, 3, 4
_PORT_LOGGED = 5            # log_port_writes' port
PORT_ONES = 6               # byte reads give all ones (writes: Python)
_KEPT = 1 << 63             # a log word that is an answered exit, not a logged byte
_CPUID_KEPT = 1 << 62       # a log word that is a CPUID leaf the CPU model answered


class _IoLog(ctypes.Structure):
    _fields_ = (("python_out", ctypes.c_uint64),   # 0: the Python ``out`` callback
                ("left", ctypes.c_uint64),         # 8: &budget.left
                ("cost", ctypes.c_int64),          # 16: virtual ns one exit costs
                ("count", ctypes.c_uint64),        # 24
                ("capacity", ctypes.c_uint64),     # 32: PORT_LOG_ENTRIES
                ("on", ctypes.c_uint32),           # 40: 0: every access to Python
                ("exit_value", ctypes.c_uint32),   # 44: a logged byte that always exits
                ("latch", ctypes.c_uint32),        # 48
                ("log_room", ctypes.c_uint32),     # 52: logged bytes still allowed
                ("python_in", ctypes.c_uint64),    # 56: the Python ``in`` callback
                ("clock", ctypes.c_uint64),        # 64: virtual ns at budget.left 0, or 0
                ("mul", ctypes.c_uint64),          # 72
                ("div", ctypes.c_uint64),          # 80
                ("mask", ctypes.c_uint64),         # 88
                ("lefts", ctypes.c_int64 * PORT_LOG_ENTRIES),     # 96
                ("words", ctypes.c_uint64 * PORT_LOG_ENTRIES),    # 4192
                ("kinds", ctypes.c_uint8 * 0x10000),              # 8288
                ("functions", ctypes.c_uint8 * 0x2000),           # 73824
                ("leaves", ctypes.c_uint8 * 64),   # 82016: CPUID leaves answered natively
                ("reg_read", ctypes.c_uint64),     # 82080: uc_reg_read
                ("leaf", ctypes.c_uint64),         # 82088
                ("python_cpuid", ctypes.c_uint64))  # 82096: the Python ``cpuid`` callback


# void out(uc_engine *uc /*rdi*/, uint32_t port /*esi*/, int size /*edx*/,
#          uint32_t value /*ecx*/, struct _IoLog *p /*r8*/)
# uint32_t in(uc_engine *uc /*rdi*/, uint32_t port /*esi*/, int size /*edx*/,
#             struct _IoLog *p /*rcx*/)
_IOOUT_THUNK = bytes.fromhex(
    "4183782800"        # cmp  dword [r8+40], 0     ; the log on?
    "0f84df000000"      # je   9f
    "498b4018"          # mov  rax, [r8+24]         ; count
    "493b4020"          # cmp  rax, [r8+32]         ; full: Python takes the log first
    "0f83d1000000"      # jae  9f
    "440fb7ce"          # movzx r9d, si
    "470fb68c0860200000" # movzx r9d, byte [r8+r9+8288]; the port's kind
    "4183f901"          # cmp  r9d, 1
    "747c"              # je   4f                   ; nobody's: dropped
    "4183f902"          # cmp  r9d, 2
    "7437"              # je   2f
    "4183f903"          # cmp  r9d, 3
    "7455"              # je   3f
    "4183f905"          # cmp  r9d, 5
    "0f85a8000000"      # jne  9f                   ; Python's
    "83fa01"            # cmp  edx, 1               ; the logged port: a byte,
    "0f859f000000"      # jne  9f
    "413b482c"          # cmp  ecx, dword [r8+44]   ; not the byte that always exits,
    "0f8495000000"      # je   9f
    "4183783400"        # cmp  dword [r8+52], 0     ; with room left for it
    "0f848a000000"      # je   9f
    "41ff4834"          # dec  dword [r8+52]
    "4189ca"            # mov  r10d, ecx            ; kept as the byte
    "eb5e"              # jmp  5f
    "83fa04"            # 2: cmp  edx, 4            ; the latch: a dword,
    "757c"              # jne  9f
    "85c9"              # test ecx, ecx
    "7915"              # jns  21f
    "4189c9"            # mov  r9d, ecx             ; but not one that enables a claimed
    "41c1e908"          # shr  r9d, 8               ; function: Python's, as the data
    "450fb7c9"          # movzx r9d, r9w            ; access after it will be (one
    "450fa38860200100"  # bt   dword [r8+73824], r9d; hand-over fewer)
    "7263"              # jc   9f
    "41894830"          # 21: mov  [r8+48], ecx
    "eb1b"              # jmp  4f
    "458b4830"          # 3: mov  r9d, [r8+48]      ; the window: the latch enabled
    "4585c9"            # test r9d, r9d
    "7954"              # jns  9f
    "41c1e908"          # shr  r9d, 8
    "450fb7c9"          # movzx r9d, r9w            ; bus, device, function
    "450fa38860200100"  # bt   dword [r8+73824], r9d; a claimed function: Python's
    "7242"              # jc   9f
    "4189d2"            # 4: mov  r10d, edx         ; 1 << 63 | out << 56 | size << 48
    "4181ca00810000"    # or   r10d, 0x8100
    "49c1e210"          # shl  r10, 16
    "440fb7ce"          # movzx r9d, si
    "4d09ca"            # or   r10, r9              ; | port << 32
    "49c1e220"          # shl  r10, 32
    "4189c9"            # mov  r9d, ecx
    "4d09ca"            # or   r10, r9              ; | value
    "4d8b4808"          # 5: mov  r9, [r8+8]        ; &budget.left
    "4d8b19"            # mov  r11, [r9]
    "4d895cc060"        # mov  [r8+rax*8+96], r11   ; lefts[count] = the budget before it
    "4d8994c060100000"  # mov  [r8+rax*8+4192], r10 ; words[count]
    "48ffc0"            # inc  rax
    "49894018"          # mov  [r8+24], rax
    "498b4010"          # mov  rax, [r8+16]
    "492901"            # sub  [r9], rax            ; budget.left -= the exit's cost
    "c3"                # ret
    "41ff20"            # 9: jmp  qword [r8]        ; tail call the Python callback
)
_IOIN_THUNK = bytes.fromhex(
    "83792800"          # cmp  dword [rcx+40], 0    ; the log on?
    "0f8408010000"      # je   9f
    "488b4118"          # mov  rax, [rcx+24]        ; count
    "483b4120"          # cmp  rax, [rcx+32]        ; full: Python takes the log first
    "0f83fa000000"      # jae  9f
    "440fb7ce"          # movzx r9d, si
    "460fb68c0960200000" # movzx r9d, byte [rcx+r9+8288]; the port's kind
    "4183f901"          # cmp  r9d, 1
    "7460"              # je   1f
    "4183f902"          # cmp  r9d, 2
    "7478"              # je   2f
    "4183f903"          # cmp  r9d, 3
    "747d"              # je   3f
    "4183f906"          # cmp  r9d, 6
    "7445"              # je   6f
    "4183f904"          # cmp  r9d, 4
    "0f85cb000000"      # jne  9f                   ; Python's (the logged port too)
    "83fa04"            # cmp  edx, 4               ; the clock: a dword,
    "0f85c2000000"      # jne  9f
    "4883794000"        # cmp  qword [rcx+64], 0    ; while set
    "0f84b7000000"      # je   9f
    "4989c3"            # mov  r11, rax
    "4c8b4908"          # mov  r9, [rcx+8]
    "488b4140"          # mov  rax, [rcx+64]
    "492b01"            # sub  rax, [r9]            ; now = clock - budget.left
    "48f76148"          # mul  qword [rcx+72]
    "48f77150"          # div  qword [rcx+80]       ; now * mul / div
    "48234158"          # and  rax, [rcx+88]
    "4189c2"            # mov  r10d, eax
    "ba04000000"        # mov  edx, 4
    "4c89d8"            # mov  rax, r11
    "eb4f"              # jmp  4f
    "83fa01"            # 6: cmp  edx, 1            ; all ones: a byte
    "0f8587000000"      # jne  9f
    "41baff000000"      # 1: mov  r10d, 0xff        ; nobody's: all ones
    "83fa01"            # cmp  edx, 1
    "743b"              # je   4f
    "41baffff0000"      # mov  r10d, 0xffff
    "83fa02"            # cmp  edx, 2
    "7430"              # je   4f
    "41baffffffff"      # mov  r10d, 0xffffffff
    "eb28"              # jmp  4f
    "83fa04"            # 2: cmp  edx, 4            ; the latch: a dword
    "7564"              # jne  9f
    "448b5130"          # mov  r10d, [rcx+48]
    "eb1d"              # jmp  4f
    "448b4930"          # 3: mov  r9d, [rcx+48]     ; the window: the latch enabled
    "4585c9"            # test r9d, r9d
    "7955"              # jns  9f
    "41c1e908"          # shr  r9d, 8
    "450fb7c9"          # movzx r9d, r9w            ; bus, device, function
    "440fa38960200100"  # bt   dword [rcx+73824], r9d; a claimed function: Python's
    "7243"              # jc   9f
    "ebba"              # jmp  1b
    "4c8b4908"          # 4: mov  r9, [rcx+8]       ; &budget.left
    "4d8b19"            # mov  r11, [r9]
    "4c895cc160"        # mov  [rcx+rax*8+96], r11  ; lefts[count] = the budget before it
    "4189d3"            # mov  r11d, edx            ; 1 << 63 | in << 56 | size << 48
    "4181cb00800000"    # or   r11d, 0x8000
    "49c1e310"          # shl  r11, 16
    "0fb7f6"            # movzx esi, si
    "4909f3"            # or   r11, rsi             ; | port << 32
    "49c1e320"          # shl  r11, 32
    "4d09d3"            # or   r11, r10             ; | value
    "4c899cc160100000"  # mov  [rcx+rax*8+4192], r11; words[count]
    "48ffc0"            # inc  rax
    "48894118"          # mov  [rcx+24], rax
    "488b4110"          # mov  rax, [rcx+16]
    "492901"            # sub  [r9], rax            ; budget.left -= the exit's cost
    "4489d0"            # mov  eax, r10d
    "c3"                # ret
    "ff6138"            # 9: jmp  qword [rcx+56]    ; tail call the Python callback
)
_IOOUT_OFFSET = 3600
_IOIN_OFFSET = 4240

# The native CPUID callback (native.S: .text.cpuid), on the same log: a leaf the CPU model
# answers itself (``answer_cpuid``: GRUB asks leaf 0 at every poll of its prompt) is kept
# with its cost charged and left to unicorn's own CPUID; the rest go to Python.
# int cb(uc_engine *uc /*rdi*/, struct _IoLog *p /*rsi*/)
_CPUID_THUNK = bytes.fromhex(
    "837e2800"          # cmp  dword [rsi+40], 0    ; the log on?
    "0f8490000000"      # je   9f
    "488b4618"          # mov  rax, [rsi+24]
    "483b4620"          # cmp  rax, [rsi+32]        ; full: Python takes the log first
    "0f8382000000"      # jae  9f
    "57"                # push rdi
    "56"                # push rsi
    "53"                # push rbx                  ; (the stack 16-byte aligned)
    "4889f3"            # mov  rbx, rsi
    "be13000000"        # mov  esi, 19              ; UC_X86_REG_EAX
    "488d93a8400100"    # lea  rdx, [rbx+82088]
    "ff93a0400100"      # call qword [rbx+82080]    ; uc_reg_read(uc, EAX, &leaf)
    "85c0"              # test eax, eax
    "7563"              # jnz  7f
    "8b8ba8400100"      # mov  ecx, dword [rbx+82088]; the leaf
    "81f900010000"      # cmp  ecx, 0x100
    "7214"              # jb   1f
    "8d9100000080"      # lea  edx, [rcx-0x80000000]; 0x80000000-0x800000ff: bits 256 on
    "81fa00010000"      # cmp  edx, 0x100
    "7347"              # jae  7f
    "8d8a00010000"      # lea  ecx, [rdx+0x100]
    "0fa38b60400100"    # 1: bt   dword [rbx+82016], ecx; answered by the CPU model?
    "7338"              # jnc  7f
    "488b4318"          # mov  rax, [rbx+24]        ; count
    "4c8b4b08"          # mov  r9, [rbx+8]          ; &budget.left
    "4d8b19"            # mov  r11, [r9]
    "4c895cc360"        # mov  [rbx+rax*8+96], r11  ; lefts[count] = the budget before it
    "448b93a8400100"    # mov  r10d, dword [rbx+82088]
    "490fbaea3e"        # bts  r10, 62              ; words[count] = 1 << 62 | leaf
    "4c8994c360100000"  # mov  [rbx+rax*8+4192], r10
    "48ffc0"            # inc  rax
    "48894318"          # mov  [rbx+24], rax
    "488b4310"          # mov  rax, [rbx+16]
    "492901"            # sub  [r9], rax            ; budget.left -= the exit's cost
    "5b"                # pop  rbx
    "5e"                # pop  rsi
    "5f"                # pop  rdi
    "31c0"              # xor  eax, eax             ; unicorn's own CPUID
    "c3"                # ret
    "5b"                # 7: pop  rbx
    "5e"                # pop  rsi
    "5f"                # pop  rdi
    "ffa6b0400100"      # 9: jmp  qword [rsi+82096] ; tail call the Python callback
)
_CPUID_OFFSET = 4528

# The native mov-to-CR filter (native.S: .text.crwatch): the code trap on each move to a
# control register an HVM vCPU's new code may hold (X86Vcpu._trap_mov_cr), while the
# identity TLB is on. SeaBIOS switches between real and protected mode some 700 times in
# a boot, and GRUB at every poll of its prompt, each a move to CR0 without PG: only one
# with PG set (and an instruction it cannot read, or any while a block counter is
# attached) goes to Python, which leaves the identity TLB.
class _CrWatch(ctypes.Structure):
    _fields_ = (("python", ctypes.c_uint64),        # 0: the Python code-hook callback
                ("identity", ctypes.c_uint32),      # 8: the identity TLB on
                ("python_only", ctypes.c_uint32),   # 12: every trap to Python
                ("mem_read", ctypes.c_uint64),      # 16: uc_mem_read
                ("reg_read", ctypes.c_uint64),      # 24: uc_reg_read
                ("code", ctypes.c_uint8 * 16),      # 32
                ("value", ctypes.c_uint64),         # 48
                ("regs", ctypes.c_uint32 * 8),      # 56: EAX, ECX, ... EDI's ids
                ("answered", ctypes.c_uint64),      # 88
                ("prefixes", ctypes.c_uint8 * 32))  # 96: a bit per prefix byte


# void cb(uc_engine *uc /*rdi*/, uint64_t address /*rsi*/, uint32_t size /*edx*/,
#         struct _CrWatch *w /*rcx*/)
_CRWATCH_THUNK = bytes.fromhex(
    "83790c00"          # cmp  dword [rcx+12], 0    ; a counter attached: Python's
    "757c"              # jne  9f
    "83790800"          # cmp  dword [rcx+8], 0     ; paging on already: nothing to see
    "7470"              # je   8f
    "57"                # push rdi
    "56"                # push rsi
    "52"                # push rdx
    "51"                # push rcx
    "53"                # push rbx                  ; (the stack 16-byte aligned)
    "4889cb"            # mov  rbx, rcx
    "488d5320"          # lea  rdx, [rbx+32]
    "b908000000"        # mov  ecx, 8
    "ff5310"            # call qword [rbx+16]       ; uc_mem_read(uc, address, code, 8)
    "85c0"              # test eax, eax
    "7559"              # jnz  7f                   ; unreadable: Python's
    "31c0"              # xor  eax, eax
    "0fb64c0320"        # 1: movzx ecx, byte [rbx+rax+32]; at most four prefixes
    "0fa34b60"          # bt   dword [rbx+96], ecx
    "7307"              # jnc  2f
    "ffc0"              # inc  eax
    "83f804"            # cmp  eax, 4
    "72ee"              # jb   1b
    "807c03200f"        # 2: cmp  byte [rbx+rax+32], 0x0f
    "7534"              # jne  6f                   ; not a move to a control register
    "807c032122"        # cmp  byte [rbx+rax+33], 0x22
    "752d"              # jne  6f
    "0fb64c0322"        # movzx ecx, byte [rbx+rax+34]; ModRM
    "f7c138000000"      # test ecx, 0x38
    "7520"              # jnz  6f                   ; to CR2, CR3, CR4
    "83e107"            # and  ecx, 7
    "8b748b38"          # mov  esi, [rbx+rcx*4+56]  ; the source register
    "488b7c2420"        # mov  rdi, [rsp+32]        ; uc
    "488d5330"          # lea  rdx, [rbx+48]
    "ff5318"            # call qword [rbx+24]       ; uc_reg_read(uc, id, &value)
    "85c0"              # test eax, eax
    "7513"              # jnz  7f
    "f7433000000080"    # test dword [rbx+48], 0x80000000; PG: Python leaves the identity TLB
    "750a"              # jnz  7f
    "48ff4358"          # 6: inc  qword [rbx+88]    ; answered here
    "5b"                # pop  rbx
    "59"                # pop  rcx
    "5a"                # pop  rdx
    "5e"                # pop  rsi
    "5f"                # pop  rdi
    "c3"                # 8: ret
    "5b"                # 7: pop  rbx
    "59"                # pop  rcx
    "5a"                # pop  rdx
    "5e"                # pop  rsi
    "5f"                # pop  rdi
    "ff21"              # 9: jmp  qword [rcx]       ; tail call the Python callback
)
_CRWATCH_OFFSET = 4096
NATIVE_CODE_SIZE = 2 * PAGE_SIZE     # the native callbacks' executable pages

# The native new-block filter (native.S: .text.newtb): UC_HOOK_EDGE_GENERATED of an HVM
# vCPU. Python's new-block hook (_on_new_tb) looks at every block unicorn translates,
# for code new to its page (while the identity TLB is on) and for the code traps'
# patterns; nearly every block has neither (SeaBIOS: ~2,700 blocks, ~12 % of the boot in
# that hook; Linux as a PVH guest, paging on: ~310,000 blocks, 8 %). This callback
# answers those itself and hands Python the rest.
_NEWTB_BUF = 8192


_NEWTB_OFF, _NEWTB_IDENTITY, _NEWTB_PAGING = 0, 1, 2    # _NewTb.enabled


class _NewTb(ctypes.Structure):
    _fields_ = (("python", ctypes.c_uint64),       # 0: the Python new-block callback
                ("mem_read", ctypes.c_uint64),     # 8: uc_mem_read
                ("seen", ctypes.c_uint64),         # 16: a bit per page Python has noted
                ("enabled", ctypes.c_uint64),      # 24: off, identity TLB, paging on
                ("answered", ctypes.c_uint64),     # 32: blocks answered natively
                ("vmem_read", ctypes.c_uint64),    # 40: uc_vmem_read (0: none)
                ("buf", ctypes.c_uint8 * _NEWTB_BUF))  # 48: the block's bytes


# void cb(uc_engine *uc /*rdi*/, uc_tb *cur /*rsi*/, uc_tb *prev /*rdx*/,
#         struct _NewTb *t /*rcx*/); offsets and targets in hex
_NEWTB_THUNK = bytes.fromhex(
    "488b4118"              #   0: mov rax,qword [rcx+0x18]
    "4885c0"                #   4: test rax,rax
    "0f844c010000"          #   7: je 159
    "0fb7460a"              #   d: movzx eax,word [rsi+0xa]
    "85c0"                  #  11: test eax,eax
    "0f842a010000"          #  13: je 143
    "3d00200000"            #  19: cmp eax,0x2000
    "0f8735010000"          #  1e: ja 159
    "4c8b06"                #  24: mov r8,qword [rsi]
    "4883791801"            #  27: cmp qword [rcx+0x18],0x1
    "7535"                  #  2c: jne 63
    "4d8d4c00ff"            #  2e: lea r9,[r8+rax*1-0x1]
    "49c1e90c"              #  33: shr r9,0xc
    "4981f900001000"        #  37: cmp r9,0x100000
    "0f8315010000"          #  3e: jae 159
    "4d89c2"                #  44: mov r10,r8
    "49c1ea0c"              #  47: shr r10,0xc
    "4c8b5910"              #  4b: mov r11,qword [rcx+0x10]
    "4d0fa313"              #  4f: bt qword [r11],r10
    "0f8300010000"          #  53: jae 159
    "4d0fa30b"              #  59: bt qword [r11],r9
    "0f83f6000000"          #  5d: jae 159
    "53"                    #  63: push rbx
    "4154"                  #  64: push r12
    "4155"                  #  66: push r13
    "4156"                  #  68: push r14
    "4157"                  #  6a: push r15
    "4889fb"                #  6c: mov rbx,rdi
    "4989f4"                #  6f: mov r12,rsi
    "4989d5"                #  72: mov r13,rdx
    "4989ce"                #  75: mov r14,rcx
    "4989c7"                #  78: mov r15,rax
    "4c89c6"                #  7b: mov rsi,r8
    "49837e1801"            #  7e: cmp qword [r14+0x18],0x1
    "750d"                  #  83: jne 92
    "498d5630"              #  85: lea rdx,[r14+0x30]
    "4c89f9"                #  89: mov rcx,r15
    "41ff5608"              #  8c: call qword [r14+0x8]
    "eb10"                  #  90: jmp a2
    "ba04000000"            #  92: mov edx,0x4
    "498d4e30"              #  97: lea rcx,[r14+0x30]
    "4d89f8"                #  9b: mov r8,r15
    "41ff5628"              #  9e: call qword [r14+0x28]
    "85c0"                  #  a2: test eax,eax
    "0f859a000000"          #  a4: jne 144
    "498d7630"              #  aa: lea rsi,[r14+0x30]
    "4a8d3c3e"              #  ae: lea rdi,[rsi+r15*1]
    "4839fe"                #  b2: cmp rsi,rdi
    "737f"                  #  b5: jae 136
    "0fb606"                #  b7: movzx eax,byte [rsi]
    "48ffc6"                #  ba: inc rsi
    "3c0f"                  #  bd: cmp al,0xf
    "743f"                  #  bf: je 100
    "3cf3"                  #  c1: cmp al,0xf3
    "75ed"                  #  c3: jne b2
    "4889f2"                #  c5: mov rdx,rsi
    "b903000000"            #  c8: mov ecx,0x3
    "4839fa"                #  cd: cmp rdx,rdi
    "73e0"                  #  d0: jae b2
    "0fb602"                #  d2: movzx eax,byte [rdx]
    "48ffc2"                #  d5: inc rdx
    "4189c0"                #  d8: mov r8d,eax
    "4181e0fc000000"        #  db: and r8d,0xfc
    "4183f86c"              #  e2: cmp r8d,0x6c
    "745c"                  #  e6: je 144
    "ffc9"                  #  e8: dec ecx
    "74c6"                  #  ea: je b2
    "3c64"                  #  ec: cmp al,0x64
    "7204"                  #  ee: jb f4
    "3c67"                  #  f0: cmp al,0x67
    "76d9"                  #  f2: jbe cd
    "25e7000000"            #  f4: and eax,0xe7
    "83f826"                #  f9: cmp eax,0x26
    "74cf"                  #  fc: je cd
    "ebb2"                  #  fe: jmp b2
    "4839fe"                # 100: cmp rsi,rdi
    "7331"                  # 103: jae 136
    "0fb606"                # 105: movzx eax,byte [rsi]
    "3c22"                  # 108: cmp al,0x22
    "7438"                  # 10a: je 144
    "3c30"                  # 10c: cmp al,0x30
    "7434"                  # 10e: je 144
    "3c32"                  # 110: cmp al,0x32
    "7430"                  # 112: je 144
    "3cc7"                  # 114: cmp al,0xc7
    "759a"                  # 116: jne b2
    "488d5601"              # 118: lea rdx,[rsi+0x1]
    "4839fa"                # 11c: cmp rdx,rdi
    "7391"                  # 11f: jae b2
    "0fb64601"              # 121: movzx eax,byte [rsi+0x1]
    "25f8000000"            # 125: and eax,0xf8
    "3df0000000"            # 12a: cmp eax,0xf0
    "7413"                  # 12f: je 144
    "e97cffffff"            # 131: jmp b2
    "49ff4620"              # 136: inc qword [r14+0x20]
    "415f"                  # 13a: pop r15
    "415e"                  # 13c: pop r14
    "415d"                  # 13e: pop r13
    "415c"                  # 140: pop r12
    "5b"                    # 142: pop rbx
    "c3"                    # 143: ret
    "4889df"                # 144: mov rdi,rbx
    "4c89e6"                # 147: mov rsi,r12
    "4c89ea"                # 14a: mov rdx,r13
    "4c89f1"                # 14d: mov rcx,r14
    "415f"                  # 150: pop r15
    "415e"                  # 152: pop r14
    "415d"                  # 154: pop r13
    "415c"                  # 156: pop r12
    "5b"                    # 158: pop rbx
    "ff21"                  # 159: jmp qword [rcx]
)
_NEWTB_OFFSET = 896

# The same for a PV vCPU (native.S: .text.newtb64): its blocks need Python only where
# they hold rdtsc, rdtscp (x86._RDTSC) or rdrand (x86._RDRAND), which get code traps; a
# Debian Linux boot translates some 700,000 blocks (~11 % of its time in Python's hook).
# It reads them with uc_vmem_read: the block's address is virtual.
# void cb(uc_engine *uc /*rdi*/, uc_tb *cur /*rsi*/, uc_tb *prev /*rdx*/,
#         struct _NewTb *t /*rcx*/); offsets and targets in hex
_NEWTB64_THUNK = bytes.fromhex(
    "4883791800"            #   0: cmp qword [rcx+0x18],0x0
    "0f84bc000000"          #   5: je c7
    "0fb7460a"              #   b: movzx eax,word [rsi+0xa]
    "85c0"                  #   f: test eax,eax
    "0f849a000000"          #  11: je b1
    "3d00200000"            #  17: cmp eax,0x2000
    "0f87a5000000"          #  1c: ja c7
    "53"                    #  22: push rbx
    "4154"                  #  23: push r12
    "4155"                  #  25: push r13
    "4156"                  #  27: push r14
    "4157"                  #  29: push r15
    "4889fb"                #  2b: mov rbx,rdi
    "4989f4"                #  2e: mov r12,rsi
    "4989d5"                #  31: mov r13,rdx
    "4989ce"                #  34: mov r14,rcx
    "4989c7"                #  37: mov r15,rax
    "498b3424"              #  3a: mov rsi,qword [r12]
    "ba04000000"            #  3e: mov edx,0x4
    "498d4e30"              #  43: lea rcx,[r14+0x30]
    "4d89f8"                #  47: mov r8,r15
    "41ff5628"              #  4a: call qword [r14+0x28]
    "85c0"                  #  4e: test eax,eax
    "7560"                  #  50: jne b2
    "498d7630"              #  52: lea rsi,[r14+0x30]
    "4a8d7c3eff"            #  56: lea rdi,[rsi+r15*1-0x1]
    "4839fe"                #  5b: cmp rsi,rdi
    "7344"                  #  5e: jae a4
    "803e0f"                #  60: cmp byte [rsi],0xf
    "753a"                  #  63: jne 9f
    "0fb64601"              #  65: movzx eax,byte [rsi+0x1]
    "3c31"                  #  69: cmp al,0x31
    "7445"                  #  6b: je b2
    "3cc7"                  #  6d: cmp al,0xc7
    "7415"                  #  6f: je 86
    "3c01"                  #  71: cmp al,0x1
    "752a"                  #  73: jne 9f
    "488d4602"              #  75: lea rax,[rsi+0x2]
    "4839f8"                #  79: cmp rax,rdi
    "7721"                  #  7c: ja 9f
    "807e02f9"              #  7e: cmp byte [rsi+0x2],0xf9
    "742e"                  #  82: je b2
    "eb19"                  #  84: jmp 9f
    "488d4602"              #  86: lea rax,[rsi+0x2]
    "4839f8"                #  8a: cmp rax,rdi
    "7710"                  #  8d: ja 9f
    "0fb64602"              #  8f: movzx eax,byte [rsi+0x2]
    "25f8000000"            #  93: and eax,0xf8
    "3df0000000"            #  98: cmp eax,0xf0
    "7413"                  #  9d: je b2
    "48ffc6"                #  9f: inc rsi
    "ebb7"                  #  a2: jmp 5b
    "49ff4620"              #  a4: inc qword [r14+0x20]
    "415f"                  #  a8: pop r15
    "415e"                  #  aa: pop r14
    "415d"                  #  ac: pop r13
    "415c"                  #  ae: pop r12
    "5b"                    #  b0: pop rbx
    "c3"                    #  b1: ret
    "4889df"                #  b2: mov rdi,rbx
    "4c89e6"                #  b5: mov rsi,r12
    "4c89ea"                #  b8: mov rdx,r13
    "4c89f1"                #  bb: mov rcx,r14
    "415f"                  #  be: pop r15
    "415e"                  #  c0: pop r14
    "415d"                  #  c2: pop r13
    "415c"                  #  c4: pop r12
    "5b"                    #  c6: pop rbx
    "ff21"                  #  c7: jmp qword [rcx]
)
_NEWTB64_OFFSET = 1248

# The page walk of an HVM vCPU once its guest has paging on (UC_HOOK_TLB_FILL of unicorn's
# virtual TLB, X86Vcpu._enter_walk): QEMU's walk for the accesses it can judge alone, so
# that data pages are entered without execute permission. Source: xenlab/cpu/walk.c,
# built by gcc (native.S: .text.walk); offsets and targets in hex.
# bool cb(uc_engine *uc /*rdi*/, uint64_t addr /*rsi*/, uc_mem_type type /*edx*/,
#         uc_tlb_entry *e /*rcx*/, struct _Walk *w /*r8*/)
_WALK_THUNK = bytes.fromhex(
    "4157"                  #   0: push r15
    "89d0"                  #   2: mov eax,edx
    "4156"                  #   4: push r14
    "4155"                  #   6: push r13
    "4154"                  #   8: push r12
    "55"                    #   a: push rbp
    "4889cd"                #   b: mov rbp,rcx
    "53"                    #   e: push rbx
    "4889f3"                #   f: mov rbx,rsi
    "4883ec38"              #  12: sub rsp,0x38
    "498b10"                #  16: mov rdx,qword [r8]
    "498b4818"              #  19: mov rcx,qword [r8+0x18]
    "488b32"                #  1d: mov rsi,qword [rdx]
    "4c8b19"                #  20: mov r11,qword [rcx]
    "498b5010"              #  23: mov rdx,qword [r8+0x10]
    "498b4820"              #  27: mov rcx,qword [r8+0x20]
    "488b12"                #  2b: mov rdx,qword [rdx]
    "8b09"                  #  2e: mov ecx,dword [rcx]
    "f7c600000080"          #  30: test esi,0x80000000
    "0f8434010000"          #  36: je 170
    "4881fbffdfffff"        #  3c: cmp rbx,0xffffffffffffdfff
    "0f87ff000000"          #  43: ja 148
    "f7c200106000"          #  49: test edx,0x601000
    "0f8593010000"          #  4f: jne 1e8
    "49b900000000f0ff0f80"  #  55: movabs r9,0x800ffff000000000
    "4c89df"                #  5f: mov rdi,r11
    "4989d6"                #  62: mov r14,rdx
    "81e700080000"          #  65: and edi,0x800
    "48897c2410"            #  6b: mov qword [rsp+0x10],rdi
    "48bf00000000f0ff0f00"  #  70: movabs rdi,0xffff000000000
    "490f44f9"              #  7a: cmove rdi,r9
    "83e103"                #  7e: and ecx,0x3
    "83f903"                #  81: cmp ecx,0x3
    "410f94c1"              #  84: sete r9b
    "83f811"                #  88: cmp eax,0x11
    "410f94c2"              #  8b: sete r10b
    "4183e620"              #  8f: and r14d,0x20
    "4c89742408"            #  93: mov qword [rsp+0x8],r14
    "0f8522010000"          #  98: jne 1c0
    "498b7808"              #  9e: mov rdi,qword [r8+0x8]
    "4989db"                #  a2: mov r11,rbx
    "4d8b6030"              #  a5: mov r12,qword [r8+0x30]
    "49c1eb14"              #  a9: shr r11,0x14
    "4d8b6828"              #  ad: mov r13,qword [r8+0x28]
    "488b3f"                #  b1: mov rdi,qword [rdi]
    "4181e3fc0f0000"        #  b4: and r11d,0xffc
    "4881e700f0ffff"        #  bb: and rdi,0xfffffffffffff000
    "4909fb"                #  c2: or r11,rdi
    "48c1ef0c"              #  c5: shr rdi,0xc
    "81e7ffff0f00"          #  c9: and edi,0xfffff
    "4c39e7"                #  cf: cmp rdi,r12
    "0f8310010000"          #  d2: jae 1e8
    "498b7cfd00"            #  d8: mov rdi,qword [r13+rdi*8+0x0]
    "4885ff"                #  dd: test rdi,rdi
    "0f8402010000"          #  e0: je 1e8
    "4181e3ff0f0000"        #  e6: and r11d,0xfff
    "4c01df"                #  ed: add rdi,r11
    "448b3f"                #  f0: mov r15d,dword [rdi]
    "41f6c701"              #  f3: test r15b,0x1
    "0f84e3020000"          #  f7: je 3e0
    "41f6c780"              #  fd: test r15b,0x80
    "0f8409010000"          # 101: je 210
    "f6c210"                # 107: test dl,0x10
    "0f8400010000"          # 10a: je 210
    "41f7c700002000"        # 110: test r15d,0x200000
    "0f85cb000000"          # 117: jne 1e8
    "4d89fb"                # 11d: mov r11,r15
    "4531ed"                # 120: xor r13d,r13d
    "41be00004000"          # 123: mov r14d,0x400000
    "49bc00000000ff000000"  # 129: movabs r12,0xff00000000
    "49c1e313"              # 133: shl r11,0x13
    "4d21e3"                # 137: and r11,r12
    "4d09fb"                # 13a: or r11,r15
    "e92b010000"            # 13d: jmp 26d
    "660f1f440000"          # 142: nop word [rax+rax*1+0x0]
    "41bc07000000"          # 148: mov r12d,0x7
    "48895d00"              # 14e: mov qword [rbp+0x0],rbx
    "b801000000"            # 152: mov eax,0x1
    "44896508"              # 157: mov dword [rbp+0x8],r12d
    "4883c438"              # 15b: add rsp,0x38
    "5b"                    # 15f: pop rbx
    "5d"                    # 160: pop rbp
    "415c"                  # 161: pop r12
    "415d"                  # 163: pop r13
    "415e"                  # 165: pop r14
    "415f"                  # 167: pop r15
    "c3"                    # 169: ret
    "660f1f440000"          # 16a: nop word [rax+rax*1+0x0]
    "41bc07000000"          # 170: mov r12d,0x7
    "4889df"                # 176: mov rdi,rbx
    "48c1ef20"              # 179: shr rdi,0x20
    "75cf"                  # 17d: jne 14e
    "4889d9"                # 17f: mov rcx,rbx
    "ba01000000"            # 182: mov edx,0x1
    "4889de"                # 187: mov rsi,rbx
    "48c1e90c"              # 18a: shr rcx,0xc
    "48c1ee12"              # 18e: shr rsi,0x12
    "48d3e2"                # 192: shl rdx,cl
    "498b4838"              # 195: mov rcx,qword [r8+0x38]
    "4889d7"                # 199: mov rdi,rdx
    "488d0cf1"              # 19c: lea rcx,[rcx+rsi*8]
    "488b31"                # 1a0: mov rsi,qword [rcx]
    "4821f7"                # 1a3: and rdi,rsi
    "83f812"                # 1a6: cmp eax,0x12
    "0f8411020000"          # 1a9: je 3c0
    "4489e0"                # 1af: mov eax,r12d
    "83e0fb"                # 1b2: and eax,0xfffffffb
    "4885ff"                # 1b5: test rdi,rdi
    "440f44e0"              # 1b8: cmove r12d,eax
    "eb90"                  # 1bc: jmp 14e
    "6690"                  # 1be: xchg ax,ax
    "41f7c300040000"        # 1c0: test r11d,0x400
    "0f846b010000"          # 1c7: je 338
    "4989db"                # 1cd: mov r11,rbx
    "49c1fb2f"              # 1d0: sar r11,0x2f
    "4983c301"              # 1d4: add r11,0x1
    "4983fb01"              # 1d8: cmp r11,0x1
    "0f8636020000"          # 1dc: jbe 418
    "660f1f440000"          # 1e2: nop word [rax+rax*1+0x0]
    "b802000000"            # 1e8: mov eax,0x2
    "49894050"              # 1ed: mov qword [r8+0x50],rax
    "31c0"                  # 1f1: xor eax,eax
    "49895860"              # 1f3: mov qword [r8+0x60],rbx
    "4883c438"              # 1f7: add rsp,0x38
    "5b"                    # 1fb: pop rbx
    "5d"                    # 1fc: pop rbp
    "415c"                  # 1fd: pop r12
    "415d"                  # 1ff: pop r13
    "415e"                  # 201: pop r14
    "415f"                  # 203: pop r15
    "c3"                    # 205: ret
    "662e0f1f840000000000"  # 206: cs nop word [rax+rax*1+0x0]
    "41f6c720"              # 210: test r15b,0x20
    "0f84ae030000"          # 214: je 5c8
    "4989db"                # 21a: mov r11,rbx
    "4489ff"                # 21d: mov edi,r15d
    "49c1eb0a"              # 220: shr r11,0xa
    "81e700f0ffff"          # 224: and edi,0xfffff000
    "4181e3fc0f0000"        # 22a: and r11d,0xffc
    "4909fb"                # 231: or r11,rdi
    "48c1ef0c"              # 234: shr rdi,0xc
    "4c39e7"                # 238: cmp rdi,r12
    "73ab"                  # 23b: jae 1e8
    "498b7cfd00"            # 23d: mov rdi,qword [r13+rdi*8+0x0]
    "4885ff"                # 242: test rdi,rdi
    "74a1"                  # 245: je 1e8
    "4181e3ff0f0000"        # 247: and r11d,0xfff
    "4c01df"                # 24e: add rdi,r11
    "448b27"                # 251: mov r12d,dword [rdi]
    "41f6c401"              # 254: test r12b,0x1
    "0f8482010000"          # 258: je 3e0
    "4589e3"                # 25e: mov r11d,r12d
    "4521e7"                # 261: and r15d,r12d
    "4531ed"                # 264: xor r13d,r13d
    "41be00100000"          # 267: mov r14d,0x1000
    "83f903"                # 26d: cmp ecx,0x3
    "0f841a040000"          # 270: je 690
    "41f6c702"              # 276: test r15b,0x2
    "0f85d0030000"          # 27a: jne 650
    "f7c600000100"          # 280: test esi,0x10000
    "0f84c4030000"          # 286: je 650
    "41bc01000000"          # 28c: mov r12d,0x1
    "4d85ff"                # 292: test r15,r15
    "0f884e050000"          # 295: js 7e9
    "f7c200001000"          # 29b: test edx,0x100000
    "0f8411040000"          # 2a1: je 6b8
    "4183e704"              # 2a7: and r15d,0x4
    "0f8407040000"          # 2ab: je 6b8
    "83f812"                # 2b1: cmp eax,0x12
    "0f8410040000"          # 2b4: je 6ca
    "83f811"                # 2ba: cmp eax,0x11
    "0f84e5040000"          # 2bd: je 7a8
    "41f6c320"              # 2c3: test r11b,0x20
    "7522"                  # 2c7: jne 2eb
    "ba20000000"            # 2c9: mov edx,0x20
    "4d85ed"                # 2ce: test r13,r13
    "0f84bd040000"          # 2d1: je 794
    "498b4d00"              # 2d7: mov rcx,qword [r13+0x0]
    "4821d1"                # 2db: and rcx,rdx
    "4839ca"                # 2de: cmp rdx,rcx
    "7405"                  # 2e1: je 2e8
    "f049095500"            # 2e3: lock or qword [r13+0x0],rdx
    "4909d3"                # 2e8: or r11,rdx
    "48b900f0ffffffff0f00"  # 2eb: movabs rcx,0xffffffffff000
    "4489e2"                # 2f5: mov edx,r12d
    "83e2fd"                # 2f8: and edx,0xfffffffd
    "41f6c340"              # 2fb: test r11b,0x40
    "440f44e2"              # 2ff: cmove r12d,edx
    "4c89f2"                # 303: mov rdx,r14
    "48f7da"                # 306: neg rdx
    "4c21da"                # 309: and rdx,r11
    "4821ca"                # 30c: and rdx,rcx
    "498d8e00f0ffff"        # 30f: lea rcx,[r14-0x1000]
    "4821d9"                # 316: and rcx,rbx
    "4809ca"                # 319: or rdx,rcx
    "4889d7"                # 31c: mov rdi,rdx
    "48c1ef24"              # 31f: shr rdi,0x24
    "0f85bffeffff"          # 323: jne 1e8
    "4889d3"                # 329: mov rbx,rdx
    "e945feffff"            # 32c: jmp 176
    "0f1f8000000000"        # 331: nop dword [rax+0x0]
    "4d8b5808"              # 338: mov r11,qword [r8+0x8]
    "4989dd"                # 33c: mov r13,rbx
    "4d8b6030"              # 33f: mov r12,qword [r8+0x30]
    "49c1ed1b"              # 343: shr r13,0x1b
    "4d8b7028"              # 347: mov r14,qword [r8+0x28]
    "4d8b1b"                # 34b: mov r11,qword [r11]
    "4183e518"              # 34e: and r13d,0x18
    "4983e3e0"              # 352: and r11,0xffffffffffffffe0
    "4d09dd"                # 356: or r13,r11
    "49c1eb0c"              # 359: shr r11,0xc
    "4181e3ffff0f00"        # 35d: and r11d,0xfffff
    "4d39e3"                # 364: cmp r11,r12
    "0f837bfeffff"          # 367: jae 1e8
    "4f8b1cde"              # 36d: mov r11,qword [r14+r11*8]
    "4d85db"                # 371: test r11,r11
    "0f846efeffff"          # 374: je 1e8
    "4181e5ff0f0000"        # 37a: and r13d,0xfff
    "4f8b2c2b"              # 381: mov r13,qword [r11+r13*1]
    "41f6c501"              # 385: test r13b,0x1
    "0f8451020000"          # 389: je 5e0
    "4d89ef"                # 38f: mov r15,r13
    "49c1ef24"              # 392: shr r15,0x24
    "0f854cfeffff"          # 396: jne 1e8
    "49bb000000000000f07f"  # 39c: movabs r11,0x7ff0000000000000
    "49bf0600000000000080"  # 3a6: movabs r15,0x8000000000000006
    "4c897c2418"            # 3b0: mov qword [rsp+0x18],r15
    "4c09df"                # 3b5: or rdi,r11
    "e983010000"            # 3b8: jmp 540
    "0f1f00"                # 3bd: nop dword [rax]
    "4885ff"                # 3c0: test rdi,rdi
    "0f8585fdffff"          # 3c3: jne 14e
    "4809f2"                # 3c9: or rdx,rsi
    "498b7848"              # 3cc: mov rdi,qword [r8+0x48]
    "488911"                # 3d0: mov qword [rcx],rdx
    "41ff5040"              # 3d3: call qword [r8+0x40]
    "e972fdffff"            # 3d7: jmp 14e
    "0f1f4000"              # 3dc: nop dword [rax+0x0]
    "410fb6f2"              # 3e0: movzx esi,r10b
    "450fb6c9"              # 3e4: movzx r9d,r9b
    "4801f6"                # 3e8: add rsi,rsi
    "49c1e102"              # 3eb: shl r9,0x2
    "4c09ce"                # 3ef: or rsi,r9
    "83f812"                # 3f2: cmp eax,0x12
    "0f841d020000"          # 3f5: je 618
    "b801000000"            # 3fb: mov eax,0x1
    "83f903"                # 400: cmp ecx,0x3
    "0f8437020000"          # 403: je 640
    "49897058"              # 409: mov qword [r8+0x58],rsi
    "e9dbfdffff"            # 40d: jmp 1ed
    "660f1f440000"          # 412: nop word [rax+rax*1+0x0]
    "4d8b5808"              # 418: mov r11,qword [r8+0x8]
    "4d8b6030"              # 41c: mov r12,qword [r8+0x30]
    "49bd00f0ffffffff0f00"  # 420: movabs r13,0xffffffffff000
    "4d8b7028"              # 42a: mov r14,qword [r8+0x28]
    "4d232b"                # 42e: and r13,qword [r11]
    "4989db"                # 431: mov r11,rbx
    "49c1eb24"              # 434: shr r11,0x24
    "4181e3f80f0000"        # 438: and r11d,0xff8
    "4d09eb"                # 43f: or r11,r13
    "49c1ed0c"              # 442: shr r13,0xc
    "4d39e5"                # 446: cmp r13,r12
    "0f8399fdffff"          # 449: jae 1e8
    "4f8b3cee"              # 44f: mov r15,qword [r14+r13*8]
    "4d85ff"                # 453: test r15,r15
    "0f848cfdffff"          # 456: je 1e8
    "4181e3ff0f0000"        # 45c: and r11d,0xfff
    "4f8d2c1f"              # 463: lea r13,[r15+r11*1]
    "4d8b5d00"              # 467: mov r11,qword [r13+0x0]
    "41f6c301"              # 46b: test r11b,0x1
    "0f846b010000"          # 46f: je 5e0
    "4989ff"                # 475: mov r15,rdi
    "4180cf80"              # 478: or r15b,0x80
    "4c897c2420"            # 47c: mov qword [rsp+0x20],r15
    "4d85df"                # 481: test r15,r11
    "0f855efdffff"          # 484: jne 1e8
    "41f6c320"              # 48a: test r11b,0x20
    "750e"                  # 48e: jne 49e
    "f049834d0020"          # 490: lock or qword [r13+0x0],0x20
    "4d8b7028"              # 496: mov r14,qword [r8+0x28]
    "4d8b6030"              # 49a: mov r12,qword [r8+0x30]
    "49bd00f0ffffffff0f00"  # 49e: movabs r13,0xffffffffff000
    "4989df"                # 4a8: mov r15,rbx
    "49c1ef1b"              # 4ab: shr r15,0x1b
    "4d21dd"                # 4af: and r13,r11
    "4181e7f80f0000"        # 4b2: and r15d,0xff8
    "4d09ef"                # 4b9: or r15,r13
    "49c1ed0c"              # 4bc: shr r13,0xc
    "4c897c2418"            # 4c0: mov qword [rsp+0x18],r15
    "4d39e5"                # 4c5: cmp r13,r12
    "0f831afdffff"          # 4c8: jae 1e8
    "4f8b3cee"              # 4ce: mov r15,qword [r14+r13*8]
    "4d85ff"                # 4d2: test r15,r15
    "0f840dfdffff"          # 4d5: je 1e8
    "4c8b6c2418"            # 4db: mov r13,qword [rsp+0x18]
    "4181e5ff0f0000"        # 4e0: and r13d,0xfff
    "4d01ef"                # 4e7: add r15,r13
    "4d8b2f"                # 4ea: mov r13,qword [r15]
    "4c897c2428"            # 4ed: mov qword [rsp+0x28],r15
    "41f6c501"              # 4f2: test r13b,0x1
    "0f84e4000000"          # 4f6: je 5e0
    "49bf0000000000000080"  # 4fc: movabs r15,0x8000000000000000
    "4d31fb"                # 506: xor r11,r15
    "4d31ef"                # 509: xor r15,r13
    "4d21df"                # 50c: and r15,r11
    "4c897c2418"            # 50f: mov qword [rsp+0x18],r15
    "4c856c2420"            # 514: test qword [rsp+0x20],r13
    "0f85c9fcffff"          # 519: jne 1e8
    "41f6c520"              # 51f: test r13b,0x20
    "751b"                  # 523: jne 540
    "4c8b7c2428"            # 525: mov r15,qword [rsp+0x28]
    "f049830f20"            # 52a: lock or qword [r15],0x20
    "4d8b7028"              # 52f: mov r14,qword [r8+0x28]
    "4d8b6030"              # 533: mov r12,qword [r8+0x30]
    "660f1f840000000000"    # 537: nop word [rax+rax*1+0x0]
    "49bb00f0ffffffff0f00"  # 540: movabs r11,0xffffffffff000
    "4989df"                # 54a: mov r15,rbx
    "49c1ef12"              # 54d: shr r15,0x12
    "4d21eb"                # 551: and r11,r13
    "4181e7f80f0000"        # 554: and r15d,0xff8
    "4d09df"                # 55b: or r15,r11
    "49c1eb0c"              # 55e: shr r11,0xc
    "4d39e3"                # 562: cmp r11,r12
    "0f837dfcffff"          # 565: jae 1e8
    "4f8b2cde"              # 56b: mov r13,qword [r14+r11*8]
    "4d85ed"                # 56f: test r13,r13
    "0f8470fcffff"          # 572: je 1e8
    "4181e7ff0f0000"        # 578: and r15d,0xfff
    "4d01fd"                # 57f: add r13,r15
    "4d8b5d00"              # 582: mov r11,qword [r13+0x0]
    "41f6c301"              # 586: test r11b,0x1
    "7454"                  # 58a: je 5e0
    "4d89df"                # 58c: mov r15,r11
    "490fbaff3f"            # 58f: btc r15,0x3f
    "4c237c2418"            # 594: and r15,qword [rsp+0x18]
    "41f6c380"              # 599: test r11b,0x80
    "0f8464010000"          # 59d: je 707
    "4881cf00e01f00"        # 5a3: or rdi,0x1fe000
    "41be00002000"          # 5aa: mov r14d,0x200000
    "4985fb"                # 5b0: test r11,rdi
    "0f852ffcffff"          # 5b3: jne 1e8
    "490fbaff3f"            # 5b9: btc r15,0x3f
    "31ff"                  # 5be: xor edi,edi
    "e9a8fcffff"            # 5c0: jmp 26d
    "0f1f00"                # 5c5: nop dword [rax]
    "f0830f20"              # 5c8: lock or dword [rdi],0x20
    "4d8b6828"              # 5cc: mov r13,qword [r8+0x28]
    "4d8b6030"              # 5d0: mov r12,qword [r8+0x30]
    "e941fcffff"            # 5d4: jmp 21a
    "0f1f8000000000"        # 5d9: nop dword [rax+0x0]
    "410fb6f2"              # 5e0: movzx esi,r10b
    "450fb6c9"              # 5e4: movzx r9d,r9b
    "4801f6"                # 5e8: add rsi,rsi
    "49c1e102"              # 5eb: shl r9,0x2
    "4c09ce"                # 5ef: or rsi,r9
    "83f812"                # 5f2: cmp eax,0x12
    "0f8500feffff"          # 5f5: jne 3fb
    "48837c240800"          # 5fb: cmp qword [rsp+0x8],0x0
    "7415"                  # 601: je 618
    "48837c241000"          # 603: cmp qword [rsp+0x10],0x0
    "740d"                  # 609: je 618
    "4883ce10"              # 60b: or rsi,0x10
    "e9e7fdffff"            # 60f: jmp 3fb
    "0f1f4000"              # 614: nop dword [rax+0x0]
    "f7c200001000"          # 618: test edx,0x100000
    "0f84d7fdffff"          # 61e: je 3fb
    "ebe5"                  # 624: jmp 60b
    "410fb6f2"              # 626: movzx esi,r10b
    "4801f6"                # 62a: add rsi,rsi
    "4883ce05"              # 62d: or rsi,0x5
    "83f812"                # 631: cmp eax,0x12
    "74c5"                  # 634: je 5fb
    "662e0f1f840000000000"  # 636: cs nop word [rax+rax*1+0x0]
    "b803000000"            # 640: mov eax,0x3
    "e9bffdffff"            # 645: jmp 409
    "660f1f440000"          # 64a: nop word [rax+rax*1+0x0]
    "41bc03000000"          # 650: mov r12d,0x3
    "4d85ff"                # 656: test r15,r15
    "0f893cfcffff"          # 659: jns 29b
    "83f812"                # 65f: cmp eax,0x12
    "7466"                  # 662: je 6ca
    "41bc03000000"          # 664: mov r12d,0x3
    "83f811"                # 66a: cmp eax,0x11
    "0f8550fcffff"          # 66d: jne 2c3
    "4c89d9"                # 673: mov rcx,r11
    "ba60000000"            # 676: mov edx,0x60
    "83e160"                # 67b: and ecx,0x60
    "4883f960"              # 67e: cmp rcx,0x60
    "0f8546fcffff"          # 682: jne 2ce
    "e95efcffff"            # 688: jmp 2eb
    "0f1f00"                # 68d: nop dword [rax]
    "41f6c704"              # 690: test r15b,0x4
    "7490"                  # 694: je 626
    "41f6c702"              # 696: test r15b,0x2
    "7449"                  # 69a: je 6e5
    "4d85ff"                # 69c: test r15,r15
    "78be"                  # 69f: js 65f
    "41bc07000000"          # 6a1: mov r12d,0x7
    "83f812"                # 6a7: cmp eax,0x12
    "75be"                  # 6aa: jne 66a
    "e912fcffff"            # 6ac: jmp 2c3
    "0f1f8000000000"        # 6b1: nop dword [rax+0x0]
    "4183cc04"              # 6b8: or r12d,0x4
    "83f812"                # 6bc: cmp eax,0x12
    "0f85f5fbffff"          # 6bf: jne 2ba
    "e9f9fbffff"            # 6c5: jmp 2c3
    "410fb6f1"              # 6ca: movzx esi,r9b
    "410fb6c2"              # 6ce: movzx eax,r10b
    "48c1e602"              # 6d2: shl rsi,0x2
    "4801c0"                # 6d6: add rax,rax
    "4809c6"                # 6d9: or rsi,rax
    "4883ce01"              # 6dc: or rsi,0x1
    "e916ffffff"            # 6e0: jmp 5fb
    "4d85ff"                # 6e5: test r15,r15
    "0f88d9000000"          # 6e8: js 7c7
    "83f812"                # 6ee: cmp eax,0x12
    "7409"                  # 6f1: je 6fc
    "83f811"                # 6f3: cmp eax,0x11
    "0f84e3000000"          # 6f6: je 7df
    "41bc05000000"          # 6fc: mov r12d,0x5
    "e9bcfbffff"            # 702: jmp 2c3
    "4c85df"                # 707: test rdi,r11
    "0f85d8faffff"          # 70a: jne 1e8
    "41f6c320"              # 710: test r11b,0x20
    "750e"                  # 714: jne 724
    "f049834d0020"          # 716: lock or qword [r13+0x0],0x20
    "4d8b7028"              # 71c: mov r14,qword [r8+0x28]
    "4d8b6030"              # 720: mov r12,qword [r8+0x30]
    "4989dd"                # 724: mov r13,rbx
    "49c1ed09"              # 727: shr r13,0x9
    "4181e5f80f0000"        # 72b: and r13d,0xff8
    "4c896c2418"            # 732: mov qword [rsp+0x18],r13
    "49bd00f0ffffffff0f00"  # 737: movabs r13,0xffffffffff000
    "4d21dd"                # 741: and r13,r11
    "4c8b5c2418"            # 744: mov r11,qword [rsp+0x18]
    "4d09eb"                # 749: or r11,r13
    "49c1ed0c"              # 74c: shr r13,0xc
    "4d39e5"                # 750: cmp r13,r12
    "0f838ffaffff"          # 753: jae 1e8
    "4f8b2cee"              # 759: mov r13,qword [r14+r13*8]
    "4d85ed"                # 75d: test r13,r13
    "0f8482faffff"          # 760: je 1e8
    "4181e3ff0f0000"        # 766: and r11d,0xfff
    "4d01dd"                # 76d: add r13,r11
    "4d8b5d00"              # 770: mov r11,qword [r13+0x0]
    "41f6c301"              # 774: test r11b,0x1
    "0f8462feffff"          # 778: je 5e0
    "4d89dc"                # 77e: mov r12,r11
    "41be00100000"          # 781: mov r14d,0x1000
    "490fbafc3f"            # 787: btc r12,0x3f
    "4d21e7"                # 78c: and r15,r12
    "e91cfeffff"            # 78f: jmp 5b0
    "8b0f"                  # 794: mov ecx,dword [rdi]
    "21d1"                  # 796: and ecx,edx
    "39ca"                  # 798: cmp edx,ecx
    "0f8448fbffff"          # 79a: je 2e8
    "f00917"                # 7a0: lock or dword [rdi],edx
    "e940fbffff"            # 7a3: jmp 2e8
    "41f6c402"              # 7a8: test r12b,0x2
    "0f85c1feffff"          # 7ac: jne 673
    "410fb6f2"              # 7b2: movzx esi,r10b
    "b801000000"            # 7b6: mov eax,0x1
    "4801f6"                # 7bb: add rsi,rsi
    "4883ce01"              # 7be: or rsi,0x1
    "e942fcffff"            # 7c2: jmp 409
    "83f812"                # 7c7: cmp eax,0x12
    "0f84fafeffff"          # 7ca: je 6ca
    "41bc01000000"          # 7d0: mov r12d,0x1
    "83f811"                # 7d6: cmp eax,0x11
    "0f85e4faffff"          # 7d9: jne 2c3
    "be07000000"            # 7df: mov esi,0x7
    "e957feffff"            # 7e4: jmp 640
    "83f812"                # 7e9: cmp eax,0x12
    "0f84d8feffff"          # 7ec: je 6ca
    "83f811"                # 7f2: cmp eax,0x11
    "0f85c8faffff"          # 7f5: jne 2c3
    "be03000000"            # 7fb: mov esi,0x3
    "b801000000"            # 800: mov eax,0x1
    "e9fffbffff"            # 805: jmp 409
)
_WALK_OFFSET = 1536
_WALK_RAM_LIMIT = 1 << 33     # the walk reads page tables in RAM below 8 GiB
_CR4_NOT_WALKED = (1 << 12) | (1 << 21) | (1 << 22)  # LA57 SMAP PKE
_native_page: mmap.mmap | None = None
# Where CPUX86State.old_exception sits in a uc_context (found by experiment, -1: not found)
_OLD_EXCEPTION_OFFSET: int | None = None


_DE_PROBE = bytes.fromhex("31dbf7f3")        # xor %ebx,%ebx; div %ebx: #DE
_GP_PROBE = bytes.fromhex("66b810008ed8")    # mov $0x10,%ax; mov %ax,%ds: #GP (past the GDT)


def _fault_probe(code: bytes, in_hook: Callable[[Uc], object] | None = None) -> Uc:
    """A fresh 64-bit engine that ran ``code`` at 0x1000 with one (null) GDT descriptor
    and an interrupt hook that calls ``in_hook`` and stops it: what the finders of
    QEMU's exception fields probe with."""
    uc = Uc(uc_const.UC_ARCH_X86, uc_const.UC_MODE_64)
    uc.mem_map(0x1000, PAGE_SIZE)
    uc.mem_write(0x1000, code)
    uc.reg_write(X.UC_X86_REG_GDTR, (0, 0x1000, 7, 0))  # one (null) descriptor

    def hook(u: Uc, intno: int, user: object) -> None:
        if in_hook is not None:
            in_hook(u)
        u.emu_stop()

    uc.hook_add(uc_const.UC_HOOK_INTR, hook)
    if code:
        with contextlib.suppress(UcError):
            uc.emu_start(0x1000, 0x1000 + len(code))
    return uc


def _old_exception_offset() -> int:
    """Offset of QEMU's ``env->old_exception`` in this unicorn's saved CPU context.

    QEMU resets it to -1 when it delivers an exception; unicorn never delivers one (the
    hook stands in for the IDT), so the vector of the last contributory fault or page
    fault stays there, even one the CPU raised and dropped when a hook stopped it, and
    turns the next fault into a #DF (and the one after into a silent triple fault).
    Found as the one int that is -1 in a fresh engine, 0 after a #DE, 13 after a #GP
    (a selector beyond the GDT limit)."""
    global _OLD_EXCEPTION_OFFSET
    if _OLD_EXCEPTION_OFFSET is not None:
        return _OLD_EXCEPTION_OFFSET

    def context_after(code: bytes) -> bytes:
        ctx = _fault_probe(code).context_save()
        return ctypes.string_at(ctx.context.value, ctx.size)

    try:
        fresh, de, gp = context_after(b""), context_after(_DE_PROBE), context_after(_GP_PROBE)
        found = [off for off in range(0, min(len(fresh), len(de), len(gp)) - 3, 4)
                 if struct.unpack_from("<iii", fresh[off:off + 4] + de[off:off + 4]
                                       + gp[off:off + 4]) == (-1, 0, 13)]
    except (UcError, AttributeError, ValueError):
        found = []
    _OLD_EXCEPTION_OFFSET = found[0] if len(found) == 1 else -1
    return _OLD_EXCEPTION_OFFSET
class _IdtFault(Exception):
    """The exception the CPU raises when it cannot use a gate (#GP or #NP, the IDT index
    in the error code)."""

    def __init__(self, vector: int, error: int, why: str) -> None:
        super().__init__(why)
        self.vector, self.error = vector, error


#: exceptions that make a #DF when one follows another (Intel SDM vol. 3, table 6-5)
_CONTRIBUTORY = frozenset((0, 10, 11, 12, 13))


# Where CPUX86State's error_code, exception_is_int and hflags sit in a uc_context (found by
# experiment; -1: not found)
_ENV_FIELDS: dict[str, int] | None = None


def _env_fields() -> dict[str, int]:
    """Offsets in this unicorn's saved CPU context of three QEMU fields unicorn has no
    register for, each found by experiment as the one int that behaves so (-1 if none):

    - ``error_code``: the error code of the last exception QEMU raised (0x28, then 0x30,
      for a #GP on loading selector 0x28, then 0x30, beyond the GDT limit);
    - ``exception_is_int``: 1 after ``int $0x80``, 0 after a #DE (a software interrupt
      is checked against its gate's DPL and pushes no error code);
    - ``hflags``: its low two bits are the CPL (0 in ring 0, 3 after an ``iretq`` to
      ring 3). unicorn loads SS and CS only as the current CPL allows, so entering ring 0
      from ring 3, as the CPU does through an interrupt gate, sets the CPL here first."""
    global _ENV_FIELDS
    if _ENV_FIELDS is not None:
        return _ENV_FIELDS

    def context_after(code: bytes, start: int = 0x1000) -> bytes:
        uc = Uc(uc_const.UC_ARCH_X86, uc_const.UC_MODE_64)
        uc.mem_map(0, 0x10000)
        uc.mem_write(0x1000, code)
        gdt = struct.pack("<4Q", 0, 0x00AF9A000000FFFF, 0x00CFF2000000FFFF, 0x00AFFA000000FFFF)
        uc.mem_write(0x4000, gdt)
        uc.reg_write(X.UC_X86_REG_GDTR, (0, 0x4000, 31, 0))
        # an iretq frame to ring 3: RIP 0x1002, CS 0x1b, RFLAGS, RSP 0x9000, SS 0x13
        uc.mem_write(0x8000, struct.pack("<5Q", 0x1002, 0x1B, 2, 0x9000, 0x13))
        uc.reg_write(X.UC_X86_REG_RSP, 0x8000)
        uc.hook_add(uc_const.UC_HOOK_INTR, lambda u, n, d: u.emu_stop())
        with contextlib.suppress(UcError):
            uc.emu_start(start, 0x1000 + len(code))
        ctx = uc.context_save()
        return ctypes.string_at(ctx.context.value, ctx.size)

    fields = {"error_code": -1, "exception_is_int": -1, "hflags": -1}
    try:
        gp28 = context_after(bytes.fromhex("66b828008ed8"))   # mov $0x28,%ax; mov %ax,%ds
        gp30 = context_after(bytes.fromhex("66b830008ed8"))   # ... 0x30
        int80 = context_after(bytes.fromhex("cd80"))
        de = context_after(bytes.fromhex("31dbf7f3"))          # xor %ebx,%ebx; div %ebx
        ring0 = context_after(bytes.fromhex("9090"), start=0x1002)
        ring3 = context_after(bytes.fromhex("48cf9090"))      # iretq; nop; nop
        size = min(map(len, (gp28, gp30, int80, de, ring0, ring3)))
        ints = [[struct.unpack_from("<i", b, off)[0] for b in (gp28, gp30, int80, de)]
                for off in range(0, size - 3, 4)]
        codes = [4 * i for i, v in enumerate(ints) if v[:2] == [0x28, 0x30]
                 and v[2:] == [0, 0] and 4 * i + 4 < size]
        codes = [off for off in codes if ints[off // 4 + 1] == [0, 0, 1, 0]]
        hflags = [off for off in range(0, size - 3, 4)
                  if struct.unpack_from("<I", ring0, off)[0] & 3 == 0
                  and struct.unpack_from("<I", ring3, off)[0]
                  == struct.unpack_from("<I", ring0, off)[0] | 3]
    except (UcError, AttributeError, ValueError):
        codes, hflags = [], []
    if len(codes) == 1:
        fields["error_code"], fields["exception_is_int"] = codes[0], codes[0] + 4
    if len(hflags) == 1:
        fields["hflags"] = hflags[0]
    _ENV_FIELDS = fields
    return fields


_CONTEXT_REGS: tuple[int, int, int] | bool | None = False


def context_regs_layout() -> tuple[int, int, int] | None:
    """Where the general registers and the lazy flags are in this unicorn's saved CPU
    context, found by experiment (None if not as expected): the offset of QEMU's
    ``regs[0]`` (RAX; RCX 8 bytes on, and so on to R15), and the span from ``cc_dst``
    to the end of ``cc_op`` (``cc_dst``, ``cc_src``, ``cc_src2``, ``cc_op``: the
    arithmetic flags, which QEMU keeps as the last flag-setting operation and its
    operands; CPUX86State in target/i386/cpu.h)."""
    global _CONTEXT_REGS
    if not isinstance(_CONTEXT_REGS, bool):
        return _CONTEXT_REGS
    found: tuple[int, int, int] | None = None
    try:
        uc = Uc(uc_const.UC_ARCH_X86, uc_const.UC_MODE_64)
        uc.mem_map(0, 0x10000)
        uc.mem_write(0x1000, bytes.fromhex("29d8"))       # sub %ebx, %eax
        values = [0x1122_3344_5566_7700 + i for i in range(16)]
        ids = (X.UC_X86_REG_RAX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX, X.UC_X86_REG_RBX,
               X.UC_X86_REG_RSP, X.UC_X86_REG_RBP, X.UC_X86_REG_RSI, X.UC_X86_REG_RDI,
               X.UC_X86_REG_R8, X.UC_X86_REG_R9, X.UC_X86_REG_R10, X.UC_X86_REG_R11,
               X.UC_X86_REG_R12, X.UC_X86_REG_R13, X.UC_X86_REG_R14, X.UC_X86_REG_R15)
        for reg, value in zip(ids, values, strict=True):
            uc.reg_write(reg, value)
        uc.reg_write(X.UC_X86_REG_RAX, 0x7777)
        uc.reg_write(X.UC_X86_REG_RBX, 0x1234)
        values[0], values[3] = 0x7777 - 0x1234, 0x1234
        uc.emu_start(0x1000, 0x1002)
        ctx = uc.context_save()
        blob = ctypes.string_at(ctx.context.value, ctx.size)
        at = blob.find(struct.pack("<Q", values[1])) - 8
        if at >= 0 and list(struct.unpack_from("<16Q", blob, at)) == values:
            cc = at + 16 * 8 + 16      # after regs[], eip and eflags
            if struct.unpack_from("<QQ", blob, cc) == (0x7777 - 0x1234, 0x1234):
                found = (at, cc, cc + 3 * 8 + 4)
    except (UcError, ValueError, struct.error):
        found = None
    _CONTEXT_REGS = found
    return found


_NATIVE_CPUID: dict[tuple[bool, int, int], tuple[int, int, int, int]] = {}


def _uc_mode_field(uch: int) -> int | None:
    """Address of ``uc_struct.mode`` in an open x86 engine, or None if the layout is not
    the one found by experiment (``uc_arch arch; uc_mode mode;`` first, uc_priv.h).

    unicorn's x86 engine is QEMU's x86-64 CPU whatever mode it was opened in: a 32-bit
    engine runs long mode and 64-bit code once the guest turns it on, but its register
    API (and ``uc_emu_start``'s ``begin``) stay 32-bit. An HVM vCPU therefore switches
    the engine's mode field to UC_MODE_64 while EFER.LMA is set, and back."""
    arch, mode = struct.unpack("<ii", ctypes.string_at(uch, 8))
    if arch != uc_const.UC_ARCH_X86 or mode not in (uc_const.UC_MODE_32, uc_const.UC_MODE_64):
        return None
    return uch + 4


# Where QEMU's CPUX86State sits in an open engine: (offset of the CPU pointer in
# uc_struct, offset of env in the object it points to, offset of eflags in env); found by
# experiment once, checked again in every engine; None: not looked for yet, (): not found
_ENV_PATH: tuple[int, ...] | None = None
_ENV_MAGIC = tuple(0x5A17_0000 + 0x0101 * i for i in range(8))  # EAX..EDI while probing
_GP32 = (X.UC_X86_REG_EAX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX, X.UC_X86_REG_EBX,
         X.UC_X86_REG_ESP, X.UC_X86_REG_EBP, X.UC_X86_REG_ESI, X.UC_X86_REG_EDI)


def _readable_ranges() -> list[tuple[int, int]]:
    try:
        with open("/proc/self/maps", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    ranges = []
    for line in lines:
        span, perms = line.split()[:2]
        if perms.startswith("r"):
            lo, hi = span.split("-")
            ranges.append((int(lo, 16), int(hi, 16)))
    return ranges


def _readable_span(addr: int, ranges: list[tuple[int, int]]) -> int:
    """Readable bytes from ``addr`` on in ``ranges`` (0: none)."""
    return next((hi - addr for lo, hi in ranges if lo <= addr < hi), 0)


def _env_checks(uc: Uc, env: int, eflags_off: int) -> bool:
    """True if ``env`` is the live CPUX86State of ``uc``: its first eight words follow
    EAX..EDI (written with values no search has seen, so no stale copy of the probe's
    bytes passes), and bit 9 of the word at ``eflags_off`` follows EFLAGS.IF. The
    engine's registers are put back."""
    saved = [uc.reg_read(r) for r in (*_GP32, X.UC_X86_REG_EFLAGS)]
    fresh = tuple(v ^ 0x00A5_0000 for v in _ENV_MAGIC)
    try:
        for r, v in zip(_GP32, fresh, strict=True):
            uc.reg_write(r, v)
        if struct.unpack("<8Q", ctypes.string_at(env, 64)) != fresh:
            return False
        for flags in (0x202, 0x002, 0x246):
            uc.reg_write(X.UC_X86_REG_EFLAGS, flags)
            word = struct.unpack("<I", ctypes.string_at(env + eflags_off, 4))[0]
            if word & EFLAGS_IF != flags & EFLAGS_IF:
                return False
        return True
    finally:
        for r, v in zip((*_GP32, X.UC_X86_REG_EFLAGS), saved, strict=True):
            uc.reg_write(r, v)


def _find_env_path(uc: Uc) -> tuple[int, ...]:
    """Search ``uc``'s uc_struct for the pointer to its CPU object and that object for
    the register file, only through memory /proc/self/maps says is readable."""
    saved = [uc.reg_read(r) for r in _GP32]   # (unicorn makes its CPU at the first call)
    ranges = _readable_ranges()

    def span(addr: int) -> int:
        return _readable_span(addr, ranges)

    uch = uc._uch.value
    found: dict[int, tuple[int, int]] = {}    # env address -> (pointer offset, env offset)
    try:
        for r, v in zip(_GP32, _ENV_MAGIC, strict=True):
            uc.reg_write(r, v)
        magic = struct.pack("<8Q", *_ENV_MAGIC)
        for ptr_off in range(0, min(2048, span(uch)) - 7, 8):
            target = struct.unpack("<Q", ctypes.string_at(uch + ptr_off, 8))[0]
            size = min(span(target), 1 << 18)
            if size < len(magic):
                continue
            window = ctypes.string_at(target, size)
            pos = window.find(magic)
            while pos >= 0:       # (every copy: old probes' bytes may lie in the heap)
                if target + pos not in found or pos < found[target + pos][1]:
                    found[target + pos] = (ptr_off, pos)   # the nearest object holding it
                pos = window.find(magic, pos + 8)
    finally:
        for r, v in zip(_GP32, saved, strict=True):
            uc.reg_write(r, v)
    # regs[CPU_NB_REGS], eip, eflags (target/i386/cpu.h): bit 9 of one word follows IF;
    # a copy of the probe's bytes left in freed memory follows nothing
    live = {(ptr_off, env_off, eflags_off) for env, (ptr_off, env_off) in found.items()
            for eflags_off in range(64, 512, 8) if _env_checks(uc, env, eflags_off)}
    return live.pop() if len(live) == 1 else ()


def _eflags_word(uc: Uc) -> int:
    """The address of QEMU's ``env->eflags`` inside the open engine ``uc``, or 0 where it
    cannot be found: /proc/self/maps missing, another unicorn layout.

    Why: while an interrupt waits for EFLAGS.IF (VMX's interrupt-window exiting), the
    native block callback tests IF at every block. Through ``uc_reg_read`` that costs
    a call and QEMU's lazy condition codes (``cpu_compute_eflags``), about 60 ns a
    block, a fifth of memtest86+'s run with its interrupts off and the PIT's pending.
    QEMU keeps IF in ``env->eflags`` itself, never lazily, so the word can be tested in
    place. The layout is found by experiment the first time (the uc_struct pointer that
    leads to the register file, as ``_env_fields`` finds fields in a saved context) and
    checked again in every engine, registers written and read back."""
    global _ENV_PATH
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return 0
    try:
        if _ENV_PATH is None:
            _ENV_PATH = _find_env_path(uc)
        if not _ENV_PATH:
            return 0
        _, env_off, eflags_off = _ENV_PATH
        cpu = _cpu_object(uc)
        if not cpu:    # (the same library in this process: the same layout)
            return 0
        return cpu + env_off + eflags_off if _env_checks(uc, cpu + env_off, eflags_off) else 0
    except (UcError, OSError, ValueError, struct.error):
        return 0


def _cpu_object(uc: Uc) -> int:
    """Address of the engine's CPU object (QEMU's X86CPU, a CPUState first), 0 if the
    layout was not found."""
    if not _ENV_PATH:
        return 0
    uc.reg_read(X.UC_X86_REG_EAX)   # unicorn makes its CPU at the first call
    return struct.unpack("<Q", ctypes.string_at(uc._uch.value + _ENV_PATH[0], 8))[0]


# Where QEMU's CPUState.exception_index sits in the engine's CPU object (found by
# experiment; -1: not found, None: not looked for yet)
_EXCEPTION_INDEX_OFFSET: int | None = None


def _exception_index_offset() -> int:
    """Offset of QEMU's ``cpu->exception_index`` (the exception raised and not delivered
    yet) in the engine's CPU object, -1 if not found.

    Why: unicorn takes the address it is asked to drop translated code at, and the start
    of a region ``uc_mem_unmap`` takes out, as a *linear* address and looks it up through
    the guest's page tables (``uc_invalidate_tb``: ``get_page_addr_code``). Where the
    guest maps nothing there the lookup is a page fault: QEMU writes CR2, records the
    vector as the last exception (``old_exception``) and leaves it pending here; unicorn
    catches the longjmp and returns as if nothing happened, and the CPU loop delivers
    the fault at its next exit: a #PF the guest never took, after the hypercall that
    freed a frame (a #DF if a second lookup failed). Found as the one int before the
    register file that is 0 in the interrupt hook of a #DE, 13 in that of a #GP, and -1
    after each."""
    global _EXCEPTION_INDEX_OFFSET
    if _EXCEPTION_INDEX_OFFSET is not None:
        return _EXCEPTION_INDEX_OFFSET
    _EXCEPTION_INDEX_OFFSET = -1

    try:
        if not _eflags_word(Uc(uc_const.UC_ARCH_X86, uc_const.UC_MODE_64)) or not _ENV_PATH:
            return _EXCEPTION_INDEX_OFFSET
        n = _ENV_PATH[1] // 4

        def words(u: Uc) -> tuple[int, ...]:   # the ints of the CPU object before env
            return struct.unpack(f"<{n}i", ctypes.string_at(_cpu_object(u), 4 * n))

        def run(code: bytes) -> list[tuple[int, ...]]:   # in the hook, then after
            seen: list[tuple[int, ...]] = []
            uc = _fault_probe(code, lambda u: seen.append(words(u)))
            return [*seen, words(uc)]

        de, gp = run(_DE_PROBE), run(_GP_PROBE)
    except (UcError, AttributeError, ValueError, OSError, struct.error):
        return _EXCEPTION_INDEX_OFFSET
    if len(de) != 2 or len(gp) != 2:
        return _EXCEPTION_INDEX_OFFSET
    found = [4 * i for i in range(len(de[0]))
             if (de[0][i], de[1][i], gp[0][i], gp[1][i]) == (0, -1, 13, -1)]
    if len(found) == 1:
        _EXCEPTION_INDEX_OFFSET = found[0]
    return _EXCEPTION_INDEX_OFFSET


# Where the copy of CPUX86State starts in a saved context (None: not looked for yet)
_CONTEXT_ENV_SHIFT: int | None = None


def _context_env_shift() -> int:
    """Where the copy of CPUX86State starts in this unicorn's saved contexts (after its
    header), -1 if not found: found in a probe engine, its EAX..EDI set to known words."""
    global _CONTEXT_ENV_SHIFT
    if _CONTEXT_ENV_SHIFT is None:
        uc = Uc(uc_const.UC_ARCH_X86, uc_const.UC_MODE_32)
        for r, v in zip(_GP32, _ENV_MAGIC, strict=True):
            uc.reg_write(r, v)
        ctx = uc.context_save()
        data = ctypes.string_at(ctx.context.value, ctx.size)
        _CONTEXT_ENV_SHIFT = data.find(struct.pack("<8Q", *_ENV_MAGIC))
    return _CONTEXT_ENV_SHIFT


class _Walk(ctypes.Structure):
    """What the native page walk (walk.c) reads and writes: where the engine keeps CR0,
    CR3, CR4, EFER and the hflags (CPL), a host address for each guest-physical page
    of RAM, the code-page bitmap, tlb_flush and the CPU, and its verdict on the last
    access it did not enter (1: a #PF with ``error_code``; 2: left to QEMU's walk; 3: a
    #PF unless the access was a descriptor table's at CPL 3) with that access's page."""
    _fields_ = (("cr0", ctypes.c_uint64), ("cr3", ctypes.c_uint64),
                ("cr4", ctypes.c_uint64), ("efer", ctypes.c_uint64),
                ("hflags", ctypes.c_uint64), ("host", ctypes.c_uint64),
                ("pages", ctypes.c_uint64), ("code_pages", ctypes.c_uint64),
                ("flush", ctypes.c_uint64), ("cpu", ctypes.c_uint64),
                ("verdict", ctypes.c_uint64), ("error_code", ctypes.c_uint64),
                ("refused", ctypes.c_uint64))


# Offsets the page walk needs, found by experiment (_find_walk_layout): CR0, CR3, CR4,
# EFER and hflags in CPUX86State, the faulting address (invalid_addr) in uc_struct;
# None: not looked for yet, {}: not found
_WALK_LAYOUT: dict[str, int] | None = None


def _find_walk_layout() -> dict[str, int]:
    """Find, in a probe engine, the words of CPUX86State that follow CR0, CR3, CR4 and
    EFER as they are written, hflags (its low bits the CPL), and the word of uc_struct
    that holds the address of an access a TLB-fill hook refused (unicorn's
    ``invalid_addr``: the fault's CR2, which the hook only sees rounded to its page)."""
    uc = Uc(uc_const.UC_ARCH_X86, uc_const.UC_MODE_32)
    env_word = _eflags_word(uc)
    if not env_word or not _ENV_PATH:
        return {}
    env = env_word - _ENV_PATH[2]
    n = 1024

    def words() -> tuple[int, ...]:
        return struct.unpack(f"<{n}Q", ctypes.string_at(env, 8 * n))

    def follows(reg: int, values: tuple[int, ...]) -> list[int]:
        seen = []
        for v in values:
            if reg == X.UC_X86_REG_MSR:
                uc.reg_write(reg, (0xC0000080, v))
            else:
                uc.reg_write(reg, v)
            seen.append(words())
        return [8 * i for i in range(n)
                if all(w[i] == v for w, v in zip(seen, values, strict=True))]

    found = {"cr3": follows(X.UC_X86_REG_CR3, (0x12345000, 0x00ABC000, 0x3000)),
             "cr4": follows(X.UC_X86_REG_CR4, (0x20, 0x10, 0x30, 0)),
             "efer": follows(X.UC_X86_REG_MSR, (0x800, 0, 0x900)),
             "cr0": follows(X.UC_X86_REG_CR0, (0x11, 0x10011, 0x80010011, 0x11))}
    hflags = _env_fields()["hflags"]
    if any(len(v) != 1 for v in found.values()) or hflags < 0:
        return {}
    layout = {k: v[0] for k, v in found.items()}
    # hflags: the saved context's copy of env starts where its header ends; the word
    # that holds what the context's copy holds at its offset
    shift = _context_env_shift()
    if shift < 0 or hflags - shift < 0:
        return {}
    layout["hflags"] = hflags - shift
    # invalid_addr: an access the fill hook refuses, at two addresses
    hits = []
    for addr in (0x12345678, 0x00ABCDE4):
        probe = Uc(uc_const.UC_ARCH_X86, uc_const.UC_MODE_32)
        probe.mem_map(0, 0x10000)
        probe.mem_write(0x1000, b"\xa1" + struct.pack("<I", addr))   # mov eax, [addr]

        def fill(u: Uc, page: int, kind: int, entry: Any, user: object) -> bool:
            if page >= 0x10000:
                return False
            entry.paddr, entry.perms = page, uc_const.UC_PROT_ALL
            return True

        probe.hook_add(uc_const.UC_HOOK_TLB_FILL, fill)
        probe.ctl_set_tlb_mode(uc_const.UC_TLB_VIRTUAL)
        with contextlib.suppress(UcError):
            probe.emu_start(0x1000, 0x1005)
        uch = probe._uch.value
        size = min(_readable_span(uch, _readable_ranges()), 4096) & ~7
        hits.append({8 * i for i, w in enumerate(struct.unpack(
            f"<{size // 8}Q", ctypes.string_at(uch, size))) if w == addr})
    common = sorted(hits[0] & hits[1])
    if not common:
        return {}
    layout["invalid_addr"] = common[0]
    return layout


def _walk_layout() -> dict[str, int]:
    global _WALK_LAYOUT
    if _WALK_LAYOUT is None:
        try:
            _WALK_LAYOUT = _find_walk_layout()
        except (UcError, OSError, ValueError, AttributeError, struct.error):
            _WALK_LAYOUT = {}
    return _WALK_LAYOUT


class _UcMsr(ctypes.Structure):  # uc_x86_msr
    _fields_ = [("rid", ctypes.c_uint32), ("value", ctypes.c_uint64)]
_native_base: int | None = None


def _native_layout() -> tuple[tuple[int, bytes], ...]:
    """Each native callback's offset in the executable page and its bytes, in order (a
    test checks that each ends before the next begins)."""
    return ((0, _THUNK), (_FILL_OFFSET, _FILL_THUNK), (_ONES_OFFSET, _ONES_THUNK),
            (_DROP_OFFSET, _DROP_THUNK), (_RM_INTR_OFFSET, _RM_INTR_THUNK),
            (_TSC_OFFSET, _TSC_THUNK), (_NEWTB_OFFSET, _NEWTB_THUNK),
            (_NEWTB64_OFFSET, _NEWTB64_THUNK), (_WALK_OFFSET, _WALK_THUNK),
            (_IOOUT_OFFSET, _IOOUT_THUNK), (_CRWATCH_OFFSET, _CRWATCH_THUNK),
            (_IOIN_OFFSET, _IOIN_THUNK), (_CPUID_OFFSET, _CPUID_THUNK))


def _native_code() -> int | None:
    """Address of the pages holding the native callbacks, or None where they cannot run."""
    global _native_page, _native_base
    if _native_base is not None:
        return _native_base
    if platform.machine() not in ("x86_64", "AMD64") or not sys.platform.startswith("linux"):
        return None
    try:
        page = mmap.mmap(-1, NATIVE_CODE_SIZE,
                         prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, ValueError):  # W^X policies
        return None
    code = b""
    for offset, thunk in _native_layout():
        code = code.ljust(offset, b"\xcc") + thunk
    page.write(code)
    _native_page = page
    _native_base = ctypes.addressof(ctypes.c_char.from_buffer(page))
    return _native_base


def _native_at(offset: int) -> int | None:
    """Address of the native callback ``offset`` bytes into the page, or None where the
    callbacks cannot run."""
    base = _native_code()
    return None if base is None else base + offset


def _native_thunk() -> int | None:
    """Address of the native block callback, or None where it cannot run."""
    return _native_at(0)


def _native_fill() -> int | None:
    """Address of the native TLB-fill callback, or None where it cannot run."""
    return _native_at(_FILL_OFFSET)


def _native_rm_intr() -> int | None:
    """Address of the native real-mode interrupt callback, or None where it cannot run."""
    return _native_at(_RM_INTR_OFFSET)


def _native_tsc() -> int | None:
    """Address of the native rdtsc callback (rdtscp's entry is ``_TSCP_ENTRY`` bytes
    in), or None where it cannot run."""
    return _native_at(_TSC_OFFSET)


def _native_io() -> tuple[int, int] | None:
    """Addresses of the native ``out`` and ``in`` callbacks, or None where they cannot run."""
    base = _native_code()
    return None if base is None else (base + _IOOUT_OFFSET, base + _IOIN_OFFSET)


def _native_newtb() -> int | None:
    """Address of the native new-block filter, or None where it cannot run."""
    return _native_at(_NEWTB_OFFSET)


def _native_newtb64() -> int | None:
    """Address of the PV vCPUs' native new-block filter, or None where it cannot run
    (or unicorn has no uc_vmem_read)."""
    return None if _uc_vmem_read is None else _native_at(_NEWTB64_OFFSET)


def _native_unassigned() -> tuple[int, int] | None:
    """Addresses of the native MMIO callbacks of unassigned memory (all-ones read,
    dropped write), or None where they cannot run."""
    base = _native_code()
    return None if base is None else (base + _ONES_OFFSET, base + _DROP_OFFSET)


def _read_ones(uc: Uc, offset: int, size: int, user: object) -> int:
    """The all-ones read in Python, where native code cannot run."""
    return (1 << (8 * size)) - 1


def _drop_write(uc: Uc, offset: int, size: int, value: int, user: object) -> None:
    """The dropped write in Python, where native code cannot run."""


_SYSCALL_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
# uint32_t uc_cb_insn_in_t(uc_engine *uc, uint32_t port, int size, void *user_data)
_IN_CB = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                          ctypes.c_void_p)
# void uc_cb_insn_out_t(uc_engine *uc, uint32_t port, int size, uint32_t value, void *user)
_OUT_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                           ctypes.c_uint32, ctypes.c_void_p)
# void uc_cb_hookcode_t(uc_engine *uc, uint64_t address, uint32_t size, void *user_data)
_CODE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                            ctypes.c_void_p)


def _uclib() -> ctypes.CDLL:
    return unicorn.unicorn_py3.unicorn.uclib  # type: ignore[attr-defined,no-any-return]


# void uc_cb_hookintr_t(uc_engine *uc, uint32_t intno, void *user_data)
_INTR_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
# bool uc_cb_hookinsn_invalid_t(uc_engine *uc, void *user_data)
_INVALID_CB = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_void_p)
# int uc_cb_insn_cpuid_t(uc_engine *uc, void *user_data): rdtsc and rdtscp hooks
_TSC_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class _UcTb(ctypes.Structure):
    _fields_ = [("pc", ctypes.c_uint64), ("icount", ctypes.c_uint16),
                ("size", ctypes.c_uint16)]


# void uc_hook_edge_gen_t(uc_engine *uc, uc_tb *cur_tb, uc_tb *prev_tb, void *user_data)
_EDGE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(_UcTb),
                            ctypes.POINTER(_UcTb), ctypes.c_void_p)

_uc_reg_read_batch = _uclib().uc_reg_read_batch
_uc_reg_write_batch = _uclib().uc_reg_write_batch
_uc_reg_read = _uclib().uc_reg_read
_uc_reg_write = _uclib().uc_reg_write
_uc_mem_read = _uclib().uc_mem_read
_uc_mem_write = _uclib().uc_mem_write
# uc_err uc_vmem_read(uc_engine *uc, uint64_t address, uc_prot prot, void *bytes,
#                     size_t size): a read through the guest's page tables (unicorn >= 2.1)
_uc_vmem_read = getattr(_uclib(), "uc_vmem_read", None)
_uc_vmem_write = getattr(_uclib(), "uc_vmem_write", None)
_uc_vmem_translate = getattr(_uclib(), "uc_vmem_translate", None)


class BlockCounterEvents(Protocol):
    """What a vCPU tells an attached per-block instruction counter (attach_counter)."""

    def interrupt(self) -> None: ...
    def trap(self, address: int) -> None: ...
    def stopping(self) -> None: ...
    def emu_done(self, faulted: bool) -> None: ...


# ---------------------------------------------------------------------------
class X86Vcpu:
    """One virtual CPU with its own unicorn engine and guest-physical address space.

    ``long_mode=True`` makes a 64-bit engine (PV guests); otherwise a 32-bit
    engine that starts in real mode with CR0.PE clear (HVM guests): unicorn's
    16-bit mode cannot resume, a 32-bit engine in real mode can.
    """

    def __init__(self, exits: VcpuExits, *, long_mode: bool, name: str = "vcpu",
                 native_budget: bool = True) -> None:
        self.exits = exits
        self.name = name
        self.long_mode = long_mode
        mode = uc_const.UC_MODE_64 if long_mode else uc_const.UC_MODE_32
        self.uc = Uc(uc_const.UC_ARCH_X86, mode)
        with contextlib.suppress(UcError, AttributeError):
            self.uc.ctl_set_tcg_buffer_size(8 * 1024 * 1024)
        # The slice's virtual time: run() sets ``slice_budget`` and ``budget.left`` to the
        # slice's budget; the native block callback and charge() count ``budget.left`` down.
        # Public because the hypervisor's clock (XenHost.now) reads them for every record.
        self.budget = _Budget(0, ctypes.cast(_uclib().uc_emu_stop, ctypes.c_void_p).value or 0,
                              0, ctypes.cast(_uclib().uc_reg_read, ctypes.c_void_p).value or 0)
        self.budget.eflags_at = _eflags_word(self.uc) if native_budget else 0
        self.slice_budget = 0
        self._stop_reason: ExitReason | None = None
        self._fault: tuple[int, str] | None = None
        self._stepping = False
        self._hooks: list[int] = []
        self._keep: list[object] = []
        self.ring0 = not long_mode  # PV kernels run in ring 3; HVM guests own ring 0
        thunk = _native_thunk() if native_budget else None
        self.native_budget = thunk is not None
        if thunk is not None:
            self._add_native_block_hook(thunk)
        else:
            self._hooks.append(self.uc.hook_add(uc_const.UC_HOOK_BLOCK, self._py_block))
        # Registers and small memory accesses on the exit paths go straight through
        # unicorn's C API with buffers made once: the binding's generic reg_read and
        # mem_read cost several microseconds each, and firmware makes thousands of exits.
        self._uch = self.uc._uch
        self._regbuf = ctypes.c_uint64()
        self._regref = ctypes.byref(self._regbuf)
        self._mmr = _UcMmr()
        self._host_maps: list[tuple[int, int, ctypes.Array[ctypes.c_char]]] = []
        # real-mode interrupt delivery, native or in Python, reads CR0, the IDTR (the
        # IVT's base and limit), FLAGS, CS, IP, SS and SP in one call and writes them back
        # in one: one read, one IVT entry, one frame, one write per `int`
        self._rm = _RmIntr()
        ids = (X.UC_X86_REG_EFLAGS, X.UC_X86_REG_CS, X.UC_X86_REG_EIP, X.UC_X86_REG_SS,
               X.UC_X86_REG_ESP)
        self._rm.read_ids[:7] = (X.UC_X86_REG_CR0, X.UC_X86_REG_IDTR, *ids)
        self._rm.write_ids[:5] = ids
        rm = ctypes.addressof(self._rm)
        regs = [rm + _RmIntr.regs.offset + 8 * i for i in range(5)]
        self._rm.read_ptrs[:] = (rm + _RmIntr.cr0.offset, rm + _RmIntr.idtr.offset, *regs)
        self._rm.write_ptrs[:] = regs
        self._membuf = ctypes.create_string_buffer(4096)
        self._add_intr_hook(native_budget)
        self._add_native_hook(uc_const.UC_HOOK_INSN_INVALID, _INVALID_CB(self._raw_invalid))
        self._add_native_syscall_hook()
        # port exits answered and kept natively (answer_ports, log_port_writes); none yet
        self._plog = _IoLog(exit_value=_NO_PORT, capacity=PORT_LOG_ENTRIES)
        self._plog.left = ctypes.addressof(self.budget) + _Budget.left.offset
        self._plog_port = _NO_PORT
        self._log_costed = False    # the log's cost per exit set (_log_cost)
        self._port_sink: Callable[[list[tuple[int, int]]], None] | None = None
        self._port_room: Callable[[], int] | None = None
        self._answer_sink: Callable[[list[tuple[int, int, int, bool, int]]], None] | None = None
        self._cpuid_sink: Callable[[list[tuple[int, int]]], None] | None = None
        #: the virtual time (ns) at which the next run starts, for a PORT_CLOCK port
        #: answered natively in it (the hypervisor sets it before each run; None: the
        #: clock's reads go to Python)
        self.port_clock_origin: int | None = None
        #: answer_ports' and log_port_writes' log in this run (the hypervisor clears it
        #: while someone wants the kept exits' own records as they are made)
        self.log_ports = True
        self._add_native_io_hooks(native_budget)
        self._crw = self._crwatch(native_budget)
        self._raw_traps: set[int] = set()   # code traps added through ctypes (crwatch)
        self._add_cpuid_hook(native_budget)
        self.hypercall_regs = _HC_REGS if long_mode else _HC_REGS32
        #: whether the last hypercall used the 64-bit convention (RDI, RSI, RDX, R10, R8):
        #: a PV vCPU always, an HVM vCPU when it runs 64-bit code (hvm_guest_x86_mode 8)
        self.hypercall_64 = long_mode
        # Hypercall registers are read and written straight through unicorn's C API with
        # buffers made once: the Python binding's generic reg_read_batch costs ~15 us.
        self._hc_ids64 = (ctypes.c_int * 6)(*_HC_REGS)
        self._hc_ids32 = (ctypes.c_int * 6)(*_HC_REGS32)
        self._hc_ids = self._hc_ids64 if long_mode else self._hc_ids32
        self._msr = _UcMsr()
        #: an HVM engine: UC_MODE_64 while the guest is in long mode (see _uc_mode_field)
        self._uc64 = long_mode
        self._mode_field = None if long_mode else _uc_mode_field(self._uch.value if hasattr(
            self._uch, "value") else self._uch)
        self._tsc = _Tsc()
        self._add_tsc_hooks(native_budget)
        self._hc_vals = (ctypes.c_uint64 * 6)()
        self._gpr_batch: tuple[ctypes.Array[ctypes.c_int], ctypes.Array[ctypes.c_int],
                               ctypes.Array[ctypes.c_uint64],
                               ctypes.Array[ctypes.c_void_p]] | None = None
        base = ctypes.addressof(self._hc_vals)
        self._hc_ptrs = (ctypes.c_void_p * 6)(*(base + 8 * i for i in range(6)))
        self._ret = ctypes.c_uint64()
        self.mapped: list[tuple[int, int]] = []
        self._hook_error: BaseException | None = None
        self.int82_hypercalls = False  # set for 32-bit PV guests
        self._wrmsr_hooks: dict[int, int | None] = {}
        self._rdmsr_hooks: dict[int, int | None] = {}
        self._string_io_hooks: dict[int, int | None] = {}
        self._mov_cr_hooks: dict[int, int | None] = {}
        self._rdtsc_hooks: dict[int, int | None] = {}
        self._rdrand_hooks: dict[int, int | None] = {}
        self._watching_new_code = False
        self._entry_scanned = True       # set False when new code is watched
        self._retranslate = False
        #: an instruction counter per block (xenlab.cpu.icount.BlockCounter) told about
        #: what cuts a block short: exceptions, code traps, errors (attach_counter)
        self._counter: BlockCounterEvents | None = None
        #: the idle-loop finder (xenlab.cpu.idle), when the hypervisor gives the vCPU one
        self.idle: IdleLoops | None = None
        #: called with (physical address, size) before the CPU layer itself stores into
        #: guest memory for the guest's code (an ``int``'s frame, in real mode and, with
        #: paging off, through the IDT)
        self.write_watch: Callable[[int, int], None] | None = None
        #: code traps that ran, and rdtsc/rdtscp answered in Python (``exit_marks``)
        self.traps_taken = 0
        self.tsc_python = 0
        self._to_python_before: tuple[int, ...] | None = None
        #: inside uc_emu_start (a hook is running); in the new-block hook
        self.running = False
        self._translating = False
        self._identity_tlb = False      # unicorn's virtual TLB, linear = physical
        self._identity_hook: ctypes.c_size_t | None = None
        self._code_pages: ctypes.Array[ctypes.c_uint64] | None = None
        #: the native page walk once paging is on (_enter_walk): its state, the host
        #: address of each guest-physical page of RAM, and whether this slice runs on
        #: QEMU's own walk instead (a refused access it could not judge)
        self._walk: _Walk | None = None
        self._walk_host: ctypes.Array[ctypes.c_uint64] | None = None
        self._walk_paused = False
        self._walk_fresh = False   # the code-page bitmap to start afresh before the next run
        #: virtual instructions run since the code-page bitmap was last aged, and how
        #: many pages agings have turned back into data pages (_age_code_pages)
        self._unaged = 0
        self.aged_code_pages = 0
        self._seen_code_pages: set[int] = set()
        #: the native new-block filter (watch_new_code_for_wrmsr) and its copy of
        #: _seen_code_pages, a bit per page below 4 GiB
        self._newtb = _NewTb()
        self._newtb_seen = (ctypes.c_uint64 * _CODE_PAGE_WORDS)()
        self._ones_at_first_run = False  # lay the all-ones hooks before the first run
        self._ones_hooks: list[tuple[int, int, int]] = []  # (first, last, hook) covered
        #: long mode: RIP when the slice's exception was raised: the faulting instruction,
        #: or the one after an ``int n``/``int3`` (a trap); None if there was none
        self.fault_pc: int | None = None
        self._delivered = False          # an exception was given to the guest's IDT
        self._ctx: Any = None            # a saved context, reused by forget_exceptions
        #: QEMU's words a failed lookup writes (see _without_stray_fault)
        self._stray_words: tuple[ctypes.c_int32 | ctypes.c_uint64, ...] | None = None
        self._df_rip: int | None = None  # a #DF of QEMU's: the slice ends at this RIP
        self.fault_cr2 = 0                 # CR2 as the last #PF left it
        #: the slice's fault is an exception of the guest's CPU (False: unicorn could not
        #: emulate an access, e.g. a fetch from unassigned memory)
        self.fault_is_cpu_exception = True
        #: QEMU's error code for the slice's exception (HVM vCPUs; None: none was read)
        self.fault_error_code: int | None = None
        #: (vector, error code) of the last exception deliver_exception delivered
        self.delivered: tuple[int, int | None] = (0, None)

    def _add_native_hook(self, kind: int, callback: Any, *, extra: int | None = None,
                         user: int | None = None, begin: int = 1, end: int = 0,
                         keep: bool = True) -> int:
        """uc_hook_add through ctypes with a CFUNCTYPE ``callback`` or the address of
        native code (no binding wrapper), for all addresses or ``begin``..``end``;
        ``extra`` is the instruction of a UC_HOOK_INSN, ``user`` the callback's user
        data. ``keep``: hold the callback and handle for the engine's life (a hook
        that is deleted again, on native code, needs neither)."""
        handle = ctypes.c_size_t()
        args: list[object] = [self._uch, ctypes.byref(handle), kind,
                              ctypes.cast(callback, ctypes.c_void_p), ctypes.c_void_p(user),
                              ctypes.c_uint64(begin), ctypes.c_uint64(end)]
        if extra is not None:
            args.append(ctypes.c_int(extra))
        err = _uclib().uc_hook_add(*args)
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        if keep:
            self._keep.extend((callback, handle))
        return handle.value

    def _add_intr_hook(self, native: bool) -> None:
        """The interrupt hook: on a 32-bit engine (an HVM vCPU: real-mode firmware) the
        native real-mode callback, which hands the rest to ``_raw_intr``; elsewhere, or
        where native code cannot run, ``_raw_intr`` itself."""
        python = _INTR_CB(self._raw_intr)
        thunk = _native_rm_intr() if native and not self.long_mode else None
        if thunk is None:
            self._add_native_hook(uc_const.UC_HOOK_INTR, python)
            return
        lib = _uclib()
        r = self._rm
        r.python = ctypes.cast(python, ctypes.c_void_p).value or 0
        for field, function in (("reg_read_batch", lib.uc_reg_read_batch),
                                ("reg_write_batch", lib.uc_reg_write_batch),
                                ("mem_read", lib.uc_mem_read),
                                ("mem_write", lib.uc_mem_write)):
            setattr(r, field, ctypes.cast(function, ctypes.c_void_p).value or 0)
        r.to_python[VEC_DB // 64] |= 1 << (VEC_DB % 64)  # the stepper's single steps
        r.to_python[0x82 // 64] |= 1 << (0x82 % 64)      # a 32-bit PV guest's hypercall
        self._add_native_hook(uc_const.UC_HOOK_INTR, thunk, user=ctypes.addressof(r))
        self._keep.append(python)

    def _add_tsc_hooks(self, native: bool) -> None:
        """UC_HOOK_INSN for ``rdtsc`` and ``rdtscp``: the native callback (``_TSC_THUNK``),
        which calls ``_raw_tsc`` only when its base is stale; where native code cannot
        run, ``_raw_tsc`` for every one. Either way the TSC is ``VcpuExits.tsc``, virtual
        time, never the host's cycle counter that unicorn would give."""
        t = self._tsc
        t.left = ctypes.addressof(self.budget) + _Budget.left.offset
        t.reg_write_batch = ctypes.cast(_uclib().uc_reg_write_batch, ctypes.c_void_p).value or 0
        base = ctypes.addressof(t) + _Tsc.vals.offset
        t.ptrs[:] = (base, base + 8, base + 16)
        self._set_tsc_ids()
        thunk = _native_tsc() if native else None
        if thunk is None:
            for insn, n in ((X.UC_X86_INS_RDTSC, 2), (X.UC_X86_INS_RDTSCP, 3)):
                self._add_native_hook(uc_const.UC_HOOK_INSN, _TSC_CB(
                    lambda uc, user, n=n: self._raw_tsc(uc, user, n)), extra=insn)
            return
        python = _TSC_CB(self._raw_tsc)
        t.python = ctypes.cast(python, ctypes.c_void_p).value or 0
        self._keep.append(python)
        for insn, entry in ((X.UC_X86_INS_RDTSC, thunk), (X.UC_X86_INS_RDTSCP,
                                                          thunk + _TSCP_ENTRY)):
            self._add_native_hook(uc_const.UC_HOOK_INSN, entry, extra=insn,
                                  user=ctypes.addressof(t))

    def _set_tsc_ids(self) -> None:
        """The registers rdtsc writes, named as the engine's mode wants them (a 32-bit
        engine ignores RAX; a 64-bit one must clear RAX's and RDX's upper halves)."""
        self._tsc.ids[:3] = ((X.UC_X86_REG_RAX, X.UC_X86_REG_RDX, X.UC_X86_REG_RCX)
                             if self._uc64 else
                             (X.UC_X86_REG_EAX, X.UC_X86_REG_EDX, X.UC_X86_REG_ECX))

    def _raw_tsc(self, uc_handle: int, user: int, n: int = 0) -> int:
        """rdtsc (``n`` 2) or rdtscp (3; 0: the native callback stored it in the struct)
        in Python: the value from ``VcpuExits.tsc``, and the native callback's base for the
        rest of this emulation run."""
        try:
            if self._plog.count:
                self._drain_ports()
            t = self._tsc
            self.tsc_python += 1
            if n:
                t.n = n
            tsc = self.exits.tsc(self) & 0xFFFF_FFFF_FFFF_FFFF
            t.base = (tsc + self.budget.left) & 0xFFFF_FFFF_FFFF_FFFF
            t.valid = 1
            t.vals[0], t.vals[1] = tsc & 0xFFFF_FFFF, tsc >> 32
            err = _uc_reg_write_batch(self._uch, t.ids, t.ptrs, int(t.n))
            if err != uc_const.UC_ERR_OK:
                raise UcError(err)
        except BaseException as err:  # surfaced by run(): ctypes would swallow it
            self._hook_error = err
            self.uc.emu_stop()
        return 1

    def exit_marks(self) -> tuple[int, ...]:
        """Counts that any exit, trap or hypervisor work inside a run moves on: the time
        charged for exits, code traps, TSC reads (native and in Python), debug-port
        bytes kept, and whether a fault, stop or hook error is pending."""
        return (self._charged, self.traps_taken, int(self._tsc.answered), self.tsc_python,
                int(self._plog.count), self._fault is None, self._stop_reason is None,
                self._hook_error is None, self._retranslate)

    def interrupts_to_python(self, on: bool, saved: tuple[int, ...] | None = None
                             ) -> tuple[int, ...]:
        """Every real-mode ``int`` through Python (``on``; returns the vectors that went
        there before) or back to ``saved``."""
        r = self._rm
        before = tuple(r.to_python)
        if on:
            r.to_python[:] = (_ALL_ONES,) * len(r.to_python)
        elif saved is not None:
            r.to_python[:] = saved
        return before

    @property
    def attached_counter(self) -> BlockCounterEvents | None:
        """The instruction counter attached (attach_counter), or None."""
        return self._counter

    def ram_byte(self, addr: int) -> int | None:
        """The byte of RAM at guest-physical ``addr`` as the host holds it, read without
        the engine (no device reached); None where no RAM is mapped."""
        for begin, end, host in self._host_maps:
            if begin <= addr < end:
                return host[addr - begin][0]
        return None

    def native_tsc_reads(self) -> int:
        """How many rdtsc/rdtscp the native callback has answered (0 without it)."""
        return int(self._tsc.answered)

    def native_interrupts(self) -> int:
        """How many interrupts the native real-mode callback has vectored (0 without it)."""
        return int(self._rm.delivered)

    def _raw_intr(self, uc_handle: int, intno: int, user: int) -> None:
        try:
            if self._plog.count:
                self._drain_ports()
            if self._counter is not None:
                self._counter.interrupt()
            self._on_intr(self.uc, intno, None)
        except BaseException as err:  # surfaced by run(): ctypes would swallow it
            self._hook_error = err
            self.uc.emu_stop()

    def _raw_invalid(self, uc_handle: int, user: int) -> bool:
        try:
            if self._plog.count:
                self._drain_ports()
            return self._on_invalid(self.uc, None)
        except BaseException as err:
            self._hook_error = err
            self.uc.emu_stop()
            return True

    def _raw_new_tb(self, uc_handle: int, cur: ctypes._Pointer[_UcTb], prev: object,
                    user: int) -> None:
        self._translating = True     # between two blocks, not inside an instruction
        try:
            tb = cur.contents
            self._on_new_tb(self.uc, tb, None, None)
        except BaseException as err:
            self._hook_error = err
            self.uc.emu_stop()
        finally:
            self._translating = False

    def _add_native_syscall_hook(self) -> None:
        """UC_HOOK_INSN for ``syscall`` registered through ctypes directly (no wrapper)."""

        def on_syscall(uc_handle: int, user: int) -> None:
            try:
                if self._plog.count:
                    self._drain_ports()
                if not self.long_mode:   # an HVM guest's own: no VM exit
                    self._syscall()
                    return
                self.exits.hypercall(self, "syscall")
            except BaseException as err:  # surfaced by run(): ctypes would swallow it
                self._hook_error = err
                self.uc.emu_stop()

        self._add_native_hook(uc_const.UC_HOOK_INSN, _SYSCALL_CB(on_syscall),
                              extra=X.UC_X86_INS_SYSCALL)

    def _syscall(self) -> None:
        """SYSCALL in an HVM guest, as the CPU executes it: RCX the next instruction, R11
        RFLAGS, CS from STAR[47:32] and SS the descriptor after it, at CPL 0, RFLAGS
        masked with SFMASK, RIP from LSTAR; #UD with EFER.SCE clear or outside 64-bit
        mode. Called from unicorn's hook, which moves RIP on by the instruction's two
        bytes when it returns (so RIP is set two bytes short)."""
        rip = self.reg("rip" if self._sync_uc_mode() else "eip")
        if not self.msr_read(MSR_EFER) & EFER_SCE or not self.code64():
            self._fault = (VEC_UD, "syscall with EFER.SCE clear or outside 64-bit mode")
            self.fault_pc = rip
            self.set_reg(self._pc_name(), rip - 2)
            self.uc.emu_stop()
            return
        rflags = self.reg("rflags") & ~EFLAGS_RF
        star = self.msr_read(MSR_STAR)
        self.set_reg("rcx", rip + 2)
        self.set_reg("r11", rflags)
        if not self._set_cpl(0):
            raise UcError(uc_const.UC_ERR_EXCEPTION)
        cs = (star >> 32) & 0xFFFC
        self.set_reg("cs", cs)
        self.set_reg("ss", cs + 8)
        self.set_reg("rflags", rflags & ~self.msr_read(MSR_SYSCALL_MASK))
        self.set_reg("rip", self.msr_read(MSR_LSTAR) - 2)

    def _add_native_block_hook(self, thunk: int) -> None:
        handle = ctypes.c_size_t()
        err = _uclib().uc_hook_add(
            self.uc._uch, ctypes.byref(handle), uc_const.UC_HOOK_BLOCK, ctypes.c_void_p(thunk),
            ctypes.cast(ctypes.byref(self.budget), ctypes.c_void_p),
            ctypes.c_uint64(1), ctypes.c_uint64(0),
        )
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        self._keep.append(handle)

    # -- memory ---------------------------------------------------------------
    def map_host(self, addr: int, size: int, host_ptr: int, *, writable: bool = True,
                 executable: bool = True) -> None:
        """Make ``size`` bytes of host memory at ``host_ptr`` appear at guest-physical ``addr``."""
        perms = uc_const.UC_PROT_READ
        if writable:
            perms |= uc_const.UC_PROT_WRITE
        if executable:
            perms |= uc_const.UC_PROT_EXEC
        self.uc.mem_map_ptr(addr, size, perms, host_ptr)
        self.mapped.append((addr, size))
        self._host_maps.append((addr, addr + size, (ctypes.c_char * size).from_address(host_ptr)))
        self._walk_map(addr, addr + size, host_ptr)

    def map_mmio(self, addr: int, size: int, read: Callable[[int, int], int],
                 write: Callable[[int, int, int], None]) -> None:
        """Make guest-physical ``addr``..``addr + size`` a device's registers: every load
        calls ``read(offset, size)``, every store ``write(offset, size, value)`` (an
        APIC-access VM exit, say). For pages a guest touches rarely: each access is a
        call into Python. A handler should not ``request_stop``: unicorn ends the run at
        the access itself and runs the instruction (and the access) again in the next
        run; ``enable_intr_window`` ends it at the next block instead."""
        def on_read(uc: Uc, offset: int, nbytes: int, user: object) -> int:
            try:
                if self._plog.count:
                    self._drain_ports()
                return read(offset, nbytes)
            except BaseException as err:  # surfaced by run(): unicorn would swallow it
                self._hook_error = err
                self.uc.emu_stop()
                return 0

        def on_write(uc: Uc, offset: int, nbytes: int, value: int, user: object) -> None:
            try:
                if self._plog.count:
                    self._drain_ports()
                write(offset, nbytes, value)
            except BaseException as err:
                self._hook_error = err
                self.uc.emu_stop()

        self.uc.mmio_map(addr, size, on_read, None, on_write, None)
        self._keep.extend((on_read, on_write))

    def map_bytes(self, addr: int, data: bytes, *, writable: bool = False) -> None:
        """Map fresh memory at ``addr`` filled with ``data`` (a ROM, a test's RAM)."""
        perms = uc_const.UC_PROT_READ | uc_const.UC_PROT_EXEC
        if writable:
            perms |= uc_const.UC_PROT_WRITE
        self.uc.mem_map(addr, len(data), perms)
        self.uc.mem_write(addr, data)
        self.mapped.append((addr, len(data)))

    def unmap(self, addr: int, size: int) -> None:
        """Take guest-physical ``addr``..``addr+size`` out of the map. It may be part of
        a larger mapping (a page of the guest's RAM): unicorn splits the region, and
        the rest of it stays mapped here too."""
        self._without_stray_fault(self.uc.mem_unmap, addr, size)
        self._walk_map(addr, addr + size, 0)
        end = addr + size
        mapped: list[tuple[int, int]] = []
        for a, s in self.mapped:
            if a + s <= addr or end <= a:
                mapped.append((a, s))
                continue
            if a < addr:
                mapped.append((a, addr - a))
            if end < a + s:
                mapped.append((end, a + s - end))
        self.mapped = mapped
        host_maps: list[tuple[int, int, ctypes.Array[ctypes.c_char]]] = []
        for begin, stop, host in self._host_maps:
            if stop <= addr or end <= begin:
                host_maps.append((begin, stop, host))
                continue
            base = ctypes.addressof(host)
            if begin < addr:
                host_maps.append((begin, addr, (ctypes.c_char * (addr - begin)).from_address(
                    base)))
            if end < stop:
                host_maps.append((end, stop, (ctypes.c_char * (stop - end)).from_address(
                    base + end - begin)))
        self._host_maps = host_maps
        self.invalidate_code_phys(addr, addr + size)
        if self._ones_hooks and addr < 1 << 32:  # the hole now reads as all ones too
            self._cover_unassigned(addr, min(addr + size, 1 << 32) - 1)

    def is_mapped(self, addr: int) -> bool:
        """Whether anything (RAM, a ROM, an all-ones page) is mapped at ``addr``."""
        return any(a <= addr < a + s for a, s in self.mapped)

    def flush_tlb(self) -> None:
        """Forget cached virtual-to-physical translations (after a page-table update)."""
        self.uc.ctl(uc_const.UC_CTL_TLB_FLUSH, uc_const.UC_CTL_IO_WRITE)

    def invalidate_code(self, begin: int, end: int) -> None:
        """Drop code translated from the *linear* addresses ``begin``..``end`` (unicorn
        translates them through the guest's page tables while paging is on)."""
        self._without_stray_fault(self.uc.ctl_remove_cache, begin, end)

    def without_stray_fault(self, call: Callable[[int], object], arg: int) -> None:
        """``call(arg)`` (a hook deletion: unicorn drops the code translated with the
        hook, looking each block up as a linear address) as ``_without_stray_fault``."""
        self._without_stray_fault(lambda handle, _unused: call(handle), arg, 0)

    def _without_stray_fault(self, call: Callable[[int, int], object], begin: int,
                             arg: int) -> None:
        """``call(begin, arg)``, an unmap or a removal of translated code, and then put
        back what unicorn's lookup of ``begin`` as a linear address leaves behind where
        the guest maps nothing there (see _exception_index_offset): a pending #PF, the
        last exception, its error code and CR2. The guest took no fault. (QEMU's walk,
        PV vCPUs'. On unicorn's virtual TLB a refused lookup would end the run with
        UC_ERR_EXCEPTION instead: the identity fill refuses none, and an HVM vCPU's
        map changes only between runs, XenHost._hvm_p2m_update.)"""
        words = self._stray_words
        if words is None:
            words = self._stray_words = self._find_stray_words()
        saved = [w.value for w in words]
        try:
            call(begin, arg)
        finally:
            for w, value in zip(words, saved, strict=True):
                w.value = value

    def _find_stray_words(self) -> tuple[ctypes.c_int32 | ctypes.c_uint64, ...]:
        """QEMU's exception_index, old_exception, error_code and CR2 in this engine, or
        none where this unicorn's layout was not found."""
        index, old = _exception_index_offset(), _old_exception_offset()
        code = _env_fields()["error_code"]
        cpu, path = _cpu_object(self.uc), _ENV_PATH
        shift = _context_env_shift() if cpu and path else -1
        layout = _walk_layout()
        if (not path or min(index, old, code, shift) < 0 or min(old, code) < shift
                or layout.get("cr3", 0) - layout.get("cr0", 0) != 24):  # target_ulong cr[5]
            return ()
        env = cpu + path[1]
        cr2 = ctypes.c_uint64.from_address(env + layout["cr0"] + 16)
        if cr2.value != self.reg("cr2"):
            return ()
        return (ctypes.c_int32.from_address(cpu + index),
                ctypes.c_int32.from_address(env + old - shift),
                ctypes.c_int32.from_address(env + code - shift), cr2)

    def invalidate_code_phys(self, begin: int, end: int) -> bool:
        """Drop code translated from the guest-*physical* addresses ``begin``..``end``
        (the host wrote there: a device model's DMA, Xen's hypercall page, a frame
        mapped over another, a PV guest's freed frame). While linear = physical that
        range; once paging is on (an HVM guest's, always a PV vCPU's) every translation,
        as a linear range would miss the code (or drop another's), and which linear
        addresses map the frames only a walk of every mapping could tell. (unicorn
        would drop code by ram_addr, QEMU's offset in its RAM blocks; it does so only
        for an address it first translates as linear.) True if it dropped all."""
        if self.long_mode or self.reg("cr0") & CR0_PG:
            self.flush_code()
            return True
        self.invalidate_code(begin, end)
        return False

    def flush_code(self) -> None:
        """Drop all translated code: another CPU may have rewritten any of it. Each
        vCPU translates code on its own, and a store by one emulated CPU invalidates
        only its own translations; a serializing instruction on the other CPU is the
        point where a real one is sure to see the new code (SDM 8.1.3)."""
        self.uc.ctl_flush_tb()

    def phys_read(self, addr: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(addr, size))

    def phys_write(self, addr: int, data: bytes) -> None:
        self.uc.mem_write(addr, data)

    # -- registers ------------------------------------------------------------
    def reg(self, name: str) -> int:
        self._regbuf.value = 0
        err = _uc_reg_read(self._uch, REGS[name], self._regref)
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        return self._regbuf.value

    def set_reg(self, name: str, value: int) -> None:
        self._regbuf.value = value & 0xFFFF_FFFF_FFFF_FFFF
        err = _uc_reg_write(self._uch, REGS[name], self._regref)
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)

    def _table_register(self, reg: int) -> tuple[int, int]:
        """(base, limit) of IDTR, GDTR, LDTR or TR."""
        err = _uc_reg_read(self._uch, reg, ctypes.byref(self._mmr))
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        return self._mmr.base, self._mmr.limit

    def mem(self, addr: int, size: int) -> bytes:
        """``size`` bytes at ``addr`` as unicorn's ``uc_mem_read`` sees them; UcError if
        unmapped. Host memory mapped with ``map_host`` is read directly (a ctypes slice
        costs a fraction of a ``uc_mem_read`` call; firmware reads code and the IVT
        thousands of times a boot)."""
        for begin, end, host in self._host_maps:
            if begin <= addr and addr + size <= end:
                return host[addr - begin:addr - begin + size]
        buf = self._membuf if size <= 4096 else ctypes.create_string_buffer(size)
        err = _uc_mem_read(self._uch, ctypes.c_uint64(addr), buf, ctypes.c_size_t(size))
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        return ctypes.string_at(buf, size)

    def _mem_write(self, addr: int, data: bytes) -> None:
        err = _uc_mem_write(self._uch, ctypes.c_uint64(addr), data, ctypes.c_size_t(len(data)))
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)

    def msr_read(self, msr: int) -> int:
        """The CPU's own value of an MSR (what unicorn's rdmsr would give)."""
        self._msr.rid, self._msr.value = msr & 0xFFFF_FFFF, 0
        err = _uc_reg_read(self._uch, X.UC_X86_REG_MSR, ctypes.byref(self._msr))
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        return int(self._msr.value)

    def msr_write(self, msr: int, value: int) -> None:
        self._msr.rid, self._msr.value = msr & 0xFFFF_FFFF, value & 0xFFFF_FFFF_FFFF_FFFF
        err = _uc_reg_write(self._uch, X.UC_X86_REG_MSR, ctypes.byref(self._msr))
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)

    def _sync_uc_mode(self) -> bool:
        """An HVM engine: whether the guest is in long mode (CR0.PG and EFER.LMA), with the
        engine's register API switched to match (see _uc_mode_field). A PV engine: True."""
        if self.long_mode:
            return True
        lma = bool(self.reg("cr0") & CR0_PG) and bool(self.msr_read(MSR_EFER) & EFER_LMA)
        if lma != self._uc64 and self._mode_field is not None:
            ctypes.memmove(self._mode_field, struct.pack(
                "<i", uc_const.UC_MODE_64 if lma else uc_const.UC_MODE_32), 4)
            self._uc64 = lma
            self._set_tsc_ids()
        return lma

    def _pc_name(self) -> str:
        """The program counter's register name in the engine's current mode."""
        return "rip" if self._uc64 else "eip"

    def paging_state(self) -> tuple[int, int, int, int] | None:
        """(CR0, CR3, CR4, EFER) while paging is on (what a walk of the guest's page
        tables needs), None while it is off."""
        cr0 = self.reg("cr0")
        if not cr0 & CR0_PG:
            return None
        return cr0, self.reg("cr3"), self.reg("cr4"), self.msr_read(MSR_EFER)

    def code64(self) -> bool:
        """Whether the vCPU runs 64-bit code: long mode and a CS descriptor with L set
        (Xen's hvm_guest_x86_mode() == 8)."""
        if self.long_mode:
            return True
        if not self._sync_uc_mode():
            return False
        offset = _env_fields()["hflags"]
        if offset >= 0:   # QEMU's HF_CS64_MASK: CS.L as loaded, readable from ring 3 too
            ctx = self._context()
            return bool(struct.unpack("<I", ctypes.string_at(ctx.context.value + offset, 4)
                                      )[0] & (1 << 15))
        sel = self.reg("cs")
        gdt_base, limit = self._table_register(X.UC_X86_REG_GDTR)
        if sel & 4 or (sel & ~7) + 7 > limit:
            return False
        try:
            hi = struct.unpack("<I", self.code_at(gdt_base + (sel & ~7) + 4, 4,
                                                  prot=uc_const.UC_PROT_READ))[0]
        except UcError:
            return False
        return bool(hi & (1 << 21))

    def hypercall_args(self) -> list[int]:
        """[number, arg1..arg5] in the calling convention of the code that made the call:
        RAX, RDI, RSI, RDX, R10, R8 from 64-bit code, else EAX, EBX, ECX, EDX, ESI, EDI
        (xen/arch/x86/hvm/hypercall.c)."""
        vals = self._hc_vals
        if not self.long_mode:
            wide = self.code64()
            if wide != self.hypercall_64:
                self.hypercall_64 = wide
                self._hc_ids = self._hc_ids64 if wide else self._hc_ids32
                self.hypercall_regs = _HC_REGS if wide else _HC_REGS32
            ctypes.memset(vals, 0, ctypes.sizeof(vals))
        err = _uc_reg_read_batch(self.uc._uch, self._hc_ids, self._hc_ptrs, 6)
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        return list(vals)

    def set_return(self, value: int) -> None:
        mask = 0xFFFF_FFFF_FFFF_FFFF if self.hypercall_64 else 0xFFFF_FFFF
        self._ret.value = value & mask
        err = _uc_reg_write(self.uc._uch, self.hypercall_regs[0], ctypes.byref(self._ret))
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)

    def registers(self) -> dict[str, int]:
        if self.long_mode or self._sync_uc_mode():  # a PV vCPU, or an HVM one in long mode
            names: tuple[str, ...] = (*GPRS64, "rip", "rflags", "cs", "ss", "cr0", "cr3")
            if not self.long_mode:
                names += ("cr2", "cr4")
        else:
            names = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags",
                     "cs", "ds", "es", "ss", "cr0")
            if self.reg("cr0") & CR0_PG:
                names += ("cr2", "cr3", "cr4")
        return {n: self.reg(n) for n in names}

    def mode(self) -> CpuMode:
        if self.msr_read(MSR_EFER) & (1 << 10):  # EFER.LMA
            return CpuMode.LONG
        return CpuMode.PROTECTED if self.reg("cr0") & 1 else CpuMode.REAL

    def pc(self) -> int:
        """The address emulation resumes at (RIP, or the linear CS:IP in real mode)."""
        if self.long_mode or self._sync_uc_mode():
            return self.reg("rip")
        return self.reg("eip")

    # -- long mode entry (PV) -------------------------------------------------
    def setup_long_mode(self, *, cr3: int, gdt_base: int, gdt_limit: int,
                        tsd: bool = False) -> None:
        """Paging on, long mode active, GDT loaded: the state Xen keeps for a PV vCPU.
        ``tsd``: CR4.TSD, so that ``rdtsc`` outside ring 0 raises #GP (an emulated TSC)."""
        self.uc.reg_write(X.UC_X86_REG_GDTR, (0, gdt_base, gdt_limit, 0))
        self.uc.reg_write(X.UC_X86_REG_CR3, cr3)
        # PAE, OSFXSR, OSXMMEXCPT (and TSD)
        self.uc.reg_write(X.UC_X86_REG_CR4, 0x20 | 0x200 | 0x400 | (0x4 if tsd else 0))
        self.msr_write(MSR_EFER, 0xD01)  # SCE | LME | LMA | NXE (Xen runs with NX on)
        self.uc.reg_write(X.UC_X86_REG_CR0, 0x80050033)  # PG | WP | AM | NE | ET | MP | PE

    # -- running ----------------------------------------------------------------
    def request_stop(self, reason: ExitReason = ExitReason.YIELD) -> None:
        """Called from a handler: end the current slice (at the next block boundary)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self.uc.emu_stop()
        if self._counter is not None and self.running and not self._translating:
            self._counter.stopping()   # from inside an instruction of the running block

    def raise_fault(self, vector: int, detail: str) -> None:
        """Called from a handler: the current instruction faults (e.g. #GP for a PV ``out``)."""
        if self._fault is None:
            self._fault = (vector, detail)
        self.uc.emu_stop()

    def _add_native_io_hooks(self, native: bool) -> None:
        """UC_HOOK_INSN for ``in`` and ``out`` through ctypes directly: port I/O is the
        commonest exit of firmware, and the binding's generic wrapper doubles its cost.
        Both go through the native callbacks first where they can run."""
        plog = self._plog

        def on_in(uc_handle: int, port: int, size: int, user: int) -> int:
            try:
                if plog.count:
                    self._drain_ports()
                return self.exits.io_in(self, port, size) & ((1 << (8 * size)) - 1)
            except BaseException as err:  # surfaced by run(): ctypes would swallow it
                self._hook_error = err
                self.uc.emu_stop()
                return 0

        def on_out(uc_handle: int, port: int, size: int, value: int, user: int) -> None:
            try:
                if plog.count:
                    self._drain_ports()
                self.exits.io_out(self, port, size, value)
                if port == self._plog_port and self._port_room is not None:
                    self._refresh_port_room()   # the exit may have changed what fits
            except BaseException as err:
                self._hook_error = err
                self.uc.emu_stop()

        python_in, python_out = _IN_CB(on_in), _OUT_CB(on_out)
        thunks = _native_io() if native else None
        if thunks is None:
            self._add_native_hook(uc_const.UC_HOOK_INSN, python_in, extra=X.UC_X86_INS_IN)
            self._add_native_hook(uc_const.UC_HOOK_INSN, python_out, extra=X.UC_X86_INS_OUT)
            return
        plog.python_in = ctypes.cast(python_in, ctypes.c_void_p).value or 0
        plog.python_out = ctypes.cast(python_out, ctypes.c_void_p).value or 0
        self._keep.extend((python_in, python_out))
        self._add_native_hook(uc_const.UC_HOOK_INSN, thunks[0], extra=X.UC_X86_INS_OUT,
                              user=ctypes.addressof(plog))
        self._add_native_hook(uc_const.UC_HOOK_INSN, thunks[1], extra=X.UC_X86_INS_IN,
                              user=ctypes.addressof(plog))

    def _log_cost(self, cost_ns: int) -> None:
        """Every exit the log keeps costs the same: the first caller's ``cost_ns``."""
        if self._log_costed and self._plog.cost != cost_ns:
            raise ValueError(f"the native port log charges {self._plog.cost} ns an exit, "
                             f"not {cost_ns}")
        self._plog.cost = cost_ns
        self._log_costed = True

    def log_port_writes(self, port: int, cost_ns: int,
                        sink: Callable[[list[tuple[int, int]]], None], *,
                        exit_on: int | None = None,
                        room: Callable[[], int] | None = None) -> bool:
        """Keep the guest's byte ``out``s to ``port`` natively instead of making each a
        trip to Python (a firmware's debug port: one exit per character). Each costs
        ``cost_ns`` of the slice's virtual time as it happens, as ``charge`` would;
        ``sink`` gets them as ``(elapsed, value)`` pairs, the slice's virtual time before
        each exit and the byte, before any other exit of the vCPU reaches Python and at
        the end of each emulation run: in the order the guest made them, between the
        exits it made before and after. The byte ``exit_on`` (a newline) is always an
        ``io_out`` exit of its own, and so is every write beyond ``room()`` (asked at
        each run's start and after each hand-over or exit to the port): what the sink
        needs to see at once, where it would make a record someone waits for. Only
        within ``run()``, while ``log_ports`` is true. False where native code cannot
        run (nothing changes)."""
        if not self._plog.python_out:
            return False
        self._log_cost(cost_ns)
        if self._plog_port != _NO_PORT:
            self._plog.kinds[self._plog_port] = PORT_PYTHON
        self._plog_port = port & 0xFFFF
        self._plog.kinds[self._plog_port] = _PORT_LOGGED
        self._plog.exit_value = _NO_PORT if exit_on is None else exit_on & 0xFF
        self._port_sink = sink
        self._port_room = room
        return True

    def answer_ports(self, cost_ns: int,
                     sink: Callable[[list[tuple[int, int, int, bool, int]]], None]) -> bool:
        """Answer the port accesses ``set_port_kinds`` names natively instead of making
        each a trip to Python: nobody's ports (PORT_NULL: reads all ones, writes
        dropped), a dword latch (PORT_LATCH, ``port_latch``), its data window while the
        latch is enabled (bit 31) and the function it names (bits 8-23) is not set in
        ``set_port_functions`` (PORT_WINDOW: nobody's then), a dword clock port
        (PORT_CLOCK, ``set_port_clock``). Each costs ``cost_ns`` as it happens (the same
        as ``log_port_writes``' writes), and ``sink`` gets them as ``(elapsed, port, size,
        out, value)``, the value read or written, as ``log_port_writes``' sink gets its
        bytes: before any other exit reaches Python and at each run's end, in order
        (the two sinks in turn, as the guest made them). Only within ``run()``, while
        ``log_ports`` is true. False where native code cannot run (nothing changes)."""
        if not self._plog.python_out:
            return False
        self._log_cost(cost_ns)
        self._answer_sink = sink
        return True

    def set_port_kinds(self, kinds: bytes) -> None:
        """Each port's kind (``kinds``: a byte each, 65,536 of them; PORT_PYTHON for the
        exits Python answers), for ``answer_ports``."""
        if len(kinds) != 0x10000:
            raise ValueError("a kind for each of the 65,536 ports")
        if self._answer_sink is None:
            return
        ctypes.memmove(self._plog.kinds, bytes(kinds), 0x10000)
        if self._plog_port != _NO_PORT:
            self._plog.kinds[self._plog_port] = _PORT_LOGGED

    def set_port_functions(self, bits: bytes) -> None:
        """The functions of a PORT_WINDOW that are someone's (a bit each, 8,192 bytes:
        bus, device and function as the latch's bits 8-23 number them)."""
        if len(bits) != 0x2000:
            raise ValueError("a bit for each of the 65,536 functions")
        if self._answer_sink is not None:
            ctypes.memmove(self._plog.functions, bytes(bits), 0x2000)

    def set_port_clock(self, mul: int, div: int, mask: int) -> None:
        """A PORT_CLOCK port's dword reads: (virtual ns) * ``mul`` // ``div`` & ``mask``."""
        if div <= 0 or not 0 <= mul < div:
            raise ValueError("a clock port counts slower than the virtual clock")
        self._plog.mul, self._plog.div, self._plog.mask = mul, div, mask

    @property
    def port_latch(self) -> int:
        """The PORT_LATCH register's value (the guest's dword writes kept natively)."""
        return int(self._plog.latch)

    @port_latch.setter
    def port_latch(self, value: int) -> None:
        self._plog.latch = value & 0xFFFF_FFFF

    def _refresh_port_room(self) -> None:
        """How many more bytes ``log_port_writes`` may keep: what ``room()`` allows."""
        room = self._port_room
        self._plog.log_room = (PORT_LOG_ENTRIES if room is None
                               else max(0, min(PORT_LOG_ENTRIES, room())))

    def _drain_ports(self) -> None:
        """Hand the kept exits to their sinks (called when the log is not empty)."""
        log = self._plog
        n = int(log.count)
        log.count = 0
        budget = self.slice_budget
        lefts, words = log.lefts[:n], log.words[:n]
        self._charged += n * log.cost
        if max(words) < _CPUID_KEPT:   # the logged port's bytes alone: one hand-over
            if self._port_sink is not None:
                self._port_sink([(budget - left, value)
                                 for left, value in zip(lefts, words, strict=True)])
        else:
            self._drain_mixed(budget, lefts, words)
        self._refresh_port_room()

    def _drain_mixed(self, budget: int, lefts: list[int], words: list[int]) -> None:
        """Logged bytes, CPUID leaves and answered port exits: each run of one kind to its
        sink, in order."""
        sinks: tuple[Callable[[list[Any]], None] | None, ...] = (
            self._port_sink, self._cpuid_sink, self._answer_sink)
        kind, run = -1, list[Any]()
        for left, word in zip(lefts, words, strict=True):
            now = 2 if word >= _KEPT else 1 if word >= _CPUID_KEPT else 0
            if now != kind:
                if run:
                    sinks[kind](run)  # type: ignore[misc]
                kind, run = now, list[Any]()
            if now == 2:
                run.append((budget - left, (word >> 32) & 0xFFFF, (word >> 48) & 0xFF,
                            bool(word >> 56 & 1), word & 0xFFFF_FFFF))
            else:
                run.append((budget - left, word & 0xFFFF_FFFF))
        if run:
            sinks[kind](run)  # type: ignore[misc]

    def disassemble(self, code: bytes, address: int) -> str:
        """One instruction of ``code`` (fetched by the caller) as text, for crash reports."""
        mode = capstone.CS_MODE_64 if self.long_mode or self.code64() else (
            capstone.CS_MODE_32 if self.reg("cr0") & 1 else capstone.CS_MODE_16)
        md = capstone.Cs(capstone.CS_ARCH_X86, mode)
        for insn in md.disasm(code, address, 1):
            return f"{insn.mnemonic} {insn.op_str}".strip()
        return ""

    def writes_memory(self, code: bytes, address: int, target: int) -> bool:
        """Whether the instruction in ``code`` (at ``address``) writes memory at or near
        ``target``: a memory operand it writes, or a push/call below the stack pointer
        (what a #PF error code's W bit says; for the hypervisor's fault decoding)."""
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64
                         if self.long_mode or self.code64() else capstone.CS_MODE_32)
        md.detail = True
        for insn in md.disasm(code, address, 1):
            from capstone import x86_const as cx

            if any(op.type == cx.X86_OP_MEM and op.access & capstone.CS_AC_WRITE
                   for op in insn.operands):
                return True
            rsp = self.reg("rsp")
            return insn.mnemonic.startswith(("push", "call")) and rsp - 64 <= target < rsp
        return False

    def native_cpuid(self, leaf: int, subleaf: int) -> tuple[int, int, int, int]:
        """What this CPU model's own ``cpuid`` answers (no hypervisor hook): run once
        on a scratch engine and remembered."""
        key = (self.long_mode, leaf & 0xFFFFFFFF, subleaf & 0xFFFFFFFF)
        cached = _NATIVE_CPUID.get(key)
        if cached is None:
            mode = uc_const.UC_MODE_64 if self.long_mode else uc_const.UC_MODE_32
            scratch = Uc(uc_const.UC_ARCH_X86, mode)
            scratch.mem_map(0x1000, PAGE_SIZE)
            scratch.mem_write(0x1000, b"\x0f\xa2")
            scratch.reg_write(X.UC_X86_REG_EAX, key[1])
            scratch.reg_write(X.UC_X86_REG_ECX, key[2])
            scratch.emu_start(0x1000, 0x1002)
            a, b, c, d = (int(scratch.reg_read(r)) & 0xFFFFFFFF for r in (
                X.UC_X86_REG_EAX, X.UC_X86_REG_EBX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX))
            cached = (a, b, c, d)
            if len(_NATIVE_CPUID) < 4096:  # a guest may ask any leaf: bounded
                _NATIVE_CPUID[key] = cached
        return cached

    def elapsed(self) -> int:
        """Virtual instructions consumed so far in the current slice."""
        return self.slice_budget - self.budget.left

    _charged = 0

    def end_slice(self) -> None:
        """The hypervisor has accounted the slice: elapsed() is 0 until the next run()
        or step(), so the clock does not count the last slice twice."""
        self.slice_budget = self.budget.left = 0

    def charge(self, ns: int) -> None:
        """Spend ``ns`` of the slice's virtual time outside guest code: what a VM exit or a
        hypercall costs in the hypervisor. The guest's clock moves on by that much, and
        the slice ends at the next block boundary if the charge used it up."""
        self.budget.left -= ns
        self._charged += ns

    def run(self, budget: int, *, begin: int | None = None) -> RunResult:
        """Run for at most ``budget`` virtual instructions (stops at block boundaries)."""
        self._stop_reason = None
        self._fault = None
        self.fault_pc = None
        self.fault_is_cpu_exception = True
        self.fault_error_code = None
        self.slice_budget = budget
        self._charged = 0
        self.budget.left = budget
        self.budget.stopped_at = _NOT_STOPPED
        if self._unaged >= CODE_AGING_PERIOD:
            self._age_code_pages()
        if (self._ones_at_first_run or self._identity_tlb or not self._entry_scanned
                or self._walk_paused or self._walk_fresh):
            self._before_run()
        if self.long_mode or self._uc64 or self._delivered:
            self._delivered = False
            self.forget_exceptions()
        start = self.pc() if begin is None else begin
        if self.log_ports and (self._plog_port != _NO_PORT or self._answer_sink is not None
                               or self._cpuid_sink is not None):
            self._plog.on = 1
            self._refresh_port_room()
            origin = self.port_clock_origin
            self._plog.clock = 0 if origin is None or not self._plog.div else origin + budget
        idle = self.idle
        if idle is not None:
            idle.begin()
        try:
            self._emu_start(start)
            while self.budget.left > 0 and (
                    self._retranslated()  # the same block again, with its new traps
                    or (idle is not None and self._fault is None and self._hook_error is None
                        and self._stop_reason is None and idle.resume())):
                self._emu_start(self.pc())
        finally:
            self._plog.on = 0
            self._plog.clock = 0
            self.port_clock_origin = None
            if idle is not None:
                idle.end()
        window, self.budget.window = self.budget.window, 0   # armed for this slice only
        if self._df_rip is not None:    # unicorn moved RIP on after the hook: back to it
            self.set_reg(self._pc_name(), self._df_rip)
            self._df_rip = None
        self._reraise_hook_error()
        used = max(0, budget - self.budget.left)
        self._unaged += used
        charged = min(used, self._charged)
        if self._fault is not None:
            vec, detail = self._fault
            return RunResult(ExitReason.FAULT, used, vec, detail, charged)
        if self._stop_reason is not None:
            return RunResult(self._stop_reason, used, charged=charged)
        if self.budget.left <= 0:
            # an exit's cost can use the budget up inside a block that then halts (``out;
            # hlt``): no block's start stopped the run, it ended at the ``hlt``
            if (self.budget.stopped_at == _NOT_STOPPED and self.ring0
                    and self._byte_before_pc() == 0xF4):
                return RunResult(ExitReason.HLT, used, charged=charged)
            return RunResult(ExitReason.BUDGET, used, charged=charged)
        if window and self.reg("eflags") & EFLAGS_IF:
            return self._intr_window_exit(used, charged)
        if self.ring0 and self._byte_before_pc() == 0xF4:
            return RunResult(ExitReason.HLT, used, charged=charged)
        # unicorn 2.1.4, after a stop requested from a hook, can drop the next CPU
        # exception and return at the faulting instruction without a word: report it,
        # the hypervisor decodes the instruction and raises the fault itself.
        return RunResult(ExitReason.STALLED, used, charged=charged)

    def enable_intr_window(self, armed: bool) -> None:
        """VMX's interrupt-window exiting for the next slice (Xen's vmx_enable_intr_window,
        xen/arch/x86/hvm/vmx/intr.c): an interrupt waits and the guest has IF clear, so
        run() ends at the first block that starts with IF set (after the sti, popf or
        iret that set it) with ExitReason.INTR_WINDOW. The native block callback checks
        it (one uc_reg_read per block while armed); TCG itself looks for interrupts at
        block boundaries, and sti ends a block."""
        self.budget.window = 1 if armed else 0

    def _intr_window_exit(self, used: int, charged: int) -> RunResult:
        """The window opened. After an ``sti`` the CPU takes the interrupt one
        instruction later (the interrupt shadow: ``sti; hlt`` halts, then wakes with the
        return address after the hlt), so that instruction runs first."""
        if self._byte_before_pc() == 0xFB:          # sti
            pc = self.pc()
            size = self._shadowed_insn_size(pc)
            if size is None:                        # a jump, call, int...: take it now
                return RunResult(ExitReason.INTR_WINDOW, used, charged=charged)
            before = self.budget.left
            self._run_one(pc, size)
            used += max(0, before - self.budget.left)
            if self._fault is not None:
                vec, detail = self._fault
                return RunResult(ExitReason.FAULT, used, vec, detail, charged)
            if self.ring0 and self._byte_before_pc() == 0xF4:
                return RunResult(ExitReason.HLT, used, charged=charged)
        return RunResult(ExitReason.INTR_WINDOW, used, charged=charged)

    def _run_one(self, pc: int, size: int) -> None:
        """Run the one instruction at ``pc`` (``size`` bytes): a code hook on the next
        one stops the CPU there (blocks already translated are dropped so that it is
        seen). A ``hlt`` stops the CPU by itself."""
        lin = self._linear(pc)

        def stop(uc: Uc, address: int, n: int, user: object) -> None:
            uc.emu_stop()
            if self._counter is not None:
                self._counter.trap(address)     # stopped before it

        hook = self.uc.hook_add(uc_const.UC_HOOK_CODE, stop, None, lin + size, lin + size)
        self.invalidate_code(lin, lin + size + 1)
        try:
            self._emu_start(pc)
            while self._retranslated() and self.pc() == pc:  # (on QEMU's page walk now)
                self._emu_start(pc)
            self._reraise_hook_error()
        finally:
            self.uc.hook_del(hook)
            self.invalidate_code(lin, lin + size + 1)

    def _shadowed_insn_size(self, pc: int) -> int | None:
        """The length of the instruction at ``pc`` (in sti's shadow) when it runs on to
        the next one or halts; None for one that transfers control or cannot be read."""
        try:
            if not self.long_mode and not self.reg("cr0") & 1:
                code = bytes(self.uc.mem_read((self.reg("cs") << 4) + pc, 16))
            else:
                code = self.code_at(pc, 16)
        except UcError:
            return None
        mode = capstone.CS_MODE_32 if self.reg("cr0") & 1 else capstone.CS_MODE_16
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if self._uc64 else mode)
        md.detail = True
        for insn in md.disasm(code, pc, 1):
            flow = {capstone.CS_GRP_JUMP, capstone.CS_GRP_CALL, capstone.CS_GRP_RET,
                    capstone.CS_GRP_INT, capstone.CS_GRP_IRET}
            return None if flow & set(insn.groups) else int(insn.size)
        return None

    def step(self) -> RunResult:
        """Execute exactly one instruction (single-stepping; the one per-instruction path)."""
        self._stop_reason = None
        self._fault = None
        self.fault_pc = None
        self.fault_is_cpu_exception = True
        self.fault_error_code = None
        self.slice_budget = 1 << 40
        self.budget.left = 1 << 40
        self.budget.window = 0
        self._charged = 0
        if (self._ones_at_first_run or self._identity_tlb or not self._entry_scanned
                or self._walk_paused or self._walk_fresh):
            self._before_run()
        if self.long_mode or self._uc64 or self._delivered:
            self._delivered = False
            self.forget_exceptions()
        pc = self.pc()
        self._emu_start(pc, count=1)
        # new traps stopped the step before its instruction ran: step again; if the
        # instruction ran (the next block was translated), the step is done
        while self._retranslated() and self.pc() == pc:
            self._emu_start(pc, count=1)
        if self._df_rip is not None:
            self.set_reg("rip", self._df_rip)
            self._df_rip = None
        self._reraise_hook_error()
        used, charged = 1 + self._charged, self._charged  # an exit costs what it costs
        if self._fault is not None:
            vec, detail = self._fault
            return RunResult(ExitReason.FAULT, used, vec, detail, charged)
        if self._stop_reason is not None and self._stop_reason is not ExitReason.STEP:
            return RunResult(self._stop_reason, used, charged=charged)
        return RunResult(ExitReason.STEP, used, charged=charged)

    def save_state(self) -> object:
        """The whole CPU state (registers, control and segment state), to put back with
        ``restore_state``: for Xen's emulation that runs an instruction and may undo it."""
        return (self.uc.context_save(), self.fault_pc, self.fault_cr2)

    def restore_state(self, state: object) -> None:
        ctx, self.fault_pc, self.fault_cr2 = state  # type: ignore[misc]
        self.uc.context_restore(ctx)

    def forget_exceptions(self) -> None:
        """Set QEMU's ``old_exception`` back to -1 as delivering an exception would (see
        _old_exception_offset): a PV vCPU's next fault is then reported as itself, not
        as a double fault. Costs a context save and restore (~3 us)."""
        offset = _old_exception_offset()
        if offset < 0:
            return
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = self.uc.context_save()
        else:
            self.uc.context_update(ctx)
        if struct.unpack_from("<i", ctypes.string_at(ctx.context.value + offset, 4))[0] != -1:
            ctypes.memmove(ctx.context.value + offset, b"\xff\xff\xff\xff", 4)
            self.uc.context_restore(ctx)

    def _emu_start(self, begin: int, count: int = 0) -> None:
        """uc_emu_start from ``begin``; an error becomes the slice's fault."""
        self._retranslate = False
        self._tsc.valid = 0  # the clock's base may have moved since the last run
        cr2 = None
        if self._walk is not None:
            self._walk.verdict = 0
            if self._walk_paused:
                # on QEMU's walk, unicorn's lookup of the code before _UNTIL when the run
                # ends writes CR2 if the guest maps nothing there: not the guest's, put
                # back below (the native walk enters that page 1:1 and never does)
                cr2 = self.reg("cr2")
        self.running = True
        faulted = False
        try:
            self.uc.emu_start(begin, _UNTIL, 0, count)
        except UcError as err:
            faulted = True
            if (err.errno == uc_const.UC_ERR_EXCEPTION and self._walk is not None
                    and self._walk.verdict and self._fault is None
                    and self._walk.refused == self._invalid_addr() & ~0xFFF):
                self._walk_refused()
                if self._retranslate:      # not run: it runs again on QEMU's walk
                    faulted = False
                    if self._counter is not None:
                        self._counter.trap(self.linear_pc())   # stopped before it
            elif self._fault is None:
                self._fault = self._classify_error(err)
                # an access to memory nothing is mapped at is the emulator's, not an
                # exception the guest's CPU raised: never one to give to its IDT
                self.fault_is_cpu_exception = err.errno == uc_const.UC_ERR_INSN_INVALID
        finally:
            self.running = False
        if cr2 is not None:
            self.set_reg("cr2", self.fault_cr2 if self._fault is not None
                         and self._fault[0] == VEC_PF else cr2)
        if self._plog.count:
            self._drain_ports()
        if self._counter is not None:
            self._counter.emu_done(faulted)

    def _retranslated(self) -> bool:
        """Emulation stopped only so that a block is translated again with new traps."""
        return (self._retranslate and self._fault is None and self._stop_reason is None
                and self._hook_error is None)

    def _reraise_hook_error(self) -> None:
        err, self._hook_error = self._hook_error, None
        if err is not None:
            raise err

    def _byte_before_pc(self) -> int:
        try:
            lin = self.pc() - 1
            if not self.long_mode and not self.reg("cr0") & 1:
                lin = (self.reg("cs") << 4) + self.reg("eip") - 1
                return self.uc.mem_read(lin, 1)[0]
            return self.code_at(lin, 1)[0]
        except UcError:
            return -1

    def _classify_error(self, err: UcError) -> tuple[int, str]:
        code = err.errno
        table = {
            uc_const.UC_ERR_INSN_INVALID: (VEC_UD, "invalid opcode"),
            uc_const.UC_ERR_FETCH_UNMAPPED: (VEC_PF, "instruction fetch from unmapped memory"),
            uc_const.UC_ERR_READ_UNMAPPED: (VEC_PF, "read of unmapped memory"),
            uc_const.UC_ERR_WRITE_UNMAPPED: (VEC_PF, "write to unmapped memory"),
            uc_const.UC_ERR_FETCH_PROT: (VEC_PF, "instruction fetch from a protected page"),
            uc_const.UC_ERR_READ_PROT: (VEC_PF, "read of a protected page"),
            uc_const.UC_ERR_WRITE_PROT: (VEC_PF, "write to a read-only page"),
            uc_const.UC_ERR_EXCEPTION: (VEC_GP, "unhandled CPU exception"),
        }
        return table.get(code, (VEC_DF, f"emulator error: {err}"))

    # -- hooks ------------------------------------------------------------------
    def _py_block(self, uc: Uc, address: int, size: int, user: object) -> None:
        self.budget.left -= (size + 3) >> 2
        if self.budget.left <= 0 or (self.budget.window and self.reg("eflags") & EFLAGS_IF):
            self.budget.stopped_at = address
            uc.emu_stop()

    def _on_intr(self, uc: Uc, intno: int, user: object) -> None:
        if self._stepping and intno == VEC_DB:
            return
        if intno == 0x82 and self.int82_hypercalls:  # 32-bit PV: int $0x82 is the hypercall
            self.exits.hypercall(self, "int 0x82")
            return
        if self.exits.interrupt(self, intno):
            return
        if not self.long_mode:
            # unicorn does not vector interrupts: real mode's IVT here, inline; in
            # protected and long mode a software interrupt goes through the IDT here too
            # (no VM exit under VMX) and an exception ends the slice for Xen's
            # hvm_inject_hw_exception, with QEMU's error code
            if self._real_mode_intr(intno):
                return
            error, software = self.exception_info()
            if software and self._fault is None:
                why = self.deliver_exception(intno, None, software=True)
                if why is None:
                    return
                self.fault_is_cpu_exception = False
                self._fault = (intno, f"int {intno:#x}: {why}")
                self.fault_pc = self.pc()
                uc.emu_stop()
                return
            if self._fault is None:
                self.fault_error_code = error
        if self._fault is not None:
            # the CPU went on to the faulting instruction again before it stopped; the
            # fault that stopped it is the one to report (the second is QEMU's #DF)
            uc.emu_stop()
            return
        if intno == VEC_DF:
            # Never a guest's: unicorn delivers no exception, so a #DF is QEMU combining
            # this fault with one it raised and dropped earlier in the slice (after a
            # hook stopped the CPU). End the slice at the instruction: the next one
            # starts with old_exception forgotten and reports the fault itself.
            self._df_rip = self.pc()
            self._delivered = True   # the next slice forgets the dropped exception
            self.request_stop(ExitReason.YIELD)
            return
        detail = VECTOR_NAMES.get(intno, f"interrupt {intno:#x}")
        if intno == VEC_PF:
            self.fault_cr2 = self.reg("cr2")  # read now: later emulator work changes it
            detail += f" at {self.fault_cr2:#x}"
        self.fault_pc = self.pc()
        self._fault = (intno, detail)
        uc.emu_stop()

    def _on_invalid(self, uc: Uc, user: object) -> bool:
        pc = self.pc()
        try:  # a PV kernel's vmcall is read as before: physical, so never a hypercall
            code = (self.mem(pc, 3) if self.long_mode
                    else self.code_at(self._linear(pc), 3))
        except UcError:
            return False
        if code in (b"\x0f\x01\xc1", b"\x0f\x01\xd9"):  # vmcall (VMX) / vmmcall (SVM)
            self.set_reg(self._pc_name(), pc + 3)
            self.exits.hypercall(self, "vmcall")
            return True
        if self._fault is None and self.long_mode:
            self.fault_pc = pc
        self._fault = (VEC_UD, f"invalid opcode {code.hex(' ')}")
        return False

    def _linear(self, pc: int) -> int:
        if not self.long_mode and not self.reg("cr0") & 1:
            return (self.reg("cs") << 4) + (pc & 0xFFFF)
        return pc

    def _add_cpuid_hook(self, native: bool) -> None:
        """The ``cpuid`` hook: through the native callback first where it can run (the
        leaves ``answer_cpuid`` names stay there), else the binding's."""
        thunk = _native_at(_CPUID_OFFSET) if native else None
        if thunk is None:
            self._hooks.append(self.uc.hook_add(uc_const.UC_HOOK_INSN, self._on_cpuid, None,
                                                1, 0, X.UC_X86_INS_CPUID))
            return

        def on_cpuid(uc_handle: int, user: int) -> int:
            try:
                return self._on_cpuid(self.uc, None)
            except BaseException as err:  # surfaced by run(): ctypes would swallow it
                self._hook_error = err
                self.uc.emu_stop()
                return 1

        python = _TSC_CB(on_cpuid)
        log = self._plog
        log.python_cpuid = ctypes.cast(python, ctypes.c_void_p).value or 0
        log.reg_read = ctypes.cast(_uc_reg_read, ctypes.c_void_p).value or 0
        self._keep.append(python)
        self._add_native_hook(uc_const.UC_HOOK_INSN, thunk, extra=X.UC_X86_INS_CPUID,
                              user=ctypes.addressof(log))

    def answer_cpuid(self, leaves: Iterable[int], cost_ns: int,
                     sink: Callable[[list[tuple[int, int]]], None]) -> bool:
        """Leave a ``cpuid`` of one of ``leaves`` (0-255 and 0x80000000-0x800000ff; the
        leaves the hypervisor answers with the CPU model's own) to the CPU natively
        instead of making each a trip to Python: each costs ``cost_ns`` as it happens,
        and ``sink`` gets them as ``(elapsed, leaf)`` pairs, in order with the other kept
        exits (``answer_ports``), before any other exit reaches Python and at each run's
        end. Only within ``run()``, while ``log_ports`` is true. False where native code
        cannot run (nothing changes)."""
        if not self._plog.python_cpuid:
            return False
        bits = bytearray(64)
        for leaf in leaves:
            bit = leaf if leaf < 0x100 else leaf - 0x80000000 + 0x100
            if not 0 <= bit < 0x200:
                raise ValueError(f"leaf {leaf:#x} is neither 0-0xff nor 0x80000000-0x800000ff")
            bits[bit >> 3] |= 1 << (bit & 7)
        self._log_cost(cost_ns)
        ctypes.memmove(self._plog.leaves, bytes(bits), 64)
        self._cpuid_sink = sink
        return True

    def _on_cpuid(self, uc: Uc, user: object) -> int:
        if self._plog.count:
            self._drain_ports()
        leaf = self.reg("eax")
        sub = self.reg("ecx")
        result = self.exits.cpuid(self, leaf, sub)
        if result is None:
            return 0  # unicorn's own CPUID
        regs = _CPUID_REGS64 if self.long_mode else _CPUID_REGS32
        uc.reg_write_batch(list(zip(regs, result, strict=True)))
        return 1

    # -- code traps: one code hook on one instruction each ------------------------------
    def code_traps(self) -> list[tuple[dict[int, int | None], Callable[..., None]]]:
        """The vCPU's code traps, one table per kind (wrmsr, rdmsr, rdtsc, rdrand, mov to
        a control register, rep ins/outs): the unicorn hook handle by instruction address,
        and the method each hook calls. An instruction counter that hooks every
        instruction anyway (xenlab.cpu.icount) takes them over: it deletes a hook, sets
        its handle to None and calls the method itself."""
        return [(self._wrmsr_hooks, self._on_wrmsr), (self._rdmsr_hooks, self._on_rdmsr),
                (self._rdtsc_hooks, self._on_rdtsc), (self._rdrand_hooks, self._on_rdrand),
                (self._string_io_hooks, self._on_string_io),
                (self._mov_cr_hooks, self._on_mov_cr)]

    def _crwatch(self, native: bool) -> _CrWatch:
        """The native mov-to-CR filter's state (``python`` 0 where it cannot run: every
        such trap is then Python's)."""
        w = _CrWatch()
        w.regs[:] = [REGS[name] for name in _GPR32]
        for byte in _PREFIXES_ALL:
            w.prefixes[byte >> 3] |= 1 << (byte & 7)
        if not native or _native_at(_CRWATCH_OFFSET) is None:
            return w

        def on_mov_cr(uc_handle: int, address: int, size: int, user: int) -> None:
            try:
                self._on_mov_cr(self.uc, address, size, None)
                if self._counter is not None:
                    self._counter.trap(address)
            except BaseException as err:  # surfaced by run(): ctypes would swallow it
                self._hook_error = err
                self.uc.emu_stop()

        python = _CODE_CB(on_mov_cr)
        self._keep.append(python)
        w.python = ctypes.cast(python, ctypes.c_void_p).value or 0
        w.mem_read = ctypes.cast(_uc_mem_read, ctypes.c_void_p).value or 0
        w.reg_read = ctypes.cast(_uc_reg_read, ctypes.c_void_p).value or 0
        return w

    def add_code_trap(self, callback: Callback, address: int) -> int:
        """A code hook on the instruction at linear ``address`` that calls ``callback``
        (then tells an attached block counter, whose count depends on whether the trap
        emulated the instruction); its unicorn handle (for ``remove_code_trap``). A move
        to a control register's goes through the native filter first where it runs."""
        if callback == self._on_mov_cr and self._crw.python:
            handle = self._add_native_hook(
                uc_const.UC_HOOK_CODE, _native_at(_CRWATCH_OFFSET),
                user=ctypes.addressof(self._crw), begin=address, end=address, keep=False)
            self._raw_traps.add(handle)
            return handle
        # a move to a control register is trapped only to see paging turned on (the
        # register itself is in the CPU context): no exit, so not counted, and nothing
        # the exits kept natively must be handed over first for (it makes no record)
        counted = 0 if callback == self._on_mov_cr else 1

        def trap(uc: Uc, at: int, size: int, user: object) -> None:
            self.traps_taken += counted
            if counted and self._plog.count:
                self._drain_ports()
            callback(uc, at, size, user)
            if self._counter is not None:
                self._counter.trap(at)

        return self.uc.hook_add(uc_const.UC_HOOK_CODE, trap, None, address, address)

    def remove_code_trap(self, handle: int) -> None:
        """Delete a code trap ``add_code_trap`` added."""
        if handle in self._raw_traps:
            self._raw_traps.discard(handle)
            err = _uclib().uc_hook_del(self._uch, ctypes.c_size_t(handle))
            if err != uc_const.UC_ERR_OK:
                raise UcError(err)
            return
        self.uc.hook_del(handle)

    def attach_counter(self, counter: BlockCounterEvents | None) -> None:
        """Report to ``counter`` (None: to nobody) what cuts a translated block short:
        each interrupt hook before delivery, each code trap after it ran, each stop a
        handler asks for from inside an instruction (an ``in``/``out``, an MMIO access:
        unicorn ends the run at the block's end, or before the next of its instructions
        that takes a slow memory access, or at the MMIO access itself, which runs again),
        the end of each ``uc_emu_start``. While one is attached the real-mode exceptions
        that can come from the middle of a block (#DE, #BR, #NM, #SS, #GP) go through
        Python, which tells it; the ``int n`` the native callback vectors always end
        their block."""
        self._counter = counter
        self._crw.python_only = counter is not None   # the counter hears of every trap
        r = self._rm
        if counter is not None and self._to_python_before is None:
            self._to_python_before = tuple(r.to_python)
            for vec in (0, 5, 7, 12, 13):
                r.to_python[vec // 64] |= 1 << (vec % 64)
        elif counter is None and self._to_python_before is not None:
            r.to_python[:] = self._to_python_before
            self._to_python_before = None

    @property
    def native_page_walk(self) -> bool:
        """Whether the native page walk fills this vCPU's TLB (``_enter_walk``)."""
        return self._walk is not None and not self._walk_paused

    def linear_pc(self) -> int:
        """The linear address of the next instruction (CS:IP in real mode)."""
        return self._linear(self.pc())

    def pc_name(self) -> str:
        """The program counter's register name in the engine's current mode."""
        return self._pc_name()

    def code_mode(self) -> int:
        """The capstone mode the code runs in now: 64-bit, or 32- or 16-bit as CS.D says
        (QEMU's HF_CS64 and HF_CS32 in hflags: a 16-bit code segment in protected
        mode, as hvmloader's way back to real mode has, decodes as 16-bit)."""
        if self.long_mode:
            return capstone.CS_MODE_64
        offset = _env_fields()["hflags"]
        if offset >= 0:
            ctx = self._context()
            hflags = struct.unpack("<I", ctypes.string_at(ctx.context.value + offset, 4))[0]
            if hflags & (1 << 15):
                return capstone.CS_MODE_64
            return capstone.CS_MODE_32 if hflags & (1 << 4) else capstone.CS_MODE_16
        if self.code64():
            return capstone.CS_MODE_64
        return capstone.CS_MODE_32 if self.reg("cr0") & 1 else capstone.CS_MODE_16

    def fail_from_hook(self, err: BaseException) -> None:
        """An error in a hook: stop the CPU; run() raises it (ctypes would swallow it)."""
        self._hook_error = err
        self.uc.emu_stop()

    # -- WRMSR ------------------------------------------------------------------------
    def trap_wrmsr_at(self, address: int) -> None:
        """Trap the ``wrmsr`` (0F 30) at ``address``: unicorn has no WRMSR hook, so a code
        hook on exactly that instruction hands it to the hypervisor (zero cost elsewhere)."""
        if address in self._wrmsr_hooks:
            return
        self._wrmsr_hooks[address] = self.add_code_trap(self._on_wrmsr, address)

    def _on_wrmsr(self, uc: Uc, address: int, size: int, user: object) -> None:
        try:
            code = self.code_at(address, 2)  # a code hook's address is linear
        except UcError:
            return
        if code != b"\x0f\x30":
            return  # the code changed since the scan: let the CPU execute what is there
        msr = self.reg("ecx")
        value = (self.reg("edx") << 32) | self.reg("eax")
        accepted = self.exits.msr_write(self, msr, value)
        self._tsc.valid = 0  # IA32_TSC, TSC_ADJUST: the TSC's offset may have changed
        if accepted:
            pc = self.pc()
            self.set_reg(self._pc_name(), pc + 2)

    # -- RDMSR ------------------------------------------------------------------------
    def trap_rdmsr_at(self, address: int) -> None:
        """Trap the ``rdmsr`` (0F 32) at ``address``, as ``wrmsr``: the hypervisor answers
        it (or raises #GP), not unicorn's CPU model, which reads unknown MSRs as 0."""
        if address in self._rdmsr_hooks:
            return
        self._rdmsr_hooks[address] = self.add_code_trap(self._on_rdmsr, address)

    def _on_rdmsr(self, uc: Uc, address: int, size: int, user: object) -> None:
        try:
            code = self.code_at(address, 2)
        except UcError:
            return
        if code != b"\x0f\x32":
            return
        value = self.exits.msr_read(self, self.reg("ecx"))
        if value is None:
            return  # the handler raised the fault
        pc = self.pc()
        wide = self._uc64  # in long mode the CPU clears the upper halves of RAX and RDX
        self.set_reg("rax" if wide else "eax", value & 0xFFFF_FFFF)
        self.set_reg("rdx" if wide else "edx", (value >> 32) & 0xFFFF_FFFF)
        self.set_reg(self._pc_name(), pc + 2)

    def watch_new_code_for_wrmsr(self) -> None:
        """Firmware that copies or relocates itself (SeaBIOS) executes code no scan saw:
        look at every newly translated block for ``wrmsr`` and trap it (the hook runs
        once per translation, not per execution)."""
        if self._watching_new_code:
            return
        self._watching_new_code = True
        self._entry_scanned = False
        python = _EDGE_CB(self._raw_new_tb)
        thunk = (None if not self.native_budget else
                 _native_newtb64() if self.long_mode else _native_newtb())
        if thunk is None:
            self._add_native_hook(uc_const.UC_HOOK_EDGE_GENERATED, python)
            return
        t = self._newtb
        t.python = ctypes.cast(python, ctypes.c_void_p).value or 0
        t.mem_read = ctypes.cast(_uclib().uc_mem_read, ctypes.c_void_p).value or 0
        if _uc_vmem_read is not None:
            t.vmem_read = ctypes.cast(_uc_vmem_read, ctypes.c_void_p).value or 0
        t.seen = ctypes.addressof(self._newtb_seen)
        t.enabled = (_NEWTB_IDENTITY if self._identity_tlb or self.long_mode
                     else self._newtb_paged())
        self._keep.append(python)
        self._add_native_hook(uc_const.UC_HOOK_EDGE_GENERATED, thunk, user=ctypes.addressof(t))

    def _newtb_paged(self) -> int:
        """The filter's mode without the identity TLB: through the guest's page tables
        where unicorn can read them, else off."""
        return _NEWTB_PAGING if self._newtb.vmem_read else _NEWTB_OFF

    def native_new_blocks(self) -> int:
        """How many new blocks the native filter has answered without Python."""
        return int(self._newtb.answered)

    # -- fast guest stores: unicorn's virtual TLB while paging is off ---------------------
    def identity_tlb_until_paging(self) -> bool:
        """Translate linear to physical addresses 1:1 with unicorn's virtual TLB and a
        native fill callback, until the guest turns paging on; True if enabled.

        Why: unicorn 2.1.4 keeps its dirty-memory bitmaps stubbed, so a store through a
        TLB entry that is also executable always takes the slow path (~47 ns, see
        BENCHMARKS.md), and with paging off x86 makes every entry executable. Here
        data pages are entered read-write only, so after the first store to a page its
        stores run at full speed. A page that held code is entered executable, so
        stores to it stay checked for self-modifying code exactly as before (until
        it runs no code for CODE_AGING_PERIOD: _age_code_pages).

        Sound only while CR0.PG is clear: every ``mov cr, r`` in new code gets a trap,
        and one that sets PG (or a CR0 with PG found before a run) switches this vCPU
        back to unicorn's own page walk for good. Not a Xen mechanism: an emulator's."""
        fill = _native_fill()
        if (fill is None or self.long_mode or self._identity_tlb
                or not hasattr(self.uc, "ctl_set_tlb_mode")):  # unicorn before 2.1
            return self._identity_tlb
        # a bit per page below 4 GiB that held code, then one per page code was fetched
        # from since the last aging (_age_code_pages; the identity fill keeps it)
        self._code_pages = (ctypes.c_uint64 * (2 * _CODE_PAGE_WORDS))()
        handle = ctypes.c_size_t()
        err = _uclib().uc_hook_add(
            self._uch, ctypes.byref(handle), uc_const.UC_HOOK_TLB_FILL, ctypes.c_void_p(fill),
            ctypes.cast(self._code_pages, ctypes.c_void_p), ctypes.c_uint64(1),
            ctypes.c_uint64(0))
        if err != uc_const.UC_ERR_OK:
            return False
        self._keep.append(handle)
        self._identity_hook = handle
        self.watch_new_code_for_wrmsr()  # the scan that finds ``mov cr0`` and code pages
        self.uc.ctl_set_tlb_mode(uc_const.UC_TLB_VIRTUAL)
        self._identity_tlb = True
        self._crw.identity = 1
        self._seen_code_pages.clear()
        ctypes.memset(self._newtb_seen, 0, ctypes.sizeof(self._newtb_seen))
        self._newtb.enabled = _NEWTB_IDENTITY if self._newtb.python else _NEWTB_OFF
        return True

    def _leave_identity_tlb(self) -> None:
        """Paging is (about to be) on: the native page walk from now on (``_enter_walk``),
        or unicorn's own where that cannot run."""
        self._identity_tlb = False
        self._crw.identity = 0
        self._newtb.enabled = self._newtb_paged() if self._newtb.python else _NEWTB_OFF
        if not self._enter_walk():
            self.uc.ctl_set_tlb_mode(uc_const.UC_TLB_CPU)
        self.flush_tlb()

    def _enter_walk(self) -> bool:
        """Keep unicorn's virtual TLB once paging is on, filled by a native page walk
        (walk.c, native.S .text.walk) in place of the identity callback; True if so.

        Why: with QEMU's own walk every entry for RAM is executable, so every store
        takes unicorn's slow path (~40 ns, BENCHMARKS.md); the walk here enters data
        pages read-write only, as the identity TLB does with paging off. It is QEMU's
        walk for what it can judge alone: it reads the guest's tables, sets their
        accessed and dirty bits, and refuses an access with its verdict. A page fault
        then becomes the slice's #PF with QEMU's error code and CR2
        (``_walk_refused``); anything else (reserved bits, 1 GiB pages, SMAP,
        protection keys, 5-level paging, tables outside RAM, a descriptor table's
        access at CPL 3) runs again on QEMU's walk for the rest of the slice.
        Not a Xen mechanism: an emulator's."""
        walk = _native_at(_WALK_OFFSET)
        flush = getattr(_uclib(), "tlb_flush_x86_64", None)
        layout = _walk_layout()
        cpu = _cpu_object(self.uc) if layout else 0
        if (walk is None or flush is None or not cpu or self._identity_hook is None
                or self._code_pages is None or not _ENV_PATH):
            return False
        env = cpu + _ENV_PATH[1]
        w = _Walk(cr0=env + layout["cr0"], cr3=env + layout["cr3"], cr4=env + layout["cr4"],
                  efer=env + layout["efer"], hflags=env + layout["hflags"],
                  code_pages=ctypes.addressof(self._code_pages),
                  flush=ctypes.cast(flush, ctypes.c_void_p).value or 0, cpu=cpu)
        self._walk = w
        self._walk_host = None
        for begin, end, host in self._host_maps:
            self._walk_map(begin, end, ctypes.addressof(host))
        err = _uclib().uc_hook_del(self._uch, self._identity_hook)
        handle = ctypes.c_size_t()
        if err == uc_const.UC_ERR_OK:
            err = _uclib().uc_hook_add(
                self._uch, ctypes.byref(handle), uc_const.UC_HOOK_TLB_FILL,
                ctypes.c_void_p(walk), ctypes.cast(ctypes.byref(w), ctypes.c_void_p),
                ctypes.c_uint64(1), ctypes.c_uint64(0))
        self._identity_hook = None
        if err != uc_const.UC_ERR_OK:
            self._walk = None
            return False
        self._keep.append(handle)
        self._walk_fresh = True
        return True

    def _walk_map(self, begin: int, end: int, host: int) -> None:
        """Tell the page walk that guest-physical ``begin``..``end`` (page-aligned, as
        unicorn maps) is RAM at host address ``host`` (0: no longer RAM)."""
        first, last = begin >> 12, min(end, _WALK_RAM_LIMIT) + 0xFFF >> 12
        if first >= last or self._walk is None:
            return
        table = self._walk_host
        if table is None or len(table) < last:
            grown = (ctypes.c_uint64 * max(last, 2 * len(table) if table else 0))()
            if table is not None:
                ctypes.memmove(grown, table, ctypes.sizeof(table))
            self._walk_host = table = grown
            self._walk.host, self._walk.pages = ctypes.addressof(grown), len(grown)
        table[first:last] = (range(host, host + ((last - first) << 12), 4096)
                             if host else bytes(last - first))

    def _walk_refused(self) -> None:
        """The page walk refused an access (unicorn ended the run at its instruction
        with UC_ERR_EXCEPTION): the guest's #PF, or QEMU's walk for the rest of the
        slice (``_retranslated``: the run starts again at the same instruction)."""
        w = self._walk
        assert w is not None
        verdict, w.verdict = w.verdict, 0
        addr = self._invalid_addr()
        if verdict == 3 and self._descriptor_table_page(addr):
            verdict = 2
        if verdict not in (1, 3):
            self.uc.ctl_set_tlb_mode(uc_const.UC_TLB_CPU)
            self.flush_tlb()
            self._walk_paused = True
            self._retranslate = True
            return
        # as QEMU's handle_mmu_fault raises it: CR2, the error code, at the instruction
        self.set_reg("cr2", addr)
        self.fault_cr2 = addr
        self.fault_error_code = w.error_code
        self.fault_pc = self.pc()
        self.fault_is_cpu_exception = True
        self._fault = (VEC_PF, f"{VECTOR_NAMES[VEC_PF]} at {addr:#x}")

    def _invalid_addr(self) -> int:
        """The address of the access unicorn's TLB fill last refused (uc_struct's
        invalid_addr: the fault's CR2; the fill callback sees only its page)."""
        return struct.unpack("<Q", ctypes.string_at(
            self._uch.value + _walk_layout()["invalid_addr"], 8))[0]

    def _descriptor_table_page(self, addr: int) -> bool:
        """Whether the page of ``addr`` holds part of the GDT, the LDT or the TSS, which
        the CPU reads with supervisor rights even at CPL 3."""
        page = addr & ~0xFFF
        for reg in (X.UC_X86_REG_GDTR, X.UC_X86_REG_LDTR, X.UC_X86_REG_TR):
            base, limit = self._table_register(reg)
            if base <= page + 0xFFF and page <= base + limit:
                return True
        return False

    def _before_run(self) -> None:
        if self._ones_at_first_run:
            self._cover_unassigned_at_start()
        if self._walk_fresh:
            # the firmware's and the loader's code pages are the OS's data now: with all
            # translated code dropped, the bitmap starts again (the walk marks a page
            # again, and drops the TLB, when code is next fetched from it)
            self._walk_fresh = False
            self.flush_code()
            ctypes.memset(self._code_pages, 0, ctypes.sizeof(self._code_pages))
            self.flush_tlb()
        if self._walk is not None:
            # the page walk again after a slice on QEMU's, unless the guest uses what
            # only QEMU's judges (SMAP, protection keys, 5-level paging)
            judged = not self.reg("cr4") & _CR4_NOT_WALKED
            if self._walk_paused == judged:
                self._walk_paused = not judged
                self.uc.ctl_set_tlb_mode(uc_const.UC_TLB_CPU if self._walk_paused
                                         else uc_const.UC_TLB_VIRTUAL)
                self.flush_tlb()
        if self._identity_tlb and self.reg("cr0") & CR0_PG:  # a context restored, a reset
            self._leave_identity_tlb()
        if not self._entry_scanned:
            # unicorn reports every new block but an engine's very first: scan from the
            # entry point to the end of the next page for ``mov cr``, ``rdtsc``,
            # ``wrmsr``, ``rdmsr`` and ``rdrand`` (a block is shorter)
            self._entry_scanned = True
            code = b""
            with contextlib.suppress(UcError):
                start = self._segment("cs")[0] + self.reg("eip")
                for size in (2 * PAGE_SIZE - (start & 0xFFF), PAGE_SIZE - (start & 0xFFF)):
                    with contextlib.suppress(UcError):
                        code = self.mem(start, size)
                        break
            if not code:  # cannot read what will run first: be safe
                if self._identity_tlb:
                    self._leave_identity_tlb()
                return
            if self._identity_tlb:
                self._note_code_page(start, len(code))
                self._trap_mov_cr(start, code)
            if self.long_mode:
                self._trap_rdtsc(start, code)
            else:  # (a PV kernel's wrmsr and rdmsr are #GP in ring 3)
                for opcode, trap, hooks in ((b"\x0f\x30", self.trap_wrmsr_at, self._wrmsr_hooks),
                                            (b"\x0f\x32", self.trap_rdmsr_at, self._rdmsr_hooks)):
                    pos = code.find(opcode)
                    while pos >= 0 and len(hooks) < MAX_CODE_TRAPS:
                        trap(start + pos)
                        pos = code.find(opcode, pos + 1)
            self._trap_rdrand(start, code)

    def _age_code_pages(self) -> None:
        """Pages that held code but ran none since the last aging become data pages
        again: their translated code is dropped and their bits cleared, so that stores
        to them leave unicorn's slow path. Firmware needs it: SeaBIOS's real-mode
        handlers run on a stack in a page its start-up code once ran from, so every
        ``int 16h`` a polling program made pushed its registers through that path
        (BENCHMARKS.md, "Code pages that age"). Every CODE_AGING_PERIOD virtual
        instructions, while the identity TLB keeps the bitmap (paging off).

        The fill callback marks a page "fetched" whenever it enters it for code, and
        the TLB is flushed here: translated code that runs at all after this point is
        looked up again (a flush empties QEMU's jump cache, and TBs chain only inside
        a page), so its page is entered for a fetch and marked before the next aging.
        Dropping translated code changes no guest-visible state (the code is
        translated again if it runs), only speed; the firmware boots' traces are the
        same whatever the period (tests/test_determinism.py). Not done once paging is
        on: there it cost more translation than it saved stores (Debian's Linux as a
        PVH guest, 4 ms period: 11.3-12.0 s to its prompt against 10.5-10.6 s), and a
        dead page's code can only be dropped with all the rest (invalidate_code_phys).
        Not a Xen mechanism: an emulator's (QEMU drops a page's code protection when
        its last block goes, tlb_unprotect_code; unicorn 2.1.4 stubs that out)."""
        self._unaged = 0
        pages = self._code_pages
        if pages is None or not self._identity_tlb:
            return
        size = _CODE_PAGE_WORDS * 8
        base, seen = ctypes.addressof(pages), ctypes.addressof(self._newtb_seen)
        both = ctypes.string_at(base, 2 * size)
        ctypes.memset(base + size, 0, size)
        for at in range(0, size, _AGING_CHUNK):   # (most of the bitmap is zeros)
            chunk = both[at:at + _AGING_CHUNK]
            if chunk == _AGING_ZEROS:
                continue
            held = int.from_bytes(chunk, "little")
            dead = held & ~int.from_bytes(both[size + at:size + at + _AGING_CHUNK], "little")
            if not dead:
                continue
            ctypes.memmove(base + at, (held & ~dead).to_bytes(_AGING_CHUNK, "little"),
                           _AGING_CHUNK)
            kept = int.from_bytes(ctypes.string_at(seen + at, _AGING_CHUNK), "little") & ~dead
            ctypes.memmove(seen + at, kept.to_bytes(_AGING_CHUNK, "little"), _AGING_CHUNK)
            first = at * 8
            while dead:
                low = (dead & -dead).bit_length() - 1       # a run of dead pages
                rest = dead >> low
                length = (~rest & (rest + 1)).bit_length() - 1
                page = first + low
                self.invalidate_code_phys(page << 12, (page + length) << 12)
                self._seen_code_pages.difference_update(range(page, page + length))
                self.aged_code_pages += length
                dead &= ~(((1 << length) - 1) << low)
        self.flush_tlb()

    def _note_code_page(self, pc: int, size: int) -> None:
        """A new block: if it is the first code in its page, drop the TLB so that no
        read-write entry for the page outlives it (the native fill enters the page
        executable from now on, in every MMU mode)."""
        first, last = pc >> 12, (pc + size - 1) >> 12
        if first not in self._seen_code_pages or last not in self._seen_code_pages:
            self._seen_code_pages.update((first, last))
            seen = self._newtb_seen    # the native filter's copy, below 4 GiB
            for page in (first, last):
                if page < 1 << 20:
                    seen[page >> 6] |= 1 << (page & 63)
            self.flush_tlb()

    def _trap_matches(self, pc: int, code: bytes, pattern: re.Pattern[bytes], anchor: bytes,
                      hooks: dict[int, int | None], callback: Callback) -> tuple[int, bool]:
        """A code trap at every place each ``pattern`` match in ``code`` (at linear ``pc``)
        may start: the prefixes before its last ``anchor`` byte and that byte (a code hook
        fires only where an instruction really starts). Returns how many were added and
        whether all were (False: ``hooks`` reached MAX_CODE_TRAPS first)."""
        added = 0
        for m in pattern.finditer(code):
            first = pc + m.start()
            for start in range(first, first + m.group().rindex(anchor) + 1):
                if start in hooks:
                    continue
                if len(hooks) >= MAX_CODE_TRAPS:
                    return added, False
                hooks[start] = self.add_code_trap(callback, start)
                added += 1
        return added, True

    def _trap_mov_cr(self, pc: int, code: bytes) -> bool:
        """Trap every move to a control register in ``code`` (at linear ``pc``); True if
        traps were added."""
        added, complete = self._trap_matches(pc, code, _MOV_TO_CR, b"\x0f",
                                             self._mov_cr_hooks, self._on_mov_cr)
        if not complete:  # cannot watch for paging any more: stop now
            self.request_stop(ExitReason.YIELD)
            self._leave_identity_tlb()
        return added > 0

    # -- RDTSC ----------------------------------------------------------------------------
    def _trap_rdtsc(self, pc: int, code: bytes) -> bool:
        """Trap every ``rdtsc``/``rdtscp`` in ``code``: unicorn's TSC is the host's cycle
        counter, which would make a guest that reads it (GRUB's clock) differ from run to
        run. True if traps were added."""
        return self._trap_matches(pc, code, _RDTSC, b"\x0f", self._rdtsc_hooks,
                                  self._on_rdtsc)[0] > 0

    def _on_rdtsc(self, uc: Uc, address: int, size: int, user: object) -> None:
        """Before ``rdtsc``/``rdtscp``: EDX:EAX from the hypervisor's TSC (ECX = TSC_AUX,
        0, for rdtscp) and on to the next instruction."""
        try:  # at most four prefixes and three opcode bytes, not past the page
            code = self.code_at(address, min(7, PAGE_SIZE - (address & 0xFFF)))
        except UcError:
            return  # let the CPU execute what is there
        i = _skip_prefixes(code)
        if code[i:i + 2] == b"\x0f\x31":
            length = i + 2
        elif code[i:i + 3] == b"\x0f\x01\xf9":
            length = i + 3
            self.set_reg("rcx" if self.long_mode else "ecx", 0)
        else:
            return  # the code changed since the scan, or not an instruction start
        tsc = self.exits.tsc(self) & 0xFFFF_FFFF_FFFF_FFFF
        pc = self.pc()
        wide = self._uc64
        # like the CPU, clear the upper halves of RAX and RDX in long mode (unicorn's EAX
        # write keeps them: Linux's rdtsc; shl $32,%rdx; or %rdx,%rax read garbage)
        self.set_reg("rax" if wide else "eax", tsc & 0xFFFF_FFFF)
        self.set_reg("rdx" if wide else "edx", tsc >> 32)
        self.set_reg(self._pc_name(), pc + length)

    # -- RDRAND -------------------------------------------------------------------------
    def _trap_rdrand(self, pc: int, code: bytes) -> bool:
        """Trap every ``rdrand`` to a register in ``code``; True if traps were added."""
        return self._trap_matches(pc, code, _RDRAND, b"\x0f", self._rdrand_hooks,
                                  self._on_rdrand)[0] > 0

    def _on_rdrand(self, uc: Uc, address: int, size: int, user: object) -> None:
        """Before ``rdrand r16/r32/r64``: a value from xenlab's own generator (rdrand_value:
        the vCPU's seed, the virtual TSC, the instruction's address), CF set (a value was
        ready), OF, SF, ZF, AF and PF clear, and on to the next instruction. unicorn
        would answer with the host's randomness. With a LOCK, REP or REPNE prefix the
        CPU raises #UD itself."""
        try:  # at most four prefixes, a REX, two opcode bytes and the ModRM byte
            code = self.code_at(address, min(8, PAGE_SIZE - (address & 0xFFF)))
        except UcError:
            return  # let the CPU execute what is there
        i = _skip_prefixes(code)
        if {0xF0, 0xF2, 0xF3} & set(code[:i]):
            return
        wide = self.code64()
        rex = code[i] if wide and i < len(code) and 0x40 <= code[i] <= 0x4F else 0
        i += bool(rex)
        if code[i:i + 2] != b"\x0f\xc7" or len(code) < i + 3 or code[i + 2] & 0xF8 != 0xF0:
            return  # the code changed since the scan, or not an instruction start
        reg = (code[i + 2] & 7) | (8 if rex & 1 else 0)
        if rex & 8:
            width = 8
        else:
            try:
                code16 = not wide and (not self.reg("cr0") & 1 or not self._segment("cs")[1])
            except UcError:
                return
            width = 2 if code16 != (0x66 in code[:i]) else 4
        value = rdrand_value(self.name, self.exits.tsc(self), address)
        names = _GPR64 if self._uc64 else _GPR32
        if width == 2:
            value = (self.reg(names[reg]) & ~0xFFFF) | (value & 0xFFFF)
        elif width == 4:
            value &= 0xFFFF_FFFF   # zero-extended into the whole register, as a CPU does
        self.set_reg(names[reg], value)
        flags = "rflags" if self._uc64 else "eflags"
        self.set_reg(flags, (self.reg(flags) & ~_RDRAND_CLEARED) | 1)
        self.set_reg(self._pc_name(), self.pc() + i + 3)

    def _on_mov_cr(self, uc: Uc, address: int, size: int, user: object) -> None:
        """Before a ``mov crN, r32``: if it is CR0 and sets PG, leave the identity TLB
        (the instruction itself then flushes unicorn's TLB, as on a real CPU)."""
        if not self._identity_tlb:
            return
        try:
            code = self.mem(address, 8)  # a code hook's address is linear (CS base + EIP)
        except UcError:
            self._leave_identity_tlb()  # cannot tell: be safe
            return
        i = _skip_prefixes(code)
        if code[i:i + 2] != b"\x0f\x22":
            return  # not an instruction start the scan guessed right
        modrm = code[i + 2]
        if (modrm >> 3) & 7 == 0 and self.reg(_GPR32[modrm & 7]) & CR0_PG:
            self._leave_identity_tlb()

    def code_at(self, addr: int, size: int, *, prot: int = uc_const.UC_PROT_EXEC) -> bytes:
        """Bytes at linear ``addr``: through the guest's page tables while paging is on
        (a PV kernel's addresses are virtual, and an HVM guest's once it sets CR0.PG),
        else guest-physical. UcError if unmapped."""
        if (_uc_vmem_read is None or self._identity_tlb
                or not (self.long_mode or self.reg("cr0") & CR0_PG)):
            return self.mem(addr, size)
        buf = self._membuf if size <= 4096 else ctypes.create_string_buffer(size)
        err = _uc_vmem_read(self._uch, ctypes.c_uint64(addr), prot, buf,
                            ctypes.c_size_t(size))
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        return ctypes.string_at(buf, size)

    def _on_new_tb(self, uc: Uc, cur: object, prev: object, user: object) -> None:
        pc, size = int(cur.pc), int(cur.size)  # type: ignore[attr-defined]
        if not size:
            return
        try:
            code = self.code_at(pc, size)
        except UcError:
            return
        if self.long_mode:  # a PV kernel: wrmsr and port I/O are #GP in ring 3 anyway
            if b"\x0f" not in code:
                return
            if self._trap_rdtsc(pc, code):
                uc.ctl_remove_cache(pc, pc + size)
                self.request_stop(ExitReason.YIELD)
            elif self._trap_rdrand(pc, code):
                uc.ctl_remove_cache(pc, pc + size)   # the same slice goes on
                self._retranslate = True
                uc.emu_stop()
            return
        if self._identity_tlb:
            self._note_code_page(pc, size)
        if _ANY_CODE_TRAP.search(code) is None:  # most blocks: nothing to trap
            return
        pos = code.find(b"\x0f\x30")
        found = False
        while pos >= 0:
            if pc + pos not in self._wrmsr_hooks and len(self._wrmsr_hooks) < MAX_CODE_TRAPS:
                self.trap_wrmsr_at(pc + pos)
                found = True
            pos = code.find(b"\x0f\x30", pos + 1)
        rdmsr = False
        pos = code.find(b"\x0f\x32")
        while pos >= 0:
            if pc + pos not in self._rdmsr_hooks and len(self._rdmsr_hooks) < MAX_CODE_TRAPS:
                self.trap_rdmsr_at(pc + pos)
                rdmsr = True
            pos = code.find(b"\x0f\x32", pos + 1)
        rdrand = self._trap_rdrand(pc, code)
        if (((self._identity_tlb and self._trap_mov_cr(pc, code)) or rdmsr or rdrand)
                and not found):
            # only the trap changed, not what the guest sees: continue the same slice
            uc.ctl_remove_cache(pc, pc + size)
            self._retranslate = True
            uc.emu_stop()
        # the instruction starts at the F3 or at one of the prefixes before it
        found |= self._trap_matches(pc, code, _REP_STRING_IO, b"\xf3", self._string_io_hooks,
                                    self._on_string_io)[0] > 0
        if found:  # retranslate with the trap in place, before this block runs at all
            uc.ctl_remove_cache(pc, pc + size)
            self.request_stop(ExitReason.YIELD)

    # -- rep ins / rep outs -------------------------------------------------------------
    def _on_string_io(self, uc: Uc, address: int, size: int, user: object) -> None:
        """``rep ins``/``rep outs``: one exit for the whole string, as VT-x reports it and
        Xen's hvmemul_rep_ins/outs handle it, instead of one per element. The hypervisor
        moves as many elements as it can (``io_rep``); the rest, if any, run one by one."""
        try:
            self._string_io(address)
        except UcError:
            return  # let the CPU execute (and fault on) what is there

    def _string_io(self, address: int) -> None:
        cr0 = self.reg("cr0")
        if cr0 & 0x8000_0000:  # paging: linear is not physical; leave it to the CPU
            return
        eflags = self.reg("eflags")
        if eflags & (1 << 10):  # DF: descending strings, rare; element by element
            return
        code16 = not cr0 & 1 or not self._segment("cs")[1]
        eip = self.reg("eip")
        linear = self._segment("cs")[0] + eip
        code = bytes(self.uc.mem_read(linear, 6))
        opsize = addrsize = rep = False
        seg = ""
        i = 0
        while i < 4 and code[i] in _PREFIXES:
            b = code[i]
            opsize |= b == 0x66
            addrsize |= b == 0x67
            rep |= b == 0xF3
            seg = _SEG_OVERRIDE.get(b, seg)
            i += 1
        op = code[i]
        if not rep or op not in (0x6C, 0x6D, 0x6E, 0x6F):
            return
        width = 1 if op in (0x6C, 0x6E) else (2 if code16 != opsize else 4)
        addr16 = code16 != addrsize
        write = op >= 0x6E  # outs: memory to port
        count_reg, index_reg = ("ecx", "esi" if write else "edi")
        mask = 0xFFFF if addr16 else 0xFFFF_FFFF
        count = self.reg(count_reg) & mask
        if count == 0:
            return
        index = self.reg(index_reg)
        base = self._segment((seg or "ds") if write else "es")[0]
        port = self.reg("edx") & 0xFFFF
        done = self.exits.io_rep(self, port, width, count,
                                 (base + (index & mask)) & 0xFFFF_FFFF, write)
        if done <= 0:
            return
        done = min(done, count)
        self.set_reg(count_reg, (self.reg(count_reg) & ~mask) | ((count - done) & mask))
        self.set_reg(index_reg, (index & ~mask) | ((index + done * width) & mask))
        if done == count:  # finished: continue after the instruction
            self.set_reg("eip", (eip + i + 1) & (0xFFFF if code16 else 0xFFFF_FFFF))

    def _segment(self, name: str) -> tuple[int, bool]:
        """(base, default-32-bit) of a segment register: selector << 4 in real mode, the
        GDT descriptor in protected mode (no LDT)."""
        sel = self.reg(name)
        if not self.reg("cr0") & 1:
            return sel << 4, False
        _s, gdt_base, limit, _f = self.uc.reg_read(X.UC_X86_REG_GDTR)
        off = sel & ~7
        if sel & 4 or off + 7 > limit:
            raise UcError(uc_const.UC_ERR_EXCEPTION)
        lo, hi = struct.unpack("<II", bytes(self.uc.mem_read(gdt_base + off, 8)))
        base = (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF00_0000)
        return base, bool(hi & (1 << 22))

    def scan_wrmsr(self, begin: int, data: bytes) -> int:
        """Trap every ``wrmsr`` found in ``data`` (code loaded at ``begin``); returns how many."""
        count = 0
        pos = data.find(b"\x0f\x30")
        while pos >= 0:
            self.trap_wrmsr_at(begin + pos)
            count += 1
            pos = data.find(b"\x0f\x30", pos + 1)
        return count

    # -- real mode interrupts -----------------------------------------------------
    def _read_real_mode_state(self) -> bool:
        """CR0, the IDTR (the IVT's base and limit), EFLAGS, CS, EIP, SS and ESP in one
        engine call; whether the CPU is in real mode (CR0.PE clear)."""
        err = _uc_reg_read_batch(self._uch, self._rm.read_ids, self._rm.read_ptrs, 7)
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        return not self._rm.cr0 & 1

    def _real_mode_intr(self, vector: int) -> bool:
        """``int n`` (or an exception) in real mode, with the fewest engine calls (the
        hot path: firmware and DOS-era code `int` all the time): False, having changed
        nothing, if the CPU is not in real mode."""
        if not self._read_real_mode_state():
            return False
        self._vector_through_ivt(vector)
        return True

    def deliver_real_mode_interrupt(self, vector: int) -> None:
        """Vector through the IVT as a real-mode CPU does (unicorn does not)."""
        self._read_real_mode_state()
        self._vector_through_ivt(vector)

    def _vector_through_ivt(self, vector: int) -> None:
        """With the state just read (_read_real_mode_state): push FLAGS, CS, IP on SS:SP,
        clear IF, TF, AC and RF, load CS:IP from the IVT entry, write the registers back
        (what the native callback, _RM_INTR_THUNK, does). A vector beyond the IVT's limit
        is a triple fault (#GP, then no vector for that either)."""
        ivt_base, ivt_limit = self._rm.idtr.base, self._rm.idtr.limit
        if vector * 4 + 3 > ivt_limit:
            self.raise_fault(VEC_DF, f"triple fault (interrupt {vector:#x} beyond the IVT "
                                     f"limit {ivt_limit:#x})")
            return
        regs = self._rm.regs
        flags, cs, ip, ss, sp = regs[0], regs[1], regs[2] & 0xFFFF, regs[3], regs[4] & 0xFFFF
        frame = struct.pack("<HHH", ip, cs, flags & 0xFFFF)  # FLAGS, CS, IP pushed in turn
        if self.write_watch is not None:
            for i in range(3):
                self.write_watch((ss << 4) + ((sp - 2 * (3 - i)) & 0xFFFF), 2)
        if sp >= 6:
            self._mem_write((ss << 4) + sp - 6, frame)
        else:  # the stack wraps inside its 64 KiB segment
            for i in range(3):
                self._mem_write((ss << 4) + ((sp - 2 * (3 - i)) & 0xFFFF), frame[2 * i:2 * i + 2])
        new_ip, new_cs = struct.unpack("<HH", self.mem(ivt_base + vector * 4, 4))
        # QEMU's do_interrupt_real: IF, TF, AC and RF cleared, only SP (ESP's low half)
        regs[0], regs[1], regs[2], regs[4] = (
            flags & ~(EFLAGS_IF | EFLAGS_TF | EFLAGS_AC | EFLAGS_RF), new_cs, new_ip,
            (regs[4] & ~0xFFFF) | ((sp - 6) & 0xFFFF))
        err = _uc_reg_write_batch(self._uch, self._rm.write_ids, self._rm.write_ptrs, 5)
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)

    def deliver_interrupt(self, vector: int) -> str | None:
        """Vector an external interrupt the way the CPU's current mode does (32-bit
        engines): None when delivered, else why the CPU could not."""
        if not self._sync_uc_mode() and not self.reg("cr0") & 1:
            self.deliver_real_mode_interrupt(vector)
            return None
        return self.deliver_exception(vector, None)

    # -- protected and long mode: the IDT -------------------------------------------------
    def exception_info(self) -> tuple[int, bool]:
        """For the exception QEMU just raised (read in the interrupt hook): its error code
        and whether it was a software interrupt (``int n``, ``int3``, ``into``), from the
        CPU state unicorn keeps but has no register for (_env_fields); (0, False) where
        this unicorn's layout was not found."""
        fields = _env_fields()
        if fields["error_code"] < 0:
            return 0, False
        ctx = self._context()
        error, is_int = struct.unpack_from(
            "<iI", ctypes.string_at(ctx.context.value + fields["error_code"], 8))
        return error & 0xFFFF_FFFF, bool(is_int)

    def _context(self) -> Any:
        """The CPU state as a uc_context, saved into one buffer made once."""
        if self._ctx is None:
            self._ctx = self.uc.context_save()
        else:
            self.uc.context_update(self._ctx)
        return self._ctx

    @staticmethod
    def context_regs_layout() -> tuple[int, int, int] | None:
        """Where the general registers and the lazy flags are in ``context_bytes`` (the
        module's ``context_regs_layout``)."""
        return context_regs_layout()

    def gprs(self) -> tuple[tuple[int, ...], int]:
        """The sixteen general registers in QEMU's order (RAX RCX RDX RBX RSP RBP RSI RDI
        R8..R15; the upper eight 0 in a 32-bit engine) and EFLAGS, in one batch."""
        if self._gpr_batch is None:
            vals = (ctypes.c_uint64 * 17)()
            base = ctypes.addressof(vals)
            self._gpr_batch = ((ctypes.c_int * 17)(*_GPRS64),
                               (ctypes.c_int * 9)(*_GPRS32), vals,
                               (ctypes.c_void_p * 17)(*(base + 8 * i for i in range(17))))
        ids64, ids32, vals, ptrs = self._gpr_batch
        if self._uc64:
            err = _uc_reg_read_batch(self._uch, ids64, ptrs, 17)
            if err != uc_const.UC_ERR_OK:
                raise UcError(err)
            return tuple(vals[:16]), vals[16]
        ctypes.memset(vals, 0, ctypes.sizeof(vals))
        err = _uc_reg_read_batch(self._uch, ids32, ptrs, 9)
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        return tuple(vals[:8]) + (0,) * 8, vals[8]

    def context_bytes(self) -> bytes:
        """The whole saved CPU context (unicorn's, QEMU's CPU state) as bytes: two are
        equal when every register, segment cache and hidden flag is."""
        ctx = self._context()
        return ctypes.string_at(ctx.context.value, ctx.size)

    def _set_cpl(self, cpl: int) -> bool:
        """Set the CPL QEMU keeps in hflags (see _env_fields), so that unicorn lets SS and
        CS be loaded with a more privileged ring's selectors, as an interrupt gate does."""
        offset = _env_fields()["hflags"]
        if offset < 0:
            return False
        ctx = self._context()
        at = ctx.context.value + offset
        hflags = struct.unpack("<I", ctypes.string_at(at, 4))[0]
        ctypes.memmove(at, struct.pack("<I", (hflags & ~3) | cpl), 4)
        self.uc.context_restore(ctx)
        return True

    def _write_linear(self, addr: int, data: bytes) -> None:
        """Write at linear ``addr`` (through the guest's page tables while paging is on)
        with supervisor rights; UcError if it does not map writable."""
        if _uc_vmem_write is None or self._identity_tlb or not self.reg("cr0") & CR0_PG:
            if self.write_watch is not None:    # (an exception's frame, paging off)
                self.write_watch(addr, len(data))
            self._mem_write(addr, data)
            return
        if _uc_vmem_write(self._uch, ctypes.c_uint64(addr), uc_const.UC_PROT_WRITE, data,
                          ctypes.c_size_t(len(data))) != uc_const.UC_ERR_OK:
            raise UcError(uc_const.UC_ERR_WRITE_UNMAPPED)

    def deliver_exception(self, vector: int, error_code: int | None, *,
                          software: bool = False) -> str | None:
        """Vector an exception or interrupt through the guest's IDT as the CPU does in
        protected and long mode (unicorn never runs QEMU's do_interrupt): a present
        32-bit (64-bit in long mode) interrupt or trap gate; a gate to a more
        privileged code segment switches to that ring's stack from the TSS (SS0:ESP0,
        RSP0 with a null SS; in long mode an IST entry always wins) and pushes the old SS
        and ESP first (long mode pushes them always, on a 16-byte aligned stack); then
        EFLAGS, CS, EIP and the error code; TF, NT, RF, VM and, for an interrupt gate,
        IF are cleared.

        A gate the CPU cannot use raises an exception of its own, with the IDT index in
        its error code (EXT set for an event the program did not ask for): #GP beyond
        the IDT's limit, for a wrong gate type or, for a software interrupt, a gate DPL
        below the CPL; #NP for a gate not present. Two contributory exceptions (#DE,
        #TS, #NP, #SS, #GP), or a #PF and then a contributory exception or #PF, make a
        #DF; an exception in delivering a #DF is a triple fault. The vector and error
        code delivered in the end are in ``delivered``. None when delivered, else why
        the CPU could not (a triple fault, or a table or stack it cannot reach)."""
        cpl = self.reg("cs") & 3
        rollback = None
        if cpl:  # the gate, the GDT, the TSS and the new stack are supervisor accesses
            rollback = self.uc.context_save()
            if not self._set_cpl(0):
                return "an interrupt in ring 3 (this unicorn's CPL field was not found)"
        nested: _IdtFault | None = None
        try:
            why = self._through_idt(vector, error_code, software, cpl)
        except UcError as err:
            why = f"a table or stack for vector {vector} is not mapped ({err})"
        except _IdtFault as fault:
            why, nested = str(fault), fault
        if why is not None and rollback is not None:
            self.uc.context_restore(rollback)
        if why is None:
            self._delivered = True
            self.delivered = (vector, error_code)
            return None
        if nested is None:
            return why
        if vector == VEC_DF:
            return f"triple fault: {why} in delivering a #DF"
        ext = 0 if software else 1
        if software:   # a fault: at the int instruction itself, not after it
            self._back_to_int_instruction(vector)
        second, error = nested.vector, nested.error | ext
        if not software and (
                (vector in _CONTRIBUTORY and second in _CONTRIBUTORY)
                or (vector == VEC_PF and (second in _CONTRIBUTORY or second == VEC_PF))):
            return self.deliver_exception(VEC_DF, 0)
        return self.deliver_exception(second, error)

    def _back_to_int_instruction(self, vector: int) -> None:
        """unicorn reports ``int n`` with the instruction pointer after it: go back over
        the instruction (``int3``, ``into``: one byte; ``int n``: two)."""
        name = "rip" if self._sync_uc_mode() else "eip"
        ip = self.reg(name)
        try:
            before = self.code_at(ip - 1, 1, prot=uc_const.UC_PROT_EXEC)[0]
        except UcError:
            before = -1
        one_byte = (vector, before) in ((VEC_BP, 0xCC), (VEC_OF, 0xCE))
        self.set_reg(name, ip - (1 if one_byte else 2))

    def _through_idt(self, vector: int, error_code: int | None, software: bool,
                     cpl: int) -> str | None:
        lm = self._sync_uc_mode()
        size = 16 if lm else 8
        base, limit = self._table_register(X.UC_X86_REG_IDTR)
        index = vector * 8 + 2    # the IDT index as a selector error code
        if not limit:             # no IDT at all: the caller reports the exception itself
            return "no IDT loaded"
        if vector * size + size - 1 > limit:
            raise _IdtFault(VEC_GP, index, f"vector {vector} is beyond the IDT limit "
                                          f"{limit:#x}")
        gate = self.code_at(base + vector * size, size, prot=uc_const.UC_PROT_READ)
        lo, hi = struct.unpack_from("<II", gate)
        gate_type = (hi >> 8) & 0x1F
        if gate_type not in (0x0E, 0x0F):
            raise _IdtFault(VEC_GP, index, f"IDT entry {vector} is not a "
                                          f"{64 if lm else 32}-bit interrupt or trap gate")
        if software and (hi >> 13) & 3 < cpl:
            raise _IdtFault(VEC_GP, index, f"IDT entry {vector}'s DPL is below the CPL")
        if not hi & (1 << 15):
            raise _IdtFault(VEC_NP, index, f"IDT entry {vector} is not present")
        selector = lo >> 16
        target = (lo & 0xFFFF) | (hi & 0xFFFF_0000)
        if lm:
            target |= struct.unpack_from("<I", gate, 8)[0] << 32
        gdt_base, gdt_limit = self._table_register(X.UC_X86_REG_GDTR)
        if selector & 4 or selector < 8 or (selector | 7) > gdt_limit:
            return f"IDT entry {vector}'s code selector {selector:#x} is not in the GDT"
        desc = struct.unpack("<I", self.code_at(gdt_base + (selector & ~7) + 4, 4,
                                                prot=uc_const.UC_PROT_READ))[0]
        new_cpl = cpl if desc & (1 << 10) else (desc >> 13) & 3  # conforming: the CPL stays
        if new_cpl > cpl:
            return f"IDT entry {vector} leads to a less privileged code segment"
        switch = new_cpl < cpl
        flags = self.reg("eflags")
        old_ss, old_cs = self.reg("ss"), self.reg("cs")
        old_sp, old_ip = (self.reg("rsp"), self.reg("rip")) if lm else (
            self.reg("esp"), self.reg("eip"))
        new_ss = old_ss
        tss = self.uc.reg_read(X.UC_X86_REG_TR)[1] if switch or (lm and hi & 7) else 0
        if lm:
            sp = old_sp
            if hi & 7:    # the gate's IST entry
                sp = struct.unpack("<Q", self.code_at(tss + 0x24 + 8 * ((hi & 7) - 1), 8,
                                                      prot=uc_const.UC_PROT_READ))[0]
            elif switch:  # RSP0..2
                sp = struct.unpack("<Q", self.code_at(tss + 4 + 8 * new_cpl, 8,
                                                      prot=uc_const.UC_PROT_READ))[0]
            if switch:
                new_ss = new_cpl   # a null selector with the new RPL
            sp &= ~0xF
            words = [old_ss, old_sp, flags, old_cs, old_ip]
            fmt, mask = "Q", 0xFFFF_FFFF_FFFF_FFFF
        else:
            sp = old_sp
            words = [flags, old_cs, old_ip]
            if switch:    # SS0:ESP0 (SS1:ESP1, SS2:ESP2)
                sp, new_ss = struct.unpack("<IH", self.code_at(tss + 4 + 8 * new_cpl, 6,
                                                                prot=uc_const.UC_PROT_READ))
                words = [old_ss, old_sp, *words]
            fmt, mask = "I", 0xFFFF_FFFF
        if error_code is not None:
            words.append(error_code & mask)
        data = struct.pack(f"<{len(words)}{fmt}", *reversed(words))
        sp = (sp - len(data)) & mask
        self._write_linear(sp, data)
        flags &= ~(EFLAGS_TF | EFLAGS_NT | EFLAGS_RF | EFLAGS_VM
                   | (EFLAGS_IF if gate_type == 0x0E else 0))
        if lm:
            self.set_reg("cs", selector)
            if switch:
                self.set_reg("ss", new_ss)
            self.set_reg("rsp", sp)
            self.set_reg("rflags", flags)
            self.set_reg("rip", target)
        else:
            if switch:
                self.set_reg("ss", new_ss)
            self.set_reg("esp", sp)
            self.set_reg("cs", selector)
            self.set_reg("eflags", flags)
            self.set_reg("eip", target)
        return None

    def translate(self, linear: int, prot: int = uc_const.UC_PROT_READ) -> int | None:
        """Guest-physical address of ``linear`` through the guest's page tables, or None
        if it does not map (for the #PF error code's P bit)."""
        if _uc_vmem_translate is None:
            return None
        out = ctypes.c_uint64()
        err = _uc_vmem_translate(self._uch, ctypes.c_uint64(linear), prot, ctypes.byref(out))
        return int(out.value) if err == uc_const.UC_ERR_OK else None

    def setup_flat32(self, *, gdt_base: int, eip: int, ebx: int = 0) -> None:
        """32-bit flat protected mode, paging off (how Xen starts hvmloader): the GDT at
        ``gdt_base`` must hold a flat code descriptor at 0x08 and data at 0x10."""
        self.uc.reg_write(X.UC_X86_REG_GDTR, (0, gdt_base, 23, 0))
        self.uc.reg_write(X.UC_X86_REG_CR0, 0x11)
        self.uc.reg_write(X.UC_X86_REG_CS, 0x08)
        for reg in (X.UC_X86_REG_DS, X.UC_X86_REG_ES, X.UC_X86_REG_SS, X.UC_X86_REG_FS,
                    X.UC_X86_REG_GS):
            self.uc.reg_write(reg, 0x10)
        self.uc.reg_write(X.UC_X86_REG_EIP, eip)
        self.uc.reg_write(X.UC_X86_REG_EBX, ebx)
        self.uc.reg_write(X.UC_X86_REG_EFLAGS, 0x2)

    def fill_unassigned_with_ones(self) -> None:
        """Unassigned physical memory reads as all ones and drops writes, as on a real
        bus: on first touch a page becomes an MMIO page whose callbacks (native where
        they can run) answer every read with ones and drop every write (firmware probes
        for memory this way).

        The hook covers only what is unassigned when the vCPU first runs (below 4 GiB)
        and whatever is unmapped later, not the guest's RAM: unicorn 2.1.4 keeps every
        store to a page that any memory hook covers on its slow path."""
        self._ones_at_first_run = True

    def _cover_unassigned(self, first: int, last: int) -> None:
        """Make the all-ones hook cover guest-physical ``first``..``last`` (inclusive)."""
        if any(f <= first and last <= la for f, la, _h in self._ones_hooks):
            return
        if len(self._ones_hooks) >= MAX_UNASSIGNED_HOOKS:  # fragmented: one hook for all
            for _f, _la, handle in self._ones_hooks:
                self.uc.hook_del(handle)
                self._hooks.remove(handle)
            self._ones_hooks.clear()
            first, last = 0, (1 << 32) - 1
        handle = self.uc.hook_add(uc_const.UC_HOOK_MEM_UNMAPPED, self._on_unmapped, None,
                                  first, last)
        self._ones_hooks.append((first, last, handle))
        self._hooks.append(handle)

    def _cover_unassigned_at_start(self) -> None:
        """Before the first run: every gap in the guest-physical map below 4 GiB."""
        self._ones_at_first_run = False
        at = 0
        for begin, end, _perms in sorted(self.uc.mem_regions()):
            if begin >= 1 << 32:
                break
            if begin > at:
                self._cover_unassigned(at, begin - 1)
            at = max(at, end + 1)
        if at < 1 << 32:
            self._cover_unassigned(at, (1 << 32) - 1)

    def _on_unmapped(self, uc: Uc, access: int, address: int, size: int, value: int,
                     user: object) -> bool:
        if access == uc_const.UC_MEM_FETCH_UNMAPPED or address >= 1 << 32:
            return False
        page = address & ~0xFFF
        native = _native_unassigned()
        try:
            if native is None:
                uc.mmio_map(page, PAGE_SIZE, _read_ones, None, _drop_write, None)
            else:
                read, write = native
                err = _uclib().uc_mmio_map(self._uch, ctypes.c_uint64(page),
                                           ctypes.c_size_t(PAGE_SIZE), ctypes.c_void_p(read),
                                           None, ctypes.c_void_p(write), None)
                if err != uc_const.UC_ERR_OK:
                    raise UcError(err)
        except UcError:
            return False
        self.mapped.append((page, PAGE_SIZE))
        return True

    def setup_real_mode(self, cs: int, ip: int) -> None:
        """Reset state: real mode, CS:IP as given (the reset vector is F000:FFF0)."""
        self.uc.reg_write(X.UC_X86_REG_IDTR, (0, 0, 0x3FF, 0))  # the IVT at 0, 256 vectors
        self.uc.reg_write(X.UC_X86_REG_CR0, 0x10)
        self.uc.reg_write(X.UC_X86_REG_CS, cs)
        for reg in (X.UC_X86_REG_DS, X.UC_X86_REG_ES, X.UC_X86_REG_SS):
            self.uc.reg_write(reg, 0)
        self.uc.reg_write(X.UC_X86_REG_EIP, ip)

    def close(self) -> None:
        """Release the engine (a destroyed domain's vCPU)."""
        for handle in self._hooks:
            with contextlib.suppress(UcError):
                self.uc.hook_del(handle)
        self._hooks.clear()


Callback = Callable[..., object]
