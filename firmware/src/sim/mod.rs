//! The simulated module: the std platform around the firmware core.
//!
//! * [`pty`]: the console on a pseudo-terminal, with a stable symlink to its slave side.
//! * [`FileNvm`]: NVM in a file, replaced atomically (temporary file, then rename).
//! * [`run`]: an embassy executor on the std platform running [`crate::runner::run`].
//!
//! This module is the only place that touches the operating system; it needs no `unsafe`.

pub mod pty;

use crate::module::BoardInfo;
use crate::platform::{Nvm, NvmFault, RamNvm};
use crate::runner::{self, Stop};
use std::boxed::Box;
use std::format;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::string::ToString;
use std::vec::Vec;

/// NVM kept in a file. A store writes `<file>.tmp`, syncs it and renames it over the file,
/// so a crash leaves the old image or the new one.
#[derive(Debug)]
pub struct FileNvm {
    path: PathBuf,
}

impl FileNvm {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn fault(&self, what: &str, e: std::io::Error) -> NvmFault {
        NvmFault(format!("{what} {}: {e}", self.path.display()))
    }
}

impl Nvm for FileNvm {
    fn load(&mut self) -> Result<Option<Vec<u8>>, NvmFault> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.fault("reading", e)),
        }
    }

    fn store(&mut self, image: &[u8]) -> Result<(), NvmFault> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(image)?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| self.fault("writing", e))
    }

    fn erase(&mut self) -> Result<(), NvmFault> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.fault("erasing", e)),
        }
    }
}

/// Either NVM the simulated module can use.
#[derive(Debug)]
pub enum SimNvm {
    File(FileNvm),
    Ram(RamNvm),
}

impl Nvm for SimNvm {
    fn load(&mut self) -> Result<Option<Vec<u8>>, NvmFault> {
        match self {
            Self::File(n) => n.load(),
            Self::Ram(n) => n.load(),
        }
    }
    fn store(&mut self, image: &[u8]) -> Result<(), NvmFault> {
        match self {
            Self::File(n) => n.store(image),
            Self::Ram(n) => n.store(image),
        }
    }
    fn erase(&mut self) -> Result<(), NvmFault> {
        match self {
            Self::File(n) => n.erase(),
            Self::Ram(n) => n.erase(),
        }
    }
}

/// How to start a simulated module.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to put a symlink to the console's pty (removed again on exit).
    pub console_link: Option<PathBuf>,
    /// The NVM file; `None` keeps NVM in memory.
    pub nvm: Option<PathBuf>,
    pub board: BoardInfo,
}

/// The board the simulated module reports.
pub fn sim_board(mac: [u8; 6]) -> BoardInfo {
    BoardInfo {
        product: "Gecko OS".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        build: "sim".to_string(),
        platform: "SIM".to_string(),
        board: "SIM-01".to_string(),
        mac,
    }
}

/// Opens the console and runs the module on an embassy executor. Never returns: the
/// process ends on a console failure (exit code 1) or a signal.
pub fn run(config: SimConfig) -> ! {
    let console = match pty::Console::open(config.console_link.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            std::eprintln!("gecko-sim: cannot open the console pty: {e}");
            std::process::exit(1);
        }
    };
    std::println!("console: {}", console.slave_path().display());
    if let Some(link) = &config.console_link {
        std::println!("console link: {}", link.display());
    }
    let _ = std::io::stdout().flush();
    let nvm = match &config.nvm {
        Some(path) => SimNvm::File(FileNvm::new(path)),
        None => SimNvm::Ram(RamNvm::default()),
    };
    let executor: &'static mut embassy_executor::Executor =
        Box::leak(Box::new(embassy_executor::Executor::new()));
    let task = Box::leak(Box::new(Some((console, nvm, config.board))));
    executor.run(move |spawner| {
        if let Some((console, nvm, board)) = task.take() {
            match module_task(console, nvm, board) {
                Ok(token) => spawner.spawn(token),
                Err(e) => {
                    std::eprintln!("gecko-sim: cannot spawn the module task: {e:?}");
                    std::process::exit(1);
                }
            }
        }
    })
}

#[embassy_executor::task]
async fn module_task(mut console: pty::Console, mut nvm: SimNvm, board: BoardInfo) {
    match runner::run(&mut console, &mut nvm, &board).await {
        Stop::Uart(e) => std::eprintln!("gecko-sim: console failed: {e}"),
        Stop::Closed => std::eprintln!("gecko-sim: console closed"),
    }
    console.remove_link();
    std::process::exit(1);
}

/// Removes a console link left by a simulated module (used by the signal handler).
pub fn remove_link(link: &Path) {
    let _ = fs::remove_file(link);
}
