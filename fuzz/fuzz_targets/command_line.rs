//! Arbitrary bytes on the serial bus of a booted module.
//!
//! The first input byte is a control byte: its low six bits give the chunk size (1 to 64
//! bytes per `feed`), its top two bits the NVM image the module boots from (factory defaults
//! in human format, machine format silent, machine format with logs, machine format with
//! logs and saved values). The rest is fed in chunks, time advancing per chunk; `StoreNvm` is
//! completed with `Ok`, `Reboot` and `FactoryReset` boot a new module from the stored image.
//!
//! Checked:
//! * nothing panics;
//! * while the framing is machine format (no echo, headers, no prompt), every output chunk is
//!   a sequence of well-formed `R`/`L` frames, and error frames carry their code's text;
//! * output does not depend on how the input is split: a second module fed the same chunks
//!   one byte at a time prints exactly the same bytes and stores the same NVM image;
//! * what `save` writes, a module booted from it restores exactly.
#![no_main]

use gecko_core::fs::FileSystem;
use gecko_core::time::Instant;
use gecko_core::vars::{VARIABLES, Var, VarId};
use gecko_core::{Action, Module, ResultCode, Stored, nvm};
use gecko_fuzz::board;
use libfuzzer_sys::fuzz_target;

const STEP_MS: u64 = 250;

/// The NVM image a run starts from.
fn start_image(mode: u8) -> Option<Vec<u8>> {
    let mut entries: Vec<(&str, &[u8])> = vec![
        ("system.cmd.echo", b"0"),
        ("system.cmd.format", b"machine"),
        ("system.cmd.header_enabled", b"1"),
        ("system.cmd.prompt_enabled", b"0"),
    ];
    match mode & 3 {
        0 => return None,
        1 => entries.push(("system.print_level", b"0")),
        2 => {}
        _ => {
            entries.push(("wlan.ssid", b"lab net"));
            entries.push(("wlan.passkey", b"p\"ss\tw\nor\xff"));
        }
    }
    Some(nvm::encode(entries))
}

fn is_machine(m: &Module) -> bool {
    let v = m.vars();
    !v.flag(Var::SystemCmdEcho)
        && v.flag(Var::SystemCmdHeaderEnabled)
        && !v.flag(Var::SystemCmdPromptEnabled)
}

/// Checks that `out` is nothing but complete `R`/`L` frames.
fn check_frames(out: &[u8]) -> Result<(), String> {
    let mut rest = out;
    while !rest.is_empty() {
        let header = rest.get(..9).ok_or("output ends inside a header")?;
        let (kind, digit) = (header[0], header[1]);
        if kind != b'R' && kind != b'L' {
            return Err(format!("frame starts with {:?}", kind as char));
        }
        let digit_ok = match kind {
            b'R' => digit.is_ascii_digit(),
            _ => (b'1'..=b'4').contains(&digit),
        };
        if !digit_ok {
            return Err(format!("bad code/level digit {:?}", digit as char));
        }
        if !header[2..7].iter().all(u8::is_ascii_digit) || &header[7..9] != b"\r\n" {
            return Err(format!("bad header {:?}", String::from_utf8_lossy(header)));
        }
        let len = header[2..7].iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        let body = rest.get(9..9 + len).ok_or_else(|| format!("body shorter than {len}"))?;
        if len > 0 {
            let text = body.strip_suffix(b"\r\n").ok_or("body does not end with CRLF")?;
            for (i, &b) in text.iter().enumerate() {
                let paired = match b {
                    b'\r' => text.get(i + 1) == Some(&b'\n'),
                    b'\n' => i > 0 && text[i - 1] == b'\r',
                    _ => true,
                };
                if !paired {
                    return Err(format!("bare CR or LF inside a body at {i}"));
                }
            }
        } else if kind == b'L' {
            return Err("log frame without text".into());
        }
        if kind == b'R' && digit != b'0' {
            let code = ResultCode(digit - b'0');
            let want = format!("{}\r\n", code.text().unwrap_or(""));
            if body != want.as_bytes() {
                return Err(format!(
                    "code {} with body {:?}",
                    code.0,
                    String::from_utf8_lossy(body)
                ));
            }
        }
        rest = &rest[9 + len..];
    }
    Ok(())
}

fn assert_frames(out: &[u8], what: &str) {
    if let Err(e) = check_frames(out) {
        panic!("{what}: {e}\noutput: {:?}", String::from_utf8_lossy(out));
    }
}

/// The platform around one module: NVM, reboots, everything printed.
struct Platform {
    module: Module,
    nvm: Option<Vec<u8>>,
    /// The stored file system image.
    files: Option<Vec<u8>>,
    printed: Vec<u8>,
}

impl Platform {
    fn boot(nvm: Option<Vec<u8>>, now: Instant) -> Self {
        let mut module = Module::boot(board(), nvm.as_deref(), now);
        let printed = module.take_output();
        Self { module, nvm, files: None, printed }
    }

    /// Feeds `bytes` and carries out every action; returns what was printed and whether the
    /// module was replaced (the rest of the chunk is then lost, as on a real reboot).
    fn step(&mut self, bytes: &[u8], now: Instant) -> (Vec<u8>, bool) {
        self.module.feed(bytes, now);
        let mut out = self.module.take_output();
        let mut rebooted = false;
        while let Some(action) = self.module.next_action() {
            match action {
                Action::StoreNvm(image) => {
                    check_restores(&self.module, &image, now);
                    self.nvm = Some(image);
                    self.module.nvm_stored(Ok(()), now);
                }
                Action::StoreFiles(image) => {
                    let files =
                        FileSystem::decode(&image).expect("the module writes images it can read");
                    assert_eq!(&files, self.module.files(), "the stored image is the file system");
                    self.files = Some(image);
                    self.module.files_stored(Ok(()), now);
                }
                // No network: requests go unanswered and the core's timers end them.
                Action::Net(_) => {}
                Action::Reboot | Action::FactoryReset => {
                    if action == Action::FactoryReset {
                        self.nvm = None;
                        self.files = None;
                    }
                    out.extend(self.module.take_output());
                    let stored = Stored {
                        nvm: self.nvm.as_deref(),
                        files: self.files.as_deref(),
                        ..Stored::default()
                    };
                    self.module = Module::boot_from(board(), stored, now);
                    rebooted = true;
                }
            }
            out.extend(self.module.take_output());
        }
        self.printed.extend_from_slice(&out);
        (out, rebooted)
    }
}

/// A module booted from what `save` writes has the saving module's saved variables.
fn check_restores(saving: &Module, image: &[u8], now: Instant) {
    let entries = nvm::decode(image).expect("the module writes images it can read");
    let restored = Module::boot(board(), Some(image), now);
    for (i, def) in VARIABLES.iter().enumerate() {
        if def.saved {
            let id = VarId(i);
            assert_eq!(
                restored.vars().raw(id),
                saving.vars().raw(id),
                "{} does not survive save and boot (image entries {entries:?})",
                def.name
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl & 0x3f) + 1;
    let image = start_image(ctl >> 6);
    let at = |i: usize| Instant::from_millis(i as u64 * STEP_MS);

    let mut whole = Platform::boot(image.clone(), at(0));
    let mut bytewise = Platform::boot(image, at(0));
    if is_machine(&whole.module) {
        assert_frames(&whole.printed, "boot output");
    }

    for (i, piece) in input.chunks(chunk).enumerate() {
        let now = at(i + 1);
        let mut machine_throughout = is_machine(&bytewise.module);
        for &b in piece {
            let before = is_machine(&bytewise.module);
            let (out, rebooted) = bytewise.step(&[b], now);
            let after = is_machine(&bytewise.module);
            machine_throughout &= after;
            if before && after {
                assert_frames(&out, "output of one byte");
            }
            if rebooted {
                break;
            }
        }
        let (out, _) = whole.step(piece, now);
        if machine_throughout {
            assert_frames(&out, "output of one chunk");
        }
    }

    if whole.printed != bytewise.printed {
        panic!(
            "output depends on chunking\nwhole:    {:?}\nbytewise: {:?}",
            String::from_utf8_lossy(&whole.printed),
            String::from_utf8_lossy(&bytewise.printed)
        );
    }
    assert_eq!(whole.nvm, bytewise.nvm, "stored image depends on chunking");
});
