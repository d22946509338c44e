"""The third-party boot suite (issue 14, item 7): boot programs nobody here wrote, built
at test time from Debian's packages (``xenlab/boot_images.py``), and the project's own
disks, booted on xenlab with both firmwares (the teaching BIOS, and Xen's real hvmloader
with SeaBIOS) and on qemu-system-i386 with the same SeaBIOS; the text screens are
compared cell by cell, character and attribute.

- GRUB 2 i386-pc (grub-pc-bin): boot.img and a core.img with a memdisk. It reaches
  ``grub>``; typed at the prompt, ``linux16`` and ``boot`` start memtest86+ from the
  memdisk (Debian's memtest86+ 6.10, a Linux-boot-protocol image: it turns on PAE paging
  and calibrates its TSC against the PIT's channel 2, or the ACPI PM timer).
- memtest86+ runs through its first test pass (slow), its default selection over the
  guest's 16 MiB, test 10's two 80-s waits on the TSC skipped exactly
  (see ``test_memtest_first_pass``).
- syslinux's MBR (syslinux-common) on a disk with no active partition prints its error.
- The project's own: the teaching boot disk and hvm-hello.

SeaBIOS under Xen finds no fw_cfg and keeps its defaults: a 2.5-s boot menu prompt and
a retry 60 s after "No bootable device."; QEMU's SeaBIOS is told the same
(``-boot menu=on,reboot-timeout=60000``), so that both screens come from the same code.
Lines that are facts about the platform (the E820 map, the tick count from the RTC, the
Xen CPUID check) differ by design and are left out, by pattern, per image.

On QEMU the teaching BIOS shows no text at all (it never programs the VGA for mode 3 at
POST as a VGA BIOS does, and QEMU's standard VGA comes out of reset with the sequencer's
map mask at 0, so text written to 0xB8000 reaches no plane; xenlab's VGA stores it
regardless): its screens are compared with QEMU's SeaBIOS screens instead, the rows the
boot program drew, and GRUB's whole screen, which GRUB draws itself through INT 10h.
"""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from qemu_monitor import QEMU, qemu_text_screen

from xenlab import bench
from xenlab.boot_images import (
    MEMTEST,
    SYSLINUX_MBR,
    grub_disk,
    missing_grub,
    missing_memtest,
    syslinux_mbr_disk,
)
from xenlab.devicemodel.vga import Vga
from xenlab.lab import Lab
from xenlab.xen.domain import Domain
from xenlab.xen.setup import RunStatus

IMAGES = Path(__file__).resolve().parents[1] / "images"
SEABIOS_MISSING = Lab.missing("seabios")
BIOSES = ["xenlab", pytest.param("seabios", marks=pytest.mark.skipif(
    SEABIOS_MISSING is not None, reason=str(SEABIOS_MISSING)))]
NEEDS_GRUB = pytest.mark.skipif(missing_grub() is not None, reason=str(missing_grub()))
NEEDS_MEMTEST = pytest.mark.skipif(missing_memtest() is not None, reason=str(missing_memtest()))
NEEDS_QEMU = [pytest.mark.qemu, pytest.mark.skipif(
    QEMU is None, reason="needs qemu-system-i386 (apt install qemu-system-x86)")]
QEMU_AS_UNDER_XEN = ("-boot", "menu=on,reboot-timeout=60000")
# memtest86+ in the memdisk, as make bench boots it
MEMTEST_PATH, MEMTEST_PROMPT = bench.MEMTEST_PATH, bench.MEMTEST_PROMPT
GRUB_BANNER = "GNU GRUB  version 2.06"
COLS, ROWS = 80, 25


@pytest.fixture(scope="module")
def grub_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GRUB's disk, with memtest86+ in its memdisk when the package is installed."""
    files = {MEMTEST_PATH.lstrip("/"): MEMTEST.read_bytes()} if MEMTEST.is_file() else {}
    return grub_disk(tmp_path_factory.mktemp("grub") / "grub.img", files)


def _boot(image: Path, bios: str, memory: int = 32) -> tuple[Lab, Domain, Vga]:
    cfg = image.with_name(f"{image.stem}-{bios}.cfg")
    cfg.write_text(f'name = "suite"\ntype = "hvm"\nmemory = {memory}\nbios = "{bios}"\n'
                   f"disk = [ 'format=raw, vdev=hda, access=ro, target={image}' ]\n"
                   'on_crash = "preserve"\n')
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    assert "error" not in lab.xl_output(f"create {cfg}")
    d = lab.domain("suite")
    vga = lab.toolstack.device_models[d.domid].vga
    assert vga is not None
    return lab, d, vga


def _run_until(lab: Lab, d: Domain, vga: Vga, done: Callable[[str], bool], budget: int,
               step: int = 2_000_000) -> str:
    """Run until ``done(screen text)``, looking at the screen at least every ``step``
    instructions (a slice can be 30 million); fail with the screen after ``budget``."""
    start = lab.host.instructions
    status = RunStatus.BUDGET
    while lab.host.instructions - start < budget and status is not RunStatus.IDLE:
        status = lab.host.run(max_instructions=step,
                              until=lambda: done(vga.screen_text()) or d.is_shutting_down)
        screen = vga.screen_text()
        if done(screen):
            return screen
        assert not d.is_shutting_down, lab.xl_output("dmesg")[-2000:]
    raise AssertionError(f"not there after {lab.host.instructions - start:,} instructions "
                         f"({status.value}); the screen:\n{vga.screen_text()}")


def _shows(text: str) -> Callable[[str], bool]:
    return lambda screen: text in screen


def _rows(cells: bytes) -> list[tuple[str, bytes]]:
    """The 25 rows: (their text, their 160 bytes of character and attribute)."""
    out = []
    for r in range(ROWS):
        row = cells[r * COLS * 2:(r + 1) * COLS * 2]
        out.append(("".join(chr(c) if 32 <= c < 127 else " " for c in row[::2]).rstrip(), row))
    return out


def _kept(cells: bytes, platform: str | None) -> list[tuple[str, bytes]]:
    """The rows but those matching ``platform``, without the blank rows at the end."""
    rows = [r for r in _rows(cells) if not (platform and re.search(platform, r[0]))]
    while rows and not rows[-1][0] and rows[-1][1] == rows[-1][1][:2] * COLS:
        rows.pop()
    return rows


# -- GRUB -------------------------------------------------------------------------------

@NEEDS_GRUB
@pytest.mark.parametrize("bios", BIOSES)
def test_grub_reaches_its_prompt(grub_image: Path, bios: str) -> None:
    lab, d, vga = _boot(grub_image, bios)
    screen = _run_until(lab, d, vga, _shows("grub>"), 100_000_000).splitlines()
    assert screen[1].strip().startswith(GRUB_BANNER), screen
    assert "Minimal BASH-like line editing is supported." in screen[3]
    assert screen[-1] == "grub>" and vga.cursor() == (len(screen) - 1, 6)
    if bios == "xenlab":  # the teaching BIOS copies INT 10h teletype output to COM1
        assert "GRUB loading." in lab.xl_output("console -t serial suite")


@NEEDS_MEMTEST
@pytest.mark.slow
@pytest.mark.parametrize("bios", BIOSES)
def test_grub_linux16_boots_memtest(grub_image: Path, bios: str) -> None:
    """Typed at grub> on the PS/2 keyboard: GRUB lists its disks, then loads memtest86+
    from the memdisk with linux16 (the 16-bit Linux boot protocol) and boots it."""
    lab, d, vga = _boot(grub_image, bios)
    _run_until(lab, d, vga, _shows("grub>"), 100_000_000)
    lab.console_input("suite", "ls\n")
    screen = _run_until(lab, d, vga, lambda s: s.rstrip().endswith("msdos1)\ngrub>"),
                        20_000_000)
    assert "(memdisk) (hd0) (hd0,msdos1)" in screen.splitlines()
    lab.console_input("suite", f"linux16 {MEMTEST_PATH}\nboot\n")
    screen = _run_until(lab, d, vga, _shows(MEMTEST_PROMPT), 60_000_000, step=1_000_000)
    lines = screen.splitlines()
    assert lines[0].strip().startswith("Memtest86+ v6.10"), screen
    # its TSC, calibrated against the PIT's channel 2 for 50 ms (teaching BIOS) or the
    # ACPI PM timer (SeaBIOS: hvmloader's ACPI tables), runs at xenlab's 1 GHz (a count
    # of 59,659 PIT ticks is 49.9998 ms: 999 MHz when memtest rounds down)
    assert re.match(r"CLK/Temp:\s+(999|1000)MHz", lines[1]), screen
    assert re.match(r"Memory  :\s+3[12]MB", lines[5]), screen
    assert "Status: Init." in lines[7] and "Errors:" in lines[8]
    assert lines[-1].strip().startswith("<ESC> Exit  <F1> Configuration"), screen


@NEEDS_MEMTEST
@pytest.mark.slow
def test_memtest_first_pass() -> None:
    """memtest86+ through its first pass over the guest's whole 16 MiB with its default
    selection, on the teaching BIOS (``bench.memtest_pass``, which ``make bench``
    times): tests 0 and 2-9 (14.3 billion instructions, half a minute since the page
    walk runs natively), then test 10, the bit fade test, which fills memory, waits 80 s
    of guest time on the TSC (``usleep``: ``pause``/``rdtsc`` rounds) and checks it,
    twice. Emulated round by round, its 160 s would take over half an hour; the waits
    are skipped to the rounds before their end (``xenlab.cpu.tsc_wait``), exactly, so
    the whole pass is 174 s of guest time in under a minute."""
    run = bench.memtest_pass(bit_fade=True)
    assert run is not None
    lines = run["screen"].splitlines()
    assert lines[5].startswith("Memory  :   16MB"), run["screen"]
    assert re.search(r"Status: Pass\b", lines[7]), run["screen"]
    assert re.search(r"Pass:\s+1\b", lines[8]), run["screen"]
    assert run["status_pass"] and run["errors"] == 0
    assert {5, 9, 10} <= set(run["tests_seen"])
    assert 170 < run["virtual_seconds"] < 180
    assert run["skipped_seconds"] > 155     # the two 80 s waits, all but their ends


# -- the screens, next to QEMU's -----------------------------------------------------------

# image -> (the text its screen ends on, the rows that are facts about the platform);
# SeaBIOS goes on after the MBR's error (INT 18h: the next boot device, then a retry),
# the teaching BIOS stops there
SCREENS: dict[str, tuple[str, str | None]] = {
    "grub": ("grub>", None),
    "syslinux-mbr": ("Retrying in 60 seconds.|Missing operating system.", None),
    "bootdisk": ("LBA 1: second sector says hi", r"^int 15h: e820 entries \d+$|^int 1Ah: ticks"),
    "hvm-hello": ("protected mode: wrote VGA memory directly",
                  r"^e820: base |^Xen detected: |^Not running on Xen$"),
}


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("suite")


def _image(name: str, tmp: Path, grub_image: Path) -> Path:
    """The disk, built or copied once into ``tmp`` (both firmwares boot the same file)."""
    if name == "grub":
        return grub_image
    path = tmp / f"{name}.img"
    if path.is_file():
        return path
    if name == "syslinux-mbr":
        if not SYSLINUX_MBR.is_file():
            pytest.skip(f"needs Debian's syslinux-common ({SYSLINUX_MBR})")
        return syslinux_mbr_disk(path)
    own = IMAGES / ("firmware/bootdisk.img" if name == "bootdisk" else "hvm-hello.img")
    return Path(shutil.copyfile(own, path))


@functools.cache
def _qemu_cells(image: Path, until: str) -> bytes:
    return qemu_text_screen(image, until, extra=QEMU_AS_UNDER_XEN)


@NEEDS_GRUB
@pytest.mark.parametrize("name", list(SCREENS))
@pytest.mark.parametrize("bios", BIOSES)
def test_screen_matches_qemu(name: str, bios: str, grub_image: Path, suite_dir: Path,
                             request: pytest.FixtureRequest) -> None:
    for mark in NEEDS_QEMU:
        request.applymarker(mark)
    ends, platform = SCREENS[name]
    until, _, teaching_until = ends.partition("|")
    image = _image(name, suite_dir, grub_image)
    lab, d, vga = _boot(image, bios)
    _run_until(lab, d, vga, _shows(until if bios == "seabios" else teaching_until or until),
               150_000_000)
    # a little further (0.1 s of guest time): the screen it ends on, halted or waiting
    lab.run(max_instructions=2_000_000, max_seconds=0.1)
    ours = _kept(vga.cells(), platform)
    theirs = _kept(_qemu_cells(image, until), platform)
    if bios == "seabios" or name == "grub":
        # the same firmware (or a screen the program draws whole): every cell
        assert [t for t, _ in ours] == [t for t, _ in theirs]
        assert ours == theirs, [t for (t, a), (_, b) in zip(ours, theirs, strict=True) if a != b]
        return
    # the teaching BIOS prints nothing on the screen itself: each row the program drew is
    # on QEMU's screen, every cell the same, in the same order, below SeaBIOS's lines
    drawn = [row for row in ours if row[0]]
    assert drawn, vga.screen_text()
    at = [theirs.index(row) if row in theirs else -1 for row in drawn]
    assert -1 not in at and at == sorted(at), (at, [t for t, _ in drawn], [t for t, _ in theirs])
