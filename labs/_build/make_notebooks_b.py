"""Generate the chapter notebooks 06-10 of the xenlab course (nbformat), without outputs.

    .venv/bin/python labs/_build/make_notebooks_b.py          # writes the five notebooks
    cd labs/06-full-virtualization && ../../.venv/bin/jupyter nbconvert --to notebook \
        --execute --inplace 06-full-virtualization.ipynb      # then execute each in its folder

The notebooks are the source of truth for students; this script is how they
are made, so a change to a chapter is a change here, then a re-run. Answers in
the exercise cells are literal (nbval checks the stored outputs), so after a
change to the emulator re-run and compare.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from exercise_cells import exercise_cells  # labs/_build/: nbgrader's three cells per exercise
from handson_cells import handson_cells  # labs/_build/: hands-on exercises (xenlab.handson)

LABS = Path(__file__).resolve().parents[1]

METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                   "name": "python3"},
    "language_info": {"codemirror_mode": {"name": "ipython", "version": 3},
                      "file_extension": ".py", "mimetype": "text/x-python", "name": "python",
                      "nbconvert_exporter": "python", "pygments_lexer": "ipython3",
                      "version": "3.11.7"},
}


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, *tags: str):
    # ``_ = ex.check(...)``: keeps the returned True out of the output (nbval's kernel
    # does not honour a trailing semicolon the way nbconvert's does)
    text = re.sub(r"^(\s*)(ex\w*\.check\(.*\))$", r"\1_ = \2", text, flags=re.MULTILINE)
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def write(folder: str, cells: list) -> Path:
    nb = new_notebook(cells=cells, metadata=METADATA)
    path = LABS / folder / f"{folder}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path


# =====================================================================================
# 06 · Full virtualization
# =====================================================================================
HX64_SETUP = '''
EXIT_CODE = r"""
        mov     $0x48, %al
        out     %al, $0xe9          # Xen's debug console port
        mov     $0x0e48, %ax
        int     $0x10               # the BIOS prints 'H' on the screen
        mov     $0x1f7, %dx
        in      %dx, %al            # the IDE controller's status register
        cli
        hlt
"""
print(EXIT_CODE)
'''
HX64 = "answer = 6"

HX84 = '''
answer = r"""
        mov     $0x40000000, %eax   # Xen's CPUID leaf
        cpuid                       # a VM exit: Xen answers in EBX, ECX, EDX
        push    %edx
        push    %ecx
        mov     %ebx, %esi
        call    put4                # EBX: 4 characters, lowest byte first
        pop     %esi
        call    put4                # then ECX
        pop     %esi
        call    put4                # then EDX
        cli
        hlt
put4:   mov     $4, %cx
1:      mov     %si, %ax            # AL = the lowest byte left
        mov     $0x0e, %ah          # int 10h AH=0Eh: teletype output
        push    %cx
        int     $0x10
        pop     %cx
        shr     $8, %esi            # the next byte
        loop    1b
        ret
"""
'''

HX93 = 'answer = ["unpause web", "destroy mail"]'

HX103 = '''
answer = r"""
        mov     $CONSOLEIO_write, %edi  # console_io's command
        mov     $msg_len, %esi          # how many bytes
        lea     msg(%rip), %rdx         # where they are
        HYPERCALL __HYPERVISOR_console_io
"""
'''


def chapter_06() -> list:
    return [
        md("""
# 06 · Full virtualization: unmodified guests on Intel VT and AMD-V

**Learning goals**
- say why Xen could run *unmodified* operating systems only from Xen 3 on, and what
  Intel VT-x and AMD-V added to the processor;
- tell a **DomU-PV** from a **DomU-HVM** by what each costs: hypercalls against **VM exits**;
- follow one VM exit to its handler: Xen itself, or the **device model** in Dom0 (an **ioreq**);
- explain what lets a system such as Windows boot as a guest: the firmware and the emulated PC.

Until Xen 3 every guest had to be *paravirtualized*: its kernel was changed to call the
hypervisor instead of touching the hardware (chapter 04). The x86 processors of the time
could not trap every sensitive instruction, so an unchanged kernel could not be run safely.
Intel VT-x (2005) and AMD-V (2006) added a new processor mode for guests: the guest runs
its own kernel in ring 0 of that mode, and whenever it does something only the hypervisor
may do (port I/O, `cpuid`, some MSRs, `hlt`), the processor leaves the guest — a
**VM exit** — and hands control to Xen. Xen 3.0 (December 2005) used this to run
**HVM** (hardware virtual machine) guests.
"""),
        code("""
%matplotlib inline
from collections import Counter

from xenlab.lab import Lab
from xenlab.views import compare_pv_hvm, vmexit_summary
from xenlab.xen.trace import Kind

pv = Lab()                                   # one host for the PV guest ...
pv.xl("create ../../images/pv-hello.cfg")
pv.run()
hvm = Lab()                                  # ... and one for the HVM guest
hvm.xl("create ../../images/hvm-hello.cfg")
hvm.run()
hvm.xl("list")
"""),
        md("""
Two guests that do the same kind of work — start, find out they run on Xen, print a
few lines, stop — one written for Xen (`pv-hello`, chapter 00), one that uses none of
Xen's interfaces: `hvm-hello` is an ordinary PC boot disk. A BIOS loads its boot sector,
which reads the rest of the guest with `int 13h`, prints through `int 10h` and the serial
port, and at most *looks* (with `cpuid`) whether it runs on Xen — as Windows and Linux
do. Its config has `type = "hvm"` and no `kernel =`: an HVM guest boots from a disk like
a real PC.
"""),
        code("""
print(open("../../images/hvm-hello.cfg").read())
print(hvm.console("hvm-hello"))
"""),
        md("""
## Hypercalls against VM exits

The PV guest *asks* Xen for everything: each request is a hypercall. The HVM guest
asks for almost nothing — it executes ordinary PC instructions, and the processor
stops it each time one of them needs the hypervisor. Count both:
"""),
        code("""
PV, HVM = pv.domain("pv-hello").domid, hvm.domain("hvm-hello").domid
pv_calls = Counter(r.name for r in pv.trace.select(kind="hypercall", dom=PV))
hvm_calls = Counter(r.name for r in hvm.trace.select(kind="hypercall", dom=HVM))
hvm_exits = Counter(r.name for r in hvm.trace.select(kind="vmexit"))
print("pv-hello  hypercalls:", sum(pv_calls.values()), dict(pv_calls))
print("pv-hello  VM exits:  ", len(pv.trace.select(kind="vmexit")))
print("hvm-hello hypercalls:", sum(hvm_calls.values()), dict(hvm_calls))
print("hvm-hello VM exits:  ", sum(hvm_exits.values()), dict(hvm_exits))
dm_calls = Counter(r.name for r in hvm.trace.select(kind="hypercall", dom=0))
print("Dom0 (toolstack, device model) for hvm-hello:", sum(dm_calls.values()), dict(dm_calls))
"""),
        md("""
`vmexit_summary` groups the exits by **cause** and by **handler**. The handler is
`xen` when the hypervisor itself emulates the device (the timer, the interrupt
controllers, the CMOS clock, the 0xE9 debug port) and `dm` when Xen has to pass the
access on to the **device model**, a QEMU-like process in Dom0 that emulates the rest
of the PC (disk controller, serial port, VGA, PCI).
"""),
        code("""
vmexit_summary(hvm.trace)
"""),
        code("""
ports = Counter((r.args["port"], r.args["handler"])
                for r in hvm.trace.select(kind="vmexit", name="io"))
for (port, handler), n in ports.most_common():     # every port the guest touched
    print(f"port {port:>6}  handled by {handler:3}  {n:5} exits")
"""),
        md("""
The first exits of all are the firmware asking the processor who it is (`cpuid` leaf
0x40000000 answers with Xen's signature), telling Xen where to put the **hypercall
page** (`wrmsr`) and making its only hypercall through it (`vmcall`):
"""),
        code("""
for r in hvm.trace.select(kind="vmexit"):
    if r.name != "io":
        print(r.time, "ns", r.name, r.args)
"""),
        md("""
## The work done in Dom0: ioreqs

Every exit handled by `dm` becomes an **ioreq**: Xen writes the request (port, size,
direction, data) into a page shared with the device model and notifies it on an
**event channel** (`vp_eport`: the device model in Dom0 bound to it when it started);
the device model writes the answer back (`ioresp`) and notifies back. Each such round
trip costs a switch to Dom0 and back on a real host, which is why HVM guests with
emulated devices are slow at I/O. One round trip, record by record:
"""),
        code("""
ioreqs = hvm.trace.select(kind="ioreq", name="ioreq")
print(len(ioreqs), "ioreqs for", sum(vmexit_summary(hvm.trace)["io"].values()), "port I/O exits")
first = ioreqs[0].seq
for r in hvm.trace.records[first : first + 5]:
    print(f"d{r.dom} {r.kind.value:8} {r.name:18} {r.args}")
"""),
        code("""
compare_pv_hvm(pv.trace, hvm.trace)
"""),
        md("""
## The same job, measured

`pv-work` and `hvm-work` do *exactly* the same job on the same disk: read sectors 1 to
8 and print the first line of each. The PV guest uses blkfront and its PV console; the
HVM guest uses the BIOS (`int 13h` for the disk, `int 10h` for the screen). Both write
`xenlab workload: start` and `... end` on Xen's console around the job, and
`domain_costs` counts only what lies between. Exits are not free: xenlab charges the
guest 1 µs of virtual time for each exit Xen handles, 10 µs for each round trip to the
device model and 0.2 µs for a PV hypercall (round figures of the right size, not
measurements).
"""),
        code("""
import sys

from xenlab.compare import domain_costs, format_costs

job = Lab()
job.xl("create ../../images/pv-work.cfg")
job.xl("create ../../images/hvm-work.cfg")
job.run()
format_costs(domain_costs(job.host), sys.stdout)
"""),
        md("""
The PV guest enters Xen twice per sector: it puts one request on the shared ring and
notifies blkback. The HVM guest exits on every port access: the IDE controller's
registers for each sector (the 256 data words come in one `rep insw`, one exit), and
for every character it prints the screen's cursor and the serial port. That, not the
speed of the processor, is why PV runs close to native and HVM with emulated devices
does not — and why HVM guests today use PV drivers (chapter 08).
"""),
        md("""
## Unmodified systems such as Windows

Nothing in `hvm-hello` calls Xen: it uses only BIOS services and PC hardware (the
teaching BIOS and boot sector are also checked on real QEMU in
`tests/test_firmware_qemu.py`). That is the whole point of HVM: an operating system whose source cannot be changed — Windows is the usual example —
boots because the guest finds what a PC has:

- a **BIOS** (or UEFI firmware) at the reset vector, which sets up the machine and
  loads the boot sector (chapter 07);
- the **emulated PC** behind it: PCI bus, IDE disk controller, VGA, serial port,
  keyboard controller, timer and interrupt controllers — split between Xen (the
  timing-critical ones) and the device model in Dom0 (the rest).

The price is the exit count above. Chapter 08 shows how HVM guests win most of it back
with PV drivers.

> **Real Xen.** The exits are handled in `xen/arch/x86/hvm/vmx/vmx.c`
> (`vmx_vmexit_handler`) on Intel and `xen/arch/x86/hvm/svm/svm.c` on AMD; port I/O goes
> through `xen/arch/x86/hvm/io.c` (`handle_pio`) and the ioreq server
> (`xen/common/ioreq.c`) to QEMU (`hw/i386/xen/xen-hvm.c`, `cpu_handle_ioreq`).
> `xl info` lists `hvm-3.0-x86_64` among the capabilities only when the processor has
> VT-x or AMD-V enabled in the firmware setup; `xentrace` plus `xenalyze` gives the
> same exit counts on a real host.

## Check yourself
"""),
        md("""
**Exercise 6.1.** Which handler served the port the seed picks: `"xen"` (emulated
inside the hypervisor) or `"dm"` (an ioreq to the device model)? Replace the `...`
with your answer and run the cell: the check says whether it is right.
"""),
        *exercise_cells("ex61", 'exercise("6.1", seed=SEED)', '"xen"',
                        setup="from xenlab.exercises import exercise\n\nSEED = 6"),
        md("""
**Exercise 6.2.** How many hypercalls did the *HVM* guest make, in total?
"""),
        *exercise_cells("ex62", 'exercise("6.2")', "1"),
        md("""
**Exercise 6.3.** What made HVM guests possible in Xen 3?
"""),
        *exercise_cells("ex63", 'exercise("6.3")', '"b"'),
        md("""
**Exercise 6.4 (hands-on).** Predict, then measure. The boot-sector code printed below
is assembled, booted on a fresh host with the teaching BIOS, and every VM exit from its
first instruction to its `hlt` is counted. Before you run anything, write how many VM
exits you expect (a whole number), then run the cell. The check lists each exit with
its port and who served it: if you were wrong, find which instruction left the guest
more often than you thought, and why (what does `int $0x10` do to print?).
"""),
        *handson_cells("hx64", 'HandsOn("6.4: how many VM exits does this code make?", '
                       'check_exit_prediction, code=EXIT_CODE)', HX64, setup=HX64_SETUP),
        md("""
## Summary

- HVM guests are unmodified: the processor (VT-x, AMD-V) exits to Xen whenever the guest
  touches something only the hypervisor may touch.
- A PV guest pays in **hypercalls** it chose to make; an HVM guest pays in **VM exits**
  it did not know it caused — thousands of them for a boot sector.
- Xen emulates the timer, interrupt controllers and clock itself; disk, serial, VGA and
  PCI are emulated by the **device model** in Dom0, one **ioreq** per access.
- Firmware plus an emulated PC is what lets Windows and other closed systems run as guests.

Next: chapter 07 follows the HVM guest from its first instruction to the boot sector.
"""),
    ]


# =====================================================================================
# 07 · The HVM boot
# =====================================================================================
HX73 = '''
answer = r"""
        mov     $msg, %si       # SI walks the message
next:   lodsb                   # AL = next character
        test    %al, %al
        jz      done            # the NUL ends it
        mov     $0x0e, %ah      # int 10h AH=0Eh: teletype output
        int     $0x10
        jmp     next
done:   cli
        hlt
msg:    .asciz  "Hello from my boot sector"
"""
'''


def chapter_07() -> list:
    return [
        md("""
# 07 · The HVM boot: firmware, BIOS, boot sector

**Learning goals**
- list the steps an HVM guest goes through before its operating system runs, in order;
- see Xen's virtual firmware (**hvmloader**) prepare the machine and start a **BIOS**;
- see the **device model** in Dom0 emulate the disk while the BIOS reads the boot sector;
- read the guest's VGA screen and serial port, and (if installed) boot the same disk with
  the real hvmloader and **SeaBIOS**.

A PC does not start with its operating system: the processor starts at the reset vector
in the BIOS, the BIOS tests and sets up the machine (POST), fills the interrupt vector
table, and finally loads the first sector of the boot disk at address 0x7C00 and jumps
to it (`int 19h`). An HVM guest must see the same sequence. Xen starts it in
**hvmloader**, Xen's own small firmware, which prepares what a BIOS expects (the memory
map, the CMOS memory size, the hypercall page) and then hands over to the BIOS.
"""),
        code("""
%matplotlib inline
from collections import Counter

from xenlab.lab import Lab
from xenlab.xen.trace import Kind

lab = Lab()
lab.xl("create ../../images/hvm-hello.cfg")
lab.run()
dm = lab.toolstack.device_models[lab.domain("hvm-hello").domid]   # its device model in Dom0
"""),
        md("""
## The firmware phases, from the trace

The firmware writes one line per step to the debug port 0xE9, which Xen copies into its
log as `(d1) ...` lines (each is also a `console` record in the trace). Here they are in
the order they happened, with the virtual time:
"""),
        code("""
lines = lab.trace.select(kind="console", name="debug_port")
for r in lines:
    if not r.args["line"].startswith(" ["):          # skip the E820 rows
        print(f"{r.time:>7} ns  {r.args['line']}")
"""),
        md("""
Read it as a story:

1. **HVM Loader** — Xen starts the guest's vCPU in 32-bit flat mode at hvmloader.
2. **Xen detected** — `cpuid` leaf 0x40000000 answers `XenVMMXenVMM`.
3. **hypercall page** — hvmloader writes the page's address to Xen's MSR; Xen fills it
   with `vmcall` stubs; the first hypercall (`xen_version`) goes through it.
4. **E820** — hvmloader builds the memory map the BIOS will report through `int 15h`.
5. **POST** — the BIOS starts at F000:FFF0 in real mode and tests/sets up the machine.
6. **IVT** — it fills the interrupt vector table and the BIOS data area.
7. PIC, PIT, PCI, disks, memory, video.
8. **int 19h** — it reads sector 0 of the disk to 0x7C00 and jumps there: the **boot
   sector** runs (and loads the rest of the guest with `int 13h`).

The `cpuid` answer really is Xen's signature, in three registers:
"""),
        code("""
import struct

leaf = next(r for r in lab.trace.select(kind="vmexit", name="cpuid") if "result" in r.args)
eax, ebx, ecx, edx = (int(x, 16) for x in leaf.args["result"])
print(leaf.args["leaf"], "->", struct.pack("<III", ebx, ecx, edx).decode())
"""),
        md("""
## The device model reads the boot sector

`int 19h` asks the BIOS's own disk service (`int 13h`) for sector 0. The BIOS programs
the IDE controller at ports 0x1F2-0x1F7 (sector count, LBA, command `0x20` READ SECTORS)
and then reads 256 16-bit words from the data port 0x1F0 with one `rep insw`. The IDE
controller is not in Xen: every one of those accesses is a VM exit that Xen turns into
an ioreq for the device model in Dom0, which reads the disk image file. The string
instruction is a single exit and a single ioreq with `count` 256 and `data_is_ptr`: the
device model writes the words straight into the guest's memory, as with Xen's
`hvmemul_rep_ins`.
"""),
        code("""
read0 = next(r for r in lab.trace.select(kind="io") if r.name == "qemu.ide.read"
             and r.args["lba"] == 0)
boot = next(r for r in lab.trace.select(kind="phase") if "INT 19h" in r.name)
window = [r for r in lab.trace.records if boot.seq < r.seq and r.kind is Kind.IOREQ
          and r.name == "ioreq" and r.time <= read0.time + 2000]
print(boot.name, "| the device model's disk read:", read0.name, read0.args)
print(Counter((r.args["addr"], r.args["dir"]) for r in window).most_common(8))
"""),
        md("""
The screen the boot sector wrote on (VGA text memory at 0xB8000, which the device model
owns), and the serial port, which the BIOS mirrors its output to:
"""),
        code("""
print(dm.screen_text())
"""),
        code("""
print(lab.console("hvm-hello"))
"""),
        md("""
## Step through the boot

The **boot stepper** runs the same guest one instruction at a time. It stops at
whatever you ask (the next VM exit or hypercall, a firmware phase), shows the
registers with the CPU mode and CS:IP, the disassembly around the current instruction
(16-bit in real mode), the last port accesses with their handler, and the current
phase with the source to read; **Back** returns to any earlier instruction through
checkpoints. Here we run to the BIOS's POST, the moment hvmloader has dropped to real
mode and jumped to F000:FFF0:
"""),
        code("""
from xenlab.views.stepper import Stepper

stepped = Lab(memory_mib=256, dom0_mem_mib=64)
stepped.xl("create -p ../../images/hvm-hello.cfg")
st = Stepper(stepped, "hvm-hello")
st.run_to_phase("xenlab BIOS: POST")
print(st.registers_text())
print(st.phase_text())
"""),
        code("""
for _ in range(3):
    st.step()
print(st.disassembly_text(after=3))
st.back(3)
print("back to", st.cs_ip())
"""),
        md("""
In JupyterLab, `st.widget()` shows the same panels with buttons: Step, Step over, Run
to next event, Run to phase, Back, and a slider over the recorded run.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
# (a widget: its model id differs from run to run)
st.widget()
"""),
        md("""
## The same disk with the real firmware

`images/hvm-seabios.cfg` boots the same disk with `bios = "seabios"`: the real Xen
hvmloader from the distribution (Debian's `xen-utils-4.17`) and SeaBIOS, the BIOS Xen
and QEMU really use. They run on the same VM exits and the same device model. This
needs those packages; without them the cell says so.
"""),
        code("""
from pathlib import Path

HVMLOADER = Path("/usr/lib/xen-4.17/boot/hvmloader")
if HVMLOADER.is_file() and Path("/usr/share/seabios/bios-256k.bin").is_file():
    real = Lab(memory_mib=256, dom0_mem_mib=64)
    real.xl("create ../../images/hvm-seabios.cfg")
    real.run(max_seconds=5.0)
    wanted = ("HVM Loader", "Detected Xen", "Invoking SeaBIOS", "SeaBIOS (version",
              "Found Xen hypervisor", "Booting from", "bootsect", "done")
    for line in real.xl_output("dmesg").splitlines():
        if line.startswith("(d1)") and any(w in line for w in wanted):
            print(line)
else:
    print("The real hvmloader or SeaBIOS is not installed here (apt install xen-utils-4.17 "
          "seabios); the teaching firmware above shows the same steps.")
""", "nbval-ignore-output"),
        md("""
> **Real Xen.** hvmloader is `tools/firmware/hvmloader/hvmloader.c` (`main()`: the
> banner, `init_hypercalls()`, the E820 map in `e820.c`, the BIOS load, "Invoking
> SeaBIOS ..."). The BIOS is SeaBIOS (or OVMF for UEFI guests). The device model is QEMU,
> started by libxl (`tools/libs/light/libxl_dm.c`) in Dom0 — or in a small stub domain —
> one per HVM guest; its IDE emulation is `hw/ide/`. `xl dmesg` on a real host shows
> the same `(d1)` lines when the guest writes to port 0xE9.

## Check yourself
"""),
        md("""
**Exercise 7.1.** Put the firmware steps in the order the guest runs them. The seed
shuffles them; answer with the letters in order.
"""),
        *exercise_cells("ex71", 'exercise("7.1", seed=7)', '"d f g e c a b"',
                        setup="from xenlab.exercises import exercise"),
        md("""
**Exercise 7.2.** Who serves the guest's reads of the IDE data port 0x1F0: `"xen"` or
`"dm"`? And (7.2b) what would the BIOS's one `rep insw` cost in ioreqs if it were a loop of
single `inw` instructions instead?
"""),
        *exercise_cells("ex72", 'exercise("7.2")', '"dm"'),
        *exercise_cells("ex72b", 'exercise("7.2b")', "256"),
        md("""
**Exercise 7.3 (hands-on).** Write the boot sector yourself. Your code is assembled
(GNU as, 16-bit, loaded at 0x7C00), signed 55h AAh, written to a fresh disk and booted on
the emulated host with the teaching BIOS; the check reads the guest's screen. Print
`Hello from my boot sector` with the BIOS (`int $0x10`, AH = 0x0E, AL = the character),
then stop with `cli; hlt`.
"""),
        *handson_cells("hx73", 'HandsOn("7.3: a boot sector that prints \'Hello from my boot '
                       'sector\' on the screen", check_boot_sector)', HX73),
        md("""
## Summary

- An HVM guest starts like a PC: Xen runs **hvmloader**, which finds Xen (`cpuid`),
  sets up the **hypercall page**, writes the **E820** map and loads the **BIOS**.
- The BIOS does **POST**, fills the **IVT**, and `int 19h` loads the **boot sector** at
  0x7C00.
- Disk, VGA, serial and PCI are emulated by the **device model** in Dom0: every
  access is an **ioreq**, a round trip over an event channel (a `rep insw` of a whole
  sector is one).
- The real firmware (hvmloader + SeaBIOS) takes the same path on the same exits.
"""),
    ]


# =====================================================================================
# 08 · What changed
# =====================================================================================
PVH_CFG = ""


def chapter_08() -> list:
    return [
        md("""
# 08 · What changed since the classic Xen material

**Learning goals**
- see that Dom0 and the DomUs need not run the same operating system or distribution;
- find the **Xen platform PCI device** that lets an HVM guest load **PV drivers**;
- know what **PVH** is, and boot a PVH guest (GRUB) on xenlab;
- name the tools and defaults of today's Xen (`xl`, credit2) next to the older ones
  (`xm`, credit).

Much Xen teaching material was written around Xen 3 (2005-2010). The ideas still hold —
a small hypervisor, Dom0, split drivers, PV and HVM — but the details moved on. This
chapter says plainly what is different now.
"""),
        md("""
## Dom0 and DomU need not run the same system

Early on, Dom0 and PV guests often ran the same patched "XenLinux" kernel from the same
distribution. Nothing requires that: each guest brings its own kernel, and all they
share with Dom0 is the interface — hypercalls, start_info, event channels, grant tables
and xenstore. Two different guest kernels side by side: `pv-hello` in assembly and
`pv-pubhdr` in C, written only against Xen's public headers (`<xen/xen.h>`):
"""),
        code("""
from xenlab.lab import Lab

lab = Lab()
lab.xl("create ../../images/pv-hello.cfg")
lab.xl("create ../../images/pv-pubhdr.cfg")
lab.run()
lab.xl("list")
"""),
        code("""
for name in ("pv-hello", "pv-pubhdr"):
    first = lab.console(name).splitlines()[0]
    print(f"{name:10} says: {first}")
print()
print(lab.console("pv-pubhdr"))
"""),
        md("""
`pv-pubhdr` also calls `tmem_op`, a hypercall that Xen removed in 4.13: a modern Xen
answers `-ENOSYS` (-38), and a well-written guest carries on. Today Dom0 is usually a
stock distribution kernel (Linux has had Dom0 support in mainline since 3.0, 2011),
and guests can be any Linux distribution, a BSD, Windows, or a unikernel such as
Mini-OS or Unikraft.

## PV drivers inside HVM guests

Chapter 06 counted thousands of exits for emulated devices. Modern HVM guests avoid most
of them: they load **PV drivers** (netfront, blkfront — the split drivers of chapter 05)
and use the emulated disk only to boot. To tell the guest "you are on Xen, PV drivers
will work", the device model adds a PCI device that real hardware never has: the **Xen
platform device**, vendor 0x5853 ("XenSource"), device 0x0001. Linux's
`xen-platform-pci` driver and the Windows PV drivers bind to it. Read the PCI
configuration space of our HVM guest's device model, as the guest's PCI scan would:
"""),
        code("""
hvm = Lab()
hvm.xl("create ../../images/hvm-hello.cfg")
hvm.run()
pci = hvm.toolstack.device_models[hvm.domain("hvm-hello").domid].pci

for slot in range(32):
    devfn = slot << 3
    ids = pci.config(devfn, 0x00, 4, False, 0)        # vendor (low 16) and device (high 16)
    if ids != 0xFFFFFFFF:
        cls = pci.config(devfn, 0x0A, 2, False, 0)
        print(f"00:{slot:02x}.0  {ids & 0xFFFF:04x}:{ids >> 16:04x}  class {cls:04x}")
"""),
        md("""
Slot 2 is the platform device. In a real guest, `lspci -nn` shows it as
`Xen Platform Device [5853:0001]`. An HVM guest that uses PV drivers for its disks and
network (and PV timers and interrupts: event channels) is often called **PVHVM**.

## PVH: the modern guest type

**PVH** combines both: the guest runs in the hardware virtualization container (like HVM,
so page tables and privileged instructions need no hypercalls), but boots straight into
its kernel like a PV guest — no BIOS, no emulated PC, no device model, PV drivers for all
I/O. It is supported for DomUs since Xen 4.10 and is the recommended type for Linux and
FreeBSD guests.

xenlab runs a real PVH kernel: the distribution's PVH GRUB (Debian's `grub-xen-host`).
Xen enters it at its `XEN_ELFNOTE_PHYS32_ENTRY` in 32-bit flat mode; it finds its
console and xenstore through HVM parameters and talks over the PV console ring. Here
it boots to its prompt, and we type a command into its console, as `xl console` would:
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
# (where grub-xen-host is missing the cell prints a notice instead)
import os
if os.path.exists("/usr/lib/grub-xen/grub-i386-xen_pvh.bin"):
    lab.xl("create ../../images/pvh-grub.cfg")
    lab.run(max_instructions=30_000_000)
    lab.console_input("pvh-grub", "echo hello from xl console\\r")
    lab.run(max_instructions=30_000_000)
    print(lab.console("pvh-grub").splitlines()[-2:])
    lab.xl("list")
else:
    print("PVH GRUB is not installed here (Debian: apt install grub-xen-host)")
"""),
        md("""
## Tools and defaults

| then (Xen 3.x material) | now |
|---|---|
| `xm` commands talking to the `xend` daemon | `xl` (default since Xen 4.2; xend removed in 4.5) |
| patched XenLinux kernels for Dom0 | mainline Linux (Dom0 since Linux 3.0) |
| credit scheduler | credit2 is the default since Xen 4.12 (credit still available: `sched=credit`) |
| qemu-dm ("qemu-traditional") | upstream QEMU (`device_model_version = "qemu-xen"`) |
| tmem, 32-bit hypervisor | removed (tmem in 4.13; 32-bit x86 hypervisor long ago) |
| PV for speed, HVM for Windows | PVH or HVM with PV drivers; PV mostly for old setups |

xenlab boots with `sched=credit`, like the material; `xl dmesg` shows it:
"""),
        code("""
for line in lab.xl_output("dmesg").splitlines():
    if "sched" in line.lower():
        print(line)
"""),
        md("""
> **Real Xen.** The platform device is `hw/xen/xen_platform.c` in QEMU; Linux's driver is
> `drivers/xen/platform-pci.c`. PVH guests are created with `type = "pvh"` in `xl.cfg`
> (see `man xl.cfg`); the scheduler is chosen with `sched=` on Xen's command line
> and shown by `xl info` (`xen_scheduler`). The release notes on `xenproject.org` list
> what each version added or removed.

## Check yourself
"""),
        md("""
**Exercise 8.1.** What is the PCI vendor id of the Xen platform device (as a number)?
"""),
        *exercise_cells("ex81", 'exercise("8.1")', "0x5853",
                        setup="from xenlab.exercises import exercise"),
        md("""
**Exercise 8.2.** What did the removed hypercall return to `pv-pubhdr`?
"""),
        *exercise_cells("ex82", 'exercise("8.2")', "-38"),
        md("""
**Exercise 8.3.** Which guest type boots its kernel directly, inside the hardware
virtualization container, with no device model?
"""),
        *exercise_cells("ex83", 'exercise("8.3")', '"c"'),
        md("""
**Exercise 8.4 (hands-on).** An HVM guest can find out that it runs on Xen, which is the
first thing PVHVM drivers do. Write a boot sector that executes `cpuid` with
EAX = 0x40000000 and prints on the screen the 12-character signature Xen answers in
EBX, ECX and EDX (4 characters per register, lowest byte first), with `int $0x10`
(AH = 0x0E, AL = the character), and then stops with `cli; hlt`. Your code is assembled
(16-bit, GNU as), booted on a fresh host with the teaching BIOS, and the check reads the
screen and the trace's `cpuid` exits.
"""),
        *handson_cells("hx84", 'HandsOn("8.4: a boot sector that prints Xen\'s CPUID '
                       'signature", check_cpuid_signature)', HX84),
        md("""
## Summary

- Dom0 and the DomUs only share Xen's interface: each guest can run its own kernel and
  distribution (two different kernels ran side by side above).
- HVM guests find the **Xen platform device** (5853:0001) and load **PV drivers**:
  PVHVM.
- **PVH** is the modern guest type; xenlab runs it (PVH GRUB above, and classic PV GRUB:
  `images/pv-grub.cfg`).
- Today: `xl`, not `xm`; mainline Linux Dom0; credit2 by default (xenlab: credit).
"""),
    ]


# =====================================================================================
# 09 · The manager
# =====================================================================================
def chapter_09() -> list:
    return [
        md("""
# 09 · The virtual machine manager in Dom0

**Learning goals**
- use a graphical "Virtual Machine Manager" window to create, pause, unpause and destroy
  guests;
- see that every button is one `xl` command run in Dom0;
- use the `%xl` magics: Dom0's shell inside a notebook cell.

An administrator does not manage guests from Xen: Xen has no user interface at all.
All management happens in **Dom0**, through the toolstack (`xl`, libxl) or a graphical
front end on top of it such as **virt-manager**. xenlab's `Dashboard` is such a window.
"""),
        code("""
from xenlab.lab import Lab
from xenlab.views import Dashboard
from xenlab.views.dashboard import COLUMNS

lab = Lab()
dash = Dashboard(lab, budget=2_000_000)


def show(d):
    \"\"\"The dashboard's domain table, as text.\"\"\"
    print("  ".join(f"{c:>10}" for c in COLUMNS))
    for row in d.rows():
        print("  ".join(f"{v!s:>10}" for v in row))


dash
""", "nbval-ignore-output"),
        md("""
In JupyterLab the cell above shows the window: the table of domains, a config path and
**Create**, a domain selector with **Pause**, **Unpause**, **Shutdown** and **Destroy**,
a **Run** button, the selected guest's console and the log of `xl` commands. Try it.
Below, the same buttons are pressed from code (`button.click()`), so the steps can be
repeated exactly.
"""),
        code("""
show(dash)
"""),
        md("""
## Create

`pv-spin` computes, yields, and sleeps on its timer five times, so it stays alive long
enough to be paused.
"""),
        code("""
dash.config_path.value = "../../images/pv-spin.cfg"
dash.create_button.click()
dash.run_button.click()
show(dash)
print(dash.status.value)
"""),
        md("""
## Pause and unpause

A paused domain keeps its memory and state but Xen does not schedule its vCPUs: the `p`
in the State column.
"""),
        code("""
dash.pause_button.click()
show(dash)
"""),
        code("""
dash.run_button.click()          # time passes; the paused guest does not run
show(dash)
dash.unpause_button.click()
show(dash)
"""),
        md("""
## Destroy

`destroy` ends the domain at once (no shutdown request to the guest) and frees its
memory.
"""),
        code("""
dash.destroy_button.click()
show(dash)
print(dash.xl_log.value)
"""),
        md("""
Every button was one `xl` command, and the log shows which. The guest's console
(what `xl console` shows) was in the window while the guest existed.

## Dom0's shell in a cell: `%xl`

The magics run the same command table. `set_lab` makes them use this notebook's host.
"""),
        code("""
%load_ext xenlab.views.magics
from xenlab.views.magics import set_lab

set_lab(lab)
"""),
        code("""
%xl create ../../images/pv-hello.cfg
"""),
        code("""
%xl list
"""),
        code("""
%xl console pv-hello
"""),
        md("""
> **Real Xen.** virt-manager (through libvirt's libxl driver) and XenCenter / Xen
> Orchestra are the windows; underneath, each action is a libxl call —
> `libxl_domain_pause`, `libxl_domain_unpause`, `libxl_domain_destroy` — the same ones
> `xl pause`, `xl unpause` and `xl destroy` make. `xl top` (xentop) is the live table.

## Check yourself
"""),
        md("""
**Exercise 9.1.** Which `xl` command does the **Pause** button run?
"""),
        *exercise_cells("ex91", 'exercise("9.1")', '"b"',
                        setup="from xenlab.exercises import exercise"),
        md("""
**Exercise 9.2.** Create `pv-spin` again and pause it. Which letter does the State
column show?
"""),
        code("""
dash.config_path.value = "../../images/pv-spin.cfg"
dash.create_button.click()
dash.pause_button.click()
"""),
        *exercise_cells("ex92", 'exercise("9.2")', '"p"'),
        md("""
**Exercise 9.3 (hands-on).** Be the administrator. A fresh host has three guests, `web`,
`db` and `mail`, all created paused (`xl create -p`). Bring it to this state: `web`
running, `db` still paused, `mail` gone. The answer is the list of `xl` command lines you
would type in Dom0, in order (`"xl"` in front is optional), for example
`["list"]`. The check runs them and then reads `xl list`.
"""),
        *handson_cells("hx93", 'HandsOn("9.3: web running, db paused, mail gone", '
                       'check_xl_session)', HX93),
        md("""
## Summary

- Xen has no user interface; guests are managed from **Dom0**.
- A manager window is a front end: each button is one toolstack call (`xl pause`,
  `xl unpause`, `xl destroy`, `xl create`).
- Paused domains keep their state; destroyed domains are gone.
- `%xl` gives Dom0's shell inside a notebook.
"""),
    ]


# =====================================================================================
# 10 · Glossary
# =====================================================================================
GLOSSARY = [
    ("Dom0", "the first, privileged domain Xen starts at boot; it runs the toolstack and "
             "the backend drivers and manages the others", "00, 03"),
    ("DomU", "an unprivileged guest domain, created from Dom0 with `xl create`", "00, 03"),
    ("hypercall", "a guest's call into the hypervisor, as a system call is a program's call "
                  "into the kernel", "00, 04"),
    ("hypercall page", "a page Xen fills with one small stub per hypercall; guests call "
                       "through it instead of hard-coding `syscall` or `vmcall`", "04, 07"),
    ("event channel", "Xen's virtual interrupt: a port a domain can signal and another "
                      "receives as an upcall", "05"),
    ("grant table", "the table in which a domain grants another access to one of its "
                    "pages, by reference, so backends can read and write guest buffers",
     "05"),
    ("xenstore", "a small tree-shaped database in Dom0 through which domains publish and "
                 "find configuration (device paths, ring references, ports)", "03, 05"),
    ("XenbusState", "the state of one end of a split device in xenstore (Initialising, "
                    "InitWait, Initialised, Connected, Closing, Closed)", "05"),
    ("frontend", "the half of a split driver in the guest (blkfront, netfront)", "05"),
    ("backend", "the half of a split driver in Dom0 (or a driver domain) that talks to "
                "the real device (blkback, netback)", "05"),
    ("split driver", "a device driver cut in two, frontend in the guest, backend in Dom0, "
                     "joined by a shared ring, an event channel and grants", "05"),
    ("ring", "a circular buffer of requests and responses in a shared page, the "
             "transport between frontend and backend", "05"),
    ("PV", "paravirtualized: a guest whose kernel was changed to call Xen instead of "
           "touching the hardware", "04, 06"),
    ("HVM", "hardware virtual machine: an unmodified guest run with Intel VT-x or AMD-V, "
            "booted by firmware on an emulated PC", "06, 07"),
    ("PVH", "a PV-style kernel run inside the hardware container, with no BIOS and no "
            "device model (xenlab boots PVH GRUB: images/pvh-grub.cfg)", "08"),
    ("VM exit", "the processor leaving an HVM guest and entering Xen because the guest did "
                "something Xen must handle", "06"),
    ("ioreq", "a request from Xen to the device model to emulate one guest I/O access, "
              "with the answer written back in a shared page", "06, 07"),
    ("device model", "the process in Dom0 (QEMU on real Xen) that emulates an HVM guest's "
                     "PC devices: disk, VGA, serial, PCI", "06, 07"),
    ("hvmloader", "Xen's firmware that runs first in an HVM guest: finds Xen, sets up the "
                  "hypercall page and memory map, loads the BIOS", "07"),
    ("BIOS", "the PC firmware that tests and sets up the machine (POST), provides `int` "
             "services and loads the boot sector (`int 19h`)", "07"),
    ("SeaBIOS", "the open-source BIOS that Xen and QEMU use for HVM guests", "07"),
    ("E820", "the PC memory map (`int 15h`, AX=E820h) that tells the guest which "
             "physical addresses are RAM", "07"),
    ("start_info", "the page the domain builder hands a PV kernel at boot: its memory, "
                   "page tables, console and xenstore rings", "00, 04"),
    ("shared_info", "the page Xen and a domain share: event-channel pending bits, vCPU "
                    "info and the wall-clock time", "04, 05"),
    ("credit scheduler", "Xen's proportional-share vCPU scheduler (weights and caps); "
                         "credit2 has been the default since Xen 4.12", "02, 08"),
    ("virtual time", "the simulated clock xenlab runs on, so the same run gives the same "
                     "trace every time", "00, 06"),
]


def glossary_markdown() -> str:
    rows = "\n".join(f"| **{t}** | {d[0].upper() + d[1:]}. | {c} |" for t, d, c in GLOSSARY)
    return "| term | meaning | chapters |\n|---|---|---|\n" + rows


def chapter_10() -> list:
    return [
        md("""
# 10 · Glossary

**Learning goals**
- have one place to look up every term of the course;
- check that you can match a term to its meaning.

Each term has one sentence and the chapters that show it at work.
"""),
        md(glossary_markdown()),
        md("""
> **Real Xen.** The Xen Project wiki's glossary and `man xl`, `man xl.cfg` use the same
> words; the public headers under `xen/include/public/` define `start_info`,
> `shared_info`, event channels, grant tables and the ioreq page.

## Check yourself

The glossary is also in this notebook as data, so the quiz below can draw from it.
"""),
        code("""
from xenlab.exercises import exercise

GLOSSARY = """ + repr([(t, d) for t, d, _ in GLOSSARY]).replace("), (", "),\n    (") + """
print(len(GLOSSARY), "terms")
"""),
        md("""
**Exercise 10.1.** Which term does the seed's definition describe?
"""),
        *exercise_cells("ex101", 'exercise("10.1", glossary=GLOSSARY, seed=10)', "{ANSWER_101}"),
        md("""
**Exercise 10.2.** Which of these runs in Dom0 rather than in Xen or in the guest?
"""),
        *exercise_cells("ex102", 'exercise("10.2")', '"b"'),
        md("""
**Exercise 10.3 (hands-on).** Use a word of the glossary: make a **hypercall**. The PV
guest below is built from your lines; after them it powers off. Its data holds `msg`,
the text "Hello from my hypercall" and a newline, `msg_len` bytes long. Write the
hypercall that prints it on Xen's console (`xl dmesg`): `console_io` with the command
`CONSOLEIO_write` in `rdi`, the count in `rsi` and the buffer's address in `rdx`, then
`HYPERCALL __HYPERVISOR_console_io`. GNU assembler, AT&T syntax, 64-bit
(`lea msg(%rip), %rdx` takes the address of `msg`).
"""),
        *handson_cells("hx103", 'HandsOn("10.3: print \'Hello from my hypercall\' with a '
                       'console_io hypercall", check_pv_console)', HX103),
        md("""
## Summary

Twenty-six words carry the course: the domains (**Dom0**, **DomU**), the ways a guest
reaches Xen (**hypercall**, **VM exit**), the ways domains share (**event channel**,
**grant table**, **ring**, **xenstore**), the guest types (**PV**, **HVM**, **PVH**), and
the pieces that start an HVM guest (**hvmloader**, **BIOS**, **device model**).
"""),
    ]


def answer_101() -> str:
    """The literal answer stored in exercise 10.1 (same draw as in the notebook)."""
    import random

    rng = random.Random(10)
    pairs = [(t, d) for t, d, _ in GLOSSARY]
    term, _ = rng.choice(pairs)
    options = sorted(rng.sample([t for t, _ in pairs if t != term], 3) + [term])
    return "abcd"[options.index(term)]


def main() -> int:
    paths = [write("06-full-virtualization", chapter_06()),
             write("07-hvm-boot", chapter_07())]
    (LABS / "08-what-changed").mkdir(parents=True, exist_ok=True)
    (LABS / "08-what-changed" / "pvh-hello.cfg").unlink(missing_ok=True)
    paths.append(write("08-what-changed", chapter_08()))
    paths.append(write("09-the-manager", chapter_09()))
    cells = chapter_10()
    for c in cells:
        if c.cell_type == "code":
            c.source = c.source.replace("{ANSWER_101}", repr(answer_101()))
    paths.append(write("10-glossary", cells))
    for p in paths:
        print(p.relative_to(LABS.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
