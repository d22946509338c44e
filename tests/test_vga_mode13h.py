"""VGA mode 13h (issue 14 item 4): a boot sector asks the BIOS for mode 13h (INT 10h
AX=0013h), draws pixels at 0xA0000 and reads the mode back with INT 10h AH=0Fh, under
SeaBIOS (whose VGA BIOS programs the adapter) and under the teaching BIOS (which
programs it itself, ``images/firmware/bios.S``). The device model sees the registers
(graphics, 256 colours, chain-4) and the DAC's standard palette, the same from both
firmwares, and the picture is the one qemu-system-i386 shows for the same disk and
firmware (its ``screendump``), pixel for pixel.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from qemu_monitor import QEMU, qemu_monitor

from xenlab.devicemodel.vga import Vga
from xenlab.lab import Lab
from xenlab.labkit import assemble, boot_disk, have_binutils

pytestmark = pytest.mark.skipif(not have_binutils(),
                                reason="needs as/ld/objcopy (apt install binutils)")
BIOS = Path(__file__).resolve().parents[1] / "images" / "firmware" / "xenlab-bios.bin"
BIOSES = ["xenlab", pytest.param("seabios", marks=pytest.mark.skipif(
    Lab.missing("seabios") is not None, reason=str(Lab.missing("seabios"))))]

# (x, y, colour): the default palette's blue, red, yellow, white and a grey
PIXELS = [(0, 0, 1), (319, 0, 4), (160, 100, 14), (0, 199, 15), (319, 199, 24)]
PROGRAM = "\n".join([
    "    .code16",
    "    mov $0x0013, %ax          # set mode 13h",
    "    int $0x10",
    "    mov $0xA000, %ax",
    "    mov %ax, %es",
    *[f"    movb ${c}, %es:{y * 320 + x}" for x, y, c in PIXELS],
    "    mov $0x0F, %ah            # get mode: AL = the mode, AH = columns",
    "    int $0x10",
    "    mov %al, %es:1            # the mode number, as pixel (1, 0)",
    "    mov %ah, %es:2            # the columns, as pixel (2, 0)",
    "1:  hlt",
    "    jmp 1b",
])


def _disk(tmp_path: Path) -> Path:
    code = assemble(PROGRAM, bits=16, org=0x7C00)
    image = tmp_path / "mode13.img"
    image.write_bytes(boot_disk(code))
    return image


def _xenlab(image: Path, bios: str = "seabios") -> Vga:
    lab = _xenlab_lab(image, bios)
    vga = lab.toolstack.device_models[lab.domain("mode13").domid].vga
    assert vga is not None
    return vga


def _xenlab_lab(image: Path, bios: str = "seabios") -> Lab:
    cfg = image.with_suffix(".cfg")
    cfg.write_text(f'name = "mode13"\ntype = "hvm"\nmemory = 32\nbios = "{bios}"\n'
                   f"disk = [ 'format=raw, vdev=hda, access=ro, target={image}' ]\n")
    lab = Lab()
    assert "error" not in lab.xl_output(f"create {cfg}")
    lab.run(max_seconds=4.0)          # SeaBIOS's boot menu waits 2.5 s
    return lab


@pytest.mark.parametrize("bios", BIOSES)
def test_mode_13h_through_the_bios(tmp_path: Path, bios: str) -> None:
    vga = _xenlab(_disk(tmp_path), bios)
    assert vga.mode() == "13h"
    fb = vga.framebuffer()
    assert len(fb) == 320 * 200
    assert fb[1] == 0x13 and fb[2] == 40          # what INT 10h AH=0Fh answered
    for x, y, colour in PIXELS:
        assert fb[y * 320 + x] == colour
    pal = vga.palette()   # the BIOS loaded the standard 256-colour palette
    assert pal[0] == (0, 0, 0) and pal[15] == (255, 255, 255)
    assert pal[1] == (0, 0, 168) and pal[4] == (168, 0, 0) and pal[14] == (255, 255, 87)
    rows = vga.rgb()
    assert len(rows) == 200 and len(rows[0]) == 320 and rows[100][160] == pal[14]


@pytest.mark.skipif(Lab.missing("seabios") is not None, reason=str(Lab.missing("seabios")))
def test_both_firmwares_program_the_same_adapter(tmp_path: Path) -> None:
    ours = _xenlab(_disk(tmp_path), "xenlab").regs
    sea = _xenlab(_disk(tmp_path), "seabios").regs
    assert ours.dac == sea.dac and ours.misc == sea.misc
    assert ours.sr[:5] == sea.sr[:5] and ours.gr[:9] == sea.gr[:9]
    assert ours.ar[:21] == sea.ar[:21] and ours.crtc[:25] == sea.crtc[:25]


def test_back_to_text_mode(tmp_path: Path) -> None:
    code = assemble(PROGRAM.replace("1:  hlt", "    mov $0x0003, %ax\n    int $0x10\n1:  hlt"),
                    bits=16, org=0x7C00)
    image = tmp_path / "mode3.img"
    image.write_bytes(boot_disk(code))
    lab = _xenlab_lab(image, "xenlab")
    vga = lab.toolstack.device_models[lab.domain("mode13").domid].vga
    assert vga is not None and vga.mode() == "text" and vga.framebuffer() == b""
    pytest.importorskip("matplotlib")
    from xenlab.views import draw_vga

    assert "text mode" in draw_vga(lab, "mode13").axes[0].get_title()


def test_draw_vga_shows_the_picture(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from xenlab.views import draw_vga

    image = _disk(tmp_path)
    lab = _xenlab_lab(image, "xenlab")
    fig = draw_vga(lab, "mode13")
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (200, 320, 3)
    assert tuple(int(c) for c in shown[100][160]) == (255, 255, 87)
    assert "mode 13h" in fig.axes[0].get_title()


def _qemu_picture(image: Path, bios: str) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of qemu-system-i386's screen for ``image``, booted by
    its own SeaBIOS or by the teaching BIOS (``-bios``)."""
    dump = image.with_suffix(".ppm")
    qemu_monitor(image, [f'screendump "{dump}"'], bios=BIOS if bios == "xenlab" else None,
                 boot_s=4.0)
    raw = dump.read_bytes()
    magic, width, height, maxval, rest = raw.split(maxsplit=4)
    assert magic == b"P6" and maxval == b"255"
    return int(width), int(height), rest


@pytest.mark.qemu
@pytest.mark.skipif(QEMU is None, reason="needs qemu-system-i386 (apt install qemu-system-x86)")
@pytest.mark.parametrize("bios", BIOSES)
def test_mode_13h_picture_matches_qemu(tmp_path: Path, bios: str) -> None:
    image = _disk(tmp_path)
    ours = _xenlab(image, bios).rgb()
    width, height, rgb = _qemu_picture(image, bios)
    # QEMU draws mode 13h's pixels two wide (the 8-bit modes' dot clock halved) and its
    # lines twice (the CRTC's double scan): 640x400, each pixel a 2x2 square
    assert (width, height) == (640, 400)
    for x, y, _colour in [*PIXELS, (1, 0, 0x13), (50, 50, 0)]:
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            i = 3 * ((2 * y + dy) * width + 2 * x + dx)
            assert tuple(rgb[i:i + 3]) == ours[y][x], (x, y, dx, dy)
    # and every other pixel of the picture
    differ = [(x, y) for y in range(200) for x in range(320)
              if tuple(rgb[3 * (2 * y * width + 2 * x):3 * (2 * y * width + 2 * x) + 3])
              != ours[y][x]]
    assert differ == []
