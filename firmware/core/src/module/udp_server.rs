//! The UDP server: `udp_server start|stop|read|write`, and where its replies go.

use super::*;
use sockets::parse_port;

impl Module {
    pub(super) fn udp_server(
        &mut self,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let bad = Some((ResultCode::BAD_ARGS, None));
        let server = self.streams.handles_of(StreamType::Udps).first().copied();
        let (want, sub) = match args[0].as_str() {
            "start" => (1..=2, 0),
            "stop" => (1..=1, 1),
            "read" => (2..=2, 2),
            "write" => (4..=4, 3),
            _ => return bad,
        };
        if args.len() < *want.start() {
            return Some((ResultCode::TOO_FEW_ARGS, None));
        }
        if args.len() > *want.end() {
            return Some((ResultCode::TOO_MANY_ARGS, None));
        }
        match sub {
            0 => {
                let port = match args.get(1).map(|p| parse_port(p)) {
                    Some(Some(p)) => p,
                    Some(None) => return bad,
                    None => self.cfg.udp_server.port,
                };
                if server.is_some() {
                    self.log(console::level::ERROR, "UDP server already running");
                    return Some((ResultCode::FAILED, None));
                }
                if self.streams.network_full() {
                    self.log(console::level::ERROR, "No free stream handles");
                    return Some((ResultCode::FAILED, None));
                }
                self.with_network(AfterUp::UdpServer(port), now);
                None
            }
            1 => {
                if let Some(h) = server {
                    self.close_stream(h, now);
                }
                Some((ResultCode::SUCCESS, Some("Success".to_string())))
            }
            2 => {
                let Some(size) = parse_size(&args[1]) else { return bad };
                let Some(h) = server else {
                    self.log(console::level::ERROR, "UDP server not running");
                    return Some((ResultCode::FAILED, None));
                };
                self.read(h, size, true, now)
            }
            _ => {
                let (Some(ip), Some(port)) = (vars::parse_ipv4(&args[1]), parse_port(&args[2]))
                else {
                    return bad;
                };
                self.write(WriteTarget::UdpClient((ip, port)), &args[3], now)
            }
        }
    }
    /// `udp.server.remote_host`:`udp.server.remote_port`, when both are set.
    pub(super) fn udp_server_default(&self) -> Option<Endpoint> {
        self.cfg.udp_server.remote
    }
}
