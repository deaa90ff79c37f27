//! The Gecko OS module firmware on QEMU's `mps2-an386` machine (Cortex-M4F,
//! `thumbv7em-none-eabihf`): the same core and runner as the simulated module, on a board.
//!
//! - Console: the CMSDK UART0, interrupt-driven ([`uart`]); QEMU connects it to a pty
//!   (`-serial pty`).
//! - Clock: SysTick at 1 kHz drives `embassy-time` ([`clock`]).
//! - TLS: the simulated module's engine (`gecko-tls`, mbedTLS built for the board). The
//!   board has no random source: its DRBG seeds come from the FPGA's cycle counter read at
//!   moments that follow the host's timing under QEMU ([`clock::entropy`]), good for a test
//!   vehicle and nothing else.
//! - Executor: embassy's raw executor, polled by the board's own loop, which sleeps with `WFI`
//!   between events ([`hw::run`]; QEMU would spin on the thread executor's `WFE`).
//! - Settings and files: [`SlotNvm`]s on RAM that a CPU reset leaves alone
//!   ([`hw::retained`]): they survive a `reboot` and a reset of the machine (QEMU's
//!   `system_reset`, how the harness power-cycles the board), not a restart of QEMU.
//! - `reboot` and `factory_reset` reset the CPU (`SYSRESETREQ`) once the module's last
//!   output is on the wire.
//! - Network: the board has no Wi-Fi. Its radio is a separate chip on UART1, spoken to in the
//!   radio link's line protocol ([`net`], `gecko-radio-link`): in a lab the harness attaches
//!   the simulated radio there as lab equipment (`gecko-sim radio`). Frames go through the
//!   LAN9118 Ethernet controller ([`hw::ETH`], driver `lan9118`), which the lab attaches to
//!   its network behind the same equipment; `gecko-net` (embassy-net) is the IP side, as on
//!   the simulated module. The `eth-selftest` feature builds an image that checks the
//!   controller with an ARP exchange before the module starts.
//!
//! Build it with `cargo xtask build-board qemu-an386`. On any other target than the board's
//! this binary is a stub that says so (the workspace builds and tests on the host).

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
extern crate alloc;
// `calloc`, `free`, `strstr` and `strchr` for mbedTLS.
#[cfg(target_os = "none")]
use tinyrlibc as _;

#[cfg(target_os = "none")]
mod clock;
#[cfg(target_os = "none")]
mod hw;
#[cfg(target_os = "none")]
mod net;
#[cfg(all(target_os = "none", feature = "eth-selftest"))]
mod selftest;
#[cfg(target_os = "none")]
mod uart;

#[cfg(target_os = "none")]
mod board {
    use crate::{clock, hw, net, uart};
    use alloc::boxed::Box;
    use alloc::string::ToString;
    use core::fmt::Write as _;
    use cortex_m_rt::{entry, exception};
    use embassy_futures::join::join4;
    use embassy_futures::select::{Either, select};
    use gecko_core::module::BoardInfo;
    use gecko_core::platform::SlotNvm;

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

    /// Runs the module, its network and the wire to its radio until the module asks for a
    /// reboot (the console cannot fail: UART0 has no errors), then resets the CPU.
    #[embassy_executor::task]
    async fn module(mut console: uart::Uart) {
        #[cfg(feature = "eth-selftest")]
        crate::selftest::run(board_info().mac).await;
        let (Some(settings), Some(files)) = (hw::retained(false), hw::retained(true)) else {
            panic!("the retained regions were taken twice");
        };
        let mut nvm = SlotNvm::new(settings);
        let mut files = SlotNvm::new(files);
        let board = board_info();
        // The radio on UART1 (QEMU's second `-serial`); without one attached, its requests
        // go unanswered and the core's timers end them.
        let radio_uart = uart::Uart::init(&uart::UART1);
        let shared = gecko_net::Shared::new_ref(net::LinkRadio::default());
        if let Err(e) = hw::ETH.init(board.mac) {
            panic!("the Ethernet controller does not answer: {e}");
        }
        hw::unmask(hw::Irq::Eth);
        let link = gecko_net::GatedLink::new(hw::ETH.device(), shared.clone(), board.mac);
        let mut resources = embassy_net::StackResources::<{ gecko_net::STACK_SOCKETS }>::new();
        let (stack, mut stack_runner) =
            embassy_net::new(link, embassy_net::Config::default(), &mut resources, seed(&board));
        let mut driver =
            gecko_net::StackNet::new(shared.clone(), Some(stack)).with_dhcp_hostname("gecko-an386");
        let tls: Box<dyn gecko_core::tls::TlsEngine> =
            Box::new(gecko_tls::MbedTls::new(Box::new(clock::entropy)));
        // The job loops before the stack's runner, as on the simulated module: a listen and a
        // client's SYN that come in one poll find the socket listening.
        let background = join4(
            gecko_net::run_jobs(stack, &shared),
            stack_runner.run(),
            net::read_radio(radio_uart.clone(), &shared),
            net::write_radio(radio_uart, &shared),
        );
        let running = gecko_runner::run_to_reboot(
            &mut console,
            &mut nvm,
            &mut files,
            &mut driver,
            Some(tls),
            &board,
        );
        let stop = match select(running, background).await {
            Either::First(stop) => stop,
            Either::Second(_) => unreachable!("the network loops never end"),
        };
        match stop {
            // A reboot resets the CPU; what the module keeps is in the retained regions.
            gecko_runner::Stop::Reboot => {
                uart::flush_blocking();
                cortex_m::peripheral::SCB::sys_reset()
            }
            other => panic!("the runner stopped: {other:?}"),
        }
    }

    /// The network stack's random seed (its ports and sequence numbers): the board has no
    /// random source, so the SysTick counter's phase, which follows the host's timing under
    /// QEMU and so differs from boot to boot, mixed with the MAC.
    fn seed(board: &BoardInfo) -> u64 {
        let mut seed = u64::from(clock::phase()) << 32 | u64::from(clock::phase());
        for (i, b) in board.mac.iter().enumerate() {
            seed ^= u64::from(*b) << (8 * i);
        }
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
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
