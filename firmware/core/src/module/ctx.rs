//! What the services share, lent to one service for one call: the connection table (the one
//! open and close path), the stream table, the request ids and the DNS client, the
//! platform's action queue and a log sink for the origin being served. A service reaches
//! nothing else of the module: what it needs from another service comes in as an argument or
//! goes out in its return value, and the module's routing carries it over.

use super::*;
use conns::{ConnTable, Open, Owner};

/// The shared parts a service works with during one call ([`Module::with_ctx`]).
pub(super) struct Ctx<'a> {
    pub(super) conns: &'a mut ConnTable,
    pub(super) streams: &'a mut Streams,
    actions: &'a mut VecDeque<Action>,
    /// Ids for requests answered by id (scans, lookups, pings; the WLAN's probes too).
    pub(super) ids: &'a mut RequestIds,
    /// `network.dns.timeout`, for the DNS client.
    dns_timeout: Duration,
    /// The network's own address now (`0.0.0.0` while it is down).
    pub(super) local_ip: Ipv4,
    /// Log lines of the call, in order: the module hands them to the origin being served
    /// when the call returns.
    logs: Vec<(u8, String)>,
    /// Connections opened in the call that speak TLS as clients (with the server name to
    /// check): the module hands them to the TLS layer when the call returns.
    tls_clients: Vec<(ConnId, Option<String>)>,
}

impl Ctx<'_> {
    pub(super) fn log(&mut self, level: u8, text: impl Into<String>) {
        self.logs.push((level, text.into()));
    }

    /// Work for the platform.
    pub(super) fn act(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    /// The one way the core opens a connection: a fresh id in the table under `owner`, and
    /// the request to the platform.
    pub(super) fn open_conn(&mut self, open: Open, owner: Owner) -> ConnId {
        let conn = self.conns.open(owner);
        let request = match open {
            Open::Tcp { to, local_port } => {
                NetRequest::TcpConnect { conn, to: to.0, port: to.1, local_port }
            }
            Open::Udp { local_port } => NetRequest::UdpOpen { conn, local_port },
            Open::Listen { port } => NetRequest::TcpListen { listener: conn, port },
        };
        self.act(Action::Net(request));
        conn
    }

    /// `conn`, just opened, speaks TLS as a client of `server_name` (`network.tls.*`).
    pub(super) fn want_tls(&mut self, conn: ConnId, server_name: Option<String>) {
        self.tls_clients.push((conn, server_name));
    }

    /// The one way the core closes a connection (a listener: stops listening).
    pub(super) fn close_conn(&mut self, conn: ConnId) {
        let request = match self.conns.owner(conn) {
            Some(Owner::TcpServer | Owner::HttpListener | Owner::TerminalListener) => {
                NetRequest::TcpUnlisten { listener: conn }
            }
            _ => NetRequest::Close { conn },
        };
        self.conns.remove(conn);
        self.act(Action::Net(request));
    }

    /// The DNS client, for commands and auto start alike: asks the platform to resolve
    /// `host`; the answer ([`NetEvent::Resolved`]) carries the id, and the asker gives up at
    /// the deadline (`network.dns.timeout`, in milliseconds: assumed; its range is 100 to
    /// 60000).
    pub(super) fn resolve(&mut self, host: &str, now: Instant) -> (u32, Instant) {
        let id = self.ids.fresh();
        self.act(Action::Net(NetRequest::Resolve { id, name: host.to_string() }));
        (id, now + self.dns_timeout)
    }

    /// Adds a stream for a connection the platform opened; `None` (and the connection closed)
    /// when no handle is free.
    pub(super) fn add_stream(&mut self, stream: Stream, now: Instant) -> Option<usize> {
        let conn = stream.conn;
        let mut stream = stream;
        stream.last_activity = now;
        match self.streams.open(stream) {
            Some(h) => {
                self.conns.set(conn, Owner::Stream);
                self.log(console::level::STATUS, format!("[Opened: {h}]"));
                Some(h)
            }
            None => {
                self.close_conn(conn);
                self.log(console::level::ERROR, "No free stream handles");
                None
            }
        }
    }
}

impl Module {
    /// Lends the services and the shared parts to `f`; the log lines it left go to the
    /// origin being served, in order, when it returns.
    pub(super) fn with_ctx<R>(&mut self, f: impl FnOnce(&mut Services, &mut Ctx<'_>) -> R) -> R {
        let local_ip = self.svc.network.local_ip();
        let dns_timeout = self.svc.network.cfg().dns.timeout;
        let mut ctx = Ctx {
            conns: &mut self.conns,
            streams: &mut self.streams,
            actions: &mut self.actions,
            ids: &mut self.ids,
            local_ip,
            dns_timeout,
            logs: Vec::new(),
            tls_clients: Vec::new(),
        };
        let result = f(&mut self.svc, &mut ctx);
        let (logs, tls_clients) = (ctx.logs, ctx.tls_clients);
        for (level, text) in logs {
            self.log(level, &text);
        }
        for (conn, server_name) in tls_clients {
            match self.tls_client_config(server_name) {
                Ok(config) => self.svc.tls.client(conn, config),
                Err(failure) => {
                    // Nothing to connect with: the attempt ends as a failed handshake would.
                    self.log(console::level::ERROR, &failure.to_string());
                    self.close_conn(conn);
                }
            }
        }
        result
    }
}
