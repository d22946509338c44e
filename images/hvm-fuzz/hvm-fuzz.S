/*
 * images/hvm-fuzz/hvm-fuzz.S -- a hostile HVM guest: a boot sector that fuzzes
 * Xen and the device model with port I/O and vmcall hypercalls.
 *
 * Booted by the teaching BIOS like hvm-hello (INT 19h loads it to 0000:7C00),
 * it stays in real mode with interrupts off and, driven by a 32-bit xorshift
 * PRNG, issues OPS operations, each one of
 *
 *   out   a random byte/word/dword to a random port (0..65535)
 *   in    a random byte/word/dword from a random port
 *   rep outs  from a random DS:SI, random count (up to 65535, below 64
 *         31 times in 32) and size
 *   rep ins   into a random ES:DI with ES >= 1000h (the low 64 KiB holds the
 *         IVT, this code and its stack; everything above, up to 10FFEFh, is
 *         fair game), random count and size
 *   vmcall    EAX = a random hypercall number 0..63, EBX/ECX/EDX/ESI/EDI =
 *         0, -1, small numbers, random dwords, or pointers to a scratch page
 *         (0000:8000) first filled with random dwords
 *
 * A line "hvm-fuzz: NNNN" on the debug port 0xE9 every 256 operations, then
 * "hvm-fuzz: done" and SCHEDOP_shutdown(poweroff) by vmcall.  Hypercalls that
 * would only end the run early are turned into harmless ones: sched_op
 * block/shutdown/poll become yield, VCPUOP_down becomes VCPUOP_is_up.
 *
 * The boot sector loads the fuzzer (LBA 1-2) to 0000:7E00 with INT 13h and
 * jumps there.  The seed and the number of operations are two dwords at fixed
 * offsets of the boot sector (SEED_OFFSET 1F0h, OPS_OFFSET 1F4h): xenlab.fuzz patches them
 * into a copy of the disk for each round.
 *
 * Build (images/Makefile): as --32, ld -m elf_i386 -Ttext 0x7c00,
 * objcopy -O binary (three sectors), truncate -s 1M.
 */
        .code16
        .text

DEBUG_PORT      = 0xE9
SCRATCH         = 0x9000        /* 4 KiB of random arguments */
STAGE2_ADDR     = 0x7E00        /* LBA 1-2, right after the boot sector */
STAGE2_SECTORS  = 2
STACK_TOP       = 0x7C00
STATE           = 0x7000        /* PRNG state (dword) */
LEFT            = 0x7004        /* operations left (dword) */
DONE            = 0x7008        /* operations done (dword) */
SHUTDOWN_ARG    = 0x700C        /* struct sched_shutdown { reason = 0 } */

HC_VCPU_OP      = 24
HC_SCHED_OP     = 29

        .globl  start
start:
        cld
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    $STACK_TOP, %sp
        movl    seed, %eax
        orl     %eax, %eax
        jnz     1f
        incl    %eax
1:      movl    %eax, STATE
        movl    ops, %eax
        movl    %eax, LEFT
        movl    $0, DONE
        movw    $dap, %si               /* INT 13h AH=42h: LBA 1-2 to 0000:7E00 */
        movb    $0x42, %ah
        int     $0x13                   /* DL: the boot drive, from the BIOS */
        jc      finish
        jmp     stage2

dap:    .byte   16, 0                   /* disk address packet: size, reserved */
        .word   STAGE2_SECTORS, STAGE2_ADDR, 0
        .quad   1                       /* first LBA */

        .org    0x1F0
seed:   .long   1                       /* SEED_OFFSET: patched per round */
ops:    .long   2000                    /* OPS_OFFSET */
        .org    0x1FE
        .byte   0x55, 0xAA

/* ====================================================================== */
/* LBA 1-2: the fuzzer, at 0000:7E00                                      */
/* ====================================================================== */
stage2:
        cli                             /* the BIOS's INT 13h may have set IF */
        movw    $msg_start, %si
        call    puts

next_op:
        cmpl    $0, LEFT
        je      finish
        decl    LEFT
        incl    DONE
        testb   $0xFF, DONE             /* a line every 256 operations */
        jnz     1f
        movw    $msg_prefix, %si
        call    puts
        movl    DONE, %eax
        call    puthex
        movb    $'\n', %al
        outb    %al, $DEBUG_PORT
1:      call    rand
        movl    %eax, %ebx              /* EBX: what to do and how */
        call    rand
        movw    %ax, %dx                /* DX: the port */
        shrl    $16, %eax               /* AX/EAX: a value */
        movb    %bl, %cl
        andb    $7, %cl
        cmpb    $2, %cl
        jb      op_out
        cmpb    $4, %cl
        jb      op_in
        je      op_outs
        cmpb    $5, %cl
        je      op_ins
        jmp     op_vmcall

/* ---- out / in: size from bits 3-4 of EBX -------------------------------- */
op_out:
        testb   $0x08, %bl
        jnz     1f
        outb    %al, %dx
        jmp     next_op
1:      testb   $0x10, %bl
        jnz     2f
        outw    %ax, %dx
        jmp     next_op
2:      outl    %eax, %dx
        jmp     next_op

op_in:
        testb   $0x08, %bl
        jnz     1f
        inb     %dx, %al
        jmp     next_op
1:      testb   $0x10, %bl
        jnz     2f
        inw     %dx, %ax
        jmp     next_op
2:      inl     %dx, %eax
        jmp     next_op

/* ---- rep outs / rep ins: count = random 16 bits, small most of the time -- */
rep_count:                              /* CX from EBX's high bits */
        movl    %ebx, %ecx
        shrl    $16, %ecx
        testw   $0x81E0, %bx            /* 1 in 32: the full 16 bits */
        jz      1f
        andw    $0x3F, %cx
1:      ret

op_outs:
        call    rep_count
        call    rand
        movw    %ax, %si
        shrl    $16, %eax
        movw    %ax, %ds                /* anywhere in the first MiB and a bit */
        testb   $0x08, %bl
        jnz     1f
        rep outsb
        jmp     restore_seg
1:      testb   $0x10, %bl
        jnz     2f
        rep outsw
        jmp     restore_seg
2:      rep outsl
        jmp     restore_seg

op_ins:
        call    rep_count
        call    rand
        movw    %ax, %di
        shrl    $16, %eax
        orw     $0x1000, %ax            /* not the low 64 KiB (IVT, us, our stack) */
        movw    %ax, %es
        testb   $0x08, %bl
        jnz     1f
        rep insb
        jmp     restore_seg
1:      testb   $0x10, %bl
        jnz     2f
        rep insw
        jmp     restore_seg
2:      rep insl
restore_seg:
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        jmp     next_op

/* ---- vmcall ------------------------------------------------------------- */
op_vmcall:
        movw    $SCRATCH, %di           /* 64 random dwords at the scratch page */
        movw    $64, %cx
1:      call    rand
        stosl
        loop    1b
        call    arg
        pushl   %eax                    /* EDI */
        call    arg
        pushl   %eax                    /* ESI */
        call    arg
        pushl   %eax                    /* EDX */
        call    arg
        pushl   %eax                    /* ECX */
        call    arg
        movl    %eax, %ebx              /* EBX: the command, small most of the time */
        call    rand
        testb   $0x30, %al
        jz      2f
        andl    $0xF, %ebx
2:      call    rand
        andl    $63, %eax               /* the hypercall number */
        cmpb    $HC_SCHED_OP, %al       /* block, shutdown, poll -> yield */
        jne     3f
        cmpl    $1, %ebx
        jb      3f
        cmpl    $3, %ebx
        ja      3f
        xorl    %ebx, %ebx
3:      cmpb    $HC_VCPU_OP, %al        /* VCPUOP_down -> VCPUOP_is_up */
        jne     4f
        cmpl    $2, %ebx
        jne     4f
        movl    $3, %ebx
4:      popl    %ecx
        popl    %edx
        popl    %esi
        popl    %edi
        vmcall
        jmp     next_op

/* arg: EAX = 0, -1, a small number, a random dword, or a pointer into scratch */
arg:
        call    rand
        movl    %eax, %ecx
        shrl    $8, %ecx
        andb    $7, %al
        jz      arg_zero
        cmpb    $1, %al
        je      arg_ones
        cmpb    $2, %al
        je      arg_small
        cmpb    $3, %al
        je      arg_random
        movl    %ecx, %eax              /* 4..7: SCRATCH + 0..FFFh */
        andl    $0xFFF, %eax
        addl    $SCRATCH, %eax
        ret
arg_zero:
        xorl    %eax, %eax
        ret
arg_ones:
        movl    $-1, %eax
        ret
arg_small:
        movl    %ecx, %eax
        andl    $0x3F, %eax
        ret
arg_random:
        movl    %ecx, %eax
        roll    $13, %eax
        ret

/* ---- the end: SCHEDOP_shutdown(SHUTDOWN_poweroff) ------------------------ */
finish:
        movw    $msg_done, %si
        call    puts
        movl    $0, SHUTDOWN_ARG
        movl    $HC_SCHED_OP, %eax
        movl    $2, %ebx                /* SCHEDOP_shutdown */
        movl    $SHUTDOWN_ARG, %ecx
        vmcall
        cli
        hlt
        jmp     finish

/* ---- helpers ------------------------------------------------------------ */
rand:                                   /* xorshift32: EAX = next, clobbers nothing else */
        pushl   %edx
        movl    STATE, %eax
        movl    %eax, %edx
        shll    $13, %edx
        xorl    %edx, %eax
        movl    %eax, %edx
        shrl    $17, %edx
        xorl    %edx, %eax
        movl    %eax, %edx
        shll    $5, %edx
        xorl    %edx, %eax
        movl    %eax, STATE
        popl    %edx
        ret

puts:                                   /* DS:SI, NUL-terminated, to port 0xE9 */
        lodsb
        orb     %al, %al
        jz      1f
        outb    %al, $DEBUG_PORT
        jmp     puts
1:      ret

puthex:                                 /* EAX as 8 hex digits */
        movw    $8, %cx
        movl    %eax, %edx
1:      roll    $4, %edx
        movb    %dl, %al
        andb    $0xF, %al
        addb    $'0', %al
        cmpb    $'9', %al
        jbe     2f
        addb    $('a' - '9' - 1), %al
2:      outb    %al, $DEBUG_PORT
        loop    1b
        ret

msg_start:      .asciz  "hvm-fuzz: start\n"
msg_prefix:     .asciz  "hvm-fuzz: "
msg_done:       .asciz  "hvm-fuzz: done\n"

        .org    0x200 + STAGE2_SECTORS * 0x200
