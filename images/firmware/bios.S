/*
 * images/firmware/bios.S -- the xenlab teaching BIOS.
 *
 * A real-mode PC BIOS small enough to read in one sitting.  It is a 64 KiB
 * ROM image that the platform maps at physical 0xF0000..0xFFFFF (segment
 * F000h).  The CPU leaves reset in real mode with CS:IP = F000:FFF0, the
 * "reset vector" 16 bytes below the top of the ROM; the far jump stored
 * there enters POST (power-on self test) below.
 *
 * What it mirrors (much simplified): SeaBIOS src/post.c (POST order:
 * ivt_init, bda_init, pic_setup, timer_setup, pci_setup, ata_setup,
 * memory, vga, then startBoot -> INT 19h), src/boot.c (INT 19h), src/disk.c
 * (INT 13h), src/hw/ata.c (ATA PIO), src/e820map.c (INT 15h E820),
 * src/clock.c (INT 1Ah, IRQ0), src/kbd.c (INT 16h, IRQ1),
 * src/system.c (INT 11h/12h/15h), vgasrc/vgabios.c (INT 10h).
 *
 * Build: as --32, ld -m elf_i386 -Ttext 0, objcopy -O binary (images/Makefile).
 * Every label is an offset inside segment F000h, because the image is
 * linked at address 0 and CS = F000h while it runs.
 *
 * Boot phase lines.  Each is written byte by byte to the Bochs/Xen debug
 * port 0xE9 AND to COM1 (identical text, '\n' line ends):
 *
 *   xenlab BIOS: POST
 *   xenlab BIOS: IVT and BDA
 *   xenlab BIOS: PIC and PIT
 *   xenlab BIOS: PCI (IDE I/O enabled)          or  PCI (no PIIX3 IDE found)
 *   xenlab BIOS: disks: hd0 <N> sectors         or  disks: none
 *   xenlab BIOS: memory <N> KiB
 *   xenlab BIOS: video
 *   xenlab BIOS: INT 19h boot from hd0
 *   xenlab BIOS: boot sector loaded at 0000:7C00, signature 55AA
 *   xenlab BIOS: jump to 0000:7C00 with DL=80h
 *   xenlab BIOS: No bootable device.            (only when boot fails; the
 *                                                screen shows it too)
 *
 * Memory this BIOS uses while it runs (all in RAM, the ROM is read-only):
 *   0x00000-0x003FF  IVT: 256 far pointers (offset, segment)
 *   0x00400-0x004FF  BDA: BIOS data area (fields listed at bda_init)
 *   0x01000-0x011FF  scratch buffer for ATA IDENTIFY during POST
 *   0x07000          top of the POST stack (grows down)
 *   0x07C00-0x07DFF  where INT 19h loads the boot sector
 *   0x9FC00-0x9FFFF  EBDA: extended BIOS data area (this BIOS's variables)
 *   0xB8000-0xB8F9F  VGA text screen, 80x25 cells of (char, attribute)
 */

        .code16
        .text
        .globl  post

/* ---------------------------------------------------------------- ports */
DEBUG_PORT      = 0xE9          /* Bochs/QEMU/Xen debug console: out = 1 char */
COM1            = 0x3F8         /* 16550 UART, first serial port */
COM1_THR        = COM1 + 0      /* transmit holding register (DLAB=0) */
COM1_DLL        = COM1 + 0      /* divisor latch low byte (DLAB=1) */
COM1_IER        = COM1 + 1      /* interrupt enable (DLAB=0) */
COM1_DLM        = COM1 + 1      /* divisor latch high byte (DLAB=1) */
COM1_FCR        = COM1 + 2      /* FIFO control */
COM1_LCR        = COM1 + 3      /* line control: bit 7 = DLAB, bits 0-1 = word length */
COM1_MCR        = COM1 + 4      /* modem control: DTR, RTS */
COM1_LSR        = COM1 + 5      /* line status: bit 5 = transmit holding register empty */
PIC1_CMD        = 0x20          /* master 8259 PIC command (ICW1, OCW2 = EOI) */
PIC1_DATA       = 0x21          /* master 8259 PIC data (ICW2-4, mask register) */
PIC2_CMD        = 0xA0          /* slave 8259 PIC command */
PIC2_DATA       = 0xA1          /* slave 8259 PIC data */
PIT_CH0         = 0x40          /* 8254 PIT channel 0 counter (wired to IRQ0) */
PIT_MODE        = 0x43          /* 8254 PIT mode/command register */
KBD_DATA        = 0x60          /* 8042 keyboard controller data (scancode) */
CMOS_INDEX      = 0x70          /* MC146818 RTC/CMOS: register index */
CMOS_DATA       = 0x71          /* MC146818 RTC/CMOS: register data */
PCI_CONFIG_ADDR = 0xCF8         /* PCI configuration mechanism #1: address (32 bit) */
PCI_CONFIG_DATA = 0xCFC         /* PCI configuration mechanism #1: data (32 bit) */
ATA_DATA        = 0x1F0         /* primary ATA channel: 16-bit data register */
ATA_ERROR       = 0x1F1         /* error register (read) */
ATA_COUNT       = 0x1F2         /* sector count */
ATA_LBA0        = 0x1F3         /* LBA bits 0-7 */
ATA_LBA1        = 0x1F4         /* LBA bits 8-15 */
ATA_LBA2        = 0x1F5         /* LBA bits 16-23 */
ATA_DRIVE       = 0x1F6         /* 0xE0 | LBA bits 24-27: LBA mode, master drive */
ATA_STATUS      = 0x1F7         /* status (read) */
ATA_COMMAND     = 0x1F7         /* command (write) */
ATA_CTRL        = 0x3F6         /* device control (write): bit 1 nIEN, bit 2 SRST;
                                   alternate status (read, does not ack IRQ) */
CRTC_INDEX      = 0x3D4         /* VGA CRT controller index (colour) */
CRTC_DATA       = 0x3D5         /* VGA CRT controller data */
ISA_DEBUG_EXIT  = 0xF4          /* (QEMU test device, used only by bootsect.S) */

/* ATA status register bits */
ATA_SR_BSY      = 0x80          /* busy: other bits are not valid */
ATA_SR_DRDY     = 0x40          /* drive ready */
ATA_SR_DF       = 0x20          /* device fault */
ATA_SR_DRQ      = 0x08          /* data request: a 512-byte sector may be moved */
ATA_SR_ERR      = 0x01          /* error: see the error register */
ATA_CMD_READ    = 0x20          /* READ SECTORS (PIO, LBA28) */
ATA_CMD_WRITE   = 0x30          /* WRITE SECTORS (PIO, LBA28) */
ATA_CMD_FLUSH   = 0xE7          /* FLUSH CACHE */
ATA_CMD_IDENTIFY = 0xEC         /* IDENTIFY DEVICE: 256 words of drive facts */
ATA_TIMEOUT     = 0x100000      /* polls of the status register before giving up */

/* ------------------------------------------------------ data areas */
BDA_SEG         = 0x0040        /* BIOS data area = physical 0x400 */
/* BDA fields, as offsets inside segment 0040h (physical = 0x400 + offset) */
BDA_COM1        = 0x00          /* 0x400 word: I/O base of COM1 (0x3F8) */
BDA_EBDA_SEG    = 0x0E          /* 0x40E word: segment of the EBDA */
BDA_EQUIPMENT   = 0x10          /* 0x410 word: equipment list (INT 11h) */
BDA_MEM_KB      = 0x13          /* 0x413 word: conventional memory in KiB (INT 12h) */
BDA_KBD_FLAGS   = 0x17          /* 0x417 byte: keyboard shift flags */
BDA_KBD_HEAD    = 0x1A          /* 0x41A word: keyboard buffer head (offset in seg 40h) */
BDA_KBD_TAIL    = 0x1C          /* 0x41C word: keyboard buffer tail */
BDA_KBD_BUF     = 0x1E          /* 0x41E 16 words: keyboard buffer (scan<<8 | ascii) */
BDA_KBD_BUF_END = 0x3E          /* 0x43E: one past the end of the buffer */
BDA_VIDEO_MODE  = 0x49          /* 0x449 byte: current video mode (3 = 80x25 colour text) */
BDA_VIDEO_COLS  = 0x4A          /* 0x44A word: columns on screen (80) */
BDA_VIDEO_SIZE  = 0x4C          /* 0x44C word: bytes per page (80*25*2 = 4000) */
BDA_VIDEO_START = 0x4E          /* 0x44E word: offset of the current page (0) */
BDA_CURSOR_COL  = 0x50          /* 0x450 byte: cursor column on page 0 */
BDA_CURSOR_ROW  = 0x51          /* 0x451 byte: cursor row on page 0 */
BDA_CURSOR_TYPE = 0x60          /* 0x460 word: cursor shape (start/end scan line) */
BDA_VIDEO_PAGE  = 0x62          /* 0x462 byte: active page (0) */
BDA_CRTC_BASE   = 0x63          /* 0x463 word: CRT controller port (0x3D4) */
BDA_TICKS       = 0x6C          /* 0x46C dword: timer ticks since midnight (18.2 Hz) */
BDA_MIDNIGHT    = 0x70          /* 0x470 byte: set when the tick count wrapped at midnight */
BDA_NUM_HD      = 0x75          /* 0x475 byte: number of hard disks */
BDA_KBD_START   = 0x80          /* 0x480 word: keyboard buffer start offset (0x1E) */
BDA_KBD_END     = 0x82          /* 0x482 word: keyboard buffer end offset (0x3E) */
BDA_VIDEO_ROWS  = 0x84          /* 0x484 byte: rows on screen minus one (24) */
BDA_CHAR_HEIGHT = 0x85          /* 0x485 word: character height in scan lines (16) */

EBDA_SEG        = 0x9FC0        /* extended BIOS data area: 1 KiB at 0x9FC00 */
/* EBDA fields (offsets inside segment 9FC0h).  Byte 0 is the standard size
   field; the rest is this BIOS's private state. */
EBDA_SIZE_KB    = 0x00          /* byte: EBDA size in KiB (1) */
HD0_SECTORS     = 0x10          /* dword: hd0 size in 512-byte sectors (IDENTIFY 60-61) */
HD0_CYLINDERS   = 0x14          /* word: fake CHS cylinders (heads 16, sectors 63) */
HD0_PRESENT     = 0x16          /* byte: 1 if IDENTIFY found a drive */
HD0_STATUS      = 0x17          /* byte: status of the last INT 13h call (AH=01h) */
RAM_TOP         = 0x18          /* dword: end of RAM below 4 GiB, in bytes */
COM1_FIFO_FREE  = 0x1C          /* byte: COM1 transmit FIFO slots known to be free */

CHS_HEADS       = 16            /* the classic LBA-assisted translation */
CHS_SECTORS     = 63
TICKS_PER_DAY   = 0x1800B0      /* 18.2065 Hz * 86400 s */
POST_STACK      = 0x7000
IDENTIFY_BUF    = 0x1000
SMAP            = 0x534D4150    /* 'SMAP' as a little-endian dword */

/* =================================================================== */
/*                                POST                                 */
/* =================================================================== */
post:
        cli                             /* no interrupts until the IVT exists */
        cld
        xorw    %ax, %ax
        movw    %ax, %ss
        movw    $POST_STACK, %sp        /* stack 0000:7000, grows down */
        movw    %ax, %ds
        movw    %ax, %es

        call    com1_init
        movw    $msg_post, %si
        call    log

/* --- IVT: every vector -> dummy_iret, then the real handlers ---------- */
        xorw    %di, %di                /* ES:DI = 0000:0000, the IVT */
        movw    $256, %cx
1:      movw    $dummy_iret, %es:(%di)  /* offset */
        movw    $0xF000, %es:2(%di)     /* segment: this ROM */
        addw    $4, %di
        loop    1b
        movw    $ivt_table, %si
2:      movw    %cs:(%si), %bx          /* vector number, 0xFFFF ends the table */
        cmpw    $0xFFFF, %bx
        je      3f
        shlw    $2, %bx                 /* 4 bytes per vector */
        movw    %cs:2(%si), %ax
        movw    %ax, %es:(%bx)
        addw    $4, %si
        jmp     2b
3:
/* --- BDA and EBDA ------------------------------------------------------- */
        call    bda_init
        movw    $msg_ivt, %si
        call    log

/* --- 8259 PICs and the 8254 timer --------------------------------------- */
        call    pic_init
        call    pit_init
        movw    $msg_pic, %si
        call    log

/* --- PCI: give the IDE controller its I/O ports ------------------------- */
        call    pci_init                /* prints its own line */

/* --- ATA IDENTIFY on the primary master --------------------------------- */
        call    ata_detect              /* prints its own line */

/* --- memory size from CMOS ------------------------------------------------ */
        call    memory_init             /* prints its own line */

/* --- video: mode 3, 80x25 colour text, through our own INT 10h ------------ */
        movw    $0x0003, %ax            /* AH=00h set mode, AL=03h */
        int     $0x10
        movw    $msg_video, %si
        call    log

/* --- boot -------------------------------------------------------------- */
        sti                             /* the timer starts ticking */
        int     $0x19                   /* never returns */
        jmp     halt_forever

/* (vector, handler offset) pairs installed over the dummy handler */
ivt_table:
        .word   0x08, irq0_handler      /* IRQ0: PIT timer, 18.2 Hz */
        .word   0x09, irq1_handler      /* IRQ1: keyboard */
        .word   0x10, int10_handler     /* video services */
        .word   0x11, int11_handler     /* equipment list */
        .word   0x12, int12_handler     /* conventional memory size */
        .word   0x13, int13_handler     /* disk services */
        .word   0x15, int15_handler     /* system services (E820...) */
        .word   0x16, int16_handler     /* keyboard services */
        .word   0x19, int19_handler     /* boot loader */
        .word   0x1A, int1a_handler     /* time of day */
        .word   0xFFFF

/* ------------------------------------------------------------------------
 * bda_init: zero the BDA and EBDA and fill in the fields this BIOS keeps.
 * Clobbers AX, CX, DI, ES.
 */
bda_init:
        movw    $BDA_SEG, %ax
        movw    %ax, %es
        xorw    %di, %di
        xorw    %ax, %ax
        movw    $128, %cx               /* 256 bytes */
        rep     stosw
        movw    $EBDA_SEG, %ax
        movw    %ax, %es
        xorw    %di, %di
        xorw    %ax, %ax
        movw    $512, %cx               /* 1 KiB */
        rep     stosw
        movb    $1, %es:EBDA_SIZE_KB

        movw    $BDA_SEG, %ax
        movw    %ax, %es
        movw    $COM1, %es:BDA_COM1             /* 0x400: COM1 at 0x3F8 */
        movw    $EBDA_SEG, %es:BDA_EBDA_SEG     /* 0x40E: EBDA segment */
        /* 0x410 equipment word: bits 4-5 = 10b initial video 80x25 colour,
           bits 9-11 = 1 serial port.  No floppy (bit 0 = 0). */
        movw    $0x0220, %es:BDA_EQUIPMENT
        movw    $639, %es:BDA_MEM_KB            /* 0x413: 640 KiB - 1 KiB EBDA */
        movw    $BDA_KBD_BUF, %es:BDA_KBD_HEAD  /* 0x41A: empty buffer: */
        movw    $BDA_KBD_BUF, %es:BDA_KBD_TAIL  /* 0x41C:   head == tail */
        movw    $BDA_KBD_BUF, %es:BDA_KBD_START /* 0x480 */
        movw    $BDA_KBD_BUF_END, %es:BDA_KBD_END /* 0x482 */
        movb    $3, %es:BDA_VIDEO_MODE          /* 0x449: mode 3 */
        movw    $80, %es:BDA_VIDEO_COLS         /* 0x44A: 80 columns */
        movw    $4000, %es:BDA_VIDEO_SIZE       /* 0x44C: 80*25*2 bytes */
        movw    $0x0607, %es:BDA_CURSOR_TYPE    /* 0x460: underline cursor */
        movw    $CRTC_INDEX, %es:BDA_CRTC_BASE  /* 0x463: colour CRTC */
        movb    $24, %es:BDA_VIDEO_ROWS         /* 0x484: 25 rows */
        movw    $16, %es:BDA_CHAR_HEIGHT        /* 0x485: 8x16 font */
        /* 0x450 cursor, 0x46C ticks, 0x470 midnight, 0x475 disks: 0 so far */
        xorw    %ax, %ax
        movw    %ax, %es
        ret

/* ------------------------------------------------------------------------
 * pic_init: program both 8259s.  ICW1 starts the sequence, ICW2 gives the
 * first vector, ICW3 describes the cascade on IRQ2, ICW4 selects 8086 mode.
 */
pic_init:
        movb    $0x11, %al              /* ICW1: edge triggered, cascade, ICW4 follows */
        outb    %al, $PIC1_CMD
        outb    %al, $PIC2_CMD
        movb    $0x08, %al              /* ICW2 master: IRQ0-7 -> INT 08h-0Fh */
        outb    %al, $PIC1_DATA
        movb    $0x70, %al              /* ICW2 slave: IRQ8-15 -> INT 70h-77h */
        outb    %al, $PIC2_DATA
        movb    $0x04, %al              /* ICW3 master: a slave on IRQ2 (bit 2) */
        outb    %al, $PIC1_DATA
        movb    $0x02, %al              /* ICW3 slave: my cascade identity is 2 */
        outb    %al, $PIC2_DATA
        movb    $0x01, %al              /* ICW4: 8086/88 mode, normal EOI */
        outb    %al, $PIC1_DATA
        outb    %al, $PIC2_DATA
        movb    $0xF8, %al              /* OCW1 master mask: only IRQ0, IRQ1, IRQ2 */
        outb    %al, $PIC1_DATA
        movb    $0xFF, %al              /* OCW1 slave mask: everything masked */
        outb    %al, $PIC2_DATA
        ret

/* pit_init: channel 0, mode 3 (square wave), divisor 0 = 65536:
   1193182 Hz / 65536 = 18.2 interrupts per second on IRQ0. */
pit_init:
        movb    $0x36, %al              /* channel 0, lobyte/hibyte, mode 3, binary */
        outb    %al, $PIT_MODE
        xorb    %al, %al
        outb    %al, $PIT_CH0           /* divisor low byte  = 0 */
        outb    %al, $PIT_CH0           /* divisor high byte = 0 -> 65536 */
        ret

/* ------------------------------------------------------------------------
 * pci_init: find the PIIX3 IDE function (bus 0, device 1, function 1,
 * 8086:7010) with configuration mechanism #1 and set I/O space enable and
 * bus master in its command register.  Its legacy ports 0x1F0-0x1F7 and
 * 0x3F6 then answer.  If it is absent we go on: an ISA ATA may answer.
 * Clobbers EAX, EDX, SI.
 */
PIIX3_IDE_ADDR = 0x80000000 | (0 << 16) | (1 << 11) | (1 << 8)
pci_init:
        movl    $PIIX3_IDE_ADDR | 0x00, %eax    /* enable bit | bus | dev | fn | reg 0 */
        movw    $PCI_CONFIG_ADDR, %dx
        outl    %eax, %dx
        movw    $PCI_CONFIG_DATA, %dx
        inl     %dx, %eax               /* device id << 16 | vendor id */
        cmpl    $0x70108086, %eax
        jne     1f
        movl    $PIIX3_IDE_ADDR | 0x04, %eax    /* register 4: command (low word) */
        movw    $PCI_CONFIG_ADDR, %dx
        outl    %eax, %dx
        movw    $PCI_CONFIG_DATA, %dx
        inw     %dx, %ax
        orw     $0x0005, %ax            /* bit 0 I/O space, bit 2 bus master */
        outw    %ax, %dx
        movw    $msg_pci, %si
        jmp     2f
1:      movw    $msg_pci_none, %si
2:      call    log
        ret

/* ------------------------------------------------------------------------
 * ata_detect: IDENTIFY DEVICE on the primary master.  Words 60-61 of the
 * answer hold the number of LBA28-addressable sectors.  Records the disk in
 * the EBDA and in BDA 0x475, prints the "disks:" line.
 */
ata_detect:
        pushw   %es
        pushw   %fs
        movw    $EBDA_SEG, %ax
        movw    %ax, %fs
        movb    $0x02, %al              /* nIEN: no interrupts, we poll */
        movw    $ATA_CTRL, %dx
        outb    %al, %dx
        movb    $0xA0, %al              /* select the master drive */
        movw    $ATA_DRIVE, %dx
        outb    %al, %dx
        call    ata_delay400
        movw    $ATA_STATUS, %dx
        inb     %dx, %al
        cmpb    $0xFF, %al              /* floating bus: no controller at all */
        je      .Lno_disk
        movb    $ATA_CMD_IDENTIFY, %al
        movw    $ATA_COMMAND, %dx
        outb    %al, %dx
        call    ata_delay400
        movw    $ATA_STATUS, %dx
        inb     %dx, %al
        testb   %al, %al                /* status 0: no drive behind the controller */
        jz      .Lno_disk
        call    ata_wait_drq
        jc      .Lno_disk
        xorw    %ax, %ax
        movw    %ax, %es
        movw    $IDENTIFY_BUF, %di
        movw    $256, %cx
        movw    $ATA_DATA, %dx
        rep     insw                    /* 256 words -> 0000:1000 */
        movl    %es:IDENTIFY_BUF + 60*2, %eax   /* words 60-61: LBA28 sectors */
        movl    %eax, %fs:HD0_SECTORS
        xorl    %edx, %edx
        movl    $CHS_HEADS * CHS_SECTORS, %ecx
        divl    %ecx                    /* cylinders = sectors / (16 * 63) */
        cmpl    $1024, %eax
        jbe     1f
        movw    $1024, %ax              /* CHS cannot address more */
1:      movw    %ax, %fs:HD0_CYLINDERS
        movb    $1, %fs:HD0_PRESENT
        movw    $BDA_SEG, %ax
        movw    %ax, %es
        movb    $1, %es:BDA_NUM_HD      /* 0x475: one hard disk */
        movw    $msg_disks, %si
        call    log_part
        movl    %fs:HD0_SECTORS, %eax
        call    log_dec
        movw    $msg_sectors, %si
        call    log
        jmp     2f
.Lno_disk:
        movw    $msg_no_disks, %si
        call    log
2:      popw    %fs
        popw    %es
        ret

/* ------------------------------------------------------------------------
 * memory_init: RAM size from CMOS, like real BIOSes.  Registers 0x34/0x35
 * count 64 KiB blocks above 16 MiB; if they are 0, registers 0x30/0x31
 * count KiB above 1 MiB.  Stores the end of RAM in the EBDA and prints it.
 */
memory_init:
        pushw   %fs
        movw    $EBDA_SEG, %ax
        movw    %ax, %fs
        movb    $0x35, %al
        call    cmos_read
        movb    %al, %ah
        movb    $0x34, %al
        call    cmos_read               /* AX = 64 KiB blocks above 16 MiB */
        movzwl  %ax, %eax
        testl   %eax, %eax
        jz      1f
        shll    $16, %eax
        addl    $16 << 20, %eax
        jmp     2f
1:      movb    $0x31, %al
        call    cmos_read
        movb    %al, %ah
        movb    $0x30, %al
        call    cmos_read               /* AX = KiB above 1 MiB */
        movzwl  %ax, %eax
        shll    $10, %eax
        addl    $1 << 20, %eax
2:      movl    %eax, %fs:RAM_TOP
        movw    $msg_memory, %si
        call    log_part
        movl    %fs:RAM_TOP, %eax
        shrl    $10, %eax
        call    log_dec
        movw    $msg_kib, %si
        call    log
        popw    %fs
        ret

/* cmos_read: AL = CMOS register index -> AL = its value.
   (Bit 7 of the index would also disable NMI; we leave it 0.) */
cmos_read:
        outb    %al, $CMOS_INDEX
        inb     $CMOS_DATA, %al
        ret

/* =================================================================== */
/*                      output: debug port and COM1                    */
/* =================================================================== */

/* com1_init: 115200 baud, 8 data bits, no parity, 1 stop bit (8N1). */
com1_init:
        movw    $COM1_IER, %dx
        xorb    %al, %al                /* no UART interrupts */
        outb    %al, %dx
        movw    $COM1_LCR, %dx
        movb    $0x80, %al              /* DLAB=1: ports +0/+1 become the divisor */
        outb    %al, %dx
        movw    $COM1_DLL, %dx
        movb    $1, %al                 /* 115200 / 1 = 115200 baud */
        outb    %al, %dx
        movw    $COM1_DLM, %dx
        xorb    %al, %al
        outb    %al, %dx
        movw    $COM1_LCR, %dx
        movb    $0x03, %al              /* DLAB=0, 8 bits, no parity, 1 stop */
        outb    %al, %dx
        movw    $COM1_FCR, %dx
        movb    $0xC7, %al              /* enable and clear FIFOs, 14-byte trigger */
        outb    %al, %dx
        movw    $COM1_MCR, %dx
        movb    $0x03, %al              /* DTR and RTS */
        outb    %al, %dx
        ret

/* com1_putc: AL -> COM1.  com1_init turned the 16550's 16-byte transmit FIFO
   on, so the line status register is read only once per 16 bytes: when it
   says "THR empty" (bit 5) the whole FIFO is free.  EBDA byte COM1_FIFO_FREE
   counts the slots left (0 at reset: look at LSR first).  Each LSR read is a
   VM exit to the device model on Xen; this is why drivers batch.
   Preserves all registers. */
com1_putc:
        pushw   %ax
        pushw   %cx
        pushw   %dx
        pushw   %ds
        movb    %al, %ah
        movw    $EBDA_SEG, %dx
        movw    %dx, %ds
        movb    COM1_FIFO_FREE, %al
        decb    %al
        cmpb    $15, %al                /* 1..15 slots were left: no need to look */
        jb      2f
        movw    $COM1_LSR, %dx
        movw    $0xFFFF, %cx
1:      inb     %dx, %al
        testb   $0x20, %al              /* LSR bit 5: THR (and FIFO) empty */
        jnz     3f
        loop    1b                      /* no UART? give up waiting, send anyway */
3:      movb    $15, %al                /* 16 free, this byte takes one */
2:      movb    %al, COM1_FIFO_FREE
        movb    %ah, %al
        movw    $COM1_THR, %dx
        outb    %al, %dx
        popw    %ds
        popw    %dx
        popw    %cx
        popw    %ax
        ret

/* debug_putc: AL -> port 0xE9 and COM1.  Preserves all registers. */
debug_putc:
        outb    %al, $DEBUG_PORT
        call    com1_putc
        ret

/* log_part: print the NUL-terminated string at CS:SI on 0xE9 + COM1.
   log: the same (the strings carry their own '\n').  Preserve all but SI. */
log:
log_part:
        pushw   %ax
1:      movb    %cs:(%si), %al
        incw    %si
        testb   %al, %al
        jz      2f
        call    debug_putc
        jmp     1b
2:      popw    %ax
        ret

/* log_dec: print EAX as unsigned decimal on 0xE9 + COM1.  Preserves all. */
log_dec:
        pushal
        movl    $10, %ecx
        xorw    %si, %si                /* number of digits pushed */
1:      xorl    %edx, %edx
        divl    %ecx                    /* EDX:EAX / 10 */
        pushw   %dx                     /* remainder = next digit, last first */
        incw    %si
        testl   %eax, %eax
        jnz     1b
2:      popw    %ax
        addb    $'0', %al
        call    debug_putc
        decw    %si
        jnz     2b
        popal
        ret

/* =================================================================== */
/*                     hardware interrupt handlers                     */
/* =================================================================== */

/* Every vector nobody claims: return at once. */
dummy_iret:
        iret

/* INT 08h, IRQ0: the PIT fired (18.2 Hz).  Count the tick in the BDA,
   wrap at midnight, chain to the user hook INT 1Ch, acknowledge the PIC. */
irq0_handler:
        pushw   %ds
        pushw   %ax
        movw    $BDA_SEG, %ax
        movw    %ax, %ds
        incl    BDA_TICKS               /* 0x46C dword */
        cmpl    $TICKS_PER_DAY, BDA_TICKS
        jb      1f
        movl    $0, BDA_TICKS
        movb    $1, BDA_MIDNIGHT        /* 0x470: a day has passed */
1:      int     $0x1C                   /* user timer hook (dummy by default) */
        movb    $0x20, %al              /* OCW2: non-specific end of interrupt */
        outb    %al, $PIC1_CMD
        popw    %ax
        popw    %ds
        iret

/* INT 09h, IRQ1: a key event.  Read the scancode from the 8042; for key
   presses (bit 7 clear) store (scancode << 8 | ASCII) in the BDA buffer. */
irq1_handler:
        pushw   %ds
        pushw   %ax
        pushw   %bx
        pushw   %si
        movw    $BDA_SEG, %ax
        movw    %ax, %ds
        inb     $KBD_DATA, %al          /* port 0x60: the scancode (set 1) */
        testb   $0x80, %al              /* key release? */
        jnz     9f
        movb    %al, %ah                /* AH = scancode */
        xorb    %al, %al
        cmpb    $kbd_map_end - kbd_map, %ah
        jae     1f
        movzbw  %ah, %si
        movb    %cs:kbd_map(%si), %al   /* AL = ASCII (0 for shift, ctrl...) */
1:      movw    BDA_KBD_TAIL, %bx
        leaw    2(%bx), %si             /* next tail, wrapping in the ring */
        cmpw    $BDA_KBD_BUF_END, %si
        jb      2f
        movw    $BDA_KBD_BUF, %si
2:      cmpw    BDA_KBD_HEAD, %si       /* full: next tail would reach the head */
        je      9f
        movw    %ax, (%bx)
        movw    %si, BDA_KBD_TAIL
9:      movb    $0x20, %al              /* EOI to the master PIC */
        outb    %al, $PIC1_CMD
        popw    %si
        popw    %bx
        popw    %ax
        popw    %ds
        iret

/* Scancode set 1 -> ASCII, unshifted US layout. */
kbd_map:
        .byte   0, 0x1B
        .ascii  "1234567890-="
        .byte   0x08, 0x09
        .ascii  "qwertyuiop[]"
        .byte   0x0D, 0
        .ascii  "asdfghjkl;'`"
        .byte   0
        .ascii  "\\zxcvbnm,./"
        .byte   0
        .ascii  "*"
        .byte   0
        .ascii  " "
kbd_map_end:

/* iret_cf: return from an interrupt with the caller's CF set to our CF.
   `iret` reloads FLAGS from the stack, so we patch the saved copy.
   Use with jmp (not call) as the last instruction of a handler. */
iret_cf:
        pushw   %bp
        movw    %sp, %bp                /* [bp+2] IP, [bp+4] CS, [bp+6] FLAGS */
        jc      1f
        andw    $~0x0001, 6(%bp)
        popw    %bp
        iret
1:      orw     $0x0001, 6(%bp)
        popw    %bp
        iret

/* iret_zf: the same for ZF (bit 6), used by INT 16h AH=01h. */
iret_zf:
        pushw   %bp
        movw    %sp, %bp
        jz      1f
        andw    $~0x0040, 6(%bp)
        popw    %bp
        iret
1:      orw     $0x0040, 6(%bp)
        popw    %bp
        iret

/* =================================================================== */
/*                        INT 10h: video services                      */
/* =================================================================== */
/* Text mode 3 only: 80x25 cells at B800:0000, each (char, attribute).
   On entry DS is switched to the BDA (cursor, mode); every sub-function
   preserves the registers it does not return. */
int10_handler:
        pushw   %ds
        pushw   %bx
        movw    $BDA_SEG, %bx
        movw    %bx, %ds
        popw    %bx
        cmpb    $0x0E, %ah
        je      .Lv_teletype
        cmpb    $0x00, %ah
        je      .Lv_setmode
        cmpb    $0x01, %ah
        je      .Lv_cursor_shape
        cmpb    $0x02, %ah
        je      .Lv_set_cursor
        cmpb    $0x03, %ah
        je      .Lv_get_cursor
        cmpb    $0x06, %ah
        je      .Lv_scroll_up
        cmpb    $0x08, %ah
        je      .Lv_read_char
        cmpb    $0x09, %ah
        je      .Lv_write_char_attr
        cmpb    $0x0A, %ah
        je      .Lv_write_char
        cmpb    $0x0F, %ah
        je      .Lv_get_mode
        cmpb    $0x13, %ah
        je      .Lv_write_string
.Lv_done:                               /* unsupported functions: ignore */
        popw    %ds
        iret

/* AH=00h set video mode AL: 3 (80x25 text) or 13h (320x200, 256 colours);
   bit 7 = keep the screen.  Other modes are ignored. */
.Lv_setmode:
        pushw   %ax
        andb    $0x7F, %al
        cmpb    $0x13, %al
        je      .Lv_mode13
        cmpb    $3, %al
        jne     1f
        cmpb    $0x13, BDA_VIDEO_MODE   /* from mode 13h: the text registers back */
        jne     5f
        call    vga_text_regs
5:
        movb    $3, BDA_VIDEO_MODE
        movw    $80, BDA_VIDEO_COLS
        movw    $0, BDA_CURSOR_COL      /* column 0, row 0 (both bytes) */
        popw    %ax
        pushw   %ax
        testb   $0x80, %al
        jnz     1f
        call    vga_clear
1:      call    vga_update_cursor
        popw    %ax
        jmp     .Lv_done

/* AH=01h set cursor shape CX. */
.Lv_cursor_shape:
        movw    %cx, BDA_CURSOR_TYPE
        jmp     .Lv_done

/* AH=02h set cursor: BH page (0 only), DH row, DL column. */
.Lv_set_cursor:
        movw    %dx, BDA_CURSOR_COL     /* low byte col (0x450), high byte row */
        call    vga_update_cursor
        jmp     .Lv_done

/* AH=03h get cursor: DH row, DL column, CX shape. */
.Lv_get_cursor:
        movw    BDA_CURSOR_COL, %dx
        movw    BDA_CURSOR_TYPE, %cx
        jmp     .Lv_done

/* AH=06h scroll window up: AL lines (0 = clear), BH fill attribute,
   CH,CL top-left, DH,DL bottom-right. */
.Lv_scroll_up:
        call    vga_scroll_up
        jmp     .Lv_done

/* AH=08h read char (AL) and attribute (AH) at the cursor. */
.Lv_read_char:
        pushw   %es
        pushw   %di
        call    vga_cursor_addr         /* ES:DI = cell under the cursor */
        movw    %es:(%di), %ax
        popw    %di
        popw    %es
        jmp     .Lv_done

/* AH=09h write char AL with attribute BL, CX times, cursor unchanged. */
.Lv_write_char_attr:
        pushw   %ax
        pushw   %cx
        pushw   %es
        pushw   %di
        call    vga_cursor_addr
        movb    %bl, %ah
        rep     stosw
        popw    %di
        popw    %es
        popw    %cx
        popw    %ax
        jmp     .Lv_done

/* AH=0Ah write char AL CX times, keeping each cell's attribute. */
.Lv_write_char:
        pushw   %cx
        pushw   %es
        pushw   %di
        call    vga_cursor_addr
        jcxz    2f
1:      movb    %al, %es:(%di)
        addw    $2, %di
        loop    1b
2:      popw    %di
        popw    %es
        popw    %cx
        jmp     .Lv_done

/* AH=0Eh teletype AL: write and advance, CR/LF/BS handled, scroll at the
   bottom.  The character is mirrored on COM1 so serial shows the screen. */
.Lv_teletype:
        pushw   %bx
        movb    $0x07, %bl              /* light grey on black */
        call    vga_tty
        call    com1_putc
        popw    %bx
        jmp     .Lv_done

/* AH=0Fh get mode: AL mode, AH columns, BH page. */
.Lv_get_mode:
        movb    BDA_VIDEO_MODE, %al
        movb    BDA_VIDEO_COLS, %ah
        movb    BDA_VIDEO_PAGE, %bh
        jmp     .Lv_done

/* AH=13h write string ES:BP, CX chars, at row DH column DL, attribute BL.
   AL bit 0: leave the cursor after the string; bit 1: the string holds
   (char, attribute) pairs.  Mirrored on COM1 like teletype. */
.Lv_write_string:
        pushal
        pushw   BDA_CURSOR_COL          /* old cursor, restored unless AL bit 0 */
        movw    %dx, BDA_CURSOR_COL
        movw    %ax, %dx                /* DL = mode bits */
        movw    %bp, %si
        jcxz    3f
1:      movb    %es:(%si), %al
        incw    %si
        testb   $0x02, %dl
        jz      2f
        movb    %es:(%si), %bl          /* per-character attribute */
        incw    %si
2:      call    vga_tty
        call    com1_putc
        loop    1b
3:      popw    %ax                     /* old cursor */
        testb   $0x01, %dl
        jnz     4f
        movw    %ax, BDA_CURSOR_COL
4:      call    vga_update_cursor
        popal
        jmp     .Lv_done

/* --- VGA text helpers (DS = BDA) ----------------------------------------- */

/* vga_cursor_addr: ES:DI = address of the cell under the cursor. */
vga_cursor_addr:
        pushw   %ax
        movw    $0xB800, %ax
        movw    %ax, %es
        movb    BDA_CURSOR_ROW, %al
        movb    $80, %ah
        mulb    %ah                     /* AX = row * 80 */
        addb    BDA_CURSOR_COL, %al
        adcb    $0, %ah
        shlw    $1, %ax                 /* 2 bytes per cell */
        movw    %ax, %di
        popw    %ax
        ret

/* vga_update_cursor: tell the CRT controller where to blink
   (registers 0Eh/0Fh = cursor location high/low). */
vga_update_cursor:
        pushw   %ax
        pushw   %bx
        pushw   %dx
        movb    BDA_CURSOR_ROW, %al
        movb    $80, %ah
        mulb    %ah
        addb    BDA_CURSOR_COL, %al
        adcb    $0, %ah
        movw    %ax, %bx                /* BX = row * 80 + col */
        movw    $CRTC_INDEX, %dx        /* a 16-bit out writes index (AL) to 0x3D4 */
        movb    $0x0E, %al              /* and data (AH) to 0x3D5: one exit, not two */
        movb    %bh, %ah
        outw    %ax, %dx
        movb    $0x0F, %al
        movb    %bl, %ah
        outw    %ax, %dx
        popw    %dx
        popw    %bx
        popw    %ax
        ret

/* vga_clear: blank the whole screen (space, attribute 07h). */
vga_clear:
        pushw   %ax
        pushw   %bx
        pushw   %cx
        pushw   %dx
        xorb    %al, %al                /* 0 lines = clear */
        movb    $0x07, %bh
        xorw    %cx, %cx                /* from (0,0) */
        movw    $0x184F, %dx            /* to (24,79) */
        call    vga_scroll_up
        popw    %dx
        popw    %cx
        popw    %bx
        popw    %ax
        ret

/* AH=00h AL=13h: mode 13h, 320x200 pixels, 256 colours, one byte per pixel at
   A000:0000 (the sequencer's chain-4).  The registers get the standard VGA values
   for the mode, the DAC the standard 256-colour palette; the screen is cleared
   unless AL bit 7 is set.  Entered with AX pushed (see .Lv_setmode). */
.Lv_mode13:
        movb    $0x13, BDA_VIDEO_MODE
        movw    $40, BDA_VIDEO_COLS
        movw    $0, BDA_CURSOR_COL
        pushw   %cx
        pushw   %dx
        pushw   %si
        movw    $mode13_regs, %si
        call    vga_set_regs
        movw    $0x3C8, %dx             /* DAC write index 0, then r, g, b x 256 */
        xorb    %al, %al
        outb    %al, %dx
        incw    %dx
        movw    $vga_palette, %si
        movw    $768, %cx
1:      movb    %cs:(%si), %al
        outb    %al, %dx
        incw    %si
        loop    1b
        popw    %si
        popw    %dx
        popw    %cx
        popw    %ax
        pushw   %ax
        testb   $0x80, %al
        jnz     2f
        pushw   %es                     /* clear the 64,000 pixels */
        pushw   %di
        pushw   %cx
        movw    $0xA000, %ax
        movw    %ax, %es
        xorw    %di, %di
        xorw    %ax, %ax
        movw    $32000, %cx
        cld
        rep stosw
        popw    %cx
        popw    %di
        popw    %es
2:      popw    %ax
        jmp     .Lv_done

/* vga_set_regs: program the VGA from the table at CS:SI: the miscellaneous output
   byte, 5 sequencer, 25 CRTC (CR11's protect bit cleared first), 9 graphics
   controller and 21 attribute controller values, then video on.  Preserves all
   but SI. */
vga_set_regs:
        pushw   %ax
        pushw   %bx
        pushw   %cx
        pushw   %dx
        movw    $0x3C2, %dx
        movb    %cs:(%si), %al
        outb    %al, %dx
        incw    %si
        movw    $0x3C4, %dx             /* sequencer */
        movw    $5, %cx
        call    vga_indexed
        movw    $0x3D4, %dx             /* CRTC: unprotect CR0-CR7 first */
        movw    $0x0E11, %ax
        outw    %ax, %dx
        movw    $25, %cx
        call    vga_indexed
        movw    $0x3CE, %dx             /* graphics controller */
        movw    $9, %cx
        call    vga_indexed
        movw    $0x3DA, %dx             /* reset the attribute flip-flop */
        inb     %dx, %al
        movw    $0x3C0, %dx
        xorb    %bl, %bl
3:      movb    %bl, %al                /* index, then value */
        outb    %al, %dx
        movb    %cs:(%si), %al
        outb    %al, %dx
        incw    %si
        incb    %bl
        cmpb    $21, %bl
        jb      3b
        movb    $0x20, %al              /* palette address source: video on */
        outb    %al, %dx
        popw    %dx
        popw    %cx
        popw    %bx
        popw    %ax
        ret

/* vga_indexed: CX values from CS:SI into the index/data pair at DX, DX+1, from
   index 0 up. */
vga_indexed:
        xorb    %bl, %bl
4:      movb    %bl, %al
        outb    %al, %dx
        incw    %dx
        movb    %cs:(%si), %al
        outb    %al, %dx
        decw    %dx
        incw    %si
        incb    %bl
        loop    4b
        ret

/* The standard VGA register values of mode 13h (IBM's VGA technical reference). */
mode13_regs:
        .byte   0x63                                            /* misc output */
        .byte   0x03, 0x01, 0x0F, 0x00, 0x0E                    /* sequencer */
        .byte   0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F  /* CRTC */
        .byte   0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00
        .byte   0x9C, 0x8E, 0x8F, 0x28, 0x40, 0x96, 0xB9, 0xA3, 0xFF
        .byte   0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0F, 0xFF  /* graphics */
        .byte   0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07  /* attribute */
        .byte   0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F
        .byte   0x41, 0x00, 0x0F, 0x00, 0x00

/* The standard 256-colour palette, 6 bits per component (r, g, b): 16 EGA colours;
   16 greys; then 9 rows of 24 hues (blue, magenta, red, yellow, green, cyan and
   back, four steps between each), for 3 brightnesses (maximum 63, 28, 16) times 3
   saturations, each row a 5-step ramp (63: 0 16 31 47 63 / 31 39 47 55 63 / 45 49 54
   58 63; 28: 0 7 14 21 28 / 14 17 21 24 28 / 20 22 24 26 28; 16: 0 4 8 12 16 /
   8 10 12 14 16 / 11 12 13 15 16); 8 blacks.  tests/test_vga_mode13h.py checks it
   against SeaBIOS's VGA BIOS. */
vga_palette:
        .byte   0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, 0x00, 0x2A, 0x00, 0x00, 0x2A, 0x2A
        .byte   0x2A, 0x00, 0x00, 0x2A, 0x00, 0x2A, 0x2A, 0x15, 0x00, 0x2A, 0x2A, 0x2A
        .byte   0x15, 0x15, 0x15, 0x15, 0x15, 0x3F, 0x15, 0x3F, 0x15, 0x15, 0x3F, 0x3F
        .byte   0x3F, 0x15, 0x15, 0x3F, 0x15, 0x3F, 0x3F, 0x3F, 0x15, 0x3F, 0x3F, 0x3F
        .byte   0x00, 0x00, 0x00, 0x05, 0x05, 0x05, 0x08, 0x08, 0x08, 0x0B, 0x0B, 0x0B
        .byte   0x0E, 0x0E, 0x0E, 0x11, 0x11, 0x11, 0x14, 0x14, 0x14, 0x18, 0x18, 0x18
        .byte   0x1C, 0x1C, 0x1C, 0x20, 0x20, 0x20, 0x24, 0x24, 0x24, 0x28, 0x28, 0x28
        .byte   0x2D, 0x2D, 0x2D, 0x32, 0x32, 0x32, 0x38, 0x38, 0x38, 0x3F, 0x3F, 0x3F
        .byte   0x00, 0x00, 0x3F, 0x10, 0x00, 0x3F, 0x1F, 0x00, 0x3F, 0x2F, 0x00, 0x3F
        .byte   0x3F, 0x00, 0x3F, 0x3F, 0x00, 0x2F, 0x3F, 0x00, 0x1F, 0x3F, 0x00, 0x10
        .byte   0x3F, 0x00, 0x00, 0x3F, 0x10, 0x00, 0x3F, 0x1F, 0x00, 0x3F, 0x2F, 0x00
        .byte   0x3F, 0x3F, 0x00, 0x2F, 0x3F, 0x00, 0x1F, 0x3F, 0x00, 0x10, 0x3F, 0x00
        .byte   0x00, 0x3F, 0x00, 0x00, 0x3F, 0x10, 0x00, 0x3F, 0x1F, 0x00, 0x3F, 0x2F
        .byte   0x00, 0x3F, 0x3F, 0x00, 0x2F, 0x3F, 0x00, 0x1F, 0x3F, 0x00, 0x10, 0x3F
        .byte   0x1F, 0x1F, 0x3F, 0x27, 0x1F, 0x3F, 0x2F, 0x1F, 0x3F, 0x37, 0x1F, 0x3F
        .byte   0x3F, 0x1F, 0x3F, 0x3F, 0x1F, 0x37, 0x3F, 0x1F, 0x2F, 0x3F, 0x1F, 0x27
        .byte   0x3F, 0x1F, 0x1F, 0x3F, 0x27, 0x1F, 0x3F, 0x2F, 0x1F, 0x3F, 0x37, 0x1F
        .byte   0x3F, 0x3F, 0x1F, 0x37, 0x3F, 0x1F, 0x2F, 0x3F, 0x1F, 0x27, 0x3F, 0x1F
        .byte   0x1F, 0x3F, 0x1F, 0x1F, 0x3F, 0x27, 0x1F, 0x3F, 0x2F, 0x1F, 0x3F, 0x37
        .byte   0x1F, 0x3F, 0x3F, 0x1F, 0x37, 0x3F, 0x1F, 0x2F, 0x3F, 0x1F, 0x27, 0x3F
        .byte   0x2D, 0x2D, 0x3F, 0x31, 0x2D, 0x3F, 0x36, 0x2D, 0x3F, 0x3A, 0x2D, 0x3F
        .byte   0x3F, 0x2D, 0x3F, 0x3F, 0x2D, 0x3A, 0x3F, 0x2D, 0x36, 0x3F, 0x2D, 0x31
        .byte   0x3F, 0x2D, 0x2D, 0x3F, 0x31, 0x2D, 0x3F, 0x36, 0x2D, 0x3F, 0x3A, 0x2D
        .byte   0x3F, 0x3F, 0x2D, 0x3A, 0x3F, 0x2D, 0x36, 0x3F, 0x2D, 0x31, 0x3F, 0x2D
        .byte   0x2D, 0x3F, 0x2D, 0x2D, 0x3F, 0x31, 0x2D, 0x3F, 0x36, 0x2D, 0x3F, 0x3A
        .byte   0x2D, 0x3F, 0x3F, 0x2D, 0x3A, 0x3F, 0x2D, 0x36, 0x3F, 0x2D, 0x31, 0x3F
        .byte   0x00, 0x00, 0x1C, 0x07, 0x00, 0x1C, 0x0E, 0x00, 0x1C, 0x15, 0x00, 0x1C
        .byte   0x1C, 0x00, 0x1C, 0x1C, 0x00, 0x15, 0x1C, 0x00, 0x0E, 0x1C, 0x00, 0x07
        .byte   0x1C, 0x00, 0x00, 0x1C, 0x07, 0x00, 0x1C, 0x0E, 0x00, 0x1C, 0x15, 0x00
        .byte   0x1C, 0x1C, 0x00, 0x15, 0x1C, 0x00, 0x0E, 0x1C, 0x00, 0x07, 0x1C, 0x00
        .byte   0x00, 0x1C, 0x00, 0x00, 0x1C, 0x07, 0x00, 0x1C, 0x0E, 0x00, 0x1C, 0x15
        .byte   0x00, 0x1C, 0x1C, 0x00, 0x15, 0x1C, 0x00, 0x0E, 0x1C, 0x00, 0x07, 0x1C
        .byte   0x0E, 0x0E, 0x1C, 0x11, 0x0E, 0x1C, 0x15, 0x0E, 0x1C, 0x18, 0x0E, 0x1C
        .byte   0x1C, 0x0E, 0x1C, 0x1C, 0x0E, 0x18, 0x1C, 0x0E, 0x15, 0x1C, 0x0E, 0x11
        .byte   0x1C, 0x0E, 0x0E, 0x1C, 0x11, 0x0E, 0x1C, 0x15, 0x0E, 0x1C, 0x18, 0x0E
        .byte   0x1C, 0x1C, 0x0E, 0x18, 0x1C, 0x0E, 0x15, 0x1C, 0x0E, 0x11, 0x1C, 0x0E
        .byte   0x0E, 0x1C, 0x0E, 0x0E, 0x1C, 0x11, 0x0E, 0x1C, 0x15, 0x0E, 0x1C, 0x18
        .byte   0x0E, 0x1C, 0x1C, 0x0E, 0x18, 0x1C, 0x0E, 0x15, 0x1C, 0x0E, 0x11, 0x1C
        .byte   0x14, 0x14, 0x1C, 0x16, 0x14, 0x1C, 0x18, 0x14, 0x1C, 0x1A, 0x14, 0x1C
        .byte   0x1C, 0x14, 0x1C, 0x1C, 0x14, 0x1A, 0x1C, 0x14, 0x18, 0x1C, 0x14, 0x16
        .byte   0x1C, 0x14, 0x14, 0x1C, 0x16, 0x14, 0x1C, 0x18, 0x14, 0x1C, 0x1A, 0x14
        .byte   0x1C, 0x1C, 0x14, 0x1A, 0x1C, 0x14, 0x18, 0x1C, 0x14, 0x16, 0x1C, 0x14
        .byte   0x14, 0x1C, 0x14, 0x14, 0x1C, 0x16, 0x14, 0x1C, 0x18, 0x14, 0x1C, 0x1A
        .byte   0x14, 0x1C, 0x1C, 0x14, 0x1A, 0x1C, 0x14, 0x18, 0x1C, 0x14, 0x16, 0x1C
        .byte   0x00, 0x00, 0x10, 0x04, 0x00, 0x10, 0x08, 0x00, 0x10, 0x0C, 0x00, 0x10
        .byte   0x10, 0x00, 0x10, 0x10, 0x00, 0x0C, 0x10, 0x00, 0x08, 0x10, 0x00, 0x04
        .byte   0x10, 0x00, 0x00, 0x10, 0x04, 0x00, 0x10, 0x08, 0x00, 0x10, 0x0C, 0x00
        .byte   0x10, 0x10, 0x00, 0x0C, 0x10, 0x00, 0x08, 0x10, 0x00, 0x04, 0x10, 0x00
        .byte   0x00, 0x10, 0x00, 0x00, 0x10, 0x04, 0x00, 0x10, 0x08, 0x00, 0x10, 0x0C
        .byte   0x00, 0x10, 0x10, 0x00, 0x0C, 0x10, 0x00, 0x08, 0x10, 0x00, 0x04, 0x10
        .byte   0x08, 0x08, 0x10, 0x0A, 0x08, 0x10, 0x0C, 0x08, 0x10, 0x0E, 0x08, 0x10
        .byte   0x10, 0x08, 0x10, 0x10, 0x08, 0x0E, 0x10, 0x08, 0x0C, 0x10, 0x08, 0x0A
        .byte   0x10, 0x08, 0x08, 0x10, 0x0A, 0x08, 0x10, 0x0C, 0x08, 0x10, 0x0E, 0x08
        .byte   0x10, 0x10, 0x08, 0x0E, 0x10, 0x08, 0x0C, 0x10, 0x08, 0x0A, 0x10, 0x08
        .byte   0x08, 0x10, 0x08, 0x08, 0x10, 0x0A, 0x08, 0x10, 0x0C, 0x08, 0x10, 0x0E
        .byte   0x08, 0x10, 0x10, 0x08, 0x0E, 0x10, 0x08, 0x0C, 0x10, 0x08, 0x0A, 0x10
        .byte   0x0B, 0x0B, 0x10, 0x0C, 0x0B, 0x10, 0x0D, 0x0B, 0x10, 0x0F, 0x0B, 0x10
        .byte   0x10, 0x0B, 0x10, 0x10, 0x0B, 0x0F, 0x10, 0x0B, 0x0D, 0x10, 0x0B, 0x0C
        .byte   0x10, 0x0B, 0x0B, 0x10, 0x0C, 0x0B, 0x10, 0x0D, 0x0B, 0x10, 0x0F, 0x0B
        .byte   0x10, 0x10, 0x0B, 0x0F, 0x10, 0x0B, 0x0D, 0x10, 0x0B, 0x0C, 0x10, 0x0B
        .byte   0x0B, 0x10, 0x0B, 0x0B, 0x10, 0x0C, 0x0B, 0x10, 0x0D, 0x0B, 0x10, 0x0F
        .byte   0x0B, 0x10, 0x10, 0x0B, 0x0F, 0x10, 0x0B, 0x0D, 0x10, 0x0B, 0x0C, 0x10
        .byte   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00
        .byte   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00

/* vga_text_regs: back to text after mode 13h: the graphics controller's
   Misc (text, odd/even, B8000), the sequencer's memory mode (no chain-4) and
   the attribute controller's mode control (no 8-bit colour). */
vga_text_regs:
        pushw   %ax
        pushw   %dx
        movw    $0x3CE, %dx
        movw    $0x0E06, %ax            /* GR6 = 0Eh */
        outw    %ax, %dx
        movw    $0x3C4, %dx
        movw    $0x0204, %ax            /* SR4 = 02h */
        outw    %ax, %dx
        movw    $0x3DA, %dx
        inb     %dx, %al
        movw    $0x3C0, %dx
        movb    $0x10, %al              /* AR10 = 0Ch */
        outb    %al, %dx
        movb    $0x0C, %al
        outb    %al, %dx
        movb    $0x20, %al
        outb    %al, %dx
        popw    %dx
        popw    %ax
        ret

/* vga_tty: teletype AL with attribute BL at the cursor.  Preserves all. */
vga_tty:
        pushw   %ax
        pushw   %es
        pushw   %di
        cmpb    $0x0D, %al              /* CR: back to column 0 */
        jne     1f
        movb    $0, BDA_CURSOR_COL
        jmp     8f
1:      cmpb    $0x0A, %al              /* LF: next row */
        je      5f
        cmpb    $0x08, %al              /* BS: one column left (no erase) */
        jne     2f
        cmpb    $0, BDA_CURSOR_COL
        je      8f
        decb    BDA_CURSOR_COL
        jmp     8f
2:      cmpb    $0x07, %al              /* BEL: no speaker here */
        je      8f
        call    vga_cursor_addr
        movb    %bl, %ah
        movw    %ax, %es:(%di)          /* char + attribute */
        incb    BDA_CURSOR_COL
        cmpb    $80, BDA_CURSOR_COL
        jb      8f
        movb    $0, BDA_CURSOR_COL      /* wrap to the next line */
5:      incb    BDA_CURSOR_ROW
        cmpb    $25, BDA_CURSOR_ROW
        jb      8f
        movb    $24, BDA_CURSOR_ROW     /* past the bottom: scroll one line */
        pushw   %bx
        pushw   %cx
        pushw   %dx
        movb    $1, %al
        movb    $0x07, %bh
        xorw    %cx, %cx
        movw    $0x184F, %dx
        call    vga_scroll_up
        popw    %dx
        popw    %cx
        popw    %bx
8:      call    vga_update_cursor
        popw    %di
        popw    %es
        popw    %ax
        ret

/* vga_scroll_up: AL lines (0 or too many = blank the window), BH blank
   attribute, CH,CL top row/col, DH,DL bottom row/col.  Preserves all.
   Register use inside: BL = row being filled, DL = left column,
   BP = window width, DH = bottom row. */
vga_scroll_up:
        pushaw
        pushw   %ds
        pushw   %es
        movb    %dh, %ah
        subb    %ch, %ah
        incb    %ah                     /* AH = rows in the window */
        testb   %al, %al
        jz      1f
        cmpb    %ah, %al
        jbe     2f
1:      movb    %ah, %al                /* blank every row */
2:      movzbw  %dl, %bp
        subb    %cl, %dl
        movzbw  %dl, %bp
        incw    %bp                     /* BP = width */
        movb    %cl, %dl                /* DL = left column */
        movb    %ch, %bl                /* BL = first row */
        movw    $0xB800, %si
        movw    %si, %ds
        movw    %si, %es
3:      cmpb    %dh, %bl
        ja      9f
        pushw   %ax
        movb    %bl, %al                /* DI = (row * 80 + left) * 2 */
        movb    $80, %ah
        mulb    %ah
        addb    %dl, %al
        adcb    $0, %ah
        shlw    $1, %ax
        movw    %ax, %di
        popw    %ax
        movb    %bl, %ah
        addb    %al, %ah                /* AH = source row = row + lines */
        cmpb    %dh, %ah
        ja      4f
        pushw   %ax                     /* copy the row from below */
        movb    %ah, %al
        movb    $80, %ah
        mulb    %ah
        addb    %dl, %al
        adcb    $0, %ah
        shlw    $1, %ax
        movw    %ax, %si
        movw    %bp, %cx
        rep     movsw
        popw    %ax
        jmp     5f
4:      pushw   %ax                     /* no row below: blank it */
        movb    %bh, %ah
        movb    $' ', %al
        movw    %bp, %cx
        rep     stosw
        popw    %ax
5:      incb    %bl
        jmp     3b
9:      popw    %es
        popw    %ds
        popaw
        ret

/* =================================================================== */
/*                  INT 11h, INT 12h: equipment, memory                */
/* =================================================================== */
int11_handler:                          /* AX = equipment word (BDA 0x410) */
        pushw   %ds
        movw    $BDA_SEG, %ax
        movw    %ax, %ds
        movw    BDA_EQUIPMENT, %ax
        popw    %ds
        iret

int12_handler:                          /* AX = conventional KiB (BDA 0x413) */
        pushw   %ds
        movw    $BDA_SEG, %ax
        movw    %ax, %ds
        movw    BDA_MEM_KB, %ax
        popw    %ds
        iret

/* =================================================================== */
/*                        INT 13h: disk services                       */
/* =================================================================== */
/* Only DL=80h (hd0, the primary ATA master) exists.  On return CF=0 and
   AH=0 on success, CF=1 and AH=status on error.  Status codes used:
   01h bad command/drive, 04h sector not found, 20h controller failure,
   80h timeout.  FS points at the EBDA inside the handler. */
int13_handler:
        pushw   %fs
        pushw   %ax
        movw    $EBDA_SEG, %ax
        movw    %ax, %fs
        popw    %ax
        cmpb    $0x80, %dl
        jne     .Ld_bad
        cmpb    $0, %fs:HD0_PRESENT
        je      .Ld_bad
        cmpb    $0x00, %ah
        je      .Ld_ok                  /* reset: nothing to do for PIO */
        cmpb    $0x01, %ah
        je      .Ld_status
        cmpb    $0x02, %ah
        je      .Ld_rw_chs
        cmpb    $0x03, %ah
        je      .Ld_rw_chs
        cmpb    $0x08, %ah
        je      .Ld_params
        cmpb    $0x15, %ah
        je      .Ld_type
        cmpb    $0x41, %ah
        je      .Ld_ext_check
        cmpb    $0x42, %ah
        je      .Ld_rw_ext
        cmpb    $0x43, %ah
        je      .Ld_rw_ext
        cmpb    $0x48, %ah
        je      .Ld_ext_params
.Ld_bad:
        movb    $0x01, %ah              /* bad command or drive */
.Ld_fail:                               /* AH = status */
        movb    %ah, %fs:HD0_STATUS
        popw    %fs
        stc
        jmp     iret_cf
.Ld_ok:
        movb    $0, %ah
        movb    %ah, %fs:HD0_STATUS
        popw    %fs
        clc
        jmp     iret_cf

/* AH=01h: AH = status of the previous call. */
.Ld_status:
        movb    %fs:HD0_STATUS, %ah
        popw    %fs
        testb   %ah, %ah
        jz      1f
        stc
        jmp     iret_cf
1:      clc
        jmp     iret_cf

/* AH=02h read / 03h write AL sectors at CHS to/from ES:BX.
   CH = cylinder low 8 bits, CL bits 6-7 = cylinder bits 8-9,
   CL bits 0-5 = sector (1-based), DH = head.
   LBA = (cylinder * heads + head) * sectors_per_track + sector - 1. */
.Ld_rw_chs:
        pushl   %eax
        pushl   %ebx
        pushw   %cx
        pushw   %dx
        pushw   %di
        pushw   %si
        movw    %bx, %di                /* ES:DI = buffer */
        movb    $ATA_CMD_READ, %bl
        cmpb    $0x03, %ah
        jne     1f
        movb    $ATA_CMD_WRITE, %bl
1:      movzbw  %al, %si                /* SI = sector count (kept for later) */
        movb    %cl, %bh                /* BH = sector number and cyl bits */
        andb    $0x3F, %bh
        jz      .Lchs_bad               /* sector 0 does not exist */
        cmpb    $CHS_HEADS, %dh
        jae     .Lchs_bad
        movzbw  %cl, %ax
        shlw    $2, %ax                 /* CL bits 6-7 -> AX bits 8-9 */
        movb    %ch, %al                /* AX = cylinder */
        movzwl  %ax, %eax
        shll    $4, %eax                /* * 16 heads */
        movzbl  %dh, %edx
        addl    %edx, %eax
        imull   $CHS_SECTORS, %eax, %eax
        movzbl  %bh, %edx
        decl    %edx
        addl    %edx, %eax              /* EAX = LBA */
        movw    %si, %cx                /* CX = count */
        call    ata_transfer            /* AH = status, CF */
        popw    %si
        popw    %di
        popw    %dx
        popw    %cx
        popl    %ebx
        jc      2f
        popl    %eax                    /* AL = count transferred (all) */
        jmp     .Ld_ok
2:      movb    %ah, %fs:HD0_STATUS
        popl    %eax
        movb    $0, %al
        movb    %fs:HD0_STATUS, %ah
        jmp     .Ld_fail
.Lchs_bad:
        popw    %si
        popw    %di
        popw    %dx
        popw    %cx
        popl    %ebx
        popl    %eax
        jmp     .Ld_bad

/* AH=08h drive parameters: CH = max cylinder low 8 bits, CL = max sector
   (63) | max cylinder bits 8-9 << 6, DH = max head (15), DL = drives (1). */
.Ld_params:
        movw    %fs:HD0_CYLINDERS, %cx
        decw    %cx                     /* max cylinder = count - 1 */
        xchgb   %cl, %ch                /* CH = low 8 bits, CL = bits 8-9 */
        shlb    $6, %cl
        orb     $CHS_SECTORS, %cl
        movb    $CHS_HEADS - 1, %dh
        movb    $1, %dl
        xorw    %ax, %ax
        jmp     .Ld_ok

/* AH=15h disk type: AH=3 (hard disk), CX:DX = number of sectors. */
.Ld_type:
        movw    %fs:HD0_SECTORS, %dx
        movw    %fs:HD0_SECTORS + 2, %cx
        movb    $0, %fs:HD0_STATUS
        popw    %fs
        movb    $3, %ah
        clc
        jmp     iret_cf

/* AH=41h extensions present?  BX=55AAh -> BX=AA55h, AH = version (30h =
   EDD 3.0), CX bit 0 = "fixed disk access" functions 42h-44h, 47h, 48h. */
.Ld_ext_check:
        cmpw    $0x55AA, %bx
        jne     .Ld_bad
        movw    $0xAA55, %bx
        movw    $0x0001, %cx
        movb    $0, %fs:HD0_STATUS
        popw    %fs
        movb    $0x30, %ah
        clc
        jmp     iret_cf

/* AH=42h extended read / 43h extended write.  DS:SI = disk address packet:
     +0 byte size (10h)  +1 byte 0  +2 word count  +4 word offset
     +6 word segment     +8 qword starting LBA                              */
.Ld_rw_ext:
        pushl   %eax
        pushl   %ebx
        pushw   %cx
        pushw   %di
        pushw   %es
        movb    $ATA_CMD_READ, %bl
        cmpb    $0x43, %ah
        jne     1f
        movb    $ATA_CMD_WRITE, %bl
1:      cmpb    $0x10, (%si)            /* packet too small */
        jb      .Lext_bad
        movw    2(%si), %cx             /* count */
        lesw    4(%si), %di             /* ES:DI = buffer (offset, segment) */
        movl    8(%si), %eax            /* LBA low dword */
        cmpl    $0, 12(%si)             /* LBA28 only */
        jne     .Lext_notfound
        call    ata_transfer
        jc      2f
        popw    %es
        popw    %di
        popw    %cx
        popl    %ebx
        popl    %eax
        jmp     .Ld_ok
2:      movb    %ah, %fs:HD0_STATUS
        movw    $0, 2(%si)              /* report nothing transferred */
        popw    %es
        popw    %di
        popw    %cx
        popl    %ebx
        popl    %eax
        movb    %fs:HD0_STATUS, %ah
        jmp     .Ld_fail
.Lext_notfound:
        movb    $0x04, %fs:HD0_STATUS
        jmp     3f
.Lext_bad:
        movb    $0x01, %fs:HD0_STATUS
3:      popw    %es
        popw    %di
        popw    %cx
        popl    %ebx
        popl    %eax
        movb    %fs:HD0_STATUS, %ah
        jmp     .Ld_fail

/* AH=48h extended drive parameters into DS:SI (caller sets word 0 to the
   buffer size, at least 1Ah):
     +0 word size  +2 word flags (bit 1: CHS fields valid)  +4 dword cylinders
     +8 dword heads  +12 dword sectors/track  +16 qword sectors
     +24 word bytes per sector                                              */
.Ld_ext_params:
        cmpw    $0x1A, (%si)
        jb      .Ld_bad
        pushl   %eax
        movw    $0x1A, (%si)
        movw    $0x0002, 2(%si)
        movzwl  %fs:HD0_CYLINDERS, %eax
        movl    %eax, 4(%si)
        movl    $CHS_HEADS, 8(%si)
        movl    $CHS_SECTORS, 12(%si)
        movl    %fs:HD0_SECTORS, %eax
        movl    %eax, 16(%si)
        movl    $0, 20(%si)
        movw    $512, 24(%si)
        popl    %eax
        jmp     .Ld_ok

/* ------------------------------------------------------------------------
 * ata_transfer: move CX sectors between hd0 (starting at LBA EAX) and the
 * buffer at ES:DI, one READ SECTORS (BL=20h) or WRITE SECTORS (BL=30h)
 * command per sector, polling BSY/DRQ (PIO, interrupts off with nIEN).
 * Needs FS = EBDA.  Out: CF=0 AH=0, or CF=1 AH=status code.
 * Preserves every other register.
 */
ata_transfer:
        pushl   %eax
        pushl   %ecx
        pushl   %edx
        pushw   %si
        pushw   %di
        pushw   %es
        pushw   %ds
        movb    $0x04, %fs:HD0_STATUS   /* "sector not found" unless in range */
        testw   %cx, %cx                /* nothing to move? */
        jz      .Lata_ok
        movzwl  %cx, %edx
        addl    %eax, %edx              /* last LBA + 1 must be <= size */
        jc      .Lata_out
        cmpl    %fs:HD0_SECTORS, %edx
        ja      .Lata_out
.Lata_sector:
        call    ata_wait_not_busy
        jc      .Lata_timeout
        pushl   %eax
        movw    $ATA_LBA0, %dx
        outb    %al, %dx                /* LBA bits 0-7 */
        incw    %dx
        movb    %ah, %al
        outb    %al, %dx                /* 0x1F4: LBA bits 8-15 */
        incw    %dx
        shrl    $16, %eax
        outb    %al, %dx                /* 0x1F5: LBA bits 16-23 */
        incw    %dx
        movb    %ah, %al
        andb    $0x0F, %al
        orb     $0xE0, %al              /* 0x1F6: LBA mode, master, bits 24-27 */
        outb    %al, %dx
        movw    $ATA_COUNT, %dx
        movb    $1, %al
        outb    %al, %dx                /* one sector per command */
        movw    $ATA_COMMAND, %dx
        movb    %bl, %al
        outb    %al, %dx                /* go */
        popl    %eax
        call    ata_delay400
        call    ata_wait_drq            /* the drive wants/has 512 bytes */
        jc      .Lata_error
        pushw   %cx
        movw    $256, %cx
        movw    $ATA_DATA, %dx
        cmpb    $ATA_CMD_WRITE, %bl
        je      1f
        rep     insw                    /* 512 bytes -> ES:DI */
        clc                             /* (CF is still set by the cmpb) */
        jmp     2f
1:      pushw   %es                     /* outsw reads DS:SI */
        popw    %ds
        movw    %di, %si
        rep     outsw                   /* ES:DI -> 512 bytes */
        call    ata_wait_not_busy       /* the drive stores the sector */
2:      popw    %cx
        jc      .Lata_timeout
        subw    $512, %di               /* rep moved DI on by 512 (writes: no) */
        cmpb    $ATA_CMD_WRITE, %bl
        jne     3f
        addw    $512, %di
3:      pushw   %ax                     /* next 512 bytes: bump the segment */
        movw    %es, %ax
        addw    $0x20, %ax
        movw    %ax, %es
        popw    %ax
        incl    %eax
        loop    .Lata_sector
        cmpb    $ATA_CMD_WRITE, %bl     /* writes: flush the drive's cache */
        jne     .Lata_ok
        movw    $ATA_COMMAND, %dx
        movb    $ATA_CMD_FLUSH, %al
        outb    %al, %dx
        call    ata_delay400
        call    ata_wait_not_busy
        jc      .Lata_timeout
.Lata_ok:
        movb    $0, %fs:HD0_STATUS
        jmp     .Lata_out
.Lata_timeout:
        movb    $0x80, %fs:HD0_STATUS
        jmp     .Lata_out
.Lata_error:
        movb    $0x20, %fs:HD0_STATUS
.Lata_out:
        popw    %ds
        popw    %es
        popw    %di
        popw    %si
        popl    %edx
        popl    %ecx
        popl    %eax
        movb    %fs:HD0_STATUS, %ah
        testb   %ah, %ah                /* clears CF */
        jz      1f
        stc
1:      ret

/* ata_delay400: read the alternate status 4 times (~400 ns) so the drive
   has time to raise BSY after a command.  Preserves all. */
ata_delay400:
        pushw   %ax
        pushw   %dx
        movw    $ATA_CTRL, %dx
        inb     %dx, %al
        inb     %dx, %al
        inb     %dx, %al
        inb     %dx, %al
        popw    %dx
        popw    %ax
        ret

/* ata_wait_not_busy: poll until BSY=0 (bounded).  CF=1 on timeout. */
ata_wait_not_busy:
        pushl   %ecx
        pushw   %ax
        pushw   %dx
        movl    $ATA_TIMEOUT, %ecx
        movw    $ATA_STATUS, %dx
1:      inb     %dx, %al
        testb   $ATA_SR_BSY, %al
        jz      2f
        decl    %ecx
        jnz     1b
        stc
        jmp     3f
2:      clc
3:      popw    %dx
        popw    %ax
        popl    %ecx
        ret

/* ata_wait_drq: poll until BSY=0, then CF=0 if DRQ=1 and no ERR/DF,
   CF=1 on error or timeout. */
ata_wait_drq:
        pushl   %ecx
        pushw   %ax
        pushw   %dx
        movl    $ATA_TIMEOUT, %ecx
        movw    $ATA_STATUS, %dx
1:      inb     %dx, %al
        testb   $ATA_SR_BSY, %al
        jz      2f
        decl    %ecx
        jnz     1b
        jmp     8f
2:      testb   $ATA_SR_ERR | ATA_SR_DF, %al
        jnz     8f
        testb   $ATA_SR_DRQ, %al
        jz      8f
        clc
        jmp     9f
8:      stc
9:      popw    %dx
        popw    %ax
        popl    %ecx
        ret

/* =================================================================== */
/*                      INT 15h: system services                       */
/* =================================================================== */
int15_handler:
        cmpl    $0xE820, %eax
        je      .Ls_e820
        cmpw    $0xE801, %ax
        je      .Ls_e801
        cmpb    $0x88, %ah
        je      .Ls_88
.Ls_unsupported:                        /* includes AH=C0h (no config table) */
        movb    $0x86, %ah              /* "function not supported" */
        stc
        jmp     iret_cf

/* AX=E820h: one memory map entry per call.  EDX = 'SMAP', EBX = index
   (0 first, the continuation value we return after), ES:DI = 20-byte
   buffer: qword base, qword length, dword type (1 RAM, 2 reserved).
   Returns EAX = 'SMAP', ECX = 20, EBX = next index or 0 after the last. */
.Ls_e820:
        cmpl    $SMAP, %edx
        jne     .Ls_unsupported
        cmpl    $20, %ecx
        jb      .Ls_unsupported
        cmpl    $E820_ENTRIES - 1, %ebx
        ja      .Ls_unsupported
        pushw   %si
        pushw   %di
        pushw   %fs
        movw    %bx, %si
        imulw   $20, %si
        addw    $e820_map, %si          /* CS:SI = entry EBX in the ROM table */
        movw    $20, %cx
1:      movb    %cs:(%si), %al
        incw    %si
        stosb
        loop    1b
        cmpl    $E820_ENTRIES - 1, %ebx /* last entry: RAM above 1 MiB, */
        jne     2f                      /* its length comes from CMOS */
        movw    $EBDA_SEG, %ax
        movw    %ax, %fs
        movl    %fs:RAM_TOP, %eax
        subl    $0x100000, %eax
        movl    %eax, %es:-20+8(%di)    /* length low dword */
2:      popw    %fs
        popw    %di
        popw    %si
        incl    %ebx
        cmpl    $E820_ENTRIES, %ebx
        jb      3f
        xorl    %ebx, %ebx              /* that was the last one */
3:      movl    $SMAP, %eax
        movl    $20, %ecx
        clc
        jmp     iret_cf

e820_map:       /* base (qword), length (qword), type (dword) */
        .quad   0x00000000, 0x0009FC00
        .long   1                       /* RAM: conventional memory */
        .quad   0x0009FC00, 0x00000400
        .long   2                       /* reserved: EBDA */
        .quad   0x000F0000, 0x00010000
        .long   2                       /* reserved: this BIOS */
        .quad   0x00100000, 0           /* length filled from RAM_TOP */
        .long   1                       /* RAM: extended memory */
E820_ENTRIES = (. - e820_map) / 20

/* AH=88h: AX = KiB of memory above 1 MiB (at most FFFFh). */
.Ls_88:
        pushw   %fs
        pushl   %edx
        movw    $EBDA_SEG, %ax
        movw    %ax, %fs
        movl    %fs:RAM_TOP, %edx
        subl    $0x100000, %edx
        shrl    $10, %edx
        cmpl    $0xFFFF, %edx
        jbe     1f
        movl    $0xFFFF, %edx
1:      movw    %dx, %ax
        popl    %edx
        popw    %fs
        clc
        jmp     iret_cf

/* AX=E801h: AX = CX = KiB between 1 MiB and 16 MiB (max 3C00h),
   BX = DX = 64 KiB blocks above 16 MiB. */
.Ls_e801:
        pushw   %fs
        pushl   %eax
        movw    $EBDA_SEG, %ax
        movw    %ax, %fs
        movl    %fs:RAM_TOP, %eax
        xorw    %bx, %bx
        cmpl    $16 << 20, %eax
        jbe     1f
        movl    %eax, %ebx              /* blocks above 16 MiB */
        subl    $16 << 20, %ebx
        shrl    $16, %ebx
        movl    $16 << 20, %eax
1:      subl    $0x100000, %eax
        shrl    $10, %eax
        movw    %ax, %cx
        popl    %eax
        movw    %cx, %ax
        movw    %bx, %dx
        popw    %fs
        clc
        jmp     iret_cf

/* =================================================================== */
/*                      INT 16h: keyboard services                     */
/* =================================================================== */
int16_handler:
        pushw   %ds
        pushw   %bx
        movw    $BDA_SEG, %bx
        movw    %bx, %ds
        cmpb    $0x00, %ah
        je      .Lk_wait
        cmpb    $0x10, %ah
        je      .Lk_wait
        cmpb    $0x01, %ah
        je      .Lk_check
        cmpb    $0x11, %ah
        je      .Lk_check
        cmpb    $0x02, %ah
        je      .Lk_flags
        popw    %bx
        popw    %ds
        iret

/* AH=00h: wait for a key; AH = scancode, AL = ASCII.  Interrupts must be
   on while we wait, or IRQ1 could never fill the buffer: sti + hlt sleeps
   until the next interrupt (timer or keyboard). */
.Lk_wait:
        cli
        movw    BDA_KBD_HEAD, %bx
        cmpw    BDA_KBD_TAIL, %bx
        jne     1f
        sti
        hlt
        jmp     .Lk_wait
1:      movw    (%bx), %ax              /* the oldest key */
        addw    $2, %bx
        cmpw    $BDA_KBD_BUF_END, %bx
        jb      2f
        movw    $BDA_KBD_BUF, %bx
2:      movw    %bx, BDA_KBD_HEAD
        sti
        popw    %bx
        popw    %ds
        iret

/* AH=01h: is a key waiting?  ZF=1 no; ZF=0 yes and AX = key (left queued). */
.Lk_check:
        movw    BDA_KBD_HEAD, %bx
        cmpw    BDA_KBD_TAIL, %bx
        je      1f
        movw    (%bx), %ax
1:      popw    %bx                     /* pop/mov do not change ZF */
        popw    %ds
        jmp     iret_zf

/* AH=02h: shift flags (always 0 here). */
.Lk_flags:
        xorb    %al, %al
        popw    %bx
        popw    %ds
        iret

/* =================================================================== */
/*                      INT 1Ah: time of day and RTC                   */
/* =================================================================== */
int1a_handler:
        cmpb    $0x00, %ah
        je      .Lt_ticks
        cmpb    $0x02, %ah
        je      .Lt_time
        cmpb    $0x04, %ah
        je      .Lt_date
        stc
        jmp     iret_cf

/* AH=00h: CX:DX = ticks since midnight, AL = midnight flag (then cleared). */
.Lt_ticks:
        pushw   %ds
        movw    $BDA_SEG, %ax
        movw    %ax, %ds
        cli                             /* IRQ0 must not update half-read */
        movw    BDA_TICKS, %dx
        movw    BDA_TICKS + 2, %cx
        movb    BDA_MIDNIGHT, %al
        movb    $0, BDA_MIDNIGHT
        sti
        popw    %ds
        clc
        jmp     iret_cf

/* AH=02h: RTC time in BCD: CH hours (reg 04h), CL minutes (02h),
   DH seconds (00h), DL = daylight saving flag (reg 0Bh bit 0). */
.Lt_time:
        call    rtc_wait_update
        movb    $0x04, %al
        call    cmos_read
        movb    %al, %ch
        movb    $0x02, %al
        call    cmos_read
        movb    %al, %cl
        movb    $0x00, %al
        call    cmos_read
        movb    %al, %dh
        movb    $0x0B, %al
        call    cmos_read
        andb    $0x01, %al
        movb    %al, %dl
        xorb    %ah, %ah
        clc
        jmp     iret_cf

/* AH=04h: RTC date in BCD: CH century (reg 32h), CL year (09h),
   DH month (08h), DL day (07h). */
.Lt_date:
        call    rtc_wait_update
        movb    $0x32, %al
        call    cmos_read
        movb    %al, %ch
        movb    $0x09, %al
        call    cmos_read
        movb    %al, %cl
        movb    $0x08, %al
        call    cmos_read
        movb    %al, %dh
        movb    $0x07, %al
        call    cmos_read
        movb    %al, %dl
        xorb    %ah, %ah
        clc
        jmp     iret_cf

/* rtc_wait_update: wait (bounded) while the RTC updates its registers
   (register 0Ah bit 7, "update in progress"). */
rtc_wait_update:
        pushw   %ax
        pushw   %cx
        movw    $0xFFFF, %cx
1:      movb    $0x0A, %al
        call    cmos_read
        testb   $0x80, %al
        jz      2f
        loop    1b
2:      popw    %cx
        popw    %ax
        ret

/* =================================================================== */
/*                       INT 19h: bootstrap loader                     */
/* =================================================================== */
/* Read hd0's first sector to 0000:7C00 with our own INT 13h, check the
   55h AAh signature at 7DFEh, and jump there with DL = 80h. */
int19_handler:
        sti
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    $0x7C00, %sp            /* fresh stack just below the sector */
        movw    $msg_boot, %si
        call    log
        movw    $0x0201, %ax            /* AH=02h read, AL=1 sector */
        movw    $0x7C00, %bx            /* ES:BX = 0000:7C00 */
        movw    $0x0001, %cx            /* cylinder 0, sector 1 */
        movw    $0x0080, %dx            /* head 0, drive 80h */
        int     $0x13
        jc      no_boot
        cmpw    $0xAA55, 0x7DFE         /* bytes 55h AAh, little endian */
        jne     no_boot
        movw    $msg_loaded, %si
        call    log
        movw    $msg_jump, %si
        call    log
        movw    $0x0080, %dx            /* DL = boot drive */
        ljmp    $0x0000, $0x7C00

no_boot:
        movw    $msg_noboot, %si        /* serial + debug port */
        call    log
        movw    $msg_noboot_screen, %si /* and the screen */
1:      movb    %cs:(%si), %al
        incw    %si
        testb   %al, %al
        jz      halt_forever
        movb    $0x0E, %ah
        pushw   %si
        movb    $0x07, %bl
        pushw   %ds
        movw    $BDA_SEG, %bx
        movw    %bx, %ds
        movb    $0x07, %bl
        call    vga_tty                 /* screen only: serial has it */
        popw    %ds
        popw    %si
        jmp     1b

/* Sleep forever, still answering interrupts (timer, keyboard). */
halt_forever:
        sti
        hlt
        jmp     halt_forever

/* =================================================================== */
/*                               strings                               */
/* =================================================================== */
msg_post:       .asciz  "xenlab BIOS: POST\n"
msg_ivt:        .asciz  "xenlab BIOS: IVT and BDA\n"
msg_pic:        .asciz  "xenlab BIOS: PIC and PIT\n"
msg_pci:        .asciz  "xenlab BIOS: PCI (IDE I/O enabled)\n"
msg_pci_none:   .asciz  "xenlab BIOS: PCI (no PIIX3 IDE found)\n"
msg_disks:      .asciz  "xenlab BIOS: disks: hd0 "
msg_sectors:    .asciz  " sectors\n"
msg_no_disks:   .asciz  "xenlab BIOS: disks: none\n"
msg_memory:     .asciz  "xenlab BIOS: memory "
msg_kib:        .asciz  " KiB\n"
msg_video:      .asciz  "xenlab BIOS: video\n"
msg_boot:       .asciz  "xenlab BIOS: INT 19h boot from hd0\n"
msg_loaded:     .asciz  "xenlab BIOS: boot sector loaded at 0000:7C00, signature 55AA\n"
msg_jump:       .asciz  "xenlab BIOS: jump to 0000:7C00 with DL=80h\n"
msg_noboot:     .asciz  "xenlab BIOS: No bootable device.\n"
msg_noboot_screen: .asciz "No bootable device.\r\n"

/* =================================================================== */
/*                 the top 16 bytes: reset vector and ID               */
/* =================================================================== */
        .org    0xFFF0
reset_vector:                           /* physical 0xFFFF0: CPU starts here */
        ljmp    $0xF000, $post          /* 5 bytes: EA, offset, segment */
        .ascii  "06/01/24"              /* 0xFFFF5: BIOS date, MM/DD/YY */
        .byte   0                       /* 0xFFFFD */
        .byte   0xFC                    /* 0xFFFFE: model byte, FCh = PC/AT */
        .byte   0                       /* 0xFFFFF */
