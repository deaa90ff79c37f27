//! The remote terminal, driven through `net_event`s: its listener, its client's commands and
//! their framing, the password, one client at a time, the idle timeout and the serial
//! console's parser while a client is connected.

use super::terminal::{BUSY, PASSWORD_OK, PASSWORD_PROMPT, PASSWORD_WRONG};
use super::*;
use crate::net::{ACCEPTED_BASE, Ipv4Config, Security};
use alloc::vec;

use super::frames::*;
use super::tests::board;

const T0: Instant = Instant::ZERO;
const PEER: (Ipv4, u16) = ([10, 0, 0, 9], 50_000);
const CLIENT: ConnId = ConnId(ACCEPTED_BASE);

/// A module in machine format with every log printed, joined to `lab` when asked.
struct Rig {
    m: Module,
    now: Instant,
}

impl Rig {
    fn new(setup: &[&str]) -> Self {
        let mut rig = Self { m: Module::boot(board(), None, T0), now: T0 };
        rig.m.feed(b"set system.cmd.format machine\r\n", T0);
        rig.m.take_output();
        let lab = ["set system.print_level all", "set wlan.ssid lab", "set wlan.passkey password1"];
        for line in lab.iter().chain(setup) {
            assert_eq!(rig.send(line).last(), Some(&resp(0, "Set OK")), "{line}");
        }
        rig
    }

    /// Enabled (plus `setup`), joined: returns the listener.
    fn up(setup: &[&str]) -> (Self, ConnId) {
        let mut with = vec!["set remote_terminal.enabled 1"];
        with.extend_from_slice(setup);
        let mut rig = Self::new(&with);
        let reqs = rig.join();
        let listener = reqs
            .iter()
            .find_map(|r| match r {
                NetRequest::TcpListen { listener, port: 2000 } => Some(*listener),
                _ => None,
            })
            .expect("listens on remote_terminal.port");
        (rig, listener)
    }

    fn send(&mut self, line: &str) -> Vec<F> {
        self.m.feed(format!("{line}\r\n").as_bytes(), self.now);
        frames(&self.m.take_output())
    }

    fn event(&mut self, event: NetEvent) {
        self.m.net_event(event, self.now);
    }

    /// Joins `lab` by DHCP from `network_up`; the requests that came after the join.
    fn join(&mut self) -> Vec<NetRequest> {
        self.send("network_up");
        let id = match self.reqs().as_slice() {
            [NetRequest::Scan { id, .. }] => *id,
            other => panic!("unexpected requests {other:?}"),
        };
        let bss = lab_bss(Security::Wpa2Aes);
        self.event(NetEvent::ScanDone { id, results: vec![bss] });
        self.reqs();
        self.event(NetEvent::Associated { attempt: 1 });
        self.reqs();
        let config = Ipv4Config {
            address: [10, 0, 0, 5],
            netmask: [255, 255, 255, 0],
            gateway: [10, 0, 0, 1],
            dns: vec![[10, 0, 0, 1]],
        };
        self.event(NetEvent::DhcpBound { attempt: 1, config });
        self.m.take_output();
        self.reqs()
    }

    fn reqs(&mut self) -> Vec<NetRequest> {
        let mut got = Vec::new();
        while let Some(action) = self.m.next_action() {
            match action {
                Action::Net(req) => got.push(req),
                other => panic!("unexpected action {other:?}"),
            }
        }
        got
    }

    /// A client connects on `listener` as `conn`.
    fn accept(&mut self, listener: ConnId, conn: ConnId) {
        self.event(NetEvent::TcpAccepted { listener, conn, peer: PEER });
    }

    /// The client sends `bytes`.
    fn type_in(&mut self, conn: ConnId, bytes: &[u8]) {
        self.event(NetEvent::Received { conn, data: bytes.to_vec(), from: PEER });
    }

    /// What went out on `conn` since the last look (other requests are kept out).
    fn sent(&mut self, conn: ConnId) -> Vec<u8> {
        self.reqs()
            .into_iter()
            .filter_map(|r| match r {
                NetRequest::Send { conn: c, data, to: None } if c == conn => Some(data),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// What went out on `conn`, as machine-format frames.
    fn framed(&mut self, conn: ConnId) -> Vec<F> {
        frames(&self.sent(conn))
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now + Duration::from_millis(ms);
        self.m.tick(self.now);
    }
}

#[test]
fn listens_only_while_enabled_and_the_network_is_up() {
    let mut rig = Rig::new(&[]);
    let reqs = rig.join();
    assert!(!reqs.iter().any(|r| matches!(r, NetRequest::TcpListen { .. })), "{reqs:?}");
    // Enabled while up: it listens at once, on the port set.
    rig.send("set remote_terminal.port 2300");
    let out = rig.send("set remote_terminal.enabled 1");
    assert_eq!(out, vec![log(I, "Remote terminal listening on port 2300"), resp(0, "Set OK")]);
    let reqs = rig.reqs();
    let [NetRequest::TcpListen { listener, port: 2300 }] = reqs.as_slice() else {
        panic!("{reqs:?}")
    };
    // Another port: it moves.
    rig.send("set remote_terminal.port 2301");
    let second = ConnId(listener.0 + 1);
    assert_eq!(
        rig.reqs(),
        vec![
            NetRequest::TcpUnlisten { listener: *listener },
            NetRequest::TcpListen { listener: second, port: 2301 }
        ]
    );
    rig.send("set remote_terminal.enabled 0");
    assert_eq!(rig.reqs(), vec![NetRequest::TcpUnlisten { listener: second }]);
}

#[test]
fn the_network_going_down_takes_the_listener_and_the_client() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    rig.type_in(CLIENT, b"network_down\r\n");
    let reqs = rig.reqs();
    assert!(reqs.contains(&NetRequest::TcpUnlisten { listener }), "{reqs:?}");
    assert!(reqs.contains(&NetRequest::Close { conn: CLIENT }), "{reqs:?}");
}

#[test]
fn a_client_runs_commands_framed_as_on_the_console() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    assert_eq!(rig.sent(CLIENT), b"", "machine format: no prompt, no password");
    rig.type_in(CLIENT, b"get wlan.ssid\r\n");
    assert_eq!(rig.sent(CLIENT), b"R000005\r\nlab\r\n");
    rig.type_in(CLIENT, b"set wlan.ssid other\r\nnosuch\r\n");
    assert_eq!(rig.framed(CLIENT), vec![resp(0, "Set OK"), resp(3, "Unknown command")]);
    assert_eq!(rig.m.vars().text(Var::WlanSsid), "other", "a command like any other");
    // Nothing of it on the serial console.
    assert_eq!(rig.m.take_output(), b"");
}

#[test]
fn human_format_gets_the_prompt_echo_and_line_editing() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.m.feed(b"set system.cmd.format human\r\n", rig.now);
    rig.m.take_output();
    rig.accept(listener, CLIENT);
    assert_eq!(rig.sent(CLIENT), b"> ");
    rig.type_in(CLIENT, b"get wlan.sx\x7fsid\r\n");
    assert_eq!(rig.sent(CLIENT), b"get wlan.sx\x08 \x08sid\r\nlab\r\n> ");
    rig.type_in(CLIENT, b"\r\n");
    assert_eq!(rig.sent(CLIENT), b"\r\n> ", "an empty line: a fresh prompt");
}

#[test]
fn telnet_negotiation_from_the_client_is_dropped() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    rig.type_in(CLIENT, b"\xff\xfd\x01\xff\xfb\x18ver\xff\xfa\x18\x00xterm\xff\xf0");
    rig.type_in(CLIENT, b"sion\r\0");
    let out = rig.framed(CLIENT);
    assert_eq!(out, vec![resp(0, &board().version_line())]);
}

#[test]
fn the_log_lines_of_its_commands_go_to_the_client() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    rig.type_in(CLIENT, b"exit\r\n");
    assert_eq!(rig.framed(CLIENT), vec![log(E, "Not in stream mode"), failed()]);
    assert_eq!(rig.m.take_output(), b"");
}

#[test]
fn log_lines_no_command_caused_reach_the_client_too() {
    let (mut rig, listener) = Rig::up(&["set tcp.server.port 3000"]);
    rig.accept(listener, CLIENT);
    rig.type_in(CLIENT, b"tcp_server start\r\n");
    let reqs = rig.reqs();
    let tcps = reqs
        .iter()
        .find_map(|r| match r {
            NetRequest::TcpListen { listener, port: 3000 } => Some(*listener),
            _ => None,
        })
        .expect("the TCP server listens");
    let sent: Vec<u8> = reqs
        .into_iter()
        .filter_map(|r| match r {
            NetRequest::Send { conn: CLIENT, data, .. } => Some(data),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(frames(&sent).last(), Some(&success()));
    let other = ConnId(ACCEPTED_BASE + 1);
    rig.event(NetEvent::TcpAccepted { listener: tcps, conn: other, peer: PEER });
    assert_eq!(rig.framed(CLIENT), vec![log(S, "[Opened: 0]")]);
    assert_eq!(frames(&rig.m.take_output()), vec![log(S, "[Opened: 0]")]);
}

#[test]
fn a_data_phase_takes_the_bytes_typed_next() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    rig.type_in(CLIENT, b"file_create note.txt 5\r\nhel");
    assert_eq!(rig.sent(CLIENT), b"");
    rig.type_in(CLIENT, b"loget wlan.ssid\r\n");
    // The file written, the command answered, then the line typed after the data.
    let mut sent = Vec::new();
    let mut stores = 0;
    while let Some(action) = rig.m.next_action() {
        match action {
            Action::StoreFiles(_) => {
                stores += 1;
                rig.m.files_stored(Ok(()), rig.now);
            }
            Action::Net(NetRequest::Send { conn: CLIENT, data, .. }) => sent.extend(data),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(stores, 1);
    assert_eq!(frames(&sent), vec![success(), resp(0, "lab")]);
    assert_eq!(rig.m.files().get("note.txt").map(|f| f.data()), Some(b"hello".as_slice()));
}

#[test]
fn input_typed_while_a_command_waits_runs_after_it() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    rig.type_in(CLIENT, b"nlo far.lab\r\nget wlan.ssid\r\n");
    let reqs = rig.reqs();
    let [NetRequest::Resolve { id, .. }] = reqs.as_slice() else { panic!("{reqs:?}") };
    rig.event(NetEvent::Resolved { id: *id, address: Some([10, 0, 0, 8]) });
    assert_eq!(rig.framed(CLIENT), vec![resp(0, "10.0.0.8"), resp(0, "lab")]);
}

#[test]
fn input_piling_up_behind_a_waiting_command_stops_the_reading() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    rig.type_in(CLIENT, b"nlo far.lab\r\n");
    let reqs = rig.reqs();
    let [NetRequest::Resolve { id, .. }] = reqs.as_slice() else { panic!("{reqs:?}") };
    let line = b"get wlan.ssid\r\n";
    let lines = super::terminal::STASH_MAX / line.len() + 1;
    for _ in 0..lines {
        rig.type_in(CLIENT, line);
    }
    assert_eq!(rig.reqs(), vec![NetRequest::Flow { conn: CLIENT, accept: false }]);
    rig.event(NetEvent::Resolved { id: *id, address: Some([10, 0, 0, 8]) });
    let reqs = rig.reqs();
    assert_eq!(reqs.first(), Some(&NetRequest::Flow { conn: CLIENT, accept: true }));
    let sent: Vec<u8> = reqs
        .into_iter()
        .filter_map(|r| match r {
            NetRequest::Send { data, .. } => Some(data),
            _ => None,
        })
        .flatten()
        .collect();
    let out = frames(&sent);
    assert_eq!(out.len(), lines + 1, "every line held is run");
    assert!(out[1..].iter().all(|f| *f == resp(0, "lab")));
}

#[test]
fn a_password_is_asked_first_and_a_wrong_one_closes() {
    let (mut rig, listener) = Rig::up(&["set remote_terminal.password s3cret"]);
    rig.accept(listener, CLIENT);
    assert_eq!(rig.sent(CLIENT), PASSWORD_PROMPT.as_bytes());
    rig.type_in(CLIENT, b"wrong\r\n");
    let reqs = rig.reqs();
    assert_eq!(
        reqs,
        vec![
            NetRequest::Send { conn: CLIENT, data: PASSWORD_WRONG.as_bytes().to_vec(), to: None },
            NetRequest::Close { conn: CLIENT }
        ]
    );
    // The serial console was never given up.
    assert_eq!(rig.send("get remote_terminal.port"), vec![resp(0, "2000")]);
    // The next client may try again; the right password lets it in (split over reads, the
    // LF of its CR LF is not an empty command).
    let next = ConnId(ACCEPTED_BASE + 1);
    rig.accept(listener, next);
    assert_eq!(rig.sent(next), PASSWORD_PROMPT.as_bytes());
    rig.type_in(next, b"s3c");
    rig.type_in(next, b"ret\r");
    assert_eq!(rig.sent(next), PASSWORD_OK.as_bytes());
    rig.type_in(next, b"\nget wlan.ssid\r\n");
    assert_eq!(rig.framed(next), vec![resp(0, "lab")]);
}

#[test]
fn a_second_client_is_turned_away_while_the_first_keeps_working() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    let second = ConnId(ACCEPTED_BASE + 1);
    rig.accept(listener, second);
    assert_eq!(
        rig.reqs(),
        vec![
            NetRequest::Send { conn: second, data: BUSY.as_bytes().to_vec(), to: None },
            NetRequest::Close { conn: second }
        ]
    );
    rig.event(NetEvent::Closed { conn: second });
    rig.type_in(CLIENT, b"get wlan.ssid\r\n");
    assert_eq!(rig.framed(CLIENT), vec![resp(0, "lab")]);
    // Once the first leaves, a new client gets in.
    rig.event(NetEvent::Closed { conn: CLIENT });
    let third = ConnId(ACCEPTED_BASE + 2);
    rig.accept(listener, third);
    rig.type_in(third, b"get wlan.ssid\r\n");
    assert_eq!(rig.framed(third), vec![resp(0, "lab")]);
}

#[test]
fn the_serial_parser_is_off_while_a_client_is_connected_and_back_after() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    let out = rig.send("set wlan.ssid serial");
    assert_eq!(out, vec![log(E, super::terminal::SERIAL_OFF), failed()], "not run");
    assert_eq!(rig.m.vars().text(Var::WlanSsid), "lab");
    rig.event(NetEvent::Closed { conn: CLIENT });
    assert_eq!(rig.send("get wlan.ssid"), vec![resp(0, "lab")]);
}

#[test]
fn a_reply_for_an_earlier_connection_is_dropped() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    rig.type_in(CLIENT, b"nlo far.lab\r\n");
    let reqs = rig.reqs();
    let [NetRequest::Resolve { id, .. }] = reqs.as_slice() else { panic!("{reqs:?}") };
    rig.event(NetEvent::Closed { conn: CLIENT });
    let next = ConnId(ACCEPTED_BASE + 1);
    rig.accept(listener, next);
    rig.event(NetEvent::Resolved { id: *id, address: Some([10, 0, 0, 8]) });
    assert_eq!(rig.sent(next), b"");
    assert_eq!(rig.m.take_replies(Origin::Terminal(1)), vec![]);
}

#[test]
fn an_idle_client_is_closed_after_the_timeout() {
    let (mut rig, listener) = Rig::up(&["set remote_terminal.timeout 5"]);
    rig.accept(listener, CLIENT);
    assert_eq!(rig.m.poll_at(), Some(T0 + Duration::from_secs(5)));
    rig.advance(3000);
    rig.type_in(CLIENT, b"ver\r\n");
    rig.reqs();
    assert_eq!(rig.m.poll_at(), Some(T0 + Duration::from_secs(8)), "traffic restarts it");
    rig.advance(4999);
    assert_eq!(rig.reqs(), vec![]);
    rig.advance(1);
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: CLIENT }]);
    assert_eq!(rig.m.poll_at(), None);
    assert_eq!(rig.send("get wlan.ssid"), vec![resp(0, "lab")], "the serial parser is back");
}

#[test]
fn a_zero_timeout_never_closes() {
    let (mut rig, listener) = Rig::up(&["set remote_terminal.timeout 0"]);
    rig.accept(listener, CLIENT);
    assert_eq!(rig.m.poll_at(), None);
}

#[test]
fn the_default_timeout_is_a_minute() {
    let (mut rig, listener) = Rig::up(&[]);
    rig.accept(listener, CLIENT);
    assert_eq!(rig.m.poll_at(), Some(T0 + Duration::from_secs(60)));
}
