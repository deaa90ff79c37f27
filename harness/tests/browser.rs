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
