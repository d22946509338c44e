"""Privileged instructions of a PV kernel, emulated by Xen.

A 64-bit PV kernel runs in ring 3, so an instruction only ring 0 may execute
(``wrmsr``, ``rdmsr``, ``mov`` to or from a control register, ``clts``,
``wbinvd``) raises #GP. Before bouncing that #GP to the guest, Xen decodes the
instruction and emulates the ones a PV kernel is allowed to use, on the vCPU's
virtual state, then resumes the guest after it:

- ``wrmsr`` / ``rdmsr`` of ``MSR_FS_BASE``, ``MSR_GS_BASE`` and
  ``MSR_SHADOW_GS_BASE`` (canonical bases only), as Linux's ``startup_xen``
  does before anything else; other MSRs are #GP (Xen 4.15 and later);
- ``mov %crN, reg``: CR0 (with the guest's own TS), CR2 (the last page
  fault's address, as bounced), CR3 (its kernel page table), CR4 (what Xen
  shows a PV guest); ``mov reg, %cr0`` changing only TS, ``mov reg, %cr3``
  (a new base pointer, validated like ``MMUEXT_NEW_BASEPTR``), ``clts``;
- ``wbinvd`` is ignored for a domain that may not flush caches;
- ``rdtsc`` / ``rdtscp``: the real CR4.TSD is set, so they raise #GP and Xen
  returns a TSC of virtual time (tsc_mode "always_emulate"): runs are identical,
  and the guest's clock and its timers keep the same time;
- ``cli`` / ``sti`` with I/O privilege (Linux sets IOPL 1 at boot): EFLAGS.IF is
  the vCPU's ``evtchn_upcall_mask``, so they mask and unmask event upcalls.

Everything else (``hlt``, ``lgdt``, port I/O without I/O privilege, ...) is not
emulated: the #GP goes to the guest's handler, or crashes it without one.

Real Xen: xen/arch/x86/pv/emul-priv-op.c (pv_emulate_privileged_op, read_cr,
write_cr, read_msr, write_msr)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenlab.xen.mm import _new_baseptr
from xenlab.xen.page_alloc import PAGE_SHIFT
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.cpu.x86 import X86Vcpu
    from xenlab.xen.domain import Vcpu
    from xenlab.xen.setup import XenHost

__all__ = ["pv_emulate_privileged_op"]

MSR_FS_BASE = 0xC0000100
MSR_GS_BASE = 0xC0000101
MSR_SHADOW_GS_BASE = 0xC0000102
X86_CR0_TS = 1 << 3
#: CR4.TSD: rdtsc outside ring 0 raises #GP. Xen sets it in the real CR4 of a PV vCPU
#: whose TSC it emulates (pv_guest_cr4_to_real_cr4), as xenlab does for every PV vCPU
X86_CR4_TSD = 1 << 2
#: the CR0 a PV guest reads: PE MP ET NE WP AM PG, TS its own (fpu_taskswitch)
PV_CR0 = 0x80050033
#: the CR4 a PV guest reads at first: PAE, PGE, OSFXSR, OSXMMEXCPT
PV_CR4 = 0x6A0
#: the CR4 bits a PV guest's writes may change, the rest stay Xen's (pv_fixup_guest_cr4):
#: TSD, DE, PGE (FSGSBASE and OSXSAVE are not offered: see pv_cpuid)
PV_CR4_GUEST_BITS = 0x4 | 0x8 | 0x80
_GPR = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
_BASE_MSRS = {MSR_FS_BASE: "fs_base", MSR_GS_BASE: "gs_base_kernel",
              MSR_SHADOW_GS_BASE: "gs_base_user"}


def _emulate_rdtsc(host: XenHost, v: Vcpu, cpu: X86Vcpu, rip: int, i: int,
                   rdtscp: bool) -> bool:
    """``rdtsc`` / ``rdtscp`` with the real CR4.TSD set (Xen's emulated TSC, tsc_mode
    "always_emulate"): EDX:EAX is the 1 GHz TSC of virtual time that vcpu_time_info's
    tsc_to_system_mul describes, ECX the TSC_AUX (0) for rdtscp. User mode too, unless
    the guest kernel set TSD in the CR4 it sees; then the #GP is the guest's. Not traced:
    a kernel reads its clock all the time (pv_soft_rdtsc)."""
    from xenlab.xen.pv_traps import pv_vcpu

    if v.user_mode and int(getattr(pv_vcpu(v), "cr4", PV_CR4)) & X86_CR4_TSD:
        return False
    tsc = host.now() & 0xFFFF_FFFF_FFFF_FFFF
    cpu.set_reg("rax", tsc & 0xFFFFFFFF)
    cpu.set_reg("rdx", tsc >> 32)
    if rdtscp:
        cpu.set_reg("rcx", 0)
    cpu.set_reg("rip", rip + i + (3 if rdtscp else 2))
    return True


def _canonical(va: int) -> bool:
    return (va >> 47) in (0, 0x1FFFF)


def pv_emulate_privileged_op(host: XenHost, v: Vcpu, cpu: X86Vcpu, rip: int) -> bool:
    """The instruction at ``rip`` raised #GP: emulate it if a PV kernel may use it (True,
    the vCPU goes on after it), else False (the #GP is the guest's)."""
    from xenlab.xen.pv_traps import pv_vcpu

    code = host.read_guest_code(v.domain, cpu, rip, 15)
    i, rex = 0, 0
    while i < len(code) and (code[i] in (0x66, 0xF2, 0xF3) or 0x40 <= code[i] <= 0x4F):
        if 0x40 <= code[i] <= 0x4F:
            rex = code[i]
        i += 1
    if code[i:i + 2] == b"\x0f\x31" or code[i:i + 3] == b"\x0f\x01\xf9":
        return _emulate_rdtsc(host, v, cpu, rip, i, code[i + 1] == 0x01)
    if v.user_mode:
        return False  # only the guest kernel's privileged instructions are emulated
    if i < len(code) and code[i] in (0xFA, 0xFB):   # cli / sti
        if not _iopl_ok(v):
            return False
        vi = host.vcpu_info_address(v)
        if vi is not None:  # EFLAGS.IF is mirrored into evtchn_upcall_mask
            host.mem.write(vi + 1, b"\x01" if code[i] == 0xFA else b"\x00")
        cpu.set_reg("rip", rip + i + 1)
        return True  # (not traced: a kernel does this all the time)
    if i + 1 >= len(code) or code[i] != 0x0F:
        return False
    op = code[i + 1]
    length = i + 2
    pv = pv_vcpu(v)
    what: str
    if op == 0x30:                                   # wrmsr
        msr = cpu.reg("rcx") & 0xFFFFFFFF
        value = (cpu.reg("rdx") & 0xFFFFFFFF) << 32 | cpu.reg("rax") & 0xFFFFFFFF
        field = _BASE_MSRS.get(msr)
        if field is None or not _canonical(value):
            return False
        setattr(pv, field, value)
        cpu.msr_write(msr, value)
        what = f"wrmsr {msr:#x} {value:#x}"
    elif op == 0x32:                                 # rdmsr
        msr = cpu.reg("rcx") & 0xFFFFFFFF
        field = _BASE_MSRS.get(msr)
        if field is None:
            return False
        value = cpu.msr_read(msr)
        cpu.set_reg("rax", value & 0xFFFFFFFF)
        cpu.set_reg("rdx", value >> 32)
        what = f"rdmsr {msr:#x}"
    elif op in (0x20, 0x22):                         # mov from / to a control register
        if i + 2 >= len(code) or code[i + 2] >> 6 != 3:
            return False
        modrm = code[i + 2]
        length += 1
        crn = ((modrm >> 3) & 7) | (8 if rex & 4 else 0)
        reg = _GPR[(modrm & 7) | (8 if rex & 1 else 0)]
        if op == 0x20:
            value = _read_cr(host, v, cpu, pv, crn)
            if value is None:
                return False
            cpu.set_reg(reg, value)
            what = f"mov %cr{crn},%{reg}"
        else:
            if not _write_cr(host, v, cpu, pv, crn, cpu.reg(reg)):
                return False
            what = f"mov %{reg},%cr{crn}"
    elif op == 0x06:                                 # clts
        pv.cr0_ts = False
        cpu.set_reg("cr0", cpu.reg("cr0") & ~X86_CR0_TS)
        what = "clts"
    elif op == 0x09:                                 # wbinvd: ignored for a DomU
        if not v.domain.privileged:
            what = "wbinvd (ignored)"
        else:
            what = "wbinvd"
    else:
        return False
    cpu.set_reg("rip", rip + length)
    host.trace.emit(host.now(), v.domain.domid, v.vcpu_id, Kind.FAULT, "emulate_privileged_op",
                    {"rip": hex(rip), "insn": what})
    return True


def _iopl_ok(v: Vcpu) -> bool:
    """iopl_ok: the guest kernel counts as ring 1, its user space as ring 3, against the
    I/O privilege level it set with PHYSDEVOP_set_iopl."""
    physdev = getattr(v.domain.vcpus[0].pv, "physdev", None)
    iopl = physdev.iopl if physdev is not None else 0
    return iopl >= (3 if v.user_mode else 1)


def _read_cr(host: XenHost, v: Vcpu, cpu: X86Vcpu, pv: object, crn: int) -> int | None:
    if crn == 0:
        return PV_CR0 | (X86_CR0_TS if getattr(pv, "cr0_ts", False) else 0)
    if crn == 2:
        return int(getattr(pv, "cr2", 0))
    if crn == 3:
        return v.guest_table << PAGE_SHIFT if v.guest_table else cpu.reg("cr3")
    if crn == 4:
        return int(getattr(pv, "cr4", PV_CR4))
    return None


def _write_cr(host: XenHost, v: Vcpu, cpu: X86Vcpu, pv: object, crn: int, value: int) -> bool:
    if crn == 0:
        if (value ^ PV_CR0) & ~X86_CR0_TS:
            return False  # only TS may change (Xen: "Attempt to change unmodifiable CR0")
        ts = bool(value & X86_CR0_TS)
        pv.cr0_ts = ts
        cr0 = cpu.reg("cr0")
        cpu.set_reg("cr0", cr0 | X86_CR0_TS if ts else cr0 & ~X86_CR0_TS)
        return True
    if crn == 3:
        return _new_baseptr(host, v, (value >> PAGE_SHIFT) & ((1 << 40) - 1), False) == 0
    if crn == 4:
        # Xen keeps what the guest may control and its own choice for the rest
        pv.cr4 = value & PV_CR4_GUEST_BITS | PV_CR4 & ~PV_CR4_GUEST_BITS
        return True
    return False
