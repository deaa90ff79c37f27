//! The simulated radio: the lab's access points, the module's association, and faults.
//!
//! Sans-IO like the core: requests come in with the time (`now_ms`, the platform clock in
//! milliseconds), answers for the core queue up ([`Radio::take_event`]), and delayed answers
//! wait until [`Radio::poll`] is called at or after [`Radio::next_deadline`]. Every change the
//! lab may want on its timeline goes to the radio event log ([`Radio::events_since`]) with a
//! wall-clock UNIX-epoch timestamp.
//!
//! Scans and probes follow the request's [`ScanParams`]: only APs on channels in the mask are
//! found (a channel above 14 never is: the mask names channels 1–14); a passive scan hears
//! beacons only, so it never finds a hidden AP, while an active probe for its SSID does; a
//! scan for all networks (no SSID) lists no hidden AP either way. The answer comes after the
//! dwell time × the channels scanned, divided by [`SCAN_TIME_SCALE`] (so the simulated module
//! scans ten times faster than a real radio and lab cases stay quick); what it lists is the
//! air at that moment. The event log names the scan type, channels, dwell time and the probes
//! sent per channel (`num_probes`).
//!
//! Checks on association, in order: an AP with that BSSID and SSID on that channel exists (an
//! AP answers only on its own channel), else `NotFound`; an armed `reject_association` fault,
//! then `Rejected`; the security type matches and is one the module supports
//! ([`Security::is_supported`]), else `AuthFailed`; the passkey matches, else `AuthFailed`. A WPA passkey matches when it is the AP's passphrase or the 64 hex digits of
//! the PSK derived from it (PBKDF2-HMAC-SHA1, 4096 rounds, SSID as salt); WEP keys compare as
//! text, ignoring case; open networks take any passkey.

use gecko_core::net::{
    AssocFailure, Bss, Mac, NetEvent, NetRequest, ScanParams, ScanType, Security,
};
use gecko_core::vars::format_mac;
use std::collections::VecDeque;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

/// One simulated access point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPoint {
    pub ssid: String,
    pub bssid: Mac,
    pub channel: u8,
    pub security: Security,
    /// A passphrase (8 to 63 characters), 64 hex digits of a PSK, or a WEP key; empty for
    /// open networks.
    pub passkey: String,
    /// dBm.
    pub rssi: i16,
    /// Hidden APs answer only directed probes (with their SSID).
    pub hidden: bool,
}

impl AccessPoint {
    fn bss(&self) -> Bss {
        Bss {
            ssid: self.ssid.clone(),
            bssid: self.bssid,
            channel: self.channel,
            rssi: self.rssi,
            security: self.security,
        }
    }
}

/// A fault the lab can arm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer the next `count` associations with `Rejected`.
    RejectAssociation { count: u32 },
    /// Give no answer at all to the next `count` scans or probes.
    IgnoreProbes { count: u32 },
    /// Hold the answer to the next `count` associations back for `ms` milliseconds.
    DelayAssociation { ms: u64, count: u32 },
    /// The AP with this BSSID drops its clients now (they get `LinkLost`); it stays on the
    /// air, so the module may associate again.
    DropAp { bssid: Mac },
    /// Drop DHCP frames (both ways): the next `count` of them, or all until cleared.
    DhcpSilent { count: Option<u32> },
    /// The module's flash refuses the next `count` writes to this store. Not a radio fault,
    /// but lab equipment all the same: it stands for a worn or failing part, and goes
    /// through the same lab channel, ids and counts.
    StoreFail { store: Store, count: u32 },
    /// The TLS stack may hold at most `bytes` at once until the faults are cleared (a module
    /// short of RAM); the lab channel sets the budget, the radio only keeps the record.
    /// `refused_before`: the TLS stack's count of refused allocations when it was armed (it
    /// fired as often as that count has grown since).
    TlsHeap { bytes: usize, refused_before: usize },
}

/// A storage area of the simulated module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// The settings (`save`).
    Nvm,
    /// The file system.
    Files,
}

impl FaultKind {
    fn name(&self) -> &'static str {
        match self {
            FaultKind::RejectAssociation { .. } => "reject_association",
            FaultKind::IgnoreProbes { .. } => "ignore_probes",
            FaultKind::DelayAssociation { .. } => "delay_association",
            FaultKind::DropAp { .. } => "drop_ap",
            FaultKind::DhcpSilent { .. } => "dhcp_silent",
            FaultKind::StoreFail { .. } => "store_fail",
            FaultKind::TlsHeap { .. } => "tls_heap",
        }
    }

    /// For the log: `reject_association count=2`.
    fn describe(&self) -> String {
        let args = match self {
            FaultKind::RejectAssociation { count } | FaultKind::IgnoreProbes { count } => {
                format!("count={count}")
            }
            FaultKind::DelayAssociation { ms, count } => format!("ms={ms} count={count}"),
            FaultKind::DropAp { bssid } => format!("bssid={}", format_mac(bssid)),
            FaultKind::DhcpSilent { count: Some(count) } => format!("count={count}"),
            FaultKind::DhcpSilent { count: None } => "until cleared".to_string(),
            FaultKind::StoreFail { store, count } => format!("store={store:?} count={count}"),
            FaultKind::TlsHeap { bytes, .. } => format!("bytes={bytes}"),
        };
        format!("{} {args}", self.name())
    }

    /// How many times it may fire (`None`: unlimited).
    fn limit(&self) -> Option<u32> {
        match self {
            FaultKind::RejectAssociation { count }
            | FaultKind::IgnoreProbes { count }
            | FaultKind::DelayAssociation { count, .. }
            | FaultKind::StoreFail { count, .. } => Some(*count),
            FaultKind::DropAp { .. } => Some(1),
            FaultKind::DhcpSilent { count } => *count,
            FaultKind::TlsHeap { .. } => None,
        }
    }
}

/// An armed (or spent) fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub id: u32,
    pub kind: FaultKind,
    pub fired: u32,
    /// Cleared by the lab (`clear_faults`).
    pub cleared: bool,
}

impl Fault {
    /// Still able to fire.
    pub fn armed(&self) -> bool {
        !self.cleared && self.kind.limit().is_none_or(|limit| self.fired < limit)
    }
}

/// One entry of the radio event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: u64,
    /// Wall clock, milliseconds since the UNIX epoch.
    pub unix_ms: u64,
    pub text: String,
}

/// Why the lab's request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RadioError(pub String);

/// An answer held back by a `delay_association` fault.
#[derive(Debug)]
struct Delayed {
    due_ms: u64,
    event: NetEvent,
    /// On success: the BSSID the module is associated with once the answer is out.
    bssid: Option<Mac>,
}

/// A scan or probe whose answer is due at `due_ms`.
#[derive(Debug)]
struct PendingScan {
    due_ms: u64,
    id: u32,
    ssid: Option<String>,
    bssid: Option<Mac>,
    params: ScanParams,
    /// How the log names it (`probe ssid="lab"`).
    what: String,
}

/// How many times faster than a real radio the simulated one scans: a scan of 11 channels with
/// 100 ms dwell time answers after 110 ms instead of 1.1 s.
pub const SCAN_TIME_SCALE: u64 = 10;

/// Most log entries kept (the oldest go first).
const LOG_MAX: usize = 10_000;

/// The simulated radio.
#[derive(Debug, Default)]
pub struct Radio {
    aps: Vec<AccessPoint>,
    faults: Vec<Fault>,
    associated: Option<Mac>,
    delayed: Vec<Delayed>,
    scans: Vec<PendingScan>,
    events: VecDeque<NetEvent>,
    log: VecDeque<LogEntry>,
    next_seq: u64,
    /// Bumped on every change of the association (for the link state).
    generation: u64,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The channels of a mask, for the log: `1-11`, `1,6,11`.
fn channel_list(mask: u16) -> String {
    let channels: Vec<u8> = (1..=14u8).filter(|c| mask & (1 << (c - 1)) != 0).collect();
    let contiguous = channels.windows(2).all(|w| w[1] == w[0] + 1);
    match (channels.first(), channels.last()) {
        (Some(first), Some(last)) if contiguous && channels.len() > 2 => format!("{first}-{last}"),
        _ => channels.iter().map(u8::to_string).collect::<Vec<_>>().join(","),
    }
}

/// The PSK for a WPA passkey: 64 hex digits as they are, otherwise PBKDF2-HMAC-SHA1 of the
/// passphrase with the SSID as salt, 4096 rounds, 32 bytes.
pub fn wpa_psk(passkey: &[u8], ssid: &[u8]) -> [u8; 32] {
    if passkey.len() == 64
        && let Some(psk) = decode_hex32(passkey)
    {
        return psk;
    }
    let mut psk = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(passkey, ssid, 4096, &mut psk);
    psk
}

fn decode_hex32(text: &[u8]) -> Option<[u8; 32]> {
    let digit = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

impl Radio {
    pub fn new() -> Self {
        Self::default()
    }

    fn log(&mut self, text: String) {
        self.next_seq += 1;
        if self.log.len() >= LOG_MAX {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry { seq: self.next_seq, unix_ms: unix_ms(), text });
    }

    /// Log entries with `seq > since`, oldest first.
    pub fn events_since(&self, since: u64) -> Vec<LogEntry> {
        self.log.iter().filter(|e| e.seq > since).cloned().collect()
    }

    /// The BSSID the module is associated with.
    pub fn associated(&self) -> Option<Mac> {
        self.associated
    }

    /// Changes whenever the association does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn aps(&self) -> &[AccessPoint] {
        &self.aps
    }

    /// Adds an AP, or replaces the one with the same BSSID.
    pub fn add_ap(&mut self, ap: AccessPoint) {
        self.log(format!(
            "ap up {} ssid={:?} channel={} security={}{}",
            format_mac(&ap.bssid),
            ap.ssid,
            ap.channel,
            ap.security.name(),
            if ap.hidden { " hidden" } else { "" }
        ));
        if let Some(old) = self.aps.iter_mut().find(|a| a.bssid == ap.bssid) {
            *old = ap;
        } else {
            self.aps.push(ap);
        }
    }

    /// Takes an AP off the air; a module associated with it loses its link.
    pub fn remove_ap(&mut self, bssid: Mac) -> Result<(), RadioError> {
        let Some(pos) = self.aps.iter().position(|a| a.bssid == bssid) else {
            return Err(RadioError(format!("no AP with BSSID {}", format_mac(&bssid))));
        };
        self.aps.remove(pos);
        self.log(format!("ap down {}", format_mac(&bssid)));
        if self.associated == Some(bssid) {
            self.lose_link(bssid);
        }
        Ok(())
    }

    /// Moves an AP to another channel. A module associated with it loses its link (it left
    /// the channel the association was made on); stored details of the old channel no longer
    /// reach it.
    pub fn move_ap(&mut self, bssid: Mac, channel: u8) -> Result<(), RadioError> {
        let Some(ap) = self.aps.iter_mut().find(|a| a.bssid == bssid) else {
            return Err(RadioError(format!("no AP with BSSID {}", format_mac(&bssid))));
        };
        let old = core::mem::replace(&mut ap.channel, channel);
        self.log(format!("ap moved {} channel {old} -> {channel}", format_mac(&bssid)));
        if self.associated == Some(bssid) && old != channel {
            self.lose_link(bssid);
        }
        Ok(())
    }

    fn lose_link(&mut self, bssid: Mac) {
        self.associated = None;
        self.generation += 1;
        self.events.push_back(NetEvent::LinkLost);
        self.log(format!("link lost {}", format_mac(&bssid)));
    }

    /// Arms a fault; returns its id. `drop_ap` acts at once.
    pub fn inject(&mut self, kind: FaultKind) -> Result<u32, RadioError> {
        if let FaultKind::DropAp { bssid } = kind
            && !self.aps.iter().any(|a| a.bssid == bssid)
        {
            return Err(RadioError(format!("no AP with BSSID {}", format_mac(&bssid))));
        }
        let id = u32::try_from(self.faults.len()).unwrap_or(u32::MAX).saturating_add(1);
        self.log(format!("fault {id} armed: {}", kind.describe()));
        self.faults.push(Fault { id, kind: kind.clone(), fired: 0, cleared: false });
        if let FaultKind::DropAp { bssid } = kind {
            self.fire(id);
            if self.associated == Some(bssid) {
                self.lose_link(bssid);
            }
        }
        Ok(id)
    }

    pub fn fault(&self, id: u32) -> Option<&Fault> {
        self.faults.iter().find(|f| f.id == id)
    }

    /// Disarms every fault (their fired counts stay readable).
    pub fn clear_faults(&mut self) {
        for f in &mut self.faults {
            f.cleared = true;
        }
        self.log("faults cleared".to_string());
    }

    /// Fires the first armed fault that `select` accepts; returns its kind.
    fn fire_first(&mut self, select: impl Fn(&FaultKind) -> bool) -> Option<FaultKind> {
        let id = self.faults.iter().find(|f| f.armed() && select(&f.kind))?.id;
        self.fire(id)
    }

    fn fire(&mut self, id: u32) -> Option<FaultKind> {
        let fault = self.faults.iter_mut().find(|f| f.id == id)?;
        fault.fired += 1;
        let (kind, fired) = (fault.kind.clone(), fault.fired);
        let of = kind.limit().map_or(String::new(), |l| format!("/{l}"));
        self.log(format!("fault {id} {} fired ({fired}{of})", kind.name()));
        Some(kind)
    }

    /// Whether a write to `store` must fail now (fires a `store_fail` fault if so).
    pub fn store_fails(&mut self, store: Store) -> bool {
        self.fire_first(|k| matches!(k, FaultKind::StoreFail { store: s, .. } if *s == store))
            .is_some()
    }

    /// Whether a DHCP frame must be dropped now (fires a `dhcp_silent` fault if so).
    pub fn drop_dhcp_frame(&mut self) -> bool {
        self.fire_first(|k| matches!(k, FaultKind::DhcpSilent { .. })).is_some()
    }

    /// Handles the radio's part of a request (scan, associate, disassociate); IP requests
    /// are ignored here.
    pub fn request(&mut self, req: &NetRequest, now_ms: u64) {
        match req {
            NetRequest::Scan { id, ssid, bssid, params } => {
                self.scan(*id, ssid.as_deref(), *bssid, *params, now_ms);
            }
            NetRequest::Associate { attempt, bss, passkey } => {
                self.associate(*attempt, bss, passkey, now_ms);
            }
            NetRequest::Disassociate => self.disassociate(),
            _ => {}
        }
    }

    fn scan(
        &mut self,
        id: u32,
        ssid: Option<&str>,
        bssid: Option<Mac>,
        params: ScanParams,
        now_ms: u64,
    ) {
        let what = match (ssid, bssid) {
            (None, None) => "scan".to_string(),
            (s, b) => format!(
                "probe{}{}",
                s.map_or(String::new(), |s| format!(" ssid={s:?}")),
                b.map_or(String::new(), |b| format!(" bssid={}", format_mac(&b)))
            ),
        };
        if self.fire_first(|k| matches!(k, FaultKind::IgnoreProbes { .. })).is_some() {
            self.log(format!("{what}: ignored"));
            return;
        }
        let took = params.duration_ms() / SCAN_TIME_SCALE;
        let how = match params.kind {
            ScanType::Active => format!("active, {} probes/channel", params.num_probes),
            ScanType::Passive => "passive".to_string(),
        };
        self.log(format!(
            "{what}: {how}, channels {} ({:#06x}), dwell {} ms, answer in {took} ms",
            channel_list(params.channel_mask),
            params.channel_mask,
            params.dwell_ms,
        ));
        self.scans.push(PendingScan {
            due_ms: now_ms.saturating_add(took),
            id,
            ssid: ssid.map(String::from),
            bssid,
            params,
            what,
        });
    }

    /// The answer to a scan, from the APs on the air now.
    fn finish_scan(&mut self, scan: PendingScan) {
        let PendingScan { id, ssid, bssid, params, what, .. } = scan;
        let mut results: Vec<Bss> = self
            .aps
            .iter()
            .filter(|ap| params.covers(ap.channel))
            .filter(|ap| match (ssid.as_deref(), params.kind) {
                // Hidden APs beacon without their SSID: only an active probe for it finds them.
                (None, _) => !ap.hidden,
                (Some(s), ScanType::Passive) => !ap.hidden && ap.ssid == s,
                (Some(s), ScanType::Active) => ap.ssid == s,
            })
            .filter(|ap| bssid.is_none_or(|b| ap.bssid == b))
            .map(AccessPoint::bss)
            .collect();
        results.sort_by_key(|b| core::cmp::Reverse(b.rssi));
        self.log(format!("{what}: {} found", results.len()));
        self.events.push_back(NetEvent::ScanDone { id, results });
    }

    fn associate(&mut self, attempt: u32, bss: &Bss, passkey: &[u8], now_ms: u64) {
        // A new attempt replaces the old association and any answer still held back.
        self.delayed.clear();
        if let Some(old) = self.associated.take() {
            self.generation += 1;
            self.log(format!("disassociated {}", format_mac(&old)));
        }
        let outcome = self.check_association(bss, passkey);
        let target = format_mac(&bss.bssid);
        let (event, bssid) = match outcome {
            Ok(()) => (NetEvent::Associated { attempt }, Some(bss.bssid)),
            Err(reason) => (NetEvent::AssociationFailed { attempt, reason }, None),
        };
        let delay = self.fire_first(|k| matches!(k, FaultKind::DelayAssociation { .. }));
        if let Some(FaultKind::DelayAssociation { ms, .. }) = delay {
            self.log(format!("associate {target}: answer held back {ms} ms"));
            self.delayed.push(Delayed { due_ms: now_ms.saturating_add(ms), event, bssid });
        } else {
            self.answer_association(event, bssid);
        }
    }

    fn answer_association(&mut self, event: NetEvent, bssid: Option<Mac>) {
        match (&event, bssid) {
            (NetEvent::Associated { .. }, Some(b)) => {
                if !self.aps.iter().any(|a| a.bssid == b) {
                    // The AP went away while the answer was held back.
                    self.log(format!("associate {}: failed NotFound", format_mac(&b)));
                    if let NetEvent::Associated { attempt } = event {
                        self.events.push_back(NetEvent::AssociationFailed {
                            attempt,
                            reason: AssocFailure::NotFound,
                        });
                    }
                    return;
                }
                self.associated = Some(b);
                self.generation += 1;
                self.log(format!("associate {}: ok", format_mac(&b)));
            }
            (NetEvent::AssociationFailed { reason, .. }, _) => {
                self.log(format!("associate: failed {reason:?}"));
            }
            _ => {}
        }
        self.events.push_back(event);
    }

    fn check_association(&mut self, bss: &Bss, passkey: &[u8]) -> Result<(), AssocFailure> {
        let Some(ap) = self
            .aps
            .iter()
            .find(|a| a.bssid == bss.bssid && a.ssid == bss.ssid && a.channel == bss.channel)
        else {
            return Err(AssocFailure::NotFound);
        };
        let ap = ap.clone();
        if self.fire_first(|k| matches!(k, FaultKind::RejectAssociation { .. })).is_some() {
            return Err(AssocFailure::Rejected);
        }
        if ap.security != bss.security || !ap.security.is_supported() {
            return Err(AssocFailure::AuthFailed);
        }
        let ok = match ap.security {
            Security::Open => true,
            Security::Wep => ap.passkey.as_bytes().eq_ignore_ascii_case(passkey),
            _ => {
                wpa_psk(passkey, ap.ssid.as_bytes())
                    == wpa_psk(ap.passkey.as_bytes(), ap.ssid.as_bytes())
            }
        };
        if ok { Ok(()) } else { Err(AssocFailure::AuthFailed) }
    }

    fn disassociate(&mut self) {
        if !self.delayed.is_empty() {
            self.delayed.clear();
            self.log("associate: held-back answer dropped (disassociate)".to_string());
        }
        if let Some(old) = self.associated.take() {
            self.generation += 1;
            self.log(format!("disassociated {}", format_mac(&old)));
        }
    }

    /// Forgets the association and everything pending (the core rebooted).
    pub fn reset(&mut self) {
        self.disassociate();
        self.scans.clear();
        self.events.clear();
    }

    /// When [`Radio::poll`] must next run.
    pub fn next_deadline(&self) -> Option<u64> {
        let scans = self.scans.iter().map(|s| s.due_ms);
        self.delayed.iter().map(|d| d.due_ms).chain(scans).min()
    }

    /// Releases held-back answers and scan answers that are due, oldest due first.
    pub fn poll(&mut self, now_ms: u64) {
        loop {
            let scan = self.scans.iter().enumerate().filter(|(_, s)| s.due_ms <= now_ms);
            let scan = scan.min_by_key(|(_, s)| s.due_ms).map(|(i, s)| (i, s.due_ms));
            let assoc = self.delayed.iter().enumerate().filter(|(_, d)| d.due_ms <= now_ms);
            let assoc = assoc.min_by_key(|(_, d)| d.due_ms).map(|(i, d)| (i, d.due_ms));
            match (scan, assoc) {
                (Some((i, at)), a) if a.is_none_or(|(_, b)| at <= b) => {
                    let scan = self.scans.remove(i);
                    self.finish_scan(scan);
                }
                (_, Some((i, _))) => {
                    let d = self.delayed.remove(i);
                    self.answer_association(d.event, d.bssid);
                }
                _ => return,
            }
        }
    }

    /// The next event for the core.
    pub fn take_event(&mut self) -> Option<NetEvent> {
        self.events.pop_front()
    }
}

/// The IP side's view of the simulated radio; it also drops the DHCP frames of a
/// `dhcp_silent` fault.
impl gecko_net::Radio for Radio {
    fn request(&mut self, req: &NetRequest, now_ms: u64) {
        Radio::request(self, req, now_ms);
    }
    fn reset(&mut self) {
        Radio::reset(self);
    }
    fn poll(&mut self, now_ms: u64) {
        Radio::poll(self, now_ms);
    }
    fn next_deadline(&self) -> Option<u64> {
        Radio::next_deadline(self)
    }
    fn take_event(&mut self) -> Option<NetEvent> {
        Radio::take_event(self)
    }
    fn associated(&self) -> Option<Mac> {
        Radio::associated(self)
    }
    fn generation(&self) -> u64 {
        Radio::generation(self)
    }
    fn frame_passes(&mut self, frame: &[u8]) -> bool {
        self.associated().is_some() && !(gecko_net::is_dhcp(frame) && self.drop_dhcp_frame())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::vec;

    const LAB: Mac = [2, 0, 0, 0, 1, 1];
    const HIDDEN: Mac = [2, 0, 0, 0, 1, 2];

    fn radio() -> Radio {
        let mut r = Radio::new();
        r.add_ap(AccessPoint {
            ssid: "lab".into(),
            bssid: LAB,
            channel: 6,
            security: Security::Wpa2Aes,
            passkey: "labpass123".into(),
            rssi: -40,
            hidden: false,
        });
        r.add_ap(AccessPoint {
            ssid: "secret".into(),
            bssid: HIDDEN,
            channel: 11,
            security: Security::Open,
            passkey: String::new(),
            rssi: -60,
            hidden: true,
        });
        r
    }

    fn bss(r: &Radio, bssid: Mac) -> Bss {
        r.aps().iter().find(|a| a.bssid == bssid).unwrap().bss()
    }

    fn assoc(r: &mut Radio, attempt: u32, bss: Bss, passkey: &[u8]) -> Option<NetEvent> {
        r.request(&NetRequest::Associate { attempt, bss, passkey: passkey.to_vec() }, 0);
        r.take_event()
    }

    fn scan(r: &mut Radio, ssid: Option<&str>, bssid: Option<Mac>) -> Option<Vec<Mac>> {
        scan_with(r, ssid, bssid, ScanParams::DEFAULT)
    }

    /// Scans and lets the answer come (whenever it is due).
    fn scan_with(
        r: &mut Radio,
        ssid: Option<&str>,
        bssid: Option<Mac>,
        params: ScanParams,
    ) -> Option<Vec<Mac>> {
        r.request(&NetRequest::Scan { id: 7, ssid: ssid.map(Into::into), bssid, params }, 0);
        r.poll(1_000_000);
        match r.take_event()? {
            NetEvent::ScanDone { id: 7, results } => {
                Some(results.iter().map(|b| b.bssid).collect())
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn psk_matches_the_ieee_802_11i_vector() {
        assert_eq!(
            hex(&wpa_psk(b"password", b"IEEE")),
            "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
        );
        let given = b"F42C6FC52DF0EBEF9EBB4B90B38A5F902E83FE1B135A70E23AED762E9710A12E";
        assert_eq!(wpa_psk(given, b"whatever"), wpa_psk(b"password", b"IEEE"));
    }

    #[test]
    fn scan_lists_visible_aps_and_probes_find_hidden_ones() {
        let mut r = radio();
        assert_eq!(scan(&mut r, None, None), Some(vec![LAB]));
        assert_eq!(scan(&mut r, Some("secret"), None), Some(vec![HIDDEN]));
        assert_eq!(scan(&mut r, Some("secret"), Some(HIDDEN)), Some(vec![HIDDEN]));
        assert_eq!(scan(&mut r, None, Some(LAB)), Some(vec![LAB]));
        assert_eq!(scan(&mut r, None, Some(HIDDEN)), Some(vec![]));
        assert_eq!(scan(&mut r, Some("nope"), None), Some(vec![]));
    }

    fn params(channel_mask: u16, kind: ScanType) -> ScanParams {
        ScanParams { channel_mask, kind, ..ScanParams::DEFAULT }
    }

    #[test]
    fn scans_find_only_aps_on_channels_in_the_mask() {
        let mut r = radio();
        r.add_ap(AccessPoint {
            ssid: "five".into(),
            bssid: [2, 0, 0, 0, 5, 1],
            channel: 36,
            security: Security::Open,
            passkey: String::new(),
            rssi: -30,
            hidden: false,
        });
        let ch6 = 1 << 5;
        assert_eq!(scan_with(&mut r, None, None, params(ch6, ScanType::Active)), Some(vec![LAB]));
        assert_eq!(
            scan_with(&mut r, None, None, params(0x3fff & !ch6, ScanType::Active)),
            Some(vec![])
        );
        assert_eq!(scan_with(&mut r, Some("lab"), None, params(1, ScanType::Active)), Some(vec![]));
        let ch11 = 1 << 10;
        let found = scan_with(&mut r, Some("secret"), None, params(ch11, ScanType::Active));
        assert_eq!(found, Some(vec![HIDDEN]));
        // Channel 36 is outside what the mask can name: never found.
        assert_eq!(
            scan_with(&mut r, Some("five"), None, params(0x3fff, ScanType::Active)),
            Some(vec![])
        );
    }

    #[test]
    fn a_passive_scan_never_finds_a_hidden_ap() {
        let mut r = radio();
        let passive = params(0x3fff, ScanType::Passive);
        assert_eq!(scan_with(&mut r, Some("secret"), None, passive), Some(vec![]));
        assert_eq!(scan_with(&mut r, Some("lab"), None, passive), Some(vec![LAB]));
        assert_eq!(scan_with(&mut r, None, None, passive), Some(vec![LAB]));
        let active = params(0x3fff, ScanType::Active);
        assert_eq!(scan_with(&mut r, Some("secret"), None, active), Some(vec![HIDDEN]));
    }

    #[test]
    fn the_answer_follows_dwell_time_and_channels_and_the_log_shows_the_probes() {
        let mut r = radio();
        // 14 channels × 50 ms = 700 ms for a real radio; 70 ms here.
        let p = ScanParams {
            channel_mask: 0x3fff,
            kind: ScanType::Active,
            dwell_ms: 50,
            num_probes: 3,
        };
        r.request(&NetRequest::Scan { id: 9, ssid: None, bssid: None, params: p }, 1000);
        assert_eq!(r.next_deadline(), Some(1070));
        r.poll(1069);
        assert_eq!(r.take_event(), None);
        // The air at the end of the scan counts.
        r.remove_ap(HIDDEN).unwrap();
        r.poll(1070);
        let Some(NetEvent::ScanDone { id: 9, results }) = r.take_event() else { panic!("answer") };
        assert_eq!(results.iter().map(|b| b.bssid).collect::<Vec<_>>(), vec![LAB]);
        assert_eq!(r.next_deadline(), None);
        let texts: Vec<String> = r.events_since(0).into_iter().map(|e| e.text).collect();
        let started = "scan: active, 3 probes/channel, channels 1-14 (0x3fff), dwell 50 ms, \
                       answer in 70 ms";
        assert!(texts.iter().any(|t| t == started), "{texts:?}");
        assert!(texts.iter().any(|t| t == "scan: 1 found"), "{texts:?}");
        // Passive: the passive dwell, no probes.
        let p = ScanParams { channel_mask: 0b10_0001_0001, kind: ScanType::Passive, ..p };
        r.request(&NetRequest::Scan { id: 10, ssid: None, bssid: None, params: p }, 0);
        let last = r.events_since(0).pop().unwrap().text;
        assert_eq!(last, "scan: passive, channels 1,5,10 (0x0211), dwell 50 ms, answer in 15 ms");
        // A reboot of the core drops a scan in flight.
        r.reset();
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn an_ap_answers_only_on_its_channel_and_can_move() {
        let mut r = radio();
        let old = bss(&r, LAB);
        let mut wrong = old.clone();
        wrong.channel = 1;
        let failed =
            |attempt| Some(NetEvent::AssociationFailed { attempt, reason: AssocFailure::NotFound });
        assert_eq!(assoc(&mut r, 1, wrong, b"labpass123"), failed(1));
        assert_eq!(
            assoc(&mut r, 2, old.clone(), b"labpass123"),
            Some(NetEvent::Associated { attempt: 2 })
        );
        r.move_ap(LAB, 11).unwrap();
        assert_eq!(r.take_event(), Some(NetEvent::LinkLost));
        assert_eq!(r.associated(), None);
        assert_eq!(assoc(&mut r, 3, old, b"labpass123"), failed(3));
        let moved = bss(&r, LAB);
        assert_eq!(moved.channel, 11);
        assert_eq!(
            assoc(&mut r, 4, moved, b"labpass123"),
            Some(NetEvent::Associated { attempt: 4 })
        );
        assert!(r.move_ap([2, 0, 0, 0, 9, 9], 1).is_err());
    }

    #[test]
    fn an_unsupported_security_type_never_associates() {
        let mut r = radio();
        r.add_ap(AccessPoint {
            ssid: "sae".into(),
            bssid: [2, 0, 0, 0, 3, 1],
            channel: 6,
            security: Security::Wpa3Sae,
            passkey: "saepass123".into(),
            rssi: -40,
            hidden: false,
        });
        assert_eq!(scan(&mut r, Some("sae"), None), Some(vec![[2, 0, 0, 0, 3, 1]]));
        let sae = bss(&r, [2, 0, 0, 0, 3, 1]);
        assert_eq!(
            assoc(&mut r, 1, sae, b"saepass123"),
            Some(NetEvent::AssociationFailed { attempt: 1, reason: AssocFailure::AuthFailed })
        );
    }

    #[test]
    fn association_checks_bssid_security_and_passkey() {
        let mut r = radio();
        let good = bss(&r, LAB);
        let failed = |reason| Some(NetEvent::AssociationFailed { attempt: 1, reason });
        assert_eq!(assoc(&mut r, 1, good.clone(), b"wrongpass1"), failed(AssocFailure::AuthFailed));
        let mut wrong_sec = good.clone();
        wrong_sec.security = Security::WpaTkip;
        assert_eq!(assoc(&mut r, 1, wrong_sec, b"labpass123"), failed(AssocFailure::AuthFailed));
        let mut elsewhere = good.clone();
        elsewhere.bssid = [2, 0, 0, 0, 9, 9];
        assert_eq!(assoc(&mut r, 1, elsewhere, b"labpass123"), failed(AssocFailure::NotFound));
        assert_eq!(r.associated(), None);
        assert_eq!(
            assoc(&mut r, 2, good.clone(), b"labpass123"),
            Some(NetEvent::Associated { attempt: 2 })
        );
        assert_eq!(r.associated(), Some(LAB));
        // The 64-hex PSK of the same passphrase works too.
        let psk = hex(&wpa_psk(b"labpass123", b"lab"));
        assert_eq!(
            assoc(&mut r, 3, good, psk.as_bytes()),
            Some(NetEvent::Associated { attempt: 3 })
        );
        // Hidden open AP: any passkey.
        let hidden = bss(&r, HIDDEN);
        assert_eq!(assoc(&mut r, 4, hidden, b""), Some(NetEvent::Associated { attempt: 4 }));
        assert_eq!(r.associated(), Some(HIDDEN));
        r.request(&NetRequest::Disassociate, 0);
        assert_eq!(r.associated(), None);
    }

    #[test]
    fn reject_fault_fires_count_times() {
        let mut r = radio();
        let good = bss(&r, LAB);
        let id = r.inject(FaultKind::RejectAssociation { count: 2 }).unwrap();
        for attempt in 1..=2 {
            assert_eq!(
                assoc(&mut r, attempt, good.clone(), b"labpass123"),
                Some(NetEvent::AssociationFailed { attempt, reason: AssocFailure::Rejected })
            );
        }
        assert_eq!(
            assoc(&mut r, 3, good, b"labpass123"),
            Some(NetEvent::Associated { attempt: 3 })
        );
        let f = r.fault(id).unwrap();
        assert_eq!((f.fired, f.armed()), (2, false));
    }

    #[test]
    fn ignore_probes_gives_no_answer() {
        let mut r = radio();
        let id = r.inject(FaultKind::IgnoreProbes { count: 1 }).unwrap();
        assert_eq!(scan(&mut r, None, None), None);
        assert_eq!(scan(&mut r, None, None), Some(vec![LAB]));
        assert_eq!(r.fault(id).unwrap().fired, 1);
    }

    #[test]
    fn delayed_association_answers_after_the_delay() {
        let mut r = radio();
        let good = bss(&r, LAB);
        let id = r.inject(FaultKind::DelayAssociation { ms: 5000, count: 1 }).unwrap();
        r.request(
            &NetRequest::Associate {
                attempt: 1,
                bss: good.clone(),
                passkey: b"labpass123".to_vec(),
            },
            100,
        );
        assert_eq!(r.take_event(), None);
        assert_eq!(r.next_deadline(), Some(5100));
        r.poll(5099);
        assert_eq!(r.take_event(), None);
        assert_eq!(r.associated(), None);
        r.poll(5100);
        assert_eq!(r.take_event(), Some(NetEvent::Associated { attempt: 1 }));
        assert_eq!(r.associated(), Some(LAB));
        assert_eq!(r.fault(id).unwrap().fired, 1);
        // Spent: the next one answers at once.
        assert_eq!(
            assoc(&mut r, 2, good.clone(), b"labpass123"),
            Some(NetEvent::Associated { attempt: 2 })
        );
        // A disassociate drops a held-back answer.
        r.inject(FaultKind::DelayAssociation { ms: 10, count: 1 }).unwrap();
        r.request(
            &NetRequest::Associate { attempt: 3, bss: good, passkey: b"labpass123".to_vec() },
            0,
        );
        r.request(&NetRequest::Disassociate, 1);
        r.poll(100);
        assert_eq!(r.take_event(), None);
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn drop_ap_and_remove_ap_lose_the_link() {
        let mut r = radio();
        let good = bss(&r, LAB);
        assoc(&mut r, 1, good.clone(), b"labpass123");
        let id = r.inject(FaultKind::DropAp { bssid: LAB }).unwrap();
        assert_eq!(r.take_event(), Some(NetEvent::LinkLost));
        assert_eq!(r.associated(), None);
        let f = r.fault(id).unwrap();
        assert_eq!((f.fired, f.armed()), (1, false));
        // The AP is still there.
        assert_eq!(
            assoc(&mut r, 2, good, b"labpass123"),
            Some(NetEvent::Associated { attempt: 2 })
        );
        r.remove_ap(LAB).unwrap();
        assert_eq!(r.take_event(), Some(NetEvent::LinkLost));
        assert_eq!(scan(&mut r, None, None), Some(vec![]));
        assert!(r.remove_ap(LAB).is_err());
        assert!(r.inject(FaultKind::DropAp { bssid: LAB }).is_err());
    }

    #[test]
    fn dhcp_silent_counts_frames_or_runs_until_cleared() {
        let mut r = radio();
        let id = r.inject(FaultKind::DhcpSilent { count: Some(2) }).unwrap();
        assert!(r.drop_dhcp_frame());
        assert!(r.drop_dhcp_frame());
        assert!(!r.drop_dhcp_frame());
        assert_eq!(r.fault(id).unwrap().fired, 2);
        let id = r.inject(FaultKind::DhcpSilent { count: None }).unwrap();
        for _ in 0..10 {
            assert!(r.drop_dhcp_frame());
        }
        assert!(r.fault(id).unwrap().armed());
        r.clear_faults();
        assert!(!r.drop_dhcp_frame());
        let f = r.fault(id).unwrap();
        assert_eq!((f.fired, f.armed()), (10, false));
    }

    #[test]
    fn the_log_records_what_happened() {
        let mut r = radio();
        let good = bss(&r, LAB);
        r.inject(FaultKind::RejectAssociation { count: 1 }).unwrap();
        assoc(&mut r, 1, good, b"labpass123");
        let log = r.events_since(0);
        assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(log.iter().all(|e| e.unix_ms > 1_600_000_000_000));
        let texts: Vec<&str> = log.iter().map(|e| e.text.as_str()).collect();
        assert!(texts.iter().any(|t| t.contains("reject_association fired (1/1)")), "{texts:?}");
        assert!(texts.iter().any(|t| t.contains("failed Rejected")), "{texts:?}");
        let last = log.last().unwrap().seq;
        assert!(r.events_since(last).is_empty());
    }
}
