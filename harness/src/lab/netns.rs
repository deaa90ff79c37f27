//! Network-namespace plumbing: finding tools, running `ip`, entering a namespace from a
//! thread, finding and stopping the processes inside one, sweeping the labs of owners that
//! are gone.

use super::LabError;
use super::owner::{OwnerRecord, ProcessId};
pub use super::owner::{PREFIX, owner_pid};
use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Namespaces this process made and has not removed yet (so the sweeper never takes a live
/// one of ours for a stale one left by an earlier process with the same pid).
pub(super) static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub(super) fn live_insert(name: &str) {
    if let Ok(mut live) = LIVE.lock() {
        live.push(name.to_string());
    }
}

pub(super) fn live_remove(name: &str) {
    if let Ok(mut live) = LIVE.lock() {
        live.retain(|n| n != name);
    }
}

fn is_live(name: &str) -> bool {
    LIVE.lock()
        .map(|live| live.iter().any(|n| n == name || name.starts_with(&format!("{n}-"))))
        .unwrap_or(true)
}

/// Finds an executable by name on `PATH` and in the sbin folders (which a non-root `PATH`
/// often lacks).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).map(|m| m.is_file() && m.mode() & 0o111 != 0).unwrap_or(false)
        })
}

/// Runs `ip` with `args` (and `stdin`, for `-batch -`), failing with its stderr.
pub(super) fn ip(ip: &Path, args: &[&str], stdin: Option<&str>) -> Result<(), LabError> {
    let mut cmd = Command::new(ip);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let described = || format!("ip {}", args.join(" "));
    let mut child = cmd.spawn().map_err(|source| LabError::Io { what: described(), source })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|source| LabError::Io { what: described(), source })?;
    }
    let out =
        child.wait_with_output().map_err(|source| LabError::Io { what: described(), source })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            command: match stdin {
                Some(batch) => format!("{} <<< {}", described(), batch.trim().replace('\n', "; ")),
                None => described(),
            },
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Runs `f` on a new thread that has entered the network namespace at `path`; the calling
/// thread stays where it is. A panic in `f` is passed on.
pub fn run_in_netns<T, F>(path: &Path, f: F) -> Result<T, LabError>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let file = std::fs::File::open(path)
        .map_err(|source| LabError::Io { what: format!("open {}", path.display()), source })?;
    let joined = std::thread::scope(|s| {
        s.spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| LabError::Io {
                what: format!("setns({})", path.display()),
                source: std::io::Error::from(e),
            })?;
            Ok(f())
        })
        .join()
    });
    match joined {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The identity (device, inode) of a namespace file.
fn ns_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The processes whose network namespace is the one at `path` (what `ip netns pids` does),
/// never this process.
pub fn pids_in(path: &Path) -> Vec<i32> {
    let Some(id) = ns_id(path) else { return Vec::new() };
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&pid| pid != me)
        .filter(|pid| ns_id(&PathBuf::from(format!("/proc/{pid}/ns/net"))) == Some(id))
        .collect()
}

/// Stops every process inside the namespace at `path`: SIGTERM, then SIGKILL for those
/// still there after `grace`.
pub fn stop_processes_in(path: &Path, grace: Duration) {
    let pids = pids_in(path);
    if pids.is_empty() {
        return;
    }
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    loop {
        let left = pids_in(path);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a process with this pid runs (EPERM: it runs, it is someone else's). A zombie
/// (killed, not yet reaped by its parent) does not count.
pub fn pid_alive(pid: i32) -> bool {
    if matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH)) {
        return false;
    }
    // /proc/<pid>/stat: "<pid> (<comm>) <state> ..."; comm may hold spaces and parentheses.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X'))
}

/// Whether the lab `name` (`gecko-<pid>-<n>`) exists and its owner still runs (by its
/// ownership record: that very process; without one: a process with its pid).
pub fn lab_in_use(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
        && lab_name(name).is_some_and(|lab| stale_reason(&lab, ProcessId::current()).is_none())
}

/// Names of the namespaces `ip netns` knows.
pub fn list() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else { return Vec::new() };
    let mut names: Vec<String> =
        entries.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()).collect();
    names.sort();
    names
}

/// Removes one namespace: its processes first, then the name (`ip netns del`).
pub(super) fn remove(ip_bin: &Path, name: &str) -> Result<(), LabError> {
    let path = Path::new(NETNS_DIR).join(name);
    stop_processes_in(&path, Duration::from_millis(500));
    ip(ip_bin, &["netns", "del", name], None)
}

/// The lab a project namespace belongs to: `gecko-<pid>-<n>` for itself and its peers.
pub fn lab_name(name: &str) -> Option<String> {
    owner_pid(name)?;
    let mut parts = name.splitn(4, '-');
    let (prefix, pid, n) = (parts.next()?, parts.next()?, parts.next()?);
    Some(format!("{prefix}-{pid}-{n}"))
}

/// Something the sweeper removed. Its `Display` is the one line the sweeper prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swept {
    /// The namespace removed (or, for a lab whose namespace was already gone, its name).
    pub netns: String,
    /// Why its owner counts as gone.
    pub reason: String,
    /// The processes stopped with it: (pid, name).
    pub stopped: Vec<(i32, String)>,
    /// Whether the namespace itself was removed (not only processes left of its lab).
    pub namespace_removed: bool,
}

impl std::fmt::Display for Swept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace_removed {
            write!(f, "lab sweep: removed namespace {} ({})", self.netns, self.reason)?;
        } else {
            write!(
                f,
                "lab sweep: lab {} ({}), its namespace already gone",
                self.netns, self.reason
            )?;
        }
        if !self.stopped.is_empty() {
            let list: Vec<String> =
                self.stopped.iter().map(|(pid, name)| format!("{name} (pid {pid})")).collect();
            write!(f, "; stopped {}", list.join(", "))?;
        }
        Ok(())
    }
}

/// Why the lab `lab` (a `gecko-<pid>-<n>` name) counts as left behind, or `None` while its
/// owner runs. With an ownership record the owner is that very process (pid and start
/// time); a namespace without one (made before records existed, or whose record could not
/// be written) counts as left once no process has its pid.
fn stale_reason(lab: &str, me: Option<ProcessId>) -> Option<String> {
    let pid = owner_pid(lab)?;
    let mine = me.is_some_and(|m| m.pid == pid);
    match OwnerRecord::load(lab) {
        Ok(Some(record)) if Some(record.owner) == me => (!is_live(lab))
            .then(|| format!("lab `{}`: this process no longer uses it", record.label)),
        Ok(Some(record)) => record.owner_gone().map(|why| {
            format!("lab `{}`, run dir {}: its owner {why}", record.label, record.run_dir.display())
        }),
        Ok(None) | Err(_) if mine => (!is_live(lab)).then(|| {
            format!("no ownership record; pid {pid} is this process, which never made it")
        }),
        Ok(None) | Err(_) => {
            (!pid_alive(pid)).then(|| format!("no ownership record; pid {pid} has exited"))
        }
    }
}

/// The processes in a namespace, with their names.
fn named_pids_in(path: &Path) -> Vec<(i32, String)> {
    pids_in(path)
        .into_iter()
        .map(|pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            (pid, name.trim().to_string())
        })
        .collect()
}

/// Stops a lab's dnsmasq from its record, if that very process still runs.
fn stop_recorded_dnsmasq(record: &OwnerRecord) -> Option<(i32, String)> {
    let d = record.dnsmasq.filter(ProcessId::is_running)?;
    let _ = kill(Pid::from_raw(d.pid), Signal::SIGKILL);
    Some((d.pid, "dnsmasq".to_string()))
}

/// Removes the project's labs whose owner is gone: their namespaces (peers first), every
/// process inside them, their dnsmasq, their records. Namespaces of live owners, and
/// anything not named like the project's, are left alone.
pub(super) fn sweep(ip_bin: &Path) -> Vec<Swept> {
    let me = ProcessId::current();
    let mut verdicts: std::collections::HashMap<String, Option<String>> = Default::default();
    let mut names: Vec<(String, String)> =
        list().into_iter().filter_map(|name| lab_name(&name).map(|lab| (name, lab))).collect();
    // Peers (longer names) before their lab.
    names.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    let mut swept = Vec::new();
    for (name, lab) in names {
        let reason = verdicts.entry(lab.clone()).or_insert_with(|| stale_reason(&lab, me)).clone();
        let Some(reason) = reason else { continue };
        let path = Path::new(NETNS_DIR).join(&name);
        let stopped = named_pids_in(&path);
        if remove(ip_bin, &name).is_ok() {
            swept.push(Swept { netns: name, reason, stopped, namespace_removed: true });
        }
    }
    // Records: of the labs just removed, and of labs whose namespace is already gone.
    for lab in OwnerRecord::names() {
        if Path::new(NETNS_DIR).join(&lab).exists() {
            continue;
        }
        let reason = match verdicts.get(&lab) {
            Some(known) => known.clone(),
            None => stale_reason(&lab, me),
        };
        let Some(reason) = reason else { continue };
        if let Ok(Some(record)) = OwnerRecord::load(&lab)
            && let Some(stopped) = stop_recorded_dnsmasq(&record)
        {
            match swept.iter_mut().find(|s| s.netns == lab) {
                Some(s) => s.stopped.push(stopped),
                None => swept.push(Swept {
                    netns: lab.clone(),
                    reason,
                    stopped: vec![stopped],
                    namespace_removed: false,
                }),
            }
        }
        OwnerRecord::remove(&lab);
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids() {
        assert_eq!(owner_pid("gecko-123-0"), Some(123));
        assert_eq!(owner_pid("gecko-123-4-client"), Some(123));
        assert_eq!(owner_pid("gecko-x-0"), None);
        assert_eq!(owner_pid("gecko-123-"), None);
        assert_eq!(owner_pid("other-123-0"), None);
    }

    #[test]
    fn lab_names() {
        assert_eq!(lab_name("gecko-123-4").as_deref(), Some("gecko-123-4"));
        assert_eq!(lab_name("gecko-123-4-client").as_deref(), Some("gecko-123-4"));
        assert_eq!(lab_name("gecko-123-4-a-b").as_deref(), Some("gecko-123-4"));
        assert_eq!(lab_name("other-123-4"), None);
    }

    #[test]
    fn swept_lines() {
        let s = Swept {
            netns: "gecko-9-0".into(),
            reason: "its owner pid 9 has exited".into(),
            stopped: vec![(10, "dnsmasq".into()), (11, "gecko-sim".into())],
            namespace_removed: true,
        };
        assert_eq!(
            s.to_string(),
            "lab sweep: removed namespace gecko-9-0 (its owner pid 9 has exited); stopped \
             dnsmasq (pid 10), gecko-sim (pid 11)"
        );
    }
}
