//! The SQL of the certificate inventory repository ([`trustbox_store::CertificateRepo`]), shared by both engines.
//!
//! Expanded by [`impl_sql_store!`](crate::impl_sql_store) inside its private scope, whose
//! helpers (`scope`, `chain`, the row decoders) it uses.

/// Implements [`trustbox_store::CertificateRepo`] for `$store`. Not a public API: invoked by
/// `impl_sql_store!`, whose private helpers it uses.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sql_certificates {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        impl $store {
            /// The shared `sqlx` implementation of group commit (engines may use their own).
            #[allow(dead_code)]
            async fn sqlx_commit_issuances(&self, batch: &[IssuanceRecord]) -> Result<(), StoreError> {
                if batch.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write.begin_with($begin).await.map_err(be)?;
                let certs: Vec<&CertificateRecord> = batch.iter().map(|r| &r.certificate).collect();
                insert_certificates(&mut *tx, &certs).await?;
                let events: Vec<&NewAuditEvent> = batch.iter().map(|r| &r.event).collect();
                chain(&mut *tx, &events).await?;
                tx.commit().await.map_err(be)
            }
        }

        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::CertificateRepo for $store {
            async fn commit_issuances(&self, batch: &[IssuanceRecord]) -> Result<(), StoreError> {
                self.commit_batch(batch).await
            }

            async fn certificate(&self, tenant: TenantId, id: CertificateId) -> Result<Option<CertificateRecord>, StoreError> {
                let (t, id) = (tenant.to_string(), id.to_string());
                let sql = format!("SELECT {CERT_COLS} FROM certificates WHERE tenant_id = $1 AND id = $2");
                self.read_row(tenant, &sql, &[SqlValue::Text(&t), SqlValue::Text(&id)], rows::certificate).await
            }

            async fn list_certificates(&self, tenant: TenantId, f: &CertificateFilter) -> Result<Vec<CertificateRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                let t = tenant.to_string();
                let mut qb = $crate::__rt::sqlx::QueryBuilder::<$db>::new(format!("SELECT {CERT_COLS} FROM certificates WHERE tenant_id = "));
                qb.push_bind(t.clone());
                if let Some(s) = f.status {
                    qb.push(" AND status = ").push_bind(s.as_str().to_owned());
                }
                if let Some(before) = f.expires_before {
                    qb.push(" AND not_after < ").push_bind(before);
                }
                if let Some(i) = f.issuer {
                    qb.push(" AND issuer_id = ").push_bind(i.to_string());
                }
                if let Some(a) = f.after {
                    qb.push(" AND id > ").push_bind(a.to_string());
                }
                if let Some(san) = &f.san {
                    qb.push(" AND id IN (SELECT certificate_id FROM certificate_sans WHERE tenant_id = ")
                        .push_bind(t)
                        .push(" AND value = ")
                        .push_bind(rows::normalise_san_value(san).into_owned())
                        .push(")");
                }
                qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(f.limit));
                qb.build()
                    .fetch_all(&mut *rtx)
                    .await
                    .map_err(be)?
                    .iter()
                    .map(cert_row)
                    .collect()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn certificate_by_serial(
                &self,
                tenant: TenantId,
                issuer: IssuerId,
                serial: &str,
            ) -> Result<Option<CertificateRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let out = {
                $crate::__rt::sqlx::query(&format!(
                    "SELECT {CERT_COLS} FROM certificates WHERE tenant_id = $1 AND issuer_id = $2 AND serial = $3"
                ))
                .bind(tenant.to_string())
                .bind(issuer.to_string())
                .bind(serial)
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?
                .map(|r| cert_row(&r))
                .transpose()
            };
                rtx.commit().await.map_err(be)?;
                out
            }

            async fn certificate_by_idempotency_key(
                &self,
                tenant: TenantId,
                key: &str,
            ) -> Result<Option<CertificateRecord>, StoreError> {
                let t = tenant.to_string();
                let sql = format!("SELECT {CERT_COLS} FROM certificates WHERE tenant_id = $1 AND idempotency_key = $2");
                self.read_row(tenant, &sql, &[SqlValue::Text(&t), SqlValue::Text(key)], rows::certificate).await
            }
        }
    };
}
