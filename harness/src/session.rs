//! Connecting to a rig's module: starting the simulated module when the rig asks for one,
//! opening the serial port, bringing the console to a known format.

use crate::channel::serial::{SerialChannel, SerialSettings};
use crate::channel::{Channel, ChannelError, ConsoleFormat, Recorder, Request};
use crate::rig::{Dut, PortSpec, Rig, find_usb_serial};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Why a session could not be set up: always an infrastructure problem.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("simulated module {binary}: {message}")]
    Sim { binary: String, message: String },
    #[error("rig {rig}: {message}")]
    Port { rig: String, message: String },
    #[error("lab network: {0} (to run without the lab network, use --rig rigs/sim-nolab.toml)")]
    Lab(#[from] crate::lab::LabError),
    #[error("lab control channel: {0}")]
    Radio(#[from] crate::ap::ApError),
    #[error("module on {port} does not answer: {source}")]
    NoAnswer {
        port: String,
        #[source]
        source: ChannelError,
    },
}

/// A running simulated module; killed when dropped.
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
        lab: Option<&crate::lab::Lab>,
    ) -> Result<Self, SessionError> {
        let fail =
            |message: String| SessionError::Sim { binary: binary.display().to_string(), message };
        if !binary.exists() {
            return Err(fail("not found (build it with `cargo build -p gecko-firmware`, or set `[dut] binary` in the rig)".into()));
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
        // Appended to: a module started again (power cycle, recovery) keeps the earlier log.
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
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| fail(format!("cannot start: {e}")))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(fail("no stdout".into()));
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(pty) = line.strip_prefix("console: ") {
                    let _ = tx.send(PathBuf::from(pty));
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(pty) => Ok(Self { child, console, pty }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                let log = std::fs::read_to_string(workdir.join("sim.log")).unwrap_or_default();
                Err(fail(format!(
                    "did not open its console within 10 s ({status}); its log: {}",
                    log.trim()
                )))
            }
        }
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

/// A connected module. Fields drop in order: the port, then the module, then the lab.
#[derive(Debug)]
pub struct Session {
    pub channel: Recorder<SerialChannel>,
    pub sim: Option<SimProcess>,
    pub rig: Rig,
    workdir: PathBuf,
    pub lab: Option<LabSession>,
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

impl Session {
    /// Starts (for a sim rig) and connects to the rig's module, and syncs its console.
    pub fn open(rig: &Rig, workdir: &Path) -> Result<Self, SessionError> {
        let mut lab = None;
        let (sim, port) = match &rig.dut {
            Dut::Sim { binary, mac } => {
                let binary = binary.clone().unwrap_or_else(default_sim_binary);
                let net = match &rig.lab {
                    Some(spec) => {
                        let mut config = crate::lab::LabConfig::default();
                        for (name, addr) in &spec.hosts {
                            if !config.hosts.iter().any(|h| &h.name == name) {
                                config.hosts.push(crate::lab::LabHost::new(name, *addr));
                            }
                        }
                        Some((crate::lab::Lab::with_config(workdir, &rig.name, config)?, spec))
                    }
                    None => None,
                };
                let sim = SimProcess::spawn(
                    &binary,
                    workdir,
                    mac.as_deref(),
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
                let port = sim.console.clone();
                (Some(sim), port)
            }
            Dut::Hardware { port: PortSpec::Path(p) } => (None, p.clone()),
            Dut::Hardware { port: PortSpec::UsbSerial(s) } => {
                let port = find_usb_serial(s).map_err(|message| SessionError::Port {
                    rig: rig.path.display().to_string(),
                    message,
                })?;
                (None, port)
            }
        };
        let settings =
            SerialSettings { path: port.clone(), baud: rig.baud, flow_control: rig.flow_control };
        let serial = SerialChannel::open(&settings).map_err(|e| SessionError::Port {
            rig: rig.path.display().to_string(),
            message: format!("cannot open {}: {e}", port.display()),
        })?;
        let mut session = Self {
            channel: Recorder::new(serial),
            sim,
            rig: rig.clone(),
            workdir: workdir.to_path_buf(),
            lab,
        };
        session.channel.resync(ConsoleFormat::Machine, rig.reboot_timeout).map_err(|source| {
            SessionError::NoAnswer { port: port.display().to_string(), source }
        })?;
        Ok(session)
    }

    /// Tears the connection down and sets it up again (after an infrastructure error).
    pub fn reopen(&mut self) -> Result<(), SessionError> {
        let rig = self.rig.clone();
        let workdir = self.workdir.clone();
        // Drop the old port, process and lab before starting new ones.
        self.sim = None;
        self.lab = None;
        // A simulated module comes back fresh: whatever it saved (a bus in stream mode, say)
        // must not make the next attempt fail the same way.
        if matches!(rig.dut, Dut::Sim { .. }) {
            let _ = std::fs::remove_file(workdir.join("nvm"));
            let _ = std::fs::remove_file(workdir.join("files"));
        }
        *self = Self::open(&rig, &workdir)?;
        Ok(())
    }

    /// Cuts the module's power and restores it, then waits until it answers again. What it
    /// saved (settings, files) stays; what it only held in RAM is gone.
    ///
    /// A simulated module: its process is killed and started again on the same NVM and file
    /// store; in a lab it comes back on the same network, and the access points as they were
    /// are set up again in its radio (faults injected before are gone with the old process).
    /// A hardware module: the rig's `[power]` programs run, then the port is opened again
    /// (a USB adapter may be enumerated anew).
    pub fn power_cycle(&mut self) -> Result<(), SessionError> {
        let rig_path = self.rig.path.display().to_string();
        let port_error = |message: String| SessionError::Port { rig: rig_path.clone(), message };
        match self.rig.dut.clone() {
            Dut::Sim { binary, mac } => {
                let binary = binary.unwrap_or_else(default_sim_binary);
                let aps = match &mut self.lab {
                    Some(lab) => Some(crate::ap::AccessPoints::list_aps(&mut lab.aps)?),
                    None => None,
                };
                if let Some(mut old) = self.sim.take() {
                    old.kill();
                }
                let socket = self.workdir.join("lab.sock");
                let _ = std::fs::remove_file(&socket);
                let lab = self.lab.as_ref().map(|l| std::sync::Arc::clone(&l.lab));
                let sim =
                    SimProcess::spawn(&binary, &self.workdir, mac.as_deref(), lab.as_deref())?;
                if let (Some(session), Some(aps)) = (&mut self.lab, aps) {
                    // A new process, a new socket: wait until it answers.
                    session.aps = crate::ap::SimAccessPoints::new(socket);
                    let deadline = std::time::Instant::now() + Duration::from_secs(5);
                    while let Err(e) = crate::ap::AccessPoints::list_aps(&mut session.aps) {
                        if std::time::Instant::now() >= deadline {
                            return Err(e.into());
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    for ap in &aps {
                        crate::ap::AccessPoints::add_ap(&mut session.aps, ap)?;
                    }
                }
                self.sim = Some(sim);
            }
            Dut::Hardware { port } => {
                let power = self.rig.power.clone().ok_or_else(|| {
                    port_error("no [power] section: this rig cannot power-cycle its module".into())
                })?;
                run_power_program(&power.off).map_err(&port_error)?;
                std::thread::sleep(power.off_time);
                run_power_program(&power.on).map_err(&port_error)?;
                if let PortSpec::UsbSerial(serial) = &port {
                    // The adapter comes back (maybe under another name) once powered.
                    let deadline = std::time::Instant::now() + self.rig.reboot_timeout;
                    while find_usb_serial(serial).is_err() && std::time::Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        }
        let path = match &self.rig.dut {
            Dut::Sim { .. } => self.sim.as_ref().map(|s| s.console.clone()).unwrap_or_default(),
            Dut::Hardware { port: PortSpec::Path(p) } => p.clone(),
            Dut::Hardware { port: PortSpec::UsbSerial(s) } => {
                find_usb_serial(s).map_err(&port_error)?
            }
        };
        let settings = SerialSettings {
            path: path.clone(),
            baud: self.rig.baud,
            flow_control: self.rig.flow_control,
        };
        let serial = SerialChannel::open(&settings)
            .map_err(|e| port_error(format!("cannot open {}: {e}", path.display())))?;
        *self.channel.inner_mut() = serial;
        self.channel.note("power cycled; waiting for the module");
        self.channel
            .resync(ConsoleFormat::Machine, self.rig.reboot_timeout)
            .map_err(|source| SessionError::NoAnswer { port: path.display().to_string(), source })
    }

    /// Asks the module for its version line.
    pub fn module_version(&mut self) -> Option<String> {
        let request = Request { line: "version", data: None, timeout: self.rig.command_timeout };
        let reply = self.channel.execute(&request).ok()?;
        reply.code.0.eq(&0).then(|| reply.text())
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

/// Runs one `[power]` program to its end; what went wrong, if anything.
fn run_power_program(argv: &[String]) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty [power] command".into());
    };
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("power control `{program}`: cannot start: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(format!("power control `{}` failed ({}): {}", argv.join(" "), output.status, stderr.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_programs_run_to_their_end_and_report_failures() {
        assert_eq!(run_power_program(&["true".to_string()]), Ok(()));
        let e =
            run_power_program(&["sh".into(), "-c".into(), "echo relay stuck >&2; exit 3".into()])
                .expect_err("fails");
        assert!(e.contains("relay stuck") && e.contains("exit status: 3"), "{e}");
        let e = run_power_program(&["/no/such/switch".to_string()]).expect_err("missing");
        assert!(e.contains("cannot start"), "{e}");
        assert!(run_power_program(&[]).is_err());
    }
}
