"""The backend half of xenbus: a device's xenstore directory, its state, its watches.

A backend device lives at ``/local/domain/0/backend/<kind>/<domid>/<devid>``
and its frontend at ``/local/domain/<domid>/device/<kind>/<devid>``. The
backend watches the frontend's ``state`` node and reacts to each
``XenbusState`` the frontend enters, as Linux's xenbus backend drivers do.

Real Xen: Linux drivers/xen/xenbus/xenbus_probe_backend.c,
drivers/xen/xenbus/xenbus_client.c (xenbus_switch_state, xenbus_dev_fatal)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenlab.public.io.xenbus import XenbusState as S
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.dom0.services import Dom0Services

__all__ = ["BackendDevice"]


class BackendDevice:
    kind = "dev"

    def __init__(self, services: Dom0Services, domid: int, devid: int) -> None:
        self.services = services
        self.kernel = services.kernel
        self.store = services.xenstored
        self.domid = domid
        self.devid = devid
        self.be_path = f"/local/domain/0/backend/{self.kind}/{domid}/{devid}"
        self.fe_path = f"/local/domain/{domid}/device/{self.kind}/{devid}"
        self.state = S.XenbusStateInitialising
        self.port: int | None = None
        self._token = f"be-{self.kind}-{domid}-{devid}"
        self._watching = False
        self.closed = False

    # -- xenstore helpers -------------------------------------------------------------
    def xs_write(self, key: str, value: str) -> None:
        self.store.write(f"{self.be_path}/{key}", value)

    def fe_read(self, key: str) -> str | None:
        return self.store.read(f"{self.fe_path}/{key}")

    def fe_read_int(self, key: str) -> int | None:
        text = self.fe_read(key)
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None

    def set_state(self, state: S) -> None:
        """xenbus_switch_state"""
        if state == self.state and state != S.XenbusStateInitialising:
            return
        self.state = state
        self.xs_write("state", str(int(state)))

    def fail(self, message: str) -> None:
        """xenbus_dev_fatal: record the error and close the device."""
        self.xs_write("error", message)
        host = self.kernel.host
        host.trace.emit(host.now(), self.domid, 0, Kind.IO, f"{self.kind}.error",
                        {"dev": f"{self.kind}-{self.domid}-{self.devid}", "error": message})
        self.disconnect()
        self.set_state(S.XenbusStateClosing)

    # -- state machine ----------------------------------------------------------------
    def watch_frontend(self) -> None:
        self.store.watch(f"{self.fe_path}/state", self._token, self._frontend_changed)
        self._watching = True

    def _frontend_changed(self, path: str, token: str) -> None:
        """frontend_changed: follow the frontend through the handshake."""
        if self.closed:
            return
        fe = self.fe_read_int("state")
        if fe in (S.XenbusStateInitialised, S.XenbusStateConnected):
            if self.state == S.XenbusStateInitWait and self.connect():
                self.set_state(S.XenbusStateConnected)
        elif fe == S.XenbusStateClosing:
            self.disconnect()
            self.set_state(S.XenbusStateClosing)
        elif fe in (S.XenbusStateClosed, S.XenbusStateUnknown, None):
            if fe is None and self.state in (S.XenbusStateInitWait,
                                             S.XenbusStateInitialising):
                return  # no frontend state yet: nothing to tear down
            self.disconnect()
            self.set_state(S.XenbusStateClosed)

    def toolstack_remove(self) -> None:
        """What ``xl destroy`` (libxl__device_destroy) does: Closing, disconnect, Closed."""
        if self.closed:
            return
        self.set_state(S.XenbusStateClosing)
        self.disconnect()
        self.set_state(S.XenbusStateClosed)
        self.close()

    def close(self) -> None:
        if self._watching:
            self.store.unwatch(f"{self.fe_path}/state", self._token)
            self._watching = False
        self.closed = True

    # -- what each backend provides ------------------------------------------------------
    def probe(self) -> None:
        raise NotImplementedError

    def connect(self) -> bool:
        raise NotImplementedError

    def disconnect(self) -> None:
        raise NotImplementedError
