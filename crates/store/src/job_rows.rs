//! The rules a job's end follows whichever engine and driver writes it: the statement that
//! records an attempt's outcome, its parameters, and the outbox event announcing a job's
//! final state. The `sqlx` path and the SQLite group-commit writer run these same
//! statements.
//!
//! Nothing here does I/O.

use crate::rows::SqlValue;
use crate::JobFinish;

/// Records an attempt's outcome on a running job its holder still leases. Parameters are
/// [`finish_values`]; returns the job's kind, dedupe key and attempts, or no row if the
/// lease was lost.
pub const FINISH_JOB: &str = "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), \
     last_error = COALESCE($3, last_error), lease_holder = NULL, lease_until = NULL, \
     updated_at = $4, finished_at = $5 WHERE tenant_id = $6 AND id = $7 AND \
     state = 'running' AND lease_holder = $8 RETURNING kind, dedupe_key, attempts";

/// Appends an outbox row. Parameters: tenant, topic, payload, at.
pub const INSERT_OUTBOX: &str =
    "INSERT INTO outbox (tenant_id, topic, payload, at) VALUES ($1, $2, $3, $4)";

/// What an attempt's outcome writes: the job's new state, when it runs again, its error,
/// and when it ended (`None` while it will run again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finish<'a> {
    /// `completed`, `retry_wait` or `failed`.
    pub state: &'static str,
    /// The next start of a retried job.
    pub run_at: Option<i64>,
    /// Why the attempt failed.
    pub error: Option<&'a str>,
    /// When the job ended, unless it is retried.
    pub finished_at: Option<i64>,
}

impl<'a> Finish<'a> {
    /// The outcome `finish` recorded at `now`.
    pub fn new(finish: &'a JobFinish, now: i64) -> Self {
        let (state, run_at, error) = match finish {
            JobFinish::Completed => ("completed", None, None),
            JobFinish::Retry { at, error } => ("retry_wait", Some(*at), Some(error.as_str())),
            JobFinish::Failed { error } => ("failed", None, Some(error.as_str())),
        };
        Self {
            state,
            run_at,
            error,
            finished_at: (state != "retry_wait").then_some(now),
        }
    }

    /// The outbox topic announcing it, if the job ended.
    pub fn topic(&self) -> Option<String> {
        self.finished_at.map(|_| format!("job.{}", self.state))
    }
}

/// The parameters of [`FINISH_JOB`].
pub fn finish_values<'a>(
    f: &Finish<'a>,
    tenant: &'a str,
    id: &'a str,
    holder: &'a str,
    now: i64,
) -> [SqlValue<'a>; 8] {
    [
        SqlValue::Text(f.state),
        SqlValue::OptInt(f.run_at),
        SqlValue::OptText(f.error),
        SqlValue::Int(now),
        SqlValue::OptInt(f.finished_at),
        SqlValue::Text(tenant),
        SqlValue::Text(id),
        SqlValue::Text(holder),
    ]
}

/// The outbox payload announcing a job's final state.
pub fn job_event(
    id: &str,
    kind: &str,
    key: &str,
    attempts: i64,
    error: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({ "job": id, "kind": kind, "key": key, "attempts": attempts, "error": error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_does_not_end_the_job_and_announces_nothing() {
        let retry = JobFinish::Retry {
            at: 50,
            error: "e".into(),
        };
        let f = Finish::new(&retry, 10);
        assert_eq!(
            (f.state, f.run_at, f.finished_at),
            ("retry_wait", Some(50), None)
        );
        assert_eq!(f.topic(), None);
        let done = Finish::new(&JobFinish::Completed, 10);
        assert_eq!(done.finished_at, Some(10));
        assert_eq!(done.topic().as_deref(), Some("job.completed"));
    }
}
