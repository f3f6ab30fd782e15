/* The two functions GCC may call for loops it recognises; copies and fills a word at a time when aligned. */
#include "guest.h"

void *memcpy(void *dst, const void *src, unsigned long n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if ((((uintptr_t) d | (uintptr_t) s) & 7) == 0) {
        for (; n >= 8; n -= 8, d += 8, s += 8) {
            *(uint64_t *) d = *(const uint64_t *) s;
        }
    }
    for (; n > 0; n--) {
        *d++ = *s++;
    }
    return dst;
}

void *memset(void *dst, int c, unsigned long n)
{
    uint8_t *d = dst;
    for (; n > 0; n--) {
        *d++ = (uint8_t) c;
    }
    return dst;
}
