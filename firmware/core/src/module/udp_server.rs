//! The UDP server: `udp_server start|stop|read|write`, and where its replies go.
//!
//! A part of its own: [`UdpServer`] owns its settings (port, reply target, client lock) and
//! decides its commands through a [`Ctx`]; its socket is a UDPS stream of the stream table,
//! so reading, writing and closing it go through the module's stream path.

use super::*;
use crate::config::UdpServerConfig;
use ctx::Ctx;
use sockets::parse_port;

/// The UDP server service.
#[derive(Debug)]
pub(super) struct UdpServer {
    cfg: UdpServerConfig,
}

/// What `udp_server` asks of the module.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum UdpStep {
    Answer(ResultCode, Option<String>),
    /// Bring the network up, then open the socket on this port.
    Start(u16),
    /// Close the server's stream, if it runs.
    Stop(Option<usize>),
    /// Read from the server's stream (with the sender).
    Read {
        handle: usize,
        size: usize,
    },
    /// A write to this client; `size` as given (the data phase checks it).
    Write {
        to: Endpoint,
        size: String,
    },
}

impl UdpServer {
    pub(super) fn new(vars: &Vars) -> Self {
        Self { cfg: UdpServerConfig::from_vars(vars) }
    }

    /// `udp.server.*` changed.
    pub(super) fn configure(&mut self, vars: &Vars) {
        self.cfg = UdpServerConfig::from_vars(vars);
    }

    pub(super) fn cfg(&self) -> &UdpServerConfig {
        &self.cfg
    }

    /// `udp.server.remote_host`:`udp.server.remote_port`, when both are set: where replies
    /// go before any client sent.
    pub(super) fn default_remote(&self) -> Option<Endpoint> {
        self.cfg.remote
    }

    /// `udp.server.lock_client`: replies go to the first sender, not the latest.
    pub(super) fn lock_client(&self) -> bool {
        self.cfg.lock_client
    }

    pub(super) fn command(&self, args: &[String], ctx: &mut Ctx<'_>) -> UdpStep {
        let bad = UdpStep::Answer(ResultCode::BAD_ARGS, None);
        let server = ctx.streams.handles_of(StreamType::Udps).first().copied();
        let (want, sub) = match args[0].as_str() {
            "start" => (1..=2, 0),
            "stop" => (1..=1, 1),
            "read" => (2..=2, 2),
            "write" => (4..=4, 3),
            _ => return bad,
        };
        if args.len() < *want.start() {
            return UdpStep::Answer(ResultCode::TOO_FEW_ARGS, None);
        }
        if args.len() > *want.end() {
            return UdpStep::Answer(ResultCode::TOO_MANY_ARGS, None);
        }
        match sub {
            0 => {
                let port = match args.get(1).map(|p| parse_port(p)) {
                    Some(Some(p)) => p,
                    Some(None) => return bad,
                    None => self.cfg.port,
                };
                if server.is_some() {
                    ctx.log(console::level::ERROR, "UDP server already running");
                    return UdpStep::Answer(ResultCode::FAILED, None);
                }
                if ctx.streams.network_full() {
                    ctx.log(console::level::ERROR, "No free stream handles");
                    return UdpStep::Answer(ResultCode::FAILED, None);
                }
                UdpStep::Start(port)
            }
            1 => UdpStep::Stop(server),
            2 => {
                let Some(size) = parse_size(&args[1]) else { return bad };
                let Some(handle) = server else {
                    ctx.log(console::level::ERROR, "UDP server not running");
                    return UdpStep::Answer(ResultCode::FAILED, None);
                };
                UdpStep::Read { handle, size }
            }
            _ => {
                let (Some(ip), Some(port)) = (vars::parse_ipv4(&args[1]), parse_port(&args[2]))
                else {
                    return bad;
                };
                UdpStep::Write { to: (ip, port), size: args[3].clone() }
            }
        }
    }
}

impl Module {
    pub(super) fn udp_server(
        &mut self,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        match self.with_ctx(|s, ctx| s.udp_server.command(args, ctx)) {
            UdpStep::Answer(code, body) => Some((code, body)),
            UdpStep::Start(port) => {
                self.with_network(AfterUp::UdpServer(port), now);
                None
            }
            UdpStep::Stop(server) => {
                if let Some(h) = server {
                    self.close_stream(h, now);
                }
                Some((ResultCode::SUCCESS, Some("Success".to_string())))
            }
            UdpStep::Read { handle, size } => self.read(handle, size, true, now),
            UdpStep::Write { to, size } => self.write(WriteTarget::UdpClient(to), &size, now),
        }
    }

    /// Where the UDP server replies before any client sent (see [`UdpServer::default_remote`]).
    pub(super) fn udp_server_default(&self) -> Option<Endpoint> {
        self.svc.udp_server.default_remote()
    }
}
