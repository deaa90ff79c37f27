//! Arbitrary bytes as an NVM image.
//!
//! Checked:
//! * `nvm::decode` never panics;
//! * when it accepts an image, encoding the entries and decoding again gives the same
//!   entries, and encoding those gives the same bytes (the encoding is canonical);
//! * booting a module from any image never panics, and an image `decode` refuses boots with
//!   exactly the variables of an empty NVM.
#![no_main]

use gecko_core::time::Instant;
use gecko_core::{Module, nvm};
use gecko_fuzz::board;
use libfuzzer_sys::fuzz_target;

fn encode(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    nvm::encode(entries.iter().map(|(name, value)| (name.as_str(), value.as_slice())))
}

fuzz_target!(|data: &[u8]| {
    let decoded = nvm::decode(data);
    if let Ok(entries) = &decoded {
        let image = encode(entries);
        let again = nvm::decode(&image).expect("an encoded image decodes");
        assert_eq!(&again, entries, "encode(decode(x)) decodes to other entries");
        assert_eq!(encode(&again), image, "encoding is not canonical");
    }

    let mut module = Module::boot(board(), Some(data), Instant::ZERO);
    let banner = module.take_output();
    if decoded.is_err() {
        // Defaults are human format: the banner, a note about the image, `[Ready]`, a prompt.
        assert!(
            banner.ends_with(b"[Ready]\r\n> "),
            "boot output {:?}",
            String::from_utf8_lossy(&banner)
        );
        let fresh = Module::boot(board(), None, Instant::ZERO);
        assert_eq!(module.vars(), fresh.vars(), "a refused image changed variables");
    }
});
