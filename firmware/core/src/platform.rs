//! What a board (or the simulated module) provides to run the core.
//!
//! The UART is any `embedded_io_async::Read + Write`; the clock is the `embassy-time` driver
//! the platform links in. Storage ([`Nvm`], twice: the settings and the file system) and the
//! network ([`NetDriver`]: the radio and the IP stack) are the small traits below.

mod slots;

pub use slots::{Memory, SlotNvm};

use crate::net::{NetEvent, NetRequest};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;

/// Why the platform's NVM could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvmFault(pub String);

impl fmt::Display for NvmFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Non-volatile storage for one image. A platform gives the runner two: one for the settings
/// ([`crate::nvm`]) and one for the file system ([`crate::fs`]), so a board can put files in
/// their own flash region and saving settings never rewrites the files.
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

/// The radio and IP stack as the runner sees them: requests from the core go in
/// ([`NetDriver::request`]), what happened comes out ([`NetDriver::next_event`]).
///
/// The core owns every timeout (see [`crate::net`]): a driver may leave a request
/// unanswered, and it never retries on its own.
pub trait NetDriver {
    /// Starts the work the core asked for. Must not block: the answer, if any, comes later
    /// from [`NetDriver::next_event`].
    fn request(&mut self, req: NetRequest);

    /// Waits for the next event for the core. Must be cancel-safe: the runner drops this
    /// future whenever console input or a timer comes first, and no event may be lost then.
    fn next_event(&mut self) -> impl Future<Output = NetEvent>;

    /// The core is about to be booted again (reboot, factory reset): leave the network and
    /// forget what was pending. The default asks for exactly that through [`Self::request`].
    fn reset(&mut self) {
        self.request(NetRequest::IpDown);
        self.request(NetRequest::Disassociate);
    }
}

/// A platform without a network: requests go unanswered and the core's timers end them.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoNet;

impl NetDriver for NoNet {
    fn request(&mut self, _req: NetRequest) {}

    fn next_event(&mut self) -> impl Future<Output = NetEvent> {
        core::future::pending()
    }

    fn reset(&mut self) {}
}
