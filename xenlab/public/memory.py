"""memory_op sub-operations and their argument structures.

Real Xen: xen/include/public/memory.h
"""

from __future__ import annotations

import ctypes
import enum

__all__ = ["MemoryOp", "XenMemoryReservation"]


class MemoryOp(enum.IntEnum):
    XENMEM_increase_reservation = 0
    XENMEM_decrease_reservation = 1
    XENMEM_maximum_ram_page = 2
    XENMEM_current_reservation = 3
    XENMEM_maximum_reservation = 4
    XENMEM_machphys_mfn_list = 5
    XENMEM_populate_physmap = 6
    XENMEM_add_to_physmap = 7
    XENMEM_memory_map = 9
    XENMEM_machine_memory_map = 10
    XENMEM_exchange = 11
    XENMEM_maximum_gpfn = 14
    XENMEM_machphys_mapping = 12
    XENMEM_get_sharing_freed_pages = 18


#: The low 6 bits of ``cmd`` select the operation; the rest is a continuation start extent.
MEMOP_CMD_MASK = (1 << 6) - 1
MEMOP_EXTENT_SHIFT = 6


class XenMemoryReservation(ctypes.Structure):
    """``struct xen_memory_reservation`` (x86-64)."""

    _fields_ = (
        ("extent_start", ctypes.c_uint64),  # XEN_GUEST_HANDLE(xen_pfn_t)
        ("nr_extents", ctypes.c_uint64),
        ("extent_order", ctypes.c_uint32),
        ("mem_flags", ctypes.c_uint32),
        ("domid", ctypes.c_uint16),
    )
