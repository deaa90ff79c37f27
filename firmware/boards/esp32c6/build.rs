//! Links the image with esp-hal's linker scripts (`linkall.x` pulls in the chip's memory map,
//! the ROM functions and esp-rtos's sections), so the board's link setup lives in this crate
//! (no workspace `.cargo/config`). Only for the board's own target.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "riscv32imac-unknown-none-elf" {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Tlinkall.x");
}
