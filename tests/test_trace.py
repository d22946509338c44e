"""The trace (xenlab/xen/trace.py): records are kept as plain tuples until something reads
them; what anyone reads must be exactly what was emitted, in order, within the limit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from xenlab.cli import main, run_configs
from xenlab.errors import UsageError
from xenlab.tools.libs.light.libxl import Libxl
from xenlab.tools.xl.xl_parse import parse_config_file
from xenlab.xen import trace as trace_mod
from xenlab.xen.setup import XenHost
from xenlab.xen.trace import Kind, Trace, TraceRecord

IMAGES = Path(__file__).resolve().parents[1] / "images"


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


def test_ring_keeps_the_most_recent_records_and_counts_the_dropped() -> None:
    t = Trace(limit=5)
    _emit_some(t, 4)
    assert t.dropped == 0
    _emit_some(t, 7, first=4)        # crosses the limit with records still pending
    assert len(t) == 5 and t.dropped == 6
    assert len(t.records) == 5 and t.dropped == 6
    assert [r.seq for r in t.records] == [6, 7, 8, 9, 10]   # seq numbers the whole run
    assert [r.time for r in t.records] == [60, 70, 80, 90, 100]
    t.limit = 7                      # a bigger ring: two more are kept before any drop
    _emit_some(t, 3, first=11)
    assert [r.seq for r in t.records] == [7, 8, 9, 10, 11, 12, 13]
    assert t.dropped == 7
    counts = t.counts()              # every record of the run, the dropped ones too
    assert counts[(0, Kind.HYPERCALL, "xen_version")] == 7
    assert counts[(1, Kind.VMEXIT, "io")] == 7
    assert t.count(kind="vmexit") == 7 and len(t.select(kind="vmexit")) == 4


def test_memory_stays_bounded_and_counts_exact() -> None:
    t = Trace(limit=100)
    _emit_some(t, 10_000)
    assert len(t._pending) + len(t._records) <= 125   # a quarter over the limit at most
    assert len(t) == 100 and len(t.records) == 100 and t.dropped == 9_900
    assert [r.seq for r in t.records] == list(range(9_900, 10_000))
    assert t.count(name="xen_version") == 5_000 and t.count(dom=1) == 5_000
    seen: list[TraceRecord] = []     # with a listener: records made as emitted, still bounded
    t.listeners.append(seen.append)
    _emit_some(t, 1_000, first=10_000)
    assert [r.seq for r in seen] == list(range(10_000, 11_000))
    assert len(t._records) <= 125 and t.dropped == 10_900 and t.count() == 11_000


def test_spill_gets_every_record_in_order_and_the_same_bytes() -> None:
    """What ``--trace`` relies on: the spilled lines, then ``write_jsonl``, are the file a
    trace that dropped nothing writes."""
    whole, ring = Trace(), Trace(limit=7)
    whole_out, ring_out = io.StringIO(), io.StringIO()
    ring.spill_to(ring_out)
    for t in (whole, ring):
        _emit_some(t, 50)
        assert t.records[3].args    # one record read (rendered) before it leaves memory
        _emit_some(t, 50, first=50)
    whole.write_jsonl(whole_out)
    ring.write_jsonl(ring_out)
    assert ring.dropped == 93 and whole.dropped == 0
    assert ring_out.getvalue() == whole_out.getvalue()
    assert [d["seq"] for d in Trace.read_jsonl(ring_out.getvalue().splitlines())] == \
        list(range(100))


def test_bad_limit_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="trace limit"):
        Trace(limit=-1)


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


# ------------------------------------------------------ a guest that loops on hypercalls
def _hcloop_cfg(tmp_path: Path, hypercalls: int) -> Path:
    """pv-bench with no compute loop: ``hypercalls`` round trips of xen_version, then
    power off (images/pv-bench/pv-bench.S, bench_hypercall_loop)."""
    cfg = tmp_path / "hcloop.cfg"
    kernel = IMAGES / "pv-bench" / "pv-bench.elf"
    cfg.write_text(f'name = "hcloop"\ntype = "pv"\nkernel = "{kernel}"\nmemory = 16\n'
                   f'vcpus = 1\ncmdline = "loop=0 hypercalls={hypercalls}"\n'
                   'on_poweroff = "preserve"\n')
    return cfg


@pytest.mark.skipif(not (IMAGES / "pv-bench" / "pv-bench.elf").exists(),
                    reason="pv-bench.elf not built")
def test_hypercall_loop_guest_keeps_the_trace_at_its_bound(tmp_path: Path) -> None:
    """Issue 12, item 5: host memory must not grow with a guest's hypercall rate. A guest
    that makes 3,000 hypercalls against a ring of 500 records: the trace holds the last
    500, counts the rest as dropped, and the hypercall counts stay exact."""
    host = XenHost(memory_mib=256, dom0_mem_mib=64)
    host.trace.limit = 500
    xl = Libxl(host)
    cfg = parse_config_file(str(_hcloop_cfg(tmp_path, 3_000)))
    d = xl.domain_create_new(cfg, xl.prepare(cfg))
    host.run(max_instructions=5_000_000)
    assert d.is_shut_down and d.hypercall_count > 3_000
    total = host.trace.dropped + len(host.trace)
    assert len(host.trace) == 500 and len(host.trace.records) == 500
    assert host.trace.dropped == total - 500 > 2_500
    recs = host.trace.records
    assert [r.seq for r in recs] == list(range(total - 500, total))   # the most recent
    assert recs[-1].name == "sched_op" and recs[-1].args["cmd"] == "SCHEDOP_shutdown"
    assert host.trace.count(kind=Kind.HYPERCALL, dom=d.domid, name="xen_version") == 3_000
    assert host.trace.count(kind=Kind.HYPERCALL, dom=d.domid) == d.hypercall_count


@pytest.mark.skipif(not (IMAGES / "pv-bench" / "pv-bench.elf").exists(),
                    reason="pv-bench.elf not built")
def test_trace_file_gets_every_record_when_the_ring_drops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``xenlab run --trace``: the file of a run whose ring dropped records is byte for byte
    the file of the same run with room for all of them, and stdout says what was dropped."""
    cfg = str(_hcloop_cfg(tmp_path, 2_000))
    whole, ring = tmp_path / "whole.jsonl", tmp_path / "ring.jsonl"
    out_whole, out_ring = io.StringIO(), io.StringIO()
    run_configs([cfg], out_whole, trace_path=str(whole))
    monkeypatch.setattr(trace_mod, "DEFAULT_LIMIT", 300)
    host = run_configs([cfg], out_ring, trace_path=str(ring))
    assert host.trace.limit == 300 and host.trace.dropped > 1_700
    assert ring.read_bytes() == whole.read_bytes()
    lines = Trace.read_jsonl(ring.read_text().splitlines())
    assert [r["seq"] for r in lines] == list(range(len(lines)))
    assert sum(r["name"] == "xen_version" for r in lines) == 2_000
    assert "trace:" not in out_whole.getvalue()
    last = out_ring.getvalue().splitlines()[-1]
    assert last == (f"xenlab: trace: {host.trace.dropped:,} oldest records dropped (the last "
                    f"300 kept in memory; the --trace file has all {len(lines):,})")
    assert out_ring.getvalue().replace(last + "\n", "") == out_whole.getvalue()
    run_configs([cfg], out_ring)     # without --trace, the line says how to keep them all
    assert out_ring.getvalue().endswith(" kept in memory; --trace FILE keeps every record)\n")


def test_trace_file_that_fills_up_mid_run_is_one_error_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Spilled records hit a full disk while the guest runs: the run finishes, and the
    command exits 2 with one line, no traceback. The full disk is a regular file whose
    size this process may not grow past 4 KiB (RLIMIT_FSIZE, with SIGXFSZ ignored a write
    past it fails with EFBIG); /dev/full itself is refused before the run (issue 12
    item 6, tests/test_hostile_host_input.py)."""
    import resource
    import signal

    monkeypatch.setattr(trace_mod, "DEFAULT_LIMIT", 50)
    cfg = str(_hcloop_cfg(tmp_path, 500))
    path = tmp_path / "t.jsonl"
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, old_limit[1]))
        rc = main(["run", cfg, "--trace", str(path)])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert rc == 2
    err = capsys.readouterr().err
    assert err == f"xenlab: error: {path}: cannot write trace: File too large\n"
    assert not path.exists()   # the partial file is removed


def test_cut_and_paste_put_the_same_records_back() -> None:
    """The boot stepper's Back cuts the trace back to a checkpoint and, going forwards
    to a later one, pastes back what it held: the same records, whether they had been
    read (TraceRecords) or not (plain tuples)."""
    same = Trace()
    _emit_some(same, 16)
    seen = [r.to_dict() for r in same.records]
    t = Trace()
    _emit_some(t, 10)
    assert [r.to_dict() for r in t.records] == seen[:10]   # read: TraceRecords
    _emit_some(t, 6, first=10)                             # not read: plain tuples
    gone = t.cut(7)
    assert len(gone) == 9 and len(t) == 7
    assert [r.to_dict() for r in t.records] == seen[:7]
    t.paste(gone[:5])
    assert [r.to_dict() for r in t.records] == seen[:12]
    t.paste(gone[5:])
    assert [r.to_dict() for r in t.records] == seen
    assert t.count(kind=Kind.VMEXIT) == 8


def test_a_watcher_sees_only_its_kinds_as_they_are_emitted() -> None:
    t = Trace()
    seen: list[tuple[int, str]] = []
    stop = t.watch({Kind.HYPERCALL}, lambda r: seen.append((r.seq, r.name)))
    _emit_some(t, 4)
    assert seen == [(0, "xen_version"), (2, "xen_version")]
    stop()
    _emit_some(t, 4, first=4)
    assert len(seen) == 2 and len(t) == 8
