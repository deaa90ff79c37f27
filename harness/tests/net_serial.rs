//! The serial channel over the network: the simulated module's pty exported by a real
//! `ser2net` on loopback, reached as `tcp://` (raw) and `rfc2217://` (telnet with the
//! COM-PORT-OPTION), as a hardware rig on a lab host would be.
//!
//! Without `ser2net` the tests say SKIPPED (under `CI` they fail: CI installs it).

mod common;

use common::say;
use gecko_hil::channel::net::{LineSettings, NetPort, NetProtocol};
use gecko_hil::channel::serial::SerialChannel;
use gecko_hil::channel::{Channel, ChannelError, ConsoleFormat, Request};
use gecko_hil::session::{Session, SimProcess, default_sim_binary};
use serialport::FlowControl;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `ser2net` and the simulated module, or `None` after saying why not (a failure under CI).
fn tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let sim = default_sim_binary();
    let missing = match gecko_hil::lab::netns::find_tool("ser2net") {
        None => "ser2net is not installed (apt-get install ser2net)".to_string(),
        Some(_) if !sim.exists() => {
            format!("{} is not built (cargo build -p gecko-sim)", sim.display())
        }
        Some(ser2net) => return Some((ser2net, sim)),
    };
    assert!(!in_ci(), "{test}: {missing}");
    say(&format!("SKIPPED {test}: {missing}"));
    None
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port()
}

/// Whether something listens on 127.0.0.1:`port` (from /proc/net/tcp: a probe connection
/// would make ser2net open the device).
fn listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp").is_ok_and(|table| {
        table.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&want.as_str()) && fields.get(3) == Some(&"0A")
        })
    })
}

/// A running `ser2net` exporting one device on a raw and an RFC 2217 port; killed when
/// dropped, whatever the test's outcome.
struct Ser2net {
    child: Child,
    log: PathBuf,
    raw: u16,
    rfc2217: u16,
}

impl Ser2net {
    fn start(ser2net: &Path, dir: &Path, device: &Path) -> Self {
        let (raw, rfc2217) = (free_port(), free_port());
        let device = device.display();
        let config = format!(
            "connection: &raw\n  accepter: tcp,127.0.0.1,{raw}\n  connector: serialdev,{device},115200n81,local\n\
             connection: &rfc2217\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{rfc2217}\n  connector: serialdev,{device},115200n81,local\n"
        );
        let config_path = dir.join("ser2net.yaml");
        std::fs::write(&config_path, config).expect("write the ser2net config");
        let log = dir.join("ser2net.log");
        let out = std::fs::File::create(&log).expect("ser2net log");
        let err = out.try_clone().expect("ser2net log");
        // It dies with the test even when the test is killed outright, through `setpriv
        // --pdeathsig` where util-linux has it (as the harness runs QEMU).
        let mut cmd = match gecko_hil::lab::netns::find_tool("setpriv") {
            Some(setpriv) => {
                let mut cmd = Command::new(setpriv);
                cmd.args(["--pdeathsig", "KILL"]).arg(ser2net);
                cmd
            }
            None => Command::new(ser2net),
        };
        // -n: in the foreground (its pid is the child's); -u: no UUCP lock files.
        let child = cmd
            .arg("-n")
            .arg("-u")
            .arg("-c")
            .arg(&config_path)
            .arg("-P")
            .arg(dir.join("ser2net.pid"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start ser2net");
        let mut server = Self { child, log, raw, rfc2217 };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(listening(raw) && listening(rfc2217)) {
            let exited = server.child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "ser2net is not listening on {raw} and {rfc2217} (exited: {exited:?}); its log: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, protocol: NetProtocol) -> NetPort {
        let port = match protocol {
            NetProtocol::Tcp => self.raw,
            NetProtocol::Rfc2217 => self.rfc2217,
        };
        NetPort { protocol, host: "127.0.0.1".into(), port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Ser2net {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The simulated module and a ser2net exporting its pty.
fn exported(test: &str) -> Option<(tempfile::TempDir, SimProcess, Ser2net)> {
    let (ser2net, sim) = tools(test)?;
    let dir = tempfile::tempdir().expect("tempdir");
    let module = SimProcess::spawn(&sim, &dir.path().join("module"), None, None, None)
        .expect("start the simulated module");
    let server = Ser2net::start(&ser2net, dir.path(), &module.pty);
    Some((dir, module, server))
}

/// Connects; ser2net turning the client away for a moment after the previous one left is
/// the link's to ride out.
fn connect(server: &Ser2net, url: &NetPort, baud: u32) -> SerialChannel {
    SerialChannel::connect(url, &line(baud), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}; ser2net: {}", server.log_text()))
}

fn line(baud: u32) -> LineSettings {
    LineSettings { baud, flow_control: FlowControl::None }
}

fn ask(line: &str) -> Request<'_> {
    Request { line, data: None, timeout: Duration::from_secs(5) }
}

/// A command that must succeed; its text.
fn ok(channel: &mut impl Channel, command: &str) -> String {
    let reply = channel.execute(&ask(command)).unwrap_or_else(|e| panic!("`{command}`: {e}"));
    assert_eq!(reply.code.0, 0, "`{command}`: {}", reply.text());
    reply.text()
}

/// The output baud rate the pty is set to now (what ser2net applied to the device).
fn pty_baud(pty: &Path) -> nix::sys::termios::BaudRate {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(pty)
        .expect("open the pty to read its settings");
    let termios = nix::sys::termios::tcgetattr(&file).expect("tcgetattr");
    nix::sys::termios::cfgetospeed(&termios)
}

#[test]
fn commands_and_replies_over_raw_tcp_and_rfc2217() {
    let Some((_dir, module, server)) = exported("commands_and_replies_over_raw_tcp_and_rfc2217")
    else {
        return;
    };
    // Raw TCP: the bytes as they are, the line as ser2net's config sets it.
    let url = server.url(NetProtocol::Tcp);
    let mut raw = connect(&server, &url, 9600);
    assert_eq!(raw.endpoint(), url.to_string());
    raw.resync(ConsoleFormat::Machine, Duration::from_secs(5)).expect("resync over tcp://");
    assert!(ok(&mut raw, "version").starts_with("Gecko OS"));
    ok(&mut raw, "set wlan.ssid \"over the net\"");
    assert_eq!(ok(&mut raw, "get wlan.ssid"), "over the net");
    assert_eq!(pty_baud(&module.pty), nix::sys::termios::BaudRate::B115200, "tcp:// sets nothing");
    drop(raw);

    // RFC 2217: the rig's baud rate applied by ser2net to the device, the telnet layer
    // invisible to the console.
    let url = server.url(NetProtocol::Rfc2217);
    let mut rfc = connect(&server, &url, 57_600);
    assert_eq!(pty_baud(&module.pty), nix::sys::termios::BaudRate::B57600);
    rfc.resync(ConsoleFormat::Machine, Duration::from_secs(5)).expect("resync over rfc2217://");
    assert_eq!(ok(&mut rfc, "get wlan.ssid"), "over the net");
    // A long reply, in many TCP segments.
    let all = ok(&mut rfc, "get all");
    assert!(all.lines().count() > 20, "{all}");
    // Human format too: read up to the prompt.
    rfc.resync(ConsoleFormat::Human, Duration::from_secs(5)).expect("resync to human");
    let reply = rfc.execute(&ask("get wlan.ssid")).expect("human reply");
    assert_eq!(reply.text(), "over the net");
}

#[test]
fn an_rfc2217_client_on_a_raw_port_is_told_so_promptly() {
    let Some((_dir, _module, server)) =
        exported("an_rfc2217_client_on_a_raw_port_is_told_so_promptly")
    else {
        return;
    };
    // (ser2net applies any baud rate it is sent, so a refused one is tested against a
    // scripted server in the link's unit tests.)
    let wrong = NetPort { protocol: NetProtocol::Rfc2217, ..server.url(NetProtocol::Tcp) };
    let started = Instant::now();
    let e = SerialChannel::connect(&wrong, &line(115_200), Duration::from_millis(500))
        .expect_err("a raw accepter");
    assert!(e.is_infrastructure(), "{e}");
    // The module itself may answer the telnet opening it is sent (a refusal), or stay
    // silent (no answer): either way the message names the way out.
    assert!(e.to_string().contains("`tcp://`"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[test]
fn a_lost_connection_ends_the_command_as_a_link_error() {
    let Some((_dir, _module, mut server)) =
        exported("a_lost_connection_ends_the_command_as_a_link_error")
    else {
        return;
    };
    let url = server.url(NetProtocol::Rfc2217);
    let mut channel = connect(&server, &url, 115_200);
    channel.resync(ConsoleFormat::Machine, Duration::from_secs(5)).expect("resync");
    ok(&mut channel, "version");
    server.kill();
    let started = Instant::now();
    let long = Request { line: "version", data: None, timeout: Duration::from_secs(30) };
    let e = channel.execute(&long).expect_err("the server is gone");
    assert!(matches!(e, ChannelError::Link { .. }) && e.is_infrastructure(), "{e}");
    assert!(e.to_string().contains(&url.to_string()), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}: {e}", started.elapsed());
    // Nothing listens any more: refused at once.
    let e =
        SerialChannel::connect(&url, &line(115_200), Duration::from_secs(5)).expect_err("refused");
    assert!(e.is_infrastructure(), "{e}");
}

#[test]
fn a_hardware_rig_on_rfc2217_reconnects_across_a_power_cycle() {
    let Some((dir, _module, server)) =
        exported("a_hardware_rig_on_rfc2217_reconnects_across_a_power_cycle")
    else {
        return;
    };
    let rig_file = dir.path().join("net.toml");
    let mut f = std::fs::File::create(&rig_file).expect("rig file");
    write!(
        f,
        "name = \"net\"\n[dut]\nkind = \"hardware\"\n[serial]\nport = \"{}\"\nbaud = 57600\n\
         [power]\noff = [\"true\"]\non = [\"true\"]\noff_ms = 0\n",
        server.url(NetProtocol::Rfc2217)
    )
    .expect("write the rig");
    let rig = gecko_hil::rig::load(&rig_file).expect("a valid rig");
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).expect("run folder");
    let mut session =
        Session::open(&rig, &run).unwrap_or_else(|e| panic!("{e}; ser2net: {}", server.log_text()));
    assert!(ok(&mut session.control, "version").starts_with("Gecko OS"));
    // The power programs do nothing here; what counts is the link closed and opened again.
    session.power_cycle().unwrap_or_else(|e| panic!("{e}; ser2net: {}", server.log_text()));
    session.control.resync(ConsoleFormat::Machine, Duration::from_secs(5)).expect("resync");
    assert!(ok(&mut session.control, "version").starts_with("Gecko OS"));
    let notes: Vec<String> = session.restart_transcript().into_iter().map(|e| e.text).collect();
    assert!(notes.iter().any(|t| t.contains("power cycled")), "{notes:?}");
}
