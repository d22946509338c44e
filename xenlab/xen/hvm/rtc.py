"""The MC146818 real-time clock and its CMOS memory (ports 0x70 index, 0x71 data).

The clock shows the domain's wallclock (``get_localtime``): Xen's wallclock at boot,
plus the domain's virtual time since, plus its ``rtc_timeoffset`` (xl.cfg; set by the
toolstack with XEN_DOMCTL_settimeoffset). Xen's wallclock is fixed by default
(2026-01-01 00:00:00 UTC, ``WALLCLOCK_DEFAULT``) so that boots are reproducible;
``Lab(rtc_base="utc")`` starts it from the host's clock instead. The time registers
are BCD or binary and 24- or 12-hour as register B says. Registers 0x15-0x18 and
0x30-0x35 hold the memory sizes hvmloader writes for the BIOS.

Real Xen: xen/arch/x86/hvm/rtc.c
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Rtc"]

RTC_SECONDS, RTC_MINUTES, RTC_HOURS = 0x00, 0x02, 0x04
RTC_DAY_OF_WEEK, RTC_DAY_OF_MONTH, RTC_MONTH, RTC_YEAR = 0x06, 0x07, 0x08, 0x09
RTC_REG_A, RTC_REG_B, RTC_REG_C, RTC_REG_D = 0x0A, 0x0B, 0x0C, 0x0D
RTC_CENTURY = 0x32
RTC_DM_BINARY = 0x04     # register B: binary, not BCD
RTC_24H = 0x02           # register B: 24-hour mode
_TIME_REGS = (RTC_SECONDS, RTC_MINUTES, RTC_HOURS, RTC_DAY_OF_WEEK, RTC_DAY_OF_MONTH,
              RTC_MONTH, RTC_YEAR, RTC_CENTURY)


def _bcd(v: int) -> int:
    return ((v // 10) << 4) | (v % 10)


class Rtc:
    def __init__(self, localtime: Callable[[], int]) -> None:
        """``localtime``: the domain's wallclock now, in seconds since 1970."""
        self.localtime = localtime
        self.cmos = bytearray(128)
        self.index = 0
        self.cmos[RTC_REG_A] = 0x26
        self.cmos[RTC_REG_B] = RTC_24H  # 24-hour, BCD
        self.cmos[RTC_REG_D] = 0x80  # valid RAM and time

    def _time(self, reg: int) -> int:
        """rtc_copy_date: one time register, in the format register B asks for."""
        tm = time.gmtime(self.localtime())
        hour = tm.tm_hour
        pm = 0
        if not self.cmos[RTC_REG_B] & RTC_24H:   # 12-hour: 12, 1..11, bit 7 for p.m.
            pm = 0x80 if hour >= 12 else 0
            hour = hour % 12 or 12
        table = {RTC_SECONDS: tm.tm_sec, RTC_MINUTES: tm.tm_min, RTC_HOURS: hour,
                 RTC_DAY_OF_WEEK: (tm.tm_wday + 1) % 7 + 1,   # 1 = Sunday
                 RTC_DAY_OF_MONTH: tm.tm_mday, RTC_MONTH: tm.tm_mon,
                 RTC_YEAR: tm.tm_year % 100, RTC_CENTURY: tm.tm_year // 100}
        value = table[reg]
        value = value if self.cmos[RTC_REG_B] & RTC_DM_BINARY else _bcd(value)
        return value | pm if reg == RTC_HOURS else value

    def io(self, port: int, write: bool, value: int) -> int:
        if port == 0x70:
            if write:
                self.index = value & 0x7F
            return 0xFF
        if write:
            if self.index not in (RTC_REG_C, RTC_REG_D):
                self.cmos[self.index] = value & 0xFF
            return 0
        if self.index in _TIME_REGS:
            return self._time(self.index)
        if self.index == RTC_REG_A:
            return self.cmos[RTC_REG_A] & 0x7F  # update-in-progress never set
        return self.cmos[self.index]
