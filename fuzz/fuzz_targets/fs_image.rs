//! Arbitrary bytes as a stored file system image.
//!
//! Checked:
//! * `FileSystem::decode` never panics;
//! * when it accepts an image, encoding the file system gives the same bytes (the encoding is
//!   canonical) and every file keeps the limits;
//! * booting a module from any image never panics, and an image `decode` refuses boots with
//!   no files.
//!
//! The first byte chooses the image: odd, the rest as it is; even, the rest with its correct
//! CRC-32 appended, so the fuzzer gets past the checksum into the file records (with
//! `-dict=fs_image.dict` for the magic).
#![no_main]

use gecko_core::fs::{CAPACITY, FileSystem, MAX_FILES};
use gecko_core::time::Instant;
use gecko_core::{Module, Stored, nvm};
use gecko_fuzz::board;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&control, rest)) = input.split_first() else { return };
    let mut owned = rest.to_vec();
    if control & 1 == 0 {
        owned.extend_from_slice(&nvm::crc32(rest).to_le_bytes());
    }
    let data = owned.as_slice();
    let decoded = FileSystem::decode(data);
    if let Ok(fs) = &decoded {
        assert_eq!(fs.encode(), data, "an accepted image is not canonical");
        assert!(fs.used() <= CAPACITY && fs.files().count() <= MAX_FILES);
    }
    let stored = Stored { files: Some(data), ..Stored::default() };
    let module = Module::boot_from(board(), stored, Instant::ZERO);
    if decoded.is_err() {
        assert_eq!(module.files().files().count(), 0, "a refused image left files");
    }
});
