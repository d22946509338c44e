"""An HVM domain's Xen-side state and its VM exits.

An HVM guest is unmodified: it starts in 32-bit flat mode in hvmloader (or in
real mode in a BIOS) and believes it owns a PC. What it cannot have, Xen
traps: ``in``/``out`` (``handle_pio``: Xen's own PIT, RTC, PIC and debug
port, or an ioreq to the device model in Dom0), ``cpuid`` (Xen's leaves at
0x40000000: "XenVMMXenVMM", the version, the hypercall-page MSR), ``wrmsr``
to that MSR (Xen writes its ``vmcall`` stubs into the page the guest named),
``rdmsr``/``wrmsr`` of the MSRs a guest may use (EFER with its long-mode bits, PAT,
the TSC, the APIC base, MTRRs, STAR/LSTAR/CSTAR/SFMASK, the FS, GS and kernel GS
bases; anything else is #GP, hvm_msr_read_intercept / hvm_msr_write_intercept),
``vmcall`` (the HVM hypercall table), ``hlt`` (the vCPU sleeps until an
interrupt), and interrupts from the emulated PIC, which Xen injects through
the guest's IVT (real mode) or IDT (protected mode).

Real Xen: xen/arch/x86/hvm/hvm.c (hvm_hypercall, do_hvm_op, hvm_print_line,
hvm_msr_read_intercept, hvm_msr_write_intercept, hvm_set_efer), xen/arch/x86/msr.c
(guest_rdmsr, guest_wrmsr), xen/arch/x86/hvm/mtrr.c,
xen/arch/x86/hvm/vmx/vmx.c (vmx_vmexit_handler), xen/arch/x86/cpuid.c,
xen/arch/x86/hvm/vmx/intr.c (vmx_intr_assist)
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.hvm import HVM_NR_PARAMS, HvmOp, HvmParam, XenHvmParam
from xenlab.public.xen import DOMID_SELF
from xenlab.xen import traps
from xenlab.xen.domain import DomainType
from xenlab.xen.hvm.i8254 import Pit
from xenlab.xen.hvm.io import (
    DEBUG_PORT,
    PCI_CF8,
    VMEXIT_COST_NS,
    handle_pio,
    handle_pio_answered,
    handle_pio_log,
    handle_pio_rep,
)
from xenlab.xen.hvm.irq import HvmIrq
from xenlab.xen.hvm.pmtimer import PM_BASE, PmTimer
from xenlab.xen.hvm.rtc import Rtc
from xenlab.xen.hvm.vioapic import IOAPIC_BASE, Vioapic
from xenlab.xen.hvm.vlapic import APIC_DM_EXTINT, APIC_LVT0, APIC_LVT_MASKED, APIC_LVTT, Vlapic
from xenlab.xen.hvm.vpic import Vpic
from xenlab.xen.rangeset import RangeSet
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.cpu.x86 import X86Vcpu
    from xenlab.xen.domain import Domain, Vcpu
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.setup import XenHost

__all__ = ["HYPERCALL_MSR", "PHASE_PREFIXES", "HvmDomain", "HvmTraps", "do_hvm_op",
           "hvm_inject_hw_exception", "hvm_msr_read_intercept", "hvm_msr_write_intercept"]

_IOREQ_PFN = int(HvmParam.HVM_PARAM_IOREQ_PFN)
HYPERCALL_MSR = 0x40000000  # what CPUID 0x40000002 EBX tells the guest
EFLAGS_IF = 1 << 9

# MSRs (xen/arch/x86/include/asm/msr-index.h)
MSR_IA32_TSC = 0x10
MSR_IA32_APICBASE = 0x1B
MSR_IA32_UCODE_REV = 0x8B
MSR_MTRRcap = 0xFE
MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP = 0x174, 0x175, 0x176
MSR_IA32_MISC_ENABLE = 0x1A0
MSR_IA32_CR_PAT = 0x277
MSR_MTRRdefType = 0x2FF
MSR_EFER = 0xC0000080
MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK = 0xC0000081, 0xC0000082, 0xC0000083, \
    0xC0000084
MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE, MSR_TSC_AUX = 0xC0000100, 0xC0000101, \
    0xC0000102, 0xC0000103
EFER_SCE, EFER_LME, EFER_LMA, EFER_NXE = 1 << 0, 1 << 8, 1 << 10, 1 << 11
CR0_PG = 1 << 31
#: MTRRs as hvm/mtrr.c keeps them: 8 variable ranges (base/mask pairs) and the fixed ones
_MTRR_MSRS = frozenset((MSR_MTRRdefType, 0x250, 0x258, 0x259, *range(0x200, 0x210),
                        *range(0x268, 0x270)))
MTRR_CAP = 8 | (1 << 8) | (1 << 10)         # VCNT 8, fixed ranges, write-combining
MISC_ENABLE = (1 << 11) | (1 << 12)         # BTS and PEBS unavailable (guest_misc_enable)
#: MSRs the vCPU itself holds (the CPU uses them); the addresses among them must be
#: canonical. VMX lets the guest read and write the segment bases, SYSENTER and PAT
#: without an exit (vmx_clear_msr_intercept); the others exit to Xen.
_CPU_MSRS = frozenset((MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
                       MSR_IA32_CR_PAT, MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK,
                       MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE, MSR_TSC_AUX))
_CANONICAL_MSRS = frozenset((MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_LSTAR,
                             MSR_CSTAR, MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE))
_NO_EXIT_MSRS = frozenset((MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
                           MSR_IA32_CR_PAT, MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE))
_PAT_TYPES = frozenset((0, 1, 4, 5, 6, 7))  # UC, WC, WT, WP, WB, UC-
# vMCE (xen/arch/x86/cpu/mcheck/vmce.c): two banks, no MCG_CTL, nothing ever logged
MSR_IA32_MCG_CAP, MSR_IA32_MCG_STATUS = 0x179, 0x17A
MSR_IA32_MC0_CTL = 0x400
GUEST_MC_BANK_NUM = 2
GUEST_MCG_CAP = (1 << 24) | (1 << 11) | GUEST_MC_BANK_NUM   # MCG_SER_P | MCG_TES_P | banks


def _canonical(value: int) -> bool:
    top = value >> 47
    return top == 0 or top == 0x1FFFF


#: Xen's per-domain line buffer for the debug port (``DOMAIN_PBUF_SIZE``): a line is
#: printed when it ends or when it reaches 199 characters, whichever comes first
DOMAIN_PBUF_SIZE = 200
#: is_console_printable: what Xen keeps of the port's bytes (isprint in Xen's Latin-1
#: ctype, newline, tab); the rest are dropped
_CONSOLE_PRINTABLE = tuple(0x20 <= c <= 0x7E or c >= 0xA0 or c in (0x09, 0x0A)
                           for c in range(256))
_NOT_PRINTABLE = bytes(c for c in range(256) if not _CONSOLE_PRINTABLE[c])
_CPUID1_ECX_XSAVE, _CPUID1_ECX_OSXSAVE, _CPUID1_ECX_RDRAND = 1 << 26, 1 << 27, 1 << 30
_X86_CR4_OSXSAVE = 1 << 18


def _leaf1_without_rdrand(cpu: X86Vcpu, subleaf: int) -> tuple[int, int, int, int]:
    """The host CPU's CPUID leaf 1 without RDRAND: unicorn's RDRAND is the host's
    randomness (two runs of Debian's Linux as a PVH guest drew different numbers and
    drifted apart), so runs would differ. xenlab's simplification, as for PV guests
    (pv_traps); Xen's own policy would pass it through. OSXSAVE follows the guest's
    CR4, as the CPU's own answer does."""
    a, b, c, d = cpu.native_cpuid(1, subleaf)
    c &= ~(_CPUID1_ECX_RDRAND | _CPUID1_ECX_OSXSAVE)
    if c & _CPUID1_ECX_XSAVE and cpu.reg("cr4") & _X86_CR4_OSXSAVE:
        c |= _CPUID1_ECX_OSXSAVE
    return a, b, c, d


class HvmDomain:
    """Per-domain HVM state: params, emulated platform devices, the ioreq server."""

    def __init__(self, host: XenHost, d: Domain) -> None:
        self.host = host
        self.d = d
        self.params: dict[int, int] = {}
        self.vpic = Vpic()
        self.vlapics: dict[int, Vlapic] = {}   # by vCPU id
        self.vioapic = Vioapic()
        self.irq = HvmIrq()              # the ISA IRQ lines' levels (hvm_irq)
        self.pit = Pit(host.now)
        self.rtc = Rtc(lambda: host.get_localtime(d))
        self.pci_cf8 = 0
        #: each port's kind for the vCPUs' native answers (io.hvm_update_native_ports)
        self.native_port_kinds = bytes(0x10000)
        self.debug_line = bytearray()
        self.ioreq_port = 0              # vp_eport: Xen notifies the device model here
        self.ioreq_emulator: int | None = None   # the device model's domain
        self.ioreq_enabled = False       # XEN_DMOP_set_ioreq_server_state
        # what the server claimed, by XEN_DMOP_IO_RANGE_* (port, memory, PCI): nothing
        # until it exists (hvm_create_ioreq_server) and maps ranges
        self.ioreq_ranges: tuple[RangeSet, ...] = tuple(RangeSet("none") for _ in range(3))
        self.io_answered = False
        self.hypercall_page_gpa: int | None = None
        self.serial = bytearray()        # filled by the device model's UART
        self.e820: list[tuple[int, int, int]] = []
        self.intercepts: dict[int, object] = {}
        for port in (0x40, 0x41, 0x42, 0x43, 0x61):
            self.intercepts[port] = self.pit.io
        for port in (0x70, 0x71):
            self.intercepts[port] = self.rtc.io
        for port in (0x20, 0x21, 0xA0, 0xA1):
            self.intercepts[port] = self.vpic.io
        self.intercepts[DEBUG_PORT] = self.debug_port
        self.pmtimer = PmTimer(host.now)
        for port in range(PM_BASE, PM_BASE + 12):
            self.intercepts[port] = self.pmtimer.io

    # -- the 0xE9 debug port: firmware's console in the Xen log -------------------------
    def debug_port(self, port: int, write: bool, value: int) -> int:
        """The port's handler: a write is one byte of the line, a read Bochs' signature."""
        if not write:
            return 0xE9  # Bochs' "port E9 hack" signature
        self.hvm_print_line(value, self.host.now())
        return 0

    def debug_line_room(self) -> int:
        """How many more characters the line takes before one makes its records."""
        return DOMAIN_PBUF_SIZE - 2 - len(self.debug_line)

    def hvm_print_line(self, value: int, now: int) -> None:
        """Xen's hvm_print_line: keep printable bytes, print the line as ``(d1) ...`` at a
        newline or when it holds 199 characters (its records at ``now``, the virtual
        time of the write that ended it)."""
        ch = value & 0xFF
        if not _CONSOLE_PRINTABLE[ch]:
            return
        if ch != 0x0A:
            self.debug_line.append(ch)
        if ch == 0x0A or len(self.debug_line) == DOMAIN_PBUF_SIZE - 1:
            text = self.debug_line.decode("latin-1")
            self.debug_line.clear()
            self.host.log.guest_write(self.d.domid, text + "\n")
            self.host.trace.emit(now, self.d.domid, 0, Kind.CONSOLE, "debug_port",
                                 {"line": text})
            phase = _phase_of(text)
            if phase:
                self.host.trace.emit(now, self.d.domid, 0, Kind.PHASE, phase, {"line": text})

    def hvm_print_run(self, data: bytes) -> bool:
        """``hvm_print_line`` for each byte of ``data`` at once, when none of them ends the
        line (no newline, and room for all): they only join it, and nothing is printed
        or recorded. False, with nothing done, otherwise."""
        if b"\n" in data or len(self.debug_line) + len(data) > DOMAIN_PBUF_SIZE - 2:
            return False
        self.debug_line += data.translate(None, _NOT_PRINTABLE)
        return True

    def io_assist(self, port: int) -> None:
        """hvm_io_assist: the device model notified ``vp_eport``, its answer is in the slot."""
        self.io_answered = True

    def ioreq_page(self) -> memoryview | None:
        """The shared ioreq page (HVM_PARAM_IOREQ_PFN), as a view kept while neither the
        param nor the domain's P2M has changed."""
        pfn = self.params.get(_IOREQ_PFN)
        cached = self._ioreq_view
        if cached is not None and cached[0] == pfn and cached[1] == self.d.p2m_gen:
            return cached[2]
        if pfn is None:
            return None
        mfn = self.d.pfn_to_mfn(pfn)
        if cached is not None and cached[3] == mfn:
            self._ioreq_view = (pfn, self.d.p2m_gen, cached[2], mfn)
            return cached[2]
        self.release()
        # hvm_map_ioreq_gfn / prepare_ring_for_helper: Xen holds a reference to the
        # page, writable, while it uses it (the frame cannot be freed under it)
        if mfn >= 1 << 52 or not self.host.xen_map_page(self.d, mfn, writable=True):
            return None
        view = self.host.mem.view(mfn << 12, 4096)
        self._ioreq_view = (pfn, self.d.p2m_gen, view, mfn)
        return view

    def release(self) -> None:
        """Drop Xen's view of the ioreq page (a new page, or the domain's destruction)."""
        cached = self._ioreq_view
        if cached is not None:
            self._ioreq_view = None
            self.host.xen_unmap_page(cached[3], writable=True)

    _ioreq_view: tuple[int, int, memoryview, int] | None = None

    def invalidate_code(self, begin: int, end: int) -> None:
        """Guest memory changed behind the vCPUs' backs (a device model's DMA-like write):
        drop code translated from it (guest-physical addresses)."""
        for v in self.d.vcpus:
            if v.cpu is not None:
                v.cpu.invalidate_code_phys(begin, end)

    def guest_write(self, gpa: int, data: bytes) -> bool:
        """Write into guest-physical memory (as Xen does for the hypercall page)."""
        for off in range(0, len(data), 4096):
            mfn = self.d.pfn_to_mfn((gpa + off) >> 12)
            if mfn >= 1 << 52:
                return False
            self.host.mem.write((mfn << 12) | ((gpa + off) & 0xFFF), data[off : off + 4096])
        for v in self.d.vcpus:
            if v.cpu is not None:
                v.cpu.invalidate_code_phys(gpa, gpa + len(data))
        return True

    # -- interrupts ------------------------------------------------------------------------
    def vlapic(self, v: Vcpu) -> Vlapic:
        """The vCPU's local APIC (made on first use, in its reset state). A PVH domain's
        has LINT0 in ExtINT mode from the start: xenlab keeps the PIC and the PIT for
        PVH guests (Xen's PVH has neither), wired as QEMU's firmware leaves them before
        a PVH entry, since no hvmloader runs to set up the virtual wire."""
        lapic = self.vlapics.get(v.vcpu_id)
        if lapic is None:
            lapic = self.vlapics[v.vcpu_id] = Vlapic(v.vcpu_id, self.host.now)
            if self.d.dtype is DomainType.PVH:
                lapic.lvt[APIC_LVT0] = APIC_DM_EXTINT
        return lapic

    def tick(self, v: Vcpu) -> None:
        """Before the vCPU runs: timer interrupts due, then inject one if it can take it:
        the PIC's while the local APIC accepts it (LINT0 as ExtINT, or the APIC
        disabled), else the local APIC's highest above its priority
        (hvm_vcpu_has_pending_irq, hvm_vcpu_ack_pending_irq)."""
        now = self.host.now()
        if self.pit.irq0_due(now):
            self.vpic.raise_irq(0)
        lapic = self.vlapic(v)
        lapic.timer_due(now)
        cpu = v.cpu
        if cpu is None or not cpu.reg("eflags") & EFLAGS_IF:
            return
        vector = None
        if self._accepts_pic(lapic) and self.vpic.has_pending():
            vector = self.vpic.ack()
        if vector is None:
            vector = lapic.ack()
        if vector is None:
            return
        why = cpu.deliver_interrupt(vector)
        if why is not None:  # the CPU would shut down (a triple fault)
            why = why if why.startswith("triple fault") else f"triple fault: {why}"
            self.host.domain_crash(self.d, v, why, cpu.registers())
            return
        self.host.trace.emit(now, self.d.domid, v.vcpu_id, Kind.EVENT, "inject_irq",
                             {"vector": hex(vector), "mode": cpu.mode().value})

    def _accepts_pic(self, lapic: Vlapic) -> bool:
        return lapic.accepts_pic(self.vioapic.pic_wired_to(lapic.vcpu_id * 2))

    def _pending(self, v: Vcpu) -> bool:
        lapic = self.vlapic(v)
        return ((self._accepts_pic(lapic) and self.vpic.has_pending())
                or lapic.pending() is not None)

    def intr_window(self, v: Vcpu) -> bool:
        """After ``tick``: whether an interrupt waits for the guest to set IF, so the
        slice must end as soon as it does (vmx_intr_assist's interrupt-window exiting,
        ``X86Vcpu.enable_intr_window``): an interrupt is then never held back longer than
        the guest holds IF clear."""
        cpu = v.cpu
        return cpu is not None and not cpu.reg("eflags") & EFLAGS_IF and self._pending(v)

    def wake_deadline(self, v: Vcpu) -> int | None:
        """When the vCPU must stop (halted: wake) for its next timer interrupt, the PIT's
        or the local APIC's (only if it can take interrupts)."""
        cpu = v.cpu
        if cpu is None or not cpu.reg("eflags") & EFLAGS_IF:
            return None
        if self._pending(v):
            return self.host.now()
        lapic = self.vlapic(v)
        deadlines = [] if lapic.lvt[APIC_LVTT] & APIC_LVT_MASKED else [lapic.next_timer]
        if self._accepts_pic(lapic) and not self.vpic.master.imr & 1:
            deadlines.append(self.pit.next_irq0)
        times = [t for t in deadlines if t is not None]
        return min(times) if times else None

    def apic_mmio(self, v: Vcpu) -> tuple[Callable[[int, int], int],
                                          Callable[[int, int, int], None]]:
        """The vCPU's local APIC page: each access an ``apic_access`` VM exit
        (EXIT_REASON_APIC_ACCESS under VMX) that Xen's vlapic answers."""
        lapic = self.vlapic(v)
        return self._mmio(v, "apic_access", lapic.mmio_read, lapic.mmio_write)

    def ioapic_mmio(self, v: Vcpu) -> tuple[Callable[[int, int], int],
                                           Callable[[int, int, int], None]]:
        """The IO-APIC's page as this vCPU reaches it: each access an ``ept_violation``
        exit (no RAM there) that Xen's vioapic answers, as an internal MMIO handler."""
        return self._mmio(v, "ept_violation", self.vioapic.mmio_read,
                          self.vioapic.mmio_write, base=IOAPIC_BASE)

    def _mmio(self, v: Vcpu, cause: str, read: Callable[[int, int], int],
              write: Callable[[int, int, int], None], base: int | None = None,
              ) -> tuple[Callable[[int, int], int], Callable[[int, int, int], None]]:
        def exit_(args: dict[str, object]) -> None:
            if v.cpu is not None:
                v.cpu.charge(VMEXIT_COST_NS)
            if self.host.trace.enabled:
                self.host.trace.emit(self.host.now(), self.d.domid, v.vcpu_id, Kind.VMEXIT,
                                     cause, {**args, "handler": "xen"})

        def where(offset: int) -> dict[str, object]:
            return {"offset": hex(offset)} if base is None else {"gpa": hex(base + offset)}

        def on_read(offset: int, size: int) -> int:
            value = read(offset, size)
            exit_({**where(offset), "read": hex(value)})
            return value

        def on_write(offset: int, size: int, value: int) -> None:
            exit_({**where(offset), "write": hex(value)})
            write(offset, size, value)
            if v.cpu is not None and self._pending(v):
                # A self IPI or an EOI that uncovers one: taken at the next instruction
                # boundary the CPU checks (the next block, as QEMU's TCG does) where IF
                # allows it: interrupt-window exiting. Not a stop from here: unicorn
                # would end the run *at* this store and run it again (a second IPI).
                v.cpu.enable_intr_window(True)

        return on_read, on_write


#: Debug-port lines that mark a firmware phase: xenlab's hvmloader and BIOS, Xen's own
#: hvmloader (which prints the same kinds of lines) and SeaBIOS.
PHASE_PREFIXES = (
    "HVM Loader", "hypercall page at", "Detected Xen", "memory map:", "hvm_info_table at",
    "Writing SMBIOS", "Creating MP tables", "Loading ", "CMOS memory size", "E820 table",
    "Invoking ", "hvmloader: ", "xenlab BIOS: ", "SeaBIOS", "Booting from ")


def _phase_of(line: str) -> str | None:
    """Firmware phase lines ("xenlab BIOS: POST", "HVM Loader ...") become phase records."""
    if line.startswith(PHASE_PREFIXES):
        return line[: 60]
    return None


class HvmTraps:
    """The VM-exit handlers of one HVM vCPU (cpu.x86.VcpuExits)."""

    def __init__(self, host: XenHost, v: Vcpu, hvm: HvmDomain) -> None:
        self.host = host
        self.v = v
        self.hvm = hvm
        self.tsc_offset = 0                 # a guest's write to the TSC (hvm_set_guest_tsc)
        self.apic_base = 0xFEE00000 | (1 << 11) | (1 << 8 if v.vcpu_id == 0 else 0)
        self.mtrr: dict[int, int] = {}      # hvm_mtrr state, 0 until the guest writes it

    def hypercall(self, cpu: X86Vcpu, via: str) -> None:
        from xenlab.xen.hypercall import do_hypercall

        cpu.charge(VMEXIT_COST_NS)
        self._exit("vmcall" if via == "vmcall" else via, {"eax": cpu.reg("eax")})
        do_hypercall(self.host, self.v, cpu, via)

    def io_in(self, cpu: X86Vcpu, port: int, size: int) -> int:
        return handle_pio(self.host, self.v.domain, self.hvm, port, size, True, 0, cpu)

    def io_out(self, cpu: X86Vcpu, port: int, size: int, value: int) -> None:
        handle_pio(self.host, self.v.domain, self.hvm, port, size, False, value, cpu)
        if port == PCI_CF8:   # the vCPU answers the latch's next reads itself
            cpu.port_latch = self.hvm.pci_cf8

    def debug_port_log(self, writes: list[tuple[int, int]]) -> None:
        """The debug port's byte writes the vCPU kept natively (``log_port_writes``)."""
        cpu = self.v.cpu
        assert cpu is not None       # the vCPU that kept them
        handle_pio_log(self.host, self.v.domain, self.hvm, writes, cpu)

    def answered_ports(self, exits: list[tuple[int, int, int, bool, int]]) -> None:
        """The port exits the vCPU answered natively (``answer_ports``)."""
        cpu = self.v.cpu
        assert cpu is not None
        handle_pio_answered(self.host, self.v.domain, self.hvm, exits, cpu)

    def io_rep(self, cpu: X86Vcpu, port: int, size: int, count: int, addr: int,
               write: bool) -> int:
        return handle_pio_rep(self.host, self.v.domain, self.hvm, port, size, count, addr,
                              write, cpu)

    def cpuid(self, cpu: X86Vcpu, leaf: int, subleaf: int) -> tuple[int, int, int, int] | None:
        result = self.host.cpuid_xen_leaves(self.v.domain, leaf)
        cpu.charge(VMEXIT_COST_NS)  # CPUID always exits under VMX
        # Xen's own leaves are answered here; the others from the host CPU's (unicorn's)
        self._exit("cpuid", {"leaf": hex(leaf)} if result is None else
                   {"leaf": hex(leaf), "result": [hex(x) for x in result]})
        if result is None and leaf == 1:
            return _leaf1_without_rdrand(cpu, subleaf)
        return result

    def cpuid_answered(self, exits: list[tuple[int, int]]) -> None:
        """The CPUID exits the vCPU kept natively (``answer_cpuid``: leaves of
        ``CPU_MODEL_LEAVES``, which the CPU model answers): the record each makes, at its
        own virtual time (the slice's elapsed time before it, the leaf)."""
        trace = self.host.trace
        cpu = self.v.cpu
        if not trace.enabled or cpu is None:
            return
        end = self.host.now() - cpu.elapsed() + VMEXIT_COST_NS
        trace.emit_deferred_series(self.v.domain.domid, self.v.vcpu_id, Kind.VMEXIT, "cpuid",
                                   _cpuid_args, [end + elapsed for elapsed, _leaf in exits],
                                   [(leaf,) for _elapsed, leaf in exits])

    def interrupt(self, cpu: X86Vcpu, vector: int) -> bool:
        return False  # the CPU layer vectors it through the guest's IVT/IDT

    def tsc(self, cpu: X86Vcpu) -> int:
        """The guest's TSC: system time in ns, a 1 GHz TSC (what tsc_to_system_mul in
        vcpu_time_info says). Reading it is no exit, as with Xen's native TSC mode; the
        CPU layer traps it only so that the value is virtual time, not the host's."""
        return (self.host.now() + self.tsc_offset) & 0xFFFF_FFFF_FFFF_FFFF

    def msr_write(self, cpu: X86Vcpu, msr: int, value: int) -> bool:
        msr &= 0xFFFF_FFFF
        if msr not in _NO_EXIT_MSRS:
            cpu.charge(VMEXIT_COST_NS)
            self._exit("wrmsr", {"msr": hex(msr), "value": hex(value)})
        why = hvm_msr_write_intercept(self, cpu, msr, value)
        if why is None:
            return True
        cpu.raise_fault(13, f"#GP general protection (wrmsr {msr:#x}: {why})")
        return False

    def msr_read(self, cpu: X86Vcpu, msr: int) -> int | None:
        msr &= 0xFFFF_FFFF
        if msr not in _NO_EXIT_MSRS:
            cpu.charge(VMEXIT_COST_NS)
        value = hvm_msr_read_intercept(self, cpu, msr)
        if msr not in _NO_EXIT_MSRS:
            self._exit("rdmsr", {"msr": hex(msr)} if value is None else
                       {"msr": hex(msr), "value": hex(value)})
        if value is None:
            cpu.raise_fault(13, f"#GP general protection (rdmsr {msr:#x}: "
                                "an MSR Xen does not give HVM guests)")
        return value

    def _exit(self, cause: str, args: dict[str, object]) -> None:
        if self.host.trace.enabled:
            self.host.trace.emit(self.host.now(), self.v.domain.domid, self.v.vcpu_id,
                                 Kind.VMEXIT, cause, {**args, "handler": "xen"})


#: the CPUID leaves ``HvmTraps.cpuid`` leaves to the CPU model (all but Xen's own at
#: 0x40000000 and leaf 1, whose RDRAND bit it clears), as far as the vCPU can keep them
CPU_MODEL_LEAVES = tuple(leaf for leaf in range(0x100) if leaf != 1) + tuple(
    range(0x80000000, 0x80000100))


def _cpuid_args(leaf: int) -> dict[str, object]:
    return {"leaf": hex(leaf), "handler": "xen"}


# -- exceptions in long mode -------------------------------------------------------------------
#: vectors whose frame has an error code (#DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP)
_ERROR_CODE_VECTORS = frozenset((8, 10, 11, 12, 13, 14, 17, 21))
PFEC_PRESENT, PFEC_WRITE, PFEC_INSN_FETCH = 1 << 0, 1 << 1, 1 << 4


def hvm_inject_hw_exception(host: XenHost, v: Vcpu, cpu: X86Vcpu, vector: int) -> bool:
    """An exception an HVM vCPU raised in protected or long mode goes to its own IDT,
    as the CPU delivers it under VMX (no exit for a guest's #PF with HAP): the frame of
    the mode and ring (X86Vcpu.deliver_exception), the error code the CPU computed
    (for #PF: P, W, U, RSVD, I/D) and CR2. A vector the IDT cannot take becomes #DF,
    and one #DF cannot take a triple fault (the caller crashes the domain). False in
    real mode (the IVT is used inline) and for faults that are the emulator's, not the
    CPU's (an access to nothing at all)."""
    cr0 = cpu.reg("cr0")
    if vector >= 32 or not cr0 & 1 or not cpu.fault_is_cpu_exception:
        return False
    error: int | None = None
    cr2 = 0
    if vector == 14:
        cr2 = cpu.fault_cr2
        cpu.set_reg("cr2", cr2)
        error = cpu.fault_error_code
        if error is None:
            error = _pf_error_code(host, v, cpu, cr2)
    elif vector in _ERROR_CODE_VECTORS:
        error = cpu.fault_error_code or 0
    why = cpu.deliver_exception(vector, error)
    if why is not None and vector != 8 and not why.startswith("triple fault"):
        why = cpu.deliver_exception(8, 0)    # a table or stack it could not reach
    if why is not None and why.startswith("triple fault"):
        host.domain_crash(v.domain, v, why, cpu.registers())
        return True                          # the CPU shut down: the domain crashed
    if why is not None:
        return False
    vector, error = cpu.delivered
    if host.trace.enabled:
        host.trace.emit(host.now(), v.domain.domid, v.vcpu_id, Kind.EVENT, "inject_exception",
                        {"vector": vector, "error_code": error, "cr2": hex(cr2),
                         "rip": hex(cpu.pc())})
    return True


def _pf_error_code(host: XenHost, v: Vcpu, cpu: X86Vcpu, cr2: int) -> int:
    """A #PF's error code where the CPU's own was not read: P from the guest's tables,
    W from the instruction, I/D for a fetch with NX on."""
    state = cpu.paging_state()
    efer = state[3] if state is not None else 0
    rip = cpu.pc()
    error = PFEC_PRESENT if cpu.translate(cr2) is not None else 0
    if rip <= cr2 < rip + 16:
        if efer & EFER_NXE:
            error |= PFEC_INSN_FETCH
    else:
        code = host.read_guest_code(v.domain, cpu, rip, 15)
        if code and cpu.writes_memory(code, rip, cr2):
            error |= PFEC_WRITE
    return error


# -- MSRs --------------------------------------------------------------------------------------
def hvm_msr_read_intercept(t: HvmTraps, cpu: X86Vcpu, msr: int) -> int | None:
    """An HVM guest's ``rdmsr``: the value, or None for #GP (an MSR Xen does not give
    HVM guests, as guest_rdmsr's ``gp_fault``)."""
    if msr == MSR_EFER:
        return cpu.msr_read(MSR_EFER)
    if msr == MSR_IA32_TSC:
        return t.tsc(cpu)
    if msr == MSR_IA32_APICBASE:
        return t.apic_base
    if msr == MSR_MTRRcap:
        return MTRR_CAP
    if msr in _MTRR_MSRS:
        return t.mtrr.get(msr, 0)
    if msr == MSR_IA32_MISC_ENABLE:
        return MISC_ENABLE
    if msr == MSR_IA32_UCODE_REV:
        return 0
    if msr == MSR_IA32_MCG_CAP:
        return GUEST_MCG_CAP
    if msr == MSR_IA32_MCG_STATUS:
        return 0
    if MSR_IA32_MC0_CTL <= msr < MSR_IA32_MC0_CTL + 4 * GUEST_MC_BANK_NUM:
        return 0xFFFF_FFFF_FFFF_FFFF if msr % 4 == 0 else 0   # MCi_CTL all ones, the rest 0
    if msr in _CPU_MSRS:
        return cpu.msr_read(msr)
    return None


def hvm_msr_write_intercept(t: HvmTraps, cpu: X86Vcpu, msr: int, value: int) -> str | None:
    """An HVM guest's ``wrmsr``: None when done, else why it is #GP."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    if msr == HYPERCALL_MSR:
        gpa = value & ~0xFFF
        if t.hvm.guest_write(gpa, traps.hvm_hypercall_page()):
            t.hvm.hypercall_page_gpa = gpa
            t.host.log.printk(f"d{t.v.domain.domid}v{t.v.vcpu_id}: "
                              f"hypercall page at {gpa:#x}")
        return None
    if msr == MSR_EFER:
        return hvm_set_efer(cpu, value)
    if msr == MSR_IA32_TSC:
        t.tsc_offset = value - t.host.now()
        return None
    if msr == MSR_IA32_APICBASE:
        if value & ~0xFFFF_FD00 or value & ~0xFFF != 0xFEE00000:  # vlapic_msr_set
            return "the APIC stays at 0xfee00000"
        t.apic_base = value
        t.hvm.vlapic(t.v).hw_disabled = not value & (1 << 11)
        return None
    if msr == MSR_MTRRcap:
        return "MTRRcap is read-only"
    if msr in _MTRR_MSRS:
        t.mtrr[msr] = value
        return None
    if msr == MSR_IA32_MISC_ENABLE:
        return None if value == MISC_ENABLE else "MISC_ENABLE bits a guest cannot change"
    if msr == MSR_IA32_UCODE_REV:
        return None if value == 0 else "only 0 may be written"
    if msr == MSR_IA32_MCG_STATUS or (
            MSR_IA32_MC0_CTL <= msr < MSR_IA32_MC0_CTL + 4 * GUEST_MC_BANK_NUM):
        # vmce_wrmsr: MCi_CTL takes anything; status, address, misc only 0 (no error)
        return None if msr % 4 == 0 or value == 0 else "a vMCE register takes only 0"
    if msr == MSR_IA32_CR_PAT:
        if any((value >> (8 * i)) & 0xFF not in _PAT_TYPES for i in range(8)):
            return f"{value:#x} is not a valid PAT"
    elif msr in _CANONICAL_MSRS and not _canonical(value):
        return f"{value:#x} is not canonical"
    elif msr not in _CPU_MSRS:
        return "an MSR Xen does not give HVM guests"
    cpu.msr_write(msr, value)
    return None


def hvm_set_efer(cpu: X86Vcpu, value: int) -> str | None:
    """hvm_set_efer: SCE, LME and NXE may be set (LMA is the CPU's: long mode turns on
    when CR0.PG is set with LME); changing LME while paging is on is #GP."""
    old = cpu.msr_read(MSR_EFER)
    if value & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE):
        return f"reserved bits in {value:#x}"
    if (value ^ old) & EFER_LME and cpu.reg("cr0") & CR0_PG:
        return "EFER.LME changed with paging enabled"
    cpu.msr_write(MSR_EFER, (value & ~EFER_LMA) | (old & EFER_LMA))
    return None


# -- hvm_op ------------------------------------------------------------------------------------
_GUEST_SETTABLE = {HvmParam.HVM_PARAM_CALLBACK_IRQ, HvmParam.HVM_PARAM_TIMER_MODE,
                   HvmParam.HVM_PARAM_ACPI_S_STATE}


def do_hvm_op(ctx: HypercallContext, op: int, arg: int) -> int:
    """``long do_hvm_op(unsigned long op, XEN_GUEST_HANDLE_PARAM(void) arg)``"""
    op &= 0xFFFFFFFF
    ctx.decode(op=ctx.enum_name(HvmOp, op))
    if op not in (HvmOp.HVMOP_set_param, HvmOp.HVMOP_get_param):
        return -Errno.ENOSYS
    raw = ctx.copy_from_guest(arg, 16)
    if raw is None:
        return -Errno.EFAULT
    p = XenHvmParam.from_buffer_copy(raw)
    ctx.decode(domid=p.domid, index=ctx.enum_name(HvmParam, p.index))
    d = ctx.domain if p.domid in (DOMID_SELF, ctx.domain.domid) else (
        ctx.host.domains.get(p.domid) if ctx.domain.privileged else None)
    if d is None:
        return -Errno.ESRCH
    hvm = d.hvm
    if hvm is None:
        return -Errno.EINVAL
    if p.index >= HVM_NR_PARAMS:
        return -Errno.EINVAL
    if op == HvmOp.HVMOP_get_param:
        p.value = hvm.params.get(p.index, 0)
        ctx.decode(value=p.value)
        return 0 if ctx.copy_to_guest(arg + 8, struct.pack("<Q", p.value)) else -Errno.EFAULT
    if not ctx.domain.privileged and p.index not in _GUEST_SETTABLE:
        return -Errno.EPERM
    hvm.params[p.index] = p.value
    ctx.decode(value=p.value)
    return 0
