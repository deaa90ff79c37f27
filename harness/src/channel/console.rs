//! A module's console over any byte stream: what the serial channel and the remote terminal
//! channel share.
//!
//! The module frames its console alike on the UART and on a remote terminal connection
//! (`system.cmd.format`), so one reader serves both: machine format through the
//! [`Framer`](super::framing::Framer), human format by reading up to the prompt, the resync
//! to a format, and raw bytes. A transport supplies only the bytes ([`ByteLink`]). Reads are
//! done in short slices so a timeout or Ctrl-C is noticed promptly and nothing ever blocks
//! for long.

use super::framing::{Frame, Framer};
use super::{ChannelError, ConsoleFormat, LogLine, Reply, Request, Timing, escape_bytes};
use crate::code::ResultCode;
use std::time::{Duration, Instant};

/// How long one read of a link may wait before the caller looks at its deadline again.
pub const SLICE: Duration = Duration::from_millis(20);

/// A byte stream to a module's console.
pub trait ByteLink {
    /// Writes all of `bytes`.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), ChannelError>;
    /// Reads what arrives within about [`SLICE`] (possibly nothing); the end of the stream
    /// is a link error.
    fn read_slice(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError>;
    /// Reads whatever is waiting, without waiting for more.
    fn drain(&mut self) -> Result<Vec<u8>, ChannelError>;
}

/// A console on a [`ByteLink`]: commands and their replies, in the module's console format.
#[derive(Debug)]
pub struct Console<L> {
    link: L,
    framer: Framer,
    format: ConsoleFormat,
    /// Log lines read during a command that then timed out: they left the link, so they go
    /// with the next reply instead of being lost (a wait polling for them would never match).
    carried_logs: Vec<LogLine>,
}

impl<L: ByteLink> Console<L> {
    pub fn new(link: L) -> Self {
        Self {
            link,
            framer: Framer::new(),
            format: ConsoleFormat::Machine,
            carried_logs: Vec::new(),
        }
    }

    pub fn link(&self) -> &L {
        &self.link
    }

    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    /// The console is in `format` already (another channel on the same module console put
    /// it there): replies are read in it without sending anything.
    pub fn assume_format(&mut self, format: ConsoleFormat) {
        self.format = format;
    }

    /// The format replies are read in (set by [`Console::resync`]).
    pub fn format(&self) -> ConsoleFormat {
        self.format
    }

    /// Sends a command and waits for its reply, in the current format.
    pub fn execute(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        match self.format {
            ConsoleFormat::Machine => self.execute_machine(request),
            ConsoleFormat::Human => self.execute_human(request),
        }
    }

    fn execute_machine(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        // Log messages that arrived since the last reply (a link lost, an auto-join) belong
        // to the record; a stale response does not answer this command.
        let stale = self.link.drain()?;
        self.framer.push(&stale);
        let mut logs = std::mem::take(&mut self.carried_logs);
        while let Some(frame) = self.framer.next_frame() {
            if let Frame::Log { level, body } = frame {
                logs.push(LogLine {
                    level: Some(level),
                    text: super::normalize_body(&body),
                    at: Duration::ZERO,
                });
            }
        }
        self.framer.clear();
        let sent = Instant::now();
        self.send_command(request)?;
        let mut first_byte = None;
        let mut buf = [0u8; 4096];
        loop {
            while let Some(frame) = self.framer.next_frame() {
                match frame {
                    Frame::Response { code, body } => {
                        let timing = Timing { sent, first_byte, total: sent.elapsed() };
                        return Ok(Reply { code: ResultCode(code), body, logs, timing });
                    }
                    Frame::Log { level, body } => logs.push(LogLine {
                        level: Some(level),
                        text: super::normalize_body(&body),
                        at: sent.elapsed(),
                    }),
                    // Echo and prompts, when the module has them on.
                    Frame::Noise(_) => {}
                }
            }
            if sent.elapsed() >= request.timeout {
                self.carried_logs = logs;
                return Err(ChannelError::Timeout {
                    command: request.line.to_string(),
                    waited: request.timeout,
                    partial: escape_bytes(&self.framer.pending()),
                });
            }
            let n = self.link.read_slice(&mut buf)?;
            if n > 0 {
                first_byte.get_or_insert_with(|| sent.elapsed());
                self.framer.push(&buf[..n]);
            }
        }
    }

    fn execute_human(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        self.link.drain()?;
        let sent = Instant::now();
        self.send_command(request)?;
        let echo = format!("{}\r\n", request.line);
        let mut first_byte = None;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // The reply is complete when the prompt ends the output after the echo.
            let start = if got.starts_with(echo.as_bytes()) { echo.len() } else { 0 };
            if got.len() >= start + 2 && got.ends_with(b"> ") {
                let body = got[start..got.len() - 2].to_vec();
                let text = super::normalize_body(&body);
                let code = ResultCode::from_error_text(&text).unwrap_or(ResultCode::SUCCESS);
                let timing = Timing { sent, first_byte, total: sent.elapsed() };
                return Ok(Reply { code, body, logs: Vec::new(), timing });
            }
            if sent.elapsed() >= request.timeout {
                return Err(ChannelError::Timeout {
                    command: request.line.to_string(),
                    waited: request.timeout,
                    partial: escape_bytes(&got),
                });
            }
            let n = self.link.read_slice(&mut buf)?;
            if n > 0 {
                first_byte.get_or_insert_with(|| sent.elapsed());
                got.extend_from_slice(&buf[..n]);
            }
        }
    }

    fn send_command(&mut self, request: &Request<'_>) -> Result<(), ChannelError> {
        let mut bytes = Vec::with_capacity(request.line.len() + 2);
        bytes.extend_from_slice(request.line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        if let Some(data) = request.data {
            bytes.extend_from_slice(data);
        }
        self.link.write_all(&bytes)
    }

    /// Brings the console to `format` and discards stale output, sending the `set` again
    /// (a module that is rebooting misses it) until the answer comes or `timeout` passes.
    pub fn resync(&mut self, format: ConsoleFormat, timeout: Duration) -> Result<(), ChannelError> {
        /// The end of a module's boot banner.
        const BOOTED: &[u8] = b"[Ready]";
        let (command, done): (&[u8], &[u8]) = match format {
            ConsoleFormat::Machine => {
                (b"\r\nset system.cmd.format machine\r\n", b"R000008\r\nSet OK\r\n")
            }
            ConsoleFormat::Human => (b"\r\nset system.cmd.format human\r\n", b"Set OK\r\n> "),
        };
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        let mut sent = 0u32;
        loop {
            self.link.drain()?;
            self.link.write_all(command)?;
            sent += 1;
            let attempt = Instant::now();
            let mut got = Vec::new();
            // A module that is up answers within a fraction of this; one that is rebooting
            // gets the command again: soon after its boot ends (`[Ready]`) when the command
            // came while it was resetting and is lost, otherwise after this wait.
            let mut wait = Duration::from_millis(500);
            while attempt.elapsed() < wait {
                let n = self.link.read_slice(&mut buf)?;
                got.extend_from_slice(&buf[..n]);
                if got.windows(done.len()).any(|w| w == done) {
                    // Let a trailing prompt or log arrive, then throw it away. A command sent
                    // more than once may be answered more than once (a module that kept it
                    // through its boot): then wait for the link to fall quiet, so no second
                    // answer is taken for the next command's.
                    if sent > 1 {
                        self.drain_until_quiet(Duration::from_millis(50), Duration::from_secs(1))?;
                    } else {
                        std::thread::sleep(Duration::from_millis(5));
                        self.link.drain()?;
                    }
                    self.framer.clear();
                    self.format = format;
                    return Ok(());
                }
                if wait == Duration::from_millis(500)
                    && got.windows(BOOTED.len()).any(|w| w == BOOTED)
                {
                    wait = attempt.elapsed() + Duration::from_millis(50);
                }
            }
            seen.extend_from_slice(&got);
            if start.elapsed() >= timeout {
                let tail = &seen[seen.len().saturating_sub(200)..];
                return Err(ChannelError::Timeout {
                    command: String::from_utf8_lossy(command).trim().to_string(),
                    waited: timeout,
                    partial: escape_bytes(tail),
                });
            }
        }
    }

    /// Reads and drops bytes until none came for `quiet` (or `cap` passed).
    fn drain_until_quiet(&mut self, quiet: Duration, cap: Duration) -> Result<(), ChannelError> {
        let start = Instant::now();
        let mut last = Instant::now();
        let mut buf = [0u8; 4096];
        while last.elapsed() < quiet && start.elapsed() < cap {
            if self.link.read_slice(&mut buf)? > 0 {
                last = Instant::now();
            }
        }
        Ok(())
    }

    /// Writes raw bytes, dropping output that waits unread.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.framer.clear();
        self.link.drain()?;
        self.link.write_all(bytes)
    }

    /// Reads until `done` accepts the bytes so far or `timeout` passes.
    pub fn read_raw(
        &mut self,
        done: &mut dyn FnMut(&[u8]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, ChannelError> {
        let start = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !done(&got) && start.elapsed() < timeout {
            let n = self.link.read_slice(&mut buf)?;
            got.extend_from_slice(&buf[..n]);
        }
        Ok(got)
    }
}
