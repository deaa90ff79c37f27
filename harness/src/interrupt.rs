//! How a run ends on a signal. SIGINT (Ctrl-C), SIGTERM (`timeout`, a CI job cancelled) and
//! SIGHUP (the terminal closed, or the parent process gone) take one path:
//!
//! * The first signal asks the run to stop ([`requested`]): the runner finishes the case in
//!   progress as interrupted, writes its (partial) report, every lab and simulated module
//!   is taken down by its owner, and the program exits with 128 + the signal's number
//!   ([`exit_code`]). The signal is passed on to the child programs started through
//!   [`Forwarded`] (`cargo xtask` → `hil`), which end the same way.
//! * The same signal may arrive more than once: to the whole process group and again from
//!   the parent that passes it on, or twice from `timeout`. Repeats within
//!   [`REPEAT_WINDOW`] are the same request.
//! * A later signal, or a run still going [`STOP_GRACE`] after the first, quits at once:
//!   the labs of this process are removed (their processes stopped) and it exits without a
//!   report.
//! * A program that does not poll [`requested`] installs [`OnSignal::Exit`]: the first
//!   signal removes the labs and exits.
//! * The parent's death: the process asks the kernel for SIGHUP when its parent goes
//!   (`PR_SET_PDEATHSIG`), so a `hil` whose `cargo xtask` was killed ends like a hung-up one.
//!   A program started with SIGHUP ignored (`nohup`) keeps ignoring it and outlives its
//!   parent, as asked.
//!
//! SIGKILL cannot be handled: the next lab created sweeps what was left (`lab` module).

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getppid};
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

static REQUESTED: AtomicBool = AtomicBool::new(false);
/// The signal that stopped the run (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Children that get the signals this process gets.
static CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Repeats of a signal this soon after the first are the same request.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(1);
/// How long an orderly stop may take before the process quits at once.
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// How long quitting at once waits for the children it passed the signal on to.
const CHILD_GRACE: Duration = Duration::from_secs(5);

/// What the first signal does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSignal {
    /// The program polls [`requested`] and ends in order (the runner, `sim --lab`).
    Stop,
    /// The program does not poll: remove the labs and exit at once (benchmarks).
    Exit,
}

/// Installs the handlers for an orderly stop ([`OnSignal::Stop`]). Once per process; later
/// calls do nothing. Call it before starting threads or children.
pub fn install() {
    install_with(OnSignal::Stop);
}

/// Installs the handlers (once per process; later calls do nothing).
pub fn install_with(mode: OnSignal) {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let hangup = !ignored_at_start(Signal::SIGHUP);
    let mut wanted = vec![Signal::SIGINT as i32, Signal::SIGTERM as i32];
    if hangup {
        wanted.push(Signal::SIGHUP as i32);
    }
    let parent = getppid();
    let mut signals = match signal_hook::iterator::Signals::new(&wanted) {
        Ok(s) => s,
        Err(e) => return eprintln!("warning: signal handlers not installed: {e}"),
    };
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut heard = Heard::default();
        for raw in signals.forever() {
            let Ok(signal) = Signal::try_from(raw) else { continue };
            match heard.on(signal, Instant::now()) {
                Reaction::Stop => {
                    SIGNAL.store(raw, Ordering::SeqCst);
                    REQUESTED.store(true, Ordering::SeqCst);
                    forward(signal);
                    let what = describe(signal, parent);
                    if mode == OnSignal::Exit {
                        quit(signal, &what);
                    }
                    eprintln!(
                        "\n{what}: stopping in order (a run still writes the report of what \
                         ran; labs are removed); signal again to quit at once"
                    );
                    let _ =
                        std::thread::Builder::new().name("stop-grace".into()).spawn(move || {
                            std::thread::sleep(STOP_GRACE);
                            quit(signal, &format!("not stopped {STOP_GRACE:?} after {what}"));
                        });
                }
                Reaction::Repeat => {}
                Reaction::Quit { stopped_by } => {
                    forward(signal);
                    quit(stopped_by, &format!("{} again", signal.as_str()));
                }
            }
        }
    });
    if let Err(e) = spawned {
        return eprintln!("warning: signal handlers not installed: {e}");
    }
    if hangup {
        // The kernel sends SIGHUP when the parent goes; if it went before we asked, say it
        // ourselves.
        if nix::sys::prctl::set_pdeathsig(Signal::SIGHUP).is_ok() && getppid() != parent {
            let _ = nix::sys::signal::raise(Signal::SIGHUP);
        }
    }
}

/// What a signal does, given those heard before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reaction {
    /// The first: stop in order.
    Stop,
    /// The same request delivered again (within [`REPEAT_WINDOW`] of the first).
    Repeat,
    /// A later one: quit at once, with the exit status of the signal that stopped the run.
    Quit { stopped_by: Signal },
}

/// The signals heard so far: the first, and when.
#[derive(Debug, Default)]
struct Heard {
    first: Option<(Signal, Instant)>,
}

impl Heard {
    fn on(&mut self, signal: Signal, now: Instant) -> Reaction {
        match self.first {
            None => {
                self.first = Some((signal, now));
                Reaction::Stop
            }
            Some((_, at)) if now.duration_since(at) < REPEAT_WINDOW => Reaction::Repeat,
            Some((stopped_by, _)) => Reaction::Quit { stopped_by },
        }
    }
}

/// What a signal means, for the message.
fn describe(signal: Signal, parent: Pid) -> String {
    match signal {
        Signal::SIGINT => "interrupted (SIGINT)".to_string(),
        Signal::SIGHUP if parent_gone(parent) => {
            format!("the parent process (pid {parent}) is gone (SIGHUP)")
        }
        Signal::SIGHUP => "hung up (SIGHUP)".to_string(),
        other => format!("terminated ({})", other.as_str()),
    }
}

/// Whether the parent has gone. The kernel sends the parent-death signal when the thread
/// that started this process ends, which can be a moment before its last thread is gone
/// and this process is handed to a new parent: give that a moment.
fn parent_gone(parent: Pid) -> bool {
    let deadline = Instant::now() + Duration::from_millis(200);
    loop {
        if getppid() != parent {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes this process's labs, gives the children it passed the signal to a moment to end
/// theirs, and exits with 128 + `signal`.
fn quit(signal: Signal, why: &str) -> ! {
    eprintln!("\n{why}: removing the lab and exiting without a report");
    let deadline = Instant::now() + CHILD_GRACE;
    while Instant::now() < deadline {
        let left: Vec<i32> = lock_children().iter().copied().filter(|&p| running(p)).collect();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in lock_children().iter() {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    crate::lab::teardown_live();
    std::process::exit(128 + signal as i32);
}

/// Whether a child (not yet reaped) is still running.
fn running(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// Whether `signal` was ignored when this process started (`nohup` ignores SIGHUP).
fn ignored_at_start(signal: Signal) -> bool {
    ignored_in(&std::fs::read_to_string("/proc/self/status").unwrap_or_default(), signal)
}

/// Whether a `/proc/<pid>/status` text says `signal` is ignored (its `SigIgn` mask).
fn ignored_in(status: &str, signal: Signal) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal as i32 - 1)) != 0)
}

fn lock_children() -> std::sync::MutexGuard<'static, Vec<i32>> {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

fn forward(signal: Signal) {
    for pid in lock_children().iter() {
        let _ = kill(Pid::from_raw(*pid), signal);
    }
}

/// Whether the run should stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Asks the run to stop (tests, and errors that end the run).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// The signal that stopped the run, if one did.
pub fn signal() -> Option<Signal> {
    Signal::try_from(SIGNAL.load(Ordering::SeqCst)).ok()
}

/// The conventional exit status of a run a signal stopped: 128 + its number.
pub fn exit_code() -> Option<u8> {
    signal().and_then(|s| u8::try_from(128 + s as i32).ok())
}

/// The exit code that passes on how a child ended: its code, or 128 + the signal that
/// killed it.
pub fn code_of(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}

/// A child that gets the signals this process gets, until it has ended. The pid is
/// forgotten before the child is reaped, so a signal never goes to a reused pid.
#[derive(Debug)]
pub struct Forwarded {
    child: Child,
    registered: bool,
}

impl Forwarded {
    /// Starts `cmd` (in this process group: a terminal's Ctrl-C reaches it too).
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        let child = cmd.spawn()?;
        lock_children().push(child.id() as i32);
        // A signal that came before the child existed is passed on now.
        if let Some(signal) = signal() {
            let _ = kill(Pid::from_raw(child.id() as i32), signal);
        }
        Ok(Self { child, registered: true })
    }

    /// Starts `cmd` and waits for it.
    pub fn status(cmd: &mut Command) -> std::io::Result<ExitStatus> {
        Self::spawn(cmd)?.wait()
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    fn forget(&mut self) {
        if std::mem::take(&mut self.registered) {
            let pid = self.child.id() as i32;
            lock_children().retain(|&p| p != pid);
        }
    }

    /// Waits for the child to end.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        use nix::sys::wait::{Id, WaitPidFlag, waitid};
        let pid = Pid::from_raw(self.child.id() as i32);
        // Until it has ended, without reaping it (its pid stays its own).
        while let Err(nix::errno::Errno::EINTR) =
            waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
        {}
        self.forget();
        self.child.wait()
    }

    /// The child's status if it has ended.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        let pid = Pid::from_raw(self.child.id() as i32);
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => Ok(None),
            _ => {
                self.forget();
                self.child.try_wait()
            }
        }
    }
}

impl Drop for Forwarded {
    fn drop(&mut self) {
        self.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_stops_repeats_are_one_request_a_later_one_quits() {
        let t0 = Instant::now();
        let mut heard = Heard::default();
        assert_eq!(heard.on(Signal::SIGTERM, t0), Reaction::Stop);
        // `timeout`: the command, then its process group; a parent passing it on.
        assert_eq!(heard.on(Signal::SIGTERM, t0), Reaction::Repeat);
        assert_eq!(heard.on(Signal::SIGINT, t0 + Duration::from_millis(900)), Reaction::Repeat);
        assert_eq!(
            heard.on(Signal::SIGINT, t0 + REPEAT_WINDOW),
            Reaction::Quit { stopped_by: Signal::SIGTERM }
        );
    }

    #[test]
    fn exit_codes_pass_on_codes_and_signals() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(code_of(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(code_of(ExitStatus::from_raw(Signal::SIGTERM as i32)), 143);
        assert_eq!(code_of(ExitStatus::from_raw(Signal::SIGKILL as i32)), 137);
    }

    #[test]
    fn a_forwarded_child_is_forgotten_once_it_ends() {
        let mut child = Forwarded::spawn(Command::new("true").stdin(std::process::Stdio::null()))
            .expect("spawn true");
        let pid = child.child().id() as i32;
        assert!(lock_children().contains(&pid));
        let status = child.wait().expect("wait");
        assert!(status.success());
        assert!(!lock_children().contains(&pid));
    }

    #[test]
    fn sighup_ignored_by_nohup_is_seen() {
        let out = Command::new("nohup")
            .args(["cat", "/proc/self/status"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("nohup cat");
        let under_nohup = String::from_utf8_lossy(&out.stdout);
        assert!(ignored_in(&under_nohup, Signal::SIGHUP), "{under_nohup}");
        assert!(!ignored_in(&under_nohup, Signal::SIGTERM), "{under_nohup}");
        let plain = Command::new("cat").arg("/proc/self/status").output().expect("cat");
        assert!(!ignored_in(&String::from_utf8_lossy(&plain.stdout), Signal::SIGHUP));
    }
}
