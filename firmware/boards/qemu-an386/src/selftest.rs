//! The Ethernet self-test of the `eth-selftest` image: brings up the LAN9118 with the
//! board's address, asks the lab's gateway (10.77.0.1) for its hardware address from
//! 10.77.0.100, and prints what comes back on the console, e.g.
//! `eth: arp reply from 10.77.0.1 is aa:bb:cc:dd:ee:ff`. It goes through the same
//! embassy-net `Driver` the network stack would use, so the interrupt and the wakers are
//! exercised too. Then the module starts as usual, and a task prints the link's changes
//! (`eth: link down`, `eth: link up`: the PHY's interrupt; QEMU's monitor command
//! `set_link <netdev> off|on` makes them).

use crate::hw::{self, Irq};
use crate::uart;
use alloc::format;
use core::future::poll_fn;
use core::task::Poll;
use embassy_net_driver::{Driver, LinkState, RxToken as _, TxToken as _};
use embassy_time::{Duration, Instant, with_timeout};
use lan9118::arp;

const OWN_IP: [u8; 4] = [10, 77, 0, 100];
const GATEWAY: [u8; 4] = [10, 77, 0, 1];
const ATTEMPTS: u32 = 5;

fn say(line: &str) {
    uart::write_blocking(line.as_bytes());
    uart::write_blocking(b"\r\n");
}

fn ip(a: [u8; 4]) -> alloc::string::String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

fn mac(m: [u8; 6]) -> alloc::string::String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

/// Runs the self-test; returns when a reply came or every attempt timed out.
pub async fn run(own_mac: [u8; 6]) {
    if let Err(e) = hw::ETH.init(own_mac) {
        say(&format!("eth: init failed: {e}"));
        return;
    }
    hw::unmask(Irq::Eth);
    arp_exchange(own_mac).await;
}

/// Prints every change of the link state the driver reports to embassy-net, from down
/// before the controller's `init` on.
#[embassy_executor::task]
pub async fn watch_link() {
    let mut dev = hw::ETH.device();
    let mut last = false;
    loop {
        let up = poll_fn(|cx| {
            let up = dev.link_state(cx) == LinkState::Up;
            if up == last { Poll::Pending } else { Poll::Ready(up) }
        })
        .await;
        say(if up { "eth: link up" } else { "eth: link down" });
        last = up;
    }
}

/// Asks the gateway for its address, a few times, and prints the answer.
async fn arp_exchange(own_mac: [u8; 6]) {
    let link = if hw::ETH.link_up() { "up" } else { "down" };
    say(&format!("eth: lan9118 up, mac {}, link {link}", mac(own_mac)));
    let mut dev = hw::ETH.device();
    let request = arp::request(own_mac, OWN_IP, GATEWAY);
    for attempt in 1..=ATTEMPTS {
        say(&format!("eth: arp request for {} from {} ({attempt})", ip(GATEWAY), ip(OWN_IP)));
        let sent = Instant::now();
        send(&mut dev, &request).await;
        if let Ok(reply) = with_timeout(Duration::from_secs(1), gateway_reply(&mut dev)).await {
            // Milliseconds, not the 1 s of the timeout: the controller's interrupt woke the
            // receiver.
            let ms = sent.elapsed().as_millis();
            say(&format!("eth: arp reply from {} is {} ({ms} ms)", ip(reply.ip), mac(reply.mac)));
            say(&format!("eth: {:?}", hw::ETH.with(|d| d.stats())));
            return;
        }
    }
    say(&format!("eth: no arp reply from {}", ip(GATEWAY)));
}

async fn send<D: Driver>(dev: &mut D, frame: &[u8]) {
    poll_fn(|cx| match dev.transmit(cx) {
        Some(tx) => {
            tx.consume(frame.len(), |buf| buf.copy_from_slice(frame));
            Poll::Ready(())
        }
        None => Poll::Pending,
    })
    .await
}

/// Waits for the gateway's ARP reply, skipping every other frame.
async fn gateway_reply<D: Driver>(dev: &mut D) -> arp::Reply {
    loop {
        let reply = poll_fn(|cx| match dev.receive(cx) {
            Some((rx, _)) => Poll::Ready(rx.consume(|frame| arp::parse_reply(frame))),
            None => Poll::Pending,
        })
        .await;
        if let Some(reply) = reply.filter(|r| r.ip == GATEWAY) {
            return reply;
        }
    }
}
