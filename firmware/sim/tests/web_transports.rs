//! The harness's REST and WebSocket command stream channels against the simulated module in
//! a lab: the session prepares the module over its console (lab network, HTTP server,
//! credentials), then commands, data phases, log lines, base64, credentials and many commands
//! on one WebSocket go over the module's HTTP server. Needs root; without it the tests say so
//! and return.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::channel::cmdstream::CmdStreamChannel;
use gecko_hil::channel::rest::{Credentials, HttpTarget, RestChannel};
use gecko_hil::channel::{Channel, ChannelError, Request};
use gecko_hil::session::Session;
use gecko_hil::transport::Transport;
use std::time::Duration;

fn req<'a>(line: &'a str, data: Option<&'a [u8]>) -> Request<'a> {
    Request { line, data, timeout: Duration::from_secs(5) }
}

fn lab_rig(dir: &std::path::Path) -> gecko_hil::rig::Rig {
    common::write_rig(
        dir,
        &format!(
            "name = \"t\"\ntransports = [\"serial\", \"rest\", \"websocket\"]\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n[timeouts]\ncommand_ms = 3000\nreboot_ms = 5000\n[http]\nusername = \"hil\"\npassword = \"pw-123\"\n[lab]\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"wpa2-aes\"\npasskey = \"labpass123\"\n",
            common::sim_binary()
        ),
    )
}

/// Where the session's module serves HTTP, read over the control channel.
fn target(s: &mut Session, credentials: Option<Credentials>) -> HttpTarget {
    let ip = s.control.execute(&req("get wlan.network.ip", None)).unwrap().text();
    HttpTarget {
        addr: format!("{ip}:80").parse().unwrap(),
        credentials,
        netns: s.lab.as_ref().map(|l| l.lab.netns_path()),
    }
}

#[test]
fn rest_carries_commands_data_logs_and_credentials() {
    if !common::is_root() {
        eprintln!("SKIPPED rest_carries_commands_data_logs_and_credentials: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rig = lab_rig(dir.path());
    let mut s = Session::open(&rig, &dir.path().join("m")).unwrap();
    s.use_transport(Transport::Rest).unwrap();
    assert_eq!(s.transport(), Transport::Rest);
    assert!(!s.shares_control());

    let rest = s.under_test();
    let reply = rest.execute(&req("get wlan.ssid", None)).unwrap();
    assert_eq!((reply.code.0, reply.text()), (0, "lab".to_string()), "the session joined the lab");
    let reply = rest.execute(&req("no_such_command", None)).unwrap();
    assert_eq!((reply.code.0, reply.text()), (3, "Unknown command".to_string()));
    let reply = rest.execute(&req("set wlan.join.retries x", None)).unwrap();
    assert_ne!(reply.code.0, 0, "a bad value is refused with a code, not an HTTP error");
    // A data phase: the bytes go in the request's `data`.
    let reply = rest.execute(&req("file_create hello.txt 5", Some(b"hello"))).unwrap();
    assert_eq!(reply.text(), "Success");
    let reply = rest.execute(&req("ls", None)).unwrap();
    assert!(reply.text().contains("hello.txt"), "{}", reply.text());

    // Bytes that are not UTF-8, both ways: data with flag 0x04, the response in base64.
    let creds = rig.http.credentials.clone();
    let mut exact =
        RestChannel::connect(target(&mut s, creds)).unwrap().with_base64_responses(true);
    let bytes = b"\xff\x00\x80A";
    let reply = exact.execute(&req("file_create bin.dat 4", Some(bytes))).unwrap();
    assert_eq!(reply.text(), "Success");
    let handle = exact.execute(&req("file_open bin.dat", None)).unwrap().text();
    let line = format!("stream_read {handle} 4");
    let reply = exact.execute(&req(&line, None)).unwrap();
    assert_eq!(reply.body, b"\xff\x00\x80A\r\n", "the bytes read back exactly");
    // Log lines a command causes arrive with its reply (by polling /log).
    s.control.execute(&req("set system.print_level all", None)).unwrap();
    let line = format!("stream_close {handle}");
    let reply = exact.execute(&req(&line, None)).unwrap();
    let logs: Vec<&str> = reply.logs.iter().map(|l| l.text.as_str()).collect();
    assert!(logs.iter().any(|l| l.contains(&handle)), "logs: {logs:?}");

    // Wrong credentials: the module refuses, and that is its answer, not a broken link.
    let wrong = Credentials { username: "hil".into(), password: "nope".into() };
    let mut refused = RestChannel::connect(target(&mut s, Some(wrong))).unwrap();
    let e = refused.execute(&req("version", None)).unwrap_err();
    assert!(
        matches!(&e, ChannelError::Malformed { reason, .. } if reason == "HTTP status 401"),
        "{e}"
    );
    let mut none = RestChannel::connect(target(&mut s, None)).unwrap();
    assert!(none.execute(&req("version", None)).is_err(), "no credentials, no command");
}

#[test]
fn the_command_stream_runs_many_commands_on_one_connection() {
    if !common::is_root() {
        eprintln!("SKIPPED the_command_stream_runs_many_commands_on_one_connection: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rig = lab_rig(dir.path());
    let mut s = Session::open(&rig, &dir.path().join("m")).unwrap();
    s.use_transport(Transport::CmdStream).unwrap();
    assert_eq!(s.transport(), Transport::CmdStream);
    let ws = s.under_test();
    for i in 0..30 {
        let line = format!("set wlan.join.retries {}", i % 9 + 1);
        assert_eq!(ws.execute(&req(&line, None)).unwrap().text(), "Set OK");
        let got = ws.execute(&req("get wlan.join.retries", None)).unwrap().text();
        assert_eq!(got, (i % 9 + 1).to_string());
    }
    let reply = ws.execute(&req("file_create w.txt 3", Some(b"abc"))).unwrap();
    assert_eq!(reply.text(), "Success");
    assert_eq!(ws.execute(&req("bogus", None)).unwrap().code.0, 3);

    // Without the credentials the upgrade is refused: a link that cannot be had.
    let target = target(&mut s, None);
    let e = CmdStreamChannel::connect(target, Duration::from_secs(3)).unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");

    // After a case's setup reset the module, the channel is prepared and opened again.
    s.control.execute(&req("reboot", None)).unwrap();
    s.control.resync(gecko_hil::channel::ConsoleFormat::Machine, Duration::from_secs(5)).unwrap();
    s.prepare_under_test(&[], gecko_hil::channel::ConsoleFormat::Machine).unwrap();
    assert_eq!(s.under_test().execute(&req("get wlan.ssid", None)).unwrap().text(), "lab");
}
