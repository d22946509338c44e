/* hypervisor.h -- xenlab mini-OS: talking to Xen.
 *
 * xenlab mini-OS is a tiny C library for PV guests.  It follows the
 * structure and the names of Mini-OS (xen.git/extras/mini-os, now
 * xenbits.xen.org/mini-os.git): hypervisor.h, console.c, events.c,
 * gnttab.c, xenbus.c, blkfront.c, netfront.c, lib.c -- much smaller and
 * without threads, malloc or interrupts.  It is built ONLY against Xen's
 * public headers (<xen/...>, Debian's libxen-dev) and gcc's freestanding
 * headers, so every structure below is the one real Xen and real backends use.
 *
 * No upcalls: xenlab's Xen never jumps to an event callback, so the library
 * polls.  A guest waits with block_until(cond, arg, deadline): acknowledge
 * events, test cond, otherwise arm the one-shot timer (set_timer_op) and
 * sleep in SCHEDOP_block until some event channel is pending.
 */
#ifndef MINIOS_HYPERVISOR_H
#define MINIOS_HYPERVISOR_H

/* Pin the interface version we were written against (Xen 4.14's API). */
#define __XEN_INTERFACE_VERSION__ 0x00040e00

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <xen/xen.h>
#include <xen/sched.h>
#include <xen/version.h>
#include <xen/event_channel.h>
#include <xen/grant_table.h>
#include <xen/memory.h>
#include <xen/errno.h>
#include <xen/elfnote.h>

#define VIRT_BASE   0xffffffff80000000UL
#define PAGE_SHIFT  12
#define PAGE_SIZE   4096UL
#define PAGE_ALIGNED __attribute__((aligned(4096)))

/* ---------------------------------------------------------------------------
 * Memory barriers.  io/ring.h (interface >= 0x00030208) expects the guest to
 * define xen_mb/xen_rmb/xen_wmb.  x86 keeps stores in order and loads in
 * order (TSO), so rmb/wmb only have to stop the COMPILER from reordering;
 * mb must also order a store before a later load, which needs a locked
 * instruction (Linux's smp_mb() on x86-64: lock; addl $0,-4(%rsp)).
 * ------------------------------------------------------------------------- */
#define barrier() __asm__ __volatile__("" ::: "memory")
#define mb()      __asm__ __volatile__("lock; addl $0,-4(%%rsp)" ::: "memory", "cc")
#define rmb()     barrier()
#define wmb()     barrier()
#define xen_mb()  mb()
#define xen_rmb() rmb()
#define xen_wmb() wmb()

/* ---------------------------------------------------------------------------
 * ELF notes (xen/include/public/elfnote.h): how the domain builder knows we
 * are a PV kernel.  head.c emits the six common notes; each guest adds its
 * name with MINIOS_GUEST_OS("xenlab-pv-disk").  `packed` keeps a 64-bit
 * descriptor from being aligned to 8 (notes are only 4-byte aligned).
 * ------------------------------------------------------------------------- */
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
#define MINIOS_GUEST_OS(name) XEN_NOTE_STR(note_guest_os, XEN_ELFNOTE_GUEST_OS, name)

/* ---------------------------------------------------------------------------
 * Hypercalls, the way Linux and Mini-OS write them: arguments in RDI, RSI,
 * RDX, R10, R8; `call hypercall_page + nr * 32`; result in RAX.  Xen may
 * clobber the argument registers, so they are in/out operands.
 * ------------------------------------------------------------------------- */
struct hypercall_entry { uint8_t code[32]; };
extern struct hypercall_entry hypercall_page[128];

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
{ return _hypercall3(int, console_io, cmd, count, str); }

static inline int HYPERVISOR_xen_version(int cmd, void *arg)
{ return _hypercall2(int, xen_version, cmd, arg); }

static inline int HYPERVISOR_sched_op(int cmd, void *arg)
{ return _hypercall2(int, sched_op, cmd, arg); }

/* Absolute deadline in ns of Xen system time; 0 = cancel the timer. */
static inline long HYPERVISOR_set_timer_op(uint64_t deadline)
{ return _hypercall1(long, set_timer_op, deadline); }

static inline int HYPERVISOR_event_channel_op(int cmd, void *arg)
{ return _hypercall2(int, event_channel_op, cmd, arg); }

static inline int HYPERVISOR_grant_table_op(unsigned cmd, void *uop, unsigned count)
{ return _hypercall3(int, grant_table_op, cmd, uop, count); }

/* update_va_mapping(va, new PTE, flags): point ONE page of our address
 * space at a machine frame (PTE = machine address | flags). */
static inline int HYPERVISOR_update_va_mapping(unsigned long va, uint64_t pte,
                                               unsigned long flags)
{ return _hypercall3(int, update_va_mapping, va, pte, flags); }

#define _PAGE_PRESENT 0x001UL
#define _PAGE_RW      0x002UL
#define _PAGE_USER    0x004UL
#define L1_PROT       (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER)   /* = 7 */

/* ---------------------------------------------------------------------------
 * start_info and the physical-to-machine map.
 *
 * Our image and the pages after it are mapped at VIRT_BASE + pfn * 4096
 * (the bootstrap mapping).  mfn_list[pfn] is the machine frame behind
 * pseudo-physical frame pfn, so
 *     virt_to_mfn(va) = mfn_list[(va - VIRT_BASE) >> 12]
 * and the way back (a machine frame Xen names, e.g. the console ring) is a
 * search of mfn_list.
 * ------------------------------------------------------------------------- */
extern start_info_t *start_info;
extern unsigned long *mfn_list;                 /* = phys_to_machine_mapping */
extern shared_info_t *HYPERVISOR_shared_info;

static inline unsigned long virt_to_pfn(const void *va)
{ return ((unsigned long)va - VIRT_BASE) >> PAGE_SHIFT; }
static inline unsigned long virt_to_mfn(const void *va)
{ return mfn_list[virt_to_pfn(va)]; }
void *mfn_to_virt(unsigned long mfn);           /* NULL if not ours/unmapped */

/* ---------------------------------------------------------------------------
 * Time and scheduling (hypervisor.c)
 * ------------------------------------------------------------------------- */
#define MILLISECS(ms) ((uint64_t)(ms) * 1000000ULL)

uint64_t monotonic_clock(void);          /* ns of Xen system time */
/* Wait until cond(arg) is true (returns 1) or the clock passes deadline_ns
 * (returns 0; deadline 0 = wait forever). */
int block_until(int (*cond)(void *arg), void *arg, uint64_t deadline_ns);
void msleep(unsigned ms);
void yield(void);
void shutdown(unsigned reason) __attribute__((noreturn));

/* The guest's C entry point: the library's start_kernel calls it after
 * setting up console, events and grant table. */
int app_main(start_info_t *si);

#endif
