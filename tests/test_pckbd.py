"""The 8042 keyboard controller and IRQ 1: every byte typed reaches the guest.

QEMU's controller keeps its IRQ line high while a byte waits in the output buffer; a
read of port 0x60 lowers it and, if the keyboard's queue has more, raises it again
(``kbd_read_data``, ``ps2_read_data``): a new edge for the 8259, one interrupt per
byte. Text typed at once (a make and break code pair per key, shift around capitals)
must arrive whole: first at the device with the vPIC, then in an HVM guest whose boot
sector echoes what ``int 16h`` returns.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlab.devicemodel.pckbd import Kbd8042
from xenlab.lab import Lab
from xenlab.xen.hvm.irq import HvmIrq, set_isa_irq_level
from xenlab.xen.hvm.vpic import Vpic


def _pc() -> tuple[Kbd8042, Vpic, list[int]]:
    """A controller wired to a vPIC through Xen's ISA IRQ lines, levels recorded."""
    vpic, irq, levels = Vpic(), HvmIrq(), []

    def line(level: int) -> None:
        levels.append(level)
        set_isa_irq_level(irq, vpic, 1, level)

    for port, value in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01),
                        (0x21, 0xFC)):   # ICW1..ICW4 as a BIOS does, then IRQ 0, 1 open
        vpic.io(port, True, value)
    return Kbd8042(line), vpic, levels


def _isr(kbd: Kbd8042, vpic: Vpic, limit: int = 100) -> list[int]:
    """What an IRQ 1 handler sees: take the interrupt, read 0x60 once, EOI; repeat
    while the vPIC has one to give."""
    got: list[int] = []
    while len(got) < limit and (vector := vpic.ack()) is not None:
        assert vector == 0x09
        got.append(kbd.io(0x60, False, 0))
        vpic.io(0x20, True, 0x20)         # non-specific EOI
    return got


def test_a_make_and_break_pair_is_two_interrupts() -> None:
    kbd, vpic, levels = _pc()
    kbd.type_text("a")
    assert kbd.io(0x64, False, 0) & 1            # OBF: a byte waits
    assert _isr(kbd, vpic) == [0x1E, 0x9E]
    assert not kbd.io(0x64, False, 0) & 1 and not vpic.master.irr & 0b10
    # high, then per read: low, and high again while a byte is left
    assert levels == [1, 0, 1, 0]


def test_every_key_typed_at_once_arrives() -> None:
    kbd, vpic, _levels = _pc()
    kbd.type_text("Hi, xl!\n")
    codes = _isr(kbd, vpic)
    assert codes == [0x2A, 0x23, 0xA3, 0xAA,          # shift, H, shift up
                     0x17, 0x97, 0x33, 0xB3, 0x39, 0xB9, 0x2D, 0xAD, 0x26, 0xA6,
                     0x2A, 0x02, 0x82, 0xAA, 0x1C, 0x9C]
    assert not kbd.queue


def test_a_polling_driver_leaves_no_stale_interrupt() -> None:
    """A driver that polls the status port with interrupts off (a BIOS's keyboard
    init) reads every byte; the line is low afterwards and no IRQ 1 is left pending
    for the guest to take later and read nothing (SeaBIOS logged "unknown scancode")."""
    kbd, vpic, _levels = _pc()
    kbd.io(0x60, True, 0xFF)                       # reset: ACK, self test passed
    polled = []
    while kbd.io(0x64, False, 0) & 1:
        polled.append(kbd.io(0x60, False, 0))
    assert polled == [0xFA, 0xAA]
    assert vpic.ack() is None


def test_controller_replies_and_the_interrupt_enable_bit() -> None:
    kbd, vpic, _levels = _pc()
    kbd.io(0x64, True, 0x60)
    kbd.io(0x60, True, 0x44)                       # configuration: IRQ 1 off
    kbd.type_text("q")
    assert vpic.ack() is None                      # nothing raised
    assert kbd.io(0x64, False, 0) & 1
    kbd.io(0x64, True, 0x20)                       # read the configuration byte:
    assert kbd.io(0x60, False, 0) == 0x44          # the controller's reply comes first
    assert [kbd.io(0x60, False, 0) for _ in range(2)] == [0x10, 0x90]
    assert kbd.io(0x60, False, 0) == 0x90          # empty: the last byte again, as QEMU


# A boot sector that echoes every key int 16h returns to port 0xE9 (Enter as a newline):
ECHO_BOOT_SECTOR = bytes([
    0xFB,                    # 7C00: sti
    0xB4, 0x00,              # 7C01: mov  $0, %ah
    0xCD, 0x16,              # 7C03: int  $0x16          (AL = ASCII)
    0x3C, 0x0D,              # 7C05: cmp  $0x0d, %al
    0x75, 0x02,              # 7C07: jne  7C0B
    0xB0, 0x0A,              # 7C09: mov  $0x0a, %al
    0xE6, 0xE9,              # 7C0B: out  %al, $0xe9
    0xEB, 0xF2,              # 7C0D: jmp  7C01
])


SEABIOS_OK = Path("/usr/share/seabios/bios-256k.bin").is_file() and any(
    Path(p).is_file() for p in ("/usr/lib/xen-4.17/boot/hvmloader",
                                "/usr/libexec/xen/boot/hvmloader"))


@pytest.mark.parametrize("bios", ["xenlab", pytest.param("seabios", marks=pytest.mark.skipif(
    not SEABIOS_OK, reason="needs Debian's xen-utils-4.17 and seabios"))])
def test_typed_text_reaches_an_hvm_guest_whole(tmp_path: Path, bios: str) -> None:
    """The teaching BIOS maps unshifted keys only; SeaBIOS knows shift as well."""
    disk = bytearray(64 * 1024)
    disk[: len(ECHO_BOOT_SECTOR)] = ECHO_BOOT_SECTOR
    disk[510:512] = b"\x55\xaa"
    image = tmp_path / "echo.img"
    image.write_bytes(bytes(disk))
    cfg = tmp_path / "echo.cfg"
    cfg.write_text(f'name = "echo"\ntype = "hvm"\nmemory = 32\nbios = "{bios}"\n'
                   f"disk = [ 'format=raw, vdev=hda, access=ro, target={image}' ]\n")
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    lab.run(max_instructions=200_000_000, max_seconds=3.0)   # to the boot sector's int 16h
    text = "the quick brown fox jumps over the lazy dog 0123456789\n"
    if bios == "seabios":
        text = "Hello, World! The Quick Brown Fox: 42 (yes).\n"
    lab.console_input("echo", text)
    lab.run(max_instructions=50_000_000, max_seconds=1.0)
    lab.console_input("echo", "second line\n")
    lab.run(max_instructions=50_000_000, max_seconds=1.0)
    dmesg = lab.xl_output("dmesg")
    lines = [line[5:] for line in dmesg.splitlines() if line.startswith("(d1) ")]
    assert lines[-2:] == [text.rstrip("\n"), "second line"], dmesg
