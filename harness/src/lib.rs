//! The host side of the Gecko OS HIL framework.
//!
//! * [`channel`]: the one [`channel::Channel`] trait every transport implements, the
//!   [`channel::Recorder`] middleware (transcripts, timing), the serial transport and its
//!   sans-IO frame parser.
//! * [`transport`]: the transports as a typed value ([`transport::Transport`]) with their
//!   capabilities (raw bytes, response format, how logs arrive).
//! * [`spec`]: spec tables and the clause inventory, validated at load (file:line:key errors);
//!   [`spec::wait`]: the conditions `wait` and `hold` steps poll (time in specs is waited for,
//!   never slept).
//! * [`coverage`]: which clauses a case checked (a passing case cites them), which are only
//!   named, which are uncovered; the rule that a feature or behaviour clause needs more than
//!   variable get/set cases.
//! * [`source`] and [`text`]: leaf modules the parsers share (file:line errors; byte escapes,
//!   BSSIDs).
//! * [`rig`]: rig files (simulated module, a board image under QEMU, or real hardware) and
//!   per-rig known deviations.
//! * [`ap`]: the lab's access points and radio faults ([`ap::AccessPoints`]; over a simulated
//!   module's lab socket: [`ap::SimAccessPoints`]).
//! * [`lab`]: the simulated lab's network (namespace, bridge, TAP, dnsmasq), its ownership
//!   records, and the sweeper of labs whose owner process is gone.
//! * [`interrupt`]: how a run ends on SIGINT, SIGTERM, SIGHUP or its parent's death (in
//!   order, with its report; signals passed on to child programs).
//! * [`session`]: starting a simulated module (or QEMU with a board image), connecting,
//!   syncing the console; a session's
//!   control channel (the serial console: setup, recovery) and channel under test (the case's
//!   steps).
//! * [`plan`]: which case runs over which transport and rig, and why not.
//! * [`runner`]: running cases, verdicts (product failure vs. infrastructure error), retries;
//!   the outcome changes between repetitions of `hil run --repeat`.
//! * [`peers`]: lab peers (TCP/UDP echo, sink, source, refuse) and clients towards the module.
//! * [`capture`]: packet capture on the lab network (pcap), a decoder for the lab's protocols,
//!   packet expectations of spec tables, timeline events.
//! * [`model`] and [`report`]: the result model and its renderings (results.json, junit.xml,
//!   summary.md, report.html), diffs between runs.
//! * [`modgraph`]: finds import cycles between a crate's modules (a unit test keeps this
//!   crate free of them).
#![forbid(unsafe_code)]

pub mod ap;
pub mod bench;
pub mod browser;
pub mod campaign;
pub mod capture;
pub mod channel;
pub mod code;
pub mod coverage;
pub mod interrupt;
pub mod lab;
pub mod labgrid;
pub mod labgrid_lab;
pub mod model;
pub mod modgraph;
pub mod peers;
pub mod pki;
pub mod plan;
pub mod probe;
pub mod report;
pub mod rig;
pub mod runner;
pub mod session;
pub mod source;
pub mod spec;
#[cfg(test)]
mod testdata;
pub mod text;
pub mod transport;
