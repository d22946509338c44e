"""Dom0's kernel interfaces to Xen: event channels and grant mappings for its backends.

What Linux offers Dom0's drivers and daemons as ``/dev/xen/evtchn`` and
``/dev/xen/gntdev`` (and in-kernel ``bind_interdomain_evtchn_to_irqhandler``,
``gnttab_map_refs``): bind to a guest's port and get a callback when it fires;
notify a port; map a guest's grant and get the page. Every call goes through
the same hypervisor functions a guest's hypercall reaches, so Xen's checks
apply to Dom0 too and every step lands in the trace.

Real Xen: Linux drivers/xen/evtchn.c, drivers/xen/gntdev.c, drivers/xen/grant-table.c
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xenlab.public import grant_table as G
from xenlab.public.grant_table import GntSt
from xenlab.xen import event_channel as ev
from xenlab.xen.domain import Domain
from xenlab.xen.grant_table import GrantMapping, gnttab_map_grant_ref, gnttab_unmap_grant_ref
from xenlab.xen.mm import get_page, get_page_type, put_page, put_page_and_type
from xenlab.xen.page_alloc import PAGE_SIZE, PGT_writable_page
from xenlab.xen.setup import XenHost
from xenlab.xen.trace import Kind

__all__ = ["Dom0Kernel", "MappedGrant"]


@dataclass
class MappedGrant:
    mapping: GrantMapping | None   # None: a privileged foreign mapping, not a grant
    page: memoryview
    mfn: int = 0                   # a foreign mapping's frame (it holds a reference)
    writable: bool = False


_KIND_EVENT = Kind.EVENT


def _send_args(port: int, why: str) -> dict[str, object]:
    return {"port": port, "why": why} if why else {"port": port}


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
        if port > 0:
            self.host.dom0_handlers[port] = handler
            ev.evtchn_clear_pending(self.host, self.dom0, port)  # the bind's own kick
        return port

    def unbind(self, port: int) -> None:
        self.host.dom0_handlers.pop(port, None)
        if self.dom0.evtchn is not None and self.dom0.evtchn.lookup(port) is not None:
            ev.evtchn_close(self.host, self.dom0, port)

    def notify(self, port: int, why: str = "") -> int:
        """IOCTL_EVTCHN_NOTIFY (EVTCHNOP_send from Dom0)."""
        self.notifications += 1
        host = self.host
        if host.trace.enabled:
            host.trace.emit_deferred(host.now(), 0, 0, _KIND_EVENT, "evtchn_send", _send_args,
                                     (port, why))
        return ev.evtchn_send(host, self.dom0, port)

    # -- grants -----------------------------------------------------------------------
    def map_grant(self, domid: int, ref: int, *, readonly: bool) -> tuple[int, MappedGrant | None]:
        """gnttab_map_refs for one page: (GNTST status, the mapped page)."""
        flags = G.GNTMAP_host_map | (G.GNTMAP_readonly if readonly else 0)
        status, mapping = gnttab_map_grant_ref(self.host, self.dom0, domid, ref, flags)
        if status != GntSt.GNTST_okay or mapping is None:
            return status, None
        page = self.host.mem.view(mapping.maddr, PAGE_SIZE, readonly=readonly)
        return status, MappedGrant(mapping, page)

    def unmap_grant(self, mapped: MappedGrant) -> int:
        mapped.page.release()
        if mapped.mapping is None:
            self._unmap_foreign(mapped)
            return GntSt.GNTST_okay
        return gnttab_unmap_grant_ref(self.host, self.dom0, mapped.mapping.handle)

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
        if d is None or d.is_dying or mfn in d.shared_mfns or not d.owns_mfn(mfn):
            return None
        if not get_page(host, mfn, d):
            return None
        if writable and not get_page_type(host, mfn, d, PGT_writable_page):
            put_page(host, mfn)
            return None
        held = self.dom0.foreign_maps.setdefault(mfn, [0, 0])
        held[0] += 1
        held[1] += 1 if writable else 0
        host.trace.emit(host.now(), 0, 0, Kind.GRANT, "foreign_map",
                        {"dom": domid, "mfn": mfn})
        return MappedGrant(None, host.mem.view(mfn << 12, PAGE_SIZE, readonly=not writable),
                           mfn, writable)

    def _unmap_foreign(self, mapped: MappedGrant) -> None:
        held = self.dom0.foreign_maps.get(mapped.mfn)
        if held is None or held[0] <= 0:
            return
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
