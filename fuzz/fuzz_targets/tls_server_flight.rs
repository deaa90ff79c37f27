//! Arbitrary bytes as a TLS server's hello flight, read by the lab's hand-built TLS client
//! (`tls_hostile` client action). Checked: nothing panics, and the same bytes give the same
//! answer twice.
#![no_main]

use gecko_hil::peers::parse_server_flight;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = parse_server_flight(data);
    assert_eq!(first, parse_server_flight(data));
});
