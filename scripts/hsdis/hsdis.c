/*
 * A disassembler plugin for HotSpot's -XX:+PrintAssembly on x86_64, built on the Capstone library: the JVM loads
 * hsdis-amd64.so (from its own lib directories or LD_LIBRARY_PATH) and calls decode_instructions_virtual for each
 * range of compiled code it prints. Build it with scripts/build-hsdis.sh.
 *
 * The protocol, as the JVM's disassembler expects it: for each instruction, an "insn" event with its address, the
 * instruction's text through printf_callback, then an "/insn" event with the address after it; a newline after each
 * when asked. The return value is the address decoding stopped at. Options are ignored (the syntax is Intel's).
 */
#include <stdint.h>
#include <capstone/capstone.h>

typedef void *(*event_callback_t)(void *stream, const char *event, void *arg);
typedef int (*printf_callback_t)(void *stream, const char *format, ...);

void *decode_instructions_virtual(uintptr_t start_va, uintptr_t end_va, unsigned char *buffer, uintptr_t length,
                                  event_callback_t event_callback, void *event_stream,
                                  printf_callback_t printf_callback, void *printf_stream,
                                  const char *options, int newline) {
    (void) options;
    csh handle;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) {
        return (void *) start_va;
    }
    uintptr_t pc = start_va;
    uintptr_t offset = 0;
    while (pc < end_va && offset < length) {
        cs_insn *insn;
        size_t decoded = cs_disasm(handle, buffer + offset, length - offset, pc, 1, &insn);
        size_t size = decoded == 1 ? insn[0].size : 1;
        event_callback(event_stream, "insn", (void *) pc);
        if (decoded == 1) {
            printf_callback(printf_stream, "%-8s %s", insn[0].mnemonic, insn[0].op_str);
            cs_free(insn, decoded);
        } else {
            printf_callback(printf_stream, "(bad)");
        }
        pc += size;
        offset += size;
        event_callback(event_stream, "/insn", (void *) pc);
        if (newline) {
            printf_callback(printf_stream, "\n");
        }
    }
    cs_close(&handle);
    return (void *) pc;
}
