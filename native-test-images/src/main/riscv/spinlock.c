/* Every hart increments a shared counter 1000 times under an LR/SC spinlock (released with amoswap), and adds to
   AMO counters beside it; hart 0 waits for all harts, and the checksum covers the counter and the AMO results. */
#include "guest.h"

#define ITERS 1000

static uint32_t lock;
static volatile uint64_t counter;
static uint64_t total;    /* amoadd.d of hartid + 1 per iteration */
static uint64_t mask;     /* amoor.d of 1 << hartid */
static uint64_t max_id;   /* amomaxu.d of hartid */
static uint64_t finished; /* amoadd.d 1 per hart at the end */

static void acquire(uint32_t *l)
{
    uint32_t busy;
    __asm__ volatile("1: lr.w.aq %0, (%1)\n"
                     "   bnez %0, 1b\n"
                     "   sc.w %0, %2, (%1)\n"
                     "   bnez %0, 1b\n"
                     : "=&r"(busy) : "r"(l), "r"(1) : "memory");
}

static void release(uint32_t *l)
{
    /* An AMO rather than a plain store: see GuestAtomics on the host side. */
    __asm__ volatile("amoswap.w.rl zero, zero, (%0)" : : "r"(l) : "memory");
}

static void amo_add(uint64_t *p, uint64_t v)
{
    __asm__ volatile("amoadd.d zero, %1, (%0)" : : "r"(p), "r"(v) : "memory");
}

uint64_t guest_main(uint64_t hartid, uint64_t nharts)
{
    for (int i = 0; i < ITERS; i++) {
        acquire(&lock);
        counter = counter + 1;
        release(&lock);
        amo_add(&total, hartid + 1);
    }
    __asm__ volatile("amoor.d zero, %1, (%0)" : : "r"(&mask), "r"(1UL << hartid) : "memory");
    __asm__ volatile("amomaxu.d zero, %1, (%0)" : : "r"(&max_id), "r"(hartid) : "memory");
    amo_add(&finished, 1);
    if (hartid != 0) {
        return 0;
    }
    while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < nharts) {
    }
    uint64_t h = FNV_OFFSET;
    h = fnv_word(h, counter);
    h = fnv_word(h, __atomic_load_n(&total, __ATOMIC_ACQUIRE));
    h = fnv_word(h, __atomic_load_n(&mask, __ATOMIC_ACQUIRE));
    h = fnv_word(h, __atomic_load_n(&max_id, __ATOMIC_ACQUIRE));
    h = fnv_word(h, nharts);
    uart_put_result("spinlock", h);
    return h;
}
