/* An efficient single-threaded epoll TCP client for bench/echo_vs_linux.sh
 * (the same client for xdptcp and for Linux).
 *
 *   epoll_client MODE ADDR PORT CONNS SECONDS [SIZE]
 *
 * rr     CONNS connections each send SIZE bytes (default 64), wait for them
 *        to come back, repeat: prints "rps P50_US P99_US ERRORS".
 * bulk   CONNS connections each write SIZE-byte chunks (default 64 KiB)
 *        and read the echo, as fast as it comes: prints "MBIT_S ERRORS".
 * burst  CONNS connections opened at once, 4 bytes echoed on each, then
 *        closed: prints "SERVED FAILED SECONDS" (SECONDS bounds the run).
 * short  CONNS slots, each in a loop: connect, 64 bytes each way, close:
 *        prints "CONNS_PER_S ERRORS".
 *
 * Every run stops by itself after SECONDS. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_US 1000000

struct conn {
    int fd;
    int state; /* 0 connecting, 1 waiting for the echo */
    size_t sent, got, size;
    double t0;
};

static struct sockaddr_in target;
static unsigned *hist;
static unsigned long samples;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int open_conn(int ep, struct conn *c, uint32_t events) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (void *)&target, sizeof target) && errno != EINPROGRESS) {
        close(c->fd);
        return -1;
    }
    c->state = 0;
    c->sent = c->got = 0;
    struct epoll_event e = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
    return 0;
}

static void close_conn(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

static unsigned long pct(double p) {
    unsigned long want = (unsigned long)(samples * p), seen = 0;
    for (unsigned long i = 0; i < HIST_US; i++) {
        seen += hist[i];
        if (seen > want)
            return i;
    }
    return HIST_US;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: epoll_client rr|bulk|burst|short ADDR PORT CONNS SECONDS [SIZE]\n");
        return 2;
    }
    const char *mode = argv[1];
    int conns = atoi(argv[4]);
    double secs = atof(argv[5]);
    int bulk = !strcmp(mode, "bulk");
    size_t size = argc > 6 ? (size_t)atol(argv[6]) : bulk ? 65536 : 64;
    if (conns < 1 || secs <= 0 || size < 1 || size > (1 << 20)) {
        fprintf(stderr, "epoll_client: bad CONNS, SECONDS or SIZE\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    target.sin_family = AF_INET;
    target.sin_port = htons(atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) {
        fprintf(stderr, "epoll_client: bad address\n");
        return 2;
    }
    hist = calloc(HIST_US + 1, sizeof *hist);
    char *buf = malloc(size), *rbuf = malloc(1 << 20);
    memset(buf, 'x', size);
    int ep = epoll_create1(0);
    struct conn *cs = calloc(conns, sizeof *cs);
    int burst = !strcmp(mode, "burst"), shortm = !strcmp(mode, "short");
    size_t one_size = burst ? 4 : shortm ? 64 : size;
    unsigned long done = 0, failed = 0;
    double start = now(), end = start + secs;
    for (int i = 0; i < conns; i++) {
        cs[i].size = one_size;
        if (open_conn(ep, &cs[i], EPOLLOUT))
            failed++, cs[i].fd = -1;
    }
    int open_n = conns - failed;
    unsigned long long bytes = 0;
    struct epoll_event evs[512];
    while (now() < end && (!burst || open_n > 0)) {
        int n = epoll_wait(ep, evs, 512, 50);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            int bad = 0;
            if (c->state == 0) {
                int err = 0;
                socklen_t l = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err || (evs[i].events & (EPOLLERR | EPOLLHUP))) {
                    bad = 1;
                } else {
                    c->state = 1;
                    c->t0 = now();
                    struct epoll_event e = {.events = bulk ? EPOLLIN | EPOLLOUT : EPOLLIN,
                                            .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
                    if (!bulk && write(c->fd, buf, c->size) != (ssize_t)c->size)
                        bad = 1;
                }
            } else if (bulk) {
                if (evs[i].events & EPOLLOUT) {
                    ssize_t w = write(c->fd, buf, size);
                    if (w < 0 && errno != EAGAIN)
                        bad = 1;
                }
                if (evs[i].events & EPOLLIN) {
                    ssize_t r = read(c->fd, rbuf, 1 << 20);
                    if (r > 0)
                        bytes += r;
                    else if (r == 0 || errno != EAGAIN)
                        bad = 1;
                }
            } else {
                ssize_t r = read(c->fd, rbuf, 1 << 20);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    bad = 1;
                } else if (r > 0) {
                    c->got += r;
                    if (c->got >= c->size) {
                        double t = now();
                        unsigned long us = (unsigned long)((t - c->t0) * 1e6);
                        hist[us < HIST_US ? us : HIST_US]++;
                        samples++;
                        done++;
                        if (burst) {
                            close_conn(ep, c);
                            open_n--;
                        } else if (shortm) {
                            close_conn(ep, c);
                            if (open_conn(ep, c, EPOLLOUT))
                                failed++, c->fd = -1;
                        } else {
                            c->got = 0;
                            c->t0 = t;
                            if (write(c->fd, buf, c->size) != (ssize_t)c->size)
                                bad = 1;
                        }
                    }
                }
            }
            if (bad) {
                failed++;
                close_conn(ep, c);
                if (burst)
                    open_n--;
                else if (open_conn(ep, c, EPOLLOUT))
                    c->fd = -1;
            }
        }
    }
    double el = now() - start;
    if (burst)
        printf("%lu %lu %.2f\n", done, failed + open_n, el);
    else if (bulk)
        printf("%.1f %lu\n", bytes * 8 / el / 1e6, failed);
    else if (shortm)
        printf("%.0f %lu\n", done / el, failed);
    else
        printf("%.0f %lu %lu %lu\n", done / el, pct(0.5), pct(0.99), failed);
    return 0;
}
