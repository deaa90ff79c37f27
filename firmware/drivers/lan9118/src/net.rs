//! The embassy-net adapter: a [`Shared`] controller that the interrupt handler and the
//! network stack's runner task both reach, and [`Device`], the `embassy_net_driver::Driver`.
//!
//! The controller lives in a `critical_section::Mutex<RefCell<_>>`; each access (one frame
//! in or out, one interrupt) is a short critical section. The interrupt handler calls
//! [`Shared::on_interrupt`], which acknowledges the controller's interrupts and wakes the
//! runner: receive on a frame's arrival, transmit when the TX FIFO has room again, the link
//! waker on a PHY event. [`Device`] registers the runner's waker before it looks at the
//! FIFOs, so a frame that arrives between the look and the return wakes it again.

use crate::{Events, InitError, Lan9118, MAX_FRAME, Registers};
use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Context;
use critical_section::Mutex;
use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

/// The controller and its wakers, to be put in a `static` the interrupt handler can reach.
pub struct Shared<R> {
    dev: Mutex<RefCell<Lan9118<R>>>,
    mac: Mutex<core::cell::Cell<[u8; 6]>>,
    link: AtomicBool,
    rx: AtomicWaker,
    tx: AtomicWaker,
    link_waker: AtomicWaker,
}

impl<R> core::fmt::Debug for Shared<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shared").field("link", &self.link.load(Ordering::Relaxed)).finish()
    }
}

impl<R: Registers> Shared<R> {
    /// Wraps the registers; nothing is touched until [`init`](Self::init).
    pub const fn new(regs: R) -> Self {
        Self {
            dev: Mutex::new(RefCell::new(Lan9118::new(regs))),
            mac: Mutex::new(core::cell::Cell::new([0; 6])),
            link: AtomicBool::new(false),
            rx: AtomicWaker::new(),
            tx: AtomicWaker::new(),
            link_waker: AtomicWaker::new(),
        }
    }

    /// Resets and sets up the controller with address `mac` ([`Lan9118::init`]), reads the
    /// link and wakes whoever watches it. Unmask the controller's interrupt line afterwards.
    pub fn init(&self, mac: [u8; 6]) -> Result<(), InitError> {
        critical_section::with(|cs| {
            let mut dev = self.dev.borrow_ref_mut(cs);
            dev.init(mac)?;
            self.mac.borrow(cs).set(mac);
            self.link.store(dev.link_up(), Ordering::Relaxed);
            Ok::<(), InitError>(())
        })?;
        // The stack may have looked at the link before: tell it to look again.
        self.link_waker.wake();
        Ok(())
    }

    /// The interrupt handler: acknowledges what fired and wakes who waits for it. Safe to
    /// call from any context (it takes a critical section).
    pub fn on_interrupt(&self) -> Events {
        let events = self.with(|dev| {
            let events = dev.on_interrupt();
            if events.link {
                self.link.store(dev.link_up(), Ordering::Relaxed);
            }
            events
        });
        if events.rx || events.rx_error {
            self.rx.wake();
        }
        if events.tx_space || events.tx_error {
            self.tx.wake();
        }
        if events.link {
            self.link_waker.wake();
        }
        events
    }

    /// Runs `f` on the controller inside a critical section.
    pub fn with<T>(&self, f: impl FnOnce(&mut Lan9118<R>) -> T) -> T {
        critical_section::with(|cs| f(&mut self.dev.borrow_ref_mut(cs)))
    }

    /// Whether the link was up at the last look (init or a PHY interrupt).
    pub fn link_up(&self) -> bool {
        self.link.load(Ordering::Relaxed)
    }

    /// The network device over this controller, for `embassy_net::new`. Call after
    /// [`init`](Self::init) (it reports the address given there). The controller has one
    /// waker per direction and one for the link: one task should receive and transmit (the
    /// stack's runner); another may only watch the link.
    pub fn device(&self) -> Device<'_, R> {
        let mac = critical_section::with(|cs| self.mac.borrow(cs).get());
        Device { shared: self, mac, rx_buf: [0; MAX_FRAME], tx_buf: [0; MAX_FRAME] }
    }
}

/// The `embassy_net_driver::Driver` over a [`Shared`] controller. It keeps one frame's
/// buffer per direction: the controller's FIFOs are read and written a word at a time, so a
/// received frame is copied out before its token is handed over, and a frame to send is
/// built in the buffer before it goes into the FIFO.
pub struct Device<'a, R> {
    shared: &'a Shared<R>,
    mac: [u8; 6],
    rx_buf: [u8; MAX_FRAME],
    tx_buf: [u8; MAX_FRAME],
}

impl<R> core::fmt::Debug for Device<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Device").field("mac", &self.mac).finish()
    }
}

/// A received frame.
#[derive(Debug)]
pub struct RxToken<'a> {
    frame: &'a mut [u8],
}

/// Room for one frame to send.
pub struct TxToken<'a, R> {
    shared: &'a Shared<R>,
    buf: &'a mut [u8; MAX_FRAME],
}

impl<R> core::fmt::Debug for TxToken<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TxToken")
    }
}

impl embassy_net_driver::RxToken for RxToken<'_> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&mut [u8]) -> T,
    {
        f(self.frame)
    }
}

impl<R: Registers> embassy_net_driver::TxToken for TxToken<'_, R> {
    fn consume<T, F>(self, len: usize, f: F) -> T
    where
        F: FnOnce(&mut [u8]) -> T,
    {
        let len = len.min(MAX_FRAME);
        let result = f(&mut self.buf[..len]);
        // The token was handed out because the FIFO had room for the largest frame, and
        // only this device transmits, so the frame fits; a refusal counts in the stats.
        let _ = self.shared.with(|dev| dev.transmit(&self.buf[..len]));
        result
    }
}

impl<R: Registers> Device<'_, R> {
    /// Whether a frame can be sent now; otherwise registers the waker and arms the TX
    /// interrupt.
    fn tx_room(&self, cx: &Context<'_>) -> bool {
        self.shared.tx.register(cx.waker());
        self.shared.with(|dev| {
            let ready = dev.tx_ready();
            if !ready {
                dev.arm_tx_interrupt();
            }
            ready
        })
    }
}

impl<R: Registers> embassy_net_driver::Driver for Device<'_, R> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, R>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        // A received frame comes with a transmit token (the stack may answer at once), so
        // take a frame only when one could be sent.
        if !self.tx_room(cx) {
            return None;
        }
        self.shared.rx.register(cx.waker());
        let len = self.shared.with(|dev| dev.receive(&mut self.rx_buf))?;
        Some((
            RxToken { frame: &mut self.rx_buf[..len] },
            TxToken { shared: self.shared, buf: &mut self.tx_buf },
        ))
    }

    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<Self::TxToken<'_>> {
        if !self.tx_room(cx) {
            return None;
        }
        Some(TxToken { shared: self.shared, buf: &mut self.tx_buf })
    }

    fn link_state(&mut self, cx: &mut Context<'_>) -> LinkState {
        self.shared.link_waker.register(cx.waker());
        if self.shared.link_up() { LinkState::Up } else { LinkState::Down }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        // An untagged frame: 14 bytes of header and 1500 of payload.
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(1);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}
