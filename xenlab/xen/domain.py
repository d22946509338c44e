"""Domains and their vCPUs: identity, memory, state and the life cycle.

Life cycle (as ``xl list`` shows it)::

    create ──► paused ──unpause──► running ⇄ blocked
                 ▲  └──────pause──────┘ │
                 │                      ├── shutdown(reason) ──► s (on_poweroff/on_reboot)
                 │                      └── crash (fault)    ──► c (on_crash)
                 └────────────── destroy ──► d (dying) ──► gone

Real Xen: xen/common/domain.c (domain_create, domain_shutdown, domain_crash,
domain_kill), xen/include/xen/sched.h (struct domain, struct vcpu)
"""

from __future__ import annotations

import enum
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xenlab.public.sched import ShutdownReason
from xenlab.public.vcpu import Runstate
from xenlab.xen.page_alloc import PAGE_SHIFT, Extent

if TYPE_CHECKING:
    from xenlab.cpu.x86 import X86Vcpu
    from xenlab.xen.event_channel import EvtchnTable
    from xenlab.xen.grant_table import GrantTable

__all__ = ["Domain", "DomainType", "Vcpu"]

INVALID_MFN = (1 << 64) - 1
P2M_DENSE_SLACK = 1 << 12   # grow the P2M array across holes up to this many pfns


class DomainType(str, enum.Enum):
    PV = "pv"
    PVH = "pvh"
    HVM = "hvm"


@dataclass
class Vcpu:
    """``struct vcpu``: scheduling state, timer and the CPU that runs it."""

    vcpu_id: int
    domain: Domain
    cpu: X86Vcpu | None = None
    runstate: Runstate = Runstate.RUNSTATE_offline
    state_entry_time: int = 0
    runstate_time: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    processor: int = 0                 # the pCPU it last ran on
    online: bool = False
    blocked: bool = False              # SCHEDOP_block / poll, waiting for an event
    poll_ports: tuple[int, ...] = ()
    poll_deadline: int | None = None
    timer_deadline: int | None = None  # set_timer_op, ns of system time
    periodic_deadline: int | None = None  # VCPUOP_set_periodic_timer's next tick
    credit: int = 0
    priority: int = -1                 # CSCHED_PRI_TS_UNDER
    pending_upcall: bool = False
    cpu_time: int = 0                  # ns spent running (guest code and its exits)
    exit_time: int = 0                 # of which charged for exits and hypercalls
    ready_at: int = 0                  # virtual time from which it may run (causality)
    time_info: Any = None              # ctypes view of its vcpu_time_info in shared_info
    stall_rip: int | None = None       # where the CPU last stopped without a reason
    code_sync: bool = False            # a sibling sent it an IPI: drop its translated code
    callbacks: dict[str, int] = field(default_factory=dict)  # event/failsafe/syscall entry
    pv: Any = None                     # PV: trap table and CPU state (pv_traps.PvVcpu)
    pending_regs: dict[str, int] | None = None  # loaded on return to the guest (iret)
    pending_maps: list[tuple[int, int | None]] = field(default_factory=list)  # (gpa, ptr|None)
    entry_frame: bytes | None = None   # PV: the iret frame of its first entry, until it runs
    # PV: the L4 tables its kernel and user mode run on (v->arch.guest_table and
    # guest_table_user, MMUEXT_NEW_BASEPTR / NEW_USER_BASEPTR); each holds a reference
    guest_table: int = 0
    guest_table_user: int = 0
    user_mode: bool = False            # PV: running the guest's user space (TF_kernel_mode off)
    ldt: tuple[int, int] = (0, 0)      # PV: MMUEXT_SET_LDT's linear base and entries
    # VCPUOP_register_vcpu_info: where its vcpu_info lives instead of shared_info (machine
    # address, Xen's reference to the frame) and that vcpu_info as 64-bit words
    vcpu_info_maddr: int | None = None
    vcpu_info_words: memoryview | None = field(default=None, repr=False)

    @property
    def runnable(self) -> bool:
        d = self.domain
        return (self.online and not self.blocked and not d.paused and not d.is_shut_down
                and not d.is_dying)

    def set_runstate(self, state: Runstate, now: int) -> None:
        self.runstate_time[self.runstate] += max(0, now - self.state_entry_time)
        self.runstate = state
        self.state_entry_time = now


@dataclass
class Domain:
    """``struct domain``."""

    domid: int
    name: str
    dtype: DomainType
    max_pages: int
    privileged: bool = False
    weight: int = 256
    cap: int = 0
    on_poweroff: str = "destroy"
    on_reboot: str = "restart"
    on_crash: str = "destroy"
    extents: list[Extent] = field(default_factory=list)
    p2m: array = field(default_factory=lambda: array("Q"))
    # P2M entries far above the populated RAM (a page hvmloader puts just below 4 GiB):
    # kept here instead of growing ``p2m`` by megabytes of INVALID_MFN
    p2m_high: dict[int, int] = field(default_factory=dict)
    # bumped by every P2M change: what caches of a guest frame's mapping check
    p2m_gen: int = 0
    # the host's machine-to-phys table, kept in step with the P2M (set_gpfn_from_mfn)
    m2p: memoryview | None = field(default=None, repr=False)
    poll_mask: int = 0                 # vCPUs blocked in SCHEDOP_poll, one bit each
    vcpus: list[Vcpu] = field(default_factory=list)
    pause_count: int = 1               # created paused; the toolstack unpauses
    is_shutting_down: bool = False
    is_shut_down: bool = False
    shutdown_code: int = -1
    is_crashed: bool = False
    crash_reason: str = ""
    is_dying: bool = False
    shared_info_mfn: int | None = None
    # shared_info as 64-bit words, made on first use (the frame is the domain's for life)
    shared_info_words: memoryview | None = field(default=None, repr=False)
    start_info_mfn: int | None = None
    # XEN_DOMCTL_settimeoffset (xl.cfg rtc_timeoffset): seconds added to Xen's wallclock
    # for this domain's clock, its RTC (d->time_offset.seconds)
    time_offset_seconds: int = 0
    console: bytearray = field(default_factory=bytearray)
    config: Any = None                 # the toolstack's DomainConfig
    evtchn: EvtchnTable | None = None
    grant_table: GrantTable | None = None
    hypercall_count: int = 0
    shared_mfns: set[int] = field(default_factory=set)  # Xen pages shared with this guest
    pt_mfns: set[int] = field(default_factory=set)      # the builder's page tables (PV)
    foreign_mfns: dict[int, int] = field(default_factory=dict)  # grant-mapped frames -> count
    # Dom0's privileged foreign mappings of other domains' frames (xenforeignmemory_map):
    # mfn -> [mappings, of which writable]; each holds a reference to the frame
    foreign_maps: dict[int, list[int]] = field(default_factory=dict)
    cmdline: str = ""
    hvm: Any = None                    # HvmDomain for HVM guests
    store_mfn: int = 0
    store_port: int = 0
    console_mfn: int = 0
    console_port: int = 0

    @property
    def tot_pages(self) -> int:
        return sum(e.count for e in self.extents)

    @property
    def paused(self) -> bool:
        return self.pause_count > 0

    @property
    def is_pv(self) -> bool:
        return self.dtype is DomainType.PV

    def owns_mfn(self, mfn: int) -> bool:
        return any(e.mfn <= mfn < e.end for e in self.extents) or mfn in self.shared_mfns

    def can_access_mfn(self, mfn: int) -> bool:
        """Own frames, Xen pages shared with it, and frames mapped through a live grant."""
        return self.owns_mfn(mfn) or mfn in self.foreign_mfns

    def pfn_to_mfn(self, pfn: int) -> int:
        p2m = self.p2m
        if 0 <= pfn < len(p2m):
            return p2m[pfn]
        return self.p2m_high.get(pfn, INVALID_MFN)

    def set_p2m(self, pfn: int, mfn: int, count: int = 1) -> None:
        """pfns ``pfn``..``pfn+count-1`` map to ``mfn``.. (or all to INVALID_MFN)."""
        self.p2m_gen += 1
        m2p = self.m2p
        if m2p is not None:
            if pfn < len(self.p2m) or self.p2m_high:
                for i in range(count):           # the frames leaving these pfns
                    old = self.pfn_to_mfn(pfn + i)
                    if old < len(m2p) and m2p[old] == pfn + i:
                        m2p[old] = INVALID_MFN
            if mfn != INVALID_MFN and mfn + count <= len(m2p):
                m2p[mfn : mfn + count] = array("Q", range(pfn, pfn + count))

        def frame(i: int) -> int:
            return INVALID_MFN if mfn == INVALID_MFN else mfn + i
        n = len(self.p2m)
        if pfn + count > n and pfn <= n + P2M_DENSE_SLACK:  # grow the array to cover it
            self.p2m.extend(array("Q", [INVALID_MFN]) * (pfn + count - n))
            for p in [p for p in self.p2m_high if p < pfn + count]:
                self.p2m[p] = self.p2m_high.pop(p)
        if pfn + count <= len(self.p2m):
            if mfn == INVALID_MFN:
                self.p2m[pfn:pfn + count] = array("Q", [INVALID_MFN]) * count
            else:
                self.p2m[pfn:pfn + count] = array("Q", range(mfn, mfn + count))
            return
        for i in range(count):
            if pfn + i < len(self.p2m):
                self.p2m[pfn + i] = frame(i)
            elif mfn == INVALID_MFN:
                self.p2m_high.pop(pfn + i, None)
            else:
                self.p2m_high[pfn + i] = frame(i)

    def mfn_to_pfn(self, mfn: int) -> int | None:
        """The pfn ``mfn`` is mapped at (an M2P lookup), or None."""
        m2p = self.m2p
        if m2p is not None and 0 <= mfn < len(m2p):
            pfn = m2p[mfn]
            if pfn != INVALID_MFN and self.pfn_to_mfn(pfn) == mfn:
                return pfn
        try:
            return self.p2m.index(mfn)
        except ValueError:
            return next((p for p, m in self.p2m_high.items() if m == mfn), None)

    def max_gpfn(self) -> int:
        """The highest pfn with a frame (XENMEM_maximum_gpfn), 0 for none."""
        high = max((p for p, m in self.p2m_high.items() if m != INVALID_MFN), default=-1)
        if high >= 0:
            return high
        return max((i for i, m in enumerate(self.p2m) if m != INVALID_MFN), default=0)

    def maddr(self, pfn: int) -> int:
        return self.pfn_to_mfn(pfn) << PAGE_SHIFT

    @property
    def cpu_time(self) -> int:
        return sum(v.cpu_time for v in self.vcpus)

    @property
    def exit_time(self) -> int:
        """Virtual ns the domain's vCPUs spent in Xen and the device model (exits)."""
        return sum(v.exit_time for v in self.vcpus)

    def state_flags(self, running_vcpus: set[tuple[int, int]] | None = None) -> str:
        """The six ``xl list`` state letters: r b p s c d."""
        running = any((self.domid, v.vcpu_id) in (running_vcpus or set()) for v in self.vcpus)
        blocked = (not running and not self.is_shut_down and not self.paused
                   and bool(self.vcpus) and all(v.blocked or not v.online for v in self.vcpus))
        flags = [
            "r" if running else "-",
            "b" if blocked else "-",
            "p" if self.paused and not self.is_shut_down and not self.is_dying else "-",
            "s" if self.is_shut_down and not self.is_crashed else "-",
            "c" if self.is_crashed else "-",
            "d" if self.is_dying else "-",
        ]
        return "".join(flags)

    @property
    def shutdown_reason_name(self) -> str:
        try:
            return ShutdownReason(self.shutdown_code).name
        except ValueError:
            return f"reason {self.shutdown_code}"
