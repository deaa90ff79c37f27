//! Arbitrary bytes on the radio link (a UART), both directions.
//!
//! The first byte gives the chunk size (1 to 256). Checked:
//! * nothing panics;
//! * what decodes does not depend on how the input is split;
//! * every message decoded encodes to one line within the cap that decodes to it again.
#![no_main]

use gecko_radio_link::{Decoder, FromRadio, LINE_MAX, Message, ToRadio};
use libfuzzer_sys::fuzz_target;

fn check<M: Message + PartialEq + std::fmt::Debug>(chunk: usize, input: &[u8]) {
    let whole = Decoder::<M>::new().feed(input);
    let mut split = Decoder::<M>::new();
    let pieces: Vec<_> = input.chunks(chunk).flat_map(|c| split.feed(c)).collect();
    assert_eq!(whole, pieces, "depends on the split");
    for message in whole.into_iter().flatten() {
        let line = message.encode();
        assert!(line.len() <= LINE_MAX && line.ends_with('\n'), "{line:?}");
        assert_eq!(Decoder::<M>::new().feed(line.as_bytes()), vec![Ok(message)]);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl) + 1;
    check::<ToRadio>(chunk, input);
    check::<FromRadio>(chunk, input);
});
