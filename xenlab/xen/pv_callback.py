"""PV callbacks: set_callbacks, callback_op (event, failsafe, syscall, syscall32,
sysenter, NMI), event upcalls through create_bounce_frame, and iret.

A PV kernel tells Xen where its event handler is (``HYPERVISOR_set_callbacks``
or ``CALLBACKOP_register`` with ``CALLBACKTYPE_event``). When Xen is about to
return to the guest and ``vcpu_info.evtchn_upcall_pending`` is set while
``evtchn_upcall_mask`` is clear, it *bounces* the vCPU into that handler:
it pushes ``RCX, R11, RIP, CS, RFLAGS, RSP, SS`` on the guest's stack (the
frame is 16-byte aligned, RCX lowest), masks further upcalls, and jumps to
the handler. The handler scans the pending bits, handles them and returns
with ``HYPERVISOR_iret``, which pops ``struct iret_context`` (``rax, r11,
rcx, flags, rip, cs, rflags, rsp, ss``) and unmasks events again if the saved
RFLAGS had IF set. The same ``iret`` ends a bounced exception (pv_traps.py)
and, with ``VGCF_in_syscall``, a system call: a frame whose CS has RPL 3
returns to guest user mode and its page tables (toggle_guest_mode).
``CALLBACKF_mask_events`` makes entering the failsafe, syscall, syscall32 or
sysenter callback mask events; the NMI callback is trap table entry 2. The
event, failsafe, syscall, syscall32 and sysenter callbacks cannot be
unregistered (-EINVAL), only replaced.

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
from xenlab.public.xen import FLAT_KERNEL_CS
from xenlab.xen.pv_traps import (
    TBF_INTERRUPT,
    TrapInfo,
    VGCF_failsafe_disables_events,
    VGCF_in_syscall,
    VGCF_syscall_disables_events,
    create_bounce_frame,
    pv_vcpu,
    toggle_guest_mode,
)
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.xen.domain import Vcpu
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.setup import XenHost

__all__ = ["deliver_upcall", "do_callback_op", "do_iret", "do_nmi_op", "do_set_callbacks",
           "register_guest_callback"]

CALLBACKTYPE_event = 0
CALLBACKTYPE_failsafe = 1
CALLBACKTYPE_syscall = 2
CALLBACKTYPE_sysenter_deprecated = 3
CALLBACKTYPE_nmi = 4
CALLBACKTYPE_sysenter = 5
CALLBACKTYPE_syscall32 = 7
CALLBACKF_mask_events = 1 << 0
CALLBACKOP_register = 0
CALLBACKOP_unregister = 1
_CALLBACK_NAMES = {0: "event", 1: "failsafe", 2: "syscall", 4: "nmi", 5: "sysenter",
                   7: "syscall32"}
EFLAGS_IF = 1 << 9
_EFLAGS_IOPL_VM = (3 << 12) | (1 << 17)
IRET_CONTEXT = struct.Struct("<9Q")  # rax r11 rcx flags rip cs rflags rsp ss
TRAP_nmi = 2


def _canonical(va: int) -> bool:
    return (va >> 47) in (0, 0x1FFFF) and not 0xFFFF800000000000 <= va < 0xFFFF880000000000


def register_guest_callback(v: Vcpu, ctype: int, flags: int, address: int) -> int:
    """register_guest_callback (x86-64): the entry points, and whether entering each
    masks events (CALLBACKF_mask_events -> VGCF_*_disables_events)."""
    if not _canonical(address):
        return -Errno.EINVAL
    pv = pv_vcpu(v)
    mask = bool(flags & CALLBACKF_mask_events)
    if ctype == CALLBACKTYPE_failsafe:
        pv.vgc_flags = (pv.vgc_flags & ~VGCF_failsafe_disables_events) | (
            VGCF_failsafe_disables_events if mask else 0)
    elif ctype == CALLBACKTYPE_syscall:
        pv.vgc_flags = (pv.vgc_flags & ~VGCF_syscall_disables_events) | (
            VGCF_syscall_disables_events if mask else 0)
    elif ctype in (CALLBACKTYPE_syscall32, CALLBACKTYPE_sysenter):
        pv.disables_events[_CALLBACK_NAMES[ctype]] = mask
    elif ctype == CALLBACKTYPE_nmi:  # register_guest_nmi_callback: trap_ctxt[2], events off
        pv.trap_ctxt[TRAP_nmi] = TrapInfo(TRAP_nmi, 4, FLAT_KERNEL_CS, address)
    elif ctype != CALLBACKTYPE_event:
        return -Errno.ENOSYS
    v.callbacks[_CALLBACK_NAMES[ctype]] = address
    return 0


def do_set_callbacks(ctx: HypercallContext, event: int, failsafe: int, syscall: int) -> int:
    """``long do_set_callbacks(unsigned long event, unsigned long failsafe, unsigned long
    syscall)`` (x86-64): the three registered with no flags."""
    ctx.decode(event_address=hex(event), failsafe_address=hex(failsafe),
               syscall_address=hex(syscall))
    if not ctx.domain.is_pv:
        return -Errno.ENOSYS
    if not all(_canonical(a) for a in (event, failsafe, syscall)):
        return -Errno.EINVAL
    for ctype, address in ((CALLBACKTYPE_event, event), (CALLBACKTYPE_failsafe, failsafe),
                           (CALLBACKTYPE_syscall, syscall)):
        register_guest_callback(ctx.vcpu, ctype, 0, address)
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
        return register_guest_callback(ctx.vcpu, ctype, flags, address)
    if cmd == CALLBACKOP_unregister:
        raw = ctx.copy_from_guest(arg, 2)
        if raw is None:
            return -Errno.EFAULT
        ctype = struct.unpack("<H", raw)[0]
        ctx.decode(type=_CALLBACK_NAMES.get(ctype, ctype))
        if ctype == CALLBACKTYPE_nmi:   # unregister_guest_nmi_callback
            pv_vcpu(ctx.vcpu).trap_ctxt.pop(TRAP_nmi, None)
            ctx.vcpu.callbacks.pop("nmi", None)
            return 0
        if ctype in _CALLBACK_NAMES:    # the others cannot be taken away
            return -Errno.EINVAL
        return -Errno.ENOSYS
    return -Errno.ENOSYS


def do_nmi_op(ctx: HypercallContext, cmd: int, arg: int) -> int:
    """``long do_nmi_op(unsigned int cmd, XEN_GUEST_HANDLE_PARAM(void) arg)``:
    XENNMI_register_callback (struct xennmi_callback) and XENNMI_unregister_callback."""
    cmd &= 0xFFFFFFFF
    ctx.decode(cmd={0: "XENNMI_register_callback", 1: "XENNMI_unregister_callback"}.get(
        cmd, cmd))
    if cmd == 0:
        raw = ctx.copy_from_guest(arg, 16)
        if raw is None:
            return -Errno.EFAULT
        address = struct.unpack_from("<Q", raw)[0]
        ctx.decode(handler_address=hex(address))
        return register_guest_callback(ctx.vcpu, CALLBACKTYPE_nmi, 0, address)
    if cmd == 1:
        pv_vcpu(ctx.vcpu).trap_ctxt.pop(TRAP_nmi, None)
        ctx.vcpu.callbacks.pop("nmi", None)
        return 0
    return -Errno.ENOSYS


def do_iret(ctx: HypercallContext) -> int:
    """``long do_iret(void)``: return from an event handler, a bounced exception or a
    syscall. A frame with CS RPL 3 returns to user mode (its page tables must exist);
    ``VGCF_in_syscall`` in ``flags`` returns as ``sysret`` does (RCX and R11 are not
    restored: they hold RIP and RFLAGS)."""
    cpu, v = ctx.cpu, ctx.vcpu
    rsp = cpu.reg("rsp")
    raw = ctx.copy_from_guest(rsp, IRET_CONTEXT.size)
    if raw is None:
        ctx.host.domain_crash(ctx.domain, v, f"bad iret frame at {rsp:#x}")
        return -Errno.EFAULT
    rax, r11, rcx, flags, rip, cs, rflags, new_rsp, _ss = IRET_CONTEXT.unpack(raw)
    ctx.decode(rip=hex(rip), rsp=hex(new_rsp), rflags=hex(rflags), cs=hex(cs),
               **({"flags": "VGCF_in_syscall"} if flags & VGCF_in_syscall else {}))
    if not _canonical(rip) or not _canonical(new_rsp):
        ctx.host.domain_crash(ctx.domain, v, f"iret to a non-canonical address {rip:#x}")
        return -Errno.EINVAL
    if cs & 3 == 3 and not v.user_mode:  # returning to user mode
        if not v.guest_table_user:
            ctx.host.domain_crash(ctx.domain, v, "Guest switching to user mode with no "
                                  "user page tables")
            return -Errno.EINVAL
        toggle_guest_mode(ctx.host, v)
    events_on = bool(rflags & EFLAGS_IF)  # the saved IF is the saved !upcall_mask
    rflags = (rflags & ~_EFLAGS_IOPL_VM) | EFLAGS_IF | 2
    if v.pv is not None:
        v.pv.nmi_masked = False     # async_exception_cleanup
    if flags & VGCF_in_syscall:
        rcx, r11 = rip, rflags
    # The registers are loaded when this hypercall returns to the guest.
    v.pending_regs = {"rax": rax, "r11": r11, "rcx": rcx, "rip": rip, "rflags": rflags,
                      "rsp": new_rsp}
    vi = ctx.host.vcpu_info_address(v)
    if vi is not None:
        ctx.host.mem.write(vi + 1, b"\x00" if events_on else b"\x01")
    cpu.request_stop()
    return rax  # RAX is restored from the frame


def deliver_upcall(host: XenHost, v: Vcpu) -> bool:
    """test_guest_events: enter the guest's event handler if an upcall is due, with
    create_bounce_frame's frame (TBF_INTERRUPT: events masked in the handler)."""
    pv = v.pv
    if pv is not None and pv.nmi_pending and not pv.nmi_masked and TRAP_nmi in pv.trap_ctxt:
        # process_nmi: the NMI callback first, NMIs masked until the handler's iret
        pv.nmi_pending = False
        ti = pv.trap_ctxt[TRAP_nmi]
        if create_bounce_frame(host, v, ti.address, TBF_INTERRUPT, what="NMI"):
            pv.nmi_masked = True
            host.trace.emit(host.now(), v.domain.domid, v.vcpu_id, Kind.EVENT, "nmi",
                            {"handler": hex(ti.address), "frame": hex(v.cpu.reg("rsp"))
                             if v.cpu is not None else None})
        return True
    handler = v.callbacks.get("event")
    cpu = v.cpu
    vi = host.vcpu_info_address(v)
    if not handler or cpu is None or vi is None:
        return False
    pending, mask = host.mem.read(vi, 2)
    if not pending or mask:
        return False
    if not create_bounce_frame(host, v, handler, TBF_INTERRUPT, what="event upcall"):
        return False
    host.trace.emit(host.now(), v.domain.domid, v.vcpu_id, Kind.EVENT, "upcall",
                    {"handler": hex(handler), "frame": hex(cpu.reg("rsp"))})
    return True
