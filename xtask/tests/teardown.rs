//! Every way a run ends removes what it started: `cargo xtask sim --lab` and a conformance
//! run (`cargo xtask conformance` → `hil run`) stopped by SIGTERM, SIGHUP or their parent's
//! death leave no namespace, dnsmasq or simulated module behind, exit with 128 + the
//! signal, and a conformance run still writes its (partial) report. After SIGKILL the lab
//! is left (its dnsmasq dies with the killed process), and the next start sweeps it, says so
//! and works.
//!
//! Real programs on real namespaces: needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), `ip`,
//! `dnsmasq` and /dev/net/tun, like the lab tests; without them each test says why it is
//! skipped. Other lab users may run on the same machine at the same time: a test looks only
//! at the labs and processes of its own run, found by its own temporary folder (the labs'
//! ownership records name their run dir, the processes name it on their command line).
#![allow(clippy::unwrap_used)]

use gecko_hil::lab::owner::OwnerRecord;
use gecko_hil::lab::{NETNS_DIR, check_preconditions};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Building the simulated module and the harness from cold, on a loaded machine.
const BUILD_LIMIT: Duration = Duration::from_secs(1500);
/// A lab and a module coming up (includes xtask's check that the build is fresh).
const START_LIMIT: Duration = Duration::from_secs(180);
/// An orderly stop (the runner's is bounded by the harness's own 20 s grace).
const STOP_LIMIT: Duration = Duration::from_secs(60);

fn say(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// One test at a time: each one's lab start sweeps, and would sweep what another test's
/// SIGKILL left before that test's own next start could.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn lab_available(test: &str) -> bool {
    match check_preconditions() {
        Ok(_) => true,
        Err(e) => {
            say(&format!("SKIPPED {test}: {e}"));
            false
        }
    }
}

fn xtask_bin() -> &'static str {
    env!("CARGO_BIN_EXE_xtask")
}

/// Takes this binary's turn and runs `cargo xtask build` (once per test binary: later starts
/// find the binaries fresh).
fn built() -> MutexGuard<'static, ()> {
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = dir.path().join("build.log");
        let mut child = Command::new(xtask_bin())
            .arg("build")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).map_err(|e| e.to_string())?)
            .stderr(std::fs::File::create(dir.path().join("build.err")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| e.to_string())?;
        let status = wait_exit(&mut child, BUILD_LIMIT, "cargo xtask build");
        let log = std::fs::read_to_string(dir.path().join("build.err")).unwrap_or_default();
        if status.success() { Ok(()) } else { Err(format!("cargo xtask build: {status}\n{log}")) }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    turn
}

/// Waits until `check` returns `Ok`, polling; on the deadline, fails with the last state.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {limit:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Waits for a child to end, killing it (and failing) on the deadline.
fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process that still runs (not a zombie) whose command line mentions `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    pid: i32,
    name: String,
}

fn processes_of(dir: &Path) -> Vec<Proc> {
    let needle = dir.display().to_string();
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(&needle) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next());
        if matches!(state, None | Some('Z' | 'X')) {
            continue;
        }
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        found.push(Proc { pid, name: name.trim().to_string() });
    }
    found
}

fn named(procs: &[Proc], name: &str) -> usize {
    procs.iter().filter(|p| p.name == name).count()
}

/// The labs (namespace names) whose ownership record puts their run dir under `dir`.
fn labs_of(dir: &Path) -> Vec<String> {
    OwnerRecord::names()
        .into_iter()
        .filter(|n| OwnerRecord::load(n).ok().flatten().is_some_and(|r| r.run_dir.starts_with(dir)))
        .collect()
}

/// What is left of the run in `dir`: its namespaces (and peers), records, processes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Left {
    namespaces: Vec<String>,
    records: Vec<String>,
    processes: Vec<Proc>,
}

fn left_of(dir: &Path, known: &[String]) -> Left {
    let mut labs = labs_of(dir);
    labs.extend(known.iter().cloned());
    labs.sort();
    labs.dedup();
    let namespaces = std::fs::read_dir(NETNS_DIR)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| labs.iter().any(|l| n == l || n.starts_with(&format!("{l}-"))))
                .collect()
        })
        .unwrap_or_default();
    Left { namespaces, records: labs_of(dir), processes: processes_of(dir) }
}

fn assert_nothing_left(dir: &Path, known: &[String], what: &str) {
    // Whatever the run stopped is gone once it has exited; a module outside a namespace
    // (none here) would only need its end of input.
    wait_for(&format!("{what}: nothing left"), Duration::from_secs(10), || {
        let left = left_of(dir, known);
        if left == Left::default() { Ok(()) } else { Err(format!("{left:?}")) }
    });
}

fn signal_code(status: ExitStatus) -> Option<i32> {
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// A `sim --lab` whose every file is in `dir`.
fn sim_lab_args(dir: &Path) -> Vec<String> {
    let p = |name: &str| dir.join(name).display().to_string();
    vec![
        "sim".into(),
        "--lab".into(),
        "--console".into(),
        p("console"),
        "--nvm".into(),
        p("nvm"),
        "--lab-socket".into(),
        p("lab.sock"),
        "--lab-dir".into(),
        p("lab"),
    ]
}

/// Starts a command in its own process group with its output in `dir/<log>.{out,err}`.
fn start(cmd: &mut Command, dir: &Path, log: &str) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("{log}.out"))).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("{log}.err"))).unwrap())
        .process_group(0)
        .spawn()
        .unwrap()
}

fn log(dir: &Path, log: &str) -> String {
    let out = std::fs::read_to_string(dir.join(format!("{log}.out"))).unwrap_or_default();
    let err = std::fs::read_to_string(dir.join(format!("{log}.err"))).unwrap_or_default();
    format!("--- stdout\n{out}--- stderr\n{err}")
}

/// Waits until the `sim --lab` of `dir` is up: its lab (namespace and dnsmasq) and its
/// module running. Returns the lab's namespace.
fn sim_lab_up(dir: &Path, child: &mut Child, logname: &str, limit: Duration) -> String {
    wait_for("sim --lab up", limit, || {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sim --lab ended early ({status}):\n{}", log(dir, logname));
        }
        let labs = labs_of(dir);
        let procs = processes_of(dir);
        match labs.as_slice() {
            [lab]
                if Path::new(NETNS_DIR).join(lab).exists()
                    && named(&procs, "dnsmasq") == 1
                    && named(&procs, "gecko-sim") == 1
                    && log(dir, logname).contains("lab socket:") =>
            {
                Ok(lab.clone())
            }
            _ => Err(format!("labs {labs:?}, processes {procs:?}")),
        }
    })
}

fn stop_sim_lab_with(test: &str, signal: Signal) {
    if !lab_available(test) {
        return;
    }
    let _turn = built();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // As a terminal, `timeout` or a CI runner starts it: `cargo xtask …`, which is xtask
    // itself once cargo has replaced itself with it.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).arg("xtask").args(sim_lab_args(dir));
    let mut child = start(&mut cmd, dir, "sim");
    // cargo may build xtask first, for its own set of features.
    let lab = sim_lab_up(dir, &mut child, "sim", BUILD_LIMIT);
    // `timeout` signals the command, then its whole process group: xtask hears it twice.
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, signal).unwrap();
    let _ = kill(Pid::from_raw(-pid.as_raw()), signal);
    let status = wait_exit(&mut child, STOP_LIMIT, "sim --lab after the signal");
    let logs = log(dir, "sim");
    assert_eq!(signal_code(status), Some(128 + signal as i32), "{status}\n{logs}");
    assert!(logs.contains(&format!("lab {lab} removed")), "{logs}");
    assert_eq!(left_of(dir, std::slice::from_ref(&lab)), Left::default(), "{logs}");
    assert!(!dir.join("lab/lab.ns").exists(), "lab.ns left: {logs}");
}

#[test]
fn sim_lab_on_sigterm_removes_its_lab_and_exits_143() {
    stop_sim_lab_with("sim_lab_on_sigterm_removes_its_lab_and_exits_143", Signal::SIGTERM);
}

#[test]
fn sim_lab_on_sighup_removes_its_lab_and_exits_129() {
    stop_sim_lab_with("sim_lab_on_sighup_removes_its_lab_and_exits_129", Signal::SIGHUP);
}

/// Whether a line of `stderr` says the sweeper removed `lab`.
fn swept(stderr: &str, lab: &str) -> bool {
    stderr.lines().any(|l| l.starts_with(&format!("lab sweep: removed namespace {lab} ")))
}

/// After SIGKILL the lab is left: its record and its namespace. Its dnsmasq dies with the
/// killed process (when `setpriv` is installed; otherwise it is left too). Outside CI another
/// lab user's sweeper may already have removed the namespace; the record, which only this
/// version of the sweeper reads, is left all the same.
fn left_after_sigkill(dir: &Path, lab: &str, what: &str) {
    let tied = gecko_hil::lab::netns::find_tool("setpriv").is_some();
    let left = wait_for(&format!("{what}: its dnsmasq"), Duration::from_secs(10), || {
        let left = left_of(dir, &[lab.to_string()]);
        let dnsmasq = named(&left.processes, "dnsmasq");
        if dnsmasq == usize::from(!tied) { Ok(left) } else { Err(format!("{left:?}")) }
    });
    assert_eq!(left.records, vec![lab.to_string()], "{what}: {left:?}");
    if left.namespaces.contains(&lab.to_string()) {
        return;
    }
    if std::env::var_os("CI").is_none() {
        say(&format!("note: {lab} was swept by another process right after the kill"));
        return;
    }
    panic!("{what}: the lab's namespace is not left: {left:?}");
}

/// The sweep of a later start removed `lab` and said so. Outside CI, other lab users on the
/// machine run their own sweepers at the same time and may remove it first (the test
/// checks separately that it is gone); in CI nobody else does.
fn assert_swept(stderr: &str, lab: &str) {
    if swept(stderr, lab) {
        return;
    }
    if std::env::var_os("CI").is_none() {
        say(&format!("note: {lab} was swept by another process before the next start"));
        return;
    }
    panic!("the next start does not say it swept {lab}:\n{stderr}");
}

#[test]
fn sim_lab_after_sigkill_the_next_start_sweeps_the_lab_and_runs() {
    let test = "sim_lab_after_sigkill_the_next_start_sweeps_the_lab_and_runs";
    if !lab_available(test) {
        return;
    }
    let _turn = built();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut first = start(Command::new(xtask_bin()).args(sim_lab_args(dir)), dir, "first");
    let lab = sim_lab_up(dir, &mut first, "first", START_LIMIT);
    first.kill().unwrap();
    let status = first.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
    // Its module sees the end of its input and goes; the lab stays.
    wait_for("the killed run's module gone", Duration::from_secs(10), || {
        let procs = processes_of(dir);
        if named(&procs, "gecko-sim") == 0 { Ok(()) } else { Err(format!("{procs:?}")) }
    });
    left_after_sigkill(dir, &lab, "sim --lab killed");

    // The next start: no refusal, the old lab swept (and said so), a new lab up.
    let mut second = start(Command::new(xtask_bin()).args(sim_lab_args(dir)), dir, "second");
    let new_lab = wait_for("the next sim --lab up", START_LIMIT, || {
        if let Some(status) = second.try_wait().unwrap() {
            panic!("the next sim --lab ended ({status}):\n{}", log(dir, "second"));
        }
        let labs: Vec<String> = labs_of(dir).into_iter().filter(|l| *l != lab).collect();
        let procs = processes_of(dir);
        match labs.as_slice() {
            [new] if named(&procs, "gecko-sim") == 1 && named(&procs, "dnsmasq") == 1 => {
                Ok(new.clone())
            }
            _ => Err(format!("labs {labs:?}, processes {procs:?}")),
        }
    });
    let logs = log(dir, "second");
    assert_swept(&logs, &lab);
    assert!(!logs.contains("already running"), "{logs}");
    assert!(!Path::new(NETNS_DIR).join(&lab).exists(), "{lab} still there");
    kill(Pid::from_raw(second.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_exit(&mut second, STOP_LIMIT, "the next sim --lab after SIGTERM");
    assert_eq!(signal_code(status), Some(143), "{}", log(dir, "second"));
    assert_nothing_left(dir, &[lab, new_lab], "after the second sim --lab");
}

#[test]
fn sim_lab_whose_parent_dies_removes_its_lab() {
    let test = "sim_lab_whose_parent_dies_removes_its_lab";
    if !lab_available(test) {
        return;
    }
    let _turn = built();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // A parent in between (a CI job's shell), which is then killed outright.
    let mut shell = Command::new("sh");
    shell.arg("-c").arg("\"$0\" \"$@\" & wait").arg(xtask_bin()).args(sim_lab_args(dir));
    let mut parent = start(&mut shell, dir, "sim");
    let lab = sim_lab_up(dir, &mut parent, "sim", START_LIMIT);
    let xtask = processes_of(dir).into_iter().find(|p| p.name == "xtask").expect("xtask runs");
    parent.kill().unwrap();
    parent.wait().unwrap();
    wait_for("xtask ends after its parent", STOP_LIMIT, || {
        let procs = processes_of(dir);
        if procs.iter().any(|p| p.pid == xtask.pid) { Err(format!("{procs:?}")) } else { Ok(()) }
    });
    let logs = log(dir, "sim");
    assert!(logs.contains("parent process") && logs.contains("is gone"), "{logs}");
    assert!(logs.contains(&format!("lab {lab} removed")), "{logs}");
    assert_nothing_left(dir, std::slice::from_ref(&lab), "after the parent died");
}

/// A spec folder with three cases: one that passes, one that waits for a log line that never
/// comes (a lab case: it starts a capture, whose file shows it has begun), one after it.
fn long_specs(dir: &Path) -> PathBuf {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(
        specs.join("clauses.toml"),
        "[[clause]]\nid = \"t.one\"\nsection = \"T\"\nsource = \"protocol-facts\"\n\
         lines = [1, 1]\nkind = \"behaviour\"\ntext = \"one\"\n",
    )
    .unwrap();
    let case = |id: &str, body: &str| {
        format!(
            "[[case]]\nid = \"t/{id}\"\ntitle = \"{id}\"\nclauses = [\"t.one\"]\n\
             basis = \"documented\"\n{body}\n"
        )
    };
    let text = format!(
        "section = \"t\"\ntitle = \"T\"\n\n{}{}{}",
        case("first", "[[case.step]]\nsend = \"version\"\n"),
        case(
            "long",
            "requires = [\"lab\"]\ntimeout_ms = 300000\n[[case.step]]\n\
             wait = { log = '^never printed$' }\ntimeout_ms = 290000\n"
        ),
        case("last", "[[case.step]]\nsend = \"version\"\n"),
    );
    std::fs::write(specs.join("t.toml"), text).unwrap();
    specs
}

fn conformance(dir: &Path, specs: &Path, selection: &[&str]) -> Command {
    let mut cmd = Command::new(xtask_bin());
    cmd.arg("conformance")
        .arg("--specs")
        .arg(specs)
        .arg("--reports")
        .arg(dir.join("reports"))
        .arg("--no-progress")
        .args(selection);
    cmd
}

/// Waits until the long case runs (its capture file exists); returns the run's report
/// folder and its lab.
fn long_case_running(dir: &Path, child: &mut Child, logname: &str) -> (PathBuf, String) {
    wait_for("the long case running", START_LIMIT, || {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended early ({status}):\n{}", log(dir, logname));
        }
        let runs: Vec<PathBuf> = std::fs::read_dir(dir.join("reports"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default();
        let labs = labs_of(dir);
        let capture = runs.iter().find(|r| {
            std::fs::read_dir(r.join("captures")).is_ok_and(|d| {
                d.filter_map(Result::ok).any(|e| e.path().display().to_string().contains("t__long"))
            })
        });
        match (capture, labs.as_slice()) {
            (Some(run), [lab]) => Ok((run.clone(), lab.clone())),
            _ => Err(format!("runs {runs:?}, labs {labs:?}, processes {:?}", processes_of(dir))),
        }
    })
}

/// The run's results.json: interrupted, the first case passed, the others did not run.
fn assert_partial_report(run: &Path, logs: &str) {
    let path = run.join("results.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{logs}", path.display()));
    let results: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(results["interrupted"], true, "{text}");
    let verdict = |id: &str| {
        results["cases"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .map(|c| c["verdict"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no case {id} in {text}"))
    };
    assert_eq!(verdict("t/first"), "pass", "{text}");
    assert_ne!(verdict("t/long"), "pass", "{text}");
    assert_eq!(verdict("t/last"), "skipped", "{text}");
    for file in ["junit.xml", "summary.md", "report.html"] {
        assert!(run.join(file).exists(), "no {file} in {}", run.display());
    }
}

fn stop_conformance(test: &str, signal: Signal, whole_group: bool) {
    if !lab_available(test) {
        return;
    }
    let _turn = built();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let specs = long_specs(dir);
    let mut child = start(&mut conformance(dir, &specs, &[]), dir, "run");
    let (run, lab) = long_case_running(dir, &mut child, "run");
    let pid = child.id() as i32;
    // To xtask alone (it passes the signal on to hil), or to the process group (both get
    // it: hil takes the two as one).
    kill(Pid::from_raw(if whole_group { -pid } else { pid }), signal).unwrap();
    let status = wait_exit(&mut child, STOP_LIMIT, "the conformance run after the signal");
    let logs = log(dir, "run");
    assert_eq!(signal_code(status), Some(128 + signal as i32), "{status}\n{logs}");
    assert_partial_report(&run, &logs);
    assert_eq!(left_of(dir, std::slice::from_ref(&lab)), Left::default(), "{logs}");
}

#[test]
fn conformance_on_sigterm_to_xtask_writes_a_partial_report_and_removes_its_lab() {
    stop_conformance(
        "conformance_on_sigterm_to_xtask_writes_a_partial_report_and_removes_its_lab",
        Signal::SIGTERM,
        false,
    );
}

#[test]
fn conformance_on_sigint_to_the_process_group_writes_a_partial_report_and_removes_its_lab() {
    stop_conformance(
        "conformance_on_sigint_to_the_process_group_writes_a_partial_report_and_removes_its_lab",
        Signal::SIGINT,
        true,
    );
}

#[test]
fn conformance_whose_xtask_is_killed_writes_a_partial_report_and_removes_its_lab() {
    let test = "conformance_whose_xtask_is_killed_writes_a_partial_report_and_removes_its_lab";
    if !lab_available(test) {
        return;
    }
    let _turn = built();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let specs = long_specs(dir);
    let mut child = start(&mut conformance(dir, &specs, &[]), dir, "run");
    let (run, lab) = long_case_running(dir, &mut child, "run");
    let hil = processes_of(dir).into_iter().find(|p| p.name == "hil").expect("hil runs");
    // xtask killed outright: hil, its child, hears that its parent is gone.
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("hil ends after its parent", STOP_LIMIT, || {
        let procs = processes_of(dir);
        if procs.iter().any(|p| p.pid == hil.pid) { Err(format!("{procs:?}")) } else { Ok(()) }
    });
    let logs = log(dir, "run");
    assert!(logs.contains("is gone (SIGHUP)"), "{logs}");
    assert_partial_report(&run, &logs);
    assert_nothing_left(dir, std::slice::from_ref(&lab), "after xtask was killed");
}

#[test]
fn conformance_after_sigkill_the_next_run_sweeps_the_lab_and_runs() {
    let test = "conformance_after_sigkill_the_next_run_sweeps_the_lab_and_runs";
    if !lab_available(test) {
        return;
    }
    let _turn = built();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let specs = long_specs(dir);
    let mut child = start(&mut conformance(dir, &specs, &[]), dir, "run");
    let (run, lab) = long_case_running(dir, &mut child, "run");
    let hil = processes_of(dir).into_iter().find(|p| p.name == "hil").expect("hil runs");
    kill(Pid::from_raw(hil.pid), Signal::SIGKILL).unwrap();
    let status = wait_exit(&mut child, STOP_LIMIT, "xtask after hil was killed");
    let logs = log(dir, "run");
    assert_eq!(signal_code(status), Some(137), "xtask passes on how hil ended: {logs}");
    assert!(!run.join("results.json").exists(), "no report after SIGKILL");
    wait_for("the killed run's module gone", Duration::from_secs(10), || {
        let procs = processes_of(dir);
        if named(&procs, "gecko-sim") == 0 { Ok(()) } else { Err(format!("{procs:?}")) }
    });
    left_after_sigkill(dir, &lab, "hil killed");

    // Over the serial console only: the sim rig's other transports would run it four times.
    let next_args = ["t/first", "--transport", "serial"];
    let mut next = start(&mut conformance(dir, &specs, &next_args), dir, "next");
    let status = wait_exit(&mut next, START_LIMIT, "the next conformance run");
    let logs = log(dir, "next");
    assert!(status.success(), "{status}\n{logs}");
    assert_swept(&logs, &lab);
    assert!(logs.contains("1 passed, 0 failed, 0 errors"), "{logs}");
    assert_nothing_left(dir, std::slice::from_ref(&lab), "after the next run");
}

#[test]
fn a_bench_on_sigterm_removes_its_lab_at_once() {
    let test = "a_bench_on_sigterm_removes_its_lab_at_once";
    if !lab_available(test) {
        return;
    }
    let _turn = built();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // `hil bench` does not poll for a stop: the signal removes its lab and ends it. Its
    // work dir (and so its lab's run dir) goes under TMPDIR.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cmd = Command::new(root.join("target/debug/hil"));
    cmd.current_dir(root).env("TMPDIR", dir).args([
        "bench",
        "serial",
        "--rig",
        "rigs/sim.toml",
        "--iterations",
        "100000000",
    ]);
    let mut child = start(&mut cmd, dir, "bench");
    let lab = wait_for("the bench's lab and module up", START_LIMIT, || {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the bench ended early ({status}):\n{}", log(dir, "bench"));
        }
        let labs = labs_of(dir);
        let procs = processes_of(dir);
        match labs.as_slice() {
            [lab] if named(&procs, "gecko-sim") == 1 && named(&procs, "dnsmasq") == 1 => {
                Ok(lab.clone())
            }
            _ => Err(format!("labs {labs:?}, processes {procs:?}")),
        }
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_exit(&mut child, STOP_LIMIT, "the bench after SIGTERM");
    let logs = log(dir, "bench");
    assert_eq!(signal_code(status), Some(143), "{status}\n{logs}");
    assert!(logs.contains("terminated (SIGTERM): removing the lab"), "{logs}");
    // Removed before the process exited; its module (outside a lab it would go on the end
    // of its input) was stopped with the lab.
    assert_eq!(left_of(dir, std::slice::from_ref(&lab)), Left::default(), "{logs}");
}
