"""The local APIC (Xen's vlapic) and the IO-APIC's virtual wire, register by register."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xenlab.xen.hvm.vioapic import Vioapic
from xenlab.xen.hvm.vlapic import (
    APIC_LVT0,
    APIC_LVT_MASKED,
    APIC_LVTT,
    VLAPIC_VERSION,
    Vlapic,
)
from xenlab.xen.trace import Kind


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _lapic(vcpu_id: int = 0) -> tuple[Vlapic, Clock]:
    clock = Clock()
    return Vlapic(vcpu_id, clock), clock


def test_reset_state_is_xens() -> None:
    lapic, _ = _lapic(1)
    assert lapic.mmio_read(0x20, 4) == 2 << 24           # APIC ID = vcpu_id * 2
    assert lapic.mmio_read(0x30, 4) == VLAPIC_VERSION == 0x00050014
    assert lapic.mmio_read(0xF0, 4) == 0xFF              # software-disabled
    assert lapic.mmio_read(0xE0, 4) == 0xFFFF_FFFF
    assert all(lapic.mmio_read(reg, 4) == APIC_LVT_MASKED for reg in range(0x320, 0x380, 0x10))
    assert lapic.mmio_read(0x31, 1) == 0x00 and lapic.mmio_read(0x32, 1) == 0x05


def test_lvt_writes_stay_masked_while_the_apic_is_disabled() -> None:
    lapic, _ = _lapic()
    lapic.mmio_write(APIC_LVTT, 4, 0x30)
    assert lapic.mmio_read(APIC_LVTT, 4) == APIC_LVT_MASKED | 0x30
    lapic.mmio_write(0xF0, 4, 0x1FF)
    lapic.mmio_write(APIC_LVTT, 4, 0x30)
    assert lapic.mmio_read(APIC_LVTT, 4) == 0x30
    lapic.mmio_write(0xF0, 4, 0xFF)                      # disable again: all masked
    assert lapic.mmio_read(APIC_LVTT, 4) & APIC_LVT_MASKED


def test_one_shot_timer_counts_down_the_divided_100mhz_bus_clock() -> None:
    lapic, clock = _lapic()
    lapic.mmio_write(0xF0, 4, 0x1FF)
    lapic.mmio_write(0x3E0, 4, 0x0)                      # divide by 2
    lapic.mmio_write(APIC_LVTT, 4, 0x40)
    lapic.mmio_write(0x380, 4, 1000)                     # 1000 * 2 * 10 ns = 20 us
    assert lapic.next_timer == 20_000
    clock.now = 5_000
    assert lapic.mmio_read(0x390, 4) == 750
    assert not lapic.timer_due(clock.now)
    clock.now = 20_000
    assert lapic.timer_due(clock.now)
    assert lapic.mmio_read(0x390, 4) == 0 and lapic.next_timer is None
    assert lapic.ack() == 0x40 and lapic.mmio_read(0x100 + 0x20, 4) == 1   # ISR bit 64


def test_periodic_timer_rearms_without_making_up_missed_periods() -> None:
    lapic, clock = _lapic()
    lapic.mmio_write(0xF0, 4, 0x1FF)
    lapic.mmio_write(0x3E0, 4, 0xB)                      # divide by 1
    lapic.mmio_write(APIC_LVTT, 4, (1 << 17) | 0x31)
    lapic.mmio_write(0x380, 4, 100)                      # 1 us
    clock.now = 3_500
    assert lapic.timer_due(clock.now)
    assert lapic.next_timer == 4_000
    assert lapic.irr == 1 << 0x31
    assert lapic.mmio_read(0x390, 4) == 50


def test_priorities_ack_and_eoi() -> None:
    lapic, _ = _lapic()
    lapic.mmio_write(0xF0, 4, 0x1FF)
    lapic.set_irq(0x51)
    lapic.set_irq(0x62)
    lapic.mmio_write(0x80, 4, 0x60)                      # TPR class 6 blocks 0x62
    assert lapic.pending() is None
    lapic.mmio_write(0x80, 4, 0)
    assert lapic.ack() == 0x62
    assert lapic.mmio_read(0xA0, 4) == 0x60             # PPR: the class in service
    assert lapic.pending() is None                       # 0x51 is a lower class
    lapic.mmio_write(0xB0, 4, 0)                         # EOI
    assert lapic.ack() == 0x51
    lapic.set_irq(3)                                      # an illegal vector
    assert lapic.mmio_read(0x280, 4) & (1 << 6)


def test_self_ipi_is_delivered_and_others_are_dropped() -> None:
    lapic, _ = _lapic()
    lapic.mmio_write(0xF0, 4, 0x1FF)
    lapic.mmio_write(0x300, 4, (1 << 18) | 0x77)         # shorthand "self"
    assert lapic.pending() == 0x77
    lapic.mmio_write(0x310, 4, 2 << 24)                  # to APIC 2: another vCPU
    lapic.mmio_write(0x300, 4, 0x78)
    assert lapic.ipis_dropped == 1


def test_the_pic_reaches_the_bsp_through_a_virtual_wire_only() -> None:
    lapic, _ = _lapic()
    ioapic = Vioapic()
    assert not lapic.accepts_pic(ioapic.pic_wired_to(0))   # reset: LINT0 masked
    lapic.hw_disabled = True
    assert lapic.accepts_pic(False)                        # IA32_APIC_BASE disabled
    lapic.hw_disabled = False
    # hvmloader's apic_setup: APIC on, LINT0 ExtINT masked, IO-APIC pin 0 ExtINT to APIC 0
    lapic.mmio_write(0xF0, 4, 0x1FF)
    lapic.mmio_write(APIC_LVT0, 4, 0x10700)
    for reg, value in ((0x10, 0x700), (0x11, 0)):
        ioapic.mmio_write(0x00, 4, reg)
        ioapic.mmio_write(0x10, 4, value)
    assert ioapic.pic_wired_to(0) and lapic.accepts_pic(ioapic.pic_wired_to(0))
    lapic.mmio_write(APIC_LVT0, 4, 0x700)                 # or LINT0 itself as ExtINT
    assert lapic.accepts_pic(False)
    assert not Vlapic(1, Clock()).accepts_pic(True)         # never an AP


def test_ioapic_registers() -> None:
    ioapic = Vioapic()
    ioapic.mmio_write(0x00, 4, 0x01)
    assert ioapic.mmio_read(0x10, 4) == 0x002F0011         # 48 pins, version 0x11
    ioapic.mmio_write(0x00, 4, 0x00)
    ioapic.mmio_write(0x10, 4, 1 << 24)
    assert ioapic.mmio_read(0x10, 4) == 1 << 24
    ioapic.mmio_write(0x00, 4, 0x12)                       # pin 1, low: masked at reset
    assert ioapic.mmio_read(0x10, 4) == 1 << 16
    assert ioapic.mmio_read(0x00, 4) == 0x12


# A PVH guest that sends itself one IPI (ICR: vector 0x40, shorthand "self") with IF
# set, counts the interrupts in its handler and prints the count on port 0xE9.
SELF_IPI_GUEST = r"""
        .code32
start:  cli
        lgdt    gdt_ptr
        ljmp    $0x08, $1f
1:      mov     $0x10, %eax
        mov     %eax, %ds
        mov     %eax, %es
        mov     %eax, %ss
        mov     $stack_top, %esp
        mov     $handler, %eax                  /* IDT gate 0x40: an interrupt gate */
        mov     %ax, idt + 0x40 * 8
        movw    $0x08, idt + 0x40 * 8 + 2
        movw    $0x8e00, idt + 0x40 * 8 + 4
        shr     $16, %eax
        mov     %ax, idt + 0x40 * 8 + 6
        lidt    idt_ptr
        movl    $0x1ff, 0xfee000f0              /* the local APIC on */
        sti
        movl    $0x40040, 0xfee00300            /* ICR: self, fixed, vector 0x40 */
        nop
        cli
        mov     count, %eax
        add     $0x30, %al
        out     %al, $0xe9                      /* the count, as a digit */
        mov     $0x0a, %al
        out     %al, $0xe9
2:      hlt
        jmp     2b
handler:
        incl    count
        movl    $0, 0xfee000b0                  /* EOI */
        iret
        .balign 8
gdt:    .quad   0, 0x00cf9a000000ffff, 0x00cf92000000ffff
gdt_ptr: .word  23
        .long   gdt
idt_ptr: .word  0x41 * 8 - 1
        .long   idt
count:  .long   0
        .balign 8
idt:    .fill   0x41, 8, 0
        .fill   1024, 1, 0
stack_top:
"""


@pytest.mark.skipif(shutil.which("as") is None, reason="needs GNU as (Debian: binutils)")
def test_a_self_ipi_is_taken_once(tmp_path: Path) -> None:
    """The ICR write makes the interrupt pending; the guest takes it at the next
    instruction boundary where IF allows (interrupt-window exiting), once. (Ending the
    run from inside the MMIO write made unicorn run the store again after the handler
    returned: an IPI storm, 87,000 interrupts in half a second.)"""
    from test_pvh_physmap import pvh_elf

    from xenlab.lab import Lab
    from xenlab.labkit import assemble

    kernel = tmp_path / "ipi.elf"
    kernel.write_bytes(pvh_elf(assemble(SELF_IPI_GUEST, bits=32, org=0x100000)))
    cfg = tmp_path / "ipi.cfg"
    cfg.write_text(f'name = "ipi"\ntype = "pvh"\nkernel = "{kernel}"\nmemory = 32\n')
    lab = Lab(memory_mib=160, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    lab.run(max_instructions=2_000_000, max_seconds=0.5)
    assert "(d1) 1" in lab.xl_output("dmesg").splitlines()[-1]
    injected = [r for r in lab.host.trace.records
                if r.dom == 1 and r.kind is Kind.EVENT and r.name == "inject_irq"]
    assert len(injected) == 1
