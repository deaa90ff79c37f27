//! The network commands (`network_up`, `network_down`, `network_restart`, `network_lookup`,
//! `ping`, `wlan_scan`), the DNS and ping clients, and what commands waiting for the Network Up
//! Sequence ([`crate::wlan`]) do when it settles.
//!
//! A part of its own: [`Network`] owns the WLAN state machine, whether the network was up,
//! and its settings (`wlan.*`, `network.dns.timeout`, `network.default_interface`); it feeds
//! the WLAN its events and timers through a [`Ctx`] (requests out, logs, request ids) and
//! reports each change ([`NetChange`]). The module routes the change: the status variables,
//! the other services' reaction to the network coming and going, and the commands of every
//! origin waiting for it to settle. What a network command waits for ([`NetWait`]) is the
//! origin's, like every waiting command.

use super::*;
use crate::config::NetworkConfig;
use conns::Open;
use ctx::Ctx;
use sockets::Client;

/// The network service: the WLAN and its Network Up Sequence.
#[derive(Debug)]
pub(super) struct Network {
    cfg: NetworkConfig,
    wlan: Wlan,
    /// Whether the network was up at the last change (to see it come and go).
    was_up: bool,
}

/// What a step of the WLAN changed, for the module to route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct NetChange {
    /// The Network Up Sequence settled: the commands waiting for it go on.
    pub(super) settled: Option<Settled>,
    /// The network came up (`Some(true)`) or went down (`Some(false)`).
    pub(super) up: Option<bool>,
}

impl Network {
    pub(super) fn new(vars: &Vars) -> Self {
        Self { cfg: NetworkConfig::from_vars(vars), wlan: Wlan::new(), was_up: false }
    }

    /// `wlan.*`, `network.*` changed.
    pub(super) fn configure(&mut self, vars: &Vars) {
        self.cfg = NetworkConfig::from_vars(vars);
    }

    pub(super) fn cfg(&self) -> &NetworkConfig {
        &self.cfg
    }

    /// The WLAN's state (status, join result, address, counters).
    pub(super) fn wlan(&self) -> &Wlan {
        &self.wlan
    }

    /// The network's own address now (`0.0.0.0` while it is down).
    pub(super) fn local_ip(&self) -> Ipv4 {
        self.wlan.ip().map_or([0; 4], |c| c.address)
    }

    /// Carries out what the WLAN state machine asked for and says what changed.
    fn apply(&mut self, out: wlan::Out, ctx: &mut Ctx<'_>) -> NetChange {
        for request in out.requests {
            ctx.act(Action::Net(request));
        }
        for (level, text) in out.logs {
            ctx.log(level, text);
        }
        let up = self.wlan.is_up();
        let changed = up != core::mem::replace(&mut self.was_up, up);
        NetChange { settled: out.settled, up: changed.then_some(up) }
    }

    /// At boot: joins when `wlan.auto_join.enabled`.
    pub(super) fn boot(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> Option<NetChange> {
        self.cfg.wlan.auto_join.then(|| self.up(now, ctx))
    }

    /// Brings the network up (if it is not); a command waits for [`NetChange::settled`].
    pub(super) fn up(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> NetChange {
        let mut out = wlan::Out::default();
        self.wlan.up(&self.cfg.wlan, now, ctx.ids, &mut out);
        self.apply(out, ctx)
    }

    /// `network_down`: leaves the network (nobody waits for this to settle).
    pub(super) fn down(&mut self, ctx: &mut Ctx<'_>) -> NetChange {
        let mut out = wlan::Out::default();
        self.wlan.down(&mut out);
        out.settled = None;
        self.apply(out, ctx)
    }

    /// An event for the WLAN.
    pub(super) fn event(&mut self, event: &NetEvent, now: Instant, ctx: &mut Ctx<'_>) -> NetChange {
        let mut out = wlan::Out::default();
        self.wlan.event(event, &self.cfg.wlan, now, ctx.ids, &mut out);
        self.apply(out, ctx)
    }

    /// When the Network Up Sequence's next timer is due.
    pub(super) fn poll_at(&self) -> Option<Instant> {
        self.wlan.poll_at()
    }

    pub(super) fn tick(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> NetChange {
        let mut out = wlan::Out::default();
        self.wlan.tick(&self.cfg.wlan, now, ctx.ids, &mut out);
        self.apply(out, ctx)
    }

    /// Checks the interface argument of the `network_*` commands: `wlan` (or
    /// `network.default_interface` when none is given) goes on; `softap` is code 1 (not
    /// supported yet), anything else code 7.
    pub(super) fn interface(
        &self,
        arg: Option<&String>,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), ResultCode> {
        let iface = arg.map_or(self.cfg.default_interface.name(), String::as_str);
        match iface {
            "wlan" => Ok(()),
            "softap" => {
                ctx.log(console::level::ERROR, "The softap interface is not supported");
                Err(ResultCode::FAILED)
            }
            _ => Err(ResultCode::BAD_ARGS),
        }
    }

    /// `wlan_scan`: asks for a scan with the `wlan.scan.*` settings; its id and deadline.
    pub(super) fn scan(&self, now: Instant, ctx: &mut Ctx<'_>) -> (u32, Instant) {
        let id = ctx.ids.fresh();
        let params = self.cfg.wlan.scan;
        ctx.act(Action::Net(NetRequest::Scan { id, ssid: None, bssid: None, params }));
        (id, now + wlan::scan_timeout(&params))
    }

    /// The ping client: one echo request to `to`; its id and deadline.
    pub(super) fn ping(&self, to: Ipv4, now: Instant, ctx: &mut Ctx<'_>) -> (u32, Instant) {
        let id = ctx.ids.fresh();
        ctx.act(Action::Net(NetRequest::Ping { id, to }));
        (id, now + wlan::PING_TIMEOUT)
    }
}

/// What a network command waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum NetWait {
    /// Waiting for the Network Up Sequence to settle, then doing the rest of the command.
    NetUp(AfterUp),
    /// `wlan_scan`.
    Scan { id: u32, deadline: Instant, verbose: bool },
    /// `network_lookup`, or the name lookup of `ping <host>`, `tcp_client`, `udp_client`.
    Lookup { id: u32, deadline: Instant, host: String, then: Then },
    /// `ping`.
    Ping { id: u32, deadline: Instant, to: Ipv4 },
}

impl NetWait {
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self {
            NetWait::NetUp(_) => None,
            NetWait::Scan { deadline, .. }
            | NetWait::Lookup { deadline, .. }
            | NetWait::Ping { deadline, .. } => Some(*deadline),
        }
    }
}

/// What a name lookup is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Then {
    /// `network_lookup`: answer the address.
    Answer,
    Ping,
    Open {
        client: Client,
        port: u16,
    },
}

/// What a command that needs the network does once it is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum AfterUp {
    /// `network_up`, `network_restart`: answer `Success`.
    Respond,
    Lookup(String),
    Ping(PingTarget),
    /// `tcp_client`, `udp_client`.
    Open {
        client: Client,
        host: String,
        port: u16,
    },
    /// `tcp_server start`, `tls_server start` (`tls`).
    TcpServer {
        port: u16,
        tls: bool,
    },
    /// `udp_server start`.
    UdpServer(u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum PingTarget {
    Gateway,
    Addr(Ipv4),
    Host(String),
}

impl Module {
    /// Routes a change of the network: the status variables, the services' reaction to it
    /// coming or going, and the commands waiting for it to settle.
    pub(super) fn net_changed(&mut self, change: NetChange, now: Instant) {
        self.sync_net_vars();
        match change.up {
            Some(true) => self.network_came_up(now),
            Some(false) => self.network_went_down(now),
            None => {}
        }
        if change.up.is_some() {
            self.terminal_sync();
        }
        if let Some(settled) = change.settled {
            // Every origin whose command waits for the network goes on, the current one first.
            let waiting = |p: &Option<Pending>| matches!(p, Some(Pending::Net(NetWait::NetUp(_))));
            let others: Vec<Origin> =
                self.jobs.iter().filter(|j| waiting(&j.pending)).map(|j| j.origin).collect();
            if waiting(&self.pending) {
                self.settled(settled, now);
            }
            for origin in others {
                self.in_origin(Some(origin), |m| m.settled(settled, now));
            }
        }
    }

    /// The Network Up Sequence settled: go on with the command that waited for it.
    pub(super) fn settled(&mut self, settled: Settled, now: Instant) {
        let Some(Pending::Net(NetWait::NetUp(after))) = self.pending.clone() else { return };
        match (settled, after) {
            (Settled::Failed, AfterUp::Open { .. }) => {
                self.log(console::level::STATUS, "[Open failed]");
                self.finish(ResultCode::FAILED, None, now);
            }
            (Settled::Failed, _) => self.finish(ResultCode::FAILED, None, now),
            (Settled::Up, AfterUp::Open { client, host, port }) => match vars::parse_ipv4(&host) {
                Some(ip) => self.open_to(client, host, (ip, port), now),
                None => self.lookup(host, Then::Open { client, port }, now),
            },
            (Settled::Up, AfterUp::TcpServer { port, tls }) => {
                if self.svc.tcp_server.is_running() {
                    // Auto-started while the command waited for the network.
                    self.log(console::level::ERROR, "TCP server already running");
                    return self.finish(ResultCode::FAILED, None, now);
                }
                match self.start_tcp_server(port, false, tls) {
                    Ok(()) => self.finish(ResultCode::SUCCESS, Some("Success"), now),
                    Err(failure) => {
                        self.log(console::level::ERROR, &failure.to_string());
                        self.finish(ResultCode::FAILED, None, now);
                    }
                }
            }
            (Settled::Up, AfterUp::UdpServer(port)) => {
                let conn = self.open_conn(Open::Udp { local_port: port }, self.command_owner());
                let deadline = now + UDP_OPEN_TIMEOUT;
                self.pending = Some(Pending::Stream(StreamWait::UdpOpen {
                    conn,
                    deadline,
                    kind: StreamType::Udps,
                    remote: None,
                }));
            }
            (Settled::Up, AfterUp::Respond) => {
                self.finish(ResultCode::SUCCESS, Some("Success"), now)
            }
            (Settled::Up, AfterUp::Lookup(host)) => self.lookup(host, Then::Answer, now),
            (Settled::Up, AfterUp::Ping(PingTarget::Addr(to))) => self.ping(to, now),
            (Settled::Up, AfterUp::Ping(PingTarget::Host(host))) => {
                self.lookup(host, Then::Ping, now)
            }
            (Settled::Up, AfterUp::Ping(PingTarget::Gateway)) => {
                let gateway = self.svc.network.wlan().ip().map(|ip| ip.gateway);
                match gateway.filter(|gw| *gw != [0; 4]) {
                    Some(gateway) => self.ping(gateway, now),
                    None => {
                        self.log(console::level::ERROR, "No gateway");
                        self.finish(ResultCode::FAILED, None, now);
                    }
                }
            }
        }
    }

    /// Brings the network up (if it is not) and then does `after`.
    pub(super) fn with_network(&mut self, after: AfterUp, now: Instant) {
        self.pending = Some(Pending::Net(NetWait::NetUp(after)));
        let change = self.with_ctx(|s, ctx| s.network.up(now, ctx));
        self.net_changed(change, now);
    }

    /// A command's name lookup: the command waits for the answer.
    pub(super) fn lookup(&mut self, host: String, then: Then, now: Instant) {
        let (id, deadline) = self.resolve(&host, now);
        self.pending = Some(Pending::Net(NetWait::Lookup { id, deadline, host, then }));
    }

    /// A name lookup (see [`ctx::Ctx::resolve`]).
    pub(super) fn resolve(&mut self, host: &str, now: Instant) -> (u32, Instant) {
        self.with_ctx(|_, ctx| ctx.resolve(host, now))
    }

    pub(super) fn ping(&mut self, to: Ipv4, now: Instant) {
        let (id, deadline) = self.with_ctx(|s, ctx| s.network.ping(to, now, ctx));
        self.pending = Some(Pending::Net(NetWait::Ping { id, deadline, to }));
    }

    /// The read-only status variables from the WLAN state.
    pub(super) fn sync_net_vars(&mut self) {
        let wlan = self.svc.network.wlan();
        let status = (wlan.status() as u8).to_string();
        self.vars.set_internal(Var::WlanNetworkStatus, status.as_bytes());
        self.vars.set_internal(Var::WlanJoinResult, wlan.result().name().as_bytes());
        let (ip, netmask, gateway, dns) = match wlan.ip() {
            Some(c) => (
                wlan::ip_text(c.address),
                wlan::ip_text(c.netmask),
                wlan::ip_text(c.gateway),
                c.dns.iter().map(|d| wlan::ip_text(*d)).collect::<Vec<_>>().join(","),
            ),
            None => {
                let zero = wlan::ip_text([0; 4]);
                (zero.clone(), zero.clone(), zero, String::new())
            }
        };
        self.vars.set_internal(Var::WlanNetworkIp, ip.as_bytes());
        self.vars.set_internal(Var::WlanNetworkNetmask, netmask.as_bytes());
        self.vars.set_internal(Var::WlanNetworkGateway, gateway.as_bytes());
        self.vars.set_internal(Var::WlanNetworkDns, dns.as_bytes());
    }

    /// Checks the interface argument of the `network_*` commands ([`Network::interface`]).
    pub(super) fn wlan_interface(&mut self, arg: Option<&String>) -> Result<(), ResultCode> {
        self.with_ctx(|s, ctx| s.network.interface(arg, ctx))
    }

    pub(super) fn network_command(
        &mut self,
        id: CommandId,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        match id {
            CommandId::NetworkUp => {
                let mut interactive = false;
                let mut iface = None;
                for arg in args {
                    match arg.as_str() {
                        "-s" => interactive = true,
                        flag if flag.starts_with('-') => {
                            return Some((ResultCode::UNKNOWN_OPTION, None));
                        }
                        _ if iface.is_none() => iface = Some(arg),
                        _ => return Some((ResultCode::TOO_MANY_ARGS, None)),
                    }
                }
                if let Err(code) = self.wlan_interface(iface) {
                    return Some((code, None));
                }
                if interactive {
                    self.log(
                        console::level::ERROR,
                        "Interactive setup (network_up -s) is not supported",
                    );
                    return Some((ResultCode::FAILED, None));
                }
                self.with_network(AfterUp::Respond, now);
                None
            }
            CommandId::NetworkDown | CommandId::NetworkRestart => {
                if let Err(code) = self.wlan_interface(args.first()) {
                    return Some((code, None));
                }
                let change = self.with_ctx(|s, ctx| s.network.down(ctx));
                self.net_changed(change, now);
                if id == CommandId::NetworkDown {
                    return Some((ResultCode::SUCCESS, Some("Success".to_string())));
                }
                self.with_network(AfterUp::Respond, now);
                None
            }
            CommandId::WlanScan => {
                let verbose = match args.first().map(String::as_str) {
                    None => false,
                    Some("-v") => true,
                    Some(_) => return Some((ResultCode::UNKNOWN_OPTION, None)),
                };
                self.buffer_as("wlan_scan");
                let (id, deadline) = self.with_ctx(|s, ctx| s.network.scan(now, ctx));
                self.pending = Some(Pending::Net(NetWait::Scan { id, deadline, verbose }));
                None
            }
            CommandId::NetworkLookup => {
                let host = vars::unescape_plain(&args[0]);
                // An address answers itself: no lookup, no network needed.
                if let Some(ip) = vars::parse_ipv4(&host) {
                    return Some((ResultCode::SUCCESS, Some(wlan::ip_text(ip))));
                }
                self.with_network(AfterUp::Lookup(host), now);
                None
            }
            CommandId::Ping => {
                let target = match args[0].as_str() {
                    "-g" => PingTarget::Gateway,
                    arg => {
                        let host = vars::unescape_plain(arg);
                        match vars::parse_ipv4(&host) {
                            Some(ip) => PingTarget::Addr(ip),
                            None if host.starts_with('-') => {
                                return Some((ResultCode::UNKNOWN_OPTION, None));
                            }
                            None => PingTarget::Host(host),
                        }
                    }
                };
                self.with_network(AfterUp::Ping(target), now);
                None
            }
            _ => Some((ResultCode::UNKNOWN_COMMAND, None)),
        }
    }

    /// A network command's timer ran out.
    pub(super) fn net_timed_out(&mut self, wait: NetWait, now: Instant) {
        let note = match wait {
            NetWait::Scan { .. } => "Scan timed out".to_string(),
            NetWait::Lookup { host, then, .. } => {
                self.log(console::level::ERROR, &format!("DNS lookup timed out: {host}"));
                if matches!(then, Then::Open { .. }) {
                    self.log(console::level::STATUS, "[Open failed]");
                }
                return self.finish(ResultCode::FAILED, None, now);
            }
            NetWait::Ping { to, .. } => format!("Ping timed out: {}", wlan::ip_text(to)),
            // The Network Up Sequence keeps its own timers and always settles.
            NetWait::NetUp(_) => return,
        };
        self.log(console::level::ERROR, &note);
        self.finish(ResultCode::FAILED, None, now);
    }

    pub(super) fn wlan_poll_at(&self) -> Option<Instant> {
        self.svc.network.poll_at()
    }

    pub(super) fn wlan_tick(&mut self, now: Instant) {
        let change = self.with_ctx(|s, ctx| s.network.tick(now, ctx));
        self.net_changed(change, now);
    }

    /// An event for the WLAN (not a connection's, not a command's answer).
    pub(super) fn wlan_event(&mut self, event: &NetEvent, now: Instant) {
        let change = self.with_ctx(|s, ctx| s.network.event(event, now, ctx));
        self.net_changed(change, now);
    }

    /// Whether an event answers the request of the network command being served (a scan's
    /// results, a lookup, a ping reply); the WLAN's own probe scans go to the WLAN.
    pub(super) fn answers_net_command(&self, event: &NetEvent) -> bool {
        match (event, &self.pending) {
            (NetEvent::ScanDone { id, .. }, Some(Pending::Net(NetWait::Scan { id: want, .. })))
            | (
                NetEvent::Resolved { id, .. },
                Some(Pending::Net(NetWait::Lookup { id: want, .. })),
            )
            | (
                NetEvent::PingReply { id, .. },
                Some(Pending::Net(NetWait::Ping { id: want, .. })),
            ) => id == want,
            _ => false,
        }
    }

    /// The answer to the network command's request.
    pub(super) fn net_command_event(&mut self, event: NetEvent, now: Instant) {
        match (&event, self.pending.clone()) {
            (
                NetEvent::ScanDone { id, results },
                Some(Pending::Net(NetWait::Scan { id: want, verbose, .. })),
            ) if *id == want => {
                let body = wlan::scan_body(results, verbose);
                self.finish(ResultCode::SUCCESS, Some(&body), now);
            }
            (
                NetEvent::Resolved { id, address },
                Some(Pending::Net(NetWait::Lookup { id: want, host, then, .. })),
            ) if *id == want => {
                match (address, then) {
                    (Some(address), Then::Ping) => self.ping(*address, now),
                    (Some(address), Then::Answer) => {
                        self.finish(ResultCode::SUCCESS, Some(&wlan::ip_text(*address)), now)
                    }
                    (Some(address), Then::Open { client, port }) => {
                        self.open_to(client, host, (*address, port), now)
                    }
                    (None, then) => {
                        self.log(console::level::ERROR, &format!("Host not found: {host}"));
                        if matches!(then, Then::Open { .. }) {
                            self.log(console::level::STATUS, "[Open failed]");
                        }
                        self.finish(ResultCode::FAILED, None, now)
                    }
                };
            }
            (
                NetEvent::PingReply { id, rtt_ms },
                Some(Pending::Net(NetWait::Ping { id: want, to, .. })),
            ) if *id == want => {
                let body = format!("Ping reply from {}: {rtt_ms} ms", wlan::ip_text(to));
                self.finish(ResultCode::SUCCESS, Some(&body), now);
            }
            _ => {}
        }
    }
}
