"""xenlab.handson: each hands-on checker with a right attempt and wrong ones, each wrong
one checked for its own hint (what the run showed), never a traceback."""

from __future__ import annotations

import pytest

from xenlab import handson as H
from xenlab.lab import Lab
from xenlab.labkit import assemble, boot_disk, have_binutils

needs_binutils = pytest.mark.skipif(not have_binutils(), reason="needs as/ld/objcopy "
                                    "(Debian: binutils)")

HELLO = r"""
        mov     $msg, %si
1:      lodsb
        test    %al, %al
        jz      2f
        mov     $0x0e, %ah
        int     $0x10
        jmp     1b
2:      cli
        hlt
msg:    .asciz  "Hello from my boot sector"
"""

WHOAMI = r"""
        mov     $0x40000000, %eax
        cpuid
        push    %edx
        push    %ecx
        mov     %ebx, %esi
        call    put4
        pop     %esi
        call    put4
        pop     %esi
        call    put4
        cli
        hlt
put4:   mov     $4, %cx
1:      mov     %si, %ax
        mov     $0x0e, %ah
        push    %cx
        int     $0x10
        pop     %cx
        shr     $8, %esi
        loop    1b
        ret
"""

BLOCK = "mov $SCHEDOP_block, %edi\nxor %esi, %esi\nHYPERCALL __HYPERVISOR_sched_op"
YIELD = ("1: mov $SCHEDOP_yield, %edi\nxor %esi, %esi\n"
         "HYPERCALL __HYPERVISOR_sched_op\njmp 1b")
CONSOLE = ("mov $CONSOLEIO_write, %edi\nmov $msg_len, %esi\nlea msg(%rip), %rdx\n"
           "HYPERCALL __HYPERVISOR_console_io")


def text(v: H.Verdict) -> str:
    assert isinstance(v, H.Verdict)
    return str(v)


@pytest.mark.parametrize("placeholder", [None, ..., "", "# your code here\n", "   "])
def test_placeholder_is_not_answered_yet_with_the_hint(placeholder: object) -> None:
    v = H.check_boot_sector(placeholder)
    assert not v and not v.answered
    assert text(v).startswith("Not answered yet: ") and "int $0x10" in text(v)
    assert str(H.check_xl_session(placeholder)).startswith("Not answered yet: ")


# ---------------------------------------------------------------- assembling
@needs_binutils
def test_assemble_reports_the_students_line() -> None:
    assert assemble("mov $0x0e41, %ax\nint $0x10") == bytes.fromhex("b8410ecd10")
    with pytest.raises(H.AssemblyError, match=r"^line 2: no such instruction: `hltt'"):
        assemble("cli\nhltt")


@needs_binutils
def test_assembler_warnings_are_errors_not_silently_different_code() -> None:
    """`inb $0x1f7` has no 8-bit form: GNU as warns and reads port 0xf7; a student must
    hear it, not watch the wrong port in the trace."""
    with pytest.raises(H.AssemblyError, match=r"^line 2: 0x1f7 shortened to 0xf7"):
        assemble("nop\ninb $0x1f7, %al")
    v = H.check_exit_prediction(2, "inb $0x1f7, %al\ncli\nhlt")
    assert not v.ok and "line 1: 0x1f7 shortened to 0xf7" in text(v)


def test_assemble_refuses_a_non_string() -> None:
    with pytest.raises(H.AssemblyError, match="must be a string"):
        assemble(42)  # type: ignore[arg-type]


def test_boot_disk_signs_sector_0() -> None:
    disk = boot_disk(b"\xf4")
    assert len(disk) == 1 << 20 and disk[0] == 0xF4 and disk[510:512] == b"\x55\xaa"
    assert disk[1:510] == bytes(509) and disk[512:] == bytes(len(disk) - 512)
    with pytest.raises(H.AssemblyError, match="510 bytes"):
        boot_disk(bytes(511))


# ---------------------------------------------------------------- chapter 07
@needs_binutils
def test_boot_sector_that_prints_is_right() -> None:
    v = H.check_boot_sector(HELLO)
    assert v.ok, text(v)
    assert "'Hello from my boot sector'" in text(v)


@needs_binutils
@pytest.mark.parametrize(("code", "hint"), [
    ("movv %ax, %bx", "the assembler refused your code: line 1: no such instruction"),
    ("mov $0x0e48, %ax\nint $0x10\ncli\nhlt", "the screen shows 'H', not"),
    ("mov $0x48, %al\nout %al, $0xe9\ncli\nhlt",
     "the screen stayed empty: your code wrote to port(s) 0xe9 but never asked"),
    ("cli\nhlt", "the screen stayed empty: print each character with int $0x10"),
    ("mov $0x0e48, %ax\nint $0x10", "The guest crashed: Unhandled invalid opcode"),
    (".fill 600, 1, 0x90", "assembles to 600 bytes; a boot sector holds 510"),
])
def test_boot_sector_wrong_attempts_get_their_hint(code: str, hint: str) -> None:
    v = H.check_boot_sector(code)
    assert not v.ok and v.answered
    assert hint in text(v)


# ---------------------------------------------------------------- chapter 08
@needs_binutils
def test_cpuid_signature() -> None:
    assert H.check_cpuid_signature(WHOAMI).ok
    typed = HELLO.replace("Hello from my boot sector", "XenVMMXenVMM")
    assert "never asked CPUID leaf 0x40000000: print what Xen answers" in \
        text(H.check_cpuid_signature(typed))
    assert "never asked CPUID leaf 0x40000000 (leaves asked: none)" in \
        text(H.check_cpuid_signature("cli\nhlt"))
    clobbered = WHOAMI.replace("push    %edx\n        push    %ecx\n", "").replace(
        "pop     %esi", "mov     %ecx, %esi", 1).replace("pop     %esi", "mov     %edx, %esi")
    assert "you asked leaf 0x40000000; the screen shows 'XenV" in \
        text(H.check_cpuid_signature(clobbered))


# ---------------------------------------------------------------- chapter 06
@needs_binutils
def test_exit_prediction_counts_the_students_exits_only() -> None:
    code = "mov $0x48, %al\nout %al, $0xe9\nout %al, $0xe9\ncli\nhlt"
    v = H.check_exit_prediction(3, code)
    assert v.ok and v.measured["exits"] == 3
    assert "2 x out 0xe9 (xen), 1 x hlt (xen)" in text(v)
    assert H.check_exit_prediction("0x3", code).ok          # numbers as text count too
    w = H.check_exit_prediction(2, code)
    assert not w.ok and "you predicted 2; the run measured 3 (more)" in text(w)
    one_char = H.check_exit_prediction(1, "mov $0x0e48, %ax\nint $0x10\ncli\nhlt")
    assert "by the device model" in text(one_char) and "0x3d4 (dm)" in text(one_char)
    assert "must be a whole number, not 'three'" in text(H.check_exit_prediction("three",
                                                                                 code))


# ---------------------------------------------------------------- chapter 04
@needs_binutils
def test_pv_idle_the_pv_way() -> None:
    v = H.check_pv_idle(BLOCK)
    assert v.ok, text(v)
    assert "sched_op(SCHEDOP_block) blocked the vCPU until VIRQ_TIMER" in text(v)
    assert v.measured["cpu_ms"] < 1


@needs_binutils
@pytest.mark.parametrize(("code", "hint"), [
    ("1: jmp 1b", "still in your code, having used the CPU all along (55 ms). It made no "
                  "sched_op call: it spins"),
    (YIELD, "yield keeps the vCPU runnable"),
    ("nop", "your code returned at once, without waiting for the timer at 5 ms"),
    ("ud2", "the guest crashed: Unhandled invalid opcode [#6] at rip ffffffff8000004b"),
    ("SHUTDOWN SHUTDOWN_poweroff", "the guest stopped inside your code"),
])
def test_pv_idle_wrong_attempts(code: str, hint: str) -> None:
    v = H.check_pv_idle(code)
    assert not v.ok and hint in text(v)


# ---------------------------------------------------------------- chapter 10
@needs_binutils
def test_pv_console_hypercall() -> None:
    assert H.check_pv_console(CONSOLE).ok
    assert "console_io wrote 3 bytes; msg is 24 bytes" in \
        text(H.check_pv_console(CONSOLE.replace("$msg_len", "$3")))
    assert "console_io returned -38" in \
        text(H.check_pv_console(CONSOLE.replace("$CONSOLEIO_write", "$7")))
    assert "made no console_io hypercall (number 18)" in text(H.check_pv_console("nop"))


# ---------------------------------------------------------------- chapter 03
GOOD_CFG = (f'name = "my-guest"\ntype = "pv"\nkernel = "{Lab.image("pv-hello/pv-hello.elf")}"'
            '\nmemory = 32\non_poweroff = "preserve"\n')


def test_xl_config_fixed_boots() -> None:
    v = H.check_xl_config(GOOD_CFG)
    assert v.ok and "stays listed in state ---s--" in text(v)


@pytest.mark.parametrize(("old", "new", "hint"), [
    ("memory", "memroy", "xl create refused it: my-guest.cfg:4: unknown key 'memroy' "
                         "(did you mean 'memory'?)"),
    ('"pv"', '"hvm"', "xl built an HVM guest"),
    ("preserve", "destroy", "xl list no longer shows it: on_poweroff decides"),
    ("= 32", "= 4096", "not enough free memory for my-guest: need 4096 MiB"),
    ("pv-hello.elf", "pv-helo.elf", "pv-helo.elf: no such file (the kernel image)"),
    ('"my-guest"', '"other"', "xl created other, not a domain named 'my-guest'"),
])
def test_xl_config_wrong_attempts(old: str, new: str, hint: str) -> None:
    v = H.check_xl_config(GOOD_CFG.replace(old, new))
    assert not v.ok and hint in text(v)


def test_chapter_03s_broken_config_shows_each_mistake_in_turn() -> None:
    """The config chapter 03 prints: each fix leads to the next mistake's hint, and the
    kernel is named by file name alone (the check copies it next to the config)."""
    steps = [("memroy", "memory", "unknown key 'memroy'"),
             ('"hvm"', '"pv"', "xl built an HVM guest"),
             ("pv-helo.elf", "pv-hello.elf", "pv-helo.elf: no such file"),
             ("destroy", "preserve", "on_poweroff decides")]
    cfg = H.BROKEN_CFG
    for old, new, hint in steps:
        v = H.check_xl_config(cfg)
        assert not v.ok and hint in text(v), (old, text(v))
        cfg = cfg.replace(old, new)
    assert H.check_xl_config(cfg).ok


# ---------------------------------------------------------------- chapter 02
def _heavy(weight: int, name: str = "heavy") -> str:
    return (f'name = "{name}"\ntype = "pv"\nkernel = "{Lab.image("pv-spin/pv-spin.elf")}"'
            f"\nmemory = 16\nweight = {weight}\n")


def test_credit_share() -> None:
    v = H.check_credit_share(_heavy(512))
    assert v.ok and v.measured["share"] == 65
    by_file_name = H.LIGHT_CFG.replace("light", "heavy").replace("256", "512")
    assert 'kernel = "pv-spin.elf"' in by_file_name and H.check_credit_share(by_file_name).ok
    w = H.check_credit_share(_heavy(256))
    assert not w.ok and "heavy (weight 256) got 50 % of the CPU" in text(w)
    assert "no domain named 'heavy'" in text(H.check_credit_share(_heavy(512, "hevy")))
    assert "xl create refused it: heavy.cfg:5: 'weight' must be between 1" in \
        text(H.check_credit_share(_heavy(0)))


# ---------------------------------------------------------------- chapter 05
def _front(grant_to: str = "fe.backend_id", readonly: bool = False, port_for: str = "0",
           state_first: bool = False, state: bool = True):
    def step(fe: H.FrontendStandIn) -> None:
        if state_first:
            fe.write("state", 3)
        ref = fe.grant_access(eval(grant_to), fe.ring_pfn, readonly=readonly)
        port = fe.alloc_unbound(eval(port_for))
        fe.write("ring-ref", ref)
        fe.write("event-channel", port)
        if state and not state_first:
            fe.write("state", 3)
    return step


def test_frontend_step_connects_blkback() -> None:
    v = H.check_frontend_step(_front())
    assert v.ok and "went to 4 (Connected)" in text(v)
    assert "write a function answer(fe)" in text(H.check_frontend_step(None))
    assert v.measured["grant_maps"] >= 1


@pytest.mark.parametrize(("kw", "hint"), [
    ({"grant_to": "fe.domid"}, "not the guest itself"),
    ({"readonly": True}, "a read-only grant is refused"),
    ({"state_first": True}, "write them first, the state last"),
    ({"state": False}, "still in state 2 (InitWait)"),
    ({"port_for": "fe.domid"}, "allocated for the backend's domain"),
])
def test_frontend_step_wrong_attempts(kw: dict, hint: str) -> None:
    v = H.check_frontend_step(_front(**kw))
    assert not v.ok and hint in text(v)


def test_frontend_step_that_raises_is_one_line() -> None:
    def step(fe: H.FrontendStandIn) -> None:
        fe.grant_access(0, "12")  # type: ignore[arg-type]
    assert text(H.check_frontend_step(step)) == \
        "Not yet: grant_access: pfn must be a whole number, not '12'"

    def crash(fe: H.FrontendStandIn) -> None:
        raise ZeroDivisionError("division by zero")
    assert text(H.check_frontend_step(crash)) == \
        "Not yet: your step raised ZeroDivisionError: division by zero"
    assert "not int" in text(H.check_frontend_step(3))


# ---------------------------------------------------------------- chapter 09
def test_xl_session() -> None:
    assert H.check_xl_session(["unpause web", "xl destroy mail"]).ok
    assert "mail is still listed" in text(H.check_xl_session(["unpause web"]))
    assert "db is gone" in text(H.check_xl_session(["unpause web", "destroy mail",
                                                    "destroy db"]))
    assert "`xl unpause wbe` failed: 'wbe' is an invalid domain identifier" in \
        text(H.check_xl_session(["unpause wbe"]))
    assert "web shows State --p---: still paused" in text(H.check_xl_session(
        ["destroy mail"]))
    assert "a list of xl command lines" in text(H.check_xl_session([1, 2]))


# ---------------------------------------------------------------- the notebook shape
def test_handson_has_the_exercise_shape(capsys: pytest.CaptureFixture[str]) -> None:
    ex = H.HandsOn("Reach the goal with xl commands.", H.check_xl_session)
    ex.show()
    assert ex.check(...) is False
    assert ex.correct(...) is False
    answer = ["unpause web", "destroy mail"]
    assert ex.check(answer) is True and ex.correct(answer) is True
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Reach the goal with xl commands."
    assert out[1].startswith("Not answered yet: a list of xl command lines")
    assert out[2] == "Correct: xl list now shows web ------, db --p---, mail gone."


# ---------------------------------------------------------------- chapter 11
PTE = """
        lea     mmu_req(%rip), %rdi
        mov     %rsi, (%rdi)
        shl     $12, %rcx
        or      $7, %rcx
        mov     %rcx, 8(%rdi)
        mov     $1, %esi
        xor     %edx, %edx
        mov     $DOMID_SELF, %r10d
        HYPERCALL __HYPERVISOR_mmu_update
"""


@needs_binutils
def test_pte_update_maps_the_other_page() -> None:
    v = H.check_pte_update(PTE)
    assert v.ok and "scratch now reads other's page" in text(v)


@needs_binutils
@pytest.mark.parametrize(("old", "new", "hint"), [
    ("mov     %rsi, (%rdi)", "lea scratch(%rip), %rax\nmov %rax, (%rdi)",
     "not a frame of the domain's). ptr must be the machine address of the L1 entry"),
    ("shl     $12, %rcx", "mov $0x800, %rcx\nshl $12, %rcx",
     "frame not owned by the domain). val must name other's machine frame"),
    ("or      $7, %rcx", "or $6, %rcx", "its PRESENT bit (1) is clear"),
    ("HYPERCALL __HYPERVISOR_mmu_update", "nop", "made no mmu_update hypercall (number 1)"),
])
def test_pte_update_wrong_attempts(old: str, new: str, hint: str) -> None:
    v = H.check_pte_update(PTE.replace(old, new))
    assert not v.ok and hint in text(v), text(v)
