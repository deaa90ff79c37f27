//! `gecko-sim radio`, the radio equipment of a board, driven as a process: this test plays the
//! board (its UART on the radio socket, its NIC on the datagram sockets) and the harness (the
//! lab channel through `SimAccessPoints`). The frame test needs root (a lab namespace with a
//! TAP device); without it that test says so and returns.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_core::net::{AssocFailure, Bss, ScanParams, Security};
use gecko_hil::ap::{AccessPoints, ApConfig, Fault, FaultStore, SimAccessPoints};
use gecko_radio_link::{Decoder, FromRadio, Message, PROTOCOL_VERSION, ToRadio};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LAB_BSSID: [u8; 6] = [2, 0, 0, 0, 1, 1];
const BOARD_MAC: [u8; 6] = [2, 0, 0x5e, 0x10, 0, 9];

/// The equipment process; killed when dropped.
struct Equipment {
    child: Child,
    dir: PathBuf,
}

impl Drop for Equipment {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Equipment {
    /// Starts it (inside `lab` on its TAP, when given) and waits until it says its lab socket
    /// is served, the last thing it opens.
    fn start(dir: &Path, lab: Option<&gecko_hil::lab::Lab>) -> Self {
        let mut cmd = match lab {
            Some(lab) => {
                let mut cmd = lab.command(common::sim_binary());
                cmd.arg("radio").arg("--tap").arg(lab.tap_name());
                cmd
            }
            None => {
                let mut cmd = Command::new(common::sim_binary());
                cmd.arg("radio");
                cmd
            }
        };
        cmd.arg("--radio-socket").arg(dir.join("radio.sock"));
        cmd.arg("--frames").arg(dir.join("frames.sock"));
        cmd.arg("--board-frames").arg(dir.join("board-frames.sock"));
        cmd.arg("--lab-socket").arg(dir.join("lab.sock"));
        cmd.arg("--exit-on-stdin-eof");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        while !seen.iter().any(|l: &String| l.starts_with("lab socket: ")) {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => seen.push(line),
                Err(e) => panic!("the equipment did not come up ({e}); it printed {seen:?}"),
            }
        }
        assert!(seen.iter().any(|l| l.starts_with("radio socket: ")), "{seen:?}");
        Self { child, dir: dir.to_path_buf() }
    }

    fn lab(&self) -> SimAccessPoints {
        SimAccessPoints::new(self.dir.join("lab.sock"))
    }
}

/// The board's end of the radio link.
struct Board {
    stream: UnixStream,
    decoder: Decoder<FromRadio>,
    pending: std::collections::VecDeque<FromRadio>,
}

impl Board {
    fn connect(equipment: &Equipment) -> Self {
        let stream = UnixStream::connect(equipment.dir.join("radio.sock")).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let mut board =
            Self { stream, decoder: Decoder::new(), pending: std::collections::VecDeque::new() };
        assert_eq!(board.next(), FromRadio::Hello { version: PROTOCOL_VERSION });
        board
    }

    fn send(&mut self, message: &ToRadio) {
        self.stream.write_all(message.encode().as_bytes()).unwrap();
    }

    /// The next message from the radio, within 5 s.
    fn next(&mut self) -> FromRadio {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 512];
        loop {
            if let Some(message) = self.pending.pop_front() {
                return message;
            }
            assert!(Instant::now() < deadline, "no message from the radio within 5 s");
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the radio closed the link"),
                Ok(n) => {
                    for decoded in self.decoder.feed(&buf[..n]) {
                        self.pending.push_back(decoded.expect("the radio sends messages"));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("reading the radio link: {e}"),
            }
        }
    }
}

fn lab_ap(security: &str, passkey: &str) -> ApConfig {
    ApConfig {
        ssid: "lab".into(),
        bssid: "02:00:00:00:01:01".into(),
        channel: 6,
        security: security.into(),
        passkey: passkey.into(),
        rssi: -40,
        hidden: false,
    }
}

fn lab_bss(security: Security) -> Bss {
    Bss { ssid: "lab".into(), bssid: LAB_BSSID, channel: 6, rssi: -40, security }
}

/// Waits until `check` says yes about the lab's radio state, showing the last state seen.
fn wait_state(
    lab: &mut SimAccessPoints,
    what: &str,
    check: impl Fn(&gecko_hil::ap::RadioState) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = lab.state().unwrap();
        if check(&state) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still {state:?} after 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_board_scans_and_associates_over_the_radio_link() {
    let dir = tempfile::tempdir().unwrap();
    let equipment = Equipment::start(dir.path(), None);
    let mut lab = equipment.lab();
    lab.add_ap(&lab_ap("wpa2-aes", "labpass123")).unwrap();
    let mut board = Board::connect(&equipment);

    board.send(&ToRadio::Reset);
    assert_eq!(board.next(), FromRadio::Hello { version: PROTOCOL_VERSION });
    board.send(&ToRadio::Scan { id: 7, ssid: None, bssid: None, params: ScanParams::DEFAULT });
    assert_eq!(
        board.next(),
        FromRadio::ScanDone { id: 7, results: vec![lab_bss(Security::Wpa2Aes)] }
    );

    let associate = |attempt, passkey: &[u8]| ToRadio::Associate {
        attempt,
        bss: lab_bss(Security::Wpa2Aes),
        passkey: passkey.to_vec(),
    };
    board.send(&associate(1, b"wrongpass1"));
    assert_eq!(
        board.next(),
        FromRadio::AssociationFailed { attempt: 1, reason: AssocFailure::AuthFailed }
    );
    lab.inject_fault(&Fault::RejectAssociation { count: 1 }).unwrap();
    board.send(&associate(2, b"labpass123"));
    assert_eq!(
        board.next(),
        FromRadio::AssociationFailed { attempt: 2, reason: AssocFailure::Rejected }
    );
    board.send(&associate(3, b"labpass123"));
    assert_eq!(board.next(), FromRadio::Associated { attempt: 3 });
    assert_eq!(lab.state().unwrap().associated.as_deref(), Some("02:00:00:00:01:01"));

    // A fault inside the module cannot reach a board: refused, and said why.
    let refused = lab.inject_fault(&Fault::StoreFail { store: FaultStore::Nvm, count: 1 });
    let e = refused.expect_err("refused").to_string();
    assert!(e.contains("not available for a board"), "{e}");

    // The lab takes the AP away: the board hears of it without asking.
    lab.remove_ap("02:00:00:00:01:01").unwrap();
    assert_eq!(board.next(), FromRadio::LinkLost);

    // A board that boots again (RESET) or goes away is no longer associated.
    lab.add_ap(&lab_ap("wpa2-aes", "labpass123")).unwrap();
    board.send(&associate(4, b"labpass123"));
    assert_eq!(board.next(), FromRadio::Associated { attempt: 4 });
    board.send(&ToRadio::Reset);
    assert_eq!(board.next(), FromRadio::Hello { version: PROTOCOL_VERSION });
    assert_eq!(lab.state().unwrap().associated, None);
    board.send(&associate(5, b"labpass123"));
    assert_eq!(board.next(), FromRadio::Associated { attempt: 5 });
    drop(board);
    wait_state(&mut lab, "a board gone", |s| s.associated.is_none());

    // Garbage on the link is skipped; the link goes on.
    let mut board = Board::connect(&equipment);
    board.stream.write_all(b"\x00\xffnonsense\nSCAN 1 2 3\n").unwrap();
    board.send(&ToRadio::Scan {
        id: 8,
        ssid: Some("nope".into()),
        bssid: None,
        params: ScanParams::DEFAULT,
    });
    assert_eq!(board.next(), FromRadio::ScanDone { id: 8, results: vec![] });
}

/// An ARP request from the board for `target`, sent from `sender`.
fn arp_request(sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&BOARD_MAC);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    frame.extend_from_slice(&BOARD_MAC);
    frame.extend_from_slice(&sender);
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&target);
    frame.resize(60, 0);
    frame
}

/// The address an ARP reply to the board answers (its target protocol address).
fn arp_reply_to(frame: &[u8]) -> Option<[u8; 4]> {
    let is_reply = frame.len() >= 42 && frame[12..14] == [0x08, 0x06] && frame[20..22] == [0, 2];
    is_reply.then(|| frame[38..42].try_into().unwrap())
}

/// The ARP replies that come to the board until one answers `wanted` (within 5 s).
fn replies_until(socket: &UnixDatagram, wanted: [u8; 4]) -> Vec<[u8; 4]> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while !seen.contains(&wanted) {
        assert!(Instant::now() < deadline, "no ARP reply for {wanted:?}; replies seen: {seen:?}");
        if let Ok(n) = socket.recv(&mut buf) {
            seen.extend(arp_reply_to(&buf[..n]));
        }
    }
    seen
}

#[test]
fn frames_pass_between_the_board_and_the_lab_only_while_associated() {
    if !common::is_root() {
        eprintln!(
            "SKIPPED frames_pass_between_the_board_and_the_lab_only_while_associated: lab networking needs root"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab_net = gecko_hil::lab::Lab::create(dir.path(), "radio-equipment").unwrap();
    let equipment = Equipment::start(dir.path(), Some(&lab_net));
    let mut lab = equipment.lab();
    lab.add_ap(&lab_ap("open", "")).unwrap();
    let nic = UnixDatagram::bind(dir.path().join("board-frames.sock")).unwrap();
    nic.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let frames = dir.path().join("frames.sock");
    let router = lab_net.router_ip().octets();
    let mut board = Board::connect(&equipment);
    let associate =
        |attempt| ToRadio::Associate { attempt, bss: lab_bss(Security::Open), passkey: Vec::new() };

    // Not associated: the request never reaches the lab. Associated: it does, and the
    // router's reply comes back (the first reply is the second request's).
    nic.send_to(&arp_request([10, 77, 0, 201], router), &frames).unwrap();
    board.send(&associate(1));
    assert_eq!(board.next(), FromRadio::Associated { attempt: 1 });
    nic.send_to(&arp_request([10, 77, 0, 202], router), &frames).unwrap();
    assert_eq!(replies_until(&nic, [10, 77, 0, 202]), vec![[10, 77, 0, 202]]);
    // The lab learnt the board's address from its frames.
    wait_state(&mut lab, "the board's address", |s| s.ip.as_deref() == Some("10.77.0.202"));

    // Disassociated: dropped again, until the next association.
    board.send(&ToRadio::Disassociate);
    wait_state(&mut lab, "disassociated", |s| s.associated.is_none());
    nic.send_to(&arp_request([10, 77, 0, 203], router), &frames).unwrap();
    board.send(&associate(2));
    assert_eq!(board.next(), FromRadio::Associated { attempt: 2 });
    nic.send_to(&arp_request([10, 77, 0, 204], router), &frames).unwrap();
    assert_eq!(replies_until(&nic, [10, 77, 0, 204]), vec![[10, 77, 0, 204]]);
    drop(board);
    drop(equipment);
    drop(lab_net);
    assert!(common::our_namespaces().is_empty(), "left behind: {:?}", common::our_namespaces());
}

#[rstest::rstest]
#[case::sigterm(true)]
#[case::end_of_input(false)]
fn the_equipment_takes_its_sockets_away_when_it_stops(#[case] sigterm: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut equipment = Equipment::start(dir.path(), None);
    let sockets = ["radio.sock", "frames.sock", "lab.sock"].map(|s| dir.path().join(s));
    assert!(sockets.iter().all(|s| s.exists()), "{sockets:?}");
    if sigterm {
        let status =
            Command::new("kill").arg("-TERM").arg(equipment.child.id().to_string()).status();
        assert!(status.unwrap().success());
    } else {
        drop(equipment.child.stdin.take());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = equipment.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 5 s after being stopped");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(if sigterm { 130 } else { 0 }));
    let left: Vec<_> = sockets.iter().filter(|s| s.exists()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
