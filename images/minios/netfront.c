/* netfront.c -- xenlab mini-OS: the network front-end
 * (Mini-OS: netfront.c; Linux: drivers/net/xen-netfront.c).
 *
 * Two rings (<xen/io/netif.h>), one event channel:
 *   tx ring: we post netif_tx_request {gref, offset, flags, id, size} for
 *            each frame to send (the page is granted read-only); netback
 *            copies it out and answers netif_tx_response {id, status}.
 *   rx ring: we post netif_rx_request {id, gref} for EMPTY pages granted
 *            writable ("request-rx-copy": netback copies each received
 *            frame into one); it answers netif_rx_response {id, offset,
 *            flags, status = frame length or a negative NETIF_RSP_*}.  We
 *            consume the frame and post the same buffer again.
 *
 * Handshake (Linux talk_to_netback, Mini-OS _init_netfront):
 *   toolstack: device/vif/<n>/{backend,backend-id,state=1,handle,mac}
 *   netback:   <backend>/feature-rx-copy = 1, state = 2 (InitWait)
 *   netfront:  one transaction: tx-ring-ref, rx-ring-ref, event-channel,
 *              request-rx-copy = 1, feature-rx-notify = 1, state = 3
 *   netback:   state = 4 (Connected);   netfront: state = 4, then posts
 *              its rx buffers (rx requests) and notifies
 */
#include "netfront.h"
#include "events.h"
#include "gnttab.h"
#include "lib.h"

#define CONNECT_TIMEOUT MILLISECS(2000)

static struct netfront_dev net_dev;
static char tx_ring_page[PAGE_SIZE] PAGE_ALIGNED;
static char rx_ring_page[PAGE_SIZE] PAGE_ALIGNED;
static char tx_pages[NET_TX_BUFS][PAGE_SIZE] PAGE_ALIGNED;
static char rx_pages[NET_RX_BUFS][PAGE_SIZE] PAGE_ALIGNED;

static XenbusState wait_for_state(const char *path, XenbusState state,
                                  XenbusState want, int at_least, uint64_t deadline)
{
    while (at_least ? state < want : state != want) {
        if (!xenbus_wait_for_state_change(path, &state, deadline)) {
            printk("netfront: timeout waiting for backend state %d (%s), still %d (%s)\n",
                   want, xenbus_state_name(want), state, xenbus_state_name(state));
            break;
        }
        printk("netfront: backend state -> %d (%s)\n", state, xenbus_state_name(state));
    }
    return state;
}

static void set_state(struct netfront_dev *dev, XenbusState state)
{
    if (xenbus_switch_state(XBT_NIL, dev->nodename, state))
        printk("netfront: writing state %d failed\n", state);
    else
        printk("netfront: frontend state -> %d (%s)\n", state, xenbus_state_name(state));
}

/* Put rx buffer `id` on the rx ring (not yet pushed). */
static void post_rx_buffer(struct netfront_dev *dev, unsigned id)
{
    netif_rx_request_t *req = RING_GET_REQUEST(&dev->rx, dev->rx.req_prod_pvt);
    req->id = id;
    req->gref = dev->rx_buffers[id].gref;
    dev->rx.req_prod_pvt++;
}

static void push_rx(struct netfront_dev *dev)
{
    int notify;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&dev->rx, notify);
    if (notify)
        notify_remote_via_evtchn(dev->evtchn);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        const char *end;
        mac[i] = (uint8_t)simple_strtoul(s, &end, 16);
        if (end == s || (i < 5 && *end != ':'))
            return -1;
        s = end + 1;
    }
    return 0;
}

struct netfront_dev *init_netfront(const char *nodename,
        void (*receive)(struct netfront_dev *, const uint8_t *, unsigned))
{
    struct netfront_dev *dev = &net_dev;
    netif_tx_sring_t *txs = (netif_tx_sring_t *)tx_ring_page;
    netif_rx_sring_t *rxs = (netif_rx_sring_t *)rx_ring_page;
    char path[192], buf[64];
    XenbusState bstate;
    xenbus_transaction_t xbt;
    int rc, retry;

    memset(dev, 0, sizeof(*dev));
    strncpy0(dev->nodename, nodename, sizeof(dev->nodename));
    dev->receive = receive;

    /* 1. What the toolstack wrote for us */
    snprintf(path, sizeof(path), "%s/backend", nodename);
    if ((rc = xenbus_read(XBT_NIL, path, dev->backend, sizeof(dev->backend)))) {
        printk("netfront: cannot read %s: %d\n", path, rc);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/backend-id", nodename);
    dev->dom = (domid_t)xenbus_read_integer(path);
    snprintf(path, sizeof(path), "%s/mac", nodename);
    if (xenbus_read(XBT_NIL, path, buf, sizeof(buf)) || parse_mac(buf, dev->mac)) {
        printk("netfront: no usable %s\n", path);
        return NULL;
    }
    printk("netfront: %s: backend %s (domain %u), mac %s\n",
           nodename, dev->backend, dev->dom, buf);

    /* 2. Wait for netback's InitWait (it has published its features). */
    snprintf(path, sizeof(path), "%s/state", dev->backend);
    xenbus_watch_path_token(path, "netfront-backend-state");
    bstate = xenbus_read_state(path);
    printk("netfront: backend state %d (%s)\n", bstate, xenbus_state_name(bstate));
    bstate = wait_for_state(path, bstate, XenbusStateInitWait, 1,
                            monotonic_clock() + CONNECT_TIMEOUT);
    if (bstate < XenbusStateInitWait)
        return NULL;
    snprintf(buf, sizeof(buf), "%s/feature-rx-copy", dev->backend);
    if (xenbus_read_integer(buf) != 1)
        printk("netfront: warning: backend does not offer feature-rx-copy\n");

    /* 3. Rings (granted writable), buffers, event channel */
    SHARED_RING_INIT(txs);
    FRONT_RING_INIT(&dev->tx, txs, PAGE_SIZE);
    SHARED_RING_INIT(rxs);
    FRONT_RING_INIT(&dev->rx, rxs, PAGE_SIZE);
    dev->tx_ring_ref = gnttab_grant_access(dev->dom, virt_to_mfn(txs), 0);
    dev->rx_ring_ref = gnttab_grant_access(dev->dom, virt_to_mfn(rxs), 0);

    for (unsigned i = 0; i < NET_TX_BUFS; i++)
        dev->tx_buffers[i].page = tx_pages[i];          /* granted per frame */
    /* rx buffers: granted once, writable, re-posted after each frame.
     * They are posted only once the backend is Connected (step 5): a
     * backend may attach to the ring at its current producer index. */
    for (unsigned i = 0; i < NET_RX_BUFS; i++) {
        dev->rx_buffers[i].page = rx_pages[i];
        dev->rx_buffers[i].gref = gnttab_grant_access(dev->dom, virt_to_mfn(rx_pages[i]), 0);
    }

    if ((rc = evtchn_alloc_unbound(dev->dom, &dev->evtchn))) {
        printk("netfront: EVTCHNOP_alloc_unbound failed: %d\n", rc);
        return NULL;
    }
    printk("netfront: tx-ring-ref %u, rx-ring-ref %u, event-channel %u\n",
           dev->tx_ring_ref, dev->rx_ring_ref, dev->evtchn);

    /* 4. Publish in one transaction */
    do {
        if ((rc = xenbus_transaction_start(&xbt))) {
            printk("netfront: transaction start failed: %d\n", rc);
            return NULL;
        }
        if ((rc = xenbus_printf(xbt, nodename, "tx-ring-ref", "%u", dev->tx_ring_ref)) ||
            (rc = xenbus_printf(xbt, nodename, "rx-ring-ref", "%u", dev->rx_ring_ref)) ||
            (rc = xenbus_printf(xbt, nodename, "event-channel", "%u", dev->evtchn)) ||
            (rc = xenbus_printf(xbt, nodename, "request-rx-copy", "%u", 1)) ||
            (rc = xenbus_printf(xbt, nodename, "feature-rx-notify", "%u", 1)) ||
            (rc = xenbus_printf(xbt, nodename, "state", "%u", XenbusStateInitialised))) {
            printk("netfront: writing to xenstore failed: %d\n", rc);
            xenbus_transaction_end(xbt, 1, &retry);
            return NULL;
        }
        if ((rc = xenbus_transaction_end(xbt, 0, &retry))) {
            printk("netfront: transaction end failed: %d\n", rc);
            return NULL;
        }
        if (retry)
            printk("netfront: transaction conflict (EAGAIN), retrying\n");
    } while (retry);
    printk("netfront: frontend state -> %d (%s)\n", XenbusStateInitialised,
           xenbus_state_name(XenbusStateInitialised));

    /* 5. Connected */
    bstate = wait_for_state(path, bstate, XenbusStateConnected, 0,
                            monotonic_clock() + CONNECT_TIMEOUT);
    if (bstate != XenbusStateConnected)
        return NULL;
    set_state(dev, XenbusStateConnected);

    /* 6. Give netback empty pages to copy received frames into (Linux
     *    xennet_alloc_rx_buffers): post them all, push, notify. */
    for (unsigned i = 0; i < NET_RX_BUFS; i++)
        post_rx_buffer(dev, i);
    push_rx(dev);
    printk("netfront: %u rx buffers posted\n", NET_RX_BUFS);
    return dev;
}

/* ---------------------------------------------------------------------------
 * Transmit
 * ------------------------------------------------------------------------- */
/* Reclaim tx buffers the backend is done with. */
static void netfront_tx_buf_gc(struct netfront_dev *dev)
{
    int more;
    do {
        RING_IDX prod = dev->tx.sring->rsp_prod, cons;
        rmb();
        for (cons = dev->tx.rsp_cons; cons != prod; cons++) {
            netif_tx_response_t *rsp = RING_GET_RESPONSE(&dev->tx, cons);
            unsigned id = rsp->id;
            if (rsp->status == NETIF_RSP_NULL)  /* slot used by an extra_info */
                continue;
            if (id >= NET_TX_BUFS || !dev->tx_buffers[id].busy) {
                printk("netfront: bogus tx response id %u\n", id);
                continue;
            }
            if (rsp->status != NETIF_RSP_OKAY)
                printk("netfront: tx id %u failed: status %d\n", id, rsp->status);
            gnttab_end_access(dev->tx_buffers[id].gref);
            dev->tx_buffers[id].busy = 0;
        }
        dev->tx.rsp_cons = prod;
        RING_FINAL_CHECK_FOR_RESPONSES(&dev->tx, more);
    } while (more);
}

static int tx_buffer_free(void *arg)
{
    struct netfront_dev *dev = arg;
    netfront_tx_buf_gc(dev);
    for (unsigned i = 0; i < NET_TX_BUFS; i++)
        if (!dev->tx_buffers[i].busy)
            return 1;
    return 0;
}

int netfront_xmit(struct netfront_dev *dev, const void *data, unsigned len)
{
    netif_tx_request_t *req;
    struct net_buffer *b;
    unsigned id;
    int notify;

    if (len > PAGE_SIZE)
        return -1;
    if (!block_until(tx_buffer_free, dev, monotonic_clock() + MILLISECS(100))) {
        printk("netfront: no free tx buffer (backend not answering?)\n");
        return -1;
    }
    for (id = 0; dev->tx_buffers[id].busy; id++)
        ;
    b = &dev->tx_buffers[id];
    memcpy(b->page, data, len);
    b->gref = gnttab_grant_access(dev->dom, virt_to_mfn(b->page), 1);  /* read-only */
    b->busy = 1;

    req = RING_GET_REQUEST(&dev->tx, dev->tx.req_prod_pvt);
    req->gref = b->gref;
    req->offset = 0;
    req->flags = 0;                     /* no checksum offload, no more fragments */
    req->id = id;
    req->size = len;
    dev->tx.req_prod_pvt++;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&dev->tx, notify);
    if (notify)
        notify_remote_via_evtchn(dev->evtchn);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Receive
 * ------------------------------------------------------------------------- */
int netfront_poll(struct netfront_dev *dev)
{
    int more, frames = 0;

    netfront_tx_buf_gc(dev);
    do {
        RING_IDX prod = dev->rx.sring->rsp_prod, cons;
        rmb();                                  /* responses up to prod */
        for (cons = dev->rx.rsp_cons; cons != prod; cons++) {
            netif_rx_response_t *rsp = RING_GET_RESPONSE(&dev->rx, cons);
            unsigned id = rsp->id;

            if (id >= NET_RX_BUFS) {
                printk("netfront: bogus rx response id %u\n", id);
                continue;
            }
            if (rsp->status <= 0)
                printk("netfront: rx id %u error %d\n", id, rsp->status);
            else if (rsp->flags & (NETRXF_more_data | NETRXF_extra_info))
                printk("netfront: rx id %u: multi-slot frame not supported, dropped\n", id);
            else if (rsp->offset + (unsigned)rsp->status > PAGE_SIZE)
                printk("netfront: rx id %u: bad offset %u size %d\n", id,
                       rsp->offset, rsp->status);
            else {
                frames++;
                dev->rx.rsp_cons = cons + 1;    /* handler may transmit */
                dev->receive(dev, (uint8_t *)dev->rx_buffers[id].page + rsp->offset,
                             rsp->status);
            }
            post_rx_buffer(dev, id);            /* same page, same grant */
        }
        dev->rx.rsp_cons = prod;
        push_rx(dev);
        RING_FINAL_CHECK_FOR_RESPONSES(&dev->rx, more);
    } while (more);
    return frames;
}

int netfront_has_work(void *arg)
{
    struct netfront_dev *dev = arg;
    return RING_HAS_UNCONSUMED_RESPONSES(&dev->rx) ||
           RING_HAS_UNCONSUMED_RESPONSES(&dev->tx);
}

void shutdown_netfront(struct netfront_dev *dev)
{
    char path[192];
    XenbusState bstate;

    snprintf(path, sizeof(path), "%s/state", dev->backend);
    bstate = xenbus_read_state(path);
    set_state(dev, XenbusStateClosing);
    bstate = wait_for_state(path, bstate, XenbusStateClosing, 1,
                            monotonic_clock() + MILLISECS(200));
    set_state(dev, XenbusStateClosed);
    wait_for_state(path, bstate, XenbusStateClosed, 1, monotonic_clock() + MILLISECS(200));
}
