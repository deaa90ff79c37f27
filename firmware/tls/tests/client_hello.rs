//! What the module offers: exactly the chapter's 12 suites, nothing above TLS 1.2; and what
//! happens with peers that only speak TLS 1.3 or TLS 1.0.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gecko_core::tls::{Progress, SUITES, TlsCode, state};
use openssl::ssl::SslVersion;

/// The parts of a ClientHello record the tests look at.
#[derive(Debug)]
struct ClientHello {
    record_version: u16,
    client_version: u16,
    suites: Vec<u16>,
    extensions: Vec<u16>,
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

fn parse_client_hello(rec: &[u8]) -> ClientHello {
    assert_eq!(rec[0], 22, "a handshake record");
    let record_version = u16_at(rec, 1);
    let len = usize::from(u16_at(rec, 3));
    let hs = &rec[5..5 + len];
    assert_eq!(hs[0], 1, "a ClientHello");
    let body = &hs[4..];
    let client_version = u16_at(body, 0);
    let mut i = 2 + 32;
    i += 1 + usize::from(body[i]);
    let n = usize::from(u16_at(body, i));
    let suites = (0..n / 2).map(|k| u16_at(body, i + 2 + 2 * k)).collect();
    i += 2 + n;
    i += 1 + usize::from(body[i]);
    let mut extensions = Vec::new();
    if i < body.len() {
        let end = i + 2 + usize::from(u16_at(body, i));
        i += 2;
        while i < end {
            extensions.push(u16_at(body, i));
            i += 4 + usize::from(u16_at(body, i + 2));
        }
    }
    ClientHello { record_version, client_version, suites, extensions }
}

#[test]
fn the_client_hello_offers_exactly_the_twelve_suites_and_tls_1_2() {
    for name in [Some("localhost"), None] {
        let mut s = session(&client_config(name));
        assert_eq!(s.start(), Progress::Handshaking);
        assert_eq!(s.state(), state::SERVER_HELLO, "waiting for the ServerHello");
        let hello = parse_client_hello(&s.take_ciphertext());
        assert!(hello.record_version <= 0x0303, "{hello:?}");
        assert_eq!(hello.client_version, 0x0303, "TLS 1.2 at most");
        // The renegotiation-info signalling value is not a suite (RFC 5746).
        let offered: Vec<u16> = hello.suites.iter().copied().filter(|&s| s != 0x00FF).collect();
        let chapter: Vec<u16> = SUITES.iter().map(|s| s.id).collect();
        assert_eq!(offered, chapter, "{hello:?}");
        assert!(!hello.extensions.contains(&43), "no supported_versions (TLS 1.3): {hello:?}");
        assert!(!hello.extensions.contains(&35), "no session tickets: {hello:?}");
        // SNI (0) only when connecting by name.
        assert_eq!(hello.extensions.contains(&0), name.is_some(), "{hello:?}");
    }
}

fn version_only(min: SslVersion, max: SslVersion) -> PeerSpec {
    let mut spec = PeerSpec::suite(0x002F);
    spec.min = min;
    spec.max = max;
    spec.ciphers = "ALL:@SECLEVEL=0".into();
    spec
}

fn failed(p: Progress) -> (TlsCode, u8) {
    match p {
        Progress::Failed(f) => (f.code, f.state),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_tls_1_3_only_server_is_refused() {
    let (addr, peer) = openssl_server(version_only(SslVersion::TLS1_3, SslVersion::TLS1_3));
    let mut s = session(&client_config(Some("localhost")));
    let p = connect(addr).handshake(s.as_mut());
    // OpenSSL answers a TLS 1.2 ClientHello with a protocol_version alert.
    assert_eq!(failed(p), (TlsCode::FatalAlertMessage, state::SERVER_HELLO));
    assert!(peer.join().unwrap().handshake.is_err());
}

#[test]
fn a_tls_1_0_only_server_is_refused() {
    let (addr, peer) = openssl_server(version_only(SslVersion::TLS1, SslVersion::TLS1));
    let mut s = session(&client_config(Some("localhost")));
    let p = connect(addr).handshake(s.as_mut());
    // OpenSSL, limited to 1.0, refuses a ClientHello that asks for 1.2 with an alert.
    assert_eq!(failed(p), (TlsCode::FatalAlertMessage, state::SERVER_HELLO));
    assert!(peer.join().unwrap().handshake.is_err());
}

#[test]
fn a_tls_1_3_only_client_is_refused() {
    let l = listener();
    let peer = openssl_client(
        l.local_addr().unwrap(),
        version_only(SslVersion::TLS1_3, SslVersion::TLS1_3),
    );
    let mut s = session(&server_config(&pki().rsa));
    let p = accept(&l).handshake(s.as_mut());
    // Its ClientHello offers TLS 1.3 suites only: none of the chapter's.
    assert_eq!(failed(p), (TlsCode::NoCipherChosen, state::CLIENT_HELLO));
    assert!(peer.join().unwrap().handshake.is_err());
}

#[test]
fn a_tls_1_0_only_client_is_refused() {
    let l = listener();
    let peer =
        openssl_client(l.local_addr().unwrap(), version_only(SslVersion::TLS1, SslVersion::TLS1));
    let mut s = session(&server_config(&pki().rsa));
    let p = accept(&l).handshake(s.as_mut());
    // mbedTLS's BAD_PROTOCOL_VERSION while reading the ClientHello.
    assert_eq!(failed(p), (TlsCode::BadHsClientHello, state::CLIENT_HELLO));
    assert!(peer.join().unwrap().handshake.is_err());
}
