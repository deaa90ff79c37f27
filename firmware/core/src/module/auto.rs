//! Auto start (`tcp.client.auto_start`, `tcp.server.auto_start`, `udp.client.auto_start`,
//! `udp.server.auto_start`). Decisions (assumed):
//!
//! * They run each time the network comes up (after the Network Up Sequence reaches step 7),
//!   in the background: the console stays free and no command is answered; progress shows
//!   only in logs (`[Opening: …]`, `[Opened: N]`, `[Open failed]`).
//! * Each runs on the interface its `*.auto_interface` names; `default` means
//!   `network.default_interface`. Only the WLAN interface exists here, so one set to the soft
//!   AP does not start when the WLAN comes up (log `<prefix>: auto start waits for softap`).
//! * The TCP client needs `tcp.client.remote_host` and a non-zero `remote_port`; it runs the
//!   same connect retry sequence as `tcp_client`. When that sequence fails, or the open
//!   stream drops (peer close or reset), a new round starts after `tcp.client.retry_period`
//!   ms, up to `tcp.client.auto_retries` rounds (0: none, 255: forever); the round counter
//!   resets when the network goes down. Closing the stream with `stream_close` ends it (no
//!   reconnect).
//! * The UDP client needs `udp.client.remote_host` (its `remote_port` defaults to 3000); the
//!   UDP server opens on `udp.server.port`. With `udp.client.auto_retry` the UDP client looks
//!   the name up again every second for as long as the network stays up when it does not
//!   resolve (protocol-facts: "retries every 1.0 s, only detects DNS failure"); the first
//!   failure is logged (`Host not found: …`, `[Open failed]`, `Retrying every 1000 ms`), the
//!   retries are silent until one opens the stream (`[Opened: N]`). Any other failure, and
//!   every failure without `auto_retry` or of the UDP server, ends it.
//! * When the network goes down every network stream is closed (`[Closed: N]`, a
//!   [`NetRequest::Close`] to the platform), the TCP server stops listening and the
//!   background openers are dropped.
//!
//! A part of its own: [`Autos`] owns the background openers and the settings they read
//! (`tcp.client.*`, `udp.client.*`, `network.default_interface`), gets its connections'
//! events (owner [`Owner::AutoStart`]) and its lookups' answers, runs its own timers, and
//! opens, resolves and adds streams through a [`Ctx`]. The module starts it when the network
//! comes up (the servers' auto start is theirs) and tells it of streams that closed.

use super::*;
use crate::config::AutoConfig;
use conns::{Open, Owner};
use ctx::Ctx;

/// A stream an `*.auto_start` variable opens when the network comes up, in the background
/// (the console stays free): `tcp.client.*` (`TCPC`, with the connect retry sequence and
/// `tcp.client.auto_retries`), `udp.client.*` (`UDPC`), `udp.server.*` (`UDPS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Auto {
    pub(super) kind: StreamType,
    /// Clients: `remote_host`; the UDP server: empty.
    pub(super) host: String,
    /// Clients: `remote_port`; the UDP server: its local port.
    pub(super) port: u16,
    /// Clients: the resolved remote.
    pub(super) to: Option<Endpoint>,
    /// Connect attempts in this round (the TCP client's retry sequence).
    pub(super) tries: u32,
    /// Rounds retried after the first (`tcp.client.auto_retries`).
    pub(super) rounds: u32,
    pub(super) phase: AutoPhase,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum AutoPhase {
    Resolve {
        id: u32,
        deadline: Instant,
    },
    Connect {
        conn: ConnId,
        deadline: Instant,
    },
    UdpOpen {
        conn: ConnId,
        deadline: Instant,
    },
    /// Before the next connect attempt or round.
    Wait {
        until: Instant,
        next_round: bool,
    },
    /// The TCP client's stream is open on `conn` (watched to reconnect when it drops).
    Open {
        conn: ConnId,
    },
}

impl AutoPhase {
    /// The connection of a connect attempt or a UDP open in progress.
    pub(super) fn attempt(&self) -> Option<ConnId> {
        match self {
            AutoPhase::Connect { conn, .. } | AutoPhase::UdpOpen { conn, .. } => Some(*conn),
            _ => None,
        }
    }
}

impl Auto {
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            AutoPhase::Resolve { deadline, .. }
            | AutoPhase::Connect { deadline, .. }
            | AutoPhase::UdpOpen { deadline, .. } => Some(deadline),
            AutoPhase::Wait { until, .. } => Some(until),
            AutoPhase::Open { .. } => None,
        }
    }
}

/// The auto start service: its settings and the openers running in the background.
#[derive(Debug)]
pub(super) struct Autos {
    cfg: AutoConfig,
    openers: Vec<Auto>,
}

/// How often an auto-started UDP client tries again with `udp.client.auto_retry`
/// (protocol-facts: every 1.0 s).
pub const AUTO_RETRY: Duration = Duration::from_millis(1_000);

impl Autos {
    pub(super) fn new(vars: &Vars) -> Self {
        Self { cfg: AutoConfig::from_vars(vars), openers: Vec::new() }
    }

    /// `tcp.client.*`, `udp.client.*` or `network.default_interface` changed.
    pub(super) fn configure(&mut self, vars: &Vars) {
        self.cfg = AutoConfig::from_vars(vars);
    }

    /// Whether a service's auto start runs on the WLAN interface (`prefix` names the service
    /// in the log line when it waits for another interface).
    pub(super) fn on_wlan(&self, prefix: &str, auto: &AutoStart, ctx: &mut Ctx<'_>) -> bool {
        let iface = auto.interface.resolve(self.cfg.default_interface);
        let wlan = iface == Interface::Wlan;
        if !wlan && auto.enabled {
            let name = iface.name();
            ctx.log(console::level::INFO, format!("{prefix}: auto start waits for {name}"));
        }
        wlan
    }

    /// The network came up: the clients' auto start (after the servers', which the module
    /// starts first). `udp_server`: the UDP server's auto start and port, when it has none
    /// open yet.
    pub(super) fn network_up(
        &mut self,
        udp_server: Option<(AutoStart, u16)>,
        now: Instant,
        ctx: &mut Ctx<'_>,
    ) {
        if let Some((udps, port)) = udp_server
            && udps.enabled
            && self.on_wlan("udp.server", &udps, ctx)
        {
            self.begin(StreamType::Udps, String::new(), port, now, ctx);
        }
        let clients = [
            ("udp.client", StreamType::Udpc, self.cfg.udp_client.auto.clone()),
            (
                "tcp.client",
                if self.cfg.tcp_client.tls { StreamType::Tlsc } else { StreamType::Tcpc },
                self.cfg.tcp_client.auto.clone(),
            ),
        ];
        for (prefix, kind, auto) in clients {
            if auto.enabled
                && !auto.host.is_empty()
                && auto.port != 0
                && self.on_wlan(prefix, &auto, ctx)
            {
                self.begin(kind, auto.host, auto.port, now, ctx);
            }
        }
    }

    /// The network went down: the openers go (the platform drops their connections).
    pub(super) fn network_down(&mut self, ctx: &mut Ctx<'_>) {
        self.openers.clear();
        ctx.conns.forget(Owner::AutoStart);
    }

    /// Starts (or restarts, for a new round) a background opener.
    fn begin(
        &mut self,
        kind: StreamType,
        host: String,
        port: u16,
        now: Instant,
        ctx: &mut Ctx<'_>,
    ) {
        let auto = Auto {
            kind,
            host,
            port,
            to: None,
            tries: 0,
            rounds: 0,
            phase: AutoPhase::Wait { until: now, next_round: false },
        };
        self.openers.push(auto);
        let i = self.openers.len() - 1;
        self.start_round(i, now, ctx);
    }

    /// Resolves (clients with a name) or goes straight to connecting / opening.
    fn start_round(&mut self, i: usize, now: Instant, ctx: &mut Ctx<'_>) {
        let auto = &mut self.openers[i];
        auto.tries = 0;
        if auto.kind == StreamType::Udps {
            return self.connect(i, now, ctx);
        }
        let (host, port) = (auto.host.clone(), auto.port);
        if !self.quiet(i) {
            ctx.log(console::level::STATUS, format!("[Opening: {host}:{port}]"));
        }
        match vars::parse_ipv4(&host) {
            Some(ip) => {
                self.openers[i].to = Some((ip, port));
                self.connect(i, now, ctx);
            }
            None => {
                let (id, deadline) = ctx.resolve(&host, now);
                self.openers[i].phase = AutoPhase::Resolve { id, deadline };
            }
        }
    }

    /// One connect attempt (TCP) or the socket open (UDP).
    fn connect(&mut self, i: usize, now: Instant, ctx: &mut Ctx<'_>) {
        let auto = &self.openers[i];
        match (auto.kind, auto.to) {
            (StreamType::Tcpc | StreamType::Tlsc, Some(to)) => {
                let local_port = self.cfg.tcp_client.local_port;
                let conn = ctx.open_conn(Open::Tcp { to, local_port }, Owner::AutoStart);
                if auto.kind == StreamType::Tlsc {
                    let host = &auto.host;
                    ctx.want_tls(
                        conn,
                        crate::vars::parse_ipv4(host).is_none().then(|| host.clone()),
                    );
                }
                let deadline = now + self.cfg.tcp_client.connect_timeout;
                let auto = &mut self.openers[i];
                auto.tries += 1;
                auto.phase = AutoPhase::Connect { conn, deadline };
            }
            (kind, _) => {
                let local_port = if kind == StreamType::Udps { auto.port } else { 0 };
                let conn = ctx.open_conn(Open::Udp { local_port }, Owner::AutoStart);
                let deadline = now + UDP_OPEN_TIMEOUT;
                self.openers[i].phase = AutoPhase::UdpOpen { conn, deadline };
            }
        }
    }

    /// An attempt failed: the next attempt of the retry sequence, a new round, or the end.
    fn failed(&mut self, i: usize, now: Instant, ctx: &mut Ctx<'_>) {
        let auto = &self.openers[i];
        let period = self.cfg.tcp_client.retry_period;
        if matches!(auto.kind, StreamType::Tcpc | StreamType::Tlsc)
            && matches!(auto.phase, AutoPhase::Connect { .. })
            && auto.tries <= self.cfg.tcp_client.retries
        {
            self.openers[i].phase = AutoPhase::Wait { until: now + period, next_round: false };
            return;
        }
        let kind = auto.kind;
        let dns_failed = matches!(auto.phase, AutoPhase::Resolve { .. });
        let quiet = self.quiet(i);
        if kind != StreamType::Udps && !quiet {
            ctx.log(console::level::STATUS, "[Open failed]");
        }
        if kind == StreamType::Udpc && dns_failed && self.cfg.udp_client.auto_retry {
            if !quiet {
                ctx.log(console::level::INFO, "Retrying every 1000 ms");
            }
            let auto = &mut self.openers[i];
            auto.rounds = auto.rounds.saturating_add(1);
            auto.phase = AutoPhase::Wait { until: now + AUTO_RETRY, next_round: true };
            return;
        }
        self.round_over(i, now);
    }

    /// A UDP client retrying its lookup (`udp.client.auto_retry`) after the first failure
    /// says nothing until it opens: the first failure was logged in full, and four lines a
    /// second for as long as the name does not resolve would bury everything else.
    fn quiet(&self, i: usize) -> bool {
        let auto = &self.openers[i];
        auto.kind == StreamType::Udpc && auto.rounds > 0
    }

    /// The retry sequence failed or the stream dropped: another round, or the end.
    fn round_over(&mut self, i: usize, now: Instant) {
        let auto = &self.openers[i];
        let limit = self.cfg.tcp_client.auto_retries;
        if matches!(auto.kind, StreamType::Tcpc | StreamType::Tlsc)
            && (limit == 255 || auto.rounds < limit)
        {
            let period = self.cfg.tcp_client.retry_period;
            let auto = &mut self.openers[i];
            auto.rounds += 1;
            auto.phase = AutoPhase::Wait { until: now + period, next_round: true };
        } else {
            self.openers.remove(i);
        }
    }

    /// Whether a background opener waits for the lookup `id`.
    pub(super) fn resolving(&self, id: u32) -> bool {
        self.openers.iter().any(|a| matches!(a.phase, AutoPhase::Resolve { id: w, .. } if w == id))
    }

    /// A background opener's lookup answered.
    pub(super) fn resolved(
        &mut self,
        id: u32,
        address: Option<Ipv4>,
        now: Instant,
        ctx: &mut Ctx<'_>,
    ) {
        let wants = |a: &Auto| matches!(a.phase, AutoPhase::Resolve { id: w, .. } if w == id);
        let Some(i) = self.openers.iter().position(wants) else { return };
        match address {
            Some(ip) => {
                self.openers[i].to = Some((ip, self.openers[i].port));
                self.connect(i, now, ctx);
            }
            None => {
                let host = self.openers[i].host.clone();
                if !self.quiet(i) {
                    ctx.log(console::level::ERROR, format!("Host not found: {host}"));
                }
                self.failed(i, now, ctx);
            }
        }
    }

    /// An event for a connection a background opener is opening. Returns the connection of
    /// a stream it opened, which may stream to the bus.
    pub(super) fn conn_event(
        &mut self,
        event: &NetEvent,
        now: Instant,
        ctx: &mut Ctx<'_>,
    ) -> Option<ConnId> {
        match event {
            NetEvent::TcpConnected { conn, local_port }
            | NetEvent::UdpOpened { conn, local_port } => {
                let c = *conn;
                let Some(i) = self.openers.iter().position(|a| a.phase.attempt() == Some(c)) else {
                    ctx.close_conn(c);
                    return None;
                };
                let auto = self.openers[i].clone();
                let local = (ctx.local_ip, *local_port);
                let remote = if auto.kind == StreamType::Udps { None } else { auto.to };
                match ctx.add_stream(Stream::new(auto.kind, c, local, remote), now) {
                    Some(_) if matches!(auto.kind, StreamType::Tcpc | StreamType::Tlsc) => {
                        self.openers[i].phase = AutoPhase::Open { conn: c };
                        Some(c)
                    }
                    Some(_) => {
                        self.openers.remove(i);
                        Some(c)
                    }
                    None => {
                        self.failed(i, now, ctx);
                        None
                    }
                }
            }
            NetEvent::ConnFailed { conn, .. } | NetEvent::Closed { conn } => {
                let c = *conn;
                if let Some(i) = self.openers.iter().position(|a| a.phase.attempt() == Some(c)) {
                    if let NetEvent::ConnFailed { reason, .. } = event {
                        let why = conn_failure_text(*reason);
                        ctx.log(console::level::INFO, format!("Connect failed: {why}"));
                    }
                    self.failed(i, now, ctx);
                }
                None
            }
            _ => None,
        }
    }

    /// A stream auto start opened dropped: maybe a new round.
    pub(super) fn stream_dropped(&mut self, conn: ConnId, now: Instant) {
        if let Some(i) = self.openers.iter().position(|a| a.phase == AutoPhase::Open { conn }) {
            self.round_over(i, now);
        }
    }

    /// A stream on `conn` was closed on purpose (`stream_close`): an auto-started client
    /// does not reconnect.
    pub(super) fn stream_closed_on_purpose(&mut self, conn: ConnId) {
        self.openers.retain(|a| a.phase != AutoPhase::Open { conn });
    }

    /// When the next background opener's timer is due.
    pub(super) fn poll_at(&self) -> Option<Instant> {
        self.openers.iter().filter_map(Auto::deadline).min()
    }

    pub(super) fn tick(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        while let Some(i) = self.openers.iter().position(|a| a.deadline().is_some_and(|d| d <= now))
        {
            match self.openers[i].phase.clone() {
                AutoPhase::Resolve { .. } => {
                    let host = self.openers[i].host.clone();
                    if !self.quiet(i) {
                        ctx.log(console::level::ERROR, format!("DNS lookup timed out: {host}"));
                    }
                    self.failed(i, now, ctx);
                }
                AutoPhase::Connect { conn, .. } | AutoPhase::UdpOpen { conn, .. } => {
                    ctx.close_conn(conn);
                    ctx.log(console::level::INFO, "Connect timed out");
                    self.failed(i, now, ctx);
                }
                AutoPhase::Wait { next_round: true, .. } => self.start_round(i, now, ctx),
                AutoPhase::Wait { next_round: false, .. } => self.connect(i, now, ctx),
                AutoPhase::Open { .. } => {}
            }
        }
    }
}

impl Module {
    /// The network came up: each service's auto start, the TCP server first.
    pub(super) fn network_came_up(&mut self, now: Instant) {
        let tcps = self.svc.tcp_server.cfg().auto.clone();
        if tcps.enabled
            && !self.svc.tcp_server.is_running()
            && self.with_ctx(|s, ctx| s.autos.on_wlan("tcp.server", &tcps, ctx))
        {
            let tls = self.svc.tcp_server.cfg().tls.enabled;
            if let Err(failure) = self.start_tcp_server(self.svc.tcp_server.cfg().port, true, tls) {
                self.log(console::level::ERROR, &failure.to_string());
            }
        }
        let has_udps = !self.streams.handles_of(StreamType::Udps).is_empty();
        let udps = self.svc.udp_server.cfg();
        let udp_server = (!has_udps).then(|| (udps.auto.clone(), udps.port));
        self.with_ctx(|s, ctx| s.autos.network_up(udp_server, now, ctx));
        self.http_server_sync();
    }

    /// The network went down: the openers and the listener go, every network stream closes.
    pub(super) fn network_went_down(&mut self, now: Instant) {
        self.with_ctx(|s, ctx| {
            s.autos.network_down(ctx);
            s.tcp_server.network_down(ctx);
            s.http_server.stop(ctx);
            s.websockets.network_down(ctx);
        });
        let open: Vec<ConnId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.kind.is_network() && !s.closed)
            .map(|(_, s)| s.conn)
            .collect();
        for conn in open {
            self.close_conn(conn);
            self.stream_closed(conn, now);
        }
    }

    pub(super) fn auto_conn_event(&mut self, event: &NetEvent, now: Instant) {
        if let Some(conn) = self.with_ctx(|s, ctx| s.autos.conn_event(event, now, ctx)) {
            self.claim_bus(conn);
        }
    }

    pub(super) fn auto_resolved(&mut self, id: u32, address: Option<Ipv4>, now: Instant) {
        self.with_ctx(|s, ctx| s.autos.resolved(id, address, now, ctx));
    }

    pub(super) fn auto_poll_at(&self) -> Option<Instant> {
        self.svc.autos.poll_at()
    }

    pub(super) fn auto_tick(&mut self, now: Instant) {
        self.with_ctx(|s, ctx| s.autos.tick(now, ctx));
    }
}
