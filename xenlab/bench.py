"""How fast xenlab runs guest code: ``python -m xenlab.bench`` (``make bench``).

One run measures, on this machine (see BENCHMARKS.md for the figures):

1. **raw unicorn**: the compute loop of the pv-bench guest kernel
   (images/pv-bench/pv-bench.S, between the global symbols
   ``bench_loop_start`` and ``bench_loop_end``: 4 instructions per
   iteration), its bytes taken from the ELF and run in a bare
   ``Uc(UC_ARCH_X86, UC_MODE_64)`` with one flat mapping and no hooks,
   RCX = N iterations: the ceiling of what any emulator on unicorn can do;
2. **xenlab**: the same loop, as guest code of a PV domain on a booted
   ``XenHost(trace=True)`` with ``cmdline = "loop=N hypercalls=0"``; only
   ``host.run()`` is timed. The ratio to (1) is the cost of xenlab's virtual
   time (a native block-budget callback) and of the surrounding machinery;
3. **hypercalls**: a second domain with ``"loop=0 hypercalls=M"``: M round
   trips of ``xen_version(XENVER_version, NULL)`` through the hypercall page,
   each one trapped (``syscall``), dispatched in Python, traced, returned;
   once with tracing on, once with tracing off (for information);
4. **block path**: the pv-disk guest (images/pv-disk/pv-disk.c, a C
   blkfront on xenlab mini-OS) on a copy of pv-disk.img, created through the
   toolstack (``Libxl``, trace on), with ``cmdline = "bench=N depth=D"``:
   after its usual checks it issues N one-page (4 KiB) requests, writes and
   reads alternately, D at a time on the shared ring. The bench portion's
   wall time is the time of ``host.run()`` with ``bench=N`` minus that of
   the same guest with ``bench=0`` (boot, xenbus handshake, 4 requests,
   close: everything but the bench), best of ``--repeat`` each: block
   requests/s and MB/s through the PV rings. Notifications per request
   (the same subtraction, counts from one run of each): frontend ->
   backend = the guest's ``EVTCHNOP_send`` hypercalls on its blkif port
   (from the trace); backend -> frontend = blkback's
   ``BlkifStats.notifications_sent``. Once with event suppression (the
   defaults), once without: ``nosuppress`` in the guest (it notifies after
   every request) and ``BlkbackDevice.event_suppression = False`` (set on
   the paused domain's device, before it connects).

Every figure is the best of ``--repeat`` runs (time.perf_counter). Goals:
xenlab >= 50 % of raw unicorn; >= 100,000 hypercall round trips per second
with tracing on. ``--json`` prints the results as JSON instead of the table.

The bench is the one place besides xenlab.cpu.x86 that uses unicorn directly:
the raw figure must not go through xenlab.

Real Xen: (none: xenlab's own measurement)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile
from unicorn import Uc
from unicorn import unicorn_const as uc_const
from unicorn import x86_const as X

from xenlab.cpu.x86 import unicorn_version
from xenlab.tools.libs.guest.xg_dom_elfloader import load_elf_kernel
from xenlab.tools.libs.guest.xg_dom_x86 import build_pv
from xenlab.tools.libs.light.libxl import Libxl, dom0_services
from xenlab.tools.xl.xl_parse import parse_config_file
from xenlab.xen.domain import DomainType
from xenlab.xen.setup import RunStatus, XenHost

__all__ = ["BENCH_ELF", "DISK_ELF", "DISK_IMG", "INSNS_PER_ITER", "block_bench", "loop_code",
           "machine_info", "main", "run_bench", "stepper_seabios_bench", "trace_memory"]

IMAGES = Path(__file__).resolve().parent.parent / "images"
BENCH_ELF = IMAGES / "pv-bench" / "pv-bench.elf"
DISK_ELF = IMAGES / "pv-disk" / "pv-disk.elf"
DISK_IMG = IMAGES / "pv-disk.img"
INSNS_PER_ITER = 4            # add, imul, dec, jnz (pv-bench.S, bench_loop_start)
MEMORY_MIB = 16               # images/pv-bench.cfg: memory = 16
DEFAULT_LOOP = 200_000_000
DEFAULT_HYPERCALLS = 300_000
DEFAULT_MMU_UPDATES = 50_000   # pv-bench phase 3: validated page-table updates
DEFAULT_REPEAT = 5
GOAL_RATIO = 0.5
GOAL_HYPERCALLS = 100_000
#: Instruction counts of the trace-memory runs: before the trace's ring fills (2**18
#: records, ~2.4 M instructions of this guest), then 5x and 25x past it. A 2 G run (the
#: default budget of ``xenlab run``) takes ~40 minutes here: ``--trace-memory 2000000000``.
DEFAULT_TRACE_MEMORY = (2_000_000, 10_000_000, 50_000_000)
#: ...and always a 2 G-instruction run of the same guest that computes before its
#: hypercalls (a loop xenlab counts as 1.95 G instructions: 3 a 12-byte iteration, by
#: its bytes/4 rule; then 5 M hypercalls: 5 M records, the old in-memory trace's
#: limit, ~20x the ring), which takes about a minute
MIXED_2G_CMDLINE = "loop=650000000 hypercalls=5000000"
MIXED_2G_BUDGET = 2_100_000_000
GOAL_RSS_MB = 300
DEFAULT_BLOCK_REQUESTS = 5_000
DEFAULT_BLOCK_DEPTH = 8
BLOCK_BYTES = 4096            # pv-disk's bench: one page (8 sectors) per request

_SUM_RE = re.compile(r"pv-bench: loop done sum=(0x[0-9a-f]+)")
_DISK_RE = re.compile(r"pv-disk: bench (\d+) requests, (\d+) in flight, "
                      r"notified backend (\d+) times")
_DISK_OK_RE = re.compile(r"pv-disk: bench (\d+) OKAY, (\d+) failed")


# ---------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fp:
            for line in fp:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "unicorn": unicorn_version(),
        "platform": f"{platform.system()} {platform.machine()}",
    }


def loop_code(elf: Path = BENCH_ELF) -> tuple[int, bytes]:
    """(address, bytes) of the kernel's loop: [bench_loop_start, bench_loop_end)."""
    with open(elf, "rb") as fp:
        ef = ELFFile(fp)
        symtab = ef.get_section_by_name(".symtab")
        if symtab is None:
            raise ValueError(f"{elf}: no symbol table")
        syms = {s.name: s["st_value"] for s in symtab.iter_symbols()}
        start, end = syms["bench_loop_start"], syms["bench_loop_end"]
        for seg in ef.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= start and end <= (
                    seg["p_vaddr"] + seg["p_filesz"]):
                off = start - seg["p_vaddr"]
                return start, seg.data()[off : off + end - start]
    raise ValueError(f"{elf}: bench loop not in a loaded segment")


# ---------------------------------------------------------------------------
def raw_unicorn(n: int, code: tuple[int, bytes]) -> tuple[float, int]:
    """Run the loop n times in a bare engine: (seconds, final RAX = the sum)."""
    # The loop is position independent (one rel8 jump): run it at the same
    # page offset in a low flat mapping (paging is off in a bare engine).
    kaddr, data = code
    page = 0x100000
    addr = page + (kaddr & 0xFFF)
    uc = Uc(uc_const.UC_ARCH_X86, uc_const.UC_MODE_64)
    size = ((addr + len(data) - page) + 0xFFF) & ~0xFFF
    uc.mem_map(page, size, uc_const.UC_PROT_READ | uc_const.UC_PROT_EXEC)
    uc.mem_write(addr, data)
    uc.reg_write(X.UC_X86_REG_RAX, 0)
    uc.reg_write(X.UC_X86_REG_RCX, n)
    if n == 0:  # the kernel skips the loop (it would run 2^64 times)
        return 0.0, 0
    t0 = time.perf_counter()
    uc.emu_start(addr, addr + len(data))
    dt = time.perf_counter() - t0
    return dt, int(uc.reg_read(X.UC_X86_REG_RAX))


# mov edi, 0x10000; mov ecx, N; 1: <2-byte body>; inc edi; dec ecx; jnz 1b; hlt
_STORE_LOOP = "bf00000100 b9{n} {body} 47 49 75fa f4"


def raw_store_path(n: int = 1 << 19, repeat: int = 3) -> dict[str, Any]:
    """What one guest store costs in a bare unicorn: a loop of ``n`` byte stores
    (``mov [edi], al``) against the same loop with two NOPs, 32-bit flat, no hooks.
    unicorn up to 2.1.4 keeps every writable RAM page "not dirty" (its dirty bitmaps
    are stubbed), so every store takes the slow path through ``notdirty_write``;
    firmware that clears memory byte by byte pays it on each byte."""
    def once(body: str) -> float:
        uc = Uc(uc_const.UC_ARCH_X86, uc_const.UC_MODE_32)
        uc.mem_map(0, 2 << 20)
        code = bytes.fromhex(_STORE_LOOP.format(n=n.to_bytes(4, "little").hex(),
                                                body=body).replace(" ", ""))
        uc.mem_write(0x1000, code)
        t0 = time.perf_counter()
        uc.emu_start(0x1000, 0x1000 + len(code) - 1)
        dt = time.perf_counter() - t0
        if uc.reg_read(X.UC_X86_REG_EDI) != 0x10000 + n:
            raise RuntimeError("the store loop stopped early")
        return dt

    store = min(once("8807") for _ in range(repeat))
    nops = min(once("9090") for _ in range(repeat))
    return {"stores": n, "store_loop_seconds": store, "nop_loop_seconds": nops,
            "ns_per_store": max(0.0, store - nops) / n * 1e9}


class _LoopExits:
    """The timing loops make no exits but ``rdtsc`` (virtual time) and their final
    ``hlt``."""

    def tsc(self, vcpu: Any) -> int:
        return int(vcpu.elapsed())


_FLAT_GDT = bytes(8) + bytes.fromhex("ffff0000009acf00") + bytes.fromhex("ffff00000092cf00")


def _flat32_loop(body: str, n: int, *, native: bool = True, identity: bool = False,
                 paging: bool = False, check: Any = None) -> float:
    """Wall seconds of ``_STORE_LOOP`` with ``body`` run ``n`` times on a fresh HVM vCPU
    (32-bit flat; ``native``: the native callbacks, ``identity``: the identity TLB, and
    with ``paging`` the native page walk after it, NaN where unavailable; ``paging``:
    PAE paging on, the 2 MiB 1:1); ``check(cpu)`` looks at the vCPU after the run."""
    from xenlab.cpu.x86 import ExitReason, X86Vcpu

    cpu = X86Vcpu(_LoopExits(), long_mode=False,  # type: ignore[arg-type]
                  native_budget=native)
    memory = (ctypes.c_char * (2 << 20))()      # host memory, as a domain's RAM is
    memory[0x800:0x800 + len(_FLAT_GDT)] = _FLAT_GDT
    code = bytes.fromhex(_STORE_LOOP.format(n=n.to_bytes(4, "little").hex(),
                                            body=body).replace(" ", ""))
    memory[0x1000:0x1000 + len(code)] = code
    # PAE: the PDPT at 0x1C0000, one page directory entry, a 2 MiB page at 0
    memory[0x1C0000:0x1C0008] = struct.pack("<Q", 0x1C1000 | 1)
    memory[0x1C1000:0x1C1008] = struct.pack("<Q", 0x83)
    cpu.map_host(0, 2 << 20, ctypes.addressof(memory))
    cpu.setup_flat32(gdt_base=0x800, eip=0x1000)
    if identity and not cpu.identity_tlb_until_paging():
        return float("nan")
    if paging:
        cpu.set_reg("cr3", 0x1C0000)
        cpu.set_reg("cr4", 0x20)
        cpu.set_reg("cr0", 0x80000011)
        cpu.run(1)                                # the vCPU takes the new CR0 in
        if identity and not cpu.native_page_walk:
            return float("nan")
        cpu.set_reg("eip", 0x1000)
    t0 = time.perf_counter()
    result = cpu.run(1 << 40)
    dt = time.perf_counter() - t0
    if result.reason is not ExitReason.HLT or cpu.reg("edi") != 0x10000 + n:
        raise RuntimeError(f"the loop of {body} stopped early")
    if check is not None:
        check(cpu)
    cpu.close()
    return dt


def vcpu_store_path(n: int = 1 << 19, repeat: int = 3) -> dict[str, Any]:
    """The same store loop on a xenlab HVM vCPU (32-bit flat, native budget callback),
    with unicorn's CPU TLB and with the identity TLB xenlab gives HVM vCPUs while paging
    is off (``X86Vcpu.identity_tlb_until_paging``): there data pages are entered
    read-write only, so their stores leave unicorn's slow path; then with PAE paging on,
    QEMU's page walk against the native one that follows the identity TLB
    (``X86Vcpu._enter_walk``)."""
    def once(body: str, identity: bool, paging: bool) -> float:
        return _flat32_loop(body, n, identity=identity, paging=paging)

    out: dict[str, Any] = {"stores": n}
    for name, identity, paging in (("cpu_tlb", False, False), ("identity_tlb", True, False),
                                   ("paged_cpu_tlb", False, True),
                                   ("paged_walk", True, True)):
        store = min(once("8807", identity, paging) for _ in range(repeat))
        nops = min(once("9090", identity, paging) for _ in range(repeat))
        out[name] = {"store_loop_seconds": store, "nop_loop_seconds": nops,
                     "ns_per_store": max(0.0, store - nops) / n * 1e9}
    return out


def boot_bench(cmdline: str, *, trace: bool) -> dict[str, Any]:
    """Boot a host, create the pv-bench domain, time host.run() alone."""
    host = XenHost(trace=trace)
    img = load_elf_kernel(BENCH_ELF)
    d = host.domain_create("pv-bench", DomainType.PV, max_pages=MEMORY_MIB * 256, vcpus=1)
    host.populate_physmap(d, MEMORY_MIB * 256)
    build_pv(host, d, img, cmdline=cmdline)
    host.domain_unpause(d)
    t0 = time.perf_counter()
    status = host.run()
    dt = time.perf_counter() - t0
    text = host.log.text()
    m = _SUM_RE.search(text)
    return {
        "seconds": dt,
        "status": status.value if isinstance(status, RunStatus) else str(status),
        "sum": m.group(1) if m else None,
        "loop_done": m is not None,
        "hypercalls_done": "pv-bench: hypercalls done" in text,
        "mmu_updates_done": "pv-bench: mmu_updates done" in text,
        "hypercalls": d.hypercall_count,
        "traced_xen_version": host.trace.count(kind="hypercall", name="xen_version"),
        "virtual_ns": host.instructions,
    }


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(runs, key=lambda r: r["seconds"])
    return dict(best, runs=[r["seconds"] for r in runs])


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


# ---------------------------------------------------------------------------
def _disk_cfg(workdir: Path, cmdline: str) -> Path:
    """An xl.cfg like images/pv-disk.cfg, on the copy of pv-disk.img in workdir."""
    cfg = workdir / "pv-disk-bench.cfg"
    cfg.write_text(
        'name = "pv-disk"\ntype = "pv"\n'
        f'kernel = "{DISK_ELF}"\n'
        "memory = 16\nvcpus = 1\n"
        "disk = [ 'format=raw, vdev=xvda, access=rw, target=pv-disk.img' ]\n"
        f'cmdline = "{cmdline}"\n'
        'on_poweroff = "preserve"\non_crash = "preserve"\n', encoding="utf-8")
    return cfg


def boot_disk(workdir: Path, requests: int, depth: int, *, suppress: bool) -> dict[str, Any]:
    """Run the pv-disk guest with ``bench=requests``; time host.run() alone, count events."""
    cmdline = f"bench={requests} depth={depth}" + ("" if suppress else " nosuppress")
    host = XenHost(trace=True)
    toolstack = Libxl(host)
    d = toolstack.domain_create_new(parse_config_file(_disk_cfg(workdir, cmdline)), paused=True)
    (dev,) = dom0_services(host).devices[d.domid]
    dev.event_suppression = suppress          # BlkbackDevice: before the frontend connects
    toolstack.domain_unpause(d)
    t0 = time.perf_counter()
    status = host.run()
    dt = time.perf_counter() - t0
    text = bytes(d.console).decode("latin-1")
    port = dev.fe_read_int("event-channel")   # the guest's end of the blkif channel
    sends = sum(1 for r in host.trace.records
                if r.dom == d.domid and r.args and r.args.get("cmd") == "EVTCHNOP_send"
                and r.args.get("port") == port)
    m, ok = _DISK_RE.search(text), _DISK_OK_RE.search(text)
    return {
        "seconds": dt,
        "status": status.value if isinstance(status, RunStatus) else str(status),
        "verified": "pv-disk: sector 100 verified" in text,
        "completed": int(m.group(1)) if m else 0,
        "ok": int(ok.group(1)) if ok else 0,
        "guest_notified": int(m.group(3)) if m else 0,
        "frontend_notifications": sends,
        "backend_notifications": dev.stats.notifications_sent,
        "backend_requests": dev.stats.requests,
    }


def block_bench(requests: int = DEFAULT_BLOCK_REQUESTS, depth: int = DEFAULT_BLOCK_DEPTH,
                repeat: int = DEFAULT_REPEAT, *, suppress: bool = True) -> dict[str, Any]:
    """The block path: bench=N minus bench=0 (best of repeat each), one mode of suppression."""
    with tempfile.TemporaryDirectory(prefix="xenlab-bench-") as tmp:
        workdir = Path(tmp)
        shutil.copyfile(DISK_IMG, workdir / "pv-disk.img")
        base_runs, runs = [], []
        for _ in range(repeat):                  # alternate, like the loop runs
            base_runs.append(boot_disk(workdir, 0, depth, suppress=suppress))
            runs.append(boot_disk(workdir, requests, depth, suppress=suppress))
    base, full = _best(base_runs), _best(runs)
    dt = max(full["seconds"] - base["seconds"], 0.0)
    n = max(full["completed"], 1)
    return {
        "requests": requests, "depth": depth, "event_suppression": suppress,
        "seconds": dt, "seconds_bench0": base["seconds"], "seconds_benchN": full["seconds"],
        "status": full["status"], "verified": full["verified"] and base["verified"],
        "completed": full["completed"], "ok": full["ok"],
        "requests_per_s": _rate(full["completed"], dt),
        "mb_per_s": _rate(full["completed"] * BLOCK_BYTES, dt) / 1e6,
        "guest_notified": full["guest_notified"],
        "frontend_notifications": full["frontend_notifications"] - base["frontend_notifications"],
        "backend_notifications": full["backend_notifications"] - base["backend_notifications"],
        "frontend_per_request":
            (full["frontend_notifications"] - base["frontend_notifications"]) / n,
        "backend_per_request":
            (full["backend_notifications"] - base["backend_notifications"]) / n,
    }


FIRMWARE = Path(__file__).resolve().parents[1] / "images" / "firmware"
SEABIOS_BIN = Path("/usr/share/seabios/bios-256k.bin")


def hvm_boot(bios: str, repeat: int, *, vga: str = "stdvga") -> dict[str, Any] | None:
    """Wall time from ``xl create`` to the boot sector's end marker on port 0xE9
    ("xenlab bootsect: done"), tracing on; None if that firmware is not installed.
    ``vga``: the config's ``vga`` ("none" is the machine QEMU's ``-nodefaults`` gives).

    The run loop's ``until`` check finds the marker in Xen's console log when the slice
    ends, which is at once: the boot sector halts right after it (two exits later). A
    trace listener would see it a few microseconds sooner but runs for every record of
    the boot (~20,000 calls, ~5 % of the boot's time), which is the harness's cost, not
    xenlab's."""
    from xenlab.lab import Lab

    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="xenlab-bench-") as tmp:
            disk = Path(tmp) / "boot.img"
            shutil.copy(FIRMWARE / "bootdisk.img", disk)
            cfg = Path(tmp) / "boot.cfg"
            cfg.write_text(f'name = "boot"\ntype = "hvm"\nmemory = 32\nbios = "{bios}"\n'
                           f'vga = "{vga}"\n'
                           f"disk = [ 'format=raw, vdev=hda, access=ro, target={disk}' ]\n")
            lab = Lab(memory_mib=256, dom0_mem_mib=64)
            seen: list[float] = []
            lines = lab.host.log.lines

            def marker(seen: list[float] = seen, lines: list[str] = lines) -> bool:
                if not seen and any("xenlab bootsect: done" in line for line in lines[-4:]):
                    seen.append(time.perf_counter())
                return bool(seen)

            t0 = time.perf_counter()
            if lab.xl_output(f"create {cfg}").startswith("xl: error"):
                return None
            lab.host.run(max_time_ns=5_000_000_000, until=marker)
            if not seen:
                return None
            times.append(seen[0] - t0)
    return {"seconds": min(times), "runs": times, "bios": bios, "vga": vga}


#: A boot sector that polls the BIOS forever: INT 16h AH=01h (a key?) and INT 1Ah AH=00h
#: (the tick count), as DOS-era programs and games wait. Nearly every instruction it runs
#: is in a real-mode software interrupt or its handler.
POLL_SECTOR = r"""
    .code16
1:  mov $0x01, %ah
    int $0x16
    mov $0x00, %ah
    int $0x1a
    jmp 1b
"""
GOAL_POLL_RATIO = 1.0          # virtual time at least as fast as wall time (issue 14)


@contextlib.contextmanager
def _boot_sector(source: str, name: str, bios: str) -> Iterator[Any]:
    """A Lab whose HVM domain ``name`` runs the 16-bit boot sector ``source`` under
    ``bios`` ("xenlab" or "seabios", no VGA), run until the sector has started; None
    without binutils to assemble it, or if ``xl create`` refused the domain."""
    from xenlab.lab import Lab
    from xenlab.labkit import assemble, boot_disk, have_binutils

    if not have_binutils():
        yield None
        return
    code = assemble(source, bits=16, org=0x7C00)
    with tempfile.TemporaryDirectory(prefix="xenlab-bench-") as tmp:
        disk = Path(tmp) / f"{name}.img"
        disk.write_bytes(boot_disk(code))
        cfg = Path(tmp) / f"{name}.cfg"
        cfg.write_text(f'name = "{name}"\ntype = "hvm"\nmemory = 32\nbios = "{bios}"\n'
                       f'vga = "none"\n'
                       f"disk = [ 'format=raw, vdev=hda, access=ro, target={disk}' ]\n")
        lab = Lab(memory_mib=256, dom0_mem_mib=64)
        if lab.xl_output(f"create {cfg}").startswith("xl: error"):
            yield None
            return
        # to the boot sector: SeaBIOS waits 2.5 s (virtual) at its boot menu
        lab.run(max_seconds=3.0 if bios == "seabios" else 0.02)
        yield lab


def bios_poll(bios: str, virtual_s: float = 0.01, *, idle: bool = True
              ) -> dict[str, Any] | None:
    """Wall time per virtual second of POLL_SECTOR under ``bios`` ("xenlab" or
    "seabios"), measured once the boot sector runs. ``idle``: with the vCPU's idle-loop
    skipping (xenlab.cpu.idle, the default), or every round emulated. None without that
    firmware or without binutils to assemble the sector."""
    from xenlab.lab import Lab

    if bios == "seabios" and Lab.missing("seabios") is not None:
        return None
    with _boot_sector(POLL_SECTOR, "poll", bios) as lab:
        if lab is None:
            return None
        cpu = lab.domain("poll").vcpus[0].cpu
        finder = cpu.idle
        if not idle:
            cpu.idle = None
        s0 = finder.skipped_ns if finder is not None else 0
        t0, v0, n0, i0 = (time.perf_counter(), lab.host.now(), cpu.native_interrupts(),
                          lab.host.instructions)
        lab.run(max_seconds=virtual_s)
        wall, virtual = time.perf_counter() - t0, (lab.host.now() - v0) / 1e9
        ints, insns = cpu.native_interrupts() - n0, lab.host.instructions - i0
        skipped = (finder.skipped_ns - s0) / 1e9 if finder is not None and idle else 0.0
    return {"bios": bios, "wall_s": wall, "virtual_s": virtual, "idle": idle,
            "wall_per_virtual": wall / virtual if virtual else 0.0,
            "skipped_s": skipped,
            "native_interrupts": ints, "instructions": insns,
            "us_per_interrupt": wall * 1e6 / ints if ints and not skipped else None}


#: A boot sector that reads PCI configuration space forever: each ``in`` from 0xCFC is an
#: IOREQ_TYPE_PCI_CONFIG ioreq, from Xen's handle_pio over the event channel to the device
#: model in Dom0 and back, the round trip most of a SeaBIOS boot's Python time goes to.
IOREQ_SECTOR = r"""
    .code16
    mov $0xcf8, %dx
    mov $0x80000000, %eax
    out %eax, %dx
    mov $0xcfc, %dx
1:  in %dx, %eax
    jmp 1b
"""


def ioreq_round_trip(virtual_s: float = 0.05) -> dict[str, Any] | None:
    """Wall time of one ioreq round trip with the trace on: IOREQ_SECTOR's reads under the
    teaching BIOS for ``virtual_s`` of guest time, divided by the ioreqs the trace
    counted. None without binutils to assemble the sector."""
    from xenlab.xen.trace import Kind

    with _boot_sector(IOREQ_SECTOR, "ioreq", "xenlab") as lab:
        if lab is None:
            return None
        domid, trace = lab.domain("ioreq").domid, lab.host.trace
        n0, t0 = trace.count(kind=Kind.IOREQ, dom=domid, name="ioreq"), time.perf_counter()
        lab.run(max_seconds=virtual_s)
        wall = time.perf_counter() - t0
        n = trace.count(kind=Kind.IOREQ, dom=domid, name="ioreq") - n0
    return {"ioreqs": n, "wall_s": wall, "virtual_s": virtual_s,
            "us_per_ioreq": wall * 1e6 / n if n else None}


def linux_boot() -> dict[str, Any] | None:
    """Debian's Linux (``make real-guests``) as a PV DomU: wall time, instructions and
    the guest's virtual time from ``xl create`` to its busybox prompt, then the round
    trip of one command typed at it; the hypercalls and trap bounces of the boot. None
    without the cache. Runs once: a boot is some 2.7 G instructions."""
    from xenlab.lab import Lab
    from xenlab.xen.trace import Kind

    cache = Path(os.environ.get("XENLAB_REAL_GUESTS") or "~/.cache/xenlab/real-guests")
    cfg = cache.expanduser() / "linux-pv.cfg"
    if not cfg.is_file():
        return None
    lab = Lab()
    host = lab.host
    t0 = time.perf_counter()
    lab.xl_output(f"create {cfg}")
    d = lab.domain("linux-pv")
    host.run(max_instructions=8_000_000_000, max_time_ns=60 * 10**9,
             until=lambda: b"/ # " in d.console[-64:])
    boot_s = time.perf_counter() - t0
    if b"/ # " not in d.console[-64:]:
        return None
    boot_insns, boot_ns = host.instructions, host.elapsed()
    start = len(d.console)
    t1 = time.perf_counter()
    lab.console_input("linux-pv", "echo bench $((6*7))\n")
    host.run(max_instructions=500_000_000, max_time_ns=5 * 10**9,
             until=lambda: b"bench 42" in d.console[start:])
    answer_s = time.perf_counter() - t1
    per_name: dict[str, int] = {}
    for (dom, kind, name), n in host.trace.counts().items():  # exact, past the ring too
        if dom == d.domid and kind is Kind.HYPERCALL:
            per_name[name] = per_name.get(name, 0) + n
    return {"seconds": boot_s, "instructions": boot_insns, "virtual_seconds": boot_ns / 1e9,
            "insns_per_s": _rate(boot_insns, boot_s), "command_seconds": answer_s,
            "answered": b"bench 42" in d.console[start:],
            "hypercalls": sum(per_name.values()),
            "top_hypercalls": sorted(per_name.items(), key=lambda kv: -kv[1])[:5]}


def qemu_boot(repeat: int, *, vga: bool = False) -> dict[str, Any] | None:
    """qemu-system-i386 -nodefaults with the same SeaBIOS booting the same disk (the boot
    sector exits QEMU through isa-debug-exit when it is done); ``vga`` adds QEMU's
    standard VGA (``-device VGA``, SeaBIOS's vgabios-stdvga), as xenlab's default has."""
    qemu = shutil.which("qemu-system-i386")
    if qemu is None or not SEABIOS_BIN.is_file():
        return None
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="xenlab-bench-") as tmp:
            disk = Path(tmp) / "boot.img"
            shutil.copy(FIRMWARE / "bootdisk.img", disk)
            t0 = time.perf_counter()
            subprocess.run([qemu, "-nodefaults", "-machine", "pc", "-m", "32", "-bios",
                            str(SEABIOS_BIN), "-drive", f"file={disk},format=raw,if=ide",
                            "-display", "none", "-device",
                            "isa-debug-exit,iobase=0xf4,iosize=0x04",
                            *(["-device", "VGA"] if vga else [])],
                           capture_output=True, timeout=60, check=False)
            times.append(time.perf_counter() - t0)
    return {"seconds": min(times), "runs": times, "vga": vga}


def seabios_pairs(repeat: int) -> dict[str, dict[str, Any] | None]:
    """SeaBIOS under xenlab next to SeaBIOS on QEMU, run by run in turn (a slow minute of
    a shared machine then hits both sides alike), on the same machine twice: without a
    VGA adapter (xenlab ``vga = "none"``, QEMU ``-nodefaults``: the goal's comparison)
    and with the standard VGA and its BIOS (xenlab's default, QEMU ``-device VGA``)."""
    out: dict[str, dict[str, Any] | None] = {}
    for label, vga in (("novga", False), ("vga", True)):
        xen_runs: list[float] = []
        qemu_runs: list[float] = []
        for _ in range(repeat):
            x = hvm_boot("seabios", 1, vga="stdvga" if vga else "none")
            q = qemu_boot(1, vga=vga)
            if x is None or q is None:
                xen_runs = qemu_runs = []
                break
            xen_runs.append(x["seconds"])
            qemu_runs.append(q["seconds"])
        out[f"xenlab_{label}"] = ({"seconds": min(xen_runs), "runs": xen_runs}
                                  if xen_runs else None)
        out[f"qemu_{label}"] = ({"seconds": min(qemu_runs), "runs": qemu_runs}
                                if qemu_runs else None)
    return out


def _hcloop_child(instructions: int, cmdline: str = "loop=0 hypercalls=4000000000"
                  ) -> dict[str, Any]:
    """In a fresh process: the hypercall-loop guest (pv-bench, ``loop=0`` and more
    hypercalls than the budget allows) run to ``instructions`` with the trace at its
    default; this process's own peak RSS (getrusage maxrss) before and after."""
    import resource

    def maxrss_mb() -> float:
        """The peak RSS of this process's own memory (Linux: VmHWM, which starts afresh
        at exec). getrusage's maxrss does not: it keeps the peak of the parent that
        forked this child, the 1.4 GB of a Linux boot when that ran first."""
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    host = XenHost(trace=True)
    img = load_elf_kernel(BENCH_ELF)
    d = host.domain_create("pv-bench", DomainType.PV, max_pages=MEMORY_MIB * 256, vcpus=1)
    host.populate_physmap(d, MEMORY_MIB * 256)
    build_pv(host, d, img, cmdline=cmdline)
    host.domain_unpause(d)
    before = maxrss_mb()
    t0 = time.perf_counter()
    host.run(max_instructions=instructions)
    seconds = time.perf_counter() - t0
    return {
        "cmdline": cmdline, "instructions": host.instructions, "seconds": seconds,
        "hypercalls": d.hypercall_count,
        "traced_hypercalls": host.trace.count(kind="hypercall", dom=d.domid),
        "kept": len(host.trace), "dropped": host.trace.dropped, "limit": host.trace.limit,
        "maxrss_mb_before_run": before, "maxrss_mb": maxrss_mb(),
    }


def trace_memory(points: tuple[int, ...] = DEFAULT_TRACE_MEMORY, *, mixed_2g: bool = True
                 ) -> list[dict[str, Any]]:
    """Peak RSS of a guest that loops on hypercalls, tracing at its default, each run of
    ``points`` (instructions) in a child process that runs only that guest, then (with
    ``mixed_2g``) the same guest run to its end over 2 G instructions that compute
    between 5 M hypercalls. With the trace's ring the figure stops growing once the
    ring is full."""
    out = []
    runs = [(n, []) for n in points]
    if mixed_2g:
        runs.append((MIXED_2G_BUDGET, ["--hcloop-cmdline", MIXED_2G_CMDLINE]))
    for n, extra in runs:
        proc = subprocess.run([sys.executable, "-m", "xenlab.bench", "--hcloop-child", str(n),
                               *extra], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"hypercall-loop child for {n} instructions failed:\n"
                               f"{proc.stderr.strip()}")
        out.append(json.loads(proc.stdout))
    return out


GOAL_STEP_S = 0.050   # one Stepper step, panels refreshed
GOAL_BACK_S = 0.200   # Back to a random point of the whole hvm-hello boot


def stepper_bench(steps: int = 200, backs: int = 10, seed: int = 1) -> dict[str, Any] | None:
    """xenlab.views.stepper on hvm-hello (created paused): the mean wall time of a Step
    click (one instruction plus every panel refreshed), then the whole boot stepped to
    its end and ``backs`` jumps Back to random earlier instructions (restore the nearest
    checkpoint, replay to the exact instruction)."""
    import random

    from xenlab.lab import IMAGES, Lab
    from xenlab.views.stepper import Stepper, StepperView

    cfg = IMAGES / "hvm-hello.cfg"
    if not cfg.exists() or not (IMAGES / "firmware" / "xenlab-bios.bin").exists():
        return None
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl_output(f"create -p {cfg}")
    stepper = Stepper(lab, "hvm-hello")
    view = StepperView(stepper)
    t0 = time.perf_counter()
    for _ in range(steps):
        view.step_button.click()
    step_s = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    total = stepper.run_to_end()
    boot_s = time.perf_counter() - t0
    rng = random.Random(seed)
    times = []
    for _ in range(backs):
        target = rng.randrange(0, total)
        t0 = time.perf_counter()
        stepper.back_to(target)
        times.append(time.perf_counter() - t0)
        assert stepper.position == target
        stepper.back_to(total)
    back_mean = sum(times) / len(times)
    return {"steps": steps, "step_seconds": step_s, "boot_instructions": total,
            "boot_stepped_seconds": boot_s, "checkpoint_every_s": stepper.checkpoint_every_s,
            "checkpoints": len(stepper.checkpoints), "backs": backs,
            "back_seconds_mean": back_mean, "back_seconds_max": max(times),
            "goals": {"step_lt_50ms": step_s < GOAL_STEP_S,
                      "back_lt_200ms": back_mean < GOAL_BACK_S}}


GOAL_STEPPER_RATIO = 2.0   # the stepper's run to the boot sector, against the plain boot
GOAL_STEPPER_BACK_MEAN_S = 0.100
GOAL_STEPPER_BACK_MAX_S = 0.200


def stepper_seabios_bench(repeat: int = DEFAULT_REPEAT, backs: int = 20,
                          seed: int = 1) -> dict[str, Any] | None:
    """The boot stepper on the SeaBIOS boot (images/hvm-seabios.cfg: Xen's hvmloader,
    SeaBIOS and the hvm-hello disk, the standard VGA). In turn, best of ``repeat`` each:
    the plain boot, wall time from ``xl create`` to SeaBIOS's "Booting from 0000:7c00"
    line (``XenHost.run``, its ``until`` looking at Xen's log after each slice); and
    the stepped one, from ``xl create -p`` through ``Stepper(...)`` to
    ``run_to_phase("Booting from 0000")``, which stops the vCPU right after the
    instruction that wrote that line. Then, on the last stepper, ``backs`` jumps to
    random instructions of that run (``back_to``: restore the nearest checkpoint,
    replay to the exact instruction), each from where the one before left it, as a
    student moves the slider. None without Debian's hvmloader and SeaBIOS."""
    import random

    from xenlab.lab import Lab
    from xenlab.views.stepper import Stepper

    if Lab.missing("seabios") is not None:
        return None
    cfg = Lab.image("hvm-seabios.cfg")
    plain_s: list[float] = []
    stepped_s: list[float] = []
    stepper: Stepper | None = None
    for _ in range(repeat):
        lab = Lab(memory_mib=256, dom0_mem_mib=64)
        lines = lab.host.log.lines
        t0 = time.perf_counter()
        lab.xl_output(f"create {cfg}")
        lab.host.run(until=lambda lines=lines: any("Booting from 0000" in line  # type: ignore[misc]
                                                   for line in lines[-3:]),
                     max_time_ns=5_000_000_000)
        plain_s.append(time.perf_counter() - t0)
        if not any("Booting from 0000" in line for line in lines):
            return None
        del lab
        lab = Lab(memory_mib=256, dom0_mem_mib=64)
        t0 = time.perf_counter()
        lab.xl_output(f"create -p {cfg}")
        stepper = Stepper(lab, "hvm-seabios")
        rec = stepper.run_to_phase("Booting from 0000")
        stepped_s.append(time.perf_counter() - t0)
        if rec is None:
            return None
    assert stepper is not None
    total = stepper.position
    checkpoints = len(stepper.checkpoints)
    rng = random.Random(seed)
    times = []
    for _ in range(backs):
        target = rng.randrange(0, total)
        t0 = time.perf_counter()
        stepper.back_to(target)
        times.append(time.perf_counter() - t0)
        assert stepper.position == target
    plain, stepped = min(plain_s), min(stepped_s)
    mean = sum(times) / len(times) if times else 0.0
    return {"plain_seconds": plain, "plain_runs": plain_s, "stepper_seconds": stepped,
            "stepper_runs": stepped_s, "ratio": stepped / plain if plain else 0.0,
            "instructions": total, "checkpoints": checkpoints,
            "checkpoint_every_s": stepper.checkpoint_every_s, "backs": backs,
            "back_seconds": times, "back_seconds_mean": mean,
            "back_seconds_max": max(times, default=0.0),
            "divergences": len(stepper.replay.divergences),
            "goals": {"run_lt_2x_plain": stepped <= GOAL_STEPPER_RATIO * plain,
                      "back_mean_lt_100ms": mean < GOAL_STEPPER_BACK_MEAN_S,
                      "back_max_lt_200ms": max(times, default=0.0) < GOAL_STEPPER_BACK_MAX_S}}


#: memtest86+ in GRUB's memdisk, under a name typed without shift: the teaching BIOS's
#: keyboard handler knows no shift state (an unshifted US map; '(' arrives as '9')
MEMTEST_PATH = "/boot/memtest.bin"
PROMPT_SECONDS = 0.1   # guest time GRUB waits at ``grub>`` in memtest_pass
MEMTEST_PROMPT = "<Enter> to start testing"


def memtest_pass(*, upper_limit: str | None = None, memory_mib: int = 16,
                 bit_fade: bool = False, budget: int | None = None
                 ) -> dict[str, Any] | None:
    """Debian's memtest86+ through one pass on an HVM guest with the teaching BIOS: GRUB
    i386-pc (``xenlab.boot_images``, built from Debian's packages) to ``grub>``, then
    ``linux16`` and ``boot``; at memtest's start prompt its own menu is typed as a user
    would, to take test 10 (bit fade, which waits 2 x 80 s of guest time on the TSC) out
    of the selection unless ``bit_fade`` and, with ``upper_limit`` (``"1m"``), to test
    below that address only. Then it runs until its screen says ``Pass: 1`` (at most
    ``budget`` instructions). On the way, GRUB waits at ``grub>`` for PROMPT_SECONDS of
    guest time: the wall time that takes per guest second, and the wall time to the
    prompt from the lab's start. None without the packages."""
    from xenlab.boot_images import MEMTEST, grub_disk, missing_grub, missing_memtest
    from xenlab.lab import Lab

    if missing_grub() is not None or missing_memtest() is not None:
        return None
    with tempfile.TemporaryDirectory(prefix="xenlab-memtest-") as tmp:
        image = grub_disk(Path(tmp) / "grub.img",
                          {MEMTEST_PATH.lstrip("/"): MEMTEST.read_bytes()})
        cfg = Path(tmp) / "memtest.cfg"
        cfg.write_text(f'name = "memtest"\ntype = "hvm"\nmemory = {memory_mib}\n'
                       f'bios = "xenlab"\ndisk = [ \'format=raw, vdev=hda, access=ro, '
                       f"target={image}' ]\n")
        t0 = time.perf_counter()
        lab = Lab(memory_mib=256, dom0_mem_mib=64)
        lab.xl_output(f"create {cfg}")
        d = lab.domain("memtest")
        vga = lab.toolstack.device_models[d.domid].vga
        if vga is None:
            raise RuntimeError("the memtest domain has no VGA")

        def until(done: Any, instructions: int, step: int) -> str:
            start = lab.host.instructions
            while lab.host.instructions - start < instructions and not d.is_shutting_down:
                lab.host.run(max_instructions=step, until=lambda: done(vga.screen_text()))
                screen = vga.screen_text()
                if done(screen):
                    return screen
            raise RuntimeError("memtest86+ did not get there:\n" + vga.screen_text())

        until(lambda screen: "grub>" in screen, 100_000_000, 2_000_000)
        to_prompt = time.perf_counter() - t0
        # GRUB waiting at its prompt: a poll round is a CPUID, two moves to CR0 and a
        # BIOS keyboard call in real mode, none of it an idle loop xenlab can skip
        v0, t1 = lab.host.elapsed(), time.perf_counter()
        lab.run(max_seconds=PROMPT_SECONDS)
        at_prompt = (time.perf_counter() - t1) / ((lab.host.elapsed() - v0) / 1e9)
        lab.console_input("memtest", f"linux16 {MEMTEST_PATH}\nboot\n")
        until(lambda screen: MEMTEST_PROMPT in screen, 60_000_000, 1_000_000)
        # F1 settings, F1 test selection, F2 remove one: 10, F10; [F2 address range, F2
        # upper limit, F10]; F10 (memtest's keymap reads F1-F10 and 1-0 the same)
        limit = f"22{upper_limit}\n0" if upper_limit else ""
        tests = "" if bit_fade else "1210\n0"
        keys = f"1{tests}{limit}0" if tests or limit else "\n"
        lab.console_input("memtest", keys)
        if budget is None:
            budget = 200_000_000_000 if bit_fade else 40_000_000_000
        seen: set[int] = set()

        def passed(screen: str) -> bool:
            seen.update(int(n) for n in re.findall(r"Test #(\d+)", screen))
            return re.search(r"Pass:\s+1\b", screen) is not None

        start, virtual, t1 = lab.host.instructions, lab.host.elapsed(), time.perf_counter()
        cpu = d.vcpus[0].cpu
        skipped = cpu.idle.skipped_ns if cpu is not None and cpu.idle is not None else 0
        screen = until(passed, budget, 50_000_000)
        if cpu is not None and cpu.idle is not None:
            skipped = cpu.idle.skipped_ns - skipped
        seconds = time.perf_counter() - t1
        instructions = lab.host.instructions - start
        errors = re.search(r"Errors:\s+(\d+)", screen)
        return {"memory_mib": memory_mib, "upper_limit": upper_limit,
                "seconds": seconds, "total_seconds": time.perf_counter() - t0,
                "instructions": instructions, "insns_per_s": _rate(instructions, seconds),
                "virtual_seconds": (lab.host.elapsed() - virtual) / 1e9,
                "skipped_seconds": skipped / 1e9, "bit_fade": bit_fade,
                "tests_seen": sorted(seen), "status_pass": "Status: Pass" in screen,
                "grub_prompt_seconds": to_prompt, "grub_prompt_wall_per_virtual": at_prompt,
                "errors": int(errors.group(1)) if errors else None, "screen": screen}


def vcpu_tsc_path(n: int = 1 << 18, repeat: int = 3) -> dict[str, Any]:
    """What one ``rdtsc`` costs on a xenlab HVM vCPU: a loop of ``n`` against the same
    loop with two NOPs, answered by the native callback (``X86Vcpu``'s ``_TSC_THUNK``:
    Python only at the first read of a run) and, for comparison, by the Python callback
    it falls back to where native code cannot run (that configuration also counts the
    budget in Python: the NOP loop, subtracted, pays that too)."""
    def answered_natively(cpu: Any, n: int) -> None:
        if cpu.native_budget and cpu.native_tsc_reads() != n - 1:
            raise RuntimeError("the native rdtsc callback did not answer the loop")

    def once(body: str, native: bool, n: int) -> float:
        check = (lambda cpu: answered_natively(cpu, n)) if native and body == "0f31" else None
        return _flat32_loop(body, n, native=native, check=check)

    out: dict[str, Any] = {}
    for name, native, count in (("native", True, n), ("python", False, n // 8)):
        tsc = min(once("0f31", native, count) for _ in range(repeat))
        nops = min(once("9090", native, count) for _ in range(repeat))
        out[name] = {"reads": count, "tsc_loop_seconds": tsc, "nop_loop_seconds": nops,
                     "ns_per_rdtsc": max(0.0, tsc - nops) / count * 1e9}
    return out


def run_bench(loop: int = DEFAULT_LOOP, hypercalls: int = DEFAULT_HYPERCALLS,
              repeat: int = DEFAULT_REPEAT, *, mmu_updates: int = DEFAULT_MMU_UPDATES,
              block_requests: int = DEFAULT_BLOCK_REQUESTS,
              block_depth: int = DEFAULT_BLOCK_DEPTH, progress: bool = False,
              trace_memory_points: tuple[int, ...] = DEFAULT_TRACE_MEMORY,
              trace_memory_2g: bool = True, memtest: bool = True) -> dict[str, Any]:
    """All measurements; returns the results as a JSON-able dict (``memtest``: also
    memtest86+'s first pass, about a minute)."""
    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    code = loop_code()
    # Raw and guest runs alternate, so a slow phase of a shared machine hits both alike.
    say(f"raw unicorn and xenlab loop, alternating: {loop} iterations x {repeat} each")
    raw_runs = []
    guest_runs = []
    for _ in range(repeat):
        raw_runs.append(raw_unicorn(loop, code))
        guest_runs.append(boot_bench(f"loop={loop} hypercalls=0", trace=True))
    raw_s, raw_sum = min(raw_runs)
    guest = _best(guest_runs)
    say(f"hypercalls (trace on): {hypercalls} x {repeat}")
    hc_on = _best([boot_bench(f"loop=0 hypercalls={hypercalls}", trace=True)
                   for _ in range(repeat)])
    say(f"hypercalls (trace off): {hypercalls} x {repeat}")
    hc_off = _best([boot_bench(f"loop=0 hypercalls={hypercalls}", trace=False)
                    for _ in range(repeat)])
    say(f"mmu_update round trips (trace on): {mmu_updates} x {repeat}")
    mmu_on = _best([boot_bench(f"loop=0 hypercalls=0 mmu_updates={mmu_updates}",
                               trace=True) for _ in range(repeat)])
    say(f"block path (pv-disk), event suppression on: bench={block_requests} "
        f"depth={block_depth} and bench=0, x {repeat}")
    blk_on = block_bench(block_requests, block_depth, repeat, suppress=True)
    say("block path (pv-disk), event suppression off (nosuppress, "
        f"BlkbackDevice.event_suppression = False), x {repeat}")
    blk_off = block_bench(block_requests, block_depth, repeat, suppress=False)

    say(f"HVM boots: teaching firmware; SeaBIOS under xenlab and on QEMU in turn, without "
        f"and with VGA, x {repeat}")
    boot_teaching = hvm_boot("xenlab", repeat)
    pairs = seabios_pairs(repeat)
    boot_seabios, boot_qemu = pairs["xenlab_novga"], pairs["qemu_novga"]
    say("real-mode BIOS polling (INT 16h / INT 1Ah loop): teaching BIOS, SeaBIOS")
    polls = {b: bios_poll(b, 1.0) for b in ("xenlab", "seabios")}
    polls_emulated = {b: bios_poll(b, 0.01, idle=False) for b in ("xenlab", "seabios")}
    say("ioreq round trips: a boot sector reading PCI configuration space")
    ioreq = ioreq_round_trip()
    store_path = raw_store_path()
    vcpu_stores = vcpu_store_path()
    tsc_path = vcpu_tsc_path()
    if memtest:
        say("memtest86+ (Debian's, under GRUB i386-pc): its first pass over 16 MiB, once")
    memtest_run: dict[str, Any] | None = None
    if memtest:
        try:
            memtest_run = memtest_pass(bit_fade=True)
        except RuntimeError as err:  # the other figures are still worth reporting
            memtest_run = {"error": str(err).splitlines()[0]}
    say("Debian's Linux as a PV DomU (make real-guests): xl create to its prompt, once")
    linux = linux_boot()
    say("stepper: Step clicks on hvm-hello, the whole boot stepped, Back to random points")
    stepper = stepper_bench()
    say(f"stepper on the SeaBIOS boot: to the boot sector, plain and stepped in turn, x "
        f"{repeat}; Back to random points")
    stepper_seabios = stepper_seabios_bench(repeat)
    counts = ", ".join(f"{n:,}" for n in trace_memory_points)
    say(f"trace memory: a hypercall-loop guest to {counts} instructions, one child each"
        + (", then 2 G instructions with 5 M hypercalls" if trace_memory_2g else ""))
    rss = trace_memory(trace_memory_points, mixed_2g=trace_memory_2g)

    insns = loop * INSNS_PER_ITER
    raw_ips = _rate(insns, raw_s)
    guest_ips = _rate(insns, guest["seconds"])
    ratio = guest_ips / raw_ips if raw_ips else 0.0
    hc_rate_on = _rate(hypercalls, hc_on["seconds"])
    hc_rate_off = _rate(hypercalls, hc_off["seconds"])
    return {
        "machine": machine_info(),
        "params": {"loop": loop, "hypercalls": hypercalls, "repeat": repeat,
                   "insns_per_iter": INSNS_PER_ITER, "block_requests": block_requests,
                   "block_depth": block_depth},
        "raw_unicorn": {"seconds": raw_s, "runs": [r[0] for r in raw_runs],
                        "insns_per_s": raw_ips, "sum": hex(raw_sum)},
        "xenlab_loop": dict(guest, insns_per_s=guest_ips, ratio_vs_raw=ratio),
        "hypercalls_trace_on": dict(hc_on, per_s=hc_rate_on),
        "hypercalls_trace_off": dict(hc_off, per_s=hc_rate_off),
        "mmu_updates_trace_on": dict(mmu_on, count=mmu_updates,
                                     per_s=_rate(mmu_updates, mmu_on["seconds"])),
        "block_suppression_on": blk_on,
        "block_suppression_off": blk_off,
        "hvm_boot_teaching": boot_teaching,
        "hvm_boot_seabios": boot_seabios,
        "qemu_boot_seabios": boot_qemu,
        "hvm_boot_seabios_vga": pairs["xenlab_vga"],
        "qemu_boot_seabios_vga": pairs["qemu_vga"],
        "bios_poll": polls,
        "bios_poll_emulated": polls_emulated,
        "ioreq_round_trip": ioreq,
        "unicorn_store_path": store_path,
        "vcpu_store_path": vcpu_stores,
        "vcpu_tsc_path": tsc_path,
        "memtest_pass": memtest_run,
        "stepper": stepper,
        "stepper_seabios": stepper_seabios,
        "linux_boot": linux,
        "trace_memory": rss,
        "goals": {
            "trace_rss_lt_300mb": bool(rss) and max(r["maxrss_mb"] for r in rss) < GOAL_RSS_MB,
            "teaching_boot_lt_50ms": bool(boot_teaching and boot_teaching["seconds"] < 0.05),
            "seabios_within_2x_qemu": bool(boot_seabios and boot_qemu and
                                           boot_seabios["seconds"] <= 2 * boot_qemu["seconds"]),
            "xenlab_ratio_ge_50pct": ratio >= GOAL_RATIO,
            "seabios_poll_realtime": bool(polls["seabios"]) and
                                     polls["seabios"]["wall_per_virtual"] <= GOAL_POLL_RATIO,
            "hypercalls_ge_100k_per_s": hc_rate_on >= GOAL_HYPERCALLS,
        },
    }


# ---------------------------------------------------------------------------
def _fmt_rate(x: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:.2f} {unit}"
    return f"{x:.0f} "


def format_report(r: dict[str, Any]) -> str:
    m, p = r["machine"], r["params"]
    raw, g = r["raw_unicorn"], r["xenlab_loop"]
    on, off = r["hypercalls_trace_on"], r["hypercalls_trace_off"]
    b_on, b_off = r["block_suppression_on"], r["block_suppression_off"]

    def goal(ok: bool) -> str:
        return "goal met" if ok else "goal NOT met"

    lines = [
        "xenlab bench",
        f"  machine : {m['cpu']}, {m['cores']} cores, {m['platform']}",
        f"  software: Python {m['python']}, unicorn {m['unicorn']}",
        f"  workload: loop={p['loop']} x {p['insns_per_iter']} instructions, "
        f"hypercalls={p['hypercalls']}, block bench={p['block_requests']} "
        f"depth={p['block_depth']}, best of {p['repeat']}",
        "",
        f"  {'measurement':<36} {'seconds':>9} {'rate':>16}   goal",
        f"  {'-' * 36} {'-' * 9} {'-' * 16}   {'-' * 28}",
        f"  {'raw unicorn loop (no hooks)':<36} {raw['seconds']:>9.3f} "
        f"{_fmt_rate(raw['insns_per_s']) + 'insn/s':>16}",
        f"  {'xenlab guest loop (trace on)':<36} {g['seconds']:>9.3f} "
        f"{_fmt_rate(g['insns_per_s']) + 'insn/s':>16}   "
        f"{g['ratio_vs_raw']:.0%} of raw (>= 50 %): "
        f"{goal(r['goals']['xenlab_ratio_ge_50pct'])}",
        f"  {'xen_version round trips (trace on)':<36} {on['seconds']:>9.3f} "
        f"{_fmt_rate(on['per_s']) + 'call/s':>16}   "
        f">= 100k/s: {goal(r['goals']['hypercalls_ge_100k_per_s'])}",
        f"  {'xen_version round trips (trace off)':<36} {off['seconds']:>9.3f} "
        f"{_fmt_rate(off['per_s']) + 'call/s':>16}   (information)",
    ]
    mmu = r.get("mmu_updates_trace_on")
    if mmu:
        lines.append(
            f"  {'mmu_update round trips (trace on)':<36} {mmu['seconds']:>9.3f} "
            f"{_fmt_rate(mmu['per_s']) + 'call/s':>16}   (information: each one validates "
            "an L1 entry, mod_l1_entry)"
            + ("" if mmu.get("mmu_updates_done") else "  NOT DONE"))
    for b, label in ((b_on, "suppression on"), (b_off, "suppression off")):
        lines.append(
            f"  {'block requests, ' + label:<36} {b['seconds']:>9.3f} "
            f"{_fmt_rate(b['requests_per_s']) + 'req/s':>16}   "
            f"{b['mb_per_s']:.2f} MB/s through the PV rings ({b['ok']}/{b['requests']} OKAY)")
    lines += [
        "",
        f"  {'notifications per request':<36} {'front->back':>11} {'back->front':>12}",
        f"  {'-' * 36} {'-' * 11} {'-' * 12}",
    ]
    for b, label in ((b_on, "event suppression on (default)"),
                     (b_off, "event suppression off")):
        lines.append(f"  {label:<36} {b['frontend_per_request']:>11.3f} "
                     f"{b['backend_per_request']:>12.3f}")
    lines += ["", f"  {'HVM boot: create -> boot sector done':<36} {'seconds':>9}   goal",
              f"  {'-' * 36} {'-' * 9}   {'-' * 28}"]
    bt, bs, bq = r.get("hvm_boot_teaching"), r.get("hvm_boot_seabios"), r.get("qemu_boot_seabios")
    ok_teaching = goal(r["goals"]["teaching_boot_lt_50ms"])
    lines.append(f"  {'teaching firmware (xenlab)':<36} "
                 + (f"{bt['seconds']:>9.3f}   < 0.050 s: {ok_teaching}"
                    if bt else f"{'-':>9}   (firmware not built)"))
    ratio = (f" ({bs['seconds'] / bq['seconds']:.2f}x QEMU's; issue 14 aims at 1x)"
             if bs and bq and bq['seconds'] else "")
    lines.append(f"  {'SeaBIOS + hvmloader (xenlab, traced)':<36} "
                 + (f"{bs['seconds']:>9.3f}   <= 2x QEMU: "
                    f"{goal(r['goals']['seabios_within_2x_qemu'])}{ratio}"
                    if bs else f"{'-':>9}   (xen-utils-4.17 / seabios not installed)"))
    lines.append(f"  {'SeaBIOS on qemu-system-i386 (process)':<36} "
                 + (f"{bq['seconds']:>9.3f}   (reference; both without VGA: vga = "
                    '"none", -nodefaults)' if bq else
                    f"{'-':>9}   (qemu-system-i386 not installed)"))
    bsv, bqv = r.get("hvm_boot_seabios_vga"), r.get("qemu_boot_seabios_vga")
    if bsv and bqv:
        lines.append(f"  {'  the same with the standard VGA':<36} {bsv['seconds']:>9.3f}   "
                     f"{bsv['seconds'] / bqv['seconds']:.2f}x QEMU's {bqv['seconds']:.3f} s "
                     "(information: -device VGA)")
    sp = r.get("unicorn_store_path")
    if sp:
        lines.append(f"  {'one guest byte store, bare unicorn':<36} "
                     f"{sp['ns_per_store'] * 1e-9:>9.1e}   (information: SeaBIOS makes ~1 M)")
    vs = r.get("vcpu_store_path")
    if vs:
        lines.append(f"  {'one guest byte store, HVM vCPU':<36} "
                     f"{vs['identity_tlb']['ns_per_store'] * 1e-9:>9.1e}   (information: "
                     f"identity TLB; {vs['cpu_tlb']['ns_per_store'] * 1e-9:.1e} with "
                     "unicorn's)")
        lines.append(f"  {'one guest byte store, paging on':<36} "
                     f"{vs['paged_walk']['ns_per_store'] * 1e-9:>9.1e}   (information: "
                     f"native page walk; {vs['paged_cpu_tlb']['ns_per_store'] * 1e-9:.1e} "
                     "with QEMU's)")
    ts = r.get("vcpu_tsc_path")
    if ts:
        lines.append(f"  {'one rdtsc, HVM vCPU':<36} "
                     f"{ts['native']['ns_per_rdtsc'] * 1e-9:>9.1e}   (information: native "
                     f"callback; {ts['python']['ns_per_rdtsc'] * 1e-9:.1e} in Python)")
    mt = r.get("memtest_pass")
    label = "memtest86+ first pass, 16 MiB"
    if mt and "error" in mt:
        lines.append(f"  {label:<36} {'-':>9}   {mt['error']}")
    elif mt:
        lines.append(f"  {label:<36} {mt['seconds']:>9.1f}   (information: tests "
                     f"{','.join(map(str, mt['tests_seen']))}; {mt['virtual_seconds']:.1f} s "
                     f"of guest time, {mt.get('skipped_seconds', 0.0):.1f} s of it waits on "
                     f"the TSC skipped; errors {mt['errors']})")
        if "grub_prompt_wall_per_virtual" in mt:
            lines.append(f"  {'GRUB i386-pc waiting at grub>':<36} "
                         f"{mt['grub_prompt_wall_per_virtual']:>8.1f}x   (information: wall "
                         f"per guest second; {mt['grub_prompt_seconds']:.2f} s to the prompt)")
    st = r.get("stepper")
    lines += ["", f"  {'BIOS polling loop (INT 16h/1Ah)':<36} {'wall/virt':>9}   goal"]
    for name, poll in (r.get("bios_poll") or {}).items():
        label = f"under {'SeaBIOS' if name == 'seabios' else 'the teaching BIOS'}"
        if poll is None:
            lines.append(f"  {label:<36} {'-':>9}   (firmware or binutils missing)")
            continue
        lines.append(f"  {label:<36} {poll['wall_per_virtual']:>8.2f}x   " + (
                         goal(r['goals']['seabios_poll_realtime']) + " (<= 1x)"
                         if name == "seabios" else "(information)"))
        lines.append(f"  {'':<36} {'':>9}   {poll['virtual_s']:.2f} s of guest time, "
                     f"{poll['skipped_s']:.2f} s of it idle rounds skipped (xenlab.cpu.idle)")
        emulated = (r.get("bios_poll_emulated") or {}).get(name)
        if emulated:
            lines.append(f"  {label + ', every round run':<36} "
                         f"{emulated['wall_per_virtual']:>8.1f}x   (information)")
            poll = emulated
        if poll.get("us_per_interrupt"):
            lines.append(f"  {'':<36} {'':>9}   {poll['native_interrupts']:,} int vectored "
                         f"natively, {poll['us_per_interrupt']:.2f} us each with its "
                         f"handler ({poll['instructions'] / poll['native_interrupts']:.0f} "
                         "instructions)")
    io = r.get("ioreq_round_trip")
    if io and io.get("us_per_ioreq"):
        lines.append(f"  {'one ioreq round trip (PCI config)':<36} {io['us_per_ioreq']:>7.2f}us"
                     f"   (information: guest, Xen, Dom0's device model and back, trace "
                     f"on; {io['ioreqs']:,} in {io['wall_s']:.3f} s)")
    lines += ["", f"  {'stepper (hvm-hello)':<36} {'seconds':>9}   goal",
              f"  {'-' * 36} {'-' * 9}   {'-' * 28}"]
    if st:
        lines.append(f"  {'Step (1 instruction + panels)':<36} {st['step_seconds']:>9.4f}   "
                     f"< 0.050 s: {goal(st['goals']['step_lt_50ms'])}")
        lines.append(f"  {'Back to a random point (mean)':<36} "
                     f"{st['back_seconds_mean']:>9.4f}   "
                     f"< 0.200 s: {goal(st['goals']['back_lt_200ms'])}")
        lines.append(f"  {'Back to a random point (max)':<36} {st['back_seconds_max']:>9.4f}"
                     f"   of a {st['boot_instructions']:,}-instruction boot "
                     f"(stepped in {st['boot_stepped_seconds']:.1f} s, "
                     f"{st['checkpoints']} checkpoints)")
    else:
        lines.append(f"  {'Step / Back':<36} {'-':>9}   (firmware not built)")
    ss = r.get("stepper_seabios")
    lines += ["", f"  {'stepper (SeaBIOS boot)':<36} {'seconds':>9}   goal",
              f"  {'-' * 36} {'-' * 9}   {'-' * 28}"]
    if ss:
        sg = ss["goals"]
        lines.append(f"  {'plain: create -> Booting from 0000':<36} "
                     f"{ss['plain_seconds']:>9.3f}   (reference)")
        lines.append(f"  {'stepper: the same, run_to_phase':<36} "
                     f"{ss['stepper_seconds']:>9.3f}   {ss['ratio']:.2f}x plain (< 2x): "
                     f"{goal(sg['run_lt_2x_plain'])}")
        lines.append(f"  {'Back to a random point (mean)':<36} "
                     f"{ss['back_seconds_mean']:>9.4f}   < 0.100 s: "
                     f"{goal(sg['back_mean_lt_100ms'])}")
        lines.append(f"  {'Back to a random point (max)':<36} "
                     f"{ss['back_seconds_max']:>9.4f}   < 0.200 s: "
                     f"{goal(sg['back_max_lt_200ms'])}")
        lines.append(f"  {'':<4}{ss['instructions']:,} instructions to the boot sector, "
                     f"{ss['checkpoints']} checkpoints, {ss['backs']} Backs, "
                     f"{ss['divergences']} replays diverged")
    else:
        lines.append(f"  {'run to the boot sector / Back':<36} {'-':>9}   "
                     "(xen-utils-4.17 / seabios not installed)")
    lx = r.get("linux_boot")
    lines += ["", f"  {'Debian Linux 6.1, PV DomU':<36} {'seconds':>9}   what",
              f"  {'-' * 36} {'-' * 9}   {'-' * 28}"]
    if lx:
        lines.append(f"  {'xl create to the busybox prompt':<36} {lx['seconds']:>9.1f}   "
                     f"{lx['instructions'] / 1e9:.2f} G instructions "
                     f"({_fmt_rate(lx['insns_per_s'])}/s), {lx['virtual_seconds']:.2f} s "
                     "of guest time")
        lines.append(f"  {'a typed command answered':<36} {lx['command_seconds']:>9.2f}   "
                     f"{'yes' if lx['answered'] else 'NO ANSWER'}")
        top = ", ".join(f"{name} {n:,}" for name, n in lx["top_hypercalls"])
        lines.append(f"  {'':<4}{lx['hypercalls']:,} hypercalls during the boot: {top}")
    else:
        lines.append(f"  {'boot':<36} {'-':>9}   (no real guests: make real-guests)")
    rss = r.get("trace_memory") or []
    lines += ["", f"  {'trace memory: hypercall-loop guest':<36} {'peak RSS':>9}   goal",
              f"  {'-' * 36} {'-' * 9}   {'-' * 28}"]
    for i, t in enumerate(rss):
        what = (f"< {GOAL_RSS_MB} MB: {goal(r['goals']['trace_rss_lt_300mb'])}"
                if i == len(rss) - 1 else "")
        label = f"{t['instructions']:>14,} instructions"
        if t.get("cmdline", "").startswith("loop=0"):
            label += " (loop)"
        elif t.get("cmdline"):
            label += " (mixed)"
        lines.append(f"  {label:<36} {t['maxrss_mb']:>6.0f} MB   {what}".rstrip())
        lines.append(f"  {'':<4}{t['hypercalls']:,} hypercalls, {t['kept']:,} records kept, "
                     f"{t['dropped']:,} dropped; {t['seconds']:.0f} s "
                     f"(child's RSS before the run: {t['maxrss_mb_before_run']:.0f} MB)")
    lines += [
        "",
        f"  loop sum: raw {raw['sum']}, guest {g['sum']}"
        f" ({'same' if raw['sum'] == g['sum'] else 'DIFFERENT'});"
        f" traced xen_version records: {on['traced_xen_version']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m xenlab.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--loop", type=int, default=DEFAULT_LOOP, help="compute loop iterations")
    ap.add_argument("--hypercalls", type=int, default=DEFAULT_HYPERCALLS,
                    help="hypercall round trips")
    ap.add_argument("--block-requests", type=int, default=DEFAULT_BLOCK_REQUESTS,
                    help="block requests of the pv-disk guest (bench=N)")
    ap.add_argument("--block-depth", type=int, default=DEFAULT_BLOCK_DEPTH,
                    help="block requests in flight (depth=D, 1..32)")
    ap.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs per figure (best)")
    ap.add_argument("--trace-memory", default=",".join(map(str, DEFAULT_TRACE_MEMORY)),
                    metavar="N,N,...", help="instruction counts of the trace-memory runs "
                    "(a hypercall-loop guest, one child process each)")
    ap.add_argument("--no-trace-memory-2g", action="store_true",
                    help="leave out the 2 G-instruction trace-memory run (about a minute)")
    ap.add_argument("--no-memtest", action="store_true",
                    help="leave out memtest86+'s first pass (about a minute)")
    ap.add_argument("--hcloop-child", type=int, metavar="N", help=argparse.SUPPRESS)
    ap.add_argument("--hcloop-cmdline", default="loop=0 hypercalls=4000000000",
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.hcloop_child is not None:  # the child process of trace_memory
        print(json.dumps(_hcloop_child(args.hcloop_child, args.hcloop_cmdline)))
        return 0
    try:
        points = tuple(int(x.replace("_", "")) for x in args.trace_memory.split(",") if x)
    except ValueError:
        ap.error("--trace-memory takes instruction counts separated by commas")
    if any(n <= 0 for n in points):
        ap.error("--trace-memory counts must be positive")
    if args.loop < 0 or args.hypercalls < 0 or args.repeat < 1:
        ap.error("--loop and --hypercalls must be >= 0, --repeat >= 1")
    if args.block_requests < 0 or not 1 <= args.block_depth <= 32:
        ap.error("--block-requests must be >= 0, --block-depth 1..32")
    results = run_bench(args.loop, args.hypercalls, args.repeat,
                        block_requests=args.block_requests, block_depth=args.block_depth,
                        progress=not args.json, trace_memory_points=points,
                        trace_memory_2g=not args.no_trace_memory_2g,
                        memtest=not args.no_memtest)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
