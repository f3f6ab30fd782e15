/*
 * Boot code, executed in place from the flash at 0x20000000: hart 0 copies the image to RAM, zeroes .bss and
 * raises the boot flag; the other harts wait for the flag. Every hart then gets a 64 KiB stack below __stack_top and
 * calls guest_main(hartid, nharts) in RAM. Hart 0 stores the returned checksum in the mailbox and ends the run
 * through the test finisher (virt's sifive_test at 0x100000: 0x5555 is "pass"); the other harts park in wfi.
 */
    .equ MAILBOX, 0x80000000
    .equ FINISHER, 0x100000
    .equ FINISHER_PASS, 0x5555
    .equ STACK_SHIFT, 16

    .section .boot, "ax"
    .globl _start
_start:
    csrr    t0, mhartid
    bnez    t0, wait_boot

    la      a0, __ram_start
    la      a1, __load_start
    la      a2, __ram_end
copy:
    bgeu    a0, a2, copied
    ld      t1, 0(a1)
    sd      t1, 0(a0)
    addi    a0, a0, 8
    addi    a1, a1, 8
    j       copy
copied:
    la      a0, __bss_start
    la      a2, __bss_end
zero:
    bgeu    a0, a2, zeroed
    sd      zero, 0(a0)
    addi    a0, a0, 8
    j       zero
zeroed:
    fence.i
    fence   rw, rw
    li      t0, MAILBOX
    li      t1, 1
    sd      t1, 8(t0)
    j       start_hart

wait_boot:
    li      t0, MAILBOX
    ld      t1, 8(t0)
    beqz    t1, wait_boot
    fence   rw, rw
    fence.i

start_hart:
    csrr    a0, mhartid
    la      sp, __stack_top
    slli    t0, a0, STACK_SHIFT
    sub     sp, sp, t0
    li      t0, MAILBOX
    ld      a1, 16(t0)
    la      t0, guest_main
    jalr    ra, 0(t0)

    csrr    t1, mhartid
    bnez    t1, park
    li      t0, MAILBOX
    sd      a0, 0(t0)
    fence   rw, rw
    li      t0, FINISHER
    li      t1, FINISHER_PASS
    sw      t1, 0(t0)
park:
    wfi
    j       park
