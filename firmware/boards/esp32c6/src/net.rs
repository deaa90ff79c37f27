//! The board's [`NetDriver`]: the core's radio requests go to the Wi-Fi radio
//! ([`EspRadio`]), whose answers come back as the core's events. The IP stack (embassy-net
//! on the Wi-Fi station interface) runs, but IP requests (DHCP, static addresses, DNS, ping,
//! sockets) are not carried out yet: they go unanswered and the core's timers end them, as
//! on a module whose network never comes up.

use crate::radio::{EspRadio, Radio};
use embassy_futures::select::select;
use embassy_time::{Instant, Timer};
use gecko_core::net::{NetEvent, NetRequest};
use gecko_core::platform::NetDriver;

fn now_ms() -> u64 {
    Instant::now().as_millis()
}

/// The radio, and the IP stack the IP requests will go to.
pub struct BoardNet {
    radio: EspRadio,
    /// Kept for the IP requests; the stack's runner task drives it meanwhile.
    _stack: embassy_net::Stack<'static>,
}

impl core::fmt::Debug for BoardNet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BoardNet").field("radio", &self.radio).finish_non_exhaustive()
    }
}

impl BoardNet {
    pub fn new(radio: EspRadio, stack: embassy_net::Stack<'static>) -> Self {
        Self { radio, _stack: stack }
    }
}

impl NetDriver for BoardNet {
    fn request(&mut self, req: NetRequest) {
        match &req {
            NetRequest::Scan { .. } | NetRequest::Associate { .. } | NetRequest::Disassociate => {
                self.radio.request(&req, now_ms());
            }
            _ => {}
        }
    }

    async fn next_event(&mut self) -> NetEvent {
        loop {
            self.radio.poll(now_ms());
            if let Some(event) = self.radio.take_event() {
                return event;
            }
            let deadline = self.radio.next_deadline();
            let timer = async move {
                match deadline {
                    Some(ms) => Timer::at(Instant::from_millis(ms)).await,
                    None => core::future::pending().await,
                }
            };
            select(self.radio.wait_event(), timer).await;
        }
    }

    fn reset(&mut self) {
        self.radio.reset();
    }
}
