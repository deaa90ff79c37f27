//! The TCP server: `tcp_server start|stop`, its listener (owned in the connection table),
//! its clients (TCPS streams, at most `tcp.server.max_clients`, one in STREAM mode) and their
//! idle timer (`tcp.server.idle_timeout`).

use super::*;
use conns::{Open, Owner};
use sockets::parse_port;

/// The module's TCP server while it listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TcpServer {
    pub(super) listener: ConnId,
    pub(super) port: u16,
    /// Started by `tcp.server.auto_start`: its first client may stream to the bus.
    pub(super) auto: bool,
}

impl Module {
    /// `tcp_server start [port]`, `tcp_server stop`.
    pub(super) fn tcp_server_command(
        &mut self,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let bad = Some((ResultCode::BAD_ARGS, None));
        match (args[0].as_str(), args.get(1)) {
            ("start", port) => {
                let port = match port.map(|p| parse_port(p)) {
                    Some(Some(p)) => p,
                    Some(None) => return bad,
                    None => self.cfg.tcp_server.port,
                };
                if self.tcp_server.is_some() {
                    self.log(console::level::ERROR, "TCP server already running");
                    return Some((ResultCode::FAILED, None));
                }
                self.with_network(AfterUp::TcpServer(port), now);
                None
            }
            ("stop", None) => {
                if let Some(server) = self.tcp_server.take() {
                    self.close_conn(server.listener);
                    for h in self.streams.handles_of(StreamType::Tcps) {
                        self.close_stream(h, now);
                    }
                    self.log(console::level::INFO, "TCP server stopped");
                }
                Some((ResultCode::SUCCESS, Some("Success".to_string())))
            }
            ("stop", Some(_)) => Some((ResultCode::TOO_MANY_ARGS, None)),
            _ => bad,
        }
    }
    /// An event for the TCP server's listener: a client, or the listener failed.
    pub(super) fn listener_event(&mut self, event: &NetEvent, now: Instant) {
        match event {
            NetEvent::TcpAccepted { listener, conn, peer } => {
                let close = Action::Net(NetRequest::Close { conn: *conn });
                let Some(server) = self.tcp_server.filter(|s| s.listener == *listener) else {
                    self.actions.push_back(close);
                    return;
                };
                let clients = self.streams.handles_of(StreamType::Tcps).len();
                // In STREAM mode a server takes one client (chapter, "Stream Limitations").
                let max = if self.bus.configured { 1 } else { self.cfg.tcp_server.max_clients };
                if clients >= max {
                    self.actions.push_back(close);
                    self.log(console::level::INFO, "TCP server: too many clients");
                    return;
                }
                let local = (self.local_ip(), server.port);
                let stream = Stream::new(StreamType::Tcps, *conn, local, Some(*peer));
                if self.add_stream(stream, now).is_some() && server.auto {
                    self.claim_bus(*conn);
                }
            }
            NetEvent::ConnFailed { conn, .. } | NetEvent::Closed { conn }
                if self.tcp_server.is_some_and(|s| s.listener == *conn) =>
            {
                let why = match event {
                    NetEvent::ConnFailed { reason, .. } => conn_failure_text(*reason),
                    _ => "closed",
                };
                self.log(console::level::ERROR, &format!("TCP server: listen failed: {why}"));
                self.tcp_server = None;
            }
            _ => {}
        }
    }
    /// When the next TCP server client becomes idle (`tcp.server.idle_timeout`, s; 0 never).
    pub(super) fn idle_deadline(&self) -> Option<Instant> {
        let idle = self.cfg.tcp_server.idle_timeout;
        if idle.as_millis() == 0 {
            return None;
        }
        self.streams
            .iter()
            .filter(|(_, s)| s.kind == StreamType::Tcps && !s.closed)
            .map(|(_, s)| s.last_activity + idle)
            .min()
    }
    pub(super) fn close_idle_clients(&mut self, now: Instant) {
        let idle = self.cfg.tcp_server.idle_timeout;
        if idle.as_millis() == 0 {
            return;
        }
        let idle: Vec<usize> = self
            .streams
            .iter()
            .filter(|(_, s)| {
                s.kind == StreamType::Tcps && !s.closed && s.last_activity + idle <= now
            })
            .map(|(h, _)| h)
            .collect();
        for h in idle {
            self.log(console::level::INFO, &format!("TCP server: client {h} idle"));
            self.close_stream(h, now);
        }
    }
    pub(super) fn start_tcp_server(&mut self, port: u16, auto: bool) {
        let listener = self.open_conn(Open::Listen { port }, Owner::TcpServer);
        self.tcp_server = Some(TcpServer { listener, port, auto });
        self.log(console::level::INFO, &format!("TCP server listening on port {port}"));
    }
}
