/* events.c -- xenlab mini-OS: event channels (Mini-OS: events.c,
 * hypervisor.c).
 *
 * An event channel is one bit in shared_info->evtchn_pending[] (2-level ABI).
 * When Xen sets a port's bit it also sets the port's word in
 * vcpu_info[0].evtchn_pending_sel and vcpu_info[0].evtchn_upcall_pending --
 * unless the bit was ALREADY set: so the guest must clear the bits it has
 * handled, or the next event on that port goes unnoticed.  Mini-OS does this
 * in do_hypervisor_callback(); we have no callback and do it in
 * ack_all_events(), called by block_until() before testing its condition.
 */
#include "events.h"
#include "lib.h"

/* shared_info: Xen gives its machine address in start_info->shared_info.
 * Like Mini-OS (map_shared_info) we point one of our own pages at it. */
static char shared_info_page[PAGE_SIZE] PAGE_ALIGNED;
shared_info_t *HYPERVISOR_shared_info;

static evtchn_port_t timer_port;

void init_events(void)
{
    int rc = HYPERVISOR_update_va_mapping((unsigned long)shared_info_page,
                                          start_info->shared_info | L1_PROT,
                                          UVMF_INVLPG);
    if (rc) {
        printk("minios: update_va_mapping(shared_info) failed: %d\n", rc);
        shutdown(SHUTDOWN_crash);
    }
    HYPERVISOR_shared_info = (shared_info_t *)shared_info_page;

    /* set_timer_op raises VIRQ_TIMER: without a port bound to it the
     * timer would not wake us from SCHEDOP_block. */
    rc = evtchn_bind_virq(VIRQ_TIMER, &timer_port);
    if (rc) {
        printk("minios: bind_virq(VIRQ_TIMER) failed: %d\n", rc);
        shutdown(SHUTDOWN_crash);
    }
    /* The toolstack bound these for us; make sure they are not masked. */
    unmask_evtchn(start_info->store_evtchn);
    if (start_info->console.domU.mfn)
        unmask_evtchn(start_info->console.domU.evtchn);
}

void ack_all_events(void)
{
    shared_info_t *s = HYPERVISOR_shared_info;
    vcpu_info_t *v = &s->vcpu_info[0];
    unsigned long sel;

    v->evtchn_upcall_pending = 0;               /* first: no lost wake-up */
    sel = __atomic_exchange_n(&v->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel) {
        unsigned word = __builtin_ctzl(sel);
        sel &= sel - 1;
        /* Drop every pending port of this word (only unmasked ones set sel). */
        __atomic_and_fetch(&s->evtchn_pending[word], s->evtchn_mask[word],
                           __ATOMIC_SEQ_CST);
    }
}

int evtchn_alloc_unbound(domid_t remote, evtchn_port_t *port)
{
    evtchn_alloc_unbound_t op = { .dom = DOMID_SELF, .remote_dom = remote };
    int rc = HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &op);
    if (rc)
        return rc;
    *port = op.port;
    return unmask_evtchn(op.port);
}

int evtchn_bind_virq(uint32_t virq, evtchn_port_t *port)
{
    evtchn_bind_virq_t op = { .virq = virq, .vcpu = 0 };
    int rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, &op);
    if (rc)
        return rc;
    *port = op.port;
    return unmask_evtchn(op.port);
}

int unmask_evtchn(evtchn_port_t port)
{
    evtchn_unmask_t op = { .port = port };
    return HYPERVISOR_event_channel_op(EVTCHNOP_unmask, &op);
}

int evtchn_close(evtchn_port_t port)
{
    evtchn_close_t op = { .port = port };
    return HYPERVISOR_event_channel_op(EVTCHNOP_close, &op);
}

int notify_remote_via_evtchn(evtchn_port_t port)
{
    evtchn_send_t op = { .port = port };
    return HYPERVISOR_event_channel_op(EVTCHNOP_send, &op);
}
