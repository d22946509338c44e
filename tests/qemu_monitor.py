"""Boot a disk on qemu-system-i386 and run QEMU monitor commands once it has booted.

The fidelity tests read what a real QEMU shows (``pmemsave`` of the text screen,
``screendump`` of the picture) next to what xenlab shows for the same disk.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

QEMU = shutil.which("qemu-system-i386")


def qemu_monitor(disk: Path, commands: list[str], *, bios: Path | None = None,
                 boot_s: float = 3.0) -> None:
    """Boot ``disk`` (QEMU's SeaBIOS, or ``bios`` as ``-bios``) with the standard VGA,
    wait ``boot_s`` seconds, send the monitor ``commands`` (their files are written when
    QEMU has quit), then quit."""
    firmware = ["-bios", str(bios)] if bios is not None else []
    proc = subprocess.Popen(
        [QEMU or "qemu-system-i386", "-nodefaults", "-machine", "pc", "-m", "32", *firmware,
         "-vga", "std", "-drive", f"file={disk},format=raw,if=ide,snapshot=on",
         "-display", "none", "-monitor", "stdio"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    time.sleep(boot_s)  # SeaBIOS's boot is well under a second; its retry waits far longer
    for command in commands:
        proc.stdin.write(f"{command}\n".encode())
    proc.stdin.flush()
    time.sleep(1)
    proc.stdin.write(b"quit\n")
    proc.stdin.flush()
    proc.communicate(timeout=30)
