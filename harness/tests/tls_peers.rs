//! TLS in the lab: a real OpenSSL client against every misbehaviour of the `tls_hostile`
//! peer (each must fail the way OpenSSL reports it), and an OpenSSL client/server pair
//! captured on the lab's loopback: the hellos read from the capture, packet expectations on
//! them, and the application data decrypted with the client's key log.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), `ip`, `dnsmasq`, /dev/net/tun, and
//! `tshark` for the decryption; without them every test prints why it is skipped.
#![allow(clippy::unwrap_used)] // tests may panic

mod common;

use common::{lab, serial};
use gecko_hil::capture::decode::{Body, TcpFlags};
use gecko_hil::capture::expect::SuiteSet;
use gecko_hil::capture::keylog;
use gecko_hil::capture::tls::{self, Handshake, TlsMessage, Version};
use gecko_hil::capture::{Capture, PacketExpect};
use gecko_hil::lab::Lab;
use gecko_hil::peers::{
    Closed, DEFAULT_PEER_ADDR, HostileAct, HostileAt, PeerCheck, PeerSpec, Peers, TAMPER_GREETING,
    TlsHostileSpec,
};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use rstest::rstest;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The cipher string of the chapter's 12 suites (OpenSSL names).
const CHAPTER_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
    ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:\
    ECDHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA256:DHE-RSA-AES256-SHA:AES256-SHA256:AES256-SHA:\
    AES128-SHA256:AES128-SHA";

/// Runs `f` on a thread inside the lab's namespace.
fn in_lab<T: Send + 'static>(lab: &Lab, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = lab.netns_path();
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// An OpenSSL client (TLS 1.2, the chapter's suites, no verification, `timeout` per read)
/// connecting to the lab host's `port`: the handshake's error, or what it read after it.
fn openssl_client(lab: &Lab, port: u16, timeout: Duration) -> Result<Vec<u8>, String> {
    in_lab(lab, move || {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        b.set_cipher_list(CHAPTER_CIPHERS).unwrap();
        let connector = b.build();
        let tcp = TcpStream::connect((DEFAULT_PEER_ADDR, port)).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(timeout)).unwrap();
        let mut cfg = connector.configure().unwrap();
        cfg.set_verify_hostname(false);
        let mut s = cfg.connect("lab-host.lab", tcp).map_err(|e| e.to_string())?;
        // Something to answer (the tampering server answers the first data).
        s.write_all(b"hi\n").map_err(|e| format!("write after the handshake: {e}"))?;
        let mut buf = vec![0u8; 1024];
        match s.read(&mut buf) {
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(e) => Err(format!("read after the handshake: {e}")),
        }
    })
}

fn hostile(at: HostileAt, act: HostileAct) -> TlsHostileSpec {
    TlsHostileSpec::new(4433, at, act)
}

fn alert(description: u8) -> TlsHostileSpec {
    TlsHostileSpec {
        description: Some(description),
        ..hostile(HostileAt::ClientHello, HostileAct::Alert)
    }
}

fn huge(bytes: usize) -> TlsHostileSpec {
    TlsHostileSpec {
        cert_bytes: Some(bytes),
        ..hostile(HostileAt::ClientHello, HostileAct::HugeCertificate)
    }
}

/// Each misbehaviour, and what OpenSSL says about it (a part of its error text). A stall
/// shows as the client's read timing out (OpenSSL: "a nonblocking read call would have
/// blocked").
#[rstest]
#[case::stall_at_hello(hostile(HostileAt::ClientHello, HostileAct::Stall), &["would have blocked", "timed out"][..])]
#[case::stall_after_server_hello(hostile(HostileAt::ServerHello, HostileAct::Stall), &["would have blocked", "timed out"][..])]
#[case::close_at_hello(hostile(HostileAt::ClientHello, HostileAct::Close), &["unexpected eof", "unexpected EOF", "EOF"][..])]
#[case::close_after_certificate(hostile(HostileAt::Certificate, HostileAct::Close), &["unexpected eof", "unexpected EOF", "EOF"][..])]
#[case::reset_after_server_hello(hostile(HostileAt::ServerHello, HostileAct::Reset), &["reset by peer"][..])]
#[case::alert_handshake_failure(alert(40), &["handshake failure"][..])]
#[case::alert_protocol_version(alert(70), &["protocol version"][..])]
#[case::bad_length(hostile(HostileAt::ServerHello, HostileAct::BadLength), &["length too long", "packet length", "record layer"][..])]
#[case::bad_content_type(hostile(HostileAt::ServerHello, HostileAct::BadContentType), &["wrong version number", "unexpected record", "unknown record"][..])]
#[case::wrong_version(hostile(HostileAt::ServerHello, HostileAct::WrongVersion), &["wrong version number"][..])]
#[case::unexpected_message(hostile(HostileAt::ClientHello, HostileAct::UnexpectedMessage), &["unexpected message"][..])]
#[case::unexpected_after_hello(hostile(HostileAt::ServerHello, HostileAct::UnexpectedMessage), &["unexpected message"][..])]
#[case::huge_certificate(huge(110_000), &["excessive message size"][..])]
#[case::bad_extension(hostile(HostileAt::ClientHello, HostileAct::BadExtension), &["unsolicited extension", "bad extension", "unsupported extension"][..])]
#[case::unoffered_suite(hostile(HostileAt::ClientHello, HostileAct::UnofferedSuite), &["wrong cipher returned"][..])]
#[case::tamper(hostile(HostileAt::ClientHello, HostileAct::Tamper), &["bad record mac", "decryption failed"][..])]
#[case::app_data(hostile(HostileAt::ClientHello, HostileAct::AppData), &["unexpected record", "unexpected message"][..])]
#[case::bad_key_exchange(hostile(HostileAt::ClientHello, HostileAct::BadKeyExchange), &["length", "decode", "bad", "curve"][..])]
#[case::bad_certificate_request(hostile(HostileAt::ClientHello, HostileAct::BadCertificateRequest), &["length", "decode"][..])]
#[case::hello_done_body(hostile(HostileAt::ClientHello, HostileAct::HelloDoneBody), &["excessive message size", "length", "decode"][..])]
fn an_openssl_client_fails_against_each_misbehaviour(
    #[case] spec: TlsHostileSpec,
    #[case] errors: &[&str],
) {
    let _g = serial();
    let name = format!("hostile_{}", spec.act.name());
    let Some((lab, _dir)) = lab(&name) else { return };
    let peers = Peers::start(&lab, &[PeerSpec::TlsHostile(spec.clone())]).expect("start");
    let got = openssl_client(&lab, 4433, Duration::from_millis(1500));
    let err = got.expect_err("the client must fail");
    assert!(
        errors.iter().any(|e| err.contains(e)),
        "{:?}/{:?}: OpenSSL said {err:?}, expected one of {errors:?}",
        spec.at,
        spec.act
    );
    // The peer saw the client's offer: the chapter's suites, TLS 1.2 at most.
    let offer = PeerCheck {
        offered_suites: Some(SuiteSet::Chapter),
        offered_max_version: Some(Version::TLS12),
        ..PeerCheck::default()
    };
    peers.check(0, &offer).expect("the offer");
    let peer = peers.get(0).unwrap();
    let hellos = peer.client_hellos();
    let hello = hellos.first().cloned().flatten().expect("a ClientHello recorded");
    let mut offered: Vec<u16> =
        hello.suites.iter().copied().filter(|s| *s != tls::SCSV_RENEGOTIATION).collect();
    offered.sort_unstable();
    let mut chapter: Vec<u16> = tls::CHAPTER_SUITES.iter().map(|(id, _)| *id).collect();
    chapter.sort_unstable();
    assert_eq!(offered, chapter);
    assert_eq!(hello.max_version(), Version::TLS12);
    assert_eq!(peer.failure(), None);
}

#[test]
fn tamper_passes_the_handshake_and_a_reset_is_a_reset() {
    let _g = serial();
    let Some((lab, _dir)) = lab("hostile_records") else { return };
    let peers = Peers::start(
        &lab,
        &[PeerSpec::TlsHostile(hostile(HostileAt::ClientHello, HostileAct::Tamper))],
    )
    .expect("start");
    let _ = openssl_client(&lab, 4433, Duration::from_millis(1500));
    // The corrupted record is the greeting's: as long as it, sealed.
    let recs = peers.get(0).unwrap().records();
    let mut reader = tls::TlsReader::new();
    let sent = reader.feed(&recs[0].sent);
    assert!(
        sent.iter().any(|m| matches!(m, TlsMessage::Encrypted { content_type: 23, len } if *len > TAMPER_GREETING.len())),
        "{sent:?}"
    );
    // A check on another offer fails and says what was offered.
    let other = PeerCheck {
        offered_suites: Some(SuiteSet::Exactly(vec![0x002F])),
        within_ms: Some(0),
        ..PeerCheck::default()
    };
    let e = peers.check(0, &other).unwrap_err().to_string();
    assert!(e.contains("connection 0 offered [0xC02B, 0xC02F, "), "{e}");
    assert!(e.contains("expected [0x002F]"), "{e}");
    // Alerts and configs that contradict themselves are refused at start.
    let bad = TlsHostileSpec { description: None, ..alert(40) };
    let e = Peers::start(&lab, &[PeerSpec::TlsHostile(bad)]).unwrap_err();
    assert!(e.to_string().contains("needs `description`"), "{e}");
    let wait_closed = |peers: &Peers| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let closed = peers.get(0).unwrap().records().first().and_then(|r| r.closed.clone());
            if let Some(c) = closed {
                return c;
            }
            assert!(Instant::now() < deadline, "the connection was not closed");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    drop(peers);
    let peers = Peers::start(
        &lab,
        &[PeerSpec::TlsHostile(hostile(HostileAt::Certificate, HostileAct::Reset))],
    )
    .unwrap();
    let err = openssl_client(&lab, 4433, Duration::from_secs(2)).unwrap_err();
    assert!(err.contains("reset by peer"), "{err}");
    assert_eq!(wait_closed(&peers), Closed::CloseAfter);
}

/// An OpenSSL server and client in the lab, over the namespace's loopback, captured: the
/// hellos are read from the capture, and the key log the client wrote decrypts both ways.
#[test]
fn a_captured_openssl_pair_is_read_and_decrypted() {
    let _g = serial();
    let Some((lab, dir)) = lab("tls_capture") else { return };
    let pcap = dir.path().join("tls.pcap");
    let keylog_path = dir.path().join(keylog::KEYLOG_FILE);
    let capture = Capture::start(Some(&lab.netns_path()), "lo", &pcap).expect("capture");
    let server_said: &[u8] = b"known plaintext from the server\n";
    let client_said: &[u8] = b"known plaintext from the client\n";
    let kl = keylog_path.clone();
    in_lab(&lab, move || {
        use openssl::ssl::{SslAcceptor, SslFiletype};
        let _ = SslFiletype::PEM;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (key, cert) = self_signed();
            let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
            b.set_private_key(&key).unwrap();
            b.set_certificate(&cert).unwrap();
            let acceptor = b.build();
            let (tcp, _) = listener.accept().unwrap();
            let mut s = acceptor.accept(tcp).unwrap();
            s.write_all(server_said).unwrap();
            let mut buf = vec![0u8; client_said.len()];
            s.read_exact(&mut buf).unwrap();
            buf
        });
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        b.set_cipher_list("ECDHE-ECDSA-AES128-GCM-SHA256:AES128-SHA").unwrap();
        let file = std::sync::Mutex::new(std::fs::File::create(&kl).unwrap());
        b.set_keylog_callback(move |_, line| {
            let _ = writeln!(file.lock().unwrap(), "{line}");
        });
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut cfg = b.build().configure().unwrap();
        cfg.set_verify_hostname(false);
        let mut s = cfg.connect("lab-host.lab", tcp).unwrap();
        let mut buf = vec![0u8; server_said.len()];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, server_said);
        s.write_all(client_said).unwrap();
        assert_eq!(server.join().unwrap(), client_said);
        s.shutdown().ok();
    });
    // Every packet is in the capture once the FIN exchange is: wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // FIN or RST (a close_notify arriving after the other side closed is answered by one).
        let ends = capture.with_packets(|p| {
            p.iter()
                .filter(|p| {
                    matches!(&p.decode().body, Body::Tcp(t) if t.flags.0 & (TcpFlags::FIN | TcpFlags::RST) != 0)
                })
                .count()
        });
        if ends >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "saw {ends} FIN or RST segments");
        std::thread::sleep(Duration::from_millis(10));
    }
    let packets = capture.stop().expect("stop");
    let hellos: Vec<String> = tls::connections(&packets)
        .into_iter()
        .filter_map(|s| match s.message {
            TlsMessage::Handshake(h @ (Handshake::ClientHello(_) | Handshake::ServerHello(_))) => {
                Some(h.to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        hellos,
        [
            "ClientHello version 1.2 max 1.2 sni \"lab-host.lab\" suites [0xC02B, 0x002F, 0x00FF]",
            "ServerHello version 1.2 suite 0xC02B TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ]
    );
    // Packet expectations: what passes, and what a failure shows.
    let expect = |text: &str| -> PacketExpect {
        #[derive(serde::Deserialize)]
        struct T {
            e: PacketExpect,
        }
        toml::from_str::<T>(&format!("e = {text}")).unwrap().e
    };
    let pass = expect(
        r#"{ sequence = [{ tls = "client_hello", dst = "127.0.0.1", suites = ["0x002F", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"], max_version = "1.2", sni = "lab-host.lab" }, { tls = "server_hello", suite = "0xC02B", version = "1.2" }] }"#,
    );
    pass.check(&packets).expect("the hellos match");
    let fail = expect(r#"{ sequence = [{ tls = "client_hello", suites = "chapter" }] }"#);
    let e = fail.check(&packets).unwrap_err();
    assert!(e.contains("suites = \"chapter\""), "{e}");
    assert!(e.contains("suites [0xC02B, 0x002F, 0x00FF]"), "{e}");
    assert!(e.contains("| TLS ClientHello version 1.2 max 1.2"), "{e}");
    // Decryption with the key log.
    match keylog::decrypt(&pcap, &keylog_path) {
        Err(keylog::KeylogError::Missing(_)) => eprintln!("SKIPPED decryption: no tshark"),
        Err(e) => panic!("{e}"),
        Ok(data) => {
            let from = |client: bool| -> Vec<u8> {
                data.iter()
                    .filter(|d| d.from_client == client)
                    .flat_map(|d| d.data.clone())
                    .collect()
            };
            assert_eq!(from(false), server_said);
            assert_eq!(from(true), client_said);
        }
    }
}

fn self_signed() -> (openssl::pkey::PKey<openssl::pkey::Private>, openssl::x509::X509) {
    use openssl::{asn1, bn, ec, hash, nid, pkey, x509};
    let group = ec::EcGroup::from_curve_name(nid::Nid::X9_62_PRIME256V1).unwrap();
    let key = pkey::PKey::from_ec_key(ec::EcKey::generate(&group).unwrap()).unwrap();
    let mut name = x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(nid::Nid::COMMONNAME, "lab-host.lab").unwrap();
    let name = name.build();
    let mut b = x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = bn::BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    let (from, to) =
        (asn1::Asn1Time::days_from_now(0).unwrap(), asn1::Asn1Time::days_from_now(1).unwrap());
    b.set_not_before(&from).unwrap();
    b.set_not_after(&to).unwrap();
    b.sign(&key, hash::MessageDigest::sha256()).unwrap();
    (key, b.build())
}

#[test]
fn keylog_decrypt_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let e = keylog::decrypt(&dir.path().join("a.pcap"), Path::new("/nonexistent")).unwrap_err();
    assert!(e.to_string().contains("no such capture"), "{e}");
}
