/* Copies random lengths between random offsets of two 64 KiB buffers; the checksum covers the destination. */
#include "guest.h"

#define BUF_BYTES 65536
#define ROUNDS 400
#define SEED 0x243f6a8885a308d3ULL

static uint64_t src[BUF_BYTES / 8];
static uint64_t dst[BUF_BYTES / 8];

uint64_t guest_main(uint64_t hartid, uint64_t nharts)
{
    (void) nharts;
    if (hartid != 0) {
        return 0;
    }
    uint64_t state = SEED;
    for (int i = 0; i < BUF_BYTES / 8; i++) {
        src[i] = xorshift64(&state);
    }
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t r = xorshift64(&state);
        uint64_t len = r % 4096;
        uint64_t from = (r >> 16) % (BUF_BYTES - len);
        uint64_t to = (r >> 32) % (BUF_BYTES - len);
        memcpy((uint8_t *) dst + to, (const uint8_t *) src + from, len);
    }
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < BUF_BYTES / 8; i++) {
        h = fnv_word(h, dst[i]);
    }
    uart_put_result("memcpy", h);
    return h;
}
