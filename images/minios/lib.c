/* lib.c -- xenlab mini-OS: string functions and a tiny printf
 * (Mini-OS: lib/string.c and lib/printf.c).
 *
 * memcpy/memset are written with `rep movsb` / `rep stosb`: gcc may itself
 * emit calls to memcpy/memset (e.g. for struct copies, or io/ring.h's
 * SHARED_RING_INIT), and a plain C loop here could be "optimised" into a
 * call to itself.
 */
#include "lib.h"
#include "console.h"

void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;
    __asm__ __volatile__("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    __asm__ __volatile__("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p - *q;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            break;
    }
    return 0;
}

char *strncpy0(char *dst, const char *src, size_t size)
{
    size_t i = 0;
    if (!size)
        return dst;
    for (; i + 1 < size && src[i]; i++)
        dst[i] = src[i];
    dst[i] = '\0';
    return dst;
}

unsigned long simple_strtoul(const char *s, const char **end, unsigned base)
{
    unsigned long v = 0;
    for (;; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F')
            d = *s - 'A' + 10;
        else
            break;
        if (d >= base)
            break;
        v = v * base + d;
    }
    if (end)
        *end = s;
    return v;
}

/* ---------------------------------------------------------------------------
 * vsnprintf
 * ------------------------------------------------------------------------- */
struct out { char *buf; size_t len, max; };

static void out_c(struct out *o, char c)
{
    if (o->len + 1 < o->max)                    /* keep room for the NUL */
        o->buf[o->len] = c;
    o->len++;
}

static void out_num(struct out *o, unsigned long v, unsigned base, int neg,
                    int width, char pad)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg && pad == '0')
        out_c(o, '-');
    for (int w = n + neg; w < width; w++)
        out_c(o, pad);
    if (neg && pad != '0')
        out_c(o, '-');
    while (n)
        out_c(o, digits[--n]);
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, 0, size };

    for (; *fmt; fmt++) {
        int is_long = 0, width = 0;
        char pad = ' ';
        if (*fmt != '%') {
            out_c(&o, *fmt);
            continue;
        }
        fmt++;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        if (*fmt == 'l') {
            is_long = 1;
            fmt++;
        }
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            int n;
            if (!s)
                s = "(null)";
            n = (int)strlen(s);
            for (; n < width; n++)
                out_c(&o, ' ');
            while (*s)
                out_c(&o, *s++);
            break;
        }
        case 'c':
            out_c(&o, (char)va_arg(ap, int));
            break;
        case 'd': {
            long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
            out_num(&o, v < 0 ? -(unsigned long)v : (unsigned long)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
        case 'x':
            out_num(&o, is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int),
                    *fmt == 'u' ? 10 : 16, 0, width, pad);
            break;
        case 'p':
            out_c(&o, '0');
            out_c(&o, 'x');
            out_num(&o, (unsigned long)va_arg(ap, void *), 16, 0, 0, ' ');
            break;
        case '%':
            out_c(&o, '%');
            break;
        default:                        /* unknown conversion (or "\0"): stop */
            goto done;
        }
    }
done:
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* printk: format into a line buffer and hand it to the console ring. */
void printk(const char *fmt, ...)
{
    static char line[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 1)
        n = sizeof(line) - 1;
    console_print(line, n);
}

/* ---------------------------------------------------------------------------
 * Xen errno names, from the X-macro list in <xen/errno.h>.  xenstored
 * reports errors as these names ("EAGAIN"), the hypervisor as -values.
 * ------------------------------------------------------------------------- */
static const struct { int value; const char *name; } xen_errnos[] = {
#define XEN_ERRNO(name, value) { value, #name },
#include <xen/errno.h>
};

const char *xen_errno_name(int err)
{
    for (unsigned i = 0; i < ARRAY_SIZE(xen_errnos); i++)
        if (xen_errnos[i].value == err)
            return xen_errnos[i].name;
    return "?";
}

int xen_errno_value(const char *name)
{
    for (unsigned i = 0; i < ARRAY_SIZE(xen_errnos); i++)
        if (!strcmp(xen_errnos[i].name, name))
            return xen_errnos[i].value;
    return XEN_EIO;
}
