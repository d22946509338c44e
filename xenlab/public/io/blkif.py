"""The block device protocol (blkif): requests and responses on a shared ring.

Real Xen: xen/include/public/io/blkif.h
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

__all__ = ["BLKIF_MAX_SEGMENTS_PER_REQUEST", "BlkifOp", "BlkifRequest", "BlkifRsp"]

BLKIF_MAX_SEGMENTS_PER_REQUEST = 11
SECTOR_SIZE = 512
VDISK_CDROM = 0x1
VDISK_REMOVABLE = 0x2
VDISK_READONLY = 0x4
# struct blkif_request (x86-64): operation u8, nr_segments u8, handle u16, (pad 4),
# id u64, sector_number u64, seg[11] {gref u32, first_sect u8, last_sect u8, pad u16}
REQUEST_FORMAT = "<BBH4xQQ"
REQUEST_SIZE = 112
SEGMENT_FORMAT = "<IBBxx"
RESPONSE_FORMAT = "<QBxh4x"  # id u64, operation u8, status i16 (struct size 16)
RESPONSE_SIZE = 16


class BlkifOp(enum.IntEnum):
    BLKIF_OP_READ = 0
    BLKIF_OP_WRITE = 1
    BLKIF_OP_WRITE_BARRIER = 2
    BLKIF_OP_FLUSH_DISKCACHE = 3
    BLKIF_OP_RESERVED_1 = 4
    BLKIF_OP_DISCARD = 5
    BLKIF_OP_INDIRECT = 6


class BlkifRsp(enum.IntEnum):
    BLKIF_RSP_EOPNOTSUPP = -2
    BLKIF_RSP_ERROR = -1
    BLKIF_RSP_OKAY = 0


@dataclass(frozen=True)
class BlkifSegment:
    gref: int
    first_sect: int
    last_sect: int


@dataclass(frozen=True)
class BlkifRequest:
    operation: int
    nr_segments: int
    handle: int
    id: int
    sector_number: int
    seg: tuple[BlkifSegment, ...]

    @classmethod
    def unpack(cls, raw: bytes) -> BlkifRequest:
        op, nseg, handle, rid, sector = struct.unpack_from(REQUEST_FORMAT, raw)
        segs = tuple(BlkifSegment(*struct.unpack_from(SEGMENT_FORMAT, raw, 24 + 8 * i))
                     for i in range(min(nseg, BLKIF_MAX_SEGMENTS_PER_REQUEST)))
        return cls(op, nseg, handle, rid, sector, segs)


def pack_response(rid: int, operation: int, status: int) -> bytes:
    return struct.pack(RESPONSE_FORMAT, rid, operation & 0xFF, status)
