"""The xen_version hypercall: who is the hypervisor?

Real Xen: xen/common/kernel.c (do_xen_version)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenlab.public import version as V
from xenlab.public.errno import Errno
from xenlab.public.version import XenVer

if TYPE_CHECKING:
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["do_xen_version"]

XENFEAT_writable_page_tables = 0
XENFEAT_auto_translated_physmap = 2
XENFEAT_supervisor_mode_kernel = 3
XENFEAT_mmu_pt_update_preserve_ad = 5
XENFEAT_highmem_assist = 6
XENFEAT_gnttab_map_avail_bits = 7
XENFEAT_hvm_callback_vector = 8
XENFEAT_dom0 = 11
XENFEAT_memory_op_vnode_supported = 13


def _fixed(text: bytes, size: int) -> bytes:
    return text[: size - 1].ljust(size, b"\0")


def do_xen_version(ctx: HypercallContext, cmd: int, arg: int) -> int:
    """``long do_xen_version(int cmd, XEN_GUEST_HANDLE_PARAM(void) arg)``"""
    cmd &= 0xFFFFFFFF
    ctx.decode(cmd=ctx.enum_name(XenVer, cmd), arg=hex(arg))
    if cmd == XenVer.XENVER_version:
        return (V.XEN_MAJOR << 16) | V.XEN_MINOR
    table: dict[int, bytes] = {
        XenVer.XENVER_extraversion: _fixed(V.XEN_EXTRAVERSION, V.XEN_EXTRAVERSION_LEN),
        XenVer.XENVER_capabilities: _fixed(V.XEN_CAPABILITIES, V.XEN_CAPABILITIES_INFO_LEN),
        XenVer.XENVER_changeset: _fixed(V.XEN_CHANGESET, V.XEN_CHANGESET_INFO_LEN),
        XenVer.XENVER_compile_info: (
            _fixed(b"gcc (Debian 12.2.0-14) 12.2.0 [xenlab emulation]", 64)
            + _fixed(b"xenlab", 16) + _fixed(b"xenlab.example", 32)
            + _fixed(b"Thu Jan  1 00:00:00 UTC 1970", 32)
        ),
        XenVer.XENVER_commandline: _fixed(ctx.host.cmdline.encode(), V.XEN_COMMANDLINE_LEN),
    }
    if cmd in table:
        data = table[cmd]
        if not ctx.copy_to_guest(arg, data):
            return -Errno.EFAULT
        return 0
    if cmd == XenVer.XENVER_platform_parameters:
        # struct xen_platform_parameters { xen_ulong_t virt_start; }
        if not ctx.copy_to_guest(arg, (0xFFFF800000000000).to_bytes(8, "little")):
            return -Errno.EFAULT
        return 0
    if cmd == XenVer.XENVER_get_features:
        # struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }
        raw = ctx.copy_from_guest(arg, 8)
        if raw is None:
            return -Errno.EFAULT
        idx = int.from_bytes(raw[:4], "little")
        submap = 0
        if idx == 0 and not ctx.domain.is_pv:
            submap = (1 << XENFEAT_auto_translated_physmap) | (1 << XENFEAT_hvm_callback_vector)
        elif idx == 0:
            # what Xen 4.17's kernel.c gives a PV domain (Linux 6.1 refuses to boot
            # without mmu_pt_update_preserve_ad and gnttab_map_avail_bits)
            submap = ((1 << XENFEAT_memory_op_vnode_supported)
                      | (1 << XENFEAT_mmu_pt_update_preserve_ad)
                      | (1 << XENFEAT_highmem_assist) | (1 << XENFEAT_gnttab_map_avail_bits)
                      | ((1 << XENFEAT_dom0) if ctx.domain.privileged else 0))
        ctx.decode(submap_idx=idx, submap=hex(submap))
        if not ctx.copy_to_guest(arg + 4, submap.to_bytes(4, "little")):
            return -Errno.EFAULT
        return 0
    if cmd == XenVer.XENVER_pagesize:
        return 4096
    if cmd == XenVer.XENVER_guest_handle:
        if not ctx.copy_to_guest(arg, bytes(16)):
            return -Errno.EFAULT
        return 0
    if cmd == XenVer.XENVER_build_id:
        return -Errno.EPERM if not ctx.domain.privileged else -Errno.ENODATA
    return -Errno.ENOSYS
