//! The firmware on the emulated board (QEMU mps2-an386) through the harness: the session
//! starts QEMU with the board image, opens the pty QEMU names, and the module answers.
//!
//! Needs `qemu-system-arm` and the image (`cargo xtask build-board qemu-an386`; `cargo xtask
//! ci` builds it before the tests). Without either, the test says so and skips. The rig's lab
//! (the radio equipment on the board's UART1 and NIC) needs root and `gecko-sim` next to the
//! test binaries' folder; without root the lab is left out, and the test says so.

use gecko_hil::channel::{Channel, ConsoleFormat};
use gecko_hil::rig::{self, Dut};
use gecko_hil::session::Session;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The QEMU rig with its image path made absolute, and a folder for the session; `None`
/// (after saying why) when QEMU or the image is missing, which under CI is a failure.
fn qemu_rig() -> Option<(rig::Rig, tempfile::TempDir)> {
    let mut rig = rig::load(&root().join("rigs/qemu-an386.toml")).expect("the QEMU rig is valid");
    let Dut::Qemu { qemu, image, .. } = &mut rig.dut else {
        panic!("rigs/qemu-an386.toml is not a QEMU rig: {:?}", rig.dut);
    };
    *image = root().join(&*image);
    let has_qemu = Command::new(&*qemu)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = if !has_qemu {
        format!("{} is not installed (apt-get install qemu-system-arm)", qemu.display())
    } else if !image.exists() {
        format!("no board image at {} (cargo xtask build-board qemu-an386)", image.display())
    } else {
        if !is_root() {
            eprintln!("the lab is left out of {}: lab networking needs root", rig.name);
            rig.lab = None;
        }
        return Some((rig, tempfile::tempdir().expect("temp dir")));
    };
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(!in_ci, "{missing}");
    eprintln!("SKIPPED: {missing}");
    None
}

#[test]
fn the_board_boots_under_qemu_and_answers_version_with_its_board() {
    let Some((rig, dir)) = qemu_rig() else { return };
    let started = Instant::now();
    let mut session = Session::open(&rig, dir.path()).expect("QEMU starts and the console answers");
    let version = session.module_version().expect("`version` answers");
    eprintln!("board up and answering in {:?}: {version}", started.elapsed());
    assert!(version.contains("Board:MPS2-AN386"), "version line: {version}");
    assert!(version.starts_with("Gecko OS-"), "version line: {version}");
    // A saved setting survives a power cycle: a reset of the machine through QEMU's monitor,
    // which leaves the board's retained RAM (its stand-in for flash) as it was.
    let exec = |session: &mut Session, line: &str| {
        let request = gecko_hil::channel::Request {
            line,
            data: None,
            timeout: std::time::Duration::from_secs(5),
        };
        let reply = gecko_hil::channel::Channel::execute(&mut session.control, &request)
            .unwrap_or_else(|e| panic!("`{line}`: {e}"));
        assert_eq!(reply.code.0, 0, "`{line}` answered {}", reply.text());
        reply.text().trim().to_string()
    };
    exec(&mut session, "set wlan.ssid kept-through-reset");
    exec(&mut session, "save");
    exec(&mut session, "set wlan.ssid not-saved");
    session.power_cycle().expect("the machine resets");
    session
        .control
        .resync(ConsoleFormat::Machine, rig.reboot_timeout)
        .expect("the board answers after the power cycle");
    let again = session.module_version().expect("`version` answers after the power cycle");
    assert_eq!(again, version);
    assert_eq!(exec(&mut session, "get wlan.ssid"), "kept-through-reset");
    if rig.lab.is_some() {
        // QEMU attached the board's UART1 to the radio equipment, which the power cycle
        // left running with its access points.
        let log = dir.path().join("radio.log");
        wait_until("QEMU connects UART1 to the radio equipment", || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("board connected"))
        });
        let radio = session.radio.as_mut().expect("the lab's radio equipment");
        assert_eq!(radio.exited(), None, "the radio equipment outlives a power cycle");
        let lab = session.lab.as_mut().expect("the lab");
        let aps = gecko_hil::ap::AccessPoints::list_aps(&mut lab.aps).expect("lab channel");
        assert_eq!(aps.len(), rig.lab.as_ref().map_or(0, |l| l.aps.len()));
    }
    // The session owns QEMU: ending it ends the emulator. (The QEMU the power cycle stopped
    // may take a moment to go on a loaded machine: wait for it, with a deadline.)
    wait_for_qemu_children(1, "one QEMU runs for the session");
    drop(session);
    wait_for_qemu_children(0, "QEMU still runs after the session ended");
    if rig.lab.is_some() {
        // The radio equipment ended with the session, taking its sockets away.
        assert!(!dir.path().join("radio.sock").exists(), "the radio socket is left behind");
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

/// Waits until `check` holds, up to 5 s.
fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within 5 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits until this process has `want` live QEMU children, up to 5 s; fails with the last
/// count seen.
fn wait_for_qemu_children(want: usize, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let n = qemu_children();
        if n == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {n} QEMU children after 5 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_qemu_that_dies_is_seen_as_a_dead_module() {
    let Some((rig, dir)) = qemu_rig() else { return };
    let mut session = Session::open(&rig, dir.path()).expect("QEMU starts");
    assert_eq!(session.sim_exit(), None, "QEMU runs");
    session.sim.as_mut().expect("QEMU runs").kill();
    let exit = session.sim_exit();
    assert!(exit.is_some(), "a killed QEMU is reported as exited");
}

/// How many QEMU processes this test process has started and not reaped.
fn qemu_children() -> usize {
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else { return 0 };
    procs
        .flatten()
        .filter(|p| {
            let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...: the fields after the command's closing parenthesis.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            // A zombie (state Z) has ended; it only waits to be reaped.
            fields.get(1) == Some(&me.as_str())
                && fields.first() != Some(&"Z")
                && String::from_utf8_lossy(&cmdline).contains("qemu-system-arm")
        })
        .count()
}
