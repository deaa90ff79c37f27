//! Arbitrary bytes as `http_whitelist.csv` and a call.
//!
//! Checked:
//! * `Whitelist::parse` and `allows` never panic;
//! * a file holding `*` as one of its entries allows every call, and an empty file none.
#![no_main]

use gecko_core::http::whitelist::Whitelist;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (file, call) = data.split_at(data.len() / 2);
    let _ = Whitelist::parse(file).allows(call);
    let mut with_star = file.to_vec();
    with_star.extend_from_slice(b",*");
    assert!(Whitelist::parse(&with_star).allows(call));
    assert!(!Whitelist::parse(b"").allows(call));
});
