//! The simulated module (`gecko-sim`): the std platform around the firmware core
//! (`gecko-core`), driven by the same runner (`gecko-runner`) a board uses.
//!
//! * [`pty`]: the console on a pseudo-terminal, with a stable symlink to its slave side.
//! * [`FileNvm`]: an image in a file, replaced atomically (temporary file, then rename): the
//!   settings (`--nvm`) and the file system (`--files`) each have one.
//! * [`run`]: an embassy executor on the std platform running [`gecko_runner::run`].
//! * [`radio`], [`netstack`]: the simulated radio (access points, faults, event log) and
//!   embassy-net on a TAP device (`--tap`), behind [`netstack::SimNet`], the platform's
//!   [`gecko_core::platform::NetDriver`]. Without `--tap` and `--lab-socket` the module has
//!   [`gecko_core::platform::NoNet`].
//! * [`lab`]: the lab control channel (`--lab-socket`), line-delimited JSON.
//!
//! This crate is the only place that touches the operating system; it needs no `unsafe`.
#![forbid(unsafe_code)]

pub mod lab;
pub mod netstack;
pub mod pty;
pub mod radio;

use gecko_core::module::BoardInfo;
use gecko_core::platform::{Nvm, NvmFault, RamNvm};
use gecko_core::tls::TlsEngine;
use gecko_runner::{self as runner, Stop};
use std::boxed::Box;
use std::format;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

/// An [`Nvm`] image kept in a file. A store writes `<file>.tmp`, syncs it and renames it over the file,
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
    /// The file system image; `None` keeps files in memory.
    pub files: Option<PathBuf>,
    pub board: BoardInfo,
    /// The TAP device (it must exist) the module's Wi-Fi link leads to.
    pub tap: Option<String>,
    /// Where to serve the lab control channel.
    pub lab_socket: Option<PathBuf>,
    /// Where to append the TLS session secrets (NSS key log format).
    pub tls_keylog: Option<PathBuf>,
    /// The TLS stack's heap budget in bytes (`None`: no limit).
    pub tls_heap: Option<usize>,
}

/// The network side, opened before the executor starts.
struct NetParts {
    tap: Option<embassy_net_tuntap::TunTapDevice>,
    lab: Option<async_io::Async<std::os::unix::net::UnixListener>>,
    /// Where the lab's access points are kept across restarts of the module.
    aps: Option<PathBuf>,
}

fn open_net(config: &SimConfig) -> Result<Option<NetParts>, String> {
    if config.tap.is_none() && config.lab_socket.is_none() {
        return Ok(None);
    }
    let tap = match &config.tap {
        Some(name) => {
            // TUNSETIFF would create a missing device: the lab must have made it.
            if !Path::new("/sys/class/net").join(name).exists() {
                return Err(format!("TAP device {name} does not exist (create it first)"));
            }
            let dev = embassy_net_tuntap::TunTapDevice::new(name)
                .map_err(|e| format!("cannot open TAP device {name}: {e}"))?;
            Some(dev)
        }
        None => None,
    };
    let lab = match &config.lab_socket {
        Some(path) => Some(
            lab::bind(path)
                .map_err(|e| format!("cannot bind the lab socket {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let aps = config.lab_socket.as_deref().map(lab::aps_file);
    Ok(Some(NetParts { tap, lab, aps }))
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
    let net = match open_net(&config) {
        Ok(net) => net,
        Err(e) => {
            std::eprintln!("gecko-sim: {e}");
            std::process::exit(1);
        }
    };
    if let Some(path) = &config.lab_socket {
        std::println!("lab socket: {}", path.display());
    }
    let _ = std::io::stdout().flush();
    let nvm = match &config.nvm {
        Some(path) => SimNvm::File(FileNvm::new(path)),
        None => SimNvm::Ram(RamNvm::default()),
    };
    let files = match &config.files {
        Some(path) => SimNvm::File(FileNvm::new(path)),
        None => SimNvm::Ram(RamNvm::default()),
    };
    let executor: &'static mut embassy_executor::Executor =
        Box::leak(Box::new(embassy_executor::Executor::new()));
    let tls = tls_engine(&config);
    let task = Box::leak(Box::new(Some((console, (nvm, files), config.board, net, tls))));
    executor.run(move |spawner| {
        if let Some((console, store, board, net, tls)) = task.take() {
            match module_task(console, store, board, net, tls) {
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
async fn module_task(
    mut console: pty::Console,
    store: (SimNvm, SimNvm),
    board: BoardInfo,
    net: Option<NetParts>,
    tls: Box<dyn TlsEngine>,
) {
    let (mut nvm, mut files) = store;
    let stop = match net {
        None => {
            let mut no_net = gecko_core::platform::NoNet;
            runner::run(&mut console, &mut nvm, &mut files, &mut no_net, Some(tls), &board).await
        }
        Some(net) => run_with_net(&mut console, &mut nvm, &mut files, &board, net, tls).await,
    };
    match stop {
        Stop::Uart(e) => std::eprintln!("gecko-sim: console failed: {e}"),
        Stop::Closed => std::eprintln!("gecko-sim: console closed"),
        // `run` reboots in place; it never returns this.
        Stop::Reboot => std::eprintln!("gecko-sim: the runner returned for a reboot"),
    }
    console.remove_link();
    std::process::exit(1);
}

/// The runner beside the network stack, its job loops and the lab channel.
async fn run_with_net(
    console: &mut pty::Console,
    nvm: &mut SimNvm,
    files: &mut SimNvm,
    board: &BoardInfo,
    net: NetParts,
    tls: Box<dyn TlsEngine>,
) -> Stop<std::io::Error> {
    use embassy_futures::select::{Either, select};
    let shared = netstack::Shared::new_ref(radio::Radio::new());
    // Access points that were on the air before this process started (a power cut).
    if let Some(file) = &net.aps
        && let Err(e) = lab::load_aps(&mut shared.borrow_mut().radio, file)
    {
        std::eprintln!("gecko-sim: lab access points not restored: {e}");
    }
    let mut resources = embassy_net::StackResources::<{ netstack::STACK_SOCKETS }>::new();
    let (stack, stack_runner) = match net.tap {
        Some(dev) => {
            let link = netstack::lab_link(dev, shared.clone(), board.mac);
            let (stack, runner) = embassy_net::new(
                link,
                embassy_net::Config::default(),
                &mut resources,
                random_seed(),
            );
            (Some(stack), Some(runner))
        }
        None => (None, None),
    };
    let mut driver = netstack::SimNet::new(shared.clone(), stack);
    let ip = move || stack.and_then(|s| s.config_v4()).map(|c| c.address.address().octets());
    let background = embassy_futures::join::join3(
        async {
            match stack_runner {
                Some(mut r) => r.run().await,
                None => core::future::pending().await,
            }
        },
        async {
            match stack {
                Some(stack) => netstack::run_jobs(stack, &shared).await,
                None => core::future::pending().await,
            }
        },
        async {
            match &net.lab {
                Some(listener) => lab::serve(listener, &shared, &ip, net.aps.as_deref()).await,
                None => core::future::pending().await,
            }
        },
    );
    let mut nvm = LabStore { inner: nvm, shared: &shared, store: radio::Store::Nvm };
    let mut files = LabStore { inner: files, shared: &shared, store: radio::Store::Files };
    let running = runner::run(console, &mut nvm, &mut files, &mut driver, Some(tls), board);
    match select(running, background).await {
        Either::First(stop) => stop,
        Either::Second(_) => unreachable!("the network loops never end"),
    }
}

/// A store whose writes the lab can make fail (`store_fail` faults): the rest is `inner`.
struct LabStore<'a> {
    inner: &'a mut SimNvm,
    shared: &'a netstack::SharedRef,
    store: radio::Store,
}

impl LabStore<'_> {
    /// Fails when a `store_fail` fault for this store is armed (and fires it).
    fn check(&self, what: &str) -> Result<(), NvmFault> {
        if self.shared.borrow_mut().radio.store_fails(self.store) {
            let store = match self.store {
                radio::Store::Nvm => "NVM",
                radio::Store::Files => "file store",
            };
            return Err(NvmFault(format!("{store} {what} failed (lab fault)")));
        }
        Ok(())
    }
}

impl Nvm for LabStore<'_> {
    fn load(&mut self) -> Result<Option<Vec<u8>>, NvmFault> {
        self.inner.load()
    }
    fn store(&mut self, image: &[u8]) -> Result<(), NvmFault> {
        self.check("write")?;
        self.inner.store(image)
    }
    /// A failing part refuses erases too (a factory reset then keeps what was stored).
    fn erase(&mut self) -> Result<(), NvmFault> {
        self.check("erase")?;
        self.inner.erase()
    }
}

/// The module's TLS engine: mbedTLS seeded from the operating system's randomness, its heap
/// budget (`--tls-heap`), and in the lab its session secrets appended to `--tls-keylog`.
fn tls_engine(config: &SimConfig) -> Box<dyn TlsEngine> {
    let rng = Box::new(|buf: &mut [u8]| {
        // /dev/urandom does not run dry; should it fail, the seed is the clock's mix below,
        // which still differs per session.
        let read = fs::File::open("/dev/urandom").and_then(|mut f| {
            use std::io::Read as _;
            f.read_exact(buf)
        });
        if read.is_err() {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (random_seed() >> ((i % 8) * 8)) as u8;
            }
        }
    });
    let mut engine = gecko_tls::MbedTls::new(rng);
    let _ = TLS_HEAP.set(config.tls_heap);
    gecko_tls::set_heap_budget(config.tls_heap);
    if let Some(path) = config.tls_keylog.clone() {
        engine.set_keylog(Box::new(move |line: &str| {
            let written = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| writeln!(f, "{line}"));
            if let Err(e) = written {
                std::eprintln!("gecko-sim: key log {}: {e}", path.display());
            }
        }));
    }
    Box::new(engine)
}

/// The TLS heap budget the module started with (`--tls-heap`), which clearing the lab's
/// faults restores.
static TLS_HEAP: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();

pub(crate) fn tls_heap_default() -> Option<usize> {
    TLS_HEAP.get().copied().flatten()
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

/// Removes a file a simulated module leaves behind (console link, lab socket); used by the
/// signal handler.
pub fn remove_link(link: &Path) {
    let _ = fs::remove_file(link);
}

#[cfg(test)]
mod tests {
    use super::*;
    use gecko_core::fs::{FileSystem, NewFile, Version};

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gecko-nvm-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// A file system image holding one file.
    fn files_image() -> Vec<u8> {
        let mut files = FileSystem::new();
        let new = NewFile {
            name: "webapp/x.html".into(),
            size: 5,
            version: Version([1, 0, 1, 3]),
            kind: 0xFE,
            flags: 0,
            crc: None,
        };
        files.create(new, b"<p>\r\n").expect("created");
        files.encode()
    }

    #[test]
    fn stores_loads_and_erases_through_a_real_file() {
        let dir = temp_dir("store");
        let path = dir.join("files");
        let mut store = FileNvm::new(&path);
        assert_eq!(store.load(), Ok(None), "nothing stored yet");
        let image = files_image();
        store.store(&image).expect("stores");
        assert_eq!(fs::read(&path).expect("on disk"), image);
        assert!(!dir.join("files.tmp").exists(), "the temporary file was renamed");
        // A new store on the same path (a restarted process) finds it.
        let mut again = FileNvm::new(&path);
        let loaded = again.load().expect("loads").expect("an image");
        let files = FileSystem::decode(&loaded).expect("decodes");
        assert_eq!(
            files.get("webapp/x.html").map(|f| f.data().to_vec()),
            Some(b"<p>\r\n".to_vec())
        );
        again.erase().expect("erases");
        assert!(!path.exists());
        assert_eq!(again.erase(), Ok(()), "erasing nothing is fine");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_store_into_a_missing_folder_reports_the_path() {
        let dir = temp_dir("missing");
        let path = dir.join("no-such-folder").join("files");
        let mut store = FileNvm::new(&path);
        let err = store.store(&files_image()).expect_err("fails");
        assert!(err.0.contains("no-such-folder"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
