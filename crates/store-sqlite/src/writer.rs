//! The group-commit writer: one OS thread owning one SQLite connection, committing a whole
//! batch (certificates, SAN index rows, audit events, chain head) synchronously in a single
//! `BEGIN IMMEDIATE` transaction. No async hop per statement, so a commit costs its SQL and
//! one WAL fsync (`synchronous=FULL`), nothing else.
//!
//! It binds the same rows, to the same statement texts, as the `sqlx` path: the certificate
//! encoding, SAN normalisation and audit-chain links come from `trustbox_store::rows`, so
//! this file holds no rule of its own, only `rusqlite` binding and cached statements.

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, params_from_iter, Connection, TransactionBehavior};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use trustbox_store::acme_rows::{self as acme, OpPlan, Tally};
use trustbox_store::job_rows;
use trustbox_store::rows::{self, CertificateRow, ChainLinks, SqlValue};
use trustbox_store::{AcmeOp, AcmeOpOutcome, IssuanceRecord, JobFinish, NewAuditEvent, StoreError};
use trustbox_types::TenantId;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the writer thread; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// Maps a `rusqlite` error to a [`StoreError`]: constraint violations become `Conflict`.
pub(crate) fn sql_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(msg.clone().unwrap_or_else(|| "constraint violation".into()))
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

impl Writer {
    /// Opens the connection on a new thread.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(sql_err)?;
        conn.busy_handler(Some(busy)).map_err(sql_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql_err)?;
        // Checkpoints run in the writer at SQLite's default 1000 pages, which restarts the
        // WAL from its beginning (a separate PASSIVE checkpointer never caught up under load
        // and let the WAL grow without bound); the file is truncated back to 64 MiB after each.
        conn.pragma_update(None, "journal_size_limit", "67108864")
            .map_err(sql_err)?;
        conn.pragma_update(None, "mmap_size", crate::MMAP_SIZE)
            .map_err(sql_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("trustbox-sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Commits `batch` in one transaction on the writer thread.
    pub(crate) async fn commit(&self, batch: Vec<IssuanceRecord>) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |conn: &mut Connection| {
                let _ = tx.send(commit(conn, &batch));
            }))
            .map_err(|_| StoreError::Backend("the writer thread has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the writer thread dropped a batch".into()))?
    }

    /// Applies an ACME write batch ([`trustbox_store::AcmeRepo::apply_acme_batch`]) in one
    /// transaction on the writer thread, each op as `trustbox_store::acme_rows` plans it.
    pub(crate) async fn acme_batch(
        &self,
        tenant: TenantId,
        ops: Vec<AcmeOp>,
        now: i64,
    ) -> Result<Vec<AcmeOpOutcome>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |conn: &mut Connection| {
                let _ = tx.send(acme_batch(conn, tenant, &ops, now));
            }))
            .map_err(|_| StoreError::Backend("the writer thread has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the writer thread dropped a batch".into()))?
    }
}

impl Writer {
    /// Records a job attempt's outcome (and, if the job ended, its outbox event) in one
    /// transaction on the writer thread; `false` if the lease was lost.
    pub(crate) async fn finish_job(
        &self,
        tenant: TenantId,
        id: trustbox_types::JobId,
        holder: String,
        finish: JobFinish,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |conn: &mut Connection| {
                let _ = tx.send(finish_job(conn, tenant, id, &holder, &finish, now));
            }))
            .map_err(|_| StoreError::Backend("the writer thread has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the writer thread dropped a job".into()))?
    }
}

fn finish_job(
    conn: &mut Connection,
    tenant: TenantId,
    id: trustbox_types::JobId,
    holder: &str,
    finish: &JobFinish,
    now: i64,
) -> Result<bool, StoreError> {
    let f = job_rows::Finish::new(finish, now);
    let (t, job) = (tenant.to_string(), id.to_string());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let found = {
        let mut stmt = tx.prepare_cached(job_rows::FINISH_JOB).map_err(sql_err)?;
        let values = job_rows::finish_values(&f, &t, &job, holder, now);
        let mut rows = stmt
            .query(params_from_iter(values.map(Bind)))
            .map_err(sql_err)?;
        match rows.next().map_err(sql_err)? {
            Some(r) => Some((
                r.get::<_, String>(0).map_err(sql_err)?,
                r.get::<_, String>(1).map_err(sql_err)?,
                r.get::<_, i64>(2).map_err(sql_err)?,
            )),
            None => None,
        }
    };
    let Some((kind, key, attempts)) = found else {
        tx.commit().map_err(sql_err)?;
        return Ok(false);
    };
    if let Some(topic) = f.topic() {
        let payload = job_rows::job_event(&job, &kind, &key, attempts, f.error).to_string();
        exec(
            &tx,
            job_rows::INSERT_OUTBOX,
            &[
                SqlValue::Text(&t),
                SqlValue::Text(&topic),
                SqlValue::Text(&payload),
                SqlValue::Int(now),
            ],
        )?;
    }
    tx.commit().map_err(sql_err)?;
    Ok(true)
}

/// Runs `sql` with `params` on `conn`; the rows it changed.
fn exec(conn: &Connection, sql: &str, params: &[SqlValue<'_>]) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err)?;
    let n = stmt
        .execute(params_from_iter(params.iter().map(|v| Bind(*v))))
        .map_err(sql_err)?;
    Ok(n as u64)
}

/// The ACME write batch: each op's plan in a savepoint where it can fail halfway, expired
/// nonces pruned, one commit.
fn acme_batch(
    conn: &mut Connection,
    tenant: TenantId,
    ops: &[AcmeOp],
    now: i64,
) -> Result<Vec<AcmeOpOutcome>, StoreError> {
    let t = tenant.to_string();
    let job_ids: Vec<String> = ops.iter().map(acme::job_id).collect();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let mut out = Vec::with_capacity(ops.len());
    for (op, job_id) in ops.iter().zip(&job_ids) {
        let plan = match acme::plan(&t, op, job_id, now) {
            Ok(plan) => plan,
            Err(e) => {
                out.push(AcmeOpOutcome::Failed(e));
                continue;
            }
        };
        if plan.guarded {
            exec(&tx, "SAVEPOINT acme_op", &[])?;
        }
        let result = acme_op(&tx, &plan);
        if !plan.guarded {
            // an error here may leave the transaction unusable: fail it all
            if let Err(e) = result {
                return Err(e);
            }
        } else if matches!(&result, Ok(o) if OpPlan::keeps(o)) {
            exec(&tx, "RELEASE SAVEPOINT acme_op", &[])?;
        } else {
            exec(&tx, "ROLLBACK TO SAVEPOINT acme_op", &[])?;
            exec(&tx, "RELEASE SAVEPOINT acme_op", &[])?;
        }
        out.push(result.unwrap_or_else(AcmeOpOutcome::Failed));
    }
    if ops.iter().any(|o| matches!(o, AcmeOp::Nonce { .. })) {
        exec(
            &tx,
            acme::PRUNE_NONCES,
            &[SqlValue::Text(&t), SqlValue::Int(now)],
        )?;
    }
    tx.commit().map_err(sql_err)?;
    Ok(out)
}

/// Runs one op's steps and, if they applied, appends its audit event.
fn acme_op(conn: &Connection, plan: &OpPlan<'_>) -> Result<AcmeOpOutcome, StoreError> {
    let mut tally = Tally::default();
    for step in &plan.steps {
        let n = exec(conn, &step.sql, &step.values)?;
        if !tally.record(step.expect, n)? {
            break;
        }
    }
    if let (true, Some(event)) = (tally.applied(), plan.event) {
        chain(conn, &[event])?;
    }
    Ok(plan.outcome(tally))
}

/// Waits for the write lock that the `sqlx` write connection holds (jobs, admin writes) in
/// 100 µs steps, up to 10 s: SQLite's own busy timeout sleeps 1, 2, 5, 10 ... ms, and each
/// such sleep stalls every group commit queued behind it.
fn busy(attempts: i32) -> bool {
    if attempts >= 100_000 {
        return false;
    }
    std::thread::sleep(Duration::from_micros(100));
    true
}

/// Binds a [`SqlValue`] as a `rusqlite` parameter without copying it.
pub(crate) struct Bind<'a>(pub(crate) SqlValue<'a>);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            SqlValue::Int(x) => ValueRef::Integer(x),
            SqlValue::OptInt(x) => x.map_or(ValueRef::Null, ValueRef::Integer),
            SqlValue::Text(x) => ValueRef::Text(x.as_bytes()),
            SqlValue::OptText(x) => x.map_or(ValueRef::Null, |x| ValueRef::Text(x.as_bytes())),
            SqlValue::Blob(x) => ValueRef::Blob(x),
            SqlValue::Bool(x) => ValueRef::Integer(i64::from(x)),
        }))
    }
}

/// Executes a prepared statement with `values` as its parameters, in order.
fn run<const N: usize>(
    stmt: &mut rusqlite::CachedStatement<'_>,
    values: [SqlValue<'_>; N],
) -> Result<usize, StoreError> {
    stmt.execute(params_from_iter(values.map(Bind)))
        .map_err(sql_err)
}

/// Writes the batch's certificates, SAN index rows and audit events as the `sqlx` path
/// does: the rows are encoded and chained by [`rows`], only the binding is this engine's.
fn commit(conn: &mut Connection, batch: &[IssuanceRecord]) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    {
        let mut cert = tx
            .prepare_cached(rows::INSERT_CERTIFICATE)
            .map_err(sql_err)?;
        let mut san = tx
            .prepare_cached(rows::INSERT_CERTIFICATE_SAN)
            .map_err(sql_err)?;
        for rec in batch {
            let row = CertificateRow::new(&rec.certificate)?;
            run(&mut cert, row.values())?;
            for values in row.san_rows() {
                run(&mut san, values)?;
            }
        }
    }
    let events: Vec<&NewAuditEvent> = batch.iter().map(|r| &r.event).collect();
    chain(&tx, &events)?;
    tx.commit().map_err(sql_err)
}

/// Reads a CRL shard's live revoked entries on the calling (blocking) thread through a new
/// read-only connection.
pub(crate) fn revoked_for_crl(
    path: &Path,
    tenant: TenantId,
    issuer: trustbox_types::IssuerId,
    shard: u32,
    now: i64,
) -> Result<Vec<trustbox_store::RevokedEntry>, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(sql_err)?;
    let mut stmt = conn.prepare(rows::REVOKED_FOR_CRL).map_err(sql_err)?;
    let mut found = stmt
        .query(params![
            tenant.to_string(),
            issuer.to_string(),
            i64::from(shard),
            now
        ])
        .map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(r) = found.next().map_err(sql_err)? {
        let reason = r
            .get_ref(2)
            .map_err(sql_err)?
            .as_str_or_null()
            .map_err(|e| StoreError::Corrupt(format!("revocation reason: {e}")))?;
        out.push(rows::revoked_entry(
            r.get(0).map_err(sql_err)?,
            r.get(1).map_err(sql_err)?,
            reason,
            r.get(3).map_err(sql_err)?,
        )?);
    }
    Ok(out)
}

/// Appends `events` to their tenants' chains ([`ChainLinks`] computes the links); the
/// IMMEDIATE transaction holds the write lock.
fn chain(tx: &Connection, events: &[&NewAuditEvent]) -> Result<(), StoreError> {
    let mut head = tx
        .prepare_cached(rows::SELECT_AUDIT_HEAD)
        .map_err(sql_err)?;
    let mut insert = tx
        .prepare_cached(rows::INSERT_AUDIT_EVENT)
        .map_err(sql_err)?;
    let mut update = tx
        .prepare_cached(rows::UPDATE_AUDIT_HEAD)
        .map_err(sql_err)?;
    for tenant in rows::chain_order(events) {
        let (seq, hash): (i64, String) = head
            .query_row(params![tenant.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
                other => sql_err(other),
            })?;
        let links = ChainLinks::new(tenant, seq, hash, events);
        for values in links.rows() {
            run(&mut insert, values)?;
        }
        run(&mut update, links.head_values())?;
    }
    Ok(())
}
