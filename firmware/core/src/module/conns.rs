//! Connections: one table from each connection to the service that owns it, one path that
//! opens and closes a connection (`ctx::Ctx::open_conn` and `close_conn`, for every service
//! alike), and the routing of connection events to their owner.
//!
//! A connection is in the table from the request that opens it (or the event that announces
//! an accepted one) until it is closed, by the peer ([`NetEvent::Closed`],
//! [`NetEvent::ConnFailed`]) or by the core ([`NetRequest::Close`], which only
//! `ctx::Ctx::close_conn` sends for a connection in the table). An event for a connection
//! not in the table is late: the attempt it answers was given up, so a connection it brings
//! is closed and anything else is dropped.

use super::*;
use alloc::collections::{BTreeMap, btree_map};

/// The service a connection belongs to.
///
/// The services still to come plug in here, each with a variant and an arm in
/// [`Module::conn_event`]: the HTTP server (its listener and its clients), TLS (a session
/// over a TCP connection of the service using it), the application clients (HTTP client,
/// MQTT, ...) and the soft AP's DHCP and DNS servers (their UDP sockets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Owner {
    /// Opening for a command (`tcp_client`, `udp_client`, `udp_server start`) of this
    /// origin, which waits for the answer.
    Command(Origin),
    /// Opening for auto start (`*.auto_start`), in the background.
    AutoStart,
    /// The TCP server's listener.
    TcpServer,
    /// The HTTP server's listener.
    HttpListener,
    /// A client of the HTTP server (not a stream: the HTTP server has none).
    HttpClient,
    /// An open stream of the stream table (TCPC, TCPS, UDPC, UDPS); its handle is found by
    /// [`Streams::by_conn`].
    Stream,
}

/// Every connection the core knows, by id, with its owner; also hands out the ids of the
/// connections the core opens.
#[derive(Debug, Default)]
pub(super) struct ConnTable {
    owners: BTreeMap<ConnId, Owner>,
    last: u32,
}

impl ConnTable {
    /// A fresh id (below [`crate::net::ACCEPTED_BASE`], never [`ConnId::NONE`]) for `owner`.
    pub(super) fn open(&mut self, owner: Owner) -> ConnId {
        loop {
            self.last = (self.last + 1) % crate::net::ACCEPTED_BASE;
            let conn = ConnId(self.last.max(1));
            if let btree_map::Entry::Vacant(slot) = self.owners.entry(conn) {
                slot.insert(owner);
                return conn;
            }
        }
    }

    pub(super) fn owner(&self, conn: ConnId) -> Option<Owner> {
        self.owners.get(&conn).copied()
    }

    /// The connection now belongs to `owner` (an attempt became a stream, an accepted
    /// connection got one).
    pub(super) fn set(&mut self, conn: ConnId, owner: Owner) {
        self.owners.insert(conn, owner);
    }

    pub(super) fn remove(&mut self, conn: ConnId) {
        self.owners.remove(&conn);
    }

    /// Forgets every connection of `owner` (auto start's attempts when the network goes
    /// down: the platform drops them with it).
    pub(super) fn forget(&mut self, owner: Owner) {
        self.owners.retain(|_, o| *o != owner);
    }
}

/// What kind of connection to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Open {
    /// A TCP connection to `to` from `local_port` (0: any).
    Tcp { to: Endpoint, local_port: u16 },
    /// A UDP socket on `local_port` (0: any).
    Udp { local_port: u16 },
    /// A TCP listener on `port`.
    Listen { port: u16 },
}

/// The connection an event is about (a listener's for an accepted client), if any.
pub(super) fn event_conn(event: &NetEvent) -> Option<ConnId> {
    match event {
        NetEvent::TcpConnected { conn, .. }
        | NetEvent::UdpOpened { conn, .. }
        | NetEvent::ConnFailed { conn, .. }
        | NetEvent::Received { conn, .. }
        | NetEvent::Sent { conn, .. }
        | NetEvent::Closed { conn } => Some(*conn),
        NetEvent::TcpAccepted { listener, .. } => Some(*listener),
        _ => None,
    }
}

impl Module {
    /// Opens a connection (see [`ctx::Ctx::open_conn`]).
    pub(super) fn open_conn(&mut self, open: Open, owner: Owner) -> ConnId {
        self.with_ctx(|_, ctx| ctx.open_conn(open, owner))
    }

    /// Closes a connection (see [`ctx::Ctx::close_conn`]).
    pub(super) fn close_conn(&mut self, conn: ConnId) {
        self.with_ctx(|_, ctx| ctx.close_conn(conn))
    }

    /// The owner of the command being run, for the connections it opens (a command always
    /// runs for an origin).
    pub(super) fn command_owner(&self) -> Owner {
        Owner::Command(self.ctx.unwrap_or(Origin::Serial))
    }

    /// Hands a connection event to the service that owns the connection.
    pub(super) fn conn_event(&mut self, conn: ConnId, event: &NetEvent, now: Instant) {
        let owner = self.conns.owner(conn);
        if matches!(event, NetEvent::Closed { .. } | NetEvent::ConnFailed { .. }) {
            // The platform is done with it; its owner cleans up below.
            self.conns.remove(conn);
        }
        match owner {
            Some(Owner::Command(_)) => self.command_conn_event(event, now),
            Some(Owner::AutoStart) => self.auto_conn_event(event, now),
            Some(Owner::TcpServer) => self.listener_event(event, now),
            Some(Owner::HttpListener) => self.http_listener_event(event, now),
            Some(Owner::HttpClient) => self.http_client_event(event, now),
            Some(Owner::Stream) => self.stream_conn_event(event, now),
            None => {
                // Late: an attempt given up (or a listener stopped) meanwhile.
                match event {
                    NetEvent::TcpConnected { conn, .. } | NetEvent::UdpOpened { conn, .. } => {
                        self.actions.push_back(Action::Net(NetRequest::Close { conn: *conn }));
                    }
                    NetEvent::TcpAccepted { conn, .. } => {
                        self.actions.push_back(Action::Net(NetRequest::Close { conn: *conn }));
                    }
                    _ => {}
                }
            }
        }
    }
}
