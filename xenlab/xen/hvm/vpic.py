"""The two 8259A interrupt controllers (master at 0x20, slave at 0xA0), emulated by Xen.

Real Xen: xen/arch/x86/hvm/vpic.c
"""

from __future__ import annotations

__all__ = ["Vpic"]


class _I8259:
    def __init__(self, base_vector: int) -> None:
        self.irr = 0
        self.isr = 0
        self.imr = 0xFF
        self.vector_base = base_vector
        self.init_step = 0
        self.read_isr = False
        self.auto_eoi = False
        self.icw4_needed = False

    def write(self, port_low: int, value: int) -> None:
        if port_low == 0:  # command port
            if value & 0x10:  # ICW1
                self.init_step = 2
                self.icw4_needed = bool(value & 1)
                self.imr = 0
                self.isr = 0
                self.irr = 0
            elif value & 0x08:  # OCW3
                if value & 0x02:
                    self.read_isr = bool(value & 0x01)
            elif value & 0x20:  # OCW2: EOI
                if value & 0x40:  # specific EOI
                    self.isr &= ~(1 << (value & 7))
                elif self.isr:
                    lowest = (self.isr & -self.isr)
                    self.isr &= ~lowest
        else:  # data port
            if self.init_step == 2:  # ICW2: vector base
                self.vector_base = value & 0xF8
                self.init_step = 3
            elif self.init_step == 3:  # ICW3: cascade
                self.init_step = 4 if self.icw4_needed else 0
            elif self.init_step == 4:  # ICW4
                self.auto_eoi = bool(value & 2)
                self.init_step = 0
            else:  # OCW1: mask
                self.imr = value & 0xFF

    def read(self, port_low: int) -> int:
        if port_low == 0:
            return self.isr if self.read_isr else self.irr
        return self.imr

    def pending(self) -> int | None:
        ready = self.irr & ~self.imr
        for irq in range(8):
            if ready >> irq & 1:
                if self.isr and (self.isr & -self.isr).bit_length() - 1 <= irq:
                    return None  # a higher-priority interrupt is in service
                return irq
        return None


class Vpic:
    """Master + slave; IRQ 2 cascades the slave."""

    def __init__(self) -> None:
        self.master = _I8259(0x08)
        self.slave = _I8259(0x70)

    def io(self, port: int, write: bool, value: int) -> int:
        chip = self.master if port in (0x20, 0x21) else self.slave
        if write:
            chip.write(port & 1, value)
            return 0
        return chip.read(port & 1)

    def raise_irq(self, irq: int) -> None:
        if irq < 8:
            self.master.irr |= 1 << irq
        else:
            self.slave.irr |= 1 << (irq - 8)
            self.master.irr |= 1 << 2

    def lower_irq(self, irq: int) -> None:
        if irq < 8:
            self.master.irr &= ~(1 << irq)
        else:
            self.slave.irr &= ~(1 << (irq - 8))

    def ack(self) -> int | None:
        """The CPU takes the highest-priority unmasked interrupt: returns its vector."""
        irq = self.master.pending()
        if irq is None:
            return None
        if irq == 2:
            sirq = self.slave.pending()
            if sirq is None:
                self.master.irr &= ~(1 << 2)
                return None
            self.slave.irr &= ~(1 << sirq)
            if not self.slave.auto_eoi:
                self.slave.isr |= 1 << sirq
            if not self.slave.irr:
                self.master.irr &= ~(1 << 2)
            if not self.master.auto_eoi:
                self.master.isr |= 1 << 2
            return self.slave.vector_base + sirq
        self.master.irr &= ~(1 << irq)
        if not self.master.auto_eoi:
            self.master.isr |= 1 << irq
        return self.master.vector_base + irq

    def has_pending(self) -> bool:
        irq = self.master.pending()
        if irq == 2:
            return self.slave.pending() is not None
        return irq is not None
