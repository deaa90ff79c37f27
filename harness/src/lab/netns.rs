//! Network-namespace plumbing: finding tools, running `ip`, entering a namespace from a
//! thread, finding and stopping the processes inside one, sweeping stale namespaces.

use super::LabError;
use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";
/// Every namespace the project makes is named `gecko-<pid>-<n>[-<peer>]`.
pub const PREFIX: &str = "gecko-";

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

/// The pid a project namespace name carries, if it is one.
pub fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, n) = rest.split_once('-')?;
    (!n.is_empty() && n.as_bytes()[0].is_ascii_digit()).then_some(())?;
    pid.parse().ok()
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

/// Removes the project's namespaces whose owning process is gone; returns their names.
pub(super) fn sweep(ip_bin: &Path) -> Vec<String> {
    let me = std::process::id() as i32;
    let mut removed = Vec::new();
    let mut seen = HashSet::new();
    for name in list() {
        let Some(pid) = owner_pid(&name) else { continue };
        let stale = if pid == me { !is_live(&name) } else { !pid_alive(pid) };
        if stale && seen.insert(name.clone()) && remove(ip_bin, &name).is_ok() {
            removed.push(name);
        }
    }
    removed
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
}
