/* netfront.h -- xenlab mini-OS: network front-end (Mini-OS: include/netfront.h). */
#ifndef MINIOS_NETFRONT_H
#define MINIOS_NETFRONT_H

#include "hypervisor.h"
#include "xenbus.h"
#include <xen/io/netif.h>

#define NET_TX_BUFS 8           /* frames in flight to the backend */
#define NET_RX_BUFS 16          /* empty pages posted for received frames */

struct net_buffer {
    char *page;                 /* one page of ours */
    grant_ref_t gref;
    int busy;                   /* tx: waiting for the backend's response */
};

struct netfront_dev {
    char nodename[64];          /* "device/vif/0" */
    char backend[128];
    domid_t dom;
    uint8_t mac[6];
    netif_tx_front_ring_t tx;
    netif_rx_front_ring_t rx;
    grant_ref_t tx_ring_ref, rx_ring_ref;
    evtchn_port_t evtchn;
    struct net_buffer tx_buffers[NET_TX_BUFS];
    struct net_buffer rx_buffers[NET_RX_BUFS];
    /* called for each received frame */
    void (*receive)(struct netfront_dev *dev, const uint8_t *data, unsigned len);
};

struct netfront_dev *init_netfront(const char *nodename,
        void (*receive)(struct netfront_dev *, const uint8_t *, unsigned));
/* Queue one Ethernet frame (<= one page).  Returns 0 or -1. */
int netfront_xmit(struct netfront_dev *dev, const void *data, unsigned len);
/* Hand every received frame to dev->receive and re-post the buffers;
 * reclaim finished transmissions.  Returns the number of frames received. */
int netfront_poll(struct netfront_dev *dev);
/* block_until() condition: is anything waiting on either ring? */
int netfront_has_work(void *dev);
void shutdown_netfront(struct netfront_dev *dev);

#endif
