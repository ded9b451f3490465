//! The SQL of the audit chain, audit keys, checkpoints and re-sealing repository ([`trustbox_store::AuditRepo`]), shared by both engines.
//!
//! Expanded by [`impl_sql_store!`](crate::impl_sql_store) inside its private scope, whose
//! helpers (`scope`, `chain`, the row decoders) it uses.

/// Implements [`trustbox_store::AuditRepo`] for `$store`. Not a public API: invoked by
/// `impl_sql_store!`, whose private helpers it uses.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sql_audit {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        const AUDIT_KEY_COLS: &str = "id, tenant_id, public_key_der, key_backend, key_algorithm, key_wrapped, created_at";
        const CHECKPOINT_COLS: &str = "tenant_id, seq, hash, at_us, key_id, signature";

        const AUDIT_COLS: &str = "seq, tenant_id, at_us, actor, action, resource, outcome, details, prev_hash, hash";

        fn audit_key_row(r: &Row) -> Result<AuditKeyRecord, StoreError> {
            Ok(AuditKeyRecord {
                id: decode("audit key id", &r.try_get::<String, _>("id").map_err(be)?)?,
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                public_key_der: r.try_get("public_key_der").map_err(be)?,
                key_backend: r.try_get("key_backend").map_err(be)?,
                key_algorithm: decode("key algorithm", &r.try_get::<String, _>("key_algorithm").map_err(be)?)?,
                key_wrapped: r.try_get("key_wrapped").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
            })
        }

        fn checkpoint_row(r: &Row) -> Result<AuditCheckpoint, StoreError> {
            Ok(AuditCheckpoint {
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                seq: r.try_get("seq").map_err(be)?,
                hash: r.try_get("hash").map_err(be)?,
                at_us: r.try_get("at_us").map_err(be)?,
                key_id: decode("audit key id", &r.try_get::<String, _>("key_id").map_err(be)?)?,
                signature: r.try_get("signature").map_err(be)?,
            })
        }

        fn audit_row(r: &Row) -> Result<AuditEvent, StoreError> {
            Ok(AuditEvent {
                seq: r.try_get("seq").map_err(be)?,
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                at_us: r.try_get("at_us").map_err(be)?,
                actor: r.try_get("actor").map_err(be)?,
                action: r.try_get("action").map_err(be)?,
                resource: r.try_get("resource").map_err(be)?,
                outcome: r.try_get("outcome").map_err(be)?,
                details: r.try_get("details").map_err(be)?,
                prev_hash: r.try_get("prev_hash").map_err(be)?,
                hash: r.try_get("hash").map_err(be)?,
            })
        }

        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::AuditRepo for $store {
            async fn audit_head(&self, tenant: TenantId) -> Result<Option<(i64, String)>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
                    .bind(tenant.to_string())
                    .fetch_optional(&mut *rtx)
                    .await
                    .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                row.map(|r| Ok((r.try_get("seq").map_err(be)?, r.try_get("hash").map_err(be)?)))
                    .transpose()
            }

            async fn append_audit(&self, events: &[NewAuditEvent]) -> Result<(), StoreError> {
                if events.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write.begin_with($begin).await.map_err(be)?;
                let refs: Vec<&NewAuditEvent> = events.iter().collect();
                chain(&mut *tx, &refs).await?;
                tx.commit().await.map_err(be)
            }

            async fn list_audit(&self, tenant: TenantId, after: i64, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!(
                    "SELECT {AUDIT_COLS} FROM audit_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                ))
                .bind(tenant.to_string())
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?
                .iter()
                .map(audit_row)
                .collect()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn insert_audit_key(&self, k: &AuditKeyRecord, event: &NewAuditEvent) -> Result<(), StoreError> {
                let mut tx = self.write_tx(k.tenant).await?;
                $crate::__rt::sqlx::query(
                    "INSERT INTO audit_keys (id, tenant_id, public_key_der, key_backend, key_algorithm, key_wrapped, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(k.id.to_string())
                .bind(k.tenant.to_string())
                .bind(&k.public_key_der)
                .bind(&k.key_backend)
                .bind(k.key_algorithm.as_str())
                .bind(&k.key_wrapped)
                .bind(k.created_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }

            async fn list_audit_keys(&self, tenant: TenantId) -> Result<Vec<AuditKeyRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let rows = $crate::__rt::sqlx::query(&format!(
                    "SELECT {AUDIT_KEY_COLS} FROM audit_keys WHERE tenant_id = $1 ORDER BY created_at, id"
                ))
                .bind(tenant.to_string())
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                rows.iter().map(audit_key_row).collect()
            }

            async fn insert_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<(), StoreError> {
                let mut tx = self.write_tx(c.tenant).await?;
                $crate::__rt::sqlx::query(
                    "INSERT INTO audit_checkpoints (tenant_id, seq, hash, at_us, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(c.tenant.to_string())
                .bind(c.seq)
                .bind(&c.hash)
                .bind(c.at_us)
                .bind(c.key_id.to_string())
                .bind(&c.signature)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                tx.commit().await.map_err(be)
            }

            async fn list_audit_checkpoints(&self, tenant: TenantId, after: i64, limit: u32) -> Result<Vec<AuditCheckpoint>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let rows = $crate::__rt::sqlx::query(&format!(
                    "SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                ))
                .bind(tenant.to_string())
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                rows.iter().map(checkpoint_row).collect()
            }

            async fn reseal_key(
                &self,
                tenant: TenantId,
                table: SealedKeyTable,
                id: &str,
                backend: &str,
                wrapped: &[u8],
            ) -> Result<(), StoreError> {
                let table = match table {
                    SealedKeyTable::Issuers => "issuers",
                    SealedKeyTable::OcspResponders => "ocsp_responders",
                    SealedKeyTable::AuditKeys => "audit_keys",
                };
                let mut tx = self.write_tx(tenant).await?;
                let done = $crate::__rt::sqlx::query(&format!(
                    "UPDATE {table} SET key_backend = $1, key_wrapped = $2 WHERE tenant_id = $3 AND id = $4"
                ))
                .bind(backend)
                .bind(wrapped)
                .bind(tenant.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound);
                }
                tx.commit().await.map_err(be)
            }
        }
    };
}
