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
Every sentence is a ``tr`` message (``hx_...`` in xenlab.i18n), in the language set by
``set_language`` when the check runs; what Xen, xl and the assembler print stays as is.

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
import functools
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
from xenlab.i18n import tr
from xenlab.lab import Lab
from xenlab.labkit import assemble, boot_disk, build_pv_kernel

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
            return tr("hx_not_answered") + self.message
        return tr("hx_correct" if self.ok else "hx_not_yet") + self.message

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


def _raised(err: BaseException) -> str:
    """An exception as one line: its type, and the first line of its text if any."""
    text = str(err).splitlines()[0] if str(err) else ""
    return type(err).__name__ + (f": {text}" if text else "")


class _Guarded:
    """A checker behind ``_guarded``: called like the check; ``hint`` is the placeholder's
    hint in the current language (looked up when read, as every verdict's text is)."""

    def __init__(self, check: Callable[..., Verdict], hint_key: str, **values: Any) -> None:
        functools.update_wrapper(self, check)
        self._check = check
        self._hint_key = hint_key
        self._hint_values = values

    @property
    def hint(self) -> str:
        return tr(self._hint_key, **self._hint_values)

    def __call__(self, attempt: object = None, *args: Any, **kw: Any) -> Verdict:
        if _unanswered(attempt):
            return Verdict(False, self.hint, answered=False)
        try:
            return self._check(attempt, *args, **kw)
        except AssemblyError as err:
            return _wrong(tr("hx_assembler_refused", error=err))
        except XenlabError as err:
            return _wrong(f"{err}")
        except Exception as err:  # the student's attempt broke: one line, no traceback
            return _wrong(tr("hx_attempt_failed", error=_raised(err)))

    def __repr__(self) -> str:
        return f"<hands-on check {self._check.__name__}>"


def _guarded(hint_key: str, **values: Any) -> Callable[[Callable[..., Verdict]], _Guarded]:
    """Wrap a checker: the placeholder gives the hint (the message ``hint_key``, filled in
    with ``values``); any failure is one line."""
    def wrap(check: Callable[..., Verdict]) -> _Guarded:
        return _Guarded(check, hint_key, **values)
    return wrap


def _need_str(what: str, value: object) -> str:
    """``value`` if it is a string; ``what`` is the message key naming it ("the code")."""
    if not isinstance(value, str):
        raise XenlabError(tr("hx_need_str", what=tr(what), type=type(value).__name__))
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
        return d.crash_reason or tr("hx_crashed")
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
    code = _need_str("hx_the_code", code)
    binary = assemble(code, bits=16, org=0x7C00)
    if len(binary) > 510:
        raise XenlabError(tr("hx_boot_too_big", size=len(binary)))
    with _scratch() as tmp:
        with open(os.path.join(tmp, "boot.img"), "wb") as f:
            f.write(boot_disk(binary))
        lab = Lab()
        out = _create(lab, tmp, name, HVM_CFG.format(name=name))
        err = _xl_error(out)
        if err:
            raise XenlabError(tr("hx_create_failed", error=_short_path(err, tmp)))
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
    return ", ".join(parts) if parts else tr("hx_no_exits")


def _screen_hint(run: _BootRun, expect: str) -> str:
    crash = tr("hx_screen_crashed", crash=run.crash) if run.crash else ""
    if not run.screen.strip():
        ports = sorted({r.args.get("port") for r in run.exits if r.name == "io"} - {None})
        if run.e9 or ports:
            return tr("hx_screen_empty_ports", ports=", ".join(ports)) + crash
        return tr("hx_screen_empty") + crash
    first = run.screen.strip().splitlines()[0]
    return tr("hx_screen_shows", shown=repr(first), expect=repr(expect)) + crash


@_guarded("hx_boot_hint")
def check_boot_sector(code: str, expect: str = "Hello from my boot sector") -> Verdict:
    """Boot ``code`` as a boot sector; right when the screen shows ``expect``."""
    run = _boot(code)
    if expect in run.screen:
        tail = "" if run.halted else tr("hx_boot_no_halt")
        return _right(tr("hx_boot_right", size=run.size, expect=repr(expect),
                         exits=len(run.exits), tail=tail),
                      screen=run.screen, exits=len(run.exits))
    return _wrong(_screen_hint(run, expect), screen=run.screen, crash=run.crash)


XEN_SIGNATURE = "XenVMMXenVMM"


@_guarded("hx_cpuid_hint")
def check_cpuid_signature(code: str) -> Verdict:
    """A boot sector that asks CPUID leaf 0x40000000 and prints Xen's signature."""
    run = _boot(code, name="whoami")
    leaves = [r.args.get("leaf") for r in run.exits if r.name == "cpuid"]
    if XEN_SIGNATURE in run.screen:
        if "0x40000000" not in leaves:
            return _wrong(tr("hx_cpuid_typed"))
        return _right(tr("hx_cpuid_right", signature=repr(XEN_SIGNATURE)), screen=run.screen)
    if "0x40000000" not in leaves:
        asked = ", ".join(sorted(set(leaves))) or tr("hx_no_leaves")
        return _wrong(tr("hx_cpuid_never_asked", asked=asked,
                         screen=_screen_hint(run, XEN_SIGNATURE)), screen=run.screen)
    return _wrong(tr("hx_cpuid_asked", screen=_screen_hint(run, XEN_SIGNATURE)),
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


@_guarded("hx_exits_hint")
def check_exit_prediction(predicted: object, code: str = "") -> Verdict:
    """Predict how many VM exits ``code`` makes (up to and with its final hlt); run it."""
    guess = _number(predicted)
    if guess is None:
        return _wrong(tr("hx_exits_not_whole", given=repr(predicted)))
    run = _boot(code, name="exits")
    n = len(run.exits)
    summary = _port_summary(run.exits)
    by = Counter(r.args.get("handler", "xen") for r in run.exits)
    # Xen's null handler (a port nobody claimed) is Xen's too
    who = tr("hx_exits_who", xen=by.get("xen", 0) + by.get("null", 0), dm=by.get("dm", 0))
    if run.crash:
        return _wrong(tr("hx_exits_crashed", crash=run.crash, summary=summary), exits=n)
    if guess == n:
        return _right(tr("hx_exits_right", n=n, who=who, summary=summary), exits=n)
    off = tr("hx_more") if n > guess else tr("hx_fewer")
    return _wrong(tr("hx_exits_wrong", guess=guess, n=n, off=off, summary=summary, who=who),
                  exits=n)


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
    code = _need_str("hx_the_code", code)
    elf = build_pv_kernel(template, code)
    with _scratch() as tmp:
        with open(os.path.join(tmp, "guest.elf"), "wb") as f:
            f.write(elf)
        lab = Lab()
        err = _xl_error(_create(lab, tmp, name, PV_CFG.format(name=name)))
        if err:
            raise XenlabError(tr("hx_create_failed", error=_short_path(err, tmp)))
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


@_guarded("hx_idle_hint")
def check_pv_idle(code: str) -> Verdict:
    """A PV guest with a timer at 5 ms runs ``code`` to wait for it; right when it blocks."""
    run = _pv(IDLE_GUEST, code, "idler")
    sched = [r for r in run.hypercalls if r.name == "sched_op"]
    blocks = [r for r in sched if _cmd(r) in ("SCHEDOP_block", "SCHEDOP_poll")]
    yields = [r for r in sched if _cmd(r) == "SCHEDOP_yield"]
    cpu_ms = run.cpu_ns / 1e6
    deadline_ms = IDLE_DEADLINE_NS // 1_000_000
    if run.crash:
        why = run.crash
        extra = tr("hx_idle_hlt") if ("#GP" in why or "hlt" in why.lower()) else ""
        return _wrong(tr("hx_guest_crashed", crash=why) + extra, cpu_ms=cpu_ms)
    woke = any("past the idle code" in ln for ln in run.dmesg)
    if run.running:
        how = tr("hx_idle_yields", count=len(yields)) if yields else tr("hx_idle_spins")
        return _wrong(tr("hx_idle_running", run_ms=f"{PV_RUN_S * 1000:.0f}",
                         cpu_ms=f"{cpu_ms:.0f}", how=how), cpu_ms=cpu_ms)
    if not woke:
        return _wrong(tr("hx_idle_stopped"), cpu_ms=cpu_ms)
    if not blocks:
        return _wrong(tr("hx_idle_at_once", deadline_ms=deadline_ms, cpu_ms=f"{cpu_ms:.2f}"),
                      cpu_ms=cpu_ms)
    return _right(tr("hx_idle_right", command=_cmd(blocks[0]), deadline_ms=deadline_ms,
                     cpu_us=f"{run.cpu_ns / 1000:.0f}"), cpu_ms=cpu_ms)


def _made(names: list[str]) -> str:
    """"; it made sched_op, ..." naming the hypercalls a guest made instead (or "")."""
    return tr("hx_it_made", names=", ".join(names)) if names else ""


@_guarded("hx_console_hint")
def check_pv_console(code: str, expect: str = "Hello from my hypercall") -> Verdict:
    """A PV guest whose ``code`` must write ``msg`` (``expect``) to Xen's console."""
    if not re.fullmatch(r"[ -~]{1,60}", expect) or '"' in expect or "\\" in expect:
        raise XenlabError(tr("hx_console_bad_expect"))
    run = _pv(CONSOLE_GUEST.format(text=expect), code, "talker")
    calls = [r for r in run.hypercalls if r.name == "console_io"]
    if any(expect == ln.rstrip() for ln in run.dmesg):
        return _right(tr("hx_console_right", line=f"(d{run.domid}) {expect}"))
    if run.crash:
        return _wrong(tr("hx_guest_crashed", crash=run.crash))
    if not calls:
        names = sorted({r.name for r in run.hypercalls} - {"sched_op"})
        return _wrong(tr("hx_console_none", made=_made(names)))
    bad = [r for r in calls if isinstance(r.ret, int) and r.ret < 0]
    if bad:
        return _wrong(tr("hx_console_returned", ret=bad[0].ret, args=bad[0].args))
    counts = [r.args.get("count") for r in calls]
    if len(expect) + 1 not in counts:
        return _wrong(tr("hx_console_count", count=counts[0], size=len(expect) + 1))
    shown = " / ".join(ln for ln in run.dmesg if ln.strip()) or tr("hx_nothing")
    return _wrong(tr("hx_console_shows", shown=repr(shown), expect=repr(expect)))


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


@_guarded("hx_pte_hint", fields="{ ptr; val; }")
def check_pte_update(code: str) -> Verdict:
    """A PV guest whose ``code`` must have Xen point its page ``scratch`` at the frame
    of its page ``other`` with one mmu_update; right when reading scratch shows other."""
    run = _pv(PTE_GUEST, code, "mapper")
    calls = [r for r in run.hypercalls if r.name == "mmu_update"]
    if any("scratch now shows other's page" in ln for ln in run.dmesg):
        first = calls[0].args if calls else {}
        return _right(tr("hx_pte_right", ptr=first.get("ptr", "?"), val=first.get("val", "?")))
    if run.crash:
        vals = [int(str(r.args.get("val", "0x1")), 16) for r in calls if r.ret == 0]
        if "#PF" in run.crash and vals and not vals[-1] & 1:
            return _wrong(tr("hx_pte_not_present", val=f"{vals[-1]:#x}", crash=run.crash))
        return _wrong(tr("hx_guest_crashed", crash=run.crash))
    if not calls:
        names = sorted({r.name for r in run.hypercalls} - {"sched_op", "console_io"})
        return _wrong(tr("hx_pte_none", made=_made(names)))
    refused = [r for r in calls if isinstance(r.ret, int) and r.ret < 0]
    if refused:
        r = refused[0]
        why = str(r.args.get("refused", ""))
        hint = tr("hx_pte_check_args")
        if "not a frame of the domain" in why:
            hint = tr("hx_pte_virtual_ptr")
        elif "frame not owned" in why:
            hint = tr("hx_pte_not_owned")
        elif "page-table page" in why:
            hint = tr("hx_pte_page_table")
        elif "reserved bits" in why:
            hint = tr("hx_pte_reserved_bits")
        return _wrong(tr("hx_pte_returned", ret=r.ret, why=why or tr("hx_refused"), hint=hint))
    return _wrong(tr("hx_pte_unchanged"))


# ===================================================================== xl configs
HELLO_LINE = "Hello from pv-hello"

#: Chapter 03's config to fix: four mistakes, each one xl or the run points at.
BROKEN_CFG = """name = "my-guest"
type = "hvm"
kernel = "pv-helo.elf"
memroy = 32
on_poweroff = "destroy"
"""


@_guarded("hx_config_hint")
def check_xl_config(text: str, name: str = "my-guest") -> Verdict:
    """``xl create`` the student's config (pv-hello); right when the guest boots, prints,
    powers off and is still listed (``on_poweroff = "preserve"``)."""
    text = _need_str("hx_the_config", text)
    with _scratch(kernels=True) as tmp:
        lab = Lab()
        out = _create(lab, tmp, name, text)
        err = _xl_error(out)
        if err:
            return _wrong(tr("hx_xl_refused", error=_short_path(err, tmp)))
        names = {d.name: d for d in lab.host.domains.values() if d.domid}
        if name not in names:
            got = ", ".join(sorted(names)) or tr("hx_no_domains")
            return _wrong(tr("hx_config_other_name", got=got, name=repr(name)))
        domid = names[name].domid
        lab.run(max_seconds=PV_RUN_S)
    crash = _crash_line(lab, domid)
    if crash:
        return _wrong(tr("hx_guest_crashed", crash=crash))
    if domid in lab.toolstack.device_models:
        return _wrong(tr("hx_config_hvm"))
    if domid not in lab.host.domains:
        return _wrong(tr("hx_config_gone"))
    console = lab.console(domid)
    if HELLO_LINE not in console:
        return _wrong(tr("hx_config_no_greeting"))
    state = lab.xl_output(["list", name]).splitlines()[-1].split()[4]
    return _right(tr("hx_config_right", name=name, line=repr(HELLO_LINE), state=state))


#: The config of the guest ``heavy`` competes with (chapter 02 shows it to the student).
LIGHT_CFG = """name = "light"
type = "pv"
kernel = "pv-spin.elf"
memory = 16
weight = 256
on_poweroff = "preserve"
"""


@_guarded("hx_credit_hint")
def check_credit_share(text: str, at_least: int = 60) -> Verdict:
    """Two pv-spin guests on one CPU: right when ``heavy`` (the student's config) gets at
    least ``at_least`` % of the CPU the two used in the first 70 ms."""
    text = _need_str("hx_the_config", text)
    with _scratch(kernels=True) as tmp:
        lab = Lab(nr_cpus=1)
        out = _create(lab, tmp, "heavy", text)
        err = _xl_error(out)
        if err:
            return _wrong(tr("hx_xl_refused", error=_short_path(err, tmp)))
        try:
            heavy = lab.domain("heavy")
        except XenlabError:
            return _wrong(tr("hx_credit_no_heavy"))
        _create(lab, tmp, "light", LIGHT_CFG)
        light = lab.domain("light")
        lab.run(max_seconds=0.07)
    if heavy.is_crashed:
        return _wrong(tr("hx_credit_crashed", crash=heavy.crash_reason))
    total = heavy.cpu_time + light.cpu_time
    share = round(100 * heavy.cpu_time / total) if total else 0
    measured = tr("hx_credit_measured", weight=heavy.weight, share=share,
                  light_weight=light.weight, light_share=100 - share)
    if share >= at_least:
        return _right(tr("hx_credit_right", measured=measured), share=share)
    return _wrong(tr("hx_credit_wrong", measured=measured, goal=at_least), share=share)


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
        self._read_only_grants = 0

    def grant_access(self, domid: int, pfn: int, readonly: bool = False) -> int:
        from xenlab.public import grant_table as G
        from xenlab.xen.grant_table import _entry_addr
        host = self._lab.host
        for what, value in (("domid", domid), ("pfn", pfn)):
            if _number(value) is None or isinstance(value, str):
                raise XenlabError(tr("hx_fe_not_whole", call="grant_access", what=what,
                                     given=repr(value)))
        mfn = self._d.pfn_to_mfn(pfn) if hasattr(self._d, "pfn_to_mfn") else \
            self._d.p2m[pfn] if 0 <= pfn < len(self._d.p2m) else None
        if mfn is None or not self._d.owns_mfn(mfn):
            raise XenlabError(tr("hx_fe_not_a_page", pfn=pfn))
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
        self._read_only_grants += bool(readonly)
        self.log.append(tr("hx_fe_log_grant", ref=ref, domid=domid, pfn=f"{pfn:#x}",
                           read_only=tr("hx_fe_read_only") if readonly else ""))
        return ref

    def alloc_unbound(self, remote_domid: int) -> int:
        from xenlab.xen.event_channel import evtchn_alloc_unbound
        if _number(remote_domid) is None or isinstance(remote_domid, str):
            raise XenlabError(tr("hx_fe_not_whole", call="alloc_unbound",
                                 what="remote_domid", given=repr(remote_domid)))
        port = evtchn_alloc_unbound(self._lab.host, self._d, self.domid, remote_domid)
        if port < 0:
            raise XenlabError(tr("hx_fe_alloc_failed", domid=remote_domid, error=port))
        self.log.append(tr("hx_fe_log_port", port=port, domid=remote_domid))
        return port

    def write(self, key: str, value: object) -> None:
        if not isinstance(key, str) or not key or "/" in key:
            raise XenlabError(tr("hx_fe_bad_key", given=repr(key)))
        services = self._lab.toolstack.services
        services.xenstored.store.write(f"{self.path}/{key}", str(value), domid=self.domid)
        services.xenstored.flush()
        self.log.append(f"{key} = {value}")

    def read_backend(self, key: str) -> str | None:
        be = f"/local/domain/0/backend/vbd/{self.domid}/{XVDA}/{key}"
        return self._lab.toolstack.services.xenstored.store.read(be)


@_guarded("hx_fe_hint")
def check_frontend_step(step: Callable[[FrontendStandIn], object]) -> Verdict:
    """Run the student's ``step(fe)`` as the frontend of a paused PV guest with a disk;
    right when blkback maps the ring's grant, binds the channel and goes to Connected."""
    if not callable(step):
        return _wrong(tr("hx_fe_not_function", type=type(step).__name__))
    with _scratch() as tmp:
        with open(os.path.join(tmp, "disk.img"), "wb") as f:
            f.truncate(1 << 20)
        lab = Lab()
        kernel = Lab.image("pv-hello/pv-hello.elf")
        err = _xl_error(_create(lab, tmp, "front", FRONTEND_CFG.format(kernel=kernel), "-p"))
        if err:
            raise XenlabError(tr("hx_create_failed", error=_short_path(err, tmp)))
        fe = FrontendStandIn(lab, lab.domain("front").domid)
        try:
            step(fe)
        except XenlabError as e:
            return _wrong(f"{e}")
        except Exception as e:
            return _wrong(tr("hx_fe_raised", error=_raised(e)))
        state = fe.read_backend("state")
        error = fe.read_backend("error")
        did = "; ".join(fe.log) or tr("hx_nothing")
        maps = [r for r in lab.trace.select(dom=0) if r.kind == "hypercall"
                and r.name == "grant_table_op"]
    if state == "4":
        return _right(tr("hx_fe_right", did=did), grant_maps=len(maps))
    if error:
        hint = ""
        if "permission_denied" in error and fe._read_only_grants:
            hint = tr("hx_fe_read_only_refused")
        elif "permission_denied" in error:
            hint = tr("hx_fe_wrong_domain")
        elif "bad_gntref" in error:
            hint = tr("hx_fe_bad_ref")
        elif "reading ring-ref" in error:
            hint = tr("hx_fe_state_last")
        elif "binding event channel" in error:
            hint = tr("hx_fe_port_domain")
        return _wrong(tr("hx_fe_gave_up", error=repr(error), state=state, hint=hint, did=did))
    return _wrong(tr("hx_fe_waiting", state=state, did=did))


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


@_guarded("hx_session_hint")
def check_xl_session(commands: object, goal: dict[str, str] | None = None) -> Verdict:
    """Three paused guests (web, db, mail); run the student's ``xl`` commands; right when
    ``xl list`` matches ``goal`` (name -> "running" / "paused" / "gone")."""
    goal = goal or {"web": "running", "db": "paused", "mail": "gone"}
    if isinstance(commands, str):
        commands = [commands]
    if not isinstance(commands, (list, tuple)) or not all(isinstance(c, str) for c in commands):
        return _wrong(tr("hx_session_not_a_list"))
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
            return _wrong(tr("hx_session_failed", command=" ".join(words), error=err))
    states = _states(lab)
    goals = {"running": tr("hx_goal_running"), "paused": tr("hx_goal_paused")}
    for name, want in goal.items():
        have = states.get(name)
        if want == "gone" and have is not None:
            return _wrong(tr("hx_session_still_listed", name=name, state=have))
        if want != "gone" and have is None:
            return _wrong(tr("hx_session_gone", name=name, goal=goals.get(want, want)))
        if want == "paused" and have is not None and "p" not in have:
            return _wrong(tr("hx_session_not_paused", name=name, state=have))
        if want == "running" and have is not None and "p" in have:
            return _wrong(tr("hx_session_still_paused", name=name, state=have))
    gone = tr("hx_gone")
    summary = ", ".join(f"{n} {states.get(n, gone)}" for n in goal)
    return _right(tr("hx_session_right", summary=summary))


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
