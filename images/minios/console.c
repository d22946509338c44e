/* console.c -- xenlab mini-OS: the PV console ring
 * (Mini-OS: console/xencons_ring.c, xencons_ring_send).
 *
 * The toolstack gives every PV domain one page shared with xenconsoled:
 * struct xencons_interface (<xen/io/console.h>).  start_info names its
 * machine frame (console.domU.mfn) and an event channel that is already
 * bound (console.domU.evtchn).  We are the producer of out[]: copy bytes
 * to out[MASK(out_prod)], write barrier, advance out_prod, notify.
 * xenconsoled consumes them and advances out_cons.  When the ring is full
 * we notify and yield until xenconsoled has made room.
 *
 * Until init_console() has found the ring (or if there is none), text goes
 * to Xen's own console with the console_io hypercall.
 */
#include "console.h"                  /* hypervisor.h first: stdint, barriers */
#include <xen/io/console.h>
#include "events.h"

static struct xencons_interface *cons_ring;
static evtchn_port_t cons_port;

void init_console(void)
{
    if (!start_info->console.domU.mfn)
        return;
    cons_ring = mfn_to_virt(start_info->console.domU.mfn);
    cons_port = start_info->console.domU.evtchn;
}

void console_print(const char *data, int length)
{
    struct xencons_interface *intf = cons_ring;
    XENCONS_RING_IDX prod;
    int sent = 0;

    if (!intf) {
        HYPERVISOR_console_io(CONSOLEIO_write, length, data);
        return;
    }
    while (sent < length) {
        mb();                                   /* read out_cons afresh */
        prod = intf->out_prod;
        if (prod - intf->out_cons >= sizeof(intf->out)) {
            /* Full: ask xenconsoled to drain, let it run. */
            notify_remote_via_evtchn(cons_port);
            yield();
            continue;
        }
        while (sent < length && prod - intf->out_cons < sizeof(intf->out))
            intf->out[MASK_XENCONS_IDX(prod++, intf->out)] = data[sent++];
        wmb();                                  /* data before the index */
        intf->out_prod = prod;
        notify_remote_via_evtchn(cons_port);
    }
}
