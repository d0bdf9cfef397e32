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
//! **Bulk memory writes.** New facts are written with `COPY … FROM STDIN` (text format), one
//! `COPY` per 8 MiB of text, their history events with one `INSERT … UNNEST`, and the memory
//! counters with one `UPDATE`: a batch of N facts costs a handful of round trips, not N.
//!
//! **Search.** Each fact keeps its [`cortex_core::memory::bm25::index_text`] (the exact tokens core
//! ranks), its token count, and a `tsvector` of those tokens under a GIN index. One query
//! returns the collection statistics and every fact whose `tsvector` matches any query term
//! (all projects: document counts are over every fact), with its tokens and whether it passes
//! the filters; the document counts, term frequencies and scores are computed here with core's
//! [`cortex_core::memory::bm25`] functions, so they equal [`cortex_core::memory::bm25::Bm25Index`]'s bit for
//! bit (Postgres' own `ts_rank` is not BM25). A second query reads the `top_k` facts whole.
//!
//! URL: `postgres://user:password@host:port/dbname?schema=NAME&pool_size=N` (`postgresql://`
//! too). `schema` puts every table in that schema (created if missing), so several ledgers can
//! share a database; other query options go to the `postgres` client. No TLS.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use cortex_core::ledger::checkpoint::{
    CheckpointRecord, ExtraSignature, Receipt, check_checkpoint_follows,
};
use cortex_core::ledger::entry::{Entry, EntryRef, StoredEntryRef};
use cortex_core::ledger::store::{
    AppendBatch, AuditExport, Head, IntegrityCheck, LedgerStore, LedgerTx, MigrationReport,
};
use cortex_core::ledger::tiles::{Tile, TileReader};
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{FactBatch, FactChange, FactSearch, FactStore, FactTx, SearchHit};
use cortex_core::{Error, ErrorKind, Hash, Result};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{
    Client, GenericClient, IsolationLevel, NoTls, Row, Statement, ToStatement, Transaction,
};
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::r2d2::{self, CustomizeConnection, ManageConnection, Pool, PooledConnection};
use std::collections::HashMap;
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

/// URL scheme of this backend.
pub const SCHEME: &str = "postgres";

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

/// Longest lexeme Postgres accepts in a `tsvector`, less a margin; longer tokens are truncated
/// there (matching then finds a superset, and scoring, which reads `body`, stays exact).
const MAX_LEXEME_BYTES: usize = 2000;

/// How to connect: parsed from a `postgres://` URL. `Debug` never shows the password.
#[derive(Clone)]
pub struct PostgresConfig {
    url: String,
    client: postgres::Config,
    /// Schema holding the tables (`None`: the server's default search path).
    pub schema: Option<String>,
    /// Most connections the pool opens.
    pub pool_size: u32,
    /// How long to wait for a pooled connection.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact(&self.url))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// `url` with any password replaced by `***` (in the userinfo and in a `password=` option).
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let auth_end = out[start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..auth_end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

impl PostgresConfig {
    /// Parses `postgres://…` or `postgresql://…`; `schema` and `pool_size` are ours, other
    /// query options go to the client.
    pub fn from_url(url: &str) -> Result<PostgresConfig> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::config(format!(
                "{:?} is not a postgres:// URL",
                redact(url)
            )));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut schema = None;
        let mut pool_size = 16;
        let mut rest = Vec::new();
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some(("schema", s)) => {
                    if s.is_empty()
                        || s.len() > 63
                        || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        || s.starts_with(|c: char| c.is_ascii_digit())
                    {
                        return Err(Error::config(format!(
                            "schema {s:?}: use letters, digits and _ (at most 63, not starting with a digit)"
                        )));
                    }
                    schema = Some(s.to_owned());
                }
                Some(("pool_size", n)) => {
                    pool_size = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        Error::config(format!("pool_size {n:?} is not a positive number"))
                    })?;
                }
                _ => rest.push(kv),
            }
        }
        let client_url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let client = postgres::Config::from_str(&client_url).map_err(|e| {
            Error::config(format!("bad Postgres URL {:?}", redact(url))).with_source(e)
        })?;
        Ok(PostgresConfig {
            url: url.to_owned(),
            client,
            schema,
            pool_size,
            connect_timeout: Duration::from_secs(30),
        })
    }
}

/// Points each new pooled connection at the store's schema.
#[derive(Debug)]
struct SearchPath(Option<String>);

impl CustomizeConnection<PgConn, postgres::Error> for SearchPath {
    fn on_acquire(&self, conn: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        if let Some(s) = &self.0 {
            conn.batch_execute(&format!("SET search_path TO \"{s}\""))?;
        }
        Ok(())
    }
}

/// A pooled connection and the statements prepared on it (the append path's statements are
/// prepared once per connection, saving a round trip each time they run).
struct PgConn {
    client: Client,
    stmts: HashMap<&'static str, Statement>,
}

impl std::ops::Deref for PgConn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// The r2d2 manager of [`PgConn`]s.
#[derive(Debug)]
struct Manager(PostgresConnectionManager<NoTls>);

impl ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;
    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.0.connect()?,
            stmts: HashMap::new(),
        })
    }
    fn is_valid(&self, c: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        self.0.is_valid(&mut c.client)
    }
    fn has_broken(&self, c: &mut PgConn) -> bool {
        self.0.has_broken(&mut c.client)
    }
}

/// `sql` prepared on this connection (once).
impl PgConn {
    /// `sql` prepared once per connection: later uses skip the prepare round trip.
    fn prepared(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(pg_err)?;
        self.stmts.insert(sql, s.clone());
        Ok(s)
    }
}

fn cached(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement> {
    if let Some(s) = stmts.get(sql) {
        return Ok(s.clone());
    }
    let s = tx.prepare(sql).map_err(pg_err)?;
    stmts.insert(sql, s.clone());
    Ok(s)
}

type Conn = PooledConnection<Manager>;

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

fn pg_err(e: postgres::Error) -> Error {
    let kind = match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::TOO_MANY_CONNECTIONS =>
        {
            ErrorKind::Unavailable
        }
        None if e.is_closed() => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, "PostgreSQL error").with_source(e)
}

fn has_code(e: &postgres::Error, code: &SqlState) -> bool {
    e.code() == Some(code)
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
        let manager = Manager(PostgresConnectionManager::new(config.client.clone(), NoTls));
        let pool = Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            .connection_timeout(config.connect_timeout)
            .connection_customizer(Box::new(SearchPath(config.schema.clone())))
            .build(manager)
            .map_err(|e: r2d2::Error| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot connect to {}", redact(&config.url)),
                )
                .with_source(e)
            })?;
        let store = PostgresStore { config, pool };
        store.migrate()?;
        Ok(store)
    }

    /// The connection settings.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
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

    fn conn(&self) -> Result<Conn> {
        self.pool.get().map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("no connection to {}", redact(&self.config.url)),
            )
            .with_source(e)
        })
    }

    fn load_checkpoints(
        &self,
        c: &mut impl GenericClient,
        sql_tail: &str,
    ) -> Result<Vec<CheckpointRecord>> {
        let rows = c
            .query(
                &format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints {sql_tail}"),
                &[],
            )
            .map_err(pg_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let root_hex: String = r.get(1);
            let extra: String = r.get(6);
            let size: i64 = r.get(0);
            let receipts = c
                .query(
                    "SELECT anchor, target, body, created_at FROM checkpoint_receipts \
                     WHERE tree_size = $1 ORDER BY id",
                    &[&size],
                )
                .map_err(pg_err)?
                .into_iter()
                .map(|x| Receipt {
                    anchor: x.get(0),
                    target: x.get(1),
                    body: x.get(2),
                    created_at: x.get(3),
                })
                .collect();
            out.push(CheckpointRecord {
                size: size as u64,
                // A root that is not valid hex reads as zeros; verify then reports a bad root.
                root: Hash::from_hex(&root_hex).unwrap_or(Hash::ZERO),
                range_start: r.get::<_, i64>(2) as u64,
                range_count: r.get::<_, i64>(4) as u64,
                note: r.get(5),
                created_at: r.get(7),
                extra_signatures: serde_json::from_str::<Vec<ExtraSignature>>(&extra)
                    .unwrap_or_default(),
                receipts,
            });
        }
        Ok(out)
    }
}

const CHECKPOINT_COLUMNS: &str = "tree_size, root_hash, range_start, range_end, range_count, \
                                  signed_note, extra_signatures, created_at";

const FACT_COLUMNS: &str = "id, project, content, fact_type, tags, confidence, source, valid_from, \
                            valid_until, created_at, deprecated_at, deprecation_reason, consensus";

/// Search candidates: the collection statistics, and every fact matching the tsquery `$1`
/// (id, token count, token text, passes the filters: project `$2`, valid at `$3`, deprecated
/// ones if `$4`); one row of statistics and NULLs when no fact matches.
const SEARCH_CANDIDATES_SQL: &str = "SELECT m.docs, m.tokens, f.id, f.doc_len, f.body, \
     ($2::TEXT IS NULL OR f.project = $2) AND f.valid_from <= $3 \
     AND (f.valid_until IS NULL OR $3 < f.valid_until) AND ($4 OR f.deprecated_at IS NULL) \
     FROM memory_state m LEFT JOIN facts f ON f.tsv @@ $1::TEXT::TSQUERY WHERE m.id = 1";

/// Whole facts by id (`$1`, an array), in no particular order.
const FACTS_BY_ID_SQL: &str = "SELECT id, project, content, fact_type, tags, confidence, source, \
     valid_from, valid_until, created_at, deprecated_at, deprecation_reason, consensus \
     FROM facts WHERE id = ANY($1)";

fn fact_from_row(r: &Row) -> Result<Fact> {
    let tags: String = r.get(4);
    Ok(Fact {
        id: r.get::<_, i64>(0) as u64,
        project: r.get(1),
        content: r.get(2),
        fact_type: r.get(3),
        tags: serde_json::from_str(&tags)
            .map_err(|e| Error::integrity(format!("fact tags are not JSON: {e}")))?,
        confidence: r.get(5),
        source: r.get(6),
        valid_from: r.get(7),
        valid_until: r.get(8),
        created_at: r.get(9),
        deprecated_at: r.get(10),
        deprecation_reason: r.get(11),
        consensus: r.get(12),
    })
}

const TILE_SQL: &str = "SELECT hashes FROM merkle_tiles WHERE level = $1 AND idx = $2";

fn read_tile_in(
    c: &mut impl GenericClient,
    sql: &(impl ToStatement + ?Sized),
    level: u8,
    index: u64,
) -> Result<Option<Vec<Hash>>> {
    let row = c
        .query_opt(sql, &[&i16::from(level), &to_i64(index)])
        .map_err(pg_err)?;
    row.map(|r| Tile::decode(r.get::<_, &[u8]>(0))).transpose()
}

fn read_fact(c: &mut impl GenericClient, id: u64) -> Result<Option<Fact>> {
    c.query_opt(
        &format!("SELECT {FACT_COLUMNS} FROM facts WHERE id = $1"),
        &[&to_i64(id)],
    )
    .map_err(pg_err)?
    .map(|r| fact_from_row(&r))
    .transpose()
}

fn read_facts(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Fact>> {
    c.query(sql, params)
        .map_err(pg_err)?
        .iter()
        .map(fact_from_row)
        .collect()
}

fn read_votes(c: &mut impl GenericClient, fact_id: u64) -> Result<Vec<Vote>> {
    Ok(c.query(
        "SELECT fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at \
             FROM fact_votes WHERE fact_id = $1 ORDER BY agent",
        &[&to_i64(fact_id)],
    )
    .map_err(pg_err)?
    .into_iter()
    .map(|r| Vote {
        fact_id: r.get::<_, i64>(0) as u64,
        agent: r.get(1),
        vote: r.get::<_, i16>(2) as i8,
        reason: r.get(3),
        weight: r.get(4),
        agreed: r.get(5),
        entry_index: r.get::<_, i64>(6) as u64,
        voted_at: r.get(7),
    })
    .collect())
}

fn read_agent(c: &mut impl GenericClient, agent: &str) -> Result<Option<AgentReputation>> {
    Ok(c.query_opt(
        "SELECT agent, reputation, votes, judged, agreed FROM agents WHERE agent = $1",
        &[&agent],
    )
    .map_err(pg_err)?
    .map(|r| AgentReputation {
        agent: r.get(0),
        reputation: r.get(1),
        votes: r.get::<_, i64>(2) as u64,
        judged: r.get::<_, i64>(3) as u64,
        agreed: r.get::<_, i64>(4) as u64,
    }))
}

const HEAD_SQL: &str = "SELECT size, last_hash FROM ledger_head WHERE id = 1";
const LOCK_HEAD_SQL: &str = "SELECT size, last_hash FROM ledger_head WHERE id = 1 FOR UPDATE";

fn read_head(c: &mut impl GenericClient, sql: &(impl ToStatement + ?Sized)) -> Result<Head> {
    match c.query_opt(sql, &[]).map_err(pg_err)? {
        None => Ok(Head::default()),
        Some(r) => Ok(Head {
            size: u64::try_from(r.get::<_, i64>(0))
                .map_err(|_| Error::integrity("ledger head size is negative"))?,
            last_hash: Hash::from_slice(r.get::<_, &[u8]>(1))
                .map_err(|_| Error::integrity("ledger head hash is not 32 bytes"))?,
        }),
    }
}

struct PgTx<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    stmts: &'t mut HashMap<&'static str, Statement>,
    head: Head,
    /// The head's right-edge tiles (the ones an append extends), read in one query on first use.
    edge: Option<HashMap<(u8, u64), Vec<Hash>>>,
}

/// Tiles by key, in one round trip (`UNNEST` join).
const TILES_SQL: &str = "SELECT t.level, t.idx, t.hashes FROM merkle_tiles t \
     JOIN UNNEST($1::SMALLINT[], $2::BIGINT[]) AS k(level, idx) \
     ON t.level = k.level AND t.idx = k.idx";

fn read_tiles_in(
    c: &mut impl GenericClient,
    sql: &Statement,
    keys: &[(u8, u64)],
) -> Result<HashMap<(u8, u64), Vec<Hash>>> {
    let levels: Vec<i16> = keys.iter().map(|&(l, _)| i16::from(l)).collect();
    let indices: Vec<i64> = keys.iter().map(|&(_, i)| to_i64(i)).collect();
    let rows = c.query(sql, &[&levels, &indices]).map_err(pg_err)?;
    let mut found = HashMap::with_capacity(rows.len());
    for r in &rows {
        let level = u8::try_from(r.get::<_, i16>(0))
            .map_err(|_| Error::integrity("stored tile level is out of range"))?;
        let index = u64::try_from(r.get::<_, i64>(1))
            .map_err(|_| Error::integrity("stored tile index is negative"))?;
        found.insert((level, index), Tile::decode(r.get::<_, &[u8]>(2))?);
    }
    Ok(found)
}

impl LedgerTx for PgTx<'_, '_> {
    fn head(&self) -> Head {
        self.head
    }
    fn read_tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        if self.edge.is_none() {
            let keys: Vec<(u8, u64)> = cortex_core::ledger::tiles::edge_tiles(self.head.size)
                .into_iter()
                .map(|(l, i, _)| (l, i))
                .collect();
            let s = cached(self.tx, self.stmts, TILES_SQL)?;
            self.edge = Some(read_tiles_in(self.tx, &s, &keys)?);
        }
        if let Some(t) = self.edge.as_ref().and_then(|e| e.get(&(level, index))) {
            return Ok(Some(t.clone()));
        }
        let s = cached(self.tx, self.stmts, TILE_SQL)?;
        read_tile_in(self.tx, &s, level, index)
    }
}

impl FactTx for PgTx<'_, '_> {
    fn fact(&mut self, id: u64) -> Result<Option<Fact>> {
        read_fact(self.tx, id)
    }
    fn votes(&mut self, fact_id: u64) -> Result<Vec<Vote>> {
        read_votes(self.tx, fact_id)
    }
    fn agent_reputation(&mut self, agent: &str) -> Result<Option<AgentReputation>> {
        read_agent(self.tx, agent)
    }
}

/// `token` cut to at most [`MAX_LEXEME_BYTES`] (at a character boundary).
fn truncated(token: &str) -> &str {
    let mut end = token.len().min(MAX_LEXEME_BYTES);
    while !token.is_char_boundary(end) {
        end -= 1;
    }
    &token[..end]
}

/// Appends `token` (already [`truncated`]) to `out` as a quoted `tsvector`/`tsquery` lexeme.
fn push_lexeme(out: &mut String, token: &str) {
    out.push('\'');
    if token.contains(['\\', '\'']) {
        out.push_str(&token.replace('\\', "\\\\").replace('\'', "''"));
    } else {
        out.push_str(token);
    }
    out.push('\'');
}

/// A token as a `tsvector`/`tsquery` lexeme literal (quoted; truncated if too long).
fn lexeme(token: &str) -> String {
    let mut out = String::with_capacity(token.len().min(MAX_LEXEME_BYTES) + 2);
    push_lexeme(&mut out, truncated(token));
    out
}

/// An append's ledger rows in one statement: the entries, the changed tiles and the head.
const WRITE_LEDGER_SQL: &str = "WITH e AS (\
     INSERT INTO entries (idx, timestamp, project, action, detail, prev_hash, hash) \
     SELECT i, $2, p, a, d, ph, h \
     FROM UNNEST($1::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BYTEA[], $7::BYTEA[]) \
     AS t(i, p, a, d, ph, h)), \
     t AS (INSERT INTO merkle_tiles (level, idx, hashes) \
     SELECT * FROM UNNEST($8::SMALLINT[], $9::BIGINT[], $10::BYTEA[]) \
     ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes) \
     INSERT INTO ledger_head (id, size, last_hash) VALUES (1, $11, $12) \
     ON CONFLICT (id) DO UPDATE SET size = EXCLUDED.size, last_hash = EXCLUDED.last_hash";

fn write_ledger_rows(
    tx: &mut Transaction<'_>,
    stmt: &Statement,
    b: &AppendBatch<'_>,
) -> Result<()> {
    let n = b.entries.len();
    let mut idx = Vec::with_capacity(n);
    let (mut project, mut action, mut detail) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut prev, mut hash) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (i, (e, (p, h))) in b.entries.iter().zip(&b.links).enumerate() {
        idx.push(to_i64(b.first_index + i as u64));
        project.push(e.project.as_str());
        action.push(e.action.as_str());
        detail.push(e.detail.as_str());
        prev.push(&p.0[..]);
        hash.push(&h.0[..]);
    }
    let levels: Vec<i16> = b.tiles.iter().map(|t| i16::from(t.level)).collect();
    let tile_idx: Vec<i64> = b.tiles.iter().map(|t| to_i64(t.index)).collect();
    let tile_bytes: Vec<Vec<u8>> = b.tiles.iter().map(Tile::to_bytes).collect();
    tx.execute(
        stmt,
        &[
            &idx,
            &b.timestamp,
            &project,
            &action,
            &detail,
            &prev,
            &hash,
            &levels,
            &tile_idx,
            &tile_bytes,
            &to_i64(b.new_head.size),
            &&b.new_head.last_hash.0[..],
        ],
    )
    .map_err(|err| {
        if has_code(&err, &SqlState::UNIQUE_VIOLATION) {
            Error::new(
                ErrorKind::Conflict,
                format!(
                    "entries from {} already exist: the ledger head is behind its rows \
                     (run `cortex ledger verify`)",
                    b.first_index
                ),
            )
        } else {
            pg_err(err)
        }
    })?;
    Ok(())
}

/// Text one `COPY` of new facts carries, at most, plus one fact (content, tags, indexed text
/// and `tsvector`, as sent): a batch of many large facts takes several, so neither side holds
/// more than this at once.
const FACT_COPY_BYTES: usize = 8 << 20;
/// Most rows one `INSERT INTO fact_events` carries.
const EVENT_ROWS_PER_STATEMENT: usize = 65_536;

/// New facts, in `COPY`'s text format (one line each, batch order). `COPY` inserts rows in
/// bulk (one WAL record per heap page rather than per row): 10,000 facts took about 120 ms,
/// against about 245 ms as one `INSERT … SELECT FROM UNNEST(…)` of 16 arrays. The `tsvector`
/// goes through `tsvectorin`, as the `::TEXT::TSVECTOR` cast of a single-row insert did.
const COPY_FACTS_SQL: &str = "COPY facts (id, project, content, fact_type, tags, confidence, \
     source, valid_from, valid_until, created_at, deprecated_at, deprecation_reason, consensus, \
     body, doc_len, tsv) FROM STDIN";
const INSERT_EVENTS_SQL: &str = "INSERT INTO fact_events (fact_id, entry_index) \
     SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[])";
const PUT_VOTE_SQL: &str = "INSERT INTO fact_votes \
     (fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (fact_id, agent) DO UPDATE SET vote = EXCLUDED.vote, \
     reason = EXCLUDED.reason, weight = EXCLUDED.weight, agreed = EXCLUDED.agreed, \
     entry_index = EXCLUDED.entry_index, voted_at = EXCLUDED.voted_at";
const SET_CONSENSUS_SQL: &str = "UPDATE facts SET consensus = $2 WHERE id = $1";
const PUT_AGENT_SQL: &str = "INSERT INTO agents (agent, reputation, votes, judged, agreed) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (agent) DO UPDATE SET reputation = EXCLUDED.reputation, \
     votes = EXCLUDED.votes, judged = EXCLUDED.judged, agreed = EXCLUDED.agreed";
const DEPRECATE_SQL: &str = "UPDATE facts SET deprecated_at = $2, deprecation_reason = $3 \
     WHERE id = $1 AND deprecated_at IS NULL";
const BUMP_MEMORY_SQL: &str = "UPDATE memory_state \
     SET version = version + 1, docs = docs + $1, tokens = tokens + $2 WHERE id = 1";

/// Appends `s` to `out` as one field of `COPY`'s text format (backslash, tab, newline and
/// carriage return escaped; every other character as it is).
fn copy_text(out: &mut String, s: &str) {
    if !s.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(s);
        return;
    }
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Like [`copy_text`], `None` as `COPY`'s NULL (`\N`).
fn copy_opt(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => copy_text(out, s),
        None => out.push_str("\\N"),
    }
}

/// Appends a float as `COPY` text: Rust prints the shortest decimal that reads back as the
/// same `f64`, and Postgres' `float8in` rounds correctly, so the stored value has the same bits
/// as the `f64` (subnormals included).
fn copy_f64(out: &mut String, v: f64) {
    use std::fmt::Write;
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v > 0.0 {
        out.push_str("Infinity");
    } else {
        out.push_str("-Infinity");
    }
}

/// New facts waiting to be copied in.
#[derive(Default)]
struct FactRows {
    /// The rows, in `COPY` text format.
    text: String,
    /// The ids of the first and the last row held.
    ids: Option<(i64, i64)>,
}

impl FactRows {
    /// Adds `f` with its search columns; returns its token count.
    fn push(&mut self, f: &Fact) -> Result<i32> {
        use std::fmt::Write;
        let tags = serde_json::to_string(&f.tags).map_err(|x| Error::backend(x.to_string()))?;
        let body = cortex_core::memory::bm25::index_text(&f.content, &f.tags);
        // The distinct (truncated) tokens, quoted: Postgres sorts and deduplicates a
        // tsvector's lexemes itself, so the order here changes nothing stored.
        let mut lexemes: Vec<&str> = body
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(truncated)
            .collect();
        let doc_len = i32::try_from(lexemes.len()).unwrap_or(i32::MAX);
        lexemes.sort_unstable();
        lexemes.dedup();
        let mut tsv = String::with_capacity(body.len() + 3 * lexemes.len());
        for (i, t) in lexemes.iter().enumerate() {
            if i > 0 {
                tsv.push(' ');
            }
            push_lexeme(&mut tsv, t);
        }
        let id = to_i64(f.id);
        self.ids = Some(self.ids.map_or((id, id), |(first, _)| (first, id)));
        let o = &mut self.text;
        let _ = write!(o, "{id}\t");
        copy_text(o, &f.project);
        o.push('\t');
        copy_text(o, &f.content);
        o.push('\t');
        copy_text(o, &f.fact_type);
        o.push('\t');
        copy_text(o, &tags);
        o.push('\t');
        copy_f64(o, f.confidence);
        o.push('\t');
        copy_opt(o, f.source.as_deref());
        o.push('\t');
        copy_text(o, &f.valid_from);
        o.push('\t');
        copy_opt(o, f.valid_until.as_deref());
        o.push('\t');
        copy_text(o, &f.created_at);
        o.push('\t');
        copy_opt(o, f.deprecated_at.as_deref());
        o.push('\t');
        copy_opt(o, f.deprecation_reason.as_deref());
        o.push('\t');
        copy_f64(o, f.consensus);
        o.push('\t');
        copy_text(o, &body);
        let _ = write!(o, "\t{doc_len}\t");
        copy_text(o, &tsv);
        o.push('\n');
        Ok(doc_len)
    }

    fn full(&self) -> bool {
        self.text.len() >= FACT_COPY_BYTES
    }

    /// Copies the facts held in (one `COPY`) and empties the buffer.
    fn flush(
        &mut self,
        tx: &mut Transaction<'_>,
        stmts: &mut HashMap<&'static str, Statement>,
    ) -> Result<()> {
        let Some(ids) = self.ids.take() else {
            return Ok(());
        };
        let s = cached(tx, stmts, COPY_FACTS_SQL)?;
        let map = |err: postgres::Error| {
            if has_code(&err, &SqlState::UNIQUE_VIOLATION) {
                duplicate_fact(&err, ids)
            } else {
                pg_err(err)
            }
        };
        let mut w = tx.copy_in(&s).map_err(map)?;
        std::io::Write::write_all(&mut w, self.text.as_bytes())
            .map_err(|e| Error::new(ErrorKind::Unavailable, "PostgreSQL COPY").with_source(e))?;
        w.finish().map_err(map)?;
        self.text.clear();
        Ok(())
    }
}

/// The `Conflict` for a fact id that is already taken, naming it (from the server's
/// "Key (id)=(N) already exists." detail; else the range of ids inserted).
fn duplicate_fact(err: &postgres::Error, (first, last): (i64, i64)) -> Error {
    let named = err
        .as_db_error()
        .and_then(|d| d.detail())
        .and_then(|d| d.split_once("=("))
        .and_then(|(_, r)| r.split_once(')'))
        .and_then(|(id, _)| id.parse::<i64>().ok());
    let msg = match named {
        Some(id) => format!("fact {id} already exists"),
        None if first == last => format!("fact {first} already exists"),
        None => format!("a fact with an id in {first}..={last} already exists"),
    };
    Error::new(ErrorKind::Conflict, msg)
}

/// Writes the memory changes of an append, in order, and bumps the memory version.
///
/// New facts go in bulk: consecutive `Insert`s become one `COPY` per [`FACT_COPY_BYTES`] of
/// text (10,000 ordinary facts are about 3 MB: one), the history events of the whole append
/// one `INSERT … UNNEST` per [`EVENT_ROWS_PER_STATEMENT`], and the collection statistics and
/// version one `UPDATE` with the summed deltas; all prepared once per connection. So a batch
/// of N new facts takes a fixed number of round trips (about 5, plus one `COPY` per 8 MiB).
/// Votes, agents, consensus updates and deprecations (a few per `vote`/`deprecate` append,
/// never in bulk) stay one prepared statement each, written after the facts before them, so
/// the changes apply in their order.
fn write_fact_changes(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    changes: &[FactChange],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let (mut docs, mut tokens) = (0i64, 0i64);
    let mut facts = FactRows::default();
    let (mut ev_fact, mut ev_entry) = (Vec::new(), Vec::new());
    for c in changes {
        if let FactChange::Insert(f) = c {
            tokens += i64::from(facts.push(f)?);
            docs += 1;
            if facts.full() {
                facts.flush(tx, stmts)?;
            }
        } else {
            // Whatever comes after a fact may refer to it.
            facts.flush(tx, stmts)?;
            write_one_change(tx, stmts, c)?;
        }
        if let Some((fact, entry)) = c.history_event() {
            ev_fact.push(to_i64(fact));
            ev_entry.push(to_i64(entry));
        }
    }
    facts.flush(tx, stmts)?;
    for (f, e) in ev_fact
        .chunks(EVENT_ROWS_PER_STATEMENT)
        .zip(ev_entry.chunks(EVENT_ROWS_PER_STATEMENT))
    {
        let s = cached(tx, stmts, INSERT_EVENTS_SQL)?;
        tx.execute(&s, &[&f, &e]).map_err(pg_err)?;
    }
    let s = cached(tx, stmts, BUMP_MEMORY_SQL)?;
    tx.execute(&s, &[&docs, &tokens]).map_err(pg_err)?;
    Ok(())
}

/// Writes one change other than a new fact (a prepared statement).
fn write_one_change(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    c: &FactChange,
) -> Result<()> {
    match c {
        FactChange::Insert(_) => unreachable!("new facts are written in bulk"),
        FactChange::PutVote(v) => {
            let s = cached(tx, stmts, PUT_VOTE_SQL)?;
            tx.execute(
                &s,
                &[
                    &to_i64(v.fact_id),
                    &v.agent,
                    &i16::from(v.vote),
                    &v.reason,
                    &v.weight,
                    &v.agreed,
                    &to_i64(v.entry_index),
                    &v.voted_at,
                ],
            )
            .map_err(|err| {
                if has_code(&err, &SqlState::FOREIGN_KEY_VIOLATION)
                    || has_code(&err, &SqlState::CHECK_VIOLATION)
                {
                    Error::not_found(format!("no fact {} to vote on", v.fact_id))
                } else {
                    pg_err(err)
                }
            })?;
        }
        FactChange::SetConsensus { fact_id, consensus } => {
            let s = cached(tx, stmts, SET_CONSENSUS_SQL)?;
            let n = tx
                .execute(&s, &[&to_i64(*fact_id), consensus])
                .map_err(pg_err)?;
            if n != 1 {
                return Err(Error::not_found(format!("no fact {fact_id}")));
            }
        }
        FactChange::PutAgent(a) => {
            let s = cached(tx, stmts, PUT_AGENT_SQL)?;
            tx.execute(
                &s,
                &[
                    &a.agent,
                    &a.reputation,
                    &to_i64(a.votes),
                    &to_i64(a.judged),
                    &to_i64(a.agreed),
                ],
            )
            .map_err(pg_err)?;
        }
        FactChange::Deprecate {
            fact_id,
            at,
            reason,
            ..
        } => {
            let s = cached(tx, stmts, DEPRECATE_SQL)?;
            let n = tx
                .execute(&s, &[&to_i64(*fact_id), at, reason])
                .map_err(pg_err)?;
            if n != 1 {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("fact {fact_id} is missing or already deprecated"),
                ));
            }
        }
    }
    Ok(())
}

impl TileReader for PostgresStore {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        read_tile_in(&mut **self.conn()?, TILE_SQL, level, index)
    }
    /// One round trip for all of them.
    fn read_tiles(&self, keys: &[(u8, u64)]) -> Result<Vec<Option<Vec<Hash>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn()?;
        let sql = c.prepared(TILES_SQL)?;
        let mut found = read_tiles_in(&mut c.client, &sql, keys)?;
        Ok(keys.iter().map(|k| found.remove(k)).collect())
    }
}

impl LedgerStore for PostgresStore {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn migrate(&self) -> Result<MigrationReport> {
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

    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn()?
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .map_err(pg_err)?
            .map(|r| r.get(0)))
    }

    fn init_meta(&self, key: &str, value: &str) -> Result<String> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(pg_err)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &value],
        )
        .map_err(pg_err)?;
        let v: String = tx
            .query_one("SELECT value FROM meta WHERE key = $1", &[&key])
            .map_err(pg_err)?
            .get(0);
        tx.commit().map_err(pg_err)?;
        Ok(v)
    }

    fn head(&self) -> Result<Head> {
        let mut c = self.conn()?;
        let sql = c.prepared(HEAD_SQL)?;
        read_head(&mut c.client, &sql)
    }

    fn append<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn LedgerTx) -> Result<AppendBatch<'a>>,
    ) -> Result<Head> {
        self.commit_append(&mut |tx| Ok((build(tx)?, Vec::new())))
    }

    fn scan_entries(
        &self,
        range: Range<u64>,
        visit: &mut dyn FnMut(StoredEntryRef<'_>) -> Result<()>,
    ) -> Result<()> {
        if range.start >= range.end {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let (start, end) = (to_i64(range.start), to_i64(range.end));
        let mut rows = conn
            .query_raw(
                "SELECT idx, timestamp, project, action, detail, prev_hash, hash FROM entries \
                 WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                [&start as &dyn ToSql, &end],
            )
            .map_err(pg_err)?;
        while let Some(r) = rows.next().map_err(pg_err)? {
            visit(StoredEntryRef {
                entry: EntryRef {
                    index: r.get::<_, i64>(0) as u64,
                    timestamp: r.get(1),
                    project: r.get(2),
                    action: r.get(3),
                    detail: r.get(4),
                },
                prev_hash: r.get(5),
                hash: r.get(6),
            })?;
        }
        Ok(())
    }

    fn last_entry_index(&self) -> Result<Option<u64>> {
        Ok(self
            .conn()?
            .query_one("SELECT MAX(idx) FROM entries", &[])
            .map_err(pg_err)?
            .get::<_, Option<i64>>(0)
            .map(|m| m as u64))
    }

    fn scan_tiles(
        &self,
        level: u8,
        range: Range<u64>,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let (level, start, end) = (i16::from(level), to_i64(range.start), to_i64(range.end));
        let mut rows = conn
            .query_raw(
                "SELECT idx, hashes FROM merkle_tiles WHERE level = $1 AND idx >= $2 AND idx < $3 \
                 ORDER BY idx",
                [&level as &dyn ToSql, &start, &end],
            )
            .map_err(pg_err)?;
        while let Some(r) = rows.next().map_err(pg_err)? {
            visit(r.get::<_, i64>(0) as u64, r.get(1))?;
        }
        Ok(())
    }

    fn add_checkpoint(&self, cp: &CheckpointRecord) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(pg_err)?;
        // Writers of checkpoints take turns, so "larger than every stored one" holds at commit.
        tx.batch_execute("LOCK TABLE checkpoints IN EXCLUSIVE MODE")
            .map_err(pg_err)?;
        let max: Option<i64> = tx
            .query_one("SELECT MAX(tree_size) FROM checkpoints", &[])
            .map_err(pg_err)?
            .get(0);
        check_checkpoint_follows(max.map(|m| m as u64), cp)?;
        let extra = serde_json::to_string(&cp.extra_signatures)
            .map_err(|x| Error::backend(x.to_string()))?;
        tx.execute(
            &format!(
                "INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            &[
                &to_i64(cp.size),
                &cp.root.to_hex(),
                &to_i64(cp.range_start),
                &cp.range_end().map(to_i64),
                &to_i64(cp.range_count),
                &cp.note,
                &extra,
                &cp.created_at,
            ],
        )
        .map_err(pg_err)?;
        for r in &cp.receipts {
            tx.execute(
                "INSERT INTO checkpoint_receipts (tree_size, anchor, target, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &to_i64(cp.size),
                    &r.anchor,
                    &r.target,
                    &r.body,
                    &r.created_at,
                ],
            )
            .map_err(pg_err)?;
        }
        tx.commit().map_err(pg_err)
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointRecord>> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(pg_err)?;
        let out = self.load_checkpoints(&mut tx, "ORDER BY tree_size")?;
        tx.commit().map_err(pg_err)?;
        Ok(out)
    }

    fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>> {
        let mut conn = self.conn()?;
        Ok(self
            .load_checkpoints(&mut **conn, "ORDER BY tree_size DESC LIMIT 1")?
            .pop())
    }

    fn add_receipt(&self, size: u64, r: &Receipt) -> Result<()> {
        let n = self
            .conn()?
            .execute(
                "INSERT INTO checkpoint_receipts (tree_size, anchor, target, body, created_at) \
                 SELECT tree_size, $2, $3, $4, $5 FROM checkpoints WHERE tree_size = $1",
                &[&to_i64(size), &r.anchor, &r.target, &r.body, &r.created_at],
            )
            .map_err(pg_err)?;
        if n == 0 {
            return Err(Error::not_found(format!("no checkpoint of size {size}")));
        }
        Ok(())
    }

    fn record_integrity_check(&self, c: &IntegrityCheck) -> Result<()> {
        self.conn()?
            .execute(
                "INSERT INTO integrity_checks (check_type, status, details, started_at, completed_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[&c.check_type, &c.status, &c.details, &c.started_at, &c.completed_at],
            )
            .map_err(pg_err)?;
        Ok(())
    }

    fn integrity_checks(&self, limit: usize) -> Result<Vec<IntegrityCheck>> {
        Ok(self
            .conn()?
            .query(
                "SELECT check_type, status, COALESCE(details, ''), started_at, completed_at \
                 FROM integrity_checks ORDER BY id DESC LIMIT $1",
                &[&to_i64(limit as u64)],
            )
            .map_err(pg_err)?
            .into_iter()
            .map(|r| IntegrityCheck {
                check_type: r.get(0),
                status: r.get(1),
                details: r.get(2),
                started_at: r.get(3),
                completed_at: r.get(4),
            })
            .collect())
    }

    fn record_export(&self, x: &AuditExport) -> Result<()> {
        self.conn()?
            .execute(
                "INSERT INTO audit_exports (export_type, filename, file_hash, tx_start_id, tx_end_id, \
                 exported_at, exported_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &x.export_type,
                    &x.filename,
                    &x.file_hash,
                    &to_i64(x.start),
                    &to_i64(x.end),
                    &x.exported_at,
                    &x.exported_by,
                ],
            )
            .map_err(pg_err)?;
        Ok(())
    }

    fn exports(&self, limit: usize) -> Result<Vec<AuditExport>> {
        Ok(self
            .conn()?
            .query(
                "SELECT export_type, filename, file_hash, tx_start_id, tx_end_id, exported_at, \
                 exported_by FROM audit_exports ORDER BY id DESC LIMIT $1",
                &[&to_i64(limit as u64)],
            )
            .map_err(pg_err)?
            .into_iter()
            .map(|r| AuditExport {
                export_type: r.get(0),
                filename: r.get(1),
                file_hash: r.get(2),
                start: r.get::<_, i64>(3) as u64,
                end: r.get::<_, i64>(4) as u64,
                exported_at: r.get(5),
                exported_by: r.get(6),
            })
            .collect())
    }
}

impl FactStore for PostgresStore {
    fn append_facts<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn FactTx) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        self.commit_append(&mut |tx| build(tx))
    }

    fn fact(&self, id: u64) -> Result<Option<Fact>> {
        read_fact(&mut **self.conn()?, id)
    }

    fn recall(&self, project: &str, as_of: &str, limit: usize) -> Result<Vec<Fact>> {
        read_facts(
            &mut **self.conn()?,
            &format!(
                "SELECT {FACT_COLUMNS} FROM facts \
                 WHERE project = $1 AND deprecated_at IS NULL \
                 AND valid_from <= $2 AND (valid_until IS NULL OR $2 < valid_until) \
                 ORDER BY consensus DESC, id DESC LIMIT $3"
            ),
            &[&project, &as_of, &to_i64(limit as u64)],
        )
    }

    fn project_facts(&self, project: &str, limit: usize) -> Result<Vec<Fact>> {
        read_facts(
            &mut **self.conn()?,
            &format!(
                "SELECT {FACT_COLUMNS} FROM facts WHERE project = $1 ORDER BY id DESC LIMIT $2"
            ),
            &[&project, &to_i64(limit as u64)],
        )
    }

    fn search_facts(&self, q: &FactSearch) -> Result<Vec<SearchHit>> {
        if q.terms.is_empty() || q.top_k == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn()?;
        let PgConn { client, stmts } = &mut *conn;
        // One snapshot for the collection statistics, the candidates and the facts returned.
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg_err)?;
        // Every fact holding a lexeme of a term (all projects, deprecated ones included: the
        // document counts are over every indexed fact), its token text and whether it passes
        // the query's filters; the statistics come with it (a row of NULLs when none match).
        let tsquery = q
            .terms
            .iter()
            .map(|t| lexeme(t))
            .collect::<Vec<_>>()
            .join(" | ");
        let s = cached(&mut tx, stmts, SEARCH_CANDIDATES_SQL)?;
        let rows = tx
            .query(&s, &[&tsquery, &q.project, &q.as_of, &q.include_deprecated])
            .map_err(pg_err)?;
        let Some(first) = rows.first() else {
            return Err(Error::integrity("the memory_state row is missing"));
        };
        let (docs, total): (i64, i64) = (first.get(0), first.get(1));
        if docs <= 0 {
            return Ok(Vec::new());
        }
        let avg = total as f64 / docs as f64;
        // Each candidate's term frequencies, from its tokens (a lexeme match alone is not
        // enough: lexemes are truncated, tokens are not), and each term's document count.
        let k = q.terms.len();
        let mut df = vec![0u64; k];
        let mut tfs: Vec<u32> = Vec::new();
        let mut kept: Vec<(i64, u32)> = Vec::new();
        let mut tf = vec![0u32; k];
        for r in &rows {
            let Some(body) = r.get::<_, Option<&str>>(4) else {
                continue;
            };
            tf.fill(0);
            for tok in body.split(' ') {
                if let Some(i) = q.terms.iter().position(|t| t == tok) {
                    tf[i] += 1;
                }
            }
            for (d, f) in df.iter_mut().zip(&tf) {
                *d += u64::from(*f > 0);
            }
            if r.get::<_, Option<bool>>(5) == Some(true) && tf.iter().any(|f| *f > 0) {
                let doc_len = u32::try_from(r.get::<_, i32>(3)).unwrap_or(0);
                kept.push((r.get(2), doc_len));
                tfs.extend_from_slice(&tf);
            }
        }
        // The idf of each term present, in query order.
        let idfs: Vec<Option<f64>> = df
            .iter()
            .map(|&n| (n > 0).then(|| cortex_core::memory::bm25::idf(docs as u64, n)))
            .collect();
        let mut scored: Vec<(i64, f64)> = kept
            .iter()
            .zip(tfs.chunks_exact(k))
            .map(|(&(id, doc_len), tf)| {
                // Summed from zero in query-term order, as Bm25Index and FTS5 do (same bits).
                let mut score = 0.0f64;
                for (idf, &f) in idfs.iter().zip(tf) {
                    if let (Some(idf), true) = (idf, f > 0) {
                        score += cortex_core::memory::bm25::term_score(*idf, f, doc_len, avg);
                    }
                }
                (id, score)
            })
            .collect();
        scored.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        scored.truncate(q.top_k);
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        // Only the facts returned are read whole.
        let ids: Vec<i64> = scored.iter().map(|h| h.0).collect();
        let s = cached(&mut tx, stmts, FACTS_BY_ID_SQL)?;
        let mut facts: HashMap<u64, Fact> = tx
            .query(&s, &[&ids])
            .map_err(pg_err)?
            .iter()
            .map(|r| fact_from_row(r).map(|f| (f.id, f)))
            .collect::<Result<_>>()?;
        tx.commit().map_err(pg_err)?;
        scored
            .into_iter()
            .map(|(id, score)| {
                let fact = facts
                    .remove(&(id as u64))
                    .ok_or_else(|| Error::integrity(format!("fact {id} vanished mid-search")))?;
                Ok(SearchHit { fact, score })
            })
            .collect()
    }

    fn votes(&self, fact_id: u64) -> Result<Vec<Vote>> {
        read_votes(&mut **self.conn()?, fact_id)
    }

    fn agent_reputation(&self, agent: &str) -> Result<Option<AgentReputation>> {
        read_agent(&mut **self.conn()?, agent)
    }

    fn fact_history(&self, fact_id: u64) -> Result<Vec<Entry>> {
        Ok(self
            .conn()?
            .query(
                "SELECT e.idx, e.timestamp, e.project, e.action, e.detail \
                 FROM fact_events fe JOIN entries e ON e.idx = fe.entry_index \
                 WHERE fe.fact_id = $1 ORDER BY fe.entry_index",
                &[&to_i64(fact_id)],
            )
            .map_err(pg_err)?
            .into_iter()
            .map(|r| Entry {
                index: r.get::<_, i64>(0) as u64,
                timestamp: r.get(1),
                project: r.get(2),
                action: r.get(3),
                detail: r.get(4),
            })
            .collect())
    }

    fn memory_version(&self) -> Result<u64> {
        Ok(self
            .conn()?
            .query_one("SELECT version FROM memory_state WHERE id = 1", &[])
            .map_err(pg_err)?
            .get::<_, i64>(0) as u64)
    }
}

impl PostgresStore {
    /// One append transaction: the ledger batch and, in the same transaction, the memory
    /// changes the builder returns.
    fn commit_append<'a>(
        &self,
        build: &mut dyn FnMut(&mut PgTx<'_, '_>) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        let mut conn = self.conn()?;
        let PgConn { client, stmts } = &mut *conn;
        let mut tx = client.transaction().map_err(pg_err)?;
        // Locks the head row until commit: every other writer (thread or process) waits here,
        // and then, at READ COMMITTED, sees this transaction's rows in its own statements.
        let lock = cached(&mut tx, stmts, LOCK_HEAD_SQL)?;
        let mut head = read_head(&mut tx, &lock)?;
        if head == Head::default() {
            // An empty head may mean a missing head row, which FOR UPDATE cannot lock: put it
            // back (concurrent writers wait on this insert) and lock it.
            tx.execute(
                "INSERT INTO ledger_head (id, size, last_hash) \
                 VALUES (1, 0, decode(repeat('00', 32), 'hex')) ON CONFLICT (id) DO NOTHING",
                &[],
            )
            .map_err(pg_err)?;
            head = read_head(&mut tx, &lock)?;
        }
        let (batch, changes) = build(&mut PgTx {
            tx: &mut tx,
            stmts,
            head,
            edge: None,
        })?;
        let s = cached(&mut tx, stmts, WRITE_LEDGER_SQL)?;
        write_ledger_rows(&mut tx, &s, &batch)?;
        write_fact_changes(&mut tx, stmts, &changes)?;
        tx.commit().map_err(pg_err)?;
        Ok(batch.new_head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_errors_hide_the_password() {
        let c = PostgresConfig::from_url(
            "postgres://alice:s3cret@db.example:5433/ledger?schema=t1&pool_size=4&password=other",
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("other"),
            "{shown}"
        );
        assert!(shown.contains("alice:***@db.example"), "{shown}");
        assert_eq!(c.schema.as_deref(), Some("t1"));
        assert_eq!(c.pool_size, 4);
        let e = PostgresConfig::from_url("postgres://a:pw@h/d?schema=x;drop").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = PostgresConfig::from_url("mysql://a:pw@h/d").unwrap_err();
        assert!(!e.to_string().contains("pw@"), "{e}");
    }

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let mut o = String::new();
        copy_text(&mut o, "a\tb\nc\rd\\e \\N 'f'");
        copy_opt(&mut o, None);
        copy_f64(&mut o, 1.0 / 3.0);
        assert_eq!(o, "a\\tb\\nc\\rd\\\\e \\\\N 'f'\\N0.3333333333333333");
        for v in [0.1, 5e-324, 1e300, -0.0, 0.700_000_000_000_000_1] {
            let mut o = String::new();
            copy_f64(&mut o, v);
            assert_eq!(o.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{o}");
        }
    }

    #[test]
    fn search_reads_the_fact_columns() {
        let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(norm(FACTS_BY_ID_SQL).contains(&norm(FACT_COLUMNS)));
    }

    #[test]
    fn lexemes_are_quoted() {
        assert_eq!(lexeme("it's"), "'it''s'");
        assert_eq!(lexeme("a\\b"), "'a\\\\b'");
        assert!(lexeme(&"é".repeat(2000)).len() <= MAX_LEXEME_BYTES + 2);
    }
}
