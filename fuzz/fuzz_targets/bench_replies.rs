//! The readers `hil bench transports` applies to bytes from outside: a hand-read HTTP/1.1
//! response (the REST floor and load), its JSON command reply, and the pexpect script's
//! output. They never panic; a response they accept has a body no longer than the input.
#![no_main]

use gecko_hil::bench;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, body)) = bench::parse_http_response(data) {
        assert!(body.len() <= data.len());
    }
    let _ = bench::parse_rest_answer(data);
    let text = String::from_utf8_lossy(data);
    let n = data.first().copied().unwrap_or(0).into();
    if let Ok(samples) = bench::parse_pexpect_output(&text, n) {
        assert_eq!(samples.len(), n);
    }
});
