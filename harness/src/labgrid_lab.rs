//! A labgrid lab on one machine, for tests and demonstrations: a coordinator on loopback,
//! simulated modules, and one exporter whose groups export their consoles (labgrid starts
//! ser2net for each when its place is acquired), with one place per module.
//!
//! Everything it starts runs in its own process group, dies with this process where
//! `setpriv` is there (`--pdeathsig`), and is stopped when the [`TestLab`] is dropped.

use crate::labgrid::{LabgridError, LabgridSpec, PlaceFilter};
use crate::session::SimProcess;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The exporter's name; groups are `sim-<i>`, places `<prefix>-<i>`.
const EXPORTER: &str = "gecko-testlab";
/// How long the coordinator and the exporter get to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running test lab.
pub struct TestLab {
    coordinator: String,
    client: PathBuf,
    tags: Vec<(String, String)>,
    places: Vec<String>,
    daemons: Vec<Child>,
    sims: Vec<SimProcess>,
}

impl std::fmt::Debug for TestLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestLab")
            .field("coordinator", &self.coordinator)
            .field("places", &self.places)
            .finish_non_exhaustive()
    }
}

impl TestLab {
    /// Starts a coordinator, `places` simulated modules (`sim`) and an exporter in `dir`;
    /// the places are named `<prefix>-<i>` and tagged `lab=<prefix>`. `client` is the
    /// `labgrid-client` program; the coordinator and exporter are found beside it.
    pub fn start(
        dir: &Path,
        client: &Path,
        sim: &Path,
        places: usize,
        prefix: &str,
    ) -> Result<TestLab, LabgridError> {
        let io = |what: String| {
            move |source: std::io::Error| LabgridError::Client {
                args: what,
                detail: source.to_string(),
            }
        };
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let bin_dir = client.parent().unwrap_or(Path::new("."));
        let port = free_port().map_err(io("a free port for the coordinator".into()))?;
        let coordinator = format!("127.0.0.1:{port}");
        let mut lab = TestLab {
            coordinator: coordinator.clone(),
            client: client.to_path_buf(),
            tags: vec![("lab".into(), prefix.into())],
            places: Vec::new(),
            daemons: Vec::new(),
            sims: Vec::new(),
        };
        // The coordinator keeps its places in its working directory: written before it
        // starts, they cost no client calls.
        let places_yaml = dir.join("places.yaml");
        std::fs::write(&places_yaml, places_file(prefix, places))
            .map_err(io(format!("write {}", places_yaml.display())))?;
        lab.places = (0..places).map(|i| format!("{prefix}-{i}")).collect();
        let mut cmd = daemon(&bin_dir.join("labgrid-coordinator"), dir, "coordinator.log")?;
        cmd.args(["-l", &coordinator]);
        lab.daemons.push(spawn(cmd, "labgrid-coordinator")?);
        lab.wait_until("the coordinator answers", |lab| lab.client_call(&["places"]).is_ok())?;

        let mut config = String::new();
        for i in 0..places {
            let workdir = dir.join(format!("sim-{i}"));
            let mac = format!("02:00:5e:20:00:{:02x}", i + 1);
            let sim = SimProcess::spawn(sim, &workdir, Some(&mac), None, None).map_err(|e| {
                LabgridError::Client {
                    args: format!("start {}", sim.display()),
                    detail: e.to_string(),
                }
            })?;
            // The exporter wants a device path: the pty itself, not our link to it.
            config.push_str(&format!(
                "sim-{i}:\n  RawSerialPort:\n    port: {}\n    speed: 115200\n",
                sim.pty.display()
            ));
            lab.sims.push(sim);
        }
        let config_path = dir.join("exporter.yaml");
        std::fs::write(&config_path, config)
            .map_err(io(format!("write {}", config_path.display())))?;
        let mut cmd = daemon(&bin_dir.join("labgrid-exporter"), dir, "exporter.log")?;
        cmd.args(["-c", &coordinator, "-n", EXPORTER, "--hostname", "127.0.0.1"]).arg(&config_path);
        lab.daemons.push(spawn(cmd, "labgrid-exporter")?);
        lab.wait_until("the exporter offers every module", |lab| {
            lab.client_call(&["resources"])
                .is_ok_and(|out| (0..places).all(|i| out.contains(&format!("{EXPORTER}/sim-{i}/"))))
        })?;
        Ok(lab)
    }

    /// The coordinator's `host:port`.
    pub fn coordinator(&self) -> &str {
        &self.coordinator
    }
    /// The places, in order.
    pub fn places(&self) -> &[String] {
        &self.places
    }
    /// The simulated module behind place `i`.
    pub fn sim(&self, i: usize) -> Option<&SimProcess> {
        self.sims.get(i)
    }

    /// A rig's `[labgrid]` for any of this lab's places (by its tag), waiting up to `wait`.
    pub fn spec(&self, wait: Duration) -> LabgridSpec {
        LabgridSpec {
            coordinator: Some(self.coordinator.clone()),
            filter: PlaceFilter::Tags(self.tags.clone()),
            wait,
            client: self.client.clone(),
        }
    }

    /// `labgrid-client -x <coordinator> args...`; its standard output.
    pub fn client_call(&self, args: &[&str]) -> Result<String, LabgridError> {
        crate::labgrid::call(&self.spec(Duration::ZERO), args)
    }

    /// The same call as another user (`LG_USERNAME`), to hold a place as someone else would.
    pub fn client_call_as(&self, user: &str, args: &[&str]) -> Result<String, LabgridError> {
        let out = Command::new(&self.client)
            .env("LG_USERNAME", user)
            .args(["-x", &self.coordinator])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| LabgridError::Client { args: args.join(" "), detail: e.to_string() })?;
        crate::labgrid::judge(&self.spec(Duration::ZERO), args, out)
    }

    /// Stops the exporter (the lab host lost), leaving the coordinator.
    pub fn kill_exporter(&mut self) {
        if let Some(exporter) = self.daemons.get_mut(1) {
            stop(exporter);
        }
    }

    fn wait_until(
        &mut self,
        what: &str,
        ready: impl Fn(&TestLab) -> bool,
    ) -> Result<(), LabgridError> {
        let deadline = Instant::now() + START_TIMEOUT;
        while !ready(self) {
            if Instant::now() >= deadline {
                return Err(LabgridError::Client {
                    args: what.to_string(),
                    detail: format!("not within {} s", START_TIMEOUT.as_secs()),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        // The exporter first: it stops the ser2net it started.
        for child in self.daemons.iter_mut().rev() {
            stop(child);
        }
    }
}

/// A labgrid daemon: its own process group, killed with this process, logging to `log` in
/// `dir`.
fn daemon(program: &Path, dir: &Path, log: &str) -> Result<Command, LabgridError> {
    let log = std::fs::File::create(dir.join(log)).map_err(|e| LabgridError::Client {
        args: format!("create {log}"),
        detail: e.to_string(),
    })?;
    let err = log
        .try_clone()
        .map_err(|e| LabgridError::Client { args: "log".into(), detail: e.to_string() })?;
    let mut cmd = match crate::lab::netns::find_tool("setpriv") {
        Some(setpriv) => {
            let mut cmd = Command::new(setpriv);
            cmd.args(["--pdeathsig", "KILL"]).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.current_dir(dir).stdin(Stdio::null()).stdout(log).stderr(err);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok(cmd)
}

fn spawn(cmd: Command, what: &str) -> Result<Child, LabgridError> {
    crate::lab::spawn_tied(cmd)
        .map_err(|source| LabgridError::NoClient { client: what.to_string(), source })
}

/// SIGTERM to the daemon's process group (its ser2net children too), then SIGKILL.
fn stop(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}

/// The coordinator's `places.yaml` for places `<prefix>-<i>`, each matching group `sim-<i>`
/// of the exporter and tagged `lab=<prefix>`.
fn places_file(prefix: &str, places: usize) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    (0..places)
        .map(|i| {
            format!(
                "{prefix}-{i}:\n  acquired: null\n  acquired_resources: []\n  aliases: []\n  \
                 allowed: []\n  changed: {now}\n  comment: ''\n  created: {now}\n  matches:\n  \
                 - cls: '*'\n    exporter: {EXPORTER}\n    group: sim-{i}\n    name: null\n    \
                 rename: null\n  reservation: null\n  tags:\n    lab: {prefix}\n"
            )
        })
        .collect()
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
