/* blkfront.h -- xenlab mini-OS: block front-end (Mini-OS: include/blkfront.h). */
#ifndef MINIOS_BLKFRONT_H
#define MINIOS_BLKFRONT_H

#include "hypervisor.h"
#include "xenbus.h"
#include <xen/io/blkif.h>
#include <xen/io/protocols.h>

struct blkfront_info {
    uint64_t sectors;
    unsigned sector_size;
    unsigned info;                      /* VDISK_* flags */
    int mode;                           /* 'r' or 'w' */
    int flush;                          /* feature-flush-cache */
};

struct blkfront_dev {
    char nodename[64];                  /* "device/vbd/51712" */
    char backend[128];                  /* "/local/domain/0/backend/vbd/<id>/51712" */
    domid_t dom;                        /* backend-id */
    unsigned handle;                    /* virtual-device number */
    blkif_front_ring_t ring;
    grant_ref_t ring_ref;
    evtchn_port_t evtchn;
    struct blkfront_info info;
};

/* Connect to the backend of `nodename`; NULL on failure.  Prints every
 * XenbusState it observes. */
struct blkfront_dev *init_blkfront(const char *nodename, struct blkfront_info *info);
/* One request with one segment: `nsect` sectors of the page at `buf`
 * (page aligned) from/to `sector`.  op = BLKIF_OP_READ / BLKIF_OP_WRITE.
 * Returns the BLKIF_RSP_* status. */
int blkfront_io(struct blkfront_dev *dev, int op, uint64_t sector, void *buf,
                unsigned nsect);
int blkfront_flush(struct blkfront_dev *dev);           /* BLKIF_OP_FLUSH_DISKCACHE */
void shutdown_blkfront(struct blkfront_dev *dev);

#endif
