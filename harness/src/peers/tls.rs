//! TLS for the lab peers, on OpenSSL: the `tls_server` peer (a thread that accepts inside the
//! lab's namespace, one thread per connection doing the handshake and echoing what arrives)
//! and the `tls_connect` client towards the module's TLS and HTTPS servers.
//!
//! Both sides verify certificates at [`crate::pki::LAB_NOW`], the clock the harness gives the
//! module, never at the wall clock. TLS 1.0 and 1.1 need the no-TLSv1/1.1 options cleared and
//! `@SECLEVEL=0` in the cipher string (OpenSSL 3 refuses them otherwise).

use super::{Closed, ConnRecord, Records, lock};
use crate::pki::{MaterialRef, Pki};
use openssl::ssl::{
    HandshakeError, Ssl, SslContext, SslMethod, SslOptions, SslRef, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use serde::{Deserialize, Serialize};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often a connection thread looks at its stop flag while waiting for bytes.
const TICK: Duration = Duration::from_millis(50);
/// The longest a handshake of the harness's own client may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS protocol version, as spec tables write it (`TLSv1.0`, `TLSv1.1`, `TLSv1.2`,
/// `TLSv1.3`; `TLSv1` is `TLSv1.0`, OpenSSL's own spelling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLSv1.0",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

    fn ssl(self) -> SslVersion {
        match self {
            TlsVersion::Tls10 => SslVersion::TLS1,
            TlsVersion::Tls11 => SslVersion::TLS1_1,
            TlsVersion::Tls12 => SslVersion::TLS1_2,
            TlsVersion::Tls13 => SslVersion::TLS1_3,
        }
    }

    fn from_ssl(v: SslVersion) -> Option<Self> {
        [Self::Tls10, Self::Tls11, Self::Tls12, Self::Tls13].into_iter().find(|t| t.ssl() == v)
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TlsVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "TLSv1" | "TLSv1.0" => TlsVersion::Tls10,
            "TLSv1.1" => TlsVersion::Tls11,
            "TLSv1.2" => TlsVersion::Tls12,
            "TLSv1.3" => TlsVersion::Tls13,
            _ => {
                return Err(format!(
                    "unknown TLS version `{s}` (TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3)"
                ));
            }
        })
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for TlsVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One cipher suite, written with its OpenSSL name (`ECDHE-RSA-AES128-GCM-SHA256`), its IANA
/// name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`) or the chapter's mbedTLS name
/// (`MBEDTLS_TLS_…`); held as the OpenSSL name. A name OpenSSL does not know is an error
/// when the spec loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuiteName(String);

impl SuiteName {
    /// OpenSSL's name for it.
    pub fn openssl(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SuiteName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let iana = s.strip_prefix("MBEDTLS_").unwrap_or(s);
        let name = if iana.starts_with("TLS_") || iana.starts_with("SSL_") {
            let n = openssl::ssl::cipher_name(iana);
            if n == "(NONE)" {
                return Err(format!("OpenSSL knows no cipher suite `{s}`"));
            }
            n.to_string()
        } else {
            s.to_string()
        };
        // A class (`AES128`) or list (`a:b`) is not one suite.
        if name.is_empty() || name.contains([':', ' ', ',', '!', '+', '@']) {
            return Err(format!("`{s}` is not one cipher suite name"));
        }
        let known = SslContext::builder(SslMethod::tls())
            .and_then(|mut b| b.set_cipher_list(&format!("{name}:@SECLEVEL=0")))
            .is_ok();
        if !known {
            return Err(format!("OpenSSL knows no cipher suite `{s}`"));
        }
        Ok(SuiteName(name))
    }
}

impl<'de> Deserialize<'de> for SuiteName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for SuiteName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// How a TLS connection's handshake went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handshake {
    InProgress,
    Ok,
    /// OpenSSL's reason (its error stack, the certificate verification result, or the I/O
    /// error).
    Failed(String),
}

/// What a TLS peer saw of one connection's TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRecord {
    pub handshake: Handshake,
    pub version: Option<TlsVersion>,
    /// OpenSSL's name of the negotiated suite.
    pub suite: Option<String>,
    /// Its IANA name.
    pub suite_iana: Option<String>,
    /// The client certificate's subject (`CN=client-rsa, O=Gecko HIL lab`), if one was sent.
    pub client_subject: Option<String>,
}

/// The TLS settings both sides share.
#[derive(Clone, Debug, Default)]
pub(super) struct TlsSettings<'a> {
    pub min: Option<TlsVersion>,
    pub max: Option<TlsVersion>,
    pub ciphers: &'a [SuiteName],
    /// Presented: certificate, key and intermediates.
    pub cert: Option<MaterialRef>,
    pub send_chain: bool,
    /// Trusted for the other side's certificate; verification is required when given.
    pub ca: Option<MaterialRef>,
}

fn tls_err(what: &str) -> impl FnOnce(openssl::error::ErrorStack) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// An OpenSSL context for one side.
pub(super) fn context(
    method: SslMethod,
    server: bool,
    s: &TlsSettings<'_>,
    pki: Option<&Pki>,
) -> Result<SslContext, String> {
    let mut b = SslContext::builder(method).map_err(tls_err("new TLS context"))?;
    let old = s.min.is_some_and(|v| v <= TlsVersion::Tls11);
    if old {
        b.clear_options(SslOptions::NO_TLSV1 | SslOptions::NO_TLSV1_1);
    }
    b.set_options(SslOptions::IGNORE_UNEXPECTED_EOF);
    b.set_min_proto_version(s.min.map(TlsVersion::ssl)).map_err(tls_err("min version"))?;
    b.set_max_proto_version(s.max.map(TlsVersion::ssl)).map_err(tls_err("max version"))?;
    let mut list: Vec<&str> = s.ciphers.iter().map(SuiteName::openssl).collect();
    if list.is_empty() {
        list.push("DEFAULT");
    }
    let mut list = list.join(":");
    // TLS 1.0/1.1, and a certificate with a key too short for OpenSSL 3's default level (the
    // lab's RSA-1024 server, short on purpose), need security level 0.
    let weak_key = s.cert.is_some_and(|c| c.0.key == crate::pki::KeyAlg::Rsa1024);
    if old || weak_key {
        list.push_str(":@SECLEVEL=0");
    }
    b.set_cipher_list(&list).map_err(tls_err(&format!("cipher list `{list}`")))?;
    if server {
        // The DHE suites need group parameters (2048-bit, RFC 5114).
        let dh = openssl::dh::Dh::get_2048_256().map_err(tls_err("DH parameters"))?;
        b.set_tmp_dh(&dh).map_err(tls_err("DH parameters"))?;
    }
    let need_pki = || pki.ok_or_else(|| "TLS certificates need the lab PKI".to_string());
    if let Some(cert) = s.cert {
        let pki = need_pki()?;
        let pki_err = |e: crate::pki::PkiError| e.to_string();
        let x509 = pki.x509(cert.name()).map_err(pki_err)?;
        b.set_certificate(&x509).map_err(tls_err("certificate"))?;
        let key = pki.pkey(cert.name()).map_err(pki_err)?;
        b.set_private_key(&key).map_err(tls_err("private key"))?;
        if s.send_chain {
            for i in pki.intermediates(cert.name()).map_err(pki_err)? {
                b.add_extra_chain_cert(i).map_err(tls_err("intermediate"))?;
            }
        }
    }
    match s.ca {
        Some(ca) => {
            let pki = need_pki()?;
            let ca_cert = pki.x509(ca.name()).map_err(|e| e.to_string())?;
            let mut store = X509StoreBuilder::new().map_err(tls_err("certificate store"))?;
            store.add_cert(ca_cert.clone()).map_err(tls_err("trusted certificate"))?;
            b.set_cert_store(store.build());
            if server {
                b.add_client_ca(&ca_cert).map_err(tls_err("client CA"))?;
                b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
            } else {
                b.set_verify(SslVerifyMode::PEER);
            }
            b.verify_param_mut().set_time(crate::pki::LAB_NOW);
        }
        None => b.set_verify(SslVerifyMode::NONE),
    }
    Ok(b.build())
}

fn tls_record(ssl: &SslRef, handshake: Handshake) -> TlsRecord {
    let cipher = ssl.current_cipher();
    TlsRecord {
        version: ssl.version2().and_then(TlsVersion::from_ssl),
        suite: cipher.map(|c| c.name().to_string()),
        suite_iana: cipher.and_then(|c| c.standard_name()).map(str::to_string),
        client_subject: ssl.peer_certificate().map(|c| subject(&c)),
        handshake,
    }
}

/// `CN=…, O=…` of a certificate's subject.
fn subject(cert: &openssl::x509::X509Ref) -> String {
    cert.subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a handshake failed, in OpenSSL's words.
fn failure(e: &openssl::ssl::Error, ssl: &SslRef) -> String {
    let mut parts = Vec::new();
    if let Some(stack) = e.ssl_error() {
        parts.push(stack.to_string());
    } else if let Some(io) = e.io_error() {
        parts.push(io.to_string());
    } else {
        parts.push(format!("{e} (the other side closed the connection)"));
    }
    let verify = ssl.verify_result();
    if verify != openssl::x509::X509VerifyResult::OK {
        parts.push(format!("certificate verification: {}", verify.error_string()));
    }
    parts.join("; ")
}

/// The OpenSSL context of a `tls_server` peer (`None` for other kinds).
pub(super) fn server_context(
    spec: &super::PeerSpec,
    pki: Option<&Pki>,
) -> Result<Option<SslContext>, String> {
    let super::PeerSpec::TlsServer {
        cert,
        send_chain,
        min_version,
        max_version,
        ciphers,
        client_ca,
        ..
    } = spec
    else {
        return Ok(None);
    };
    let settings = TlsSettings {
        min: *min_version,
        max: *max_version,
        ciphers,
        cert: Some(*cert),
        send_chain: send_chain.unwrap_or(true),
        ca: *client_ca,
    };
    context(SslMethod::tls_server(), true, &settings, pki).map(Some)
}

/// Serves a `tls_server` peer: accepts until woken, one thread per connection.
pub(super) fn serve(
    ctx: &Arc<SslContext>,
    listener: &TcpListener,
    wake: &UnixStream,
    records: &Records,
) -> Result<(), String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let result = loop {
        let mut fds = [
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::from(500u16)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => break Err(format!("poll: {e}")),
        }
        if fds[0].revents().is_some_and(|f| !f.is_empty()) {
            break Ok(());
        }
        if !fds[1].revents().is_some_and(|f| f.contains(PollFlags::POLLIN)) {
            continue;
        }
        loop {
            match listener.accept() {
                Ok((stream, remote)) => {
                    let rec = {
                        let mut recs = lock(records);
                        let mut r = ConnRecord::new(remote);
                        r.tls = Some(TlsRecord {
                            handshake: Handshake::InProgress,
                            version: None,
                            suite: None,
                            suite_iana: None,
                            client_subject: None,
                        });
                        recs.push(r);
                        recs.len() - 1
                    };
                    let (ctx_t, records_t, stop_t) =
                        (Arc::clone(ctx), Arc::clone(records), Arc::clone(&stop));
                    let spawned = std::thread::Builder::new()
                        .name(format!("tls-conn-{rec}"))
                        .spawn(move || connection(&ctx_t, stream, rec, &records_t, &stop_t));
                    match spawned {
                        Ok(t) => threads.push(t),
                        Err(e) => update(records, rec, |r| {
                            r.closed = Some(Closed::Error(format!("connection thread: {e}")));
                        }),
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        threads.retain(|t: &std::thread::JoinHandle<()>| !t.is_finished());
    };
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    result
}

fn update(records: &Records, rec: usize, f: impl FnOnce(&mut ConnRecord)) {
    if let Some(r) = lock(records).get_mut(rec) {
        f(r);
    }
}

/// One connection of a `tls_server`: handshake, then echo until the client closes.
fn connection(
    ctx: &SslContext,
    stream: TcpStream,
    rec: usize,
    records: &Records,
    stop: &AtomicBool,
) {
    let close = |how: Closed| update(records, rec, |r| r.closed = Some(how));
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(TICK)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(10))));
    if let Err(e) = setup {
        return close(Closed::Error(format!("socket: {e}")));
    }
    let _ = stream.set_nodelay(true);
    let ssl = match Ssl::new(ctx) {
        Ok(s) => s,
        Err(e) => return close(Closed::Error(format!("new TLS session: {e}"))),
    };
    let mut attempt = ssl.accept(stream);
    let mut tls = loop {
        match attempt {
            Ok(s) => break s,
            Err(HandshakeError::WouldBlock(mid)) => {
                if stop.load(Ordering::Relaxed) {
                    return close(Closed::Stopped);
                }
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(mid)) => {
                let why = failure(mid.error(), mid.ssl());
                let record = tls_record(mid.ssl(), Handshake::Failed(why.clone()));
                update(records, rec, |r| {
                    r.tls = Some(record);
                    r.closed = Some(Closed::Error(format!("handshake: {why}")));
                });
                return;
            }
            Err(HandshakeError::SetupFailure(e)) => {
                let why = format!("TLS setup: {e}");
                update(records, rec, |r| {
                    if let Some(t) = r.tls.as_mut() {
                        t.handshake = Handshake::Failed(why.clone());
                    }
                    r.closed = Some(Closed::Error(why));
                });
                return;
            }
        }
    };
    let record = tls_record(tls.ssl(), Handshake::Ok);
    update(records, rec, |r| r.tls = Some(record));
    let mut buf = vec![0u8; 16 * 1024];
    let how = loop {
        match tls.ssl_read(&mut buf) {
            Ok(0) => break Closed::ByRemote,
            Ok(n) => {
                let data = &buf[..n];
                update(records, rec, |r| r.received.extend_from_slice(data));
                // Recorded before the client can see the echo (a write that fails ends the
                // connection with `Closed::Error`, which says so).
                update(records, rec, |r| r.sent.extend_from_slice(data));
                if let Err(e) = tls.write_all(data) {
                    break Closed::Error(format!("write: {e}"));
                }
            }
            Err(e) if e.code() == openssl::ssl::ErrorCode::ZERO_RETURN => {
                // close_notify: answer it.
                let _ = tls.shutdown();
                break Closed::ByRemote;
            }
            Err(e) if e.code() == openssl::ssl::ErrorCode::WANT_READ => {
                if stop.load(Ordering::Relaxed) {
                    break Closed::Stopped;
                }
            }
            Err(e) if e.code() == openssl::ssl::ErrorCode::SYSCALL && e.io_error().is_none() => {
                break Closed::ByRemote;
            }
            Err(e) => {
                if e.io_error().is_some_and(|io| io.kind() == ErrorKind::Interrupted) {
                    continue;
                }
                break Closed::Error(format!("read: {}", failure(&e, tls.ssl())));
            }
        }
    };
    close(how);
}

/// `tls_connect`: a TLS connection from the lab to the module.
///
/// ```toml
/// client = { tls_connect = { port = 443 } }                       # any certificate, TLS 1.2+
/// client = { tls_connect = { port = 3000, version = "TLSv1.2", cipher = "AES128-SHA", ca = "ca-rsa", client_cert = "client-p256" } }
/// client = { tls_connect = { port = 3000, ca = "ca-p256", expect = "fail", error = "certificate has expired" } }
/// ```
///
/// `version` fixes the version (default: OpenSSL's, TLS 1.2 and 1.3); `cipher` offers only that
/// suite; `ca` verifies the module's certificate (chain and dates at the lab's now; no name
/// check: the module has a lab address of its own), without it any certificate is taken;
/// `client_cert` presents that material (with its intermediates) when the module asks.
/// `expect = "fail"`: the handshake must fail, and with `error`, OpenSSL's reason must contain
/// that text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConnectSpec {
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<SuiteName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<MaterialRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<MaterialRef>,
    #[serde(default)]
    pub expect: Expect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether a handshake must succeed: `"ok"`, or `"fail"` (also written `"failed"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    #[default]
    Ok,
    #[serde(alias = "failed")]
    Fail,
}

impl TlsConnectSpec {
    pub fn new(port: u16) -> Self {
        TlsConnectSpec {
            port,
            version: None,
            cipher: None,
            client_cert: None,
            ca: None,
            expect: Expect::Ok,
            error: None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.error.is_some() && self.expect != Expect::Fail {
            return Err("`error` goes with `expect = \"fail\"`".into());
        }
        Ok(())
    }

    fn settings(&self) -> TlsSettings<'_> {
        TlsSettings {
            min: self.version,
            max: self.version,
            ciphers: self.cipher.as_slice(),
            cert: self.client_cert,
            send_chain: true,
            ca: self.ca,
        }
    }
}

/// The OpenSSL client context of a `tls_connect` (its port aside), for clients that make
/// many connections with it.
pub fn client_context(spec: &TlsConnectSpec, pki: Option<&Pki>) -> Result<SslContext, String> {
    context(SslMethod::tls_client(), false, &spec.settings(), pki)
}

/// A client's TLS handshake over `stream`: the connection, or OpenSSL's reason.
pub(super) fn connect(
    spec: &TlsConnectSpec,
    pki: Option<&Pki>,
    stream: TcpStream,
) -> Result<Result<(SslStream<TcpStream>, TlsRecord), String>, String> {
    let ctx = client_context(spec, pki)?;
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)))
        .map_err(|e| format!("socket: {e}"))?;
    let ssl = Ssl::new(&ctx).map_err(tls_err("new TLS session"))?;
    Ok(match ssl.connect(stream) {
        Ok(s) => {
            let record = tls_record(s.ssl(), Handshake::Ok);
            Ok((s, record))
        }
        Err(HandshakeError::Failure(mid)) => Err(failure(mid.error(), mid.ssl())),
        Err(HandshakeError::WouldBlock(mid)) => Err(format!(
            "no handshake within {HANDSHAKE_TIMEOUT:?} ({})",
            failure(mid.error(), mid.ssl())
        )),
        Err(HandshakeError::SetupFailure(e)) => return Err(format!("TLS setup: {e}")),
    })
}

/// A byte stream a lab client holds: plain TCP or TLS over it.
#[derive(Debug)]
pub(super) enum Link {
    Tcp(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl Link {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Link::Tcp(s) => s,
            Link::Tls(s) => s.get_ref(),
        }
    }

    /// Closes: TLS sends close_notify first.
    pub fn close(&mut self) {
        if let Link::Tls(s) = self {
            let _ = s.shutdown();
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Both);
    }

    /// Half-closes the sending side (TLS: close_notify, then FIN).
    pub fn shutdown_write(&mut self) -> std::io::Result<()> {
        if let Link::Tls(s) = self {
            let _ = s.shutdown();
        }
        self.tcp().shutdown(std::net::Shutdown::Write)
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Link::Tcp(s) => s.read(buf),
            Link::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Link::Tcp(s) => s.write(buf),
            Link::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Link::Tcp(s) => s.flush(),
            Link::Tls(s) => s.flush(),
        }
    }
}
