"""Hypercall fuzzing: random hypercalls must never hurt Xen, Dom0 or another guest.

Three layers, all deterministic (``derandomize=True``):

* **Register level.** A PV "fuzzer" domain built by elfgen (its code is ``jmp .``)
  gets random hypercall numbers and argument registers (RAX, RDI, RSI, RDX, R10,
  R8), and ``do_hypercall`` is called directly, as the CPU layer's ``syscall``
  hook would. Outside ``XenHost.run()`` nothing is "running", so the harness
  (``_hypercall``) recreates what ``_run_vcpu`` sets up around a slice: the vCPU
  off the run queue and RUNSTATE_running, ``host._current`` naming it, and,
  afterwards, what the end of a slice does (load ``pending_regs`` from an iret,
  process deaths, put the vCPU back on the run queue or mark it blocked). Pointer
  arguments are drawn from the fuzzer's own pages (its data page is filled with
  random *interesting* quadwords: its own and the partner's MFNs, domids, ports,
  grant refs), unmapped, Xen-area, non-canonical and user-half addresses. A
  "partner" domain next to it offers grants and an unbound port to the fuzzer, so
  that mapping, binding and destroying reach the interesting paths. After every
  call: the return value is one the handler could return and
  ``host.check_invariants()`` holds. At the end of each example the host runs for
  a while (timers fire, upcalls are delivered to whatever handler the fuzzer
  registered), then the fuzzer is destroyed and must leave nothing behind.
* **Guest level.** Random hypercalls from real machine code (elfgen ``Asm``,
  through the hypercall page) next to ``images/pv-hello`` created by the
  toolstack: pv-hello's console must be byte-identical to a run without the
  fuzzer, and the host keeps running.
* **Destroy after fuzz.** Through the toolstack too: Dom0's xenstore keeps no node
  or watch of the dead domain (``_check_destroyed_in_dom0``).
"""

from __future__ import annotations

import hashlib
import struct

from elfgen import (
    CODE_VA,
    DATA_VA,
    HYPERCALL_PAGE_VA,
    RESULTS_VA,
    VIRT_BASE,
    Asm,
    create,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenlab.lab import Lab
from xenlab.public import grant_table as G
from xenlab.public.errno import Errno
from xenlab.public.memory import MEMOP_CMD_MASK, MemoryOp
from xenlab.public.vcpu import Runstate, VcpuOp
from xenlab.public.version import XenVer
from xenlab.public.xen import Hypercall
from xenlab.tools.libs.light.libxl import dom0_services
from xenlab.xen import traps
from xenlab.xen.event_channel import ECS, evtchn_alloc_unbound, evtchn_bind_virq
from xenlab.xen.hypercall import do_hypercall, pv_hypercall_table
from xenlab.xen.page_alloc import PAGE_SHIFT, PAGE_SIZE
from xenlab.xen.setup import XenHost

H = Hypercall
MASK64 = (1 << 64) - 1
HC_REGS = ("rax", "rdi", "rsi", "rdx", "r10", "r8")
ERRNOS = {int(e) for e in Errno}
DOMID_SELF, DOMID_IO, DOMID_XEN, DOMID_INVALID = 0x7FF0, 0x7FF1, 0x7FF2, 0x7FF4
EXTRA_VA = RESULTS_VA + PAGE_SIZE       # the bss page after the results page


def fuzz_settings(max_examples: int) -> settings:
    return settings(derandomize=True, deadline=None, database=None, max_examples=max_examples,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _signed(x: int) -> int:
    return x - (1 << 64) if x >> 63 else x


# ------------------------------------------------------------------ the world
class World:
    """A small host with a partner domain (grants, an unbound port) and the fuzzer."""

    def __init__(self, overwrites: list[tuple[int, int]]) -> None:
        self.host = host = XenHost(memory_mib=96, dom0_mem_mib=16, nr_cpus=1)
        self.partner = p = create(host, Asm().spin().bytes(), name="partner", memory_mib=4,
                                  unpause=False)
        self.fuzzer = f = create(host, Asm().spin().bytes(), name="fuzzer", memory_mib=4,
                                 bss=PAGE_SIZE)
        # The partner grants the fuzzer one frame read-write (ref 1), one read-only
        # (ref 2), one to somebody else (ref 3), and offers it an unbound port.
        assert host.gnttab_grow(p, 1)
        frames = [p.maddr(8) >> PAGE_SHIFT, p.maddr(9) >> PAGE_SHIFT, p.maddr(10) >> PAGE_SHIFT]
        self.granted = set(frames[:2])
        table = p.grant_table.frames[0] << PAGE_SHIFT
        host.mem.write(table + 8, struct.pack("<HHI", G.GTF_permit_access, f.domid, frames[0]))
        host.mem.write(table + 16, struct.pack("<HHI", G.GTF_permit_access | G.GTF_readonly,
                                               f.domid, frames[1]))
        host.mem.write(table + 24, struct.pack("<HHI", G.GTF_permit_access, 0, frames[2]))
        self.partner_port = evtchn_alloc_unbound(host, p, DOMID_SELF, f.domid)
        evtchn_bind_virq(host, p, 0, 0)
        page = bytearray(_template(self))
        for index, value in overwrites:          # random damage on top of valid structs
            page[8 * index : 8 * index + 8] = struct.pack("<Q", value & MASK64)
        host.mem.write(f.maddr(DATA_PFN), bytes(page))
        # Let the fuzzer boot into its ``jmp .`` loop: its registers (RSP: its boot
        # stack) are then those of a running kernel that issues the hypercalls.
        host.run(max_instructions=5_000)
        assert f.vcpus[0].cpu.reg("rip") == CODE_VA, hex(f.vcpus[0].cpu.reg("rip"))
        self.partner_hash = self.hash_partner()

    def hash_partner(self) -> str:
        h = hashlib.sha256()
        for ext in sorted(self.partner.extents, key=lambda e: e.mfn):
            for mfn in range(ext.mfn, ext.end):
                if mfn not in self.granted:  # the fuzzer may legitimately write through ref 1
                    h.update(self.host.mem.read(mfn << PAGE_SHIFT, PAGE_SIZE))
        return h.hexdigest()


DATA_PFN = (DATA_VA - VIRT_BASE) >> PAGE_SHIFT
#: Where _template puts each argument struct in the fuzzer's data page.
T_ALLOC, T_BIND, T_VIRQ, T_PORT, T_MAP_RW, T_MAP_RO, T_UNMAP, T_COPY = (
    0x000, 0x010, 0x020, 0x030, 0x040, 0x080, 0x0C0, 0x100)
T_DECREASE, T_INCREASE, T_POLL, T_SETUP, T_CALLBACK, T_QUERY, T_SHUTDOWN, T_EXTENTS = (
    0x140, 0x180, 0x1C0, 0x200, 0x240, 0x280, 0x2C0, 0x400)
TEMPLATE_OFFSETS = (T_ALLOC, T_BIND, T_VIRQ, T_PORT, T_MAP_RW, T_MAP_RO, T_UNMAP, T_COPY,
                    T_DECREASE, T_INCREASE, T_POLL, T_SETUP, T_CALLBACK, T_QUERY, T_SHUTDOWN,
                    T_EXTENTS)


def _template(w: World) -> bytes:
    """Valid argument structs for the common operations, aimed at the partner's grants and
    port, and an extent list of the fuzzer's own frames (page tables included)."""
    from xenlab.public import event_channel as E

    f, p = w.fuzzer, w.partner
    page = bytearray(PAGE_SIZE)

    def put(off: int, blob: bytes) -> None:
        page[off : off + len(blob)] = blob

    put(T_ALLOC, bytes(E.EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=p.domid)))
    put(T_BIND, bytes(E.EvtchnBindInterdomain(remote_dom=p.domid, remote_port=w.partner_port)))
    put(T_VIRQ, bytes(E.EvtchnBindVirq(virq=0, vcpu=0)))
    put(T_PORT, bytes(E.EvtchnPort(port=1)) + struct.pack("<I", 2))
    put(T_MAP_RW, bytes(G.GnttabMapGrantRef(host_addr=EXTRA_VA, flags=G.GNTMAP_host_map, ref=1,
                                            dom=p.domid)))
    put(T_MAP_RO, bytes(G.GnttabMapGrantRef(host_addr=EXTRA_VA,
                                            flags=G.GNTMAP_host_map | G.GNTMAP_readonly, ref=2,
                                            dom=p.domid)))
    put(T_UNMAP, bytes(G.GnttabUnmapGrantRef(host_addr=EXTRA_VA, handle=0)))
    copy = G.GnttabCopy(len=64, flags=G.GNTCOPY_source_gref)
    copy.source.u, copy.source.domid = 1, p.domid
    copy.dest.u, copy.dest.domid = f.maddr(DATA_PFN + 1) >> PAGE_SHIFT, DOMID_SELF
    put(T_COPY, bytes(copy))
    own = [f.maddr(DATA_PFN + 1) >> PAGE_SHIFT, *sorted(f.pt_mfns), f.maddr(0) >> PAGE_SHIFT,
           f.shared_info_mfn, p.maddr(8) >> PAGE_SHIFT, f.maddr(DATA_PFN) >> PAGE_SHIFT]
    put(T_EXTENTS, struct.pack(f"<{len(own)}Q", *own))
    put(T_DECREASE, struct.pack("<QQIIH", DATA_VA + T_EXTENTS, 1, 0, 0, DOMID_SELF))
    put(T_INCREASE, struct.pack("<QQIIH", DATA_VA + T_EXTENTS + 0x200, 2, 0, 0, DOMID_SELF))
    put(T_POLL, struct.pack("<QI4xQ", DATA_VA + T_PORT, 2, 0))
    put(T_SETUP, struct.pack("<HxxIh6xQ", DOMID_SELF, 2, 0, DATA_VA + 0x600))
    put(T_CALLBACK, struct.pack("<HH4xQ", 0, 0, CODE_VA))
    put(T_QUERY, struct.pack("<H", p.domid))
    put(T_SHUTDOWN, struct.pack("<I", 0))
    return bytes(page)


def _fuzzer_pts(d) -> list[int]:
    """Virtual addresses of the fuzzer's page-table pages (mapped read-only)."""
    p2m = list(d.p2m)
    return [VIRT_BASE + (p2m.index(mfn) << PAGE_SHIFT) for mfn in sorted(d.pt_mfns)
            if mfn in p2m]


# Values fixed before any domain exists; domain-specific ones are added per World.
SMALL = [*range(17), 31, 32, 63, 64, 127, 128, 255, 256, 511, 512,
         513, 1023, 4095, 4096, 4097]
BIG = [0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, (1 << 20),
       (1 << 20) + 1, 2**63 - 1, 2**63, MASK64, MASK64 - 1]
POINTERS = [
    CODE_VA, HYPERCALL_PAGE_VA, DATA_VA, DATA_VA + 8, DATA_VA + 0x100, DATA_VA + 0x800,
    DATA_VA + 0xFF8, DATA_VA + 0xFFC, RESULTS_VA, RESULTS_VA + 0xFF8, EXTRA_VA, EXTRA_VA + 0xFF8,
    VIRT_BASE + (64 << 20),                          # unmapped, inside the kernel half
    0x1000, 0x400000, 0x7FFF_FFFF_E000,               # user half (nothing mapped there)
    0xFFFF_8000_0000_0000, traps.XEN_STUB_VA, traps.XEN_STACK_VA, traps.GDT_VA,  # Xen area
    0x0000_8000_0000_0000, 0xFFFF_0000_0000_0000, 0x8000_0000_0000_0000,  # non-canonical
    0xFFFF_FFFF_FFFF_F000, 0xFFFF_FFFF_FFFF_FFF8,
]
DOMIDS = [0, DOMID_SELF, DOMID_IO, DOMID_XEN, DOMID_INVALID, 0x7FFF, 0x7FF5, 0xFFFF]


def _interesting(w: World) -> list[int]:
    f, p = w.fuzzer, w.partner
    mfns = [f.maddr(0) >> PAGE_SHIFT, f.maddr(2) >> PAGE_SHIFT, p.maddr(8) >> PAGE_SHIFT,
            w.host.xen_frames["stub"], f.shared_info_mfn]
    mfns += sorted(f.pt_mfns)[:2]
    pts = _fuzzer_pts(f)
    return (SMALL + BIG + POINTERS + pts + DOMIDS + mfns
            + [f.domid, p.domid, w.partner_port, f.domid + 1]
            + [DATA_VA + off for off in TEMPLATE_OFFSETS])


def _data_qwords(draw_values: list[int]) -> bytes:
    return b"".join(struct.pack("<Q", v & MASK64) for v in draw_values)


#: Quadwords for the fuzzer's data page: many hypercall structs start with a domid
#: pair / port / ref packed in the first 8 bytes, so combinations come packed too.
PACKED = [
    struct.unpack("<Q", struct.pack("<HHI", a, b, c))[0]
    for a, b, c in [(DOMID_SELF, 2, 0), (DOMID_SELF, 1, 0), (1, 2, 1), (2, 1, 1),
                    (DOMID_SELF, DOMID_SELF, 0), (0, 2, 1), (1, 0, 0), (2, 1, 2),
                    (G.GTF_permit_access, 1, 0), (1, 0x7FF0, 3)]
] + [1 | (2 << 32), 2 | (1 << 32), 0x1_0000_0001, (1 << 48) | 1]
DATA_VALUES = SMALL + BIG + POINTERS + DOMIDS + PACKED + [
    VIRT_BASE + 0x3000 + 0x800, G.GNTMAP_host_map | (G.GNTMAP_host_map << 32),
    (EXTRA_VA), (EXTRA_VA & 0xFFFFFFFF)]
data_pages = st.lists(st.sampled_from(DATA_VALUES), min_size=0, max_size=512).map(
    _data_qwords)
#: (qword index, value) written over the fuzzer's template data page.
overwrites = st.lists(st.tuples(st.integers(0, 511), st.sampled_from(DATA_VALUES)),
                      max_size=24)

NRS = st.one_of(
    st.sampled_from(sorted(int(n) for n in pv_hypercall_table)),
    st.integers(0, 127),
    st.sampled_from([128, 1000, (1 << 32) + H.console_io, 2**63, MASK64]),
)


# ------------------------------------------------------------------ the harness
def _hypercall(host: XenHost, v, regs: list[int]) -> int:
    """Run one hypercall as if ``v`` executed ``syscall`` in the middle of a slice."""
    cpu = v.cpu
    for name, value in zip(HC_REGS, regs, strict=True):
        cpu.set_reg(name, value & MASK64)
    pc = host.pcpus[0]
    host.sched.sleep(v)                 # running: pick_next took it off the run queue
    v.set_runstate(Runstate.RUNSTATE_running, pc.time)
    host._current = (pc, v)
    pc.current = v
    host._slice_end = pc.time + 10_000_000
    try:
        do_hypercall(host, v, cpu, "syscall")
        ret = _signed(cpu.reg("rax"))
        host.check_invariants()         # also in the middle of the "slice"
    finally:
        host._current = None
        pc.current = None
    if v.pending_regs is not None and v.cpu is not None:   # the end of _run_vcpu
        for name, value in v.pending_regs.items():
            v.cpu.set_reg(name, value)
        v.pending_regs = None
    if host._pending_deaths:
        host._process_deaths()
    if v.runnable and not v.blocked:
        v.set_runstate(Runstate.RUNSTATE_runnable, pc.time)
        host.sched.runq_insert(v)
    elif v.blocked:
        v.set_runstate(Runstate.RUNSTATE_blocked, pc.time)
    return ret


def _legitimate(w: World, regs: list[int], ret: int) -> bool:
    """Could the handler for this call return ``ret``?"""
    if ret < 0:
        return -ret in ERRNOS
    nr, a1, a2 = regs[0] & MASK64, regs[1] & MASK64, regs[2] & MASK64
    f = w.fuzzer
    if ret == 0:
        return True
    if nr == H.iret:
        return True                     # RAX comes back from the guest's iret frame
    if nr == H.memory_op:
        op = a1 & MEMOP_CMD_MASK
        if op in (MemoryOp.XENMEM_increase_reservation, MemoryOp.XENMEM_decrease_reservation,
                  MemoryOp.XENMEM_populate_physmap):
            return 0 < ret <= 1 << 20
        if op == MemoryOp.XENMEM_maximum_ram_page:
            return ret == w.host.mem.total_pages - 1
        if op == MemoryOp.XENMEM_current_reservation:
            return ret == f.tot_pages
        if op == MemoryOp.XENMEM_maximum_reservation:
            return ret == f.max_pages
        if op == MemoryOp.XENMEM_maximum_gpfn:
            return ret < len(f.p2m)
        return False
    if nr == H.xen_version:
        cmd = a1 & 0xFFFFFFFF
        return (cmd, ret) in ((XenVer.XENVER_version, 0x40011), (XenVer.XENVER_pagesize, 4096))
    if nr == H.vcpu_op:
        return a1 & 0xFFFFFFFF == VcpuOp.VCPUOP_is_up and ret == 1 and a2 & 0xFFFFFFFF == 0
    return False


#: >= 0: an index into the World's interesting values; < 0: a raw 64-bit value (-1 - x).
reg_values = st.one_of(st.integers(0, 255), st.integers(0, MASK64).map(lambda x: -1 - x))
#: The first argument is usually a sub-command: mostly small, the first 16 of the values.
cmd_values = st.one_of(st.integers(0, 15), st.integers(0, 15), st.integers(0, 15), reg_values)
#: Pointer-ish arguments: mostly the template's structs (the last 16 values).
_template_ptr = st.integers(-16, -1).map(lambda i: 10_000 + i)
ptr_values = st.one_of(_template_ptr, _template_ptr, reg_values)
calls = st.lists(st.tuples(NRS, st.tuples(cmd_values, ptr_values, reg_values, reg_values,
                                          reg_values).map(list)),
                 min_size=1, max_size=30)


def _resolve(values: list[int], picks: list[int]) -> list[int]:
    out = []
    for p in picks:
        if p >= 10_000 - 16 and p < 10_000:
            out.append(values[p - 10_000])      # one of the template pointers
        elif p >= 0:
            out.append(values[p % len(values)])
        else:
            out.append(-1 - p)
    return out


@fuzz_settings(120)
@given(damage=overwrites, seq=calls, partner_first=st.booleans())
def test_register_level_fuzz(damage: list, seq: list, partner_first: bool) -> None:
    w = World(damage)
    host, f = w.host, w.fuzzer
    v = f.vcpus[0]
    values = _interesting(w)
    host.check_invariants()
    for nr, picks in seq:
        regs = [nr, *_resolve(values, picks)]
        ret = _hypercall(host, v, regs)
        assert _legitimate(w, regs, ret), (
            f"hypercall {nr} args {[hex(r) for r in regs[1:]]} returned {ret}")
        if f.is_shut_down or f.is_dying or f.domid not in host.domains:
            break                       # SCHEDOP_shutdown or a crash: a legitimate end
        if not v.online:
            break                       # VCPUOP_down on itself: nobody runs it any more
        if v.blocked:
            host.vcpu_wake(v, "fuzz harness: an event arrives")
        assert v in host.sched.runq
    assert w.hash_partner() == w.partner_hash, "the fuzzer changed the partner's memory"
    host.run(max_instructions=300_000)  # timers, upcalls into whatever was registered
    host.check_invariants()
    assert w.hash_partner() == w.partner_hash
    fid = f.domid
    if partner_first:                   # the granter dies while the fuzzer may map its grants
        pid = w.partner.domid
        host.domain_destroy(w.partner)
        host.check_invariants()
        host.check_destroyed(pid)
        assert not f.foreign_mfns
        host.domain_destroy(f)
        host.check_invariants()
        host.check_destroyed(fid)
        return
    host.domain_destroy(f)
    host.check_invariants()
    host.check_destroyed(fid)
    p = w.partner
    assert p.grant_table.pins == {} and p.domid in host.domains
    ch = p.evtchn.lookup(w.partner_port)
    assert ch is not None and ch.state is ECS.UNBOUND and ch.remote_domid == fid
    assert w.hash_partner() == w.partner_hash


# ------------------------------------------------------------------ guest level
def _fuzz_code(seq: list[tuple[int, list[int]]], values: list[int]) -> bytes:
    a = Asm()
    for nr, picks in seq:
        args = _resolve(values, picks)
        if nr > 127:                                    # beyond the page: raw syscall
            for reg, value in zip(("rdi", "rsi", "rdx", "r10", "r8"), args, strict=True):
                a.mov(reg, value)
            a.mov("rax", nr)
            a.raw("0f05")                               # syscall
        else:
            a.call(nr, *args)
    return a.shutdown(0).bytes()        # a spinning fuzzer would only burn time slices


_baseline: dict[str, bytes] = {}


def _hello_lab() -> tuple[Lab, object]:
    lab = Lab(memory_mib=192, dom0_mem_mib=32)
    out = lab.xl_output("create " + Lab.image("pv-hello.cfg"))
    assert "Created domain" in out, out
    return lab, lab.domain("pv-hello")


def _hello_baseline() -> bytes:
    if "hello" not in _baseline:
        lab, d = _hello_lab()
        lab.host.run(max_instructions=2_000_000, until=lambda: d.is_shut_down)
        assert d.is_shut_down
        _baseline["hello"] = bytes(d.console)
    return _baseline["hello"]


GUEST_VALUES = SMALL + BIG + POINTERS + DOMIDS + [1, 2, 3]
guest_calls = st.lists(
    st.tuples(st.one_of(st.sampled_from(sorted(int(n) for n in pv_hypercall_table
                                               if n != H.iret)),
                        st.integers(0, 130)),
              st.lists(st.integers(0, len(GUEST_VALUES) - 1), min_size=5, max_size=5)),
    min_size=1, max_size=30)


def _check_destroyed_in_dom0(host: XenHost, domid: int) -> None:
    """The toolstack's part of the destroyed-domain check: xenstore and Dom0."""
    host.check_destroyed(domid)
    store = dom0_services(host).store
    assert not store.check(), store.check()
    prefix = f"/local/domain/{domid}"
    assert not any(p == prefix or p.startswith(prefix + "/") for p in store.nodes)
    for kind in ("vbd", "vif", "console"):
        assert not store.exists(f"/local/domain/0/backend/{kind}/{domid}")
    assert domid not in store.connections
    for conn in store.connections.values():
        for watch in conn.watches:
            assert not watch.path.startswith(prefix + "/") and watch.path != prefix, watch
            assert f"/{domid}/" not in watch.path.replace("/local/domain/0/", "/"), watch
    assert domid not in dom0_services(host).devices


@fuzz_settings(25)
@given(seq=guest_calls, data=data_pages)
def test_guest_level_fuzz_next_to_pv_hello(seq: list, data: bytes) -> None:
    expected = _hello_baseline()
    lab, hello = _hello_lab()
    host = lab.host
    fuzzer = create(host, _fuzz_code(seq, GUEST_VALUES), name="fuzzer", memory_mib=4,
                    data=data, bss=PAGE_SIZE)
    fid = fuzzer.domid
    host.run(max_instructions=20_000_000, until=lambda: hello.is_shut_down and (
        fuzzer.is_shut_down or fuzzer.domid not in host.domains or fuzzer.vcpus[0].blocked))
    assert hello.is_shut_down and not hello.is_crashed
    assert bytes(hello.console) == expected
    assert 0 in host.domains and hello.domid in host.domains
    host.check_invariants()
    if fid in host.domains:
        lab.toolstack.domain_destroy(fuzzer)
    host.check_invariants()
    _check_destroyed_in_dom0(host, fid)
    assert bytes(hello.console) == expected


def test_destroy_after_fuzz_through_the_toolstack_leaves_nothing() -> None:
    """pv-hello itself (xenstore nodes, console, store connection) after a fuzzer ran."""
    lab, hello = _hello_lab()
    host = lab.host
    seq = [(int(n), [i, i + 1, i + 2, i + 3, i + 4]) for i, n in enumerate(pv_hypercall_table)]
    fuzzer = create(host, _fuzz_code(seq, GUEST_VALUES), name="fuzzer", memory_mib=4)
    host.run(max_instructions=1_000_000, until=lambda: hello.is_shut_down)
    hid = hello.domid
    lab.toolstack.domain_destroy(hello)
    host.check_invariants()
    _check_destroyed_in_dom0(host, hid)
    if fuzzer.domid in host.domains:
        lab.toolstack.domain_destroy(fuzzer)
    _check_destroyed_in_dom0(host, fuzzer.domid)
    host.check_invariants()


# ------------------------------------------------------------------ what the fuzzer found
def _op(w: World, regs: list[int]) -> int:
    return _hypercall(w.host, w.fuzzer.vcpus[0], regs)


def test_found_decrease_reservation_of_a_page_table_page_keeps_it_while_referenced() -> None:
    """Was: the fuzzer's live L4 (its CR3) went back to the heap, for the next domain.
    As in Xen's guest_remove_page, the pfn goes (the call succeeds, the pin is dropped)
    but the frame stays the guest's, typed, while its CR3 and tables reference it."""
    w = World([])
    f = w.fuzzer
    pt = sorted(f.pt_mfns)[0]
    free_before = w.host.mem.free_pages
    w.host.mem.write(f.maddr(DATA_PFN) + T_EXTENTS, struct.pack("<Q", pt))
    assert _op(w, [H.memory_op, MemoryOp.XENMEM_decrease_reservation, DATA_VA + T_DECREASE,
                   0, 0, 0]) == 1
    assert f.owns_mfn(pt) and w.host.mem.free_pages == free_before
    assert f.mfn_to_pfn(pt) is None            # gone from the P2M all the same
    w.host.check_invariants()
    # the next domain gets other frames; destroying the fuzzer frees this one
    fid = f.domid
    w.host.domain_destroy(f)
    assert w.host.mem.owner[pt] != fid and fid not in w.host.zombies
    w.host.check_invariants()


def test_found_decrease_reservation_of_a_frame_another_domain_maps_keeps_it() -> None:
    w = World([])
    f, p = w.fuzzer, w.partner
    assert _op(w, [H.grant_table_op, G.GnttabOp.GNTTABOP_map_grant_ref, DATA_VA + T_MAP_RW, 1,
                   0, 0]) == 0
    mfn = p.maddr(8) >> PAGE_SHIFT
    assert f.foreign_mfns == {mfn: 1}
    # the partner gives the frame back while the fuzzer maps it: Xen must keep it
    w.host._current = None
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.memory import _reservation
    w.host.mem.write(p.maddr(2), struct.pack("<QQIIHxx", DATA_VA + 0x100, 1, 0, 0, DOMID_SELF))
    w.host.mem.write(p.maddr(2) + 0x100, struct.pack("<Q", mfn))
    ctx = HypercallContext(w.host, p, p.vcpus[0], p.vcpus[0].cpu, H.memory_op)
    assert _reservation(ctx, MemoryOp.XENMEM_decrease_reservation, DATA_VA) == 1
    assert p.owns_mfn(mfn) and w.host.mem.owner[mfn] == p.domid
    w.host.check_invariants()
    # the partner's own mapping and the fuzzer's grant still hold it: unmapping the grant
    # leaves the partner's L1 entry, unmapping that returns the frame to the heap
    assert _op(w, [H.grant_table_op, G.GnttabOp.GNTTABOP_unmap_grant_ref, DATA_VA + T_UNMAP,
                   1, 0, 0]) == 0
    assert p.owns_mfn(mfn)
    w.host.check_invariants()


def test_found_unmapping_a_device_map_grant_with_a_host_addr_does_not_raise() -> None:
    """Was: UcError (unmapping a frame never mapped) escaped from the hypercall."""
    w = World([])
    w.host.mem.write(w.fuzzer.maddr(DATA_PFN) + T_MAP_RW + 8,
                     struct.pack("<I", G.GNTMAP_device_map))
    assert _op(w, [H.grant_table_op, G.GnttabOp.GNTTABOP_map_grant_ref, DATA_VA + T_MAP_RW, 1,
                   0, 0]) == 0
    assert _op(w, [H.grant_table_op, G.GnttabOp.GNTTABOP_unmap_grant_ref, DATA_VA + T_UNMAP, 1,
                   0, 0]) == 0
    assert not w.fuzzer.grant_table.maptrack and not w.partner.grant_table.pins
    w.host.check_invariants()


def test_found_granter_destroyed_while_mapped_leaves_no_foreign_mapping() -> None:
    """Was: the grantee kept its PTE and its CPU mapping of the freed frame."""
    w = World([])
    f = w.fuzzer
    assert _op(w, [H.grant_table_op, G.GnttabOp.GNTTABOP_map_grant_ref, DATA_VA + T_MAP_RW, 1,
                   0, 0]) == 0
    pid = w.partner.domid
    w.host.domain_destroy(w.partner)
    w.host.check_invariants()
    w.host.check_destroyed(pid)
    assert not f.foreign_mfns and not f.grant_table.maptrack
    from xenlab.xen.mm import l1e_address
    l1e = l1e_address(w.host.mem, f, f.vcpus[0].cpu.reg("cr3"), EXTRA_VA)
    assert l1e is not None and w.host.mem.read_u64(l1e) == 0
