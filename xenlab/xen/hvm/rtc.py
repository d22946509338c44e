"""The MC146818 real-time clock and its CMOS memory (ports 0x70 index, 0x71 data).

The clock is virtual: it starts at 2026-01-01 00:00:00 and advances with the
domain's virtual time, so boots are reproducible. Registers 0x15-0x18 and
0x30-0x35 hold the memory sizes hvmloader writes for the BIOS.

Real Xen: xen/arch/x86/hvm/rtc.c
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Rtc"]

EPOCH = (2026, 1, 1)


def _bcd(v: int) -> int:
    return ((v // 10) << 4) | (v % 10)


class Rtc:
    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.cmos = bytearray(128)
        self.index = 0
        self.cmos[0x0A] = 0x26
        self.cmos[0x0B] = 0x02  # 24-hour, BCD
        self.cmos[0x0D] = 0x80  # valid RAM and time

    def _time(self, reg: int) -> int:
        secs = self.clock() // 1_000_000_000
        s, m, h = secs % 60, (secs // 60) % 60, (secs // 3600) % 24
        days = secs // 86400
        year, month, day = EPOCH[0], EPOCH[1], EPOCH[2] + days  # enough for a boot
        table = {0x00: s, 0x02: m, 0x04: h, 0x06: 5, 0x07: day, 0x08: month,
                 0x09: year % 100, 0x32: year // 100}
        return _bcd(table[reg])

    def io(self, port: int, write: bool, value: int) -> int:
        if port == 0x70:
            if write:
                self.index = value & 0x7F
            return 0xFF
        if write:
            if self.index not in (0x0C, 0x0D):
                self.cmos[self.index] = value & 0xFF
            return 0
        if self.index in (0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32):
            return self._time(self.index)
        if self.index == 0x0A:
            return self.cmos[0x0A] & 0x7F  # update-in-progress never set
        return self.cmos[self.index]
