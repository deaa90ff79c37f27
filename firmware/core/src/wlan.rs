//! The WLAN interface: the chapter's Network Up Sequence (steps 1–7) as a sans-IO state
//! machine, and the formats of the networking commands' output.
//!
//! [`Wlan`] is driven by the [`crate::Module`]: it starts a sequence ([`Wlan::up`]), tears the
//! interface down ([`Wlan::down`]), is fed the platform's [`NetEvent`]s ([`Wlan::event`]) and
//! its own timers ([`Wlan::tick`]). Every call collects its effects in an [`Out`]: requests for
//! the platform, log lines, and whether a waiting command may now be answered.
//!
//! # Counters (the chapter is ambiguous; this is the decision)
//!
//! The chapter speaks of a "join attempt count" (steps 1 and 3), a "join retry count" (steps 4
//! and 6) and an "auto join retry count" (reset at the start of the whole sequence). Read as
//! one counter, step 6 ("increment … join retry count, then GOTO step 1") would make step 1
//! fail at once after every auto-join retry, so they are kept apart:
//!
//! * **join attempt count** (`pass_attempts`, steps 1, 3, 4): association attempts made in the
//!   current *pass*. A pass is one run of steps 1–6: the sequence's first, and each one an
//!   auto-join retry starts ("starts the network up sequence again"), which resets it to 0.
//!   Step 1 fails the pass when it has reached `wlan.join.retries`, so that variable is the
//!   number of association attempts per pass (its range starts at 1: at least one attempt).
//!   Step 3's "join attempt count == 1" is read as "before the pass's first attempt": the probe
//!   runs once per pass, the pass's later attempts reuse what it found.
//! * **join retry count** (`attempt`, steps 4 and 6): every association attempt of the module's
//!   life, incremented by each attempt and by each auto-join retry; never reset. It is the
//!   `attempt` id of [`NetRequest::Associate`] and [`NetRequest::StartDhcp`], so a late answer
//!   to an attempt the core has given up on (timeout) is recognised and ignored.
//! * **auto join retry count** (`auto_retries`, step 6): passes retried; reset when a sequence
//!   starts (a command, boot auto-join, or a lost link); compared with
//!   `wlan.auto_join.retries`, where 0 means retry forever (protocol-facts §3).
//!
//! # Other decisions (assumed; no source gives them)
//!
//! * Step 2, "previously joined": the network details (BSSID, channel, security) of the last
//!   sequence that reached step 7 with success are kept (in RAM) together with the
//!   `wlan.ssid`/`wlan.bssid`/`wlan.security` they were found for; a later sequence with the
//!   same settings skips the probe. A pass that fails with those details forgets them, so the
//!   next pass (auto-join retry) probes again.
//! * Step 3's probe asks by `wlan.bssid` (`Scan { ssid: None, bssid }`) when it is set, else by
//!   `wlan.ssid`; results are filtered by that and by `wlan.security` unless `auto`; the
//!   strongest match wins. The probe times out after [`scan_timeout`] (a failed probe).
//! * Step 3 and `wlan.scan.*`: the probe carries the scan settings ([`ScanParams`]: channel
//!   mask, active or passive, the dwell time of that type, probes per channel), as
//!   `wlan_scan` does. `wlan.scan.retries` is the number of times a probe that fails (finds
//!   no matching network, or gets no answer in time) is repeated before step 3 fails; each
//!   repeat is a new probe with a new id. It applies to the probe only: `wlan_scan` answers
//!   with what one scan heard, an empty list included.
//! * Security not supported: when every matching network the probe found has a security type
//!   the module cannot join ([`Security::is_supported`]), the sequence ends at once with
//!   `security_not_supported`, like the configuration errors below: no probe repeat, no
//!   association attempt, no auto-join retry (none would change the network's security).
//!   A supported match is preferred over a stronger unsupported one.
//! * Stored details on a stale channel (the AP moved): step 4 associates on the stored
//!   channel and fails (`NotFound`); per the chapter that is an association failure (GOTO
//!   step 1), and step 2 again uses the stored details, so the pass spends its
//!   `wlan.join.retries` attempts on them and fails. The failed pass forgets the details, so
//!   the next pass (an auto-join retry, or the next `network_up`) probes and finds the new
//!   channel.
//! * Step 4: an association timeout (`wlan.join.timeout`, **ms**) sends
//!   [`NetRequest::Disassociate`] and counts as a failed attempt, like
//!   [`NetEvent::AssociationFailed`].
//! * Step 5: `wlan.dhcp.timeout` is in **seconds**. A DHCP timeout (or the link lost during
//!   DHCP) fails the pass (step 5's ELSE, GOTO step 6) after `IpDown` and `Disassociate`;
//!   it does not make another association attempt in the same pass.
//! * Step 6: `wlan.auto_join.retry_delay` is in **seconds**. The retry also happens for a
//!   sequence a command started (the chapter does not limit step 6 to boot). A command
//!   waiting on the sequence is answered at step 7; when `wlan.auto_join.retries` is 0
//!   (forever) it is answered `Command failed` at the end of the first failed pass while the
//!   retries go on. "Just forced down": `network_down` aborts a running sequence at once
//!   (result `aborted`), so no retry follows it.
//! * Configuration errors end the sequence at once, without retries: `wlan.ssid` empty
//!   (`ssid_not_set`), a probe finding a secured network while `wlan.passkey` is empty
//!   (`password_not_set`).
//! * A lost link while up logs `[Disassociated]`, drops the IP configuration and, when
//!   `wlan.auto_join.enabled`, starts a new sequence.

use crate::console::level;
use crate::net::{
    AssocFailure, Bss, Ipv4, Ipv4Config, Mac, NetEvent, NetRequest, RequestIds, ScanParams,
    ScanType, Security,
};
use crate::time::{Duration, Instant};
use crate::vars::{self, Var, Vars};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// How long a probe or a `wlan_scan` waits for [`NetEvent::ScanDone`] at least (assumed).
pub const SCAN_TIMEOUT: Duration = Duration::from_millis(10_000);

/// How long a scan with these settings is waited for: [`SCAN_TIMEOUT`], or twice the time the
/// radio listens (dwell time × channels) when that is longer, so slow settings (up to 14 s)
/// never time out by design (assumed).
pub fn scan_timeout(params: &ScanParams) -> Duration {
    SCAN_TIMEOUT.max(Duration::from_millis(params.duration_ms().saturating_mul(2)))
}

/// The scan settings of `wlan.scan.*` (every value was checked when it was set).
pub fn scan_params(vars: &Vars) -> ScanParams {
    let num = |var: Var, default: u16| vars.text(var).parse::<u16>().unwrap_or(default);
    let d = ScanParams::DEFAULT;
    let kind = if vars.text(Var::WlanScanType) == "passive" {
        ScanType::Passive
    } else {
        ScanType::Active
    };
    ScanParams {
        channel_mask: num(Var::WlanScanChannelMask, d.channel_mask),
        kind,
        dwell_ms: match kind {
            ScanType::Active => num(Var::WlanScanActiveDwell, d.dwell_ms),
            ScanType::Passive => num(Var::WlanScanPassiveDwell, 110),
        },
        num_probes: u8::try_from(num(Var::WlanScanNumProbes, d.num_probes.into()))
            .unwrap_or(d.num_probes),
    }
}
/// How long `ping` waits for [`NetEvent::PingReply`] (assumed).
pub const PING_TIMEOUT: Duration = Duration::from_millis(1_000);

/// The value of `wlan.join.result`: the SDK enum `gos_wlan_result_t` (protocol-facts §3),
/// printed as its lower-case name. Assumed: no source says what `get wlan.join.result`
/// prints; 7 and 8 (`failed`, `aborted`) are inferred from the WiConnect enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinResult {
    /// No sequence has run since boot.
    Unknown,
    Success,
    /// A sequence is running (including the wait before an auto-join retry).
    Joining,
    SsidNotSet,
    PasswordNotSet,
    /// The probe found the network only with a security type the module cannot join.
    SecurityNotSupported,
    /// The probe found no network matching the settings.
    NotFound,
    /// Association or DHCP failed on every attempt.
    Failed,
    /// `network_down` stopped the sequence.
    Aborted,
}

impl JoinResult {
    /// Every value, in the SDK's order; [`JoinResult::name`] gives the printed words.
    pub const ALL: [JoinResult; 9] = [
        JoinResult::Unknown,
        JoinResult::Success,
        JoinResult::Joining,
        JoinResult::SsidNotSet,
        JoinResult::PasswordNotSet,
        JoinResult::SecurityNotSupported,
        JoinResult::NotFound,
        JoinResult::Failed,
        JoinResult::Aborted,
    ];

    /// The word `get wlan.join.result` prints.
    pub const fn name(self) -> &'static str {
        match self {
            JoinResult::Unknown => "unknown",
            JoinResult::Success => "success",
            JoinResult::Joining => "joining",
            JoinResult::SsidNotSet => "ssid_not_set",
            JoinResult::PasswordNotSet => "password_not_set",
            JoinResult::SecurityNotSupported => "security_not_supported",
            JoinResult::NotFound => "not_found",
            JoinResult::Failed => "failed",
            JoinResult::Aborted => "aborted",
        }
    }
}

/// The value of `wlan.network.status` (assumed, after ZentriOS): `0` down (also while
/// probing and associating), `1` associated without an IP address yet (DHCP running), `2`
/// associated with an IP address (up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkStatus {
    Down = 0,
    Associated = 1,
    Up = 2,
}

/// The settings a sequence reads (`wlan.*`), parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub ssid: String,
    /// `wlan.bssid` unless all zero.
    pub bssid: Option<Mac>,
    /// `wlan.security` unless `auto`.
    pub security: Option<Security>,
    pub passkey: Vec<u8>,
    pub join_retries: u32,
    pub join_timeout: Duration,
    pub dhcp: bool,
    pub dhcp_timeout: Duration,
    pub static_ip: Ipv4Config,
    pub auto_join: bool,
    /// 0: forever.
    pub auto_join_retries: u32,
    pub retry_delay: Duration,
    /// `wlan.scan.*` for the probe.
    pub scan: ScanParams,
    /// `wlan.scan.retries`: probe repeats after a failed probe.
    pub scan_retries: u32,
}

impl Config {
    pub fn from_vars(vars: &Vars) -> Self {
        let num = |var: Var| vars.num(var);
        let ip = |var: Var| vars::parse_ipv4(vars.text(var)).unwrap_or([0; 4]);
        let dns = ip(Var::WlanStaticDns);
        Self {
            ssid: String::from(vars.text(Var::WlanSsid)),
            bssid: vars::parse_mac(vars.text(Var::WlanBssid)).filter(|m| *m != [0; 6]),
            security: Security::from_name(vars.text(Var::WlanSecurity)),
            passkey: vars.raw(Var::WlanPasskey.id()).to_vec(),
            join_retries: num(Var::WlanJoinRetries).max(1) as u32,
            join_timeout: Duration::from_millis(num(Var::WlanJoinTimeout)),
            dhcp: vars.flag(Var::WlanDhcpEnabled),
            dhcp_timeout: Duration::from_secs(num(Var::WlanDhcpTimeout)),
            static_ip: Ipv4Config {
                address: ip(Var::WlanStaticIp),
                netmask: ip(Var::WlanStaticNetmask),
                gateway: ip(Var::WlanStaticGateway),
                dns: if dns == [0; 4] { Vec::new() } else { alloc::vec![dns] },
            },
            auto_join: vars.flag(Var::WlanAutoJoinEnabled),
            auto_join_retries: num(Var::WlanAutoJoinRetries) as u32,
            retry_delay: Duration::from_secs(num(Var::WlanAutoJoinRetryDelay)),
            scan: scan_params(vars),
            scan_retries: num(Var::WlanScanRetries) as u32,
        }
    }

    /// What stored network details are valid for.
    fn key(&self) -> (String, Option<Mac>, Option<Security>) {
        (self.ssid.clone(), self.bssid, self.security)
    }

    /// Whether a probe result is the network these settings ask for.
    fn matches(&self, bss: &Bss) -> bool {
        let by_id = match self.bssid {
            Some(bssid) => bss.bssid == bssid,
            None => bss.ssid == self.ssid,
        };
        by_id && self.security.is_none_or(|s| s == bss.security)
    }
}

/// What a waiting command learns from the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Step 7 with success: the interface is up.
    Up,
    /// Step 7 with failure (see [`Wlan::result`]), or a failed pass while auto-join retries
    /// forever.
    Failed,
}

/// The effects of one call into [`Wlan`].
#[derive(Debug, Default)]
pub struct Out {
    pub requests: Vec<NetRequest>,
    pub logs: Vec<(u8, String)>,
    pub settled: Option<Settled>,
}

impl Out {
    fn log(&mut self, level: u8, text: impl Into<String>) {
        self.logs.push((level, text.into()));
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Down, no sequence running.
    Idle,
    /// Step 3: waiting for the probe's [`NetEvent::ScanDone`]; `repeats` probes of this step
    /// failed before this one (`wlan.scan.retries`).
    Probe { id: u32, deadline: Instant, repeats: u32 },
    /// Step 4: waiting for the association.
    Associate { attempt: u32, deadline: Instant },
    /// Step 5: waiting for DHCP.
    Dhcp { attempt: u32, deadline: Instant },
    /// Step 6: waiting `wlan.auto_join.retry_delay` before the next pass.
    RetryWait { until: Instant },
    /// Step 7 with success.
    Up,
}

type Key = (String, Option<Mac>, Option<Security>);

/// The WLAN interface and its Network Up Sequence.
#[derive(Debug)]
pub struct Wlan {
    phase: Phase,
    /// The join attempt count: association attempts in this pass.
    pass_attempts: u32,
    /// The join retry count: every association attempt so far; the `attempt` id.
    attempt: u32,
    /// The auto join retry count.
    auto_retries: u32,
    /// Network details the current pass's probe found (or the stored ones it uses).
    details: Option<Bss>,
    /// Whether `details` came from a previous successful join (step 2).
    from_store: bool,
    /// Details of the last successful join, with the settings they were found for.
    stored: Option<(Key, Bss)>,
    /// Set by `network_down`; cleared when a sequence starts.
    forced_down: bool,
    ip: Option<Ipv4Config>,
    result: JoinResult,
}

impl Default for Wlan {
    fn default() -> Self {
        Self::new()
    }
}

impl Wlan {
    pub fn new() -> Self {
        Self {
            phase: Phase::Idle,
            pass_attempts: 0,
            attempt: 0,
            auto_retries: 0,
            details: None,
            from_store: false,
            stored: None,
            forced_down: false,
            ip: None,
            result: JoinResult::Unknown,
        }
    }

    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    /// Whether a sequence is running (steps 1–6, including an auto-join retry's wait).
    pub fn is_joining(&self) -> bool {
        !matches!(self.phase, Phase::Idle | Phase::Up)
    }

    pub fn result(&self) -> JoinResult {
        self.result
    }

    pub fn status(&self) -> LinkStatus {
        match self.phase {
            Phase::Up => LinkStatus::Up,
            Phase::Dhcp { .. } => LinkStatus::Associated,
            _ => LinkStatus::Down,
        }
    }

    /// The IP configuration while up.
    pub fn ip(&self) -> Option<&Ipv4Config> {
        self.ip.as_ref()
    }

    /// The counters (join attempt count of this pass, join retry count, auto join retry
    /// count), for tests and diagnostics.
    pub fn counters(&self) -> (u32, u32, u32) {
        (self.pass_attempts, self.attempt, self.auto_retries)
    }

    /// When [`Wlan::tick`] must next run.
    pub fn poll_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Probe { deadline, .. }
            | Phase::Associate { deadline, .. }
            | Phase::Dhcp { deadline, .. } => Some(deadline),
            Phase::RetryWait { until } => Some(until),
            Phase::Idle | Phase::Up => None,
        }
    }

    /// Starts the Network Up Sequence if the interface is down and no sequence runs; a
    /// command then waits for [`Out::settled`]. Already up: settles `Up` at once. A sequence
    /// running: nothing (the caller waits for it).
    pub fn up(&mut self, cfg: &Config, now: Instant, ids: &mut RequestIds, out: &mut Out) {
        match self.phase {
            Phase::Up => out.settled = Some(Settled::Up),
            Phase::Idle => self.start_sequence(cfg, now, ids, out),
            _ => {}
        }
    }

    /// `network_down`: leaves the network, or aborts the sequence.
    pub fn down(&mut self, out: &mut Out) {
        self.forced_down = true;
        match core::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Idle => return,
            Phase::Up | Phase::Dhcp { .. } => {
                out.requests.push(NetRequest::IpDown);
                out.requests.push(NetRequest::Disassociate);
                out.log(level::STATUS, "[Disassociated]");
                if self.result == JoinResult::Joining {
                    self.result = JoinResult::Aborted;
                }
            }
            Phase::Associate { .. } => {
                out.requests.push(NetRequest::Disassociate);
                self.result = JoinResult::Aborted;
            }
            Phase::Probe { .. } | Phase::RetryWait { .. } => self.result = JoinResult::Aborted,
        }
        self.ip = None;
        out.log(level::INFO, "Network down");
        if self.result == JoinResult::Aborted {
            out.settled = Some(Settled::Failed);
        }
    }

    /// Feeds an event from the platform. Events the state machine does not wait for (late
    /// answers, other ids) are ignored.
    pub fn event(
        &mut self,
        event: &NetEvent,
        cfg: &Config,
        now: Instant,
        ids: &mut RequestIds,
        out: &mut Out,
    ) {
        match (event, &self.phase) {
            (NetEvent::ScanDone { id, results }, Phase::Probe { id: want, repeats, .. })
                if id == want =>
            {
                let repeats = *repeats;
                self.probed(results, repeats, cfg, now, ids, out);
            }
            (NetEvent::Associated { attempt }, Phase::Associate { attempt: want, .. })
                if attempt == want =>
            {
                self.associated(cfg, now, out);
            }
            (
                NetEvent::AssociationFailed { attempt, reason },
                Phase::Associate { attempt: want, .. },
            ) if attempt == want => {
                out.log(level::INFO, format!("Association failed: {}", reason_text(*reason)));
                self.step1(cfg, now, ids, out);
            }
            (NetEvent::DhcpBound { attempt, config }, Phase::Dhcp { attempt: want, .. })
                if attempt == want =>
            {
                self.bound(config.clone(), out);
            }
            (NetEvent::LinkLost, Phase::Dhcp { .. }) => {
                out.log(level::STATUS, "[Disassociated]");
                out.requests.push(NetRequest::IpDown);
                self.pass_failed(JoinResult::Failed, cfg, now, out);
            }
            (NetEvent::LinkLost, Phase::Up) => {
                out.log(level::STATUS, "[Disassociated]");
                out.requests.push(NetRequest::IpDown);
                self.ip = None;
                self.phase = Phase::Idle;
                if cfg.auto_join && !self.forced_down {
                    self.start_sequence(cfg, now, ids, out);
                }
            }
            _ => {}
        }
    }

    /// Runs the timer that is due at `now`, if any.
    pub fn tick(&mut self, cfg: &Config, now: Instant, ids: &mut RequestIds, out: &mut Out) {
        if self.poll_at().is_none_or(|at| at > now) {
            return;
        }
        match self.phase {
            Phase::Probe { repeats, .. } => {
                out.log(level::INFO, "Probe timed out");
                self.probe_failed(repeats, cfg, now, ids, out);
            }
            Phase::Associate { .. } => {
                out.requests.push(NetRequest::Disassociate);
                out.log(level::INFO, "Association timed out");
                self.step1(cfg, now, ids, out);
            }
            Phase::Dhcp { .. } => {
                out.requests.push(NetRequest::IpDown);
                out.requests.push(NetRequest::Disassociate);
                out.log(level::INFO, "DHCP timed out");
                self.pass_failed(JoinResult::Failed, cfg, now, out);
            }
            Phase::RetryWait { .. } => self.start_pass(cfg, now, ids, out),
            Phase::Idle | Phase::Up => {}
        }
    }

    /// The start of the whole sequence: the auto join retry count is set to zero.
    fn start_sequence(&mut self, cfg: &Config, now: Instant, ids: &mut RequestIds, out: &mut Out) {
        self.forced_down = false;
        self.auto_retries = 0;
        self.result = JoinResult::Joining;
        if cfg.ssid.is_empty() {
            out.log(level::ERROR, "wlan.ssid is not set");
            self.finish(JoinResult::SsidNotSet, out);
            return;
        }
        self.start_pass(cfg, now, ids, out);
    }

    /// One run of steps 1–6.
    fn start_pass(&mut self, cfg: &Config, now: Instant, ids: &mut RequestIds, out: &mut Out) {
        self.result = JoinResult::Joining;
        self.pass_attempts = 0;
        self.details = None;
        self.from_store = false;
        if cfg.ssid.is_empty() {
            out.log(level::ERROR, "wlan.ssid is not set");
            self.finish(JoinResult::SsidNotSet, out);
            return;
        }
        out.log(level::STATUS, format!("[Associating to {}]", cfg.ssid));
        // Step 2: first time?
        if let Some((key, bss)) = &self.stored
            && *key == cfg.key()
        {
            self.details = Some(bss.clone());
            self.from_store = true;
        }
        self.step1(cfg, now, ids, out);
    }

    /// Step 1: check the join attempt count; then step 3 (probe) or step 4 (associate).
    fn step1(&mut self, cfg: &Config, now: Instant, ids: &mut RequestIds, out: &mut Out) {
        if self.pass_attempts >= cfg.join_retries {
            return self.pass_failed(JoinResult::Failed, cfg, now, out);
        }
        match self.details.clone() {
            Some(bss) => self.associate(bss, cfg, now, out),
            None => {
                // Step 3: probe (only before the pass's first attempt: later attempts of a
                // pass always have details).
                self.probe(0, cfg, now, ids, out);
            }
        }
    }

    /// Sends a probe; `repeats` probes of this step failed before it.
    fn probe(
        &mut self,
        repeats: u32,
        cfg: &Config,
        now: Instant,
        ids: &mut RequestIds,
        out: &mut Out,
    ) {
        let id = ids.fresh();
        let (ssid, bssid) = match cfg.bssid {
            Some(bssid) => (None, Some(bssid)),
            None => (Some(cfg.ssid.clone()), None),
        };
        out.requests.push(NetRequest::Scan { id, ssid, bssid, params: cfg.scan });
        self.phase = Phase::Probe { id, deadline: now + scan_timeout(&cfg.scan), repeats };
    }

    /// A probe found nothing or got no answer: repeat it while `wlan.scan.retries` allows,
    /// else step 3 fails.
    fn probe_failed(
        &mut self,
        repeats: u32,
        cfg: &Config,
        now: Instant,
        ids: &mut RequestIds,
        out: &mut Out,
    ) {
        if repeats < cfg.scan_retries {
            out.log(
                level::INFO,
                format!("Probing again ({} of {})", repeats + 1, cfg.scan_retries),
            );
            return self.probe(repeats + 1, cfg, now, ids, out);
        }
        self.pass_failed(JoinResult::NotFound, cfg, now, out);
    }

    fn probed(
        &mut self,
        results: &[Bss],
        repeats: u32,
        cfg: &Config,
        now: Instant,
        ids: &mut RequestIds,
        out: &mut Out,
    ) {
        let matching = || results.iter().filter(|b| cfg.matches(b));
        let best = matching().filter(|b| b.security.is_supported()).max_by_key(|b| b.rssi);
        let Some(bss) = best.cloned() else {
            if let Some(other) = matching().max_by_key(|b| b.rssi) {
                let name = other.security.name();
                out.log(level::ERROR, format!("Security type not supported: {name}"));
                self.phase = Phase::Idle;
                return self.finish(JoinResult::SecurityNotSupported, out);
            }
            out.log(level::INFO, "Network not found");
            return self.probe_failed(repeats, cfg, now, ids, out);
        };
        out.log(level::INFO, format!("Security type from probe: {}", bss.security.name()));
        if bss.security != Security::Open && cfg.passkey.is_empty() {
            out.log(level::ERROR, "wlan.passkey is not set");
            self.phase = Phase::Idle;
            return self.finish(JoinResult::PasswordNotSet, out);
        }
        self.details = Some(bss.clone());
        self.associate(bss, cfg, now, out);
    }

    /// Step 4: one association attempt.
    fn associate(&mut self, bss: Bss, cfg: &Config, now: Instant, out: &mut Out) {
        self.pass_attempts += 1;
        self.attempt = self.attempt.wrapping_add(1);
        let attempt = self.attempt;
        out.requests.push(NetRequest::Associate { attempt, bss, passkey: cfg.passkey.clone() });
        self.phase = Phase::Associate { attempt, deadline: now + cfg.join_timeout };
    }

    /// Step 5: get IP address, DNS and gateway.
    fn associated(&mut self, cfg: &Config, now: Instant, out: &mut Out) {
        if cfg.dhcp {
            out.log(level::INFO, "Obtaining IPv4 address via DHCP");
            let attempt = self.attempt;
            out.requests.push(NetRequest::StartDhcp { attempt });
            self.phase = Phase::Dhcp { attempt, deadline: now + cfg.dhcp_timeout };
        } else {
            out.requests.push(NetRequest::StaticIp(cfg.static_ip.clone()));
            self.bound(cfg.static_ip.clone(), out);
        }
        // The stored details are kept for the settings of this pass.
        if let Some(bss) = &self.details {
            self.stored = Some((cfg.key(), bss.clone()));
        }
    }

    /// Step 5 done, step 7 with success.
    fn bound(&mut self, config: Ipv4Config, out: &mut Out) {
        out.log(level::INFO, format!("IPv4 address: {}", ip_text(config.address)));
        out.log(level::STATUS, "[Associated]");
        self.ip = Some(config);
        self.phase = Phase::Up;
        self.result = JoinResult::Success;
        out.settled = Some(Settled::Up);
    }

    /// Step 6: join attempt failed.
    fn pass_failed(&mut self, result: JoinResult, cfg: &Config, now: Instant, out: &mut Out) {
        if self.from_store {
            self.stored = None;
        }
        out.log(level::STATUS, "Join failed");
        let retries_left = cfg.auto_join_retries == 0 || self.auto_retries < cfg.auto_join_retries;
        if cfg.auto_join && !self.forced_down && retries_left {
            self.auto_retries += 1;
            self.attempt = self.attempt.wrapping_add(1);
            let secs = cfg.retry_delay.as_millis() / 1000;
            out.log(level::INFO, format!("Retrying in {secs} s"));
            self.phase = Phase::RetryWait { until: now + cfg.retry_delay };
            self.result = JoinResult::Joining;
            if cfg.auto_join_retries == 0 {
                out.settled = Some(Settled::Failed);
            }
            return;
        }
        self.phase = Phase::Idle;
        self.finish(result, out);
    }

    /// Step 7 with failure.
    fn finish(&mut self, result: JoinResult, out: &mut Out) {
        self.result = result;
        out.settled = Some(Settled::Failed);
    }
}

fn reason_text(reason: AssocFailure) -> &'static str {
    match reason {
        AssocFailure::AuthFailed => "authentication failed",
        AssocFailure::Rejected => "rejected",
        AssocFailure::NotFound => "network not found",
    }
}

/// A dotted quad.
pub fn ip_text(ip: Ipv4) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// The body of `wlan_scan` (assumed format; protocol-facts §2 gives only the line kinds).
///
/// ```text
/// ! 2 networks
/// !  # Ch RSSI BSSID             Security   Len SSID        (only with -v)
/// #  0  6  -40 02:00:00:00:01:01 WPA2-AES     3 lab
/// #  1 11  -72 02:00:00:00:01:02 Open         0
/// ```
///
/// A header line `! <n> network(s)`; with `-v` a second header line names the columns. Then
/// one line per network, strongest first: `#`, index (right-aligned, 2 wide), channel (2),
/// RSSI in dBm (4), BSSID, security (10, left-aligned), SSID length in bytes (3; 0 for a
/// hidden network, whose line then ends there), SSID. Columns are separated by one space.
pub fn scan_body(results: &[Bss], verbose: bool) -> String {
    let mut sorted: Vec<&Bss> = results.iter().collect();
    sorted.sort_by_key(|b| core::cmp::Reverse(b.rssi));
    let mut body = String::new();
    let plural = if sorted.len() == 1 { "" } else { "s" };
    let _ = write!(body, "! {} network{plural}", sorted.len());
    if verbose {
        // The column titles, aligned with the data lines below.
        body.push_str("\r\n!  # Ch RSSI BSSID             Security   Len SSID");
    }
    for (i, b) in sorted.iter().enumerate() {
        let _ = write!(
            body,
            "\r\n# {:>2} {:>2} {:>4} {} {:<10} {:>3}",
            i,
            b.channel,
            b.rssi,
            vars::format_mac(&b.bssid),
            b.security.name(),
            b.ssid.len(),
        );
        // A hidden network (empty SSID) ends with its length.
        if !b.ssid.is_empty() {
            body.push(' ');
            body.push_str(&b.ssid);
        }
    }
    body
}
