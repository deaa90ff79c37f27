//! The core's view of the radio and the IP stack: what it asks the platform to do
//! ([`NetRequest`], carried by [`crate::Action::Net`]) and what the platform reports back
//! ([`NetEvent`], fed to [`crate::Module::net_event`]).
//!
//! The core owns every timeout (join, DHCP, DNS, ping): the platform only does what it is
//! told and says what happened. Requests that are answered asynchronously carry an id the
//! answer echoes, so a late answer to an attempt the core has already given up on is ignored.

use alloc::string::String;
use alloc::vec::Vec;

/// A MAC address (BSSID).
pub type Mac = [u8; 6];
/// An IPv4 address.
pub type Ipv4 = [u8; 4];

/// Wi-Fi security types, named as Gecko OS prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Security {
    Open,
    Wep,
    WpaAes,
    WpaTkip,
    Wpa2Aes,
    Wpa2Mixed,
    Wpa2Tkip,
    /// WPA3-Personal (SAE). Networks with it are seen by scans and probes, but the module
    /// cannot join them: a probe that finds only such a network ends the join with
    /// `security_not_supported` (the SDK's `GOS_WLAN_RESULT_SECURITY_NOT_SUPPORTED`).
    /// Gecko OS modules predate WPA3; the printed name is assumed.
    Wpa3Sae,
}

impl Security {
    pub const ALL: [Security; 8] = [
        Security::Open,
        Security::Wep,
        Security::WpaAes,
        Security::WpaTkip,
        Security::Wpa2Aes,
        Security::Wpa2Mixed,
        Security::Wpa2Tkip,
        Security::Wpa3Sae,
    ];

    /// The name in scan results and logs (`WPA2-AES`).
    pub const fn name(self) -> &'static str {
        match self {
            Security::Open => "Open",
            Security::Wep => "WEP",
            Security::WpaAes => "WPA-AES",
            Security::WpaTkip => "WPA-TKIP",
            Security::Wpa2Aes => "WPA2-AES",
            Security::Wpa2Mixed => "WPA2-Mixed",
            Security::Wpa2Tkip => "WPA2-TKIP",
            Security::Wpa3Sae => "WPA3-SAE",
        }
    }

    /// Whether the module can join a network with this security type.
    pub const fn is_supported(self) -> bool {
        !matches!(self, Security::Wpa3Sae)
    }

    /// Parses a name, ignoring case (`wpa2-aes`, `WPA2-AES`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

/// A network seen by a scan or probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bss {
    pub ssid: String,
    pub bssid: Mac,
    pub channel: u8,
    /// dBm.
    pub rssi: i16,
    pub security: Security,
}

/// How a scan listens (`wlan.scan.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanType {
    /// Sends probe requests on each channel: hears beacons and probe responses, so a probe by
    /// SSID finds a hidden network.
    Active,
    /// Only listens for beacons: hidden networks (which beacon without their SSID) are never
    /// found, not even by a probe for their SSID.
    Passive,
}

/// The scan settings of `wlan.scan.*`, parsed once, for a [`NetRequest::Scan`] (both
/// `wlan_scan` and step 3's probe: the chapter says "Probing uses all wlan.scan.* variables").
/// `wlan.scan.retries` is not here: the core repeats a failed probe itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanParams {
    /// `wlan.scan.channel_mask`: bit n-1 set = channel n is scanned. The 14 bits name the
    /// 2.4 GHz channels 1–14 only, so a network on a channel above 14 is never found
    /// (assumed: the modules Gecko OS runs on have 2.4 GHz radios).
    pub channel_mask: u16,
    /// `wlan.scan.type`.
    pub kind: ScanType,
    /// Time spent listening on each channel, ms: `wlan.scan.active_dwell` for an active scan,
    /// `wlan.scan.passive_dwell` for a passive one.
    pub dwell_ms: u16,
    /// `wlan.scan.num_probes`: probe requests sent on each channel (active scans).
    pub num_probes: u8,
}

impl ScanParams {
    /// The variables' defaults: channels 1–11, active, 100 ms per channel, 2 probes.
    pub const DEFAULT: ScanParams =
        ScanParams { channel_mask: 0x07ff, kind: ScanType::Active, dwell_ms: 100, num_probes: 2 };

    /// Whether the mask includes `channel`.
    pub const fn covers(&self, channel: u8) -> bool {
        channel >= 1 && channel <= 14 && self.channel_mask & (1 << (channel - 1)) != 0
    }

    /// How many channels the scan visits.
    pub const fn channels(&self) -> u32 {
        (self.channel_mask & 0x3fff).count_ones()
    }

    /// How long a real radio listens: the dwell time on every channel of the mask.
    pub const fn duration_ms(&self) -> u64 {
        self.dwell_ms as u64 * self.channels() as u64
    }
}

impl Default for ScanParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An IPv4 configuration (from DHCP or `wlan.static.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Config {
    pub address: Ipv4,
    pub netmask: Ipv4,
    pub gateway: Ipv4,
    pub dns: Vec<Ipv4>,
}

/// Why an association attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssocFailure {
    /// The AP refused the credentials (wrong passkey or security).
    AuthFailed,
    /// The AP rejected the association.
    Rejected,
    /// No AP with that BSSID on that channel answered.
    NotFound,
}

/// Why a connection could not be made, or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnFailure {
    /// The peer refused (TCP RST to the SYN).
    Refused,
    /// The platform has no free socket.
    NoSocket,
    /// The network is down or the address unreachable.
    Unreachable,
    /// The local port is in use.
    PortInUse,
    /// The TLS handshake (or a record after it) failed; the core's own failure, never the
    /// platform's (see [`crate::tls`]).
    Tls(crate::tls::TlsFailure),
}

/// Connection ids the platform gives to connections it accepted on a listener start here, so
/// they never clash with the ids the core gives to the sockets it opens (below this).
pub const ACCEPTED_BASE: u32 = 0x8000_0000;

/// A connection (TCP or UDP socket, TCP listener) between the core and the platform: the
/// core numbers the ones it opens (below [`ACCEPTED_BASE`]), the platform the ones it accepts
/// on a listener (from [`ACCEPTED_BASE`] up). Every event about a connection carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u32);

impl ConnId {
    /// No connection (the core never gives out 0): a local stream's, a waiting attempt's.
    pub const NONE: ConnId = ConnId(0);

    /// The first id of the connections the platform accepts.
    pub const FIRST_ACCEPTED: ConnId = ConnId(ACCEPTED_BASE);

    /// Whether the platform gave this id to a connection it accepted.
    pub fn is_accepted(self) -> bool {
        self.0 >= ACCEPTED_BASE
    }
}

impl core::fmt::Display for ConnId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the core asks of the platform's radio and IP stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetRequest {
    /// Scan (`ssid: None`) or probe for one network (`ssid` and/or `bssid`) on the channels
    /// and in the way `params` say; answered by [`NetEvent::ScanDone`].
    Scan { id: u32, ssid: Option<String>, bssid: Option<Mac>, params: ScanParams },
    /// Associate with `bss` using `passkey` (decoded passphrase bytes, or 64 hex characters
    /// of a PSK); answered by [`NetEvent::Associated`] or [`NetEvent::AssociationFailed`].
    Associate { attempt: u32, bss: Bss, passkey: Vec<u8> },
    /// Leave the network, or abort an association in progress. Not answered.
    Disassociate,
    /// Start the DHCP client on the link; answered by [`NetEvent::DhcpBound`] (the core times
    /// out after `wlan.dhcp.timeout`).
    StartDhcp { attempt: u32 },
    /// Configure this static address. Not answered.
    StaticIp(Ipv4Config),
    /// Drop the IP configuration and stop DHCP. Not answered.
    IpDown,
    /// Resolve a host name (A record) with the configured DNS servers; answered by
    /// [`NetEvent::Resolved`].
    Resolve { id: u32, name: String },
    /// Send one ICMP echo request; answered by [`NetEvent::PingReply`] if a reply comes.
    Ping { id: u32, to: Ipv4 },
    /// Open a TCP connection from `local_port` (0: any) to `to:port`; answered by
    /// [`NetEvent::TcpConnected`] or [`NetEvent::ConnFailed`] (the core times out after
    /// `tcp.client.connect_timeout` and then sends [`NetRequest::Close`]).
    TcpConnect { conn: ConnId, to: Ipv4, port: u16, local_port: u16 },
    /// Accept TCP clients on `port`; each is announced by [`NetEvent::TcpAccepted`] with an
    /// id from [`ACCEPTED_BASE`] up. A failure to listen is [`NetEvent::ConnFailed`] with
    /// `conn: listener`.
    TcpListen { listener: ConnId, port: u16 },
    /// Stop accepting on a listener (connections already accepted stay open). Not answered.
    TcpUnlisten { listener: ConnId },
    /// Open a UDP socket on `local_port` (0: any); answered by [`NetEvent::UdpOpened`] or
    /// [`NetEvent::ConnFailed`].
    UdpOpen { conn: ConnId, local_port: u16 },
    /// Send bytes on a connection: TCP in order; UDP one datagram to `to` (required for UDP).
    /// Answered by [`NetEvent::Sent`] once the platform has taken all of it.
    Send { conn: ConnId, data: Vec<u8>, to: Option<(Ipv4, u16)> },
    /// Close a connection (TCP: graceful close; UDP: drop the socket). Answered by
    /// [`NetEvent::Closed`].
    Close { conn: ConnId },
    /// Flow control: `accept: false` asks the platform to stop reading a TCP connection (its
    /// window closes, so the peer waits: TCP never loses bytes), `true` to read again. Not
    /// answered; bytes already on their way may still arrive.
    Flow { conn: ConnId, accept: bool },
}

/// What the platform reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    ScanDone {
        id: u32,
        results: Vec<Bss>,
    },
    Associated {
        attempt: u32,
    },
    AssociationFailed {
        attempt: u32,
        reason: AssocFailure,
    },
    /// The association was lost (the AP dropped the module or went away).
    LinkLost,
    DhcpBound {
        attempt: u32,
        config: Ipv4Config,
    },
    /// `address: None`: the name does not exist (or the server refused).
    Resolved {
        id: u32,
        address: Option<Ipv4>,
    },
    PingReply {
        id: u32,
        rtt_ms: u32,
    },
    TcpConnected {
        conn: ConnId,
        local_port: u16,
    },
    /// A connect, listen or UDP open failed, or an open connection was reset.
    ConnFailed {
        conn: ConnId,
        reason: ConnFailure,
    },
    /// A client connected to a listener.
    TcpAccepted {
        listener: ConnId,
        conn: ConnId,
        peer: (Ipv4, u16),
    },
    UdpOpened {
        conn: ConnId,
        local_port: u16,
    },
    /// Bytes arrived (TCP: in order; UDP: one datagram, `from` its sender).
    Received {
        conn: ConnId,
        data: Vec<u8>,
        from: (Ipv4, u16),
    },
    /// The platform took `len` bytes of a [`NetRequest::Send`].
    Sent {
        conn: ConnId,
        len: usize,
    },
    /// The connection is closed (the peer closed it, or a [`NetRequest::Close`] completed).
    Closed {
        conn: ConnId,
    },
}

/// Ids for the requests an answer names by id (scans, lookups, pings): one counter for the
/// WLAN's probes and the commands' and auto start's requests alike, so no two are in flight
/// with the same id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestIds(u32);

impl RequestIds {
    /// A fresh id.
    pub fn fresh(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(1);
        self.0
    }
}
