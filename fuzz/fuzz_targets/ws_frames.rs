//! Arbitrary bytes from a WebSocket client, after the handshake.
//!
//! The first input byte is a control byte: its low six bits give the chunk size (1 to 64
//! bytes per `receive`), its top two bits the message limit (16, 125, 1000 or 4096 bytes).
//!
//! Checked:
//! * nothing panics;
//! * what the connection yields does not depend on how the bytes are split: a second
//!   connection fed the same bytes one at a time yields the same messages, the same replies
//!   and the same end;
//! * no message is longer than the limit; after the end nothing more comes out;
//! * every reply is a sequence of well-formed, unmasked server frames (pongs, one close at
//!   the end whose code is the error's or the peer's);
//! * each message, sent back by a client (masked, split into fragments), decodes to itself.
#![no_main]

use gecko_core::ws::frame::{self, Decoder, Event, Opcode, encode_masked};
use gecko_core::ws::{Connection, End, Message, Received};
use libfuzzer_sys::fuzz_target;

/// Splits a run of server frames into (opcode, fin, payload), or panics.
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, bool, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "a reply ends inside a header");
        let (b0, b1) = (bytes[0], bytes[1]);
        assert_eq!(b0 & 0x70, 0, "reserved bits in a reply");
        assert_eq!(b1 & 0x80, 0, "a server frame is masked");
        let (len, at) = match b1 & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => {
                let mut n = [0; 8];
                n.copy_from_slice(&bytes[2..10]);
                (usize::try_from(u64::from_be_bytes(n)).expect("fits"), 10)
            }
            n => (usize::from(n), 2),
        };
        assert!(bytes.len() >= at + len, "a reply's payload is cut short");
        out.push((b0 & 0x0f, b0 & 0x80 != 0, bytes[at..at + len].to_vec()));
        bytes = &bytes[at + len..];
    }
    out
}

fn check_reply(got: &Received) {
    let frames = server_frames(&got.reply);
    for (i, (op, fin, payload)) in frames.iter().enumerate() {
        assert!(fin, "replies are not fragmented");
        match Opcode::from_bits(*op) {
            Some(Opcode::Pong) => assert!(payload.len() <= 125),
            Some(Opcode::Close) => {
                assert_eq!(i, frames.len() - 1, "close is the last frame");
                let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                match &got.end {
                    Some(End::Failed(e)) => assert_eq!(code, Some(e.close_code())),
                    Some(End::Peer(peer)) => assert_eq!(code, *peer),
                    None => panic!("a close frame without an end"),
                }
            }
            other => panic!("unexpected reply frame {other:?}"),
        }
    }
    if got.end.is_some() {
        assert!(frames.last().is_some_and(|f| f.0 == Opcode::Close.bits()), "an end without a close frame");
    }
}

#[derive(Debug, Default, PartialEq)]
struct Seen {
    messages: Vec<Message>,
    reply: Vec<u8>,
    end: Option<End>,
}

fn run(input: &[u8], chunk: usize, limit: usize) -> Seen {
    let mut c = Connection::new(limit);
    let mut seen = Seen::default();
    for piece in input.chunks(chunk) {
        let got = c.receive(piece);
        check_reply(&got);
        if seen.end.is_some() {
            assert_eq!(got, Received::default(), "output after the end");
        }
        for m in &got.messages {
            assert!(m.as_bytes().len() <= limit, "message over the limit");
        }
        seen.messages.extend(got.messages);
        seen.reply.extend(got.reply);
        if got.end.is_some() {
            seen.end = got.end;
        }
    }
    seen
}

/// A message sent back by a client in fragments of `size` bytes decodes to itself.
fn round_trip(m: &Message, size: usize, limit: usize) {
    let op = match m {
        Message::Text(_) => Opcode::Text,
        Message::Binary(_) => Opcode::Binary,
    };
    let bytes = m.as_bytes();
    let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![&[]] } else { bytes.chunks(size).collect() };
    let mut wire = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 { op } else { Opcode::Continuation };
        wire.extend(encode_masked(opcode, i + 1 == pieces.len(), piece, [9, 8, 7, 6]));
    }
    let mut d = Decoder::new(limit);
    d.feed(&wire);
    assert_eq!(d.next(), Some(Ok(Event::Message(m.clone()))));
    assert_eq!(d.next(), None);
    // And the server's encoding of it is one frame with the bytes as they are.
    assert_eq!(server_frames(&frame::encode(op, true, bytes)), vec![(op.bits(), true, bytes.to_vec())]);
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl & 0x3f) + 1;
    let limit = [16, 125, 1000, 4096][usize::from(ctl >> 6)];
    let whole = run(input, chunk, limit);
    let bytewise = run(input, 1, limit);
    assert_eq!(whole, bytewise, "output depends on chunking");
    for m in &whole.messages {
        round_trip(m, chunk, limit);
    }
});
