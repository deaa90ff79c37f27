//! `hil flash`, `hil probes` and `hil run --flash` as a user runs them, on a machine with no
//! debug probe attached: every failure says what is missing, where, and nothing hangs.

use std::path::Path;
use std::process::Command;

fn hil(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("hil runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A hardware rig with a probe and a firmware image next to it.
fn bench_rig(dir: &Path, probe: &str) {
    std::fs::write(dir.join("fw.elf"), b"\x7fELF not really").expect("image");
    let rig = format!(
        "name = \"bench\"\n[dut]\nkind = \"hardware\"\n[serial]\nport = \"/dev/null-no-module\"\n{probe}"
    );
    std::fs::write(dir.join("bench.toml"), rig).expect("rig");
}

#[test]
fn probes_lists_none_without_hardware() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, text) = hil(&["probes"], dir.path());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("no debug probes attached") || !text.trim().is_empty(), "{text}");
}

#[test]
fn flash_without_a_probe_attached_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    bench_rig(
        dir.path(),
        "[probe]\nchip = \"nRF52840_xxAA\"\nselector = \"1366:1015:000683\"\nfirmware = \"fw.elf\"\n",
    );
    let (code, text) = hil(&["flash", "--rig", "bench.toml"], dir.path());
    assert_ne!(code, 0);
    assert!(text.contains("no debug probe matching `1366:1015:000683` is attached"), "{text}");
    // A run that should flash first stops there, before touching the port.
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let specs = specs.to_str().expect("utf-8 path");
    let (code, text) =
        hil(&["run", "--rig", "bench.toml", "--flash", "--specs", specs], dir.path());
    assert_ne!(code, 0);
    assert!(text.contains("no debug probe matching"), "{text}");
    assert!(!text.contains("null-no-module"), "the port was never opened: {text}");
}

#[test]
fn flash_names_what_is_missing_from_the_rig() {
    let dir = tempfile::tempdir().expect("tempdir");
    bench_rig(dir.path(), "[probe]\nchip = \"nRF52840_xxAA\"\n");
    let (code, text) = hil(&["flash", "--rig", "bench.toml"], dir.path());
    assert_ne!(code, 0);
    assert!(text.contains("no firmware to flash"), "{text}");
    let (code, text) =
        hil(&["flash", "--rig", "bench.toml", "--firmware", "missing.elf"], dir.path());
    assert_ne!(code, 0);
    assert!(text.contains("missing.elf does not exist"), "{text}");
}

#[test]
fn a_rig_with_an_unknown_chip_is_refused_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    bench_rig(dir.path(), "[probe]\nchip = \"nRF52840_typo\"\n");
    let (code, text) = hil(&["flash", "--rig", "bench.toml"], dir.path());
    assert_ne!(code, 0);
    assert!(text.contains("bench.toml:7") && text.contains("not a chip probe-rs knows"), "{text}");
}
