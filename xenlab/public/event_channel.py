"""Event channel operations, their argument structures and port states.

Real Xen: xen/include/public/event_channel.h
"""

from __future__ import annotations

import ctypes
import enum

__all__ = ["EVTCHN_2L_NR_CHANNELS", "EvtchnOp", "EvtchnStatusKind"]

#: The 2-level ABI on 64-bit guests: 64 words of 64 pending bits.
EVTCHN_2L_NR_CHANNELS = 64 * 64


class EvtchnOp(enum.IntEnum):
    EVTCHNOP_bind_interdomain = 0
    EVTCHNOP_bind_virq = 1
    EVTCHNOP_bind_pirq = 2
    EVTCHNOP_close = 3
    EVTCHNOP_send = 4
    EVTCHNOP_status = 5
    EVTCHNOP_alloc_unbound = 6
    EVTCHNOP_bind_ipi = 7
    EVTCHNOP_bind_vcpu = 8
    EVTCHNOP_unmask = 9
    EVTCHNOP_reset = 10
    EVTCHNOP_init_control = 11
    EVTCHNOP_expand_array = 12
    EVTCHNOP_set_priority = 13


class EvtchnStatusKind(enum.IntEnum):
    """``EVTCHNSTAT_*``"""

    EVTCHNSTAT_closed = 0
    EVTCHNSTAT_unbound = 1
    EVTCHNSTAT_interdomain = 2
    EVTCHNSTAT_pirq = 3
    EVTCHNSTAT_virq = 4
    EVTCHNSTAT_ipi = 5


class EvtchnAllocUnbound(ctypes.Structure):
    _fields_ = (("dom", ctypes.c_uint16), ("remote_dom", ctypes.c_uint16),
                ("port", ctypes.c_uint32))


class EvtchnBindInterdomain(ctypes.Structure):
    _fields_ = (("remote_dom", ctypes.c_uint16), ("remote_port", ctypes.c_uint32),
                ("local_port", ctypes.c_uint32))


class EvtchnBindVirq(ctypes.Structure):
    _fields_ = (("virq", ctypes.c_uint32), ("vcpu", ctypes.c_uint32),
                ("port", ctypes.c_uint32))


class EvtchnBindIpi(ctypes.Structure):
    _fields_ = (("vcpu", ctypes.c_uint32), ("port", ctypes.c_uint32))


class EvtchnPort(ctypes.Structure):
    """evtchn_close, evtchn_send and evtchn_unmask all hold just a port."""

    _fields_ = (("port", ctypes.c_uint32),)


class _StatusUnbound(ctypes.Structure):
    _fields_ = (("dom", ctypes.c_uint16),)


class _StatusInterdomain(ctypes.Structure):
    _fields_ = (("dom", ctypes.c_uint16), ("port", ctypes.c_uint32))


class _StatusU(ctypes.Union):
    _fields_ = (("unbound", _StatusUnbound), ("interdomain", _StatusInterdomain),
                ("pirq", ctypes.c_uint32), ("virq", ctypes.c_uint32))


class EvtchnStatus(ctypes.Structure):
    _fields_ = (("dom", ctypes.c_uint16), ("port", ctypes.c_uint32),
                ("status", ctypes.c_uint32), ("vcpu", ctypes.c_uint32), ("u", _StatusU))
