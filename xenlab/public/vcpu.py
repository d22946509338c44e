"""vcpu_op sub-operations and the runstate structure.

Real Xen: xen/include/public/vcpu.h
"""

from __future__ import annotations

import ctypes
import enum

__all__ = ["Runstate", "VcpuOp", "VcpuRunstateInfo"]


class VcpuOp(enum.IntEnum):
    VCPUOP_initialise = 0
    VCPUOP_up = 1
    VCPUOP_down = 2
    VCPUOP_is_up = 3
    VCPUOP_get_runstate_info = 4
    VCPUOP_register_runstate_memory_area = 5
    VCPUOP_set_periodic_timer = 6
    VCPUOP_stop_periodic_timer = 7
    VCPUOP_set_singleshot_timer = 8
    VCPUOP_stop_singleshot_timer = 9
    VCPUOP_register_vcpu_info = 10
    VCPUOP_send_nmi = 11
    VCPUOP_get_physid = 12
    VCPUOP_register_vcpu_time_memory_area = 13


class Runstate(enum.IntEnum):
    RUNSTATE_running = 0
    RUNSTATE_runnable = 1
    RUNSTATE_blocked = 2
    RUNSTATE_offline = 3


class VcpuRunstateInfo(ctypes.Structure):
    """``struct vcpu_runstate_info``"""

    _fields_ = (
        ("state", ctypes.c_int32),
        ("state_entry_time", ctypes.c_uint64),
        ("time", ctypes.c_uint64 * 4),
    )
