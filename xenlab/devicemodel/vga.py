"""VGA: 128 KiB of video memory mapped at 0xA0000, the registers, text mode and mode 13h.

The device model owns the video memory and maps it into the guest (QEMU does
the same through Xen's ``XENMEM_add_to_physmap``); the screen is rendered
from it on demand. The registers are the standard VGA's: the miscellaneous
output register (0x3C2, read at 0x3CC), the sequencer (0x3C4/0x3C5), the
graphics controller (0x3CE/0x3CF), the attribute controller (0x3C0, its
index/data flip-flop reset by a read of input status 1 at 0x3DA), the DAC
(0x3C7 read index, 0x3C8 write index, 0x3C9 data: red, green, blue, 6 bits
each) and the CRT controller (0x3D4/0x3D5, 0x3B4/0x3B5). What the registers
say selects the picture:

- text mode (the graphics controller's Misc register, index 6, bit 0 clear):
  80x25 characters at 0xB8000 (``screen``, ``screen_text``; ``cells`` with their
  attributes);
- mode 13h (graphics, the attribute controller's 8-bit colour, index 0x10 bit
  6, and the sequencer's chain-4, index 4 bit 3): 320x200 pixels, one byte
  each, at 0xA0000, coloured through the DAC (``framebuffer``, ``rgb``).

Simplified: other graphics modes (the 16-colour planar ones) are recognised
(``mode`` says "graphics") but not drawn, and writes go straight to memory
(no write modes, plane masks or latches: in mode 13h with chain-4 they do
not change what a store does). The picture is computed from the registers
when asked, not scanned out at 70 Hz.

Real Xen: QEMU hw/display/vga.c (vga_ioport_write, vga_draw_graphic), vga_regs.h
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

__all__ = ["VGA_BASE", "VGA_SIZE", "Vga", "VgaRegs"]

VGA_BASE = 0xA0000
VGA_SIZE = 0x20000
TEXT_OFFSET = 0x18000  # 0xB8000 - 0xA0000
COLS, ROWS = 80, 25
MODE13_WIDTH, MODE13_HEIGHT = 320, 200

GR_MISC = 0x06            # graphics controller: bit 0 graphics mode (vga_regs.h VGA_GFX_MISC)
AR_MODE = 0x10            # attribute controller: bit 6 8-bit colour (VGA_ATC_MODE)
SR_MEMORY_MODE = 0x04     # sequencer: bit 3 chain-4 (VGA_SEQ_MEMORY_MODE)


@dataclass
class IndexedRegs:
    """A register file behind an index port and a data port (the sequencer, the
    graphics controller, the CRTC): ``index`` selects which of ``data`` the data port
    reads and writes."""

    data: bytearray
    mask: int                             # the index bits the chip decodes
    index: int = 0


# index port -> (the number of registers behind it, the index bits decoded)
_INDEXED = {0x3C4: (8, 0x07), 0x3CE: (16, 0x0F), 0x3D4: (256, 0xFF)}
# every port of those files -> (its register file's index port, a data port?)
_INDEXED_PORTS = {0x3C4: (0x3C4, False), 0x3C5: (0x3C4, True),      # sequencer
                  0x3CE: (0x3CE, False), 0x3CF: (0x3CE, True),      # graphics controller
                  0x3D4: (0x3D4, False), 0x3D5: (0x3D4, True),      # CRTC, colour
                  0x3B4: (0x3D4, False), 0x3B5: (0x3D4, True)}      # CRTC, mono addresses


@dataclass
class VgaRegs:
    """The registers a guest programs (a plain object: the boot stepper copies it)."""

    misc: int = 0x67                      # colour, 0x3Dx ports (what a BIOS leaves)
    indexed: dict[int, IndexedRegs] = field(default_factory=lambda: {
        port: IndexedRegs(bytearray(size), mask) for port, (size, mask) in _INDEXED.items()})
    ar_index: int = 0
    ar_flip: bool = False                 # False: the next 0x3C0 write is an index
    ar: bytearray = field(default_factory=lambda: bytearray(21))
    dac_read: int = 0                     # entry * 3 + component
    dac_write: int = 0
    dac: bytearray = field(default_factory=lambda: bytearray(256 * 3))
    retrace: int = 0

    @property
    def sr(self) -> bytearray:
        """The sequencer's registers (0x3C4/0x3C5)."""
        return self.indexed[0x3C4].data

    @property
    def gr(self) -> bytearray:
        """The graphics controller's registers (0x3CE/0x3CF)."""
        return self.indexed[0x3CE].data

    @property
    def crtc(self) -> bytearray:
        """The CRT controller's registers (0x3D4/0x3D5)."""
        return self.indexed[0x3D4].data


class Vga:
    def __init__(self) -> None:
        self.vram = (ctypes.c_char * VGA_SIZE)()
        self.regs = VgaRegs()

    @property
    def host_ptr(self) -> int:
        return ctypes.addressof(self.vram)

    # the CRTC as the text-mode code and tests know it
    @property
    def crtc(self) -> bytearray:
        return self.regs.crtc

    def io(self, port: int, write: bool, value: int) -> int:
        r = self.regs
        value &= 0xFF
        if port in _INDEXED_PORTS:
            base, is_data = _INDEXED_PORTS[port]
            regs = r.indexed[base]
            if not is_data:
                if write:
                    regs.index = value & regs.mask
                return regs.index
            if write:
                regs.data[regs.index] = value
            return regs.data[regs.index]
        if port in (0x3DA, 0x3BA):            # input status 1: resets the AR flip-flop
            r.ar_flip = False
            r.retrace ^= 0x09
            return r.retrace
        if port == 0x3C0:
            if not write:
                return r.ar_index
            if not r.ar_flip:
                r.ar_index = value & 0x3F
            elif (r.ar_index & 0x1F) < len(r.ar):
                r.ar[r.ar_index & 0x1F] = value
            r.ar_flip = not r.ar_flip
            return 0
        if port == 0x3C1:
            return r.ar[r.ar_index & 0x1F] if (r.ar_index & 0x1F) < len(r.ar) else 0
        if port == 0x3C2:
            if write:
                r.misc = value
            return 0                          # input status 0
        if port == 0x3CC:
            return r.misc
        if port == 0x3C7:
            if write:
                r.dac_read = value * 3
            return 0                          # DAC state: read mode
        if port == 0x3C8:
            if write:
                r.dac_write = value * 3
            return r.dac_write // 3
        if port == 0x3C9:
            if write:
                r.dac[r.dac_write % 768] = value & 0x3F
                r.dac_write = (r.dac_write + 1) % 768
                return 0
            out = r.dac[r.dac_read % 768]
            r.dac_read = (r.dac_read + 1) % 768
            return out
        return 0 if write else 0xFF

    def mode(self) -> str:
        """What the registers select: "text", "13h" (320x200, 256 colours) or
        "graphics" (another graphics mode, not drawn here)."""
        r = self.regs
        if not r.gr[GR_MISC] & 1:
            return "text"
        if r.ar[AR_MODE] & 0x40 and r.sr[SR_MEMORY_MODE] & 0x08:
            return "13h"
        return "graphics"

    def framebuffer(self) -> bytes:
        """Mode 13h's 64,000 pixels, one colour index each, row by row (b"" otherwise)."""
        if self.mode() != "13h":
            return b""
        return bytes(self.vram)[:MODE13_WIDTH * MODE13_HEIGHT]

    def palette(self) -> list[tuple[int, int, int]]:
        """The DAC's 256 colours as 8-bit (r, g, b): each 6-bit value scaled as QEMU's
        c6_to_8 does (shifted left by two, its low bit copied into the two new ones)."""
        d = self.regs.dac
        return [tuple((c << 2) | (c & 1) * 3 for c in d[i * 3:i * 3 + 3])  # type: ignore[misc]
                for i in range(256)]

    def rgb(self) -> list[list[tuple[int, int, int]]]:
        """Mode 13h's picture as 200 rows of 320 (r, g, b) pixels ([] otherwise)."""
        pixels = self.framebuffer()
        if not pixels:
            return []
        pal = self.palette()
        return [[pal[p] for p in pixels[y * MODE13_WIDTH:(y + 1) * MODE13_WIDTH]]
                for y in range(MODE13_HEIGHT)]

    def cursor(self) -> tuple[int, int]:
        pos = (self.regs.crtc[0x0E] << 8) | self.regs.crtc[0x0F]
        return pos // COLS, pos % COLS

    def cells(self) -> bytes:
        """The text screen's 80x25 cells as the adapter holds them at 0xB8000: two bytes
        each, the character (code page 437) and its attribute (colours, blink)."""
        return ctypes.string_at(self.host_ptr + TEXT_OFFSET, COLS * ROWS * 2)

    def screen(self) -> list[str]:
        """The 25 lines of the text screen, trailing blanks removed."""
        raw = self.cells()
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
