//! The SQL of the tenants repository ([`trustbox_store::TenantRepo`]), shared by both engines.
//!
//! Expanded by [`impl_sql_store!`](crate::impl_sql_store) inside its private scope, whose
//! helpers (`scope`, `chain`, the row decoders) it uses.

/// Implements [`trustbox_store::TenantRepo`] for `$store`. Not a public API: invoked by
/// `impl_sql_store!`, whose private helpers it uses.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sql_tenants {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        fn tenant_row(r: &Row) -> Result<TenantRecord, StoreError> {
            Ok(TenantRecord {
                id: decode("tenant id", &r.try_get::<String, _>("id").map_err(be)?)?,
                name: r.try_get("name").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
            })
        }

        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::TenantRepo for $store {
            async fn create_tenant(
                &self,
                tenant: &TenantRecord,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx(tenant.id).await?;
                let id = tenant.id.to_string();
                $crate::__rt::sqlx::query(
                    "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)",
                )
                .bind(&id)
                .bind(&tenant.name)
                .bind(tenant.created_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                $crate::__rt::sqlx::query(
                    "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2)",
                )
                .bind(&id)
                .bind($crate::__rt::store::GENESIS_HASH)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }

            async fn tenant_by_name(&self, name: &str) -> Result<Option<TenantRecord>, StoreError> {
                // System path: a name is unique across tenants, and names are checked before
                // a tenant exists (so there is no tenant to scope by).
                let sql = if $rls {
                    "SELECT id, name, created_at FROM tb_tenant_by_name($1)"
                } else {
                    "SELECT id, name, created_at FROM tenants WHERE name = $1"
                };
                $crate::__rt::sqlx::query(sql)
                    .bind(name)
                    .fetch_optional(&self.read)
                    .await
                    .map_err(be)?
                    .map(|r| tenant_row(&r))
                    .transpose()
            }

            async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, StoreError> {
                let mut rtx = self.read_tx(id).await?;
                let out = {
                    $crate::__rt::sqlx::query(
                        "SELECT id, name, created_at FROM tenants WHERE id = $1",
                    )
                    .bind(id.to_string())
                    .fetch_optional(&mut *rtx)
                    .await
                    .map_err(be)?
                    .map(|r| tenant_row(&r))
                    .transpose()
                };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
                // System path: background workers walk tenants, then query each one scoped.
                let sql = if $rls {
                    "SELECT id, name, created_at FROM tb_tenants() ORDER BY id"
                } else {
                    "SELECT id, name, created_at FROM tenants ORDER BY id"
                };
                $crate::__rt::sqlx::query(sql)
                    .fetch_all(&self.read)
                    .await
                    .map_err(be)?
                    .iter()
                    .map(tenant_row)
                    .collect()
            }
        }
    };
}
