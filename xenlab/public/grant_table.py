"""Grant table operations, flags and status codes (version 1).

Real Xen: xen/include/public/grant_table.h
"""

from __future__ import annotations

import ctypes
import enum

__all__ = ["GntSt", "GnttabOp"]


class GnttabOp(enum.IntEnum):
    GNTTABOP_map_grant_ref = 0
    GNTTABOP_unmap_grant_ref = 1
    GNTTABOP_setup_table = 2
    GNTTABOP_dump_table = 3
    GNTTABOP_transfer = 4
    GNTTABOP_copy = 5
    GNTTABOP_query_size = 6
    GNTTABOP_unmap_and_replace = 7
    GNTTABOP_set_version = 8
    GNTTABOP_get_status_frames = 9
    GNTTABOP_get_version = 10
    GNTTABOP_swap_grant_ref = 11
    GNTTABOP_cache_flush = 12


class GntSt(enum.IntEnum):
    GNTST_okay = 0
    GNTST_general_error = -1
    GNTST_bad_domain = -2
    GNTST_bad_gntref = -3
    GNTST_bad_handle = -4
    GNTST_bad_virt_addr = -5
    GNTST_bad_dev_addr = -6
    GNTST_no_device_space = -7
    GNTST_permission_denied = -8
    GNTST_bad_page = -9
    GNTST_bad_copy_arg = -10
    GNTST_address_too_big = -11
    GNTST_eagain = -12
    GNTST_no_space = -13


GTF_invalid = 0
GTF_permit_access = 1
GTF_accept_transfer = 2
GTF_transitive = 3
GTF_type_mask = 3
GTF_readonly = 1 << 2
GTF_reading = 1 << 3
GTF_writing = 1 << 4
GNTTAB_NR_RESERVED_ENTRIES = 8
GNTTAB_RESERVED_CONSOLE = 0
GNTTAB_RESERVED_XENSTORE = 1


GNTMAP_device_map = 1 << 0
GNTMAP_host_map = 1 << 1
GNTMAP_readonly = 1 << 2
GNTMAP_application_map = 1 << 3
GNTMAP_contains_pte = 1 << 4
GNTCOPY_source_gref = 1 << 0
GNTCOPY_dest_gref = 1 << 1


class GnttabMapGrantRef(ctypes.Structure):
    """``struct gnttab_map_grant_ref``"""

    _fields_ = (
        ("host_addr", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("ref", ctypes.c_uint32),
        ("dom", ctypes.c_uint16),
        ("status", ctypes.c_int16),
        ("handle", ctypes.c_uint32),
        ("dev_bus_addr", ctypes.c_uint64),
    )


class GnttabUnmapGrantRef(ctypes.Structure):
    """``struct gnttab_unmap_grant_ref``"""

    _fields_ = (
        ("host_addr", ctypes.c_uint64),
        ("dev_bus_addr", ctypes.c_uint64),
        ("handle", ctypes.c_uint32),
        ("status", ctypes.c_int16),
    )


class _GnttabCopyPtr(ctypes.Structure):
    _fields_ = (("u", ctypes.c_uint64), ("domid", ctypes.c_uint16), ("offset", ctypes.c_uint16))


class GnttabCopy(ctypes.Structure):
    """``struct gnttab_copy`` (``u`` is the ref or the gmfn)."""

    _fields_ = (
        ("source", _GnttabCopyPtr),
        ("dest", _GnttabCopyPtr),
        ("len", ctypes.c_uint16),
        ("flags", ctypes.c_uint16),
        ("status", ctypes.c_int16),
    )


class GnttabQuerySize(ctypes.Structure):
    """``struct gnttab_query_size``"""

    _fields_ = (
        ("dom", ctypes.c_uint16),
        ("nr_frames", ctypes.c_uint32),
        ("max_nr_frames", ctypes.c_uint32),
        ("status", ctypes.c_int16),
    )


class GrantEntryV1(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint16), ("domid", ctypes.c_uint16),
                ("frame", ctypes.c_uint32))
