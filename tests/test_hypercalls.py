"""Hypercalls from real machine code: tiny PV kernels built by tests/elfgen.py.

Every guest here is a handful of hand-encoded x86-64 instructions that call
``hypercall_page + nr*32`` with arguments in RDI, RSI, RDX, R10, R8. Return
values are read from the trace (every hypercall record has ``ret``) or from
the guest's results page (``Asm.store_rax``) through host memory.
"""

from __future__ import annotations

import itertools
import struct

import pytest
from elfgen import (
    DATA_VA,
    HYPERCALL_PAGE_VA,
    Asm,
    boot,
    create,
    hypercall_rets,
    mov_imm64,
    new_host,
    results,
)

from xenlab.public.console import ConsoleIO
from xenlab.public.errno import Errno
from xenlab.public.event_channel import EvtchnOp
from xenlab.public.memory import MemoryOp
from xenlab.public.sched import SchedOp, ShutdownReason
from xenlab.public.vcpu import VcpuOp
from xenlab.public.version import XenVer
from xenlab.public.xen import DOMID_SELF, Hypercall, StartInfo, Virq
from xenlab.xen import event_channel as evtchn
from xenlab.xen.page_alloc import PAGE_SHIFT
from xenlab.xen.trace import Kind

H = Hypercall
SI_PENDING = 2048  # offsetof(struct shared_info, evtchn_pending) (checked in test_abi)


def _pending(host, d, port: int) -> bool:
    si = d.shared_info_mfn << PAGE_SHIFT
    return bool(host.mem.read_u64(si + SI_PENDING + 8 * (port // 64)) >> (port % 64) & 1)


def _hello(text: bytes = b"ok\n") -> tuple[bytes, bytes]:
    """(code, data) of a guest that prints ``text`` and powers off."""
    a = Asm().call(H.console_io, ConsoleIO.CONSOLEIO_write, len(text), DATA_VA).shutdown(0)
    return a.bytes(), text


# ------------------------------------------------------------------ console_io
def test_console_io_write_reaches_the_xen_log_and_the_domain_console() -> None:
    text = b"hello from elfgen\nsecond line\n"
    code, data = _hello(text)
    host, d = boot(code, data=data)
    assert d.console == bytearray(text)
    lines = host.log.lines
    assert "(d1) hello from elfgen" in lines
    assert "(d1) second line" in lines
    assert lines.index("(d1) hello from elfgen") < lines.index("(d1) second line")
    assert hypercall_rets(host, d, "console_io") == [0]
    assert d.is_shut_down and d.shutdown_code == ShutdownReason.SHUTDOWN_poweroff
    host.check_invariants()


def test_console_io_unprintable_bytes_are_dots_and_partial_lines_wait() -> None:
    a = (Asm().call(H.console_io, ConsoleIO.CONSOLEIO_write, 4, DATA_VA)
         .call(H.console_io, ConsoleIO.CONSOLEIO_write, 3, DATA_VA + 4).shutdown(0))
    host, _d = boot(a.bytes(), data=b"a\x01b" + b"c" + b"de\n")
    assert "(d1) a.bcde" in host.log.lines


# ------------------------------------------------------------------ xen_version
def test_xen_version_and_extraversion() -> None:
    buf = DATA_VA + 0x100
    a = (Asm().call(H.xen_version, XenVer.XENVER_version, 0).store_rax(0)
         .call(H.xen_version, XenVer.XENVER_extraversion, buf).store_rax(1)
         .call(H.xen_version, XenVer.XENVER_pagesize, 0).store_rax(2)
         .shutdown(0))
    host, d = boot(a.bytes(), data=b"\xff" * 0x200)
    assert results(host, d, 3) == [0x40011, 0, 4096]
    assert hypercall_rets(host, d, "xen_version") == [0x40011, 0, 4096]
    raw = host.mem.read(d.maddr(2) + 0x100, 16)  # DATA_VA is pfn 2
    assert raw == b".0-xenlab".ljust(16, b"\0")


# ------------------------------------------------------------------ -ENOSYS
@pytest.mark.parametrize("nr", [11, 31, 38, 60, 127])
def test_unknown_or_unused_hypercall_returns_enosys(nr: int) -> None:
    a = Asm().call(nr, 1, 2, 3, 4, 5).store_rax(0).shutdown(0)
    host, d = boot(a.bytes())
    assert results(host, d, 1) == [-Errno.ENOSYS]
    assert hypercall_rets(host, d)[0] == -38
    assert d.shutdown_code == 0 and not d.is_crashed


@pytest.mark.parametrize("nr", [128, 1000, (1 << 32) + H.console_io])
def test_hypercall_number_beyond_the_page_returns_enosys(nr: int) -> None:
    a = Asm().mov("rax", nr)
    a.raw("0f05")                                            # syscall
    a.store_rax(0).shutdown(0)
    host, d = boot(a.bytes())
    assert results(host, d, 1) == [-Errno.ENOSYS]
    assert not d.is_crashed


# ------------------------------------------------------------------ -EFAULT
BAD_POINTERS = {
    "unmapped-low": 0x1000,
    "null": 0,
    "xen-area": 0xFFFF_8000_0000_0000,
    "non-canonical": 0x0000_8000_0000_0000,
    "non-canonical-high": 0xFFFF_0000_0000_0000,
    "top-of-address-space": 0xFFFF_FFFF_FFFF_FFF0,
}


@pytest.mark.parametrize("ptr", BAD_POINTERS.values(), ids=BAD_POINTERS.keys())
def test_console_io_bad_pointer_is_efault_and_the_domain_lives(ptr: int) -> None:
    a = (Asm().call(H.console_io, ConsoleIO.CONSOLEIO_write, 32, ptr).store_rax(0)
         .call(H.console_io, ConsoleIO.CONSOLEIO_write, 6, DATA_VA).store_rax(1)
         .shutdown(0))
    host, d = boot(a.bytes(), data=b"alive\n")
    assert results(host, d, 2) == [-Errno.EFAULT, 0]
    assert d.console == bytearray(b"alive\n")
    assert d.shutdown_code == 0 and not d.is_crashed
    host.check_invariants()


def test_copy_to_guest_into_read_only_page_tables_is_efault() -> None:
    """xen_version(extraversion, start_info->pt_base): the L4 is mapped read-only."""
    pt = StartInfo.pt_base.offset
    a = Asm()
    a.raw("4889f3")                                          # mov %rsi, %rbx (start_info)
    a.raw("488bb3" + struct.pack("<i", pt).hex())            # mov pt_base(%rbx), %rsi
    a.mov("rdi", XenVer.XENVER_extraversion)
    a.code += _call_no_args(a, H.xen_version)
    a.store_rax(0).shutdown(0)
    host, d = boot(a.bytes())
    assert results(host, d, 1) == [-Errno.EFAULT]
    assert not d.is_crashed and d.shutdown_code == 0


def _call_no_args(a: Asm, nr: int) -> bytes:
    from elfgen import hypercall

    return hypercall(nr, a.here)


def test_buffer_straddling_the_end_of_the_mapping_is_efault() -> None:
    # the bootstrap mapping covers VIRT_BASE .. v_end (4 MiB aligned): 16 MiB guest -> 4 MiB
    end = 0xFFFF_FFFF_8000_0000 + (4 << 20)
    a = (Asm().call(H.console_io, ConsoleIO.CONSOLEIO_write, 16, end - 8).store_rax(0)
         .call(H.console_io, ConsoleIO.CONSOLEIO_write, 8, end - 8).store_rax(1)
         .shutdown(0))
    host, d = boot(a.bytes())
    assert results(host, d, 2) == [-Errno.EFAULT, 0]
    assert d.console == bytearray(b"........")  # the last 8 mapped bytes (zero) as dots


# ------------------------------------------------------------------ memory_op
def _domid_data(domid: int) -> bytes:
    return struct.pack("<H", domid)


def test_memory_op_current_and_maximum_reservation() -> None:
    a = (Asm().call(H.memory_op, MemoryOp.XENMEM_current_reservation, DATA_VA).store_rax(0)
         .call(H.memory_op, MemoryOp.XENMEM_maximum_reservation, DATA_VA).store_rax(1)
         .shutdown(0))
    host, d = boot(a.bytes(), data=_domid_data(DOMID_SELF), memory_mib=16, max_pages=5000)
    assert results(host, d, 2) == [16 * 256, 5000]
    assert d.tot_pages == 16 * 256


def test_memory_op_own_domid_works_like_domid_self() -> None:
    a = Asm().call(H.memory_op, MemoryOp.XENMEM_current_reservation, DATA_VA).store_rax(0)
    a.shutdown(0)
    host, d = boot(a.bytes(), data=_domid_data(1))  # the first guest is domain 1
    assert d.domid == 1
    assert results(host, d, 1) == [16 * 256]


@pytest.mark.parametrize("domid", [0, 2, 77, 0x7FF2])
def test_memory_op_on_another_domain_from_a_domu_is_eperm(domid: int) -> None:
    a = (Asm().call(H.memory_op, MemoryOp.XENMEM_current_reservation, DATA_VA).store_rax(0)
         .call(H.memory_op, MemoryOp.XENMEM_maximum_reservation, DATA_VA).store_rax(1)
         .shutdown(0))
    host, d = boot(a.bytes(), data=_domid_data(domid))
    assert results(host, d, 2) == [-Errno.EPERM, -Errno.EPERM]
    assert results(host, d, 1) == [-1]


def test_increase_then_decrease_reservation_moves_pages_between_xen_and_the_guest() -> None:
    n = 4
    arr = DATA_VA + 0x100
    res = struct.pack("<QQIIH", arr, n, 0, 0, DOMID_SELF)   # struct xen_memory_reservation
    data = _domid_data(DOMID_SELF).ljust(0x40, b"\0") + res.ljust(0xC0, b"\0")
    a = (Asm().call(H.memory_op, MemoryOp.XENMEM_increase_reservation, DATA_VA + 0x40)
         .store_rax(0)
         .call(H.memory_op, MemoryOp.XENMEM_current_reservation, DATA_VA).store_rax(1))
    # decrease_reservation takes back the frames increase_reservation wrote to the array
    # (a PV guest names them by MFN)
    a.call(H.memory_op, MemoryOp.XENMEM_decrease_reservation, DATA_VA + 0x40).store_rax(2)
    a.call(H.memory_op, MemoryOp.XENMEM_current_reservation, DATA_VA).store_rax(3)
    a.shutdown(0)
    host = new_host()
    before_create = host.mem.free_pages
    d = create(host, a.bytes(), data=data, max_pages=16 * 256 + n)
    after_create = host.mem.free_pages
    seen: list[tuple[int, int]] = []

    def snapshot(rec) -> None:
        if rec.kind is Kind.HYPERCALL and rec.name == "memory_op":
            seen.append((d.tot_pages, host.mem.free_pages))
            host.check_invariants()

    host.trace.listeners.append(snapshot)
    host.run(max_instructions=2_000_000)
    nr = 16 * 256
    assert results(host, d, 4) == [n, nr + n, n, nr]
    # after increase: +n pages for the guest, -n free in the host; after decrease: back
    assert seen[0] == (nr + n, after_create - n)
    assert seen[2] == (nr, after_create)
    mfns = struct.unpack(f"<{n}Q", host.mem.read(d.maddr(2) + 0x100, 8 * n))
    assert all(m != 0 for m in mfns)
    assert all(not d.owns_mfn(m) for m in mfns)
    host.check_invariants()
    host.domain_destroy(d)
    assert host.mem.free_pages == before_create
    host.check_invariants()


def test_increase_reservation_stops_at_max_pages() -> None:
    arr = DATA_VA + 0x100
    res = struct.pack("<QQIIH", arr, 8, 0, 0, DOMID_SELF)
    a = Asm().call(H.memory_op, MemoryOp.XENMEM_increase_reservation, DATA_VA).store_rax(0)
    a.shutdown(0)
    host, d = boot(a.bytes(), data=res, max_pages=16 * 256 + 3)
    assert results(host, d, 1) == [3]
    assert d.tot_pages == 16 * 256 + 3
    host.check_invariants()


# ------------------------------------------------------------------ sched_op
@pytest.mark.parametrize("reason", list(ShutdownReason)[:5], ids=lambda r: r.name)
def test_sched_op_shutdown_reason(reason: ShutdownReason) -> None:
    a = Asm().shutdown(int(reason))
    a.call(H.console_io, ConsoleIO.CONSOLEIO_write, 6, DATA_VA)  # never reached
    host, d = boot(a.bytes(), data=b"after\n")
    assert d.is_shut_down
    assert d.shutdown_code == reason
    assert d.is_crashed == (reason == ShutdownReason.SHUTDOWN_crash)
    assert d.console == bytearray()
    recs = host.trace.select(kind=Kind.LIFECYCLE, dom=d.domid, name="shutdown")
    assert len(recs) == 1 and recs[0].args["code"] == reason
    assert recs[0].args["reason"] == reason.name
    assert f"d1: shutdown: reason {reason.name} ({int(reason)})" in host.log.text()


def test_sched_op_shutdown_code_records_without_shutting_down() -> None:
    code = struct.pack("<I", ShutdownReason.SHUTDOWN_suspend)
    a = Asm().call(H.sched_op, SchedOp.SCHEDOP_shutdown_code, DATA_VA).store_rax(0).spin()
    host, d = boot(a.bytes(), data=code, max_instructions=200_000)
    assert results(host, d, 1) == [0]
    assert d.shutdown_code == ShutdownReason.SHUTDOWN_suspend
    assert not d.is_shut_down and not d.is_shutting_down
    assert not host.trace.select(kind=Kind.LIFECYCLE, dom=d.domid, name="shutdown")


def test_sched_op_shutdown_bad_pointer_is_efault() -> None:
    a = Asm().call(H.sched_op, SchedOp.SCHEDOP_shutdown, 0x1000).store_rax(0).shutdown(0)
    host, d = boot(a.bytes())
    assert results(host, d, 1) == [-Errno.EFAULT]
    assert d.shutdown_code == 0


def test_sched_op_unknown_command_is_enosys() -> None:
    a = Asm().call(H.sched_op, 99, 0).store_rax(0).shutdown(0)
    host, d = boot(a.bytes())
    assert results(host, d, 1) == [-Errno.ENOSYS]


# ------------------------------------------------------------------ vcpu_op
def test_vcpu_op_is_up() -> None:
    a = (Asm().call(H.vcpu_op, VcpuOp.VCPUOP_is_up, 0, 0).store_rax(0)
         .call(H.vcpu_op, VcpuOp.VCPUOP_is_up, 5, 0).store_rax(1)
         .call(H.vcpu_op, VcpuOp.VCPUOP_is_up, 0xFFFFFFFF, 0).store_rax(2)
         .shutdown(0))
    host, d = boot(a.bytes())
    assert results(host, d, 3) == [1, -Errno.ENOENT, -Errno.ENOENT]


# ------------------------------------------------------------------ timer + block
def test_set_timer_op_bind_virq_timer_and_block_wake_at_the_deadline() -> None:
    deadline = 5_000_000  # ns of system time; the guest starts near 0
    bind = struct.pack("<III", Virq.VIRQ_TIMER, 0, 0)  # struct evtchn_bind_virq
    a = (Asm().call(H.event_channel_op, EvtchnOp.EVTCHNOP_bind_virq, DATA_VA).store_rax(0)
         .call(H.set_timer_op, deadline).store_rax(1)
         .call(H.sched_op, SchedOp.SCHEDOP_block, 0).store_rax(2)
         .shutdown(0))
    host, d = boot(a.bytes(), data=bind)
    assert results(host, d, 3) == [0, 0, 0]
    port = struct.unpack("<I", host.mem.read(d.maddr(2) + 8, 4))[0]
    assert port > 0
    recs = [r for r in host.trace.records if r.dom == d.domid]
    names = [(r.kind, r.name) for r in recs]
    i_block = names.index((Kind.SCHED, "block"))
    i_timer = names.index((Kind.EVENT, "timer"))
    i_wake = names.index((Kind.SCHED, "wake"))
    i_down = names.index((Kind.LIFECYCLE, "shutdown"))
    assert i_block < i_timer < i_wake < i_down
    assert recs[i_timer].args["deadline"] == deadline
    assert recs[i_timer].time >= deadline
    assert recs[i_wake].time >= deadline
    assert recs[i_down].time >= deadline
    assert _pending(host, d, port)
    assert d.shutdown_code == 0


def test_block_without_timer_or_event_sleeps_forever() -> None:
    a = Asm().call(H.sched_op, SchedOp.SCHEDOP_block, 0).shutdown(0)
    host, d = boot(a.bytes())
    assert not d.is_shut_down
    assert d.vcpus[0].blocked
    assert host.runnable_work() is False


# ------------------------------------------------------------------ event channels
def _a1_load_eax(va: int) -> bytes:
    return b"\xa1" + struct.pack("<Q", va)                  # movabs va, %eax


def _a3_store_eax(va: int) -> bytes:
    return b"\xa3" + struct.pack("<Q", va)                  # movabs %eax, va


def test_interdomain_channel_guest_binds_to_dom0_and_sends() -> None:
    host = new_host()
    dom0 = host.domains[0]
    a = Asm().call(H.event_channel_op, EvtchnOp.EVTCHNOP_bind_interdomain, DATA_VA)
    a.store_rax(0)
    a.code += _a1_load_eax(DATA_VA + 8) + _a3_store_eax(DATA_VA + 0x10)  # send.port = local
    a.call(H.event_channel_op, EvtchnOp.EVTCHNOP_send, DATA_VA + 0x10).store_rax(1)
    a.shutdown(0)
    d = create(host, a.bytes(), unpause=False)
    p0 = evtchn.evtchn_alloc_unbound(host, dom0, DOMID_SELF, d.domid)
    assert p0 > 0
    assert not _pending(host, dom0, p0)
    # DATA+0: struct evtchn_bind_interdomain {remote_dom, remote_port, local_port}
    # DATA+0x10: struct evtchn_send {port}
    host.mem.write(d.maddr(2), struct.pack("<HxxII", 0, p0, 0))
    host.domain_unpause(d)
    host.run(max_instructions=1_000_000)
    assert results(host, d, 2) == [0, 0]
    local = struct.unpack("<I", host.mem.read(d.maddr(2) + 8, 4))[0]
    assert local > 0
    assert _pending(host, dom0, p0)          # the send reached Dom0's shared_info
    ch = dom0.evtchn.lookup(p0)
    assert ch.state is evtchn.ECS.INTERDOMAIN and ch.remote_port == local
    # and back: Dom0 notifies the (shut down) guest; its pending bit is set
    si = d.shared_info_mfn << PAGE_SHIFT
    host.mem.write_u64(si + SI_PENDING + 8 * (local // 64), 0)
    assert evtchn.evtchn_send(host, dom0, p0) == 0
    assert _pending(host, d, local)
    host.domain_destroy(d)
    assert dom0.evtchn.lookup(p0).state is evtchn.ECS.UNBOUND
    host.check_invariants()


def test_sched_poll_sleeps_until_its_port_is_pending() -> None:
    """SCHEDOP_poll on one port: the vCPU blocks (its bit in the domain's poll_mask, as in
    Xen's d->poll_mask) until that port becomes pending, then the poll returns 0."""
    host = new_host()
    dom0 = host.domains[0]
    a = Asm().call(H.sched_op, SchedOp.SCHEDOP_poll, DATA_VA + 0x30).store_rax(0).shutdown(0)
    d = create(host, a.bytes(), unpause=False)
    p0 = evtchn.evtchn_alloc_unbound(host, dom0, DOMID_SELF, d.domid)
    local = evtchn.evtchn_bind_interdomain(host, d, 0, p0)
    assert local > 0
    si = d.shared_info_mfn << PAGE_SHIFT
    host.mem.write_u64(si + SI_PENDING + 8 * (local // 64), 0)   # the bind's own kick, seen
    # DATA+0x20: the ports array; DATA+0x30: struct sched_poll {ports, nr_ports, timeout}
    host.mem.write(d.maddr(2) + 0x20, struct.pack("<I", local))
    host.mem.write(d.maddr(2) + 0x30, struct.pack("<QI4xQ", DATA_VA + 0x20, 1, 0))
    host.domain_unpause(d)
    host.run(max_instructions=1_000_000)
    v = d.vcpus[0]
    assert v.blocked and d.poll_mask == 1 and not d.is_shut_down
    assert evtchn.evtchn_send(host, dom0, p0) == 0       # Dom0 notifies: the poller wakes
    assert not v.blocked and d.poll_mask == 0
    host.run(max_instructions=1_000_000)
    assert results(host, d, 1) == [0] and d.is_shut_down
    wakes = [r.args["why"] for r in host.trace.records
             if r.dom == d.domid and r.kind is Kind.SCHED and r.name == "wake"]
    assert wakes == [f"poll: port {local}"]


def test_interdomain_channel_between_two_guests() -> None:
    """Guest A allocates an unbound port for B (port written to A's data); B binds and sends."""
    host = new_host()
    # A: alloc_unbound {dom=SELF, remote_dom=B, port}, then power off
    a_code = Asm().call(H.event_channel_op, EvtchnOp.EVTCHNOP_alloc_unbound, DATA_VA)
    a_code.store_rax(0).shutdown(0)
    da = create(host, a_code.bytes(), name="A", unpause=False)
    # B: bind_interdomain {remote_dom=A, remote_port=(filled in later)}, then send on the
    # local port it got back
    b_code = Asm().call(H.event_channel_op, EvtchnOp.EVTCHNOP_bind_interdomain, DATA_VA)
    b_code.store_rax(0)
    b_code.code += _a1_load_eax(DATA_VA + 8) + _a3_store_eax(DATA_VA + 0x10)
    b_code.call(H.event_channel_op, EvtchnOp.EVTCHNOP_send, DATA_VA + 0x10).store_rax(1)
    b_code.shutdown(0)
    db = create(host, b_code.bytes(), name="B", unpause=False)
    host.mem.write(da.maddr(2), struct.pack("<HHI", DOMID_SELF, db.domid, 0))
    host.domain_unpause(da)
    host.run(max_instructions=1_000_000)
    assert results(host, da, 1) == [0]
    port_a = struct.unpack("<I", host.mem.read(da.maddr(2) + 4, 4))[0]
    assert port_a > 0 and not _pending(host, da, port_a)
    host.mem.write(db.maddr(2), struct.pack("<HxxII", da.domid, port_a, 0))
    host.domain_unpause(db)
    host.run(max_instructions=1_000_000)
    assert results(host, db, 2) == [0, 0]
    assert _pending(host, da, port_a)
    sends = host.trace.select(kind=Kind.EVENT, dom=da.domid, name="evtchn_set_pending")
    assert [r.args["port"] for r in sends] == [port_a]
    host.check_invariants()


def test_bind_interdomain_to_a_port_meant_for_someone_else_is_einval() -> None:
    host = new_host()
    dom0 = host.domains[0]
    other = create(host, Asm().spin().bytes(), unpause=False, name="other")
    p0 = evtchn.evtchn_alloc_unbound(host, dom0, DOMID_SELF, other.domid)  # not for us
    assert p0 > 0
    data = struct.pack("<HxxII", 0, p0, 0)
    a = Asm().call(H.event_channel_op, EvtchnOp.EVTCHNOP_bind_interdomain, DATA_VA)
    a.store_rax(0).shutdown(0)
    host, d = boot(a.bytes(), data=data, host=host)
    assert results(host, d, 1) == [-Errno.EINVAL]


@pytest.mark.parametrize("port", [0, 1, 4095, 4096, 0xFFFFFFFF])
def test_evtchnop_close_bad_port_is_einval(port: int) -> None:
    a = Asm().call(H.event_channel_op, EvtchnOp.EVTCHNOP_close, DATA_VA).store_rax(0)
    a.call(H.event_channel_op, EvtchnOp.EVTCHNOP_send, DATA_VA).store_rax(1)
    a.shutdown(0)
    host, d = boot(a.bytes(), data=struct.pack("<I", port))
    assert results(host, d, 2) == [-Errno.EINVAL, -Errno.EINVAL]
    assert not d.is_crashed


def test_evtchnop_bad_pointer_and_unknown_command() -> None:
    a = (Asm().call(H.event_channel_op, EvtchnOp.EVTCHNOP_close, 0x1000).store_rax(0)
         .call(H.event_channel_op, 200, DATA_VA).store_rax(1)
         .shutdown(0))
    host, d = boot(a.bytes())
    assert results(host, d, 2) == [-Errno.EFAULT, -Errno.ENOSYS]


# ------------------------------------------------------------------ faults
PT_BASE = StartInfo.pt_base.offset
FAULTS = {
    "ud2": "0f0b",                                             # ud2
    "hlt": "f4",                                               # hlt (ring 3: #GP)
    "cli": "fa",                                               # cli (ring 3, IOPL 0: #GP)
    "out": "e680",                                             # out %al, $0x80
    "in": "ec",                                                # in (%dx), %al
    "wrcr3": "0f22d8",                                         # mov %rax, %cr3
    "int3": "cc",                                              # int3
    "write-own-page-tables":                                   # the L4 is read-only
        "488b86" + struct.pack("<i", PT_BASE).hex()            # mov pt_base(%rsi), %rax
        + "488900",                                            # mov %rax, (%rax)
    "read-xen-area":
        mov_imm64("rax", 0xFFFF_8200_0000_0000).hex()          # movabs $PERDOMAIN_VIRT_START, %rax
        + "488b00",                                            # mov (%rax), %rax
    "write-m2p":                                               # the M2P is read-only
        mov_imm64("rax", 0xFFFF_8000_0000_0000).hex()          # movabs $MACH2PHYS_VIRT_START, %rax
        + "488900",                                            # mov %rax, (%rax)
    "write-xen-stack":
        mov_imm64("rax", 0xFFFF_8000_0001_1000).hex()          # Xen's (RW, supervisor) stack
        + "488900",                                            # mov %rax, (%rax)
    "non-canonical":
        mov_imm64("rax", 0x0000_8000_0000_0000).hex()
        + "488b00",                                            # mov (%rax), %rax: #GP
    "jump-to-null": "31c0" + "ffe0",                           # xor %eax,%eax; jmp *%rax
}


@pytest.mark.parametrize("insn", FAULTS.values(), ids=FAULTS.keys())
def test_guest_fault_crashes_only_that_domain(insn: str) -> None:
    host = new_host()
    bad = Asm().raw(insn)
    bad.call(H.console_io, ConsoleIO.CONSOLEIO_write, 8, DATA_VA).shutdown(0)
    host, d1 = boot(bad.bytes(), data=b"reached\n", host=host)
    assert d1.is_crashed and d1.is_shut_down
    assert d1.shutdown_code == ShutdownReason.SHUTDOWN_crash
    assert d1.console == bytearray()  # nothing after the fault ran
    crash = host.trace.select(kind=Kind.LIFECYCLE, dom=d1.domid, name="crash")
    assert len(crash) == 1
    assert "domain_crash called" in host.log.text()
    assert "Domain 1 (vcpu#0) crashed" in host.log.text()
    if insn.endswith("488900") or insn.endswith("488b00"):  # a plain mov is not privileged
        assert "privileged" not in d1.crash_reason
    host.check_invariants()
    # the host goes on: a second domain runs to completion
    code, data = _hello(b"second ok\n")
    host, d2 = boot(code, data=data, host=host)
    assert d2.domid != d1.domid
    assert d2.console == bytearray(b"second ok\n")
    assert d2.is_shut_down and not d2.is_crashed and d2.shutdown_code == 0
    assert "(d2) second ok" in host.log.lines
    host.check_invariants()


def test_crash_report_names_the_faulting_instruction() -> None:
    _host, d = boot(Asm().raw("90" * 3 + "0f0b").bytes())     # nop; nop; nop; ud2
    assert "ud2" in d.crash_reason
    assert "ffffffff80000003" in d.crash_reason


def test_privileged_instruction_is_named_privileged() -> None:
    _host, d = boot(Asm().raw("fa").bytes())                   # cli
    assert "cli" in d.crash_reason and "privileged" in d.crash_reason


def test_hypercall_page_is_ordinary_writable_guest_memory() -> None:
    """In xenlab's layout (as in Xen) the hypercall page is guest RAM, mapped RW: a guest
    may overwrite its own stubs; it only hurts itself."""
    a = Asm().mov("rax", HYPERCALL_PAGE_VA)
    a.raw("48c70000000000")                                  # movq $0, (%rax): slot 0
    a.shutdown(0)
    host, d = boot(a.bytes())
    assert not d.is_crashed and d.shutdown_code == 0
    pfn = (HYPERCALL_PAGE_VA - 0xFFFF_FFFF_8000_0000) >> 12
    page = host.mem.read(d.maddr(pfn), 64)
    assert page[:8] == bytes(8)
    assert page[32 * 1 : 32 * 1 + 4] == bytes.fromhex("514153b8")  # slot 1 intact


# ------------------------------------------------------------------ destroy
@pytest.mark.parametrize("how", ["poweroff", "crash", "running", "never-run"])
def test_domain_destroy_frees_every_page(how: str) -> None:
    host = new_host()
    free_before = host.mem.free_pages
    xen_before = host.mem.pages_owned_by(0x7FF2)
    code = {"poweroff": Asm().shutdown(0), "crash": Asm().raw("0f0b"),
            "running": Asm().spin(), "never-run": Asm().spin()}[how].bytes()
    d = create(host, code, unpause=how != "never-run")
    assert host.mem.free_pages < free_before
    host.run(max_instructions=100_000)
    host.domain_destroy(d)
    assert d.domid not in host.domains
    assert host.mem.free_pages == free_before
    assert host.mem.pages_owned_by(0x7FF2) == xen_before
    host.check_invariants()
    assert host.trace.select(kind=Kind.LIFECYCLE, dom=d.domid, name="destroy")


def test_the_p2m_keeps_far_entries_aside_and_reads_the_same() -> None:
    """hvmloader maps shared_info just below 4 GiB: that entry must not grow the P2M array
    by a million INVALID_MFNs, and every lookup must read as if it had."""
    from xenlab.xen.domain import INVALID_MFN, P2M_DENSE_SLACK, Domain, DomainType

    d = Domain(1, "p2m", DomainType.HVM, max_pages=1024)
    d.set_p2m(0, 100, 8)                               # RAM: pfns 0-7
    d.set_p2m(0xFDFFF, 555)                            # shared_info near 4 GiB
    assert len(d.p2m) == 8 and d.p2m_high == {0xFDFFF: 555}
    assert [d.pfn_to_mfn(p) for p in (0, 7, 8, 0xFDFFF, 0xFE000)] == [
        100, 107, INVALID_MFN, 555, INVALID_MFN]
    assert d.mfn_to_pfn(555) == 0xFDFFF and d.mfn_to_pfn(103) == 3
    assert d.mfn_to_pfn(999) is None
    assert d.max_gpfn() == 0xFDFFF
    d.set_p2m(8 + P2M_DENSE_SLACK, 200, 2)             # a near hole: the array grows over it
    assert len(d.p2m) == 10 + P2M_DENSE_SLACK and d.pfn_to_mfn(9) == INVALID_MFN
    d.set_p2m(0xFDFFF, INVALID_MFN)                    # removed again
    assert d.p2m_high == {} and d.pfn_to_mfn(0xFDFFF) == INVALID_MFN
    assert d.max_gpfn() == 9 + P2M_DENSE_SLACK
    far = len(d.p2m) + P2M_DENSE_SLACK + 1
    d.set_p2m(far, 300)                                # far: aside
    assert d.p2m_high == {far: 300}
    d.set_p2m(len(d.p2m) + 100, 1)                     # the array grows closer ...
    d.set_p2m(far + 1, 400)                            # ... and over it: moved in
    assert d.p2m_high == {} and d.pfn_to_mfn(far) == 300 and d.pfn_to_mfn(far + 1) == 400


def test_an_idle_guests_far_timer_does_not_move_time_past_the_runs_end() -> None:
    """A guest that has nothing to do arms its timer far away (Linux asks for KTIME_MAX)
    and blocks. Time jumps over idle stretches, but a run with a time budget ends at its
    end, not 146 years later (the old loop set the pCPU's clock to 2**62 here, and a
    console key typed next reached a guest whose clock had leapt)."""
    from xenlab.xen.setup import RunStatus

    a = Asm().call(Hypercall.set_timer_op, 1 << 62).call(Hypercall.sched_op,
                                                          SchedOp.SCHEDOP_block, 0)
    host, d = boot(a.shutdown(0).bytes(), max_instructions=1)
    start = host.elapsed()
    status = host.run(max_time_ns=1_000_000_000)
    assert status is RunStatus.BUDGET
    assert host.elapsed() == start + 1_000_000_000, host.elapsed()
    assert d.vcpus[0].blocked and not d.is_shut_down


def test_the_periodic_timer_ticks_every_period_until_stopped() -> None:
    from elfgen import hypercall

    """VCPUOP_set_periodic_timer: VIRQ_TIMER every period (Xen's vcpu_periodic_timer_work),
    until VCPUOP_stop_periodic_timer. A 1 ms timer over 10 ms of a spinning guest ticks
    10 times; stopped, it ticks no more (the old code recorded the period only)."""
    def periodic(a: Asm, cmd: int, period: int) -> Asm:
        a.raw("68" + struct.pack("<i", period).hex())   # push $period (the u64 on the stack)
        a.raw("4889e2")                                 # mov %rsp, %rdx
        a.mov("rdi", cmd).mov("rsi", 0)
        a.code += hypercall(Hypercall.vcpu_op, a.here)
        return a

    a = periodic(Asm(), VcpuOp.VCPUOP_set_periodic_timer, 1_000_000).spin()
    host, d = boot(a.bytes(), max_instructions=1)
    start = host.elapsed()
    host.run(max_time_ns=10_000_000)
    ticks = [r for r in host.trace.select(kind=Kind.EVENT, dom=d.domid, name="timer")
             if r.args.get("periodic_ns") == 1_000_000]
    times = [r.time - start for r in ticks]
    # armed a few hundred ns into the run: 9 ticks before 10 ms, exactly 1 ms apart
    assert len(times) == 9 and 1_000_000 <= times[0] < 1_001_000, times
    assert {b - a for a, b in itertools.pairwise(times)} == {1_000_000}, times

    b = periodic(Asm(), VcpuOp.VCPUOP_set_periodic_timer, 1_000_000)
    b = periodic(b, VcpuOp.VCPUOP_stop_periodic_timer, 0).spin()
    host, d = boot(b.bytes(), max_instructions=1)
    host.run(max_time_ns=10_000_000)
    assert not [r for r in host.trace.select(kind=Kind.EVENT, dom=d.domid, name="timer")]
    # a period under 1 ms is refused, as Xen does
    c = periodic(Asm(), VcpuOp.VCPUOP_set_periodic_timer, 999_999).store_rax(0).shutdown(0)
    host, d = boot(c.bytes())
    assert results(host, d, 1)[0] == -Errno.EINVAL
