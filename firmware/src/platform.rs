//! What a board (or the simulated module) provides to run the core.
//!
//! The UART is any `embedded_io_async::Read + Write`; the clock is the `embassy-time` driver
//! the platform links in. NVM is the small trait below. The radio and network link arrive
//! as traits of their own when the core gains networking.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why the platform's NVM could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvmFault(pub String);

impl fmt::Display for NvmFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Non-volatile storage for one configuration image.
pub trait Nvm {
    /// The stored image, or `None` when nothing was ever saved (or it was erased).
    fn load(&mut self) -> Result<Option<Vec<u8>>, NvmFault>;
    /// Replaces the stored image. Must be atomic: after a power cut the old or the new
    /// image is there, never a mix.
    fn store(&mut self, image: &[u8]) -> Result<(), NvmFault>;
    /// Removes the stored image (factory reset).
    fn erase(&mut self) -> Result<(), NvmFault>;
}

/// An NVM that lives in RAM: survives a reboot of the core, not of the process.
#[derive(Clone, Debug, Default)]
pub struct RamNvm {
    image: Option<Vec<u8>>,
}

impl Nvm for RamNvm {
    fn load(&mut self) -> Result<Option<Vec<u8>>, NvmFault> {
        Ok(self.image.clone())
    }
    fn store(&mut self, image: &[u8]) -> Result<(), NvmFault> {
        self.image = Some(image.to_vec());
        Ok(())
    }
    fn erase(&mut self) -> Result<(), NvmFault> {
        self.image = None;
        Ok(())
    }
}
