//! The module's settings as typed values: each service's configuration, read from the
//! variables at boot and again when one of the variables it reads changes (`set`, `load`;
//! `factory_reset` reboots), never parsed again on use. Each service part owns its own
//! (`NetworkConfig`, `TcpServerConfig`, ...); [`Settings`] is what is still the module's. Every value was checked against its variable's bounds when it was set,
//! so reading cannot fail; a fallback only covers the impossible.

use crate::console::Format;
use crate::net::Ipv4;
use crate::time::Duration;
use crate::vars::{self, Var, Vars};
use crate::wlan;
use alloc::string::String;
use alloc::vec::Vec;

/// The settings that are still the module's own (each service part holds its own): the
/// console's framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub console: ConsoleConfig,
}

impl Settings {
    pub fn from_vars(vars: &Vars) -> Self {
        Self { console: ConsoleConfig::from_vars(vars) }
    }
}

/// What the stream commands read: `bus.command.*` and the TCP client's `tcp.client.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketsConfig {
    pub bus: BusConfig,
    pub tcp_client: TcpClientConfig,
}

impl SocketsConfig {
    pub fn from_vars(vars: &Vars) -> Self {
        Self { bus: BusConfig::from_vars(vars), tcp_client: TcpClientConfig::from_vars(vars) }
    }
}

/// A network interface a service names (`*_interface`, `network.default_interface`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    Default,
    Wlan,
    Softap,
}

impl Interface {
    fn parse(text: &str) -> Self {
        match text {
            "wlan" => Self::Wlan,
            "softap" => Self::Softap,
            _ => Self::Default,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Wlan => "wlan",
            Self::Softap => "softap",
        }
    }

    /// The interface this one means, `default` resolved through `network.default_interface`.
    pub fn resolve(self, default: Interface) -> Interface {
        if self == Self::Default { default } else { self }
    }
}

/// `system.cmd.*`, `system.print_level`, `time.zone`: how the serial console frames output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub format: Format,
    pub buffered: bool,
    pub timestamp: Timestamp,
    /// `time.zone` as an offset in seconds.
    pub zone_offset: i64,
}

/// `system.cmd.timestamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timestamp {
    None,
    Utc,
    Local,
}

impl ConsoleConfig {
    fn from_vars(vars: &Vars) -> Self {
        let print_level = match vars.text(Var::SystemPrintLevel) {
            "all" => 255,
            n => n.parse().unwrap_or(255),
        };
        Self {
            format: Format {
                echo: vars.flag(Var::SystemCmdEcho),
                header: vars.flag(Var::SystemCmdHeaderEnabled),
                prompt: vars.flag(Var::SystemCmdPromptEnabled),
                print_level,
            },
            buffered: vars.flag(Var::SystemCmdBuffered),
            timestamp: match vars.text(Var::SystemCmdTimestamp) {
                "utc" => Timestamp::Utc,
                "local" => Timestamp::Local,
                _ => Timestamp::None,
            },
            zone_offset: crate::clock::zone_offset(vars.text(Var::TimeZone)).unwrap_or(0),
        }
    }
}

/// `bus.command.*`: the command buffers and timeouts of stream commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusConfig {
    pub read_timeout: Duration,
    pub rx_bufsize: usize,
    pub write_timeout: Duration,
    pub write_check: bool,
}

impl BusConfig {
    fn from_vars(vars: &Vars) -> Self {
        Self {
            read_timeout: Duration::from_millis(vars.num(Var::BusCommandReadTimeout)),
            rx_bufsize: usize::try_from(vars.num(Var::BusCommandRxBufsize)).unwrap_or(4096),
            write_timeout: Duration::from_millis(vars.num(Var::BusCommandWriteTimeout)),
            write_check: vars.flag(Var::BusCommandWriteCheckEnabled),
        }
    }
}

/// `bus.mode`, `bus.stream.*`: serial STREAM mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamModeConfig {
    /// `bus.mode` is `stream`: the next boot enters STREAM mode.
    pub stream_mode: bool,
    pub cmd_seq: Vec<u8>,
    pub flush_count: usize,
    pub flush_time: Duration,
    pub flush_time_reset: bool,
}

impl StreamModeConfig {
    pub fn from_vars(vars: &Vars) -> Self {
        Self {
            stream_mode: vars.text(Var::BusMode) == "stream",
            cmd_seq: vars.text(Var::BusStreamCmdSeq).as_bytes().to_vec(),
            flush_count: usize::try_from(vars.num(Var::BusStreamFlushCount)).unwrap_or(1460),
            flush_time: Duration::from_millis(vars.num(Var::BusStreamFlushTime)),
            flush_time_reset: vars.flag(Var::BusStreamFlushTimeReset),
        }
    }
}

/// What the network service reads: `wlan.*`, `network.dns.timeout`,
/// `network.default_interface`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    pub wlan: wlan::Config,
    pub dns: DnsConfig,
    /// `network.default_interface`: what `default` means in a service's `*_interface`.
    pub default_interface: Interface,
}

impl NetworkConfig {
    pub fn from_vars(vars: &Vars) -> Self {
        Self {
            wlan: wlan::Config::from_vars(vars),
            dns: DnsConfig { timeout: Duration::from_millis(vars.num(Var::NetworkDnsTimeout)) },
            default_interface: Interface::parse(vars.text(Var::NetworkDefaultInterface)),
        }
    }
}

/// `network.dns.*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    pub timeout: Duration,
}

/// A service's auto start: `*.auto_start`, `*.auto_interface`, and for clients the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoStart {
    pub enabled: bool,
    pub interface: Interface,
    /// The peer (clients): `*.remote_host` decoded, `*.remote_port`.
    pub host: String,
    pub port: u16,
}

impl AutoStart {
    fn client(vars: &Vars, start: Var, iface: Var, host: Var, port: Var) -> Self {
        Self {
            enabled: vars.flag(start),
            interface: Interface::parse(vars.text(iface)),
            host: vars::unescape_plain(vars.text(host)),
            port: port_of(vars, port),
        }
    }

    fn server(vars: &Vars, start: Var, iface: Var) -> Self {
        Self {
            enabled: vars.flag(start),
            interface: Interface::parse(vars.text(iface)),
            host: String::new(),
            port: 0,
        }
    }
}

fn port_of(vars: &Vars, var: Var) -> u16 {
    u16::try_from(vars.num(var)).unwrap_or(0)
}

/// `tcp.client.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpClientConfig {
    pub local_port: u16,
    pub connect_timeout: Duration,
    pub retries: u32,
    pub retry_period: Duration,
    pub auto_retries: u32,
    pub auto: AutoStart,
    /// `tcp.client.tls_enabled`: auto start opens a TLS client (TLSC).
    pub tls: bool,
}

impl TcpClientConfig {
    pub fn from_vars(vars: &Vars) -> Self {
        Self {
            local_port: port_of(vars, Var::TcpClientLocalPort),
            connect_timeout: Duration::from_millis(vars.num(Var::TcpClientConnectTimeout)),
            retries: u32::try_from(vars.num(Var::TcpClientRetries)).unwrap_or(3),
            retry_period: Duration::from_millis(vars.num(Var::TcpClientRetryPeriod)),
            auto_retries: u32::try_from(vars.num(Var::TcpClientAutoRetries)).unwrap_or(0),
            auto: AutoStart::client(
                vars,
                Var::TcpClientAutoStart,
                Var::TcpClientAutoInterface,
                Var::TcpClientRemoteHost,
                Var::TcpClientRemotePort,
            ),
            tls: vars.flag(Var::TcpClientTlsEnabled),
        }
    }
}

/// `tcp.server.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpServerConfig {
    pub port: u16,
    pub max_clients: usize,
    pub idle_timeout: Duration,
    pub auto: AutoStart,
    /// `tcp.server.tls_*`: the server's TLS (`tls_server`; auto start with TLS when enabled).
    pub tls: ServerTls,
}

impl TcpServerConfig {
    pub fn from_vars(vars: &Vars) -> Self {
        Self {
            port: port_of(vars, Var::TcpServerPort),
            max_clients: usize::try_from(vars.num(Var::TcpServerMaxClients)).unwrap_or(4),
            idle_timeout: Duration::from_secs(vars.num(Var::TcpServerIdleTimeout)),
            auto: AutoStart::server(vars, Var::TcpServerAutoStart, Var::TcpServerAutoInterface),
            tls: ServerTls {
                enabled: vars.flag(Var::TcpServerTlsEnabled),
                cert: vars::unescape_plain(vars.text(Var::TcpServerTlsCert)),
                key: vars::unescape_plain(vars.text(Var::TcpServerTlsKey)),
                verify_peer: vars.flag(Var::TcpServerTlsVerifyPeer),
            },
        }
    }
}

/// A server's TLS settings (`tcp.server.tls_*`, `http.server.tls_*`): its certificate and key
/// (file names), and whether clients must present a certificate the CA
/// (`network.tls.ca_cert`) signed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerTls {
    pub enabled: bool,
    pub cert: String,
    pub key: String,
    pub verify_peer: bool,
}

/// `network.tls.*`: the TLS client's certificates (file names) and the limits of every TLS
/// session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca_cert: String,
    /// `network.tls.ca_cert_verify_enabled`: check the server's certificate.
    pub verify: bool,
    pub client_cert: String,
    pub client_key: String,
    pub handshake_timeout: Duration,
    /// `network.tls.version`: `10`, `11`, `12` cap the version; `0` means the highest the
    /// module speaks (assumed).
    pub max_version: crate::tls::TlsVersion,
}

impl TlsSettings {
    pub fn from_vars(vars: &Vars) -> Self {
        use crate::tls::TlsVersion;
        let text = |var| vars::unescape_plain(vars.text(var));
        Self {
            ca_cert: text(Var::NetworkTlsCaCert),
            verify: vars.flag(Var::NetworkTlsCaCertVerifyEnabled),
            client_cert: text(Var::NetworkTlsClientCert),
            client_key: text(Var::NetworkTlsClientKey),
            handshake_timeout: Duration::from_millis(vars.num(Var::NetworkTlsHandshakeTimeout)),
            max_version: match vars.text(Var::NetworkTlsVersion) {
                "10" => TlsVersion::Tls1_0,
                "11" => TlsVersion::Tls1_1,
                _ => TlsVersion::Tls1_2,
            },
        }
    }
}

/// `remote_terminal.*` (and `network.default_interface`, which `default` means).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalConfig {
    pub enabled: bool,
    /// The interface it listens on, `default` resolved.
    pub interface: Interface,
    /// Empty: no password prompt.
    pub password: String,
    pub port: u16,
    /// A connection with no traffic either way for this long is closed; zero: never.
    pub timeout: Duration,
}

impl TerminalConfig {
    pub fn from_vars(vars: &Vars) -> Self {
        let default = Interface::parse(vars.text(Var::NetworkDefaultInterface));
        Self {
            enabled: vars.flag(Var::RemoteTerminalEnabled),
            interface: Interface::parse(vars.text(Var::RemoteTerminalInterface)).resolve(default),
            password: String::from(vars.text(Var::RemoteTerminalPassword)),
            port: port_of(vars, Var::RemoteTerminalPort),
            timeout: Duration::from_secs(vars.num(Var::RemoteTerminalTimeout)),
        }
    }
}

/// `udp.client.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpClientConfig {
    pub auto_retry: bool,
    pub auto: AutoStart,
}

impl UdpClientConfig {
    pub fn from_vars(vars: &Vars) -> Self {
        Self {
            auto_retry: vars.flag(Var::UdpClientAutoRetry),
            auto: AutoStart::client(
                vars,
                Var::UdpClientAutoStart,
                Var::UdpClientAutoInterface,
                Var::UdpClientRemoteHost,
                Var::UdpClientRemotePort,
            ),
        }
    }
}

/// What auto start reads: the clients' settings and `network.default_interface`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoConfig {
    pub tcp_client: TcpClientConfig,
    pub udp_client: UdpClientConfig,
    pub default_interface: Interface,
}

impl AutoConfig {
    pub fn from_vars(vars: &Vars) -> Self {
        Self {
            tcp_client: TcpClientConfig::from_vars(vars),
            udp_client: UdpClientConfig::from_vars(vars),
            default_interface: Interface::parse(vars.text(Var::NetworkDefaultInterface)),
        }
    }
}

/// `udp.server.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpServerConfig {
    pub port: u16,
    pub lock_client: bool,
    /// `udp.server.remote_host`/`remote_port`: where `write` sends without a client.
    pub remote: Option<(Ipv4, u16)>,
    pub auto: AutoStart,
}

impl UdpServerConfig {
    pub fn from_vars(vars: &Vars) -> Self {
        Self {
            port: port_of(vars, Var::UdpServerPort),
            lock_client: vars.flag(Var::UdpServerLockClient),
            remote: vars::parse_ipv4(vars.text(Var::UdpServerRemoteHost))
                .map(|ip| (ip, port_of(vars, Var::UdpServerRemotePort)))
                .filter(|&(_, port)| port != 0),
            auto: AutoStart::server(vars, Var::UdpServerAutoStart, Var::UdpServerAutoInterface),
        }
    }
}

/// `http.server.*`: the HTTP server and its REST API (`http.server.interface` is not read:
/// the server runs on the WLAN). With `tls_enabled` it is the HTTPS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpServerConfig {
    pub enabled: bool,
    pub api_enabled: bool,
    pub port: u16,
    pub max_clients: usize,
    /// Basic authorization is on when both are set (chapter, "Client Authorization").
    pub username: String,
    pub password: String,
    /// The realm of `WWW-Authenticate`.
    pub auth_title: String,
    /// Empty: CORS off.
    pub cors_origin: String,
    pub root_filename: String,
    pub notfound_filename: String,
    pub denied_filename: String,
    pub tls: ServerTls,
    /// `http.server.tls_log_clients`: log each TLS client's handshake.
    pub tls_log_clients: bool,
}

impl HttpServerConfig {
    pub fn from_vars(vars: &Vars) -> Self {
        let text = |var| vars::unescape_plain(vars.text(var));
        Self {
            enabled: vars.flag(Var::HttpServerEnabled),
            api_enabled: vars.flag(Var::HttpServerApiEnabled),
            port: port_of(vars, Var::HttpServerPort),
            max_clients: usize::try_from(vars.num(Var::HttpServerMaxClients)).unwrap_or(4),
            username: text(Var::HttpServerUsername),
            password: text(Var::HttpServerPassword),
            auth_title: text(Var::HttpServerAuthTitle),
            cors_origin: text(Var::HttpServerCorsOrigin),
            root_filename: text(Var::HttpServerRootFilename),
            notfound_filename: text(Var::HttpServerNotfoundFilename),
            denied_filename: text(Var::HttpServerDeniedFilename),
            tls: ServerTls {
                enabled: vars.flag(Var::HttpServerTlsEnabled),
                cert: text(Var::HttpServerTlsCert),
                key: text(Var::HttpServerTlsKey),
                verify_peer: vars.flag(Var::HttpServerTlsVerifyPeer),
            },
            tls_log_clients: vars.flag(Var::HttpServerTlsLogClients),
        }
    }

    /// Whether requests need Basic authorization.
    pub fn auth_enabled(&self) -> bool {
        !self.username.is_empty() && !self.password.is_empty()
    }
}
