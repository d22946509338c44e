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
   once with tracing on, once with tracing off (for information).

Every figure is the best of ``--repeat`` runs (time.perf_counter). Goals:
xenlab >= 50 % of raw unicorn; >= 100,000 hypercall round trips per second
with tracing on. ``--json`` prints the results as JSON instead of the table.

The bench is the one place besides xenlab.cpu.x86 that uses unicorn directly:
the raw figure must not go through xenlab.

Real Xen: (none: xenlab's own measurement)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile
from unicorn import Uc
from unicorn import unicorn_const as uc_const
from unicorn import x86_const as X

from xenlab.cpu.x86 import unicorn_version
from xenlab.tools.libs.guest.xg_dom_elfloader import load_elf_kernel
from xenlab.tools.libs.guest.xg_dom_x86 import build_pv
from xenlab.xen.domain import DomainType
from xenlab.xen.setup import RunStatus, XenHost

__all__ = ["BENCH_ELF", "INSNS_PER_ITER", "loop_code", "machine_info", "main", "run_bench"]

BENCH_ELF = Path(__file__).resolve().parent.parent / "images" / "pv-bench" / "pv-bench.elf"
INSNS_PER_ITER = 4            # add, imul, dec, jnz (pv-bench.S, bench_loop_start)
MEMORY_MIB = 16               # images/pv-bench.cfg: memory = 16
DEFAULT_LOOP = 200_000_000
DEFAULT_HYPERCALLS = 300_000
DEFAULT_REPEAT = 5
GOAL_RATIO = 0.5
GOAL_HYPERCALLS = 100_000

_SUM_RE = re.compile(r"pv-bench: loop done sum=(0x[0-9a-f]+)")


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
        "hypercalls": d.hypercall_count,
        "traced_xen_version": sum(1 for r in host.trace.records if r.name == "xen_version"),
        "virtual_ns": host.instructions,
    }


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(runs, key=lambda r: r["seconds"])
    return dict(best, runs=[r["seconds"] for r in runs])


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def run_bench(loop: int = DEFAULT_LOOP, hypercalls: int = DEFAULT_HYPERCALLS,
              repeat: int = DEFAULT_REPEAT, *, progress: bool = False) -> dict[str, Any]:
    """All measurements; returns the results as a JSON-able dict."""
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

    insns = loop * INSNS_PER_ITER
    raw_ips = _rate(insns, raw_s)
    guest_ips = _rate(insns, guest["seconds"])
    ratio = guest_ips / raw_ips if raw_ips else 0.0
    hc_rate_on = _rate(hypercalls, hc_on["seconds"])
    hc_rate_off = _rate(hypercalls, hc_off["seconds"])
    return {
        "machine": machine_info(),
        "params": {"loop": loop, "hypercalls": hypercalls, "repeat": repeat,
                   "insns_per_iter": INSNS_PER_ITER},
        "raw_unicorn": {"seconds": raw_s, "runs": [r[0] for r in raw_runs],
                        "insns_per_s": raw_ips, "sum": hex(raw_sum)},
        "xenlab_loop": dict(guest, insns_per_s=guest_ips, ratio_vs_raw=ratio),
        "hypercalls_trace_on": dict(hc_on, per_s=hc_rate_on),
        "hypercalls_trace_off": dict(hc_off, per_s=hc_rate_off),
        "goals": {
            "xenlab_ratio_ge_50pct": ratio >= GOAL_RATIO,
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

    def goal(ok: bool) -> str:
        return "goal met" if ok else "goal NOT met"

    lines = [
        "xenlab bench",
        f"  machine : {m['cpu']}, {m['cores']} cores, {m['platform']}",
        f"  software: Python {m['python']}, unicorn {m['unicorn']}",
        f"  workload: loop={p['loop']} x {p['insns_per_iter']} instructions, "
        f"hypercalls={p['hypercalls']}, best of {p['repeat']}",
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
    ap.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs per figure (best)")
    args = ap.parse_args(argv)
    if args.loop < 0 or args.hypercalls < 0 or args.repeat < 1:
        ap.error("--loop and --hypercalls must be >= 0, --repeat >= 1")
    results = run_bench(args.loop, args.hypercalls, args.repeat, progress=not args.json)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
