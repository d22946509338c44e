"""A PV vCPU's whole state from the guest: VCPUOP_initialise (arch_set_info_guest).

A PV kernel brings up its secondary vCPUs itself: it fills a ``vcpu_guest_context``
(registers, virtual IDT, GDT frames, kernel stack, page-table base, callbacks, segment
bases) and hands it to Xen with ``VCPUOP_initialise``; the vCPU stays down until
``VCPUOP_up``. Linux does this in ``cpu_initialize_context``
(arch/x86/xen/smp_pv.c) for every CPU but the first.

Xen checks everything before it changes anything: every address canonical, the LDT
page-aligned and at most 8,192 entries, the GDT's frames typed as descriptor pages, the
page-table base a valid L4 of the domain (it takes a reference and a type count on it,
as ``XEN_DOMCTL_setvcpucontext`` does for the first vCPU); a refused context leaves the
vCPU as it was. A vCPU can be initialised once (-EEXIST after).

xenlab simplifies: the context's FPU area and debug registers are not loaded (the vCPU
starts with a clean FPU; breakpoints are kept, not armed, as for ``set_debugreg``), and
a context that starts in guest user mode (no ``VGCF_in_kernel``) is refused (-EINVAL):
kernels start their CPUs in kernel mode.

Real Xen: xen/arch/x86/domain.c (arch_set_info_guest), xen/common/domain.c
(default_initialise_vcpu)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.vcpu import VcpuGuestContext, VGCF_in_kernel
from xenlab.xen.mm import get_page_and_type, put_page_and_type
from xenlab.xen.page_alloc import PAGE_SHIFT, PGT_l4_page_table
from xenlab.xen.pv_descriptor_tables import (
    FIRST_RESERVED_GDT_ENTRY,
    _get_segdesc_type,
    _put_segdesc,
    pv_destroy_gdt,
)
from xenlab.xen.pv_traps import (
    MSR_FS_BASE,
    MSR_GS_BASE,
    MSR_SHADOW_GS_BASE,
    TrapInfo,
    VGCF_failsafe_disables_events,
    VGCF_syscall_disables_events,
    pv_vcpu,
)

if TYPE_CHECKING:
    from xenlab.xen.domain import Vcpu
    from xenlab.xen.setup import XenHost

__all__ = ["arch_set_info_guest"]

_X86_EFLAGS_IOPL = 3 << 12


def _canonical(va: int) -> bool:
    return (va >> 47) in (0, 0x1FFFF)


def arch_set_info_guest(host: XenHost, v: Vcpu, c: VcpuGuestContext) -> tuple[int, str]:
    """Load ``c`` into the (not yet initialised) PV vCPU ``v``; (0 or -errno, why)."""
    d = v.domain
    pv = pv_vcpu(v)
    if pv.initialised:
        return -Errno.EEXIST, "the vCPU is already initialised"
    regs = c.user_regs
    addresses = {"rip": regs.rip, "rsp": regs.rsp, "kernel_sp": c.kernel_sp,
                 "event_callback_eip": c.event_callback_eip,
                 "failsafe_callback_eip": c.failsafe_callback_eip,
                 "syscall_callback_eip": c.syscall_callback_eip, "ldt_base": c.ldt_base,
                 "fs_base": c.fs_base, "gs_base_kernel": c.gs_base_kernel,
                 "gs_base_user": c.gs_base_user}
    for name, va in addresses.items():
        if not _canonical(va):
            return -Errno.EINVAL, f"{name} {va:#x} is not canonical"
    traps = [t for t in c.trap_ctxt if t.address]
    for t in traps:
        if not _canonical(t.address):
            return -Errno.EINVAL, f"trap {t.vector}'s handler {t.address:#x} is not canonical"
    if c.ldt_base & 0xFFF or c.ldt_ents > 8192:
        return -Errno.EINVAL, "the LDT is not page-aligned or has over 8192 entries"
    if c.gdt_ents > FIRST_RESERVED_GDT_ENTRY:
        return -Errno.EINVAL, f"gdt_ents {c.gdt_ents} reaches Xen's reserved entries"
    if not c.flags & VGCF_in_kernel:
        return -Errno.EINVAL, "xenlab starts a vCPU in its kernel only (VGCF_in_kernel)"
    # the GDT's frames, typed as descriptor pages (set_gdt's rules)
    frames = list(c.gdt_frames[:(c.gdt_ents + 511) // 512])
    taken: list[int] = []
    for mfn in frames:
        if not _get_segdesc_type(host, v, mfn):
            for m in taken:
                _put_segdesc(host, m)
            return -Errno.EINVAL, f"GDT frame {mfn:#x} is not a descriptor page of the domain"
        taken.append(mfn)
    # the kernel's and the user's page-table bases (ctrlreg[3], ctrlreg[1]): valid L4s
    cr3, user = c.ctrlreg[3] >> PAGE_SHIFT, c.ctrlreg[1] >> PAGE_SHIFT
    if not get_page_and_type(host, cr3, d, PGT_l4_page_table):
        for m in taken:
            _put_segdesc(host, m)
        return -Errno.EINVAL, f"ctrlreg[3] {c.ctrlreg[3]:#x} is not an L4 table of the domain"
    if user and not get_page_and_type(host, user, d, PGT_l4_page_table):
        put_page_and_type(host, cr3)
        for m in taken:
            _put_segdesc(host, m)
        return -Errno.EINVAL, f"ctrlreg[1] {c.ctrlreg[1]:#x} is not an L4 table of the domain"

    # from here on nothing fails: commit
    pv_destroy_gdt(host, v)
    pv.gdt_frames, pv.gdt_ents = taken, c.gdt_ents
    pv.trap_ctxt = {t.vector: TrapInfo(t.vector, t.flags, t.cs | 3 if not t.cs & 3 else t.cs,
                                       t.address) for t in traps}
    pv.kernel_ss, pv.kernel_sp = c.kernel_ss | 3 if c.kernel_ss else c.kernel_ss, c.kernel_sp
    pv.vgc_flags = c.flags & (VGCF_failsafe_disables_events | VGCF_syscall_disables_events)
    pv.fs_base, pv.gs_base_kernel, pv.gs_base_user = c.fs_base, c.gs_base_kernel, c.gs_base_user
    pv.debugreg[:8] = list(c.debugreg)
    for name, address in (("event", c.event_callback_eip),
                          ("failsafe", c.failsafe_callback_eip),
                          ("syscall", c.syscall_callback_eip)):
        if address:
            v.callbacks[name] = address
    v.ldt = (c.ldt_base, c.ldt_ents)
    v.guest_table_user = user
    rflags = (regs.rflags & ~_X86_EFLAGS_IOPL) | 0x202     # IF on, IOPL is virtual
    host.vcpu_initialise_pv(v, rip=regs.rip, rsp=regs.rsp, rsi=regs.rsi, cr3=cr3 << PAGE_SHIFT,
                            rflags=rflags, online=False, l4_referenced=True)
    cpu = v.cpu
    assert cpu is not None
    gprs = {"r15": regs.r15, "r14": regs.r14, "r13": regs.r13, "r12": regs.r12,
            "rbp": regs.rbp, "rbx": regs.rbx, "r11": regs.r11, "r10": regs.r10, "r9": regs.r9,
            "r8": regs.r8, "rax": regs.rax, "rcx": regs.rcx, "rdx": regs.rdx, "rdi": regs.rdi}
    for reg, value in gprs.items():
        cpu.set_reg(reg, value)
    cpu.msr_write(MSR_FS_BASE, c.fs_base)
    cpu.msr_write(MSR_GS_BASE, c.gs_base_kernel)
    cpu.msr_write(MSR_SHADOW_GS_BASE, c.gs_base_user)
    return 0, ""
