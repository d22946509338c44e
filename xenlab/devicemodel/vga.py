"""VGA in text mode: 128 KiB of video memory mapped at 0xA0000, the 80x25 screen at 0xB8000.

The device model owns the video memory and maps it into the guest (QEMU does
the same through Xen's ``XENMEM_add_to_physmap``); the screen is rendered
from it on demand.

Real Xen: QEMU hw/display/vga.c
"""

from __future__ import annotations

import ctypes

__all__ = ["VGA_BASE", "VGA_SIZE", "Vga"]

VGA_BASE = 0xA0000
VGA_SIZE = 0x20000
TEXT_OFFSET = 0x18000  # 0xB8000 - 0xA0000
COLS, ROWS = 80, 25


class Vga:
    def __init__(self) -> None:
        self.vram = (ctypes.c_char * VGA_SIZE)()
        self.crtc_index = 0
        self.crtc = bytearray(256)
        self.retrace = 0

    @property
    def host_ptr(self) -> int:
        return ctypes.addressof(self.vram)

    def io(self, port: int, write: bool, value: int) -> int:
        if port in (0x3D4, 0x3B4):
            if write:
                self.crtc_index = value & 0xFF
            return self.crtc_index
        if port in (0x3D5, 0x3B5):
            if write:
                self.crtc[self.crtc_index] = value & 0xFF
            return self.crtc[self.crtc_index]
        if port in (0x3DA, 0x3BA):
            self.retrace ^= 0x09
            return self.retrace
        return 0 if write else 0xFF

    def cursor(self) -> tuple[int, int]:
        pos = (self.crtc[0x0E] << 8) | self.crtc[0x0F]
        return pos // COLS, pos % COLS

    def screen(self) -> list[str]:
        """The 25 lines of the text screen, trailing blanks removed."""
        raw = bytes(self.vram)[TEXT_OFFSET : TEXT_OFFSET + COLS * ROWS * 2]
        lines = []
        for row in range(ROWS):
            chars = raw[row * COLS * 2 : (row + 1) * COLS * 2 : 2]
            lines.append("".join(chr(c) if 32 <= c < 127 else " " for c in chars).rstrip())
        return lines

    def screen_text(self) -> str:
        lines = self.screen()
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines) + ("\n" if lines else "")
