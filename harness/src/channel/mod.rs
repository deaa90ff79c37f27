//! The one way the harness talks to a module: the [`Channel`] trait.
//!
//! Every transport (serial and the remote terminal, both a [`console::Console`] on a byte
//! stream; REST and the WebSocket command stream later) implements it, so a case runs over any transport that has what its steps use
//! ([`crate::transport::Capabilities`]). Transcripts and timing are middleware around the
//! trait ([`Recorder`]), so they come for free with each transport. A session holds two
//! channels: the control channel (the serial console) for setup and recovery, and the
//! channel under test for the case's steps (see [`crate::session::Session`]).

pub mod cmdstream;
pub mod console;
pub mod framing;
pub mod net;
pub mod rest;
pub mod rfc2217;
pub mod serial;
pub mod terminal;

use crate::code::ResultCode;
use crate::model::{Direction, TranscriptEntry};
use crate::transport::Transport;
use std::time::{Duration, Instant};

/// A command for the module.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The command line, without line end.
    pub line: &'a str,
    /// Data that follows the command (for `stream_write`, `file_create`).
    pub data: Option<&'a [u8]>,
    /// How long to wait for the complete reply.
    pub timeout: Duration,
}

/// A log message the module printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The level digit of the `L` header, when the transport carries one.
    pub level: Option<u8>,
    /// The message, without line end.
    pub text: String,
    /// When it arrived, since the request was sent.
    pub at: Duration,
}

/// When the parts of a reply arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub sent: Instant,
    /// First byte of the reply, since `sent`.
    pub first_byte: Option<Duration>,
    /// The reply complete, since `sent`.
    pub total: Duration,
}

/// The module's answer to a [`Request`].
#[derive(Clone, Debug)]
pub struct Reply {
    pub code: ResultCode,
    /// The body as the module sent it (line ends included).
    pub body: Vec<u8>,
    /// Log messages that arrived while the command ran.
    pub logs: Vec<LogLine>,
    pub timing: Timing,
}

impl Reply {
    /// The body as spec tables compare it: `\r\n` as `\n`, the final line end removed.
    pub fn text(&self) -> String {
        normalize_body(&self.body)
    }
}

/// Turns a body into the text spec tables compare: lossy UTF-8, CRLF as LF, no final LF.
pub fn normalize_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    text.strip_suffix('\n').map(str::to_string).unwrap_or(text)
}

/// Why a channel could not deliver a reply.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The module did not answer in time (the link itself is still there).
    #[error("no complete reply to `{command}` within {waited:?} (received so far: {partial})")]
    Timeout { command: String, waited: Duration, partial: String },
    /// The module sent something that cannot be a reply.
    #[error("malformed reply to `{command}`: {reason} (bytes: {bytes})")]
    Malformed { command: String, reason: String, bytes: String },
    /// The link failed: port gone, I/O error, the module process died.
    #[error("link {link} failed: {source}")]
    Link {
        link: String,
        #[source]
        source: std::io::Error,
    },
    /// The run was interrupted (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
    /// The transport cannot do this (a raw byte step over REST).
    #[error("the {transport} transport does not support {what}")]
    Unsupported { transport: Transport, what: &'static str },
}

impl ChannelError {
    /// Whether the fault lies with the infrastructure (link, harness) rather than with what
    /// the module answered.
    pub fn is_infrastructure(&self) -> bool {
        matches!(self, Self::Link { .. } | Self::Interrupted | Self::Unsupported { .. })
    }
}

/// Raw bytes to and from the module, for transports that are a byte stream.
pub trait RawLink {
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ChannelError>;
    /// Reads until `done` accepts the bytes read so far or `timeout` passes; returns what
    /// was read either way (the caller judges).
    fn read_raw(
        &mut self,
        done: &mut dyn FnMut(&[u8]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, ChannelError>;
}

/// The console format a channel reads replies in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleFormat {
    #[default]
    Machine,
    Human,
}

/// A way of talking to a module.
pub trait Channel {
    /// Which transport this is.
    fn transport(&self) -> Transport;
    /// What the channel is connected to, for reports (`/dev/pts/3`).
    fn endpoint(&self) -> String;
    /// Sends a command and waits for its reply.
    fn execute(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError>;
    /// Brings the module's console to `format` and discards stale output, e.g. after a
    /// reboot or raw bytes. Waits up to `timeout` for the module to answer.
    fn resync(&mut self, format: ConsoleFormat, timeout: Duration) -> Result<(), ChannelError>;
    /// Raw byte access, where the transport has it.
    fn raw(&mut self) -> Option<&mut dyn RawLink>;
    /// Ends the channel's own connection and waits up to `timeout` until the module closed
    /// its side too: what it does once a client is gone has happened then (the remote
    /// terminal gives the serial console its commands back). Nothing for a channel without
    /// a connection of its own.
    fn close(&mut self, timeout: Duration) {
        let _ = timeout;
    }
}

pub use crate::text::escape_bytes;

/// A boxed channel is a channel (a session's channel under test is chosen at run time).
impl<C: Channel + ?Sized> Channel for Box<C> {
    fn transport(&self) -> Transport {
        (**self).transport()
    }

    fn endpoint(&self) -> String {
        (**self).endpoint()
    }

    fn execute(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        (**self).execute(request)
    }

    fn resync(&mut self, format: ConsoleFormat, timeout: Duration) -> Result<(), ChannelError> {
        (**self).resync(format, timeout)
    }

    fn raw(&mut self) -> Option<&mut dyn RawLink> {
        (**self).raw()
    }

    fn close(&mut self, timeout: Duration) {
        (**self).close(timeout);
    }
}

/// Middleware: records every exchange of the wrapped channel with timestamps.
#[derive(Debug)]
pub struct Recorder<C> {
    inner: C,
    epoch: Instant,
    entries: Vec<TranscriptEntry>,
    /// Put before each entry's text (`[rest] `), when a transcript merges two channels.
    label: Option<String>,
}

impl<C: Channel> Recorder<C> {
    pub fn new(inner: C) -> Self {
        Self { inner, epoch: Instant::now(), entries: Vec::new(), label: None }
    }

    /// A recorder whose entries say which channel they are from (`[rest] get wlan.ssid`).
    pub fn labelled(inner: C, label: impl Into<String>) -> Self {
        Self { label: Some(label.into()), ..Self::new(inner) }
    }

    /// Starts a new transcript (times count from now) and returns the previous one.
    pub fn restart(&mut self) -> Vec<TranscriptEntry> {
        self.restart_at(Instant::now())
    }

    /// Starts a new transcript whose times count from `epoch` (shared by the recorders of
    /// one session, so their transcripts merge by time) and returns the previous one.
    pub fn restart_at(&mut self, epoch: Instant) -> Vec<TranscriptEntry> {
        self.epoch = epoch;
        std::mem::take(&mut self.entries)
    }

    /// Adds a remark of the harness.
    pub fn note(&mut self, text: impl Into<String>) {
        self.push_at(Instant::now(), Direction::Note, text.into());
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    fn push_at(&mut self, at: Instant, dir: Direction, text: String) {
        let t_ms = at.saturating_duration_since(self.epoch).as_secs_f64() * 1000.0;
        let text = match &self.label {
            Some(label) => format!("[{label}] {text}"),
            None => text,
        };
        self.entries.push(TranscriptEntry { t_ms, dir, text });
    }
}

impl<C: Channel> Channel for Recorder<C> {
    fn transport(&self) -> Transport {
        self.inner.transport()
    }

    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    fn execute(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        let sent = Instant::now();
        let mut tx = request.line.to_string();
        if let Some(data) = request.data {
            tx.push_str(&format!(" <+{} data bytes: {}>", data.len(), escape_bytes(data)));
        }
        self.push_at(sent, Direction::Tx, tx);
        let result = self.inner.execute(request);
        match &result {
            Ok(reply) => {
                for log in &reply.logs {
                    self.push_at(sent + log.at, Direction::Rx, format!("[log] {}", log.text));
                }
                let text = format!("[{}] {}", reply.code.0, escape_bytes(&reply.body));
                self.push_at(sent + reply.timing.total, Direction::Rx, text);
            }
            Err(e) => self.push_at(Instant::now(), Direction::Note, format!("error: {e}")),
        }
        result
    }

    fn resync(&mut self, format: ConsoleFormat, timeout: Duration) -> Result<(), ChannelError> {
        self.note(format!("resync to {format:?} format"));
        let result = self.inner.resync(format, timeout);
        if let Err(e) = &result {
            self.note(format!("resync failed: {e}"));
        }
        result
    }

    fn raw(&mut self) -> Option<&mut dyn RawLink> {
        self.inner.raw()?;
        Some(self)
    }
}

impl<C: Channel> RawLink for Recorder<C> {
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        let transport = self.inner.transport();
        if self.inner.raw().is_none() {
            return Err(ChannelError::Unsupported { transport, what: "raw bytes" });
        }
        self.push_at(Instant::now(), Direction::Tx, escape_bytes(bytes));
        match self.inner.raw() {
            Some(raw) => raw.write_raw(bytes),
            None => Err(ChannelError::Unsupported { transport, what: "raw bytes" }),
        }
    }

    fn read_raw(
        &mut self,
        done: &mut dyn FnMut(&[u8]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, ChannelError> {
        let transport = self.inner.transport();
        let result = match self.inner.raw() {
            Some(raw) => raw.read_raw(done, timeout),
            None => Err(ChannelError::Unsupported { transport, what: "raw bytes" }),
        };
        if let Ok(bytes) = &result {
            self.push_at(Instant::now(), Direction::Rx, escape_bytes(bytes));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module that answers every command with its own line: enough to see what the
    /// recorder writes down.
    struct Parrot;

    impl Channel for Parrot {
        fn transport(&self) -> Transport {
            Transport::Rest
        }
        fn endpoint(&self) -> String {
            "memory".into()
        }
        fn execute(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
            let timing = Timing { sent: Instant::now(), first_byte: None, total: Duration::ZERO };
            let body = format!("{}\r\n", request.line).into_bytes();
            Ok(Reply { code: ResultCode(0), body, logs: Vec::new(), timing })
        }
        fn resync(&mut self, _: ConsoleFormat, _: Duration) -> Result<(), ChannelError> {
            Ok(())
        }
        fn raw(&mut self) -> Option<&mut dyn RawLink> {
            None
        }
    }

    #[test]
    fn a_labelled_recorder_over_a_boxed_channel_names_its_lines() {
        let boxed: Box<dyn Channel + Send> = Box::new(Parrot);
        let mut rec = Recorder::labelled(boxed, "rest");
        assert_eq!(rec.transport(), Transport::Rest);
        let request = Request { line: "get wlan.ssid", data: None, timeout: Duration::ZERO };
        assert_eq!(rec.execute(&request).expect("answers").text(), "get wlan.ssid");
        assert!(rec.raw().is_none(), "no raw access through the recorder either");
        let e = RawLink::write_raw(&mut rec, b"x").expect_err("no raw access");
        assert_eq!(e.to_string(), "the rest transport does not support raw bytes");
        let texts: Vec<String> = rec.restart().into_iter().map(|e| e.text).collect();
        assert_eq!(texts, ["[rest] get wlan.ssid", "[rest] [0] get wlan.ssid\\r\\n"]);
    }

    #[test]
    fn normalizes_bodies() {
        assert_eq!(normalize_body(b"Set OK\r\n"), "Set OK");
        assert_eq!(normalize_body(b"a: 1\r\nb: 2\r\n"), "a: 1\nb: 2");
        assert_eq!(normalize_body(b""), "");
    }
}
