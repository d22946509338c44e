"""PCI configuration space of the emulated i440FX/PIIX3 PC, and Xen's platform device.

00:00.0 i440FX host bridge (8086:1237), 00:01.0 PIIX3 ISA bridge (8086:7000),
00:01.1 PIIX3 IDE (8086:7010), 00:02.0 standard VGA (1234:1111), 00:03.0 Xen platform
device (5853:0001, what PV drivers in an HVM guest look for). These are the slots Xen's
QEMU gives: its ``xenfv`` machine (hw/i386/pc_piix.c ``pc_xen_hvm_init``) builds the PC
with its VGA first and then adds ``xen-platform`` at the next free slot
(``pci_create_simple(bus, -1, "xen-platform")``), which is 00:03.0, or 00:02.0 on a
machine without VGA (``vga = "none"``), as here.

Real Xen: QEMU hw/pci-host/i440fx.c, hw/isa/piix3.c, hw/ide/piix.c, hw/xen/xen_platform.c
"""

from __future__ import annotations

import struct

__all__ = ["PciBus"]


def _config(vendor: int, device: int, cls: int, subcls: int, progif: int = 0,
            header: int = 0, command: int = 0) -> bytearray:
    cfg = bytearray(256)
    struct.pack_into("<HHHH", cfg, 0, vendor, device, command, 0x0280)
    cfg[8] = 0x01              # revision
    cfg[9], cfg[10], cfg[11] = progif, subcls, cls
    cfg[14] = header
    return cfg


ROM_BAR = 0x30


class PciBus:
    def __init__(self, *, vga: bool = True) -> None:
        self.rom_size: dict[int, int] = {}       # devfn -> expansion ROM size
        self.on_rom_map: object = None            # callback(devfn, base) when enabled
        #: devfn of the VGA adapter (None without one) and of the platform device: the
        #: platform device takes the first slot after the VGA's, as in QEMU's xenfv
        self.vga_devfn: int | None = (2 << 3) if vga else None
        self.platform_devfn = (3 << 3) if vga else (2 << 3)
        self.functions: dict[int, bytearray] = {
            (0 << 3) | 0: _config(0x8086, 0x1237, 0x06, 0x00, command=0x0006),
            (1 << 3) | 0: _config(0x8086, 0x7000, 0x06, 0x01, header=0x80, command=0x0007),
            (1 << 3) | 1: _config(0x8086, 0x7010, 0x01, 0x01, progif=0x80),
            self.platform_devfn: _config(0x5853, 0x0001, 0xFF, 0x80, command=0x0001),
        }
        if self.vga_devfn is not None:
            self.functions[self.vga_devfn] = _config(0x1234, 0x1111, 0x03, 0x00,
                                                     command=0x0003)
        self.functions = dict(sorted(self.functions.items()))
        struct.pack_into("<HH", self.functions[self.platform_devfn], 0x2C, 0x5853, 0x0001)
        struct.pack_into("<I", self.functions[(1 << 3) | 1], 0x20, 0xC001)  # BMIBA (BAR4)
        self.functions[self.platform_devfn][0x3D] = 1     # interrupt pin A

    def config(self, sbdf: int, reg: int, size: int, write: bool, value: int) -> int:
        bus, devfn = (sbdf >> 8) & 0xFF, sbdf & 0xFF
        cfg = self.functions.get(devfn) if bus == 0 else None
        if cfg is None:
            return (1 << (8 * size)) - 1
        reg &= 0xFF
        if write:
            if reg == ROM_BAR and size == 4 and devfn in self.rom_size:
                mask = ~(self.rom_size[devfn] - 1) & 0xFFFFF800
                value = (value & mask) | (value & 1)
                cfg[reg : reg + 4] = value.to_bytes(4, "little")
                if value & 1 and value & mask and callable(self.on_rom_map):
                    self.on_rom_map(devfn, value & mask)
                return 0
            if reg >= 0x04 and not (0x08 <= reg < 0x10):  # IDs and class are read-only
                cfg[reg : reg + size] = value.to_bytes(size, "little")[: 256 - reg]
            return 0
        return int.from_bytes(cfg[reg : reg + size].ljust(size, b"\xff"), "little")

    def ide_io_enabled(self) -> bool:
        return bool(self.functions[(1 << 3) | 1][4] & 1)
