//! The CMSDK APB UARTs as `embedded_io_async::{Read, Write}`, interrupt-driven both ways:
//! UART0 is the console, UART1 the wire to the radio. The receive interrupt moves bytes from
//! the one-byte holding register into a ring buffer and wakes the reader; the transmit
//! interrupt wakes a writer that found the holding register full. Nothing polls a UART in a
//! loop.

use crate::hw::{self, Irq, UartRegs};
use core::cell::RefCell;
use core::convert::Infallible;
use core::future::poll_fn;
use core::task::Poll;
use critical_section::Mutex;
use embassy_sync::waitqueue::AtomicWaker;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const STATE_RX_OVERRUN: u32 = 1 << 3;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_TX_INT: u32 = 1 << 2;
const CTRL_RX_INT: u32 = 1 << 3;
const INT_TX: u32 = 1 << 0;
const INT_RX: u32 = 1 << 1;

/// The UART's clock: the MPS2 FPGA's 25 MHz system clock.
const PCLK_HZ: u32 = 25_000_000;
/// The baud rate (QEMU ignores it, but the divider must be valid).
const BAUD: u32 = 115_200;

/// Received bytes the reader has not taken yet. When it fills up, the receive interrupt is
/// masked and the byte stays in the UART, so QEMU holds back further input (no byte is lost).
struct Ring {
    buf: [u8; 1024],
    head: usize,
    len: usize,
}

impl Ring {
    const fn new() -> Self {
        Self { buf: [0; 1024], head: 0, len: 0 }
    }
    fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }
    fn push(&mut self, b: u8) {
        let tail = (self.head + self.len) % self.buf.len();
        self.buf[tail] = b;
        self.len += 1;
    }
    fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for slot in out.iter_mut().take(n) {
            *slot = self.buf[self.head];
            self.head = (self.head + 1) % self.buf.len();
        }
        self.len -= n;
        n
    }
}

/// One UART's registers, interrupt lines, receive ring and wakers.
pub struct Port {
    regs: UartRegs,
    irqs: (Irq, Irq),
    rx: Mutex<RefCell<Ring>>,
    rx_waker: AtomicWaker,
    tx_waker: AtomicWaker,
}

impl Port {
    const fn new(regs: UartRegs, rx_irq: Irq, tx_irq: Irq) -> Self {
        Self {
            regs,
            irqs: (rx_irq, tx_irq),
            rx: Mutex::new(RefCell::new(Ring::new())),
            rx_waker: AtomicWaker::new(),
            tx_waker: AtomicWaker::new(),
        }
    }
}

/// The console.
pub static UART0: Port = Port::new(UartRegs::UART0, Irq::Uart0Rx, Irq::Uart0Tx);
/// The wire to the radio.
pub static UART1: Port = Port::new(UartRegs::UART1, Irq::Uart1Rx, Irq::Uart1Tx);

/// A UART, set up and interrupt-driven. `main` makes one per port.
#[derive(Debug)]
pub struct Uart(&'static Port);

impl core::fmt::Debug for Port {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Port").field("irqs", &self.irqs).finish_non_exhaustive()
    }
}

impl Uart {
    /// Sets up the port (divider, transmitter, receiver with its interrupt) and unmasks its
    /// interrupt lines.
    pub fn init(port: &'static Port) -> Self {
        let r = &port.regs;
        r.ctrl().write(0);
        r.bauddiv().write(PCLK_HZ / BAUD);
        r.intclear().write(INT_TX | INT_RX);
        r.ctrl().write(CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT);
        hw::unmask(port.irqs.0);
        hw::unmask(port.irqs.1);
        Uart(port)
    }
}

/// Moves received bytes from the UART into the ring while there is room; with the ring
/// full, masks the receive interrupt (the byte stays in the UART, which then takes no more).
/// Call inside a critical section.
fn drain(r: &UartRegs, ring: &mut Ring) {
    while r.state().read() & STATE_RX_FULL != 0 {
        if ring.is_full() {
            r.ctrl().modify(CTRL_RX_INT, false);
            return;
        }
        ring.push((r.data().read() & 0xff) as u8);
    }
    if r.state().read() & STATE_RX_OVERRUN != 0 {
        r.state().write(STATE_RX_OVERRUN);
    }
}

/// Receive interrupt: drain the holding register into the ring, wake the reader.
pub fn on_rx_interrupt(port: &Port) {
    critical_section::with(|cs| {
        // Clear first, then drain: a byte that arrives after the drain raises the
        // interrupt again instead of having its status cleared unseen.
        port.regs.intclear().write(INT_RX);
        drain(&port.regs, &mut port.rx.borrow_ref_mut(cs));
    });
    port.rx_waker.wake();
}

/// Transmit interrupt: the holding register is free again; wake the writer.
pub fn on_tx_interrupt(port: &Port) {
    critical_section::with(|_| {
        port.regs.ctrl().modify(CTRL_TX_INT, false);
        port.regs.intclear().write(INT_TX);
    });
    port.tx_waker.wake();
}

/// Waits until the transmit holding register is free (or returns at once if it is).
async fn tx_ready(port: &Port) {
    let r = &port.regs;
    poll_fn(|cx| {
        critical_section::with(|_| {
            if r.state().read() & STATE_TX_FULL == 0 {
                return Poll::Ready(());
            }
            port.tx_waker.register(cx.waker());
            r.ctrl().modify(CTRL_TX_INT, true);
            // The UART raises the interrupt only when the register empties while it is
            // enabled: if it emptied before that, there will be none.
            if r.state().read() & STATE_TX_FULL == 0 {
                r.ctrl().modify(CTRL_TX_INT, false);
                return Poll::Ready(());
            }
            Poll::Pending
        })
    })
    .await
}

/// Writes bytes to the console without waiting for an interrupt, for the panic handler
/// (which cannot wait for an interrupt): spins while the holding register is full.
pub fn write_blocking(bytes: &[u8]) {
    let r = &UART0.regs;
    for &b in bytes {
        while r.state().read() & STATE_TX_FULL != 0 {}
        r.data().write(u32::from(b));
    }
}

/// Spins until the console's holding register has taken the last byte (before a reset).
pub fn flush_blocking() {
    while UART0.regs.state().read() & STATE_TX_FULL != 0 {}
}

impl embedded_io_async::ErrorType for Uart {
    type Error = Infallible;
}

impl embedded_io_async::Read for Uart {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        let port = self.0;
        poll_fn(|cx| {
            critical_section::with(|cs| {
                let mut ring = port.rx.borrow_ref_mut(cs);
                let n = ring.pop_into(buf);
                // There is room again: unmask, and take the byte held back while the ring was
                // full ourselves (it came while the interrupt was masked, so it raises none).
                port.regs.ctrl().modify(CTRL_RX_INT, true);
                drain(&port.regs, &mut ring);
                if n > 0 {
                    Poll::Ready(Ok(n))
                } else {
                    port.rx_waker.register(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }
}

impl embedded_io_async::Write for Uart {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        let Some((&first, rest)) = buf.split_first() else { return Ok(0) };
        let r = &self.0.regs;
        tx_ready(self.0).await;
        r.data().write(u32::from(first));
        let mut n = 1;
        // Keep going while the holding register takes bytes without waiting.
        for &b in rest {
            if r.state().read() & STATE_TX_FULL != 0 {
                break;
            }
            r.data().write(u32::from(b));
            n += 1;
        }
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        tx_ready(self.0).await;
        Ok(())
    }
}
