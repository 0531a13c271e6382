//! Responses: status codes, the head (RFC 9112 §4 status line, RFC 9110
//! §6.6.1 Date, §10.2.4 Server, RFC 9112 §6.2 Content-Length, §9.6
//! Connection: close), and bodies produced straight into send frames.

use std::io::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    ContentTooLarge,
    HeaderFieldsTooLarge,
    InternalError,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalError => 500,
        }
    }
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::ContentTooLarge => "Content Too Large",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalError => "Internal Server Error",
        }
    }
}

/// The byte at offset `i` of `/bytes/N`.
pub fn pattern_byte(i: u64) -> u8 {
    b'a' + (i % 26) as u8
}

/// The alphabet repeated, so any run of the pattern is one slice copy.
const PATTERN_LEN: usize = 26 * 158;
static PATTERN: [u8; PATTERN_LEN] = {
    let mut p = [0u8; PATTERN_LEN];
    let mut i = 0;
    while i < PATTERN_LEN {
        p[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    p
};

/// Write the `/bytes/N` pattern for offsets `off..off + dst.len()`.
pub fn fill_pattern(off: u64, dst: &mut [u8]) {
    let mut start = (off % 26) as usize;
    for chunk in dst.chunks_mut(PATTERN_LEN - 26) {
        chunk.copy_from_slice(&PATTERN[start..start + chunk.len()]);
        start = (start + chunk.len()) % 26;
    }
}

/// A response body, produced as send space frees up.
#[derive(Debug, Default)]
pub enum Body {
    #[default]
    Empty,
    Static(&'static [u8], usize),
    /// Owned bytes (an echoed request body) from an offset.
    Owned(Vec<u8>, usize),
    /// The `/bytes/N` pattern: next offset, end.
    Pattern(u64, u64),
    /// A file: bytes left to send.
    File(std::fs::File, u64),
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Static(b, off) => (b.len() - off) as u64,
            Body::Owned(b, off) => (b.len() - off) as u64,
            Body::Pattern(off, end) => end - off,
            Body::File(_, left) => *left,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write the next bytes into `dst`; returns bytes written, or an error
    /// if a file cannot be read (or ended early).
    pub fn fill(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.len().min(dst.len() as u64)) as usize;
        let dst = &mut dst[..n];
        match self {
            Body::Empty => {}
            Body::Static(b, off) => {
                dst.copy_from_slice(&b[*off..*off + n]);
                *off += n;
            }
            Body::Owned(b, off) => {
                dst.copy_from_slice(&b[*off..*off + n]);
                *off += n;
            }
            Body::Pattern(off, _) => {
                fill_pattern(*off, dst);
                *off += n as u64;
            }
            Body::File(f, left) => {
                use std::io::Read;
                let mut got = 0;
                while got < n {
                    match f.read(&mut dst[got..]) {
                        Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                        Ok(k) => got += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                *left -= n as u64;
            }
        }
        Ok(n)
    }
}

/// The `Date` value (RFC 9110 §5.6.7 IMF-fixdate), recomputed once a second.
#[derive(Debug, Default)]
pub struct DateCache {
    secs: u64,
    text: [u8; 29],
}

impl DateCache {
    /// The date for `unix_secs`.
    pub fn get(&mut self, unix_secs: u64) -> &[u8] {
        if self.secs != unix_secs || self.text[0] == 0 {
            self.secs = unix_secs;
            self.text = imf_fixdate(unix_secs);
        }
        &self.text
    }
}

/// E.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn imf_fixdate(unix_secs: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86400;
    let rem = unix_secs % 86400;
    // Civil from days (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut out = [b' '; 29];
    let mut w = &mut out[..];
    let _ = write!(
        w,
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y.clamp(0, 9999),
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    out
}

/// Append a response head to `out`.
pub fn write_head(
    out: &mut Vec<u8>,
    status: Status,
    date: &[u8],
    content_length: u64,
    content_type: &str,
    close: bool,
    allow: Option<&str>,
) {
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status.code(), status.reason());
    out.extend_from_slice(b"Server: xdptcp\r\nDate: ");
    out.extend_from_slice(date);
    let _ = write!(
        out,
        "\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\n"
    );
    if let Some(a) = allow {
        let _ = write!(out, "Allow: {a}\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(&imf_fixdate(784111777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(951782400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn pattern_any_offset() {
        for off in [0u64, 1, 25, 26, 1000, (1 << 30) - 3] {
            let mut buf = vec![0u8; 9000];
            fill_pattern(off, &mut buf);
            for (i, b) in buf.iter().enumerate() {
                assert_eq!(*b, pattern_byte(off + i as u64));
            }
        }
        let mut body = Body::Pattern(5, 40);
        let mut buf = [0u8; 16];
        assert_eq!(body.fill(&mut buf).unwrap(), 16);
        assert_eq!(&buf, b"fghijklmnopqrstu");
        assert_eq!(body.len(), 19);
    }

    #[test]
    fn heads() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            Status::NotFound,
            b"D",
            3,
            "text/plain",
            true,
            None,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nServer: xdptcp\r\nDate: D\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
    }
}
