//! Shared helpers: rigs and spec folders for the simulated module built by this package.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

pub fn sim_binary() -> &'static str {
    env!("CARGO_BIN_EXE_gecko-sim")
}

/// Writes a sim rig file pointing at this build's `gecko-sim` and loads it.
pub fn sim_rig(dir: &Path) -> gecko_hil::rig::Rig {
    write_rig(
        dir,
        &format!(
            "name = \"t\"\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n[timeouts]\ncommand_ms = 3000\nreboot_ms = 5000\n",
            sim_binary()
        ),
    )
}

pub fn write_rig(dir: &Path, text: &str) -> gecko_hil::rig::Rig {
    let path = dir.join("rig.toml");
    std::fs::write(&path, text).unwrap();
    gecko_hil::rig::load(&path).unwrap()
}

/// A sim rig with a lab and one access point `lab` (open), written into `dir`.
#[allow(dead_code)] // not every test binary uses every helper
pub fn open_lab_rig(dir: &Path) -> gecko_hil::rig::Rig {
    write_rig(
        dir,
        &format!(
            "name = \"t\"\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n[lab]\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"open\"\n",
            sim_binary()
        ),
    )
}

pub const INVENTORY: &str = r#"
[[clause]]
id = "t.one"
section = "T"
source = "protocol-facts"
kind = "variable"
lines = [1, 1]
text = "one"

[[clause]]
id = "t.two"
section = "T"
source = "chapter"
kind = "behaviour"
lines = [2, 3]
text = "two"
"#;

/// A specs folder with the test inventory and one case file.
pub fn specs_dir(dir: &Path, cases: &str) -> PathBuf {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(specs.join("clauses.toml"), INVENTORY).unwrap();
    std::fs::write(specs.join("t.toml"), format!("section = \"t\"\ntitle = \"T\"\n{cases}"))
        .unwrap();
    specs
}

/// Run options for tests: every case, no progress bar.
pub fn options(reports_root: PathBuf, retries: u32, jobs: usize) -> gecko_hil::runner::RunOptions {
    gecko_hil::runner::RunOptions {
        selection: gecko_hil::spec::Selection::default(),
        retries,
        reports_root,
        progress: false,
        jobs,
        transports: None,
    }
}

/// Whether the tests run as root (lab networking needs it; without it a lab test says so and
/// returns).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The lab namespaces of this test process (named `gecko-<pid>-<n>`): none may be left.
pub fn our_namespaces() -> Vec<String> {
    let prefix = format!("gecko-{}-", std::process::id());
    gecko_hil::lab::netns::list().into_iter().filter(|n| n.starts_with(&prefix)).collect()
}
