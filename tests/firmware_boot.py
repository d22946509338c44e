"""Boot the teaching boot disk under one firmware and keep what the run left: the trace,
record by record, and Xen's console log. For tests that hold one path of the CPU layer
against another on a whole firmware boot.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xenlab.lab import Lab
from xenlab.xen.trace import Kind

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "images" / "firmware"
SEABIOS_OK = (Path("/usr/share/seabios/bios-256k.bin").is_file()
              and any(Path(p).is_file() for p in ("/usr/lib/xen-4.17/boot/hvmloader",
                                                  "/usr/libexec/xen/boot/hvmloader")))
#: the config lines of each firmware: the teaching BIOS, Xen's hvmloader with SeaBIOS
FIRMWARES = [
    pytest.param("", id="teaching"),
    pytest.param('bios = "seabios"\nvga = "none"\n', id="seabios", marks=pytest.mark.skipif(
        not SEABIOS_OK, reason="needs Debian's xen-utils-4.17 and seabios")),
]


def boot_bootdisk(tmp: Path, bios: str, *, watch: tuple[Kind, ...] = (),
                  seen: list[tuple[int, int]] | None = None
                  ) -> tuple[list[tuple], list[str], Lab]:
    """Boot ``images/firmware/bootdisk.img`` with the config lines ``bios`` until it
    halts; ``watch``: with a trace watcher of those kinds (someone wants those records as
    they are made, as the stepper does), which puts (the record's time, the clock when
    it was called) in ``seen``. (records as tuples, Xen's console log, the lab)."""
    tmp.mkdir(parents=True, exist_ok=True)
    disk = tmp / "boot.img"
    shutil.copy(FW / "bootdisk.img", disk)
    cfg = tmp / "boot.cfg"
    cfg.write_text(f'name = "boot"\ntype = "hvm"\nmemory = 32\n{bios}'
                   f"disk = [ 'format=raw, vdev=hda, access=ro, target={disk}' ]\n")
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    if watch:
        calls = seen if seen is not None else []
        lab.trace.watch(watch, lambda r: calls.append((r.time, lab.host.now())))
    lab.xl(f"create {cfg}")
    lab.run(max_seconds=3.0)
    records = [(r.time, r.dom, r.vcpu, r.kind, r.name, r.args, r.ret)
               for r in lab.trace.records]
    return records, list(lab.host.log.lines), lab


def assert_same_boot(mine: tuple[list[tuple], list[str]],
                     theirs: tuple[list[tuple], list[str]]) -> None:
    """The same console log, the boot sector's end in it, the same records in order."""
    assert mine[1] == theirs[1]
    assert "(d1) xenlab bootsect: done" in theirs[1]
    assert len(mine[0]) == len(theirs[0])
    for a, b in zip(mine[0], theirs[0], strict=True):
        assert a == b
