//! The remote terminal channel: the module's console over a TCP (telnet) connection to
//! `remote_terminal.port`.
//!
//! The module frames the remote terminal's replies as it frames the serial console's, so the
//! channel is the same [`Console`] on a TCP stream instead of a port; transcripts come from
//! the [`Recorder`](super::Recorder) around it. The stream is opened by the caller (the
//! session opens it from inside the lab's network namespace: a socket created there keeps
//! working from any thread), and the password, if the module asks for one, is given at
//! [`TerminalChannel::connect`]. The module sends no telnet negotiation, so none is answered.

use super::console::{ByteLink, Console, SLICE};
use super::{Channel, ChannelError, ConsoleFormat, RawLink, Reply, Request, escape_bytes};
use crate::interrupt;
use crate::transport::Transport;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// What the module sends first when it wants a password.
pub const PASSWORD_PROMPT: &[u8] = b"Password: ";
/// Its answer to the right password.
pub const PASSWORD_OK: &[u8] = b"Password OK\r\n";

/// A module console over a remote terminal connection.
#[derive(Debug)]
pub struct TerminalChannel {
    console: Console<Tcp>,
}

/// The TCP stream and its name for messages.
#[derive(Debug)]
struct Tcp {
    stream: TcpStream,
    name: String,
}

impl Tcp {
    fn error(&self, source: std::io::Error) -> ChannelError {
        ChannelError::Link { link: self.name.clone(), source }
    }
}

impl ByteLink for Tcp {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.stream.write_all(bytes).map_err(|e| self.error(e))
    }

    fn read_slice(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        if interrupt::requested() {
            return Err(ChannelError::Interrupted);
        }
        match self.stream.read(buf) {
            Ok(0) => Err(self.error(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "the module closed the connection",
            ))),
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Ok(0),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(self.error(e)),
        }
    }

    fn drain(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.stream.set_nonblocking(true).map_err(|e| self.error(e))?;
        let mut stale = Vec::new();
        let mut buf = [0u8; 4096];
        let result = loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    break Err(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the module closed the connection",
                    ));
                }
                Ok(n) => stale.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let restored = self.stream.set_nonblocking(false);
        result.and(restored).map_err(|e| self.error(e))?;
        Ok(stale)
    }
}

impl TerminalChannel {
    /// Takes a connected stream to the module's remote terminal; when `password` is given,
    /// waits up to `timeout` for the module's prompt and logs in. `format`: the module's
    /// console format now (the terminal frames as the serial console does). `prompt`: the
    /// module has prompts on, so it greets a client with one, which is read here.
    pub fn connect(
        stream: TcpStream,
        password: Option<&str>,
        format: ConsoleFormat,
        prompt: bool,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        let name = match stream.peer_addr() {
            Ok(addr) => format!("terminal {addr}"),
            Err(_) => "terminal".to_string(),
        };
        let mut link = Tcp { stream, name };
        let setup = |tcp: &Tcp| -> std::io::Result<()> {
            tcp.stream.set_nodelay(true)?;
            tcp.stream.set_read_timeout(Some(SLICE))?;
            tcp.stream.set_write_timeout(Some(Duration::from_secs(10)))
        };
        setup(&link).map_err(|e| link.error(e))?;
        if let Some(password) = password {
            read_until(&mut link, PASSWORD_PROMPT, "(the password prompt)", timeout)?;
            link.write_all(format!("{password}\r\n").as_bytes())?;
            read_until(&mut link, PASSWORD_OK, "(the password)", timeout)?;
        }
        if prompt {
            read_until(&mut link, b"> ", "(the first prompt)", timeout)?;
        }
        let mut console = Console::new(link);
        console.assume_format(format);
        Ok(Self { console })
    }
}

/// Reads until the bytes end with `want`; what came instead (the connection closed, or
/// `timeout`) is in the error.
fn read_until(
    link: &mut Tcp,
    want: &[u8],
    what: &str,
    timeout: Duration,
) -> Result<(), ChannelError> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.ends_with(want) {
        if start.elapsed() >= timeout {
            return Err(ChannelError::Timeout {
                command: what.to_string(),
                waited: timeout,
                partial: escape_bytes(&got),
            });
        }
        match link.read_slice(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(ChannelError::Link { .. }) => {
                let said = escape_bytes(&got);
                let text = format!("the module closed the connection after `{said}`");
                return Err(link.error(std::io::Error::new(ErrorKind::UnexpectedEof, text)));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Channel for TerminalChannel {
    fn transport(&self) -> Transport {
        Transport::Terminal
    }

    fn endpoint(&self) -> String {
        self.console.link().name.clone()
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

    /// Sends our FIN and reads (discarding) until the module's: by then it has ended the
    /// client and its serial console takes commands again.
    fn close(&mut self, timeout: Duration) {
        let stream = &mut self.console.link_mut().stream;
        if stream.shutdown(std::net::Shutdown::Write).is_err() {
            return;
        }
        let deadline = std::time::Instant::now() + timeout;
        let mut buf = [0u8; 1024];
        while std::time::Instant::now() < deadline {
            match stream.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                    ) => {}
                Err(_) => return,
            }
        }
    }
}

impl RawLink for TerminalChannel {
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

/// A channel under test that is not connected (between cases, while the control channel
/// sets the module up): every use is a link error.
#[derive(Debug)]
pub struct Unconnected(pub Transport);

impl Unconnected {
    fn error(&self) -> ChannelError {
        let source = std::io::Error::new(ErrorKind::NotConnected, "not connected");
        ChannelError::Link { link: self.0.name().to_string(), source }
    }
}

impl Channel for Unconnected {
    fn transport(&self) -> Transport {
        self.0
    }

    fn endpoint(&self) -> String {
        format!("{} (not connected)", self.0)
    }

    fn execute(&mut self, _: &Request<'_>) -> Result<Reply, ChannelError> {
        Err(self.error())
    }

    fn resync(&mut self, _: ConsoleFormat, _: Duration) -> Result<(), ChannelError> {
        Err(self.error())
    }

    fn raw(&mut self) -> Option<&mut dyn RawLink> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const MACHINE: ConsoleFormat = ConsoleFormat::Machine;
    const SECS_5: Duration = Duration::from_secs(5);

    /// A module stand-in on loopback: asks for a password, then answers `get wlan.ssid` in
    /// machine format with a log line before the response.
    fn module(password: &'static str) -> (std::thread::JoinHandle<Vec<u8>>, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let thread = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.write_all(PASSWORD_PROMPT).expect("prompt");
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while !got.ends_with(b"\r\n") {
                let n = s.read(&mut buf).expect("read");
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&buf[..n]);
            }
            if got != format!("{password}\r\n").as_bytes() {
                let _ = s.write_all(b"Invalid password\r\n");
                return got;
            }
            s.write_all(PASSWORD_OK).expect("ok");
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                let n = s.read(&mut buf).expect("read");
                if n == 0 {
                    return line;
                }
                line.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"L300005\r\nhey\r\nR000005\r\nlab\r\n").expect("reply");
            line
        });
        (thread, addr)
    }

    #[test]
    fn logs_in_and_reads_replies_as_the_console_frames_them() {
        let (module, addr) = module("s3cret");
        let stream = TcpStream::connect(addr).expect("connect");
        let mut channel = TerminalChannel::connect(
            stream,
            Some("s3cret"),
            MACHINE,
            false,
            Duration::from_secs(5),
        )
        .expect("in");
        assert_eq!(channel.transport(), Transport::Terminal);
        assert!(channel.endpoint().starts_with("terminal 127.0.0.1:"), "{}", channel.endpoint());
        let request =
            Request { line: "get wlan.ssid", data: None, timeout: Duration::from_secs(5) };
        let reply = channel.execute(&request).expect("reply");
        assert_eq!(reply.text(), "lab");
        assert_eq!(reply.logs.len(), 1);
        assert_eq!(reply.logs[0].text, "hey");
        assert_eq!(module.join().expect("module"), b"get wlan.ssid\r\n");
    }

    #[test]
    fn a_wrong_password_is_an_error_saying_what_came() {
        let (module, addr) = module("s3cret");
        let stream = TcpStream::connect(addr).expect("connect");
        let e = TerminalChannel::connect(stream, Some("nope"), MACHINE, false, SECS_5)
            .expect_err("refused");
        assert!(e.to_string().contains("Invalid password"), "{e}");
        module.join().expect("module");
    }

    #[test]
    fn an_unconnected_channel_says_so() {
        let mut channel = Unconnected(Transport::Terminal);
        let request = Request { line: "version", data: None, timeout: Duration::ZERO };
        let e = channel.execute(&request).expect_err("not connected");
        assert!(e.is_infrastructure());
        assert_eq!(e.to_string(), "link terminal failed: not connected");
    }
}
