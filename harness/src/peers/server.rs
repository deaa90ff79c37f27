//! The peers' threads: each enters the lab's namespace, binds, and serves with non-blocking
//! sockets and `poll` until its wake socket closes.

use super::{
    Closed, ConnRecord, DEFAULT_PEER_ADDR, PeerError, PeerHandle, PeerSpec, Proto, Records, enter,
    lock, pattern,
};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The longest a peer sleeps in `poll` without looking at its timers.
const MAX_WAIT: Duration = Duration::from_millis(500);
const READ_CHUNK: usize = 64 * 1024;

enum Socket {
    Tcp(TcpListener),
    /// `tls_server`: its listener and OpenSSL context.
    Tls(TcpListener, Arc<openssl::ssl::SslContext>),
    Udp(UdpSocket),
    /// `tcp_refuse`: nothing.
    None,
}

fn bind_error(spec: &PeerSpec, addr: SocketAddr, netns: &str, e: std::io::Error) -> PeerError {
    match e.kind() {
        ErrorKind::AddrInUse => PeerError::PortInUse {
            proto: spec.proto(),
            addr,
            netns: netns.to_string(),
            by: " (by another peer or a program in the lab)".into(),
        },
        ErrorKind::AddrNotAvailable => PeerError::Io {
            what: format!("bind {addr} in lab {netns} (the address is not on the lab's bridge)"),
            source: e,
        },
        _ => PeerError::Io { what: format!("bind {addr} in lab {netns}"), source: e },
    }
}

fn bind(
    spec: &PeerSpec,
    addr: SocketAddr,
    netns: &str,
    tls: Option<Arc<openssl::ssl::SslContext>>,
) -> Result<(Socket, SocketAddr), PeerError> {
    let err = |e| bind_error(spec, addr, netns, e);
    let nonblocking = |what: &str| PeerError::io(format!("{what} {addr}: set non-blocking"));
    match spec {
        PeerSpec::TcpRefuse { .. } => {
            // Proves the address is there and the port free; listens for no longer than
            // this call, before the case starts.
            let probe = TcpListener::bind(addr).map_err(err)?;
            let local = probe.local_addr().map_err(err)?;
            drop(probe);
            Ok((Socket::None, local))
        }
        _ if spec.proto() == Proto::Tcp => {
            let l = TcpListener::bind(addr).map_err(err)?;
            l.set_nonblocking(true).map_err(nonblocking("tcp"))?;
            let local = l.local_addr().map_err(err)?;
            Ok((
                match tls {
                    Some(ctx) => Socket::Tls(l, ctx),
                    None => Socket::Tcp(l),
                },
                local,
            ))
        }
        _ => {
            let s = UdpSocket::bind(addr).map_err(err)?;
            s.set_nonblocking(true).map_err(nonblocking("udp"))?;
            let local = s.local_addr().map_err(err)?;
            Ok((Socket::Udp(s), local))
        }
    }
}

/// Starts one peer; returns once it is bound (or failed to).
pub(super) fn spawn(
    netns_path: &Path,
    netns: &str,
    spec: &PeerSpec,
    index: usize,
    pki: Option<&crate::pki::Pki>,
) -> Result<PeerHandle, PeerError> {
    let addr = SocketAddr::from((spec.addr().unwrap_or(DEFAULT_PEER_ADDR), spec.port()));
    let tls = super::tls::server_context(spec, pki)
        .map_err(|message| PeerError::Config { index, kind: spec.kind(), message })?
        .map(Arc::new);
    let records: Records = Arc::new(Mutex::new(Vec::new()));
    let failure = Arc::new(Mutex::new(None));
    let (wake_tx, wake_rx) =
        UnixStream::pair().map_err(PeerError::io("create a peer's wake socket pair"))?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<SocketAddr, PeerError>>();
    let path = netns_path.to_path_buf();
    let netns_name = netns.to_string();
    let spec_t = spec.clone();
    let records_t = Arc::clone(&records);
    let failure_t = Arc::clone(&failure);
    let thread = std::thread::Builder::new()
        .name(format!("peer-{}-{}", spec.kind(), spec.port()))
        .spawn(move || {
            let bound = enter(&path).and_then(|()| bind(&spec_t, addr, &netns_name, tls));
            let (socket, local) = match bound {
                Ok(b) => b,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(local));
            let result = match socket {
                Socket::Tcp(l) => match &spec_t {
                    PeerSpec::TlsHostile(h) => super::hostile::serve(h, &l, &wake_rx, &records_t),
                    _ => serve_tcp(&spec_t, &l, &wake_rx, &records_t),
                },
                Socket::Tls(l, ctx) => super::tls::serve(&ctx, &l, &wake_rx, &records_t),
                Socket::Udp(s) => serve_udp(&spec_t, &s, &wake_rx, &records_t),
                Socket::None => wait_wake(&wake_rx),
            };
            if let Err(e) = result
                && let Ok(mut f) = failure_t.lock()
            {
                *f = Some(e);
            }
        })
        .map_err(PeerError::io("start a peer thread"))?;
    let local = match ready_rx.recv() {
        Ok(Ok(local)) => local,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = thread.join();
            return Err(PeerError::Io {
                what: format!("peer {} on {addr}", spec.kind()),
                source: std::io::Error::other("its thread ended before binding"),
            });
        }
    };
    Ok(PeerHandle {
        spec: spec.clone(),
        local,
        records,
        failure,
        wake: Some(wake_tx),
        thread: Some(thread),
    })
}

/// Whether the wake socket says stop (closed, or anything written to it).
fn woken(flags: Option<PollFlags>) -> bool {
    flags.is_some_and(|f| !f.is_empty())
}

fn poll_timeout(next_due: Option<Instant>) -> PollTimeout {
    let wait = next_due
        .map(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or(MAX_WAIT)
        .min(MAX_WAIT);
    // Round up so a due time is never missed by a millisecond of truncation.
    let ms = wait.as_micros().div_ceil(1000);
    PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
}

fn poll_err(e: nix::errno::Errno) -> Option<String> {
    (e != nix::errno::Errno::EINTR).then(|| format!("poll: {e}"))
}

fn wait_wake(wake: &UnixStream) -> Result<(), String> {
    loop {
        let mut fds = [PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) if woken(fds[0].revents()) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                if let Some(m) = poll_err(e) {
                    return Err(m);
                }
            }
        }
    }
}

struct Conn {
    stream: TcpStream,
    rec: usize,
    /// Bytes to send at their due time.
    queue: VecDeque<(Instant, Vec<u8>)>,
    /// Bytes due, not yet written.
    out: Vec<u8>,
    read_open: bool,
    remote_eof: bool,
    received: u64,
    close_after_reached: bool,
    write_shut: bool,
    done: Option<Closed>,
}

impl Conn {
    fn pending(&self) -> bool {
        !self.queue.is_empty() || !self.out.is_empty()
    }
}

fn serve_tcp(
    spec: &PeerSpec,
    listener: &TcpListener,
    wake: &UnixStream,
    records: &Records,
) -> Result<(), String> {
    let delay = spec.delay();
    let close_after = spec.close_after_bytes();
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let result = loop {
        // Due bytes to the output buffers.
        let now = Instant::now();
        for c in &mut conns {
            while c.queue.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, data)) = c.queue.pop_front() {
                    c.out.extend_from_slice(&data);
                }
            }
        }
        let next_due = conns.iter().filter_map(|c| c.queue.front().map(|(d, _)| *d)).min();
        let (wake_ev, listen_ev, conn_ev) = {
            let mut fds = Vec::with_capacity(2 + conns.len());
            fds.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            for c in &conns {
                let mut ev = PollFlags::empty();
                if c.read_open {
                    ev |= PollFlags::POLLIN;
                }
                if !c.out.is_empty() {
                    ev |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(c.stream.as_fd(), ev));
            }
            if let Err(e) = poll(&mut fds, poll_timeout(next_due)) {
                match poll_err(e) {
                    Some(m) => break Err(m),
                    None => continue,
                }
            }
            let ev: Vec<PollFlags> =
                fds[2..].iter().map(|f| f.revents().unwrap_or(PollFlags::empty())).collect();
            (fds[0].revents(), fds[1].revents(), ev)
        };
        if woken(wake_ev) {
            break Ok(());
        }
        // Existing connections (in the order polled; new ones come after).
        for (c, ev) in conns.iter_mut().zip(conn_ev) {
            if ev.is_empty() {
                continue;
            }
            if c.read_open
                && ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            {
                read_conn(spec, c, &mut buf, close_after, delay, records);
            }
            if c.done.is_none() && !c.out.is_empty() {
                write_conn(c, records);
            }
        }
        // New connections.
        if listen_ev.is_some_and(|f| f.contains(PollFlags::POLLIN)) {
            loop {
                match listener.accept() {
                    Ok((stream, remote)) => {
                        if let Some(c) = accept(spec, stream, remote, delay, records) {
                            conns.push(c);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // ECONNABORTED and friends: that connection is gone, the listener is not;
                    // EMFILE: try again on the next round.
                    Err(_) => break,
                }
            }
        }
        // Send what is due now without another round through poll.
        for c in &mut conns {
            if c.done.is_none() && !c.out.is_empty() {
                write_conn(c, records);
            }
        }
        // Closes.
        for c in &mut conns {
            finish(spec, c, records);
        }
        conns.retain_mut(|c| match c.done.take() {
            Some(how) => {
                if let Some(r) = lock(records).get_mut(c.rec)
                    && r.closed.is_none()
                {
                    r.closed = Some(how);
                }
                false
            }
            None => true,
        });
    };
    let mut recs = lock(records);
    for c in &conns {
        if let Some(r) = recs.get_mut(c.rec)
            && r.closed.is_none()
        {
            r.closed = Some(Closed::Stopped);
        }
    }
    drop(recs);
    drop(conns); // closes them
    result
}

fn accept(
    spec: &PeerSpec,
    stream: TcpStream,
    remote: SocketAddr,
    delay: Duration,
    records: &Records,
) -> Option<Conn> {
    if stream.set_nonblocking(true).is_err() {
        return None;
    }
    let _ = stream.set_nodelay(true);
    let rec = {
        let mut recs = lock(records);
        recs.push(ConnRecord::new(remote));
        recs.len() - 1
    };
    let mut c = Conn {
        stream,
        rec,
        queue: VecDeque::new(),
        out: Vec::new(),
        read_open: true,
        remote_eof: false,
        received: 0,
        close_after_reached: false,
        write_shut: false,
        done: None,
    };
    if let PeerSpec::TcpSource { bytes, .. } = spec {
        c.queue.push_back((Instant::now() + delay, pattern(*bytes)));
    }
    Some(c)
}

fn read_conn(
    spec: &PeerSpec,
    c: &mut Conn,
    buf: &mut [u8],
    close_after: Option<u64>,
    delay: Duration,
    records: &Records,
) {
    loop {
        let room = match close_after {
            Some(limit) => usize::try_from(limit.saturating_sub(c.received)).unwrap_or(usize::MAX),
            None => usize::MAX,
        }
        .min(buf.len());
        if room == 0 {
            c.read_open = false;
            c.close_after_reached = true;
            return;
        }
        match c.stream.read(&mut buf[..room]) {
            Ok(0) => {
                c.read_open = false;
                c.remote_eof = true;
                return;
            }
            Ok(n) => {
                let data = &buf[..n];
                c.received += n as u64;
                if let Some(r) = lock(records).get_mut(c.rec) {
                    r.received.extend_from_slice(data);
                }
                if matches!(spec, PeerSpec::TcpEcho { .. }) {
                    if delay.is_zero() && c.queue.is_empty() {
                        c.out.extend_from_slice(data);
                    } else {
                        c.queue.push_back((Instant::now() + delay, data.to_vec()));
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                c.read_open = false;
                c.done = Some(Closed::Error(format!("read: {e}")));
                return;
            }
        }
    }
}

fn write_conn(c: &mut Conn, records: &Records) {
    // The record is locked across the write: whoever saw the bytes arrive and then reads
    // the records finds them in `sent`.
    let mut recs = lock(records);
    while !c.out.is_empty() {
        match c.stream.write(&c.out) {
            Ok(0) => {
                c.done = Some(Closed::Error("write: wrote nothing".into()));
                return;
            }
            Ok(n) => {
                if let Some(r) = recs.get_mut(c.rec) {
                    r.sent.extend_from_slice(&c.out[..n]);
                }
                c.out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                c.done = Some(Closed::Error(format!("write: {e}")));
                return;
            }
        }
    }
}

/// Decides whether a connection ends now (sets `done`) or half-closes.
fn finish(spec: &PeerSpec, c: &mut Conn, records: &Records) {
    if c.done.is_some() || c.pending() {
        return;
    }
    if c.close_after_reached {
        // Recorded before the other side can see the close.
        if let Some(r) = lock(records).get_mut(c.rec) {
            r.closed = Some(Closed::CloseAfter);
        }
        // FIN after what was sent; dropping it with unread bytes waiting resets it.
        let _ = c.stream.shutdown(Shutdown::Write);
        c.done = Some(Closed::CloseAfter);
        return;
    }
    if let PeerSpec::TcpSource { keep_open, .. } = spec
        && !keep_open
        && !c.write_shut
    {
        // Everything sent: FIN; go on reading (recording) until the other side closes.
        let _ = c.stream.shutdown(Shutdown::Write);
        c.write_shut = true;
    }
    if c.remote_eof {
        c.done = Some(if c.write_shut { Closed::SourceDone } else { Closed::ByRemote });
    }
}

fn serve_udp(
    spec: &PeerSpec,
    socket: &UdpSocket,
    wake: &UnixStream,
    records: &Records,
) -> Result<(), String> {
    let echo = matches!(spec, PeerSpec::UdpEcho { .. });
    let delay = spec.delay();
    let mut queue: VecDeque<(Instant, SocketAddr, Vec<u8>)> = VecDeque::new();
    let mut blocked = false;
    let mut buf = vec![0u8; 65536];
    loop {
        let next_due = queue.front().map(|(d, _, _)| *d);
        let (wake_ev, sock_ev) = {
            let mut ev = PollFlags::POLLIN;
            if blocked {
                ev |= PollFlags::POLLOUT;
            }
            let mut fds =
                [PollFd::new(wake.as_fd(), PollFlags::POLLIN), PollFd::new(socket.as_fd(), ev)];
            if let Err(e) = poll(&mut fds, poll_timeout(if blocked { None } else { next_due })) {
                match poll_err(e) {
                    Some(m) => return Err(m),
                    None => continue,
                }
            }
            (fds[0].revents(), fds[1].revents().unwrap_or(PollFlags::empty()))
        };
        if woken(wake_ev) {
            return Ok(());
        }
        if sock_ev.intersects(PollFlags::POLLIN | PollFlags::POLLERR) {
            loop {
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let data = &buf[..n];
                        {
                            let mut recs = lock(records);
                            let r = match recs.iter().position(|r| r.remote == from) {
                                Some(i) => &mut recs[i],
                                None => {
                                    recs.push(ConnRecord::new(from));
                                    let last = recs.len() - 1;
                                    &mut recs[last]
                                }
                            };
                            r.received.extend_from_slice(data);
                            r.datagrams += 1;
                        }
                        if echo {
                            queue.push_back((Instant::now() + delay, from, data.to_vec()));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // ICMP errors of earlier sends surface here: not the peer's problem.
                    Err(_) => break,
                }
            }
        }
        blocked = false;
        let now = Instant::now();
        while queue.front().is_some_and(|(due, _, _)| *due <= now) {
            let Some((_, to, data)) = queue.front() else { break };
            // Locked across the send, as for TCP.
            let mut recs = lock(records);
            match socket.send_to(data, to) {
                Ok(_) => {
                    if let Some(r) = recs.iter_mut().find(|r| r.remote == *to) {
                        r.sent.extend_from_slice(data);
                    }
                    queue.pop_front();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                // Unreachable sender and the like: drop that datagram.
                Err(_) => {
                    queue.pop_front();
                }
            }
        }
    }
}
