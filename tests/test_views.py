"""xenlab.views on data, not pixels: the topology graph, trace views, the dashboard's
model, the magics against ``xenlab shell``, and the progress reporter."""

from __future__ import annotations

import io
import itertools
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
    cost_categories,
    hypercall_counts,
    plot_hypercall_counts,
    plot_sequence,
    running_intervals,
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


def _label_overlaps(fig: Figure, pad: float = 4.0) -> list[tuple[str, str]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [(t.get_text().splitlines()[0], t.get_window_extent(renderer).padded(pad))
             for t in fig.axes[0].texts if t.get_text()]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:]
            if ba.overlaps(bb)]


def test_topology_labels_do_not_overlap(tmp_path: Path) -> None:
    """Chapter 05's host (a disk guest and two network guests, every frontend connected),
    then three more guests: no two labels' boxes (4 px of margin around each) touch."""
    lab = Lab()
    for cfg in (_disk_cfg(tmp_path), Lab.image("pv-net-a.cfg"), Lab.image("pv-net-b.cfg")):
        assert "Created domain" in lab.xl_output(f"create {cfg}")
    devices = lambda: [d for ds in lab.toolstack.services.devices.values() for d in ds]  # noqa: E731
    lab.host.run(until=lambda: len(devices()) == 3 and all(int(d.state) == 4
                                                         for d in devices()))
    fig = draw_topology(build_topology(lab.host))
    assert len(fig.axes[0].texts) > 15
    assert _label_overlaps(fig) == []
    for cfg in ("hvm-hello.cfg", "pv-hello.cfg", "pv-spin.cfg"):
        assert "Created domain" in lab.xl_output(f"create {Lab.image(cfg)}")
    lab.run(3_000_000)
    assert _label_overlaps(draw_topology(build_topology(lab.host))) == []
    lab.xl_output("destroy pv-disk")


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
    """The diagram's arrows are where the data really goes: the request and the response
    cross the shared ring between the frontend and blkback, Xen carries only the
    notifications and the grant maps, and only blkback touches the disk."""
    steps = split_driver_sequence(disk_lab.trace)
    assert [(s.edge, s.via) for s in steps] == [
        (("frontend", "blkback"), "ring"),       # the request, on the shared page
        (("frontend", "Xen"), "hypercall"),      # EVTCHNOP_send
        (("Xen", "blkback"), "event"),           # Dom0's port pending
        (("blkback", "blkback"), ""),            # takes the request off the ring
        (("blkback", "Xen"), "hypercall"),       # map the data page's grant
        (("blkback", "disk"), "io"),             # the write, by Dom0
        (("blkback", "Xen"), "hypercall"),       # unmap
        (("blkback", "frontend"), "ring"),       # the response, on the shared page
        (("blkback", "Xen"), "hypercall"),       # EVTCHNOP_send
        (("Xen", "frontend"), "event"),          # the frontend's port pending
        (("frontend", "frontend"), ""),          # it runs again
    ], steps
    assert not [s for s in steps if "disk" in s.edge and "Xen" in s.edge]
    assert {s.actor for s in steps if "disk" in s.edge} == {"blkback"}
    text = [s.step for s in steps]
    assert text[1].startswith("EVTCHNOP_send port")
    assert text[3] == "takes request 1 off the ring: WRITE sector 100"
    assert text[4].startswith("map d1's grant ref") and "read-only: GNTST_okay" in text[4]
    assert text[5] == "write sector 100 (512 bytes)"
    assert text[7] == "response 1 on the ring: BLKIF_RSP_OKAY"
    # the records' own times: Dom0's steps share the notification's instant, the
    # frontend resumes later (the diagram no longer prints +0.0 everywhere)
    times = [s.time for s in steps]
    assert times == sorted(times) and times[-1] > times[0]
    write = disk_lab.trace.select(kind="io", name="blkback.disk_write")[0]
    assert steps[5].time == write.time
    read = split_driver_sequence(disk_lab.trace, request_id=2)
    assert any(s.step == "read sector 100 (512 bytes)" and s.edge == ("blkback", "disk")
               for s in read)
    assert split_driver_sequence(disk_lab.trace, request_id=999) == []
    fig = plot_sequence(steps)
    arrows = [a for a in fig.axes[0].texts if getattr(a, "arrow_patch", None) is not None]
    assert len(arrows) == len(steps)
    assert isinstance(plot_sequence([]), Figure)


def _one_cpu_spinners(tmp: Path) -> Lab:
    lab = Lab(nr_cpus=1)
    for name, weight in (("heavy", 512), ("light", 256)):
        (tmp / f"{name}.cfg").write_text(
            f'name = "{name}"\ntype = "pv"\nkernel = "{IMAGES / "pv-spin" / "pv-spin.elf"}"\n'
            f'memory = 16\nweight = {weight}\non_poweroff = "preserve"\n')
        assert "Created domain" in lab.xl_output(f"create {tmp / name}.cfg")
    assert lab.run() is RunStatus.IDLE
    return lab


def test_swimlanes_show_who_ran_when(tmp_path: Path) -> None:
    """Two spinners on one pCPU: the running intervals come from the sched records, never
    overlap on the pCPU, add up to each domain's CPU time, and are drawn as bars with a
    legend entry per domain."""
    lab = _one_cpu_spinners(tmp_path)
    ivs = running_intervals(lab.trace)
    assert set(ivs) == {(1, 0), (2, 0)}          # Dom0 never runs on a pCPU in xenlab
    for (dom, _v), lane in ivs.items():
        assert len(lane) > 5                      # they took turns
        ran = sum(i.end - i.start for i in lane)
        assert abs(ran - lab.host.domains[dom].cpu_time) < 10_000  # within 10 us
        assert all(i.pcpu == 0 for i in lane)
    both = sorted(i for lane in ivs.values() for i in lane)
    assert all(a.end <= b.start for a, b in itertools.pairwise(both))
    fig = swimlanes(lab.trace, kinds=["hypercall", "sched"])
    ax = fig.axes[0]
    bars = [c for c in ax.collections if c.get_label().endswith("running")]
    assert sorted(c.get_label() for c in bars) == ["d1 heavy running", "d2 light running"]
    assert sum(len(c.get_paths()) for c in bars) == sum(len(v) for v in ivs.values())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "d1 heavy running" in legend and "hypercall record" in legend


def _scale_and_label(ax: object, axis: str) -> tuple[str, str]:
    if axis == "x":
        return ax.get_xscale(), ax.get_xlabel()  # type: ignore[attr-defined]
    return ax.get_yscale(), ax.get_ylabel()  # type: ignore[attr-defined]


def test_count_axes_fit_the_counts() -> None:
    """1 and 11 hypercalls get a linear axis; counts spanning 1 to 5,000 a log axis whose
    label says so; every bar carries its number."""
    from collections import Counter
    fig = plot_hypercall_counts({1: Counter({"sched_op": 11, "xen_version": 1})})
    assert _scale_and_label(fig.axes[0], "x") == ("linear", "hypercalls")
    assert {"11", "1"} <= {t.get_text().strip() for t in fig.axes[0].texts}
    fig = plot_hypercall_counts({0: Counter({"event_channel_op": 5000}),
                                 1: Counter({"sched_op": 1})})
    assert _scale_and_label(fig.axes[0], "x") == ("log", "hypercalls (log scale)")
    assert "5,000" in {t.get_text().strip() for t in fig.axes[0].texts}


def test_compare_pv_hvm_shows_pv_and_counts_ioreqs_as_the_text() -> None:
    """The ioreq bar counts requests (the ``ioreq`` records, as chapter 06's text and
    ``xenlab compare`` do), not every record of kind ioreq; with PV's tens against HVM's
    thousands the axis is log and labelled so, and PV's bars are there with their
    numbers."""
    def rec(i: int, kind: Kind, name: str, dom: int = 1) -> TraceRecord:
        return TraceRecord(i, i, dom, 0, kind, name, {}, None)
    pv = [rec(i, Kind.HYPERCALL, "xen_version") for i in range(12)]
    hvm = ([rec(i, Kind.VMEXIT, "io") for i in range(3000)]
           + [rec(i, Kind.IOREQ, "ioreq") for i in range(3000)]
           + [rec(i, Kind.IOREQ, "ioresp") for i in range(3000)]
           + [rec(0, Kind.IOREQ, "ioreq_server_create", 0)])
    assert cost_categories(hvm)["ioreqs"] == 3000
    fig = compare_pv_hvm(pv, hvm)
    ax = fig.axes[0]
    assert _scale_and_label(ax, "y") == ("log", "records (log scale)")
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("3,000") == 2 and "12" in labels
    pv_bars = ax.containers[0]
    assert round(pv_bars[0].get_height()) == 12
    assert ax.get_ylim()[0] < 12  # the PV bar is above the axis' bottom: it shows


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


def test_dashboard_says_why_create_failed(tmp_path: Path) -> None:
    """A failed Create is one line beside the buttons, with xl's reason; a good one says
    which domain it made. Nothing is created by the failure."""
    lab = Lab()
    dash = Dashboard(lab)
    dash.config_path.value = str(tmp_path / "missing.cfg")
    dash.create_button.click()
    assert dash.status.value == f"Create failed: {tmp_path / 'missing.cfg'}: no such file"
    dash.config_path.value = str(IMAGES.parent / "tests/configs/bad/unknown-key.cfg")
    dash.create_button.click()
    assert dash.status.value.startswith("Create failed: ")
    assert "unknown key 'memroy' (did you mean 'memory'?)" in dash.status.value
    assert "\n" not in dash.status.value and list(lab.host.domains) == [0]
    spaced = tmp_path / "my guest.cfg"                 # a path with a space still works
    spaced.write_text(Path(Lab.image("pv-hello.cfg")).read_text().replace(
        'kernel = "', f'kernel = "{IMAGES}/'))
    dash.config_path.value = str(spaced)
    dash.create_button.click()
    assert dash.status.value == "Created domain 1 (pv-hello)"


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


def test_progress_stops_when_until_is_true() -> None:
    """until= ends a long run at what it waits for (a prompt, a line on the console)."""
    lab = Lab()
    lab.xl_output(f"create {Lab.image('pv-hello.cfg')}")
    d = lab.domain("pv-hello")
    out = io.StringIO()
    status = run_with_progress(lab, 2_000_000_000, chunk=10_000, mode="quiet", out=out,
                               until=lambda: b"Hello" in d.console)
    assert status is RunStatus.UNTIL and not d.is_shut_down
    assert "stopped after " in out.getvalue() and "what it waited for happened" in \
        out.getvalue()


def test_hypercall_counts_cover_records_the_ring_let_go() -> None:
    """A run longer than the trace's ring: the per-domain counts are the whole run's."""
    from xenlab.views.traceviews import hypercall_counts
    from xenlab.xen.trace import Kind, Trace

    trace = Trace(limit=100)
    for i in range(1000):
        trace.emit(i, 1, 0, Kind.HYPERCALL, "xen_version", {"nr": 17}, 0)
    assert trace.dropped > 0
    assert hypercall_counts(trace) == {1: {"xen_version": 1000}}
