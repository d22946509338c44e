"""An HVM guest's ISA IRQ lines: the levels a device model drives, edges to the vPIC.

The device model (QEMU) sets the level of an ISA IRQ line with
``XEN_DMOP_set_isa_irq_level``. Xen remembers each line's level (``hvm_irq.isa_irq``)
and hands the emulated 8259s the edges: a rising edge sets the line's IRR bit, a
falling edge clears it. A device that has more to say after the guest read its data
lowers the line and raises it again (the PS/2 keyboard with bytes left in its queue):
a second rising edge, a second interrupt once the guest has sent its EOI.

Real Xen: xen/arch/x86/hvm/irq.c (hvm_isa_irq_assert, hvm_isa_irq_deassert),
xen/arch/x86/hvm/vpic.c (vpic_irq_positive_edge, vpic_irq_negative_edge),
xen/arch/x86/hvm/dm.c (XEN_DMOP_set_isa_irq_level)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xenlab.xen.hvm.vpic import Vpic

__all__ = ["NR_ISAIRQS", "HvmIrq", "hvm_isa_irq_assert", "hvm_isa_irq_deassert",
           "set_isa_irq_level"]

NR_ISAIRQS = 16


class HvmIrq:
    """``struct hvm_irq``: which ISA IRQ lines are asserted, one bit each."""

    def __init__(self) -> None:
        self.isa_irq = 0


def hvm_isa_irq_assert(irq: HvmIrq, vpic: Vpic, isa_irq: int) -> None:
    """Raise the line; only a rising edge reaches the vPIC."""
    if not irq.isa_irq >> isa_irq & 1:
        irq.isa_irq |= 1 << isa_irq
        vpic.raise_irq(isa_irq)          # vpic_irq_positive_edge


def hvm_isa_irq_deassert(irq: HvmIrq, vpic: Vpic, isa_irq: int) -> None:
    """Lower the line; a falling edge takes back a request not yet acknowledged."""
    if irq.isa_irq >> isa_irq & 1:
        irq.isa_irq &= ~(1 << isa_irq)
        vpic.lower_irq(isa_irq)          # vpic_irq_negative_edge


def set_isa_irq_level(irq: HvmIrq, vpic: Vpic, isa_irq: int, level: int) -> None:
    """``XEN_DMOP_set_isa_irq_level``: the device model drives line ``isa_irq``."""
    if not 0 <= isa_irq < NR_ISAIRQS:
        raise ValueError(f"ISA IRQ {isa_irq} out of range 0..{NR_ISAIRQS - 1}")
    if level & 1:
        hvm_isa_irq_assert(irq, vpic, isa_irq)
    else:
        hvm_isa_irq_deassert(irq, vpic, isa_irq)
