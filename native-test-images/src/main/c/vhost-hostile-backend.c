/*
 * A vhost-user backend that misbehaves on demand, for guestmem's front-end tests.
 *
 * Usage: vhost-hostile-backend SOCKET MODE
 * Listens on the Unix socket SOCKET (created mode 0600), accepts one front-end and answers its first request
 * (GET_FEATURES) according to MODE:
 *   wrong-size     a GET_FEATURES reply whose payload is 4 bytes instead of 8
 *   wrong-type     a SET_FEATURES reply instead of a GET_FEATURES one
 *   extra-fds      a right reply that carries two descriptors
 *   many-fds       a right reply that carries twelve descriptors, more than any vhost-user message may (8)
 *   late-fds       a right reply whose header is sent alone and whose payload carries a descriptor
 *   truncated      half a header, then the connection closes
 *   flood          unsolicited messages, as many as the socket takes, until the front-end goes
 *   silent         no reply at all; waits until the front-end goes
 *   die            half a header, then the process kills itself (SIGKILL), mid-message
 *   shrink         a correct backend until SET_MEM_TABLE; then tries to ftruncate every memory fd it got to 0,
 *                  prints "ftruncate=OK" or "ftruncate=ERRNONAME" per fd on stdout, and exits
 * Every mode prints "ready" on stdout once the socket listens.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define HDR 12
#define MAX_FDS 8
#define SEND_MAX_FDS 16

struct msg {
    uint32_t request, flags, size;
    uint8_t payload[4096];
    int fds[MAX_FDS];
    int nfds;
};

static void die(const char *what)
{
    fprintf(stderr, "vhost-hostile-backend: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int read_msg(int fd, struct msg *m)
{
    char control[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct iovec iov = { .iov_base = m, .iov_len = HDR };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof(control) };
    ssize_t n = recvmsg(fd, &mh, MSG_WAITALL);
    if (n != HDR) {
        return -1;
    }
    m->nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (int) ((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(m->fds + m->nfds, CMSG_DATA(c), sizeof(int) * (size_t) k);
            m->nfds += k;
        }
    }
    if (m->size > sizeof(m->payload) || (m->size && recv(fd, m->payload, m->size, MSG_WAITALL) != (ssize_t) m->size)) {
        return -1;
    }
    return 0;
}

static void send_raw(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
    char control[CMSG_SPACE(sizeof(int) * SEND_MAX_FDS)];
    struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        memset(control, 0, sizeof(control));
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t) nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t) nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t) nfds);
    }
    if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t) len) {
        die("sendmsg");
    }
}

static void reply_u64(int fd, uint32_t request, uint32_t size, uint64_t value, const int *fds, int nfds)
{
    uint8_t buf[HDR + 8];
    uint32_t hdr[3] = { request, 0x5, size };
    memcpy(buf, hdr, HDR);
    memcpy(buf + HDR, &value, 8);
    send_raw(fd, buf, HDR + (size < 8 ? size : 8), fds, nfds);
}

static void wait_for_close(int fd)
{
    char b;
    while (recv(fd, &b, 1, 0) > 0) {
    }
}

static int shrink(int fd)
{
    struct msg m;
    const uint64_t features = (1ULL << 32) | (1ULL << 30);
    while (read_msg(fd, &m) == 0) {
        switch (m.request) {
        case 1: /* GET_FEATURES */
            reply_u64(fd, 1, 8, features, NULL, 0);
            break;
        case 15: /* GET_PROTOCOL_FEATURES: none, so no REPLY_ACK */
            reply_u64(fd, 15, 8, 0, NULL, 0);
            break;
        case 5: /* SET_MEM_TABLE */
            for (int i = 0; i < m.nfds; i++) {
                if (ftruncate(m.fds[i], 0) == 0) {
                    printf("ftruncate=OK\n");
                } else {
                    printf("ftruncate=%s\n", errno == EPERM ? "EPERM" : strerror(errno));
                }
                close(m.fds[i]);
            }
            fflush(stdout);
            return 0;
        default:
            for (int i = 0; i < m.nfds; i++) {
                close(m.fds[i]);
            }
            break;
        }
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: vhost-hostile-backend SOCKET MODE\n");
        return 2;
    }
    const char *mode = argv[2];
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (l < 0 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
        die("socket");
    }
    strcpy(sa.sun_path, argv[1]);
    mode_t old = umask(0077);
    if (bind(l, (struct sockaddr *) &sa, sizeof(sa)) != 0 || listen(l, 1) != 0) {
        die("bind");
    }
    umask(old);
    printf("ready\n");
    fflush(stdout);
    int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        die("accept");
    }
    if (strcmp(mode, "shrink") == 0) {
        return shrink(fd);
    }
    struct msg m;
    if (read_msg(fd, &m) != 0) {
        die("read request");
    }
    uint32_t half[2] = { m.request, 0x5 };
    if (strcmp(mode, "wrong-size") == 0) {
        reply_u64(fd, m.request, 4, 0, NULL, 0);
    } else if (strcmp(mode, "wrong-type") == 0) {
        reply_u64(fd, 2, 8, 0, NULL, 0);
    } else if (strcmp(mode, "extra-fds") == 0) {
        int fds[2] = { open("/dev/null", O_RDONLY), open("/dev/null", O_RDONLY) };
        reply_u64(fd, m.request, 8, 0, fds, 2);
    } else if (strcmp(mode, "many-fds") == 0) {
        int fds[12];
        for (int i = 0; i < 12; i++) {
            fds[i] = open("/dev/null", O_RDONLY);
        }
        reply_u64(fd, m.request, 8, 0, fds, 12);
    } else if (strcmp(mode, "late-fds") == 0) {
        uint32_t hdr[3] = { m.request, 0x5, 8 };
        uint64_t features = 1ULL << 32;
        int devnull = open("/dev/null", O_RDONLY);
        send_raw(fd, hdr, HDR, NULL, 0);
        send_raw(fd, &features, 8, &devnull, 1);
    } else if (strcmp(mode, "truncated") == 0) {
        send_raw(fd, half, 6, NULL, 0);
        close(fd);
        return 0;
    } else if (strcmp(mode, "flood") == 0) {
        uint8_t junk[HDR + 8] = { 0 };
        uint32_t hdr[3] = { 99, 0x5, 8 };
        memcpy(junk, hdr, HDR);
        while (send(fd, junk, sizeof(junk), MSG_NOSIGNAL) > 0) {
        }
        return 0;
    } else if (strcmp(mode, "silent") == 0) {
        /* nothing */
    } else if (strcmp(mode, "die") == 0) {
        send_raw(fd, half, 8, NULL, 0);
        kill(getpid(), SIGKILL);
    } else {
        fprintf(stderr, "vhost-hostile-backend: unknown mode %s\n", mode);
        return 2;
    }
    wait_for_close(fd);
    return 0;
}
