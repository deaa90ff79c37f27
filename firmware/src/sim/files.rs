//! The simulated module's file store: the file system image in one file on the host
//! (`gecko-sim --files <path>`), replaced atomically like the NVM file ([`super::FileNvm`]:
//! a temporary file, synced, renamed over the old one), so killing the process at any moment
//! leaves the old file set or the new one.

use super::FileNvm;
use crate::platform::{FileStore, Nvm, NvmFault, RamFileStore};
use std::path::PathBuf;
use std::vec::Vec;

/// The file system image kept in a host file.
#[derive(Debug)]
pub struct ImageFileStore {
    file: FileNvm,
}

impl ImageFileStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { file: FileNvm::new(path) }
    }
}

impl FileStore for ImageFileStore {
    fn load(&mut self) -> Result<Option<Vec<u8>>, NvmFault> {
        self.file.load()
    }
    fn store(&mut self, image: &[u8]) -> Result<(), NvmFault> {
        self.file.store(image)
    }
    fn erase(&mut self) -> Result<(), NvmFault> {
        self.file.erase()
    }
}

/// Either file store the simulated module can use.
#[derive(Debug)]
pub enum SimFiles {
    File(ImageFileStore),
    Ram(RamFileStore),
}

impl FileStore for SimFiles {
    fn load(&mut self) -> Result<Option<Vec<u8>>, NvmFault> {
        match self {
            Self::File(s) => s.load(),
            Self::Ram(s) => s.load(),
        }
    }
    fn store(&mut self, image: &[u8]) -> Result<(), NvmFault> {
        match self {
            Self::File(s) => s.store(image),
            Self::Ram(s) => s.store(image),
        }
    }
    fn erase(&mut self) -> Result<(), NvmFault> {
        match self {
            Self::File(s) => s.erase(),
            Self::Ram(s) => s.erase(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FileSystem, NewFile, Version};
    use std::format;
    use std::fs;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gecko-files-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn image() -> Vec<u8> {
        let mut files = FileSystem::new();
        let new = NewFile {
            name: "webapp/x.html".into(),
            size: 5,
            version: Version([1, 0, 1, 3]),
            kind: 0xFE,
            flags: 0,
            crc: None,
        };
        files.create(new, b"<p>\r\n").expect("created");
        files.encode()
    }

    #[test]
    fn stores_loads_and_erases_through_a_real_file() {
        let dir = temp_dir("store");
        let path = dir.join("files");
        let mut store = ImageFileStore::new(&path);
        assert_eq!(store.load(), Ok(None), "nothing stored yet");
        let image = image();
        store.store(&image).expect("stores");
        assert_eq!(fs::read(&path).expect("on disk"), image);
        assert!(!dir.join("files.tmp").exists(), "the temporary file was renamed");
        // A new store on the same path (a restarted process) finds it.
        let mut again = ImageFileStore::new(&path);
        let loaded = again.load().expect("loads").expect("an image");
        let files = FileSystem::decode(&loaded).expect("decodes");
        assert_eq!(
            files.get("webapp/x.html").map(|f| f.data().to_vec()),
            Some(b"<p>\r\n".to_vec())
        );
        again.erase().expect("erases");
        assert!(!path.exists());
        assert_eq!(again.erase(), Ok(()), "erasing nothing is fine");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_store_into_a_missing_folder_reports_the_path() {
        let dir = temp_dir("missing");
        let path = dir.join("no-such-folder").join("files");
        let mut store = ImageFileStore::new(&path);
        let err = store.store(&image()).expect_err("fails");
        assert!(err.0.contains("no-such-folder"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
