"""IDE/ATA disks in PIO mode: the PIIX3's two channels (0x1F0 and 0x170), master and slave.

Commands: IDENTIFY DEVICE, READ SECTORS, WRITE SECTORS (LBA28 and CHS), FLUSH
CACHE, SET FEATURES, INITIALIZE DEVICE PARAMETERS; anything else is aborted
(status ERR, error ABRT), as a real drive does. Reads past the end of the
disk and writes to a read-only disk are aborted too: the image file is never
written outside its own size.

Real Xen: QEMU hw/ide/core.c, hw/ide/piix.c
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import IO

__all__ = ["IdeChannel", "IdeDisk"]

SECTOR = 512
BSY, DRDY, DSC, DRQ, ERR = 0x80, 0x40, 0x10, 0x08, 0x01
ABRT = 0x04


class IdeDisk:
    def __init__(self, path: str, readonly: bool, model: str = "XENLAB HARDDISK") -> None:
        self.path = path
        self.readonly = readonly
        self.file: IO[bytes] = open(path, "rb" if readonly else "r+b")  # noqa: SIM115
        self.sectors = os.fstat(self.file.fileno()).st_size // SECTOR
        self.model = model

    def identify(self) -> bytes:
        w = [0] * 256
        cyl = min(16383, max(1, self.sectors // (16 * 63)))
        w[0] = 0x0040
        w[1], w[3], w[6] = cyl, 16, 63
        w[47] = 0x8001
        w[49] = 0x0200                           # LBA supported
        w[53] = 0x0001
        w[54], w[55], w[56] = cyl, 16, 63
        chs = cyl * 16 * 63
        w[57], w[58] = chs & 0xFFFF, chs >> 16
        lba = min(self.sectors, 0x0FFFFFFF)
        w[60], w[61] = lba & 0xFFFF, lba >> 16     # LBA28 sector count
        w[80] = 0x007E
        for i, (first, text) in enumerate(((10, "XENLAB0001".ljust(20)),
                                           (23, "1.0".ljust(8)),
                                           (27, self.model.ljust(40)))):
            _ = i
            for j in range(0, len(text), 2):
                w[first + j // 2] = (ord(text[j]) << 8) | ord(text[j + 1])
        return struct.pack("<256H", *w)

    def read(self, lba: int, count: int) -> bytes:
        self.file.seek(lba * SECTOR)
        return self.file.read(count * SECTOR).ljust(count * SECTOR, b"\0")

    def write(self, lba: int, data: bytes) -> None:
        self.file.seek(lba * SECTOR)
        self.file.write(data)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class IdeChannel:
    """One ATA channel: command block at ``base`` (8 ports), control at ``ctrl``."""

    def __init__(self, base: int, ctrl: int, trace: Callable[[str, dict[str, object]], None]
                 ) -> None:
        self.base = base
        self.ctrl = ctrl
        self.trace = trace
        self.disks: list[IdeDisk | None] = [None, None]
        self.regs = bytearray(8)  # data, error/feature, count, lba0, lba1, lba2, drive, status
        self.status = DRDY | DSC
        self.error = 0
        self.buf = bytearray()
        self.pos = 0
        self.write_lba: int | None = None
        self.write_left = 0

    @property
    def drive(self) -> int:
        return (self.regs[6] >> 4) & 1

    @property
    def disk(self) -> IdeDisk | None:
        return self.disks[self.drive]

    def _lba(self) -> int:
        if self.regs[6] & 0x40:  # LBA mode
            return (self.regs[3] | (self.regs[4] << 8) | (self.regs[5] << 16)
                    | ((self.regs[6] & 0x0F) << 24))
        cyl = self.regs[4] | (self.regs[5] << 8)
        head, sect = self.regs[6] & 0x0F, self.regs[3]
        return (cyl * 16 + head) * 63 + max(1, sect) - 1

    def _abort(self, why: str) -> None:
        self.status = DRDY | ERR
        self.error = ABRT
        self.buf = bytearray()
        self.trace("ide.abort", {"why": why})

    def _command(self, cmd: int) -> None:
        disk = self.disk
        self.error = 0
        if disk is None:
            self.status = 0
            return
        count = self.regs[2] or 256
        if cmd == 0xEC:  # IDENTIFY DEVICE
            self.buf, self.pos = bytearray(disk.identify()), 0
            self.status = DRDY | DSC | DRQ
            self.trace("ide.identify", {"sectors": disk.sectors})
        elif cmd in (0x20, 0x21):  # READ SECTORS
            lba = self._lba()
            if lba + count > disk.sectors:
                self._abort(f"read beyond the end: LBA {lba} + {count}")
                return
            self.buf, self.pos = bytearray(disk.read(lba, count)), 0
            self.status = DRDY | DSC | DRQ
            self.trace("ide.read", {"lba": lba, "sectors": count})
        elif cmd in (0x30, 0x31):  # WRITE SECTORS
            lba = self._lba()
            if disk.readonly:
                self._abort("write to a read-only disk")
                return
            if lba + count > disk.sectors:
                self._abort(f"write beyond the end: LBA {lba} + {count}")
                return
            self.write_lba, self.write_left = lba, count
            self.buf, self.pos = bytearray(SECTOR), 0
            self.status = DRDY | DSC | DRQ
        elif cmd in (0xE7, 0xEA, 0xEF, 0x91, 0x10, 0xE0, 0xE1, 0xE5):
            self.status = DRDY | DSC  # flush, set features, init params, recalibrate, power
        else:
            self._abort(f"command {cmd:#04x} not supported")

    def io(self, port: int, write: bool, value: int, size: int = 1) -> int:
        if port == self.ctrl:
            if write:
                if value & 0x04:  # software reset
                    self.status, self.error, self.buf = DRDY | DSC, 0x01, bytearray()
                return 0
            return self.status if self.disk else 0
        off = port - self.base
        if off == 0:
            return self._data(write, value, size)
        if write:
            if off == 7:
                self._command(value & 0xFF)
            else:
                self.regs[off] = value & 0xFF
            return 0
        if off == 1:
            return self.error
        if off == 7:
            return self.status if self.disk else 0
        return self.regs[off]

    def _data(self, write: bool, value: int, size: int) -> int:
        if not self.status & DRQ:
            return 0 if write else (1 << (8 * size)) - 1
        if write:
            self.buf[self.pos : self.pos + size] = value.to_bytes(size, "little")
            self.pos += size
            if self.pos >= SECTOR and self.write_lba is not None and self.disk is not None:
                self.disk.write(self.write_lba, bytes(self.buf[:SECTOR]))
                self.trace("ide.write", {"lba": self.write_lba, "sectors": 1})
                self.write_lba += 1
                self.write_left -= 1
                self.buf, self.pos = bytearray(SECTOR), 0
                if self.write_left <= 0:
                    self.write_lba = None
                    self.status = DRDY | DSC
            return 0
        data = int.from_bytes(self.buf[self.pos : self.pos + size].ljust(size, b"\0"), "little")
        self.pos += size
        if self.pos >= len(self.buf):
            self.status = DRDY | DSC
        return data
