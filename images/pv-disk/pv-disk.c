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
 */
#include "hypervisor.h"
#include "lib.h"
#include "xenbus.h"
#include "blkfront.h"

MINIOS_GUEST_OS("xenlab-pv-disk");

#define TEST_SECTOR 100

static char write_page[PAGE_SIZE] PAGE_ALIGNED;
static char read_page[PAGE_SIZE] PAGE_ALIGNED;

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

int app_main(start_info_t *si)
{
    struct blkfront_info info;
    struct blkfront_dev *dev;
    char list[256], node[64], first[33];
    unsigned count;
    int rc, domid;

    (void)si;
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

    shutdown_blkfront(dev);
    printk("pv-disk: done, powering off\n");
    return 0;
}
