"""PV versus HVM, measured: what each guest cost Xen and Dom0, from the trace.

For each domain: guest instructions, hypercalls (by name), VM exits (by cause
and by handler: Xen itself or the device model), ioreqs answered by the device
model, and Dom0's work for it (backend requests, grant maps, events). A PV
guest asks Xen for what it needs with a few hypercalls and batches its I/O
through shared rings; an HVM guest touches emulated hardware, and every port
access is a VM exit, many of them a round trip to the device model: that is
the measured reason PV runs close to native.

Real Xen: tools/xentrace/xenalyze.c (VM exit and hypercall summaries)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import IO

from xenlab.xen.setup import XenHost
from xenlab.xen.trace import Kind

__all__ = ["DomainCost", "domain_costs", "format_costs"]


@dataclass
class DomainCost:
    domid: int
    name: str
    dtype: str
    instructions: int = 0
    exit_time: int = 0                                            # virtual ns in exits
    hypercalls: Counter[str] = field(default_factory=Counter)
    vmexits: Counter[str] = field(default_factory=Counter)       # "io/dm", "cpuid/xen", ...
    ioreqs: int = 0
    dom0_work: Counter[str] = field(default_factory=Counter)     # backend steps, grant maps

    @property
    def exits_to_dm(self) -> int:
        return sum(n for k, n in self.vmexits.items() if k.endswith("/dm"))

    @property
    def traps(self) -> int:
        """Every entry into Xen: hypercalls plus VM exits (a vmcall counts once)."""
        return sum(self.hypercalls.values()) + sum(
            n for k, n in self.vmexits.items() if not k.startswith("vmcall"))


def domain_costs(host: XenHost, names: dict[int, tuple[str, str]] | None = None
                 ) -> dict[int, DomainCost]:
    """Summarise the host's trace per guest domain (Dom0's own records are attributed to
    the guest they serve)."""
    costs: dict[int, DomainCost] = {}
    info = names or {d.domid: (d.name, d.dtype.value) for d in host.domains.values()}

    def cost(domid: int) -> DomainCost | None:
        if domid == 0 or domid not in info:
            return None
        if domid not in costs:
            costs[domid] = DomainCost(domid, *info[domid])
        return costs[domid]

    for r in host.trace:
        c = cost(r.dom)
        if r.kind is Kind.HYPERCALL and r.dom and c is not None:
            c.hypercalls[r.name] += 1
        elif r.kind is Kind.VMEXIT and c is not None:
            c.vmexits[f"{r.name}/{(r.args or {}).get('handler', 'xen')}"] += 1
        elif r.kind is Kind.IOREQ and r.name == "ioreq" and c is not None:
            c.ioreqs += 1
        elif r.kind in (Kind.IO, Kind.GRANT) and r.dom:
            served = cost(r.dom) if r.kind is Kind.IO else cost(
                int((r.args or {}).get("granter", r.dom) or r.dom))
            if served is not None:
                served.dom0_work[r.name] += 1
    for d in host.domains.values():
        c = cost(d.domid)
        if c is not None:
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

    row("guest instructions (virtual)", [f"{c.instructions:,}" for c in cols])
    row("entries into Xen", [c.traps for c in cols])
    row("  hypercalls", [sum(c.hypercalls.values()) for c in cols])
    row("  VM exits handled by Xen", [sum(n for k, n in c.vmexits.items()
                                          if k.endswith("/xen")) for c in cols])
    row("  VM exits sent to the device model", [c.exits_to_dm for c in cols])
    row("ioreqs answered in Dom0", [c.ioreqs for c in cols])
    row("Dom0 backend / grant operations", [sum(c.dom0_work.values()) for c in cols])
    row("instructions per entry into Xen",
        [f"{c.instructions // max(1, c.traps):,}" for c in cols])
    row("virtual time in exits (us)", [f"{c.exit_time // 1000:,}" for c in cols])
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
