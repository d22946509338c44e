/*
 * images/firmware/hvmloader.S -- xenlab's teaching hvmloader.
 *
 * On Xen, an HVM guest does not start in the BIOS: the domain builder loads
 * hvmloader (tools/firmware/hvmloader) at 0x100000 and starts it in 32-bit
 * flat protected mode, paging off, with EBX pointing at a struct
 * hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h).  hvmloader
 * sets up what the BIOS cannot find on its own -- hypercall page, CMOS
 * memory size, the BIOS image itself -- and then drops to real mode and
 * jumps to the BIOS reset vector F000:FFF0.
 *
 * This file follows the order of hvmloader.c main(), skipping what xenlab
 * does not have (xenbus, PCI BAR allocation, SMP bring-up, ACPI, SMBIOS):
 *
 *   "HVM Loader"                           main(): printf("HVM Loader\n")
 *   CPUID 0x40000000.. "XenVMMXenVMM"      hypercall.c: check_cpuid / init_hypercalls
 *   WRMSR hypercall page -> 0x80000        init_hypercalls: wrmsr(ebx, 0x80000)
 *   xen_version(XENVER_version)            init_hypercalls: "Detected Xen v%u.%u"
 *   start_info / memory map                memory_map_setup()
 *   hvm_info_table at 0x9F800 (checksum)   util.c: get_hvm_info_table()
 *   module "firmware" -> 0xF0000           seabios.c: seabios_load() / get_module_entry()
 *   CMOS 0x15-0x18, 0x30-0x31, 0x34-0x35   hvmloader.c: cmos_write_memory_size()
 *   E820 table                             e820.c: dump_e820_table()
 *   "Invoking xenlab BIOS ..."             main() returns the BIOS entry; the
 *                                          asm stub in hvmloader.c enters real mode
 *
 * Every message goes to port 0xE9 (Xen's HVM debug port: each byte written
 * is collected into the "(d1) ..." lines of `xl dmesg`).
 *
 * The ELF also carries a XEN_ELFNOTE_PHYS32_ENTRY note, so QEMU (or Xen) can
 * boot it the PVH way (`qemu-system-i386 -kernel hvmloader.elf -initrd
 * xenlab-bios.bin`); on QEMU there is no Xen CPUID leaf, so it stops with
 * "Not running on Xen".
 */
        .code32

DEBUG_PORT      = 0xE9          /* Xen/Bochs debug port: one character per outb */
CMOS_INDEX      = 0x70          /* RTC/CMOS register index */
CMOS_DATA       = 0x71          /* RTC/CMOS register data */

HYPERCALL_PAGE  = 0x80000       /* where we ask Xen to write the hypercall stubs */
LAPIC_BASE      = 0xFEE00000    /* the local APIC's registers (Xen's vlapic) */
IOAPIC_BASE     = 0xFEC00000    /* the IO-APIC's window (Xen's vioapic) */
IOAPIC_ID       = 1             /* as in the MP/ACPI tables hvmloader writes */
HVM_INFO_PADDR  = 0x9F800       /* HVM_INFO_PFN 0x9F << 12 | HVM_INFO_OFFSET 0x800 */
BIOS_PADDR      = 0xF0000       /* the BIOS ROM image: 64 KiB below 1 MiB */
BIOS_SIZE       = 0x10000

__HYPERVISOR_xen_version = 17   /* xen/include/public/xen.h */
XENVER_version  = 0             /* xen/include/public/version.h: major << 16 | minor */
XEN_HVM_START_MAGIC = 0x336ec578

/* struct hvm_start_info (all fields little endian) */
SI_MAGIC        = 0             /* uint32 magic */
SI_VERSION      = 4             /* uint32 version */
SI_FLAGS        = 8             /* uint32 flags */
SI_NR_MODULES   = 12            /* uint32 nr_modules */
SI_MODLIST      = 16            /* uint64 modlist_paddr: array of hvm_modlist_entry */
SI_CMDLINE      = 24            /* uint64 cmdline_paddr */
SI_RSDP         = 32            /* uint64 rsdp_paddr */
/* struct hvm_modlist_entry: 32 bytes */
MOD_PADDR       = 0             /* uint64 paddr */
MOD_SIZE        = 8             /* uint64 size */
MOD_CMDLINE     = 16            /* uint64 cmdline_paddr */
MOD_ENTRY_SIZE  = 32            /* (uint64 reserved at 24) */

/* struct hvm_info_table (xen/include/public/hvm/hvm_info_table.h; natural
   alignment puts nr_vcpus at 16, after the uint8 apic_mode at 13) */
HI_LENGTH       = 8             /* uint32 length of the table */
HI_CHECKSUM     = 12            /* uint8: all bytes of the table sum to 0 */
HI_APIC_MODE    = 13            /* uint8 */
HI_NR_VCPUS     = 16            /* uint32 */
HI_LOW_MEM_PGEND = 20           /* uint32: RAM 0 .. low_mem_pgend << 12 */
HI_RESERVED_MEM_PGSTART = 24    /* uint32 */
HI_HIGH_MEM_PGEND = 28          /* uint32: RAM 4 GiB .. high_mem_pgend << 12 */

        .section .text, "ax"
        .globl  _start
_start:
        cli
        cld
        movl    $stack_top, %esp
        movl    %ebx, start_info        /* keep the domain builder's pointer */

        movl    $msg_banner, %esi
        call    puts

/* ---- 1. Are we on Xen?  The hypervisor CPUID leaves start at 0x40000000
        (in steps of 0x100 when other hypervisors are emulated as well) and
        leaf base+0 returns "XenVMMXenVMM" in EBX, ECX, EDX. */
        movl    $0x40000000, %edi
1:      movl    %edi, %eax
        cpuid
        cmpl    $0x566e6558, %ebx       /* "XenV" */
        jne     2f
        cmpl    $0x65584d4d, %ecx       /* "MMXe" */
        jne     2f
        cmpl    $0x4d4d566e, %edx       /* "nVMM" */
        jne     2f
        subl    %edi, %eax              /* EAX = highest leaf: need base+2 */
        cmpl    $2, %eax
        jae     3f
2:      addl    $0x100, %edi
        cmpl    $0x40010000, %edi
        jb      1b
        movl    $msg_no_xen, %esi
        jmp     stop

/* ---- 2. Hypercall page.  Leaf base+2: EAX = number of pages, EBX = the
        MSR that installs them.  Writing a guest physical address (page
        index in bits 0-11) makes Xen fill that page with 32-byte stubs:
        stub N at page + N*32 does hypercall N (vmcall/vmmcall). */
3:      leal    2(%edi), %eax
        cpuid
        movl    %ebx, %ecx              /* MSR index */
        movl    $HYPERCALL_PAGE, %eax   /* page 0 at 0x80000 */
        xorl    %edx, %edx
        wrmsr
        movl    $msg_hcall, %esi
        call    puts

/* ---- 3. xen_version(XENVER_version, NULL) through the page.  32-bit HVM
        hypercall ABI: EAX = number, EBX, ECX, EDX, ESI, EDI = arguments,
        result in EAX. */
        movl    $__HYPERVISOR_xen_version, %eax
        movl    $XENVER_version, %ebx
        xorl    %ecx, %ecx
        call    HYPERCALL_PAGE + __HYPERVISOR_xen_version * 32
        movl    %eax, %ebx
        movl    $msg_xen_v, %esi
        call    puts
        movl    %ebx, %eax
        shrl    $16, %eax               /* major */
        call    putdec
        movb    $'.', %al
        call    putc
        movzwl  %bx, %eax               /* minor */
        call    putdec
        call    newline

/* ---- 4. Memory map / start info: check the magic and describe it. */
        movl    start_info, %ebx
        cmpl    $XEN_HVM_START_MAGIC, SI_MAGIC(%ebx)
        je      4f
        movl    $msg_bad_start, %esi
        jmp     stop
4:      movl    $msg_start, %esi
        call    puts
        movl    %ebx, %eax
        call    puthex
        movl    $msg_start_v, %esi
        call    puts
        movl    SI_VERSION(%ebx), %eax
        call    putdec
        movl    $msg_start_m, %esi
        call    puts
        movl    SI_NR_MODULES(%ebx), %eax
        call    putdec
        movl    $msg_start_m2, %esi
        call    puts

/* ---- 5. hvm_info_table at 0x9F800: signature "HVM INFO", every byte of
        `length` bytes sums to 0 (mod 256). */
        movl    $HVM_INFO_PADDR, %ebx
        cmpl    $0x204d5648, (%ebx)     /* "HVM " */
        jne     5f
        cmpl    $0x4f464e49, 4(%ebx)    /* "INFO" */
        jne     5f
        movl    HI_LENGTH(%ebx), %ecx
        cmpl    $HI_HIGH_MEM_PGEND + 4, %ecx
        jb      5f
        cmpl    $0x800, %ecx            /* must stay inside its page */
        ja      5f
        xorb    %al, %al
        movl    %ebx, %esi
6:      addb    (%esi), %al
        incl    %esi
        loop    6b
        testb   %al, %al
        jz      7f
5:      movl    $msg_bad_info, %esi
        jmp     stop
7:      movl    $msg_info, %esi
        call    puts
        movl    HI_NR_VCPUS(%ebx), %eax
        call    putdec
        movl    $msg_info_cpus, %esi
        call    puts
        movl    HI_LOW_MEM_PGEND(%ebx), %eax
        shll    $2, %eax                /* pages -> KiB */
        call    putdec
        movl    $msg_kib, %esi
        call    puts

/* ---- 6. Find the module whose cmdline is "firmware" and copy it, the
        64 KiB BIOS ROM image, to 0xF0000..0xFFFFF. */
        movl    start_info, %ebx
        movl    SI_NR_MODULES(%ebx), %ecx
        movl    SI_MODLIST(%ebx), %edx  /* low 32 bits: we run below 4 GiB */
        testl   %ecx, %ecx
        jz      9f
8:      movl    MOD_CMDLINE(%edx), %esi
        testl   %esi, %esi
        jz      10f
        movl    $str_firmware, %edi
        call    strcmp
        je      11f
10:     addl    $MOD_ENTRY_SIZE, %edx
        loop    8b
9:      movl    $msg_no_bios, %esi
        jmp     stop
11:     cmpl    $BIOS_SIZE, MOD_SIZE(%edx)
        je      12f
        movl    $msg_bad_size, %esi
        jmp     stop
12:     movl    $msg_loading, %esi
        call    puts
        movl    MOD_PADDR(%edx), %esi
        movl    $BIOS_PADDR, %edi
        movl    $BIOS_SIZE / 4, %ecx
        rep     movsl

/* ---- 7. CMOS memory size, exactly as cmos_write_memory_size():
        0x15/0x16 base memory KiB (always 640), 0x17/0x18 and 0x30/0x31
        KiB above 1 MiB (max 0xFFFF), 0x34/0x35 64 KiB blocks above 16 MiB. */
        movl    HVM_INFO_PADDR + HI_LOW_MEM_PGEND, %ebx
        shll    $12, %ebx               /* EBX = end of low RAM in bytes */
        xorl    %eax, %eax
        cmpl    $0x100000, %ebx
        jbe     13f
        leal    -0x100000(%ebx), %eax
        shrl    $10, %eax
        cmpl    $0xFFFF, %eax
        jbe     13f
        movl    $0xFFFF, %eax
13:     movl    %eax, ext_mem
        xorl    %eax, %eax
        cmpl    $0x1000000, %ebx
        jbe     14f
        leal    -0x1000000(%ebx), %eax
        shrl    $16, %eax
14:     movl    %eax, alt_mem
        movw    $640, %dx
        movb    $0x15, %cl              /* 0x15/0x16: base memory */
        call    cmos_write16
        movw    ext_mem, %dx
        movb    $0x17, %cl              /* 0x17/0x18: extended memory */
        call    cmos_write16
        movb    $0x30, %cl              /* 0x30/0x31: the same, as POST reports it */
        call    cmos_write16
        movw    alt_mem, %dx
        movb    $0x34, %cl              /* 0x34/0x35: 64 KiB blocks above 16 MiB */
        call    cmos_write16
        movl    $msg_cmos, %esi
        call    puts
        movl    ext_mem, %eax
        call    putdec
        movl    $msg_cmos2, %esi
        call    puts
        movl    alt_mem, %eax
        call    putdec
        call    newline

/* ---- 8. The E820 table the xenlab BIOS will report (INT 15h E820h);
        the last entry ends at the top of low RAM. */
        movl    $msg_e820, %esi
        call    puts
        movl    $e820_table, %ebx
        xorl    %ecx, %ecx
15:     movl    $msg_e820_a, %esi       /* " [0N]: " */
        call    puts
        movl    %ecx, %eax
        call    putdec
        movl    $msg_e820_b, %esi
        call    puts
        movl    (%ebx), %eax            /* start */
        call    puthex
        movl    $msg_e820_c, %esi
        call    puts
        movl    4(%ebx), %eax           /* end */
        cmpl    $3, %ecx
        jne     16f
        movl    HVM_INFO_PADDR + HI_LOW_MEM_PGEND, %eax
        shll    $12, %eax
16:     call    puthex
        movl    8(%ebx), %esi           /* type name */
        call    puts
        addl    $12, %ebx
        incl    %ecx
        cmpl    $4, %ecx
        jb      15b

/* ---- 8b. The virtual wire, as apic_setup() does: the local APIC on (spurious
        vector 0xFF), LINT0 ExtINT but masked, LINT1 NMI, and the 8259A's output
        routed through IO-APIC pin 0 in ExtINT mode to the BSP (APIC ID 0), so that
        Xen delivers the PIC's interrupts (__vlapic_accept_pic_intr). Silent. */
        movl    $0, IOAPIC_BASE                 /* IOREGSEL = 0: the ID */
        movl    $IOAPIC_ID << 24, IOAPIC_BASE + 0x10
        movl    $0x1FF, LAPIC_BASE + 0xF0       /* APIC_SPIV: enabled | 0xFF */
        movl    $0x10700, LAPIC_BASE + 0x350    /* APIC_LVT0: ExtINT, masked */
        movl    $0x400, LAPIC_BASE + 0x360      /* APIC_LVT1: NMI */
        movl    $0x10, IOAPIC_BASE              /* redirection entry 0, low */
        movl    $0x700, IOAPIC_BASE + 0x10      /* APIC_DM_EXTINT */
        movl    $0x11, IOAPIC_BASE              /* ... high: destination APIC 0 */
        movl    $0, IOAPIC_BASE + 0x10

/* ---- 9. Invoke the BIOS: back to real mode at F000:FFF0. */
        movl    $msg_invoke, %esi
        call    puts

        /* Our own GDT: we cannot trust the selectors the builder left. */
        lgdt    gdt_desc
        ljmp    $0x08, $17f             /* reload CS from our GDT */
17:     movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        /* Real mode needs 64 KiB limits in the hidden descriptor caches of
           every segment register: load the 16-bit data descriptor, then
           jump into the 16-bit code descriptor (base = _start). */
        movw    $0x20, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %fs
        movw    %ax, %gs
        movw    %ax, %ss
        ljmp    $0x18, $(to_real - _start)

        .code16
to_real:
        lidt    %cs:(rm_idt_desc - _start)      /* IVT at 0, 256 vectors */
        movl    %cr0, %eax
        andl    $~0x00000001, %eax      /* clear CR0.PE: real mode */
        movl    %eax, %cr0
        xorw    %ax, %ax                /* real-mode segment values */
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %fs
        movw    %ax, %gs
        movw    %ax, %ss
        movw    $0x7000, %sp
        ljmp    $0xF000, $0xFFF0        /* the BIOS reset vector */
        .code32

/* ------------------------------------------------------------------ */

/* stop: print ESI and halt forever. */
stop:
        call    puts
1:      cli
        hlt
        jmp     1b

/* putc: AL -> port 0xE9. */
putc:
        outb    %al, $DEBUG_PORT
        ret

/* puts: NUL-terminated string at ESI -> port 0xE9.  Preserves all but ESI. */
puts:
        pushl   %eax
1:      lodsb
        testb   %al, %al
        jz      2f
        call    putc
        jmp     1b
2:      popl    %eax
        ret

newline:
        pushl   %eax
        movb    $'\n', %al
        call    putc
        popl    %eax
        ret

/* putdec: EAX in decimal.  Preserves all. */
putdec:
        pushal
        movl    $10, %ecx
        xorl    %esi, %esi
1:      xorl    %edx, %edx
        divl    %ecx
        pushl   %edx
        incl    %esi
        testl   %eax, %eax
        jnz     1b
2:      popl    %eax
        addb    $'0', %al
        call    putc
        decl    %esi
        jnz     2b
        popal
        ret

/* puthex: EAX as 0x + 8 hex digits.  Preserves all. */
puthex:
        pushal
        movl    %eax, %edx
        movb    $'0', %al
        call    putc
        movb    $'x', %al
        call    putc
        movl    $8, %ecx
1:      roll    $4, %edx
        movl    %edx, %eax
        andl    $0xF, %eax
        movb    hex_digits(%eax), %al
        call    putc
        loop    1b
        popal
        ret

/* strcmp: ZF=1 if the strings at ESI and EDI are equal.  Preserves all. */
strcmp:
        pushl   %esi
        pushl   %edi
        pushl   %eax
1:      movb    (%esi), %al
        cmpb    (%edi), %al
        jne     2f
        incl    %esi
        incl    %edi
        testb   %al, %al
        jnz     1b                      /* equal so far; ZF=1 at the NUL */
2:      popl    %eax
        popl    %edi
        popl    %esi
        ret

/* cmos_write16: DX -> CMOS registers CL (low byte) and CL+1 (high byte). */
cmos_write16:
        pushl   %eax
        movb    %cl, %al
        outb    %al, $CMOS_INDEX
        movb    %dl, %al
        outb    %al, $CMOS_DATA
        movb    %cl, %al
        incb    %al
        outb    %al, $CMOS_INDEX
        movb    %dh, %al
        outb    %al, $CMOS_DATA
        popl    %eax
        ret

/* ------------------------------------------------------------------ */
        .section .rodata, "a"
        .p2align 3
/* GDT: 0x08 flat 32-bit code, 0x10 flat 32-bit data,
        0x18 16-bit code (base 0x100000 = _start, limit 64 KiB),
        0x20 16-bit data (base 0, limit 64 KiB). */
gdt:
        .quad   0                       /* 0x00: null */
        .quad   0x00CF9A000000FFFF      /* 0x08: code, base 0, 4 GiB, 32-bit */
        .quad   0x00CF92000000FFFF      /* 0x10: data, base 0, 4 GiB, 32-bit */
        .quad   0x00009A100000FFFF      /* 0x18: code, base 0x100000, 64 KiB, 16-bit */
        .quad   0x000092000000FFFF      /* 0x20: data, base 0, 64 KiB, 16-bit */
gdt_end:
gdt_desc:
        .word   gdt_end - gdt - 1       /* limit */
        .long   gdt                     /* linear base */
rm_idt_desc:
        .word   0x3FF                   /* real-mode IVT: 256 * 4 bytes */
        .long   0                       /* at address 0 */

e820_table:     /* start, end, type name (the last end is filled in) */
        .long   0x00000000, 0x0009FC00, str_ram
        .long   0x0009FC00, 0x000A0000, str_reserved
        .long   0x000F0000, 0x00100000, str_reserved
        .long   0x00100000, 0,          str_ram

hex_digits:     .ascii  "0123456789abcdef"
str_firmware:   .asciz  "firmware"
str_ram:        .asciz  ": RAM\n"
str_reserved:   .asciz  ": RESERVED\n"
msg_banner:     .asciz  "HVM Loader\n"
msg_no_xen:     .asciz  "Not running on Xen (no XenVMMXenVMM CPUID leaf): stopping.\n"
msg_hcall:      .asciz  "hypercall page at 0x80000\n"
msg_xen_v:      .asciz  "Detected Xen v"
msg_bad_start:  .asciz  "hvm_start_info: bad magic: stopping.\n"
msg_start:      .asciz  "memory map: hvm_start_info at "
msg_start_v:    .asciz  ", version "
msg_start_m:    .asciz  ", "
msg_start_m2:   .asciz  " module(s)\n"
msg_bad_info:   .asciz  "hvm_info_table at 0x9F800: bad signature or checksum: stopping.\n"
msg_info:       .asciz  "hvm_info_table at 0x9F800: "
msg_info_cpus:  .asciz  " vCPUs, low memory "
msg_kib:        .asciz  " KiB\n"
msg_no_bios:    .asciz  "no module named \"firmware\": stopping.\n"
msg_bad_size:   .asciz  "firmware module is not 65536 bytes: stopping.\n"
msg_loading:    .asciz  "Loading xenlab BIOS ...\n"
msg_cmos:       .asciz  "CMOS memory size: base 640 KiB, extended "
msg_cmos2:      .asciz  " KiB, 64 KiB blocks above 16 MiB "
msg_e820:       .asciz  "E820 table:\n"
msg_e820_a:     .asciz  " [0"
msg_e820_b:     .asciz  "]: "
msg_e820_c:     .asciz  " - "
msg_invoke:     .asciz  "Invoking xenlab BIOS ...\n"

/* ------------------------------------------------------------------ */
        .data
        .p2align 2
start_info:     .long   0               /* EBX on entry */
ext_mem:        .long   0
alt_mem:        .long   0
        .p2align 4
stack:          .fill   1024, 1, 0      /* 1 KiB stack, in the image: no .bss */
stack_top:

/* ------------------------------------------------------------------ */
/* XEN_ELFNOTE_PHYS32_ENTRY (18): the 32-bit entry point for PVH-style
   loaders (QEMU -kernel; Xen's libxc for PVH).  Name "Xen", type 18. */
        .section .note.Xen, "a", @note
        .p2align 2
        .long   4                       /* namesz */
        .long   4                       /* descsz */
        .long   18                      /* type: XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz  "Xen"
        .long   _start
