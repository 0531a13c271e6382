//! Stack counters: every packet received or sent is counted, every drop by
//! reason (design.md: "every resource has a counter").

use crate::wire::WireError;

/// Counters of one stack, every drop by reason.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StackCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets the device refused (ring full) or that could not be built.
    pub tx_dropped: u64,
    /// Transmissions deferred because the device had no free frame.
    pub tx_no_frame: u64,
    /// Segments held back because their send frame's previous
    /// transmission was still on the device (AF_XDP: not yet completed):
    /// sent from the same frame on a later poll, never copied.
    pub tx_rewrite_waits: u64,
    /// Application `send`s cut short (possibly to 0) because free TX frames
    /// reached the reserve kept for control traffic.
    pub tx_pool_short_writes: u64,
    /// `Writable` events queued for connections that waited for TX frames.
    pub tx_pool_wakeups: u64,
    /// Out-of-order queues pruned because free RX frames fell below the
    /// reserve.
    pub rx_ooo_pruned: u64,
    /// Pruning every out-of-order queue left the RX pool below its reserve
    /// (frames held by in-order data the applications have not read).
    pub rx_pool_starved: u64,
    /// TCP/UDP segments accepted with only the pseudo-header sum in their
    /// checksum field (a veth peer's transmit checksum offload; see
    /// `StackConfig::accept_partial_checksum`).
    pub rx_csum_partial_accepted: u64,
    // Drops by reason.
    pub drop_truncated: u64,
    pub drop_bad_length: u64,
    pub drop_bad_checksum: u64,
    pub drop_bad_version: u64,
    pub drop_fragment: u64,
    pub drop_unsupported: u64,
    pub drop_not_for_us: u64,
    /// RFC 1122 §3.2.1.3: source address that cannot be a host (broadcast,
    /// multicast, loopback, unspecified, one of ours).
    pub drop_bad_source: u64,
    /// TCP or UDP port 0.
    pub drop_bad_port: u64,
    pub drop_no_listener: u64,
    /// Segments to a listener that are neither SYN nor ACK (RST, bare
    /// FIN...), or a SYN with FIN (an illegal combination Linux drops).
    pub drop_tcp_invalid: u64,
    /// SYNs dropped because the listener's accept backlog is full.
    pub drop_syn_backlog: u64,
    pub drop_conn_limit: u64,
    pub drop_arp_queue: u64,
    /// Packets dropped because ARP resolution of their next hop failed.
    pub drop_arp_failed: u64,
    /// Outgoing packets with no route (not on link and no gateway).
    pub drop_no_route: u64,
    pub drop_udp_no_socket: u64,
    pub drop_udp_queue: u64,
    pub syn_cookies_sent: u64,
    pub syn_cookies_ok: u64,
    pub syn_cookies_bad: u64,
    /// Duplicates of a completed cookie handshake's ACK, dropped.
    pub syn_cookies_replayed: u64,
    pub rst_sent: u64,
    /// RSTs for segments to no connection not sent: over the rate limit.
    pub rst_rate_limited: u64,
    /// ACKs answering invalid segments (RFC 5961 challenge ACKs, PAWS,
    /// out of window) suppressed by the stack-wide limit (RFC 5961 §7).
    pub ack_rate_limited: u64,
    /// Echo requests not answered: over the rate limit.
    pub icmp_echo_rate_limited: u64,
    pub arp_requests_sent: u64,
    pub arp_replies_sent: u64,
    /// ARP packets learned from (RFC 826 merge or add).
    pub arp_learned: u64,
    /// Next hops given up after the last ARP retry.
    pub arp_failed: u64,
    /// Unicast requests probing a cached neighbour (RFC 4861 §7.3.3 PROBE).
    pub arp_probes_sent: u64,
    /// Cached neighbours that stopped answering probes (entry dropped).
    pub arp_unreachable: u64,
    /// ARP packets ignored (not for us, bogus sender).
    pub arp_ignored: u64,
    /// ARP packets from another MAC claiming one of our addresses (RFC
    /// 5227 §2.4 conflict): never learned from, counted.
    pub arp_conflicts: u64,
    pub icmp_echo_replies: u64,
    /// Port unreachables sent for UDP to unbound ports (RFC 1122 §4.1.3.1).
    pub icmp_unreachables_sent: u64,
    /// ICMP errors not sent because of the rate limit.
    pub icmp_rate_limited: u64,
    /// ICMP messages other than echo requests and errors (counted only).
    pub icmp_other: u64,
    /// ICMP errors received (destination unreachable, time exceeded,
    /// parameter problem) with a well-formed quote.
    pub icmp_errors_rx: u64,
    /// Of those, "fragmentation needed" (RFC 1191).
    pub icmp_frag_needed_rx: u64,
    /// ICMP errors passed to a TCP connection (which validates them).
    pub icmp_errors_tcp: u64,
    /// ICMP errors queued for a UDP socket.
    pub icmp_errors_udp: u64,
    /// ICMP errors quoting no datagram of a live connection or socket.
    pub drop_icmp_unmatched: u64,
    /// IPv4 fragments received (RFC 791 §3.2), sent, and datagrams
    /// reassembled from them.
    pub frag_rx: u64,
    pub frag_tx: u64,
    pub frag_reassembled: u64,
    /// Fragments with a bad length (not a multiple of 8 before the last,
    /// past 65,535 or past the announced end): the datagram is dropped.
    pub drop_frag_bad: u64,
    /// Exact duplicates of a fragment already held (dropped alone).
    pub drop_frag_dup: u64,
    /// Fragments overlapping another: the whole datagram is dropped (RFC
    /// 5722's rule, as Linux applies it to IPv4).
    pub drop_frag_overlap: u64,
    /// Datagrams in more than `frag::MAX_PARTS` fragments.
    pub drop_frag_too_many: u64,
    /// Incomplete datagrams dropped to keep reassembly within its frames.
    pub drop_frag_evicted: u64,
    /// Incomplete datagrams dropped when their reassembly timer ran out.
    pub drop_frag_timeout: u64,
    /// Reassembled TCP/ICMP datagrams too large for one frame (or with no
    /// frame free to collapse them into).
    pub drop_frag_too_big: u64,
    /// Reassembled TCP datagrams of flows this stack did not hold, handed
    /// to the runtime for their owner worker (see `Stack::take_strays`).
    pub frag_strays: u64,
    /// ICMP time exceeded (fragment reassembly) sent (RFC 1122 §3.3.2).
    pub frag_time_exceeded_sent: u64,
    pub udp_rx: u64,
    pub udp_tx: u64,
    pub conns_opened: u64,
    pub conns_closed: u64,
    /// Connections closed on entering TIME-WAIT: `max_time_wait` reached.
    pub time_wait_overflow: u64,
    // Sums of per-connection counters (closed and live).
    pub retransmits: u64,
    pub rto_timeouts: u64,
    pub fast_recoveries: u64,
    /// ACKs of data never sent (zero between honest stacks).
    pub acks_of_unsent: u64,
    /// Segments sent past SND.NXT other than new data (always zero).
    pub tx_beyond_snd_nxt: u64,
    /// MPTCP (RFC 8684): connections established with MPTCP in use.
    pub mptcp_established: u64,
    /// MPTCP offered or asked for, then plain TCP (RFC 8684 §3.7).
    pub mptcp_fallbacks: u64,
    /// MPTCP options that did not parse or made no sense (ignored).
    pub mptcp_bad_options: u64,
    /// DSS checksum failures (the connection was reset).
    pub mptcp_checksum_failures: u64,
    /// DSS checksums of received mappings verified.
    pub mptcp_checksums_verified: u64,
    /// Mappings accepted without their checksum verified (multi-segment).
    pub mptcp_checksums_unverified: u64,
    /// Invalid mappings (RFC 8684 §3.3.1; the subflow was reset).
    pub mptcp_mapping_mismatches: u64,
    /// MP_FASTCLOSE received (RFC 8684 §3.5; the connection was reset).
    pub mptcp_fastcloses: u64,
    /// Segments with data the data level already had (trimmed).
    pub mptcp_data_dups: u64,
    /// Segments ahead of the data level's in-order point (reassembled).
    pub mptcp_data_ooo: u64,
    /// Frames the data level dropped for memory after their subflow
    /// acknowledged them (the peer's data-level timeout brings them back).
    pub mptcp_data_mem_drops: u64,
    /// MP_PRIO options received (RFC 8684 §3.3.8): the subflow's backup
    /// flag set as the peer asked.
    pub mptcp_prio_received: u64,
    /// Our data bytes handed to the first subflow / to joined subflows by
    /// the scheduler (reinjections and redundant copies included).
    pub mptcp_bytes_first: u64,
    pub mptcp_bytes_joined: u64,
    /// Ranges of our data sent again on another subflow because the one
    /// that had them stalled or went (RFC 8684 §3.3.6).
    pub mptcp_reinjections: u64,
    /// Data-level retransmission timeouts (RFC 8684 §3.3.6): the DATA_ACK
    /// stood still with data out, and its oldest range went again.
    pub mptcp_data_rtos: u64,
    /// Bytes the redundant scheduler sent more than once.
    pub mptcp_redundant_bytes: u64,
    /// Chunks the `minrtt` scheduler sent again on a faster subflow while
    /// a slower one held up the connection-level window.
    pub mptcp_opportunistic_retransmits: u64,
    /// Slower subflows' windows halved for holding up the window.
    pub mptcp_penalisations: u64,
    /// Bytes copied from the connection's queue into subflows' frames.
    pub mptcp_tx_copied_bytes: u64,
    /// Bytes whose frame was lent to a subflow instead of copied.
    pub mptcp_tx_lent_bytes: u64,
    /// Lent bytes copied back from a subflow for a reinjection.
    pub mptcp_tx_reinject_copied_bytes: u64,
    /// Lent bytes a subflow leaving for another worker could not copy.
    pub mptcp_tx_lent_uncopied_bytes: u64,
    /// In-order data-level bytes that arrived on joined subflows.
    pub mptcp_joined_bytes: u64,
    /// Joined subflows run here whose connection another worker holds
    /// (`mptcp_remote`: processed where their packets arrive).
    pub mptcp_remote_subflows: u64,
    /// Bytes those subflows received, handed to the connection's worker.
    pub mptcp_remote_bytes: u64,
    /// Bytes of those connections' data those subflows took to send
    /// (frames from the connection's worker).
    pub mptcp_remote_tx_bytes: u64,
    /// Penalties (windows halved) the connection's worker sent those
    /// subflows (`minrtt`'s opportunistic retransmission).
    pub mptcp_remote_penalised: u64,
    /// `Back` buffers (frames going home to the connection's worker)
    /// made or grown: they go round (`mptcp_spares`), none in the steady
    /// state.
    pub mptcp_remote_back_bufs: u64,
    /// `Chunks` buffers (our data for those subflows) made or grown.
    pub mptcp_remote_chunk_bufs: u64,
    /// New keys drawn again because their token was already in use.
    pub mptcp_token_collisions: u64,
    /// MP_JOIN subflows accepted: third ACK's HMAC verified (RFC 8684 §3.2).
    pub mptcp_joins_accepted: u64,
    /// MP_JOIN SYNs refused with RST + MP_TCPRST: no connection holds the
    /// token (or it is not established with MPTCP).
    pub mptcp_joins_rejected_token: u64,
    /// ... the connection already has `mptcp_max_subflows` subflows.
    pub mptcp_joins_rejected_limit: u64,
    /// ... to an address of ours withdrawn (RFC 8684 §3.4.2).
    pub mptcp_joins_rejected_withdrawn: u64,
    /// Our subflows reset because the local address they left from was
    /// withdrawn (`Stack::mptcp_withdraw_address`).
    pub mptcp_subflows_withdrawn: u64,
    /// Plain TCP connections that moved to the worker where their packets
    /// arrive (`tcp_migrate`), out of this stack and into it, and those
    /// refused here (their flow here already, or the application could
    /// not take them): given back, they return where they came from.
    pub tcp_conns_migrated_out: u64,
    pub tcp_conns_migrated_in: u64,
    pub tcp_migrations_dropped: u64,
    /// Joined subflows that moved to the worker where their packets
    /// arrive (`mptcp_migrate`), out of this stack and into it, and
    /// those refused here (their flow here already, or no room): given
    /// back, they return where they came from.
    pub mptcp_subflows_migrated_out: u64,
    pub mptcp_subflows_migrated_in: u64,
    pub mptcp_migrations_dropped: u64,
    /// MPTCP connections (their first subflow with the connection level,
    /// its token and the application's state) that moved to the worker
    /// where their packets arrive (`mptcp_conn_migrate`), out of this
    /// stack and into it, and those this stack could not take (their
    /// token held here already: sent back where they came from).
    pub mptcp_conns_migrated_out: u64,
    pub mptcp_conns_migrated_in: u64,
    pub mptcp_conn_migrations_refused: u64,
    /// Of those moving out, connections that had joined subflows
    /// (`mptcp_rehome`): each subflow follows the token to its new
    /// worker. Subflows of this stack's connections made subflows of a
    /// connection in a worker (in place: they run here still), and
    /// messages for a connection that moved on: forwarded to the worker
    /// holding its token, held while it is on its way, and dropped (its
    /// token nowhere after 2 s, or forwarded too often).
    pub mptcp_conns_migrated_with_subflows: u64,
    pub mptcp_subflows_rehomed: u64,
    pub mptcp_msgs_forwarded: u64,
    pub mptcp_msgs_parked: u64,
    pub mptcp_msgs_dropped: u64,
    /// Messages between workers for a connection or subflow gone from
    /// here (nothing to act on; a `Back`'s frames are freed): dropped.
    /// (A subflow's data is answered with a reset, a join with a close,
    /// chunks go back untaken: not counted here.)
    pub mptcp_remote_msgs_gone: u64,
    /// Links to subflows in other workers of connections gone from here
    /// without forgetting them, found by the scheduler and dropped.
    pub mptcp_remote_links_gone: u64,
    /// Scheduler passes that found a connection with a subflow in another
    /// worker holding no token here: nothing taken from it (its data
    /// stays with it), nothing sent.
    pub mptcp_remote_sched_unheld: u64,
    /// Tokens released while their first subflow lingers in TIME-WAIT,
    /// the connection closed (RFC 8684 §3.3.3): free for a new connection
    /// and unknown to joins (`Stack::mptcp_release_closed`).
    pub mptcp_tokens_released_closed: u64,
    /// Subflows run for a connection in a worker made its local subflows
    /// again, the two being in the same worker (`mptcp_localize`).
    pub mptcp_subflows_made_local: u64,
    /// Joined subflows reset: the third ACK's HMAC was wrong or missing.
    pub mptcp_joins_rejected_hmac: u64,
    /// MP_JOIN SYNs we sent (the path manager opening a subflow, RFC 8684
    /// §3.2).
    pub mptcp_join_syns_sent: u64,
    /// Of those, SYNs to an address the peer announced with ADD_ADDR
    /// (RFC 8684 §3.4.1), not its first subflow's; counted by the
    /// connection's stack.
    pub mptcp_joins_to_announced: u64,
    /// Subflows we joined that reached the fourth ACK.
    pub mptcp_subflows_opened: u64,
    /// Subflows we joined that ended before the fourth ACK (refused,
    /// bad HMAC-B, timed out).
    pub mptcp_subflows_failed: u64,
    /// Subflows we joined that closed after being opened.
    pub mptcp_subflows_closed: u64,
    /// ... of the failed: the SYN/ACK's HMAC-B was wrong or missing.
    pub mptcp_join_synack_bad_hmac: u64,
    /// ADD_ADDR received with a valid HMAC and echoed (RFC 8684 §3.4.1).
    pub mptcp_add_addr_received: u64,
    /// ADD_ADDR ignored for a wrong or missing HMAC.
    pub mptcp_add_addr_bad_hmac: u64,
    /// REMOVE_ADDR received (RFC 8684 §3.4.2).
    pub mptcp_remove_addr_received: u64,
    /// Our announcements (ADD_ADDR, RFC 8684 §3.4.1): first transmissions,
    /// retransmissions while no echo came, echoes received.
    pub mptcp_add_addr_sent: u64,
    pub mptcp_add_addr_retransmits: u64,
    pub mptcp_add_addr_echoed: u64,
    /// REMOVE_ADDR sent: one of our addresses withdrawn (§3.4.2).
    pub mptcp_remove_addr_sent: u64,
    /// MP_FAIL sent (§3.7): a DSS checksum failed on a joined subflow,
    /// reset with MP_FAIL and MP_TCPRST "middlebox interference"; or, on
    /// a connection's only subflow, ours or the echo of the peer's, asking
    /// for the infinite mapping.
    pub mptcp_mp_fail_sent: u64,
    /// MP_FAIL received from the peer (§3.7).
    pub mptcp_mp_fail_received: u64,
    /// Infinite mappings sent and received: connections that fell back
    /// to TCP after a checksum failure (§3.7).
    pub mptcp_infinite_maps_sent: u64,
    pub mptcp_infinite_maps_received: u64,
    /// Subflows reset because the peer withdrew their address.
    pub mptcp_subflows_removed: u64,
    /// Subflows whose interface lost its carrier: given no data until it
    /// is back, what they held sent again on the others (RFC 8684 §3.3.6).
    pub mptcp_subflows_link_down: u64,
    /// RSTs sent with MP_FASTCLOSE: the application aborted an MPTCP
    /// connection (RFC 8684 §3.5), one on each of its subflows.
    pub mptcp_fastcloses_sent: u64,
    /// First subflows that died (reset, timed out, or stalled with only
    /// their FIN left) while a joined subflow lived: their connections
    /// went on over the others (RFC 8684 §3.3.6).
    pub mptcp_first_subflow_ended: u64,
    /// Joins opened while a first subflow stalled before full
    /// establishment, refused (the server may not hold the connection:
    /// RFC 8684 §3.2).
    pub mptcp_early_join_refusals: u64,
    /// Client connections ended as unreachable: such a join refused and
    /// the first subflow's neighbour failed (RFC 8684 §3.1: the server
    /// can never get our key).
    pub mptcp_early_unreachable: u64,
    /// Segments that arrived on such a dead first subflow (dropped).
    pub mptcp_dead_subflow_drops: u64,
    /// Segment sizes lowered to a smaller path MTU (RFC 1191).
    pub pmtu_reductions: u64,
    /// Path MTU black holes suspected after repeated RTOs (RFC 4821 §7.7).
    pub black_holes: u64,
    /// Path MTU probes sent (RFC 4821 §7.4), those that raised the segment
    /// size, and those lost.
    pub pmtu_probes: u64,
    pub pmtu_raises: u64,
    pub pmtu_probe_failures: u64,
    /// Out-of-order FINs dropped because data ran past them.
    pub stale_fins: u64,
    /// RFC 5961 challenge ACKs sent (in-window RST or SYN).
    pub challenge_acks: u64,
    /// Segments outside the receive window (RFC 9293 §3.10.7.4 first).
    pub out_of_window: u64,
    /// Segments rejected by PAWS (RFC 7323 §5).
    pub paws_drops: u64,
    /// Segments with an ACK too old to be acceptable (RFC 5961 §5.2).
    pub old_ack_drops: u64,
    /// Segments without ACK to a synchronized connection.
    pub no_ack_drops: u64,
    /// Closed connections given up in FIN-WAIT-2 (tcp_fin_timeout).
    pub fin_wait2_timeouts: u64,
}

impl StackCounters {
    /// Count a packet rejected by a parser.
    pub fn wire_error(&mut self, e: WireError) {
        let c = match e {
            WireError::Truncated => &mut self.drop_truncated,
            WireError::BadLength => &mut self.drop_bad_length,
            WireError::BadChecksum => &mut self.drop_bad_checksum,
            WireError::BadVersion => &mut self.drop_bad_version,
            WireError::Fragment => &mut self.drop_fragment,
            WireError::Unsupported => &mut self.drop_unsupported,
        };
        *c += 1;
    }

    /// Sum of every `drop_*` counter.
    pub fn drops(&self) -> u64 {
        self.drop_truncated
            + self.drop_bad_length
            + self.drop_bad_checksum
            + self.drop_bad_version
            + self.drop_fragment
            + self.drop_unsupported
            + self.drop_not_for_us
            + self.drop_bad_source
            + self.drop_bad_port
            + self.drop_no_listener
            + self.drop_tcp_invalid
            + self.drop_syn_backlog
            + self.drop_conn_limit
            + self.drop_arp_queue
            + self.drop_arp_failed
            + self.drop_no_route
            + self.drop_udp_no_socket
            + self.drop_udp_queue
            + self.drop_icmp_unmatched
            + self.drop_frag_bad
            + self.drop_frag_dup
            + self.drop_frag_overlap
            + self.drop_frag_too_many
            + self.drop_frag_evicted
            + self.drop_frag_timeout
            + self.drop_frag_too_big
    }
}
