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
``running_intervals``      ``{(dom, vcpu): [Interval(start, end, pcpu)]}``  xenalyze's runstates
``swimlanes``              one lane per (dom, vcpu): when it ran, events    xentrace + xenalyze
``vmexit_summary``         ``{cause: Counter(handler)}``                    xenalyze (HVM exits)
``split_driver_sequence``  the steps of one blkif request                   blktrace + xentrace
``handshake_conversation`` a device's xenbus handshake, frontend | backend  xenstore-watch
``format_conversation``    the two sides of it as text, side by side
``compare_pv_hvm``         bar chart of the cost categories of each run     xenalyze summaries
=========================  ==============================================  ===================

Count axes are linear unless the counts span more than ``LOG_ABOVE`` times, and then the
axis label says "log scale"; every bar carries its number.

Real Xen: xentrace (recording) and xenalyze (tools/xentrace/xenalyze.c, analysis)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from xenlab.xen.trace import Kind, Trace, TraceRecord

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "ACTORS", "AGGREGATE_ABOVE", "KIND_COLOURS", "LOG_ABOVE", "ConvStep", "Interval", "SeqStep",
    "compare_pv_hvm", "cost_categories", "fit_count_axis", "format_conversation",
    "handshake_conversation", "hypercall_counts", "load_jsonl", "plot_hypercall_counts",
    "plot_sequence", "running_intervals", "split_driver_sequence", "swimlane_bins", "swimlanes",
    "vmexit_summary",
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
    """Horizontal bars: one group per hypercall name, one bar per domain, each bar with
    its count; the axis is linear unless the counts span more than ``LOG_ABOVE`` times."""
    if not isinstance(counts, Mapping):
        counts = hypercall_counts(counts)
    names = sorted({n for c in counts.values() for n in c})
    fig, ax = _figure(ax, (7.0, 1.0 + 0.35 * max(1, len(names)) * max(1, len(counts)) ** 0.5))
    if not names:
        ax.text(0.5, 0.5, "no hypercalls in this trace", ha="center", va="center")
        ax.set_axis_off()
        return fig
    doms = sorted(counts)
    height = 0.8 / max(1, len(doms))
    values = [counts[d][n] for d in doms for n in names]
    log = fit_count_axis(ax, values, "x", "hypercalls")
    for i, dom in enumerate(doms):
        ys = [j + i * height for j in range(len(names))]
        bars = ax.barh(ys, [counts[dom][n] for n in names], height=height,
                       label=f"dom {dom}" + (" (Dom0's services)" if dom == 0 else ""))
        _label_bars(ax, bars, [counts[dom][n] for n in names], "x", log)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(names))], names, fontsize=8)
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("hypercalls per domain", fontsize=10)
    fig.tight_layout()
    return fig


#: A count axis is logarithmic only when its largest count is more than this many times
#: its smallest non-zero one (and its label then says so).
LOG_ABOVE = 100


def fit_count_axis(ax: Axes, values: Iterable[int], axis: str, what: str) -> bool:
    """Scale and label the count axis (``"x"`` or ``"y"``) for ``values``: linear with the
    label ``what``, or, when the non-zero counts span more than ``LOG_ABOVE`` times, log
    with the label ``"<what> (log scale)"``. Returns True for log."""
    nz = [v for v in values if v > 0]
    log = bool(nz) and max(nz) > LOG_ABOVE * min(nz)
    scale = ax.set_xscale if axis == "x" else ax.set_yscale
    label = ax.set_xlabel if axis == "x" else ax.set_ylabel
    scale("log" if log else "linear")
    label(f"{what} (log scale)" if log else what)
    if log:
        lim = ax.set_xlim if axis == "x" else ax.set_ylim
        lim(0.5, max(nz) * 8)
    elif nz:
        lim = ax.set_xlim if axis == "x" else ax.set_ylim
        lim(0, max(nz) * 1.18)
    return log


def _label_bars(ax: Axes, bars: object, values: list[int], axis: str, log: bool) -> None:
    """Write each bar's count at its end (0 too: an empty bar is a result)."""
    for bar, v in zip(bars, values, strict=True):  # type: ignore[call-overload]
        if axis == "x":
            x = max(v, 0.6) if log else v
            ax.text(x, bar.get_y() + bar.get_height() / 2, f" {v:,}", va="center",
                    ha="left", fontsize=7)
        else:
            y = max(v, 0.6) if log else v
            ax.text(bar.get_x() + bar.get_width() / 2, y, f"{v:,}", va="bottom",
                    ha="center", fontsize=7)


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


class Interval(NamedTuple):
    """A vCPU on a pCPU from ``start`` to ``end`` (virtual ns)."""

    start: int
    end: int
    pcpu: int


#: Sched records after which a vCPU no longer runs (it sleeps until a ``wake``).
_SLEEPS = frozenset({"block", "hlt", "poll"})
#: Records a vCPU makes itself, by running: after a ``wake`` the first one says it runs.
_OWN_KINDS = frozenset({Kind.HYPERCALL, Kind.VMEXIT, Kind.FAULT, Kind.PHASE})


def running_intervals(records: Records) -> dict[tuple[int, int], list[Interval]]:
    """When each guest vCPU ran, from the trace's ``sched`` records.

    A ``schedule`` record (pCPU ``args['pcpu']``) starts an interval and ends the one of
    the vCPU that pCPU ran before; ``block``/``hlt``/``poll`` end it; a vCPU that sleeps
    and wakes on the pCPU it left, with nobody in between, gets no new ``schedule``
    record (Xen only traces a switch), so its first record of its own after the ``wake``
    starts the next interval. A domain's shutdown, crash, pause or destroy ends its
    intervals; the last ones end at the trace's last record. Dom0 never runs on a pCPU in
    xenlab (its services are Python), so it has no intervals."""
    recs = _records(records)
    out: dict[tuple[int, int], list[Interval]] = {}
    running: dict[tuple[int, int], tuple[int, int]] = {}   # key -> (start, pcpu)
    on_pcpu: dict[int, tuple[int, int]] = {}                # pcpu -> the vCPU it ran last
    asleep: set[tuple[int, int]] = set()

    def close(key: tuple[int, int], t: int) -> None:
        start, pcpu = running.pop(key)
        out.setdefault(key, []).append(Interval(start, max(start, t), pcpu))

    for r in recs:
        key = (r.dom, r.vcpu)
        if r.kind is Kind.SCHED and r.name == "schedule":
            pcpu = int((r.args or {}).get("pcpu", 0))
            prev = on_pcpu.get(pcpu)
            if prev is not None and prev != key and prev in running \
                    and running[prev][1] == pcpu:
                close(prev, r.time)
            if key in running and running[key][1] != pcpu:
                close(key, r.time)
            if key not in running:
                running[key] = (r.time, pcpu)
            on_pcpu[pcpu] = key
            asleep.discard(key)
        elif r.kind is Kind.SCHED and r.name in _SLEEPS:
            if key in running:
                close(key, r.time)
            asleep.add(key)
        elif r.kind is Kind.SCHED and r.name == "wake":
            asleep.discard(key)
        elif r.kind is Kind.LIFECYCLE and r.name in ("shutdown", "crash", "pause", "destroy"):
            for k in [k for k in running if k[0] == r.dom]:
                close(k, r.time)
        elif (r.kind in _OWN_KINDS and r.dom != 0 and key not in running
              and key not in asleep):
            back_on = next((p for p, k in on_pcpu.items() if k == key), None)
            if back_on is not None:
                running[key] = (r.time, back_on)
    last = max((r.time for r in recs), default=0)
    for key in list(running):
        close(key, last)
    kept = {k: [i for i in v if i.end > i.start] for k, v in sorted(out.items())}
    return {k: v for k, v in kept.items() if v}


def _domain_names(recs: list[TraceRecord]) -> dict[int, str]:
    names = {0: "Domain-0"}
    for r in recs:
        if r.kind is Kind.LIFECYCLE and r.name == "create" and r.args and "name" in r.args:
            names[r.dom] = str(r.args["name"])
    return names


#: Colours of the domains' running intervals in ``swimlanes``, by domid (cycled).
DOMAIN_COLOURS = ("#1976d2", "#e64a19", "#388e3c", "#7b1fa2", "#fbc02d", "#0097a7",
                  "#5d4037", "#c2185b")


def swimlanes(records: Records, *, kinds: Iterable[Kind | str] | None = None,
              nbins: int = 200, aggregate_above: int = AGGREGATE_ABOVE,
              ax: Axes | None = None) -> Figure:
    """One lane per (dom, vcpu) over virtual time: a bar wherever the vCPU ran
    (``running_intervals``, one colour per domain, named in the legend), and over it a
    mark per record of ``kinds`` (default: every kind).

    Up to ``aggregate_above`` records each is one tick; above, the records are counted in
    ``nbins`` time bins and each non-empty bin is one dot sized by its count, so a
    million-record trace costs at most lanes × kinds × nbins points.
    """
    all_recs = _records(records)
    wanted = {Kind(k) for k in kinds} if kinds is not None else None
    recs = [r for r in all_recs if wanted is None or r.kind in wanted]
    intervals = running_intervals(all_recs)
    lane_keys = sorted({(r.dom, r.vcpu) for r in recs} | set(intervals))
    fig, ax = _figure(ax, (10.0, 1.4 + 0.5 * max(1, len(lane_keys))))
    if not recs and not intervals:
        ax.text(0.5, 0.5, "no records", ha="center", va="center")
        ax.set_axis_off()
        return fig
    lane_of = {k: i for i, k in enumerate(lane_keys)}
    names = _domain_names(all_recs)
    for key, ivs in intervals.items():
        dom = key[0]
        ax.broken_barh([(i.start / 1000, max(i.end - i.start, 1) / 1000) for i in ivs],
                       (lane_of[key] - 0.3, 0.6),
                       facecolors=DOMAIN_COLOURS[dom % len(DOMAIN_COLOURS)], alpha=0.35,
                       label=f"d{dom} {names.get(dom, '')} running".replace("  ", " "))
    offsets = {k: (i - len(Kind) / 2) * 0.04 for i, k in enumerate(Kind)}
    seen: set[Kind] = set()
    if len(recs) <= aggregate_above:
        by_kind: dict[Kind, tuple[list[float], list[float]]] = {}
        for r in recs:
            xs, ys = by_kind.setdefault(r.kind, ([], []))
            xs.append(r.time / 1000)
            ys.append(lane_of[(r.dom, r.vcpu)] + offsets[r.kind])
        for k, (xs, ys) in by_kind.items():
            ax.scatter(xs, ys, s=30, marker="|", color=KIND_COLOURS[k], label=f"{k.value} record")
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
                           label=None if k in seen else f"{k.value} records")
                seen.add(k)
        mode = f"{len(recs)} records in {nbins} bins of {(edges[1] - edges[0]) / 1000:.1f} µs"
    ax.set_yticks(range(len(lane_keys)),
                  ["Dom0's services (no pCPU)" if d == 0 else f"d{d}v{v} {names.get(d, '')}"
                   for d, v in lane_keys], fontsize=8)
    ax.set_ylim(-0.6, len(lane_keys) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("virtual time (µs)")
    ax.set_title(f"swimlanes: bars = when each vCPU ran on a pCPU; marks: {mode}",
                 fontsize=10)
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
    """One step of a split-driver request: virtual time (ns), who acts, what it does, to
    whom (``target``; the actor itself for a step of its own) and by what (``via``):
    ``ring`` (a write into the shared ring page, no hypercall), ``hypercall``, ``event``
    (Xen sets a port pending), ``io`` (the backend's read or write of the disk image) or
    ``""`` for a step of its own."""

    time: int
    actor: str
    step: str
    target: str = ""
    via: str = ""

    @property
    def edge(self) -> tuple[str, str]:
        """(actor, target) of the arrow: a self-arrow when the actor acts alone."""
        return (self.actor, self.target or self.actor)


def _is_send(r: TraceRecord, dom: int) -> bool:
    return (r.kind is Kind.HYPERCALL and r.dom == dom and r.name == "event_channel_op"
            and r.args is not None and r.args.get("cmd") == "EVTCHNOP_send")


def split_driver_sequence(records: Records, request_id: int | None = None,
                          *, dev: str | None = None) -> list[SeqStep]:
    """The steps of one blkif request, in protocol order, each an arrow of the diagram.

    The data goes frontend → shared ring → blkback → disk, and back on the ring; Xen
    carries only the notifications (EVTCHNOP_send, a port set pending) and checks and
    maps the grant blkback asks for: it never touches the disk. Steps: the frontend puts
    the request on the ring and sends on its port → Xen sets Dom0's port pending →
    blkback takes the request → asks Xen to map each segment's grant → reads or writes
    the image → unmaps → puts the response on the ring → sends → Xen sets the frontend's
    port pending → the frontend runs again (its next record of its own). Times are the
    records': Dom0's services run in zero virtual time in xenlab, so the backend's steps
    share the instant of the notification, and the frontend resumes later.
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
    op = str(req.args.get("op", "")).removeprefix("BLKIF_OP_")
    nseg = req.args.get("nr_segments", 0)
    body: list[SeqStep] = [SeqStep(req.time, "blkback",
                                   f"takes request {rid} off the ring: {op} "
                                   f"sector {req.args.get('sector', '?')}")]
    end = None
    for j in range(start + 1, len(recs)):
        r = recs[j]
        a = r.args or {}
        if r.kind is Kind.GRANT and r.dom == 0 and a.get("granter") == dom:
            if r.name == "map_grant_ref":
                ro = " read-only" if a.get("readonly") else ""
                body.append(SeqStep(r.time, "blkback", f"map d{dom}'s grant ref "
                                    f"{a.get('ref')}{ro}: {r.ret}", "Xen", "hypercall"))
            else:
                body.append(SeqStep(r.time, "blkback", f"unmap grant ref {a.get('ref')}",
                                    "Xen", "hypercall"))
        elif r.kind is Kind.IO and a.get("dev") == rdev and r.name in (
                "blkback.disk_read", "blkback.disk_write", "blkback.disk_flush"):
            what = r.name.split(".", 1)[1].removeprefix("disk_")
            where = f" sector {a['sector']}" if "sector" in a else ""
            size = f" ({a['bytes']} bytes)" if "bytes" in a else ""
            body.append(SeqStep(r.time, "blkback", f"{what}{where}{size}", "disk", "io"))
        elif (r.kind is Kind.IO and r.name == "blkback.blkif_response"
              and a.get("dev") == rdev and a.get("id") == rid):
            body.append(SeqStep(r.time, "blkback", f"response {rid} on the ring: {r.ret}",
                                "frontend", "ring"))
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
            t = send.time if send is not None else r.time
            before.append(SeqStep(t, "frontend", f"request {rid} on the ring: {op}, "
                                  f"{nseg} granted page(s)", "blkback", "ring"))
            if send is not None:
                before.append(SeqStep(send.time, "frontend", "EVTCHNOP_send port "
                                      f"{(send.args or {}).get('port')}", "Xen", "hypercall"))
            before.append(SeqStep(r.time, "Xen", f"Dom0's port {dom0_port} pending",
                                  "blkback", "event"))
            break
        if r.kind is Kind.IO and r.name == "blkback.blkif_response" and r.dom == dom:
            break  # an earlier request in the same batch: no fresh notification
    if not before:
        before.append(SeqStep(req.time, "frontend", f"request {rid} on the ring: {op}, "
                              f"{nseg} granted page(s)", "blkback", "ring"))
    after: list[SeqStep] = []
    last = end
    for j in range(end + 1, min(len(recs), end + 50)):
        r = recs[j]
        a = r.args or {}
        if r.kind is Kind.IO and r.name == "blkback.notify_suppressed" and r.dom == dom:
            after.append(SeqStep(r.time, "blkback", "no notification needed (rsp_event)"))
            last = j
            break
        if _is_send(r, 0) and (dom0_port is None or a.get("port") == dom0_port
                               or "blkif" in str(a.get("why"))):
            after.append(SeqStep(r.time, "blkback", f"EVTCHNOP_send port {a.get('port')}",
                                 "Xen", "hypercall"))
            # Dom0's hypercall record follows what Xen did for it (as a guest's does)
            pend = next((s for s in reversed(recs[max(end + 1, j - 10):j])
                         if s.kind is Kind.EVENT and s.name == "evtchn_set_pending"
                         and s.dom == dom), None)
            if pend is not None:
                after.append(SeqStep(r.time, "Xen", f"d{dom}'s port "
                                     f"{(pend.args or {}).get('port')} pending",
                                     "frontend", "event"))
            last = j
            break
        if r.kind is Kind.IO and r.name == "blkback.blkif_request" and r.dom == dom:
            break
    resumed = next((r for r in recs[last + 1:] if r.dom == dom and r.kind in _OWN_KINDS),
                   None)
    if resumed is not None:
        after.append(SeqStep(resumed.time, "frontend", "runs again, finds the response "
                             f"(next: its {resumed.name} {resumed.kind.value})"))
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


#: How ``plot_sequence`` draws each ``SeqStep.via``: colour, line style.
VIA_STYLES: dict[str, tuple[str, str]] = {
    "ring": ("#f57c00", "dashed"), "hypercall": ("#1565c0", "solid"),
    "event": ("#d32f2f", "solid"), "io": ("#5d4037", "solid"), "": ("#616161", "solid"),
}

#: The actors' headings in the diagram.
ACTOR_TITLES = {"frontend": "frontend\n(the DomU)", "Xen": "Xen",
                "blkback": "blkback\n(in Dom0)", "disk": "disk\n(image file)"}


def plot_sequence(steps: list[SeqStep], ax: Axes | None = None,
                  actors: tuple[str, ...] = ACTORS) -> Figure:
    """A sequence diagram: one column per actor, one arrow per step from its ``actor`` to
    its ``target`` (a loop for a step of its own), coloured by ``via`` (dashed: through the
    shared ring page, no hypercall), with each step's virtual time on the left."""
    fig, ax = _figure(ax, (9.0, 1.9 + 0.5 * max(1, len(steps))))
    col = {a: i for i, a in enumerate(actors)}
    for a, x in col.items():
        ax.plot([x, x], [0.5, -len(steps) - 0.3], color="#bdbdbd", lw=1, zorder=0)
        ax.text(x, 0.7, ACTOR_TITLES.get(a, a), ha="center", va="bottom", fontsize=9,
                weight="bold", bbox={"boxstyle": "round", "fc": "#e3f2fd", "ec": "#90caf9"})
    if not steps:
        ax.text(len(actors) / 2 - 0.5, -0.5, "no blkif request in this trace", ha="center")
    t0 = steps[0].time if steps else 0
    for i, s in enumerate(steps):
        y = -i - 0.3
        src, dst = s.edge
        x0, x1 = col.get(src, 0), col.get(dst, 0)
        colour, style = VIA_STYLES.get(s.via, VIA_STYLES[""])
        if x0 == x1:
            ax.annotate("", xy=(x1 + 0.02, y), xytext=(x0 + 0.02, y + 0.35),
                        arrowprops={"arrowstyle": "->", "connectionstyle": "arc3,rad=-0.8",
                                    "color": colour})
            ax.text(x0 + 0.1, y + 0.08, s.step, ha="left", va="bottom", fontsize=8)
        else:
            ax.annotate("", xy=(x1, y), xytext=(x0, y),
                        arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.5,
                                    "linestyle": style})
            ax.text((x0 + x1) / 2, y + 0.08, s.step, ha="center", va="bottom", fontsize=8)
        ax.text(-0.6, y, f"{s.time / 1000:,.2f} µs (+{(s.time - t0) / 1000:.2f})",
                ha="right", va="center", fontsize=7, color="#616161")
    handles = [Line2D([0], [0], color=c, linestyle=ls, lw=1.5, label=v)  # type: ignore[arg-type]
               for v, (c, ls) in VIA_STYLES.items() if v and any(s.via == v for s in steps)]
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_xlim(-1.9, len(actors) - 0.2)
    ax.set_ylim(-len(steps) - 0.5, 1.6)
    ax.set_axis_off()
    ax.set_title("one blkif request through the split driver (times: the records' virtual "
                 "time;\nDom0's backend runs in zero virtual time in xenlab)", fontsize=9)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------ PV versus HVM
#: The cost categories ``compare_pv_hvm`` compares: label -> the record test (kind, name,
#: ``args['cmd']``; None matches any). Dom0's hypercalls count as anyone's: "hypercalls"
#: and "event sends" (EVTCHNOP_send, a guest's and Dom0's notifications) include them.
COST_CATEGORIES: dict[str, tuple[Kind, str | None, str | None]] = {
    "hypercalls": (Kind.HYPERCALL, None, None),
    "VM exits": (Kind.VMEXIT, None, None),
    "ioreqs": (Kind.IOREQ, "ioreq", None),  # one per request (not its ioresp etc.)
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
    """Side-by-side bars of ``cost_categories`` for a PV run and an HVM run, each bar with
    its count (either run may be empty: its bars are zero and the legend says so). The
    counts span thousands to one, so the axis is logarithmic when they do, and labelled
    so: a linear axis would flatten the PV bars to nothing."""
    pv, hvm = cost_categories(records_pv), cost_categories(records_hvm)
    fig, ax = _figure(ax, (9.0, 4.2))
    labels = list(COST_CATEGORIES)
    xs = np.arange(len(labels))
    log = fit_count_axis(ax, [*pv.values(), *hvm.values()], "y", "records")
    for off, (side, counts, colour) in zip((-0.2, 0.2), (("PV", pv, "#1976d2"),
                                                          ("HVM", hvm, "#7b1fa2")), strict=True):
        total = sum(counts.values())
        values = [counts[k] for k in labels]
        bars = ax.bar(xs + off, values, width=0.4, color=colour,
                      label=side if total else f"{side} (no records)")
        _label_bars(ax, bars, values, "y", log)
    ax.set_xticks(xs, labels, rotation=20, fontsize=8)
    ax.set_title("PV versus HVM: where the work goes (Dom0's records included)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig
