"""sched_op sub-operations and shutdown reasons.

Real Xen: xen/include/public/sched.h
"""

from __future__ import annotations

import ctypes
import enum

__all__ = ["SchedOp", "SchedPoll", "SchedShutdown", "ShutdownReason"]


class SchedOp(enum.IntEnum):
    SCHEDOP_yield = 0
    SCHEDOP_block = 1
    SCHEDOP_shutdown = 2
    SCHEDOP_poll = 3
    SCHEDOP_remote_shutdown = 4
    SCHEDOP_shutdown_code = 5
    SCHEDOP_watchdog = 6
    SCHEDOP_pin_override = 7


class ShutdownReason(enum.IntEnum):
    SHUTDOWN_poweroff = 0
    SHUTDOWN_reboot = 1
    SHUTDOWN_suspend = 2
    SHUTDOWN_crash = 3
    SHUTDOWN_watchdog = 4
    SHUTDOWN_soft_reset = 5


class SchedShutdown(ctypes.Structure):
    """``struct sched_shutdown { unsigned int reason; }``"""

    _fields_ = (("reason", ctypes.c_uint32),)


class SchedPoll(ctypes.Structure):
    """``struct sched_poll { XEN_GUEST_HANDLE(evtchn_port_t) ports; unsigned int nr_ports;
    uint64_t timeout; }``"""

    _fields_ = (
        ("ports", ctypes.c_uint64),
        ("nr_ports", ctypes.c_uint32),
        ("timeout", ctypes.c_uint64),
    )
