//! The host side of the Gecko OS HIL framework.
//!
//! * [`channel`]: the one [`channel::Channel`] trait every transport implements, the
//!   [`channel::Recorder`] middleware (transcripts, timing), the serial transport and its
//!   sans-IO frame parser.
//! * [`spec`]: spec tables and the clause inventory, validated at load (file:line:key errors);
//!   [`spec::wait`]: the conditions `wait` and `hold` steps poll (time in specs is waited for,
//!   never slept).
//! * [`rig`]: rig files (simulated module or real hardware) and per-rig known deviations.
//! * [`ap`]: the lab's access points and radio faults ([`ap::AccessPoints`]; over a simulated
//!   module's lab socket: [`ap::SimAccessPoints`]).
//! * [`lab`]: the simulated lab's network (namespace, bridge, TAP, dnsmasq).
//! * [`session`]: starting a simulated module, connecting, syncing the console.
//! * [`runner`]: running cases, verdicts (product failure vs. infrastructure error), retries;
//!   the outcome changes between repetitions of `hil run --repeat`.
//! * [`peers`]: lab peers (TCP/UDP echo, sink, source, refuse) and clients towards the module.
//! * [`capture`]: packet capture on the lab network (pcap), a decoder for the lab's protocols,
//!   packet expectations of spec tables, timeline events.
//! * [`model`] and [`report`]: the result model and its renderings (results.json, junit.xml,
//!   summary.md, report.html), diffs between runs.
#![forbid(unsafe_code)]

pub mod ap;
pub mod bench;
pub mod capture;
pub mod channel;
pub mod code;
pub mod interrupt;
pub mod lab;
pub mod model;
pub mod peers;
pub mod probe;
pub mod report;
pub mod rig;
pub mod runner;
pub mod session;
pub mod spec;
