//! The console on a pseudo-terminal.
//!
//! The module owns the master side and keeps the slave side open itself, so a host that
//! closes and reopens the port never makes the master read fail (EIO) and output is not
//! lost between connections. Both sides are in raw mode: no echo, no line editing, no
//! CR/LF translation by the kernel; the firmware does all of that.

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use nix::pty::openpty;
use nix::sys::termios::{self, SetArg};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The module's end of the console.
#[derive(Debug)]
pub struct Console {
    master: Async<File>,
    /// Held open so the master never sees a hang-up.
    _slave: OwnedFd,
    slave_path: PathBuf,
    link: Option<PathBuf>,
}

impl Console {
    /// Opens a pty pair; with `link`, (re)creates a symlink there to the slave device.
    pub fn open(link: Option<&Path>) -> io::Result<Self> {
        let pair = openpty(None, None).map_err(io::Error::from)?;
        for fd in [&pair.master, &pair.slave] {
            let mut t = termios::tcgetattr(fd).map_err(io::Error::from)?;
            termios::cfmakeraw(&mut t);
            termios::tcsetattr(fd, SetArg::TCSANOW, &t).map_err(io::Error::from)?;
        }
        let slave_path = nix::unistd::ttyname(&pair.slave).map_err(io::Error::from)?;
        if let Some(link) = link {
            match std::fs::remove_file(link) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            std::os::unix::fs::symlink(&slave_path, link)?;
        }
        let master = Async::new(File::from(pair.master))?;
        Ok(Self { master, _slave: pair.slave, slave_path, link: link.map(Path::to_path_buf) })
    }

    /// The slave device, e.g. `/dev/pts/3`.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// Removes the symlink, if this console made one.
    pub fn remove_link(&mut self) {
        if let Some(link) = self.link.take() {
            let _ = std::fs::remove_file(link);
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.remove_link();
    }
}

impl embedded_io_async::ErrorType for Console {
    type Error = io::Error;
}

impl embedded_io_async::Read for Console {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        self.master.read(buf).await
    }
}

impl embedded_io_async::Write for Console {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, io::Error> {
        self.master.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), io::Error> {
        self.master.flush().await
    }
}
