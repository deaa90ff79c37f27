//! The only module of the board that needs `unsafe`: the peripherals' registers (the CMSDK
//! APB UARTs, the LAN9118 Ethernet controller), unmasking interrupt lines in the NVIC, handing
//! the heap its memory, and the executor's pender and polling loop ([`run`]). Everything else
//! goes through the safe functions here.
//!
//! Addresses and interrupt lines are those of QEMU's `mps2-an386` machine (the AN386 FPGA
//! image of the MPS2 board): UART0 at `0x4000_4000`, its receive interrupt on line 0 and its
//! transmit interrupt on line 1 (UART1: `0x4000_5000`, lines 2 and 3); the LAN9118 Ethernet
//! controller (a LAN9220 on the real board) at `0x4020_0000`, its interrupt on line 13
//! (QEMU's `hw/arm/mps2.c`).

#![allow(unsafe_code)]

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use embassy_executor::raw::Executor;

/// The interrupt lines the board uses (external interrupts, numbered from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Irq {
    /// UART0 received a byte.
    Uart0Rx = 0,
    /// UART0's transmit holding register emptied.
    Uart0Tx = 1,
    /// UART1 received a byte.
    Uart1Rx = 2,
    /// UART1's transmit holding register emptied.
    Uart1Tx = 3,
    /// The Ethernet controller's interrupt pin (configured active high by its driver).
    Eth = 13,
}

// SAFETY: the discriminants are the machine's external interrupt numbers, all below the 32
// lines QEMU's mps2 NVIC has; `number` returns exactly them.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self as u16
    }
}

/// Lets an interrupt line through the NVIC.
pub fn unmask(irq: Irq) {
    // SAFETY: unmasking can break a critical section based on masking; this board's critical
    // sections disable interrupts globally (cortex-m's single-core implementation), and the
    // handlers for these lines only take such critical sections.
    unsafe { NVIC::unmask(irq) }
}

/// Every external interrupt lands here (no device crate provides a vector table, so
/// `cortex-m-rt` fills it with this handler); dispatch on the interrupt's number.
#[cortex_m_rt::exception]
// SAFETY: `cortex-m-rt` requires the handler to be declared `unsafe` because it can be
// entered for any interrupt; it only calls the safe handlers of the lines it knows.
unsafe fn DefaultHandler(irqn: i16) {
    match irqn {
        n if n == Irq::Uart0Rx as i16 => crate::uart::on_rx_interrupt(&crate::uart::UART0),
        n if n == Irq::Uart0Tx as i16 => crate::uart::on_tx_interrupt(&crate::uart::UART0),
        n if n == Irq::Uart1Rx as i16 => crate::uart::on_rx_interrupt(&crate::uart::UART1),
        n if n == Irq::Uart1Tx as i16 => crate::uart::on_tx_interrupt(&crate::uart::UART1),
        n if n == Irq::Eth as i16 => {
            ETH.on_interrupt();
        }
        _ => {}
    }
}

/// One 32-bit register of the CMSDK APB UART0.
#[derive(Clone, Copy, Debug)]
pub struct Reg(usize);

/// A CMSDK APB UART's registers (offsets from its programmer's model).
#[derive(Clone, Copy, Debug)]
pub struct UartRegs(usize);

impl UartRegs {
    /// The console.
    pub const UART0: Self = Self(0x4000_4000);
    /// The wire to the radio.
    pub const UART1: Self = Self(0x4000_5000);

    /// Received byte (read) / byte to send (write).
    pub const fn data(self) -> Reg {
        Reg(self.0)
    }
    /// Bit 0: TX full, bit 1: RX full, bits 2 and 3: TX/RX overrun (write 1 to clear).
    pub const fn state(self) -> Reg {
        Reg(self.0 + 0x04)
    }
    /// Bit 0: TX enable, 1: RX enable, 2: TX interrupt, 3: RX interrupt enable.
    pub const fn ctrl(self) -> Reg {
        Reg(self.0 + 0x08)
    }
    /// Interrupt status (read) / clear (write 1): bit 0 TX, bit 1 RX.
    pub const fn intclear(self) -> Reg {
        Reg(self.0 + 0x0c)
    }
    /// Baud rate divider (the peripheral clock over the baud rate; at least 16).
    pub const fn bauddiv(self) -> Reg {
        Reg(self.0 + 0x10)
    }
}

impl Reg {
    pub fn read(self) -> u32 {
        // SAFETY: every `Reg` is one of the aligned UART registers above, which QEMU's
        // mps2-an386 maps at these addresses; reading them has no effect besides popping the
        // receive register, which only the UART driver does.
        unsafe { core::ptr::read_volatile(self.0 as *const u32) }
    }

    pub fn write(self, value: u32) {
        // SAFETY: as for `read`: a mapped, aligned device register; the UART driver is the
        // only writer and takes a critical section around read-modify-write sequences.
        unsafe { core::ptr::write_volatile(self.0 as *mut u32, value) }
    }

    /// Sets (`on`) or clears the bits of `mask`. Call inside a critical section.
    pub fn modify(self, mask: u32, on: bool) {
        let v = self.read();
        self.write(if on { v | mask } else { v & !mask });
    }
}

/// The Ethernet controller's registers: 32-bit words at `0x4020_0000 + offset`.
#[derive(Debug)]
pub struct EthRegs(());

/// The base of the LAN9118's register page (256 bytes).
const ETH_BASE: usize = 0x4020_0000;

impl lan9118::Registers for EthRegs {
    fn read(&mut self, offset: u32) -> u32 {
        // SAFETY: the offset is masked to an aligned word of the controller's 256-byte
        // register page, which QEMU's mps2-an386 maps at `ETH_BASE`. A read may pop a FIFO
        // word; only the driver behind `ETH`'s lock reads, so nothing else loses one.
        unsafe { core::ptr::read_volatile((ETH_BASE + (offset & 0xfc) as usize) as *const u32) }
    }

    fn write(&mut self, offset: u32, value: u32) {
        // SAFETY: as for `read`: a mapped, aligned device register, written only by the
        // driver behind `ETH`'s lock.
        unsafe {
            core::ptr::write_volatile((ETH_BASE + (offset & 0xfc) as usize) as *mut u32, value)
        }
    }
}

/// The Ethernet controller, shared by its interrupt handler (above) and the network stack.
/// `EthRegs` can be made only here, so this is its one owner.
pub static ETH: lan9118::net::Shared<EthRegs> = lan9118::net::Shared::new(EthRegs(()));

/// The FPGA's cycle counter (`COUNTER` of the AN386's FPGA I/O block at `0x4002_8000`):
/// counts up at 25 MHz from the machine's reset (its prescaler is 0 after a reset), wrapping
/// at 2^32.
pub fn cycle_counter() -> u32 {
    const COUNTER: usize = 0x4002_8000 + 0x18;
    // SAFETY: an aligned, read-only-in-effect register of the FPGA I/O block, which QEMU's
    // mps2-an386 maps at this address; reading it has no side effect.
    unsafe { core::ptr::read_volatile(COUNTER as *const u32) }
}

/// The heap's size: the core keeps its settings, files and buffers in it.
pub const HEAP_SIZE: usize = 2 * 1024 * 1024;

#[global_allocator]
static HEAP: embedded_alloc::LlffHeap = embedded_alloc::LlffHeap::empty();

/// Gives the allocator its memory. Called once, first thing in `main`.
pub fn init_heap() {
    static mut MEMORY: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
    // SAFETY: called once, from `main` before anything allocates; nothing else names
    // `MEMORY`, so the allocator owns it from here on.
    unsafe { HEAP.init(core::ptr::addr_of_mut!(MEMORY) as usize, HEAP_SIZE) }
}

/// The settings' retained region: two slots for a settings image.
pub const SETTINGS_BYTES: usize = 2 * 32 * 1024;
/// The files' retained region: two slots for the whole file system image (256 KiB of
/// contents and their headers).
pub const FILES_BYTES: usize = 2 * 272 * 1024;

/// RAM that a CPU reset leaves alone: `.uninit` sections are neither loaded from the image
/// nor zeroed by `cortex-m-rt` at start, and QEMU's `system_reset` reloads only the image.
/// The board's stand-in for flash: what is stored here survives a reset (not a restart of
/// QEMU, which starts with zeroed RAM).
#[unsafe(link_section = ".uninit.gecko_settings")]
static mut SETTINGS: MaybeUninit<[u8; SETTINGS_BYTES]> = MaybeUninit::uninit();
#[unsafe(link_section = ".uninit.gecko_files")]
static mut FILES: MaybeUninit<[u8; FILES_BYTES]> = MaybeUninit::uninit();

/// One of the retained regions, handed out once (so there is one writer).
#[derive(Debug)]
pub struct Retained {
    base: *mut u8,
    size: usize,
}

static TAKEN: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// The settings' region (`files = false`) or the files' one; `None` when already taken.
pub fn retained(files: bool) -> Option<Retained> {
    if TAKEN[usize::from(files)].swap(true, Ordering::AcqRel) {
        return None;
    }
    let (base, size) = if files {
        (core::ptr::addr_of_mut!(FILES).cast::<u8>(), FILES_BYTES)
    } else {
        (core::ptr::addr_of_mut!(SETTINGS).cast::<u8>(), SETTINGS_BYTES)
    };
    Some(Retained { base, size })
}

impl gecko_core::platform::Memory for Retained {
    fn size(&self) -> usize {
        self.size
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset + buf.len() <= self.size, "read past the retained region");
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: in bounds (checked above) of a static region only this `Retained`
            // accesses (handed out once). Volatile: the bytes may be whatever a previous run
            // left, which the compiler must not assume anything about.
            *b = unsafe { core::ptr::read_volatile(self.base.add(offset + i)) };
        }
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.size, "write past the retained region");
        for (i, b) in data.iter().enumerate() {
            // SAFETY: as for `read`; `&mut self` makes this the only access.
            unsafe { core::ptr::write_volatile(self.base.add(offset + i), *b) };
        }
    }
}

/// Set by the executor's pender when a task becomes ready (from a waker, in thread mode or in
/// an interrupt handler); cleared by [`run`] before each poll.
static WORK: AtomicBool = AtomicBool::new(false);

/// The pender `embassy-executor` calls when its run queue stops being empty. It only raises
/// [`WORK`]: [`run`] polls, never the pender (polling must not be reentrant).
// SAFETY: the symbol `__pender` is what `embassy-executor`'s raw executor links against (no
// `platform-*` feature of it is enabled, so nothing else defines it), with this signature;
// the function ignores `context` and only stores to an atomic, so any context may call it.
#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    WORK.store(true, Ordering::Release);
}

/// Drives `executor` forever: polls it while it has work and otherwise sleeps with `WFI`.
///
/// Not the platform's thread executor: that one sleeps with `WFE`, which QEMU's TCG treats as
/// a mere yield on M-profile, so an idle board spun a host core; `WFI` halts the emulated CPU
/// until an interrupt. No wake-up is lost: the pender's flag is cleared before a poll (a task
/// woken during it raises the flag again), and it is checked with interrupts masked, where an
/// interrupt that arrives after the check stays pending and still ends the `WFI` (the
/// architecture wakes `WFI` on a pending interrupt whatever PRIMASK says); its handler runs
/// once the mask is lifted, before the next poll.
pub fn run(executor: &'static Executor) -> ! {
    loop {
        WORK.store(false, Ordering::Relaxed);
        // SAFETY: this loop is the executor's only caller of `poll`, on the one thread the
        // board has, and the pender never polls, so `poll` is not entered reentrantly.
        unsafe { executor.poll() };
        cortex_m::interrupt::free(|_| {
            if !WORK.load(Ordering::Acquire) {
                cortex_m::asm::wfi();
            }
        });
    }
}
