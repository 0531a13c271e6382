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
    /// Every byte of every direction arrived in order, unaltered, then FIN.
    pub intact: bool,
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
                    intact = rx.intact() && (!client.cfg.bidir || c.rx.intact());
                }
            }
            None => error = error.or(Some("the server never saw this connection".into())),
        }
        if !client.cfg.bidir && c.rx.got > 0 {
            error = error.or(Some(format!(
                "{} unexpected bytes from the server",
                c.rx.got
            )));
            intact = false;
        }
        if error.is_none() && !intact {
            error = Some(format!(
                "incomplete: server verified {} of {} bytes (fin: {}), client: {}, server: {}",
                r.received,
                client.cfg.bytes,
                s.and_then(|s| s.rx.as_ref()).is_some_and(|v| v.fin),
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
