"""Dom0's services, wired together: xenstored, xenconsoled, the backends and xenbr0.

The toolstack (``xenlab.tools.libs.light.libxl``) calls in here when it
creates or destroys a domain, as libxl does: it writes the domain's standard
xenstore nodes, introduces the domain to xenstored (which maps its store
ring through the reserved grant ``GNTTAB_RESERVED_XENSTORE`` and binds its
store event channel), connects xenconsoled, and writes each device's frontend
and backend directories so the backends probe them.

Real Xen: tools/libs/light/libxl_create.c, libxl_dom.c (libxl__build_post),
libxl_device.c, tools/xenstored/domain.c (do_introduce)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from xenlab.dom0.blkback import BlkbackDevice
from xenlab.dom0.bridge import Bridge
from xenlab.dom0.kernel import Dom0Kernel, MappedGrant
from xenlab.dom0.netback import NetbackVif
from xenlab.dom0.xenbus import BackendDevice
from xenlab.dom0.xenconsoled import Xenconsoled
from xenlab.public.grant_table import GNTTAB_RESERVED_XENSTORE
from xenlab.public.io.xenbus import XenbusState as S
from xenlab.tools.xenstore.xenstored import XenStore
from xenlab.tools.xenstore.xs_wire import REQ_CONS_OFFSET, RSP_PROD_OFFSET
from xenlab.xen.domain import Domain
from xenlab.xen.setup import XenHost
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.devicemodel.qemu import DeviceModel

__all__ = ["Dom0Services", "XenstoredService"]


def _ring_indices(page: memoryview) -> tuple[int, int]:
    """(req_cons, rsp_prod) of a ``xenstore_domain_interface`` (io/xs_wire.h)."""
    return (int.from_bytes(page[REQ_CONS_OFFSET:REQ_CONS_OFFSET + 4], "little"),
            int.from_bytes(page[RSP_PROD_OFFSET:RSP_PROD_OFFSET + 4], "little"))


class XenstoredService:
    """xenstored's side of each guest connection, and Dom0's own client (xs_* calls).

    Watch callbacks of Dom0's clients run after the request that fired them has
    been answered (a callback may write to the store itself).
    """

    def __init__(self, kernel: Dom0Kernel, store: XenStore) -> None:
        self.kernel = kernel
        self.store = store
        self.conns: dict[int, tuple[MappedGrant, int]] = {}
        self._deferred: list[tuple[Callable[[str, str], None], str, str]] = []
        self._flushing = False

    # -- guest connections ---------------------------------------------------------
    def introduce(self, d: Domain) -> bool:
        conn = self.kernel.connect_interface(d, GNTTAB_RESERVED_XENSTORE, d.store_mfn,
                                             d.store_port, self._on_event)
        if conn is None:
            return False
        self.conns[d.domid] = conn
        self.store.introduce_domain(d.domid)
        self.flush()
        return True

    def release(self, domid: int) -> None:
        conn = self.conns.pop(domid, None)
        self.store.release_domain(domid)
        if conn is not None:
            page, port = conn
            self.kernel.unbind(port)
            self.kernel.unmap_grant(page)
        self.flush()

    def _on_event(self, port: int) -> None:
        for domid, (_page, p) in list(self.conns.items()):
            if p == port:
                self._service(domid)
        self.flush()

    def _service(self, domid: int) -> None:
        conn = self.conns.get(domid)
        if conn is None:
            return
        page, port = conn
        req_cons, rsp_prod = _ring_indices(page.page)
        consumed, produced = self.store.process_ring(domid, page.page)
        if consumed or produced:
            # xenstored's reads and writes of the mapped ring (memory accesses, not
            # hypercalls): one Dom0 record; the notify after it is its EVTCHNOP_send
            req_cons2, rsp_prod2 = _ring_indices(page.page)
            host = self.kernel.host
            host.trace.emit(host.now(), 0, 0, Kind.XENSTORE, "xenstored_ring",
                            {"domid": domid, "read": (req_cons2 - req_cons) & 0xFFFFFFFF,
                             "written": (rsp_prod2 - rsp_prod) & 0xFFFFFFFF})
            self.kernel.notify(port, "xenstore ring")

    def flush(self) -> None:
        """Run Dom0's watch callbacks and push pending watch events into guest rings."""
        if self._flushing:
            return
        self._flushing = True
        try:
            for _ in range(10_000):
                if self._deferred:
                    cb, path, token = self._deferred.pop(0)
                    cb(path, token)
                    continue
                for domid in list(self.conns):
                    self._service(domid)
                if not self._deferred:
                    break
        finally:
            self._flushing = False

    # -- Dom0's client API ----------------------------------------------------------
    def read(self, path: str) -> str | None:
        return self.store.read(path)

    def write(self, path: str, value: str) -> None:
        self.store.write(path, value)
        self.flush()

    def mkdir(self, path: str) -> None:
        self.store.mkdir(path)
        self.flush()

    def rm(self, path: str) -> None:
        if self.store.exists(path):
            self.store.rm(path)
        self.flush()

    def set_perms(self, path: str, perms: list[str]) -> None:
        self.store.set_perms(path, perms)
        self.flush()

    def directory(self, path: str) -> list[str]:
        return self.store.directory(path)

    def watch(self, path: str, token: str, callback: Callable[[str, str], None]) -> None:
        def deferred(p: str, t: str) -> None:
            self._deferred.append((callback, p, t))

        self.store.watch(path, token, deferred)
        self.flush()

    def unwatch(self, path: str, token: str) -> None:
        self.store.unwatch(path, token)


class Dom0Services:
    """Everything Dom0 runs for its guests, on one host."""

    def __init__(self, host: XenHost) -> None:
        self.host = host
        self.kernel = Dom0Kernel(host)
        self.store = XenStore(trace=host.trace, clock=host.now)
        self.xenstored = XenstoredService(self.kernel, self.store)
        self.xenconsoled = Xenconsoled(self.kernel, host.console_append)
        self.bridges: dict[str, Bridge] = {}
        self.devices: dict[int, list[BackendDevice]] = {}
        self.device_models: dict[int, DeviceModel] = {}   # one per HVM guest (QEMU's role)
        self.xenstored.write("/local/domain/0/name", "Domain-0")
        self.xenstored.write("/local/domain/0/domid", "0")

    def bridge(self, name: str) -> Bridge:
        if name not in self.bridges:
            self.bridges[name] = Bridge(name, self.host.trace, self.host.now)
        return self.bridges[name]

    # -- domain life cycle ---------------------------------------------------------------
    def domain_created(self, d: Domain) -> None:
        """libxl__domain_make + libxl__build_post: the standard nodes, then introduce."""
        xs = self.xenstored
        base = f"/local/domain/{d.domid}"
        xs.mkdir(base)
        xs.set_perms(base, [f"n{d.domid}", "r0"])  # the guest owns its directory
        nodes = {
            "name": d.name,
            "domid": str(d.domid),
            "memory/static-max": str(d.max_pages * 4),
            "memory/target": str(d.tot_pages * 4),
            "store/ring-ref": str(d.store_mfn),
            "store/port": str(d.store_port),
            "console/ring-ref": str(d.console_mfn),
            "console/port": str(d.console_port),
            "console/type": "xenconsoled",
            "console/limit": "1048576",
            "control/shutdown": "",
            "control/platform-feature-multiprocessor-suspend": "1",
        }
        # libxl__build_post: "online" for each of the config's vcpus (the avail_vcpus
        # bitmap); a PV kernel brings the secondaries up itself (VCPUOP_initialise, _up),
        # and Linux's cpu_hotplug.c takes down any whose availability says "offline"
        for i in range(len(d.vcpus)):
            nodes[f"cpu/{i}/availability"] = "online"
        for key, value in nodes.items():
            xs.write(f"{base}/{key}", value)
        for sub in ("device", "device/vbd", "device/vif", "data", "drivers", "feature",
                    "attr", "error"):
            xs.mkdir(f"{base}/{sub}")
        self.xenstored.introduce(d)
        self.xenconsoled.connect(d)
        self.devices[d.domid] = []

    def _device_nodes(self, d: Domain, kind: str, devid: int, front: dict[str, str],
                      back: dict[str, str]) -> None:
        """libxl__device_generic_add: frontend owned by the guest, backend by Dom0."""
        xs = self.xenstored
        fe = f"/local/domain/{d.domid}/device/{kind}/{devid}"
        be = f"/local/domain/0/backend/{kind}/{d.domid}/{devid}"
        xs.mkdir(fe)
        xs.set_perms(fe, [f"n{d.domid}", "r0"])
        xs.mkdir(be)
        xs.set_perms(be, ["n0", f"r{d.domid}"])
        for key, value in {"backend": be, "backend-id": "0",
                           "state": str(int(S.XenbusStateInitialising)), **front}.items():
            xs.write(f"{fe}/{key}", value)
        for key, value in {"frontend": fe, "frontend-id": str(d.domid), "online": "1",
                           "state": str(int(S.XenbusStateInitialising)), **back}.items():
            xs.write(f"{be}/{key}", value)

    def add_disk(self, d: Domain, devid: int, vdev: str, image: str, readonly: bool) -> None:
        self._device_nodes(d, "vbd", devid,
                           {"virtual-device": str(devid), "device-type": "disk"},
                           {"params": image, "type": "file", "mode": "r" if readonly else "w",
                            "dev": vdev, "device-type": "disk", "removable": "0",
                            "bootable": "1"})
        dev = BlkbackDevice(self, d.domid, devid, image, readonly)
        self.devices[d.domid].append(dev)
        dev.probe()
        self.xenstored.flush()

    def add_vif(self, d: Domain, devid: int, mac: str, bridge: str) -> None:
        self._device_nodes(d, "vif", devid, {"handle": str(devid), "mac": mac},
                           {"handle": str(devid), "mac": mac, "bridge": bridge,
                            "script": "/etc/xen/scripts/vif-bridge", "type": "vif"})
        dev = NetbackVif(self, d.domid, devid, mac, self.bridge(bridge))
        self.devices[d.domid].append(dev)
        dev.probe()
        self.xenstored.flush()

    def domain_destroying(self, d: Domain) -> None:
        """libxl__destroy_domid: devices to Closing/Closed, consoles and store released,
        the domain's xenstore nodes removed."""
        for dev in self.devices.pop(d.domid, []):
            dev.toolstack_remove()
            self.xenstored.rm(dev.be_path)
        self.xenconsoled.disconnect(d.domid)
        self.xenstored.release(d.domid)
        self.xenstored.rm(f"/local/domain/{d.domid}")
        for kind in ("vbd", "vif"):
            path = f"/local/domain/0/backend/{kind}/{d.domid}"
            if self.store.exists(path):
                self.xenstored.rm(path)

    def image_path(self, path: str) -> str:
        return os.path.abspath(path)
