//! Request heads (parsed with `httparse`) and request-body framing per
//! RFC 9112: §2.2 message parsing, §3 request line, §6 message body,
//! §7.1 chunked transfer coding, §9.3 persistence.

use super::response::Status;

/// Most bytes of a request head (request line and header fields).
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header fields in a request.
pub const MAX_HEADERS: usize = 64;
/// Longest chunk-size line or trailer line (RFC 9112 §7.1).
const MAX_CHUNK_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub target: String,
    /// HTTP/1.x minor version.
    pub minor: u8,
    /// Whether the connection persists after this request (RFC 9112 §9.3).
    pub keep_alive: bool,
    pub body: BodyKind,
}

/// Parse a request head at the start of `buf`: `Ok(None)` if more bytes are
/// needed, `Ok(Some((request, head_len)))`, or the error status to answer.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, Status> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(Status::HeaderFieldsTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Status::HeaderFieldsTooLarge),
        Err(_) => return Err(Status::BadRequest),
    };
    if n > MAX_HEAD {
        return Err(Status::HeaderFieldsTooLarge);
    }
    let method = match req.method.unwrap_or("") {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    };
    let minor = req.version.unwrap_or(1);
    let target = req.path.unwrap_or("").to_string();
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut length: Option<u64> = None;
    let mut te: Option<&[u8]> = None;
    let mut host = 0;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            for opt in h.value.split(|&b| b == b',') {
                let opt = opt.trim_ascii();
                conn_close |= opt.eq_ignore_ascii_case(b"close");
                conn_keep_alive |= opt.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            // §6.3 (5): an invalid length, or differing repeated lengths,
            // is an unrecoverable framing error.
            let v = parse_length(h.value).ok_or(Status::BadRequest)?;
            if length.is_some_and(|l| l != v) {
                return Err(Status::BadRequest);
            }
            length = Some(v);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if te.is_some() {
                return Err(Status::BadRequest);
            }
            te = Some(h.value);
        } else if name.eq_ignore_ascii_case("host") {
            host += 1;
        }
    }
    // RFC 9110 §7.2 / RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host.
    if (minor == 1 && host != 1) || host > 1 {
        return Err(Status::BadRequest);
    }
    let body = match (te, length) {
        // §6.1: a message with both is a smuggling attempt; we reject it.
        (Some(_), Some(_)) => return Err(Status::BadRequest),
        // §6.3 (4): chunked must be the final (here: only) coding, else 400.
        (Some(t), None) if t.trim_ascii().eq_ignore_ascii_case(b"chunked") && minor == 1 => {
            BodyKind::Chunked
        }
        (Some(_), None) => return Err(Status::BadRequest),
        (None, Some(0)) | (None, None) => BodyKind::None,
        (None, Some(l)) => BodyKind::Length(l),
    };
    // §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with keep-alive.
    let keep_alive = !conn_close && (minor == 1 || conn_keep_alive);
    Ok(Some((
        Request {
            method,
            target,
            minor,
            keep_alive,
            body,
        },
        n,
    )))
}

/// Content-Length = 1*DIGIT (RFC 9110 §8.6), at most 19 digits.
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Incremental decoder of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDecoder {
    /// Bytes left of a Content-Length body.
    Length(u64),
    /// RFC 9112 §7.1: chunk-size line next.
    ChunkSize,
    /// Bytes left of the current chunk's data.
    ChunkData(u64),
    /// The CRLF after chunk data.
    ChunkCrlf,
    /// Trailer section lines until an empty line (§7.1.2).
    Trailer,
    Done,
}

/// What one decoding step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Input bytes consumed.
    pub used: usize,
    /// Body data: `input[data.0..data.1]` (may be empty).
    pub data: (usize, usize),
}

impl BodyDecoder {
    pub fn new(kind: BodyKind) -> Self {
        match kind {
            BodyKind::None | BodyKind::Length(0) => BodyDecoder::Done,
            BodyKind::Length(n) => BodyDecoder::Length(n),
            BodyKind::Chunked => BodyDecoder::ChunkSize,
        }
    }

    pub fn is_done(&self) -> bool {
        *self == BodyDecoder::Done
    }

    /// Decode from `input`: one step (call again while it makes progress
    /// and the body is not done). An error means a malformed body (400).
    pub fn step(&mut self, input: &[u8]) -> Result<Step, Status> {
        let none = Step {
            used: 0,
            data: (0, 0),
        };
        match *self {
            BodyDecoder::Done => Ok(none),
            BodyDecoder::Length(left) | BodyDecoder::ChunkData(left) => {
                let k = (input.len() as u64).min(left) as usize;
                let rest = left - k as u64;
                *self = match (&*self, rest) {
                    (BodyDecoder::Length(_), 0) => BodyDecoder::Done,
                    (BodyDecoder::Length(_), r) => BodyDecoder::Length(r),
                    (_, 0) => BodyDecoder::ChunkCrlf,
                    (_, r) => BodyDecoder::ChunkData(r),
                };
                Ok(Step {
                    used: k,
                    data: (0, k),
                })
            }
            BodyDecoder::ChunkSize => match httparse::parse_chunk_size(input) {
                Ok(httparse::Status::Complete((used, 0))) => {
                    *self = BodyDecoder::Trailer;
                    Ok(Step { used, data: (0, 0) })
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    *self = BodyDecoder::ChunkData(size);
                    Ok(Step { used, data: (0, 0) })
                }
                Ok(httparse::Status::Partial) if input.len() > MAX_CHUNK_LINE => {
                    Err(Status::BadRequest)
                }
                Ok(httparse::Status::Partial) => Ok(none),
                Err(_) => Err(Status::BadRequest),
            },
            BodyDecoder::ChunkCrlf => match input {
                [b'\r', b'\n', ..] => {
                    *self = BodyDecoder::ChunkSize;
                    Ok(Step {
                        used: 2,
                        data: (0, 0),
                    })
                }
                [] | [b'\r'] => Ok(none),
                _ => Err(Status::BadRequest),
            },
            BodyDecoder::Trailer => match input.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    *self = BodyDecoder::Done;
                    Ok(Step {
                        used: 2,
                        data: (0, 0),
                    })
                }
                // A trailer field: ignored (§7.1.2 allows discarding).
                Some(i) if i <= MAX_CHUNK_LINE => Ok(Step {
                    used: i + 2,
                    data: (0, 0),
                }),
                None if input.len() <= MAX_CHUNK_LINE => Ok(none),
                _ => Err(Status::BadRequest),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<Option<(Request, usize)>, Status> {
        parse_head(s.as_bytes())
    }

    #[test]
    fn heads() {
        let (r, n) = head("GET /x HTTP/1.1\r\nHost: a\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(n, 28);
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.target, "/x");
        assert!(r.keep_alive);
        assert_eq!(r.body, BodyKind::None);
        assert_eq!(head("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        let (r, _) = head("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!r.keep_alive);
        let (r, _) = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.keep_alive);
        let (r, _) = head("HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.keep_alive);
        assert_eq!(r.method, Method::Head);
        let (r, _) = head("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.body, BodyKind::Length(5));
        let (r, _) = head("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.body, BodyKind::Chunked);
    }

    #[test]
    fn bad_heads() {
        for bad in [
            "GET / HTTP/1.1\r\n\r\n",                       // no Host
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", // two Hosts
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
            "\x01\x02garbage\r\n\r\n",
            "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(head(bad), Err(Status::BadRequest), "{bad:?}");
        }
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(head(&long), Err(Status::HeaderFieldsTooLarge));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        assert_eq!(
            head(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")),
            Err(Status::HeaderFieldsTooLarge)
        );
    }

    /// Decode all of `input` in pieces of `piece` bytes.
    fn decode(kind: BodyKind, input: &[u8], piece: usize) -> Result<(Vec<u8>, usize), Status> {
        let mut d = BodyDecoder::new(kind);
        let mut body = Vec::new();
        let mut buf = Vec::new();
        let mut fed = 0;
        let mut used_total = 0;
        while !d.is_done() {
            if fed < input.len() {
                let k = piece.min(input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + k]);
                fed += k;
            }
            loop {
                let s = d.step(&buf)?;
                body.extend_from_slice(&buf[s.data.0..s.data.1]);
                buf.drain(..s.used);
                used_total += s.used;
                if s.used == 0 || d.is_done() {
                    break;
                }
            }
            if fed == input.len() && !d.is_done() && d.step(&buf)?.used == 0 {
                return Err(Status::BadRequest);
            }
        }
        Ok((body, used_total))
    }

    #[test]
    fn chunked_bodies_in_any_pieces() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\nC\r\n world again\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, 100] {
            let (body, used) = decode(BodyKind::Chunked, wire, piece).unwrap();
            assert_eq!(body, b"hello  world again");
            assert_eq!(used, wire.len() - 4);
        }
        let (body, used) = decode(BodyKind::Length(3), b"abcdef", 2).unwrap();
        assert_eq!((body.as_slice(), used), (&b"abc"[..], 3));
        for bad in [
            &b"zz\r\n"[..],
            b"3\r\nabcX\r\n",
            b"ffffffffffffffffffff\r\n",
        ] {
            assert_eq!(decode(BodyKind::Chunked, bad, 100), Err(Status::BadRequest));
        }
    }
}
