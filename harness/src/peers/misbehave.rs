//! `tls_hostile` as a client action: a TLS 1.2 client built by hand that breaks the
//! handshake late, where only a client that holds the session's keys or a certificate can.
//!
//! OpenSSL will not send a CertificateVerify that does not verify, nor a Finished whose
//! verify_data is wrong under a valid MAC; this client does. It offers one suite,
//! TLS_RSA_WITH_AES_128_CBC_SHA (one of the chapter's twelve): its key exchange is the
//! premaster secret encrypted to the server's certificate, so the client alone knows every
//! key, and records are AES-128-CBC with HMAC-SHA1 (RFC 5246 §6.2.3.2, no extensions:
//! MAC then encrypt, the classic master secret).
//!
//! The flight after the server's hello is sent whole, as a real client sends it:
//! [Certificate], ClientKeyExchange, [CertificateVerify], ChangeCipherSpec, Finished. Then the
//! client reads the server's answer: a fatal alert or a close means the server refused it, its
//! own ChangeCipherSpec that it took the flaw.

use super::hostile::{handshake, handshake_records, record, u24};
use super::vocab::{ClientMisdeed, TlsMisbehaveSpec};
use crate::capture::tls::{ALERT, CHANGE_CIPHER_SPEC, HANDSHAKE, SERVER_HELLO};
use crate::pki::{MaterialRef, Pki};
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::Signer;
use openssl::symm::{Cipher, Crypter, Mode};
use openssl::x509::X509;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// TLS_RSA_WITH_AES_128_CBC_SHA.
pub const SUITE: u16 = 0x002F;
const SCSV_RENEGOTIATION: u16 = 0x00FF;
const CLIENT_HELLO: u8 = 1;
const CERTIFICATE: u8 = 11;
const CERTIFICATE_REQUEST: u8 = 13;
const SERVER_HELLO_DONE: u8 = 14;
const CERTIFICATE_VERIFY: u8 = 15;
const CLIENT_KEY_EXCHANGE: u8 = 16;
const FINISHED: u8 = 20;
/// TLS 1.2 on the wire, as records and hellos carry it.
const TLS12_VERSION: u16 = crate::capture::tls::Version::TLS12.0;
const TLS12: [u8; 2] = TLS12_VERSION.to_be_bytes();
const MAC_LEN: usize = 20;
const KEY_LEN: usize = 16;
const BLOCK: usize = 16;

fn flaw(misdeed: ClientMisdeed) -> Flaw {
    match misdeed {
        ClientMisdeed::BadCertificateVerify => Flaw::CertificateVerify,
        ClientMisdeed::BadFinished => Flaw::Finished,
    }
}

/// Which message is wrong; `None` is a correct handshake (how the tests prove the keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flaw {
    #[cfg(test)]
    None,
    CertificateVerify,
    Finished,
}

/// How the server answered the client's flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// Its ChangeCipherSpec: it took the flight.
    ChangeCipherSpec,
    /// A plaintext alert (level, description).
    Alert(u8, u8),
    /// The connection ended (FIN or reset) without either.
    Closed,
}

/// Why the client could not get as far as its flaw.
#[derive(Debug, thiserror::Error)]
pub(super) enum Misbehaved {
    /// The server did something the case does not expect (the case fails).
    #[error("{0}")]
    Server(String),
    /// The harness could not do its part.
    #[error("{0}")]
    Harness(String),
}

fn harness<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Misbehaved {
    move |e| Misbehaved::Harness(format!("{what}: {e}"))
}

/// The client's certificate chain and key.
pub(super) struct Identity {
    chain: Vec<X509>,
    key: PKey<Private>,
}

impl Identity {
    pub(super) fn from_pki(pki: &Pki, material: MaterialRef) -> Result<Identity, String> {
        let name = material.name();
        let leaf = pki.x509(name).map_err(|e| e.to_string())?;
        let mut chain = vec![leaf];
        chain.extend(pki.intermediates(name).map_err(|e| e.to_string())?);
        Ok(Identity { chain, key: pki.pkey(name).map_err(|e| e.to_string())? })
    }

    #[cfg(test)]
    pub(super) fn new(chain: Vec<X509>, key: PKey<Private>) -> Identity {
        Identity { chain, key }
    }
}

/// Runs the hand-built handshake with `flaw` on `stream` and returns the server's answer,
/// waiting up to `timeout` for each of its flights.
pub(super) fn exchange(
    stream: &mut TcpStream,
    flaw: Flaw,
    identity: Option<&Identity>,
    timeout: Duration,
) -> Result<Answer, Misbehaved> {
    let mut transcript = Vec::new();
    let client_random = random::<32>()?;
    let hello = handshake(CLIENT_HELLO, &client_hello_body(&client_random));
    transcript.extend_from_slice(&hello);
    stream
        .write_all(&record(HANDSHAKE, TLS12_VERSION, &hello))
        .map_err(harness("send the ClientHello"))?;

    let mut reader = Records::default();
    let server = read_server_flight(stream, &mut reader, &mut transcript, timeout)?;
    let mut flight = Vec::new();
    let mut hs = |msg: Vec<u8>, transcript: &mut Vec<u8>| {
        transcript.extend_from_slice(&msg);
        flight.extend_from_slice(&msg);
    };
    let sends_cert = server.wants_cert && identity.is_some();
    if server.wants_cert {
        hs(
            certificate_msg(identity.map(|i| i.chain.as_slice()).unwrap_or_default())?,
            &mut transcript,
        );
    }
    let mut premaster = TLS12.to_vec();
    premaster.extend_from_slice(&random::<46>()?);
    let rsa = server.key.rsa().map_err(|e| {
        Misbehaved::Server(format!(
            "the server's certificate has no RSA key ({e}); it cannot serve {SUITE:#06x}"
        ))
    })?;
    let mut encrypted = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&premaster, &mut encrypted, Padding::PKCS1)
        .map_err(harness("encrypt the premaster secret"))?;
    hs(handshake(CLIENT_KEY_EXCHANGE, &vec16(&encrypted[..n])), &mut transcript);
    if let (true, Some(id)) = (sends_cert, identity) {
        let signed: &[u8] =
            if flaw == Flaw::CertificateVerify { b"not this handshake" } else { &transcript };
        hs(handshake(CERTIFICATE_VERIFY, &certificate_verify(id, signed)?), &mut transcript);
    } else if flaw == Flaw::CertificateVerify {
        return Err(Misbehaved::Server(
            "the server did not ask for a client certificate: no CertificateVerify to break".into(),
        ));
    }

    let mut seed = client_random.to_vec();
    seed.extend_from_slice(&server.random);
    let master = prf(&premaster, b"master secret", &seed, 48)?;
    let mut seed = server.random.to_vec();
    seed.extend_from_slice(&client_random);
    let keys = prf(&master, b"key expansion", &seed, 2 * MAC_LEN + 2 * KEY_LEN)?;
    let (mac_key, key) = (&keys[..MAC_LEN], &keys[2 * MAC_LEN..2 * MAC_LEN + KEY_LEN]);
    let digest = hash(MessageDigest::sha256(), &transcript).map_err(harness("hash"))?;
    let mut verify_data = prf(&master, b"client finished", &digest, 12)?;
    if flaw == Flaw::Finished {
        verify_data[11] ^= 1;
    }
    let finished = handshake(FINISHED, &verify_data);

    let mut out = handshake_records(&flight);
    out.extend(record(CHANGE_CIPHER_SPEC, TLS12_VERSION, &[1]));
    out.extend(record(HANDSHAKE, TLS12_VERSION, &encrypt(mac_key, key, HANDSHAKE, &finished)?));
    stream.write_all(&out).map_err(harness("send the client's flight"))?;
    read_answer(stream, &mut reader, timeout)
}

/// ClientHello: TLS 1.2, the one suite (and the renegotiation SCSV), signature_algorithms
/// for the CertificateRequest; nothing that would change the key schedule or the records.
fn client_hello_body(random: &[u8; 32]) -> Vec<u8> {
    let mut b = TLS12.to_vec();
    b.extend_from_slice(random);
    b.push(0); // no session id
    b.extend_from_slice(&vec16(&[SUITE.to_be_bytes(), SCSV_RENEGOTIATION.to_be_bytes()].concat()));
    b.extend_from_slice(&[1, 0]); // null compression
    // signature_algorithms: rsa_pkcs1_sha256, ecdsa_secp256r1_sha256.
    let algs = vec16(&[4, 1, 4, 3]);
    let mut ext = 13u16.to_be_bytes().to_vec();
    ext.extend_from_slice(&vec16(&algs));
    b.extend_from_slice(&vec16(&ext));
    b
}

/// What the server's hello flight told.
struct ServerFlight {
    random: [u8; 32],
    key: PKey<openssl::pkey::Public>,
    wants_cert: bool,
}

fn read_server_flight(
    stream: &mut TcpStream,
    reader: &mut Records,
    transcript: &mut Vec<u8>,
    timeout: Duration,
) -> Result<ServerFlight, Misbehaved> {
    let deadline = Instant::now() + timeout;
    let mut flight = FlightParser::default();
    loop {
        let next = match reader.take_step() {
            Some(next) => next,
            None => {
                if !reader.read(stream, deadline)? {
                    Step::Closed
                } else {
                    continue;
                }
            }
        };
        if let Some(done) = flight.take(next, transcript)? {
            return Ok(done);
        }
    }
}

/// What ends a step of the server's handshake, as [`Records::take_step`] finds it.
enum Step {
    /// A whole handshake message, header included.
    Handshake(Vec<u8>),
    Alert(u8, u8),
    Other(u8),
    Closed,
}

/// The server's hello flight, message by message.
#[derive(Default)]
struct FlightParser {
    random: Option<[u8; 32]>,
    key: Option<PKey<openssl::pkey::Public>>,
    wants_cert: bool,
}

impl FlightParser {
    /// Takes one step (a message goes on the transcript); the flight once its
    /// ServerHelloDone came.
    fn take(
        &mut self,
        step: Step,
        transcript: &mut Vec<u8>,
    ) -> Result<Option<ServerFlight>, Misbehaved> {
        let before =
            |what: String| Err(Misbehaved::Server(format!("{what} before its ServerHelloDone")));
        let msg = match step {
            Step::Handshake(msg) => msg,
            Step::Alert(level, desc) => {
                return before(format!(
                    "the server sent an alert (level {level}, description {desc})"
                ));
            }
            Step::Other(ty) => return before(format!("the server sent a record of type {ty}")),
            Step::Closed => return before("the server closed the connection".into()),
        };
        transcript.extend_from_slice(&msg);
        let body = &msg[4..];
        match msg[0] {
            SERVER_HELLO => self.random = Some(parse_server_hello(body)?),
            CERTIFICATE => self.key = Some(parse_certificate(body)?),
            CERTIFICATE_REQUEST => self.wants_cert = true,
            SERVER_HELLO_DONE => {
                return match (self.random, self.key.take()) {
                    (Some(random), Some(key)) => {
                        Ok(Some(ServerFlight { random, key, wants_cert: self.wants_cert }))
                    }
                    _ => Err(Misbehaved::Server(
                        "the server's flight lacked a ServerHello or a Certificate".into(),
                    )),
                };
            }
            other => {
                return Err(Misbehaved::Server(format!(
                    "unexpected handshake message {other} in the server's hello flight"
                )));
            }
        }
        Ok(None)
    }
}

/// Reads a server's hello flight from `bytes` (records in any chunking) as the `tls_hostile`
/// client does: whether the server asks for a client certificate, or why the client would
/// stop. For the fuzz target: no input may panic.
pub fn parse_server_flight(bytes: &[u8]) -> Result<bool, String> {
    let mut records = Records::default();
    records.buf.extend_from_slice(bytes);
    let mut flight = FlightParser::default();
    let mut transcript = Vec::new();
    loop {
        let step = records.take_step().unwrap_or(Step::Closed);
        match flight.take(step, &mut transcript) {
            Ok(Some(done)) => return Ok(done.wants_cert),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn malformed(what: &str) -> Misbehaved {
    Misbehaved::Server(format!("malformed {what}"))
}

/// The server random; the suite must be the one offered.
fn parse_server_hello(body: &[u8]) -> Result<[u8; 32], Misbehaved> {
    let random: [u8; 32] =
        body.get(2..34).and_then(|r| r.try_into().ok()).ok_or_else(|| malformed("ServerHello"))?;
    let sid = usize::from(*body.get(34).ok_or_else(|| malformed("ServerHello"))?);
    let suite = body
        .get(35 + sid..37 + sid)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| malformed("ServerHello"))?;
    if body[..2] != TLS12 || suite != SUITE {
        return Err(Misbehaved::Server(format!(
            "the ServerHello chose version {:02x}{:02x} and suite {suite:#06x}, not TLS 1.2 and {SUITE:#06x}",
            body[0], body[1]
        )));
    }
    Ok(random)
}

/// The public key of the first certificate of a Certificate message.
fn parse_certificate(body: &[u8]) -> Result<PKey<openssl::pkey::Public>, Misbehaved> {
    let len = body.get(3..6).map(read_u24).ok_or_else(|| malformed("Certificate"))?;
    let der = body.get(6..6 + len).ok_or_else(|| malformed("Certificate"))?;
    let cert = X509::from_der(der)
        .map_err(|e| Misbehaved::Server(format!("the server's certificate: {e}")))?;
    cert.public_key().map_err(|e| Misbehaved::Server(format!("the server's certificate key: {e}")))
}

fn certificate_msg(chain: &[X509]) -> Result<Vec<u8>, Misbehaved> {
    let mut list = Vec::new();
    for cert in chain {
        let der = cert.to_der().map_err(harness("encode the client certificate"))?;
        list.extend_from_slice(&u24(der.len()));
        list.extend_from_slice(&der);
    }
    let mut body = u24(list.len()).to_vec();
    body.extend_from_slice(&list);
    Ok(handshake(CERTIFICATE, &body))
}

/// A CertificateVerify body: SHA-256 with the key's own scheme over `signed`.
fn certificate_verify(id: &Identity, signed: &[u8]) -> Result<Vec<u8>, Misbehaved> {
    let scheme: [u8; 2] = match id.key.id() {
        Id::RSA => [4, 1],
        Id::EC => [4, 3],
        other => {
            return Err(Misbehaved::Harness(format!("no CertificateVerify for a {other:?} key")));
        }
    };
    let mut signer = Signer::new(MessageDigest::sha256(), &id.key).map_err(harness("sign"))?;
    signer.update(signed).map_err(harness("sign"))?;
    let signature = signer.sign_to_vec().map_err(harness("sign"))?;
    let mut body = scheme.to_vec();
    body.extend_from_slice(&vec16(&signature));
    Ok(body)
}

/// TLS 1.2's PRF, P_SHA256 (RFC 5246 §5).
fn prf(secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Result<Vec<u8>, Misbehaved> {
    let label_seed = [label, seed].concat();
    let mut a = hmac(MessageDigest::sha256(), secret, &[&label_seed])?;
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        out.extend(hmac(MessageDigest::sha256(), secret, &[&a, &label_seed])?);
        a = hmac(MessageDigest::sha256(), secret, &[&a])?;
    }
    out.truncate(len);
    Ok(out)
}

fn hmac(md: MessageDigest, key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, Misbehaved> {
    let key = PKey::hmac(key).map_err(harness("HMAC key"))?;
    let mut signer = Signer::new(md, &key).map_err(harness("HMAC"))?;
    for p in parts {
        signer.update(p).map_err(harness("HMAC"))?;
    }
    signer.sign_to_vec().map_err(harness("HMAC"))
}

/// The first record after the ChangeCipherSpec (sequence number 0), AES-128-CBC with
/// HMAC-SHA1, MAC then encrypt, an explicit IV.
fn encrypt(
    mac_key: &[u8],
    key: &[u8],
    content_type: u8,
    plain: &[u8],
) -> Result<Vec<u8>, Misbehaved> {
    let len = u16::try_from(plain.len()).map_err(harness("record length"))?;
    let header = [&[0u8; 8][..], &[content_type], &TLS12, &len.to_be_bytes()].concat();
    let mut data = plain.to_vec();
    data.extend(hmac(MessageDigest::sha1(), mac_key, &[&header, plain])?);
    let pad = BLOCK - 1 - data.len() % BLOCK;
    data.extend(std::iter::repeat_n(u8::try_from(pad).unwrap_or(0), pad + 1));
    let iv = random::<BLOCK>()?;
    let mut c = Crypter::new(Cipher::aes_128_cbc(), Mode::Encrypt, key, Some(&iv))
        .map_err(harness("AES"))?;
    c.pad(false);
    let mut out = vec![0u8; data.len() + BLOCK];
    let n = c.update(&data, &mut out).map_err(harness("AES"))?;
    let m = c.finalize(&mut out[n..]).map_err(harness("AES"))?;
    out.truncate(n + m);
    Ok([iv.as_slice(), &out].concat())
}

/// Reads the server's answer to the flight.
fn read_answer(
    stream: &mut TcpStream,
    reader: &mut Records,
    timeout: Duration,
) -> Result<Answer, Misbehaved> {
    let deadline = Instant::now() + timeout;
    let record = loop {
        match reader.take_record() {
            Some(r) => break Some(r),
            None if reader.read(stream, deadline)? => {}
            None => break None,
        }
    };
    match record {
        None => Ok(Answer::Closed),
        Some((CHANGE_CIPHER_SPEC, _)) => Ok(Answer::ChangeCipherSpec),
        Some((ALERT, body)) if body.len() == 2 => Ok(Answer::Alert(body[0], body[1])),
        Some((ty, _)) => Err(Misbehaved::Server(format!(
            "the server answered the client's flight with a record of type {ty}"
        ))),
    }
}

/// Plaintext records and the handshake messages in them, in any chunking.
#[derive(Default)]
struct Records {
    buf: Vec<u8>,
    handshake: Vec<u8>,
}

impl Records {
    /// The next whole record, if it came.
    fn take_record(&mut self) -> Option<(u8, Vec<u8>)> {
        let header = self.buf.get(..5)?;
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if self.buf.len() < 5 + len {
            return None;
        }
        let rec: Vec<u8> = self.buf.drain(..5 + len).collect();
        Some((rec[0], rec[5..].to_vec()))
    }

    /// The next step of the server's handshake, if it came whole.
    fn take_step(&mut self) -> Option<Step> {
        loop {
            if self.handshake.len() >= 4 {
                let len = read_u24(&self.handshake[1..4]);
                if self.handshake.len() >= 4 + len {
                    return Some(Step::Handshake(self.handshake.drain(..4 + len).collect()));
                }
            }
            match self.take_record()? {
                (HANDSHAKE, body) => self.handshake.extend_from_slice(&body),
                (ALERT, body) if body.len() == 2 => return Some(Step::Alert(body[0], body[1])),
                (ty, _) => return Some(Step::Other(ty)),
            }
        }
    }

    /// Reads more from `stream`: `false` once the connection ended; an error when nothing
    /// came by `deadline`.
    fn read(&mut self, stream: &mut TcpStream, deadline: Instant) -> Result<bool, Misbehaved> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Misbehaved::Server(format!(
                    "no whole record from the server in time ({} bytes pending)",
                    self.buf.len()
                )));
            }
            stream.set_read_timeout(Some(left)).map_err(harness("read timeout"))?;
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(false),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(Misbehaved::Harness(format!("read: {e}"))),
            }
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], Misbehaved> {
    let mut r = [0u8; N];
    openssl::rand::rand_bytes(&mut r).map_err(harness("random bytes"))?;
    Ok(r)
}

fn vec16(data: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

fn read_u24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

/// The line a `tls_hostile` client action leaves in the transcript, or why it fails.
pub(super) fn run(
    stream: &mut TcpStream,
    spec: &TlsMisbehaveSpec,
    identity: Option<&Identity>,
    timeout: Duration,
) -> Result<String, Misbehaved> {
    let what = match spec.act {
        ClientMisdeed::BadCertificateVerify => "a CertificateVerify that does not verify",
        ClientMisdeed::BadFinished => "a Finished with wrong verify_data",
    };
    match exchange(stream, flaw(spec.act), identity, timeout)? {
        Answer::ChangeCipherSpec => Err(Misbehaved::Server(format!(
            "the server took {what}: it answered with its ChangeCipherSpec"
        ))),
        Answer::Alert(level, desc) => Ok(format!(
            "sent {what}; the server answered with an alert (level {level}, description {desc})"
        )),
        Answer::Closed => Ok(format!("sent {what}; the server closed the connection")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode, SslVersion};
    use std::net::TcpListener;

    const DECRYPT_ERROR: u8 = 51;

    fn rsa_identity(cn: &str, issuer: Option<&Identity>) -> Identity {
        use openssl::{asn1, bn, hash, nid, rsa, x509};
        let key = PKey::from_rsa(rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(nid::Nid::COMMONNAME, cn).unwrap();
        let name = name.build();
        let mut b = x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&bn::BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap()).unwrap();
        b.set_subject_name(&name).unwrap();
        let (issuer_name, signer) = match issuer {
            Some(i) => (i.chain[0].subject_name().to_owned().unwrap(), &i.key),
            None => (name.to_owned().unwrap(), &key),
        };
        b.set_issuer_name(&issuer_name).unwrap();
        b.set_pubkey(&key).unwrap();
        if issuer.is_none() {
            let ca = x509::extension::BasicConstraints::new().critical().ca().build().unwrap();
            b.append_extension(ca).unwrap();
        }
        b.set_not_before(&asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&asn1::Asn1Time::days_from_now(30).unwrap()).unwrap();
        b.sign(signer, hash::MessageDigest::sha256()).unwrap();
        Identity::new(vec![b.build()], key)
    }

    /// An OpenSSL server for TLS 1.2 and the one suite; with `client_ca`, it requires a
    /// client certificate from that CA. Returns the port and the server's outcome.
    fn openssl_server(
        client_ca: Option<X509>,
    ) -> (u16, std::thread::JoinHandle<Result<(), String>>) {
        let id = rsa_identity("server", None);
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        b.set_certificate(&id.chain[0]).unwrap();
        b.set_private_key(&id.key).unwrap();
        b.set_min_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        b.set_cipher_list("AES128-SHA").unwrap();
        if let Some(ca) = client_ca {
            b.cert_store_mut().add_cert(ca).unwrap();
            b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        }
        let acceptor = b.build();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
            acceptor.accept(s).map(drop).map_err(|e| e.to_string())
        });
        (port, server)
    }

    fn connect(port: u16) -> TcpStream {
        TcpStream::connect(("127.0.0.1", port)).unwrap()
    }

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn a_correct_handshake_is_taken_by_openssl() {
        // Proves the key schedule and the record protection: OpenSSL answers with its
        // ChangeCipherSpec only after the Finished decrypted, its MAC and verify_data checked.
        let (port, server) = openssl_server(None);
        let answer = exchange(&mut connect(port), Flaw::None, None, T).unwrap();
        assert_eq!(answer, Answer::ChangeCipherSpec);
        // The server's handshake ends once its own Finished is out; ours is whole.
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_wrong_verify_data_is_refused_with_decrypt_error() {
        let (port, server) = openssl_server(None);
        let answer = exchange(&mut connect(port), Flaw::Finished, None, T).unwrap();
        assert_eq!(answer, Answer::Alert(2, DECRYPT_ERROR));
        let err = server.join().unwrap().unwrap_err();
        assert!(err.contains("digest check failed"), "{err}");
    }

    #[test]
    fn a_client_certificate_and_its_verify_are_taken_and_a_bad_one_refused() {
        let ca = rsa_identity("lab ca", None);
        let client = rsa_identity("client", Some(&ca));
        let (port, server) = openssl_server(Some(ca.chain[0].clone()));
        let answer = exchange(&mut connect(port), Flaw::None, Some(&client), T).unwrap();
        assert_eq!(answer, Answer::ChangeCipherSpec);
        server.join().unwrap().unwrap();

        let (port, server) = openssl_server(Some(ca.chain[0].clone()));
        let answer =
            exchange(&mut connect(port), Flaw::CertificateVerify, Some(&client), T).unwrap();
        assert_eq!(answer, Answer::Alert(2, DECRYPT_ERROR));
        let err = server.join().unwrap().unwrap_err();
        assert!(err.contains("bad signature"), "{err}");
    }

    #[test]
    fn the_action_reports_the_servers_refusal() {
        let (port, server) = openssl_server(None);
        let spec = TlsMisbehaveSpec { port, act: ClientMisdeed::BadFinished, client_cert: None };
        let line = run(&mut connect(port), &spec, None, T).unwrap();
        assert!(line.contains("alert (level 2, description 51)"), "{line}");
        let _ = server.join();
    }

    fn server_hello(suite: u16) -> Vec<u8> {
        let mut body = TLS12.to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0);
        record(HANDSHAKE, TLS12_VERSION, &handshake(SERVER_HELLO, &body))
    }

    #[rstest::rstest]
    #[case::nothing(vec![], "closed the connection before its ServerHelloDone")]
    #[case::alert(vec![21, 3, 3, 0, 2, 2, 40], "alert (level 2, description 40)")]
    #[case::app_data(record(23, TLS12_VERSION, &[0; 8]), "record of type 23")]
    #[case::other_suite(server_hello(0xC02F), "suite 0xc02f, not TLS 1.2 and 0x002f")]
    #[case::short_hello(record(HANDSHAKE, TLS12_VERSION, &handshake(SERVER_HELLO, &[3, 3, 1])), "malformed ServerHello")]
    #[case::done_alone(record(HANDSHAKE, TLS12_VERSION, &handshake(SERVER_HELLO_DONE, &[])), "lacked a ServerHello or a Certificate")]
    #[case::no_certificate([server_hello(SUITE), record(HANDSHAKE, TLS12_VERSION, &handshake(SERVER_HELLO_DONE, &[]))].concat(), "lacked a ServerHello or a Certificate")]
    #[case::bad_certificate([server_hello(SUITE), record(HANDSHAKE, TLS12_VERSION, &handshake(CERTIFICATE, &[0, 0, 4, 0, 0, 1, 0]))].concat(), "the server's certificate")]
    #[case::key_exchange(record(HANDSHAKE, TLS12_VERSION, &handshake(12, &[1])), "unexpected handshake message 12")]
    fn a_server_flight_that_is_not_one_says_why(#[case] bytes: Vec<u8>, #[case] why: &str) {
        let err = parse_server_flight(&bytes).unwrap_err();
        assert!(err.contains(why), "{err}");
    }

    #[test]
    fn a_flight_in_any_chunking_asks_for_a_certificate() {
        let id = rsa_identity("server", None);
        let flight = [
            handshake(SERVER_HELLO, &server_hello(SUITE)[9..]),
            certificate_msg(&id.chain).unwrap(),
            handshake(CERTIFICATE_REQUEST, &[1, 1, 0, 2, 4, 1, 0, 0]),
            handshake(SERVER_HELLO_DONE, &[]),
        ]
        .concat();
        // One record per 5 bytes of handshake: messages split across records.
        let bytes: Vec<u8> =
            flight.chunks(5).flat_map(|c| record(HANDSHAKE, TLS12_VERSION, c)).collect();
        assert_eq!(parse_server_flight(&bytes), Ok(true));
    }

    #[test]
    fn bad_certificate_verify_needs_a_certificate() {
        let spec = TlsMisbehaveSpec {
            port: 1,
            act: ClientMisdeed::BadCertificateVerify,
            client_cert: None,
        };
        assert!(spec.validate().unwrap_err().contains("client_cert"));
    }
}
