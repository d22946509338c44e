"""Boot a disk on qemu-system-i386 and run QEMU monitor commands once it has booted.

The fidelity tests read what a real QEMU shows (``pmemsave`` of the text screen,
``screendump`` of the picture) next to what xenlab shows for the same disk.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from pathlib import Path

QEMU = shutil.which("qemu-system-i386")
TEXT_CELLS = 80 * 25 * 2          # the text screen at 0xB8000: (character, attribute) x 2000


def qemu_monitor(disk: Path, commands: list[str], *, bios: Path | None = None,
                 boot_s: float = 3.0) -> None:
    """Boot ``disk`` (QEMU's SeaBIOS, or ``bios`` as ``-bios``) with the standard VGA,
    wait ``boot_s`` seconds, send the monitor ``commands`` (their files are written when
    QEMU has quit), then quit."""
    proc = subprocess.Popen(_argv(disk, bios), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    time.sleep(boot_s)  # SeaBIOS's boot is well under a second; its retry waits far longer
    for command in commands:
        proc.stdin.write(f"{command}\n".encode())
    proc.stdin.flush()
    time.sleep(1)
    proc.stdin.write(b"quit\n")
    proc.stdin.flush()
    proc.communicate(timeout=30)


def _argv(disk: Path, bios: Path | None, extra: tuple[str, ...] = ()) -> list[str]:
    firmware = ["-bios", str(bios)] if bios is not None else []
    return [QEMU or "qemu-system-i386", "-nodefaults", "-machine", "pc", "-m", "32", *firmware,
            "-vga", "std", "-drive", f"file={disk},format=raw,if=ide,snapshot=on",
            "-display", "none", "-monitor", "stdio", *extra]


def _monitor(proc: subprocess.Popen[bytes], command: str, prompts: int,
             timeout_s: float = 20.0) -> int:
    """Send one monitor command and wait until QEMU has run it (its next ``(qemu)``
    prompt). ``prompts``: how many it had printed before; returns the new count."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{command}\n".encode())
    proc.stdin.flush()
    out = b""
    deadline = time.monotonic() + timeout_s
    while out.count(b"(qemu)") < 1 + (prompts == 0):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, left))
        chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
        if not chunk:
            raise AssertionError(f"QEMU's monitor did not answer {command!r}: {out!r}")
        out += chunk
    return prompts + 1


def qemu_text_screen(disk: Path, until: str, *, bios: Path | None = None,
                     extra: tuple[str, ...] = (), timeout_s: float = 30.0) -> bytes:
    """Boot ``disk`` on qemu-system-i386 (its SeaBIOS, or ``bios`` as ``-bios``; ``extra``
    arguments such as ``-boot menu=on``) and read the VGA text screen's 4,000 bytes
    (``pmemsave``) every 0.2 s until ``until`` is on it and two reads in a row agree:
    the screen the guest ends on, however long the host took to get there."""
    proc = subprocess.Popen(_argv(disk, bios, extra), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    dump = disk.with_suffix(".qemu-vga")
    try:
        prompts, last = 0, b""
        deadline = time.monotonic() + timeout_s
        while True:
            dump.unlink(missing_ok=True)
            prompts = _monitor(proc, f'pmemsave 0xb8000 {TEXT_CELLS} "{dump}"', prompts)
            cells = dump.read_bytes()
            text = bytes(c if 32 <= c < 127 else 32 for c in cells[::2]).decode()
            if until in text and cells == last:
                return cells
            if time.monotonic() > deadline:
                rows = [text[r * 80:(r + 1) * 80].rstrip() for r in range(25)]
                raise AssertionError(f"QEMU did not show {until!r} in {timeout_s} s; its "
                                     "screen:\n" + "\n".join(rows))
            last = cells
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.communicate(timeout=30)      # reaps it and closes the pipes
        dump.unlink(missing_ok=True)
