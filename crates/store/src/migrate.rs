//! The migration runner core both engines share: which scripts are pending, and whether the
//! database's history still matches the scripts compiled into this binary.
//!
//! Every applied migration is recorded in `schema_migrations` with its name and the SHA-256
//! of its exact script bytes ([`checksum`]). Before applying anything, an engine reads that
//! table and calls [`plan`], which refuses to go on when an applied script was edited, when
//! the database knows a migration this binary does not (it is newer than the binary), or
//! when the compiled list is out of order. This module does no I/O: the engines own the
//! connection, the locking and the transactions (see `trustbox-store-sqlite` and
//! `trustbox-store-postgres`).
//!
//! Databases migrated before checksums were recorded have rows with a NULL checksum. Those
//! are *adopted*: [`adoptions`] names them and the runner records the checksum of the script
//! compiled in, trusting (it cannot check) that it is the script that was applied. From then
//! on, an edit to it is refused like any other.

use crate::StoreError;
use std::collections::HashMap;

/// One migration script, compiled into the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    /// Its position in the history; strictly increasing along the list.
    pub version: i64,
    /// The script's file name without extension (`0001_init`).
    pub name: &'static str,
    /// The script itself, exactly as applied (statements split by [`crate::split_sql`]).
    pub sql: &'static str,
}

impl Migration {
    /// The checksum recorded for this script (see [`checksum`]).
    pub fn checksum(&self) -> String {
        checksum(self.sql)
    }
}

/// One row of `schema_migrations`, as read back from the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedMigration {
    /// The version applied.
    pub version: i64,
    /// The script name recorded (NULL before checksums were recorded).
    pub name: Option<String>,
    /// The checksum recorded (NULL before checksums were recorded: adopted, see the module
    /// documentation).
    pub checksum: Option<String>,
}

impl From<(i64, Option<String>, Option<String>)> for AppliedMigration {
    /// A row of [`SELECT_APPLIED`]: `(version, name, checksum)`.
    fn from((version, name, checksum): (i64, Option<String>, Option<String>)) -> Self {
        Self {
            version,
            name,
            checksum,
        }
    }
}

/// Why the runner refuses to migrate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MigrationError {
    /// An applied migration's script differs from the one compiled in.
    #[error(
        "migration {version} ({name}) was edited after it was applied: the database recorded \
         checksum {recorded}, this binary has {compiled}; applied migrations must never be \
         edited (restore the original script and add a new migration instead)"
    )]
    Edited {
        /// The migration's version.
        version: i64,
        /// The migration's name in this binary.
        name: &'static str,
        /// The checksum the database recorded when it applied the migration.
        recorded: String,
        /// The checksum of the script compiled into this binary.
        compiled: String,
    },
    /// The database has a migration applied that this binary does not know.
    #[error(
        "the database has migration {version}{} applied, which this binary does not know \
         (it knows up to {newest_known}): the database is newer than the binary; run a \
         release that includes that migration",
        name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
    )]
    UnknownApplied {
        /// The unknown version.
        version: i64,
        /// Its recorded name, if any.
        name: Option<String>,
        /// The newest version this binary knows (0 when it knows none).
        newest_known: i64,
    },
    /// The compiled list is not in strictly increasing version order (a build defect).
    #[error(
        "migration list is not strictly increasing: version {version} ({name}) follows \
         version {previous}"
    )]
    NotIncreasing {
        /// The version before the offending entry.
        previous: i64,
        /// The offending entry's version.
        version: i64,
        /// The offending entry's name.
        name: &'static str,
    },
}

impl From<MigrationError> for StoreError {
    /// A refusal to migrate means the database does not match this binary's schema history.
    fn from(e: MigrationError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// `CREATE TABLE IF NOT EXISTS` for the history table, with every column (new databases).
/// Older tables lack `name` and `checksum`; the engines add them before reading the table.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL, name TEXT, checksum TEXT)";

/// The columns that were added after the table first shipped, with their types.
pub const ADDED_COLUMNS: &[(&str, &str)] = &[("name", "TEXT"), ("checksum", "TEXT")];

/// Reads the history: `(version, name, checksum)` rows, each an [`AppliedMigration`].
pub const SELECT_APPLIED: &str =
    "SELECT version, name, checksum FROM schema_migrations ORDER BY version";

/// Records an adopted row's name and checksum. Parameters: version, name, checksum.
pub const RECORD_ADOPTED: &str =
    "UPDATE schema_migrations SET name = $2, checksum = $3 WHERE version = $1 AND checksum IS NULL";

/// SHA-256 of the exact script bytes, lowercase hex. Any change to the file (a comment, a
/// blank line, line endings) changes it: applied scripts are frozen byte for byte.
pub fn checksum(sql: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, sql.as_bytes()))
}

/// The migrations of `known` not yet `applied`, in version order, or why migrating must not
/// go on: `known` is not strictly increasing, an applied script was edited, or an applied
/// version is unknown to this binary. An applied row with no checksum is accepted (adopted;
/// see [`adoptions`]).
pub fn plan<'a>(
    known: &'a [Migration],
    applied: &[AppliedMigration],
) -> Result<Vec<&'a Migration>, MigrationError> {
    for pair in known.windows(2) {
        if pair[1].version <= pair[0].version {
            return Err(MigrationError::NotIncreasing {
                previous: pair[0].version,
                version: pair[1].version,
                name: pair[1].name,
            });
        }
    }
    let by_version: HashMap<i64, &Migration> = known.iter().map(|m| (m.version, m)).collect();
    for row in applied {
        let Some(migration) = by_version.get(&row.version) else {
            return Err(MigrationError::UnknownApplied {
                version: row.version,
                name: row.name.clone(),
                newest_known: known.last().map_or(0, |m| m.version),
            });
        };
        if let Some(recorded) = &row.checksum {
            let compiled = migration.checksum();
            if *recorded != compiled {
                return Err(MigrationError::Edited {
                    version: migration.version,
                    name: migration.name,
                    recorded: recorded.clone(),
                    compiled,
                });
            }
        }
    }
    Ok(known
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .collect())
}

/// The applied migrations recorded without a checksum (before checksums existed), whose
/// name and current checksum the runner records ([`RECORD_ADOPTED`]) once [`plan`] has
/// accepted the history.
pub fn adoptions<'a>(known: &'a [Migration], applied: &[AppliedMigration]) -> Vec<&'a Migration> {
    known
        .iter()
        .filter(|m| {
            applied
                .iter()
                .any(|a| a.version == m.version && a.checksum.is_none())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[Migration] = &[
        Migration {
            version: 1,
            name: "0001_init",
            sql: "CREATE TABLE a (x INT);\n",
        },
        Migration {
            version: 2,
            name: "0002_more",
            sql: "CREATE TABLE b (y INT);\n",
        },
        Migration {
            version: 3,
            name: "0003_last",
            sql: "CREATE TABLE c (z INT);\n",
        },
    ];

    fn applied(version: i64) -> AppliedMigration {
        let m = KNOWN
            .iter()
            .find(|m| m.version == version)
            .expect("a known version");
        AppliedMigration {
            version,
            name: Some(m.name.into()),
            checksum: Some(m.checksum()),
        }
    }

    fn versions(pending: &[&Migration]) -> Vec<i64> {
        pending.iter().map(|m| m.version).collect()
    }

    #[test]
    fn checksum_is_sha256_hex_of_the_exact_bytes() {
        assert_eq!(
            checksum("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(checksum("SELECT 1;\n"), checksum("SELECT 1;\r\n"));
    }

    #[test]
    fn plan_returns_pending_in_order() {
        assert_eq!(versions(&plan(KNOWN, &[]).expect("plan")), [1, 2, 3]);
        assert_eq!(versions(&plan(KNOWN, &[applied(1)]).expect("plan")), [2, 3]);
        // a gap (applied out of order by an older runner) is filled
        assert_eq!(
            versions(&plan(KNOWN, &[applied(1), applied(3)]).expect("plan")),
            [2]
        );
        let all = [applied(1), applied(2), applied(3)];
        assert!(plan(KNOWN, &all).expect("plan").is_empty());
    }

    #[test]
    fn plan_refuses_an_edited_migration() {
        let mut edited = applied(2);
        edited.checksum = Some(checksum("CREATE TABLE b (y BIGINT);\n"));
        let e = plan(KNOWN, &[applied(1), edited.clone()]).expect_err("edited");
        assert_eq!(
            e,
            MigrationError::Edited {
                version: 2,
                name: "0002_more",
                recorded: edited.checksum.clone().expect("set above"),
                compiled: KNOWN[1].checksum(),
            }
        );
        let message = e.to_string();
        for part in [
            "migration 2 (0002_more)",
            &KNOWN[1].checksum(),
            edited.checksum.as_deref().expect("set above"),
            "must never be edited",
            "add a new migration instead",
        ] {
            assert!(message.contains(part), "{message:?} lacks {part:?}");
        }
    }

    #[test]
    fn plan_refuses_an_applied_version_it_does_not_know() {
        let newer = AppliedMigration {
            version: 4,
            name: Some("0004_future".into()),
            checksum: Some(checksum("x")),
        };
        let e = plan(KNOWN, &[applied(1), applied(2), applied(3), newer]).expect_err("newer");
        assert_eq!(
            e,
            MigrationError::UnknownApplied {
                version: 4,
                name: Some("0004_future".into()),
                newest_known: 3,
            }
        );
        assert!(e.to_string().contains("newer than the binary"), "{e}");
    }

    #[test]
    fn plan_refuses_a_list_out_of_order() {
        let known = [KNOWN[0], KNOWN[2], KNOWN[1]];
        assert_eq!(
            plan(&known, &[]).expect_err("out of order"),
            MigrationError::NotIncreasing {
                previous: 3,
                version: 2,
                name: "0002_more",
            }
        );
        let duplicate = [KNOWN[0], KNOWN[0]];
        assert!(matches!(
            plan(&duplicate, &[]),
            Err(MigrationError::NotIncreasing { version: 1, .. })
        ));
    }

    #[test]
    fn a_row_without_checksum_is_adopted() {
        let legacy = AppliedMigration {
            version: 1,
            name: None,
            checksum: None,
        };
        let rows = [legacy, applied(2)];
        assert_eq!(versions(&plan(KNOWN, &rows).expect("adopted")), [3]);
        assert_eq!(versions(&adoptions(KNOWN, &rows)), [1]);
        assert!(adoptions(KNOWN, &[applied(1), applied(2)]).is_empty());
    }

    #[test]
    fn refusals_surface_as_store_errors() {
        let e = StoreError::from(MigrationError::UnknownApplied {
            version: 9,
            name: None,
            newest_known: 3,
        });
        assert!(
            matches!(&e, StoreError::Corrupt(m) if m.contains("migration 9 applied")),
            "{e}"
        );
    }
}
