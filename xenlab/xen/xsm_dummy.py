"""The hypercalls only Dom0 (or a device model) may make, as a DomU's kernel meets them.

Xen's default security policy (XSM's dummy module) lets the control domain
make ``platform_op``, ``sysctl``, ``domctl``, ``kexec_op``, ``hypfs_op`` and
``dm_op``; everyone else gets -EPERM, after Xen has read the argument
(-EFAULT if it cannot) and checked its interface version (-EACCES).
``dm_op`` is also refused on the caller itself (-EPERM), on a domain that
does not exist (-ESRCH) and on a PV one (-EINVAL); ``xenpmu_op`` is
-EOPNOTSUPP while the vPMU is off (Xen's default). xenlab's Dom0 is the
Python toolstack, which calls the hypervisor directly: these rows are what
guest code reaches.

Real Xen: xen/include/xsm/dummy.h (xsm_default_action), xen/common/sysctl.c,
xen/common/domctl.c, xen/arch/x86/platform_hypercall.c, xen/common/kexec.c,
xen/common/hypfs.c, xen/arch/x86/hvm/dm.c, xen/arch/x86/cpu/vpmu.c
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.xen import DOMID_SELF

if TYPE_CHECKING:
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["do_dm_op", "do_domctl", "do_hypfs_op", "do_kexec_op", "do_platform_op",
           "do_sysctl", "do_xenpmu_op"]

XEN_SYSCTL_INTERFACE_VERSION = 0x15
XEN_DOMCTL_INTERFACE_VERSION = 0x15
XENPF_INTERFACE_VERSION = 0x03000001


def _versioned(ctx: HypercallContext, arg: int, version_at: int, version: int) -> int:
    """copy_from_guest, the interface version, then the privilege check."""
    raw = ctx.copy_from_guest(arg, version_at + 4)
    if raw is None:
        return -Errno.EFAULT
    cmd = struct.unpack_from("<I", raw)[0]
    got = struct.unpack_from("<I", raw, version_at)[0]
    ctx.decode(cmd=cmd, interface_version=hex(got))
    if got != version:
        return -Errno.EACCES
    return 0 if ctx.domain.privileged else -Errno.EPERM


def do_platform_op(ctx: HypercallContext, op: int) -> int:
    """``long do_platform_op(XEN_GUEST_HANDLE_PARAM(xen_platform_op_t) u_xenpf_op)``"""
    return _versioned(ctx, op, 4, XENPF_INTERFACE_VERSION) or -Errno.ENOSYS


def do_sysctl(ctx: HypercallContext, op: int) -> int:
    """``long do_sysctl(XEN_GUEST_HANDLE_PARAM(xen_sysctl_t) u_sysctl)``"""
    return _versioned(ctx, op, 4, XEN_SYSCTL_INTERFACE_VERSION) or -Errno.ENOSYS


def do_domctl(ctx: HypercallContext, op: int) -> int:
    """``long do_domctl(XEN_GUEST_HANDLE_PARAM(xen_domctl_t) u_domctl)``"""
    return _versioned(ctx, op, 4, XEN_DOMCTL_INTERFACE_VERSION) or -Errno.ENOSYS


XEN_MCA_INTERFACE_VERSION = 0x01ECC003


def do_mca(ctx: HypercallContext, op: int) -> int:
    """``long do_mca(XEN_GUEST_HANDLE_PARAM(xen_mc_t) u_xen_mc)`` (x86's arch_0): machine
    check telemetry is the hardware domain's; a DomU gets -EPERM."""
    return _versioned(ctx, op, 4, XEN_MCA_INTERFACE_VERSION) or -Errno.ENOSYS


def do_kexec_op(ctx: HypercallContext, op: int, uarg: int) -> int:
    """``long do_kexec_op(unsigned long op, XEN_GUEST_HANDLE_PARAM(void) uarg)``"""
    ctx.decode(op=op)
    return -Errno.EPERM if not ctx.domain.privileged else -Errno.ENOSYS


def do_hypfs_op(ctx: HypercallContext, cmd: int, arg1: int, arg2: int, arg3: int,
                arg4: int) -> int:
    """``long do_hypfs_op(unsigned int cmd, ...)``: the privilege check comes first."""
    ctx.decode(cmd=cmd & 0xFFFFFFFF)
    return -Errno.EPERM if not ctx.domain.privileged else -Errno.ENOSYS


def do_dm_op(ctx: HypercallContext, domid: int, nr_bufs: int, bufs: int) -> int:
    """``long do_dm_op(domid_t domid, unsigned int nr_bufs, XEN_GUEST_HANDLE_PARAM(
    xen_dm_op_buf_t) bufs)``: rcu_lock_remote_domain_by_id, is_hvm_domain, then XSM."""
    domid &= 0xFFFF
    ctx.decode(domid=domid, nr_bufs=nr_bufs & 0xFFFFFFFF)
    if domid in (DOMID_SELF, ctx.domain.domid):
        return -Errno.EPERM
    target = ctx.host.domains.get(domid)
    if target is None:
        return -Errno.ESRCH
    if target.hvm is None:
        return -Errno.EINVAL
    return -Errno.EPERM


def do_xenpmu_op(ctx: HypercallContext, op: int, arg: int) -> int:
    """``long do_xenpmu_op(unsigned int op, XEN_GUEST_HANDLE_PARAM(xen_pmu_params_t) arg)``"""
    ctx.decode(op=op & 0xFFFFFFFF)
    return -Errno.EOPNOTSUPP
