//! The error table, caused for real: OpenSSL peers with bad certificates or settings, and
//! scripted peers on raw TCP that send broken handshake messages. Each case checks the
//! chapter's code and state the module reports.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use gecko_core::tls::{
    Progress, Role, TlsCode, TlsConfig, TlsEngine, TlsFailure, TlsVersion, Verify, state,
};

fn failure(p: Progress) -> TlsFailure {
    match p {
        Progress::Failed(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The module as client against an OpenSSL server; the failure it reports.
fn client_against(spec: PeerSpec, config: TlsConfig) -> TlsFailure {
    let (addr, peer) = openssl_server(spec);
    let mut s = engine().session(&config).unwrap();
    let mut pump = connect(addr);
    let f = failure(pump.handshake(s.as_mut()));
    drop(pump);
    assert!(peer.join().unwrap().handshake.is_err(), "the peer failed too");
    f
}

fn served_by(leaf: Leaf) -> PeerSpec {
    let mut spec = PeerSpec::suite(0xC02F);
    spec.ciphers = "ALL:@SECLEVEL=0".into();
    spec.leaf = Some(leaf);
    spec
}

fn rsa_leaf(f: impl FnOnce(&mut LeafSpec)) -> Leaf {
    let mut spec = LeafSpec::new(KeyKind::Rsa2048);
    f(&mut spec);
    Leaf::with_key(&pki().ca_rsa, &spec, pki().rsa.key.clone())
}

fn code_state(f: TlsFailure) -> (TlsCode, u8) {
    (f.code, f.state)
}

#[test]
fn untrusted_certificate() {
    let p = pki();
    let leaf = Leaf::with_key(&p.stranger, &LeafSpec::new(KeyKind::Rsa2048), p.rsa.key.clone());
    let f = client_against(served_by(leaf), client_config(Some("localhost")));
    assert_eq!(code_state(f), (TlsCode::UntrustedCertificate, state::SERVER_CERTIFICATE));
    assert_eq!(f.internal, mbedtls_rs_sys::MBEDTLS_ERR_X509_CERT_VERIFY_FAILED);
}

#[test]
fn expired_by_the_modules_clock() {
    let mut config = client_config(Some("localhost"));
    config.now_utc = NOW + 400 * DAY;
    let f = client_against(served_by(pki().rsa.clone()), config);
    assert_eq!(code_state(f), (TlsCode::ExpiredCertificate, state::SERVER_CERTIFICATE));
}

#[test]
fn not_yet_valid_by_the_modules_clock() {
    let mut config = client_config(Some("localhost"));
    config.now_utc = NOW - 60 * DAY;
    let f = client_against(served_by(pki().rsa.clone()), config);
    assert_eq!(code_state(f), (TlsCode::ExpiredCertificate, state::SERVER_CERTIFICATE));
}

#[test]
fn valid_dates_pass_with_the_same_certificate() {
    let (addr, peer) = openssl_server(served_by(pki().rsa.clone()));
    let mut s = session(&client_config(Some("localhost")));
    assert_eq!(connect(addr).handshake(s.as_mut()), Progress::Established);
    drop(s);
    peer.join().unwrap();
}

#[test]
fn wrong_name() {
    let f = client_against(served_by(pki().rsa.clone()), client_config(Some("example.org")));
    assert_eq!(code_state(f), (TlsCode::CertificateNameMismatch, state::SERVER_CERTIFICATE));
}

#[test]
fn wrong_extended_key_usage() {
    let leaf = rsa_leaf(|s| s.eku = Some("clientAuth"));
    let f = client_against(served_by(leaf), client_config(Some("localhost")));
    assert_eq!(code_state(f), (TlsCode::PeerVerifyFailed, state::SERVER_CERTIFICATE));
}

#[test]
fn rsa_1024_is_too_short() {
    let leaf = Leaf::new(&pki().ca_rsa, &LeafSpec::new(KeyKind::Rsa1024));
    let f = client_against(served_by(leaf), client_config(Some("localhost")));
    assert_eq!(code_state(f), (TlsCode::InvalidModulusSize, state::SERVER_CERTIFICATE));
}

#[test]
fn verify_required_without_a_ca() {
    let mut config = client_config(Some("localhost"));
    config.ca = None;
    let f = client_against(served_by(pki().rsa.clone()), config);
    assert_eq!(code_state(f), (TlsCode::CaChainRequired, state::SERVER_CERTIFICATE));
}

#[test]
fn server_wants_our_certificate_and_we_have_none() {
    let mut spec = served_by(pki().rsa.clone());
    spec.verify_with = Some(pki().ca_rsa.cert.clone());
    let f = client_against(spec, client_config(Some("localhost")));
    assert_eq!(f.code, TlsCode::AlertNoCertificate);
}

#[test]
fn server_wants_our_certificate_and_we_send_it() {
    let mut spec = served_by(pki().rsa.clone());
    spec.verify_with = Some(pki().ca_ec.cert.clone());
    let (addr, peer) = openssl_server(spec);
    let mut config = client_config(Some("localhost"));
    config.cert = Some(pki().ec.cert_pem());
    config.key = Some(pki().ec.key_pem());
    let mut s = session(&config);
    assert_eq!(connect(addr).handshake(s.as_mut()), Progress::Established);
    drop(s);
    peer.join().unwrap();
}

#[test]
fn no_suite_in_common_as_client() {
    let mut spec = served_by(pki().rsa.clone());
    spec.ciphers = "ECDHE-RSA-AES256-GCM-SHA384".into();
    let f = client_against(spec, client_config(Some("localhost")));
    assert_eq!(code_state(f), (TlsCode::HandshakeError, state::SERVER_HELLO));
}

/// The module as server against an OpenSSL client; the failure it reports.
fn server_against(spec: PeerSpec, config: TlsConfig) -> TlsFailure {
    let l = listener();
    let peer = openssl_client(l.local_addr().unwrap(), spec);
    let mut s = engine().session(&config).unwrap();
    let mut pump = accept(&l);
    let f = failure(pump.handshake(s.as_mut()));
    drop(pump);
    assert!(peer.join().unwrap().handshake.is_err(), "the peer failed too");
    f
}

fn openssl_client_spec() -> PeerSpec {
    let mut spec = PeerSpec::suite(0xC02F);
    spec.leaf = None;
    spec.ciphers = "ALL:@SECLEVEL=0".into();
    spec
}

#[test]
fn no_suite_in_common_as_server() {
    let mut spec = openssl_client_spec();
    spec.ciphers = "ECDHE-RSA-AES256-GCM-SHA384".into();
    let f = server_against(spec, server_config(&pki().rsa));
    assert_eq!(code_state(f), (TlsCode::NoCipherChosen, state::CLIENT_HELLO));
}

#[test]
fn client_certificate_required_and_missing() {
    let mut config = server_config(&pki().rsa);
    config.verify = Verify::Required;
    let f = server_against(openssl_client_spec(), config);
    assert_eq!(f.code, TlsCode::NoClientCertificate);
}

#[test]
fn client_certificate_required_and_given() {
    let mut config = server_config(&pki().rsa);
    config.verify = Verify::Required;
    let mut spec = openssl_client_spec();
    spec.leaf = Some(pki().ec.clone());
    let l = listener();
    let peer = openssl_client(l.local_addr().unwrap(), spec);
    let mut s = session(&config);
    assert_eq!(accept(&l).handshake(s.as_mut()), Progress::Established);
    drop(s);
    peer.join().unwrap();
}

#[test]
fn the_peers_fatal_alert() {
    // OpenSSL does not trust the module's certificate: unknown_ca.
    let p = pki();
    let leaf = Leaf::with_key(&p.stranger, &LeafSpec::new(KeyKind::Rsa2048), p.rsa.key.clone());
    let mut spec = openssl_client_spec();
    spec.verify_with = Some(p.ca_rsa.cert.clone());
    let f = server_against(spec, server_config(&leaf));
    assert_eq!(f.code, TlsCode::FatalAlertMessage);
    assert_eq!(f.internal, mbedtls_rs_sys::MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE);
}

#[test]
fn our_certificate_chain_too_large_for_a_record() {
    let p = pki();
    let mut chain = p.ec.cert_pem();
    for _ in 0..80 {
        chain.extend(p.ca_ec.pem());
    }
    let mut config = server_config(&p.ec);
    config.cert = Some(chain);
    let mut spec = openssl_client_spec();
    spec.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256".into();
    let f = server_against(spec, config);
    assert_eq!(code_state(f), (TlsCode::CertificateTooLarge, state::SERVER_CERTIFICATE));
}

#[test]
fn a_tampered_record_fails_its_mac() {
    let (addr, peer) = openssl_server(PeerSpec::suite(0xC02F));
    let mut s = session(&client_config(Some("localhost")));
    let mut pump = connect(addr);
    let armed = Arc::new(AtomicBool::new(false));
    let armed2 = armed.clone();
    pump.tamper = Some(Box::new(move |chunk: &mut Vec<u8>| {
        if armed2.load(Ordering::SeqCst) {
            let last = chunk.len() - 1;
            chunk[last] ^= 0x01;
        }
    }));
    assert_eq!(pump.handshake(s.as_mut()), Progress::Established);
    armed.store(true, Ordering::SeqCst);
    s.write(b"echo this").unwrap();
    let (_, p) = pump.read_plaintext(s.as_mut(), 9);
    assert_eq!(code_state(failure(p)), (TlsCode::InvalidMac, state::HANDSHAKE_OVER));
    drop(pump);
    peer.join().unwrap();
}

// --- setup ---

#[test]
fn tls_1_0_or_1_1_cannot_be_spoken() {
    for v in [TlsVersion::Tls1_0, TlsVersion::Tls1_1] {
        let mut config = client_config(Some("localhost"));
        config.max_version = v;
        let f = engine().session(&config).err().unwrap();
        assert_eq!(code_state(f), (TlsCode::FeatureUnavailable, state::HELLO_REQUEST));
    }
}

#[test]
fn a_ca_that_does_not_parse() {
    let mut config = client_config(Some("localhost"));
    config.ca = Some(
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n".to_vec(),
    );
    let f = engine().session(&config).err().unwrap();
    assert_eq!(code_state(f), (TlsCode::BadInputData, state::HELLO_REQUEST));
    config.ca = Some(vec![0x30, 0x03, 0x02, 0x01]);
    assert_eq!(engine().session(&config).err().unwrap().code, TlsCode::BadInputData);
}

#[test]
fn a_key_that_does_not_parse() {
    let mut config = server_config(&pki().rsa);
    config.key = Some(b"garbage".to_vec());
    assert_eq!(engine().session(&config).err().unwrap().code, TlsCode::BadInputData);
}

#[test]
fn a_server_without_a_certificate() {
    let mut config = server_config(&pki().rsa);
    config.cert = None;
    config.key = None;
    assert_eq!(engine().session(&config).err().unwrap().code, TlsCode::CertificateRequired);
}

#[test]
fn a_certificate_without_a_key() {
    let mut config = client_config(None);
    config.cert = Some(pki().ec.cert_pem());
    assert_eq!(engine().session(&config).err().unwrap().code, TlsCode::PrivateKeyRequired);
}

#[test]
fn der_certificates_and_keys_work_too() {
    let p = pki();
    let config = TlsConfig {
        role: Role::Server,
        ca: Some(p.ca_rsa.cert.to_der().unwrap()),
        verify: Verify::None,
        cert: Some(p.rsa.cert.to_der().unwrap()),
        key: Some(p.rsa.key.private_key_to_der().unwrap()),
        max_version: TlsVersion::Tls1_2,
        now_utc: NOW,
    };
    let l = listener();
    let mut spec = openssl_client_spec();
    spec.verify_with = Some(p.ca_rsa.cert.clone());
    let peer = openssl_client(l.local_addr().unwrap(), spec);
    let mut s = session(&config);
    assert_eq!(accept(&l).handshake(s.as_mut()), Progress::Established);
    drop(s);
    peer.join().unwrap();
}

// --- scripted peers on raw TCP ---

fn read_record(sock: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = [0u8; 5];
    sock.read_exact(&mut head).ok()?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes([head[3], head[4]]))];
    sock.read_exact(&mut body).ok()?;
    let mut rec = head.to_vec();
    rec.extend(body);
    Some(rec)
}

fn record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 3, 3];
    r.extend((body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn handshake_msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    record(22, &m)
}

fn server_hello(suite: u16) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend([0x42; 32]);
    b.push(0);
    b.extend(suite.to_be_bytes());
    b.push(0);
    handshake_msg(2, &b)
}

fn certificate_msg(der: &[u8]) -> Vec<u8> {
    let mut list = (der.len() as u32).to_be_bytes()[1..].to_vec();
    list.extend_from_slice(der);
    let mut b = (list.len() as u32).to_be_bytes()[1..].to_vec();
    b.extend(list);
    handshake_msg(11, &b)
}

#[derive(Clone)]
enum Step {
    /// Reads records until one starts with this handshake type (or any record: `None`).
    Read(Option<u8>),
    Send(Vec<u8>),
    Close,
}

/// A TCP peer that follows a script, then waits for the other side to close.
fn scripted(sock: TcpStream, script: Vec<Step>) {
    let mut sock = sock;
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    for step in script {
        match step {
            Step::Read(kind) => loop {
                let Some(rec) = read_record(&mut sock) else { return };
                if kind.is_none() || (rec[0] == 22 && Some(rec[5]) == kind) {
                    break;
                }
            },
            Step::Send(bytes) => sock.write_all(&bytes).unwrap(),
            Step::Close => return,
        }
    }
    let mut sink = Vec::new();
    let _ = sock.read_to_end(&mut sink);
}

fn client_against_script(config: TlsConfig, script: Vec<Step>) -> TlsFailure {
    let l = listener();
    let addr = l.local_addr().unwrap();
    let peer = std::thread::spawn(move || scripted(l.accept().unwrap().0, script));
    let mut s = engine().session(&config).unwrap();
    let mut pump = connect(addr);
    let f = failure(pump.handshake(s.as_mut()));
    drop(pump);
    peer.join().unwrap();
    f
}

fn client_script(script: Vec<Step>) -> TlsFailure {
    client_against_script(client_config(Some("localhost")), script)
}

fn rsa_der() -> Vec<u8> {
    pki().rsa.cert.to_der().unwrap()
}

#[test]
fn close_notify_during_the_handshake() {
    let f = client_script(vec![Step::Read(None), Step::Send(record(21, &[1, 0]))]);
    assert_eq!(code_state(f), (TlsCode::PeerCloseNotify, state::SERVER_HELLO));
}

#[test]
fn tcp_closed_during_the_handshake() {
    let f = client_script(vec![Step::Read(None), Step::Close]);
    assert_eq!(code_state(f), (TlsCode::ReceiveFailed, state::SERVER_HELLO));
}

#[test]
fn not_tls_at_all() {
    let f = client_script(vec![
        Step::Read(None),
        Step::Send(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
    ]);
    assert_eq!(code_state(f), (TlsCode::InvalidRecord, state::SERVER_HELLO));
}

#[test]
fn application_data_before_the_handshake_is_over() {
    let f = client_script(vec![Step::Read(None), Step::Send(record(23, b"hello"))]);
    assert_eq!(code_state(f), (TlsCode::UnexpectedMessage, state::SERVER_HELLO));
}

#[test]
fn a_truncated_server_hello() {
    let f = client_script(vec![Step::Read(None), Step::Send(handshake_msg(2, &[3, 3]))]);
    assert_eq!(code_state(f), (TlsCode::BadHsServerHello, state::SERVER_HELLO));
}

#[test]
fn a_certificate_message_that_does_not_parse() {
    let mut script = vec![Step::Read(None), Step::Send(server_hello(0x002F))];
    script.push(Step::Send(handshake_msg(11, &[0, 0, 6, 0, 0, 3, 1, 2, 3])));
    let f = client_script(script);
    assert_eq!(code_state(f), (TlsCode::BadHsCertificate, state::SERVER_CERTIFICATE));
}

#[test]
fn a_broken_server_key_exchange() {
    let script = vec![
        Step::Read(None),
        Step::Send(server_hello(0xC02F)),
        Step::Send(certificate_msg(&rsa_der())),
        Step::Send(handshake_msg(12, &[0])),
    ];
    let f = client_script(script);
    assert_eq!(code_state(f), (TlsCode::BadHsServerKeyExchange, state::SERVER_KEY_EXCHANGE));
}

#[test]
fn a_broken_certificate_request() {
    let script = vec![
        Step::Read(None),
        Step::Send(server_hello(0x002F)),
        Step::Send(certificate_msg(&rsa_der())),
        Step::Send(handshake_msg(13, &[0])),
    ];
    let f = client_script(script);
    assert_eq!(code_state(f), (TlsCode::BadHsCertificateRequest, state::CERTIFICATE_REQUEST));
}

#[test]
fn a_server_hello_done_with_a_body() {
    let script = vec![
        Step::Read(None),
        Step::Send(server_hello(0x002F)),
        Step::Send(certificate_msg(&rsa_der())),
        Step::Send(handshake_msg(14, &[0])),
    ];
    let f = client_script(script);
    assert_eq!(code_state(f), (TlsCode::BadHsServerHelloDone, state::SERVER_HELLO_DONE));
}

#[test]
fn a_broken_change_cipher_spec() {
    let script = vec![
        Step::Read(None),
        Step::Send(server_hello(0x002F)),
        Step::Send(certificate_msg(&rsa_der())),
        Step::Send(handshake_msg(14, &[])),
        // The module's ClientKeyExchange, ChangeCipherSpec and Finished.
        Step::Read(Some(16)),
        Step::Read(None),
        Step::Read(None),
        Step::Send(record(20, &[2])),
    ];
    let f = client_script(script);
    // mbedTLS's record layer checks a ChangeCipherSpec before the handshake sees it.
    assert_eq!(code_state(f), (TlsCode::InvalidRecord, state::SERVER_CHANGE_CIPHER_SPEC));
}

fn client_hello(suite: u16) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend([0x24; 32]);
    b.push(0);
    b.extend(2u16.to_be_bytes());
    b.extend(suite.to_be_bytes());
    b.extend([1, 0]);
    // supported_groups: secp256r1; ec_point_formats: uncompressed;
    // signature_algorithms: rsa_pkcs1_sha256.
    let ext: &[u8] = &[0, 10, 0, 4, 0, 2, 0, 0x17, 0, 11, 0, 2, 1, 0, 0, 13, 0, 4, 0, 2, 4, 1];
    b.extend((ext.len() as u16).to_be_bytes());
    b.extend_from_slice(ext);
    handshake_msg(1, &b)
}

fn server_against_script(config: TlsConfig, script: Vec<Step>) -> TlsFailure {
    let l = listener();
    let addr = l.local_addr().unwrap();
    let peer = std::thread::spawn(move || scripted(TcpStream::connect(addr).unwrap(), script));
    let mut s = engine().session(&config).unwrap();
    let mut pump = accept(&l);
    let f = failure(pump.handshake(s.as_mut()));
    drop(pump);
    peer.join().unwrap();
    f
}

#[test]
fn a_truncated_client_hello() {
    let f = server_against_script(
        server_config(&pki().rsa),
        vec![Step::Send(handshake_msg(1, &[3, 3]))],
    );
    assert_eq!(code_state(f), (TlsCode::BadHsClientHello, state::CLIENT_HELLO));
}

#[test]
fn a_broken_client_key_exchange() {
    let script = vec![
        Step::Send(client_hello(0xC02F)),
        Step::Read(Some(14)),
        // An empty ECDH point.
        Step::Send(handshake_msg(16, &[0])),
    ];
    let f = server_against_script(server_config(&pki().rsa), script);
    assert_eq!(code_state(f), (TlsCode::BadHsClientKeyExchange, state::CLIENT_KEY_EXCHANGE));
}

#[test]
fn a_client_certificate_that_does_not_parse() {
    let mut config = server_config(&pki().rsa);
    config.verify = Verify::Required;
    let script = vec![
        Step::Send(client_hello(0x002F)),
        Step::Read(Some(14)),
        Step::Send(handshake_msg(11, &[0, 0, 6, 0, 0, 3, 1, 2, 3])),
    ];
    let f = server_against_script(config, script);
    assert_eq!(code_state(f), (TlsCode::BadHsCertificate, state::CLIENT_CERTIFICATE));
}

// --- connecting to an address (no name) ---

#[test]
fn without_a_name_the_chain_is_still_verified() {
    let (addr, peer) = openssl_server(served_by(pki().rsa.clone()));
    let mut s = session(&client_config(None));
    assert_eq!(connect(addr).handshake(s.as_mut()), Progress::Established);
    drop(s);
    peer.join().unwrap();

    let p = pki();
    let leaf = Leaf::with_key(&p.stranger, &LeafSpec::new(KeyKind::Rsa2048), p.rsa.key.clone());
    let f = client_against(served_by(leaf), client_config(None));
    assert_eq!(code_state(f), (TlsCode::UntrustedCertificate, state::SERVER_CERTIFICATE));
}

#[test]
fn verify_none_accepts_any_certificate() {
    let p = pki();
    let leaf = Leaf::with_key(&p.stranger, &LeafSpec::new(KeyKind::Rsa2048), p.rsa.key.clone());
    let (addr, peer) = openssl_server(served_by(leaf));
    let mut config = client_config(Some("example.org"));
    config.verify = Verify::None;
    config.now_utc = 0;
    let mut s = session(&config);
    assert_eq!(connect(addr).handshake(s.as_mut()), Progress::Established);
    drop(s);
    peer.join().unwrap();
}

#[test]
fn the_engine_can_move_to_the_platforms_thread() {
    fn is_send<T: Send>(_: &T) {}
    is_send(&engine());
}

#[test]
fn a_broken_certificate_verify() {
    let p = pki();
    let mut config = server_config(&p.rsa);
    config.verify = Verify::Required;
    // The premaster secret, encrypted to the module's RSA key as a ClientKeyExchange.
    let mut premaster = [0u8; 48];
    premaster[..2].copy_from_slice(&[3, 3]);
    let rsa = p.rsa.key.rsa().unwrap();
    let mut enc = vec![0u8; rsa.size() as usize];
    let n = rsa.public_encrypt(&premaster, &mut enc, openssl::rsa::Padding::PKCS1).unwrap();
    let mut cke = (n as u16).to_be_bytes().to_vec();
    cke.extend_from_slice(&enc[..n]);
    let script = vec![
        Step::Send(client_hello(0x002F)),
        Step::Read(Some(14)),
        Step::Send(certificate_msg(&p.ec.cert.to_der().unwrap())),
        Step::Send(handshake_msg(16, &cke)),
        Step::Send(handshake_msg(15, &[0])),
    ];
    let f = server_against_script(config, script);
    assert_eq!(code_state(f), (TlsCode::BadHsCertificateVerify, state::CERTIFICATE_VERIFY));
}
