"""xenlab's teaching firmware (images/firmware/) proven on real QEMU.

(a) (qemu) the BIOS boots bootdisk.img on `qemu-system-i386 -machine pc`: the
    POST phase lines appear in order on COM1 and on the 0xE9 debug port, the
    boot sector's INT 10h/12h/13h/15h/1Ah output appears on COM1 (mirrored by
    INT 10h AH=0Eh) and it leaves QEMU through isa-debug-exit with code 99;
(b) (qemu) a disk without the 55AAh signature: "No bootable device.";
(c) (qemu) hvmloader.elf boots through QEMU's PVH loader (EBX -> hvm_start_info)
    and stops at the Xen CPUID check, QEMU not being Xen;
(d) the files' contracts: 64 KiB BIOS with a far jump at the reset vector,
    1 MiB disk with a signed sector 0, ELF32 hvmloader with one PT_LOAD at
    0x100000 and entry 0x100000;
(e) (toolchain) rebuilding gives byte-identical files.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

IMAGES = Path(__file__).resolve().parent.parent / "images"
FIRMWARE = IMAGES / "firmware"
BIOS = FIRMWARE / "xenlab-bios.bin"
HVMLOADER = FIRMWARE / "hvmloader.elf"
BOOTDISK = FIRMWARE / "bootdisk.img"
QEMU = shutil.which("qemu-system-i386")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-i386 not installed")

BIOS_PHASES = [
    "xenlab BIOS: POST",
    "xenlab BIOS: IVT and BDA",
    "xenlab BIOS: PIC and PIT",
    "xenlab BIOS: PCI (IDE I/O enabled)",
    "xenlab BIOS: disks: hd0 2048 sectors",
    "xenlab BIOS: memory 32768 KiB",
    "xenlab BIOS: video",
    "xenlab BIOS: INT 19h boot from hd0",
]
BOOT_JUMP = [  # after INT 19h, when sector 0 ends in 55h AAh
    "xenlab BIOS: boot sector loaded at 0000:7C00, signature 55AA",
    "xenlab BIOS: jump to 0000:7C00 with DL=80h",
]
BOOTSECT_MARKER = "xenlab bootsect: done"


def _qemu_cmd(disk: Path, e9_log: Path) -> list[str]:
    return [QEMU or "qemu-system-i386", "-nodefaults", "-machine", "pc", "-m", "32",
            "-bios", str(BIOS),
            "-drive", f"file={disk},format=raw,if=ide,index=0",
            "-serial", "stdio", "-display", "none",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-debugcon", f"file:{e9_log}"]


def _lines(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.split("\n") if line.rstrip("\r")]


def _run_until(cmd: list[str], out: Path, done: str, timeout: float) -> str:
    """Run cmd with stdout to `out` until `done` appears in it (then kill) or timeout."""
    with out.open("wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if done in out.read_text(errors="replace"):
                time.sleep(0.2)  # let the last bytes land
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    return out.read_text(errors="replace")


@pytest.mark.qemu
@needs_qemu
def test_bios_boots_the_boot_sector(tmp_path: Path) -> None:
    disk = tmp_path / "bootdisk.img"
    shutil.copyfile(BOOTDISK, disk)  # the boot sector could write to it
    e9 = tmp_path / "e9.log"
    try:
        proc = subprocess.run(_qemu_cmd(disk, e9), capture_output=True, timeout=20,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        so_far = (exc.stdout or b"").decode(errors="replace")
        pytest.fail(f"QEMU hung (no isa-debug-exit within 20 s); serial so far:\n{so_far}")
    serial = proc.stdout.decode(errors="replace")
    info = f"serial:\n{serial}\nstderr:\n{proc.stderr.decode(errors='replace')}"
    assert proc.returncode == 99, info  # (0x31 << 1) | 1: the boot sector's exit

    lines = _lines(serial)
    assert lines[:len(BIOS_PHASES) + 2] == [*BIOS_PHASES, *BOOT_JUMP], info
    rest = lines[len(BIOS_PHASES) + 2:]
    assert rest[0] == "Hello from the boot sector!", info
    assert "int 12h: memory 639 KiB" in rest, info
    e820 = [line for line in rest if line.startswith("int 15h: e820 entries ")]
    assert len(e820) == 1 and int(e820[0].rsplit(" ", 1)[1]) >= 4, info
    assert "int 13h: extensions present" in rest, info
    assert "LBA 1: second sector says hi" in rest, info
    ticks = [int(line.rsplit(" ", 1)[1]) for line in rest if line.startswith("int 1Ah: ticks ")]
    assert len(ticks) == 2 and ticks[0] <= ticks[1], info
    assert "No bootable device." not in serial

    # Port 0xE9 carries exactly the BIOS phase lines, then the boot sector's marker.
    assert e9.read_text() == "".join(f"{line}\n" for line in [*BIOS_PHASES, *BOOT_JUMP,
                                                                  BOOTSECT_MARKER])


@pytest.mark.qemu
@needs_qemu
def test_bios_without_boot_signature_says_no_bootable_device(tmp_path: Path) -> None:
    disk = tmp_path / "unsigned.img"
    data = bytearray(BOOTDISK.read_bytes())
    data[510:512] = b"\0\0"
    disk.write_bytes(bytes(data))
    e9 = tmp_path / "e9.log"
    serial = _run_until(_qemu_cmd(disk, e9), tmp_path / "serial.log",
                        "No bootable device.", timeout=10)
    lines = _lines(serial)
    assert lines == [*BIOS_PHASES, "xenlab BIOS: No bootable device."], serial
    assert e9.read_text() == "".join(f"{line}\n" for line in lines)


@pytest.mark.qemu
@needs_qemu
def test_hvmloader_enters_through_pvh_and_stops_without_xen(tmp_path: Path) -> None:
    # QEMU's PVH loader reads XEN_ELFNOTE_PHYS32_ENTRY, passes hvm_start_info
    # in EBX and the -initrd file as module 0.  QEMU has no Xen CPUID leaves.
    e9 = tmp_path / "e9.log"
    cmd = [QEMU or "qemu-system-i386", "-nodefaults", "-machine", "pc", "-m", "32",
           "-kernel", str(HVMLOADER), "-initrd", str(BIOS),
           "-display", "none", "-debugcon", f"file:{e9}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            if e9.exists() and "stopping." in e9.read_text(errors="replace"):
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        _, err = proc.communicate()
    text = e9.read_text(errors="replace") if e9.exists() else ""
    assert text == ("HVM Loader\n"
                    "Not running on Xen (no XenVMMXenVMM CPUID leaf): stopping.\n"), (
        text + err.decode(errors="replace"))


def test_bios_image_layout() -> None:
    rom = BIOS.read_bytes()
    assert len(rom) == 0x10000
    # F000:FFF0 -> ljmp F000:post (EA, offset, segment)
    assert rom[0xFFF0] == 0xEA
    offset, segment = struct.unpack_from("<HH", rom, 0xFFF1)
    assert segment == 0xF000 and offset < 0xFFF0
    for line in [*BIOS_PHASES[:4], "xenlab BIOS: No bootable device."]:
        assert line.encode() in rom


def test_bootdisk_layout() -> None:
    disk = BOOTDISK.read_bytes()
    assert len(disk) == 1 << 20
    assert disk[510:512] == b"\x55\xaa"
    assert disk[512:512 + 22] == b"second sector says hi\0"
    assert disk[1024:] == bytes(len(disk) - 1024)


def test_hvmloader_elf_contract() -> None:
    with HVMLOADER.open("rb") as f:
        elf = ELFFile(f)
        assert elf.header["e_ident"]["EI_CLASS"] == "ELFCLASS32"
        assert elf.header["e_machine"] == "EM_386"
        assert elf.header["e_entry"] == 0x100000
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        assert len(loads) == 1
        assert loads[0]["p_paddr"] == loads[0]["p_vaddr"] == 0x100000
        notes = [s.data() for s in elf.iter_segments() if s["p_type"] == "PT_NOTE"]
    # XEN_ELFNOTE_PHYS32_ENTRY (18) = 0x100000
    assert notes == [struct.pack("<III4sI", 4, 4, 18, b"Xen\0", 0x100000)]


def _toolchain_missing() -> str | None:
    for tool in ("as", "ld", "objcopy", "make", "cmp", "truncate"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    return None


@pytest.mark.toolchain
@pytest.mark.skipif(_toolchain_missing() is not None, reason=str(_toolchain_missing()))
def test_firmware_rebuilds_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "out"
    subprocess.run(["make", "-s", "-C", str(IMAGES), f"OUT={out}", "firmware"],
                   check=True, capture_output=True)
    for name in ("xenlab-bios.bin", "hvmloader.elf", "bootdisk.img"):
        assert (out / "firmware" / name).read_bytes() == (FIRMWARE / name).read_bytes(), (
            f"{name} differs from a fresh build (`make -C images` after editing a source?)")
