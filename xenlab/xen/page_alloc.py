"""Machine memory: every 4 KiB frame is free or owned by exactly one domain.

The host's RAM is one anonymous ``mmap`` (pages are only touched when a guest
uses them). Frames are handed out as contiguous extents, first fit, lowest
address first, so allocation is deterministic. The frame table (Xen's
``frame_table`` of ``struct page_info``) has three words per machine frame:

- ``owner``: the domain the frame belongs to (``FREE``, ``DOMID_XEN``, a domid);
- ``count_info``: the general reference count, with ``PGC_allocated`` set while
  the owner holds its allocation reference. A frame goes back to the heap only
  when its count drops to zero, so a frame that anything still maps (a page
  table entry, a grant, Dom0's foreign mapping, Xen's own view) is never handed
  to the next domain;
- ``type_info``: what the frame is used as (``PGT_l1_page_table`` ..
  ``PGT_l4_page_table``, ``PGT_seg_desc_page``, ``PGT_writable_page``) and how
  many references hold that use. The types are mutually exclusive: a frame is a
  page table or writable, never both at once. The functions that take and drop
  these counts are in ``xenlab/xen/mm.py`` (``get_page``, ``get_page_type``).

Real Xen: xen/common/page_alloc.c (alloc_domheap_pages, free_domheap_pages)
"""

from __future__ import annotations

import ctypes
import mmap
from array import array
from dataclasses import dataclass

from xenlab.public.xen import DOMID_XEN

__all__ = [
    "FREE",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "Extent",
    "HostMemory",
    "PGC_allocated",
    "PGC_count_mask",
    "PGT_count_mask",
    "PGT_l1_page_table",
    "PGT_l2_page_table",
    "PGT_l3_page_table",
    "PGT_l4_page_table",
    "PGT_none",
    "PGT_pinned",
    "PGT_seg_desc_page",
    "PGT_type_mask",
    "PGT_writable_page",
]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
FREE = 0xFFFF  # owner of a free frame (DOMID_INVALID would do too; distinct for clarity)

# struct page_info's count_info and type_info, as Xen lays them out in a 64-bit word
# (xen/arch/x86/include/asm/mm.h: PG_shift(idx) = 64 - idx)
PGC_allocated = 1 << 63                 # the owner's allocation reference is held
PGC_count_mask = (1 << 54) - 1
PGT_none = 0 << 61
PGT_l1_page_table = 1 << 61
PGT_l2_page_table = 2 << 61
PGT_l3_page_table = 3 << 61
PGT_l4_page_table = 4 << 61
PGT_seg_desc_page = 5 << 61
PGT_writable_page = 7 << 61
PGT_type_mask = 7 << 61
PGT_pinned = 1 << 59                    # the owner pinned the type (MMUEXT_PIN_L*_TABLE)
PGT_count_mask = (1 << 55) - 1
INVALID_M2P_ENTRY = (1 << 64) - 1
_ALLOCATED = PGC_allocated | 1          # a frame just allocated: one reference, its owner's


@dataclass(frozen=True)
class Extent:
    mfn: int
    count: int

    @property
    def end(self) -> int:
        return self.mfn + self.count


class HostMemory:
    """The machine's RAM and its frame table."""

    def __init__(self, total_mib: int) -> None:
        self.total_pages = total_mib * 256
        self.ram = mmap.mmap(-1, self.total_pages * PAGE_SIZE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.ram))
        self.owner = array("H", [FREE]) * self.total_pages
        self.count_info = array("Q", [0]) * self.total_pages
        self.type_info = array("Q", [0]) * self.total_pages
        #: frames whose type is a page table (L1..L4) with a non-zero type count
        self.pt_frames: set[int] = set()
        #: the machine-to-phys table, once Xen has set it up (freed frames leave it)
        self.m2p: memoryview | None = None
        self._free: list[Extent] = [Extent(0, self.total_pages)]

    # -- allocation -----------------------------------------------------------
    @property
    def free_pages(self) -> int:
        return sum(e.count for e in self._free)

    def alloc(self, domid: int, nr_pages: int, *, contiguous: bool = False) -> list[Extent]:
        """Take ``nr_pages`` frames for ``domid``; raise MemoryError (ENOMEM) if short."""
        if nr_pages <= 0:
            return []
        if nr_pages > self.free_pages:
            raise MemoryError(f"need {nr_pages} pages, {self.free_pages} free")
        taken: list[Extent] = []
        if contiguous:
            for i, ext in enumerate(self._free):
                if ext.count >= nr_pages:
                    taken.append(Extent(ext.mfn, nr_pages))
                    rest = Extent(ext.mfn + nr_pages, ext.count - nr_pages)
                    self._free[i : i + 1] = [rest] if rest.count else []
                    break
            else:
                raise MemoryError(f"no {nr_pages} contiguous free pages")
        else:
            need = nr_pages
            while need:
                ext = self._free[0]
                n = min(need, ext.count)
                taken.append(Extent(ext.mfn, n))
                if n == ext.count:
                    self._free.pop(0)
                else:
                    self._free[0] = Extent(ext.mfn + n, ext.count - n)
                need -= n
        for ext in taken:
            self.owner[ext.mfn : ext.end] = array("H", [domid]) * ext.count
            self.count_info[ext.mfn : ext.end] = array("Q", [_ALLOCATED]) * ext.count
        return taken

    def alloc_frame(self, domid: int, mfn: int) -> bool:
        """Take the free frame ``mfn`` itself for ``domid`` (False if it is not free): a
        domain's memory put back as a checkpoint had it (the boot stepper's Back)."""
        for i, ext in enumerate(self._free):
            if ext.mfn <= mfn < ext.end:
                rest = [Extent(ext.mfn, mfn - ext.mfn), Extent(mfn + 1, ext.end - mfn - 1)]
                self._free[i : i + 1] = [e for e in rest if e.count]
                self.owner[mfn] = domid
                self.count_info[mfn] = _ALLOCATED
                return True
        return False

    def free(self, extents: list[Extent]) -> None:
        """Give frames back, scrubbed as Xen scrubs freed domain pages.

        Free frames always read as zero: fresh anonymous memory is zero, and a
        freed extent is scrubbed before it can be handed out again.
        """
        for ext in extents:
            self.owner[ext.mfn : ext.end] = array("H", [FREE]) * ext.count
            self.count_info[ext.mfn : ext.end] = array("Q", [0]) * ext.count
            self.type_info[ext.mfn : ext.end] = array("Q", [0]) * ext.count
            self.pt_frames.difference_update(range(ext.mfn, ext.end))
            if self.m2p is not None:
                self.m2p[ext.mfn : ext.end] = array("Q", [INVALID_M2P_ENTRY]) * ext.count
            self._scrub(ext)
            self._free.append(ext)
        self._free.sort(key=lambda e: e.mfn)
        merged: list[Extent] = []
        for ext in self._free:
            if merged and merged[-1].end == ext.mfn:
                merged[-1] = Extent(merged[-1].mfn, merged[-1].count + ext.count)
            else:
                merged.append(ext)
        self._free = merged

    def _scrub(self, ext: Extent) -> None:
        """Zero freed frames. The host RAM is a *shared* anonymous mapping (what Python's
        mmap gives), for which MADV_DONTNEED does not discard the pages; MADV_REMOVE
        punches them out of the backing store (they read as zero and free host memory).
        The first scrub checks that it worked and falls back to writing zeros."""
        start, length = ext.mfn * PAGE_SIZE, ext.count * PAGE_SIZE
        if self._madv_remove_works is not False:
            try:
                self.ram.madvise(mmap.MADV_REMOVE, start, length)
            except (AttributeError, OSError, ValueError):
                self._madv_remove_works = False
            else:
                if self._madv_remove_works is None:
                    self._madv_remove_works = not any(self.ram[start : start + length])
                if self._madv_remove_works:
                    return
        ctypes.memset(self.base + start, 0, length)

    _madv_remove_works: bool | None = None

    # -- access -----------------------------------------------------------------
    def read(self, maddr: int, size: int) -> bytes:
        return self.ram[maddr : maddr + size]

    def write(self, maddr: int, data: bytes) -> None:
        self.ram[maddr : maddr + len(data)] = data

    def view(self, maddr: int, size: int, *, readonly: bool = False) -> memoryview:
        """A window onto machine memory (how Dom0's Python backends see a mapped grant)."""
        mv = memoryview(self.ram)[maddr : maddr + size]
        return mv.toreadonly() if readonly else mv

    def read_u64(self, maddr: int) -> int:
        return int.from_bytes(self.ram[maddr : maddr + 8], "little")

    def write_u64(self, maddr: int, value: int) -> None:
        self.ram[maddr : maddr + 8] = value.to_bytes(8, "little")

    def host_ptr(self, maddr: int) -> int:
        return self.base + maddr

    def pages_owned_by(self, domid: int) -> int:
        return self.owner.count(domid)

    def check(self) -> None:
        """Invariant: free list and frame table agree; nothing is owned twice."""
        free_from_table = self.owner.count(FREE)
        assert free_from_table == self.free_pages, (free_from_table, self.free_pages)
        for ext in self._free:
            assert all(o == FREE for o in self.owner[ext.mfn : ext.end])
            assert not any(self.count_info[ext.mfn : ext.end]), "a free frame has references"
            assert not any(self.type_info[ext.mfn : ext.end]), "a free frame has a type"
        # an allocated frame holds at least one reference (its owner's, or a mapper's)
        assert self.count_info.count(0) == free_from_table, "an allocated frame has no reference"


XEN_OWNER = DOMID_XEN
