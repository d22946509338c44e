"""blkback: Dom0's block backend, serving a guest's virtual disk from a raw image file.

The handshake, on the real xenstore paths (frontend
``/local/domain/<id>/device/vbd/<devid>``, backend
``/local/domain/0/backend/vbd/<id>/<devid>``):

1. the toolstack writes both directories, each with ``state`` = 1 (Initialising);
2. blkback publishes the disk (``sectors``, ``sector-size``, ``info``,
   ``feature-flush-cache``) and goes to 2 (InitWait);
3. blkfront grants its ring page, allocates an unbound event channel, writes
   ``ring-ref``, ``event-channel``, ``protocol`` and goes to 3 (Initialised);
4. blkback maps the ring's grant, binds the event channel and goes to
   4 (Connected); the frontend follows.

Each request on the ring names guest pages by grant reference. blkback maps
each segment's grant (read-only for a write to disk, writable for a read),
moves the sectors between the page and the image file, unmaps, and puts a
response on the ring. It notifies the frontend only when the ring's
``rsp_event`` asks for it (event suppression), and counts what that saves.

``BlkbackDevice.event_suppression`` (default True) switches that off for an
experiment (``python -m xenlab.bench`` compares the two): when False, blkback
notifies the frontend after every batch of responses whatever ``rsp_event``
says, and after each request it takes it sets ``req_event`` to the next
request, so the frontend is asked to notify for every push it makes. Both
sides still follow the ring protocol; only the hold-off is gone. Set it
before the frontend connects (create the domain paused).

Real Xen: Linux drivers/block/xen-blkback/xenbus.c (frontend_changed,
connect_ring) and blkback.c (dispatch_rw_block_io, make_response)
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import IO

from xenlab.dom0.kernel import MappedGrant
from xenlab.dom0.xenbus import BackendDevice
from xenlab.public.grant_table import GntSt
from xenlab.public.io import blkif as B
from xenlab.public.io.ring import BackRing
from xenlab.public.io.xenbus import XenbusState as S
from xenlab.xen.trace import Kind

__all__ = ["BlkbackDevice", "BlkifStats"]

SECTORS_PER_PAGE = 4096 // B.SECTOR_SIZE
MAX_REQUESTS_PER_EVENT = 1024  # a hostile frontend cannot keep Dom0 busy forever
_REQ_EVENT_OFFSET = 4          # ring header: req_prod, req_event, rsp_prod, rsp_event


def _set_req_event(ring: BackRing, index: int) -> None:
    """Write the ring's ``req_event``: the request index at which we want a notification."""
    struct.pack_into("<I", ring.page, _REQ_EVENT_OFFSET, index & 0xFFFFFFFF)


@dataclass
class BlkifStats:
    requests: int = 0
    bytes: int = 0
    errors: int = 0
    notifications_sent: int = 0
    notifications_saved: int = 0
    by_op: dict[str, int] = field(default_factory=dict)


class BlkbackDevice(BackendDevice):
    """One virtual block device (``vbd``) of one guest."""

    kind = "vbd"

    def __init__(self, services: object, domid: int, devid: int, image: str,
                 readonly: bool) -> None:
        super().__init__(services, domid, devid)
        self.image = image
        self.readonly = readonly
        self.file: IO[bytes] | None = None
        self.ring: BackRing | None = None
        self.ring_page: MappedGrant | None = None
        self.stats = BlkifStats()
        self.sectors = 0
        #: False: ignore the rings' hold-off (notify after every response batch,
        #: ask for a notification at every request); see the module docstring.
        self.event_suppression = True

    # -- xenbus ----------------------------------------------------------------------
    def probe(self) -> None:
        """blkback_probe + backend_changed: open the image, publish it, wait for the frontend."""
        try:
            self.file = open(self.image, "rb" if self.readonly else "r+b")  # noqa: SIM115
            self.sectors = os.fstat(self.file.fileno()).st_size // B.SECTOR_SIZE
        except OSError as err:
            self.xs_write("hotplug-error", f"{self.image}: {err.strerror}")
            self.set_state(S.XenbusStateClosed)
            return
        self.xs_write("sectors", str(self.sectors))
        self.xs_write("sector-size", str(B.SECTOR_SIZE))
        self.xs_write("info", str(B.VDISK_READONLY if self.readonly else 0))
        self.xs_write("feature-flush-cache", "1")
        self.set_state(S.XenbusStateInitWait)
        self.watch_frontend()

    def connect(self) -> bool:
        """connect_ring: read ring-ref / event-channel / protocol, map, bind."""
        ring_ref = self.fe_read_int("ring-ref")
        evtchn = self.fe_read_int("event-channel")
        protocol = self.fe_read("protocol") or "x86_64-abi"
        if ring_ref is None or evtchn is None:
            self.fail("reading ring-ref/event-channel")
            return False
        if protocol != "x86_64-abi":
            self.fail(f"unsupported protocol {protocol}")
            return False
        status, page = self.kernel.map_grant(self.domid, ring_ref, readonly=False)
        if status != GntSt.GNTST_okay or page is None:
            self.fail(f"mapping ring-ref {ring_ref}: {GntSt(status).name}")
            return False
        port = self.kernel.bind_interdomain(self.domid, evtchn, self._on_event)
        if port < 0:
            self.kernel.unmap_grant(page)
            self.fail(f"binding event channel {evtchn}: {port}")
            return False
        self.ring_page = page
        self.ring = BackRing(page.page, B.REQUEST_SIZE, B.RESPONSE_SIZE)
        self.port = port
        return True

    def disconnect(self) -> None:
        """xen_blkif_disconnect: unbind the port, unmap the ring."""
        if self.port is not None:
            self.kernel.unbind(self.port)
            self.port = None
        if self.ring_page is not None:
            self.ring = None
            self.kernel.unmap_grant(self.ring_page)
            self.ring_page = None
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        super().close()
        if self.file is not None:
            self.file.close()
            self.file = None

    # -- the data path --------------------------------------------------------------------
    def _on_event(self, port: int) -> None:
        ring = self.ring
        if ring is None:
            return
        handled = 0
        while True:
            if ring.overflowed():
                self.fail("frontend overflowed the ring")
                return
            while ring.unconsumed_requests() and handled < MAX_REQUESTS_PER_EVENT:
                raw = ring.get_request()
                if not self.event_suppression:
                    _set_req_event(ring, ring.req_cons + 1)  # "notify me at the next one"
                ring.put_response(self._dispatch(raw))
                handled += 1
            if handled >= MAX_REQUESTS_PER_EVENT or not ring.final_check_for_requests():
                break
        notify = ring.push_responses_and_check_notify()
        if notify or (handled and not self.event_suppression):
            self.stats.notifications_sent += 1
            self.kernel.notify(self.port or 0, "blkif responses")
        elif handled:
            self.stats.notifications_saved += 1
            self.trace("notify_suppressed", {"responses": handled})

    def _dispatch(self, raw: bytes) -> bytes:
        req = B.BlkifRequest.unpack(raw)
        try:
            op_name = B.BlkifOp(req.operation).name
        except ValueError:
            op_name = f"op{req.operation}"
        self.stats.requests += 1
        self.stats.by_op[op_name] = self.stats.by_op.get(op_name, 0) + 1
        self.trace("blkif_request", {"id": req.id, "op": op_name, "sector": req.sector_number,
                                     "nr_segments": req.nr_segments})
        status = self._do_request(req, op_name)
        if status != B.BlkifRsp.BLKIF_RSP_OKAY:
            self.stats.errors += 1
        self.trace("blkif_response", {"id": req.id, "op": op_name},
                   B.BlkifRsp(status).name)
        return B.pack_response(req.id, req.operation, status)

    def _do_request(self, req: B.BlkifRequest, op_name: str) -> int:
        if req.operation == B.BlkifOp.BLKIF_OP_FLUSH_DISKCACHE:
            if self.file is not None and not self.readonly:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.trace("disk_flush", {"image": os.path.basename(self.image)})
            return B.BlkifRsp.BLKIF_RSP_OKAY
        if req.operation not in (B.BlkifOp.BLKIF_OP_READ, B.BlkifOp.BLKIF_OP_WRITE):
            return B.BlkifRsp.BLKIF_RSP_EOPNOTSUPP
        write = req.operation == B.BlkifOp.BLKIF_OP_WRITE
        if write and self.readonly:
            self.trace("refused", {"why": "write to a read-only disk"})
            return B.BlkifRsp.BLKIF_RSP_ERROR
        if not 1 <= req.nr_segments <= B.BLKIF_MAX_SEGMENTS_PER_REQUEST:
            return B.BlkifRsp.BLKIF_RSP_ERROR
        sector = req.sector_number
        total = sum(s.last_sect - s.first_sect + 1 for s in req.seg)
        if any(s.first_sect > s.last_sect or s.last_sect >= SECTORS_PER_PAGE for s in req.seg):
            return B.BlkifRsp.BLKIF_RSP_ERROR
        if sector + total > self.sectors or self.file is None:
            self.trace("refused", {"why": "beyond the end of the disk", "sector": sector})
            return B.BlkifRsp.BLKIF_RSP_ERROR
        # xen_blkbk_map: map every segment first, in one GNTTABOP_map_grant_ref (count =
        # the segments); one bad grant fails the whole request before any byte moves (no
        # half-done write to the disk or read into the guest)
        mapped = self.kernel.map_grants(self.domid, [seg.gref for seg in req.seg],
                                        readonly=write)
        pages: list[MappedGrant] = [page for _st, page in mapped if page is not None]
        try:
            for seg, (status, page) in zip(req.seg, mapped, strict=True):
                if status != GntSt.GNTST_okay or page is None:
                    self.trace("refused", {"why": f"grant {seg.gref}: {GntSt(status).name}"})
                    return B.BlkifRsp.BLKIF_RSP_ERROR
            for seg, page in zip(req.seg, pages, strict=True):
                start = seg.first_sect * B.SECTOR_SIZE
                length = (seg.last_sect - seg.first_sect + 1) * B.SECTOR_SIZE
                self.file.seek(sector * B.SECTOR_SIZE)
                if write:
                    self.file.write(page.page[start : start + length])
                else:
                    page.page[start : start + length] = self.file.read(length).ljust(length,
                                                                                   b"\0")
                self.trace("disk_write" if write else "disk_read",
                           {"image": os.path.basename(self.image), "sector": sector,
                            "bytes": length})
                self.stats.bytes += length
                sector += length // B.SECTOR_SIZE
        finally:
            if pages:  # xen_blkbk_unmap: one GNTTABOP_unmap_grant_ref for them all
                self.kernel.unmap_grants(pages)
        return B.BlkifRsp.BLKIF_RSP_OKAY

    def trace(self, name: str, args: dict[str, object], ret: object = None) -> None:
        host = self.kernel.host
        host.trace.emit(host.now(), self.domid, 0, Kind.IO, f"blkback.{name}",
                        {"dev": f"vbd-{self.domid}-{self.devid}", **args}, ret)


