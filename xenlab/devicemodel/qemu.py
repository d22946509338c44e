"""One device model per HVM guest: the PC's devices, answering Xen's ioreqs.

Xen forwards every port access it does not emulate itself as an ioreq
(``IOREQ_TYPE_PIO``, or ``IOREQ_TYPE_PCI_CONFIG`` for the 0xCFC window).
At start the device model registers as the guest's ioreq server
(``xendevicemodel_create_ioreq_server``: Xen allocates ``vp_eport``), maps the
shared ioreq page (``xenforeignmemory_map``) and binds an event channel to
``vp_eport`` (``xenevtchn_bind_interdomain``). Each notification on that port
runs ``handle_ioreq``: it reads the request from the page, dispatches it
through the port table to the device, writes the result back, marks it
``STATE_IORESP_READY`` and notifies the port, as QEMU's ``cpu_handle_ioreq``
does.

Ports: COM1 16550 (0x3F8-0x3FF), IDE primary (0x1F0-0x1F7, 0x3F6) and secondary
(0x170-0x177, 0x376), the 8042 keyboard controller (0x60, 0x64), VGA
(0x3B4-0x3DA; none with ``vga = "none"``), and the PCI host bridge's
0xCF8-0xCFF. Those ranges and its PCI functions are what it claims from Xen at
start (``XEN_DMOP_map_io_range_to_ioreq_server``, one dm_op each); an access to
anything else never reaches it (Xen's null handler reads all ones). A claimed
port no register answers reads as all ones and ignores writes. Not emulated:
QEMU's ``port92`` (the fast A20 gate at 0x92) and the IDE controller's
bus-master ports, so those accesses end in Xen's null handler here. No debug
console at 0x402 either: libxl starts QEMU without ``-debugcon``, so what
SeaBIOS writes there before it finds Xen (its banner, again on 0xE9 after) and
all the VGA BIOS's messages go to the null handler, as on a real host.

Real Xen: QEMU hw/i386/xen/xen-hvm.c (cpu_handle_ioreq, handle_ioreq), libxl_dm.c
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from xenlab.devicemodel.ide import IdeChannel, IdeDisk
from xenlab.devicemodel.pci import PciBus
from xenlab.devicemodel.pckbd import Kbd8042
from xenlab.devicemodel.serial import Serial16550
from xenlab.devicemodel.vga import VGA_BASE, VGA_SIZE, Vga
from xenlab.public.domctl import DmOp, IoRangeType, xen_dmop_pci_sbdf
from xenlab.public.hvm import (
    IOREQ_DATA_IS_PTR,
    IOREQ_DIR_SHIFT,
    HvmParam,
    IoreqState,
    IoreqType,
)
from xenlab.public.xen import Hypercall
from xenlab.xen.hvm.io import (
    IOREQ_FORMAT,
    hvm_create_ioreq_server,
    ioreq_server_map_io_range,
    ioreq_server_set_state,
)
from xenlab.xen.hvm.irq import set_isa_irq_level
from xenlab.xen.privcmd import dom0_hypercall
from xenlab.xen.trace import Kind

# enum members as plain values in the ioreq loop (an enum class attribute costs a lookup
# through EnumType's __getattr__ hook)
_IOREQ_NONE = int(IoreqState.STATE_IOREQ_NONE)
_IOREQ_READY = int(IoreqState.STATE_IOREQ_READY)
_IORESP_READY = int(IoreqState.STATE_IORESP_READY)
_TYPE_PIO = int(IoreqType.IOREQ_TYPE_PIO)
_TYPE_PCI_CONFIG = int(IoreqType.IOREQ_TYPE_PCI_CONFIG)
_IOREQ_PFN = int(HvmParam.HVM_PARAM_IOREQ_PFN)

if TYPE_CHECKING:
    from xenlab.dom0.kernel import Dom0Kernel, MappedGrant
    from xenlab.xen.domain import Domain
    from xenlab.xen.setup import XenHost

__all__ = ["DeviceModel"]

VGA_ROM_SIZE = 0x10000
#: vdev -> (channel, drive)
IDE_SLOTS = {"hda": (0, 0), "hdb": (0, 1), "hdc": (1, 0), "hdd": (1, 1)}

Port = Callable[[int, bool, int, int], int]


class DeviceModel:
    def __init__(self, host: XenHost, d: Domain, *, vga: bool = True) -> None:
        """``vga``: a standard VGA adapter (xl.cfg ``vga = "stdvga"``), or none."""
        self.host = host
        self.d = d
        self.pci = PciBus(vga=vga)
        self.serial = Serial16550(0x3F8, self._serial_out)
        self.kbd = Kbd8042(self._irq1)
        self.vga = Vga() if vga else None
        self.ide = [IdeChannel(0x1F0, 0x3F6, self._trace), IdeChannel(0x170, 0x376, self._trace)]
        # Byte-wide devices register per port; a wider access (inside one range claimed
        # from Xen: Xen sends no other) is split into byte lanes, each to whoever owns
        # that port, as QEMU splits accesses across regions.
        self.byte_ports: dict[int, Callable[[int, bool, int], int]] = {}
        for p in range(0x3F8, 0x400):
            self.byte_ports[p] = self.serial.io
        for p in (0x60, 0x64):
            self.byte_ports[p] = self.kbd.io
        if self.vga is not None:
            for p in range(0x3B4, 0x3DB):
                self.byte_ports[p] = self.vga.io
        for ch in self.ide:  # the task-file registers and device control are byte-wide
            for p in (*range(ch.base + 1, ch.base + 8), ch.ctrl):
                self.byte_ports[p] = ch.io
        self.ports: dict[int, Port] = dict.fromkeys(self.byte_ports, self._byte_lanes)
        for ch in self.ide:  # the data register moves 16 or 32 bits at once
            self.ports[ch.base] = ch.io
        self.requests = 0
        self.kernel: Dom0Kernel | None = None
        self.local_port = 0   # Dom0's end of the ioreq server's event channel
        # (pfn, the P2M generation it was checked at, mfn, the mapping)
        self._page: tuple[int, int, int, MappedGrant] | None = None
        self.vga_rom: ctypes.Array[ctypes.c_char] | None = None
        self.pci.on_rom_map = self._map_rom

    def load_vga_rom(self, path: str) -> None:
        """The VGA adapter's expansion ROM (SeaBIOS copies it to 0xC0000 and runs it, as
        with QEMU's vgabios); exposed through the PCI ROM BAR of the VGA's function
        (00:02.0, as in Xen's QEMU)."""
        with open(path, "rb") as fp:
            data = fp.read(VGA_ROM_SIZE)
        self.vga_rom = (ctypes.c_char * VGA_ROM_SIZE).from_buffer_copy(
            data.ljust(VGA_ROM_SIZE, b"\xff"))
        if self.pci.vga_devfn is not None:
            self.pci.rom_size[self.pci.vga_devfn] = VGA_ROM_SIZE

    def _map_rom(self, devfn: int, base: int) -> None:
        if devfn == self.pci.vga_devfn and self.vga_rom is not None:
            self.host.map_device_memory(self.d, base, VGA_ROM_SIZE,
                                        ctypes.addressof(self.vga_rom))
            self._trace("pci.rom_map", {"dev": f"{devfn >> 3:02x}:{devfn & 7}",
                                        "base": hex(base)})

    # -- wiring ----------------------------------------------------------------------------
    def attach(self, kernel: Dom0Kernel) -> None:
        """Become the domain's ioreq server, claim the ports and PCI functions of its
        devices, enable the server, bind its event channel, map video memory."""
        hvm = self.d.hvm
        assert hvm is not None
        self.kernel = kernel
        dom0 = kernel.dom0.domid
        vp_eport = hvm_create_ioreq_server(self.host, self.d, hvm, dom0)
        # QEMU's xen_create_ioreq_server, then a map for each I/O region and PCI device
        # it realizes (xen_map_io_section, xen_map_pcidev), then xen_set_ioreq_server_state
        self._dm_op(DmOp.XEN_DMOP_create_ioreq_server, {"result": {"id": 0}}, min(vp_eport, 0))
        if vp_eport > 0:
            claims = [(IoRangeType.XEN_DMOP_IO_RANGE_PORT, s, e)
                      for s, e in self.claimed_ports()]
            claims += [(IoRangeType.XEN_DMOP_IO_RANGE_PCI, sbdf, sbdf)
                       for sbdf in self.claimed_functions()]
            for kind, start, end in claims:
                rc = ioreq_server_map_io_range(self.host, self.d, hvm, dom0, kind, start, end)
                self._dm_op(DmOp.XEN_DMOP_map_io_range_to_ioreq_server,
                            {"id": 0, "type": kind.name, "start": hex(start), "end": hex(end)},
                            rc)
            rc = ioreq_server_set_state(self.host, self.d, hvm, dom0, True)
            self._dm_op(DmOp.XEN_DMOP_set_ioreq_server_state, {"id": 0, "enabled": 1}, rc)
            port = kernel.bind_interdomain(self.d.domid, vp_eport, self._on_ioreq_event)
            self.local_port = max(0, port)
        if self.vga is None:
            return  # no video memory: the legacy VGA window stays unassigned (all ones)
        for v in self.d.vcpus:
            if v.cpu is not None:
                v.cpu.map_host(VGA_BASE, VGA_SIZE, self.vga.host_ptr, executable=False)

    def _dm_op(self, op: DmOp, fields: dict[str, object], ret: int) -> None:
        """Record one dm_op QEMU makes for this domain (its fields only when it worked)."""
        dom0_hypercall(self.host, Hypercall.dm_op,
                       {"domid": self.d.domid, "op": op.name, "nr_bufs": 1,
                        **(fields if not ret else {})}, ret)

    def claimed_ports(self) -> list[tuple[int, int]]:
        """The port ranges this device model claims from Xen (inclusive): its devices'
        ports, each contiguous run one range, and the PCI host bridge's 0xCF8-0xCFF
        (QEMU's ``pci-conf-idx`` and ``pci-conf-data``)."""
        ports = sorted({*self.ports, *range(0xCF8, 0xD00)})
        runs: list[tuple[int, int]] = []
        for p in ports:
            if runs and runs[-1][1] == p - 1:
                runs[-1] = (runs[-1][0], p)
            else:
                runs.append((p, p))
        return runs

    def claimed_functions(self) -> list[int]:
        """The PCI functions this device model claims (XEN_DMOP_PCI_SBDF numbers)."""
        return [xen_dmop_pci_sbdf(0, 0, devfn >> 3, devfn & 7) for devfn in self.pci.functions]

    def _ioreq_page(self) -> memoryview | None:
        """The shared ioreq page, mapped from the guest once and again only if it moved
        (checked again only when the param or the guest's P2M has changed)."""
        hvm = self.d.hvm
        pfn = hvm.params.get(_IOREQ_PFN) if hvm is not None else None
        page = self._page
        if page is not None and page[0] == pfn and page[1] == self.d.p2m_gen:
            return page[3].page
        if pfn is None or self.kernel is None:
            return None
        mfn = self.d.pfn_to_mfn(pfn)
        if page is not None and page[2] == mfn:
            self._page = (pfn, self.d.p2m_gen, mfn, page[3])
            return page[3].page
        if page is not None:
            self.kernel.unmap_grant(page[3])
            self._page = None
        mapped = self.kernel.map_foreign_mfn(self.d.domid, mfn)
        if mapped is None:
            return None
        self._page = (pfn, self.d.p2m_gen, mfn, mapped)
        return mapped.page

    def _on_ioreq_event(self, port: int) -> None:
        """cpu_handle_ioreq: a notification on the ioreq server's port."""
        page = self._ioreq_page()
        if page is not None and self.handle_ioreq(page):
            assert self.kernel is not None
            self.kernel.notify(port, "ioresp")

    def add_disk(self, vdev: str, path: str, readonly: bool) -> None:
        chan, drive = IDE_SLOTS[vdev]
        self.ide[chan].disks[drive] = IdeDisk(os.fspath(path), readonly)

    def disks(self) -> list[IdeDisk]:
        """The IDE disks attached (hda-hdd), in channel order."""
        return [disk for ch in self.ide for disk in ch.disks if disk is not None]

    def close(self) -> None:
        if self.kernel is not None:
            if self.local_port:
                self.kernel.unbind(self.local_port)
                self.local_port = 0
            if self._page is not None:
                self.kernel.unmap_grant(self._page[3])
                self._page = None
        for ch in self.ide:
            for disk in ch.disks:
                if disk is not None:
                    disk.close()

    def _byte_lanes(self, p: int, write: bool, value: int, size: int) -> int:
        out = 0
        for i in range(size):
            fn = self.byte_ports.get(p + i)
            lane = 0xFF if fn is None else fn(p + i, write, (value >> (8 * i)) & 0xFF) & 0xFF
            out |= lane << (8 * i)
        return out

    # -- the ioreq loop --------------------------------------------------------------------
    def handle_ioreq(self, page: memoryview) -> bool:
        """Serve the request in the slot; False if there was none to serve."""
        addr, data, count, size, port, pad, flags, rtype = IOREQ_FORMAT.unpack_from(page, 0)
        if flags & 0x0F != _IOREQ_READY or size not in (1, 2, 4):
            return False
        read = bool(flags >> IOREQ_DIR_SHIFT & 1)
        self.requests += 1
        if flags & IOREQ_DATA_IS_PTR:
            ok = rtype == _TYPE_PIO and self._rep_pio(addr, data, count, size, read)
            state = _IORESP_READY if ok else _IOREQ_NONE
            IOREQ_FORMAT.pack_into(page, 0, addr, data, count, size, port, pad,
                                   (flags & 0xF0) | state, rtype)
            return ok
        if rtype == _TYPE_PCI_CONFIG:
            result = self.pci.config(addr >> 32, addr & 0xFFF, size, not read, data)
        elif rtype == _TYPE_PIO:
            byte = self.byte_ports.get(addr) if size == 1 else None
            if byte is not None:  # a byte to a byte-wide register: no lanes to split
                result = byte(addr, not read, data & 0xFF) & 0xFF
            elif (handler := self.ports.get(addr)) is None:
                result = (1 << (8 * size)) - 1 if read else 0
            else:
                result = handler(addr, not read, data, size)
        else:
            result = (1 << (8 * size)) - 1
        new_flags = (flags & 0xF0) | _IORESP_READY
        IOREQ_FORMAT.pack_into(page, 0, addr, result if read else data, count, size, port, pad,
                               new_flags, rtype)
        return True

    def _rep_pio(self, port: int, gpa: int, count: int, size: int, read: bool) -> bool:
        """``rep ins`` (read: port to guest memory) or ``rep outs`` of ``count`` elements at
        ``gpa``, all in one guest page, through a foreign mapping of that page (QEMU's
        cpu_physical_memory_rw on the mapped guest)."""
        handler = self.ports.get(port)
        off = gpa & 0xFFF
        if (self.kernel is None or count <= 0 or off + count * size > 4096
                or size not in (1, 2, 4)):
            return False
        mapped = self.kernel.map_foreign_mfn(self.d.domid, self.d.pfn_to_mfn(gpa >> 12))
        if mapped is None:
            return False
        try:
            page = mapped.page
            if read:
                fill = (1 << (8 * size)) - 1
                words = [fill] * count if handler is None else [
                    handler(port, False, 0, size) for _ in range(count)]
                page[off : off + count * size] = b"".join(
                    (w & fill).to_bytes(size, "little") for w in words)
            elif handler is not None:
                for i in range(count):
                    at = off + i * size
                    handler(port, True, int.from_bytes(page[at : at + size], "little"), size)
        finally:
            self.kernel.unmap_grant(mapped)
        return True

    # -- devices' side effects ---------------------------------------------------------------
    def _serial_out(self, data: bytes) -> None:
        assert self.d.hvm is not None
        self.d.hvm.serial.extend(data)
        if len(self.d.hvm.serial) > 1 << 20:
            del self.d.hvm.serial[: len(self.d.hvm.serial) - (1 << 20)]
        self.host.console_append(self.d, data.decode("latin-1"))

    def _irq1(self, level: int) -> None:
        """The keyboard controller drives ISA IRQ 1 (xen_set_irq: XEN_DMOP_set_isa_irq_level)."""
        hvm = self.d.hvm
        if hvm is not None:
            set_isa_irq_level(hvm.irq, hvm.vpic, 1, level)

    def _trace(self, name: str, args: dict[str, object]) -> None:
        self.host.trace.emit(self.host.now(), self.d.domid, 0, Kind.IO, f"qemu.{name}", args)

    # -- what the user sees --------------------------------------------------------------------
    def screen_text(self) -> str:
        return self.vga.screen_text() if self.vga is not None else ""

    def send_serial_input(self, data: bytes) -> None:
        self.serial.send_input(data)

    def type_keys(self, text: str) -> None:
        self.kbd.type_text(text)
