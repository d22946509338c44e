"""Grant tables (v1): a domain's table of pages it lets other domains use.

This part holds the table itself and the operations a guest needs to find it
(``GNTTABOP_setup_table``, ``GNTTABOP_query_size``, ``GNTTABOP_get_version``).
The table frames belong to Xen and are shared with the guest; each 8-byte
entry is ``{uint16 flags; domid_t domid; uint32 frame}``. Mapping and copying
grants (map_grant_ref, unmap_grant_ref, copy) arrive with the split drivers;
until then they return ``-ENOSYS``.

Real Xen: xen/common/grant_table.c (do_grant_table_op, gnttab_setup_table,
gnttab_query_size)
"""

from __future__ import annotations

import ctypes
import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.grant_table import GntSt, GnttabOp, GnttabQuerySize
from xenlab.public.xen import DOMID_SELF

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["GrantTable", "do_grant_table_op"]

MAX_GRANT_FRAMES = 64  # gnttab_max_frames default
GRANT_ENTRY_V1_SIZE = 8


class GrantTable:
    def __init__(self, max_frames: int = MAX_GRANT_FRAMES) -> None:
        self.max_frames = max_frames
        self.frames: list[int] = []  # machine frames of the shared table
        self.version = 1

    @property
    def nr_frames(self) -> int:
        return len(self.frames)

    @property
    def nr_entries(self) -> int:
        return self.nr_frames * 4096 // GRANT_ENTRY_V1_SIZE


def _domain(ctx: HypercallContext, domid: int) -> Domain | None:
    if domid in (DOMID_SELF, ctx.domain.domid):
        return ctx.domain
    return ctx.host.domains.get(domid) if ctx.domain.privileged else None


def do_grant_table_op(ctx: HypercallContext, cmd: int, uop: int, count: int) -> int:
    """``long do_grant_table_op(unsigned int cmd, XEN_GUEST_HANDLE_PARAM(void) uop, unsigned
    int count)``"""
    cmd &= 0xFFFFFFFF
    count &= 0xFFFFFFFF
    ctx.decode(cmd=ctx.enum_name(GnttabOp, cmd), count=count)
    if cmd == GnttabOp.GNTTABOP_query_size:
        if count != 1:
            return -Errno.EINVAL
        raw = ctx.copy_from_guest(uop, ctypes.sizeof(GnttabQuerySize))
        if raw is None:
            return -Errno.EFAULT
        q = GnttabQuerySize.from_buffer_copy(raw)
        d = _domain(ctx, q.dom)
        if d is None or d.grant_table is None:
            q.status = GntSt.GNTST_bad_domain
        else:
            q.nr_frames = d.grant_table.nr_frames
            q.max_nr_frames = d.grant_table.max_frames
            q.status = GntSt.GNTST_okay
        ctx.decode(status=ctx.enum_name(GntSt, q.status))
        return 0 if ctx.copy_to_guest(uop, bytes(q)) else -Errno.EFAULT
    if cmd == GnttabOp.GNTTABOP_setup_table:
        if count != 1:
            return -Errno.EINVAL
        # struct gnttab_setup_table { domid_t dom; uint32_t nr_frames; int16_t status;
        #                             XEN_GUEST_HANDLE(xen_pfn_t) frame_list; }
        raw = ctx.copy_from_guest(uop, 24)
        if raw is None:
            return -Errno.EFAULT
        dom, nr_frames, _status, frame_list = struct.unpack("<HxxIh6xQ", raw)
        ctx.decode(dom=dom, nr_frames=nr_frames)
        d = _domain(ctx, dom)
        status: int = GntSt.GNTST_okay
        frames: list[int] = []
        if d is None or d.grant_table is None:
            status = GntSt.GNTST_bad_domain
        elif nr_frames > d.grant_table.max_frames:
            status = GntSt.GNTST_general_error
        else:
            if not ctx.host.gnttab_grow(d, nr_frames):
                status = GntSt.GNTST_general_error
            else:
                frames = d.grant_table.frames[:nr_frames]
        if status == GntSt.GNTST_okay and frames:
            data = struct.pack(f"<{len(frames)}Q", *frames)
            if not ctx.copy_to_guest(frame_list, data):
                return -Errno.EFAULT
        ctx.decode(status=ctx.enum_name(GntSt, status), frames=frames)
        if not ctx.copy_to_guest(uop + 8, struct.pack("<h", status)):
            return -Errno.EFAULT
        return 0
    if cmd == GnttabOp.GNTTABOP_get_version:
        return 0 if ctx.copy_to_guest(uop + 4, struct.pack("<I", 1)) else -Errno.EFAULT
    return -Errno.ENOSYS
