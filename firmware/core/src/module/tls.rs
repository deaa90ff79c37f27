//! TLS over the core's TCP connections: a layer between the services and the platform.
//!
//! A service opens a TCP connection as always and asks for TLS on it ([`TlsLayer::client`]
//! for a connection it opens, [`TlsLayer::listener`] for the clients a listener accepts). The
//! layer then stands between that connection's events and its owner, and between the owner's
//! requests and the platform:
//!
//! * `TcpConnected` / `TcpAccepted` are held while the handshake runs (the handshake's
//!   flights go out as the layer's own sends) and handed to the owner once it is over, so
//!   every service sees a TLS connection exactly as a TCP one, only later;
//! * `Received` carries ciphertext: the owner gets the plaintext;
//! * a `Send` of the owner is encrypted on its way out ([`Module::next_action`]) and its
//!   `Sent` answered with the owner's length; the `Sent` of the layer's own sends are its
//!   own;
//! * a `Close` of the owner sends close_notify first;
//! * a failed handshake (the engine's failure, the peer closing, or
//!   `network.tls.handshake_timeout`) is `ConnFailed` with [`ConnFailure::Tls`] for the owner
//!   of a connection it opened, and a log line for an accepted client (no one waits for it);
//!   the layer closes the TCP connection itself.
//!
//! The engine is the platform's ([`crate::tls::TlsEngine`], [`Module::set_tls`]); without one
//! every attempt fails with `ERROR_FEATURE_UNAVAILABLE`.

use super::*;
use crate::config::{ServerTls, TlsSettings};
use crate::net::ConnFailure;
use crate::tls::{
    self as tls_api, Progress, Role, TlsCode, TlsConfig, TlsEngine, TlsFailure, Verify,
};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;

/// One TLS session over one TCP connection.
struct Session {
    session: Box<dyn tls_api::TlsSession>,
    /// The owner's `TcpConnected` / `TcpAccepted`, held until the handshake is over.
    held: Option<NetEvent>,
    /// The handshake's deadline (`None` once it is over).
    deadline: Option<Instant>,
    /// For each send on the wire not yet answered by `Sent`, oldest first: the owner's
    /// plaintext length, or `None` for the layer's own.
    sends: VecDeque<Option<usize>>,
    /// The peer's address (for the plaintext's `Received`).
    peer: (Ipv4, u16),
    /// Accepted on a listener (a failure is logged, not reported to an owner).
    accepted: bool,
    /// Log the handshake's outcome (`http.server.tls_log_clients`).
    log: bool,
}

/// A certificate and its key, when there is one.
type OwnCert = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The TLS part: the engine, the sessions, what waits to become one.
pub(super) struct TlsLayer {
    cfg: TlsSettings,
    engine: Option<Box<dyn TlsEngine>>,
    sessions: BTreeMap<ConnId, Session>,
    /// Connections opened as TLS clients, until their TCP connection is up.
    opening: BTreeMap<ConnId, TlsConfig>,
    /// Listeners whose clients speak TLS: the server's configuration, and whether to log
    /// each client's handshake.
    listeners: BTreeMap<ConnId, (TlsConfig, bool)>,
    /// The layer's own sends and closes, sent before anything else.
    raw: VecDeque<NetRequest>,
}

impl core::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("cfg", &self.cfg)
            .field("engine", &self.engine.is_some())
            .field("sessions", &self.sessions.keys().collect::<Vec<_>>())
            .field("opening", &self.opening.keys().collect::<Vec<_>>())
            .field("listeners", &self.listeners.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What the layer made of an event: events for the owners, and log lines.
#[derive(Default)]
pub(super) struct Passed {
    pub(super) events: Vec<NetEvent>,
    pub(super) logs: Vec<(u8, String)>,
}

impl TlsLayer {
    pub(super) fn new(vars: &Vars) -> Self {
        Self {
            cfg: TlsSettings::from_vars(vars),
            engine: None,
            sessions: BTreeMap::new(),
            opening: BTreeMap::new(),
            listeners: BTreeMap::new(),
            raw: VecDeque::new(),
        }
    }

    /// `network.tls.*` changed.
    pub(super) fn configure(&mut self, vars: &Vars) {
        self.cfg = TlsSettings::from_vars(vars);
    }

    pub(super) fn cfg(&self) -> &TlsSettings {
        &self.cfg
    }

    pub(super) fn set_engine(&mut self, engine: Box<dyn TlsEngine>) {
        self.engine = Some(engine);
    }

    pub(super) fn take_engine(&mut self) -> Option<Box<dyn TlsEngine>> {
        self.engine.take()
    }

    /// `conn`, being opened, speaks TLS as a client once connected.
    pub(super) fn client(&mut self, conn: ConnId, config: TlsConfig) {
        self.opening.insert(conn, config);
    }

    /// The clients `listener` accepts speak TLS; `log`: log each one's handshake.
    pub(super) fn listener(&mut self, listener: ConnId, config: TlsConfig, log: bool) {
        self.listeners.insert(listener, (config, log));
    }

    /// An event from the platform: what its owner gets instead.
    pub(super) fn incoming(&mut self, event: NetEvent, now: Instant) -> Passed {
        let mut passed = Passed::default();
        match event {
            NetEvent::TcpConnected { conn, .. } => match self.opening.remove(&conn) {
                Some(config) => {
                    self.begin(conn, &config, event, ([0; 4], 0), false, false, now, &mut passed);
                }
                None => passed.events.push(event),
            },
            NetEvent::TcpAccepted { listener, conn, peer } => {
                match self.listeners.get(&listener).cloned() {
                    Some((config, log)) => {
                        self.begin(conn, &config, event, peer, true, log, now, &mut passed);
                    }
                    None => passed.events.push(event),
                }
            }
            NetEvent::Received { conn, ref data, from } => match self.sessions.get_mut(&conn) {
                Some(s) => {
                    s.peer = from;
                    let progress = s.session.feed(data);
                    self.advance(conn, progress, &mut passed);
                }
                None => passed.events.push(event),
            },
            NetEvent::Sent { conn, .. } => match self.sessions.get_mut(&conn) {
                Some(s) => {
                    if let Some(Some(len)) = s.sends.pop_front() {
                        passed.events.push(NetEvent::Sent { conn, len });
                    }
                }
                None => passed.events.push(event),
            },
            NetEvent::Closed { conn } | NetEvent::ConnFailed { conn, .. } => {
                self.opening.remove(&conn);
                match self.sessions.remove(&conn) {
                    Some(mut s) if s.deadline.is_some() => {
                        let failure = match s.session.eof() {
                            Progress::Failed(f) => f,
                            _ => TlsFailure::new(TlsCode::ReceiveFailed, s.session.state(), 0),
                        };
                        // The platform is done with the connection: nothing to close.
                        self.fail(conn, s, failure, false, &mut passed);
                    }
                    // Established (the owner sees its connection end as TCP's), or not TLS.
                    _ => passed.events.push(event),
                }
            }
            event => passed.events.push(event),
        }
        passed
    }

    /// Starts a session on a connection that just came up; `event` is the owner's, held.
    #[allow(clippy::too_many_arguments)]
    fn begin(
        &mut self,
        conn: ConnId,
        config: &TlsConfig,
        event: NetEvent,
        peer: (Ipv4, u16),
        accepted: bool,
        log: bool,
        now: Instant,
        passed: &mut Passed,
    ) {
        let made = match self.engine.as_mut() {
            Some(engine) => engine.session(config),
            None => {
                Err(TlsFailure::new(TlsCode::FeatureUnavailable, tls_api::state::HELLO_REQUEST, 0))
            }
        };
        let mut session = match made {
            Ok(session) => session,
            Err(failure) => {
                self.raw.push_back(NetRequest::Close { conn });
                if failure.code == TlsCode::OutOfMemory {
                    passed.logs.push((console::level::ERROR, "TLS malloc failed".into()));
                }
                report(conn, &event, accepted, log, failure, passed);
                return;
            }
        };
        let progress = session.start();
        let s = Session {
            session,
            held: Some(event),
            deadline: Some(now + self.cfg.handshake_timeout),
            sends: VecDeque::new(),
            peer,
            accepted,
            log,
        };
        self.sessions.insert(conn, s);
        self.advance(conn, progress, passed);
    }

    /// After the session took something: its ciphertext goes out, and the owner learns what
    /// changed.
    fn advance(&mut self, conn: ConnId, progress: Progress, passed: &mut Passed) {
        let Some(s) = self.sessions.get_mut(&conn) else { return };
        let out = s.session.take_ciphertext();
        if !out.is_empty() {
            s.sends.push_back(None);
            self.raw.push_back(NetRequest::Send { conn, data: out, to: None });
        }
        match progress {
            Progress::Handshaking => {}
            Progress::Established | Progress::Closed => {
                if s.deadline.take().is_some() {
                    if s.log {
                        let text = match s.session.negotiated() {
                            Some((suite, version)) => {
                                format!(
                                    "TLS client {}: {} {}",
                                    peer_text(s.peer),
                                    version.name(),
                                    suite.name
                                )
                            }
                            None => format!("TLS client {}: handshake over", peer_text(s.peer)),
                        };
                        passed.logs.push((console::level::INFO, text));
                    }
                    if let Some(held) = s.held.take() {
                        passed.events.push(held);
                    }
                }
                let data = s.session.take_plaintext();
                if !data.is_empty() {
                    passed.events.push(NetEvent::Received { conn, data, from: s.peer });
                }
            }
            Progress::Failed(failure) => {
                let Some(s) = self.sessions.remove(&conn) else { return };
                if s.deadline.is_none() {
                    // After the handshake (a record that does not decrypt): the connection
                    // ends for its owner.
                    self.raw.push_back(NetRequest::Close { conn });
                    passed.logs.push((console::level::ERROR, failure.to_string()));
                    passed
                        .events
                        .push(NetEvent::ConnFailed { conn, reason: ConnFailure::Tls(failure) });
                } else {
                    self.fail(conn, s, failure, true, passed);
                }
            }
        }
    }

    /// A handshake failed: the owner learns it, and (`close`) the TCP connection is closed.
    fn fail(
        &mut self,
        conn: ConnId,
        s: Session,
        failure: TlsFailure,
        close: bool,
        passed: &mut Passed,
    ) {
        if close {
            self.raw.push_back(NetRequest::Close { conn });
        }
        if failure.code == TlsCode::OutOfMemory || s.session.alloc_failed() {
            passed.logs.push((console::level::ERROR, "TLS malloc failed".into()));
        }
        if let Some(held) = &s.held {
            report(conn, held, s.accepted, true, failure, passed);
        }
    }

    /// A request of a service on its way to the platform: encrypted, preceded by
    /// close_notify, or as it is.
    pub(super) fn outgoing(&mut self, request: NetRequest) -> (NetRequest, Option<NetRequest>) {
        match request {
            NetRequest::Send { conn, data, to } => match self.sessions.get_mut(&conn) {
                Some(s) if s.deadline.is_none() => {
                    let len = data.len();
                    match s.session.write(&data) {
                        Ok(()) => {
                            s.sends.push_back(Some(len));
                            let data = s.session.take_ciphertext();
                            (NetRequest::Send { conn, data, to }, None)
                        }
                        Err(_) => {
                            // The session is broken: the owner's connection ends.
                            self.sessions.remove(&conn);
                            (NetRequest::Close { conn }, None)
                        }
                    }
                }
                _ => (NetRequest::Send { conn, data, to }, None),
            },
            NetRequest::Close { conn } => {
                self.opening.remove(&conn);
                match self.sessions.remove(&conn) {
                    Some(mut s) if s.deadline.is_none() => {
                        s.session.close_notify();
                        let data = s.session.take_ciphertext();
                        (
                            NetRequest::Send { conn, data, to: None },
                            Some(NetRequest::Close { conn }),
                        )
                    }
                    _ => (NetRequest::Close { conn }, None),
                }
            }
            NetRequest::TcpUnlisten { listener } => {
                self.listeners.remove(&listener);
                (request, None)
            }
            request => (request, None),
        }
    }

    /// The layer's own next request (handshake flights, alerts, closes).
    pub(super) fn next_raw(&mut self) -> Option<NetRequest> {
        self.raw.pop_front()
    }

    pub(super) fn poll_at(&self) -> Option<Instant> {
        self.sessions.values().filter_map(|s| s.deadline).min()
    }

    /// Handshakes past `network.tls.handshake_timeout` fail with `HANDSHAKE_TIMEOUT`.
    pub(super) fn tick(&mut self, now: Instant) -> Passed {
        let mut passed = Passed::default();
        let due: Vec<ConnId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline.is_some_and(|d| d <= now))
            .map(|(c, _)| *c)
            .collect();
        for conn in due {
            let Some(s) = self.sessions.remove(&conn) else { continue };
            let failure = TlsFailure::new(TlsCode::HandshakeTimeout, s.session.state(), 0);
            self.fail(conn, s, failure, true, &mut passed);
        }
        passed
    }
}

/// Hands a handshake failure to whoever learns of it: the owner of a connection it opened
/// (`ConnFailed`), or the log for a client of a listener.
fn report(
    conn: ConnId,
    held: &NetEvent,
    accepted: bool,
    log: bool,
    failure: TlsFailure,
    passed: &mut Passed,
) {
    if accepted {
        if log {
            let who = match held {
                NetEvent::TcpAccepted { peer, .. } => peer_text(*peer),
                _ => String::new(),
            };
            passed.logs.push((console::level::ERROR, format!("TLS client {who}: {failure}")));
        }
    } else {
        passed.events.push(NetEvent::ConnFailed { conn, reason: ConnFailure::Tls(failure) });
    }
}

fn peer_text((ip, port): (Ipv4, u16)) -> String {
    format!("{}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3])
}

impl Module {
    /// Gives the module the platform's TLS engine (after every boot: see
    /// [`Module::take_tls`]).
    pub fn set_tls(&mut self, engine: Box<dyn TlsEngine>) {
        self.svc.tls.set_engine(engine);
    }

    /// Takes the TLS engine back (before a reboot drops this module).
    pub fn take_tls(&mut self) -> Option<Box<dyn TlsEngine>> {
        self.svc.tls.take_engine()
    }

    /// A file's bytes, if the file exists and is complete.
    fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.svc.files.fs.get(name).filter(|f| f.is_complete()).map(|f| f.data().to_vec())
    }

    /// The TLS client's configuration from `network.tls.*` and the file system:
    /// `server_name` is the host name the module connects to (`None`: an address).
    pub(super) fn tls_client_config(
        &self,
        server_name: Option<String>,
    ) -> Result<TlsConfig, TlsFailure> {
        let cfg = self.svc.tls.cfg();
        let ca = self.ca_file(cfg.verify)?;
        let (cert, key) = self.own_cert(&cfg.client_cert, &cfg.client_key, false)?;
        Ok(TlsConfig {
            role: Role::Client { server_name },
            ca,
            verify: if cfg.verify { Verify::Required } else { Verify::None },
            cert,
            key,
            max_version: cfg.max_version,
            now_utc: u64::try_from(self.rtc_now(self.clock)).unwrap_or(0),
        })
    }

    /// A TLS server's configuration: its certificate and key (`server`), the CA
    /// (`network.tls.ca_cert`) when it verifies its clients.
    pub(super) fn tls_server_config(&self, server: &ServerTls) -> Result<TlsConfig, TlsFailure> {
        let cfg = self.svc.tls.cfg();
        let (cert, key) = self.own_cert(&server.cert, &server.key, true)?;
        let ca = self.ca_file(server.verify_peer)?;
        Ok(TlsConfig {
            role: Role::Server,
            ca,
            verify: if server.verify_peer { Verify::Required } else { Verify::None },
            cert,
            key,
            max_version: cfg.max_version,
            now_utc: u64::try_from(self.rtc_now(self.clock)).unwrap_or(0),
        })
    }

    /// The CA file (`network.tls.ca_cert`) when the peer is verified: missing, it is
    /// `ERROR_CA_CHAIN_REQUIRED` (assumed).
    fn ca_file(&self, verify: bool) -> Result<Option<Vec<u8>>, TlsFailure> {
        if !verify {
            return Ok(None);
        }
        let missing = TlsFailure::new(TlsCode::CaChainRequired, tls_api::state::HELLO_REQUEST, 0);
        self.file_bytes(&self.svc.tls.cfg().ca_cert).map(Some).ok_or(missing)
    }

    /// A certificate and its key from the file system: both named and present, or (for a
    /// client, `required: false`) neither named. A certificate missing is
    /// `ERROR_CERTIFICATE_REQUIRED`, its key `ERROR_PRIVATE_KEY_REQUIRED` (assumed).
    fn own_cert(&self, cert: &str, key: &str, required: bool) -> Result<OwnCert, TlsFailure> {
        let at = tls_api::state::HELLO_REQUEST;
        if !required && cert.is_empty() && key.is_empty() {
            return Ok((None, None));
        }
        let cert =
            self.file_bytes(cert).ok_or(TlsFailure::new(TlsCode::CertificateRequired, at, 0))?;
        let key =
            self.file_bytes(key).ok_or(TlsFailure::new(TlsCode::PrivateKeyRequired, at, 0))?;
        Ok((Some(cert), Some(key)))
    }

    /// An event through the TLS layer, then to its owners.
    pub(super) fn tls_incoming(&mut self, event: NetEvent, now: Instant) -> Vec<NetEvent> {
        let passed = self.svc.tls.incoming(event, now);
        for (level, text) in passed.logs {
            self.log(level, &text);
        }
        passed.events
    }

    pub(super) fn tls_poll_at(&self) -> Option<Instant> {
        self.svc.tls.poll_at()
    }

    pub(super) fn tls_tick(&mut self, now: Instant) {
        let passed = self.svc.tls.tick(now);
        for (level, text) in passed.logs {
            self.log(level, &text);
        }
        for event in passed.events {
            let owner = self.event_owner(&event);
            self.in_origin(owner, |m| m.net_event_here(event, now));
        }
    }
}
