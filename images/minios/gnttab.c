/* gnttab.c -- xenlab mini-OS: grant tables, version 1
 * (Mini-OS: gnttab.c and arch/x86/mm.c's arch_init_gnttab).
 *
 * A grant entry says "domain D may map/copy my frame F".  The table itself
 * lives in frames Xen owns; GNTTABOP_setup_table returns their machine
 * frame numbers and we map them into a page-aligned area of our own with
 * update_va_mapping (Mini-OS does the same in arch_init_gnttab).
 *
 * Granting (order matters, the backend may look at any time):
 *     entry.frame = mfn; entry.domid = peer;  wmb();  entry.flags = GTF_permit_access
 * Ending: atomically swap flags to 0, but only while Xen reports neither
 * GTF_reading nor GTF_writing (the backend still has it mapped).
 */
#include "gnttab.h"
#include "lib.h"

#define NR_GRANT_FRAMES   1
#define NR_GRANT_ENTRIES  (NR_GRANT_FRAMES * PAGE_SIZE / sizeof(grant_entry_v1_t))
/* Entries 0..7 are reserved for the toolstack (console, xenstore). */
#define NR_RESERVED_ENTRIES GNTTAB_NR_RESERVED_ENTRIES

static char gnttab_area[NR_GRANT_FRAMES * PAGE_SIZE] PAGE_ALIGNED;
static grant_entry_v1_t *gnttab_table;
static uint8_t gnttab_in_use[NR_GRANT_ENTRIES];

void init_gnttab(void)
{
    xen_pfn_t frames[NR_GRANT_FRAMES];
    struct gnttab_setup_table setup = {
        .dom = DOMID_SELF,
        .nr_frames = NR_GRANT_FRAMES,
    };
    int rc;

    set_xen_guest_handle(setup.frame_list, frames);
    rc = HYPERVISOR_grant_table_op(GNTTABOP_setup_table, &setup, 1);
    if (rc || setup.status != GNTST_okay) {
        printk("minios: GNTTABOP_setup_table failed: rc %d status %d\n", rc, setup.status);
        shutdown(SHUTDOWN_crash);
    }
    for (unsigned i = 0; i < NR_GRANT_FRAMES; i++) {
        rc = HYPERVISOR_update_va_mapping((unsigned long)gnttab_area + i * PAGE_SIZE,
                                          ((uint64_t)frames[i] << PAGE_SHIFT) | L1_PROT,
                                          UVMF_INVLPG);
        if (rc) {
            printk("minios: mapping grant frame %lx failed: %d\n",
                   (unsigned long)frames[i], rc);
            shutdown(SHUTDOWN_crash);
        }
    }
    gnttab_table = (grant_entry_v1_t *)gnttab_area;
}

static grant_ref_t get_free_entry(void)
{
    for (grant_ref_t ref = NR_RESERVED_ENTRIES; ref < NR_GRANT_ENTRIES; ref++)
        if (!gnttab_in_use[ref]) {
            gnttab_in_use[ref] = 1;
            return ref;
        }
    printk("minios: out of grant entries\n");
    shutdown(SHUTDOWN_crash);
}

grant_ref_t gnttab_grant_access(domid_t domid, unsigned long mfn, int readonly)
{
    grant_ref_t ref = get_free_entry();
    grant_entry_v1_t *e = &gnttab_table[ref];

    e->frame = mfn;
    e->domid = domid;
    wmb();                                      /* frame/domid before flags */
    e->flags = GTF_permit_access | (readonly ? GTF_readonly : 0);
    return ref;
}

int gnttab_end_access(grant_ref_t ref)
{
    uint16_t *pflags = &gnttab_table[ref].flags;
    uint16_t flags = *pflags;

    do {
        if (flags & (GTF_reading | GTF_writing)) {
            printk("minios: grant %u still in use by the backend\n", ref);
            return 0;
        }
        /* on failure, `flags` is reloaded with the current value */
    } while (!__atomic_compare_exchange_n(pflags, &flags, 0, 0,
                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    gnttab_in_use[ref] = 0;
    return 1;
}
