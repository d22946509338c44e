"""Rangesets: sets of unsigned integers kept as sorted, disjoint, inclusive ranges.

Xen keeps every "which numbers may this domain use" answer as a rangeset: the I/O
ports and memory a domain may map (``iomem_caps``, ``ioport_caps``), and the ports,
memory and PCI functions an ioreq server has claimed (``s->range[type]``, see
``xenlab/xen/hvm/io.py``). Adding a range merges it with the ranges it overlaps or
touches, so a set never holds two adjacent ranges: ``contains_range`` (is all of
``start..end`` inside *one* range?) is then the same question as "is every number of
it in the set?". A set may be limited to a number of ranges (``rangeset_limit``): an
addition that would need one more range fails with ``-ENOMEM``, as Xen's
``alloc_range`` does, and leaves the set as it was.

Real Xen: xen/common/rangeset.c, xen/include/xen/rangeset.h
"""

from __future__ import annotations

from bisect import bisect_right

from xenlab.public.errno import Errno

__all__ = ["RangeSet"]


class RangeSet:
    """``struct rangeset``: its ranges as two sorted lists, starts and ends (inclusive)."""

    def __init__(self, name: str, limit: int | None = None) -> None:
        self.name = name
        self.limit = limit          # at most this many ranges (rangeset_limit); None: any
        self._starts: list[int] = []
        self._ends: list[int] = []

    def ranges(self) -> list[tuple[int, int]]:
        """The ranges, lowest first (what ``rangeset_printk`` prints)."""
        return list(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        return len(self._starts)

    def __repr__(self) -> str:
        body = ", ".join(f"{s:#x}" if s == e else f"{s:#x}-{e:#x}" for s, e in self.ranges())
        return f"<rangeset {self.name}: {{ {body} }}>"

    def _first_at_or_after(self, s: int) -> int:
        """Index of the first range that ends at or after ``s`` - 1 (touching counts)."""
        i = bisect_right(self._starts, s) - 1
        if i >= 0 and self._ends[i] >= s - 1:
            return i
        return i + 1

    def add_range(self, s: int, e: int) -> int:
        """rangeset_add_range: add ``s..e``, merged with what it overlaps or touches.
        0, -EINVAL if ``s`` > ``e``, -ENOMEM if the set would need more ranges than its
        limit (nothing changes then)."""
        if s > e:
            return -Errno.EINVAL
        lo = self._first_at_or_after(s)
        hi = lo
        while hi < len(self._starts) and self._starts[hi] <= e + 1:
            hi += 1
        if lo == hi and self.limit is not None and len(self._starts) >= self.limit:
            return -Errno.ENOMEM           # a new range, and no room for one
        if lo < hi:
            s, e = min(s, self._starts[lo]), max(e, self._ends[hi - 1])
        self._starts[lo:hi] = [s]
        self._ends[lo:hi] = [e]
        return 0

    def remove_range(self, s: int, e: int) -> int:
        """rangeset_remove_range: take ``s..e`` out (a range cut in two needs one more:
        -ENOMEM at the limit). 0, or -EINVAL if ``s`` > ``e``."""
        if s > e:
            return -Errno.EINVAL
        starts, ends = self._starts, self._ends
        lo = bisect_right(ends, s - 1)              # first range ending at or after s
        hi = bisect_right(starts, e)                # ranges from lo to hi-1 meet s..e
        if lo >= hi:
            return 0
        kept_s: list[int] = []
        kept_e: list[int] = []
        if starts[lo] < s:
            kept_s.append(starts[lo])
            kept_e.append(s - 1)
        if ends[hi - 1] > e:
            kept_s.append(e + 1)
            kept_e.append(ends[hi - 1])
        if (self.limit is not None and len(kept_s) > hi - lo
                and len(starts) >= self.limit):
            return -Errno.ENOMEM               # one range cut in two, and no room
        starts[lo:hi] = kept_s
        ends[lo:hi] = kept_e
        return 0

    def contains_range(self, s: int, e: int) -> bool:
        """rangeset_contains_range: all of ``s..e`` lies inside one range."""
        i = bisect_right(self._starts, s) - 1
        return i >= 0 and self._ends[i] >= e

    def contains_singleton(self, x: int) -> bool:
        """rangeset_contains_singleton."""
        i = bisect_right(self._starts, x) - 1
        return i >= 0 and self._ends[i] >= x

    def overlaps_range(self, s: int, e: int) -> bool:
        """rangeset_overlaps_range: some number of ``s..e`` is in the set."""
        i = bisect_right(self._starts, e) - 1
        return i >= 0 and self._ends[i] >= s
