//! The `embassy-time` driver. The time is read from the FPGA's free-running 25 MHz counter
//! ([`crate::hw::cycle_counter`]), which QEMU derives from its virtual clock; SysTick
//! interrupts at 1 kHz (the runner and the core count in milliseconds) only wake the timers
//! that are due. Counting the interrupts instead would lose time whenever QEMU is not
//! scheduled for a while on a busy host: the ticks it owes then arrive as one interrupt.
//! Between interrupts the core sleeps (`WFI` in [`crate::hw::run`]).

use core::cell::{Cell, RefCell};
use core::task::Waker;
use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use critical_section::Mutex;
use embassy_time_queue_utils::Queue;

/// The Cortex-M4's clock on the mps2-an386 machine (SysTick counts it).
const CPU_HZ: u32 = 25_000_000;
/// Must match the `tick-hz-1_000` feature of `embassy-time`.
const TICK_HZ: u32 = 1_000;

struct Clock {
    /// The cycle counter extended to 64 bits: the wraps seen so far (<< 32) and the last
    /// value read. It wraps every 172 s; SysTick reads it every millisecond.
    wraps: Mutex<Cell<u64>>,
    last: Mutex<Cell<u32>>,
    /// When the earliest timer is due (`u64::MAX`: none).
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static CLOCK: Clock = Clock {
    wraps: Mutex::new(Cell::new(0)),
    last: Mutex::new(Cell::new(0)),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl Clock {
    /// Milliseconds since the machine's reset (which zeroes the counter).
    fn now_in(&self, cs: critical_section::CriticalSection<'_>) -> u64 {
        let raw = crate::hw::cycle_counter();
        let wraps = self.wraps.borrow(cs);
        let last = self.last.borrow(cs);
        if raw < last.get() {
            wraps.set(wraps.get() + (1 << 32));
        }
        last.set(raw);
        (wraps.get() + u64::from(raw)) / u64::from(CPU_HZ / TICK_HZ)
    }
}

impl embassy_time_driver::Driver for Clock {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now_in(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                let now = self.now_in(cs);
                self.alarm.borrow(cs).set(queue.next_expiration(now));
            }
        });
    }
}

/// Starts SysTick at [`TICK_HZ`] with its interrupt.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CPU_HZ / TICK_HZ - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// The SysTick interrupt: wake what is due.
pub fn on_tick() {
    critical_section::with(|cs| {
        let now = CLOCK.now_in(cs);
        let alarm = CLOCK.alarm.borrow(cs);
        if now >= alarm.get() {
            alarm.set(CLOCK.queue.borrow_ref_mut(cs).next_expiration(now));
        }
    });
}

/// Where SysTick's down-counter is within the current millisecond (0 to 24,999): under QEMU
/// it follows the host's clock, so its value at a given point of the boot varies.
pub fn phase() -> u32 {
    SYST::get_current()
}

/// Fills `buf` with bytes for the TLS engine's DRBG seeds: each 8 bytes mix the FPGA's
/// 25 MHz cycle counter into a SplitMix64 state. Under QEMU the counter follows the host's
/// clock, so its low bits at each call vary from run to run; this is no entropy source for
/// a real product (a board with a TRNG uses that).
pub fn entropy(buf: &mut [u8]) {
    static STATE: Mutex<Cell<u64>> = Mutex::new(Cell::new(0x853c_49e6_748f_ea9b));
    for chunk in buf.chunks_mut(8) {
        let mut z = critical_section::with(|cs| {
            let state = STATE.borrow(cs);
            let mixed = state.get()
                ^ u64::from(crate::hw::cycle_counter()).rotate_left(29)
                ^ u64::from(SYST::get_current());
            let z = mixed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            state.set(z);
            z
        });
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}
