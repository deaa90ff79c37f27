//! Shared rigs through a real labgrid (coordinator, exporter with ser2net, places) on
//! loopback, with simulated modules behind the places. Needs `labgrid-client` (and its
//! coordinator and exporter beside it) and `ser2net`; skipped loudly without them, a failure
//! under `CI=true`.

use gecko_hil::labgrid::{self, LabgridError, PlaceFilter};
use gecko_hil::labgrid_lab::TestLab;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn tools() -> Option<PathBuf> {
    let client = labgrid::find_client();
    let ser2net = gecko_hil::lab::netns::find_tool("ser2net");
    match (client, ser2net) {
        (Some(client), Some(_)) => Some(client),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("labgrid (`pip install labgrid`) and ser2net are required under CI")
        }
        _ => {
            eprintln!("SKIPPED: labgrid-client or ser2net not installed");
            None
        }
    }
}

fn sim_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hil")).with_file_name("gecko-sim")
}

fn lab(places: usize, prefix: &str) -> Option<(TestLab, tempfile::TempDir)> {
    let client = tools()?;
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = sim_binary();
    assert!(sim.exists(), "build the simulated module first: cargo build -p gecko-sim");
    let lab = TestLab::start(dir.path(), &client, &sim, places, prefix).expect("test lab");
    Some((lab, dir))
}

/// Sends `version` through the exported console (ser2net's telnet layer passes plain
/// bytes through) and reads until the module's answer shows.
fn version_through(host: &str, port: u16) -> String {
    let mut s = std::net::TcpStream::connect((host, port)).expect("connect to ser2net");
    s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let mut last_sent = None::<Instant>;
    while Instant::now() < deadline {
        if last_sent.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
            s.write_all(b"\r\nversion\r\n").expect("write");
            last_sent = Some(Instant::now());
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if String::from_utf8_lossy(&got).contains("Gecko OS-") {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn places_are_held_released_and_refused_when_someone_else_has_them() {
    let Some((lab, _dir)) = lab(2, "gecko-two") else { return };
    let spec = lab.spec(Duration::from_secs(10));
    assert_eq!(labgrid::matching_places(&spec).expect("places"), lab.places());
    let a = labgrid::hold(&spec).expect("first place");
    let b = labgrid::hold(&spec).expect("second place");
    assert_ne!(a.place(), b.place());
    for held in [&a, &b] {
        let c = held.console();
        let answer = version_through(&c.host, c.port);
        assert!(
            answer.contains("Gecko OS-"),
            "{}: no version through {c:?}: {answer:?}",
            held.place()
        );
    }
    // Both held: a third waits, then says who holds them.
    let err = labgrid::hold(&lab.spec(Duration::from_secs(2))).expect_err("no third place");
    let text = err.to_string();
    assert!(matches!(err, LabgridError::NotAvailable { .. }), "{text}");
    assert!(text.contains("is acquired by"), "{text}");
    let (pa, pb) = (a.place().to_string(), b.place().to_string());
    a.release().expect("release");
    drop(b);
    let places = lab.client_call(&["-v", "places"]).expect("places");
    for p in [pa, pb] {
        let block = places.split("Place '").find(|b| b.starts_with(&p)).expect("place listed");
        assert!(block.contains("acquired: None"), "{p} still acquired: {block}");
    }

    // Someone else holds the place a rig names: an infrastructure error that says who.
    let place = lab.places()[0].clone();
    lab.client_call_as("alice", &["-p", &place, "acquire"]).expect("alice acquires");
    let mut spec = lab.spec(Duration::from_secs(2));
    spec.filter = PlaceFilter::Name(place.clone());
    let started = Instant::now();
    let err = labgrid::hold(&spec).expect_err("held by alice");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up late: {:?}", started.elapsed());
    let text = err.to_string();
    assert!(matches!(err, LabgridError::NotAvailable { .. }), "{text}");
    assert!(text.contains(&place) && text.contains("alice"), "{text}");
}

#[test]
fn an_unreachable_coordinator_is_an_infrastructure_error() {
    let Some(client) = tools() else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let spec = labgrid::LabgridSpec {
        coordinator: Some(format!("127.0.0.1:{port}")),
        filter: PlaceFilter::Name("nowhere".into()),
        wait: Duration::from_secs(2),
        client,
    };
    let started = Instant::now();
    let err = labgrid::hold(&spec).expect_err("nothing listens");
    let text = err.to_string();
    assert!(matches!(err, LabgridError::Unreachable { .. }), "{text}");
    assert!(text.contains(&port.to_string()), "{text}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

/// A rig file for the lab's places, as `cargo xtask labgrid-lab` writes one.
fn rig_for(lab: &TestLab, dir: &std::path::Path) -> gecko_hil::rig::Rig {
    let client = labgrid::find_client().expect("labgrid-client");
    let path = dir.join("labgrid.toml");
    let text = format!(
        "name = \"lg\"\n[dut]\nkind = \"hardware\"\n[labgrid]\ncoordinator = \"{}\"\n\
         place = \"{}\"\nwait_s = 5\nclient = \"{}\"\n[timeouts]\ncommand_ms = 2000\nreboot_ms = 3000\n",
        lab.coordinator(),
        lab.places()[0],
        client.display()
    );
    std::fs::write(&path, text).expect("write the rig");
    gecko_hil::rig::load(&path).expect("the rig loads")
}

#[test]
fn a_session_on_a_place_and_the_loss_of_its_exporter() {
    use gecko_hil::channel::{Channel, Request};
    let Some((mut lab, dir)) = lab(1, "gecko-lost") else { return };
    let rig = rig_for(&lab, dir.path());
    let mut session =
        gecko_hil::session::Session::open(&rig, &dir.path().join("module")).expect("session");
    let place = session.place.as_ref().map(|p| p.place().to_string());
    assert_eq!(place.as_deref(), Some(lab.places()[0].as_str()));
    assert!(session.control.endpoint().starts_with("rfc2217://127.0.0.1:"));
    let version = Request { line: "version", data: None, timeout: Duration::from_secs(3) };
    let reply = session.control.execute(&version).expect("version through labgrid");
    assert!(reply.text().contains("Gecko OS-"), "{}", reply.text());
    // A reopen (after an infrastructure error) keeps its place: the same module comes back.
    session.reopen().expect("reopen on the same place");
    let again = session.place.as_ref().map(|p| p.place().to_string());
    assert_eq!(again, place);
    session.control.execute(&version).expect("version after the reopen");

    // The lab host goes away: what follows is the infrastructure's fault, never the module's.
    lab.kill_exporter();
    let started = Instant::now();
    let err = session.control.execute(&version).expect_err("the console is gone");
    assert!(err.is_infrastructure(), "a lost exporter is not the module's fault: {err}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    // Dropping the session releases the place, also with its exporter gone.
    drop(session);
    let places = lab.client_call(&["-v", "places"]).expect("places");
    assert!(places.contains("acquired: None"), "{places}");
}

#[test]
fn a_place_left_by_a_killed_harness_is_released_by_the_next_start() {
    let Some((lab, dir)) = lab(1, "gecko-killed") else { return };
    let rig = rig_for(&lab, dir.path());
    let place = lab.places()[0].clone();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut hil = std::process::Command::new(env!("CARGO_BIN_EXE_hil"))
        .current_dir(root)
        .args(["run", "--no-progress", "--reports"])
        .arg(dir.path().join("reports"))
        .arg("--rig")
        .arg(&rig.path)
        .arg("variables/")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hil run");
    // Wait until the run holds the place, then kill it outright.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    loop {
        last = lab.client_call(&["-v", "places"]).unwrap_or(last);
        if !last.contains("acquired: None") {
            break;
        }
        assert!(Instant::now() < deadline, "hil never acquired {place}: {last}");
        if let Ok(Some(status)) = hil.try_wait() {
            panic!("hil run ended ({status}) before it was killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    hil.kill().expect("SIGKILL");
    hil.wait().expect("reaped");
    let places = lab.client_call(&["-v", "places"]).expect("places");
    assert!(!places.contains("acquired: None"), "the killed run's place is still held: {places}");

    // The next start sweeps what the dead owner left, then gets the place.
    let mut spec = lab.spec(Duration::from_secs(5));
    spec.filter = PlaceFilter::Name(place.clone());
    let held = labgrid::hold(&spec).expect("the place, after the sweep");
    assert_eq!(held.place(), place);
}
