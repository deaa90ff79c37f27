//! The board's network: the radio on the other end of UART1 (a separate Wi-Fi chip, spoken to
//! in the radio link's line protocol, `gecko-radio-link`), the LAN9118 Ethernet controller as
//! the network device, and `gecko-net` (embassy-net, DHCP, DNS, ping, the socket pool) on top:
//! the same IP side as the simulated module's.
//!
//! [`LinkRadio`] is the [`Radio`] the IP side sees: the core's radio requests go out as lines
//! ([`ToRadio`]), the radio's answers come back ([`FromRadio`]) through [`read_radio`] and
//! become the core's events. It knows it is associated from the radio's own answers
//! (`ASSOCIATED` until `LINKLOST`, a `DISASSOC` or a reset), which is what gates the link.
//! Nothing here serves the lab: the radio's access points and faults belong to the lab
//! equipment behind the wire.

use crate::uart::Uart;
use alloc::collections::VecDeque;
use alloc::string::String;
use core::future::poll_fn;
use core::task::{Poll, Waker};
use embedded_io_async::{Read as _, Write as _};
use gecko_core::net::{Mac, NetEvent, NetRequest};
use gecko_net::{Radio, SharedRef};
use gecko_radio_link::{Decoder, FromRadio, Message as _, ToRadio};

/// The radio behind UART1, as the IP side sees it.
#[derive(Debug, Default)]
pub struct LinkRadio {
    /// Encoded lines waiting for [`write_radio`].
    out: String,
    out_waker: Option<Waker>,
    events: VecDeque<NetEvent>,
    /// The association asked for and not answered yet: attempt and BSSID.
    associating: Option<(u32, Mac)>,
    associated: Option<Mac>,
    generation: u64,
    /// Lines from the radio that were not messages (for a debugger; nothing prints them).
    pub bad_lines: u32,
}

impl LinkRadio {
    fn send(&mut self, message: &ToRadio) {
        message.encode_into(&mut self.out);
        if let Some(w) = self.out_waker.take() {
            w.wake();
        }
    }

    fn set_associated(&mut self, bssid: Option<Mac>) {
        if self.associated != bssid {
            self.associated = bssid;
            self.generation += 1;
        }
    }

    /// A message from the radio. Answers to an association the module no longer waits for
    /// (it gave up, left, or booted again since) are dropped: the radio may still be
    /// finishing it.
    pub fn received(&mut self, message: FromRadio) {
        match message {
            FromRadio::Hello { .. } => {}
            FromRadio::Associated { attempt } => {
                if let Some((waiting, bssid)) = self.associating
                    && waiting == attempt
                {
                    self.associating = None;
                    self.set_associated(Some(bssid));
                    self.events.push_back(NetEvent::Associated { attempt });
                }
            }
            FromRadio::AssociationFailed { attempt, reason } => {
                if self.associating.is_some_and(|(waiting, _)| waiting == attempt) {
                    self.associating = None;
                    self.events.push_back(NetEvent::AssociationFailed { attempt, reason });
                }
            }
            FromRadio::LinkLost => {
                if self.associated.is_some() {
                    self.set_associated(None);
                    self.events.push_back(NetEvent::LinkLost);
                }
            }
            scan @ FromRadio::ScanDone { .. } => {
                if let Some(event) = scan.into_event() {
                    self.events.push_back(event);
                }
            }
        }
    }
}

impl Radio for LinkRadio {
    fn request(&mut self, req: &NetRequest, _now_ms: u64) {
        match req {
            NetRequest::Associate { attempt, bss, .. } => {
                self.associating = Some((*attempt, bss.bssid));
            }
            NetRequest::Disassociate => {
                self.associating = None;
                self.set_associated(None);
            }
            _ => {}
        }
        if let Some(message) = ToRadio::from_request(req) {
            self.send(&message);
        }
    }

    fn reset(&mut self) {
        self.events.clear();
        self.associating = None;
        self.set_associated(None);
        // Whatever was not sent yet belongs to the previous boot.
        self.out.clear();
        self.send(&ToRadio::Reset);
    }

    fn poll(&mut self, _now_ms: u64) {}

    fn next_deadline(&self) -> Option<u64> {
        None
    }

    fn take_event(&mut self) -> Option<NetEvent> {
        self.events.pop_front()
    }

    fn associated(&self) -> Option<Mac> {
        self.associated
    }

    fn generation(&self) -> u64 {
        self.generation
    }
}

/// Writes the radio's outgoing lines to UART1 as they come; never ends.
pub async fn write_radio(mut uart: Uart, shared: &SharedRef<LinkRadio>) -> ! {
    loop {
        let lines = poll_fn(|cx| {
            let mut s = shared.borrow_mut();
            if s.radio.out.is_empty() {
                s.radio.out_waker = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(core::mem::take(&mut s.radio.out))
            }
        })
        .await;
        // UART1 has no errors (`Infallible`).
        let _ = uart.write_all(lines.as_bytes()).await;
    }
}

/// Reads the radio's lines from UART1 and hands them to [`LinkRadio`]; never ends.
pub async fn read_radio(mut uart: Uart, shared: &SharedRef<LinkRadio>) -> ! {
    let mut decoder = Decoder::<FromRadio>::new();
    let mut buf = [0u8; 256];
    loop {
        let Ok(n) = uart.read(&mut buf).await;
        let messages = decoder.feed(&buf[..n]);
        if messages.is_empty() {
            continue;
        }
        let mut s = shared.borrow_mut();
        for message in messages {
            match message {
                Ok(message) => s.radio.received(message),
                Err(_) => s.radio.bad_lines = s.radio.bad_lines.saturating_add(1),
            }
        }
        s.wake_all();
    }
}
