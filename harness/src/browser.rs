//! A real browser inside the lab: headless Chromium driven over the Chrome DevTools Protocol.
//!
//! What only a browser checks — that it enforces CORS as the module's headers say, that a web
//! app stored on the module loads and works — is checked by a browser. [`Browser::launch`]
//! starts Debian's `chromium` inside a lab's network namespace (so it reaches the module and
//! the lab's hosts, and nothing else), headless, with a fresh profile and none of its
//! background networking; it dies with the harness. The protocol runs over a WebSocket to its
//! debugging port, which listens on the namespace's loopback only: the socket is opened from
//! a thread inside the namespace.
//!
//! A test navigates, then *waits for a condition* in the page (a JavaScript expression that
//! becomes truthy), with a deadline; a timeout says the last value the expression had.

use crate::lab::{Lab, LabError, spawn_tied};
use serde_json::{Value, json};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// How long the browser may take to open its debugging port.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How often [`Browser::wait_for`] evaluates its condition.
const POLL: Duration = Duration::from_millis(50);

/// Why the browser could not do what was asked. All of these are the infrastructure's
/// faults, except [`BrowserError::Timeout`] and [`BrowserError::Script`], which a check
/// judges (a page that never shows what it should is the module's fault).
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("no Chromium found (looked for {looked}); install it: apt-get install chromium")]
    NotInstalled { looked: String },
    #[error("could not start {program} in the lab: {source}")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the browser did not open its debugging port within {waited:?}: {detail}")]
    NoDebugPort { waited: Duration, detail: String },
    #[error("entering the lab: {0}")]
    Lab(#[from] LabError),
    #[error("DevTools connection: {0}")]
    Protocol(String),
    #[error("`{method}` failed: {message}")]
    Call { method: String, message: String },
    #[error("the page's script threw: {0}")]
    Script(String),
    #[error("`{condition}` did not become true within {waited:?}; its last value: {last}")]
    Timeout { condition: String, waited: Duration, last: String },
}

impl BrowserError {
    /// Whether the fault lies with the lab or the harness rather than with the page.
    pub fn is_infrastructure(&self) -> bool {
        !matches!(self, Self::Timeout { .. } | Self::Script(_))
    }
}

/// The Chromium binary: `$GECKO_CHROMIUM`, else the first of Debian's names on `PATH`.
pub fn find_chromium() -> Result<PathBuf, BrowserError> {
    if let Some(path) = std::env::var_os("GECKO_CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let names = ["chromium", "chromium-browser", "google-chrome"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(BrowserError::NotInstalled { looked: format!("$GECKO_CHROMIUM, {}", names.join(", ")) })
}

/// A headless Chromium in a lab with one page open, and the DevTools session to drive it.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    profile: PathBuf,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// The browser's own output, for when something goes wrong.
    log: PathBuf,
}

impl Browser {
    /// Starts the browser inside `lab`, its profile and log under `workdir`, and opens a
    /// blank page.
    pub fn launch(lab: &Lab, workdir: &Path) -> Result<Browser, BrowserError> {
        let program = find_chromium()?;
        let profile = workdir.join("chromium-profile");
        let _ = std::fs::remove_dir_all(&profile);
        let start_err =
            |source| BrowserError::Start { program: program.display().to_string(), source };
        std::fs::create_dir_all(&profile).map_err(start_err)?;
        let log = workdir.join("chromium.log");
        let out = std::fs::File::create(&log).map_err(start_err)?;
        let err = out.try_clone().map_err(start_err)?;
        let mut cmd = lab.daemon_command(&program);
        // As the machine's notes say: no sandbox (root), no GPU, and none of the background
        // connections a closed network refuses (they would only add noise to captures).
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
        let child = spawn_tied(cmd).map_err(start_err)?;
        let mut browser = Browser {
            child,
            profile: profile.clone(),
            ws: Self::connect(lab, &profile, &log)?,
            session: String::new(),
            next_id: 0,
            log,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = target["targetId"].as_str().unwrap_or_default().to_string();
        let attached = browser
            .call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }))?;
        browser.session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| BrowserError::Protocol(format!("no sessionId in {attached}")))?
            .to_string();
        browser.call("Page.enable", json!({}))?;
        browser.call("Runtime.enable", json!({}))?;
        Ok(browser)
    }

    /// Waits for the browser's `DevToolsActivePort` file and opens the browser's WebSocket
    /// from inside the lab.
    fn connect(
        lab: &Lab,
        profile: &Path,
        log: &Path,
    ) -> Result<WebSocket<TcpStream>, BrowserError> {
        let file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + START_TIMEOUT;
        let (port, path) = loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next())
                && let Ok(port) = port.trim().parse::<u16>()
            {
                break (port, path.trim().to_string());
            }
            if Instant::now() > deadline {
                let tail = std::fs::read_to_string(log).unwrap_or_default();
                let tail: String = tail.lines().rev().take(10).collect::<Vec<_>>().join(" | ");
                return Err(BrowserError::NoDebugPort {
                    waited: START_TIMEOUT,
                    detail: format!(
                        "{} not written; the browser's log ends: {tail}",
                        file.display()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let url = format!("ws://127.0.0.1:{port}{path}");
        let stream = lab.run_in(|| TcpStream::connect(("127.0.0.1", port)))?;
        let stream = stream.map_err(|e| BrowserError::Protocol(format!("connect {url}: {e}")))?;
        stream
            .set_read_timeout(Some(CALL_TIMEOUT))
            .map_err(|e| BrowserError::Protocol(e.to_string()))?;
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .map_err(|e| BrowserError::Protocol(format!("handshake with {url}: {e}")))?;
        Ok(ws)
    }

    /// One protocol call (on the page's session once there is one); events that arrive
    /// meanwhile are dropped.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, BrowserError> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let protocol = |e: tungstenite::Error| BrowserError::Protocol(format!("{method}: {e}"));
        self.ws.send(Message::text(message.to_string())).map_err(protocol)?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            if Instant::now() > deadline {
                return Err(BrowserError::Protocol(format!(
                    "no answer to {method} in {CALL_TIMEOUT:?}"
                )));
            }
            let text = match self.ws.read().map_err(protocol)? {
                Message::Text(text) => text,
                _ => continue,
            };
            let Ok(answer) = serde_json::from_str::<Value>(&text) else { continue };
            if answer["id"].as_u64() != Some(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                return Err(BrowserError::Call {
                    method: method.to_string(),
                    message: error.to_string(),
                });
            }
            return Ok(answer["result"].clone());
        }
    }

    /// Opens `url` in the page (the load goes on; wait for what the page should show).
    pub fn navigate(&mut self, url: &str) -> Result<(), BrowserError> {
        let result = self.call("Page.navigate", json!({ "url": url }))?;
        match result.get("errorText").and_then(Value::as_str) {
            // A page the browser could not load at all (refused, reset): the check decides
            // whether that was expected, so it is a script-level outcome, not the lab's.
            Some(error) => Err(BrowserError::Script(format!("navigating to {url}: {error}"))),
            None => Ok(()),
        }
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value.
    pub fn eval(&mut self, expression: &str) -> Result<Value, BrowserError> {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(exception) = result.get("exceptionDetails") {
            let text = exception["exception"]["description"]
                .as_str()
                .or_else(|| exception["text"].as_str())
                .unwrap_or("exception")
                .to_string();
            return Err(BrowserError::Script(text));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Evaluates `condition` until it is truthy (then returns its value) or `timeout`
    /// passes (then fails with the last value). A script error while the page is still
    /// loading counts as "not yet".
    pub fn wait_for(&mut self, condition: &str, timeout: Duration) -> Result<Value, BrowserError> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.eval(condition) {
                Ok(value) if truthy(&value) => return Ok(value),
                Ok(value) => value.to_string(),
                Err(BrowserError::Script(e)) => format!("threw {e}"),
                Err(e) => return Err(e),
            };
            if Instant::now() > deadline {
                return Err(BrowserError::Timeout {
                    condition: condition.to_string(),
                    waited: timeout,
                    last,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// The browser's own output so far (for a failure's message).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut tail: Vec<&str> = text.lines().rev().take(lines).collect();
        tail.reverse();
        tail.join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        // The whole process group: Chromium's helpers (zygote, renderers, utility) too.
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// JavaScript truthiness of a returned value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(json!(null), false)]
    #[case(json!(false), false)]
    #[case(json!(0), false)]
    #[case(json!(""), false)]
    #[case(json!(true), true)]
    #[case(json!(1), true)]
    #[case(json!("x"), true)]
    #[case(json!([]), true)]
    #[case(json!({}), true)]
    fn truthiness_is_javascripts(#[case] value: Value, #[case] want: bool) {
        assert_eq!(truthy(&value), want, "{value}");
    }
}
