/* Heapsorts 8192 random 63-bit numbers; the checksum covers the sorted array, 0 if it is not sorted. */
#include "guest.h"

#define COUNT 8192
#define SEED 0x13198a2e03707344ULL

static uint64_t values[COUNT];

static void sift_down(uint64_t *a, unsigned long root, unsigned long end)
{
    while (2 * root + 1 < end) {
        unsigned long child = 2 * root + 1;
        if (child + 1 < end && a[child] < a[child + 1]) {
            child++;
        }
        if (a[root] >= a[child]) {
            return;
        }
        uint64_t t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

uint64_t guest_main(uint64_t hartid, uint64_t nharts)
{
    (void) nharts;
    if (hartid != 0) {
        return 0;
    }
    uint64_t state = SEED;
    for (int i = 0; i < COUNT; i++) {
        values[i] = xorshift64(&state) >> 1;
    }
    for (unsigned long start = COUNT / 2; start-- > 0;) {
        sift_down(values, start, COUNT);
    }
    for (unsigned long end = COUNT - 1; end > 0; end--) {
        uint64_t t = values[0];
        values[0] = values[end];
        values[end] = t;
        sift_down(values, 0, end);
    }
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < COUNT; i++) {
        if (i > 0 && values[i - 1] > values[i]) {
            h = 0;
            break;
        }
        h = fnv_word(h, values[i]);
    }
    uart_put_result("sort", h);
    return h;
}
