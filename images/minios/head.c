/* head.c -- xenlab mini-OS: entry point, hypercall page, ELF notes and
 * start_kernel (Mini-OS: arch/x86/x86_64.S, arch/x86/setup.c, kernel.c).
 *
 * Xen starts us in 64-bit mode, ring 3, with RSI = &start_info.  _start
 * switches to our own stack and calls start_kernel(start_info), which sets
 * up the library (console, events, grant table, xenbus -- in Mini-OS's
 * order) and then runs the guest's app_main().  When app_main returns, its
 * result picks the shutdown reason: 0 = poweroff, anything else = crash.
 */
#include "hypervisor.h"
#include "lib.h"
#include "console.h"
#include "events.h"
#include "gnttab.h"
#include "xenbus.h"

#define BOOT_STACK_SIZE 32768
#define STR_(x) #x
#define STR(x) STR_(x)
char boot_stack[BOOT_STACK_SIZE] __attribute__((aligned(16)));

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
    /* 4 KiB that the domain builder fills with 128 stubs of 32 bytes;
     * int3 (0xcc) until then. */
    "	.pushsection .hypercall_page, \"ax\", @progbits\n"
    "	.balign	4096\n"
    "	.globl	hypercall_page\n"
    "hypercall_page:\n"
    "	.fill	4096, 1, 0xcc\n"
    "	.popsection\n");

/* The notes every mini-OS guest carries; the guest adds GUEST_OS itself. */
extern char _start[];
XEN_NOTE_STR(note_xen_ver,    XEN_ELFNOTE_XEN_VERSION,    "xen-3.0");
XEN_NOTE_STR(note_loader,     XEN_ELFNOTE_LOADER,         "generic");
XEN_NOTE_U64(note_virt_base,  XEN_ELFNOTE_VIRT_BASE,      VIRT_BASE);
XEN_NOTE_U64(note_paddr_off,  XEN_ELFNOTE_PADDR_OFFSET,   0);
XEN_NOTE_U64(note_entry,      XEN_ELFNOTE_ENTRY,          _start);
XEN_NOTE_U64(note_hypercall,  XEN_ELFNOTE_HYPERCALL_PAGE, hypercall_page);

start_info_t *start_info;
unsigned long *mfn_list;

void start_kernel(start_info_t *si)
{
    start_info = si;
    mfn_list = (unsigned long *)si->mfn_list;

    init_console();             /* printk works from here on */
    init_events();              /* shared_info, VIRQ_TIMER */
    init_gnttab();              /* grant table frames mapped */
    init_xenbus();              /* store ring */

    shutdown(app_main(si) == 0 ? SHUTDOWN_poweroff : SHUTDOWN_crash);
}
