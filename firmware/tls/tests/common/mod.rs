//! Test support: certificates made at test time, OpenSSL peers on loopback, and a pump that
//! carries a session's ciphertext over a real TCP socket.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gecko_core::tls::{Progress, Role, TlsConfig, TlsEngine, TlsSession, TlsVersion, Verify};
use gecko_tls::MbedTls;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslStream, SslVerifyMode, SslVersion};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};

/// The module's clock in the tests: 2026-06-01, inside every certificate's window.
pub const NOW: u64 = 1_780_272_000;
pub const DAY: u64 = 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    Rsa1024,
    P256,
}

pub fn key(kind: KeyKind) -> PKey<Private> {
    match kind {
        KeyKind::Rsa2048 => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
        KeyKind::Rsa1024 => PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap(),
        KeyKind::P256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
        }
    }
}

/// A certificate authority.
pub struct Ca {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Ca {
    pub fn new(name: &str, kind: KeyKind) -> Ca {
        let key = key(kind);
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap()).unwrap();
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", name).unwrap();
        let n = n.build();
        b.set_subject_name(&n).unwrap();
        b.set_issuer_name(&n).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix((NOW - 365 * DAY) as i64).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::from_unix((NOW + 3650 * DAY) as i64).unwrap()).unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
        b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Ca { cert: b.build(), key }
    }

    pub fn pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap()
    }
}

/// What a leaf certificate looks like.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    pub kind: KeyKind,
    pub name: String,
    pub not_before: u64,
    pub not_after: u64,
    /// `None`: serverAuth and clientAuth.
    pub eku: Option<&'static str>,
}

impl LeafSpec {
    pub fn new(kind: KeyKind) -> LeafSpec {
        LeafSpec {
            kind,
            name: "localhost".into(),
            not_before: NOW - 30 * DAY,
            not_after: NOW + 365 * DAY,
            eku: None,
        }
    }
}

/// A certificate with its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Leaf {
    pub fn new(ca: &Ca, spec: &LeafSpec) -> Leaf {
        Leaf::with_key(ca, spec, key(spec.kind))
    }

    pub fn with_key(ca: &Ca, spec: &LeafSpec, key: PKey<Private>) -> Leaf {
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial: u32 = rand_u32();
        b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap()).unwrap();
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", &spec.name).unwrap();
        b.set_subject_name(&n.build()).unwrap();
        b.set_issuer_name(ca.cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(spec.not_before as i64).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::from_unix(spec.not_after as i64).unwrap()).unwrap();
        let ctx = b.x509v3_context(Some(&ca.cert), None);
        let san = SubjectAlternativeName::new().dns(&spec.name).build(&ctx).unwrap();
        b.append_extension(san).unwrap();
        let mut eku = ExtendedKeyUsage::new();
        match spec.eku {
            None => {
                eku.server_auth().client_auth();
            }
            Some("clientAuth") => {
                eku.client_auth();
            }
            Some(other) => panic!("no such EKU in the tests: {other}"),
        }
        b.append_extension(eku.build().unwrap()).unwrap();
        b.sign(&ca.key, MessageDigest::sha256()).unwrap();
        Leaf { cert: b.build(), key }
    }

    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap()
    }

    pub fn key_pem(&self) -> Vec<u8> {
        self.key.private_key_to_pem_pkcs8().unwrap()
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u32::from_le_bytes(b) >> 1
}

/// The certificates most tests share (keys take a while to make).
pub struct Pki {
    pub ca_rsa: Ca,
    pub ca_ec: Ca,
    pub rsa: Leaf,
    pub ec: Leaf,
    /// Signed by nobody the module trusts.
    pub stranger: Ca,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_rsa = Ca::new("Test RSA CA", KeyKind::Rsa2048);
        let ca_ec = Ca::new("Test EC CA", KeyKind::P256);
        let rsa = Leaf::new(&ca_rsa, &LeafSpec::new(KeyKind::Rsa2048));
        let ec = Leaf::new(&ca_ec, &LeafSpec::new(KeyKind::P256));
        let stranger = Ca::new("Stranger CA", KeyKind::P256);
        Pki { ca_rsa, ca_ec, rsa, ec, stranger }
    })
}

/// Both CAs, one PEM bundle.
pub fn trusted_pem() -> Vec<u8> {
    let p = pki();
    let mut v = p.ca_rsa.pem();
    v.extend(p.ca_ec.pem());
    v
}

pub fn engine() -> MbedTls {
    MbedTls::new(Box::new(|buf: &mut [u8]| openssl::rand::rand_bytes(buf).unwrap()))
}

pub fn client_config(name: Option<&str>) -> TlsConfig {
    TlsConfig {
        role: Role::Client { server_name: name.map(str::to_owned) },
        ca: Some(trusted_pem()),
        verify: Verify::Required,
        cert: None,
        key: None,
        max_version: TlsVersion::Tls1_2,
        now_utc: NOW,
    }
}

pub fn server_config(leaf: &Leaf) -> TlsConfig {
    TlsConfig {
        role: Role::Server,
        ca: Some(trusted_pem()),
        verify: Verify::None,
        cert: Some(leaf.cert_pem()),
        key: Some(leaf.key_pem()),
        max_version: TlsVersion::Tls1_2,
        now_utc: NOW,
    }
}

pub fn session(config: &TlsConfig) -> Box<dyn TlsSession> {
    engine().session(config).unwrap()
}

/// The OpenSSL name of one of the chapter's suites.
pub fn openssl_name(id: u16) -> &'static str {
    match id {
        0xC02B => "ECDHE-ECDSA-AES128-GCM-SHA256",
        0xC02F => "ECDHE-RSA-AES128-GCM-SHA256",
        0xC023 => "ECDHE-ECDSA-AES128-SHA256",
        0xC009 => "ECDHE-ECDSA-AES128-SHA",
        0xC00A => "ECDHE-ECDSA-AES256-SHA",
        0xC013 => "ECDHE-RSA-AES128-SHA",
        0x006B => "DHE-RSA-AES256-SHA256",
        0x0039 => "DHE-RSA-AES256-SHA",
        0x003D => "AES256-SHA256",
        0x0035 => "AES256-SHA",
        0x003C => "AES128-SHA256",
        0x002F => "AES128-SHA",
        other => panic!("not one of the chapter's suites: {other:#06x}"),
    }
}

/// The key kind a suite's certificate needs.
pub fn cert_kind(id: u16) -> KeyKind {
    if matches!(id, 0xC02B | 0xC023 | 0xC009 | 0xC00A) { KeyKind::P256 } else { KeyKind::Rsa2048 }
}

pub fn leaf_for(id: u16) -> &'static Leaf {
    match cert_kind(id) {
        KeyKind::P256 => &pki().ec,
        _ => &pki().rsa,
    }
}

/// How long any exchange may take before a test gives up.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Changes bytes on their way from the peer to the module.
pub type Tamper = Box<dyn FnMut(&mut Vec<u8>) + Send>;

/// Carries one session's ciphertext over `sock` until `done(progress)` holds (checked
/// after the session's output was sent), or the peer's stream ended and nothing changes.
pub struct Pump {
    pub sock: TcpStream,
    pub eof: bool,
    /// Applied to each chunk read from the socket before the session sees it.
    pub tamper: Option<Tamper>,
    /// The peer's application data received so far.
    pub plain: Vec<u8>,
}

impl Pump {
    pub fn new(sock: TcpStream) -> Pump {
        sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        sock.set_nodelay(true).unwrap();
        Pump { sock, eof: false, tamper: None, plain: Vec::new() }
    }

    fn flush(&mut self, s: &mut dyn TlsSession) {
        let out = s.take_ciphertext();
        if !out.is_empty() {
            // The peer may already be gone (it failed the handshake): that is its answer.
            let _ = self.sock.write_all(&out);
        }
    }

    pub fn run(
        &mut self,
        s: &mut dyn TlsSession,
        first: Progress,
        done: impl Fn(&Progress, &[u8]) -> bool,
    ) -> Progress {
        let start = Instant::now();
        let mut progress = first;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            self.flush(s);
            self.plain.extend(s.take_plaintext());
            if done(&progress, &self.plain) || matches!(progress, Progress::Failed(_)) {
                return progress;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no end within {DEADLINE:?}; last progress {progress:?}, state {}",
                s.state()
            );
            if self.eof {
                return progress;
            }
            match self.sock.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    progress = s.eof();
                }
                Ok(n) => {
                    let mut chunk = buf[..n].to_vec();
                    if let Some(t) = self.tamper.as_mut() {
                        t(&mut chunk);
                    }
                    progress = s.feed(&chunk);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    self.eof = true;
                    progress = s.eof();
                }
                Err(e) => panic!("socket read: {e}"),
            }
        }
    }

    /// Runs the handshake to its end (established or failed).
    pub fn handshake(&mut self, s: &mut dyn TlsSession) -> Progress {
        let first = s.start();
        self.run(s, first, |p, _| !matches!(p, Progress::Handshaking))
    }

    /// Reads until `want` bytes of plaintext arrived (or the session ends); takes them.
    pub fn read_plaintext(&mut self, s: &mut dyn TlsSession, want: usize) -> (Vec<u8>, Progress) {
        let p = self.run(s, Progress::Established, |p, plain| {
            plain.len() >= want || *p != Progress::Established
        });
        (std::mem::take(&mut self.plain), p)
    }
}

/// Starts a session over a fresh loopback connection to `addr`.
pub fn connect(addr: std::net::SocketAddr) -> Pump {
    Pump::new(TcpStream::connect(addr).unwrap())
}

pub fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// How an OpenSSL peer is set up.
#[derive(Clone)]
pub struct PeerSpec {
    pub ciphers: String,
    pub min: SslVersion,
    pub max: SslVersion,
    /// Its own certificate (a server always has one).
    pub leaf: Option<Leaf>,
    /// Verify the module's certificate against this CA (required).
    pub verify_with: Option<X509>,
    /// The line OpenSSL's key log callback printed.
    pub keylog: bool,
}

impl PeerSpec {
    pub fn suite(id: u16) -> PeerSpec {
        PeerSpec {
            ciphers: format!("{}:@SECLEVEL=1", openssl_name(id)),
            min: SslVersion::TLS1_2,
            max: SslVersion::TLS1_2,
            leaf: Some(leaf_for(id).clone()),
            verify_with: None,
            keylog: false,
        }
    }
}

/// What an OpenSSL peer saw: the handshake's result (its error text), the data the module
/// sent, whether the module's close_notify arrived, and its key log line.
#[derive(Debug)]
pub struct PeerReport {
    pub handshake: Result<(), String>,
    pub received: Vec<u8>,
    pub close_notify: bool,
    pub keylog: Vec<String>,
}

impl Default for PeerReport {
    fn default() -> Self {
        PeerReport {
            handshake: Err("not run".into()),
            received: Vec::new(),
            close_notify: false,
            keylog: Vec::new(),
        }
    }
}

type KeylogLines = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

fn converse<S: Read + Write>(mut s: SslStream<S>, report: &mut PeerReport) {
    // Echo one message in upper case, then wait for close_notify and answer it.
    let mut buf = [0u8; 1024];
    loop {
        match s.ssl_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                report.received.extend_from_slice(&buf[..n]);
                let reply = buf[..n].to_ascii_uppercase();
                if s.ssl_write(&reply).is_err() {
                    return;
                }
            }
            Err(e) => {
                report.close_notify = e.code() == openssl::ssl::ErrorCode::ZERO_RETURN;
                break;
            }
        }
    }
    let _ = s.shutdown();
}

/// The peer's versions, and its cipher list (TLS 1.3: one suite of its own).
fn versions_and_ciphers(b: &mut openssl::ssl::SslContextBuilder, spec: &PeerSpec) {
    b.set_min_proto_version(Some(spec.min)).unwrap();
    b.set_max_proto_version(Some(spec.max)).unwrap();
    if spec.max == SslVersion::TLS1_3 {
        b.set_ciphersuites("TLS_AES_128_GCM_SHA256").unwrap();
    } else {
        b.set_cipher_list(&spec.ciphers).unwrap();
    }
}

/// An OpenSSL TLS server for one connection, in a thread.
pub fn openssl_server(spec: PeerSpec) -> (std::net::SocketAddr, JoinHandle<PeerReport>) {
    let l = listener();
    let addr = l.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        versions_and_ciphers(&mut b, &spec);
        let leaf = spec.leaf.clone().unwrap();
        b.set_certificate(&leaf.cert).unwrap();
        b.set_private_key(&leaf.key).unwrap();
        if let Some(ca) = &spec.verify_with {
            b.cert_store_mut().add_cert(ca.clone()).unwrap();
            b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        }
        let lines: KeylogLines = Default::default();
        if spec.keylog {
            let l2 = lines.clone();
            b.set_keylog_callback(move |_, line| l2.lock().unwrap().push(line.to_owned()));
        }
        let acceptor = b.build();
        let (sock, _) = l.accept().unwrap();
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut report = PeerReport::default();
        match acceptor.accept(sock) {
            Ok(s) => {
                report.handshake = Ok(());
                converse(s, &mut report);
            }
            Err(e) => report.handshake = Err(e.to_string()),
        }
        report.keylog = lines.lock().unwrap().clone();
        report
    });
    (addr, handle)
}

/// An OpenSSL TLS client for one connection to the module's server, in a thread.
pub fn openssl_client(addr: std::net::SocketAddr, spec: PeerSpec) -> JoinHandle<PeerReport> {
    std::thread::spawn(move || {
        let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
        versions_and_ciphers(&mut b, &spec);
        if let Some(leaf) = &spec.leaf {
            b.set_certificate(&leaf.cert).unwrap();
            b.set_private_key(&leaf.key).unwrap();
        }
        match &spec.verify_with {
            Some(ca) => {
                b.cert_store_mut().add_cert(ca.clone()).unwrap();
                b.set_verify(SslVerifyMode::PEER);
            }
            None => b.set_verify(SslVerifyMode::NONE),
        }
        let lines: KeylogLines = Default::default();
        if spec.keylog {
            let l2 = lines.clone();
            b.set_keylog_callback(move |_, line| l2.lock().unwrap().push(line.to_owned()));
        }
        let connector = b.build();
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut report = PeerReport::default();
        match connector.configure().unwrap().verify_hostname(true).connect("localhost", sock) {
            Ok(mut s) => {
                report.handshake = Ok(());
                // The client speaks first.
                if s.ssl_write(b"ping from openssl").is_ok() {
                    let mut buf = [0u8; 1024];
                    if let Ok(n) = s.ssl_read(&mut buf) {
                        report.received.extend_from_slice(&buf[..n]);
                    }
                    match s.ssl_read(&mut buf) {
                        Ok(0) => report.close_notify = true,
                        Err(e) => {
                            report.close_notify = e.code() == openssl::ssl::ErrorCode::ZERO_RETURN
                        }
                        Ok(_) => {}
                    }
                    let _ = s.shutdown();
                }
            }
            Err(e) => report.handshake = Err(e.to_string()),
        }
        report.keylog = lines.lock().unwrap().clone();
        report
    })
}

/// Accepts one connection for the module's server session.
pub fn accept(l: &TcpListener) -> Pump {
    let (sock, _) = l.accept().unwrap();
    Pump::new(sock)
}
