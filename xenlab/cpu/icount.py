"""Exact instruction counts for one vCPU at full speed: count, stop before instruction N.

Two counters with one interface. ``BlockCounter`` (what the stepper uses, through
``counter_for``) counts per translated block: a native block hook adds the block's
instruction count as unicorn gave it when it translated the block, so nothing runs per
instruction; only the block that holds the target (or the breakpoint) is counted
instruction by instruction, and a block that an exception, a code trap or an error cuts
short is corrected to the instructions that started (see its docstring).
``InstructionCounter``, below, hooks every instruction: simpler, about 18 ns an
instruction, and the fallback where native code cannot run.

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

import bisect
import ctypes
import mmap
import platform
import sys
from collections.abc import Callable

import capstone
import unicorn
from unicorn import UcError
from unicorn import unicorn_const as uc_const

from xenlab.cpu.x86 import _CODE_CB, X86Vcpu

__all__ = ["RING", "BlockCounter", "InstructionCounter", "counter_for"]

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

# The block counter's two native hooks (xenlab/cpu/native.S, .text.bcount and .text.bfine),
# in the same executable page as _CODE, at these offsets.
_BLOCK_AT, _FINE_AT, _EDGE_AT = 256, 512, 768
_BLOCK_CODE = bytes.fromhex(
    "89d2" "4889f0" "48c1e80d" "4831f0" "25ffff0000" "c1e004"   # r8 = &table[hash(pc)]
    "4c8d8401f0210000"
    "493b30" "7568" "413b5008" "7562"               # not this block's entry: Python
    "458b480c" "488b01" "4585c9" "781e"             # its instructions; a fine block?
    "4e8d1408" "4c3b5108" "774c"                    # past the target: Python
    "4c8b5928" "4929f3" "4939d3" "7240"             # the breakpoint inside: Python
    "4c8911" "4531c9" "eb06" "41b901000000"         # count += n; in_fine = 0 (or 1)
    "4c894940" "48897150" "48895158" "48894160"     # in_fine, last_pc/size/count
    "4c8b4148" "48ff4148" "4183e00f"                # seq += 1
    "4a8974c170" "4a8994c1f0000000" "4a8984c170010000" "c3"   # the ring
    "ff6138")                                       # Python: jmp [rcx+56]
_FINE_CODE = bytes.fromhex(
    "4883794000" "7418"                             # not in the fine block: traps only
    "488b01" "483b4108" "7320"                      # the target reached: stop
    "483b7128" "7506" "483b4130" "7314"             # the armed breakpoint: stop
    "48ff01"                                        # count += 1
    "0fb7c6" "480fa381f0010000" "7201" "c3" "ff6168"  # an adopted trap: Python
    "48c7412001000000" "488b4118" "4885c0" "7407" "48c70000000000"  # reached, window
    "ff6110")                                       # uc_emu_stop(uc)
_EDGE_CODE = bytes.fromhex(
    "488b06" "440fb74e08" "440fb7560a"              # cur->pc, ->icount, ->size
    "4585c9" "7433"
    "4989c0" "49c1e80d" "4931c0" "4181e0ffff0000" "41c1e004"   # r8 = &table[hash(pc)]
    "4e8d8401f0210000"
    "493b00" "7506" "453b5008" "740b"               # the same block's entry: kept
    "498900" "45895008" "4589480c" "c3")            # the entry = pc, size, icount
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
    page.seek(_BLOCK_AT)
    page.write(_BLOCK_CODE)
    page.seek(_FINE_AT)
    page.write(_FINE_CODE)
    page.seek(_EDGE_AT)
    page.write(_EDGE_CODE)
    _page = page
    _native = ctypes.addressof(ctypes.c_char.from_buffer(page))
    return _native


class _AdoptedTraps:
    """The vCPU's code traps a counter's native code hook calls instead of unicorn: by
    address, the X86Vcpu methods to call, and a bit per address (its low 16) in the
    counter's ``traps`` map, which the hook tests."""

    def __init__(self, bits: ctypes.Array[ctypes.c_uint64]) -> None:
        self.bits = bits
        self.by_address: dict[int, list[Callable[..., object]]] = {}
        #: (the vCPU's table, its method, address) of each trap taken over
        self.taken: list[tuple[dict[int, int | None], Callable[..., object], int]] = []

    def take(self, cpu: X86Vcpu, lo: int = 0, hi: int = 1 << 64) -> None:
        """Take the vCPU's traps at linear ``lo`` <= address < ``hi`` out of unicorn's
        list (their table keeps None: see ``give_back``)."""
        for hooks, callback in cpu.code_traps():
            for address, handle in hooks.items():
                if handle is None or not lo <= address < hi:
                    continue
                cpu.remove_code_trap(handle)
                hooks[address] = None
                self.by_address.setdefault(address, []).append(callback)
                self.taken.append((hooks, callback, address))
                self.bits[(address & 0xFFFF) >> 6] |= 1 << (address & 63)

    def call(self, cpu: X86Vcpu, address: int, size: int) -> None:
        """The native hook found a trap's bit: call the X86Vcpu's method(s) for it, as
        unicorn called them (an error stops the run and surfaces from it)."""
        try:
            for callback in self.by_address.get(address, ()):
                callback(cpu.uc, address, size, None)
        except BaseException as err:  # ctypes would swallow it
            cpu.fail_from_hook(err)

    def give_back(self, cpu: X86Vcpu, *, invalidate: bool = False) -> None:
        """The vCPU's own hooks again (``invalidate``: drop the code translated with
        the counter's calls at those addresses)."""
        for hooks, callback, address in self.taken:
            hooks[address] = cpu.add_code_trap(callback, address)
            if invalidate:
                cpu.invalidate_code(address, address + 1)
        self.taken.clear()
        self.by_address.clear()
        ctypes.memset(self.bits, 0, ctypes.sizeof(self.bits))


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
        self._traps = _AdoptedTraps(self._c.traps)
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
        self._traps.take(self.cpu)

    def _on_trap(self, uc: int, address: int, size: int, user: int) -> None:
        self._traps.call(self.cpu, address, size)

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
        if address in self._traps.by_address:
            self._on_trap(uc, address, size, user)

    @property
    def count(self) -> int:
        """Instructions started since the counter was made (or last set)."""
        return int(self._c.count)

    @count.setter
    def count(self, value: int) -> None:
        self._c.count = value

    def running_block(self) -> None:
        """Always None: ``count`` is exact inside a block too (see BlockCounter's)."""
        return None

    def stop_now(self) -> None:
        """Called from a hook: stop before the next instruction."""
        self.stop_before(self.count)

    def last_ran_only_io(self, address: int, size: int, ran: int) -> bool:
        """Never asked (``running_block`` is None): counts are exact here."""
        return False

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
        self._traps.give_back(self.cpu)
        self.cpu.flush_code()


# -- counting per block ------------------------------------------------------------------
#: Entries of the block counter's table of block shapes (direct-mapped by address)
TABLE = 1 << 16
#: Bit of a table entry's instruction count that marks a fine block
FINE = 1 << 31


class _Entry(ctypes.Structure):
    _fields_ = (("pc", ctypes.c_uint64), ("size", ctypes.c_uint32), ("n", ctypes.c_uint32))


class _Blocks(ctypes.Structure):
    """What the block counter's two native hooks read and write (offsets in native.S)."""
    _fields_ = (("count", ctypes.c_uint64), ("target", ctypes.c_uint64),
                ("stop", ctypes.c_uint64), ("window", ctypes.c_uint64),
                ("reached", ctypes.c_uint64), ("brk", ctypes.c_uint64),
                ("brk_after", ctypes.c_uint64), ("python", ctypes.c_uint64),
                ("in_fine", ctypes.c_uint64), ("seq", ctypes.c_uint64),
                ("last_pc", ctypes.c_uint64), ("last_size", ctypes.c_uint64),
                ("last_count", ctypes.c_uint64), ("trap", ctypes.c_uint64),
                ("ring_pc", ctypes.c_uint64 * RING), ("ring_size", ctypes.c_uint64 * RING),
                ("ring_count", ctypes.c_uint64 * RING),
                ("traps", ctypes.c_uint64 * (TRAP_BITS // 64)), ("table", _Entry * TABLE))


def _slot(pc: int) -> int:
    return ((pc >> 13) ^ pc) & (TABLE - 1)


_MODES = (capstone.CS_MODE_16, capstone.CS_MODE_32, capstone.CS_MODE_64)
_DISASM = {mode: capstone.Cs(capstone.CS_ARCH_X86, mode) for mode in _MODES}
_DISASM_DETAIL = {mode: capstone.Cs(capstone.CS_ARCH_X86, mode) for mode in _MODES}
#: Port I/O mnemonics (capstone's; a ``rep`` prefix comes before them)
_PORT_IO = frozenset({"in", "out", "insb", "insw", "insd", "outsb", "outsw", "outsd"})
for _md in _DISASM_DETAIL.values():
    _md.detail = True


class BlockCounter:
    """The same counts as ``InstructionCounter`` (same interface), taken per translated
    block instead of per instruction: the stepper's counter.

    A native block hook adds a block's instruction count when the block starts. The
    count comes from a 64 K-entry table that a native new-block hook fills with what
    unicorn says when it translates a block (``uc_tb.icount``); a block the table does
    not have goes through Python once (capstone decodes it, in its code segment's
    mode). Per instruction nothing runs. Where the count cannot be known ahead:

    * **the target or the breakpoint is inside the block** about to start: the block
      becomes *fine*: a native code hook over just its bytes counts its instructions one
      by one and stops before the target; unicorn translates it again with that hook
      (the block is left at its start and entered again at once, its budget given back);
    * **the block is cut short**: an exception raised by one of its instructions (the
      vCPU reports every interrupt hook before it delivers), a code trap that emulated
      its instruction (the rest of the block does not run) or stopped before it, a
      handler's stop that unicorn carries out inside the block (see ``stopping``), an
      error from unicorn: the count becomes the block's start plus the instructions
      before the cut, the faulting or emulated one included.

    ``stop_before(count)`` called from inside a block (a trace record's listener) takes
    effect at the end of that block, where the count then is; ``running_block()`` says
    which block that was, so that the caller can replay it instruction by instruction
    (the Replay does).

    Needs native code (x86-64 Linux); elsewhere ``counter_for`` gives the
    ``InstructionCounter``.
    """

    def __init__(self, cpu: X86Vcpu) -> None:
        base = _native_hook()
        if base is None:
            raise RuntimeError("the block counter needs native code (x86-64 Linux)")
        self.cpu = cpu
        self.native = True
        self._c = c = _Blocks()
        c.target = c.brk = c.last_pc = NEVER
        c.stop = ctypes.cast(_uclib().uc_emu_stop, ctypes.c_void_p).value or 0
        budget = cpu.budget
        c.window = ctypes.addressof(budget) + type(budget).window.offset  # type: ignore[attr-defined]
        self._python = _CODE_CB(self._on_block)
        self._dispatch = _CODE_CB(self._on_trap)
        c.python = ctypes.cast(self._python, ctypes.c_void_p).value or 0
        c.trap = ctypes.cast(self._dispatch, ctypes.c_void_p).value or 0
        #: instructions of each block met (linear address, size), and their offsets
        self._counts: dict[tuple[int, int], int] = {}
        self._shapes: dict[tuple[int, int], tuple[int, ...]] = {}
        #: fine blocks: (address, size) -> the handles of the code hooks added for them
        self._fine: dict[tuple[int, int], list[int]] = {}
        self._traps = _AdoptedTraps(c.traps)
        #: a code trap that stopped the CPU before its instruction: (address, seq)
        self._pending: tuple[int, int] | None = None
        #: the block entry (seq) during which a handler asked for a stop
        self._stopped: int | None = None
        self._hooks = [self._add_hook(uc_const.UC_HOOK_EDGE_GENERATED, base + _EDGE_AT, 1, 0),
                       self._add_hook(uc_const.UC_HOOK_BLOCK, base + _BLOCK_AT, 1, 0)]
        self._fine_at = base + _FINE_AT
        cpu.flush_code()  # blocks translated before have no call to the hook
        cpu.attach_counter(self)

    def _add_hook(self, kind: int, address: int, begin: int, end: int) -> int:
        handle = ctypes.c_size_t()
        err = _uclib().uc_hook_add(
            self.cpu.uc._uch, ctypes.byref(handle), kind, ctypes.c_void_p(address),
            ctypes.cast(ctypes.byref(self._c), ctypes.c_void_p),
            ctypes.c_uint64(begin), ctypes.c_uint64(end))
        if err != uc_const.UC_ERR_OK:
            raise UcError(err)
        return handle.value

    # -- the block hook's slow path -------------------------------------------------
    def _on_block(self, uc: int, address: int, size: int, user: int) -> None:
        """A block the table does not know, or with the target or the breakpoint in it."""
        try:
            self._block(address, size)
        except BaseException as err:  # ctypes would swallow it
            self.cpu.fail_from_hook(err)

    def _block(self, address: int, size: int) -> None:
        c = self._c
        n = self.instructions(address, size)
        start = c.count
        fine = (address, size) in self._fine
        if not fine:
            if start >= c.target:     # stop before this block: it does not run
                self._stop()
                return
            if start + n > c.target or self._armed_in(address, size, start):
                self._make_fine(address, size)
                return
            c.count = start + n
        c.in_fine = int(fine)
        c.last_pc, c.last_size, c.last_count = address, size, start
        i = c.seq % RING
        c.ring_pc[i], c.ring_size[i], c.ring_count[i] = address, size, start
        c.seq += 1

    def _armed_in(self, address: int, size: int, start: int) -> bool:
        c = self._c
        offset = c.brk - address
        if not 0 <= offset < size:
            return False
        shape = self.shape(address, size)
        if offset not in shape:
            return False
        return start + shape.index(offset) >= c.brk_after

    def _stop(self) -> None:
        c = self._c
        c.reached = 1
        if c.window:
            ctypes.c_uint64.from_address(c.window).value = 0
        self.cpu.uc.emu_stop()

    def instructions(self, address: int, size: int) -> int:
        """How many instructions the block at linear ``address`` (``size`` bytes) has:
        what unicorn said when it translated it (the table's entry, from the edge hook),
        else decoded; the table has it afterwards."""
        key = (address, size)
        e = self._c.table[_slot(address)]
        if e.pc == address and e.size == size:
            n = e.n & ~FINE
            self._counts[key] = n
        else:
            n = self._counts.get(key) or len(self.shape(address, size))
            self._counts[key] = n
        e.pc, e.size, e.n = address, size, n | (FINE if key in self._fine else 0)
        return n

    def shape(self, address: int, size: int) -> tuple[int, ...]:
        """The offsets of the instructions of the block at linear ``address`` (``size``
        bytes), decoded once (only where a count inside a block is needed)."""
        key = (address, size)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = self._decode(address, size, self._counts.get(key))
        return shape

    def _decode(self, address: int, size: int, n: int | None) -> tuple[int, ...]:
        """Instruction offsets in the block's bytes, in the mode its code ran in: the
        mode whose decoding ends exactly at the block's end (unicorn ended it there)
        with as many instructions as unicorn counted, the CPU's current mode first."""
        cpu = self.cpu
        code = cpu.code_at(address, size)
        first = cpu.code_mode()
        best: tuple[int, ...] = ()
        for mode in (first, *(m for m in _MODES if m != first)):
            offsets = []
            end = 0
            for insn_address, insn_size, _, _ in _DISASM[mode].disasm_lite(code, 0):
                offsets.append(insn_address)
                end = insn_address + insn_size
            if end == size and n in (None, len(offsets)):
                return tuple(offsets)
            if mode == first:
                best = (*offsets, end) if end < size else tuple(offsets)
        return best or (0,)  # bytes capstone cannot decode: one instruction

    def _make_fine(self, address: int, size: int) -> None:
        """Count this block's instructions one by one from now on: a native code hook over
        its bytes, the code traps there taken over (so that the count and the stop come
        before them), and the block left at its start, to be translated again."""
        cpu = self.cpu
        lo, hi = address, address + size
        self._traps.take(cpu, lo, hi)
        self._fine[(address, size)] = [self._add_hook(uc_const.UC_HOOK_CODE, self._fine_at,
                                                      a, b - 1)
                                       for a, b in self._uncovered(lo, hi)]
        self.instructions(address, size)          # its table entry says fine now
        cpu.budget.left += (size + 3) >> 2        # charged again when it starts again
        cpu.invalidate_code(lo, hi)
        name = cpu.pc_name()
        cpu.set_reg(name, cpu.reg(name))          # leave the block: unicorn enters it anew

    def _uncovered(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The parts of [lo, hi) that no fine block's code hook covers yet. A block can
        start inside a fine one (a code trap that emulated its instruction moved the
        program counter on, and unicorn translated from there): a second hook over the
        same bytes would count each of their instructions twice and call their traps
        twice."""
        parts, at = [], lo
        for start, size in sorted(self._fine):
            end = start + size
            if end <= at or start >= hi:
                continue
            if start > at:
                parts.append((at, min(start, hi)))
            at = max(at, end)
            if at >= hi:
                break
        if at < hi:
            parts.append((at, hi))
        return parts

    def _on_trap(self, uc: int, address: int, size: int, user: int) -> None:
        self._traps.call(self.cpu, address, size)

    def _unfine(self) -> None:
        """Back to counting per block everywhere (outside emulation)."""
        if not self._fine:
            return
        cpu = self.cpu
        for (address, size), handles in self._fine.items():
            for handle in handles:
                _uclib().uc_hook_del(cpu.uc._uch, ctypes.c_size_t(handle))
            e = self._c.table[_slot(address)]
            if e.pc == address and e.size == size:
                e.n &= ~FINE
            cpu.invalidate_code(address, address + size)
        self._fine.clear()
        self._traps.give_back(cpu, invalidate=True)

    # -- what the vCPU reports (X86Vcpu.attach_counter) --------------------------------
    def _cut(self, address: int, started: bool) -> None:
        """The last block stopped at the instruction at ``address`` (it ran if
        ``started``): none after it ran."""
        c = self._c
        offset = address - c.last_pc
        if c.in_fine or not 0 <= offset < c.last_size:
            return
        shape = self.shape(c.last_pc, c.last_size)
        done = bisect.bisect_left(shape, offset) + (1 if started and offset in shape else 0)
        c.count = c.last_count + done
        c.last_pc = NEVER

    def trap(self, address: int) -> None:
        """A code trap at ``address`` returned: it emulated its instruction (the program
        counter moved: the rest of the block does not run), or left it to the CPU, or
        stopped the CPU before it (seen when the run ends there)."""
        if self.cpu.linear_pc() != address:
            self._cut(address, True)
        else:
            self._pending = (address, self._c.seq)

    def stopping(self) -> None:
        """A handler asked for a stop from inside an instruction of the running block.
        unicorn then ends the run at the block's end, or before a later instruction of
        the block that takes a slow memory access (a TLB miss: its state is restored to
        that instruction), or at an MMIO access itself (which runs again): seen when the
        run has ended."""
        self._stopped = int(self._c.seq)

    def interrupt(self) -> None:
        """An exception or interrupt is about to be delivered; the program counter is at
        the instruction that faulted (it ran), or after the one that trapped."""
        self._cut(self.cpu.linear_pc(), True)

    def emu_done(self, faulted: bool) -> None:
        """``uc_emu_start`` returned: where the CPU stopped decides the last block's
        count when a code trap stopped it, a handler's stop ended the run inside it
        (``stopping``) or unicorn reported an error there."""
        c = self._c
        pending, self._pending = self._pending, None
        stopped, self._stopped = self._stopped, None
        if c.last_pc == NEVER or c.in_fine:
            return
        pc = self.cpu.linear_pc()
        if faulted:
            self._cut(pc, True)
        elif pending is not None and pending == (pc, c.seq):
            self._cut(pc, False)      # the instructions before pc ran, pc's did not
        elif stopped == c.seq and not self._branches_to(pc):
            self._cut(pc, False)
        c.last_pc = NEVER

    def _branches_to(self, pc: int) -> bool:
        """Whether the last block ends with a direct jump, call or loop to ``pc``: then a
        stop inside the block that lands at ``pc`` is the block's end (it ran whole and
        jumped back into itself), not an instruction it stopped before. (Both at once
        cannot be told apart; this takes the first.)"""
        c = self._c
        shape = self.shape(c.last_pc, c.last_size)
        if not shape:
            return False
        last = c.last_pc + shape[-1]
        try:
            code = self.cpu.code_at(last, c.last_pc + c.last_size - last)
        except UcError:
            return False
        md = _DISASM_DETAIL[self.cpu.code_mode()]
        for insn in md.disasm(code, last, 1):
            if not {capstone.CS_GRP_JUMP, capstone.CS_GRP_CALL,
                    capstone.CS_GRP_BRANCH_RELATIVE} & set(insn.groups):
                return False
            ops = insn.operands
            return len(ops) == 1 and ops[0].type == capstone.x86.X86_OP_IMM \
                and ops[0].imm == pc
        return False

    # -- the InstructionCounter interface -------------------------------------------
    def adopt(self) -> None:
        """Nothing to do: code traps stay the vCPU's (they report to the counter)."""

    @property
    def count(self) -> int:
        return int(self._c.count)

    @count.setter
    def count(self, value: int) -> None:
        self._c.count = value
        self._c.last_pc = NEVER

    def running_block(self) -> tuple[int, int, int, int] | None:
        """Called from a hook while the vCPU runs: (the count before the block running
        now, its instructions, its linear address, its size) when ``count`` already
        holds the whole block, so which of its instructions is running is not known
        (unicorn keeps the program counter of the block's start in I/O hooks); None
        when ``count`` is exact (a fine block, or between blocks)."""
        c = self._c
        if c.in_fine or c.last_pc == NEVER or not self.cpu.running:
            return None
        return (int(c.last_count), int(c.count - c.last_count), int(c.last_pc),
                int(c.last_size))

    def last_ran_only_io(self, address: int, size: int, ran: int) -> bool:
        """Whether, of the first ``ran`` instructions of the block at linear ``address``
        (``size`` bytes), the last is an ``in``/``out`` (string forms too) and the only
        one: then a VM exit record made in that block came from it."""
        offsets = self.shape(address, size)[:ran]
        try:
            code = self.cpu.code_at(address, size)
        except UcError:
            return False
        md = _DISASM[self.cpu.code_mode()]
        io = [i for i, off in enumerate(offsets)
              for _, _, mnemonic, _ in md.disasm_lite(code[off:], address + off, 1)
              if mnemonic.split()[-1] in _PORT_IO]
        return bool(offsets) and io == [len(offsets) - 1]

    def stop_now(self) -> None:
        """Called from a hook (a trace record's listener): stop as soon as unicorn can,
        no further block started. Inside a counted block that is its end, or before its
        next instruction that misses unicorn's TLB, which is flushed for it: after an
        ``out`` the next stack access, say (``emu_done`` works out where it was)."""
        c = self._c
        if c.in_fine or c.last_pc == NEVER or not self.cpu.running:
            self.stop_before(self.count)
            return
        c.target = c.last_count            # no block starts any more
        c.reached = 0
        self._stopped = int(c.seq)
        self.cpu.flush_tlb()
        self._stop()

    @property
    def reached(self) -> bool:
        return bool(self._c.reached)

    def stop_before(self, count: int | None) -> None:
        self._c.target = NEVER if count is None else max(0, count)
        self._c.reached = 0
        if not self.cpu.running:
            self._unfine()

    @property
    def target(self) -> int | None:
        return None if self._c.target == NEVER else int(self._c.target)

    def break_at(self, address: int | None, *, after: int = 0) -> None:
        self._c.brk = NEVER if address is None else address
        self._c.brk_after = after
        if not self.cpu.running:
            self._unfine()

    def recent(self, n: int) -> list[int]:
        """Linear addresses of the last ``n`` (at most ``RING``) instructions started,
        oldest first (from the last blocks entered)."""
        c = self._c
        out: list[int] = []
        end = c.count
        for k in range(min(int(c.seq), RING)):
            i = (c.seq - 1 - k) % RING
            pc, size, start = int(c.ring_pc[i]), int(c.ring_size[i]), int(c.ring_count[i])
            shape = self.shape(pc, size)
            done = max(0, min(len(shape), end - start))
            out[:0] = [pc + off for off in shape[:done]]
            end = start
            if len(out) >= n:
                break
        return out[-n:] if n > 0 else []

    def save(self) -> tuple[int, tuple[tuple[int, ...], ...]]:
        c = self._c
        return c.count, (tuple(c.ring_pc), tuple(c.ring_size), tuple(c.ring_count),
                         (c.seq,))

    def restore(self, state: tuple[int, tuple[tuple[int, ...], ...]]) -> None:
        count, (pcs, sizes, counts, (seq,)) = state
        c = self._c
        c.count = count
        c.ring_pc[:], c.ring_size[:], c.ring_count[:] = pcs, sizes, counts
        c.seq = seq
        c.last_pc = NEVER
        self._pending = None
        self.stop_before(None)

    def close(self) -> None:
        """Take the counter's hooks out."""
        if not self._hooks:
            return
        cpu = self.cpu
        self._unfine()
        for handle in self._hooks:
            _uclib().uc_hook_del(cpu.uc._uch, ctypes.c_size_t(handle))
        self._hooks.clear()
        cpu.attach_counter(None)
        cpu.flush_code()


def counter_for(cpu: X86Vcpu) -> InstructionCounter | BlockCounter:
    """The fastest exact counter this host runs: per block with native code, else the
    Python per-instruction one."""
    if _native_hook() is None:
        return InstructionCounter(cpu)
    return BlockCounter(cpu)
