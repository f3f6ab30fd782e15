/*
 * What every guest program shares: the machine's addresses (the RISC-V virt board's layout), the mailbox through
 * which the host reads the result, the UART, and the pseudo-random numbers and checksum the host recomputes in Java
 * (dev.guestmem.bench.riscv.GuestPrograms).
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdint.h>

#define UART0_BASE   0x10000000UL
#define UART_THR     0
#define UART_LSR     5
#define UART_LSR_THRE 0x20

/* The first page of RAM is the mailbox: the host writes nharts before start and reads the result at the end. */
#define MAILBOX_BASE     0x80000000UL
#define MAILBOX_RESULT   (*(volatile uint64_t *) (MAILBOX_BASE + 0x00))
#define MAILBOX_NHARTS   (*(volatile uint64_t *) (MAILBOX_BASE + 0x10))

/* The program's main: hart's id, the number of harts; hart 0's return value is the checksum. */
uint64_t guest_main(uint64_t hartid, uint64_t nharts);

void *memcpy(void *dst, const void *src, unsigned long n);
void *memset(void *dst, int c, unsigned long n);

static inline void uart_putc(char c)
{
    volatile uint8_t *uart = (volatile uint8_t *) UART0_BASE;
    while ((uart[UART_LSR] & UART_LSR_THRE) == 0) {
    }
    uart[UART_THR] = (uint8_t) c;
}

static inline void uart_puts(const char *s)
{
    while (*s) {
        uart_putc(*s++);
    }
}

/* "name: 0123456789abcdef\n", the line every program ends with. */
static inline void uart_put_result(const char *name, uint64_t v)
{
    uart_puts(name);
    uart_puts(": ");
    for (int shift = 60; shift >= 0; shift -= 4) {
        uart_putc("0123456789abcdef"[(v >> shift) & 0xf]);
    }
    uart_putc('\n');
}

/* xorshift64 (Marsaglia, shifts 13, 7, 17): never 0 from a non-zero seed. */
static inline uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

/* FNV-1a over 64-bit words instead of bytes. */
static inline uint64_t fnv_word(uint64_t h, uint64_t word)
{
    return (h ^ word) * FNV_PRIME;
}

static inline uint64_t csr_mhartid(void)
{
    uint64_t v;
    __asm__ volatile("csrr %0, mhartid" : "=r"(v));
    return v;
}

#endif
