/* Writes a function into one buffer 200 times over (a run of addi, one xori, ret), executes fence.i and calls it:
   an emulator that kept the code it decoded from the buffer earlier computes another checksum. */
#include "guest.h"

#define ROUNDS 200
#define MAX_ADDI 32
#define REG_A0 10
#define OP_IMM 0x13
#define INSN_RET 0x00008067u

static uint32_t code[MAX_ADDI + 2] __attribute__((aligned(4096)));

static uint32_t op_imm(uint32_t funct3, int32_t imm)
{
    return ((uint32_t) imm & 0xfff) << 20 | REG_A0 << 15 | funct3 << 12 | REG_A0 << 7 | OP_IMM;
}

uint64_t guest_main(uint64_t hartid, uint64_t nharts)
{
    (void) nharts;
    if (hartid != 0) {
        return 0;
    }
    uint64_t acc = 1;
    for (int k = 0; k < ROUNDS; k++) {
        int n = 1 + k % MAX_ADDI;
        for (int j = 0; j < n; j++) {
            code[j] = op_imm(0, (k * 37 + j * 11) % 2048 - 1024); /* addi a0, a0, imm */
        }
        code[n] = op_imm(4, k); /* xori a0, a0, k */
        code[n + 1] = INSN_RET;
        __asm__ volatile("fence.i" ::: "memory");
        acc = ((uint64_t (*)(uint64_t)) (uintptr_t) code)(acc);
        acc = acc * 3 + (uint64_t) k;
    }
    uart_put_result("selfmod", acc);
    return acc;
}
