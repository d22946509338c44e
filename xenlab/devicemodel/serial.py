"""A 16550A UART (COM1 at 0x3F8): what the guest transmits becomes its serial console.

Real Xen: QEMU hw/char/serial.c
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

__all__ = ["Serial16550"]


class Serial16550:
    def __init__(self, base: int, output: Callable[[bytes], None]) -> None:
        self.base = base
        self.output = output
        self.regs = bytearray(8)  # IER, IIR/FCR, LCR, MCR, LSR, MSR, SCR
        self.dll, self.dlm = 0x01, 0x00
        self.rx: deque[int] = deque()

    def io(self, port: int, write: bool, value: int) -> int:
        off = port - self.base
        dlab = self.regs[3] & 0x80
        if write:
            if off == 0 and dlab:
                self.dll = value
            elif off == 1 and dlab:
                self.dlm = value
            elif off == 0:
                self.output(bytes([value & 0xFF]))   # THR: transmit
            elif off in (1, 3, 4, 7):
                self.regs[off] = value & 0xFF
            return 0
        if off == 0:
            if dlab:
                return self.dll
            return self.rx.popleft() if self.rx else 0
        if off == 1:
            return self.dlm if dlab else self.regs[1]
        if off == 2:
            return 0x01 | 0xC0  # no interrupt pending, FIFOs enabled
        if off == 5:  # LSR: transmitter empty, data ready if input waits
            return 0x60 | (1 if self.rx else 0)
        if off == 6:
            return 0xB0  # MSR: DCD, DSR, CTS
        return self.regs[off]

    def send_input(self, data: bytes) -> None:
        self.rx.extend(data)
