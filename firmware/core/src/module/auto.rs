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

use super::*;
use conns::{Open, Owner};

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

/// How often an auto-started UDP client tries again with `udp.client.auto_retry`
/// (protocol-facts: every 1.0 s).
pub const AUTO_RETRY: Duration = Duration::from_millis(1_000);

impl Module {
    /// Whether a service's auto start runs on the WLAN interface (`prefix` names the service
    /// in the log line when it waits for another interface).
    pub(super) fn auto_on_wlan(&mut self, prefix: &str, auto: &AutoStart) -> bool {
        let iface = auto.interface.resolve(self.cfg.default_interface);
        let wlan = iface == Interface::Wlan;
        if !wlan && auto.enabled {
            let name = iface.name();
            self.log(console::level::INFO, &format!("{prefix}: auto start waits for {name}"));
        }
        wlan
    }

    pub(super) fn network_came_up(&mut self, now: Instant) {
        let tcps = self.svc.tcp_server.cfg().auto.clone();
        if tcps.enabled
            && !self.svc.tcp_server.is_running()
            && self.auto_on_wlan("tcp.server", &tcps)
        {
            self.start_tcp_server(self.svc.tcp_server.cfg().port, true);
        }
        let has_udps = !self.streams.handles_of(StreamType::Udps).is_empty();
        let udps = self.svc.udp_server.cfg().auto.clone();
        if udps.enabled && !has_udps && self.auto_on_wlan("udp.server", &udps) {
            self.auto_begin(StreamType::Udps, String::new(), self.svc.udp_server.cfg().port, now);
        }
        let clients = [
            ("udp.client", StreamType::Udpc, self.cfg.udp_client.auto.clone()),
            ("tcp.client", StreamType::Tcpc, self.cfg.tcp_client.auto.clone()),
        ];
        for (prefix, kind, auto) in clients {
            if auto.enabled
                && !auto.host.is_empty()
                && auto.port != 0
                && self.auto_on_wlan(prefix, &auto)
            {
                self.auto_begin(kind, auto.host, auto.port, now);
            }
        }
    }

    pub(super) fn network_went_down(&mut self, now: Instant) {
        self.autos.clear();
        self.conns.forget(Owner::AutoStart);
        self.with_ctx(|s, ctx| s.tcp_server.network_down(ctx));
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

    /// Starts (or restarts, for a new round) a background opener.
    pub(super) fn auto_begin(&mut self, kind: StreamType, host: String, port: u16, now: Instant) {
        let auto = Auto {
            kind,
            host,
            port,
            to: None,
            tries: 0,
            rounds: 0,
            phase: AutoPhase::Wait { until: now, next_round: false },
        };
        self.autos.push(auto);
        let i = self.autos.len() - 1;
        self.auto_start_round(i, now);
    }

    /// Resolves (clients with a name) or goes straight to connecting / opening.
    pub(super) fn auto_start_round(&mut self, i: usize, now: Instant) {
        let auto = &mut self.autos[i];
        auto.tries = 0;
        if auto.kind == StreamType::Udps {
            return self.auto_connect(i, now);
        }
        let (host, port) = (auto.host.clone(), auto.port);
        if !self.auto_quiet(i) {
            self.log(console::level::STATUS, &format!("[Opening: {host}:{port}]"));
        }
        match vars::parse_ipv4(&host) {
            Some(ip) => {
                self.autos[i].to = Some((ip, port));
                self.auto_connect(i, now);
            }
            None => {
                let (id, deadline) = self.resolve(&host, now);
                self.autos[i].phase = AutoPhase::Resolve { id, deadline };
            }
        }
    }

    /// One connect attempt (TCP) or the socket open (UDP).
    pub(super) fn auto_connect(&mut self, i: usize, now: Instant) {
        let auto = &self.autos[i];
        match (auto.kind, auto.to) {
            (StreamType::Tcpc, Some(to)) => {
                let local_port = self.cfg.tcp_client.local_port;
                let conn = self.open_conn(Open::Tcp { to, local_port }, Owner::AutoStart);
                let deadline = now + self.cfg.tcp_client.connect_timeout;
                let auto = &mut self.autos[i];
                auto.tries += 1;
                auto.phase = AutoPhase::Connect { conn, deadline };
            }
            (kind, _) => {
                let local_port = if kind == StreamType::Udps { auto.port } else { 0 };
                let conn = self.open_conn(Open::Udp { local_port }, Owner::AutoStart);
                let deadline = now + UDP_OPEN_TIMEOUT;
                self.autos[i].phase = AutoPhase::UdpOpen { conn, deadline };
            }
        }
    }

    /// An attempt failed: the next attempt of the retry sequence, a new round, or the end.
    pub(super) fn auto_failed(&mut self, i: usize, now: Instant) {
        let auto = &self.autos[i];
        let period = self.cfg.tcp_client.retry_period;
        if auto.kind == StreamType::Tcpc
            && matches!(auto.phase, AutoPhase::Connect { .. })
            && auto.tries <= self.cfg.tcp_client.retries
        {
            self.autos[i].phase = AutoPhase::Wait { until: now + period, next_round: false };
            return;
        }
        let kind = auto.kind;
        let dns_failed = matches!(auto.phase, AutoPhase::Resolve { .. });
        let quiet = self.auto_quiet(i);
        if kind != StreamType::Udps && !quiet {
            self.log(console::level::STATUS, "[Open failed]");
        }
        if kind == StreamType::Udpc && dns_failed && self.cfg.udp_client.auto_retry {
            if !quiet {
                self.log(console::level::INFO, "Retrying every 1000 ms");
            }
            let auto = &mut self.autos[i];
            auto.rounds = auto.rounds.saturating_add(1);
            auto.phase = AutoPhase::Wait { until: now + AUTO_RETRY, next_round: true };
            return;
        }
        self.auto_round_over(i, now);
    }

    /// A UDP client retrying its lookup (`udp.client.auto_retry`) after the first failure
    /// says nothing until it opens: the first failure was logged in full, and four lines a
    /// second for as long as the name does not resolve would bury everything else.
    pub(super) fn auto_quiet(&self, i: usize) -> bool {
        let auto = &self.autos[i];
        auto.kind == StreamType::Udpc && auto.rounds > 0
    }

    /// The retry sequence failed or the stream dropped: another round, or the end.
    pub(super) fn auto_round_over(&mut self, i: usize, now: Instant) {
        let auto = &self.autos[i];
        let limit = self.cfg.tcp_client.auto_retries;
        if auto.kind == StreamType::Tcpc && (limit == 255 || auto.rounds < limit) {
            let period = self.cfg.tcp_client.retry_period;
            let auto = &mut self.autos[i];
            auto.rounds += 1;
            auto.phase = AutoPhase::Wait { until: now + period, next_round: true };
        } else {
            self.autos.remove(i);
        }
    }

    /// Whether a background opener waits for the lookup `id`.
    pub(super) fn auto_resolving(&self, id: u32) -> bool {
        self.autos.iter().any(|a| matches!(a.phase, AutoPhase::Resolve { id: w, .. } if w == id))
    }

    /// A background opener's lookup answered.
    pub(super) fn auto_resolved(&mut self, id: u32, address: Option<Ipv4>, now: Instant) {
        let wants = |a: &Auto| matches!(a.phase, AutoPhase::Resolve { id: w, .. } if w == id);
        let Some(i) = self.autos.iter().position(wants) else { return };
        match address {
            Some(ip) => {
                self.autos[i].to = Some((ip, self.autos[i].port));
                self.auto_connect(i, now);
            }
            None => {
                let host = self.autos[i].host.clone();
                if !self.auto_quiet(i) {
                    self.log(console::level::ERROR, &format!("Host not found: {host}"));
                }
                self.auto_failed(i, now);
            }
        }
    }

    /// An event for a connection a background opener is opening.
    pub(super) fn auto_conn_event(&mut self, event: &NetEvent, now: Instant) {
        match event {
            NetEvent::TcpConnected { conn, local_port }
            | NetEvent::UdpOpened { conn, local_port } => {
                let c = *conn;
                let Some(i) = self.autos.iter().position(|a| a.phase.attempt() == Some(c)) else {
                    return self.close_conn(c);
                };
                let auto = self.autos[i].clone();
                let local = (self.local_ip(), *local_port);
                let remote = if auto.kind == StreamType::Udps { None } else { auto.to };
                match self.add_stream(Stream::new(auto.kind, c, local, remote), now) {
                    Some(_) if auto.kind == StreamType::Tcpc => {
                        self.autos[i].phase = AutoPhase::Open { conn: c };
                        self.claim_bus(c);
                    }
                    Some(_) => {
                        self.autos.remove(i);
                        self.claim_bus(c);
                    }
                    None => self.auto_failed(i, now),
                }
            }
            NetEvent::ConnFailed { conn, .. } | NetEvent::Closed { conn } => {
                let c = *conn;
                if let Some(i) = self.autos.iter().position(|a| a.phase.attempt() == Some(c)) {
                    if let NetEvent::ConnFailed { reason, .. } = event {
                        let why = conn_failure_text(*reason);
                        self.log(console::level::INFO, &format!("Connect failed: {why}"));
                    }
                    self.auto_failed(i, now);
                }
            }
            _ => {}
        }
    }

    /// A stream auto start opened dropped: maybe a new round.
    pub(super) fn auto_stream_dropped(&mut self, conn: ConnId, now: Instant) {
        if let Some(i) = self.autos.iter().position(|a| a.phase == AutoPhase::Open { conn }) {
            self.auto_round_over(i, now);
        }
    }

    /// When the next background opener's timer is due.
    pub(super) fn auto_poll_at(&self) -> Option<Instant> {
        self.autos.iter().filter_map(Auto::deadline).min()
    }

    pub(super) fn auto_tick(&mut self, now: Instant) {
        while let Some(i) = self.autos.iter().position(|a| a.deadline().is_some_and(|d| d <= now)) {
            match self.autos[i].phase.clone() {
                AutoPhase::Resolve { .. } => {
                    let host = self.autos[i].host.clone();
                    if !self.auto_quiet(i) {
                        self.log(console::level::ERROR, &format!("DNS lookup timed out: {host}"));
                    }
                    self.auto_failed(i, now);
                }
                AutoPhase::Connect { conn, .. } | AutoPhase::UdpOpen { conn, .. } => {
                    self.close_conn(conn);
                    self.log(console::level::INFO, "Connect timed out");
                    self.auto_failed(i, now);
                }
                AutoPhase::Wait { next_round: true, .. } => self.auto_start_round(i, now),
                AutoPhase::Wait { next_round: false, .. } => self.auto_connect(i, now),
                AutoPhase::Open { .. } => {}
            }
        }
    }
}
