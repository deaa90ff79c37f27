//! Lab peers for the streams and sockets cases: servers inside the lab's network namespace
//! that the module connects to, and clients the harness opens towards the module.
//!
//! * [`Peers::start`] starts one thread per [`PeerSpec`]; each enters the lab's namespace
//!   (`setns`), binds its address (default the lab host [`DEFAULT_PEER_ADDR`]) and serves
//!   with non-blocking sockets and `poll` until [`Peers::stop`] (or drop). Every connection
//!   (UDP: every sender address) gets a [`ConnRecord`]: the bytes received and sent, byte
//!   exact, and how it ended. [`Peers::check`] compares them with a [`PeerCheck`].
//! * [`TcpClient`], [`UdpClient`] and [`flood`] open sockets inside the lab towards the
//!   module; [`Clients`] runs the spec tables' [`ClientAction`]s with them.
//!
//! **Invariant** (ARCHITECTURE.md): every socket here is created inside the lab's namespace
//! (or is bound to loopback there); peers bind only the lab's own addresses.

mod client;
mod hostile;
mod misbehave;
mod server;
mod tls;
mod vocab;

pub use hostile::{TAMPER_GREETING, UNSOLICITED_EXTENSION, client_hello};
pub use misbehave::parse_server_flight;

pub use client::{
    CONNECT_TIMEOUT, ClientError, Clients, FLOOD_MAX, FLOOD_THREADS, FloodReport, TcpClient,
    UdpClient, flood,
};
pub use tls::{
    Expect, HANDSHAKE_TIMEOUT, Handshake, SuiteName, TlsConnectSpec, TlsRecord, TlsVersion,
    client_context,
};
pub use vocab::{
    Bytes, BytesRegex, ClientAction, ClientMisdeed, FloodSpec, HostileAct, HostileAt, PeerCheck,
    PeerSpec, Proto, ReceiveToClose, TlsHostileSpec, TlsMisbehaveSpec, UdpSendSpec,
};

use crate::lab::{Lab, LabError};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where a peer binds unless its spec says `addr`: the lab host (`lab-host.lab`).
pub const DEFAULT_PEER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 5);

/// How long [`Peers::stop`] waits for a peer thread.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Byte `i` of the deterministic pattern [`PeerSpec::TcpSource`] sends: `i mod 251` (a prime
/// period, so a shift by a power of two shows).
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// The first `n` bytes of the pattern.
pub fn pattern(n: u64) -> Vec<u8> {
    (0..n).map(pattern_byte).collect()
}

/// Why peers or clients could not be set up. All infrastructure problems, except where a
/// case expects them (a refused connection: [`PeerError::is_refused`]).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(
        "{addr} is not an address of the lab (its router {router}, the lab hosts {hosts}, or \
         loopback); add it to the lab's hosts (LabConfig::hosts) to serve on it"
    )]
    AddressNotInLab { addr: Ipv4Addr, router: Ipv4Addr, hosts: String },
    #[error("{proto:?} port {addr} is already in use in lab {netns}{by}")]
    PortInUse { proto: Proto, addr: SocketAddr, netns: String, by: String },
    #[error("peer {index} ({kind}): {message}")]
    Config { index: usize, kind: &'static str, message: String },
    #[error("lab namespace: {0}")]
    Lab(#[from] LabError),
    #[error("enter lab namespace {path}: {source}")]
    Setns {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connect to {addr} from lab {netns}: {source}")]
    Connect {
        addr: SocketAddr,
        netns: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl PeerError {
    /// A connect the other side refused (RST): what a case may expect.
    pub fn is_refused(&self) -> bool {
        matches!(self, PeerError::Connect { source, .. }
            if source.kind() == std::io::ErrorKind::ConnectionRefused)
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PeerError {
        let what = what.into();
        move |source| PeerError::Io { what, source }
    }
}

/// How a connection ended (`None` in [`ConnRecord::closed`] while it is open).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The remote side closed (end of stream).
    ByRemote,
    /// The peer closed it after `close_after` bytes.
    CloseAfter,
    /// A source sent its bytes and closed.
    SourceDone,
    /// Reset by the remote side, or another socket error.
    Error(String),
    /// Still open when the peer stopped.
    Stopped,
}

/// What one connection (UDP: one sender address) brought.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnRecord {
    pub remote: SocketAddr,
    pub received: Vec<u8>,
    pub sent: Vec<u8>,
    /// UDP: datagrams from this sender. TCP: 0.
    pub datagrams: usize,
    pub accepted_at: Instant,
    pub closed: Option<Closed>,
    /// A TLS peer's view of the connection's TLS (`None` for plain peers).
    pub tls: Option<TlsRecord>,
}

impl ConnRecord {
    fn new(remote: SocketAddr) -> Self {
        Self {
            remote,
            received: Vec::new(),
            sent: Vec::new(),
            datagrams: 0,
            accepted_at: Instant::now(),
            closed: None,
            tls: None,
        }
    }
}

type Records = Arc<Mutex<Vec<ConnRecord>>>;

fn lock(records: &Records) -> std::sync::MutexGuard<'_, Vec<ConnRecord>> {
    records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One running peer.
#[derive(Debug)]
pub struct PeerHandle {
    spec: PeerSpec,
    local: SocketAddr,
    records: Records,
    failure: Arc<Mutex<Option<String>>>,
    /// Dropping it wakes the peer's thread, which then ends.
    wake: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

impl PeerHandle {
    pub fn spec(&self) -> &PeerSpec {
        &self.spec
    }
    /// The address it serves on (or, for `tcp_refuse`, where nothing listens).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
    /// A copy of its records so far, in accept order.
    pub fn records(&self) -> Vec<ConnRecord> {
        lock(&self.records).clone()
    }
    /// Everything it received, all connections in accept order.
    pub fn received(&self) -> Vec<u8> {
        lock(&self.records).iter().flat_map(|r| r.received.iter().copied()).collect()
    }
    /// Why its thread failed, if it did (its records stay valid up to then).
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }
    /// The ClientHello each connection began with (`None` for one that sent no ClientHello),
    /// in accept order: what a TLS peer was offered.
    pub fn client_hellos(&self) -> Vec<Option<crate::capture::tls::ClientHello>> {
        lock(&self.records).iter().map(|r| hostile::client_hello(&r.received)).collect()
    }
    /// Whether its thread still runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn stop(&mut self, deadline: Instant) -> Result<(), StopError> {
        self.wake.take();
        let Some(thread) = self.thread.take() else { return Ok(()) };
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (kind, local) = (self.spec.kind(), self.local);
        if !thread.is_finished() {
            return Err(StopError::Stuck { kind, local });
        }
        thread.join().map_err(|_| StopError::Panicked { kind, local })
    }
}

/// Why a peer check did not hold.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The check contradicts itself (spec tables are checked when they load, so this is the
    /// harness's fault).
    #[error("{0}")]
    Invalid(String),
    /// The case checks a peer it does not start.
    #[error("no peer {index} (the case starts {count})")]
    NoPeer { index: usize, count: usize },
    /// What the peer saw is not what the case expects: the module's failure.
    #[error("peer {index} ({kind} on {local}): {mismatch}{}", failed(peer_failure.as_deref()))]
    Mismatch {
        index: usize,
        kind: &'static str,
        local: SocketAddr,
        mismatch: String,
        /// Why the peer's thread failed, if it did.
        peer_failure: Option<String>,
    },
}

impl CheckError {
    /// Whether the module is at fault (else the harness is).
    pub fn is_mismatch(&self) -> bool {
        matches!(self, Self::Mismatch { .. })
    }
}

fn failed(failure: Option<&str>) -> String {
    failure.map(|f| format!(" (the peer failed: {f})")).unwrap_or_default()
}

/// A peer thread that did not stop.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("peer {kind} on {local} did not stop")]
    Stuck { kind: &'static str, local: SocketAddr },
    #[error("peer {kind} on {local} panicked")]
    Panicked { kind: &'static str, local: SocketAddr },
}

/// The peers that did not stop.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct StopErrors(pub Vec<StopError>);

/// The running peers of a case. Stopped (threads joined, sockets closed) on drop.
#[derive(Debug)]
pub struct Peers {
    netns: String,
    peers: Vec<PeerHandle>,
}

impl Peers {
    /// Starts `specs` inside `lab`, in order. Each is bound (listening) when this returns;
    /// on an error, the ones already started are stopped.
    pub fn start(lab: &Lab, specs: &[PeerSpec]) -> Result<Peers, PeerError> {
        Self::start_with_pki(lab, specs, None)
    }

    /// [`Peers::start`], with the run's PKI for the TLS peers' certificates.
    pub fn start_with_pki(
        lab: &Lab,
        specs: &[PeerSpec],
        pki: Option<&crate::pki::Pki>,
    ) -> Result<Peers, PeerError> {
        let mut peers = Peers { netns: lab.netns_name().to_string(), peers: Vec::new() };
        validate(lab, specs)?;
        for (index, spec) in specs.iter().enumerate() {
            let handle = server::spawn(&lab.netns_path(), lab.netns_name(), spec, index, pki)?;
            peers.peers.push(handle);
        }
        Ok(peers)
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
    pub fn get(&self, index: usize) -> Option<&PeerHandle> {
        self.peers.get(index)
    }
    pub fn iter(&self) -> impl Iterator<Item = &PeerHandle> {
        self.peers.iter()
    }
    /// The lab namespace they run in.
    pub fn netns_name(&self) -> &str {
        &self.netns
    }

    /// Checks what peer `index` received; waits up to the check's `within_ms` (default
    /// 1000) for it to come true. `Err` says what was expected and what came (a case fails).
    pub fn check(&self, index: usize, check: &PeerCheck) -> Result<(), CheckError> {
        check.validate().map_err(CheckError::Invalid)?;
        let peer =
            self.peers.get(index).ok_or(CheckError::NoPeer { index, count: self.peers.len() })?;
        let within = Duration::from_millis(check.within_ms.unwrap_or(1000));
        let deadline = Instant::now() + within;
        loop {
            let result = check_records(&peer.records(), check);
            match result {
                Ok(()) => return Ok(()),
                Err(mismatch) if Instant::now() >= deadline => {
                    return Err(CheckError::Mismatch {
                        index,
                        kind: peer.spec.kind(),
                        local: peer.local,
                        mismatch,
                        peer_failure: peer.failure(),
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Stops every peer: wakes their threads, joins them (bounded time), closes every socket.
    /// Errors name the peers that did not stop or panicked.
    pub fn stop(&mut self) -> Result<(), StopErrors> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        // Wake all first, then join: they stop in parallel.
        for p in &mut self.peers {
            p.wake.take();
        }
        let errors: Vec<StopError> =
            self.peers.iter_mut().filter_map(|p| p.stop(deadline).err()).collect();
        if errors.is_empty() { Ok(()) } else { Err(StopErrors(errors)) }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: lab peers in {}: {e}", self.netns);
        }
    }
}

fn check_records(records: &[ConnRecord], check: &PeerCheck) -> Result<(), String> {
    if let Some(n) = check.connections
        && records.len() != n
    {
        return Err(format!("expected {n} connection(s), saw {}", records.len()));
    }
    let got: Vec<u8> = match check.connection {
        Some(i) => match records.get(i) {
            Some(r) => r.received.clone(),
            None => return Err(format!("no connection {i} (saw {})", records.len())),
        },
        None => records.iter().flat_map(|r| r.received.iter().copied()).collect(),
    };
    let expected = match (&check.received, check.received_len, check.received_pattern) {
        (Some(b), _, _) => Some(b.0.clone()),
        (_, _, Some(n)) => Some(pattern(n)),
        (_, Some(n), _) => {
            if got.len() as u64 != n {
                return Err(format!("expected {n} bytes, received {}", got.len()));
            }
            None
        }
        _ => None,
    };
    if let Some(expected) = expected
        && got != expected
    {
        return Err(describe_mismatch(&expected, &got));
    }
    if check.checks_tls() {
        let chosen: Vec<(usize, &ConnRecord)> = match check.connection {
            Some(i) => records.get(i).map(|r| vec![(i, r)]).unwrap_or_default(),
            None => records.iter().enumerate().collect(),
        };
        if chosen.is_empty() {
            return Err("no TLS connection yet".into());
        }
        for (i, r) in chosen {
            let Some(tls) = &r.tls else {
                return Err(format!("connection {i} is not TLS (not a tls_server peer)"));
            };
            check_tls(tls, check).map_err(|m| format!("connection {i} from {}: {m}", r.remote))?;
        }
    }
    check_offers(records, check)
}

/// The TLS fields of a check against one connection's record.
fn check_tls(tls: &TlsRecord, check: &PeerCheck) -> Result<(), String> {
    let seen = || {
        format!(
            "handshake {}, version {}, suite {}, client certificate {}",
            match &tls.handshake {
                Handshake::InProgress => "in progress".to_string(),
                Handshake::Ok => "ok".to_string(),
                Handshake::Failed(e) => format!("failed ({e})"),
            },
            tls.version.map_or("-", TlsVersion::as_str),
            tls.suite.as_deref().unwrap_or("-"),
            tls.client_subject.as_deref().unwrap_or("none"),
        )
    };
    if tls.handshake == Handshake::InProgress {
        return Err(format!("the handshake has not ended ({})", seen()));
    }
    if let Some(want) = check.handshake {
        let ok = tls.handshake == Handshake::Ok;
        if ok != (want == Expect::Ok) {
            return Err(format!("expected the handshake {want:?}, saw {}", seen()));
        }
    }
    if let Some(text) = &check.handshake_error {
        let Handshake::Failed(e) = &tls.handshake else {
            return Err(format!("expected a failed handshake ({text}), saw {}", seen()));
        };
        if !e.contains(text.as_str()) {
            return Err(format!("expected a failure containing `{text}`, saw {}", seen()));
        }
    }
    if let Some(v) = check.version
        && tls.version != Some(v)
    {
        return Err(format!("expected {v}, saw {}", seen()));
    }
    if let Some(s) = &check.suite
        && tls.suite.as_deref() != Some(s.openssl())
    {
        return Err(format!("expected suite {}, saw {}", s.openssl(), seen()));
    }
    if let Some(want) = check.client_cert
        && tls.client_subject.is_some() != want
    {
        let which = if want { "a" } else { "no" };
        return Err(format!("expected {which} client certificate, saw {}", seen()));
    }
    Ok(())
}

/// `offered_suites` / `offered_max_version`: the ClientHello of the selected connection, or
/// of every connection.
fn check_offers(records: &[ConnRecord], check: &PeerCheck) -> Result<(), String> {
    if check.offered_suites.is_none() && check.offered_max_version.is_none() {
        return Ok(());
    }
    let selected: Vec<(usize, &ConnRecord)> = match check.connection {
        Some(i) => records.get(i).map(|r| vec![(i, r)]).unwrap_or_default(),
        None => records.iter().enumerate().collect(),
    };
    if selected.is_empty() {
        return Err("no connection offered anything (none was accepted)".into());
    }
    for (i, r) in selected {
        let Some(hello) = hostile::client_hello(&r.received) else {
            return Err(format!("connection {i} sent no ClientHello ({} bytes)", r.received.len()));
        };
        let suites = || {
            let s: Vec<String> = hello.suites.iter().map(|s| format!("0x{s:04X}")).collect();
            s.join(", ")
        };
        if let Some(want) = &check.offered_suites
            && !want.is(&hello.suites)
        {
            return Err(format!(
                "connection {i} offered [{}], expected {}",
                suites(),
                want.describe()
            ));
        }
        if let Some(v) = check.offered_max_version
            && hello.max_version() != v
        {
            return Err(format!(
                "connection {i} offered TLS up to {}, expected up to {v}",
                hello.max_version()
            ));
        }
    }
    Ok(())
}

/// "expected N bytes, received M; first difference at byte i: ..." with short excerpts.
pub(crate) fn describe_mismatch(expected: &[u8], got: &[u8]) -> String {
    let at =
        expected.iter().zip(got).position(|(a, b)| a != b).unwrap_or(expected.len().min(got.len()));
    let excerpt = |b: &[u8]| {
        let from = at.saturating_sub(8);
        let to = (at + 24).min(b.len());
        let text = crate::text::escape_bytes(b.get(from..to).unwrap_or_default());
        if from > 0 { format!("…{text}") } else { text }
    };
    format!(
        "expected {} bytes, received {}; first difference at byte {at}: expected `{}`, received `{}`",
        expected.len(),
        got.len(),
        excerpt(expected),
        excerpt(got)
    )
}

/// Addresses exist in the lab, and no two peers want the same protocol, address and port.
fn validate(lab: &Lab, specs: &[PeerSpec]) -> Result<(), PeerError> {
    let mut seen: Vec<(Proto, Ipv4Addr, u16, usize)> = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let addr = spec.addr().unwrap_or(DEFAULT_PEER_ADDR);
        check_lab_addr(lab, addr)?;
        if let PeerSpec::TcpSource { bytes: 0, .. } = spec {
            return Err(PeerError::Config {
                index,
                kind: spec.kind(),
                message: "`bytes` must be at least 1".into(),
            });
        }
        if let PeerSpec::TlsHostile(h) = spec {
            h.validate().map_err(|message| PeerError::Config {
                index,
                kind: spec.kind(),
                message,
            })?;
        }
        if spec.close_after_bytes() == Some(0) {
            return Err(PeerError::Config {
                index,
                kind: spec.kind(),
                message: "`close_after` must be at least 1".into(),
            });
        }
        let port = spec.port();
        if port != 0
            && let Some((_, _, _, other)) = seen.iter().find(|(p, a, pt, _)| {
                *p == spec.proto() && *pt == port && (*a == addr || a.is_unspecified())
            })
        {
            return Err(PeerError::Config {
                index,
                kind: spec.kind(),
                message: format!("{addr}:{port} is taken by peer {other}"),
            });
        }
        seen.push((spec.proto(), addr, port, index));
    }
    Ok(())
}

/// Whether `addr` is one of the lab's own addresses (router, lab hosts) or loopback.
pub fn check_lab_addr(lab: &Lab, addr: Ipv4Addr) -> Result<(), PeerError> {
    let config = lab.config();
    if addr.is_loopback() || addr == config.router || config.hosts.iter().any(|h| h.addr == addr) {
        return Ok(());
    }
    let mut hosts: Vec<String> = config.hosts.iter().map(|h| h.addr.to_string()).collect();
    hosts.dedup();
    Err(PeerError::AddressNotInLab { addr, router: config.router, hosts: hosts.join(", ") })
}

/// Enters the network namespace at `path` on the calling thread (a thread of its own: never
/// call it on a thread that must stay where it is).
fn enter(path: &Path) -> Result<(), PeerError> {
    let setns_err = |source| PeerError::Setns { path: path.display().to_string(), source };
    let file = std::fs::File::open(path).map_err(setns_err)?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| setns_err(std::io::Error::from(e)))
}
