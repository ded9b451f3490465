//! The SQL of the API tokens repository ([`trustbox_store::TokenRepo`]), shared by both engines.
//!
//! Expanded by [`impl_sql_store!`](crate::impl_sql_store) inside its private scope, whose
//! helpers (`scope`, `chain`, the row decoders) it uses.

/// Implements [`trustbox_store::TokenRepo`] for `$store`. Not a public API: invoked by
/// `impl_sql_store!`, whose private helpers it uses.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sql_tokens {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        const TOKEN_COLS: &str = "id, tenant_id, name, scopes, hash, created_at, revoked_at, expires_at";

        fn token_row(r: &Row) -> Result<TokenRecord, StoreError> {
            let scopes: String = r.try_get("scopes").map_err(be)?;
            Ok(TokenRecord {
                id: decode("token id", &r.try_get::<String, _>("id").map_err(be)?)?,
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                name: r.try_get("name").map_err(be)?,
                scopes: ScopeSet::parse_list(&scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                hash: r.try_get("hash").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
                revoked_at: r.try_get("revoked_at").map_err(be)?,
                expires_at: r.try_get("expires_at").map_err(be)?,
            })
        }

        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::TokenRepo for $store {
            async fn insert_token(&self, token: &TokenRecord, event: &NewAuditEvent) -> Result<(), StoreError> {
                let mut tx = self.write_tx(token.tenant).await?;
                $crate::__rt::sqlx::query(
                    "INSERT INTO tokens (id, tenant_id, name, scopes, hash, created_at, revoked_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(token.id.to_string())
                .bind(token.tenant.to_string())
                .bind(&token.name)
                .bind(token.scopes.to_string())
                .bind(&token.hash)
                .bind(token.created_at)
                .bind(token.revoked_at)
                .bind(token.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }

            async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
                // System path: how a request learns its tenant.
                let from = if $rls { "tb_token_by_hash($1)" } else { "tokens WHERE hash = $1" };
                $crate::__rt::sqlx::query(&format!("SELECT {TOKEN_COLS} FROM {from}"))
                    .bind(hash)
                    .fetch_optional(&self.read)
                    .await
                    .map_err(be)?
                    .map(|r| token_row(&r))
                    .transpose()
            }

            async fn list_tokens(&self, tenant: TenantId) -> Result<Vec<TokenRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE tenant_id = $1 ORDER BY id"))
                    .bind(tenant.to_string())
                    .fetch_all(&mut *rtx)
                    .await
                    .map_err(be)?
                    .iter()
                    .map(token_row)
                    .collect()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn revoke_token(&self, tenant: TenantId, id: TokenId, at: i64, event: &NewAuditEvent) -> Result<(), StoreError> {
                let mut tx = self.write_tx(tenant).await?;
                let done = $crate::__rt::sqlx::query(
                    "UPDATE tokens SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL",
                )
                .bind(at)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound);
                }
                record_change(&mut *tx, tenant, "token", &id.to_string(), at).await?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }
        }
    };
}
