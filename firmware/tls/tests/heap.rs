//! mbedTLS's heap: what a session needs at its peak, that it all comes back, and that a
//! budget too small fails honestly with 5003 ERROR_OUT_OF_MEMORY ("TLS malloc failed").
//! One test function: the budget is global to the process.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gecko_core::tls::{Progress, TlsCode, TlsEngine, state};
use gecko_tls::{heap_in_use, heap_peak, heap_refusals, reset_heap_peak, set_heap_budget};

/// One client handshake and a message each way with `suite`; the peak bytes mbedTLS held.
fn client_peak(suite: u16) -> usize {
    let (addr, peer) = openssl_server(PeerSpec::suite(suite));
    let before = heap_in_use();
    reset_heap_peak();
    let mut s = session(&client_config(Some("localhost")));
    let mut pump = connect(addr);
    assert_eq!(pump.handshake(s.as_mut()), Progress::Established);
    s.write(b"measure").unwrap();
    let (reply, _) = pump.read_plaintext(s.as_mut(), 7);
    assert_eq!(reply, b"MEASURE");
    let peak = heap_peak() - before;
    drop(s);
    drop(pump);
    peer.join().unwrap();
    assert_eq!(heap_in_use(), before, "the session gave back every block");
    peak
}

/// The same as a server (its certificate and key parsed into the session too).
fn server_peak(suite: u16) -> usize {
    let l = listener();
    let mut spec = PeerSpec::suite(suite);
    spec.leaf = None;
    let peer = openssl_client(l.local_addr().unwrap(), spec);
    let before = heap_in_use();
    reset_heap_peak();
    let mut s = session(&server_config(leaf_for(suite)));
    let mut pump = accept(&l);
    assert_eq!(pump.handshake(s.as_mut()), Progress::Established);
    let (ping, _) = pump.read_plaintext(s.as_mut(), 17);
    assert_eq!(ping, b"ping from openssl");
    s.write(b"pong").unwrap();
    let peak = heap_peak() - before;
    drop(s);
    drop(pump);
    peer.join().unwrap();
    assert_eq!(heap_in_use(), before, "the session gave back every block");
    peak
}

#[test]
fn heap_per_session_and_the_budget() {
    let rsa = client_peak(0x002F);
    let ecdhe_rsa = client_peak(0xC02F);
    let ecdsa = client_peak(0xC02B);
    eprintln!(
        "mbedTLS heap peak per client session: RSA {rsa} B, ECDHE-RSA {ecdhe_rsa} B, ECDHE-ECDSA {ecdsa} B"
    );
    let server_rsa = server_peak(0x002F);
    let server_ecdsa = server_peak(0xC02B);
    eprintln!(
        "mbedTLS heap peak per server session: RSA {server_rsa} B, ECDHE-ECDSA {server_ecdsa} B"
    );
    for peak in [rsa, ecdhe_rsa, ecdsa, server_rsa, server_ecdsa] {
        // Two 16 KiB record buffers at least; far below a board's whole RAM.
        assert!((32 * 1024..128 * 1024).contains(&peak), "{peak}");
    }

    // A budget below the record buffers: the session cannot even be set up.
    let base = heap_in_use();
    set_heap_budget(Some(base + 8 * 1024));
    let f = engine().session(&client_config(Some("localhost"))).err().unwrap();
    assert_eq!((f.code, f.state), (TlsCode::OutOfMemory, state::HELLO_REQUEST));
    assert_eq!(f.internal, mbedtls_rs_sys::MBEDTLS_ERR_SSL_ALLOC_FAILED);

    // Room for the set-up but not for the handshake: it fails on the way, while
    // parsing the server's certificate.
    let refused = heap_refusals();
    match handshake_with_room(256) {
        Progress::Failed(f) => {
            assert_eq!((f.code, f.state), (TlsCode::OutOfMemory, state::SERVER_CERTIFICATE), "{f}")
        }
        other => panic!("expected 5003, got {other:?}"),
    }
    assert!(heap_refusals() > refused);
    // A little more room: the allocation that fails is in the chain's signature check,
    // which mbedTLS reports as "not trusted" (the chapter's own example: "TLS malloc
    // failed", then 5035).
    let refused = heap_refusals();
    match handshake_with_room(4096) {
        Progress::Failed(f) => {
            assert_eq!(
                (f.code, f.state),
                (TlsCode::UntrustedCertificate, state::SERVER_CERTIFICATE),
                "{f}"
            )
        }
        other => panic!("expected 5035, got {other:?}"),
    }
    assert!(heap_refusals() > refused, "an allocation was refused");
    assert_eq!(handshake_with_room(32 * 1024), Progress::Established);
    assert_eq!(heap_in_use(), base);
}

/// A client handshake with `extra` bytes of heap beyond what its set-up took.
fn handshake_with_room(extra: usize) -> Progress {
    set_heap_budget(None);
    let (addr, peer) = openssl_server(PeerSpec::suite(0xC02F));
    let mut s = session(&client_config(Some("localhost")));
    set_heap_budget(Some(heap_in_use() + extra));
    let mut pump = connect(addr);
    let p = pump.handshake(s.as_mut());
    set_heap_budget(None);
    drop(s);
    drop(pump);
    peer.join().unwrap();
    p
}
