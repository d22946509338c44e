"""Grant tables (v1): a domain's table of pages it lets other domains use.

The *granter* writes entries into its own table (frames that belong to Xen
and are shared with it; found with ``GNTTABOP_setup_table``): each 8-byte v1
entry is ``{uint16 flags; domid_t domid; uint32 frame}`` and says "domain
``domid`` may use my frame ``frame``" (``GTF_permit_access``, optionally
``GTF_readonly``). The *grantee* asks Xen to map that grant
(``GNTTABOP_map_grant_ref``): Xen checks the entry, marks it in use
(``GTF_reading`` / ``GTF_writing``, so the granter can see it is busy), and
makes the very same machine frame visible to the grantee, returning a handle
for ``GNTTABOP_unmap_grant_ref``. ``GNTTABOP_copy`` copies through grants
without mapping. Every refusal is a ``GNTST_*`` status.

Dom0's backends in xenlab are Python: they call ``gnttab_map_grant_ref`` and
friends directly (what Linux's gntdev does through the same hypercall) and
receive a memoryview of the frame.

Real Xen: xen/common/grant_table.c (do_grant_table_op, gnttab_setup_table,
gnttab_query_size)
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xenlab.public import grant_table as G
from xenlab.public.errno import Errno
from xenlab.public.grant_table import GntSt, GnttabOp, GnttabQuerySize
from xenlab.public.xen import DOMID_SELF
from xenlab.xen.mm import get_page, get_page_type, put_page, put_page_and_type
from xenlab.xen.page_alloc import PAGE_SHIFT, PAGE_SIZE, PGT_writable_page
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.setup import XenHost

__all__ = [
    "GrantMapping",
    "GrantTable",
    "do_grant_table_op",
    "gnttab_copy",
    "gnttab_map_grant_ref",
    "gnttab_release_mappings",
    "gnttab_unmap_grant_ref",
]

MAX_GRANT_FRAMES = 64  # gnttab_max_frames default
GRANT_ENTRY_V1_SIZE = 8


@dataclass
class GrantMapping:
    """One entry of a grantee's maptrack table: a live mapping of a foreign frame."""

    handle: int
    granter: int
    ref: int
    mfn: int
    readonly: bool
    host_addr: int = 0          # the grantee's VA (PV host_map), 0 for Dom0's backends

    @property
    def maddr(self) -> int:
        return self.mfn << PAGE_SHIFT


class GrantTable:
    def __init__(self, max_frames: int = MAX_GRANT_FRAMES) -> None:
        self.max_frames = max_frames
        self.frames: list[int] = []  # machine frames of the shared table
        self.version = 1
        self.maptrack: dict[int, GrantMapping] = {}  # as grantee: handle -> mapping
        self.next_handle = 0
        self.pins: dict[int, list[int]] = {}         # as granter: ref -> [readers, writers]

    @property
    def nr_frames(self) -> int:
        return len(self.frames)

    @property
    def nr_entries(self) -> int:
        return self.nr_frames * 4096 // GRANT_ENTRY_V1_SIZE


# -- the granter's entries ------------------------------------------------------------
def _entry_addr(d: Domain, ref: int) -> int | None:
    gt = d.grant_table
    if gt is None or not 0 <= ref < gt.nr_entries:
        return None
    frame = gt.frames[ref * GRANT_ENTRY_V1_SIZE // PAGE_SIZE]
    return (frame << PAGE_SHIFT) + (ref * GRANT_ENTRY_V1_SIZE) % PAGE_SIZE


def read_entry(host: XenHost, d: Domain, ref: int) -> tuple[int, int, int] | None:
    """(flags, domid, frame) of grant ``ref`` in ``d``'s table, or None if out of range."""
    addr = _entry_addr(d, ref)
    if addr is None:
        return None
    flags, domid, frame = struct.unpack("<HHI", host.mem.read(addr, 8))
    return flags, domid, frame


def _set_flags(host: XenHost, d: Domain, ref: int, set_bits: int, clear_bits: int) -> None:
    addr = _entry_addr(d, ref)
    if addr is not None:
        flags = struct.unpack("<H", host.mem.read(addr, 2))[0]
        host.mem.write(addr, struct.pack("<H", (flags | set_bits) & ~clear_bits & 0xFFFF))


def _check_grant(host: XenHost, granter: Domain | None, grantee: Domain, ref: int,
                 readonly: bool) -> tuple[int, int]:
    """(status, mfn): may ``grantee`` use ``granter``'s grant ``ref``?"""
    if granter is None or granter.grant_table is None or granter.is_dying:
        return GntSt.GNTST_bad_domain, 0
    entry = read_entry(host, granter, ref)
    if entry is None:
        return GntSt.GNTST_bad_gntref, 0
    flags, domid, frame = entry
    if flags & G.GTF_type_mask != G.GTF_permit_access or domid != grantee.domid:
        return GntSt.GNTST_permission_denied, 0
    if flags & G.GTF_readonly and not readonly:
        return GntSt.GNTST_permission_denied, 0
    if not granter.owns_mfn(frame) or frame in granter.shared_mfns:
        return GntSt.GNTST_bad_page, 0
    return GntSt.GNTST_okay, frame


def _pin(host: XenHost, granter: Domain, ref: int, readonly: bool, delta: int) -> None:
    gt = granter.grant_table
    assert gt is not None
    pins = gt.pins.setdefault(ref, [0, 0])
    pins[1 if not readonly else 0] += delta
    set_bits = (G.GTF_reading if pins[0] + pins[1] else 0) | (G.GTF_writing if pins[1] else 0)
    clear_bits = (0 if pins[0] + pins[1] else G.GTF_reading) | (0 if pins[1] else G.GTF_writing)
    _set_flags(host, granter, ref, set_bits, clear_bits)
    if not pins[0] and not pins[1]:
        del gt.pins[ref]


def _get_frame(host: XenHost, granter: Domain, mfn: int, readonly: bool) -> bool:
    """The references a grant mapping holds: the frame's, and its writable type."""
    if not get_page(host, mfn, granter):
        return False
    if not readonly and not get_page_type(host, mfn, granter, PGT_writable_page):
        put_page(host, mfn)
        return False
    return True


def _put_frame(host: XenHost, mfn: int, readonly: bool) -> None:
    if readonly:
        put_page(host, mfn)
    else:
        put_page_and_type(host, mfn)


def gnttab_map_grant_ref(host: XenHost, grantee: Domain, dom: int, ref: int, flags: int,
                         host_addr: int = 0, cr3: int | None = None
                         ) -> tuple[int, GrantMapping | None]:
    """Map ``dom``'s grant ``ref`` for ``grantee``; returns (GNTST status, mapping)."""
    readonly = bool(flags & G.GNTMAP_readonly)
    granter = grantee if dom in (DOMID_SELF, grantee.domid) else host.domains.get(dom)
    status, mfn = _check_grant(host, granter, grantee, ref, readonly)
    if status == GntSt.GNTST_okay and not flags & (G.GNTMAP_host_map | G.GNTMAP_device_map):
        status = GntSt.GNTST_general_error
    mapping = None
    if status == GntSt.GNTST_okay:
        assert granter is not None and grantee.grant_table is not None
        gt = grantee.grant_table
        if len(gt.maptrack) >= 4096:
            status = GntSt.GNTST_no_device_space
        elif not _get_frame(host, granter, mfn, readonly):
            # a page table (or a descriptor table) is never mapped writable, by anyone
            status = GntSt.GNTST_general_error
        else:
            pv_host_map = bool(flags & G.GNTMAP_host_map and grantee.is_pv and cr3 is not None)
            # host_addr is remembered only when a PTE was written for it: unmap undoes
            # exactly that (a device_map-only mapping with a host_addr has no PTE).
            mapping = GrantMapping(gt.next_handle, granter.domid, ref, mfn, readonly,
                                   host_addr if pv_host_map else 0)
            if pv_host_map:
                status = host.pv_map_foreign(grantee, cr3, host_addr, mfn, readonly)
            if status == GntSt.GNTST_okay:
                gt.next_handle += 1
                gt.maptrack[mapping.handle] = mapping
                _pin(host, granter, ref, readonly, +1)
            else:
                _put_frame(host, mfn, readonly)
                mapping = None
    host.trace.emit(host.now(), grantee.domid, 0, Kind.GRANT, "map_grant_ref",
                    {"granter": dom, "ref": ref, "readonly": readonly,
                     "handle": mapping.handle if mapping else None},
                    _status_name(status))
    return status, mapping


def gnttab_unmap_grant_ref(host: XenHost, grantee: Domain, handle: int,
                           cr3: int | None = None) -> int:
    gt = grantee.grant_table
    mapping = gt.maptrack.pop(handle, None) if gt is not None else None
    if mapping is None:
        status: int = GntSt.GNTST_bad_handle
    else:
        if mapping.host_addr and grantee.is_pv and cr3 is not None:
            host.pv_unmap_foreign(grantee, cr3, mapping.host_addr, mapping.mfn)
        granter = host.domains.get(mapping.granter)
        if granter is not None and granter.grant_table is not None:
            _pin(host, granter, mapping.ref, mapping.readonly, -1)
        _put_frame(host, mapping.mfn, mapping.readonly)
        status = GntSt.GNTST_okay
    host.trace.emit(host.now(), grantee.domid, 0, Kind.GRANT, "unmap_grant_ref",
                    {"handle": handle, "granter": mapping.granter if mapping else None,
                     "ref": mapping.ref if mapping else None}, _status_name(status))
    return status


def _pv_cr3(d: Domain) -> int | None:
    """The page tables a PV grantee's host mappings were written into (vCPU 0's CR3)."""
    if d.is_pv and d.vcpus and d.vcpus[0].cpu is not None:
        return d.vcpus[0].cpu.reg("cr3")
    return None


def gnttab_release_mappings(host: XenHost, d: Domain) -> None:
    """A dying domain: drop its mappings of others' frames, and others' mappings of its own.

    A PV grantee's host mappings are torn down in its page tables too (PTE cleared,
    frame no longer reachable): the dying granter's frames go back to the heap.
    """
    if d.grant_table is not None:
        for handle in sorted(d.grant_table.maptrack):
            gnttab_unmap_grant_ref(host, d, handle, _pv_cr3(d))
    for other in list(host.domains.values()):
        if other is d or other.grant_table is None:
            continue
        for handle, mapping in sorted(other.grant_table.maptrack.items()):
            if mapping.granter == d.domid:
                gnttab_unmap_grant_ref(host, other, handle, _pv_cr3(other))


def _copy_ptr(host: XenHost, caller: Domain, ptr: ctypes.Structure, by_gref: bool,
              write: bool) -> tuple[int, int]:
    """(status, machine address of the page) for one side of a GNTTABOP_copy."""
    dom = caller.domid if ptr.domid == DOMID_SELF else ptr.domid
    owner = host.domains.get(dom)
    if owner is None:
        return GntSt.GNTST_bad_domain, 0
    if by_gref:
        status, mfn = _check_grant(host, owner, caller, ptr.u, readonly=not write)
        return status, mfn << PAGE_SHIFT
    if owner is not caller:
        return GntSt.GNTST_permission_denied, 0
    mfn = ptr.u if caller.is_pv else caller.pfn_to_mfn(ptr.u)
    if not caller.owns_mfn(mfn) or mfn in caller.shared_mfns:
        return GntSt.GNTST_bad_page, 0
    return GntSt.GNTST_okay, mfn << PAGE_SHIFT


def _frame_owner(host: XenHost, mfn: int) -> Domain | None:
    return host.domains.get(host.mem.owner[mfn])


def gnttab_copy(host: XenHost, caller: Domain, op: G.GnttabCopy) -> int:
    """One GNTTABOP_copy: ``len`` bytes between two (ref or own frame, offset) places."""
    src_gref, dst_gref = op.flags & G.GNTCOPY_source_gref, op.flags & G.GNTCOPY_dest_gref
    if (op.source.offset + op.len > PAGE_SIZE or op.dest.offset + op.len > PAGE_SIZE):
        status: int = GntSt.GNTST_bad_copy_arg
    else:
        status, src = _copy_ptr(host, caller, op.source, bool(src_gref), write=False)
        if status == GntSt.GNTST_okay:
            status, dst = _copy_ptr(host, caller, op.dest, bool(dst_gref), write=True)
        if status == GntSt.GNTST_okay:
            # both frames are held for the copy; the destination must take the writable
            # type (a page table is never a copy's destination)
            src_owner = _frame_owner(host, src >> PAGE_SHIFT)
            dst_owner = _frame_owner(host, dst >> PAGE_SHIFT)
            if src_owner is None or not get_page(host, src >> PAGE_SHIFT, src_owner):
                status = GntSt.GNTST_general_error
            else:
                if dst_owner is None or not _get_frame(host, dst_owner, dst >> PAGE_SHIFT,
                                                       False):
                    status = GntSt.GNTST_general_error
                else:
                    host.mem.write(dst + op.dest.offset,
                                   host.mem.read(src + op.source.offset, op.len))
                    _put_frame(host, dst >> PAGE_SHIFT, False)
                put_page(host, src >> PAGE_SHIFT)
    host.trace.emit(host.now(), caller.domid, 0, Kind.GRANT, "copy",
                    {"source": {"dom": op.source.domid, ("ref" if src_gref else "gmfn"):
                                op.source.u, "offset": op.source.offset},
                     "dest": {"dom": op.dest.domid, ("ref" if dst_gref else "gmfn"): op.dest.u,
                              "offset": op.dest.offset}, "len": op.len},
                    _status_name(status))
    return status


def _status_name(status: int) -> str:
    try:
        return GntSt(status).name
    except ValueError:
        return str(status)


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
    if cmd in (GnttabOp.GNTTABOP_map_grant_ref, GnttabOp.GNTTABOP_unmap_grant_ref,
               GnttabOp.GNTTABOP_copy):
        cls = {GnttabOp.GNTTABOP_map_grant_ref: G.GnttabMapGrantRef,
               GnttabOp.GNTTABOP_unmap_grant_ref: G.GnttabUnmapGrantRef,
               GnttabOp.GNTTABOP_copy: G.GnttabCopy}[GnttabOp(cmd)]
        size = ctypes.sizeof(cls)
        if count > 512:
            return -Errno.EINVAL
        cr3 = ctx.cpu.reg("cr3") if ctx.domain.is_pv else None
        for i in range(count):
            raw = ctx.copy_from_guest(uop + i * size, size)
            if raw is None:
                return -Errno.EFAULT
            op = cls.from_buffer_copy(raw)
            if cmd == GnttabOp.GNTTABOP_map_grant_ref:
                st, mapping = gnttab_map_grant_ref(ctx.host, ctx.domain, op.dom, op.ref,
                                                   op.flags, op.host_addr, cr3)
                op.status = st
                if mapping is not None:
                    op.handle = mapping.handle
                    op.dev_bus_addr = mapping.maddr
            elif cmd == GnttabOp.GNTTABOP_unmap_grant_ref:
                op.status = gnttab_unmap_grant_ref(ctx.host, ctx.domain, op.handle, cr3)
            else:
                op.status = gnttab_copy(ctx.host, ctx.domain, op)
            if not ctx.copy_to_guest(uop + i * size, bytes(op)):
                return -Errno.EFAULT
        return 0
    if cmd == GnttabOp.GNTTABOP_get_version:
        return 0 if ctx.copy_to_guest(uop + 4, struct.pack("<I", 1)) else -Errno.EFAULT
    if cmd == GnttabOp.GNTTABOP_set_version:
        # struct gnttab_set_version { uint32_t version; }: xenlab's tables are v1 only,
        # as a Xen booted with gnttab=max-ver:1 (gnttab_set_version: v2 is -ENOSYS there;
        # the current version is written back either way)
        if count != 1:
            return -Errno.EINVAL
        raw = ctx.copy_from_guest(uop, 4)
        if raw is None:
            return -Errno.EFAULT
        version = struct.unpack("<I", raw)[0]
        ctx.decode(version=version)
        rc = 0 if version == 1 else -Errno.ENOSYS if version == 2 else -Errno.EINVAL
        if not ctx.copy_to_guest(uop, struct.pack("<I", 1)):
            return -Errno.EFAULT
        return rc
    return -Errno.ENOSYS
