//! The lab network on real namespaces: DHCP and DNS from dnsmasq, two labs at once, and
//! nothing left behind (drop, panic, a previous process killed outright: the sweeper and
//! its ownership records).
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), `ip`, `dnsmasq` and /dev/net/tun; without
//! them every test prints why it is skipped. The DHCP client check uses `busybox udhcpc`.

use gecko_hil::lab::owner::{OwnerRecord, ProcessId};
use gecko_hil::lab::{Lab, LabConfig, LabHost, NETNS_DIR, check_preconditions, dns, netns};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests look at every namespace of this process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Says something past the test harness's output capture (skips and timings must show
/// in a plain `cargo test`).
fn say(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

fn lab_available(test: &str) -> bool {
    match check_preconditions() {
        Ok(_) => true,
        Err(e) => {
            say(&format!("SKIPPED {test}: {e}"));
            false
        }
    }
}

fn ours() -> Vec<String> {
    let prefix = format!("gecko-{}-", std::process::id());
    netns::list().into_iter().filter(|n| n.starts_with(&prefix)).collect()
}

/// dnsmasq processes whose command line names this run dir.
fn dnsmasq_for(run_dir: &Path) -> Vec<i32> {
    let needle = run_dir.display().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("dnsmasq") && cmdline.contains(&needle)
        })
        .collect()
}

fn assert_nothing_left(name: &str, run_dir: &Path) {
    assert!(!Path::new(NETNS_DIR).join(name).exists(), "namespace {name} still there");
    assert_eq!(ours(), Vec::<String>::new(), "namespaces of this process left");
    assert_eq!(dnsmasq_for(run_dir), Vec::<i32>::new(), "dnsmasq still running");
}

fn query(lab: &Lab, name: &str) -> dns::DnsAnswer {
    let server = SocketAddr::from((lab.router_ip(), 53));
    lab.run_in(|| dns::query_a(server, name, Duration::from_secs(2)))
        .expect("enter the lab")
        .unwrap_or_else(|e| panic!("DNS query for {name}: {e}"))
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` with a deadline; returns (success, stdout + stderr).
fn run_with_deadline(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("out");
    let out = std::fs::File::create(&out_path).expect("create");
    let err = out.try_clone().expect("clone");
    let mut child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn().expect("spawn");
    let deadline = Instant::now() + limit;
    let ok = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (ok, std::fs::read_to_string(&out_path).unwrap_or_default())
}

#[test]
fn lab_serves_dhcp_and_dns_and_leaves_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !lab_available("lab_serves_dhcp_and_dns_and_leaves_nothing") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let lab = Lab::create(dir.path(), "test").expect("create the lab");
    let took = started.elapsed();
    say(&format!("lab creation: {took:.1?}"));
    let name = lab.netns_name().to_string();
    assert!(name.starts_with(&format!("gecko-{}-", std::process::id())), "{name}");
    assert_eq!(lab.netns_path(), Path::new("/run/netns").join(&name));
    assert_eq!(lab.router_ip(), Ipv4Addr::new(10, 77, 0, 1));
    assert_eq!(lab.subnet().to_string(), "10.77.0.0/24");
    assert_eq!(lab.tap_name(), "tap0");

    // Links: br0 with the router's address, tap0 on br0, lo up, no IPv6 anywhere.
    let links = sh(lab.command("ip").args(["-o", "link", "show"]));
    assert!(links.contains("tap0") && links.contains("master br0"), "{links}");
    let addrs = sh(lab.command("ip").args(["-o", "-4", "addr", "show", "dev", "br0"]));
    assert!(addrs.contains("10.77.0.1/24") && addrs.contains("10.77.0.5/24"), "{addrs}");
    let lo = sh(lab.command("ip").args(["-o", "link", "show", "lo"]));
    assert!(lo.contains("UP"), "{lo}");
    let v6 = sh(lab.command("ip").args(["-o", "-6", "addr", "show"]));
    assert_eq!(v6.trim(), "", "IPv6 addresses in the lab");
    for link in ["all", "default", "br0", "tap0", "lo"] {
        let v = sh(lab.command("cat").arg(format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6")));
        assert_eq!(v.trim(), "1", "IPv6 on {link}");
    }
    // Nothing of it outside: no br0/tap0 with the lab's address here.
    let host = sh(Command::new("ip").args(["-o", "-4", "addr", "show"]));
    assert!(!host.contains("10.77.0.1/"), "{host}");

    // DNS: configured names, the rest NXDOMAIN locally.
    let a = query(&lab, "lab-host.lab");
    assert_eq!((a.rcode, a.addrs.clone()), (dns::RCODE_NOERROR, vec![Ipv4Addr::new(10, 77, 0, 5)]));
    let a = query(&lab, "router.lab");
    assert_eq!(a.addrs, vec![Ipv4Addr::new(10, 77, 0, 1)]);
    for unknown in ["nothing-here.lab", "example.com", "www.wikipedia.org", "plainname"] {
        let a = query(&lab, unknown);
        assert!(a.is_nxdomain(), "{unknown}: {a:?}");
        assert!(a.addrs.is_empty(), "{unknown}: {a:?}");
    }

    // DHCP: a peer on the bridge gets a lease in the range.
    let peer = lab.add_peer("client").expect("add a peer");
    assert_eq!(peer.netns_name(), format!("{name}-client"));
    if let Some(busybox) = netns::find_tool("busybox") {
        let started = Instant::now();
        let (ok, out) = run_with_deadline(
            peer.command(&busybox).args([
                "udhcpc",
                "-i",
                "eth0",
                "-f",
                "-q",
                "-n",
                "-t",
                "5",
                "-T",
                "1",
                "-s",
                "/bin/true",
            ]),
            Duration::from_secs(15),
        );
        say(&format!("lab DHCP lease: {:.1?}", started.elapsed()));
        assert!(ok, "udhcpc: {out}");
        let leased: Ipv4Addr = out
            .split("lease of ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no lease in: {out}"));
        assert!(out.contains("obtained from 10.77.0.1"), "{out}");
        let (first, last) = LabConfig::default().dhcp_range;
        assert!((first..=last).contains(&leased), "{leased} outside the range");
        let leases = std::fs::read_to_string(lab.lease_file()).expect("lease file");
        assert!(leases.contains(&leased.to_string()), "{leases}");
        let log = std::fs::read_to_string(lab.dnsmasq_log()).expect("log");
        assert!(log.contains("DHCPACK(br0)"), "{log}");

        // With that address, the peer reaches the lab's DNS across the bridge.
        sh(peer.command("ip").args(["addr", "add", &format!("{leased}/24"), "dev", "eth0"]));
        let server = SocketAddr::from((lab.router_ip(), 53));
        let a = peer
            .run_in(|| dns::query_a(server, "lab-host.lab", Duration::from_secs(2)))
            .expect("enter the peer")
            .expect("DNS from the peer");
        assert_eq!(a.addrs, vec![Ipv4Addr::new(10, 77, 0, 5)]);
    } else {
        say("SKIPPED the DHCP client check: busybox (udhcpc) is not installed");
    }

    // Something started inside and left running is stopped with the lab.
    let mut sleeper = lab.command("sleep").arg("600").spawn().expect("sleep in the lab");
    let dnsmasq = lab.dnsmasq_pid().expect("dnsmasq runs");
    assert!(Path::new(&format!("/proc/{dnsmasq}")).exists());
    drop(peer);
    assert!(!Path::new(NETNS_DIR).join(format!("{name}-client")).exists());
    let started = Instant::now();
    drop(lab);
    say(&format!("lab teardown: {:.1?}", started.elapsed()));
    let status = sleeper.wait().expect("wait");
    assert!(!status.success(), "the sleeper was stopped ({status})");
    assert_nothing_left(&name, dir.path());
}

#[test]
fn two_labs_at_once_do_not_clash() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !lab_available("two_labs_at_once_do_not_clash") {
        return;
    }
    let dirs = [tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir")];
    let started = Instant::now();
    let labs: Vec<Lab> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                s.spawn(move || {
                    let mut config = LabConfig::default();
                    config
                        .hosts
                        .push(LabHost::new("which.lab", Ipv4Addr::new(10, 77, 0, 10 + i as u8)));
                    Lab::with_config(d.path(), &format!("parallel-{i}"), config)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread").expect("create")).collect()
    });
    say(&format!("two labs created in parallel: {:.1?}", started.elapsed()));
    assert_ne!(labs[0].netns_name(), labs[1].netns_name());
    // Same addresses, separate worlds: each answers with its own configuration.
    for (i, lab) in labs.iter().enumerate() {
        let a = query(lab, "which.lab");
        assert_eq!(a.addrs, vec![Ipv4Addr::new(10, 77, 0, 10 + i as u8)]);
    }
    let names: Vec<String> = labs.iter().map(|l| l.netns_name().to_string()).collect();
    drop(labs);
    for (name, dir) in names.iter().zip(&dirs) {
        assert_nothing_left(name, dir.path());
    }
}

#[test]
fn a_panic_inside_a_lab_still_removes_it() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !lab_available("a_panic_inside_a_lab_still_removes_it") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let name = Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::create(dir.path(), "panics").expect("create");
        *name.lock().expect("lock") = lab.netns_name().to_string();
        panic!("a case panics while the lab is up");
    });
    assert!(result.is_err());
    let name = name.into_inner().expect("lock");
    assert!(!name.is_empty());
    assert_nothing_left(&name, dir.path());
}

#[test]
fn stale_namespaces_of_dead_processes_are_swept() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !lab_available("stale_namespaces_of_dead_processes_are_swept") {
        return;
    }
    // A pid that no longer runs: a child that has exited and been reaped.
    let mut gone = Command::new("true").spawn().expect("spawn");
    let dead = gone.id();
    gone.wait().expect("wait");
    let stale = format!("gecko-{dead}-0");
    let stale_peer = format!("gecko-{dead}-0-client");
    for ns in [&stale, &stale_peer] {
        sh(Command::new("ip").args(["netns", "add", ns.as_str()]));
    }
    // What a killed run leaves running inside (its dnsmasq, say).
    let mut orphan = Command::new("ip")
        .args(["netns", "exec", &stale, "sleep", "600"])
        .spawn()
        .expect("sleep in the stale namespace");
    // It is inside once `ip netns exec` has become `sleep`.
    let cmdline = format!("/proc/{}/cmdline", orphan.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = std::fs::read(&cmdline).unwrap_or_default();
        if seen.starts_with(b"sleep\0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the orphan never entered {stale}; last cmdline: {:?}",
            String::from_utf8_lossy(&seen)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // A live process's namespace is not touched (ours, made by a lab below).
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = Lab::create(dir.path(), "sweeper").expect("create (sweeps)");
    for ns in [&stale, &stale_peer] {
        assert!(!Path::new(NETNS_DIR).join(ns).exists(), "{ns} not swept");
    }
    let status = orphan.wait().expect("wait");
    assert!(!status.success(), "the orphan was stopped ({status})");
    let swept = Lab::sweep_stale().expect("sweep");
    assert!(!swept.iter().any(|s| s.netns.starts_with(lab.netns_name())), "{swept:?}");
    assert!(lab.netns_path().exists(), "a live lab was swept");
    let name = lab.netns_name().to_string();
    drop(lab);
    assert_nothing_left(&name, dir.path());
}

/// A lab named and recorded as owned by `owner` (a stand-in process of this test), with a
/// peer namespace, as a run of `owner` would have left it.
fn recorded_lab(owner: ProcessId, dnsmasq: Option<ProcessId>) -> String {
    let name = format!("gecko-{}-0", owner.pid);
    OwnerRecord {
        netns: name.clone(),
        owner,
        label: "stand-in".into(),
        run_dir: std::env::temp_dir().join("stand-in"),
        dnsmasq,
    }
    .write()
    .expect("write the record");
    for ns in [name.clone(), format!("{name}-peer")] {
        sh(Command::new("ip").args(["netns", "add", ns.as_str()]));
    }
    name
}

fn exists(ns: &str) -> bool {
    Path::new(NETNS_DIR).join(ns).exists()
}

#[test]
fn a_lab_is_swept_only_once_its_recorded_owner_is_gone() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !lab_available("a_lab_is_swept_only_once_its_recorded_owner_is_gone") {
        return;
    }
    let mut owner = Command::new("sleep").arg("600").spawn().expect("a stand-in owner");
    let id = ProcessId::of(owner.id() as i32).expect("it runs");
    let name = recorded_lab(id, None);
    let peer = format!("{name}-peer");
    // Its owner runs (someone else's run on this machine): left alone.
    let swept = Lab::sweep_stale().expect("sweep");
    assert!(!swept.iter().any(|s| s.netns.starts_with(&name)), "{swept:?}");
    assert!(exists(&name) && exists(&peer));
    assert!(netns::lab_in_use(&name));
    // Gone: swept, peer first, each said in one line, the record removed.
    owner.kill().expect("kill");
    owner.wait().expect("wait");
    assert!(!netns::lab_in_use(&name));
    let swept = Lab::sweep_stale().expect("sweep");
    let ours: Vec<String> =
        swept.iter().filter(|s| s.netns.starts_with(&name)).map(|s| s.to_string()).collect();
    assert_eq!(ours.len(), 2, "{swept:?}");
    assert!(ours[0].starts_with(&format!("lab sweep: removed namespace {peer} ")), "{ours:?}");
    assert!(ours[1].starts_with(&format!("lab sweep: removed namespace {name} ")), "{ours:?}");
    assert!(ours[1].contains(&format!("its owner pid {} has exited", id.pid)), "{ours:?}");
    assert!(!exists(&name) && !exists(&peer));
    assert_eq!(OwnerRecord::load(&name), Ok(None));
}

#[test]
fn a_lab_whose_owner_pid_now_belongs_to_another_process_is_swept() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !lab_available("a_lab_whose_owner_pid_now_belongs_to_another_process_is_swept") {
        return;
    }
    // The pid runs, but it is not the process that made the lab (it started later).
    let mut other = Command::new("sleep").arg("600").spawn().expect("a process");
    let now = ProcessId::of(other.id() as i32).expect("it runs");
    let earlier = ProcessId { started: now.started.saturating_sub(1), ..now };
    let name = recorded_lab(earlier, None);
    let swept = Lab::sweep_stale().expect("sweep");
    let line = swept
        .iter()
        .find(|s| s.netns == name)
        .map(|s| s.to_string())
        .unwrap_or_else(|| panic!("{name} not swept: {swept:?}"));
    assert!(line.contains(&format!("pid {} is now another process", now.pid)), "{line}");
    assert!(!exists(&name) && !exists(&format!("{name}-peer")));
    // The process that has the pid now is not the lab's: it is not stopped.
    assert_eq!(other.try_wait().expect("try_wait"), None);
    other.kill().expect("kill");
    other.wait().expect("wait");
}

#[test]
fn a_dead_owners_dnsmasq_outside_its_namespace_is_stopped() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !lab_available("a_dead_owners_dnsmasq_outside_its_namespace_is_stopped") {
        return;
    }
    let mut gone = Command::new("true").spawn().expect("spawn");
    let dead = ProcessId { pid: gone.id() as i32, started: 1 };
    gone.wait().expect("wait");
    // A stand-in for a dnsmasq whose namespace was removed while it ran.
    let mut dnsmasq = Command::new("sleep").arg("600").spawn().expect("a stand-in dnsmasq");
    let d = ProcessId::of(dnsmasq.id() as i32).expect("it runs");
    let name = format!("gecko-{}-0", dead.pid);
    OwnerRecord {
        netns: name.clone(),
        owner: dead,
        label: "stand-in".into(),
        run_dir: std::env::temp_dir().join("stand-in"),
        dnsmasq: Some(d),
    }
    .write()
    .expect("write the record");
    let swept = Lab::sweep_stale().expect("sweep");
    let line = swept
        .iter()
        .find(|s| s.netns == name)
        .map(|s| s.to_string())
        .unwrap_or_else(|| panic!("{name} not swept: {swept:?}"));
    assert!(line.contains("its namespace already gone"), "{line}");
    assert!(line.contains(&format!("stopped dnsmasq (pid {})", d.pid)), "{line}");
    let status = dnsmasq.wait().expect("wait");
    assert!(!status.success(), "stopped: {status}");
    assert_eq!(OwnerRecord::load(&name), Ok(None));
}

/// A forward from host loopback into the lab: a host client reaches a server that exists
/// only inside the lab, both directions arrive whole, a half close passes through, and a
/// connection while the lab target has no address is closed without bytes.
#[test]
fn a_loopback_forward_reaches_a_server_inside_the_lab() {
    use gecko_hil::lab::forward::{Forward, ForwardSpec};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !lab_available("a_loopback_forward_reaches_a_server_inside_the_lab") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = Lab::create(dir.path(), "test").expect("create the lab");
    let host_addr = Ipv4Addr::new(10, 77, 0, 5);
    // A server only the lab can reach: it answers "<what it read>!" once its client half
    // closes.
    let server =
        lab.run_in(|| TcpListener::bind((host_addr, 0))).expect("enter the lab").expect("bind");
    let port = server.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in server.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut got = Vec::new();
            let _ = stream.read_to_end(&mut got);
            got.push(b'!');
            let _ = stream.write_all(&got);
        }
    });
    // Not reachable from the host itself.
    assert!(
        TcpStream::connect_timeout(
            &SocketAddr::from((host_addr, port)),
            Duration::from_millis(300)
        )
        .is_err(),
        "the lab's server is reachable from outside the lab"
    );
    let has_address = Arc::new(AtomicBool::new(true));
    let flag = has_address.clone();
    let spec: ForwardSpec = format!("127.0.0.1:0:{port}").parse().expect("spec");
    let forward = Forward::start(spec, &lab.netns_path(), move || {
        flag.load(Ordering::Relaxed).then_some(host_addr)
    })
    .expect("start the forward");
    let local = forward.local_addr();
    assert!(local.ip().is_loopback(), "{local}");

    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut client = TcpStream::connect(local).expect("connect to the forward");
    client.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    client.write_all(&payload).expect("send");
    client.shutdown(std::net::Shutdown::Write).expect("half close");
    let mut back = Vec::new();
    client.read_to_end(&mut back).expect("read the answer");
    assert_eq!(back.len(), payload.len() + 1);
    assert!(back.starts_with(&payload) && back.ends_with(b"!"), "the bytes changed on the way");
    assert_eq!(forward.served(), 1);

    // No address for the module yet: the host side is closed, nothing is sent.
    has_address.store(false, Ordering::Relaxed);
    let mut client = TcpStream::connect(local).expect("connect to the forward");
    client.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut nothing = Vec::new();
    let _ = client.read_to_end(&mut nothing);
    assert_eq!(nothing, b"", "bytes without a module");
    assert_eq!(forward.served(), 1);
    drop(forward);
    assert!(TcpStream::connect(local).is_err(), "the forward still listens after it stopped");
}
