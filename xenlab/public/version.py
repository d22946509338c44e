"""xen_version sub-operations.

Real Xen: xen/include/public/version.h
"""

from __future__ import annotations

import enum

__all__ = ["XEN_EXTRAVERSION", "XEN_MAJOR", "XEN_MINOR", "XenVer"]


class XenVer(enum.IntEnum):
    XENVER_version = 0
    XENVER_extraversion = 1
    XENVER_compile_info = 2
    XENVER_capabilities = 3
    XENVER_changeset = 4
    XENVER_platform_parameters = 5
    XENVER_get_features = 6
    XENVER_pagesize = 7
    XENVER_guest_handle = 8
    XENVER_commandline = 9
    XENVER_build_id = 10


# xenlab presents itself as the Xen release Debian 12 ships.
XEN_MAJOR = 4
XEN_MINOR = 17
XEN_EXTRAVERSION = b".0-xenlab"  # xen_extraversion_t is char[16]
XEN_CAPABILITIES = b"xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64"
XEN_CHANGESET = b"xenlab (emulated)"
XEN_COMPILE_INFO_SIZE = 64 + 16 + 32 + 32  # xen_compile_info: compiler, by, domain, date
XEN_EXTRAVERSION_LEN = 16
XEN_CAPABILITIES_INFO_LEN = 1024
XEN_CHANGESET_INFO_LEN = 64
XEN_COMMANDLINE_LEN = 1024
