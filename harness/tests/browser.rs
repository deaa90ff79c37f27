//! The lab's browser: headless Chromium inside a lab namespace, driven over DevTools, loads
//! pages from lab hosts and enforces CORS as a user's browser does.
//!
//! Needs root, the lab's tools and Chromium (`apt-get install chromium`); without them each
//! test says why and returns, except under CI, where a missing browser fails.
#![allow(clippy::unwrap_used)]

use gecko_hil::browser::{Browser, BrowserError, find_chromium};
use gecko_hil::lab::{Lab, check_preconditions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

const LAB_HOST: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 5);

fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Whether the test can run here; under CI a missing browser is a failure.
fn available(test: &str) -> bool {
    if let Err(e) = check_preconditions() {
        say(&format!("SKIPPED {test}: {e}"));
        return false;
    }
    if let Err(e) = find_chromium() {
        assert!(!in_ci(), "{e}");
        say(&format!("SKIPPED {test}: {e}"));
        return false;
    }
    true
}

/// A tiny HTTP/1.1 server on a lab host: answers each request with `route(path, origin
/// header)` → (status line, extra headers, body), then closes.
fn serve(
    lab: &Lab,
    port: u16,
    route: impl Fn(&str, Option<&str>) -> (&'static str, String, String) + Send + 'static,
) {
    let listener = lab.run_in(|| TcpListener::bind((LAB_HOST, port))).unwrap().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let head = read_head(&mut stream);
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let origin = head
                .lines()
                .find_map(|l| l.strip_prefix("Origin: ").or_else(|| l.strip_prefix("origin: ")))
                .map(str::trim);
            let (status, headers, body) = route(&path, origin);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n{headers}\r\n{body}",
                body.len()
            );
        }
    });
}

fn read_head(stream: &mut TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A page that fetches `url` and shows `ok:<body>` or `error:<what the browser said>`.
fn fetching_page(url: &str) -> String {
    format!(
        "<!doctype html><html><body><div id=out></div><script>\
         fetch('{url}').then(r => r.text())\
         .then(t => document.getElementById('out').textContent = 'ok:' + t)\
         .catch(e => document.getElementById('out').textContent = 'error:' + e.name);\
         </script></body></html>"
    )
}

const OUT: &str = "document.getElementById('out') && document.getElementById('out').textContent";

#[test]
fn the_browser_loads_lab_pages_and_enforces_cors() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available("the_browser_loads_lab_pages_and_enforces_cors") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::create(dir.path(), "browser test").unwrap();
    let page_origin = format!("http://{LAB_HOST}:8000");
    // The page's origin serves pages that call the API origin.
    serve(&lab, 8000, |path, _| {
        let api = format!("http://{LAB_HOST}:8001");
        match path {
            "/allowed" => ("200 OK", String::new(), fetching_page(&format!("{api}/allowed"))),
            "/denied" => ("200 OK", String::new(), fetching_page(&format!("{api}/denied"))),
            _ => ("404 Not Found", String::new(), "no such page".into()),
        }
    });
    // The API origin allows the page's origin on one path only.
    let allowed = page_origin.clone();
    serve(&lab, 8001, move |path, origin| {
        let acao = format!("Access-Control-Allow-Origin: {allowed}\r\n");
        match (path, origin) {
            ("/allowed", Some(o)) if o == allowed => ("200 OK", acao, "the answer".into()),
            _ => ("200 OK", String::new(), "a secret".into()),
        }
    });

    let mut browser = Browser::launch(&lab, dir.path()).unwrap();
    browser.navigate(&format!("{page_origin}/allowed")).unwrap();
    let shown = browser.wait_for(OUT, Duration::from_secs(15)).unwrap();
    assert_eq!(shown, "ok:the answer", "browser log:\n{}", browser.log_tail(20));

    // Same request, but the answer carries no Access-Control-Allow-Origin: the browser hands
    // the page nothing.
    browser.navigate(&format!("{page_origin}/denied")).unwrap();
    let shown = browser.wait_for(OUT, Duration::from_secs(15)).unwrap();
    assert_eq!(shown, "error:TypeError", "browser log:\n{}", browser.log_tail(20));

    // A condition that never comes true says what it saw last.
    let err = browser.wait_for("document.title === 'never'", Duration::from_millis(300));
    match err {
        Err(e @ BrowserError::Timeout { .. }) => {
            assert!(!e.is_infrastructure());
            assert!(e.to_string().contains("its last value: false"), "{e}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // A host the lab does not have: the navigation fails, and says so.
    let gone = browser.navigate("http://10.77.0.99:9/");
    assert!(matches!(gone, Err(BrowserError::Script(_))) || gone.is_ok(), "{gone:?}");
    drop(browser);
    drop(lab);
}

mod module {
    //! The browser against the simulated module's HTTP server.
    use super::*;
    use gecko_hil::channel::{Channel, Request};
    use gecko_hil::code::ResultCode;
    use gecko_hil::session::{Session, default_sim_binary};

    /// The simulated module in its lab, with the network up; its address.
    fn module(
        dir: &std::path::Path,
        test: &str,
        set: &[(&str, &str)],
    ) -> Option<(Session, Ipv4Addr)> {
        if !available(test) {
            return None;
        }
        let sim = default_sim_binary();
        if !sim.exists() {
            assert!(!in_ci(), "{} is not built", sim.display());
            say(&format!(
                "SKIPPED {test}: {} is not built (cargo build -p gecko-sim)",
                sim.display()
            ));
            return None;
        }
        let rig_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rigs/sim.toml");
        let rig = gecko_hil::rig::load(&rig_file).unwrap();
        let mut session = Session::open(&rig, dir).unwrap();
        let defaults = [("wlan.ssid", "gecko-lab"), ("wlan.passkey", "labpass123")];
        for (var, value) in defaults.iter().chain(set) {
            run(&mut session, &format!("set {var} {value}"), None);
        }
        run(&mut session, "network_up", None);
        let ip = run(&mut session, "get wlan.network.ip", None).parse().unwrap();
        // The server listens once the network is up: wait until a lab host can connect.
        let lab = session.lab.as_ref().unwrap().lab.clone();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut last = String::new();
        while std::time::Instant::now() < deadline {
            match lab
                .run_in(|| TcpStream::connect_timeout(&(ip, 80).into(), Duration::from_secs(1)))
            {
                Ok(Ok(_)) => return Some((session, ip)),
                Ok(Err(e)) => last = e.to_string(),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the module's HTTP server at {ip}:80 did not accept within 10 s: {last}");
    }

    /// A command over the control channel that must succeed; its body.
    fn run(session: &mut Session, line: &str, data: Option<&[u8]>) -> String {
        let request = Request { line, data, timeout: Duration::from_secs(10) };
        let reply = session.control.execute(&request).unwrap();
        assert!(
            reply.code == ResultCode::SUCCESS,
            "`{line}` answered {:?} {}",
            reply.code,
            reply.text()
        );
        reply.text()
    }

    fn store(session: &mut Session, name: &str, contents: &[u8]) {
        run(session, &format!("file_create {name} {}", contents.len()), Some(contents));
    }

    #[test]
    fn a_lab_origin_calls_the_rest_api_as_cors_allows() {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let allowed = format!("http://{LAB_HOST}:8000");
        let Some((session, ip)) = module(
            dir.path(),
            "a_lab_origin_calls_the_rest_api_as_cors_allows",
            &[("http.server.enabled", "1"), ("http.server.cors_origin", &allowed)],
        ) else {
            return;
        };
        let lab = session.lab.as_ref().unwrap().lab.clone();
        let api = format!("http://{ip}");
        // Pages of the allowed origin (port 8000) and of another one (port 8001).
        for port in [8000, 8001] {
            let api = api.clone();
            serve(&lab, port, move |path, _| match path {
                "/get" => {
                    ("200 OK", String::new(), fetching_page(&format!("{api}/command/version")))
                }
                "/post" => ("200 OK", String::new(), posting_page(&format!("{api}/command"))),
                _ => ("404 Not Found", String::new(), "no such page".into()),
            });
        }
        let mut browser = Browser::launch(&lab, dir.path()).unwrap();

        // GET /command from the allowed origin: the page gets the JSON answer.
        browser.navigate(&format!("{allowed}/get")).unwrap();
        let shown = browser.wait_for(OUT, Duration::from_secs(15)).unwrap();
        let shown = shown.as_str().unwrap_or_default();
        assert!(shown.starts_with("ok:{"), "{shown}\nbrowser log:\n{}", browser.log_tail(20));
        let json: serde_json::Value = serde_json::from_str(&shown[3..]).unwrap();
        assert_eq!(json["code"], 0, "{json}");
        assert!(json["response"].as_str().unwrap_or_default().contains("Gecko OS"), "{json}");

        // POST with a JSON content type: the browser asks first (OPTIONS preflight), the
        // module allows it, the command runs.
        browser.navigate(&format!("{allowed}/post")).unwrap();
        let shown = browser.wait_for(OUT, Duration::from_secs(15)).unwrap();
        let shown = shown.as_str().unwrap_or_default();
        assert!(shown.starts_with("ok:{"), "{shown}\nbrowser log:\n{}", browser.log_tail(20));
        let json: serde_json::Value = serde_json::from_str(&shown[3..]).unwrap();
        assert_eq!(json["code"], 0, "{json}");
        assert_eq!(json["response"], format!("{allowed}\r\n"), "{json}");

        // Another origin: the module closes the connection at once; the page gets nothing.
        let other = format!("http://{LAB_HOST}:8001");
        for page in ["get", "post"] {
            browser.navigate(&format!("{other}/{page}")).unwrap();
            let shown = browser.wait_for(OUT, Duration::from_secs(15)).unwrap();
            assert_eq!(shown, "error:TypeError", "{page} from {other}");
        }
        // And the allowed origin is still served afterwards.
        browser.navigate(&format!("{allowed}/get")).unwrap();
        let shown = browser.wait_for(OUT, Duration::from_secs(15)).unwrap();
        assert!(shown.as_str().unwrap_or_default().starts_with("ok:{"), "{shown}");
    }

    /// A page that POSTs `get http.server.cors_origin` as JSON (which makes the browser send
    /// a preflight first) and shows `ok:<body>` or `error:<name>`.
    fn posting_page(url: &str) -> String {
        format!(
            "<!doctype html><html><body><div id=out></div><script>\
             fetch('{url}', {{ method: 'POST', headers: {{ 'Content-Type': 'application/json' }},\
             body: JSON.stringify({{ flags: 0, command: 'get http.server.cors_origin' }}) }})\
             .then(r => r.text())\
             .then(t => document.getElementById('out').textContent = 'ok:' + t)\
             .catch(e => document.getElementById('out').textContent = 'error:' + e.name);\
             </script></body></html>"
        )
    }

    const APP_HTML: &str = "<!doctype html><html><head><title>Module</title>\
        <link rel=stylesheet href=/webapp/style.css></head><body>\
        <input id=cmd><button id=run>Run</button><pre id=out></pre>\
        <script src=/webapp/app.js></script></body></html>";
    const APP_CSS: &str = "#out { color: rgb(0, 128, 0); }\n";
    const APP_JS: &str = "document.getElementById('run').addEventListener('click', () => {\n\
        const out = document.getElementById('out');\n\
        out.textContent = 'running';\n\
        fetch('/command', { method: 'POST', body: JSON.stringify({ flags: 0,\n\
          command: document.getElementById('cmd').value }) })\n\
        .then(r => r.json()).then(j => out.textContent = j.code + ':' + j.response)\n\
        .catch(e => out.textContent = 'error:' + e);\n\
        });\n\
        document.title = 'ready';\n";

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut child = std::process::Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    }

    #[test]
    fn a_web_app_stored_on_the_module_loads_and_runs_a_command() {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let Some((mut session, ip)) = module(
            dir.path(),
            "a_web_app_stored_on_the_module_loads_and_runs_a_command",
            &[("http.server.enabled", "1")],
        ) else {
            return;
        };
        // The page, its style sheet, and its script stored pre-compressed only.
        store(&mut session, "webapp/index.html", APP_HTML.as_bytes());
        store(&mut session, "webapp/style.css", APP_CSS.as_bytes());
        store(&mut session, "webapp/app.js.gz", &gzip(APP_JS.as_bytes()));
        let lab = session.lab.as_ref().unwrap().lab.clone();
        let mut browser = Browser::launch(&lab, dir.path()).unwrap();
        browser.navigate(&format!("http://{ip}/")).unwrap();
        // The script ran (it was served gzip-encoded) and the style sheet applied.
        browser.wait_for("document.title === 'ready'", Duration::from_secs(15)).unwrap();
        let color = browser.eval("getComputedStyle(document.getElementById('out')).color").unwrap();
        assert_eq!(color, "rgb(0, 128, 0)", "the style sheet did not apply");
        // A person types a command and clicks Run.
        browser
            .eval("document.getElementById('cmd').value = 'get wlan.ssid'; document.getElementById('run').click(); true")
            .unwrap();
        let shown = browser
            .wait_for("document.getElementById('out').textContent.startsWith('0:') && document.getElementById('out').textContent", Duration::from_secs(15))
            .unwrap();
        assert_eq!(shown, "0:gecko-lab\r\n");
        // A failing command shows its code.
        browser
            .eval("document.getElementById('cmd').value = 'get no.such.variable'; document.getElementById('run').click(); true")
            .unwrap();
        let shown = browser
            .wait_for(
                "(t => /^[1-9]/.test(t) && t)(document.getElementById('out').textContent)",
                Duration::from_secs(15),
            )
            .unwrap();
        assert!(shown.as_str().unwrap_or_default().contains(':'), "{shown}");
    }
}
