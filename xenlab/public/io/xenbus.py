"""XenbusState: the handshake states a frontend and its backend step through in xenstore.

Real Xen: xen/include/public/io/xenbus.h
"""

from __future__ import annotations

import enum

__all__ = ["XenbusState"]


class XenbusState(enum.IntEnum):
    XenbusStateUnknown = 0
    XenbusStateInitialising = 1
    XenbusStateInitWait = 2
    XenbusStateInitialised = 3
    XenbusStateConnected = 4
    XenbusStateClosing = 5
    XenbusStateClosed = 6
    XenbusStateReconfiguring = 7
    XenbusStateReconfigured = 8
