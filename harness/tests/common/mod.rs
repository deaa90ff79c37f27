//! What the harness's lab tests share: a lab per test (or why there is none), one test at a
//! time, messages that reach the terminal.
#![allow(dead_code)] // not every test binary uses every helper

use gecko_hil::lab::{Lab, check_preconditions};
use std::io::Write;
use std::sync::Mutex;

/// The tests count this process's threads and descriptors, and share the lab's addresses:
/// one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// The lab, or `None` (after saying why) when this machine cannot make one.
pub fn lab(test: &str) -> Option<(Lab, tempfile::TempDir)> {
    if let Err(e) = check_preconditions() {
        say(&format!("SKIPPED {test}: needs root ({e})"));
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = Lab::create(dir.path(), test).expect("create the lab");
    Some((lab, dir))
}
