//! The harness and the simulated module over a real pseudo-terminal.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::channel::{Channel, ChannelError, ConsoleFormat, Request};
use gecko_hil::session::Session;
use std::time::{Duration, Instant};

fn req(line: &str) -> Request<'_> {
    Request { line, data: None, timeout: Duration::from_secs(3) }
}

#[test]
fn machine_and_human_format_over_the_pty() {
    let dir = tempfile::tempdir().unwrap();
    let rig = common::sim_rig(dir.path());
    let mut s = Session::open(&rig, &dir.path().join("m")).unwrap();

    let reply = s.control.execute(&req("set wlan.ssid \"lab net\"")).unwrap();
    assert_eq!((reply.code.0, reply.text().as_str()), (0, "Set OK"));
    let reply = s.control.execute(&req("get wlan.ssid")).unwrap();
    assert_eq!((reply.code.0, reply.body.as_slice()), (0, b"lab net\r\n".as_slice()));
    assert!(reply.timing.first_byte.is_some());
    let reply = s.control.execute(&req("nope")).unwrap();
    assert_eq!((reply.code.0, reply.text().as_str()), (3, "Unknown command"));

    s.control.resync(ConsoleFormat::Human, Duration::from_secs(3)).unwrap();
    let reply = s.control.execute(&req("get wlan.ssid")).unwrap();
    assert_eq!((reply.code.0, reply.text().as_str()), (0, "lab net"));
    let reply = s.control.execute(&req("get")).unwrap();
    assert_eq!((reply.code.0, reply.text().as_str()), (4, "Too few args"));

    s.control.resync(ConsoleFormat::Machine, Duration::from_secs(3)).unwrap();
    let reply = s.control.execute(&req("get system.cmd.header_enabled")).unwrap();
    assert_eq!(reply.text(), "1");
}

#[test]
fn saved_settings_survive_a_restart_of_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let rig = common::sim_rig(dir.path());
    let workdir = dir.path().join("m");
    {
        let mut s = Session::open(&rig, &workdir).unwrap();
        assert_eq!(s.control.execute(&req("set wlan.ssid kept")).unwrap().code.0, 0);
        assert_eq!(s.control.execute(&req("save")).unwrap().text(), "Success");
        assert_eq!(s.control.execute(&req("set wlan.ssid lost")).unwrap().code.0, 0);
    }
    let image = std::fs::read_to_string(workdir.join("nvm")).unwrap();
    assert!(image.starts_with("GECKO-NVM 1\n") && image.contains("wlan.ssid=kept\n"), "{image}");
    assert!(!workdir.join("nvm.tmp").exists(), "the temporary file is renamed away");
    let mut s = Session::open(&rig, &workdir).unwrap();
    assert_eq!(s.control.execute(&req("get wlan.ssid")).unwrap().text(), "kept");
}

#[test]
fn files_survive_a_restart_of_the_process_and_a_reopen_wipes_them() {
    let dir = tempfile::tempdir().unwrap();
    let rig = common::sim_rig(dir.path());
    let workdir = dir.path().join("m");
    // Every byte value crosses the pty in the data phase and comes back through a FILE stream.
    let data: Vec<u8> = (0..=255u8).collect();
    {
        let mut s = Session::open(&rig, &workdir).unwrap();
        let create = Request {
            line: "file_create -u web/all.bin 256 1.0.1.3",
            data: Some(&data),
            timeout: Duration::from_secs(3),
        };
        assert_eq!(s.control.execute(&create).unwrap().text(), "Success");
    }
    let image = std::fs::read(workdir.join("files")).unwrap();
    assert!(image.starts_with(b"GECKO-FS 1\n"), "the file store is in the work dir");
    let mut s = Session::open(&rig, &workdir).unwrap();
    let reply = s.control.execute(&req("ls")).unwrap();
    assert_eq!(reply.text(), "! # Size Version Filename\n# 0 256 1.0.1.3 web/all.bin");
    assert_eq!(s.control.execute(&req("fop web/all.bin")).unwrap().text(), "0");
    let reply = s.control.execute(&req("read 0 1000")).unwrap();
    assert_eq!(reply.body.strip_suffix(b"\r\n").unwrap(), data.as_slice());
    // A fresh module after an infrastructure error: no files.
    s.reopen().unwrap();
    let reply = s.control.execute(&req("ls")).unwrap();
    assert_eq!(reply.text(), "! # Size Version Filename");
}

#[test]
fn reboot_keeps_saved_and_drops_unsaved_values() {
    let dir = tempfile::tempdir().unwrap();
    let rig = common::sim_rig(dir.path());
    let mut s = Session::open(&rig, &dir.path().join("m")).unwrap();
    s.control.execute(&req("set wlan.ssid saved")).unwrap();
    s.control.execute(&req("save")).unwrap();
    s.control.execute(&req("set wlan.ssid unsaved")).unwrap();
    assert_eq!(s.control.execute(&req("reboot")).unwrap().text(), "Rebooting");
    s.control.resync(ConsoleFormat::Machine, Duration::from_secs(5)).unwrap();
    assert_eq!(s.control.execute(&req("get wlan.ssid")).unwrap().text(), "saved");
}

#[test]
fn garbage_on_the_wire_does_not_desynchronise_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let rig = common::sim_rig(dir.path());
    let mut s = Session::open(&rig, &dir.path().join("m")).unwrap();
    let raw = s.control.raw().unwrap();
    raw.write_raw(b"\x00\xff\x1b[Zgarbage R99 \"unterminated\r\n\x7f\x7f").unwrap();
    let got = raw.read_raw(&mut |b| b.ends_with(b"\r\n"), Duration::from_secs(2)).unwrap();
    assert!(got.starts_with(b"R2"), "a parse error comes back: {got:?}");
    s.control.resync(ConsoleFormat::Machine, Duration::from_secs(3)).unwrap();
    let reply = s.control.execute(&req("get system.cmd.format")).unwrap();
    assert_eq!(reply.text(), "machine");
}

#[test]
fn a_module_that_dies_is_an_infrastructure_error() {
    let dir = tempfile::tempdir().unwrap();
    let rig = common::sim_rig(dir.path());
    let mut s = Session::open(&rig, &dir.path().join("m")).unwrap();
    s.sim.as_mut().unwrap().kill();
    let err = s.control.execute(&req("get wlan.ssid")).unwrap_err();
    assert!(err.is_infrastructure(), "{err}");
    assert!(matches!(err, ChannelError::Link { .. }), "{err:?}");
}

#[test]
fn an_absent_port_is_a_clear_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let rig = common::write_rig(
        dir.path(),
        "name = \"bench\"\n[dut]\nkind = \"hardware\"\n[serial]\nport = \"/dev/ttyNOSUCHPORT9\"\n",
    );
    let t = Instant::now();
    let err = Session::open(&rig, dir.path()).unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(err.contains("/dev/ttyNOSUCHPORT9") && err.contains("no such serial port"), "{err}");
    let rig = common::write_rig(
        dir.path(),
        "name = \"bench\"\n[dut]\nkind = \"hardware\"\n[serial]\nusb_serial = \"NOPE123\"\n",
    );
    let err = Session::open(&rig, dir.path()).unwrap_err().to_string();
    assert!(err.contains("NOPE123"), "{err}");
}

#[test]
fn a_port_with_no_module_behind_it_times_out_with_a_clear_error() {
    // A pty nobody serves: the harness must give up within the rig's reboot timeout.
    let pair = nix::pty::openpty(None, None).unwrap();
    let path = nix::unistd::ttyname(&pair.slave).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rig = common::write_rig(
        dir.path(),
        &format!(
            "name = \"x\"\n[dut]\nkind = \"hardware\"\n[serial]\nport = \"{}\"\n[timeouts]\nreboot_ms = 700\n",
            path.display()
        ),
    );
    let t = Instant::now();
    let err = Session::open(&rig, dir.path()).unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(err.contains("does not answer"), "{err}");
}

#[test]
fn the_serial_transport_under_test_is_the_control_channel() {
    use gecko_hil::transport::Transport;
    let dir = tempfile::tempdir().unwrap();
    let rig = common::sim_rig(dir.path());
    let mut s = Session::open(&rig, &dir.path().join("m")).unwrap();
    assert_eq!(s.transport(), Transport::Serial);
    assert!(s.shares_control());

    // A transport without a channel yet says so and leaves the session as it was.
    let e = s.use_transport(Transport::Rest).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the rest transport is not implemented yet (available: serial, terminal)"
    );
    assert_eq!(s.transport(), Transport::Serial);

    // Setup over the control channel and steps over the channel under test reach the same
    // console, and land in one transcript in order.
    s.restart_transcript();
    assert_eq!(s.control.execute(&req("set wlan.ssid via-control")).unwrap().code.0, 0);
    assert_eq!(s.under_test().execute(&req("get wlan.ssid")).unwrap().text(), "via-control");
    let sent: Vec<String> = s
        .restart_transcript()
        .into_iter()
        .filter(|e| e.dir == gecko_hil::model::Direction::Tx)
        .map(|e| e.text)
        .collect();
    assert_eq!(sent, ["set wlan.ssid via-control", "get wlan.ssid"]);
}
