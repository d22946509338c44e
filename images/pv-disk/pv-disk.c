/* pv-disk: a PV guest with a disk -- blkfront, written with xenlab mini-OS.
 *
 * Build (from the repository root):   make -C images
 *   (compiles the images/minios/ sources and this file with pv-pubhdr's CFLAGS and
 *    links them with include/pv-kernel.lds into pv-disk/pv-disk.elf)
 * Run:  xenlab run images/pv-disk.cfg   -- this WRITES images/pv-disk.img
 *       (sector 100); restore it with:  make -C images pv-disk.img
 *
 * What it shows: the real split-driver protocol of Xen's block devices.
 *   1. blkfront finds its device in xenstore (device/vbd/<id>), waits for
 *      blkback's InitWait, shares a ring page (grant) and an event channel,
 *      publishes ring-ref / event-channel / protocol, goes Initialised,
 *      waits for Connected (every XenbusState is printed);
 *   2. I/O: a 512-byte write to sector 100, a cache flush, a read back of
 *      sector 100 into another page, a comparison, a read of sector 0;
 *   3. it closes the device (Closing -> Closed) and powers off.
 *
 * Options on the kernel command line (cmdline = "..." in the .cfg; without
 * them the guest does exactly steps 1-3):
 *   bench=N      after step 2, N more requests of one 4 KiB page (8 sectors)
 *                each, alternately writes and reads, in sectors 256..2047
 *   depth=D      keep up to D requests in flight on the ring (default 8,
 *                at most the ring's 32 slots): push D requests, check once
 *                whether the backend wants a notification, wait for the D
 *                responses
 *   nosuppress   notify the backend after every single request, whether its
 *                req_event asks for it or not: what the ring protocol saves
 */
#include "hypervisor.h"
#include "lib.h"
#include "xenbus.h"
#include "blkfront.h"
#include "events.h"
#include "gnttab.h"

MINIOS_GUEST_OS("xenlab-pv-disk");

#define TEST_SECTOR 100

/* The bench (cmd_line "bench=N depth=D nosuppress") */
#define BENCH_MAX_DEPTH     32          /* the slots of a one-page blkif ring */
#define BENCH_FIRST_SECTOR  256         /* clear of sector 0 and sector 100 */
#define BENCH_SECTORS       8           /* one 4 KiB page per request */
#define BENCH_STRIDE        37          /* pages apart: spreads requests over the disk */
#define BENCH_ID_BASE       (1ULL << 40) /* distinct from blkfront_io's ids */

static char write_page[PAGE_SIZE] PAGE_ALIGNED;
static char read_page[PAGE_SIZE] PAGE_ALIGNED;
static char bench_pages[BENCH_MAX_DEPTH][PAGE_SIZE] PAGE_ALIGNED;  /* one per slot */

/* 512 bytes: "xenlab pv-disk sector 100 pattern NN\n" lines, numbered. */
static void make_pattern(char *buf)
{
    unsigned pos = 0, n = 0;
    while (pos < 512) {
        char line[48];
        int len = snprintf(line, sizeof(line),
                           "xenlab pv-disk sector %u pattern %02u\n", TEST_SECTOR, n++);
        for (int i = 0; i < len && pos < 512; i++)
            buf[pos++] = line[i];
    }
}

static const char *status_name(int status)
{
    return status == BLKIF_RSP_OKAY ? "OKAY" :
           status == BLKIF_RSP_EOPNOTSUPP ? "EOPNOTSUPP" : "ERROR";
}

/* ---------------------------------------------------------------------------
 * Command-line options
 * ------------------------------------------------------------------------- */

/* Is `word` on the command line (alone, or as "word=...")?  Returns a
 * pointer to what follows it, or NULL. */
static const char *cmdline_find(const char *cmdline, const char *word)
{
    size_t len = strlen(word);
    for (const char *p = cmdline; *p; p++)
        if ((p == cmdline || p[-1] == ' ') && !strncmp(p, word, len) &&
            (p[len] == '\0' || p[len] == ' ' || p[len] == '='))
            return p + len;
    return NULL;
}

/* The number of "name=N", or `dflt` when absent. */
static unsigned long cmdline_number(const char *cmdline, const char *name, unsigned long dflt)
{
    const char *v = cmdline_find(cmdline, name);
    return v && *v == '=' ? simple_strtoul(v + 1, NULL, 10) : dflt;
}

/* ---------------------------------------------------------------------------
 * The bench: many requests in flight at once
 *
 * blkfront_io() sends one request and waits for its response.  Here we use
 * the ring as a real disk driver does: put `depth` requests on it, publish
 * them with one RING_PUSH_REQUESTS_AND_CHECK_NOTIFY -- which says whether
 * the backend asked (req_event) to be told -- and only then wait for the
 * responses.  With `nosuppress` we notify after every request instead.
 * ------------------------------------------------------------------------- */
struct bench_result {
    unsigned done;          /* responses received */
    unsigned failed;        /* ... whose status was not OKAY */
    unsigned notified;      /* event-channel notifications sent to the backend */
};

static int bench_responses(void *arg)
{
    struct blkfront_dev *dev = arg;
    int more;
    /* Also sets rsp_event: "notify me at the next response". */
    RING_FINAL_CHECK_FOR_RESPONSES(&dev->ring, more);
    return more;
}

/* Queue one request (not yet visible to the backend); returns its grant. */
static grant_ref_t bench_queue(struct blkfront_dev *dev, uint64_t id, int op,
                               uint64_t sector, void *page)
{
    blkif_request_t *req = RING_GET_REQUEST(&dev->ring, dev->ring.req_prod_pvt);
    grant_ref_t gref = gnttab_grant_access(dev->dom, virt_to_mfn(page),
                                           op == BLKIF_OP_WRITE);
    req->operation = op;
    req->nr_segments = 1;
    req->handle = dev->handle;
    req->id = id;
    req->sector_number = sector;
    req->seg[0].gref = gref;
    req->seg[0].first_sect = 0;
    req->seg[0].last_sect = BENCH_SECTORS - 1;
    dev->ring.req_prod_pvt++;
    return gref;
}

static void run_bench(struct blkfront_dev *dev, const struct blkfront_info *info,
                      unsigned n, unsigned depth, int suppress, struct bench_result *res)
{
    unsigned pages = (unsigned)((info->sectors - BENCH_FIRST_SECTOR) / BENCH_SECTORS);
    grant_ref_t grefs[BENCH_MAX_DEPTH];
    unsigned i = 0;

    while (i < n) {
        unsigned batch = n - i < depth ? n - i : depth, got = 0;
        int notify;

        /* 1. Up to `depth` requests, each with its own page: even request
         *    numbers write (the page filled with the number), odd ones read. */
        for (unsigned k = 0; k < batch; k++) {
            unsigned r = i + k;
            int op = (r & 1) ? BLKIF_OP_READ : BLKIF_OP_WRITE;
            uint64_t sector = BENCH_FIRST_SECTOR +
                              (uint64_t)((r * BENCH_STRIDE) % pages) * BENCH_SECTORS;
            if (op == BLKIF_OP_WRITE)
                memset(bench_pages[k], 'A' + r % 26, PAGE_SIZE);
            grefs[k] = bench_queue(dev, BENCH_ID_BASE + r, op, sector, bench_pages[k]);
            if (!suppress) {
                /* Without suppression: publish and notify at every request. */
                RING_PUSH_REQUESTS(&dev->ring);
                notify_remote_via_evtchn(dev->evtchn);
                res->notified++;
            }
        }

        /* 2. Publish them all at once; notify only if the backend asked. */
        if (suppress) {
            RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&dev->ring, notify);
            if (notify) {
                notify_remote_via_evtchn(dev->evtchn);
                res->notified++;
            }
        }

        /* 3. Wait for the batch's responses (in any order: match the ids). */
        while (got < batch) {
            RING_IDX cons, prod;

            if (!block_until(bench_responses, dev, monotonic_clock() + MILLISECS(2000))) {
                printk("pv-disk: bench: no response (%u of %u)\n", got, batch);
                return;
            }
            prod = dev->ring.sring->rsp_prod;
            rmb();                              /* see responses up to prod */
            for (cons = dev->ring.rsp_cons; cons != prod; cons++) {
                blkif_response_t *rsp = RING_GET_RESPONSE(&dev->ring, cons);
                uint64_t k = rsp->id - BENCH_ID_BASE - i;
                dev->ring.rsp_cons = cons + 1;
                if (k >= batch) {
                    printk("pv-disk: bench: unexpected response id %lu\n",
                           (unsigned long)rsp->id);
                    continue;
                }
                gnttab_end_access(grefs[k]);
                if (rsp->status != BLKIF_RSP_OKAY)
                    res->failed++;
                res->done++;
                got++;
            }
        }
        i += batch;
    }
}

int app_main(start_info_t *si)
{
    struct blkfront_info info;
    struct blkfront_dev *dev;
    char list[256], node[64], first[33];
    unsigned count;
    const char *cmdline = (const char *)si->cmd_line;
    unsigned long bench_n = cmdline_number(cmdline, "bench", 0);
    unsigned long depth = cmdline_number(cmdline, "depth", 8);
    int suppress = cmdline_find(cmdline, "nosuppress") == NULL;
    int rc, domid;

    printk("pv-disk: xenlab mini-OS block front-end demo\n");
    domid = (int)xenbus_read_integer("domid");
    printk("pv-disk: I am domain %d\n", domid);

    /* Which virtual disks did the toolstack give us?  (device/vbd/51712
     * for xvda: 202 << 8 | 0.)  Take the first. */
    rc = xenbus_ls(XBT_NIL, "device/vbd", list, sizeof(list), &count);
    if (rc || count == 0) {
        printk("pv-disk: no device/vbd in xenstore (%d)\n", rc);
        return 1;
    }
    snprintf(node, sizeof(node), "device/vbd/%s", list);
    printk("pv-disk: %u disk(s), using %s\n", count, node);

    dev = init_blkfront(node, &info);
    if (!dev) {
        printk("pv-disk: could not connect the disk\n");
        return 1;
    }
    printk("pv-disk: disk size %lu sectors of %u bytes (%lu KiB), mode %c, info %u, "
           "flush %s\n", (unsigned long)info.sectors, info.sector_size,
           (unsigned long)(info.sectors * info.sector_size / 1024), info.mode,
           info.info, info.flush ? "yes" : "no");

    /* Write the pattern to sector 100 */
    make_pattern(write_page);
    rc = blkfront_io(dev, BLKIF_OP_WRITE, TEST_SECTOR, write_page, 1);
    printk("pv-disk: write sector %u: %s\n", TEST_SECTOR, status_name(rc));

    if (info.flush) {
        rc = blkfront_flush(dev);
        printk("pv-disk: flush: %s\n", status_name(rc));
    }

    /* Read it back into another page and compare */
    memset(read_page, 0, sizeof(read_page));
    rc = blkfront_io(dev, BLKIF_OP_READ, TEST_SECTOR, read_page, 1);
    printk("pv-disk: read sector %u: %s\n", TEST_SECTOR, status_name(rc));
    if (rc == BLKIF_RSP_OKAY && memcmp(write_page, read_page, 512) == 0) {
        printk("pv-disk: sector %u verified\n", TEST_SECTOR);
    } else {
        unsigned i = 0;
        while (i < 512 && write_page[i] == read_page[i])
            i++;
        printk("pv-disk: sector %u MISMATCH at byte %u\n", TEST_SECTOR, i);
    }

    /* Sector 0: what the image was made with */
    rc = blkfront_io(dev, BLKIF_OP_READ, 0, read_page, 1);
    for (int i = 0; i < 32; i++) {
        char c = read_page[i];
        first[i] = (c >= 32 && c < 127) ? c : '.';     /* "\n" -> "." */
    }
    first[32] = '\0';
    printk("pv-disk: read sector 0: %s: \"%s\"\n", status_name(rc), first);

    if (bench_n) {
        struct bench_result res = { 0, 0, 0 };
        if (depth < 1)
            depth = 1;
        if (depth > BENCH_MAX_DEPTH)
            depth = BENCH_MAX_DEPTH;
        if (info.sector_size != 512 ||
            info.sectors < BENCH_FIRST_SECTOR + BENCH_SECTORS || info.mode != 'w') {
            printk("pv-disk: bench needs a writable disk of 512-byte sectors with "
                   "more than %u sectors\n", BENCH_FIRST_SECTOR);
        } else {
            run_bench(dev, &info, (unsigned)bench_n, (unsigned)depth, suppress, &res);
            printk("pv-disk: bench %u OKAY, %u failed, event suppression %s\n",
                   res.done - res.failed, res.failed, suppress ? "on" : "off");
            printk("pv-disk: bench %u requests, %lu in flight, notified backend %u times\n",
                   res.done, depth, res.notified);
        }
    }

    shutdown_blkfront(dev);
    printk("pv-disk: done, powering off\n");
    return 0;
}
