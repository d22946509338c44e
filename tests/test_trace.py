"""The trace (xenlab/xen/trace.py): records are kept as plain tuples until something reads
them; what anyone reads must be exactly what was emitted, in order, within the limit."""

from __future__ import annotations

from typing import Any

from xenlab.xen.trace import Kind, Trace, TraceRecord


def _args(port: int, value: int) -> dict[str, Any]:
    return {"port": hex(port), "value": hex(value)}


def _emit_some(t: Trace, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        if i % 2:
            t.emit_deferred(i * 10, 1, 0, Kind.VMEXIT, "io", _args, (0xE9, i))
        else:
            t.emit(i * 10, 0, 1, Kind.HYPERCALL, "xen_version", {"cmd": i}, ret=i)


def test_records_read_as_emitted_in_order() -> None:
    t = Trace()
    _emit_some(t, 6)
    assert len(t) == 6
    recs = t.records
    assert [r.seq for r in recs] == list(range(6))
    assert [r.time for r in recs] == [0, 10, 20, 30, 40, 50]
    assert recs[1].to_dict() == {"seq": 1, "time": 10, "dom": 1, "vcpu": 0, "kind": "vmexit",
                                 "name": "io", "args": {"port": "0xe9", "value": "0x1"}}
    assert recs[2].args == {"cmd": 2} and recs[2].ret == 2 and recs[2].kind is Kind.HYPERCALL
    _emit_some(t, 3, first=6)       # more after a read: appended to the same list
    assert t.records is recs and [r.seq for r in recs] == list(range(9))
    assert [r.name for r in t.select(kind="vmexit")] == ["io"] * 4


def test_limit_keeps_the_first_records_and_counts_the_rest() -> None:
    t = Trace(limit=5)
    _emit_some(t, 4)
    assert t.dropped == 0
    _emit_some(t, 7, first=4)        # crosses the limit with records still pending
    assert len(t) == 5
    assert len(t.records) == 5 and t.dropped == 6
    assert [r.seq for r in t.records] == [0, 1, 2, 3, 4]
    t.limit = 7                      # room again: two more are kept, later ones dropped
    _emit_some(t, 3, first=11)
    assert [r.time for r in t.records] == [0, 10, 20, 30, 40, 110, 120]
    assert t.dropped == 7


def test_pending_never_outgrows_the_limit() -> None:
    t = Trace(limit=100)
    _emit_some(t, 10_000)
    assert len(t._pending) <= 100   # made into records (and dropped) as they come
    assert len(t.records) == 100 and t.dropped == 9_900


def test_listener_sees_each_record_once_from_when_it_was_added() -> None:
    t = Trace()
    _emit_some(t, 3)                 # pending, not yet read
    seen: list[TraceRecord] = []
    t.listeners.append(seen.append)
    _emit_some(t, 2, first=3)
    assert [r.seq for r in seen] == [3, 4]
    t.listeners.clear()
    _emit_some(t, 2, first=5)
    assert [r.seq for r in seen] == [3, 4] and len(t.records) == 7


def test_disabled_trace_keeps_nothing() -> None:
    t = Trace(enabled=False)
    _emit_some(t, 5)
    assert t.records == [] and t.dropped == 0


def test_truncating_a_tail_then_emitting_continues_the_sequence() -> None:
    """What the stepper's Back does: forget the records after a checkpoint."""
    t = Trace()
    _emit_some(t, 8)
    del t.records[5:]
    _emit_some(t, 2, first=100)
    assert [r.seq for r in t.records] == list(range(7))
    assert [r.time for r in t.records][-2:] == [1000, 1010]
