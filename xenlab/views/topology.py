"""The host as a graph: hardware, Xen, Dom0 and its services, the DomUs and what links them.

``build_topology(host)`` reads only live host state (domains, their event
channel ports and maptrack, Dom0's services) and returns a
``networkx.MultiDiGraph``; ``draw_topology`` lays it out in layers and
``save_topology`` writes a PNG or SVG.

Nodes (attribute ``kind``):

==============  ==========================================================
kind            nodes
==============  ==========================================================
``hardware``    ``hardware`` (CPUs, RAM), ``image:<file>`` (disk images)
``xen``         ``xen``
``dom0``        ``dom0``
``service``     ``dom0:xenstored``, ``dom0:xenconsoled``, ``dom0:blkback``,
                ``dom0:netback``, ``dom0:bridge:<name>``, ``dom0:qemu-dm-<N>``
                (the device model of HVM guest N)
``domu``        ``dom<N>`` (name, domid, type, state, memory_mib, vcpus)
``frontend``    ``dom<N>:vbd-<devid>``, ``dom<N>:vif-<devid>``,
                ``dom<N>:console``
==============  ==========================================================

Edges (attribute ``kind``, one style each in the drawing):

============  ================================================================
kind          meaning
============  ================================================================
``runs_on``   a domain on Xen, Xen on the hardware, a service in Dom0
``device``    a domain's frontend, a backend's image file or bridge port
``evtchn``    one interdomain event channel (both ports in the attributes)
``grant``     one live grant mapping: granter → grantee (ref, handle)
``xenstore``  a domain's connection to xenstored (its store ring)
``ring``      a shared ring a backend (or xenconsoled) has connected
``ioreq``     an HVM guest to its device model: the shared ioreq page and the
              event channel Xen notifies it on (``port`` = vp_eport in the guest,
              ``remote_port`` = the device model's in Dom0)
============  ================================================================

Real Xen: virt-manager's host details, ``xl list``/``xl network-list``/
``xl block-list``, and ``lsevtchn``/``xen-diag`` for the ports and grants
"""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING, Any

import networkx as nx
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from xenlab.tools.libs.light.libxl import dom0_services
from xenlab.xen.event_channel import ECS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from xenlab.xen.setup import XenHost

__all__ = ["EDGE_KINDS", "EDGE_STYLES", "build_topology", "draw_topology", "save_topology"]

#: Every edge kind, with its colour, line style and arc (rad) in the drawing.
EDGE_STYLES: dict[str, tuple[str, str, float]] = {
    "runs_on": ("#9e9e9e", "solid", 0.0),
    "device": ("#5d4037", "dotted", 0.0),
    "evtchn": ("#d32f2f", "dashed", 0.25),
    "grant": ("#1976d2", "solid", -0.25),
    "xenstore": ("#388e3c", "dashdot", 0.12),
    "ring": ("#f57c00", "solid", 0.0),
    "ioreq": ("#7b1fa2", "dashed", 0.0),
}
EDGE_KINDS = frozenset(EDGE_STYLES)

#: Node kind -> (fill colour, layer y in the drawing).
NODE_STYLES: dict[str, tuple[str, float]] = {
    "hardware": ("#bdbdbd", 0.0),
    "xen": ("#ef9a9a", 1.0),
    "service": ("#c5e1a5", 2.0),
    "frontend": ("#ffe0b2", 2.45),
    "dom0": ("#a5d6a7", 3.2),
    "domu": ("#90caf9", 3.2),
}

SERVICES = ("xenstored", "xenconsoled", "blkback", "netback")

#: Distance between two DomUs' columns, and the drawing's scale: inches per layout unit.
#: Chosen so that no two labels touch at any number of domains (tests/test_views.py
#: measures the labels' boxes).
COLUMN_WIDTH = 1.8
INCHES_PER_UNIT = 1.05


def _dom(domid: int) -> str:
    return f"dom{domid}"


def _dom0_port_owners(host: XenHost) -> dict[int, str]:
    """Dom0 port -> the node of the service (or frontend) it serves."""
    svc = dom0_services(host)
    owners: dict[int, str] = {}
    for _page, port in svc.xenstored.conns.values():
        owners[port] = "dom0:xenstored"
    for con in svc.xenconsoled.consoles.values():
        owners[con.port] = "dom0:xenconsoled"
    for devs in svc.devices.values():
        for dev in devs:
            if dev.port is not None:
                owners[dev.port] = "dom0:blkback" if dev.kind == "vbd" else "dom0:netback"
    return owners


def _dom0_grant_owners(host: XenHost) -> dict[int, str]:
    """Dom0 maptrack handle -> the service that holds the mapping."""
    svc = dom0_services(host)
    owners: dict[int, str] = {}
    for page, _port in svc.xenstored.conns.values():
        if page.mapping is not None:  # an HVM guest's store page is mapped, not granted
            owners[page.mapping.handle] = "dom0:xenstored"
    for con in svc.xenconsoled.consoles.values():
        if con.page.mapping is not None:
            owners[con.page.mapping.handle] = "dom0:xenconsoled"
    for devs in svc.devices.values():
        for dev in devs:
            node = "dom0:blkback" if dev.kind == "vbd" else "dom0:netback"
            pages = list(getattr(dev, "pages", []) or [])
            ring_page = getattr(dev, "ring_page", None)
            if ring_page is not None:
                pages.append(ring_page)
            for page in pages:
                if page.mapping is not None:
                    owners[page.mapping.handle] = node
    return owners


def build_topology(host: XenHost) -> nx.MultiDiGraph:
    """The host's live structure as a graph (see the module docstring for the tables)."""
    g = nx.MultiDiGraph()
    svc = dom0_services(host)
    running = host.running_vcpus()
    images = sorted({dev.image for devs in svc.devices.values() for dev in devs
                     if dev.kind == "vbd" and hasattr(dev, "image")}
                    | {disk.path for domid, dm in svc.device_models.items()
                       if domid in host.domains for disk in dm.disks()})
    g.add_node("hardware", kind="hardware", label="hardware",
               cpus=len(host.pcpus), memory_mib=host.mem.total_pages * 4 // 1024,
               disks=images, nics=sorted(svc.bridges))
    g.add_node("xen", kind="xen", label="Xen")
    g.add_edge("xen", "hardware", kind="runs_on")
    for path in images:
        node = f"image:{os.path.basename(path)}"
        g.add_node(node, kind="hardware", label=os.path.basename(path), path=path)
        g.add_edge(node, "hardware", kind="device")

    for d in sorted(host.domains.values(), key=lambda d: d.domid):
        node = _dom(d.domid)
        g.add_node(node, kind="dom0" if d.domid == 0 else "domu", label=d.name, name=d.name,
                   domid=d.domid, type=d.dtype.name, state=d.state_flags(running),
                   memory_mib=d.tot_pages * 4 // 1024, vcpus=len(d.vcpus),
                   cpu_time=d.cpu_time)
        g.add_edge(node, "xen", kind="runs_on")

    if 0 in host.domains:
        parts = ["xenstored", "xenconsoled"]
        kinds = {dev.kind for devs in svc.devices.values() for dev in devs}
        parts += [name for name, k in (("blkback", "vbd"), ("netback", "vif")) if k in kinds]
        for part in parts:
            g.add_node(f"dom0:{part}", kind="service", label=part, domid=0)
            g.add_edge(f"dom0:{part}", "dom0", kind="runs_on")
        for domid, dm in sorted(svc.device_models.items()):
            hvm = host.domains[domid].hvm if domid in host.domains else None
            if hvm is None:
                continue
            node = f"dom0:qemu-dm-{domid}"
            g.add_node(node, kind="service", label=f"qemu-dm d{domid}", domid=0,
                       serves=domid, ioreqs=dm.requests)
            g.add_edge(node, "dom0", kind="runs_on")
            g.add_edge(_dom(domid), node, kind="ioreq", port=hvm.ioreq_port,
                       remote_port=dm.local_port)
            for disk in dm.disks():
                g.add_edge(node, f"image:{os.path.basename(disk.path)}", kind="device",
                           dev=f"ide-{domid}")
        for name, bridge in sorted(svc.bridges.items()):
            bnode = f"dom0:bridge:{name}"
            g.add_node(bnode, kind="service", label=name, domid=0, ports=len(bridge.ports))
            g.add_edge(bnode, "dom0", kind="runs_on")
            g.add_edge(bnode, "hardware", kind="device", what="uplink (NIC)")

    # frontends, backends and their rings
    for domid, devs in sorted(svc.devices.items()):
        if domid not in host.domains:
            continue
        for dev in devs:
            fe = f"{_dom(domid)}:{dev.kind}-{dev.devid}"
            g.add_node(fe, kind="frontend", label=f"{dev.kind}-{dev.devid}", domid=domid,
                       state=int(dev.state))
            g.add_edge(_dom(domid), fe, kind="device")
            backend = "dom0:blkback" if dev.kind == "vbd" else "dom0:netback"
            if dev.port is not None:
                g.add_edge(fe, backend, kind="ring", dev=f"{dev.kind}-{domid}-{dev.devid}",
                           port=dev.port)
            image = getattr(dev, "image", None)
            if dev.kind == "vbd" and image:
                g.add_edge(backend, f"image:{os.path.basename(image)}", kind="device",
                           dev=f"vbd-{domid}-{dev.devid}")
            bridge = getattr(dev, "bridge", None)
            if dev.kind == "vif" and bridge is not None and dev in bridge.ports:
                g.add_edge(backend, f"dom0:bridge:{bridge.name}", kind="device",
                           port=getattr(dev, "name", ""))
    for domid in sorted(svc.xenconsoled.consoles):
        if domid in host.domains and domid != 0:
            con = f"{_dom(domid)}:console"
            g.add_node(con, kind="frontend", label="console", domid=domid)
            g.add_edge(_dom(domid), con, kind="device")
            g.add_edge(con, "dom0:xenconsoled", kind="ring")
    for domid in sorted(svc.xenstored.conns):
        if domid in host.domains:
            g.add_edge(_dom(domid), "dom0:xenstored", kind="xenstore")

    # event channels: each interdomain pair once
    owners = _dom0_port_owners(host)
    seen: set[tuple[tuple[int, int], tuple[int, int]]] = set()
    for d in sorted(host.domains.values(), key=lambda d: d.domid):
        if d.evtchn is None:
            continue
        for port, ch in sorted(d.evtchn.ports.items()):
            if ch.state is not ECS.INTERDOMAIN or ch.remote_domid not in host.domains:
                continue
            peer = host.domains[ch.remote_domid].evtchn
            rch = peer.lookup(ch.remote_port) if peer is not None else None
            if ch.xen_consumer is not None or (rch is not None and rch.xen_consumer):
                continue  # an ioreq server's port: drawn as the guest's ioreq edge
            a, b = (d.domid, port), (ch.remote_domid, ch.remote_port)
            key = (min(a, b), max(a, b))
            if key in seen:
                continue
            seen.add(key)
            (da, pa), (db, pb) = key
            if da == 0:  # draw a guest's channel from the guest to Dom0's service
                (da, pa), (db, pb) = (db, pb), (da, pa)
            via = owners.get(pb, "") if db == 0 else ""
            g.add_edge(_dom(da), _dom(db), kind="evtchn", port=pa, remote_port=pb, via=via)

    # grant mappings: granter -> grantee
    grant_owners = _dom0_grant_owners(host)
    for d in sorted(host.domains.values(), key=lambda d: d.domid):
        if d.grant_table is None:
            continue
        for handle, m in sorted(d.grant_table.maptrack.items()):
            via = grant_owners.get(handle, "") if d.domid == 0 else ""
            g.add_edge(_dom(m.granter), _dom(d.domid), kind="grant", ref=m.ref,
                       handle=handle, readonly=m.readonly, via=via)
    return g


# ---------------------------------------------------------------------------- drawing
def _layout(g: nx.MultiDiGraph) -> dict[str, tuple[float, float]]:
    """Layers: hardware (y 0), Xen (1), Dom0's services (2) below Dom0 (3.2), each DomU's
    frontends (2.45) below it. Columns: Dom0 on the left, DomUs by domid to its right."""
    pos: dict[str, tuple[float, float]] = {}
    domus = sorted((n for n, a in g.nodes(data=True) if a["kind"] == "domu"),
                   key=lambda n: g.nodes[n]["domid"])
    services = sorted(n for n, a in g.nodes(data=True) if a["kind"] == "service")
    dom0_width = max(2.0, 1.05 * len(services))
    for i, n in enumerate(services):
        pos[n] = (dom0_width * (i + 0.5) / max(1, len(services)) - 0.5, 2.0 - 0.22 * (i % 2))
    if "dom0" in g:
        pos["dom0"] = (dom0_width / 2 - 0.5, 3.2)
    col = COLUMN_WIDTH
    x0 = dom0_width + 0.4
    for i, n in enumerate(domus):
        x = x0 + i * col
        pos[n] = (x, 3.2)
        fronts = sorted(v for _u, v, k in g.out_edges(n, data="kind")
                        if k == "device" and g.nodes[v]["kind"] == "frontend")
        for j, f in enumerate(fronts):
            off = (j - (len(fronts) - 1) / 2) * min(0.6, col / max(1, len(fronts)))
            pos[f] = (x + off, 2.45 - 0.22 * (j % 2))
    right = x0 + max(0, len(domus) - 1) * col
    mid = (right - 0.5) / 2
    pos["xen"] = (mid, 1.0)
    hw = sorted(n for n, a in g.nodes(data=True) if a["kind"] == "hardware" and n != "hardware")
    pos["hardware"] = (mid, 0.0)
    for i, n in enumerate(hw):
        pos[n] = (mid + (i + 1) * 1.8, 0.0)
    for n in g.nodes:  # anything unplaced (future node kinds) goes on the top row
        pos.setdefault(n, (right + 1.0, 3.8))
    return pos


def _label(g: nx.MultiDiGraph, n: str) -> str:
    a = g.nodes[n]
    kind = a["kind"]
    if kind in ("dom0", "domu"):
        return (f"{a['name']}\nid {a['domid']} {a['type']} {a['state']}\n"
                f"{a['memory_mib']} MiB, {a['vcpus']} vCPU")
    if n == "hardware":
        return f"hardware\n{a['cpus']} CPUs, {a['memory_mib']} MiB"
    return str(a.get("label", n))


def draw_topology(graph: nx.MultiDiGraph, ax: Axes | None = None) -> Figure:
    """Draw a ``build_topology`` graph in layers, one colour and style per edge kind."""
    domus = sum(1 for _n, a in graph.nodes(data=True) if a["kind"] == "domu")
    pos = _layout(graph)
    if ax is None:
        xs = [p[0] for p in pos.values()] or [0.0]
        width = INCHES_PER_UNIT * (max(xs) - min(xs) + 2.0)
        fig = Figure(figsize=(max(8.0, width), 6.5), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure  # type: ignore[assignment]
    font = 8 if domus <= 6 else 6
    for kind, (colour, _y) in NODE_STYLES.items():
        nodes = [n for n, a in graph.nodes(data=True) if a["kind"] == kind]
        if not nodes:
            continue
        size = {"frontend": 550, "service": 1000}.get(kind, 3600)
        nx.draw_networkx_nodes(graph, pos, nodelist=nodes, node_color=colour, node_size=size,
                               node_shape="s" if kind in ("hardware", "xen") else "o",
                               edgecolors="#424242", ax=ax)
    nx.draw_networkx_labels(graph, pos, labels={n: _label(graph, n) for n in graph.nodes},
                            font_size=font, ax=ax)
    # parallel edges of one kind are drawn once, thicker with their count
    counts: Counter[tuple[str, str, str]] = Counter(
        (u, v, k) for u, v, k in graph.edges(data="kind"))
    handles = []
    for kind, (colour, style, rad) in EDGE_STYLES.items():
        edges = [(u, v) for (u, v, k) in counts if k == kind]
        if not edges:
            continue
        widths = [1.0 + 0.6 * min(6, counts[(u, v, kind)] - 1) for u, v in edges]
        nx.draw_networkx_edges(graph, pos, edgelist=edges, edge_color=colour, style=style,
                               width=widths, arrows=True, arrowsize=8, node_size=1200,
                               connectionstyle=f"arc3,rad={rad}", ax=ax)
        total = sum(counts[(u, v, kind)] for u, v in edges)
        handles.append(Line2D([0], [0], color=colour, linestyle=style, lw=2,
                              label=f"{kind} ({total})"))
    ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.9)
    ax.set_title("xenlab host topology", fontsize=10)
    ax.set_axis_off()
    xs = [p[0] for p in pos.values()] or [0.0]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(-0.5, 4.1)
    fig.tight_layout()
    return fig


def save_topology(host: XenHost, path: str | os.PathLike[str], *, dpi: int = 80,
                  **kwargs: Any) -> Figure:
    """Draw the host's topology and save it (PNG or SVG, by ``path``'s extension)."""
    fig = draw_topology(build_topology(host))
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in ("png", "svg"):
        raise ValueError(f"save_topology: {path}: use a .png or .svg file name")
    fig.savefig(path, format=ext, dpi=dpi, **kwargs)
    return fig
