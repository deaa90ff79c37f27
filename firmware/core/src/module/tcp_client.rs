//! The TCP, TLS and UDP clients of `tcp_client`, `tls_client` and `udp_client`: opening the
//! stream once the network is up and the host resolved, the TCP connect retry sequence (a TLS
//! client's TCP connection retries alike; a failed handshake does not: assumed, as the
//! chapter's TLS error example ends the command at once), and the events of the connection a
//! command is opening.

use super::*;
use conns::Open;
use sockets::Client;

impl Module {
    /// Opens a client stream to `to` once the network is up and the host resolved.
    pub(super) fn open_to(&mut self, client: Client, host: String, to: Endpoint, now: Instant) {
        if client == Client::Udp {
            let conn = self.open_conn(Open::Udp { local_port: 0 }, self.command_owner());
            let deadline = now + UDP_OPEN_TIMEOUT;
            self.pending = Some(Pending::Stream(StreamWait::UdpOpen {
                conn,
                deadline,
                kind: StreamType::Udpc,
                remote: Some(to),
            }));
        } else {
            self.tcp_attempt(host, to, 0, client == Client::Tls, now);
        }
    }
    pub(super) fn tcp_attempt(
        &mut self,
        host: String,
        to: Endpoint,
        tries: u32,
        tls: bool,
        now: Instant,
    ) {
        let config = if tls {
            // The certificate must carry the name the module connected to; an address is
            // not checked against it (assumed).
            let name = vars::parse_ipv4(&host).is_none().then(|| host.clone());
            match self.tls_client_config(name) {
                Ok(config) => Some(config),
                Err(failure) => return self.tls_failed(failure, now),
            }
        } else {
            None
        };
        let local_port = self.svc.sockets.cfg().tcp_client.local_port;
        let conn = self.open_conn(Open::Tcp { to, local_port }, self.command_owner());
        if let Some(config) = config {
            self.svc.tls.client(conn, config);
        }
        let deadline = now + self.svc.sockets.cfg().tcp_client.connect_timeout;
        self.pending = Some(Pending::Stream(StreamWait::Connect {
            conn,
            deadline,
            host,
            to,
            tries: tries + 1,
            waiting: false,
            tls,
        }));
    }
    /// The TLS handshake failed: the chapter's error line, and the command fails.
    fn tls_failed(&mut self, failure: crate::tls::TlsFailure, now: Instant) {
        self.log(console::level::ERROR, &failure.to_string());
        self.log(console::level::STATUS, "[Open failed]");
        self.finish(ResultCode::FAILED, None, now);
    }
    /// A connect attempt failed: wait and retry, or give up.
    pub(super) fn tcp_retry(
        &mut self,
        host: String,
        to: Endpoint,
        tries: u32,
        tls: bool,
        now: Instant,
    ) {
        if tries > self.svc.sockets.cfg().tcp_client.retries {
            self.log(console::level::STATUS, "[Open failed]");
            return self.finish(ResultCode::FAILED, None, now);
        }
        let period = self.svc.sockets.cfg().tcp_client.retry_period;
        self.log(console::level::INFO, &format!("Retrying in {} ms", period.as_millis()));
        let deadline = now + period;
        self.pending = Some(Pending::Stream(StreamWait::Connect {
            conn: ConnId::NONE,
            deadline,
            host,
            to,
            tries,
            waiting: true,
            tls,
        }));
    }
    /// An event for a connection a command is opening: the stream it answers, or a failed
    /// attempt.
    pub(super) fn command_conn_event(&mut self, event: &NetEvent, now: Instant) {
        let reason = match event {
            NetEvent::ConnFailed { reason, .. } => Some(*reason),
            _ => None,
        };
        match (event, self.pending.clone()) {
            (
                NetEvent::TcpConnected { conn, local_port },
                Some(Pending::Stream(StreamWait::Connect {
                    conn: want,
                    to,
                    waiting: false,
                    tls,
                    ..
                })),
            ) if want == *conn => {
                let local = (self.local_ip(), *local_port);
                let kind = if tls { StreamType::Tlsc } else { StreamType::Tcpc };
                let stream = Stream::new(kind, *conn, local, Some(to));
                match self.add_stream(stream, now) {
                    Some(h) => self.finish(ResultCode::SUCCESS, Some(&h.to_string()), now),
                    None => {
                        self.log(console::level::STATUS, "[Open failed]");
                        self.finish(ResultCode::FAILED, None, now);
                    }
                }
            }
            (
                NetEvent::UdpOpened { conn, local_port },
                Some(Pending::Stream(StreamWait::UdpOpen { conn: want, kind, remote, .. })),
            ) if want == *conn => {
                let local = (self.local_ip(), *local_port);
                match self.add_stream(Stream::new(kind, *conn, local, remote), now) {
                    Some(h) => self.finish(ResultCode::SUCCESS, Some(&h.to_string()), now),
                    None => {
                        if kind == StreamType::Udpc {
                            self.log(console::level::STATUS, "[Open failed]");
                        }
                        self.finish(ResultCode::FAILED, None, now);
                    }
                }
            }
            (
                NetEvent::Closed { conn } | NetEvent::ConnFailed { conn, .. },
                Some(Pending::Stream(StreamWait::Connect {
                    conn: want,
                    host,
                    to,
                    tries,
                    waiting: false,
                    tls,
                    ..
                })),
            ) if want == *conn => {
                if let Some(crate::net::ConnFailure::Tls(failure)) = reason {
                    return self.tls_failed(failure, now);
                }
                let why = reason.map_or("closed", conn_failure_text);
                self.log(console::level::INFO, &format!("Connect failed: {why}"));
                self.tcp_retry(host, to, tries, tls, now);
            }
            (
                NetEvent::Closed { conn } | NetEvent::ConnFailed { conn, .. },
                Some(Pending::Stream(StreamWait::UdpOpen { conn: want, kind, .. })),
            ) if want == *conn => {
                let why = reason.map_or("closed", conn_failure_text);
                self.log(console::level::ERROR, &format!("UDP open failed: {why}"));
                if kind == StreamType::Udpc {
                    self.log(console::level::STATUS, "[Open failed]");
                }
                self.finish(ResultCode::FAILED, None, now);
            }
            // Not what the command waits for any more: not wanted.
            (NetEvent::TcpConnected { conn, .. } | NetEvent::UdpOpened { conn, .. }, _) => {
                self.close_conn(*conn);
            }
            _ => {}
        }
    }
}
