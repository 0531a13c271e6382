/* A UDP packet-rate client for bench/echo_vs_linux.sh: drives the raw
 * AF_XDP reflector (bench/xdp_reflect.rs), the data path's ceiling.
 *
 *   udp_flood ADDR PORT WINDOW SECONDS SIZE
 *
 * Keeps WINDOW datagrams of SIZE payload bytes in flight to ADDR:PORT (one
 * connected socket, sendmmsg/recvmmsg in batches), sends one more for each
 * that comes back, and tops the window up after 20 ms without progress
 * (counted as lost). UDP checksums are off (SO_NO_CHECK): on veth the
 * kernel leaves them to an offload that a reflector sending the packet
 * back as it came never completes. Prints "PACKETS_PER_S LOST" (packets
 * that came back per second). Stops by itself after SECONDS. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_NO_CHECK
#define SO_NO_CHECK 11
#endif
#define BATCH 32

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: udp_flood ADDR PORT WINDOW SECONDS SIZE\n");
        return 2;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    int window = atoi(argv[3]);
    double secs = atof(argv[4]);
    int size = atoi(argv[5]);
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 || window < 1 || window > 100000 ||
        secs <= 0 || secs > 3600 || size < 1 || size > 1472) {
        fprintf(stderr, "udp_flood: bad ADDR, WINDOW (1..100000), SECONDS or SIZE (1..1472)\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int one = 1, big = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (connect(fd, (struct sockaddr *)&to, sizeof to)) {
        perror("udp_flood: connect");
        return 1;
    }
    static char sbuf[1472], rbufs[BATCH][2048];
    memset(sbuf, 'x', sizeof sbuf);
    struct iovec siov = {sbuf, (size_t)size}, riov[BATCH];
    struct mmsghdr smsg[BATCH], rmsg[BATCH];
    memset(smsg, 0, sizeof smsg);
    memset(rmsg, 0, sizeof rmsg);
    for (int i = 0; i < BATCH; i++) {
        smsg[i].msg_hdr.msg_iov = &siov;
        smsg[i].msg_hdr.msg_iovlen = 1;
        riov[i].iov_base = rbufs[i];
        riov[i].iov_len = sizeof rbufs[i];
        rmsg[i].msg_hdr.msg_iov = &riov[i];
        rmsg[i].msg_hdr.msg_iovlen = 1;
    }
    long inflight = 0, owed = window, back = 0, lost = 0;
    double start = now(), end = start + secs, progress = start;
    struct pollfd p = {fd, POLLIN, 0};
    while (1) {
        double t = now();
        if (t >= end)
            break;
        while (owed > 0) {
            int k = owed < BATCH ? (int)owed : BATCH;
            int s = sendmmsg(fd, smsg, k, 0);
            if (s <= 0)
                break;
            owed -= s;
            inflight += s;
        }
        int r = recvmmsg(fd, rmsg, BATCH, MSG_DONTWAIT, NULL);
        if (r > 0) {
            back += r;
            inflight -= r;
            owed += r;
            progress = t;
            continue;
        }
        if (t - progress > 0.02) {
            /* Nothing for 20 ms: what is in flight is lost. */
            lost += inflight;
            owed += inflight;
            inflight = 0;
            progress = t;
        }
        poll(&p, 1, 5);
    }
    printf("%.0f %ld\n", back / (now() - start), lost);
    return 0;
}
