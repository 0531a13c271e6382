// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * xdptcp's XDP program: steer exactly the stack's own packets into the
 * AF_XDP socket of the receive queue, and leave everything else (other
 * addresses, IPv6, the kernel's own traffic) to the kernel.
 *
 * Ours:
 *  - IPv4 packets whose destination is one of the addresses in `local_addrs`
 *    (filled by user space);
 *  - ARP requests and replies whose target protocol address is ours
 *    (RFC 826: the target IP of a request we must answer, or of a reply to
 *    a request we sent).
 * Every access is bounds-checked against data_end (the verifier insists).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xdp_redirect.h"

/* RFC 826 ARP packet for Ethernet/IPv4 (the UAPI header stops at the
 * fixed part). */
struct arp_eth_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[6];
	__be32 spa;
	__u8 tha[6];
	__be32 tpa;
} __attribute__((packed));

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XDPTCP_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

/* IPv4 addresses owned by the stack, network byte order -> 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPTCP_MAX_ADDRS);
	__type(key, __u32);
	__type(value, __u8);
} local_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPTCP_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

static __always_inline int is_local(__be32 addr)
{
	__u32 key = addr;
	return bpf_map_lookup_elem(&local_addrs, &key) != NULL;
}

static __always_inline int pass(void)
{
	count(XDPTCP_CNT_PASSED);
	return XDP_PASS;
}

static __always_inline int malformed(void)
{
	count(XDPTCP_CNT_MALFORMED);
	return XDP_PASS;
}

static __always_inline int to_stack(struct xdp_md *ctx)
{
	/* The low bits of flags are the action when XSKMAP has no socket for
	 * this queue: the packet then goes to the kernel, which drops it as
	 * not addressed to it. */
	int act = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
	count(act == XDP_REDIRECT ? XDPTCP_CNT_REDIRECTED : XDPTCP_CNT_NO_SOCKET);
	return act;
}

/* RFC 791 §3.1: checked IHL and total length, then the L4 header must fit
 * for TCP (RFC 9293 §3.1: data offset >= 5) and UDP (RFC 768). */
static __always_inline int handle_ipv4(struct xdp_md *ctx, void *l3, void *data_end)
{
	struct iphdr *ip = l3;
	if ((void *)(ip + 1) > data_end)
		return malformed();
	if (ip->version != 4 || ip->ihl < 5)
		return malformed();
	__u32 ihl = ip->ihl * 4;
	if (l3 + ihl > data_end)
		return malformed();
	if (bpf_ntohs(ip->tot_len) < ihl)
		return malformed();
	if (!is_local(ip->daddr))
		return pass();
	/* Fragments (MF set or an offset) go to the stack whole: a non-first
	 * fragment carries no L4 header, and a first one may carry only part
	 * of it (RFC 791 allows 8 bytes); the stack reassembles, then checks. */
	if (ip->frag_off & bpf_htons(0x3fff))
		return to_stack(ctx);
	void *l4 = l3 + ihl;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > data_end)
			return malformed();
		if (tcp->doff < 5)
			return malformed();
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > data_end)
			return malformed();
	}
	return to_stack(ctx);
}

static __always_inline int handle_arp(struct xdp_md *ctx, void *l3, void *data_end)
{
	struct arp_eth_ipv4 *arp = l3;
	if ((void *)(arp + 1) > data_end)
		return malformed();
	if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != 6 || arp->plen != 4)
		return pass();
	if (arp->oper != bpf_htons(1) && arp->oper != bpf_htons(2))
		return pass();
	if (!is_local(arp->tpa))
		return pass();
	return to_stack(ctx);
}

SEC("xdp")
int xdptcp_redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return malformed();
	void *l3 = (void *)(eth + 1);
	switch (eth->h_proto) {
	case bpf_htons(ETH_P_IP):
		return handle_ipv4(ctx, l3, data_end);
	case bpf_htons(ETH_P_ARP):
		return handle_arp(ctx, l3, data_end);
	default:
		return pass();
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
