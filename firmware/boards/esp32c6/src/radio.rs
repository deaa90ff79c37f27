//! The Wi-Fi radio: the core's radio requests ([`NetRequest::Scan`], [`NetRequest::Associate`],
//! [`NetRequest::Disassociate`]) carried to esp-radio's [`WifiController`], and its answers
//! ([`NetEvent::ScanDone`], [`NetEvent::Associated`], [`NetEvent::AssociationFailed`],
//! [`NetEvent::LinkLost`]) back.
//!
//! [`EspRadio`] is the synchronous side `gecko-net` polls (its [`Radio`] trait, as the
//! simulated radio is); [`controller`] is the task that owns the controller and runs one
//! request at a time: requests reach it through a queue, events come back through another,
//! and the driver's waker ([`Radio::register_waker`]) is woken for each. Station mode only; an
//! access point would be one more configuration of the same controller.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::Waker;
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::waitqueue::AtomicWaker;
use esp_hal::time::Duration;
use esp_radio::wifi::ap::AccessPointInfo;
use esp_radio::wifi::scan::{ScanConfig, ScanTypeConfig};
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethod, AuthenticationMethodConfig, Config, ConnectionError, DisconnectReason,
    Password, Ssid, WifiController,
};
use gecko_core::net::{
    AssocFailure, Bss, Mac, NetEvent, NetRequest, ScanParams, ScanType, Security,
};
use gecko_net::Radio;

/// What the controller task is asked to do.
#[derive(Debug)]
enum Command {
    Scan { id: u32, ssid: Option<String>, bssid: Option<Mac>, params: ScanParams },
    Associate { attempt: u32, bss: Bss, passkey: Vec<u8> },
    Disassociate,
}

/// Requests queued for the controller: the core has at most a scan and a join going, plus
/// a leave; more is a burst the core's timers end.
const COMMANDS: usize = 4;
/// Events not yet taken by the glue.
const EVENTS: usize = 8;

/// What [`EspRadio`] and the controller task share.
pub struct Shared {
    commands: Channel<CriticalSectionRawMutex, (u32, Command), COMMANDS>,
    events: Channel<CriticalSectionRawMutex, NetEvent, EVENTS>,
    link: AtomicBool,
    /// Bumped on every change of `link` (the IP side ends connections across one).
    link_changes: AtomicU32,
    /// Bumped by [`Radio::reset`]: answers to commands from before it are dropped.
    generation: AtomicU32,
    /// The driver waiting for an event.
    waker: AtomicWaker,
}

impl core::fmt::Debug for Shared {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shared")
            .field("link", &self.link.load(Ordering::Relaxed))
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Hands an event to the driver (a full queue drops it: the core's timer ends what it
    /// answered).
    fn emit(&self, event: NetEvent) {
        let _ = self.events.try_send(event);
        self.waker.wake();
    }

    fn set_link(&self, up: bool) {
        if self.link.swap(up, Ordering::AcqRel) != up {
            self.link_changes.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// The radio side the network glue holds.
#[derive(Debug)]
pub struct EspRadio {
    shared: &'static Shared,
    /// The access point of the last association asked for.
    bssid: Mac,
}

impl EspRadio {
    /// The radio and the state its controller task ([`controller`]) needs.
    pub fn new() -> (Self, &'static Shared) {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            commands: Channel::new(),
            events: Channel::new(),
            link: AtomicBool::new(false),
            link_changes: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            waker: AtomicWaker::new(),
        }));
        (EspRadio { shared, bssid: [0; 6] }, shared)
    }

    fn send(&self, command: Command) {
        let generation = self.shared.generation.load(Ordering::Acquire);
        // A full queue drops the request: the core's timer ends it, as for a radio that
        // never answered.
        let _ = self.shared.commands.try_send((generation, command));
    }
}

impl Radio for EspRadio {
    fn request(&mut self, req: &NetRequest, _now_ms: u64) {
        match req {
            NetRequest::Scan { id, ssid, bssid, params } => self.send(Command::Scan {
                id: *id,
                ssid: ssid.clone(),
                bssid: *bssid,
                params: *params,
            }),
            NetRequest::Associate { attempt, bss, passkey } => {
                self.bssid = bss.bssid;
                self.send(Command::Associate {
                    attempt: *attempt,
                    bss: bss.clone(),
                    passkey: passkey.clone(),
                });
            }
            NetRequest::Disassociate => self.send(Command::Disassociate),
            // IP requests are the IP stack's, not the radio's.
            _ => {}
        }
    }

    fn reset(&mut self) {
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        self.shared.commands.clear();
        self.shared.events.clear();
        self.send(Command::Disassociate);
    }

    /// Nothing is timed here: the controller task waits on the radio itself.
    fn poll(&mut self, _now_ms: u64) {}

    fn next_deadline(&self) -> Option<u64> {
        None
    }

    fn take_event(&mut self) -> Option<NetEvent> {
        self.shared.events.try_receive().ok()
    }

    fn associated(&self) -> Option<Mac> {
        self.shared.link.load(Ordering::Acquire).then_some(self.bssid)
    }

    fn generation(&self) -> u64 {
        u64::from(self.shared.link_changes.load(Ordering::Acquire))
    }

    fn register_waker(&mut self, waker: &Waker) {
        self.shared.waker.register(waker);
    }
}

/// Runs the Wi-Fi controller: one command at a time, and while associated it watches for
/// the link going down (the AP dropped the module or went away: [`NetEvent::LinkLost`]).
/// A command that comes during a join ends the join (the core only sends one once it has
/// given up on the join, or to leave): the join is left unanswered, then the command runs.
#[embassy_executor::task]
pub async fn controller(mut wifi: WifiController<'static>, shared: &'static Shared) {
    let mut next: Option<(u32, Command)> = None;
    loop {
        let (generation, command) = if let Some(waiting) = next.take() {
            waiting
        } else if shared.link.load(Ordering::Acquire) {
            match select(shared.commands.receive(), wifi.wait_for_disconnect_async()).await {
                Either::First(next) => next,
                Either::Second(_) => {
                    shared.set_link(false);
                    shared.emit(NetEvent::LinkLost);
                    continue;
                }
            }
        } else {
            shared.commands.receive().await
        };
        let event = match command {
            Command::Scan { id, ssid, bssid, params } => {
                Some(scan(&mut wifi, id, ssid.as_deref(), bssid, params).await)
            }
            Command::Associate { attempt, bss, passkey } => {
                if shared.link.load(Ordering::Acquire) {
                    shared.set_link(false);
                    let _ = wifi.disconnect_async().await;
                }
                match select(
                    associate(&mut wifi, attempt, &bss, &passkey),
                    shared.commands.receive(),
                )
                .await
                {
                    Either::First(event) => {
                        let up = matches!(event, NetEvent::Associated { .. });
                        shared.set_link(up);
                        Some(event)
                    }
                    Either::Second(interrupting) => {
                        // Stop the join the driver is still making.
                        let _ = wifi.disconnect_async().await;
                        next = Some(interrupting);
                        None
                    }
                }
            }
            Command::Disassociate => {
                shared.set_link(false);
                // Not associated (or not joining) is an error here, and nothing to do.
                let _ = wifi.disconnect_async().await;
                None
            }
        };
        // An answer to a command from before a reset is for a core that is gone.
        if let Some(event) = event
            && generation == shared.generation.load(Ordering::Acquire)
        {
            shared.emit(event);
        }
    }
}

async fn scan(
    wifi: &mut WifiController<'static>,
    id: u32,
    ssid: Option<&str>,
    bssid: Option<Mac>,
    params: ScanParams,
) -> NetEvent {
    let dwell = Duration::from_millis(u64::from(params.dwell_ms));
    let mut config =
        ScanConfig::default().with_show_hidden(ssid.is_some()).with_scan_type(match params.kind {
            ScanType::Active => ScanTypeConfig::Active { min: dwell, max: dwell },
            ScanType::Passive => ScanTypeConfig::Passive(dwell),
        });
    if let Some(ssid) = ssid.and_then(|s| Ssid::try_from(s).ok()) {
        config = config.with_ssid(ssid);
    }
    if let Some(bssid) = bssid {
        config = config.with_bssid(bssid);
    }
    // One channel in the mask: scan only it; otherwise all, and drop what the mask leaves out.
    if params.channels() == 1
        && let Some(only) = (1..=14).find(|c| params.covers(*c))
    {
        config = config.with_channel(only);
    }
    let results = match wifi.scan_async(&config).await {
        Ok(found) => found.iter().filter_map(bss).filter(|b| params.covers(b.channel)).collect(),
        // A failed scan found nothing (the core reports an empty result).
        Err(_) => Vec::new(),
    };
    NetEvent::ScanDone { id, results }
}

/// A scan result as the core sees it; `None` for what the module cannot join at all
/// (enterprise and other security types Gecko OS does not name).
fn bss(ap: &AccessPointInfo) -> Option<Bss> {
    let security = match ap.auth_method? {
        AuthenticationMethod::None => Security::Open,
        AuthenticationMethod::Wep => Security::Wep,
        // The radio reports the key management, not the cipher: WPA networks are named by
        // their usual cipher.
        AuthenticationMethod::Wpa => Security::WpaTkip,
        AuthenticationMethod::Wpa2Personal => Security::Wpa2Aes,
        AuthenticationMethod::WpaWpa2Personal => Security::Wpa2Mixed,
        // WPA2/WPA3 transition networks take a WPA2 station.
        AuthenticationMethod::Wpa2Wpa3Personal => Security::Wpa2Aes,
        AuthenticationMethod::Wpa3Personal
        | AuthenticationMethod::Wpa3ExtPsk
        | AuthenticationMethod::Wpa3ExtPskMixed => Security::Wpa3Sae,
        _ => return None,
    };
    Some(Bss {
        ssid: String::from(ap.ssid.as_str()),
        bssid: ap.bssid,
        channel: ap.channel,
        rssi: i16::from(ap.signal_strength),
        security,
    })
}

async fn associate(
    wifi: &mut WifiController<'static>,
    attempt: u32,
    bss: &Bss,
    passkey: &[u8],
) -> NetEvent {
    let failed = |reason| NetEvent::AssociationFailed { attempt, reason };
    let Ok(ssid) = Ssid::try_from(bss.ssid.as_str()) else {
        return failed(AssocFailure::NotFound);
    };
    let Ok(password) = Password::try_from(passkey) else {
        return failed(AssocFailure::AuthFailed);
    };
    let authentication = match bss.security {
        Security::Open => AuthenticationMethodConfig::Open,
        Security::Wep => AuthenticationMethodConfig::Wep(password),
        Security::WpaAes | Security::WpaTkip => AuthenticationMethodConfig::Wpa(password),
        Security::Wpa2Aes | Security::Wpa2Tkip => {
            AuthenticationMethodConfig::Wpa2Personal(password)
        }
        Security::Wpa2Mixed => AuthenticationMethodConfig::WpaWpa2Personal(password),
        // The core never joins these (`Security::is_supported`).
        Security::Wpa3Sae => return failed(AssocFailure::Rejected),
    };
    let station = StationConfig::default()
        .with_ssid(ssid)
        .with_bssid(bss.bssid)
        .with_channel(bss.channel)
        .with_authentication(authentication);
    if wifi.set_config(&Config::Station(station)).is_err() {
        return failed(AssocFailure::Rejected);
    }
    match wifi.connect_async().await {
        Ok(_) => NetEvent::Associated { attempt },
        Err(ConnectionError::Failed(info)) => failed(failure(info.reason)),
        Err(_) => failed(AssocFailure::Rejected),
    }
}

/// Why the AP (or the air) refused the station, in the core's terms.
fn failure(reason: DisconnectReason) -> AssocFailure {
    match reason {
        DisconnectReason::NoAccessPointFound
        | DisconnectReason::NoAccessPointFoundInAuthmodeThreshold
        | DisconnectReason::BeaconTimeout => AssocFailure::NotFound,
        DisconnectReason::AuthenticationFailed
        | DisconnectReason::FourWayHandshakeTimeout
        | DisconnectReason::HandshakeTimeout
        | DisconnectReason::MicFailure
        | DisconnectReason::AuthenticationExpired
        | DisconnectReason::_802_1xAuthenticationFailed => AssocFailure::AuthFailed,
        _ => AssocFailure::Rejected,
    }
}
