//! Packet capture on the lab network: live capture into a pcap savefile, a decoder for the
//! packets the lab speaks (ARP, DHCP, DNS, ICMP, TCP), packet expectations for spec tables,
//! and timeline events for reports.
//!
//! * [`Capture`]: a live capture (libpcap) on one interface, optionally inside a network
//!   namespace (`/run/netns/<name>`): a dedicated thread `setns`es into the namespace, opens
//!   the interface (promiscuous, immediate mode, non-blocking, polled with a short timeout so a
//!   stop never waits for traffic), writes every packet to a
//!   pcap savefile and keeps a copy in memory. [`Capture::stop`] returns the packets.
//! * [`decode`]: bytes of an Ethernet frame to a typed [`decode::Frame`], never panicking.
//! * [`expect`]: [`expect::PacketExpect`], the typed packet expectations of spec tables, and
//!   their checker.
//!
//! Only the capture thread changes namespace (`setns` acts on the calling thread); the rest
//! of the process stays where it was.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::model::{Lane, TimelineEvent};

pub mod decode;
pub mod expect;
pub mod keylog;
pub mod tls;

pub use decode::{Frame, decode};
pub use expect::{PacketExpect, PacketMatch};

/// How long the capture thread waits for packets before it looks at its stop flag (ms).
const POLL_TIMEOUT_MS: u8 = 20;
/// How long [`Capture::start`] waits for the capture thread to open the interface.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Capture::stop`] waits for the capture thread to finish.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Packets read at most before the capture thread looks at its stop flag again.
const DRAIN_MAX: usize = 10_000;
/// Packets kept in memory at most (every packet still goes to the file).
pub const MAX_PACKETS_IN_MEMORY: usize = 100_000;
/// Bytes kept of each packet.
const SNAPLEN: i32 = 65_535;

/// One captured packet: when it was seen and its bytes (an Ethernet frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedPacket {
    /// The capture timestamp (kernel time, wall clock).
    pub ts: SystemTime,
    /// The bytes as captured (at most the snap length).
    pub data: Vec<u8>,
    /// The packet's length on the wire (may exceed `data.len()`).
    pub wire_len: u32,
}

impl CapturedPacket {
    /// A packet seen at `ts` with these bytes.
    pub fn new(ts: SystemTime, data: Vec<u8>) -> Self {
        let wire_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        CapturedPacket { ts, data, wire_len }
    }

    /// The packet decoded (borrowing its bytes).
    pub fn decode(&self) -> Frame<'_> {
        decode::decode(&self.data)
    }

    /// Milliseconds from `start` to this packet (negative if it came before `start`).
    pub fn ms_since(&self, start: SystemTime) -> f64 {
        match self.ts.duration_since(start) {
            Ok(d) => d.as_secs_f64() * 1000.0,
            Err(e) => -(e.duration().as_secs_f64() * 1000.0),
        }
    }
}

/// What went wrong capturing. Messages say what to do where they can.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The network namespace file could not be opened.
    #[error("cannot open network namespace {}: {source}", path.display())]
    Namespace {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `setns` into the namespace failed.
    #[error("cannot enter network namespace {}: {message}", path.display())]
    Setns { path: PathBuf, message: String },
    /// The interface does not exist (in the namespace captured in).
    #[error("no such interface {interface:?}{}: {message}", in_ns(netns.as_deref()))]
    NoSuchInterface { interface: String, netns: Option<PathBuf>, message: String },
    /// Capturing is not permitted to this process.
    #[error(
        "not permitted to capture on {interface:?}: capturing needs root or CAP_NET_RAW \
         ({message})"
    )]
    NotPermitted { interface: String, message: String },
    /// Another libpcap error (opening the interface, reading a packet).
    #[error("capture on {interface:?}: {message}")]
    Pcap { interface: String, message: String },
    /// The savefile could not be created or written.
    #[error("capture file {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// The capture thread did not answer in time, or died.
    #[error("capture on {interface:?}: {message}")]
    Thread { interface: String, message: String },
}

fn in_ns(ns: Option<&Path>) -> String {
    match ns {
        Some(p) => format!(" in network namespace {}", p.display()),
        None => String::new(),
    }
}

impl CaptureError {
    /// Classifies a libpcap error met while opening `interface`.
    fn from_open(interface: &str, netns: Option<&Path>, e: &pcap::Error) -> Self {
        let message = e.to_string();
        let lower = message.to_ascii_lowercase();
        if lower.contains("no such device")
            || lower.contains("doesn't exist")
            || lower.contains("does not exist")
        {
            CaptureError::NoSuchInterface {
                interface: interface.to_string(),
                netns: netns.map(Path::to_path_buf),
                message,
            }
        } else if lower.contains("permission")
            || lower.contains("not permitted")
            || lower.contains("eperm")
        {
            CaptureError::NotPermitted { interface: interface.to_string(), message }
        } else {
            CaptureError::Pcap { interface: interface.to_string(), message }
        }
    }
}

/// A running live capture. Stop it with [`Capture::stop`]; dropping it stops it too (and
/// discards the in-memory packets, the file is still closed properly).
#[derive(Debug)]
pub struct Capture {
    interface: String,
    file: PathBuf,
    stop: Arc<AtomicBool>,
    /// The packets so far, shared with the capture thread (for waits on the live capture).
    packets: Arc<Mutex<Vec<CapturedPacket>>>,
    thread: Option<JoinHandle<Result<Vec<CapturedPacket>, CaptureError>>>,
}

impl Capture {
    /// Starts capturing on `interface` (in the network namespace at `netns_path`, e.g.
    /// `/run/netns/gecko-lab`, or in the current one when `None`), writing every packet to a
    /// pcap savefile at `file` (created or truncated; its folder must exist).
    ///
    /// Returns once the interface is open, so every packet after this call is captured
    /// (opening takes some 5 to 25 ms). Errors say which interface or namespace and why.
    pub fn start(
        netns_path: Option<&Path>,
        interface: &str,
        file: &Path,
    ) -> Result<Capture, CaptureError> {
        let stop = Arc::new(AtomicBool::new(false));
        let packets = Arc::new(Mutex::new(Vec::new()));
        let (opened_tx, opened_rx) = mpsc::sync_channel::<Result<(), CaptureError>>(1);
        let params = ThreadParams {
            netns: netns_path.map(Path::to_path_buf),
            interface: interface.to_string(),
            file: file.to_path_buf(),
            stop: Arc::clone(&stop),
            packets: Arc::clone(&packets),
        };
        let thread = thread::Builder::new()
            .name(format!("capture-{interface}"))
            .spawn(move || capture_thread(params, opened_tx))
            .map_err(|e| CaptureError::Thread {
                interface: interface.to_string(),
                message: format!("cannot start the capture thread: {e}"),
            })?;
        let mut capture = Capture {
            interface: interface.to_string(),
            file: file.to_path_buf(),
            stop,
            packets,
            thread: Some(thread),
        };
        match opened_rx.recv_timeout(OPEN_TIMEOUT) {
            Ok(Ok(())) => Ok(capture),
            Ok(Err(e)) => {
                let _ = capture.join_quietly();
                Err(e)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Leave the thread (it stops on the flag if it ever gets going).
                capture.stop.store(true, Ordering::SeqCst);
                capture.thread = None;
                Err(CaptureError::Thread {
                    interface: interface.to_string(),
                    message: format!("the interface did not open within {OPEN_TIMEOUT:?}"),
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let e = capture.join_quietly().err();
                Err(e.unwrap_or_else(|| CaptureError::Thread {
                    interface: interface.to_string(),
                    message: "the capture thread ended before opening the interface".into(),
                }))
            }
        }
    }

    /// The interface captured on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Runs `f` on the packets captured so far (oldest first), while the capture goes on.
    pub fn with_packets<R>(&self, f: impl FnOnce(&[CapturedPacket]) -> R) -> R {
        f(&self.packets.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The savefile written.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Stops the capture (within one poll timeout, some 20 to 50 ms), flushes and closes the
    /// file, and returns the packets seen (at most [`MAX_PACKETS_IN_MEMORY`]), oldest first.
    pub fn stop(mut self) -> Result<Vec<CapturedPacket>, CaptureError> {
        self.stop.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else {
            return Err(self.thread_error("the capture thread is gone"));
        };
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while !thread.is_finished() {
            if std::time::Instant::now() >= deadline {
                return Err(self.thread_error(&format!(
                    "the capture thread did not stop within {STOP_TIMEOUT:?}"
                )));
            }
            thread::sleep(Duration::from_millis(2));
        }
        match thread.join() {
            Ok(result) => result,
            Err(_) => Err(self.thread_error("the capture thread panicked")),
        }
    }

    fn thread_error(&self, message: &str) -> CaptureError {
        CaptureError::Thread { interface: self.interface.clone(), message: message.to_string() }
    }

    fn join_quietly(&mut self) -> Result<(), CaptureError> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // The thread stops within one poll timeout.
            let _ = thread.join();
        }
    }
}

struct ThreadParams {
    netns: Option<PathBuf>,
    interface: String,
    file: PathBuf,
    stop: Arc<AtomicBool>,
    packets: Arc<Mutex<Vec<CapturedPacket>>>,
}

type Opened = mpsc::SyncSender<Result<(), CaptureError>>;

fn capture_thread(p: ThreadParams, opened: Opened) -> Result<Vec<CapturedPacket>, CaptureError> {
    let setup = open(&p);
    let (mut cap, mut save) = match setup {
        Ok(v) => v,
        Err(e) => {
            // If `start` already gave up, nobody listens; the error goes to `join`.
            return match opened.send(Err(e)) {
                Ok(()) => Ok(Vec::new()),
                Err(mpsc::SendError(Err(e))) => Err(e),
                Err(mpsc::SendError(Ok(()))) => Ok(Vec::new()),
            };
        }
    };
    let _ = opened.send(Ok(()));
    drop(opened);

    let mut failure = None;
    // Non-blocking reads, and poll(2) with a short timeout between bursts: libpcap's own read
    // timeout does not fire on an idle interface (Linux, immediate mode), a stop must not wait
    // for traffic.
    // Each round reads what is waiting, then looks at the stop flag, then polls: so what
    // arrived before `stop` was called is read before the thread ends. A round reads at most
    // `DRAIN_MAX` packets, so a flood cannot delay a stop for long.
    'capture: loop {
        for _ in 0..DRAIN_MAX {
            match cap.next_packet() {
                Ok(packet) => {
                    save.write(&packet);
                    let mut packets = p.packets.lock().unwrap_or_else(PoisonError::into_inner);
                    if packets.len() < MAX_PACKETS_IN_MEMORY {
                        let ts = timestamp(packet.header.ts.tv_sec, packet.header.ts.tv_usec);
                        packets.push(CapturedPacket {
                            ts,
                            data: packet.data.to_vec(),
                            wire_len: packet.header.len,
                        });
                    }
                }
                Err(pcap::Error::TimeoutExpired) => break,
                Err(e) => {
                    failure = Some(CaptureError::Pcap {
                        interface: p.interface.clone(),
                        message: format!("reading a packet: {e}"),
                    });
                    break 'capture;
                }
            }
        }
        if p.stop.load(Ordering::SeqCst) {
            break;
        }
        let mut fds = [PollFd::new(cap.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(POLL_TIMEOUT_MS)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => {
                failure = Some(CaptureError::Pcap {
                    interface: p.interface.clone(),
                    message: format!("waiting for packets: {errno}"),
                });
                break;
            }
        }
    }
    let flushed = save.flush();
    drop(save);
    if let Some(e) = failure {
        return Err(e);
    }
    flushed.map_err(|e| CaptureError::File { path: p.file.clone(), message: e.to_string() })?;
    Ok(std::mem::take(&mut *p.packets.lock().unwrap_or_else(PoisonError::into_inner)))
}

fn open(p: &ThreadParams) -> Result<(pcap::Capture<pcap::Active>, pcap::Savefile), CaptureError> {
    if let Some(ns) = &p.netns {
        let fd = File::open(ns)
            .map_err(|source| CaptureError::Namespace { path: ns.clone(), source })?;
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|errno| {
            let hint = if errno == nix::errno::Errno::EPERM {
                " (needs root or CAP_SYS_ADMIN)"
            } else if errno == nix::errno::Errno::EINVAL {
                " (is it a network namespace file, e.g. /run/netns/<name>?)"
            } else {
                ""
            };
            CaptureError::Setns { path: ns.clone(), message: format!("{errno}{hint}") }
        })?;
    }
    let netns = p.netns.as_deref();
    let cap = pcap::Capture::from_device(p.interface.as_str())
        .map_err(|e| CaptureError::from_open(&p.interface, netns, &e))?
        .promisc(true)
        .immediate_mode(true)
        .snaplen(SNAPLEN)
        .timeout(i32::from(POLL_TIMEOUT_MS))
        .open()
        .and_then(pcap::Capture::setnonblock)
        .map_err(|e| CaptureError::from_open(&p.interface, netns, &e))?;
    let save = cap
        .savefile(&p.file)
        .map_err(|e| CaptureError::File { path: p.file.clone(), message: e.to_string() })?;
    Ok((cap, save))
}

fn timestamp(sec: impl TryInto<u64>, usec: impl TryInto<u64>) -> SystemTime {
    let sec = sec.try_into().unwrap_or(0);
    let usec = usec.try_into().unwrap_or(0).min(999_999);
    UNIX_EPOCH + Duration::from_secs(sec) + Duration::from_micros(usec)
}

/// The capture file of a case, relative to the run folder: `captures/<id>.pcap`, with `/`
/// in the id replaced by `__` and any character other than `A-Z a-z 0-9 . - _` by `_`.
pub fn capture_file_name(case_id: &str) -> String {
    let mut name = String::with_capacity(case_id.len() + 16);
    name.push_str("captures/");
    for c in case_id.chars() {
        match c {
            '/' => name.push_str("__"),
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') => name.push(c),
            _ => name.push('_'),
        }
    }
    name.push_str(".pcap");
    name
}

/// Timeline events (lane `packet`) for captured packets: one per packet, `t_ms` measured from
/// `case_start`, the text a one-line summary of the decoded packet.
pub fn timeline_events(packets: &[CapturedPacket], case_start: SystemTime) -> Vec<TimelineEvent> {
    packets
        .iter()
        .map(|p| TimelineEvent {
            t_ms: p.ms_since(case_start),
            lane: Lane::Packet,
            text: p.decode().to_string(),
        })
        .collect()
}

#[cfg(test)]
mod testdata;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests;
