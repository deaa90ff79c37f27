//! Rig definitions: which module, how to reach it, and its known deviations.
//!
//! A rig file names the device under test (`sim`: the harness starts a simulated module;
//! `qemu`: the harness boots a board image under QEMU and talks to its console UART on a pty;
//! `hardware`: a real module on a serial port given by path or USB serial number) and the
//! settings of its console. See `rigs/README.md`.

use crate::source::{Source, SpecError};
use crate::transport::Transport;
use serde::Deserialize;
use serde_spanned::Spanned;
use serialport::FlowControl;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRig {
    name: String,
    description: Option<String>,
    dut: RawDut,
    #[serde(default)]
    serial: RawSerial,
    #[serde(default)]
    timeouts: RawTimeouts,
    expectations: Option<Spanned<String>>,
    lab: Option<RawLab>,
    power: Option<Spanned<RawPower>>,
    probe: Option<RawProbe>,
    transports: Option<Spanned<Vec<Spanned<String>>>>,
    http: Option<Spanned<RawHttp>>,
    labgrid: Option<Spanned<RawLabgrid>>,
}

/// `[labgrid]`: the module is behind a labgrid place; its console is the one the place
/// exports.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabgrid {
    /// `host:port` of the coordinator (default: `LG_COORDINATOR`, as labgrid-client has it).
    coordinator: Option<String>,
    /// The place, by name.
    place: Option<String>,
    /// Or any place with these tags.
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
    /// How long to wait for a place (default 60 s).
    wait_s: Option<u64>,
    /// The `labgrid-client` program (default: `LABGRID_CLIENT`, else on `PATH`).
    client: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    username: Option<String>,
    password: Option<String>,
}

/// The module's HTTP server as the REST and command stream transports use it: the
/// credentials the harness gives it (`http.server.username` / `password`) and sends.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HttpSpec {
    pub credentials: Option<crate::channel::rest::Credentials>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    chip: Spanned<String>,
    selector: Option<Spanned<String>>,
    firmware: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPower {
    off: Spanned<Vec<String>>,
    on: Spanned<Vec<String>>,
    off_ms: Option<u64>,
}

/// How to power-cycle a hardware rig's module: a program that cuts its power, one that
/// restores it, and how long it stays off. Each is a program and its arguments (no shell),
/// for example a switchable USB hub (`["uhubctl", "-l", "1-1", "-p", "2", "-a", "off"]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PowerSpec {
    pub off: Vec<String>,
    pub on: Vec<String>,
    pub off_time: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    #[serde(default)]
    ap: Vec<Spanned<RawAp>>,
    #[serde(default)]
    hosts: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAp {
    ssid: String,
    bssid: Spanned<String>,
    channel: Spanned<u8>,
    security: Spanned<String>,
    #[serde(default)]
    passkey: String,
    rssi: Option<i16>,
    #[serde(default)]
    hidden: bool,
}

/// An access point of the simulated lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApSpec {
    pub ssid: String,
    pub bssid: [u8; 6],
    pub channel: u8,
    /// Lower case, as the lab control channel takes it (`wpa2-aes`).
    pub security: String,
    pub passkey: String,
    pub rssi: i16,
    pub hidden: bool,
}

/// The simulated lab network of a sim rig: its access points and the host names its DNS
/// server answers for.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LabSpec {
    pub aps: Vec<ApSpec>,
    pub hosts: Vec<(String, std::net::Ipv4Addr)>,
}

impl LabSpec {
    /// The access point the HTTP server's transports join before a case: an open one first
    /// (so the module's passkey stays the case's), else one joined with its passkey (WPA3 ones
    /// are on the air for scans only), unless the case sets the passkey itself.
    pub fn network_to_join(&self, keep_passkey: bool) -> Option<&ApSpec> {
        let open = self.aps.iter().find(|ap| ap.security == "open");
        open.or_else(|| self.aps.iter().find(|ap| !keep_passkey && ap.security != "wpa3-sae"))
    }
}

/// Security names the simulated radio knows (`wpa3-sae`: seen by scans, never joined).
pub const SECURITY: &[&str] =
    &["open", "wep", "wpa-aes", "wpa-tkip", "wpa2-aes", "wpa2-mixed", "wpa2-tkip", "wpa3-sae"];

pub use crate::text::{format_bssid, parse_bssid};

/// Validates one access point; `key` says where it stands (`lab.ap`, `add_ap`) for errors.
pub(crate) fn ap_spec(source: &Source, ap: Spanned<RawAp>, key: &str) -> Result<ApSpec, SpecError> {
    let at = ap.span().start;
    let ap = ap.into_inner();
    let err = |offset: usize, field: &str, message: String| {
        source.error(offset, Some(&format!("{key}.{field}")), message)
    };
    let bssid_at = ap.bssid.span().start;
    let bssid = parse_bssid(ap.bssid.get_ref()).ok_or_else(|| {
        err(
            bssid_at,
            "bssid",
            format!("`{}` is not a MAC address like 02:00:00:00:01:01", ap.bssid.get_ref()),
        )
    })?;
    let channel = *ap.channel.get_ref();
    if !(1..=14).contains(&channel) {
        return Err(err(
            ap.channel.span().start,
            "channel",
            format!("channel {channel} is not 1-14"),
        ));
    }
    let security = ap.security.get_ref().to_ascii_lowercase();
    if !SECURITY.contains(&security.as_str()) {
        let known = SECURITY.join(", ");
        return Err(err(
            ap.security.span().start,
            "security",
            format!("`{security}` is not one of {known}"),
        ));
    }
    if ap.ssid.is_empty() || ap.ssid.len() > 32 {
        return Err(err(at, "ssid", "an SSID has 1 to 32 bytes".to_string()));
    }
    if security != "open" && ap.passkey.is_empty() {
        return Err(err(at, "passkey", format!("a `{security}` access point needs a passkey")));
    }
    Ok(ApSpec {
        ssid: ap.ssid,
        bssid,
        channel,
        security,
        passkey: ap.passkey,
        rssi: ap.rssi.unwrap_or(-40),
        hidden: ap.hidden,
    })
}

fn lab_spec(source: &Source, raw: RawLab) -> Result<LabSpec, SpecError> {
    let mut aps: Vec<ApSpec> = Vec::new();
    for ap in raw.ap {
        let bssid_at = ap.get_ref().bssid.span().start;
        let ap = ap_spec(source, ap, "lab.ap")?;
        if aps.iter().any(|a| a.bssid == ap.bssid) {
            let message = "two access points with the same BSSID";
            return Err(source.error(bssid_at, Some("lab.ap.bssid"), message));
        }
        aps.push(ap);
    }
    let mut hosts = Vec::new();
    for (name, value) in raw.hosts {
        let addr =
            value.as_str().and_then(|v| v.parse::<std::net::Ipv4Addr>().ok()).ok_or_else(|| {
                source.error(
                    0,
                    Some("lab.hosts"),
                    format!("host `{name}` needs an IPv4 address as a string"),
                )
            })?;
        hosts.push((name, addr));
    }
    Ok(LabSpec { aps, hosts })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDut {
    kind: Spanned<String>,
    /// Simulated module: the binary (default: `gecko-sim` next to the running `hil`).
    binary: Option<String>,
    /// Simulated module: the MAC it reports.
    mac: Option<String>,
    /// Simulated module: the bytes its TLS stack may allocate (default: no limit), so
    /// `TLS malloc failed` is reached as on a module short of RAM.
    tls_heap: Option<usize>,
    /// QEMU: the machine (`-M`), e.g. `mps2-an386`.
    machine: Option<Spanned<String>>,
    /// QEMU: the firmware image (`-kernel`), relative to the working directory.
    image: Option<Spanned<String>>,
    /// QEMU: the emulator (default `qemu-system-arm`).
    qemu: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSerial {
    port: Option<Spanned<String>>,
    usb_serial: Option<Spanned<String>>,
    baud: Option<u32>,
    flow_control: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    command_ms: Option<u64>,
    reboot_ms: Option<u64>,
}

/// Where the module's console is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// A device path (`/dev/ttyUSB0`, `/dev/serial/by-id/...`).
    Path(PathBuf),
    /// The USB serial number of the adapter.
    UsbSerial(String),
    /// A serial port exported over the network (`tcp://HOST:PORT`, `rfc2217://HOST:PORT`,
    /// e.g. by `ser2net`).
    Net(crate::channel::net::NetPort),
    /// The console a labgrid place exports (`[labgrid]`), found when the place is held.
    Labgrid(crate::labgrid::LabgridSpec),
}

/// The device under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dut {
    /// The harness starts a simulated module and talks to its pty.
    Sim { binary: Option<PathBuf>, mac: Option<String>, tls_heap: Option<usize> },
    /// A real module on a serial port.
    Hardware { port: PortSpec },
    /// The firmware on an emulated board: the harness starts QEMU with the image and talks
    /// to the board's console UART on the pty QEMU opens.
    Qemu { qemu: PathBuf, machine: String, image: PathBuf },
}

/// A validated rig.
#[derive(Clone, Debug)]
pub struct Rig {
    pub name: String,
    pub description: Option<String>,
    pub path: PathBuf,
    pub dut: Dut,
    pub baud: u32,
    pub flow_control: FlowControl,
    pub command_timeout: Duration,
    pub reboot_timeout: Duration,
    /// Known deviations by case id.
    pub deviations: HashMap<String, Deviation>,
    /// The debug probe of a hardware rig (flashing the firmware).
    pub probe: Option<crate::probe::ProbeSpec>,
    /// Power control of a hardware rig (a sim rig's module is power-cycled by restarting
    /// its process).
    pub power: Option<PowerSpec>,
    /// The simulated lab network (sim rigs only).
    pub lab: Option<LabSpec>,
    /// The transports cases run over (`hil run --transport` picks among them); default
    /// `serial`. Setup and recovery always go over the serial console, whatever these are.
    pub transports: Vec<Transport>,
    /// The HTTP server's settings for the REST and command stream transports (`[http]`).
    pub http: HttpSpec,
}

/// A known deviation of this rig's module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deviation {
    pub reason: String,
    /// Where it was listed, for "remove the entry" messages.
    pub origin: String,
}

impl Rig {
    pub fn kind(&self) -> &'static str {
        match self.dut {
            Dut::Sim { .. } => "sim",
            Dut::Hardware { .. } => "hardware",
            Dut::Qemu { .. } => "qemu",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectations {
    #[serde(default)]
    deviation: Vec<Spanned<RawDeviation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeviation {
    case: String,
    reason: String,
}

/// Loads and validates a rig file (and its expectations file, if it names one).
pub fn load(path: &Path) -> Result<Rig, SpecError> {
    let source = Source::read(path)?;
    let raw: RawRig = source.parse()?;
    let kind_at = raw.dut.kind.span().start;
    let kind = raw.dut.kind.get_ref().as_str();
    if kind != "qemu"
        && let Some(key) =
            [("machine", &raw.dut.machine), ("image", &raw.dut.image), ("qemu", &raw.dut.qemu)]
                .into_iter()
                .find_map(|(name, value)| value.as_ref().map(|v| (name, v.span().start)))
    {
        return Err(source.error(
            key.1,
            Some(&format!("dut.{}", key.0)),
            format!("`{}` is only for `kind = \"qemu\"`", key.0),
        ));
    }
    if kind != "hardware"
        && let Some(lg) = &raw.labgrid
    {
        return Err(source.error(
            lg.span().start,
            Some("labgrid"),
            "a [labgrid] place holds a module: only for `kind = \"hardware\"`",
        ));
    }
    let dut = match kind {
        "sim" => {
            if let Some(p) = raw.serial.port.as_ref().or(raw.serial.usb_serial.as_ref()) {
                return Err(source.error(
                    p.span().start,
                    Some("serial.port"),
                    "a simulated module's port is made by the harness; remove this key",
                ));
            }
            Dut::Sim {
                binary: raw.dut.binary.map(PathBuf::from),
                mac: raw.dut.mac,
                tls_heap: raw.dut.tls_heap,
            }
        }
        "hardware" => {
            if raw.dut.binary.is_some() || raw.dut.mac.is_some() || raw.dut.tls_heap.is_some() {
                return Err(source.error(
                    kind_at,
                    Some("dut"),
                    "`binary`, `mac` and `tls_heap` are only for `kind = \"sim\"`",
                ));
            }
            let port = match (raw.serial.port, raw.serial.usb_serial) {
                (None, None) if raw.labgrid.is_some() => {
                    let lg = raw.labgrid.as_ref().map(|l| (l.span().start, l.get_ref()));
                    let (at, lg) = lg.ok_or_else(|| source.error(kind_at, Some("labgrid"), ""))?;
                    PortSpec::Labgrid(labgrid_spec(&source, at, lg)?)
                }
                (Some(p), _) | (_, Some(p)) if raw.labgrid.is_some() => {
                    return Err(source.error(
                        p.span().start,
                        Some("serial.port"),
                        "the console of a [labgrid] rig is the one its place exports: remove this key",
                    ));
                }
                (Some(p), None) if p.get_ref().contains("://") => net_port(&source, p)?,
                (Some(p), None) => PortSpec::Path(PathBuf::from(p.into_inner())),
                (None, Some(s)) => PortSpec::UsbSerial(s.into_inner()),
                (Some(p), Some(_)) => {
                    return Err(source.error(
                        p.span().start,
                        Some("serial.port"),
                        "give `port` or `usb_serial`, not both",
                    ));
                }
                (None, None) => return Err(source.error(
                    kind_at,
                    Some("serial"),
                    "a hardware rig needs `[serial] port = \"/dev/...\"` or `usb_serial = \"...\"`",
                )),
            };
            Dut::Hardware { port }
        }
        "qemu" => qemu_dut(&source, kind_at, raw.dut, &raw.serial)?,
        other => {
            return Err(source.error(
                kind_at,
                Some("dut.kind"),
                format!("`{other}` is not `sim`, `hardware` or `qemu`"),
            ));
        }
    };
    let flow_control = match raw.serial.flow_control {
        None => FlowControl::None,
        Some(f) => match f.get_ref().as_str() {
            "none" => FlowControl::None,
            "hardware" => FlowControl::Hardware,
            "software" => FlowControl::Software,
            other => {
                return Err(source.error(
                    f.span().start,
                    Some("serial.flow_control"),
                    format!("`{other}` is not none, hardware or software"),
                ));
            }
        },
    };
    let deviations = match raw.expectations {
        None => HashMap::new(),
        Some(file) => {
            let at = file.span().start;
            let file = path.parent().unwrap_or(Path::new(".")).join(file.into_inner());
            if !file.exists() {
                return Err(source.error(
                    at,
                    Some("expectations"),
                    format!("{} does not exist", file.display()),
                ));
            }
            load_expectations(&file)?
        }
    };
    let lab = match raw.lab {
        None => None,
        // The emulated board's radio is the lab's simulated one, as lab equipment.
        Some(_) if matches!(dut, Dut::Hardware { .. }) => {
            return Err(source.error(
                kind_at,
                Some("lab"),
                "a [lab] network is simulated: only for `kind = \"sim\"` or `\"qemu\"` (AP control for real rigs is not supported yet)",
            ));
        }
        Some(raw) => Some(lab_spec(&source, raw)?),
    };
    let probe = match raw.probe {
        None => None,
        Some(_) if !matches!(dut, Dut::Hardware { .. }) => {
            return Err(source.error(
                kind_at,
                Some("probe"),
                "[probe] is for hardware rigs: a simulated module or QEMU has no flash to write",
            ));
        }
        Some(raw) => {
            if let Err(message) = crate::probe::check_chip(raw.chip.get_ref()) {
                let message = message.to_string();
                return Err(source.error(raw.chip.span().start, Some("probe.chip"), message));
            }
            if let Some(sel) = &raw.selector
                && let Err(message) = crate::probe::check_selector(sel.get_ref())
            {
                let message = message.to_string();
                return Err(source.error(sel.span().start, Some("probe.selector"), message));
            }
            let dir = path.parent().unwrap_or(Path::new("."));
            Some(crate::probe::ProbeSpec {
                chip: raw.chip.into_inner(),
                selector: raw.selector.map(Spanned::into_inner),
                firmware: raw.firmware.map(|f| dir.join(f)),
            })
        }
    };
    let transports = transports(&source, raw.transports)?;
    let http = match raw.http {
        None => HttpSpec::default(),
        Some(raw) => {
            let at = raw.span().start;
            match raw.into_inner() {
                RawHttp { username: None, password: None } => HttpSpec::default(),
                RawHttp { username: Some(username), password: Some(password) }
                    if !username.is_empty() && !password.is_empty() =>
                {
                    let credentials = crate::channel::rest::Credentials { username, password };
                    HttpSpec { credentials: Some(credentials) }
                }
                _ => {
                    // The server asks for credentials only when both are set (chapter).
                    let message = "give both `username` and `password` (not empty), or neither";
                    return Err(source.error(at, Some("http"), message));
                }
            }
        }
    };
    let power = match raw.power {
        None => None,
        Some(_) if !matches!(dut, Dut::Hardware { .. }) => {
            return Err(source.error(
                kind_at,
                Some("power"),
                "[power] is for hardware rigs: a simulated module or QEMU is power-cycled by restarting its process",
            ));
        }
        Some(raw) => {
            let raw = raw.into_inner();
            for (key, command) in [("power.off", &raw.off), ("power.on", &raw.on)] {
                if command.get_ref().first().is_none_or(|program| program.trim().is_empty()) {
                    return Err(source.error(
                        command.span().start,
                        Some(key),
                        "give the program and its arguments, e.g. [\"uhubctl\", \"-a\", \"off\"]",
                    ));
                }
            }
            Some(PowerSpec {
                off: raw.off.into_inner(),
                on: raw.on.into_inner(),
                off_time: Duration::from_millis(raw.off_ms.unwrap_or(1_000)),
            })
        }
    };
    Ok(Rig {
        name: raw.name,
        description: raw.description,
        path: path.to_path_buf(),
        dut,
        baud: raw.serial.baud.unwrap_or(115_200),
        flow_control,
        command_timeout: Duration::from_millis(raw.timeouts.command_ms.unwrap_or(5_000)),
        reboot_timeout: Duration::from_millis(raw.timeouts.reboot_ms.unwrap_or(15_000)),
        deviations,
        probe,
        power,
        lab,
        transports,
        http,
    })
}

/// A `[labgrid]` table: a place or tags (not both), the client program.
fn labgrid_spec(
    source: &Source,
    at: usize,
    raw: &RawLabgrid,
) -> Result<crate::labgrid::LabgridSpec, SpecError> {
    use crate::labgrid::{LabgridSpec, PlaceFilter};
    let error = |message: &str| source.error(at, Some("labgrid"), message);
    let filter = match (&raw.place, raw.tags.is_empty()) {
        (Some(place), true) => PlaceFilter::Name(place.clone()),
        (None, false) => PlaceFilter::Tags(raw.tags.clone().into_iter().collect()),
        (Some(_), false) => return Err(error("give `place` or `tags`, not both")),
        (None, true) => return Err(error("name a `place` or `tags = { key = \"value\" }`")),
    };
    let bad = |v: &str| v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '=');
    if let PlaceFilter::Tags(tags) = &filter
        && let Some((k, v)) = tags.iter().find(|(k, v)| bad(k) || bad(v))
    {
        return Err(error(&format!("tag `{k} = \"{v}\"`: keys and values without spaces or `=`")));
    }
    let client = match &raw.client {
        Some(c) => PathBuf::from(c),
        None => crate::labgrid::find_client().unwrap_or_else(|| PathBuf::from("labgrid-client")),
    };
    Ok(LabgridSpec {
        coordinator: raw.coordinator.clone(),
        filter,
        wait: Duration::from_secs(raw.wait_s.unwrap_or(60)),
        client,
    })
}

/// A `[serial] port` URL: well-formed, and its host resolves (a typo is found before the
/// run, not as a link error in every case).
fn net_port(source: &Source, port: Spanned<String>) -> Result<PortSpec, SpecError> {
    let at = port.span().start;
    let error = |message: String| source.error(at, Some("serial.port"), message);
    let net: crate::channel::net::NetPort = port
        .get_ref()
        .parse()
        .map_err(|e: crate::channel::net::NetPortError| error(e.to_string()))?;
    net.resolve().map_err(|e| error(format!("host `{}` does not resolve: {e}", net.host)))?;
    Ok(PortSpec::Net(net))
}

/// A `kind = "qemu"` dut: `machine` and `image` given, the console made by the harness.
fn qemu_dut(
    source: &Source,
    kind_at: usize,
    dut: RawDut,
    serial: &RawSerial,
) -> Result<Dut, SpecError> {
    if let Some(p) = serial.port.as_ref().or(serial.usb_serial.as_ref()) {
        return Err(source.error(
            p.span().start,
            Some("serial.port"),
            "QEMU's console is a pty the harness opens; remove this key",
        ));
    }
    if dut.binary.is_some() || dut.mac.is_some() {
        return Err(source.error(
            kind_at,
            Some("dut"),
            "`binary` and `mac` are only for `kind = \"sim\"`",
        ));
    }
    let Some(machine) = dut.machine else {
        return Err(source.error(
            kind_at,
            Some("dut.machine"),
            "a QEMU rig needs `machine = \"...\"` (e.g. \"mps2-an386\")",
        ));
    };
    let name = machine.get_ref();
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(source.error(
            machine.span().start,
            Some("dut.machine"),
            format!("`{name}` is not a QEMU machine name (letters, digits, `-`, `_`, `.`)"),
        ));
    }
    let Some(image) = dut.image else {
        return Err(source.error(
            kind_at,
            Some("dut.image"),
            "a QEMU rig needs `image = \"path/to/firmware.elf\"`",
        ));
    };
    if image.get_ref().trim().is_empty() {
        return Err(source.error(image.span().start, Some("dut.image"), "empty image path"));
    }
    let qemu = match dut.qemu {
        None => PathBuf::from("qemu-system-arm"),
        Some(q) if q.get_ref().trim().is_empty() => {
            return Err(source.error(q.span().start, Some("dut.qemu"), "empty emulator path"));
        }
        Some(q) => PathBuf::from(q.into_inner()),
    };
    Ok(Dut::Qemu { qemu, machine: machine.into_inner(), image: PathBuf::from(image.into_inner()) })
}

/// The rig's `transports`: known, implemented, each once; `serial` when not given.
fn transports(
    source: &Source,
    raw: Option<Spanned<Vec<Spanned<String>>>>,
) -> Result<Vec<Transport>, SpecError> {
    let Some(raw) = raw else { return Ok(vec![Transport::Serial]) };
    let at = raw.span().start;
    let mut out = Vec::new();
    for name in raw.into_inner() {
        let error = |message: String| source.error(name.span().start, Some("transports"), message);
        let transport = name
            .get_ref()
            .parse::<Transport>()
            .and_then(Transport::ensure_implemented)
            .map_err(|e| error(e.to_string()))?;
        if out.contains(&transport) {
            return Err(error(format!("`{transport}` is listed twice")));
        }
        out.push(transport);
    }
    if out.is_empty() {
        return Err(source.error(at, Some("transports"), "name at least one transport (`serial`)"));
    }
    Ok(out)
}

fn load_expectations(path: &Path) -> Result<HashMap<String, Deviation>, SpecError> {
    let source = Source::read(path)?;
    let raw: RawExpectations = source.parse()?;
    let mut out = HashMap::new();
    for d in raw.deviation {
        let at = d.span().start;
        let d = d.into_inner();
        if d.reason.trim().is_empty() {
            return Err(source.error(at, Some("reason"), "every deviation needs a reason"));
        }
        let origin = format!("{}:{}", path.display(), source.line_of(at));
        if out.insert(d.case.clone(), Deviation { reason: d.reason, origin }).is_some() {
            return Err(source.error(
                at,
                Some("case"),
                format!("case `{}` is listed twice", d.case),
            ));
        }
    }
    Ok(out)
}

/// Why no tty was found for a USB serial number.
#[derive(Debug, thiserror::Error)]
pub enum UsbSerialError {
    #[error("cannot list /sys/class/tty: {0}")]
    Sysfs(#[source] std::io::Error),
    #[error("no USB serial adapter with serial number `{serial}` is connected ({})", found(seen))]
    NotConnected {
        serial: String,
        /// The adapters that are connected: `/dev/ttyUSB0 (A50285BI)`.
        seen: Vec<String>,
    },
}

fn found(seen: &[String]) -> String {
    if seen.is_empty() {
        "no USB serial adapters found at all".to_string()
    } else {
        format!("found: {}", seen.join(", "))
    }
}

/// Finds the tty device whose USB adapter has this serial number, through sysfs (no libudev
/// needed).
pub fn find_usb_serial(serial: &str) -> Result<PathBuf, UsbSerialError> {
    let mut seen = Vec::new();
    let entries = std::fs::read_dir("/sys/class/tty").map_err(UsbSerialError::Sysfs)?;
    for entry in entries.filter_map(Result::ok) {
        let Ok(mut dir) = std::fs::canonicalize(entry.path().join("device")) else { continue };
        // Walk up from the interface to the USB device, which has the `serial` attribute.
        for _ in 0..4 {
            if let Ok(found) = std::fs::read_to_string(dir.join("serial")) {
                let found = found.trim().to_string();
                let dev = PathBuf::from("/dev").join(entry.file_name());
                if found == serial {
                    return Ok(dev);
                }
                seen.push(format!("{} ({found})", dev.display()));
                break;
            }
            if !dir.pop() {
                break;
            }
        }
    }
    Err(UsbSerialError::NotConnected { serial: serial.to_string(), seen })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn rig(text: &str) -> Result<Rig, SpecError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.toml");
        std::fs::File::create(&path).and_then(|mut f| f.write_all(text.as_bytes())).expect("write");
        let r = load(&path);
        drop(dir);
        r.map_err(|mut e| {
            e.file = PathBuf::from("r.toml");
            e
        })
    }

    #[rstest::rstest]
    #[case::default("", Ok(vec![Transport::Serial]))]
    #[case::serial("transports = [\"serial\"]\n", Ok(vec![Transport::Serial]))]
    #[case::unknown(
        "transports = [\"serial\", \"http\"]\n",
        Err(
            "r.toml:1: key `transports`: unknown transport `http` (known: serial, rest, websocket, terminal)"
        )
    )]
    #[case::web("transports = [\"rest\", \"websocket\"]\n", Ok(vec![Transport::Rest, Transport::CmdStream]))]
    #[case::all(
        "transports = [\"serial\", \"rest\", \"websocket\", \"terminal\"]\n",
        Ok(Transport::ALL.to_vec())
    )]
    #[case::twice(
        "transports = [\"serial\", \"serial\"]\n",
        Err("r.toml:1: key `transports`: `serial` is listed twice")
    )]
    #[case::none(
        "transports = []\n",
        Err("r.toml:1: key `transports`: name at least one transport (`serial`)")
    )]
    fn transports_of_a_rig(#[case] line: &str, #[case] want: Result<Vec<Transport>, &str>) {
        let got = rig(&format!("{line}name = \"x\"\n[dut]\nkind = \"sim\"\n"));
        assert_eq!(
            got.map(|r| r.transports).map_err(|e| e.to_string()),
            want.map_err(String::from)
        );
    }

    const BENCH: &str =
        "name = \"bench\"\n[dut]\nkind = \"hardware\"\n[serial]\nport = \"/dev/ttyUSB0\"\n";

    #[test]
    fn power_control_of_a_hardware_rig() {
        let r = rig(&format!(
            "{BENCH}[power]\noff = [\"uhubctl\", \"-a\", \"off\"]\non = [\"uhubctl\", \"-a\", \"on\"]\noff_ms = 2500\n"
        ))
        .expect("valid");
        let power = r.power.expect("power control");
        assert_eq!(power.off, ["uhubctl", "-a", "off"]);
        assert_eq!(power.on[2], "on");
        assert_eq!(power.off_time, Duration::from_millis(2500));
        let r = rig(&format!("{BENCH}[power]\noff = [\"x\"]\non = [\"y\"]\n")).expect("valid");
        assert_eq!(r.power.map(|p| p.off_time), Some(Duration::from_secs(1)), "default off time");
    }

    #[rstest::rstest]
    #[case::empty_program("[power]\noff = []\non = [\"y\"]\n", 7, Some("power.off"))]
    #[case::blank_program("[power]\noff = [\"x\"]\non = [\" \"]\n", 8, Some("power.on"))]
    #[case::missing_on("[power]\noff = [\"x\"]\n", 6, None)]
    #[case::unknown_key("[power]\noff = [\"x\"]\non = [\"y\"]\nshell = true\n", 9, Some("shell"))]
    fn bad_power_sections_name_their_line(
        #[case] power: &str,
        #[case] line: usize,
        #[case] key: Option<&str>,
    ) {
        let e = rig(&format!("{BENCH}{power}")).expect_err("invalid");
        assert_eq!((e.line, e.key.as_deref()), (line, key), "{e}");
    }

    #[test]
    fn a_sim_rig_has_no_power_section() {
        let e =
            rig("name = \"sim\"\n[dut]\nkind = \"sim\"\n[power]\noff = [\"x\"]\non = [\"y\"]\n")
                .expect_err("sim rigs power-cycle by restarting the module");
        assert_eq!(e.key.as_deref(), Some("power"), "{e}");
    }

    #[test]
    fn sim_rig() {
        let r = rig("name = \"sim\"\n[dut]\nkind = \"sim\"\n").expect("valid");
        assert_eq!(r.dut, Dut::Sim { binary: None, mac: None, tls_heap: None });
        assert_eq!(r.baud, 115_200);
    }

    #[test]
    fn hardware_by_usb_serial() {
        let r = rig(
            "name = \"bench\"\n[dut]\nkind = \"hardware\"\n[serial]\nusb_serial = \"A1\"\nflow_control = \"hardware\"\npower = 1\n",
        );
        let e = r.expect_err("power is not a serial key");
        assert_eq!((e.line, e.key.as_deref()), (7, Some("power")));
        let r = rig("name = \"bench\"\n[dut]\nkind = \"hardware\"\n[serial]\nusb_serial = \"A1\"\nflow_control = \"hardware\"\n").expect("valid");
        assert_eq!(r.dut, Dut::Hardware { port: PortSpec::UsbSerial("A1".into()) });
        assert_eq!(r.flow_control, FlowControl::Hardware);
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = rig("name = \"x\"\n[dut]\nkind = \"hardware\"\n").expect_err("no port");
        assert_eq!((e.line, e.key.as_deref()), (3, Some("serial")));
        let e = rig("name = \"x\"\n[dut]\nkind = \"fpga\"\n").expect_err("kind");
        assert_eq!((e.line, e.key.as_deref()), (3, Some("dut.kind")));
        let e = rig("name = \"x\"\n[dut]\nkind = \"sim\"\n[serial]\nport = \"/dev/ttyS0\"\n")
            .expect_err("sim port");
        assert_eq!((e.line, e.key.as_deref()), (5, Some("serial.port")));
        let e = rig("name = \"x\"\n[dut]\nkind = \"sim\"\nexpectations = \"nope.toml\"\n")
            .expect_err("missing file");
        assert_eq!((e.line, e.key.as_deref()), (4, Some("expectations")));
    }

    #[rstest::rstest]
    #[case::rfc2217("rfc2217://127.0.0.1:2217", Ok("rfc2217://127.0.0.1:2217"))]
    #[case::tcp("tcp://localhost:3001", Ok("tcp://localhost:3001"))]
    #[case::no_port(
        "rfc2217://127.0.0.1",
        Err(
            "r.toml:5: key `serial.port`: `rfc2217://127.0.0.1` needs a port: `HOST:PORT`, PORT 1-65535"
        )
    )]
    #[case::scheme(
        "ssh://lab:22",
        Err(
            "r.toml:5: key `serial.port`: `ssh://lab:22` is not `tcp://HOST:PORT` or `rfc2217://HOST:PORT`"
        )
    )]
    #[case::unresolved(
        "tcp://no-such-host.invalid:3001",
        Err("r.toml:5: key `serial.port`: host `no-such-host.invalid` does not resolve")
    )]
    fn network_ports(#[case] url: &str, #[case] want: Result<&str, &str>) {
        let got =
            rig(&format!("name = \"n\"\n[dut]\nkind = \"hardware\"\n[serial]\nport = \"{url}\"\n"));
        match (got, want) {
            (Ok(r), Ok(want)) => match r.dut {
                Dut::Hardware { port: PortSpec::Net(net) } => assert_eq!(net.to_string(), want),
                other => panic!("{other:?}"),
            },
            (Err(e), Err(want)) => assert!(e.to_string().starts_with(want), "{e}"),
            (got, want) => panic!("{:?} instead of {want:?}", got.map(|r| r.dut)),
        }
    }

    #[test]
    fn qemu_rig() {
        let r = rig(
            "name = \"q\"\n[dut]\nkind = \"qemu\"\nmachine = \"mps2-an386\"\nimage = \"fw.elf\"\n",
        )
        .expect("valid");
        assert_eq!(
            r.dut,
            Dut::Qemu {
                qemu: PathBuf::from("qemu-system-arm"),
                machine: "mps2-an386".into(),
                image: PathBuf::from("fw.elf")
            }
        );
        assert_eq!(r.kind(), "qemu");
        // A lab: the board's radio is the lab's equipment.
        let with_lab = rig(
            "name = \"q\"\n[dut]\nkind = \"qemu\"\nmachine = \"mps2-an386\"\nimage = \"fw.elf\"\n[lab]\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"open\"\n",
        )
        .expect("valid");
        assert_eq!(with_lab.lab.map(|l| l.aps.len()), Some(1));
    }

    #[rstest::rstest]
    #[case::no_machine("kind = \"qemu\"\nimage = \"fw.elf\"\n", 3, "dut.machine", "needs `machine")]
    #[case::bad_machine(
        "kind = \"qemu\"\nmachine = \"a b\"\nimage = \"x\"\n",
        4,
        "dut.machine",
        "not a QEMU machine"
    )]
    #[case::no_image("kind = \"qemu\"\nmachine = \"mps2-an386\"\n", 3, "dut.image", "needs `image")]
    #[case::empty_qemu(
        "kind = \"qemu\"\nmachine = \"m\"\nimage = \"x\"\nqemu = \"\"\n",
        6,
        "dut.qemu",
        "empty emulator"
    )]
    #[case::image_on_sim(
        "kind = \"sim\"\nimage = \"fw.elf\"\n",
        4,
        "dut.image",
        "only for `kind = \"qemu\"`"
    )]
    #[case::port_on_qemu(
        "kind = \"qemu\"\nmachine = \"m\"\nimage = \"x\"\n[serial]\nport = \"/dev/ttyS0\"\n",
        7,
        "serial.port",
        "pty the harness opens"
    )]
    fn bad_qemu_rigs_name_their_line(
        #[case] dut: &str,
        #[case] line: usize,
        #[case] key: &str,
        #[case] message: &str,
    ) {
        let e = rig(&format!("name = \"q\"\n[dut]\n{dut}")).expect_err("invalid");
        assert_eq!((e.line, e.key.as_deref()), (line, Some(key)), "{e}");
        assert!(e.to_string().contains(message), "{e}");
    }

    #[test]
    fn lab_section() {
        let r = rig("name = \"x\"\n[dut]\nkind = \"sim\"\n[lab]\nhosts = { \"a.lab\" = \"10.77.0.5\" }\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"WPA2-AES\"\npasskey = \"labpass123\"\n").expect("valid");
        let lab = r.lab.expect("has a lab");
        assert_eq!(lab.aps[0].security, "wpa2-aes");
        assert_eq!(lab.aps[0].bssid, [2, 0, 0, 0, 1, 1]);
        assert_eq!(lab.hosts, vec![("a.lab".to_string(), std::net::Ipv4Addr::new(10, 77, 0, 5))]);
        let e = rig("name = \"x\"\n[dut]\nkind = \"sim\"\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01\"\nchannel = 6\nsecurity = \"open\"\n").expect_err("bad bssid");
        assert_eq!((e.line, e.key.as_deref()), (6, Some("lab.ap.bssid")));
        let e = rig("name = \"x\"\n[dut]\nkind = \"sim\"\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"wpa3\"\n").expect_err("bad security");
        assert_eq!((e.line, e.key.as_deref()), (8, Some("lab.ap.security")));
    }

    #[test]
    fn http_credentials_come_in_pairs() {
        let sim = "name = \"x\"\n[dut]\nkind = \"sim\"\n";
        let r =
            rig(&format!("{sim}[http]\nusername = \"admin\"\npassword = \"pw\"\n")).expect("valid");
        let c = r.http.credentials.expect("credentials");
        assert_eq!((c.username.as_str(), c.password.as_str()), ("admin", "pw"));
        assert_eq!(rig(sim).expect("valid").http, HttpSpec::default());
        let e = rig(&format!("{sim}[http]\nusername = \"admin\"\n")).expect_err("half");
        assert_eq!((e.line, e.key.as_deref()), (4, Some("http")));
    }

    #[test]
    fn unknown_usb_serial_says_so() {
        let e = find_usb_serial("no-such-serial-XYZ").expect_err("absent");
        assert!(e.to_string().contains("no-such-serial-XYZ"), "{e}");
    }
}
