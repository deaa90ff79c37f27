//! The serial channel: a module's console over a serial port (or the simulated module's
//! pseudo-terminal), on `serialport`, or over a serial port exported on the network
//! ([`NetLink`]: `tcp://`, `rfc2217://`). The console itself (formats, framing, resync, raw
//! bytes) is [`Console`], shared with the remote terminal channel; this file is the port.

use super::console::{ByteLink, Console, SLICE};
use super::net::{LineSettings, NetLink, NetPort};
use super::{Channel, ChannelError, ConsoleFormat, RawLink, Reply, Request};
use crate::interrupt;
use crate::transport::Transport;
use serialport::{ClearBuffer, FlowControl, SerialPort, TTYPort};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    console: Console<Port>,
}

/// The port: `None` once closed (a power cycle closes the port before the module loses
/// power).
#[derive(Debug)]
struct Port {
    port: Option<Open>,
    path: String,
}

/// An open port: local, or a connection to a serial server.
#[derive(Debug)]
enum Open {
    Tty(TTYPort),
    Net(Box<NetLink>),
}

fn link_error(path: &str, source: std::io::Error) -> ChannelError {
    ChannelError::Link { link: path.to_string(), source }
}

impl Port {
    fn port(&mut self) -> Result<&mut Open, ChannelError> {
        let path = self.path.clone();
        self.port.as_mut().ok_or_else(|| {
            link_error(&path, std::io::Error::new(ErrorKind::NotConnected, "port closed"))
        })
    }

    /// How many bytes a local port holds unread.
    fn tty_waiting(&mut self) -> Result<u32, ChannelError> {
        let path = self.path.clone();
        match self.port()? {
            Open::Tty(port) => port.bytes_to_read().map_err(|e| link_error(&path, e.into())),
            Open::Net(_) => Ok(0),
        }
    }
}

impl ByteLink for Port {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        let path = self.path.clone();
        let port = match self.port()? {
            Open::Tty(port) => port,
            Open::Net(link) => return link.write_all(bytes),
        };
        port.write_all(bytes).map_err(|e| link_error(&path, e))?;
        port.flush().map_err(|e| link_error(&path, e))
    }

    fn read_slice(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        if interrupt::requested() {
            return Err(ChannelError::Interrupted);
        }
        let port = match self.port()? {
            Open::Tty(port) => port,
            Open::Net(link) => return link.read_slice(buf),
        };
        match port.read(buf) {
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

    fn drain(&mut self) -> Result<Vec<u8>, ChannelError> {
        if let Open::Net(link) = self.port()? {
            return link.drain();
        }
        let mut stale = Vec::new();
        let mut buf = [0u8; 4096];
        while self.tty_waiting()? > 0 {
            let n = self.read_slice(&mut buf)?;
            if n == 0 {
                break;
            }
            stale.extend_from_slice(&buf[..n]);
        }
        Ok(stale)
    }
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
        Ok(Self { console: Console::new(Port { port: Some(Open::Tty(port)), path }) })
    }

    /// Connects to a serial port exported over the network, with the line settings of a
    /// local port (applied by the server for `rfc2217://`). A refused connection or a server
    /// that refuses the settings is a link error; `timeout` bounds the connect and each
    /// wait for the server's answers.
    pub fn connect(
        port: &NetPort,
        settings: &LineSettings,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        let link = NetLink::connect(port, settings, timeout)?;
        let path = link.name().to_string();
        Ok(Self { console: Console::new(Port { port: Some(Open::Net(Box::new(link))), path }) })
    }

    /// Closes the port (others may open it now); every later use is a link error.
    pub fn close(&mut self) {
        self.console.link_mut().port = None;
    }

    /// The port's path (the URL of a port on the network).
    pub fn path(&self) -> &Path {
        Path::new(&self.console.link().path)
    }

    /// The format replies are read in (set by [`Channel::resync`]).
    pub fn format(&self) -> ConsoleFormat {
        self.console.format()
    }
}

impl Channel for SerialChannel {
    fn transport(&self) -> Transport {
        Transport::Serial
    }

    fn endpoint(&self) -> String {
        self.console.link().path.clone()
    }

    fn execute(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        self.console.execute(request)
    }

    fn resync(&mut self, format: ConsoleFormat, timeout: Duration) -> Result<(), ChannelError> {
        self.console.resync(format, timeout)
    }

    fn raw(&mut self) -> Option<&mut dyn RawLink> {
        Some(self)
    }
}

impl RawLink for SerialChannel {
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.console.write_raw(bytes)
    }

    fn read_raw(
        &mut self,
        done: &mut dyn FnMut(&[u8]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, ChannelError> {
        self.console.read_raw(done, timeout)
    }
}
