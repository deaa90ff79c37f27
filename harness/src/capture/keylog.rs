//! Decrypting a capture's TLS application data with the session secrets a TLS stack wrote in
//! the NSS key log format (`CLIENT_RANDOM <client random hex> <master secret hex>` lines), by
//! running `tshark`: the module's lab build writes [`KEYLOG_FILE`] in the run directory, so a
//! report can show what went over a TLS connection in clear.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The key log's name in a run directory (beside `captures/`).
pub const KEYLOG_FILE: &str = "keylog.txt";

/// The program run, looked up on `PATH`.
pub const TSHARK: &str = "tshark";

/// Why decryption did not give the application data.
#[derive(Debug, thiserror::Error)]
pub enum KeylogError {
    #[error(
        "`{0}` is not installed (or not on PATH): decrypting TLS in captures needs tshark \
         (Debian: apt-get install tshark)"
    )]
    Missing(String),
    #[error("cannot run `{TSHARK}`: {0}")]
    Spawn(std::io::Error),
    #[error("no such {what} {}", path.display())]
    NoFile { what: &'static str, path: PathBuf },
    #[error("`{TSHARK}` failed on {} ({status}): {stderr}", pcap.display())]
    Failed { pcap: PathBuf, status: String, stderr: String },
    #[error("`{TSHARK}` printed a field that is not hex: {0:?}")]
    BadOutput(String),
}

/// A chunk of decrypted application data of one TLS connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppData {
    /// The capture's TCP stream number (`tcp.stream`, from 0 in order of first packet).
    pub stream: u64,
    /// Sent by the side that opened the connection (else by the other side).
    pub from_client: bool,
    /// The decrypted bytes.
    pub data: Vec<u8>,
}

/// Decrypts the application data of every TLS connection in `pcap` whose secrets are in
/// `keylog`: each connection's chunks in order, connections in order of their first packet.
///
/// `tls.app_data` is the encrypted bytes even when tshark can decrypt them, and the decrypted
/// bytes land in whichever protocol's fields tshark dissects them as (`data.data` only when it
/// knows none), so this asks for the connections with decrypted data (`-Y tls.app_data -T
/// fields -e tcp.stream`), then follows each as TLS (`-z follow,tls,raw,<stream>`), which
/// gives the decrypted bytes of either side whatever they are. TLS is found on any port by
/// tshark's heuristics.
pub fn decrypt(pcap: &Path, keylog: &Path) -> Result<Vec<AppData>, KeylogError> {
    decrypt_with(TSHARK, pcap, keylog)
}

/// [`decrypt`] with another `tshark` program (a path, or a name looked up on `PATH`).
pub fn decrypt_with(
    tshark_program: &str,
    pcap: &Path,
    keylog: &Path,
) -> Result<Vec<AppData>, KeylogError> {
    for (what, path) in [("capture", pcap), ("key log", keylog)] {
        if !path.is_file() {
            return Err(KeylogError::NoFile { what, path: path.to_path_buf() });
        }
    }
    let keylog_opt = format!("tls.keylog_file:{}", keylog.display());
    let streams = tshark(
        tshark_program,
        pcap,
        &["-o", &keylog_opt, "-Y", "tls.app_data", "-T", "fields", "-e", "tcp.stream"],
    )?;
    let mut numbers: Vec<u64> = Vec::new();
    for line in streams.lines().filter(|l| !l.trim().is_empty()) {
        let n = line.trim().parse().map_err(|_| KeylogError::BadOutput(line.to_string()))?;
        if !numbers.contains(&n) {
            numbers.push(n);
        }
    }
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["-o".to_string(), keylog_opt.clone(), "-q".to_string()];
    for n in &numbers {
        args.push("-z".into());
        args.push(format!("follow,tls,raw,{n}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    parse_follow(&tshark(tshark_program, pcap, &args)?)
}

fn tshark(program: &str, pcap: &Path, args: &[&str]) -> Result<String, KeylogError> {
    let output =
        Command::new(program).arg("-r").arg(pcap).args(args).output().map_err(|e| {
            match e.kind() {
                std::io::ErrorKind::NotFound => KeylogError::Missing(program.to_string()),
                _ => KeylogError::Spawn(e),
            }
        })?;
    if !output.status.success() {
        return Err(KeylogError::Failed {
            pcap: pcap.to_path_buf(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Parses `tshark -q -z follow,tls,raw,<n>` output: per stream a block headed `Filter:
/// tcp.stream eq <n>`, then one hex line per chunk, indented with a tab when the second node
/// (the side that did not open the connection) sent it.
pub fn parse_follow(text: &str) -> Result<Vec<AppData>, KeylogError> {
    let mut out = Vec::new();
    let mut stream = None;
    for line in text.lines() {
        let bad = || KeylogError::BadOutput(line.to_string());
        if let Some(n) = line.strip_prefix("Filter: tcp.stream eq ") {
            stream = Some(n.trim().parse().map_err(|_| bad())?);
            continue;
        }
        if line.trim().is_empty()
            || line.starts_with("====")
            || line.starts_with("Follow:")
            || line.starts_with("Node ")
        {
            continue;
        }
        let Some(stream) = stream else { return Err(bad()) };
        let from_client = !line.starts_with('\t');
        out.push(AppData { stream, from_client, data: unhex(line.trim()).ok_or_else(bad)? });
    }
    Ok(out)
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

/// Gathers the key logs the run's simulated modules wrote in their work directories
/// (`<run dir>/<module>/`[`crate::session::TLS_KEYLOG_FILE`]) into the run's one key log,
/// `<run dir>/keylog.txt`, each line once, so one file decrypts every capture of the run.
/// Writes nothing when no module wrote secrets.
pub fn gather(run_dir: &Path) -> std::io::Result<Option<PathBuf>> {
    let mut modules: Vec<PathBuf> = match std::fs::read_dir(run_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path().join(crate::session::TLS_KEYLOG_FILE))
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    modules.sort();
    let mut seen = std::collections::HashSet::new();
    let mut out = String::new();
    for path in modules {
        for line in std::fs::read_to_string(&path)?.lines() {
            if !line.trim().is_empty() && seen.insert(line.to_string()) {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    let path = run_dir.join(KEYLOG_FILE);
    std::fs::write(&path, out)?;
    Ok(Some(path))
}

/// The key log of a run, if the run directory has one: `<run dir>/keylog.txt`.
pub fn run_keylog(run_dir: &Path) -> Option<PathBuf> {
    let path = run_dir.join(KEYLOG_FILE);
    path.is_file().then_some(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn follow_output_of_two_streams() {
        let text = "\n=====\nFollow: tls,raw\nFilter: tcp.stream eq 0\nNode 0: 127.0.0.1:1\n\
                    Node 1: :0\n\t68690a\n6f6b\n=====\nFollow: tls,raw\nFilter: tcp.stream eq 3\n\
                    Node 0: 10.77.0.77:2\nNode 1: 10.77.0.5:4433\n61\n=====\n";
        let got = parse_follow(text).unwrap();
        let want = [(0, false, &b"hi\n"[..]), (0, true, b"ok"), (3, true, b"a")];
        assert_eq!(got.len(), want.len());
        for (g, (stream, from_client, data)) in got.iter().zip(want) {
            assert_eq!((g.stream, g.from_client, g.data.as_slice()), (stream, from_client, data));
        }
        for bad in [
            "6869",
            "Filter: tcp.stream eq x",
            "Filter: tcp.stream eq 0\n0",
            "Filter: tcp.stream eq 0\nzz",
        ] {
            assert!(matches!(parse_follow(bad), Err(KeylogError::BadOutput(_))), "{bad}");
        }
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = decrypt(&dir.path().join("none.pcap"), &dir.path().join("k")).unwrap_err();
        assert!(e.to_string().contains("no such capture"), "{e}");
        assert_eq!(run_keylog(dir.path()), None);
        // A missing program, and tshark failing on a file that is not a capture.
        let pcap = dir.path().join("not.pcap");
        std::fs::write(&pcap, "not a capture").unwrap();
        let e = decrypt_with("/nonexistent/tshark", &pcap, &pcap).unwrap_err();
        assert!(matches!(&e, KeylogError::Missing(p) if p == "/nonexistent/tshark"), "{e}");
        assert!(e.to_string().contains("apt-get install tshark"), "{e}");
        if std::process::Command::new(TSHARK).arg("--version").output().is_ok() {
            let e = decrypt(&pcap, &pcap).unwrap_err();
            assert!(matches!(&e, KeylogError::Failed { stderr, .. } if !stderr.is_empty()), "{e}");
        }
        std::fs::write(dir.path().join(KEYLOG_FILE), "").unwrap();
        assert_eq!(run_keylog(dir.path()), Some(dir.path().join(KEYLOG_FILE)));
    }
}
