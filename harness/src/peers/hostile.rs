//! `tls_hostile`: a TLS server on raw TCP that answers a ClientHello with hand-built records
//! and misbehaves at a chosen step, to see how the module's TLS client fails.
//!
//! It reads the ClientHello (records and messages in any chunking, [`TlsReader`]), sends the
//! valid flight up to [`HostileAt`] (ServerHello choosing an offered suite, then a
//! self-signed P-256 certificate), and then does its [`HostileAct`]. `tamper` is different:
//! it runs a real OpenSSL server (TLS 1.2 at most) on one end of a socket pair inside the
//! peer, relays the connection to it, and flips the last byte (in the MAC or tag) of the first
//! application data record the server sends, after a full handshake.
//!
//! Connections are served one after another; the peer stays responsive to its stop signal at
//! every wait. What the client sent is in the connection's record (`received`): the
//! ClientHello is read back from there for `check_peer` ([`super::PeerHandle::client_hellos`]).

use super::vocab::{HostileAct, HostileAt, TlsHostileSpec};
use super::{Closed, ConnRecord, Records, lock};
use crate::capture::tls::{
    self, ALERT, APPLICATION_DATA, ClientHello, HANDSHAKE, Handshake, SERVER_HELLO, TlsMessage,
    TlsReader,
};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use openssl::ssl::{SslAcceptor, SslMethod, SslVersion};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The longest a wait lasts before the stop signal is looked at again.
const TICK: Duration = Duration::from_millis(200);
/// A write that does not finish in this time fails (the client stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// What the tampering server sends back once the client's first application data came (so the
/// corrupted record arrives after the handshake is over, whatever the timing).
pub const TAMPER_GREETING: &[u8] = b"hello from the lab\n";
/// Handshake message type Certificate, ServerHelloDone, Finished.
const CERTIFICATE: u8 = 11;
const SERVER_KEY_EXCHANGE: u8 = 12;
const CERTIFICATE_REQUEST: u8 = 13;
const SERVER_HELLO_DONE: u8 = 14;
const FINISHED: u8 = 20;
/// The extension a `bad_extension` ServerHello carries: ALPN choosing `h2`, which a client
/// that sent no ALPN must refuse (RFC 7301 §3.1; unknown numbers are tolerated by some
/// stacks); a client that did send ALPN gets the unknown number 0xFF99 instead.
pub const UNSOLICITED_EXTENSION: (u16, &[u8]) = (16, &[0, 3, 2, b'h', b'2']);
const UNKNOWN_EXTENSION: (u16, &[u8]) = (0xFF99, &[]);
/// Suites a `unoffered_suite` ServerHello picks from (the first one not offered): real
/// suites a client knows, so it reports a wrong choice, not an unknown one.
const UNOFFERED_CANDIDATES: [u16; 4] = [0xC030, 0x009C, 0xC02F, 0x0005];

/// The certificate and key every `tls_hostile` peer shows: self-signed, P-256, made once.
struct Identity {
    cert_der: Vec<u8>,
    cert: openssl::x509::X509,
    key: openssl::pkey::PKey<openssl::pkey::Private>,
}

fn identity() -> Result<&'static Identity, String> {
    static ID: std::sync::OnceLock<Result<Identity, String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| make_identity().map_err(|e| format!("make a certificate: {e}")))
        .as_ref()
        .map_err(Clone::clone)
}

fn make_identity() -> Result<Identity, openssl::error::ErrorStack> {
    use openssl::{asn1, bn, ec, hash, nid, pkey, x509};
    let group = ec::EcGroup::from_curve_name(nid::Nid::X9_62_PRIME256V1)?;
    let key = pkey::PKey::from_ec_key(ec::EcKey::generate(&group)?)?;
    let mut name = x509::X509NameBuilder::new()?;
    name.append_entry_by_nid(nid::Nid::COMMONNAME, "lab-host.lab")?;
    let name = name.build();
    let mut b = x509::X509Builder::new()?;
    b.set_version(2)?;
    let serial = bn::BigNum::from_u32(1)?.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let (from, to) = (asn1::Asn1Time::days_from_now(0)?, asn1::Asn1Time::days_from_now(3650)?);
    b.set_not_before(&from)?;
    b.set_not_after(&to)?;
    b.sign(&key, hash::MessageDigest::sha256())?;
    let cert = b.build();
    Ok(Identity { cert_der: cert.to_der()?, cert, key })
}

/// A TLS record.
pub(super) fn record(content_type: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// Handshake bytes as records of at most 2^14 bytes each.
pub(super) fn handshake_records(bytes: &[u8]) -> Vec<u8> {
    bytes.chunks(1 << 14).flat_map(|c| record(HANDSHAKE, 0x0303, c)).collect()
}

pub(super) fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap_or(0x00ff_ffff).to_be_bytes();
    let mut m = vec![msg_type, len[1], len[2], len[3]];
    m.extend_from_slice(body);
    m
}

pub(super) fn u24(n: usize) -> [u8; 3] {
    let b = u32::try_from(n).unwrap_or(0x00ff_ffff).to_be_bytes();
    [b[1], b[2], b[3]]
}

/// A ServerHello for TLS 1.2 choosing `suite`, echoing the renegotiation_info extension when
/// offered, plus `extra` extensions.
fn server_hello(hello: &ClientHello, suite: u16, extra: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = 0x0303u16.to_be_bytes().to_vec();
    b.extend_from_slice(&SERVER_RANDOM);
    b.push(0); // no session id
    b.extend_from_slice(&suite.to_be_bytes());
    b.push(0); // null compression
    let mut exts = Vec::new();
    if hello.extensions.contains(&0xff01) || hello.suites.contains(&tls::SCSV_RENEGOTIATION) {
        exts.extend_from_slice(&[0xff, 0x01, 0, 1, 0]);
    }
    for (ty, data) in extra {
        exts.extend_from_slice(&ty.to_be_bytes());
        exts.extend_from_slice(&u16::try_from(data.len()).unwrap_or(0).to_be_bytes());
        exts.extend_from_slice(data);
    }
    if !exts.is_empty() {
        b.extend_from_slice(&u16::try_from(exts.len()).unwrap_or(0).to_be_bytes());
        b.extend_from_slice(&exts);
    }
    handshake(SERVER_HELLO, &b)
}

/// An ECDHE ServerKeyExchange body (named curve secp256r1, a fresh point) signed with the
/// peer's P-256 key over both randoms and the parameters (ecdsa_secp256r1_sha256), as a TLS
/// 1.2 server sends it: valid, so that the message after it is the one that fails.
fn signed_key_exchange(
    hello: &ClientHello,
    id: &Identity,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    use openssl::{bn, ec, hash, nid, sign};
    let group = ec::EcGroup::from_curve_name(nid::Nid::X9_62_PRIME256V1)?;
    let ephemeral = ec::EcKey::generate(&group)?;
    let mut ctx = bn::BigNumContext::new()?;
    let point =
        ephemeral.public_key().to_bytes(&group, ec::PointConversionForm::UNCOMPRESSED, &mut ctx)?;
    let mut params = vec![3, 0x00, 0x17, u8::try_from(point.len()).unwrap_or(65)];
    params.extend_from_slice(&point);
    let mut signer = sign::Signer::new(hash::MessageDigest::sha256(), &id.key)?;
    signer.update(&hello.random)?;
    signer.update(&SERVER_RANDOM)?;
    signer.update(&params)?;
    let signature = signer.sign_to_vec()?;
    let mut body = params;
    body.extend_from_slice(&[0x04, 0x03]);
    body.extend_from_slice(&u16::try_from(signature.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&signature);
    Ok(body)
}

/// The server random of every ServerHello this peer sends.
const SERVER_RANDOM: [u8; 32] = {
    let mut r = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        r[i] = (i as u8).wrapping_mul(7).wrapping_add(1);
        i += 1;
    }
    r
};

/// A Certificate message: the peer's certificate, repeated until the message has at least
/// `min_bytes` bytes (one copy when 0).
fn certificate(der: &[u8], min_bytes: usize) -> Vec<u8> {
    let entry: Vec<u8> = u24(der.len()).iter().copied().chain(der.iter().copied()).collect();
    let copies = (min_bytes.saturating_sub(7) / entry.len() + 1).max(1);
    let list = entry.repeat(copies);
    let mut body = u24(list.len()).to_vec();
    body.extend_from_slice(&list);
    handshake(CERTIFICATE, &body)
}

/// The suite a well-behaved server would choose: one the certificate (ECDSA) can serve, in
/// the client's order, else the client's first.
fn chosen_suite(hello: &ClientHello) -> u16 {
    const ECDSA: [u16; 4] = [0xC02B, 0xC023, 0xC009, 0xC00A];
    hello
        .suites
        .iter()
        .copied()
        .find(|s| ECDSA.contains(s))
        .or_else(|| hello.suites.iter().copied().find(|s| *s != tls::SCSV_RENEGOTIATION))
        .unwrap_or(0xC02B)
}

/// How a wait ended.
enum Wake {
    Stop,
    Readable,
    Timeout,
}

fn wait(stream: &impl AsFd, wake: &UnixStream, timeout: Duration) -> Result<Wake, String> {
    let mut fds = [
        PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        PollFd::new(stream.as_fd(), PollFlags::POLLIN),
    ];
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(0) => Ok(Wake::Timeout),
        Ok(_) if fds[0].revents().is_some_and(|f| !f.is_empty()) => Ok(Wake::Stop),
        Ok(_) => Ok(Wake::Readable),
        Err(nix::errno::Errno::EINTR) => Ok(Wake::Timeout),
        Err(e) => Err(format!("poll: {e}")),
    }
}

/// Serves `tls_hostile` on `listener` until `wake` says stop.
pub(super) fn serve(
    spec: &TlsHostileSpec,
    listener: &TcpListener,
    wake: &UnixStream,
    records: &Records,
) -> Result<(), String> {
    let id = identity()?;
    loop {
        match wait(listener, wake, TICK)? {
            Wake::Stop => return Ok(()),
            Wake::Timeout => continue,
            Wake::Readable => {}
        }
        let (stream, remote) = match listener.accept() {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                continue;
            }
            Err(_) => continue,
        };
        let rec = {
            let mut recs = lock(records);
            recs.push(ConnRecord::new(remote));
            recs.len() - 1
        };
        let mut conn = Conn { stream, rec, records, wake };
        let how = conn.run(spec, id);
        if let Some(r) = lock(records).get_mut(rec)
            && r.closed.is_none()
        {
            r.closed = Some(how.clone());
        }
        if how == Closed::Stopped {
            return Ok(());
        }
    }
}

struct Conn<'a> {
    stream: TcpStream,
    rec: usize,
    records: &'a Records,
    wake: &'a UnixStream,
}

impl Conn<'_> {
    fn run(&mut self, spec: &TlsHostileSpec, id: &Identity) -> Closed {
        let _ = self.stream.set_nodelay(true);
        let _ = self.stream.set_write_timeout(Some(WRITE_TIMEOUT));
        if spec.act == HostileAct::Tamper {
            return match self.tamper(id) {
                Ok(c) | Err(c) => c,
            };
        }
        match self.misbehave(spec, id) {
            Ok(c) | Err(c) => c,
        }
    }

    /// Reads until a whole ClientHello came.
    fn read_client_hello(&mut self) -> Result<ClientHello, Closed> {
        let mut reader = TlsReader::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.read_some(&mut buf)?;
            // The first message decides: a ClientHello, or not a TLS client.
            if let Some(m) = reader.feed(&buf[..n]).into_iter().next() {
                return match m {
                    TlsMessage::Handshake(Handshake::ClientHello(h)) => Ok(h),
                    other => Err(Closed::Error(format!("expected a ClientHello, got {other:?}"))),
                };
            }
            if let Some(e) = reader.error() {
                return Err(Closed::Error(format!("not a ClientHello: {e}")));
            }
        }
    }

    /// Reads what is there (waiting for it), recording it; ends on close or stop.
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Closed> {
        loop {
            match wait(&self.stream, self.wake, TICK).map_err(Closed::Error)? {
                Wake::Stop => return Err(Closed::Stopped),
                Wake::Timeout => continue,
                Wake::Readable => {}
            }
            match self.stream.read(buf) {
                Ok(0) => return Err(Closed::ByRemote),
                Ok(n) => {
                    if let Some(r) = lock(self.records).get_mut(self.rec) {
                        r.received.extend_from_slice(&buf[..n]);
                    }
                    return Ok(n);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return Err(Closed::Error(format!("read: {e}"))),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Closed> {
        // Recorded first: whoever sees the bytes arrive finds them in `sent`.
        if let Some(r) = lock(self.records).get_mut(self.rec) {
            r.sent.extend_from_slice(bytes);
        }
        self.stream.write_all(bytes).map_err(|e| Closed::Error(format!("write: {e}")))
    }

    /// Reads and records until the client closes or the peer stops.
    fn hold(&mut self) -> Closed {
        let mut buf = [0u8; 4096];
        loop {
            if let Err(c) = self.read_some(&mut buf) {
                return c;
            }
        }
    }

    fn misbehave(&mut self, spec: &TlsHostileSpec, id: &Identity) -> Result<Closed, Closed> {
        let hello = self.read_client_hello()?;
        let suite = chosen_suite(&hello);
        // The valid flight up to the step.
        let mut flight = Vec::new();
        let replace_at_hello = spec.at == HostileAt::ClientHello;
        match spec.act {
            HostileAct::BadExtension => {
                let ext = if hello.extensions.contains(&UNSOLICITED_EXTENSION.0) {
                    UNKNOWN_EXTENSION
                } else {
                    UNSOLICITED_EXTENSION
                };
                flight.extend(server_hello(&hello, suite, &[ext]));
            }
            HostileAct::UnofferedSuite => {
                let other = UNOFFERED_CANDIDATES
                    .iter()
                    .copied()
                    .find(|s| !hello.suites.contains(s))
                    .unwrap_or(0x0005);
                flight.extend(server_hello(&hello, other, &[]));
            }
            HostileAct::HugeCertificate => {
                flight.extend(server_hello(&hello, suite, &[]));
                flight.extend(certificate(&id.cert_der, spec.cert_bytes()));
            }
            HostileAct::AppData => {}
            HostileAct::BadKeyExchange => {
                flight.extend(server_hello(&hello, suite, &[]));
                flight.extend(certificate(&id.cert_der, 0));
                flight.extend(handshake(SERVER_KEY_EXCHANGE, &[0xff, 0xff, 0xff]));
            }
            HostileAct::BadCertificateRequest | HostileAct::HelloDoneBody => {
                flight.extend(server_hello(&hello, suite, &[]));
                flight.extend(certificate(&id.cert_der, 0));
                let ske = signed_key_exchange(&hello, id)
                    .map_err(|e| Closed::Error(format!("sign the key exchange: {e}")))?;
                flight.extend(handshake(SERVER_KEY_EXCHANGE, &ske));
                if spec.act == HostileAct::BadCertificateRequest {
                    flight.extend(handshake(CERTIFICATE_REQUEST, &[0xff]));
                } else {
                    flight.extend(handshake(SERVER_HELLO_DONE, &[0]));
                }
            }
            _ => {
                if !replace_at_hello {
                    flight.extend(server_hello(&hello, suite, &[]));
                }
                if spec.at == HostileAt::Certificate {
                    flight.extend(certificate(&id.cert_der, 0));
                }
            }
        }
        let mut out = handshake_records(&flight);
        match spec.act {
            HostileAct::Stall
            | HostileAct::BadExtension
            | HostileAct::UnofferedSuite
            | HostileAct::HugeCertificate
            | HostileAct::BadKeyExchange
            | HostileAct::BadCertificateRequest
            | HostileAct::HelloDoneBody => {
                self.send(&out)?;
                return Ok(self.hold());
            }
            HostileAct::Close => {
                self.send(&out)?;
                let _ = self.stream.shutdown(Shutdown::Write);
                // Read on until the client closes, so the close is a FIN, not a reset.
                return Ok(match self.hold() {
                    Closed::ByRemote => Closed::CloseAfter,
                    other => other,
                });
            }
            HostileAct::Reset => {
                self.send(&out)?;
                let linger = nix::libc::linger { l_onoff: 1, l_linger: 0 };
                nix::sys::socket::setsockopt(
                    &self.stream,
                    nix::sys::socket::sockopt::Linger,
                    &linger,
                )
                .map_err(|e| Closed::Error(format!("SO_LINGER: {e}")))?;
                return Ok(Closed::CloseAfter); // dropping the stream sends RST
            }
            HostileAct::Alert => {
                out.extend(record(ALERT, 0x0303, &[spec.level(), spec.description()]));
            }
            HostileAct::BadLength => {
                // Claims more than any record may hold.
                out.extend([HANDSHAKE, 3, 3, 0xff, 0xff]);
                out.extend([0u8; 16]);
            }
            HostileAct::BadContentType => out.extend(record(0x63, 0x0303, &[0; 16])),
            HostileAct::WrongVersion => {
                // The next message (or the ServerHello itself at `client_hello`) in a record
                // of version 2.0.
                let next = if replace_at_hello {
                    server_hello(&hello, suite, &[])
                } else {
                    certificate(&id.cert_der, 0)
                };
                out.extend(record(HANDSHAKE, 0x0200, &next));
            }
            HostileAct::UnexpectedMessage => {
                out.extend(record(HANDSHAKE, 0x0303, &handshake(FINISHED, &[0; 12])));
            }
            HostileAct::AppData => out.extend(record(APPLICATION_DATA, 0x0303, &[0; 16])),
            HostileAct::Tamper => {}
        }
        self.send(&out)?;
        Ok(self.hold())
    }

    /// Relays the connection to an OpenSSL server on a socket pair and corrupts the first
    /// application data record it sends.
    fn tamper(&mut self, id: &Identity) -> Result<Closed, Closed> {
        let err = |what: &str| {
            let what = what.to_string();
            move |e: std::io::Error| Closed::Error(format!("{what}: {e}"))
        };
        let (inner, mut outer) = UnixStream::pair().map_err(err("socket pair"))?;
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
            .map_err(|e| Closed::Error(format!("OpenSSL server: {e}")))?;
        let setup = b
            .set_certificate(&id.cert)
            .and_then(|()| b.set_private_key(&id.key))
            .and_then(|()| b.set_max_proto_version(Some(SslVersion::TLS1_2)));
        setup.map_err(|e| Closed::Error(format!("OpenSSL server: {e}")))?;
        let acceptor = b.build();
        let server = std::thread::Builder::new()
            .name("peer-tls-tamper".into())
            .spawn(move || {
                if let Ok(mut s) = acceptor.accept(inner) {
                    let mut buf = [0u8; 1024];
                    if matches!(s.read(&mut buf), Ok(n) if n > 0) {
                        let _ = s.write_all(TAMPER_GREETING);
                    }
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                }
            })
            .map_err(err("server thread"))?;
        self.stream.set_nonblocking(true).map_err(err("non-blocking"))?;
        outer.set_nonblocking(true).map_err(err("non-blocking"))?;
        let mut pending = Vec::new(); // server bytes not yet a whole record
        let mut tampered = false;
        let mut buf = [0u8; 16 * 1024];
        let end = loop {
            let mut fds = [
                PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.stream.as_fd(), PollFlags::POLLIN),
                PollFd::new(outer.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::from(200u16)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => break Closed::Error(format!("poll: {e}")),
            }
            let ready = |i: usize| fds[i].revents().is_some_and(|f| !f.is_empty());
            let (stop, client, from_server) = (ready(0), ready(1), ready(2));
            if stop {
                break Closed::Stopped;
            }
            if client {
                match self.stream.read(&mut buf) {
                    Ok(0) => break Closed::ByRemote,
                    Ok(n) => {
                        if let Some(r) = lock(self.records).get_mut(self.rec) {
                            r.received.extend_from_slice(&buf[..n]);
                        }
                        if outer
                            .set_nonblocking(false)
                            .and_then(|()| outer.write_all(&buf[..n]))
                            .is_err()
                        {
                            break Closed::Error("the inner server went away".into());
                        }
                        let _ = outer.set_nonblocking(true);
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(e) => break Closed::Error(format!("read: {e}")),
                }
            }
            if from_server {
                match outer.read(&mut buf) {
                    Ok(0) => break Closed::SourceDone,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(e) => break Closed::Error(format!("inner read: {e}")),
                }
                // Whole records on, the first application data record corrupted.
                let mut at = 0;
                while pending.len() - at >= 5 {
                    let len = usize::from(u16::from_be_bytes([pending[at + 3], pending[at + 4]]));
                    if pending.len() - at - 5 < len {
                        break;
                    }
                    if pending[at] == APPLICATION_DATA && !tampered && len > 0 {
                        pending[at + 4 + len] ^= 0x01;
                        tampered = true;
                    }
                    at += 5 + len;
                }
                let whole: Vec<u8> = pending.drain(..at).collect();
                if !whole.is_empty() {
                    let sent = self.stream.set_nonblocking(false).and_then(|()| {
                        if let Some(r) = lock(self.records).get_mut(self.rec) {
                            r.sent.extend_from_slice(&whole);
                        }
                        self.stream.write_all(&whole)
                    });
                    let _ = self.stream.set_nonblocking(true);
                    if let Err(e) = sent {
                        break Closed::Error(format!("write: {e}"));
                    }
                }
            }
        };
        drop(outer);
        let _ = server.join();
        Ok(end)
    }
}

/// The ClientHello at the start of `received` (what a client sent a TLS peer), if it is one.
pub fn client_hello(received: &[u8]) -> Option<ClientHello> {
    let mut r = TlsReader::new();
    r.feed(received).into_iter().find_map(|m| match m {
        TlsMessage::Handshake(Handshake::ClientHello(h)) => Some(h),
        _ => None,
    })
}
