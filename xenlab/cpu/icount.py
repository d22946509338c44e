"""Exact instruction counts for one vCPU at full speed: count, stop before instruction N.

``InstructionCounter(cpu)`` adds one code hook over every address to the vCPU's
unicorn engine. The hook is a few bytes of native x86-64 code (like the budget
callback of ``xenlab.cpu.x86``): no Python runs per instruction. For each
instruction the vCPU starts it

* adds one to ``count`` (an instruction that faults, or a ``rep`` iteration, is
  one start: replayed from the same state, the count comes out the same);
* keeps its linear address in a ring of the last ``RING`` (``recent()``);
* if ``count`` has already reached the target set with ``stop_before(n)``, or
  the instruction is at the breakpoint's address (``break_at``), counts
  nothing, sets ``reached`` and stops the CPU before the instruction runs. It
  also disarms the slice's interrupt window, so that ``X86Vcpu.run`` returns
  without running anything more; the caller, who set the target, knows
  why the run ended.

unicorn checks for a stop after every code hook, so with the counter on a stop
that a VM exit requests takes effect at the next instruction rather than at the
end of its block: runs with the counter on are deterministic among themselves,
and a few slices may end some instructions sooner than in a run without it.

Where native code cannot run (not x86-64 Linux, a W^X policy) the same hook is a
Python callback: exact, about a hundred times slower.

Real Xen: none (the hardware counts: performance counters, the VMX preemption
timer); QEMU's counterpart is ``-icount`` (accel/tcg/translator.c ``gen_tb_start``,
the instruction budget in ``icount_decr``) and record/replay's instruction counts
(replay/replay.c ``replay_get_current_icount``)
"""

from __future__ import annotations

import ctypes
import mmap
import platform
import sys
from collections.abc import Callable

import unicorn
from unicorn import UcError
from unicorn import unicorn_const as uc_const

from xenlab.cpu.x86 import X86Vcpu

__all__ = ["RING", "InstructionCounter"]

#: How many of the last instructions' addresses ``recent()`` can give.
RING = 16
NEVER = (1 << 64) - 1


#: Bits of the bitmap of addresses that have a code trap (indexed by an address's low 16)
TRAP_BITS = 1 << 16


class _Counter(ctypes.Structure):
    """What the native hook reads and writes (offsets are in its code below)."""
    _fields_ = (("count", ctypes.c_uint64), ("target", ctypes.c_uint64),
                ("stop", ctypes.c_uint64), ("window", ctypes.c_uint64),
                ("reached", ctypes.c_uint64), ("brk", ctypes.c_uint64),
                ("brk_after", ctypes.c_uint64), ("ring", ctypes.c_uint64 * RING),
                ("trap", ctypes.c_uint64), ("traps", ctypes.c_uint64 * (TRAP_BITS // 64)))


# The native code hook; its source is xenlab/cpu/native.S's .text.icount (tests/test_cpu.py
# assembles it and compares).
# void cb(uc_engine *uc /*rdi*/, uint64_t address /*rsi*/, uint32_t size /*edx*/,
#         struct _Counter *c /*rcx*/)
_CODE = bytes.fromhex(
    "488b01"          # mov  rax, [rcx]          ; count
    "483b4108"        # cmp  rax, [rcx+8]        ; target reached?
    "7332"            # jae  stop
    "483b7128"        # cmp  rsi, [rcx+40]       ; the breakpoint's address?
    "7506"            # jne  count
    "483b4130"        # cmp  rax, [rcx+48]       ; ... and armed (count >= brk_after)?
    "7326"            # jae  stop
    "4189c0"          # count: mov r8d, eax
    "4183e00f"        # and  r8d, 15             ; RING - 1
    "4a8974c138"      # mov  [rcx+r8*8+56], rsi  ; ring[count % RING] = address
    "48ff01"          # inc  qword [rcx]         ; count += 1
    "0fb7c6"          # movzx eax, si            ; the address's low 16 bits
    "480fa381c0000000"  # bt [rcx+192], rax      ; a code trap there?
    "7201"            # jc   trap
    "c3"              # ret
    "488b81b8000000"  # trap: mov rax, [rcx+184] ; the traps' dispatcher (Python)
    "ffe0"            # jmp  rax                 ; tail call it, same arguments
    "48c7412001000000"  # stop: mov qword [rcx+32], 1 ; reached = 1
    "488b4118"        # mov  rax, [rcx+24]       ; &budget.window (0: none)
    "4885c0"          # test rax, rax
    "7407"            # jz   1f
    "48c70000000000"  # mov  qword [rax], 0      ; disarm the interrupt window
    "488b4110"        # 1: mov rax, [rcx+16]     ; uc_emu_stop
    "ffe0"            # jmp  rax                 ; tail call uc_emu_stop(uc)
)
_CODE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                            ctypes.c_void_p)
_page: mmap.mmap | None = None
_native: int | None = None


def _uclib() -> ctypes.CDLL:
    return unicorn.unicorn_py3.unicorn.uclib  # type: ignore[attr-defined,no-any-return]


def _native_hook() -> int | None:
    """Address of the native code hook, or None where native code cannot run."""
    global _page, _native
    if _native is not None:
        return _native or None
    _native = 0
    if platform.machine() not in ("x86_64", "AMD64") or not sys.platform.startswith("linux"):
        return None
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE,
                         prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, ValueError):  # W^X policies
        return None
    page.write(_CODE)
    _page = page
    _native = ctypes.addressof(ctypes.c_char.from_buffer(page))
    return _native


class InstructionCounter:
    """Counts the instructions ``cpu`` starts and stops it before a chosen one (see the
    module docstring). ``close()`` takes the hook out again."""

    def __init__(self, cpu: X86Vcpu) -> None:
        self.cpu = cpu
        self._c = _Counter()
        self._c.target = self._c.brk = NEVER
        self._c.stop = ctypes.cast(_uclib().uc_emu_stop, ctypes.c_void_p).value or 0
        budget = cpu.budget
        self._c.window = ctypes.addressof(budget) + type(budget).window.offset  # type: ignore[attr-defined]
        native = _native_hook()
        self._dispatch = _CODE_CB(self._on_trap)
        self._c.trap = ctypes.cast(self._dispatch, ctypes.c_void_p).value or 0
        #: adopted code traps: address -> the X86Vcpu methods to call, in order
        self._traps: dict[int, list[Callable[..., object]]] = {}
        #: (the vCPU's table, its method, address) of each trap taken over
        self._adopted: list[tuple[dict[int, int | None], Callable[..., object], int]] = []
        self._keep: object = None
        if native is not None:
            callback = ctypes.c_void_p(native)
        else:
            self._keep = python = _CODE_CB(self._py_hook)
            callback = ctypes.c_void_p(ctypes.cast(python, ctypes.c_void_p).value)
        handle = ctypes.c_size_t()
        err = _uclib().uc_hook_add(
            cpu.uc._uch, ctypes.byref(handle), uc_const.UC_HOOK_CODE, callback,
            ctypes.cast(ctypes.byref(self._c), ctypes.c_void_p),
            ctypes.c_uint64(1), ctypes.c_uint64(0))
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        self._handle: int | None = handle.value
        self.native = native is not None
        cpu.flush_code()  # blocks translated before have no call to the hook
        self.adopt()

    def adopt(self) -> None:
        """Take over the vCPU's code traps (wrmsr, rdmsr, rdtsc, mov to CR, rep ins/outs):
        their code hooks leave unicorn's list and the counter's hook calls the same
        methods at the same addresses. unicorn 2.1.4 walks its whole list of code hooks
        for every instruction once one hook covers every address: each trap left there
        would cost every instruction about 2 ns more (the counter alone, about 18 ns).
        Traps the vCPU adds while it runs work as usual until the next ``adopt``."""
        cpu = self.cpu
        for hooks, callback in cpu.code_traps():
            for address, handle in hooks.items():
                if handle is None:
                    continue
                cpu.uc.hook_del(handle)
                hooks[address] = None        # the counter calls it (see close())
                self._traps.setdefault(address, []).append(callback)
                self._adopted.append((hooks, callback, address))
                self._c.traps[(address & 0xFFFF) >> 6] |= 1 << (address & 63)

    def _on_trap(self, uc: int, address: int, size: int, user: int) -> None:
        """The native hook found a trap's bit: call the X86Vcpu's method(s) for it, as
        unicorn called them (an error stops the run and surfaces from it)."""
        cpu = self.cpu
        try:
            for callback in self._traps.get(address, ()):
                callback(cpu.uc, address, size, None)
        except BaseException as err:  # ctypes would swallow it
            cpu.fail_from_hook(err)

    def _py_hook(self, uc: int, address: int, size: int, user: int) -> None:
        c = self._c
        if c.count >= c.target or (address == c.brk and c.count >= c.brk_after):
            c.reached = 1
            if c.window:
                ctypes.c_uint64.from_address(c.window).value = 0
            self.cpu.uc.emu_stop()
            return
        c.ring[c.count % RING] = address
        c.count += 1
        if address in self._traps:
            self._on_trap(uc, address, size, user)

    @property
    def count(self) -> int:
        """Instructions started since the counter was made (or last set)."""
        return int(self._c.count)

    @count.setter
    def count(self, value: int) -> None:
        self._c.count = value

    @property
    def reached(self) -> bool:
        """The CPU was stopped before an instruction because the count reached the target
        (cleared by ``stop_before``)."""
        return bool(self._c.reached)

    def stop_before(self, count: int | None) -> None:
        """Stop the CPU when ``count`` instructions have started, before the next one
        (None: never)."""
        self._c.target = NEVER if count is None else max(0, count)
        self._c.reached = 0

    @property
    def target(self) -> int | None:
        return None if self._c.target == NEVER else int(self._c.target)

    def break_at(self, address: int | None, *, after: int = 0) -> None:
        """Also stop before the instruction at linear ``address`` once ``after``
        instructions have started (None: no breakpoint)."""
        self._c.brk = NEVER if address is None else address
        self._c.brk_after = after

    def recent(self, n: int) -> list[int]:
        """Linear addresses of the last ``n`` (at most ``RING``) instructions started,
        oldest first."""
        count = self.count
        n = min(n, RING, count)
        return [int(self._c.ring[i % RING]) for i in range(count - n, count)]

    def save(self) -> tuple[int, tuple[int, ...]]:
        """The count and the ring, for ``restore``."""
        return self.count, tuple(self._c.ring)

    def restore(self, state: tuple[int, tuple[int, ...]]) -> None:
        count, ring = state
        self._c.count = count
        self._c.ring[:] = ring
        self.stop_before(None)

    def close(self) -> None:
        """Take the counter's hook out and give the vCPU its code traps back."""
        if self._handle is None:
            return
        _uclib().uc_hook_del(self.cpu.uc._uch, ctypes.c_size_t(self._handle))
        self._handle = None
        cpu = self.cpu
        for hooks, callback, address in self._adopted:
            hooks[address] = cpu.uc.hook_add(uc_const.UC_HOOK_CODE, callback,
                                             None, address, address)
        self._adopted.clear()
        self._traps.clear()
        cpu.flush_code()
