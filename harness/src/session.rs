//! Connecting to a rig's module: starting the simulated module (or QEMU with a board image)
//! when the rig asks for one, opening the serial port, bringing the console to a known format.
//!
//! A [`Session`] holds two channels. The **control channel** is the rig's serial console:
//! setup and teardown (factory reset, a case's `set`/`save`/`reboot`, recovery after an
//! infrastructure error) go over it, so a case that turns a network service off cannot cut
//! off its own setup. The **channel under test** carries the case's steps, over the
//! transport the run plans the case for. For the `serial` transport the channel under test
//! *is* the control channel (one port, one transcript, one console format): that is
//! [`UnderTest::SharesControl`]. Another transport gets its own channel, recorded in the
//! same transcript with its name before each line.

use crate::channel::cmdstream::CmdStreamChannel;
use crate::channel::net::{LineSettings, NetPort};
use crate::channel::rest::{HttpTarget, RestChannel};
use crate::channel::serial::{SerialChannel, SerialSettings};
use crate::channel::terminal::{TerminalChannel, Unconnected};
use crate::channel::{Channel, ChannelError, ConsoleFormat, Recorder, Request};
use crate::model::TranscriptEntry;
use crate::rig::{Dut, PortSpec, Rig, UsbSerialError, find_usb_serial};
use crate::transport::{Transport, TransportError};
use std::io::{BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long `network_up` over the control channel may take when a transport needs the
/// network (the lab's DHCP answers within a few seconds).
const NETWORK_UP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a session could not be set up: always an infrastructure problem.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("simulated module {binary}: {message}")]
    Sim { binary: String, message: String },
    #[error("QEMU ({qemu}, image {image}): {message}")]
    Qemu { qemu: String, image: String, message: String },
    #[error("rig {rig}: {source}")]
    Port {
        rig: String,
        #[source]
        source: PortError,
    },
    #[error("rig {rig}: {source}")]
    Power {
        rig: String,
        #[source]
        source: PowerError,
    },
    #[error("rig {rig}: no [power] section: this rig cannot power-cycle its module")]
    NoPower { rig: String },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("lab network: {0} (to run without the lab network, use --rig rigs/sim-nolab.toml)")]
    Lab(#[from] crate::lab::LabError),
    #[error("lab control channel: {0}")]
    Radio(#[from] crate::ap::ApError),
    #[error(transparent)]
    Labgrid(#[from] crate::labgrid::LabgridError),
    #[error("preparing the {transport} transport: {message}")]
    Prepare { transport: Transport, message: String },
    #[error("the {transport} transport needs the rig's lab network; this rig has no [lab]")]
    NeedsLab { transport: Transport },
    #[error("getting the {transport} transport ready: {source}")]
    UnderTest {
        transport: Transport,
        #[source]
        source: ChannelError,
    },
    #[error("module on {port} does not answer: {source}")]
    NoAnswer {
        port: String,
        #[source]
        source: ChannelError,
    },
}

/// The file in a simulated module's work directory where it writes its TLS session secrets
/// (NSS key log format).
pub const TLS_KEYLOG_FILE: &str = "tls-keylog.txt";

/// A running module process the harness started: the simulated module, or QEMU with the
/// board's image. Killed when dropped (the end of a session, and the teardown after a
/// signal, which drops the session).
#[derive(Debug)]
pub struct SimProcess {
    child: Child,
    pub console: PathBuf,
    pub pty: PathBuf,
}

impl SimProcess {
    /// Starts `binary` with its console link, NVM file and file store in `workdir`, and waits until it
    /// says where its console is.
    pub fn spawn(
        binary: &Path,
        workdir: &Path,
        mac: Option<&str>,
        tls_heap: Option<usize>,
        lab: Option<&crate::lab::Lab>,
    ) -> Result<Self, SessionError> {
        let fail =
            |message: String| SessionError::Sim { binary: binary.display().to_string(), message };
        if !binary.exists() {
            return Err(fail("not found (build it with `cargo build -p gecko-sim`, or set `[dut] binary` in the rig)".into()));
        }
        std::fs::create_dir_all(workdir)
            .map_err(|e| fail(format!("cannot create {}: {e}", workdir.display())))?;
        let console = workdir.join("console");
        // In a lab, the module runs inside its network namespace, on its TAP device, and
        // serves the lab control channel.
        let mut cmd = match lab {
            Some(lab) => {
                let mut cmd = lab.command(binary);
                cmd.arg("--tap")
                    .arg(lab.tap_name())
                    .arg("--lab-socket")
                    .arg(workdir.join("lab.sock"));
                cmd
            }
            None => Command::new(binary),
        };
        cmd.arg("--console").arg(&console).arg("--nvm").arg(workdir.join("nvm"));
        cmd.arg("--files").arg(workdir.join("files"));
        if let Some(mac) = mac {
            cmd.arg("--mac").arg(mac);
        }
        // The lab build writes its TLS session secrets where the report finds them, so a
        // capture of the run can be decrypted (Wireshark, tshark).
        cmd.arg("--tls-keylog").arg(workdir.join(TLS_KEYLOG_FILE));
        if let Some(bytes) = tls_heap {
            cmd.arg("--tls-heap").arg(bytes.to_string());
        }
        // Appended to: a module started again (power cycle, recovery) keeps the earlier log.
        let log_start = std::fs::metadata(workdir.join("sim.log")).map_or(0, |m| m.len());
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(workdir.join("sim.log"))
            .map_err(|e| fail(format!("cannot create its log: {e}")))?;
        // Its own process group: a Ctrl-C at the terminal goes to the harness, which then
        // stops the module itself. Its stdin is a pipe the harness holds: if the harness dies
        // without cleaning up, the module sees end of input and exits.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.arg("--exit-on-stdin-eof");
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| fail(format!("cannot start: {e}")))?;
        let found = |line: &str| line.strip_prefix("console: ").map(PathBuf::from);
        let log = workdir.join("sim.log");
        let (child, pty) = await_console(child, found, None, &log, log_start).map_err(fail)?;
        Ok(Self { child, console, pty })
    }

    /// Starts `qemu -M machine -kernel image` with the board's console UART on a pty and
    /// waits until QEMU says which pty (QEMU's output goes to `qemu.log` in `workdir`). With
    /// `radio`, the board's second UART and its NIC are attached to the radio equipment
    /// ([`RadioSockets::qemu_args`]).
    pub fn spawn_qemu(
        qemu: &Path,
        machine: &str,
        image: &Path,
        workdir: &Path,
        radio: Option<&RadioSockets>,
    ) -> Result<Self, SessionError> {
        let fail = |message: String| SessionError::Qemu {
            qemu: qemu.display().to_string(),
            image: image.display().to_string(),
            message,
        };
        if !image.exists() {
            return Err(fail(
                "the image does not exist (build it with `cargo xtask build-board qemu-an386`)"
                    .into(),
            ));
        }
        std::fs::create_dir_all(workdir)
            .map_err(|e| fail(format!("cannot create {}: {e}", workdir.display())))?;
        let log_path = workdir.join("qemu.log");
        let log_start = std::fs::metadata(&log_path).map_or(0, |m| m.len());
        let open_log = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| fail(format!("cannot create its log {}: {e}", log_path.display())))
        };
        let stderr = open_log()?;
        let log = open_log()?;
        // QEMU dies with this process even when it is killed outright (SIGKILL leaves no
        // chance to stop it), through `setpriv --pdeathsig` where util-linux has it, as the
        // lab's dnsmasq does.
        let mut cmd = match crate::lab::netns::find_tool("setpriv") {
            Some(setpriv) => {
                let mut cmd = Command::new(setpriv);
                cmd.args(["--pdeathsig", "KILL"]).arg(qemu);
                cmd
            }
            None => Command::new(qemu),
        };
        // The monitor on a socket of the work dir: the harness resets the machine through it
        // (`system_reset`, its power cycle), which keeps the board's retained RAM.
        let monitor = format!("unix:{},server=on,wait=off", workdir.join(QEMU_MONITOR).display());
        cmd.args(["-M", machine, "-nographic", "-monitor", &monitor]);
        match radio {
            Some(sockets) => {
                // QEMU binds its end of the frames itself: a file left by an earlier QEMU
                // would make that fail.
                let _ = std::fs::remove_file(&sockets.board_frames);
                cmd.args(sockets.qemu_args());
            }
            None => {
                cmd.args(["-serial", "pty"]);
            }
        }
        cmd.arg("-kernel").arg(image);
        // Its own process group: a Ctrl-C at the terminal goes to the harness, which then
        // stops QEMU itself.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr).spawn().map_err(
                |e| {
                    let hint = if e.kind() == std::io::ErrorKind::NotFound {
                        " (install it: apt-get install qemu-system-arm)"
                    } else {
                        ""
                    };
                    fail(format!("cannot start: {e}{hint}"))
                },
            )?;
        let (child, pty) =
            await_console(child, qemu_pty, Some(log), &log_path, log_start).map_err(fail)?;
        Ok(Self { child, console: pty.clone(), pty })
    }

    /// Kills the process (tests of what the harness does when a module dies).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running; `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a board's radio equipment and QEMU meet, in the module's work dir: the board's
/// second UART (the radio link, a stream socket the equipment listens on) and its NIC (one
/// Ethernet frame per datagram: the equipment binds [`RadioSockets::frames`], QEMU
/// [`RadioSockets::board_frames`]).
#[derive(Clone, Debug)]
pub struct RadioSockets {
    pub radio: PathBuf,
    pub frames: PathBuf,
    pub board_frames: PathBuf,
    pub lab: PathBuf,
}

impl RadioSockets {
    pub fn in_dir(workdir: &Path) -> Self {
        Self {
            radio: workdir.join("radio.sock"),
            frames: workdir.join("frames.sock"),
            board_frames: workdir.join("board-frames.sock"),
            lab: workdir.join("lab.sock"),
        }
    }

    /// QEMU's arguments that attach the board to the equipment: UART0 stays the console on
    /// a pty, UART1 connects to the radio socket (again after the equipment restarts), the
    /// onboard NIC (mps2-an386's LAN9118) sends its frames as datagrams.
    pub fn qemu_args(&self) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!("socket,id=radio,path={},reconnect=1", self.radio.display()),
            "-serial".into(),
            "pty".into(),
            "-serial".into(),
            "chardev:radio".into(),
            "-netdev".into(),
            format!(
                "dgram,id=nic,local.type=unix,local.path={},remote.type=unix,remote.path={}",
                self.board_frames.display(),
                self.frames.display()
            ),
            "-net".into(),
            "nic,netdev=nic".into(),
        ]
    }
}

/// The simulated radio as lab equipment for a board (`gecko-sim radio`), running inside the
/// lab's namespace on its TAP device. It dies with the harness (pdeathsig, and end of its
/// standard input) and is killed when dropped; a power cycle of the board leaves it running.
#[derive(Debug)]
pub struct RadioEquipment {
    child: Child,
    pub sockets: RadioSockets,
}

impl RadioEquipment {
    /// Starts `binary radio` in `lab` with its sockets in `workdir` and waits until it says
    /// its lab socket is served (the last it opens); its stderr goes to `radio.log`.
    pub fn spawn(
        binary: &Path,
        workdir: &Path,
        lab: &crate::lab::Lab,
    ) -> Result<Self, SessionError> {
        let fail = |message: String| SessionError::Sim {
            binary: format!("{} radio", binary.display()),
            message,
        };
        if !binary.exists() {
            return Err(fail("not found (build it with `cargo build -p gecko-sim`)".into()));
        }
        std::fs::create_dir_all(workdir)
            .map_err(|e| fail(format!("cannot create {}: {e}", workdir.display())))?;
        let sockets = RadioSockets::in_dir(workdir);
        let log = workdir.join("radio.log");
        let log_start = std::fs::metadata(&log).map_or(0, |m| m.len());
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| fail(format!("cannot create its log: {e}")))?;
        let mut cmd = lab.daemon_command(binary);
        cmd.arg("radio")
            .arg("--tap")
            .arg(lab.tap_name())
            .arg("--radio-socket")
            .arg(&sockets.radio)
            .arg("--frames")
            .arg(&sockets.frames)
            .arg("--board-frames")
            .arg(&sockets.board_frames)
            .arg("--lab-socket")
            .arg(&sockets.lab)
            .arg("--exit-on-stdin-eof");
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr);
        let child = crate::lab::spawn_tied(cmd).map_err(|e| fail(format!("cannot start: {e}")))?;
        let found = |line: &str| line.strip_prefix("lab socket: ").map(PathBuf::from);
        let (child, _) = await_console(child, found, None, &log, log_start).map_err(fail)?;
        Ok(Self { child, sockets })
    }

    /// Whether it is still running; `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }
}

impl Drop for RadioEquipment {
    /// End of its input first, so it removes its sockets as it leaves; killed if it has not
    /// gone within a second.
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while self.exited().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a module process's stdout to its end (so it never blocks on it; into `echo` when
/// given) and waits up to 10 s for the line `found` recognises as naming its console. On
/// failure the process is killed, and the message quotes this start's part of its log
/// (`log`, from `log_start`).
fn await_console(
    mut child: Child,
    found: fn(&str) -> Option<PathBuf>,
    mut echo: Option<std::fs::File>,
    log: &Path,
    log_start: u64,
) -> Result<(Child, PathBuf), String> {
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        return Err("no stdout".into());
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(echo) = echo.as_mut() {
                let _ = writeln!(echo, "{line}");
            }
            if let Some(pty) = found(&line) {
                let _ = tx.send(pty);
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(pty) => Ok((child, pty)),
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            let text = std::fs::read(log).unwrap_or_default();
            let text = String::from_utf8_lossy(text.get(log_start as usize..).unwrap_or_default());
            Err(format!(
                "did not open its console within 10 s ({status}); its log: {}",
                text.trim()
            ))
        }
    }
}

/// The pty in QEMU's `char device redirected to /dev/pts/N (label serial0)`.
fn qemu_pty(line: &str) -> Option<PathBuf> {
    let rest = line.strip_prefix("char device redirected to ")?;
    let (path, label) = rest.split_once(' ')?;
    label.contains("serial0").then(|| PathBuf::from(path))
}

/// Where to find the simulated module binary when the rig does not say: next to the
/// running executable (cargo puts `hil` and `gecko-sim` in the same folder), then in
/// `target/debug`.
pub fn default_sim_binary() -> PathBuf {
    let name = "gecko-sim";
    if let Some(dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf))
    {
        for candidate in [dir.join(name), dir.join("..").join(name)] {
            if candidate.exists() {
                return candidate;
            }
        }
    }
    PathBuf::from("target/debug").join(name)
}

/// The simulated lab of a session: the network namespace with its DHCP/DNS server, and the
/// radio's control channel.
#[derive(Debug)]
pub struct LabSession {
    pub aps: crate::ap::SimAccessPoints,
    /// The access points of the rig file, restored before every case.
    pub rig_aps: Vec<crate::ap::ApConfig>,
    /// Shared so lab peers and clients can hold it while the session is in use.
    pub lab: std::sync::Arc<crate::lab::Lab>,
}

impl LabSession {
    /// Back to the rig's access points and no faults.
    pub fn reset(&mut self) -> Result<(), crate::ap::ApError> {
        use crate::ap::AccessPoints;
        self.aps.clear_faults()?;
        for ap in self.aps.list_aps()? {
            if !self.rig_aps.iter().any(|r| r.bssid == ap.bssid) {
                self.aps.remove_ap(&ap.bssid)?;
            }
        }
        for ap in &self.rig_aps {
            self.aps.add_ap(ap)?;
        }
        Ok(())
    }
}

/// The channel a case's steps run over.
pub enum UnderTest {
    /// The serial transport: the control channel itself (the same port, console format and
    /// transcript). Setup and steps then share one console, as they always did.
    SharesControl,
    /// Another transport: its own channel, recorded into the session's transcript.
    Own(Recorder<Box<dyn Channel + Send>>),
}

impl std::fmt::Debug for UnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SharesControl => f.write_str("SharesControl"),
            Self::Own(c) => write!(f, "Own({} at {})", c.transport(), c.endpoint()),
        }
    }
}

/// A connected module. Fields drop in order: the channel under test, the control port, then
/// the module, then the lab.
#[derive(Debug)]
pub struct Session {
    under_test: UnderTest,
    /// The control channel: the rig's serial console, for setup, teardown and recovery.
    pub control: Recorder<SerialChannel>,
    pub sim: Option<SimProcess>,
    /// A board's radio equipment (a QEMU rig with a `[lab]`), stopped after QEMU.
    pub radio: Option<RadioEquipment>,
    pub rig: Rig,
    workdir: PathBuf,
    pub lab: Option<LabSession>,
    /// The labgrid place the module is behind (`[labgrid]` rigs), released with the session.
    pub place: Option<crate::labgrid::Held>,
}

fn to_ap_config(ap: &crate::rig::ApSpec) -> crate::ap::ApConfig {
    crate::ap::ApConfig {
        ssid: ap.ssid.clone(),
        bssid: crate::rig::format_bssid(&ap.bssid),
        channel: ap.channel,
        security: ap.security.clone(),
        passkey: ap.passkey.clone(),
        rssi: ap.rssi,
        hidden: ap.hidden,
    }
}

/// Converts a spec table's access point to the lab's.
pub fn ap_config(ap: &crate::rig::ApSpec) -> crate::ap::ApConfig {
    to_ap_config(ap)
}

/// The rig's lab network, with its host names.
fn create_lab(
    rig: &Rig,
    spec: &crate::rig::LabSpec,
    workdir: &Path,
) -> Result<crate::lab::Lab, SessionError> {
    let mut config = crate::lab::LabConfig::default();
    for (name, addr) in &spec.hosts {
        if !config.hosts.iter().any(|h| &h.name == name) {
            config.hosts.push(crate::lab::LabHost::new(name, *addr));
        }
    }
    Ok(crate::lab::Lab::with_config(workdir, &rig.name, config)?)
}

impl Session {
    /// Starts (for a sim rig) and connects to the rig's module, and syncs its console.
    pub fn open(rig: &Rig, workdir: &Path) -> Result<Self, SessionError> {
        Self::open_on(rig, workdir, None)
    }

    /// [`Session::open`] on a labgrid place already held (a reopen keeps its place; `None`:
    /// a `[labgrid]` rig holds one now).
    fn open_on(
        rig: &Rig,
        workdir: &Path,
        held: Option<crate::labgrid::Held>,
    ) -> Result<Self, SessionError> {
        let mut lab = None;
        let mut radio = None;
        let sim = match &rig.dut {
            Dut::Sim { binary, mac, tls_heap } => {
                let binary = binary.clone().unwrap_or_else(default_sim_binary);
                let net = match &rig.lab {
                    Some(spec) => Some((create_lab(rig, spec, workdir)?, spec)),
                    None => None,
                };
                let sim = SimProcess::spawn(
                    &binary,
                    workdir,
                    mac.as_deref(),
                    *tls_heap,
                    net.as_ref().map(|(l, _)| l),
                )?;
                if let Some((l, spec)) = net {
                    let socket = workdir.join("lab.sock");
                    let deadline = std::time::Instant::now() + Duration::from_secs(5);
                    while !socket.exists() && std::time::Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let mut session = LabSession {
                        aps: crate::ap::SimAccessPoints::new(socket),
                        rig_aps: spec.aps.iter().map(to_ap_config).collect(),
                        lab: std::sync::Arc::new(l),
                    };
                    session.reset()?;
                    lab = Some(session);
                }
                Some(sim)
            }
            // In a lab, the board's radio is lab equipment: started first, in the lab, with
            // the rig's access points on its lab channel; QEMU then attaches to it.
            Dut::Qemu { qemu, machine, image } => {
                if let Some(spec) = &rig.lab {
                    let l = create_lab(rig, spec, workdir)?;
                    let equipment = RadioEquipment::spawn(&default_sim_binary(), workdir, &l)?;
                    let mut session = LabSession {
                        aps: crate::ap::SimAccessPoints::new(&equipment.sockets.lab),
                        rig_aps: spec.aps.iter().map(to_ap_config).collect(),
                        lab: std::sync::Arc::new(l),
                    };
                    session.reset()?;
                    lab = Some(session);
                    radio = Some(equipment);
                }
                let sockets = radio.as_ref().map(|r| &r.sockets);
                Some(SimProcess::spawn_qemu(qemu, machine, image, workdir, sockets)?)
            }
            Dut::Hardware { .. } => None,
        };
        let place = match (&rig.dut, held) {
            (Dut::Hardware { port: PortSpec::Labgrid(_) }, Some(held)) => Some(held),
            (Dut::Hardware { port: PortSpec::Labgrid(spec) }, None) => {
                Some(crate::labgrid::hold(spec)?)
            }
            _ => None,
        };
        let port_error =
            |source| SessionError::Port { rig: rig.path.display().to_string(), source };
        let port = port_path(rig, sim.as_ref(), place.as_ref()).map_err(port_error)?;
        let serial = open_serial(rig, &port).map_err(port_error)?;
        let mut session = Self {
            under_test: UnderTest::SharesControl,
            control: Recorder::new(serial),
            sim,
            radio,
            rig: rig.clone(),
            workdir: workdir.to_path_buf(),
            lab,
            place,
        };
        session
            .control
            .resync(ConsoleFormat::Machine, rig.reboot_timeout)
            .map_err(|source| SessionError::NoAnswer { port: port.to_string(), source })?;
        Ok(session)
    }

    /// The lab network of a sim or QEMU rig that has one: to run programs and clients inside it.
    pub fn lab(&self) -> Option<&crate::lab::Lab> {
        self.lab.as_ref().map(|l| &*l.lab)
    }

    /// The transport the case's steps run over.
    pub fn transport(&self) -> Transport {
        match &self.under_test {
            UnderTest::SharesControl => self.control.transport(),
            UnderTest::Own(channel) => channel.transport(),
        }
    }

    /// Whether the channel under test reads the same console format as the control channel
    /// (serial, the remote terminal: the module has one `system.cmd.format`), so setting the
    /// format on one sets it for both.
    pub fn shares_format(&self) -> bool {
        self.transport().capabilities().responses == crate::transport::ResponseFormat::Console
    }

    /// Whether the channel under test is the control channel (the serial transport).
    pub fn shares_control(&self) -> bool {
        matches!(self.under_test, UnderTest::SharesControl)
    }

    /// Runs the case's steps over `transport` from now on. Serial shares the control
    /// channel; a network transport is prepared over the control channel (see
    /// [`Session::prepare_under_test`]) and gets its own channel; the remote terminal gets
    /// its own, connected before each case's steps ([`Session::prepare_under_test`]).
    pub fn use_transport(&mut self, transport: Transport) -> Result<(), SessionError> {
        if self.transport() == transport {
            return Ok(());
        }
        match transport.ensure_implemented()? {
            Transport::Serial => self.under_test = UnderTest::SharesControl,
            // Connected before each case's steps (`prepare_under_test`), once the control
            // channel has set the module up.
            Transport::Terminal => {
                let channel: Box<dyn Channel + Send> = Box::new(Unconnected(transport));
                self.under_test = UnderTest::Own(Recorder::labelled(channel, transport.name()));
            }
            other => {
                self.under_test = UnderTest::SharesControl;
                let channel = self.open_network_channel(other, &[])?;
                self.under_test = UnderTest::Own(Recorder::labelled(channel, other.name()));
            }
        }
        Ok(())
    }

    /// Before a case's setup: a channel under test that takes the module's command
    /// interface from the serial console (a remote terminal turns the serial parser off)
    /// lets go of it, so the setup can go over the control channel.
    pub fn release_under_test(&mut self) {
        if let UnderTest::Own(channel) = &mut self.under_test
            && channel.transport() == Transport::Terminal
            && !channel.endpoint().ends_with("(not connected)")
        {
            channel.note("disconnecting for the setup");
            channel.inner_mut().close(self.rig.command_timeout);
            *channel.inner_mut() = Box::new(Unconnected(Transport::Terminal));
        }
    }

    /// After a case's setup, before its steps: the channel under test gets ready, set up
    /// over the control channel (the setup may have reset the module). `case_set` are the
    /// variables the case's setup set. A network transport: the module's network and HTTP
    /// server come up again (a network the case chose, `wlan.ssid`, is kept) and the channel
    /// is opened anew. The remote terminal: `remote_terminal.enabled` on, the network up (on
    /// the rig's first lab access point, the setup's `wlan.ssid`/`wlan.passkey` put back),
    /// then a connection from inside the lab to the module's address and
    /// `remote_terminal.port`, logging in with `remote_terminal.password`; `format` is the
    /// console format the module is in (the control channel's, which for a transport that
    /// shares it is the case's). Nothing for serial.
    pub fn prepare_under_test(
        &mut self,
        case_set: &[(String, String)],
        format: ConsoleFormat,
    ) -> Result<(), SessionError> {
        let transport = self.transport();
        if !matches!(self.under_test, UnderTest::Own(_)) {
            return Ok(());
        }
        let channel: Box<dyn Channel + Send> = if transport == Transport::Terminal {
            // Asked before connecting: a connected client turns the serial parser off.
            let password = self.control_get("remote_terminal.password")?;
            let password = (!password.is_empty()).then_some(password.as_str());
            let prompt = self.control_get("system.cmd.prompt_enabled")? == "1";
            let stream = self.terminal_stream()?;
            let timeout = self.rig.command_timeout;
            let channel = TerminalChannel::connect(stream, password, format, prompt, timeout)
                .map_err(|source| self.under_test_error(source))?;
            if let UnderTest::Own(own) = &mut self.under_test {
                own.note(format!("connected to {}", channel.endpoint()));
            }
            Box::new(channel)
        } else {
            self.open_network_channel(transport, case_set)?
        };
        if let UnderTest::Own(recorder) = &mut self.under_test {
            *recorder.inner_mut() = channel;
        }
        Ok(())
    }

    /// Prepares the module for a transport with a channel of its own, over the control
    /// channel, and opens that channel (one arm per transport).
    fn open_network_channel(
        &mut self,
        transport: Transport,
        case_set: &[(String, String)],
    ) -> Result<Box<dyn Channel + Send>, SessionError> {
        let fail = |source: ChannelError| SessionError::Prepare {
            transport,
            message: format!("cannot open the channel: {source}"),
        };
        Ok(match transport {
            Transport::Rest => {
                let target = self.prepare_http_server(transport, case_set)?;
                Box::new(RestChannel::connect(target).map_err(fail)?)
            }
            Transport::CmdStream => {
                let target = self.prepare_http_server(transport, case_set)?;
                let timeout = self.rig.command_timeout;
                Box::new(CmdStreamChannel::connect(target, timeout).map_err(fail)?)
            }
            other => {
                let available =
                    Transport::implemented().map(Transport::name).collect::<Vec<_>>().join(", ");
                return Err(TransportError::NotImplemented { transport: other, available }.into());
            }
        })
    }

    /// Over the control channel: joins the lab network (unless the case's setup chose a
    /// network), turns the HTTP server and its API on (with the rig's credentials), brings the
    /// network up, and learns where the server is; waits until it accepts connections.
    ///
    /// Nothing is saved: a case's `load` would undo this, so the plan keeps such cases off
    /// the network transports.
    fn prepare_http_server(
        &mut self,
        transport: Transport,
        case_set: &[(String, String)],
    ) -> Result<HttpTarget, SessionError> {
        let fail = |message: String| SessionError::Prepare { transport, message };
        let netns = self.lab.as_ref().map(|l| l.lab.netns_path());
        let chooses_network = case_set.iter().any(|(name, _)| name == "wlan.ssid");
        let sets_passkey = case_set.iter().any(|(name, _)| name == "wlan.passkey");
        let mut lines = Vec::new();
        if !chooses_network {
            let ap = self.rig.lab.as_ref().and_then(|lab| lab.network_to_join(sets_passkey)).ok_or_else(
                || {
                    fail(format!(
                        "rig {} has no lab access point to join{} (the {transport} transport needs the module on a network)",
                        self.rig.name,
                        if sets_passkey { " without the passkey the case sets" } else { "" }
                    ))
                },
            )?;
            lines.push(format!("set wlan.ssid {}", quote_value(&ap.ssid)));
            if !ap.passkey.is_empty() {
                lines.push(format!("set wlan.passkey {}", quote_value(&ap.passkey)));
            }
        }
        lines.push("set http.server.enabled 1".into());
        lines.push("set http.server.api_enabled 1".into());
        if let Some(c) = &self.rig.http.credentials {
            lines.push(format!("set http.server.username {}", quote_value(&c.username)));
            lines.push(format!("set http.server.password {}", quote_value(&c.password)));
        }
        for line in &lines {
            self.control_ok(line, self.rig.command_timeout).map_err(fail)?;
        }
        // Joining and DHCP take longer than a command.
        self.control_ok("network_up", self.rig.reboot_timeout).map_err(fail)?;
        let ip = self.control_ok("get wlan.network.ip", self.rig.command_timeout).map_err(fail)?;
        let ip: Ipv4Addr =
            ip.parse().map_err(|_| fail(format!("wlan.network.ip is `{ip}`, not an address")))?;
        let port =
            self.control_ok("get http.server.port", self.rig.command_timeout).map_err(fail)?;
        let port: u16 =
            port.parse().map_err(|_| fail(format!("http.server.port is `{port}`, not a port")))?;
        let target = HttpTarget {
            addr: SocketAddrV4::new(ip, port),
            credentials: self.rig.http.credentials.clone(),
            netns,
        };
        self.control.note(format!("{transport}: the module's HTTP server is at {}", target.addr));
        if let Some(lab) = &self.lab {
            lab.lab.forget_neighbour(ip).map_err(|e| fail(e.to_string()))?;
        }
        let t = std::time::Instant::now();
        let (attempts, first) = wait_listening(&target, self.rig.command_timeout).map_err(fail)?;
        let first = first.map(|e| format!("; the first failed: {e}")).unwrap_or_default();
        self.control.note(format!(
            "{transport}: it accepts connections ({attempts} attempt(s), {} ms{first})",
            t.elapsed().as_millis()
        ));
        Ok(target)
    }

    /// A command over the control channel that must answer code 0; its text.
    fn control_ok(&mut self, line: &str, timeout: Duration) -> Result<String, String> {
        let request = Request { line, data: None, timeout };
        let reply = self.control.execute(&request).map_err(|e| format!("`{line}`: {e}"))?;
        if reply.code.0 != 0 {
            return Err(format!("`{line}` answered code {} `{}`", reply.code, reply.text()));
        }
        Ok(reply.text())
    }

    /// Enables the remote terminal and brings the network up over the control channel,
    /// then connects to it from inside the lab.
    fn terminal_stream(&mut self) -> Result<std::net::TcpStream, SessionError> {
        let lab = match &self.lab {
            Some(lab) => std::sync::Arc::clone(&lab.lab),
            None => return Err(SessionError::NeedsLab { transport: Transport::Terminal }),
        };
        self.control_checked("set remote_terminal.enabled 1", self.rig.command_timeout)?;
        if self.control_get("wlan.network.status")? != "2" {
            // The rig's first access point; what the case's setup left in `wlan.ssid` and
            // `wlan.passkey` is put back once joined (they are read when joining), so its
            // steps see their own values.
            let ssid = self.control_get("wlan.ssid")?;
            let passkey = self.control_get("wlan.passkey")?;
            let ap = self.lab.as_ref().and_then(|l| l.rig_aps.first()).cloned();
            let borrowed = ap.is_some();
            if let Some(ap) = ap.filter(|_| borrowed) {
                self.control_set("wlan.ssid", &ap.ssid)?;
                self.control_set("wlan.passkey", &ap.passkey)?;
            }
            self.control_checked("network_up", NETWORK_UP_TIMEOUT)?;
            if borrowed {
                self.control_set("wlan.ssid", &ssid)?;
                self.control_set("wlan.passkey", &passkey)?;
            }
        }
        let ip: std::net::Ipv4Addr = self.control_get("wlan.network.ip")?.parse().map_err(|e| {
            self.under_test_error(ChannelError::Malformed {
                command: "get wlan.network.ip".into(),
                reason: format!("not an address: {e}"),
                bytes: String::new(),
            })
        })?;
        let port: u16 = self.control_get("remote_terminal.port")?.parse().unwrap_or(2000);
        let addr = std::net::SocketAddr::from((ip, port));
        lab.forget_neighbour(ip)?;
        // The module listens once the network is up; a refusal right then is tried again.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let attempt =
                lab.run_in(|| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)))?;
            match attempt {
                Ok(stream) => return Ok(stream),
                Err(e) if std::time::Instant::now() >= deadline => {
                    let link = format!("terminal {addr}");
                    return Err(self.under_test_error(ChannelError::Link { link, source: e }));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// A command over the control channel that must succeed; its reply's text (the error
    /// as the terminal's).
    fn control_checked(&mut self, line: &str, timeout: Duration) -> Result<String, SessionError> {
        let request = Request { line, data: None, timeout };
        let reply = self.control.execute(&request).map_err(|e| self.under_test_error(e))?;
        if reply.code.0 != 0 {
            let reason = format!("answered code {} `{}`", reply.code, reply.text());
            let bytes = String::new();
            let e = ChannelError::Malformed { command: line.to_string(), reason, bytes };
            return Err(self.under_test_error(e));
        }
        Ok(reply.text())
    }

    fn control_set(&mut self, name: &str, value: &str) -> Result<String, SessionError> {
        let value = if value.is_empty() || value.contains([' ', '\t']) {
            format!("\"{value}\"")
        } else {
            value.to_string()
        };
        self.control_checked(&format!("set {name} {value}"), self.rig.command_timeout)
    }

    /// A variable's value over the control channel (its last line: in human format, log
    /// lines come inline before it).
    fn control_get(&mut self, name: &str) -> Result<String, SessionError> {
        let text = self.control_checked(&format!("get {name}"), self.rig.command_timeout)?;
        Ok(text.lines().last().unwrap_or("").to_string())
    }

    fn under_test_error(&self, source: ChannelError) -> SessionError {
        SessionError::UnderTest { transport: self.transport(), source }
    }

    /// The channel the case's steps run over.
    pub fn under_test(&mut self) -> &mut dyn Channel {
        match &mut self.under_test {
            UnderTest::SharesControl => &mut self.control,
            UnderTest::Own(channel) => channel,
        }
    }

    /// Adds a remark of the harness to the transcript.
    pub fn note(&mut self, text: impl Into<String>) {
        self.control.note(text);
    }

    /// Starts a new transcript for both channels (times count from now) and returns the
    /// previous one, the two channels' entries merged by time.
    pub fn restart_transcript(&mut self) -> Vec<TranscriptEntry> {
        let now = std::time::Instant::now();
        let mut entries = self.control.restart_at(now);
        if let UnderTest::Own(channel) = &mut self.under_test {
            entries.extend(channel.restart_at(now));
            entries.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        }
        entries
    }

    /// Tears the connection down and sets it up again (after an infrastructure error).
    pub fn reopen(&mut self) -> Result<(), SessionError> {
        let rig = self.rig.clone();
        let workdir = self.workdir.clone();
        // Drop the old port, process and lab before starting new ones (ports open
        // exclusively: the new one cannot open while the old one is held).
        let transport = self.transport();
        self.under_test = UnderTest::SharesControl;
        self.control.inner_mut().close();
        self.sim = None;
        self.radio = None;
        self.lab = None;
        // A hardware module left without power (a power cycle that failed half-way) gets it
        // back; best effort, the open below says whether it answers.
        if let (Dut::Hardware { .. }, Some(power)) = (&rig.dut, &rig.power) {
            let _ = run_power_program(&power.on, &workdir.join("power.log"));
        }
        // A simulated module comes back fresh: whatever it saved (a bus in stream mode, say)
        // must not make the next attempt fail the same way.
        if matches!(rig.dut, Dut::Sim { .. }) {
            let _ = std::fs::remove_file(workdir.join("nvm"));
            let _ = std::fs::remove_file(workdir.join("files"));
        }
        // The lab comes back with the rig's access points only.
        let _ = std::fs::remove_file(workdir.join("lab.sock.aps"));
        // A labgrid place stays held: the same module comes back.
        let place = self.place.take();
        *self = Self::open_on(&rig, &workdir, place)?;
        self.use_transport(transport)
    }

    /// Cuts the module's power and restores it, and opens its port again. What it saved
    /// (settings, files) stays; what it only held in RAM is gone. Waiting for the module to
    /// answer is the caller's (a module that does not come back is the product's failure).
    ///
    /// A simulated module: its process is killed and started again on the same NVM and file
    /// store; in a lab it comes back on the same network, where the access points stayed on
    /// the air (the lab keeps them across the module's restarts); faults injected before
    /// are gone with the old process. A hardware module: the port is closed, the rig's
    /// `[power]` programs run (`on` runs even when `off` failed, so a module is never left
    /// without power), then the port is opened again as soon as it is back.
    pub fn power_cycle(&mut self) -> Result<(), SessionError> {
        let rig = self.rig.path.display().to_string();
        self.control.inner_mut().close();
        match self.rig.dut.clone() {
            Dut::Sim { binary, mac, tls_heap } => {
                let binary = binary.unwrap_or_else(default_sim_binary);
                if let Some(mut old) = self.sim.take() {
                    if let Some(status) = old.exited() {
                        return Err(SessionError::Sim {
                            binary: binary.display().to_string(),
                            message: format!("had already exited ({status}) before the power cut"),
                        });
                    }
                    old.kill();
                }
                let socket = self.workdir.join("lab.sock");
                let _ = std::fs::remove_file(&socket);
                let lab = self.lab.as_ref().map(|l| std::sync::Arc::clone(&l.lab));
                let sim = SimProcess::spawn(
                    &binary,
                    &self.workdir,
                    mac.as_deref(),
                    tls_heap,
                    lab.as_deref(),
                )?;
                if let Some(session) = &mut self.lab {
                    // A new process, a new socket: wait until it answers.
                    session.aps = crate::ap::SimAccessPoints::new(socket);
                    let deadline = std::time::Instant::now() + Duration::from_secs(5);
                    while let Err(e) = crate::ap::AccessPoints::list_aps(&mut session.aps) {
                        if std::time::Instant::now() >= deadline {
                            return Err(e.into());
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                self.sim = Some(sim);
            }
            // A reset of the machine through QEMU's monitor: the board's retained RAM (its
            // settings and files) stays, as flash would; the pty stays too.
            Dut::Qemu { qemu, image, .. }
                if self.sim.as_mut().is_some_and(|s| s.exited().is_none()) =>
            {
                qemu_monitor(&self.workdir.join(QEMU_MONITOR), "system_reset").map_err(
                    |message| SessionError::Qemu {
                        qemu: qemu.display().to_string(),
                        image: image.display().to_string(),
                        message: format!("power cycle through the monitor: {message}"),
                    },
                )?;
            }
            Dut::Qemu { qemu, machine, image } => {
                // QEMU is gone: a new one starts without the board's retained RAM.
                if let Some(mut old) = self.sim.take() {
                    if let Some(status) = old.exited() {
                        return Err(SessionError::Qemu {
                            qemu: qemu.display().to_string(),
                            image: image.display().to_string(),
                            message: format!("had already exited ({status}) before the power cut"),
                        });
                    }
                    old.kill();
                }
                // The radio equipment stays (the access points with it); the new QEMU
                // attaches to it again.
                let sockets = self.radio.as_ref().map(|r| r.sockets.clone());
                self.sim = Some(SimProcess::spawn_qemu(
                    &qemu,
                    &machine,
                    &image,
                    &self.workdir,
                    sockets.as_ref(),
                )?);
            }
            Dut::Hardware { .. } => {
                let power = self
                    .rig
                    .power
                    .clone()
                    .ok_or_else(|| SessionError::NoPower { rig: rig.clone() })?;
                let log = self.workdir.join("power.log");
                let off = run_power_program(&power.off, &log);
                if off.is_ok() {
                    std::thread::sleep(power.off_time);
                }
                let on = run_power_program(&power.on, &log);
                let power_error = |source| SessionError::Power { rig: rig.clone(), source };
                off.map_err(power_error)?;
                on.map_err(power_error)?;
            }
        }
        self.reopen_port()
    }

    /// Opens the rig's port again, waiting up to `reboot_ms` for it to come back (a USB
    /// adapter powered with the module is enumerated anew).
    fn reopen_port(&mut self) -> Result<(), SessionError> {
        let deadline = std::time::Instant::now() + self.rig.reboot_timeout;
        loop {
            let opened = port_path(&self.rig, self.sim.as_ref(), self.place.as_ref())
                .and_then(|path| open_serial(&self.rig, &path));
            match opened {
                Ok(serial) => {
                    *self.control.inner_mut() = serial;
                    self.control.note("power cycled; waiting for the module");
                    return Ok(());
                }
                Err(e) if std::time::Instant::now() >= deadline => {
                    let rig = self.rig.path.display().to_string();
                    let source = PortError::AfterPowerCycle(Box::new(e));
                    return Err(SessionError::Port { rig, source });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Asks the module for its version line (over the control channel).
    pub fn module_version(&mut self) -> Option<String> {
        let request = Request { line: "version", data: None, timeout: self.rig.command_timeout };
        let reply = self.control.execute(&request).ok()?;
        reply.code.0.eq(&0).then(|| reply.text())
    }

    /// Asks the module for its MAC address (`get wlan.mac`, over the control channel).
    pub fn module_mac(&mut self) -> Option<String> {
        let request =
            Request { line: "get wlan.mac", data: None, timeout: self.rig.command_timeout };
        let reply = self.control.execute(&request).ok()?;
        reply.code.0.eq(&0).then(|| reply.text().trim().to_string())
    }

    /// The run folder (reports/<run-id>) this session writes into.
    pub fn run_dir(&self) -> &Path {
        self.workdir.parent().unwrap_or(&self.workdir)
    }

    /// If the simulated module died, how it exited.
    pub fn sim_exit(&mut self) -> Option<String> {
        self.sim.as_mut().and_then(SimProcess::exited)
    }
}

/// Quotes a value for a command line when it holds spaces or is empty.
fn quote_value(value: &str) -> String {
    if value.is_empty() || value.contains([' ', '\t']) {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

/// Waits until the HTTP server at `target` accepts a TCP connection (it starts listening
/// when the network comes up), up to `timeout`: how many attempts it took and the first
/// failure, or the last error seen.
fn wait_listening(target: &HttpTarget, timeout: Duration) -> Result<(u32, Option<String>), String> {
    let deadline = std::time::Instant::now() + timeout;
    let addr = std::net::SocketAddr::V4(target.addr);
    let try_connect = || {
        // Short attempts: a module whose stack drops the first SYN-ACK while it resolves the
        // sender's address would otherwise cost the kernel's 1 s SYN retransmission.
        let attempt = || std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100));
        match &target.netns {
            Some(ns) => crate::lab::netns::run_in_netns(ns, attempt)
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            None => attempt().map_err(|e| e.to_string()),
        }
    };
    let (mut attempts, mut first) = (0, None);
    loop {
        attempts += 1;
        match try_connect() {
            Ok(_) => return Ok((attempts, first)),
            Err(e) if std::time::Instant::now() >= deadline => {
                return Err(format!(
                    "the HTTP server at {} did not accept a connection within {} ms: {e}",
                    target.addr,
                    timeout.as_millis()
                ));
            }
            Err(e) => {
                first.get_or_insert(e);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Why the module's console port could not be found or opened.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("the simulated module (or QEMU) is not running")]
    SimNotRunning,
    #[error("no labgrid place is held for this rig")]
    NoPlace,
    #[error(transparent)]
    UsbSerial(#[from] UsbSerialError),
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: ChannelError,
    },
    #[error("after the power cycle: {0}")]
    AfterPowerCycle(#[source] Box<PortError>),
}

/// Where the rig's module console is now: the simulated module's link, the rig's path, or
/// the tty of its USB adapter (looked up again each time: it may come back under another
/// name), or a serial server on the network.
fn port_path(
    rig: &Rig,
    sim: Option<&SimProcess>,
    place: Option<&crate::labgrid::Held>,
) -> Result<ConsoleAt, PortError> {
    match &rig.dut {
        Dut::Sim { .. } | Dut::Qemu { .. } => {
            sim.map(|s| ConsoleAt::Path(s.console.clone())).ok_or(PortError::SimNotRunning)
        }
        Dut::Hardware { port: PortSpec::Path(p) } => Ok(ConsoleAt::Path(p.clone())),
        Dut::Hardware { port: PortSpec::UsbSerial(s) } => Ok(ConsoleAt::Path(find_usb_serial(s)?)),
        Dut::Hardware { port: PortSpec::Net(net) } => Ok(ConsoleAt::Net(net.clone())),
        // labgrid's exporter serves the console with ser2net's RFC 2217.
        Dut::Hardware { port: PortSpec::Labgrid(_) } => {
            let console = place.ok_or(PortError::NoPlace)?.console();
            Ok(ConsoleAt::Net(NetPort {
                protocol: crate::channel::net::NetProtocol::Rfc2217,
                host: console.host.clone(),
                port: console.port,
            }))
        }
    }
}

/// A console's place: a local port, or a port exported over the network.
enum ConsoleAt {
    Path(PathBuf),
    Net(NetPort),
}

impl std::fmt::Display for ConsoleAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(path) => write!(f, "{}", path.display()),
            Self::Net(net) => write!(f, "{net}"),
        }
    }
}

/// How long connecting to a serial server, and each of its answers at connect, may take.
const NET_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the console at `at` with the rig's serial settings.
fn open_serial(rig: &Rig, at: &ConsoleAt) -> Result<SerialChannel, PortError> {
    let opened = match at {
        ConsoleAt::Path(path) => SerialChannel::open(&SerialSettings {
            path: path.clone(),
            baud: rig.baud,
            flow_control: rig.flow_control,
        }),
        ConsoleAt::Net(net) => {
            let line = LineSettings { baud: rig.baud, flow_control: rig.flow_control };
            SerialChannel::connect(net, &line, NET_CONNECT_TIMEOUT)
        }
    };
    opened.map_err(|source| PortError::Open { path: PathBuf::from(at.to_string()), source })
}

/// QEMU's monitor socket, in the module's work dir.
const QEMU_MONITOR: &str = "qemu-monitor.sock";

/// Sends one command to QEMU's human monitor and waits for the prompt after it.
fn qemu_monitor(socket: &Path, command: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("connect to {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    // The banner and first prompt, the command, then the prompt after it.
    let mut sent = false;
    let mut prompts = 0;
    while std::time::Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return Err("the monitor closed the connection".into()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.to_string()),
        }
        let now = seen.windows(6).filter(|w| w == b"(qemu)").count();
        if now > prompts {
            prompts = now;
            if sent {
                return Ok(());
            }
            s.write_all(format!("{command}\n").as_bytes()).map_err(|e| e.to_string())?;
            sent = true;
        }
    }
    Err(format!(
        "no prompt within 5 s (got `{}`)",
        crate::text::escape_bytes(&seen[seen.len().saturating_sub(200)..])
    ))
}

/// How long a `[power]` program may run before it is killed.
pub const POWER_PROGRAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a `[power]` program did not do its job.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error("empty [power] command")]
    Empty,
    #[error("cannot write {}: {source}", log.display())]
    Log {
        log: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("power control `{program}`: cannot start: {source}")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("power control `{program}`: {source}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("power control `{command}` did not finish within {} s; killed", POWER_PROGRAM_TIMEOUT.as_secs())]
    Timeout { command: String },
    #[error("power control `{command}` failed ({status}): {output}")]
    Failed { command: String, status: std::process::ExitStatus, output: String },
}

/// Runs one `[power]` program to its end (killed after [`POWER_PROGRAM_TIMEOUT`]), its output
/// appended to `log`; what went wrong, if anything. Output goes to a file, not a pipe, so a
/// child it leaves running cannot hold the harness up.
fn run_power_program(argv: &[String], log: &Path) -> Result<(), PowerError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(PowerError::Empty);
    };
    let open = || std::fs::OpenOptions::new().create(true).append(true).open(log);
    let (out, err) = match (open(), open()) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(source), _) | (_, Err(source)) => {
            return Err(PowerError::Log { log: log.to_path_buf(), source });
        }
    };
    let start = std::fs::metadata(log).map_or(0, |m| m.len());
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| PowerError::Start { program: program.clone(), source })?;
    let deadline = std::time::Instant::now() + POWER_PROGRAM_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PowerError::Timeout { command: argv.join(" ") });
            }
            Err(source) => return Err(PowerError::Wait { program: program.clone(), source }),
        }
    };
    if status.success() {
        return Ok(());
    }
    let output = std::fs::read(log).unwrap_or_default();
    let said = String::from_utf8_lossy(output.get(start as usize..).unwrap_or_default());
    Err(PowerError::Failed { command: argv.join(" "), status, output: said.trim().to_string() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn qemu_names_its_console_pty() {
        let line = "char device redirected to /dev/pts/7 (label serial0)";
        assert_eq!(super::qemu_pty(line), Some(std::path::PathBuf::from("/dev/pts/7")));
        assert_eq!(super::qemu_pty("char device redirected to /dev/pts/8 (label mon)"), None);
        assert_eq!(super::qemu_pty("qemu-system-arm: warning"), None);
    }

    use super::*;

    #[test]
    fn power_programs_run_to_their_end_and_report_failures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("power.log");
        assert!(run_power_program(&["true".to_string()], &log).is_ok());
        let stuck = ["sh".into(), "-c".into(), "echo relay stuck >&2; exit 3".into()];
        let e = run_power_program(&stuck, &log).expect_err("fails").to_string();
        assert!(e.contains("relay stuck") && e.contains("exit status: 3"), "{e}");
        let e = run_power_program(&["/no/such/switch".to_string()], &log).expect_err("missing");
        assert!(matches!(e, PowerError::Start { .. }), "{e}");
        assert!(matches!(run_power_program(&[], &log), Err(PowerError::Empty)));
        // A program that leaves a child holding its output does not hold the harness up.
        let t = std::time::Instant::now();
        let detached = ["sh".into(), "-c".into(), "sleep 5 & echo on".into()];
        assert!(run_power_program(&detached, &log).is_ok());
        assert!(t.elapsed() < Duration::from_secs(3), "waited for the background child");
    }
}
