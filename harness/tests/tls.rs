//! The lab's TLS equipment on real lab namespaces: the `tls_server` peer against a plain
//! OpenSSL client written here, and the `tls_connect` client action against a plain OpenSSL
//! server written here, for each of the chapter's 12 suites (TLS 1.2), TLS 1.0 and 1.1 between
//! two OpenSSL ends, client certificates, certificate checks at the lab's now, and echo.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), `ip`, `dnsmasq` and /dev/net/tun; without
//! them every test prints why it is skipped.
#![allow(clippy::unwrap_used)] // tests may panic

mod common;

use common::{lab, serial};
use gecko_hil::lab::Lab;
use gecko_hil::peers::{
    ClientAction, ClientError, Clients, Closed, DEFAULT_PEER_ADDR, Expect, Handshake, PeerCheck,
    PeerSpec, Peers, SuiteName, TcpClient, TlsConnectSpec, TlsVersion,
};
use gecko_hil::pki::{LAB_NOW, MaterialRef, Pki};
use openssl::ssl::{
    SslAcceptor, SslConnector, SslContextBuilder, SslMethod, SslOptions, SslVerifyMode, SslVersion,
};
use rstest::rstest;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// One PKI for the whole test binary.
fn pki() -> Arc<Pki> {
    static PKI: OnceLock<(tempfile::TempDir, Arc<Pki>)> = OnceLock::new();
    Arc::clone(
        &PKI.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let pki = Pki::generate(&dir.path().join("pki")).unwrap();
            (dir, Arc::new(pki))
        })
        .1,
    )
}

fn material(name: &str) -> MaterialRef {
    name.parse().unwrap()
}

const HOST: Ipv4Addr = DEFAULT_PEER_ADDR;
const SHORT: Duration = Duration::from_secs(10);

/// The chapter's 12 suites: OpenSSL name, IANA name, whether the server key is ECDSA.
const SUITES: [(&str, &str, bool); 12] = [
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", true),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", false),
    ("ECDHE-ECDSA-AES128-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", true),
    ("ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", true),
    ("ECDHE-ECDSA-AES256-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", true),
    ("ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", false),
    ("DHE-RSA-AES256-SHA256", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", false),
    ("DHE-RSA-AES256-SHA", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", false),
    ("AES256-SHA256", "TLS_RSA_WITH_AES_256_CBC_SHA256", false),
    ("AES256-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA", false),
    ("AES128-SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA256", false),
    ("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA", false),
];

fn tls_server(
    port: u16,
    cert: &str,
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
    ciphers: &[&str],
    client_ca: Option<&str>,
) -> PeerSpec {
    let PeerSpec::TlsServer { port, cert, addr, send_chain, .. } =
        PeerSpec::tls_server(port, material(cert))
    else {
        unreachable!()
    };
    PeerSpec::TlsServer {
        port,
        cert,
        addr,
        send_chain,
        min_version: min,
        max_version: max,
        ciphers: ciphers.iter().map(|c| c.parse().unwrap()).collect(),
        client_ca: client_ca.map(material),
    }
}

/// Exactly `version` and `cipher` (TLS 1.0/1.1 allowed again, at security level 0).
fn only(b: &mut SslContextBuilder, version: SslVersion, cipher: &str) {
    if version == SslVersion::TLS1 || version == SslVersion::TLS1_1 {
        b.clear_options(SslOptions::NO_TLSV1 | SslOptions::NO_TLSV1_1);
        b.set_cipher_list(&format!("{cipher}:@SECLEVEL=0")).unwrap();
    } else {
        b.set_cipher_list(cipher).unwrap();
    }
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
}

/// A plain OpenSSL client from inside the lab, independent of the harness's client.
fn openssl_client(
    lab: &Lab,
    port: u16,
    version: SslVersion,
    cipher: &str,
    trust: &str,
) -> Result<openssl::ssl::SslStream<TcpStream>, String> {
    let pki = pki();
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    only(&mut b, version, cipher);
    b.cert_store_mut().add_cert(pki.x509(trust).unwrap()).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    b.verify_param_mut().set_time(LAB_NOW);
    let connector = b.build();
    let stream = lab.run_in(|| TcpStream::connect((HOST, port))).unwrap().unwrap();
    stream.set_read_timeout(Some(SHORT)).unwrap();
    connector.connect("lab-host.lab", stream).map_err(|e| e.to_string())
}

/// A plain OpenSSL server inside the lab on `port`: one connection, echoes one message.
/// Returns what it negotiated (version, suite) or why it failed.
fn openssl_server(
    lab: &Lab,
    port: u16,
    cert: &str,
    version: SslVersion,
    cipher: &str,
    client_ca: Option<&str>,
) -> std::thread::JoinHandle<Result<(String, String, bool), String>> {
    let pki = pki();
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    only(&mut b, version, cipher);
    b.set_certificate(&pki.x509(cert).unwrap()).unwrap();
    b.set_private_key(&pki.pkey(cert).unwrap()).unwrap();
    if let Some(ca) = client_ca {
        b.cert_store_mut().add_cert(pki.x509(ca).unwrap()).unwrap();
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        b.verify_param_mut().set_time(LAB_NOW);
    }
    let acceptor = b.build();
    let listener = lab.run_in(|| TcpListener::bind((HOST, port))).unwrap().unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(SHORT)).unwrap();
        let mut s = acceptor.accept(stream).map_err(|e| e.to_string())?;
        let negotiated = (
            s.ssl().version_str().to_string(),
            s.ssl().current_cipher().unwrap().name().to_string(),
            s.ssl().peer_certificate().is_some(),
        );
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        s.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        let _ = s.shutdown();
        Ok(negotiated)
    })
}

fn wait_closed(peers: &Peers, index: usize) -> Option<Closed> {
    let deadline = Instant::now() + SHORT;
    loop {
        let closed = peers.get(0).unwrap().records().get(index).and_then(|r| r.closed.clone());
        if closed.is_some() || Instant::now() > deadline {
            return closed;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[rstest]
#[case(0)]
#[case(1)]
#[case(2)]
#[case(3)]
#[case(4)]
#[case(5)]
#[case(6)]
#[case(7)]
#[case(8)]
#[case(9)]
#[case(10)]
#[case(11)]
fn each_suite_of_the_chapter_both_ways(#[case] i: usize) {
    let (name, iana, ecdsa) = SUITES[i];
    let _g = serial();
    let Some((lab, _dir)) = lab(&format!("tls_suite_{i}")) else { return };
    let (cert, ca) = if ecdsa { ("server-p256", "ca-p256") } else { ("server-rsa", "ca-rsa") };
    let v12 = Some(TlsVersion::Tls12);

    // 1. The tls_server peer (suite given by its IANA name) and a plain OpenSSL client.
    let peers = Peers::start_with_pki(
        &lab,
        &[tls_server(4433, cert, v12, v12, &[iana], None)],
        Some(&pki()),
    )
    .expect("start");
    let mut s = openssl_client(&lab, 4433, SslVersion::TLS1_2, name, ca).expect("handshake");
    assert_eq!(s.ssl().current_cipher().unwrap().name(), name);
    s.write_all(b"hello over TLS").unwrap();
    let mut buf = [0u8; 14];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello over TLS");
    s.shutdown().unwrap();
    let check = PeerCheck {
        handshake: Some(Expect::Ok),
        version: v12,
        suite: Some(name.parse().unwrap()),
        client_cert: Some(false),
        ..PeerCheck::received("hello over TLS")
    };
    peers.check(0, &check).expect("the peer saw the suite and the bytes");
    // The IANA name checks the same suite.
    let by_iana = PeerCheck { suite: Some(iana.parse().unwrap()), ..PeerCheck::default() };
    peers.check(0, &PeerCheck { connections: Some(1), ..by_iana }).expect("IANA name");
    assert_eq!(peers.get(0).unwrap().records()[0].sent, b"hello over TLS");
    assert_eq!(wait_closed(&peers, 0), Some(Closed::ByRemote));
    drop(peers);

    // 2. The tls_connect client action against a plain OpenSSL server.
    let server = openssl_server(&lab, 4434, cert, SslVersion::TLS1_2, name, None);
    let mut clients = Clients::new(&lab, HOST).with_pki(pki()).with_timeout(SHORT);
    let spec = TlsConnectSpec {
        version: v12,
        cipher: Some(format!("MBEDTLS_{iana}").parse().unwrap()),
        ca: Some(material(ca)),
        ..TlsConnectSpec::new(4434)
    };
    let line = clients.run(&ClientAction::TlsConnect(spec)).expect("tls_connect");
    assert!(line.contains(name) && line.contains("TLSv1.2"), "{line}");
    clients.run(&ClientAction::Send("ping".into())).expect("send");
    clients.run(&ClientAction::Receive("ping".into())).expect("echo");
    clients.run(&ClientAction::ExpectClosed(true)).expect("close_notify");
    let (version, suite, client_cert) = server.join().unwrap().expect("server");
    assert_eq!((version.as_str(), suite.as_str(), client_cert), ("TLSv1.2", name, false));
}

#[rstest]
#[case::tls10(TlsVersion::Tls10, SslVersion::TLS1, "ECDHE-RSA-AES128-SHA", "TLSv1")]
#[case::tls11(TlsVersion::Tls11, SslVersion::TLS1_1, "AES256-SHA", "TLSv1.1")]
#[case::tls10_ecdsa(TlsVersion::Tls10, SslVersion::TLS1, "ECDHE-ECDSA-AES256-SHA", "TLSv1")]
fn old_versions_between_two_openssl_ends(
    #[case] version: TlsVersion,
    #[case] ssl: SslVersion,
    #[case] cipher: &str,
    #[case] openssl_name: &str,
) {
    let _g = serial();
    let Some((lab, _dir)) = lab(&format!("tls_old_{openssl_name}")) else { return };
    let (cert, ca) = if cipher.contains("ECDSA") {
        ("server-p256", "ca-p256")
    } else {
        ("server-rsa", "ca-rsa")
    };
    let v = Some(version);
    let peers =
        Peers::start_with_pki(&lab, &[tls_server(4433, cert, v, v, &[cipher], None)], Some(&pki()))
            .expect("start");
    let mut s = openssl_client(&lab, 4433, ssl, cipher, ca).expect("handshake");
    assert_eq!(s.ssl().version_str(), openssl_name);
    s.write_all(b"old").unwrap();
    let mut buf = [0u8; 3];
    s.read_exact(&mut buf).unwrap();
    let check = PeerCheck {
        handshake: Some(Expect::Ok),
        version: v,
        suite: Some(cipher.parse().unwrap()),
        ..PeerCheck::received("old")
    };
    peers.check(0, &check).expect("old version on the peer");
    drop(s);
    drop(peers);

    let server = openssl_server(&lab, 4434, cert, ssl, cipher, None);
    let spec = TlsConnectSpec {
        version: v,
        cipher: Some(cipher.parse().unwrap()),
        ca: Some(material(ca)),
        ..TlsConnectSpec::new(4434)
    };
    let c = TcpClient::connect_tls(&lab, HOST, &spec, Some(&pki())).unwrap().expect("handshake");
    assert_eq!(c.tls().unwrap().version, v);
    let mut c = c;
    c.send(b"x").unwrap();
    c.expect(b"x", SHORT).unwrap();
    let (got, suite, _) = server.join().unwrap().expect("server");
    assert_eq!((got.as_str(), suite.as_str()), (openssl_name, cipher));
}

#[test]
fn a_server_that_wants_tls12_refuses_tls10() {
    let _g = serial();
    let Some((lab, _dir)) = lab("tls_refuses_old") else { return };
    let v12 = Some(TlsVersion::Tls12);
    let peers = Peers::start_with_pki(
        &lab,
        &[tls_server(4433, "server-rsa", v12, v12, &[], None)],
        Some(&pki()),
    )
    .expect("start");
    let spec = TlsConnectSpec {
        version: Some(TlsVersion::Tls10),
        expect: Expect::Fail,
        error: Some("alert protocol version".into()),
        ..TlsConnectSpec::new(4433)
    };
    let mut clients = Clients::new(&lab, HOST).with_pki(pki());
    let line = clients.run(&ClientAction::TlsConnect(spec)).expect("refused");
    assert!(line.contains("failed as expected"), "{line}");
    let check = PeerCheck {
        handshake: Some(Expect::Fail),
        handshake_error: Some("unsupported protocol".into()),
        ..PeerCheck::default()
    };
    peers.check(0, &check).expect("the peer saw the version refused");
}

#[test]
fn client_certificates() {
    let _g = serial();
    let Some((lab, _dir)) = lab("tls_client_certificates") else { return };
    let peers = Peers::start_with_pki(
        &lab,
        &[tls_server(4433, "server-p256", None, None, &[], Some("ca-p256"))],
        Some(&pki()),
    )
    .expect("start");
    let mut clients = Clients::new(&lab, HOST).with_pki(pki()).with_timeout(SHORT);
    // With the right certificate: its subject is recorded.
    let ok = TlsConnectSpec {
        client_cert: Some(material("client-p256")),
        ca: Some(material("ca-p256")),
        version: Some(TlsVersion::Tls12),
        ..TlsConnectSpec::new(4433)
    };
    clients.run(&ClientAction::TlsConnect(ok)).expect("accepted");
    clients.run(&ClientAction::Send("a".into())).expect("send");
    clients.run(&ClientAction::Receive("a".into())).expect("echo");
    let with_cert =
        PeerCheck { client_cert: Some(true), connection: Some(0), ..PeerCheck::default() };
    peers.check(0, &with_cert).expect("client certificate seen");
    let subject = peers.get(0).unwrap().records()[0].tls.clone().unwrap().client_subject;
    assert_eq!(subject.as_deref(), Some("O=Gecko HIL lab, CN=client-p256"));
    clients.run(&ClientAction::Close(true)).expect("close");

    // From a CA the server does not trust, and with none: the server refuses both.
    // (Under TLS 1.3 a client learns of the refusal only at its first read.)
    for (i, cert) in [(1, Some("client-untrusted")), (2, None)] {
        let spec = TlsConnectSpec {
            client_cert: cert.map(material),
            version: Some(TlsVersion::Tls12),
            expect: Expect::Fail,
            ..TlsConnectSpec::new(4433)
        };
        clients.run(&ClientAction::TlsConnect(spec)).expect("refused");
        let failed = PeerCheck {
            handshake: Some(Expect::Fail),
            connection: Some(i),
            ..PeerCheck::default()
        };
        peers.check(0, &failed).expect("the peer refused it");
    }
    let records = peers.get(0).unwrap().records();
    let why = |i: usize| match &records[i].tls.as_ref().unwrap().handshake {
        Handshake::Failed(e) => e.clone(),
        other => panic!("{other:?}"),
    };
    assert!(why(1).contains("certificate verify failed"), "{}", why(1));
    assert!(why(2).contains("peer did not return a certificate"), "{}", why(2));
    // A check of every connection fails, naming what it saw.
    let all_ok =
        PeerCheck { handshake: Some(Expect::Ok), within_ms: Some(10), ..PeerCheck::default() };
    let e = peers.check(0, &all_ok).unwrap_err().to_string();
    assert!(e.contains("connection 1") && e.contains("failed ("), "{e}");
}

#[rstest]
#[case::valid("server-rsa", true, None)]
#[case::chained("server-rsa-chained", true, None)]
#[case::expired("server-rsa-expired", true, Some("certificate has expired"))]
#[case::not_yet_valid("server-rsa-not-yet-valid", true, Some("certificate is not yet valid"))]
#[case::self_signed("server-rsa-self-signed", true, Some("self-signed certificate"))]
#[case::chain_not_sent("server-rsa-chained", false, Some("unable to get local issuer"))]
#[case::other_ca("server-p256", true, Some("unable to get local issuer"))]
fn the_client_checks_certificates_at_the_lab_now(
    #[case] cert: &str,
    #[case] send_chain: bool,
    #[case] error: Option<&str>,
) {
    let _g = serial();
    let Some((lab, _dir)) = lab(&format!("tls_verify_{cert}")) else { return };
    let PeerSpec::TlsServer {
        port,
        cert: c,
        addr,
        min_version,
        max_version,
        ciphers,
        client_ca,
        ..
    } = PeerSpec::tls_server(4433, material(cert))
    else {
        unreachable!()
    };
    let spec = PeerSpec::TlsServer {
        port,
        cert: c,
        addr,
        send_chain: Some(send_chain),
        min_version,
        max_version,
        ciphers,
        client_ca,
    };
    let _peers = Peers::start_with_pki(&lab, &[spec], Some(&pki())).expect("start");
    let mut clients = Clients::new(&lab, HOST).with_pki(pki());
    let connect = TlsConnectSpec {
        ca: Some(material("ca-rsa")),
        expect: if error.is_some() { Expect::Fail } else { Expect::Ok },
        error: error.map(str::to_string),
        ..TlsConnectSpec::new(4433)
    };
    clients.run(&ClientAction::TlsConnect(connect.clone())).expect("as expected");
    // The opposite expectation fails the action, saying why.
    let opposite = TlsConnectSpec {
        expect: if error.is_some() { Expect::Ok } else { Expect::Fail },
        error: None,
        ..connect
    };
    match clients.run(&ClientAction::TlsConnect(opposite)) {
        Err(ClientError::Fail(m)) => assert!(m.contains("handshake"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stopping_with_a_handshake_pending_and_bad_configuration() {
    let _g = serial();
    let Some((lab, _dir)) = lab("tls_stop_pending") else { return };
    let mut peers = Peers::start_with_pki(
        &lab,
        &[tls_server(4433, "server-rsa", None, None, &[], None)],
        Some(&pki()),
    )
    .expect("start");
    // A TCP connection that never says hello.
    let _silent = TcpClient::connect(&lab, HOST, 4433).expect("connect");
    let pending =
        PeerCheck { handshake: Some(Expect::Ok), within_ms: Some(200), ..PeerCheck::default() };
    let e = peers.check(0, &pending).unwrap_err().to_string();
    assert!(e.contains("has not ended"), "{e}");
    let t = Instant::now();
    peers.stop().expect("stops");
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    assert_eq!(peers.get(0).unwrap().records()[0].closed, Some(Closed::Stopped));

    // Without the PKI: a clear error; unknown suite names do not parse.
    let e = Peers::start(&lab, &[PeerSpec::tls_server(4435, material("server-rsa"))]).unwrap_err();
    assert!(e.to_string().contains("lab PKI"), "{e}");
    for bad in ["NOT-A-SUITE", "TLS_NOT_A_SUITE", "AES128-SHA:AES256-SHA", "MBEDTLS_TLS_X"] {
        assert!(bad.parse::<SuiteName>().is_err(), "{bad}");
    }
}
