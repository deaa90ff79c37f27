//! The simulated module's HTTP server reached by a real HTTP client: a lab, the module joined
//! to its access point with `http.server.enabled`, and `curl` run inside the lab's network
//! namespace; the TCP server listens beside it. Needs root and curl; without either the test
//! says so and returns.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::channel::Request;
use gecko_hil::session::Session;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn has_curl() -> bool {
    std::process::Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Runs a console command; its reply's text (the code must be 0).
fn console(session: &mut Session, line: &str) -> String {
    let request = Request { line, data: None, timeout: Duration::from_secs(10) };
    let reply = session.under_test().execute(&request).unwrap();
    assert_eq!(reply.code.0, 0, "{line}: {}", reply.text());
    reply.text()
}

/// `curl -s -i <args>` inside the lab: what it printed (status line, headers, body).
fn curl(session: &Session, args: &[&str]) -> String {
    let lab = session.lab().unwrap();
    let out = lab
        .command("curl")
        .args(["-s", "-i", "--max-time", "5", "--retry", "5", "--retry-connrefused"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn curl_reaches_the_rest_api_beside_the_tcp_server() {
    if !common::is_root() || !has_curl() {
        eprintln!("SKIPPED curl_reaches_the_rest_api_beside_the_tcp_server: needs root and curl");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rig = common::write_rig(
        dir.path(),
        &format!(
            "name = \"t\"\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n[lab]\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"wpa2-aes\"\npasskey = \"labpass123\"\n",
            common::sim_binary()
        ),
    );
    let mut session = Session::open(&rig, &dir.path().join("run")).unwrap();
    for line in ["set wlan.ssid lab", "set wlan.passkey labpass123", "set http.server.enabled 1"] {
        assert_eq!(console(&mut session, line), "Set OK");
    }
    assert_eq!(console(&mut session, "network_up"), "Success");
    let ip = console(&mut session, "get wlan.network.ip");
    let base = format!("http://{ip}");

    // GET /command/<url-encoded line>.
    let got = curl(&session, &[&format!("{base}/command/get%20wlan.ssid")]);
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.ends_with(r#""code":0,"flags":0,"response":"lab\r\n"}"#), "{got}");

    // POST /command with JSON: the change is the module's.
    let got = curl(
        &session,
        &[
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"flags":0,"command":"set wlan.ssid curl","data":""}"#,
            &format!("{base}/command"),
        ],
    );
    assert!(got.contains(r#""response":"Set OK\r\n"}"#), "{got}");
    assert_eq!(console(&mut session, "get wlan.ssid"), "curl");

    // The TCP server listens beside the HTTP server; both answer.
    assert_eq!(console(&mut session, "tcp_server start 3000"), "Success");
    let addr = format!("{ip}:3000");
    let lab = session.lab().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut stream = loop {
        match lab.run_in(|| TcpStream::connect(&addr)).unwrap() {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("connect to {addr}: {e}"),
        }
    };
    stream.write_all(b"ping").unwrap();
    let got = curl(&session, &[&format!("{base}/log")]);
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n") && got.contains(r#"{"logs":["#), "{got}");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = String::new();
    while Instant::now() < deadline {
        last = console(&mut session, "stream_poll 0");
        if last == "1" {
            break;
        }
    }
    assert_eq!(last, "1", "the TCP server's client sent data");
    assert_eq!(console(&mut session, "stream_read 0 10"), "ping");

    // Basic authorization: curl's -u passes, no credentials get 401 and the realm.
    for line in ["set http.server.username admin", "set http.server.password secret"] {
        assert_eq!(console(&mut session, line), "Set OK");
    }
    let got = curl(&session, &[&format!("{base}/command/ver")]);
    assert!(got.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{got}");
    assert!(got.contains("WWW-Authenticate: Basic realm=Gecko OS\r\n"), "{got}");
    let got = curl(&session, &["-u", "admin:secret", &format!("{base}/command/ver")]);
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
}
