//! The SQL of the revocation, CRL shards and OCSP responders repository ([`trustbox_store::RevocationRepo`]), shared by both engines.
//!
//! Expanded by [`impl_sql_store!`](crate::impl_sql_store) inside its private scope, whose
//! helpers (`scope`, `chain`, the row decoders) it uses.

/// Implements [`trustbox_store::RevocationRepo`] for `$store`. Not a public API: invoked by
/// `impl_sql_store!`, whose private helpers it uses.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sql_revocation {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        const RESPONDER_COLS: &str = "id, tenant_id, issuer_id, certificate_der, key_backend, key_algorithm, \
            key_wrapped, not_before, not_after, created_at";
        const SHARD_COLS: &str = "tenant_id, issuer_id, shard, revision, published_revision, crl_number, \
            this_update, next_update, refresh_at";

        fn shard_row(r: &Row) -> Result<CrlShardState, StoreError> {
            Ok(CrlShardState {
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                issuer: decode("issuer id", &r.try_get::<String, _>("issuer_id").map_err(be)?)?,
                shard: shard_number(r.try_get("shard").map_err(be)?)?,
                revision: r.try_get("revision").map_err(be)?,
                published_revision: r.try_get("published_revision").map_err(be)?,
                crl_number: r.try_get("crl_number").map_err(be)?,
                this_update: r.try_get("this_update").map_err(be)?,
                next_update: r.try_get("next_update").map_err(be)?,
                refresh_at: r.try_get("refresh_at").map_err(be)?,
            })
        }

        fn responder_row(r: &Row) -> Result<OcspResponderRecord, StoreError> {
            Ok(OcspResponderRecord {
                id: decode("responder id", &r.try_get::<String, _>("id").map_err(be)?)?,
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                issuer: decode("issuer id", &r.try_get::<String, _>("issuer_id").map_err(be)?)?,
                certificate_der: r.try_get("certificate_der").map_err(be)?,
                key_backend: r.try_get("key_backend").map_err(be)?,
                key_algorithm: decode("key algorithm", &r.try_get::<String, _>("key_algorithm").map_err(be)?)?,
                key_wrapped: r.try_get("key_wrapped").map_err(be)?,
                not_before: r.try_get("not_before").map_err(be)?,
                not_after: r.try_get("not_after").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
            })
        }

        impl $store {
            /// The shared `sqlx` read of a CRL shard's live revoked entries (engines may
            /// use their own bulk path).
            #[allow(dead_code)]
            async fn sqlx_revoked_for_crl(
                &self,
                tenant: TenantId,
                issuer: IssuerId,
                shard: u32,
                now: i64,
            ) -> Result<Vec<RevokedEntry>, StoreError> {
                use $crate::__rt::TryStreamExt as _;
                let q = $crate::__rt::sqlx::query(rows::REVOKED_FOR_CRL)
                    .bind(tenant.to_string())
                    .bind(issuer.to_string())
                    .bind(i64::from(shard))
                    .bind(now);
                let mut rtx = self.read_tx(tenant).await?;
                let mut out = Vec::new();
                let mut stream = q.fetch(&mut *rtx);
                while let Some(r) = stream.try_next().await.map_err(be)? {
                    out.push(rows::revoked_entry(
                        r.try_get("serial").map_err(be)?,
                        r.try_get("revoked_at").map_err(be)?,
                        r.try_get::<Option<&str>, _>("revocation_reason").map_err(be)?,
                        r.try_get("invalidity_date").map_err(be)?,
                    )?);
                }
                drop(stream);
                rtx.commit().await.map_err(be)?;
                Ok(out)
            }
        }

        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::RevocationRepo for $store {
            async fn revoke_certificate(
                &self,
                tenant: TenantId,
                id: CertificateId,
                at: i64,
                reason: RevocationReason,
                invalidity_date: Option<i64>,
                event: &NewAuditEvent,
            ) -> Result<RevokeOutcome, StoreError> {
                let mut tx = self.write_tx(tenant).await?;
                let t = tenant.to_string();
                let i = id.to_string();
                let row = $crate::__rt::sqlx::query(&format!(
                    concat!("SELECT {} FROM certificates WHERE tenant_id = $1 AND id = $2", $lock),
                    CERT_COLS
                ))
                .bind(&t)
                .bind(&i)
                .fetch_optional(&mut *tx)
                .await
                .map_err(be)?
                .ok_or(StoreError::NotFound)?;
                let mut cert = cert_row(&row)?;
                if cert.status == CertificateStatus::Revoked {
                    return Ok(RevokeOutcome::AlreadyRevoked(cert));
                }
                $crate::__rt::sqlx::query(
                    "UPDATE certificates SET status = 'revoked', revoked_at = $1, revocation_reason = $2, \
                     invalidity_date = $3 WHERE tenant_id = $4 AND id = $5",
                )
                .bind(at)
                .bind(reason.as_str())
                .bind(invalidity_date)
                .bind(&t)
                .bind(&i)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                // Mark the shard for regeneration: one row, whatever is already revoked.
                insert_shards(&mut *tx, tenant, cert.issuer, cert.crl_shard..cert.crl_shard + 1).await?;
                $crate::__rt::sqlx::query("UPDATE crl_shards SET revision = revision + 1 WHERE tenant_id = $1 AND issuer_id = $2 AND shard = $3")
                    .bind(&t)
                    .bind(cert.issuer.to_string())
                    .bind(i64::from(cert.crl_shard))
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                record_change(&mut *tx, tenant, "certificate", &format!("{}:{}", cert.issuer, cert.serial), at).await?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)?;
                cert.status = CertificateStatus::Revoked;
                cert.revoked_at = Some(at);
                cert.revocation_reason = Some(reason);
                cert.invalidity_date = invalidity_date;
                Ok(RevokeOutcome::Revoked(cert))
            }

            async fn revoked_since(&self, tenant: TenantId, since: i64) -> Result<Vec<(IssuerId, String)>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(
                    "SELECT issuer_id, serial FROM certificates WHERE tenant_id = $1 AND status = 'revoked' AND revoked_at >= $2",
                )
                .bind(tenant.to_string())
                .bind(since)
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?
                .iter()
                .map(|r| {
                    Ok((
                        decode("issuer id", &r.try_get::<String, _>("issuer_id").map_err(be)?)?,
                        r.try_get("serial").map_err(be)?,
                    ))
                })
                .collect()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn ensure_crl_shards(&self, tenant: TenantId, issuer: IssuerId, count: u32) -> Result<(), StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                let have: i64 = $crate::__rt::sqlx::query_scalar(
                    "SELECT COUNT(*) FROM crl_shards WHERE tenant_id = $1 AND issuer_id = $2",
                )
                .bind(tenant.to_string())
                .bind(issuer.to_string())
                .fetch_one(&mut *rtx)
                .await
                .map_err(be)?;
                if have >= i64::from(count) {
                    return Ok(());
                }
                let mut tx = self.write_tx(tenant).await?;
                insert_shards(&mut *tx, tenant, issuer, 0..count).await?;
                tx.commit().await.map_err(be)
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn crl_shards_due(&self, tenant: TenantId, now: i64) -> Result<Vec<CrlShardState>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!(
                    "SELECT {SHARD_COLS} FROM crl_shards WHERE tenant_id = $1 AND \
                     (revision > published_revision OR refresh_at IS NULL OR refresh_at <= $2) ORDER BY issuer_id, shard"
                ))
                .bind(tenant.to_string())
                .bind(now)
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?
                .iter()
                .map(shard_row)
                .collect()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn crl_shard(&self, tenant: TenantId, issuer: IssuerId, shard: u32) -> Result<Option<CrlShardState>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!(
                    "SELECT {SHARD_COLS} FROM crl_shards WHERE tenant_id = $1 AND issuer_id = $2 AND shard = $3"
                ))
                .bind(tenant.to_string())
                .bind(issuer.to_string())
                .bind(i64::from(shard))
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?
                .map(|r| shard_row(&r))
                .transpose()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn crl_der(&self, tenant: TenantId, issuer: IssuerId, shard: u32) -> Result<Option<Vec<u8>>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                let der: Option<Option<Vec<u8>>> = $crate::__rt::sqlx::query_scalar(
                    "SELECT der FROM crl_shards WHERE tenant_id = $1 AND issuer_id = $2 AND shard = $3",
                )
                .bind(tenant.to_string())
                .bind(issuer.to_string())
                .bind(i64::from(shard))
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?;
                Ok(der.flatten())
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn revoked_for_crl(
                &self,
                tenant: TenantId,
                issuer: IssuerId,
                shard: u32,
                now: i64,
            ) -> Result<Vec<RevokedEntry>, StoreError> {
                self.fetch_revoked_for_crl(tenant, issuer, shard, now).await
            }

            async fn publish_crl(
                &self,
                tenant: TenantId,
                issuer: IssuerId,
                shard: u32,
                crl: &CrlPublication,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write_tx(tenant).await?;
                let done = $crate::__rt::sqlx::query(
                    "UPDATE crl_shards SET published_revision = $1, crl_number = $2, this_update = $3, next_update = $4, \
                     refresh_at = $5, der = $6 WHERE tenant_id = $7 AND issuer_id = $8 AND shard = $9 AND crl_number < $2",
                )
                .bind(crl.revision)
                .bind(crl.crl_number)
                .bind(crl.this_update)
                .bind(crl.next_update)
                .bind(crl.refresh_at)
                .bind(crl.der.as_slice())
                .bind(tenant.to_string())
                .bind(issuer.to_string())
                .bind(i64::from(shard))
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                tx.commit().await.map_err(be)?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_ocsp_responder(
                &self,
                o: &OcspResponderRecord,
                inventory: Option<&CertificateRecord>,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx(o.tenant).await?;
                $crate::__rt::sqlx::query(
                    "INSERT INTO ocsp_responders (id, tenant_id, issuer_id, certificate_der, key_backend, key_algorithm, \
                     key_wrapped, not_before, not_after, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(o.id.to_string())
                .bind(o.tenant.to_string())
                .bind(o.issuer.to_string())
                .bind(&o.certificate_der)
                .bind(&o.key_backend)
                .bind(o.key_algorithm.as_str())
                .bind(&o.key_wrapped)
                .bind(o.not_before)
                .bind(o.not_after)
                .bind(o.created_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                if let Some(c) = inventory {
                    insert_certificates(&mut *tx, &[c]).await?;
                }
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }

            async fn ocsp_responder(&self, tenant: TenantId, issuer: IssuerId) -> Result<Option<OcspResponderRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!(
                    "SELECT {RESPONDER_COLS} FROM ocsp_responders WHERE tenant_id = $1 AND issuer_id = $2 \
                     ORDER BY not_after DESC LIMIT 1"
                ))
                .bind(tenant.to_string())
                .bind(issuer.to_string())
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?
                .map(|r| responder_row(&r))
                .transpose()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn list_ocsp_responders(&self, tenant: TenantId) -> Result<Vec<OcspResponderRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let rows = $crate::__rt::sqlx::query(&format!(
                    "SELECT {RESPONDER_COLS} FROM ocsp_responders WHERE tenant_id = $1 ORDER BY created_at, id"
                ))
                .bind(tenant.to_string())
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                rows.iter().map(responder_row).collect()
            }
        }
    };
}
