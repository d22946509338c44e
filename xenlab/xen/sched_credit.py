"""The credit scheduler's policy: weights, credits, priorities, time slices.

Every 30 ms of virtual time (``CSCHED_TICKS_PER_ACCT`` ticks of 10 ms) the
scheduler hands out credits to the active domains in proportion to their
``weight`` (default 256); a running vCPU burns ``CSCHED_CREDITS_PER_MSEC``
credits per millisecond. A vCPU with credit left is ``UNDER``, one that has
spent its share is ``OVER``; a vCPU that wakes from blocking while UNDER is
``BOOST``ed so I/O-bound guests answer quickly. The run queue is ordered by
priority, first come first served within one priority; a vCPU runs for at
most one time slice (30 ms) before the next decision.

xenlab simplifies: one global run queue shared by all pCPUs (real credit has
one per pCPU plus load balancing), no ``cap`` enforcement beyond recording
it, and decisions happen at slice ends and hypercalls (see schedule.py).

Real Xen: xen/common/sched/credit.c (csched_acct, csched_schedule,
csched_vcpu_wake, __runq_insert)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xenlab.xen.domain import Vcpu

__all__ = ["CSCHED_PRI_TS_BOOST", "CSCHED_PRI_TS_OVER", "CSCHED_PRI_TS_UNDER", "CreditScheduler"]

CSCHED_PRI_TS_BOOST = 0
CSCHED_PRI_TS_UNDER = -1
CSCHED_PRI_TS_OVER = -2
CSCHED_CREDITS_PER_MSEC = 10
CSCHED_TICK_NS = 10_000_000
CSCHED_TICKS_PER_ACCT = 3
CSCHED_ACCT_NS = CSCHED_TICK_NS * CSCHED_TICKS_PER_ACCT
CSCHED_CREDITS_PER_TICK = CSCHED_CREDITS_PER_MSEC * CSCHED_TICK_NS // 1_000_000
CSCHED_CREDITS_PER_ACCT = CSCHED_CREDITS_PER_TICK * CSCHED_TICKS_PER_ACCT
TSLICE_NS = 30_000_000  # sched_credit_tslice_ms = 30
PRI_NAMES = {CSCHED_PRI_TS_BOOST: "BOOST", CSCHED_PRI_TS_UNDER: "UNDER",
             CSCHED_PRI_TS_OVER: "OVER"}


class CreditScheduler:
    """The policy half: who runs next and for how long."""

    name = "SMP Credit Scheduler (credit)"
    opt_name = "credit"

    def __init__(self, nr_pcpus: int, tslice_ns: int = TSLICE_NS) -> None:
        self.nr_pcpus = nr_pcpus
        self.tslice_ns = tslice_ns
        self.runq: list[Vcpu] = []
        self.vcpus: list[Vcpu] = []
        self.next_acct = CSCHED_ACCT_NS

    # -- membership -------------------------------------------------------------
    def insert_vcpu(self, v: Vcpu) -> None:
        v.credit = 0
        v.priority = CSCHED_PRI_TS_UNDER
        self.vcpus.append(v)

    def remove_vcpu(self, v: Vcpu) -> None:
        if v in self.runq:
            self.runq.remove(v)
        if v in self.vcpus:
            self.vcpus.remove(v)

    # -- run queue ----------------------------------------------------------------
    def runq_insert(self, v: Vcpu) -> None:
        """__runq_insert: behind every vCPU of equal or higher priority."""
        if v in self.runq:
            return
        pos = len(self.runq)
        for i, other in enumerate(self.runq):
            if other.priority < v.priority:
                pos = i
                break
        self.runq.insert(pos, v)

    def wake(self, v: Vcpu) -> None:
        """csched_vcpu_wake: a vCPU that slept while UNDER comes back BOOSTed."""
        if v.priority == CSCHED_PRI_TS_UNDER:
            v.priority = CSCHED_PRI_TS_BOOST
        self.runq_insert(v)

    def sleep(self, v: Vcpu) -> None:
        if v in self.runq:
            self.runq.remove(v)

    def pick_next(self, now: int) -> Vcpu | None:
        """csched_schedule: the head of the run queue (highest priority, oldest first).

        Only vCPUs that are runnable *at this pCPU's time* qualify: a vCPU that
        became runnable later on another pCPU's clock must not run in its past.
        """
        self.runq = [v for v in self.runq if v.runnable]
        for i, v in enumerate(self.runq):
            if v.ready_at <= now:
                return self.runq.pop(i)
        return None

    def earliest_ready(self) -> int | None:
        times = [v.ready_at for v in self.runq if v.runnable]
        return min(times) if times else None

    def slice_for(self, v: Vcpu) -> int:
        """How long ``v`` may run before the next decision.

        At most one time slice (30 ms); and at most one 10 ms tick, because
        csched_tick burns credits every tick and a vCPU that has just gone OVER
        is preempted there in favour of one still UNDER.
        """
        return min(self.tslice_ns, CSCHED_TICK_NS)

    def has_runnable(self) -> bool:
        return any(v.runnable for v in self.runq)

    # -- credits ------------------------------------------------------------------
    def burn_credits(self, v: Vcpu, ran_ns: int) -> None:
        v.credit -= ran_ns * CSCHED_CREDITS_PER_MSEC // 1_000_000
        if v.priority == CSCHED_PRI_TS_BOOST and ran_ns >= CSCHED_TICK_NS:
            v.priority = CSCHED_PRI_TS_UNDER
        if v.credit <= 0 and v.priority != CSCHED_PRI_TS_BOOST:
            v.priority = CSCHED_PRI_TS_OVER

    def account(self) -> None:
        """csched_acct: share out one period's credits by weight among active vCPUs."""
        active = [v for v in self.vcpus if v.online and not v.domain.is_shut_down
                  and not v.domain.is_dying]
        if not active:
            return
        doms: dict[int, list[Vcpu]] = {}
        for v in active:
            doms.setdefault(v.domain.domid, []).append(v)
        weight_total = sum(vs[0].domain.weight * len(vs) for vs in doms.values())
        credit_total = CSCHED_CREDITS_PER_ACCT * self.nr_pcpus
        for vs in doms.values():
            share = credit_total * vs[0].domain.weight * len(vs) // max(1, weight_total)
            per_vcpu = -(-share // len(vs))
            for v in vs:
                v.credit = max(-CSCHED_CREDITS_PER_ACCT, min(CSCHED_CREDITS_PER_ACCT,
                                                             v.credit + per_vcpu))
                if v.priority != CSCHED_PRI_TS_BOOST:
                    v.priority = CSCHED_PRI_TS_UNDER if v.credit > 0 else CSCHED_PRI_TS_OVER
        # re-sort the run queue by the new priorities (stable: FIFO within a priority)
        self.runq.sort(key=lambda v: -v.priority)
