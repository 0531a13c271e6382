/* A single-threaded, non-blocking epoll TCP echo server: the efficient
 * Linux baseline of bench/echo_vs_linux.sh (pinned like the xdptcp worker).
 *
 *   epoll_echo ADDR PORT SECONDS
 *
 * Level-triggered; each connection echoes what it reads, keeping what the
 * socket would not take in a per-connection buffer (reading stops while
 * it is non-empty, so memory per connection is bounded). Stops after
 * SECONDS or at SIGINT/SIGTERM. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (64 * 1024)

struct conn {
    int fd;
    size_t off, len; /* pending bytes buf[off..len] */
    char buf[BUF];
};

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void drop_conn(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: epoll_echo ADDR PORT SECONDS\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    signal(SIGPIPE, SIG_IGN);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1 || bind(l, (void *)&a, sizeof a) ||
        listen(l, 4096)) {
        perror("epoll_echo: listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    double end = now() + atof(argv[3]);
    struct epoll_event evs[256];
    unsigned long accepted = 0;
    while (!stop && now() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0)
                        break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = malloc(sizeof *nc);
                    nc->fd = fd;
                    nc->off = nc->len = 0;
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                    accepted++;
                }
                continue;
            }
            if (c->len > c->off) { /* flush what is pending first */
                ssize_t w = write(c->fd, c->buf + c->off, c->len - c->off);
                if (w < 0 && errno != EAGAIN) {
                    drop_conn(ep, c);
                    continue;
                }
                if (w > 0)
                    c->off += w;
                if (c->off < c->len)
                    continue;
                c->off = c->len = 0;
                struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
                continue;
            }
            ssize_t r = read(c->fd, c->buf, BUF);
            if (r == 0 || (r < 0 && errno != EAGAIN)) {
                drop_conn(ep, c);
                continue;
            }
            if (r < 0)
                continue;
            ssize_t w = write(c->fd, c->buf, r);
            if (w < 0 && errno != EAGAIN) {
                drop_conn(ep, c);
                continue;
            }
            if (w < 0)
                w = 0;
            if (w < r) { /* wait until writable, then flush */
                c->off = w;
                c->len = r;
                struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
            }
        }
    }
    fprintf(stderr, "epoll_echo: accepted %lu\n", accepted);
    return 0;
}
