/* pv-pubhdr: a PV guest kernel in C, written ONLY against Xen's public headers.
 *
 * Build (from the repository root):   make -C images
 *   which runs, inside images/:  gcc -O2 -ffreestanding -fno-pic -fno-pie -mcmodel=kernel -mno-red-zone
 *            -fno-stack-protector -fno-asynchronous-unwind-tables -fno-ident
 *            -mgeneral-regs-only -nostdinc -isystem $(gcc -print-file-name=include)
 *            -idirafter /usr/include -c -o obj/pv-pubhdr.o pv-pubhdr/pv-pubhdr.c
 *        ld -T include/pv-kernel.lds --build-id=none --discard-all -o pv-pubhdr/pv-pubhdr.elf obj/pv-pubhdr.o
 *   (<xen/...> comes from Debian's libxen-dev; <stdint.h>/<stdarg.h> are gcc's
 *    own freestanding headers.  Only the shared linker script is xenlab's.)
 *
 * What it shows: nothing here is specific to xenlab.  The ELF notes, the
 * hypercall page, the hypercall calling convention and every structure come
 * from xen/include/public -- exactly what Linux and Mini-OS use -- so this is
 * what any developer would write to boot on a real Xen host.  At the end it
 * calls a hypercall that modern Xen removed (tmem_op, gone since Xen 4.13)
 * to show how Xen reports that: -ENOSYS.
 */

/* Pin the interface version we were written against (Xen 4.14's API). */
#define __XEN_INTERFACE_VERSION__ 0x00040e00

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <xen/xen.h>
#include <xen/sched.h>
#include <xen/version.h>
#include <xen/elfnote.h>
#include <xen/errno.h>

#define VIRT_BASE 0xffffffff80000000UL

/* ---------------------------------------------------------------------------
 * Entry point, boot stack and hypercall page.
 *
 * Xen starts us in 64-bit mode, ring 3, with RSI = &start_info and a stack
 * we should not keep.  _start switches to our own stack and calls C with
 * start_info as the first argument (RDI in the SysV ABI).  The hypercall page
 * is a page-aligned 4 KiB hole that the domain builder fills with 32-byte
 * stubs; until then it holds int3 (0xcc).
 * ------------------------------------------------------------------------- */
#define BOOT_STACK_SIZE 16384
#define STR_(x) #x
#define STR(x) STR_(x)
char boot_stack[BOOT_STACK_SIZE] __attribute__((aligned(16)));

struct hypercall_entry { uint8_t code[32]; };
extern struct hypercall_entry hypercall_page[128];

void start_kernel(start_info_t *si);

__asm__(
    "	.pushsection .text.head, \"ax\", @progbits\n"
    "	.globl _start\n"
    "_start:\n"
    "	lea	boot_stack + " STR(BOOT_STACK_SIZE) "(%rip), %rsp\n"
    "	mov	%rsi, %rdi\n"
    "	call	start_kernel\n"
    "	jmp	.\n"
    "	.popsection\n"
    "\n"
    "	.pushsection .hypercall_page, \"ax\", @progbits\n"
    "	.balign	4096\n"
    "	.globl	hypercall_page\n"
    "hypercall_page:\n"
    "	.fill	4096, 1, 0xcc\n"
    "	.popsection\n");

/* ---------------------------------------------------------------------------
 * ELF notes (xen/include/public/elfnote.h).  Each note: namesz, descsz, type,
 * "Xen\0", then the descriptor, padded to 4 bytes.  `packed` keeps a 64-bit
 * descriptor from being aligned to 8 (notes are only 4-byte aligned).
 * ------------------------------------------------------------------------- */
extern char _start[];

#define XEN_NOTE(ident, type, desc_decl, descsz, value)                          \
    static const struct __attribute__((packed)) {                                \
        uint32_t namesz, descsz_, n_type;                                        \
        char name[4];                                                            \
        desc_decl;                                                               \
        char pad[-(descsz) & 3];        /* up to the next 4-byte boundary */     \
    } ident __attribute__((used, section(".note.Xen"), aligned(4))) = {         \
        .namesz = 4, .descsz_ = (descsz), .n_type = (type),                     \
        .name = "Xen", .desc = value            /* .pad: zero */                 \
    }

#define XEN_NOTE_STR(ident, type, str)                                           \
    XEN_NOTE(ident, type, char desc[sizeof(str)], sizeof(str), str)
#define XEN_NOTE_U64(ident, type, val)                                           \
    XEN_NOTE(ident, type, uint64_t desc, 8, (uint64_t)(val))

XEN_NOTE_STR(note_guest_os,   XEN_ELFNOTE_GUEST_OS,       "xenlab-pv-pubhdr");
XEN_NOTE_STR(note_xen_ver,    XEN_ELFNOTE_XEN_VERSION,    "xen-3.0");
XEN_NOTE_STR(note_loader,     XEN_ELFNOTE_LOADER,         "generic");
XEN_NOTE_U64(note_virt_base,  XEN_ELFNOTE_VIRT_BASE,      VIRT_BASE);
XEN_NOTE_U64(note_paddr_off,  XEN_ELFNOTE_PADDR_OFFSET,   0);
XEN_NOTE_U64(note_entry,      XEN_ELFNOTE_ENTRY,          _start);
XEN_NOTE_U64(note_hypercall,  XEN_ELFNOTE_HYPERCALL_PAGE, hypercall_page);

/* ---------------------------------------------------------------------------
 * Hypercalls, the way Linux writes them (arch/x86/include/asm/xen/hypercall.h):
 * arguments in RDI, RSI, RDX, R10, R8; `call hypercall_page + nr * 32`;
 * result in RAX.  Xen may clobber the argument registers, so they are
 * in/out operands; the stub itself saves RCX and R11 around `syscall`.
 * ------------------------------------------------------------------------- */
#define HYPERCALL_ASM "call hypercall_page + %c[offset]"
#define HYPERCALL_NR(name) [offset] "i" (__HYPERVISOR_##name * sizeof(hypercall_page[0]))

#define _hypercall1(type, name, a1) ({                                           \
    register unsigned long __res asm("rax");                                     \
    register unsigned long __a1 asm("rdi") = (unsigned long)(a1);                \
    asm volatile(HYPERCALL_ASM                                                   \
                 : "=r"(__res), "+r"(__a1)                                        \
                 : HYPERCALL_NR(name)                                            \
                 : "rsi", "rdx", "r10", "r8", "memory");                         \
    (type)__res; })

#define _hypercall2(type, name, a1, a2) ({                                       \
    register unsigned long __res asm("rax");                                     \
    register unsigned long __a1 asm("rdi") = (unsigned long)(a1);                \
    register unsigned long __a2 asm("rsi") = (unsigned long)(a2);                \
    asm volatile(HYPERCALL_ASM                                                   \
                 : "=r"(__res), "+r"(__a1), "+r"(__a2)                            \
                 : HYPERCALL_NR(name)                                            \
                 : "rdx", "r10", "r8", "memory");                                \
    (type)__res; })

#define _hypercall3(type, name, a1, a2, a3) ({                                   \
    register unsigned long __res asm("rax");                                     \
    register unsigned long __a1 asm("rdi") = (unsigned long)(a1);                \
    register unsigned long __a2 asm("rsi") = (unsigned long)(a2);                \
    register unsigned long __a3 asm("rdx") = (unsigned long)(a3);                \
    asm volatile(HYPERCALL_ASM                                                   \
                 : "=r"(__res), "+r"(__a1), "+r"(__a2), "+r"(__a3)                \
                 : HYPERCALL_NR(name)                                            \
                 : "r10", "r8", "memory");                                       \
    (type)__res; })

static inline int HYPERVISOR_console_io(int cmd, int count, const char *str)
{
    return _hypercall3(int, console_io, cmd, count, str);
}

static inline int HYPERVISOR_xen_version(int cmd, void *arg)
{
    return _hypercall2(int, xen_version, cmd, arg);
}

static inline int HYPERVISOR_sched_op(int cmd, void *arg)
{
    return _hypercall2(int, sched_op, cmd, arg);
}

static inline int HYPERVISOR_tmem_op(void *op)
{
    return _hypercall1(int, tmem_op, op);
}

/* ---------------------------------------------------------------------------
 * printk: a tiny printf.  %s %c %d %u %x with optional l, and %%.
 * One call = one console_io hypercall, so end every format with "\n".
 * ------------------------------------------------------------------------- */
struct out { char *buf; unsigned len, max; };

static void out_c(struct out *o, char c)
{
    if (o->len < o->max)
        o->buf[o->len++] = c;
}

static void out_u(struct out *o, unsigned long v, unsigned base)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        out_c(o, digits[--n]);
}

static void printk(const char *fmt, ...)
{
    static char line[512];
    struct out o = { line, 0, sizeof(line) };
    va_list ap;

    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        int is_long = 0;
        if (*fmt != '%') {
            out_c(&o, *fmt);
            continue;
        }
        if (*++fmt == 'l') {
            is_long = 1;
            fmt++;
        }
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            while (*s)
                out_c(&o, *s++);
            break;
        }
        case 'c':
            out_c(&o, (char)va_arg(ap, int));
            break;
        case 'd': {
            long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0) {
                out_c(&o, '-');
                out_u(&o, -(unsigned long)v, 10);
            } else {
                out_u(&o, (unsigned long)v, 10);
            }
            break;
        }
        case 'u':
        case 'x':
            out_u(&o, is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int),
                  *fmt == 'u' ? 10 : 16);
            break;
        case '%':
            out_c(&o, '%');
            break;
        default:                        /* unknown conversion: also stops at "\0" */
            return;
        }
    }
    va_end(ap);
    HYPERVISOR_console_io(CONSOLEIO_write, (int)o.len, line);
}

/* The name of a Xen errno, from the X-macro list in <xen/errno.h>
 * (the list has aliases, e.g. EWOULDBLOCK = EAGAIN: the first name wins). */
static const struct { int value; const char *name; } xen_errnos[] = {
#define XEN_ERRNO(name, value) { value, #name },
#include <xen/errno.h>
};

static const char *xen_errno_name(int err)
{
    for (unsigned i = 0; i < sizeof(xen_errnos) / sizeof(xen_errnos[0]); i++)
        if (xen_errnos[i].value == err)
            return xen_errnos[i].name;
    return "?";
}

/* ---------------------------------------------------------------------------
 * The kernel.
 * ------------------------------------------------------------------------- */
void start_kernel(start_info_t *si)
{
    char magic[sizeof(si->magic) + 1];
    unsigned i;
    int ver, rc;

    printk("pv-pubhdr: built only against Xen's public headers\n");

    for (i = 0; i < sizeof(si->magic) && si->magic[i]; i++)     /* char[32] */
        magic[i] = si->magic[i];
    magic[i] = '\0';
    printk("pv-pubhdr: start_info magic: %s\n", magic);
    printk("pv-pubhdr: nr_pages: %lu\n", si->nr_pages);

    ver = HYPERVISOR_xen_version(XENVER_version, NULL);
    printk("pv-pubhdr: Xen version %d.%d\n", ver >> 16, ver & 0xffff);

    /* Removed from Xen 4.13: the hypercall number is still reserved, and
     * calling it fails with -ENOSYS ("function not implemented"). */
    rc = HYPERVISOR_tmem_op(NULL);
    printk("pv-pubhdr: tmem_op returned %d (%s)\n", rc, xen_errno_name(-rc));

    printk("pv-pubhdr: shutting down (SHUTDOWN_poweroff)\n");
    {
        struct sched_shutdown sd = { .reason = SHUTDOWN_poweroff };
        HYPERVISOR_sched_op(SCHEDOP_shutdown, &sd);
    }
    for (;;)
        ;                               /* never reached */
}
