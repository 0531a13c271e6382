//! UDP (RFC 768).

use super::checksum::{self, RxChecksum};
use super::{Result, WireError};
use core::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
}

/// IP protocol number of UDP, for the pseudo-header.
const PROTO_UDP: u8 = 17;

impl UdpRepr {
    pub const HEADER_LEN: usize = 8;

    /// Parse a datagram (the IPv4 payload), verifying the checksum when it is
    /// non-zero. Returns the header and the payload range `8..length`.
    pub fn parse(
        buf: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<(UdpRepr, core::ops::Range<usize>)> {
        Self::parse_rx(buf, src, dst, false).map(|(u, r, _)| (u, r))
    }

    /// [`Self::parse`], also accepting (with `accept_partial`) a checksum
    /// field holding only the pseudo-header sum (a veth peer with transmit
    /// checksum offload); the flag says whether it was taken on that ground.
    pub fn parse_rx(
        buf: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        accept_partial: bool,
    ) -> Result<(UdpRepr, core::ops::Range<usize>, bool)> {
        let h = buf.get(..Self::HEADER_LEN).ok_or(WireError::Truncated)?;
        // RFC 768: Length counts header and data, so at least 8.
        let length = u16::from_be_bytes([h[4], h[5]]) as usize;
        if length < Self::HEADER_LEN {
            return Err(WireError::BadLength);
        }
        let datagram = buf.get(..length).ok_or(WireError::Truncated)?;
        // RFC 768: an all-zero checksum means the sender computed none.
        let check = u16::from_be_bytes([h[6], h[7]]);
        let mut partial = false;
        if check != 0 {
            let ph = checksum::pseudo_header(src, dst, PROTO_UDP, length);
            match checksum::verify_l4(datagram, 6, ph, accept_partial) {
                RxChecksum::Valid => {}
                RxChecksum::Partial => partial = true,
                RxChecksum::Bad => return Err(WireError::BadChecksum),
            }
        }
        let repr = UdpRepr {
            src_port: u16::from_be_bytes([h[0], h[1]]),
            dst_port: u16::from_be_bytes([h[2], h[3]]),
        };
        Ok((repr, Self::HEADER_LEN..length, partial))
    }

    /// Check a datagram that arrived in pieces (reassembled from
    /// fragments): `header` its first 8 bytes, `length` its length field
    /// (already checked against the bytes held), `sum` the one's-complement
    /// sum of all `length` bytes (`checksum::sum` of each piece combined;
    /// every piece but the last of even length).
    pub fn parse_pieces(
        header: &[u8],
        length: usize,
        sum: u16,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<UdpRepr> {
        let h = header.get(..Self::HEADER_LEN).ok_or(WireError::Truncated)?;
        if length < Self::HEADER_LEN || usize::from(u16::from_be_bytes([h[4], h[5]])) != length {
            return Err(WireError::BadLength);
        }
        if u16::from_be_bytes([h[6], h[7]]) != 0 {
            let ph = checksum::pseudo_header(src, dst, PROTO_UDP, length);
            if checksum::combine(&[ph, sum]) != 0xffff {
                return Err(WireError::BadChecksum);
            }
        }
        Ok(UdpRepr {
            src_port: u16::from_be_bytes([h[0], h[1]]),
            dst_port: u16::from_be_bytes([h[2], h[3]]),
        })
    }

    /// Write the 8-byte header into `header` for a datagram carrying
    /// `payload` that is not contiguous with it (to be sent in fragments).
    ///
    /// # Panics
    /// If `header` is shorter than `HEADER_LEN` (a caller bug, not input).
    pub fn emit_header(&self, header: &mut [u8], payload: &[u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let length = Self::HEADER_LEN + payload.len();
        debug_assert!(length <= u16::MAX as usize);
        let h = &mut header[..Self::HEADER_LEN];
        h[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        h[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        h[4..6].copy_from_slice(&(length as u16).to_be_bytes());
        h[6] = 0;
        h[7] = 0;
        let ph = checksum::pseudo_header(src, dst, PROTO_UDP, length);
        // The header is 8 bytes: the payload's sum lines up after it.
        let mut check = !checksum::combine(&[ph, checksum::sum(h), checksum::sum(payload)]);
        // RFC 768: a computed checksum of zero is transmitted as all ones,
        // since zero means "no checksum".
        if check == 0 {
            check = 0xffff;
        }
        h[6..8].copy_from_slice(&check.to_be_bytes());
    }

    /// Write the header and checksum over `datagram` (header room + payload
    /// already in place after it). The length field is `datagram.len()`.
    ///
    /// # Panics
    /// If `datagram` is shorter than `HEADER_LEN` (a caller bug, not input).
    pub fn emit(&self, datagram: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let (header, payload) = datagram.split_at_mut(Self::HEADER_LEN);
        self.emit_header(header, payload, src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn reference_checksum(d: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let mut v = Vec::new();
        v.extend_from_slice(&src.octets());
        v.extend_from_slice(&dst.octets());
        v.extend_from_slice(&[0, 17]);
        v.extend_from_slice(&(d.len() as u16).to_be_bytes());
        v.extend_from_slice(d);
        if v.len() % 2 == 1 {
            v.push(0);
        }
        let mut s: u32 = v
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
            .sum();
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn round_trip_exact_layout() {
        let mut d = [0u8; 13];
        d[8..].copy_from_slice(b"hello");
        let u = UdpRepr {
            src_port: 5353,
            dst_port: 9,
        };
        u.emit(&mut d, SRC, DST);
        assert_eq!(&d[..6], &[0x14, 0xe9, 0x00, 0x09, 0x00, 13]);
        let mut z = d;
        z[6] = 0;
        z[7] = 0;
        assert_eq!(
            u16::from_be_bytes([d[6], d[7]]),
            reference_checksum(&z, SRC, DST)
        );
        assert_eq!(UdpRepr::parse(&d, SRC, DST), Ok((u, 8..13)));
        // A wrong pseudo-header (other destination) is caught.
        assert_eq!(
            UdpRepr::parse(&d, SRC, Ipv4Addr::new(198, 18, 0, 3)),
            Err(WireError::BadChecksum)
        );
    }

    #[test]
    fn zero_checksum_sent_as_ones() {
        // Find a payload whose checksum computes to zero: choose the last
        // two bytes so that the total sum is 0xffff.
        let u = UdpRepr {
            src_port: 1,
            dst_port: 2,
        };
        let mut d = [0u8; 12];
        u.emit(&mut d, SRC, DST);
        let c = u16::from_be_bytes([d[6], d[7]]);
        // Adding `c` to the data makes the computed checksum exactly zero.
        d[10..12].copy_from_slice(&c.to_be_bytes());
        u.emit(&mut d, SRC, DST);
        assert_eq!(&d[6..8], &[0xff, 0xff]);
        assert_eq!(UdpRepr::parse(&d, SRC, DST), Ok((u, 8..12)));
    }

    #[test]
    fn no_checksum_accepted() {
        let d = [0, 53, 0, 53, 0, 10, 0, 0, 0xab, 0xcd];
        let u = UdpRepr {
            src_port: 53,
            dst_port: 53,
        };
        assert_eq!(UdpRepr::parse(&d, SRC, DST), Ok((u, 8..10)));
    }

    #[test]
    fn trailing_bytes_beyond_length_ignored() {
        let mut d = [0u8; 10];
        let u = UdpRepr {
            src_port: 7,
            dst_port: 7,
        };
        u.emit(&mut d, SRC, DST);
        let mut longer = d.to_vec();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(UdpRepr::parse(&longer, SRC, DST), Ok((u, 8..10)));
    }

    #[test]
    fn malformed() {
        let mut d = [0u8; 12];
        UdpRepr {
            src_port: 7,
            dst_port: 7,
        }
        .emit(&mut d, SRC, DST);
        for n in 0..8 {
            assert_eq!(UdpRepr::parse(&d[..n], SRC, DST), Err(WireError::Truncated));
        }
        // Length field larger than the buffer.
        assert_eq!(
            UdpRepr::parse(&d[..11], SRC, DST),
            Err(WireError::Truncated)
        );
        // Length field below the header size.
        for l in [0u16, 7] {
            let mut b = d;
            b[4..6].copy_from_slice(&l.to_be_bytes());
            assert_eq!(UdpRepr::parse(&b, SRC, DST), Err(WireError::BadLength));
        }
        let mut b = d;
        b[9] ^= 0x10;
        assert_eq!(UdpRepr::parse(&b, SRC, DST), Err(WireError::BadChecksum));
    }

    #[test]
    fn partial_checksum_is_accepted_only_when_asked_for() {
        let mut d = [0u8; 13];
        d[8..].copy_from_slice(b"hello");
        let u = UdpRepr {
            src_port: 5353,
            dst_port: 9,
        };
        u.emit(&mut d, SRC, DST);
        // What a Linux peer with transmit checksum offload leaves in the
        // field: the pseudo-header sum, not inverted (udp4_hwcsum).
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&SRC.octets());
        pseudo.extend_from_slice(&DST.octets());
        pseudo.extend_from_slice(&[0, 17, 0, 13]);
        let ph = !reference_checksum_of(&pseudo);
        d[6..8].copy_from_slice(&ph.to_be_bytes());
        assert_eq!(UdpRepr::parse(&d, SRC, DST), Err(WireError::BadChecksum));
        assert_eq!(UdpRepr::parse_rx(&d, SRC, DST, true), Ok((u, 8..13, true)));
        d[6] ^= 0x40;
        assert_eq!(
            UdpRepr::parse_rx(&d, SRC, DST, true),
            Err(WireError::BadChecksum)
        );
    }

    /// The inverted one's-complement sum of `v`, byte-wise.
    fn reference_checksum_of(v: &[u8]) -> u16 {
        let mut s: u32 = v
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
            .sum();
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn header_apart_and_pieces_agree_with_whole() {
        let u = UdpRepr {
            src_port: 4000,
            dst_port: 7,
        };
        let payload: Vec<u8> = (0..3001u32).map(|i| (i * 7) as u8).collect();
        let mut whole = vec![0u8; 8 + payload.len()];
        whole[8..].copy_from_slice(&payload);
        u.emit(&mut whole, SRC, DST);
        let mut h = [0u8; 8];
        u.emit_header(&mut h, &payload, SRC, DST);
        assert_eq!(&h[..], &whole[..8]);
        // Summed in pieces of 1480 (even) as reassembly does.
        let sums: Vec<u16> = whole.chunks(1480).map(checksum::sum).collect();
        let sum = checksum::combine(&sums);
        assert_eq!(
            UdpRepr::parse_pieces(&whole[..8], whole.len(), sum, SRC, DST),
            Ok(u)
        );
        let bad = checksum::combine(&[sum, 1]);
        assert_eq!(
            UdpRepr::parse_pieces(&whole[..8], whole.len(), bad, SRC, DST),
            Err(WireError::BadChecksum)
        );
        assert_eq!(
            UdpRepr::parse_pieces(&whole[..8], whole.len() - 1, sum, SRC, DST),
            Err(WireError::BadLength)
        );
    }
}
