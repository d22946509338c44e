/* pv-work: the PV half of the PV-versus-HVM workload, written with xenlab mini-OS.
 *
 * Build (from the repository root):   make -C images
 * Run:  xenlab compare images/pv-work.cfg images/hvm-work.cfg
 *
 * The job, the same as the HVM boot sector's (work/hvm-work.S) on the same disk
 * (work.img): read sectors 1 to 8 one at a time and print the first line of
 * each.  Here with blkfront (one request on the shared ring per sector, the
 * data granted to Dom0's blkback) and the PV console ring; there with the
 * BIOS's INT 13h and INT 10h on emulated hardware.  Both write
 * "xenlab workload: start" / "... end" to Xen's console around the job (here
 * with the console_io hypercall) so `xenlab compare` counts the job alone.
 */
#include "hypervisor.h"
#include "lib.h"
#include "xenbus.h"
#include "blkfront.h"

MINIOS_GUEST_OS("xenlab-pv-work");

#define FIRST_SECTOR 1
#define LAST_SECTOR  8

static char page[PAGE_SIZE] PAGE_ALIGNED;

/* A line on Xen's own console (xl dmesg), not on the PV console. */
static void xen_console(const char *text)
{
    HYPERVISOR_console_io(CONSOLEIO_write, (int)strlen(text), text);
}

int app_main(start_info_t *si)
{
    struct blkfront_info info;
    struct blkfront_dev *dev;
    char list[64], node[64];
    unsigned count;

    (void)si;
    if (xenbus_ls(XBT_NIL, "device/vbd", list, sizeof(list), &count) || count == 0) {
        printk("pv-work: no disk\n");
        return 1;
    }
    snprintf(node, sizeof(node), "device/vbd/%s", list);
    dev = init_blkfront(node, &info);
    if (!dev) {
        printk("pv-work: could not connect the disk\n");
        return 1;
    }

    xen_console("xenlab workload: start\n");
    for (unsigned s = FIRST_SECTOR; s <= LAST_SECTOR; s++) {
        unsigned n = 0;
        int rc = blkfront_io(dev, BLKIF_OP_READ, s, page, 1);
        if (rc != BLKIF_RSP_OKAY) {
            printk("pv-work: sector %u: read failed (%d)\n", s, rc);
            continue;
        }
        while (n < 80 && page[n] != '\0' && page[n] != '\n')
            n++;
        page[n] = '\0';
        printk("%s\n", page);           /* the sector's first line */
    }
    xen_console("xenlab workload: end\n");

    shutdown_blkfront(dev);
    return 0;
}
