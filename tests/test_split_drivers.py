"""Split drivers end to end: real mini-OS guests (blkfront, netfront) against Dom0's
Python backends (blkback, netback, xenbr0), seen through the trace, the disk image,
the pcap file and Dom0's own tables.

Every test works on a copy of ``images/pv-disk.img`` (the guest writes sector 100)
and on temporary configs that point at the copy and at the absolute kernel path.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from xenlab.dom0.blkback import BlkbackDevice
from xenlab.dom0.netback import NetbackVif
from xenlab.lab import Lab
from xenlab.tools.libs.light.libxl import Libxl, dom0_services
from xenlab.tools.xl.xl_parse import parse_config_file
from xenlab.xen.event_channel import ECS
from xenlab.xen.setup import RunStatus, XenHost
from xenlab.xen.trace import Kind, TraceRecord

IMAGES = Path(__file__).resolve().parents[1] / "images"
SECTOR = 512
TEST_SECTOR = 100
BUDGET = 50_000_000


def _temp_cfg(tmp_path: Path, name: str, *, access: str | None = None,
              on_crash: str | None = None) -> Path:
    """A copy of images/<name> with an absolute kernel path and its disk image copied."""
    text = (IMAGES / name).read_text()
    text = re.sub(r'^kernel = "([^"]+)"', lambda m: f'kernel = "{IMAGES / m.group(1)}"', text,
                  flags=re.M)

    def disk(m: re.Match[str]) -> str:
        target = m.group(1)
        copy = tmp_path / Path(target).name
        shutil.copyfile(IMAGES / target, copy)
        return f"target={copy}"

    text = re.sub(r"target=([^ ,'\]]+)", disk, text)
    if access is not None:
        text = re.sub(r"access=\w+", f"access={access}", text)
    if on_crash is not None:
        text = re.sub(r'^on_crash = "\w+"', f'on_crash = "{on_crash}"', text, flags=re.M)
    path = tmp_path / name
    path.write_text(text)
    return path


def _host() -> tuple[XenHost, Libxl]:
    host = XenHost(memory_mib=256, dom0_mem_mib=64)
    return host, Libxl(host)


def _create(xl: Libxl, cfg: Path):
    return xl.domain_create_new(parse_config_file(str(cfg)))


def _sectors(data: bytes) -> list[bytes]:
    return [data[i : i + SECTOR] for i in range(0, len(data), SECTOR)]


def _abs(rec: TraceRecord) -> str:
    """A xenstore record's path, absolute (guests write relative to their home)."""
    path = rec.args["path"]
    return path if path.startswith("/") else f"/local/domain/{rec.dom}/{path}"


def _state_writes(host: XenHost, path: str) -> list[tuple[int, str]]:
    """(seq, value) of every XS_WRITE of ``path`` that succeeded."""
    return [(r.seq, r.args["value"]) for r in host.trace.select(kind=Kind.XENSTORE,
                                                                name="XS_WRITE")
            if r.ret == "OK" and _abs(r) == path]


def _first(writes: list[tuple[int, str]], value: str) -> int:
    return next(seq for seq, v in writes if v == value)


def _io(host: XenHost, name: str) -> list[TraceRecord]:
    return host.trace.select(kind=Kind.IO, name=name)


def _flag(host: XenHost, pred: Callable[[TraceRecord], bool]) -> Callable[[], bool]:
    """An ``until`` for host.run that turns true once a matching trace record appears."""
    seen: list[TraceRecord] = []
    host.trace.listeners.append(lambda r: seen.append(r) if not seen and pred(r) else None)
    return lambda: bool(seen)


# ------------------------------------------------------------------ block device
def test_pv_disk_writes_sector_100_only_with_the_real_handshake(tmp_path: Path) -> None:
    cfg = _temp_cfg(tmp_path, "pv-disk.cfg")
    image = tmp_path / "pv-disk.img"
    original = image.read_bytes()
    host, xl = _host()
    d = _create(xl, cfg)
    dev = next(x for x in dom0_services(host).devices[d.domid] if isinstance(x, BlkbackDevice))
    assert host.run(max_instructions=BUDGET) is not RunStatus.BUDGET
    console = d.console.decode("latin-1")
    assert "sector 100 verified" in console
    assert "done, powering off" in console
    assert d.is_shut_down and not d.is_crashed

    # the image: sector 100 holds the guest's pattern, every other sector is untouched
    after = image.read_bytes()
    assert len(after) == len(original)
    new, old = _sectors(after), _sectors(original)
    assert new[TEST_SECTOR] != old[TEST_SECTOR]
    assert new[TEST_SECTOR].startswith(b"xenlab pv-disk sector 100")
    assert b"pattern 00\n" in new[TEST_SECTOR]  # make_pattern() in pv-disk.c
    changed = [i for i, (a, b) in enumerate(zip(new, old, strict=True)) if a != b]
    assert changed == [TEST_SECTOR]

    # the xenbus handshake, in the real order
    fe = f"/local/domain/{d.domid}/device/vbd/51712/state"
    be = f"/local/domain/0/backend/vbd/{d.domid}/51712/state"
    fe_w, be_w = _state_writes(host, fe), _state_writes(host, be)
    assert [v for _, v in fe_w][:3] == ["1", "3", "4"]
    assert [v for _, v in be_w][:3] == ["1", "2", "4"]
    assert _first(be_w, "2") < _first(fe_w, "3") < _first(be_w, "4") < _first(fe_w, "4")
    assert _first(fe_w, "1") < _first(fe_w, "3")
    # the frontend's own writes come from the guest, the backend's from Dom0
    fe_recs = [r for r in host.trace.select(kind=Kind.XENSTORE, name="XS_WRITE")
               if r.ret == "OK" and _abs(r) == fe and r.args["value"] in ("3", "4")]
    assert {r.dom for r in fe_recs} == {d.domid}

    # the data path of the write: request -> map grant -> disk write -> response
    recs = host.trace.records
    req = next(r for r in _io(host, "blkback.blkif_request") if r.args["op"] == "BLKIF_OP_WRITE")
    assert req.args["sector"] == TEST_SECTOR
    after_req = [r for r in recs if r.seq > req.seq]
    mapped = next(r for r in after_req if r.kind is Kind.GRANT and r.name == "map_grant_ref")
    written = next(r for r in after_req if r.name == "blkback.disk_write")
    answered = next(r for r in after_req if r.name == "blkback.blkif_response")
    assert req.seq < mapped.seq < written.seq < answered.seq
    assert mapped.args["granter"] == d.domid and mapped.args["readonly"] is True
    assert mapped.ret == "GNTST_okay" and mapped.dom == 0
    assert written.args["sector"] == TEST_SECTOR and written.args["bytes"] == SECTOR
    assert answered.args["id"] == req.args["id"] and answered.ret == "BLKIF_RSP_OKAY"
    unmapped = next(r for r in after_req if r.name == "unmap_grant_ref")
    assert written.seq < unmapped.seq < answered.seq

    # event suppression counters agree with the trace
    st = dev.stats
    assert st.requests == len(_io(host, "blkback.blkif_request")) >= 4
    assert st.notifications_sent >= 1
    assert st.notifications_saved == len(_io(host, "blkback.notify_suppressed"))
    assert st.errors == 0 and st.by_op["BLKIF_OP_WRITE"] >= 1
    assert dev.closed or dev.state == 6
    host.check_invariants()


def test_read_only_disk_refuses_the_write(tmp_path: Path) -> None:
    cfg = _temp_cfg(tmp_path, "pv-disk.cfg", access="ro")
    image = tmp_path / "pv-disk.img"
    original = image.read_bytes()
    host, xl = _host()
    d = _create(xl, cfg)
    assert dom0_services(host).store.read(
        f"/local/domain/0/backend/vbd/{d.domid}/51712/mode") == "r"
    host.run(max_instructions=BUDGET)
    assert "sector 100 verified" not in d.console.decode("latin-1")
    refused = _io(host, "blkback.refused")
    assert refused and refused[0].args["why"] == "write to a read-only disk"
    writes = [r for r in _io(host, "blkback.blkif_response") if r.args["op"] == "BLKIF_OP_WRITE"]
    assert writes and all(r.ret == "BLKIF_RSP_ERROR" for r in writes)
    assert not _io(host, "blkback.disk_write")
    assert image.read_bytes() == original
    host.check_invariants()


def test_guest_crashing_mid_io_leaves_dom0_and_others_healthy(tmp_path: Path) -> None:
    cfg = _temp_cfg(tmp_path, "pv-disk.cfg", on_crash="destroy")
    image = tmp_path / "pv-disk.img"
    original = _sectors(image.read_bytes())
    host, xl = _host()
    d = _create(xl, cfg)
    domid = d.domid
    # the bystander is created first: frames freed by the crashed domain are not reused
    # (see test_isolation.py::test_freed_frames_are_scrubbed_before_reuse)
    h = xl.domain_create_new(parse_config_file(str(IMAGES / "pv-hello.cfg")))
    first_request = _flag(host, lambda r: r.name == "blkback.blkif_request")
    assert host.run(max_instructions=BUDGET, until=first_request) is RunStatus.UNTIL
    assert not d.is_shut_down
    host.domain_crash(d, d.vcpus[0], "test: crashed mid I/O")
    # on_crash = "destroy": the toolstack cleaned up at once
    assert domid not in host.domains
    assert any("needs to be cleaned up" in line for line in xl.xl_log)
    host.check_invariants()
    assert host.run(max_instructions=BUDGET) is not RunStatus.BUDGET
    assert h.is_shut_down and not h.is_crashed and h.shutdown_code == 0
    assert b"Shutting down (SHUTDOWN_poweroff)" in h.console
    assert domid not in host.domains
    # Dom0 holds nothing of the dead domain
    dom0 = host.domains[0]
    assert not [m for m in dom0.grant_table.maptrack.values() if m.granter == domid]
    assert not [p for p, c in dom0.evtchn.bound().items()
                if c.remote_domid == domid and c.state in (ECS.INTERDOMAIN, ECS.UNBOUND)]
    services = dom0_services(host)
    assert domid not in services.devices
    assert not services.store.exists(f"/local/domain/{domid}")
    assert not services.store.exists(f"/local/domain/0/backend/vbd/{domid}")
    # the disk: at most sector 100 changed
    now = _sectors(image.read_bytes())
    assert [i for i, (a, b) in enumerate(zip(now, original, strict=True)) if a != b] in (
        [], [TEST_SECTOR])
    host.check_invariants()


# ------------------------------------------------------------------ network
def _pcap_records(data: bytes) -> list[bytes]:
    magic, major, minor, _tz, _sig, snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    assert snaplen >= 1514
    frames, off = [], 24
    while off < len(data):
        _sec, usec, incl, orig = struct.unpack_from("<IIII", data, off)
        assert incl == orig and usec < 1_000_000
        frames.append(data[off + 16 : off + 16 + incl])
        off += 16 + incl
    assert off == len(data)
    return frames


def test_pv_net_two_guests_ping_and_udp_echo_with_pcap(tmp_path: Path) -> None:
    host, xl = _host()
    pcap = tmp_path / "xenbr0.pcap"
    bridge = dom0_services(host).bridge("xenbr0")
    bridge.capture(str(pcap))
    try:
        a = _create(xl, _temp_cfg(tmp_path, "pv-net-a.cfg"))
        b = _create(xl, _temp_cfg(tmp_path, "pv-net-b.cfg"))
        assert host.run(max_instructions=BUDGET) is not RunStatus.BUDGET
    finally:
        bridge.stop_capture()
    for d, me, peer in ((a, "10.0.0.1", "10.0.0.2"), (b, "10.0.0.2", "10.0.0.1")):
        text = d.console.decode("latin-1")
        assert f"rx ICMP echo reply from {peer}" in text
        assert f"rx UDP {peer}.7 > {me}." in text
        assert f'"hello from {me}"' in text
        assert "ping and UDP echo done both ways" in text
        assert d.is_shut_down and not d.is_crashed
    forwards = _io(host, "bridge.forward")
    assert forwards and bridge.frames == len(forwards)
    assert {r.args["in"] for r in forwards} == {f"vif{a.domid}.0", f"vif{b.domid}.0"}
    frames = _pcap_records(pcap.read_bytes())
    assert len(frames) == len(forwards)
    types = {struct.unpack_from(">H", f, 12)[0] for f in frames}
    assert types == {0x0806, 0x0800}
    ip_protocols = {f[14 + 9] for f in frames if struct.unpack_from(">H", f, 12)[0] == 0x0800}
    assert ip_protocols == {1, 17}
    vifs = [x for dom in (a, b) for x in dom0_services(host).devices[dom.domid]
            if isinstance(x, NetbackVif)]
    assert sum(v.stats.tx_packets for v in vifs) == len(forwards)
    host.check_invariants()

    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed")
    out = subprocess.run([tshark, "-r", str(pcap), "-T", "fields", "-e", "frame.protocols"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    lines = out.split()
    assert len(lines) == len(frames)
    assert any("arp" in x for x in lines)
    assert any("icmp" in x for x in lines)
    assert any("udp" in x for x in lines)


# ------------------------------------------------------------------ xl destroy
def test_xl_destroy_of_a_connected_frontend_releases_everything(tmp_path: Path) -> None:
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    host = lab.host
    cfg = _temp_cfg(tmp_path, "pv-net-a.cfg")
    assert "Created domain" in lab.xl_output(f"create {cfg}")
    d = lab.domain("pv-net-a")
    domid = d.domid
    store = dom0_services(host).store
    be = f"/local/domain/0/backend/vif/{domid}/0"
    status = host.run(max_instructions=BUDGET, until=lambda: store.read(f"{be}/state") == "4")
    assert status is RunStatus.UNTIL
    dom0 = host.domains[0]
    assert [m for m in dom0.grant_table.maptrack.values() if m.granter == domid]
    mark = len(host.trace.records)
    assert lab.xl_output("destroy pv-net-a") == ""
    after = [(r.seq, r.args["value"]) for r in host.trace.records[mark:]
             if r.kind is Kind.XENSTORE and r.name == "XS_WRITE" and r.args["path"] ==
             f"{be}/state"]
    assert [v for _, v in after] == ["5", "6"]
    assert domid not in host.domains
    assert not [m for m in dom0.grant_table.maptrack.values() if m.granter == domid]
    assert not [p for p, c in dom0.evtchn.bound().items()
                if c.remote_domid == domid and c.state in (ECS.INTERDOMAIN, ECS.UNBOUND)]
    assert not [p for p in host.dom0_handlers if dom0.evtchn.lookup(p) is None]
    host.check_invariants()
    assert not store.exists(f"/local/domain/{domid}")
    assert not store.exists(f"/local/domain/0/backend/vif/{domid}")
    assert not store.exists(be)
    assert domid not in dom0_services(host).devices
    assert not dom0_services(host).bridge("xenbr0").ports
    # the host goes on
    lab.run(max_instructions=BUDGET)
    host.check_invariants()


def test_console_input_reaches_the_ring() -> None:
    """What `xl console` does with keystrokes: xenconsoled fills in[] and notifies."""
    from xenlab.lab import Lab
    from xenlab.public.io import console as C
    from xenlab.xen.event_channel import evtchn_port_is_pending

    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {Lab.image('pv-hello.cfg')}")
    lab.run()
    d = lab.domain("pv-hello")
    assert lab.console_input("pv-hello", "ls\n") == 3
    page = lab.host.mem.read(d.console_mfn << 12, 4096)
    cons, prod = struct.unpack_from("<II", page, C.IN_CONS)
    assert (cons, prod) == (0, 3) and page[C.IN_OFF : C.IN_OFF + 3] == b"ls\n"
    assert evtchn_port_is_pending(lab.host, d, d.console_port)
