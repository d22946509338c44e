"""Idle loops skipped exactly: a vCPU that goes round a loop that changes nothing.

A program that waits for a key by polling the BIOS (``int 16h`` AH=01h, ``int 1Ah``),
or a guest that spins in ``jmp $`` with interrupts on, runs the same instructions over
the same state until a timer interrupt changes something. xenlab's clock is virtual:
one instruction a nanosecond, so such a wait costs as much wall time as emulating all
of it (5-9x slower than real time under SeaBIOS). ``IdleLoops`` finds such a loop
and jumps the slice's clock over whole rounds of it, with the guest none the wiser.

How it finds one (``begin``, then the hooks below, all within one slice of
``X86Vcpu.run``):

1. A code hook on the slice's first instruction and on the loop head found last time.
   The first of them that comes back to a CPU context it had before, with no exit on
   the way, is a candidate head; the CPU stops there (and, run on from there, gets
   back the block's budget charged twice). A head that keeps coming back changed (a
   delay loop inside the idle one) gives way to where its loop comes out.
2. Stores are made visible: every store of guest code to a hook (the engine's
   translated code is dropped so that it is translated again with the slow store
   path), the real-mode ``int`` frames go through Python, and the frames xenlab
   writes (real mode, and through the IDT with paging off) through
   ``X86Vcpu.write_watch``; each byte's value before its first store since each
   return to the head is kept.
3. At each return to the head the whole CPU context (unicorn's saved context: every
   register, the segment caches, the FPU and SSE state, QEMU's hidden flags) is
   compared byte for byte with the context at each earlier return (up to six: a loop
   may pass its head more than once a round, as a function both halves of a polling
   loop call), every byte stored since with its value then, and the round must have
   had no exit of any kind: no port or MMIO access, hypercall, CPUID, MSR access, code
   trap (but the one on a move to a control register, which only watches for paging),
   TSC read, debug port byte, fault or stop. Such a round is a fixed point: the
   round after starts from the same state and does the same again, until something
   from outside (an interrupt: xenlab injects them only between slices) changes it.
4. The slice's budget goes down by as many whole rounds as leave at least one
   nanosecond. The rest of the slice runs as it would have: the slice ends at the same
   instruction, with the same registers, memory, trace and virtual time, as without
   the skip (tests/test_idle_loops.py runs the same programs both ways and compares).
   Only the wall time differs.

A slice probes only when the vCPU's last slice had no exit at all or a loop was
skipped lately (within its last 8 probing slices): a firmware booting makes exits in
every slice and never pays for it. A probe that finds no head costs a code hook or two
(Python runs only when a head comes round again; the rounds start only for a head that
comes back to the same context); rounds that are no fixed point (the costly part: all
code translated again, stores in Python) make the vCPU wait 1, 3, 7, then 15 slices
before it probes again. Only while paging is off (real mode, and protected mode without
paging: the page walk's accessed and dirty bits are stores no hook sees), and never
with an instruction counter attached (the stepper counts every instruction).

Real Xen: none; a real CPU just spins. The hardware's own notion of a spinning vCPU
is pause-loop exiting (xen/arch/x86/hvm/vmx/vmx.c, EXIT_REASON_PAUSE_INSTRUCTION,
which makes the vCPU yield); QEMU's ``-icount sleep=on`` warps the virtual clock only
for a halted CPU (softmmu/icount.c ``icount_start_warp_timer``)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import capstone
from capstone import x86_const as cx
from unicorn import Uc, UcError
from unicorn import unicorn_const as uc_const

if TYPE_CHECKING:
    from xenlab.cpu.x86 import X86Vcpu

__all__ = ["MAX_BACKOFF", "IdleLoops"]

#: Slices a vCPU waits after rounds that were no fixed point, at most (1, 3, 7, 15).
MAX_BACKOFF = 15
#: Budget a slice must have left at the head to go on probing: more than any block
#: costs, so that the stop and resume there cannot end the slice early.
_MARGIN = 4096
#: Heads a slice looks at, at most (its first instruction, the last head found, and
#: where inner loops come out).
_MAX_HEADS = 4
_LEAVES = {capstone.CS_GRP_CALL, capstone.CS_GRP_RET, capstone.CS_GRP_IRET, capstone.CS_GRP_INT}
_BRANCHES = {capstone.CS_GRP_JUMP, capstone.CS_GRP_BRANCH_RELATIVE}
_JUMPS = {cx.X86_INS_JMP, cx.X86_INS_LJMP}
#: Probing slices without a skip after which the last loop head is forgotten.
_FORGET_HEAD = 8
#: The most budget a block is charged (its bytes / 4: a block is at most a page).
_MAX_BLOCK_COST = 1024
#: A round that stores to more bytes than this is no idle loop.
_MAX_BYTES = 4096
#: Returns to the head compared before giving up on it (a loop may pass its head more
#: than once a round: a function both halves of a polling loop call)
_MAX_ROUNDS = 6

_IDLE, _SEEKING, _ARMING, _ROUNDS, _DONE = range(5)


class IdleLoops:
    """One vCPU's idle-loop finder (``X86Vcpu.idle``); counts what it skipped."""

    def __init__(self, cpu: X86Vcpu) -> None:
        self.cpu = cpu
        #: slices in which a loop was skipped, and the virtual ns skipped in all
        self.skips = 0
        self.skipped_ns = 0
        #: probes started (slices that armed the code hooks)
        self.probes = 0
        self._wait = 0
        self._backoff = 0
        self._head: int | None = None       # the last loop head found
        self._state = _IDLE
        self._hooks: list[int] = []
        self._heads: set[int] = set()
        self._write_hook: int | None = None
        self._flush = False                 # code was translated with the store hook
        self._quiet = False                 # the last slice had no exit
        self._begin_marks: tuple[int, ...] = ()
        self._misses = 0                    # probing slices since the last skip
        self._hits: dict[int, list[tuple[tuple[int, ...], bytes]]] = {}
        self._head_hooks: dict[int, int] = {}
        self._pc0 = 0
        self._fresh = False
        self._stop_left = 0
        self._to_python: tuple[int, ...] | None = None
        self._skipped_now = False
        self._snaps: list[_Snapshot] = []

    # -- the slice ---------------------------------------------------------------------
    def begin(self) -> None:
        """Before a slice's first instruction: arm the code hooks if this slice probes:
        when the vCPU's last slice had no exit at all, or a loop was skipped lately."""
        cpu = self.cpu
        self._state = _IDLE
        self._skipped_now = False
        self._begin_marks = self._marks()
        if self._wait > 0:
            self._wait -= 1
            return
        if ((not self._quiet and self._head is None) or cpu.budget.left <= 4 * _MARGIN
                or cpu.attached_counter is not None or cpu.reg("cr0") & 0x8000_0000):
            return
        pc = cpu.linear_pc()
        heads = {pc} if self._head is None else {pc, self._head}
        self._hits = {}
        self._heads = heads
        self._head_hooks = {}
        for head in sorted(heads):
            hook = cpu.uc.hook_add(uc_const.UC_HOOK_CODE, self._on_head, None, head, head)
            self._hooks.append(hook)
            self._head_hooks[head] = hook
            cpu.invalidate_code(head, head + 1)
        self._state = _SEEKING
        self.probes += 1

    def resume(self) -> bool:
        """After an emulation run: True if it was the probe's stop at a head, now armed
        for rounds (the caller runs on from the same instruction)."""
        if self._state != _ARMING:
            return False
        cpu = self.cpu
        if cpu.linear_pc() != self._pc0:    # something moved the CPU on: no probe
            self._give_up(cpu.uc)
            return True
        self._fresh = True
        for hook in self._hooks:
            cpu.without_stray_fault(cpu.uc.hook_del, hook)
        self._hooks = [cpu.uc.hook_add(uc_const.UC_HOOK_CODE, self._on_head, None,
                                       self._pc0, self._pc0)]
        self._write_hook = cpu.uc.hook_add(uc_const.UC_HOOK_MEM_WRITE, self._on_write)
        self._to_python = cpu.interrupts_to_python(True)
        cpu.write_watch = self._on_frame
        cpu.flush_code()    # translated again: every store through the hook
        self._flush = True
        self._snaps = []
        self._state = _ROUNDS
        return True

    def end(self) -> None:
        """After the slice: drop the hooks (unicorn drops the code translated with a code
        hook when it is deleted) and, after rounds, all code (translated with the store
        hook)."""
        cpu = self.cpu
        self._quiet = self._marks()[:5] == self._begin_marks[:5]    # no exit this slice
        self._disarm(cpu.uc)
        flushed = self._flush
        if flushed:
            self._flush = False
            cpu.flush_code()    # the stores' fast path back
        if self._state == _IDLE:
            return
        if self._skipped_now:
            self._backoff = self._wait = self._misses = 0
        else:
            self._misses += 1
            if self._misses >= _FORGET_HEAD:
                self._head = None
            if flushed:         # rounds compared (the costly part) and no fixed point
                self._backoff = min(2 * self._backoff + 1, MAX_BACKOFF)
                self._wait = self._backoff
        self._state = _IDLE

    def _disarm(self, uc: Uc) -> None:
        cpu = self.cpu
        for hook in self._hooks:
            # unicorn drops the code translated with the hook, looking it up as linear
            # addresses: guarded as X86Vcpu's own removals are (paging may be on now)
            cpu.without_stray_fault(uc.hook_del, hook)
        self._hooks = []
        if self._write_hook is not None:
            uc.hook_del(self._write_hook)
            self._write_hook = None
        if self._to_python is not None:
            self.cpu.interrupts_to_python(False, self._to_python)
            self._to_python = None
        self.cpu.write_watch = None

    # -- hooks -------------------------------------------------------------------------
    def _on_head(self, uc: Uc, address: int, size: int, user: object) -> None:
        cpu = self.cpu
        if self._state == _SEEKING:
            # a head that came round to the same CPU context with no exit on the way (a
            # code trap at the head itself, a ``rep ins`` the hypervisor emulates, runs
            # before this hook): the costly rounds only for such a head
            marks, ctx = self._marks(), self._context()
            seen = self._hits.setdefault(address, [])
            if not any(m == marks and c == ctx for m, c in seen):
                if seen and seen[-1][0] != marks:
                    seen.clear()            # an exit since: start again from here
                seen.append((marks, ctx))
                if len(seen) > _MAX_ROUNDS:     # a loop that counts: not this head, but
                    self._hits[address] = []    # perhaps where it comes out (a delay
                    self._add_head(self._exit_of(address))     # loop in an idle one)
                    self._drop_head(uc, address)
                return
            if cpu.budget.left <= _MARGIN:
                self._give_up(uc)
                return
            self._pc0 = address
            self._stop_left = cpu.budget.left
            self._state = _ARMING
            uc.emu_stop()
        elif self._state == _ROUNDS and address == self._pc0:
            if not self._snaps:
                # back at the head at once after the stop: the block's second charge
                # given back (anything else ran first: no probe, time never goes back)
                charged = self._stop_left - cpu.budget.left
                if not self._fresh or not 0 <= charged <= _MAX_BLOCK_COST:
                    self._give_up(uc)
                    return
                self._fresh = False
                cpu.budget.left = self._stop_left
            else:
                left = cpu.budget.left
                ctx = self._context()
                marks = self._marks()
                for snap in reversed(self._snaps):
                    if self._fixed_point(snap, ctx, marks):
                        self._skip(uc, snap.left - left)
                        return
                if len(self._snaps) >= _MAX_ROUNDS or left <= _MARGIN:
                    self._give_up(uc)
                    return
            self._snaps.append(_Snapshot(self._context(), cpu.budget.left, self._marks()))

    def _on_write(self, uc: Uc, access: int, address: int, size: int, value: int,
                  user: object) -> None:
        if self._state == _ROUNDS:
            self._on_frame(address, size)

    def _on_frame(self, address: int, size: int) -> None:
        """A store of ``size`` bytes at physical ``address`` is about to be made: each
        snapshot keeps the value each byte had before the first store since it."""
        ram_byte = self.cpu.ram_byte
        for snap in self._snaps:
            before = snap.before
            for a in range(address, address + size):
                if a not in before:
                    old = ram_byte(a)
                    if old is None:         # not RAM: a device's, no fixed point known
                        snap.bad = True
                        break
                    before[a] = old
            if len(before) > _MAX_BYTES:
                snap.bad = True

    # -- rounds ------------------------------------------------------------------------
    def _marks(self) -> tuple[int, ...]:
        """What an exit of any kind changes (see the module docstring, 3)."""
        return self.cpu.exit_marks()

    def _context(self) -> bytes:
        return self.cpu.context_bytes()

    def _fixed_point(self, snap: _Snapshot, ctx: bytes, marks: tuple[int, ...]) -> bool:
        """The state now is the state at ``snap``: the same context, no exit since, and
        every byte stored since holds its value from then."""
        if snap.bad or snap.left <= self.cpu.budget.left or marks != snap.marks:
            return False
        if ctx != snap.ctx:
            return False
        ram_byte = self.cpu.ram_byte
        return all(ram_byte(a) == old for a, old in snap.before.items())

    def _skip(self, uc: Uc, per_round: int) -> None:
        cpu = self.cpu
        rounds = (cpu.budget.left - 1) // per_round
        if rounds > 0:
            cpu.budget.left -= rounds * per_round
            self.skipped_ns += rounds * per_round
            self.skips += 1
            self._skipped_now = True
            self._head = self._pc0
        self._disarm(uc)            # unicorn deletes hooks after the run; none fires now
        self._state = _DONE

    def _exit_of(self, head: int) -> int | None:
        """Where a loop through ``head`` comes out: the address after the first
        conditional branch (or ``loop``) from ``head`` on that goes back to ``head`` or
        before it; None if the code leaves first (a jump, call, return, ``int``)."""
        cpu = self.cpu
        try:
            code = cpu.code_at(head, 96)
        except UcError:
            return None
        md = capstone.Cs(capstone.CS_ARCH_X86, cpu.code_mode())
        md.detail = True
        for insn in md.disasm(code, head, 24):
            groups = set(insn.groups)
            if groups & _LEAVES:
                return None
            if not groups & _BRANCHES:      # (``loop`` is only BRANCH_RELATIVE)
                continue
            op = insn.operands[0] if insn.operands else None
            if insn.id in _JUMPS or op is None or op.type != cx.X86_OP_IMM:
                return None                 # unconditional, or not to a fixed address
            if op.imm <= head:
                return int(insn.address + insn.size)
        return None

    def _add_head(self, head: int | None) -> None:
        """Look at ``head`` too, from now on in this slice (at most _MAX_HEADS in all)."""
        if head is None or head in self._heads or len(self._heads) >= _MAX_HEADS:
            return
        cpu = self.cpu
        hook = cpu.uc.hook_add(uc_const.UC_HOOK_CODE, self._on_head, None, head, head)
        self._hooks.append(hook)
        self._head_hooks[head] = hook
        self._heads.add(head)
        cpu.invalidate_code(head, head + 1)

    def _drop_head(self, uc: Uc, head: int) -> None:
        """Stop looking at ``head`` (its hook deleted, deferred by unicorn); with no head
        left, give up."""
        hook = self._head_hooks.pop(head, None)
        if hook is not None:
            self.cpu.without_stray_fault(uc.hook_del, hook)
            self._hooks.remove(hook)
        if not self._head_hooks:
            self._give_up(uc)

    def _give_up(self, uc: Uc) -> None:
        self._disarm(uc)
        self._state = _DONE


class _Snapshot:
    """The state at one return to the head: the CPU context, the budget left, the exit
    marks, and the value before of each byte stored since (``bad``: a store it cannot
    judge, or too many)."""

    __slots__ = ("bad", "before", "ctx", "left", "marks")

    def __init__(self, ctx: bytes, left: int, marks: tuple[int, ...]) -> None:
        self.ctx, self.left, self.marks = ctx, left, marks
        self.before: dict[int, int] = {}
        self.bad = False
