//! The SQLite engine: the embedded, zero-configuration default.
//!
//! One database file in WAL mode with `synchronous=FULL`: a commit is on disk before it
//! returns. Issuance batches (group commit) are written by a dedicated writer thread
//! ([`writer`]) in one transaction each; other writes use a single `sqlx` connection, and
//! reads a small pool of read-only connections that never block the writer.

mod writer;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;
use trustbox_store::{__sql::map_sqlx_error, StoreError};

/// Migrations in order; each runs once, in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/0001_init.sql"))];

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    writer: writer::Writer,
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
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(map_sqlx_error)?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(true))
            .await
            .map_err(map_sqlx_error)?;
        let writer = writer::Writer::open(path)?;
        Ok(Self {
            read,
            write,
            writer,
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

    async fn run_migrations(&self) -> Result<(), StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&self.write)
            .await
            .map_err(map_sqlx_error)?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.write.begin().await.map_err(map_sqlx_error)?;
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
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, strftime('%s','now'))")
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx_error)?;
            }
            tx.commit().await.map_err(map_sqlx_error)?;
        }
        Ok(())
    }
}

trustbox_store::impl_sql_store!(SqliteStore, sqlx::Sqlite, lock = "");

#[cfg(test)]
mod tests {
    use super::*;
    use trustbox_store::Store;

    #[tokio::test]
    async fn shared_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        trustbox_store::testsuite::run_all(&store).await;
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
