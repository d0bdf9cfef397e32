//! redb storage backend for CORTEX: one pure-Rust, MVCC key-value file, no C and no server.
//!
//! Every ledger row is a value keyed by its index as 8 big-endian bytes (so key order is index
//! order), holding the entry's fields and chain hashes as raw bytes: `verify` reads exactly what
//! is on disk. Tiles, the head, settings, checkpoints and receipts, audit records and the agent
//! memory (facts, their openings, votes, agents, each fact's ledger entries, the memory
//! version) are tables of the same file, written in the append's single write transaction,
//! committed with [`redb::Durability::Immediate`] (fsync before the append returns).
//!
//! Search: the BM25 postings are kept in memory ([`cortex_core::memory::bm25::Bm25Index`]), rebuilt from
//! the facts table when the store opens (erased facts left out) and updated after every
//! committed append (new facts in, erased ones out), so scores and order are core's. Nothing of
//! the index is on disk, so the store keeps no index text for `verify` to check
//! ([`FactStore::keeps_index_text`] is false). That is exact because every write to the file
//! goes through this handle:
//!
//! **One process per file.** redb locks the file when it is opened (the default
//! `ConcurrencyMode::ExclusiveWriter`), so a second process (or a second `RedbStore` on the same
//! file in one process) gets an [`ErrorKind::Unavailable`] error instead of sharing it. Within
//! the process, appends are serialized (redb allows one write transaction at a time) and reads
//! run in parallel on MVCC snapshots. Several writer processes on one ledger need the SQLite or
//! Postgres backend.
//!
//! Layout: `config` (the `redb:` URL), `db` (transactions, the writer lock, errors, the file
//! check), `schema` (the tables and their migrations), `codec` (the records' byte encodings),
//! `ledger` (the [`LedgerStore`] and [`TileReader`] impls: entries, tiles, head, checkpoints,
//! audit records), `memory` (the [`FactStore`] impl: facts, openings, votes, agents, the
//! in-memory search index, the memory scan and replacement), `append` (the one write
//! transaction both appends share), `tamper` (the raw database handle the tamper tests write
//! through).
//!
//! [`LedgerStore`]: cortex_core::LedgerStore
//! [`TileReader`]: cortex_core::ledger::tiles::TileReader
//! [`FactStore`]: cortex_core::FactStore
//! [`FactStore::keeps_index_text`]: cortex_core::FactStore::keeps_index_text

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod append;
mod codec;
mod config;
mod db;
mod ledger;
mod memory;
mod schema;
mod tamper;

pub use config::SCHEME;
pub use schema::latest_schema_version;

use cortex_core::ledger::store::LedgerStore;
use cortex_core::memory::bm25::Bm25Index;
use cortex_core::{Error, ErrorKind, Result};
use db::check_magic;
use redb::Database;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// A CORTEX store in one redb file.
pub struct RedbStore {
    path: PathBuf,
    db: Database,
    /// Serializes appends with the search-index update that follows their commit.
    writer: Mutex<()>,
    /// BM25 postings of every fact not erased, deprecated ones included.
    search: RwLock<Bm25Index>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedbStore({})", self.path.display())
    }
}

impl RedbStore {
    /// Opens (creating if needed) and migrates the redb file at `path`, and builds the search
    /// index from its facts.
    pub fn open(path: &Path) -> Result<RedbStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::config(format!("cannot create directory {}", dir.display())).with_source(e)
            })?;
        }
        check_magic(path)?;
        let db = Database::builder().create(path).map_err(|e| {
            let e: redb::Error = e.into();
            match e {
                redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "{} is open in another process (or handle): a redb file has one \
                             user at a time",
                        path.display()
                    ),
                )
                .with_source(e),
                e => Error::invalid(format!("{} is not a usable redb database", path.display()))
                    .with_source(e),
            }
        })?;
        let store = RedbStore {
            path: path.to_owned(),
            db,
            writer: Mutex::new(()),
            search: RwLock::new(Bm25Index::new()),
        };
        store.migrate()?;
        store.build_search_index()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
