/* hypervisor.c -- xenlab mini-OS: time, blocking, shutdown, machine frames
 * (Mini-OS: arch/x86/time.c, hypervisor.c, sched.c's block/schedule,
 *  kernel.c's do_exit / kernel_shutdown).
 */
#include "hypervisor.h"
#include "events.h"
#include "lib.h"

/* Search the P2M for the pseudo-physical frame of machine frame `mfn` and
 * return its address in the bootstrap mapping. */
void *mfn_to_virt(unsigned long mfn)
{
    for (unsigned long pfn = 0; pfn < start_info->nr_pages; pfn++)
        if (mfn_list[pfn] == mfn)
            return (void *)(VIRT_BASE + (pfn << PAGE_SHIFT));
    return NULL;
}

/* Xen system time in ns.  Xen republishes vcpu_info[0].time on every
 * hypercall; `version` is odd while it writes, so retry until we read a
 * stable, even version (xenlab republishes it on every entry into
 * Xen, so system_time is close enough without TSC extrapolation). */
uint64_t monotonic_clock(void)
{
    volatile struct vcpu_time_info *t = &HYPERVISOR_shared_info->vcpu_info[0].time;
    uint32_t version;
    uint64_t now;

    do {
        version = t->version;
        rmb();
        now = t->system_time;
        rmb();
    } while ((version & 1) || version != t->version);
    return now;
}

/* The polling loop everything waits in.  Order matters:
 *   1. acknowledge every event (clears upcall_pending),
 *   2. test the condition (ring indices, xenstore replies, ...),
 *   3. block.
 * An event arriving after step 1 sets upcall_pending again, so the
 * SCHEDOP_block of step 3 returns at once: no wake-up is lost. */
int block_until(int (*cond)(void *arg), void *arg, uint64_t deadline_ns)
{
    for (;;) {
        ack_all_events();
        if (cond && cond(arg))
            return 1;
        if (deadline_ns && monotonic_clock() >= deadline_ns)
            return 0;
        HYPERVISOR_set_timer_op(deadline_ns);   /* 0: no timeout */
        HYPERVISOR_sched_op(SCHEDOP_block, NULL);
    }
}

void msleep(unsigned ms)
{
    block_until(NULL, NULL, monotonic_clock() + MILLISECS(ms));
}

void yield(void)
{
    HYPERVISOR_sched_op(SCHEDOP_yield, NULL);
}

void shutdown(unsigned reason)
{
    struct sched_shutdown sd = { .reason = reason };
    HYPERVISOR_sched_op(SCHEDOP_shutdown, &sd);
    for (;;)                                    /* Xen never comes back */
        HYPERVISOR_sched_op(SCHEDOP_yield, NULL);
}
