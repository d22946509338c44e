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

Waits on the TSC (memtest86+'s ``usleep``, with paging on) are never such a fixed
point: the registers hold the time read. A head that comes back ``_WAIT_HITS`` times in
a row with the same budget spent and nothing but TSC reads on the way is a wait: the
CPU stops there, runs one round with a code hook on every instruction and hooks on
every load and store, and records the next (the registers before each instruction,
each access with its value, the value before of each byte stored). At the head after
it, ``tsc_wait.judge_round`` says what the round writes before it reads (dead at the
head) and which unsigned comparisons of the time its branches make; the context at
the two heads must be the same but for the dead registers (and the arithmetic flags,
if all six are dead), every live byte stored must hold its value again, and no exit
but TSC reads may have happened. The budget then goes down by whole rounds, so that
the two rounds before the one at which a comparison may turn (``rounds_to_flip``) run
(at most as many as leave a whole round and the margin in the slice): the rounds that run
write every dead register and byte again before anything reads it, so the state when
the wait ends is as if every round had run. If the wait ends within the slice the
CPU stops at the head and looks for the next wait there. The wait judged last is kept
(``_KnownWait``): in a later slice, the same head coming back as a wait from the same
state (the context but for the dead registers, the bytes its round reads before it
writes them, its code) is skipped at once from the hook, with no stop and no round
recorded; memtest86+'s ``sleep(1)`` is one judgement and some 100 such slices.

A slice probes only when the vCPU's last slice had no exit at all (TSC reads aside; with
paging on, only if it read the TSC ``_WAIT_READS`` times, as a wait does and a kernel's
clock does not) or a loop was skipped lately (within its last 8 probing slices): a
firmware booting makes exits in every slice and never pays for it. A probe that finds no
head costs a code hook or two (Python runs only when a head comes round again; the
rounds start only for a head that comes back to the same context, or as a wait); rounds
that are no fixed point and waits not judged skippable (the costly part: all code
translated again, stores in Python) make the vCPU wait 1, 3, 7, then 15 slices before it
probes again. Fixed points only while paging is off (real mode, and protected mode
without paging: the page walk's accessed and dirty bits are stores no hook sees; a
wait's accesses repeat the recorded round's, whose bits are set by then), and never with
an instruction counter attached (the stepper counts every instruction).

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

from xenlab.cpu import tsc_wait

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

#: Same-looking returns to a head that reads the TSC before its round is recorded
_WAIT_HITS = 3
#: TSC reads in a slice with no exit that make it look like a wait (with paging on,
#: where only waits are looked for: a kernel reads the TSC for its clock now and then)
_WAIT_READS = 1000
#: Instructions a recorded round of a wait may have, at most
_MAX_STEPS = 512
#: exit_marks: the time charged for exits, code traps, and debug-port bytes (what a
#: wait on the TSC must leave as it found them); TSC reads natively and in Python
_EXIT_MARKS = (0, 1, 4)
_TSC_MARKS = (2, 3)
#: Waits looked for again in one slice, at most
_MAX_RESEEKS = 64

_IDLE, _SEEKING, _ARMING, _ROUNDS, _DONE, _WAITING = range(6)


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
        self._quiet = False                 # the last slice had no exit (TSC reads aside)
        self._timed = False                 # ... and read the TSC often (a wait)
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
        #: slices in which a wait on the TSC was skipped (counted in skips too), and
        #: why the last wait recorded was not (None: it was, or none was recorded)
        self.waits = 0
        self.refusal: str | None = None
        self._paged = False
        self._armed_wait = False             # the head armed is a wait on the TSC
        self._waits: dict[int, tuple[tuple[int, ...], int, int, object]] = {}
        self._step = 0                  # a wait's budget per round, seen while seeking
        self._steps: list[tsc_wait.Step] = []
        self._wait_heads: list[tuple[bytes, int, tuple[int, ...], tsc_wait.Step]] = []
        self._before: dict[int, int | None] = {}     # bytes the recorded round stores to
        self._first_round = 0
        self._pages: dict[int, int | None] = {}
        self._no_backoff = False
        self._reseek = False            # stopped after a wait, to look for the next
        self._reseeks = 0
        self._known: _KnownWait | None = None   # the last wait judged skippable

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
                or cpu.attached_counter is not None):
            return
        self._paged = bool(cpu.reg("cr0") & 0x8000_0000)
        if self._paged and not self._timed and self._head is None:
            return      # with paging on, only waits on the TSC are looked for
        self._armed_wait = self._no_backoff = self._reseek = False
        self._waits = {}
        self._reseeks = 0
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
        if self._write_hook is not None:
            cpu.uc.hook_del(self._write_hook)
            self._write_hook = None
        if self._reseek:
            # after a wait: look for the next one at the same head, in the same slice
            self._reseek = self._armed_wait = False
            self._hooks = []
            self._heads, self._head_hooks, self._hits, self._waits = set(), {}, {}, {}
            self._add_head(self._pc0)
            self._state = _SEEKING
            return True
        if self._armed_wait:
            # every instruction and every load and store of the next two rounds
            self._hooks = [cpu.uc.hook_add(uc_const.UC_HOOK_CODE, self._on_step)]
            self._write_hook = cpu.uc.hook_add(
                uc_const.UC_HOOK_MEM_READ | uc_const.UC_HOOK_MEM_WRITE, self._on_access)
            cpu.flush_code()
            self._flush = True
            self._steps, self._wait_heads, self._pages = [], [], {}
            self._state = _WAITING
            return True
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
        marks = self._marks()
        self._quiet = all(marks[i] == self._begin_marks[i] for i in _EXIT_MARKS)
        self._timed = (sum(marks[i] - self._begin_marks[i] for i in _TSC_MARKS)
                       >= _WAIT_READS)
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
            if flushed and not self._no_backoff:    # rounds compared, no skip
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
            if self._fresh and not self._give_back(uc, address):
                return
            # a head that came round to the same CPU context with no exit on the way (a
            # code trap at the head itself, a ``rep ins`` the hypervisor emulates, runs
            # before this hook): the costly rounds only for such a head
            marks, ctx = self._marks(), self._context()
            if self._seen_wait(uc, address, marks, ctx):
                return
            seen = self._hits.setdefault(address, [])
            if not any(m == marks and c == ctx for m, c in seen) or self._paged:
                # (with paging on, the walk's accessed and dirty bits are stores no
                # hook sees: only waits on the TSC, whose rounds are judged otherwise)
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
                if not self._give_back(uc, address):
                    return
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

    def _give_back(self, uc: Uc, address: int) -> bool:
        """Back at the head ``address`` at once after the stop there (``resume``): the
        block's second charge, made by running on from the head, given back. False,
        and the probe given up, if anything else ran first (time never goes back)."""
        cpu = self.cpu
        fresh, self._fresh = self._fresh, False
        charged = self._stop_left - cpu.budget.left
        if not fresh or address != self._pc0 or not 0 <= charged <= _MAX_BLOCK_COST:
            self._give_up(uc)
            return False
        cpu.budget.left = self._stop_left
        return True

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

    # -- waits on the TSC --------------------------------------------------------------
    def _seen_wait(self, uc: Uc, address: int, marks: tuple[int, ...], ctx: bytes
                   ) -> bool:
        """Seeking, at a head: True if it now looks like a wait on the TSC (the CPU is
        stopped there, to run one round and record the next). One looks so when it comes back
        ``_WAIT_HITS`` times in a row with the same budget spent and the same TSC reads,
        and no exit or trap in between."""
        left = self.cpu.budget.left
        last = self._waits.get(address)
        count, delta = 0, None
        if last is not None:
            before, spent, count, seen = last
            delta = (tuple(marks[i] - before[i] for i in _TSC_MARKS), spent - left)
            quiet = (all(marks[i] == before[i] for i in _EXIT_MARKS)
                     and marks[5:] == before[5:] and sum(delta[0]) > 0 and delta[1] > 0)
            count = (count + 1 if delta == seen else 1) if quiet else 0
        self._waits[address] = (marks, left, count, delta)
        if count < _WAIT_HITS or delta is None:
            return False
        if self._known_wait(uc, address, ctx, delta):
            return True
        step = int(delta[1])
        if left <= 2 * _MARGIN + 4 * step:
            return False
        self._armed_wait, self._step = True, step
        self._pc0, self._stop_left = address, left
        self._state = _ARMING
        uc.emu_stop()
        return True

    def _on_step(self, uc: Uc, address: int, size: int, user: object) -> None:
        """Each instruction from the stop at the head on: the first round runs (its
        blocks may start at the head, the next ones are the usual ones), the second is
        recorded (each instruction and the registers before it) and judged at the head
        after it."""
        if self._state != _WAITING:
            return
        cpu = self.cpu
        heads = self._wait_heads
        if address == self._pc0:
            if not heads:
                if not self._give_back(uc, address):
                    return
                self._first_round = 0
            regs, eflags = cpu.gprs()
            head = tsc_wait.Step(address, b"", regs, eflags)
            heads.append((self._context(), cpu.budget.left, self._marks(), head))
            if len(heads) == 3:
                self._judge_wait(uc)
                return
            if len(heads) == 2:
                self._steps, self._before = [], {}
        elif len(heads) < 2:
            self._first_round += 1
            if not heads or self._first_round > _MAX_STEPS:
                self._refuse(uc, "a round too long, or not from the head")
            return
        elif len(self._steps) >= _MAX_STEPS:
            self._refuse(uc, "a round too long")
            return
        if len(heads) != 2:
            return
        regs, eflags = cpu.gprs()
        try:
            code = cpu.code_at(address, size)
        except UcError:
            self._refuse(uc, f"no code to read at {address:#x}")
            return
        self._steps.append(tsc_wait.Step(address, code, regs, eflags))

    def _on_access(self, uc: Uc, access: int, address: int, size: int, value: int,
                   user: object) -> None:
        """A load or store of the recorded round: its value (a load's read before it),
        and the value before of each byte stored to."""
        if self._state != _WAITING or len(self._wait_heads) != 2 or not self._steps:
            return
        write = access == uc_const.UC_MEM_WRITE
        got = [self._linear_byte(a) for a in range(address, address + size)]
        if write:
            value &= (1 << (8 * size)) - 1
            for a, b in zip(range(address, address + size), got, strict=True):
                self._before.setdefault(a, b)
        else:       # -1: not all RAM
            value = -1 if None in got else sum(b << (8 * i) for i, b in enumerate(got)
                                                if b is not None)
        self._steps[-1].accesses.append((write, address, size, value))

    def _linear_byte(self, address: int) -> int | None:
        """The byte of RAM at a linear address (through the guest's page tables), None
        if it is not RAM."""
        page = address & ~0xFFF
        if page not in self._pages:
            self._pages[page] = self.cpu.translate(page) if self._paged else page
        base = self._pages[page]
        return None if base is None else self.cpu.ram_byte(base + (address & 0xFFF))

    def _judge_wait(self, uc: Uc) -> None:
        """At the third return to the head: the round recorded is judged
        (``tsc_wait.judge_round``) and the state at its two heads compared; the rounds
        skipped are as many as leave the time-dependent branches going the same way and
        a whole round and the margin to run before the slice may end."""
        cpu = self.cpu
        (_c1, _l1, _m1, _h1), (ctx2, left2, marks2, _h2), (ctx3, left3, marks3, h3) = \
            self._wait_heads
        r2 = self._steps
        step = left2 - left3
        if (step != self._step
                or any(marks3[i] != marks2[i] for i in _EXIT_MARKS) or marks3[5:] != marks2[5:]):
            self._refuse(uc, "an exit, or a different time, in a round")
            return
        if any(v < 0 for s in r2 for _w, _a, _n, v in s.accesses):
            self._refuse(uc, "a load outside RAM")
            return
        verdict = tsc_wait.judge_round(r2, h3, cpu.code_mode())
        if isinstance(verdict, str):
            self._refuse(uc, verdict)
            return
        layout = cpu.context_regs_layout()
        if layout is None or not _same_context(ctx2, ctx3, layout, verdict):
            self._refuse(uc, "a register the next round reads has changed")
            return
        for a, before in self._before.items():
            if a not in verdict.dead_bytes and (before is None
                                                or before != self._linear_byte(a)):
                self._refuse(uc, f"the byte at {a:#x}, read next round, has changed")
                return
        self.refusal = None
        tsc = cpu.exits.tsc(cpu)
        self._known = _KnownWait(self._pc0, step, marks3, marks2, verdict, ctx3,
                                 {a: self._linear_byte(a) for a in verdict.live_bytes},
                                 tuple((s.address, s.code) for s in r2),
                                 (verdict.t - (tsc - step)) & ((1 << 64) - 1))
        # round 2 of the recording is round 0 here; the next to run is round 1
        ends = self._skip_wait(verdict, verdict.t, 1, step, self._pc0)
        self._reseeks += 1
        if (not ends or self._reseeks > _MAX_RESEEKS
                or cpu.budget.left <= 4 * _MARGIN):
            self._give_up(uc)
            return
        # stop at the head, and from there (``resume``) look for the next wait
        self._disarm_hooks_only(uc)
        self._stop_left = cpu.budget.left
        self._reseek = True
        self._state = _ARMING
        uc.emu_stop()

    def _skip_wait(self, verdict: tsc_wait.Verdict, t: int, first: int, step: int,
                   head: int) -> bool:
        """Skip the rounds of a wait whose round 0 read the time ``t``, from round
        ``first`` (the next to run) on: as many as leave the round before the first one
        at which a comparison of the time may turn, and a whole round and the margin in
        the slice. True if that round comes within this slice (the wait ends in it)."""
        cpu = self.cpu
        flips = [tsc_wait.rounds_to_flip(p, t, step) for p in verdict.preds]
        due = min((j for j in flips if j is not None), default=None)
        rounds = (cpu.budget.left - step - _MARGIN) // step
        # the next round run must be before the one at ``due`` (and one more, in case
        # the blocks of a recorded round were charged at other points than usual)
        ends = due is not None and due - first - 2 <= rounds
        if due is not None and ends:
            rounds = due - first - 2
        if rounds <= 0:                     # the wait is about to end: run it
            self._no_backoff = True
            return ends
        cpu.budget.left -= rounds * step
        self.skipped_ns += rounds * step
        if not self._skipped_now:
            self.skips += 1
            self.waits += 1
        self._skipped_now = True
        self._head = head
        return ends

    def _known_wait(self, uc: Uc, address: int, ctx: bytes,
                    delta: tuple[tuple[int, ...], int]) -> bool:
        """At a head that looks like a wait: if it is the wait judged last, from the
        same state (the same code, the registers and bytes its rounds read as they were
        then), skip it at once, with no stop and no recording (True)."""
        k, cpu = self._known, self.cpu
        if k is None or address != k.pc0 or delta != (k.reads, k.step):
            return False
        layout = cpu.context_regs_layout()
        if layout is None or not _same_context(ctx, k.ctx, layout, k.verdict):
            return False
        self._pages = {}
        if any(self._linear_byte(a) != v for a, v in k.live.items()):
            return False
        try:
            if any(cpu.code_at(a, len(code)) != code for a, code in k.code):
                return False
        except UcError:
            return False
        t = (cpu.exits.tsc(cpu) + k.offset) & ((1 << 64) - 1)
        if self._skip_wait(k.verdict, t, 0, k.step, k.pc0):
            self._waits.pop(address, None)  # it ends in this slice: the next one counted anew
        else:
            self._give_up(uc)               # it goes on past the slice: nothing more to do
        return True

    def _disarm_hooks_only(self, uc: Uc) -> None:
        """Delete the code and memory hooks (unicorn deletes them after the run)."""
        for hook in self._hooks:
            self.cpu.without_stray_fault(uc.hook_del, hook)
        self._hooks = []
        if self._write_hook is not None:
            uc.hook_del(self._write_hook)
            self._write_hook = None

    def _refuse(self, uc: Uc, why: str) -> None:
        self.refusal = why
        self._give_up(uc)

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


class _KnownWait:
    """A wait judged skippable: its head, budget and TSC reads a round, the verdict, the
    context at the head after the recorded round, the bytes the round reads before it
    writes them (their values then), its instructions, and how far the round's first
    ``rdtsc`` is from the TSC at the head."""

    __slots__ = ("code", "ctx", "live", "offset", "pc0", "reads", "step", "verdict")

    def __init__(self, pc0: int, step: int, marks3: tuple[int, ...],
                 marks2: tuple[int, ...], verdict: tsc_wait.Verdict, ctx: bytes,
                 live: dict[int, int | None], code: tuple[tuple[int, bytes], ...],
                 offset: int) -> None:
        self.pc0, self.step, self.verdict, self.ctx = pc0, step, verdict, ctx
        self.reads = tuple(marks3[i] - marks2[i] for i in _TSC_MARKS)
        self.live, self.code, self.offset = live, code, offset


def _same_context(a: bytes, b: bytes, layout: tuple[int, int, int],
                  verdict: tsc_wait.Verdict) -> bool:
    """Two saved contexts are the same but for the registers a round writes before it
    reads them, and the arithmetic flags if it writes all six first (QEMU keeps them
    as the last operation, ``cc_dst`` to ``cc_op``, and at times in EFLAGS itself, just
    before them)."""
    regs, cc, cc_end = layout
    if len(a) != len(b):
        return False
    spans = [(regs + 8 * slot, regs + 8 * slot + 8) for slot in verdict.dead_slots]
    if len(verdict.dead_flags) == len(tsc_wait.FLAG_BITS):
        spans.append((cc - 8, cc_end))
        arithmetic = sum(1 << bit for bit in tsc_wait.FLAG_BITS)
        flags_a, flags_b = (int.from_bytes(x[cc - 8:cc], "little") for x in (a, b))
        if (flags_a ^ flags_b) & ~arithmetic:
            return False
    at = 0
    for begin, end in sorted(spans):
        if a[at:begin] != b[at:begin]:
            return False
        at = max(at, end)
    return a[at:] == b[at:]
