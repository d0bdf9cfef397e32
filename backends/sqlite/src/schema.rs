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
    Migration {
        version: 4,
        description: "search: index text re-derived with the folding, stemming tokenizer; BM25 \
                      collection statistics kept in memory_state; fact vectors for semantic search",
        sql: r#"
-- The BM25 collection statistics: facts indexed and their tokens (tokens are separated by single
-- spaces in fact_index.body), kept by triggers so no write path can forget them.
ALTER TABLE memory_state ADD COLUMN docs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE memory_state ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER fact_index_counts_insert AFTER INSERT ON fact_index BEGIN
    UPDATE memory_state SET docs = docs + 1, tokens = tokens + (CASE WHEN NEW.body = '' THEN 0
        ELSE length(NEW.body) - length(replace(NEW.body, ' ', '')) + 1 END) WHERE id = 1;
END;
CREATE TRIGGER fact_index_counts_delete AFTER DELETE ON fact_index BEGIN
    UPDATE memory_state SET docs = docs - 1, tokens = tokens - (CASE WHEN OLD.body = '' THEN 0
        ELSE length(OLD.body) - length(replace(OLD.body, ' ', '')) + 1 END) WHERE id = 1;
END;
CREATE TRIGGER fact_index_counts_update AFTER UPDATE OF body ON fact_index BEGIN
    UPDATE memory_state SET tokens = tokens
        - (CASE WHEN OLD.body = '' THEN 0
           ELSE length(OLD.body) - length(replace(OLD.body, ' ', '')) + 1 END)
        + (CASE WHEN NEW.body = '' THEN 0
           ELSE length(NEW.body) - length(replace(NEW.body, ' ', '')) + 1 END) WHERE id = 1;
END;
-- A derived index, never signed: each fact's embedding by the model named, as little-endian
-- f32s. Deleted with the fact's content when it is erased.
CREATE TABLE fact_vectors (
    fact_id INTEGER PRIMARY KEY,
    model   TEXT NOT NULL,
    vector  BLOB NOT NULL
);
"#,
        then: Some(reindex_facts),
    },
];

/// Migration 4's data: the index text made anew with this build's tokenizer, and the collection
/// statistics counted from it (the triggers count changes, not what was there before them).
fn reindex_facts(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    index_existing_facts(tx)?;
    tx.execute_batch(
        "UPDATE memory_state SET docs = (SELECT COUNT(*) FROM fact_index), tokens = (SELECT \
         COALESCE(SUM(CASE WHEN body = '' THEN 0 \
         ELSE length(body) - length(replace(body, ' ', '')) + 1 END), 0) FROM fact_index) \
         WHERE id = 1",
    )
}

/// Migrations 3's and 4's data: the index text of every fact not erased (made anew with this
/// build's tokenizer), then the FTS5 index rebuilt from it. A row that does not decode (tags that are not a JSON list, content that is
/// not text) is indexed from what can be read rather than failing the upgrade: `verify` then
/// reports that row, which it could not if the database no longer opened.
fn index_existing_facts(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("DELETE FROM fact_index")?;
    let mut read =
        tx.prepare("SELECT id, content, tags FROM facts WHERE erased_at IS NULL ORDER BY id")?;
    let mut write = tx.prepare("INSERT INTO fact_index (fact_id, body) VALUES (?1, ?2)")?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let text = |i| {
            r.get_ref(i)
                .ok()
                .and_then(|v| v.as_str().ok())
                .unwrap_or("")
        };
        let tags: Vec<String> = serde_json::from_str(text(2)).unwrap_or_default();
        let body = cortex_core::memory::bm25::index_text(text(1), &tags);
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

    /// A database as version 2 left it: a ledger with memory entries in the forms written
    /// before erasure and authors existed (plain `fact.store` details, votes and a deprecation
    /// without an author), and the memory rows version 2 derived from them (the replay's, which
    /// version 2's conformance suite held it to), its FTS5 index contentless.
    fn version_2_database(path: &std::path::Path) {
        use cortex_core::memory::fact::{DeprecateDetail, VoteDetail};
        use cortex_core::memory::replay::Replay;
        use cortex_core::{Ledger, LedgerStore, NewEntry, NewFact};
        // The ledger tables are the same in every version: write them through today's store
        // into a scratch file, then copy them over.
        let scratch = path.with_extension("scratch");
        let store = Arc::new(SqliteStore::open(&scratch, SqliteOptions::default()).unwrap());
        let ledger = Ledger::open(store.clone(), Default::default()).unwrap();
        let now = cortex_core::ledger::entry::now_timestamp();
        let plain = |project: &str, content: &str, tags: &[&str]| {
            let mut f = NewFact::new(project, content);
            f.tags = tags.iter().map(|t| t.to_string()).collect();
            NewEntry::new(project, "fact.store", f.to_detail(&now).unwrap().to_json())
        };
        ledger
            .append(&[
                plain("p", "The cat sat on the mat", &["pets"]),
                plain("p", "Dogs bark at the cat", &[]),
                NewEntry::new("p", "audit.event", "{}"),
                plain("q", "cats and dogs", &["Pets", "x-y"]),
            ])
            .unwrap();
        let vote = VoteDetail {
            fact_id: 0,
            agent: "alice".into(),
            vote: 1,
            reason: None,
            author: None,
        };
        let deprecate = DeprecateDetail {
            fact_id: 1,
            reason: Some("old".into()),
            author: None,
        };
        ledger
            .append(&[NewEntry::new("p", "fact.vote", vote.to_json())])
            .unwrap();
        ledger
            .append(&[NewEntry::new("p", "fact.deprecate", deprecate.to_json())])
            .unwrap();
        let mut replay = Replay::new();
        store
            .scan_entries(0..u64::MAX, &mut |r| {
                replay.apply(r.entry);
                Ok(())
            })
            .unwrap();
        assert!(replay.unreplayable.is_empty());
        let (state, lost) = replay.into_state(ledger.hasher(), &|_| None);
        assert!(lost.is_empty(), "plain facts need no opening");
        drop((ledger, store));

        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, \
             description TEXT NOT NULL, applied_at TEXT NOT NULL);",
        )
        .unwrap();
        for m in &MIGRATIONS[..2] {
            c.execute_batch(m.sql).unwrap();
            c.execute(
                "INSERT INTO schema_migrations VALUES (?1, 'v', '2026-01-01T00:00:00.000000Z')",
                [m.version],
            )
            .unwrap();
        }
        c.execute("ATTACH ?1 AS scratch", [scratch.to_str().unwrap()])
            .unwrap();
        c.execute_batch(
            "INSERT INTO entries SELECT * FROM scratch.entries; \
             INSERT INTO merkle_tiles SELECT * FROM scratch.merkle_tiles; \
             INSERT INTO ledger_head SELECT * FROM scratch.ledger_head; \
             INSERT INTO meta SELECT * FROM scratch.meta; \
             DETACH scratch; UPDATE memory_state SET version = 3;",
        )
        .unwrap();
        for f in &state.facts {
            c.execute(
                "INSERT INTO facts (id, project, content, fact_type, tags, confidence, source, \
                 valid_from, valid_until, created_at, deprecated_at, deprecation_reason, \
                 consensus) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    f.id as i64,
                    f.project,
                    f.content,
                    f.fact_type,
                    serde_json::to_string(&f.tags).unwrap(),
                    f.confidence,
                    f.source,
                    f.valid_from,
                    f.valid_until,
                    f.created_at,
                    f.deprecated_at,
                    f.deprecation_reason,
                    f.consensus
                ],
            )
            .unwrap();
            c.execute(
                "INSERT INTO facts_fts (rowid, body) VALUES (?1, ?2)",
                params![
                    f.id as i64,
                    cortex_core::memory::bm25::index_text(&f.content, &f.tags)
                ],
            )
            .unwrap();
        }
        for v in &state.votes {
            crate::memory::put_vote(&c, v).unwrap();
        }
        for a in &state.agents {
            crate::memory::put_agent(&c, a).unwrap();
        }
        for &(f, e) in &state.events {
            crate::memory::add_event(&c, f, e).unwrap();
        }
    }

    #[test]
    fn a_version_2_database_is_upgraded_in_place_and_verifies() {
        use cortex_core::memory::bm25::{Bm25Index, index_text, query_terms};
        use cortex_core::memory::store::FactSearch;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        version_2_database(&path);
        let store: cortex_core::DynStore =
            Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
        assert_eq!(
            store.migrate().unwrap().from_version,
            latest_schema_version()
        );
        let memory = cortex_core::AgentMemory::open(store.clone(), Default::default()).unwrap();
        let clean = |what: &str| {
            let r = memory.verify(&Default::default()).unwrap();
            assert!(r.valid, "{what}: {:#?}", r.violations);
            r.memory.unwrap()
        };
        let checked = clean("upgraded");
        assert_eq!((checked.facts, checked.votes, checked.agents), (3, 1, 1));

        // Old rows got NULLs; the index text was derived from them, and BM25 over it is core's.
        let old = store.fact(0).unwrap().unwrap();
        assert_eq!((old.author, old.surface, old.erased_at), (None, None, None));
        assert_eq!(old.content, "The cat sat on the mat");
        let search = |q: &str| {
            store
                .search_facts(&FactSearch {
                    terms: query_terms(q),
                    project: None,
                    as_of: cortex_core::ledger::entry::now_timestamp(),
                    top_k: 10,
                    include_deprecated: true,
                    author: None,
                    min_consensus: None,
                })
                .unwrap()
                .into_iter()
                .map(|h| (h.fact.id, h.score))
                .collect::<Vec<_>>()
        };
        let mut ix = Bm25Index::new();
        for id in [0, 1, 3] {
            let f = store.fact(id).unwrap().unwrap();
            ix.add(id, &index_text(&f.content, &f.tags));
        }
        assert_eq!(
            search("cat pets"),
            ix.top_k(&query_terms("cat pets"), 10, &|_| true)
        );

        // It stores (sealed, authored), forgets and verifies as a new database does.
        let id = memory
            .store_fact(&cortex_core::NewFact::new("p", "a new cat fact"))
            .unwrap()
            .facts[0]
            .id;
        assert!(store.opening(id).unwrap().is_some());
        assert!(search("cat").iter().any(|h| h.0 == id));
        clean("after a store");
        memory.forget(id, "test").unwrap();
        assert!(store.opening(id).unwrap().is_none());
        assert!(
            search("new").is_empty(),
            "an erased fact is out of the index"
        );
        assert_eq!(
            search("cat pets"),
            ix.top_k(&query_terms("cat pets"), 10, &|_| true),
            "and out of its statistics"
        );
        let checked = clean("after a forget");
        assert_eq!((checked.facts, checked.facts_erased), (4, 1));
    }

    #[test]
    fn a_version_2_row_that_does_not_decode_does_not_stop_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        version_2_database(&path);
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE facts SET tags = 'oops' WHERE id = 0", [])
            .unwrap();
        let store: cortex_core::DynStore =
            Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
        let memory = cortex_core::AgentMemory::open(store, Default::default()).unwrap();
        let r = memory.verify(&Default::default()).unwrap();
        let tables: Vec<_> = r
            .violations
            .iter()
            .map(|v| (v.kind, v.memory.as_ref().map(|m| m.table)))
            .collect();
        assert_eq!(
            tables,
            [
                (
                    cortex_core::ViolationKind::MemoryMismatch,
                    Some("search_index")
                ),
                (cortex_core::ViolationKind::MemoryMissing, Some("facts")),
                (cortex_core::ViolationKind::MemoryMismatch, Some("facts")),
            ],
            "the index text made without its tags, the fact (missing, as it cannot be read) \
             and its row: {:#?}",
            r.violations
        );
    }
}
