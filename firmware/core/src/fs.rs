//! The module's file system: named files with a version, a type, flags and a CRC, kept in
//! RAM by the core and stored whole by the platform as one image.
//!
//! The core does no I/O: after a change the [`crate::Module`] asks the platform to store
//! [`FileSystem::encode`] ([`crate::Action::StoreFiles`]), and the platform hands the stored
//! image back at boot ([`crate::Module::boot_from`]). One image, replaced atomically
//! by the platform, means a power cut leaves the old file set or the new one, never half a
//! file.
//!
//! # Decisions (assumed; the sources give the command syntax only)
//!
//! * **Capacity.** [`CAPACITY`] bytes of contents and [`MAX_FILES`] files in all; a file
//!   being written counts with its declared size from the start (the space is reserved).
//! * **Names.** 1 to [`NAME_MAX`] bytes of ASCII letters, digits, `.`, `_`, `-` and `/`;
//!   `/` separates folders as in the chapter's `webapp/unauthorized.html`, so a name may not
//!   start or end with `/`, hold `//`, or have a `.` or `..` part.
//! * **Versions.** Four numbers 0-255 (`1.0.1.3`, as the chapter's `stream_list` prints
//!   them); a version given with three (`1.0.0`, the default) gets a fourth `0`, so it prints
//!   as `1.0.0.0` (a client library shows `f.fc-1.0.0.0`).
//! * **Type** is one byte, decimal or `0x` hex, default `0xFE`. **Flags**: `-u` unprotected
//!   and `-e` essential are recorded and shown by `ls -v`; the HTTP server serves an
//!   unprotected file without authorization; nothing acts on `-e` yet.
//! * **CRC** is CRC-16/CCITT-FALSE ([`crc16`]: polynomial 0x1021, initial 0xFFFF) of the
//!   contents, as 2.x clients compute it for `file_create`; given as decimal or `0x` hex. A
//!   given CRC that does not match the contents fails the creation and keeps nothing.
//! * **Zero-size files** are refused (as `stream_write` refuses size 0).
//!
//! # The image
//!
//! Little-endian, binary (file contents are arbitrary bytes):
//!
//! ```text
//! "GECKO-FS 1\n"  u16 count
//! count × { u8 name_len, name, u8 version[4], u8 type, u8 flags, u16 crc, u32 size, contents }
//! u32 CRC-32 of every byte before it
//! ```
//!
//! [`FileSystem::decode`] accepts exactly what [`FileSystem::encode`] writes: names valid,
//! in order and unique, each file's CRC-16 matching its contents, the limits kept.

use crate::nvm::crc32;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// Bytes of file contents the file system holds in all.
pub const CAPACITY: usize = 256 * 1024;
/// Files the file system holds at most.
pub const MAX_FILES: usize = 32;
/// Longest file name, in bytes.
pub const NAME_MAX: usize = 64;
/// The type a file gets when `file_create` names none.
pub const DEFAULT_TYPE: u8 = 0xFE;

const MAGIC: &[u8] = b"GECKO-FS 1\n";

/// Flag bit: unprotected (`file_create -u`).
pub const FLAG_UNPROTECTED: u8 = 0x01;
/// Flag bit: essential (`file_create -e`).
pub const FLAG_ESSENTIAL: u8 = 0x02;

/// Why a file operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    BadName,
    Exists,
    NotFound,
    /// [`MAX_FILES`] files exist.
    TooManyFiles,
    /// Not enough of [`CAPACITY`] left.
    NoSpace {
        need: usize,
        free: usize,
    },
    /// The contents do not match the CRC given.
    BadCrc {
        want: u16,
        got: u16,
    },
    /// More bytes than the file's declared size.
    TooLong {
        size: usize,
    },
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName => f.write_str("bad file name"),
            Self::Exists => f.write_str("file exists"),
            Self::NotFound => f.write_str("file not found"),
            Self::TooManyFiles => write!(f, "too many files (at most {MAX_FILES})"),
            Self::NoSpace { need, free } => {
                write!(f, "file system full: {need} bytes needed, {free} free")
            }
            Self::BadCrc { want, got } => {
                write!(f, "CRC mismatch: given 0x{want:04X}, contents 0x{got:04X}")
            }
            Self::TooLong { size } => write!(f, "more than the file's {size} bytes"),
        }
    }
}

/// Why a stored image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    BadMagic,
    /// The image ends early or has bytes after its CRC.
    BadLength,
    BadCrc,
    /// A file record breaks a rule (name, order, limits, its CRC-16); `index` counts from 0.
    BadFile {
        index: usize,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("not a file system image (bad magic)"),
            Self::BadLength => f.write_str("file system image truncated or overlong"),
            Self::BadCrc => f.write_str("file system image damaged (CRC mismatch)"),
            Self::BadFile { index } => write!(f, "file system image: file {index} is malformed"),
        }
    }
}

/// A file version: four numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Version(pub [u8; 4]);

impl Version {
    /// `1.0.0`, printed `1.0.0.0`.
    pub const DEFAULT: Version = Version([1, 0, 0, 0]);

    /// Three or four dot-separated numbers 0-255.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = [0u8; 4];
        let mut n = 0;
        for part in text.split('.') {
            if n == 4 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts[n] = part.parse().ok()?;
            n += 1;
        }
        (n >= 3).then_some(Self(parts))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// A number given as decimal or `0x` hex.
pub fn parse_number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u32::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}

/// Whether `name` is a valid file name (see the module's decisions).
pub fn valid_name(name: &str) -> bool {
    let chars_ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
    (1..=NAME_MAX).contains(&name.len())
        && chars_ok
        && name.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

/// What `file_create` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFile {
    pub name: String,
    pub size: usize,
    pub version: Version,
    pub kind: u8,
    pub flags: u8,
    /// The CRC-16 the contents must have.
    pub crc: Option<u16>,
}

/// One file (complete, or still being written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub version: Version,
    pub kind: u8,
    pub flags: u8,
    size: usize,
    data: Vec<u8>,
    want_crc: Option<u16>,
    /// CRC-16 of the contents (once complete).
    crc: u16,
}

impl File {
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn crc(&self) -> u16 {
        self.crc
    }

    pub fn is_complete(&self) -> bool {
        self.data.len() == self.size
    }

    /// `<name>-<version>`, as `stream_list` shows a FILE stream.
    pub fn label(&self) -> String {
        let mut s = self.name.clone();
        let _ = write!(s, "-{}", self.version);
        s
    }

    fn flag_text(&self) -> String {
        let mut s = String::new();
        if self.flags & FLAG_UNPROTECTED != 0 {
            s.push('u');
        }
        if self.flags & FLAG_ESSENTIAL != 0 {
            s.push('e');
        }
        if s.is_empty() {
            s.push('-');
        }
        s
    }
}

/// The files, in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSystem {
    files: Vec<File>,
}

impl FileSystem {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes taken (files being written count with their declared size).
    pub fn used(&self) -> usize {
        self.files.iter().map(|f| f.size).sum()
    }

    pub fn free(&self) -> usize {
        CAPACITY.saturating_sub(self.used())
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.files.binary_search_by(|f| f.name.as_str().cmp(name))
    }

    /// Whether `new` could be created now.
    pub fn check(&self, new: &NewFile) -> Result<(), FsError> {
        if !valid_name(&new.name) {
            return Err(FsError::BadName);
        }
        if self.position(&new.name).is_ok() {
            return Err(FsError::Exists);
        }
        if self.files.len() >= MAX_FILES {
            return Err(FsError::TooManyFiles);
        }
        if new.size > self.free() {
            return Err(FsError::NoSpace { need: new.size, free: self.free() });
        }
        Ok(())
    }

    /// Adds `new` empty, its size reserved; [`FileSystem::append`] fills it.
    pub fn begin(&mut self, new: NewFile) -> Result<(), FsError> {
        self.check(&new)?;
        let at = self.position(&new.name).unwrap_or_else(|at| at);
        let file = File {
            name: new.name,
            version: new.version,
            kind: new.kind,
            flags: new.flags,
            size: new.size,
            data: Vec::with_capacity(new.size),
            want_crc: new.crc,
            crc: 0,
        };
        self.files.insert(at, file);
        Ok(())
    }

    /// Appends to a file being written; `Ok(true)` once it is complete. Bytes past its size
    /// are refused whole ([`FsError::TooLong`], nothing written); a complete file whose CRC
    /// does not match the one given is removed ([`FsError::BadCrc`]).
    pub fn append(&mut self, name: &str, bytes: &[u8]) -> Result<bool, FsError> {
        let at = self.position(name).map_err(|_| FsError::NotFound)?;
        let file = &mut self.files[at];
        if file.data.len() + bytes.len() > file.size {
            return Err(FsError::TooLong { size: file.size });
        }
        file.data.extend_from_slice(bytes);
        if !file.is_complete() {
            return Ok(false);
        }
        file.crc = crc16(&file.data);
        match file.want_crc.take() {
            Some(want) if want != file.crc => {
                let got = file.crc;
                self.files.remove(at);
                Err(FsError::BadCrc { want, got })
            }
            _ => Ok(true),
        }
    }

    /// Creates a complete file at once.
    pub fn create(&mut self, new: NewFile, data: &[u8]) -> Result<(), FsError> {
        let name = new.name.clone();
        self.begin(new)?;
        match self.append(&name, data) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.abort(&name);
                Err(FsError::TooLong { size: data.len() })
            }
            Err(e) => {
                self.abort(&name);
                Err(e)
            }
        }
    }

    /// Drops a file that is still being written (complete files stay).
    pub fn abort(&mut self, name: &str) {
        if let Ok(at) = self.position(name)
            && !self.files[at].is_complete()
        {
            self.files.remove(at);
        }
    }

    pub fn delete(&mut self, name: &str) -> Result<(), FsError> {
        match self.position(name) {
            Ok(at) if self.files[at].is_complete() => {
                self.files.remove(at);
                Ok(())
            }
            _ => Err(FsError::NotFound),
        }
    }

    /// A complete file.
    pub fn get(&self, name: &str) -> Option<&File> {
        self.position(name).ok().map(|at| &self.files[at]).filter(|f| f.is_complete())
    }

    /// The complete files, in name order.
    pub fn files(&self) -> impl Iterator<Item = &File> {
        self.files.iter().filter(|f| f.is_complete())
    }

    /// The body of `ls` (`verbose`: `ls -v`). `ls`: header `! # Size Version Filename`, then
    /// `# <n> <size> <version> <name>` per file; `ls -v` adds the type (2 hex digits), the
    /// flags (`u`, `e`, or `-`) and the CRC-16 (4 hex digits): header
    /// `! # Type Flags CRC Size Version Filename`. Files in name order, `n` from 0.
    pub fn list(&self, verbose: bool) -> String {
        let mut body = String::from(if verbose {
            "! # Type Flags CRC Size Version Filename"
        } else {
            "! # Size Version Filename"
        });
        for (i, f) in self.files().enumerate() {
            let _ = write!(body, "\r\n# {i} ");
            if verbose {
                let _ = write!(body, "{:02X} {} {:04X} ", f.kind, f.flag_text(), f.crc);
            }
            let _ = write!(body, "{} {} {}", f.size, f.version, f.name);
        }
        body
    }

    /// The stored form of the complete files.
    pub fn encode(&self) -> Vec<u8> {
        let files: Vec<&File> = self.files().collect();
        let mut out = Vec::from(MAGIC);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        for f in files {
            out.push(f.name.len() as u8);
            out.extend_from_slice(f.name.as_bytes());
            out.extend_from_slice(&f.version.0);
            out.push(f.kind);
            out.push(f.flags);
            out.extend_from_slice(&f.crc.to_le_bytes());
            out.extend_from_slice(&(f.size as u32).to_le_bytes());
            out.extend_from_slice(&f.data);
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a stored image back.
    pub fn decode(image: &[u8]) -> Result<Self, ImageError> {
        let body = image.strip_prefix(MAGIC).ok_or(ImageError::BadMagic)?;
        if body.len() < 6 {
            return Err(ImageError::BadLength);
        }
        let (content, stated) = image.split_at(image.len() - 4);
        let stated = u32::from_le_bytes([stated[0], stated[1], stated[2], stated[3]]);
        if crc32(content) != stated {
            return Err(ImageError::BadCrc);
        }
        let mut r = Reader { bytes: &content[MAGIC.len()..] };
        let count = usize::from(r.u16().ok_or(ImageError::BadLength)?);
        if count > MAX_FILES {
            return Err(ImageError::BadFile { index: MAX_FILES });
        }
        let mut fs = FileSystem::new();
        for index in 0..count {
            let bad = ImageError::BadFile { index };
            let len = usize::from(r.u8().ok_or(ImageError::BadLength)?);
            let name = r.take(len).ok_or(ImageError::BadLength)?;
            let name = core::str::from_utf8(name).map_err(|_| bad)?;
            let version = r.take(4).ok_or(ImageError::BadLength)?;
            let version = Version([version[0], version[1], version[2], version[3]]);
            let kind = r.u8().ok_or(ImageError::BadLength)?;
            let flags = r.u8().ok_or(ImageError::BadLength)?;
            let crc = r.u16().ok_or(ImageError::BadLength)?;
            let size = r.u32().ok_or(ImageError::BadLength)? as usize;
            if size == 0 || size > fs.free() || flags & !(FLAG_UNPROTECTED | FLAG_ESSENTIAL) != 0 {
                return Err(bad);
            }
            let data = r.take(size).ok_or(ImageError::BadLength)?;
            // Names strictly ascending: sorted, no duplicates, so the encoding is canonical.
            if fs.files.last().is_some_and(|last| last.name.as_str() >= name) {
                return Err(bad);
            }
            let new = NewFile { name: name.into(), size, version, kind, flags, crc: Some(crc) };
            fs.create(new, data).map_err(|_| bad)?;
        }
        if !r.bytes.is_empty() {
            return Err(ImageError::BadLength);
        }
        Ok(fs)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;
    use rstest::rstest;

    fn new(name: &str, size: usize) -> NewFile {
        NewFile {
            name: name.into(),
            size,
            version: Version::DEFAULT,
            kind: DEFAULT_TYPE,
            flags: 0,
            crc: None,
        }
    }

    #[test]
    fn crc16_is_ccitt_false() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
        assert_eq!(crc16(b""), 0xFFFF);
    }

    #[rstest]
    #[case("a", true)]
    #[case("webapp/unauthorized.html", true)]
    #[case("favicon.ico.gz", true)]
    #[case("a_b-c.1", true)]
    #[case("", false)]
    #[case("/abs", false)]
    #[case("dir/", false)]
    #[case("a//b", false)]
    #[case("a/../b", false)]
    #[case(".", false)]
    #[case("sp ace", false)]
    #[case("qu\"ote", false)]
    #[case("é", false)]
    fn names(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(valid_name(name), ok);
    }

    #[test]
    fn name_length_limit() {
        assert!(valid_name(&"a".repeat(NAME_MAX)));
        assert!(!valid_name(&"a".repeat(NAME_MAX + 1)));
    }

    #[rstest]
    #[case("1.0.0", Some([1, 0, 0, 0]))]
    #[case("1.0.1.3", Some([1, 0, 1, 3]))]
    #[case("255.255.255.255", Some([255, 255, 255, 255]))]
    #[case("1.0", None)]
    #[case("1.0.0.0.0", None)]
    #[case("1..0", None)]
    #[case("256.0.0", None)]
    #[case("1.0.x", None)]
    #[case("+1.0.0", None)]
    fn versions(#[case] text: &str, #[case] want: Option<[u8; 4]>) {
        assert_eq!(Version::parse(text).map(|v| v.0), want);
    }

    #[test]
    fn three_part_version_prints_with_a_fourth_zero() {
        assert_eq!(Version::parse("1.2.3").map(|v| v.to_string()), Some("1.2.3.0".into()));
    }

    #[rstest]
    #[case("254", Some(254))]
    #[case("0xFE", Some(254))]
    #[case("0x29b1", Some(0x29B1))]
    #[case("0x", None)]
    #[case("12a", None)]
    #[case("-1", None)]
    #[case("", None)]
    fn numbers(#[case] text: &str, #[case] want: Option<u32>) {
        assert_eq!(parse_number(text), want);
    }

    #[test]
    fn create_list_delete() {
        let mut fs = FileSystem::new();
        fs.create(new("b.txt", 3), b"abc").expect("created");
        let mut n = new("a/x.html", 2);
        n.flags = FLAG_UNPROTECTED;
        n.version = Version([1, 0, 1, 3]);
        fs.create(n, b"hi").expect("created");
        assert_eq!(
            fs.list(false),
            "! # Size Version Filename\r\n# 0 2 1.0.1.3 a/x.html\r\n# 1 3 1.0.0.0 b.txt"
        );
        let crc = crc16(b"hi");
        assert_eq!(
            fs.list(true),
            format!(
                "! # Type Flags CRC Size Version Filename\r\n# 0 FE u {crc:04X} 2 1.0.1.3 a/x.html\r\n# 1 FE - {:04X} 3 1.0.0.0 b.txt",
                crc16(b"abc")
            )
        );
        assert_eq!(fs.get("b.txt").map(File::data), Some(b"abc".as_slice()));
        assert_eq!(fs.create(new("b.txt", 1), b"z"), Err(FsError::Exists));
        assert_eq!(fs.delete("b.txt"), Ok(()));
        assert_eq!(fs.delete("b.txt"), Err(FsError::NotFound));
        assert_eq!(fs.used(), 2);
    }

    #[test]
    fn limits() {
        let mut fs = FileSystem::new();
        assert_eq!(
            fs.check(&new("big", CAPACITY + 1)),
            Err(FsError::NoSpace { need: CAPACITY + 1, free: CAPACITY })
        );
        for i in 0..MAX_FILES {
            fs.create(new(&format!("f{i:02}"), 1), b"x").expect("fits");
        }
        assert_eq!(fs.check(&new("one-more", 1)), Err(FsError::TooManyFiles));
        assert_eq!(fs.check(&new("bad name", 1)), Err(FsError::BadName));
    }

    #[test]
    fn a_file_being_written_reserves_its_size_and_is_not_listed() {
        let mut fs = FileSystem::new();
        fs.begin(new("w", CAPACITY - 10)).expect("begins");
        assert_eq!(fs.free(), 10);
        assert_eq!(fs.check(&new("x", 11)), Err(FsError::NoSpace { need: 11, free: 10 }));
        assert_eq!(fs.check(&new("w", 1)), Err(FsError::Exists));
        assert_eq!(fs.files().count(), 0);
        assert_eq!(fs.get("w"), None);
        assert_eq!(
            fs.append("w", &vec![0; CAPACITY]),
            Err(FsError::TooLong { size: CAPACITY - 10 })
        );
        assert_eq!(fs.append("w", &vec![0; CAPACITY - 11]), Ok(false));
        assert_eq!(fs.delete("w"), Err(FsError::NotFound), "incomplete files cannot be deleted");
        assert_eq!(fs.append("w", &[0]), Ok(true));
        assert!(fs.get("w").is_some());
        fs.abort("w");
        assert!(fs.get("w").is_some(), "abort leaves complete files alone");
    }

    #[test]
    fn crc_mismatch_keeps_nothing() {
        let mut fs = FileSystem::new();
        let mut n = new("c", 9);
        n.crc = Some(0x1234);
        assert_eq!(
            fs.create(n.clone(), b"123456789"),
            Err(FsError::BadCrc { want: 0x1234, got: 0x29B1 })
        );
        assert_eq!(fs.used(), 0);
        n.crc = Some(0x29B1);
        assert_eq!(fs.create(n, b"123456789"), Ok(()));
    }

    #[test]
    fn image_round_trips_and_skips_unfinished_files() {
        let mut fs = FileSystem::new();
        let mut n = new("webapp/unauthorized.html", 4);
        n.flags = FLAG_UNPROTECTED | FLAG_ESSENTIAL;
        n.kind = 3;
        n.version = Version([1, 0, 1, 3]);
        fs.create(n, b"\0\r\n\xff").expect("created");
        fs.create(new("a", 1), b"x").expect("created");
        fs.begin(new("unfinished", 5)).expect("begins");
        let image = fs.encode();
        let back = FileSystem::decode(&image).expect("decodes");
        assert_eq!(back.files().collect::<Vec<_>>(), fs.files().collect::<Vec<_>>());
        assert_eq!(back.get("unfinished"), None);
        assert_eq!(back.encode(), image);
        let empty = FileSystem::new().encode();
        assert_eq!(FileSystem::decode(&empty), Ok(FileSystem::new()));
    }

    #[test]
    fn image_damage_is_detected() {
        let mut fs = FileSystem::new();
        fs.create(new("a", 3), b"abc").expect("created");
        let image = fs.encode();
        assert_eq!(FileSystem::decode(b""), Err(ImageError::BadMagic));
        assert_eq!(FileSystem::decode(b"GECKO-NVM 1\n"), Err(ImageError::BadMagic));
        assert_eq!(FileSystem::decode(&image[..MAGIC.len() + 3]), Err(ImageError::BadLength));
        for cut in MAGIC.len() + 6..image.len() {
            assert!(FileSystem::decode(&image[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = image.clone();
        let at = flipped.len() - 6;
        flipped[at] ^= 1;
        assert_eq!(FileSystem::decode(&flipped), Err(ImageError::BadCrc));
    }

    /// Re-seals `content` with a correct CRC-32, so only the record rules can refuse it.
    fn seal(mut content: Vec<u8>) -> Vec<u8> {
        let crc = crc32(&content);
        content.extend_from_slice(&crc.to_le_bytes());
        content
    }

    #[test]
    fn image_records_must_keep_the_rules() {
        let record = |name: &[u8], crc: u16, data: &[u8]| {
            let mut r = vec![name.len() as u8];
            r.extend_from_slice(name);
            r.extend_from_slice(&[1, 0, 0, 0, 0xFE, 0]);
            r.extend_from_slice(&crc.to_le_bytes());
            r.extend_from_slice(&(data.len() as u32).to_le_bytes());
            r.extend_from_slice(data);
            r
        };
        let image = |records: &[Vec<u8>]| {
            let mut c = Vec::from(MAGIC);
            c.extend_from_slice(&(records.len() as u16).to_le_bytes());
            for r in records {
                c.extend_from_slice(r);
            }
            seal(c)
        };
        let good = record(b"a", crc16(b"x"), b"x");
        assert!(FileSystem::decode(&image(core::slice::from_ref(&good))).is_ok());
        let bad = ImageError::BadFile { index: 0 };
        assert_eq!(FileSystem::decode(&image(&[record(b"a b", crc16(b"x"), b"x")])), Err(bad));
        assert_eq!(FileSystem::decode(&image(&[record(b"a", 1, b"x")])), Err(bad));
        assert_eq!(FileSystem::decode(&image(&[record(b"a", crc16(b""), b"")])), Err(bad));
        let dup = ImageError::BadFile { index: 1 };
        assert_eq!(FileSystem::decode(&image(&[good.clone(), good])), Err(dup));
    }
}
