//! The variable table. Sources: the chapter (which variables exist), protocol-facts §1–§3
//! (types, ranges, shortcuts, defaults).
//!
//! `D` (Documented): a source gives the row's type and default (a range the sources do not give
//! is still chosen here; the spec tables mark checks of such bounds as assumed). `A` (Assumed):
//! the default, the type or the value set is this table's choice.
//!
//! Shortcuts are the documented ones where a source gives one; otherwise they follow the rule
//! of protocol-facts §1.1 (first two characters of the first dot-separated word, then the first
//! character of each later word), with another letter of the same word where that rule would
//! give two variables the same shortcut.

use super::{Access, Basis, Kind, VarDef, VarId};
use Access::{ReadOnly as RO, ReadWrite as RW};
use Basis::{Assumed as A, Documented as D};

/// Builds [`VARIABLES`] and [`Var`] from one list of `Variant = definition` rows.
macro_rules! table {
    ($($var:ident = $def:expr,)*) => {
        /// Every variable, sorted by name.
        pub static VARIABLES: &[VarDef] = &[$($def,)*];

        /// A variable the firmware's own code reads or writes, by its typed id (the variant
        /// of its row in [`VARIABLES`]; `wlan.ssid` is `Var::WlanSsid`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Var {
            $($var,)*
        }

        impl Var {
            /// Every variable, in table order.
            pub const ALL: &[Var] = &[$(Var::$var,)*];
        }
    };
}

impl Var {
    /// The variable's index in [`VARIABLES`].
    pub const fn id(self) -> VarId {
        VarId(self as usize)
    }

    /// The variable's row.
    pub fn def(self) -> &'static VarDef {
        &VARIABLES[self as usize]
    }
}

impl From<Var> for VarId {
    fn from(var: Var) -> Self {
        var.id()
    }
}

const fn v(
    name: &'static str,
    short: &'static str,
    kind: Kind,
    default: &'static str,
    access: Access,
    basis: Basis,
) -> VarDef {
    VarDef { name, short, kind, default, saved: matches!(access, RW), access, basis }
}

const BOOL: Kind = Kind::Bool;
const IPV4: Kind = Kind::Ipv4;
const MAC: Kind = Kind::Mac;
const PASSKEY: Kind = Kind::Passkey;
const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}
const fn text(min: usize, max: usize) -> Kind {
    Kind::Str { min, max }
}

/// A TCP/UDP port that must be set.
const PORT: Kind = int(1, 65535);
/// A TCP/UDP port where 0 means "unset" or "any".
const PORT0: Kind = int(0, 65535);
/// A GPIO number; -1 disables the function (protocol-facts §1.6, §3 tcp.server.*).
const GPIO: Kind = int(-1, 63);
/// The network interface a service uses.
const IFACE: Kind = Kind::Enum(&["default", "wlan", "softap"]);
/// The UARTs a bus can use (protocol-facts §1.6).
const UART: Kind = Kind::Enum(&["uart0", "uart1"]);
/// Accepted `wlan.security` values: `auto` plus the probe strings of protocol-facts §3, in
/// lower case (the accepted set is not documented).
const WLAN_SECURITY: Kind = Kind::Enum(&[
    "auto",
    "open",
    "wep",
    "wpa-aes",
    "wpa-tkip",
    "wpa2-aes",
    "wpa2-mixed",
    "wpa2-tkip",
]);
/// `wlan.join.result` values: the SDK enum `gos_wlan_result_t` in lower case (protocol-facts
/// §3); the printed form is assumed. Kept equal to `crate::wlan::JoinResult::ALL`.
const JOIN_RESULTS: Kind = Kind::Enum(&[
    "unknown",
    "success",
    "joining",
    "ssid_not_set",
    "password_not_set",
    "security_not_supported",
    "not_found",
    "failed",
    "aborted",
]);
/// `broadcast.data` items (protocol-facts §3 broadcast.*); `adcX`/`gpioX` are expanded to the
/// numbers chosen here.
const BROADCAST_ITEMS: &[&str] = &[
    "adc0",
    "adc1",
    "adc2",
    "adc3",
    "adc4",
    "adc5",
    "adc6",
    "adc7",
    "bssid",
    "channel",
    "gpio0",
    "gpio1",
    "gpio2",
    "gpio3",
    "gpio4",
    "gpio5",
    "gpio6",
    "gpio7",
    "gpio8",
    "gpio9",
    "gpio10",
    "gpio11",
    "gpio12",
    "gpio13",
    "gpio14",
    "gpio15",
    "ip",
    "mac",
    "remote_terminal_port",
    "rssi",
    "ssid",
    "time",
    "uuid",
    "version",
];

// Every variable, sorted by name: `Variant = definition`. The macro makes the rows the
// [`VARIABLES`] table and the variants the typed ids ([`Var`]) in the same order, so code
// names a variable by its variant and a misspelt one does not compile.
table! {
    BroadcastData = v(
        "broadcast.data",
        "br d",
        Kind::List(BROADCAST_ITEMS),
        "mac,bssid,channel,ip,ssid,rssi,remote_terminal_port,time,uuid,version",
        RW,
        D,
    ),
    BroadcastHttpHost = v("broadcast.http.host", "br h h", text(0, 128), "", RW, A),
    BroadcastInterface = v("broadcast.interface", "br i", IFACE, "default", RW, A),
    BroadcastInterval = v("broadcast.interval", "br n", int(0, 65535), "0", RW, A),
    BroadcastUdpIp = v("broadcast.udp.ip", "br u i", IPV4, "255.255.255.255", RW, A),
    BroadcastUdpLocalPort = v("broadcast.udp.local_port", "br u l", PORT0, "0", RW, A),
    BroadcastUdpRemotePort = v("broadcast.udp.remote_port", "br u r", PORT, "55555", RW, A),
    BusCommandReadTimeout = v("bus.command.read_timeout", "bu c t", int(0, 65535), "100", RW, D),
    BusCommandRxBufsize = v("bus.command.rx_bufsize", "bu c r", int(256, 10000), "4096", RW, D),
    BusCommandWriteCheckEnabled = v("bus.command.write_check_enabled", "bu c c", BOOL, "0", RW, A),
    BusCommandWriteTimeout = v("bus.command.write_timeout", "bu c w", int(0, 65535), "100", RW, A),
    BusDataBus = v("bus.data_bus", "bu d", UART, "uart0", RW, A),
    BusLogBus = v("bus.log_bus", "bu l", UART, "uart0", RW, A),
    BusMode = v("bus.mode", "bu m", Kind::Enum(&["command", "stream"]), "command", RW, D),
    BusStreamCmdGpio = v("bus.stream.cmd_gpio", "bu s g", GPIO, "0", RW, D),
    BusStreamCmdSeq = v("bus.stream.cmd_seq", "bu s s", text(0, 16), "", RW, A),
    BusStreamFlushCount = v("bus.stream.flush_count", "bu s c", int(1, 10000), "1460", RW, A),
    BusStreamFlushTime = v("bus.stream.flush_time", "bu s t", int(0, 65535), "20", RW, A),
    BusStreamFlushTimeReset = v("bus.stream.flush_time_reset", "bu s r", BOOL, "0", RW, A),
    EmailNameAddress = v("email.name_address", "em n", text(0, 128), "", RW, A),
    EmailSmtpHost = v("email.smtp.host", "em s h", text(0, 128), "", RW, A),
    EmailSmtpPassword = v("email.smtp.password", "em s w", text(0, 64), "", RW, A),
    EmailSmtpPort = v("email.smtp.port", "em s p", PORT, "587", RW, A),
    EmailSmtpUsername = v("email.smtp.username", "em s u", text(0, 64), "", RW, A),
    HttpServerApiEnabled = v("http.server.api_enabled", "ht s a", BOOL, "1", RW, D),
    HttpServerAuthTitle = v("http.server.auth_title", "ht s h", text(0, 32), "Gecko OS", RW, A),
    HttpServerCorsOrigin = v("http.server.cors_origin", "ht s c", text(0, 128), "", RW, D),
    HttpServerDeniedFilename = v("http.server.denied_filename", "ht s d", text(0, 64), "webapp/unauthorized.html", RW, A),
    HttpServerEnabled = v("http.server.enabled", "ht s e", BOOL, "0", RW, D),
    HttpServerInterface = v("http.server.interface", "ht s i", IFACE, "default", RW, A),
    HttpServerMaxClients = v("http.server.max_clients", "ht s m", int(1, 8), "4", RW, A),
    HttpServerNotfoundFilename = v("http.server.notfound_filename", "ht s n", text(0, 64), "", RW, A),
    HttpServerPassword = v("http.server.password", "ht s p", text(0, 64), "", RW, A),
    HttpServerPort = v("http.server.port", "ht s o", PORT, "80", RW, A),
    HttpServerRootFilename = v("http.server.root_filename", "ht s r", text(0, 64), "webapp/index.html", RW, A),
    HttpServerTlsCert = v("http.server.tls_cert", "ht s t", text(0, 64), "", RW, A),
    HttpServerTlsClientLog = v("http.server.tls_client_log", "ht s g", text(0, 64), "", RW, A),
    HttpServerTlsEnabled = v("http.server.tls_enabled", "ht s s", BOOL, "0", RW, A),
    HttpServerTlsKey = v("http.server.tls_key", "ht s k", text(0, 64), "", RW, A),
    HttpServerTlsLogClients = v("http.server.tls_log_clients", "ht s l", BOOL, "0", RW, A),
    HttpServerTlsVerifyPeer = v("http.server.tls_verify_peer", "ht s v", BOOL, "0", RW, A),
    HttpServerUsername = v("http.server.username", "ht s u", text(0, 64), "", RW, A),
    IoconnProtocol = v("ioconn.protocol", "io p", Kind::Enum(&["tcp", "tls", "udp", "web"]), "tcp", RW, A),
    MdnsEnabled = v("mdns.enabled", "md e", BOOL, "1", RW, D),
    MdnsInterface = v("mdns.interface", "md i", IFACE, "default", RW, D),
    MdnsName = v("mdns.name", "md n", text(0, 63), "gecko-os", RW, A),
    MdnsService = v("mdns.service", "md s", text(0, 64), "", RW, A),
    NetworkBufferRxtxRatio = v("network.buffer.rxtx_ratio", "ne b r", int(1, 99), "50", RW, A),
    NetworkBufferSize = v("network.buffer.size", "ne b s", int(4096, 70000), "16384", RW, A),
    NetworkDefaultInterface = v("network.default_interface", "ne f", Kind::Enum(&["wlan", "softap"]), "wlan", RW, D),
    NetworkDnsTimeout = v("network.dns.timeout", "ne d t", int(100, 60000), "5000", RW, A),
    NetworkTlsCaCert = v("network.tls.ca_cert", "ne t a", text(0, 64), "geotrust_ca.pem", RW, D),
    NetworkTlsCaCertVerifyEnabled = v("network.tls.ca_cert_verify_enabled", "ne t e", BOOL, "1", RW, A),
    NetworkTlsClientCert = v("network.tls.client_cert", "ne t c", text(0, 64), "", RW, D),
    NetworkTlsClientKey = v("network.tls.client_key", "ne t k", text(0, 64), "", RW, D),
    NetworkTlsHandshakeTimeout = v("network.tls.handshake_timeout", "ne t h", int(1000, 120000), "30000", RW, A),
    NetworkTlsVersion = v("network.tls.version", "ne t v", Kind::Enum(&["0", "10", "11", "12"]), "0", RW, A),
    NtpEnabled = v("ntp.enabled", "nt e", BOOL, "1", RW, D),
    NtpInterface = v("ntp.interface", "nt i", IFACE, "default", RW, D),
    NtpInterval = v("ntp.interval", "nt n", int(60, 86400), "3600", RW, D),
    NtpServer = v("ntp.server", "nt s", text(0, 64), "pool.ntp.org", RW, D),
    RemoteTerminalEnabled = v("remote_terminal.enabled", "re e", BOOL, "0", RW, D),
    RemoteTerminalInterface = v("remote_terminal.interface", "re i", IFACE, "default", RW, D),
    RemoteTerminalPassword = v("remote_terminal.password", "re w", text(0, 32), "", RW, D),
    RemoteTerminalPort = v("remote_terminal.port", "re p", PORT, "2000", RW, D),
    RemoteTerminalTimeout = v("remote_terminal.timeout", "re t", int(0, 65535), "60", RW, D),
    SetupAutoCmd = v("setup.auto.cmd", "se a c", text(0, 128), "", RW, A),
    SetupGpioCmd = v("setup.gpio.cmd", "se g c", text(0, 128), "setup_web", RW, D),
    SetupGpioControlGpio = v("setup.gpio.control_gpio", "se g g", GPIO, "-1", RW, A),
    SetupWebCaptivePortalEnabled = v("setup.web.captive_portal_enabled", "se w c", BOOL, "1", RW, A),
    SetupWebIdleTimeout = v("setup.web.idle_timeout", "se w i", int(0, 65535), "300", RW, D),
    SetupWebPasskey = v("setup.web.passkey", "se w p", PASSKEY, "password", RW, D),
    SetupWebRootFilename = v("setup.web.root_filename", "se w r", text(0, 64), "", RW, A),
    SetupWebUrl = v("setup.web.url", "se w u", text(0, 128), "setup.com", RW, A),
    SoftapAutoStart = v("softap.auto_start", "so a", BOOL, "0", RW, D),
    SoftapCaptivePortalEnabled = v("softap.captive_portal_enabled", "so v", BOOL, "0", RW, A),
    SoftapChannel = v("softap.channel", "so c", int(0, 14), "0", RW, D),
    SoftapClientList = v("softap.client_list", "so l", text(0, 512), "", RO, A),
    SoftapDhcpServerEnabled = v("softap.dhcp_server.enabled", "so d e", BOOL, "1", RW, D),
    SoftapDnsServerEnabled = v("softap.dns_server.enabled", "so n e", BOOL, "1", RW, D),
    SoftapIdleTimeout = v("softap.idle_timeout", "so i", int(0, 65535), "7", RW, D),
    SoftapPasskey = v("softap.passkey", "so p", PASSKEY, "", RW, D),
    SoftapRateProtocol = v(
        "softap.rate.protocol",
        "so r p",
        Kind::Enum(&["auto", "802.11b", "802.11g", "802.11n"]),
        "auto",
        RW,
        A,
    ),
    SoftapSsid = v("softap.ssid", "so s", text(1, 32), "Gecko_OS", RW, A),
    SoftapStaticGateway = v("softap.static.gateway", "so s g", IPV4, "10.10.10.1", RW, A),
    SoftapStaticIp = v("softap.static.ip", "so s i", IPV4, "10.10.10.1", RW, D),
    SoftapStaticNetmask = v("softap.static.netmask", "so s n", IPV4, "255.255.255.0", RW, A),
    SystemCmdBuffered = v("system.cmd.buffered", "sy c b", BOOL, "0", RW, D),
    SystemCmdEcho = v("system.cmd.echo", "sy c e", BOOL, "1", RW, D),
    SystemCmdFormat = v("system.cmd.format", "sy c f", Kind::Enum(&["human", "machine"]), "human", RW, D),
    SystemCmdHeaderEnabled = v("system.cmd.header_enabled", "sy c h", BOOL, "0", RW, D),
    SystemCmdPromptEnabled = v("system.cmd.prompt_enabled", "sy c p", BOOL, "1", RW, D),
    SystemCmdTimestamp = v("system.cmd.timestamp", "sy c t", Kind::Enum(&["none", "utc", "local"]), "none", RW, A),
    SystemOobGpio = v("system.oob.gpio", "sy o g", GPIO, "-1", RW, A),
    SystemPrintLevel = v("system.print_level", "sy p", Kind::Enum(&["0", "1", "2", "3", "4", "all"]), "all", RW, D),
    SystemVersion = v("system.version", "sy v", text(0, 128), "", RO, D),
    TcpClientAutoInterface = v("tcp.client.auto_interface", "tc c i", IFACE, "default", RW, D),
    TcpClientAutoRetries = v("tcp.client.auto_retries", "tc c e", int(0, 255), "0", RW, D),
    TcpClientAutoStart = v("tcp.client.auto_start", "tc c a", BOOL, "0", RW, D),
    TcpClientConnectTimeout = v("tcp.client.connect_timeout", "tc c c", int(1000, 60000), "5000", RW, A),
    TcpClientLocalPort = v("tcp.client.local_port", "tc c l", PORT0, "0", RW, A),
    TcpClientRemoteHost = v("tcp.client.remote_host", "tc c h", text(0, 128), "", RW, A),
    TcpClientRemotePort = v("tcp.client.remote_port", "tc c p", PORT0, "0", RW, A),
    TcpClientRetries = v("tcp.client.retries", "tc c r", int(0, 255), "3", RW, A),
    TcpClientRetryPeriod = v("tcp.client.retry_period", "tc c t", int(0, 60000), "1000", RW, A),
    TcpClientTlsEnabled = v("tcp.client.tls_enabled", "tc c s", BOOL, "0", RW, A),
    TcpServerAutoInterface = v("tcp.server.auto_interface", "tc s i", IFACE, "default", RW, D),
    TcpServerAutoStart = v("tcp.server.auto_start", "tc s a", BOOL, "0", RW, D),
    TcpServerConnectedGpio = v("tcp.server.connected_gpio", "tc s c", GPIO, "-1", RW, D),
    TcpServerDataGpio = v("tcp.server.data_gpio", "tc s d", GPIO, "-1", RW, D),
    TcpServerIdleTimeout = v("tcp.server.idle_timeout", "tc s t", int(0, 65535), "300", RW, A),
    TcpServerMaxClients = v("tcp.server.max_clients", "tc s m", int(1, 8), "4", RW, A),
    TcpServerPort = v("tcp.server.port", "tc s p", PORT, "3000", RW, A),
    TcpServerTlsCert = v("tcp.server.tls_cert", "tc s r", text(0, 64), "", RW, A),
    TcpServerTlsEnabled = v("tcp.server.tls_enabled", "tc s s", BOOL, "0", RW, A),
    TcpServerTlsKey = v("tcp.server.tls_key", "tc s k", text(0, 64), "", RW, A),
    TcpServerTlsVerifyPeer = v("tcp.server.tls_verify_peer", "tc s v", BOOL, "0", RW, A),
    TimeLastSet = v("time.last_set", "ti l", int(-1, i64::MAX), "-1", RO, D),
    // Set in epoch seconds; not saved: the clock is not a setting (protocol-facts §3 time.*).
    TimeRtc = VarDef {
        name: "time.rtc",
        short: "ti r",
        kind: int(0, 4_294_967_295),
        default: "0",
        saved: false,
        access: RW,
        basis: A,
    },
    TimeUptime = v("time.uptime", "ti u", int(0, i64::MAX), "0", RO, D),
    TimeZone = v("time.zone", "ti z", text(1, 6), "0", RW, A),
    UdpClientAutoInterface = v("udp.client.auto_interface", "ud c i", IFACE, "default", RW, D),
    UdpClientAutoRetry = v("udp.client.auto_retry", "ud c e", BOOL, "0", RW, D),
    UdpClientAutoStart = v("udp.client.auto_start", "ud c a", BOOL, "0", RW, D),
    UdpClientRemoteHost = v("udp.client.remote_host", "ud c h", text(0, 128), "", RW, D),
    UdpClientRemotePort = v("udp.client.remote_port", "ud c p", PORT0, "3000", RW, D),
    UdpServerAutoInterface = v("udp.server.auto_interface", "ud s i", IFACE, "default", RW, D),
    UdpServerAutoStart = v("udp.server.auto_start", "ud s a", BOOL, "0", RW, D),
    UdpServerDataGpio = v("udp.server.data_gpio", "ud s d", GPIO, "-1", RW, D),
    UdpServerLockClient = v("udp.server.lock_client", "ud s l", BOOL, "0", RW, A),
    UdpServerPort = v("udp.server.port", "ud s p", PORT, "3000", RW, A),
    UdpServerRemoteHost = v("udp.server.remote_host", "ud s h", text(0, 128), "", RW, A),
    UdpServerRemotePort = v("udp.server.remote_port", "ud s r", PORT0, "0", RW, A),
    WlanAntennaSelect = v("wlan.antenna.select", "wl a s", Kind::Enum(&["1", "2", "auto"]), "1", RW, D),
    WlanAutoJoinEnabled = v("wlan.auto_join.enabled", "wl o e", BOOL, "0", RW, D),
    WlanAutoJoinRetries = v("wlan.auto_join.retries", "wl o r", int(0, 255), "3", RW, D),
    WlanAutoJoinRetryDelay = v("wlan.auto_join.retry_delay", "wl o d", int(0, 3600), "3", RW, A),
    WlanBssid = v("wlan.bssid", "wl b", MAC, "00:00:00:00:00:00", RW, A),
    WlanDhcpEnabled = v("wlan.dhcp.enabled", "wl d e", BOOL, "1", RW, A),
    WlanDhcpTimeout = v("wlan.dhcp.timeout", "wl d t", int(1, 255), "15", RW, A),
    WlanHidePasskey = v("wlan.hide_passkey", "wl h", BOOL, "0", RW, A),
    WlanInfo = v("wlan.info", "wl i", text(0, 256), "", RO, A),
    // The words of `crate::wlan::JoinResult::name` (the SDK enum's names, assumed).
    WlanJoinResult = v("wlan.join.result", "wl j s", JOIN_RESULTS, "unknown", RO, A),
    WlanJoinRetries = v("wlan.join.retries", "wl j r", int(1, 255), "3", RW, A),
    WlanJoinTimeout = v("wlan.join.timeout", "wl j t", int(100, 60000), "5000", RW, A),
    WlanMac = v("wlan.mac", "wl m", MAC, "00:00:00:00:00:00", RO, D),
    WlanNetworkDns = v("wlan.network.dns", "wl n d", text(0, 64), "", RO, A),
    WlanNetworkGateway = v("wlan.network.gateway", "wl n g", IPV4, "0.0.0.0", RO, A),
    WlanNetworkIp = v("wlan.network.ip", "wl n i", IPV4, "0.0.0.0", RO, A),
    WlanNetworkNetmask = v("wlan.network.netmask", "wl n n", IPV4, "0.0.0.0", RO, A),
    // 0 down, 1 associated without an address (DHCP), 2 up: `crate::wlan::LinkStatus`.
    WlanNetworkStatus = v("wlan.network.status", "wl n s", int(0, 2), "0", RO, A),
    WlanPasskey = v("wlan.passkey", "wl p", PASSKEY, "", RW, A),
    WlanRssiAverage = v("wlan.rssi_average", "wl r", int(0, 100), "0", RW, A),
    WlanScanActiveDwell = v("wlan.scan.active_dwell", "wl s a", int(1, 1000), "100", RW, A),
    WlanScanChannelMask = v("wlan.scan.channel_mask", "wl s c", int(1, 16383), "2047", RW, A),
    WlanScanNumProbes = v("wlan.scan.num_probes", "wl s n", int(1, 10), "2", RW, A),
    WlanScanPassiveDwell = v("wlan.scan.passive_dwell", "wl s p", int(1, 1000), "110", RW, A),
    WlanScanRetries = v("wlan.scan.retries", "wl s r", int(0, 255), "0", RW, A),
    WlanScanType = v("wlan.scan.type", "wl s t", Kind::Enum(&["active", "passive"]), "active", RW, A),
    WlanSecurity = v("wlan.security", "wl c", WLAN_SECURITY, "auto", RW, A),
    WlanSsid = v("wlan.ssid", "wl s", text(0, 32), "", RW, A),
    WlanStaticDns = v("wlan.static.dns", "wl t d", IPV4, "0.0.0.0", RW, A),
    WlanStaticGateway = v("wlan.static.gateway", "wl t g", IPV4, "0.0.0.0", RW, A),
    WlanStaticIp = v("wlan.static.ip", "wl t i", IPV4, "0.0.0.0", RW, A),
    WlanStaticNetmask = v("wlan.static.netmask", "wl t n", IPV4, "255.255.255.0", RW, A),
    WlanTxPower = v("wlan.tx_power", "wl t", int(0, 20), "20", RW, A),
}
