//! The module's sockets: a fixed pool of embassy-net TCP and UDP sockets behind the
//! socket requests of [`gecko_core::net`].
//!
//! # The pool
//!
//! * [`TCP_SOCKETS`] TCP sockets, each with [`TCP_RX`] bytes of receive and [`TCP_TX`] bytes
//!   of transmit buffer (128 KiB in all; with the `small-pool` feature, for a chip with a few
//!   hundred KiB of RAM, 4 sockets of 2 KiB each way), shared by client connections,
//!   listeners and the connections they accept.
//! * [`UDP_SOCKETS`] UDP sockets, each with [`UDP_RX`]/[`UDP_TX`] bytes of payload buffer
//!   for up to [`UDP_PACKETS`] datagrams each way.
//!
//! Every socket is owned for the life of the stack by one *slot*, a loop that takes a job
//! (connect, accept on a port, bind a UDP port), serves it until it ends, leaves the socket
//! closed and takes the next. All slots run in [`run`], one future beside the DHCP, DNS and
//! ping loops, and every wait in it is a select with the slot's mailbox, so nothing in a slot
//! ever holds up the rest of the platform.
//!
//! # Listeners
//!
//! Every TCP socket that is not serving a connection listens for a listener (the one with the
//! fewest listening sockets first), so back-to-back or simultaneous clients find a listening
//! socket (embassy-net refuses a SYN no socket listens for). A `TcpConnect` takes a free
//! socket, or else takes one away from the listener with the most listening sockets as long
//! as that listener keeps [`MIN_LISTENING`]; otherwise it fails with `NoSocket`.
//!
//! A listener that starts while others hold every free socket takes its even share from
//! them at once (their sockets beyond the share stop listening and listen again for it).
//!
//! When every socket is busy, a listener has no socket listening and the stack answers
//! further clients with a RST (they see "connection refused"); as soon as a connection closes
//! its socket listens again. A listener never takes a socket from an open connection.
//!
//! # Limits
//!
//! * **Local port of a connection.** embassy-net 0.9 has no connect-from-port: its
//!   `TcpSocket::connect` takes the next port of the stack's ephemeral counter (1025–65535,
//!   counting up by one). UDP `bind` to port 0 takes from the same counter and sends nothing,
//!   so a `TcpConnect` with a `local_port` first advances the counter to that port with a
//!   spare UDP socket, in the same poll as the connect (see [`position_local_port`]). A port
//!   below 1025, or one a listener, another connection or another connect asking for it
//!   holds, is refused with `PortInUse`. Not covered: an outgoing connection still in its
//!   handshake on an ephemeral port (its port is known once it connects) that a connect asks
//!   for by number.
//! * Received bytes go to the core as fast as they come (no flow control towards the core).
//!
//! # Ending
//!
//! A peer's FIN or RST ends a connection with `Closed` (after the data that came before it).
//! `IpDown`, `Disassociate` and a link loss abort every open connection and UDP socket
//! (reported `Closed`); listeners stay. [`Pool::reset`] (before every boot of the core) drops
//! everything without a word: listeners, connections, UDP sockets, queued sends.

use super::{Radio, Shared, SharedRef, wait_for};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use critical_section::Mutex;
use embassy_futures::join::{join, join_array};
use embassy_futures::select::{Either, Either3, select, select3};
use embassy_net::tcp::{ConnectError, TcpSocket};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpAddress, IpEndpoint, Ipv4Address, Stack};
use embassy_time::{Duration, Instant, Timer};
use gecko_core::net::{ACCEPTED_BASE, ConnFailure, ConnId, Ipv4, NetEvent};

/// TCP sockets in the pool.
pub const TCP_SOCKETS: usize = if cfg!(feature = "small-pool") { 4 } else { 16 };
/// Receive buffer of each TCP socket (bytes).
pub const TCP_RX: usize = if cfg!(feature = "small-pool") { 2048 } else { 4096 };
/// Transmit buffer of each TCP socket (bytes).
pub const TCP_TX: usize = if cfg!(feature = "small-pool") { 2048 } else { 4096 };
/// UDP sockets in the pool.
pub const UDP_SOCKETS: usize = if cfg!(feature = "small-pool") { 2 } else { 4 };
/// Receive payload buffer of each UDP socket (bytes).
pub const UDP_RX: usize = if cfg!(feature = "small-pool") { 1536 } else { 4096 };
/// Transmit payload buffer of each UDP socket (bytes).
pub const UDP_TX: usize = if cfg!(feature = "small-pool") { 1536 } else { 4096 };
/// Datagrams each UDP socket can hold each way.
pub const UDP_PACKETS: usize = if cfg!(feature = "small-pool") { 4 } else { 16 };
/// Sockets a `TcpConnect` leaves listening for a listener when it takes one away from it.
pub const MIN_LISTENING: usize = 2;
/// Socket-set entries the pool needs in the stack's `StackResources` (one more for
/// [`position_local_port`]).
pub const STACK_SOCKETS: usize = TCP_SOCKETS + UDP_SOCKETS + 1;
/// The lowest port embassy-net's ephemeral counter gives out (and so the lowest local port a
/// connection can have).
pub const EPHEMERAL_MIN: u16 = 1025;

/// The largest chunk one `Received` event carries.
const CHUNK: usize = 2048;
/// How long a connect may take before the platform gives up on its own (the core gives up
/// far earlier and sends `Close`).
const CONNECT_CAP: Duration = Duration::from_secs(75);
/// How long a graceful close (FIN exchange) or the RST of an abort may take before the
/// socket is forced free.
const CLOSE_CAP: Duration = Duration::from_secs(5);

/// What a TCP slot is asked to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcpJob {
    Connect { conn: u32, to: Ipv4, port: u16, local_port: u16 },
    Listen { listener: u32, port: u16 },
}

#[derive(Debug, Default)]
struct TcpSlot {
    /// The slot's loop is serving a job (listening, connecting, connected, closing).
    busy: bool,
    /// A job waiting for the slot's loop to take it.
    job: Option<TcpJob>,
    /// The core's id of the connection this slot serves (set from the request on, cleared
    /// when `Closed` is reported or by a reset).
    conn: Option<u32>,
    /// Listening for this listener on this port.
    listening: Option<(u32, u16)>,
    /// The local port of the connection.
    local_port: u16,
    /// Bytes to send, in order.
    tx: VecDeque<Vec<u8>>,
    /// The core asked for a graceful close.
    close: bool,
    /// Abort now (link loss, `IpDown`, reset; reported `Closed` if `conn` is still set).
    kill: bool,
    /// Stop listening (unlisten, or the socket was taken for a connect).
    unlisten: bool,
    /// The core asked us to stop reading (flow control): the TCP window closes.
    paused: bool,
}

/// A datagram to send, and where to (`None`: the last sender).
type Datagram = (Vec<u8>, Option<(Ipv4, u16)>);

#[derive(Debug, Default)]
struct UdpSlot {
    busy: bool,
    job: Option<(u32, u16)>,
    conn: Option<u32>,
    local_port: u16,
    tx: VecDeque<Datagram>,
    close: bool,
    kill: bool,
}

/// The pool's bookkeeping, kept in [`Shared`] (one executor thread).
#[derive(Debug)]
pub struct Pool {
    tcp: Vec<TcpSlot>,
    udp: Vec<UdpSlot>,
    /// Active listeners: (id, port).
    listeners: Vec<(u32, u16)>,
    /// The next id for an accepted connection.
    next_accepted: u32,
    /// Whether the platform has a stack at all.
    enabled: bool,
    /// The earliest deadline a slot sleeps until (see [`run`]).
    deadline: Option<Instant>,
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            tcp: (0..TCP_SOCKETS).map(|_| TcpSlot::default()).collect(),
            udp: (0..UDP_SOCKETS).map(|_| UdpSlot::default()).collect(),
            listeners: Vec::new(),
            next_accepted: ACCEPTED_BASE,
            enabled: false,
            deadline: None,
        }
    }
}

/// What a request needs answered at once.
pub type Answer = Option<NetEvent>;

impl Pool {
    /// The sockets exist (a stack is running [`run`]).
    pub fn enable(&mut self) {
        self.enabled = true;
    }

    fn port_taken(&self, port: u16) -> bool {
        self.listeners.iter().any(|&(_, p)| p == port)
            || self.tcp.iter().any(|s| s.conn.is_some() && s.local_port == port)
    }

    fn tcp_slot(&mut self, conn: u32) -> Option<&mut TcpSlot> {
        self.tcp.iter_mut().find(|s| s.conn == Some(conn))
    }

    fn udp_slot(&mut self, conn: u32) -> Option<&mut UdpSlot> {
        self.udp.iter_mut().find(|s| s.conn == Some(conn))
    }

    fn listening_count(&self, listener: u32) -> usize {
        self.tcp
            .iter()
            .filter(|s| s.listening.is_some_and(|(l, _)| l == listener) && !s.unlisten)
            .count()
    }

    pub fn tcp_connect(&mut self, conn: u32, to: Ipv4, port: u16, local_port: u16) -> Answer {
        let failed = |reason| Some(NetEvent::ConnFailed { conn: ConnId(conn), reason });
        if !self.enabled {
            return failed(ConnFailure::Unreachable);
        }
        if local_port != 0 && (local_port < EPHEMERAL_MIN || self.port_taken(local_port)) {
            return failed(ConnFailure::PortInUse);
        }
        let job = TcpJob::Connect { conn, to, port, local_port };
        if let Some(slot) = self.tcp.iter_mut().find(|s| !s.busy && s.job.is_none()) {
            slot.job = Some(job);
            slot.conn = Some(conn);
            // Held from now on, so a second connect asking for it is refused meanwhile.
            slot.local_port = local_port;
            return None;
        }
        // Take a listening socket from the listener with the most, if it keeps enough.
        let richest = self
            .listeners
            .iter()
            .map(|&(l, _)| (self.listening_count(l), l))
            .max_by_key(|&(n, _)| n)
            .filter(|&(n, _)| n > MIN_LISTENING);
        let Some((_, listener)) = richest else {
            return failed(ConnFailure::NoSocket);
        };
        // The last one: smoltcp hands an incoming SYN to the first listening socket in its set
        // (the slots' order), so the last is the least likely to be taking a client right now,
        // whose connection taking the socket away would reset.
        let Some(slot) = self.tcp.iter_mut().rev().find(|s| {
            s.listening.is_some_and(|(l, _)| l == listener) && !s.unlisten && s.job.is_none()
        }) else {
            return failed(ConnFailure::NoSocket);
        };
        slot.unlisten = true;
        slot.job = Some(job);
        slot.conn = Some(conn);
        slot.local_port = local_port;
        None
    }

    pub fn tcp_listen(&mut self, listener: u32, port: u16) -> Answer {
        let failed = |reason| Some(NetEvent::ConnFailed { conn: ConnId(listener), reason });
        if !self.enabled {
            return failed(ConnFailure::NoSocket);
        }
        // Connections a former listener accepted on this port may stay open.
        if port == 0 || self.listeners.iter().any(|&(l, p)| l == listener || p == port) {
            return failed(ConnFailure::PortInUse);
        }
        self.listeners.push((listener, port));
        self.share_listening(listener);
        None
    }

    /// A new listener gets its share of the sockets listening: the others' idle listening
    /// sockets stop and listen again for it (a free slot listens for the listener with the
    /// fewest), until it has as many as the richest keeps, never taking one below
    /// [`MIN_LISTENING`]. Without this a listener added while another holds every idle
    /// socket would have none, and its clients would be refused.
    fn share_listening(&mut self, new: u32) {
        let mut moving = 0;
        loop {
            let richest = self
                .listeners
                .iter()
                .filter(|&&(l, _)| l != new)
                .map(|&(l, _)| (self.listening_count(l), l))
                .max_by_key(|&(n, _)| n);
            let Some((n, from)) = richest else { return };
            if n <= MIN_LISTENING || n <= self.listening_count(new) + moving + 1 {
                return;
            }
            // The last ones, as in `tcp_connect`.
            let Some(slot) = self.tcp.iter_mut().rev().find(|s| {
                s.listening.is_some_and(|(l, _)| l == from) && !s.unlisten && s.job.is_none()
            }) else {
                return;
            };
            slot.unlisten = true;
            moving += 1;
        }
    }

    pub fn tcp_unlisten(&mut self, listener: u32) {
        self.listeners.retain(|&(l, _)| l != listener);
        for s in &mut self.tcp {
            if s.listening.is_some_and(|(l, _)| l == listener) {
                s.unlisten = true;
            }
        }
    }

    pub fn udp_open(&mut self, conn: u32, local_port: u16) -> Answer {
        let failed = |reason| Some(NetEvent::ConnFailed { conn: ConnId(conn), reason });
        if !self.enabled {
            return failed(ConnFailure::NoSocket);
        }
        if local_port != 0
            && self.udp.iter().any(|s| s.conn.is_some() && s.local_port == local_port)
        {
            return failed(ConnFailure::PortInUse);
        }
        let Some(slot) = self.udp.iter_mut().find(|s| !s.busy && s.job.is_none()) else {
            return failed(ConnFailure::NoSocket);
        };
        slot.job = Some((conn, local_port));
        slot.conn = Some(conn);
        slot.local_port = local_port;
        None
    }

    pub fn send(&mut self, conn: u32, data: Vec<u8>, to: Option<(Ipv4, u16)>) -> Answer {
        // A send after a close is dropped without an answer (`Closed` follows).
        if let Some(slot) = self.tcp_slot(conn) {
            if !slot.close {
                slot.tx.push_back(data);
            }
            return None;
        }
        if let Some(slot) = self.udp_slot(conn) {
            if !slot.close {
                slot.tx.push_back((data, to));
            }
            return None;
        }
        Some(NetEvent::Closed { conn: ConnId(conn) })
    }

    /// Flow control from the core: stop or resume reading a TCP connection.
    pub fn flow(&mut self, conn: u32, accept: bool) {
        if let Some(slot) = self.tcp_slot(conn) {
            slot.paused = !accept;
        }
    }

    pub fn close(&mut self, conn: u32) -> Answer {
        if let Some(slot) = self.tcp_slot(conn) {
            slot.close = true;
            return None;
        }
        if let Some(slot) = self.udp_slot(conn) {
            slot.close = true;
            return None;
        }
        Some(NetEvent::Closed { conn: ConnId(conn) })
    }

    /// The network went away (`IpDown`, `Disassociate`, link loss): abort every connection
    /// and UDP socket; each is reported `Closed`.
    pub fn abort_all(&mut self) {
        for s in &mut self.tcp {
            if s.conn.is_some() {
                s.kill = true;
            }
        }
        for s in &mut self.udp {
            if s.conn.is_some() {
                s.kill = true;
            }
        }
    }

    /// Forget everything (the core is booted again): every socket goes back to the pool and
    /// nothing is reported.
    pub fn reset(&mut self) {
        self.listeners.clear();
        self.next_accepted = ACCEPTED_BASE;
        for s in &mut self.tcp {
            s.job = None;
            s.conn = None;
            s.tx.clear();
            s.close = false;
            s.paused = false;
            if s.busy {
                s.kill = true;
                s.unlisten = true;
            }
        }
        for s in &mut self.udp {
            s.job = None;
            s.conn = None;
            s.tx.clear();
            s.close = false;
            if s.busy {
                s.kill = true;
            }
        }
    }

    /// TCP sockets whose slot is serving a job (listening, connecting, connected, closing).
    pub fn busy_tcp(&self) -> usize {
        self.tcp.iter().filter(|s| s.busy).count()
    }

    /// Sockets serving nothing (for tests and the lab: after everything closed, all of them).
    pub fn idle(&self) -> (usize, usize) {
        (
            self.tcp.iter().filter(|s| s.conn.is_none()).count(),
            self.udp.iter().filter(|s| !s.busy && s.job.is_none()).count(),
        )
    }

    /// A free TCP slot's next job: a connect, or listening for the listener that has the
    /// fewest sockets listening.
    fn take_tcp_job(&mut self, i: usize) -> Option<TcpJob> {
        if let Some(job) = self.tcp[i].job.take() {
            return Some(job);
        }
        let (listener, port) =
            self.listeners.iter().copied().min_by_key(|&(l, _)| self.listening_count(l))?;
        Some(TcpJob::Listen { listener, port })
    }

    fn next_accepted_id(&mut self) -> u32 {
        let id = self.next_accepted;
        self.next_accepted = self.next_accepted.checked_add(1).unwrap_or(ACCEPTED_BASE);
        id
    }
}

/// Puts an event in the core's queue.
fn emit<R>(s: &mut Shared<R>, event: NetEvent) {
    s.events.push_back(event);
    s.core.notify();
}

fn endpoint(to: Ipv4, port: u16) -> IpEndpoint {
    IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::from(to)), port)
}

fn peer_of(ep: Option<IpEndpoint>) -> (Ipv4, u16) {
    match ep {
        Some(IpEndpoint { addr: IpAddress::Ipv4(a), port }) => (a.octets(), port),
        None => ([0; 4], 0),
    }
}

/// Why a TCP slot should stop serving its connection now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Abort (report `Closed` if the core still knows the connection).
    Kill,
    /// Graceful close asked by the core, all queued bytes written.
    Close,
}

/// Abort a socket and wait (a little) for its RST to leave; then [`forget`] it, so a RST
/// that could not leave is not owed any longer.
async fn abort<R>(shared: &SharedRef<R>, sock: &mut TcpSocket<'_>) {
    sock.abort();
    let _ = capped(shared, CLOSE_CAP, sock.flush()).await;
    forget(sock);
}

/// Drops a socket's connection without sending anything.
///
/// `abort` alone leaves smoltcp owing the peer a RST, and a RST to a host that never answers
/// ARP is tried again (with an ARP request a second) for as long as the socket stays idle,
/// into later connections and boots. Listening starts from a full reset of the socket (its
/// addresses included), and aborting a listening socket sends nothing; both happen within
/// this one call, so no packet can reach the socket while it listens.
fn forget(sock: &mut TcpSocket<'_>) {
    sock.abort();
    // Any non-zero port: the listen lasts no longer than this poll.
    let _ = embassy_futures::poll_once(sock.accept(FORGET_PORT));
    sock.abort();
}

/// The port [`forget`] listens on for no time at all.
const FORGET_PORT: u16 = 9;

/// Makes the stack's ephemeral port counter give `want` next (see the module doc).
///
/// Must run in the same poll as the `connect` that is to use the port: no other socket may
/// take a port in between. At most one round of the counter (64,511 binds, a few ms).
fn position_local_port(stack: Stack<'_>, want: u16) {
    let mut no_meta: [PacketMetadata; 0] = [];
    let mut no_meta_tx: [PacketMetadata; 0] = [];
    let (mut rx, mut tx) = ([0u8; 0], [0u8; 0]);
    let mut probe = UdpSocket::new(stack, &mut no_meta, &mut rx, &mut no_meta_tx, &mut tx);
    let span = u32::from(u16::MAX - EPHEMERAL_MIN) + 1;
    let take = |probe: &mut UdpSocket<'_>| -> Option<u16> {
        probe.bind(0).ok()?;
        let port = probe.endpoint().port;
        probe.close();
        Some(port)
    };
    let Some(taken) = take(&mut probe) else { return };
    // The counter now stands at the port after `taken`.
    let next = if taken == u16::MAX { EPHEMERAL_MIN } else { taken + 1 };
    let steps = (u32::from(want) + span - u32::from(next)) % span;
    for _ in 0..steps {
        if take(&mut probe).is_none() {
            return;
        }
    }
}

/// Reports `Closed` for the slot's connection if the core still knows it, and frees the id.
fn report_closed<R>(s: &mut Shared<R>, i: usize, conn: u32) {
    if s.sockets.tcp[i].conn == Some(conn) {
        s.sockets.tcp[i].conn = None;
        emit(s, NetEvent::Closed { conn: ConnId(conn) });
    }
}

async fn tcp_slot<R: Radio>(stack: Stack<'_>, shared: &SharedRef<R>, i: usize) -> ! {
    let mut rx = alloc::vec![0u8; TCP_RX];
    let mut tx = alloc::vec![0u8; TCP_TX];
    let mut chunk = alloc::vec![0u8; CHUNK];
    let mut sock = TcpSocket::new(stack, &mut rx, &mut tx);
    loop {
        let job = wait_for(shared, |s| {
            let job = s.sockets.take_tcp_job(i)?;
            let slot = &mut s.sockets.tcp[i];
            slot.busy = true;
            slot.close = false;
            slot.kill = false;
            slot.unlisten = false;
            slot.paused = false;
            slot.local_port = 0;
            match job {
                TcpJob::Listen { listener, port } => slot.listening = Some((listener, port)),
                TcpJob::Connect { local_port, .. } => slot.local_port = local_port,
            }
            Some(job)
        })
        .await;
        let generation = shared.borrow().radio.generation();
        match job {
            TcpJob::Connect { conn, to, port, local_port } => {
                let stop = wait_for(shared, |s| {
                    let slot = &s.sockets.tcp[i];
                    (slot.close || slot.kill || slot.conn != Some(conn)).then_some(())
                });
                if local_port != 0 {
                    // No await between this and the connect's first poll (inside `select`).
                    position_local_port(stack, local_port);
                }
                let connect = capped(shared, CONNECT_CAP, sock.connect(endpoint(to, port)));
                match select(connect, stop).await {
                    Either::First(Some(Ok(()))) => {
                        let local_port = sock.local_endpoint().map_or(0, |e| e.port);
                        let peer = peer_of(sock.remote_endpoint());
                        let go = {
                            let mut s = shared.borrow_mut();
                            let slot = &mut s.sockets.tcp[i];
                            slot.local_port = local_port;
                            let go = slot.conn == Some(conn);
                            if go {
                                emit(
                                    &mut s,
                                    NetEvent::TcpConnected { conn: ConnId(conn), local_port },
                                );
                            }
                            go
                        };
                        if go {
                            serve(&mut sock, &mut chunk, shared, i, conn, peer, generation).await;
                        }
                    }
                    Either::First(result) => {
                        let reason = match result {
                            Some(Err(ConnectError::ConnectionReset)) => ConnFailure::Refused,
                            Some(Err(ConnectError::InvalidState)) => ConnFailure::NoSocket,
                            _ => ConnFailure::Unreachable,
                        };
                        // A connect that timed out is still trying: stop its SYNs and ARPs.
                        forget(&mut sock);
                        let mut s = shared.borrow_mut();
                        if s.sockets.tcp[i].conn == Some(conn) {
                            s.sockets.tcp[i].conn = None;
                            emit(&mut s, NetEvent::ConnFailed { conn: ConnId(conn), reason });
                        }
                    }
                    // The core gave up (Close after its timeout), the module rebooted or the
                    // network went away: the attempt must end here, or its SYNs and ARP
                    // requests would go on into whatever runs next.
                    Either::Second(()) => {
                        // Nothing was established, so no RST is worth waiting for (to an
                        // absent host it would only keep the ARP requests going).
                        forget(&mut sock);
                        report_closed(&mut shared.borrow_mut(), i, conn);
                    }
                }
            }
            TcpJob::Listen { listener, port } => {
                let stop = wait_for(shared, |s| {
                    let slot = &s.sockets.tcp[i];
                    (slot.unlisten || slot.kill).then_some(())
                });
                match select(sock.accept(port), stop).await {
                    Either::First(Ok(())) => {
                        let peer = peer_of(sock.remote_endpoint());
                        let local_port = sock.local_endpoint().map_or(port, |e| e.port);
                        let conn = {
                            let mut s = shared.borrow_mut();
                            let still = !s.sockets.tcp[i].unlisten
                                && s.sockets.listeners.iter().any(|&(l, _)| l == listener);
                            still.then(|| {
                                let conn = s.sockets.next_accepted_id();
                                let slot = &mut s.sockets.tcp[i];
                                slot.listening = None;
                                slot.conn = Some(conn);
                                slot.local_port = local_port;
                                emit(
                                    &mut s,
                                    NetEvent::TcpAccepted {
                                        listener: ConnId(listener),
                                        conn: ConnId(conn),
                                        peer,
                                    },
                                );
                                conn
                            })
                        };
                        if let Some(conn) = conn {
                            serve(&mut sock, &mut chunk, shared, i, conn, peer, generation).await;
                        }
                    }
                    Either::First(Err(_)) => {
                        // Not expected (the socket is always closed before a job); do not spin.
                        sleep_until(shared, Instant::now() + Duration::from_millis(100)).await;
                    }
                    Either::Second(()) => {}
                }
            }
        }
        abort(shared, &mut sock).await;
        let mut s = shared.borrow_mut();
        let slot = &mut s.sockets.tcp[i];
        slot.busy = false;
        slot.listening = None;
        slot.tx.clear();
        slot.close = false;
        slot.kill = false;
        slot.unlisten = false;
        slot.paused = false;
        // A preempted listening socket keeps its new job, its `conn` and the port it asks for.
        slot.local_port = match slot.job {
            Some(TcpJob::Connect { local_port, .. }) => local_port,
            _ => 0,
        };
        if slot.job.is_none() {
            slot.conn = None;
        }
        drop(s);
        shared.borrow_mut().wake_all();
    }
}

/// Serves an open TCP connection until it ends; `Closed` is reported here unless a reset
/// made the core forget it. Leaves the socket for the caller to abort.
async fn serve<R: Radio>(
    sock: &mut TcpSocket<'_>,
    chunk: &mut [u8],
    shared: &SharedRef<R>,
    i: usize,
    conn: u32,
    peer: (Ipv4, u16),
    generation: u64,
) {
    // The send in progress: bytes and how many are written.
    let mut sending: Option<(Vec<u8>, usize)> = None;
    let stop = loop {
        if sending.is_none() {
            sending = shared.borrow_mut().sockets.tcp[i].tx.pop_front().map(|d| (d, 0));
        }
        let have_tx = sending.is_some();
        let paused = shared.borrow().sockets.tcp[i].paused;
        let (mut reader, mut writer) = sock.split();
        // While the core is not accepting, nothing is read: the socket's buffer fills and the
        // TCP window closes, so the peer waits instead of bytes being lost.
        let read =
            async { if paused { core::future::pending().await } else { reader.read(chunk).await } };
        let write = async {
            match &sending {
                Some((data, off)) => writer.write(&data[*off..]).await,
                None => core::future::pending().await,
            }
        };
        let command = wait_for(shared, |s| {
            let lost = s.radio.generation() != generation;
            let slot = &s.sockets.tcp[i];
            if slot.kill || lost || slot.conn != Some(conn) {
                Some(Stop::Kill)
            } else if slot.close && !have_tx && slot.tx.is_empty() {
                Some(Stop::Close)
            } else {
                None
            }
        });
        // A new send while idle, or the core's flow control changed: go round again.
        let new_tx = wait_for(shared, |s| {
            let slot = &s.sockets.tcp[i];
            ((!have_tx && !slot.tx.is_empty()) || slot.paused != paused).then_some(())
        });
        match select3(read, write, select(command, new_tx)).await {
            Either3::First(Ok(0)) | Either3::First(Err(_)) | Either3::Second(Err(_)) => {
                // The peer closed or reset the connection.
                break None;
            }
            Either3::First(Ok(n)) => {
                let data = chunk[..n].to_vec();
                let mut s = shared.borrow_mut();
                if s.sockets.tcp[i].conn == Some(conn) {
                    emit(&mut s, NetEvent::Received { conn: ConnId(conn), data, from: peer });
                }
            }
            Either3::Second(Ok(n)) => {
                if let Some((data, off)) = &mut sending {
                    *off += n;
                    if *off >= data.len() {
                        let len = data.len();
                        sending = None;
                        let mut s = shared.borrow_mut();
                        if s.sockets.tcp[i].conn == Some(conn) {
                            emit(&mut s, NetEvent::Sent { conn: ConnId(conn), len });
                        }
                    }
                }
            }
            Either3::Third(Either::First(stop)) => break Some(stop),
            Either3::Third(Either::Second(())) => {}
        }
    };
    match stop {
        Some(Stop::Kill) => {
            abort(shared, sock).await;
            report_closed(&mut shared.borrow_mut(), i, conn);
        }
        Some(Stop::Close) => {
            sock.close();
            // FIN out and acknowledged (or the cap), reading and dropping what still comes.
            let closed = async {
                let _ = sock.flush().await;
                loop {
                    match sock.read(chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            };
            let _ = capped(shared, CLOSE_CAP, closed).await;
            report_closed(&mut shared.borrow_mut(), i, conn);
        }
        None => {
            // Data that came before the FIN was delivered by the reads above.
            report_closed(&mut shared.borrow_mut(), i, conn);
            sock.close();
            let _ = capped(shared, CLOSE_CAP, sock.flush()).await;
        }
    }
}

async fn udp_slot<R: Radio>(stack: Stack<'_>, shared: &SharedRef<R>, i: usize) -> ! {
    let mut rx_meta = [PacketMetadata::EMPTY; UDP_PACKETS];
    let mut tx_meta = [PacketMetadata::EMPTY; UDP_PACKETS];
    let mut rx = alloc::vec![0u8; UDP_RX];
    let mut tx = alloc::vec![0u8; UDP_TX];
    let mut datagram = alloc::vec![0u8; UDP_RX];
    let mut sock = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    loop {
        let (conn, port) = wait_for(shared, |s| {
            let slot = &mut s.sockets.udp[i];
            let job = slot.job.take()?;
            slot.busy = true;
            slot.close = false;
            slot.kill = false;
            Some(job)
        })
        .await;
        let generation = shared.borrow().radio.generation();
        match sock.bind(port) {
            Err(_) => {
                let mut s = shared.borrow_mut();
                if s.sockets.udp[i].conn == Some(conn) {
                    s.sockets.udp[i].conn = None;
                    let reason = ConnFailure::PortInUse;
                    emit(&mut s, NetEvent::ConnFailed { conn: ConnId(conn), reason });
                }
            }
            Ok(()) => {
                let local_port = sock.endpoint().port;
                {
                    let mut s = shared.borrow_mut();
                    s.sockets.udp[i].local_port = local_port;
                    if s.sockets.udp[i].conn == Some(conn) {
                        emit(&mut s, NetEvent::UdpOpened { conn: ConnId(conn), local_port });
                    }
                }
                let mut last_peer: Option<(Ipv4, u16)> = None;
                loop {
                    let command = wait_for(shared, |s| {
                        let lost = s.radio.generation() != generation;
                        let slot = &mut s.sockets.udp[i];
                        if slot.kill || lost || slot.close || slot.conn != Some(conn) {
                            Some(None)
                        } else {
                            slot.tx.pop_front().map(Some)
                        }
                    });
                    match select(sock.recv_from(&mut datagram), command).await {
                        Either::First(Ok((n, meta))) => {
                            let from = peer_of(Some(meta.endpoint));
                            last_peer = Some(from);
                            let data = datagram[..n].to_vec();
                            let mut s = shared.borrow_mut();
                            if s.sockets.udp[i].conn == Some(conn) {
                                emit(&mut s, NetEvent::Received { conn: ConnId(conn), data, from });
                            }
                        }
                        // Truncated: larger than the buffer, dropped.
                        Either::First(Err(_)) => {}
                        Either::Second(Some((data, to))) => {
                            let len = match to.or(last_peer) {
                                Some((ip, port)) => {
                                    match sock.send_to(&data, endpoint(ip, port)).await {
                                        Ok(()) => data.len(),
                                        Err(_) => 0,
                                    }
                                }
                                None => 0,
                            };
                            let mut s = shared.borrow_mut();
                            if s.sockets.udp[i].conn == Some(conn) {
                                emit(&mut s, NetEvent::Sent { conn: ConnId(conn), len });
                            }
                        }
                        Either::Second(None) => break,
                    }
                }
                let mut s = shared.borrow_mut();
                if s.sockets.udp[i].conn == Some(conn) {
                    s.sockets.udp[i].conn = None;
                    emit(&mut s, NetEvent::Closed { conn: ConnId(conn) });
                }
            }
        }
        sock.close();
        let mut s = shared.borrow_mut();
        let slot = &mut s.sockets.udp[i];
        slot.busy = false;
        slot.tx.clear();
        slot.close = false;
        slot.kill = false;
        slot.local_port = 0;
        if slot.job.is_none() {
            slot.conn = None;
        }
        drop(s);
        shared.borrow_mut().wake_all();
    }
}

/// Runs every socket of the pool; never ends.
///
/// The slots are polled with a waker of their own, and only when it fired: embassy-net wakes
/// its runner whenever a socket is touched, and the runner shares this executor task, so
/// polling the slots on every poll of the task would poll it again at once (a busy loop).
/// Timers need the executor's waker, so slots sleep with [`sleep_until`], and the earliest
/// deadline they ask for is waited for here, outside.
pub async fn run<R: Radio>(stack: Stack<'_>, shared: &SharedRef<R>) -> ! {
    shared.borrow_mut().sockets.enable();
    let tcp = join_array(core::array::from_fn::<_, TCP_SOCKETS, _>(|i| tcp_slot(stack, shared, i)));
    let udp = join_array(core::array::from_fn::<_, UDP_SOCKETS, _>(|i| udp_slot(stack, shared, i)));
    let mut slots = core::pin::pin!(join(tcp, udp));
    let flag =
        Arc::new(Flag { woken: AtomicBool::new(true), outer: Mutex::new(RefCell::new(None)) });
    let waker = Waker::from(flag.clone());
    let mut timer: Option<(Instant, Timer)> = None;
    poll_fn(|cx| {
        loop {
            critical_section::with(|cs| {
                *flag.outer.borrow_ref_mut(cs) = Some(cx.waker().clone());
            });
            if flag.woken.swap(false, Ordering::SeqCst) {
                shared.borrow_mut().sockets.deadline = None;
                let _ = slots.as_mut().poll(&mut Context::from_waker(&waker));
            }
            let Some(deadline) = shared.borrow().sockets.deadline else {
                return Poll::<()>::Pending;
            };
            if timer.as_ref().is_none_or(|(at, _)| *at != deadline) {
                timer = Some((deadline, Timer::at(deadline)));
            }
            let fired = match &mut timer {
                Some((_, t)) => Pin::new(t).poll(cx).is_ready(),
                None => false,
            };
            if !fired {
                return Poll::Pending;
            }
            timer = None;
            flag.woken.store(true, Ordering::SeqCst);
        }
    })
    .await;
    unreachable!("the socket slots never end")
}

/// Sleeps inside the slots until `deadline` (see [`run`]).
async fn sleep_until<R>(shared: &SharedRef<R>, deadline: Instant) {
    poll_fn(|_| {
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        let mut s = shared.borrow_mut();
        let d = &mut s.sockets.deadline;
        *d = Some(d.map_or(deadline, |d| d.min(deadline)));
        Poll::Pending
    })
    .await;
}

/// `fut`, or `None` after `cap`.
async fn capped<F: Future, R>(shared: &SharedRef<R>, cap: Duration, fut: F) -> Option<F::Output> {
    match select(fut, sleep_until(shared, Instant::now() + cap)).await {
        Either::First(v) => Some(v),
        Either::Second(()) => None,
    }
}

/// The slots' waker: notes that it fired and wakes the executor's task.
struct Flag {
    woken: AtomicBool,
    outer: Mutex<RefCell<Option<Waker>>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if let Some(w) = critical_section::with(|cs| self.outer.borrow_ref_mut(cs).take()) {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool {
        let mut p = Pool::default();
        p.enable();
        p
    }

    #[test]
    fn connects_take_free_sockets_then_fail_for_want_of_one() {
        let mut p = pool();
        for conn in 1..=u32::try_from(TCP_SOCKETS).expect("small") {
            assert_eq!(p.tcp_connect(conn, [10, 77, 0, 1], 80, 0), None);
        }
        assert_eq!(
            p.tcp_connect(99, [10, 77, 0, 1], 80, 0),
            Some(NetEvent::ConnFailed { conn: ConnId(99), reason: ConnFailure::NoSocket })
        );
        assert_eq!(p.idle().0, 0);
        p.reset();
        assert_eq!(p.idle(), (TCP_SOCKETS, UDP_SOCKETS));
    }

    #[test]
    fn without_a_stack_everything_fails() {
        let mut p = Pool::default();
        let failed = |conn, reason| Some(NetEvent::ConnFailed { conn: ConnId(conn), reason });
        assert_eq!(p.tcp_connect(1, [1; 4], 1, 0), failed(1, ConnFailure::Unreachable));
        assert_eq!(p.tcp_listen(2, 80), failed(2, ConnFailure::NoSocket));
        assert_eq!(p.udp_open(3, 0), failed(3, ConnFailure::NoSocket));
    }

    #[test]
    fn ports_and_unknown_ids() {
        let mut p = pool();
        let failed = |conn, reason| Some(NetEvent::ConnFailed { conn: ConnId(conn), reason });
        assert_eq!(p.tcp_listen(1, 80), None);
        assert_eq!(p.tcp_listen(2, 80), failed(2, ConnFailure::PortInUse));
        assert_eq!(p.tcp_listen(3, 0), failed(3, ConnFailure::PortInUse));
        assert_eq!(p.tcp_connect(4, [1; 4], 1, 80), failed(4, ConnFailure::PortInUse));
        // The stack cannot connect from below its ephemeral range.
        assert_eq!(p.tcp_connect(7, [1; 4], 1, 1024), failed(7, ConnFailure::PortInUse));
        // A connect that asked for a port holds it before its slot even starts.
        assert_eq!(p.tcp_connect(8, [1; 4], 1, 40000), None);
        assert_eq!(p.tcp_connect(9, [2; 4], 2, 40000), failed(9, ConnFailure::PortInUse));
        assert_eq!(p.close(8), None);
        p.tcp_unlisten(1);
        assert_eq!(p.tcp_listen(2, 80), None);
        assert_eq!(p.udp_open(5, 5000), None);
        assert_eq!(p.udp_open(6, 5000), failed(6, ConnFailure::PortInUse));
        assert_eq!(p.close(77), Some(NetEvent::Closed { conn: ConnId(77) }));
        assert_eq!(p.send(77, alloc::vec![1], None), Some(NetEvent::Closed { conn: ConnId(77) }));
        assert_eq!(p.send(5, alloc::vec![1], Some(([1; 4], 9))), None);
        for conn in 10..10 + u32::try_from(UDP_SOCKETS).expect("small") - 1 {
            assert_eq!(p.udp_open(conn, 0), None);
        }
        assert_eq!(p.udp_open(20, 0), failed(20, ConnFailure::NoSocket));
    }

    #[test]
    fn a_connect_takes_a_listening_socket_only_above_the_minimum() {
        let mut p = pool();
        assert_eq!(p.tcp_listen(1, 80), None);
        // Every slot listens, as the slot loops would arrange.
        for i in 0..TCP_SOCKETS {
            let job = p.take_tcp_job(i);
            assert_eq!(job, Some(TcpJob::Listen { listener: 1, port: 80 }));
            p.tcp[i].busy = true;
            p.tcp[i].listening = Some((1, 80));
        }
        for conn in 0..u32::try_from(TCP_SOCKETS - MIN_LISTENING).expect("small") {
            assert_eq!(p.tcp_connect(100 + conn, [1; 4], 1, 0), None);
        }
        assert_eq!(p.listening_count(1), MIN_LISTENING);
        assert_eq!(
            p.tcp_connect(200, [1; 4], 1, 0),
            Some(NetEvent::ConnFailed { conn: ConnId(200), reason: ConnFailure::NoSocket })
        );
    }

    #[test]
    fn a_second_listener_gets_a_share_of_the_listening_sockets() {
        let mut p = pool();
        assert_eq!(p.tcp_listen(1, 2000), None);
        for i in 0..TCP_SOCKETS {
            p.take_tcp_job(i);
            p.tcp[i].busy = true;
            p.tcp[i].listening = Some((1, 2000));
        }
        assert_eq!(p.tcp_listen(2, 3000), None);
        let stopping: Vec<usize> = (0..TCP_SOCKETS).filter(|&i| p.tcp[i].unlisten).collect();
        assert_eq!(stopping.len(), TCP_SOCKETS / 2, "half of them move");
        // Each stopped slot listens again for the listener with the fewest: the new one.
        for i in stopping {
            p.tcp[i].unlisten = false;
            p.tcp[i].listening = None;
            assert_eq!(p.take_tcp_job(i), Some(TcpJob::Listen { listener: 2, port: 3000 }));
            p.tcp[i].listening = Some((2, 3000));
        }
        assert_eq!(p.listening_count(1), TCP_SOCKETS / 2);
        assert_eq!(p.listening_count(2), TCP_SOCKETS / 2);
    }

    /// A link that never carries a frame: enough for a stack whose sockets are only set up.
    struct Unplugged;

    impl embassy_net::driver::Driver for Unplugged {
        type RxToken<'a> = Never;
        type TxToken<'a> = Never;

        fn receive(&mut self, _: &mut Context) -> Option<(Never, Never)> {
            None
        }

        fn transmit(&mut self, _: &mut Context) -> Option<Never> {
            None
        }

        fn link_state(&mut self, _: &mut Context) -> embassy_net::driver::LinkState {
            embassy_net::driver::LinkState::Up
        }

        fn capabilities(&self) -> embassy_net::driver::Capabilities {
            embassy_net::driver::Capabilities::default()
        }

        fn hardware_address(&self) -> embassy_net::driver::HardwareAddress {
            embassy_net::driver::HardwareAddress::Ethernet([2, 0, 0, 0, 0, 1])
        }
    }

    enum Never {}

    impl embassy_net::driver::RxToken for Never {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, _: F) -> R {
            match self {}
        }
    }

    impl embassy_net::driver::TxToken for Never {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, _: usize, _: F) -> R {
            match self {}
        }
    }

    #[rstest::rstest]
    #[case::middle(40123)]
    #[case::lowest(EPHEMERAL_MIN)]
    #[case::highest(u16::MAX)]
    fn a_positioned_counter_gives_the_next_connect_its_port(#[case] want: u16) {
        let mut resources = embassy_net::StackResources::<4>::new();
        let config = embassy_net::Config::ipv4_static(embassy_net::StaticConfigV4 {
            address: embassy_net::Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 5), 24),
            gateway: None,
            dns_servers: core::iter::empty().collect(),
        });
        let (stack, _runner) = embassy_net::new(Unplugged, config, &mut resources, 7);
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        let mut sock = TcpSocket::new(stack, &mut rx, &mut tx);
        for _ in 0..2 {
            position_local_port(stack, want);
            let connect = sock.connect(endpoint([10, 0, 0, 1], 80));
            assert!(embassy_futures::poll_once(connect).is_pending());
            assert_eq!(sock.local_endpoint().map(|e| e.port), Some(want));
            // Gone without a trace: nothing owed to the peer.
            forget(&mut sock);
            assert_eq!(sock.remote_endpoint(), None);
            assert_eq!(sock.state(), embassy_net::tcp::State::Closed);
        }
    }

    #[test]
    fn accepted_ids_start_at_the_base() {
        let mut p = pool();
        assert_eq!(p.next_accepted_id(), ACCEPTED_BASE);
        assert_eq!(p.next_accepted_id(), ACCEPTED_BASE + 1);
        p.next_accepted = u32::MAX;
        assert_eq!(p.next_accepted_id(), u32::MAX);
        assert_eq!(p.next_accepted_id(), ACCEPTED_BASE);
    }
}
