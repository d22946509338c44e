"""Idle loops skipped exactly (xenlab.cpu.idle): the same boot sector, run once with the
skipping and once without, ends with the same registers, memory, virtual time,
instruction count and trace; only loops that change nothing are skipped."""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xenlab.bench import POLL_SECTOR
from xenlab.lab import Lab
from xenlab.labkit import assemble, boot_disk, have_binutils

pytestmark = pytest.mark.skipif(not have_binutils(), reason="needs binutils (as, ld, objcopy)")


def _outcome(tmp: Path, source: str, bios: str, idle: bool, seconds: float
             ) -> tuple[tuple[object, ...], int]:
    """Boot ``source`` as a boot sector under ``bios`` and run ``seconds`` of virtual
    time: what the guest and the host show, and how many slices skipped a loop."""
    disk = tmp / f"{bios}-{idle}.img"
    disk.write_bytes(boot_disk(assemble(source, bits=16, org=0x7C00)))
    cfg = tmp / f"{bios}-{idle}.cfg"
    cfg.write_text(f'name = "idle"\ntype = "hvm"\nmemory = 32\nbios = "{bios}"\n'
                   f'vga = "none"\ndisk = [ "format=raw, vdev=hda, access=ro, target={disk}" ]\n')
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    assert not lab.xl_output(f"create {cfg}").startswith("xl: error")
    cpu = lab.domain("idle").vcpus[0].cpu
    assert cpu is not None and cpu.idle is not None    # HVM vCPUs have one by default
    finder = cpu.idle
    if not idle:
        cpu.idle = None
    lab.run(max_seconds=seconds)
    ram = hashlib.sha256(b"".join(bytes(host) for _, _, host in cpu._host_maps)).hexdigest()
    trace = hashlib.sha256(repr([repr(r) for r in lab.host.trace.records]).encode()).hexdigest()
    seen = (cpu.registers(), lab.host.now(), lab.host.instructions, ram, trace,
            lab.xl_output("list"))
    skips = finder.skips
    del lab, cpu, finder
    gc.collect()    # a host (its RAM a 256 MiB mapping) sits in reference cycles
    return seen, skips


def _both(tmp: Path, source: str, bios: str = "xenlab", seconds: float = 0.12) -> int:
    """Run with and without the skipping; they must agree. The slices that skipped."""
    on, skips = _outcome(tmp, source, bios, True, seconds)
    off, none = _outcome(tmp, source, bios, False, seconds)
    assert none == 0
    for name, a, b in zip(("registers", "virtual time", "instructions", "RAM", "trace",
                           "xl list"), on, off, strict=True):
        assert a == b, f"{name} differ with idle-loop skipping"
    return skips


@pytest.mark.parametrize("bios", ["xenlab", "seabios"])
def test_a_bios_polling_loop_is_skipped_and_nothing_differs(tmp_path: Path, bios: str) -> None:
    """INT 16h / INT 1Ah polled forever (the bench's loop), from ``xl create`` on: the
    whole boot and the polling with and without the skipping."""
    if bios == "seabios" and Lab.missing("seabios") is not None:
        pytest.skip(str(Lab.missing("seabios")))
    seconds = 3.3 if bios == "seabios" else 0.3     # SeaBIOS waits 2.5 s at its menu
    assert _both(tmp_path, POLL_SECTOR, bios, seconds) > 5


# loops that change something each round (never skipped) and loops that do not; in the
# first four what changed (a stored byte, a value read, the flags of an increment) is
# gone from the registers by the head, but for "register counts": only the stored bytes
# and the exit marks tell them from an idle loop
LOOPS = {
    "counter in memory": ("1: incw (0x600)\n   xor %ax, %ax\n   jmp 1b", False),
    "register counts": ("1: inc %ax\n   jmp 1b", False),
    "TSC decides a branch": ("1: rdtsc\n   test $1, %al\n   jz 2f\n   nop\n"
                             "2: xor %eax, %eax\n   xor %edx, %edx\n   jmp 1b", False),
    "port read each round": ("1: in $0x61, %al\n   xor %al, %al\n   jmp 1b", False),
    "same value stored": ("1: movw $5, (0x600)\n   jmp 1b", True),
    "two passes a round": ("1: xor $1, %ax\n   jmp 1b", True),
    "interrupts on, jmp $": ("   sti\n1: jmp 1b", True),
    "a call and a push": ("1: call 2f\n   jmp 1b\n2: push %ax\n   pop %ax\n   ret", True),
    # found where the delay loop comes out (the first head, in it, counts)
    "inner delay loop": ("1: mov $300, %cx\n2: loop 2b\n   mov $1, %ah\n   int $0x16\n"
                         "   jmp 1b", True),
    # trapped only to see paging turned on: no exit
    "CR0 written back": ("1: .fill 400, 1, 0x90\n   mov %cr0, %eax\n   mov %eax, %cr0\n"
                         "   jmp 1b", True),
}


@pytest.mark.parametrize("name", list(LOOPS))
def test_only_a_loop_that_changes_nothing_is_skipped(tmp_path: Path, name: str) -> None:
    body, idle = LOOPS[name]
    source = f"    .code16\n    xor %ax, %ax\n    mov %ax, %ds\n{body}\n"
    skips = _both(tmp_path, source)
    assert (skips > 0) is idle, f"{name}: {skips} slices skipped"


#: Real mode to flat 32-bit protected mode, paging off (the code, data and stack
#: segments loaded; ESP is the program's), and the GDT it loads (``_PM_GDT``, last)
_PM_ENTRY = """    .code16
    cli
    xor %ax, %ax
    mov %ax, %ds
    lgdtl gdtr
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $pm
    .code32
pm: mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
"""
_PM_GDT = """    .balign 8
gdt: .quad 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF
gdtr: .word 23
    .long gdt
"""

#: Protected mode, paging off: a delay loop, then ``int $0x30`` into its own IDT, whose
#: handler returns at once. The frame is written by xenlab's IDT delivery (Python).
PM_INT_LOOP = _PM_ENTRY + """    mov $0x7000, %esp
    lidtl idtr
1:  mov $200, %ecx
2:  loop 2b
    int $0x30
    jmp 1b
handler:
    iret
""" + _PM_GDT + """gate: .word handler, 0x08, 0x8E00, 0
idtr: .word 0x30 * 8 + 7
    .long gate - 0x30 * 8
"""


def test_a_protected_mode_loop_through_its_own_idt_is_skipped(tmp_path: Path) -> None:
    """Software interrupts through the guest's IDT (the frames xenlab writes go through
    ``X86Vcpu.write_watch``) and a delay loop inside: skipped, and nothing differs."""
    assert _both(tmp_path, PM_INT_LOOP, seconds=0.045) > 0


def test_the_stepper_counter_turns_the_skipping_off(tmp_path: Path) -> None:
    """An attached instruction counter (the stepper's) counts every instruction: no
    slice skips while it is attached."""
    from xenlab.cpu.icount import counter_for

    disk = tmp_path / "spin.img"
    disk.write_bytes(boot_disk(assemble("    .code16\n    sti\n1: jmp 1b\n", bits=16)))
    cfg = tmp_path / "spin.cfg"
    cfg.write_text('name = "spin"\ntype = "hvm"\nmemory = 32\nbios = "xenlab"\nvga = "none"\n'
                   f'disk = [ "format=raw, vdev=hda, access=ro, target={disk}" ]\n')
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    assert not lab.xl_output(f"create {cfg}").startswith("xl: error")
    cpu = lab.domain("spin").vcpus[0].cpu
    assert cpu is not None and cpu.idle is not None
    counter = counter_for(cpu)
    lab.run(max_seconds=0.05)
    assert cpu.idle.skips == 0 and cpu.idle.probes == 0
    counter.close()
    lab.run(max_seconds=0.05)
    assert cpu.idle.skips > 0


# -- any loop: the same outcome with and without the skipping --------------------------

_OPS = [
    "movw $5, (0x600)",              # stores what is there: idle
    "incw (0x602)",                  # a counter in memory
    "inc %bx",                       # a counter in a register
    "xor %bx, %bx",
    "mov $1, %ah\n   int $0x16",     # a key? (the BIOS's keyboard buffer)
    "mov $0, %ah\n   int $0x1a",     # the tick count, which IRQ 0 moves on
    "push %ax\n   pop %ax",
    "rdtsc",
    "in $0x61, %al",
    "out %al, $0x80",
    "xor %ax, %ax",
    "nop",
    "movw (0x46c), %si",             # the tick count read directly
    "cli",
    "sti",
    "mov $50, %cx\n{n}: loop {n}b",  # an inner delay loop
    "call 9f",
]


@settings(derandomize=True, deadline=None, max_examples=12)
@given(body=st.lists(st.sampled_from(_OPS), min_size=1, max_size=6))
def test_any_loop_ends_the_same_with_the_skipping_as_without(
        tmp_path_factory: pytest.TempPathFactory, body: list[str]) -> None:
    """Loops drawn from stores, counters, BIOS calls, TSC and port reads, ``cli``/``sti``
    and inner loops: skipped or not, the run ends with the same registers, RAM,
    virtual time, instruction count and trace."""
    lines = [op.format(n=10 + i) for i, op in enumerate(body)]
    source = ("    .code16\n    xor %ax, %ax\n    mov %ax, %ds\n    sti\n1:\n   "
              + "\n   ".join(lines) + "\n   jmp 1b\n9: ret\n")
    _both(tmp_path_factory.mktemp("loop"), source, seconds=0.06)


# -- waits on the TSC (xenlab.cpu.tsc_wait): skipped up to the round the time ends them --

#: Protected mode with PAE paging (2 MiB pages, identity), as memtest86+ runs, then
#: ``outer``: a wait on the TSC of DELAY ns, counted at 0x600, forever.
PAE_WAIT = _PM_ENTRY + """    mov $0x6000, %esp
    mov $0x9000, %edi
    xor %eax, %eax
    mov $0x800, %ecx
    rep stosl
    movl $0xa001, (0x9000)
    movl $0x000083, (0xa000)
    movl $0x200083, (0xa008)
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov $0x9000, %eax
    mov %eax, %cr3
    mov %cr0, %eax
    or $0x80000000, %eax
    mov %eax, %cr0
outer:
    rdtsc
    mov %eax, %esi
    mov %edx, %edi
    mov $DELAY, %ebx
    xor %ecx, %ecx
{body}
    incl (0x600)
    jmp outer
""" + _PM_GDT

#: memtest86+ 6.10's usleep as Debian builds it (x32): the time through a stack slot,
#: then (T - t0) < cycles as a 64-bit compare on EDX:EAX
USLEEP = """    sub $16, %esp
1:  pause
    rdtsc
    mov %eax, 8(%esp)
    mov %edx, 12(%esp)
    mov 8(%esp), %eax
    mov 12(%esp), %edx
    sub %esi, %eax
    sbb %edi, %edx
    cmp %ebx, %eax
    mov %edx, %eax
    sbb %ecx, %eax
    jb 1b
    add $16, %esp"""

# wait -> (its loop, skipped); the last seven are never skipped: the time stored in the
# page of the loop's own code, the time decides a branch by one bit, a counter moves
# on each round in a register or in memory, something of the time is read in the next
# round
WAITS = {
    "memtest86+ usleep": (USLEEP, True),
    "the time stored each round": ("1: rdtsc\n    mov %eax, (0x610)\n    sub %esi, %eax\n"
                                   "    cmp $DELAY, %eax\n    jb 1b", True),
    "the time shifted": ("1: rdtsc\n    sub %esi, %eax\n    shr $10, %eax\n"
                         "    cmp $(DELAY >> 10), %eax\n    jb 1b", True),
    "a 64-bit add to the deadline": ("    add %ebx, %esi\n    adc %ecx, %edi\n"
                                     "1: rdtsc\n    cmp %edi, %edx\n    jb 1b\n"
                                     "    ja 2f\n    cmp %esi, %eax\n    jb 1b\n2:", True),
    "until the time's MiB-of-ns block changes": (
        "    mov %esi, %ebp\n    shr $20, %ebp\n1: rdtsc\n    shr $20, %eax\n"
        "    cmp %ebp, %eax\n    je 1b", True),
    "the time stored into its own code's page": (
        "1: rdtsc\n    mov %eax, (3f)\n    sub %esi, %eax\n    cmp $DELAY, %eax\n"
        "    jb 1b\n    jmp 4f\n3:  .long 0\n4:", False),
    "one bit of the time": ("1: rdtsc\n    test $0x100000, %eax\n    jz 1b", False),
    "a counter too": ("1: rdtsc\n    inc %ebp\n    sub %esi, %eax\n    cmp $DELAY, %eax\n"
                      "    jb 1b", False),
    "a counter in memory too": ("1: rdtsc\n    incl (0x620)\n    sub %esi, %eax\n"
                                "    cmp $DELAY, %eax\n    jb 1b", False),
    # one bit of the time kept for the next round, which adds it to a sum: the same in
    # two rounds while the bit is 0, not for long (the bit flips every 2 ms)
    "a bit of the time kept for the next round": (
        "1: mov (0x630), %edx\n    add %edx, (0x640)\n    rdtsc\n    mov %eax, %edx\n"
        "    shr $21, %edx\n    and $1, %edx\n    mov %edx, (0x630)\n    sub %esi, %eax\n"
        "    cmp $DELAY, %eax\n    jb 1b", False),
    "the last round's time read": ("    mov %esi, %eax\n1: mov %eax, %ebp\n    rdtsc\n"
                                   "    sub %ebp, %eax\n    cmp $DELAY, %eax\n    jb 1b",
                                   False),
}


def _wait(body: str, delay: int = 3_000_000) -> str:
    return PAE_WAIT.replace("{body}", body).replace("DELAY", str(delay))


@pytest.mark.parametrize("name", list(WAITS))
def test_a_wait_on_the_tsc_is_skipped_to_its_end(tmp_path: Path, name: str) -> None:
    """With PAE paging on: a wait whose round is judged (``tsc_wait.judge_round``) is
    skipped up to the rounds before the time ends it, and the run ends the same as
    without the skipping (the same number of waits done at 0x600, virtual time, RAM,
    trace)."""
    body, skipped = WAITS[name]
    skips = _both(tmp_path, _wait(body), seconds=0.05)
    assert (skips > 0) is skipped, f"{name}: {skips} slices skipped"


_WAIT_OPS = [
    "mov %eax, 8(%esp)\n    mov 8(%esp), %eax",      # the time through the stack
    "mov %eax, (0x610)",                             # stored where nothing reads it
    "push %eax\n    pop %eax",
    "mov %eax, %ebp\n    shr $21, %ebp\n    and $1, %ebp",     # a bit of it, dropped
    "add $5, %eax",
    "shl $1, %eax",
    "inc %ebp",                                      # a counter
    "incl (0x620)",                                  # a counter in memory
    "mov (0x630), %ebp\n    add %ebp, (0x640)",      # a sum of what is kept...
    "mov %eax, (0x630)",                             # ...the time kept for it
    "xor %ebp, %ebp",
    "pause",
    "lfence",
    "call 9f",
    "rdtsc",
    "test $0x100000, %eax\n    jz 1b",               # one bit of the time decides
]
_WAIT_TAILS = [
    "sub %esi, %eax\n    cmp %ebx, %eax\n    jb 1b",
    "sub %esi, %eax\n    sbb %edi, %edx\n    cmp %ebx, %eax\n    mov %edx, %eax\n"
    "    sbb %ecx, %eax\n    jb 1b",
    "sub %esi, %eax\n    cmp %eax, %ebx\n    ja 1b",
    "sub %esi, %eax\n    cmp %ebx, %eax\n    jae 2f\n    jmp 1b\n2:",
    "sub %esi, %eax\n    shr $12, %eax\n    cmp $700, %eax\n    jbe 1b",
    "shr $22, %eax\n    cmp $5, %eax\n    jne 1b",
]


@settings(derandomize=True, deadline=None, max_examples=8)
@given(before=st.lists(st.sampled_from(_WAIT_OPS), max_size=2),
       after=st.lists(st.sampled_from(_WAIT_OPS), max_size=3),
       tail=st.sampled_from(_WAIT_TAILS))
def test_any_wait_ends_the_same_with_the_skipping_as_without(
        tmp_path_factory: pytest.TempPathFactory, before: list[str], after: list[str],
        tail: str) -> None:
    """Waits on the TSC drawn from moves through the stack and memory, counters, sums,
    shifts, calls, second reads and branches on one bit, ended by a 32- or 64-bit
    comparison: skipped or not, the run ends the same."""
    body = "\n    ".join(["1:  nop", *before, "rdtsc", *after, tail])
    _both(tmp_path_factory.mktemp("wait"), _wait(f"    {body}\n    jmp 8f\n9:  ret\n8:"),
          seconds=0.03)


def test_with_paging_on_a_few_tsc_reads_start_no_probe(tmp_path: Path) -> None:
    """With paging on only waits are looked for, after a slice that read the TSC at
    least ``_WAIT_READS`` times with no exit: a program that computes and reads the
    TSC now and then, as a kernel's clock does, is never probed (no code hook, no
    block translated again); a wait is."""
    from xenlab.cpu.idle import _WAIT_READS

    seen = {}
    for name, body in (("clock", "1:  mov $20000, %ecx\n2:  loop 2b\n    rdtsc\n    jmp 1b"),
                       ("wait", WAITS["memtest86+ usleep"][0])):
        disk = tmp_path / f"{name}.img"
        disk.write_bytes(boot_disk(assemble(_wait(body), bits=16, org=0x7C00)))
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(f'name = "{name}"\ntype = "hvm"\nmemory = 32\nbios = "xenlab"\n'
                       f'vga = "none"\ndisk = [ "format=raw, vdev=hda, access=ro, '
                       f'target={disk}" ]\n')
        lab = Lab(memory_mib=256, dom0_mem_mib=64)
        assert not lab.xl_output(f"create {cfg}").startswith("xl: error")
        cpu = lab.domain(name).vcpus[0].cpu
        assert cpu is not None and cpu.idle is not None
        lab.run(max_seconds=0.05)
        seen[name] = (cpu.idle.probes, cpu.native_tsc_reads())
        del lab, cpu
        gc.collect()
    probes, reads = seen["clock"]
    assert probes == 0, seen
    assert 0 < reads < 5 * _WAIT_READS, seen    # 50 ms: 5 slices
    assert seen["wait"][0] > 0, seen


LONG_WAITS = {
    "memtest86+ usleep": USLEEP,
    # the same registers at each wait's head: only the deadline in memory tells them apart
    "a deadline in memory": ("    rdtsc\n    add $DELAY, %eax\n    mov %eax, (0x650)\n"
                             "    xor %esi, %esi\n    xor %edi, %edi\n    xor %eax, %eax\n"
                             "    xor %edx, %edx\n1:  rdtsc\n    cmp (0x650), %eax\n    jb 1b"),
}


@pytest.mark.parametrize("name", list(LONG_WAITS))
def test_a_wait_across_slices_is_skipped_from_what_was_judged(tmp_path: Path,
                                                             name: str) -> None:
    """Waits of 25 ms, longer than a slice: in the slices after the one that judged a
    wait, the same wait from the same state (its registers, the bytes it reads, its
    code) is skipped at once, with no round recorded; a new wait, whose deadline or
    start differs, is judged anew. The run ends the same as without the skipping."""
    assert _both(tmp_path, _wait(LONG_WAITS[name], delay=25_000_000), seconds=0.12) > 5
