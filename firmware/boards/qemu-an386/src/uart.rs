//! The console: the CMSDK APB UART0 as `embedded_io_async::{Read, Write}`, interrupt-driven
//! both ways. The receive interrupt moves bytes from the one-byte holding register into a
//! ring buffer and wakes the reader; the transmit interrupt wakes a writer that found the
//! holding register full. Nothing polls the UART in a loop.

use crate::hw::{self, Irq, uart0};
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
/// The console's baud rate (QEMU ignores it on a pty, but the divider must be valid).
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

static RX: Mutex<RefCell<Ring>> = Mutex::new(RefCell::new(Ring::new()));
static RX_WAKER: AtomicWaker = AtomicWaker::new();
static TX_WAKER: AtomicWaker = AtomicWaker::new();

/// The console UART. There is one: [`Console::take`] hands it out once.
#[derive(Debug)]
pub struct Console(());

impl Console {
    /// Sets up UART0 (divider, transmitter, receiver with its interrupt) and unmasks its
    /// interrupt lines.
    pub fn init() -> Self {
        uart0::CTRL.write(0);
        uart0::BAUDDIV.write(PCLK_HZ / BAUD);
        uart0::INTCLEAR.write(INT_TX | INT_RX);
        uart0::CTRL.write(CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT);
        hw::unmask(Irq::Uart0Rx);
        hw::unmask(Irq::Uart0Tx);
        Console(())
    }
}

/// Moves received bytes from the UART into the ring while there is room; with the ring
/// full, masks the receive interrupt (the byte stays in the UART, which then takes no more).
/// Call inside a critical section.
fn drain(ring: &mut Ring) {
    while uart0::STATE.read() & STATE_RX_FULL != 0 {
        if ring.is_full() {
            uart0::CTRL.modify(CTRL_RX_INT, false);
            return;
        }
        ring.push((uart0::DATA.read() & 0xff) as u8);
    }
    if uart0::STATE.read() & STATE_RX_OVERRUN != 0 {
        uart0::STATE.write(STATE_RX_OVERRUN);
    }
}

/// Receive interrupt: drain the holding register into the ring, wake the reader.
pub fn on_rx_interrupt() {
    critical_section::with(|cs| {
        // Clear first, then drain: a byte that arrives after the drain raises the
        // interrupt again instead of having its status cleared unseen.
        uart0::INTCLEAR.write(INT_RX);
        drain(&mut RX.borrow_ref_mut(cs));
    });
    RX_WAKER.wake();
}

/// Transmit interrupt: the holding register is free again; wake the writer.
pub fn on_tx_interrupt() {
    critical_section::with(|_| {
        uart0::CTRL.modify(CTRL_TX_INT, false);
        uart0::INTCLEAR.write(INT_TX);
    });
    TX_WAKER.wake();
}

/// Waits until the transmit holding register is free (or returns at once if it is).
async fn tx_ready() {
    poll_fn(|cx| {
        critical_section::with(|_| {
            if uart0::STATE.read() & STATE_TX_FULL == 0 {
                return Poll::Ready(());
            }
            TX_WAKER.register(cx.waker());
            uart0::CTRL.modify(CTRL_TX_INT, true);
            // The UART raises the interrupt only when the register empties while it is
            // enabled: if it emptied before that, there will be none.
            if uart0::STATE.read() & STATE_TX_FULL == 0 {
                uart0::CTRL.modify(CTRL_TX_INT, false);
                return Poll::Ready(());
            }
            Poll::Pending
        })
    })
    .await
}

/// Writes bytes without waiting for an interrupt, for the panic handler (which cannot wait for an
/// interrupt): spins while the holding register is full.
pub fn write_blocking(bytes: &[u8]) {
    for &b in bytes {
        while uart0::STATE.read() & STATE_TX_FULL != 0 {}
        uart0::DATA.write(u32::from(b));
    }
}

/// Spins until the holding register has taken the last byte (before a reset).
pub fn flush_blocking() {
    while uart0::STATE.read() & STATE_TX_FULL != 0 {}
}

impl embedded_io_async::ErrorType for Console {
    type Error = Infallible;
}

impl embedded_io_async::Read for Console {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| {
            critical_section::with(|cs| {
                let mut ring = RX.borrow_ref_mut(cs);
                let n = ring.pop_into(buf);
                // There is room again: unmask, and take the byte held back while the ring was
                // full ourselves (it came while the interrupt was masked, so it raises none).
                uart0::CTRL.modify(CTRL_RX_INT, true);
                drain(&mut ring);
                if n > 0 {
                    Poll::Ready(Ok(n))
                } else {
                    RX_WAKER.register(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }
}

impl embedded_io_async::Write for Console {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        let Some((&first, rest)) = buf.split_first() else { return Ok(0) };
        tx_ready().await;
        uart0::DATA.write(u32::from(first));
        let mut n = 1;
        // Keep going while the holding register takes bytes without waiting.
        for &b in rest {
            if uart0::STATE.read() & STATE_TX_FULL != 0 {
                break;
            }
            uart0::DATA.write(u32::from(b));
            n += 1;
        }
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        tx_ready().await;
        Ok(())
    }
}
