//! The firmware crates' modules form no import cycle: each module of a crate (standing for
//! its whole subtree) depends on its siblings in one direction only.

use std::path::Path;

fn assert_acyclic(crate_dir: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(crate_dir).join("src");
    let cycles = gecko_hil::modgraph::find_cycles(&src)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
    let text: Vec<String> = cycles.iter().map(ToString::to_string).collect();
    assert!(cycles.is_empty(), "{crate_dir}:\n{}", text.join("\n"));
}

#[test]
fn the_core_has_no_import_cycles() {
    assert_acyclic("core");
}

#[test]
fn the_runner_has_no_import_cycles() {
    assert_acyclic("runner");
}

#[test]
fn the_simulated_module_has_no_import_cycles() {
    assert_acyclic("sim");
}
