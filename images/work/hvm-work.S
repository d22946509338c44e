/*
 * images/work/hvm-work.S -- the HVM half of the PV-versus-HVM workload.
 *
 * `xenlab compare images/pv-work.cfg images/hvm-work.cfg` runs the same small
 * job twice on the same disk (work.img): read sectors 1 to 8 one at a time and
 * print the first line of each.  pv-work (pv-work/pv-work.c) does it with
 * blkfront and its PV console; this boot sector does it the way an unmodified
 * system does, with the BIOS's disk and video services (INT 13h AH=42h,
 * INT 10h AH=0Eh), which drive the emulated IDE controller and the screen.
 *
 * Both write "xenlab workload: start" and "xenlab workload: end" to Xen's
 * console around the job (here: port 0xE9, the debug port Xen itself
 * emulates), so the comparison counts exactly the job's work.
 *
 * The disk (work.img, 1 MiB): LBA 0 this boot sector (signed 55h AAh),
 * LBA 1-8 one text line each, "workload: sector N of 8".  Plain PC code: it
 * also boots on qemu-system-i386 with any BIOS.
 */
        .code16
        .text
        .globl  start
start:
        cli
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    $0x7C00, %sp            /* the stack grows down below us */
        sti
        cld
        movb    %dl, drive              /* the BIOS passes the boot drive in DL */

        movw    $msg_start, %si
        call    e9_puts

next:   movw    $dap, %si               /* INT 13h AH=42h: read what the DAP says */
        movb    $0x42, %ah
        movb    drive, %dl
        int     $0x13
        jc      failed
        movw    $BUFFER, %si            /* print the sector's first line */
1:      lodsb
        cmpb    $'\n', %al
        je      2f
        testb   %al, %al
        je      2f
        call    putc
        jmp     1b
2:      movb    $'\r', %al
        call    putc
        movb    $'\n', %al
        call    putc
        incw    dap_lba
        cmpw    $LAST_LBA + 1, dap_lba
        jb      next

        movw    $msg_end, %si
        call    e9_puts
stop:   cli
        hlt
        jmp     stop

failed: movw    $msg_failed, %si
        call    e9_puts
        jmp     stop

/* putc: AL on the screen (INT 10h AH=0Eh teletype, page 0). */
putc:   pushw   %bx
        movb    $0x0E, %ah
        movw    $0x0007, %bx
        int     $0x10
        popw    %bx
        ret

/* e9_puts: the NUL-terminated string at DS:SI to port 0xE9. */
e9_puts:
        lodsb
        testb   %al, %al
        jz      1f
        outb    %al, $0xE9
        jmp     e9_puts
1:      ret

BUFFER   = 0x8000
LAST_LBA = 8

        .p2align 2
dap:    .byte   16, 0                   /* disk address packet: size, reserved */
        .word   1                       /* sectors */
        .word   BUFFER, 0               /* buffer offset, segment */
dap_lba:
        .quad   1                       /* first sector */
drive:  .byte   0x80

msg_start:  .asciz "xenlab workload: start\n"
msg_end:    .asciz "xenlab workload: end\n"
msg_failed: .asciz "hvm-work: int 13h failed\n"

        .org    510
        .byte   0x55, 0xAA

/* LBA 1-8: the lines the job reads. */
        .irp    sec, 1, 2, 3, 4, 5, 6, 7, 8
        .ascii  "workload: sector \sec of 8\n"
        .org    512 * (\sec + 1)
        .endr
