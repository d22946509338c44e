/* xenbus.c -- xenlab mini-OS: a xenstore client on the store ring
 * (Mini-OS: xenbus.c; Linux: drivers/xen/xenbus/xenbus_comms.c, xenbus_xs.c).
 *
 * The store page is struct xenstore_domain_interface (<xen/io/xs_wire.h>):
 * two byte rings of 1024 bytes.  We write requests into req[] (producer
 * req_prod, xenstored consumes req_cons) and read replies -- and
 * unsolicited XS_WATCH_EVENT messages -- from rsp[] (xenstored produces
 * rsp_prod, we consume rsp_cons).  Each message is a struct xsd_sockmsg
 * header {type, req_id, tx_id, len} followed by len bytes of payload
 * (NUL-separated strings).  After changing an index we notify xenstored on
 * start_info->store_evtchn.
 *
 * One request is outstanding at a time (no threads here), so a reply is
 * simply "the next non-watch message"; we still check req_id.
 *
 * Payloads, as Linux's xenbus_xs.c sends them:
 *   XS_READ, XS_DIRECTORY     "path\0"                  reply: value / "a\0b\0"
 *   XS_WRITE                  "path\0" "value" (no NUL) reply: "OK\0"
 *   XS_WATCH                  "path\0token\0"           reply: "OK\0"
 *   XS_TRANSACTION_START      "\0"                      reply: "<id>\0"
 *   XS_TRANSACTION_END        "T\0" commit / "F\0" abort (header tx_id = id)
 *   XS_WATCH_EVENT (from xenstored)  "path\0token\0"
 *   XS_ERROR (reply)          "EAGAIN\0" etc.
 */
#include "xenbus.h"                   /* hypervisor.h first: stdint, barriers */
#include <xen/io/xs_wire.h>
#include "events.h"
#include "lib.h"

#define XENBUS_REPLY_TIMEOUT MILLISECS(1000)

static struct xenstore_domain_interface *xs_ring;
static evtchn_port_t xs_port;
static uint32_t next_req_id;

/* The message being received (possibly in pieces) */
static struct xsd_sockmsg in_hdr;
static char in_body[XENSTORE_PAYLOAD_MAX + 1];
static uint32_t in_got;                         /* bytes of header+body so far */

/* The last complete reply, and a counter of watch events */
static struct xsd_sockmsg reply_hdr;
static char reply_body[XENSTORE_PAYLOAD_MAX + 1];
static int reply_ready;
static unsigned watch_events;

void init_xenbus(void)
{
    xs_ring = mfn_to_virt(start_info->store_mfn);
    xs_port = start_info->store_evtchn;
    if (!xs_ring) {
        printk("minios: store page (mfn %lx) not in our memory\n",
               (unsigned long)start_info->store_mfn);
        shutdown(SHUTDOWN_crash);
    }
}

/* Take whatever xenstored has put in rsp[]; dispatch complete messages. */
static void xs_process_responses(void)
{
    struct xenstore_domain_interface *r = xs_ring;

    for (;;) {
        XENSTORE_RING_IDX cons = r->rsp_cons, prod = r->rsp_prod;
        uint32_t want, n = 0;

        rmb();                                  /* index before the data */
        if (cons == prod)
            return;
        if (in_got < sizeof(in_hdr))
            want = sizeof(in_hdr) - in_got;
        else
            want = sizeof(in_hdr) + in_hdr.len - in_got;
        while (n < want && cons != prod) {
            char c = r->rsp[MASK_XENSTORE_IDX(cons++)];
            if (in_got < sizeof(in_hdr))
                ((char *)&in_hdr)[in_got] = c;
            else if (in_got - sizeof(in_hdr) < XENSTORE_PAYLOAD_MAX)
                in_body[in_got - sizeof(in_hdr)] = c;   /* oversize: dropped */
            in_got++;
            n++;
        }
        mb();                                   /* finish reading before freeing */
        r->rsp_cons = cons;
        notify_remote_via_evtchn(xs_port);

        if (in_got < sizeof(in_hdr) || in_got < sizeof(in_hdr) + in_hdr.len)
            continue;                           /* message not complete yet */
        {
            uint32_t len = in_hdr.len < XENSTORE_PAYLOAD_MAX ? in_hdr.len : XENSTORE_PAYLOAD_MAX;
            in_body[len] = '\0';
            if (in_hdr.type == XS_WATCH_EVENT) {
                watch_events++;                 /* waiters re-read their nodes */
            } else {
                reply_hdr = in_hdr;
                memcpy(reply_body, in_body, len + 1);
                reply_ready = 1;
            }
            in_got = 0;
        }
    }
}

static int xs_req_space(void *arg)
{
    (void)arg;
    return xs_ring->req_prod - xs_ring->req_cons < XENSTORE_RING_SIZE;
}

/* Copy bytes into req[], waiting for room; notify after each chunk. */
static void xs_write_bytes(const void *data, uint32_t len)
{
    struct xenstore_domain_interface *r = xs_ring;
    const char *p = data;

    while (len) {
        XENSTORE_RING_IDX prod;

        mb();
        if (!xs_req_space(NULL)) {
            block_until(xs_req_space, NULL, 0);
            continue;
        }
        prod = r->req_prod;
        while (len && prod - r->req_cons < XENSTORE_RING_SIZE) {
            r->req[MASK_XENSTORE_IDX(prod++)] = *p++;
            len--;
        }
        wmb();                                  /* data before the index */
        r->req_prod = prod;
        notify_remote_via_evtchn(xs_port);
    }
}

static int xs_reply_arrived(void *arg)
{
    (void)arg;
    xs_process_responses();
    return reply_ready;
}

struct write_req { const void *data; uint32_t len; };

/* Send one request made of `nr` pieces and wait for its reply. */
static int xs_talkv(xenbus_transaction_t xbt, uint32_t type,
                    const struct write_req *req, unsigned nr,
                    char *buf, size_t size)
{
    struct xsd_sockmsg hdr = { .type = type, .req_id = ++next_req_id, .tx_id = xbt };

    for (unsigned i = 0; i < nr; i++)
        hdr.len += req[i].len;
    reply_ready = 0;
    xs_write_bytes(&hdr, sizeof(hdr));
    for (unsigned i = 0; i < nr; i++)
        xs_write_bytes(req[i].data, req[i].len);

    for (;;) {
        if (!block_until(xs_reply_arrived, NULL, monotonic_clock() + XENBUS_REPLY_TIMEOUT)) {
            printk("xenbus: no reply from xenstored (request type %u id %u)\n",
                   type, hdr.req_id);
            return -XEN_ETIMEDOUT;
        }
        if (reply_hdr.req_id == hdr.req_id)
            break;
        reply_ready = 0;                        /* a stale reply: ignore */
    }
    reply_ready = 0;
    if (reply_hdr.type == XS_ERROR)
        return -xen_errno_value(reply_body);
    if (reply_hdr.type != type) {
        printk("xenbus: reply type %u to request type %u\n", reply_hdr.type, type);
        return -XEN_EIO;
    }
    if (buf && size) {
        size_t n = reply_hdr.len < size - 1 ? reply_hdr.len : size - 1;
        memcpy(buf, reply_body, n);
        buf[n] = '\0';
    }
    return 0;
}

int xenbus_read(xenbus_transaction_t xbt, const char *path, char *buf, size_t size)
{
    struct write_req req[] = { { path, strlen(path) + 1 } };
    return xs_talkv(xbt, XS_READ, req, 1, buf, size);
}

int xenbus_write(xenbus_transaction_t xbt, const char *path, const char *value)
{
    struct write_req req[] = { { path, strlen(path) + 1 }, { value, strlen(value) } };
    return xs_talkv(xbt, XS_WRITE, req, 2, NULL, 0);
}

int xenbus_printf(xenbus_transaction_t xbt, const char *node, const char *key,
                  const char *fmt, ...)
{
    char path[256], value[256];
    va_list ap;

    snprintf(path, sizeof(path), "%s/%s", node, key);
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    return xenbus_write(xbt, path, value);
}

int xenbus_ls(xenbus_transaction_t xbt, const char *path, char *buf, size_t size,
              unsigned *count)
{
    struct write_req req[] = { { path, strlen(path) + 1 } };
    int rc = xs_talkv(xbt, XS_DIRECTORY, req, 1, buf, size);
    size_t len = reply_hdr.len < size - 1 ? reply_hdr.len : size - 1;

    *count = 0;
    if (rc)
        return rc;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\0')
            (*count)++;
    return 0;
}

int xenbus_watch_path_token(const char *path, const char *token)
{
    struct write_req req[] = { { path, strlen(path) + 1 }, { token, strlen(token) + 1 } };
    return xs_talkv(XBT_NIL, XS_WATCH, req, 2, NULL, 0);
}

int xenbus_transaction_start(xenbus_transaction_t *xbt)
{
    char id[16];
    struct write_req req[] = { { "", 1 } };
    int rc = xs_talkv(XBT_NIL, XS_TRANSACTION_START, req, 1, id, sizeof(id));
    if (rc)
        return rc;
    *xbt = simple_strtoul(id, NULL, 10);
    return 0;
}

int xenbus_transaction_end(xenbus_transaction_t xbt, int abort, int *retry)
{
    struct write_req req[] = { { abort ? "F" : "T", 2 } };
    int rc = xs_talkv(xbt, XS_TRANSACTION_END, req, 1, NULL, 0);

    *retry = (rc == -XEN_EAGAIN);
    return *retry ? 0 : rc;
}

long xenbus_read_integer(const char *path)
{
    char buf[32];
    const char *end;
    long v;

    if (xenbus_read(XBT_NIL, path, buf, sizeof(buf)))
        return -1;
    v = simple_strtoul(buf, &end, 10);
    return end == buf ? -1 : v;
}

XenbusState xenbus_read_state(const char *path)
{
    long v = xenbus_read_integer(path);
    return v < 0 ? XenbusStateUnknown : (XenbusState)v;
}

const char *xenbus_state_name(int state)
{
    static const char *const names[] = {
        "Unknown", "Initialising", "InitWait", "Initialised",
        "Connected", "Closing", "Closed", "Reconfiguring", "Reconfigured",
    };
    return state >= 0 && state < (int)ARRAY_SIZE(names) ? names[state] : "?";
}

static int watch_fired(void *arg)
{
    xs_process_responses();
    return watch_events != *(unsigned *)arg;
}

/* Re-read the node after every watch event (and every 10 ms in case a watch
 * event is lost) until it changes. */
int xenbus_wait_for_state_change(const char *path, XenbusState *state,
                                 uint64_t deadline_ns)
{
    for (;;) {
        unsigned seen = watch_events;
        XenbusState now = xenbus_read_state(path);
        uint64_t t;

        if (now != *state) {
            *state = now;
            return 1;
        }
        t = monotonic_clock();
        if (deadline_ns && t >= deadline_ns)
            return 0;
        t += MILLISECS(10);
        block_until(watch_fired, &seen, deadline_ns && deadline_ns < t ? deadline_ns : t);
    }
}

int xenbus_switch_state(xenbus_transaction_t xbt, const char *nodename,
                        XenbusState state)
{
    return xenbus_printf(xbt, nodename, "state", "%u", (unsigned)state);
}
