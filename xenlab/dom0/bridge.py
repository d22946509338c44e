"""xenbr0: a learning Ethernet bridge in Dom0 joining the guests' vifs, with a pcap tap.

Every frame a vif hands in is forwarded like a switch does: the source MAC
is learned on the ingress port; a frame to a known unicast MAC goes out of
that port only, broadcast, multicast and unknown destinations are flooded to
every other port. With ``capture(path)`` every frame that crosses the bridge
is written to a pcap file (link type Ethernet, timestamps in virtual time)
that tcpdump, tshark or Wireshark open.

Real Xen: Linux net/bridge/ (br_forward.c, br_fdb.c); the toolstack's
/etc/xen/scripts/vif-bridge adds each vif to the bridge
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from typing import IO, Protocol

from xenlab.xen.trace import Kind, Trace

__all__ = ["Bridge", "BridgePort"]

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1


class BridgePort(Protocol):
    name: str

    def deliver(self, frame: bytes) -> None: ...


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


class Bridge:
    def __init__(self, name: str, trace: Trace, clock: Callable[[], int]) -> None:
        self.name = name
        self.trace = trace
        self.clock = clock
        self.ports: list[BridgePort] = []
        self.fdb: dict[bytes, BridgePort] = {}
        self.pcap: IO[bytes] | None = None
        #: a write to the pcap file that failed (a full disk): capturing stopped there,
        #: and ``xenlab run`` reports it in one line after the run
        self.capture_error: OSError | None = None
        self.frames = 0

    def add_port(self, port: BridgePort) -> None:
        self.ports.append(port)

    def remove_port(self, port: BridgePort) -> None:
        if port in self.ports:
            self.ports.remove(port)
        self.fdb = {mac: p for mac, p in self.fdb.items() if p is not port}

    def capture(self, path: str) -> None:
        """Start writing every frame to a pcap file (like ``tcpdump -i xenbr0 -w path``)."""
        self.capture_error = None
        self.pcap = open(path, "wb")  # noqa: SIM115 - closed by stop_capture
        self._pcap_write(struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535,
                                     LINKTYPE_ETHERNET))
        if self.capture_error is not None:
            raise self.capture_error

    def stop_capture(self) -> None:
        if self.pcap is not None:
            pcap, self.pcap = self.pcap, None
            try:
                pcap.close()
            except OSError as err:
                self.capture_error = self.capture_error or err

    def _pcap_write(self, *chunks: bytes) -> None:
        """Write and flush; a failure is kept in ``capture_error`` and ends the capture
        (never an exception in the middle of a guest's hypercall)."""
        assert self.pcap is not None
        try:
            for chunk in chunks:
                self.pcap.write(chunk)
            self.pcap.flush()
        except OSError as err:
            self.capture_error = err
            pcap, self.pcap = self.pcap, None
            with contextlib.suppress(OSError):
                pcap.close()

    def forward(self, frame: bytes, ingress: BridgePort) -> None:
        if len(frame) < 14:
            return
        self.frames += 1
        dst, src = frame[0:6], frame[6:12]
        ethertype = struct.unpack_from(">H", frame, 12)[0]
        if self.pcap is not None:
            t = self.clock()
            self._pcap_write(struct.pack("<IIII", t // 1_000_000_000,
                                         (t // 1000) % 1_000_000, len(frame), len(frame)),
                             frame)
        if not src[0] & 1:
            self.fdb[src] = ingress
        target = self.fdb.get(dst) if not dst[0] & 1 else None
        outs = [target] if target is not None else [p for p in self.ports if p is not ingress]
        outs = [p for p in outs if p is not ingress]
        self.trace.emit(self.clock(), 0, 0, Kind.IO, "bridge.forward",
                        {"bridge": self.name, "in": ingress.name, "out": [p.name for p in outs],
                         "src": _mac(src), "dst": _mac(dst), "ethertype": f"{ethertype:#06x}",
                         "len": len(frame), "flooded": target is None})
        for port in outs:
            port.deliver(frame)
