"""Views over trace records: hypercall counts, per-vCPU swimlanes, a split-driver
sequence diagram, VM exits, and PV against HVM.

Every function takes a list of ``TraceRecord`` (or a ``Trace``; ``load_jsonl``
reads a ``--trace`` file back) and nothing else: the data functions return
plain dicts and lists a test can check, the ``plot_*``/``swimlanes``/
``compare_pv_hvm`` functions return a ``matplotlib.figure.Figure`` (no pyplot,
no global state).

=========================  ==============================================  ===================
function                   returns                                         real-Xen analogue
=========================  ==============================================  ===================
``hypercall_counts``       ``{dom: Counter(hypercall name)}``              xenalyze --summary
``swimlane_bins``          ``{(dom, vcpu): {kind: [count per time bin]}}``  xenalyze --dump-all
``swimlanes``              one lane per (dom, vcpu), events by kind         xentrace + xenalyze
``vmexit_summary``         ``{cause: Counter(handler)}``                    xenalyze (HVM exits)
``split_driver_sequence``  the steps of one blkif request                   blktrace + xentrace
``handshake_conversation`` a device's xenbus handshake, frontend | backend  xenstore-watch + xentrace
``format_conversation``    the two sides of it as text, side by side
``compare_pv_hvm``         bar chart of the cost categories of each run     xenalyze summaries
=========================  ==============================================  ===================

Real Xen: xentrace (recording) and xenalyze (tools/xentrace/xenalyze.c, analysis)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from matplotlib.figure import Figure

from xenlab.xen.trace import Kind, Trace, TraceRecord

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "ACTORS", "AGGREGATE_ABOVE", "KIND_COLOURS", "ConvStep", "SeqStep", "compare_pv_hvm",
    "cost_categories", "format_conversation", "handshake_conversation", "hypercall_counts", "load_jsonl", "plot_hypercall_counts", "plot_sequence",
    "split_driver_sequence", "swimlane_bins", "swimlanes", "vmexit_summary",
]

Records = Trace | Iterable[TraceRecord]

#: Above this many records, ``swimlanes`` draws per-bin counts instead of single events.
AGGREGATE_ABOVE = 5000

#: One colour per record kind, in every view.
KIND_COLOURS: dict[Kind, str] = {
    Kind.HYPERCALL: "#1976d2", Kind.LIFECYCLE: "#000000", Kind.SCHED: "#9e9e9e",
    Kind.FAULT: "#b71c1c", Kind.LOG: "#795548", Kind.EVENT: "#d32f2f",
    Kind.GRANT: "#0097a7", Kind.XENSTORE: "#388e3c", Kind.VMEXIT: "#7b1fa2",
    Kind.IOREQ: "#ab47bc", Kind.PHASE: "#fbc02d", Kind.CONSOLE: "#8d6e63",
    Kind.IO: "#f57c00",
}

#: The columns of the split-driver sequence diagram, left to right.
ACTORS = ("frontend", "Xen", "blkback", "disk")


def _records(records: Records) -> list[TraceRecord]:
    return records.records if isinstance(records, Trace) else list(records)


def load_jsonl(path: str) -> list[TraceRecord]:
    """Read a ``xenlab run --trace FILE.jsonl`` file back into records."""
    out = []
    with open(path, encoding="utf-8") as fp:
        for line in fp:
            if line.strip():
                r = json.loads(line)
                out.append(TraceRecord(r["seq"], r["time"], r["dom"], r["vcpu"],
                                       Kind(r["kind"]), r["name"], r.get("args"),
                                       r.get("ret")))
    return out


# ------------------------------------------------------------------------- hypercalls
def hypercall_counts(records: Records, *, by_cmd: bool = False) -> dict[int, Counter[str]]:
    """Hypercalls per domain and name (``by_cmd``: ``event_channel_op:EVTCHNOP_send``).
    Dom0's (its backends', daemons', toolstack's and device model's) are under 0."""
    out: dict[int, Counter[str]] = {}
    if isinstance(records, Trace) and records.dropped and not by_cmd:
        # the ring let the oldest records go: the trace's own counts cover the whole run
        for (dom, kind, name), n in records.counts().items():
            if kind is Kind.HYPERCALL:
                out.setdefault(dom, Counter())[name] += n
        return dict(sorted(out.items()))
    for r in _records(records):
        if r.kind is Kind.HYPERCALL:
            name = r.name
            if by_cmd and r.args and "cmd" in r.args:
                name = f"{name}:{r.args['cmd']}"
            out.setdefault(r.dom, Counter())[name] += 1
    return dict(sorted(out.items()))


def plot_hypercall_counts(counts: Mapping[int, Counter[str]] | Records,
                          ax: Axes | None = None) -> Figure:
    """Horizontal bars: one group per hypercall name, one bar per domain."""
    if not isinstance(counts, Mapping):
        counts = hypercall_counts(counts)
    names = sorted({n for c in counts.values() for n in c})
    fig, ax = _figure(ax, (7.0, 1.0 + 0.35 * max(1, len(names))))
    if not names:
        ax.text(0.5, 0.5, "no hypercalls in this trace", ha="center", va="center")
        ax.set_axis_off()
        return fig
    doms = sorted(counts)
    height = 0.8 / max(1, len(doms))
    for i, dom in enumerate(doms):
        ys = [j + i * height for j in range(len(names))]
        ax.barh(ys, [counts[dom][n] for n in names], height=height, label=f"dom {dom}")
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(names))], names, fontsize=8)
    ax.set_xscale("symlog")
    ax.set_xlabel("hypercalls")
    ax.legend(fontsize=8)
    ax.set_title("hypercalls per domain")
    fig.tight_layout()
    return fig


def _figure(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=size, dpi=100)
    return fig, fig.add_subplot(1, 1, 1)


# -------------------------------------------------------------------------- swimlanes
def swimlane_bins(records: Records, nbins: int = 200
                  ) -> tuple[np.ndarray, dict[tuple[int, int], dict[Kind, np.ndarray]]]:
    """Count records per (dom, vcpu) lane, kind and virtual-time bin.

    Returns the bin edges (ns) and ``{(dom, vcpu): {kind: counts}}``; the counts add up
    to the number of records.
    """
    recs = _records(records)
    if not recs:
        return np.zeros(nbins + 1), {}
    times = np.fromiter((r.time for r in recs), dtype=np.int64, count=len(recs))
    lo, hi = int(times.min()), int(times.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1, nbins + 1)
    idx = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, nbins - 1)
    lanes: dict[tuple[int, int], dict[Kind, np.ndarray]] = {}
    for r, b in zip(recs, idx.tolist(), strict=True):
        kinds = lanes.get((r.dom, r.vcpu))
        if kinds is None:
            kinds = lanes[(r.dom, r.vcpu)] = {}
        row = kinds.get(r.kind)
        if row is None:
            row = kinds[r.kind] = np.zeros(nbins, dtype=np.int64)
        row[b] += 1
    return edges, dict(sorted(lanes.items()))


def swimlanes(records: Records, *, kinds: Iterable[Kind | str] | None = None,
              nbins: int = 200, aggregate_above: int = AGGREGATE_ABOVE,
              ax: Axes | None = None) -> Figure:
    """One lane per (dom, vcpu) over virtual time, a colour per record kind.

    Up to ``aggregate_above`` records each is one tick; above, the records are counted in
    ``nbins`` time bins and each non-empty bin is one dot sized by its count, so a
    million-record trace costs at most lanes × kinds × nbins points.
    """
    wanted = {Kind(k) for k in kinds} if kinds is not None else None
    recs = [r for r in _records(records) if wanted is None or r.kind in wanted]
    lane_keys = sorted({(r.dom, r.vcpu) for r in recs})
    fig, ax = _figure(ax, (10.0, 1.2 + 0.45 * max(1, len(lane_keys))))
    if not recs:
        ax.text(0.5, 0.5, "no records", ha="center", va="center")
        ax.set_axis_off()
        return fig
    lane_of = {k: i for i, k in enumerate(lane_keys)}
    offsets = {k: (i - len(Kind) / 2) * 0.04 for i, k in enumerate(Kind)}
    seen: set[Kind] = set()
    if len(recs) <= aggregate_above:
        by_kind: dict[Kind, tuple[list[float], list[float]]] = {}
        for r in recs:
            xs, ys = by_kind.setdefault(r.kind, ([], []))
            xs.append(r.time / 1000)
            ys.append(lane_of[(r.dom, r.vcpu)] + offsets[r.kind])
        for k, (xs, ys) in by_kind.items():
            ax.scatter(xs, ys, s=30, marker="|", color=KIND_COLOURS[k], label=k.value)
            seen.add(k)
        mode = f"{len(recs)} events"
    else:
        edges, lanes = swimlane_bins(recs, nbins)
        centres = (edges[:-1] + edges[1:]) / 2 / 1000
        peak = max(int(c.max()) for kinds_ in lanes.values() for c in kinds_.values())
        for key, kinds_ in lanes.items():
            for k, counts in kinds_.items():
                nz = counts > 0
                sizes = 4 + 60 * np.log1p(counts[nz]) / np.log1p(peak)
                ax.scatter(centres[nz], np.full(int(nz.sum()), lane_of[key] + offsets[k]),
                           s=sizes, color=KIND_COLOURS[k], alpha=0.7,
                           label=None if k in seen else k.value)
                seen.add(k)
        mode = f"{len(recs)} records in {nbins} bins of {(edges[1] - edges[0]) / 1000:.1f} µs"
    ax.set_yticks(range(len(lane_keys)), [f"d{d}v{v}" for d, v in lane_keys], fontsize=8)
    ax.set_ylim(-0.6, len(lane_keys) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("virtual time (µs)")
    ax.set_title(f"swimlanes: {mode}", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=0.8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- vm exits
def vmexit_summary(records: Records) -> dict[str, Counter[str]]:
    """VM exits by cause (``args['reason']``/``args['cause']`` or the record name) and
    handler (``args['handler']``). Empty for a PV-only trace."""
    out: dict[str, Counter[str]] = {}
    for r in _records(records):
        if r.kind is Kind.VMEXIT:
            args = r.args or {}
            cause = str(args.get("reason", args.get("cause", r.name)))
            out.setdefault(cause, Counter())[str(args.get("handler", "-"))] += 1
    return dict(sorted(out.items()))


# ------------------------------------------------------------------ split-driver request
class SeqStep(NamedTuple):
    """One step of a split-driver request: virtual time (ns), who acts, what it does."""

    time: int
    actor: str
    step: str


def _is_send(r: TraceRecord, dom: int) -> bool:
    return (r.kind is Kind.HYPERCALL and r.dom == dom and r.name == "event_channel_op"
            and bool(r.args) and r.args.get("cmd") == "EVTCHNOP_send")


def split_driver_sequence(records: Records, request_id: int | None = None,
                          *, dev: str | None = None) -> list[SeqStep]:
    """The steps of one blkif request, in protocol order.

    frontend EVTCHNOP_send → Xen marks Dom0's port pending → blkback takes the request →
    Xen maps each segment's grant → the disk I/O → Xen unmaps → blkback's response →
    blkback notifies (EVTCHNOP_send from Dom0) → Xen marks the frontend's port pending.
    ``request_id`` picks the request by its ring id (default: the first with data);
    ``dev`` (``vbd-<dom>-<devid>``) restricts to one disk. Steps the trace does not have
    (a suppressed notification) are left out. Empty if there is no such request.
    """
    recs = _records(records)
    start = None
    for i, r in enumerate(recs):
        if r.kind is Kind.IO and r.name == "blkback.blkif_request" and r.args:
            if dev is not None and r.args.get("dev") != dev:
                continue
            if (request_id is None and r.args.get("nr_segments", 0) > 0) or (
                    request_id is not None and r.args.get("id") == request_id):
                start = i
                break
    if start is None:
        return []
    req = recs[start]
    assert req.args is not None
    dom, rid, rdev = req.dom, req.args.get("id"), req.args.get("dev")
    body: list[SeqStep] = [SeqStep(req.time, "blkback",
                                   f"blkif_request {req.args.get('op', '')} "
                                   f"sector {req.args.get('sector', '?')}")]
    end = None
    for j in range(start + 1, len(recs)):
        r = recs[j]
        a = r.args or {}
        if r.kind is Kind.GRANT and r.dom == 0 and a.get("granter") == dom:
            verb = "map" if r.name == "map_grant_ref" else "unmap"
            ro = " ro" if a.get("readonly") else ""
            body.append(SeqStep(r.time, "Xen", f"{verb} grant ref {a.get('ref')}{ro}"))
        elif r.kind is Kind.IO and a.get("dev") == rdev and r.name in (
                "blkback.disk_read", "blkback.disk_write", "blkback.disk_flush"):
            op = r.name.split(".", 1)[1]
            body.append(SeqStep(r.time, "disk", f"{op} sector {a.get('sector', '-')}"))
        elif (r.kind is Kind.IO and r.name == "blkback.blkif_response"
              and a.get("dev") == rdev and a.get("id") == rid):
            body.append(SeqStep(r.time, "blkback", f"blkif_response {r.ret}"))
            end = j
            break
    if end is None:
        return []
    # the notification that woke blkback: Dom0's port, set pending just before the request
    before: list[SeqStep] = []
    dom0_port = None
    for j in range(start - 1, max(-1, start - 200), -1):
        r = recs[j]
        if r.kind is Kind.EVENT and r.name == "evtchn_set_pending" and r.dom == 0:
            dom0_port = (r.args or {}).get("port")
            send = next((s for s in recs[j + 1:start] if _is_send(s, dom)), None)
            if send is None:
                send = next((s for s in reversed(recs[max(0, j - 50):j]) if _is_send(s, dom)),
                            None)
            if send is not None:
                before.append(SeqStep(send.time, "frontend",
                                      f"EVTCHNOP_send port {(send.args or {}).get('port')}"))
            before.append(SeqStep(r.time, "Xen", f"set pending: Dom0 port {dom0_port}"))
            break
        if r.kind is Kind.IO and r.name == "blkback.blkif_response" and r.dom == dom:
            break  # an earlier request in the same batch: no fresh notification
    after: list[SeqStep] = []
    for j in range(end + 1, min(len(recs), end + 50)):
        r = recs[j]
        a = r.args or {}
        if r.kind is Kind.IO and r.name == "blkback.notify_suppressed" and r.dom == dom:
            after.append(SeqStep(r.time, "blkback", "notify suppressed (rsp_event)"))
            break
        if _is_send(r, 0) and (dom0_port is None or a.get("port") == dom0_port
                               or "blkif" in str(a.get("why"))):
            after.append(SeqStep(r.time, "blkback", f"EVTCHNOP_send port {a.get('port')}"))
            # Dom0's hypercall record follows what Xen did for it (as a guest's does)
            pend = next((s for s in reversed(recs[max(end + 1, j - 10):j])
                         if s.kind is Kind.EVENT and s.name == "evtchn_set_pending"
                         and s.dom == dom), None)
            if pend is not None:
                after.append(SeqStep(r.time, "Xen",
                                     f"set pending: d{dom} port {(pend.args or {}).get('port')}"))
            break
        if r.kind is Kind.IO and r.name == "blkback.blkif_request" and r.dom == dom:
            break
    return before + body + after


class ConvStep(NamedTuple):
    """One step of a handshake: virtual time (ns), ``frontend`` or ``backend``, what."""

    time: int
    side: str
    step: str


def handshake_conversation(records: Records, dom: int, *, device: str = "vbd",
                           devid: int | None = None) -> list[ConvStep]:
    """A split device's xenbus handshake as a conversation between the two domains.

    The frontend (domain ``dom``) and the backend (Dom0), each from its own records:
    its xenstore writes of the device's nodes, its event-channel and grant hypercalls for
    the device (the frontend's ``EVTCHNOP_alloc_unbound``, Dom0's grant map of the ring
    and ``EVTCHNOP_bind_interdomain`` of the frontend's port), and the notifications on
    that channel, up to both sides writing ``state`` = 4 (Connected). ``device`` is
    ``vbd`` or ``vif``; ``devid`` picks one device (default: the first one written)."""
    fe_part, be_part = f"device/{device}/", f"backend/{device}/{dom}/"
    steps: list[ConvStep] = []
    fe_port: int | None = None
    be_port: int | None = None
    connected: set[str] = set()
    ring_published = False   # the frontend wrote its ring's grant ref: Dom0 maps it next
    for r in _records(records):
        a = r.args or {}
        if r.kind is Kind.XENSTORE and r.name == "XS_WRITE" and r.ret == "OK":
            path = str(a.get("path", ""))
            if r.dom == dom and fe_part in path:
                side, rest = "frontend", path.split(fe_part, 1)[1]
            elif r.dom == 0 and be_part in path:
                side, rest = "backend", path.split(be_part, 1)[1]
            else:
                continue
            dev, _, key = rest.partition("/")
            if devid is None:
                devid = int(dev) if dev.isdigit() else None
            if not key or (devid is not None and dev != str(devid)):
                continue
            steps.append(ConvStep(r.time, side, f"xenstore write {key} = {a.get('value')}"))
            ring_published |= side == "frontend" and key.endswith("ring-ref")
            if key == "state" and a.get("value") == "4":
                connected.add(side)
                if len(connected) == 2:
                    break
        elif r.kind is Kind.HYPERCALL and r.name == "event_channel_op":
            cmd, result = a.get("cmd"), a.get("result") or {}
            if r.dom == dom and cmd == "EVTCHNOP_alloc_unbound" and a.get("remote_dom") == 0:
                fe_port = result.get("port")
                steps.append(ConvStep(r.time, "frontend",
                                      f"EVTCHNOP_alloc_unbound for d0 -> port {fe_port}"))
            elif (r.dom == 0 and cmd == "EVTCHNOP_bind_interdomain"
                  and a.get("remote_dom") == dom and fe_port is not None
                  and a.get("remote_port") == fe_port):
                be_port = result.get("local_port")
                steps.append(ConvStep(r.time, "backend", f"EVTCHNOP_bind_interdomain "
                                      f"d{dom} port {fe_port} -> port {be_port}"))
            elif cmd == "EVTCHNOP_send" and (
                    (r.dom == dom and fe_port is not None and a.get("port") == fe_port)
                    or (r.dom == 0 and be_port is not None and a.get("port") == be_port)):
                side = "frontend" if r.dom == dom else "backend"
                steps.append(ConvStep(r.time, side, f"EVTCHNOP_send port {a.get('port')}"))
        elif (r.kind is Kind.HYPERCALL and r.dom == 0 and r.name == "grant_table_op"
              and a.get("cmd") == "GNTTABOP_map_grant_ref" and a.get("dom") == dom
              and ring_published):
            steps.append(ConvStep(r.time, "backend", f"GNTTABOP_map_grant_ref "
                                  f"d{dom} ref {', '.join(map(str, a.get('refs', [])))}"))
    return steps


def format_conversation(steps: list[ConvStep], width: int = 46) -> str:
    """The handshake as two columns, frontend on the left and backend (Dom0) on the right,
    one step a line in the order they happened."""
    lines = [f"{'time (us)':>9}  {'frontend (DomU)':<{width}} | backend (Dom0)",
             f"{'-' * 9}  {'-' * width}-+-{'-' * width}"]
    for s in steps:
        left = s.step if s.side == "frontend" else ""
        right = s.step if s.side == "backend" else ""
        lines.append(f"{s.time / 1000:9.1f}  {left:<{width}} | {right}")
    return "\n".join(lines)


def plot_sequence(steps: list[SeqStep], ax: Axes | None = None,
                  actors: tuple[str, ...] = ACTORS) -> Figure:
    """A sequence diagram: one column per actor, one arrow per step from the previous
    step's actor (a self-arrow when the same actor acts again)."""
    fig, ax = _figure(ax, (8.0, 1.5 + 0.45 * max(1, len(steps))))
    col = {a: i for i, a in enumerate(actors)}
    for a, x in col.items():
        ax.plot([x, x], [0.5, -len(steps) - 0.3], color="#bdbdbd", lw=1, zorder=0)
        ax.text(x, 0.8, a, ha="center", va="bottom", fontsize=10, weight="bold",
                bbox={"boxstyle": "round", "fc": "#e3f2fd", "ec": "#90caf9"})
    if not steps:
        ax.text(len(actors) / 2 - 0.5, -0.5, "no blkif request in this trace", ha="center")
    prev = steps[0].actor if steps else actors[0]
    t0 = steps[0].time if steps else 0
    for i, s in enumerate(steps):
        y = -i - 0.3
        x0, x1 = col.get(prev, 0), col.get(s.actor, 0)
        if x0 == x1:
            ax.annotate("", xy=(x1 + 0.02, y), xytext=(x0 + 0.02, y + 0.35),
                        arrowprops={"arrowstyle": "->", "connectionstyle": "arc3,rad=-0.8",
                                    "color": "#616161"})
        else:
            ax.annotate("", xy=(x1, y), xytext=(x0, y),
                        arrowprops={"arrowstyle": "->", "color": "#1565c0", "lw": 1.5})
        ax.text((x0 + x1) / 2 + (0.08 if x0 == x1 else 0), y + 0.08, s.step, ha="center"
                if x0 != x1 else "left", va="bottom", fontsize=8)
        ax.text(-0.6, y, f"+{(s.time - t0) / 1000:.1f} µs", ha="right", va="center",
                fontsize=7, color="#616161")
        prev = s.actor
    ax.set_xlim(-1.3, len(actors) - 0.4)
    ax.set_ylim(-len(steps) - 0.5, 1.4)
    ax.set_axis_off()
    ax.set_title("one blkif request through the split driver", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------ PV versus HVM
#: The cost categories ``compare_pv_hvm`` compares: label -> the record test (kind, name,
#: ``args['cmd']``; None matches any). Dom0's hypercalls count as anyone's: "hypercalls"
#: and "event sends" (EVTCHNOP_send, a guest's and Dom0's notifications) include them.
COST_CATEGORIES: dict[str, tuple[Kind, str | None, str | None]] = {
    "hypercalls": (Kind.HYPERCALL, None, None),
    "VM exits": (Kind.VMEXIT, None, None),
    "ioreqs": (Kind.IOREQ, None, None),
    "event sends": (Kind.HYPERCALL, "event_channel_op", "EVTCHNOP_send"),
    "grant ops": (Kind.GRANT, None, None),
    "xenstore": (Kind.XENSTORE, None, None),
    "faults": (Kind.FAULT, None, None),
}


def cost_categories(records: Records) -> Counter[str]:
    """How many records of each ``COST_CATEGORIES`` entry a trace has."""
    out: Counter[str] = Counter({label: 0 for label in COST_CATEGORIES})
    for r in _records(records):
        for label, (kind, name, cmd) in COST_CATEGORIES.items():
            if r.kind is kind and (name is None or r.name == name) and (
                    cmd is None or (r.args or {}).get("cmd") == cmd):
                out[label] += 1
    return out


def compare_pv_hvm(records_pv: Records, records_hvm: Records,
                   ax: Axes | None = None) -> Figure:
    """Side-by-side bars of ``cost_categories`` for a PV run and an HVM run (either may
    be empty: its bars are zero and the legend says so)."""
    pv, hvm = cost_categories(records_pv), cost_categories(records_hvm)
    fig, ax = _figure(ax, (8.0, 4.0))
    labels = list(COST_CATEGORIES)
    xs = np.arange(len(labels))
    for off, (side, counts, colour) in zip((-0.2, 0.2), (("PV", pv, "#1976d2"),
                                                          ("HVM", hvm, "#7b1fa2")), strict=True):
        total = sum(counts.values())
        ax.bar(xs + off, [counts[k] for k in labels], width=0.4, color=colour,
               label=side if total else f"{side} (no records)")
    ax.set_xticks(xs, labels, rotation=20, fontsize=8)
    ax.set_ylabel("records")
    ax.set_title("PV versus HVM: where the work goes", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
