"""The local APIC of an HVM vCPU, emulated by Xen at 0xFEE00000 (xAPIC mode).

What a guest's kernel uses of it: the ID and version, the task priority, the
spurious-interrupt vector register that enables it, the 256-bit request and in-service
registers with EOI, the LVT entries, and the timer: one-shot or periodic, counting the
APIC bus clock (100 MHz, Xen's APIC_BUS_CYCLE_NS) divided as the divide configuration
register says. An accepted vector goes to the guest's IDT by the CPU layer, like the
PIC's; the PIC's interrupts reach the BSP through the IO-APIC's pin 0 or LINT0 in ExtINT
mode (the "virtual wire" firmware sets up), or while the APIC is disabled
(vlapic_accept_pic_intr).

Simplified: no x2APIC MSRs (CPUID hides x2APIC), no TSC-deadline timer mode, and an
ICR write delivers only a fixed interrupt to this vCPU itself (a self IPI); an IPI to
another vCPU is dropped and counted in ``ipis_dropped``.

Real Xen: xen/arch/x86/hvm/vlapic.c, xen/arch/x86/hvm/vpt.c (the timer)
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["APIC_BASE", "APIC_BUS_CYCLE_NS", "VLAPIC_VERSION", "Vlapic"]

APIC_BASE = 0xFEE00000
APIC_BUS_CYCLE_NS = 10           # xen/arch/x86/hvm/vlapic.c: "vlapic's frequence is 100 MHz"
VLAPIC_VERSION = 0x00050014      # six LVT entries, version 0x14 (as QEMU's APIC too)

APIC_ID, APIC_LVR, APIC_TASKPRI, APIC_ARBPRI, APIC_PROCPRI = 0x20, 0x30, 0x80, 0x90, 0xA0
APIC_EOI, APIC_LDR, APIC_DFR, APIC_SPIV = 0xB0, 0xD0, 0xE0, 0xF0
APIC_ISR, APIC_TMR, APIC_IRR, APIC_ESR = 0x100, 0x180, 0x200, 0x280
APIC_ICR, APIC_ICR2 = 0x300, 0x310
APIC_LVTT, APIC_LVTTHMR, APIC_LVTPC, APIC_LVT0, APIC_LVT1, APIC_LVTERR = (
    0x320, 0x330, 0x340, 0x350, 0x360, 0x370)
APIC_TMICT, APIC_TMCCT, APIC_TDCR = 0x380, 0x390, 0x3E0

APIC_SPIV_APIC_ENABLED = 1 << 8
APIC_LVT_MASKED = 1 << 16
APIC_TIMER_PERIODIC = 1 << 17
APIC_MODE_MASK, APIC_DM_EXTINT = 0x700, 0x700
_LVTS = (APIC_LVTT, APIC_LVTTHMR, APIC_LVTPC, APIC_LVT0, APIC_LVT1, APIC_LVTERR)
#: the bits of each LVT entry a guest may write (vlapic_lvt_mask)
_LVT_WRITABLE = {APIC_LVTT: 0x300FF, APIC_LVTTHMR: 0x107FF, APIC_LVTPC: 0x107FF,
                 APIC_LVT0: 0x1A7FF, APIC_LVT1: 0x1A7FF, APIC_LVTERR: 0x100FF}


def _top(bits: int) -> int:
    """The highest vector set in a 256-bit register, -1 if none."""
    return bits.bit_length() - 1


class Vlapic:
    """One vCPU's local APIC: registers by offset, the timer in virtual ns."""

    def __init__(self, vcpu_id: int, clock: Callable[[], int]) -> None:
        self.vcpu_id = vcpu_id
        self.clock = clock
        self.irr = 0
        self.isr = 0
        self.tpr = 0
        self.ldr = 0
        self.dfr = 0xFFFF_FFFF
        self.svr = 0xFF                          # software-disabled after reset
        self.esr = 0
        self.icr = 0
        self.icr2 = 0
        self.lvt = dict.fromkeys(_LVTS, APIC_LVT_MASKED)
        self.tmict = 0
        self.tdcr = 0
        self.timer_start = 0
        self.next_timer: int | None = None       # when the timer next fires (virtual ns)
        self.ipis_dropped = 0
        self.hw_disabled = False                 # IA32_APIC_BASE's enable bit clear
        self.reads: dict[int, Callable[[], int]] = {
            APIC_ID: lambda: (self.vcpu_id * 2) << 24,     # Xen: APIC ID = vcpu_id * 2
            APIC_LVR: lambda: VLAPIC_VERSION,
            APIC_TASKPRI: lambda: self.tpr,
            APIC_ARBPRI: lambda: 0,
            APIC_PROCPRI: self.ppr,
            APIC_LDR: lambda: self.ldr,
            APIC_DFR: lambda: self.dfr,
            APIC_SPIV: lambda: self.svr,
            APIC_ESR: lambda: self.esr,
            APIC_ICR: lambda: self.icr,
            APIC_ICR2: lambda: self.icr2,
            APIC_TMICT: lambda: self.tmict,
            APIC_TMCCT: self.current_count,
            APIC_TDCR: lambda: self.tdcr,
        }
        for reg in _LVTS:
            self.reads[reg] = (lambda r: lambda: self.lvt[r])(reg)
        for i in range(8):
            self.reads[APIC_ISR + 0x10 * i] = (lambda k: lambda: self.isr >> (32 * k)
                                               & 0xFFFF_FFFF)(i)
            self.reads[APIC_IRR + 0x10 * i] = (lambda k: lambda: self.irr >> (32 * k)
                                               & 0xFFFF_FFFF)(i)
            self.reads[APIC_TMR + 0x10 * i] = lambda: 0
        self.writes: dict[int, Callable[[int], None]] = {
            APIC_TASKPRI: self._set_tpr,
            APIC_EOI: lambda _value: self.eoi(),
            APIC_LDR: self._set_ldr,
            APIC_DFR: self._set_dfr,
            APIC_SPIV: self._set_svr,
            APIC_ESR: self._clear_esr,
            APIC_ICR: self._send_ipi,
            APIC_ICR2: self._set_icr2,
            APIC_TMICT: self._set_tmict,
            APIC_TDCR: self._set_tdcr,
        }
        for reg in _LVTS:
            self.writes[reg] = (lambda r: lambda value: self._set_lvt(r, value))(reg)

    # -- the MMIO page: 32-bit registers at 16-byte strides -----------------------------
    def mmio_read(self, offset: int, size: int) -> int:
        """vlapic_read: a register (0 for a reserved one); narrower reads take its low
        bytes at the offset."""
        reg = offset & 0xFF0
        read = self.reads.get(reg)
        value = read() if read is not None else 0
        return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        """vlapic_write: 32-bit writes to writable registers; the rest are ignored."""
        if offset & 0xF or size != 4:
            return
        write = self.writes.get(offset & 0xFF0)
        if write is not None:
            write(value & 0xFFFF_FFFF)

    # -- priorities and acceptance ------------------------------------------------------
    def enabled(self) -> bool:
        return bool(self.svr & APIC_SPIV_APIC_ENABLED)

    def ppr(self) -> int:
        """vlapic_get_ppr: the task priority or the highest in-service class."""
        isrv = max(_top(self.isr), 0)
        return self.tpr & 0xFF if (self.tpr & 0xF0) >= (isrv & 0xF0) else isrv & 0xF0

    def pending(self) -> int | None:
        """vlapic_has_pending_irq: the highest requested vector above the PPR's class."""
        vector = _top(self.irr)
        if vector < 0 or (vector & 0xF0) <= (self.ppr() & 0xF0):
            return None
        return vector

    def ack(self) -> int | None:
        """vlapic_ack_pending_irq: the CPU takes the vector (IRR to ISR)."""
        vector = self.pending()
        if vector is not None:
            self.irr &= ~(1 << vector)
            self.isr |= 1 << vector
        return vector

    def eoi(self) -> None:
        """vlapic_EOI_set: the highest vector in service is done."""
        vector = _top(self.isr)
        if vector >= 0:
            self.isr &= ~(1 << vector)

    def set_irq(self, vector: int) -> None:
        """vlapic_set_irq: a fixed interrupt arrives (vectors below 16 are illegal)."""
        if vector < 16:
            self.esr |= 1 << 6   # received illegal vector
            return
        self.irr |= 1 << vector

    def accepts_pic(self, ioapic_wired: bool) -> bool:
        """__vlapic_accept_pic_intr: the BSP takes the PIC's output if the IO-APIC's pin 0
        is wired to it in ExtINT mode (``ioapic_wired``) and it is enabled, or if LINT0 is
        unmasked in ExtINT mode, or if its APIC is disabled in IA32_APIC_BASE."""
        lvt0 = self.lvt[APIC_LVT0]
        return self.vcpu_id == 0 and (
            (ioapic_wired and self.enabled() and not self.hw_disabled)
            or lvt0 & (APIC_MODE_MASK | APIC_LVT_MASKED) == APIC_DM_EXTINT
            or self.hw_disabled)

    # -- register writes ----------------------------------------------------------------
    def _set_tpr(self, value: int) -> None:
        self.tpr = value & 0xFF

    def _set_ldr(self, value: int) -> None:
        self.ldr = value & 0xFF00_0000

    def _set_dfr(self, value: int) -> None:
        self.dfr = value | 0x0FFF_FFFF

    def _set_svr(self, value: int) -> None:
        self.svr = value & 0x3FF
        if not self.enabled():   # software disable masks every LVT entry
            for reg in _LVTS:
                self.lvt[reg] |= APIC_LVT_MASKED

    def _clear_esr(self, _value: int) -> None:
        self.esr = 0

    def _set_icr2(self, value: int) -> None:
        self.icr2 = value & 0xFF00_0000

    def _send_ipi(self, value: int) -> None:
        """vlapic_ipi: a fixed interrupt to this vCPU itself (destination shorthand
        "self", or its own APIC ID) is delivered; others are dropped (simplified)."""
        self.icr = value & ~(1 << 12)     # delivery status: idle at once
        shorthand, mode = (value >> 18) & 3, (value >> 8) & 7
        to_self = shorthand == 1 or (shorthand == 0 and self.icr2 >> 24 == self.vcpu_id * 2)
        if mode == 0 and to_self:
            self.set_irq(value & 0xFF)
        else:
            self.ipis_dropped += 1

    def _set_lvt(self, reg: int, value: int) -> None:
        value &= _LVT_WRITABLE[reg]
        if not self.enabled():
            value |= APIC_LVT_MASKED
        self.lvt[reg] = value
        if reg == APIC_LVTT and self.tmict:
            self._arm(self.clock())

    def _set_tdcr(self, value: int) -> None:
        self.tdcr = value & 0xB

    def _set_tmict(self, value: int) -> None:
        """Writing the initial count (re)starts the timer; 0 stops it."""
        self.tmict = value
        self.timer_start = self.clock()
        self.next_timer = None
        if value:
            self._arm(self.timer_start)

    # -- the timer ----------------------------------------------------------------------
    def _divisor(self) -> int:
        code = (self.tdcr & 3) | ((self.tdcr & 8) >> 1)
        return 1 << ((code + 1) & 7)

    def _period_ns(self) -> int:
        return self.tmict * self._divisor() * APIC_BUS_CYCLE_NS

    def _arm(self, now: int) -> None:
        period = self._period_ns()
        elapsed = now - self.timer_start
        if self.lvt[APIC_LVTT] & APIC_TIMER_PERIODIC:
            self.next_timer = self.timer_start + (elapsed // period + 1) * period
        elif elapsed < period:
            self.next_timer = self.timer_start + period
        else:
            self.next_timer = None

    def current_count(self) -> int:
        """TMCCT: counts down from the initial count at the divided bus clock; a one-shot
        timer stays at 0 once it has fired, a periodic one starts again."""
        if not self.tmict:
            return 0
        ticks = (self.clock() - self.timer_start) // (self._divisor() * APIC_BUS_CYCLE_NS)
        if self.lvt[APIC_LVTT] & APIC_TIMER_PERIODIC:
            return self.tmict - ticks % self.tmict
        return max(0, self.tmict - ticks)

    def timer_due(self, now: int) -> bool:
        """Has the timer fired by ``now``? Sets its vector in the IRR unless the entry is
        masked (vpt.c's pt_intr_post; missed periods are not made up, as Xen's
        ``no_missed_ticks_pending`` mode), and arms the next period."""
        due = self.next_timer
        if due is None or now < due:
            return False
        if self.lvt[APIC_LVTT] & APIC_TIMER_PERIODIC:
            period = self._period_ns()
            self.next_timer = due + ((now - due) // period + 1) * period
        else:
            self.next_timer = None
        lvtt = self.lvt[APIC_LVTT]
        if lvtt & APIC_LVT_MASKED:
            return False
        self.set_irq(lvtt & 0xFF)
        return True
