//! Arbitrary bytes from an RFC 2217 (telnet COM-PORT-OPTION) server, through the harness's
//! telnet client.
//!
//! The first byte gives the chunk size (1 to 256). Checked:
//! * nothing panics;
//! * console data, negotiation replies and COM-PORT answers do not depend on how the input
//!   is split;
//! * the client never makes data up: its data is no longer than its input;
//! * input without IAC is all data, unchanged, and gets no reply;
//! * data escaped for the wire decodes to itself.
#![no_main]

use gecko_hil::channel::rfc2217::{Client, IAC, escape_into};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl) + 1;
    let mut whole = Client::new();
    let (mut whole_data, mut whole_reply) = (Vec::new(), Vec::new());
    whole.receive(input, &mut whole_data, &mut whole_reply);
    let mut split = Client::new();
    let (mut split_data, mut split_reply) = (Vec::new(), Vec::new());
    for piece in input.chunks(chunk) {
        split.receive(piece, &mut split_data, &mut split_reply);
    }
    assert_eq!(whole_data, split_data, "data depends on the split");
    assert_eq!(whole_reply, split_reply, "replies depend on the split");
    assert_eq!(whole.take_answers(), split.take_answers(), "answers depend on the split");
    assert_eq!(whole.com_port(), split.com_port());
    assert!(whole_data.len() <= input.len());
    if !input.contains(&IAC) {
        assert_eq!(whole_data, input);
        assert!(whole_reply.is_empty());
    }
    let mut wire = Vec::new();
    escape_into(input, &mut wire);
    let (mut back, mut reply) = (Vec::new(), Vec::new());
    Client::new().receive(&wire, &mut back, &mut reply);
    assert_eq!(back, input, "escaped data does not decode to itself");
    assert!(reply.is_empty());
});
