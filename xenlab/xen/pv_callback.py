"""Event upcalls for PV guests: set_callbacks, callback_op, the bounce frame, and iret.

A PV kernel tells Xen where its event handler is (``HYPERVISOR_set_callbacks``
or ``CALLBACKOP_register`` with ``CALLBACKTYPE_event``). When Xen is about to
return to the guest and ``vcpu_info.evtchn_upcall_pending`` is set while
``evtchn_upcall_mask`` is clear, it *bounces* the vCPU into that handler:
it pushes ``RCX, R11, RIP, CS, RFLAGS, RSP, SS`` on the guest's stack (the
frame is 16-byte aligned, RCX lowest), masks further upcalls, and jumps to
the handler. The handler scans the pending bits, handles them and returns
with ``HYPERVISOR_iret``, which pops ``struct iret_context`` (``rax, r11,
rcx, flags, rip, cs, rflags, rsp, ss``) and unmasks events again if the saved
RFLAGS had IF set.

xenlab delivers upcalls when Xen schedules the vCPU in (and stops a running
vCPU at once when one of its events becomes pending), so a handler runs
within a block boundary of the event, as on real Xen it runs on the next
return to the guest.

Real Xen: xen/arch/x86/pv/callback.c (do_set_callbacks, do_callback_op),
xen/arch/x86/x86_64/entry.S (create_bounce_frame), xen/arch/x86/pv/iret.c (do_iret)
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.xen import FLAT_KERNEL_CS, FLAT_KERNEL_SS
from xenlab.xen.guest_access import GuestFault, copy_to_guest
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.xen.domain import Vcpu
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.setup import XenHost

__all__ = ["deliver_upcall", "do_callback_op", "do_iret", "do_set_callbacks"]

CALLBACKTYPE_event = 0
CALLBACKTYPE_failsafe = 1
CALLBACKTYPE_syscall = 2
CALLBACKOP_register = 0
CALLBACKOP_unregister = 1
_CALLBACK_NAMES = {0: "event", 1: "failsafe", 2: "syscall"}
EFLAGS_IF = 1 << 9
_EFLAGS_CLEAR = (1 << 8) | (1 << 14) | (1 << 16) | (1 << 17)  # TF NT RF VM
IRET_CONTEXT = struct.Struct("<9Q")  # rax r11 rcx flags rip cs rflags rsp ss


def _canonical(va: int) -> bool:
    return (va >> 47) in (0, 0x1FFFF) and not 0xFFFF800000000000 <= va < 0xFFFF880000000000


def do_set_callbacks(ctx: HypercallContext, event: int, failsafe: int, syscall: int) -> int:
    """``long do_set_callbacks(unsigned long event, unsigned long failsafe, unsigned long
    syscall)`` (x86-64)."""
    ctx.decode(event_address=hex(event), failsafe_address=hex(failsafe),
               syscall_address=hex(syscall))
    if not ctx.domain.is_pv:
        return -Errno.ENOSYS
    if not all(_canonical(a) for a in (event, failsafe, syscall)):
        return -Errno.EINVAL
    cb = ctx.vcpu.callbacks
    cb["event"], cb["failsafe"], cb["syscall"] = event, failsafe, syscall
    return 0


def do_callback_op(ctx: HypercallContext, cmd: int, arg: int) -> int:
    """``long do_callback_op(int cmd, XEN_GUEST_HANDLE_PARAM(const_void) arg)``"""
    cmd &= 0xFFFFFFFF
    ctx.decode(cmd={0: "CALLBACKOP_register", 1: "CALLBACKOP_unregister"}.get(cmd, cmd))
    if not ctx.domain.is_pv:
        return -Errno.ENOSYS
    if cmd == CALLBACKOP_register:
        raw = ctx.copy_from_guest(arg, 16)
        if raw is None:
            return -Errno.EFAULT
        ctype, flags, address = struct.unpack("<HH4xQ", raw)
        ctx.decode(type=_CALLBACK_NAMES.get(ctype, ctype), flags=flags, address=hex(address))
        if ctype not in _CALLBACK_NAMES:
            return -Errno.EINVAL
        if not _canonical(address):
            return -Errno.EINVAL
        ctx.vcpu.callbacks[_CALLBACK_NAMES[ctype]] = address
        return 0
    if cmd == CALLBACKOP_unregister:
        raw = ctx.copy_from_guest(arg, 2)
        if raw is None:
            return -Errno.EFAULT
        ctype = struct.unpack("<H", raw)[0]
        if ctype not in _CALLBACK_NAMES:
            return -Errno.EINVAL
        ctx.vcpu.callbacks.pop(_CALLBACK_NAMES[ctype], None)
        return 0
    return -Errno.ENOSYS


def do_iret(ctx: HypercallContext) -> int:
    """``long do_iret(void)``: return from an event handler (or a bounced exception)."""
    cpu, v = ctx.cpu, ctx.vcpu
    rsp = cpu.reg("rsp")
    raw = ctx.copy_from_guest(rsp, IRET_CONTEXT.size)
    if raw is None:
        ctx.host.domain_crash(ctx.domain, v, f"bad iret frame at {rsp:#x}")
        return -Errno.EFAULT
    rax, r11, rcx, _flags, rip, _cs, rflags, new_rsp, _ss = IRET_CONTEXT.unpack(raw)
    ctx.decode(rip=hex(rip), rsp=hex(new_rsp), rflags=hex(rflags))
    if not _canonical(rip) or not _canonical(new_rsp):
        ctx.host.domain_crash(ctx.domain, v, f"iret to a non-canonical address {rip:#x}")
        return -Errno.EINVAL
    # The registers are loaded when this hypercall returns to the guest.
    v.pending_regs = {"rax": rax, "r11": r11, "rcx": rcx, "rip": rip,
                      "rflags": (rflags | EFLAGS_IF | 2) & ~_EFLAGS_CLEAR, "rsp": new_rsp}
    vi = ctx.host.vcpu_info_address(v)
    if vi is not None:
        ctx.host.mem.write(vi + 1, b"\x00" if rflags & EFLAGS_IF else b"\x01")
    cpu.request_stop()
    return rax  # RAX is restored from the frame


def deliver_upcall(host: XenHost, v: Vcpu) -> bool:
    """create_bounce_frame: enter the guest's event handler if an upcall is due."""
    handler = v.callbacks.get("event")
    cpu = v.cpu
    vi = host.vcpu_info_address(v)
    if not handler or cpu is None or vi is None:
        return False
    pending, mask = host.mem.read(vi, 2)
    if not pending or mask:
        return False
    d = v.domain
    cr3 = cpu.reg("cr3")
    rsp = cpu.reg("rsp")
    frame_rsp = (rsp & ~0xF) - 7 * 8
    rflags = cpu.reg("rflags")
    frame = struct.pack("<7Q", cpu.reg("rcx"), cpu.reg("r11"), cpu.reg("rip"), FLAT_KERNEL_CS,
                        rflags | EFLAGS_IF, rsp, FLAT_KERNEL_SS)
    try:
        copy_to_guest(host.mem, d, cr3, frame_rsp, frame)
    except GuestFault as fault:
        host.domain_crash(d, v, f"cannot push the event upcall frame: {fault}")
        return False
    host.mem.write(vi + 1, b"\x01")  # evtchn_upcall_mask: no nested upcalls
    cpu.set_reg("rsp", frame_rsp)
    cpu.set_reg("rip", handler)
    cpu.set_reg("rflags", (rflags | EFLAGS_IF | 2) & ~_EFLAGS_CLEAR)
    host.trace.emit(host.now(), d.domid, v.vcpu_id, Kind.EVENT, "upcall",
                    {"handler": hex(handler), "frame": hex(frame_rsp)})
    return True


