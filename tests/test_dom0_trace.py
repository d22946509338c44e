"""Dom0's side of every conversation in the trace (issue 17).

pv-disk and pv-net (two guests on xenbr0) run against Dom0's Python backends; Dom0's
operations on the hypervisor are hypercall records of dom 0 with the number a real
Dom0's hypercall has: each interdomain channel is an ``EVTCHNOP_alloc_unbound`` on one
side and an ``EVTCHNOP_bind_interdomain`` by Dom0 on the other; each grant the
frontend makes and Dom0 maps is mapped and unmapped by Dom0 (the refs match, a blkif
request's segments in one ``GNTTABOP_map_grant_ref`` of ``count`` N).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from test_split_drivers import BUDGET, _create, _host, _temp_cfg

from xenlab.compare import domain_costs, format_costs
from xenlab.public.xen import Hypercall
from xenlab.views.traceviews import (
    format_conversation,
    handshake_conversation,
    hypercall_counts,
    split_driver_sequence,
)
from xenlab.xen.setup import XenHost
from xenlab.xen.trace import Kind, TraceRecord


def _run(tmp_path: Path, *cfgs: str) -> tuple[XenHost, list[int]]:
    """Run the guests to their end, then ``xl destroy`` them (Dom0 lets go of their
    store and console rings only then)."""
    host, xl = _host()
    doms = [_create(xl, _temp_cfg(tmp_path, c)) for c in cfgs]
    host.run(max_instructions=BUDGET * len(cfgs))
    assert all(d.is_shut_down and not d.is_crashed for d in doms)
    for d in doms:
        xl.domain_destroy(d)
    return host, [d.domid for d in doms]


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> tuple[XenHost, list[int]]:
    return _run(tmp_path_factory.mktemp("disk"), "pv-disk.cfg")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> tuple[XenHost, list[int]]:
    return _run(tmp_path_factory.mktemp("net"), "pv-net-a.cfg", "pv-net-b.cfg")


def _calls(host: XenHost, dom: int, name: str, cmd: str) -> list[TraceRecord]:
    return [r for r in host.trace.select(kind=Kind.HYPERCALL, dom=dom, name=name)
            if r.args and r.args.get("cmd") == cmd]


def _check_channels(host: XenHost, doms: list[int]) -> int:
    """Every port Dom0 bound is one some domain allocated unbound for Dom0; returns how
    many of them the guests allocated themselves (a frontend's device channel)."""
    binds = _calls(host, 0, "event_channel_op", "EVTCHNOP_bind_interdomain")
    assert binds and all(r.ret == 0 and r.args["result"]["local_port"] > 0 for r in binds)
    by_guest = 0
    for b in binds:
        guest, port = b.args["remote_dom"], b.args["remote_port"]
        assert guest in doms
        # the other side: the guest's own alloc_unbound, or the toolstack's (Dom0) on
        # the guest's behalf (its store and console ports), earlier in the trace
        allocs = [r for d in (guest, 0)
                  for r in _calls(host, d, "event_channel_op", "EVTCHNOP_alloc_unbound")
                  if r.seq < b.seq and r.args.get("result", {}).get("port") == port
                  and r.args["remote_dom"] == 0
                  and (d == guest or r.args["dom"] == guest)]
        assert len(allocs) >= 1, (b, guest, port)
        by_guest += allocs[-1].dom == guest
    return by_guest


def _check_grants(host: XenHost, guest: int) -> tuple[int, int]:
    """Every grant Dom0 mapped from ``guest`` (Xen's map record, granter = guest) is in
    one of Dom0's GNTTABOP_map_grant_ref hypercalls, and unmapped again by Dom0 in a
    GNTTABOP_unmap_grant_ref naming its handle. Returns (refs mapped, largest count)."""
    maps = [r for r in host.trace.select(kind=Kind.GRANT, dom=0, name="map_grant_ref")
            if r.args["granter"] == guest and r.ret == "GNTST_okay"]
    unmaps = {r.args["handle"]: r for r in host.trace.select(kind=Kind.GRANT, dom=0,
                                                              name="unmap_grant_ref")
              if r.ret == "GNTST_okay"}
    hmap = _calls(host, 0, "grant_table_op", "GNTTABOP_map_grant_ref")
    hunmap = _calls(host, 0, "grant_table_op", "GNTTABOP_unmap_grant_ref")
    assert maps
    for m in maps:
        # the hypercall that made it: the first of Dom0's map calls after Xen's record
        call = next(r for r in hmap if r.seq > m.seq)
        assert call.args["dom"] == guest and m.args["ref"] in call.args["refs"]
        assert call.args["count"] == len(call.args["refs"])
        u = unmaps.get(m.args["handle"])
        assert u is not None and u.seq > m.seq, m
        assert u.args["ref"] == m.args["ref"] and u.args["granter"] == guest
        ucall = next(r for r in hunmap if r.seq > u.seq)
        assert m.args["handle"] in ucall.args["handles"]
    return len(maps), max(r.args["count"] for r in hmap)


def test_pv_disk_dom0_side(disk: tuple[XenHost, list[int]]) -> None:
    host, (d,) = disk
    assert _check_channels(host, [d]) == 1  # blkfront's channel; store and console: libxl
    mapped, _largest = _check_grants(host, d)
    assert mapped >= 3   # the store ring, the blkif ring, the data pages
    # Dom0's records carry the hypercall numbers a real Dom0's have
    dom0 = host.trace.select(kind=Kind.HYPERCALL, dom=0)
    for r in dom0:
        assert r.args["nr"] == Hypercall[r.name], r
    names = Counter((r.name, r.args.get("cmd")) for r in dom0)
    assert names[("domctl", "XEN_DOMCTL_createdomain")] == 1
    assert names[("domctl", "XEN_DOMCTL_unpausedomain")] == 1
    assert names[("memory_op", "XENMEM_populate_physmap")] == 1
    assert names[("event_channel_op", "EVTCHNOP_send")] > 0
    assert names[("event_channel_op", "EVTCHNOP_close")] >= 1   # blkback disconnects
    # counting hypercalls per domain counts Dom0's, and Dom0's counter agrees
    counts = hypercall_counts(host.trace)
    assert sum(counts[0].values()) == len(dom0) == host.domains[0].hypercall_count
    # the notification blkback sends after its response is Dom0's EVTCHNOP_send
    # (the sequence then ends with Xen delivering it and the frontend running again)
    steps = split_driver_sequence(host.trace)
    actors = [s.actor for s in steps]
    assert actors[-2:] == ["Xen", "frontend"]
    assert "blkback" in actors[:-2] and actors[actors.index("blkback"):-1].count("Xen") >= 1


def test_pv_disk_handshake_is_a_conversation(disk: tuple[XenHost, list[int]]) -> None:
    host, (d,) = disk
    steps = handshake_conversation(host.trace, d)
    sides = {s.side for s in steps}
    assert sides == {"frontend", "backend"}
    text = [(s.side, s.step) for s in steps]
    order = [text.index(x) for x in [
        ("backend", "xenstore write state = 2"),
        ("frontend", "xenstore write state = 3"),
        ("backend", "xenstore write state = 4"),
        ("frontend", "xenstore write state = 4")]]
    assert order == sorted(order)
    alloc = next(i for i, (s, t) in enumerate(text)
                 if s == "frontend" and t.startswith("EVTCHNOP_alloc_unbound"))
    bind = next(i for i, (s, t) in enumerate(text)
                if s == "backend" and t.startswith("EVTCHNOP_bind_interdomain"))
    gmap = next(i for i, (s, t) in enumerate(text)
                if s == "backend" and t.startswith("GNTTABOP_map_grant_ref"))
    assert alloc < order[1] < gmap < bind < order[2]
    table = format_conversation(steps)
    assert "frontend (DomU)" in table and "backend (Dom0)" in table
    assert len(table.splitlines()) == len(steps) + 2


def test_blkif_request_segments_map_in_one_hypercall(disk: tuple[XenHost, list[int]]
                                                     ) -> None:
    host, (_d,) = disk
    # one GNTTABOP_map_grant_ref per blkif request with data, count = its segments
    reqs = [r for r in host.trace.select(kind=Kind.IO, name="blkback.blkif_request")
            if r.args["nr_segments"] > 0]
    assert reqs
    for req in reqs:
        call = next(r for r in _calls(host, 0, "grant_table_op", "GNTTABOP_map_grant_ref")
                    if r.seq > req.seq)
        assert call.args["count"] == req.args["nr_segments"]


def test_pv_net_dom0_side(net: tuple[XenHost, list[int]]) -> None:
    host, doms = net
    assert _check_channels(host, doms) == 2   # each netfront's channel
    for d in doms:
        mapped, _ = _check_grants(host, d)
        assert mapped >= 3   # tx ring, rx ring and frames both ways
        steps = handshake_conversation(host.trace, d, device="vif")
        assert {s.side for s in steps} == {"frontend", "backend"}
        assert sum(s.step.startswith("GNTTABOP_map_grant_ref") for s in steps) == 2
    for r in host.trace.select(kind=Kind.HYPERCALL, dom=0):
        assert r.args["nr"] == Hypercall[r.name]


def test_xenstored_and_xenconsoled_ring_accesses_are_dom0s(disk: tuple[XenHost, list[int]]
                                                           ) -> None:
    host, (d,) = disk
    ring = host.trace.select(kind=Kind.XENSTORE, name="xenstored_ring")
    assert ring and all(r.dom == 0 and r.args["domid"] == d for r in ring)
    assert sum(r.args["read"] for r in ring) > 0 and sum(r.args["written"] for r in ring) > 0
    cons = host.trace.select(kind=Kind.CONSOLE, name="xenconsoled_read")
    assert cons and all(r.dom == 0 and r.args["domid"] == d for r in cons)
    # each is followed by Dom0's notification of the guest: an EVTCHNOP_send
    recs = host.trace.records
    for r in ring[:5] + cons[:5]:
        i = r.seq - host.trace.dropped
        assert any(x.kind is Kind.HYPERCALL and x.dom == 0 and x.args["cmd"] == "EVTCHNOP_send"
                   for x in recs[i + 1 : i + 4]), r


def test_compare_counts_dom0s_hypercalls_per_guest(disk: tuple[XenHost, list[int]]) -> None:
    host, (d,) = disk
    costs = domain_costs(host, {d: ("pv-disk", "pv")}, job=False)
    dom0 = costs[d].dom0_hypercalls
    assert dom0["grant_table_op"] > 0 and dom0["event_channel_op"] > 0
    assert dom0["domctl"] >= 3
    import io
    out = io.StringIO()
    format_costs(costs, out)
    assert "Dom0's hypercalls for it" in out.getvalue()
