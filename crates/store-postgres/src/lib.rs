//! The PostgreSQL engine: the scale-out store for several stateless replicas.
//!
//! Audit chain heads are locked with `SELECT ... FOR UPDATE`, so replicas append to a
//! tenant's chain one at a time; migrations take an advisory lock so replicas starting
//! together apply each migration once.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use trustbox_store::{__sql::map_sqlx_error, StoreError};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_revocation.sql")),
    (3, include_str!("../migrations/0003_isolation.sql")),
    (4, include_str!("../migrations/0004_rls.sql")),
];
/// Advisory lock key serializing migrations across replicas ("tbxmigr").
const MIGRATION_LOCK: i64 = 0x0074_6278_6d69_6772;

/// The role every server connection acts as (`SET ROLE` at connect). It owns no table, so
/// row-level security applies to it; migrations create it.
pub const APP_ROLE: &str = "trustbox_app";

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    read: PgPool,
    write: PgPool,
    /// Connections as the URL's own user (the tables' owner): migrations and statistics.
    owner: PgPool,
    /// Certificates this process has committed (see [`ANALYZE_AT`]).
    committed: Arc<AtomicU64>,
}

/// Certificate counts at which the store refreshes the planner's statistics of the
/// inventory tables once. PostgreSQL caches a generic plan per connection for each
/// foreign-key check; planned while the tables are nearly empty (a fresh schema), the check
/// of `certificate_sans (tenant_id, certificate_id)` may pick a `tenant_id`-leading index and
/// then scan every row of the tenant per SAN, until autovacuum's next ANALYZE (up to a
/// minute or more) invalidates it. ANALYZE here replans them with real statistics at once.
const ANALYZE_AT: [u64; 3] = [256, 8192, 262_144];

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`; `?options=-csearch_path%3Dschema`
    /// selects a schema). Migrations run as the URL's user, which owns the tables; every other
    /// statement runs as [`APP_ROLE`], under row-level security.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_owner(url, None).await
    }

    /// Connects with separate URLs: `owner_url` (owner of the tables; used only to migrate)
    /// and `url`, whose user must be allowed to `SET ROLE` [`APP_ROLE`] (superuser, or
    /// `GRANT trustbox_app TO that_user`) and should own nothing.
    pub async fn connect_with_owner(
        url: &str,
        owner_url: Option<&str>,
    ) -> Result<Self, StoreError> {
        let parse = |u: &str| {
            PgConnectOptions::from_str(u)
                .map_err(|e| StoreError::Backend(format!("invalid database URL: {e}")))
        };
        let app_opts = parse(url)?;
        let owner_opts = match owner_url {
            Some(o) => parse(o)?,
            None => app_opts.clone(),
        };
        let owner = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .idle_timeout(Duration::from_secs(30))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(owner_opts)
            .await
            .map_err(map_sqlx_error)?;
        // Lazy: the role exists only once migrations have run.
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::Executor::execute(&mut *conn, "SET ROLE trustbox_app").await?;
                    Ok(())
                })
            })
            .connect_lazy_with(app_opts);
        Ok(Self {
            read: pool.clone(),
            write: pool,
            owner,
            committed: Arc::default(),
        })
    }

    async fn commit_batch(
        &self,
        batch: &[trustbox_store::IssuanceRecord],
    ) -> Result<(), StoreError> {
        self.sqlx_commit_issuances(batch).await?;
        let n = batch.len() as u64;
        let before = self.committed.fetch_add(n, Ordering::Relaxed);
        if ANALYZE_AT.iter().any(|t| before < *t && before + n >= *t) {
            let owner = self.owner.clone();
            tokio::spawn(async move {
                if let Err(e) = sqlx::query("ANALYZE certificates, certificate_sans, audit_events")
                    .execute(&owner)
                    .await
                {
                    tracing::warn!(error = %e, "could not refresh planner statistics");
                }
            });
        }
        Ok(())
    }

    async fn fetch_revoked_for_crl(
        &self,
        tenant: trustbox_types::TenantId,
        issuer: trustbox_types::IssuerId,
        shard: u32,
        now: i64,
    ) -> Result<Vec<trustbox_store::RevokedEntry>, StoreError> {
        self.sqlx_revoked_for_crl(tenant, issuer, shard, now).await
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        let mut tx = self.owner.begin().await.map_err(map_sqlx_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx_error)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx_error)?;
        for (version, sql) in MIGRATIONS {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_sqlx_error)?;
            if done.is_none() {
                for statement in trustbox_store::split_sql(sql) {
                    sqlx::query(statement)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_sqlx_error)?;
                }
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)")
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx_error)?;
            }
        }
        tx.commit().await.map_err(map_sqlx_error)
    }
}

trustbox_store::impl_sql_store!(
    PostgresStore,
    sqlx::Postgres,
    lock = " FOR UPDATE",
    begin = "BEGIN",
    rls = true
);

/// Test support: a fresh schema per test on the server named by
/// `TRUSTBOX_TEST_DATABASE_URL`.
pub mod testing {
    use super::*;

    /// A URL selecting a new, empty schema on the test server, or `None` when
    /// `TRUSTBOX_TEST_DATABASE_URL` is unset. Under CI (`CI` set) a missing variable panics:
    /// a missing peer in CI is a failure, not a skip.
    pub async fn fresh_schema_url() -> Option<String> {
        let Ok(base) = std::env::var("TRUSTBOX_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "TRUSTBOX_TEST_DATABASE_URL must be set in CI: the PostgreSQL suite may not be skipped"
            );
            eprintln!("TRUSTBOX_TEST_DATABASE_URL unset: PostgreSQL tests skipped");
            return None;
        };
        let schema = format!("tb_test_{}", uuid::Uuid::new_v4().simple());
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .unwrap_or_else(|e| panic!("cannot reach TRUSTBOX_TEST_DATABASE_URL: {e}"));
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("create schema: {e}"));
        pool.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(format!("{base}{sep}options=-csearch_path%3D{schema}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trustbox_store::Store;

    #[tokio::test]
    async fn shared_suite() {
        let Some(url) = testing::fresh_schema_url().await else {
            return;
        };
        let store = PostgresStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        trustbox_store::testsuite::run_all(&store).await;
    }

    /// Every tenant-owned table, for the row-level security checks.
    const TENANT_TABLES: &[&str] = &[
        "tenants",
        "tokens",
        "issuers",
        "profiles",
        "certificates",
        "certificate_sans",
        "audit_heads",
        "audit_events",
        "crl_shards",
        "ocsp_responders",
        "audit_keys",
        "audit_checkpoints",
        "changes",
    ];

    /// Row-level security holds in the database itself: the application role with no
    /// tenant set reads nothing, and with a tenant set it can neither read, insert nor move
    /// rows of another tenant.
    #[tokio::test]
    async fn row_level_security_confines_the_application_role() {
        let Some(url) = testing::fresh_schema_url().await else {
            return;
        };
        let store = PostgresStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        trustbox_store::testsuite::run_all(&store).await;

        // the store's own connections act as the application role
        let who: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(&store.read)
            .await
            .expect("current_user");
        assert_eq!(who, APP_ROLE);

        // the owner sees every tenant; pick two with certificates
        let tenants: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT tenant_id FROM certificates ORDER BY tenant_id LIMIT 2",
        )
        .fetch_all(&store.owner)
        .await
        .expect("owner reads");
        assert_eq!(
            tenants.len(),
            2,
            "the suite left two tenants with certificates"
        );
        let (a, b) = (&tenants[0], &tenants[1]);
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM certificates")
            .fetch_one(&store.owner)
            .await
            .expect("count");
        assert!(total > 0);

        let revoked_of_b =
            "SELECT count(*) FROM certificates WHERE status = 'revoked' AND tenant_id = $1";
        let before: i64 = sqlx::query_scalar(revoked_of_b)
            .bind(b)
            .fetch_one(&store.owner)
            .await
            .expect("count");
        let mut conn = store.read.acquire().await.expect("app connection");
        for table in TENANT_TABLES {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("{table}: {e}"));
            assert_eq!(
                n, 0,
                "{table}: the application role with no tenant set reads no row"
            );
        }
        for table in ["leases", "schema_migrations", "change_counter"] {
            let e = sqlx::query(&format!("SELECT * FROM {table}"))
                .fetch_all(&mut *conn)
                .await
                .expect_err("system tables are not the application's");
            assert!(e.to_string().contains("permission denied"), "{table}: {e}");
        }

        let mut tx = sqlx::Connection::begin(&mut *conn).await.expect("begin");
        sqlx::query("SELECT set_config('trustbox.tenant', $1, true)")
            .bind(a)
            .execute(&mut *tx)
            .await
            .expect("scope");
        let theirs: i64 =
            sqlx::query_scalar("SELECT count(*) FROM certificates WHERE tenant_id = $1")
                .bind(b)
                .fetch_one(&mut *tx)
                .await
                .expect("count");
        assert_eq!(theirs, 0, "tenant a reads none of tenant b's certificates");
        let mine: i64 = sqlx::query_scalar("SELECT count(*) FROM certificates")
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert!(mine > 0 && mine < total);
        let touched =
            sqlx::query("UPDATE certificates SET status = 'revoked' WHERE tenant_id = $1")
                .bind(b)
                .execute(&mut *tx)
                .await
                .expect("update is filtered");
        assert_eq!(
            touched.rows_affected(),
            0,
            "tenant a cannot update tenant b's rows"
        );
        sqlx::query("SAVEPOINT s")
            .execute(&mut *tx)
            .await
            .expect("savepoint");
        let e = sqlx::query(
            "INSERT INTO tokens (id, tenant_id, name, scopes, hash, created_at) VALUES ('x', $1, 'n', 'admin', 'h', 0)",
        )
        .bind(b)
        .execute(&mut *tx)
        .await
        .expect_err("a raw insert into another tenant is refused");
        assert!(e.to_string().contains("row-level security"), "{e}");
        sqlx::query("ROLLBACK TO SAVEPOINT s")
            .execute(&mut *tx)
            .await
            .expect("rollback");
        let e = sqlx::query("UPDATE certificates SET tenant_id = $1")
            .bind(b)
            .execute(&mut *tx)
            .await
            .expect_err("moving a row to another tenant is refused");
        assert!(e.to_string().contains("row-level security"), "{e}");
        tx.rollback().await.expect("rollback");

        let after: i64 = sqlx::query_scalar(revoked_of_b)
            .bind(b)
            .fetch_one(&store.owner)
            .await
            .expect("count");
        assert_eq!(before, after, "nothing of tenant b changed");
    }
}
