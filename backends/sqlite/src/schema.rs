//! The schema: its migrations, in order, and the runner that applies the pending ones.

use crate::SqliteStore;
use crate::conn::sql_err;
use cortex_core::ledger::store::MigrationReport;
use cortex_core::{Error, Result};
use rusqlite::{Transaction, TransactionBehavior, params};

/// One schema migration: its SQL and, for data SQL cannot compute, a step run after the SQL in
/// the same transaction.
struct Migration {
    version: u32,
    description: &'static str,
    sql: &'static str,
    then: Option<fn(&Transaction<'_>) -> rusqlite::Result<()>>,
}

/// Schema migrations, applied in order; each runs once, in its own transaction. Never edit one
/// that has shipped: append a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "ledger: entries, tiles, checkpoints, receipts, audit records",
        sql: r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE ledger_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    size      INTEGER NOT NULL,
    last_hash BLOB NOT NULL
);
CREATE TABLE entries (
    idx       INTEGER PRIMARY KEY,
    timestamp TEXT NOT NULL,
    project   TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE TABLE merkle_tiles (
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    hashes BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE checkpoints (
    tree_size        INTEGER PRIMARY KEY,
    root_hash        TEXT NOT NULL,
    range_start      INTEGER NOT NULL,
    range_end        INTEGER NOT NULL,
    range_count      INTEGER NOT NULL,
    signed_note      TEXT NOT NULL,
    extra_signatures TEXT NOT NULL DEFAULT '[]',
    created_at       TEXT NOT NULL
);
CREATE TABLE checkpoint_receipts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tree_size  INTEGER NOT NULL REFERENCES checkpoints(tree_size),
    anchor     TEXT NOT NULL,
    target     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX checkpoint_receipts_size ON checkpoint_receipts(tree_size);
CREATE TABLE audit_exports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    export_type TEXT NOT NULL,
    filename    TEXT NOT NULL,
    file_hash   TEXT NOT NULL,
    tx_start_id INTEGER NOT NULL,
    tx_end_id   INTEGER NOT NULL,
    exported_at TEXT NOT NULL,
    exported_by TEXT NOT NULL
);
CREATE TABLE integrity_checks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    check_type   TEXT NOT NULL,
    status       TEXT NOT NULL,
    details      TEXT,
    started_at   TEXT NOT NULL,
    completed_at TEXT NOT NULL
);
"#,
        then: None,
    },
    Migration {
        version: 2,
        description: "agent memory: facts, full-text index, votes, agent reputations, fact history, version",
        sql: r#"
CREATE TABLE facts (
    id                 INTEGER PRIMARY KEY,  -- the ledger index of its fact.store entry
    project            TEXT NOT NULL,
    content            TEXT NOT NULL,
    fact_type          TEXT NOT NULL,
    tags               TEXT NOT NULL,        -- JSON array of strings
    confidence         REAL NOT NULL,
    source             TEXT,
    valid_from         TEXT NOT NULL,
    valid_until        TEXT,
    created_at         TEXT NOT NULL,
    deprecated_at      TEXT,
    deprecation_reason TEXT,
    consensus          REAL NOT NULL DEFAULT 0
);
CREATE INDEX facts_recall ON facts(project, consensus DESC, id DESC) WHERE deprecated_at IS NULL;
CREATE INDEX facts_project ON facts(project, id);
-- Contentless: holds only the index of cortex_core::memory::bm25::index_text (tokens joined by spaces,
-- which the ascii tokenizer splits exactly as core does); rowid = fact id.
CREATE VIRTUAL TABLE facts_fts USING fts5(body, content='', tokenize='ascii');
CREATE TABLE fact_votes (
    fact_id     INTEGER NOT NULL REFERENCES facts(id),
    agent       TEXT NOT NULL,
    vote        INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    reason      TEXT,
    weight      REAL NOT NULL,
    agreed      INTEGER,                   -- 1 agreed, 0 disagreed, NULL not judged
    entry_index INTEGER NOT NULL,
    voted_at    TEXT NOT NULL,
    PRIMARY KEY (fact_id, agent)
) WITHOUT ROWID;
CREATE TABLE agents (
    agent      TEXT PRIMARY KEY,
    reputation REAL NOT NULL,
    votes      INTEGER NOT NULL,
    judged     INTEGER NOT NULL,
    agreed     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE fact_events (
    fact_id     INTEGER NOT NULL,
    entry_index INTEGER NOT NULL,
    PRIMARY KEY (fact_id, entry_index)
) WITHOUT ROWID;
CREATE TABLE memory_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO memory_state (id, version) VALUES (1, 0);
"#,
        then: None,
    },
    Migration {
        version: 3,
        description: "verifiable memory: fact authors and erasure, commitment openings, the search \
                      index's text kept in fact_index (facts_fts indexes it as external content)",
        sql: r#"
ALTER TABLE facts ADD COLUMN author TEXT;     -- the agent that stored it, if declared
ALTER TABLE facts ADD COLUMN surface TEXT;    -- cli, mcp-stdio, ...; NULL before authors
ALTER TABLE facts ADD COLUMN erased_at TEXT;  -- timestamp of its fact.erase entry
DROP INDEX facts_recall;
CREATE INDEX facts_recall ON facts(project, consensus DESC, id DESC)
    WHERE deprecated_at IS NULL AND erased_at IS NULL;
-- The opening of each sealed fact's commitment; deleted when the fact is erased.
CREATE TABLE fact_openings (
    fact_id INTEGER PRIMARY KEY REFERENCES facts(id),
    salt    TEXT NOT NULL,                -- 64 hex digits
    content TEXT NOT NULL,
    tags    TEXT NOT NULL,                -- JSON array of strings
    source  TEXT
);
-- The search index's source text: cortex_core::memory::bm25::index_text of each fact that is
-- not erased (tokens joined by spaces, which the ascii tokenizer splits exactly as core does).
-- Kept so that verify can compare it with the facts, and FTS5 can check its index against it.
CREATE TABLE fact_index (
    fact_id INTEGER PRIMARY KEY,
    body    TEXT NOT NULL
);
DROP TABLE facts_fts;
CREATE VIRTUAL TABLE facts_fts USING fts5(
    body, content='fact_index', content_rowid='fact_id', tokenize='ascii'
);
"#,
        then: Some(index_existing_facts),
    },
];

/// Migration 3's data: the index text of every fact (none is erased yet), then the FTS5 index
/// rebuilt from it.
fn index_existing_facts(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut read = tx.prepare("SELECT id, content, tags FROM facts ORDER BY id")?;
    let mut write = tx.prepare("INSERT INTO fact_index (fact_id, body) VALUES (?1, ?2)")?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let tags: String = r.get(2)?;
        let tags: Vec<String> = serde_json::from_str(&tags).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?;
        let body = cortex_core::memory::bm25::index_text(r.get_ref(1)?.as_str()?, &tags);
        write.execute(params![r.get::<_, i64>(0)?, body])?;
    }
    tx.execute_batch("INSERT INTO facts_fts (facts_fts) VALUES ('rebuild')")
}

/// The newest schema version this build knows.
pub fn latest_schema_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

impl SqliteStore {
    /// Applies the pending migrations, each in its own `BEGIN IMMEDIATE` transaction
    /// ([`LedgerStore::migrate`](cortex_core::LedgerStore::migrate)).
    pub(crate) fn apply_migrations(&self) -> Result<MigrationReport> {
        let mut conn = self.writer()?;
        let e = sql_err(&self.path);
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .map_err(&e)?;
        let from: u32 = conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(&e)?;
        let latest = latest_schema_version();
        if from > latest {
            return Err(Error::config(format!(
                "{} has schema version {from}, newer than this cortex supports ({latest}); upgrade cortex",
                self.path.display()
            )));
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > from) {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&e)?;
            // Another process may have migrated while we waited for the lock.
            let done: bool = tx
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)",
                    [m.version],
                    |r| r.get(0),
                )
                .map_err(&e)?;
            if !done {
                tx.execute_batch(m.sql).map_err(&e)?;
                if let Some(then) = m.then {
                    then(&tx).map_err(&e)?;
                }
                tx.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
                    params![m.version, m.description, cortex_core::ledger::entry::now_timestamp()],
                )
                .map_err(&e)?;
            }
            tx.commit().map_err(&e)?;
        }
        Ok(MigrationReport {
            from_version: from,
            to_version: latest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteOptions;
    use rusqlite::Connection;
    use std::sync::Arc;

    #[test]
    fn a_version_1_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, \
                 description TEXT NOT NULL, applied_at TEXT NOT NULL);",
            )
            .unwrap();
            c.execute_batch(MIGRATIONS[0].sql).unwrap();
            c.execute(
                "INSERT INTO schema_migrations VALUES (1, 'v1', '2026-01-01T00:00:00.000000Z')",
                [],
            )
            .unwrap();
        }
        let store: cortex_core::DynStore =
            Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
        let ledger =
            Arc::new(cortex_core::Ledger::open(store.clone(), Default::default()).unwrap());
        let memory = cortex_core::AgentMemory::new(store.clone(), ledger).unwrap();
        let id = memory
            .store_fact(&cortex_core::NewFact::new("p", "upgraded"))
            .unwrap()
            .facts[0]
            .id;
        assert_eq!(memory.fact(id).unwrap().content, "upgraded");
        assert_eq!(store.memory_version().unwrap(), 1);
    }
}
