//! Every one of the chapter's 12 suites, as client and as server, against OpenSSL over
//! loopback TCP: the negotiated suite is the one asked for, application data flows both
//! ways, close_notify ends the session.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gecko_core::tls::{Progress, SUITES, TlsVersion};
use rstest::rstest;

fn all_suites() -> Vec<u16> {
    SUITES.iter().map(|s| s.id).collect()
}

#[rstest]
fn every_suite_as_client(#[values(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)] i: usize) {
    let id = all_suites()[i];
    let (addr, peer) = openssl_server(PeerSpec::suite(id));
    let mut s = session(&client_config(Some("localhost")));
    let mut pump = connect(addr);
    let p = pump.handshake(s.as_mut());
    assert_eq!(p, Progress::Established, "suite {id:#06x}");
    let (suite, version) = s.negotiated().unwrap();
    assert_eq!((suite.id, version), (id, TlsVersion::Tls1_2));

    s.write(b"hello from the module").unwrap();
    let (reply, _) = pump.read_plaintext(s.as_mut(), 21);
    assert_eq!(reply, b"HELLO FROM THE MODULE");
    s.close_notify();
    let p = pump.run(s.as_mut(), Progress::Established, |p, _| *p == Progress::Closed);
    assert_eq!(p, Progress::Closed, "the peer answers close_notify with its own");
    drop(pump);
    let report = peer.join().unwrap();
    assert_eq!(report.handshake, Ok(()));
    assert_eq!(report.received, b"hello from the module");
    assert!(report.close_notify, "OpenSSL saw the module's close_notify");
}

#[rstest]
fn every_suite_as_server(#[values(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)] i: usize) {
    let id = all_suites()[i];
    let l = listener();
    let mut spec = PeerSpec::suite(id);
    spec.leaf = None;
    spec.verify_with = Some(match cert_kind(id) {
        KeyKind::P256 => pki().ca_ec.cert.clone(),
        _ => pki().ca_rsa.cert.clone(),
    });
    let peer = openssl_client(l.local_addr().unwrap(), spec);
    let mut s = session(&server_config(leaf_for(id)));
    let mut pump = accept(&l);
    let p = pump.handshake(s.as_mut());
    assert_eq!(p, Progress::Established, "suite {id:#06x}");
    assert_eq!(s.negotiated().map(|(s, v)| (s.id, v)), Some((id, TlsVersion::Tls1_2)));

    let (got, _) = pump.read_plaintext(s.as_mut(), 17);
    assert_eq!(got, b"ping from openssl");
    s.write(b"pong from the module").unwrap();
    s.close_notify();
    let p = pump.run(s.as_mut(), Progress::Established, |p, _| *p == Progress::Closed);
    assert_eq!(p, Progress::Closed);
    drop(pump);
    let report = peer.join().unwrap();
    assert_eq!(report.handshake, Ok(()));
    assert_eq!(report.received, b"pong from the module");
    assert!(report.close_notify);
}
