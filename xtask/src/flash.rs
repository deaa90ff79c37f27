//! `cargo xtask flash`: writes a board image onto a hardware rig's module through its debug
//! probe (probe-rs as a library, with the ESP32 family from `probe-rs-espressif`), resets it,
//! and waits for the module's `[Ready]` on the rig's console.
//!
//! Only in the xtask built with the `flash` feature: `cargo xtask flash` builds the board
//! image, then runs this xtask (its own target folder, `target/xtask-flash`) with
//! `--image`, so the everyday xtask build leaves probe-rs's plugin and its defaults out.

use anyhow::{Context, Result, bail};
use gecko_hil::channel::RawLink;
use gecko_hil::channel::serial::{SerialChannel, SerialSettings};
use gecko_hil::probe::ProbeSpec;
use gecko_hil::rig::Rig;
use probe_rs::flashing::{DownloadOptions, ElfLoader, ElfOptions, download_file_with_options};
use probe_rs::probe::DebugProbeSelector;
use probe_rs::probe::list::Lister;
use probe_rs::{Permissions, Session};
use probe_rs_espressif::image_format::IdfLoader;
use std::path::Path;
use std::time::Duration;

/// What the module prints once it has booted.
pub const READY: &str = "[Ready]";

/// The data partitions the ESP32-C6 board keeps its settings and files in (the labels
/// `firmware/boards/esp32c6/src/flash.rs` looks for at boot).
const BOARD_PARTITIONS: [&str; 2] = ["gecko_set", "gecko_fs"];
/// A flash sector: each partition holds two slots that start on one.
const SECTOR: u32 = 4096;

/// Checks a partition table (ESP-IDF CSV) before it is flashed: it parses, its partitions
/// do not overlap, and the board's data partitions are there, each splitting into two
/// sector-aligned slots (the board refuses to start otherwise).
pub fn check_partitions(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the partition table {}", path.display()))?;
    // The parser panics on a data subtype it has no name for (0x40): an error here instead.
    let parsed = std::panic::catch_unwind(|| esp_idf_part::PartitionTable::try_from_str(text));
    let Ok(parsed) = parsed else {
        bail!(
            "partition table {}: a subtype the flashing tools cannot read (use a named one, \
             e.g. `undefined` for application data)",
            path.display()
        );
    };
    let table = parsed.with_context(|| format!("partition table {}", path.display()))?;
    table.validate().with_context(|| format!("partition table {}", path.display()))?;
    for label in BOARD_PARTITIONS {
        let Some(p) = table.find(label) else {
            bail!("partition table {} has no `{label}` partition", path.display());
        };
        if p.offset() % SECTOR != 0 || p.size() % (2 * SECTOR) != 0 || p.size() == 0 {
            bail!(
                "partition `{label}` of {} ({:#x}, {:#x} bytes) does not split into two slots \
                 on 4 KiB sectors",
                path.display(),
                p.offset(),
                p.size()
            );
        }
    }
    Ok(())
}

/// The rig's probe: one attached probe matching the selector, or an error that says what was
/// looked for and what is attached.
fn find_probe(spec: &ProbeSpec) -> Result<probe_rs::probe::DebugProbeInfo> {
    probe_rs_espressif::register_plugin();
    let lister = Lister::new();
    let selector = match &spec.selector {
        Some(s) => Some(
            s.parse::<DebugProbeSelector>()
                .with_context(|| format!("probe selector `{s}` is not VID:PID[:serial]"))?,
        ),
        None => None,
    };
    let wanted = spec.selector.clone().unwrap_or_else(|| "any probe".into());
    let mut found = lister.list(selector.as_ref());
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let attached: Vec<String> = lister.list_all().iter().map(ToString::to_string).collect();
            let attached = if attached.is_empty() { "none".into() } else { attached.join("; ") };
            bail!(
                "no debug probe found (looked for {wanted}; attached probes: {attached}). Is the \
                 board plugged in through its USB-JTAG port, and may this user open it (udev \
                 rules for 303a:1001)?"
            )
        }
        _ => {
            let names: Vec<String> = found.iter().map(ToString::to_string).collect();
            bail!(
                "several debug probes match {wanted} ({}); name one with `selector` in the \
                 rig's [probe]",
                names.join("; ")
            )
        }
    }
}

/// Flashes `image` (an ELF) with the partition table `partitions` (ESP-IDF CSV, for ESP
/// chips) and resets the chip. Returns the probe used.
fn write_image(spec: &ProbeSpec, image: &Path, partitions: Option<&Path>) -> Result<String> {
    let info = find_probe(spec)?;
    let name = info.to_string();
    let probe = info.open().with_context(|| format!("cannot open probe {name}"))?;
    let mut session: Session = probe
        .attach(spec.chip.as_str(), Permissions::default())
        .with_context(|| format!("probe {name} cannot attach to a `{}`", spec.chip))?;
    let options = DownloadOptions::default();
    let written = match partitions {
        Some(table) => download_file_with_options(
            &mut session,
            image,
            IdfLoader {
                bootloader: None,
                partition_table: Some(table.to_path_buf()),
                target_app_partition: None,
                flash_mode: None,
                flash_frequency: None,
            },
            options,
        ),
        None => download_file_with_options(
            &mut session,
            image,
            ElfLoader(ElfOptions::default()),
            options,
        ),
    };
    written.with_context(|| format!("flashing {}", image.display()))?;
    session
        .core(0)
        .and_then(|mut core| core.reset())
        .with_context(|| format!("resetting the `{}` after flashing", spec.chip))?;
    Ok(name)
}

/// Opens the rig's console at `port`, flashes and resets the module, and waits up to `wait`
/// for [`READY`] (the console is opened first, so the boot banner is not missed).
pub fn flash_and_wait(
    rig: &Rig,
    port: &Path,
    image: &Path,
    partitions: Option<&Path>,
    wait: Duration,
) -> Result<()> {
    let spec = rig
        .probe
        .as_ref()
        .with_context(|| format!("rig {} has no [probe] to flash through", rig.path.display()))?;
    if !image.exists() {
        bail!("firmware image {} does not exist", image.display());
    }
    if let Some(table) = partitions {
        check_partitions(table)?;
    }
    let mut console = SerialChannel::open(&SerialSettings {
        path: port.to_path_buf(),
        baud: rig.baud,
        flow_control: rig.flow_control,
    })
    .with_context(|| format!("cannot open the console of rig {}", rig.path.display()))?;
    eprintln!("==> flashing {} onto the `{}`", image.display(), spec.chip);
    let probe = write_image(spec, image, partitions)?;
    eprintln!("==> flashed and reset through {probe}; waiting for {READY} on {}", port.display());
    let mut seen = Vec::new();
    let got = console.read_raw(
        &mut |bytes| {
            seen.extend_from_slice(bytes);
            String::from_utf8_lossy(&seen).contains(READY)
        },
        wait,
    );
    let text = String::from_utf8_lossy(&seen).into_owned();
    match got {
        Ok(_) if text.contains(READY) => {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                eprintln!("    {line}");
            }
            Ok(())
        }
        Ok(_) | Err(_) => {
            let last: String =
                text.chars().rev().take(400).collect::<Vec<_>>().into_iter().rev().collect();
            bail!(
                "the module did not print {READY} on {} within {} s after the reset (last \
                 output: {:?}){}",
                port.display(),
                wait.as_secs(),
                last,
                got.err().map(|e| format!("; {e}")).unwrap_or_default()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_boards_partition_table_holds_its_settings_and_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        check_partitions(&root.join("firmware/boards/esp32c6/partitions.csv")).expect("valid");
        let dir = tempfile::tempdir().expect("temp dir");
        let table = dir.path().join("partitions.csv");
        let head = "nvs, data, nvs, 0x9000, 0x6000\nfactory, app, factory, 0x10000, 0x1f0000\n";
        let cases = [
            ("gecko_set, data, undefined, 0x200000, 0x10000\n", "has no `gecko_fs` partition"),
            (
                "gecko_set, data, undefined, 0x200000, 0x10000\n\
                 gecko_fs, data, undefined, 0x210000, 0x3000\n",
                "does not split into two slots",
            ),
            // Overlaps the app partition.
            (
                "gecko_set, data, undefined, 0x100000, 0x10000\n\
                 gecko_fs, data, undefined, 0x210000, 0x2000\n",
                "overlapping each other: 'factory' and 'gecko_set'",
            ),
            (
                "gecko_set, data, 0x40, 0x200000, 0x10000\n\
                 gecko_fs, data, undefined, 0x210000, 0x2000\n",
                "a subtype the flashing tools cannot read",
            ),
        ];
        for (tail, want) in cases {
            std::fs::write(&table, format!("{head}{tail}")).expect("table");
            let e = format!("{:#}", check_partitions(&table).expect_err(want));
            assert!(e.contains(want), "{tail}: {e}");
        }
    }

    /// The flash path on a machine without a debug probe: the console (a pty) opens, then
    /// the probe lookup fails with what it looked for and what is attached.
    #[test]
    fn flashing_without_a_probe_says_what_was_looked_for() {
        let pty = nix::pty::openpty(None, None).expect("a pty");
        let port = nix::unistd::ttyname(pty.slave.as_fd()).expect("the pty's name");
        let dir = tempfile::tempdir().expect("temp dir");
        let rig_path = dir.path().join("esp32c6.toml");
        std::fs::write(
            &rig_path,
            format!(
                "name = \"esp32c6\"\n[dut]\nkind = \"hardware\"\n[serial]\nport = \"{}\"\n\
                 [probe]\nchip = \"esp32c6\"\nselector = \"303a:1001:F0:F5:BD:00:00:01\"\n",
                port.display()
            ),
        )
        .expect("rig file");
        let rig = gecko_hil::rig::load(&rig_path).expect("a valid rig");
        let image = dir.path().join("image.elf");
        std::fs::write(&image, b"not flashed").expect("image");
        let err = flash_and_wait(&rig, &port, &image, None, Duration::from_secs(1))
            .expect_err("no probe is attached here");
        let text = format!("{err:#}");
        assert!(
            text.starts_with(
                "no debug probe found (looked for 303a:1001:F0:F5:BD:00:00:01; attached probes: "
            ),
            "{text}"
        );
        assert!(text.contains("Is the board plugged in"), "{text}");
    }
}
