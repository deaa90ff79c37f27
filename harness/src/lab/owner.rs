//! Who owns a lab. Each lab has an ownership record, `/run/gecko-hil/labs/<namespace>`,
//! written before its namespace exists and removed after it is gone: the owner process (pid
//! and start time, since pids are reused), the lab's label and run dir, its dnsmasq. The
//! sweeper removes a lab only when the record's owner is gone: no process with that pid, a
//! zombie, or a process with that pid that started at another time.
//!
//! `/run` is emptied at boot, like the namespaces themselves.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the ownership records are.
pub const RECORDS_DIR: &str = "/run/gecko-hil/labs";

/// A process, told apart from a later one with the same pid by its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    /// When it started, in clock ticks after boot (`/proc/<pid>/stat`, field 22).
    pub started: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> Option<Self> {
        Self::of(std::process::id() as i32)
    }

    /// The process with this pid now, if one runs (a zombie does not).
    pub fn of(pid: i32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(pid, &stat)
    }

    /// Whether this very process still runs.
    pub fn is_running(&self) -> bool {
        Self::of(self.pid) == Some(*self)
    }
}

/// Reads state and start time from a `/proc/<pid>/stat` line: `<pid> (<comm>) <state> …`,
/// where comm may hold spaces and parentheses. `None` for a zombie or a dead process.
fn parse_stat(pid: i32, stat: &str) -> Option<ProcessId> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    if matches!(fields.first(), None | Some(&"Z") | Some(&"X") | Some(&"x")) {
        return None;
    }
    Some(ProcessId { pid, started: fields.get(19)?.parse().ok()? })
}

/// A lab's ownership record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub netns: String,
    pub owner: ProcessId,
    pub label: String,
    pub run_dir: PathBuf,
    /// The lab's dnsmasq, once started.
    #[serde(default)]
    pub dnsmasq: Option<ProcessId>,
}

impl OwnerRecord {
    pub fn path(netns: &str) -> PathBuf {
        Path::new(RECORDS_DIR).join(netns)
    }

    /// Writes the record (a temporary file renamed into place: never half written).
    pub fn write(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(RECORDS_DIR)?;
        let path = Self::path(&self.netns);
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)
    }

    /// The record of the lab `netns`: `Ok(None)` when there is none, `Err` with what is
    /// wrong when it cannot be read.
    pub fn load(netns: &str) -> Result<Option<Self>, String> {
        let path = Self::path(netns);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("{}: not a lab ownership record ({e})", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn remove(netns: &str) {
        let _ = std::fs::remove_file(Self::path(netns));
    }

    /// The names of the labs that have a record.
    pub fn names() -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(RECORDS_DIR) else { return Vec::new() };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| owner_pid(n).is_some() && !n.contains(".tmp-"))
            .collect()
    }

    /// Whether the owner still runs; if not, why it counts as gone.
    pub fn owner_gone(&self) -> Option<String> {
        let o = self.owner;
        match ProcessId::of(o.pid) {
            Some(now) if now == o => None,
            Some(_) => Some(format!("pid {} is now another process", o.pid)),
            None => Some(format!("pid {} has exited", o.pid)),
        }
    }
}

/// Every namespace the project makes is named `gecko-<pid>-<n>[-<peer>]`.
pub const PREFIX: &str = "gecko-";

/// The pid a project namespace name carries, if it is one.
pub fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, n) = rest.split_once('-')?;
    (!n.is_empty() && n.as_bytes()[0].is_ascii_digit()).then_some(())?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 \
                    10 18446744073709551615";
        assert_eq!(parse_stat(42, line), Some(ProcessId { pid: 42, started: 12345 }));
        let zombie = line.replace(") S ", ") Z ");
        assert_eq!(parse_stat(42, &zombie), None);
        assert_eq!(parse_stat(42, "42 (short) S 1"), None);
    }

    #[test]
    fn this_process_runs_and_a_reaped_child_does_not() {
        let me = ProcessId::current().expect("this process");
        assert!(me.is_running());
        assert!(!ProcessId { started: me.started + 1, ..me }.is_running(), "another start time");
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id() as i32;
        child.wait().expect("wait");
        assert_eq!(ProcessId::of(pid), None);
    }

    #[test]
    fn records_name_why_the_owner_is_gone() {
        let me = ProcessId::current().expect("this process");
        let record = OwnerRecord {
            netns: format!("gecko-{}-0", me.pid),
            owner: me,
            label: "test".into(),
            run_dir: PathBuf::from("/tmp/x"),
            dnsmasq: None,
        };
        assert_eq!(record.owner_gone(), None);
        let reused = OwnerRecord { owner: ProcessId { started: me.started + 7, ..me }, ..record };
        assert_eq!(reused.owner_gone(), Some(format!("pid {} is now another process", me.pid)));
        let text = serde_json::to_string(&reused).expect("serialize");
        assert_eq!(serde_json::from_str::<OwnerRecord>(&text).expect("parse"), reused);
    }
}
