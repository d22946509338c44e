"""xenlab.views on data, not pixels: the topology graph, trace views, the dashboard's
model, the magics against ``xenlab shell``, and the progress reporter."""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
from matplotlib.figure import Figure

from xenlab.cli import XlShell, _make_host
from xenlab.lab import IMAGES, Lab
from xenlab.views import magics
from xenlab.views.dashboard import Dashboard
from xenlab.views.progress import run_with_progress
from xenlab.views.topology import EDGE_KINDS, build_topology, draw_topology, save_topology
from xenlab.views.traceviews import (
    compare_pv_hvm,
    hypercall_counts,
    plot_hypercall_counts,
    plot_sequence,
    split_driver_sequence,
    swimlane_bins,
    swimlanes,
    vmexit_summary,
)
from xenlab.xen.setup import DEFAULT_HOST_MIB, RunStatus
from xenlab.xen.trace import Kind, TraceRecord


def _disk_cfg(tmp: Path) -> str:
    shutil.copy(IMAGES / "pv-disk.img", tmp / "pv-disk.img")
    text = (IMAGES / "pv-disk.cfg").read_text().replace(
        'kernel = "pv-disk/pv-disk.elf"', f'kernel = "{IMAGES / "pv-disk" / "pv-disk.elf"}"')
    (tmp / "pv-disk.cfg").write_text(text)
    return str(tmp / "pv-disk.cfg")


@pytest.fixture(scope="module")
def net_lab() -> Lab:
    lab = Lab()
    for cfg in ("pv-net-a.cfg", "pv-net-b.cfg"):
        assert "Created domain" in lab.xl_output(f"create {Lab.image(cfg)}")
    assert lab.run() is RunStatus.IDLE
    return lab


@pytest.fixture(scope="module")
def disk_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab()
    cfg = _disk_cfg(tmp_path_factory.mktemp("disk"))
    assert "Created domain" in lab.xl_output(f"create {cfg}")
    assert lab.run() is RunStatus.IDLE
    yield lab
    lab.xl_output("destroy pv-disk")  # blkback closes the image file


# ------------------------------------------------------------------------------ topology
def test_topology_matches_the_host(net_lab: Lab) -> None:
    g = build_topology(net_lab.host)
    kinds = {k for _u, _v, k in g.edges(data="kind")}
    assert kinds <= EDGE_KINDS
    for node in ("hardware", "xen", "dom0", "dom0:xenstored", "dom0:xenconsoled",
                 "dom0:netback", "dom0:bridge:xenbr0"):
        assert node in g, node
    assert "dom0:blkback" not in g  # no disk: no blkback drawn
    vifs = [n for n, a in g.nodes(data=True) if a["kind"] == "frontend" and "vif-" in n]
    assert sorted(vifs) == ["dom1:vif-0", "dom2:vif-0"]
    for domid in (1, 2):
        a = g.nodes[f"dom{domid}"]
        d = net_lab.host.domains[domid]
        assert (a["name"], a["domid"], a["type"], a["vcpus"]) == (d.name, domid, "PV", 1)
        assert a["state"] == d.state_flags(net_lab.host.running_vcpus())
        assert a["memory_mib"] == 16
        edges = [(v, e) for _u, v, e in g.out_edges(f"dom{domid}", data=True)]
        evtchn = [e for v, e in edges if e["kind"] == "evtchn" and v == "dom0"]
        # store, console and the vif: each a real interdomain pair
        assert sorted(e["via"] for e in evtchn) == ["dom0:netback", "dom0:xenconsoled",
                                                    "dom0:xenstored"]
        for e in evtchn:
            ch = d.evtchn.ports[e["port"]]
            assert (ch.remote_domid, ch.remote_port) == (0, e["remote_port"])
        grants = [e for v, e in edges if e["kind"] == "grant" and v == "dom0"]
        dom0_maps = [m for m in net_lab.host.domains[0].grant_table.maptrack.values()
                     if m.granter == domid]
        assert sorted(e["ref"] for e in grants) == sorted(m.ref for m in dom0_maps)
        assert sorted(e["via"] for e in grants).count("dom0:netback") == 2  # tx + rx rings
        assert [v for v, e in edges if e["kind"] == "xenstore"] == ["dom0:xenstored"]
        assert g.has_edge(f"dom{domid}:vif-0", "dom0:netback")
        assert g.has_edge(f"dom{domid}:console", "dom0:xenconsoled")
    fig = draw_topology(g)
    assert isinstance(fig, Figure)


def test_topology_after_destroy_and_svg(net_lab: Lab, tmp_path: Path) -> None:
    lab = Lab()
    lab.xl_output(f"create {Lab.image('pv-net-a.cfg')}")
    lab.xl_output("destroy pv-net-a")
    g = build_topology(lab.host)
    assert "dom1" not in g and not any(n.startswith("dom1:") for n in g)
    save_topology(net_lab.host, tmp_path / "t.svg")
    assert (tmp_path / "t.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError):
        save_topology(net_lab.host, tmp_path / "t.jpg")


def test_topology_disk(disk_lab: Lab) -> None:
    g = build_topology(disk_lab.host)
    assert "dom0:blkback" in g and "image:pv-disk.img" in g
    assert g.has_edge("dom0:blkback", "image:pv-disk.img")
    assert g.has_edge("dom1", "dom1:vbd-51712")


def test_topology_hvm_guest_has_its_device_model() -> None:
    """One device model per HVM guest, in Dom0, with the guest's ioreq edge (vp_eport and
    the device model's port) and its disk image; the ioreq port is not drawn twice."""
    lab = Lab()
    lab.xl(f"create {Lab.image('hvm-hello.cfg')}")
    lab.xl(f"create {Lab.image('hvm-work.cfg')}")
    lab.run(max_instructions=3_000_000)
    g = build_topology(lab.host)
    for domid, image in ((1, "image:hvm-hello.img"), (2, "image:work.img")):
        dm = f"dom0:qemu-dm-{domid}"
        assert g.nodes[dm]["kind"] == "service" and g.has_edge(dm, "dom0")
        hvm = lab.host.domains[domid].hvm
        ioreq = [a for _u, v, a in g.out_edges(f"dom{domid}", data=True)
                 if a["kind"] == "ioreq"]
        assert ioreq == [{"kind": "ioreq", "port": hvm.ioreq_port,
                          "remote_port": lab.toolstack.device_models[domid].local_port}]
        assert g.has_edge(dm, image)
        evtchn_ports = [a["port"] for _u, _v, a in g.out_edges(f"dom{domid}", data=True)
                        if a["kind"] == "evtchn"]
        assert hvm.ioreq_port not in evtchn_ports
    draw_topology(g)
    lab.xl("destroy hvm-hello")
    assert "dom0:qemu-dm-1" not in build_topology(lab.host)


# ---------------------------------------------------------------------------- traceviews
def test_hypercall_counts_match_the_trace(net_lab: Lab) -> None:
    recs = net_lab.trace.records
    counts = hypercall_counts(recs)
    for dom, counter in counts.items():
        assert sum(counter.values()) == sum(1 for r in recs if r.kind is Kind.HYPERCALL
                                            and r.dom == dom)
        assert net_lab.host.domains[dom].hypercall_count >= sum(counter.values())
    assert counts[1]["event_channel_op"] > 0
    by_cmd = hypercall_counts(net_lab.trace, by_cmd=True)
    assert by_cmd[1]["event_channel_op:EVTCHNOP_send"] > 0
    assert isinstance(plot_hypercall_counts(net_lab.trace), Figure)
    assert isinstance(plot_hypercall_counts({}), Figure)


def _synthetic(n: int) -> list[TraceRecord]:
    kinds = [Kind.HYPERCALL, Kind.EVENT, Kind.SCHED, Kind.IO]
    return [TraceRecord(i, i * 37, i % 4, (i // 4) % 2, kinds[i % 7 % 4], "x", None, None)
            for i in range(n)]


def test_swimlanes_aggregate_a_big_trace_quickly() -> None:
    recs = _synthetic(100_000)
    t0 = time.perf_counter()
    edges, lanes = swimlane_bins(recs, 100)
    assert len(edges) == 101
    assert len(lanes) == 8
    assert sum(int(c.sum()) for kinds in lanes.values() for c in kinds.values()) == 100_000
    fig = swimlanes(recs)
    assert isinstance(fig, Figure)
    points = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert points <= 8 * len(Kind) * 200
    assert "bins" in fig.axes[0].get_title()
    assert time.perf_counter() - t0 < 5
    small = swimlanes(recs[:100])
    assert sum(len(c.get_offsets()) for c in small.axes[0].collections) == 100
    assert isinstance(swimlanes([]), Figure)


def test_vmexits_and_pv_hvm_compare_handle_empty(net_lab: Lab) -> None:
    assert vmexit_summary(net_lab.trace) == {}
    fake = [TraceRecord(0, 1, 1, 0, Kind.VMEXIT, "vmexit", {"reason": "IO_INSTRUCTION",
                                                             "handler": "ioreq"}, None)] * 3
    assert vmexit_summary(fake) == {"IO_INSTRUCTION": {"ioreq": 3}}
    assert isinstance(compare_pv_hvm(net_lab.trace, []), Figure)
    assert isinstance(compare_pv_hvm([], []), Figure)


def test_split_driver_sequence_of_one_write(disk_lab: Lab) -> None:
    steps = split_driver_sequence(disk_lab.trace)
    actors = [s.actor for s in steps]
    text = [s.step for s in steps]
    assert actors == ["frontend", "Xen", "blkback", "Xen", "disk", "Xen", "blkback",
                      "blkback", "Xen"], steps
    assert text[0].startswith("EVTCHNOP_send")
    assert text[2].startswith("blkif_request BLKIF_OP_WRITE sector 100")
    assert text[3].startswith("map grant ref") and text[3].endswith(" ro")
    assert text[4] == "disk_write sector 100"
    assert text[5].startswith("unmap grant ref")
    assert text[6] == "blkif_response BLKIF_RSP_OKAY"
    times = [s.time for s in steps]
    assert times == sorted(times)
    read = split_driver_sequence(disk_lab.trace, request_id=2)
    assert any(s.step == "disk_read sector 100" for s in read)
    assert split_driver_sequence(disk_lab.trace, request_id=999) == []
    assert isinstance(plot_sequence(steps), Figure)
    assert isinstance(plot_sequence([]), Figure)


# ----------------------------------------------------------------------------- dashboard
def test_dashboard_buttons_change_domain_state() -> None:
    lab = Lab()
    dash = Dashboard(lab, budget=200_000)
    assert [r[0] for r in dash.rows()] == ["Domain-0"]
    dash.config_path.value = Lab.image("pv-spin.cfg")
    dash.create_button.click()
    assert "Created domain 1 (pv-spin)" in dash.xl_log.value
    assert dash.selected == 1 and "pv-spin" in dash.table.value
    dash.pause_button.click()
    assert lab.domain(1).state_flags()[2] == "p"
    assert dash.rows()[1][2][2] == "p"
    dash.unpause_button.click()
    assert lab.domain(1).state_flags()[2] == "-"
    dash.run_button.click()
    assert dash.status.value.startswith("run: budget")
    assert dash.console.value == lab.console(1)
    dash.destroy_button.click()
    assert 1 not in lab.host.domains
    assert dash.selected is None and [r[1] for r in dash.rows()] == [0]
    assert "# xl destroy 1" in dash.xl_log.value


def test_dashboard_shutdown_and_console(net_lab: Lab) -> None:
    lab = Lab()
    dash = Dashboard(lab)
    dash.config_path.value = Lab.image("pv-hello.cfg")
    dash.create_button.click()
    dash.run_button.click()
    assert dash.console.value and dash.console.value == lab.console("pv-hello")
    lab.xl_output(f"create {Lab.image('pv-spin.cfg')}")
    dash.refresh()
    dash.selector.value = lab.domain("pv-spin").domid
    dash.shutdown_button.click()
    assert "# xl shutdown -F" in dash.xl_log.value
    assert "xl: error" not in dash.xl_log.value


# -------------------------------------------------------------------------------- magics
SESSION = [f"create {IMAGES / 'pv-hello.cfg'}", "list", "console pv-hello", "dmesg",
           "pause pv-hello", "list", "nosuchcommand", "destroy pv-hello", "list"]


def _shell_output(line: str, shell: XlShell) -> str:
    buf = io.StringIO()
    shell.stdout = buf
    shell.onecmd(line)
    return buf.getvalue()


def test_magics_print_what_the_shell_prints(capsys: pytest.CaptureFixture[str]) -> None:
    shell = XlShell(_make_host(DEFAULT_HOST_MIB, 2), stdin=io.StringIO(), stdout=io.StringIO())
    ip = None
    try:
        from IPython.core.interactiveshell import InteractiveShell

        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "xenlab.views.magics")
    except Exception:  # no usable IPython here: call the magics' functions directly
        ip = None
    magics.set_lab(None)

    def magic(name: str, line: str) -> str:
        capsys.readouterr()
        if ip is not None:
            ip.run_line_magic(name, line)
            return capsys.readouterr().out
        return {"xl": magics.xl_command, "xenstore": magics.xenstore_command}[name](line)

    for line in SESSION:
        assert magic("xl", line) == _shell_output(f"xl {line}", shell), line
    for line in ("ls /local/domain/0", "write /tool/x 1", "read /tool/x", "read /nope"):
        assert magic("xenstore", line) == _shell_output(f"xenstore-{line}", shell), line
    lab = magics.get_lab()
    assert magic("xl", "reset") == "xenlab: new host\n"
    assert magics.get_lab() is not lab
    magics.set_lab(None)


def test_xlcfg_cell_creates_a_domain() -> None:
    magics.set_lab(Lab())
    body = ('name = "cellguest"\ntype = "pv"\nkernel = "pv-hello/pv-hello.elf"\nmemory = 16\n'
            'on_poweroff = "preserve"\n')
    out = magics.xlcfg_command("cellguest", body)
    assert "Created domain 1 (cellguest)" in out
    assert magics.get_lab().console("cellguest")  # %%xlcfg lets it run, as %xl create
    assert magics.get_lab().domain("cellguest").domid == 1
    assert magics.xlcfg_command("../evil", body).startswith("xlcfg: bad config name")
    magics.set_lab(None)


# ------------------------------------------------------------------------------ progress
def test_progress_reports_budget_stop() -> None:
    lab = Lab()
    lab.xl_output(f"create {Lab.image('pv-spin.cfg')}")
    out = io.StringIO()
    status = run_with_progress(lab, 300_000, chunk=100_000, mode="text", out=out)
    assert status is RunStatus.BUDGET
    text = out.getvalue()
    assert "\r[" in text and "100%" in text
    assert "budget of 300,000 instructions used up; still running: pv-spin (dom 1)" in text


def test_progress_reports_idle() -> None:
    lab = Lab()
    lab.xl_output(f"create {Lab.image('pv-hello.cfg')}")
    out = io.StringIO()
    status = run_with_progress(lab.host, 2_000_000_000, chunk=50_000_000, mode="quiet",
                               out=out)
    assert status is RunStatus.IDLE
    assert out.getvalue().startswith("xenlab: idle after ")


def test_hypercall_counts_cover_records_the_ring_let_go() -> None:
    """A run longer than the trace's ring: the per-domain counts are the whole run's."""
    from xenlab.views.traceviews import hypercall_counts
    from xenlab.xen.trace import Kind, Trace

    trace = Trace(limit=100)
    for i in range(1000):
        trace.emit(i, 1, 0, Kind.HYPERCALL, "xen_version", {"nr": 17}, 0)
    assert trace.dropped > 0
    assert hypercall_counts(trace) == {1: {"xen_version": 1000}}
