//! The module's IP side on embassy-net, shared by the simulated module and the boards: the
//! [`NetDriver`] the runner drives, over any radio ([`Radio`]) and any Ethernet-framed
//! network device (an `embassy_net::driver::Driver`).
//!
//! * [`Radio`]: scans and association, as the platform has them: the simulated radio
//!   in-process (`gecko-sim`), a radio chip behind a wire (the emulated board), or the SoC's
//!   own Wi-Fi (ESP32-C6).
//! * [`Shared`]: the state the driver, the stack's device, the job loops and the platform
//!   share (one executor, so a `RefCell`).
//! * [`GatedLink`]: the network device as the stack sees it: link up only while the radio is
//!   associated, frames dropped both ways otherwise (and whenever [`Radio::frame_passes`]
//!   says so), Ethernet address = the module's MAC.
//! * [`StackNet`]: the [`NetDriver`]: radio requests go to the radio, IP configuration to
//!   the stack, DNS queries and pings to job loops ([`run_jobs`]), socket requests to the
//!   socket pool ([`sockets`]: TCP and UDP, run by [`run_jobs`] too).
//!
//! The platform never times a request out on the core's behalf: DNS queries and pings have
//! a generous cap of their own only so that a lost answer does not hold a job loop forever.
//!
//! No I/O and no clock of its own beyond `embassy-time` (the platform's driver): the same
//! code runs on Linux over a TAP device and on a board over its Ethernet controller.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod frames;
pub mod sockets;

pub use frames::is_dhcp;

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::task::{Poll, Waker};
use embassy_futures::join::join4;
use embassy_futures::select::select3;
use embassy_net::driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};
use embassy_net::{ConfigV4, DhcpConfig, IpAddress, Ipv4Address, Ipv4Cidr, Stack, StaticConfigV4};
use embassy_time::{Duration, Timer, WithTimeout};
use gecko_core::net::{Ipv4, Ipv4Config, Mac, NetEvent, NetRequest};
use gecko_core::platform::NetDriver;

/// The DHCP client's host name (option 12) unless the platform names its own
/// ([`StackNet::with_dhcp_hostname`]).
pub const DHCP_HOSTNAME: &str = "gecko-sim";

/// Socket-set entries the stack needs (`embassy_net::StackResources::<STACK_SOCKETS>`):
/// DHCP, two DNS loops and ping share 8, plus the pool's.
pub const STACK_SOCKETS: usize = 8 + sockets::STACK_SOCKETS;

/// How long a DNS query or ping may hold a job loop (the core gives up far earlier).
const JOB_CAP: Duration = Duration::from_secs(30);

/// The radio as the IP side sees it: the core's radio requests in
/// ([`NetRequest::Scan`], [`NetRequest::Associate`], [`NetRequest::Disassociate`]), its
/// events out, and whether frames may pass. Sans-IO: time is handed in; a radio that talks
/// to hardware queues its work and hands over its answers through [`Radio::take_event`]
/// (and calls [`Shared::wake_all`] when one arrives).
pub trait Radio {
    /// Starts a radio request (other requests are not given to the radio).
    fn request(&mut self, req: &NetRequest, now_ms: u64);
    /// The core is booted again: leave the network, forget every pending request.
    fn reset(&mut self);
    /// Releases answers that are due at `now_ms`.
    fn poll(&mut self, now_ms: u64);
    /// When [`Radio::poll`] next has something to release.
    fn next_deadline(&self) -> Option<u64>;
    /// The next event for the core.
    fn take_event(&mut self) -> Option<NetEvent>;
    /// The access point the module is associated with.
    fn associated(&self) -> Option<Mac>;
    /// Bumped on every change of the association: a connection opened before a change
    /// ends with it.
    fn generation(&self) -> u64;
    /// Whether a frame (either way) passes now: by default, while associated. The simulated
    /// radio also drops the DHCP frames of a `dhcp_silent` fault here.
    fn frame_passes(&mut self, _frame: &[u8]) -> bool {
        self.associated().is_some()
    }
    /// The driver is about to wait for the next event: a radio whose answers come from
    /// elsewhere (another task, an interrupt) wakes `waker` when one is ready, unless it
    /// calls [`Shared::wake_all`] itself. The default keeps nothing.
    fn register_waker(&mut self, _waker: &Waker) {}
}

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

/// State shared by everything on the module's network side.
#[derive(Debug)]
pub struct Shared<R> {
    pub radio: R,
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
pub type SharedRef<R> = Rc<RefCell<Shared<R>>>;

impl<R> Shared<R> {
    pub fn new_ref(radio: R) -> SharedRef<R> {
        Rc::new(RefCell::new(Self {
            radio,
            events: VecDeque::new(),
            dhcp_attempt: None,
            dns_jobs: VecDeque::new(),
            dns_epoch: 0,
            ping_jobs: VecDeque::new(),
            ping_epoch: 0,
            core: Notify::default(),
            jobs_waker: Vec::new(),
            stack_waker: None,
            sockets: sockets::Pool::default(),
        }))
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
}

fn now_ms() -> u64 {
    embassy_time::Instant::now().as_millis()
}

/// A network device behind the radio: frames pass (both ways) only while
/// [`Radio::frame_passes`] says so, and the link is up only while the radio is associated
/// (so DHCP starts on association and a lost link takes the address with it).
pub struct GatedLink<D, R> {
    inner: D,
    shared: SharedRef<R>,
    mac: Mac,
}

impl<D, R> core::fmt::Debug for GatedLink<D, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GatedLink").field("mac", &self.mac).finish_non_exhaustive()
    }
}

impl<D: Driver, R: Radio> GatedLink<D, R> {
    /// `inner` must already send from `mac` (the module's address, which the stack uses).
    pub fn new(inner: D, shared: SharedRef<R>, mac: Mac) -> Self {
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
pub struct GatedRx(Vec<u8>);

impl RxToken for GatedRx {
    fn consume<T, F>(mut self, f: F) -> T
    where
        F: FnOnce(&mut [u8]) -> T,
    {
        f(&mut self.0)
    }
}

/// A frame to send, if it passes.
pub struct GatedTx<'a, T, R> {
    inner: T,
    shared: &'a SharedRef<R>,
}

impl<T, R> core::fmt::Debug for GatedTx<'_, T, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GatedTx").finish_non_exhaustive()
    }
}

impl<T: TxToken, R: Radio> TxToken for GatedTx<'_, T, R> {
    fn consume<U, F>(self, len: usize, f: F) -> U
    where
        F: FnOnce(&mut [u8]) -> U,
    {
        let mut frame = alloc::vec![0u8; len];
        let r = f(&mut frame);
        if self.shared.borrow_mut().radio.frame_passes(&frame) {
            self.inner.consume(len, |buf| buf.copy_from_slice(&frame));
        }
        r
    }
}

impl<D: Driver, R: Radio> Driver for GatedLink<D, R> {
    type RxToken<'a>
        = GatedRx
    where
        Self: 'a;
    type TxToken<'a>
        = GatedTx<'a, D::TxToken<'a>, R>
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
            if self.shared.borrow_mut().radio.frame_passes(&frame) {
                break frame;
            }
        };
        let tx = self.inner.transmit(cx)?;
        Some((GatedRx(frame), GatedTx { inner: tx, shared: &self.shared }))
    }

    fn transmit(&mut self, cx: &mut core::task::Context) -> Option<Self::TxToken<'_>> {
        self.register(cx.waker());
        let tx = self.inner.transmit(cx)?;
        Some(GatedTx { inner: tx, shared: &self.shared })
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

/// The module's [`NetDriver`]: the radio, and the stack when the platform has a network
/// device (without one, IP requests go unanswered and the core's timers end them).
pub struct StackNet<'d, R> {
    shared: SharedRef<R>,
    stack: Option<Stack<'d>>,
    hostname: &'static str,
}

impl<R> core::fmt::Debug for StackNet<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StackNet").field("stack", &self.stack.is_some()).finish_non_exhaustive()
    }
}

impl<'d, R: Radio> StackNet<'d, R> {
    pub fn new(shared: SharedRef<R>, stack: Option<Stack<'d>>) -> Self {
        Self { shared, stack, hostname: DHCP_HOSTNAME }
    }

    /// The host name the DHCP client sends (at most 32 bytes; a longer one is not sent).
    pub fn with_dhcp_hostname(mut self, hostname: &'static str) -> Self {
        self.hostname = hostname;
        self
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

impl<R: Radio> NetDriver for StackNet<'_, R> {
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
                dhcp.hostname = self.hostname.try_into().ok();
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
                    s.radio.register_waker(cx.waker());
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
pub(crate) async fn wait_for<T, R>(
    shared: &SharedRef<R>,
    mut take: impl FnMut(&mut Shared<R>) -> Option<T>,
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

fn answer<R>(shared: &SharedRef<R>, event: NetEvent) {
    let mut s = shared.borrow_mut();
    s.events.push_back(event);
    s.core.notify();
}

async fn dns_loop<R>(stack: Stack<'_>, shared: &SharedRef<R>) -> ! {
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
    let mut request = alloc::vec![0u8; echo.buffer_len()];
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

async fn ping_loop<R: Radio>(stack: Stack<'_>, shared: &SharedRef<R>) -> ! {
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
pub async fn run_jobs<R: Radio>(stack: Stack<'_>, shared: &SharedRef<R>) -> ! {
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

    #[test]
    fn netmask_to_prefix() {
        assert_eq!(prefix_len([255, 255, 255, 0]), 24);
        assert_eq!(prefix_len([255, 255, 0, 0]), 16);
        assert_eq!(prefix_len([0, 0, 0, 0]), 0);
    }
}
