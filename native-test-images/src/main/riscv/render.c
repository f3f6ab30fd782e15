/* Draws FRAMES frames of 320x240 pixels (32-bit 0x00RRGGBB) into the framebuffer at 0x40000000, each hart the rows
   y = hartid mod nharts: moving rings over an XOR pattern. Hart 0 waits for every hart, then checksums the last
   frame as 64-bit words. */
#include "guest.h"

#define FB_BASE 0x40000000UL
#define WIDTH 320
#define HEIGHT 240
#define FRAMES 12

static uint64_t finished; /* amoadd.d 1 per hart at the end */

static uint32_t pixel(int x, int y, int f)
{
    int cx = 160 + (f * 7) % 80 - 40;
    int cy = 120 + (f * 5) % 60 - 30;
    int dx = x - cx;
    int dy = y - cy;
    uint32_t r = (uint32_t) (((dx * dx + dy * dy) >> 5) + f * 8) & 0xff;
    uint32_t g = (uint32_t) ((x ^ y) + f * 4) & 0xff;
    uint32_t b = (uint32_t) ((y * 17) >> 4) & 0xff;
    return r << 16 | g << 8 | b;
}

uint64_t guest_main(uint64_t hartid, uint64_t nharts)
{
    volatile uint32_t *fb = (volatile uint32_t *) FB_BASE;
    for (int f = 0; f < FRAMES; f++) {
        for (int y = (int) hartid; y < HEIGHT; y += (int) nharts) {
            for (int x = 0; x < WIDTH; x++) {
                fb[y * WIDTH + x] = pixel(x, y, f);
            }
        }
    }
    __asm__ volatile("amoadd.d zero, %1, (%0)" : : "r"(&finished), "r"(1UL) : "memory");
    if (hartid != 0) {
        return 0;
    }
    while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < nharts) {
    }
    const volatile uint64_t *words = (const volatile uint64_t *) FB_BASE;
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < WIDTH * HEIGHT / 2; i++) {
        h = fnv_word(h, words[i]);
    }
    h = fnv_word(h, FRAMES);
    uart_put_result("render", h);
    return h;
}
