//! The `embassy-time` driver: SysTick interrupts at 1 kHz (the runner and the core count in
//! milliseconds) advance the clock, and the handler wakes the timers that are due. Between
//! ticks the core sleeps (`WFI` in [`crate::hw::run`]).

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
    /// Milliseconds since boot.
    ticks: Mutex<Cell<u64>>,
    /// When the earliest timer is due (`u64::MAX`: none).
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static CLOCK: Clock = Clock {
    ticks: Mutex::new(Cell::new(0)),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl embassy_time_driver::Driver for Clock {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                let now = self.ticks.borrow(cs).get();
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

/// The SysTick interrupt: one more millisecond; wake what is due.
pub fn on_tick() {
    critical_section::with(|cs| {
        let ticks = CLOCK.ticks.borrow(cs);
        let now = ticks.get() + 1;
        ticks.set(now);
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
