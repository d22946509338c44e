"""The IO-APIC of an HVM domain, emulated by Xen at 0xFEC00000: its index/data window,
ID, version (48 pins) and redirection table.

What xenlab uses of it: hvmloader routes the 8259A's output through pin 0 in ExtINT
mode to the BSP's local APIC (the "virtual wire" of its apic_setup), and Xen then
delivers the PIC's interrupts to vCPU 0 (``__vlapic_accept_pic_intr``).

Simplified: the ISA IRQ lines reach the guest through the PIC only; a redirection
entry is kept and read back but routes nothing else (no MSI, no level-triggered EOI).

Real Xen: xen/arch/x86/hvm/vioapic.c
"""

from __future__ import annotations

__all__ = ["IOAPIC_BASE", "VIOAPIC_NUM_PINS", "VIOAPIC_VERSION_ID", "Vioapic"]

IOAPIC_BASE = 0xFEC00000
VIOAPIC_NUM_PINS = 48            # xen/include/public/arch-x86/hvm/save.h
VIOAPIC_VERSION_ID = 0x11
VIOAPIC_REG_SELECT, VIOAPIC_REG_WINDOW = 0x00, 0x10
VIOAPIC_REG_APIC_ID, VIOAPIC_REG_VERSION, VIOAPIC_REG_ARB_ID = 0x00, 0x01, 0x02
VIOAPIC_REG_RTE0 = 0x10
_MASKED = 1 << 16
_DM_EXTINT = 7


class Vioapic:
    """One domain's IO-APIC: the register select, ID and redirection table."""

    def __init__(self) -> None:
        self.ioregsel = 0
        self.id = 0
        self.redirtbl = [_MASKED] * VIOAPIC_NUM_PINS

    def mmio_read(self, offset: int, size: int) -> int:
        """vioapic_read: the select register, or the register it selects."""
        if offset == VIOAPIC_REG_SELECT:
            return self.ioregsel
        if offset != VIOAPIC_REG_WINDOW:
            return 0
        return self._read_indirect() & ((1 << (8 * size)) - 1)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        """vioapic_write: select a register, or write the selected one."""
        if offset == VIOAPIC_REG_SELECT:
            self.ioregsel = value & 0xFF
        elif offset == VIOAPIC_REG_WINDOW:
            self._write_indirect(value & 0xFFFF_FFFF)

    def _read_indirect(self) -> int:
        reg = self.ioregsel
        if reg == VIOAPIC_REG_APIC_ID:
            return self.id << 24
        if reg in (VIOAPIC_REG_VERSION, VIOAPIC_REG_ARB_ID):
            if reg == VIOAPIC_REG_ARB_ID:
                return self.id << 24
            return ((VIOAPIC_NUM_PINS - 1) << 16) | VIOAPIC_VERSION_ID
        pin = (reg - VIOAPIC_REG_RTE0) >> 1
        if reg < VIOAPIC_REG_RTE0 or pin >= VIOAPIC_NUM_PINS:
            return 0xFFFF_FFFF
        return (self.redirtbl[pin] >> (32 * (reg & 1))) & 0xFFFF_FFFF

    def _write_indirect(self, value: int) -> None:
        reg = self.ioregsel
        if reg == VIOAPIC_REG_APIC_ID:
            self.id = (value >> 24) & 0xF
            return
        pin = (reg - VIOAPIC_REG_RTE0) >> 1
        if reg < VIOAPIC_REG_RTE0 or pin >= VIOAPIC_NUM_PINS:
            return
        entry = self.redirtbl[pin]
        if reg & 1:
            entry = (entry & 0xFFFF_FFFF) | ((value & 0xFF00_0000) << 32)
        else:   # delivery status and remote IRR are read-only
            entry = (entry & ~0xFFFF_FFFF) | (entry & 0x5000) | (value & ~0x5000 & 0x1AFFF)
        self.redirtbl[pin] = entry

    def pic_wired_to(self, apic_id: int) -> bool:
        """Pin 0 is unmasked, in ExtINT mode, to local APIC ``apic_id`` (physical)."""
        entry = self.redirtbl[0]
        return (not entry & _MASKED and (entry >> 8) & 7 == _DM_EXTINT
                and entry >> 56 == apic_id)
