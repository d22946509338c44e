"""Dom0's backends against a hostile frontend: random requests written straight into the
shared rings of real, connected devices.

Each test boots a real mini-OS guest (pv-disk or pv-net-a, on copies of their
images) until its backend is Connected (xenbus state 4), pauses the guest so it
stops touching its rings, and then plays the frontend from Python: it writes
requests into the ring page the backend mapped, moves ``req_prod`` and runs the
backend's event handler, as Dom0 does when the guest notifies. A Python model
of the protocol says what each request must get back; the disk image is compared
with a shadow copy that only *valid* write requests change.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenlab.dom0.blkback import BlkbackDevice
from xenlab.dom0.netback import NetbackVif
from xenlab.public import grant_table as G
from xenlab.public.io import blkif as B
from xenlab.public.io import console as C
from xenlab.public.io import netif as N
from xenlab.public.io.ring import RING_HEADER_SIZE
from xenlab.public.io.xenbus import XenbusState as S
from xenlab.tools.libs.light.libxl import Libxl, dom0_services
from xenlab.tools.xenstore.xenstored import XenStore
from xenlab.tools.xenstore.xs_wire import (
    ERROR_OFFSET,
    REQ_CONS_OFFSET,
    REQ_OFFSET,
    REQ_PROD_OFFSET,
    RSP_CONS_OFFSET,
    RSP_PROD_OFFSET,
    XENSTORE_ERROR_RINGIDX,
    XENSTORE_RING_SIZE,
)
from xenlab.tools.xl.xl_parse import parse_config_file
from xenlab.xen.domain import Domain
from xenlab.xen.setup import RunStatus, XenHost

IMAGES = Path(__file__).resolve().parents[1] / "images"
SECTOR = 512
U32 = 0xFFFFFFFF
FUZZ = settings(derandomize=True, deadline=None, max_examples=120, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# grant references the "frontend" sets up in its own grant table (it may: the table is
# the guest's memory); the guest's own grants (ring, console, xenstore) stay as they are
RW_REFS = (400, 401, 402, 403)     # GTF_permit_access to Dom0, writable
RO_REFS = (404, 405)               # GTF_permit_access | GTF_readonly
OTHER_DOM_REF = 406                # granted to domain 9, not Dom0
EMPTY_REF = 407                    # GTF_invalid
DATA_PFN = 3000                    # guest pages behind RW_REFS + RO_REFS (guest is paused)


# ------------------------------------------------------------------ booting the guests
def _cfg(tmp: Path, name: str) -> Path:
    text = (IMAGES / name).read_text()
    text = text.replace('kernel = "', f'kernel = "{IMAGES}/')
    for line in text.splitlines():
        if "target=" in line and not line.lstrip().startswith("#"):
            target = line.split("target=")[1].split("'")[0].strip()
            shutil.copyfile(IMAGES / target, tmp / target)
            text = text.replace(f"target={target}", f"target={tmp / target}")
    path = tmp / name
    path.write_text(text)
    return path


@dataclass(repr=False)
class Env:
    host: XenHost
    xl: Libxl
    d: Domain
    dev: BlkbackDevice | NetbackVif
    image: Path | None = None
    baseline: set[int] = field(default_factory=set)   # Dom0's mappings once connected

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"Env(d{self.d.domid} {type(self.dev).__name__})"

    def _repr_pretty_(self, p: object, cycle: bool) -> None:
        p.text(repr(self))  # type: ignore[attr-defined]

    def dom0_mappings(self) -> set[int]:
        gt = self.host.domains[0].grant_table
        assert gt is not None
        return {h for h, m in gt.maptrack.items() if m.granter == self.d.domid}


def _grant(host: XenHost, d: Domain, ref: int, frame: int, flags: int, domid: int = 0) -> None:
    gt = d.grant_table
    assert gt is not None
    addr = (gt.frames[ref * 8 // 4096] << 12) + ref * 8 % 4096
    host.mem.write(addr, struct.pack("<HHI", flags, domid, frame))


def _boot(tmp: Path, cfg_name: str, kind: type) -> Env:
    host = XenHost(memory_mib=256, dom0_mem_mib=64)
    xl = Libxl(host)
    d = xl.domain_create_new(parse_config_file(str(_cfg(tmp, cfg_name))))
    dev = next(x for x in dom0_services(host).devices[d.domid] if isinstance(x, kind))
    status = host.run(max_instructions=50_000_000,
                      until=lambda: dev.state == S.XenbusStateConnected)
    assert status is RunStatus.UNTIL
    host.domain_pause(d)
    for i, ref in enumerate(RW_REFS + RO_REFS):
        mfn = d.maddr(DATA_PFN + i) >> 12
        ro = G.GTF_readonly if ref in RO_REFS else 0
        _grant(host, d, ref, mfn, G.GTF_permit_access | ro)
        host.mem.write(mfn << 12, bytes((i * 37 + j) & 0xFF for j in range(4096)))
    _grant(host, d, OTHER_DOM_REF, d.maddr(DATA_PFN) >> 12, G.GTF_permit_access, domid=9)
    _grant(host, d, EMPTY_REF, d.maddr(DATA_PFN) >> 12, 0)
    env = Env(host, xl, d, dev)
    env.baseline = env.dom0_mappings()
    assert env.baseline  # the ring(s), the console page, the xenstore page
    return env


def _kick(env: Env) -> None:
    """What Dom0 does when the frontend notifies: run the port's handler."""
    port = env.dev.port
    assert port is not None
    env.host.dom0_handlers[port](port)


def _after_each(env: Env) -> None:
    assert env.dom0_mappings() == env.baseline, "Dom0 kept a grant mapping"
    env.host.check_invariants()


# ================================================================== blkback
@dataclass(repr=False)
class Disk:
    env: Env
    shadow: bytearray
    pages: dict[int, bytearray]           # the model of the data pages behind our grants
    unknown: set[int] = field(default_factory=set)   # sectors written from the ring page

    def __repr__(self) -> str:
        return f"Disk({self.env!r})"

    def _repr_pretty_(self, p: object, cycle: bool) -> None:
        p.text(repr(self))  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Disk]:
    env = _boot(tmp_path_factory.mktemp("fuzz-blk"), "pv-disk.cfg", BlkbackDevice)
    dev = env.dev
    assert isinstance(dev, BlkbackDevice) and dev.file is not None
    dev.file.flush()
    env.image = Path(dev.image)
    pages = {ref: bytearray(env.host.mem.read(env.d.maddr(DATA_PFN + i), 4096))
             for i, ref in enumerate(RW_REFS + RO_REFS)}
    yield Disk(env, bytearray(env.image.read_bytes()), pages)
    env.xl.domain_destroy(env.d)
    env.host.check_invariants()


def _ring_ref(env: Env) -> int:
    ref = env.dev.fe_read_int("ring-ref")
    assert ref is not None
    return ref


_kind = st.sampled_from(["rw"] * 8 + ["ro", "ro", "ring", "other", "empty", "range"])


@st.composite
def _segment(draw: st.DrawFn) -> tuple[str, int, int, int]:
    first = draw(st.integers(0, 7))
    last = draw(st.integers(first, 7))
    if draw(st.integers(0, 9)) == 0:  # now and then a sector number out of range
        first, last = draw(st.integers(0, 255)), draw(st.integers(0, 255))
    return draw(_kind), draw(st.integers(0, 5)), first, last


@st.composite
def _blk_request(draw: st.DrawFn) -> dict[str, object]:
    op = draw(st.one_of(st.sampled_from([0, 0, 1, 1, 1, 3]), st.integers(0, 255)))
    nseg = draw(st.one_of(st.integers(1, 11), st.integers(1, 3), st.integers(0, 255)))
    segs = draw(st.lists(_segment(), min_size=11, max_size=11))
    sector = draw(st.one_of(st.integers(0, 2047), st.integers(0, 2047), st.integers(2000, 2100),
                            st.integers(0, 2**64 - 1), st.just(2**64 - 1)))
    return {"op": op, "nseg": nseg, "segs": segs, "sector": sector,
            "id": draw(st.integers(0, 2**64 - 1)), "handle": draw(st.integers(0, 0xFFFF))}


def _gref(env: Env, kind: str, pick: int) -> int:
    if kind == "ring":
        ref = env.dev.fe_read_int("ring-ref" if isinstance(env.dev, BlkbackDevice)
                                  else "tx-ring-ref")
        assert ref is not None
        return ref
    return {"rw": RW_REFS[pick % len(RW_REFS)], "ro": RO_REFS[pick % len(RO_REFS)],
            "other": OTHER_DOM_REF, "empty": EMPTY_REF,
            "range": (512, 4096, 0xFFFF, 0x7FFFFFFF, U32, 1 << 20)[pick]}[kind]


def _expect_blk(disk: Disk, req: dict[str, object], grefs: list[int]) -> int:
    """The protocol's answer for one request, applied to the model (shadow + pages)."""
    env = disk.env
    dev = env.dev
    assert isinstance(dev, BlkbackDevice)
    op, nseg, sector = req["op"], req["nseg"], req["sector"]
    assert isinstance(op, int) and isinstance(nseg, int) and isinstance(sector, int)
    if op == B.BlkifOp.BLKIF_OP_FLUSH_DISKCACHE:
        return B.BlkifRsp.BLKIF_RSP_OKAY
    if op not in (B.BlkifOp.BLKIF_OP_READ, B.BlkifOp.BLKIF_OP_WRITE):
        return B.BlkifRsp.BLKIF_RSP_EOPNOTSUPP
    if not 1 <= nseg <= 11:
        return B.BlkifRsp.BLKIF_RSP_ERROR
    segs = req["segs"][:nseg]  # type: ignore[index]
    if any(first > last or last > 7 for _k, _p, first, last in segs):
        return B.BlkifRsp.BLKIF_RSP_ERROR
    if sector + sum(last - first + 1 for _k, _p, first, last in segs) > dev.sectors:
        return B.BlkifRsp.BLKIF_RSP_ERROR
    write = op == B.BlkifOp.BLKIF_OP_WRITE
    ring = _ring_ref(env)
    ok = set(RW_REFS) | {ring} | (set(RO_REFS) if write else set())
    if any(g not in ok for g in grefs[:nseg]):
        return B.BlkifRsp.BLKIF_RSP_ERROR
    for (_k, _p, first, last), gref in zip(segs, grefs, strict=False):
        start, length = first * SECTOR, (last - first + 1) * SECTOR
        lo = sector * SECTOR
        if gref == ring:
            assert write  # reads never target the ring (see the strategy)
            disk.unknown.update(range(sector, sector + last - first + 1))
        elif write:
            disk.shadow[lo : lo + length] = disk.pages[gref][start : start + length]
            disk.unknown.difference_update(range(sector, sector + last - first + 1))
        else:
            disk.pages[gref][start : start + length] = disk.shadow[lo : lo + length]
        sector += last - first + 1
    return B.BlkifRsp.BLKIF_RSP_OKAY


def _check_disk(disk: Disk) -> None:
    dev = disk.env.dev
    assert isinstance(dev, BlkbackDevice) and dev.file is not None and disk.env.image
    dev.file.flush()
    data = disk.env.image.read_bytes()
    assert len(data) == len(disk.shadow)
    for i in range(0, len(data), 64 * SECTOR):  # fast path: compare big chunks first
        if data[i : i + 64 * SECTOR] == disk.shadow[i : i + 64 * SECTOR]:
            continue
        for s in range(i // SECTOR, min(len(data), i + 64 * SECTOR) // SECTOR):
            if s not in disk.unknown:
                assert data[s * SECTOR : (s + 1) * SECTOR] == \
                    disk.shadow[s * SECTOR : (s + 1) * SECTOR], f"sector {s} changed"
    host, d = disk.env.host, disk.env.d
    for i, ref in enumerate(RW_REFS + RO_REFS):
        assert host.mem.read(d.maddr(DATA_PFN + i), 4096) == bytes(disk.pages[ref]), ref


@FUZZ
@given(st.lists(_blk_request(), min_size=1, max_size=32))
def test_blkback_survives_random_requests(disk: Disk, reqs: list[dict[str, object]]) -> None:
    env = disk.env
    dev = env.dev
    assert isinstance(dev, BlkbackDevice) and dev.ring is not None
    page = dev.ring.page
    nr = dev.ring.nr_ents
    ring_ref = _ring_ref(env)
    prod = dev.ring.req_prod
    rsp_before = dev.ring.rsp_prod
    assert prod == rsp_before  # everything before was answered
    sent = []
    for k, req in enumerate(reqs):
        grefs = [_gref(env, kind, pick) for kind, pick, _f, _l in req["segs"]]  # type: ignore
        if req["op"] != B.BlkifOp.BLKIF_OP_WRITE:  # a read into the ring page would
            grefs = [RW_REFS[0] if g == ring_ref else g for g in grefs]  # rewrite requests
        raw = bytearray(B.REQUEST_SIZE)
        struct.pack_into(B.REQUEST_FORMAT, raw, 0, req["op"], req["nseg"], req["handle"],
                         req["id"], req["sector"])
        for i, (g, (_k, _p, first, last)) in enumerate(zip(grefs, req["segs"], strict=True)):
            struct.pack_into(B.SEGMENT_FORMAT, raw, 24 + 8 * i, g, first, last)
        off = RING_HEADER_SIZE + ((prod + k) & (nr - 1)) * dev.ring.entry_size
        page[off : off + B.REQUEST_SIZE] = raw
        sent.append((req, grefs))
    struct.pack_into("<I", page, 0, (prod + len(reqs)) & U32)  # req_prod
    _kick(env)

    assert dev.state == S.XenbusStateConnected
    assert dev.ring.rsp_prod == (rsp_before + len(reqs)) & U32  # every request answered
    for k, (req, grefs) in enumerate(sent):
        off = RING_HEADER_SIZE + ((rsp_before + k) & (nr - 1)) * dev.ring.entry_size
        rid, op, status = struct.unpack_from(B.RESPONSE_FORMAT, page, off)
        assert (rid, op) == (req["id"], req["op"])
        assert status in {int(s) for s in B.BlkifRsp}
        assert status == _expect_blk(disk, req, grefs), req
    _check_disk(disk)
    _after_each(env)


def _overflow(env: Env, ahead: int) -> None:
    dev = env.dev
    ring = dev.ring if isinstance(dev, BlkbackDevice) else dev.tx  # type: ignore[union-attr]
    assert ring is not None
    struct.pack_into("<I", ring.page, 0, (ring.rsp_prod + ahead) & U32)
    _kick(env)
    assert dev.state == S.XenbusStateClosing
    store = dom0_services(env.host).store
    assert "overflowed" in (store.read(f"{dev.be_path}/error") or "")
    assert dev.port is None
    ring_mapped = {m.ref for m in env.host.domains[0].grant_table.maptrack.values()
                   if m.granter == env.d.domid}
    assert not ring_mapped & {dev.fe_read_int("ring-ref"), dev.fe_read_int("tx-ring-ref")}
    dev._on_event(0)  # a late event for a closed device does nothing
    env.host.check_invariants()
    env.xl.domain_destroy(env.d)
    env.host.check_invariants()
    assert list(env.host.domains) == [0]


@pytest.mark.parametrize("ahead", [33, 1000, 0x7FFFFFFF, U32])
def test_blkback_ring_overflow_closes_the_device(tmp_path: Path, ahead: int) -> None:
    env = _boot(tmp_path, "pv-disk.cfg", BlkbackDevice)
    image = Path(env.dev.image)  # type: ignore[union-attr]
    env.dev.file.flush()  # type: ignore[union-attr]
    before = image.read_bytes()
    _overflow(env, ahead)
    assert image.read_bytes() == before


# ================================================================== netback (tx)
class Frames:
    """What reached the bridge (a small repr: hypothesis prints failing arguments)."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def __repr__(self) -> str:
        return f"<{len(self.frames)} frames>"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Env, Frames]]:
    env = _boot(tmp_path_factory.mktemp("fuzz-net"), "pv-net-a.cfg", NetbackVif)
    dev = env.dev
    assert isinstance(dev, NetbackVif)
    seen = Frames()
    real = dev.bridge.forward

    def forward(frame: bytes, ingress: object) -> None:
        seen.frames.append(frame)
        real(frame, ingress)  # type: ignore[arg-type]

    dev.bridge.forward = forward  # type: ignore[method-assign]
    yield env, seen
    env.xl.domain_destroy(env.d)
    env.host.check_invariants()


_flags = st.one_of(st.sampled_from([0, 0, N.NETTXF_more_data, N.NETTXF_extra_info,
                                    N.NETTXF_csum_blank | N.NETTXF_data_validated]),
                   st.integers(0, 0xFFFF))
_tx = st.tuples(st.sampled_from(["rw", "ro", "ring", "other", "empty", "range"]),
                st.integers(0, 5),
                st.one_of(st.integers(0, 64), st.integers(4000, 4096), st.integers(0, 0xFFFF)),
                st.one_of(st.integers(0, 20), st.integers(0, 1600), st.integers(4000, 0xFFFF)),
                _flags, st.integers(0, 0xFFFF))


@FUZZ
@given(st.lists(_tx, min_size=1, max_size=64))
def test_netback_tx_survives_random_requests(net: tuple[Env, Frames],
                                             reqs: list[tuple[str, int, int, int, int, int]]
                                             ) -> None:
    env, seen = net
    dev = env.dev
    assert isinstance(dev, NetbackVif) and dev.tx is not None
    ring = dev.tx
    page, nr = ring.page, ring.nr_ents
    ring_refs = {dev.fe_read_int("tx-ring-ref"), dev.fe_read_int("rx-ring-ref")}
    prod, rsp_before = ring.req_prod, ring.rsp_prod
    assert prod == rsp_before
    seen.frames.clear()
    expected_frames: list[bytes] = []
    expected_status: list[int] = []
    frame = bytearray()
    for k, (kind, pick, offset, size, flags, rid) in enumerate(reqs):
        gref = _gref(env, kind, pick)
        off = RING_HEADER_SIZE + ((prod + k) & (nr - 1)) * ring.entry_size
        page[off : off + N.TX_REQUEST.size] = N.TX_REQUEST.pack(gref, offset, flags, rid, size)
        # the model
        ok = (offset + size <= 4096 and not flags & N.NETTXF_extra_info
              and gref in set(RW_REFS) | set(RO_REFS) | ring_refs)
        if ok:
            if gref in ring_refs:
                data = b"?" * size  # the ring page itself: contents checked by length only
            else:
                i = (RW_REFS + RO_REFS).index(gref)
                data = env.host.mem.read(env.d.maddr(DATA_PFN + i) + offset, size)
            frame += data
            if not flags & N.NETTXF_more_data:
                if not 14 <= len(frame) <= 65535:
                    ok = False
                else:
                    expected_frames.append(bytes(frame))
                frame = bytearray()
        if not ok:
            frame = bytearray()
        expected_status.append(N.NETIF_RSP_OKAY if ok else N.NETIF_RSP_ERROR)
    struct.pack_into("<I", page, 0, (prod + len(reqs)) & U32)
    _kick(env)

    assert dev.state == S.XenbusStateConnected
    assert ring.rsp_prod == (rsp_before + len(reqs)) & U32
    for k, (_kind, _pick, _off, _size, _flags, rid) in enumerate(reqs):
        off = RING_HEADER_SIZE + ((rsp_before + k) & (nr - 1)) * ring.entry_size
        got_id, status = N.TX_RESPONSE.unpack_from(page, off)
        assert got_id == rid
        assert status == expected_status[k], (k, reqs[k])
    assert all(len(f) >= N.ETH_MIN for f in seen.frames)
    assert [len(f) for f in seen.frames] == [len(f) for f in expected_frames]
    for got, want in zip(seen.frames, expected_frames, strict=True):
        if b"?" not in want:
            assert got == want
    _after_each(env)


@pytest.mark.parametrize("ahead", [257, 0x80000000])
def test_netback_tx_ring_overflow_closes_the_vif(tmp_path: Path, ahead: int) -> None:
    env = _boot(tmp_path, "pv-net-a.cfg", NetbackVif)
    _overflow(env, ahead)


# ================================================================== xenconsoled
@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    env = _boot(tmp_path_factory.mktemp("fuzz-con"), "pv-disk.cfg", BlkbackDevice)
    yield env
    env.xl.domain_destroy(env.d)


@FUZZ
@given(st.integers(0, U32), st.one_of(st.integers(0, 4096), st.integers(0, U32)),
       st.binary(min_size=C.OUT_SIZE, max_size=C.OUT_SIZE))
def test_xenconsoled_reads_at_most_one_ring(console: Env, cons: int, ahead: int,
                                            data: bytes) -> None:
    env = console
    xc = dom0_services(env.host).xenconsoled
    con = xc.consoles[env.d.domid]
    page = con.page.page
    page[C.OUT_OFF : C.OUT_OFF + C.OUT_SIZE] = data
    prod = (cons + ahead) & U32
    struct.pack_into("<II", page, C.OUT_CONS, cons, prod)
    before = con.bytes_read
    env.host.dom0_handlers[con.port](con.port)
    got = con.bytes_read - before
    assert got == min(ahead & U32, C.OUT_SIZE)
    assert struct.unpack_from("<II", page, C.OUT_CONS) == (prod, prod)
    assert len(env.d.console) <= 1 << 20
    env.host.check_invariants()


def test_console_buffer_stays_bounded(console: Env) -> None:
    env = console
    xc = dom0_services(env.host).xenconsoled
    con = xc.consoles[env.d.domid]
    page = con.page.page
    page[C.OUT_OFF : C.OUT_OFF + C.OUT_SIZE] = b"x" * (C.OUT_SIZE - 1) + b"\n"
    for _ in range(600):  # 600 * 2 KiB > 1 MiB
        _cons, prod = struct.unpack_from("<II", page, C.OUT_CONS)
        struct.pack_into("<I", page, C.OUT_PROD, (prod + C.OUT_SIZE) & U32)
        env.host.dom0_handlers[con.port](con.port)
    assert len(env.d.console) == 1 << 20


# ================================================================== xenstored
_idx = st.one_of(st.integers(0, 2 * XENSTORE_RING_SIZE), st.integers(0, U32),
                 st.integers(U32 - 2 * XENSTORE_RING_SIZE, U32))


@FUZZ
@given(st.binary(min_size=XENSTORE_RING_SIZE, max_size=XENSTORE_RING_SIZE), _idx, _idx,
       _idx, _idx, st.integers(1, 3))
def test_xenstored_process_ring_never_raises(req: bytes, cons: int, prod: int, rcons: int,
                                             rprod: int, rounds: int) -> None:
    store = XenStore()
    store.introduce_domain(5)
    mv = memoryview(bytearray(4096))
    mv[REQ_OFFSET : REQ_OFFSET + XENSTORE_RING_SIZE] = req
    for off, val in ((REQ_CONS_OFFSET, cons), (REQ_PROD_OFFSET, prod),
                     (RSP_CONS_OFFSET, rcons), (RSP_PROD_OFFSET, rprod)):
        struct.pack_into("<I", mv, off, val)
    impossible = ((prod - cons) & U32 > XENSTORE_RING_SIZE
                  or (rprod - rcons) & U32 > XENSTORE_RING_SIZE)
    for _ in range(rounds):
        store.process_ring(5, mv)
    conn = store.connection(5)
    if impossible:
        assert conn.broken is not None
        assert struct.unpack_from("<I", mv, ERROR_OFFSET)[0] == XENSTORE_ERROR_RINGIDX
    if conn.broken is None:
        r_cons, r_prod = struct.unpack_from("<II", mv, REQ_CONS_OFFSET)
        assert r_cons == r_prod  # everything offered was consumed
    # the store itself is still fine for everyone else
    store.write("/local/domain/0/probe", "ok")
    assert store.read("/local/domain/0/probe") == "ok"
