"""Exceptions of a 64-bit PV guest: the trap table, the bounce frame, forced emulation.

A PV kernel runs in ring 3 and owns no IDT: the CPU's exceptions go to Xen,
which hands ("bounces") each one to the handler the kernel registered with
``HYPERVISOR_set_trap_table`` (``struct trap_info``: vector, flags with the
DPL in bits 0-1 and "disable events" in bit 2, cs, address; a zero address
ends the table). ``create_bounce_frame`` writes Xen's frame on the guest
kernel's stack (the stack given by ``stack_switch`` when the vCPU was in user
mode, whose page tables it leaves for the kernel's) and enters the handler::

    rsp ->  RCX, R11, [error code], RIP, CS | saved_upcall_mask << 32,
            RFLAGS (IF = !saved_upcall_mask), RSP, SS

The CS slot has RPL 0 when the kernel itself faulted, 3 when user mode did;
``HYPERVISOR_iret`` returns to user mode for RPL 3. A page fault's address
is in ``vcpu_info.arch.cr2``. ``int $n`` reaches the handler only if the
entry's DPL allows it (1 or more from the kernel, 3 from user mode), else
it is a #GP with error code ``n << 3 | 2``, as with Xen's IDT, where every
gate but ``int3``'s is DPL 0. A fault with no handler crashes the domain.
Before a #PF is bounced, Xen tries writable-page-table emulation
(``mm.ptwr_do_page_fault``, called by ``XenHost._finish_slice``).

``ud2; .ascii "xen"; cpuid`` is the forced-emulation prefix: Xen executes
the ``cpuid`` with its filtered PV view and resumes after it.

Real Xen: xen/arch/x86/pv/traps.c (pv_inject_event), xen/arch/x86/traps.c
(do_trap, do_int3, do_general_protection, do_page_fault), xen/arch/x86/x86_64/entry.S
(create_bounce_frame, switch_to_kernel), xen/arch/x86/pv/callback.c
(do_set_trap_table), xen/arch/x86/pv/emul-inv-op.c, xen/arch/x86/pv/domain.c
(toggle_guest_mode)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xenlab.public.errno import Errno
from xenlab.public.xen import FLAT_KERNEL_SS, HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START
from xenlab.xen.guest_access import GuestFault, copy_to_guest
from xenlab.xen.pv_emul_priv_op import pv_emulate_privileged_op
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.cpu.x86 import X86Vcpu
    from xenlab.xen.domain import Vcpu
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.setup import XenHost

__all__ = [
    "PvVcpu",
    "TrapInfo",
    "create_bounce_frame",
    "do_set_trap_table",
    "pv_cpuid",
    "pv_do_trap",
    "pv_vcpu",
    "switch_to_kernel",
    "toggle_guest_mode",
]

# trap_bounce flags (xen/arch/x86/include/asm/processor.h)
TBF_EXCEPTION = 1
TBF_EXCEPTION_ERRCODE = 2
TBF_INTERRUPT = 8
#: vectors whose exception pushes an error code (TRAP_HAVE_EC)
TRAP_HAVE_EC = frozenset((8, 10, 11, 12, 13, 14, 17, 21))
TRAP_int3, TRAP_invalid_op, TRAP_no_device, TRAP_gp_fault, TRAP_page_fault = 3, 6, 7, 13, 14
X86_CR0_TS = 1 << 3
# page fault error code bits (PFEC_*)
PFEC_page_present, PFEC_write_access, PFEC_user_mode, PFEC_insn_fetch = 1, 2, 4, 16
# RFLAGS
X86_EFLAGS_TF, X86_EFLAGS_IF, X86_EFLAGS_NT = 1 << 8, 1 << 9, 1 << 14
X86_EFLAGS_RF, X86_EFLAGS_VM, X86_EFLAGS_AC = 1 << 16, 1 << 17, 1 << 18
X86_EFLAGS_DF, X86_EFLAGS_IOPL = 1 << 10, 3 << 12
# vcpu_guest_context flags (public/arch-x86/xen.h)
VGCF_failsafe_disables_events = 1 << 3
VGCF_syscall_disables_events = 1 << 4
VGCF_in_syscall = 1 << 8
TRAP_INFO = struct.Struct("<BBH4xQ")  # struct trap_info (x86-64): vector flags cs address
FORCED_EMULATION = b"\x0f\x0bxen"      # ud2; .ascii "xen"
_CPUID = b"\x0f\xa2"


@dataclass(frozen=True)
class TrapInfo:
    """``struct trap_info``: one entry of the guest's virtual IDT."""

    vector: int
    flags: int      # bits 0-1: DPL; bit 2: disable events on entry (TI_SET_IF)
    cs: int
    address: int

    @property
    def dpl(self) -> int:
        return self.flags & 3

    @property
    def disables_events(self) -> bool:
        return bool(self.flags & 4)


@dataclass
class PvVcpu:
    """``v->arch.pv``: what Xen keeps per PV vCPU for exceptions and CPU state."""

    trap_ctxt: dict[int, TrapInfo] = field(default_factory=dict)
    kernel_ss: int = FLAT_KERNEL_SS     # stack_switch
    kernel_sp: int = 0
    vgc_flags: int = 0                  # VGCF_*_disables_events (CALLBACKF_mask_events)
    disables_events: dict[str, bool] = field(default_factory=dict)  # syscall32, sysenter
    fs_base: int = 0                    # set_segment_base
    gs_base_kernel: int = 0
    gs_base_user: int = 0
    debugreg: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0, 0, 0xFFFF0FF0, 0x400])
    cr0_ts: bool = False                # fpu_taskswitch
    vm_assist: int = 0                  # vCPU 0's holds d->vm_assist (VMASST_TYPE_* bits)
    physdev: Any = None                 # vCPU 0's holds the domain's physdev.PhysdevState
    gdt_frames: list[int] = field(default_factory=list)  # set_gdt (typed seg_desc pages)
    gdt_ents: int = 0
    cr2: int = 0                        # ctrlreg[2]: the last page fault's address
    cr4: int = 0x6A0                    # ctrlreg[4]: the CR4 the guest reads (emulated)
    periodic_period: int = 0            # VCPUOP_set_periodic_timer (ns; 0: stopped)
    runstate_area: int = 0              # VCPUOP_register_runstate_memory_area (guest VA)
    time_area: int = 0                  # VCPUOP_register_vcpu_time_memory_area
    nmi_pending: bool = False           # VCPUOP_send_nmi
    nmi_masked: bool = False            # in the NMI handler, until its iret
    bounces: int = 0                    # exceptions delivered (for the lab's counters)
    initialised: bool = False           # v->is_initialised: setvcpucontext / VCPUOP_initialise


def pv_vcpu(v: Vcpu) -> PvVcpu:
    """The vCPU's PV state, made on first use."""
    if v.pv is None:
        v.pv = PvVcpu()
    pv: PvVcpu = v.pv
    return pv


def _canonical(va: int) -> bool:
    return (va >> 47) in (0, 0x1FFFF)


# ====================================================================== set_trap_table
def do_set_trap_table(ctx: HypercallContext, traps: int) -> int:
    """``long do_set_trap_table(XEN_GUEST_HANDLE_PARAM(const_trap_info_t) traps)``

    Entries are added to (not replace) the virtual IDT, up to the first with a zero
    address; a NULL handle clears the whole table."""
    if not ctx.domain.is_pv or not ctx.cpu.long_mode:
        return -Errno.ENOSYS
    pv = pv_vcpu(ctx.vcpu)
    if traps == 0:
        pv.trap_ctxt.clear()
        ctx.decode(cleared=True)
        return 0
    added: list[str] = []
    rc = 0
    while True:
        raw = ctx.copy_from_guest(traps, TRAP_INFO.size)
        if raw is None:
            rc = -Errno.EFAULT
            break
        vector, flags, cs, address = TRAP_INFO.unpack(raw)
        if address == 0:
            break
        if not _canonical(address):
            rc = -Errno.EINVAL
            break
        if not cs & 3:  # fixup_guest_code_selector: a PV kernel's selectors are RPL 3
            cs |= 3
        pv.trap_ctxt[vector] = TrapInfo(vector, flags, cs, address)
        added.append(f"{vector}:{address:#x}/{flags}")
        traps += TRAP_INFO.size
    ctx.decode(entries=added if len(added) <= 32 else [*added[:32], "..."])
    return rc


# ====================================================================== the bounce
def toggle_guest_mode(host: XenHost, v: Vcpu) -> None:
    """Switch a 64-bit PV vCPU between its kernel and user mode: the other L4 table
    (guest_table / guest_table_user) and, as ``swapgs`` does, the other GS base."""
    cpu = v.cpu
    assert cpu is not None
    pv = pv_vcpu(v)
    v.user_mode = not v.user_mode
    host.pv_switch_cr3(v)
    if v.user_mode:
        pv.gs_base_kernel = cpu.msr_read(MSR_GS_BASE)
        cpu.msr_write(MSR_GS_BASE, pv.gs_base_user)
    else:
        pv.gs_base_user = cpu.msr_read(MSR_GS_BASE)
        cpu.msr_write(MSR_GS_BASE, pv.gs_base_kernel)


MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE = 0xC0000100, 0xC0000101, 0xC0000102


def create_bounce_frame(host: XenHost, v: Vcpu, eip: int, flags: int, error_code: int = 0,
                        *, regs: dict[str, int] | None = None, what: str = "exception"
                        ) -> bool:
    """Enter the guest kernel at ``eip`` with Xen's exception frame on its stack.

    ``regs`` are the interrupted RIP, RSP, RFLAGS, RCX, R11 and CS (default: the
    vCPU's registers now). False if the domain was crashed instead (no handler, a
    stack inside Xen's area, or a frame that cannot be written)."""
    cpu = v.cpu
    assert cpu is not None
    d = v.domain
    r = regs if regs is not None else {n: cpu.reg(n) for n in
                                       ("rip", "rsp", "rflags", "rcx", "r11", "cs", "ss")}
    cs = r.get("cs", cpu.reg("cs")) & 0xFFFF
    ss = r.get("ss", cpu.reg("ss")) & 0xFFFF
    pv = pv_vcpu(v)
    if v.user_mode:
        toggle_guest_mode(host, v)          # to the kernel's page tables and stack
        sp = pv.kernel_sp
    else:
        sp = r["rsp"]
        cs &= ~3                            # tell the kernel it interrupted itself
    sp &= ~0xF                              # frames are 16-byte aligned
    if HYPERVISOR_VIRT_START < sp <= HYPERVISOR_VIRT_END + 8 * 8:
        host.domain_crash(d, v, f"create_bounce_frame: {what} frame at {sp:#x}, inside "
                          "Xen's area", cpu.registers())
        return False
    if eip == 0:
        host.domain_crash(d, v, f"create_bounce_frame: no handler for the {what}",
                          cpu.registers())
        return False
    vi = host.vcpu_info_address(v)
    saved_mask = host.mem.read(vi + 1, 1)[0] if vi is not None else 1
    rflags = (r["rflags"] & ~X86_EFLAGS_IF) | (0 if saved_mask else X86_EFLAGS_IF)
    words = [r["rcx"], r["r11"]]
    if flags & TBF_EXCEPTION_ERRCODE:
        words.append(error_code & 0xFFFFFFFF)
    words += [r["rip"], cs | (saved_mask << 32), rflags, r["rsp"], ss]
    frame_sp = sp - 8 * len(words)
    try:
        copy_to_guest(host.mem, d, cpu.reg("cr3"), frame_sp, struct.pack(f"<{len(words)}Q",
                                                                         *words))
    except GuestFault as fault:
        host.domain_crash(d, v, f"create_bounce_frame: cannot write the {what} frame at "
                          f"{frame_sp:#x}: {fault}", cpu.registers())
        return False
    if vi is not None and flags & TBF_INTERRUPT:
        host.mem.write(vi + 1, b"\x01")     # evtchn_upcall_mask: events off in the handler
    cpu.set_reg("rsp", frame_sp)
    cpu.set_reg("rip", eip)
    cpu.set_reg("rflags", (r["rflags"] | 2) & ~(X86_EFLAGS_AC | X86_EFLAGS_VM | X86_EFLAGS_RF
                                               | X86_EFLAGS_NT | X86_EFLAGS_TF))
    pv.bounces += 1
    return True


# ====================================================================== faults
def _permit_softint(dpl: int, v: Vcpu) -> bool:
    """permit_softint: ``int $n`` from the kernel needs DPL >= 1, from user mode DPL 3."""
    return dpl >= (3 if v.user_mode else 1)


def _page_fault_code(host: XenHost, v: Vcpu, cpu: X86Vcpu, cr2: int, rip: int) -> int:
    """The #PF error code the CPU would push: walk the guest's tables for present and
    protection bits; whether the access wrote comes from the instruction."""
    from xenlab.xen.guest_access import _ADDR_MASK

    d = v.domain
    table = cpu.reg("cr3") & _ADDR_MASK
    present, user_ok, write_ok = True, True, True
    for shift in (39, 30, 21, 12):
        entry = host.mem.read_u64(table + 8 * ((cr2 >> shift) & 511)) if d.owns_mfn(
            table >> 12) or table >> 12 in host.xen_frames.values() else 0
        if not entry & 1:
            present = False
            break
        user_ok &= bool(entry & 4)
        write_ok &= bool(entry & 2)
        if shift in (30, 21) and entry & 0x80:  # a superpage
            break
        table = entry & _ADDR_MASK
    code = PFEC_page_present if present else 0
    fetch = cr2 == rip or (rip < cr2 < rip + 16 and cr2 & 0xFFF < 16)
    if fetch:
        code |= PFEC_insn_fetch
    elif present and user_ok and not write_ok:
        code |= PFEC_write_access       # a present, user page only faults for a write
    else:
        insn = host.read_guest_code(d, cpu, rip, 15)
        if insn and cpu.writes_memory(insn, rip, cr2):
            code |= PFEC_write_access
    if v.user_mode:
        code |= PFEC_user_mode
    return code


def pv_inject_event(host: XenHost, v: Vcpu, vector: int, error_code: int | None, *,
                    cr2: int | None = None, regs: dict[str, int] | None = None) -> bool:
    """pv_inject_event + create_bounce_frame: deliver ``vector`` to the guest's handler.

    False (and nothing changed) if the guest has no handler for it."""
    pv = pv_vcpu(v)
    ti = pv.trap_ctxt.get(vector)
    if ti is None or ti.address == 0:
        return False
    flags = TBF_EXCEPTION
    if error_code is not None:
        flags |= TBF_EXCEPTION_ERRCODE
    if ti.disables_events:
        flags |= TBF_INTERRUPT
    if cr2 is not None:
        pv.cr2 = cr2
        vi = host.vcpu_info_address(v)
        if vi is not None:
            host.mem.write_u64(vi + 16, cr2)  # vcpu_info.arch.cr2
    cpu = v.cpu
    assert cpu is not None
    rip_before = (regs or {}).get("rip", cpu.reg("rip"))
    ok = create_bounce_frame(host, v, ti.address, flags, error_code or 0, regs=regs,
                             what=f"vector {vector}")
    if ok:
        args: dict[str, object] = {"vector": vector, "rip": hex(rip_before),
                                   "handler": hex(ti.address), "frame": hex(cpu.reg("rsp"))}
        if error_code is not None:
            args["error_code"] = hex(error_code)
        if cr2 is not None:
            args["cr2"] = hex(cr2)
        host.trace.emit(host.now(), v.domain.domid, v.vcpu_id, Kind.EVENT, "trap", args)
    return True


def pv_do_trap(host: XenHost, v: Vcpu, cpu: X86Vcpu, vector: int) -> bool:
    """A fault or trap stopped a 64-bit PV vCPU: emulate, bounce it, or say it is not
    handled (False: the caller crashes the domain as before). The vCPU is stopped."""
    if not cpu.long_mode or v.domain.is_shutting_down:
        return False
    at = cpu.fault_pc if cpu.fault_pc is not None else cpu.reg("rip")
    if vector == TRAP_invalid_op and pv_emulate_forced_invalid_op(host, v, cpu, at):
        return True
    if vector == TRAP_gp_fault and pv_emulate_privileged_op(host, v, cpu, at):
        return True  # wrmsr of a segment base, mov to/from a control register, ...
    if v.pv is None:
        return False
    regs = {n: cpu.reg(n) for n in ("rsp", "rflags", "rcx", "r11", "cs", "ss")}
    # unicorn reports ``int $n`` and ``int3`` with RIP already past them: a vector the
    # CPU raises itself only if the bytes before RIP are not that instruction
    before = host.read_guest_code(v.domain, cpu, at - 2, 2)
    int_n = before == bytes([0xCD, vector])
    if vector >= 32 or int_n or (vector == TRAP_int3 and before[1:] == b"\xcc"):
        if vector in (3, 4):  # Xen's own DPL 3 gates: the guest's DPL is not checked
            return pv_inject_event(host, v, vector, None, regs={**regs, "rip": at})
        ti = pv_vcpu(v).trap_ctxt.get(vector)
        if ti is not None and _permit_softint(ti.dpl, v):
            return pv_inject_event(host, v, vector, None, regs={**regs, "rip": at})
        # a DPL 0 gate of Xen's IDT: #GP at the instruction, the vector in the error code
        return pv_inject_event(host, v, TRAP_gp_fault, (vector << 3) | 2,
                               regs={**regs, "rip": at - 2})
    regs["rip"] = at
    if vector == TRAP_no_device:  # do_device_not_available: TS was the guest's (fpu_taskswitch)
        cpu.set_reg("cr0", cpu.reg("cr0") & ~X86_CR0_TS)
        pv = pv_vcpu(v)
        if not pv.cr0_ts:
            return True
        pv.cr0_ts = False
        return pv_inject_event(host, v, vector, None, regs=regs)
    if vector == TRAP_page_fault:
        cr2 = cpu.fault_cr2 if cpu.fault_pc is not None else cpu.reg("cr2")
        ec = _page_fault_code(host, v, cpu, cr2, at)
        # (XenHost._finish_slice offered it to mm.ptwr_do_page_fault first)
        return pv_inject_event(host, v, vector, ec, cr2=cr2, regs=regs)
    return pv_inject_event(host, v, vector, 0 if vector in TRAP_HAVE_EC else None, regs=regs)


# ====================================================================== forced emulation
def pv_cpuid(host: XenHost, v: Vcpu, cpu: X86Vcpu, leaf: int, subleaf: int
             ) -> tuple[int, int, int, int]:
    """guest_cpuid for a PV guest: Xen's leaves at 0x40000000, and the CPU's own with
    what a PV guest may not use hidden and the "hypervisor" bit set (a subset of Xen's
    PV CPUID policy, xen/arch/x86/cpu-policy.c)."""
    xen = host.cpuid_xen_leaves(v.domain, leaf)
    if xen is not None:
        return xen
    a, b, c, d = cpu.native_cpuid(leaf, subleaf)
    if leaf == 1:
        # ECX: MONITOR, DS-CPL, VMX, SMX, EST, TM2, PDCM, x2APIC, TSC-deadline hidden;
        # the hypervisor bit set. EDX: VME, DE, MCE, MTRR, MCA, ACPI, DS, TM, PBE hidden.
        c = (c & ~((1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8)
                   | (1 << 15) | (1 << 21) | (1 << 24)
                   # XSAVE, OSXSAVE and what needs them (FMA, AVX, F16C): xenlab does not
                   # emulate xsetbv for PV guests, so they use fxsave (a simplification)
                   | (1 << 12) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 29)
                   # RDRAND: the host's randomness would make runs differ
                   | (1 << 30))) | (1 << 31)
        d &= ~((1 << 1) | (1 << 2) | (1 << 7) | (1 << 12) | (1 << 14) | (1 << 21) | (1 << 22)
               | (1 << 29) | (1 << 31)
               | (1 << 3) | (1 << 17))  # PSE, PSE36: no superpages for PV ("S" in Xen)
    elif leaf == 0x80000001:
        d &= ~(1 << 26)  # Page1GB: no superpages for PV
    elif leaf == 7 and subleaf == 0:
        b &= ~1          # FSGSBASE: the bases go through set_segment_base / wrmsr
        b &= ~(1 << 18)  # RDSEED: the host's randomness would make runs differ
    return a & 0xFFFFFFFF, b & 0xFFFFFFFF, c & 0xFFFFFFFF, d & 0xFFFFFFFF


def pv_emulate_forced_invalid_op(host: XenHost, v: Vcpu, cpu: X86Vcpu, rip: int) -> bool:
    """``ud2; .ascii "xen"; cpuid``: Xen's CPUID for the guest, RIP past the sequence."""
    code = host.read_guest_code(v.domain, cpu, rip, len(FORCED_EMULATION) + 2)
    if code != FORCED_EMULATION + _CPUID:
        return False
    leaf, subleaf = cpu.reg("eax"), cpu.reg("ecx")
    a, b, c, d = pv_cpuid(host, v, cpu, leaf, subleaf)
    for name, value in (("rax", a), ("rbx", b), ("rcx", c), ("rdx", d)):
        cpu.set_reg(name, value)
    cpu.set_reg("rip", rip + len(code))
    cpu.set_reg("rflags", cpu.reg("rflags") & ~X86_EFLAGS_RF)
    host.trace.emit(host.now(), v.domain.domid, v.vcpu_id, Kind.EVENT, "forced_cpuid",
                    {"leaf": hex(leaf), "subleaf": hex(subleaf), "rip": hex(rip)})
    return True


# ====================================================================== syscall from user
def switch_to_kernel(host: XenHost, v: Vcpu, cpu: X86Vcpu) -> None:
    """``syscall`` from guest user mode (entry.S switch_to_kernel): into the kernel's
    syscall callback on its kernel stack and page tables, with the frame
    create_bounce_frame writes; events masked if the callback asked for it. With no
    callback, a #UD at the ``syscall``. Called from the syscall hook: the registers
    are loaded when the instruction ends (unicorn moves RIP past it after the hook)."""
    rip = cpu.reg("rip") + 2                # syscall's RCX: the next instruction
    rflags = cpu.reg("rflags")              # and its R11
    regs = {"rip": rip, "rsp": cpu.reg("rsp"), "rflags": rflags, "rcx": rip, "r11": rflags,
            "cs": cpu.reg("cs"), "ss": cpu.reg("ss")}
    pv = pv_vcpu(v)
    eip = v.callbacks.get("syscall", 0)
    if eip:
        flags = TBF_INTERRUPT if pv.vgc_flags & VGCF_syscall_disables_events else 0
        ok = create_bounce_frame(host, v, eip, flags, regs=regs, what="syscall")
        if ok:
            host.trace.emit(host.now(), v.domain.domid, v.vcpu_id, Kind.EVENT, "syscall",
                            {"rip": hex(rip), "handler": hex(eip), "frame": hex(cpu.reg("rsp"))})
    else:
        ok = pv_inject_event(host, v, TRAP_invalid_op, None, regs={**regs, "rip": rip - 2})
        if not ok:
            host.domain_crash(v.domain, v, "Unhandled #UD invalid opcode [#6] at rip "
                              f"{rip - 2:016x} (syscall with no syscall callback)",
                              cpu.registers())
    if ok:
        # entry.S clears DF for the kernel; the hook's return moves RIP by 2: load later
        v.pending_regs = {"rip": cpu.reg("rip"), "rsp": cpu.reg("rsp"),
                          "rflags": cpu.reg("rflags") & ~X86_EFLAGS_DF, "rcx": rip,
                          "r11": rflags}
    cpu.request_stop()

