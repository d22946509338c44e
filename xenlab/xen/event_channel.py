"""Event channels: Xen's virtual interrupts, a pending bit and a mask bit per port.

Each domain has its own port space. A port is closed, unbound (waiting for a
given remote domain), interdomain (connected to a port of another domain),
bound to a VIRQ (an interrupt Xen raises, like VIRQ_TIMER) or an IPI.
Sending sets the *remote* port's pending bit in the remote domain's
``shared_info``; if that port is not masked and was not already pending,
Xen also sets the port's selector bit and ``evtchn_upcall_pending`` in the
target vCPU's ``vcpu_info`` and kicks the vCPU (wakes it if it blocked).
This is the 2-level ABI: 64 selector bits x 64 ports = 4096 ports.

Real Xen: xen/common/event_channel.c, xen/common/event_2l.c
"""

from __future__ import annotations

import ctypes
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xenlab.public import event_channel as E
from xenlab.public.errno import Errno
from xenlab.public.event_channel import EVTCHN_2L_NR_CHANNELS, EvtchnOp
from xenlab.public.xen import DOMID_SELF, NR_VIRQS, Hypercall, Virq
from xenlab.xen.page_alloc import PAGE_SHIFT
from xenlab.xen.privcmd import dom0_hypercall
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain, Vcpu
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.setup import XenHost

__all__ = [
    "ECS",
    "Channel",
    "EvtchnTable",
    "alloc_unbound_xen_event_channel",
    "do_event_channel_op",
    "evtchn_alloc_unbound",
    "evtchn_bind_interdomain",
    "evtchn_bind_virq",
    "evtchn_close",
    "evtchn_destroy",
    "evtchn_send",
    "notify_via_xen_event_channel",
    "send_guest_vcpu_virq",
]

SI_PENDING = 2048
SI_MASK = 2560


class ECS(enum.IntEnum):
    """Port states (ECS_* in xen/include/xen/event.h)."""

    FREE = 0
    RESERVED = 1
    UNBOUND = 2
    INTERDOMAIN = 3
    PIRQ = 4
    VIRQ = 5
    IPI = 6


_STATUS = {
    ECS.FREE: E.EvtchnStatusKind.EVTCHNSTAT_closed,
    ECS.RESERVED: E.EvtchnStatusKind.EVTCHNSTAT_closed,
    ECS.UNBOUND: E.EvtchnStatusKind.EVTCHNSTAT_unbound,
    ECS.INTERDOMAIN: E.EvtchnStatusKind.EVTCHNSTAT_interdomain,
    ECS.PIRQ: E.EvtchnStatusKind.EVTCHNSTAT_pirq,
    ECS.VIRQ: E.EvtchnStatusKind.EVTCHNSTAT_virq,
    ECS.IPI: E.EvtchnStatusKind.EVTCHNSTAT_ipi,
}


@dataclass
class Channel:
    state: ECS = ECS.FREE
    notify_vcpu: int = 0
    remote_domid: int = 0        # UNBOUND: who may bind; INTERDOMAIN: the peer
    remote_port: int = 0
    virq: int = 0
    # A port whose consumer is Xen itself (alloc_unbound_xen_event_channel): a
    # notification calls this instead of raising an event in the guest, and the
    # guest may neither send on it nor close it.
    xen_consumer: Callable[[int], None] | None = None


class EvtchnTable:
    """One domain's ports (struct evtchn bucket array) and its VIRQ bindings."""

    def __init__(self, max_ports: int = EVTCHN_2L_NR_CHANNELS) -> None:
        self.max_ports = max_ports
        self.ports: dict[int, Channel] = {0: Channel(ECS.RESERVED)}  # port 0 is never used
        self.virq_to_port: dict[tuple[int, int], int] = {}

    def get_free_port(self) -> int:
        for port in range(1, self.max_ports):
            if port not in self.ports:
                return port
        return -Errno.ENOSPC

    def lookup(self, port: int) -> Channel | None:
        ch = self.ports.get(port)
        return ch if ch is not None and 0 < port < self.max_ports else None

    def bound(self) -> dict[int, Channel]:
        return {p: c for p, c in self.ports.items() if c.state is not ECS.RESERVED}


# -- pending / mask bits in shared_info ------------------------------------------
_PENDING_W = SI_PENDING // 8   # word index of evtchn_pending[0] in shared_info
_MASK_W = SI_MASK // 8         # word index of evtchn_mask[0]


def _words(host: XenHost, d: Domain) -> memoryview | None:
    """The domain's shared_info page as 64-bit words (made once: the frame is allocated
    with the domain and kept for its life): vcpu_info[v] starts at word 8*v
    (upcall_pending is its first byte, evtchn_pending_sel word 8*v+1), evtchn_pending at
    ``_PENDING_W``, evtchn_mask at ``_MASK_W``. The hot paths read
    ``d.shared_info_words`` first and call this only when it is not made yet."""
    words = d.shared_info_words
    if words is None and d.shared_info_mfn is not None:
        words = host.mem.view(d.shared_info_mfn << PAGE_SHIFT, 1 << PAGE_SHIFT).cast("Q")
        d.shared_info_words = words
    return words


def evtchn_port_is_pending(host: XenHost, d: Domain, port: int) -> bool:
    w = _words(host, d)
    return w is not None and bool(w[_PENDING_W + (port >> 6)] >> (port & 63) & 1)


def evtchn_set_pending(host: XenHost, d: Domain, port: int) -> None:
    """evtchn_2l_set_pending: pending bit, then selector and upcall flag if unmasked."""
    ch = d.evtchn.ports.get(port) if d.evtchn else None  # (lookup, inlined: hot path)
    if ch is not None and ch.xen_consumer is not None:
        ch.xen_consumer(port)  # Xen's own end (an ioreq server's): no guest-visible event
        return
    w = d.shared_info_words or _words(host, d)
    if w is None:
        return
    vcpu_id = ch.notify_vcpu if ch else 0
    word, bit = port >> 6, 1 << (port & 63)
    pending = w[_PENDING_W + word]
    already = bool(pending & bit)
    w[_PENDING_W + word] = pending | bit
    masked = bool(w[_MASK_W + word] & bit)
    if host.trace.enabled:
        host.trace.emit_deferred(host.now(), d.domid, vcpu_id, _KIND_EVENT,
                                 "evtchn_set_pending", _set_pending_args, (port, masked, already))
    if already:
        return
    if not masked:
        vw, vi = w, 8 * vcpu_id
        if vcpu_id < len(d.vcpus) and d.vcpus[vcpu_id].vcpu_info_words is not None:
            vw, vi = d.vcpus[vcpu_id].vcpu_info_words, 0  # registered elsewhere
        vw[vi + 1] |= 1 << word  # evtchn_pending_sel
        if not vw[vi] & 0xFF:
            vw[vi] |= 1  # evtchn_upcall_pending (the first byte of vcpu_info)
        if vcpu_id < len(d.vcpus):
            host.vcpu_mark_events_pending(d.vcpus[vcpu_id], port)
    if d.poll_mask:  # some vCPU of d waits in SCHEDOP_poll
        host.evtchn_check_pollers(d, port)


_KIND_EVENT = Kind.EVENT


def _set_pending_args(port: int, masked: bool, already: bool) -> dict[str, object]:
    return {"port": port, "masked": masked, "already_pending": already}


def evtchn_clear_pending(host: XenHost, d: Domain, port: int) -> None:
    """What a guest's event handler does after handling ``port`` (used for Dom0)."""
    w = d.shared_info_words or _words(host, d)
    if w is not None:
        w[_PENDING_W + (port >> 6)] &= ~(1 << (port & 63)) & 0xFFFF_FFFF_FFFF_FFFF


def evtchn_unmask(host: XenHost, d: Domain, port: int) -> int:
    if d.evtchn is None or d.evtchn.lookup(port) is None:
        return -Errno.EINVAL
    w = _words(host, d)
    if w is None:
        return 0
    word, bit = port >> 6, 1 << (port & 63)
    w[_MASK_W + word] &= ~bit & 0xFFFF_FFFF_FFFF_FFFF
    if w[_PENDING_W + word] & bit:
        ch = d.evtchn.lookup(port)
        vcpu_id = ch.notify_vcpu if ch else 0
        vw, vi = w, 8 * vcpu_id
        if vcpu_id < len(d.vcpus) and d.vcpus[vcpu_id].vcpu_info_words is not None:
            vw, vi = d.vcpus[vcpu_id].vcpu_info_words, 0  # registered elsewhere
        sel = vw[vi + 1]
        vw[vi + 1] = sel | (1 << word)
        if not sel >> word & 1:
            vw[vi] = (vw[vi] & ~0xFF) | 1  # evtchn_upcall_pending = 1
            if vcpu_id < len(d.vcpus):
                host.vcpu_mark_events_pending(d.vcpus[vcpu_id], port)
    return 0


# -- operations -------------------------------------------------------------------
def _resolve(host: XenHost, d: Domain, domid: int) -> Domain | None:
    if domid in (DOMID_SELF, d.domid):
        return d
    return host.domains.get(domid)


def evtchn_alloc_unbound(host: XenHost, caller: Domain, dom: int, remote_dom: int) -> int:
    """A port of ``dom`` that ``remote_dom`` may bind; Dom0's toolstack (Python) calls this
    directly for a new guest's store and console ports: that is Dom0's hypercall."""
    port = _alloc_unbound(host, caller, dom, remote_dom)
    if caller.domid == 0:
        args: dict[str, object] = {"cmd": EvtchnOp.EVTCHNOP_alloc_unbound.name, "dom": dom,
                                   "remote_dom": remote_dom}
        if port > 0:
            args["result"] = {"port": port}
        dom0_hypercall(host, Hypercall.event_channel_op, args, min(port, 0))
    return port


def _alloc_unbound(host: XenHost, caller: Domain, dom: int, remote_dom: int) -> int:
    d = _resolve(host, caller, dom)
    if d is None:
        return -Errno.ESRCH
    if d is not caller and not caller.privileged:
        return -Errno.EPERM
    # Like Xen, only the id is kept: the remote domain need not exist yet.
    remote_domid = caller.domid if remote_dom == DOMID_SELF else remote_dom
    assert d.evtchn is not None
    port = d.evtchn.get_free_port()
    if port < 0:
        return port
    d.evtchn.ports[port] = Channel(ECS.UNBOUND, remote_domid=remote_domid)
    return port


def evtchn_bind_interdomain(host: XenHost, ld: Domain, remote_dom: int, rport: int) -> int:
    rd = _resolve(host, ld, remote_dom)
    if rd is None:
        return -Errno.ESRCH
    assert ld.evtchn is not None and rd.evtchn is not None
    rch = rd.evtchn.lookup(rport)
    if rch is None:
        return -Errno.EINVAL
    if rch.state is not ECS.UNBOUND or rch.remote_domid != ld.domid:
        return -Errno.EINVAL
    lport = ld.evtchn.get_free_port()
    if lport < 0:
        return lport
    ld.evtchn.ports[lport] = Channel(ECS.INTERDOMAIN, remote_domid=rd.domid, remote_port=rport)
    rch.state = ECS.INTERDOMAIN
    rch.remote_domid = ld.domid
    rch.remote_port = lport
    # Like Xen, make the new local port pending so the binder does not miss a notification.
    evtchn_set_pending(host, ld, lport)
    return lport


def evtchn_bind_virq(host: XenHost, d: Domain, virq: int, vcpu: int) -> int:
    if not 0 <= virq < NR_VIRQS:
        return -Errno.EINVAL
    if vcpu >= len(d.vcpus):
        return -Errno.ENOENT
    assert d.evtchn is not None
    if (virq, vcpu) in d.evtchn.virq_to_port:
        return -Errno.EEXIST
    port = d.evtchn.get_free_port()
    if port < 0:
        return port
    d.evtchn.ports[port] = Channel(ECS.VIRQ, notify_vcpu=vcpu, virq=virq)
    d.evtchn.virq_to_port[(virq, vcpu)] = port
    return port


def evtchn_bind_ipi(host: XenHost, d: Domain, vcpu: int) -> int:
    if vcpu >= len(d.vcpus):
        return -Errno.ENOENT
    assert d.evtchn is not None
    port = d.evtchn.get_free_port()
    if port < 0:
        return port
    d.evtchn.ports[port] = Channel(ECS.IPI, notify_vcpu=vcpu)
    return port


def evtchn_close(host: XenHost, d: Domain, port: int) -> int:
    assert d.evtchn is not None
    ch = d.evtchn.lookup(port)
    if ch is None or ch.state is ECS.RESERVED:
        return -Errno.EINVAL
    if ch.state is ECS.VIRQ:
        d.evtchn.virq_to_port.pop((ch.virq, ch.notify_vcpu), None)
    elif ch.state is ECS.INTERDOMAIN:
        rd = host.domains.get(ch.remote_domid)
        if rd is not None and rd.evtchn is not None:
            rch = rd.evtchn.lookup(ch.remote_port)
            if rch is not None and rch.state is ECS.INTERDOMAIN:
                rch.state = ECS.UNBOUND  # the peer goes back to waiting for us
                rch.remote_domid = d.domid
                rch.remote_port = 0
    del d.evtchn.ports[port]
    return 0


def evtchn_send(host: XenHost, d: Domain, port: int) -> int:
    assert d.evtchn is not None
    ch = d.evtchn.ports.get(port)  # (lookup, inlined: port 0 is the RESERVED entry)
    if ch is None or ch.state is ECS.RESERVED:
        return -Errno.EINVAL
    if ch.state is ECS.INTERDOMAIN:
        rd = host.domains.get(ch.remote_domid)
        if rd is not None:
            evtchn_set_pending(host, rd, ch.remote_port)
    elif ch.state is ECS.IPI:
        # Cross-modifying code: a kernel that rewrites its text (Linux's text_poke,
        # jump labels, kprobes) then IPIs every other CPU to serialize (sync_core).
        # Each xenlab vCPU keeps its own translated code, so the target drops it.
        if ch.notify_vcpu < len(d.vcpus):
            d.vcpus[ch.notify_vcpu].code_sync = True
        evtchn_set_pending(host, d, port)
    elif ch.state is not ECS.UNBOUND:  # unbound: silently dropped, as in Xen
        return -Errno.EINVAL
    return 0


def notify_via_xen_event_channel(host: XenHost, d: Domain, port: int) -> None:
    """Xen, not the guest, notifies through a port it consumes itself (an ioreq server's):
    the peer's port becomes pending."""
    assert d.evtchn is not None
    ch = d.evtchn.ports.get(port)
    if ch is not None and ch.state is ECS.INTERDOMAIN:
        rd = host.domains.get(ch.remote_domid)
        if rd is not None:
            evtchn_set_pending(host, rd, ch.remote_port)


def alloc_unbound_xen_event_channel(host: XenHost, d: Domain, vcpu: int, remote_domid: int,
                                    notification_fn: Callable[[int], None]) -> int:
    """An unbound port of ``d`` for ``remote_domid`` to bind, consumed by Xen itself."""
    assert d.evtchn is not None
    port = d.evtchn.get_free_port()
    if port < 0:
        return port
    d.evtchn.ports[port] = Channel(ECS.UNBOUND, notify_vcpu=vcpu, remote_domid=remote_domid,
                                   xen_consumer=notification_fn)
    return port


def send_guest_vcpu_virq(host: XenHost, v: Vcpu, virq: int) -> None:
    d = v.domain
    if d.evtchn is None:
        return
    port = d.evtchn.virq_to_port.get((virq, v.vcpu_id))
    if port is not None:
        evtchn_set_pending(host, d, port)


def evtchn_destroy(host: XenHost, d: Domain) -> None:
    """Close every port of a dying domain (peers see their ports go unbound)."""
    if d.evtchn is None:
        return
    for port in sorted(d.evtchn.bound()):
        evtchn_close(host, d, port)


# -- the hypercall ------------------------------------------------------------------
def _rw(ctx: HypercallContext, arg: int, cls: type[ctypes.Structure]) -> ctypes.Structure | None:
    raw = ctx.copy_from_guest(arg, ctypes.sizeof(cls))
    return None if raw is None else cls.from_buffer_copy(raw)


def do_event_channel_op(ctx: HypercallContext, cmd: int, arg: int) -> int:
    """``long do_event_channel_op(int cmd, XEN_GUEST_HANDLE_PARAM(void) arg)``"""
    cmd &= 0xFFFFFFFF
    ctx.decode(cmd=ctx.enum_name(EvtchnOp, cmd))
    host, d = ctx.host, ctx.domain
    if cmd == EvtchnOp.EVTCHNOP_alloc_unbound:
        a = _rw(ctx, arg, E.EvtchnAllocUnbound)
        if a is None:
            return -Errno.EFAULT
        ctx.decode(dom=a.dom, remote_dom=a.remote_dom)
        rc = evtchn_alloc_unbound(host, d, a.dom, a.remote_dom)
        if rc < 0:
            return rc
        a.port = rc
    elif cmd == EvtchnOp.EVTCHNOP_bind_interdomain:
        a = _rw(ctx, arg, E.EvtchnBindInterdomain)
        if a is None:
            return -Errno.EFAULT
        ctx.decode(remote_dom=a.remote_dom, remote_port=a.remote_port)
        rc = evtchn_bind_interdomain(host, d, a.remote_dom, a.remote_port)
        if rc < 0:
            return rc
        a.local_port = rc
    elif cmd == EvtchnOp.EVTCHNOP_bind_virq:
        a = _rw(ctx, arg, E.EvtchnBindVirq)
        if a is None:
            return -Errno.EFAULT
        ctx.decode(virq=ctx.enum_name(Virq, a.virq), vcpu=a.vcpu)
        rc = evtchn_bind_virq(host, d, a.virq, a.vcpu)
        if rc < 0:
            return rc
        a.port = rc
    elif cmd == EvtchnOp.EVTCHNOP_bind_ipi:
        a = _rw(ctx, arg, E.EvtchnBindIpi)
        if a is None:
            return -Errno.EFAULT
        ctx.decode(vcpu=a.vcpu)
        rc = evtchn_bind_ipi(host, d, a.vcpu)
        if rc < 0:
            return rc
        a.port = rc
    elif cmd in (EvtchnOp.EVTCHNOP_close, EvtchnOp.EVTCHNOP_send, EvtchnOp.EVTCHNOP_unmask):
        a = _rw(ctx, arg, E.EvtchnPort)
        if a is None:
            return -Errno.EFAULT
        ctx.decode(port=a.port)
        ch = d.evtchn.lookup(a.port) if d.evtchn is not None else None
        if (ch is not None and ch.xen_consumer is not None
                and cmd in (EvtchnOp.EVTCHNOP_close, EvtchnOp.EVTCHNOP_send)):
            return -Errno.EINVAL  # consumer_is_xen(): the guest cannot use Xen's own ports
        ops = {EvtchnOp.EVTCHNOP_close: evtchn_close, EvtchnOp.EVTCHNOP_send: evtchn_send,
               EvtchnOp.EVTCHNOP_unmask: evtchn_unmask}
        return ops[EvtchnOp(cmd)](host, d, a.port)
    elif cmd == EvtchnOp.EVTCHNOP_status:
        a = _rw(ctx, arg, E.EvtchnStatus)
        if a is None:
            return -Errno.EFAULT
        ctx.decode(dom=a.dom, port=a.port)
        target = _resolve(host, d, a.dom)
        if target is None:
            return -Errno.ESRCH
        if target is not d and not d.privileged:
            return -Errno.EPERM
        assert target.evtchn is not None
        ch = target.evtchn.lookup(a.port)
        if ch is None:
            return -Errno.EINVAL
        if ch.xen_consumer is not None:
            return -Errno.EACCES
        a.status = _STATUS[ch.state]
        a.vcpu = ch.notify_vcpu
        if ch.state is ECS.UNBOUND:
            a.u.unbound.dom = ch.remote_domid
        elif ch.state is ECS.INTERDOMAIN:
            a.u.interdomain.dom = ch.remote_domid
            a.u.interdomain.port = ch.remote_port
        elif ch.state is ECS.VIRQ:
            a.u.virq = ch.virq
    else:
        return -Errno.ENOSYS
    ctx.decode(result={k: getattr(a, k) for k in ("port", "local_port") if hasattr(a, k)})
    return 0 if ctx.copy_to_guest(arg, bytes(a)) else -Errno.EFAULT
