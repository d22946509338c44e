"""The 8254 programmable interval timer (ports 0x40-0x43, and 0x61 for channel 2's gate),
counting in virtual time: 1,193,182 Hz.

Real Xen: xen/arch/x86/emul-i8254.c (pit_ioport_read/write), xen/arch/x86/hvm/vpt.c
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["PIT_FREQ", "Pit"]

PIT_FREQ = 1_193_182


class _Channel:
    def __init__(self) -> None:
        self.reload = 0x10000
        self.mode = 0
        self.access = 3          # 1 lobyte, 2 hibyte, 3 lo then hi
        self.write_hi = False
        self.read_hi = False
        self.latched: int | None = None
        self.start_ns = 0
        self.gate = True
        self.partial = 0

    def count(self, now_ns: int) -> int:
        ticks = (now_ns - self.start_ns) * PIT_FREQ // 1_000_000_000
        if self.mode in (2, 3):
            return self.reload - (ticks % self.reload)
        return max(0, self.reload - ticks) & 0xFFFF

    def out(self, now_ns: int) -> int:
        """The channel's OUT pin (pit_get_out): mode 0 goes high at the terminal count
        and stays there, mode 1 is low from the trigger to the terminal count, mode 2
        pulses once per period, mode 3 is a square wave, modes 4 and 5 strobe once."""
        ticks = (now_ns - self.start_ns) * PIT_FREQ // 1_000_000_000
        if self.mode == 1:
            return int(ticks < self.reload)
        if self.mode == 2:
            return int(ticks % self.reload == 0 and ticks != 0)
        if self.mode == 3:
            return int(ticks % self.reload < (self.reload + 1) >> 1)
        if self.mode in (4, 5):
            return int(ticks == self.reload)
        return int(ticks >= self.reload)


class Pit:
    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.ch = [_Channel(), _Channel(), _Channel()]
        self.ch[2].gate = False  # pit_reset: channel 2's gate is port 0x61 bit 0, clear
        self.port61 = 0
        self.next_irq0: int | None = None

    def _period_ns(self) -> int:
        return max(1, self.ch[0].reload * 1_000_000_000 // PIT_FREQ)

    def io(self, port: int, write: bool, value: int) -> int:
        now = self.clock()
        if port == 0x61:
            c2 = self.ch[2]
            if write:
                self.port61 = value & 0x0F
                gate = bool(value & 1)
                # pit_set_gate: a rising gate restarts modes 1, 2, 3 and 5; modes 0 and 4
                # count on from where they were
                if gate and not c2.gate and c2.mode in (1, 2, 3, 5):
                    c2.start_ns = now
                c2.gate = gate
                return 0
            # bit 5: channel 2's OUT; bit 4 toggles (refresh), both from virtual time
            refresh = (now // 15_000) & 1
            return self.port61 | (c2.out(now) << 5) | (refresh << 4)
        if port == 0x43:
            if write:
                chan = value >> 6
                if chan == 3:
                    return 0  # read-back: not supported
                c = self.ch[chan]
                if (value >> 4) & 3 == 0:  # counter latch
                    c.latched = c.count(now)
                    c.read_hi = False
                    return 0
                c.access = (value >> 4) & 3
                c.mode = (value >> 1) & 7
                if c.mode > 5:
                    c.mode -= 4
                c.write_hi = False
                c.read_hi = False
            return 0xFF
        c = self.ch[port - 0x40]
        if write:
            if c.access == 1:
                c.reload = value & 0xFF or 0x10000
            elif c.access == 2:
                c.reload = ((value & 0xFF) << 8) or 0x10000
            elif not c.write_hi:
                c.partial = value & 0xFF
                c.write_hi = True
                return 0
            else:
                c.reload = (c.partial | ((value & 0xFF) << 8)) or 0x10000
                c.write_hi = False
            c.start_ns = now
            if c is self.ch[0]:
                self.next_irq0 = now + self._period_ns()
            return 0
        val = c.latched if c.latched is not None else c.count(now)
        if c.access == 1:
            c.latched = None
            return val & 0xFF
        if c.access == 2:
            c.latched = None
            return (val >> 8) & 0xFF
        if not c.read_hi:
            c.read_hi = True
            return val & 0xFF
        c.read_hi = False
        c.latched = None
        return (val >> 8) & 0xFF

    def irq0_due(self, now: int) -> bool:
        """Has channel 0's period elapsed? (advances to the next period)"""
        if self.next_irq0 is None or now < self.next_irq0:
            return False
        periods = (now - self.next_irq0) // self._period_ns() + 1
        self.next_irq0 += periods * self._period_ns()
        return True
