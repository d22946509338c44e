"""Generate the notebooks of chapters 01-05 (labs/01-why-virtualize ... labs/05-split-drivers).

    .venv/bin/python labs/_build/make_notebooks_a.py      # writes the five .ipynb (no outputs)
    make notebooks                                       # executes them and stores the outputs

The exercises' right answers are computed here (from ``seeded(2026)`` problems or from a
short run of the same guests) and written into the exercise cells as literals, so the
stored notebooks pass nbval and a student can change the literal to try.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from exercise_cells import exercise_cells  # labs/_build/: nbgrader's three cells per exercise
from handson_cells import handson_cells  # labs/_build/: hands-on exercises (xenlab.handson)

LABS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(LABS.parent))

from xenlab.exercises import seeded  # noqa: E402
from xenlab.public.xen import Hypercall  # noqa: E402

SEED = 2026


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


def write(folder: str, cells: list) -> None:
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"},
    })
    path = LABS / folder / f"{folder}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    print("wrote", path.relative_to(LABS.parent))


TRY = ("Replace the `...` with your answer and run the cell: the check says whether it is "
       "right, with a hint if not.")

# Shared by the chapters that need their own config files: a scratch folder (never printed)
# and a helper that writes a config there and runs `xl create` on it from that folder, so
# xl prints only the file's name.
SCRATCH = '''
import contextlib
import os
import tempfile

work = tempfile.TemporaryDirectory()          # a scratch folder for configs (and disk copies)

def create(name, text, options=""):
    """Write NAME.cfg into the scratch folder and `xl create` it from there."""
    with open(os.path.join(work.name, name + ".cfg"), "w") as f:
        f.write(text)
    with contextlib.chdir(work.name):
        lab.xl(f"create {options} {name}.cfg".replace("  ", " "))
'''


# ============================================================================ chapter 01
def chapter01() -> None:
    rng = seeded(SEED)
    n_servers = rng.choice([24, 30, 36, 40, 48, 60])
    util = rng.choice([5, 8, 10, 12, 15])
    target = rng.choice([60, 70, 75, 80])
    hosts = math.ceil(n_servers * util / target)
    cells = [
        md("""
# 01 · Why virtualize?

**Learning goals**
- see several operating systems share **one physical machine** (server consolidation),
  and account for the memory they use;
- compute what consolidation saves;
- manage every guest **from one place**: create, pause, unpause, destroy;
- use throw-away guests as separate environments, and try risky software in a guest
  that may crash without harming anyone.
"""),
        md("""
## One machine, many servers

A typical data centre used to run one service per physical server: a web server here,
mail there, a database on a third machine, each mostly idle. Virtualization runs each of
them as a **guest** (a *domain*, in Xen's words) on one host. We boot an emulated host
with 1 GiB of RAM and two CPUs:
"""),
        code("""
%matplotlib inline
from xenlab.exercises import exercise, seeded
from xenlab.lab import Lab

lab = Lab()                      # Xen boots and builds Dom0
lab.xl("list")
"""),
        md("""
Before creating anything, how much memory is free? `xl info` is the host's identity card:
"""),
        code("""
def info(field):
    \"\"\"One field of `xl info`.\"\"\"
    for line in lab.xl_output("info").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == field:
            return value.strip()

print("total_memory:", info("total_memory"), "MiB   free_memory:", info("free_memory"), "MiB")
free_before = int(info("free_memory"))
"""),
        md("""
Now four "servers", each a small paravirtualized guest with 64 MiB of RAM. They all come
from the same template; only the name and the kernel change (the kernels are the ones in
`images/`).
"""),
        code(SCRATCH + '''
TEMPLATE = """name = "{name}"
type = "pv"
kernel = "{kernel}"
memory = 64
on_poweroff = "preserve"
on_crash = "preserve"
"""
servers = {"web": "pv-hello", "mail": "pv-pubhdr", "db": "pv-spin", "files": "pv-spin"}
for name, image in servers.items():
    create(name, TEMPLATE.format(name=name, kernel=Lab.image(f"{image}/{image}.elf")))
'''),
        code("""
lab.xl("list")
print("free_memory:", info("free_memory"), "MiB (was", free_before, "MiB)")
"""),
        md("""
Four guests now share one machine. Their memory is not an estimate: Xen owns the
machine's frames (4 KiB pages) and records, for every frame, which domain owns it. The
frames of all domains, plus Xen's own, plus the free ones make exactly the machine:
"""),
        code("""
mem = lab.host.mem
for d in sorted(lab.host.domains.values(), key=lambda d: d.domid):
    print(f"{d.name:10} {mem.pages_owned_by(d.domid):7} frames = {d.tot_pages * 4 // 1024:4} MiB")
owned = sum(d.tot_pages for d in lab.host.domains.values())
xen_own = mem.total_pages - owned - mem.free_pages
print(f"{'Xen':10} {xen_own:7} frames")
print(f"{'free':10} {mem.free_pages:7} frames")
print(f"{'total':10} {mem.total_pages:7} frames = {mem.total_pages * 4 // 1024} MiB")
lab.host.check_invariants()      # raises if a frame were owned twice or lost
"""),
        md("""
Let them run. Each prints to its own console; none of them knows the others exist.
"""),
        code("""
lab.run()
lab.xl("list")
for name in servers:
    print(f"{name:6}|", lab.console(name).splitlines()[0])
"""),
        md("""
## What consolidation saves

The servers of the story above are busy only a small fraction of the time. If each
physical server is on average `util` % busy and we are willing to load a host up to
`target` %, the work of `n` servers fits on `ceil(n * util / target)` hosts (assuming
hosts as powerful as the old servers, and enough memory for the guests):
"""),
        code("""
import math

def hosts_needed(n, util, target):
    return math.ceil(n * util / target)

n, util, target = 20, 10, 70                 # 20 servers, 10 % busy, load hosts to 70 %
h = hosts_needed(n, util, target)
watts, price_kwh = 400, 0.25                 # per server, and EUR per kWh
saved_kwh = (n - h) * watts * 24 * 365 / 1000
print(f"{n} servers -> {h} hosts: {n - h} fewer machines,"
      f" {saved_kwh:,.0f} kWh and {saved_kwh * price_kwh:,.0f} EUR of electricity a year")
"""),
        md("""
Fewer machines also means less floor space, cooling, cabling and spare parts. The
price: the host becomes a single point of failure, and the guests compete for its CPUs
(chapter 02 shows how Xen shares them).

## Administration from one place

Every guest is managed from **Dom0** with `xl`, whatever operating system it runs. A
fresh guest can be paused (it keeps its memory but gets no CPU), resumed and destroyed:
"""),
        code("""
lab.xl("destroy web")
create("dev", TEMPLATE.format(name="dev", kernel=Lab.image("pv-spin/pv-spin.elf")))
lab.xl("pause dev")
lab.xl("list dev")
lab.xl("unpause dev")
lab.xl("list dev")
"""),
        md("""
## A development environment in (virtual) milliseconds

A developer who needs a clean system does not reboot their machine: they create a
guest, use it, and throw it away. How long did `dev` take, from unpause to power-off?
xenlab counts *virtual* time (nanoseconds of emulated CPU), the same on every run:
"""),
        code("""
t0 = lab.host.now()
lab.run()
print(f"dev ran for {(lab.host.now() - t0) / 1e6:.1f} ms of virtual time and powered off")
lab.xl("destroy dev")
lab.xl("list")
"""),
        md("""
## Experiments that may crash

`pv-crash` is a broken kernel: it executes `hlt`, an instruction a guest may not use.
We start it next to a healthy guest:
"""),
        code("""
lab.xl("create ../../images/pv-crash.cfg")
lab.xl("create ../../images/pv-hello.cfg")
lab.run()
lab.xl("list pv-crash pv-hello")
"""),
        code("""
for line in lab.xl_output("dmesg").splitlines():
    if "d" + str(lab.domain("pv-crash").domid) + "v0" in line or "domain_crash" in line:
        print(line)
lab.host.check_invariants()      # the host is intact
"""),
        md("""
`pv-crash` is in state `c` (crashed), `pv-hello` ran to its end (`s`), and so did every
other guest: the fault stayed inside one domain. Trying new software in a guest risks
only that guest.

> **Real Xen.** The same session on a real host is `xl create web.cfg` … `xl list`,
> `xl info` (fields `total_memory`, `free_memory`), `xl pause`/`xl unpause`/`xl destroy`,
> and `xl dmesg` for the crash report. Guest configs live in `/etc/xen/*.cfg`
> (`man xl.cfg`); the frame ownership you counted is Xen's `struct page_info` table
> (`xen/arch/x86/include/asm/mm.h`, `page_get_owner()`; before Xen 4.17 it was
> `xen/include/asm-x86/mm.h`).
"""),
        md("## Check yourself"),
        md(f"""
**Exercise 1 (seeded).** A company has {n_servers} physical servers, each on average
{util} % busy. How many hosts does it need if it loads each host up to {target} %?
(Generated from `seeded({SEED})`: change the seed to get another problem, and use
`hosts_needed` or a pencil.) {TRY}
"""),
        *exercise_cells("ex1", f'exercise("1.1", seed={SEED})', str(hosts)),
        md(f"""
**Exercise 2.** By how many MiB did `free_memory` in `xl info` drop when the four
64 MiB servers were created? (Compare the two `xl info` lines above.) {TRY}
"""),
        *exercise_cells("ex2", 'exercise("1.2")', "256"),
        md(f"""
**Exercise 3.** {TRY}
"""),
        *exercise_cells("ex3", 'exercise("1.3")', '"c"'),
        md("""
## What you saw

- Four guests shared one host; `xl list` and `xl info` account for every MiB, and Xen's
  frame table gives each frame exactly one owner.
- Consolidating lightly loaded servers saves machines and energy: `ceil(n·util/target)`.
- One administrator, one tool (`xl` in Dom0): create, pause, unpause, destroy.
- A guest is created, used and destroyed in milliseconds of virtual time: a clean
  environment without rebooting anything.
- A crashing guest (`pv-crash`) harmed no one else.

Next: **02 · The hypervisor**, the software that makes this possible.
"""),
    ]
    write("01-why-virtualize", cells)


HX24 = '''
answer = """name = "heavy"
type = "pv"
kernel = "pv-spin.elf"
memory = 16
weight = 512
on_poweroff = "preserve"
"""
'''


# ============================================================================ chapter 02
def chapter02() -> None:
    rng = seeded(SEED)
    wa = rng.choice([128, 256, 384, 512, 768])
    wb = rng.choice([128, 256, 512, 1024])
    share = round(100 * wa / (wa + wb))
    cells = [
        md("""
# 02 · The hypervisor

**Learning goals**
- know where Xen comes from;
- see the hypervisor start **before any operating system** and take over the machine;
- see how it **controls the resources**: every memory frame has an owner, and a
  scheduler shares the CPUs by weight;
- understand why Xen alone cannot run an operating system: it has **no device drivers**.
"""),
        md("""
## A little history

Xen was born at the **University of Cambridge** Computer Laboratory, in the XenoServers
research project. Its first public release came in **2003**, together with the paper
*Xen and the Art of Virtualization* (SOSP 2003). The team founded the company XenSource
to support it, and **Citrix bought XenSource in 2007**. Xen is free software (GPLv2);
today it is a project of the Linux Foundation and runs large public clouds.

Xen is a *type 1* (bare-metal) hypervisor: it runs directly on the hardware, not as a
program inside another operating system.

## Started by the boot loader

On a real machine the boot loader (GRUB) loads `xen.gz` instead of a Linux kernel,
and hands it the machine. Xen's first messages, read back with `xl dmesg`:
"""),
        code("""
%matplotlib inline
from xenlab.exercises import exercise, seeded
from xenlab.lab import Lab

lab = Lab()
boot = lab.xl_output("dmesg").splitlines()
for line in boot:
    if any(key in line for key in ("Bootloader", "Command line", "e820", "usable", "reserved",
                                   "System RAM", "scheduler", "Brought up", "Building")):
        print(line)
"""),
        md("""
Xen reads the firmware's **RAM map** (the e820 table: which physical addresses are
usable RAM), initialises its heap, picks a **scheduler** (`sched=credit` on its command
line), brings up the CPUs and only then builds the first guest, Dom0. From now on every
operating system on the machine sees the hardware *through* Xen: `xl info` reports the
machine as Xen presents it.
"""),
        code("""
for line in lab.xl_output("info").splitlines():
    if line.split(":")[0].strip() in ("nr_cpus", "total_memory", "free_memory", "xen_version",
                                       "xen_scheduler", "xen_commandline"):
        print(line)
"""),
        md("""
## Xen controls the memory

Xen keeps a table with one entry per machine frame (4 KiB): free, owned by Xen, or owned
by exactly one domain. A guest can touch only the frames it owns (or those another
domain explicitly *grants* it, chapter 05). Let us create two guests and count:
"""),
        code("""
from xenlab.public.xen import DOMID_XEN

lab.xl("create ../../images/pv-hello.cfg")
lab.xl("create ../../images/pv-spin.cfg")
mem = lab.host.mem
for d in sorted(lab.host.domains.values(), key=lambda d: d.domid):
    print(f"d{d.domid} {d.name:10} owns {mem.pages_owned_by(d.domid):6} frames")
print(f"Xen            owns {mem.pages_owned_by(DOMID_XEN):6} frames")
print(f"free                {mem.free_pages:6} frames   (of {mem.total_pages})")
lab.host.check_invariants()
print("invariants hold: every frame is free or has exactly one owner")
"""),
        md("""
## Xen shares the CPUs: the credit scheduler

Each domain has a **weight** (default 256). The credit scheduler hands out CPU time in
proportion to the weights of the domains that want to run. We make a host with **one**
CPU and two copies of `pv-spin` (a guest that computes hard, yields and sleeps), one with
twice the weight of the other:
"""),
        code(SCRATCH.replace("lab.xl(", "one_cpu.xl(") + '''
one_cpu = Lab(nr_cpus=1)
SPIN = """name = "{name}"
type = "pv"
kernel = "%s"
memory = 16
weight = {weight}
on_poweroff = "preserve"
""" % Lab.image("pv-spin/pv-spin.elf")
create("heavy", SPIN.format(name="heavy", weight=512))
create("light", SPIN.format(name="light", weight=256))
'''),
        code("""
one_cpu.run(max_seconds=0.07)             # 70 ms of virtual time, while both want the CPU
for name in ("heavy", "light"):
    d = one_cpu.domain(name)
    print(f"{name:6} weight {d.weight:4}: {d.cpu_time / 1e6:5.1f} ms of CPU")
"""),
        md("""
For the first tens of milliseconds they take turns (credits are shared out only every
30 ms), then the accounting favours `heavy`: after 70 ms it has had nearly twice the CPU
of `light`. Once `heavy` has
finished its work, `light` gets the CPU alone and catches up; in the end both did the
same work. The swimlanes show who ran when (one lane per vCPU; a mark per trace record):
"""),
        code("""
from xenlab.views import swimlanes

one_cpu.run()
one_cpu.xl("list")
swimlanes(one_cpu.trace, kinds=["hypercall", "sched"])
"""),
        md("""
## No device drivers

Xen manages CPUs, memory and interrupts, and nothing else: it has **no drivers** for
disks, network cards or screens. Those run in **Dom0**, the first guest Xen builds, which
also hosts the management tools (`xl`) and the daemons that serve the other guests:
"""),
        code("""
lab.xl("list 0")
print([line for line in boot if "Dom0 kernel" in line][0])
from xenlab.views import build_topology

graph = build_topology(lab.host)
print("Dom0's services now:", [n for n, a in graph.nodes(data=True) if a["kind"] == "service"])
"""),
        md("""
That is why the hypervisor cannot run an operating system on its own: without Dom0 there
would be no disk to boot from, no network and no tool to create a guest.

> **Real Xen.** GRUB's `multiboot2 /boot/xen.gz dom0_mem=…` entry (from
> `/etc/grub.d/20_linux_xen`) starts Xen, then `module2 /boot/vmlinuz…` is Dom0's
> kernel. `xl dmesg` shows the boot log (`xen/arch/x86/setup.c`, `__start_xen`);
> weights are set with `xl sched-credit -d DOMAIN -w 512` (policy in
> `xen/common/sched/credit.c`, `csched_acct`); the frame table is `frame_table[]` of
> `struct page_info` (`xen/arch/x86/mm.c`).
"""),
        md("## Check yourself"),
        md(f"""
**Exercise 1 (seeded).** Two domains spin on one CPU, with the weights printed below.
What share of the CPU (percent, rounded) does domain A get while both want to run?
{TRY}
"""),
        *exercise_cells("ex1", f'exercise("2.1", seed={SEED})', str(share)),
        md(f"""
**Exercise 2.** Dom0 has 256 MiB. How many 4 KiB frames does Xen's frame table list as
owned by domain 0? {TRY}
"""),
        *exercise_cells("ex2", 'exercise("2.2")', "65536"),
        md(f"""
**Exercise 3.** {TRY}
"""),
        *exercise_cells("ex3", 'exercise("2.3")', '"b"'),
        md("""
**Exercise 4 (hands-on).** Now set the weights yourself. Two guests that spin forever
(the `pv-spin` kernel) will share **one** CPU. `light`'s config is printed below, weight
256. Write the config of the second guest, `heavy` (a string, as in a `.cfg` file: the
kernel file `pv-spin.elf`, the name `heavy`, and a `weight`), so that `heavy` gets **at
least 60 %** of the CPU while both run. The check creates both guests on a fresh
one-CPU host, runs them for 70 ms of virtual time and measures each one's CPU time.
"""),
        *handson_cells("hx24", 'HandsOn("2.4: heavy\'s config: at least 60 % of one CPU '
                       'against light (weight 256)", check_credit_share)', HX24,
                       setup="print(LIGHT_CFG)"),
        md("""
## What you saw

- Xen (Cambridge, 2003; Citrix since 2007) is started by the boot loader and owns the
  machine before any operating system runs: RAM map, heap, scheduler, CPUs.
- It controls memory frame by frame (each frame has one owner; the invariants check it)
  and shares CPUs by weight (`heavy` got twice `light`'s time while both competed).
- It has no device drivers: Dom0 runs them, and the tools and daemons for the guests.

Next: **03 · Dom0 and DomUs**.
"""),
    ]
    write("02-the-hypervisor", cells)


HX34 = '''
answer = """name = "my-guest"
type = "pv"
kernel = "pv-hello.elf"
memory = 32
on_poweroff = "preserve"
"""
'''


# ============================================================================ chapter 03
def chapter03() -> None:
    cells = [
        md("""
# 03 · Dom0 and DomUs

**Learning goals**
- recognise **Dom0**, the first and *privileged* guest, and the **DomUs**, the
  unprivileged guests it manages;
- see privilege at work in **xenstore**: a DomU may write under its own directory only;
- drive a DomU's life cycle from Dom0: create (paused), unpause, shut down, destroy, and
  the `on_poweroff` action.
"""),
        md("""
## Dom0: the first guest, and the privileged one

Xen builds **Domain 0** while it boots, and marks it privileged: in its `start_info`
page the flags `SIF_PRIVILEGED | SIF_INITDOMAIN` are set. Every guest created later is a
**DomU** (U for *unprivileged*): flags 0. Only a privileged domain may operate on
*another* domain: create it, map its memory, pause it.
"""),
        code("""
%matplotlib inline
from xenlab.exercises import exercise, seeded
from xenlab.lab import Lab
from xenlab.public.xen import SIF_INITDOMAIN, SIF_PRIVILEGED

lab = Lab()
lab.xl("create -p ../../images/pv-hello.cfg")     # -p: create it paused
for domid in (0, 1):
    d = lab.domain(domid)
    flags = (SIF_PRIVILEGED | SIF_INITDOMAIN) if d.privileged else 0
    print(f"d{domid} {d.name:9} privileged={d.privileged!s:5} start_info flags={flags:#x}")
"""),
        md("""
Every `xl` command in these labs is typed in Dom0: the toolstack (`xl` and the `libxl`
library under it) runs there, and turns each command into hypercalls Xen accepts from
Dom0 only. The new domain exists, with its memory, but it is paused (`p`):
"""),
        code("""
lab.xl("list")
"""),
        md("""
## xenstore: a shared directory with permissions

Dom0 runs **xenstored**, a small tree database all domains talk to (through a shared
page and an event channel). Each domain has a directory `/local/domain/<domid>`.
Dom0 made the new guest's directory when it created it:
"""),
        code("""
lab.xenstore("xenstore-ls /local/domain/0")
print("---")
lab.xenstore("xenstore-ls -p /local/domain/1/console")
"""),
        md("""
The permissions `(n1,r0)` read: the node's **owner is domain 1** with no rights for
everyone else (`n`), and **domain 0 may read** (`r0`). Let us act *as domain 1* and
write into our own directory, then into Dom0's:
"""),
        code("""
from xenlab.tools.xenstore.xenstored import XenStoreError

store = lab.toolstack.services.store
store.write("/local/domain/1/data/greeting", "hello", domid=1)
print("as d1, own directory:", store.read("/local/domain/1/data/greeting", domid=1))
try:
    store.write("/local/domain/0/name", "I am Dom0 now", domid=1)
except XenStoreError as err:
    print("as d1, Dom0's directory:", err.error)
print("Dom0's name is still", store.read("/local/domain/0/name"))
"""),
        md("""
`EACCES`: permission denied. Dom0, on the other hand, may read and write anywhere (it is
how it set the guest up). The same rule protects every resource: a DomU that asks Xen to
act on another domain's memory gets `-EPERM`.

## A DomU's life cycle, driven from Dom0

Our guest is still paused. `xl unpause` lets it run; it prints, then powers itself off.
Its config says `on_poweroff = "preserve"`, so the dead domain stays (state `s`) for us
to inspect:
"""),
        code("""
lab.xl("unpause pv-hello")
lab.run()
lab.xl("list")
print("\\n".join(lab.toolstack.xl_log))
"""),
        md("""
A guest that does not stop by itself can be asked to: `xl shutdown` writes `poweroff`
into its `control/shutdown` xenstore node; `-F` forces the shutdown when the guest has
no agent listening. `pv-spin` sleeps between its rounds of work:
"""),
        code("""
lab.xl("create ../../images/pv-spin.cfg")
lab.run(max_seconds=0.01)                # 10 ms: pv-spin is in the middle of its work
lab.xl("list pv-spin")
lab.xl("shutdown -F pv-spin")
lab.run()
lab.xl("list pv-spin")
"""),
        md("""
`xl destroy` removes a domain at once, whatever its state: its memory goes back to Xen
and its xenstore directory disappears.
"""),
        code("""
lab.xl("destroy pv-hello")
lab.xl("destroy pv-spin")
lab.xl("list")
lab.xenstore("xenstore-ls /local/domain")
"""),
        md("""
## `on_poweroff`: what Dom0 does when a guest stops

The config decides what the toolstack does when the guest powers off: `destroy` (the
default), `preserve`, `restart` (create it again), … Here is `pv-hello` with
`on_poweroff = "destroy"`:
"""),
        code(SCRATCH + '''
create("ephemeral", f"""name = "ephemeral"
type = "pv"
kernel = "{Lab.image('pv-hello/pv-hello.elf')}"
memory = 32
on_poweroff = "destroy"
""")
lab.toolstack.xl_log.clear()
lab.run()
print("\\n".join(lab.toolstack.xl_log))
lab.xl("list")
'''),
        md("""
> **Real Xen.** `xl create -p`, `xl unpause`, `xl shutdown [-F]`, `xl destroy` in a
> root shell of Dom0; `xenstore-ls -p /local/domain/1` shows the same permissions
> (`tools/xenstored/`, `man xenstore-ls`). The start_info flags are in
> `xen/include/public/xen.h` (`SIF_PRIVILEGED`, `SIF_INITDOMAIN`); the `on_poweroff`
> actions are in `man xl.cfg` and `tools/xl/xl_vmcontrol.c` (`handle_domain_death`).
"""),
        md("## Check yourself"),
        md(f"""
**Exercise 1.** Domain 2 tries `xenstore-write /local/domain/1/data/x hi`. Which error
does xenstored answer (the name, like `ENOENT`)? You can try it with
`store.write(path, value, domid=2)`. {TRY}
"""),
        *exercise_cells("ex1", 'exercise("3.1")', '"EACCES"'),
        md(f"""
**Exercise 2.** Which letter does the `State` column of `xl list` show for a domain
created with `xl create -p`? {TRY}
"""),
        *exercise_cells("ex2", 'exercise("3.2")', '"p"'),
        md(f"""
**Exercise 3.** {TRY}
"""),
        *exercise_cells("ex3", 'exercise("3.3")', '"c"'),
        md("""
**Exercise 4 (hands-on).** The config printed below should boot the PV kernel
`pv-hello.elf` (32 MiB) as `my-guest`, let it print its greeting, and keep it listed
after it powers off, so that its state can be inspected. It has four mistakes. Copy it
into the answer cell as a string, run the check, read what `xl` or the run says, fix
that line, and run again until it is right. Each run is a fresh host: `xl create` of
your text, then 50 ms of virtual time.
"""),
        *handson_cells("hx34", 'HandsOn("3.4: fix the config until my-guest boots, prints '
                       'and stays listed", check_xl_config)', HX34,
                       setup="print(BROKEN_CFG)"),
        md("""
## What you saw

- Dom0 is the first, privileged domain; DomUs are created by it and are unprivileged.
- In xenstore each DomU owns `/local/domain/<its id>`; writing into Dom0's directory
  gives `EACCES`.
- From Dom0: `xl create -p` (paused), `xl unpause`, `xl shutdown -F`, `xl destroy`; the
  `on_poweroff` setting decides what happens when a guest stops by itself.

Next: **04 · Paravirtualization**, how a DomU talks to Xen.
"""),
    ]
    write("03-dom0-and-domus", cells)


# ============================================================================ chapter 04
HX44 = '''
answer = """
        mov     $SCHEDOP_block, %edi    # sched_op's command
        xor     %esi, %esi              # SCHEDOP_block takes no argument
        HYPERCALL __HYPERVISOR_sched_op
"""
'''


def _spin_hypercalls() -> int:
    from xenlab.lab import Lab
    from xenlab.tools.xl.xl_parse import parse_config_file
    from xenlab.views import hypercall_counts
    lab = Lab()
    lab.toolstack.domain_create_new(parse_config_file(Lab.image("pv-spin.cfg")))
    lab.run()
    return sum(hypercall_counts(lab.trace)[1].values())


def chapter04() -> None:
    rng = seeded(SEED)
    names = ["set_timer_op", "console_io", "xen_version", "grant_table_op", "sched_op",
             "event_channel_op", "memory_op", "update_va_mapping"]
    pick = rng.choice(names)
    offset = int(Hypercall[pick]) * 32
    n_hcalls = _spin_hypercalls()
    cells = [
        md("""
# 04 · Paravirtualization

**Learning goals**
- understand what a *paravirtualized* (PV) guest is: a kernel **modified** to know it
  runs on Xen, which calls the hypervisor (**hypercalls**) instead of executing
  privileged instructions;
- read the **hypercall page** Xen gives every PV guest;
- see what happens to a privileged instruction (`hlt`) and what a PV kernel does instead
  (`SCHEDOP_block`);
- measure why PV is fast: a guest runs millions of instructions natively for each
  hypercall.
"""),
        md("""
## Hypercalls instead of privileged instructions

On x86-64 a PV guest kernel runs in **ring 3**, like an application, so the CPU refuses
the instructions that control the machine (`hlt`, `lgdt`, writes to `cr3`, `in`/`out`).
The kernel is modified instead: where it would execute them, it asks Xen with a
**hypercall**, as a program asks its kernel with a system call.

Xen writes a page of 32-byte stubs into each PV guest, one per hypercall number; the
guest calls `hypercall_page + 32 * nr`. Here are two stubs, disassembled with capstone:
"""),
        code("""
%matplotlib inline
import capstone

from xenlab.exercises import exercise, seeded
from xenlab.lab import Lab
from xenlab.public.xen import Hypercall
from xenlab.xen.traps import pv_hypercall_page

page = pv_hypercall_page()
cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
for name in ("sched_op", "xen_version"):
    nr = Hypercall[name]
    print(f"hypercall_page + {nr * 32:#05x}: {name} (nr {int(nr)})")
    for ins in cs.disasm(page[nr * 32: nr * 32 + 32], nr * 32):
        if ins.mnemonic == "int3":
            break
        print(f"   {ins.address:#05x}  {ins.mnemonic:5} {ins.op_str}")
"""),
        md("""
`mov eax, nr` then `syscall`: the `syscall` instruction enters Xen (64-bit PV kernels
share ring 3 with their applications, and Xen tells the two apart). Arguments go in
`rdi`, `rsi`, `rdx`, … and the result comes back in `rax`.

## `hlt` versus `SCHEDOP_block`

A kernel with nothing to do halts the CPU until the next interrupt. `pv-crash` does it
the native way, with `hlt`; `pv-spin` does it the PV way: it arms a timer with
`set_timer_op` and calls `sched_op(SCHEDOP_block)`, which tells Xen "give my CPU to
someone else until an event arrives".
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
# (a progress bar widget: its model id differs from run to run)
from xenlab.views.progress import run_with_progress

lab = Lab()
lab.xl("create ../../images/pv-crash.cfg")
lab.xl("create ../../images/pv-spin.cfg")
run_with_progress(lab, 200_000_000, chunk=10_000_000)   # a progress bar while it runs
"""),
        code("""
lab.xl("list")
print(next(line for line in lab.xl_output("dmesg").splitlines() if "Unhandled" in line))
"""),
        code("""
from collections import Counter

spin = lab.domain("pv-spin").domid
calls = Counter(f"{r.name}:{r.args.get('cmd', '')}".rstrip(":")
                for r in lab.trace.select(kind="hypercall", dom=spin)
                if r.name in ("sched_op", "set_timer_op"))
timers, blocks = calls["set_timer_op"], calls["sched_op:SCHEDOP_block"]
print(f"{timers} rounds: {timers} timers, {blocks} blocks, "
      f"{calls['sched_op:SCHEDOP_yield']} yields, {calls['sched_op:SCHEDOP_shutdown']} shutdown")
calls
"""),
        md("""
Each round sets a timer and blocks. A block ends at *any* event: when the console's
(xenconsoled saying it drained the output) wakes the guest before its timer, the guest
finds its timer's port not pending and blocks again, so there can be more blocks than
timers (the counts above are the run's own). The `hlt` in
`pv-crash` raised a general-protection fault; the guest had no handler for it, so Xen
crashed the domain.

## Why only open-source systems, at first

A PV guest needs a modified kernel. Linux and the BSDs could be changed by anyone, and
were; Windows could not, since only Microsoft could change its kernel. Until processors
gained hardware virtualization (Intel VT-x, AMD-V, 2005-2006, used by Xen 3.0 for
*HVM* guests), Xen could run only open-source operating systems. (PV *drivers* for
Windows came later, inside HVM guests.)

## Why PV is fast

Between two hypercalls the guest's instructions run directly on the CPU, with no
hypervisor involved. How many instructions did `pv-spin` execute per hypercall?
"""),
        code("""
from xenlab.views import hypercall_counts, plot_hypercall_counts

solo = Lab()
solo.xl("create ../../images/pv-spin.cfg")
solo.run()
calls = sum(hypercall_counts(solo.trace)[1].values())
print(f"instructions: {solo.host.instructions:,}   hypercalls: {calls}")
print(f"one hypercall every {solo.host.instructions // calls:,} instructions")
"""),
        code("""
plot_hypercall_counts(hypercall_counts(solo.trace, by_cmd=True))
"""),
        md("""
Each hypercall costs some hundreds of cycles on a real machine (a switch into Xen and
back); spread over about a million native instructions, the overhead is a fraction of a
percent. That is why PV performance is close to native. The instructions that would have
needed emulation never run: the kernel was changed to ask instead.

> **Real Xen.** The stubs are written by `xen/arch/x86/pv/hypercall.c`
> (`pv_ring3_init_hypercall_page`); Linux calls them through `HYPERVISOR_sched_op()` and
> friends (`arch/x86/include/asm/xen/hypercall.h`); the numbers are in
> `xen/include/public/xen.h`. A PV guest's `hlt` becomes `SCHEDOP_block` in Linux's
> `xen_safe_halt()` (`arch/x86/xen/irq.c`). `xentrace` + `xenalyze --summary` count
> hypercalls on a real host.
"""),
        md("## Check yourself"),
        md(f"""
**Exercise 1 (seeded).** At which byte offset in the hypercall page is the stub of the
hypercall printed below? (Generated from `seeded({SEED})`; the numbers are in
`Hypercall`.) {TRY}
"""),
        *exercise_cells("ex1", f'exercise("4.1", seed={SEED})', str(offset)),
        md(f"""
**Exercise 2.** How many hypercalls did `pv-spin` make in its whole run (the `solo`
host above)? {TRY}
"""),
        *exercise_cells("ex2", 'exercise("4.2")', str(n_hcalls)),
        md(f"""
**Exercise 3.** {TRY}
"""),
        *exercise_cells("ex3", 'exercise("4.3")', '"b"'),
        md("""
**Exercise 4 (hands-on).** Make a PV guest idle the PV way. The guest below is a real
64-bit PV kernel, built from your lines: it binds `VIRQ_TIMER`, arms a timer 5 ms after
boot (`set_timer_op`), and then runs **your code**; after your code it prints "past the
idle code" and powers off. Write the instructions that give the CPU back to Xen until the
timer fires. You write GNU assembler (AT&T syntax); `HYPERCALL __HYPERVISOR_<name>`
calls through the hypercall page, with the arguments in `rdi`, `rsi`, `rdx` (Xen's
64-bit convention), and Xen's constants (`SCHEDOP_yield`, `SCHEDOP_block`, ...) are
defined. Try `hlt` first, or a spinning loop `1: jmp 1b`, and read what the check says.
"""),
        *handson_cells("hx44", 'HandsOn("4.4: idle until the timer at 5 ms, the PV way", '
                       'check_pv_idle)', HX44),
        md("""
## What you saw

- A PV guest calls Xen through 32-byte stubs in its hypercall page (`mov eax, nr;
  syscall`), instead of executing privileged instructions.
- `hlt` in a PV guest is a fault (pv-crash was crashed); the PV way to idle is
  `set_timer_op` + `SCHEDOP_block`.
- PV needs kernel changes, which is why Xen first ran open-source systems only.
- pv-spin ran tens of millions of instructions natively and needed only a few dozen
  hypercalls: PV runs close to native speed.

Next: **05 · Split drivers**, how a PV guest reaches a disk and a network.
"""),
    ]
    write("04-paravirtualization", cells)


HX54 = '''
def answer(fe):
    ref = fe.grant_access(fe.backend_id, fe.ring_pfn)   # blkback may map the ring page
    port = fe.alloc_unbound(fe.backend_id)             # a port for blkback to bind
    fe.write("ring-ref", ref)
    fe.write("event-channel", port)
    fe.write("state", 3)                               # Initialised: the last write
'''


# ============================================================================ chapter 05
def chapter05() -> None:
    cells = [
        md("""
# 05 · Split drivers

**Learning goals**
- see Dom0's two special **backend** drivers, `blkback` (disks) and `netback`
  (network), and the **frontends** in the DomUs;
- follow the **XenbusState handshake** that connects a frontend to its backend;
- follow one disk write from the guest, through Xen and Dom0, to the disk image on the
  host: every request a DomU makes of the real machine is handled by Dom0 first;
- watch two guests ping each other through Dom0's bridge;
- rebuild the classic architecture figure of a Xen host from the live system.
"""),
        md("""
## The idea

Xen has no device drivers (chapter 02). So a DomU's disk or network card is **split** in
two halves:

- the **frontend** in the DomU, a small driver that puts requests on a **shared ring**
  (a page it *grants* to Dom0) and notifies an **event channel**;
- the **backend** in Dom0, which takes the requests off the ring, maps the guest's data
  pages through the **grant table**, does the real I/O with Dom0's real drivers, and
  answers on the same ring.

We start three guests: `pv-disk`, which writes and reads its disk, and `pv-net-a` and
`pv-net-b`, which ping each other. `pv-disk` writes to its image file, so we give it a
**copy** of `images/pv-disk.img` in a scratch folder, with sector 100 blanked:
"""),
        code("""
%matplotlib inline
import shutil

from xenlab.exercises import exercise, seeded
from xenlab.lab import Lab

lab = Lab()
""" + SCRATCH + '''
disk = os.path.join(work.name, "pv-disk.img")
shutil.copy(Lab.image("pv-disk.img"), disk)
with open(disk, "r+b") as f:                       # blank sector 100 of our copy
    f.seek(100 * 512)
    f.write(bytes(512))

create("pv-disk", f"""name = "pv-disk"
type = "pv"
kernel = "{Lab.image('pv-disk/pv-disk.elf')}"
memory = 16
disk = [ 'format=raw, vdev=xvda, access=rw, target=pv-disk.img' ]
on_poweroff = "preserve"
""")
lab.xl("create ../../images/pv-net-a.cfg")
lab.xl("create ../../images/pv-net-b.cfg")
'''),
        md("""
## The architecture, live

We let the guests run until all three frontends are connected to their backends, and
draw the host as it is at that moment (the figure after Carissimi, 2008: hardware at
the bottom, Xen on it, Dom0 with the backends on the left, the DomUs with their
frontends on the right; the coloured edges are the event channels, grant mappings,
rings and xenstore connections that exist right now):
"""),
        code("""
from xenlab.views import build_topology, draw_topology

devices = lambda: [dev for devs in lab.toolstack.services.devices.values() for dev in devs]
lab.host.run(until=lambda: len(devices()) == 3 and all(int(d.state) == 4 for d in devices()))
lab.xl("list")
draw_topology(build_topology(lab.host))
"""),
        md("""
## The handshake, from the trace

Frontend and backend find each other in xenstore: each writes its `state` node and
watches the other's. The states are Xen's `XenbusState` values: 1 Initialising,
2 InitWait, 3 Initialised, 4 Connected, 5 Closing, 6 Closed. We finish the run and read
every `state` write of the disk from the trace:
"""),
        code("""
lab.run()
DISK = lab.domain("pv-disk").domid
for r in lab.trace.select(kind="xenstore"):
    path = r.args.get("path", "")
    if r.name == "XS_WRITE" and path.endswith("/state") and "vbd" in path and (
            r.dom == DISK or f"vbd/{DISK}/" in path):
        who = "backend (Dom0)" if "backend" in path else f"frontend (d{r.dom})"
        print(f"t={r.time / 1000:7.1f} us  {who:16} state = {r.args['value']}")
"""),
        code("""
print("\\n".join(line for line in lab.console("pv-disk").splitlines()
                if "state" in line or "sector" in line))
"""),
        md("""
## Both sides of the conversation

The states are only half of it. Each side also asks Xen for something: the frontend
allocates an unbound event channel for Dom0 (`EVTCHNOP_alloc_unbound`) and grants its
ring page; blkback in Dom0 maps that grant (`GNTTABOP_map_grant_ref`) and binds the
frontend's port (`EVTCHNOP_bind_interdomain`). Dom0's calls are hypercalls like the
guest's (on a real host its kernel makes them), so the trace has both halves.
`handshake_conversation` lines them up, the frontend on the left and Dom0 on the right:
"""),
        code("""
from xenlab.views import format_conversation, handshake_conversation

steps = handshake_conversation(lab.trace, DISK)
# (leave out the toolstack's params node: the disk image's temporary path)
print(format_conversation([s for s in steps if " params = " not in s.step]))
"""),
        md("""
## One write, step by step

`split_driver_sequence` picks the first request with data (the write of sector 100)
out of the trace and lists what each party did:
"""),
        code("""
from xenlab.views import plot_sequence, split_driver_sequence

steps = split_driver_sequence(lab.trace)
for s in steps:
    print(f"{s.actor:9} {s.step}")
plot_sequence(steps)
"""),
        md("""
The guest never touched the disk. It granted a data page and notified; **blkback in
Dom0** mapped the page (Xen checked the grant), wrote the sector to the image file, and
answered. And the file on the host did change:
"""),
        code("""
with open(disk, "rb") as f:
    f.seek(100 * 512)
    sector = f.read(512)
print(sector[:72])
"""),
        md("""
## The network: two guests and a bridge

`netback` gives each guest's virtual interface a port (`vif<domid>.<n>`) on the bridge
`xenbr0` in Dom0, which forwards Ethernet frames like a switch. Every frame between the
two guests went through Dom0:
"""),
        code("""
for r in lab.trace.select(kind="io"):
    if r.name == "bridge.forward":
        a = r.args
        kind = {"0x0806": "ARP", "0x0800": "IPv4"}.get(a["ethertype"], a["ethertype"])
        print(f"{a['in']:7} -> {','.join(a['out']):7} {kind:5} {a['len']:3} bytes"
              + ("  (broadcast, flooded)" if a["flooded"] else ""))
"""),
        code("""
print("\\n".join(line for line in lab.console("pv-net-a").splitlines() if "ICMP" in line))
"""),
        md("""
> **Real Xen.** The backends are Linux drivers in Dom0: `drivers/block/xen-blkback/`
> and `drivers/net/xen-netback/`; the frontends `drivers/block/xen-blkfront.c` and
> `drivers/net/xen-netfront.c`. The ring protocols are `xen/include/public/io/blkif.h`
> and `netif.h`, the states `xen/include/public/io/xenbus.h`. On a host:
> `xl block-list pv-disk`, `xl network-list pv-net-a`,
> `xenstore-ls /local/domain/0/backend`, and `brctl show xenbr0` (the port is added by
> `/etc/xen/scripts/vif-bridge`).
"""),
        md("## Check yourself"),
        md(f"""
**Exercise 1.** Dom0's blkback wrote sector 100 on behalf of a guest. Which domid did
the request come from? The trace has it: `lab.trace.select(kind="io")`, record
`blkback.disk_write`, field `dom`.
{TRY}
"""),
        *exercise_cells("ex1", 'exercise("5.1")', "1"),
        md(f"""
**Exercise 2 (seeded).** What is the number of the `XenbusState` printed below?
(Generated from `seeded({SEED})`.) {TRY}
"""),
        *exercise_cells("ex2", f'exercise("5.2", seed={SEED})', str(
            {"Initialising": 1, "InitWait": 2, "Initialised": 3, "Connected": 4, "Closing": 5,
             "Closed": 6}[seeded(SEED).choice(sorted(["Initialising", "InitWait", "Initialised",
                                                      "Connected", "Closing", "Closed"]))])),
        md(f"""
**Exercise 3.** {TRY}
"""),
        *exercise_cells("ex3", 'exercise("5.3")', '"b"'),
        md("""
**Exercise 4 (hands-on).** Be the frontend. A fresh host creates a paused PV guest with
one disk; Dom0's real `blkback` waits in state 2 (InitWait). Write a function
`answer(fe)` that does blkfront's part of the handshake with the helper `fe`:
`fe.grant_access(domid, pfn, readonly=False)` grants a page and returns the grant
reference, `fe.alloc_unbound(remote_domid)` allocates an event channel and returns the
port, `fe.write(key, value)` writes a node of the frontend's xenstore directory
(`device/vbd/51712`). `fe.ring_pfn` is the page for the ring and `fe.backend_id` the
backend's domain. The check runs your function and then reads what blkback did: it must
reach 4 (Connected).
"""),
        *handson_cells("hx54", 'HandsOn("5.4: blkfront\'s side of the handshake, until '
                       'blkback is Connected", check_frontend_step)', HX54),
        md("""
## What you saw

- Each virtual device is split: a frontend in the DomU, a backend (`blkback`,
  `netback`) in Dom0, a shared ring, a grant and an event channel between them.
- They connect through xenstore, stepping through XenbusState 1 → 4 (and 5 → 6 to
  close).
- One disk write: frontend notifies → Xen → blkback maps the granted page → the image
  file on the host changes → response → notification back. Dom0 handled it all.
- Network frames between guests cross Dom0's bridge `xenbr0`.
- The architecture figure of a Xen host, drawn from the running system.
"""),
    ]
    write("05-split-drivers", cells)


if __name__ == "__main__":
    chapter01()
    chapter02()
    chapter03()
    chapter04()
    chapter05()
