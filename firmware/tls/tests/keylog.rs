//! Lab builds: one NSS key log line per session, the same line OpenSSL's own key log
//! callback prints for the peer (so a capture decrypts with either).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use gecko_core::tls::{Progress, TlsEngine};

fn logging_engine() -> (gecko_tls::MbedTls, Arc<Mutex<Vec<String>>>) {
    let lines: Arc<Mutex<Vec<String>>> = Default::default();
    let mut e = engine();
    let l2 = lines.clone();
    e.set_keylog(Box::new(move |line| l2.lock().unwrap().push(line.to_owned())));
    (e, lines)
}

#[test]
fn one_line_per_session_matching_openssl_as_client() {
    let (mut e, lines) = logging_engine();
    for (i, suite) in [0xC02F, 0x002F].into_iter().enumerate() {
        let mut spec = PeerSpec::suite(suite);
        spec.keylog = true;
        let (addr, peer) = openssl_server(spec);
        let mut s = e.session(&client_config(Some("localhost"))).unwrap();
        let mut pump = connect(addr);
        assert_eq!(pump.handshake(s.as_mut()), Progress::Established);
        drop(s);
        drop(pump);
        let report = peer.join().unwrap();
        let ours = lines.lock().unwrap().clone();
        assert_eq!(ours.len(), i + 1, "{ours:?}");
        assert!(
            ours[i].starts_with("CLIENT_RANDOM ") && ours[i].len() == 14 + 64 + 1 + 96,
            "{}",
            ours[i]
        );
        assert_eq!(report.keylog, vec![ours[i].clone()]);
    }
}

#[test]
fn one_line_per_session_matching_openssl_as_server() {
    let (mut e, lines) = logging_engine();
    let l = listener();
    let mut spec = PeerSpec::suite(0xC02B);
    spec.leaf = None;
    spec.keylog = true;
    let peer = openssl_client(l.local_addr().unwrap(), spec);
    let mut s = e.session(&server_config(&pki().ec)).unwrap();
    let mut pump = accept(&l);
    assert_eq!(pump.handshake(s.as_mut()), Progress::Established);
    let (ping, _) = pump.read_plaintext(s.as_mut(), 17);
    assert_eq!(ping, b"ping from openssl");
    s.write(b"pong").unwrap();
    s.close_notify();
    pump.run(s.as_mut(), Progress::Established, |p, _| *p == Progress::Closed);
    drop(pump);
    let report = peer.join().unwrap();
    assert_eq!(report.keylog, *lines.lock().unwrap());
    assert_eq!(report.keylog.len(), 1);
}
