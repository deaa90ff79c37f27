//! WebSocket (RFC 6455), server side, sans-IO: the opening handshake ([`handshake`]), frames
//! ([`frame`]) and one connection's protocol state ([`Connection`]): pings answered, the
//! close handshake, a protocol error failing the connection with its close code.
//!
//! No knowledge of the module: the HTTP server hands a connection's bytes in after the
//! upgrade and sends what comes out; `module/websocket.rs` uses it for `/stream` and
//! `/cmdstream`.
//!
//! Decisions (RFC 6455 leaves them to the server):
//!
//! * **Message size.** A message longer than [`MESSAGE_MAX`] bytes (all its fragments
//!   together) fails the connection with 1009; 4096 bytes, the chapter's REST request limit
//!   and the default `bus.command.rx_bufsize` (assumed).
//! * **Closing.** The server answers a peer's close frame with a close frame echoing its code
//!   (an empty one for an empty one) and then closes the TCP connection; when the server
//!   closes first it sends its close frame and closes the TCP connection right after (a
//!   graceful close: the peer reads the frame, then the end), without waiting for the peer's
//!   answer.
//! * **Pongs** (unsolicited or not) are ignored; **pings** are answered with a pong carrying
//!   the same payload.

pub mod frame;
pub mod handshake;

pub use frame::{CloseFrame, Decoder, Event, Message, Opcode, ProtocolError};

use alloc::vec::Vec;

/// The longest message the server takes (see the module docs).
pub const MESSAGE_MAX: usize = 4096;

/// How a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The peer sent a close frame (with this code, if any); it was answered.
    Peer(Option<u16>),
    /// The peer broke the protocol; the server sent a close frame with the error's code.
    Failed(ProtocolError),
}

/// What bytes from the peer brought.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Whole data messages, in order.
    pub messages: Vec<Message>,
    /// Frames to send back, in order (pongs, the close frame).
    pub reply: Vec<u8>,
    /// Set when the connection ended: send `reply`, then close the TCP connection.
    pub end: Option<End>,
}

/// One WebSocket connection after the handshake: client frames in, messages and the
/// server's answers out.
#[derive(Clone, Debug)]
pub struct Connection {
    decoder: Decoder,
    closed: bool,
}

impl Connection {
    /// A connection that takes messages up to `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { decoder: Decoder::new(limit), closed: false }
    }

    /// Whether the connection has ended (either side closed, or it failed): nothing more is
    /// received or sent.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes from the peer.
    pub fn receive(&mut self, bytes: &[u8]) -> Received {
        let mut out = Received::default();
        if self.closed {
            return out;
        }
        self.decoder.feed(bytes);
        while let Some(event) = self.decoder.next() {
            match event {
                Ok(Event::Message(m)) => out.messages.push(m),
                Ok(Event::Ping(payload)) => {
                    out.reply.extend(frame::encode(Opcode::Pong, true, &payload));
                }
                Ok(Event::Pong(_)) => {}
                Ok(Event::Close(status)) => {
                    let code = status.map(|s| s.code);
                    out.reply.extend(match code {
                        Some(code) => frame::encode_close(code, ""),
                        None => frame::encode(Opcode::Close, true, &[]),
                    });
                    self.closed = true;
                    out.end = Some(End::Peer(code));
                    break;
                }
                Err(e) => {
                    let mut reason = alloc::string::String::new();
                    let _ = core::fmt::write(&mut reason, format_args!("{e}"));
                    out.reply.extend(frame::encode_close(e.close_code(), &reason));
                    self.closed = true;
                    out.end = Some(End::Failed(e));
                    break;
                }
            }
        }
        out
    }

    /// A data message to the peer (nothing once the connection has ended).
    pub fn send(&self, message: &Message) -> Vec<u8> {
        let opcode = match message {
            Message::Text(_) => Opcode::Text,
            Message::Binary(_) => Opcode::Binary,
        };
        self.frame(opcode, true, message.as_bytes())
    }

    /// Any frame to the peer (`stream_write` sends pings and fragments too); nothing once
    /// the connection has ended.
    pub fn frame(&self, opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
        if self.closed { Vec::new() } else { frame::encode(opcode, fin, payload) }
    }

    /// The server closes: its close frame (nothing when the connection has already ended);
    /// the TCP connection is closed after it.
    pub fn close(&mut self, code: u16) -> Vec<u8> {
        if core::mem::replace(&mut self.closed, true) {
            return Vec::new();
        }
        frame::encode_close(code, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use frame::encode_masked as masked;

    const M: [u8; 4] = [1, 2, 3, 4];

    #[test]
    fn ping_is_answered_with_the_same_payload() {
        let mut c = Connection::new(64);
        let got = c.receive(&masked(Opcode::Ping, true, b"are you there", M));
        assert_eq!(got.reply, frame::encode(Opcode::Pong, true, b"are you there"));
        assert_eq!((got.messages, got.end), (vec![], None));
    }

    #[test]
    fn peer_close_is_echoed_and_ends_the_connection() {
        let mut c = Connection::new(64);
        let bytes = [
            masked(Opcode::Binary, true, b"x", M),
            masked(Opcode::Close, true, &[0x03, 0xe9], M),
            masked(Opcode::Text, true, b"late", M),
        ]
        .concat();
        let got = c.receive(&bytes);
        assert_eq!(got.messages, vec![Message::Binary(b"x".to_vec())]);
        assert_eq!(got.reply, frame::encode_close(1001, ""));
        assert_eq!(got.end, Some(End::Peer(Some(1001))));
        assert!(c.is_closed());
        assert_eq!(c.receive(&masked(Opcode::Text, true, b"more", M)), Received::default());
        assert_eq!(c.send(&Message::Text("no".into())), Vec::<u8>::new());
    }

    #[test]
    fn empty_close_gets_an_empty_close() {
        let mut c = Connection::new(64);
        let got = c.receive(&masked(Opcode::Close, true, &[], M));
        assert_eq!(got.reply, vec![0x88, 0x00]);
        assert_eq!(got.end, Some(End::Peer(None)));
    }

    #[test]
    fn protocol_error_fails_with_its_code_after_the_messages_before_it() {
        let mut c = Connection::new(64);
        let bytes = [masked(Opcode::Text, true, b"ok", M), frame::encode(Opcode::Text, true, b"x")]
            .concat();
        let got = c.receive(&bytes);
        assert_eq!(got.messages, vec![Message::Text("ok".into())]);
        assert_eq!(got.end, Some(End::Failed(ProtocolError::Unmasked)));
        assert_eq!(&got.reply[..4], &[0x88, got.reply.len() as u8 - 2, 0x03, 0xea]);
        assert_eq!(&got.reply[4..], b"unmasked client frame");
    }

    #[test]
    fn server_close_once() {
        let mut c = Connection::new(64);
        assert_eq!(c.close(1000), vec![0x88, 0x02, 0x03, 0xe8]);
        assert_eq!(c.close(1000), Vec::<u8>::new());
    }
}
