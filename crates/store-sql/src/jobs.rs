//! The SQL of the jobs repository ([`trustbox_store::JobStore`]), shared by both engines.
//!
//! Expanded by [`impl_sql_store!`](crate::impl_sql_store) inside its private scope, so it
//! uses the same transaction helpers (`scope`, `chain`) and error mapping as the other
//! repositories; it is a separate macro so that each aggregate keeps its SQL in its own file.

/// Implements [`trustbox_store::JobStore`] for `$store`. Not a public API: invoked by
/// `impl_sql_store!`, whose private helpers it uses.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sql_jobs {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        const JOB_COLS: &str = "tenant_id, id, kind, dedupe_key, payload, state, attempts, max_attempts, run_at, \
            lease_holder, lease_until, last_error, created_at, updated_at, finished_at";

        fn job_row(r: &Row) -> Result<$crate::__rt::store::JobRecord, StoreError> {
            let int = |c: &str| -> Result<u32, StoreError> {
                let v: i64 = r.try_get(c).map_err(be)?;
                u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("job {c} {v}")))
            };
            Ok($crate::__rt::store::JobRecord {
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                id: decode("job id", &r.try_get::<String, _>("id").map_err(be)?)?,
                kind: r.try_get("kind").map_err(be)?,
                key: r.try_get("dedupe_key").map_err(be)?,
                payload: r.try_get("payload").map_err(be)?,
                state: r.try_get::<String, _>("state").map_err(be)?.parse()?,
                attempts: int("attempts")?,
                max_attempts: int("max_attempts")?,
                run_at: r.try_get("run_at").map_err(be)?,
                lease_holder: r.try_get("lease_holder").map_err(be)?,
                lease_until: r.try_get("lease_until").map_err(be)?,
                last_error: r.try_get("last_error").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
                updated_at: r.try_get("updated_at").map_err(be)?,
                finished_at: r.try_get("finished_at").map_err(be)?,
            })
        }

        /// Appends an outbox row inside `tx`.
        async fn outbox(tx: &mut Conn, tenant: &str, topic: &str, payload: &$crate::__rt::serde_json::Value, at: i64) -> Result<(), StoreError> {
            $crate::__rt::sqlx::query($crate::__rt::store::job_rows::INSERT_OUTBOX)
                .bind(tenant)
                .bind(topic)
                .bind(payload.to_string())
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
            Ok(())
        }

        use $crate::__rt::store::job_rows::job_event;

        impl $store {
            /// Records a job attempt's outcome ([`trustbox_store::JobStore::finish_job`]) on
            /// the `sqlx` write pool: the `sqlx` way of the engine's `job_finish`.
            #[allow(dead_code)]
            async fn sqlx_finish_job(&self, tenant: TenantId, id: $crate::__rt::types::JobId, holder: &str, finish: &$crate::__rt::store::JobFinish, now: i64) -> Result<bool, StoreError> {
                use $crate::__rt::store::job_rows;
                let f = job_rows::Finish::new(finish, now);
                let (t, job) = (tenant.to_string(), id.to_string());
                let mut tx = self.write_tx(tenant).await?;
                let mut q = $crate::__rt::sqlx::query(job_rows::FINISH_JOB);
                for v in job_rows::finish_values(&f, &t, &job, holder, now) {
                    q = bind_param(q, v);
                }
                let Some(row) = q.fetch_optional(&mut *tx).await.map_err(be)? else {
                    tx.commit().await.map_err(be)?;
                    return Ok(false);
                };
                if let Some(topic) = f.topic() {
                    let payload = job_rows::job_event(
                        &job,
                        &row.try_get::<String, _>("kind").map_err(be)?,
                        &row.try_get::<String, _>("dedupe_key").map_err(be)?,
                        row.try_get("attempts").map_err(be)?,
                        f.error,
                    );
                    outbox(&mut *tx, &t, &topic, &payload, now).await?;
                }
                tx.commit().await.map_err(be)?;
                Ok(true)
            }
        }

        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::JobStore for $store {
            async fn enqueue_job(&self, job: &$crate::__rt::store::NewJob) -> Result<bool, StoreError> {
                let mut tx = self.write_tx(job.tenant).await?;
                let done = $crate::__rt::sqlx::query(
                    "INSERT INTO jobs (tenant_id, id, kind, dedupe_key, payload, state, attempts, max_attempts, run_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $8, $8) ON CONFLICT DO NOTHING",
                )
                .bind(job.tenant.to_string())
                .bind(job.id.to_string())
                .bind(&job.kind)
                .bind(&job.key)
                .bind(&job.payload)
                .bind(i64::from(job.max_attempts.max(1)))
                .bind(job.run_at)
                .bind(job.created_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                tx.commit().await.map_err(be)?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_jobs(&self, holder: &str, now: i64, lease_until: i64, limit: u32) -> Result<Vec<$crate::__rt::store::JobRecord>, StoreError> {
                let limit = i64::from(limit.max(1));
                if $rls {
                    // System path: claims cross tenants, behind a definer function that
                    // locks with SKIP LOCKED so replicas never claim the same job.
                    let rows = $crate::__rt::sqlx::query(&format!("SELECT {JOB_COLS} FROM tb_claim_jobs($1, $2, $3, $4)"))
                        .bind(holder)
                        .bind(now)
                        .bind(lease_until)
                        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                        .fetch_all(&self.write)
                        .await
                        .map_err(be)?;
                    return rows.iter().map(job_row).collect();
                }
                // The write transaction takes the database's write lock first: one claimer
                // at a time.
                let mut tx = self.write.begin_with($begin).await.map_err(be)?;
                let abandoned = $crate::__rt::sqlx::query(
                    "UPDATE jobs SET state = 'abandoned', lease_holder = NULL, lease_until = NULL, finished_at = $1, \
                     updated_at = $1, last_error = 'the worker holding it stopped after its last attempt' \
                     WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts \
                     RETURNING tenant_id, id, kind, dedupe_key, attempts",
                )
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(be)?;
                for r in &abandoned {
                    let tenant: String = r.try_get("tenant_id").map_err(be)?;
                    let payload = job_event(
                        &r.try_get::<String, _>("id").map_err(be)?,
                        &r.try_get::<String, _>("kind").map_err(be)?,
                        &r.try_get::<String, _>("dedupe_key").map_err(be)?,
                        r.try_get("attempts").map_err(be)?,
                        Some("the worker holding it stopped after its last attempt"),
                    );
                    outbox(&mut *tx, &tenant, "job.abandoned", &payload, now).await?;
                }
                let rows = $crate::__rt::sqlx::query(&format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_holder = $1, lease_until = $2, updated_at = $3 \
                     WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM jobs \
                       WHERE (state IN ('pending', 'retry_wait') AND run_at <= $3) \
                          OR (state = 'running' AND lease_until < $3 AND attempts < max_attempts) \
                       ORDER BY run_at LIMIT $4) \
                     RETURNING {JOB_COLS}"
                ))
                .bind(holder)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await
                .map_err(be)?;
                tx.commit().await.map_err(be)?;
                rows.iter().map(job_row).collect()
            }

            async fn finish_job(&self, tenant: TenantId, id: $crate::__rt::types::JobId, holder: &str, finish: &$crate::__rt::store::JobFinish, now: i64) -> Result<bool, StoreError> {
                self.job_finish(tenant, id, holder, finish, now).await
            }

            async fn cancel_job(&self, tenant: TenantId, id: $crate::__rt::types::JobId, now: i64, event: &NewAuditEvent) -> Result<$crate::__rt::store::JobRecord, StoreError> {
                let t = tenant.to_string();
                let mut tx = self.write_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "UPDATE jobs SET state = 'cancelled', updated_at = $1, finished_at = $1 \
                     WHERE tenant_id = $2 AND id = $3 AND state IN ('pending', 'retry_wait') RETURNING {JOB_COLS}"
                ))
                .bind(now)
                .bind(&t)
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(be)?;
                let Some(row) = row else {
                    let state: Option<String> = $crate::__rt::sqlx::query_scalar("SELECT state FROM jobs WHERE tenant_id = $1 AND id = $2")
                        .bind(&t)
                        .bind(id.to_string())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(be)?;
                    return Err(match state {
                        None => StoreError::NotFound,
                        Some(s) => StoreError::Conflict(format!("the job is {s}")),
                    });
                };
                let job = job_row(&row)?;
                let payload = job_event(&job.id.to_string(), &job.kind, &job.key, i64::from(job.attempts), None);
                outbox(&mut *tx, &t, "job.cancelled", &payload, now).await?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)?;
                Ok(job)
            }

            async fn job(&self, tenant: TenantId, id: $crate::__rt::types::JobId) -> Result<Option<$crate::__rt::store::JobRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!("SELECT {JOB_COLS} FROM jobs WHERE tenant_id = $1 AND id = $2"))
                    .bind(tenant.to_string())
                    .bind(id.to_string())
                    .fetch_optional(&mut *rtx)
                    .await
                    .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                row.as_ref().map(job_row).transpose()
            }

            async fn list_jobs(&self, tenant: TenantId, f: &$crate::__rt::store::JobFilter) -> Result<Vec<$crate::__rt::store::JobRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let rows = $crate::__rt::sqlx::query(&format!(
                    "SELECT {JOB_COLS} FROM jobs WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) \
                     AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
                ))
                .bind(tenant.to_string())
                .bind(f.state.map(|s| s.as_str()))
                .bind(f.kind.as_deref())
                .bind(f.before.map(|b| b.to_string()))
                .bind(i64::from(f.limit.clamp(1, 1000)))
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                rows.iter().map(job_row).collect()
            }

            async fn prune_jobs(&self, tenant: TenantId, before: i64, limit: u32) -> Result<u64, StoreError> {
                let t = tenant.to_string();
                let mut tx = self.write_tx(tenant).await?;
                let gone = $crate::__rt::sqlx::query(
                    "DELETE FROM jobs WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM jobs \
                     WHERE tenant_id = $1 AND finished_at < $2 LIMIT $3)",
                )
                .bind(&t)
                .bind(before)
                .bind(i64::from(limit.max(1)))
                .execute(&mut *tx)
                .await
                .map_err(be)?
                .rows_affected();
                $crate::__rt::sqlx::query(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE tenant_id = $1 AND at < $2 ORDER BY seq LIMIT $3)",
                )
                .bind(&t)
                .bind(before)
                .bind(i64::from(limit.max(1)))
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                tx.commit().await.map_err(be)?;
                Ok(gone)
            }

            async fn list_outbox(&self, tenant: TenantId, after: i64, limit: u32) -> Result<Vec<$crate::__rt::store::OutboxRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let rows = $crate::__rt::sqlx::query(
                    "SELECT seq, tenant_id, topic, payload, at FROM outbox WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(tenant.to_string())
                .bind(after)
                .bind(i64::from(limit.clamp(1, 1000)))
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::__rt::store::OutboxRecord {
                            seq: r.try_get("seq").map_err(be)?,
                            tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                            topic: r.try_get("topic").map_err(be)?,
                            payload: r.try_get("payload").map_err(be)?,
                            at: r.try_get("at").map_err(be)?,
                        })
                    })
                    .collect()
            }
        }
    };
}
