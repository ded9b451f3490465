//! The SQLite engine: the embedded, zero-configuration default.
//!
//! One database file in WAL mode with `synchronous=FULL`: a commit is on disk before it
//! returns. Issuance batches and ACME write batches (group commit) are written by a
//! dedicated writer thread ([`writer`]) in one transaction each; other writes use a single
//! `sqlx` connection. Reads use a small pool of read-only `sqlx` connections, and the hot
//! point reads ([`reader`]) read-only `rusqlite` connections on the calling thread; neither
//! blocks the writer.

mod reader;
mod writer;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;
use trustbox_store::migrate::{self, Migration};
use trustbox_store::StoreError;
use trustbox_store_sql::map_sqlx_error;

/// Migrations in order; each runs once, in its own transaction. Applied scripts are frozen:
/// their checksums are recorded and checked ([`trustbox_store::migrate`]); change the schema
/// with a new migration.
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
        name: "0004_jobs",
        sql: include_str!("../migrations/0004_jobs.sql"),
    },
    Migration {
        version: 5,
        name: "0005_enrollment",
        sql: include_str!("../migrations/0005_enrollment.sql"),
    },
    Migration {
        version: 6,
        name: "0006_lean_indexes",
        sql: include_str!("../migrations/0006_lean_indexes.sql"),
    },
    Migration {
        version: 7,
        name: "0007_acme",
        sql: include_str!("../migrations/0007_acme.sql"),
    },
    Migration {
        version: 8,
        name: "0008_acme_orders",
        sql: include_str!("../migrations/0008_acme_orders.sql"),
    },
    Migration {
        version: 9,
        name: "0009_acme_lookups",
        sql: include_str!("../migrations/0009_acme_lookups.sql"),
    },
];
/// Migrations that rebuild referenced tables: run with foreign-key enforcement off (it
/// cannot change inside a transaction) and checked with `foreign_key_check` before commit.
const REBUILDS: &[i64] = &[3];

/// How much of the database file each connection maps into memory (`PRAGMA mmap_size`):
/// a page read is then a memory access, not a `pread` copy, which matters because every
/// commit empties the page cache of every other connection.
pub(crate) const MMAP_SIZE: &str = "268435456";

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    writer: writer::Writer,
    reader: std::sync::Arc<reader::Reader>,
    path: std::path::PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .statement_cache_capacity(256)
            .pragma("temp_store", "memory")
            .pragma("mmap_size", MMAP_SIZE)
            .foreign_keys(true);
        // A file connection cannot go stale: no ping (a round trip to the connection's
        // worker thread) before each acquire.
        let write = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(map_sqlx_error)?;
        let read = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(4)
            .connect_with(base.read_only(true))
            .await
            .map_err(map_sqlx_error)?;
        let writer = writer::Writer::open(path)?;
        Ok(Self {
            read,
            write,
            writer,
            reader: std::sync::Arc::new(reader::Reader::new(path)),
            path: path.to_owned(),
        })
    }

    async fn commit_batch(
        &self,
        batch: &[trustbox_store::IssuanceRecord],
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.writer.commit(batch.to_vec()).await
    }

    /// A CRL shard's live revoked entries, read in bulk on a blocking thread through a
    /// read-only connection of its own (about five times faster than row-by-row through
    /// `sqlx` for a million entries, and it never waits for or blocks the writer).
    async fn fetch_revoked_for_crl(
        &self,
        tenant: trustbox_types::TenantId,
        issuer: trustbox_types::IssuerId,
        shard: u32,
        now: i64,
    ) -> Result<Vec<trustbox_store::RevokedEntry>, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            writer::revoked_for_crl(&path, tenant, issuer, shard, now)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    /// The rows of `sql` with `params`, read on the calling thread ([`reader`]); SQLite has
    /// no row-level security, the statement's own tenant filter scopes it.
    async fn read_rows<T>(
        &self,
        _tenant: trustbox_types::TenantId,
        sql: &str,
        params: &[trustbox_store::rows::SqlValue<'_>],
        decode: fn(&dyn trustbox_store::rows::RowReader) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.reader.rows(sql, params, decode)
    }

    /// Records a job attempt's outcome on the group-commit writer thread (one writer: no
    /// wait for the write lock behind the group commits).
    async fn job_finish(
        &self,
        tenant: trustbox_types::TenantId,
        id: trustbox_types::JobId,
        holder: &str,
        finish: &trustbox_store::JobFinish,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.writer
            .finish_job(tenant, id, holder.to_owned(), finish.clone(), now)
            .await
    }

    /// Applies an ACME write batch on the group-commit writer thread, in one transaction.
    async fn acme_batch(
        &self,
        tenant: trustbox_types::TenantId,
        ops: &[trustbox_store::AcmeOp],
        now: i64,
    ) -> Result<Vec<trustbox_store::AcmeOpOutcome>, StoreError> {
        self.writer.acme_batch(tenant, ops.to_vec(), now).await
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        use sqlx::Connection as _;
        let mut conn = self.write.acquire().await.map_err(map_sqlx_error)?;
        let pending = Self::plan_migrations(&mut conn).await?;
        for migration in pending {
            let rebuild = REBUILDS.contains(&migration.version);
            if rebuild {
                sqlx::query("PRAGMA foreign_keys = OFF")
                    .execute(&mut *conn)
                    .await
                    .map_err(map_sqlx_error)?;
            }
            let result = Self::migrate_one(&mut conn, migration, rebuild).await;
            if rebuild {
                sqlx::query("PRAGMA foreign_keys = ON")
                    .execute(&mut *conn)
                    .await
                    .map_err(map_sqlx_error)?;
            }
            result?;
        }
        let _ = conn.ping().await;
        Ok(())
    }

    /// Creates `schema_migrations` (or adds the columns an older one lacks), checks the
    /// applied history against [`MIGRATIONS`] ([`migrate::plan`]), records the checksum of
    /// rows applied before checksums were recorded ([`migrate::adoptions`]) and returns the
    /// pending migrations; all in one transaction, so a refusal changes nothing.
    async fn plan_migrations(
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<Vec<&'static Migration>, StoreError> {
        use sqlx::Connection as _;
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx_error)?;
        sqlx::query(migrate::CREATE_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx_error)?;
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('schema_migrations')")
                .fetch_all(&mut *tx)
                .await
                .map_err(map_sqlx_error)?;
        for (column, kind) in migrate::ADDED_COLUMNS {
            if !columns.iter().any(|c| c == column) {
                let alter = format!("ALTER TABLE schema_migrations ADD COLUMN {column} {kind}");
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
        tx.commit().await.map_err(map_sqlx_error)?;
        Ok(pending)
    }

    /// Applies `migration` unless it was applied already (by another process since
    /// [`Self::plan_migrations`]), in one transaction, recording its name and checksum.
    async fn migrate_one(
        conn: &mut sqlx::SqliteConnection,
        migration: &Migration,
        check_foreign_keys: bool,
    ) -> Result<(), StoreError> {
        use sqlx::Connection as _;
        let version = migration.version;
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx_error)?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_sqlx_error)?;
        if done.is_some() {
            return tx.commit().await.map_err(map_sqlx_error);
        }
        for statement in trustbox_store::split_sql(migration.sql) {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx_error)?;
        }
        if check_foreign_keys {
            let broken = sqlx::query("PRAGMA foreign_key_check")
                .fetch_all(&mut *tx)
                .await
                .map_err(map_sqlx_error)?;
            if !broken.is_empty() {
                return Err(StoreError::Corrupt(format!(
                    "migration {version}: {} row(s) reference another tenant's or a missing row",
                    broken.len()
                )));
            }
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at, name, checksum) \
             VALUES ($1, strftime('%s','now'), $2, $3)",
        )
        .bind(version)
        .bind(migration.name)
        .bind(migration.checksum())
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx_error)?;
        tx.commit().await.map_err(map_sqlx_error)
    }
}

trustbox_store_sql::impl_sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    lock = "",
    begin = "BEGIN IMMEDIATE",
    rls = false
);

#[cfg(test)]
mod tests {
    use super::*;
    use trustbox_store::Store;

    /// An audit event of `tenant` at `at_us`.
    fn event(
        tenant: trustbox_types::TenantId,
        at_us: i64,
        action: &str,
    ) -> trustbox_store::NewAuditEvent {
        trustbox_store::NewAuditEvent {
            tenant,
            at_us,
            actor: "t".into(),
            action: action.into(),
            resource: "r".into(),
            outcome: "success".into(),
            details: "{}".into(),
        }
    }

    /// A new tenant with one root issuer of `crl_shards` shards (events at `at_us`).
    async fn tenant_with_issuer(
        store: &SqliteStore,
        at_us: i64,
        crl_shards: u32,
    ) -> (trustbox_types::TenantId, trustbox_store::IssuerRecord) {
        use trustbox_store::*;
        use trustbox_types::*;
        let tenant = TenantId::generate();
        store
            .create_tenant(
                &TenantRecord {
                    id: tenant,
                    name: "t".into(),
                    created_at: 1,
                },
                &event(tenant, at_us, "tenant.create"),
            )
            .await
            .expect("tenant");
        let issuer = IssuerRecord {
            id: IssuerId::generate(),
            tenant,
            name: "ca".into(),
            parent: None,
            certificate_der: vec![0x30, 0],
            common_name: "ca".into(),
            key_backend: "sealed-v1".into(),
            key_algorithm: KeyAlgorithm::EcdsaP256,
            key_wrapped: vec![1],
            not_before: 0,
            not_after: 9,
            created_at: 1,
            crl_shards,
            ocsp_enabled: true,
        };
        store
            .insert_issuer(&issuer, None, &event(tenant, at_us, "issuer.create"))
            .await
            .expect("issuer");
        (tenant, issuer)
    }

    #[tokio::test]
    async fn shared_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        trustbox_store::testsuite::run_all(&store).await;
    }

    /// Revocations and token writes (sqlx connection) interleave with group commits (writer
    /// thread) without "database is locked" failures.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_interleave_without_busy_errors() {
        use trustbox_store::*;
        use trustbox_types::*;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = std::sync::Arc::new(
            SqliteStore::open(&dir.path().join("t.db"))
                .await
                .expect("open"),
        );
        store.migrate().await.expect("migrate");
        let (tenant, issuer) = tenant_with_issuer(&store, 1, 1).await;
        let ev = move |action: &str| event(tenant, 1, action);
        let issuer_id = issuer.id;
        let record = move |n: u32| IssuanceRecord {
            certificate: CertificateRecord {
                id: CertificateId::generate(),
                tenant,
                issuer: issuer_id,
                serial: format!("{n:08x}"),
                fingerprint: format!("fp{n}"),
                common_name: None,
                sans: vec![format!("dns:h{n}.example.com")],
                key_algorithm: KeyAlgorithm::EcdsaP256,
                not_before: 0,
                not_after: 9,
                status: CertificateStatus::Valid,
                revoked_at: None,
                revocation_reason: None,
                invalidity_date: None,
                crl_shard: 0,
                profile: "p@1".into(),
                source: "api".into(),
                der: vec![0x30, 0],
                created_at: 1,
                enrollment: None,
                idempotency_key: None,
                replaces: None,
            },
            event: ev("certificate.issue"),
        };
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..100u32 {
                    let batch: Vec<IssuanceRecord> =
                        (0..20).map(|i| record(1000 + b * 20 + i)).collect();
                    store.commit_issuances(&batch).await.expect("group commit");
                }
            })
        };
        for n in 0..100u32 {
            let rec = record(n);
            store
                .commit_issuances(std::slice::from_ref(&rec))
                .await
                .expect("commit");
            store
                .revoke_certificate(
                    tenant,
                    rec.certificate.id,
                    5,
                    RevocationReason::Superseded,
                    None,
                    &ev("certificate.revoke"),
                )
                .await
                .expect("revocation interleaved with group commits");
        }
        writer.await.expect("writer task");
        let events = store.list_audit(tenant, 0, 10_000).await.expect("audit");
        assert_eq!(events.len(), 1 + 1 + 2000 + 200);
        verify_events(0, GENESIS_HASH.into(), &events).expect("one intact chain");
    }

    /// The group-commit writer (rusqlite) and the shared `sqlx` insert store the same rows
    /// for the same certificate: the same columns, the same SAN index values, and events
    /// that continue one chain whichever path appended them.
    #[tokio::test]
    async fn the_writer_and_the_sqlx_path_store_the_same_rows() {
        use trustbox_store::*;
        use trustbox_types::*;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let (tenant, issuer) = tenant_with_issuer(&store, 7, 4).await;
        let ev = |action: &str| event(tenant, 7, action);
        let issuance = |serial: &str| IssuanceRecord {
            certificate: CertificateRecord {
                id: CertificateId::generate(),
                tenant,
                issuer: issuer.id,
                serial: serial.into(),
                fingerprint: format!("fp{serial}"),
                common_name: Some("Host.Example.com".into()),
                sans: vec![
                    "dns:Host.Example.com".into(),
                    "dns:host.example.com".into(),
                    "ip:2001:DB8::1".into(),
                ],
                key_algorithm: KeyAlgorithm::EcdsaP256,
                not_before: 2,
                not_after: 9,
                status: CertificateStatus::Valid,
                revoked_at: None,
                revocation_reason: None,
                invalidity_date: Some(3),
                crl_shard: 3,
                profile: "p@1".into(),
                source: "api".into(),
                der: vec![0x30, 1, 2],
                created_at: 4,
                enrollment: None,
                idempotency_key: None,
                replaces: None,
            },
            event: ev("certificate.issue"),
        };
        let (by_writer, by_sqlx) = (issuance("01"), issuance("02"));
        store
            .commit_issuances(std::slice::from_ref(&by_writer))
            .await
            .expect("writer");
        store
            .sqlx_commit_issuances(std::slice::from_ref(&by_sqlx))
            .await
            .expect("sqlx");

        for rec in [&by_writer, &by_sqlx] {
            let c = &rec.certificate;
            let stored = store
                .certificate(tenant, c.id)
                .await
                .expect("read")
                .expect("stored");
            assert_eq!(&stored, c, "serial {}", c.serial);
            let sans: Vec<String> = sqlx::query_scalar(
                "SELECT value FROM certificate_sans WHERE tenant_id = $1 AND certificate_id = $2 ORDER BY value",
            )
            .bind(tenant.to_string())
            .bind(c.id.to_string())
            .fetch_all(&store.read)
            .await
            .expect("sans");
            assert_eq!(
                sans,
                ["2001:db8::1", "host.example.com"],
                "serial {}",
                c.serial
            );
        }
        // Each column as an SQL literal (`quote`), which shows its storage type too.
        let quoted: Vec<String> = trustbox_store::rows::CERTIFICATE_COLUMNS
            .split(", ")
            .filter(|c| !["id", "serial", "fingerprint"].contains(c))
            .map(|c| format!("quote({c})"))
            .collect();
        let raw: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT {} FROM certificates WHERE tenant_id = $1 ORDER BY serial",
            quoted.join(" || '|' || ")
        ))
        .bind(tenant.to_string())
        .fetch_all(&store.read)
        .await
        .expect("raw rows");
        assert_eq!(raw.len(), 2);
        assert_eq!(
            raw[0], raw[1],
            "every column but id, serial and fingerprint is stored alike, typed alike"
        );
        assert!(
            raw[0].contains("X'300102'") && raw[0].contains("|3|"),
            "{}",
            raw[0]
        );

        let events = store.list_audit(tenant, 0, 100).await.expect("audit");
        assert_eq!(events.len(), 4);
        verify_events(0, GENESIS_HASH.into(), &events).expect("one intact chain");
        let head = store
            .audit_head(tenant)
            .await
            .expect("head")
            .expect("a head");
        assert_eq!(head, (4, events[3].hash.clone()));
    }

    /// `schema_migrations` as stored: version, applied_at, name, checksum.
    async fn history(store: &SqliteStore) -> Vec<(i64, i64, Option<String>, Option<String>)> {
        sqlx::query_as(
            "SELECT version, applied_at, name, checksum FROM schema_migrations ORDER BY version",
        )
        .fetch_all(&store.write)
        .await
        .expect("history")
    }

    /// The history a fully migrated database records: every migration with its checksum.
    fn recorded(rows: &[(i64, i64, Option<String>, Option<String>)]) -> Vec<(i64, String, String)> {
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

    async fn schema_version(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("PRAGMA schema_version")
            .fetch_one(&store.write)
            .await
            .expect("schema_version")
    }

    /// A fresh database records each migration's name and checksum; migrating it again
    /// changes neither the history nor the schema.
    #[tokio::test]
    async fn migrations_record_checksums_and_a_second_run_is_a_no_op() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let before = history(&store).await;
        assert_eq!(recorded(&before), compiled());
        let schema = schema_version(&store).await;
        store.migrate().await.expect("second migrate");
        assert_eq!(history(&store).await, before);
        assert_eq!(
            schema_version(&store).await,
            schema,
            "no DDL on a second run"
        );
    }

    /// Editing an applied script (here: its recorded checksum) stops `migrate` with an
    /// error naming the migration and both checksums.
    #[tokio::test]
    async fn an_edited_migration_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let forged = migrate::checksum("-- not the script that was applied\n");
        sqlx::query("UPDATE schema_migrations SET checksum = $1 WHERE version = 1")
            .bind(&forged)
            .execute(&store.write)
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
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        sqlx::query("INSERT INTO schema_migrations (version, applied_at, name, checksum) VALUES (9999, 0, '9999_future', 'x')")
            .execute(&store.write)
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
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        for column in ["checksum", "name"] {
            sqlx::query(&format!(
                "ALTER TABLE schema_migrations DROP COLUMN {column}"
            ))
            .execute(&store.write)
            .await
            .expect("the old table shape");
        }
        store.migrate().await.expect("adopting migrate");
        assert_eq!(recorded(&history(&store).await), compiled());
    }

    #[tokio::test]
    async fn uses_wal_and_full_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.write)
            .await
            .expect("pragma");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.write)
            .await
            .expect("pragma");
        assert_eq!((mode.as_str(), sync), ("wal", 2));
    }
}
