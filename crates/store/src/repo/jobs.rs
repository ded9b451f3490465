//! The jobs aggregate: background work with explicit states, attempts, backoff and leases,
//! and the outbox that announces state changes to later readers (notifications, webhooks).
//!
//! A job moves `pending -> running -> completed`, or on failure `running -> retry_wait ->
//! running ...` until its attempts run out (`failed`). A job whose worker stopped holding it
//! (the lease expired) is run again while attempts remain, else it is `abandoned`. A waiting
//! job can be `cancelled`. Every final transition writes an outbox row in the same
//! transaction.

use async_trait::async_trait;
use trustbox_types::{JobId, TenantId};

use crate::{NewAuditEvent, StoreError};

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its first run.
    Pending,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Failed an attempt; waits for `run_at` before the next one.
    RetryWait,
    /// Done.
    Completed,
    /// Failed its last attempt.
    Failed,
    /// Its worker stopped holding it after the last attempt.
    Abandoned,
    /// Cancelled before it ran to an end.
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 7] = [
        Self::Pending,
        Self::Running,
        Self::RetryWait,
        Self::Completed,
        Self::Failed,
        Self::Abandoned,
        Self::Cancelled,
    ];

    /// The stored and wire name (`retry_wait`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::RetryWait => "retry_wait",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the job has ended (no transition leaves this state).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Abandoned | Self::Cancelled
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("job state {s:?}")))
    }
}

/// A job to enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// The tenant it works for.
    pub tenant: TenantId,
    /// Identifier.
    pub id: JobId,
    /// What it does (`crl.publish`); the runner picks the handler by kind.
    pub kind: String,
    /// What it works on (an issuer id); at most one job per tenant, kind and key is active
    /// (pending, running or waiting to retry) at a time.
    pub key: String,
    /// Handler input, JSON.
    pub payload: String,
    /// Attempts before it fails (at least 1).
    pub max_attempts: u32,
    /// Earliest start, Unix seconds.
    pub run_at: i64,
    /// Creation time.
    pub created_at: i64,
}

/// A stored job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRecord {
    /// The tenant it works for.
    pub tenant: TenantId,
    /// Identifier.
    pub id: JobId,
    /// What it does.
    pub kind: String,
    /// What it works on.
    pub key: String,
    /// Handler input, JSON.
    pub payload: String,
    /// Where it is in its life.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts before it fails.
    pub max_attempts: u32,
    /// Earliest next start, Unix seconds.
    pub run_at: i64,
    /// The worker running it, while running.
    pub lease_holder: Option<String>,
    /// When that worker's claim lapses, while running.
    pub lease_until: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last state change.
    pub updated_at: i64,
    /// When it reached a final state.
    pub finished_at: Option<i64>,
}

/// How a claimed job's attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobFinish {
    /// It succeeded: `completed`.
    Completed,
    /// It failed and runs again at `at`: `retry_wait`.
    Retry {
        /// Next start, Unix seconds.
        at: i64,
        /// Why it failed (bounded by the caller).
        error: String,
    },
    /// It failed for the last time: `failed`.
    Failed {
        /// Why it failed.
        error: String,
    },
}

/// Which jobs to list, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Only jobs older than this one (keyset cursor).
    pub before: Option<JobId>,
    /// Most rows returned.
    pub limit: u32,
}

/// A row of the outbox: a committed state change announced to later readers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRecord {
    /// Position; grows in commit order within a tenant.
    pub seq: i64,
    /// The tenant it happened in.
    pub tenant: TenantId,
    /// What happened (`job.completed`, `job.failed`, `certificate.revoked`).
    pub topic: String,
    /// Details, JSON.
    pub payload: String,
    /// When, Unix seconds.
    pub at: i64,
}

/// The repository of jobs and the outbox.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Enqueues `job` unless an active job of the same tenant, kind and key exists. Returns
    /// whether it was enqueued.
    async fn enqueue_job(&self, job: &NewJob) -> Result<bool, StoreError>;

    /// Claims up to `limit` due jobs of any tenant for `holder` until `lease_until`: waiting
    /// jobs whose `run_at` has come, and running jobs whose lease lapsed with attempts left.
    /// Running jobs whose lease lapsed after their last attempt become `abandoned` first.
    /// Each claim starts an attempt. Safe with several replicas: a job is claimed once.
    async fn claim_jobs(
        &self,
        holder: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError>;

    /// Ends the current attempt of a job `holder` claimed. Returns `false` (and changes
    /// nothing) when `holder` no longer holds it.
    async fn finish_job(
        &self,
        tenant: TenantId,
        id: JobId,
        holder: &str,
        finish: &JobFinish,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Cancels a pending or waiting job, recording `event`; `Conflict` when it is running
    /// or has ended, `NotFound` when the tenant has no such job.
    async fn cancel_job(
        &self,
        tenant: TenantId,
        id: JobId,
        now: i64,
        event: &NewAuditEvent,
    ) -> Result<JobRecord, StoreError>;

    /// One job of the tenant.
    async fn job(&self, tenant: TenantId, id: JobId) -> Result<Option<JobRecord>, StoreError>;

    /// The tenant's jobs, newest first.
    async fn list_jobs(
        &self,
        tenant: TenantId,
        filter: &JobFilter,
    ) -> Result<Vec<JobRecord>, StoreError>;

    /// Deletes up to `limit` of the tenant's jobs that ended before `before`, and outbox
    /// rows older than it. Returns how many jobs went.
    async fn prune_jobs(
        &self,
        tenant: TenantId,
        before: i64,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// The tenant's outbox after `after`, oldest first.
    async fn list_outbox(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRecord>, StoreError>;
}
