//! Point reads on the calling thread: a few read-only `rusqlite` connections, each taken
//! for one statement and given back. A read from SQLite's page cache takes microseconds,
//! less than the two thread hand-offs a `sqlx` query costs (its connections live on worker
//! threads), so the hot reads (ACME accounts, orders, authorizations, challenges) run here
//! without leaving the async task. WAL readers never wait for the writer.

use crate::writer::{sql_err, Bind};
use rusqlite::{params_from_iter, Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use trustbox_store::rows::{RowReader, SqlValue};
use trustbox_store::StoreError;

/// How many idle connections are kept; more readers at once open their own.
const IDLE_MAX: usize = 8;

/// The read-only connections of one database file.
#[derive(Debug)]
pub(crate) struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Reader {
    /// Reads from the database at `path` (opened lazily).
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sql_err)?;
        conn.pragma_update(None, "mmap_size", crate::MMAP_SIZE)
            .map_err(sql_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_MAX {
            idle.push(conn);
        }
    }

    /// The rows of `sql` with `params`, each decoded by `decode`.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        params: &[SqlValue<'_>],
        decode: fn(&dyn RowReader) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.take()?;
        let found = query(&conn, sql, params, decode);
        self.give(conn);
        found
    }
}

fn query<T>(
    conn: &Connection,
    sql: &str,
    params: &[SqlValue<'_>],
    decode: fn(&dyn RowReader) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err)?;
    let mut rows = stmt
        .query(params_from_iter(params.iter().map(|v| Bind(*v))))
        .map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        out.push(decode(&LiteRow(row))?);
    }
    Ok(out)
}

/// A fetched `rusqlite` row as the shared decoders read it.
pub(crate) struct LiteRow<'a, 'r>(pub(crate) &'a rusqlite::Row<'r>);

impl RowReader for LiteRow<'_, '_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.0.get(i).map_err(sql_err)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.0.get(i).map_err(sql_err)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.0.get(i).map_err(sql_err)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.0.get(i).map_err(sql_err)
    }
    fn boolean(&self, i: usize) -> Result<bool, StoreError> {
        self.0.get(i).map_err(sql_err)
    }
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.0.get(i).map_err(sql_err)
    }
}
