"""A 64-bit PV kernel's CPU state through Xen: stack_switch, set_segment_base,
fpu_taskswitch, vm_assist, set_debugreg / get_debugreg.

A PV kernel runs in ring 3, so what a native kernel does with privileged
instructions it asks Xen to do:

* ``stack_switch(ss, sp)``: the kernel stack Xen switches to when an
  exception, interrupt or ``syscall`` comes from guest user mode (a native
  kernel's TSS.RSP0).
* ``set_segment_base(which, base)``: the FS base, the user and kernel GS
  bases (``swapgs`` swaps them when the vCPU changes mode), or a user GS
  selector.
* ``fpu_taskswitch(set)``: CR0.TS, for lazy FPU switching: the next FPU
  instruction raises #NM, which Xen bounces to the kernel (clearing TS).
* ``vm_assist(cmd, type)``: the assists Xen offers a 64-bit PV guest
  (writable page tables, extended CR3, architectural IOPL, the runstate
  update flag, strict M2P); others are -EINVAL.
* ``set_debugreg`` / ``get_debugreg``: DR0-DR3 must not point into Xen,
  DR6/DR7's upper halves are reserved, DR7 may not enable general detect nor
  I/O breakpoints (CR4.DE is clear); DR4/DR5 alias DR6/DR7.

Real Xen: xen/arch/x86/pv/misc-hypercalls.c, xen/arch/x86/pv/traps.c
(do_fpu_taskswitch), xen/common/domain.c (do_vm_assist), xen/arch/x86/x86_64/mm.c
(do_stack_switch, do_set_segment_base)
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.xen import HYPERVISOR_VIRT_END
from xenlab.xen.pv_traps import MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE, pv_vcpu

if TYPE_CHECKING:
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["VMASST_VALID", "Segbase", "Vmasst", "do_fpu_taskswitch", "do_get_debugreg",
           "do_set_debugreg", "do_set_segment_base", "do_stack_switch", "do_vm_assist"]


class Segbase(enum.IntEnum):
    """``SEGBASE_*`` (public/arch-x86/xen-x86_64.h)."""

    SEGBASE_FS = 0
    SEGBASE_GS_USER = 1
    SEGBASE_GS_KERNEL = 2
    SEGBASE_GS_USER_SEL = 3


class Vmasst(enum.IntEnum):
    """``VMASST_TYPE_*`` (public/xen.h)."""

    VMASST_TYPE_4gb_segments = 0
    VMASST_TYPE_4gb_segments_notify = 1
    VMASST_TYPE_writable_pagetables = 2
    VMASST_TYPE_pae_extended_cr3 = 3
    VMASST_TYPE_architectural_iopl = 4
    VMASST_TYPE_runstate_update_flag = 5
    VMASST_TYPE_m2p_strict = 32


VMASST_CMD_enable, VMASST_CMD_disable = 0, 1
#: NATIVE_VM_ASSIST_VALID: what a 64-bit PV guest may enable
VMASST_VALID = sum(1 << t for t in Vmasst)
X86_CR0_TS = 1 << 3
DR_GENERAL_DETECT = 1 << 13
DR7_ACTIVE_MASK = 0xFF
DR_IO = 2
X86_DR6_DEFAULT = 0xFFFF0FF0
X86_DR7_DEFAULT = 0x400
X86_DR7_ZEROS = 0xD800     # bits 11, 12, 14, 15


def _canonical(va: int) -> bool:
    return (va >> 47) in (0, 0x1FFFF)


def do_stack_switch(ctx: HypercallContext, ss: int, esp: int) -> int:
    """``long do_stack_switch(unsigned long ss, unsigned long esp)``"""
    ctx.decode(ss=hex(ss), esp=hex(esp))
    pv = pv_vcpu(ctx.vcpu)
    ss &= 0xFFFF
    if ss & 3 < 3:  # fixup_guest_stack_selector: a 64-bit PV kernel's RPL is 3
        ss = (ss & ~3) | 3
    pv.kernel_ss, pv.kernel_sp = ss, esp
    return 0


def do_set_segment_base(ctx: HypercallContext, which: int, base: int) -> int:
    """``long do_set_segment_base(unsigned int which, unsigned long base)``"""
    which &= 0xFFFFFFFF
    ctx.decode(which=ctx.enum_name(Segbase, which), base=hex(base))
    cpu, pv = ctx.cpu, pv_vcpu(ctx.vcpu)
    if not cpu.long_mode:
        return -Errno.ENOSYS
    if which == Segbase.SEGBASE_GS_USER_SEL:
        # a selector loads a flat (or, if bad, null) segment: the user GS base is 0
        pv.gs_base_user = 0
        cpu.msr_write(MSR_SHADOW_GS_BASE, 0)
        return 0
    if which not in (Segbase.SEGBASE_FS, Segbase.SEGBASE_GS_USER, Segbase.SEGBASE_GS_KERNEL):
        return -Errno.EINVAL
    if not _canonical(base):
        return -Errno.EINVAL
    if which == Segbase.SEGBASE_FS:
        pv.fs_base = base
        cpu.msr_write(MSR_FS_BASE, base)
    elif which == Segbase.SEGBASE_GS_USER:
        pv.gs_base_user = base
        cpu.msr_write(MSR_SHADOW_GS_BASE, base)
    else:
        pv.gs_base_kernel = base
        cpu.msr_write(MSR_GS_BASE, base)
    return 0


def do_fpu_taskswitch(ctx: HypercallContext, set_: int) -> int:
    """``long do_fpu_taskswitch(int set)``: CR0.TS on or off."""
    set_ &= 0xFFFFFFFF
    ctx.decode(set=set_)
    pv, cpu = pv_vcpu(ctx.vcpu), ctx.cpu
    pv.cr0_ts = bool(set_)
    cr0 = cpu.reg("cr0")
    cpu.set_reg("cr0", cr0 | X86_CR0_TS if set_ else cr0 & ~X86_CR0_TS)
    return 0


def do_vm_assist(ctx: HypercallContext, cmd: int, type_: int) -> int:
    """``long do_vm_assist(unsigned int cmd, unsigned int type)``"""
    cmd &= 0xFFFFFFFF
    type_ &= 0xFFFFFFFF
    ctx.decode(cmd={0: "VMASST_CMD_enable", 1: "VMASST_CMD_disable"}.get(cmd, cmd),
               type=ctx.enum_name(Vmasst, type_))
    if type_ >= 64 or not VMASST_VALID >> type_ & 1:
        return -Errno.EINVAL
    pv = pv_vcpu(ctx.domain.vcpus[0])   # d->vm_assist, kept with vCPU 0's state
    if cmd == VMASST_CMD_enable:
        pv.vm_assist |= 1 << type_
        return 0
    if cmd == VMASST_CMD_disable:
        pv.vm_assist &= ~(1 << type_)
        return 0
    return -Errno.ENOSYS


def do_set_debugreg(ctx: HypercallContext, reg: int, value: int) -> int:
    """``long do_set_debugreg(int reg, unsigned long value)`` (set_debugreg)"""
    reg &= 0xFFFFFFFF
    ctx.decode(reg=reg, value=hex(value))
    pv = pv_vcpu(ctx.vcpu)
    if reg <= 3:
        # access_ok: a breakpoint may not point into Xen's half of the address space
        if value < HYPERVISOR_VIRT_END and value + 8 > 1 << 47:
            return -Errno.EPERM
        pv.debugreg[reg] = value
        return 0
    if reg in (4, 6):  # DR4 aliases DR6 while CR4.DE is clear (always for a PV guest)
        if value >> 32:
            return -Errno.EINVAL
        pv.debugreg[6] = (value | X86_DR6_DEFAULT) & 0xFFFFFFFF
        return 0
    if reg in (5, 7):
        if value >> 32:
            return -Errno.EINVAL
        value = (value & ~X86_DR7_ZEROS) | X86_DR7_DEFAULT
        if value & DR_GENERAL_DETECT:
            return -Errno.EPERM
        if value & DR7_ACTIVE_MASK and any((value >> i) & 3 == DR_IO
                                           for i in range(16, 32, 4)):
            return -Errno.EPERM  # I/O breakpoints need CR4.DE
        pv.debugreg[7] = value
        return 0
    return -Errno.ENODEV


def do_get_debugreg(ctx: HypercallContext, reg: int) -> int:
    """``unsigned long do_get_debugreg(int reg)``"""
    reg &= 0xFFFFFFFF
    ctx.decode(reg=reg)
    pv = pv_vcpu(ctx.vcpu)
    if reg <= 3:
        return pv.debugreg[reg]
    if reg in (4, 6):
        return pv.debugreg[6]
    if reg in (5, 7):
        return pv.debugreg[7]
    return -Errno.ENODEV

