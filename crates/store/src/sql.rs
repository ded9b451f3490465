//! The SQL both engines share, written once as a macro over the engine's concrete `sqlx`
//! database type. Engines differ only in migrations, connection setup and row locking.

use crate::StoreError;

/// Maps a `sqlx` error to a [`StoreError`]: uniqueness violations become `Conflict`.
pub fn map_sqlx_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::RowNotFound => StoreError::NotFound,
        other => StoreError::Backend(other.to_string()),
    }
}

/// Decodes a stored id or enum, reporting corruption rather than panicking.
pub fn decode<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what} {s:?}")))
}

/// The live revoked entries of one CRL shard (served by the covering partial index
/// `certificates_revoked`). Parameters: tenant, issuer, shard, now.
pub const REVOKED_FOR_CRL: &str = "SELECT serial, revoked_at, revocation_reason, invalidity_date FROM certificates \
     WHERE tenant_id = $1 AND issuer_id = $2 AND crl_shard = $3 AND status = 'revoked' AND not_after > $4";

/// Implements [`crate::Store`] for `$store`, whose fields `read` and `write` are pools of
/// `$db`; `$lock` is the clause that locks a selected row for update (empty where the engine
/// serializes writers itself) and `$begin` the statement that opens a write transaction
/// (`BEGIN IMMEDIATE` on SQLite, so a transaction that reads before it writes takes the write
/// lock first and never fails when another connection commits in between). `$store` must also have inherent methods
/// `async fn run_migrations(&self) -> Result<(), StoreError>` and
/// `async fn commit_batch(&self, batch: &[IssuanceRecord]) -> Result<(), StoreError>` (which
/// may call the generated `sqlx_commit_issuances`) and `async fn fetch_revoked_for_crl(&self,
/// tenant, issuer, shard, now) -> Result<Vec<RevokedEntry>, StoreError>` (which may call
/// the generated `sqlx_revoked_for_crl`).
#[macro_export]
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        const _: () = {
            use ::sqlx::Row as _;
            use $crate::{
                AuditCheckpoint, AuditEvent, AuditKeyRecord, CertificateFilter, ChangeRecord, CertificateRecord, CrlPublication, CrlShardState, IssuanceRecord,
                IssuerRecord, NewAuditEvent, OcspResponderRecord, ProfileRecord, RevokeOutcome, RevokedEntry,
                SealedKeyTable, StoreError, TenantRecord, TokenRecord,
            };
            use $crate::__sql::{decode, map_sqlx_error as be};
            use ::trustbox_types::{
                CertificateId, CertificateStatus, IssuerId, RevocationReason, ScopeSet, TenantId, TokenId,
            };

            type Row = <$db as ::sqlx::Database>::Row;
            type Conn = <$db as ::sqlx::Database>::Connection;

            const CERT_COLS: &str = "id, tenant_id, issuer_id, serial, fingerprint, common_name, sans, key_algorithm, \
                not_before, not_after, status, revoked_at, revocation_reason, profile, source, der, created_at, \
                invalidity_date, crl_shard";
            const ISSUER_COLS: &str = "id, tenant_id, name, parent_id, certificate_der, common_name, key_backend, \
                key_algorithm, key_wrapped, not_before, not_after, created_at, crl_shards, ocsp_enabled";
            const RESPONDER_COLS: &str = "id, tenant_id, issuer_id, certificate_der, key_backend, key_algorithm, \
                key_wrapped, not_before, not_after, created_at";
            const SHARD_COLS: &str = "tenant_id, issuer_id, shard, revision, published_revision, crl_number, \
                this_update, next_update, refresh_at";

            fn shard_number(v: i64) -> Result<u32, StoreError> {
                u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("shard number {v}")))
            }

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
            const TOKEN_COLS: &str = "id, tenant_id, name, scopes, hash, created_at, revoked_at, expires_at";
            const AUDIT_KEY_COLS: &str = "id, tenant_id, public_key_der, key_backend, key_algorithm, key_wrapped, created_at";
            const CHECKPOINT_COLS: &str = "tenant_id, seq, hash, at_us, key_id, signature";
            const PROFILE_COLS: &str = "id, tenant_id, name, version, document, created_at";
            const AUDIT_COLS: &str = "seq, tenant_id, at_us, actor, action, resource, outcome, details, prev_hash, hash";

            fn tenant_row(r: &Row) -> Result<TenantRecord, StoreError> {
                Ok(TenantRecord {
                    id: decode("tenant id", &r.try_get::<String, _>("id").map_err(be)?)?,
                    name: r.try_get("name").map_err(be)?,
                    created_at: r.try_get("created_at").map_err(be)?,
                })
            }

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

            fn cert_row(r: &Row) -> Result<CertificateRecord, StoreError> {
                let sans: String = r.try_get("sans").map_err(be)?;
                let status: String = r.try_get("status").map_err(be)?;
                let reason: Option<String> = r.try_get("revocation_reason").map_err(be)?;
                Ok(CertificateRecord {
                    id: decode("certificate id", &r.try_get::<String, _>("id").map_err(be)?)?,
                    tenant: decode("tenant id", &r.try_get::<String, _>("tenant_id").map_err(be)?)?,
                    issuer: decode("issuer id", &r.try_get::<String, _>("issuer_id").map_err(be)?)?,
                    serial: r.try_get("serial").map_err(be)?,
                    fingerprint: r.try_get("fingerprint").map_err(be)?,
                    common_name: r.try_get("common_name").map_err(be)?,
                    sans: ::serde_json::from_str(&sans).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    key_algorithm: decode("key algorithm", &r.try_get::<String, _>("key_algorithm").map_err(be)?)?,
                    not_before: r.try_get("not_before").map_err(be)?,
                    not_after: r.try_get("not_after").map_err(be)?,
                    status: CertificateStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
                    revoked_at: r.try_get("revoked_at").map_err(be)?,
                    revocation_reason: reason.map(|s| decode::<RevocationReason>("reason", &s)).transpose()?,
                    invalidity_date: r.try_get("invalidity_date").map_err(be)?,
                    crl_shard: shard_number(r.try_get("crl_shard").map_err(be)?)?,
                    profile: r.try_get("profile").map_err(be)?,
                    source: r.try_get("source").map_err(be)?,
                    der: r.try_get("der").map_err(be)?,
                    created_at: r.try_get("created_at").map_err(be)?,
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

            /// Binds the transaction on `conn` to `tenant`: with row-level security (PostgreSQL)
            /// the database then shows and accepts only that tenant's rows until the
            /// transaction ends or another tenant is bound. A no-op where the engine has no RLS.
            async fn scope(conn: &mut Conn, tenant: TenantId) -> Result<(), StoreError> {
                if $rls {
                    ::sqlx::query("SELECT set_config('trustbox.tenant', $1, true)")
                        .bind(tenant.to_string())
                        .execute(&mut *conn)
                        .await
                        .map_err(be)?;
                }
                Ok(())
            }

            /// Appends a change to the feed inside `tx` (bound to `tenant`).
            async fn record_change(tx: &mut Conn, tenant: TenantId, kind: &str, reference: &str, at: i64) -> Result<(), StoreError> {
                let sql = if $rls {
                    "INSERT INTO changes (seq, tenant_id, kind, ref, at) VALUES (tb_next_change_seq(), $1, $2, $3, $4)"
                } else {
                    "INSERT INTO changes (tenant_id, kind, ref, at) VALUES ($1, $2, $3, $4)"
                };
                ::sqlx::query(sql)
                    .bind(tenant.to_string())
                    .bind(kind)
                    .bind(reference)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                Ok(())
            }

            /// Rows per multi-row INSERT (keeps bind parameters far below both engines' limits).
            const CHUNK: usize = 256;

            /// Appends `events` to their tenants' chains inside `tx`, locking each head. One
            /// multi-row INSERT per chunk of events: the writer's round trips do not grow with
            /// the batch.
            async fn chain(tx: &mut Conn, events: &[&NewAuditEvent]) -> Result<(), StoreError> {
                let mut tenants: Vec<TenantId> = events.iter().map(|e| e.tenant).collect();
                tenants.sort();
                tenants.dedup();
                for tenant in tenants {
                    let t = tenant.to_string();
                    scope(&mut *tx, tenant).await?;
                    let head = ::sqlx::query(concat!("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1", $lock))
                        .bind(&t)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(be)?
                        .ok_or(StoreError::NotFound)?;
                    let mut seq: i64 = head.try_get("seq").map_err(be)?;
                    let mut prev: String = head.try_get("hash").map_err(be)?;
                    let mut rows: Vec<(i64, &NewAuditEvent, String, String)> = Vec::new();
                    for e in events.iter().copied().filter(|e| e.tenant == tenant) {
                        seq += 1;
                        let hash = $crate::event_hash(
                            &prev, seq, tenant, e.at_us, &e.actor, &e.action, &e.resource, &e.outcome, &e.details,
                        );
                        rows.push((seq, e, std::mem::replace(&mut prev, hash.clone()), hash));
                    }
                    for chunk in rows.chunks(CHUNK) {
                        let mut qb = ::sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO audit_events (tenant_id, seq, at_us, actor, action, resource, outcome, details, prev_hash, hash) ",
                        );
                        qb.push_values(chunk, |mut b, (seq, e, prev_hash, hash)| {
                            b.push_bind(t.as_str())
                                .push_bind(*seq)
                                .push_bind(e.at_us)
                                .push_bind(e.actor.as_str())
                                .push_bind(e.action.as_str())
                                .push_bind(e.resource.as_str())
                                .push_bind(e.outcome.as_str())
                                .push_bind(e.details.as_str())
                                .push_bind(prev_hash.as_str())
                                .push_bind(hash.as_str());
                        });
                        qb.build().execute(&mut *tx).await.map_err(be)?;
                    }
                    ::sqlx::query("UPDATE audit_heads SET seq = $1, hash = $2 WHERE tenant_id = $3")
                        .bind(seq)
                        .bind(&prev)
                        .bind(&t)
                        .execute(&mut *tx)
                        .await
                        .map_err(be)?;
                }
                Ok(())
            }

            /// Inserts certificates and their SAN index rows, a chunk per statement.
            async fn insert_certificates(tx: &mut Conn, certs: &[&CertificateRecord]) -> Result<(), StoreError> {
                let mut tenants: Vec<TenantId> = certs.iter().map(|c| c.tenant).collect();
                tenants.sort();
                tenants.dedup();
                for tenant in tenants {
                    scope(&mut *tx, tenant).await?;
                    let own: Vec<&CertificateRecord> = certs.iter().copied().filter(|c| c.tenant == tenant).collect();
                    insert_tenant_certificates(&mut *tx, &own).await?;
                }
                Ok(())
            }

            /// Inserts certificates of one tenant (the transaction is bound to it).
            async fn insert_tenant_certificates(tx: &mut Conn, certs: &[&CertificateRecord]) -> Result<(), StoreError> {
                struct Row<'a> {
                    c: &'a CertificateRecord,
                    id: String,
                    tenant: String,
                    issuer: String,
                    sans: String,
                }
                let rows: Vec<Row<'_>> = certs
                    .iter()
                    .map(|c| {
                        Ok(Row {
                            c,
                            id: c.id.to_string(),
                            tenant: c.tenant.to_string(),
                            issuer: c.issuer.to_string(),
                            sans: ::serde_json::to_string(&c.sans).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        })
                    })
                    .collect::<Result<_, StoreError>>()?;
                for chunk in rows.chunks(CHUNK) {
                    let mut qb = ::sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO certificates (id, tenant_id, issuer_id, serial, fingerprint, common_name, sans, key_algorithm, \
                         not_before, not_after, status, revoked_at, revocation_reason, profile, source, der, created_at, \
                         invalidity_date, crl_shard) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.id.as_str())
                            .push_bind(r.tenant.as_str())
                            .push_bind(r.issuer.as_str())
                            .push_bind(r.c.serial.as_str())
                            .push_bind(r.c.fingerprint.as_str())
                            .push_bind(r.c.common_name.as_deref())
                            .push_bind(r.sans.as_str())
                            .push_bind(r.c.key_algorithm.as_str())
                            .push_bind(r.c.not_before)
                            .push_bind(r.c.not_after)
                            .push_bind(r.c.status.as_str())
                            .push_bind(r.c.revoked_at)
                            .push_bind(r.c.revocation_reason.map(|x| x.as_str()))
                            .push_bind(r.c.profile.as_str())
                            .push_bind(r.c.source.as_str())
                            .push_bind(r.c.der.as_slice())
                            .push_bind(r.c.created_at)
                            .push_bind(r.c.invalidity_date)
                            .push_bind(i64::from(r.c.crl_shard));
                    });
                    qb.build().execute(&mut *tx).await.map_err(be)?;
                }
                let mut sans: Vec<(&str, &str, String)> = Vec::new();
                for r in &rows {
                    let mut values: Vec<String> = r
                        .c
                        .sans
                        .iter()
                        .map(|s| s.split_once(':').map(|(_, v)| v).unwrap_or(s).to_ascii_lowercase())
                        .collect();
                    values.sort();
                    values.dedup();
                    sans.extend(values.into_iter().map(|v| (r.tenant.as_str(), r.id.as_str(), v)));
                }
                for chunk in sans.chunks(CHUNK * 4) {
                    let mut qb = ::sqlx::QueryBuilder::<$db>::new("INSERT INTO certificate_sans (tenant_id, certificate_id, value) ");
                    qb.push_values(chunk, |mut b, (t, id, v)| {
                        b.push_bind(*t).push_bind(*id).push_bind(v.as_str());
                    });
                    qb.build().execute(&mut *tx).await.map_err(be)?;
                }
                Ok(())
            }

            /// Creates the missing CRL shard rows `shards` of an issuer.
            async fn insert_shards(
                tx: &mut Conn,
                tenant: TenantId,
                issuer: IssuerId,
                shards: std::ops::Range<u32>,
            ) -> Result<(), StoreError> {
                let (t, i) = (tenant.to_string(), issuer.to_string());
                for shard in shards {
                    ::sqlx::query(
                        "INSERT INTO crl_shards (tenant_id, issuer_id, shard, revision, published_revision, crl_number) \
                         VALUES ($1, $2, $3, 1, 0, 0) ON CONFLICT (issuer_id, shard) DO NOTHING",
                    )
                    .bind(&t)
                    .bind(&i)
                    .bind(i64::from(shard))
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                }
                Ok(())
            }

            impl $store {
                /// A read transaction bound to `tenant`.
                async fn read_tx(&self, tenant: TenantId) -> Result<::sqlx::Transaction<'_, $db>, StoreError> {
                    let mut tx = self.read.begin().await.map_err(be)?;
                    scope(&mut *tx, tenant).await?;
                    Ok(tx)
                }

                /// A write transaction bound to `tenant`.
                async fn write_tx(&self, tenant: TenantId) -> Result<::sqlx::Transaction<'_, $db>, StoreError> {
                    let mut tx = self.write.begin_with($begin).await.map_err(be)?;
                    scope(&mut *tx, tenant).await?;
                    Ok(tx)
                }

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
                    use $crate::__sql::TryStreamExt as _;
                    let q = ::sqlx::query($crate::__sql::REVOKED_FOR_CRL)
                        .bind(tenant.to_string())
                        .bind(issuer.to_string())
                        .bind(i64::from(shard))
                        .bind(now);
                    let mut rtx = self.read_tx(tenant).await?;
                    let mut out = Vec::new();
                    let mut rows = q.fetch(&mut *rtx);
                    while let Some(r) = rows.try_next().await.map_err(be)? {
                        let reason: Option<String> = r.try_get("revocation_reason").map_err(be)?;
                        out.push(RevokedEntry {
                            serial: r.try_get("serial").map_err(be)?,
                            revoked_at: r.try_get::<Option<i64>, _>("revoked_at").map_err(be)?.unwrap_or(0),
                            reason: reason.map(|s| decode::<RevocationReason>("reason", &s)).transpose()?,
                            invalidity_date: r.try_get("invalidity_date").map_err(be)?,
                        });
                    }
                    drop(rows);
                    rtx.commit().await.map_err(be)?;
                    Ok(out)
                }

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

            #[::async_trait::async_trait]
            impl $crate::Store for $store {
                async fn migrate(&self) -> Result<(), StoreError> {
                    self.run_migrations().await
                }

                async fn create_tenant(&self, tenant: &TenantRecord, event: &NewAuditEvent) -> Result<(), StoreError> {
                    let mut tx = self.write_tx(tenant.id).await?;
                    let id = tenant.id.to_string();
                    ::sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
                        .bind(&id)
                        .bind(&tenant.name)
                        .bind(tenant.created_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(be)?;
                    ::sqlx::query("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2)")
                        .bind(&id)
                        .bind($crate::GENESIS_HASH)
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
                    ::sqlx::query(sql)
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
                    ::sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
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
                    ::sqlx::query(sql)
                        .fetch_all(&self.read)
                        .await
                        .map_err(be)?
                        .iter()
                        .map(tenant_row)
                        .collect()
                }

                async fn insert_token(&self, token: &TokenRecord, event: &NewAuditEvent) -> Result<(), StoreError> {
                    let mut tx = self.write_tx(token.tenant).await?;
                    ::sqlx::query(
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
                    ::sqlx::query(&format!("SELECT {TOKEN_COLS} FROM {from}"))
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
                    ::sqlx::query(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE tenant_id = $1 ORDER BY id"))
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
                    let done = ::sqlx::query(
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

                async fn insert_issuer(
                    &self,
                    i: &IssuerRecord,
                    ca_certificate: Option<&CertificateRecord>,
                    event: &NewAuditEvent,
                ) -> Result<(), StoreError> {
                    let mut tx = self.write_tx(i.tenant).await?;
                    ::sqlx::query(
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
                    ::sqlx::query(&format!("SELECT {ISSUER_COLS} FROM {from}"))
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
                    let done = ::sqlx::query("UPDATE issuers SET ocsp_enabled = $1 WHERE tenant_id = $2 AND id = $3")
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
                    ::sqlx::query(&format!("SELECT {ISSUER_COLS} FROM issuers WHERE tenant_id = $1 AND id = $2"))
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
                    ::sqlx::query(&format!("SELECT {ISSUER_COLS} FROM issuers WHERE tenant_id = $1 AND name = $2"))
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
                    ::sqlx::query(&format!("SELECT {ISSUER_COLS} FROM issuers WHERE tenant_id = $1 ORDER BY id"))
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
                    ::sqlx::query(
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
                    ::sqlx::query(&format!(
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
                    ::sqlx::query(&format!(
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

                async fn commit_issuances(&self, batch: &[IssuanceRecord]) -> Result<(), StoreError> {
                    self.commit_batch(batch).await
                }

                async fn certificate(&self, tenant: TenantId, id: CertificateId) -> Result<Option<CertificateRecord>, StoreError> {
                    let mut rtx = self.read_tx(tenant).await?;
                    let out = {
                    ::sqlx::query(&format!("SELECT {CERT_COLS} FROM certificates WHERE tenant_id = $1 AND id = $2"))
                        .bind(tenant.to_string())
                        .bind(id.to_string())
                        .fetch_optional(&mut *rtx)
                        .await
                        .map_err(be)?
                        .map(|r| cert_row(&r))
                        .transpose()
                };
                    rtx.commit().await.map_err(be)?;
                    out
                }

                async fn list_certificates(&self, tenant: TenantId, f: &CertificateFilter) -> Result<Vec<CertificateRecord>, StoreError> {
                    let mut rtx = self.read_tx(tenant).await?;
                    let out = {
                    let t = tenant.to_string();
                    let mut qb = ::sqlx::QueryBuilder::<$db>::new(format!("SELECT {CERT_COLS} FROM certificates WHERE tenant_id = "));
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
                            .push_bind(san.to_ascii_lowercase())
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
                    let row = ::sqlx::query(&format!(
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
                    ::sqlx::query(
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
                    ::sqlx::query("UPDATE crl_shards SET revision = revision + 1 WHERE tenant_id = $1 AND issuer_id = $2 AND shard = $3")
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

                async fn certificate_by_serial(
                    &self,
                    tenant: TenantId,
                    issuer: IssuerId,
                    serial: &str,
                ) -> Result<Option<CertificateRecord>, StoreError> {
                    let mut rtx = self.read_tx(tenant).await?;
                    let out = {
                    ::sqlx::query(&format!(
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

                async fn revoked_since(&self, tenant: TenantId, since: i64) -> Result<Vec<(IssuerId, String)>, StoreError> {
                    let mut rtx = self.read_tx(tenant).await?;
                    let out = {
                    ::sqlx::query(
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
                    let have: i64 = ::sqlx::query_scalar(
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
                    ::sqlx::query(&format!(
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
                    ::sqlx::query(&format!(
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
                    let der: Option<Option<Vec<u8>>> = ::sqlx::query_scalar(
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
                    let done = ::sqlx::query(
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
                    ::sqlx::query(
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
                    ::sqlx::query(&format!(
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

                async fn try_lease(&self, name: &str, holder: &str, now: i64, ttl: i64) -> Result<bool, StoreError> {
                    if $rls {
                        // System path: leases are system rows behind a definer function.
                        let won: bool = ::sqlx::query_scalar("SELECT tb_try_lease($1, $2, $3, $4)")
                            .bind(name)
                            .bind(holder)
                            .bind(now + ttl)
                            .bind(now)
                            .fetch_one(&self.write)
                            .await
                            .map_err(be)?;
                        return Ok(won);
                    }
                    let done = ::sqlx::query(
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

                async fn list_ocsp_responders(&self, tenant: TenantId) -> Result<Vec<OcspResponderRecord>, StoreError> {
                    let mut rtx = self.read_tx(tenant).await?;
                    let rows = ::sqlx::query(&format!(
                        "SELECT {RESPONDER_COLS} FROM ocsp_responders WHERE tenant_id = $1 ORDER BY created_at, id"
                    ))
                    .bind(tenant.to_string())
                    .fetch_all(&mut *rtx)
                    .await
                    .map_err(be)?;
                    rtx.commit().await.map_err(be)?;
                    rows.iter().map(responder_row).collect()
                }

                async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<ChangeRecord>, StoreError> {
                    // System path: every replica reads every tenant's changes (ids only).
                    let sql = if $rls {
                        "SELECT seq, tenant_id, kind, ref, at FROM tb_changes_since($1, $2)"
                    } else {
                        "SELECT seq, tenant_id, kind, ref, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2"
                    };
                    ::sqlx::query(sql)
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
                    let seq: Option<i64> = ::sqlx::query_scalar(sql).fetch_one(&self.read).await.map_err(be)?;
                    Ok(seq.unwrap_or(0))
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
                    let done = ::sqlx::query(&format!(
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

                async fn audit_head(&self, tenant: TenantId) -> Result<Option<(i64, String)>, StoreError> {
                    let mut rtx = self.read_tx(tenant).await?;
                    let row = ::sqlx::query("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
                        .bind(tenant.to_string())
                        .fetch_optional(&mut *rtx)
                        .await
                        .map_err(be)?;
                    rtx.commit().await.map_err(be)?;
                    row.map(|r| Ok((r.try_get("seq").map_err(be)?, r.try_get("hash").map_err(be)?)))
                        .transpose()
                }

                async fn insert_audit_key(&self, k: &AuditKeyRecord, event: &NewAuditEvent) -> Result<(), StoreError> {
                    let mut tx = self.write_tx(k.tenant).await?;
                    ::sqlx::query(
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
                    let rows = ::sqlx::query(&format!(
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
                    ::sqlx::query(
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
                    let rows = ::sqlx::query(&format!(
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
                    ::sqlx::query(&format!(
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
            }

            $crate::__impl_sql_jobs!($store, $db, begin = $begin, rls = $rls);
        };
    };
}
