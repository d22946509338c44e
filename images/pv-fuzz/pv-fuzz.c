/* pv-fuzz: a hostile PV guest that fuzzes Xen from real machine code.
 *
 * Build (from the repository root):   make -C images
 * Run:   python -m xenlab.fuzz --time 60        (a victim guest runs next to it)
 *        tests/test_fuzz_guest.py               (fixed seeds)
 *
 * The command line (xl.cfg `extra =`, start_info->cmd_line) says what to do:
 *     seed=N      the PRNG's seed (decimal; xorshift64, so the same seed makes
 *                 the same sequence of hypercalls on every run)
 *     ops=N       how many operations to issue (default 2000)
 *     victim=D    the domid of the guest next to us, whose memory the harness
 *                 hashes before and after: every domid-taking operation tries
 *                 it (grant maps and copies of its refs, interdomain binds to
 *                 its ports, memory_op on it, remote shutdown, ...)
 *     log=N       one line on Xen's console every N operations (default 250)
 *
 * Each operation is one of
 *   - a random hypercall number 0..63 with "interesting" arguments: 0, -1,
 *     small numbers, domids, pointers into our own scratch memory, into
 *     unmapped space, into Xen's area at HYPERVISOR_VIRT_START, non-canonical
 *     and user-half addresses, page-straddling pointers;
 *   - structured ones with random fields: grant table ops (setup_table,
 *     map/unmap/copy with random refs and domids, query_size, set_version,
 *     ...), grant entries of our own (to ourselves, the victim, Dom0, for our
 *     own frames, our page tables, other machine frames), event channel ops
 *     (alloc_unbound, bind_interdomain to the victim, send, close, unmask,
 *     status, bind_virq/ipi/vcpu, reset), memory_op (decrease/increase
 *     reservation and populate_physmap with random frames, reservation
 *     queries, add_to_physmap), update_va_mapping with random PTEs, vcpu_op,
 *     sched_op, event callbacks (with a real upcall handler below);
 *   - random bytes written into our own console and xenstore rings (indices
 *     included), followed by a notification of Dom0's daemons.
 * It never stops at an error: every result is counted (ok / errno) and the
 * run ends with SCHEDOP_shutdown(poweroff).  What it avoids, because it would
 * only stop the fuzzing early: port I/O (#GP in ring 3: Xen crashes a PV
 * guest that tries), HYPERVISOR_iret outside an upcall, SCHEDOP_shutdown
 * before the end, VCPUOP_down of its only vCPU, and unmapping or freeing
 * its own code, data and stack.  A guest may still crash itself (e.g. by
 * freeing a page table): that is allowed, the host must not suffer.
 *
 * Logging goes to Xen's console (console_io) rather than the PV console
 * ring, because the fuzzer scribbles over that ring and may close its port.
 */
#include "hypervisor.h"
#include "lib.h"
#include "events.h"
#include "gnttab.h"
#include "xenbus.h"
#include <xen/vcpu.h>

MINIOS_GUEST_OS("xenlab-pv-fuzz");

#define NR_SCRATCH 8            /* pages of scratch buffers for arguments */
#define NR_WINDOW  8            /* pages whose mappings update_va_mapping changes */

static char scratch[NR_SCRATCH * PAGE_SIZE] PAGE_ALIGNED;
static char xen_writes_here[PAGE_SIZE] PAGE_ALIGNED;   /* runstate / time areas */
static char window[NR_WINDOW * PAGE_SIZE] PAGE_ALIGNED;

static uint64_t rng_state;
static unsigned long victim;    /* the victim's domid */
static unsigned long self_id;   /* our own domid (from xenstore) */
static unsigned long spare_lo;  /* first pfn we do not use (after our stack) */
static unsigned long n_ok, n_err, n_ops;

/* ------------------------------------------------------------ the PRNG */
static uint64_t rnd(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static unsigned long rndn(unsigned long n)
{
    return n ? rnd() % n : 0;
}

/* ------------------------------------------------------------ hypercalls */
/* Any hypercall by number: `call *hypercall_page[nr]` with five arguments. */
static long hypercall(unsigned nr, unsigned long a1, unsigned long a2, unsigned long a3,
                      unsigned long a4, unsigned long a5)
{
    register unsigned long res asm("rax");
    register unsigned long r1 asm("rdi") = a1;
    register unsigned long r2 asm("rsi") = a2;
    register unsigned long r3 asm("rdx") = a3;
    register unsigned long r4 asm("r10") = a4;
    register unsigned long r5 asm("r8") = a5;
    unsigned long target = (unsigned long)&hypercall_page[nr & 127];

    asm volatile("call *%[t]"
                 : "=r"(res), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5)
                 : [t] "r"(target)
                 : "rcx", "r11", "memory");
    return (long)res;
}

static long count(long rc)
{
    if (rc < 0 && rc > -4096)
        n_err++;
    else
        n_ok++;
    return rc;
}

/* ------------------------------------------------------------ interesting values */
static void *scratch_ptr(void)
{
    /* anywhere in the first half, so that most buffers stay inside scratch */
    return scratch + rndn(NR_SCRATCH / 2 * PAGE_SIZE);
}

static unsigned long wild_ptr_n(unsigned n)
{
    switch (rndn(n)) {
    case 0: return 0;
    case 1: return (unsigned long)-1;
    case 2: return HYPERVISOR_VIRT_START + (rnd() & 0x7ffffffff8UL);   /* Xen's area */
    case 3: return 0x0000800000000000UL + (rnd() & 0xffff);           /* non-canonical */
    case 4: return rnd() & 0x00007ffffffff000UL;                        /* user half */
    case 5: return VIRT_BASE + (start_info->nr_pages << PAGE_SHIFT)
                   + (rnd() & 0xfffff);                                 /* past our memory */
    case 6: return (unsigned long)scratch + NR_SCRATCH * PAGE_SIZE / 2 - 1 - rndn(8);
    case 7: return (unsigned long)start_info;
    case 8: return rnd();
    default: return (unsigned long)scratch_ptr();
    }
}

/* 0, -1, Xen's area, non-canonical, user half, past our memory, a page-straddling
 * or start_info pointer, random, or (most often) somewhere in scratch */
static unsigned long wild_ptr(void)
{
    return wild_ptr_n(12);
}

static unsigned long domid_value(void)
{
    switch (rndn(10)) {
    case 0: case 1: case 2: return victim;
    case 3: return 0;                   /* Dom0 */
    case 4: return DOMID_SELF;
    case 5: return self_id;
    case 6: return 0x7ff0 + rndn(8);    /* DOMID_SELF, _IO, _XEN, _COW, _INVALID, ... */
    case 7: return rndn(8);
    case 8: return 0xffff;
    default: return rnd() & 0xffff;
    }
}

static unsigned long wild_val(void)
{
    switch (rndn(12)) {
    case 0: return 0;
    case 1: return (unsigned long)-1;
    case 2: return rndn(4);
    case 3: return rndn(64);
    case 4: return 1UL << rndn(64);
    case 5: return domid_value();
    case 6: return 0x7fffffff + rndn(3);
    case 7: return rnd();
    case 8: return rnd() & 0xffffffff;
    default: return wild_ptr();
    }
}

/* Fill part of scratch with interesting quadwords (refs, ports, domids, frames). */
static void fill_scratch(void *p, unsigned long bytes)
{
    uint64_t *q = p;

    for (unsigned long i = 0; i < bytes / 8; i++)
        q[i] = rndn(3) ? rndn(64) | (domid_value() << 32) : wild_val();
}

static unsigned long own_mfn(void)
{
    switch (rndn(6)) {
    case 0: return virt_to_mfn(scratch + rndn(NR_SCRATCH) * PAGE_SIZE);
    case 1: return virt_to_mfn((void *)start_info->pt_base)
                   + rndn(start_info->nr_pt_frames);           /* a page table */
    case 2: return start_info->store_mfn;
    case 3: return start_info->console.domU.mfn;
    case 4: return start_info->shared_info >> PAGE_SHIFT;      /* Xen's frame */
    default: return mfn_list[rndn(start_info->nr_pages)];
    }
}

static unsigned long any_mfn(void)
{
    switch (rndn(4)) {
    case 0: return own_mfn();
    case 1: return own_mfn() + 1 + rndn(0x2000);   /* likely someone else's frame */
    case 2: return rndn(0x40000);                  /* anywhere in a 1 GiB host */
    default: return wild_val();
    }
}

/* A pfn to give back or repopulate: usually one we do not use. */
static unsigned long spare_pfn(void)
{
    unsigned long n = start_info->nr_pages;

    switch (rndn(16)) {
    case 0: return rndn(n);                         /* anything, our page tables too */
    case 1: return n + rndn(64);                    /* past the end */
    case 2: return wild_val();
    default: return spare_lo < n ? spare_lo + rndn(n - spare_lo) : n;
    }
}

/* ------------------------------------------------------------ grant tables */
static grant_ref_t granted[64];
static unsigned nr_granted;

static void op_grant_access(void)
{
    if (nr_granted < ARRAY_SIZE(granted) && rndn(3)) {
        unsigned long dom = rndn(3) == 0 ? self_id : domid_value();
        granted[nr_granted++] = gnttab_grant_access((domid_t)dom, own_mfn(), (int)rndn(2));
    } else if (nr_granted) {
        unsigned i = (unsigned)rndn(nr_granted);
        if (gnttab_end_access(granted[i]))
            granted[i] = granted[--nr_granted];
    }
    n_ok++;
}

static unsigned long grant_ref(void)
{
    switch (rndn(6)) {
    case 0: return nr_granted ? granted[rndn(nr_granted)] : 8;
    case 1: return rndn(8);                 /* the toolstack's reserved entries */
    case 2: return wild_val();
    default: return rndn(80);
    }
}

static unsigned long host_addr(void)
{
    return rndn(4) ? (unsigned long)window + rndn(NR_WINDOW) * PAGE_SIZE
                     + (rndn(8) ? 0 : rndn(PAGE_SIZE))
                   : wild_ptr();
}

static void op_grant(void)
{
    unsigned cmd = (unsigned)rndn(14);
    unsigned nr = (unsigned)(rndn(8) ? 1 + rndn(3) : wild_val());
    void *buf = scratch_ptr();

    switch (cmd) {
    case GNTTABOP_map_grant_ref: {
        struct gnttab_map_grant_ref *m = buf;
        for (unsigned i = 0; i < 3; i++) {
            m[i].host_addr = host_addr();
            m[i].flags = (uint32_t)(rndn(4) ? GNTMAP_host_map | (rndn(2) ? GNTMAP_readonly : 0)
                                            : wild_val());
            m[i].ref = (grant_ref_t)grant_ref();
            m[i].dom = (domid_t)domid_value();
        }
        break;
    }
    case GNTTABOP_unmap_grant_ref: {
        struct gnttab_unmap_grant_ref *u = buf;
        for (unsigned i = 0; i < 3; i++) {
            u[i].host_addr = host_addr();
            u[i].dev_bus_addr = rndn(4) ? 0 : wild_val();
            u[i].handle = (grant_handle_t)(rndn(4) ? rndn(16) : wild_val());
        }
        break;
    }
    case GNTTABOP_setup_table: {
        struct gnttab_setup_table *s = buf;
        s->dom = (domid_t)domid_value();
        s->nr_frames = (uint32_t)(rndn(4) ? rndn(5) : wild_val());
        set_xen_guest_handle(s->frame_list, (xen_pfn_t *)(rndn(4) ? scratch_ptr()
                                                                   : (void *)wild_ptr()));
        nr = 1;
        break;
    }
    case GNTTABOP_copy: {
        struct gnttab_copy *c = buf;
        for (unsigned i = 0; i < 3; i++) {
            c[i].flags = (uint16_t)rndn(4);        /* GNTCOPY_source_gref / _dest_gref */
            c[i].source.u.ref = (grant_ref_t)grant_ref();
            if (!(c[i].flags & GNTCOPY_source_gref))
                c[i].source.u.gmfn = rndn(2) ? virt_to_pfn(scratch) + rndn(NR_SCRATCH)
                                             : spare_pfn();
            c[i].source.domid = (domid_t)domid_value();
            c[i].source.offset = (uint16_t)(rndn(4) ? rndn(PAGE_SIZE) : wild_val());
            c[i].dest.u.ref = (grant_ref_t)grant_ref();
            if (!(c[i].flags & GNTCOPY_dest_gref))
                c[i].dest.u.gmfn = rndn(2) ? virt_to_pfn(scratch) + rndn(NR_SCRATCH)
                                           : spare_pfn();
            c[i].dest.domid = (domid_t)domid_value();
            c[i].dest.offset = (uint16_t)(rndn(4) ? rndn(PAGE_SIZE) : wild_val());
            c[i].len = (uint16_t)(rndn(4) ? rndn(PAGE_SIZE + 1) : wild_val());
        }
        break;
    }
    case GNTTABOP_query_size: {
        struct gnttab_query_size *q = buf;
        q->dom = (domid_t)domid_value();
        nr = 1;
        break;
    }
    case GNTTABOP_set_version:
        *(uint32_t *)buf = (uint32_t)(rndn(2) ? 1 : wild_val());
        break;
    default:
        fill_scratch(buf, 256);
        break;
    }
    count(hypercall(__HYPERVISOR_grant_table_op, cmd, rndn(16) ? (unsigned long)buf
                                                                : wild_ptr(), nr, 0, 0));
}

/* ------------------------------------------------------------ event channels */
static unsigned long port_value(void)
{
    switch (rndn(6)) {
    case 0: return wild_val();
    case 1: return rndn(4096);
    default: return rndn(24);
    }
}

static void op_evtchn(void)
{
    unsigned cmd = (unsigned)rndn(16);
    uint32_t *w = scratch_ptr();
    void *buf = w;

    switch (cmd) {
    case EVTCHNOP_alloc_unbound: {
        evtchn_alloc_unbound_t *a = buf;
        a->dom = (domid_t)(rndn(2) ? DOMID_SELF : domid_value());
        a->remote_dom = (domid_t)domid_value();
        break;
    }
    case EVTCHNOP_bind_interdomain: {
        evtchn_bind_interdomain_t *b = buf;
        b->remote_dom = (domid_t)domid_value();
        b->remote_port = (evtchn_port_t)port_value();
        break;
    }
    case EVTCHNOP_bind_virq: {
        evtchn_bind_virq_t *b = buf;
        b->virq = (uint32_t)(rndn(4) ? rndn(25) : wild_val());
        b->vcpu = (uint32_t)(rndn(4) ? 0 : wild_val());
        break;
    }
    case EVTCHNOP_bind_ipi: {
        evtchn_bind_ipi_t *b = buf;
        b->vcpu = (uint32_t)(rndn(2) ? 0 : wild_val());
        break;
    }
    case EVTCHNOP_status: {
        evtchn_status_t *s = buf;
        s->dom = (domid_t)domid_value();
        s->port = (evtchn_port_t)port_value();
        break;
    }
    case EVTCHNOP_bind_vcpu: {
        evtchn_bind_vcpu_t *b = buf;
        b->port = (evtchn_port_t)port_value();
        b->vcpu = (uint32_t)(rndn(2) ? 0 : wild_val());
        break;
    }
    case EVTCHNOP_reset:
        ((evtchn_reset_t *)buf)->dom = (domid_t)(rndn(8) ? domid_value() : DOMID_SELF);
        break;
    default:        /* send, close, unmask, and what follows: a port first */
        w[0] = (uint32_t)port_value();
        w[1] = (uint32_t)wild_val();
        break;
    }
    count(hypercall(__HYPERVISOR_event_channel_op, cmd, rndn(16) ? (unsigned long)buf
                                                                  : wild_ptr(), 0, 0, 0));
}

/* ------------------------------------------------------------ memory_op */
static void op_memory(void)
{
    static const unsigned cmds[] = {
        XENMEM_increase_reservation, XENMEM_decrease_reservation, XENMEM_populate_physmap,
        XENMEM_maximum_ram_page, XENMEM_current_reservation, XENMEM_maximum_reservation,
        XENMEM_machphys_mfn_list, XENMEM_add_to_physmap, XENMEM_memory_map, XENMEM_exchange,
        XENMEM_maximum_gpfn, XENMEM_remove_from_physmap, XENMEM_acquire_resource,
    };
    unsigned long cmd = rndn(8) ? cmds[rndn(ARRAY_SIZE(cmds))] : wild_val();
    char *buf = scratch_ptr();
    xen_pfn_t *frames = (xen_pfn_t *)(scratch + NR_SCRATCH / 2 * PAGE_SIZE);

    switch (cmd) {
    case XENMEM_increase_reservation:
    case XENMEM_decrease_reservation:
    case XENMEM_populate_physmap: {
        struct xen_memory_reservation *r = (void *)buf;
        for (unsigned i = 0; i < 4; i++)
            frames[i] = spare_pfn();
        set_xen_guest_handle(r->extent_start, rndn(8) ? frames : (xen_pfn_t *)wild_ptr());
        r->nr_extents = rndn(4) ? 1 + rndn(4) : wild_val();
        r->extent_order = (unsigned)(rndn(4) ? 0 : rndn(4) ? rndn(3) : wild_val());
        r->mem_flags = (unsigned)(rndn(4) ? 0 : wild_val());
        r->domid = (domid_t)(rndn(2) ? DOMID_SELF : domid_value());
        break;
    }
    case XENMEM_current_reservation:
    case XENMEM_maximum_reservation:
        *(domid_t *)buf = (domid_t)domid_value();
        break;
    case XENMEM_add_to_physmap: {
        struct xen_add_to_physmap *a = (void *)buf;
        a->domid = (domid_t)domid_value();
        a->size = (uint16_t)rndn(4);
        a->space = (unsigned)rndn(6);           /* shared_info, grant_table, gmfn, ... */
        a->idx = rndn(4) ? rndn(4) : wild_val();
        a->gpfn = spare_pfn();
        break;
    }
    default:
        fill_scratch(buf, 128);
        break;
    }
    count(hypercall(__HYPERVISOR_memory_op, cmd, rndn(16) ? (unsigned long)buf : wild_ptr(),
                    0, 0, 0));
}

/* ------------------------------------------------------------ update_va_mapping */
static void op_update_va_mapping(void)
{
    unsigned long va, pte, flags;
    long rc;

    switch (rndn(8)) {
    case 0: va = wild_ptr_n(6); break;                          /* not ours, or Xen's */
    case 1: va = VIRT_BASE + (start_info->nr_pages << PAGE_SHIFT) + rndn(64) * PAGE_SIZE;
            break;                                              /* past the bootstrap map */
    default: va = (unsigned long)window + rndn(NR_WINDOW) * PAGE_SIZE; break;
    }
    switch (rndn(6)) {
    case 0: pte = wild_val(); break;
    case 1: pte = 0; break;                                     /* unmap */
    default:
        pte = (any_mfn() << PAGE_SHIFT) | (rndn(4) ? L1_PROT | (rndn(2) ? 0 : _PAGE_RW)
                                                    : rnd() & 0x8000000000000fffUL);
        break;
    }
    flags = rndn(4) ? UVMF_INVLPG : wild_val();
    rc = count(hypercall(__HYPERVISOR_update_va_mapping, va, pte, flags, 0, 0));
    /* Mapped something writable into our window: write into it, as an attacker would
     * (only with _PAGE_USER: real Xen sets it in a 64-bit PV guest's PTEs itself,
     * adjust_guest_l1e; xenlab does not, and a supervisor page faults in ring 3). */
    if (rc == 0 && (pte & L1_PROT) == L1_PROT
        && va >= (unsigned long)window && va < (unsigned long)window + sizeof(window))
        *(volatile uint64_t *)((va & ~(PAGE_SIZE - 1)) + (rndn(PAGE_SIZE / 8) * 8))
            = wild_val();
}

/* ------------------------------------------------------------ rings */
static void op_rings(void)
{
    int console = (int)rndn(2);
    unsigned long mfn = console ? start_info->console.domU.mfn : start_info->store_mfn;
    evtchn_port_t port = console ? start_info->console.domU.evtchn : start_info->store_evtchn;
    unsigned char *ring = mfn ? mfn_to_virt(mfn) : NULL;
    struct evtchn_send send = { .port = port };

    if (ring) {
        unsigned n = (unsigned)(1 + rndn(64));
        if (rndn(3)) {              /* a burst of bytes somewhere in the page */
            unsigned off = (unsigned)rndn(PAGE_SIZE);
            for (unsigned i = 0; i < n && off + i < PAGE_SIZE; i++)
                ring[off + i] = (unsigned char)rnd();
        } else {                    /* the indices at the end of the rings' data */
            uint32_t *idx = (uint32_t *)(ring + (console ? 1024 + 2048 : 2048))
                            + rndn(4);
            *idx = (uint32_t)(rndn(2) ? rnd() : *idx + rndn(4096));
        }
    }
    count(HYPERVISOR_event_channel_op(EVTCHNOP_send, &send));
}

/* ------------------------------------------------------------ vcpu_op, sched_op */
static void op_vcpu(void)
{
    unsigned long cmd = rndn(16);
    unsigned long vcpu = rndn(4) ? 0 : wild_val();
    unsigned long arg;

    if (cmd == VCPUOP_down && (unsigned)vcpu == 0)     /* Xen reads an int */
        cmd = VCPUOP_is_up;
    if (cmd == VCPUOP_register_runstate_memory_area || cmd == VCPUOP_register_vcpu_info
        || cmd == 13 /* VCPUOP_register_vcpu_time_memory_area */) {
        /* Xen keeps writing there: a page of its own, or addresses Xen cannot
         * write (not our scratch, which later ops read as arguments, nor start_info) */
        char *p = scratch_ptr();
        fill_scratch(p, 32);
        *(uint64_t *)p = rndn(2) ? (uint64_t)(xen_writes_here + rndn(PAGE_SIZE - 64))
                                 : wild_ptr_n(6);
        if (cmd == VCPUOP_register_vcpu_info) {     /* struct vcpu_register_vcpu_info */
            /* always refused (an offset past PAGE_SIZE - 64): once Xen moved vcpu_info,
             * this guest's upcall handler, which reads it in shared_info, would never see
             * evtchn_upcall_pending clear and the guest would livelock itself */
            *(uint64_t *)p = rndn(2) ? virt_to_mfn(scratch_ptr()) : wild_val();
            ((uint32_t *)p)[2] = (uint32_t)(PAGE_SIZE - 63 + rndn(63));
        }
        arg = rndn(8) ? (unsigned long)p : wild_ptr();
    } else {
        char *p = scratch_ptr();
        fill_scratch(p, 64);
        arg = rndn(4) ? (unsigned long)p : wild_ptr();
    }
    count(hypercall(__HYPERVISOR_vcpu_op, cmd, vcpu, arg, 0, 0));
}

static void op_sched(void)
{
    char *p = scratch_ptr();
    unsigned long cmd;

    switch (rndn(8)) {
    case 0: cmd = SCHEDOP_yield; break;
    case 1: {                                       /* remote shutdown of someone */
        struct sched_remote_shutdown *r = (void *)p;
        r->domain_id = (domid_t)domid_value();
        r->reason = (unsigned)rndn(6);
        cmd = SCHEDOP_remote_shutdown;
        break;
    }
    case 2: {                                       /* poll our ports, with a timeout */
        struct sched_poll *s = (void *)p;
        evtchn_port_t *ports = (evtchn_port_t *)(p + 64);
        for (unsigned i = 0; i < 4; i++)
            ports[i] = (evtchn_port_t)port_value();
        set_xen_guest_handle(s->ports, rndn(8) ? ports : (evtchn_port_t *)wild_ptr());
        s->nr_ports = rndn(4) ? 1 + rndn(4) : wild_val();
        s->timeout = monotonic_clock() + 1000 + rndn(100000);
        cmd = SCHEDOP_poll;
        break;
    }
    case 3: {                                       /* block, with a timer to wake us */
        /* The fuzzer may have closed the VIRQ_TIMER port: bind it again if so
         * (EEXIST otherwise); acknowledge every event, as the pending bits of
         * ports already pending would not wake us again. */
        evtchn_port_t timer;
        if (evtchn_bind_virq(VIRQ_TIMER, &timer) == 0)
            unmask_evtchn(timer);
        ack_all_events();
        count(HYPERVISOR_set_timer_op(monotonic_clock() + 1000 + rndn(100000)));
        cmd = SCHEDOP_block;
        break;
    }
    case 4:
        *(uint32_t *)p = (uint32_t)wild_val();
        cmd = SCHEDOP_shutdown_code;
        break;
    case 5: {                                       /* a watchdog: only disarming ones */
        struct sched_watchdog *w = (void *)p;
        w->id = (uint32_t)(rndn(2) ? 0 : wild_val());
        w->timeout = 0;
        cmd = SCHEDOP_watchdog;
        break;
    }
    default:
        fill_scratch(p, 64);
        cmd = 7 + rndn(64);                         /* unknown commands */
        break;
    }
    count(hypercall(__HYPERVISOR_sched_op, cmd, (unsigned long)p, 0, 0, 0));
}

/* ------------------------------------------------------------ event callbacks */
/* A real upcall handler: Xen's bounce frame holds RCX, R11, RIP, CS, RFLAGS, RSP,
 * SS; pop RCX and R11 back into their registers (Linux's xen_hypervisor_callback
 * does), acknowledge the events, push the flags word and jump to the iret stub,
 * which pushes RCX, R11 and RAX to complete struct iret_context (Linux's xen_iret). */
void fuzz_upcall(void);
__asm__(
    "	.pushsection .text, \"ax\", @progbits\n"
    "	.globl fuzz_upcall\n"
    "fuzz_upcall:\n"
    "	pop	%rcx\n"
    "	pop	%r11\n"
    "	push	%rax\n"
    "	mov	HYPERVISOR_shared_info(%rip), %rax\n"
    "	movb	$0, (%rax)\n"               /* vcpu_info[0].evtchn_upcall_pending */
    "	pop	%rax\n"
    "	pushq	$0\n"                       /* flags */
    "	jmp	hypercall_page + 23 * 32\n"  /* __HYPERVISOR_iret */
    "	.popsection\n");

static unsigned long callback_addr(void)
{
    switch (rndn(4)) {
    case 0: return (wild_ptr() & 0x00007fffffffffffUL) | 0x0000800000000000UL;  /* non-canonical */
    case 1: return HYPERVISOR_VIRT_START + rndn(0x10000);
    default: return (unsigned long)fuzz_upcall;
    }
}

static void op_callbacks(void)
{
    if (rndn(2)) {
        count(hypercall(__HYPERVISOR_set_callbacks, callback_addr(), callback_addr(),
                        callback_addr(), 0, 0));
    } else {
        struct { uint16_t type, flags; uint32_t pad; uint64_t address; } *cb = scratch_ptr();
        cb->type = (uint16_t)(rndn(4) ? rndn(3) : wild_val());
        cb->flags = (uint16_t)rndn(2);
        cb->address = callback_addr();
        count(hypercall(__HYPERVISOR_callback_op, rndn(4) ? rndn(2) : wild_val(),
                        rndn(8) ? (unsigned long)cb : wild_ptr(), 0, 0, 0));
    }
}

/* ------------------------------------------------------------ everything else */
static void op_misc(void)
{
    char *p = scratch_ptr();

    switch (rndn(4)) {
    case 0:
        count(HYPERVISOR_xen_version((int)rndn(16), rndn(4) ? p : (void *)wild_ptr()));
        break;
    case 1:
        fill_scratch(p, 64);
        count(hypercall(__HYPERVISOR_console_io, rndn(4), rndn(4) ? rndn(64) : wild_val(),
                        rndn(4) ? (unsigned long)p : wild_ptr(), 0, 0));
        break;
    case 2:
        count(HYPERVISOR_set_timer_op(rndn(2) ? monotonic_clock() + rndn(1000000)
                                              : wild_val()));
        break;
    default:
        count(hypercall(__HYPERVISOR_hvm_op, rndn(8), (unsigned long)p, 0, 0, 0));
        break;
    }
}

/* A random hypercall number 0..63 with wild arguments; the ones handled above
 * (and those that would only end the run early) go to their structured op. */
static void op_random(void)
{
    unsigned nr = (unsigned)rndn(64);

    switch (nr) {
    case __HYPERVISOR_grant_table_op:     op_grant(); return;
    case __HYPERVISOR_event_channel_op:   op_evtchn(); return;
    case __HYPERVISOR_memory_op:          op_memory(); return;
    case __HYPERVISOR_update_va_mapping:  op_update_va_mapping(); return;
    case __HYPERVISOR_vcpu_op:            op_vcpu(); return;
    case __HYPERVISOR_sched_op:           op_sched(); return;
    case __HYPERVISOR_set_callbacks:
    case __HYPERVISOR_callback_op:        op_callbacks(); return;
    case __HYPERVISOR_sched_op_compat:    op_sched(); return;   /* block/shutdown too */
    case __HYPERVISOR_iret:
    /* would make the fuzzer's own next FPU use, fault or %fs/%gs access kill it */
    case __HYPERVISOR_fpu_taskswitch:
    case __HYPERVISOR_set_trap_table:
    case __HYPERVISOR_set_segment_base:
    case __HYPERVISOR_stack_switch:       nr = 64 + (unsigned)rndn(64); break;
    default: break;
    }
    fill_scratch(scratch, 512);
    count(hypercall(nr, wild_val(), wild_val(), wild_val(), wild_val(), wild_val()));
}

/* ------------------------------------------------------------ main */
static unsigned long cmdline_number(const char *cmdline, const char *key, unsigned long dflt)
{
    size_t len = strlen(key);

    for (const char *p = cmdline; *p; p++)
        if ((p == cmdline || p[-1] == ' ') && !strncmp(p, key, len) && p[len] == '=')
            return simple_strtoul(p + len + 1, NULL, 10);
    return dflt;
}

static void xen_log(const char *fmt, ...)
{
    char line[128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    HYPERVISOR_console_io(CONSOLEIO_write, (int)strlen(line), line);
}

int app_main(start_info_t *si)
{
    const char *cmdline = (const char *)si->cmd_line;
    unsigned long seed = cmdline_number(cmdline, "seed", 1);
    unsigned long ops = cmdline_number(cmdline, "ops", 2000);
    unsigned long every = cmdline_number(cmdline, "log", 250);
    unsigned long stack_pfn = ((si->pt_base - VIRT_BASE) >> PAGE_SHIFT) + si->nr_pt_frames;

    victim = cmdline_number(cmdline, "victim", 1);
    self_id = (unsigned long)xenbus_read_integer("domid");
    /* after the page tables the builder put the boot stack (a page or a few) */
    spare_lo = stack_pfn + 8;
    /* xorshift must not start at 0; mix the seed so nearby seeds differ at once */
    rng_state = (seed ^ 0x9e3779b97f4a7c15UL) * 0xbf58476d1ce4e5b9UL;
    if (!rng_state)
        rng_state = 1;
    xen_log("pv-fuzz: seed %lu ops %lu victim d%lu self d%lu\n", seed, ops, victim, self_id);

    for (n_ops = 0; n_ops < ops; n_ops++) {
        switch (rndn(16)) {
        case 0: case 1: case 2: case 3: op_random(); break;
        case 4: case 5: op_grant(); break;
        case 6: op_grant_access(); break;
        case 7: case 8: op_evtchn(); break;
        case 9: op_memory(); break;
        case 10: op_update_va_mapping(); break;
        case 11: op_rings(); break;
        case 12: op_sched(); break;
        case 13: op_vcpu(); break;
        case 14: op_callbacks(); break;
        default: op_misc(); break;
        }
        if (every && (n_ops + 1) % every == 0)
            xen_log("pv-fuzz: %lu ops: %lu ok, %lu errors\n", n_ops + 1, n_ok, n_err);
    }
    xen_log("pv-fuzz: done: %lu ops (%lu ok, %lu errors), seed %lu\n", n_ops, n_ok, n_err,
            seed);
    return 0;
}
