"""The one trace path: every observable step becomes a typed ``TraceRecord``.

Hypercalls (number, name, decoded arguments, return value), domain life-cycle
events, scheduling decisions, faults, and later VM exits, ioreqs, events,
grants, xenstore accesses and firmware phases all go through ``Trace.emit``.
Views, widgets and tests read only these records. ``--trace FILE.jsonl``
writes them one JSON object per line; the same configs give byte-identical
files (virtual time, no wall clock, no addresses of Python objects).

The trace costs bounded memory whatever a guest does: like xentrace's per-CPU
ring buffers, it keeps the most recent ``limit`` records and counts the oldest
ones it let go (``dropped``, xentrace's lost records). What is let go is not
forgotten entirely: ``counts()`` has every record's (dom, kind, name) for the
whole run, and a file given to ``spill_to`` receives each record as it leaves
memory, so ``--trace`` files still hold every record.

Real Xen: xen/common/trace.c and tools/xentrace (xentrace records are binary
``t_rec``s with event ids; xenlab keeps names instead of ids so a student can
read them)
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any, Protocol

from xenlab.errors import UsageError

__all__ = ["DEFAULT_LIMIT", "Kind", "LineSink", "Trace", "TraceRecord"]

#: Records a trace keeps by default: the most recent 2**18. A record costs about 420 bytes
#: (a hypercall's: the tuple or TraceRecord, its args dict, its time), and a trace holds
#: up to a quarter more than its limit between two trims, so the default ring costs about
#: 140 MB at most (BENCHMARKS.md, "Trace memory"). A SeaBIOS boot is about 28,000 records.
DEFAULT_LIMIT = 1 << 18


class Kind(str, enum.Enum):
    HYPERCALL = "hypercall"
    LIFECYCLE = "lifecycle"
    SCHED = "sched"
    FAULT = "fault"
    LOG = "log"
    EVENT = "event"
    GRANT = "grant"
    XENSTORE = "xenstore"
    VMEXIT = "vmexit"
    IOREQ = "ioreq"
    PHASE = "phase"
    CONSOLE = "console"
    IO = "io"


Render = Callable[..., dict[str, Any]]


class LineSink(Protocol):
    """Where JSON lines go: an open text file, or anything with its ``writelines``."""

    def writelines(self, lines: Iterable[str], /) -> None: ...

#: (dom, kind, name) of a pending tuple and of a TraceRecord: what ``counts`` counts.
_TUPLE_KEY = itemgetter(1, 3, 4)
_RECORD_KEY = attrgetter("dom", "kind", "name")


class TraceRecord:
    """One step: ``seq``, virtual ``time`` (ns), ``dom``, ``vcpu``, ``kind``, ``name``, details.

    Details may be kept as the plain values they were made of and a function that turns
    them into the ``args`` dict the first time anything reads them (``_render``): the hot
    exit paths emit thousands of records nobody may look at, and formatting them on
    demand keeps that cheap. The record reads the same either way."""

    __slots__ = ("_args", "_render", "dom", "kind", "name", "ret", "seq", "time", "vcpu")

    def __init__(self, seq: int, time: int, dom: int, vcpu: int, kind: Kind, name: str,
                 args: Any, ret: Any, render: Render | None = None) -> None:
        """``args`` is the details dict, or with ``render`` the values to make it from."""
        self.seq = seq
        self.time = time
        self.dom = dom
        self.vcpu = vcpu
        self.kind = kind
        self.name = name
        self._args = args
        self._render = render
        self.ret = ret

    @property
    def args(self) -> dict[str, Any] | None:
        render = self._render
        if render is not None:
            self._render = None
            self._args = render(*self._args)  # type: ignore[misc]
        return self._args

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq, "time": self.time, "dom": self.dom, "vcpu": self.vcpu,
            "kind": self.kind.value, "name": self.name,
        }
        if self.args:
            out["args"] = self.args
        if self.ret is not None:
            out["ret"] = self.ret
        return out

    def __repr__(self) -> str:
        return f"TraceRecord({json.dumps(self.to_dict())})"


def _jsonl(rec: TraceRecord) -> str:
    return json.dumps(rec.to_dict(), separators=(",", ":")) + "\n"


class Trace:
    """A ring of the most recent ``limit`` records, plus optional live listeners.

    Emitting a record appends one plain tuple to a pending list; ``records`` makes the
    pending tuples into ``TraceRecord`` objects the first time anything reads it. The hot
    paths (every VM exit, ioreq and event: ~28,000 records in a SeaBIOS boot) so cost a
    tuple each, and a run that nobody reads back pays for no objects. Records read the
    same either way, and a listener gets every record as it is emitted.

    At most ``limit`` records are kept: past it the oldest are let go, a quarter of the
    limit at a time (so the hot path trims rarely; ``len`` and ``records`` never show
    more than ``limit``). ``dropped`` counts them, ``seq`` numbers every record of the
    run (``records[i].seq == dropped + i``), ``counts()`` stays exact for all records,
    and a ``spill_to`` file gets each record as it leaves memory."""

    def __init__(self, *, enabled: bool = True, limit: int | None = None) -> None:
        """``limit`` defaults to ``DEFAULT_LIMIT`` (read when the trace is made)."""
        self.enabled = enabled
        self._dropped = 0                   # records let go from the front of the ring
        self._dropped_counts: Counter[tuple[int, Kind, str]] = Counter()
        self._spill: LineSink | None = None
        self._listeners: list[Callable[[TraceRecord], None]] = []
        # functions called with each new record of some kinds only (``watch``)
        self._watchers: list[tuple[frozenset[Kind], Callable[[TraceRecord], None]]] = []
        self._watched: frozenset[Kind] = frozenset()
        self._records: list[TraceRecord] = []
        # (time, dom, vcpu, kind, name, render or None, values or args, ret)
        self._pending: list[tuple[Any, ...]] = []
        self._limit = 0
        self._room = 1  # pending entries at which emit calls _flush
        self.limit = DEFAULT_LIMIT if limit is None else limit

    @property
    def limit(self) -> int:
        """How many of the most recent records are kept (the ring's size)."""
        return self._limit

    @limit.setter
    def limit(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise UsageError(f"the trace limit must be a whole number of records >= 0, "
                             f"not {limit!r}")
        self._limit = limit
        self._set_room()

    def _set_room(self) -> None:
        # Trim when the ring holds a quarter more than its limit: one trim per
        # limit/4 records keeps both the memory and the hot path's cost bounded.
        self._room = max(1, self._limit + max(1, self._limit >> 2) - len(self._records))

    @property
    def dropped(self) -> int:
        """How many of the oldest records were let go (they are no longer in ``records``;
        ``counts()`` still has them, a ``spill_to`` file got them)."""
        return self._dropped + max(0, len(self._records) + len(self._pending) - self._limit)

    @dropped.setter
    def dropped(self, value: int) -> None:
        self._trim(self._limit)
        self._dropped = value

    @property
    def listeners(self) -> list[Callable[[TraceRecord], None]]:
        """Functions called with each record from now on (add with ``append``)."""
        if self._pending:
            self._make_records()  # a listener added now must not see earlier records
        return self._listeners

    def wants_at_once(self, kinds: Iterable[Kind]) -> bool:
        """Someone is called with records of one of ``kinds`` as they are emitted (a
        listener, or a watcher of such a kind): an exit must then make its record at once,
        not when the vCPU hands over what it kept natively (``X86Vcpu.log_port_writes``)."""
        return bool(self._listeners) or any(k in self._watched for k in kinds)

    @property
    def records(self) -> list[TraceRecord]:
        """The records kept, oldest first: the most recent ``limit`` (``del`` on a tail
        forgets them). Read it again after running: a list read earlier does not see
        records emitted since, and loses its oldest ones when the ring trims."""
        self._trim(self._limit)
        if self._pending:
            self._make_records()
        return self._records

    def emit(self, time: int, dom: int, vcpu: int, kind: Kind, name: str,
             args: dict[str, Any] | None = None, ret: Any = None) -> None:
        if not self.enabled:
            return
        pending = self._pending
        pending.append((time, dom, vcpu, kind, name, None, args, ret))
        if (len(pending) >= self._room or self._listeners
                or (self._watched and kind in self._watched)):
            self._flush()

    def emit_deferred(self, time: int, dom: int, vcpu: int, kind: Kind, name: str,
                      render: Render, values: tuple[Any, ...], ret: Any = None) -> None:
        """``emit`` whose details are ``render(*values)``, made when first read. ``values``
        must be plain values (ints, strings) so the record says what they were now.
        (One tuple, not ``*values``: a call that packs varargs costs twice as much, and
        this runs for every VM exit, ioreq and event.)"""
        if not self.enabled:
            return
        pending = self._pending
        pending.append((time, dom, vcpu, kind, name, render, values, ret))
        if (len(pending) >= self._room or self._listeners
                or (self._watched and kind in self._watched)):
            self._flush()

    def emit_deferred_series(self, dom: int, vcpu: int, kind: Kind, name: str,
                             render: Render, times: list[int],
                             values: list[tuple[Any, ...]]) -> None:
        """``emit_deferred`` for each time and values in turn, one record each, as one
        call: the exits a vCPU kept natively (a firmware's debug-port characters,
        thousands in a boot) are handed over together. The same records, in order."""
        if not self.enabled or not times:
            return
        pending = self._pending
        pending.extend(zip(times, repeat(dom), repeat(vcpu), repeat(kind), repeat(name),
                           repeat(render), values, repeat(None)))
        if (len(pending) >= self._room or self._listeners
                or (self._watched and kind in self._watched)):
            self._flush()

    def _flush(self) -> None:
        """Off the hot path: hand new records to the listeners, and when the ring holds a
        quarter more than its limit, let the oldest go down to the limit."""
        if self._listeners or self._watched:
            self._make_records()
        if len(self._records) + len(self._pending) >= self._limit + max(1, self._limit >> 2):
            self._trim(self._limit)
        self._set_room()

    def _make_records(self) -> None:
        """Pending tuples -> TraceRecords, then the listeners."""
        pending, records = self._pending, self._records
        self._pending = []
        first = len(records)
        for seq, (time, dom, vcpu, kind, name, render, args, ret) in enumerate(
                pending, self._dropped + first):
            records.append(TraceRecord(seq, time, dom, vcpu, kind, name, args, ret, render))
        self._set_room()
        for rec in records[first:] if self._listeners else ():
            for listener in self._listeners:
                listener(rec)
        for rec in records[first:] if self._watchers else ():
            if rec.kind in self._watched:
                for kinds, watcher in self._watchers:
                    if rec.kind in kinds:
                        watcher(rec)

    def watch(self, kinds: Iterable[Kind],
              watcher: Callable[[TraceRecord], None]) -> Callable[[], None]:
        """Call ``watcher`` with each new record of one of ``kinds`` as it is emitted (a
        listener that costs the other records nothing: they stay plain tuples). Returns
        the function that stops it."""
        entry = (frozenset(kinds), watcher)
        self._watchers.append(entry)
        self._watched = frozenset().union(*(k for k, _w in self._watchers))

        def unwatch() -> None:
            if entry in self._watchers:
                self._watchers.remove(entry)
                self._watched = frozenset().union(*(k for k, _w in self._watchers))
        return unwatch

    def _trim(self, keep: int) -> None:
        """Let the oldest records go until at most ``keep`` are left: count them, write
        them to the spill file, and number the rest on from them."""
        records, pending = self._records, self._pending
        excess = len(records) + len(pending) - keep
        if excess <= 0:
            return
        if records:
            gone = records[:excess]
            self._dropped_counts.update(map(_RECORD_KEY, gone))
            if self._spill is not None:
                self._spill.writelines(map(_jsonl, gone))
            del records[:len(gone)]
            self._dropped += len(gone)
            excess -= len(gone)
        if excess > 0:  # records is empty now: the oldest are pending tuples
            gone_t = pending[:excess]
            self._dropped_counts.update(map(_TUPLE_KEY, gone_t))
            if self._spill is not None:
                self._spill.writelines(
                    _jsonl(TraceRecord(seq, time, dom, vcpu, kind, name, args, ret, render))
                    for seq, (time, dom, vcpu, kind, name, render, args, ret)
                    in enumerate(gone_t, self._dropped))
            del pending[:excess]
            self._dropped += excess
        self._set_room()

    def cut(self, total: int) -> list[Any]:
        """Forget the records numbered ``total`` and after (the run went back to before
        they were emitted: the boot stepper's Back) and return them, oldest first, as
        kept (TraceRecords, or the plain tuples of records nobody has read), for
        ``paste``."""
        records, pending = self._records, self._pending
        keep = max(0, total - self._dropped)
        if keep < len(records):
            gone: list[Any] = records[keep:] + pending
            del records[keep:]
            pending.clear()
        else:
            gone = pending[keep - len(records):]
            del pending[keep - len(records):]
        self._set_room()
        return gone

    def paste(self, items: list[Any]) -> None:
        """Put back records ``cut`` returned, after the last one kept (the run went
        forward again to where they were emitted). Listeners are not called again."""
        for item in items:
            if isinstance(item, TraceRecord):
                if self._pending:   # made into records, without telling anyone again
                    listeners, watchers = self._listeners, self._watchers
                    self._listeners, self._watchers = [], []
                    self._make_records()
                    self._listeners, self._watchers = listeners, watchers
                self._records.append(item)
            else:
                self._pending.append(item)
        if len(self._records) + len(self._pending) >= self._limit + max(1, self._limit >> 2):
            self._trim(self._limit)
        self._set_room()

    def spill_to(self, fp: LineSink | None) -> None:
        """From now on, write each record the ring lets go to ``fp`` (JSON lines, as
        ``write_jsonl``): a file given before the run, then ``write_jsonl`` after it,
        holds every record. ``None`` stops it."""
        self._spill = fp

    def counts(self) -> Counter[tuple[int, Kind, str]]:
        """Records per ``(dom, kind, name)`` over the whole run, the dropped ones too."""
        out = Counter(self._dropped_counts)
        out.update(map(_RECORD_KEY, self._records))
        out.update(map(_TUPLE_KEY, self._pending))
        return out

    def count(self, *, kind: Kind | str | None = None, dom: int | None = None,
              name: str | None = None) -> int:
        """How many records of the whole run match (``select``'s filters), dropped or not."""
        k = Kind(kind) if kind is not None else None
        return sum(n for (d, kd, nm), n in self.counts().items()
                   if (k is None or kd is k) and (dom is None or d == dom)
                   and (name is None or nm == name))

    def __len__(self) -> int:
        """How many records are kept (without making the pending ones into objects)."""
        return min(len(self._records) + len(self._pending), self._limit)

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(self.records)

    def select(self, *, kind: Kind | str | None = None, dom: int | None = None,
               name: str | None = None) -> list[TraceRecord]:
        """The kept records that match (``count`` counts the dropped ones too)."""
        k = Kind(kind) if kind is not None else None
        return [r for r in self.records
                if (k is None or r.kind is k) and (dom is None or r.dom == dom)
                and (name is None or r.name == name)]

    def write_jsonl(self, fp: LineSink) -> None:
        """Write the kept records, one JSON object per line."""
        fp.writelines(map(_jsonl, self.records))

    @staticmethod
    def read_jsonl(lines: Iterable[str]) -> list[dict[str, Any]]:
        return [json.loads(line) for line in lines if line.strip()]
