//! An HTTP/1.1 server on the event API (`xdptcp http`).
//!
//! Per connection: bytes read go to a bounded input buffer; one request at
//! a time is parsed ([`request`]), routed ([`route`]) and answered
//! ([`response`]), the response written straight into the stack's send
//! frames with [`Stack::send_with`]. Pipelined requests wait in the input
//! buffer until the response before them is queued, so responses leave in
//! request order (RFC 9112 §9.3.2); a full input buffer stops reading, so
//! the peer is flow-controlled by our receive window. Large bodies
//! (`/bytes/N`, files) are produced as send space frees up, never held
//! whole. After an error response, `Connection: close` or an idle timeout
//! the connection is half-closed and what still arrives is read and
//! dropped until the peer closes (the lingering close of RFC 9112 §9.6).

pub mod files;
pub mod request;
pub mod response;
pub mod route;

use crate::app::{App, Event};
use crate::io::Device;
use crate::stack::{ConnId, Stack};
use crate::time::Instant;
use core::time::Duration;
use hashbrown::HashMap;
use request::{BodyDecoder, BodyKind, Method, Request};
use response::{Body, DateCache, Status};
use route::Route;
use std::path::PathBuf;

/// Input bytes buffered per connection before reading pauses.
const IN_MAX: usize = 64 * 1024;
/// How often idle connections are looked for.
const IDLE_SCAN: Duration = Duration::from_millis(100);

/// Server settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub port: u16,
    /// Serve files from here (instead of `GET /`'s text).
    pub root: Option<PathBuf>,
    /// A connection with no progress in either direction for this long is
    /// closed.
    pub idle_timeout: Duration,
    /// Largest request body accepted (`POST /echo`), else 413.
    pub max_body: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            port: 80,
            root: None,
            idle_timeout: Duration::from_secs(60),
            max_body: 16 << 20,
        }
    }
}

/// Server counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HttpStats {
    pub accepted: u64,
    pub closed: u64,
    pub requests: u64,
    pub responses_2xx: u64,
    pub responses_4xx: u64,
    pub responses_5xx: u64,
    /// Response bytes (heads and bodies) queued for sending.
    pub bytes_out: u64,
    pub idle_timeouts: u64,
    /// Connections aborted (a file read failed, or a timed-out peer never
    /// finished closing).
    pub aborted: u64,
}

enum Phase {
    /// Waiting for (more of) a request head.
    Head,
    /// Reading the request body; then answering `route`.
    Body {
        dec: BodyDecoder,
        route: Route,
        head_only: bool,
        keep_alive: bool,
    },
    /// Half-closed by us: input is read and dropped.
    Linger,
}

struct Conn {
    inbuf: Vec<u8>,
    phase: Phase,
    /// The response head being sent, and how much of it is out.
    head: Vec<u8>,
    head_off: usize,
    body: Body,
    /// The collected body of a `POST /echo`.
    echo: Vec<u8>,
    /// Half-close once the current response is queued.
    close_after: bool,
    shut: bool,
    /// When we half-closed: lingering ends an idle timeout later whatever
    /// the peer still sends (RFC 9112 §9.6: lingering is bounded).
    shut_at: Instant,
    read_closed: bool,
    last_active: Instant,
}

impl Conn {
    fn new(now: Instant) -> Self {
        Conn {
            inbuf: Vec::new(),
            phase: Phase::Head,
            head: Vec::new(),
            head_off: 0,
            body: Body::Empty,
            echo: Vec::new(),
            close_after: false,
            shut: false,
            shut_at: now,
            read_closed: false,
            last_active: now,
        }
    }

    fn sending(&self) -> bool {
        self.head_off < self.head.len() || !self.body.is_empty()
    }
}

/// The HTTP server: serves every connection accepted on `cfg.port`.
pub struct HttpServer {
    cfg: HttpConfig,
    listening: bool,
    conns: HashMap<ConnId, Conn>,
    date: DateCache,
    /// Wall-clock seconds since the Unix epoch, for `Date`.
    clock: fn() -> u64,
    last_scan: Instant,
    pub stats: HttpStats,
    /// Set if `listen` failed.
    pub error: Option<crate::stack::Error>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl HttpServer {
    pub fn new(cfg: HttpConfig) -> Self {
        HttpServer {
            cfg,
            listening: false,
            conns: HashMap::new(),
            date: DateCache::default(),
            clock: unix_now,
            last_scan: Instant::ZERO,
            stats: HttpStats::default(),
            error: None,
        }
    }

    /// Connections currently open.
    pub fn live(&self) -> usize {
        self.conns.len()
    }

    /// Start listening now (otherwise done on the first poll).
    pub fn listen<D: Device>(&mut self, stack: &mut Stack<D>) {
        if !self.listening {
            self.listening = true;
            self.error = stack.listen(self.cfg.port).err();
        }
    }

    /// Queue a response on `c` (head now, body as space frees up).
    fn respond_with(
        &mut self,
        c: &mut Conn,
        status: Status,
        body: Body,
        head_only: bool,
        allow: Option<&str>,
        content_type: &str,
    ) {
        match status.code() {
            200..=299 => self.stats.responses_2xx += 1,
            400..=499 => self.stats.responses_4xx += 1,
            _ => self.stats.responses_5xx += 1,
        }
        let date = self.date.get((self.clock)());
        c.head.clear();
        c.head_off = 0;
        response::write_head(
            &mut c.head,
            status,
            date,
            body.len(),
            content_type,
            c.close_after,
            allow,
        );
        self.stats.bytes_out += c.head.len() as u64;
        if !head_only {
            self.stats.bytes_out += body.len();
            c.body = body;
        } else {
            c.body = Body::Empty;
        }
    }

    /// An error response, then a clean close.
    fn fail(&mut self, c: &mut Conn, status: Status, allow: Option<&'static str>) {
        c.close_after = true;
        c.phase = Phase::Linger;
        let text = status.reason().as_bytes();
        self.respond_with(c, status, Body::Static(text, 0), false, allow, "text/plain");
    }

    /// Answer a request whose body (if any) has been read.
    fn answer(&mut self, c: &mut Conn, route: Route, head_only: bool, keep_alive: bool) {
        c.close_after |= !keep_alive;
        let body = match route {
            Route::Index => Body::Static(route::INDEX, 0),
            Route::Bytes(n) => Body::Pattern(0, n),
            Route::Echo => Body::Owned(std::mem::take(&mut c.echo), 0),
            Route::File(f, len) => Body::File(f, len),
            Route::Error(s, allow) => return self.fail(c, s, allow),
        };
        let ctype = match body {
            Body::Static(..) => "text/plain",
            _ => "application/octet-stream",
        };
        self.respond_with(c, Status::Ok, body, head_only, None, ctype);
        if c.close_after {
            c.phase = Phase::Linger;
        }
    }

    /// Make progress on the request in `c.inbuf`; whether anything changed.
    fn progress(&mut self, c: &mut Conn) -> bool {
        match &mut c.phase {
            Phase::Linger => {
                let had = !c.inbuf.is_empty();
                c.inbuf.clear();
                had
            }
            Phase::Head => match request::parse_head(&c.inbuf) {
                Ok(None) => false,
                Err(s) => {
                    self.stats.requests += 1;
                    c.inbuf.clear();
                    self.fail(c, s, None);
                    true
                }
                Ok(Some((req, n))) => {
                    self.stats.requests += 1;
                    c.inbuf.drain(..n);
                    self.start(c, req);
                    true
                }
            },
            Phase::Body { dec, route, .. } => {
                let mut changed = false;
                let echo = matches!(route, Route::Echo);
                let mut too_large = false;
                let mut bad = false;
                while !dec.is_done() {
                    match dec.step(&c.inbuf) {
                        Ok(s) if s.used > 0 => {
                            if echo {
                                let d = &c.inbuf[s.data.0..s.data.1];
                                if (c.echo.len() + d.len()) as u64 > self.cfg.max_body {
                                    too_large = true;
                                    break;
                                }
                                c.echo.extend_from_slice(d);
                            }
                            c.inbuf.drain(..s.used);
                            changed = true;
                        }
                        Ok(_) => break,
                        Err(_) => {
                            bad = true;
                            break;
                        }
                    }
                }
                if too_large || bad {
                    c.inbuf.clear();
                    c.echo = Vec::new();
                    let s = if bad {
                        Status::BadRequest
                    } else {
                        Status::ContentTooLarge
                    };
                    self.fail(c, s, None);
                    return true;
                }
                if dec.is_done() {
                    let Phase::Body {
                        route,
                        head_only,
                        keep_alive,
                        ..
                    } = std::mem::replace(&mut c.phase, Phase::Head)
                    else {
                        return changed;
                    };
                    self.answer(c, route, head_only, keep_alive);
                    return true;
                }
                changed
            }
        }
    }

    /// A request head arrived: route it, then read its body (if any).
    fn start(&mut self, c: &mut Conn, req: Request) {
        let route = route::route(req.method, &req.target, self.cfg.root.as_deref());
        if let Route::Error(s, allow) = route {
            // The body (if any) is not read: the connection closes.
            return self.fail(c, s, allow);
        }
        if matches!(route, Route::Echo) {
            if let BodyKind::Length(n) = req.body {
                if n > self.cfg.max_body {
                    return self.fail(c, Status::ContentTooLarge, None);
                }
            }
        }
        c.phase = Phase::Body {
            dec: BodyDecoder::new(req.body),
            route,
            head_only: req.method == Method::Head,
            keep_alive: req.keep_alive,
        };
    }

    /// Queue as much of the current response as the stack takes; whether
    /// it is all queued (`None`: the connection was aborted).
    fn flush<D: Device>(
        &mut self,
        stack: &mut Stack<D>,
        now: Instant,
        id: ConnId,
        c: &mut Conn,
    ) -> Option<bool> {
        if !c.sending() {
            return Some(true);
        }
        let mut failed = false;
        let (head, off, body) = (&c.head, &mut c.head_off, &mut c.body);
        let r = stack.send_with(id, &mut |dst: &mut [u8]| {
            let mut w = 0;
            if *off < head.len() {
                let k = (head.len() - *off).min(dst.len());
                dst[..k].copy_from_slice(&head[*off..*off + k]);
                *off += k;
                w = k;
            }
            if w < dst.len() {
                match body.fill(&mut dst[w..]) {
                    Ok(k) => w += k,
                    Err(_) => failed = true,
                }
            }
            w
        });
        if failed {
            self.stats.aborted += 1;
            let _ = stack.abort(id);
            return None;
        }
        match r {
            Ok(n) if n > 0 => c.last_active = now,
            Ok(_) => {}
            Err(_) => {
                // Not sendable any more (reset, or closed): drop the rest.
                c.head_off = c.head.len();
                c.body = Body::Empty;
            }
        }
        Some(!c.sending())
    }

    /// Everything that can be done on connection `id` now.
    fn drive<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant, id: ConnId) {
        // The table is moved out while the connection is driven (a cheap
        // swap: no rehash, no per-event remove and insert).
        let mut conns = core::mem::take(&mut self.conns);
        if let Some(c) = conns.get_mut(&id) {
            if !self.drive_conn(stack, now, id, c) {
                conns.remove(&id);
            }
        }
        self.conns = conns;
    }

    fn drive_conn<D: Device>(
        &mut self,
        stack: &mut Stack<D>,
        now: Instant,
        id: ConnId,
        c: &mut Conn,
    ) -> bool {
        loop {
            match self.flush(stack, now, id, c) {
                None => return false,
                Some(false) => return true, // wait for Writable
                Some(true) => {}
            }
            if c.close_after && !c.shut {
                c.shut = true;
                c.shut_at = now;
                c.phase = Phase::Linger;
                let _ = stack.shutdown(id);
            }
            // Read (bounded; all of it when lingering).
            let room = match c.phase {
                Phase::Linger => usize::MAX,
                _ => IN_MAX.saturating_sub(c.inbuf.len()),
            };
            let mut got = 0usize;
            if room > 0 {
                let (inbuf, linger) = (&mut c.inbuf, matches!(c.phase, Phase::Linger));
                while let Ok(n) = stack.recv_with(id, &mut |d: &[u8]| {
                    if linger {
                        return d.len();
                    }
                    let k = d.len().min(IN_MAX - inbuf.len());
                    inbuf.extend_from_slice(&d[..k]);
                    k
                }) {
                    if n == 0 {
                        break;
                    }
                    got += n;
                    if !linger && inbuf.len() >= IN_MAX {
                        break;
                    }
                }
            }
            if got > 0 {
                c.last_active = now;
            }
            if self.progress(c) {
                continue;
            }
            if got > 0 && !matches!(c.phase, Phase::Linger) {
                continue;
            }
            break;
        }
        // The peer finished sending and no complete request is left.
        if c.read_closed && !c.shut && !c.sending() {
            if matches!(c.phase, Phase::Head) && !c.inbuf.is_empty() {
                // RFC 9112 §8: an incomplete request.
                self.fail(c, Status::BadRequest, None);
                return self.drive_conn(stack, now, id, c);
            }
            c.shut = true;
            c.shut_at = now;
            c.phase = Phase::Linger;
            let _ = stack.shutdown(id);
        }
        true
    }

    /// Close connections idle for longer than the timeout.
    fn scan_idle<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant) {
        let limit = self.cfg.idle_timeout;
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                now.saturating_since(c.last_active) >= limit
                    || (c.shut && now.saturating_since(c.shut_at) >= limit)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            let Some(mut c) = self.conns.remove(&id) else {
                continue;
            };
            self.stats.idle_timeouts += 1;
            if c.shut || c.sending() {
                // It neither reads our response nor finishes closing.
                self.stats.aborted += 1;
                let _ = stack.abort(id);
                continue;
            }
            c.last_active = now;
            if !c.inbuf.is_empty() || matches!(c.phase, Phase::Body { .. }) {
                c.inbuf.clear();
                self.fail(&mut c, Status::RequestTimeout, None);
            } else {
                c.close_after = true;
            }
            if self.drive_conn(stack, now, id, &mut c) {
                self.conns.insert(id, c);
            }
        }
    }
}

impl<D: Device> App<D> for HttpServer {
    fn on_event(&mut self, stack: &mut Stack<D>, now: Instant, ev: Event) {
        match ev {
            Event::Accepted { id, port } if port == self.cfg.port => {
                self.stats.accepted += 1;
                self.conns.insert(id, Conn::new(now));
                self.drive(stack, now, id);
            }
            Event::Readable { id } => self.drive(stack, now, id),
            Event::Writable { id } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.last_active = now;
                }
                self.drive(stack, now, id);
            }
            Event::ReadClosed { id } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.read_closed = true;
                }
                self.drive(stack, now, id);
            }
            Event::Closed { id, .. } if self.conns.remove(&id).is_some() => self.stats.closed += 1,
            _ => {}
        }
    }

    /// A connection moves with its request and response state
    /// (`app_migrate`); its idle clock goes along.
    fn export(&mut self, id: ConnId) -> Option<Box<dyn std::any::Any + Send>> {
        let c = self.conns.remove(&id)?;
        Some(Box::new(c))
    }

    fn import(
        &mut self,
        _stack: &mut Stack<D>,
        _now: Instant,
        id: ConnId,
        state: Box<dyn std::any::Any + Send>,
    ) -> Result<(), Box<dyn std::any::Any + Send>> {
        crate::app_migrate::adopt(&mut self.conns, id, state)
    }

    fn on_poll(&mut self, stack: &mut Stack<D>, now: Instant) {
        self.listen(stack);
        if now.saturating_since(self.last_scan) >= IDLE_SCAN {
            self.last_scan = now;
            self.scan_idle(stack, now);
        }
    }
}

impl crate::io::mem::SimApp for HttpServer {
    /// The idle scan's next turn while connections are open.
    fn poll_at(&self) -> Option<Instant> {
        (!self.conns.is_empty()).then(|| self.last_scan + IDLE_SCAN)
    }
}

impl crate::runtime::RuntimeApp for HttpServer {
    fn stats_json(&self) -> serde_json::Value {
        serde_json::json!({ "http": self.stats, "live": self.live() })
    }
}
