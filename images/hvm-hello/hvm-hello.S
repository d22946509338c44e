/*
 * images/hvm-hello/hvm-hello.S -- an HVM guest: a boot sector and a little more.
 *
 * Nothing here knows about xenlab.  It is plain PC code: it boots on xenlab's
 * teaching BIOS, on the real hvmloader + SeaBIOS, and on qemu-system-i386.
 *
 * The disk (hvm-hello.img, 1 MiB) holds nine sectors of code and data:
 *
 *   LBA 0     the boot sector.  The BIOS (INT 19h) loads it to 0000:7C00
 *             and jumps there with DL = the boot drive (80h = first disk).
 *             It must fit in 510 bytes; bytes 510-511 are the signature
 *             55h AAh.  It sets up COM1, prints a banner and loads ...
 *   LBA 1-8   ... stage 2 to 0000:7E00 (right after itself) with INT 13h
 *             AH=42h, checks its magic and jumps to it.  Stage 2:
 *               - walks the memory map with INT 15h AX=E820h and prints it
 *               - asks CPUID leaf 0x40000000 whether it runs on Xen
 *               - switches to 32-bit protected mode (GDT, CR0.PE, far jump)
 *               - writes a line straight into VGA text memory at 0xB8000
 *                 and prints it on COM1 by port I/O (no BIOS any more)
 *               - writes "hvm-hello: done" on port 0xE9 and COM1, exits QEMU
 *                 through isa-debug-exit (port 0xF4) or else stops: cli; hlt
 *
 * Output.  Every line in real mode is assembled in a line buffer and then
 * sent twice: to the screen through the BIOS (INT 10h AH=0Eh teletype) and
 * to COM1 (16550 UART at 0x3F8) by the guest itself.  xenlab's teaching BIOS
 * also copies INT 10h teletype output to COM1, so under that BIOS each
 * real-mode line appears twice on the serial port.  SeaBIOS under Xen has no
 * such mirror (and no VGA BIOS), so there the serial port gets each line once.
 *
 * Expected screen (xenlab, memory = 32):
 *   hvm-hello: boot sector at 0000:7C00, boot drive 0x80
 *   int 13h AH=42h: read 8 sectors (LBA 1-8) to 0000:7E00
 *   hvm-hello: stage 2 running at 0000:7E00
 *   int 15h E820h: memory map
 *   e820: base 0x0000000000000000 length 0x000000000009fc00 type 0x00000001
 *   ... one line per entry ...
 *   Xen detected: XenVMMXenVMM, max leaf 0x40000005   (QEMU: Not running on Xen)
 *   protected mode: wrote VGA memory directly          (white on blue)
 * then on COM1 "protected mode: ..." and "hvm-hello: done", and on port
 * 0xE9 "hvm-hello: done".
 *
 * Build (images/Makefile): as --32, ld -m elf_i386 -Ttext 0x7c00,
 * objcopy -O binary, truncate -s 1M.  Every address below is a physical
 * address below 64 KiB, so segment registers stay 0 in real mode.
 */
        .code16
        .text

/* ---- constants -------------------------------------------------------- */
COM1            = 0x3F8         /* 16550 UART, first serial port */
COM1_THR        = COM1 + 0      /* transmit holding register (DLAB = 0) */
COM1_DLL        = COM1 + 0      /* divisor latch low byte (DLAB = 1) */
COM1_IER        = COM1 + 1      /* interrupt enable register (DLAB = 0) */
COM1_DLM        = COM1 + 1      /* divisor latch high byte (DLAB = 1) */
COM1_FCR        = COM1 + 2      /* FIFO control register */
COM1_LCR        = COM1 + 3      /* line control: bit 7 DLAB, bits 0-1 word length */
COM1_MCR        = COM1 + 4      /* modem control: DTR, RTS */
COM1_LSR        = COM1 + 5      /* line status: bit 5 = THR empty */
LSR_THRE        = 0x20
DEBUG_PORT      = 0xE9          /* Xen's (and Bochs/QEMU's) debug console port */
ISA_DEBUG_EXIT  = 0xF4          /* QEMU isa-debug-exit: exit((value << 1) | 1) */
VGA_TEXT        = 0xB8000       /* 80x25 text screen, 2 bytes per cell */
VGA_ATTR        = 0x1F          /* attribute: white (F) on blue (1) */
SMAP            = 0x534D4150    /* 'SMAP', the E820 magic */

STAGE2_ADDR     = 0x7E00        /* right after the boot sector */
STAGE2_SECTORS  = 8             /* LBA 1..8 */
STAGE2_MAGIC    = 0x32474C48    /* "HLG2" in memory order */
E820_BUF        = 0x0500        /* 20-byte buffer for one E820 entry */
LINE_BUF        = 0x0600        /* the line being assembled */
LINE_MAX        = 0x0100
STACK_TOP       = 0x7C00        /* the stack grows down below the boot sector */

CODE_SEL        = 0x08          /* GDT entry 1: flat 32-bit code */
DATA_SEL        = 0x10          /* GDT entry 2: flat 32-bit data */

/* ====================================================================== */
/* LBA 0: the boot sector, at 0000:7C00                                   */
/* ====================================================================== */
        .globl  start
start:
        ljmp    $0x0000, $1f            /* CS = 0 (some BIOSes jump to 07C0:0000) */
1:      xorw    %ax, %ax
        movw    %ax, %ds                /* DS = ES = SS = 0: offsets = addresses */
        movw    %ax, %es
        movw    %ax, %ss
        movw    $STACK_TOP, %sp
        cld                             /* string instructions count upwards */
        sti                             /* the BIOS services may need interrupts */
        movb    %dl, boot_drive         /* DL = boot drive, handed over by the BIOS */

        call    serial_init

        movw    $msg_banner, %si
        call    add_str
        movb    boot_drive, %al
        movw    $2, %cx
        call    add_hex                 /* "0x80" for the first hard disk */
        call    emit_line

/* INT 13h AH=42h: extended read.  DS:SI points to a disk address packet
   (size, count, buffer segment:offset, 64-bit LBA); DL = drive.  CF = 1
   and AH = status on error. */
        movb    $0x42, %ah
        movb    boot_drive, %dl
        movw    $dap, %si
        int     $0x13                   /* BIOS disk service */
        jc      disk_error
        cmpl    $STAGE2_MAGIC, stage2_magic   /* did we read what we think? */
        jne     bad_magic
        movw    $msg_loaded, %si
        call    add_str
        call    emit_line
        jmp     stage2

disk_error:
        movw    $msg_disk_error, %si
        call    add_str
        movb    %ah, %al                /* AH = INT 13h status code */
        movw    $2, %cx
        call    add_hex
        call    emit_line
        jmp     halt
bad_magic:
        movw    $msg_bad_magic, %si
        call    add_str
        call    emit_line
halt:
        cli                             /* no interrupts can wake us ... */
        hlt                             /* ... so the vCPU stops here */
        jmp     halt

/* ---- line output, shared with stage 2 (real mode only) ---------------- */

/* serial_init: COM1 at 115200 baud, 8 data bits, no parity, 1 stop bit. */
serial_init:
        movw    $COM1_IER, %dx
        movb    $0x00, %al
        outb    %al, %dx                /* IER = 0: no UART interrupts */
        movw    $COM1_LCR, %dx
        movb    $0x80, %al
        outb    %al, %dx                /* LCR: DLAB = 1, divisor latch visible */
        movw    $COM1_DLL, %dx
        movb    $0x01, %al
        outb    %al, %dx                /* divisor 1 = 115200 baud (low byte) */
        movw    $COM1_DLM, %dx
        movb    $0x00, %al
        outb    %al, %dx                /* divisor high byte */
        movw    $COM1_LCR, %dx
        movb    $0x03, %al
        outb    %al, %dx                /* LCR: 8N1, DLAB = 0 again */
        movw    $COM1_FCR, %dx
        movb    $0xC7, %al
        outb    %al, %dx                /* FCR: enable and clear both FIFOs */
        movw    $COM1_MCR, %dx
        movb    $0x03, %al
        outb    %al, %dx                /* MCR: DTR and RTS on */
        ret

/* serial_putc: AL -> COM1.  Wait until LSR bit 5 says the transmit
   holding register is empty (at most 65535 polls), then write it. */
serial_putc:
        pushw   %ax
        pushw   %cx
        pushw   %dx
        movb    %al, %ah
        movw    $COM1_LSR, %dx
        movw    $0xFFFF, %cx
1:      inb     %dx, %al                /* read the line status register */
        testb   $LSR_THRE, %al
        jnz     2f
        loop    1b
2:      movw    $COM1_THR, %dx
        movb    %ah, %al
        outb    %al, %dx                /* one character out of the UART */
        popw    %dx
        popw    %cx
        popw    %ax
        ret

/* add_char: append AL to the line buffer (silently drops what overflows). */
add_char:
        pushw   %di
        movw    line_end, %di
        cmpw    $LINE_BUF + LINE_MAX - 3, %di   /* keep room for CR LF NUL */
        jae     1f
        stosb                           /* ES:DI = AL, DI += 1 */
        movw    %di, line_end
1:      popw    %di
        ret

/* add_str: append the NUL-terminated string at DS:SI. */
add_str:
        pushw   %ax
        pushw   %si
1:      lodsb
        testb   %al, %al
        jz      2f
        call    add_char
        jmp     1b
2:      popw    %si
        popw    %ax
        ret

/* add_hex: append the low CX hex digits of EAX (most significant first). */
add_hex:
        pushal
        movl    %eax, %edx
1:      decw    %cx
        movl    %edx, %eax
        pushw   %cx
        shlb    $2, %cl                 /* 4 bits per digit */
        shrl    %cl, %eax
        popw    %cx
        andb    $0x0F, %al
        addb    $'0', %al
        cmpb    $'9', %al
        jbe     2f
        addb    $'a' - '9' - 1, %al
2:      call    add_char
        testw   %cx, %cx
        jnz     1b
        popal
        ret

/* emit_line: end the line with CR LF, print it on the screen through the
   BIOS and on COM1 ourselves, then empty the buffer.  Preserves all. */
emit_line:
        pushal
        movb    $'\r', %al
        call    add_char
        movb    $'\n', %al
        call    add_char
        movw    line_end, %di
        movb    $0, (%di)               /* NUL-terminate */
        movw    $LINE_BUF, %si
1:      lodsb
        testb   %al, %al
        jz      2f
        pushw   %si
        movb    $0x0E, %ah              /* INT 10h AH=0Eh: teletype output of AL */
        xorw    %bx, %bx                /* BH = page 0 (BL = colour, graphics only) */
        int     $0x10                   /* BIOS video service */
        popw    %si
        jmp     1b
2:      movw    $LINE_BUF, %si
3:      lodsb
        testb   %al, %al
        jz      4f
        call    serial_putc             /* the same line straight to the UART */
        jmp     3b
4:      movw    $LINE_BUF, line_end
        popal
        ret

/* disk address packet for INT 13h AH=42h */
dap:
        .byte   0x10                    /* packet size: 16 bytes */
        .byte   0                       /* reserved */
        .word   STAGE2_SECTORS          /* number of sectors to read */
        .word   STAGE2_ADDR, 0x0000     /* buffer offset, segment */
        .quad   1                       /* first LBA */

boot_drive:     .byte   0
line_end:       .word   LINE_BUF
msg_banner:     .asciz  "hvm-hello: boot sector at 0000:7C00, boot drive 0x"
msg_loaded:     .asciz  "int 13h AH=42h: read 8 sectors (LBA 1-8) to 0000:7E00"
msg_disk_error: .asciz  "int 13h AH=42h failed, status 0x"
msg_bad_magic:  .asciz  "stage 2: bad magic"

        .org    510
        .byte   0x55, 0xAA              /* boot signature, checked by INT 19h */

/* ====================================================================== */
/* LBA 1-8: stage 2, at 0000:7E00                                         */
/* ====================================================================== */
stage2_magic:
        .long   STAGE2_MAGIC
stage2:
        movw    $msg_stage2, %si
        call    add_str
        call    emit_line

/* ---- INT 15h AX=E820h: the memory map, one entry per call ------------- */
/* In:  EAX = E820h, EDX = 'SMAP', EBX = continuation (0 = first entry),
        ECX = buffer size, ES:DI = buffer.
   Out: CF = 0, EAX = 'SMAP', ECX = bytes stored, EBX = next continuation
        (0 after the last entry).  Entry: base (8), length (8), type (4). */
        movw    $msg_e820, %si
        call    add_str
        call    emit_line
        xorl    %ebx, %ebx              /* start with the first entry */
e820_next:
        movl    $0xE820, %eax
        movl    $SMAP, %edx
        movl    $20, %ecx
        movw    $E820_BUF, %di
        int     $0x15                   /* BIOS system service: memory map */
        jc      e820_done               /* CF = 1: no (more) entries */
        cmpl    $SMAP, %eax             /* a BIOS that knows E820h echoes 'SMAP' */
        jne     e820_done
        movw    $msg_e820_base, %si
        call    add_str
        movw    $8, %cx
        movl    E820_BUF + 4, %eax      /* base, high dword */
        call    add_hex
        movl    E820_BUF + 0, %eax      /* base, low dword */
        call    add_hex
        movw    $msg_e820_length, %si
        call    add_str
        movl    E820_BUF + 12, %eax     /* length, high dword */
        call    add_hex
        movl    E820_BUF + 8, %eax      /* length, low dword */
        call    add_hex
        movw    $msg_e820_type, %si
        call    add_str
        movl    E820_BUF + 16, %eax     /* type: 1 RAM, 2 reserved, 3 ACPI, ... */
        call    add_hex
        call    emit_line
        testl   %ebx, %ebx              /* EBX = 0: that was the last one */
        jnz     e820_next
e820_done:

/* ---- CPUID leaf 0x40000000: which hypervisor is this? ----------------- */
/* Hypervisors answer leaves 0x40000000 and up.  Xen returns EAX = the
   highest Xen leaf and EBX, ECX, EDX = "XenV" "MMXe" "nVMM". */
        movl    $0x40000000, %eax
        cpuid                           /* a VM exit under Xen: Xen answers */
        movl    %ebx, xen_sig + 0
        movl    %ecx, xen_sig + 4
        movl    %edx, xen_sig + 8
        movl    %eax, %edx              /* EDX = max leaf */
        movw    $xen_sig, %si
        movw    $msg_xen_sig, %di
        movw    $12, %cx
        repe    cmpsb                   /* compare the 12 signature bytes */
        jne     not_xen
        movw    $msg_xen, %si
        call    add_str
        movw    $xen_sig, %si
        call    add_str
        movw    $msg_max_leaf, %si
        call    add_str
        movl    %edx, %eax
        movw    $8, %cx
        call    add_hex
        jmp     1f
not_xen:
        movw    $msg_not_xen, %si
        call    add_str
1:      call    emit_line

/* ---- where is the cursor?  The protected-mode line goes below it ------ */
        movb    $0x03, %ah              /* INT 10h AH=03h: get cursor, DH = row */
        xorw    %bx, %bx                /* BH = page 0 */
        xorw    %dx, %dx                /* without a VGA BIOS DH stays 0 */
        int     $0x10                   /* BIOS video service */
        cmpb    $24, %dh
        jbe     1f
        movb    $24, %dh                /* never below the last row */
1:      movb    %dh, vga_row

/* ---- into 32-bit protected mode ---------------------------------------- */
        cli                             /* no real-mode IVT from here on */
        lgdt    gdt_desc                /* GDTR = our table below */
        movl    %cr0, %eax
        orl     $1, %eax                /* CR0.PE: protection enable */
        movl    %eax, %cr0
        ljmpl   $CODE_SEL, $pm32        /* reload CS: now 32-bit code */

        .code32
pm32:
        movw    $DATA_SEL, %ax
        movw    %ax, %ds                /* flat 4 GiB data everywhere */
        movw    %ax, %es
        movw    %ax, %fs
        movw    %ax, %gs
        movw    %ax, %ss
        movl    $STACK_TOP, %esp

/* write the line into VGA text memory: cell = (character, attribute) */
        movzbl  vga_row, %eax
        imull   $160, %eax, %edi        /* 80 cells * 2 bytes per row */
        addl    $VGA_TEXT, %edi         /* EDI = 0xB8000 + row * 160 */
        movl    $msg_pm, %esi
        movb    $VGA_ATTR, %ah
1:      lodsb
        testb   %al, %al
        jz      2f
        stosw                           /* character + attribute into video RAM */
        jmp     1b

/* and the same line on COM1: no BIOS in protected mode, only port I/O */
2:      movl    $msg_pm, %esi
        call    serial_puts32
        movl    $msg_crlf, %esi
        call    serial_puts32

/* the end: "hvm-hello: done" on Xen's debug port 0xE9 and on COM1 */
        movl    $msg_done, %esi
3:      lodsb
        testb   %al, %al
        jz      4f
        outb    %al, $DEBUG_PORT        /* debug port: one character per write */
        jmp     3b
4:      movb    $'\n', %al
        outb    %al, $DEBUG_PORT        /* the debug port ends lines with LF only */
        movl    $msg_done, %esi
        call    serial_puts32
        movl    $msg_crlf, %esi
        call    serial_puts32

        movb    $0x31, %al
        outb    %al, $ISA_DEBUG_EXIT    /* QEMU: exit code (0x31 << 1) | 1 = 99 */
5:      cli                             /* elsewhere (Xen, xenlab): stop */
        hlt
        jmp     5b

/* serial_puts32: the NUL-terminated string at ESI -> COM1, polling LSR. */
serial_puts32:
1:      lodsb
        testb   %al, %al
        jz      4f
        movb    %al, %ah
        movw    $COM1_LSR, %dx
        movl    $0xFFFF, %ecx
2:      inb     %dx, %al                /* line status register */
        testb   $LSR_THRE, %al          /* transmit holding register empty? */
        jnz     3f
        loop    2b
3:      movw    $COM1_THR, %dx
        movb    %ah, %al
        outb    %al, %dx                /* one character out of the UART */
        jmp     1b
4:      ret

/* ---- data --------------------------------------------------------------- */
        .balign 8
gdt:
        .quad   0                       /* 0x00: the null descriptor */
        .quad   0x00CF9A000000FFFF      /* 0x08: code, base 0, limit 4 GiB, 32-bit, exec/read */
        .quad   0x00CF92000000FFFF      /* 0x10: data, base 0, limit 4 GiB, read/write */
gdt_end:
gdt_desc:
        .word   gdt_end - gdt - 1       /* limit */
        .long   gdt                     /* linear base address */

vga_row:        .byte   0
xen_sig:        .space  13              /* 12 signature bytes + NUL */
msg_xen_sig:    .ascii  "XenVMMXenVMM"
msg_stage2:     .asciz  "hvm-hello: stage 2 running at 0000:7E00"
msg_e820:       .asciz  "int 15h E820h: memory map"
msg_e820_base:  .asciz  "e820: base 0x"
msg_e820_length: .asciz " length 0x"
msg_e820_type:  .asciz  " type 0x"
msg_xen:        .asciz  "Xen detected: "
msg_max_leaf:   .asciz  ", max leaf 0x"
msg_not_xen:    .asciz  "Not running on Xen"
msg_pm:         .asciz  "protected mode: wrote VGA memory directly"
msg_done:       .asciz  "hvm-hello: done"
msg_crlf:       .asciz  "\r\n"
        .org    512 * (1 + STAGE2_SECTORS)      /* exactly LBA 0..8 */
