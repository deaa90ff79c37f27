//! The TCP server: `tcp_server start|stop`, its listener (owned in the connection table),
//! its clients (TCPS streams, at most `tcp.server.max_clients`, one in STREAM mode) and their
//! idle timer (`tcp.server.idle_timeout`).
//!
//! A part of its own: [`TcpServer`] owns its listener and its settings and works through a
//! [`Ctx`]; the module starts it once the network is up and closes the client streams it
//! hands back (the stream close path is the stream table's).

use super::*;
use crate::config::TcpServerConfig;
use conns::{Open, Owner};
use ctx::Ctx;
use sockets::parse_port;

/// The TCP server service.
#[derive(Debug)]
pub(super) struct TcpServer {
    cfg: TcpServerConfig,
    listening: Option<Listening>,
}

/// The listener while the server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Listening {
    listener: ConnId,
    port: u16,
    /// Started by `tcp.server.auto_start`: its first client may stream to the bus.
    auto: bool,
    /// `tls_server` (or auto start with `tcp.server.tls_enabled`): clients are TLSS streams.
    tls: bool,
}

/// What `tcp_server` asks of the module.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ServerStep {
    /// Answer the command now.
    Answer(ResultCode, Option<String>),
    /// Bring the network up, then [`TcpServer::start`] on this port.
    Start(u16),
    /// Stopped: close these client streams, then log that it stopped.
    Stopped(Vec<usize>),
}

impl TcpServer {
    pub(super) fn new(vars: &Vars) -> Self {
        Self { cfg: TcpServerConfig::from_vars(vars), listening: None }
    }

    /// `tcp.server.*` changed.
    pub(super) fn configure(&mut self, vars: &Vars) {
        self.cfg = TcpServerConfig::from_vars(vars);
    }

    pub(super) fn cfg(&self) -> &TcpServerConfig {
        &self.cfg
    }

    pub(super) fn is_running(&self) -> bool {
        self.listening.is_some()
    }

    /// The stream type of its clients.
    fn kind(&self) -> StreamType {
        if self.listening.is_some_and(|s| s.tls) { StreamType::Tlss } else { StreamType::Tcps }
    }

    /// The client streams (TCPS or TLSS).
    fn clients(&self, streams: &Streams) -> Vec<usize> {
        let mut clients = streams.handles_of(StreamType::Tcps);
        clients.extend(streams.handles_of(StreamType::Tlss));
        clients
    }

    /// `tcp_server start [port]`, `tcp_server stop` (and `tls_server`, the same server).
    pub(super) fn command(&mut self, args: &[String], ctx: &mut Ctx<'_>) -> ServerStep {
        let bad = ServerStep::Answer(ResultCode::BAD_ARGS, None);
        match (args[0].as_str(), args.get(1)) {
            ("start", port) => {
                let port = match port.map(|p| parse_port(p)) {
                    Some(Some(p)) => p,
                    Some(None) => return bad,
                    None => self.cfg.port,
                };
                if self.is_running() {
                    ctx.log(console::level::ERROR, "TCP server already running");
                    return ServerStep::Answer(ResultCode::FAILED, None);
                }
                ServerStep::Start(port)
            }
            ("stop", None) => match self.listening.take() {
                Some(server) => {
                    ctx.close_conn(server.listener);
                    ServerStep::Stopped(self.clients(ctx.streams))
                }
                None => ServerStep::Answer(ResultCode::SUCCESS, Some("Success".to_string())),
            },
            ("stop", Some(_)) => ServerStep::Answer(ResultCode::TOO_MANY_ARGS, None),
            _ => bad,
        }
    }

    /// Listens on `port` (`auto`: for auto start; `tls`: clients speak TLS); returns the
    /// listener.
    pub(super) fn start(&mut self, port: u16, auto: bool, tls: bool, ctx: &mut Ctx<'_>) -> ConnId {
        let listener = ctx.open_conn(Open::Listen { port }, Owner::TcpServer);
        self.listening = Some(Listening { listener, port, auto, tls });
        let what = if tls { "TLS server" } else { "TCP server" };
        ctx.log(console::level::INFO, format!("{what} listening on port {port}"));
        listener
    }

    /// The network went down: the listener goes with it, without a word (its clients
    /// close with their streams).
    pub(super) fn network_down(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(server) = self.listening.take() {
            ctx.close_conn(server.listener);
        }
    }

    /// An event for the listener: a client, or the listener failed. `one_client`: STREAM
    /// mode, where a server takes one client (chapter, "Stream Limitations"). Returns the
    /// connection of a client of the auto-started server, which may stream to the bus.
    pub(super) fn listener_event(
        &mut self,
        event: &NetEvent,
        one_client: bool,
        now: Instant,
        ctx: &mut Ctx<'_>,
    ) -> Option<ConnId> {
        match event {
            NetEvent::TcpAccepted { listener, conn, peer } => {
                let close = Action::Net(NetRequest::Close { conn: *conn });
                let Some(server) = self.listening.filter(|s| s.listener == *listener) else {
                    ctx.act(close);
                    return None;
                };
                let clients = self.clients(ctx.streams).len();
                let max = if one_client { 1 } else { self.cfg.max_clients };
                if clients >= max {
                    ctx.act(close);
                    ctx.log(console::level::INFO, "TCP server: too many clients");
                    return None;
                }
                let local = (ctx.local_ip, server.port);
                let stream = Stream::new(self.kind(), *conn, local, Some(*peer));
                (ctx.add_stream(stream, now).is_some() && server.auto).then_some(*conn)
            }
            NetEvent::ConnFailed { conn, .. } | NetEvent::Closed { conn }
                if self.listening.is_some_and(|s| s.listener == *conn) =>
            {
                let why = match event {
                    NetEvent::ConnFailed { reason, .. } => conn_failure_text(*reason),
                    _ => "closed",
                };
                ctx.log(console::level::ERROR, format!("TCP server: listen failed: {why}"));
                self.listening = None;
                None
            }
            _ => None,
        }
    }

    /// When the next client becomes idle (`tcp.server.idle_timeout`, s; 0 never).
    pub(super) fn poll_at(&self, streams: &Streams) -> Option<Instant> {
        let idle = self.cfg.idle_timeout;
        if idle.as_millis() == 0 {
            return None;
        }
        streams
            .iter()
            .filter(|(_, s)| matches!(s.kind, StreamType::Tcps | StreamType::Tlss) && !s.closed)
            .map(|(_, s)| s.last_activity + idle)
            .min()
    }

    /// The clients idle at `now`, for the module to close.
    pub(super) fn idle_clients(&self, streams: &Streams, now: Instant) -> Vec<usize> {
        let idle = self.cfg.idle_timeout;
        if idle.as_millis() == 0 {
            return Vec::new();
        }
        streams
            .iter()
            .filter(|(_, s)| {
                matches!(s.kind, StreamType::Tcps | StreamType::Tlss)
                    && !s.closed
                    && s.last_activity + idle <= now
            })
            .map(|(h, _)| h)
            .collect()
    }
}

impl Module {
    /// `tcp_server`: the service decides; starting waits for the network, stopping closes
    /// the clients' streams.
    pub(super) fn tcp_server_command(
        &mut self,
        args: &[String],
        tls: bool,
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        match self.with_ctx(|s, ctx| s.tcp_server.command(args, ctx)) {
            ServerStep::Answer(code, body) => Some((code, body)),
            ServerStep::Start(port) => {
                self.with_network(AfterUp::TcpServer { port, tls }, now);
                None
            }
            ServerStep::Stopped(clients) => {
                for h in clients {
                    self.close_stream(h, now);
                }
                self.log(console::level::INFO, "TCP server stopped");
                Some((ResultCode::SUCCESS, Some("Success".to_string())))
            }
        }
    }

    pub(super) fn listener_event(&mut self, event: &NetEvent, now: Instant) {
        let one_client = self.svc.bus.configured;
        let claim =
            self.with_ctx(|s, ctx| s.tcp_server.listener_event(event, one_client, now, ctx));
        if let Some(conn) = claim {
            self.claim_bus(conn);
        }
    }

    pub(super) fn tcp_server_poll_at(&self) -> Option<Instant> {
        self.svc.tcp_server.poll_at(&self.streams)
    }

    pub(super) fn tcp_server_tick(&mut self, now: Instant) {
        for h in self.svc.tcp_server.idle_clients(&self.streams, now) {
            self.log(console::level::INFO, &format!("TCP server: client {h} idle"));
            self.close_stream(h, now);
        }
    }

    /// Starts the TCP server; with `tls` its clients speak TLS with `tcp.server.tls_*`
    /// (a certificate or key that is not there fails before it listens).
    pub(super) fn start_tcp_server(
        &mut self,
        port: u16,
        auto: bool,
        tls: bool,
    ) -> Result<(), crate::tls::TlsFailure> {
        let config = if tls {
            Some(self.tls_server_config(&self.svc.tcp_server.cfg().tls.clone())?)
        } else {
            None
        };
        let listener = self.with_ctx(|s, ctx| s.tcp_server.start(port, auto, tls, ctx));
        if let Some(config) = config {
            self.svc.tls.listener(listener, config, true);
        }
        Ok(())
    }
}
