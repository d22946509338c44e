"""The 8042 keyboard controller (ports 0x60 data, 0x64 status/command) with a PS/2 keyboard.

Text typed at the console arrives as scan codes (set 1), one IRQ 1 per byte.

Real Xen: QEMU hw/input/pckbd.c, hw/input/ps2.c
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

__all__ = ["Kbd8042"]

# ASCII -> scan code set 1 (make codes); shifted characters are sent with left shift
_ROWS = {
    "1234567890-=": 0x02, "qwertyuiop[]": 0x10, "asdfghjkl;'`": 0x1E, "zxcvbnm,./": 0x2C,
}
_SHIFTED = dict(zip('!@#$%^&*()_+QWERTYUIOP{}ASDFGHJKL:"~ZXCVBNM<>?',
                    "1234567890-=qwertyuiop[]asdfghjkl;'`zxcvbnm,./", strict=True))
SCAN: dict[str, int] = {"\n": 0x1C, " ": 0x39, "\b": 0x0E, "\t": 0x0F, "\\": 0x2B, "|": 0x2B}
for row, first in _ROWS.items():
    for i, ch in enumerate(row):
        SCAN[ch] = first + i
LSHIFT = 0x2A


class Kbd8042:
    def __init__(self, raise_irq1: Callable[[], None]) -> None:
        self.raise_irq1 = raise_irq1
        self.queue: deque[int] = deque()
        self.config = 0x45
        self.pending_cmd: int | None = None

    def _push(self, *data: int) -> None:
        self.queue.extend(data)
        if self.config & 1:
            self.raise_irq1()

    def io(self, port: int, write: bool, value: int) -> int:
        if port == 0x64:
            if not write:
                return (1 if self.queue else 0) | 0x04 | 0x10
            if value == 0xAA:
                self._push(0x55)           # controller self test passed
            elif value == 0xAB:
                self._push(0x00)           # interface test passed
            elif value == 0x20:
                self._push(self.config)
            elif value in (0x60, 0xD1, 0xD2):
                self.pending_cmd = value
            return 0
        if write:
            if self.pending_cmd == 0x60:
                self.config = value & 0xFF
            elif self.pending_cmd in (0xD1, 0xD2):
                pass                       # output port (A20) / echo: nothing to do here
            elif value == 0xFF:
                self._push(0xFA, 0xAA)     # reset: ACK, self test passed
            elif value == 0xF2:
                self._push(0xFA, 0xAB, 0x83)
            else:
                self._push(0xFA)           # ACK everything else
            self.pending_cmd = None
            return 0
        return self.queue.popleft() if self.queue else 0

    def type_text(self, text: str) -> None:
        for ch in text:
            shift = ch in _SHIFTED
            code = SCAN.get(_SHIFTED.get(ch, ch))
            if code is None:
                continue
            if shift:
                self._push(LSHIFT)
            self._push(code, code | 0x80)
            if shift:
                self._push(LSHIFT | 0x80)
