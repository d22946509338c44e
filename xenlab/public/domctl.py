"""domctl and dm_op: the toolstack's and the device model's hypercalls (Dom0 only).

Only the commands xenlab's Dom0 makes are listed; their numbers are Xen's.
The trace names them in Dom0's ``domctl`` (36) and ``dm_op`` (41) records.

Real Xen: xen/include/public/domctl.h, xen/include/public/hvm/dm_op.h
"""

from __future__ import annotations

import enum

__all__ = ["DmOp", "DomctlCmd", "IoRangeType", "xen_dmop_pci_sbdf"]


class DomctlCmd(enum.IntEnum):
    """``struct xen_domctl``'s ``cmd`` (public/domctl.h)."""

    XEN_DOMCTL_createdomain = 1
    XEN_DOMCTL_destroydomain = 2
    XEN_DOMCTL_pausedomain = 3
    XEN_DOMCTL_unpausedomain = 4
    XEN_DOMCTL_getdomaininfo = 5
    XEN_DOMCTL_max_mem = 11
    XEN_DOMCTL_setvcpucontext = 12
    XEN_DOMCTL_max_vcpus = 15
    XEN_DOMCTL_settimeoffset = 24
    XEN_DOMCTL_sethvmcontext = 34


class DmOp(enum.IntEnum):
    """``struct xen_dm_op``'s ``op`` (public/hvm/dm_op.h)."""

    XEN_DMOP_create_ioreq_server = 1
    XEN_DMOP_get_ioreq_server_info = 2
    XEN_DMOP_map_io_range_to_ioreq_server = 3
    XEN_DMOP_unmap_io_range_from_ioreq_server = 4
    XEN_DMOP_set_ioreq_server_state = 5
    XEN_DMOP_destroy_ioreq_server = 6


class IoRangeType(enum.IntEnum):
    """``struct xen_dm_op_ioreq_server_range``'s ``type``: what ``start..end`` (inclusive)
    counts (public/hvm/dm_op.h)."""

    XEN_DMOP_IO_RANGE_PORT = 0     # I/O ports
    XEN_DMOP_IO_RANGE_MEMORY = 1   # guest-physical MMIO
    XEN_DMOP_IO_RANGE_PCI = 2      # PCI functions, as XEN_DMOP_PCI_SBDF numbers


def xen_dmop_pci_sbdf(seg: int, bus: int, dev: int, fn: int) -> int:
    """XEN_DMOP_PCI_SBDF: a PCI function as one number (segment, bus, device, function)."""
    return ((seg & 0xFFFF) << 16) | ((bus & 0xFF) << 8) | ((dev & 0x1F) << 3) | (fn & 0x07)
