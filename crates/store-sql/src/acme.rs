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
        const ACME_ACCOUNT_COLS: &str = "tenant_id, id, provisioner, thumbprint, jwk, status, contact, created_at, eab_kid";
        const ACME_PROVISIONER_COLS: &str = "tenant_id, id, name, settings, created_at, updated_at";
        const ACME_EAB_COLS: &str = "tenant_id, id, provisioner, label, key_check, status, account_id, created_at, used_at";
        const ACME_ORDER_COLS: &str = "tenant_id, id, provisioner, account_id, status, expires_at, identifiers, profile, not_before, not_after, replaces, replaces_ari, error, certificate_id, created_at, updated_at";
        const ACME_AUTHZ_COLS: &str = "tenant_id, id, order_id, identifier_type, identifier_value, wildcard, status, expires_at";
        const ACME_CHALLENGE_COLS: &str = "tenant_id, id, authz_id, kind, token, status, validated_at, error, updated_at";

        fn acme_provisioner_row(r: &Row) -> Result<$crate::__rt::store::AcmeProvisionerRecord, StoreError> {
            Ok($crate::__rt::store::AcmeProvisionerRecord {
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                id: r.try_get("id").map_err(be)?,
                name: r.try_get("name").map_err(be)?,
                settings: r.try_get("settings").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
                updated_at: r.try_get("updated_at").map_err(be)?,
            })
        }

        fn acme_eab_row(r: &Row) -> Result<$crate::__rt::store::AcmeEabKeyRecord, StoreError> {
            Ok($crate::__rt::store::AcmeEabKeyRecord {
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                id: r.try_get("id").map_err(be)?,
                provisioner: r.try_get("provisioner").map_err(be)?,
                label: r.try_get("label").map_err(be)?,
                key_check: r.try_get("key_check").map_err(be)?,
                status: r.try_get("status").map_err(be)?,
                account_id: r.try_get("account_id").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
                used_at: r.try_get("used_at").map_err(be)?,
            })
        }

        fn acme_order_row(r: &Row) -> Result<$crate::__rt::store::AcmeOrderRecord, StoreError> {
            Ok($crate::__rt::store::AcmeOrderRecord {
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                id: r.try_get("id").map_err(be)?,
                provisioner: r.try_get("provisioner").map_err(be)?,
                account_id: r.try_get("account_id").map_err(be)?,
                status: r.try_get("status").map_err(be)?,
                expires_at: r.try_get("expires_at").map_err(be)?,
                identifiers: r.try_get("identifiers").map_err(be)?,
                profile: r.try_get("profile").map_err(be)?,
                not_before: r.try_get("not_before").map_err(be)?,
                not_after: r.try_get("not_after").map_err(be)?,
                replaces: r.try_get("replaces").map_err(be)?,
                replaces_ari: r.try_get("replaces_ari").map_err(be)?,
                error: r.try_get("error").map_err(be)?,
                certificate_id: r.try_get("certificate_id").map_err(be)?,
                created_at: r.try_get("created_at").map_err(be)?,
                updated_at: r.try_get("updated_at").map_err(be)?,
            })
        }

        fn acme_authz_row(r: &Row) -> Result<$crate::__rt::store::AcmeAuthorizationRecord, StoreError> {
            Ok($crate::__rt::store::AcmeAuthorizationRecord {
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                id: r.try_get("id").map_err(be)?,
                order_id: r.try_get("order_id").map_err(be)?,
                identifier_type: r.try_get("identifier_type").map_err(be)?,
                identifier_value: r.try_get("identifier_value").map_err(be)?,
                wildcard: r.try_get("wildcard").map_err(be)?,
                status: r.try_get("status").map_err(be)?,
                expires_at: r.try_get("expires_at").map_err(be)?,
            })
        }

        fn acme_challenge_row(r: &Row) -> Result<$crate::__rt::store::AcmeChallengeRecord, StoreError> {
            Ok($crate::__rt::store::AcmeChallengeRecord {
                tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                id: r.try_get("id").map_err(be)?,
                authz_id: r.try_get("authz_id").map_err(be)?,
                kind: r.try_get("kind").map_err(be)?,
                token: r.try_get("token").map_err(be)?,
                status: r.try_get("status").map_err(be)?,
                validated_at: r.try_get("validated_at").map_err(be)?,
                error: r.try_get("error").map_err(be)?,
                updated_at: r.try_get("updated_at").map_err(be)?,
            })
        }

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
                eab_kid: r.try_get("eab_kid").map_err(be)?,
            })
        }

        async fn acme_insert_order_on(
            tx: &mut Conn,
            o: &$crate::__rt::store::AcmeOrderRecord,
            authorizations: &[$crate::__rt::store::AcmeAuthorizationRecord],
            challenges: &[$crate::__rt::store::AcmeChallengeRecord],
        ) -> Result<(), StoreError> {
            let t = o.tenant.to_string();
            $crate::__rt::sqlx::query(&format!(
                "INSERT INTO acme_orders ({ACME_ORDER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
            ))
            .bind(&t)
            .bind(&o.id)
            .bind(&o.provisioner)
            .bind(&o.account_id)
            .bind(&o.status)
            .bind(o.expires_at)
            .bind(&o.identifiers)
            .bind(&o.profile)
            .bind(o.not_before)
            .bind(o.not_after)
            .bind(&o.replaces)
            .bind(&o.replaces_ari)
            .bind(&o.error)
            .bind(&o.certificate_id)
            .bind(o.created_at)
            .bind(o.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(be)?;
            for a in authorizations {
                $crate::__rt::sqlx::query(&format!(
                    "INSERT INTO acme_authorizations ({ACME_AUTHZ_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&t)
                .bind(&a.id)
                .bind(&a.order_id)
                .bind(&a.identifier_type)
                .bind(&a.identifier_value)
                .bind(a.wildcard)
                .bind(&a.status)
                .bind(a.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
            }
            for c in challenges {
                $crate::__rt::sqlx::query(&format!(
                    "INSERT INTO acme_challenges ({ACME_CHALLENGE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(&t)
                .bind(&c.id)
                .bind(&c.authz_id)
                .bind(&c.kind)
                .bind(&c.token)
                .bind(&c.status)
                .bind(c.validated_at)
                .bind(&c.error)
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
            }
            Ok(())
        }

        /// Applies `changes` on `tx`; `false` at the first one that does not apply (the
        /// caller rolls back).
        async fn acme_changes_on(
            tx: &mut Conn,
            t: &str,
            changes: &[$crate::__rt::store::AcmeStateChange],
            now: i64,
        ) -> Result<bool, StoreError> {
            use $crate::__rt::store::AcmeObject;
            for c in changes {
                if c.from.is_empty() || c.from.len() > 8 {
                    return Err(StoreError::Backend("a state change names 1 to 8 source states".into()));
                }
                let first = if c.object == AcmeObject::Authorization { 4 } else { 7 };
                let from: Vec<String> = (0..c.from.len()).map(|i| format!("${}", i + first)).collect();
                let from = from.join(", ");
                let sql = match c.object {
                    AcmeObject::Order => format!(
                        "UPDATE acme_orders SET status = $1, error = COALESCE($2, error), \
                         certificate_id = COALESCE($3, certificate_id), updated_at = $4 \
                         WHERE tenant_id = $5 AND id = $6 AND status IN ({from})"
                    ),
                    AcmeObject::Authorization => format!(
                        "UPDATE acme_authorizations SET status = $1 \
                         WHERE tenant_id = $2 AND id = $3 AND status IN ({from})"
                    ),
                    AcmeObject::Challenge => format!(
                        "UPDATE acme_challenges SET status = $1, error = COALESCE($2, error), \
                         validated_at = COALESCE($3, validated_at), updated_at = $4 \
                         WHERE tenant_id = $5 AND id = $6 AND status IN ({from})"
                    ),
                };
                let mut q = $crate::__rt::sqlx::query(&sql).bind(&c.to);
                q = match c.object {
                    AcmeObject::Order => q.bind(&c.error).bind(&c.certificate_id).bind(now),
                    AcmeObject::Challenge => q.bind(&c.error).bind(c.validated_at).bind(now),
                    AcmeObject::Authorization => q,
                };
                q = q.bind(t).bind(&c.id);
                for f in &c.from {
                    q = q.bind(f);
                }
                if q.execute(&mut *tx).await.map_err(be)?.rows_affected() != 1 {
                    return Ok(false);
                }
            }
            Ok(true)
        }

        async fn acme_insert_account_on(
            tx: &mut Conn,
            a: &$crate::__rt::store::AcmeAccountRecord,
            event: &NewAuditEvent,
        ) -> Result<(), StoreError> {
            $crate::__rt::sqlx::query(&format!(
                "INSERT INTO acme_accounts ({ACME_ACCOUNT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .bind(a.tenant.to_string())
            .bind(&a.id)
            .bind(&a.provisioner)
            .bind(&a.thumbprint)
            .bind(&a.jwk)
            .bind(&a.status)
            .bind(&a.contact)
            .bind(a.created_at)
            .bind(&a.eab_kid)
            .execute(&mut *tx)
            .await
            .map_err(be)?;
            if let Some(kid) = &a.eab_kid {
                let bound = $crate::__rt::sqlx::query(
                    "UPDATE acme_eab_keys SET status = 'used', account_id = $1, used_at = $2 \
                     WHERE tenant_id = $3 AND id = $4 AND provisioner = $5 AND status = 'active'",
                )
                .bind(&a.id)
                .bind(a.created_at)
                .bind(a.tenant.to_string())
                .bind(kid)
                .bind(&a.provisioner)
                .execute(&mut *tx)
                .await
                .map_err(be)?
                .rows_affected();
                if bound != 1 {
                    return Err(StoreError::Conflict("the external account key is not active".into()));
                }
            }
    chain(&mut *tx, &[event]).await?;
            Ok(())
        }

        async fn acme_savepoint(tx: &mut Conn, sql: &str) -> Result<(), StoreError> {
            $crate::__rt::sqlx::query(sql).execute(&mut *tx).await.map_err(be).map(drop)
        }

        #[$crate::__rt::async_trait]
        impl $crate::__rt::store::AcmeRepo for $store {
            async fn insert_acme_account(
                &self,
                a: &$crate::__rt::store::AcmeAccountRecord,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx(a.tenant).await?;
                acme_insert_account_on(&mut *tx, a, event).await?;
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

            async fn insert_acme_provisioner(
                &self,
                p: &$crate::__rt::store::AcmeProvisionerRecord,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx(p.tenant).await?;
                $crate::__rt::sqlx::query(&format!(
                    "INSERT INTO acme_provisioners ({ACME_PROVISIONER_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
                ))
                .bind(p.tenant.to_string())
                .bind(&p.id)
                .bind(&p.name)
                .bind(&p.settings)
                .bind(p.created_at)
                .bind(p.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }

            async fn update_acme_provisioner(
                &self,
                tenant: TenantId,
                name: &str,
                settings: &str,
                now: i64,
                event: &NewAuditEvent,
            ) -> Result<$crate::__rt::store::AcmeProvisionerRecord, StoreError> {
                let mut tx = self.write_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "UPDATE acme_provisioners SET settings = $1, updated_at = $2 WHERE tenant_id = $3 AND name = $4 \
                     RETURNING {ACME_PROVISIONER_COLS}"
                ))
                .bind(settings)
                .bind(now)
                .bind(tenant.to_string())
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(be)?
                .ok_or(StoreError::NotFound)?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)?;
                acme_provisioner_row(&row)
            }

            async fn acme_provisioner_by_name(
                &self,
                name: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeProvisionerRecord>, StoreError> {
                // System path: how an ACME request learns its tenant.
                let from = if $rls { "tb_acme_provisioner($1)" } else { "acme_provisioners WHERE name = $1" };
                $crate::__rt::sqlx::query(&format!("SELECT {ACME_PROVISIONER_COLS} FROM {from}"))
                    .bind(name)
                    .fetch_optional(&self.read)
                    .await
                    .map_err(be)?
                    .map(|r| acme_provisioner_row(&r))
                    .transpose()
            }

            async fn list_acme_provisioners(
                &self,
                tenant: TenantId,
            ) -> Result<Vec<$crate::__rt::store::AcmeProvisionerRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let rows = $crate::__rt::sqlx::query(&format!(
                    "SELECT {ACME_PROVISIONER_COLS} FROM acme_provisioners WHERE tenant_id = $1 ORDER BY name"
                ))
                .bind(tenant.to_string())
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                rows.iter().map(acme_provisioner_row).collect()
            }

            async fn insert_acme_eab_key(
                &self,
                k: &$crate::__rt::store::AcmeEabKeyRecord,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx(k.tenant).await?;
                $crate::__rt::sqlx::query(&format!(
                    "INSERT INTO acme_eab_keys ({ACME_EAB_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(k.tenant.to_string())
                .bind(&k.id)
                .bind(&k.provisioner)
                .bind(&k.label)
                .bind(&k.key_check)
                .bind(&k.status)
                .bind(&k.account_id)
                .bind(k.created_at)
                .bind(k.used_at)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)
            }

            async fn acme_eab_key(
                &self,
                tenant: TenantId,
                id: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeEabKeyRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "SELECT {ACME_EAB_COLS} FROM acme_eab_keys WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant.to_string())
                .bind(id)
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                row.as_ref().map(acme_eab_row).transpose()
            }

            async fn list_acme_eab_keys(
                &self,
                tenant: TenantId,
                provisioner: &str,
            ) -> Result<Vec<$crate::__rt::store::AcmeEabKeyRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let rows = $crate::__rt::sqlx::query(&format!(
                    "SELECT {ACME_EAB_COLS} FROM acme_eab_keys WHERE tenant_id = $1 AND provisioner = $2 \
                     ORDER BY created_at DESC, id DESC"
                ))
                .bind(tenant.to_string())
                .bind(provisioner)
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                rows.iter().map(acme_eab_row).collect()
            }

            async fn revoke_acme_eab_key(
                &self,
                tenant: TenantId,
                id: &str,
                event: &NewAuditEvent,
            ) -> Result<$crate::__rt::store::AcmeEabKeyRecord, StoreError> {
                let mut tx = self.write_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "UPDATE acme_eab_keys SET status = 'revoked' WHERE tenant_id = $1 AND id = $2 \
                     RETURNING {ACME_EAB_COLS}"
                ))
                .bind(tenant.to_string())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(be)?
                .ok_or(StoreError::NotFound)?;
                chain(&mut *tx, &[event]).await?;
                tx.commit().await.map_err(be)?;
                acme_eab_row(&row)
            }

            async fn update_acme_account_key(
                &self,
                tenant: TenantId,
                id: &str,
                thumbprint: &str,
                jwk: &str,
                event: &NewAuditEvent,
            ) -> Result<$crate::__rt::store::AcmeAccountRecord, StoreError> {
                let mut tx = self.write_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "UPDATE acme_accounts SET thumbprint = $1, jwk = $2 WHERE tenant_id = $3 AND id = $4 \
                     RETURNING {ACME_ACCOUNT_COLS}"
                ))
                .bind(thumbprint)
                .bind(jwk)
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

            async fn insert_acme_order(
                &self,
                o: &$crate::__rt::store::AcmeOrderRecord,
                authorizations: &[$crate::__rt::store::AcmeAuthorizationRecord],
                challenges: &[$crate::__rt::store::AcmeChallengeRecord],
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx(o.tenant).await?;
                acme_insert_order_on(&mut *tx, o, authorizations, challenges).await?;
                tx.commit().await.map_err(be)
            }

            async fn acme_order(
                &self,
                tenant: TenantId,
                id: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeOrderRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "SELECT {ACME_ORDER_COLS} FROM acme_orders WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant.to_string())
                .bind(id)
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                row.as_ref().map(acme_order_row).transpose()
            }

            async fn acme_order_replacing(
                &self,
                tenant: TenantId,
                certificate_id: &str,
            ) -> Result<Option<String>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let id: Option<String> = $crate::__rt::sqlx::query_scalar(
                    "SELECT id FROM acme_orders WHERE tenant_id = $1 AND replaces = $2 AND status = 'valid' LIMIT 1",
                )
                .bind(tenant.to_string())
                .bind(certificate_id)
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                Ok(id)
            }

            async fn acme_account_orders(
                &self,
                tenant: TenantId,
                account_id: &str,
                offset: u32,
                limit: u32,
            ) -> Result<Vec<String>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let ids: Vec<String> = $crate::__rt::sqlx::query_scalar(
                    "SELECT id FROM acme_orders WHERE tenant_id = $1 AND account_id = $2 \
                     ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
                )
                .bind(tenant.to_string())
                .bind(account_id)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                Ok(ids)
            }

            async fn acme_order_authorizations(
                &self,
                tenant: TenantId,
                order_id: &str,
            ) -> Result<Vec<$crate::__rt::store::AcmeAuthorizationRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let rows = $crate::__rt::sqlx::query(&format!(
                    "SELECT {ACME_AUTHZ_COLS} FROM acme_authorizations WHERE tenant_id = $1 AND order_id = $2 ORDER BY id"
                ))
                .bind(tenant.to_string())
                .bind(order_id)
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                rows.iter().map(acme_authz_row).collect()
            }

            async fn acme_authorization(
                &self,
                tenant: TenantId,
                id: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeAuthorizationRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "SELECT {ACME_AUTHZ_COLS} FROM acme_authorizations WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant.to_string())
                .bind(id)
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                row.as_ref().map(acme_authz_row).transpose()
            }

            async fn acme_authorization_challenges(
                &self,
                tenant: TenantId,
                authz_id: &str,
            ) -> Result<Vec<$crate::__rt::store::AcmeChallengeRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let rows = $crate::__rt::sqlx::query(&format!(
                    "SELECT {ACME_CHALLENGE_COLS} FROM acme_challenges WHERE tenant_id = $1 AND authz_id = $2 ORDER BY id"
                ))
                .bind(tenant.to_string())
                .bind(authz_id)
                .fetch_all(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                rows.iter().map(acme_challenge_row).collect()
            }

            async fn acme_challenge(
                &self,
                tenant: TenantId,
                id: &str,
            ) -> Result<Option<$crate::__rt::store::AcmeChallengeRecord>, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let row = $crate::__rt::sqlx::query(&format!(
                    "SELECT {ACME_CHALLENGE_COLS} FROM acme_challenges WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant.to_string())
                .bind(id)
                .fetch_optional(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                row.as_ref().map(acme_challenge_row).transpose()
            }

            async fn apply_acme_changes(
                &self,
                tenant: TenantId,
                changes: &[$crate::__rt::store::AcmeStateChange],
                now: i64,
            ) -> Result<bool, StoreError> {
                let t = tenant.to_string();
                let mut tx = self.write_tx(tenant).await?;
                if !acme_changes_on(&mut *tx, &t, changes, now).await? {
                    tx.rollback().await.map_err(be)?;
                    return Ok(false);
                }
                tx.commit().await.map_err(be)?;
                Ok(true)
            }

            async fn apply_acme_batch(
                &self,
                tenant: TenantId,
                ops: &[$crate::__rt::store::AcmeOp],
                now: i64,
            ) -> Result<Vec<$crate::__rt::store::AcmeOpOutcome>, StoreError> {
                use $crate::__rt::store::{AcmeOp, AcmeOpOutcome};
                let t = tenant.to_string();
                let mut tx = self.write_tx(tenant).await?;
                let mut out = Vec::with_capacity(ops.len());
                for op in ops {
                    // an op that cannot change anything and then fail needs no savepoint:
                    // a nonce insert, a single compare-and-set (round trips are the cost)
                    let guarded = !matches!(op, AcmeOp::Nonce { .. })
                        && !matches!(op, AcmeOp::Changes(c) if c.len() == 1);
                    if guarded {
                        acme_savepoint(&mut *tx, "SAVEPOINT acme_op").await?;
                    }
                    let result: Result<AcmeOpOutcome, StoreError> = async {
                        Ok(match op {
                            AcmeOp::Nonce { id, expires_at } => {
                                let n = $crate::__rt::sqlx::query(
                                    "INSERT INTO acme_nonces (tenant_id, id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                )
                                .bind(&t)
                                .bind(id)
                                .bind(expires_at)
                                .execute(&mut *tx)
                                .await
                                .map_err(be)?
                                .rows_affected();
                                AcmeOpOutcome::Fresh(n == 1)
                            }
                            AcmeOp::Changes(changes) => {
                                AcmeOpOutcome::Applied(acme_changes_on(&mut *tx, &t, changes, now).await?)
                            }
                            AcmeOp::ChangesThenJob(changes, job) => {
                                let applied = acme_changes_on(&mut *tx, &t, changes, now).await?;
                                if applied {
                                    $crate::__rt::sqlx::query(
                                        "INSERT INTO jobs (tenant_id, id, kind, dedupe_key, payload, state, attempts, max_attempts, run_at, created_at, updated_at)                                          VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $8, $8) ON CONFLICT DO NOTHING",
                                    )
                                    .bind(&t)
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
                                }
                                AcmeOpOutcome::Applied(applied)
                            }
                            AcmeOp::Account(account, event) => {
                                acme_insert_account_on(&mut *tx, account, event).await?;
                                AcmeOpOutcome::Done
                            }
                            AcmeOp::Order(order, authzs, challenges) => {
                                acme_insert_order_on(&mut *tx, order, authzs, challenges).await?;
                                AcmeOpOutcome::Done
                            }
                        })
                    }
                    .await;
                    let keep = matches!(
                        result,
                        Ok(AcmeOpOutcome::Fresh(_) | AcmeOpOutcome::Done | AcmeOpOutcome::Applied(true))
                    );
                    if !guarded {
                        // a backend error here leaves the transaction unusable: fail it all
                        if let Err(e) = result {
                            return Err(e);
                        }
                    } else if keep {
                        acme_savepoint(&mut *tx, "RELEASE SAVEPOINT acme_op").await?;
                    } else {
                        acme_savepoint(&mut *tx, "ROLLBACK TO SAVEPOINT acme_op").await?;
                        acme_savepoint(&mut *tx, "RELEASE SAVEPOINT acme_op").await?;
                    }
                    out.push(result.unwrap_or_else(AcmeOpOutcome::Failed));
                }
                if ops.iter().any(|o| matches!(o, AcmeOp::Nonce { .. })) {
                    $crate::__rt::sqlx::query(
                        "DELETE FROM acme_nonces WHERE (tenant_id, id) IN \
                         (SELECT tenant_id, id FROM acme_nonces WHERE tenant_id = $1 AND expires_at < $2 LIMIT 1000)",
                    )
                    .bind(&t)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                }
                tx.commit().await.map_err(be)?;
                Ok(out)
            }

            async fn count_acme_orders_since(
                &self,
                tenant: TenantId,
                provisioner: &str,
                account: Option<&str>,
                since: i64,
            ) -> Result<u64, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let n: i64 = match account {
                    Some(account) => $crate::__rt::sqlx::query_scalar(
                        "SELECT count(*) FROM acme_orders WHERE tenant_id = $1 AND account_id = $2 AND created_at >= $3",
                    )
                    .bind(tenant.to_string())
                    .bind(account)
                    .bind(since)
                    .fetch_one(&mut *rtx)
                    .await
                    .map_err(be)?,
                    None => $crate::__rt::sqlx::query_scalar(
                        "SELECT count(*) FROM acme_orders WHERE tenant_id = $1 AND provisioner = $2 AND created_at >= $3",
                    )
                    .bind(tenant.to_string())
                    .bind(provisioner)
                    .bind(since)
                    .fetch_one(&mut *rtx)
                    .await
                    .map_err(be)?,
                };
                rtx.commit().await.map_err(be)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn count_acme_failed_validations_since(
                &self,
                tenant: TenantId,
                account: &str,
                since: i64,
            ) -> Result<u64, StoreError> {
                let mut rtx = self.read_tx(tenant).await?;
                let n: i64 = $crate::__rt::sqlx::query_scalar(
                    "SELECT count(*) FROM acme_challenges c \
                     JOIN acme_authorizations a ON a.tenant_id = c.tenant_id AND a.id = c.authz_id \
                     JOIN acme_orders o ON o.tenant_id = a.tenant_id AND o.id = a.order_id \
                     WHERE c.tenant_id = $1 AND c.status = 'invalid' AND c.updated_at >= $2 AND o.account_id = $3",
                )
                .bind(tenant.to_string())
                .bind(since)
                .bind(account)
                .fetch_one(&mut *rtx)
                .await
                .map_err(be)?;
                rtx.commit().await.map_err(be)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn consume_acme_nonces(
                &self,
                tenant: TenantId,
                nonces: &[(String, i64)],
                now: i64,
            ) -> Result<Vec<bool>, StoreError> {
                let t = tenant.to_string();
                let mut tx = self.write_tx(tenant).await?;
                let mut fresh = Vec::with_capacity(nonces.len());
                for (id, expires_at) in nonces {
                    let n = $crate::__rt::sqlx::query(
                        "INSERT INTO acme_nonces (tenant_id, id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(&t)
                    .bind(id)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?
                    .rows_affected();
                    fresh.push(n == 1);
                }
                $crate::__rt::sqlx::query(
                    "DELETE FROM acme_nonces WHERE (tenant_id, id) IN \
                     (SELECT tenant_id, id FROM acme_nonces WHERE tenant_id = $1 AND expires_at < $2 LIMIT 1000)",
                )
                .bind(&t)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                tx.commit().await.map_err(be)?;
                Ok(fresh)
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
