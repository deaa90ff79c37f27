//! The WebSocket command stream: commands as MessagePack messages over one WebSocket to
//! `ws://<host>/cmdstream` (chapter, "WebSocket Command Stream").
//!
//! A message `{command, data, id}` goes out, `{id, code, response}` comes back; many commands
//! share one connection, each with the next id. A reply whose id belongs to an earlier command
//! (one that timed out) is dropped; a reply to an id never sent is malformed. The command
//! stream carries no log lines, so the channel fetches the HTTP server's `GET /log` after each
//! command, as the REST channel does.
//!
//! The TCP connection is opened by a thread inside the module's network namespace (a socket
//! stays in the namespace it was made in); the WebSocket runs over it on the caller's thread.

use super::rest::{HttpClient, HttpTarget, log_lines};
use super::{Channel, ChannelError, ConsoleFormat, RawLink, Reply, Request, Timing};
use crate::code::ResultCode;
use crate::transport::Transport;
use serde::{Deserialize, Serialize};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// The command stream's route.
pub const PATH: &str = "/cmdstream";

/// A command message.
#[derive(Serialize)]
struct CommandMessage<'a> {
    command: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Text<'a>>,
    id: u32,
}

/// Command data: a msgpack string when it is UTF-8 (the chapter's form), else binary.
enum Text<'a> {
    Str(&'a str),
    Bin(&'a [u8]),
}

impl Serialize for Text<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Text::Str(t) => s.serialize_str(t),
            Text::Bin(b) => s.serialize_bytes(b),
        }
    }
}

/// A string or binary field of a reply, as bytes.
struct Bytes(Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or binary")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bytes, E> {
                Ok(Bytes(v.as_bytes().to_vec()))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct ReplyMessage {
    id: u32,
    code: u64,
    response: Bytes,
}

/// One reply message, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct StreamReply {
    pub id: u32,
    pub code: ResultCode,
    pub response: Vec<u8>,
}

/// The MessagePack bytes of a command message.
pub fn command_message(line: &str, data: Option<&[u8]>, id: u32) -> Vec<u8> {
    let data = data.map(|d| match std::str::from_utf8(d) {
        Ok(t) => Text::Str(t),
        Err(_) => Text::Bin(d),
    });
    let message = CommandMessage { command: line, data, id };
    // Serializing a struct of strings and integers into a Vec cannot fail.
    rmp_serde::to_vec_named(&message).unwrap_or_default()
}

/// A reply message from its MessagePack bytes, or why it cannot be one.
pub fn parse_reply(bytes: &[u8]) -> Result<StreamReply, String> {
    let m: ReplyMessage =
        rmp_serde::from_slice(bytes).map_err(|e| format!("not a reply message: {e}"))?;
    let code = u8::try_from(m.code).map_err(|_| format!("code {} is not a result code", m.code))?;
    Ok(StreamReply { id: m.id, code: ResultCode(code), response: m.response.0 })
}

/// The command stream as a [`Channel`].
pub struct CmdStreamChannel {
    socket: WebSocket<TcpStream>,
    /// For `GET /log`.
    http: HttpClient,
    next_id: u32,
    /// Log lines fetched by [`Channel::resync`], handed out with the next reply.
    pending: Vec<String>,
}

impl std::fmt::Debug for CmdStreamChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CmdStreamChannel({})", self.endpoint())
    }
}

impl CmdStreamChannel {
    /// Opens the WebSocket (HTTP Basic credentials in the upgrade request when given).
    pub fn connect(target: HttpTarget, timeout: Duration) -> Result<Self, ChannelError> {
        let link = || format!("ws://{}{PATH}", target.addr);
        let io = |source: std::io::Error| ChannelError::Link { link: link(), source };
        let addr = std::net::SocketAddr::V4(target.addr);
        let connect = move || TcpStream::connect_timeout(&addr, timeout);
        let stream = match &target.netns {
            Some(ns) => crate::lab::netns::run_in_netns(ns, connect)
                .map_err(|e| io(std::io::Error::other(e)))?,
            None => connect(),
        }
        .map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(link())
            .map_err(|e| io(std::io::Error::other(e)))?;
        if let Some(c) = &target.credentials {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.username, c.password));
            let value = format!("Basic {token}")
                .parse()
                .map_err(|e| io(std::io::Error::other(format!("credentials: {e}"))))?;
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _response) = tungstenite::client(request, stream).map_err(|e| {
            use tungstenite::handshake::HandshakeError;
            let reason = match e {
                HandshakeError::Failure(tungstenite::Error::Http(r)) => {
                    format!("the server refused the upgrade: HTTP status {}", r.status())
                }
                HandshakeError::Failure(e) => e.to_string(),
                HandshakeError::Interrupted(_) => "the handshake did not finish in time".into(),
            };
            io(std::io::Error::other(reason))
        })?;
        Ok(Self { socket, http: HttpClient::new(target)?, next_id: 1, pending: Vec::new() })
    }

    fn link_error(&self, e: tungstenite::Error) -> ChannelError {
        let source = match e {
            tungstenite::Error::Io(e) => e,
            e => std::io::Error::other(e),
        };
        ChannelError::Link { link: self.endpoint(), source }
    }
}

/// Whether an I/O error is a read timeout (the socket is still usable).
fn timed_out(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io)
        if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

impl Channel for CmdStreamChannel {
    fn transport(&self) -> Transport {
        Transport::CmdStream
    }

    fn endpoint(&self) -> String {
        let target = self.http.target();
        match &target.netns {
            Some(ns) => format!("ws://{}{PATH} (in {})", target.addr, ns.display()),
            None => format!("ws://{}{PATH}", target.addr),
        }
    }

    fn execute(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let sent = Instant::now();
        let message = command_message(request.line, request.data, id);
        self.socket.send(Message::binary(message)).map_err(|e| self.link_error(e))?;
        let malformed = |reason: String, bytes: &[u8]| ChannelError::Malformed {
            command: request.line.to_string(),
            reason,
            bytes: super::escape_bytes(bytes),
        };
        let mut first_byte = None;
        let reply = loop {
            let left = request.timeout.saturating_sub(sent.elapsed());
            if left.is_zero() {
                return Err(ChannelError::Timeout {
                    command: request.line.to_string(),
                    waited: sent.elapsed(),
                    partial: String::new(),
                });
            }
            self.socket
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(|source| ChannelError::Link { link: self.endpoint(), source })?;
            let message = match self.socket.read() {
                Ok(m) => m,
                Err(e) if timed_out(&e) => continue,
                Err(e) => return Err(self.link_error(e)),
            };
            first_byte.get_or_insert(sent.elapsed());
            let bytes = match message {
                Message::Binary(b) => b,
                Message::Text(t) => {
                    return Err(malformed("a text frame, not MessagePack".into(), t.as_bytes()));
                }
                Message::Close(frame) => {
                    let why = frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default();
                    return Err(ChannelError::Link {
                        link: self.endpoint(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            format!("the module closed the command stream {why}"),
                        ),
                    });
                }
                // Pings are answered by the next read or write; pongs and raw frames carry nothing.
                _ => continue,
            };
            let reply = parse_reply(&bytes).map_err(|reason| malformed(reason, &bytes))?;
            match reply.id {
                got if got == id => break reply,
                // The reply to an earlier command that timed out: late, not this one's.
                got if got < id => continue,
                got => {
                    return Err(malformed(
                        format!("reply id {got}, but the last id sent is {id}"),
                        &bytes,
                    ));
                }
            }
        };
        let replied = sent.elapsed();
        let left = request.timeout.saturating_sub(replied).max(Duration::from_secs(1));
        let mut lines = std::mem::take(&mut self.pending);
        lines.extend(self.http.fetch_logs(left)?);
        let logs = log_lines(lines, replied);
        let timing = Timing { sent, first_byte, total: replied };
        Ok(Reply { code: reply.code, body: reply.response, logs, timing })
    }

    /// Replies are structured whatever the console's format; the log lines buffered so far
    /// are kept for the next reply, as the REST channel does.
    fn resync(&mut self, _format: ConsoleFormat, timeout: Duration) -> Result<(), ChannelError> {
        let lines = self.http.fetch_logs(timeout)?;
        self.pending.extend(lines);
        Ok(())
    }

    fn raw(&mut self) -> Option<&mut dyn RawLink> {
        None
    }
}

impl Drop for CmdStreamChannel {
    fn drop(&mut self) {
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    // fixmap(2) "command" "ver" "id" 1
    #[case::plain("ver", None, 1, b"\x82\xa7command\xa3ver\xa2id\x01")]
    #[case::text_data("stream_write 0 2", Some(&b"hi"[..]), 2, b"\x83\xa7command\xb0stream_write 0 2\xa4data\xa2hi\xa2id\x02")]
    #[case::binary_data("w", Some(&b"\xff"[..]), 300, b"\x83\xa7command\xa1w\xa4data\xc4\x01\xff\xa2id\xcd\x01\x2c")]
    fn builds_command_messages(
        #[case] line: &str,
        #[case] data: Option<&[u8]>,
        #[case] id: u32,
        #[case] want: &[u8],
    ) {
        assert_eq!(command_message(line, data, id), want);
    }

    #[rstest]
    #[case::ok(b"\x83\xa2id\x01\xa4code\x00\xa8response\xa8Set OK\r\n", Ok((1, 0, &b"Set OK\r\n"[..])))]
    #[case::binary(b"\x83\xa2id\x05\xa4code\x01\xa8response\xc4\x02\xff\x00", Ok((5, 1, &b"\xff\x00"[..])))]
    #[case::any_order(b"\x83\xa4code\x03\xa8response\xa0\xa2id\x02", Ok((2, 3, &b""[..])))]
    #[case::no_id(
        b"\x82\xa4code\x00\xa8response\xa0",
        Err("not a reply message: missing field `id`")
    )]
    #[case::big_code(
        b"\x83\xa2id\x01\xa4code\xcd\x01\x00\xa8response\xa0",
        Err("code 256 is not a result code")
    )]
    #[case::number_response(
        b"\x83\xa2id\x01\xa4code\x00\xa8response\x07",
        Err("not a reply message: invalid type: integer `7`, expected a string or binary")
    )]
    #[case::empty(
        b"",
        Err("not a reply message: IO error while reading marker: failed to fill whole buffer")
    )]
    #[case::truncated(
        b"\x83\xa2id",
        Err("not a reply message: IO error while reading marker: failed to fill whole buffer")
    )]
    fn reads_reply_messages(#[case] bytes: &[u8], #[case] want: Result<(u32, u8, &[u8]), &str>) {
        let got = parse_reply(bytes);
        let want = want
            .map(|(id, code, r)| StreamReply { id, code: ResultCode(code), response: r.to_vec() })
            .map_err(str::to_string);
        assert_eq!(got, want);
    }
}
