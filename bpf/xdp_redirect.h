/* Shared between the XDP program and Rust (src/io/xdp/prog.rs mirrors it). */
#ifndef XDPTCP_XDP_REDIRECT_H
#define XDPTCP_XDP_REDIRECT_H

/* Most AF_XDP sockets (queues) per interface. */
#define XDPTCP_MAX_QUEUES 64
/* Most IPv4 addresses the stack owns on one interface. */
#define XDPTCP_MAX_ADDRS 64

/* Indexes into the per-CPU `counters` array. */
enum xdptcp_counter {
	/* Ours and handed to XSKMAP[rx_queue_index]. */
	XDPTCP_CNT_REDIRECTED = 0,
	/* Not ours: left to the kernel. */
	XDPTCP_CNT_PASSED = 1,
	/* Truncated or invalid headers: left to the kernel (which drops them). */
	XDPTCP_CNT_MALFORMED = 2,
	/* Ours, but no socket in XSKMAP for this queue: fell back to XDP_PASS. */
	XDPTCP_CNT_NO_SOCKET = 3,
	XDPTCP_CNT_MAX = 4,
};

#endif
