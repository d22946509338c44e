"""Scheduling hypercalls: sched_op, set_timer_op and vcpu_op.

``SCHEDOP_yield`` gives the pCPU away, ``SCHEDOP_block`` sleeps until an
event channel is pending (enabling event delivery first, so no wake-up is
lost), ``SCHEDOP_poll`` sleeps until one of a list of ports is pending or a
timeout passes, ``SCHEDOP_shutdown`` ends the domain with a reason that the
toolstack turns into an ``on_poweroff`` / ``on_reboot`` / ``on_crash`` action.
``set_timer_op`` arms the vCPU's one-shot timer, which raises ``VIRQ_TIMER``.

Real Xen: xen/common/sched/core.c (do_sched_op, do_poll, vcpu_block_enable_events),
xen/common/domain.c (do_vcpu_op), xen/arch/x86/pv/hypercall.c (do_set_timer_op)
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.sched import SchedOp, ShutdownReason
from xenlab.public.vcpu import VcpuOp

if TYPE_CHECKING:
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["do_sched_op", "do_set_timer_op", "do_vcpu_op"]

MAX_POLL_PORTS = 128


def do_sched_op(ctx: HypercallContext, cmd: int, arg: int) -> int:
    """``long do_sched_op(int cmd, XEN_GUEST_HANDLE_PARAM(void) arg)``"""
    cmd &= 0xFFFFFFFF
    ctx.decode(cmd=ctx.enum_name(SchedOp, cmd))
    host, d, v = ctx.host, ctx.domain, ctx.vcpu
    if cmd == SchedOp.SCHEDOP_yield:
        host.vcpu_yield(v)
        return 0
    if cmd == SchedOp.SCHEDOP_block:
        host.vcpu_block(v)
        return 0
    if cmd in (SchedOp.SCHEDOP_shutdown, SchedOp.SCHEDOP_shutdown_code):
        raw = ctx.copy_from_guest(arg, 4)
        if raw is None:
            return -Errno.EFAULT
        reason = struct.unpack("<I", raw)[0]
        ctx.decode(reason=ctx.enum_name(ShutdownReason, reason))
        if cmd == SchedOp.SCHEDOP_shutdown_code:
            d.shutdown_code = reason
            return 0
        host.domain_shutdown(d, reason)
        return 0
    if cmd == SchedOp.SCHEDOP_remote_shutdown:
        raw = ctx.copy_from_guest(arg, 8)
        if raw is None:
            return -Errno.EFAULT
        domid, reason = struct.unpack("<HxxI", raw)
        ctx.decode(domain_id=domid, reason=ctx.enum_name(ShutdownReason, reason))
        if not d.privileged:
            return -Errno.EPERM
        target = host.domains.get(domid)
        if target is None:
            return -Errno.ESRCH
        host.domain_shutdown(target, reason)
        return 0
    if cmd == SchedOp.SCHEDOP_poll:
        raw = ctx.copy_from_guest(arg, 24)
        if raw is None:
            return -Errno.EFAULT
        ports_va, nr_ports, timeout = struct.unpack("<QI4xQ", raw)
        ctx.decode(nr_ports=nr_ports, timeout=timeout)
        if nr_ports > MAX_POLL_PORTS:
            return -Errno.EINVAL
        raw_ports = ctx.copy_from_guest(ports_va, 4 * nr_ports)
        if raw_ports is None:
            return -Errno.EFAULT
        ports = struct.unpack(f"<{nr_ports}I", raw_ports)
        ctx.decode(ports=list(ports))
        return host.vcpu_poll(v, ports, timeout)
    return -Errno.ENOSYS


def do_set_timer_op(ctx: HypercallContext, timeout: int) -> int:
    """``long do_set_timer_op(s_time_t timeout)``: 0 cancels; the past fires at once."""
    ctx.decode(timeout=timeout)
    ctx.host.set_timer(ctx.vcpu, timeout if timeout else None)
    return 0


def do_vcpu_op(ctx: HypercallContext, cmd: int, vcpuid: int, arg: int) -> int:
    """``long do_vcpu_op(int cmd, unsigned int vcpuid, XEN_GUEST_HANDLE_PARAM(void) arg)``"""
    cmd &= 0xFFFFFFFF
    vcpuid &= 0xFFFFFFFF
    ctx.decode(cmd=ctx.enum_name(VcpuOp, cmd), vcpuid=vcpuid)
    d = ctx.domain
    if vcpuid >= len(d.vcpus):
        return -Errno.ENOENT
    v = d.vcpus[vcpuid]
    if cmd == VcpuOp.VCPUOP_is_up:
        return 1 if v.online else 0
    if cmd == VcpuOp.VCPUOP_get_runstate_info:
        now = ctx.host.now()
        times = list(v.runstate_time)
        times[v.runstate] += max(0, now - v.state_entry_time)
        data = struct.pack("<i4xQ4Q", int(v.runstate), v.state_entry_time, *times)
        return 0 if ctx.copy_to_guest(arg, data) else -Errno.EFAULT
    if cmd == VcpuOp.VCPUOP_down:
        return ctx.host.vcpu_down(v)
    if cmd == VcpuOp.VCPUOP_up:
        return ctx.host.vcpu_up(v)
    if cmd == VcpuOp.VCPUOP_set_singleshot_timer:
        if v is not ctx.vcpu:
            return -Errno.EINVAL
        raw = ctx.copy_from_guest(arg, 16)
        if raw is None:
            return -Errno.EFAULT
        timeout, flags = struct.unpack("<QI4x", raw)
        ctx.decode(timeout_abs_ns=timeout, flags=flags)
        if flags & 1 and timeout < ctx.host.now():  # VCPU_SSHOTTMR_future
            return -Errno.ETIME
        ctx.host.set_timer(v, timeout)
        return 0
    if cmd == VcpuOp.VCPUOP_stop_singleshot_timer:
        if v is not ctx.vcpu:
            return -Errno.EINVAL
        ctx.host.set_timer(v, None)
        return 0
    return -Errno.ENOSYS
