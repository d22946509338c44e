"""PV versus HVM, measured: what each guest cost Xen and Dom0, from the trace.

For each domain: guest instructions, hypercalls (by name), VM exits (by cause
and by handler: Xen itself or the device model), ioreqs answered by the device
model, and Dom0's work for it (backend requests, grant maps, events, and
Dom0's own hypercalls on its behalf, counted separately: a domctl, a grant map, an
event channel bind or notification). A PV
guest asks Xen for what it needs with a few hypercalls and batches its I/O
through shared rings; an HVM guest touches emulated hardware, and every port
access is a VM exit, many of them a round trip to the device model: that is
the measured reason PV runs close to native.

The same job. ``images/pv-work.cfg`` and ``images/hvm-work.cfg`` do the same
small job on the same disk (read sectors 1-8, print the first line of each)
and write ``xenlab workload: start`` / ``xenlab workload: end`` to Xen's
console around it (the PV guest with the console_io hypercall, the HVM guest
on port 0xE9). When a domain's trace has both markers, only what lies between
them counts, and the markers' own console output does not: the job, not the
boot. Guests without markers are counted over the whole run.

Virtual time is charged for exits (xen/hvm/io.py: ``VMEXIT_COST_NS``,
``IOREQ_COST_NS``) and PV hypercalls (``PV_HYPERCALL_COST_NS``); the report
shows how much of each guest's time went there.

Real Xen: tools/xentrace/xenalyze.c (VM exit and hypercall summaries)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import IO

from xenlab.xen.hvm.io import IOREQ_COST_NS, VMEXIT_COST_NS
from xenlab.xen.hypercall import PV_HYPERCALL_COST_NS
from xenlab.xen.setup import XenHost
from xenlab.xen.trace import Kind, TraceRecord

__all__ = ["END_MARKER", "START_MARKER", "DomainCost", "domain_costs", "format_costs"]


START_MARKER = "xenlab workload: start"
END_MARKER = "xenlab workload: end"


@dataclass
class DomainCost:
    domid: int
    name: str
    dtype: str
    instructions: int = 0          # guest instructions (whole run only; 0 for a job)
    exit_time: int = 0             # virtual ns charged for exits and hypercalls
    job_time: int | None = None    # virtual ns from start to end marker (a job only)
    hypercalls: Counter[str] = field(default_factory=Counter)
    vmexits: Counter[str] = field(default_factory=Counter)       # "io/dm", "cpuid/xen", ...
    ioreqs: int = 0
    dom0_work: Counter[str] = field(default_factory=Counter)     # backend steps, grant maps
    dom0_hypercalls: Counter[str] = field(default_factory=Counter)  # Dom0's, for this guest

    @property
    def exits_to_dm(self) -> int:
        return sum(n for k, n in self.vmexits.items() if k.endswith("/dm"))

    @property
    def traps(self) -> int:
        """Every entry into Xen: hypercalls plus VM exits (a vmcall counts once)."""
        return sum(self.hypercalls.values()) + sum(
            n for k, n in self.vmexits.items() if not k.startswith("vmcall"))


def _marker(r: TraceRecord) -> str | None:
    """A workload marker line written to Xen's console, if ``r`` is one."""
    if r.kind is Kind.CONSOLE and r.name == "debug_port":
        text = str((r.args or {}).get("line", ""))
    elif r.kind is Kind.HYPERCALL and r.name == "console_io":
        text = str((r.args or {}).get("text", "")).rstrip("\n")
    else:
        return None
    return text if text in (START_MARKER, END_MARKER) else None


def _job_windows(records: list[TraceRecord]) -> dict[int, tuple[TraceRecord, TraceRecord]]:
    """Per domain, its first start marker and the first end marker after it."""
    starts: dict[int, TraceRecord] = {}
    windows: dict[int, tuple[TraceRecord, TraceRecord]] = {}
    for r in records:
        m = _marker(r)
        if m == START_MARKER and r.dom not in starts:
            starts[r.dom] = r
        elif m == END_MARKER and r.dom in starts and r.dom not in windows:
            windows[r.dom] = (starts[r.dom], r)
    return windows


class _Dom0Targets:
    """Which guest each of Dom0's hypercall records served: the domain its arguments name,
    or for a port or a grant handle, the guest it was bound to or mapped from (followed
    through the trace, as xenalyze follows state)."""

    def __init__(self) -> None:
        self.ports: dict[int, int] = {}     # Dom0's port -> the guest at its other end
        self.handles: dict[int, int] = {}   # Dom0's grant handle -> the granter

    def target(self, r: TraceRecord) -> int | None:
        a = r.args or {}
        if r.kind is Kind.GRANT:
            if r.name == "map_grant_ref" and a.get("handle") is not None:
                self.handles[int(a["handle"])] = int(a.get("granter") or 0)
            return None
        for key in ("remote_dom", "domain", "domid", "foreigndom"):
            if key in a:
                break
        else:
            key = ""
        if a.get("cmd") == "EVTCHNOP_bind_interdomain" and a.get("result"):
            self.ports[int(a["result"]["local_port"])] = int(a["remote_dom"])
        if key:
            return int(a[key])
        if r.name == "grant_table_op":
            if "dom" in a:
                return int(a["dom"])
            handles = a.get("handles") or []
            return self.handles.get(int(handles[0])) if handles else None
        if a.get("cmd") == "EVTCHNOP_alloc_unbound":
            return int(a.get("dom", 0))
        if "port" in a:
            return self.ports.get(int(a["port"]))
        return None


def _exit_cost(r: TraceRecord) -> int:
    """The virtual time a guest was charged for this record's exit or hypercall."""
    if r.kind is Kind.VMEXIT:
        handler = (r.args or {}).get("handler")
        return VMEXIT_COST_NS + (IOREQ_COST_NS if handler == "dm" else 0)
    return PV_HYPERCALL_COST_NS


def domain_costs(host: XenHost, names: dict[int, tuple[str, str]] | None = None, *,
                 job: bool = True) -> dict[int, DomainCost]:
    """Summarise the host's trace per guest domain (Dom0's own records are attributed to
    the guest they serve). With ``job`` (the default), a domain whose trace has the
    workload markers is counted between them only."""
    costs: dict[int, DomainCost] = {}
    info = names or {d.domid: (d.name, d.dtype.value) for d in host.domains.values()}
    records = host.trace.records
    windows = _job_windows(records) if job else {}

    def cost(domid: int) -> DomainCost | None:
        if domid == 0 or domid not in info:
            return None
        if domid not in costs:
            costs[domid] = DomainCost(domid, *info[domid])
        return costs[domid]

    def served(r: TraceRecord) -> int:
        if r.kind is Kind.GRANT:
            return int((r.args or {}).get("granter", r.dom) or r.dom)
        return r.dom

    pv_doms = {d.domid for d in host.domains.values() if d.is_pv}
    targets = _Dom0Targets()
    for r in records:
        domid = served(r) if r.kind in (Kind.IO, Kind.GRANT) else r.dom
        if r.dom == 0 and r.kind in (Kind.HYPERCALL, Kind.GRANT):
            target = targets.target(r)
            if r.kind is Kind.HYPERCALL:
                if target is None or target == 0:
                    continue
                domid = target
        w = windows.get(domid)
        if w is not None:
            if not w[0].seq < r.seq < w[1].seq:
                continue
            if (r.kind is Kind.VMEXIT and (r.args or {}).get("port") == "0xe9") or (
                    r.kind is Kind.CONSOLE):
                continue  # the markers' own bytes on the debug port
        if r.kind is Kind.HYPERCALL and r.dom == 0:
            t = cost(domid)
            if t is not None:
                t.dom0_hypercalls[r.name] += 1
            continue
        c = cost(r.dom)
        if w is not None and c is not None and (
                r.kind is Kind.VMEXIT or (r.kind is Kind.HYPERCALL and r.dom in pv_doms)):
            c.exit_time += _exit_cost(r)
        if r.kind is Kind.HYPERCALL and r.dom and c is not None:
            c.hypercalls[r.name] += 1
        elif r.kind is Kind.VMEXIT and c is not None:
            c.vmexits[f"{r.name}/{(r.args or {}).get('handler', 'xen')}"] += 1
        elif r.kind is Kind.IOREQ and r.name == "ioreq" and c is not None:
            c.ioreqs += 1
        elif r.kind in (Kind.IO, Kind.GRANT) and r.dom:
            target = cost(domid)
            if target is not None:
                target.dom0_work[r.name] += 1
    for d in host.domains.values():
        c = cost(d.domid)
        if c is None:
            continue
        if d.domid in windows:
            start, end = windows[d.domid]
            c.job_time = end.time - start.time
        else:
            c.exit_time = d.exit_time
            c.instructions = d.cpu_time - c.exit_time
    return costs


def format_costs(costs: dict[int, DomainCost], out: IO[str]) -> None:
    """The comparison table ``xenlab compare`` prints."""
    cols = sorted(costs.values(), key=lambda c: c.domid)
    width = max([12] + [len(c.name) + len(c.dtype) + 5 for c in cols])
    out.write(f"{'':<34}" + "".join(f"{c.name + ' (' + c.dtype + ')':>{width}}" for c in cols)
              + "\n")

    def row(label: str, values: list[object]) -> None:
        out.write(f"{label:<34}" + "".join(f"{v!s:>{width}}" for v in values) + "\n")

    jobs = any(c.job_time is not None for c in cols)
    if jobs:
        out.write("counted: the job between the workload markers, where a guest has them\n")
        row("job's virtual time (us)", [
            f"{c.job_time / 1000:,.1f}" if c.job_time is not None else "-" for c in cols])
    if not all(c.job_time is not None for c in cols):
        row("guest instructions (virtual)", [
            f"{c.instructions:,}" if c.job_time is None else "-" for c in cols])
    row("entries into Xen", [c.traps for c in cols])
    row("  hypercalls", [sum(c.hypercalls.values()) for c in cols])
    row("  VM exits handled by Xen", [sum(n for k, n in c.vmexits.items()
                                          if k.endswith("/xen")) for c in cols])
    row("  VM exits sent to the device model", [c.exits_to_dm for c in cols])
    row("ioreqs answered in Dom0", [c.ioreqs for c in cols])
    row("Dom0 backend / grant operations", [sum(c.dom0_work.values()) for c in cols])
    row("Dom0's hypercalls for it", [sum(c.dom0_hypercalls.values()) for c in cols])
    if not all(c.job_time is not None for c in cols):
        row("instructions per entry into Xen", [
            f"{c.instructions // max(1, c.traps):,}" if c.job_time is None else "-"
            for c in cols])
    row("virtual time in exits/hypercalls (us)",
        [f"{c.exit_time / 1000:,.1f}" for c in cols])
    out.write("\nby cause:\n")
    causes = sorted({k for c in cols for k in (*c.vmexits, *(f"hypercall {h}"
                                                             for h in c.hypercalls))})
    for cause in causes:
        vals = []
        for c in cols:
            if cause.startswith("hypercall "):
                vals.append(c.hypercalls.get(cause[10:], 0))
            else:
                vals.append(c.vmexits.get(cause, 0))
        row(f"  {cause}", vals)
    dom0 = sorted({h for c in cols for h in c.dom0_hypercalls})
    if dom0:
        out.write("\nDom0's hypercalls, by the guest they served:\n")
        for h in dom0:
            row(f"  hypercall {h}", [c.dom0_hypercalls.get(h, 0) for c in cols])
