//! The case × transport matrix of a run with several transports: each case's verdict over
//! each transport, and which cases' outcomes differ by transport.
//!
//! Skipped does not count as an outcome here (a case that does not apply to a transport is
//! skipped there by plan); a case *differs* when the verdicts of the transports it ran over
//! are not all the same (pass over serial, fail over rest).

use crate::model::{CaseResult, RunResult, Transport, Verdict};

/// One case across the run's transports.
#[derive(Debug)]
pub struct Row<'a> {
    pub id: &'a str,
    pub title: &'a str,
    /// One cell per transport of the [`Matrix`], `None` where the case has no result.
    pub cells: Vec<Option<&'a CaseResult>>,
    /// The verdicts of the transports it ran over are not all the same.
    pub differs: bool,
}

/// Every case of a run by transport, in the run's case order.
#[derive(Debug)]
pub struct Matrix<'a> {
    pub transports: Vec<Transport>,
    pub rows: Vec<Row<'a>>,
}

impl Matrix<'_> {
    /// The rows whose outcome differs by transport.
    pub fn differing(&self) -> impl Iterator<Item = &Row<'_>> {
        self.rows.iter().filter(|r| r.differs)
    }
}

/// Whether verdicts that ran (skipped ones left out) are not all the same.
pub fn outcome_differs(verdicts: impl IntoIterator<Item = Verdict>) -> bool {
    let mut ran = verdicts.into_iter().filter(|v| *v != Verdict::Skipped);
    match ran.next() {
        Some(first) => ran.any(|v| v != first),
        None => false,
    }
}

/// The matrix of `run`, or `None` when it has only one transport (there is nothing to
/// compare).
pub fn matrix(run: &RunResult) -> Option<Matrix<'_>> {
    let mut transports = run.transports.clone();
    for c in &run.cases {
        if !transports.contains(&c.transport) {
            transports.push(c.transport);
        }
    }
    if transports.len() < 2 {
        return None;
    }
    let mut rows: Vec<Row<'_>> = Vec::new();
    for case in &run.cases {
        let column = transports.iter().position(|t| *t == case.transport).unwrap_or(0);
        let row = match rows.iter_mut().position(|r| r.id == case.id) {
            Some(i) => &mut rows[i],
            None => {
                rows.push(Row {
                    id: &case.id,
                    title: &case.title,
                    cells: vec![None; transports.len()],
                    differs: false,
                });
                let last = rows.len() - 1;
                &mut rows[last]
            }
        };
        row.cells[column] = Some(case);
    }
    for row in &mut rows {
        row.differs = outcome_differs(row.cells.iter().flatten().map(|c| c.verdict));
    }
    Some(Matrix { transports, rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Error, Fail, KnownDeviation, Pass, Skipped};
    use rstest::rstest;

    #[rstest]
    #[case::all_pass(&[Pass, Pass], false)]
    #[case::skipped_is_no_outcome(&[Pass, Skipped, Pass], false)]
    #[case::only_skipped(&[Skipped, Skipped], false)]
    #[case::pass_and_fail(&[Pass, Fail], true)]
    #[case::fail_and_error(&[Fail, Skipped, Error], true)]
    #[case::deviation_and_pass(&[KnownDeviation, Pass], true)]
    #[case::one(&[Fail], false)]
    fn outcomes_differ_when_the_runs_disagree(#[case] verdicts: &[Verdict], #[case] want: bool) {
        assert_eq!(outcome_differs(verdicts.iter().copied()), want);
    }

    #[test]
    fn one_row_per_case_one_column_per_transport() {
        let run = crate::testdata::sample_multi_transport_run();
        let m = matrix(&run).expect("two transports");
        assert_eq!(m.transports, [Transport::Serial, Transport::Rest]);
        let ids: Vec<&str> = run
            .cases
            .iter()
            .filter(|c| c.transport == Transport::Serial)
            .map(|c| c.id.as_str())
            .collect();
        let rows: Vec<&str> = m.rows.iter().map(|r| r.id).collect();
        assert_eq!(rows, ids);
        let differing: Vec<&str> = m.differing().map(|r| r.id).collect();
        assert_eq!(differing, ["passkeys/ascii/min-length", "passkeys/ascii/max-length"]);
        assert!(matrix(&crate::testdata::sample_run()).is_none(), "one transport: no matrix");
    }
}
