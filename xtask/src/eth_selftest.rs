//! `cargo xtask eth-selftest`: the emulated board's Ethernet end to end. Builds the board's
//! `eth-selftest` image into a target directory of its own (the normal image stays as it
//! is), boots it in QEMU with the board's LAN9118 on a unix datagram socket (how the lab
//! attaches equipment to the board's NIC), answers the board's ARP request for the gateway
//! from a peer on the other socket, and waits until the board prints the answer.

use anyhow::{Context, Result, bail};
use gecko_hil::interrupt::{self, Forwarded};
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The address the board asks for (its self-test's gateway).
pub const GATEWAY_IP: [u8; 4] = [10, 77, 0, 1];
/// The peer's answer: a locally administered address.
pub const GATEWAY_MAC: [u8; 6] = [0x02, 0x77, 0x00, 0x00, 0x00, 0x01];
/// Where the image is built (apart from `target/`, whose image the conformance runs boot).
const TARGET_DIR: &str = "target/eth-selftest";
const PACKAGE: &str = "gecko-board-qemu-an386";
const TARGET: &str = "thumbv7em-none-eabihf";
/// Boot and five ARP attempts of a second each take a few seconds; a loaded machine more.
const DEADLINE: Duration = Duration::from_secs(60);

/// The arguments that boot `image` with the board's NIC (QEMU's `nd_table[0]`, which the
/// mps2 machines give their LAN9118) on a unix datagram socket: QEMU's end at `qemu_sock`,
/// the lab's at `lab_sock`. `-nic dgram,…` does not take `remote.path` in QEMU 7.2, so the
/// netdev and the NIC are given apart.
pub fn qemu_args(image: &Path, qemu_sock: &Path, lab_sock: &Path) -> Vec<String> {
    let netdev = format!(
        "dgram,id=n0,local.type=unix,local.path={},remote.type=unix,remote.path={}",
        qemu_sock.display(),
        lab_sock.display()
    );
    [
        "-M",
        "mps2-an386",
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-netdev",
        &netdev,
        "-net",
        "nic,netdev=n0",
        "-kernel",
        &image.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// The ARP reply to `frame` when it asks for `ip` (Ethernet, IPv4); `None` for anything else.
pub fn arp_answer(frame: &[u8], ip: [u8; 4], mac: [u8; 6]) -> Option<[u8; 42]> {
    let f = frame.get(..42)?;
    let request = f[12..14] == [0x08, 0x06] && f[14..22] == [0, 1, 0x08, 0x00, 6, 4, 0, 1];
    if !request || f[38..42] != ip {
        return None;
    }
    let (asker_mac, asker_ip) = (&f[22..28], &f[28..32]);
    let mut r = [0u8; 42];
    r[0..6].copy_from_slice(asker_mac);
    r[6..12].copy_from_slice(&mac);
    r[12..14].copy_from_slice(&[0x08, 0x06]);
    r[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    r[22..28].copy_from_slice(&mac);
    r[28..32].copy_from_slice(&ip);
    r[32..38].copy_from_slice(asker_mac);
    r[38..42].copy_from_slice(asker_ip);
    Some(r)
}

/// The line the board prints when the peer's answer came back.
pub fn expected_line() -> String {
    let [a, b, c, d] = GATEWAY_IP;
    let m = GATEWAY_MAC;
    format!(
        "eth: arp reply from {a}.{b}.{c}.{d} is {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Answers ARP requests for the gateway arriving on `socket`, sending the replies to
/// `board`, until `stop`; counts the answers.
fn peer(socket: UnixDatagram, board: PathBuf, stop: Arc<AtomicBool>, answered: Arc<AtomicUsize>) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        // A timeout (the read timeout) just looks at `stop` again.
        let Ok(n) = socket.recv(&mut buf) else { continue };
        if let Some(reply) = arp_answer(&buf[..n], GATEWAY_IP, GATEWAY_MAC)
            && socket.send_to(&reply, &board).is_ok()
        {
            answered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub fn run() -> Result<ExitCode> {
    let target_dir = crate::root().join(TARGET_DIR);
    crate::run(
        &format!("build {PACKAGE} (eth-selftest) for {TARGET}"),
        crate::cargo().args(["build", "--release", "-p", PACKAGE, "--target", TARGET]).args([
            "--features",
            "eth-selftest",
            "--target-dir",
            &target_dir.display().to_string(),
        ]),
    )?;
    let image = target_dir.join(TARGET).join("release").join(PACKAGE);
    // Short paths: a unix socket's path has at most 107 bytes.
    let dir = std::env::temp_dir().join(format!("gecko-eth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = exchange(&image, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn exchange(image: &Path, dir: &Path) -> Result<ExitCode> {
    let (qemu_sock, lab_sock) = (dir.join("qemu.sock"), dir.join("lab.sock"));
    let socket = UnixDatagram::bind(&lab_sock)
        .with_context(|| format!("binding the lab's socket {}", lab_sock.display()))?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let peer = {
        let (board, stop, answered) = (qemu_sock.clone(), stop.clone(), answered.clone());
        std::thread::spawn(move || peer(socket, board, stop, answered))
    };
    let args = qemu_args(image, &qemu_sock, &lab_sock);
    println!("==> qemu-system-arm {}", args.join(" "));
    let mut qemu = Forwarded::spawn(
        Command::new("qemu-system-arm")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    )
    .context("starting qemu-system-arm")?;
    let stdout = qemu.child().stdout.take().context("QEMU's stdout")?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line.trim_end_matches('\r').to_string()).is_err() {
                break;
            }
        }
    });
    let want = expected_line();
    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let outcome = loop {
        if interrupt::requested() {
            break Err("stopped by a signal");
        }
        if started.elapsed() > DEADLINE {
            break Err("no answer before the deadline");
        }
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                println!("board: {line}");
                let done = line.starts_with(&want);
                let failed =
                    line.starts_with("eth: init failed") || line.starts_with("eth: no arp");
                seen.push(line);
                if done {
                    break Ok(());
                }
                if failed {
                    break Err("the board reported a failure");
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break Err("QEMU ended"),
        }
    };
    let _ = qemu.child().kill();
    let _ = qemu.wait();
    stop.store(true, Ordering::Relaxed);
    let _ = peer.join();
    let answers = answered.load(Ordering::Relaxed);
    match outcome {
        Ok(()) => {
            println!(
                "eth-selftest: the board got the peer's ARP reply ({answers} answered) in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            let last: Vec<&str> = seen.iter().rev().take(10).rev().map(String::as_str).collect();
            bail!(
                "eth-selftest: {why} (waited for `{want}`; the peer answered {answers} \
                 request(s); the board's last lines: {last:?})"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOARD_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x03, 0x86];

    #[test]
    fn the_peer_answers_the_boards_request_with_a_reply_the_board_reads() {
        let request = lan9118::arp::request(BOARD_MAC, [10, 77, 0, 100], GATEWAY_IP);
        let Some(reply) = arp_answer(&request, GATEWAY_IP, GATEWAY_MAC) else {
            panic!("a request for the gateway is answered");
        };
        assert_eq!(&reply[..6], &BOARD_MAC, "sent to the asker");
        assert_eq!(
            lan9118::arp::parse_reply(&reply),
            Some(lan9118::arp::Reply { ip: GATEWAY_IP, mac: GATEWAY_MAC })
        );
        assert_eq!(&reply[38..42], &[10, 77, 0, 100]);
    }

    #[test]
    fn the_peer_ignores_other_frames() {
        let other = lan9118::arp::request(BOARD_MAC, [10, 77, 0, 100], [10, 77, 0, 2]);
        assert_eq!(arp_answer(&other, GATEWAY_IP, GATEWAY_MAC), None);
        let request = lan9118::arp::request(BOARD_MAC, [10, 77, 0, 100], GATEWAY_IP);
        assert_eq!(arp_answer(&request[..41], GATEWAY_IP, GATEWAY_MAC), None);
        let reply = arp_answer(&request, GATEWAY_IP, GATEWAY_MAC);
        assert_eq!(reply.and_then(|r| arp_answer(&r, GATEWAY_IP, GATEWAY_MAC)), None);
    }

    #[test]
    fn qemu_gets_the_nic_on_a_unix_datagram_socket() {
        let args = qemu_args(Path::new("img"), Path::new("/t/q.sock"), Path::new("/t/l.sock"));
        assert_eq!(
            args.join(" "),
            "-M mps2-an386 -nographic -monitor none -serial stdio -netdev \
             dgram,id=n0,local.type=unix,local.path=/t/q.sock,remote.type=unix,\
             remote.path=/t/l.sock -net nic,netdev=n0 -kernel img"
        );
        assert_eq!(expected_line(), "eth: arp reply from 10.77.0.1 is 02:77:00:00:00:01");
    }
}
