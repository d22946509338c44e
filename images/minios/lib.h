/* lib.h -- xenlab mini-OS: the little C library (Mini-OS: lib/string.c,
 * lib/printf.c, include/lib.h).  No malloc: callers pass buffers. */
#ifndef MINIOS_LIB_H
#define MINIOS_LIB_H

#include "hypervisor.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strncpy0(char *dst, const char *src, size_t size);   /* always NUL-terminates */
unsigned long simple_strtoul(const char *s, const char **end, unsigned base);

/* %s %c %d %u %x %lx %lu %ld %p %% ; width and '0' flag for numbers
 * (e.g. %02x, %5u).  Returns the length it wanted to write. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Name of a Xen errno value (from <xen/errno.h>), e.g. 11 -> "EAGAIN". */
const char *xen_errno_name(int err);
int xen_errno_value(const char *name);     /* "EAGAIN" -> 11, unknown -> XEN_EIO */

#endif
