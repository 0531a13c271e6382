//! Per-connection results, from both ends.

use super::{close_name, ms, BulkClient, BulkServer};

/// The outcome of one connection, as the client and server saw it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConnReport {
    pub index: u32,
    /// Payload bytes client → server: accepted by the client's stack, and
    /// verified by the server.
    pub sent: u64,
    pub received: u64,
    /// Server → client (with `bidir`).
    pub reverse_sent: u64,
    pub reverse_received: u64,
    /// As planned: every byte of every direction arrived in order,
    /// unaltered, then FIN; or, for a connection the workload aborts, the
    /// client aborted it and the server saw it end, with nothing garbled.
    pub intact: bool,
    /// `completed`, `aborted` (both ends closed before the transfer
    /// completed: see `client_close`, `server_close`, `error`), `garbled`
    /// (wrong bytes arrived) or `open` (an end never finished).
    pub outcome: String,
    /// The workload aborts this connection on purpose.
    pub planned_abort: bool,
    /// When the client opened it, and when the server had all data and FIN.
    pub start_ms: f64,
    pub done_ms: Option<f64>,
    /// How the client's and the server's side ended ("open" if they did not).
    pub client_close: String,
    pub server_close: String,
    /// The first problem found.
    pub error: Option<String>,
}

/// Per-connection results of a run, from both ends.
pub fn report(client: &BulkClient, server: &BulkServer) -> Vec<ConnReport> {
    let mut out = Vec::with_capacity(client.conns.len());
    for c in &client.conns {
        let s = server.done.get(c.index as usize).and_then(|s| s.as_ref());
        let s_live = server.conns.values().find(|s| s.index == Some(c.index));
        let s = s.or(s_live);
        let mut r = ConnReport {
            index: c.index,
            sent: c.tx.payload_sent(),
            reverse_received: c.rx.got,
            start_ms: ms(c.started),
            client_close: close_name(c.closed, c.time_wait),
            server_close: "open".into(),
            ..ConnReport::default()
        };
        let mut error = c.error.clone().or_else(|| c.rx.problem());
        let mut intact = false;
        match s {
            Some(s) => {
                r.server_close = close_name(s.closed, s.time_wait);
                r.done_ms = s.done_at.map(ms);
                r.reverse_sent = s.tx.as_ref().map_or(0, |t| t.payload_sent());
                error = error.or_else(|| s.error.clone());
                if let Some(rx) = &s.rx {
                    r.received = rx.got;
                    error = error.or_else(|| rx.problem());
                    intact = rx.intact() && (!client.cfg.two_way() || c.rx.intact());
                }
            }
            None => error = error.or(Some("the server never saw this connection".into())),
        }
        if !client.cfg.two_way() && c.rx.got > 0 {
            error = error.or(Some(format!(
                "{} unexpected bytes from the server",
                c.rx.got
            )));
            intact = false;
        }
        let garbled = c.rx.bad_at.is_some()
            || c.rx.got > c.rx.expected
            || s.and_then(|s| s.rx.as_ref())
                .is_some_and(|v| v.bad_at.is_some() || v.got > v.expected);
        let ended = r.client_close != "open" && (s.is_none() || r.server_close != "open");
        r.planned_abort = client.cfg.aborts(c.index);
        r.outcome = if garbled {
            "garbled"
        } else if intact && error.is_none() {
            "completed"
        } else if ended {
            "aborted"
        } else {
            "open"
        }
        .into();
        if r.planned_abort && c.aborted && r.outcome == "aborted" {
            // The abort was the plan; the server's view ended with it.
            r.intact = true;
            r.error = None;
            out.push(r);
            continue;
        }
        if error.is_none() && !intact {
            error = Some(format!(
                "incomplete: server verified {} of {} bytes (fin: {}), client sent {} and verified {} of {}, client: {}, server: {}",
                r.received,
                client.cfg.bytes_for(c.index, true),
                s.and_then(|s| s.rx.as_ref()).is_some_and(|v| v.fin),
                c.tx.sent,
                c.rx.got,
                c.rx.expected,
                r.client_close,
                r.server_close
            ));
        }
        r.intact = intact && error.is_none();
        r.error = error;
        out.push(r);
    }
    out
}
