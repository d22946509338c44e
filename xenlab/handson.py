"""Hands-on exercises: the student's code or config runs on a fresh emulated host.

Each ``check_*`` function takes what the student made (assembly lines, an xl.cfg,
``xl`` commands, a frontend step written in Python, a prediction), runs it on a fresh
``Lab`` and returns a ``Verdict``: ``ok`` and one line that says what the run showed
(``Correct: ...``, or ``Not yet: ...`` with a hint naming what happened, such as "the
guest crashed: ... [#13] ..."). A verdict displays as that line, so a notebook cell can
end with the call. Whatever the attempt, the checker never raises: an attempt that
breaks the checker (a Python error in the student's function, code the assembler
refuses) is one line too. An attempt still holding the placeholder (``None``, ``...``,
or only comments) gives ``Not answered yet:`` and the exercise's hint, so Run All works.

    check_boot_sector(code, expect="Hello")      chapter 07: a boot sector that prints
    check_cpuid_signature(code)                  chapter 08: a boot sector that finds Xen
    check_exit_prediction(code, predicted)       chapter 06: predict, then measure, VM exits
    check_pv_idle(code)                          chapter 04: idle the PV way (SCHEDOP_block)
    check_pv_console(code, expect)               chapter 10: a console_io hypercall
    check_xl_config(text)                        chapter 03: fix a broken xl.cfg
    check_credit_share(text)                     chapter 02: weights for a CPU share
    check_frontend_step(step)                    chapter 05: grant, event channel, xenstore
    check_xl_session(commands)                   chapter 09: reach a state with xl commands
    check_pte_update(code)                       chapter 11: one page-table update (mmu_update)

Every run is deterministic (virtual time), and every file it needs (configs, disk
images) lives in a scratch folder removed afterwards: no check changes the repository.

Real Xen: (none: teaching material, in the spirit of MIT 6.828's graded labs)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from xenlab.errors import AssemblyError, XenlabError
from xenlab.lab import Lab
from xenlab.labkit import assemble, build_pv_kernel

__all__ = [
    "BROKEN_CFG",
    "LIGHT_CFG",
    "FrontendStandIn",
    "HandsOn",
    "Verdict",
    "check_boot_sector",
    "check_cpuid_signature",
    "check_credit_share",
    "check_exit_prediction",
    "check_frontend_step",
    "check_pte_update",
    "check_pv_console",
    "check_pv_idle",
    "check_xl_config",
    "check_xl_session",
]

#: Virtual time an HVM boot-sector run gets (the BIOS jumps to 7C00 at about 4.8 ms).
BOOT_RUN_S = 0.05
#: Virtual time a PV run gets (the idle guest's timer fires at 5 ms).
PV_RUN_S = 0.05


@dataclass(frozen=True)
class Verdict:
    """What a hands-on check found: ``ok`` and the one line to show (its repr)."""

    ok: bool
    message: str
    answered: bool = True
    measured: dict[str, Any] = field(default_factory=dict, compare=False)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if not self.answered:
            return f"Not answered yet: {self.message}"
        return ("Correct: " if self.ok else "Not yet: ") + self.message

    __repr__ = __str__


def _right(message: str, **measured: Any) -> Verdict:
    return Verdict(True, message, measured=measured)


def _wrong(message: str, **measured: Any) -> Verdict:
    return Verdict(False, message, measured=measured)


def _unanswered(attempt: object) -> bool:
    """The placeholder: None, ..., or text with nothing but blanks and comments."""
    if attempt is None or attempt is ...:
        return True
    if isinstance(attempt, str):
        return all(not ln.strip() or ln.strip().startswith(("#", "//", "/*"))
                   for ln in attempt.splitlines())
    return False


def _guarded(hint: str) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Wrap a checker: the placeholder gives the hint; any failure is one line."""
    def wrap(check: Callable[..., Verdict]) -> Callable[..., Verdict]:
        def run(attempt: object = None, *args: Any, **kw: Any) -> Verdict:
            if _unanswered(attempt):
                return Verdict(False, hint, answered=False)
            try:
                return check(attempt, *args, **kw)
            except AssemblyError as err:
                return _wrong(f"the assembler refused your code: {err}")
            except XenlabError as err:
                return _wrong(f"{err}")
            except Exception as err:  # the student's attempt broke: one line, no traceback
                text = str(err).splitlines()[0] if str(err) else ""
                return _wrong(f"the attempt failed with {type(err).__name__}"
                              + (f": {text}" if text else ""))
        run.__name__ = check.__name__
        run.__qualname__ = check.__qualname__
        run.__doc__ = check.__doc__
        run.hint = hint  # type: ignore[attr-defined]
        return run
    return wrap


def _need_str(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise XenlabError(f"{what} must be a string (text in quotes), not "
                          f"{type(value).__name__}")
    return value


#: Kernels a student's config may name by file name alone: each check copies them into
#: its scratch folder, where xl looks first (``kernel = "pv-spin.elf"``).
KERNELS = ("pv-hello/pv-hello.elf", "pv-spin/pv-spin.elf")


@contextlib.contextmanager
def _scratch(kernels: bool = False) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="xenlab-handson-") as tmp:
        if kernels:
            for name in KERNELS:
                shutil.copyfile(Lab.image(name), os.path.join(tmp, os.path.basename(name)))
        yield tmp


def _create(lab: Lab, folder: str, name: str, text: str, options: str = "") -> str:
    """Write NAME.cfg into ``folder`` and ``xl create`` it from there (xl's messages then
    name only the file); xl's output."""
    with open(os.path.join(folder, f"{name}.cfg"), "w", encoding="utf-8") as f:
        f.write(text)
    here = os.getcwd()
    os.chdir(folder)
    try:
        return lab.xl_output(["create", *options.split(), f"{name}.cfg"])
    finally:
        os.chdir(here)


def _xl_error(output: str) -> str | None:
    for line in output.splitlines():
        if line.startswith("xl: error:") or "error" in line.lower().split(":")[0]:
            return line.removeprefix("xl: error: ")
    return None


def _short_path(message: str, folder: str) -> str:
    return message.replace(folder + os.sep, "")


def _crash_line(lab: Lab, domid: int) -> str | None:
    d = lab.host.domains.get(domid)
    if d is not None and d.is_crashed:
        return d.crash_reason or "crashed"
    return None


# ===================================================================== HVM boot sectors
HVM_CFG = """name = "{name}"
type = "hvm"
memory = 32
bios = "xenlab"
disk = [ 'format=raw, vdev=hda, access=ro, target=boot.img' ]
serial = "pty"
on_poweroff = "preserve"
on_crash = "preserve"
"""


@dataclass
class _BootRun:
    lab: Lab
    domid: int
    screen: str
    crash: str | None
    halted: bool
    exits: list[Any]      # vmexit records after the BIOS jumped to 0000:7C00
    e9: str               # what the boot sector wrote to port 0xE9
    size: int


def _boot(code: str, name: str = "boot") -> _BootRun:
    """Assemble 16-bit ``code`` at 0x7C00, sign it, boot it on the teaching BIOS."""
    code = _need_str("the code", code)
    binary = assemble(code, bits=16, org=0x7C00)
    if len(binary) > 510:
        raise XenlabError(f"your code assembles to {len(binary)} bytes; a boot sector "
                          "holds 510 before its 55AA signature")
    sector = binary.ljust(510, b"\0") + b"\x55\xaa"
    with _scratch() as tmp:
        with open(os.path.join(tmp, "boot.img"), "wb") as f:
            f.write(sector)
            f.truncate(1 << 20)
        lab = Lab()
        out = _create(lab, tmp, name, HVM_CFG.format(name=name))
        err = _xl_error(out)
        if err:
            raise XenlabError(f"xl create failed: {_short_path(err, tmp)}")
        domid = lab.domain(name).domid
        lab.run(max_seconds=BOOT_RUN_S)
    dm = lab.toolstack.device_models[domid]
    screen = dm.screen_text() if dm.vga is not None else ""
    recs = list(lab.trace.select(dom=domid))
    jump = max((r.seq for r in recs if r.kind == "phase" and "jump to 0000:7C00" in r.name),
               default=None)
    exits = [r for r in recs if jump is not None and r.seq > jump
             and (r.kind == "vmexit" or (r.kind == "sched" and r.name == "hlt"))]
    # the BIOS's own last exits: the newline that ended its "jump to 0000:7C00" line
    # on port 0xE9, and its copy on COM1
    for port in ("0xe9", "0x3f8"):
        if exits and exits[0].name == "io" and exits[0].args.get("port") == port \
                and exits[0].args.get("value") == "0xa":
            exits.pop(0)
    e9 = "".join(chr(int(r.args["value"], 16) & 0xFF) for r in exits
                 if r.name == "io" and r.args.get("port") == "0xe9"
                 and r.args.get("dir") == "out")
    d = lab.domain(domid)
    v = d.vcpus[0]
    halted = not d.is_crashed and v.runstate == 2  # RUNSTATE_blocked
    return _BootRun(lab, domid, screen, _crash_line(lab, domid), halted, exits, e9,
                    len(binary))


def _port_summary(exits: list[Any]) -> str:
    c = Counter((r.name, r.args.get("port", r.args.get("leaf", "")), r.args.get("dir", ""),
                 r.args.get("handler", "")) for r in exits)
    parts = []
    for (name, where, direction, handler), n in c.most_common(6):
        what = f"{direction} {where}" if name == "io" else f"{name} {where}".strip()
        parts.append(f"{n} x {what} ({handler or 'xen'})")
    return ", ".join(parts) if parts else "none"


def _screen_hint(run: _BootRun, expect: str) -> str:
    crash = (f" The guest crashed: {run.crash}. Did the CPU run past your last "
             "instruction into your data or the zeros after it? End with cli; hlt "
             "before any data.") if run.crash else ""
    if not run.screen.strip():
        ports = sorted({r.args.get("port") for r in run.exits if r.name == "io"} - {None})
        if run.e9 or ports:
            return (f"the screen stayed empty: your code wrote to port(s) {', '.join(ports)}"
                    " but never asked the BIOS to print. int $0x10 with AH = 0x0E prints "
                    "the character in AL (teletype)." + crash)
        return ("the screen stayed empty: print each character with int $0x10, "
                "AH = 0x0E, AL = the character." + crash)
    first = run.screen.strip().splitlines()[0]
    return f"the screen shows {first!r}, not {expect!r}." + crash


@_guarded("write 16-bit code that prints the text on the screen with int $0x10 "
          "(AH = 0x0E, AL = the character), then stops with cli; hlt.")
def check_boot_sector(code: str, expect: str = "Hello from my boot sector") -> Verdict:
    """Boot ``code`` as a boot sector; right when the screen shows ``expect``."""
    run = _boot(code)
    if expect in run.screen:
        tail = "" if run.halted else " (it did not halt: end with cli; hlt)"
        return _right(f"the BIOS loaded your {run.size}-byte boot sector at 0000:7C00 and the "
                      f"screen shows {expect!r}, with {len(run.exits)} VM exits from your "
                      f"code{tail}.", screen=run.screen, exits=len(run.exits))
    return _wrong(_screen_hint(run, expect), screen=run.screen, crash=run.crash)


XEN_SIGNATURE = "XenVMMXenVMM"


@_guarded("execute cpuid with EAX = 0x40000000; Xen answers with its signature in "
          "EBX, ECX, EDX (4 characters each, lowest byte first). Print those 12 "
          "characters with int $0x10 (AH = 0x0E), then cli; hlt.")
def check_cpuid_signature(code: str) -> Verdict:
    """A boot sector that asks CPUID leaf 0x40000000 and prints Xen's signature."""
    run = _boot(code, name="whoami")
    leaves = [r.args.get("leaf") for r in run.exits if r.name == "cpuid"]
    if XEN_SIGNATURE in run.screen:
        if "0x40000000" not in leaves:
            return _wrong("the screen shows the signature, but your code never asked CPUID "
                          "leaf 0x40000000: print what Xen answers, not a string you typed.")
        return _right("CPUID leaf 0x40000000 was a VM exit Xen answered itself, and your "
                      f"boot sector printed {XEN_SIGNATURE!r}: this guest knows it runs on "
                      "Xen, the first thing PV drivers in an HVM guest check.",
                      screen=run.screen)
    if "0x40000000" not in leaves:
        asked = ", ".join(sorted(set(leaves))) or "none"
        return _wrong(f"your code never asked CPUID leaf 0x40000000 (leaves asked: {asked})"
                      f". {_screen_hint(run, XEN_SIGNATURE)}", screen=run.screen)
    return _wrong("you asked leaf 0x40000000; " + _screen_hint(run, XEN_SIGNATURE) +
                  " Print EBX, then ECX, then EDX, lowest byte first (shr $8 between bytes).",
                  screen=run.screen)


def _number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value.strip().replace("_", ""), 0)
    return None


@_guarded("write your prediction (a whole number) before you run the code, then run "
          "the cell: the run counts every VM exit of the code after the BIOS jumps to it.")
def check_exit_prediction(predicted: object, code: str = "") -> Verdict:
    """Predict how many VM exits ``code`` makes (up to and with its final hlt); run it."""
    guess = _number(predicted)
    if guess is None:
        return _wrong(f"the prediction must be a whole number, not {predicted!r}")
    run = _boot(code, name="exits")
    n = len(run.exits)
    summary = _port_summary(run.exits)
    by = Counter(r.args.get("handler", "xen") for r in run.exits)
    who = f"{by.get('xen', 0)} handled by Xen, {by.get('dm', 0)} by the device model"
    if run.crash:
        return _wrong(f"the code crashed before it finished ({run.crash}); fix it first. "
                      f"Exits so far: {summary}.", exits=n)
    if guess == n:
        return _right(f"{n} VM exits ({who}): {summary}.", exits=n)
    off = "more" if n > guess else "fewer"
    return _wrong(f"you predicted {guess}; the run measured {n} ({off}): {summary}; {who}. "
                  "Which instructions of yours leave the guest?", exits=n)


# ===================================================================== PV guests
PV_CFG = """name = "{name}"
type = "pv"
kernel = "guest.elf"
memory = 16
on_poweroff = "preserve"
on_crash = "preserve"
"""

def _pv_entry(name: str) -> str:
    """The entry every hands-on PV guest starts with: the Xen ELF notes (guest name
    ``name``), ``_start`` in .text.head, and the boot stack."""
    return f"""
        .include "xenlab-guest.inc"
        XEN_ELF_NOTES "{name}"
        .section .text.head, "ax"
        .globl  _start
_start:
        lea     boot_stack_top(%rip), %rsp"""


#: The idle guest: binds VIRQ_TIMER, arms a timer 5 ms after boot, runs the student's
#: lines, then says it woke and powers off.
IDLE_DEADLINE_NS = 5_000_000
IDLE_GUEST = _pv_entry("xenlab-handson-idle") + f"""
        movl    $VIRQ_TIMER, bind_virq + evtchn_bind_virq_virq(%rip)
        movl    $0, bind_virq + evtchn_bind_virq_vcpu(%rip)
        mov     $EVTCHNOP_bind_virq, %edi
        lea     bind_virq(%rip), %rsi
        HYPERCALL __HYPERVISOR_event_channel_op
        mov     ${IDLE_DEADLINE_NS}, %rdi
        HYPERCALL __HYPERVISOR_set_timer_op
        PRINTLN "idle: nothing to do until my timer at 5 ms"
        .globl  student
student:
        .include "student.s"
        .globl  woke
woke:
        PRINTLN "idle: past the idle code"
        SHUTDOWN SHUTDOWN_poweroff
        .data
        .balign 8
bind_virq:
        .skip   16
"""

CONSOLE_GUEST = _pv_entry("xenlab-handson-console") + """
        .globl  student
student:
        .include "student.s"
        SHUTDOWN SHUTDOWN_poweroff
        .section .rodata
        .globl  msg
msg:    .ascii  "{text}\\n"
        .set    msg_len, . - msg
"""


@dataclass
class _PvRun:
    lab: Lab
    domid: int
    crash: str | None
    shut_down: bool
    running: bool
    hypercalls: list[Any]
    dmesg: list[str]
    cpu_ns: int


def _pv(template: str, code: str, name: str) -> _PvRun:
    code = _need_str("the code", code)
    elf = build_pv_kernel(template, code)
    with _scratch() as tmp:
        with open(os.path.join(tmp, "guest.elf"), "wb") as f:
            f.write(elf)
        lab = Lab()
        err = _xl_error(_create(lab, tmp, name, PV_CFG.format(name=name)))
        if err:
            raise XenlabError(f"xl create failed: {_short_path(err, tmp)}")
        domid = lab.domain(name).domid
        lab.run(max_seconds=PV_RUN_S)
    d = lab.domain(domid)
    calls = [r for r in lab.trace.select(dom=domid) if r.kind == "hypercall"]
    dmesg = [ln.removeprefix(f"(d{domid}) ") for ln in lab.xl_output("dmesg").splitlines()
             if ln.startswith(f"(d{domid}) ")]
    return _PvRun(lab, domid, _crash_line(lab, domid), bool(d.is_shut_down) and not
                  d.is_crashed, not d.is_shut_down, calls, dmesg, d.cpu_time)


def _cmd(r: Any) -> str:
    return str(r.args.get("cmd", ""))


@_guarded("after the timer is armed, the guest has nothing to do until the timer's "
          "event: give the CPU back to Xen with one sched_op hypercall (EDI = the "
          "command, ESI = its argument, then HYPERCALL __HYPERVISOR_sched_op). Which "
          "SCHEDOP_ command waits for an event?")
def check_pv_idle(code: str) -> Verdict:
    """A PV guest with a timer at 5 ms runs ``code`` to wait for it; right when it blocks."""
    run = _pv(IDLE_GUEST, code, "idler")
    sched = [r for r in run.hypercalls if r.name == "sched_op"]
    blocks = [r for r in sched if _cmd(r) in ("SCHEDOP_block", "SCHEDOP_poll")]
    yields = [r for r in sched if _cmd(r) == "SCHEDOP_yield"]
    cpu_ms = run.cpu_ns / 1e6
    if run.crash:
        why = run.crash
        extra = (" hlt is a privileged instruction: a PV kernel runs in ring 3 and Xen "
                 "answers #GP, so it crashes the guest. Ask Xen instead.") \
            if ("#GP" in why or "hlt" in why.lower()) else ""
        return _wrong(f"the guest crashed: {why}.{extra}", cpu_ms=cpu_ms)
    woke = any("past the idle code" in ln for ln in run.dmesg)
    if run.running:
        how = (f" It called sched_op(SCHEDOP_yield) {len(yields)} times: yield keeps the "
               "vCPU runnable, so it comes straight back.") if yields else \
            " It made no sched_op call: it spins."
        return _wrong(f"after {PV_RUN_S * 1000:.0f} ms the guest was still in your code, "
                      f"having used the CPU all along ({cpu_ms:.0f} ms).{how} Block until an event "
                      "instead, and let the timer's event end the wait.", cpu_ms=cpu_ms)
    if not woke:
        return _wrong("the guest stopped inside your code (it never reached the line after "
                      "it): do not shut it down, just wait.", cpu_ms=cpu_ms)
    if not blocks:
        return _wrong(f"your code returned at once, without waiting for the timer at "
                      f"{IDLE_DEADLINE_NS // 1_000_000} ms ({cpu_ms:.2f} ms of CPU, no "
                      "SCHEDOP_block): the guest never gave the CPU back.", cpu_ms=cpu_ms)
    return _right(f"sched_op({_cmd(blocks[0])}) blocked the vCPU until VIRQ_TIMER fired at "
                  f"{IDLE_DEADLINE_NS // 1_000_000} ms; it used {run.cpu_ns / 1000:.0f} us of "
                  "CPU in all. This is how a PV kernel idles.", cpu_ms=cpu_ms)


@_guarded("call HYPERVISOR_console_io(CONSOLEIO_write, count, buffer): EDI = "
          "CONSOLEIO_write, ESI = msg_len, RDX = the address of msg (lea msg(%rip), %rdx), "
          "then HYPERCALL __HYPERVISOR_console_io.")
def check_pv_console(code: str, expect: str = "Hello from my hypercall") -> Verdict:
    """A PV guest whose ``code`` must write ``msg`` (``expect``) to Xen's console."""
    if not re.fullmatch(r"[ -~]{1,60}", expect) or '"' in expect or "\\" in expect:
        raise XenlabError("the expected text must be 1-60 printable characters without "
                          "quotes or backslashes")
    run = _pv(CONSOLE_GUEST.format(text=expect), code, "talker")
    calls = [r for r in run.hypercalls if r.name == "console_io"]
    if any(expect == ln.rstrip() for ln in run.dmesg):
        return _right(f"Xen's console shows (d{run.domid}) {expect}: your console_io "
                      "hypercall (number 18) went through the hypercall page.")
    if run.crash:
        return _wrong(f"the guest crashed: {run.crash}.")
    if not calls:
        names = sorted({r.name for r in run.hypercalls} - {"sched_op"})
        return _wrong("your code made no console_io hypercall (number 18)"
                      + (f"; it made {', '.join(names)}" if names else "")
                      + ": HYPERCALL __HYPERVISOR_console_io.")
    bad = [r for r in calls if isinstance(r.ret, int) and r.ret < 0]
    if bad:
        return _wrong(f"console_io returned {bad[0].ret} ({bad[0].args}): check EDI (the "
                      "command), ESI (the count) and RDX (the buffer's address).")
    counts = [r.args.get("count") for r in calls]
    if len(expect) + 1 not in counts:
        return _wrong(f"console_io wrote {counts[0]} bytes; msg is {len(expect) + 1} bytes "
                      "with its newline (msg_len), and Xen prints a line only when it sees "
                      "the newline: ESI is the count.")
    shown = " / ".join(ln for ln in run.dmesg if ln.strip()) or "nothing"
    return _wrong(f"console_io ran, but Xen's console shows {shown!r}, not {expect!r}: "
                  "ESI is the number of bytes (msg_len), RDX where they are (msg).")


# ===================================================================== the PV MMU
#: Chapter 11's guest: it finds the L1 entry that maps its page ``scratch`` (walking its
#: page tables from start_info.pt_base through the M2P table, as pv-bench does) and the
#: machine frame of its page ``other``; the student's code must ask Xen to make
#: ``scratch`` map ``other``'s frame; then the guest reads ``scratch`` and says what it saw.
PTE_MARK_SCRATCH, PTE_MARK_OTHER = 0x5343524154434821, 0x5245485430544F21
PTE_GUEST = _pv_entry("xenlab-handson-pte") + f"""
        mov     %rsi, %rbx                      /* start_info */
        movabs  ${PTE_MARK_SCRATCH:#x}, %rax
        mov     %rax, scratch(%rip)
        movabs  ${PTE_MARK_OTHER:#x}, %rax
        mov     %rax, other(%rip)
        lea     other(%rip), %rdi
        call    l1e_of
        movabs  $0x000FFFFFFFFFF000, %rcx
        and     %rdx, %rcx
        shr     $12, %rcx
        push    %rcx                            /* other's machine frame */
        lea     scratch(%rip), %rdi
        call    l1e_of
        mov     %rax, %rsi                      /* RSI: the L1 entry's machine address */
        pop     %rcx                            /* RCX: other's mfn; RDX: the entry now */
        PRINTLN "pte: scratch's L1 entry found; your code runs"
        .globl  student
student:
        .include "student.s"
        .globl  after
after:
        mov     scratch(%rip), %rax
        movabs  ${PTE_MARK_OTHER:#x}, %rcx
        cmp     %rcx, %rax
        jne     1f
        PRINTLN "pte: scratch now shows other's page"
        SHUTDOWN SHUTDOWN_poweroff
1:      PRINTLN "pte: scratch still shows its own page"
        SHUTDOWN SHUTDOWN_poweroff

/* l1e_of: RDI = a VA of ours -> RAX = the machine address of its L1 entry, RDX = the
 * entry.  Each table's frame -> its pfn through the M2P table -> VIRT_BASE + pfn * 4096. */
l1e_of: push    %r15
        mov     start_info_pt_base(%rbx), %r15
        mov     $39, %ecx
        xor     %r11d, %r11d
1:      mov     %rdi, %rax
        shr     %cl, %rax
        and     $511, %eax
        lea     (%r15,%rax,8), %rsi
        mov     (%rsi), %rdx
        cmp     $12, %ecx
        je      2f
        movabs  $0x000FFFFFFFFFF000, %r11
        and     %rdx, %r11
        mov     %r11, %rdx
        shr     $12, %rdx
        movabs  $0xFFFF800000000000, %rax
        mov     (%rax,%rdx,8), %rdx
        shl     $12, %rdx
        lea     _text(%rip), %rax
        lea     (%rax,%rdx), %r15
        sub     $9, %ecx
        jmp     1b
2:      mov     %rsi, %rax
        sub     %r15, %rax
        add     %r11, %rax
        pop     %r15
        ret

        .data
        .balign 16
        .globl  mmu_req
mmu_req:        .quad   0, 0            /* struct mmu_update {{ uint64_t ptr, val; }} */
        .balign 4096
scratch:        .skip   4096
other:          .skip   4096
"""


@_guarded("ask Xen to rewrite scratch's L1 entry: one mmu_update whose request (a struct "
          "mmu_update { ptr; val; } in mmu_req) names the entry's machine address (RSI) "
          "and the new entry (built from other's frame, RCX).")
def check_pte_update(code: str) -> Verdict:
    """A PV guest whose ``code`` must have Xen point its page ``scratch`` at the frame
    of its page ``other`` with one mmu_update; right when reading scratch shows other."""
    run = _pv(PTE_GUEST, code, "mapper")
    calls = [r for r in run.hypercalls if r.name == "mmu_update"]
    if any("scratch now shows other's page" in ln for ln in run.dmesg):
        first = calls[0].args if calls else {}
        return _right(f"Xen validated your entry (ptr {first.get('ptr', '?')}, val "
                      f"{first.get('val', '?')}: a frame of the domain's, not a page table) "
                      "and wrote it: scratch now reads other's page. This is how a PV "
                      "kernel changes its page tables.")
    if run.crash:
        vals = [int(str(r.args.get("val", "0x1")), 16) for r in calls if r.ret == 0]
        if "#PF" in run.crash and vals and not vals[-1] & 1:
            return _wrong(f"Xen wrote your entry {vals[-1]:#x}, but its PRESENT bit (1) is "
                          "clear: scratch is no longer mapped, and reading it page-faulted "
                          f"({run.crash}).")
        return _wrong(f"the guest crashed: {run.crash}.")
    if not calls:
        names = sorted({r.name for r in run.hypercalls} - {"sched_op", "console_io"})
        return _wrong("your code made no mmu_update hypercall (number 1)"
                      + (f"; it made {', '.join(names)}" if names else "")
                      + ": HYPERCALL __HYPERVISOR_mmu_update.")
    refused = [r for r in calls if isinstance(r.ret, int) and r.ret < 0]
    if refused:
        r = refused[0]
        why = str(r.args.get("refused", ""))
        hint = " Check the four arguments: RDI = &mmu_req, RSI = 1, RDX = 0, R10 = DOMID_SELF."
        if "not a frame of the domain" in why:
            hint = (" ptr must be the machine address of the L1 entry (RSI when your code "
                    "starts), not a virtual address.")
        elif "frame not owned" in why:
            hint = " val must name other's machine frame: RCX << 12, plus the flag bits."
        elif "page-table page" in why:
            hint = " That frame is a page table: Xen never lets a guest map one writable."
        elif "reserved bits" in why:
            hint = " Only the low flag bits and the frame number may be set in val."
        return _wrong(f"mmu_update returned {r.ret} ({why or 'refused'}).{hint}")
    return _wrong("mmu_update succeeded, but scratch still shows its own page: val must "
                  "map other's frame (RCX << 12) with PRESENT (1); and ptr must be "
                  "scratch's L1 entry (RSI).")


# ===================================================================== xl configs
HELLO_LINE = "Hello from pv-hello"

#: Chapter 03's config to fix: four mistakes, each one xl or the run points at.
BROKEN_CFG = """name = "my-guest"
type = "hvm"
kernel = "pv-helo.elf"
memroy = 32
on_poweroff = "destroy"
"""


@_guarded("fix the config one error at a time: run the cell, read what xl says, "
          "change that line.")
def check_xl_config(text: str, name: str = "my-guest") -> Verdict:
    """``xl create`` the student's config (pv-hello); right when the guest boots, prints,
    powers off and is still listed (``on_poweroff = "preserve"``)."""
    text = _need_str("the config", text)
    with _scratch(kernels=True) as tmp:
        lab = Lab()
        out = _create(lab, tmp, name, text)
        err = _xl_error(out)
        if err:
            return _wrong(f"xl create refused it: {_short_path(err, tmp)}")
        names = {d.name: d for d in lab.host.domains.values() if d.domid}
        if name not in names:
            got = ", ".join(sorted(names)) or "none"
            return _wrong(f"xl created {got}, not a domain named {name!r}: the name line "
                          "decides what xl list shows.")
        domid = names[name].domid
        lab.run(max_seconds=PV_RUN_S)
    crash = _crash_line(lab, domid)
    if crash:
        return _wrong(f"the guest crashed: {crash}.")
    if domid in lab.toolstack.device_models:
        return _wrong("xl built an HVM guest (type = \"hvm\"): it boots firmware from a "
                      "disk and ignores kernel. pv-hello is a PV kernel.")
    if domid not in lab.host.domains:
        return _wrong("the guest ran and powered off, and xl list no longer shows it: "
                      "on_poweroff decides what happens then (destroy, restart, preserve).")
    console = lab.console(domid)
    if HELLO_LINE not in console:
        return _wrong("the guest never printed its greeting on its console: is the kernel "
                      "pv-hello's?")
    state = lab.xl_output(["list", name]).splitlines()[-1].split()[4]
    return _right(f"{name} booted, printed {HELLO_LINE!r}, powered off and stays listed "
                  f"in state {state}.")


#: The config of the guest ``heavy`` competes with (chapter 02 shows it to the student).
LIGHT_CFG = """name = "light"
type = "pv"
kernel = "pv-spin.elf"
memory = 16
weight = 256
on_poweroff = "preserve"
"""


@_guarded("write heavy's config: a copy of light's with its own name and a weight.")
def check_credit_share(text: str, at_least: int = 60) -> Verdict:
    """Two pv-spin guests on one CPU: right when ``heavy`` (the student's config) gets at
    least ``at_least`` % of the CPU the two used in the first 70 ms."""
    text = _need_str("the config", text)
    with _scratch(kernels=True) as tmp:
        lab = Lab(nr_cpus=1)
        out = _create(lab, tmp, "heavy", text)
        err = _xl_error(out)
        if err:
            return _wrong(f"xl create refused it: {_short_path(err, tmp)}")
        try:
            heavy = lab.domain("heavy")
        except XenlabError:
            return _wrong("there is no domain named 'heavy': set name = \"heavy\".")
        _create(lab, tmp, "light", LIGHT_CFG)
        light = lab.domain("light")
        lab.run(max_seconds=0.07)
    if heavy.is_crashed:
        return _wrong(f"heavy crashed: {heavy.crash_reason} (is its kernel pv-spin's?)")
    total = heavy.cpu_time + light.cpu_time
    share = round(100 * heavy.cpu_time / total) if total else 0
    measured = f"heavy (weight {heavy.weight}) got {share} % of the CPU, light (weight " \
               f"{light.weight}) {100 - share} %"
    if share >= at_least:
        return _right(f"{measured} in the first 70 ms.", share=share)
    return _wrong(f"{measured}; the goal is {at_least} %. The credit scheduler shares in "
                  "proportion to the weights: give heavy a larger weight than light's.",
                  share=share)


# ===================================================================== split drivers
FRONTEND_CFG = """name = "front"
type = "pv"
kernel = "{kernel}"
memory = 16
disk = [ 'format=raw, vdev=xvda, access=rw, target=disk.img' ]
on_poweroff = "preserve"
"""
XVDA = 51712
_FIRST_REF = 8   # refs 0-7 are reserved (GNTTAB_NR_RESERVED_ENTRIES), as in Linux


class FrontendStandIn:
    """The frontend's side of the blkif handshake, done in Python for a paused guest.

    What blkfront does with hypercalls, this does for the student's function:
    ``grant_access(domid, pfn, readonly=False)`` writes a v1 grant entry (returns the
    ref), ``alloc_unbound(remote_domid)`` is ``EVTCHNOP_alloc_unbound`` (returns the
    port), ``write(key, value)`` is the guest's xenstore write under its ``device/vbd``
    directory. ``ring_pfn`` is a free page of the guest for the ring."""

    def __init__(self, lab: Lab, domid: int) -> None:
        self._lab = lab
        self._d = lab.domain(domid)
        self.domid = domid
        self.backend_id = 0
        self.path = f"/local/domain/{domid}/device/vbd/{XVDA}"
        self.ring_pfn = self._d.tot_pages - 1
        self._next_ref = _FIRST_REF
        self.log: list[str] = []

    def grant_access(self, domid: int, pfn: int, readonly: bool = False) -> int:
        from xenlab.public import grant_table as G
        from xenlab.xen.grant_table import _entry_addr
        host = self._lab.host
        for what, value in (("domid", domid), ("pfn", pfn)):
            if _number(value) is None or isinstance(value, str):
                raise XenlabError(f"grant_access: {what} must be a whole number, not "
                                  f"{value!r}")
        mfn = self._d.pfn_to_mfn(pfn) if hasattr(self._d, "pfn_to_mfn") else \
            self._d.p2m[pfn] if 0 <= pfn < len(self._d.p2m) else None
        if mfn is None or not self._d.owns_mfn(mfn):
            raise XenlabError(f"grant_access: pfn {pfn} is not a page of this guest")
        gt = self._d.grant_table
        assert gt is not None
        if gt.nr_frames == 0:
            host.gnttab_grow(self._d, 1)
        ref = self._next_ref
        self._next_ref += 1
        addr = _entry_addr(self._d, ref)
        assert addr is not None
        flags = G.GTF_permit_access | (G.GTF_readonly if readonly else 0)
        # frame and domid first, flags last: the order a frontend must keep
        host.mem.write(addr + 2, struct.pack("<HI", domid & 0xFFFF, mfn))
        host.mem.write(addr, struct.pack("<H", flags))
        self.log.append(f"grant ref {ref}: d{domid} may use pfn {pfn:#x}"
                        + (" read-only" if readonly else ""))
        return ref

    def alloc_unbound(self, remote_domid: int) -> int:
        from xenlab.xen.event_channel import evtchn_alloc_unbound
        if _number(remote_domid) is None or isinstance(remote_domid, str):
            raise XenlabError(f"alloc_unbound: remote_domid must be a whole number, not "
                              f"{remote_domid!r}")
        port = evtchn_alloc_unbound(self._lab.host, self._d, self.domid, remote_domid)
        if port < 0:
            raise XenlabError(f"alloc_unbound({remote_domid}) failed: {port}")
        self.log.append(f"event channel port {port} for d{remote_domid}")
        return port

    def write(self, key: str, value: object) -> None:
        if not isinstance(key, str) or not key or "/" in key:
            raise XenlabError(f"write: the key is a node name such as 'ring-ref', not "
                              f"{key!r}")
        services = self._lab.toolstack.services
        services.xenstored.store.write(f"{self.path}/{key}", str(value), domid=self.domid)
        services.xenstored.flush()
        self.log.append(f"{key} = {value}")

    def read_backend(self, key: str) -> str | None:
        be = f"/local/domain/0/backend/vbd/{self.domid}/{XVDA}/{key}"
        return self._lab.toolstack.services.xenstored.store.read(be)


@_guarded("write a function answer(fe) that grants fe.ring_pfn to the backend, "
          "allocates an event channel for it, writes ring-ref, event-channel and "
          "finally state = 3 (Initialised).")
def check_frontend_step(step: Callable[[FrontendStandIn], object]) -> Verdict:
    """Run the student's ``step(fe)`` as the frontend of a paused PV guest with a disk;
    right when blkback maps the ring's grant, binds the channel and goes to Connected."""
    if not callable(step):
        return _wrong(f"the answer is a function answer(fe), not {type(step).__name__}")
    with _scratch() as tmp:
        with open(os.path.join(tmp, "disk.img"), "wb") as f:
            f.truncate(1 << 20)
        lab = Lab()
        kernel = Lab.image("pv-hello/pv-hello.elf")
        err = _xl_error(_create(lab, tmp, "front", FRONTEND_CFG.format(kernel=kernel), "-p"))
        if err:
            raise XenlabError(f"xl create failed: {_short_path(err, tmp)}")
        fe = FrontendStandIn(lab, lab.domain("front").domid)
        try:
            step(fe)
        except XenlabError as e:
            return _wrong(f"{e}")
        except Exception as e:
            text = str(e).splitlines()[0] if str(e) else ""
            return _wrong(f"your step raised {type(e).__name__}" + (f": {text}" if text
                                                                     else ""))
        state = fe.read_backend("state")
        error = fe.read_backend("error")
        did = "; ".join(fe.log) or "nothing"
        maps = [r for r in lab.trace.select(dom=0) if r.kind == "hypercall"
                and r.name == "grant_table_op"]
    if state == "4":
        return _right(f"blkback mapped your grant, bound your port and went to 4 "
                      f"(Connected). You did: {did}.", grant_maps=len(maps))
    if error:
        hint = ""
        if "permission_denied" in error and "read-only" in did:
            hint = " blkback maps the ring read-write: a read-only grant is refused."
        elif "permission_denied" in error:
            hint = (" The grant must name the domain that maps it: the backend's "
                    "(fe.backend_id), not the guest itself.")
        elif "bad_gntref" in error:
            hint = " ring-ref must be the ref grant_access returned."
        elif "reading ring-ref" in error:
            hint = (" blkback reads ring-ref and event-channel as soon as it sees state 3:"
                    " write them first, the state last.")
        elif "binding event channel" in error:
            hint = " The port must be allocated for the backend's domain (alloc_unbound(0))."
        return _wrong(f"blkback gave up with error {error!r} and went to state {state}."
                      f"{hint} You did: {did}.")
    return _wrong(f"blkback is still in state {state} (InitWait): it acts when the "
                  f"frontend's state node says 3 (Initialised). You did: {did}.")


# ===================================================================== the manager
SESSION_CFG = """name = "{name}"
type = "pv"
kernel = "{kernel}"
memory = 16
on_poweroff = "preserve"
"""


def _states(lab: Lab) -> dict[str, str]:
    rows = lab.xl_output("list").splitlines()[1:]
    return {r.split()[0]: r.split()[4] for r in rows if len(r.split()) >= 6}


@_guarded("a list of xl command lines such as [\"list\"], run in order: one command "
          "per goal that is not met yet.")
def check_xl_session(commands: object, goal: dict[str, str] | None = None) -> Verdict:
    """Three paused guests (web, db, mail); run the student's ``xl`` commands; right when
    ``xl list`` matches ``goal`` (name -> "running" / "paused" / "gone")."""
    goal = goal or {"web": "running", "db": "paused", "mail": "gone"}
    if isinstance(commands, str):
        commands = [commands]
    if not isinstance(commands, (list, tuple)) or not all(isinstance(c, str) for c in commands):
        return _wrong("the answer is a list of xl command lines (strings), such as "
                      "[\"pause web\"]")
    with _scratch() as tmp:
        lab = Lab()
        kernel = Lab.image("pv-spin/pv-spin.elf")
        for name in ("web", "db", "mail"):
            _create(lab, tmp, name, SESSION_CFG.format(name=name, kernel=kernel), "-p")
    for line in commands:
        words = line.split()
        if words[:1] == ["xl"]:
            words = words[1:]
        out = lab.xl_output(words or [""])
        err = _xl_error(out)
        if err:
            return _wrong(f"`xl {' '.join(words)}` failed: {err}")
    states = _states(lab)
    for name, want in goal.items():
        have = states.get(name)
        if want == "gone" and have is not None:
            return _wrong(f"{name} is still listed (state {have}); the goal is that it is "
                          "gone.")
        if want != "gone" and have is None:
            return _wrong(f"{name} is gone; the goal is {want}: a destroyed domain cannot "
                          "come back (xl create would build a new one).")
        if want == "paused" and have is not None and "p" not in have:
            return _wrong(f"{name} shows State {have}, not paused (p).")
        if want == "running" and have is not None and "p" in have:
            return _wrong(f"{name} shows State {have}: still paused.")
    summary = ", ".join(f"{n} {states.get(n, 'gone')}" for n in goal)
    return _right(f"xl list now shows {summary}.")


# ===================================================================== in a notebook
class HandsOn:
    """A hands-on exercise with the shape of ``xenlab.exercises``' (``show``, ``check``,
    ``correct``), so the notebooks' nbgrader cells (labs/_build/exercise_cells.py) take
    it as they take a question: ``check(answer)`` prints the verdict line and returns
    whether it is right; ``correct(answer)`` (the hidden test) reuses that run."""

    def __init__(self, task: str, check: Callable[..., Verdict], **kw: Any) -> None:
        self.task = task
        self._check = check
        self._kw = kw
        self._last: tuple[object, Verdict] | None = None

    def show(self) -> None:
        print(self.task)

    def verdict(self, answer: object) -> Verdict:
        if self._last is not None and self._last[0] is answer:
            return self._last[1]
        v = self._check(answer, **self._kw)
        self._last = (answer, v)
        return v

    def check(self, answer: object) -> bool:
        v = self.verdict(answer)
        print(v)
        return v.ok

    def correct(self, answer: object) -> bool:
        return self.verdict(answer).ok

    def __repr__(self) -> str:
        return f"HandsOn({self.task!r})"
