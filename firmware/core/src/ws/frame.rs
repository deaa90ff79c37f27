//! RFC 6455 frames (§5): a decoder for client frames that takes bytes in any chunking and
//! yields whole messages and control frames, and an encoder for server frames.
//!
//! What the decoder refuses (each a [`ProtocolError`] with the close code the server sends):
//! an unmasked client frame, RSV bits (no extension is ever negotiated), an unknown opcode, a
//! control frame longer than 125 bytes or fragmented, a continuation with no message started
//! or a new message inside a fragmented one, a 64-bit length with its top bit set, a close
//! frame with a 1-byte payload or a code no endpoint may send (1002); a text message or close
//! reason that is not UTF-8 (1007); a message (all its fragments together) longer than the
//! decoder's limit (1009), refused from the frame header, before its payload is buffered.
//! A length in more bytes than needed is accepted (as most endpoints do).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A frame's opcode (§5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    /// The opcode of a frame's first byte; `None` for the reserved values.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    pub const fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong (§5.5).
    pub const fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Close codes the server sends (§7.4.1).
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away (the server stops, the network goes down).
    pub const GOING_AWAY: u16 = 1001;
    /// A protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Data inconsistent with the message type (text that is not UTF-8).
    pub const INVALID_DATA: u16 = 1007;
    /// A message too big to process.
    pub const TOO_BIG: u16 = 1009;
}

/// Why the decoder failed the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A client frame without the mask bit (§5.1).
    Unmasked,
    /// RSV1-3 set, with no extension negotiated (§5.2).
    Reserved,
    /// An opcode RFC 6455 reserves.
    UnknownOpcode(u8),
    /// A control frame longer than 125 bytes or without FIN (§5.5).
    BadControl,
    /// A continuation frame with no message started, or a text or binary frame while a
    /// fragmented message is still open (§5.4).
    BadContinuation,
    /// A 64-bit payload length with its most significant bit set (§5.2).
    BadLength,
    /// A close frame with a 1-byte payload or a code no endpoint may send (§5.5.1, §7.4).
    BadClose,
    /// A text message or close reason that is not UTF-8 (§8.1).
    InvalidUtf8,
    /// A message longer than the decoder's limit.
    TooBig,
}

impl ProtocolError {
    /// The close code the server fails the connection with (§7.4.1).
    pub const fn close_code(self) -> u16 {
        match self {
            ProtocolError::InvalidUtf8 => close::INVALID_DATA,
            ProtocolError::TooBig => close::TOO_BIG,
            _ => close::PROTOCOL,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Unmasked => f.write_str("unmasked client frame"),
            ProtocolError::Reserved => f.write_str("reserved bits set"),
            ProtocolError::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            ProtocolError::BadControl => f.write_str("control frame too long or fragmented"),
            ProtocolError::BadContinuation => f.write_str("unexpected continuation"),
            ProtocolError::BadLength => f.write_str("invalid payload length"),
            ProtocolError::BadClose => f.write_str("invalid close frame"),
            ProtocolError::InvalidUtf8 => f.write_str("invalid UTF-8"),
            ProtocolError::TooBig => f.write_str("message too big"),
        }
    }
}

/// A whole data message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

impl Message {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Message::Text(s) => s.into_bytes(),
            Message::Binary(b) => b,
        }
    }
}

/// The status of a close frame (§5.5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: u16,
    pub reason: String,
}

/// What the decoder yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Message(Message),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The peer's close frame; `None` when it carries no status.
    Close(Option<CloseFrame>),
}

/// Whether a peer may send `code` in a close frame (§7.4.1, §7.4.2 and the IANA registry:
/// 1004-1006 and 1015 never go on the wire; 0-999 and 1016-2999 are not used).
pub const fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A header read off the front of the buffer.
struct Header {
    fin: bool,
    opcode: Opcode,
    len: usize,
    mask: [u8; 4],
    /// Header bytes (up to and including the masking key).
    size: usize,
}

/// The decoder of client frames: bytes in with [`Decoder::feed`] in any chunking, events out
/// with [`Decoder::next`]. After the first error it yields nothing more (the connection is
/// failed).
#[derive(Clone, Debug)]
pub struct Decoder {
    /// Bytes not yet decoded: at most one frame's header and payload (a payload longer than
    /// the limit is refused from its header).
    buf: Vec<u8>,
    limit: usize,
    /// A fragmented message so far: whether it is text, and its bytes.
    partial: Option<(bool, Vec<u8>)>,
    failed: bool,
}

impl Decoder {
    /// A decoder that refuses messages longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { buf: Vec::new(), limit, partial: None, failed: false }
    }

    /// Bytes from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Whether a protocol error ended decoding.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The next whole message or control frame, an error, or `None` until more bytes come.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Event, ProtocolError>> {
        loop {
            if self.failed {
                return None;
            }
            let header = match self.header() {
                Ok(Some(h)) => h,
                Ok(None) => return None,
                Err(e) => return Some(self.fail(e)),
            };
            let end = header.size + header.len;
            if self.buf.len() < end {
                return None;
            }
            let mut payload: Vec<u8> = self.buf.drain(..end).skip(header.size).collect();
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= header.mask[i % 4];
            }
            match self.frame(header.fin, header.opcode, payload) {
                Ok(Some(event)) => return Some(Ok(event)),
                // A fragment of a message still open.
                Ok(None) => continue,
                Err(e) => return Some(self.fail(e)),
            }
        }
    }

    fn fail(&mut self, e: ProtocolError) -> Result<Event, ProtocolError> {
        self.failed = true;
        self.buf = Vec::new();
        self.partial = None;
        Err(e)
    }

    /// Reads and checks the header at the front of the buffer; `None` while incomplete.
    fn header(&self) -> Result<Option<Header>, ProtocolError> {
        let [b0, b1, ..] = self.buf[..] else { return Ok(None) };
        if b0 & 0x70 != 0 {
            return Err(ProtocolError::Reserved);
        }
        let fin = b0 & 0x80 != 0;
        let opcode = Opcode::from_bits(b0 & 0x0f).ok_or(ProtocolError::UnknownOpcode(b0 & 0x0f))?;
        if b1 & 0x80 == 0 {
            return Err(ProtocolError::Unmasked);
        }
        let short = b1 & 0x7f;
        if opcode.is_control() && (!fin || short > 125) {
            return Err(ProtocolError::BadControl);
        }
        match (opcode, &self.partial) {
            (Opcode::Continuation, None) => return Err(ProtocolError::BadContinuation),
            (Opcode::Text | Opcode::Binary, Some(_)) => return Err(ProtocolError::BadContinuation),
            _ => {}
        }
        let (len, at) = match short {
            126 => {
                let Some(b) = self.buf.get(2..4) else { return Ok(None) };
                (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
            }
            127 => {
                let Some(b) = self.buf.get(2..10) else { return Ok(None) };
                let mut n = [0; 8];
                n.copy_from_slice(b);
                let len = u64::from_be_bytes(n);
                if len >> 63 != 0 {
                    return Err(ProtocolError::BadLength);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        if !opcode.is_control() {
            let so_far = self.partial.as_ref().map_or(0, |(_, m)| m.len()) as u64;
            if so_far + len > self.limit as u64 {
                return Err(ProtocolError::TooBig);
            }
        }
        let Some(m) = self.buf.get(at..at + 4) else { return Ok(None) };
        let mask = [m[0], m[1], m[2], m[3]];
        // Below the limit (data) or 125 (control): fits a usize.
        let len = usize::try_from(len).map_err(|_| ProtocolError::TooBig)?;
        Ok(Some(Header { fin, opcode, len, mask, size: at + 4 }))
    }

    /// A whole, unmasked frame: an event, or `None` for a fragment of an open message.
    fn frame(
        &mut self,
        fin: bool,
        opcode: Opcode,
        payload: Vec<u8>,
    ) -> Result<Option<Event>, ProtocolError> {
        let (text, data) = match opcode {
            Opcode::Ping => return Ok(Some(Event::Ping(payload))),
            Opcode::Pong => return Ok(Some(Event::Pong(payload))),
            Opcode::Close => return close_frame(&payload).map(|c| Some(Event::Close(c))),
            Opcode::Text | Opcode::Binary if fin => (opcode == Opcode::Text, payload),
            Opcode::Text | Opcode::Binary => {
                self.partial = Some((opcode == Opcode::Text, payload));
                return Ok(None);
            }
            Opcode::Continuation => {
                let Some((_, so_far)) = &mut self.partial else {
                    return Err(ProtocolError::BadContinuation);
                };
                so_far.extend_from_slice(&payload);
                if !fin {
                    return Ok(None);
                }
                match self.partial.take() {
                    Some(done) => done,
                    None => return Err(ProtocolError::BadContinuation),
                }
            }
        };
        let message = if text {
            Message::Text(String::from_utf8(data).map_err(|_| ProtocolError::InvalidUtf8)?)
        } else {
            Message::Binary(data)
        };
        Ok(Some(Event::Message(message)))
    }
}

/// The status of a close frame's payload.
fn close_frame(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::BadClose),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_close_code(code) {
                return Err(ProtocolError::BadClose);
            }
            let reason = core::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame { code, reason: String::from(reason) }))
        }
    }
}

/// A server frame: unmasked (§5.1), in one piece.
pub fn encode(opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    write_header(&mut out, opcode, fin, payload.len(), false);
    out.extend_from_slice(payload);
    out
}

/// A server close frame with `code` and a reason (cut to fit the 125 bytes of a control
/// frame, at a character boundary).
pub fn encode_close(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = Vec::with_capacity(2 + cut);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    encode(Opcode::Close, true, &payload)
}

/// A client frame, masked with `mask` (for tests and fuzzing: the core only receives these).
pub fn encode_masked(opcode: Opcode, fin: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    write_header(&mut out, opcode, fin, payload.len(), true);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn write_header(out: &mut Vec<u8>, opcode: Opcode, fin: bool, len: usize, masked: bool) {
    out.push(if fin { 0x80 } else { 0 } | opcode.bits());
    let mask_bit = if masked { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use rstest::rstest;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn masked(opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
        encode_masked(opcode, fin, payload, MASK)
    }

    /// Everything the decoder yields for `bytes` fed at once.
    fn decode_all(bytes: &[u8], limit: usize) -> Vec<Result<Event, ProtocolError>> {
        let mut d = Decoder::new(limit);
        d.feed(bytes);
        core::iter::from_fn(|| d.next()).collect()
    }

    fn text(s: &str) -> Result<Event, ProtocolError> {
        Ok(Event::Message(Message::Text(s.into())))
    }

    #[test]
    fn rfc_example_masked_hello() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        assert_eq!(decode_all(&bytes, 100), vec![text("Hello")]);
        assert_eq!(masked(Opcode::Text, true, b"Hello"), bytes);
    }

    #[rstest]
    // §5.7: unmasked "Hello", and a 256-byte and 64 KiB binary header.
    #[case(Opcode::Text, b"Hello".to_vec(), vec![0x81, 0x05])]
    #[case(Opcode::Binary, vec![0; 256], vec![0x82, 0x7e, 0x01, 0x00])]
    #[case(Opcode::Binary, vec![0; 65536], vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0])]
    #[case(Opcode::Ping, b"Hello".to_vec(), vec![0x89, 0x05])]
    fn server_frames_are_unmasked(
        #[case] op: Opcode,
        #[case] payload: Vec<u8>,
        #[case] header: Vec<u8>,
    ) {
        let frame = encode(op, true, &payload);
        assert_eq!(&frame[..header.len()], &header[..]);
        assert_eq!(&frame[header.len()..], &payload[..]);
    }

    #[test]
    fn close_frame_reason_is_cut_to_fit_at_a_char_boundary() {
        let frame = encode_close(1000, &"é".repeat(100));
        assert_eq!(frame[1] as usize, frame.len() - 2);
        assert!(frame.len() - 2 <= 125);
        assert!(core::str::from_utf8(&frame[4..]).is_ok());
    }

    #[rstest]
    #[case::unmasked(encode(Opcode::Text, true, b"hi"), ProtocolError::Unmasked)]
    #[case::rsv1({ let mut f = masked(Opcode::Text, true, b"hi"); f[0] |= 0x40; f }, ProtocolError::Reserved)]
    #[case::rsv3({ let mut f = masked(Opcode::Binary, true, b"hi"); f[0] |= 0x10; f }, ProtocolError::Reserved)]
    #[case::opcode_3(vec![0x83, 0x80, 1, 2, 3, 4], ProtocolError::UnknownOpcode(3))]
    #[case::opcode_b(vec![0x8b, 0x80, 1, 2, 3, 4], ProtocolError::UnknownOpcode(0xb))]
    #[case::long_ping(masked(Opcode::Ping, true, &[0; 126]), ProtocolError::BadControl)]
    #[case::fragmented_ping(masked(Opcode::Ping, false, b"x"), ProtocolError::BadControl)]
    #[case::fragmented_close(masked(Opcode::Close, false, &[3, 232]), ProtocolError::BadControl)]
    #[case::lone_continuation(
        masked(Opcode::Continuation, true, b"x"),
        ProtocolError::BadContinuation
    )]
    #[case::text_inside_fragmented(
        [masked(Opcode::Text, false, b"a"), masked(Opcode::Text, true, b"b")].concat(),
        ProtocolError::BadContinuation
    )]
    #[case::top_bit_length(vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4], ProtocolError::BadLength)]
    #[case::close_one_byte(masked(Opcode::Close, true, &[3]), ProtocolError::BadClose)]
    #[case::close_code_1005(masked(Opcode::Close, true, &[0x03, 0xed]), ProtocolError::BadClose)]
    #[case::close_code_999(masked(Opcode::Close, true, &[0x03, 0xe7]), ProtocolError::BadClose)]
    #[case::close_code_5000(masked(Opcode::Close, true, &[0x13, 0x88]), ProtocolError::BadClose)]
    #[case::close_reason_not_utf8(masked(Opcode::Close, true, &[0x03, 0xe8, 0xff]), ProtocolError::InvalidUtf8)]
    #[case::text_not_utf8(masked(Opcode::Text, true, &[b'a', 0xc3]), ProtocolError::InvalidUtf8)]
    #[case::fragmented_text_not_utf8(
        [masked(Opcode::Text, false, &[0xe2, 0x82]), masked(Opcode::Continuation, true, &[0x41])].concat(),
        ProtocolError::InvalidUtf8
    )]
    #[case::too_big(masked(Opcode::Binary, true, &[0; 17]), ProtocolError::TooBig)]
    #[case::too_big_in_fragments(
        [masked(Opcode::Binary, false, &[0; 10]), masked(Opcode::Continuation, true, &[0; 7])].concat(),
        ProtocolError::TooBig
    )]
    fn refuses(#[case] bytes: Vec<u8>, #[case] want: ProtocolError) {
        assert_eq!(decode_all(&bytes, 16), vec![Err(want)]);
    }

    #[rstest]
    #[case(ProtocolError::Unmasked, 1002)]
    #[case(ProtocolError::BadControl, 1002)]
    #[case(ProtocolError::InvalidUtf8, 1007)]
    #[case(ProtocolError::TooBig, 1009)]
    fn close_codes(#[case] e: ProtocolError, #[case] code: u16) {
        assert_eq!(e.close_code(), code);
    }

    #[test]
    fn too_big_is_refused_from_the_header_alone() {
        // A 1 GiB length: refused before any payload is buffered.
        let mut d = Decoder::new(4096);
        d.feed(&[0x82, 0xff, 0, 0, 0, 0, 0x40, 0, 0, 0]);
        assert_eq!(d.next(), Some(Err(ProtocolError::TooBig)));
        d.feed(b"more");
        assert_eq!(d.next(), None, "nothing after a failure");
        assert!(d.failed());
    }

    #[test]
    fn fragments_reassemble_with_control_frames_between() {
        let bytes = [
            masked(Opcode::Text, false, b"Hel"),
            masked(Opcode::Ping, true, b"p"),
            masked(Opcode::Continuation, false, b""),
            masked(Opcode::Continuation, true, b"lo"),
            masked(Opcode::Binary, true, &[0, 255]),
            masked(Opcode::Pong, true, b""),
            masked(Opcode::Close, true, &[0x03, 0xe8, b'b', b'y', b'e']),
        ]
        .concat();
        let want = vec![
            Ok(Event::Ping(b"p".to_vec())),
            text("Hello"),
            Ok(Event::Message(Message::Binary(vec![0, 255]))),
            Ok(Event::Pong(vec![])),
            Ok(Event::Close(Some(CloseFrame { code: 1000, reason: "bye".into() }))),
        ];
        assert_eq!(decode_all(&bytes, 16), want);
        // The same in every chunking: one byte at a time, and split at every point.
        let mut d = Decoder::new(16);
        let mut got = Vec::new();
        for b in &bytes {
            d.feed(&[*b]);
            got.extend(core::iter::from_fn(|| d.next()));
        }
        assert_eq!(got, want);
        for cut in 0..bytes.len() {
            let mut d = Decoder::new(16);
            d.feed(&bytes[..cut]);
            let mut got: Vec<_> = core::iter::from_fn(|| d.next()).collect();
            d.feed(&bytes[cut..]);
            got.extend(core::iter::from_fn(|| d.next()));
            assert_eq!(got, want, "split at {cut}");
        }
    }

    #[rstest]
    #[case(&[], None)]
    #[case(&[0x03, 0xe8], Some((1000, "")))]
    #[case(&[0x0f, 0xa0, b'x'], Some((4000, "x")))]
    #[case(&[0x03, 0xf6], Some((1014, "")))]
    fn close_status(#[case] payload: &[u8], #[case] want: Option<(u16, &str)>) {
        let want = want.map(|(code, reason)| CloseFrame { code, reason: reason.into() });
        assert_eq!(
            decode_all(&masked(Opcode::Close, true, payload), 16),
            vec![Ok(Event::Close(want))]
        );
    }

    #[test]
    fn a_message_of_exactly_the_limit_passes_and_16_bit_lengths_decode() {
        let payload = vec![7u8; 300];
        let got = decode_all(&masked(Opcode::Binary, true, &payload), 300);
        assert_eq!(got, vec![Ok(Event::Message(Message::Binary(payload)))]);
    }

    #[test]
    fn non_minimal_length_is_accepted() {
        // "hi" with a 16-bit length.
        let mut f = vec![0x81, 0xfe, 0, 2];
        f.extend_from_slice(&MASK);
        f.extend(b"hi".iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        assert_eq!(decode_all(&f, 16), vec![text("hi")]);
    }
}
