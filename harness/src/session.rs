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
    /// Starts `binary` with its console link and NVM file in `workdir`, and waits until it
    /// says where its console is.
    pub fn spawn(binary: &Path, workdir: &Path, mac: Option<&str>) -> Result<Self, SessionError> {
        let fail =
            |message: String| SessionError::Sim { binary: binary.display().to_string(), message };
        if !binary.exists() {
            return Err(fail("not found (build it with `cargo build -p gecko-firmware`, or set `[dut] binary` in the rig)".into()));
        }
        std::fs::create_dir_all(workdir)
            .map_err(|e| fail(format!("cannot create {}: {e}", workdir.display())))?;
        let console = workdir.join("console");
        let mut cmd = Command::new(binary);
        cmd.arg("--console").arg(&console).arg("--nvm").arg(workdir.join("nvm"));
        if let Some(mac) = mac {
            cmd.arg("--mac").arg(mac);
        }
        let stderr = std::fs::File::create(workdir.join("sim.log"))
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

/// A connected module.
#[derive(Debug)]
pub struct Session {
    pub channel: Recorder<SerialChannel>,
    pub sim: Option<SimProcess>,
    pub rig: Rig,
    workdir: PathBuf,
}

impl Session {
    /// Starts (for a sim rig) and connects to the rig's module, and syncs its console.
    pub fn open(rig: &Rig, workdir: &Path) -> Result<Self, SessionError> {
        let (sim, port) = match &rig.dut {
            Dut::Sim { binary, mac } => {
                let binary = binary.clone().unwrap_or_else(default_sim_binary);
                let sim = SimProcess::spawn(&binary, workdir, mac.as_deref())?;
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
        // Drop the old port and process before starting new ones.
        self.sim = None;
        *self = Self::open(&rig, &workdir)?;
        Ok(())
    }

    /// Asks the module for its version line.
    pub fn module_version(&mut self) -> Option<String> {
        let request = Request { line: "version", data: None, timeout: self.rig.command_timeout };
        let reply = self.channel.execute(&request).ok()?;
        reply.code.0.eq(&0).then(|| reply.text())
    }

    /// If the simulated module died, how it exited.
    pub fn sim_exit(&mut self) -> Option<String> {
        self.sim.as_mut().and_then(SimProcess::exited)
    }
}
