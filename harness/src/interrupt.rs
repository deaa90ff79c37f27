//! Ctrl-C: the first press asks the run to stop after writing its (partial) report; the
//! second ends the process at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static PRESSES: AtomicUsize = AtomicUsize::new(0);

/// Installs the handler (once per process; later calls do nothing).
pub fn install() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let result = ctrlc::set_handler(|| {
        REQUESTED.store(true, Ordering::SeqCst);
        if PRESSES.fetch_add(1, Ordering::SeqCst) >= 1 {
            eprintln!("\ninterrupted twice: exiting without a report");
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: finishing the report (press Ctrl-C again to quit at once)");
    });
    if let Err(e) = result {
        eprintln!("warning: Ctrl-C handler not installed: {e}");
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
