//! Arbitrary bytes as a WebSocket command stream message.
//!
//! Checked:
//! * `Request::decode` never panics and is deterministic;
//! * an accepted message re-encodes (`Request::encode`) to a message that decodes to the same
//!   request;
//! * a refusal names an id only when the message had one that decodes (a map whose `id` is
//!   an integer);
//! * the response to any request (its id, any code, the input as body) is a msgpack map of 2
//!   or 3 entries that ends where the bytes end.
#![no_main]

use gecko_core::msgpack::{Request, encode_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = Request::decode(data);
    assert_eq!(first, Request::decode(data), "decoding is deterministic");
    let id = match &first {
        Ok(request) => {
            let again = Request::decode(&request.encode());
            assert_eq!(again.as_ref(), Ok(request), "encode/decode round trip");
            request.id
        }
        Err(rejected) => {
            if rejected.id.is_some() {
                assert!(data.first().is_some_and(|b| matches!(b, 0x80..=0x8f | 0xde | 0xdf)), "an id from a non-map");
            }
            rejected.id
        }
    };
    let code = data.first().copied().unwrap_or(0) % 10;
    let response = encode_response(id, code, data);
    let want = 0x82 + u8::from(id.is_some());
    assert_eq!(response[0], want, "response map size");
    // The body is the response's tail: a str or bin of exactly the input.
    assert!(response.ends_with(data), "the body is the input");
});
