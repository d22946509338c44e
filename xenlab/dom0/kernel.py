"""Dom0's kernel interfaces to Xen: event channels and grant mappings for its backends.

What Linux offers Dom0's drivers and daemons as ``/dev/xen/evtchn`` and
``/dev/xen/gntdev`` (and in-kernel ``bind_interdomain_evtchn_to_irqhandler``,
``gnttab_map_refs``): bind to a guest's port and get a callback when it fires;
notify a port; map a guest's grant and get the page. Every call goes through
the same hypervisor functions a guest's hypercall reaches, so Xen's checks
apply to Dom0 too and every step lands in the trace: Xen's own records (a grant
entry mapped, a port set pending) and Dom0's hypercall, recorded as a guest's
would be (``xenlab/xen/privcmd.py``): ``event_channel_op`` (32) for bind, send
and close, ``grant_table_op`` (20) for grant maps and unmaps (one call with
``count`` N for a batch, as ``gnttab_map_refs`` makes), ``mmu_update`` (1) with
a ``foreigndom`` for a foreign mapping (a PV Dom0's privcmd mmap, xen_remap_pfn).

Real Xen: Linux drivers/xen/evtchn.c, drivers/xen/gntdev.c, drivers/xen/grant-table.c
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xenlab.public import grant_table as G
from xenlab.public.errno import Errno
from xenlab.public.event_channel import EvtchnOp
from xenlab.public.grant_table import GntSt, GnttabOp
from xenlab.public.xen import DOMID_SELF, Hypercall
from xenlab.xen import event_channel as ev
from xenlab.xen.domain import Domain
from xenlab.xen.grant_table import GrantMapping, gnttab_map_grant_ref, gnttab_unmap_grant_ref
from xenlab.xen.mm import get_page, get_page_type, put_page, put_page_and_type
from xenlab.xen.page_alloc import PAGE_SIZE, PGT_writable_page
from xenlab.xen.privcmd import dom0_hypercall, dom0_hypercall_deferred
from xenlab.xen.setup import XenHost
from xenlab.xen.trace import Kind

__all__ = ["Dom0Kernel", "MappedGrant"]


@dataclass
class MappedGrant:
    mapping: GrantMapping | None   # None: a privileged foreign mapping, not a grant
    page: memoryview
    mfn: int = 0                   # a foreign mapping's frame (it holds a reference)
    writable: bool = False


_EVTCHNOP_SEND = EvtchnOp.EVTCHNOP_send.name
_NR_EVTCHN = int(Hypercall.event_channel_op)


def _send_args(port: int, why: str) -> dict[str, object]:
    """Dom0's EVTCHNOP_send, decoded as a guest's (plus why Dom0 notified)."""
    out: dict[str, object] = {"nr": _NR_EVTCHN, "cmd": _EVTCHNOP_SEND, "port": port}
    if why:
        out["why"] = why
    return out


def _evtchn_op(host: XenHost, cmd: EvtchnOp, args: dict[str, object], ret: int) -> None:
    dom0_hypercall(host, Hypercall.event_channel_op, {"cmd": cmd.name, **args}, ret)


def _gnttab_op(host: XenHost, cmd: GnttabOp, count: int, args: dict[str, object]) -> None:
    """One grant_table_op of ``count`` operations (its return is 0: each operation's
    status is in its own entry, and in the grant record Xen made for it)."""
    dom0_hypercall(host, Hypercall.grant_table_op,
                   {"cmd": cmd.name, "count": count, **args}, 0)


class Dom0Kernel:
    """Event channels and grants as Dom0's Python services use them."""

    def __init__(self, host: XenHost) -> None:
        self.host = host
        self.dom0: Domain = host.domains[0]
        self.notifications = 0

    # -- event channels ---------------------------------------------------------------
    def bind_interdomain(self, domid: int, remote_port: int,
                         handler: Callable[[int], None]) -> int:
        """IOCTL_EVTCHN_BIND_INTERDOMAIN: returns Dom0's port or a negative errno."""
        port = ev.evtchn_bind_interdomain(self.host, self.dom0, domid, remote_port)
        args: dict[str, object] = {"remote_dom": domid, "remote_port": remote_port}
        if port > 0:
            args["result"] = {"local_port": port}
        _evtchn_op(self.host, EvtchnOp.EVTCHNOP_bind_interdomain, args, min(port, 0))
        if port > 0:
            self.host.dom0_handlers[port] = handler
            ev.evtchn_clear_pending(self.host, self.dom0, port)  # the bind's own kick
        return port

    def unbind(self, port: int) -> None:
        """IOCTL_EVTCHN_UNBIND: EVTCHNOP_close on Dom0's port."""
        self.host.dom0_handlers.pop(port, None)
        if self.dom0.evtchn is not None and self.dom0.evtchn.lookup(port) is not None:
            rc = ev.evtchn_close(self.host, self.dom0, port)
            _evtchn_op(self.host, EvtchnOp.EVTCHNOP_close, {"port": port}, rc)

    def notify(self, port: int, why: str = "") -> int:
        """IOCTL_EVTCHN_NOTIFY (EVTCHNOP_send from Dom0; its record is made when read: the
        ioreq path of an HVM boot notifies thousands of times)."""
        self.notifications += 1
        host = self.host
        rc = ev.evtchn_send(host, self.dom0, port)
        dom0_hypercall_deferred(host, "event_channel_op", _send_args, (port, why), rc)
        return rc

    # -- grants -----------------------------------------------------------------------
    def map_grant(self, domid: int, ref: int, *, readonly: bool) -> tuple[int, MappedGrant | None]:
        """gnttab_map_refs for one page: (GNTST status, the mapped page)."""
        (status, page), = self.map_grants(domid, [ref], readonly=readonly)
        return status, page

    def map_grants(self, domid: int, refs: list[int], *, readonly: bool
                   ) -> list[tuple[int, MappedGrant | None]]:
        """gnttab_map_refs: one GNTTABOP_map_grant_ref hypercall for every ref (count N);
        each gets its own status, as in Xen (a bad ref does not stop the others)."""
        flags = G.GNTMAP_host_map | (G.GNTMAP_readonly if readonly else 0)
        out: list[tuple[int, MappedGrant | None]] = []
        for ref in refs:
            status, mapping = gnttab_map_grant_ref(self.host, self.dom0, domid, ref, flags)
            if status != GntSt.GNTST_okay or mapping is None:
                out.append((status, None))
                continue
            page = self.host.mem.view(mapping.maddr, PAGE_SIZE, readonly=readonly)
            out.append((status, MappedGrant(mapping, page)))
        _gnttab_op(self.host, GnttabOp.GNTTABOP_map_grant_ref, len(refs),
                   {"dom": domid, "refs": list(refs)})
        return out

    def unmap_grant(self, mapped: MappedGrant) -> int:
        return self.unmap_grants([mapped])[0]

    def unmap_grants(self, pages: list[MappedGrant]) -> list[int]:
        """gnttab_unmap_refs: one GNTTABOP_unmap_grant_ref for every grant mapping in
        ``pages`` (count N); a foreign mapping is unmapped on its own (mmu_update)."""
        out: list[int] = []
        handles: list[int] = []
        for mapped in pages:
            mapped.page.release()
            if mapped.mapping is None:
                self._unmap_foreign(mapped)
                out.append(GntSt.GNTST_okay)
                continue
            handles.append(mapped.mapping.handle)
            out.append(gnttab_unmap_grant_ref(self.host, self.dom0, mapped.mapping.handle))
        if handles:
            _gnttab_op(self.host, GnttabOp.GNTTABOP_unmap_grant_ref, len(handles),
                       {"handles": handles})
        return out

    def map_foreign_mfn(self, domid: int, mfn: int, *, writable: bool = True
                        ) -> MappedGrant | None:
        """xenforeignmemory_map: the privileged Dom0 maps a frame the guest owns (how the
        toolstack's daemons reach an HVM guest's special pages, which are not granted).

        As in Xen (p2m_add_foreign), the mapping holds a reference to the frame, and the
        writable type if it writes: while Dom0 maps it, the frame stays the guest's even
        if the guest gives it back (decrease_reservation), and a page table is never
        mapped writable."""
        host = self.host
        d = host.domains.get(domid)
        if (d is None or d.is_dying or mfn in d.shared_mfns or not d.owns_mfn(mfn)
                or not get_page(host, mfn, d)):
            self._mmu_update(domid, mfn, -Errno.EINVAL)
            return None
        if writable and not get_page_type(host, mfn, d, PGT_writable_page):
            put_page(host, mfn)
            self._mmu_update(domid, mfn, -Errno.EINVAL)
            return None
        held = self.dom0.foreign_maps.setdefault(mfn, [0, 0])
        held[0] += 1
        held[1] += 1 if writable else 0
        host.trace.emit(host.now(), 0, 0, Kind.GRANT, "foreign_map",
                        {"dom": domid, "mfn": mfn})
        self._mmu_update(domid, mfn, 0)
        return MappedGrant(None, host.mem.view(mfn << 12, PAGE_SIZE, readonly=not writable),
                           mfn, writable)

    def _mmu_update(self, domid: int, mfn: int, ret: int) -> None:
        """The hypercall a PV Dom0's privcmd makes to map (``foreigndom`` the guest) or
        unmap (``DOMID_SELF``: Dom0 clears its own PTE) a guest's frame: one
        MMU_NORMAL_PT_UPDATE."""
        dom0_hypercall(self.host, Hypercall.mmu_update,
                       {"count": 1, "foreigndom": domid, "mfn": mfn}, ret)

    def _unmap_foreign(self, mapped: MappedGrant) -> None:
        held = self.dom0.foreign_maps.get(mapped.mfn)
        if held is None or held[0] <= 0:
            return
        self._mmu_update(DOMID_SELF, mapped.mfn, 0)
        held[0] -= 1
        held[1] -= 1 if mapped.writable else 0
        if not held[0]:
            del self.dom0.foreign_maps[mapped.mfn]
        if mapped.writable:
            put_page_and_type(self.host, mapped.mfn)
        else:
            put_page(self.host, mapped.mfn)

    def connect_interface(self, d: Domain, gref: int, mfn: int, remote_port: int,
                          handler: Callable[[int], None]) -> tuple[MappedGrant, int] | None:
        """How xenstored and xenconsoled reach a guest's ring (``map_interface`` in
        tools/xenstored/domain.c): a PV guest's page through its reserved grant entry
        ``gref``, an HVM guest's special page (not granted) by a foreign mapping of
        ``mfn``; then the guest's ``remote_port`` is bound. None if either step fails."""
        if d.hvm is not None:
            page = self.map_foreign_mfn(d.domid, mfn)
        else:
            status, page = self.map_grant(d.domid, gref, readonly=False)
            if status != GntSt.GNTST_okay:
                page = None
        if page is None:
            return None
        port = self.bind_interdomain(d.domid, remote_port, handler)
        if port < 0:
            self.unmap_grant(page)
            return None
        return page, port
