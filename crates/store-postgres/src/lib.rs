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
use trustbox_store::migrate::{self, Migration};
use trustbox_store::StoreError;
use trustbox_store_sql::map_sqlx_error;

/// Migrations in order, applied under [`MIGRATION_LOCK`]. Applied scripts are frozen: their
/// checksums are recorded and checked ([`trustbox_store::migrate`]); change the schema with a
/// new migration.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_revocation",
        sql: include_str!("../migrations/0002_revocation.sql"),
    },
    Migration {
        version: 3,
        name: "0003_isolation",
        sql: include_str!("../migrations/0003_isolation.sql"),
    },
    Migration {
        version: 4,
        name: "0004_rls",
        sql: include_str!("../migrations/0004_rls.sql"),
    },
    Migration {
        version: 5,
        name: "0005_jobs",
        sql: include_str!("../migrations/0005_jobs.sql"),
    },
    Migration {
        version: 6,
        name: "0006_enrollment",
        sql: include_str!("../migrations/0006_enrollment.sql"),
    },
    Migration {
        version: 7,
        name: "0007_lean_indexes",
        sql: include_str!("../migrations/0007_lean_indexes.sql"),
    },
    Migration {
        version: 8,
        name: "0008_acme",
        sql: include_str!("../migrations/0008_acme.sql"),
    },
    Migration {
        version: 9,
        name: "0009_acme_orders",
        sql: include_str!("../migrations/0009_acme_orders.sql"),
    },
    Migration {
        version: 10,
        name: "0010_acme_lookups",
        sql: include_str!("../migrations/0010_acme_lookups.sql"),
    },
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

    /// The rows of `sql` with `params`, read in a transaction bound to `tenant` (RLS).
    async fn read_rows<T>(
        &self,
        tenant: trustbox_types::TenantId,
        sql: &str,
        params: &[trustbox_store::rows::SqlValue<'_>],
        decode: fn(&dyn trustbox_store::rows::RowReader) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.sqlx_read_rows(tenant, sql, params, decode).await
    }

    /// Records a job attempt's outcome in one transaction on the pool.
    async fn job_finish(
        &self,
        tenant: trustbox_types::TenantId,
        id: trustbox_types::JobId,
        holder: &str,
        finish: &trustbox_store::JobFinish,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.sqlx_finish_job(tenant, id, holder, finish, now).await
    }

    /// Applies an ACME write batch in one transaction on the pool.
    async fn acme_batch(
        &self,
        tenant: trustbox_types::TenantId,
        ops: &[trustbox_store::AcmeOp],
        now: i64,
    ) -> Result<Vec<trustbox_store::AcmeOpOutcome>, StoreError> {
        self.sqlx_acme_batch(tenant, ops, now).await
    }

    /// Applies the pending migrations as the owner, in one transaction under
    /// [`MIGRATION_LOCK`]: creates `schema_migrations` (or adds the columns an older one
    /// lacks), checks the applied history against [`MIGRATIONS`] ([`migrate::plan`]; a
    /// refusal changes nothing), records the checksum of rows applied before checksums were
    /// recorded ([`migrate::adoptions`]), then applies each pending script and records its
    /// name and checksum.
    async fn run_migrations(&self) -> Result<(), StoreError> {
        let mut tx = self.owner.begin().await.map_err(map_sqlx_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx_error)?;
        sqlx::query(migrate::CREATE_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx_error)?;
        // The table unqualified statements resolve to (search_path), as they do below.
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute \
             WHERE attrelid = 'schema_migrations'::regclass AND attnum > 0 AND NOT attisdropped",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx_error)?;
        for (column, kind) in migrate::ADDED_COLUMNS {
            if !columns.iter().any(|c| c == column) {
                let alter = format!(
                    "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS {column} {kind}"
                );
                sqlx::query(&alter)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx_error)?;
            }
        }
        let applied: Vec<migrate::AppliedMigration> =
            sqlx::query_as::<_, (i64, Option<String>, Option<String>)>(migrate::SELECT_APPLIED)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_sqlx_error)?
                .into_iter()
                .map(Into::into)
                .collect();
        let pending = migrate::plan(MIGRATIONS, &applied)?;
        for adopted in migrate::adoptions(MIGRATIONS, &applied) {
            sqlx::query(migrate::RECORD_ADOPTED)
                .bind(adopted.version)
                .bind(adopted.name)
                .bind(adopted.checksum())
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx_error)?;
        }
        for migration in pending {
            for statement in trustbox_store::split_sql(migration.sql) {
                sqlx::query(statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx_error)?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, applied_at, name, checksum) \
                 VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(migration.checksum())
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx_error)?;
        }
        tx.commit().await.map_err(map_sqlx_error)
    }
}

trustbox_store_sql::impl_sql_store!(
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

    type HistoryRow = (i64, i64, Option<String>, Option<String>);

    /// `schema_migrations` as stored: version, applied_at, name, checksum.
    async fn history(store: &PostgresStore) -> Vec<HistoryRow> {
        sqlx::query_as(
            "SELECT version, applied_at, name, checksum FROM schema_migrations ORDER BY version",
        )
        .fetch_all(&store.owner)
        .await
        .expect("history")
    }

    /// Version, name and checksum of each row; every one must have been recorded.
    fn recorded(rows: &[HistoryRow]) -> Vec<(i64, String, String)> {
        rows.iter()
            .map(|(v, _, n, c)| {
                (
                    *v,
                    n.clone().expect("name recorded"),
                    c.clone().expect("checksum recorded"),
                )
            })
            .collect()
    }

    fn compiled() -> Vec<(i64, String, String)> {
        MIGRATIONS
            .iter()
            .map(|m| (m.version, m.name.to_owned(), m.checksum()))
            .collect()
    }

    /// A fresh database records each migration's name and checksum; migrating it again
    /// rewrites no row.
    #[tokio::test]
    async fn migrations_record_checksums_and_a_second_run_is_a_no_op() {
        let Some(url) = testing::fresh_schema_url().await else {
            return;
        };
        let store = PostgresStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let before = history(&store).await;
        assert_eq!(recorded(&before), compiled());
        let versions = "SELECT string_agg(xmin::text, ',' ORDER BY version) FROM schema_migrations";
        let row_versions: String = sqlx::query_scalar(versions)
            .fetch_one(&store.owner)
            .await
            .expect("xmin");
        store.migrate().await.expect("second migrate");
        assert_eq!(history(&store).await, before);
        let after: String = sqlx::query_scalar(versions)
            .fetch_one(&store.owner)
            .await
            .expect("xmin");
        assert_eq!(after, row_versions, "no row rewritten on a second run");
    }

    /// Editing an applied script (here: its recorded checksum) stops `migrate` with an
    /// error naming the migration and both checksums.
    #[tokio::test]
    async fn an_edited_migration_is_refused() {
        let Some(url) = testing::fresh_schema_url().await else {
            return;
        };
        let store = PostgresStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let forged = migrate::checksum("-- not the script that was applied\n");
        sqlx::query("UPDATE schema_migrations SET checksum = $1 WHERE version = 1")
            .bind(&forged)
            .execute(&store.owner)
            .await
            .expect("edit the recorded checksum");
        let e = store.migrate().await.expect_err("an edited migration");
        let expected = migrate::MigrationError::Edited {
            version: 1,
            name: "0001_init",
            recorded: forged,
            compiled: MIGRATIONS[0].checksum(),
        };
        assert!(
            matches!(&e, StoreError::Corrupt(m) if *m == expected.to_string()),
            "{e:?}"
        );
    }

    /// A database the binary does not know all migrations of is newer than the binary.
    #[tokio::test]
    async fn a_database_newer_than_the_binary_is_refused() {
        let Some(url) = testing::fresh_schema_url().await else {
            return;
        };
        let store = PostgresStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        sqlx::query("INSERT INTO schema_migrations (version, applied_at, name, checksum) VALUES (9999, 0, '9999_future', 'x')")
            .execute(&store.owner)
            .await
            .expect("a future migration");
        let e = store.migrate().await.expect_err("a newer database");
        assert!(
            matches!(&e, StoreError::Corrupt(m) if m.contains("migration 9999 (9999_future)") && m.contains("newer than the binary")),
            "{e:?}"
        );
    }

    /// A database migrated before checksums were recorded (no `name`/`checksum` columns)
    /// gains the columns and has the compiled checksums recorded for its applied rows.
    #[tokio::test]
    async fn a_database_migrated_before_checksums_is_adopted() {
        let Some(url) = testing::fresh_schema_url().await else {
            return;
        };
        let store = PostgresStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        sqlx::query("ALTER TABLE schema_migrations DROP COLUMN checksum, DROP COLUMN name")
            .execute(&store.owner)
            .await
            .expect("the old table shape");
        store.migrate().await.expect("adopting migrate");
        assert_eq!(recorded(&history(&store).await), compiled());
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
        "jobs",
        "outbox",
        "acme_accounts",
        "acme_nonces",
        "acme_provisioners",
        "acme_eab_keys",
        "acme_orders",
        "acme_authorizations",
        "acme_challenges",
        "acme_order_windows",
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
