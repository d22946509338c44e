"""xenlab's Python ABI (xenlab/public) against the generated include file and Xen's C headers.

(a) images/include/xen-abi.inc is exactly what gen_headers generates;
(b) a C program compiled against /usr/include/xen (Debian libxen-dev) prints
    every constant, struct size and field offset xenlab declares; they must
    equal the Python values. Names the C headers do not define are dropped
    (and printed); names of the core set must exist and match.
"""

from __future__ import annotations

import ctypes
import enum
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from xenlab.public import (
    console,
    elfnote,
    errno,
    event_channel,
    gen_headers,
    grant_table,
    memory,
    sched,
    vcpu,
    version,
    xen,
)

ROOT = Path(__file__).resolve().parent.parent
XEN_H = Path("/usr/include/xen/xen.h")


def test_committed_asm_include_is_generated() -> None:
    committed = (ROOT / "images" / "include" / "xen-abi.inc").read_text()
    assert committed == gen_headers.generate_asm_include(), (
        "images/include/xen-abi.inc is stale: run `python -m xenlab.public.gen_headers`")


# ---------------------------------------------------------------- the C comparison
#: (C prefix, enum, core?) -- core enums must be fully defined by the C headers.
ENUMS: tuple[tuple[str, type[enum.IntEnum], bool], ...] = (
    ("__HYPERVISOR_", xen.Hypercall, True),
    ("", sched.SchedOp, True),
    ("", sched.ShutdownReason, True),
    ("", version.XenVer, True),
    ("", event_channel.EvtchnOp, True),
    ("", grant_table.GnttabOp, True),
    ("", grant_table.GntSt, True),
    ("", memory.MemoryOp, True),
    ("", vcpu.VcpuOp, True),
    ("", xen.Virq, True),
    ("", elfnote.ElfNote, True),
    ("XEN_", errno.Errno, True),
    ("", console.ConsoleIO, False),
    ("", event_channel.EvtchnStatusKind, False),
    ("", vcpu.Runstate, False),
)

SCALARS: dict[str, int] = {
    "DOMID_FIRST_RESERVED": xen.DOMID_FIRST_RESERVED, "DOMID_SELF": xen.DOMID_SELF,
    "DOMID_IO": xen.DOMID_IO, "DOMID_XEN": xen.DOMID_XEN, "DOMID_COW": xen.DOMID_COW,
    "DOMID_INVALID": xen.DOMID_INVALID, "DOMID_IDLE": xen.DOMID_IDLE,
    "NR_VIRQS": xen.NR_VIRQS, "XEN_LEGACY_MAX_VCPUS": xen.MAX_VIRT_CPUS,
    "FLAT_RING3_CS32": xen.FLAT_RING3_CS32, "FLAT_RING3_CS64": xen.FLAT_RING3_CS64,
    "FLAT_RING3_DS64": xen.FLAT_RING3_DS64, "FLAT_RING3_SS64": xen.FLAT_RING3_SS64,
    "FLAT_KERNEL_CS": xen.FLAT_KERNEL_CS, "FLAT_KERNEL_SS": xen.FLAT_KERNEL_SS,
    "__HYPERVISOR_VIRT_START": xen.HYPERVISOR_VIRT_START,
    "__HYPERVISOR_VIRT_END": xen.HYPERVISOR_VIRT_END,
    "SIF_PRIVILEGED": xen.SIF_PRIVILEGED, "SIF_INITDOMAIN": xen.SIF_INITDOMAIN,
    "SIF_MULTIBOOT_MOD": xen.SIF_MULTIBOOT_MOD, "SIF_MOD_START_PFN": xen.SIF_MOD_START_PFN,
    "SIF_VIRT_P2M_4TOOLS": xen.SIF_VIRT_P2M_4TOOLS, "SIF_PM_MASK": xen.SIF_PM_MASK,
    "EVTCHN_2L_NR_CHANNELS": event_channel.EVTCHN_2L_NR_CHANNELS,
    "MEMOP_EXTENT_SHIFT": memory.MEMOP_EXTENT_SHIFT, "MEMOP_CMD_MASK": memory.MEMOP_CMD_MASK,
    "GTF_invalid": grant_table.GTF_invalid, "GTF_permit_access": grant_table.GTF_permit_access,
    "GTF_accept_transfer": grant_table.GTF_accept_transfer,
    "GTF_transitive": grant_table.GTF_transitive, "GTF_type_mask": grant_table.GTF_type_mask,
    "GTF_readonly": grant_table.GTF_readonly, "GTF_reading": grant_table.GTF_reading,
    "GTF_writing": grant_table.GTF_writing,
    "GNTTAB_NR_RESERVED_ENTRIES": grant_table.GNTTAB_NR_RESERVED_ENTRIES,
    "GNTTAB_RESERVED_CONSOLE": grant_table.GNTTAB_RESERVED_CONSOLE,
    "GNTTAB_RESERVED_XENSTORE": grant_table.GNTTAB_RESERVED_XENSTORE,
    "sizeof(xen_extraversion_t)": version.XEN_EXTRAVERSION_LEN,
    "sizeof(xen_capabilities_info_t)": version.XEN_CAPABILITIES_INFO_LEN,
    "sizeof(xen_changeset_info_t)": version.XEN_CHANGESET_INFO_LEN,
    "sizeof(xen_commandline_t)": version.XEN_COMMANDLINE_LEN,
    "sizeof(xen_compile_info_t)": version.XEN_COMPILE_INFO_SIZE,
}

#: (C struct name, ctypes class, core?)
STRUCTS: tuple[tuple[str, type[ctypes.Structure], bool], ...] = (
    ("struct start_info", xen.StartInfo, True),
    ("struct shared_info", xen.SharedInfo, True),
    ("struct vcpu_info", xen.VcpuInfo, True),
    ("struct vcpu_time_info", xen.VcpuTimeInfo, True),
    ("struct arch_vcpu_info", xen.ArchVcpuInfo, True),
    ("struct arch_shared_info", xen.ArchSharedInfo, True),
    ("struct sched_shutdown", sched.SchedShutdown, False),
    ("struct sched_poll", sched.SchedPoll, False),
    ("struct evtchn_alloc_unbound", event_channel.EvtchnAllocUnbound, False),
    ("struct evtchn_bind_interdomain", event_channel.EvtchnBindInterdomain, False),
    ("struct evtchn_bind_virq", event_channel.EvtchnBindVirq, False),
    ("struct evtchn_bind_ipi", event_channel.EvtchnBindIpi, False),
    ("struct evtchn_close", event_channel.EvtchnPort, False),
    ("struct evtchn_send", event_channel.EvtchnPort, False),
    ("struct evtchn_unmask", event_channel.EvtchnPort, False),
    ("struct evtchn_status", event_channel.EvtchnStatus, False),
    ("struct xen_memory_reservation", memory.XenMemoryReservation, False),
    ("struct gnttab_query_size", grant_table.GnttabQuerySize, False),
    ("struct grant_entry_v1", grant_table.GrantEntryV1, False),
    ("struct vcpu_runstate_info", vcpu.VcpuRunstateInfo, False),
)

#: errno.h defines these only #ifdef __XEN__: never returned to a guest.
XEN_INTERNAL_ERRNO = {"EINTR", "ERESTART"}

CORE_STRUCTS = {"struct start_info", "struct shared_info", "struct vcpu_info"}


def _fields(cls: type, prefix: str = "", base: int = 0) -> list[tuple[str, int]]:
    """Every (dotted field, offset) of a ctypes struct/union, nested structs included."""
    out = []
    for name, ctype in cls._fields_:
        off = base + getattr(cls, name).offset
        out.append((prefix + name, off))
        if isinstance(ctype, type) and issubclass(ctype, (ctypes.Structure, ctypes.Union)):
            out += _fields(ctype, f"{prefix}{name}.", off)
    return out


def expected_values() -> dict[str, tuple[int, bool]]:
    """key -> (python value, core?) for every line the C program prints."""
    exp: dict[str, tuple[int, bool]] = {}
    for prefix, enum_cls, core in ENUMS:
        for m in enum_cls:
            exp[prefix + m.name] = (int(m), core)
    for m in errno.Errno:  # guest-visible enum xen_errno: all but Xen-internal ones
        if m.name not in XEN_INTERNAL_ERRNO:
            exp[f"public XEN_{m.name}"] = (int(m), True)
    for name, value in SCALARS.items():
        exp[name] = (value, False)
    for cname, cls, core in STRUCTS:
        exp[f"sizeof({cname})"] = (ctypes.sizeof(cls), core)
        for field, off in _fields(cls):
            exp[f"offsetof({cname}, {field})"] = (off, core or cname in CORE_STRUCTS)
    return exp


HEADER = """\
#define __XEN_TOOLS__ 1
#define __XEN_INTERFACE_VERSION__ 0x00040e00
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/sched.h>
#include <xen/version.h>
#include <xen/memory.h>
#include <xen/vcpu.h>
#include <xen/arch-x86/xen-mca.h>
#include <xen/event_channel.h>
#include <xen/grant_table.h>
#include <xen/elfnote.h>
#include <xen/errno.h>
/* errno.h again, through its XEN_ERRNO() hook and as Xen itself sees it
 * (__XEN__), so the two internal-only values EINTR and ERESTART exist too. */
#define __XEN__
#define XEN_ERRNO(name, value) XENLAB_ERRNO_##name = value,
enum xenlab_all_errno {
#include <xen/errno.h>
};
#undef __XEN__
int main(void) {
"""


def _c_expr(key: str) -> str:
    """The C expression for a key: the key itself, except errno values (see HEADER)."""
    if key.startswith("public "):
        return key.split(" ", 1)[1]
    if key.startswith("XEN_E") and key[4:] in errno.Errno.__members__:
        return f"XENLAB_ERRNO_{key[4:]}"
    return key


def _c_line(key: str) -> str:
    # unsigned long long keeps 0xffff800000000000 exact; the Python side masks to 64 bits
    return f'    printf("%s %llu\\n", "{key}", (unsigned long long)({_c_expr(key)}));'


def _compile_and_run(tmp: Path, keys: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Compile; drop lines gcc rejects (undeclared names, missing members) and retry."""
    dropped: dict[str, str] = {}
    keys = list(keys)
    for _attempt in range(20):
        src = HEADER + "\n".join(_c_line(k) for k in keys) + "\n    return 0;\n}\n"
        first_line = HEADER.count("\n") + 1
        (tmp / "abi.c").write_text(src)
        cc = subprocess.run(["gcc", "-std=gnu11", "-O0", "-o", str(tmp / "abi"),
                             str(tmp / "abi.c")], capture_output=True, text=True, cwd=tmp)
        if cc.returncode == 0:
            run = subprocess.run([str(tmp / "abi")], capture_output=True, text=True, check=True)
            values = {}
            for line in run.stdout.splitlines():
                key, _, val = line.rpartition(" ")
                values[key] = int(val)
            return values, dropped
        bad_lines: dict[int, str] = {}
        for m in re.finditer(r"abi\.c:(\d+):\d+: error: (.*)", cc.stderr):
            bad_lines.setdefault(int(m.group(1)), m.group(2))
        bad = {ln - first_line: why for ln, why in bad_lines.items()
               if 0 <= ln - first_line < len(keys)}
        if not bad:
            raise AssertionError(f"C program does not compile:\n{cc.stderr[:4000]}")
        for idx in sorted(bad, reverse=True):
            dropped[keys[idx]] = bad[idx]
            del keys[idx]
    raise AssertionError("gave up compiling the ABI program")


@pytest.mark.skipif(shutil.which("gcc") is None or not XEN_H.exists(),
                    reason="needs gcc and Xen's public headers (libxen-dev)")
def test_python_abi_matches_xen_c_headers(tmp_path: Path) -> None:
    exp = expected_values()
    got, dropped = _compile_and_run(tmp_path, list(exp))
    if dropped:
        print("names the C headers do not define (not compared):")
        for key, why in sorted(dropped.items()):
            print(f"  {key}: {why}")
    missing_core = sorted(k for k in dropped if exp[k][1])
    assert not missing_core, f"core names the C headers do not define: {missing_core}"
    mismatches = {k: (v, got[k] & (2**64 - 1)) for k, (v, _core) in exp.items()
                  if k in got and (v & (2**64 - 1)) != got[k]}
    assert not mismatches, f"python vs C: {mismatches}"
    assert len(got) + len(dropped) == len(exp)
    # the core of the ABI really was compared
    for name in ("__HYPERVISOR_hypfs_op", "SCHEDOP_shutdown", "XEN_EFAULT", "VIRQ_TIMER",
                 "offsetof(struct start_info, cmd_line)", "sizeof(struct shared_info)",
                 "offsetof(struct shared_info, arch.max_pfn)", "GNTST_eagain",
                 "XENMEM_current_reservation", "VCPUOP_is_up", "XEN_ELFNOTE_PHYS32_ENTRY"):
        assert name in got, name
