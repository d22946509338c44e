"""Debian's own Linux kernel as a PV guest (issue 13 part 6): how far it gets today.

The kernel (linux-image-amd64) and busybox-static are fetched at test time by
``make real-guests`` (tools/fetch_real_guests.py) into ``~/.cache/xenlab/real-guests``
or ``$XENLAB_REAL_GUESTS``; nothing is committed. Without them the test skips.

What the test pins down is the furthest point Linux reaches on xenlab *today*, so
that whoever moves it further sees this test fail and moves the assertion:
the builder loads the xz bzImage as xl does (INIT_P2M, MOD_START_PFN, the gunzipped
initramfs as the module, the cmdline) and Linux runs its first instructions
(``startup_xen`` in arch/x86/xen/xen-head.S), where its ``wrmsr`` of MSR_GS_BASE
(the boot CPU's per-CPU base) is a #GP that Xen's emulate_privileged_op would
emulate (xen/arch/x86/pv/emul-priv-op.c, write_msr: MSR_GS_BASE) and xenlab does not.

Real Xen: tools/libs/guest/xg_dom_x86.c; Linux arch/x86/xen/xen-head.S (startup_xen)
"""

from __future__ import annotations

import ctypes
import os
import struct
from pathlib import Path

import pytest

from xenlab.lab import Lab
from xenlab.public.xen import SIF_MOD_START_PFN, StartInfo
from xenlab.tools.libs.guest.xg_dom_elfloader import load_elf_kernel
from xenlab.xen.guest_access import copy_from_guest

CACHE = Path(os.environ.get("XENLAB_REAL_GUESTS") or "~/.cache/xenlab/real-guests").expanduser()
CFG = CACHE / "linux-pv.cfg"
P2M_BASE = 0x80_0000_0000  # Linux's INIT_P2M note: 512 GiB


@pytest.mark.slow
@pytest.mark.skipif(not (CFG.is_file() and (CACHE / "vmlinuz").is_file()
                         and (CACHE / "initrd.gz").is_file()),
                    reason=f"no real guests in {CACHE}: run `make real-guests` (apt-get "
                           "download of linux-image-amd64 and busybox-static, no root)")
def test_debians_linux_is_loaded_as_xl_does_and_runs_to_startup_xens_wrmsr() -> None:
    lab = Lab(memory_mib=1024, dom0_mem_mib=64)
    lab.xl(f"create -p {CFG}")
    d = lab.domain("linux-pv")
    host = lab.host
    v = d.vcpus[0]
    si_va = v.cpu.reg("rsi")
    cr3 = v.cpu.reg("cr3")
    si = StartInfo.from_buffer_copy(copy_from_guest(host.mem, d, cr3, si_va,
                                                    ctypes.sizeof(StartInfo)))
    assert si.magic == b"xen-3.0-x86_64" and si.nr_pages == 256 * 256
    assert si.cmd_line == b"console=hvc0 earlyprintk=xen"
    # INIT_P2M: the P2M list is mapped at 512 GiB, with its own page tables
    assert si.mfn_list == P2M_BASE and si.nr_p2m_frames > 128
    head = copy_from_guest(host.mem, d, cr3, P2M_BASE, 16)
    assert struct.unpack("<2Q", head) == tuple(d.p2m[:2])
    # MOD_START_PFN: the initramfs is a pfn outside the initial mappings, gunzipped
    assert si.flags & SIF_MOD_START_PFN and si.mod_len % 4096 == 0
    assert host.mem.read(d.maddr(si.mod_start), 6) == b"070701"
    entry = load_elf_kernel(CACHE / "vmlinuz", 256 << 20).entry  # XEN_ELFNOTE_ENTRY

    lab.xl("unpause linux-pv")
    lab.run(max_instructions=2_000_000)
    # today: startup_xen's fourth instruction, wrmsr to MSR_GS_BASE (0xc0000101)
    assert d.is_crashed
    assert d.crash_reason.startswith("Unhandled #GP general protection [#13] at rip ")
    assert "(wrmsr: a privileged instruction in a PV guest)" in d.crash_reason
    rip = int(d.crash_reason.split("at rip ")[1].split()[0], 16)
    assert entry < rip < entry + 32
    host.check_invariants()
