//! The async loop that runs the Gecko OS core (`gecko-core`) on a platform: UART bytes in,
//! output and actions out (NVM and file-store writes, network requests, reboots). A board's
//! `main` and the simulated module both call [`run`].
//!
//! The loop waits for whichever comes first: bytes on the UART, an event from the network
//! driver, or the core's next timer ([`Module::poll_at`], run by [`Module::tick`]). This crate,
//! not the core, reads the clock (the platform's `embassy-time` driver) and hands the time in.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use embassy_futures::select::{Either3, select3};
use embedded_io_async::{Read, Write};
use gecko_core::module::{Action, BoardInfo, Module, Stored};
use gecko_core::platform::{NetDriver, Nvm};
use gecko_core::time::Instant;
use gecko_core::tls::TlsEngine;

/// Why the runner stopped.
#[derive(Debug)]
pub enum Stop<E> {
    /// The UART failed; the platform decides whether to reopen it and call [`run`] again.
    Uart(E),
    /// The UART reported end of input.
    Closed,
    /// The core asked for a reboot (a command or a factory reset, its NVM already erased),
    /// with its output written: the platform resets the CPU. Only from [`run_to_reboot`].
    Reboot,
}

/// Who carries out a reboot.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RebootBy {
    /// The runner: the core is booted again in place.
    Runner,
    /// The platform: the runner returns [`Stop::Reboot`].
    Platform,
}

/// Converts the platform clock into the core's time.
fn now() -> Instant {
    Instant::from_millis(embassy_time::Instant::now().as_millis())
}

/// Boots the module and serves the console until the UART fails. Reboots (by command or
/// factory reset) happen inside: the core is dropped and booted again from NVM and the file
/// store, and the TLS engine (if the platform has one) passes to the new core.
pub async fn run<U, N, F, D>(
    uart: &mut U,
    nvm: &mut N,
    files: &mut F,
    net: &mut D,
    tls: Option<alloc::boxed::Box<dyn TlsEngine>>,
    board: &BoardInfo,
) -> Stop<U::Error>
where
    U: Read + Write,
    N: Nvm,
    F: Nvm,
    D: NetDriver,
{
    run_with(uart, nvm, files, net, tls, board, RebootBy::Runner).await
}

/// As [`run`], but a reboot ends it with [`Stop::Reboot`] once the core's last output is
/// written: for a board that resets its CPU (what it keeps across the reset is what a real
/// module keeps: its NVM).
pub async fn run_to_reboot<U, N, F, D>(
    uart: &mut U,
    nvm: &mut N,
    files: &mut F,
    net: &mut D,
    tls: Option<alloc::boxed::Box<dyn TlsEngine>>,
    board: &BoardInfo,
) -> Stop<U::Error>
where
    U: Read + Write,
    N: Nvm,
    F: Nvm,
    D: NetDriver,
{
    run_with(uart, nvm, files, net, tls, board, RebootBy::Platform).await
}

async fn run_with<U, N, F, D>(
    uart: &mut U,
    nvm: &mut N,
    files: &mut F,
    net: &mut D,
    mut tls: Option<alloc::boxed::Box<dyn TlsEngine>>,
    board: &BoardInfo,
    reboot_by: RebootBy,
) -> Stop<U::Error>
where
    U: Read + Write,
    N: Nvm,
    F: Nvm,
    D: NetDriver,
{
    let mut buf = [0u8; 256];
    loop {
        // A fresh core knows nothing of the network: take the platform's down too.
        net.reset();
        let (image, fault) = match nvm.load() {
            Ok(image) => (image, None),
            Err(e) => (None, Some(format!("{e}"))),
        };
        let (stored_files, files_fault) = match files.load() {
            Ok(image) => (image, None),
            Err(e) => (None, Some(format!("{e}"))),
        };
        let stored = Stored {
            nvm: image.as_deref(),
            nvm_fault: fault.as_deref(),
            files: stored_files.as_deref(),
            files_fault: files_fault.as_deref(),
        };
        let mut module = Module::boot_from(board.clone(), stored, now());
        if let Some(engine) = tls.take() {
            module.set_tls(engine);
        }
        'session: loop {
            loop {
                // Network requests go to the driver before the output is written: they never
                // block, and a peer that acts on the output (connects to the HTTP server
                // once `network_up` answers `Success`) must find them under way, its
                // listening socket ready.
                let action = loop {
                    match module.next_action() {
                        Some(Action::Net(req)) => net.request(req),
                        other => break other,
                    }
                };
                let out = module.take_output();
                if !out.is_empty()
                    && let Err(e) = uart.write_all(&out).await
                {
                    return Stop::Uart(e);
                }
                let Some(action) = action else { break };
                match action {
                    Action::StoreNvm(image) => {
                        let result = nvm.store(&image).map_err(|e| format!("{e}"));
                        module
                            .nvm_stored(result.as_ref().map(|_| ()).map_err(|e| e.as_str()), now());
                    }
                    Action::StoreFiles(image) => {
                        let result = files.store(&image).map_err(|e| format!("{e}"));
                        let result = result.as_ref().map(|_| ()).map_err(|e| e.as_str());
                        module.files_stored(result, now());
                    }
                    Action::Reboot => {
                        let out = module.take_output();
                        if let Err(e) = uart.write_all(&out).await {
                            return Stop::Uart(e);
                        }
                        if let Err(e) = uart.flush().await {
                            return Stop::Uart(e);
                        }
                        if reboot_by == RebootBy::Platform {
                            return Stop::Reboot;
                        }
                        tls = module.take_tls();
                        break 'session;
                    }
                    Action::Net(req) => net.request(req),
                    Action::FactoryReset => {
                        // A failed erase still reboots; the next boot reports what it finds.
                        let _ = nvm.erase();
                        let _ = files.erase();
                        let out = module.take_output();
                        if let Err(e) = uart.write_all(&out).await {
                            return Stop::Uart(e);
                        }
                        if reboot_by == RebootBy::Platform {
                            return Stop::Reboot;
                        }
                        tls = module.take_tls();
                        break 'session;
                    }
                }
            }
            let due = module.poll_at();
            let timer = async move {
                match due {
                    Some(at) => {
                        embassy_time::Timer::at(embassy_time::Instant::from_millis(at.as_millis()))
                            .await;
                    }
                    None => core::future::pending::<()>().await,
                }
            };
            match select3(uart.read(&mut buf), net.next_event(), timer).await {
                Either3::First(Ok(0)) => return Stop::Closed,
                Either3::First(Ok(n)) => module.feed(&buf[..n], now()),
                Either3::First(Err(e)) => return Stop::Uart(e),
                Either3::Second(event) => module.net_event(event, now()),
                Either3::Third(()) => module.tick(now()),
            }
        }
    }
}
