//! The host side of the Gecko OS HIL framework.
//!
//! * [`model`]: what a run produces (`results.json` is it, serialized).
//! * [`report`]: results.json, junit.xml, summary.md and report.html from a [`model::RunResult`].
#![forbid(unsafe_code)]

pub mod model;
pub mod report;
