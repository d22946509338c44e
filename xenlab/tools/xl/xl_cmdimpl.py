"""The ``xl`` commands: list, create, destroy, shutdown, reboot, pause, unpause,
console, vcpu-list, info, dmesg and top, with xl's own output formats.

Every command is ``main_<name>(xl, args, out) -> int`` (0 success, 1 failure
as in xl); bad usage and unknown domains raise ``XenlabError`` subclasses that
the caller prints as one line.

Real Xen: tools/xl/xl_info.c (main_list, list_domains, main_info, main_dmesg),
tools/xl/xl_vmcontrol.c (main_create, main_destroy, main_shutdown, ...),
tools/xl/xl_vcpu.c (main_vcpulist), tools/xl/xl_console.c, tools/xenstat/xentop
"""

from __future__ import annotations

import getopt
import json
from typing import IO, TYPE_CHECKING

from xenlab.errors import UsageError
from xenlab.public import version as V
from xenlab.public.sched import ShutdownReason
from xenlab.public.vcpu import Runstate
from xenlab.tools.xl.xl_parse import parse_config_file
from xenlab.xen.page_alloc import PAGE_SIZE

if TYPE_CHECKING:
    from xenlab.tools.libs.light.libxl import Libxl
    from xenlab.xen.domain import Domain

__all__ = [
    "format_list",
    "main_console",
    "main_create",
    "main_destroy",
    "main_dmesg",
    "main_info",
    "main_list",
    "main_pause",
    "main_reboot",
    "main_shutdown",
    "main_top",
    "main_unpause",
    "main_vcpulist",
]


def _opts(args: list[str], short: str, usage: str) -> tuple[list[tuple[str, str]], list[str]]:
    try:
        return getopt.getopt(args, short)
    except getopt.GetoptError as err:
        raise UsageError(f"{err.msg}; usage: {usage}") from None


def _mem_mib(d: Domain) -> int:
    return d.tot_pages * PAGE_SIZE >> 20


def format_list(xl: Libxl, domains: list[Domain] | None = None) -> str:
    """list_domains: ``Name ID Mem VCPUs State Time(s)`` exactly as xl prints it."""
    host = xl.host
    running = host.running_vcpus()
    rows = [f"{'Name':<40} {'ID':>5} {'Mem':>5} {'VCPUs':>5} {'State':>10} {'Time(s)':>9}"]
    for d in domains if domains is not None else sorted(host.domains.values(),
                                                          key=lambda x: x.domid):
        vcpus = sum(1 for v in d.vcpus if v.online) or len(d.vcpus)
        secs = d.cpu_time / 1e9
        rows.append(f"{d.name:<40} {d.domid:>5} {_mem_mib(d):>5} {vcpus:>5}     "
                    f"{d.state_flags(running)}  {secs:>8.1f}")
    return "\n".join(rows) + "\n"


def _list_long(xl: Libxl, domains: list[Domain]) -> str:
    out = []
    for d in domains:
        cfg = d.config
        entry = {
            "domid": d.domid,
            "config": {
                "c_info": {"type": d.dtype.value, "name": d.name},
                "b_info": {
                    "max_vcpus": len(d.vcpus),
                    "max_memkb": d.max_pages * 4,
                    "target_memkb": d.tot_pages * 4,
                    "sched_params": {"sched": "credit", "weight": d.weight, "cap": d.cap},
                    "type.pv": {"kernel": cfg.kernel if cfg else None,
                                "cmdline": d.cmdline or None},
                },
                "on_poweroff": d.on_poweroff,
                "on_reboot": d.on_reboot,
                "on_crash": d.on_crash,
            },
        }
        out.append(entry)
    return json.dumps(out, indent=4) + "\n"


def main_list(xl: Libxl, args: list[str], out: IO[str]) -> int:
    """xl list [-l] [domain...]"""
    opts, rest = _opts(args, "lv", "xl list [-l] [Domain...]")
    domains = [xl.lookup(a) for a in rest] if rest else sorted(
        xl.host.domains.values(), key=lambda d: d.domid)
    if ("-l", "") in opts:
        out.write(_list_long(xl, domains))
    else:
        out.write(format_list(xl, domains))
    return 0


def main_create(xl: Libxl, args: list[str], out: IO[str]) -> int:
    """xl create [-p] [-c] <ConfigFile>"""
    opts, rest = _opts(args, "pcqF", "xl create [-p] [-c] <ConfigFile>")
    if len(rest) != 1:
        raise UsageError("usage: xl create [-p] [-c] <ConfigFile>")
    out.write(f"Parsing config from {rest[0]}\n")
    cfg = parse_config_file(rest[0])
    d = xl.domain_create_new(cfg, paused=("-p", "") in opts)
    for shipped, copy in xl.disk_copies.get(d.domid, ()):
        out.write(f"{shipped} is shipped with xenlab: the guest writes a fresh copy, {copy}\n")
    out.write(f"Created domain {d.domid} ({d.name})\n")
    if ("-c", "") in opts:
        xl.host.run(max_instructions=2_000_000_000)
        out.write(d.console.decode("latin-1"))
    return 0


def _one_domain(xl: Libxl, args: list[str], usage: str, short: str = ""
                ) -> tuple[list[tuple[str, str]], Domain]:
    opts, rest = _opts(args, short, usage)
    if len(rest) != 1:
        raise UsageError(f"usage: {usage}")
    return opts, xl.lookup(rest[0])


def main_destroy(xl: Libxl, args: list[str], out: IO[str]) -> int:
    _, d = _one_domain(xl, args, "xl destroy <Domain>")
    xl.domain_destroy(d)
    return 0


def main_pause(xl: Libxl, args: list[str], out: IO[str]) -> int:
    _, d = _one_domain(xl, args, "xl pause <Domain>")
    xl.domain_pause(d)
    return 0


def main_unpause(xl: Libxl, args: list[str], out: IO[str]) -> int:
    _, d = _one_domain(xl, args, "xl unpause <Domain>")
    xl.domain_unpause(d)
    return 0


def main_shutdown(xl: Libxl, args: list[str], out: IO[str]) -> int:
    opts, d = _one_domain(xl, args, "xl shutdown [-F] <Domain>", "Fwa")
    out.write(f"Shutting down domain {d.domid}\n")
    xl.domain_shutdown(d, ShutdownReason.SHUTDOWN_poweroff, force=("-F", "") in opts)
    return 0


def main_reboot(xl: Libxl, args: list[str], out: IO[str]) -> int:
    opts, d = _one_domain(xl, args, "xl reboot [-F] <Domain>", "Fwa")
    out.write(f"Rebooting domain {d.domid}\n")
    xl.domain_shutdown(d, ShutdownReason.SHUTDOWN_reboot, force=("-F", "") in opts)
    return 0


def main_console(xl: Libxl, args: list[str], out: IO[str]) -> int:
    """xl console [-t pv|serial] <Domain>: what the guest has written so far."""
    opts, d = _one_domain(xl, args, "xl console [-t pv|serial] <Domain>", "t:n:")
    kind = dict(opts).get("-t", "pv")
    if kind not in ("pv", "serial"):
        raise UsageError(f"console type must be 'pv' or 'serial', not '{kind}'")
    if kind == "serial":
        if d.hvm is None or (not d.hvm.serial and d.dtype.value == "pvh"):
            raise UsageError(f"domain {d.domid} has no serial console (PV guests use -t pv)")
        out.write(d.hvm.serial.decode("latin-1").replace("\r\n", "\n"))
        return 0
    out.write(d.console.decode("latin-1"))
    return 0


_RUNSTATE_CHAR = {Runstate.RUNSTATE_running: "r", Runstate.RUNSTATE_blocked: "b",
                  Runstate.RUNSTATE_runnable: "-", Runstate.RUNSTATE_offline: "-"}


def main_vcpulist(xl: Libxl, args: list[str], out: IO[str]) -> int:
    """xl vcpu-list [Domain...]"""
    _, rest = _opts(args, "", "xl vcpu-list [Domain...]")
    domains = [xl.lookup(a) for a in rest] if rest else sorted(
        xl.host.domains.values(), key=lambda d: d.domid)
    running = xl.host.running_vcpus()
    out.write(f"{'Name':<32} {'ID':>5} {'VCPU':>5} {'CPU':>5} {'State':>5} {'Time(s)':>9} "
              "Affinity (Hard / Soft)\n")
    for d in domains:
        for v in d.vcpus:
            if not v.online:
                cpu, state = "-", "--p"
            else:
                cpu = str(v.processor)
                r = "r" if (d.domid, v.vcpu_id) in running else "-"
                b = "b" if v.blocked else "-"
                p = "p" if d.paused else "-"
                state = r + b + p
            out.write(f"{d.name:<32} {d.domid:>5} {v.vcpu_id:>5} {cpu:>5} {state:>5} "
                      f"{v.cpu_time / 1e9:>9.1f} all / all\n")
    return 0


def main_info(xl: Libxl, args: list[str], out: IO[str]) -> int:
    host = xl.host
    total = host.mem.total_pages * PAGE_SIZE >> 20
    free = host.mem.free_pages * PAGE_SIZE >> 20
    rows = [
        ("host", "xenlab"),
        ("release", "emulated"),
        ("machine", "x86_64"),
        ("nr_cpus", len(host.pcpus)),
        ("max_cpu_id", len(host.pcpus) - 1),
        ("nr_nodes", 1),
        ("cores_per_socket", len(host.pcpus)),
        ("threads_per_core", 1),
        ("virt_caps", "pv hvm"),
        ("total_memory", total),
        ("free_memory", free),
        ("sharing_freed_memory", 0),
        ("sharing_used_memory", 0),
        ("outstanding_claims", 0),
        ("free_cpus", 0),
        ("xen_major", V.XEN_MAJOR),
        ("xen_minor", V.XEN_MINOR),
        ("xen_extra", V.XEN_EXTRAVERSION.decode()),
        ("xen_version", f"{V.XEN_MAJOR}.{V.XEN_MINOR}{V.XEN_EXTRAVERSION.decode()}"),
        ("xen_caps", V.XEN_CAPABILITIES.decode()),
        ("xen_scheduler", host.sched.opt_name),
        ("xen_pagesize", PAGE_SIZE),
        ("platform_params", "virt_start=0xffff800000000000"),
        ("xen_changeset", V.XEN_CHANGESET.decode()),
        ("xen_commandline", host.cmdline),
        ("cc_compiler", "unicorn CPU emulator (xenlab)"),
        ("xend_config_format", 4),
    ]
    for key, value in rows:
        out.write(f"{key:<23}: {value}\n")
    return 0


def main_dmesg(xl: Libxl, args: list[str], out: IO[str]) -> int:
    opts, _ = _opts(args, "c", "xl dmesg [-c]")
    out.write(xl.host.log.text())
    if ("-c", "") in opts:
        xl.host.log.clear()
    return 0


def main_top(xl: Libxl, args: list[str], out: IO[str]) -> int:
    """One snapshot of xentop's batch output (``xentop -b -i 1``)."""
    host = xl.host
    doms = sorted(host.domains.values(), key=lambda d: d.domid)
    running = host.running_vcpus()
    flags = [d.state_flags(running) for d in doms]
    counts = {k: sum(1 for f in flags if f[i] != "-")
              for i, k in enumerate(("running", "blocked", "paused", "shutdown", "crashed",
                                     "dying"))}
    total_k = host.mem.total_pages * 4
    free_k = host.mem.free_pages * 4
    secs = host.now() / 1e9
    out.write(f"xentop - {secs:.6f}s virtual   Xen {V.XEN_MAJOR}.{V.XEN_MINOR}"
              f"{V.XEN_EXTRAVERSION.decode()}\n")
    out.write(f"{len(doms)} domains: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + "\n")
    out.write(f"Mem: {total_k}k total, {total_k - free_k}k used, {free_k}k free    "
              f"CPUs: {len(host.pcpus)} @ 0MHz\n")
    out.write("      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS "
              "NETS NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID\n")
    elapsed = max(1, host.now())
    for d, f in zip(doms, flags, strict=False):
        mem_k = d.tot_pages * 4
        cpu_pct = 100.0 * d.cpu_time / elapsed
        maxmem = f"{d.max_pages * 4:>10}" if d.domid else "no limit"
        maxpct = f"{100.0 * d.max_pages * 4 / total_k:>9.1f}" if d.domid else "n/a"
        out.write(f"{d.name[:10]:>10} {f:>6} {int(d.cpu_time / 1e9):>10} {cpu_pct:>6.1f} "
                  f"{mem_k:>10} {100.0 * mem_k / total_k:>6.1f} {maxmem:>10} {maxpct:>9} "
                  f"{len(d.vcpus):>5} {0:>4} {0:>8} {0:>8} {0:>4} {0:>8} {0:>8} {0:>8} "
                  f"{0:>10} {0:>10} {0:>4}\n")
    return 0
