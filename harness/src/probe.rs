//! A hardware rig's debug probe, through probe-rs: flash the module's firmware and reset it,
//! before a run (`hil run --flash`) or on its own (`hil flash`); list the probes attached
//! (`hil probes`).
//!
//! The rig names the chip (checked against probe-rs's built-in targets when the rig loads),
//! optionally which probe (`VID:PID[:serial]`, when several are attached) and the firmware
//! image (ELF, or Intel HEX by its `.hex` extension). CMSIS-DAP v1 (HID) probes are not
//! supported: that backend needs a system HID library this build leaves out; ST-Link, J-Link,
//! CMSIS-DAP v2, FTDI and ESP USB-JTAG probes work.

use probe_rs::flashing::{ElfLoader, ElfOptions, FileDownloadError, HexLoader, download_file};
use probe_rs::probe::DebugProbeSelector;
use probe_rs::probe::list::Lister;
use probe_rs::{Permissions, Session};
use std::path::{Path, PathBuf};

/// What went wrong with the probe: always an infrastructure problem, never the module's.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no debug probe {wanted} is attached (found: {found})")]
    NotFound { wanted: String, found: String },
    #[error("several debug probes are attached ({found}); name one with `selector` in [probe]")]
    Ambiguous { found: String },
    #[error("cannot open probe {probe}: {message}")]
    Open { probe: String, message: String },
    #[error("probe {probe} cannot attach to a `{chip}`: {message}")]
    Attach { probe: String, chip: String, message: String },
    #[error("flashing {firmware}: {message}")]
    Flash { firmware: String, message: String },
    #[error("resetting the `{chip}` after flashing: {message}")]
    Reset { chip: String, message: String },
    #[error("firmware image {0} does not exist")]
    NoFirmware(String),
    #[error(
        "`{chip}` is flashed with `cargo xtask flash --rig <rig>` (this build of hil leaves out \
         probe-rs's support for it)"
    )]
    ElsewhereOnly { chip: String },
}

/// The `[probe]` section of a rig, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    /// A probe-rs target name (`EFM32GG11B820F2048GL192`).
    pub chip: String,
    /// Which probe, when several are attached (`VID:PID[:serial]`, hex ids).
    pub selector: Option<String>,
    /// The image `hil flash` writes when none is given (relative paths are from the rig
    /// file's folder).
    pub firmware: Option<PathBuf>,
}

/// A `[probe]` value of a rig file that cannot be right (the rig loader adds file and line).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeSpecError {
    #[error("`{chip}` is not a chip probe-rs knows{}", close_names(close))]
    UnknownChip {
        chip: String,
        /// Known chips with a similar name.
        close: Vec<String>,
    },
    #[error("`{selector}` is not VID:PID[:serial] ({reason})")]
    BadSelector { selector: String, reason: String },
}

fn close_names(close: &[String]) -> String {
    if close.is_empty() { String::new() } else { format!(" (close: {})", close.join(", ")) }
}

/// Chips whose probe-rs support is a plugin this build leaves out: the ESP32 family lives in
/// `probe-rs-espressif`, which needs probe-rs's default features (a system HID library).
/// Rigs may name them; `cargo xtask flash` flashes them.
pub const PLUGIN_CHIPS: [&str; 1] = ["esp32c6"];

/// Whether `chip` is one of [`PLUGIN_CHIPS`] (names compared ignoring case).
pub fn is_plugin_chip(chip: &str) -> bool {
    PLUGIN_CHIPS.iter().any(|c| c.eq_ignore_ascii_case(chip))
}

/// Checks a chip name against probe-rs's built-in targets (and [`PLUGIN_CHIPS`]); the error
/// suggests close names.
pub fn check_chip(chip: &str) -> Result<(), ProbeSpecError> {
    if is_plugin_chip(chip) {
        return Ok(());
    }
    let registry = probe_rs::config::Registry::from_builtin_families();
    if registry.get_target_by_name(chip).is_ok() {
        return Ok(());
    }
    let stem: String = chip.chars().take(6).collect();
    let close: Vec<String> = registry.search_chips(&stem).into_iter().take(5).collect();
    Err(ProbeSpecError::UnknownChip { chip: chip.to_string(), close })
}

/// Checks a probe selector (`VID:PID` or `VID:PID:serial`).
pub fn check_selector(selector: &str) -> Result<(), ProbeSpecError> {
    selector.parse::<DebugProbeSelector>().map(|_| ()).map_err(|e| ProbeSpecError::BadSelector {
        selector: selector.to_string(),
        reason: e.to_string(),
    })
}

/// The debug probes attached now, one line each.
pub fn list() -> Vec<String> {
    Lister::new().list_all().iter().map(ToString::to_string).collect()
}

fn found(probes: &[String]) -> String {
    if probes.is_empty() { "none".into() } else { probes.join("; ") }
}

/// Flashes `firmware` onto the rig's module through its probe and resets the core, so the
/// module boots the new image. Returns the probe used.
pub fn flash(spec: &ProbeSpec, firmware: &Path) -> Result<String, ProbeError> {
    if is_plugin_chip(&spec.chip) {
        return Err(ProbeError::ElsewhereOnly { chip: spec.chip.clone() });
    }
    if !firmware.exists() {
        return Err(ProbeError::NoFirmware(firmware.display().to_string()));
    }
    let lister = Lister::new();
    let selector = match &spec.selector {
        Some(s) => Some(s.parse::<DebugProbeSelector>().map_err(|e| ProbeError::NotFound {
            wanted: format!("matching `{s}` ({e})"),
            found: found(&list()),
        })?),
        None => None,
    };
    let probes = lister.list(selector.as_ref());
    let names: Vec<String> = probes.iter().map(ToString::to_string).collect();
    let info = match (probes.as_slice(), &spec.selector) {
        ([one], _) => one,
        ([], wanted) => {
            let wanted = wanted.as_ref().map_or("at all".into(), |s| format!("matching `{s}`"));
            return Err(ProbeError::NotFound { wanted, found: found(&list()) });
        }
        (_, _) => return Err(ProbeError::Ambiguous { found: names.join("; ") }),
    };
    let name = info.to_string();
    let probe = info
        .open()
        .map_err(|e| ProbeError::Open { probe: name.clone(), message: e.to_string() })?;
    let mut session: Session =
        probe.attach(spec.chip.as_str(), Permissions::default()).map_err(|e| {
            ProbeError::Attach {
                probe: name.clone(),
                chip: spec.chip.clone(),
                message: e.to_string(),
            }
        })?;
    let is_hex = firmware.extension().is_some_and(|e| e.eq_ignore_ascii_case("hex"));
    let result: Result<(), FileDownloadError> = if is_hex {
        download_file(&mut session, firmware, HexLoader)
    } else {
        download_file(&mut session, firmware, ElfLoader(ElfOptions::default()))
    };
    result.map_err(|e| ProbeError::Flash {
        firmware: firmware.display().to_string(),
        message: e.to_string(),
    })?;
    let reset = |message: String| ProbeError::Reset { chip: spec.chip.clone(), message };
    session.core(0).map_err(|e| reset(e.to_string()))?.reset().map_err(|e| reset(e.to_string()))?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chips_are_checked_against_probe_rs_targets() {
        assert_eq!(check_chip("nRF52840_xxAA"), Ok(()));
        let e = check_chip("nRF52840_typo").expect_err("unknown").to_string();
        assert!(e.contains("not a chip probe-rs knows") && e.contains("nRF52840"), "{e}");
        let e = check_chip("zz-no-such").expect_err("unknown");
        assert_eq!(e.to_string(), "`zz-no-such` is not a chip probe-rs knows");
    }

    #[test]
    fn plugin_chips_are_accepted_but_flashed_elsewhere() {
        assert_eq!(check_chip("esp32c6"), Ok(()));
        assert_eq!(check_chip("ESP32C6"), Ok(()));
        let spec = ProbeSpec { chip: "esp32c6".into(), selector: None, firmware: None };
        let e = flash(&spec, Path::new("/no/such/image")).expect_err("not here").to_string();
        assert!(e.contains("cargo xtask flash --rig"), "{e}");
    }

    #[test]
    fn selectors_are_vid_pid_and_an_optional_serial() {
        assert_eq!(check_selector("0483:374b"), Ok(()));
        assert_eq!(check_selector("0483:374b:066DFF"), Ok(()));
        assert!(check_selector("stlink").is_err());
    }

    #[test]
    fn flashing_without_a_probe_says_what_is_missing() {
        // No probe is attached on a machine without debug hardware; with one, the image does
        // not exist, which is checked first.
        let spec = ProbeSpec {
            chip: "nRF52840_xxAA".into(),
            selector: Some("1366:1015:000683".into()),
            firmware: None,
        };
        let e = flash(&spec, Path::new("/no/such/firmware.elf")).expect_err("no image");
        assert!(matches!(e, ProbeError::NoFirmware(_)), "{e}");
        let image = tempfile::NamedTempFile::new().expect("temp file");
        let e = flash(&spec, image.path()).expect_err("no such probe here");
        let text = e.to_string();
        assert!(text.contains("matching `1366:1015:000683`"), "{text}");
    }
}
