//! The only module of the board that needs `unsafe` (or attributes that count as such): the
//! heap's memory, the application descriptor the ESP-IDF bootloader checks, and a second
//! handle on UART0 for the panic handler.

#![allow(unsafe_code)]

use esp_hal::uart::{Config, Uart};

/// The heap: the core keeps its settings, files and buffers in it, esp-radio its buffers.
/// 64 KiB more come from the RAM the second-stage bootloader used (reclaimed after boot).
pub const HEAP_SIZE: usize = 256 * 1024;
/// The part of the heap in reclaimed bootloader RAM.
pub const RECLAIMED_HEAP_SIZE: usize = 64 * 1024;

// The application descriptor the ESP-IDF bootloader reads (at the start of the image).
esp_bootloader_esp_idf::esp_app_desc!();

/// Gives the allocator its memory. Called once, first thing in `main`.
pub fn init_heap() {
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: RECLAIMED_HEAP_SIZE);
    esp_alloc::heap_allocator!(size: HEAP_SIZE);
}

/// Writes `bytes` on UART0 without the console driver: for the panic handler, which may run
/// while the console's driver is in the middle of something (it owns the peripheral
/// otherwise).
pub fn write_panic(bytes: &[u8]) {
    // SAFETY: only the panic handler calls this, after which nothing else runs; the console
    // driver is abandoned with the rest of the program. Re-initialising UART0 and routing
    // GPIO16 again gives a known state whatever the driver was doing.
    let (uart, tx) =
        unsafe { (esp_hal::peripherals::UART0::steal(), esp_hal::peripherals::GPIO16::steal()) };
    let config = Config::default().with_baudrate(crate::board::BAUD);
    if let Ok(uart) = Uart::new(uart, config) {
        let mut uart = uart.with_tx(tx);
        let _ = uart.write(bytes);
        let _ = uart.flush();
    }
}
