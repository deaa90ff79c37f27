//! The simulated module's network: [`gecko_net`] (embassy-net, DHCP, DNS, ping, the socket
//! pool) over a TAP device, behind the simulated [`Radio`], which also gates the TAP's frames
//! (`dhcp_silent` drops DHCP frames).

use super::radio::Radio;
use embassy_net_tuntap::TunTapDevice;
use gecko_core::net::Mac;

pub use gecko_net::{DHCP_HOSTNAME, STACK_SOCKETS, is_dhcp, run_jobs, sockets};

/// The network side's shared state, with the simulated radio.
pub type Shared = gecko_net::Shared<Radio>;
/// [`Shared`], as handed around.
pub type SharedRef = gecko_net::SharedRef<Radio>;
/// The simulated module's [`gecko_core::platform::NetDriver`].
pub type SimNet<'d> = gecko_net::StackNet<'d, Radio>;
/// The TAP device behind the simulated radio.
pub type LabLink = gecko_net::GatedLink<TunTapDevice, Radio>;

/// The TAP device as the module's link: it sends from `mac`, and its frames pass only while
/// the simulated radio lets them.
pub fn lab_link(mut dev: TunTapDevice, shared: SharedRef, mac: Mac) -> LabLink {
    dev.set_hardware_address(mac);
    gecko_net::GatedLink::new(dev, shared, mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_time::{Duration, Timer};
    use gecko_core::net::{NetEvent, NetRequest};
    use gecko_core::platform::NetDriver;
    use std::string::String;

    /// Drives [`SimNet`] the way the runner does, on a real TAP in a lab namespace: no
    /// DHCP lease before association, a lease after it, DNS, ping, `dhcp_silent`, `drop_ap`.
    /// Needs root and a prepared lab (bridge 10.77.0.1/24 with dnsmasq serving
    /// 10.77.0.100-199 and `lab-host.lab` = 10.77.0.5): run inside the namespace with
    /// `GECKO_SIM_TAP=tap0 cargo test -p gecko-sim --lib -- --ignored over_a_tap`.
    #[test]
    #[ignore = "needs root and a lab namespace (GECKO_SIM_TAP)"]
    fn over_a_tap() {
        on_a_tap(120, |spawner, tap, tx| spawner.spawn(tap_task(tap, tx).expect("spawn")));
    }

    /// Where a TAP scenario sends its log (`Ok`) or what went wrong.
    pub(super) type ScenarioResult = std::sync::mpsc::Sender<Result<String, String>>;

    /// Runs a TAP scenario (a task `spawn` starts with the TAP's name and where to send its
    /// result) on an embassy executor of its own thread; panics on its error or after
    /// `timeout_s`. Skips without `GECKO_SIM_TAP`.
    pub(super) fn on_a_tap(
        timeout_s: u64,
        spawn: fn(embassy_executor::Spawner, String, ScenarioResult),
    ) {
        let Ok(tap) = std::env::var("GECKO_SIM_TAP") else {
            std::eprintln!("GECKO_SIM_TAP not set: skipped");
            return;
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let executor =
                std::boxed::Box::leak(std::boxed::Box::new(embassy_executor::Executor::new()));
            let args = std::boxed::Box::leak(std::boxed::Box::new(Some((tap, tx))));
            executor.run(move |spawner| {
                if let Some((tap, tx)) = args.take() {
                    spawn(spawner, tap, tx);
                }
            })
        });
        match rx.recv_timeout(std::time::Duration::from_secs(timeout_s)) {
            Ok(Ok(log)) => std::eprintln!("{log}"),
            Ok(Err(e)) => panic!("{e}"),
            Err(e) => panic!("no result: {e}"),
        }
    }

    #[embassy_executor::task]
    async fn tap_task(tap: String, tx: ScenarioResult) {
        let result = tap_scenario(&tap).await;
        let _ = tx.send(result);
    }

    async fn within(driver: &mut SimNet<'_>, ms: u64) -> Option<NetEvent> {
        embassy_futures::select::select(
            driver.next_event(),
            Timer::after(Duration::from_millis(ms)),
        )
        .await
        .left_or_none()
    }

    trait LeftOrNone<A> {
        fn left_or_none(self) -> Option<A>;
    }
    impl<A, B> LeftOrNone<A> for embassy_futures::select::Either<A, B> {
        fn left_or_none(self) -> Option<A> {
            match self {
                embassy_futures::select::Either::First(a) => Some(a),
                embassy_futures::select::Either::Second(_) => None,
            }
        }
    }

    async fn tap_scenario(tap: &str) -> Result<String, String> {
        use super::super::radio::{AccessPoint, FaultKind};
        use core::fmt::Write as _;
        use gecko_core::net::{Bss, Security};
        let mut log = String::new();
        let mac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x42];
        let dev = TunTapDevice::new(tap).map_err(|e| std::format!("open {tap}: {e}"))?;
        let shared = Shared::new_ref(Radio::new());
        let lab = [2, 0, 0, 0, 1, 1];
        shared.borrow_mut().radio.add_ap(AccessPoint {
            ssid: "lab".into(),
            bssid: lab,
            channel: 6,
            security: Security::Wpa2Aes,
            passkey: "labpass123".into(),
            rssi: -40,
            hidden: false,
        });
        let mut resources = embassy_net::StackResources::<STACK_SOCKETS>::new();
        let (stack, mut runner) = embassy_net::new(
            lab_link(dev, shared.clone(), mac),
            embassy_net::Config::default(),
            &mut resources,
            42,
        );
        let mut driver = SimNet::new(shared.clone(), Some(stack));
        let scenario = async {
            let t0 = embassy_time::Instant::now();
            driver.request(NetRequest::StartDhcp { attempt: 1 });
            if let Some(e) = within(&mut driver, 3000).await {
                return Err(std::format!("before association: {e:?}"));
            }
            let _ = writeln!(log, "no lease in 3 s before association (ok)");
            driver.request(NetRequest::Associate {
                attempt: 1,
                bss: Bss {
                    ssid: "lab".into(),
                    bssid: lab,
                    channel: 6,
                    rssi: -40,
                    security: Security::Wpa2Aes,
                },
                passkey: b"labpass123".to_vec(),
            });
            let e = within(&mut driver, 1000).await;
            if e != Some(NetEvent::Associated { attempt: 1 }) {
                return Err(std::format!("association: {e:?}"));
            }
            let t1 = embassy_time::Instant::now();
            let e = within(&mut driver, 10_000).await;
            let Some(NetEvent::DhcpBound { attempt: 1, config }) = e else {
                return Err(std::format!("lease: {e:?}"));
            };
            let _ = writeln!(
                log,
                "lease {:?} {} ms after association ({} ms after StartDhcp)",
                config,
                t1.elapsed().as_millis(),
                t0.elapsed().as_millis()
            );
            if config.address[..3] != [10, 77, 0]
                || config.gateway != [10, 77, 0, 1]
                || config.netmask != [255, 255, 255, 0]
            {
                return Err(std::format!("unexpected lease {config:?}"));
            }
            driver.request(NetRequest::Resolve { id: 1, name: "lab-host.lab".into() });
            let e = within(&mut driver, 5000).await;
            let _ = writeln!(log, "resolve lab-host.lab: {e:?}");
            if e != Some(NetEvent::Resolved { id: 1, address: Some([10, 77, 0, 5]) }) {
                return Err(std::format!("resolve: {e:?}"));
            }
            driver.request(NetRequest::Resolve { id: 2, name: "nowhere.lab".into() });
            let e = within(&mut driver, 5000).await;
            let _ = writeln!(log, "resolve nowhere.lab: {e:?}");
            if e != Some(NetEvent::Resolved { id: 2, address: None }) {
                return Err(std::format!("resolve nowhere: {e:?}"));
            }
            driver.request(NetRequest::Ping { id: 3, to: [10, 77, 0, 1] });
            let e = within(&mut driver, 5000).await;
            let _ = writeln!(log, "ping 10.77.0.1: {e:?}");
            if !matches!(e, Some(NetEvent::PingReply { id: 3, .. })) {
                return Err(std::format!("ping: {e:?}"));
            }
            driver.request(NetRequest::Ping { id: 4, to: [10, 77, 0, 250] });
            let e = within(&mut driver, 3000).await;
            let _ = writeln!(log, "ping 10.77.0.250 (nobody): {e:?}");
            if e.is_some() {
                return Err(std::format!("ping nobody: {e:?}"));
            }
            let fault = shared
                .borrow_mut()
                .radio
                .inject(FaultKind::DhcpSilent { count: None })
                .map_err(|e| e.0)?;
            driver.request(NetRequest::StartDhcp { attempt: 2 });
            if let Some(e) = within(&mut driver, 3000).await {
                return Err(std::format!("dhcp_silent: {e:?}"));
            }
            let fired = shared.borrow().radio.fault(fault).map(|f| f.fired);
            let _ = writeln!(log, "dhcp_silent: no lease in 3 s, fired {fired:?}");
            if fired.unwrap_or(0) == 0 {
                return Err("dhcp_silent never fired".into());
            }
            shared.borrow_mut().radio.clear_faults();
            shared.borrow_mut().wake_all();
            let e = within(&mut driver, 30_000).await;
            let _ = writeln!(log, "after clear_faults: {e:?}");
            if !matches!(e, Some(NetEvent::DhcpBound { attempt: 2, .. })) {
                return Err(std::format!("lease after clear: {e:?}"));
            }
            shared.borrow_mut().radio.inject(FaultKind::DropAp { bssid: lab }).map_err(|e| e.0)?;
            shared.borrow_mut().wake_all();
            let e = within(&mut driver, 1000).await;
            let _ = writeln!(log, "drop_ap: {e:?}");
            if e != Some(NetEvent::LinkLost) {
                return Err(std::format!("drop_ap: {e:?}"));
            }
            Timer::after(Duration::from_millis(200)).await;
            if stack.config_v4().is_some() || stack.is_link_up() {
                return Err("the stack kept its link or address after LinkLost".into());
            }
            let _ = writeln!(log, "link down and address gone after LinkLost (ok)");
            for e in shared.borrow().radio.events_since(0) {
                let _ = writeln!(log, "  radio #{} {} {}", e.seq, e.unix_ms, e.text);
            }
            Ok(core::mem::take(&mut log))
        };
        let background = embassy_futures::join::join(runner.run(), run_jobs(stack, &shared));
        match embassy_futures::select::select(scenario, background).await {
            embassy_futures::select::Either::First(r) => r,
            embassy_futures::select::Either::Second(_) => unreachable!(),
        }
    }

    mod sockets {
        /// The sockets end to end on a real TAP in a lab namespace, driven through [`SimNet`]
        /// as the runner drives it, with std sockets of the namespace as peers: a TCP echo
        /// round trip, a refused connect, 10 clients at once on a listener, UDP, `IpDown`,
        /// 1000 connects at once and 1000 clients at once (sockets back in the pool after).
        /// Needs root and a lab (bridge `10.77.0.1/24`, dnsmasq leasing 10.77.0.100-199): run
        /// inside the namespace with
        /// `GECKO_SIM_TAP=tap0 cargo test -p gecko-sim --lib -- --ignored sockets_over_a_tap`.
        #[test]
        #[ignore = "needs root and a lab namespace (GECKO_SIM_TAP)"]
        fn sockets_over_a_tap() {
            super::on_a_tap(300, |spawner, tap, tx| {
                spawner.spawn(socket_task(tap, tx).expect("spawn"));
            });
        }

        #[embassy_executor::task]
        async fn socket_task(tap: std::string::String, tx: super::ScenarioResult) {
            let _ = tx.send(scenario(&tap).await);
        }

        use super::super::{SimNet, lab_link, run_jobs};
        use super::within;
        use crate::radio::Radio;
        use embassy_futures::join::join;
        use embassy_futures::select::{Either, select};
        use embassy_time::{Duration, Timer};
        use gecko_core::net::NetRequest;
        use gecko_core::net::{ConnFailure, ConnId, NetEvent};
        use gecko_core::platform::NetDriver;
        use gecko_net::sockets::{TCP_SOCKETS, UDP_SOCKETS};
        use std::string::{String, ToString};
        use std::vec::Vec;

        /// Collects events for `ms` (or until `done` says so).
        async fn collect(
            driver: &mut SimNet<'_>,
            ms: u64,
            mut done: impl FnMut(&[NetEvent]) -> bool,
        ) -> Vec<NetEvent> {
            let end = embassy_time::Instant::now() + Duration::from_millis(ms);
            let mut got = Vec::new();
            while !done(&got) {
                let left = end.saturating_duration_since(embassy_time::Instant::now());
                if left == Duration::from_ticks(0) {
                    break;
                }
                match within(driver, left.as_millis().max(1)).await {
                    Some(e) => got.push(e),
                    None => break,
                }
            }
            got
        }

        /// Waits (cooperatively) for a std thread to finish.
        async fn joined<T>(h: std::thread::JoinHandle<T>) -> T {
            while !h.is_finished() {
                Timer::after(Duration::from_millis(10)).await;
            }
            h.join().expect("peer thread")
        }

        async fn scenario(tap: &str) -> Result<String, String> {
            use crate::radio::AccessPoint;
            use core::fmt::Write as _;
            use gecko_core::net::{Bss, Security};
            use std::format;
            use std::io::{Read as _, Write as _};
            let mut log = String::new();
            let mac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x43];
            let dev = embassy_net_tuntap::TunTapDevice::new(tap)
                .map_err(|e| format!("open {tap}: {e}"))?;
            let shared = super::super::Shared::new_ref(Radio::new());
            let lab = [2, 0, 0, 0, 1, 1];
            shared.borrow_mut().radio.add_ap(AccessPoint {
                ssid: "lab".into(),
                bssid: lab,
                channel: 6,
                security: Security::Open,
                passkey: String::new(),
                rssi: -40,
                hidden: false,
            });
            let mut resources = embassy_net::StackResources::<{ gecko_net::STACK_SOCKETS }>::new();
            let (stack, mut runner) = embassy_net::new(
                lab_link(dev, shared.clone(), mac),
                embassy_net::Config::default(),
                &mut resources,
                43,
            );
            let mut driver = SimNet::new(shared.clone(), Some(stack));
            let scenario = async {
                driver.request(NetRequest::Associate {
                    attempt: 1,
                    bss: Bss {
                        ssid: "lab".into(),
                        bssid: lab,
                        channel: 6,
                        rssi: -40,
                        security: Security::Open,
                    },
                    passkey: Vec::new(),
                });
                driver.request(NetRequest::StartDhcp { attempt: 1 });
                let mut me = None;
                for _ in 0..3 {
                    if let Some(NetEvent::DhcpBound { config, .. }) =
                        within(&mut driver, 10_000).await
                    {
                        me = Some(config.address);
                        break;
                    }
                }
                let me = me.ok_or("no lease")?;
                let me_ip = std::net::Ipv4Addr::from(me);
                let _ = writeln!(log, "lease {me_ip}");

                // 1. TCP echo round trip, byte-exact, 64 KiB (both ways larger than the buffers).
                let echo =
                    std::net::TcpListener::bind("10.77.0.1:7000").map_err(|e| e.to_string())?;
                let echo_peer = std::thread::spawn(move || {
                    let (mut s, _) = echo.accept().expect("accept");
                    let mut buf = [0u8; 1500];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => s.write_all(&buf[..n]).expect("echo"),
                        }
                    }
                });
                driver.request(NetRequest::TcpConnect {
                    conn: ConnId(1),
                    to: [10, 77, 0, 1],
                    port: 7000,
                    local_port: 0,
                });
                let e = within(&mut driver, 3000).await;
                let Some(NetEvent::TcpConnected { conn: ConnId(1), local_port }) = e else {
                    return Err(format!("connect: {e:?}"));
                };
                let payload: Vec<u8> =
                    (0..65536u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
                for part in payload.chunks(1000) {
                    driver.request(NetRequest::Send {
                        conn: ConnId(1),
                        data: part.to_vec(),
                        to: None,
                    });
                }
                let total = payload.len();
                let events = collect(&mut driver, 20_000, |ev| {
                    let (mut got, mut sent) = (0, 0);
                    for e in ev {
                        match e {
                            NetEvent::Received { data, .. } => got += data.len(),
                            NetEvent::Sent { len, .. } => sent += len,
                            _ => {}
                        }
                    }
                    got >= total && sent >= total
                })
                .await;
                let mut back = Vec::new();
                let mut sent = 0usize;
                for e in &events {
                    match e {
                        NetEvent::Received { conn: ConnId(1), data, from } => {
                            if *from != ([10, 77, 0, 1], 7000) {
                                return Err(format!("from {from:?}"));
                            }
                            back.extend_from_slice(data);
                        }
                        NetEvent::Sent { conn: ConnId(1), len } => sent += len,
                        other => return Err(format!("echo: unexpected {other:?}")),
                    }
                }
                if back != payload || sent != payload.len() {
                    return Err(format!("echo: got {} bytes back, Sent {sent}", back.len()));
                }
                let _ = writeln!(
                    log,
                    "echo: {} bytes sent and back byte-exact from local port {local_port}",
                    back.len()
                );
                driver.request(NetRequest::Close { conn: ConnId(1) });
                let e = within(&mut driver, 6000).await;
                if e != Some(NetEvent::Closed { conn: ConnId(1) }) {
                    return Err(format!("close: {e:?}"));
                }
                joined(echo_peer).await;

                // 2. Refused.
                driver.request(NetRequest::TcpConnect {
                    conn: ConnId(2),
                    to: [10, 77, 0, 1],
                    port: 7001,
                    local_port: 0,
                });
                let e = within(&mut driver, 3000).await;
                let _ = writeln!(log, "connect to a closed port: {e:?}");
                if e != Some(NetEvent::ConnFailed { conn: ConnId(2), reason: ConnFailure::Refused })
                {
                    return Err(format!("refused: {e:?}"));
                }

                // 3. A listener, 10 clients at once; each says hello, the module answers, closes.
                driver.request(NetRequest::TcpListen { listener: ConnId(3), port: 8000 });
                Timer::after(Duration::from_millis(100)).await;
                let clients = std::thread::spawn(move || {
                    let socks: Vec<_> =
                        (0..10).map(|_| std::net::TcpStream::connect((me_ip, 8000))).collect();
                    let mut ok = 0;
                    for (i, s) in socks.into_iter().enumerate() {
                        let Ok(mut s) = s else { continue };
                        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                        let _ = s.write_all(format!("hello {i}").as_bytes());
                        let mut buf = Vec::new();
                        if s.read_to_end(&mut buf).is_ok() && buf == b"bye" {
                            ok += 1;
                        }
                    }
                    ok
                });
                let mut accepted = Vec::new();
                let mut closed = Vec::new();
                let t0 = embassy_time::Instant::now();
                while closed.len() < 10 && t0.elapsed() < Duration::from_secs(15) {
                    let Some(e) = within(&mut driver, 500).await else { continue };
                    match e {
                        NetEvent::TcpAccepted { listener: ConnId(3), conn, peer }
                            if peer.0 == [10, 77, 0, 1] =>
                        {
                            accepted.push(conn);
                        }
                        NetEvent::Received { conn, .. } => {
                            let data = b"bye".to_vec();
                            driver.request(NetRequest::Send { conn, data, to: None });
                            driver.request(NetRequest::Close { conn });
                        }
                        NetEvent::Sent { len: 3, .. } => {}
                        NetEvent::Closed { conn: ConnId(conn) } => closed.push(conn),
                        other => return Err(format!("listener: unexpected {other:?}")),
                    }
                }
                let ok = joined(clients).await;
                let _ = writeln!(
                    log,
                    "10 clients at once: {} accepted (ids {:#x}..), {ok} got their answer, {} Closed",
                    accepted.len(),
                    accepted.first().map_or(0, |c: &ConnId| c.0),
                    closed.len()
                );
                if accepted.len() != 10 || ok != 10 || accepted.iter().any(|c| !c.is_accepted()) {
                    return Err(format!("listener: {accepted:?} ok {ok} closed {closed:?}"));
                }

                // 4. UDP echo.
                let udp_peer =
                    std::net::UdpSocket::bind("10.77.0.1:7002").map_err(|e| e.to_string())?;
                let udp_thread = std::thread::spawn(move || {
                    let mut buf = [0u8; 2000];
                    let _ = udp_peer.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                    if let Ok((n, from)) = udp_peer.recv_from(&mut buf) {
                        let _ = udp_peer.send_to(&buf[..n], from);
                    }
                });
                driver.request(NetRequest::UdpOpen { conn: ConnId(4), local_port: 0 });
                let e = within(&mut driver, 1000).await;
                let Some(NetEvent::UdpOpened { conn: ConnId(4), local_port: uport }) = e else {
                    return Err(format!("udp open: {e:?}"));
                };
                driver.request(NetRequest::Send {
                    conn: ConnId(4),
                    data: b"datagram".to_vec(),
                    to: Some(([10, 77, 0, 1], 7002)),
                });
                let events = collect(&mut driver, 3000, |ev| ev.len() >= 2).await;
                let want = [
                    NetEvent::Sent { conn: ConnId(4), len: 8 },
                    NetEvent::Received {
                        conn: ConnId(4),
                        data: b"datagram".to_vec(),
                        from: ([10, 77, 0, 1], 7002),
                    },
                ];
                if events != want {
                    return Err(format!("udp: {events:?}"));
                }
                joined(udp_thread).await;
                let _ = writeln!(log, "udp echo from local port {uport}: ok");

                // 5. IpDown aborts open connections (and the UDP socket); the listener stays.
                let hold =
                    std::net::TcpListener::bind("10.77.0.1:7003").map_err(|e| e.to_string())?;
                driver.request(NetRequest::TcpConnect {
                    conn: ConnId(5),
                    to: [10, 77, 0, 1],
                    port: 7003,
                    local_port: 0,
                });
                let e = within(&mut driver, 3000).await;
                if !matches!(e, Some(NetEvent::TcpConnected { conn: ConnId(5), .. })) {
                    return Err(format!("connect 5: {e:?}"));
                }
                driver.request(NetRequest::IpDown);
                let mut events = collect(&mut driver, 3000, |ev| ev.len() >= 2).await;
                events.sort_by_key(|e| format!("{e:?}"));
                let _ = writeln!(log, "IpDown: {events:?}");
                if events
                    != [NetEvent::Closed { conn: ConnId(4) }, NetEvent::Closed { conn: ConnId(5) }]
                {
                    return Err(format!("IpDown: {events:?}"));
                }
                drop(hold);
                driver.request(NetRequest::StartDhcp { attempt: 2 });
                let e = within(&mut driver, 10_000).await;
                if !matches!(e, Some(NetEvent::DhcpBound { .. })) {
                    return Err(format!("lease again: {e:?}"));
                }

                // 6. 1000 clients at once on the listener: every accepted one is closed at once.
                let storm = std::thread::spawn(move || {
                    let threads: Vec<_> = (0..1000)
                        .map(|_| {
                            std::thread::spawn(move || {
                                let addr = std::net::SocketAddr::from((me_ip, 8000));
                                std::net::TcpStream::connect_timeout(
                                    &addr,
                                    std::time::Duration::from_secs(3),
                                )
                                .is_ok()
                            })
                        })
                        .collect();
                    threads.into_iter().filter_map(|t| t.join().ok()).filter(|ok| *ok).count()
                });
                let mut accepted = 0;
                // A Close that crosses the peer's close is answered with a second `Closed`.
                let mut closed = std::collections::BTreeSet::new();
                let t0 = embassy_time::Instant::now();
                while !storm.is_finished() || t0.elapsed() < Duration::from_secs(1) {
                    if let Some(e) = within(&mut driver, 50).await {
                        match e {
                            NetEvent::TcpAccepted { conn, .. } => {
                                accepted += 1;
                                driver.request(NetRequest::Close { conn });
                            }
                            NetEvent::Closed { conn } => {
                                closed.insert(conn);
                            }
                            _ => {}
                        }
                    }
                }
                let connected = joined(storm).await;
                // Until 3 s pass without an event.
                while let Some(e) = within(&mut driver, 3000).await {
                    match e {
                        NetEvent::TcpAccepted { conn, .. } => {
                            accepted += 1;
                            driver.request(NetRequest::Close { conn });
                        }
                        NetEvent::Closed { conn } => {
                            closed.insert(conn);
                        }
                        _ => {}
                    }
                }
                let _ = writeln!(
                    log,
                    "1000 clients at once: {connected} connected (kernel side), {accepted} accepted, {} Closed",
                    closed.len()
                );
                if accepted == 0 || closed.len() != accepted {
                    return Err(format!("storm: accepted {accepted} closed {}", closed.len()));
                }

                // 7. 1000 connects at once.
                driver.request(NetRequest::TcpUnlisten { listener: ConnId(3) });
                Timer::after(Duration::from_millis(200)).await;
                let far =
                    std::net::TcpListener::bind("10.77.0.1:7004").map_err(|e| e.to_string())?;
                for conn in 0..1000 {
                    driver.request(NetRequest::TcpConnect {
                        conn: ConnId(1000 + conn),
                        to: [10, 77, 0, 1],
                        port: 7004,
                        local_port: 0,
                    });
                }
                let events = collect(&mut driver, 5000, |ev| ev.len() >= 1000).await;
                let up: Vec<ConnId> = events
                    .iter()
                    .filter_map(|e| match e {
                        NetEvent::TcpConnected { conn, .. } => Some(*conn),
                        _ => None,
                    })
                    .collect();
                let nosock = events
                    .iter()
                    .filter(|e| {
                        matches!(e, NetEvent::ConnFailed { reason: ConnFailure::NoSocket, .. })
                    })
                    .count();
                let _ = writeln!(
                    log,
                    "1000 connects at once: {} connected, {nosock} NoSocket",
                    up.len()
                );
                if up.len() != TCP_SOCKETS || nosock != 1000 - TCP_SOCKETS {
                    return Err(format!("1000 connects: {events:?}"));
                }
                for conn in &up {
                    driver.request(NetRequest::Close { conn: *conn });
                }
                let closed = collect(&mut driver, 8000, |ev| ev.len() >= up.len()).await;
                drop(far);
                if closed.len() != up.len() {
                    return Err(format!("closing 1000 connects: {closed:?}"));
                }
                Timer::after(Duration::from_millis(500)).await;
                let idle = shared.borrow().sockets.idle();
                let _ = writeln!(log, "idle after all closed: {idle:?}");
                if idle != (TCP_SOCKETS, UDP_SOCKETS) {
                    return Err(format!("leak: idle {idle:?}"));
                }

                // 8. reset() with a listener and an open connection: everything back, no event.
                let hold =
                    std::net::TcpListener::bind("10.77.0.1:7005").map_err(|e| e.to_string())?;
                driver.request(NetRequest::TcpListen { listener: ConnId(9), port: 8001 });
                driver.request(NetRequest::TcpConnect {
                    conn: ConnId(6),
                    to: [10, 77, 0, 1],
                    port: 7005,
                    local_port: 0,
                });
                let e = within(&mut driver, 3000).await;
                if !matches!(e, Some(NetEvent::TcpConnected { conn: ConnId(6), .. })) {
                    return Err(format!("connect 6: {e:?}"));
                }
                driver.reset();
                let events = collect(&mut driver, 2000, |_| false).await;
                Timer::after(Duration::from_millis(500)).await;
                let idle = shared.borrow().sockets.idle();
                let busy = shared.borrow().sockets.busy_tcp();
                let _ = writeln!(log, "after reset: events {events:?}, idle {idle:?}, busy {busy}");
                drop(hold);
                if !events.is_empty() || idle != (TCP_SOCKETS, UDP_SOCKETS) || busy != 0 {
                    return Err("reset left sockets behind".into());
                }
                Ok(core::mem::take(&mut log))
            };
            let background = join(runner.run(), run_jobs(stack, &shared));
            match select(scenario, background).await {
                Either::First(r) => r,
                Either::Second(_) => unreachable!(),
            }
        }
    }
}
