//! The simulated module's network: the [`Radio`], and embassy-net on a TAP device whose
//! frames pass only while the radio says the module is associated.
//!
//! * [`Shared`]: the state the driver, the stack's device, the job loops and the lab channel
//!   share (one executor thread, so a `RefCell`).
//! * [`LabLink`]: the TAP device as the stack sees it: link up only while associated,
//!   frames dropped both ways otherwise, DHCP frames dropped while a `dhcp_silent` fault is
//!   armed, Ethernet address = the module's MAC.
//! * [`SimNet`]: the [`NetDriver`] the runner drives: radio requests go to the radio,
//!   IP configuration to the stack, DNS queries and pings to job loops ([`run_jobs`]),
//!   socket requests to the socket pool ([`sockets`]: TCP and UDP, run by [`run_jobs`] too).
//!
//! The platform never times a request out on the core's behalf: DNS queries and pings have
//! a generous cap of their own only so that a lost answer does not hold a job loop forever.

#[path = "sockets.rs"]
pub mod sockets;

use super::radio::Radio;
use core::cell::RefCell;
use core::future::poll_fn;
use core::task::{Poll, Waker};
use embassy_futures::join::join4;
use embassy_futures::select::select3;
use embassy_net::driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};
use embassy_net::{ConfigV4, DhcpConfig, IpAddress, Ipv4Address, Ipv4Cidr, Stack, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{Duration, Timer, WithTimeout};
use gecko_core::net::{Ipv4, Ipv4Config, NetEvent, NetRequest};
use gecko_core::platform::NetDriver;
use std::collections::VecDeque;
use std::rc::Rc;
use std::string::String;
use std::vec::Vec;

/// The DHCP client's host name (option 12).
pub const DHCP_HOSTNAME: &str = "gecko-sim";

/// Socket-set entries the stack needs (`embassy_net::StackResources::<STACK_SOCKETS>`):
/// DHCP, two DNS loops and ping share 8 (as before the socket pool), plus the pool's.
pub const STACK_SOCKETS: usize = 8 + sockets::STACK_SOCKETS;

/// How long a DNS query or ping may hold a job loop (the core gives up far earlier).
const JOB_CAP: Duration = Duration::from_secs(30);

/// A wake-up flag with one waiter.
#[derive(Debug, Default)]
struct Notify {
    notified: bool,
    waker: Option<Waker>,
}

impl Notify {
    fn notify(&mut self) {
        self.notified = true;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// State shared by everything on the simulated module's network side.
#[derive(Debug, Default)]
pub struct Shared {
    pub radio: Radio,
    /// IP events for the core (radio events wait in the radio).
    events: VecDeque<NetEvent>,
    /// The DHCP attempt waiting for a lease.
    dhcp_attempt: Option<u32>,
    dns_jobs: VecDeque<(u32, String)>,
    /// Bumped by a reset: a query in flight from before it is cancelled, so it does not go on
    /// (with its ARP requests) into the next boot.
    dns_epoch: u64,
    ping_jobs: VecDeque<(u32, Ipv4)>,
    /// Bumped by a reset: the ping in flight from before it is cancelled.
    ping_epoch: u64,
    core: Notify,
    jobs_waker: Vec<Waker>,
    /// The stack runner's waker (registered through [`LabLink`]).
    stack_waker: Option<Waker>,
    /// The TCP and UDP sockets.
    pub sockets: sockets::Pool,
}

/// The shared state, as handed around.
pub type SharedRef = Rc<RefCell<Shared>>;

impl Shared {
    pub fn new_ref() -> SharedRef {
        Rc::new(RefCell::new(Self::default()))
    }

    /// Something changed (radio, configuration, jobs): let every waiter look again.
    pub fn wake_all(&mut self) {
        self.core.notify();
        for w in self.jobs_waker.drain(..) {
            w.wake();
        }
        if let Some(w) = self.stack_waker.take() {
            w.wake();
        }
    }

    /// Registers a job loop's (or socket slot's) waker for [`Self::wake_all`], once.
    fn register_job_waker(&mut self, waker: &Waker) {
        if !self.jobs_waker.iter().any(|w| w.will_wake(waker)) {
            self.jobs_waker.push(waker.clone());
        }
    }

    /// Whether a frame may pass now (and fires `dhcp_silent` on DHCP frames).
    fn frame_passes(&mut self, frame: &[u8]) -> bool {
        if self.radio.associated().is_none() {
            return false;
        }
        !(is_dhcp(frame) && self.radio.drop_dhcp_frame())
    }
}

fn now_ms() -> u64 {
    embassy_time::Instant::now().as_millis()
}

/// Ethernet + IPv4 + UDP to or from port 67/68.
pub fn is_dhcp(frame: &[u8]) -> bool {
    if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] {
        return false;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ip[9] != 17 || ip.len() < ihl + 8 {
        return false;
    }
    let udp = &ip[ihl..];
    let src = u16::from_be_bytes([udp[0], udp[1]]);
    let dst = u16::from_be_bytes([udp[2], udp[3]]);
    matches!((src, dst), (68, 67) | (67, 68) | (67, 67))
}

/// The TAP device behind the simulated radio.
pub struct LabLink {
    inner: TunTapDevice,
    shared: SharedRef,
    mac: [u8; 6],
}

impl core::fmt::Debug for LabLink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LabLink").field("mac", &self.mac).finish_non_exhaustive()
    }
}

impl LabLink {
    pub fn new(mut inner: TunTapDevice, shared: SharedRef, mac: [u8; 6]) -> Self {
        inner.set_hardware_address(mac);
        Self { inner, shared, mac }
    }

    fn register(&self, waker: &Waker) {
        let mut s = self.shared.borrow_mut();
        match &s.stack_waker {
            Some(w) if w.will_wake(waker) => {}
            _ => s.stack_waker = Some(waker.clone()),
        }
    }
}

/// A received frame that passed.
#[derive(Debug)]
pub struct LabRx(Vec<u8>);

impl RxToken for LabRx {
    fn consume<R, F>(mut self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        f(&mut self.0)
    }
}

/// A frame to send, if it passes.
pub struct LabTx<'a, T> {
    inner: T,
    shared: &'a SharedRef,
}

impl<T> core::fmt::Debug for LabTx<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LabTx").finish_non_exhaustive()
    }
}

impl<T: TxToken> TxToken for LabTx<'_, T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = std::vec![0u8; len];
        let r = f(&mut frame);
        if self.shared.borrow_mut().frame_passes(&frame) {
            self.inner.consume(len, |buf| buf.copy_from_slice(&frame));
        }
        r
    }
}

impl Driver for LabLink {
    type RxToken<'a>
        = LabRx
    where
        Self: 'a;
    type TxToken<'a>
        = LabTx<'a, <TunTapDevice as Driver>::TxToken<'a>>
    where
        Self: 'a;

    fn receive(
        &mut self,
        cx: &mut core::task::Context,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.register(cx.waker());
        let frame = loop {
            let (rx, _tx) = self.inner.receive(cx)?;
            let frame = rx.consume(|b| b.to_vec());
            if self.shared.borrow_mut().frame_passes(&frame) {
                break frame;
            }
        };
        let tx = self.inner.transmit(cx)?;
        Some((LabRx(frame), LabTx { inner: tx, shared: &self.shared }))
    }

    fn transmit(&mut self, cx: &mut core::task::Context) -> Option<Self::TxToken<'_>> {
        self.register(cx.waker());
        let tx = self.inner.transmit(cx)?;
        Some(LabTx { inner: tx, shared: &self.shared })
    }

    fn link_state(&mut self, cx: &mut core::task::Context) -> LinkState {
        self.register(cx.waker());
        if self.shared.borrow().radio.associated().is_some() {
            self.inner.link_state(cx)
        } else {
            LinkState::Down
        }
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

/// The lease or static configuration the stack has, in the core's terms.
pub fn ipv4_config(config: &StaticConfigV4) -> Ipv4Config {
    Ipv4Config {
        address: config.address.address().octets(),
        netmask: config.address.netmask().octets(),
        gateway: config.gateway.map_or([0; 4], |g| g.octets()),
        dns: config.dns_servers.iter().map(|d| d.octets()).collect(),
    }
}

fn prefix_len(netmask: Ipv4) -> u8 {
    u8::try_from(u32::from_be_bytes(netmask).leading_ones()).unwrap_or(32)
}

/// The simulated module's [`NetDriver`]: the radio, and the stack when there is a TAP.
pub struct SimNet<'d> {
    shared: SharedRef,
    stack: Option<Stack<'d>>,
}

impl core::fmt::Debug for SimNet<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimNet").field("stack", &self.stack.is_some()).finish_non_exhaustive()
    }
}

impl<'d> SimNet<'d> {
    pub fn new(shared: SharedRef, stack: Option<Stack<'d>>) -> Self {
        Self { shared, stack }
    }

    /// Queues an immediate answer for the core.
    fn answer_now(&self, event: Option<NetEvent>) {
        if let Some(event) = event {
            self.shared.borrow_mut().events.push_back(event);
        }
    }

    fn set_config(&self, config: ConfigV4) {
        if let Some(stack) = self.stack {
            stack.set_config_v4(config);
        }
    }

    /// The next event if one is ready (releases held-back radio answers that are due).
    fn ready_event(&self) -> Option<NetEvent> {
        let mut s = self.shared.borrow_mut();
        s.radio.poll(now_ms());
        if let Some(e) = s.radio.take_event() {
            return Some(e);
        }
        if let Some(e) = s.events.pop_front() {
            return Some(e);
        }
        if let (Some(attempt), Some(stack)) = (s.dhcp_attempt, self.stack)
            && let Some(config) = stack.config_v4()
        {
            s.dhcp_attempt = None;
            return Some(NetEvent::DhcpBound { attempt, config: ipv4_config(&config) });
        }
        None
    }
}

impl NetDriver for SimNet<'_> {
    fn request(&mut self, req: NetRequest) {
        match &req {
            NetRequest::Scan { .. } | NetRequest::Associate { .. } => {
                self.shared.borrow_mut().radio.request(&req, now_ms());
            }
            NetRequest::Disassociate => {
                let mut s = self.shared.borrow_mut();
                s.radio.request(&req, now_ms());
                s.sockets.abort_all();
            }
            NetRequest::StartDhcp { attempt } => {
                let mut dhcp = DhcpConfig::default();
                dhcp.hostname = DHCP_HOSTNAME.try_into().ok();
                self.set_config(ConfigV4::Dhcp(dhcp));
                self.shared.borrow_mut().dhcp_attempt = Some(*attempt);
            }
            NetRequest::StaticIp(c) => {
                self.shared.borrow_mut().dhcp_attempt = None;
                let address = Ipv4Cidr::new(Ipv4Address::from(c.address), prefix_len(c.netmask));
                let gateway = (c.gateway != [0; 4]).then(|| Ipv4Address::from(c.gateway));
                let dns_servers = c.dns.iter().take(3).map(|d| Ipv4Address::from(*d)).collect();
                self.set_config(ConfigV4::Static(StaticConfigV4 { address, gateway, dns_servers }));
            }
            NetRequest::IpDown => {
                let mut s = self.shared.borrow_mut();
                s.dhcp_attempt = None;
                s.sockets.abort_all();
                drop(s);
                self.set_config(ConfigV4::None);
            }
            NetRequest::Resolve { id, name } => {
                if self.stack.is_some() {
                    self.shared.borrow_mut().dns_jobs.push_back((*id, name.clone()));
                }
            }
            NetRequest::Ping { id, to } => {
                if self.stack.is_some() {
                    self.shared.borrow_mut().ping_jobs.push_back((*id, *to));
                }
            }
            NetRequest::TcpConnect { conn, to, port, local_port } => {
                let a =
                    self.shared.borrow_mut().sockets.tcp_connect(conn.0, *to, *port, *local_port);
                self.answer_now(a);
            }
            NetRequest::TcpListen { listener, port } => {
                let a = self.shared.borrow_mut().sockets.tcp_listen(listener.0, *port);
                self.answer_now(a);
            }
            NetRequest::TcpUnlisten { listener } => {
                self.shared.borrow_mut().sockets.tcp_unlisten(listener.0);
            }
            NetRequest::UdpOpen { conn, local_port } => {
                let a = self.shared.borrow_mut().sockets.udp_open(conn.0, *local_port);
                self.answer_now(a);
            }
            NetRequest::Send { .. } => {
                let NetRequest::Send { conn, data, to } = req else { unreachable!() };
                let a = self.shared.borrow_mut().sockets.send(conn.0, data, to);
                self.answer_now(a);
                self.shared.borrow_mut().wake_all();
                return;
            }
            NetRequest::Close { conn } => {
                let a = self.shared.borrow_mut().sockets.close(conn.0);
                self.answer_now(a);
            }
            NetRequest::Flow { conn, accept } => {
                self.shared.borrow_mut().sockets.flow(conn.0, *accept);
            }
        }
        self.shared.borrow_mut().wake_all();
    }

    async fn next_event(&mut self) -> NetEvent {
        loop {
            self.shared.borrow_mut().core.notified = false;
            if let Some(event) = self.ready_event() {
                return event;
            }
            let (deadline, dhcp) = {
                let s = self.shared.borrow();
                (s.radio.next_deadline(), s.dhcp_attempt.is_some())
            };
            let timer = async move {
                match deadline {
                    Some(ms) => Timer::at(embassy_time::Instant::from_millis(ms)).await,
                    None => core::future::pending().await,
                }
            };
            let woken = poll_fn(|cx| {
                let mut s = self.shared.borrow_mut();
                if s.core.notified {
                    Poll::Ready(())
                } else {
                    s.core.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            });
            let stack = self.stack;
            let lease = async move {
                match stack {
                    Some(stack) if dhcp => stack.wait_config_up().await,
                    _ => core::future::pending().await,
                }
            };
            select3(timer, woken, lease).await;
        }
    }

    fn reset(&mut self) {
        {
            let mut s = self.shared.borrow_mut();
            s.radio.reset();
            s.events.clear();
            s.dhcp_attempt = None;
            s.dns_jobs.clear();
            s.dns_epoch += 1;
            s.ping_jobs.clear();
            s.ping_epoch += 1;
            s.sockets.reset();
        }
        self.set_config(ConfigV4::None);
        self.shared.borrow_mut().wake_all();
    }
}

/// Waits until `take` finds something (a job, a stop, a command): re-checked whenever the
/// shared state is poked.
pub(super) async fn wait_for<T>(
    shared: &SharedRef,
    mut take: impl FnMut(&mut Shared) -> Option<T>,
) -> T {
    poll_fn(|cx| {
        let mut s = shared.borrow_mut();
        match take(&mut s) {
            Some(job) => Poll::Ready(job),
            None => {
                s.register_job_waker(cx.waker());
                Poll::Pending
            }
        }
    })
    .await
}

fn answer(shared: &SharedRef, event: NetEvent) {
    let mut s = shared.borrow_mut();
    s.events.push_back(event);
    s.core.notify();
}

async fn dns_loop(stack: Stack<'_>, shared: &SharedRef) -> ! {
    loop {
        let (id, name) = wait_for(shared, |s| s.dns_jobs.pop_front()).await;
        let epoch = shared.borrow().dns_epoch;
        let query = stack.dns_query(&name, embassy_net::dns::DnsQueryType::A);
        let reset = wait_for(shared, move |s| (s.dns_epoch != epoch).then_some(()));
        // Dropping the query future cancels the query in the stack.
        let result = match embassy_futures::select::select(query.with_timeout(JOB_CAP), reset).await
        {
            embassy_futures::select::Either::First(result) => result,
            embassy_futures::select::Either::Second(()) => continue,
        };
        match result {
            Ok(Ok(addresses)) => {
                let address = addresses.iter().map(|a| match a {
                    IpAddress::Ipv4(v4) => v4.octets(),
                });
                answer(shared, NetEvent::Resolved { id, address: address.into_iter().next() });
            }
            Ok(Err(_)) => answer(shared, NetEvent::Resolved { id, address: None }),
            Err(_) => {}
        }
    }
}

/// How long an echo request may wait in its socket before it is queued again on a fresh one.
///
/// smoltcp rate-limits ARP for the whole interface: for a second after any ARP request, a
/// packet to an address missing from the neighbour cache sends no request, and its socket
/// is then kept silent for a second of its own, counted from that attempt. The interface's
/// window outlives a boot of the core (the stack lives on, and a new address flushes the
/// cache but not the window), so a ping right after a reboot that followed traffic (a
/// connection the module accepted, say) would leave only after the core's ping timeout. A
/// fresh socket has no silence of its own: its request (and ARP) leaves as soon as the
/// interface's window is over.
const ECHO_REQUEUE: Duration = Duration::from_millis(25);

/// The echo request's payload.
const ECHO_PAYLOAD: &[u8] = b"gecko-sim ping";

/// One echo request to `to` and its reply: the round trip from the moment the request left,
/// queued again every [`ECHO_REQUEUE`] until it does (`None` if no reply came within
/// [`JOB_CAP`]). Replies are waited for with a registered waker, not by polling.
async fn ping_once(
    stack: Stack<'_>,
    bufs: &mut PingBuffers,
    ident: u16,
    to: Ipv4,
) -> Option<Duration> {
    use embassy_net::icmp::{
        ChecksumCapabilities, IcmpEndpoint, IcmpSocket, Icmpv4Packet, Icmpv4Repr,
    };
    let echo = Icmpv4Repr::EchoRequest { ident, seq_no: 0, data: ECHO_PAYLOAD };
    let mut request = std::vec![0u8; echo.buffer_len()];
    echo.emit(&mut Icmpv4Packet::new_unchecked(&mut request[..]), &ChecksumCapabilities::default());
    let target = IpAddress::Ipv4(Ipv4Address::from(to));
    let cap = embassy_time::Instant::now() + JOB_CAP;
    loop {
        let mut sock = IcmpSocket::new(
            stack,
            &mut bufs.rx_meta,
            &mut bufs.rx,
            &mut bufs.tx_meta,
            &mut bufs.tx,
        );
        sock.bind(IcmpEndpoint::Ident(ident)).ok()?;
        sock.send_to(&request, target).await.ok()?;
        let left = embassy_futures::select::select(sock.flush(), Timer::after(ECHO_REQUEUE)).await;
        if let embassy_futures::select::Either::Second(()) = left {
            if embassy_time::Instant::now() >= cap {
                return None;
            }
            // Dropping the socket drops the request that did not leave.
            continue;
        }
        let sent = embassy_time::Instant::now();
        let reply = async {
            let mut buf = [0u8; 64];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else { continue };
                let packet = Icmpv4Packet::new_unchecked(&buf[..n]);
                let parsed = Icmpv4Repr::parse(&packet, &ChecksumCapabilities::default());
                if from == target
                    && matches!(parsed, Ok(Icmpv4Repr::EchoReply { ident: i, seq_no: 0, .. }) if i == ident)
                {
                    return sent.elapsed();
                }
            }
        };
        return reply.with_deadline(cap).await.ok();
    }
}

/// The ping job loop's socket buffers (one echo request and its reply at a time).
struct PingBuffers {
    rx_meta: [embassy_net::icmp::PacketMetadata; 1],
    tx_meta: [embassy_net::icmp::PacketMetadata; 1],
    rx: [u8; 256],
    tx: [u8; 256],
}

async fn ping_loop(stack: Stack<'_>, shared: &SharedRef) -> ! {
    use embassy_net::icmp::PacketMetadata;
    let mut bufs = PingBuffers {
        rx_meta: [PacketMetadata::EMPTY],
        tx_meta: [PacketMetadata::EMPTY],
        rx: [0; 256],
        tx: [0; 256],
    };
    let mut ident: u16 = 0;
    loop {
        let (id, to) = wait_for(shared, |s| s.ping_jobs.pop_front()).await;
        ident = ident.wrapping_add(1);
        let epoch = shared.borrow().ping_epoch;
        let reset = wait_for(shared, move |s| (s.ping_epoch != epoch).then_some(()));
        // A reset cancels the ping in flight: the next boot's pings do not wait behind it.
        let ping = ping_once(stack, &mut bufs, ident, to);
        let res = embassy_futures::select::select(ping, reset).await;
        if let embassy_futures::select::Either::First(Some(rtt)) = res {
            let rtt_ms = u32::try_from(rtt.as_millis()).unwrap_or(u32::MAX);
            answer(shared, NetEvent::PingReply { id, rtt_ms });
        }
    }
}

/// Runs the DNS and ping job loops (two DNS queries at a time, one ping) and the socket
/// pool ([`sockets::run`]).
pub async fn run_jobs(stack: Stack<'_>, shared: &SharedRef) -> ! {
    join4(
        dns_loop(stack, shared),
        dns_loop(stack, shared),
        ping_loop(stack, shared),
        sockets::run(stack, shared),
    )
    .await;
    unreachable!("the job loops never end")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(proto: u8, src: u16, dst: u16) -> Vec<u8> {
        let mut f = std::vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = proto;
        f[34..36].copy_from_slice(&src.to_be_bytes());
        f[36..38].copy_from_slice(&dst.to_be_bytes());
        f
    }

    #[test]
    fn dhcp_frames_are_recognised() {
        assert!(is_dhcp(&frame(17, 68, 67)));
        assert!(is_dhcp(&frame(17, 67, 68)));
        assert!(!is_dhcp(&frame(17, 53, 5353)));
        assert!(!is_dhcp(&frame(6, 68, 67)));
        assert!(!is_dhcp(&frame(17, 68, 67)[..30]));
    }

    /// Drives [`SimNet`] the way the runner does, on a real TAP in a lab namespace: no
    /// DHCP lease before association, a lease after it, DNS, ping, `dhcp_silent`, `drop_ap`.
    /// Needs root and a prepared lab (bridge 10.77.0.1/24 with dnsmasq serving
    /// 10.77.0.100-199 and `lab-host.lab` = 10.77.0.5): run inside the namespace with
    /// `GECKO_SIM_TAP=tap0 cargo test -p gecko-sim --lib -- --ignored over_a_tap`.
    #[test]
    #[ignore = "needs root and a lab namespace (GECKO_SIM_TAP)"]
    fn over_a_tap() {
        on_a_tap(120, |spawner, tap, tx| spawner.spawn(tap_task(tap, tx).expect("spawn")));
    }

    /// Where a TAP scenario sends its log (`Ok`) or what went wrong.
    pub(super) type ScenarioResult = std::sync::mpsc::Sender<Result<String, String>>;

    /// Runs a TAP scenario (a task `spawn` starts with the TAP's name and where to send its
    /// result) on an embassy executor of its own thread; panics on its error or after
    /// `timeout_s`. Skips without `GECKO_SIM_TAP`.
    pub(super) fn on_a_tap(
        timeout_s: u64,
        spawn: fn(embassy_executor::Spawner, String, ScenarioResult),
    ) {
        let Ok(tap) = std::env::var("GECKO_SIM_TAP") else {
            std::eprintln!("GECKO_SIM_TAP not set: skipped");
            return;
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let executor =
                std::boxed::Box::leak(std::boxed::Box::new(embassy_executor::Executor::new()));
            let args = std::boxed::Box::leak(std::boxed::Box::new(Some((tap, tx))));
            executor.run(move |spawner| {
                if let Some((tap, tx)) = args.take() {
                    spawn(spawner, tap, tx);
                }
            })
        });
        match rx.recv_timeout(std::time::Duration::from_secs(timeout_s)) {
            Ok(Ok(log)) => std::eprintln!("{log}"),
            Ok(Err(e)) => panic!("{e}"),
            Err(e) => panic!("no result: {e}"),
        }
    }

    #[embassy_executor::task]
    async fn tap_task(tap: String, tx: ScenarioResult) {
        let result = tap_scenario(&tap).await;
        let _ = tx.send(result);
    }

    async fn within(driver: &mut SimNet<'_>, ms: u64) -> Option<NetEvent> {
        embassy_futures::select::select(
            driver.next_event(),
            Timer::after(Duration::from_millis(ms)),
        )
        .await
        .left_or_none()
    }

    trait LeftOrNone<A> {
        fn left_or_none(self) -> Option<A>;
    }
    impl<A, B> LeftOrNone<A> for embassy_futures::select::Either<A, B> {
        fn left_or_none(self) -> Option<A> {
            match self {
                embassy_futures::select::Either::First(a) => Some(a),
                embassy_futures::select::Either::Second(_) => None,
            }
        }
    }

    async fn tap_scenario(tap: &str) -> Result<String, String> {
        use super::super::radio::{AccessPoint, FaultKind};
        use core::fmt::Write as _;
        use gecko_core::net::{Bss, Security};
        let mut log = String::new();
        let mac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x42];
        let dev = TunTapDevice::new(tap).map_err(|e| std::format!("open {tap}: {e}"))?;
        let shared = Shared::new_ref();
        let lab = [2, 0, 0, 0, 1, 1];
        shared.borrow_mut().radio.add_ap(AccessPoint {
            ssid: "lab".into(),
            bssid: lab,
            channel: 6,
            security: Security::Wpa2Aes,
            passkey: "labpass123".into(),
            rssi: -40,
            hidden: false,
        });
        let mut resources = embassy_net::StackResources::<STACK_SOCKETS>::new();
        let (stack, mut runner) = embassy_net::new(
            LabLink::new(dev, shared.clone(), mac),
            embassy_net::Config::default(),
            &mut resources,
            42,
        );
        let mut driver = SimNet::new(shared.clone(), Some(stack));
        let scenario = async {
            let t0 = embassy_time::Instant::now();
            driver.request(NetRequest::StartDhcp { attempt: 1 });
            if let Some(e) = within(&mut driver, 3000).await {
                return Err(std::format!("before association: {e:?}"));
            }
            let _ = writeln!(log, "no lease in 3 s before association (ok)");
            driver.request(NetRequest::Associate {
                attempt: 1,
                bss: Bss {
                    ssid: "lab".into(),
                    bssid: lab,
                    channel: 6,
                    rssi: -40,
                    security: Security::Wpa2Aes,
                },
                passkey: b"labpass123".to_vec(),
            });
            let e = within(&mut driver, 1000).await;
            if e != Some(NetEvent::Associated { attempt: 1 }) {
                return Err(std::format!("association: {e:?}"));
            }
            let t1 = embassy_time::Instant::now();
            let e = within(&mut driver, 10_000).await;
            let Some(NetEvent::DhcpBound { attempt: 1, config }) = e else {
                return Err(std::format!("lease: {e:?}"));
            };
            let _ = writeln!(
                log,
                "lease {:?} {} ms after association ({} ms after StartDhcp)",
                config,
                t1.elapsed().as_millis(),
                t0.elapsed().as_millis()
            );
            if config.address[..3] != [10, 77, 0]
                || config.gateway != [10, 77, 0, 1]
                || config.netmask != [255, 255, 255, 0]
            {
                return Err(std::format!("unexpected lease {config:?}"));
            }
            driver.request(NetRequest::Resolve { id: 1, name: "lab-host.lab".into() });
            let e = within(&mut driver, 5000).await;
            let _ = writeln!(log, "resolve lab-host.lab: {e:?}");
            if e != Some(NetEvent::Resolved { id: 1, address: Some([10, 77, 0, 5]) }) {
                return Err(std::format!("resolve: {e:?}"));
            }
            driver.request(NetRequest::Resolve { id: 2, name: "nowhere.lab".into() });
            let e = within(&mut driver, 5000).await;
            let _ = writeln!(log, "resolve nowhere.lab: {e:?}");
            if e != Some(NetEvent::Resolved { id: 2, address: None }) {
                return Err(std::format!("resolve nowhere: {e:?}"));
            }
            driver.request(NetRequest::Ping { id: 3, to: [10, 77, 0, 1] });
            let e = within(&mut driver, 5000).await;
            let _ = writeln!(log, "ping 10.77.0.1: {e:?}");
            if !matches!(e, Some(NetEvent::PingReply { id: 3, .. })) {
                return Err(std::format!("ping: {e:?}"));
            }
            driver.request(NetRequest::Ping { id: 4, to: [10, 77, 0, 250] });
            let e = within(&mut driver, 3000).await;
            let _ = writeln!(log, "ping 10.77.0.250 (nobody): {e:?}");
            if e.is_some() {
                return Err(std::format!("ping nobody: {e:?}"));
            }
            let fault = shared
                .borrow_mut()
                .radio
                .inject(FaultKind::DhcpSilent { count: None })
                .map_err(|e| e.0)?;
            driver.request(NetRequest::StartDhcp { attempt: 2 });
            if let Some(e) = within(&mut driver, 3000).await {
                return Err(std::format!("dhcp_silent: {e:?}"));
            }
            let fired = shared.borrow().radio.fault(fault).map(|f| f.fired);
            let _ = writeln!(log, "dhcp_silent: no lease in 3 s, fired {fired:?}");
            if fired.unwrap_or(0) == 0 {
                return Err("dhcp_silent never fired".into());
            }
            shared.borrow_mut().radio.clear_faults();
            shared.borrow_mut().wake_all();
            let e = within(&mut driver, 30_000).await;
            let _ = writeln!(log, "after clear_faults: {e:?}");
            if !matches!(e, Some(NetEvent::DhcpBound { attempt: 2, .. })) {
                return Err(std::format!("lease after clear: {e:?}"));
            }
            shared.borrow_mut().radio.inject(FaultKind::DropAp { bssid: lab }).map_err(|e| e.0)?;
            shared.borrow_mut().wake_all();
            let e = within(&mut driver, 1000).await;
            let _ = writeln!(log, "drop_ap: {e:?}");
            if e != Some(NetEvent::LinkLost) {
                return Err(std::format!("drop_ap: {e:?}"));
            }
            Timer::after(Duration::from_millis(200)).await;
            if stack.config_v4().is_some() || stack.is_link_up() {
                return Err("the stack kept its link or address after LinkLost".into());
            }
            let _ = writeln!(log, "link down and address gone after LinkLost (ok)");
            for e in shared.borrow().radio.events_since(0) {
                let _ = writeln!(log, "  radio #{} {} {}", e.seq, e.unix_ms, e.text);
            }
            Ok(core::mem::take(&mut log))
        };
        let background = embassy_futures::join::join(runner.run(), run_jobs(stack, &shared));
        match embassy_futures::select::select(scenario, background).await {
            embassy_futures::select::Either::First(r) => r,
            embassy_futures::select::Either::Second(_) => unreachable!(),
        }
    }

    #[test]
    fn netmask_to_prefix() {
        assert_eq!(prefix_len([255, 255, 255, 0]), 24);
        assert_eq!(prefix_len([255, 255, 0, 0]), 16);
        assert_eq!(prefix_len([0, 0, 0, 0]), 0);
    }
}
