//! The passive MP_JOIN handshake against a Linux <-> Linux capture (the
//! same keys and nonces as `crypto::tests`): the SYN/ACK we build must be
//! the bytes Linux's server sent, and Linux's third ACK must verify.

use super::*;

const KEY_A: Key = Key(0x38ae6ee5132aa987);
const KEY_B: Key = Key(0xee29f78c747973d7);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn emit(o: MptcpOption) -> Vec<u8> {
    let mut b = [0u8; 40];
    let n = o.emit(&mut b);
    b[..n].to_vec()
}

/// Linux's MP_JOIN SYN on the second path: address ID 1, token of Key-B,
/// R-A.
const SYN: &str = "1e0c1001c41b56a1f4908819";
/// Linux's third ACK: HMAC-A, 160 bits.
const THIRD_ACK: &str = "1e181000619b580bd6186b8459338be562b85417fb5800ce";

fn join() -> Join {
    let syn = JoinSyn::find(&hex(SYN)).unwrap();
    assert_eq!(
        syn,
        JoinSyn {
            backup: false,
            addr_id: 1,
            token: KEY_B.token(),
            nonce: 0xf4908819
        }
    );
    Join::new(&syn, KEY_B, KEY_A, 0x224396a4, 0)
}

#[test]
fn syn_ack_is_what_linux_sent() {
    assert_eq!(
        emit(join().syn_ack_option()),
        hex("1e1010000c14d5f0abf63ceb224396a4")
    );
}

#[test]
fn linux_third_ack_verifies() {
    let mut j = join();
    assert_eq!(j.on_third_ack(&hex(THIRD_ACK)), Ok(()));
    assert_eq!(j.phase, JoinPhase::Verified);
    // Later segments need no HMAC.
    assert_eq!(j.on_third_ack(&[]), Ok(()));
}

#[test]
fn wrong_or_missing_hmac_is_refused() {
    let mut bad = hex(THIRD_ACK);
    bad[23] ^= 1;
    assert_eq!(join().on_third_ack(&bad), Err(JoinReject::Hmac));
    assert_eq!(join().on_third_ack(&[]), Err(JoinReject::Hmac));
    // The right HMAC under other nonces (a replayed third ACK).
    let syn = JoinSyn::find(&hex(SYN)).unwrap();
    let mut other = Join::new(&syn, KEY_B, KEY_A, 0x224396a5, 0);
    assert_eq!(other.on_third_ack(&hex(THIRD_ACK)), Err(JoinReject::Hmac));
    assert_eq!(other.phase, JoinPhase::SynAckSent);
}

#[test]
fn backup_flag_and_address_id_are_kept() {
    // B set, address ID 7.
    let syn = JoinSyn::find(&hex("1e0c1107c41b56a1f4908819")).unwrap();
    let j = Join::new(&syn, KEY_B, KEY_A, 1, 3);
    assert!(j.backup);
    assert_eq!(j.remote_addr_id, 7);
    match j.syn_ack_option() {
        MptcpOption::MpJoin(MpJoin::SynAck { addr_id, .. }) => assert_eq!(addr_id, 3),
        o => panic!("{o:?}"),
    }
}

#[test]
fn reject_option_is_mp_tcprst_mptcp_error() {
    // RFC 8684 §3.6, figure 16: subtype 8, flags 0, reason 0x01.
    assert_eq!(emit(reject_option()), hex("1e048001"));
}

/// The active side as Linux's client ran it: our SYN is the bytes Linux
/// sent, Linux's server SYN/ACK verifies, and our third ACK is the bytes
/// Linux sent.
#[test]
fn active_join_matches_the_linux_capture() {
    let mut j = Join::active(KEY_A, KEY_B, 0xf4908819, 1);
    assert_eq!(j.phase, JoinPhase::SynSent);
    assert!(j.is_active());
    assert_eq!(emit(j.syn_option()), hex(SYN));
    assert_eq!(
        j.on_syn_ack(&hex("1e1010000c14d5f0abf63ceb224396a4")),
        Ok(())
    );
    assert_eq!(j.phase, JoinPhase::AckSent);
    assert_eq!(emit(j.third_ack_option()), hex(THIRD_ACK));
    j.on_fourth_ack();
    assert_eq!(j.phase, JoinPhase::Verified);
}

#[test]
fn active_join_refuses_a_wrong_or_missing_hmac_b() {
    let mut j = Join::active(KEY_A, KEY_B, 0xf4908819, 1);
    // One bit of the truncated HMAC flipped.
    assert_eq!(
        j.on_syn_ack(&hex("1e1010000c14d5f0abf63cea224396a4")),
        Err(JoinReject::Hmac)
    );
    assert_eq!(j.on_syn_ack(&[]), Err(JoinReject::Hmac));
    assert_eq!(j.phase, JoinPhase::SynSent);
}
