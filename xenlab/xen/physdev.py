"""physdev_op as an unprivileged PV domain sees it.

A DomU has no physical devices in xenlab, but its kernel still asks: Linux
queries IRQ status, sets up the EOI map, asks for free PIRQs and sets its
I/O privilege level. What Xen allows any domain (``set_iopl``,
``set_iobitmap``, ``irq_status_query``, ``get_free_pirq``,
``pirq_eoi_gmfn``, ``eoi``) answers as Xen does; what touches real hardware
(``map_pirq`` of a device, APIC access, PCI management, MSI, ``setup_gsi``,
the debug port) is the hardware domain's and gets -EPERM. Unknown commands
are -ENOSYS.

Xen's PIRQ space here: ``nr_irqs_gsi`` = 48 (the GSIs of an emulated board
with two IO-APICs) and a DomU's ``nr_pirqs`` = 48 + 32 (``extra_domU_irqs``).

Real Xen: xen/arch/x86/physdev.c (do_physdev_op), xen/arch/x86/irq.c (get_free_pirq)
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.xen.pv_traps import pv_vcpu

if TYPE_CHECKING:
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["PhysdevOp", "do_physdev_op"]


class PhysdevOp(enum.IntEnum):
    """``PHYSDEVOP_*`` (public/physdev.h)."""

    PHYSDEVOP_irq_status_query = 5
    PHYSDEVOP_set_iopl = 6
    PHYSDEVOP_set_iobitmap = 7
    PHYSDEVOP_apic_read = 8
    PHYSDEVOP_apic_write = 9
    PHYSDEVOP_eoi = 12
    PHYSDEVOP_map_pirq = 13
    PHYSDEVOP_unmap_pirq = 14
    PHYSDEVOP_manage_pci_add = 15
    PHYSDEVOP_manage_pci_remove = 16
    PHYSDEVOP_pirq_eoi_gmfn_v1 = 17
    PHYSDEVOP_restore_msi = 19
    PHYSDEVOP_manage_pci_add_ext = 20
    PHYSDEVOP_setup_gsi = 21
    PHYSDEVOP_get_free_pirq = 23
    PHYSDEVOP_pci_mmcfg_reserved = 24
    PHYSDEVOP_pci_device_add = 25
    PHYSDEVOP_pci_device_remove = 26
    PHYSDEVOP_restore_msi_ext = 27
    PHYSDEVOP_pirq_eoi_gmfn_v2 = 28
    PHYSDEVOP_dbgp_op = 29
    PHYSDEVOP_prepare_msix = 30
    PHYSDEVOP_release_msix = 31
    PHYSDEVOP_pci_device_reset = 32


NR_IRQS_GSI = 48
EXTRA_DOMU_IRQS = 32
MAP_PIRQ_TYPE_GSI = 1
IOBMP_BYTES = 8192
#: commands that are the hardware domain's (XSM_PRIV / XSM_DM_PRIV in the dummy policy)
_PRIVILEGED = frozenset((
    PhysdevOp.PHYSDEVOP_apic_read, PhysdevOp.PHYSDEVOP_apic_write,
    PhysdevOp.PHYSDEVOP_map_pirq, PhysdevOp.PHYSDEVOP_unmap_pirq,
    PhysdevOp.PHYSDEVOP_manage_pci_add, PhysdevOp.PHYSDEVOP_manage_pci_remove,
    PhysdevOp.PHYSDEVOP_manage_pci_add_ext, PhysdevOp.PHYSDEVOP_restore_msi,
    PhysdevOp.PHYSDEVOP_restore_msi_ext, PhysdevOp.PHYSDEVOP_setup_gsi,
    PhysdevOp.PHYSDEVOP_pci_mmcfg_reserved, PhysdevOp.PHYSDEVOP_pci_device_add,
    PhysdevOp.PHYSDEVOP_pci_device_remove, PhysdevOp.PHYSDEVOP_dbgp_op,
    PhysdevOp.PHYSDEVOP_prepare_msix, PhysdevOp.PHYSDEVOP_release_msix,
    PhysdevOp.PHYSDEVOP_pci_device_reset))


@dataclass
class PhysdevState:
    """A domain's PIRQs and I/O privilege (kept with vCPU 0's PV state)."""

    pirqs: set[int] = field(default_factory=set)   # allocated by get_free_pirq
    eoi_gmfn: int = 0
    iopl: int = 0
    iobitmap: tuple[int, int] = (0, 0)


def _state(ctx: HypercallContext) -> PhysdevState:
    pv = pv_vcpu(ctx.domain.vcpus[0])
    if pv.physdev is None:
        pv.physdev = PhysdevState()
    state: PhysdevState = pv.physdev
    return state


def _nr_pirqs(ctx: HypercallContext) -> int:
    return NR_IRQS_GSI + (0 if ctx.domain.privileged else EXTRA_DOMU_IRQS)


def do_physdev_op(ctx: HypercallContext, cmd: int, arg: int) -> int:
    """``long do_physdev_op(int cmd, XEN_GUEST_HANDLE_PARAM(void) arg)``"""
    cmd &= 0xFFFFFFFF
    ctx.decode(cmd=ctx.enum_name(PhysdevOp, cmd))
    if cmd in _PRIVILEGED:
        # every one copies its argument first, then meets the hardware-domain check
        if ctx.copy_from_guest(arg, 4) is None:
            return -Errno.EFAULT
        return -Errno.EPERM
    if cmd == PhysdevOp.PHYSDEVOP_set_iopl:
        raw = ctx.copy_from_guest(arg, 4)
        if raw is None:
            return -Errno.EFAULT
        (iopl,) = struct.unpack("<I", raw)
        ctx.decode(iopl=iopl)
        if iopl > 3:
            return -Errno.EINVAL
        _state(ctx).iopl = iopl
        return 0
    if cmd == PhysdevOp.PHYSDEVOP_set_iobitmap:
        raw = ctx.copy_from_guest(arg, 16)
        if raw is None:
            return -Errno.EFAULT
        bitmap, nr_ports = struct.unpack("<QI4x", raw)
        ctx.decode(bitmap=hex(bitmap), nr_ports=nr_ports)
        in_xen = bitmap + IOBMP_BYTES > 1 << 47 and bitmap < 0xFFFF880000000000
        if in_xen or nr_ports > 65536:  # guest_handle_okay(bitmap, IOBMP_BYTES)
            return -Errno.EINVAL
        _state(ctx).iobitmap = (bitmap, nr_ports)
        return 0
    if cmd == PhysdevOp.PHYSDEVOP_irq_status_query:
        raw = ctx.copy_from_guest(arg, 8)
        if raw is None:
            return -Errno.EFAULT
        irq, _flags = struct.unpack("<II", raw)
        ctx.decode(irq=irq)
        if irq >= _nr_pirqs(ctx):
            return -Errno.EINVAL
        # no PIRQ is bound to a physical IRQ: nothing needs an EOI, nothing is shared
        return 0 if ctx.copy_to_guest(arg, struct.pack("<II", irq, 0)) else -Errno.EFAULT
    if cmd == PhysdevOp.PHYSDEVOP_eoi:
        raw = ctx.copy_from_guest(arg, 4)
        if raw is None:
            return -Errno.EFAULT
        (irq,) = struct.unpack("<I", raw)
        ctx.decode(irq=irq)
        if irq >= _nr_pirqs(ctx) or irq not in _state(ctx).pirqs:
            return -Errno.EINVAL
        return 0
    if cmd in (PhysdevOp.PHYSDEVOP_pirq_eoi_gmfn_v1, PhysdevOp.PHYSDEVOP_pirq_eoi_gmfn_v2):
        raw = ctx.copy_from_guest(arg, 8)
        if raw is None:
            return -Errno.EFAULT
        (gmfn,) = struct.unpack("<Q", raw)
        ctx.decode(gmfn=hex(gmfn))
        d = ctx.domain
        # get_page_from_gfn + get_page_type(PGT_writable_page): its own, writable frame
        if (not d.owns_mfn(gmfn) or gmfn in d.shared_mfns
                or gmfn in ctx.host.mem.pt_frames):
            return -Errno.EINVAL
        state = _state(ctx)
        if state.eoi_gmfn:
            return -Errno.EBUSY
        state.eoi_gmfn = gmfn
        return 0
    if cmd == PhysdevOp.PHYSDEVOP_get_free_pirq:
        raw = ctx.copy_from_guest(arg, 8)
        if raw is None:
            return -Errno.EFAULT
        type_, _pirq = struct.unpack("<iI", raw)
        ctx.decode(type=type_)
        pirq = _get_free_pirq(_state(ctx), type_, _nr_pirqs(ctx))
        if pirq < 0:
            return pirq
        _state(ctx).pirqs.add(pirq)
        ctx.decode(pirq=pirq)
        return 0 if ctx.copy_to_guest(arg, struct.pack("<iI", type_, pirq)) else -Errno.EFAULT
    return -Errno.ENOSYS


def _get_free_pirq(state: PhysdevState, type_: int, nr_pirqs: int) -> int:
    """get_free_pirq: a GSI from 16 up, else (and for MSIs) from the top down."""
    if type_ == MAP_PIRQ_TYPE_GSI:
        for i in range(16, NR_IRQS_GSI):
            if i not in state.pirqs:
                return i
    for i in range(nr_pirqs - 1, NR_IRQS_GSI - 1, -1):
        if i not in state.pirqs:
            return i
    return -Errno.ENOSPC
