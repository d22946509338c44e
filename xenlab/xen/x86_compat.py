"""Legacy hypercalls a 64-bit PV kernel may still make: event_channel_op_compat and
physdev_op_compat.

Before Xen 3.0.2 these two hypercalls took one argument, a pointer to a
struct that starts with the command (``struct evtchn_op`` / ``struct
physdev_op``: ``uint32_t cmd`` and then the union of the commands' arguments).
Xen still answers them by reading the command and calling today's hypercall
with a pointer to the union.

Real Xen: xen/arch/x86/compat.c (do_physdev_op_compat, do_event_channel_op_compat)
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.xen import event_channel, physdev

if TYPE_CHECKING:
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["do_event_channel_op_compat", "do_physdev_op_compat"]

EVTCHN_OP_SIZE = 4 + 24          # cmd, then the largest member (evtchn_status)
PHYSDEV_OP_SIZE = 8 + 16         # cmd (the union is 8-byte aligned), then the union
PHYSDEVOP_IRQ_UNMASK_NOTIFY = 4
_PHYSDEV_COMPAT = frozenset((5, 6, 7, 8, 9))   # irq_status_query .. apic_write
_EVTCHN_COMPAT = frozenset(range(0, 11))       # bind_interdomain .. reset


def do_event_channel_op_compat(ctx: HypercallContext, uop: int) -> int:
    """``long do_event_channel_op_compat(XEN_GUEST_HANDLE_PARAM(evtchn_op_t) uop)``"""
    raw = ctx.copy_from_guest(uop, EVTCHN_OP_SIZE)
    if raw is None:
        return -Errno.EFAULT
    (cmd,) = struct.unpack_from("<I", raw)
    ctx.decode(compat_cmd=cmd)
    if cmd not in _EVTCHN_COMPAT:
        return -Errno.ENOSYS
    return event_channel.do_event_channel_op(ctx, cmd, uop + 4)


def do_physdev_op_compat(ctx: HypercallContext, uop: int) -> int:
    """``long do_physdev_op_compat(XEN_GUEST_HANDLE_PARAM(physdev_op_t) uop)``"""
    raw = ctx.copy_from_guest(uop, PHYSDEV_OP_SIZE)
    if raw is None:
        return -Errno.EFAULT
    (cmd,) = struct.unpack_from("<I", raw)
    ctx.decode(compat_cmd=cmd)
    if cmd == PHYSDEVOP_IRQ_UNMASK_NOTIFY:
        return 0  # pirq_guest_unmask: no PIRQ of a DomU is bound here
    if cmd not in _PHYSDEV_COMPAT:
        return -Errno.ENOSYS
    return physdev.do_physdev_op(ctx, cmd, uop + 8)
