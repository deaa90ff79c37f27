//! The simulated lab's network: a private network namespace per lab with a bridge, the lab
//! router's address on it, a TAP device for the simulated module, and `dnsmasq` as the
//! router's DHCP and DNS server.
//!
//! ```text
//!   namespace gecko-<pid>-<n>  (nothing of it exists outside the namespace)
//!   ┌──────────────────────────────────────────────────────────────┐
//!   │  lo (up)                                                     │
//!   │  br0  10.77.0.1/24 (+ lab host addresses)  ◄── dnsmasq       │
//!   │   ├── tap0   ◄── gecko-sim (--tap tap0)                      │
//!   │   └── vp-<peer> ─ veth ─► namespace gecko-<pid>-<n>-<peer>   │
//!   └──────────────────────────────────────────────────────────────┘
//! ```
//!
//! **Invariant:** lab networking happens only in namespaces the project creates and removes
//! itself. dnsmasq has no upstream servers (`--no-resolv`, and every name it does not know
//! gets NXDOMAIN locally), so nothing leaves the lab. IPv6 is off on every link of the lab.
//!
//! Its dnsmasq dies with the process that made the lab, also one killed outright (through
//! `setpriv --pdeathsig`, util-linux, when installed).
//!
//! A [`Lab`] removes everything when dropped (also on unwinding after a panic, and when a
//! signal stops the run: `crate::interrupt`): its dnsmasq, every process left inside its
//! namespace, its peers, the namespace and with it the bridge, the TAP and the veths (no
//! interface of a lab is ever outside its namespaces). [`teardown_live`] removes every lab
//! of this process at once, for a process about to exit.
//!
//! Each lab has an ownership record ([`owner::OwnerRecord`]: owner pid and start time, label,
//! run dir, dnsmasq). Labs left by a process killed outright (SIGKILL) are removed by the
//! sweeper ([`Lab::sweep_stale`]), which [`Lab::create`] runs first and which says what it
//! removed, one line each: only the project's labs (named `gecko-<pid>-<n>`) whose owner is
//! gone, the very process of the record, not a later one with the same pid. Labs whose
//! owner runs, anyone's, are left alone.
//!
//! Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), `ip` (iproute2), `dnsmasq`
//! (`dnsmasq-base`) and `/dev/net/tun`.

pub mod dns;
pub mod forward;
pub mod netns;
pub mod owner;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use netns::{NETNS_DIR, Swept};
use owner::{OwnerRecord, ProcessId};

/// Why a lab could not be set up. Always an infrastructure problem.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "lab networking needs root, or the capabilities CAP_NET_ADMIN and CAP_SYS_ADMIN \
         (running as uid {euid} without {missing}); run as root (sudo) or grant them, \
         e.g. `sudo setcap cap_net_admin,cap_sys_admin+ep <binary>`"
    )]
    NotPrivileged { euid: u32, missing: String },
    #[error("lab networking needs `{tool}`, which is not installed ({hint})")]
    MissingTool { tool: &'static str, hint: &'static str },
    #[error(
        "lab networking needs /dev/net/tun for the module's TAP device (load the `tun` kernel \
         module: `modprobe tun`; in a container, pass the device in)"
    )]
    NoTun,
    #[error("lab configuration: {0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command { command: String, status: String, stderr: String },
    #[error("lab `{label}` ({netns}): dnsmasq {message}; the end of its log:\n{log_tail}")]
    Dnsmasq { label: String, netns: String, message: String, log_tail: String },
}

/// An IPv4 subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

impl Subnet {
    /// The subnet of `addr` with this prefix length.
    pub fn of(addr: Ipv4Addr, prefix_len: u8) -> Self {
        Self { network: Ipv4Addr::from(u32::from(addr) & Self::mask_bits(prefix_len)), prefix_len }
    }

    fn mask_bits(prefix_len: u8) -> u32 {
        if prefix_len == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix_len.min(32))) }
    }

    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(Self::mask_bits(self.prefix_len))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & Self::mask_bits(self.prefix_len) == u32::from(self.network)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// A name the lab's DNS server answers (from its `addn-hosts` file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabHost {
    pub name: String,
    pub addr: Ipv4Addr,
}

impl LabHost {
    pub fn new(name: &str, addr: Ipv4Addr) -> Self {
        Self { name: name.to_string(), addr }
    }
}

/// The shape of a lab. [`LabConfig::default`] is the project's standard lab.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// The lab router's address on the bridge (also the DHCP server, DNS server, gateway).
    pub router: Ipv4Addr,
    pub prefix_len: u8,
    /// First and last address dnsmasq leases.
    pub dhcp_range: (Ipv4Addr, Ipv4Addr),
    pub lease_secs: u32,
    /// The domain dnsmasq gives DHCP clients (`--domain`); names in it are never forwarded.
    pub domain: String,
    /// Names the lab's DNS answers. Addresses other than the router's are added to the
    /// bridge too, so a program started with [`Lab::command`] can serve on them.
    pub hosts: Vec<LabHost>,
    /// How long to wait for dnsmasq to serve.
    pub start_timeout: Duration,
}

impl Default for LabConfig {
    fn default() -> Self {
        let router = Ipv4Addr::new(10, 77, 0, 1);
        Self {
            router,
            prefix_len: 24,
            dhcp_range: (Ipv4Addr::new(10, 77, 0, 100), Ipv4Addr::new(10, 77, 0, 199)),
            lease_secs: 3600,
            domain: "lab".into(),
            hosts: vec![
                LabHost::new("router.lab", router),
                LabHost::new("lab-host.lab", Ipv4Addr::new(10, 77, 0, 5)),
            ],
            start_timeout: Duration::from_secs(5),
        }
    }
}

impl LabConfig {
    pub fn subnet(&self) -> Subnet {
        Subnet::of(self.router, self.prefix_len)
    }

    fn validate(&self) -> Result<(), LabError> {
        let bad = |m: String| Err(LabError::Config(m));
        let subnet = self.subnet();
        if !(8..=30).contains(&self.prefix_len) {
            return bad(format!("prefix length /{} is not between /8 and /30", self.prefix_len));
        }
        let (first, last) = self.dhcp_range;
        if !subnet.contains(first) || !subnet.contains(last) || first > last {
            return bad(format!("DHCP range {first}–{last} is not an ordered range in {subnet}"));
        }
        if (first..=last).contains(&self.router) {
            return bad(format!("the router {} is inside the DHCP range", self.router));
        }
        for h in &self.hosts {
            let valid_name = !h.name.is_empty()
                && h.name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !valid_name {
                return bad(format!("`{}` is not a valid host name", h.name));
            }
            if !subnet.contains(h.addr) || h.addr == subnet.network {
                return bad(format!("host {} ({}) is not an address in {subnet}", h.name, h.addr));
            }
            if (first..=last).contains(&h.addr) {
                return bad(format!("host {} ({}) is inside the DHCP range", h.name, h.addr));
            }
        }
        if self.domain.is_empty() || self.domain.contains(['/', ' ', ',']) {
            return bad(format!("`{}` is not a valid domain", self.domain));
        }
        Ok(())
    }
}

/// Checks what a lab needs before touching anything. Returns the paths of `ip` and
/// `dnsmasq`.
pub fn check_preconditions() -> Result<(PathBuf, PathBuf), LabError> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        let missing = missing_capabilities();
        if !missing.is_empty() {
            return Err(LabError::NotPrivileged {
                euid: euid.as_raw(),
                missing: missing.join(" and "),
            });
        }
    }
    let ip = netns::find_tool("ip")
        .ok_or(LabError::MissingTool { tool: "ip", hint: "apt-get install iproute2" })?;
    let dnsmasq = netns::find_tool("dnsmasq")
        .ok_or(LabError::MissingTool { tool: "dnsmasq", hint: "apt-get install dnsmasq-base" })?;
    if !Path::new("/dev/net/tun").exists() {
        return Err(LabError::NoTun);
    }
    Ok((ip, dnsmasq))
}

/// The effective capabilities a lab needs that this process lacks.
fn missing_capabilities() -> Vec<&'static str> {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    let eff = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    [(CAP_NET_ADMIN, "CAP_NET_ADMIN"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN")]
        .into_iter()
        .filter(|(bit, _)| eff & (1 << bit) == 0)
        .map(|(_, name)| name)
        .collect()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The bridge in every lab.
pub const BRIDGE: &str = "br0";
/// The simulated module's TAP device in every lab.
pub const TAP: &str = "tap0";

/// A running lab network. Everything of it is removed on drop.
#[derive(Debug)]
pub struct Lab {
    name: String,
    label: String,
    run_dir: PathBuf,
    config: LabConfig,
    ip: PathBuf,
    dnsmasq: Option<Child>,
    /// Its ownership record, while it could be written.
    record: Option<OwnerRecord>,
    created_in: Duration,
}

impl Lab {
    /// Creates the standard lab ([`LabConfig::default`]) with its files in `run_dir`.
    /// `label` names it in messages (the rig, the test).
    pub fn create(run_dir: &Path, label: &str) -> Result<Lab, LabError> {
        Self::with_config(run_dir, label, LabConfig::default())
    }

    /// Creates a lab of this shape. One lab per `run_dir`.
    pub fn with_config(run_dir: &Path, label: &str, config: LabConfig) -> Result<Lab, LabError> {
        let started = Instant::now();
        config.validate()?;
        let (ip, dnsmasq) = check_preconditions()?;
        for swept in netns::sweep(&ip) {
            eprintln!("{swept}");
        }
        std::fs::create_dir_all(run_dir).map_err(|source| LabError::Io {
            what: format!("create {}", run_dir.display()),
            source,
        })?;
        let run_dir = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
        let name = format!(
            "{}{}-{}",
            netns::PREFIX,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        netns::live_insert(&name);
        // The record first: a namespace of ours never exists without one.
        let record = ProcessId::current().map(|owner| OwnerRecord {
            netns: name.clone(),
            owner,
            label: label.to_string(),
            run_dir: run_dir.clone(),
            dnsmasq: None,
        });
        let record = match record.as_ref().map(OwnerRecord::write) {
            Some(Ok(())) => record,
            Some(Err(e)) => {
                eprintln!(
                    "warning: lab {label} ({name}): no ownership record in {} ({e}); if this \
                     process is killed, the lab is swept only once no process has its pid",
                    owner::RECORDS_DIR
                );
                None
            }
            None => None,
        };
        if let Err(e) = netns::ip(&ip, &["netns", "add", &name], None) {
            OwnerRecord::remove(&name);
            netns::live_remove(&name);
            return Err(e);
        }
        // From here on, dropping `lab` removes whatever was made.
        let mut lab = Lab {
            name,
            label: label.to_string(),
            run_dir,
            config,
            ip,
            dnsmasq: None,
            record,
            created_in: Duration::ZERO,
        };
        lab.setup_links()?;
        lab.start_dnsmasq(&dnsmasq)?;
        lab.created_in = started.elapsed();
        Ok(lab)
    }

    fn setup_links(&self) -> Result<(), LabError> {
        // IPv6 off before any link exists (`default`), and on those that do (`all`: lo).
        self.disable_ipv6_in(&self.netns_path())?;
        self.room_for_floods()?;
        let subnet = self.subnet();
        let mut batch = format!(
            "link set lo up\n\
             link add {BRIDGE} type bridge forward_delay 0 stp_state 0\n\
             addr add {}/{} dev {BRIDGE}\n",
            self.config.router, subnet.prefix_len
        );
        let mut extra: Vec<Ipv4Addr> = Vec::new();
        for h in &self.config.hosts {
            if h.addr != self.config.router && !extra.contains(&h.addr) {
                extra.push(h.addr);
                batch += &format!("addr add {}/{} dev {BRIDGE}\n", h.addr, subnet.prefix_len);
            }
        }
        batch += &format!(
            "tuntap add dev {TAP} mode tap\n\
             link set {TAP} master {BRIDGE}\n\
             link set {TAP} up\n\
             link set {BRIDGE} up\n"
        );
        netns::ip(&self.ip, &["-n", &self.name, "-batch", "-"], Some(&batch))
    }

    fn disable_ipv6_in(&self, netns_path: &Path) -> Result<(), LabError> {
        set_knobs(
            netns_path,
            &[
                ("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1"),
                ("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1"),
            ],
        )
    }

    /// Lab servers take a burst of 1,000 connections without the kernel's SYN-flood
    /// defence: with a short SYN queue it answers with SYN cookies, and a cookie can turn a
    /// late packet of a connection already closed into a second connection with the same
    /// addresses, which a peer then counts. A long queue and no cookies keep one connection
    /// per connect (an overflow is dropped and the client retries, as TCP does).
    fn room_for_floods(&self) -> Result<(), LabError> {
        set_knobs(
            &self.netns_path(),
            &[
                ("/proc/sys/net/ipv4/tcp_max_syn_backlog", "4096"),
                ("/proc/sys/net/ipv4/tcp_syncookies", "0"),
                ("/proc/sys/net/core/somaxconn", "4096"),
            ],
        )
    }

    /// The lab's dnsmasq files.
    pub fn dnsmasq_log(&self) -> PathBuf {
        self.run_dir.join("dnsmasq.log")
    }
    pub fn lease_file(&self) -> PathBuf {
        self.run_dir.join("dnsmasq.leases")
    }
    pub fn hosts_file(&self) -> PathBuf {
        self.run_dir.join("dnsmasq.hosts")
    }
    fn pid_file(&self) -> PathBuf {
        self.run_dir.join("dnsmasq.pid")
    }
    fn stderr_file(&self) -> PathBuf {
        self.run_dir.join("dnsmasq.stderr")
    }

    fn start_dnsmasq(&mut self, dnsmasq: &Path) -> Result<(), LabError> {
        let io = |what: String| move |source| LabError::Io { what, source };
        let mut hosts = String::from("# lab host names (written by the harness)\n");
        for h in &self.config.hosts {
            hosts += &format!("{} {}\n", h.addr, h.name);
        }
        std::fs::write(self.hosts_file(), hosts)
            .map_err(io(format!("write {}", self.hosts_file().display())))?;
        for stale in [self.lease_file(), self.dnsmasq_log()] {
            let _ = std::fs::remove_file(stale);
        }
        let stderr = std::fs::File::create(self.stderr_file())
            .map_err(io(format!("create {}", self.stderr_file().display())))?;
        let c = &self.config;
        let subnet = self.subnet();
        let path_arg = |flag: &str, p: PathBuf| format!("{flag}={}", p.display());
        let mut cmd = self.daemon_command(dnsmasq);
        cmd.args([
            "--no-daemon".to_string(),
            "--conf-file=/dev/null".into(),
            // It runs as root inside the lab only: the run dir may be private to root, and
            // dnsmasq reads the hosts file after it would have dropped privileges.
            "--user=root".into(),
            "--bind-interfaces".into(),
            format!("--interface={BRIDGE}"),
            format!("--listen-address={}", c.router),
            "--no-ping".into(),
            "--no-resolv".into(),
            "--no-poll".into(),
            "--no-hosts".into(),
            path_arg("--addn-hosts", self.hosts_file()),
            // Every name not answered from the hosts file or the leases: NXDOMAIN, here.
            "--address=/#/".into(),
            format!("--domain={}", c.domain),
            format!("--local=/{}/", c.domain),
            "--domain-needed".into(),
            "--bogus-priv".into(),
            "--dhcp-authoritative".into(),
            format!(
                "--dhcp-range={},{},{},{}",
                c.dhcp_range.0,
                c.dhcp_range.1,
                subnet.netmask(),
                c.lease_secs
            ),
            format!("--dhcp-option=option:router,{}", c.router),
            format!("--dhcp-option=option:dns-server,{}", c.router),
            path_arg("--dhcp-leasefile", self.lease_file()),
            path_arg("--pid-file", self.pid_file()),
            path_arg("--log-facility", self.dnsmasq_log()),
            "--log-dhcp".into(),
            "--log-queries".into(),
        ]);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        let child = spawn_tied(cmd).map_err(io(format!("start {}", dnsmasq.display())))?;
        let pid = child.id() as i32;
        self.dnsmasq = Some(child);
        if let Some(record) = self.record.as_mut() {
            record.dnsmasq = ProcessId::of(pid);
            let _ = record.write();
        }
        self.wait_serving()
    }

    /// Waits until dnsmasq answers a DNS query for the first lab host (or any query, with no
    /// hosts) with the configured address.
    fn wait_serving(&mut self) -> Result<(), LabError> {
        let deadline = Instant::now() + self.config.start_timeout;
        let server = SocketAddr::from((self.config.router, 53));
        let probe = self.config.hosts.first().cloned();
        let probe_name = probe.as_ref().map_or("gecko-probe.invalid", |h| h.name.as_str());
        let mut last;
        loop {
            if let Some(child) = self.dnsmasq.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(self.dnsmasq_error(format!("exited during start ({status})")));
            }
            let answer =
                self.run_in(|| dns::query_a(server, probe_name, Duration::from_millis(50)))?;
            match (answer, &probe) {
                (Ok(a), Some(h)) if a.addrs.contains(&h.addr) => return Ok(()),
                (Ok(_), None) => return Ok(()),
                (Ok(a), Some(h)) => {
                    last = format!(
                        "answers {} with code {} and {:?}, not {} (is its hosts file {} readable?)",
                        h.name,
                        a.rcode,
                        a.addrs,
                        h.addr,
                        self.hosts_file().display()
                    );
                }
                (Err(e), _) => last = format!("no DNS answer on {server} ({e})"),
            }
            if Instant::now() >= deadline {
                return Err(self.dnsmasq_error(format!(
                    "does not serve within {:?}: {last}",
                    self.config.start_timeout
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn dnsmasq_error(&self, message: String) -> LabError {
        let mut tail = String::new();
        for file in [self.stderr_file(), self.dnsmasq_log()] {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(15);
            if !lines.is_empty() {
                tail += &format!("--- {}\n{}\n", file.display(), lines[from..].join("\n"));
            }
        }
        if tail.is_empty() {
            tail = "(empty)".into();
        }
        LabError::Dnsmasq {
            label: self.label.clone(),
            netns: self.name.clone(),
            message,
            log_tail: tail,
        }
    }

    /// A command that runs `program` inside the lab (`ip netns exec <ns> program`). Whatever
    /// it starts is stopped when the lab is dropped.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        exec_in(&self.ip, &self.name, program)
    }

    /// A program to run inside the lab as a daemon of this process (dnsmasq, a browser):
    /// it dies with this process, even one killed outright, when `setpriv` is there
    /// (`--pdeathsig KILL`), and it has its own process group, so a Ctrl-C at the terminal
    /// goes to the harness, which then takes the lab down in order. Start it with
    /// [`spawn_tied`].
    pub fn daemon_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = match netns::find_tool("setpriv") {
            Some(setpriv) => {
                let mut cmd = self.command(setpriv);
                cmd.args(["--pdeathsig", "KILL"]).arg(program.as_ref());
                cmd
            }
            None => self.command(program),
        };
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd
    }

    /// Forgets the lab's neighbour (ARP) entry for `addr`, so the next packet to it starts
    /// with an ARP request. Called before every connection the lab opens to a module (which
    /// may have just been reset or rejoined): the request teaches the module the lab host's
    /// address. Without it the host sends straight
    /// from its old entry, and a module whose stack must first resolve the host itself may
    /// hold its answer back (smoltcp sends at most one ARP request a second per address),
    /// which costs the kernel's 1 s SYN retransmission.
    pub fn forget_neighbour(&self, addr: Ipv4Addr) -> Result<(), LabError> {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["-n", &self.name, "neigh", "flush", "to"]).arg(addr.to_string());
        let command = format!("ip -n {} neigh flush to {addr}", self.name);
        let out = cmd.output().map_err(|source| LabError::Io { what: command.clone(), source })?;
        if !out.status.success() {
            return Err(LabError::Command {
                command,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Runs `f` on a thread inside the lab's namespace (sockets it opens are the lab's).
    pub fn run_in<T, F>(&self, f: F) -> Result<T, LabError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        netns::run_in_netns(&self.netns_path(), f)
    }

    /// Adds a peer: a namespace of its own (`<lab ns>-<name>`) whose `eth0` is a veth on the
    /// lab's bridge, IPv6 off, no address (it can ask the lab's DHCP for one). `name`: up to
    /// 10 letters, digits or `-`.
    pub fn add_peer(&self, name: &str) -> Result<Peer<'_>, LabError> {
        if name.is_empty()
            || name.len() > 10
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(LabError::Config(format!("`{name}` is not a valid peer name")));
        }
        let peer = Peer { lab: self, name: format!("{}-{name}", self.name) };
        netns::ip(&self.ip, &["netns", "add", &peer.name], None)?;
        self.disable_ipv6_in(&peer.netns_path())?;
        let outer = format!("vp-{name}");
        let batch = format!(
            "link add {outer} type veth peer name eth0 netns {}\n\
             link set {outer} master {BRIDGE}\n\
             link set {outer} up\n",
            peer.name
        );
        netns::ip(&self.ip, &["-n", &self.name, "-batch", "-"], Some(&batch))?;
        netns::ip(
            &self.ip,
            &["-n", &peer.name, "-batch", "-"],
            Some("link set lo up\nlink set eth0 up\n"),
        )?;
        Ok(peer)
    }

    pub fn netns_name(&self) -> &str {
        &self.name
    }
    /// `/run/netns/<name>`: open it and `setns` to enter the lab from a thread.
    pub fn netns_path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }
    pub fn label(&self) -> &str {
        &self.label
    }
    pub fn router_ip(&self) -> Ipv4Addr {
        self.config.router
    }
    pub fn tap_name(&self) -> &str {
        TAP
    }
    pub fn bridge_name(&self) -> &str {
        BRIDGE
    }
    pub fn subnet(&self) -> Subnet {
        self.config.subnet()
    }
    pub fn config(&self) -> &LabConfig {
        &self.config
    }
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
    /// How long [`Lab::create`] took (namespace, links, dnsmasq serving).
    pub fn created_in(&self) -> Duration {
        self.created_in
    }
    /// dnsmasq's pid, while it runs.
    pub fn dnsmasq_pid(&self) -> Option<u32> {
        self.dnsmasq.as_ref().map(Child::id)
    }

    /// Removes the project's labs whose owner process is gone (killed outright), with
    /// whatever still runs in them. Returns what it removed (print each: one line).
    pub fn sweep_stale() -> Result<Vec<Swept>, LabError> {
        let (ip, _) = check_preconditions()?;
        Ok(netns::sweep(&ip))
    }

    fn teardown(&mut self) {
        if let Some(mut child) = self.dnsmasq.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_millis(500);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.pid_file());
        // Peers first (their veths hang on our bridge), then our own namespace.
        let peers: Vec<String> = netns::list()
            .into_iter()
            .filter(|n| n.strip_prefix(&self.name).is_some_and(|rest| rest.starts_with('-')))
            .collect();
        for peer in peers {
            let _ = netns::remove(&self.ip, &peer);
        }
        if let Err(e) = netns::remove(&self.ip, &self.name) {
            eprintln!("warning: lab {} ({}): {e}", self.label, self.name);
        }
        if !self.netns_path().exists() {
            OwnerRecord::remove(&self.name);
        }
        netns::live_remove(&self.name);
    }
}

/// Removes every lab of this process now, with everything running in them, for a process
/// about to exit without unwinding (a second signal). Their `Lab` values must not be used
/// afterwards.
pub fn teardown_live() {
    let Some(ip) = netns::find_tool("ip") else { return };
    let live: Vec<String> = netns::LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for name in live {
        let peers: Vec<String> = netns::list()
            .into_iter()
            .filter(|n| n.strip_prefix(&name).is_some_and(|rest| rest.starts_with('-')))
            .collect();
        for peer in peers {
            let _ = netns::remove(&ip, &peer);
        }
        let _ = netns::remove(&ip, &name);
        if !Path::new(NETNS_DIR).join(&name).exists() {
            OwnerRecord::remove(&name);
        }
        netns::live_remove(&name);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A namespace of its own plugged into a lab's bridge (a client, a server, a capture point).
/// Removed when dropped (and with its lab, at the latest).
#[derive(Debug)]
pub struct Peer<'lab> {
    lab: &'lab Lab,
    name: String,
}

impl Peer<'_> {
    pub fn netns_name(&self) -> &str {
        &self.name
    }
    pub fn netns_path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }
    /// Its interface on the lab's bridge.
    pub fn interface(&self) -> &str {
        "eth0"
    }
    /// A command that runs `program` inside the peer's namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        exec_in(&self.lab.ip, &self.name, program)
    }
    /// Runs `f` on a thread inside the peer's namespace.
    pub fn run_in<T, F>(&self, f: F) -> Result<T, LabError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        netns::run_in_netns(&self.netns_path(), f)
    }
}

impl Drop for Peer<'_> {
    fn drop(&mut self) {
        let _ = netns::remove(&self.lab.ip, &self.name);
    }
}

/// Starts a lab daemon from one thread that lives as long as this process. The kernel's
/// parent-death signal (`setpriv --pdeathsig`) fires when the parent *thread* ends, and a lab
/// may be created on a thread that ends before the lab does (a runner's worker, a test's
/// helper thread).
pub fn spawn_tied(cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let _ = std::thread::Builder::new().name("lab-spawner".into()).spawn(move || {
            for (mut cmd, back) in rx {
                let _ = back.send(cmd.spawn());
            }
        });
        std::sync::Mutex::new(tx)
    });
    let gone = || std::io::Error::other("the lab's spawner thread is gone");
    let (back, answer) = std::sync::mpsc::channel();
    spawner.lock().map_err(|_| gone())?.send((cmd, back)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

/// Writes kernel settings inside a namespace; one this kernel lacks (IPv6 compiled out, say)
/// is skipped.
fn set_knobs(netns_path: &Path, knobs: &[(&str, &str)]) -> Result<(), LabError> {
    netns::run_in_netns(netns_path, || {
        for (knob, value) in knobs {
            if !Path::new(knob).exists() {
                continue;
            }
            std::fs::write(knob, value)
                .map_err(|source| LabError::Io { what: format!("write {knob}"), source })?;
        }
        Ok(())
    })?
}

/// `ip netns exec <name> <program>`.
fn exec_in(ip: &Path, name: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(ip);
    cmd.args(["netns", "exec", name]).arg(program);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::of(Ipv4Addr::new(10, 77, 0, 1), 24);
        assert_eq!(s.to_string(), "10.77.0.0/24");
        assert_eq!(s.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert!(s.contains(Ipv4Addr::new(10, 77, 0, 200)));
        assert!(!s.contains(Ipv4Addr::new(10, 77, 1, 1)));
    }

    #[test]
    fn config_validation() {
        assert!(LabConfig::default().validate().is_ok());
        let mut c = LabConfig::default();
        c.hosts.push(LabHost::new("in-range.lab", Ipv4Addr::new(10, 77, 0, 150)));
        assert!(matches!(c.validate(), Err(LabError::Config(m)) if m.contains("DHCP range")));
        let mut c = LabConfig::default();
        c.hosts.push(LabHost::new("outside.lab", Ipv4Addr::new(192, 0, 2, 1)));
        assert!(c.validate().is_err());
        let mut c = LabConfig::default();
        c.hosts.push(LabHost::new("bad name", Ipv4Addr::new(10, 77, 0, 6)));
        assert!(c.validate().is_err());
        let c = LabConfig {
            dhcp_range: (Ipv4Addr::new(10, 77, 0, 199), Ipv4Addr::new(10, 77, 0, 100)),
            ..LabConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
