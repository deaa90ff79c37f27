//! The module's console: UART0 through esp-hal's async driver, with line faults on receive
//! (a FIFO overflow, a glitch, a framing or parity error) dropping the bytes they spoiled
//! instead of ending the runner: a module's UART loses such bytes and keeps going, and a
//! glitch is what a USB-UART bridge makes when it is plugged in.

use esp_hal::Async;
use esp_hal::uart::{IoError, Uart};

/// UART0 as the runner's `embedded_io_async::Read + Write`.
pub struct Console {
    uart: Uart<'static, Async>,
}

impl core::fmt::Debug for Console {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Console(UART0)")
    }
}

impl Console {
    pub fn new(uart: Uart<'static, Async>) -> Self {
        Self { uart }
    }

    /// Waits until every byte written has left the UART.
    pub async fn flush(&mut self) {
        let _ = self.uart.flush_async().await;
    }
}

impl embedded_io_async::ErrorType for Console {
    type Error = IoError;
}

impl embedded_io_async::Read for Console {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        loop {
            match self.uart.read_async(buf).await {
                Ok(n) => return Ok(n),
                // The driver has dropped what it could not receive; read on.
                Err(_) => continue,
            }
        }
    }
}

impl embedded_io_async::Write for Console {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        self.uart.write_async(buf).await.map_err(IoError::Tx)
    }

    async fn flush(&mut self) -> Result<(), IoError> {
        self.uart.flush_async().await.map_err(IoError::Tx)
    }
}
