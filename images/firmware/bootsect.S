/*
 * images/firmware/bootsect.S -- a teaching boot sector (and the sector after it).
 *
 * INT 19h loads sector 0 of the boot disk to 0000:7C00 and jumps there with
 * DL = boot drive (80h).  Everything must fit in 510 bytes: the last two
 * bytes of the sector are the signature 55h AAh that the BIOS checks.
 *
 * It exercises the BIOS services a real boot loader uses:
 *   INT 10h AH=0Eh  teletype output (the xenlab BIOS mirrors it on COM1)
 *   INT 12h         conventional memory in KiB
 *   INT 15h E820h   the memory map, one entry per call
 *   INT 13h AH=41h  are the LBA extensions there?
 *   INT 13h AH=42h  extended read: LBA 1 -> 0000:8000
 *   INT 1Ah AH=00h  timer ticks since midnight
 * then writes a marker line to the debug port 0xE9 and stops the machine:
 * on QEMU with -device isa-debug-exit,iobase=0xf4 the write of 31h to port
 * F4h exits QEMU with status (31h << 1) | 1 = 99; elsewhere (xenlab) the
 * port does nothing and `cli; hlt` stops the vCPU.
 *
 * Expected screen / serial text:
 *   Hello from the boot sector!
 *   int 12h: memory 639 KiB
 *   int 15h: e820 entries 4
 *   int 13h: extensions present
 *   LBA 1: second sector says hi
 *   int 1Ah: ticks 2
 *   int 1Ah: ticks 2
 * and on port 0xE9:
 *   xenlab bootsect: done
 */
        .code16
        .text

DEBUG_PORT      = 0xE9          /* debug console: out = one character */
ISA_DEBUG_EXIT  = 0xF4          /* QEMU isa-debug-exit: exit((value << 1) | 1) */
SMAP            = 0x534D4150    /* 'SMAP' */
E820_BUF        = 0x0600        /* 20-byte scratch buffer for E820 entries */
SECTOR1_BUF     = 0x8000        /* where LBA 1 is read */

        .globl  start
start:
        ljmp    $0x0000, $1f            /* CS = 0 (some BIOSes use 07C0:0000) */
1:      xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    $0x7C00, %sp            /* stack grows down below us */
        cld
        sti
        movb    %dl, boot_drive         /* the BIOS tells us where we came from */

        movw    $msg_hello, %si
        call    puts

/* INT 12h: AX = KiB of conventional memory */
        movw    $msg_mem, %si
        call    puts
        int     $0x12
        movzwl  %ax, %eax
        call    putdec
        movw    $msg_kib, %si
        call    puts

/* INT 15h AX=E820h: count entries until EBX comes back 0 */
        xorl    %ebx, %ebx              /* continuation: 0 = first entry */
        xorw    %bp, %bp                /* BP = count */
2:      movl    $0xE820, %eax
        movl    $SMAP, %edx
        movl    $20, %ecx
        movw    $E820_BUF, %di          /* ES:DI = buffer */
        int     $0x15
        jc      3f                      /* CF: no (more) entries */
        cmpl    $SMAP, %eax             /* a BIOS that knows E820 echoes 'SMAP' */
        jne     3f
        incw    %bp
        testl   %ebx, %ebx
        jnz     2b
3:      movw    $msg_e820, %si
        call    puts
        movzwl  %bp, %eax
        call    putdec
        movw    $msg_crlf, %si
        call    puts

/* INT 13h AH=41h: LBA extensions? then AH=42h: read LBA 1 */
        movb    $0x41, %ah
        movw    $0x55AA, %bx
        movb    boot_drive, %dl
        int     $0x13
        jc      no_ext
        cmpw    $0xAA55, %bx
        jne     no_ext
        movw    $msg_ext, %si
        call    puts
        movb    $0x42, %ah
        movb    boot_drive, %dl
        movw    $dap, %si               /* DS:SI = disk address packet */
        int     $0x13
        jc      read_error
        movw    $msg_lba1, %si
        call    puts
        movw    $SECTOR1_BUF, %si       /* the sector holds a C string */
        call    puts
        movw    $msg_crlf, %si
        call    puts
        jmp     ticks
no_ext:
        movw    $msg_noext, %si
        call    puts
        jmp     ticks
read_error:
        movw    $msg_readerr, %si
        call    puts

/* INT 1Ah AH=00h twice: CX:DX = ticks (18.2 per second) */
ticks:
        call    print_ticks
        call    print_ticks

/* marker on the debug port, then leave */
        movw    $msg_done, %si
4:      lodsb
        testb   %al, %al
        jz      5f
        outb    %al, $DEBUG_PORT
        jmp     4b
5:      movb    $0x31, %al
        outb    %al, $ISA_DEBUG_EXIT    /* QEMU: exit code 99 */
6:      cli                             /* xenlab (no such device): stop */
        hlt
        jmp     6b

print_ticks:
        movw    $msg_ticks, %si
        call    puts
        xorb    %ah, %ah
        int     $0x1A
        movw    %cx, %ax                /* EAX = CX:DX */
        shll    $16, %eax
        movw    %dx, %ax
        call    putdec
        movw    $msg_crlf, %si
        jmp     puts                    /* tail call */

/* puts: DS:SI NUL-terminated string -> screen.  putc: AL -> screen with
   INT 10h AH=0Eh (teletype, page 0).  Both preserve all but SI. */
puts:
        lodsb
        testb   %al, %al
        jz      1f
        call    putc
        jmp     puts
1:      ret

putc:
        pushaw
        movb    $0x0E, %ah
        xorw    %bx, %bx                /* BH = page 0 */
        int     $0x10
        popaw
        ret

/* putdec: EAX as unsigned decimal: divide by 10 until 0, pushing the
   remainders, then pop them (most significant digit first). */
putdec:
        pushal
        movl    $10, %ecx
        xorw    %si, %si                /* digits pushed */
1:      xorl    %edx, %edx
        divl    %ecx                    /* EAX = EDX:EAX / 10, EDX = remainder */
        pushw   %dx
        incw    %si
        testl   %eax, %eax
        jnz     1b
2:      popw    %ax
        addb    $'0', %al
        call    putc
        decw    %si
        jnz     2b
        popal
        ret

/* disk address packet for INT 13h AH=42h */
dap:
        .byte   0x10                    /* packet size */
        .byte   0                       /* reserved */
        .word   1                       /* sectors to read */
        .word   SECTOR1_BUF, 0x0000     /* buffer offset, segment */
        .quad   1                       /* starting LBA */

boot_drive:     .byte   0
msg_hello:      .asciz  "Hello from the boot sector!\r\n"
msg_mem:        .asciz  "int 12h: memory "
msg_kib:        .asciz  " KiB\r\n"
msg_e820:       .asciz  "int 15h: e820 entries "
msg_ext:        .asciz  "int 13h: extensions present\r\n"
msg_noext:      .asciz  "int 13h: no extensions\r\n"
msg_readerr:    .asciz  "int 13h: error\r\n"
msg_lba1:       .asciz  "LBA 1: "
msg_ticks:      .asciz  "int 1Ah: ticks "
msg_crlf:       .asciz  "\r\n"
msg_done:       .asciz  "xenlab bootsect: done\n"

        .org    510
        .byte   0x55, 0xAA              /* boot signature, checked by INT 19h */

/* ---- sector 1 (LBA 1): data the boot sector reads back ---------------- */
sector1:
        .asciz  "second sector says hi"
        .org    1024
