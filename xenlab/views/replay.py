"""Record and replay one guest vCPU: run at full speed, go back to any instruction.

``Replay(lab, domain, vcpu)`` is the machinery under the boot stepper
(``xenlab.views.stepper``). It works the way record/replay debuggers do (rr,
QEMU's ``-icount rr=``): positions are exact instruction counts, checkpoints are
taken while the guest runs, and going to a position restores the nearest
checkpoint before it and replays the difference at full speed.

* **Position** = instructions the vCPU has started since the Replay attached,
  counted in native code per translated block (``xenlab.cpu.icount.BlockCounter``:
  a stop at a trace record asked for while a block runs ends the run at the block's
  end or before its next memory access; unless the ``in``/``out`` that made the
  record is the last instruction that ran, the block is then replayed instruction by
  instruction to stop right after the one that made it). Going to position ``n`` stops
  the vCPU just before it starts instruction ``n + 1``, whatever Xen did in
  between (exits, a slice's end, an interrupt injected at the next slice's
  start); if it never starts one (halted for good), the run goes on until
  nothing more can happen.
* **Running** is ``XenHost.run`` with the vCPU's ``run`` wrapped (on that one
  ``X86Vcpu`` instance): the scheduler, timers, exits, Dom0's back ends and the
  trace all work as in a free run. A stop in the middle of a slice leaves the
  host *inside* that slice (the state is exact: registers, memory, devices,
  trace; the pCPU clocks moved by the part of the slice that ran); the next
  move goes from a checkpoint again, so the state after it is the same as if
  nothing had stopped there.
* **The run log.** Every ``run`` of the vCPU in the first pass is kept as
  (instructions at its start, at its end, its RunResult). A replay ends each
  ``run`` where the first pass ended it, even when that end depended on what
  had been translated before rather than on the guest (a new code trap found
  in a block makes the slice yield once; replayed, the trap is already there).
  A replay that ends a ``run`` elsewhere is a divergence: it is recorded in
  ``divergences`` and the run continues as a new first pass from there.
* **Checkpoints** are taken at *clean points* (between two slices: the top of
  the run loop, where it can go on from a saved state) in the first pass: at
  attach, then at the first clean point after every ``checkpoint_every_s`` of
  first-pass wall time (a replay is no slower, so a Back replays at most about
  that much). A slice of the vCPU ends after ``MAX_SLICE_INSTRUCTIONS`` at most
  (a recorded end, replayed like any other), so code that computes without an
  exit reaches clean points too. A checkpoint holds the vCPUs' CPU state, the
  guest's RAM, the Xen pages it shares and Dom0's (per page; a page equal to
  the previous checkpoint's is the same ``bytes`` object), its P2M, video
  memory, the Xen-side devices (vPIC, vIOAPIC, vLAPICs, PIT, RTC, PM timer),
  the device model's PCI, UART, keyboard, IDE and VGA registers (not the disk
  files) and its mapping of the ioreq page, event channel ports, the scheduler,
  the pCPU clocks, and the lengths of the trace, console, Xen log and serial
  output.
* **Restoring** puts the P2M back first: frames populated since go back to the
  heap, frames given up since (a Xen page mapped over RAM: PVH GRUB's
  shared_info) are taken back (the allocator hands out the lowest free frames
  first, so the replay populates the same ones again). Then it compares the
  live RAM with the last checkpoint taken or restored and writes back only the
  pages that differ, dropping translated code only for those; the output
  streams are cut back, or, going forwards to a later checkpoint, given back
  what they held there (the replay would write the same).
* **Limits.** Other running guests are not checkpointed (their state goes on);
  input typed into the guest after a checkpoint is not replayed; a PV guest's
  page-type references (``mmu_update`` validation) are not rolled back.

Real Xen: tools/libs/guest/xg_sr_save.c (the checkpointed save stream Remus and
COLO send every few milliseconds); QEMU: replay/replay.c and
replay/replay-snapshot.c (record/replay: the instruction count as the clock,
snapshots to go back), migration/savevm.c
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import ctypes
import dataclasses
import gc
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from xenlab.cpu.icount import counter_for
from xenlab.cpu.x86 import ExitReason, RunResult
from xenlab.errors import XenlabError
from xenlab.xen.domain import INVALID_MFN
from xenlab.xen.page_alloc import FREE, Extent
from xenlab.xen.trace import Kind, TraceRecord

if TYPE_CHECKING:
    from xenlab.cpu.x86 import X86Vcpu
    from xenlab.devicemodel.qemu import DeviceModel
    from xenlab.lab import Lab
    from xenlab.xen.domain import Domain, Vcpu

__all__ = ["CHECKPOINT_EVERY_S", "MAX_RUN_NS", "MAX_SLICE_INSTRUCTIONS", "Replay", "Slice",
           "Snapshot"]

PAGE = 4096
#: First-pass wall time between two checkpoints (s): a Back replays at most about this
#: much (replaying is no slower than the first pass), plus the rest of a slice.
CHECKPOINT_EVERY_S = 0.06
#: A slice of the vCPU ends after this many instructions at most, so that a guest that
#: computes for long without an exit still reaches clean points (checkpoints are taken
#: only between slices).
MAX_SLICE_INSTRUCTIONS = 500_000
#: Ranges of rewritten pages whose translated code a restore drops one by one; beyond it
#: all translated code goes (one call instead of thousands).
MAX_CODE_RANGES = 256
#: How much virtual time one move may run the guest for, at most (a guest that waits
#: for input forever would otherwise keep the loop going at its timer's rate).
MAX_RUN_NS = 60_000_000_000


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic collector while restoring and replaying, as XenHost.run does for
    a run: a restore makes many small objects, and a notebook holds many more."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Paused(Exception):
    """The vCPU stopped at the position asked for, in the middle of a slice."""


@dataclass
class Slice:
    """One ``X86Vcpu.run`` of the vCPU as the first pass ran it."""

    start: int
    end: int
    result: RunResult


@dataclass
class Snapshot:
    """Everything a restore puts back (see the module docstring)."""

    position: int
    runs: int                                   # runs of the vCPU before this point
    cpu_time: int                               # the vCPU's virtual time then (ns)
    cpus: list[tuple[X86Vcpu, object, dict[str, Any]]]
    counter: tuple[int, tuple[int, ...]]
    frames: tuple[tuple[int, int], ...]         # (first mfn, count) of the RAM saved
    pages: list[bytes]                          # one per frame, in ``frames`` order
    vram: bytes
    objects: list[tuple[Any, dict[str, Any]]]   # (live object, deep copy of its __dict__)
    scalars: list[tuple[Any, dict[str, Any]]]
    lengths: dict[str, int]
    extra: list[tuple[Callable[[Any], None], Any]] = field(default_factory=list)
    p2m: tuple[Any, dict[int, int]] | None = None  # the P2M (dense array, far entries)


_ZERO = bytes(PAGE)   # every page of zeros a checkpoint keeps is this one object
_SCALARS = (int, float, str, bool, type(None))
_CONTAINERS = (list, dict, set, bytearray, deque)


def _shallow_state(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Scalars as they are, containers copied one level (their elements are shared)."""
    out: dict[str, Any] = {}
    for key, value in vars(obj).items():
        if key in skip:
            continue
        if isinstance(value, _SCALARS) or hasattr(value, "value"):
            out[key] = value
        elif isinstance(value, _CONTAINERS):
            out[key] = copy.copy(value)
    return out


def _restore_shallow(obj: Any, state: dict[str, Any]) -> None:
    for key, value in state.items():
        setattr(obj, key, copy.copy(value) if isinstance(value, _CONTAINERS) else value)


class _Tail:
    """What a stream (the trace, the console, Xen's log) held beyond where the run went
    back to: a restore to a later checkpoint puts it back instead of replaying it (the
    replay would write the same)."""

    def __init__(self) -> None:
        self.start = 0
        self.items: Any = None

    def cut(self, n: int, end: int, gone: Any) -> None:
        """The stream went back from ``end`` to ``n``; ``gone`` is what it lost."""
        if self.items is not None and self.start <= end <= self.start + len(self.items):
            gone = gone + self.items[end - self.start:]
        if self.items is None or n + len(gone) >= self.start + len(self.items):
            self.start, self.items = n, gone

    def ahead(self, end: int, n: int) -> Any:
        """What the stream held from ``end`` to ``n`` (None if not known)."""
        if (self.items is None or not self.start <= end
                or n > self.start + len(self.items)):
            return None
        return self.items[end - self.start:n - self.start]


#: X86Vcpu fields (besides unicorn's context) that a run leaves for the next one.
_CPU_FIELDS = ("fault_pc", "fault_cr2", "hypercall_64", "_delivered")


class Replay:
    """Positions, checkpoints and replay for one vCPU (see the module docstring)."""

    def __init__(self, lab: Lab, d: Domain, v: Vcpu, dm: DeviceModel | None, *,
                 checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> None:
        self.lab = lab
        self.host = lab.host
        self.d = d
        self.v = v
        assert v.cpu is not None
        self.cpu = v.cpu
        self.dm = dm
        self.checkpoint_every_s = checkpoint_every_s
        # wall time the first pass has run since the last checkpoint, and when it last
        # passed a clean point (None: not running at the frontier now)
        self._front_spent = 0.0
        self._front_at: float | None = None
        self.counter = counter_for(self.cpu)
        self.checkpoints: list[Snapshot] = []
        self._keys: list[tuple[int, int]] = []     # (position, runs) of each checkpoint
        self.log: list[Slice] = []
        self.runs = 0                               # runs of the vCPU so far (log index)
        self.furthest = 0
        #: (position, what) of each replay that ended a run elsewhere than the first pass
        self.divergences: list[tuple[int, str]] = []
        self.clean = True          # between slices: the run loop can go on from here
        self._target: int | None = None
        # run(done=...): the predicate and the first record it may match, the match, the
        # records tried so far, and the clean point before the ones not tried yet
        self._watch: tuple[Callable[[TraceRecord], bool], int] | None = None
        self._found: TraceRecord | None = None
        self._scanned = 0
        self._before = (0, 0)
        # what a device's state may refer to but must stay shared (not copied): the host,
        # the domains, their vCPUs and CPUs, and (see _device_memo) the devices themselves
        self._memo_base: dict[int, Any] = {id(x): x for x in (
            self.host, lab, self.host.trace, self.host.mem, self.host.log, self.host.sched)}
        for dom in self.host.domains.values():
            self._memo_base[id(dom)] = dom
            if dom.hvm is not None:
                self._memo_base[id(dom.hvm)] = dom.hvm
            for vc in dom.vcpus:
                self._memo_base[id(vc)] = vc
                if vc.cpu is not None:
                    self._memo_base[id(vc.cpu)] = vc.cpu
        if dm is not None:
            self._memo_base[id(dm)] = dm
            for ch in dm.ide:
                for disk in ch.disks:
                    if disk is not None:
                        self._memo_base[id(disk)] = disk
        # the RAM as the last checkpoint taken or restored saw it: per run of frames,
        # one row of uint64 per page; and that checkpoint's pages by run
        self._image: dict[tuple[int, int], np.ndarray[Any, Any]] = {}
        self._ref_pages: dict[tuple[int, int], list[bytes]] = {}
        self._ref: Snapshot | None = None          # the checkpoint last restored, if so
        self._tails: dict[str, _Tail] = {}
        self.checkpoint()

    @property
    def position(self) -> int:
        return self.counter.count

    def close(self) -> None:
        """Take the counter's hook out of the vCPU (the guest runs on as it is)."""
        self.counter.close()

    # ============================================================ moving
    def goto(self, target: int, *, max_ns: int = MAX_RUN_NS) -> int:
        """Be just before instruction ``target + 1`` (or where the guest stops before it).
        Backwards, or forwards from a stop inside a slice: from the nearest checkpoint."""
        target = max(0, target)
        if not self.clean and target == self.position:
            return self.position
        with _no_gc():
            snap = self.nearest(target)
            if not self.restorable(snap):   # frames the heap gave to someone else since
                snap = self.nearest(min(target, self.position))
            if not self.clean or target < self.position or snap.position > self.position:
                self.restore(snap)
            if target >= self.position:   # on to just before instruction target + 1
                self.run(target, max_ns=max_ns)
        return self.position

    def run(self, target: int | None = None, *, done: Callable[[TraceRecord], bool] | None
            = None, kinds: Iterable[Kind] | None = None, brk: int | None = None,
            max_ns: int = MAX_RUN_NS) -> TraceRecord | None:
        """Run on from here: to position ``target``; or, with ``done``, until a new trace
        record of this domain satisfies it (the vCPU then stops before its next
        instruction; returned); or, with ``brk``, until the vCPU is about to run the
        instruction at that linear address. None if it got nowhere (the guest stopped).

        With ``kinds`` (the kinds of record ``done`` can accept), ``done`` sees each
        record of those kinds as it is emitted (``Trace.watch``). Without, it is tried on
        the new records at each clean point (one batch per slice, no call per record
        while the guest runs); when one matches, the run goes back to the clean point
        before it and replays that stretch, stopping at the record."""
        if done is not None and kinds is not None:
            return self._run_watching(target, done, frozenset(kinds), brk, max_ns)
        start = self.position
        trace = self.host.trace
        seq0 = trace.dropped + len(trace)   # a restore and replay to here emit the same
        if not self.clean:   # the run goes on from the nearest checkpoint, through here
            with _no_gc():
                self.restore(self.nearest(start))
        if brk is not None:
            self.counter.break_at(brk, after=start + 1)
        self._watch = None if done is None else (done, seq0)
        self._found = None
        self._scanned = seq0
        self._before = (self.position, self.runs)
        self._target = target
        try:
            self._forward(max_ns)
            found = self._found
            if found is not None:
                return self._stop_at_record(found.seq, self._before, max_ns)
        finally:
            self._watch = None
            self._found = None
            self.counter.break_at(None)
            self._target = None
        return None

    def _run_watching(self, target: int | None, done: Callable[[TraceRecord], bool],
                      kinds: frozenset[Kind], brk: int | None,
                      max_ns: int) -> TraceRecord | None:
        start = self.position
        trace, counter = self.host.trace, self.counter
        seq0 = trace.dropped + len(trace)
        if not self.clean:
            with _no_gc():
                self.restore(self.nearest(start))
        found: list[TraceRecord] = []
        block: list[tuple[int, int, int, int] | None] = []
        domid = self.d.domid

        def watcher(rec: TraceRecord) -> None:
            if not found and rec.seq >= seq0 and rec.dom == domid and done(rec):
                found.append(rec)
                block.append(counter.running_block())
                self._target = counter.count     # stop before the next instruction
                counter.stop_now()

        if brk is not None:
            counter.break_at(brk, after=start + 1)
        unwatch = trace.watch(kinds, watcher)
        self._target = target
        try:
            self._forward(max_ns)
        finally:
            unwatch()
            counter.break_at(None)
            self._target = None
        if found and block[0] is not None:
            self._to_instruction(found[0].seq, *block[0], max_ns=max_ns)
        return found[0] if found else None

    def _to_instruction(self, seq: int, start: int, n: int, pc: int, size: int, *,
                        max_ns: int) -> None:
        """Record ``seq`` came from the block of ``n`` instructions at linear ``pc``
        that began after instruction ``start``, counted whole, and the vCPU stopped in
        it or at its end. Where the last instruction that ran is the only ``in``/
        ``out`` of those that ran, it made the record: the vCPU is right after it.
        Else replay that block one instruction at a time (a target inside it makes
        the counter do so), to stop right after the instruction that made the record;
        if it is the block's last, that is where the vCPU was."""
        if not start < self.position <= start + n or n == 1:
            return
        if self.counter.last_ran_only_io(pc, size, self.position - start):
            return
        trace, counter = self.host.trace, self.counter
        got: list[int] = []

        def listen(rec: TraceRecord) -> None:
            if rec.seq == seq and not got:
                got.append(counter.count)        # exact: counted one by one here
                self._target = counter.count
                counter.stop_before(counter.count)

        with _no_gc():
            self.restore(self.nearest(start))
        trace.listeners.append(listen)
        try:
            self._target = start + n - 1
            self._forward(max_ns)
        finally:
            trace.listeners.remove(listen)
            self._target = None
        if not got:
            self.goto(start + n)

    def _stop_at_record(self, seq: int, before: tuple[int, int],
                        max_ns: int) -> TraceRecord | None:
        """Replay from the clean point ``before`` until record ``seq`` is emitted, and stop
        the vCPU before its next instruction."""
        trace, counter = self.host.trace, self.counter
        got: list[TraceRecord] = []
        block: list[tuple[int, int, int, int] | None] = []

        def listen(rec: TraceRecord) -> None:
            if rec.seq == seq:
                got.append(rec)
                block.append(counter.running_block())
                self._target = counter.count     # stop before the next instruction
                counter.stop_now()

        with _no_gc():
            i = bisect.bisect_right(self._keys, before)
            self.restore(self.checkpoints[max(0, i - 1)])
        trace.listeners.append(listen)
        try:
            self._target = None
            self._forward(max_ns)
        finally:
            trace.listeners.remove(listen)
        if got and block[0] is not None:
            self._to_instruction(seq, *block[0], max_ns=max_ns)
        return got[0] if got else None

    def _forward(self, max_ns: int) -> None:
        cpu = self.cpu
        cpu.run = self._vcpu_run  # type: ignore[method-assign]
        self._front_at = None
        try:
            self.host.run(until=self._clean_point, max_time_ns=max_ns)
            self.clean = True
        except _Paused:
            self.clean = False
        except KeyboardInterrupt:  # XenHost.run raises it between slices: a clean point
            self.clean = True
            raise
        except BaseException:
            self.clean = False
            raise
        finally:
            del cpu.run
            self.counter.stop_before(None)
            self.furthest = max(self.furthest, self.position)

    def _clean_point(self) -> bool:
        """The run loop's ``until``: between two slices. Checkpoints in the first pass;
        the new trace records tried on ``run``'s ``done``."""
        if self.runs >= len(self.log):       # the first pass: checkpoints are due by time
            now = time.perf_counter()
            if self._front_at is not None:
                self._front_spent += now - self._front_at
            self._front_at = now
            if (self._front_spent >= self.checkpoint_every_s
                    and self._keys[-1] < (self.position, self.runs)):
                self.checkpoint()
                self._front_spent = 0.0
                self._front_at = time.perf_counter()
        else:
            self._front_at = None
        if self._watch is not None:
            done, seq0 = self._watch
            trace = self.host.trace
            records = trace.records
            first = trace.dropped
            domid = self.d.domid
            for rec in records[max(0, self._scanned - first):]:
                if rec.seq >= seq0 and rec.dom == domid and done(rec):
                    self._found = rec
                    return True
            self._scanned = first + len(records)
            self._before = (self.position, self.runs)
        return False

    def _vcpu_run(self, budget: int, *, begin: int | None = None) -> RunResult:
        """Stands in for ``X86Vcpu.run`` while the Replay drives the guest.

        In the first pass a slice also ends when the next checkpoint is due (its
        instructions or its virtual time): the checkpoint is taken at the clean point
        after it. A replay ends each slice where the log says."""
        counter = self.counter
        counter.adopt()            # code traps the vCPU added in its last slice
        start = counter.count
        rec = self.log[self.runs] if self.runs < len(self.log) else None
        if rec is not None and rec.start != start:
            self._diverged(f"a run began at {start}, the first pass's at {rec.start}")
            rec = None
        cap = start + MAX_SLICE_INSTRUCTIONS if rec is None else None
        limits = [x for x in (self._target, rec.end if rec is not None else None, cap)
                  if x is not None]
        counter.stop_before(min(limits) if limits else None)
        result = type(self.cpu).run(self.cpu, budget, begin=begin)
        at = counter.count
        if counter.reached:
            if rec is None and at == cap and (self._target is None or at < self._target):
                # a long slice cut (a clean point for a checkpoint): it yields here
                result = RunResult(ExitReason.YIELD, result.executed, charged=result.charged)
            elif rec is None or at < rec.end:
                raise _Paused  # the position asked for, a breakpoint, or a record found
        if rec is not None:
            if at == rec.end:      # where the first pass ended this run: as it did
                result = rec.result
            else:
                self._diverged(f"a run ended at {at}, the first pass's at {rec.end} "
                               f"({result.reason.value}, first {rec.result.reason.value})")
                rec = None
        if rec is None:
            self.log.append(Slice(start, at, result))
        self.runs += 1
        return result

    def _diverged(self, what: str) -> None:
        """The replay left the first pass's timeline: forget the first pass from here."""
        self.divergences.append((self.position, what))
        del self.log[self.runs:]
        keep = bisect.bisect_right(self._keys, (self.position, self.runs))
        del self.checkpoints[keep:]
        del self._keys[keep:]
        self.furthest = self.position

    def nearest(self, position: int) -> Snapshot:
        """The last checkpoint at or before ``position``."""
        i = bisect.bisect_right(self._keys, (position, 1 << 62))
        return self.checkpoints[max(0, i - 1)]

    # ============================================================ checkpoints
    def _frames(self) -> tuple[tuple[int, int], ...]:
        """The frames a checkpoint keeps, as runs of consecutive mfns in mfn order: the
        guest's RAM, the Xen pages it shares, and Dom0's shared pages (event channel
        bits of the device model's ports)."""
        runs = sorted([(e.mfn, e.count) for e in self.d.extents]
                      + [(m, 1) for m in self.d.shared_mfns])
        dom0 = self.host.domains.get(0)
        if dom0 is not None and dom0 is not self.d:
            runs += sorted((m, 1) for m in dom0.shared_mfns)
            runs.sort()
        merged: list[tuple[int, int]] = []
        for mfn, count in runs:
            if merged and merged[-1][0] + merged[-1][1] == mfn:
                merged[-1] = (merged[-1][0], merged[-1][1] + count)
            elif not merged or merged[-1][0] + merged[-1][1] < mfn:
                merged.append((mfn, count))
        return tuple(merged)

    def _live(self, run: tuple[int, int]) -> np.ndarray[Any, Any]:
        """The frames of ``run`` in host memory, one row of uint64 per page (a view)."""
        mfn, count = run
        return np.frombuffer(self.host.mem.view(mfn << 12, count << 12),
                             dtype=np.uint64).reshape(count, PAGE // 8)

    def _imaged(self, run: tuple[int, int]
                ) -> tuple[np.ndarray[Any, Any], list[bytes]] | None:
        """The image's rows of ``run`` (a view) and the last checkpoint's pages of it, if
        the image has the whole run (it may hold it as part of a longer one)."""
        mfn, count = run
        for (m, c), rows in self._image.items():
            if m <= mfn and mfn + count <= m + c:
                o = mfn - m
                return rows[o:o + count], self._ref_pages[(m, c)][o:o + count]
        return None

    @staticmethod
    def _diff(rows: np.ndarray[Any, Any], image: np.ndarray[Any, Any]) -> list[int]:
        """Indices of the pages that differ."""
        return np.flatnonzero((rows != image).any(axis=1)).tolist()  # type: ignore[no-any-return]

    def checkpoint(self) -> Snapshot:
        """Save the state at this clean point (the run loop between two slices)."""
        host, d = self.host, self.d
        frames = self._frames()
        pages: list[bytes] = []
        image: dict[tuple[int, int], np.ndarray[Any, Any]] = {}
        by_run: dict[tuple[int, int], list[bytes]] = {}
        for run in frames:
            rows = self._live(run)
            imaged = self._imaged(run)
            if imaged is None:
                # a new image: np.zeros is calloc'd, so its pages of zeros take neither
                # memory nor time until written, and only the guest's non-zero pages are
                # copied in (most of a freshly built guest's RAM is zeros)
                used = np.flatnonzero(rows.any(axis=1))
                copy_ = np.zeros(rows.shape, dtype=rows.dtype)
                copy_[used] = rows[used]
                mine = [_ZERO] * len(rows)
                for i in used.tolist():
                    mine[i] = copy_[i].tobytes()
            else:
                copy_, old = imaged
                mine = list(old)
                for i in self._diff(rows, copy_):
                    mine[i] = rows[i].tobytes()
                    copy_[i] = rows[i]
            image[run] = copy_
            by_run[run] = mine
            pages += mine
        self._image, self._ref_pages, self._ref = image, by_run, None
        cpus = [(v.cpu, v.cpu.save_state(), {k: getattr(v.cpu, k) for k in _CPU_FIELDS
                                              if hasattr(v.cpu, k)})
                for v in d.vcpus if v.cpu is not None]
        devices = self._device_objects()
        memo = self._device_memo(devices)
        objects = [(obj, copy.deepcopy(vars(obj), dict(memo))) for obj in devices]
        scalars: list[tuple[Any, dict[str, Any]]] = []
        for v in host._all_vcpus():
            scalars.append((v, _shallow_state(v, ("cpu", "domain", "time_info"))))
            if v.cpu is not None and v.domain is d:
                scalars.append((v.cpu.exits, _shallow_state(v.cpu.exits, ("host", "v", "hvm"))))
            if v.pv is not None and v.domain is d:
                scalars.append((v.pv, _shallow_state(v.pv)))
        for p in host.pcpus:
            scalars.append((p, _shallow_state(p)))
        scalars.append((host.sched, _shallow_state(host.sched)))
        scalars.append((host, {k: getattr(host, k) for k in (
            "instructions", "_slice_end", "_dom0_time")}
            | {"_dom0_pending": list(host._dom0_pending)}))
        # (not p2m_gen: it counts changes to the P2M, which a restore leaves as it is)
        scalars.append((d, {k: v for k, v in vars(d).items()
                            if isinstance(v, (int, bool, str, type(None))) and k != "p2m_gen"}))
        if d.hvm is not None:
            scalars.append((d.hvm, _shallow_state(d.hvm, (
                "host", "d", "serial", "_ioreq_view", *self._hvm_devices()))))
        if self.dm is not None:
            scalars.append((self.dm, {"requests": self.dm.requests}))
        extra: list[tuple[Callable[[Any], None], Any]] = []
        for dom in (d, host.domains.get(0)):
            table = dom.evtchn if dom is not None else None
            if table is not None:
                extra.append((self._evtchn_restorer(table),
                              ({p: dataclasses.replace(ch) for p, ch in table.ports.items()},
                               dict(table.virq_to_port))))
        if self.dm is not None:
            extra.append((self._ioreq_page_restorer(self.dm), self.dm._page))
        trace = host.trace
        lengths = {
            "trace": trace.dropped + len(trace), "trace_dropped": trace.dropped,
            "console": len(d.console), "log": len(host.log.lines), "log_size": host.log._size,
            "serial": len(d.hvm.serial) if d.hvm is not None else 0,
        }
        objects.append((host.log, {"_partial": dict(host.log._partial)}))
        vga = self.dm.vga if self.dm is not None else None
        p2m = (np.frombuffer(d.p2m, dtype=np.uint64).copy(), dict(d.p2m_high))
        snap = Snapshot(self.position, self.runs, self.v.cpu_time, cpus, self.counter.save(),
                        frames, pages, bytes(vga.vram) if vga is not None else b"",
                        objects, scalars, lengths, extra, p2m)
        key = (snap.position, snap.runs)
        i = bisect.bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            self.checkpoints[i] = snap
        else:
            self._keys.insert(i, key)
            self.checkpoints.insert(i, snap)
        return snap

    @staticmethod
    def _evtchn_restorer(table: Any) -> Callable[[Any], None]:
        def put_back(saved: Any) -> None:
            ports, virqs = saved
            table.ports = {p: dataclasses.replace(ch) for p, ch in ports.items()}
            table.virq_to_port = dict(virqs)
        return put_back

    @staticmethod
    def _ioreq_page_restorer(dm: DeviceModel) -> Callable[[Any], None]:
        """The device model maps the guest's ioreq page at its first ioreq and keeps the
        mapping. Back to before that, Dom0 unmaps it, so the replay maps it (and traces
        it) where the first pass did; to after it, the page is mapped as it was then.
        (What Dom0 traces meanwhile is not part of the run: the restore cuts it.)"""
        def put_back(saved: Any) -> None:
            live = dm._page
            if live is saved:
                return
            if saved is not None and live is not None and live[2] == saved[2]:
                dm._page = (saved[0], saved[1], saved[2], live[3])
                return
            if live is not None and dm.kernel is not None:
                dm.kernel.unmap_grant(live[3])
            dm._page = None
            if saved is not None and dm.kernel is not None:
                mapped = dm.kernel.map_foreign_mfn(dm.d.domid, saved[2])
                if mapped is not None:
                    dm._page = (saved[0], saved[1], saved[2], mapped)
        return put_back

    def _hvm_devices(self) -> list[str]:
        """The attributes of the domain's HvmDomain that are Xen's emulated devices."""
        hvm = self.d.hvm
        if hvm is None:
            return []
        names = []
        for key, value in vars(hvm).items():
            items = value.values() if isinstance(value, dict) else (value,)
            if any(type(x).__module__.startswith("xenlab.xen.hvm.") for x in items):
                names.append(key)
        return names

    def _device_memo(self, devices: list[Any]) -> dict[int, Any]:
        """A deepcopy memo in which the devices stay themselves: a device's bound methods
        and its references to another device are not copied with its state."""
        memo = dict(self._memo_base)
        memo.update((id(x), x) for x in devices)
        return memo

    def _device_objects(self) -> list[Any]:
        objs: list[Any] = []
        hvm = self.d.hvm
        for key in self._hvm_devices():
            value = getattr(hvm, key)
            objs += list(value.values()) if isinstance(value, dict) else [value]
        if self.dm is not None:
            objs += [self.dm.pci, self.dm.serial, self.dm.kbd, *self.dm.ide]
            if self.dm.vga is not None:
                objs.append(self.dm.vga.regs)
        return objs

    def restore(self, snap: Snapshot) -> None:
        """Put the host back exactly as it was at ``snap`` (a clean point)."""
        host, d = self.host, self.d
        if snap.p2m is not None and not d.is_pv:
            self._p2m_to(snap.p2m)
        frames = self._frames()
        owned = [range(m, m + c) for m, c in frames]
        for mfn, count in snap.frames:
            if not any(mfn in r and mfn + count - 1 in r for r in owned):
                raise XenlabError(f"restore: {d.name} no longer has the frames "
                                  f"{mfn:#x}-{mfn + count - 1:#x} it had at instruction "
                                  f"{snap.position}: the checkpoint cannot be restored")
        todo: list[int] = []                      # mfns rewritten
        offset = 0
        image: dict[tuple[int, int], np.ndarray[Any, Any]] = {}
        by_run: dict[tuple[int, int], list[bytes]] = {}
        for run in snap.frames:
            rows = self._live(run)
            n = len(rows)
            mine = snap.pages[offset:offset + n]
            imaged = self._imaged(run)
            if imaged is None:
                copy_, changed = rows.copy(), set(range(n))
            else:
                copy_, old = imaged
                changed = set(self._diff(rows, copy_))
                if self._ref is not snap:
                    changed.update(i for i, (a, b) in enumerate(zip(old, mine, strict=True))
                                   if a is not b)
            for i in sorted(changed):
                rows[i] = np.frombuffer(mine[i], dtype=np.uint64)
                copy_[i] = rows[i]
                todo.append(run[0] + i)
            image[run], by_run[run] = copy_, list(mine)
            offset += n
        self._image, self._ref_pages, self._ref = image, by_run, snap
        self._drop_code(todo)
        for cpu, state, fields in snap.cpus:
            cpu.restore_state(state)
            for k, value in fields.items():
                setattr(cpu, k, value)
            cpu.end_slice()     # between slices (a stop inside one left its budget running)
        self.counter.restore(snap.counter)
        if self.dm is not None and self.dm.vga is not None:
            ctypes.memmove(self.dm.vga.vram, snap.vram, len(snap.vram))
        memo = self._device_memo([obj for obj, _state in snap.objects])
        for obj, state in snap.objects:
            if obj is host.log:
                obj._partial = dict(state["_partial"])
                continue
            fresh = copy.deepcopy(state, dict(memo))
            vars(obj).clear()
            vars(obj).update(fresh)
        for obj, state in snap.scalars:
            _restore_shallow(obj, state)
        self._streams_to(snap.lengths)
        for put_back, saved in snap.extra:
            put_back(saved)
        host.trace.cut(snap.lengths["trace"])   # what Dom0 traced putting things back
        self.runs = snap.runs
        self.clean = True

    def _streams(self) -> dict[str, Any]:
        """The output streams a checkpoint keeps the length of (not the trace)."""
        out: dict[str, Any] = {"console": self.d.console, "log": self.host.log.lines}
        if self.d.hvm is not None:
            out["serial"] = self.d.hvm.serial
        return out

    def _streams_to(self, n: dict[str, int]) -> None:
        """Cut the trace and the output streams back to a checkpoint's lengths, or put
        back what they held up to them (a restore forwards)."""
        trace = self.host.trace
        end = trace.dropped + len(trace)
        tail = self._tails.setdefault("trace", _Tail())
        if end > n["trace"]:
            tail.cut(n["trace"], end, trace.cut(n["trace"]))
        elif end < n["trace"]:
            ahead = tail.ahead(end, n["trace"])
            if ahead is None:
                raise XenlabError("restore: the trace up to the checkpoint is not known")
            trace.paste(ahead)
        for name, stream in self._streams().items():
            tail, end = self._tails.setdefault(name, _Tail()), len(stream)
            if end > n[name]:
                tail.cut(n[name], end, stream[n[name]:])
                del stream[n[name]:]
            elif end < n[name]:
                ahead = tail.ahead(end, n[name])
                if ahead is None:
                    raise XenlabError(f"restore: the {name} up to the checkpoint is not known")
                stream += ahead
        self.host.log._size = n["log_size"]

    def restorable(self, snap: Snapshot) -> bool:
        """Whether ``snap`` can be restored from here: its frames must still be the
        guest's, or free to be taken back (a Back puts back the RAM pages the guest gave
        up since, or hands back those it populated; forwards the same, the other way)."""
        if snap.p2m is None or self.d.is_pv:
            owned = [range(m, m + c) for m, c in self._frames()]
            return all(any(m in r and m + c - 1 in r for r in owned) for m, c in snap.frames)
        d, mem = self.d, self.host.mem
        for _g, _now, then in self._p2m_diff(snap.p2m):
            if (then != INVALID_MFN and then not in d.shared_mfns and not d.owns_mfn(then)
                    and mem.owner[then] != FREE):
                return False
        return True

    def _p2m_diff(self, saved: tuple[Any, dict[int, int]]) -> list[tuple[int, int, int]]:
        """(gfn, mfn now, mfn then) for every gfn whose P2M entry differs from ``saved``."""
        d = self.d
        dense, high = saved
        live = np.frombuffer(d.p2m, dtype=np.uint64)
        n = min(len(live), len(dense))
        gfns = set(np.flatnonzero(live[:n] != dense[:n]).tolist())
        gfns.update(range(n, max(len(live), len(dense))))
        gfns.update(g for g in set(high) | set(d.p2m_high) if high.get(g) != d.p2m_high.get(g))
        out = []
        for g in sorted(gfns):
            then = int(dense[g]) if g < len(dense) else high.get(g, INVALID_MFN)
            now = d.pfn_to_mfn(g)
            if now != then:
                out.append((g, now, then))
        return out

    def _p2m_to(self, saved: tuple[Any, dict[int, int]]) -> None:
        """Put the HVM guest's P2M as it was at a checkpoint: frames populated since (or
        before, going forwards) are given back to the heap, frames given up are taken
        back (the same ones: the allocator hands out the lowest free frames first, so a
        replay populates the same frames again), Xen pages (shared_info, the grant table)
        unmapped or mapped where they were."""
        host, d = self.host, self.d
        diff = self._p2m_diff(saved)
        for g, now, _then in diff:
            if now == INVALID_MFN:
                continue
            if now in d.shared_mfns:
                d.set_p2m(g, INVALID_MFN)
                host._hvm_p2m_update(d, g << 12, None)
            elif not host.guest_remove_pages(d, g, 1):
                raise XenlabError(f"restore: gfn {g:#x} of {d.name} is still in use")
        for g, _now, then in diff:
            if then == INVALID_MFN or d.pfn_to_mfn(g) == then:
                continue
            if then in d.shared_mfns:
                host.hvm_map_xen_page(d, g, then)
            elif host.mem.alloc_frame(d.domid, then):
                host._assign(d, [Extent(then, 1)], g)
            else:
                raise XenlabError(f"restore: frame {then:#x} that was at gfn {g:#x} of "
                                  f"{d.name} has been given to someone else since")

    def _drop_code(self, mfns: list[int]) -> None:
        """Translated code of the frames a restore rewrote is stale: drop it (per range of
        guest-physical pages while a vCPU runs with paging off, where linear =
        guest-physical; else all of it: ``invalidate_code_phys``)."""
        if not mfns:
            return
        gfns = sorted(g for g in map(self.d.mfn_to_pfn, mfns) if g is not None)
        ranges: list[list[int]] = []
        for g in gfns:
            if ranges and ranges[-1][1] == g:
                ranges[-1][1] = g + 1
            else:
                ranges.append([g, g + 1])
        for v in self.d.vcpus:
            cpu = v.cpu
            if cpu is None:
                continue
            if self.d.is_pv or len(ranges) > MAX_CODE_RANGES:
                cpu.flush_code()   # (a PV vCPU's ranges would be machine frames)
                continue
            for first, end in ranges:
                if cpu.invalidate_code_phys(first << 12, end << 12):
                    break      # all of it (paging on)
