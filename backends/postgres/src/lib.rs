//! PostgreSQL storage backend for CORTEX.
//!
//! A pool of blocking connections (`postgres` + r2d2; the `postgres` client runs its own small
//! tokio runtime inside, so callers stay sync like every other [`Store`]). The schema matches the
//! SQLite backend's, table for table; the agent memory lives beside the ledger and its rows are
//! written in the append transaction of their ledger entries.
//!
//! **Many writers, one chain.** Every append locks the single `ledger_head` row with
//! `SELECT … FOR UPDATE` before `build` sees the head, so appends from any number of threads or
//! processes sharing one database take turns and extend one linear chain; a writer that dies
//! mid-transaction leaves nothing behind (the server rolls it back).
//!
//! **Bulk memory writes.** New facts and their openings (the content and salt of each fact's
//! commitment, in `fact_openings`) are written with `COPY … FROM STDIN` (text format), one
//! `COPY` per table per 8 MiB of text, their history events with one `INSERT … UNNEST`, and the
//! memory counters with one `UPDATE`: a batch of N facts costs a handful of round trips, not N.
//!
//! **Search.** Each fact keeps its [`cortex_core::memory::bm25::index_text`] (the exact tokens core
//! ranks), its token count, and a `tsvector` of those tokens under a GIN index; `memory_state`
//! keeps the collection statistics (facts indexed, their total tokens). One query returns the
//! statistics and every fact whose `tsvector` matches any query term (all projects: document
//! counts are over every indexed fact), with its tokens and whether it passes the filters
//! (project, validity, deprecation, author, consensus: `Fact::passes` in SQL); the document
//! counts, term frequencies and scores are computed here with core's
//! [`cortex_core::memory::bm25`] functions, so they equal
//! [`cortex_core::memory::bm25::Bm25Index`]'s bit for bit (Postgres' own `ts_rank` is not
//! BM25). A second query reads the `top_k` facts whole. Erasing a fact empties its content and
//! sets its three search columns to NULL, so it matches nothing and leaves the statistics.
//!
//! **Verification.** `scan_memory` reads every memory row in one `REPEATABLE READ` snapshot,
//! one streaming query per table, and streams each fact's indexed text for `verify` to check;
//! it checks the derived search columns and statistics against that text itself (`scan`).
//! `replace_memory` (`cortex memory rebuild`) swaps every memory table under the head lock
//! (`rebuild`).
//!
//! URL: `postgres://user:password@host:port/dbname?schema=NAME&pool_size=N` (`postgresql://`
//! too). `schema` puts every table in that schema (created if missing), so several ledgers can
//! share a database; other query options go to the `postgres` client. No TLS.
//!
//! Layout: `config` (the URL and [`PostgresConfig`]), `pool` (the r2d2 pool and the statements
//! prepared on each connection), `schema` (migrations, dropping a store's schema), `ledger` (the
//! [`LedgerStore`] and [`TileReader`] impls: entries, tiles, head, checkpoints, audit records),
//! `memory` (the [`FactStore`] impl: facts, openings, votes, agents, decoding them, writing
//! memory changes), `copy` (memory rows in `COPY`'s text format), `lexeme` (tokens as `tsvector`
//! lexemes), `search` (the ranked query), `scan` (the memory scan `verify` compares with the
//! ledger), `rebuild` (replacing the memory), `append` (the one write transaction both appends
//! share).
//!
//! [`LedgerStore`]: cortex_core::LedgerStore
//! [`TileReader`]: cortex_core::ledger::tiles::TileReader
//! [`FactStore`]: cortex_core::FactStore
//! [`Store`]: cortex_core::Store

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod append;
mod config;
mod copy;
mod ledger;
mod lexeme;
mod memory;
mod pool;
mod rebuild;
mod scan;
mod schema;
mod search;

pub use config::{PostgresConfig, SCHEME, redact};
pub use schema::latest_schema_version;

use cortex_core::Result;
use cortex_core::ledger::store::LedgerStore;
use pool::Manager;
use r2d2_postgres::r2d2::Pool;

/// A CORTEX store in a PostgreSQL database (or one schema of it).
pub struct PostgresStore {
    config: PostgresConfig,
    pool: Pool<Manager>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresStore({:?})", self.config)
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Parses a `postgres://` URL, connects, and migrates.
    pub fn open_url(url: &str) -> Result<PostgresStore> {
        Self::open(PostgresConfig::from_url(url)?)
    }

    /// Connects with `config` and migrates.
    pub fn open(config: PostgresConfig) -> Result<PostgresStore> {
        let pool = pool::connect(&config)?;
        let store = PostgresStore { config, pool };
        store.migrate()?;
        Ok(store)
    }

    /// The connection settings.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }
}
