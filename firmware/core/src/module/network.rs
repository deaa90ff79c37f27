//! The network commands (`network_up`, `network_down`, `network_restart`, `network_lookup`,
//! `ping`, `wlan_scan`), the DNS and ping clients, and what commands waiting for the Network Up
//! Sequence ([`crate::wlan`]) do when it settles.

use super::*;
use conns::Open;

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
        udp: bool,
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
        udp: bool,
        host: String,
        port: u16,
    },
    /// `tcp_server start`.
    TcpServer(u16),
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
    /// Carries out what the WLAN state machine asked for and answers a command waiting on it.
    pub(super) fn apply(&mut self, out: wlan::Out, now: Instant) {
        for request in out.requests {
            self.actions.push_back(Action::Net(request));
        }
        for (level, text) in &out.logs {
            self.log(*level, text);
        }
        self.sync_net_vars();
        let up = self.wlan.is_up();
        if up != core::mem::replace(&mut self.net_was_up, up) {
            if up { self.network_came_up(now) } else { self.network_went_down(now) }
        }
        if let Some(settled) = out.settled {
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
            (Settled::Up, AfterUp::Open { udp, host, port }) => match vars::parse_ipv4(&host) {
                Some(ip) => self.open_to(udp, host, (ip, port), now),
                None => self.lookup(host, Then::Open { udp, port }, now),
            },
            (Settled::Up, AfterUp::TcpServer(port)) => {
                if self.svc.tcp_server.is_running() {
                    // Auto-started while the command waited for the network.
                    self.log(console::level::ERROR, "TCP server already running");
                    return self.finish(ResultCode::FAILED, None, now);
                }
                self.start_tcp_server(port, false);
                self.finish(ResultCode::SUCCESS, Some("Success"), now);
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
                match self.wlan.ip().map(|ip| ip.gateway).filter(|gw| *gw != [0; 4]) {
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
        let mut out = wlan::Out::default();
        self.wlan.up(&self.cfg.wlan, now, &mut out);
        self.apply(out, now);
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
        let id = self.wlan.next_id();
        self.actions.push_back(Action::Net(NetRequest::Ping { id, to }));
        self.pending =
            Some(Pending::Net(NetWait::Ping { id, deadline: now + wlan::PING_TIMEOUT, to }));
    }

    /// The read-only status variables from the WLAN state.
    pub(super) fn sync_net_vars(&mut self) {
        let status = (self.wlan.status() as u8).to_string();
        self.vars.set_internal(Var::WlanNetworkStatus, status.as_bytes());
        self.vars.set_internal(Var::WlanJoinResult, self.wlan.result().name().as_bytes());
        let (ip, netmask, gateway, dns) = match self.wlan.ip() {
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

    /// Checks the interface argument of the `network_*` commands: `wlan` (or
    /// `network.default_interface` when none is given) goes on; `softap` is code 1 (not
    /// supported yet), anything else code 7.
    pub(super) fn wlan_interface(&mut self, arg: Option<&String>) -> Result<(), ResultCode> {
        let iface = arg.map_or(self.cfg.default_interface.name(), String::as_str);
        match iface {
            "wlan" => Ok(()),
            "softap" => {
                self.log(console::level::ERROR, "The softap interface is not supported");
                Err(ResultCode::FAILED)
            }
            _ => Err(ResultCode::BAD_ARGS),
        }
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
                let mut out = wlan::Out::default();
                self.wlan.down(&mut out);
                out.settled = None;
                self.apply(out, now);
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
                let id = self.wlan.next_id();
                let params = self.cfg.wlan.scan;
                self.actions.push_back(Action::Net(NetRequest::Scan {
                    id,
                    ssid: None,
                    bssid: None,
                    params,
                }));
                let deadline = now + wlan::scan_timeout(&params);
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
        self.wlan.poll_at()
    }

    pub(super) fn wlan_tick(&mut self, now: Instant) {
        let mut out = wlan::Out::default();
        self.wlan.tick(&self.cfg.wlan, now, &mut out);
        self.apply(out, now);
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
                    (Some(address), Then::Open { udp, port }) => {
                        self.open_to(udp, host, (*address, port), now)
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
