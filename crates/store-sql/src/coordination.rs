//! The SQL of the leader leases and change feed repository ([`trustbox_store::CoordinationRepo`]), shared by both engines.
//!
//! Expanded by [`impl_sql_store!`](crate::impl_sql_store) inside its private scope, whose
//! helpers (`scope`, `chain`, the row decoders) it uses.

/// Implements [`trustbox_store::CoordinationRepo`] for `$store`. Not a public API: invoked by
/// `impl_sql_store!`, whose private helpers it uses.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sql_coordination {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::CoordinationRepo for $store {
            async fn try_lease(&self, name: &str, holder: &str, now: i64, ttl: i64) -> Result<bool, StoreError> {
                if $rls {
                    // System path: leases are system rows behind a definer function.
                    let won: bool = $crate::__rt::sqlx::query_scalar("SELECT tb_try_lease($1, $2, $3, $4)")
                        .bind(name)
                        .bind(holder)
                        .bind(now + ttl)
                        .bind(now)
                        .fetch_one(&self.write)
                        .await
                        .map_err(be)?;
                    return Ok(won);
                }
                let done = $crate::__rt::sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                     WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
                )
                .bind(name)
                .bind(holder)
                .bind(now + ttl)
                .bind(now)
                .execute(&self.write)
                .await
                .map_err(be)?;
                Ok(done.rows_affected() == 1)
            }

            async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<ChangeRecord>, StoreError> {
                // System path: every replica reads every tenant's changes (ids only).
                let sql = if $rls {
                    "SELECT seq, tenant_id, kind, ref, at FROM tb_changes_since($1, $2)"
                } else {
                    "SELECT seq, tenant_id, kind, ref, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2"
                };
                $crate::__rt::sqlx::query(sql)
                    .bind(after)
                    .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                    .fetch_all(&self.read)
                    .await
                    .map_err(be)?
                    .iter()
                    .map(|r| {
                        Ok(ChangeRecord {
                            seq: r.try_get("seq").map_err(be)?,
                            tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                            kind: r.try_get("kind").map_err(be)?,
                            reference: r.try_get("ref").map_err(be)?,
                            at: r.try_get("at").map_err(be)?,
                        })
                    })
                    .collect()
            }

            async fn latest_change(&self) -> Result<i64, StoreError> {
                let sql = if $rls {
                    "SELECT tb_latest_change() AS seq"
                } else {
                    "SELECT COALESCE(MAX(seq), 0) AS seq FROM changes"
                };
                let seq: Option<i64> = $crate::__rt::sqlx::query_scalar(sql).fetch_one(&self.read).await.map_err(be)?;
                Ok(seq.unwrap_or(0))
            }
        }
    };
}
