"""xenconsoled: Dom0's daemon that drains each guest's PV console ring.

For every domain it maps the console page (the guest granted it to Dom0 in
the reserved grant entry ``GNTTAB_RESERVED_CONSOLE``, 0) and binds the
console event channel. When the guest notifies, it copies ``out[out_cons ..
out_prod)`` to the domain's console log and advances ``out_cons``; input for
the guest (``xl console``) goes into ``in[]`` the other way round. Both are
``console`` records of Dom0 (``dom`` 0, the guest in ``args.domid``): memory
accesses on the mapped ring, not hypercalls; the notification that follows is
Dom0's ``event_channel_op`` EVTCHNOP_send.

Real Xen: tools/console/daemon/io.c (handle_ring_read, buffer_append)
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from xenlab.dom0.kernel import Dom0Kernel, MappedGrant
from xenlab.public.grant_table import GNTTAB_RESERVED_CONSOLE
from xenlab.public.io import console as C
from xenlab.xen.domain import Domain
from xenlab.xen.trace import Kind

__all__ = ["Xenconsoled"]

MAX_BUFFER = 1 << 20  # console bytes kept per domain; older output is dropped


@dataclass
class _Console:
    domid: int
    page: MappedGrant
    port: int
    bytes_read: int = 0


class Xenconsoled:
    def __init__(self, kernel: Dom0Kernel, output: Callable[[Domain, str], None]) -> None:
        self.kernel = kernel
        self.output = output
        self.consoles: dict[int, _Console] = {}

    def connect(self, d: Domain) -> bool:
        """domain_create_ring: map the ring, bind the port."""
        conn = self.kernel.connect_interface(d, GNTTAB_RESERVED_CONSOLE, d.console_mfn,
                                             d.console_port, self._on_event)
        if conn is None:
            return False
        self.consoles[d.domid] = _Console(d.domid, *conn)
        return True

    def disconnect(self, domid: int) -> None:
        con = self.consoles.pop(domid, None)
        if con is not None:
            self._drain(con)
            self.kernel.unbind(con.port)
            self.kernel.unmap_grant(con.page)

    def _on_event(self, port: int) -> None:
        for con in self.consoles.values():
            if con.port == port:
                self._drain(con)
                return

    def _drain(self, con: _Console) -> None:
        page = con.page.page
        cons, prod = struct.unpack_from("<II", page, C.OUT_CONS)
        pending = (prod - cons) & 0xFFFFFFFF
        if pending == 0:
            return
        if pending > C.OUT_SIZE:  # a confused or hostile guest: take one ring's worth
            cons = (prod - C.OUT_SIZE) & 0xFFFFFFFF
            pending = C.OUT_SIZE
        data = bytearray()
        for i in range(pending):
            data.append(page[C.OUT_OFF + ((cons + i) & (C.OUT_SIZE - 1))])
        struct.pack_into("<I", page, C.OUT_CONS, prod)
        con.bytes_read += len(data)
        d = self.kernel.host.domains.get(con.domid)
        text = data.decode("latin-1")
        # Dom0 reads the mapped ring (memory accesses, not a hypercall); the notify after
        # it is Dom0's EVTCHNOP_send
        self.kernel.host.trace.emit(self.kernel.host.now(), 0, 0, Kind.CONSOLE,
                                    "xenconsoled_read", {"domid": con.domid, "bytes": len(data),
                                                         "text": text[:120]})
        if d is not None:
            self.output(d, text)
        self.kernel.notify(con.port, "console ring drained")

    def send_input(self, domid: int, data: bytes) -> int:
        """What ``xl console`` does with keystrokes: put them in ``in[]`` and notify."""
        con = self.consoles.get(domid)
        if con is None:
            return 0
        page = con.page.page
        cons, prod = struct.unpack_from("<II", page, C.IN_CONS)
        room = C.IN_SIZE - ((prod - cons) & 0xFFFFFFFF)
        n = max(0, min(room, len(data)))
        for i in range(n):
            page[C.IN_OFF + ((prod + i) & (C.IN_SIZE - 1))] = data[i]
        struct.pack_into("<I", page, C.IN_PROD, (prod + n) & 0xFFFFFFFF)
        if n:
            host = self.kernel.host
            host.trace.emit(host.now(), 0, 0, Kind.CONSOLE, "xenconsoled_write",
                            {"domid": domid, "bytes": n})
            self.kernel.notify(con.port, "console input")
        return n
