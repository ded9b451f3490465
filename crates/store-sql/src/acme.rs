//! The SQL of the ACME repository ([`trustbox_store::AcmeRepo`]), shared by both engines.
//!
//! Expanded by [`impl_sql_store!`](crate::impl_sql_store) inside its private scope, whose
//! helpers (`scope`, `chain`, `exec_on`, `SqlxRow`) it uses. The statement texts, their
//! parameters and the row decoders are `trustbox_store::acme_rows`'; reads go through the
//! engine's `read_rows` and write batches through its `acme_batch`, so the SQLite engine can
//! run both on `rusqlite` without a `sqlx` hop per statement.

/// Implements [`trustbox_store::AcmeRepo`] for `$store`. Not a public API: invoked by
/// `impl_sql_store!`, whose private helpers it uses.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sql_acme {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        use $crate::__rt::store::acme_rows as acme;

        /// Runs `sql` (which returns the changed row) with `params` and appends `event` in
        /// one write transaction; `NotFound` if no row changed.
        async fn acme_update_returning<T>(
            store: &$store,
            tenant: TenantId,
            sql: &str,
            params: &[SqlValue<'_>],
            decode: fn(&dyn rows::RowReader) -> Result<T, StoreError>,
            event: &NewAuditEvent,
        ) -> Result<T, StoreError> {
            let mut tx = store.write_tx(tenant).await?;
            let mut q = $crate::__rt::sqlx::query(sql);
            for v in params {
                q = bind_param(q, *v);
            }
            let row = q
                .fetch_optional(&mut *tx)
                .await
                .map_err(be)?
                .ok_or(StoreError::NotFound)?;
            let found = decode(&SqlxRow(&row))?;
            chain(&mut *tx, &[event]).await?;
            tx.commit().await.map_err(be)?;
            Ok(found)
        }

        /// Runs `sql` with `params` and appends `event` in one write transaction.
        async fn acme_insert_audited(
            store: &$store,
            tenant: TenantId,
            sql: &str,
            params: &[SqlValue<'_>],
            event: &NewAuditEvent,
        ) -> Result<(), StoreError> {
            let mut tx = store.write_tx(tenant).await?;
            exec_on(&mut *tx, sql, params).await?;
            chain(&mut *tx, &[event]).await?;
            tx.commit().await.map_err(be)
        }

        impl $store {
            /// Applies a write batch ([`trustbox_store::AcmeRepo::apply_acme_batch`]) on the
            /// `sqlx` write pool: the `sqlx` way of the engine's `acme_batch`.
            #[allow(dead_code)]
            async fn sqlx_acme_batch(
                &self,
                tenant: TenantId,
                ops: &[$crate::__rt::store::AcmeOp],
                now: i64,
            ) -> Result<Vec<$crate::__rt::store::AcmeOpOutcome>, StoreError> {
                use $crate::__rt::store::{AcmeOp, AcmeOpOutcome};
                let t = tenant.to_string();
                let job_ids: Vec<String> = ops.iter().map(acme::job_id).collect();
                let mut tx = self.write_tx(tenant).await?;
                let mut out = Vec::with_capacity(ops.len());
                for (op, job_id) in ops.iter().zip(&job_ids) {
                    let plan = match acme::plan(&t, op, job_id, now) {
                        Ok(plan) => plan,
                        Err(e) => {
                            out.push(AcmeOpOutcome::Failed(e));
                            continue;
                        }
                    };
                    if plan.guarded {
                        exec_on(&mut *tx, "SAVEPOINT acme_op", &[]).await?;
                    }
                    let result: Result<AcmeOpOutcome, StoreError> = async {
                        let mut tally = acme::Tally::default();
                        for step in &plan.steps {
                            let n = exec_on(&mut *tx, &step.sql, &step.values).await?;
                            if !tally.record(step.expect, n)? {
                                break;
                            }
                        }
                        if let (true, Some(event)) = (tally.applied(), plan.event) {
                            chain(&mut *tx, &[event]).await?;
                        }
                        Ok(plan.outcome(tally))
                    }
                    .await;
                    if !plan.guarded {
                        // a backend error here leaves the transaction unusable: fail it all
                        if let Err(e) = result {
                            return Err(e);
                        }
                    } else if matches!(&result, Ok(o) if acme::OpPlan::keeps(o)) {
                        exec_on(&mut *tx, "RELEASE SAVEPOINT acme_op", &[]).await?;
                    } else {
                        exec_on(&mut *tx, "ROLLBACK TO SAVEPOINT acme_op", &[]).await?;
                        exec_on(&mut *tx, "RELEASE SAVEPOINT acme_op", &[]).await?;
                    }
                    out.push(result.unwrap_or_else(AcmeOpOutcome::Failed));
                }
                if ops.iter().any(|o| matches!(o, AcmeOp::Nonce { .. })) {
                    exec_on(&mut *tx, acme::PRUNE_NONCES, &[SqlValue::Text(&t), SqlValue::Int(now)]).await?;
                }
                tx.commit().await.map_err(be)?;
                Ok(out)
            }
        }

        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::AcmeRepo for $store {
            async fn acme_account_by_thumbprint(
                &self,
                tenant: TenantId,
                provisioner: &str,
                thumbprint: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeAccountRecord>, StoreError> {
                let t = tenant.to_string();
                let params = [SqlValue::Text(&t), SqlValue::Text(provisioner), SqlValue::Text(thumbprint)];
                self.read_row(tenant, acme::ACCOUNT_BY_THUMBPRINT, &params, acme::account).await
            }

            async fn acme_account(
                &self,
                tenant: TenantId,
                id: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeAccountRecord>, StoreError> {
                let t = tenant.to_string();
                self.read_row(tenant, acme::ACCOUNT_BY_ID, &[SqlValue::Text(&t), SqlValue::Text(id)], acme::account).await
            }

            async fn update_acme_account(
                &self,
                tenant: TenantId,
                id: &str,
                status: &str,
                contact: &str,
                event: &NewAuditEvent,
            ) -> Result<$crate::__rt::store::AcmeAccountRecord, StoreError> {
                let t = tenant.to_string();
                let sql = format!(
                    "UPDATE acme_accounts SET status = $1, contact = $2 WHERE tenant_id = $3 AND id = $4 RETURNING {}",
                    acme::ACCOUNT_COLS
                );
                let params = [SqlValue::Text(status), SqlValue::Text(contact), SqlValue::Text(&t), SqlValue::Text(id)];
                acme_update_returning(self, tenant, &sql, &params, acme::account, event).await
            }

            async fn insert_acme_provisioner(
                &self,
                p: &$crate::__rt::store::AcmeProvisionerRecord,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let t = p.tenant.to_string();
                let sql = format!(
                    "INSERT INTO acme_provisioners ({}) VALUES ($1, $2, $3, $4, $5, $6)",
                    acme::PROVISIONER_COLS
                );
                let params = [
                    SqlValue::Text(&t),
                    SqlValue::Text(&p.id),
                    SqlValue::Text(&p.name),
                    SqlValue::Text(&p.settings),
                    SqlValue::Int(p.created_at),
                    SqlValue::Int(p.updated_at),
                ];
                acme_insert_audited(self, p.tenant, &sql, &params, event).await
            }

            async fn update_acme_provisioner(
                &self,
                tenant: TenantId,
                name: &str,
                settings: &str,
                now: i64,
                event: &NewAuditEvent,
            ) -> Result<$crate::__rt::store::AcmeProvisionerRecord, StoreError> {
                let t = tenant.to_string();
                let sql = format!(
                    "UPDATE acme_provisioners SET settings = $1, updated_at = $2 WHERE tenant_id = $3 AND name = $4 RETURNING {}",
                    acme::PROVISIONER_COLS
                );
                let params = [SqlValue::Text(settings), SqlValue::Int(now), SqlValue::Text(&t), SqlValue::Text(name)];
                acme_update_returning(self, tenant, &sql, &params, acme::provisioner, event).await
            }

            async fn acme_provisioner_by_name(
                &self,
                name: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeProvisionerRecord>, StoreError> {
                // System path: how an ACME request learns its tenant.
                let from = if $rls { "tb_acme_provisioner($1)" } else { "acme_provisioners WHERE name = $1" };
                $crate::__rt::sqlx::query(&format!("SELECT {} FROM {from}", acme::PROVISIONER_COLS))
                    .bind(name)
                    .fetch_optional(&self.read)
                    .await
                    .map_err(be)?
                    .map(|r| acme::provisioner(&SqlxRow(&r)))
                    .transpose()
            }

            async fn list_acme_provisioners(
                &self,
                tenant: TenantId,
            ) -> Result<Vec<$crate::__rt::store::AcmeProvisionerRecord>, StoreError> {
                let t = tenant.to_string();
                let sql = format!("SELECT {} FROM acme_provisioners WHERE tenant_id = $1 ORDER BY name", acme::PROVISIONER_COLS);
                self.read_rows(tenant, &sql, &[SqlValue::Text(&t)], acme::provisioner).await
            }

            async fn insert_acme_eab_key(
                &self,
                k: &$crate::__rt::store::AcmeEabKeyRecord,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let t = k.tenant.to_string();
                let sql = format!(
                    "INSERT INTO acme_eab_keys ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    acme::EAB_COLS
                );
                let params = [
                    SqlValue::Text(&t),
                    SqlValue::Text(&k.id),
                    SqlValue::Text(&k.provisioner),
                    SqlValue::Text(&k.label),
                    SqlValue::Text(&k.key_check),
                    SqlValue::Text(&k.status),
                    SqlValue::OptText(k.account_id.as_deref()),
                    SqlValue::Int(k.created_at),
                    SqlValue::OptInt(k.used_at),
                ];
                acme_insert_audited(self, k.tenant, &sql, &params, event).await
            }

            async fn acme_eab_key(
                &self,
                tenant: TenantId,
                id: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeEabKeyRecord>, StoreError> {
                let t = tenant.to_string();
                let sql = format!("SELECT {} FROM acme_eab_keys WHERE tenant_id = $1 AND id = $2", acme::EAB_COLS);
                self.read_row(tenant, &sql, &[SqlValue::Text(&t), SqlValue::Text(id)], acme::eab_key).await
            }

            async fn list_acme_eab_keys(
                &self,
                tenant: TenantId,
                provisioner: &str,
            ) -> Result<Vec<$crate::__rt::store::AcmeEabKeyRecord>, StoreError> {
                let t = tenant.to_string();
                let sql = format!(
                    "SELECT {} FROM acme_eab_keys WHERE tenant_id = $1 AND provisioner = $2 ORDER BY created_at DESC, id DESC",
                    acme::EAB_COLS
                );
                self.read_rows(tenant, &sql, &[SqlValue::Text(&t), SqlValue::Text(provisioner)], acme::eab_key).await
            }

            async fn revoke_acme_eab_key(
                &self,
                tenant: TenantId,
                id: &str,
                event: &NewAuditEvent,
            ) -> Result<$crate::__rt::store::AcmeEabKeyRecord, StoreError> {
                let t = tenant.to_string();
                let sql = format!(
                    "UPDATE acme_eab_keys SET status = 'revoked' WHERE tenant_id = $1 AND id = $2 RETURNING {}",
                    acme::EAB_COLS
                );
                acme_update_returning(self, tenant, &sql, &[SqlValue::Text(&t), SqlValue::Text(id)], acme::eab_key, event).await
            }

            async fn update_acme_account_key(
                &self,
                tenant: TenantId,
                id: &str,
                thumbprint: &str,
                jwk: &str,
                event: &NewAuditEvent,
            ) -> Result<$crate::__rt::store::AcmeAccountRecord, StoreError> {
                let t = tenant.to_string();
                let sql = format!(
                    "UPDATE acme_accounts SET thumbprint = $1, jwk = $2 WHERE tenant_id = $3 AND id = $4 RETURNING {}",
                    acme::ACCOUNT_COLS
                );
                let params = [SqlValue::Text(thumbprint), SqlValue::Text(jwk), SqlValue::Text(&t), SqlValue::Text(id)];
                acme_update_returning(self, tenant, &sql, &params, acme::account, event).await
            }

            async fn acme_order(
                &self,
                tenant: TenantId,
                id: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeOrderRecord>, StoreError> {
                let t = tenant.to_string();
                self.read_row(tenant, acme::ORDER_BY_ID, &[SqlValue::Text(&t), SqlValue::Text(id)], acme::order).await
            }

            async fn acme_order_replacing(
                &self,
                tenant: TenantId,
                certificate_id: &str,
            ) -> Result<Option<String>, StoreError> {
                let t = tenant.to_string();
                let params = [SqlValue::Text(&t), SqlValue::Text(certificate_id)];
                self.read_row(tenant, acme::ORDER_REPLACING, &params, acme::text).await
            }

            async fn acme_account_orders(
                &self,
                tenant: TenantId,
                account_id: &str,
                offset: u32,
                limit: u32,
            ) -> Result<Vec<String>, StoreError> {
                let t = tenant.to_string();
                let params = [
                    SqlValue::Text(&t),
                    SqlValue::Text(account_id),
                    SqlValue::Int(i64::from(limit)),
                    SqlValue::Int(i64::from(offset)),
                ];
                self.read_rows(tenant, acme::ACCOUNT_ORDERS, &params, acme::text).await
            }

            async fn acme_order_authorizations(
                &self,
                tenant: TenantId,
                order_id: &str,
            ) -> Result<Vec<$crate::__rt::store::AcmeAuthorizationRecord>, StoreError> {
                let t = tenant.to_string();
                self.read_rows(tenant, acme::ORDER_AUTHZS, &[SqlValue::Text(&t), SqlValue::Text(order_id)], acme::authorization).await
            }

            async fn acme_authorization(
                &self,
                tenant: TenantId,
                id: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeAuthorizationRecord>, StoreError> {
                let t = tenant.to_string();
                self.read_row(tenant, acme::AUTHZ_BY_ID, &[SqlValue::Text(&t), SqlValue::Text(id)], acme::authorization).await
            }

            async fn acme_authorization_challenges(
                &self,
                tenant: TenantId,
                authz_id: &str,
            ) -> Result<Vec<$crate::__rt::store::AcmeChallengeRecord>, StoreError> {
                let t = tenant.to_string();
                self.read_rows(tenant, acme::AUTHZ_CHALLENGES, &[SqlValue::Text(&t), SqlValue::Text(authz_id)], acme::challenge).await
            }

            async fn acme_challenge(
                &self,
                tenant: TenantId,
                id: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeChallengeRecord>, StoreError> {
                let t = tenant.to_string();
                self.read_row(tenant, acme::CHALLENGE_BY_ID, &[SqlValue::Text(&t), SqlValue::Text(id)], acme::challenge).await
            }

            async fn apply_acme_batch(
                &self,
                tenant: TenantId,
                ops: &[$crate::__rt::store::AcmeOp],
                now: i64,
            ) -> Result<Vec<$crate::__rt::store::AcmeOpOutcome>, StoreError> {
                self.acme_batch(tenant, ops, now).await
            }

            async fn count_acme_orders_since(
                &self,
                tenant: TenantId,
                provisioner: &str,
                account: Option<&str>,
                since: i64,
            ) -> Result<u64, StoreError> {
                let t = tenant.to_string();
                let (sql, by, from) = match account {
                    Some(account) => (acme::COUNT_ACCOUNT_ORDERS, account, since),
                    None => (acme::COUNT_PROVISIONER_ORDERS, provisioner, since - acme::ORDER_WINDOW_S),
                };
                let params = [SqlValue::Text(&t), SqlValue::Text(by), SqlValue::Int(from)];
                let n = self.read_row(tenant, sql, &params, acme::int).await?.unwrap_or(0);
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn count_acme_failed_validations_since(
                &self,
                tenant: TenantId,
                account: &str,
                since: i64,
            ) -> Result<u64, StoreError> {
                let t = tenant.to_string();
                let params = [SqlValue::Text(&t), SqlValue::Int(since), SqlValue::Text(account)];
                let n = self.read_row(tenant, acme::COUNT_FAILED_VALIDATIONS, &params, acme::int).await?.unwrap_or(0);
                Ok(u64::try_from(n).unwrap_or(0))
            }
        }
    };
}
