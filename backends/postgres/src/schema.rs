//! The schema: its migrations, in order, the runner that applies the pending ones under an
//! advisory lock, and dropping a store's own schema.

use crate::lexeme::{index_lexemes, tsvector_text};
use crate::pool::pg_err;
use crate::{PostgresStore, redact};
use cortex_core::ledger::store::MigrationReport;
use cortex_core::memory::bm25::index_text;
use cortex_core::{Error, Result};

/// A migration's data step, run after its SQL in the same transaction.
type DataStep = fn(&mut postgres::Transaction<'_>) -> Result<()>;

/// Schema migrations, applied in order; each runs once, in its own transaction.
const MIGRATIONS: &[(u32, &str, &str, Option<DataStep>)] = &[
    (
        1,
        "ledger: entries, tiles, checkpoints, receipts, audit records",
        r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- One row, always present: appends lock it (SELECT ... FOR UPDATE) to exclude other writers.
CREATE TABLE ledger_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    size      BIGINT NOT NULL,
    last_hash BYTEA NOT NULL
);
INSERT INTO ledger_head (id, size, last_hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));
CREATE TABLE entries (
    idx       BIGINT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    project   TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash      BYTEA NOT NULL
);
CREATE TABLE merkle_tiles (
    level  SMALLINT NOT NULL,
    idx    BIGINT NOT NULL,
    hashes BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE checkpoints (
    tree_size        BIGINT PRIMARY KEY,
    root_hash        TEXT NOT NULL,
    range_start      BIGINT NOT NULL,
    range_end        BIGINT,
    range_count      BIGINT NOT NULL,
    signed_note      TEXT NOT NULL,
    extra_signatures TEXT NOT NULL DEFAULT '[]',
    created_at       TEXT NOT NULL
);
CREATE TABLE checkpoint_receipts (
    id         BIGSERIAL PRIMARY KEY,
    tree_size  BIGINT NOT NULL REFERENCES checkpoints(tree_size),
    anchor     TEXT NOT NULL,
    target     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX checkpoint_receipts_size ON checkpoint_receipts(tree_size);
CREATE TABLE audit_exports (
    id          BIGSERIAL PRIMARY KEY,
    export_type TEXT NOT NULL,
    filename    TEXT NOT NULL,
    file_hash   TEXT NOT NULL,
    tx_start_id BIGINT NOT NULL,
    tx_end_id   BIGINT NOT NULL,
    exported_at TEXT NOT NULL,
    exported_by TEXT NOT NULL
);
CREATE TABLE integrity_checks (
    id           BIGSERIAL PRIMARY KEY,
    check_type   TEXT NOT NULL,
    status       TEXT NOT NULL,
    details      TEXT,
    started_at   TEXT NOT NULL,
    completed_at TEXT NOT NULL
);
"#,
        None,
    ),
    (
        2,
        "agent memory: facts, full-text index, votes, agent reputations, fact history, version",
        r#"
-- Text compared or ordered by the memory engine uses the "C" collation: byte order, as SQLite.
CREATE TABLE facts (
    id                 BIGINT PRIMARY KEY,   -- the ledger index of its fact.store entry
    project            TEXT NOT NULL,
    content            TEXT NOT NULL,
    fact_type          TEXT NOT NULL,
    tags               TEXT NOT NULL,        -- JSON array of strings
    confidence         DOUBLE PRECISION NOT NULL,
    source             TEXT,
    valid_from         TEXT COLLATE "C" NOT NULL,
    valid_until        TEXT COLLATE "C",
    created_at         TEXT NOT NULL,
    deprecated_at      TEXT,
    deprecation_reason TEXT,
    consensus          DOUBLE PRECISION NOT NULL DEFAULT 0,
    body               TEXT NOT NULL,        -- cortex_core::memory::bm25::index_text
    doc_len            INTEGER NOT NULL,     -- tokens in body
    tsv                TSVECTOR NOT NULL     -- body's distinct tokens, as they are
);
CREATE INDEX facts_recall ON facts(project, consensus DESC, id DESC) WHERE deprecated_at IS NULL;
CREATE INDEX facts_project ON facts(project, id);
CREATE INDEX facts_tsv ON facts USING GIN (tsv);
CREATE TABLE fact_votes (
    fact_id     BIGINT NOT NULL REFERENCES facts(id),
    agent       TEXT COLLATE "C" NOT NULL,
    vote        SMALLINT NOT NULL CHECK (vote IN (-1, 1)),
    reason      TEXT,
    weight      DOUBLE PRECISION NOT NULL,
    agreed      BOOLEAN,
    entry_index BIGINT NOT NULL,
    voted_at    TEXT NOT NULL,
    PRIMARY KEY (fact_id, agent)
);
CREATE TABLE agents (
    agent      TEXT COLLATE "C" PRIMARY KEY,
    reputation DOUBLE PRECISION NOT NULL,
    votes      BIGINT NOT NULL,
    judged     BIGINT NOT NULL,
    agreed     BIGINT NOT NULL
);
CREATE TABLE fact_events (
    fact_id     BIGINT NOT NULL,
    entry_index BIGINT NOT NULL,
    PRIMARY KEY (fact_id, entry_index)
);
-- The memory version, and the BM25 collection statistics (facts indexed, their total tokens).
CREATE TABLE memory_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL,
    docs    BIGINT NOT NULL,
    tokens  BIGINT NOT NULL
);
INSERT INTO memory_state (id, version, docs, tokens) VALUES (1, 0, 0, 0);
"#,
        None,
    ),
    (
        3,
        "agent memory: fact authors and erasure, stored openings of fact commitments",
        r#"
-- Who stored a fact and through which surface, and when it was erased (NULL for facts stored
-- before these were recorded). An erased fact is out of the search index: its body, doc_len
-- and tsv are NULL (NULL in all three is "not indexed"), and memory_state does not count it.
ALTER TABLE facts
    ADD COLUMN author    TEXT COLLATE "C",
    ADD COLUMN surface   TEXT,
    ADD COLUMN erased_at TEXT,
    ALTER COLUMN body DROP NOT NULL,
    ALTER COLUMN doc_len DROP NOT NULL,
    ALTER COLUMN tsv DROP NOT NULL;
-- The opening of each sealed fact's commitment (cortex_core::memory::commitment), deleted when
-- the fact is erased.
CREATE TABLE fact_openings (
    fact_id BIGINT PRIMARY KEY,
    salt    TEXT NOT NULL,               -- 64 lowercase hex digits
    content TEXT NOT NULL,
    tags    TEXT NOT NULL,               -- JSON array of strings
    source  TEXT
);
"#,
        None,
    ),
    (
        4,
        "search: index text re-derived with the folding, stemming tokenizer; fact vectors for \
         semantic search",
        r#"
-- A derived index, never signed: each fact's embedding by the model named, as little-endian
-- f32s. Deleted with the fact's content when it is erased.
CREATE TABLE fact_vectors (
    fact_id BIGINT PRIMARY KEY,
    model   TEXT NOT NULL,
    vector  BYTEA NOT NULL
);
"#,
        Some(reindex_facts),
    ),
];

/// Migration 4's data: every indexed fact's body, token count and `tsvector` made anew with this
/// build's tokenizer, and the collection statistics counted from them; a thousand facts an
/// `UPDATE`.
fn reindex_facts(tx: &mut postgres::Transaction<'_>) -> Result<()> {
    let rows = tx
        .query(
            "SELECT id, content, tags FROM facts WHERE erased_at IS NULL ORDER BY id",
            &[],
        )
        .map_err(pg_err)?;
    let (mut docs, mut tokens) = (0i64, 0i64);
    for chunk in rows.chunks(1000) {
        let (mut ids, mut bodies, mut lens, mut tsvs) = (vec![], vec![], vec![], vec![]);
        for r in chunk {
            // A row that does not decode is indexed from what can be read; verify reports it.
            let tags: Vec<String> = r
                .get::<_, Option<&str>>(2)
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            let body = index_text(r.get::<_, Option<&str>>(1).unwrap_or(""), &tags);
            let (count, lexemes) = index_lexemes(&body);
            let len = i32::try_from(count).unwrap_or(i32::MAX);
            tsvs.push(tsvector_text(&lexemes));
            ids.push(r.get::<_, i64>(0));
            lens.push(len);
            bodies.push(body);
            docs += 1;
            tokens += i64::from(len);
        }
        tx.execute(
            "UPDATE facts f SET body = u.body, doc_len = u.len, tsv = u.tsv::TSVECTOR \
             FROM unnest($1::BIGINT[], $2::TEXT[], $3::INT[], $4::TEXT[]) AS u(id, body, len, tsv) \
             WHERE f.id = u.id",
            &[&ids, &bodies, &lens, &tsvs],
        )
        .map_err(pg_err)?;
    }
    tx.execute(
        "UPDATE memory_state SET docs = $1, tokens = $2 WHERE id = 1",
        &[&docs, &tokens],
    )
    .map_err(pg_err)?;
    Ok(())
}

/// The newest schema version this build knows.
pub fn latest_schema_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Advisory lock key that serializes migrations across processes (`cortex` in ASCII).
const MIGRATION_LOCK: i64 = 0x636f_7274_6578;

impl PostgresStore {
    /// Applies the pending migrations, one transaction each, under the migration lock
    /// ([`LedgerStore::migrate`](cortex_core::LedgerStore::migrate)).
    pub(crate) fn apply_migrations(&self) -> Result<MigrationReport> {
        let mut conn = self.conn()?;
        let latest = latest_schema_version();
        let mut from = None;
        loop {
            let mut tx = conn.transaction().map_err(pg_err)?;
            // Migrations of every store in this database take turns (also across processes).
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .map_err(pg_err)?;
            if let Some(s) = &self.config.schema {
                tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{s}\""))
                    .map_err(pg_err)?;
            }
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)",
            )
            .map_err(pg_err)?;
            let now: i32 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )
                .map_err(pg_err)?
                .get(0);
            let now = now as u32;
            let from = *from.get_or_insert(now);
            if now > latest {
                return Err(Error::config(format!(
                    "{} has schema version {now}, newer than this cortex supports ({latest}); upgrade cortex",
                    redact(&self.config.url)
                )));
            }
            let Some((version, description, sql, data)) = MIGRATIONS.iter().find(|m| m.0 > now)
            else {
                tx.commit().map_err(pg_err)?;
                return Ok(MigrationReport {
                    from_version: from,
                    to_version: latest,
                });
            };
            tx.batch_execute(sql).map_err(pg_err)?;
            if let Some(step) = data {
                step(&mut tx)?;
            }
            tx.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
                &[
                    &(*version as i32),
                    description,
                    &cortex_core::ledger::entry::now_timestamp(),
                ],
            )
            .map_err(pg_err)?;
            tx.commit().map_err(pg_err)?;
        }
    }

    /// Drops this store's schema (the URL's `schema=`) with every table in it: for tests and
    /// throwaway deployments; the store is of no use afterwards. Refuses when the store has no
    /// schema of its own, so it can never drop a database's default schema.
    pub fn drop_schema(&self) -> Result<()> {
        let Some(schema) = self.config.schema.clone() else {
            return Err(Error::invalid(
                "this store has no schema of its own (no ?schema= in its URL): nothing to drop",
            ));
        };
        let mut c = self.conn()?;
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .map_err(pg_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_core::ledger::entry::NewEntry;
    use cortex_core::memory::bm25::{Bm25Index, index_text, query_terms};
    use cortex_core::memory::fact::ACTION_STORE;
    use cortex_core::memory::store::FactChange;
    use cortex_core::{AgentMemory, ErrorKind, FactStore, LedgerOptions, NewFact, SearchQuery};
    use std::sync::Arc;

    /// Drops the schemas it names when dropped (also when the test panics).
    struct DropSchemas(String, Vec<String>);

    impl Drop for DropSchemas {
        fn drop(&mut self) {
            if let Ok(mut c) = postgres::Client::connect(&self.0, postgres::NoTls) {
                for s in &self.1 {
                    let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"));
                }
            }
        }
    }

    fn with_schema(url: &str, schema: &str) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}schema={schema}")
    }

    /// A database made by schema version 2 (the agent memory before authors, erasure and stored
    /// openings) is upgraded in place: its facts read back with no author, surface or erasure,
    /// the memory verifies, and new facts are stored (sealed), searched beside the old ones
    /// and forgotten, while an old fact, whose content is in its own entry, cannot be.
    #[test]
    fn a_version_2_database_is_upgraded_in_place() {
        let Some(url) = cortex_core::testkit::postgres_url("the cortex-postgres upgrade test")
        else {
            return;
        };
        let tag = format!(
            "{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let (made, v2) = (format!("cortex_v2src_{tag}"), format!("cortex_v2_{tag}"));
        let _drop = DropSchemas(url.clone(), vec![made.clone(), v2.clone()]);

        // What version 2 wrote: facts in the plain form (content in the entry, no author), a
        // vote and a deprecation; written here by today's code on a store of its own.
        let source = Arc::new(PostgresStore::open_url(&with_schema(&url, &made)).unwrap());
        let memory = AgentMemory::open(source, LedgerOptions::default()).unwrap();
        let contents = ["the old cat sat", "an old dog barked", "old news"];
        let details: Vec<_> = contents
            .iter()
            .map(|c| {
                NewFact::new("p", *c)
                    .to_detail("2026-01-01T00:00:00.000000Z")
                    .unwrap()
            })
            .collect();
        let entries: Vec<NewEntry> = details
            .iter()
            .map(|d| NewEntry::new("p", ACTION_STORE, d.to_json()))
            .collect();
        memory
            .append_with(&entries, &mut |_, ctx| {
                Ok(details
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        FactChange::Insert(d.clone().into_fact(
                            ctx.first_index + i as u64,
                            "p",
                            ctx.timestamp,
                        ))
                    })
                    .collect())
            })
            .unwrap();
        memory.vote(0, "alice", 1, None).unwrap();
        memory.deprecate(2, Some("stale")).unwrap();
        drop(memory);

        // The version-2 schema, made by its own migrations, holding exactly those rows.
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute(&format!(
            "CREATE SCHEMA \"{v2}\"; SET search_path TO \"{v2}\"; \
             CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, \
             description TEXT NOT NULL, applied_at TEXT NOT NULL); {} {} \
             INSERT INTO schema_migrations VALUES (1, 'v1', '2026-01-01T00:00:00.000000Z'), \
             (2, 'v2', '2026-01-01T00:00:00.000000Z'); \
             DELETE FROM ledger_head; DELETE FROM memory_state; \
             INSERT INTO meta SELECT * FROM \"{made}\".meta; \
             INSERT INTO ledger_head SELECT * FROM \"{made}\".ledger_head; \
             INSERT INTO entries SELECT * FROM \"{made}\".entries; \
             INSERT INTO merkle_tiles SELECT * FROM \"{made}\".merkle_tiles; \
             INSERT INTO facts SELECT id, project, content, fact_type, tags, confidence, source, \
             valid_from, valid_until, created_at, deprecated_at, deprecation_reason, consensus, \
             body, doc_len, tsv FROM \"{made}\".facts; \
             INSERT INTO fact_votes SELECT * FROM \"{made}\".fact_votes; \
             INSERT INTO agents SELECT * FROM \"{made}\".agents; \
             INSERT INTO fact_events SELECT * FROM \"{made}\".fact_events; \
             INSERT INTO memory_state SELECT * FROM \"{made}\".memory_state;",
            MIGRATIONS[0].2, MIGRATIONS[1].2
        ))
        .unwrap();

        let store = Arc::new(PostgresStore::open_url(&with_schema(&url, &v2)).unwrap());
        let applied: Vec<i32> = c
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(applied, [1, 2, 3, 4]);
        let memory = AgentMemory::open(store.clone(), LedgerOptions::default()).unwrap();
        let old = store.fact(1).unwrap().unwrap();
        assert_eq!(old.content, "an old dog barked");
        assert_eq!((old.author, old.surface, old.erased_at), (None, None, None));
        assert_eq!(store.opening(1).unwrap(), None);
        let report = memory.verify(&Default::default()).unwrap();
        assert!(report.valid, "{:?}", report.violations);
        assert_eq!(report.memory.unwrap().facts, 3);

        let new = memory
            .store_fact(&NewFact::new("p", "a new dog"))
            .unwrap()
            .facts[0]
            .clone();
        assert!(store.opening(new.id).unwrap().is_some());
        let mut ix = Bm25Index::new();
        for f in store.project_facts("p", 10).unwrap() {
            ix.add(f.id, &index_text(&f.content, &f.tags));
        }
        let mut want = ix.score(&query_terms("dog"));
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        let got: Vec<(u64, f64)> = memory
            .search(&SearchQuery::new("dog"))
            .unwrap()
            .iter()
            .map(|h| (h.fact.id, h.score))
            .collect();
        assert_eq!(got, want);
        assert_eq!(got.len(), 2);
        memory.forget(new.id, "asked to").unwrap();
        assert_eq!(
            memory.forget(1, "asked to").unwrap_err().kind(),
            ErrorKind::Conflict
        );
        let report = memory.verify(&Default::default()).unwrap();
        assert!(report.valid, "{:?}", report.violations);
        assert_eq!(report.memory.unwrap().facts_erased, 1);
    }
}
