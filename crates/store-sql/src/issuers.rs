//! The SQL of the issuers and profiles repository ([`trustbox_store::IssuerRepo`]), shared by both engines.
//!
//! Expanded by [`impl_sql_store!`](crate::impl_sql_store) inside its private scope, whose
//! helpers (`scope`, `chain`, the row decoders) it uses.

/// Implements [`trustbox_store::IssuerRepo`] for `$store`. Not a public API: invoked by
/// `impl_sql_store!`, whose private helpers it uses.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sql_issuers {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        const ISSUER_COLS: &str = "id, tenant_id, name, parent_id, certificate_der, common_name, key_backend, \
            key_algorithm, key_wrapped, not_before, not_after, created_at, crl_shards, ocsp_enabled";

        const PROFILE_COLS: &str = "id, tenant_id, name, version, document, created_at";

        fn issuer_row(r: &Row) -> Result<IssuerRecord, StoreError> {
            let parent: Option<String> = r.try_get("parent_id").map_err(be)?;
            Ok(IssuerRecord {
                id: decode("issuer id", &r.try_get::<String, _>("id").map_err(be)?)?,
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                name: r.try_get("name").map_err(be)?,
                parent: parent.map(|p| decode("issuer id", &p)).transpose()?,
                certificate_der: r.try_get("certificate_der").map_err(be)?,
                common_name: r.try_get("common_name").map_err(be)?,
                key_backend: r.try_get("key_backend").map_err(be)?,
                key_algorithm: decode("key algorithm", &r.try_get::<String, _>("key_algorithm").map_err(be)?)?,
                key_wrapped: r.try_get("key_wrapped").map_err(be)?,
                not_before: r.try_get("not_before").map_err(be)?,
                not_after: r.try_get("not_after").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
                crl_shards: shard_number(r.try_get("crl_shards").map_err(be)?)?,
                ocsp_enabled: r.try_get::<i64, _>("ocsp_enabled").map_err(be)? != 0,
            })
        }

        fn profile_row(r: &Row) -> Result<ProfileRecord, StoreError> {
            Ok(ProfileRecord {
                id: decode("profile id", &r.try_get::<String, _>("id").map_err(be)?)?,
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                name: r.try_get("name").map_err(be)?,
                version: r.try_get("version").map_err(be)?,
                document: r.try_get("document").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
            })
        }

        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::IssuerRepo for $store {
            async fn insert_issuer(
                &self,
                i: &IssuerRecord,
                ca_certificate: Option<&CertificateRecord>,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx(i.tenant).await?;
                $crate::__rt::sqlx::query(
                    "INSERT INTO issuers (id, tenant_id, name, parent_id, certificate_der, common_name, key_backend, \
                     key_algorithm, key_wrapped, not_before, not_after, created_at, crl_shards, ocsp_enabled) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(i.id.to_string())
                .bind(i.tenant.to_string())
                .bind(&i.name)
                .bind(i.parent.map(|p| p.to_string()))
                .bind(&i.certificate_der)
                .bind(&i.common_name)
                .bind(&i.key_backend)
                .bind(i.key_algorithm.as_str())
                .bind(&i.key_wrapped)
                .bind(i.not_before)
                .bind(i.not_after)
                .bind(i.created_at)
                .bind(i64::from(i.crl_shards))
                .bind(i64::from(i.ocsp_enabled))
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                if let Some(c) = ca_certificate {
                    insert_certificates(&mut *tx, &[c]).await?;
                }
                insert_shards(&mut *tx, i.tenant, i.id, 0..i.crl_shards).await?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }

            async fn issuer_public(&self, id: IssuerId) -> Result<Option<IssuerRecord>, StoreError> {
                // System path: how a relying party's request learns the issuer's tenant.
                let from = if $rls { "tb_issuer_public($1)" } else { "issuers WHERE id = $1" };
                $crate::__rt::sqlx::query(&format!("SELECT {ISSUER_COLS} FROM {from}"))
                    .bind(id.to_string())
                    .fetch_optional(&self.read)
                    .await
                    .map_err(be)?
                    .map(|r| issuer_row(&r))
                    .transpose()
            }

            async fn set_issuer_ocsp(
                &self,
                tenant: TenantId,
                id: IssuerId,
                enabled: bool,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx(tenant).await?;
                let done = $crate::__rt::sqlx::query("UPDATE issuers SET ocsp_enabled = $1 WHERE tenant_id = $2 AND id = $3")
                    .bind(i64::from(enabled))
                    .bind(tenant.to_string())
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound);
                }
                record_change(&mut *tx, tenant, "issuer", &id.to_string(), event.at_us / 1_000_000).await?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }

            async fn issuer(&self, tenant: TenantId, id: IssuerId) -> Result<Option<IssuerRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!("SELECT {ISSUER_COLS} FROM issuers WHERE tenant_id = $1 AND id = $2"))
                    .bind(tenant.to_string())
                    .bind(id.to_string())
                    .fetch_optional(&mut *rtx)
                    .await
                    .map_err(be)?
                    .map(|r| issuer_row(&r))
                    .transpose()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn issuer_by_name(&self, tenant: TenantId, name: &str) -> Result<Option<IssuerRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!("SELECT {ISSUER_COLS} FROM issuers WHERE tenant_id = $1 AND name = $2"))
                    .bind(tenant.to_string())
                    .bind(name)
                    .fetch_optional(&mut *rtx)
                    .await
                    .map_err(be)?
                    .map(|r| issuer_row(&r))
                    .transpose()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn list_issuers(&self, tenant: TenantId) -> Result<Vec<IssuerRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!("SELECT {ISSUER_COLS} FROM issuers WHERE tenant_id = $1 ORDER BY id"))
                    .bind(tenant.to_string())
                    .fetch_all(&mut *rtx)
                    .await
                    .map_err(be)?
                    .iter()
                    .map(issuer_row)
                    .collect()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn insert_profile(&self, p: &ProfileRecord, event: &NewAuditEvent) -> Result<(), StoreError> {
                let mut tx = self.write_tx(p.tenant).await?;
                $crate::__rt::sqlx::query(
                    "INSERT INTO profiles (id, tenant_id, name, version, document, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(p.id.to_string())
                .bind(p.tenant.to_string())
                .bind(&p.name)
                .bind(p.version)
                .bind(&p.document)
                .bind(p.created_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }

            async fn profile(&self, tenant: TenantId, name: &str) -> Result<Option<ProfileRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!(
                    "SELECT {PROFILE_COLS} FROM profiles WHERE tenant_id = $1 AND name = $2 ORDER BY version DESC LIMIT 1"
                ))
                .bind(tenant.to_string())
                .bind(name)
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?
                .map(|r| profile_row(&r))
                .transpose()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn list_profiles(&self, tenant: TenantId) -> Result<Vec<ProfileRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!(
                    "SELECT {PROFILE_COLS} FROM profiles p WHERE tenant_id = $1 AND version = \
                     (SELECT MAX(version) FROM profiles q WHERE q.tenant_id = p.tenant_id AND q.name = p.name) \
                     ORDER BY name"
                ))
                .bind(tenant.to_string())
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?
                .iter()
                .map(profile_row)
                .collect()
            };
                rtx.commit().await.map_err(be)?;
                out
            }
        }
    };
}
