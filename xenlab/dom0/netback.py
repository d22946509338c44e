"""netback: Dom0's network backend, one vif per guest network interface, on xenbr0.

Handshake as for block devices (``/local/domain/<id>/device/vif/<n>`` and
``/local/domain/0/backend/vif/<id>/<n>``): netback publishes
``feature-rx-copy`` and waits; netfront grants a transmit ring and a receive
ring, writes ``tx-ring-ref``, ``rx-ring-ref``, ``event-channel`` and
``request-rx-copy``; netback maps both rings, binds the event channel, joins
the vif to the bridge and goes Connected.

Transmit (guest → world): each ``netif_tx_request`` names a granted page,
offset and size; netback maps the grant read-only, copies the frame out,
answers ``NETIF_RSP_OKAY`` and hands the frame to the bridge. Receive
(world → guest): the frontend posts ``netif_rx_request``s naming empty
granted pages; netback copies an arriving frame into the next one and answers
with its length; with no posted buffer the frame waits (up to a limit, then
it is dropped, as a real NIC drops).

Real Xen: Linux drivers/net/xen-netback/xenbus.c, netback.c (xenvif_tx_action,
xenvif_rx_action)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from xenlab.dom0.bridge import Bridge
from xenlab.dom0.kernel import MappedGrant
from xenlab.dom0.xenbus import BackendDevice
from xenlab.public.grant_table import GntSt
from xenlab.public.io import netif as N
from xenlab.public.io.ring import BackRing
from xenlab.public.io.xenbus import XenbusState as S
from xenlab.xen.trace import Kind

__all__ = ["NetbackVif", "NetifStats"]

RX_QUEUE_MAX = 256
MAX_TX_PER_EVENT = 1024


@dataclass
class NetifStats:
    tx_packets: int = 0
    rx_packets: int = 0
    rx_dropped: int = 0
    errors: int = 0
    notifications_sent: int = 0
    notifications_saved: int = 0


class NetbackVif(BackendDevice):
    kind = "vif"

    def __init__(self, services: object, domid: int, devid: int, mac: str, bridge: Bridge
                 ) -> None:
        super().__init__(services, domid, devid)  # type: ignore[arg-type]
        self.mac = mac
        self.bridge = bridge
        self.name = f"vif{domid}.{devid}"
        self.tx: BackRing | None = None
        self.rx: BackRing | None = None
        self.pages: list[MappedGrant] = []
        self.rx_queue: deque[bytes] = deque()
        self.stats = NetifStats()

    def probe(self) -> None:
        self.xs_write("feature-rx-copy", "1")
        self.xs_write("feature-sg", "0")
        self.xs_write("mac", self.mac)
        self.xs_write("bridge", self.bridge.name)
        self.set_state(S.XenbusStateInitWait)
        self.watch_frontend()

    def connect(self) -> bool:
        tx_ref = self.fe_read_int("tx-ring-ref")
        rx_ref = self.fe_read_int("rx-ring-ref")
        evtchn = self.fe_read_int("event-channel")
        if evtchn is None:
            evtchn = self.fe_read_int("event-channel-tx")
        if tx_ref is None or rx_ref is None or evtchn is None:
            self.fail("reading tx-ring-ref/rx-ring-ref/event-channel")
            return False
        if self.fe_read("request-rx-copy") not in ("1", None):
            self.fail("the frontend must use rx-copy")
            return False
        for ref in (tx_ref, rx_ref):
            status, page = self.kernel.map_grant(self.domid, ref, readonly=False)
            if status != GntSt.GNTST_okay or page is None:
                self.disconnect()
                self.fail(f"mapping ring {ref}: {GntSt(status).name}")
                return False
            self.pages.append(page)
        port = self.kernel.bind_interdomain(self.domid, evtchn, self._on_event)
        if port < 0:
            self.disconnect()
            self.fail(f"binding event channel {evtchn}: {port}")
            return False
        self.port = port
        self.tx = BackRing(self.pages[0].page, N.TX_REQUEST.size, N.TX_RESPONSE.size)
        self.rx = BackRing(self.pages[1].page, N.RX_REQUEST.size, N.RX_RESPONSE.size)
        self.bridge.add_port(self)
        return True

    def disconnect(self) -> None:
        self.bridge.remove_port(self)
        self.tx = self.rx = None
        if self.port is not None:
            self.kernel.unbind(self.port)
            self.port = None
        for page in self.pages:
            self.kernel.unmap_grant(page)
        self.pages = []
        self.rx_queue.clear()

    # -- events -----------------------------------------------------------------------
    def _on_event(self, port: int) -> None:
        self._tx_action()
        self._rx_action()

    def _notify(self, needed: bool, what: str) -> None:
        if needed:
            self.stats.notifications_sent += 1
            self.kernel.notify(self.port or 0, what)
        else:
            self.stats.notifications_saved += 1

    def _tx_action(self) -> None:
        ring = self.tx
        if ring is None:
            return
        frames: list[bytes] = []
        handled = 0
        frame = bytearray()
        while True:
            if ring.overflowed():
                self.fail("frontend overflowed the tx ring")
                return
            while ring.unconsumed_requests() and handled < MAX_TX_PER_EVENT:
                gref, offset, flags, rid, size = N.TX_REQUEST.unpack(ring.get_request())
                handled += 1
                status = N.NETIF_RSP_OKAY
                if offset + size > 4096 or flags & N.NETTXF_extra_info:
                    status = N.NETIF_RSP_ERROR
                else:
                    st, page = self.kernel.map_grant(self.domid, gref, readonly=True)
                    if st != GntSt.GNTST_okay or page is None:
                        status = N.NETIF_RSP_ERROR
                    else:
                        frame += page.page[offset : offset + size]
                        self.kernel.unmap_grant(page)
                if (status == N.NETIF_RSP_OKAY and not flags & N.NETTXF_more_data
                        and not N.ETH_MIN <= len(frame) <= N.ETH_MAX_TX):
                    # xenvif_tx_build_gops: a packet shorter than an Ethernet header (or
                    # longer than 64 KiB) is an error, never handed to the bridge
                    self.trace("tx_bad_size", {"len": len(frame)})
                    status = N.NETIF_RSP_ERROR
                ring.put_response(N.TX_RESPONSE.pack(rid, status))
                if status != N.NETIF_RSP_OKAY:
                    self.stats.errors += 1
                    frame = bytearray()
                elif not flags & N.NETTXF_more_data:
                    frames.append(bytes(frame))
                    frame = bytearray()
            if handled >= MAX_TX_PER_EVENT or not ring.final_check_for_requests():
                break
        if handled:
            self._notify(ring.push_responses_and_check_notify(), "netif tx responses")
        for f in frames:
            self.stats.tx_packets += 1
            self.trace("tx", {"len": len(f)})
            self.bridge.forward(f, self)

    def deliver(self, frame: bytes) -> None:
        """The bridge hands us a frame for the guest."""
        if len(self.rx_queue) >= RX_QUEUE_MAX:
            self.stats.rx_dropped += 1
            self.trace("rx_dropped", {"len": len(frame), "why": "queue full"})
            return
        self.rx_queue.append(frame)
        self._rx_action()

    def _rx_action(self) -> None:
        ring = self.rx
        if ring is None or not self.rx_queue:
            return
        delivered = 0
        while self.rx_queue and ring.unconsumed_requests():
            rid, gref = N.RX_REQUEST.unpack(ring.get_request())
            frame = self.rx_queue.popleft()
            st, page = self.kernel.map_grant(self.domid, gref, readonly=False)
            if st != GntSt.GNTST_okay or page is None or len(frame) > 4096:
                ring.put_response(N.RX_RESPONSE.pack(rid, 0, 0, N.NETIF_RSP_ERROR))
                self.stats.errors += 1
                if page is not None:
                    self.kernel.unmap_grant(page)
                continue
            page.page[0 : len(frame)] = frame
            self.kernel.unmap_grant(page)
            ring.put_response(N.RX_RESPONSE.pack(rid, 0, 0, len(frame)))
            self.stats.rx_packets += 1
            delivered += 1
            self.trace("rx", {"len": len(frame)})
        if delivered:
            self._notify(ring.push_responses_and_check_notify(), "netif rx responses")
        if self.rx_queue and ring.final_check_for_requests():  # buffers posted meanwhile
            self._rx_action()

    def trace(self, name: str, args: dict[str, object]) -> None:
        host = self.kernel.host
        host.trace.emit(host.now(), self.domid, 0, Kind.IO, f"netback.{name}",
                        {"vif": self.name, **args})
