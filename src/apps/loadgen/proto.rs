//! What a load-generator connection writes and how it reads the answers:
//! echo (`--size` bytes, the same bytes back), HTTP/1.1 (GET `--path`,
//! responses framed by Content-Length or chunked, RFC 9112 §6.3), bulk.

use crate::apps::http::request::{BodyDecoder, BodyKind};
use crate::apps::http::response::pattern_byte;
use crate::apps::stream::Stream;

/// Longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Echo,
    Http,
    Bulk,
    Connect,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Http => "http",
            Mode::Bulk => "bulk",
            Mode::Connect => "connect",
        }
    }
}

/// The request side of a mode, the same for every connection of a run.
#[derive(Debug, Clone)]
pub struct Proto {
    pub mode: Mode,
    /// Echo request size.
    pub size: u64,
    /// The HTTP request bytes.
    pub request: Vec<u8>,
    /// `--path /bytes/N`: the body every response must carry.
    pub bytes_n: Option<u64>,
    pub verify: bool,
    pub seed: u64,
}

impl Proto {
    /// An HTTP request for `path` on `host` (`close`: one per connection).
    pub fn http_request(path: &str, host: &str, close: bool) -> Vec<u8> {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes()
    }

    /// Bytes one request takes on the wire.
    pub fn request_len(&self) -> u64 {
        match self.mode {
            Mode::Echo => self.size,
            Mode::Http | Mode::Connect => self.request.len() as u64,
            Mode::Bulk => 0,
        }
    }

    /// The stream a connection's echo requests are cut from.
    pub fn stream(&self, conn: u32) -> Stream {
        Stream::new(self.seed, conn, 0)
    }

    /// Write request bytes at stream position `pos` into `dst`.
    pub fn fill(&self, stream: &Stream, pos: u64, dst: &mut [u8]) {
        match self.mode {
            Mode::Echo | Mode::Bulk => stream.fill(pos, dst),
            Mode::Http | Mode::Connect => {
                let r = &self.request;
                let mut off = (pos % r.len() as u64) as usize;
                let mut i = 0;
                while i < dst.len() {
                    let k = (r.len() - off).min(dst.len() - i);
                    dst[i..i + k].copy_from_slice(&r[off..off + k]);
                    i += k;
                    off = 0;
                }
            }
        }
    }
}

/// What feeding received bytes produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Responses completed.
    pub done: u32,
    /// Of those, rejected by --verify.
    pub bad: u32,
    /// The stream cannot be parsed any more: the connection must go.
    pub broken: bool,
}

/// A connection's response reader.
#[derive(Debug)]
pub enum Reader {
    /// Echo: bytes received so far (the stream position).
    Echo {
        off: u64,
        bad: bool,
    },
    Http(HttpReader),
    /// Bulk: bytes are only counted.
    Count,
}

#[derive(Debug, Default)]
pub struct HttpReader {
    head: Vec<u8>,
    /// The body being read: decoder, bytes of it so far, status.
    body: Option<(BodyDecoder, u64, u16)>,
    bad: bool,
    /// Framing bytes (a chunk-size line) split across reads.
    carry: Vec<u8>,
}

impl Reader {
    pub fn new(mode: Mode) -> Reader {
        match mode {
            Mode::Echo => Reader::Echo { off: 0, bad: false },
            Mode::Http | Mode::Connect => Reader::Http(HttpReader::default()),
            Mode::Bulk => Reader::Count,
        }
    }

    /// Feed received bytes.
    pub fn feed(&mut self, p: &Proto, stream: &Stream, data: &[u8]) -> Fed {
        match self {
            Reader::Count => Fed::default(),
            Reader::Echo { off, bad } => {
                let mut fed = Fed::default();
                let size = p.size.max(1);
                let mut d = data;
                while !d.is_empty() {
                    // Up to the end of the current request.
                    let left = size - *off % size;
                    let k = (d.len() as u64).min(left) as usize;
                    if p.verify && stream.check(*off, &d[..k]).is_some() {
                        *bad = true;
                    }
                    *off += k as u64;
                    d = &d[k..];
                    if (*off).is_multiple_of(size) {
                        fed.done += 1;
                        fed.bad += u32::from(std::mem::take(bad));
                    }
                }
                fed
            }
            Reader::Http(r) => {
                if r.carry.is_empty() {
                    r.feed(p, data)
                } else {
                    let mut joined = std::mem::take(&mut r.carry);
                    joined.extend_from_slice(data);
                    r.feed(p, &joined)
                }
            }
        }
    }
}

impl HttpReader {
    fn feed(&mut self, p: &Proto, mut data: &[u8]) -> Fed {
        let mut fed = Fed::default();
        while !data.is_empty() {
            let Some((dec, got, status)) = &mut self.body else {
                // A head: parse what we have plus the new bytes.
                let old = self.head.len();
                let take = data.len().min(MAX_HEAD + 4 - old);
                self.head.extend_from_slice(&data[..take]);
                let mut hs = [httparse::EMPTY_HEADER; 32];
                let mut resp = httparse::Response::new(&mut hs);
                match resp.parse(&self.head) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = resp.code.unwrap_or(0);
                        let kind = body_kind(resp.headers);
                        let Some(kind) = kind else {
                            fed.broken = true;
                            return fed;
                        };
                        data = &data[n - old..];
                        self.head.clear();
                        self.bad = p.verify && status != 200;
                        if let (true, Some(n), BodyKind::Length(l)) = (p.verify, p.bytes_n, kind) {
                            self.bad |= l != n;
                        }
                        self.body = Some((BodyDecoder::new(kind), 0, status));
                    }
                    Ok(httparse::Status::Partial) if self.head.len() <= MAX_HEAD => {
                        data = &data[take..];
                    }
                    _ => {
                        fed.broken = true;
                        return fed;
                    }
                }
                continue;
            };
            if !dec.is_done() {
                match dec.step(data) {
                    Ok(s) if s.used > 0 => {
                        let body = &data[s.data.0..s.data.1];
                        if p.verify && p.bytes_n.is_some() {
                            let base = *got;
                            self.bad |= body
                                .iter()
                                .enumerate()
                                .any(|(i, b)| *b != pattern_byte(base + i as u64));
                        }
                        *got += body.len() as u64;
                        data = &data[s.used..];
                    }
                    Ok(_) => {
                        self.carry.extend_from_slice(data);
                        if self.carry.len() > 4096 {
                            fed.broken = true;
                        }
                        return fed;
                    }
                    Err(_) => {
                        fed.broken = true;
                        return fed;
                    }
                }
            }
            if dec.is_done() {
                if let (true, Some(n)) = (p.verify, p.bytes_n) {
                    self.bad |= *got != n;
                }
                let _ = status;
                self.body = None;
                fed.done += 1;
                fed.bad += u32::from(std::mem::take(&mut self.bad));
            }
        }
        // A body of length 0 completes with its head.
        if let Some((dec, _, _)) = &self.body {
            if dec.is_done() {
                self.body = None;
                fed.done += 1;
                fed.bad += u32::from(std::mem::take(&mut self.bad));
            }
        }
        fed
    }
}

/// Response body framing (RFC 9112 §6.3); `None` if unframeable.
fn body_kind(headers: &[httparse::Header]) -> Option<BodyKind> {
    let mut kind = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Some(BodyKind::Chunked);
            }
            return None;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).ok()?.trim().parse().ok()?;
            kind = Some(BodyKind::Length(v));
        }
    }
    // Without a length, the body runs to the close: not usable here.
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(mode: Mode, bytes_n: Option<u64>) -> Proto {
        Proto {
            mode,
            size: 10,
            request: Proto::http_request("/x", "h", false),
            bytes_n,
            verify: true,
            seed: 1,
        }
    }

    #[test]
    fn http_responses_in_any_pieces() {
        let p = proto(Mode::Http, Some(30));
        let body: Vec<u8> = (0..30u64).map(pattern_byte).collect();
        let mut wire = Vec::new();
        wire.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n");
        wire.extend_from_slice(&body);
        wire.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1e\r\n");
        wire.extend_from_slice(&body);
        wire.extend_from_slice(b"\r\n0\r\n\r\n");
        wire.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        for piece in [1, 2, 5, 1000] {
            let mut r = Reader::new(Mode::Http);
            let s = p.stream(0);
            let mut total = Fed::default();
            for c in wire.chunks(piece) {
                let f = r.feed(&p, &s, c);
                total.done += f.done;
                total.bad += f.bad;
                assert!(!f.broken, "piece {piece}");
            }
            assert_eq!((total.done, total.bad), (3, 1), "piece {piece}");
        }
        let mut bad_body = wire[..69].to_vec();
        bad_body[50] = b'!';
        let mut r = Reader::new(Mode::Http);
        let f = r.feed(&p, &p.stream(0), &bad_body);
        assert_eq!((f.done, f.bad), (1, 1));
        let mut r = Reader::new(Mode::Http);
        assert!(r.feed(&p, &p.stream(0), b"garbage\r\n\r\n").broken);
    }

    #[test]
    fn echo_responses_are_checked() {
        let p = proto(Mode::Echo, None);
        let s = p.stream(3);
        let mut buf = vec![0u8; 25];
        s.fill(0, &mut buf);
        let mut r = Reader::new(Mode::Echo);
        assert_eq!(r.feed(&p, &s, &buf[..7]).done, 0);
        assert_eq!(r.feed(&p, &s, &buf[7..25]).done, 2);
        let mut more = vec![0u8; 5];
        s.fill(25, &mut more);
        more[0] ^= 1;
        let f = r.feed(&p, &s, &more);
        assert_eq!((f.done, f.bad), (1, 1));
        let mut req = vec![0u8; 25];
        p.fill(&s, 0, &mut req);
        assert_eq!(req, buf);
    }
}
