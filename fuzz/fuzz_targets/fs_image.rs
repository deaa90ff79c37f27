//! Arbitrary bytes as a stored file system image.
//!
//! Checked:
//! * `FileSystem::decode` never panics;
//! * when it accepts an image, encoding the file system gives the same bytes (the encoding is
//!   canonical) and every file keeps the limits;
//! * booting a module from any image never panics, and an image `decode` refuses boots with
//!   no files.
#![no_main]

use gecko_firmware::fs::{CAPACITY, FileSystem, MAX_FILES};
use gecko_firmware::time::Instant;
use gecko_firmware::{BoardInfo, Module};
use libfuzzer_sys::fuzz_target;

fn board() -> BoardInfo {
    BoardInfo {
        product: "Gecko OS".into(),
        version: "4.2.0".into(),
        build: "fuzz".into(),
        platform: "SIM".into(),
        board: "SIM-01".into(),
        mac: [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01],
    }
}

fuzz_target!(|data: &[u8]| {
    let decoded = FileSystem::decode(data);
    if let Ok(fs) = &decoded {
        assert_eq!(fs.encode(), data, "an accepted image is not canonical");
        assert!(fs.used() <= CAPACITY && fs.files().count() <= MAX_FILES);
    }
    let module = Module::boot_with_files(board(), None, Some(data), Instant::ZERO);
    if decoded.is_err() {
        assert_eq!(module.files().files().count(), 0, "a refused image left files");
    }
});
