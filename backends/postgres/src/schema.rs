//! The schema: its migrations, in order, the runner that applies the pending ones under an
//! advisory lock, and dropping a store's own schema.

use crate::pool::pg_err;
use crate::{PostgresStore, redact};
use cortex_core::ledger::store::MigrationReport;
use cortex_core::{Error, Result};

/// Schema migrations, applied in order; each runs once, in its own transaction.
const MIGRATIONS: &[(u32, &str, &str)] = &[
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
    ),
];

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
            let Some((version, description, sql)) = MIGRATIONS.iter().find(|m| m.0 > now) else {
                tx.commit().map_err(pg_err)?;
                return Ok(MigrationReport {
                    from_version: from,
                    to_version: latest,
                });
            };
            tx.batch_execute(sql).map_err(pg_err)?;
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
