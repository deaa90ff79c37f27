//! The simulated radio as lab equipment for a board (`gecko-sim radio`): a board with no
//! Wi-Fi of its own (QEMU's mps2-an386) reaches it the way a host MCU reaches a separate
//! Wi-Fi chip, over a UART, and its Ethernet frames reach the lab only through it.
//!
//! * **The radio link**: a Unix stream socket (`--radio-socket`) QEMU attaches the board's
//!   second UART to (`-chardev socket,id=radio,path=PATH,reconnect=1 -serial pty -serial
//!   chardev:radio`: the equipment listens, QEMU connects and connects again after it
//!   restarts). The board's lines are [`gecko_radio_link::ToRadio`] messages, fed to the
//!   [`Radio`] with this process's clock; its answers and the lab's doings (a removed AP's
//!   `LINKLOST`) go back as [`FromRadio`] lines. A new connection, a closed one and a
//!   `RESET` each forget the association (the board booted, or is gone) and get `HELLO`.
//!   Lines that are no message are reported on stderr and skipped.
//! * **The frames**: one Ethernet frame per datagram on a Unix datagram socket
//!   (`--frames`, bound here) from QEMU's NIC (`-netdev dgram,id=nic,local.type=unix,
//!   local.path=BOARD,remote.type=unix,remote.path=FRAMES -net nic,netdev=nic`), relayed to
//!   and from the lab's TAP device (`--tap`), both ways only while the radio says the board
//!   is associated; DHCP frames are dropped while a `dhcp_silent` fault says so. The board's
//!   address for the lab's `state` answer is learnt from the frames it sends (IPv4 source,
//!   ARP sender), never told by the firmware.
//! * **The lab control channel** (`--lab-socket`): the same JSON lines as a simulated
//!   module's ([`crate::lab`]), served by [`lab::serve_lines`]; the access points are kept
//!   in [`lab::aps_file`] as there. `store_fail` and `tls_heap` act inside a module, which a
//!   board's radio cannot reach: they are refused.
//!
//! A power cycle of the board (QEMU's `system_reset`) leaves this process running: the
//! access points stay on the air, as real ones do.

use crate::lab;
use crate::radio::Radio;
use async_io::{Async, Timer};
use core::cell::RefCell;
use core::future::poll_fn;
use core::task::{Poll, Waker};
use embassy_futures::select::{Either3, select3};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use gecko_radio_link::{Decoder, FromRadio, Message, PROTOCOL_VERSION, ToRadio};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::string::{String, ToString};
use std::time::{Duration, Instant};
use std::vec::Vec;

/// How to start the equipment.
#[derive(Clone, Debug)]
pub struct EquipmentConfig {
    /// The stream socket the board's UART attaches to (listened on here).
    pub radio_socket: PathBuf,
    /// The datagram socket the board's frames come to (bound here).
    pub frames: PathBuf,
    /// The board's datagram socket (QEMU binds it): where frames for the board go.
    pub board_frames: PathBuf,
    /// The lab's TAP device (it must exist); without it no frame reaches a network.
    pub tap: Option<String>,
    /// Where to serve the lab control channel.
    pub lab_socket: PathBuf,
}

/// What the equipment's loops share (one thread).
#[derive(Debug)]
struct State {
    radio: Radio,
    /// The board's address, as its frames show it.
    ip: Option<[u8; 4]>,
    /// The radio may have something for the board (the lab changed it).
    notified: bool,
    link_waker: Option<Waker>,
    started: Instant,
}

type StateRef = Rc<RefCell<State>>;

impl State {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn wake_link(&mut self) {
        self.notified = true;
        if let Some(w) = self.link_waker.take() {
            w.wake();
        }
    }

    /// Whether a frame may pass now: the simulated radio's own gate (associated; it fires
    /// `dhcp_silent` on DHCP frames), as on the simulated module.
    fn frame_passes(&mut self, frame: &[u8]) -> bool {
        gecko_net::Radio::frame_passes(&mut self.radio, frame)
    }

    /// The board booted, or its UART went away: no association, no address.
    fn board_reset(&mut self, why: &str) {
        self.radio.reset();
        self.ip = None;
        std::eprintln!("gecko-sim radio: {why}: radio reset");
    }
}

/// The sockets and device, opened before anything runs.
struct Opened {
    uart: Async<UnixListener>,
    frames: Async<UnixDatagram>,
    tap: Option<Async<embassy_net_tuntap::TunTap>>,
    lab: Async<UnixListener>,
}

fn open(config: &EquipmentConfig) -> Result<Opened, String> {
    let tap = match &config.tap {
        Some(name) => {
            // TUNSETIFF would create a missing device: the lab must have made it.
            if !Path::new("/sys/class/net").join(name).exists() {
                return Err(format!("TAP device {name} does not exist (create it first)"));
            }
            let dev = embassy_net_tuntap::TunTap::new(name)
                .and_then(Async::new)
                .map_err(|e| format!("cannot open TAP device {name}: {e}"))?;
            Some(dev)
        }
        None => None,
    };
    let uart = lab::bind(&config.radio_socket).map_err(|e| {
        format!("cannot bind the radio socket {}: {e}", config.radio_socket.display())
    })?;
    let _ = std::fs::remove_file(&config.frames);
    let frames = UnixDatagram::bind(&config.frames)
        .and_then(Async::new)
        .map_err(|e| format!("cannot bind the frames socket {}: {e}", config.frames.display()))?;
    let lab = lab::bind(&config.lab_socket)
        .map_err(|e| format!("cannot bind the lab socket {}: {e}", config.lab_socket.display()))?;
    Ok(Opened { uart, frames, tap, lab })
}

/// The sockets the equipment leaves behind, for the signal handler.
pub fn sockets(config: &EquipmentConfig) -> [PathBuf; 3] {
    [config.radio_socket.clone(), config.frames.clone(), config.lab_socket.clone()]
}

/// Opens everything, prints `radio socket: …`, `frames: …`, then `lab socket: …` once all
/// of it is served, and runs until killed. Exits with code 1 when something cannot be
/// opened.
pub fn run(config: EquipmentConfig) -> ! {
    let opened = match open(&config) {
        Ok(o) => o,
        Err(e) => {
            std::eprintln!("gecko-sim radio: {e}");
            for path in sockets(&config) {
                crate::remove_link(&path);
            }
            std::process::exit(1);
        }
    };
    let aps = lab::aps_file(&config.lab_socket);
    let mut radio = Radio::new();
    // Access points that were on the air before this process started.
    if let Err(e) = lab::load_aps(&mut radio, &aps) {
        std::eprintln!("gecko-sim radio: lab access points not restored: {e}");
    }
    let state = Rc::new(RefCell::new(State {
        radio,
        ip: None,
        notified: false,
        link_waker: None,
        started: Instant::now(),
    }));
    std::println!("radio socket: {}", config.radio_socket.display());
    std::println!("frames: {}", config.frames.display());
    std::println!("lab socket: {}", config.lab_socket.display());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let apply = |text: &str| {
        let mut s = state.borrow_mut();
        let answer = match board_refuses(text) {
            Some(refusal) => refusal,
            None => {
                let ip = s.ip;
                lab::apply_line(&mut s.radio, ip, text, Some(&aps))
            }
        };
        s.wake_link();
        answer
    };
    let relay = Relay { frames: &opened.frames, tap: opened.tap.as_ref() };
    let (never, ..) = futures_lite::future::block_on(embassy_futures::join::join4(
        board_to_lab(&relay, &state),
        lab_to_board(&relay, &config.board_frames, &state),
        serve_uart(&opened.uart, &relay, &state),
        lab::serve_lines(&opened.lab, &apply),
    ));
    never
}

/// The answer to a lab request a board's radio cannot serve: the faults that act inside a
/// module (its flash, its TLS stack).
fn board_refuses(line: &str) -> Option<String> {
    let lab::Request::Fault { fault } = serde_json::from_str::<lab::Request>(line).ok()? else {
        return None;
    };
    let kind = match fault {
        lab::FaultSpec::StoreFail { .. } => "store_fail",
        lab::FaultSpec::TlsHeap { .. } => "tls_heap",
        _ => return None,
    };
    let error = format!(
        "{kind} is not available for a board: it acts inside the module, which the radio \
         equipment does not reach"
    );
    Some(serde_json::json!({"ok": false, "error": error}).to_string())
}

/// Serves the board's UART: one connection at a time (QEMU has one), each until it closes.
async fn serve_uart(listener: &Async<UnixListener>, relay: &Relay<'_>, state: &StateRef) -> ! {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        state.borrow_mut().board_reset("board connected");
        if let Err(e) = serve_board(&stream, relay, state).await {
            std::eprintln!("gecko-sim radio: board link: {e}");
        }
        state.borrow_mut().board_reset("board disconnected");
    }
}

async fn send(stream: &Async<UnixStream>, message: &FromRadio) -> io::Result<()> {
    let mut writer = stream;
    writer.write_all(message.encode().as_bytes()).await?;
    writer.flush().await
}

/// One board connection: `HELLO`, then its messages in and the radio's events out, until it
/// closes.
async fn serve_board(
    stream: &Async<UnixStream>,
    relay: &Relay<'_>,
    state: &StateRef,
) -> io::Result<()> {
    let mut decoder = Decoder::<ToRadio>::new();
    let mut buf = [0u8; 1024];
    let mut frame = std::vec![0u8; FRAME_MAX];
    send(stream, &FromRadio::Hello { version: PROTOCOL_VERSION }).await?;
    loop {
        // Whatever the radio has for the board now (answers due, the lab's doings).
        let (events, deadline) = {
            let mut s = state.borrow_mut();
            let now = s.now_ms();
            s.radio.poll(now);
            let events: Vec<_> = core::iter::from_fn(|| s.radio.take_event()).collect();
            let deadline =
                s.radio.next_deadline().map(|due| s.started + Duration::from_millis(due));
            (events, deadline)
        };
        for event in events {
            if let Some(message) = FromRadio::from_event(&event) {
                send(stream, &message).await?;
            }
        }
        let mut reader = stream;
        let wake = poll_fn(|cx| {
            let mut s = state.borrow_mut();
            if core::mem::take(&mut s.notified) {
                return Poll::Ready(());
            }
            s.link_waker = Some(cx.waker().clone());
            Poll::Pending
        });
        let due = async {
            match deadline {
                Some(at) => {
                    Timer::at(at).await;
                }
                None => core::future::pending::<()>().await,
            }
        };
        match select3(reader.read(&mut buf), wake, due).await {
            Either3::First(read) => {
                let n = read?;
                if n == 0 {
                    return Ok(());
                }
                for message in decoder.feed(&buf[..n]) {
                    // Frames sent before this message are judged by the state before it.
                    relay.drain(state, &mut frame);
                    match message {
                        Ok(ToRadio::Reset) => {
                            state.borrow_mut().board_reset("RESET");
                            send(stream, &FromRadio::Hello { version: PROTOCOL_VERSION }).await?;
                        }
                        Ok(message) => {
                            let mut s = state.borrow_mut();
                            let now = s.now_ms();
                            if let Some(request) = message.into_request() {
                                s.radio.request(&request, now);
                            }
                        }
                        Err(e) => std::eprintln!("gecko-sim radio: bad line from the board: {e}"),
                    }
                }
            }
            Either3::Second(()) | Either3::Third(()) => {}
        }
    }
}

/// The board's frames socket and the lab's TAP device.
struct Relay<'a> {
    frames: &'a Async<UnixDatagram>,
    tap: Option<&'a Async<embassy_net_tuntap::TunTap>>,
}

impl Relay<'_> {
    /// One frame from the board: to the lab's TAP if it passes (a TAP whose queue is full
    /// drops it, as a busy network would).
    fn board_frame(&self, state: &StateRef, frame: &[u8]) {
        {
            let mut s = state.borrow_mut();
            if !s.frame_passes(frame) {
                return;
            }
            if let Some(ip) = gecko_net::frames::ipv4_sender(frame) {
                s.ip = Some(ip);
            }
        }
        if let Some(tap) = self.tap
            && let Err(e) = nix::unistd::write(tap.get_ref().as_fd(), frame)
        {
            std::eprintln!("gecko-sim radio: TAP write: {e}");
        }
    }

    /// Judges the frames the board has sent so far (before a message on its UART changes
    /// the association: what it sent before associating never passes).
    fn drain(&self, state: &StateRef, buf: &mut [u8]) {
        while let Ok(n) = self.frames.get_ref().recv(buf) {
            self.board_frame(state, &buf[..n]);
        }
    }
}

/// Frames from the board: to the lab's TAP, while they pass.
async fn board_to_lab(relay: &Relay<'_>, state: &StateRef) -> ! {
    let mut buf = std::vec![0u8; FRAME_MAX];
    loop {
        if let Ok(n) = relay.frames.recv(&mut buf).await {
            relay.board_frame(state, &buf[..n]);
        }
    }
}

/// The largest datagram taken (a frame with jumbo room to spare).
const FRAME_MAX: usize = 65536;

/// Frames from the lab's TAP: to the board, while they pass (a board not running, whose
/// socket is not there, misses them, as a board without power would).
async fn lab_to_board(relay: &Relay<'_>, board: &Path, state: &StateRef) -> ! {
    let Some(tap) = relay.tap else { core::future::pending().await };
    let mut buf = std::vec![0u8; FRAME_MAX];
    loop {
        let read =
            tap.read_with(|t| nix::unistd::read(t.as_fd(), &mut buf).map_err(io::Error::from));
        let Ok(n) = read.await else { continue };
        let frame = &buf[..n];
        let passes = {
            let mut s = state.borrow_mut();
            let passes = s.frame_passes(frame);
            // The lease the lab's DHCP server gives is the board's address at once: a board
            // may send nothing from it until someone talks to it.
            if passes && let Some(ip) = gecko_net::frames::dhcp_ack_address(frame) {
                s.ip = Some(ip);
            }
            passes
        };
        if passes {
            let _ = relay.frames.send_to(frame, board).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// A DHCP DISCOVER's headers (Ethernet, IPv4, UDP 68 → 67), or another UDP port's.
    fn udp_frame(dst_port: u16) -> Vec<u8> {
        let mut frame = std::vec![0u8; 14 + 20 + 8];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        frame[14 + 9] = 17;
        frame[34..36].copy_from_slice(&68u16.to_be_bytes());
        frame[36..38].copy_from_slice(&dst_port.to_be_bytes());
        frame
    }

    #[test]
    fn frames_pass_only_while_associated_and_dhcp_silent_drops_dhcp() {
        use crate::radio::{AccessPoint, FaultKind};
        use gecko_core::net::{NetRequest, Security};
        let mut state = State {
            radio: Radio::new(),
            ip: None,
            notified: false,
            link_waker: None,
            started: Instant::now(),
        };
        let ap = AccessPoint {
            ssid: "lab".into(),
            bssid: [2, 0, 0, 0, 1, 1],
            channel: 6,
            security: Security::Open,
            passkey: String::new(),
            rssi: -40,
            hidden: false,
        };
        let (dhcp, other) = (udp_frame(67), udp_frame(53));
        assert!(!state.frame_passes(&other), "not associated");
        state.radio.add_ap(ap.clone());
        let bss = gecko_core::net::Bss {
            ssid: ap.ssid,
            bssid: ap.bssid,
            channel: ap.channel,
            rssi: ap.rssi,
            security: ap.security,
        };
        state.radio.request(&NetRequest::Associate { attempt: 1, bss, passkey: Vec::new() }, 0);
        assert!(state.frame_passes(&dhcp) && state.frame_passes(&other));
        state.radio.inject(FaultKind::DhcpSilent { count: Some(1) }).expect("armed");
        assert!(state.frame_passes(&other), "only DHCP is dropped");
        assert!(!state.frame_passes(&dhcp), "dropped once");
        assert!(state.frame_passes(&dhcp), "the fault is spent");
        state.board_reset("test");
        assert!(!state.frame_passes(&other), "a board reset disassociates");
    }

    #[rstest]
    #[case::store(r#"{"op":"fault","fault":{"kind":"store_fail","store":"nvm"}}"#, true)]
    #[case::tls(r#"{"op":"fault","fault":{"kind":"tls_heap","bytes":1000}}"#, true)]
    #[case::radio(r#"{"op":"fault","fault":{"kind":"reject_association"}}"#, false)]
    #[case::other(r#"{"op":"list_aps"}"#, false)]
    #[case::garbage("not json", false)]
    fn module_internal_faults_are_refused(#[case] line: &str, #[case] refused: bool) {
        let answer = board_refuses(line);
        assert_eq!(answer.is_some(), refused, "{answer:?}");
        if let Some(answer) = answer {
            let value: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
            assert_eq!(value["ok"], false);
            let error = value["error"].as_str().expect("error text");
            assert!(error.contains("not available for a board"), "{error}");
        }
    }
}
