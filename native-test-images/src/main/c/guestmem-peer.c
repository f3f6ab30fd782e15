/*
 * guestmem-peer: a second process that maps the same memory as a guest, for guestmem's tests.
 *
 *   guestmem-peer PATH OP...
 *
 * PATH is a file, or /proc/PID/fd/N for another process's fd (a memfd). The file is opened read-write (read-only
 * if that is refused) and its whole length, as it is at start, mapped MAP_SHARED. Then each OP runs in order:
 *
 *   write OFFSET HEX       store the bytes HEX (two hex digits a byte) at OFFSET of the mapping
 *   pattern OFFSET LEN SEED  store LEN bytes, byte i being (SEED + 31 * i) mod 256, at OFFSET
 *   read OFFSET LEN        print LEN bytes from OFFSET of the mapping as hex
 *   truncate LENGTH        ftruncate the file to LENGTH bytes (the mapping keeps its length)
 *
 *   guestmem-peer --memfd SIZE [sealed]
 *
 * creates a memfd of SIZE bytes (sealed: with F_SEAL_SHRINK and F_SEAL_GROW, so that nobody can change its length),
 * prints the path other processes open it by (/proc/PID/fd/N), and keeps it open until its standard input ends.
 *
 * Numbers are decimal or 0x-prefixed hex. Each OP prints one line: "ok OP" (for read, "ok read HEX"), or
 * "error OP ERRNO-NAME" (ftruncate of a sealed memfd: "error truncate EPERM"; an access past the end of a truncated
 * file: "error read SIGBUS"). The exit status is 0 when every OP worked, 1 when one failed, 2 for bad usage or a
 * file that cannot be opened or mapped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static sigjmp_buf fault_jump;
static volatile sig_atomic_t in_access;

static void on_sigbus(int sig) {
    (void) sig;
    if (in_access) {
        siglongjmp(fault_jump, 1);
    }
    _exit(3);
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        return -1;
    }
    *out = (uint64_t) v;
    return 0;
}

static const char *errno_name(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EFBIG: return "EFBIG";
    case EROFS: return "EROFS";
    case ETXTBSY: return "ETXTBSY";
    case EIO: return "EIO";
    default: return strerrorname_np(e) != NULL ? strerrorname_np(e) : "EUNKNOWN";
    }
}

static int usage(void) {
    fprintf(stderr, "usage: guestmem-peer PATH {write OFFSET HEX | pattern OFFSET LEN SEED | read OFFSET LEN"
                    " | truncate LENGTH}...\n"
                    "       guestmem-peer --memfd SIZE [sealed]\n");
    return 2;
}

/* Whether [off, off + len) lies inside a mapping of map_len bytes. */
static int in_map(uint64_t off, uint64_t len, uint64_t map_len) {
    return off <= map_len && len <= map_len - off;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One operation on the mapping: fn touches [off, off + len) of map. */
struct access {
    unsigned char *map;
    uint64_t off;
    uint64_t len;
    unsigned char *bytes; /* write: the bytes to store; read: the hex line, 2 * len + 1 chars */
    uint64_t seed;
    void (*fn)(struct access *);
};

static void do_write(struct access *a) {
    memcpy(a->map + a->off, a->bytes, a->len);
}

static void do_pattern(struct access *a) {
    for (uint64_t k = 0; k < a->len; k++) {
        a->map[a->off + k] = (unsigned char) (a->seed + 31 * k);
    }
}

static void do_read(struct access *a) {
    static const char digits[] = "0123456789abcdef";
    for (uint64_t k = 0; k < a->len; k++) {
        unsigned char v = a->map[a->off + k];
        a->bytes[2 * k] = (unsigned char) digits[v >> 4];
        a->bytes[2 * k + 1] = (unsigned char) digits[v & 15];
    }
    a->bytes[2 * a->len] = '\0';
}

/* Runs a->fn; returns -1 if it met SIGBUS (the file shrank under the mapping), else 0. */
static int guarded(struct access *a) {
    if (sigsetjmp(fault_jump, 1) != 0) {
        in_access = 0;
        return -1;
    }
    in_access = 1;
    a->fn(a);
    in_access = 0;
    return 0;
}

/* Parses an even number of hex digits into a new buffer of *len bytes. */
static int parse_hex(const char *hex, unsigned char **out, uint64_t *len) {
    size_t n = strlen(hex);
    if (n % 2 != 0) {
        return -1;
    }
    unsigned char *bytes = malloc(n / 2 + 1);
    if (bytes == NULL) {
        return -1;
    }
    for (size_t k = 0; k < n / 2; k++) {
        int hi = hex_digit(hex[2 * k]), lo = hex_digit(hex[2 * k + 1]);
        if (hi < 0 || lo < 0) {
            free(bytes);
            return -1;
        }
        bytes[k] = (unsigned char) (hi << 4 | lo);
    }
    *out = bytes;
    *len = n / 2;
    return 0;
}

/* --memfd SIZE [sealed]: see the comment at the top. */
static int serve_memfd(int argc, char **argv) {
    uint64_t size;
    int sealed = argc == 4 && strcmp(argv[3], "sealed") == 0;
    if (argc < 3 || argc > 4 || (argc == 4 && !sealed) || parse_u64(argv[2], &size) != 0) {
        return usage();
    }
    int fd = memfd_create("guestmem-peer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        fprintf(stderr, "guestmem-peer: memfd_create failed: %s\n", errno_name(errno));
        return 2;
    }
    if (ftruncate(fd, (off_t) size) != 0) {
        fprintf(stderr, "guestmem-peer: ftruncate(memfd, %llu) failed: %s\n", (unsigned long long) size,
                errno_name(errno));
        return 2;
    }
    if (sealed && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
        fprintf(stderr, "guestmem-peer: fcntl(F_ADD_SEALS) failed: %s\n", errno_name(errno));
        return 2;
    }
    printf("/proc/%ld/fd/%d\n", (long) getpid(), fd);
    fflush(stdout);
    char buf[256];
    while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "--memfd") == 0) {
        return serve_memfd(argc, argv);
    }
    if (argc < 3) {
        return usage();
    }
    const char *path = argv[1];
    int writable = 1;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS)) {
        writable = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        fprintf(stderr, "guestmem-peer: open(%s) failed: %s\n", path, errno_name(errno));
        return 2;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fprintf(stderr, "guestmem-peer: fstat(%s) failed: %s\n", path, errno_name(errno));
        return 2;
    }
    uint64_t map_len = (uint64_t) st.st_size;
    unsigned char *map = NULL;
    if (map_len > 0) {
        void *p = mmap(NULL, map_len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            fprintf(stderr, "guestmem-peer: mmap(%s, length=%llu) failed: %s\n", path,
                    (unsigned long long) map_len, errno_name(errno));
            return 2;
        }
        map = p;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);

    int failed = 0;
    for (int i = 2; i < argc;) {
        const char *op = argv[i];
        struct access acc = {map, 0, 0, NULL, 0, NULL};
        uint64_t length;
        if (strcmp(op, "truncate") == 0 && i + 1 < argc && parse_u64(argv[i + 1], &length) == 0) {
            i += 2;
            if (ftruncate(fd, (off_t) length) != 0) {
                printf("error truncate %s\n", errno_name(errno));
                failed = 1;
            } else {
                printf("ok truncate\n");
            }
            fflush(stdout);
            continue;
        }
        if (strcmp(op, "write") == 0 && i + 2 < argc && parse_u64(argv[i + 1], &acc.off) == 0
            && parse_hex(argv[i + 2], &acc.bytes, &acc.len) == 0) {
            i += 3;
            acc.fn = do_write;
        } else if (strcmp(op, "pattern") == 0 && i + 3 < argc && parse_u64(argv[i + 1], &acc.off) == 0
                   && parse_u64(argv[i + 2], &acc.len) == 0 && parse_u64(argv[i + 3], &acc.seed) == 0) {
            i += 4;
            acc.fn = do_pattern;
        } else if (strcmp(op, "read") == 0 && i + 2 < argc && parse_u64(argv[i + 1], &acc.off) == 0
                   && parse_u64(argv[i + 2], &acc.len) == 0) {
            i += 3;
            acc.fn = do_read;
        } else {
            return usage();
        }
        const char *error = NULL;
        if (acc.fn != do_read && !writable) {
            error = "EACCES";
        } else if (!in_map(acc.off, acc.len, map_len)) {
            error = "ERANGE";
        } else if (acc.fn == do_read && (acc.bytes = malloc(2 * acc.len + 1)) == NULL) {
            error = "ENOMEM";
        } else if (guarded(&acc) != 0) {
            error = "SIGBUS";
        }
        if (error != NULL) {
            printf("error %s %s\n", op, error);
            failed = 1;
        } else if (acc.fn == do_read) {
            printf("ok read %s\n", (char *) acc.bytes);
        } else {
            printf("ok %s\n", op);
        }
        free(acc.bytes);
        fflush(stdout);
    }
    return failed;
}
