"""Port I/O from an HVM guest: the VM exit, who handles it, and ioreqs to the device model.

Every ``in``/``out`` of an HVM guest is a VM exit (``handle_pio``). Xen first
offers it to the devices it emulates itself (``hvm_portio_intercept``): the
PIT (0x40-0x43, 0x61), the RTC/CMOS (0x70-0x71), the two PICs (0x20-0x21,
0xA0-0xA1) and the 0xE9 debug port. PCI configuration accesses (0xCF8 is
the address latch, 0xCFC-0xCFF the data window) become ``IOREQ_TYPE_PCI_CONFIG``
requests. Everything else becomes an ``IOREQ_TYPE_PIO`` request for the
device model (QEMU) in Dom0: Xen fills the ``ioreq`` in the shared ioreq
page, moves it to ``STATE_IOREQ_READY`` and notifies the device model's event
channel; the device model handles it, writes the data back and sets
``STATE_IORESP_READY``; Xen completes the instruction.

xenlab runs that round trip synchronously inside the VM exit (a real vCPU
would sleep until QEMU answers on Dom0's CPU); every step is in the trace.

Real Xen: xen/arch/x86/hvm/io.c (handle_pio), xen/arch/x86/hvm/intercept.c,
xen/arch/x86/hvm/ioreq.c, xen/common/ioreq.c
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from xenlab.public.hvm import IOREQ_READ, IOREQ_WRITE, IoreqState, IoreqType
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain
    from xenlab.xen.hvm.hvm import HvmDomain
    from xenlab.xen.setup import XenHost

__all__ = ["IoreqServer", "handle_pio"]

IOREQ_FORMAT = struct.Struct("<QQIIIHBB")  # addr data count size vp_eport pad state|flags type


class IoreqServer(Protocol):
    """The device model's side: handle one ioreq written into the ioreq page."""

    def handle_ioreq(self, page: memoryview) -> None: ...


def _pack_ioreq(addr: int, data: int, size: int, read: bool, ioreq_type: int, port: int
                ) -> bytes:
    flags = IoreqState.STATE_IOREQ_READY | ((IOREQ_READ if read else IOREQ_WRITE) << 5)
    return IOREQ_FORMAT.pack(addr, data, 1, size, port, 0, flags, ioreq_type)


def _send_ioreq(host: XenHost, d: Domain, hvm: HvmDomain, ioreq_type: int, addr: int,
                size: int, read: bool, value: int) -> int:
    """hvm_send_ioreq: fill the slot, notify, let the device model answer, take the result."""
    server = hvm.ioreq_server
    page = hvm.ioreq_page()
    if server is None or page is None:
        return (1 << (8 * size)) - 1 if read else 0  # nobody home: reads float high
    page[0:IOREQ_FORMAT.size] = _pack_ioreq(addr, 0 if read else value, size, read,
                                            ioreq_type, hvm.ioreq_port)
    now = host.now()
    host.trace.emit(now, d.domid, 0, Kind.IOREQ, "ioreq", {
        "type": _TYPE_NAMES[ioreq_type], "addr": hex(addr), "size": size,
        "dir": "read" if read else "write", **({} if read else {"data": hex(value)}),
        "state": "STATE_IOREQ_READY"})
    server.handle_ioreq(page)
    _addr, data, _count, _size, _port, _pad, flags, _type = IOREQ_FORMAT.unpack(
        page[0:IOREQ_FORMAT.size])
    state = flags & 0x0F
    if state != IoreqState.STATE_IORESP_READY:
        data = (1 << (8 * size)) - 1  # the device model did not answer: all ones
    page[0:IOREQ_FORMAT.size] = bytes(IOREQ_FORMAT.size)  # back to STATE_IOREQ_NONE
    host.trace.emit(now, d.domid, 0, Kind.IOREQ, "ioresp", {
        "addr": hex(addr), "state": _STATE_NAMES.get(state, state),
        **({"data": hex(data & ((1 << (8 * size)) - 1))} if read else {})})
    return data & ((1 << (8 * size)) - 1)


Internal = Callable[[int, bool, int], int]
_TYPE_NAMES = {int(t): t.name for t in IoreqType}
_STATE_NAMES = {int(t): t.name for t in IoreqState}


def handle_pio(host: XenHost, d: Domain, hvm: HvmDomain, port: int, size: int, read: bool,
               value: int = 0) -> int:
    """One port access: Xen's own device, a PCI config access, or an ioreq to the DM."""
    handler: Internal | None = hvm.intercepts.get(port)
    who = "xen"
    if port == 0xB008 and size == 4 and read:  # the PM timer, read whole (SeaBIOS's delays)
        result = hvm.pmtimer.read32()
    elif handler is not None:
        result = handler(port, not read, value) if size == 1 else _wide(hvm, port, size,
                                                                        read, value)
    elif port == 0xCF8 and size == 4:
        if not read:
            hvm.pci_cf8 = value & 0xFFFFFFFF
        result = hvm.pci_cf8
    elif 0xCFC <= port <= 0xCFF:
        who = "dm"
        if not hvm.pci_cf8 & 0x80000000:
            result = (1 << (8 * size)) - 1
        else:
            # IOREQ_TYPE_PCI_CONFIG: addr = SBDF << 32 | register
            sbdf = (hvm.pci_cf8 >> 8) & 0xFFFF
            reg = (hvm.pci_cf8 & 0xFC) | (port & 3)
            result = _send_ioreq(host, d, hvm, IoreqType.IOREQ_TYPE_PCI_CONFIG,
                                 (sbdf << 32) | reg, size, read, value)
    else:
        who = "dm"
        result = _send_ioreq(host, d, hvm, IoreqType.IOREQ_TYPE_PIO, port, size, read, value)
    if host.trace.enabled:
        host.trace.emit(host.now(), d.domid, 0, Kind.VMEXIT, "io", {
            "port": hex(port), "size": size, "dir": "in" if read else "out",
            "value": hex(result if read else value), "handler": who})
    return result if read else 0


def _wide(hvm: HvmDomain, port: int, size: int, read: bool, value: int) -> int:
    """A 16/32-bit access to byte-wide devices: one byte per port; ports nobody decodes
    read as 0xFF."""
    result = 0
    for i in range(size):
        handler = hvm.intercepts.get(port + i)
        byte = 0xFF if handler is None else handler(port + i, not read,
                                                    (value >> (8 * i)) & 0xFF)
        result |= (byte & 0xFF) << (8 * i)
    return result
