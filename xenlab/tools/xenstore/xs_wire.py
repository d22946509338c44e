"""The xenstore wire protocol: message types, error strings, header, ring page.

Every request and reply is a 16-byte ``xsd_sockmsg`` header (type, req_id,
tx_id, len; little-endian ``uint32``s) followed by ``len`` bytes of payload,
usually NUL-terminated strings. Errors travel as strings (``"EACCES\\0"``) in
an ``XS_ERROR`` reply. A guest talks to xenstored through one shared page,
``struct xenstore_domain_interface``: two 1024-byte byte rings (``req`` from
the guest, ``rsp`` to it) with free-running 32-bit producer/consumer indices
that are masked with ``MASK_XENSTORE_IDX`` to find the byte's slot.

Real Xen: xen/include/public/io/xs_wire.h
"""

from __future__ import annotations

import ctypes
import enum
import struct

__all__ = [
    "MASK_XENSTORE_IDX",
    "XENSTORE_ABS_PATH_MAX",
    "XENSTORE_CONNECTED",
    "XENSTORE_ERROR_COMM",
    "XENSTORE_ERROR_NONE",
    "XENSTORE_ERROR_PROTO",
    "XENSTORE_ERROR_RINGIDX",
    "XENSTORE_PAYLOAD_MAX",
    "XENSTORE_RECONNECT",
    "XENSTORE_REL_PATH_MAX",
    "XENSTORE_RING_SIZE",
    "XENSTORE_SERVER_FEATURE_ERROR",
    "XENSTORE_SERVER_FEATURE_RECONNECTION",
    "XSD_ERROR",
    "XSD_SOCKMSG_SIZE",
    "XS_WRITE_CREATE",
    "XS_WRITE_CREATE_EXCL",
    "XS_WRITE_NONE",
    "XenstoreDomainInterface",
    "XsWatchType",
    "XsdSockmsg",
    "XsdSockmsgType",
    "pack_msg",
    "unpack_header",
    "xsd_errors",
]


class XsdSockmsgType(enum.IntEnum):
    """``enum xsd_sockmsg_type``."""

    XS_CONTROL = 0
    XS_DEBUG = 0                      # #define XS_DEBUG XS_CONTROL (an alias)
    XS_DIRECTORY = 1
    XS_READ = 2
    XS_GET_PERMS = 3
    XS_WATCH = 4
    XS_UNWATCH = 5
    XS_TRANSACTION_START = 6
    XS_TRANSACTION_END = 7
    XS_INTRODUCE = 8
    XS_RELEASE = 9
    XS_GET_DOMAIN_PATH = 10
    XS_WRITE = 11
    XS_MKDIR = 12
    XS_RM = 13
    XS_SET_PERMS = 14
    XS_WATCH_EVENT = 15
    XS_ERROR = 16
    XS_IS_DOMAIN_INTRODUCED = 17
    XS_RESUME = 18
    XS_SET_TARGET = 19
    # XS_RESTRICT (20) has been removed
    XS_RESET_WATCHES = 21             # XS_SET_TARGET + 2
    XS_DIRECTORY_PART = 22
    XS_TYPE_COUNT = 23                # number of valid types
    XS_INVALID = 0xFFFF               # guaranteed to remain an invalid type


XS_WRITE_NONE = "NONE"
XS_WRITE_CREATE = "CREATE"
XS_WRITE_CREATE_EXCL = "CREATE|EXCL"

#: ``xsd_errors[]``: (Linux errno value, string), in the header's order; new
#: errors are only ever appended.
xsd_errors: tuple[tuple[int, str], ...] = (
    (22, "EINVAL"),
    (13, "EACCES"),
    (17, "EEXIST"),
    (21, "EISDIR"),
    (2, "ENOENT"),
    (12, "ENOMEM"),
    (28, "ENOSPC"),
    (5, "EIO"),
    (39, "ENOTEMPTY"),
    (38, "ENOSYS"),
    (30, "EROFS"),
    (16, "EBUSY"),
    (11, "EAGAIN"),
    (106, "EISCONN"),
    (7, "E2BIG"),
    (1, "EPERM"),
)

#: The error names a reply may carry (``XSD_ERROR(x)`` stringifies ``x``).
XSD_ERROR: frozenset[str] = frozenset(name for _, name in xsd_errors)


class XsWatchType(enum.IntEnum):
    """``enum xs_watch_type``: the strings of an XS_WATCH_EVENT payload."""

    XS_WATCH_PATH = 0
    XS_WATCH_TOKEN = 1


class XsdSockmsg(ctypes.LittleEndianStructure):
    """``struct xsd_sockmsg``: the header before every payload."""

    _fields_ = (("type", ctypes.c_uint32), ("req_id", ctypes.c_uint32),
                ("tx_id", ctypes.c_uint32), ("len", ctypes.c_uint32))


XSD_SOCKMSG_SIZE = 16
_HDR = struct.Struct("<IIII")

XENSTORE_RING_SIZE = 1024


def MASK_XENSTORE_IDX(idx: int) -> int:
    """The ring slot of a free-running index."""
    return idx & (XENSTORE_RING_SIZE - 1)


class XenstoreDomainInterface(ctypes.LittleEndianStructure):
    """``struct xenstore_domain_interface``: the guest's xenstore page."""

    _fields_ = (("req", ctypes.c_char * XENSTORE_RING_SIZE),
                ("rsp", ctypes.c_char * XENSTORE_RING_SIZE),
                ("req_cons", ctypes.c_uint32), ("req_prod", ctypes.c_uint32),
                ("rsp_cons", ctypes.c_uint32), ("rsp_prod", ctypes.c_uint32),
                ("server_features", ctypes.c_uint32), ("connection", ctypes.c_uint32),
                ("error", ctypes.c_uint32))


#: Byte offsets in the page (checked against the structure above by the tests).
REQ_OFFSET = 0
RSP_OFFSET = 1024
REQ_CONS_OFFSET = 2048
REQ_PROD_OFFSET = 2052
RSP_CONS_OFFSET = 2056
RSP_PROD_OFFSET = 2060
SERVER_FEATURES_OFFSET = 2064
CONNECTION_OFFSET = 2068
ERROR_OFFSET = 2072

#: "Violating this is very bad.  See docs/misc/xenstore.txt."
XENSTORE_PAYLOAD_MAX = 4096
#: "Violating these just gets you an error back"
XENSTORE_ABS_PATH_MAX = 3072
XENSTORE_REL_PATH_MAX = 2048

XENSTORE_SERVER_FEATURE_RECONNECTION = 1
XENSTORE_SERVER_FEATURE_ERROR = 2

XENSTORE_CONNECTED = 0   # the steady-state
XENSTORE_RECONNECT = 1   # reconnect in progress

XENSTORE_ERROR_NONE = 0     # no error
XENSTORE_ERROR_COMM = 1     # communication problem
XENSTORE_ERROR_RINGIDX = 2  # invalid ring index
XENSTORE_ERROR_PROTO = 3    # protocol violation (payload too long)


def pack_msg(type: int, req_id: int, tx_id: int, payload: bytes) -> bytes:
    """One message: ``xsd_sockmsg`` header then the payload."""
    return _HDR.pack(int(type), req_id, tx_id, len(payload)) + bytes(payload)


def unpack_header(data: bytes) -> tuple[int, int, int, int]:
    """``(type, req_id, tx_id, len)`` from the first 16 bytes of ``data``."""
    if len(data) < XSD_SOCKMSG_SIZE:
        raise ValueError(f"xsd_sockmsg needs {XSD_SOCKMSG_SIZE} bytes, got {len(data)}")
    t, req_id, tx_id, length = _HDR.unpack_from(bytes(data[:XSD_SOCKMSG_SIZE]))
    return t, req_id, tx_id, length
