"""Write chapter 11 (Linux in a DomU): Debian's own kernel as a PV guest.

The kernel and busybox are fetched by ``make real-guests`` into a cache, never committed;
without them the chapter says so and its cells still run. What Linux prints depends on
the kernel Debian ships that week (its version, its exact hypercall counts), so the cells
that show it are tagged ``nbval-ignore-output``: nbval runs them and checks they do not
fail, not what they print.

    .venv/bin/python labs/_build/make_notebooks_c.py
"""

from __future__ import annotations

import sys

from exercise_cells import exercise_cells  # labs/_build/: nbgrader's three cells per exercise
from handson_cells import handson_cells  # labs/_build/: hands-on exercises (xenlab.handson)
from make_notebooks_b import code, md, write

IGNORE = "nbval-ignore-output"

HX112 = '''
answer = r"""
        lea     mmu_req(%rip), %rdi     # the request: struct mmu_update { ptr; val; }
        mov     %rsi, (%rdi)            # ptr: scratch's L1 entry (a machine address)
        shl     $12, %rcx
        or      $7, %rcx                # val: other's frame | PRESENT | RW | USER
        mov     %rcx, 8(%rdi)
        mov     $1, %esi                # count
        xor     %edx, %edx              # pdone: NULL
        mov     $DOMID_SELF, %r10d      # foreigndom: our own page tables
        HYPERCALL __HYPERVISOR_mmu_update
"""
'''


def chapter_11() -> list:
    return [
        md("""
# 11 · Linux in a DomU: the modified kernel, counted

**Learning goals**
- boot a kernel nobody here wrote, Debian's own `linux-image-amd64`, as a PV DomU;
- see what "a modified kernel" means in numbers: the hypercalls a booting Linux makes;
- follow one page-table update from the guest's request to Xen's checks, and make Xen
  refuse one.

Every guest so far was written for this course. This one is not: it is the kernel
Debian ships, built with `CONFIG_XEN_PV=y`, with a small initramfs of Debian's
`busybox-static`. Both are fetched with `apt-get download` (no root) into a cache by
`make real-guests`; nothing of them is in the repository. The boot takes 2.7 billion
instructions, some 25-30 s on a laptop, and Xen's trace records every hypercall of it.
"""),
        code("""
import os
from collections import Counter
from pathlib import Path

from xenlab.lab import Lab
from xenlab.views import check_l1e, explain_mmu_update, run_with_progress

CACHE = Path(os.environ.get("XENLAB_REAL_GUESTS") or "~/.cache/xenlab/real-guests").expanduser()
HAVE_LINUX = (CACHE / "linux-pv.cfg").is_file()
print("Debian's Linux is fetched:" if HAVE_LINUX else
      "Debian's Linux is not fetched here: run `make real-guests` and re-run the chapter.",
      CACHE)
""", IGNORE),
        md("""
## Boot it

`xl create` reads `linux-pv.cfg` (`kernel`, `ramdisk`, `cmdline`, 256 MiB). The domain
builder unpacks the xz bzImage, reads Linux's Xen ELF notes and lays out the guest as
`xl` does; then Xen runs it. The bar follows the instructions; the run stops at the
busybox prompt `/ # `.
"""),
        code("""
lab = Lab()
if HAVE_LINUX:
    lab.xl(f"create {CACHE / 'linux-pv.cfg'}")
    linux = lab.domain("linux-pv")
    run_with_progress(lab, 4_000_000_000, chunk=100_000_000,
                      until=lambda: b"/ # " in linux.console[-64:])
    boot = lab.console("linux-pv").splitlines()
    print(*[line for line in boot if "Xen" in line][:10], sep="\\n")
    print("...", *boot[-3:], sep="\\n")
""", IGNORE),
        md("""
The kernel saw it runs on Xen (`Hypervisor detected: Xen PV`), took its memory map and
its console from Xen, and found its devices through xenstore. `xl list` shows it as any
other DomU:
"""),
        code("""
if HAVE_LINUX:
    lab.xl("list")
""", IGNORE),
        md("""
## The modified kernel, in one table

Count the hypercalls of the boot by kind (the trace's counts are exact even where its
ring has let old records go):
"""),
        code("""
if HAVE_LINUX:
    counts = Counter()
    for (dom, kind, name), n in lab.trace.counts().items():
        if dom == linux.domid and kind.value == "hypercall":
            counts[name] += n
    print(f"{sum(counts.values()):,} hypercalls in "
          f"{linux.cpu_time / 1e9:.2f} s of the guest's CPU time")
    for name, n in counts.most_common(8):
        print(f"  {name:22} {n:8,}")
""", IGNORE),
        md("""
`mmu_update` leads by far. On bare metal Linux writes a page-table entry with one store
(`native_set_pte`); as a PV guest its page tables are **read-only** to it, and it asks
Xen to write each entry (`xen_set_pte` → `HYPERVISOR_mmu_update`). That is the
modification the seeds talk about, in one number. `mmuext_op` pins page tables and
switches address spaces (`MMUEXT_NEW_BASEPTR` on every process switch); `xen_version`
calls are how Linux makes Xen deliver pending events (`xen_force_evtchn_callback`).

Type at the prompt, as `xl console` would:
"""),
        code("""
if HAVE_LINUX:
    start = len(lab.console("linux-pv"))
    lab.console_input("linux-pv", "uname -sr; grep -c . /proc/interrupts; ls /sys/hypervisor\\n")
    lab.run(max_instructions=500_000_000, max_seconds=1)
    print(lab.console("linux-pv")[start:])
""", IGNORE),
        md("""
## One page-table update, as Xen sees it

Each `mmu_update` record keeps its first request: `ptr`, the **machine** address of one
page-table entry (its low two bits are the command), and `val`, the new entry (a machine
frame number and flag bits). Take the last one the shell's command caused and read it:
"""),
        code("""
if HAVE_LINUX:
    record = next(r for r in reversed(lab.trace.records) if r.dom == linux.domid
                  and r.name == "mmu_update" and "ptr" in r.args)
    print(explain_mmu_update(lab, record))
""", IGNORE),
        md("""
Before writing, Xen checked the entry (`mod_l1_entry` → `get_page_from_l1e` in
`xen/arch/x86/mm.c`): the frame it maps must belong to the domain, and a **writable**
mapping must not be one of the domain's page tables, or the guest could rewrite its own
page tables behind Xen's back and map anything. `check_l1e` runs those same checks on a
value of your own, as if Linux had asked, and changes nothing. Try three: the entry
Linux asked for, its own page table made writable, and a frame of Dom0's.
"""),
        code("""
if HAVE_LINUX:
    ptr, val = int(record.args["ptr"], 16), int(record.args["val"], 16)
    table = ptr >> 12                                  # the L1 table the entry is in
    dom0_frame = lab.host.mem.owner.index(0)            # any frame Dom0 owns
    RW_ENTRY = 0x67                                     # PRESENT|RW|USER|ACCESSED|DIRTY
    print("what Linux asked:       ", check_l1e(lab, linux.domid, val))
    print("its own L1, writable:   ", check_l1e(lab, linux.domid, table << 12 | RW_ENTRY))
    print("its own L1, read-only:  ", check_l1e(lab, linux.domid, table << 12 | 0x25))
    print("a frame of Dom0's:      ", check_l1e(lab, linux.domid, dom0_frame << 12 | RW_ENTRY))
""", IGNORE),
        md("""
> **Real Xen.** The PV MMU is `xen/arch/x86/mm.c`: `do_mmu_update`, `mod_l1_entry`,
> `get_page_from_l1e`, `get_page_type` (the type and reference counts), and
> `xen/arch/x86/pv/ro-page-fault.c` for a store straight into a page table (Xen emulates
> it and validates the entry: "writable page tables"). Linux's side is
> `arch/x86/xen/mmu_pv.c` (`xen_set_pte`, `xen_pgd_pin`). On a real host,
> `xentrace -e 0x0020f000` with `xenalyze` counts the same hypercalls.
>
> **What xenlab simplifies.** 64-bit PV only, and Xen's default 10 ms periodic timer is
> not armed (Linux 6.1 stops it and uses single-shot timers anyway). The config gives
> Linux one vCPU; with `vcpus = 2` it brings up the second itself (`VCPUOP_initialise`
> with a whole `vcpu_guest_context`, then `VCPUOP_up`), at some 40 s instead of 30.

## Check yourself
"""),
        md("""
**Exercise 11.1.** Replace the `...` with your answer and run the cell.
"""),
        *exercise_cells("ex111", 'exercise("11.1")', '"b"',
                        setup="from xenlab.exercises import exercise"),
        md("""
**Exercise 11.2 (hands-on).** Now be the PV kernel. This one does not need Debian's Linux:
it is a small 64-bit PV kernel built from your lines. It has two pages, `scratch` and
`other`, each holding a different marker. Before your code runs it has walked its own
page tables (as pv-bench does: each table's frame, through the read-only M2P table, to
where the kernel sees it) and left you **RSI** = the machine address of the L1 entry that
maps `scratch`, **RDX** = that entry's value now, and **RCX** = the machine frame number
of `other`. Write the `mmu_update` hypercall that makes `scratch` map `other`'s frame:
fill `mmu_req` (a `struct mmu_update { uint64_t ptr, val; }` in the kernel's data), then
`HYPERCALL __HYPERVISOR_mmu_update` with RDI = the request, RSI = the count, RDX = NULL,
R10 = `DOMID_SELF`. After your code, the kernel reads `scratch` and says what it saw. Try
what Xen refuses, too: `ptr` as a virtual address, a frame that is not yours.
"""),
        *handson_cells("hx112", 'HandsOn("11.2: make scratch map other\'s frame with one '
                       'mmu_update", check_pte_update)', HX112),
        md("""
## Summary

- Debian's own PV kernel runs on the emulated Xen unchanged, to a shell prompt.
- Its boot is over 100,000 hypercalls; the most frequent is `mmu_update`: a PV kernel
  cannot write its page tables, it asks Xen, which validates every entry.
- Xen refuses an entry that maps a frame the guest does not own, or makes one of its
  page tables writable: that check is what keeps DomUs apart.
"""),
    ]


def main() -> int:
    path = write("11-linux-domu", chapter_11())
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
