//! The SQL of the ACME repository ([`trustbox_store::AcmeRepo`]), shared by both engines.
//!
//! Expanded by [`impl_sql_store!`](crate::impl_sql_store) inside its private scope, whose
//! helpers (`scope`, `chain`) it uses.

/// Implements [`trustbox_store::AcmeRepo`] for `$store`. Not a public API: invoked by
/// `impl_sql_store!`, whose private helpers it uses.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sql_acme {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        const ACME_ACCOUNT_COLS: &str = "tenant_id, id, provisioner, thumbprint, jwk, status, contact, created_at";

        fn acme_account_row(r: &Row) -> Result<$crate::__rt::store::AcmeAccountRecord, StoreError> {
            Ok($crate::__rt::store::AcmeAccountRecord {
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                id: r.try_get("id").map_err(be)?,
                provisioner: r.try_get("provisioner").map_err(be)?,
                thumbprint: r.try_get("thumbprint").map_err(be)?,
                jwk: r.try_get("jwk").map_err(be)?,
                status: r.try_get("status").map_err(be)?,
                contact: r.try_get("contact").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
            })
        }

        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::AcmeRepo for $store {
            async fn insert_acme_account(
                &self,
                a: &$crate::__rt::store::AcmeAccountRecord,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx(a.tenant).await?;
                $crate::__rt::sqlx::query(&format!(
                    "INSERT INTO acme_accounts ({ACME_ACCOUNT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(a.tenant.to_string())
                .bind(&a.id)
                .bind(&a.provisioner)
                .bind(&a.thumbprint)
                .bind(&a.jwk)
                .bind(&a.status)
                .bind(&a.contact)
                .bind(a.created_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }

            async fn acme_account_by_thumbprint(
                &self,
                tenant: TenantId,
                provisioner: &str,
                thumbprint: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeAccountRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "SELECT {ACME_ACCOUNT_COLS} FROM acme_accounts WHERE tenant_id = $1 AND provisioner = $2 AND thumbprint = $3"
                ))
                .bind(tenant.to_string())
                .bind(provisioner)
                .bind(thumbprint)
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                row.as_ref().map(acme_account_row).transpose()
            }

            async fn acme_account(
                &self,
                tenant: TenantId,
                id: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeAccountRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "SELECT {ACME_ACCOUNT_COLS} FROM acme_accounts WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant.to_string())
                .bind(id)
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                row.as_ref().map(acme_account_row).transpose()
            }

            async fn update_acme_account(
                &self,
                tenant: TenantId,
                id: &str,
                status: &str,
                contact: &str,
                event: &NewAuditEvent,
            ) -> Result<$crate::__rt::store::AcmeAccountRecord, StoreError> {
                let mut tx = self.write_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "UPDATE acme_accounts SET status = $1, contact = $2 WHERE tenant_id = $3 AND id = $4 \
                     RETURNING {ACME_ACCOUNT_COLS}"
                ))
                .bind(status)
                .bind(contact)
                .bind(tenant.to_string())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(be)?
                .ok_or(StoreError::NotFound)?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)?;
                acme_account_row(&row)
            }

            async fn consume_acme_nonce(
                &self,
                tenant: TenantId,
                id: &str,
                expires_at: i64,
                now: i64,
            ) -> Result<bool, StoreError> {
                let t = tenant.to_string();
                let mut tx = self.write_tx(tenant).await?;
                let fresh = $crate::__rt::sqlx::query(
                    "INSERT INTO acme_nonces (tenant_id, id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(&t)
                .bind(id)
                .bind(expires_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?
                .rows_affected()
                    == 1;
                $crate::__rt::sqlx::query(
                    "DELETE FROM acme_nonces WHERE (tenant_id, id) IN \
                     (SELECT tenant_id, id FROM acme_nonces WHERE tenant_id = $1 AND expires_at < $2 LIMIT 100)",
                )
                .bind(&t)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                tx.commit().await.map_err(be)?;
                Ok(fresh)
            }
        }
    };
}
