//! The Gecko OS module firmware on an ESP32-C6 (RISC-V, `riscv32imac-unknown-none-elf`): the
//! same core and runner as the simulated module, on a chip with a Wi-Fi radio.
//!
//! - Console: UART0 at 115200 8N1 (TX GPIO16, RX GPIO17), interrupt driven (esp-hal's async
//!   UART, [`console`]: line faults drop bytes, never end the console). On the DevKitC-1 it
//!   is the USB-UART bridge's port.
//! - Clock and executor: esp-rtos (a TIMG0 timer; embassy's executor on its main thread).
//! - Settings and files: [`SlotNvm`]s on the flash partitions `gecko_set` and `gecko_fs`
//!   ([`flash`], `partitions.csv`), found by label in the partition table at boot.
//! - Network: the Wi-Fi station through esp-radio ([`radio`]: scan, join, leave, link loss,
//!   a `gecko_net::Radio`) and `gecko-net` on the station interface (DHCP, DNS, ping, a
//!   small socket pool: the `small-pool` feature), as on the simulated module.
//! - TLS: `gecko-tls` (mbedTLS), seeded from the hardware RNG.
//! - MAC: the station address from eFuse. Random seed: the hardware RNG.
//! - `reboot` and `factory_reset` reset the chip once the module's last output is written.
//!
//! Build it with `cargo xtask build-board esp32c6`, flash it with
//! `cargo xtask flash --rig rigs/esp32c6.toml`. On any other target than the board's this
//! binary is a stub that says so (the workspace builds and tests on the host).

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
extern crate alloc;
// `strstr` and `strchr` for mbedTLS.
#[cfg(target_os = "none")]
use tinyrlibc as _;

#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod flash;
#[cfg(target_os = "none")]
mod hw;
#[cfg(target_os = "none")]
mod radio;

#[cfg(target_os = "none")]
mod board {
    use crate::{console, flash, hw, radio};
    use alloc::boxed::Box;
    use alloc::format;
    use alloc::rc::Rc;
    use alloc::string::ToString;
    use core::cell::RefCell;
    use embassy_executor::Spawner;
    use embassy_futures::join::join;
    use embassy_futures::select::{Either, select};
    use embassy_net::{Config as NetConfig, StackResources};
    use esp_hal::clock::CpuClock;
    use esp_hal::efuse::{InterfaceMacAddress, interface_mac_address};
    use esp_hal::rng::Rng;
    use esp_hal::timer::timg::TimerGroup;
    use esp_hal::uart::{Config as UartConfig, Uart};
    use esp_radio::wifi::{Interface, WifiController};
    use esp_storage::FlashStorage;
    use gecko_core::module::BoardInfo;
    use gecko_core::platform::SlotNvm;

    /// The console's baud rate (8N1).
    pub const BAUD: u32 = 115_200;

    fn board_info(mac: [u8; 6]) -> BoardInfo {
        BoardInfo {
            product: "Gecko OS".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            build: "esp32c6".to_string(),
            platform: "ESP32-C6".to_string(),
            board: "ESP32-C6".to_string(),
            mac,
        }
    }

    /// Stops with a message when the board cannot start (the panic handler prints it).
    fn fatal(what: &str, detail: impl core::fmt::Display) -> ! {
        panic!("{what}: {detail}")
    }

    #[esp_rtos::main]
    async fn main(spawner: Spawner) -> ! {
        let p = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
        hw::init_heap();
        let timg0 = TimerGroup::new(p.TIMG0);
        esp_rtos::start(timg0.timer0, p.FROM_CPU_INTR0);

        let config = UartConfig::default().with_baudrate(BAUD);
        let mut console = match Uart::new(p.UART0, config) {
            Ok(uart) => {
                console::Console::new(uart.with_tx(p.GPIO16).with_rx(p.GPIO17).into_async())
            }
            Err(e) => fatal("UART0", format!("{e:?}")),
        };

        let storage = Rc::new(RefCell::new(FlashStorage::new(p.FLASH)));
        let (settings, files) = match flash::partitions(storage) {
            Ok(found) => found,
            Err(e) => fatal("settings and files", e),
        };
        let mut nvm = SlotNvm::new(settings);
        let mut files = SlotNvm::new(files);

        let mac: [u8; 6] =
            match interface_mac_address(InterfaceMacAddress::Station).as_bytes().try_into() {
                Ok(mac) => mac,
                Err(e) => fatal("the station MAC address", format!("{e:?}")),
            };
        let wifi = match WifiController::new(p.WIFI, Default::default()) {
            Ok(wifi) => wifi,
            Err(e) => fatal("Wi-Fi", format!("{e:?}")),
        };
        let rng = Rng::new();
        let seed = u64::from(rng.random()) << 32 | u64::from(rng.random());
        let (esp_radio, radio_shared) = radio::EspRadio::new();
        spawn(spawner, "the Wi-Fi controller", radio::controller(wifi, radio_shared));
        let shared = gecko_net::Shared::new_ref(esp_radio);
        let link = gecko_net::GatedLink::new(Interface::station(), shared.clone(), mac);
        let resources = Box::leak(Box::new(StackResources::<{ gecko_net::STACK_SOCKETS }>::new()));
        let (stack, mut stack_runner) =
            embassy_net::new(link, NetConfig::default(), resources, seed);
        let mut net = gecko_net::StackNet::new(shared.clone(), Some(stack))
            .with_dhcp_hostname("gecko-esp32c6");
        // The job loops before the stack's runner: a listen and a client's SYN that come in
        // one poll find the socket listening.
        let background = join(gecko_net::run_jobs(stack, &shared), stack_runner.run());
        let board = board_info(mac);
        // The TLS engine draws its DRBG seeds from the hardware RNG (true random while the
        // radio runs).
        let tls: Box<dyn gecko_core::tls::TlsEngine> =
            Box::new(gecko_tls::MbedTls::new(Box::new(move |buf: &mut [u8]| rng.read(buf))));
        let running = gecko_runner::run_to_reboot(
            &mut console,
            &mut nvm,
            &mut files,
            &mut net,
            Some(tls),
            &board,
        );
        let stop = match select(running, background).await {
            Either::First(stop) => stop,
            Either::Second(_) => fatal("the network loops ended", "they never do"),
        };
        match stop {
            // A reboot resets the chip; what the module keeps is in flash.
            gecko_runner::Stop::Reboot => {
                console.flush().await;
                esp_hal::system::software_reset()
            }
            other => fatal("the runner stopped", format!("{other:?}")),
        }
    }

    fn spawn<S>(
        spawner: Spawner,
        what: &str,
        task: Result<embassy_executor::SpawnToken<S>, embassy_executor::SpawnError>,
    ) {
        match task {
            Ok(task) => spawner.spawn(task),
            Err(e) => fatal("cannot start a task", format!("{what}: {e:?}")),
        }
    }

    /// Prints the panic on the console, then halts (the harness sees the message and a
    /// console that no longer answers).
    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        critical_section::with(|_| {
            let text = format!("\r\npanic: {info}\r\n");
            hw::write_panic(text.as_bytes());
        });
        loop {
            core::hint::spin_loop();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "gecko-board-esp32c6 runs only on its board: build it with \
         `cargo xtask build-board esp32c6` (target riscv32imac-unknown-none-elf)"
    );
    std::process::exit(2);
}
