"""The ACPI PM timer and PM1a registers (ports 0xB000-0xB00B), emulated by Xen.

A 24-bit counter running at 3.579545 MHz of virtual time. SeaBIOS, once it
has found the ACPI tables hvmloader wrote, times its delays with it.

Real Xen: xen/arch/x86/hvm/pmtimer.c
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["PM_BASE", "PmTimer"]

PM_BASE = 0xB000          # HVM_PARAM_ACPI_IOPORTS_LOCATION = 1
PM_TIMER_FREQ = 3_579_545


class PmTimer:
    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.regs = bytearray(8)  # PM1a_STS (2), PM1a_EN (2), PM1a_CNT (2), pad
        self.regs[4] = 0x01       # PM1a_CNT.SCI_EN: no legacy SMM, ACPI mode from the start

    def read32(self) -> int:
        return (self.clock() * PM_TIMER_FREQ // 1_000_000_000) & 0xFFFFFF

    def io(self, port: int, write: bool, value: int) -> int:
        off = port - PM_BASE
        if off >= 8:  # PM_TMR at 0xB008, read-only
            ticks = (self.clock() * PM_TIMER_FREQ // 1_000_000_000) & 0xFFFFFF
            return (ticks >> (8 * (off - 8))) & 0xFF
        if write:
            if off < 2:
                self.regs[off] &= ~value & 0xFF  # status bits clear when written with 1
            else:
                self.regs[off] = value & 0xFF
            return 0
        return self.regs[off]
