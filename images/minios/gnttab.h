/* gnttab.h -- xenlab mini-OS: grant tables (Mini-OS: include/gnttab.h). */
#ifndef MINIOS_GNTTAB_H
#define MINIOS_GNTTAB_H

#include "hypervisor.h"

void init_gnttab(void);
/* Let `domid` access our frame `mfn` (read-only if readonly != 0). */
grant_ref_t gnttab_grant_access(domid_t domid, unsigned long mfn, int readonly);
/* Revoke a grant; returns 1 on success, 0 if the peer still uses it. */
int gnttab_end_access(grant_ref_t ref);

#endif
