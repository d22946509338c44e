"""Same configs, same bytes: traces and consoles are identical across runs and processes,
for the split-driver guests too (xenstore, grants, rings, the bridge)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xenlab.cli import run_configs

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"


def _disk_cfg(tmp: Path) -> str:
    shutil.copy(IMAGES / "pv-disk.img", tmp / "pv-disk.img")
    text = (IMAGES / "pv-disk.cfg").read_text().replace(
        'kernel = "pv-disk/pv-disk.elf"', f'kernel = "{IMAGES / "pv-disk" / "pv-disk.elf"}"')
    (tmp / "pv-disk.cfg").write_text(text)
    return str(tmp / "pv-disk.cfg")


def _run(tmp: Path, tag: str) -> tuple[str, bytes, bytes]:
    work = tmp / tag
    work.mkdir()
    cfgs = [str(IMAGES / "pv-net-a.cfg"), str(IMAGES / "pv-net-b.cfg"), _disk_cfg(work)]
    out = io.StringIO()
    run_configs(cfgs, out, trace_path=str(work / "t.jsonl"), pcap_path=str(work / "n.pcap"))
    text = out.getvalue().replace(str(work), "WORK")
    return text, (work / "t.jsonl").read_bytes().replace(str(work).encode(), b"WORK"), \
        (work / "n.pcap").read_bytes()


def test_split_drivers_are_deterministic(tmp_path: Path) -> None:
    a = _run(tmp_path, "a")
    b = _run(tmp_path, "b")
    assert a == b
    assert b"blkback.disk_write" in a[1] and b"bridge.forward" in a[1]
    # and in a separate process
    work = tmp_path / "c"
    work.mkdir()
    cfg = _disk_cfg(work)
    proc = subprocess.run(
        [sys.executable, "-m", "xenlab.cli", "run", str(IMAGES / "pv-net-a.cfg"),
         str(IMAGES / "pv-net-b.cfg"), cfg, "--trace", str(work / "t.jsonl"),
         "--pcap", str(work / "n.pcap")], capture_output=True, text=True, check=True)
    assert proc.stdout.replace(str(work), "WORK") == a[0]
    assert (work / "t.jsonl").read_bytes().replace(str(work).encode(), b"WORK") == a[1]
    assert (work / "n.pcap").read_bytes() == a[2]


GRUB_PVH = Path("/usr/lib/grub-xen/grub-i386-xen_pvh.bin")


@pytest.mark.skipif(not GRUB_PVH.is_file(), reason="needs Debian's grub-xen-host (PVH GRUB)")
def test_a_guest_reading_the_tsc_is_deterministic(tmp_path: Path) -> None:
    """PVH GRUB times its file reads with rdtsc and the pvclock in vcpu_time_info: its TSC
    is virtual time (a trapped rdtsc), not the host's cycle counter, so two runs print
    and trace the same bytes."""
    runs = []
    for tag in "ab":
        out = io.StringIO()
        trace = tmp_path / f"{tag}.jsonl"
        run_configs([str(IMAGES / "pvh-grub.cfg")], out, trace_path=str(trace),
                    max_instructions=60_000_000)
        runs.append((out.getvalue(), trace.read_bytes()))
    assert runs[0] == runs[1]
    assert "grub>" in runs[0][0] and b'"name":"rdtsc"' not in runs[0][1]


def test_a_domains_records_never_go_back_in_time(tmp_path: Path) -> None:
    """Every record of a guest's vCPU is stamped with the clock of the pCPU Xen is working
    on for it: an interrupt injected before a slice is not stamped with the last slice
    counted a second time, a hlt after it not with the other pCPU's clock. (hvm-hello's
    final hlt went 10 ms back, the SeaBIOS boot had 97 steps back, before this was so.)
    Dom0's records are
    left out: they come from guests on both pCPUs, each pCPU with its own clock."""
    out = io.StringIO()
    host = run_configs([str(IMAGES / "hvm-hello.cfg"), str(IMAGES / "pv-hello.cfg")], out)
    last: dict[int, int] = {}
    for r in host.trace.records:
        if r.dom == 0:
            continue
        assert r.time >= last.get(r.dom, 0), r
        last[r.dom] = r.time
    assert any(r.dom == 1 and r.name == "hlt" for r in host.trace.records)
    assert set(last) == {1, 2}


@pytest.mark.parametrize("bios", ["seabios", "xenlab"])
def test_aging_the_code_pages_changes_nothing_the_guest_sees(bios: str) -> None:
    """The code-page bitmap aged every 16 K instructions or at its period
    (X86Vcpu._age_code_pages; never, for the teaching BIOS, whose boot is short)
    during a firmware's boot and a boot sector polling ``int 16h``/``int 1Ah``: the
    same trace, record for record, the same instructions and the same interrupts; only
    speed differs (SeaBIOS's boot to the sector, its boot menu's wait included: ~3 s
    here, ~6 s without aging)."""
    from xenlab import bench
    from xenlab.cpu import x86
    from xenlab.lab import Lab
    from xenlab.labkit import have_binutils

    if bios == "seabios" and Lab.missing("seabios") is not None:
        pytest.skip(Lab.missing("seabios"))
    if not have_binutils():
        pytest.skip("needs binutils to assemble the boot sector")
    seen, aged = [], []
    period = x86.CODE_AGING_PERIOD
    try:
        for x86.CODE_AGING_PERIOD in (1 << 14, period) + ((1 << 62,) if bios == "xenlab" else ()):
            with bench._boot_sector(bench.POLL_SECTOR, "poll", bios) as lab:
                lab.run(max_seconds=0.005)
                cpu = lab.domain("poll").vcpus[0].cpu
                seen.append(([(r.time, r.kind, r.name, r.args) for r in lab.host.trace.records],
                             lab.host.instructions, cpu.native_interrupts()))
                aged.append(cpu.aged_code_pages)
    finally:
        x86.CODE_AGING_PERIOD = period
    assert all(run == seen[0] for run in seen[1:])
    assert seen[0][2] > 10_000                   # the sector polled
    assert aged[0] > aged[1] > 0 and aged[2:] in ([], [0])
