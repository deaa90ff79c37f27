//! Arbitrary bytes from a remote terminal client, through the telnet input filter.
//!
//! The first byte gives the chunk size (1 to 256). Checked:
//! * nothing panics;
//! * the data does not depend on how the input is split;
//! * the filter never makes bytes up: its output is no longer than its input;
//! * input without IAC and without CR NUL passes unchanged.
#![no_main]

use gecko_core::telnet::{Filter, IAC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl) + 1;
    let whole = Filter::new().data(input);
    let mut split = Filter::new();
    let pieces: Vec<u8> = input.chunks(chunk).flat_map(|c| split.data(c)).collect();
    assert_eq!(whole, pieces, "depends on the split");
    assert!(whole.len() <= input.len());
    if !input.contains(&IAC) && !input.windows(2).any(|w| w == b"\r\0") {
        assert_eq!(whole, input);
    }
});
