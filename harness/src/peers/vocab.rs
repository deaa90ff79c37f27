//! The spec tables' words for lab peers, checks on what they received, and client actions
//! towards the module. Every type deserializes with serde (unknown keys are errors) so a spec
//! step can hold it as its typed value, like [`crate::ap::Fault`].

use super::tls::{Expect, SuiteName, TlsConnectSpec, TlsVersion};
use crate::capture::expect::SuiteSet;
use crate::capture::tls::Version;
use crate::pki::MaterialRef;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Bytes written in a spec table as text with the escapes of `raw` steps
/// (`\r \n \t \\ \" \0 \xHH`, see [`crate::text::unescape_raw`]). TOML decodes its own escapes
/// first, so `"hello\r\n"` is already CR LF; write `'\x00'` (literal string) or `"\\x00"` for
/// a byte escape.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub struct Bytes(pub Vec<u8>);

impl TryFrom<String> for Bytes {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        crate::text::unescape_raw(&text).map(Bytes)
    }
}

impl From<&[u8]> for Bytes {
    fn from(b: &[u8]) -> Self {
        Bytes(b.to_vec())
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Self {
        Bytes(s.as_bytes().to_vec())
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::text::escape_bytes(&self.0))
    }
}

/// A lab peer a case starts: a server inside the lab namespace, bound to `addr` (default
/// the lab host 10.77.0.5; any address of the lab's bridge, or loopback) and `port`.
///
/// ```toml
/// peer = { kind = "tcp_echo", port = 7000 }                    # echo back what arrives
/// peer = { kind = "tcp_echo", port = 7000, close_after = 10, delay_ms = 200 }
/// peer = { kind = "tcp_sink", port = 7001 }                    # read and keep everything
/// peer = { kind = "tcp_source", port = 7002, bytes = 4096 }    # send the pattern, then close
/// peer = { kind = "tcp_source", port = 7002, bytes = 4096, keep_open = true }
/// peer = { kind = "tcp_refuse", port = 7004 }                  # nothing listens: refused
/// peer = { kind = "udp_echo", port = 7003, addr = "10.77.0.5" }
/// peer = { kind = "udp_sink", port = 7005 }
/// peer = { kind = "tls_server", port = 4433, cert = "server-rsa" }   # TLS, echoes
/// peer = { kind = "tls_server", port = 4433, cert = "server-p256", client_ca = "ca-p256", min_version = "TLSv1.2", max_version = "TLSv1.2", ciphers = ["ECDHE-ECDSA-AES128-GCM-SHA256"] }
/// peer = { kind = "tls_hostile", port = 4433, at = "server_hello", act = "stall" }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerSpec {
    /// Accepts connections and sends back every byte it reads, `delay_ms` after it arrived;
    /// with `close_after`, reads (and echoes) at most that many bytes per connection, then
    /// closes it. Closes its side when the client does.
    TcpEcho {
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<Ipv4Addr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close_after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_ms: Option<u64>,
    },
    /// Accepts connections and keeps every byte it reads; with `close_after`, closes a
    /// connection once it has read that many bytes from it.
    TcpSink {
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<Ipv4Addr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close_after: Option<u64>,
    },
    /// On each accepted connection sends `bytes` bytes of [`pattern`](super::pattern),
    /// `delay_ms` after the accept; then closes its sending side (FIN) unless `keep_open`.
    /// Whatever arrives is recorded.
    TcpSource {
        port: u16,
        bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<Ipv4Addr>,
        #[serde(default, skip_serializing_if = "is_false")]
        keep_open: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_ms: Option<u64>,
    },
    /// Nothing listens on this port: a connection to it is refused (RST). Reserves the port
    /// so no other peer of the case takes it.
    TcpRefuse {
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<Ipv4Addr>,
    },
    /// Sends every datagram back to its sender, `delay_ms` after it arrived.
    UdpEcho {
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<Ipv4Addr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_ms: Option<u64>,
    },
    /// Keeps every datagram (records per sender address).
    UdpSink {
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<Ipv4Addr>,
    },
    /// A TLS server (OpenSSL) presenting the lab PKI's `cert` (with its intermediates unless
    /// `send_chain = false`), between `min_version` and `max_version` (default OpenSSL's:
    /// TLS 1.2 and 1.3), offering `ciphers` (OpenSSL, IANA or the chapter's mbedTLS names;
    /// default OpenSSL's list); with `client_ca`, it requires a client certificate that chains
    /// to that CA. Echoes the application data. Records per connection the negotiated
    /// version and suite, the client certificate's subject, the bytes both ways and how the
    /// handshake ended.
    TlsServer {
        port: u16,
        cert: MaterialRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<Ipv4Addr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send_chain: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_version: Option<TlsVersion>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_version: Option<TlsVersion>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ciphers: Vec<SuiteName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ca: Option<MaterialRef>,
    },
    /// A TLS server that misbehaves at a chosen step ([`TlsHostileSpec`]).
    TlsHostile(TlsHostileSpec),
}

/// `tls_hostile`: answers a ClientHello with hand-built records and misbehaves (`act`) after
/// the valid flight up to `at` (default `client_hello`: instead of the ServerHello).
///
/// ```toml
/// peer = { kind = "tls_hostile", port = 4433, act = "close" }                  # after the ClientHello
/// peer = { kind = "tls_hostile", port = 4433, at = "server_hello", act = "stall" }
/// peer = { kind = "tls_hostile", port = 4433, at = "certificate", act = "reset" }
/// peer = { kind = "tls_hostile", port = 4433, act = "alert", description = 40 }  # level 2 unless given
/// peer = { kind = "tls_hostile", port = 4433, act = "huge_certificate", cert_bytes = 20000 }
/// peer = { kind = "tls_hostile", port = 4433, act = "tamper" }                 # bad MAC after a full handshake
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsHostileSpec {
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<Ipv4Addr>,
    #[serde(default)]
    pub at: HostileAt,
    pub act: HostileAct,
    /// `alert`: the alert's level (1 warning, 2 fatal; default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// `alert`: the alert's description (RFC 5246 §7.2, e.g. 40 handshake_failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<u8>,
    /// `huge_certificate`: the Certificate message's size at least (default 20 000: more
    /// than a 16 KB record buffer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_bytes: Option<usize>,
}

impl TlsHostileSpec {
    pub fn new(port: u16, at: HostileAt, act: HostileAct) -> Self {
        TlsHostileSpec {
            port,
            addr: None,
            at,
            act,
            level: None,
            description: None,
            cert_bytes: None,
        }
    }
    pub(super) fn level(&self) -> u8 {
        self.level.unwrap_or(2)
    }
    pub(super) fn description(&self) -> u8 {
        self.description.unwrap_or(40)
    }
    pub(super) fn cert_bytes(&self) -> usize {
        self.cert_bytes.unwrap_or(20_000)
    }
    /// What contradicts itself.
    pub fn validate(&self) -> Result<(), String> {
        if self.act == HostileAct::Alert && self.description.is_none() {
            return Err("`act = \"alert\"` needs `description` (e.g. 40, handshake_failure)".into());
        }
        if self.act != HostileAct::Alert && (self.level.is_some() || self.description.is_some()) {
            return Err("`level` and `description` go with `act = \"alert\"` only".into());
        }
        if self.act != HostileAct::HugeCertificate && self.cert_bytes.is_some() {
            return Err("`cert_bytes` goes with `act = \"huge_certificate\"` only".into());
        }
        let fixed = matches!(
            self.act,
            HostileAct::BadExtension
                | HostileAct::UnofferedSuite
                | HostileAct::HugeCertificate
                | HostileAct::Tamper
                | HostileAct::AppData
                | HostileAct::BadKeyExchange
                | HostileAct::BadCertificateRequest
                | HostileAct::HelloDoneBody
        );
        if fixed && self.at != HostileAt::ClientHello {
            return Err(format!(
                "`act = \"{}\"` chooses its own step: leave out `at`",
                self.act.name()
            ));
        }
        Ok(())
    }
}

/// How far a `tls_hostile` peer goes well before it misbehaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostileAt {
    /// Right after the ClientHello: nothing sent yet.
    #[default]
    ClientHello,
    /// After a valid ServerHello.
    ServerHello,
    /// After a valid ServerHello and Certificate.
    Certificate,
}

/// What a `tls_hostile` peer does wrong. In brackets, the chapter's TLS error code ("TLS
/// Error Codes") a module's client would most plausibly report; the chapter does not say
/// which, so cases that expect one are `assumed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostileAct {
    /// Sends nothing more; keeps the connection open (5031 HANDSHAKE_TIMEOUT).
    Stall,
    /// Closes (FIN) (5001 RECEIVE_FAILED or 5020 ERROR_PEER_CLOSE_NOTIFY).
    Close,
    /// Resets (SO_LINGER 0, then close: RST) (5001 RECEIVE_FAILED).
    Reset,
    /// Sends an alert (`level`, `description`) (5018 ERROR_FATAL_ALERT_MESSAGE).
    Alert,
    /// A record header claiming 65535 bytes (more than a record may hold) (5007
    /// ERROR_INVALID_RECORD).
    BadLength,
    /// A record of content type 99 (5007 ERROR_INVALID_RECORD).
    BadContentType,
    /// The next handshake message in a record of version 2.0 (5007 ERROR_INVALID_RECORD).
    WrongVersion,
    /// Finished where the next handshake message belongs (5017 ERROR_UNEXPECTED_MESSAGE).
    UnexpectedMessage,
    /// ServerHello, then a Certificate message of `cert_bytes` (default 20 000) (5013
    /// ERROR_CERTIFICATE_TOO_LARGE).
    HugeCertificate,
    /// A ServerHello with an extension the client did not send (ALPN, else 0xFF99) (5040
    /// ERROR_UNSUPPORTED_EXTENSION).
    BadExtension,
    /// A ServerHello choosing a suite the client did not offer (5022
    /// ERROR_BAD_HS_SERVER_HELLO).
    UnofferedSuite,
    /// A real handshake (OpenSSL, TLS 1.2), then the first application data record with a
    /// byte of its MAC flipped (5006 ERROR_INVALID_MAC).
    Tamper,
    /// An application data record where the ServerHello belongs (5017
    /// ERROR_UNEXPECTED_MESSAGE).
    AppData,
    /// ServerHello and Certificate, then a ServerKeyExchange that does not parse (5025
    /// ERROR_BAD_HS_SERVER_KEY_EXCHANGE).
    BadKeyExchange,
    /// ServerHello, Certificate, a ServerKeyExchange signed with the certificate's key, then a
    /// CertificateRequest that does not parse (5024 ERROR_BAD_HS_CERTIFICATE_REQUEST).
    BadCertificateRequest,
    /// ServerHello, Certificate, a signed ServerKeyExchange, then a ServerHelloDone with a body
    /// (5026 ERROR_BAD_HS_SERVER_HELLO_DONE).
    HelloDoneBody,
}

impl HostileAct {
    /// As written in a spec table.
    pub fn name(self) -> &'static str {
        match self {
            HostileAct::Stall => "stall",
            HostileAct::Close => "close",
            HostileAct::Reset => "reset",
            HostileAct::Alert => "alert",
            HostileAct::BadLength => "bad_length",
            HostileAct::BadContentType => "bad_content_type",
            HostileAct::WrongVersion => "wrong_version",
            HostileAct::UnexpectedMessage => "unexpected_message",
            HostileAct::HugeCertificate => "huge_certificate",
            HostileAct::BadExtension => "bad_extension",
            HostileAct::UnofferedSuite => "unoffered_suite",
            HostileAct::AppData => "app_data",
            HostileAct::BadKeyExchange => "bad_key_exchange",
            HostileAct::BadCertificateRequest => "bad_certificate_request",
            HostileAct::HelloDoneBody => "hello_done_body",
            HostileAct::Tamper => "tamper",
        }
    }
}

fn is_false(b: &bool) -> bool {
    !b
}

/// The transport a peer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl PeerSpec {
    pub fn tcp_echo(port: u16) -> Self {
        PeerSpec::TcpEcho { port, addr: None, close_after: None, delay_ms: None }
    }
    pub fn tcp_sink(port: u16) -> Self {
        PeerSpec::TcpSink { port, addr: None, close_after: None }
    }
    pub fn tcp_source(port: u16, bytes: u64) -> Self {
        PeerSpec::TcpSource { port, bytes, addr: None, keep_open: false, delay_ms: None }
    }
    pub fn tcp_refuse(port: u16) -> Self {
        PeerSpec::TcpRefuse { port, addr: None }
    }
    pub fn udp_echo(port: u16) -> Self {
        PeerSpec::UdpEcho { port, addr: None, delay_ms: None }
    }
    pub fn udp_sink(port: u16) -> Self {
        PeerSpec::UdpSink { port, addr: None }
    }
    /// A TLS server presenting `cert`, OpenSSL's defaults otherwise.
    pub fn tls_server(port: u16, cert: MaterialRef) -> Self {
        PeerSpec::TlsServer {
            port,
            cert,
            addr: None,
            send_chain: None,
            min_version: None,
            max_version: None,
            ciphers: Vec::new(),
            client_ca: None,
        }
    }

    /// This peer on another lab address.
    pub fn at(mut self, ip: Ipv4Addr) -> Self {
        match &mut self {
            PeerSpec::TcpEcho { addr, .. }
            | PeerSpec::TcpSink { addr, .. }
            | PeerSpec::TcpSource { addr, .. }
            | PeerSpec::TcpRefuse { addr, .. }
            | PeerSpec::UdpEcho { addr, .. }
            | PeerSpec::UdpSink { addr, .. }
            | PeerSpec::TlsServer { addr, .. }
            | PeerSpec::TlsHostile(TlsHostileSpec { addr, .. }) => *addr = Some(ip),
        }
        self
    }

    /// Closes each connection after this many bytes (echo and sink; ignored by the others).
    pub fn close_after(mut self, n: u64) -> Self {
        if let PeerSpec::TcpEcho { close_after, .. } | PeerSpec::TcpSink { close_after, .. } =
            &mut self
        {
            *close_after = Some(n);
        }
        self
    }

    /// Answers this much later (echoes, source; ignored by the others).
    pub fn delay_ms(mut self, ms: u64) -> Self {
        if let PeerSpec::TcpEcho { delay_ms, .. }
        | PeerSpec::TcpSource { delay_ms, .. }
        | PeerSpec::UdpEcho { delay_ms, .. } = &mut self
        {
            *delay_ms = Some(ms);
        }
        self
    }

    /// A source that keeps the connection open after sending.
    pub fn keep_open(mut self) -> Self {
        if let PeerSpec::TcpSource { keep_open, .. } = &mut self {
            *keep_open = true;
        }
        self
    }

    /// The `kind` key's value.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerSpec::TcpEcho { .. } => "tcp_echo",
            PeerSpec::TcpSink { .. } => "tcp_sink",
            PeerSpec::TcpSource { .. } => "tcp_source",
            PeerSpec::TcpRefuse { .. } => "tcp_refuse",
            PeerSpec::UdpEcho { .. } => "udp_echo",
            PeerSpec::UdpSink { .. } => "udp_sink",
            PeerSpec::TlsServer { .. } => "tls_server",
            PeerSpec::TlsHostile(_) => "tls_hostile",
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            PeerSpec::TcpEcho { port, .. }
            | PeerSpec::TcpSink { port, .. }
            | PeerSpec::TcpSource { port, .. }
            | PeerSpec::TcpRefuse { port, .. }
            | PeerSpec::UdpEcho { port, .. }
            | PeerSpec::UdpSink { port, .. }
            | PeerSpec::TlsServer { port, .. }
            | PeerSpec::TlsHostile(TlsHostileSpec { port, .. }) => *port,
        }
    }

    /// The address given, if any (the default is [`super::DEFAULT_PEER_ADDR`]).
    pub fn addr(&self) -> Option<Ipv4Addr> {
        match self {
            PeerSpec::TcpEcho { addr, .. }
            | PeerSpec::TcpSink { addr, .. }
            | PeerSpec::TcpSource { addr, .. }
            | PeerSpec::TcpRefuse { addr, .. }
            | PeerSpec::UdpEcho { addr, .. }
            | PeerSpec::UdpSink { addr, .. }
            | PeerSpec::TlsServer { addr, .. }
            | PeerSpec::TlsHostile(TlsHostileSpec { addr, .. }) => *addr,
        }
    }

    pub fn proto(&self) -> Proto {
        match self {
            PeerSpec::UdpEcho { .. } | PeerSpec::UdpSink { .. } => Proto::Udp,
            _ => Proto::Tcp,
        }
    }

    pub(super) fn delay(&self) -> std::time::Duration {
        let ms = match self {
            PeerSpec::TcpEcho { delay_ms, .. }
            | PeerSpec::TcpSource { delay_ms, .. }
            | PeerSpec::UdpEcho { delay_ms, .. } => delay_ms.unwrap_or(0),
            _ => 0,
        };
        std::time::Duration::from_millis(ms)
    }

    pub(super) fn close_after_bytes(&self) -> Option<u64> {
        match self {
            PeerSpec::TcpEcho { close_after, .. } | PeerSpec::TcpSink { close_after, .. } => {
                *close_after
            }
            _ => None,
        }
    }
}

/// What a peer must have received, checked after the case's actions.
///
/// ```toml
/// check = { received = "hello\r\n" }            # exact bytes (all connections, in order)
/// check = { received_len = 4096 }               # exactly this many bytes
/// check = { received_pattern = 4096 }           # exactly the first 4096 bytes of the pattern
/// check = { connections = 3 }                   # accepted connections (UDP: senders)
/// check = { received = "a", connection = 1 }    # only the second connection (UDP: sender)
/// check = { received_len = 10, within_ms = 3000 } # wait up to this long (default 1000)
/// # tls_server peers: every connection (or `connection`) must show these
/// check = { handshake = "ok", version = "TLSv1.2", suite = "ECDHE-RSA-AES128-GCM-SHA256" }
/// check = { handshake = "ok", client_cert = true }
/// check = { handshake = "failed", handshake_error = "alert unknown ca" }
/// # TLS peers (tls_server, tls_hostile): what each connection's ClientHello offered
/// # (suites: "chapter" or a list, 0x00FF aside)
/// check = { offered_suites = "chapter", offered_max_version = "1.2" }
/// ```
///
/// At least one of `received`, `received_len`, `received_pattern`, `connections`, a TLS
/// field (`handshake`, `handshake_error`, `version`, `suite`, `client_cert`) or an offer
/// (`offered_suites`, `offered_max_version`); at most one of the three `received*`. `suite`
/// takes OpenSSL, IANA or the chapter's mbedTLS names; `handshake_error` is text OpenSSL's
/// reason must contain.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "RawPeerCheck")]
pub struct PeerCheck {
    pub received: Option<Bytes>,
    pub received_len: Option<u64>,
    pub received_pattern: Option<u64>,
    pub connections: Option<usize>,
    pub connection: Option<usize>,
    pub within_ms: Option<u64>,
    pub handshake: Option<Expect>,
    pub handshake_error: Option<String>,
    pub version: Option<TlsVersion>,
    pub suite: Option<SuiteName>,
    pub client_cert: Option<bool>,
    /// The suites the ClientHello offered (a TLS peer's connections).
    pub offered_suites: Option<SuiteSet>,
    /// The highest version the ClientHello offered.
    pub offered_max_version: Option<Version>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeerCheck {
    #[serde(default)]
    received: Option<Bytes>,
    #[serde(default)]
    received_len: Option<u64>,
    #[serde(default)]
    received_pattern: Option<u64>,
    #[serde(default)]
    connections: Option<usize>,
    #[serde(default)]
    connection: Option<usize>,
    #[serde(default)]
    within_ms: Option<u64>,
    #[serde(default)]
    handshake: Option<Expect>,
    #[serde(default)]
    handshake_error: Option<String>,
    #[serde(default)]
    version: Option<TlsVersion>,
    #[serde(default)]
    suite: Option<SuiteName>,
    #[serde(default)]
    client_cert: Option<bool>,
    #[serde(default)]
    offered_suites: Option<SuiteSet>,
    #[serde(default)]
    offered_max_version: Option<Version>,
}

impl TryFrom<RawPeerCheck> for PeerCheck {
    type Error = String;
    fn try_from(r: RawPeerCheck) -> Result<Self, String> {
        let c = PeerCheck {
            received: r.received,
            received_len: r.received_len,
            received_pattern: r.received_pattern,
            connections: r.connections,
            connection: r.connection,
            within_ms: r.within_ms,
            handshake: r.handshake,
            handshake_error: r.handshake_error,
            version: r.version,
            suite: r.suite,
            client_cert: r.client_cert,
            offered_suites: r.offered_suites,
            offered_max_version: r.offered_max_version,
        };
        c.validate()?;
        Ok(c)
    }
}

impl PeerCheck {
    pub fn received(bytes: impl Into<Bytes>) -> Self {
        PeerCheck { received: Some(bytes.into()), ..Self::default() }
    }
    pub fn received_len(n: u64) -> Self {
        PeerCheck { received_len: Some(n), ..Self::default() }
    }
    pub fn received_pattern(n: u64) -> Self {
        PeerCheck { received_pattern: Some(n), ..Self::default() }
    }
    pub fn connections(n: usize) -> Self {
        PeerCheck { connections: Some(n), ..Self::default() }
    }

    /// A check of a TLS connection's handshake only.
    pub fn handshake(expect: Expect) -> Self {
        PeerCheck { handshake: Some(expect), ..Self::default() }
    }

    /// Whether it checks a TLS peer's TLS.
    pub fn checks_tls(&self) -> bool {
        self.handshake.is_some()
            || self.handshake_error.is_some()
            || self.version.is_some()
            || self.suite.is_some()
            || self.client_cert.is_some()
    }

    /// Whether it checks what a ClientHello offered.
    pub fn checks_offers(&self) -> bool {
        self.offered_suites.is_some() || self.offered_max_version.is_some()
    }

    /// Whether the check says something, and nothing contradictory.
    pub fn validate(&self) -> Result<(), String> {
        if self.handshake_error.is_some() && self.handshake == Some(Expect::Ok) {
            return Err("`handshake_error` contradicts `handshake = \"ok\"`".into());
        }
        if self.handshake == Some(Expect::Fail)
            && (self.version.is_some() || self.suite.is_some() || self.client_cert == Some(true))
        {
            return Err("a failed handshake negotiated nothing: drop `version`, `suite`, \
                        `client_cert` or expect `handshake = \"ok\"`"
                .into());
        }
        let payload =
            [self.received.is_some(), self.received_len.is_some(), self.received_pattern.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
        if payload > 1 {
            return Err("give only one of `received`, `received_len`, `received_pattern`".into());
        }
        let tls = self.checks_tls() || self.checks_offers();
        if payload == 0 && self.connections.is_none() && !tls {
            return Err("a peer check needs `received`, `received_len`, `received_pattern`, \
                        `connections`, a TLS field or an offer"
                .into());
        }
        if self.connection.is_some() && payload == 0 && !tls {
            return Err("`connection` selects the bytes of one connection: give `received`, \
                        `received_len` or `received_pattern` with it"
                .into());
        }
        Ok(())
    }
}

/// Something the harness does as a client towards the module, at the module's address.
///
/// ```toml
/// client = { connect = 3000 }              # TCP connect to the module's port (must connect)
/// client = { connect_refused = 3001 }      # TCP connect; must be refused
/// client = { send = "hello\r\n" }          # on the newest connection
/// client = { receive = "hello\r\n" }       # exactly these bytes next (within 2 s)
/// client = { receive_pattern = 4096 }      # exactly the first 4096 bytes of the pattern next
/// client = { expect_closed = true }        # the module closes: end of stream (within 2 s)
/// client = { receive_to_close = { regex = '\AHTTP/1\.1 200 ' } }   # read until the module
///                                          # closes; all that came matches (within_ms: 2000)
/// client = { close = true }                # close the newest connection
/// client = { udp_send = { port = 3002, data = "ping", sources = 3, reply = "ping" } }
/// client = { flood = { port = 3000, connections = 1000, timeout_ms = 5000, expect_connected_max = 8 } }
/// client = { tls_connect = { port = 3000, ca = "ca-rsa" } }   # TLS; then send/receive/close
/// client = { tls_hostile = { port = 4433, act = "bad_finished" } }   # a hand-built TLS client
/// ```
///
/// `tls_connect`'s keys are in [`TlsConnectSpec`], `tls_hostile`'s in [`TlsMisbehaveSpec`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientAction {
    Connect(u16),
    ConnectRefused(u16),
    Send(Bytes),
    Receive(Bytes),
    ReceivePattern(u64),
    ExpectClosed(bool),
    ReceiveToClose(ReceiveToClose),
    Close(bool),
    UdpSend(UdpSendSpec),
    Flood(FloodSpec),
    TlsConnect(TlsConnectSpec),
    TlsHostile(TlsMisbehaveSpec),
}

/// `udp_send`: one datagram from each of `sources` client sockets (distinct lab addresses
/// first, then distinct ports), to the module's `port`; with `reply`, each must get exactly
/// that datagram back within `within_ms` (default 2000).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpSendSpec {
    pub port: u16,
    pub data: Bytes,
    #[serde(default = "one")]
    pub sources: usize,
    #[serde(default)]
    pub reply: Option<Bytes>,
    #[serde(default)]
    pub within_ms: Option<u64>,
}

fn one() -> usize {
    1
}

/// `receive_to_close`: read on the newest connection until the module closes it (end of
/// stream) within `within_ms` (default 2000), then everything that came must match `regex`
/// (over bytes: `.` is any byte, line ends included; `\xHH` is that byte). For protocols that answer once and
/// close (an HTTP response), where parts of the answer (ids, lengths) vary. Then the harness
/// closes its side too: the next client action's newest connection is the one before it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveToClose {
    pub regex: BytesRegex,
    #[serde(default)]
    pub within_ms: Option<u64>,
}

impl PartialEq for ReceiveToClose {
    fn eq(&self, other: &Self) -> bool {
        self.regex.0.as_str() == other.regex.0.as_str() && self.within_ms == other.within_ms
    }
}

impl Eq for ReceiveToClose {}

/// A regex over bytes, compiled when the spec loads (a bad one is an error there).
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct BytesRegex(pub regex::bytes::Regex);

impl TryFrom<String> for BytesRegex {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        // `(?s-u)`: `.` and `\xHH` stand for single bytes, line ends included.
        regex::bytes::Regex::new(&format!("(?s-u){text}"))
            .map(BytesRegex)
            .map_err(|e| format!("bad regex: {e}"))
    }
}

/// `flood`: open `connections` TCP connections to the module's `port` at once, within
/// `timeout_ms`, then close them all; the counts must meet the `expect_*` bounds given.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodSpec {
    pub port: u16,
    pub connections: usize,
    pub timeout_ms: u64,
    #[serde(default)]
    pub expect_connected_max: Option<usize>,
    #[serde(default)]
    pub expect_connected_min: Option<usize>,
}

/// `client = { tls_hostile = { port = 4433, act = "bad_finished" } }`: a hand-built TLS 1.2
/// client that breaks the handshake late (see [`ClientMisdeed`]). `client_cert` is sent when
/// the module asks for a certificate (`bad_certificate_verify` needs one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsMisbehaveSpec {
    pub port: u16,
    pub act: ClientMisdeed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<MaterialRef>,
}

impl TlsMisbehaveSpec {
    pub fn validate(&self) -> Result<(), String> {
        if self.act == ClientMisdeed::BadCertificateVerify && self.client_cert.is_none() {
            return Err("`act = \"bad_certificate_verify\"` needs `client_cert`".into());
        }
        Ok(())
    }
}

/// What the client does wrong. In brackets, the chapter's code a module's server most
/// plausibly reports (the chapter maps no cause to a code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientMisdeed {
    /// A CertificateVerify signed by the certificate's own key, over other bytes than the
    /// handshake (5028 ERROR_BAD_HS_CERTIFICATE_VERIFY).
    BadCertificateVerify,
    /// A Finished with a valid MAC whose verify_data is wrong in its last byte (5030
    /// ERROR_BAD_HS_FINISHED).
    BadFinished,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Step {
        #[serde(default)]
        peer: Option<PeerSpec>,
        #[serde(default)]
        check: Option<PeerCheck>,
        #[serde(default)]
        client: Option<ClientAction>,
    }

    fn parse(text: &str) -> Result<Step, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn peer_specs() {
        let s = parse(r#"peer = { kind = "tcp_echo", port = 7000 }"#).unwrap();
        assert_eq!(s.peer, Some(PeerSpec::tcp_echo(7000)));
        let s = parse(
            r#"peer = { kind = "tcp_echo", port = 7000, addr = "10.77.0.6", close_after = 3, delay_ms = 5 }"#,
        )
        .unwrap();
        assert_eq!(
            s.peer,
            Some(
                PeerSpec::tcp_echo(7000).at(Ipv4Addr::new(10, 77, 0, 6)).close_after(3).delay_ms(5)
            )
        );
        let s = parse(r#"peer = { kind = "tcp_source", port = 7002, bytes = 4096 }"#).unwrap();
        assert_eq!(s.peer, Some(PeerSpec::tcp_source(7002, 4096)));
        let s = parse(r#"peer = { kind = "udp_sink", port = 7005 }"#).unwrap();
        assert_eq!(s.peer.unwrap().kind(), "udp_sink");
        let s = parse(r#"peer = { kind = "tcp_refuse", port = 7004 }"#).unwrap();
        assert_eq!(s.peer, Some(PeerSpec::tcp_refuse(7004)));
        let s = parse(
            r#"peer = { kind = "tls_hostile", port = 4433, at = "server_hello", act = "stall" }"#,
        )
        .unwrap();
        assert_eq!(
            s.peer,
            Some(PeerSpec::TlsHostile(TlsHostileSpec::new(
                4433,
                HostileAt::ServerHello,
                HostileAct::Stall
            )))
        );
        let s = parse(r#"peer = { kind = "tls_hostile", port = 4433, act = "alert", level = 1, description = 0 }"#)
            .unwrap();
        let Some(PeerSpec::TlsHostile(h)) = s.peer else { panic!("not tls_hostile") };
        assert_eq!(
            (h.at, h.level(), h.description(), h.validate()),
            (HostileAt::ClientHello, 1, 0, Ok(()))
        );
        for (text, error) in [
            (r#"{ kind = "tls_hostile", port = 1, act = "alert" }"#, "needs `description`"),
            (
                r#"{ kind = "tls_hostile", port = 1, act = "stall", level = 2 }"#,
                "`act = \"alert\"` only",
            ),
            (
                r#"{ kind = "tls_hostile", port = 1, act = "close", cert_bytes = 9 }"#,
                "huge_certificate",
            ),
            (
                r#"{ kind = "tls_hostile", port = 1, at = "certificate", act = "tamper" }"#,
                "leave out `at`",
            ),
        ] {
            let Some(PeerSpec::TlsHostile(h)) = parse(&format!("peer = {text}")).unwrap().peer
            else {
                panic!("not tls_hostile")
            };
            assert!(h.validate().unwrap_err().contains(error), "{text}");
        }
        // Errors: unknown keys, keys of another kind, missing keys, unknown kinds.
        for bad in [
            r#"peer = { kind = "tcp_echo", port = 7000, colour = 1 }"#,
            r#"peer = { kind = "udp_sink", port = 7000, close_after = 1 }"#,
            r#"peer = { kind = "tcp_source", port = 7000 }"#,
            r#"peer = { kind = "sctp", port = 7000 }"#,
            r#"peer = { kind = "tcp_echo", port = 70000 }"#,
            r#"peer = { kind = "tcp_echo", port = 7000, addr = "lab-host" }"#,
            r#"peer = { kind = "tls_hostile", port = 4433, act = "dance" }"#,
            r#"peer = { kind = "tls_hostile", port = 4433, at = "finished", act = "stall" }"#,
            r#"peer = { kind = "tls_hostile", port = 4433, act = "stall", colour = 1 }"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn peer_checks() {
        let s = parse(r#"check = { received = "hello\r\n" }"#).unwrap();
        assert_eq!(s.check, Some(PeerCheck::received("hello\r\n")));
        let s = parse(r#"check = { received = 'a\x00\xff' }"#).unwrap();
        assert_eq!(s.check.unwrap().received, Some(Bytes(vec![b'a', 0, 0xff])));
        let s = parse("check = { received_pattern = 4096, connection = 0 }").unwrap();
        assert_eq!(s.check.unwrap().received_pattern, Some(4096));
        let s = parse("check = { connections = 2 }").unwrap();
        assert_eq!(s.check, Some(PeerCheck::connections(2)));
        let s = parse(r#"check = { offered_suites = "chapter", offered_max_version = "1.2" }"#)
            .unwrap();
        let c = s.check.unwrap();
        assert_eq!(c.offered_suites, Some(SuiteSet::Chapter));
        assert_eq!(c.offered_max_version, Some(Version::TLS12));
        let s =
            parse(r#"check = { offered_suites = ["0xC02F", "0x002f"], connection = 1 }"#).unwrap();
        assert_eq!(s.check.unwrap().offered_suites, Some(SuiteSet::Exactly(vec![0x002F, 0xC02F])));
        for bad in [
            r#"check = { offered_suites = "all" }"#,
            r#"check = { offered_max_version = "9" }"#,
            "check = {}",
            "check = { received_len = 1, received_pattern = 1 }",
            "check = { connection = 1 }",
            "check = { received_len = 1, bogus = 1 }",
            r#"check = { received = '\q' }"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn client_actions() {
        assert_eq!(
            parse("client = { connect = 3000 }").unwrap().client,
            Some(ClientAction::Connect(3000))
        );
        assert_eq!(
            parse(r#"client = { send = "hi\r\n" }"#).unwrap().client,
            Some(ClientAction::Send(Bytes::from("hi\r\n")))
        );
        let Some(ClientAction::ReceiveToClose(r)) = parse(
            r#"client = { receive_to_close = { regex = '\AHTTP/1\.1 200 ', within_ms = 7000 } }"#,
        )
        .unwrap()
        .client
        else {
            panic!("not receive_to_close")
        };
        assert!(r.regex.0.is_match(b"HTTP/1.1 200 OK\r\n"));
        assert_eq!(r.within_ms, Some(7000));
        assert!(parse("client = { receive_to_close = { regex = '(' } }").is_err());
        assert!(parse("client = { receive_to_close = { regex = 'a', colour = 1 } }").is_err());
        let s = parse(
            "client = { flood = { port = 3000, connections = 1000, timeout_ms = 5000, expect_connected_max = 8 } }",
        )
        .unwrap();
        assert_eq!(
            s.client,
            Some(ClientAction::Flood(FloodSpec {
                port: 3000,
                connections: 1000,
                timeout_ms: 5000,
                expect_connected_max: Some(8),
                expect_connected_min: None,
            }))
        );
        let s = parse(r#"client = { udp_send = { port = 9, data = "x", sources = 3 } }"#).unwrap();
        assert!(matches!(s.client, Some(ClientAction::UdpSend(UdpSendSpec { sources: 3, .. }))));
        for bad in [
            "client = { connect = 3000, send = 'x' }",
            "client = { connnect = 3000 }",
            "client = { flood = { port = 1, connections = 1 } }",
            "client = { flood = { port = 1, connections = 1, timeout_ms = 1, extra = 1 } }",
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }
}
