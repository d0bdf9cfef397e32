//! SQLite storage backend for CORTEX (embedded, WAL mode).
//!
//! One writer connection behind a mutex, a pool of reader connections for parallel scans.
//! The agent memory lives in the same file (migrations 2 and 3): facts, the openings of their
//! commitments, votes, agent reputations, each fact's ledger entries, the memory version, and
//! the search index: `fact_index` keeps each fact's `cortex_core::memory::bm25::index_text`
//! (none for an erased fact) and `facts_fts` is an external-content FTS5 index over it, ranked
//! by `bm25()` (the same scores as core's `Bm25Index`). Keeping the indexed text is what lets
//! `verify` check it ([`FactStore::keeps_index_text`]). Memory rows are written in the append
//! transaction of their ledger entries.
//! Appends run in `BEGIN IMMEDIATE` transactions, so several processes sharing one database file
//! take turns and keep one linear chain. Durability: `synchronous=FULL` (the default) survives
//! power loss; `synchronous=NORMAL` (`?synchronous=normal`) survives a killed process but may lose
//! the last transactions on power loss.
//!
//! Layout: `config` (the `sqlite:` URL and [`SqliteOptions`]), `conn` (the writer and reader
//! connections and their pragmas), `schema` (migrations), `ledger` (the [`LedgerStore`] and
//! [`TileReader`] impls: entries, tiles, head, checkpoints, audit records), `memory` (the
//! [`FactStore`] impl: facts, openings, votes, agents, FTS5 search), `audit` (the whole memory
//! read in one snapshot for `verify`, and replaced in one transaction for `rebuild`), `append`
//! (the one write transaction both appends share).
//!
//! [`LedgerStore`]: cortex_core::LedgerStore
//! [`TileReader`]: cortex_core::ledger::tiles::TileReader
//! [`FactStore`]: cortex_core::FactStore
//! [`FactStore::keeps_index_text`]: cortex_core::FactStore::keeps_index_text

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod append;
mod audit;
mod config;
mod conn;
mod ledger;
mod memory;
mod schema;

pub use config::{SCHEME, SqliteOptions, Synchronous};
pub use schema::latest_schema_version;

use cortex_core::ledger::store::LedgerStore;
use cortex_core::{Error, Result};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A CORTEX store in one SQLite database file.
pub struct SqliteStore {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteStore({})", self.path.display())
    }
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::config(format!("cannot create directory {}", dir.display())).with_source(e)
            })?;
        }
        let store = SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(Self::connect(path, &options, false)?),
            readers: Mutex::new(Vec::new()),
            options,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_core::ledger::store::MigrationReport;
    use std::sync::Arc;

    #[test]
    fn sqlite_store_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicU32::new(0);
        cortex_core::testkit::store_conformance(&|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Arc::new(
                SqliteStore::open(
                    &dir.path().join(format!("t{i}.db")),
                    SqliteOptions::default(),
                )
                .unwrap(),
            )
        });
    }

    #[test]
    fn urls_and_bad_files_get_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = SqliteStore::open_url("sqlite://").unwrap_err();
        assert!(e.to_string().contains("names no database file"), "{e}");
        let e = SqliteStore::open_url(&format!("sqlite://{}/x.db?fast=1", dir.path().display()))
            .unwrap_err();
        assert!(e.to_string().contains("synchronous=full|normal"), "{e}");
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
        let e = SqliteStore::open(&junk, SqliteOptions::default()).unwrap_err();
        assert!(
            e.to_string().contains("not a usable SQLite database"),
            "{e}"
        );
        let ok = SqliteStore::open_url(&format!(
            "sqlite://{}/sub/ok.db?synchronous=normal",
            dir.path().display()
        ))
        .unwrap();
        assert_eq!(
            ok.migrate().unwrap(),
            MigrationReport {
                from_version: 4,
                to_version: 4
            }
        );
    }
}
