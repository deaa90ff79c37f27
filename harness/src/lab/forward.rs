//! A forward from a loopback port of the host into a lab: a person opens the module's web
//! pages in their own browser (`cargo xtask lab forward 8080:80`, then
//! `http://127.0.0.1:8080/`).
//!
//! Each connection accepted on the host's loopback address gets its own connection to the
//! module, opened from a thread that entered the lab's namespace, and bytes are copied both
//! ways until either side closes. Only loopback is ever listened on: the lab stays reachable
//! from this host alone, and nothing the forward does leaves the host or the lab.

use super::LabError;
use super::netns::run_in_netns;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a connection to the module may take to open before the host side is closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the accept loop looks whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(50);

/// `[HOST:]PORT:MODULE_PORT`: where the host listens and the module's port it reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardSpec {
    /// A loopback address of the host and its port.
    pub listen: SocketAddr,
    /// The module's port (the module's address is looked up for each connection).
    pub module_port: u16,
}

/// Why a forward specification is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ForwardSpecError {
    #[error("`{0}` is not `[HOST:]PORT:MODULE_PORT` (e.g. `8080:80` or `127.0.0.1:8080:80`)")]
    Shape(String),
    #[error("`{port}` in `{spec}` is not a port number (1-65535; the host's may be 0: any)")]
    Port { spec: String, port: String },
    #[error("`{host}` in `{spec}` is not an IP address")]
    Host { spec: String, host: String },
    #[error(
        "`{host}` in `{spec}` is not a loopback address: the lab is reachable from this host \
         only (use 127.0.0.1 or ::1)"
    )]
    NotLoopback { spec: String, host: IpAddr },
}

impl FromStr for ForwardSpec {
    type Err = ForwardSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        // The host's port may be 0 (the system picks one, which the forward reports).
        let port = |p: &str, zero_ok: bool| match p.parse::<u16>() {
            Ok(n) if n != 0 || zero_ok => Ok(n),
            _ => Err(ForwardSpecError::Port { spec: spec.to_string(), port: p.to_string() }),
        };
        // The module's port is after the last colon; an IPv6 host may be in brackets.
        let (front, module_port) =
            spec.rsplit_once(':').ok_or_else(|| ForwardSpecError::Shape(spec.to_string()))?;
        let (host, listen_port) = match front.rsplit_once(':') {
            Some((host, p)) => (Some(host.trim_start_matches('[').trim_end_matches(']')), p),
            None => (None, front),
        };
        let host: IpAddr = match host {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(h) => h
                .parse()
                .map_err(|_| ForwardSpecError::Host { spec: spec.to_string(), host: h.into() })?,
        };
        if !host.is_loopback() {
            return Err(ForwardSpecError::NotLoopback { spec: spec.to_string(), host });
        }
        Ok(ForwardSpec {
            listen: SocketAddr::new(host, port(listen_port, true)?),
            module_port: port(module_port, false)?,
        })
    }
}

/// A running forward; it stops when dropped (or [`Forward::stop`]), closing its listener.
/// Connections already open run on until one side closes them (the lab going away does).
#[derive(Debug)]
pub struct Forward {
    spec: ForwardSpec,
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

impl Forward {
    /// Listens on `spec.listen` and forwards each connection to `module():spec.module_port`
    /// inside the namespace at `netns` (`/run/netns/<name>`). `module` is asked for each
    /// connection, so a module that got a new address is still reached; `None` (no address
    /// yet) closes the host side at once.
    pub fn start(
        spec: ForwardSpec,
        netns: &Path,
        module: impl Fn() -> Option<Ipv4Addr> + Send + 'static,
    ) -> Result<Forward, LabError> {
        let listener = TcpListener::bind(spec.listen).map_err(|source| LabError::Io {
            what: format!("listen on {}", spec.listen),
            source,
        })?;
        let local = listener.local_addr().map_err(|source| LabError::Io {
            what: format!("address of the listener on {}", spec.listen),
            source,
        })?;
        listener.set_nonblocking(true).map_err(|source| LabError::Io {
            what: format!("non-blocking listener on {local}"),
            source,
        })?;
        // Fail now, not on the first connection, if the namespace cannot be entered.
        let netns = netns.to_path_buf();
        run_in_netns(&netns, || ())?;
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let accept = {
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::Builder::new()
                .name(format!("forward {local}"))
                .spawn(move || accept_loop(listener, netns, spec.module_port, module, stop, served))
                .map_err(|source| LabError::Io { what: "start the forward".into(), source })?
        };
        Ok(Forward { spec, local, stop, served, accept: Some(accept) })
    }

    /// The address the host listens on (the port is the one asked for, or the one the
    /// system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn spec(&self) -> ForwardSpec {
        self.spec
    }

    /// How many connections reached the module so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    /// Stops listening (open connections run on until they close).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: TcpListener,
    netns: PathBuf,
    port: u16,
    module: impl Fn() -> Option<Ipv4Addr>,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::Relaxed) {
        let host = match listener.accept() {
            Ok((host, _)) => host,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(STOP_POLL);
                continue;
            }
            Err(e) => {
                eprintln!("forward: accept on {:?} failed: {e}", listener.local_addr());
                std::thread::sleep(STOP_POLL);
                continue;
            }
        };
        let Some(addr) = module() else {
            eprintln!("forward: the module has no address yet; connection closed");
            continue;
        };
        let target = SocketAddr::V4(SocketAddrV4::new(addr, port));
        let module_side =
            run_in_netns(&netns, || TcpStream::connect_timeout(&target, CONNECT_TIMEOUT));
        match module_side {
            Ok(Ok(module_side)) => {
                served.fetch_add(1, Ordering::Relaxed);
                splice(host, module_side);
            }
            Ok(Err(e)) => eprintln!("forward: cannot reach the module at {target}: {e}"),
            Err(e) => eprintln!("forward: cannot enter the lab: {e}"),
        }
    }
}

/// Copies both ways on two threads; each direction passes the end of its input on as a
/// half close, so a request/response exchange ends as it would without the forward.
fn splice(host: TcpStream, module: TcpStream) {
    let (Ok(host2), Ok(module2)) = (host.try_clone(), module.try_clone()) else { return };
    let _ = host.set_nonblocking(false);
    std::thread::spawn(move || pump(host, module));
    std::thread::spawn(move || pump(module2, host2));
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("8080:80", "127.0.0.1:8080", 80)]
    #[case("127.0.0.2:9000:2000", "127.0.0.2:9000", 2000)]
    #[case("[::1]:8443:443", "[::1]:8443", 443)]
    #[case("0:80", "127.0.0.1:0", 80)]
    #[case("::1:8080:80", "[::1]:8080", 80)]
    fn specs_parse(#[case] spec: &str, #[case] listen: &str, #[case] module_port: u16) {
        let parsed: ForwardSpec = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(parsed.listen, listen.parse::<SocketAddr>().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(parsed.module_port, module_port);
    }

    #[rstest]
    #[case("80", "is not `[HOST:]PORT:MODULE_PORT`")]
    #[case("8080:0", "`0` in `8080:0` is not a port number")]
    #[case("x:80", "`x` in `x:80` is not a port number")]
    #[case("8080:70000", "`70000` in `8080:70000` is not a port number")]
    #[case("0.0.0.0:8080:80", "is not a loopback address")]
    #[case("10.77.0.1:8080:80", "is not a loopback address")]
    #[case("localhost:8080:80", "`localhost` in `localhost:8080:80` is not an IP address")]
    fn bad_specs_say_what_is_wrong(#[case] spec: &str, #[case] message: &str) {
        let err = spec.parse::<ForwardSpec>().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(message), "{spec}: got `{err}`, want `{message}`");
    }
}
