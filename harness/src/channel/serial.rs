//! The serial channel: a module's console over a serial port (or the simulated module's
//! pseudo-terminal), on `serialport`.
//!
//! Machine format is read with the [`Framer`](super::framing::Framer); human format by
//! reading up to the prompt. Reads are done in short slices so a timeout or Ctrl-C is
//! noticed promptly and nothing ever blocks for long.

use super::framing::{Frame, Framer};
use super::{
    Channel, ChannelError, ConsoleFormat, LogLine, RawLink, Reply, Request, Timing, escape_bytes,
};
use crate::code::ResultCode;
use crate::interrupt;
use crate::transport::Transport;
use serialport::{ClearBuffer, FlowControl, SerialPort, TTYPort};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one read waits before the loop looks at its deadline again.
const SLICE: Duration = Duration::from_millis(20);

/// How to open a serial port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialSettings {
    pub path: PathBuf,
    pub baud: u32,
    pub flow_control: FlowControl,
}

/// A module console on a serial port.
#[derive(Debug)]
pub struct SerialChannel {
    /// `None` once closed (a power cycle closes the port before the module loses power).
    port: Option<TTYPort>,
    path: String,
    framer: Framer,
    format: ConsoleFormat,
    /// Log lines read during a command that then timed out: they left the port, so they go
    /// with the next reply instead of being lost (a wait polling for them would never match).
    carried_logs: Vec<LogLine>,
}

fn link_error(path: &str, source: std::io::Error) -> ChannelError {
    ChannelError::Link { link: path.to_string(), source }
}

impl SerialChannel {
    /// Opens the port. A path that does not exist is an error at once, never a hang.
    pub fn open(settings: &SerialSettings) -> Result<Self, ChannelError> {
        let path = settings.path.display().to_string();
        if !settings.path.exists() {
            return Err(link_error(
                &path,
                std::io::Error::new(ErrorKind::NotFound, "no such serial port"),
            ));
        }
        let port = serialport::new(path.clone(), settings.baud)
            .flow_control(settings.flow_control)
            .timeout(SLICE)
            .open_native()
            .map_err(|e| link_error(&path, std::io::Error::other(e.to_string())))?;
        let _ = port.clear(ClearBuffer::All);
        Ok(Self {
            port: Some(port),
            path,
            framer: Framer::new(),
            format: ConsoleFormat::Machine,
            carried_logs: Vec::new(),
        })
    }

    /// Closes the port (others may open it now); every later use is a link error.
    pub fn close(&mut self) {
        self.port = None;
    }

    fn port(&mut self) -> Result<&mut TTYPort, ChannelError> {
        let path = self.path.clone();
        self.port.as_mut().ok_or_else(|| {
            link_error(&path, std::io::Error::new(ErrorKind::NotConnected, "port closed"))
        })
    }

    /// The port's path.
    pub fn path(&self) -> &Path {
        Path::new(&self.path)
    }

    /// The format replies are read in (set by [`Channel::resync`]).
    pub fn format(&self) -> ConsoleFormat {
        self.format
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        let path = self.path.clone();
        let port = self.port()?;
        port.write_all(bytes).map_err(|e| link_error(&path, e))?;
        port.flush().map_err(|e| link_error(&path, e))
    }

    /// Reads what arrives within one slice (possibly nothing).
    fn read_slice(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        if interrupt::requested() {
            return Err(ChannelError::Interrupted);
        }
        match self.port()?.read(buf) {
            Ok(0) => Err(link_error(
                &self.path,
                std::io::Error::new(ErrorKind::UnexpectedEof, "port closed"),
            )),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(link_error(&self.path, e)),
        }
    }

    /// Reads and discards whatever is waiting, without waiting for more.
    fn drain(&mut self) -> Result<Vec<u8>, ChannelError> {
        let mut stale = Vec::new();
        let mut buf = [0u8; 4096];
        while self.port()?.bytes_to_read().map_err(|e| link_error(&self.path, e.into()))? > 0 {
            let n = self.read_slice(&mut buf)?;
            if n == 0 {
                break;
            }
            stale.extend_from_slice(&buf[..n]);
        }
        Ok(stale)
    }

    fn execute_machine(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        // Log messages that arrived since the last reply (a link lost, an auto-join) belong
        // to the record; a stale response does not answer this command.
        let stale = self.drain()?;
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
            let n = self.read_slice(&mut buf)?;
            if n > 0 {
                first_byte.get_or_insert_with(|| sent.elapsed());
                self.framer.push(&buf[..n]);
            }
        }
    }

    fn execute_human(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        self.drain()?;
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
            let n = self.read_slice(&mut buf)?;
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
        self.write(&bytes)
    }
}

impl Channel for SerialChannel {
    fn transport(&self) -> Transport {
        Transport::Serial
    }

    fn endpoint(&self) -> String {
        self.path.clone()
    }

    fn execute(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        match self.format {
            ConsoleFormat::Machine => self.execute_machine(request),
            ConsoleFormat::Human => self.execute_human(request),
        }
    }

    fn resync(&mut self, format: ConsoleFormat, timeout: Duration) -> Result<(), ChannelError> {
        let (command, done): (&[u8], &[u8]) = match format {
            ConsoleFormat::Machine => {
                (b"\r\nset system.cmd.format machine\r\n", b"R000008\r\nSet OK\r\n")
            }
            ConsoleFormat::Human => (b"\r\nset system.cmd.format human\r\n", b"Set OK\r\n> "),
        };
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        loop {
            self.drain()?;
            self.write(command)?;
            let attempt = Instant::now();
            let mut got = Vec::new();
            // A module that is up answers within a fraction of this; one that is rebooting
            // gets the command again.
            while attempt.elapsed() < Duration::from_millis(500) {
                let n = self.read_slice(&mut buf)?;
                got.extend_from_slice(&buf[..n]);
                if got.windows(done.len()).any(|w| w == done) {
                    // Let a trailing prompt or log arrive, then throw it away.
                    std::thread::sleep(Duration::from_millis(5));
                    self.drain()?;
                    self.framer.clear();
                    self.format = format;
                    return Ok(());
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

    fn raw(&mut self) -> Option<&mut dyn RawLink> {
        Some(self)
    }
}

impl RawLink for SerialChannel {
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.framer.clear();
        self.drain()?;
        self.write(bytes)
    }

    fn read_raw(
        &mut self,
        done: &mut dyn FnMut(&[u8]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, ChannelError> {
        let start = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !done(&got) && start.elapsed() < timeout {
            let n = self.read_slice(&mut buf)?;
            got.extend_from_slice(&buf[..n]);
        }
        Ok(got)
    }
}
