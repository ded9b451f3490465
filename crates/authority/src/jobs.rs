//! Background work as jobs with explicit states (ARCHITECTURE.md rule 9).
//!
//! The scheduler runs on the replica holding the leader lease: each tick it looks at what is
//! due (CRL shards revoked into or at half-life, OCSP responders missing or near expiry,
//! audit chains to checkpoint) and enqueues one job per issuer or tenant; at most one job per
//! kind and key is active, so a slow job is never queued twice. Its cost per tick grows
//! with tenants and issuers, never with certificates. Every replica runs a runner that
//! claims due jobs under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE`
//! on SQLite), runs them, and records the outcome: `completed`, or `retry_wait` with
//! exponential backoff until the attempts run out (`failed`). A job whose runner died is
//! claimed again when its lease lapses, or `abandoned` after its last attempt. Final states
//! are announced in the outbox in the same transaction.

use crate::error::{AuthorityError, ErrorKind};
use crate::{Authority, JobQuery, JobState, Services};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use trustbox_store::{JobFinish, JobRecord, NewJob};
use trustbox_types::{IssuerId, JobId, Principal, Scope, TenantId};

/// Publishes the due CRL shards of one issuer (key: the issuer id).
pub const CRL_PUBLISH: &str = "crl.publish";
/// Issues or rotates one issuer's delegated OCSP responder certificate (key: the issuer id).
pub const OCSP_RESPONDER: &str = "ocsp.responder";
/// Signs a checkpoint of one tenant's audit chain (key: `chain`).
pub const AUDIT_CHECKPOINT: &str = "audit.checkpoint";

/// How long a claimed job is held before another replica may claim it again.
const LEASE_S: i64 = 60;
/// How long one attempt may run (below the lease, so a slow attempt ends before another
/// replica could claim the job).
const ATTEMPT_LIMIT: Duration = Duration::from_secs(45);
/// Jobs claimed (and run concurrently) at once by one runner.
const CLAIM_BATCH: u32 = 32;
/// Jobs one runner runs at once.
const RUNNING: usize = 128;
/// How often an idle runner looks for due jobs it was not woken for (jobs enqueued on
/// another replica, retries coming due).
const POLL: Duration = Duration::from_secs(1);
/// Attempts of the built-in jobs.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// First retry delay and the ceiling of the exponential backoff, seconds.
const BACKOFF_BASE_S: i64 = 2;
const BACKOFF_MAX_S: i64 = 300;
/// Ended jobs and outbox rows are kept this long, seconds.
const RETENTION_S: i64 = 7 * 86400;
/// How often the scheduler prunes ended jobs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Most characters of a failure kept on the job.
const MAX_ERROR_CHARS: usize = 500;

/// The delay before the next attempt after `attempts` failed ones: 2 s, 4 s, 8 s, ...
/// capped at 5 minutes.
pub fn backoff_s(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(20);
    (BACKOFF_BASE_S << doublings).min(BACKOFF_MAX_S)
}

/// Work a job kind does. Registered with [`crate::Administration::register_job_handler`];
/// the built-in kinds ([`CRL_PUBLISH`], [`OCSP_RESPONDER`], [`AUDIT_CHECKPOINT`]) need no
/// registration.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Runs one attempt, given the seam's services (so a handler need hold none of its own,
    /// which would make the core it is registered with own a reference to itself). An error
    /// of kind `Invalid` or `NotFound` fails the job at once; any other error is retried
    /// with backoff while attempts remain.
    async fn run(&self, services: &Services, job: &JobView) -> Result<(), AuthorityError>;
}

/// A job as the seam shows it (to the API, and to the handler that runs it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobView {
    /// The tenant it works for.
    pub tenant: TenantId,
    /// Identifier.
    pub id: JobId,
    /// What it does (`crl.publish`).
    pub kind: String,
    /// What it works on (an issuer id).
    pub key: String,
    /// The handler's input, JSON text (as given to `enqueue_job`).
    pub payload: String,
    /// Where it is in its life.
    pub state: JobState,
    /// Attempts started.
    pub attempts: u32,
    /// Attempts before it fails.
    pub max_attempts: u32,
    /// Earliest next start, Unix seconds.
    pub run_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Creation, last change and end, Unix seconds.
    pub created_at: i64,
    /// Last state change.
    pub updated_at: i64,
    /// When it ended.
    pub finished_at: Option<i64>,
}

impl From<JobRecord> for JobView {
    fn from(r: JobRecord) -> Self {
        Self {
            tenant: r.tenant,
            id: r.id,
            kind: r.kind,
            key: r.key,
            payload: r.payload,
            state: r.state.into(),
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: r.run_at,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}

/// The runner's state: registered handlers, its lease holder name, its wake-up.
pub(crate) struct JobsState {
    handlers: RwLock<HashMap<String, Arc<dyn JobHandler>>>,
    /// Woken when this replica enqueues a job.
    pub(crate) wake: Notify,
    /// This runner's name in leases.
    holder: String,
    /// Slots of running jobs: at most [`RUNNING`] at once, claimed or started leased.
    slots: Arc<tokio::sync::Semaphore>,
}

impl Default for JobsState {
    fn default() -> Self {
        Self {
            handlers: RwLock::default(),
            wake: Notify::new(),
            holder: format!("runner-{}", uuid::Uuid::new_v4()),
            slots: Arc::new(tokio::sync::Semaphore::new(RUNNING)),
        }
    }
}

impl std::fmt::Debug for JobsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobsState")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// When the scheduler last did its less frequent work.
#[derive(Default)]
pub(crate) struct SchedulerMarks {
    checkpoint: Option<Instant>,
    prune: Option<Instant>,
}

fn bounded_error(e: &AuthorityError) -> String {
    let s = format!("{}: {}", e.code, e.detail);
    match s.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

fn issuer_key(job: &JobRecord) -> Result<IssuerId, AuthorityError> {
    job.key.parse().map_err(|_| {
        AuthorityError::invalid(
            "bad-job",
            format!("{} job key {:?} is not an issuer id", job.kind, job.key),
        )
    })
}

impl Authority {
    /// Registers the handler of job kind `kind` (replacing an earlier one).
    pub(crate) fn register_job_handler(&self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.jobs
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind.to_owned(), handler);
    }

    /// Enqueues a job of `kind` on `key` for `tenant`, unless one is active; wakes this
    /// replica's runner. Returns whether it was enqueued.
    pub(crate) async fn enqueue_job(
        &self,
        tenant: TenantId,
        kind: &str,
        key: &str,
        payload: serde_json::Value,
        max_attempts: u32,
    ) -> Result<bool, AuthorityError> {
        let now = self.now_s();
        let added = self
            .store
            .enqueue_job(&NewJob {
                tenant,
                id: JobId::generate(),
                kind: kind.to_owned(),
                key: key.to_owned(),
                payload: payload.to_string(),
                max_attempts: max_attempts.max(1),
                run_at: now,
                created_at: now,
            })
            .await?;
        if added {
            self.jobs.wake.notify_one();
        }
        Ok(added)
    }

    /// Claims the jobs due now and runs them, recording each outcome. Returns how many ran.
    /// Every replica's runner calls this in a loop; tests call it directly.
    pub(crate) async fn run_due_jobs(self: &Arc<Self>) -> Result<usize, AuthorityError> {
        let now = self.now_s();
        let claimed = self
            .store
            .claim_jobs(&self.jobs.holder, now, now + LEASE_S, CLAIM_BATCH)
            .await?;
        let ran = claimed.len();
        // the batch runs concurrently: a slow job (a challenge target that takes its time)
        // holds up no other
        let mut set = tokio::task::JoinSet::new();
        for job in claimed {
            let me = self.clone();
            set.spawn(async move { me.run_claimed(job, None).await });
        }
        while set.join_next().await.is_some() {}
        Ok(ran)
    }

    /// Claims as many due jobs as there are free `slots` (at most a batch) and starts each
    /// as a task holding its slot. Returns how many were claimed.
    async fn claim_and_spawn(
        self: &Arc<Self>,
        slots: &Arc<tokio::sync::Semaphore>,
    ) -> Result<usize, AuthorityError> {
        let free = u32::try_from(slots.available_permits())
            .unwrap_or(CLAIM_BATCH)
            .min(CLAIM_BATCH);
        if free == 0 {
            return Ok(0);
        }
        let now = self.now_s();
        let claimed = self
            .store
            .claim_jobs(&self.jobs.holder, now, now + LEASE_S, free)
            .await?;
        let n = claimed.len();
        for job in claimed {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.run_claimed(job, None).await;
                drop(permit);
            });
        }
        Ok(n)
    }

    /// A lease on a new job for this runner, from `now`: the job is stored claimed
    /// ([`trustbox_store::AcmeOp::ChangesThenJob`]) and started with [`Self::start_leased`].
    pub(crate) fn job_lease(&self, now: i64) -> trustbox_store::JobLease {
        trustbox_store::JobLease {
            holder: self.jobs.holder.clone(),
            until: now + LEASE_S,
        }
    }

    /// Runs `job`, committed already claimed under [`Self::job_lease`], as a task holding
    /// a slot, as if this runner had claimed it: no claim, no wake-up, no poll. If this
    /// process stops first, the lease expires and any runner retries it. The receiver
    /// hears when the first attempt has run (before its outcome is recorded on the job).
    pub(crate) fn start_leased(
        self: &Arc<Self>,
        job: &NewJob,
        lease: &trustbox_store::JobLease,
    ) -> tokio::sync::oneshot::Receiver<()> {
        let (ran, attempted) = tokio::sync::oneshot::channel();
        let record = JobRecord {
            tenant: job.tenant,
            id: job.id,
            kind: job.kind.clone(),
            key: job.key.clone(),
            payload: job.payload.clone(),
            state: trustbox_store::JobState::Running,
            attempts: 1,
            max_attempts: job.max_attempts.max(1),
            run_at: job.run_at,
            lease_holder: Some(lease.holder.clone()),
            lease_until: Some(lease.until),
            last_error: None,
            created_at: job.created_at,
            updated_at: job.created_at,
            finished_at: None,
        };
        let (me, slots) = (self.clone(), self.jobs.slots.clone());
        tokio::spawn(async move {
            let Ok(permit) = slots.acquire_owned().await else {
                return;
            };
            me.run_claimed(record, Some(ran)).await;
            drop(permit);
        });
        attempted
    }

    /// Runs a claimed job's attempt and records its outcome; `ran` hears when the attempt
    /// is over.
    async fn run_claimed(
        self: &Arc<Self>,
        job: JobRecord,
        ran: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let started = Instant::now();
        let result = match tokio::time::timeout(ATTEMPT_LIMIT, self.run_job(&job)).await {
            Ok(r) => r,
            Err(_) => Err(AuthorityError::new(
                ErrorKind::Unavailable,
                "job-timeout",
                format!("the attempt ran longer than {} s", ATTEMPT_LIMIT.as_secs()),
            )),
        };
        if let Some(ran) = ran {
            let _ = ran.send(());
        }
        let now = self.now_s();
        let finish = match &result {
            Ok(()) => JobFinish::Completed,
            Err(e)
                if job.attempts < job.max_attempts
                    && !matches!(e.kind, ErrorKind::Invalid | ErrorKind::NotFound) =>
            {
                JobFinish::Retry {
                    at: now + backoff_s(job.attempts),
                    error: bounded_error(e),
                }
            }
            Err(e) => JobFinish::Failed {
                error: bounded_error(e),
            },
        };
        let outcome = match &finish {
            JobFinish::Completed => "completed",
            JobFinish::Retry { .. } => "retry_wait",
            JobFinish::Failed { .. } => "failed",
        };
        metrics::counter!("trustbox_jobs_total", "kind" => job.kind.clone(), "outcome" => outcome)
            .increment(1);
        match &result {
            Ok(()) => tracing::debug!(
                job = %job.id, kind = %job.kind, key = %job.key,
                ms = started.elapsed().as_millis() as u64, "job completed"
            ),
            Err(e) => tracing::warn!(
                job = %job.id, kind = %job.kind, key = %job.key, attempt = job.attempts,
                error = %e, next = outcome, "job attempt failed"
            ),
        }
        match self
            .store
            .finish_job(job.tenant, job.id, &self.jobs.holder, &finish, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(job = %job.id, "job lease lost before it finished"),
            Err(e) => tracing::warn!(job = %job.id, error = %e, "job outcome not recorded"),
        }
    }

    async fn run_job(self: &Arc<Self>, job: &JobRecord) -> Result<(), AuthorityError> {
        match job.kind.as_str() {
            CRL_PUBLISH => self
                .publish_issuer_crls(job.tenant, issuer_key(job)?)
                .await
                .map(drop),
            OCSP_RESPONDER => self
                .ensure_ocsp_responder(job.tenant, issuer_key(job)?)
                .await
                .map(drop),
            AUDIT_CHECKPOINT => self.checkpoint_tenant(job.tenant).await.map(drop),
            kind => {
                let handler = self
                    .jobs
                    .handlers
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(kind)
                    .cloned();
                match handler {
                    Some(h) => {
                        h.run(&Services::new(self.clone()), &JobView::from(job.clone()))
                            .await
                    }
                    None => Err(AuthorityError::invalid(
                        "unknown-job-kind",
                        format!("no handler for job kind {kind:?}"),
                    )),
                }
            }
        }
    }

    /// The leader's scheduling pass: enqueues a job for each issuer with CRLs due or an
    /// OCSP responder to issue, and (every checkpoint interval) one checkpoint per tenant;
    /// prunes ended jobs hourly. Returns how many jobs were enqueued.
    pub(crate) async fn schedule_jobs(
        &self,
        marks: &mut SchedulerMarks,
    ) -> Result<usize, AuthorityError> {
        let checkpoint = marks
            .checkpoint
            .is_none_or(|t| t.elapsed() >= crate::audit::CHECKPOINT_EVERY);
        let prune = marks.prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
        let mut enqueued = 0;
        let none = serde_json::Value::Null;
        for tenant in self.store.list_tenants().await? {
            let t = tenant.id;
            for issuer in self.crl_issuers_due(t).await? {
                let key = issuer.to_string();
                let payload = serde_json::json!({ "issuer": key });
                enqueued += usize::from(
                    self.enqueue_job(t, CRL_PUBLISH, &key, payload, DEFAULT_MAX_ATTEMPTS)
                        .await?,
                );
            }
            for issuer in self.responders_due(t).await? {
                let key = issuer.to_string();
                let payload = serde_json::json!({ "issuer": key });
                enqueued += usize::from(
                    self.enqueue_job(t, OCSP_RESPONDER, &key, payload, DEFAULT_MAX_ATTEMPTS)
                        .await?,
                );
            }
            if checkpoint {
                enqueued += usize::from(
                    self.enqueue_job(
                        t,
                        AUDIT_CHECKPOINT,
                        "chain",
                        none.clone(),
                        DEFAULT_MAX_ATTEMPTS,
                    )
                    .await?,
                );
            }
            if prune {
                let before = self.now_s() - RETENTION_S;
                let gone = self.store.prune_jobs(t, before, 10_000).await?;
                if gone > 0 {
                    tracing::info!(tenant = %t, jobs = gone, "ended jobs pruned");
                }
            }
        }
        if checkpoint {
            marks.checkpoint = Some(Instant::now());
        }
        if prune {
            marks.prune = Some(Instant::now());
        }
        Ok(enqueued)
    }

    /// Every replica's job runner, until `stop` turns true: runs due jobs whenever this
    /// replica enqueues one, and polls for the rest.
    pub(crate) async fn run_job_runner(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        // Claimed jobs run as tasks, at most RUNNING at once, so the runner claims new
        // work while earlier jobs (a slow challenge target) are still running.
        let slots = self.jobs.slots.clone();
        loop {
            // A full batch may mean more are due: go again at once.
            let full = match self.claim_and_spawn(&slots).await {
                Ok(n) => n >= CLAIM_BATCH as usize,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming jobs failed");
                    false
                }
            };
            if *stop.borrow() {
                return;
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(POLL) => {}
                _ = self.jobs.wake.notified() => {}
            }
        }
    }

    /// The tenant's jobs, newest first (`ca:admin`); `query.limit` is the page size.
    pub(crate) async fn list_jobs(
        &self,
        principal: &Principal,
        query: &JobQuery,
    ) -> Result<Vec<JobView>, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        Ok(self
            .store
            .list_jobs(principal.tenant, &query.into())
            .await?
            .into_iter()
            .map(JobView::from)
            .collect())
    }

    /// One of the tenant's jobs (`ca:admin`).
    pub(crate) async fn job(
        &self,
        principal: &Principal,
        id: JobId,
    ) -> Result<JobView, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        self.store
            .job(principal.tenant, id)
            .await?
            .map(JobView::from)
            .ok_or_else(|| AuthorityError::not_found("job"))
    }

    /// Cancels one of the tenant's jobs that has not started or waits to retry
    /// (`ca:admin`); audited.
    pub(crate) async fn cancel_job(
        &self,
        principal: &Principal,
        id: JobId,
    ) -> Result<JobView, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        let event = self.event(
            principal.tenant,
            &principal.audit_actor(),
            "job.cancel",
            format!("job:{id}"),
            "success",
            serde_json::json!({}),
        );
        match self
            .store
            .cancel_job(principal.tenant, id, self.now_s(), &event)
            .await
        {
            Ok(job) => Ok(job.into()),
            Err(trustbox_store::StoreError::NotFound) => Err(AuthorityError::not_found("job")),
            Err(trustbox_store::StoreError::Conflict(state)) => Err(AuthorityError::new(
                ErrorKind::Conflict,
                "job-not-cancellable",
                format!("only a pending or waiting job can be cancelled; {state}"),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{env_with, Env};
    use crate::AuthorityConfig;
    use std::sync::atomic::{AtomicU32, Ordering};
    use trustbox_types::ManualClock;

    /// Fails its first `fail` attempts, then succeeds; counts attempts.
    struct Flaky {
        fail: u32,
        seen: AtomicU32,
    }

    #[async_trait]
    impl JobHandler for Flaky {
        async fn run(&self, _: &Services, _: &JobView) -> Result<(), AuthorityError> {
            let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
            if n <= self.fail {
                Err(AuthorityError::new(
                    ErrorKind::Unavailable,
                    "flaky",
                    format!("attempt {n} failed"),
                ))
            } else {
                Ok(())
            }
        }
    }

    async fn setup() -> (Env, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let env = env_with(clock.clone(), AuthorityConfig::default()).await;
        (env, clock)
    }

    async fn only(env: &Env, kind: &str) -> JobView {
        let jobs = env
            .authority
            .list_jobs(
                &env.admin,
                &JobQuery {
                    kind: Some(kind.into()),
                    limit: 10,
                    ..JobQuery::default()
                },
            )
            .await
            .expect("list");
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        jobs.into_iter().next().expect("one")
    }

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        assert_eq!(
            (1..=10).map(backoff_s).collect::<Vec<_>>(),
            [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
        );
    }

    #[tokio::test]
    async fn a_failing_job_retries_with_backoff_then_fails() {
        let (env, clock) = setup().await;
        let a = &env.authority;
        let handler = Arc::new(Flaky {
            fail: u32::MAX,
            seen: AtomicU32::new(0),
        });
        a.register_job_handler("test.always-fails", handler.clone());
        let t = env.admin.tenant;
        assert!(a
            .enqueue_job(t, "test.always-fails", "k", serde_json::json!({}), 3)
            .await
            .expect("enqueue"));
        assert_eq!(
            only(&env, "test.always-fails").await.state,
            JobState::Pending
        );

        assert_eq!(a.run_due_jobs().await.expect("run"), 1);
        let j = only(&env, "test.always-fails").await;
        assert_eq!((j.state, j.attempts), (JobState::RetryWait, 1));
        assert_eq!(j.run_at, a.now_s() + 2, "first retry after 2 s");
        assert!(j
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("attempt 1 failed")));

        assert_eq!(
            a.run_due_jobs().await.expect("run"),
            0,
            "not before its time"
        );
        clock.advance(time::Duration::seconds(2));
        assert_eq!(a.run_due_jobs().await.expect("run"), 1);
        let j = only(&env, "test.always-fails").await;
        assert_eq!((j.state, j.attempts), (JobState::RetryWait, 2));
        assert_eq!(j.run_at, a.now_s() + 4, "then after 4 s");

        clock.advance(time::Duration::seconds(4));
        assert_eq!(a.run_due_jobs().await.expect("run"), 1);
        let j = only(&env, "test.always-fails").await;
        assert_eq!((j.state, j.attempts), (JobState::Failed, 3));
        assert_eq!(j.finished_at, Some(a.now_s()));
        clock.advance(time::Duration::seconds(600));
        assert_eq!(a.run_due_jobs().await.expect("run"), 0, "failed is final");
        assert_eq!(handler.seen.load(Ordering::SeqCst), 3);
        let outbox = a.store.list_outbox(t, 0, 10).await.expect("outbox");
        assert_eq!(
            outbox.iter().map(|o| o.topic.as_str()).collect::<Vec<_>>(),
            ["job.failed"]
        );
    }

    #[tokio::test]
    async fn a_flaky_job_completes_on_retry_and_a_good_one_at_once() {
        let (env, clock) = setup().await;
        let a = &env.authority;
        a.register_job_handler(
            "test.flaky",
            Arc::new(Flaky {
                fail: 1,
                seen: AtomicU32::new(0),
            }),
        );
        a.register_job_handler(
            "test.good",
            Arc::new(Flaky {
                fail: 0,
                seen: AtomicU32::new(0),
            }),
        );
        let t = env.admin.tenant;
        for kind in ["test.flaky", "test.good"] {
            a.enqueue_job(t, kind, "k", serde_json::json!({}), 3)
                .await
                .expect("enqueue");
        }
        assert_eq!(a.run_due_jobs().await.expect("run"), 2);
        let good = only(&env, "test.good").await;
        assert_eq!((good.state, good.attempts), (JobState::Completed, 1));
        assert_eq!(only(&env, "test.flaky").await.state, JobState::RetryWait);
        clock.advance(time::Duration::seconds(2));
        assert_eq!(a.run_due_jobs().await.expect("run"), 1);
        let flaky = only(&env, "test.flaky").await;
        assert_eq!((flaky.state, flaky.attempts), (JobState::Completed, 2));
        assert_eq!(
            flaky.last_error.as_deref().map(|e| e.contains("flaky")),
            Some(true)
        );
    }

    #[tokio::test]
    async fn an_unknown_kind_fails_at_once_and_waiting_jobs_cancel() {
        let (env, _clock) = setup().await;
        let a = &env.authority;
        let t = env.admin.tenant;
        a.enqueue_job(t, "test.nobody", "k", serde_json::json!({}), 5)
            .await
            .expect("enqueue");
        a.run_due_jobs().await.expect("run");
        let j = only(&env, "test.nobody").await;
        assert_eq!((j.state, j.attempts), (JobState::Failed, 1), "no retry");

        a.register_job_handler(
            "test.later",
            Arc::new(Flaky {
                fail: 0,
                seen: AtomicU32::new(0),
            }),
        );
        a.enqueue_job(t, "test.later", "k", serde_json::json!({}), 5)
            .await
            .expect("enqueue");
        let id = only(&env, "test.later").await.id;
        let c = a.cancel_job(&env.admin, id).await.expect("cancel");
        assert_eq!(c.state, JobState::Cancelled);
        let e = a.cancel_job(&env.admin, id).await.expect_err("twice");
        assert_eq!(e.code, "job-not-cancellable");
        assert_eq!(
            a.run_due_jobs().await.expect("run"),
            0,
            "a cancelled job never runs"
        );
    }

    #[tokio::test]
    async fn the_scheduler_enqueues_crl_responder_and_checkpoint_jobs() {
        let (env, _clock) = setup().await;
        let a = &env.authority;
        let mut marks = SchedulerMarks::default();
        let first = a.schedule_jobs(&mut marks).await.expect("schedule");
        assert!(
            first >= 3,
            "CRLs, responders and a checkpoint are due: {first}"
        );
        assert_eq!(
            a.schedule_jobs(&mut marks).await.expect("schedule"),
            0,
            "active jobs are not queued twice"
        );
        while a.run_due_jobs().await.expect("run") > 0 {}
        let jobs = a
            .list_jobs(
                &env.admin,
                &JobQuery {
                    limit: 100,
                    ..JobQuery::default()
                },
            )
            .await
            .expect("list");
        for kind in [CRL_PUBLISH, OCSP_RESPONDER, AUDIT_CHECKPOINT] {
            assert!(
                jobs.iter().any(|j| j.kind == kind),
                "{kind} was scheduled: {jobs:?}"
            );
        }
        assert!(
            jobs.iter().all(|j| j.state == JobState::Completed),
            "{jobs:?}"
        );
        assert_eq!(
            a.schedule_jobs(&mut marks).await.expect("schedule"),
            0,
            "nothing is due once they ran"
        );
    }

    /// Signs a checkpoint of its job's tenant through the services it is given.
    struct Checkpointer;

    #[async_trait]
    impl JobHandler for Checkpointer {
        async fn run(&self, services: &Services, job: &JobView) -> Result<(), AuthorityError> {
            services
                .administration
                .checkpoint_tenant(job.tenant)
                .await?
                .map(drop)
                .ok_or_else(|| AuthorityError::invalid("no-checkpoint", "nothing to checkpoint"))
        }
    }

    #[tokio::test]
    async fn a_handler_works_through_the_services_it_is_given() {
        let (env, _) = setup().await;
        let a = &env.authority;
        a.register_job_handler("test.checkpoint", Arc::new(Checkpointer));
        let t = env.admin.tenant;
        assert!(a
            .enqueue_job(t, "test.checkpoint", "k", serde_json::json!({}), 1)
            .await
            .expect("enqueue"));
        assert_eq!(a.run_due_jobs().await.expect("run"), 1);
        let j = only(&env, "test.checkpoint").await;
        assert_eq!(j.state, JobState::Completed, "{j:?}");
        assert!(
            a.checkpoint_tenant(t).await.expect("checkpoint").is_none(),
            "the handler's checkpoint covers the head"
        );
    }
}
