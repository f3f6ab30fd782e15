/* An open-addressing hash table (linear probing, 65536 slots): 30000 random inserts, then 60000 random lookups, half
   of keys that were inserted; the checksum covers every lookup's value (all ones when missing). */
#include "guest.h"

#define SLOTS 65536
#define INSERTS 30000
#define LOOKUPS 60000
#define SEED 0xa4093822299f31d0ULL

struct slot {
    uint64_t key; /* 0: empty; xorshift64 never yields 0 */
    uint64_t value;
};

static struct slot table[SLOTS];
static uint64_t keys[INSERTS];

static struct slot *find(uint64_t key)
{
    unsigned long i = (key * 0x9e3779b97f4a7c15ULL) >> 48;
    while (table[i].key != 0 && table[i].key != key) {
        i = (i + 1) & (SLOTS - 1);
    }
    return &table[i];
}

uint64_t guest_main(uint64_t hartid, uint64_t nharts)
{
    (void) nharts;
    if (hartid != 0) {
        return 0;
    }
    uint64_t state = SEED;
    for (uint64_t i = 0; i < INSERTS; i++) {
        uint64_t key = xorshift64(&state);
        keys[i] = key;
        struct slot *s = find(key);
        s->key = key;
        s->value = i;
    }
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < LOOKUPS; i++) {
        uint64_t r = xorshift64(&state);
        uint64_t key = (r & 1) ? keys[(r >> 1) % INSERTS] : (r | 1);
        struct slot *s = find(key);
        h = fnv_word(h, s->key == key ? s->value : ~0ULL);
    }
    uart_put_result("hash", h);
    return h;
}
