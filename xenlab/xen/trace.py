"""The one trace path: every observable step becomes a typed ``TraceRecord``.

Hypercalls (number, name, decoded arguments, return value), domain life-cycle
events, scheduling decisions, faults, and later VM exits, ioreqs, events,
grants, xenstore accesses and firmware phases all go through ``Trace.emit``.
Views, widgets and tests read only these records. ``--trace FILE.jsonl``
writes them one JSON object per line; the same configs give byte-identical
files (virtual time, no wall clock, no addresses of Python objects).

Real Xen: xen/common/trace.c and tools/xentrace (xentrace records are binary
``t_rec``s with event ids; xenlab keeps names instead of ids so a student can
read them)
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

__all__ = ["Kind", "Trace", "TraceRecord"]


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


class Trace:
    """An append-only list of records plus optional live listeners.

    Emitting a record appends one plain tuple to a pending list; ``records`` makes the
    pending tuples into ``TraceRecord`` objects the first time anything reads it. The hot
    paths (every VM exit, ioreq and event: ~28,000 records in a SeaBIOS boot) so cost a
    tuple each, and a run that nobody reads back pays for no objects. Records read the
    same either way, ``seq`` is a record's index, and a listener still gets every record
    as it is emitted. At most ``limit`` records are kept; later ones are only counted
    (``dropped``)."""

    def __init__(self, *, enabled: bool = True, limit: int = 5_000_000) -> None:
        self.enabled = enabled
        self.dropped = 0
        self._listeners: list[Callable[[TraceRecord], None]] = []
        self._records: list[TraceRecord] = []
        # (time, dom, vcpu, kind, name, render or None, values or args, ret)
        self._pending: list[tuple[Any, ...]] = []
        self._limit = limit
        self._room = limit  # pending entries that still fit under the limit

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, limit: int) -> None:
        self._limit = limit
        self._room = max(1, limit - len(self._records))

    @property
    def listeners(self) -> list[Callable[[TraceRecord], None]]:
        """Functions called with each record from now on (add with ``append``)."""
        if self._pending:
            self._make_records()  # a listener added now must not see earlier records
        return self._listeners

    @property
    def records(self) -> list[TraceRecord]:
        """The records kept so far, in order (``del`` on a tail forgets them). Read it
        again after running: a list read earlier does not see records emitted since."""
        if self._pending:
            self._make_records()
        return self._records

    def emit(self, time: int, dom: int, vcpu: int, kind: Kind, name: str,
             args: dict[str, Any] | None = None, ret: Any = None) -> None:
        if not self.enabled:
            return
        pending = self._pending
        pending.append((time, dom, vcpu, kind, name, None, args, ret))
        if len(pending) >= self._room or self._listeners:
            self._make_records()

    def emit_deferred(self, time: int, dom: int, vcpu: int, kind: Kind, name: str,
                      render: Render, values: tuple[Any, ...]) -> None:
        """``emit`` whose details are ``render(*values)``, made when first read. ``values``
        must be plain values (ints, strings) so the record says what they were now.
        (One tuple, not ``*values``: a call that packs varargs costs twice as much, and
        this runs for every VM exit, ioreq and event.)"""
        if not self.enabled:
            return
        pending = self._pending
        pending.append((time, dom, vcpu, kind, name, render, values, None))
        if len(pending) >= self._room or self._listeners:
            self._make_records()

    def _make_records(self) -> None:
        """Pending tuples -> TraceRecords (up to the limit), then the listeners."""
        pending, records = self._pending, self._records
        self._pending = []
        first = len(records)
        keep = max(0, self._limit - first)
        self.dropped += max(0, len(pending) - keep)
        for seq, (time, dom, vcpu, kind, name, render, args, ret) in enumerate(
                pending[:keep], first):
            records.append(TraceRecord(seq, time, dom, vcpu, kind, name, args, ret, render))
        self._room = max(1, self._limit - len(records))
        for rec in records[first:] if self._listeners else ():
            for listener in self._listeners:
                listener(rec)

    def __len__(self) -> int:
        """How many records are kept (without making the pending ones into objects)."""
        kept = len(self._records)
        return kept + min(len(self._pending), max(0, self._limit - kept))

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(self.records)

    def select(self, *, kind: Kind | str | None = None, dom: int | None = None,
               name: str | None = None) -> list[TraceRecord]:
        k = Kind(kind) if kind is not None else None
        return [r for r in self.records
                if (k is None or r.kind is k) and (dom is None or r.dom == dom)
                and (name is None or r.name == name)]

    def write_jsonl(self, fp: IO[str]) -> None:
        for rec in self.records:
            fp.write(json.dumps(rec.to_dict(), separators=(",", ":")))
            fp.write("\n")

    @staticmethod
    def read_jsonl(lines: Iterable[str]) -> list[dict[str, Any]]:
        return [json.loads(line) for line in lines if line.strip()]
