"""Shared I/O rings: one page, a 64-byte header, then a power-of-two array of slots.

The header is ``{req_prod, req_event, rsp_prod, rsp_event, pvt[4], __pad[44]}``.
The frontend produces requests (``req_prod``) and consumes responses; the
backend does the opposite. ``req_event`` / ``rsp_event`` say at which index
the other side wants the next notification: a producer notifies only when the
new entries cross that index, which is how rings *suppress* needless event
channel notifications (``RING_PUSH_*_AND_CHECK_NOTIFY``,
``RING_FINAL_CHECK_FOR_*``).

Real Xen: xen/include/public/io/ring.h
"""

from __future__ import annotations

import struct

__all__ = ["RING_HEADER_SIZE", "BackRing", "ring_size"]

RING_HEADER_SIZE = 64
_U32 = 0xFFFFFFFF


def ring_size(entry_size: int, page_size: int = 4096) -> int:
    """__RING_SIZE: the largest power of two of entries that fits after the header."""
    n = (page_size - RING_HEADER_SIZE) // entry_size
    size = 1
    while size * 2 <= n:
        size *= 2
    return size


class BackRing:
    """The backend's view of a shared ring (BACK_RING_INIT / RING_* macros for the back end).

    ``page`` is a writable memoryview of the shared page (mapped through a grant).
    """

    def __init__(self, page: memoryview, req_size: int, rsp_size: int) -> None:
        self.page = page
        self.req_size = req_size
        self.rsp_size = rsp_size
        self.entry_size = max(req_size, rsp_size)
        self.nr_ents = ring_size(self.entry_size)
        self.req_cons = self.rsp_prod  # BACK_RING_ATTACH: requests after the last response
        self.rsp_prod_pvt = self.rsp_prod

    # header fields
    def _get(self, off: int) -> int:
        return int(struct.unpack_from("<I", self.page, off)[0])

    def _set(self, off: int, value: int) -> None:
        struct.pack_into("<I", self.page, off, value & _U32)

    @property
    def req_prod(self) -> int:
        return self._get(0)

    @property
    def req_event(self) -> int:
        return self._get(4)

    @property
    def rsp_prod(self) -> int:
        return self._get(8)

    @property
    def rsp_event(self) -> int:
        return self._get(12)

    def _slot(self, idx: int) -> int:
        return RING_HEADER_SIZE + (idx & (self.nr_ents - 1)) * self.entry_size

    def unconsumed_requests(self) -> int:
        """RING_HAS_UNCONSUMED_REQUESTS, bounded by the ring size (a hostile frontend may lie)."""
        req = (self.req_prod - self.req_cons) & _U32
        rsp = self.nr_ents - ((self.req_cons - self.rsp_prod_pvt) & _U32)
        return min(req, rsp)

    def overflowed(self) -> bool:
        """RING_REQUEST_PROD_OVERFLOW: the frontend claims more requests than slots."""
        return ((self.req_prod - self.rsp_prod_pvt) & _U32) > self.nr_ents

    def get_request(self) -> bytes:
        """RING_GET_REQUEST at req_cons, then advance req_cons (copy: the frontend may
        change the slot while we look, so read it once)."""
        off = self._slot(self.req_cons)
        self.req_cons = (self.req_cons + 1) & _U32
        return bytes(self.page[off : off + self.req_size])

    def put_response(self, data: bytes) -> None:
        off = self._slot(self.rsp_prod_pvt)
        self.page[off : off + len(data)] = data
        self.rsp_prod_pvt = (self.rsp_prod_pvt + 1) & _U32

    def push_responses_and_check_notify(self) -> bool:
        """RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publish; notify only if the frontend's
        rsp_event falls inside the newly published range."""
        old = self.rsp_prod
        new = self.rsp_prod_pvt
        self._set(8, new)
        return ((new - self.rsp_event) & _U32) < ((new - old) & _U32)

    def final_check_for_requests(self) -> bool:
        """RING_FINAL_CHECK_FOR_REQUESTS: ask to be notified at the next request, then look
        once more (closes the race with a frontend that just queued one)."""
        if self.unconsumed_requests():
            return True
        self._set(4, self.req_cons + 1)  # req_event
        return bool(self.unconsumed_requests())
