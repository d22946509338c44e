"""Exception and interrupt frames as a real CPU builds them, compared with QEMU's.

images/frames/frames.S is a PVH guest that installs its own IDT, GDT and TSS, and in
32-bit protected mode and in long mode, from ring 0 and from ring 3, takes #DE, #UD,
#GP (with a selector error code, with 0, and the #GP(vector * 8 + 2) of a software
interrupt through a DPL 0 gate or an empty IDT entry), #NP (a gate not present), a #DF
(a #DE whose gate is not present: two contributory exceptions), #PF (with CR2 and the
P/W/U error code bits), int3, int $0x80 through a DPL 3 trap gate, the PIT's IRQ 0
through the 8259A and the local APIC's timer, in its own handlers, and a ``syscall``
from ring 3, and prints each frame on port 0xE9. The same image
boots on qemu-system-x86_64 (``-kernel``: QEMU reads the same PVH note), and the two
lists of frames must be the same line for line.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from test_pvh_physmap import pvh_elf

from xenlab.lab import Lab
from xenlab.labkit import assemble

SOURCE = Path(__file__).resolve().parent.parent / "images" / "frames" / "frames.S"
QEMU = shutil.which("qemu-system-x86_64")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("frames") / "frames.elf"
    path.write_bytes(pvh_elf(assemble(SOURCE.read_text(), bits=64, org=0x100000)))
    return path


@pytest.fixture(scope="module")
def xenlab_run(image: Path) -> tuple[Lab, list[str]]:
    cfg = image.with_suffix(".cfg")
    cfg.write_text(f'name = "frames"\ntype = "pvh"\nkernel = "{image}"\nmemory = 32\n'
                   'on_crash = "preserve"\n')
    lab = Lab(memory_mib=160, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    lab.run(max_instructions=20_000_000, max_seconds=30.0)
    lines = [line.split("(d1) ", 1)[1] for line in lab.xl_output("dmesg").splitlines()
             if "(d1) " in line]
    return lab, lines


def _frames(lines: list[str], prefix: str) -> list[str]:
    return [line for line in lines if line.startswith(prefix)]


def test_the_guest_runs_through_every_case_and_powers_off(
        xenlab_run: tuple[Lab, list[str]]) -> None:
    lab, lines = xenlab_run
    assert lines[-1] == "frames: done", lines[-5:]
    assert "SHUTDOWN_poweroff" in lab.xl_output("dmesg")
    # SYSCALL from ring 3: RCX the next instruction, R11 RFLAGS, CS/SS from STAR, IF
    # masked by SFMASK; sysretq went back (the ring-3 code carried on to its int $0x80)
    syscall = next(line for line in lines if line.startswith("lm syscall "))
    assert syscall.endswith(" r11=00000202 cs=0050 ss=0058 fl=00000002"), syscall
    assert len(_frames(lines, "pm ring ")) == 19 and len(_frames(lines, "lm ring ")) == 19


def test_ring3_faults_switch_to_the_tss_stack_and_push_ss_esp(
        xenlab_run: tuple[Lab, list[str]]) -> None:
    """From ring 3 the CPU takes SS0:ESP0 (RSP0) from the TSS and pushes the user SS and
    ESP first; the #PF of a user read of a supervisor page has P and U set (5)."""
    _lab, lines = xenlab_run
    pm3 = _frames(lines, "pm ring 3 ")
    assert all(" sp=00107510 ss=002b " in line for line in pm3), pm3
    pf = next(line for line in pm3 if " v=0e " in line)
    assert " e=00000005 " in pf and " cr2=00400000 " in pf
    gp = [line for line in pm3 if " v=0d " in line]
    assert [line.split(" e=")[1][:8] for line in gp] == ["00000000", "0000040a"]
    lm3 = _frames(lines, "lm ring 3 ")
    assert all(" cs=0033 " in line and " ss=002b " in line for line in lm3), lm3


def test_the_local_apic_timer_interrupts_ring0_and_ring3(
        xenlab_run: tuple[Lab, list[str]]) -> None:
    lab, lines = xenlab_run
    apic = [line for line in lines if " v=30 " in line]
    assert [line[:9] for line in apic] == ["pm ring 0", "pm ring 3", "lm ring 0", "lm ring 3"]
    injected = [r for r in lab.host.trace.records if r.dom == 1 and r.name == "inject_irq"]
    assert [r.args["vector"] for r in injected] == ["0x20", "0x30", "0x30"] * 2
    exits = [r for r in lab.host.trace.records if r.dom == 1 and r.name == "apic_access"]
    assert {r.args["offset"] for r in exits} >= {"0xf0", "0x350", "0x320", "0x380", "0xb0"}


def test_gates_the_cpu_cannot_use_raise_np_gp_and_df(
        xenlab_run: tuple[Lab, list[str]]) -> None:
    """int $0x55 (a gate not present) is #NP(0x2aa), int $0x56 (an empty entry) #GP(0x2b2);
    a #DE whose gate is not present raises #NP, and two contributory exceptions make a
    #DF with error code 0; the trace records the #DF that was delivered."""
    lab, lines = xenlab_run
    for mode in ("pm", "lm"):
        ring0 = _frames(lines, f"{mode} ring 0 ")
        assert [line.split(" ip=")[0].split(" v=")[1] for line in ring0[5:8]] == [
            "0b e=000002aa", "0d e=000002b2", "08 e=00000000"], ring0[5:8]
    delivered = [r.args["vector"] for r in lab.host.trace.records
                 if r.dom == 1 and r.name == "inject_exception"]
    assert delivered.count(8) == 2 and 11 not in delivered   # #NP of int n: no exit


def _qemu_idt_error(line: str) -> str:
    """QEMU 7.2's long mode pushes an IDT index error code as vector * 16 + 2 (its
    do_interrupt64; fixed later); the CPU's is vector * 8 + 2, as in protected mode."""
    if not line.startswith("lm ring "):
        return line
    error = int(line.split(" e=")[1][:8], 16)
    if error & 3 != 2:
        return line
    return line.replace(f" e={error:08x} ", f" e={(error - 2) // 16 * 8 + 2:08x} ")


@pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed "
                    "(Debian: qemu-system-x86)")
def test_frames_match_qemu_system_x86_64(image: Path, xenlab_run: tuple[Lab, list[str]],
                                         tmp_path: Path) -> None:
    """Every frame equals QEMU's, but for the error code of a gate the CPU cannot use in
    long mode (_qemu_idt_error)."""
    out = tmp_path / "debugcon.txt"
    run = subprocess.run(
        [str(QEMU), "-kernel", str(image), "-m", "64", "-display", "none", "-no-reboot",
         "-serial", "none", "-monitor", "none", "-debugcon", f"file:{out}",
         "-global", "isa-debugcon.iobase=0xe9",
         "-device", "isa-debug-exit,iobase=0xf4,iosize=4"],
        capture_output=True, timeout=120, check=False)
    assert run.returncode == 1, run.stderr     # isa-debug-exit: (0 << 1) | 1
    qemu = out.read_text().splitlines()
    _lab, ours = xenlab_run
    assert qemu[-1] == "frames: done"
    expected = [_qemu_idt_error(line) for line in qemu]
    assert sum(a != b for a, b in zip(expected, qemu, strict=True)) == 3
    assert ours == expected


TRIPLE = r"""
.code32
    lgdt gdt_ptr
    ljmp $0x08, $1f
1:  mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %ss
    mov $0x200000, %esp
    lidt idt_ptr               # 32 entries, all empty
    xor %ecx, %ecx
    div %ecx                   # #DE -> #GP (no gate) -> #DF -> #GP again: triple fault
    mov $'?', %al
    out %al, $0xe9
2:  hlt
    jmp 2b
    .balign 8
gdt: .quad 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF
gdt_ptr: .word 23
    .long gdt
idt: .fill 32, 8, 0
idt_ptr: .word 32 * 8 - 1
    .long idt
"""


def test_an_exception_in_delivering_a_double_fault_is_a_triple_fault(tmp_path: Path) -> None:
    """A #DE with an empty IDT: #GP for the gate, #DF for the pair, and no gate for the
    #DF either: the CPU shuts down, and Xen crashes the domain with one line."""
    kernel = tmp_path / "triple.elf"
    kernel.write_bytes(pvh_elf(assemble(TRIPLE, bits=32, org=0x100000)))
    cfg = tmp_path / "triple.cfg"
    cfg.write_text(f'name = "triple"\ntype = "pvh"\nkernel = "{kernel}"\nmemory = 32\n'
                   'on_crash = "preserve"\n')
    lab = Lab(memory_mib=160, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    lab.run(max_instructions=1_000_000, max_seconds=5.0)
    d = lab.domain("triple")
    assert d.is_crashed
    assert d.crash_reason.startswith("triple fault: "), d.crash_reason
    assert "delivering a #DF" in d.crash_reason and "\n" not in d.crash_reason
    assert "(d1) ?" not in lab.xl_output("dmesg")


def test_the_stepper_goes_back_to_any_instruction_between_the_exceptions(
        image: Path, tmp_path: Path) -> None:
    """The boot stepper's counter adds a block's instructions when the block starts
    (xenlab/cpu/icount.py, BlockCounter): the #DE, #UD, #GP, #PF ... this guest takes in
    the middle of its blocks, in protected and in long mode, and its timer interrupts,
    must leave every count exact, or going back to a position would not give the state
    the first pass had there."""
    import hashlib

    from xenlab.views.stepper import Stepper

    cfg = tmp_path / "frames.cfg"
    cfg.write_text(f'name = "frames"\ntype = "pvh"\nkernel = "{image}"\nmemory = 32\n'
                   'on_crash = "preserve"\non_poweroff = "preserve"\n')
    lab = Lab(memory_mib=160, dom0_mem_mib=64)
    lab.xl(f"create -p {cfg}")
    st = Stepper(lab, "frames")

    def mark() -> tuple[object, ...]:
        h = hashlib.sha256()
        for ext in st.d.extents:
            h.update(st.host.mem.read(ext.mfn << 12, ext.count << 12))
        return st.cpu.registers(), h.hexdigest(), len(st.host.trace)

    marks = {}
    for _ in range(12):          # first-pass stops all through the guest's cases
        st.forward(1_777)
        marks[st.position] = mark()
    end = st.run_to_end()
    assert "frames: done" in lab.xl_output("dmesg")
    for p in [*sorted(marks, reverse=True), *sorted(marks)]:
        st.back_to(p)
        assert st.position == p and mark() == marks[p], p
    st.back_to(0)
    assert st.run_to_end() == end
    assert st.replay.divergences == []
