//! The group-commit writer: one OS thread owning one SQLite connection, committing a whole
//! batch (certificates, SAN index rows, audit events, chain head) synchronously in a single
//! `BEGIN IMMEDIATE` transaction. No async hop per statement, so a commit costs its SQL and
//! one WAL fsync (`synchronous=FULL`), nothing else.

use rusqlite::{params, Connection, TransactionBehavior};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use trustbox_store::{event_hash, IssuanceRecord, NewAuditEvent, StoreError};
use trustbox_types::TenantId;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the writer thread; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

fn sql_err(e: rusqlite::Error) -> StoreError {
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
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sql_err)?;
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
        conn.set_prepared_statement_cache_capacity(32);
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
}

fn commit(conn: &mut Connection, batch: &[IssuanceRecord]) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    {
        let mut cert = tx
            .prepare_cached(
                "INSERT INTO certificates (id, tenant_id, issuer_id, serial, fingerprint, common_name, sans, key_algorithm, \
                 not_before, not_after, status, revoked_at, revocation_reason, profile, source, der, created_at, \
                 invalidity_date, crl_shard) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            )
            .map_err(sql_err)?;
        let mut san = tx
            .prepare_cached("INSERT INTO certificate_sans (tenant_id, certificate_id, value) VALUES (?1, ?2, ?3)")
            .map_err(sql_err)?;
        for rec in batch {
            let c = &rec.certificate;
            let id = c.id.to_string();
            let tenant = c.tenant.to_string();
            let sans =
                serde_json::to_string(&c.sans).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            cert.execute(params![
                id,
                tenant,
                c.issuer.to_string(),
                c.serial,
                c.fingerprint,
                c.common_name,
                sans,
                c.key_algorithm.as_str(),
                c.not_before,
                c.not_after,
                c.status.as_str(),
                c.revoked_at,
                c.revocation_reason.map(|r| r.as_str()),
                c.profile,
                c.source,
                c.der,
                c.created_at,
                c.invalidity_date,
                i64::from(c.crl_shard),
            ])
            .map_err(sql_err)?;
            let mut values: Vec<String> = c
                .sans
                .iter()
                .map(|s| {
                    s.split_once(':')
                        .map(|(_, v)| v)
                        .unwrap_or(s)
                        .to_ascii_lowercase()
                })
                .collect();
            values.sort();
            values.dedup();
            for v in values {
                san.execute(params![tenant, id, v]).map_err(sql_err)?;
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
    let mut stmt = conn
        .prepare(trustbox_store::__sql::REVOKED_FOR_CRL)
        .map_err(sql_err)?;
    let mut rows = stmt
        .query(params![
            tenant.to_string(),
            issuer.to_string(),
            i64::from(shard),
            now
        ])
        .map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sql_err)? {
        let reason: Option<String> = r.get(2).map_err(sql_err)?;
        out.push(trustbox_store::RevokedEntry {
            serial: r.get(0).map_err(sql_err)?,
            revoked_at: r.get::<_, Option<i64>>(1).map_err(sql_err)?.unwrap_or(0),
            reason: reason
                .map(|s| {
                    trustbox_store::__sql::decode::<trustbox_types::RevocationReason>("reason", &s)
                })
                .transpose()?,
            invalidity_date: r.get(3).map_err(sql_err)?,
        });
    }
    Ok(out)
}

/// Appends `events` to their tenants' chains; the IMMEDIATE transaction holds the write lock.
fn chain(tx: &rusqlite::Transaction<'_>, events: &[&NewAuditEvent]) -> Result<(), StoreError> {
    let mut tenants: Vec<TenantId> = events.iter().map(|e| e.tenant).collect();
    tenants.sort();
    tenants.dedup();
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO audit_events (tenant_id, seq, at_us, actor, action, resource, outcome, details, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(sql_err)?;
    for tenant in tenants {
        let t = tenant.to_string();
        let (mut seq, mut prev): (i64, String) = tx
            .query_row(
                "SELECT seq, hash FROM audit_heads WHERE tenant_id = ?1",
                params![t],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
                other => sql_err(other),
            })?;
        for e in events.iter().filter(|e| e.tenant == tenant) {
            seq += 1;
            let hash = event_hash(
                &prev,
                seq,
                tenant,
                e.at_us,
                &e.actor,
                &e.action,
                &e.resource,
                &e.outcome,
                &e.details,
            );
            insert
                .execute(params![
                    t, seq, e.at_us, e.actor, e.action, e.resource, e.outcome, e.details, prev,
                    hash
                ])
                .map_err(sql_err)?;
            prev = hash;
        }
        tx.execute(
            "UPDATE audit_heads SET seq = ?1, hash = ?2 WHERE tenant_id = ?3",
            params![seq, prev, t],
        )
        .map_err(sql_err)?;
    }
    Ok(())
}
