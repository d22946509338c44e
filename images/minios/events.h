/* events.h -- xenlab mini-OS: event channels (Mini-OS: include/events.h). */
#ifndef MINIOS_EVENTS_H
#define MINIOS_EVENTS_H

#include "hypervisor.h"

void init_events(void);
/* Clear upcall_pending, the selector and every pending port bit, i.e.
 * acknowledge all events (we poll the rings, so nothing is lost). */
void ack_all_events(void);
int evtchn_alloc_unbound(domid_t remote, evtchn_port_t *port);
int evtchn_bind_virq(uint32_t virq, evtchn_port_t *port);
int unmask_evtchn(evtchn_port_t port);
int evtchn_close(evtchn_port_t port);
int notify_remote_via_evtchn(evtchn_port_t port);

#endif
