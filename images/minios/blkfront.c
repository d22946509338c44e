/* blkfront.c -- xenlab mini-OS: the block front-end
 * (Mini-OS: blkfront.c; Linux: drivers/block/xen-blkfront.c).
 *
 * The split-driver handshake, through xenstore:
 *
 *   toolstack: device/vbd/<id>/{backend,backend-id,state=1,virtual-device,...}
 *   blkback:   <backend>/{sectors,sector-size,info,feature-flush-cache},
 *              state = 2 (InitWait)
 *   blkfront:  ring page (blkif.h's blkif_sring) granted to the backend,
 *              an unbound event channel for it, then in ONE transaction
 *              ring-ref, event-channel, protocol = "x86_64-abi", state = 3
 *   blkback:   maps the ring, binds the channel, state = 4 (Connected)
 *   blkfront:  reads sectors & co., state = 4 (Connected)
 *
 * I/O: a struct blkif_request per operation; each data page is granted to
 * the backend (read-only for writes: it only has to read our data), named
 * by gref + first_sect..last_sect (512-byte units within the page).
 * Responses carry the request's id and a status (BLKIF_RSP_OKAY = 0).
 */
#include "blkfront.h"
#include "events.h"
#include "gnttab.h"
#include "lib.h"

#define CONNECT_TIMEOUT MILLISECS(2000)
#define IO_TIMEOUT      MILLISECS(2000)

static struct blkfront_dev blk_dev;             /* one disk is enough here */
static char blk_ring_page[PAGE_SIZE] PAGE_ALIGNED;

/* Watch `path` (a state node) and print its transitions until it reaches
 * `want` (or a state >= `want` if at_least).  Returns the final state. */
static XenbusState wait_for_state(const char *who, const char *path, XenbusState state,
                                  XenbusState want, int at_least, uint64_t deadline)
{
    while (at_least ? state < want : state != want) {
        if (!xenbus_wait_for_state_change(path, &state, deadline)) {
            printk("blkfront: timeout waiting for %s state %d (%s), still %d (%s)\n",
                   who, want, xenbus_state_name(want), state, xenbus_state_name(state));
            break;
        }
        printk("blkfront: %s state -> %d (%s)\n", who, state, xenbus_state_name(state));
    }
    return state;
}

static void set_state(struct blkfront_dev *dev, XenbusState state)
{
    int rc = xenbus_switch_state(XBT_NIL, dev->nodename, state);
    if (rc)
        printk("blkfront: writing state %d failed: %d\n", state, rc);
    else
        printk("blkfront: frontend state -> %d (%s)\n", state, xenbus_state_name(state));
}

struct blkfront_dev *init_blkfront(const char *nodename, struct blkfront_info *info)
{
    struct blkfront_dev *dev = &blk_dev;
    blkif_sring_t *s = (blkif_sring_t *)blk_ring_page;
    char path[192], buf[64];
    XenbusState bstate, fstate;
    xenbus_transaction_t xbt;
    int rc, retry;

    memset(dev, 0, sizeof(*dev));
    strncpy0(dev->nodename, nodename, sizeof(dev->nodename));

    /* 1. What the toolstack wrote for us */
    snprintf(path, sizeof(path), "%s/backend", nodename);
    if ((rc = xenbus_read(XBT_NIL, path, dev->backend, sizeof(dev->backend)))) {
        printk("blkfront: cannot read %s: %d\n", path, rc);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/backend-id", nodename);
    dev->dom = (domid_t)xenbus_read_integer(path);
    snprintf(path, sizeof(path), "%s/virtual-device", nodename);
    dev->handle = (unsigned)xenbus_read_integer(path);
    snprintf(path, sizeof(path), "%s/state", nodename);
    fstate = xenbus_read_state(path);
    printk("blkfront: %s: backend %s (domain %u), frontend state %d (%s)\n",
           nodename, dev->backend, dev->dom, fstate, xenbus_state_name(fstate));

    /* 2. Watch the backend's state; wait for InitWait (backend ready to
     *    be told about our ring). */
    snprintf(path, sizeof(path), "%s/state", dev->backend);
    xenbus_watch_path_token(path, "blkfront-backend-state");
    bstate = xenbus_read_state(path);
    printk("blkfront: backend state %d (%s)\n", bstate, xenbus_state_name(bstate));
    bstate = wait_for_state("backend", path, bstate, XenbusStateInitWait, 1,
                            monotonic_clock() + CONNECT_TIMEOUT);
    if (bstate < XenbusStateInitWait)
        return NULL;

    /* 3. The shared ring, granted to the backend (writable: it writes
     *    responses), and an event channel the backend will bind to. */
    SHARED_RING_INIT(s);
    FRONT_RING_INIT(&dev->ring, s, PAGE_SIZE);
    dev->ring_ref = gnttab_grant_access(dev->dom, virt_to_mfn(s), 0);
    if ((rc = evtchn_alloc_unbound(dev->dom, &dev->evtchn))) {
        printk("blkfront: EVTCHNOP_alloc_unbound failed: %d\n", rc);
        return NULL;
    }
    printk("blkfront: ring-ref %u (mfn %lx), event-channel %u, %u ring slots\n",
           dev->ring_ref, virt_to_mfn(s), dev->evtchn, RING_SIZE(&dev->ring));

    /* 4. Publish them in one transaction (Linux talk_to_blkback). */
    do {
        if ((rc = xenbus_transaction_start(&xbt))) {
            printk("blkfront: transaction start failed: %d\n", rc);
            return NULL;
        }
        if ((rc = xenbus_printf(xbt, nodename, "ring-ref", "%u", dev->ring_ref)) ||
            (rc = xenbus_printf(xbt, nodename, "event-channel", "%u", dev->evtchn)) ||
            (rc = xenbus_printf(xbt, nodename, "protocol", "%s", XEN_IO_PROTO_ABI_NATIVE)) ||
            (rc = xenbus_printf(xbt, nodename, "state", "%u", XenbusStateInitialised))) {
            printk("blkfront: writing to xenstore failed: %d\n", rc);
            xenbus_transaction_end(xbt, 1, &retry);
            return NULL;
        }
        if ((rc = xenbus_transaction_end(xbt, 0, &retry))) {
            printk("blkfront: transaction end failed: %d\n", rc);
            return NULL;
        }
        if (retry)
            printk("blkfront: transaction conflict (EAGAIN), retrying\n");
    } while (retry);
    printk("blkfront: frontend state -> %d (%s)\n", XenbusStateInitialised,
           xenbus_state_name(XenbusStateInitialised));

    /* 5. Wait for the backend to connect. */
    bstate = wait_for_state("backend", path, bstate, XenbusStateConnected, 0,
                            monotonic_clock() + CONNECT_TIMEOUT);
    if (bstate != XenbusStateConnected)
        return NULL;

    /* 6. The disk's geometry, from the backend's directory */
    snprintf(path, sizeof(path), "%s/sectors", dev->backend);
    dev->info.sectors = (uint64_t)xenbus_read_integer(path);
    snprintf(path, sizeof(path), "%s/sector-size", dev->backend);
    dev->info.sector_size = (unsigned)xenbus_read_integer(path);
    if (dev->info.sector_size < 512 || dev->info.sector_size > PAGE_SIZE ||
        (dev->info.sector_size & 511)) {
        printk("blkfront: odd sector-size %u, assuming 512\n", dev->info.sector_size);
        dev->info.sector_size = 512;
    }
    snprintf(path, sizeof(path), "%s/info", dev->backend);
    dev->info.info = (unsigned)xenbus_read_integer(path);
    snprintf(path, sizeof(path), "%s/feature-flush-cache", dev->backend);
    dev->info.flush = xenbus_read_integer(path) == 1;
    snprintf(path, sizeof(path), "%s/mode", dev->backend);
    dev->info.mode = (xenbus_read(XBT_NIL, path, buf, sizeof(buf)) == 0 && buf[0] == 'r')
                     ? 'r' : 'w';

    set_state(dev, XenbusStateConnected);
    *info = dev->info;
    return dev;
}

/* ---------------------------------------------------------------------------
 * Requests and responses
 * ------------------------------------------------------------------------- */
static void blkfront_push(struct blkfront_dev *dev)
{
    int notify;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&dev->ring, notify);
    if (notify)
        notify_remote_via_evtchn(dev->evtchn);
}

static int blk_responses(void *arg)
{
    struct blkfront_dev *dev = arg;
    int more;
    /* Also sets rsp_event so the backend notifies us of the next one. */
    RING_FINAL_CHECK_FOR_RESPONSES(&dev->ring, more);
    return more;
}

/* Wait for the response to request `id`; returns its status. */
static int blkfront_wait(struct blkfront_dev *dev, uint64_t id, uint8_t op)
{
    for (;;) {
        RING_IDX cons, prod;

        if (!block_until(blk_responses, dev, monotonic_clock() + IO_TIMEOUT)) {
            printk("blkfront: no response to request %lu (op %u)\n",
                   (unsigned long)id, op);
            return BLKIF_RSP_ERROR;
        }
        prod = dev->ring.sring->rsp_prod;
        rmb();                                  /* see responses up to prod */
        for (cons = dev->ring.rsp_cons; cons != prod; cons++) {
            blkif_response_t *rsp = RING_GET_RESPONSE(&dev->ring, cons);
            uint64_t rid = rsp->id;
            int status = rsp->status;
            dev->ring.rsp_cons = cons + 1;
            if (rid == id)
                return status;
            printk("blkfront: unexpected response id %lu\n", (unsigned long)rid);
        }
    }
}

int blkfront_io(struct blkfront_dev *dev, int op, uint64_t sector, void *buf,
                unsigned nsect)
{
    static uint64_t next_id = 1;
    unsigned per_page = PAGE_SIZE / dev->info.sector_size;
    blkif_request_t *req;
    grant_ref_t gref;
    uint64_t id = next_id++;
    int status;

    if (((unsigned long)buf & (PAGE_SIZE - 1)) || nsect == 0 || nsect > per_page) {
        printk("blkfront: bad request (buffer %p, %u sectors)\n", buf, nsect);
        return BLKIF_RSP_ERROR;
    }
    /* The backend reads our page for a write, writes it for a read. */
    gref = gnttab_grant_access(dev->dom, virt_to_mfn(buf), op == BLKIF_OP_WRITE);

    req = RING_GET_REQUEST(&dev->ring, dev->ring.req_prod_pvt);
    req->operation = op;
    req->nr_segments = 1;
    req->handle = dev->handle;
    req->id = id;
    req->sector_number = sector;
    /* first_sect/last_sect count in 512-byte units inside the page */
    req->seg[0].gref = gref;
    req->seg[0].first_sect = 0;
    req->seg[0].last_sect = nsect * (dev->info.sector_size / 512) - 1;
    dev->ring.req_prod_pvt++;
    blkfront_push(dev);

    status = blkfront_wait(dev, id, op);
    gnttab_end_access(gref);
    return status;
}

int blkfront_flush(struct blkfront_dev *dev)
{
    static uint64_t flush_id = 1ULL << 32;      /* distinct from I/O ids */
    blkif_request_t *req = RING_GET_REQUEST(&dev->ring, dev->ring.req_prod_pvt);
    uint64_t id = flush_id++;

    req->operation = BLKIF_OP_FLUSH_DISKCACHE;
    req->nr_segments = 0;
    req->handle = dev->handle;
    req->id = id;
    req->sector_number = 0;
    dev->ring.req_prod_pvt++;
    blkfront_push(dev);
    return blkfront_wait(dev, id, BLKIF_OP_FLUSH_DISKCACHE);
}

/* Close the device: Closing (5), wait for the backend to follow, Closed (6)
 * (Mini-OS shutdown_blkfront), then take back the ring and the channel. */
void shutdown_blkfront(struct blkfront_dev *dev)
{
    char path[192];
    XenbusState bstate;

    snprintf(path, sizeof(path), "%s/state", dev->backend);
    bstate = xenbus_read_state(path);

    set_state(dev, XenbusStateClosing);
    bstate = wait_for_state("backend", path, bstate, XenbusStateClosing, 1,
                            monotonic_clock() + CONNECT_TIMEOUT);
    set_state(dev, XenbusStateClosed);
    wait_for_state("backend", path, bstate, XenbusStateClosed, 1,
                   monotonic_clock() + CONNECT_TIMEOUT);

    if (!gnttab_end_access(dev->ring_ref))
        printk("blkfront: ring page still mapped by the backend\n");
    evtchn_close(dev->evtchn);
}
