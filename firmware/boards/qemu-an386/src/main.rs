//! The Gecko OS module firmware on QEMU's `mps2-an386` machine (Cortex-M4F,
//! `thumbv7em-none-eabihf`): the same core and runner as the simulated module, on a board.
//!
//! - Console: the CMSDK UART0, interrupt-driven ([`uart`]); QEMU connects it to a pty
//!   (`-serial pty`).
//! - Clock: SysTick at 1 kHz drives `embassy-time` ([`clock`]).
//! - Executor: embassy's raw executor, polled by the board's own loop, which sleeps with `WFI`
//!   between events ([`hw::run`]; QEMU would spin on the thread executor's `WFE`).
//! - Settings and files: [`SlotNvm`]s on RAM that a CPU reset leaves alone
//!   ([`hw::retained`]): they survive a `reboot` and a reset of the machine (QEMU's
//!   `system_reset`, how the harness power-cycles the board), not a restart of QEMU.
//! - `reboot` and `factory_reset` reset the CPU (`SYSRESETREQ`) once the module's last
//!   output is on the wire.
//! - Network: none ([`NoNet`]); requests go unanswered and the core's timers end them, as on
//!   a module without a link. The Ethernet controller's driver (`lan9118`) is wired to its
//!   interrupt ([`hw::ETH`]); the `eth-selftest` feature builds an image that checks it
//!   with an ARP exchange before the module starts.
//!
//! Build it with `cargo xtask build-board qemu-an386`. On any other target than the board's
//! this binary is a stub that says so (the workspace builds and tests on the host).

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod clock;
#[cfg(target_os = "none")]
mod hw;
#[cfg(all(target_os = "none", feature = "eth-selftest"))]
mod selftest;
#[cfg(target_os = "none")]
mod uart;

#[cfg(target_os = "none")]
mod board {
    use crate::{clock, hw, uart};
    use alloc::boxed::Box;
    use alloc::string::ToString;
    use core::fmt::Write as _;
    use cortex_m_rt::{entry, exception};
    use gecko_core::module::BoardInfo;
    use gecko_core::platform::{NoNet, SlotNvm};

    /// What `version` and the boot banner name.
    fn board_info() -> BoardInfo {
        BoardInfo {
            product: "Gecko OS".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            build: "qemu".to_string(),
            platform: "MPS2-AN386".to_string(),
            board: "MPS2-AN386".to_string(),
            // Locally administered, distinct from the simulated module's default.
            mac: [0x02, 0x00, 0x5e, 0x10, 0x03, 0x86],
        }
    }

    #[entry]
    fn main() -> ! {
        hw::init_heap();
        let Some(p) = cortex_m::Peripherals::take() else {
            panic!("the core peripherals were taken before main");
        };
        clock::start(p.SYST);
        let console = uart::Uart::init(&uart::UART0);
        // The context is unused: the board has one executor and one pender (`hw::run`).
        let executor =
            Box::leak(Box::new(embassy_executor::raw::Executor::new(core::ptr::null_mut())));
        match module(console) {
            Ok(task) => executor.spawner().spawn(task),
            Err(e) => panic!("cannot start the module task: {e:?}"),
        }
        #[cfg(feature = "eth-selftest")]
        match crate::selftest::watch_link() {
            Ok(task) => executor.spawner().spawn(task),
            Err(e) => panic!("cannot start the link watcher: {e:?}"),
        }
        hw::run(executor)
    }

    /// Runs the module until the console fails (it cannot: UART0 has no errors), then
    /// halts.
    #[embassy_executor::task]
    async fn module(mut console: uart::Uart) {
        #[cfg(feature = "eth-selftest")]
        crate::selftest::run(board_info().mac).await;
        let (Some(settings), Some(files)) = (hw::retained(false), hw::retained(true)) else {
            panic!("the retained regions were taken twice");
        };
        let mut nvm = SlotNvm::new(settings);
        let mut files = SlotNvm::new(files);
        let mut net = NoNet;
        let stop = gecko_runner::run_to_reboot(
            &mut console,
            &mut nvm,
            &mut files,
            &mut net,
            &board_info(),
        )
        .await;
        match stop {
            // A reboot resets the CPU; what the module keeps is in the retained regions.
            gecko_runner::Stop::Reboot => {
                uart::flush_blocking();
                cortex_m::peripheral::SCB::sys_reset()
            }
            other => panic!("the runner stopped: {other:?}"),
        }
    }

    #[exception]
    fn SysTick() {
        clock::on_tick();
    }

    /// Prints the panic on the console, then halts (the harness sees the message and a
    /// console that no longer answers).
    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        cortex_m::interrupt::disable();
        struct Out;
        impl core::fmt::Write for Out {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                uart::write_blocking(s.as_bytes());
                Ok(())
            }
        }
        let _ = write!(Out, "\r\npanic: {info}\r\n");
        loop {
            cortex_m::asm::wfi();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "gecko-board-qemu-an386 runs only on its board: build it with \
         `cargo xtask build-board qemu-an386` (target thumbv7em-none-eabihf)"
    );
    std::process::exit(2);
}
