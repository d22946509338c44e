"""hvm-hello (images/hvm-hello/hvm-hello.S): a boot sector and a little more.

(1) under xenlab with the teaching firmware: the serial console shows the
    E820 entries, the Xen signature, the protected-mode line and the final
    marker; the screen shows the INT 10h lines and, below them, the line
    written straight into VGA memory; the trace has the CPUID exit for leaf
    0x40000000 and COM1 port exits handled by the device model;
(2) (qemu) the same disk on qemu-system-i386 with the same BIOS prints the
    same serial lines, except the Xen check ("Not running on Xen") and the
    lines that depend on the memory size, and exits with code 99;
(3) (hvmloader + SeaBIOS) bios = "seabios" boots it to the end too.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from xenlab.lab import Lab
from xenlab.xen.trace import Kind

IMAGES = Path(__file__).resolve().parent.parent / "images"
DISK = IMAGES / "hvm-hello.img"
BIOS = IMAGES / "firmware" / "xenlab-bios.bin"
QEMU = shutil.which("qemu-system-i386")
SEABIOS_OK = (Path("/usr/lib/xen-4.17/boot/hvmloader").is_file()
              and Path("/usr/share/seabios/bios-256k.bin").is_file())

# What INT 10h puts on the screen (and the guest on COM1), in order.
REAL_MODE_LINES = [
    "hvm-hello: boot sector at 0000:7C00, boot drive 0x80",
    "int 13h AH=42h: read 8 sectors (LBA 1-8) to 0000:7E00",
    "hvm-hello: stage 2 running at 0000:7E00",
    "int 15h E820h: memory map",
]
E820_LOW = [  # the teaching BIOS's first three entries, whatever the memory size
    "e820: base 0x0000000000000000 length 0x000000000009fc00 type 0x00000001",
    "e820: base 0x000000000009fc00 length 0x0000000000000400 type 0x00000002",
    "e820: base 0x00000000000f0000 length 0x0000000000010000 type 0x00000002",
]
XEN_LINE = "Xen detected: XenVMMXenVMM, max leaf 0x4000000"
PM_LINE = "protected mode: wrote VGA memory directly"
DONE = "hvm-hello: done"


def _lines(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.split("\n") if line.rstrip("\r")]


def _boot(tmp: Path, bios: str | None = None, seconds: float = 2.0) -> tuple[Lab, int, str]:
    disk = tmp / "hvm-hello.img"
    shutil.copyfile(DISK, disk)
    cfg = tmp / "hvm-hello.cfg"
    cfg.write_text('name = "hello"\ntype = "hvm"\nmemory = 32\n'
                   + (f'bios = "{bios}"\n' if bios else "")
                   + f"disk = [ 'format=raw, vdev=hda, access=ro, target={disk}' ]\n"
                   'on_crash = "preserve"\n')
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    lab.run(max_seconds=seconds)
    return lab, lab.domain("hello").domid, lab.xl_output("console -t serial hello")


def test_hvm_hello_under_xenlab(tmp_path: Path) -> None:
    lab, domid, serial = _boot(tmp_path)
    lines = _lines(serial)
    info = f"serial:\n{serial}"
    for line in [*REAL_MODE_LINES, *E820_LOW]:
        assert line in lines, info
    e820 = [line for line in lines if line.startswith("e820: base ")]
    assert len(set(e820)) >= 4, info
    xen = [line for line in lines if line.startswith("Xen detected: ")]
    assert xen and xen[0].startswith(XEN_LINE), info
    assert "Not running on Xen" not in lines, info
    # protected mode writes COM1 itself, once, and the marker is the last line
    assert lines.count(PM_LINE) == 1 and lines[-2:] == [PM_LINE, DONE], info
    # the teaching BIOS mirrors INT 10h teletype on COM1: real-mode lines come twice
    assert all(lines.count(line) == 2 for line in REAL_MODE_LINES), info

    # the screen: INT 10h lines from row 0, then the direct VGA write below them
    screen = lab.toolstack.device_models[domid].screen_text().splitlines()
    assert screen[:len(REAL_MODE_LINES)] == REAL_MODE_LINES, screen
    assert screen[-1] == PM_LINE and screen[-2].startswith(XEN_LINE), screen
    assert DONE not in screen  # that one went to ports only

    # the trace: Xen answered CPUID 0x40000000, the device model answered COM1
    exits = lab.trace.select(kind=Kind.VMEXIT)
    cpuid = [r for r in exits if r.name == "cpuid" and r.args["leaf"] == "0x40000000"]
    assert cpuid and all(r.args["handler"] == "xen" for r in cpuid)
    com1 = [r for r in exits if r.name == "io" and r.args["port"] == "0x3f8"]
    assert com1 and all(r.args["handler"] == "dm" for r in com1)
    assert any(r.name == "io" and r.args["port"] == "0xe9" for r in exits)
    # the marker reached Xen's debug port, and the guest ended halted
    assert f"(d{domid}) {DONE}" in lab.xl_output("dmesg")
    assert lab.domain("hello").state_flags() == "-b----"


def _comparable(lines: list[str]) -> list[str]:
    """Drop the Xen check and what depends on the memory size: the BIOS's
    'memory <N> KiB' line and the E820 entries at or above 1 MiB."""
    out = []
    for line in lines:
        if line.startswith(("Xen detected: ", "Not running on Xen", "xenlab BIOS: memory ")):
            continue
        if line.startswith("e820: base ") and int(line.split()[2], 16) >= 0x100000:
            continue
        out.append(line)
    return out


@pytest.mark.skipif(QEMU is None, reason="qemu-system-i386 not installed")
def test_hvm_hello_on_qemu_matches_xenlab(tmp_path: Path) -> None:
    disk = tmp_path / "qemu.img"
    shutil.copyfile(DISK, disk)
    try:
        proc = subprocess.run(
            [QEMU or "qemu-system-i386", "-nodefaults", "-machine", "pc", "-m", "32",
             "-bios", str(BIOS), "-drive", f"file={disk},format=raw,if=ide,index=0",
             "-serial", "stdio", "-display", "none",
             "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
            capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"QEMU hung; serial so far:\n{(exc.stdout or b'').decode(errors='replace')}")
    serial = proc.stdout.decode("latin-1")
    info = f"serial:\n{serial}\nstderr:\n{proc.stderr.decode(errors='replace')}"
    assert proc.returncode == 99, info  # (0x31 << 1) | 1: isa-debug-exit
    qemu_lines = _lines(serial)
    assert "Not running on Xen" in qemu_lines, info
    assert qemu_lines[-2:] == [PM_LINE, DONE], info

    _lab, _domid, ours = _boot(tmp_path)
    assert _comparable(_lines(ours)) == _comparable(qemu_lines)


@pytest.mark.skipif(not SEABIOS_OK, reason="needs Debian's xen-utils-4.17 and seabios")
def test_hvm_hello_under_hvmloader_and_seabios(tmp_path: Path) -> None:
    lab, domid, serial = _boot(tmp_path, bios="seabios", seconds=5.0)
    lines = _lines(serial)
    assert DONE in lines, f"serial:\n{serial}"
    # no INT 10h mirror in SeaBIOS: each real-mode line once, from the guest itself
    assert all(lines.count(line) == 1 for line in REAL_MODE_LINES), serial
    assert any(line.startswith(XEN_LINE) for line in lines), serial
    assert f"(d{domid}) {DONE}" in lab.xl_output("dmesg")
