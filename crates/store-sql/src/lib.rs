//! The SQL both store engines share, written once as macros over the engine's concrete
//! `sqlx` database type; the engines (`trustbox-store-sqlite`, `trustbox-store-postgres`)
//! instantiate [`impl_sql_store!`] and differ only in migrations, connection setup and row
//! locking.
//!
//! [`impl_sql_store!`] holds what every aggregate shares (tenant scoping, the change feed,
//! the audit-chain append, the certificate insert, the certificate row decoder) and expands
//! one macro per repository trait of `trustbox_store`, each in its own file, inside the same
//! private scope. This crate owns no schema and opens no connection; it must never be
//! depended on by anything but an engine (the contract crate `trustbox-store` knows nothing
//! of `sqlx`; `tests/interop/tests/layering.rs` checks both).

mod acme;
mod audit;
mod certificates;
mod coordination;
mod issuers;
mod jobs;
mod revocation;
mod tenants;
mod tokens;

use trustbox_store::StoreError;

#[doc(hidden)]
pub mod __rt {
    //! What the macros name through `$crate`, so an engine needs no direct dependency on
    //! these crates for them; not a public API.
    pub use async_trait::async_trait;
    pub use futures_util::TryStreamExt;
    pub use serde_json;
    pub use sqlx;
    pub use trustbox_store as store;
    pub use trustbox_types as types;
}

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

pub use trustbox_store::rows::decode;

/// Implements [`trustbox_store::Store`] and every repository trait for `$store`, whose fields
/// `read` and `write` are pools of `$db`; `$lock` is the clause that locks a selected row for
/// update (empty where the engine serializes writers itself) and `$begin` the statement that
/// opens a write transaction (`BEGIN IMMEDIATE` on SQLite, so a transaction that reads before
/// it writes takes the write lock first and never fails when another connection commits in
/// between). Rows are encoded and chained by `trustbox_store::rows`, which the SQLite
/// group-commit writer uses too. `$store` must also have inherent methods
/// `async fn run_migrations(&self) -> Result<(), StoreError>` and
/// `async fn commit_batch(&self, batch: &[IssuanceRecord]) -> Result<(), StoreError>` (which
/// may call the generated `sqlx_commit_issuances`) and `async fn fetch_revoked_for_crl(&self,
/// tenant, issuer, shard, now) -> Result<Vec<RevokedEntry>, StoreError>` (which may call
/// the generated `sqlx_revoked_for_crl`) and `async fn read_rows<T>(&self, tenant, sql,
/// params, decode) -> Result<Vec<T>, StoreError>` (which may call the generated
/// `sqlx_read_rows`), `async fn acme_batch(&self, tenant, ops, now)` (which may call the
/// generated `sqlx_acme_batch`) and `async fn job_finish(&self, tenant, id, holder, finish,
/// now)` (which may call the generated `sqlx_finish_job`).
#[macro_export]
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, lock = $lock:literal, begin = $begin:literal, rls = $rls:literal) => {
        const _: () = {
            use $crate::__rt::sqlx::Row as _;
            use $crate::__rt::store::{
                AuditCheckpoint, AuditEvent, AuditKeyRecord, CertificateFilter, ChangeRecord, CertificateRecord, CrlPublication, CrlShardState, IssuanceRecord,
                IssuerRecord, NewAuditEvent, OcspResponderRecord, ProfileRecord, RevokeOutcome, RevokedEntry,
                SealedKeyTable, StoreError, TenantRecord, TokenRecord,
            };
            use $crate::{decode, map_sqlx_error as be};
            use $crate::__rt::store::rows::{self, SqlValue};
            use $crate::__rt::types::{
                CertificateId, CertificateStatus, IssuerId, RevocationReason, ScopeSet, TenantId, TokenId,
            };

            type Row = <$db as $crate::__rt::sqlx::Database>::Row;
            type Conn = <$db as $crate::__rt::sqlx::Database>::Connection;

            const CERT_COLS: &str = $crate::__rt::store::rows::CERTIFICATE_COLUMNS;

            fn shard_number(v: i64) -> Result<u32, StoreError> {
                u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("shard number {v}")))
            }

            fn cert_row(r: &Row) -> Result<CertificateRecord, StoreError> {
                rows::certificate(&SqlxRow(r))
            }

            /// Binds the transaction on `conn` to `tenant`: with row-level security (PostgreSQL)
            /// the database then shows and accepts only that tenant's rows until the
            /// transaction ends or another tenant is bound. A no-op where the engine has no RLS.
            async fn scope(conn: &mut Conn, tenant: TenantId) -> Result<(), StoreError> {
                if $rls {
                    $crate::__rt::sqlx::query("SELECT set_config('trustbox.tenant', $1, true)")
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
                $crate::__rt::sqlx::query(sql)
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

            /// Binds one value of a multi-row INSERT.
            fn bind_value<'args>(
                b: &mut $crate::__rt::sqlx::query_builder::Separated<'_, 'args, $db, &'static str>,
                v: SqlValue<'args>,
            ) {
                match v {
                    SqlValue::Int(x) => b.push_bind(x),
                    SqlValue::OptInt(x) => b.push_bind(x),
                    SqlValue::Text(x) => b.push_bind(x),
                    SqlValue::OptText(x) => b.push_bind(x),
                    SqlValue::Blob(x) => b.push_bind(x),
                    SqlValue::Bool(x) => b.push_bind(x),
                };
            }

            type Query<'q> = $crate::__rt::sqlx::query::Query<'q, $db, <$db as $crate::__rt::sqlx::Database>::Arguments<'q>>;

            /// Binds the next parameter of a single statement.
            fn bind_param<'q>(q: Query<'q>, v: SqlValue<'q>) -> Query<'q> {
                match v {
                    SqlValue::Int(x) => q.bind(x),
                    SqlValue::OptInt(x) => q.bind(x),
                    SqlValue::Text(x) => q.bind(x),
                    SqlValue::OptText(x) => q.bind(x),
                    SqlValue::Blob(x) => q.bind(x),
                    SqlValue::Bool(x) => q.bind(x),
                }
            }

            /// A fetched row as the shared decoders read it.
            struct SqlxRow<'r>(&'r Row);

            impl rows::RowReader for SqlxRow<'_> {
                fn text(&self, i: usize) -> Result<String, StoreError> {
                    self.0.try_get(i).map_err(be)
                }
                fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
                    self.0.try_get(i).map_err(be)
                }
                fn int(&self, i: usize) -> Result<i64, StoreError> {
                    self.0.try_get(i).map_err(be)
                }
                fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
                    self.0.try_get(i).map_err(be)
                }
                fn boolean(&self, i: usize) -> Result<bool, StoreError> {
                    self.0.try_get(i).map_err(be)
                }
                fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
                    self.0.try_get(i).map_err(be)
                }
            }

            /// Runs `sql` with `params` on `conn` and returns the rows it touched.
            async fn exec_on(conn: &mut Conn, sql: &str, params: &[SqlValue<'_>]) -> Result<u64, StoreError> {
                let mut q = $crate::__rt::sqlx::query(sql);
                for v in params {
                    q = bind_param(q, *v);
                }
                Ok(q.execute(&mut *conn).await.map_err(be)?.rows_affected())
            }

            impl $store {
                /// Reads the rows of `sql` with `params` in a read transaction bound to
                /// `tenant`, each decoded by `decode`: the `sqlx` way of the engine's
                /// `read_rows`.
                #[allow(dead_code)]
                async fn sqlx_read_rows<T>(
                    &self,
                    tenant: TenantId,
                    sql: &str,
                    params: &[SqlValue<'_>],
                    decode: fn(&dyn rows::RowReader) -> Result<T, StoreError>,
                ) -> Result<Vec<T>, StoreError> {
                    let mut rtx = self.read_tx(tenant).await?;
                    let mut q = $crate::__rt::sqlx::query(sql);
                    for v in params {
                        q = bind_param(q, *v);
                    }
                    let found = q.fetch_all(&mut *rtx).await.map_err(be)?;
                    rtx.commit().await.map_err(be)?;
                    found.iter().map(|r| decode(&SqlxRow(r))).collect()
                }

                /// The first row of [`Self::read_rows`], if any.
                async fn read_row<T>(
                    &self,
                    tenant: TenantId,
                    sql: &str,
                    params: &[SqlValue<'_>],
                    decode: fn(&dyn rows::RowReader) -> Result<T, StoreError>,
                ) -> Result<Option<T>, StoreError> {
                    Ok(self.read_rows(tenant, sql, params, decode).await?.into_iter().next())
                }
            }

            /// Runs `prefix` (an INSERT up to its `VALUES`) over `values`, one row per array,
            /// `chunk` rows per statement.
            async fn insert_rows<const N: usize>(
                tx: &mut Conn,
                prefix: &str,
                values: &[[SqlValue<'_>; N]],
                chunk: usize,
            ) -> Result<(), StoreError> {
                for part in values.chunks(chunk) {
                    let mut qb = $crate::__rt::sqlx::QueryBuilder::<$db>::new(prefix);
                    qb.push_values(part, |mut b, row| {
                        for v in row {
                            bind_value(&mut b, *v);
                        }
                    });
                    qb.build().execute(&mut *tx).await.map_err(be)?;
                }
                Ok(())
            }

            /// Appends `events` to their tenants' chains inside `tx`, locking each head
            /// ([`rows::ChainLinks`] computes the links). One multi-row INSERT per chunk of
            /// events: the writer's round trips do not grow with the batch.
            async fn chain(tx: &mut Conn, events: &[&NewAuditEvent]) -> Result<(), StoreError> {
                let select_head = [rows::SELECT_AUDIT_HEAD, $lock].concat();
                for tenant in rows::chain_order(events) {
                    scope(&mut *tx, tenant).await?;
                    let head = $crate::__rt::sqlx::query(&select_head)
                        .bind(tenant.to_string())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(be)?
                        .ok_or(StoreError::NotFound)?;
                    let links = rows::ChainLinks::new(
                        tenant,
                        head.try_get("seq").map_err(be)?,
                        head.try_get("hash").map_err(be)?,
                        events,
                    );
                    let values: Vec<[SqlValue<'_>; 10]> = links.rows().collect();
                    insert_rows(&mut *tx, rows::INSERT_AUDIT_EVENTS, &values, CHUNK).await?;
                    let update = $crate::__rt::sqlx::query(rows::UPDATE_AUDIT_HEAD);
                    let update = links.head_values().into_iter().fold(update, bind_param);
                    update.execute(&mut *tx).await.map_err(be)?;
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

            /// Inserts certificates of one tenant (the transaction is bound to it) and their SAN
            /// index rows, encoded by [`rows::CertificateRow`].
            async fn insert_tenant_certificates(tx: &mut Conn, certs: &[&CertificateRecord]) -> Result<(), StoreError> {
                let encoded: Vec<rows::CertificateRow<'_>> = certs
                    .iter()
                    .map(|c| rows::CertificateRow::new(c))
                    .collect::<Result<_, StoreError>>()?;
                let values: Vec<[SqlValue<'_>; rows::CERTIFICATE_COLUMN_COUNT]> =
                    encoded.iter().map(rows::CertificateRow::values).collect();
                insert_rows(&mut *tx, rows::INSERT_CERTIFICATES, &values, CHUNK).await?;
                let sans: Vec<[SqlValue<'_>; 3]> = encoded.iter().flat_map(rows::CertificateRow::san_rows).collect();
                insert_rows(&mut *tx, rows::INSERT_CERTIFICATE_SANS, &sans, CHUNK * 4).await
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
                    $crate::__rt::sqlx::query(
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
                async fn read_tx(&self, tenant: TenantId) -> Result<$crate::__rt::sqlx::Transaction<'_, $db>, StoreError> {
                    let mut tx = self.read.begin().await.map_err(be)?;
                    scope(&mut *tx, tenant).await?;
                    Ok(tx)
                }

                /// A write transaction bound to `tenant`.
                async fn write_tx(&self, tenant: TenantId) -> Result<$crate::__rt::sqlx::Transaction<'_, $db>, StoreError> {
                    let mut tx = self.write.begin_with($begin).await.map_err(be)?;
                    scope(&mut *tx, tenant).await?;
                    Ok(tx)
                }
            }

            #[$crate::__rt::async_trait]
            impl $crate::__rt::store::Store for $store {
                async fn migrate(&self) -> Result<(), StoreError> {
                    self.run_migrations().await
                }
            }

            $crate::__impl_sql_tenants!($store, $db, lock = $lock, begin = $begin, rls = $rls);
            $crate::__impl_sql_acme!($store, $db, lock = $lock, begin = $begin, rls = $rls);
            $crate::__impl_sql_tokens!($store, $db, lock = $lock, begin = $begin, rls = $rls);
            $crate::__impl_sql_issuers!($store, $db, lock = $lock, begin = $begin, rls = $rls);
            $crate::__impl_sql_certificates!($store, $db, lock = $lock, begin = $begin, rls = $rls);
            $crate::__impl_sql_revocation!($store, $db, lock = $lock, begin = $begin, rls = $rls);
            $crate::__impl_sql_audit!($store, $db, lock = $lock, begin = $begin, rls = $rls);
            $crate::__impl_sql_coordination!($store, $db, lock = $lock, begin = $begin, rls = $rls);
            $crate::__impl_sql_jobs!($store, $db, lock = $lock, begin = $begin, rls = $rls);
        };
    };
}
