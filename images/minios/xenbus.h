/* xenbus.h -- xenlab mini-OS: xenstore client (Mini-OS: include/xenbus.h).
 * Functions return 0 or a negative Xen errno (-XEN_ENOENT, -XEN_EAGAIN...:
 * xenstored answers errors with their names, we turn them into numbers). */
#ifndef MINIOS_XENBUS_H
#define MINIOS_XENBUS_H

#include "hypervisor.h"
#include <xen/io/xenbus.h>

typedef uint32_t xenbus_transaction_t;
#define XBT_NIL ((xenbus_transaction_t)0)

void init_xenbus(void);

int xenbus_read(xenbus_transaction_t xbt, const char *path, char *buf, size_t size);
int xenbus_write(xenbus_transaction_t xbt, const char *path, const char *value);
int xenbus_printf(xenbus_transaction_t xbt, const char *node, const char *key,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Children of `path`, as "a\0b\0c\0" in buf; *count = how many. */
int xenbus_ls(xenbus_transaction_t xbt, const char *path, char *buf, size_t size,
              unsigned *count);
int xenbus_watch_path_token(const char *path, const char *token);
int xenbus_transaction_start(xenbus_transaction_t *xbt);
/* abort != 0 discards the transaction.  *retry = 1 when xenstored said
 * EAGAIN (someone else changed what we read): do the whole thing again. */
int xenbus_transaction_end(xenbus_transaction_t xbt, int abort, int *retry);

/* Conveniences */
long xenbus_read_integer(const char *path);             /* -1 on error */
XenbusState xenbus_read_state(const char *path);         /* Unknown on error */
const char *xenbus_state_name(int state);
/* Wait until the integer at `path` (a state node with a watch on it) is no
 * longer *state; store the new value.  Returns 0 on timeout. */
int xenbus_wait_for_state_change(const char *path, XenbusState *state,
                                 uint64_t deadline_ns);
int xenbus_switch_state(xenbus_transaction_t xbt, const char *nodename,
                        XenbusState state);

#endif
