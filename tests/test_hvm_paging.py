"""Paging and long mode in HVM/PVH guests, MSRs, and the 64-bit hypercall convention.

A PVH guest starts in 32-bit flat protected mode with paging off. The guest here
(GNU as, built at test time) turns on 32-bit paging with 4 MiB pages, then PAE, then
long mode, and in each mode writes through a linear address that its own page tables
send to another page, and makes a hypercall whose buffer is such a linear address (Xen
walks the guest's tables: hvm_copy_to_guest_linear). In long mode it jumps to code
above 4 GiB, makes a hypercall with the 64-bit convention (RDI, RSI, RDX, R10, R8),
and reads and writes the MSRs Xen gives HVM guests (EFER, PAT, TSC, APIC base, STAR,
LSTAR, FS base, kernel GS base). An MSR Xen does not give HVM guests is #GP: with no
IDT loaded, the domain crashes with one line naming it.
"""

from __future__ import annotations

import itertools
import os
import struct
from pathlib import Path

import pytest
from test_pvh_physmap import pvh_elf

from xenlab.lab import Lab
from xenlab.labkit import assemble
from xenlab.public.version import XEN_EXTRAVERSION

BASE = 0x100000
GUEST = r"""
.code32
    lgdt gdt_ptr
    ljmp $0x08, $1f
1:  mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $stack_top, %esp

    # ---- 32-bit paging: 4 MiB pages (CR4.PSE) and one 4 KiB page at 0x40000000
    mov $pd32, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x10, %eax                 # PSE
    mov %eax, %cr4
    mov %cr0, %eax
    or $0x80000000, %eax           # PG
    mov %eax, %cr0
    movl $0x11111111, 0x40000000   # lands in page_a
    mov $17, %eax                  # xen_version(XENVER_extraversion, 0x40000010)
    mov $1, %ebx
    mov $0x40000010, %ecx
    vmcall
    mov %eax, results + 0
    PM_EXCEPTIONS
    movl $page_b + 3, pt32         # remap 0x40000000 to page_b, then invlpg
    invlpg 0x40000000
    movl $0x22222222, 0x40000000   # lands in page_b
    mov %cr0, %eax
    and $0x7fffffff, %eax
    mov %eax, %cr0                 # paging off

    # ---- PAE: 2 MiB pages and one 4 KiB page at 0x40000000
    mov %cr4, %eax
    or $0x20, %eax                 # PAE
    mov %eax, %cr4
    mov $pdpt_pae, %eax
    mov %eax, %cr3
    mov %cr0, %eax
    or $0x80000000, %eax
    mov %eax, %cr0
    movl $0x33333333, 0x40000000   # lands in page_c
    mov $17, %eax
    mov $1, %ebx
    mov $0x40000020, %ecx
    vmcall
    mov %eax, results + 4
    mov %cr0, %eax
    and $0x7fffffff, %eax
    mov %eax, %cr0

    # ---- long mode: EFER.LME, 4-level tables, paging on, a far jump to 64-bit code
    mov $pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax                # LME
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax
    mov %eax, %cr0
    ljmp $0x18, $long64
.code64
long64:
    movabs $0x8000000000, %rax     # page_d through pml4[1]
    movl $0x44444444, (%rax)
    movabs $0x8000001000 + (high_code - code_page), %rax
    jmp *%rax                      # run code above 4 GiB

    .balign 4096
code_page:
high_code:
    lea (%rip), %rax
    mov %rax, results + 8          # RIP above 4 GiB
    mov $0xdeadbeef, %ebx          # the 32-bit convention's argument registers: garbage
    mov $0xdeadbeef, %ecx
    mov $17, %eax                  # xen_version(XENVER_extraversion, 0x8000000040)
    mov $1, %edi
    movabs $0x8000000040, %rsi
    vmcall
    mov %rax, results + 16
    lea (%rip), %rax
    mov %rax, results + 24         # still above 4 GiB after the hypercall

    # ---- MSRs
    mov $0xC0000080, %ecx          # EFER
    rdmsr
    mov %eax, results + 32
    mov $0x277, %ecx               # PAT
    mov $0x00070106, %eax
    mov $0x00070106, %edx
    wrmsr
    rdmsr
    mov %eax, results + 40
    mov %edx, results + 44
    mov $0xC0000082, %ecx          # LSTAR
    mov $0x81000000, %eax
    mov $0xffffffff, %edx
    wrmsr
    xor %eax, %eax
    xor %edx, %edx
    rdmsr
    mov %eax, results + 48
    mov %edx, results + 52
    mov $0xC0000081, %ecx          # STAR
    mov $0x00000000, %eax
    mov $0x00230010, %edx
    wrmsr
    rdmsr
    mov %edx, results + 56
    mov $0xC0000102, %ecx          # KERNEL_GS_BASE
    mov $0x9abcdef0, %eax
    mov $0x00001234, %edx
    wrmsr
    rdmsr
    mov %eax, results + 64
    mov %edx, results + 68
    mov $0x1b, %ecx                # APIC base
    rdmsr
    mov %eax, results + 72
    mov $0x10, %ecx                # TSC
    rdmsr
    mov %eax, results + 80
    mov %edx, results + 84
    mov $-1, %rax
    mov %rax, %rdx
    rdtsc                          # EDX:EAX, the upper halves of RAX and RDX cleared
    mov %rax, results + 96
    mov %rdx, results + 104
    mov $0x10, %ecx                # TSC := 2**40: the guest's TSC moves
    xor %eax, %eax
    mov $0x100, %edx
    wrmsr
    mov $-1, %rcx
    rdtscp                         # and the next read follows it; ECX = TSC_AUX
    mov %eax, results + 112
    mov %edx, results + 116
    mov %rcx, results + 120
    mov $0xC0000100, %ecx          # FS base: page_d's linear address
    mov $0x00000000, %eax
    mov $0x00000080, %edx
    wrmsr
    mov %fs:0, %eax
    mov %eax, results + 88
    mov $'o', %al
    out %al, $0xe9
    mov $'k', %al
    out %al, $0xe9
    mov $'\n', %al
    out %al, $0xe9
    BAD_MSR
    cli
2:  hlt
    jmp 2b

    .balign 8
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF       # 0x08 flat 32-bit code
    .quad 0x00CF92000000FFFF       # 0x10 flat data
    .quad 0x00AF9A000000FFFF       # 0x18 64-bit code
gdt_ptr:
    .word gdt_ptr - gdt - 1
    .long gdt

    .balign 4096
pd32:                              # 32-bit page directory
    .long 0x83                     # 0..4 MiB: a 4 MiB page, identity
    .fill 0x100 - 1, 4, 0
    .long pt32 + 3                 # 0x40000000
    .fill 1024 - 0x101, 4, 0
pt32:
    .long page_a + 3
    .fill 1023, 4, 0
pd_pae:
    .quad 0x83                     # 0..2 MiB: a 2 MiB page, identity
    .fill 511, 8, 0
pd_pae_hi:
    .quad pt_pae + 3               # 0x40000000
    .fill 511, 8, 0
pt_pae:
    .quad page_c + 3
    .fill 511, 8, 0
pml4:
    .quad pdpt64 + 3
    .quad pdpt64_hi + 3            # 0x8000000000
    .fill 510, 8, 0
pdpt64:
    .quad pd_pae + 3               # 0..2 MiB identity again
    .fill 511, 8, 0
pdpt64_hi:
    .quad pd64_hi + 3
    .fill 511, 8, 0
pd64_hi:
    .quad pt64 + 3
    .fill 511, 8, 0
pt64:
    .quad page_d + 3               # 0x8000000000
    .quad code_page + 3            # 0x8000001000: the high code
    .fill 510, 8, 0
pdpt_pae:                          # 32-byte aligned: PDPTEs have no R/W bit
    .quad pd_pae + 1
    .quad pd_pae_hi + 1
    .quad 0, 0
    .balign 4096
page_a: .fill 4096, 1, 0
page_b: .fill 4096, 1, 0
page_c: .fill 4096, 1, 0
page_d: .fill 4096, 1, 0
results: .fill 4096, 1, 0
    .fill 4096, 1, 0
stack_top:
"""


#: In long mode, with an IDT of its own: #UD, #GP (an unknown MSR), #PF (a write to an
#: unmapped page) and #DE, each recorded by its handler, which steps over the instruction
EXCEPTIONS = r"""
    movabs $low, %rax              # back to the identity-mapped copy of the code
    jmp *%rax
low:
    mov $0, %ecx
    mov $h_de, %eax
    call setgate
    mov $6, %ecx
    mov $h_ud, %eax
    call setgate
    mov $13, %ecx
    mov $h_gp, %eax
    call setgate
    mov $14, %ecx
    mov $h_pf, %eax
    call setgate
    lidt idt_ptr
    movq $2, skip
fault_ud:
    ud2
    mov $0xdead0001, %ecx
fault_gp:
    rdmsr
    movq $6, skip
    movabs $0x9000000000, %rax
fault_pf:
    movl $1, (%rax)
    movq $2, skip
    xor %ecx, %ecx
    xor %edx, %edx
    mov $1, %eax
fault_de:
    div %ecx
    mov $'e', %al
    out %al, $0xe9
    mov $'\n', %al
    out %al, $0xe9
    jmp done

setgate:                           # vector %ecx -> handler %eax: a 64-bit interrupt gate
    shl $4, %ecx
    add $idt, %ecx
    mov %ax, (%ecx)
    movw $0x18, 2(%ecx)
    movw $0x8E00, 4(%ecx)
    shr $16, %eax
    mov %ax, 6(%ecx)
    movq $0, 8(%ecx)
    ret

h_de: push $0
    push $0
    jmp common
h_ud: push $0
    push $6
    jmp common
h_gp: push $13
    jmp common
h_pf: push $14
common:                            # vector, error, RIP, CS, RFLAGS, RSP, SS
    push %rax
    push %rbx
    mov nrec, %rbx
    shl $6, %rbx
    add $records, %rbx
    mov 16(%rsp), %rax
    mov %rax, 0(%rbx)
    mov 24(%rsp), %rax
    mov %rax, 8(%rbx)
    mov 32(%rsp), %rax
    mov %rax, 16(%rbx)
    mov 40(%rsp), %rax
    mov %rax, 24(%rbx)
    mov 48(%rsp), %rax
    mov %rax, 32(%rbx)
    mov 56(%rsp), %rax
    mov %rax, 40(%rbx)
    mov %cr2, %rax
    mov %rax, 48(%rbx)
    lea 16(%rsp), %rax
    mov %rax, 56(%rbx)             # where the frame is
    incq nrec
    mov skip, %rax
    add %rax, 32(%rsp)
    pop %rbx
    pop %rax
    add $16, %rsp
    iretq

    .balign 16
idt: .fill 64, 8, 0
idt_ptr:
    .word 32 * 16 - 1
    .quad idt
skip: .quad 0
nrec: .quad 0
    .balign 64
records: .fill 8 * 64, 1, 0
done:
"""


#: In 32-bit protected mode with paging, with an IDT of its own: the same four faults
PM_EXCEPTIONS = r"""
    mov $0, %ecx
    mov $pm_de, %eax
    call pm_setgate
    mov $6, %ecx
    mov $pm_ud, %eax
    call pm_setgate
    mov $13, %ecx
    mov $pm_gp, %eax
    call pm_setgate
    mov $14, %ecx
    mov $pm_pf, %eax
    call pm_setgate
    lidt pm_idt_ptr
    movl $2, pm_skip
pm_fault_ud:
    ud2
    mov $0xdead0001, %ecx
pm_fault_gp:
    rdmsr
    movl $6, pm_skip
    mov $0x50000000, %eax          # no page table for it
pm_fault_pf:
    movl $1, (%eax)
    movl $2, pm_skip
    xor %ecx, %ecx
    xor %edx, %edx
    mov $1, %eax
pm_fault_de:
    div %ecx
    lidt pm_no_idt
    jmp pm_done

pm_setgate:                        # vector %ecx -> handler %eax: a 32-bit interrupt gate
    shl $3, %ecx
    add $pm_idt, %ecx
    mov %ax, (%ecx)
    movw $0x08, 2(%ecx)
    movw $0x8E00, 4(%ecx)
    shr $16, %eax
    mov %ax, 6(%ecx)
    ret

pm_de: push $0
    push $0
    jmp pm_common
pm_ud: push $0
    push $6
    jmp pm_common
pm_gp: push $13
    jmp pm_common
pm_pf: push $14
pm_common:                         # vector, error, EIP, CS, EFLAGS
    push %eax
    push %ebx
    mov pm_nrec, %ebx
    shl $5, %ebx
    add $pm_records, %ebx
    mov 8(%esp), %eax
    mov %eax, 0(%ebx)
    mov 12(%esp), %eax
    mov %eax, 4(%ebx)
    mov 16(%esp), %eax
    mov %eax, 8(%ebx)
    mov 20(%esp), %eax
    mov %eax, 12(%ebx)
    mov 24(%esp), %eax
    mov %eax, 16(%ebx)
    mov %cr2, %eax
    mov %eax, 20(%ebx)
    lea 8(%esp), %eax
    mov %eax, 24(%ebx)
    incl pm_nrec
    mov pm_skip, %eax
    add %eax, 16(%esp)
    pop %ebx
    pop %eax
    add $8, %esp
    iret

    .balign 8
pm_idt: .fill 32, 8, 0
pm_idt_ptr:
    .word 32 * 8 - 1
    .long pm_idt
pm_no_idt:
    .word 0
    .long 0
pm_skip: .long 0
pm_nrec: .long 0
    .balign 32
pm_records: .fill 8 * 32, 1, 0
pm_done:
"""


#: In long mode: the PIC at vectors 0x20.., the PIT's channel 0 every 10 ms, a handler
#: at vector 0x20 that counts, notes the interrupted RIP and RFLAGS and sends EOI; the
#: guest waits in hlt for three ticks
TIMER = r"""
    movabs $tlow, %rax
    jmp *%rax
tlow:
    mov $t_idt + 0x20 * 16, %ecx   # vector 0x20: a 64-bit interrupt gate to h_timer
    mov $h_timer, %eax
    mov %ax, (%ecx)
    movw $0x18, 2(%ecx)
    movw $0x8E00, 4(%ecx)
    shr $16, %eax
    mov %ax, 6(%ecx)
    movq $0, 8(%ecx)
    lidt t_idt_ptr
    mov $0x11, %al                 # ICW1..ICW4: vectors 0x20.., then mask all but IRQ 0
    out %al, $0x20
    mov $0x20, %al
    out %al, $0x21
    mov $0x04, %al
    out %al, $0x21
    mov $0x01, %al
    out %al, $0x21
    mov $0xfe, %al
    out %al, $0x21
    mov $0x34, %al                 # PIT channel 0, mode 2, 11932 ticks: 10 ms
    out %al, $0x43
    mov $0x9c, %al
    out %al, $0x40
    mov $0x2e, %al
    out %al, $0x40
    sti
t_wait:
    hlt
t_after_hlt:
    cmpq $3, ticks
    jb t_wait
    cli
    mov $'t', %al
    out %al, $0xe9
    mov $'\n', %al
    out %al, $0xe9
    jmp t_done
h_timer:
    push %rax
    incq ticks
    mov 8(%rsp), %rax
    mov %rax, t_rip
    mov 16(%rsp), %rax
    mov %rax, t_cs
    mov 24(%rsp), %rax
    mov %rax, t_rflags
    mov $0x20, %al                 # EOI
    out %al, $0x20
    pop %rax
    iretq
    .balign 16
t_idt: .fill 0x21 * 2, 8, 0
t_idt_ptr:
    .word 0x21 * 16 - 1
    .quad t_idt
ticks: .quad 0
t_rip: .quad 0
t_cs: .quad 0
t_rflags: .quad 0
t_done:
"""


def _symbols(source: str) -> dict[str, int]:
    """Where the labels the test reads ended up (assembled again with markers)."""
    code = assemble(source, bits=64, org=BASE)
    out = {}
    names = ["page_a", "page_b", "page_c", "page_d", "results", "code_page", "stack_top"]
    if "\nfault_ud:" in source:
        names += ["fault_ud", "fault_gp", "fault_pf", "fault_de", "records"]
    if "t_after_hlt" in source:
        names += ["t_after_hlt", "ticks", "t_rip", "t_cs", "t_rflags"]
    if "pm_fault_ud" in source:
        names += ["pm_fault_ud", "pm_fault_gp", "pm_fault_pf", "pm_fault_de", "pm_records"]
    for name in names:
        probe = assemble(source + f"\n.code64\nmovabs ${name}, %rax\n", bits=64, org=BASE)
        out[name] = struct.unpack("<Q", probe[len(code) + 2:len(code) + 10])[0]
    return out


def _boot(tmp: Path, bad_msr: str = "", pm: str = "") -> tuple[Lab, dict[str, int]]:
    source = GUEST.replace("BAD_MSR", bad_msr).replace("PM_EXCEPTIONS", pm)
    kernel = tmp / "paging.elf"
    kernel.write_bytes(pvh_elf(assemble(source, bits=64, org=BASE), BASE))
    cfg = tmp / "paging.cfg"
    cfg.write_text(f'name = "paging"\ntype = "pvh"\nkernel = "{kernel}"\nmemory = 32\n'
                   'on_crash = "preserve"\n')
    lab = Lab(memory_mib=160, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    lab.run(max_instructions=2_000_000, max_seconds=5.0)
    return lab, _symbols(source)


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lab, dict[str, int]]:
    return _boot(tmp_path_factory.mktemp("paging"))


def _read(lab: Lab, gpa: int, size: int) -> bytes:
    d = lab.domain("paging")
    mfn = d.pfn_to_mfn(gpa >> 12)
    return lab.host.mem.read((mfn << 12) | (gpa & 0xFFF), size)


def _u32(lab: Lab, gpa: int) -> int:
    return int(struct.unpack("<I", _read(lab, gpa, 4))[0])


def _u64(lab: Lab, gpa: int) -> int:
    return int(struct.unpack("<Q", _read(lab, gpa, 8))[0])


def test_the_guest_runs_through_every_mode(booted: tuple[Lab, dict[str, int]]) -> None:
    lab, _sym = booted
    d = lab.domain("paging")
    assert not d.is_crashed, d.crash_reason
    assert "(d1) ok" in lab.xl_output("dmesg"), lab.xl_output("dmesg")


def test_32bit_paging_with_4mib_pages_and_invlpg(booted: tuple[Lab, dict[str, int]]) -> None:
    lab, sym = booted
    assert _u32(lab, sym["page_a"]) == 0x11111111
    assert _u32(lab, sym["page_b"]) == 0x22222222      # after the remap and invlpg
    # the hypercall's buffer was linear 0x40000010: Xen walked the 2-level tables
    assert _u32(lab, sym["results"]) == 0
    assert _read(lab, sym["page_a"] + 0x10, len(XEN_EXTRAVERSION)) == XEN_EXTRAVERSION


def test_pae_paging(booted: tuple[Lab, dict[str, int]]) -> None:
    lab, sym = booted
    assert _u32(lab, sym["page_c"]) == 0x33333333
    assert _u32(lab, sym["results"] + 4) == 0
    assert _read(lab, sym["page_c"] + 0x20, len(XEN_EXTRAVERSION)) == XEN_EXTRAVERSION


def test_long_mode_and_the_64bit_hypercall_convention(
        booted: tuple[Lab, dict[str, int]]) -> None:
    lab, sym = booted
    res = sym["results"]
    assert _u32(lab, sym["page_d"]) == 0x44444444
    high = 0x8000001000
    assert high < _u64(lab, res + 8) < high + 0x1000       # code ran above 4 GiB
    assert high < _u64(lab, res + 24) < high + 0x1000      # and resumed there after vmcall
    # RDI = XENVER_extraversion, RSI = a buffer above 4 GiB (EBX, ECX were garbage)
    assert _u64(lab, res + 16) == 0
    assert _read(lab, sym["page_d"] + 0x40, len(XEN_EXTRAVERSION)) == XEN_EXTRAVERSION
    records = [r for r in lab.host.trace.records if r.dom == 1 and r.name == "xen_version"]
    assert len(records) == 3


def test_msrs_a_guest_may_read_and_write(booted: tuple[Lab, dict[str, int]]) -> None:
    lab, sym = booted
    res = sym["results"]
    assert _u32(lab, res + 32) & 0x500 == 0x500                     # EFER.LME | LMA
    assert _u64(lab, res + 40) == 0x0007010600070106                 # PAT
    assert _u64(lab, res + 48) == 0xFFFFFFFF81000000                 # LSTAR
    assert _u32(lab, res + 56) == 0x00230010                         # STAR[63:32]
    assert _u64(lab, res + 64) == 0x123400000000 | 0x9ABCDEF0        # KERNEL_GS_BASE
    assert _u32(lab, res + 72) == 0xFEE00900                         # APIC base: on, BSP
    assert 0 < _u64(lab, res + 80) <= lab.host.now()                 # TSC: virtual ns
    assert _u32(lab, res + 88) == 0x44444444                         # %fs:0 is page_d
    low, high = _u64(lab, res + 96), _u64(lab, res + 104)            # rdtsc in 64-bit code
    assert low < 1 << 32 and high < 1 << 32
    assert _u64(lab, res + 80) < high << 32 | low <= lab.host.now()
    assert 1 << 40 <= _u64(lab, res + 112) < (1 << 40) + 100_000     # after wrmsr(TSC)
    assert _u64(lab, res + 120) == 0                                 # TSC_AUX, RCX's top too
    exits = [r for r in lab.host.trace.records if r.dom == 1 and r.name == "rdmsr"]
    assert {r.args["msr"] for r in exits} >= {"0xc0000080", "0xc0000082", "0x10", "0x1b"}
    assert "0x277" not in {r.args["msr"] for r in exits}            # PAT: no exit (VMX)


@pytest.mark.parametrize("insn", ["rdmsr", "wrmsr"])
def test_an_msr_xen_does_not_give_hvm_guests_is_gp(tmp_path: Path, insn: str) -> None:
    lab, _sym = _boot(tmp_path, f"mov $0xdead0001, %ecx\n    {insn}\n    out %al, $0xe9")
    d = lab.domain("paging")
    assert d.is_crashed
    assert d.crash_reason.startswith(f"Unhandled #GP general protection ({insn} 0xdead0001: "
                                     ), d.crash_reason
    assert "\n" not in d.crash_reason and "Traceback" not in lab.xl_output("dmesg")
    assert "(d1) ok" in lab.xl_output("dmesg")    # everything before it ran


def test_exceptions_in_long_mode_reach_the_guests_idt(tmp_path: Path) -> None:
    """#UD, #GP (rdmsr of an MSR Xen does not give HVM guests), #PF and #DE in 64-bit
    code go to the guest's own 64-bit interrupt gates with the frame the CPU builds:
    RIP of the faulting instruction, CS, RFLAGS, RSP, SS, the error code where the
    vector has one (#PF: write to a page not present = 2) and CR2."""
    lab, sym = _boot(tmp_path, EXCEPTIONS)
    d = lab.domain("paging")
    assert not d.is_crashed, d.crash_reason
    assert "(d1) e" in lab.xl_output("dmesg"), lab.xl_output("dmesg")
    frames = [struct.unpack("<8Q", _read(lab, sym["records"] + 64 * i, 64)) for i in range(4)]
    expected = [(6, 0, "fault_ud", None), (13, 0, "fault_gp", None),
                (14, 2, "fault_pf", 0x9000000000), (0, 0, "fault_de", None)]
    for frame, (vector, error, label, cr2) in zip(frames, expected, strict=True):
        vec, err, rip, cs, rflags, rsp, cr2_seen, frame_at = frame
        assert (vec, err, rip, cs) == (vector, error, sym[label], 0x18), (label, frame)
        assert rflags & 0x2 and not rflags & (1 << 8)
        assert rsp == sym["stack_top"]                   # the stack before the frame
        # SS, RSP, RFLAGS, CS, RIP and an error code (the CPU's, or the handler's dummy)
        # below the 16-byte aligned stack, then the handler's vector
        assert frame_at == (sym["stack_top"] & ~0xF) - 56, (label, hex(frame_at))
        if cr2 is not None:
            assert cr2_seen == cr2
    assert _u64(lab, sym["records"] + 4 * 64) == 0       # nothing else was delivered


def test_exceptions_in_protected_mode_reach_the_guests_idt(tmp_path: Path) -> None:
    """The same four faults with 32-bit paging on and 32-bit interrupt gates: EFLAGS, CS,
    EIP of the faulting instruction and the error code where the vector has one."""
    lab, sym = _boot(tmp_path, pm=PM_EXCEPTIONS)
    d = lab.domain("paging")
    assert not d.is_crashed, d.crash_reason
    assert "(d1) ok" in lab.xl_output("dmesg"), lab.xl_output("dmesg")
    frames = [struct.unpack("<8I", _read(lab, sym["pm_records"] + 32 * i, 32))
              for i in range(4)]
    expected = [(6, 0, "pm_fault_ud", None), (13, 0, "pm_fault_gp", None),
                (14, 2, "pm_fault_pf", 0x50000000), (0, 0, "pm_fault_de", None)]
    for frame, (vector, error, label, cr2) in zip(frames, expected, strict=True):
        vec, err, eip, cs, eflags, cr2_seen, frame_at, _ = frame
        assert (vec, err, eip, cs) == (vector, error, sym[label], 0x08), (label, frame)
        assert eflags & 0x2 and not eflags & (1 << 8)
        assert frame_at == sym["stack_top"] - 20, (label, hex(frame_at))
        if cr2 is not None:
            assert cr2_seen == cr2
    assert _u32(lab, sym["pm_records"] + 4 * 32) == 0


REAL_GUESTS = Path(os.environ.get("XENLAB_REAL_GUESTS") or "~/.cache/xenlab/real-guests"
                   ).expanduser()


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_GUESTS / "initrd.gz").is_file(),
                    reason=f"no real guests in {REAL_GUESTS}: run `make real-guests`")
def test_debians_linux_as_a_pvh_guest_boots_to_its_busybox_prompt(tmp_path: Path) -> None:
    """Debian's Linux through the PVH entry point: 32-bit start, its own page tables,
    long mode, its early #PF handler building the direct map, the MSRs it reads, its
    console on hvc0, the local APIC, then user space in ring 3 (busybox's init: page
    faults, ``syscall``/``sysret``, timer interrupts from ring 3) to the shell prompt
    (about 1.5 G instructions: a minute or two)."""
    cfg = tmp_path / "linux-pvh.cfg"
    cfg.write_text(f'name = "linux-pvh"\ntype = "pvh"\nkernel = "{REAL_GUESTS / "vmlinuz"}"\n'
                   f'ramdisk = "{REAL_GUESTS / "initrd.gz"}"\nmemory = 256\n'
                   'cmdline = "console=hvc0"\non_crash = "preserve"\n')
    lab = Lab(memory_mib=512, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    for _ in range(40):
        lab.run(max_instructions=50_000_000, max_seconds=60.0)
        out = lab.xl_output("console linux-pvh")
        if "/ # " in out or lab.domain("linux-pvh").is_crashed:
            break
    d = lab.domain("linux-pvh")
    assert not d.is_crashed, d.crash_reason
    assert out.startswith("[    0.000000] Linux version "), out[:300]
    for line in ("Hypervisor detected: Xen HVM", "Booting kernel on Xen PVH",
                 "Xen version: 4.17.0-xenlab", "printk: console [hvc0] enabled",
                 "Run /init as init process", "is up as a Xen PVH guest",
                 "BusyBox v1.35.0"):
        assert line in out, (line, out[-2000:])
    assert out.rstrip().endswith("/ #") or "/ # " in out, out[-1000:]
    assert "Kernel panic" not in out and "unchecked MSR access" not in out
    assert "segfault" not in out and "trap invalid opcode" not in out


def test_timer_interrupts_in_long_mode_reach_the_guests_idt(tmp_path: Path) -> None:
    """IRQ 0 from the PIT through the vPIC, while the guest waits in hlt in long mode:
    the 64-bit frame holds the RIP after the hlt, CS and RFLAGS with IF set."""
    lab, sym = _boot(tmp_path, TIMER)
    d = lab.domain("paging")
    assert not d.is_crashed, d.crash_reason
    assert "(d1) t" in lab.xl_output("dmesg"), lab.xl_output("dmesg")
    assert _u64(lab, sym["ticks"]) == 3
    assert _u64(lab, sym["t_rip"]) == sym["t_after_hlt"]
    assert _u64(lab, sym["t_cs"]) == 0x18
    assert _u64(lab, sym["t_rflags"]) & (1 << 9)
    injected = [r for r in lab.host.trace.records if r.dom == 1 and r.name == "inject_irq"]
    assert [r.args["vector"] for r in injected] == ["0x20"] * 3
    assert {r.args["mode"] for r in injected} == {"long"}
    times = [r.time for r in injected]
    assert all(9_000_000 <= b - a <= 11_000_000 for a, b in itertools.pairwise(times))
