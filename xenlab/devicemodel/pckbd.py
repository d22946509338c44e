"""The 8042 keyboard controller (ports 0x60 data, 0x64 status/command) with a PS/2 keyboard.

Text typed at the console arrives as scan codes (set 1) in the keyboard's queue. The
controller has one output byte for the guest: while there is something to read its
status says so (OBF) and its IRQ 1 line is high (if the configuration byte enables it).
A read of port 0x60 takes the byte and lowers the line; if more bytes wait, the line
goes high again at once: a new rising edge, so the guest gets one interrupt per byte and
no keystroke is lost however fast the text was typed (QEMU: ``kbd_read_data``,
``ps2_read_data``, ``ps2_raise_update``). The keyboard's queue holds all of the text
typed at once (QEMU's queue of 16 bytes fills only at a typist's speed).

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


KBD_STAT_OBF = 0x01          # the output buffer holds a byte for the guest
KBD_STAT_SELFTEST = 0x04
KBD_STAT_UNLOCKED = 0x10
KBD_MODE_KBD_INT = 0x01      # configuration byte: IRQ 1 when the output buffer fills
KBD_MODE_DISABLE_KBD = 0x10


class Kbd8042:
    """``KBDState`` (the controller) with its PS/2 keyboard's queue (``PS2KbdState``)."""

    def __init__(self, set_irq1: Callable[[int], None]) -> None:
        self.set_irq1 = set_irq1     # the ISA IRQ 1 line's level (qemu_set_irq)
        self.queue: deque[int] = deque()   # the keyboard's bytes (PS2Queue)
        self.cbdata: int | None = None     # a controller reply waiting (KBD_PENDING_CTRL_KBD)
        self.obf = False             # KBD_STAT_OBF
        self.obdata = 0              # the byte port 0x60 reads
        self.config = 0x45           # the configuration ("mode") byte
        self.pending_cmd: int | None = None

    # -- the output buffer and the IRQ line (pckbd.c) ------------------------------------
    def _update_irq_lines(self) -> None:
        """kbd_update_irq_lines: IRQ 1 is high while a byte waits and the mode allows."""
        level = (self.obf and self.config & KBD_MODE_KBD_INT
                 and not self.config & KBD_MODE_DISABLE_KBD)
        self.set_irq1(1 if level else 0)

    def _safe_update_irq(self) -> None:
        """kbd_safe_update_irq: fill an empty output buffer from what is pending."""
        if not self.obf and (self.cbdata is not None or self.queue):
            self.obf = True
            self._update_irq_lines()

    def _queue_ctrl(self, byte: int) -> None:
        """kbd_queue: the controller's own reply (self test, the configuration byte)."""
        self.cbdata = byte
        self._safe_update_irq()

    def _push(self, *data: int) -> None:
        """ps2_queue + ps2_raise_update: bytes from the keyboard."""
        self.queue.extend(data)
        self._safe_update_irq()

    def _read_data(self) -> int:
        """kbd_read_data: the byte, the line lowered, and raised again if more wait."""
        if self.obf:
            self.obf = False
            self._update_irq_lines()         # kbd_deassert_irq
            if self.cbdata is not None:
                self.obdata, self.cbdata = self.cbdata, None
            elif self.queue:
                self.obdata = self.queue.popleft()   # ps2_read_data
            self._safe_update_irq()
        return self.obdata

    def io(self, port: int, write: bool, value: int) -> int:
        if port == 0x64:
            if not write:
                return (KBD_STAT_OBF if self.obf else 0) | KBD_STAT_SELFTEST | \
                    KBD_STAT_UNLOCKED
            if value == 0xAA:
                self._queue_ctrl(0x55)     # controller self test passed
            elif value == 0xAB:
                self._queue_ctrl(0x00)     # interface test passed
            elif value == 0x20:
                self._queue_ctrl(self.config)
            elif value in (0x60, 0xD1, 0xD2):
                self.pending_cmd = value
            return 0
        if write:
            if self.pending_cmd == 0x60:
                self.config = value & 0xFF
                self._update_irq_lines()
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
        return self._read_data()

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
