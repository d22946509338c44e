/* pv-hello: the smallest useful paravirtualized (PV) guest kernel.
 *
 * Build (from the repository root):   make -C images
 *   which runs, inside images/:  as --64 -I include -o obj/pv-hello.o pv-hello/pv-hello.S
 *        ld -T include/pv-kernel.lds --build-id=none --discard-all -o pv-hello/pv-hello.elf obj/pv-hello.o
 *
 * What it shows: how Xen starts a 64-bit PV kernel.  There is no BIOS and no
 * boot loader: the domain builder loads this ELF at VIRT_BASE, builds page
 * tables, fills hypercall_page, and jumps to _start in 64-bit mode, ring 3,
 * with RSI = the virtual address of struct start_info.  We print that
 * structure (as Mini-OS does at boot), ask Xen its version, and power off.
 */
        .include "xenlab-guest.inc"

        XEN_ELF_NOTES "xenlab-pv-hello"

        .section .text.head, "ax"
        .globl  _start
_start:
        lea     boot_stack_top(%rip), %rsp      /* our own stack, in .bss */
        mov     %rsi, %rbx                      /* RBX = start_info, kept all along */

        PRINTLN "Hello from pv-hello, a paravirtualized guest on xenlab!"

        /* That first line went to Xen's own console (console_io, hypercall 18),
         * as a kernel's "early printk" does.  Now switch to the PV console
         * ring: xenconsoled in Dom0 drains it (`xl console pv-hello`). */
        mov     %rbx, %rsi
        CONSOLE_INIT

        /* ---- struct start_info (xen/include/public/xen.h) ---- */
        PRINT   "start_info: "
        PRINT_HEX %rbx
        PRINTLN

        /* magic is char[32], "xen-3.0-x86_64": print the bytes Xen put there */
        PRINT   "  magic: "
        lea     start_info_magic(%rbx), %rdi
        mov     $32, %esi
        call    print_strn
        PRINTLN

        PRINT   "  nr_pages: "                  /* unsigned long: pages of RAM */
        PRINT_UDEC start_info_nr_pages(%rbx)
        PRINTLN

        PRINT   "  shared_info: "               /* a MACHINE address, not virtual */
        PRINT_HEX start_info_shared_info(%rbx)
        PRINTLN

        PRINT   "  flags: "                     /* uint32_t: load 32 bits only */
        mov     start_info_flags(%rbx), %eax    /* (writing EAX zero-extends RAX) */
        PRINT_HEX %rax
        PRINTLN

        PRINT   "  store_mfn: "                 /* xenstore ring page and its event channel */
        PRINT_UDEC start_info_store_mfn(%rbx)
        PRINT   "  store_evtchn: "
        mov     start_info_store_evtchn(%rbx), %eax     /* uint32_t */
        PRINT_UDEC %rax
        PRINTLN

        PRINT   "  console.mfn: "               /* console.domU = { xen_pfn_t mfn; uint32_t evtchn; } */
        PRINT_UDEC start_info_console(%rbx)
        PRINT   "  console.evtchn: "
        mov     start_info_console + 8(%rbx), %eax
        PRINT_UDEC %rax
        PRINTLN

        PRINT   "  pt_base: "                   /* virtual address of our top-level page table */
        PRINT_HEX start_info_pt_base(%rbx)
        PRINT   "  nr_pt_frames: "
        PRINT_UDEC start_info_nr_pt_frames(%rbx)
        PRINTLN

        PRINT   "  mfn_list: "                  /* virtual address of the pfn -> mfn table */
        PRINT_HEX start_info_mfn_list(%rbx)
        PRINTLN

        PRINT   "  cmd_line: "                  /* char[1024], the config's cmdline */
        lea     start_info_cmd_line(%rbx), %rdi
        mov     $1024, %esi
        call    print_strn
        PRINTLN

        /* ---- xen_version(cmd, arg) ---- */
        mov     $XENVER_version, %edi           /* arg NULL: the result is the answer */
        xor     %esi, %esi
        HYPERCALL __HYPERVISOR_xen_version
        mov     %rax, %r12                      /* (major << 16) | minor */
        mov     $XENVER_extraversion, %edi      /* fills char[16], e.g. ".0" or "-rc" */
        lea     extraversion(%rip), %rsi
        HYPERCALL __HYPERVISOR_xen_version
        PRINT   "Xen version: "
        mov     %r12, %rax
        shr     $16, %rax                       /* major */
        PRINT_UDEC %rax
        PRINT   "."
        movzwl  %r12w, %eax                     /* minor */
        PRINT_UDEC %rax
        lea     extraversion(%rip), %rdi
        mov     $16, %esi
        call    print_strn
        PRINTLN

        mov     $XENVER_capabilities, %edi      /* fills char[1024] */
        lea     capabilities(%rip), %rsi
        HYPERCALL __HYPERVISOR_xen_version
        PRINT   "Capabilities: "
        lea     capabilities(%rip), %rdi
        mov     $1024, %esi
        call    print_strn
        PRINTLN

        PRINTLN "Shutting down (SHUTDOWN_poweroff)."
        SHUTDOWN SHUTDOWN_poweroff

        .bss
        .globl  extraversion
extraversion:   .skip 16                /* xen_extraversion_t */
        .globl  capabilities
capabilities:   .skip 1024              /* xen_capabilities_info_t */
