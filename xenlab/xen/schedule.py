"""Scheduling hypercalls: sched_op, set_timer_op and vcpu_op.

``SCHEDOP_yield`` gives the pCPU away, ``SCHEDOP_block`` sleeps until an
event channel is pending (enabling event delivery first, so no wake-up is
lost), ``SCHEDOP_poll`` sleeps until one of a list of ports is pending or a
timeout passes, ``SCHEDOP_shutdown`` ends the domain with a reason that the
toolstack turns into an ``on_poweroff`` / ``on_reboot`` / ``on_crash`` action.
``set_timer_op`` arms the vCPU's one-shot timer, which raises ``VIRQ_TIMER``.
``vcpu_op`` brings secondary vCPUs up and down, reads the runstate, arms and
stops the single-shot timer and the periodic one (``VIRQ_TIMER`` every period,
XenHost.set_periodic_timer), records the runstate and time areas (xenlab does
not refresh them yet), moves a vCPU's vcpu_info out of shared_info into a
frame of the guest's (register_vcpu_info, XenHost.map_vcpu_info) and marks an
NMI pending for the NMI callback.
``sched_op_compat`` is the pre-3.0.2 form of sched_op.

Real Xen: xen/common/sched/core.c (do_sched_op, do_poll, vcpu_block_enable_events),
xen/common/domain.c (do_vcpu_op), xen/arch/x86/pv/hypercall.c (do_set_timer_op)
"""

from __future__ import annotations

import ctypes
import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.sched import SchedOp, ShutdownReason
from xenlab.public.vcpu import VcpuGuestContext, VcpuOp
from xenlab.xen.pv_traps import pv_vcpu
from xenlab.xen.x86_domain import arch_set_info_guest

if TYPE_CHECKING:
    from xenlab.xen.domain import Vcpu
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["do_sched_op", "do_sched_op_compat", "do_set_timer_op", "do_vcpu_op"]

MAX_POLL_PORTS = 128
MILLISECS_1 = 1_000_000
STIME_DELTA_MAX = (1 << 62) - 1


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
    if cmd == VcpuOp.VCPUOP_initialise:
        if not d.is_pv:
            return -Errno.EINVAL   # an HVM vCPU takes a vcpu_hvm_context: not in xenlab
        raw = ctx.copy_from_guest(arg, ctypes.sizeof(VcpuGuestContext))
        if raw is None:
            return -Errno.EFAULT
        c = VcpuGuestContext.from_buffer_copy(raw)
        ctx.decode(rip=hex(c.user_regs.rip), rsp=hex(c.user_regs.rsp),
                   cr3=hex(c.ctrlreg[3]), gdt_frames=[hex(f) for f in
                                                      c.gdt_frames[:(c.gdt_ents + 511) // 512]])
        rc, why = arch_set_info_guest(ctx.host, v, c)
        if why:
            ctx.decode(refused=why)
        return rc
    if cmd == VcpuOp.VCPUOP_get_runstate_info:
        return 0 if ctx.copy_to_guest(arg, _runstate_info(ctx, v)) else -Errno.EFAULT
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
    if cmd == VcpuOp.VCPUOP_set_periodic_timer:
        raw = ctx.copy_from_guest(arg, 8)
        if raw is None:
            return -Errno.EFAULT
        (period,) = struct.unpack("<Q", raw)
        ctx.decode(period_ns=period)
        if period < MILLISECS_1 or period > STIME_DELTA_MAX:
            return -Errno.EINVAL
        ctx.host.set_periodic_timer(v, period)
        return 0
    if cmd == VcpuOp.VCPUOP_stop_periodic_timer:
        ctx.host.set_periodic_timer(v, 0)
        return 0
    if cmd in (VcpuOp.VCPUOP_register_runstate_memory_area,
               VcpuOp.VCPUOP_register_vcpu_time_memory_area):
        raw = ctx.copy_from_guest(arg, 8)
        if raw is None:
            return -Errno.EFAULT
        (va,) = struct.unpack("<Q", raw)
        ctx.decode(addr=hex(va))
        if va and not _handle_okay(va):
            return -Errno.EFAULT
        pv = pv_vcpu(v)
        if cmd == VcpuOp.VCPUOP_register_vcpu_time_memory_area:
            pv.time_area = va
            return 0
        pv.runstate_area = va
        if va and v is ctx.vcpu:  # written at once for the caller, as Xen does
            ctx.copy_to_guest(va, _runstate_info(ctx, v))
        return 0
    if cmd == VcpuOp.VCPUOP_register_vcpu_info:
        # struct vcpu_register_vcpu_info { uint64_t mfn; uint32_t offset; uint32_t rsvd; }
        raw = ctx.copy_from_guest(arg, 16)
        if raw is None:
            return -Errno.EFAULT
        mfn, offset = struct.unpack("<QI4x", raw)
        ctx.decode(mfn=hex(mfn), offset=offset)
        if v is not ctx.vcpu and v.online:
            return -Errno.EINVAL  # only itself, or a vCPU that is down
        frame = mfn if d.is_pv else d.pfn_to_mfn(mfn)
        return ctx.host.map_vcpu_info(v, frame, offset)
    if cmd == VcpuOp.VCPUOP_send_nmi:
        pv_vcpu(v).nmi_pending = True  # delivered through the NMI callback, if any
        if v.cpu is not None and v is ctx.vcpu:
            v.cpu.request_stop()       # at once: Xen's next return to the guest
        return 0
    if cmd == VcpuOp.VCPUOP_get_physid:
        return -Errno.EINVAL  # only the hardware domain's pinned vCPUs have one
    return -Errno.ENOSYS


def _handle_okay(va: int) -> bool:
    """guest_handle_okay: not in Xen's half of the address space."""
    return va < 1 << 47 or va >= 0xFFFF880000000000


def _runstate_info(ctx: HypercallContext, v: Vcpu) -> bytes:
    now = ctx.host.now()
    times = list(v.runstate_time)
    times[v.runstate] += max(0, now - v.state_entry_time)
    return struct.pack("<i4xQ4Q", int(v.runstate), v.state_entry_time, *times)


def do_sched_op_compat(ctx: HypercallContext, cmd: int, arg: int) -> int:
    """``long do_sched_op_compat(int cmd, unsigned long arg)``: the pre-3.0.2 sched_op,
    whose shutdown reason is the argument itself."""
    cmd &= 0xFFFFFFFF
    ctx.decode(cmd=ctx.enum_name(SchedOp, cmd))
    if cmd == SchedOp.SCHEDOP_yield:
        ctx.host.vcpu_yield(ctx.vcpu)
        return 0
    if cmd == SchedOp.SCHEDOP_block:
        ctx.host.vcpu_block(ctx.vcpu)
        return 0
    if cmd == SchedOp.SCHEDOP_shutdown:
        ctx.decode(reason=ctx.enum_name(ShutdownReason, arg & 0xFF))
        ctx.host.domain_shutdown(ctx.domain, arg & 0xFF)
        return 0
    return -Errno.ENOSYS
