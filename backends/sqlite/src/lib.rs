//! SQLite storage backend for CORTEX (embedded, WAL mode).
//!
//! One writer connection behind a mutex, a pool of reader connections for parallel scans.
//! The agent memory lives in the same file (migration 2): facts, a contentless FTS5 index over
//! `cortex_core::memory::bm25::index_text` ranked by `bm25()` (the same scores as core's `Bm25Index`),
//! votes, agent reputations, each fact's ledger entries, and the memory version; memory rows are
//! written in the append transaction of their ledger entries.
//! Appends run in `BEGIN IMMEDIATE` transactions, so several processes sharing one database file
//! take turns and keep one linear chain. Durability: `synchronous=FULL` (the default) survives
//! power loss; `synchronous=NORMAL` (`?synchronous=normal`) survives a killed process but may lose
//! the last transactions on power loss.

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
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// URL scheme of this backend.
pub const SCHEME: &str = "sqlite";

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
    ),
    (
        2,
        "agent memory: facts, full-text index, votes, agent reputations, fact history, version",
        r#"
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
    ),
];

/// The newest schema version this build knows.
pub fn latest_schema_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Page cache of the writer connection, KiB.
const WRITER_CACHE_KIB: u32 = 16 * 1024;
/// Page cache of each reader connection, KiB.
const READER_CACHE_KIB: u32 = 2 * 1024;
/// Bytes of the database file mapped into memory for reads. Zero: mapped pages count in the
/// process's RSS (a full scan would map the whole file), while pages read through the OS page
/// cache do not; the scan speed given up is a few percent (BENCHMARKS.md).
const MMAP_BYTES: u64 = 0;

/// SQLite `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync at every commit and on WAL checkpoints: survives power loss.
    Full,
    /// fsync only on WAL checkpoints: survives a killed process, not power loss.
    Normal,
}

/// How to open a SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability mode.
    pub synchronous: Synchronous,
    /// How long to wait for another process's write lock.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(30),
        }
    }
}

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

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| {
        let kind = match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Backend,
        };
        Error::new(kind, format!("SQLite error on {}", path.display())).with_source(e)
    }
}

impl SqliteStore {
    /// Parses `sqlite:///abs/path`, `sqlite://rel/path` or `sqlite:path`, with optional
    /// `?synchronous=full|normal`, and opens (creating and migrating) the database.
    pub fn open_url(url: &str) -> Result<SqliteStore> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| Error::config(format!("{url:?} is not a sqlite: URL")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(Error::config(format!("{url:?} names no database file")));
        }
        let mut options = SqliteOptions::default();
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some(("synchronous", "full" | "FULL")) => options.synchronous = Synchronous::Full,
                Some(("synchronous", "normal" | "NORMAL")) => {
                    options.synchronous = Synchronous::Normal
                }
                _ => {
                    return Err(Error::config(format!(
                        "unknown SQLite URL option {kv:?}; available: synchronous=full|normal"
                    )));
                }
            }
        }
        Self::open(Path::new(path), options)
    }

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

    fn connect(path: &Path, options: &SqliteOptions, read_only: bool) -> Result<Connection> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let e = sql_err(path);
        let conn = Connection::open_with_flags(path, flags).map_err(&e)?;
        conn.busy_timeout(options.busy_timeout).map_err(&e)?;
        // Larger pages mean fewer b-tree cells to balance per appended row; only takes effect
        // when the database is created (before WAL mode is set).
        // These fail, with a clear message naming the file, if it is not a SQLite database.
        let unusable = |err: rusqlite::Error| {
            Error::invalid(format!(
                "{} is not a usable SQLite database",
                path.display()
            ))
            .with_source(err)
        };
        if !read_only {
            conn.execute_batch("PRAGMA page_size=8192")
                .map_err(unusable)?;
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(unusable)?;
        if !mode.eq_ignore_ascii_case("wal") && !read_only {
            return Err(Error::backend(format!(
                "{} could not be switched to WAL mode",
                path.display()
            )));
        }
        // The writer keeps a larger page cache (b-tree interior pages of every table it appends
        // to); readers lean on the OS page cache, and there may be several of them, so their
        // caches stay small to keep a serving process's memory bounded.
        let cache_kib = if read_only {
            READER_CACHE_KIB
        } else {
            WRITER_CACHE_KIB
        };
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA cache_size=-{cache_kib}; \
             PRAGMA wal_autocheckpoint=8192; PRAGMA mmap_size={MMAP_BYTES}; PRAGMA temp_store=MEMORY;"
        ))
        .map_err(&e)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        self.writer
            .lock()
            .map_err(|_| Error::backend("SQLite writer lock poisoned"))
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self
            .readers
            .lock()
            .map_err(|_| Error::backend("reader pool poisoned"))?
            .pop();
        let conn = match conn {
            Some(c) => c,
            None => Self::connect(&self.path, &self.options, true)?,
        };
        let out = f(&conn);
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < 8
        {
            pool.push(conn);
        }
        out
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        sql_err(&self.path)
    }
}

/// Rows per multi-row INSERT: fewer statement executions per entry.
const ROWS_PER_INSERT: usize = 32;

fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO entries (idx, timestamp, project, action, detail, prev_hash, hash) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?)");
    }
    sql
}

fn insert_entries(tx: &rusqlite::Transaction<'_>, b: &AppendBatch<'_>) -> rusqlite::Result<()> {
    let mut done = 0;
    while done < b.entries.len() {
        let rows = if b.entries.len() - done >= ROWS_PER_INSERT {
            ROWS_PER_INSERT
        } else {
            1
        };
        let mut stmt = tx.prepare_cached(&insert_sql(rows))?;
        let mut p = 1;
        for i in done..done + rows {
            let (e, (prev, hash)) = (&b.entries[i], &b.links[i]);
            stmt.raw_bind_parameter(p, to_i64(b.first_index + i as u64))?;
            stmt.raw_bind_parameter(p + 1, b.timestamp.as_str())?;
            stmt.raw_bind_parameter(p + 2, e.project.as_str())?;
            stmt.raw_bind_parameter(p + 3, e.action.as_str())?;
            stmt.raw_bind_parameter(p + 4, e.detail.as_str())?;
            stmt.raw_bind_parameter(p + 5, &prev.0[..])?;
            stmt.raw_bind_parameter(p + 6, &hash.0[..])?;
            p += 7;
        }
        stmt.raw_execute()?;
        done += rows;
    }
    Ok(())
}

struct SqliteTx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    head: Head,
    path: &'a Path,
}

fn read_tile_in(
    conn: &Connection,
    path: &Path,
    level: u8,
    index: u64,
) -> Result<Option<Vec<Hash>>> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hashes FROM merkle_tiles WHERE level = ?1 AND idx = ?2")
        .and_then(|mut s| {
            s.query_row(params![level, to_i64(index)], |r| r.get(0))
                .optional()
        })
        .map_err(sql_err(path))?;
    bytes.map(|b| Tile::decode(&b)).transpose()
}

impl LedgerTx for SqliteTx<'_> {
    fn head(&self) -> Head {
        self.head
    }
    fn read_tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        read_tile_in(self.tx, self.path, level, index)
    }
}

impl FactTx for SqliteTx<'_> {
    fn fact(&mut self, id: u64) -> Result<Option<Fact>> {
        read_fact(self.tx, self.path, id)
    }
    fn votes(&mut self, fact_id: u64) -> Result<Vec<Vote>> {
        read_votes(self.tx, self.path, fact_id)
    }
    fn agent_reputation(&mut self, agent: &str) -> Result<Option<AgentReputation>> {
        read_agent(self.tx, self.path, agent)
    }
}

const FACT_COLUMNS: &str = "id, project, content, fact_type, tags, confidence, source, valid_from, \
                            valid_until, created_at, deprecated_at, deprecation_reason, consensus";

fn fact_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Fact> {
    let tags: String = r.get(4)?;
    Ok(Fact {
        id: r.get::<_, i64>(0)? as u64,
        project: r.get(1)?,
        content: r.get(2)?,
        fact_type: r.get(3)?,
        tags: serde_json::from_str(&tags).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?,
        confidence: r.get(5)?,
        source: r.get(6)?,
        valid_from: r.get(7)?,
        valid_until: r.get(8)?,
        created_at: r.get(9)?,
        deprecated_at: r.get(10)?,
        deprecation_reason: r.get(11)?,
        consensus: r.get(12)?,
    })
}

fn read_fact(conn: &Connection, path: &Path, id: u64) -> Result<Option<Fact>> {
    conn.prepare_cached(&format!("SELECT {FACT_COLUMNS} FROM facts WHERE id = ?1"))
        .and_then(|mut s| s.query_row([to_i64(id)], fact_from_row).optional())
        .map_err(sql_err(path))
}

fn read_facts(
    conn: &Connection,
    path: &Path,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Fact>> {
    let e = sql_err(path);
    let mut stmt = conn.prepare_cached(sql).map_err(&e)?;
    let rows = stmt.query_map(params, fact_from_row).map_err(&e)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
}

fn read_votes(conn: &Connection, path: &Path, fact_id: u64) -> Result<Vec<Vote>> {
    let e = sql_err(path);
    let mut stmt = conn
        .prepare_cached(
            "SELECT fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at \
             FROM fact_votes WHERE fact_id = ?1 ORDER BY agent",
        )
        .map_err(&e)?;
    let rows = stmt
        .query_map([to_i64(fact_id)], |r| {
            Ok(Vote {
                fact_id: r.get::<_, i64>(0)? as u64,
                agent: r.get(1)?,
                vote: r.get(2)?,
                reason: r.get(3)?,
                weight: r.get(4)?,
                agreed: r.get(5)?,
                entry_index: r.get::<_, i64>(6)? as u64,
                voted_at: r.get(7)?,
            })
        })
        .map_err(&e)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
}

fn read_agent(conn: &Connection, path: &Path, agent: &str) -> Result<Option<AgentReputation>> {
    conn.prepare_cached(
        "SELECT agent, reputation, votes, judged, agreed FROM agents WHERE agent = ?1",
    )
    .and_then(|mut s| {
        s.query_row([agent], |r| {
            Ok(AgentReputation {
                agent: r.get(0)?,
                reputation: r.get(1)?,
                votes: r.get::<_, i64>(2)? as u64,
                judged: r.get::<_, i64>(3)? as u64,
                agreed: r.get::<_, i64>(4)? as u64,
            })
        })
        .optional()
    })
    .map_err(sql_err(path))
}

fn is_constraint(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// Writes the memory changes of an append, in order, and bumps the memory version.
fn write_fact_changes(tx: &Connection, path: &Path, changes: &[FactChange]) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let e = sql_err(path);
    for c in changes {
        match c {
            FactChange::Insert(f) => {
                let tags =
                    serde_json::to_string(&f.tags).map_err(|x| Error::backend(x.to_string()))?;
                tx.prepare_cached(&format!(
                    "INSERT INTO facts ({FACT_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        to_i64(f.id),
                        f.project,
                        f.content,
                        f.fact_type,
                        tags,
                        f.confidence,
                        f.source,
                        f.valid_from,
                        f.valid_until,
                        f.created_at,
                        f.deprecated_at,
                        f.deprecation_reason,
                        f.consensus
                    ])
                })
                .map_err(|err| {
                    if is_constraint(&err) {
                        Error::new(ErrorKind::Conflict, format!("fact {} already exists", f.id))
                    } else {
                        e(err)
                    }
                })?;
                tx.prepare_cached("INSERT INTO facts_fts (rowid, body) VALUES (?1, ?2)")
                    .and_then(|mut s| {
                        s.execute(params![
                            to_i64(f.id),
                            cortex_core::memory::bm25::index_text(&f.content, &f.tags)
                        ])
                    })
                    .map_err(&e)?;
            }
            FactChange::PutVote(v) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO fact_votes \
                     (fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        to_i64(v.fact_id),
                        v.agent,
                        v.vote,
                        v.reason,
                        v.weight,
                        v.agreed,
                        to_i64(v.entry_index),
                        v.voted_at
                    ])
                })
                .map_err(|err| {
                    if is_constraint(&err) {
                        Error::not_found(format!("no fact {} to vote on", v.fact_id))
                    } else {
                        e(err)
                    }
                })?;
            }
            FactChange::SetConsensus { fact_id, consensus } => {
                let n = tx
                    .prepare_cached("UPDATE facts SET consensus = ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![to_i64(*fact_id), consensus]))
                    .map_err(&e)?;
                if n != 1 {
                    return Err(Error::not_found(format!("no fact {fact_id}")));
                }
            }
            FactChange::PutAgent(a) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO agents (agent, reputation, votes, judged, agreed) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        a.agent,
                        a.reputation,
                        to_i64(a.votes),
                        to_i64(a.judged),
                        to_i64(a.agreed)
                    ])
                })
                .map_err(&e)?;
            }
            FactChange::Deprecate {
                fact_id,
                at,
                reason,
                ..
            } => {
                let n = tx
                    .prepare_cached(
                        "UPDATE facts SET deprecated_at = ?2, deprecation_reason = ?3 \
                         WHERE id = ?1 AND deprecated_at IS NULL",
                    )
                    .and_then(|mut s| s.execute(params![to_i64(*fact_id), at, reason]))
                    .map_err(&e)?;
                if n != 1 {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("fact {fact_id} is missing or already deprecated"),
                    ));
                }
            }
        }
        if let Some((fact, entry)) = c.history_event() {
            tx.prepare_cached("INSERT INTO fact_events (fact_id, entry_index) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![to_i64(fact), to_i64(entry)]))
                .map_err(&e)?;
        }
    }
    tx.prepare_cached("UPDATE memory_state SET version = version + 1 WHERE id = 1")
        .and_then(|mut s| s.execute([]))
        .map_err(&e)?;
    Ok(())
}

/// The FTS5 query for `terms`: each a quoted string, any of them matching.
fn fts_query(terms: &[String]) -> String {
    let mut q = String::new();
    for t in terms {
        if !q.is_empty() {
            q.push_str(" OR ");
        }
        q.push('"');
        q.push_str(&t.replace('"', "\"\""));
        q.push('"');
    }
    q
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn read_head(conn: &Connection, path: &Path) -> Result<Head> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT size, last_hash FROM ledger_head WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(sql_err(path))?;
    match row {
        None => Ok(Head::default()),
        Some((size, hash)) => Ok(Head {
            size: u64::try_from(size)
                .map_err(|_| Error::integrity("ledger head size is negative"))?,
            last_hash: Hash::from_slice(&hash)
                .map_err(|_| Error::integrity("ledger head hash is not 32 bytes"))?,
        }),
    }
}

/// A text column as stored; non-text or non-UTF-8 values are rendered so verify can flag them.
fn text<'a>(v: ValueRef<'a>, spill: &'a mut String) -> &'a str {
    match v {
        ValueRef::Text(b) => match std::str::from_utf8(b) {
            Ok(s) => s,
            Err(_) => {
                *spill = String::from_utf8_lossy(b).into_owned();
                spill
            }
        },
        ValueRef::Null => "",
        ValueRef::Integer(i) => {
            *spill = i.to_string();
            spill
        }
        ValueRef::Real(f) => {
            *spill = f.to_string();
            spill
        }
        ValueRef::Blob(b) => {
            *spill = String::from_utf8_lossy(b).into_owned();
            spill
        }
    }
}

fn blob(v: ValueRef<'_>) -> &[u8] {
    match v {
        ValueRef::Blob(b) | ValueRef::Text(b) => b,
        _ => &[],
    }
}

fn checkpoint_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(CheckpointRecord, String)> {
    let root_hex: String = r.get(1)?;
    let extra: String = r.get(6)?;
    Ok((
        CheckpointRecord {
            size: r.get::<_, i64>(0)? as u64,
            // A root that is not valid hex reads as zeros; verify then reports it as a bad root.
            root: Hash::from_hex(&root_hex).unwrap_or(Hash::ZERO),
            range_start: r.get::<_, i64>(2)? as u64,
            range_count: r.get::<_, i64>(4)? as u64,
            note: r.get(5)?,
            created_at: r.get(7)?,
            extra_signatures: Vec::new(),
            receipts: Vec::new(),
        },
        extra,
    ))
}

const CHECKPOINT_COLUMNS: &str = "tree_size, root_hash, range_start, range_end, range_count, \
                                  signed_note, extra_signatures, created_at";

impl SqliteStore {
    fn load_checkpoints(&self, conn: &Connection, sql_tail: &str) -> Result<Vec<CheckpointRecord>> {
        let e = self.err();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints {sql_tail}"
            ))
            .map_err(&e)?;
        let rows = stmt.query_map([], checkpoint_from_row).map_err(&e)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut cp, extra) = row.map_err(&e)?;
            cp.extra_signatures =
                serde_json::from_str::<Vec<ExtraSignature>>(&extra).unwrap_or_default();
            let mut rs = conn
                .prepare_cached(
                    "SELECT anchor, target, body, created_at FROM checkpoint_receipts \
                     WHERE tree_size = ?1 ORDER BY id",
                )
                .map_err(&e)?;
            cp.receipts = rs
                .query_map([to_i64(cp.size)], |r| {
                    Ok(Receipt {
                        anchor: r.get(0)?,
                        target: r.get(1)?,
                        body: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                })
                .map_err(&e)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(&e)?;
            out.push(cp);
        }
        Ok(out)
    }
}

impl TileReader for SqliteStore {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        self.with_reader(|c| read_tile_in(c, &self.path, level, index))
    }
    fn read_tiles(&self, keys: &[(u8, u64)]) -> Result<Vec<Option<Vec<Hash>>>> {
        self.with_reader(|c| {
            keys.iter()
                .map(|&(l, i)| read_tile_in(c, &self.path, l, i))
                .collect()
        })
    }
}

impl LedgerStore for SqliteStore {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn migrate(&self) -> Result<MigrationReport> {
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
        for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > from) {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&e)?;
            // Another process may have migrated while we waited for the lock.
            let done: bool = tx
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)",
                    [version],
                    |r| r.get(0),
                )
                .map_err(&e)?;
            if !done {
                tx.execute_batch(sql).map_err(&e)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
                    params![version, description, cortex_core::ledger::entry::now_timestamp()],
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

    fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with_reader(|c| {
            c.prepare_cached("SELECT value FROM meta WHERE key = ?1")
                .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
                .map_err(self.err())
        })
    }

    fn init_meta(&self, key: &str, value: &str) -> Result<String> {
        let mut conn = self.writer()?;
        let e = sql_err(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
            [key, value],
        )
        .map_err(&e)?;
        let v: String = tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(v)
    }

    fn head(&self) -> Result<Head> {
        self.with_reader(|c| read_head(c, &self.path))
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
        self.with_reader(|c| {
            let e = self.err();
            let mut stmt = c
                .prepare_cached(
                    "SELECT idx, timestamp, project, action, detail, prev_hash, hash FROM entries \
                     WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
                )
                .map_err(&e)?;
            let mut rows = stmt
                .query(params![to_i64(range.start), to_i64(range.end)])
                .map_err(&e)?;
            let (mut s1, mut s2, mut s3, mut s4) =
                (String::new(), String::new(), String::new(), String::new());
            while let Some(r) = rows.next().map_err(&e)? {
                let idx: i64 = r.get(0).map_err(&e)?;
                let entry = EntryRef {
                    index: idx as u64,
                    timestamp: text(r.get_ref(1).map_err(&e)?, &mut s1),
                    project: text(r.get_ref(2).map_err(&e)?, &mut s2),
                    action: text(r.get_ref(3).map_err(&e)?, &mut s3),
                    detail: text(r.get_ref(4).map_err(&e)?, &mut s4),
                };
                visit(StoredEntryRef {
                    entry,
                    prev_hash: blob(r.get_ref(5).map_err(&e)?),
                    hash: blob(r.get_ref(6).map_err(&e)?),
                })?;
            }
            Ok(())
        })
    }

    fn last_entry_index(&self) -> Result<Option<u64>> {
        self.with_reader(|c| {
            c.query_row("SELECT MAX(idx) FROM entries", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|m| m.map(|m| m as u64))
            .map_err(self.err())
        })
    }

    fn scan_tiles(
        &self,
        level: u8,
        range: Range<u64>,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.with_reader(|c| {
            let e = self.err();
            let mut stmt = c
                .prepare_cached(
                    "SELECT idx, hashes FROM merkle_tiles WHERE level = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx",
                )
                .map_err(&e)?;
            let mut rows = stmt.query(params![level, to_i64(range.start), to_i64(range.end)]).map_err(&e)?;
            while let Some(r) = rows.next().map_err(&e)? {
                let idx: i64 = r.get(0).map_err(&e)?;
                visit(idx as u64, blob(r.get_ref(1).map_err(&e)?))?;
            }
            Ok(())
        })
    }

    fn add_checkpoint(&self, cp: &CheckpointRecord) -> Result<()> {
        let mut conn = self.writer()?;
        let e = sql_err(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let max: Option<i64> = tx
            .query_row("SELECT MAX(tree_size) FROM checkpoints", [], |r| r.get(0))
            .map_err(&e)?;
        check_checkpoint_follows(max.map(|m| m as u64), cp)?;
        let extra = serde_json::to_string(&cp.extra_signatures)
            .map_err(|x| Error::backend(x.to_string()))?;
        tx.execute(
            &format!("INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                to_i64(cp.size),
                cp.root.to_hex(),
                to_i64(cp.range_start),
                cp.range_end().map(to_i64),
                to_i64(cp.range_count),
                cp.note,
                extra,
                cp.created_at
            ],
        )
        .map_err(&e)?;
        for r in &cp.receipts {
            tx.execute(
                "INSERT INTO checkpoint_receipts (tree_size, anchor, target, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![to_i64(cp.size), r.anchor, r.target, r.body, r.created_at],
            )
            .map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointRecord>> {
        self.with_reader(|c| self.load_checkpoints(c, "ORDER BY tree_size"))
    }

    fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>> {
        self.with_reader(|c| {
            Ok(self
                .load_checkpoints(c, "ORDER BY tree_size DESC LIMIT 1")?
                .pop())
        })
    }

    fn add_receipt(&self, size: u64, r: &Receipt) -> Result<()> {
        let conn = self.writer()?;
        let e = sql_err(&self.path);
        let exists: bool = conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM checkpoints WHERE tree_size = ?1)",
                [to_i64(size)],
                |x| x.get(0),
            )
            .map_err(&e)?;
        if !exists {
            return Err(Error::not_found(format!("no checkpoint of size {size}")));
        }
        conn.execute(
            "INSERT INTO checkpoint_receipts (tree_size, anchor, target, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![to_i64(size), r.anchor, r.target, r.body, r.created_at],
        )
        .map_err(&e)?;
        Ok(())
    }

    fn record_integrity_check(&self, c: &IntegrityCheck) -> Result<()> {
        self.writer()?
            .execute(
                "INSERT INTO integrity_checks (check_type, status, details, started_at, completed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c.check_type, c.status, c.details, c.started_at, c.completed_at],
            )
            .map_err(self.err())?;
        Ok(())
    }

    fn integrity_checks(&self, limit: usize) -> Result<Vec<IntegrityCheck>> {
        self.with_reader(|c| {
            let e = self.err();
            let mut s = c
                .prepare_cached(
                    "SELECT check_type, status, COALESCE(details, ''), started_at, completed_at \
                     FROM integrity_checks ORDER BY id DESC LIMIT ?1",
                )
                .map_err(&e)?;
            s.query_map([limit as i64], |r| {
                Ok(IntegrityCheck {
                    check_type: r.get(0)?,
                    status: r.get(1)?,
                    details: r.get(2)?,
                    started_at: r.get(3)?,
                    completed_at: r.get(4)?,
                })
            })
            .map_err(&e)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(&e)
        })
    }

    fn record_export(&self, x: &AuditExport) -> Result<()> {
        self.writer()?
            .execute(
                "INSERT INTO audit_exports (export_type, filename, file_hash, tx_start_id, tx_end_id, exported_at, exported_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![x.export_type, x.filename, x.file_hash, to_i64(x.start), to_i64(x.end), x.exported_at, x.exported_by],
            )
            .map_err(self.err())?;
        Ok(())
    }

    fn exports(&self, limit: usize) -> Result<Vec<AuditExport>> {
        self.with_reader(|c| {
            let e = self.err();
            let mut s = c
                .prepare_cached(
                    "SELECT export_type, filename, file_hash, tx_start_id, tx_end_id, exported_at, exported_by \
                     FROM audit_exports ORDER BY id DESC LIMIT ?1",
                )
                .map_err(&e)?;
            s.query_map([limit as i64], |r| {
                Ok(AuditExport {
                    export_type: r.get(0)?,
                    filename: r.get(1)?,
                    file_hash: r.get(2)?,
                    start: r.get::<_, i64>(3)? as u64,
                    end: r.get::<_, i64>(4)? as u64,
                    exported_at: r.get(5)?,
                    exported_by: r.get(6)?,
                })
            })
            .map_err(&e)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(&e)
        })
    }
}

impl FactStore for SqliteStore {
    fn append_facts<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn FactTx) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        self.commit_append(&mut |tx| build(tx))
    }

    fn fact(&self, id: u64) -> Result<Option<Fact>> {
        self.with_reader(|c| read_fact(c, &self.path, id))
    }

    fn recall(&self, project: &str, as_of: &str, limit: usize) -> Result<Vec<Fact>> {
        self.with_reader(|c| {
            read_facts(
                c,
                &self.path,
                &format!(
                    "SELECT {FACT_COLUMNS} FROM facts INDEXED BY facts_recall \
                     WHERE project = ?1 AND deprecated_at IS NULL \
                     AND valid_from <= ?2 AND (valid_until IS NULL OR ?2 < valid_until) \
                     ORDER BY consensus DESC, id DESC LIMIT ?3"
                ),
                params![project, as_of, to_i64(limit as u64)],
            )
        })
    }

    fn project_facts(&self, project: &str, limit: usize) -> Result<Vec<Fact>> {
        self.with_reader(|c| {
            read_facts(
                c,
                &self.path,
                &format!(
                    "SELECT {FACT_COLUMNS} FROM facts WHERE project = ?1 ORDER BY id DESC LIMIT ?2"
                ),
                params![project, to_i64(limit as u64)],
            )
        })
    }

    fn search_facts(&self, q: &FactSearch) -> Result<Vec<SearchHit>> {
        if q.terms.is_empty() || q.top_k == 0 {
            return Ok(Vec::new());
        }
        let cols = FACT_COLUMNS
            .split(", ")
            .map(|c| format!("f.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        self.with_reader(|c| {
            let e = self.err();
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {cols}, bm25(facts_fts) AS rank \
                     FROM facts_fts CROSS JOIN facts f ON f.id = facts_fts.rowid \
                     WHERE facts_fts MATCH ?1 \
                     AND (?2 IS NULL OR f.project = ?2) \
                     AND f.valid_from <= ?3 AND (f.valid_until IS NULL OR ?3 < f.valid_until) \
                     AND (?4 OR f.deprecated_at IS NULL) \
                     ORDER BY rank, f.id DESC LIMIT ?5"
                ))
                .map_err(&e)?;
            let rows = stmt
                .query_map(
                    params![
                        fts_query(&q.terms),
                        q.project,
                        q.as_of,
                        q.include_deprecated,
                        to_i64(q.top_k as u64)
                    ],
                    |r| {
                        Ok(SearchHit {
                            fact: fact_from_row(r)?,
                            score: -r.get::<_, f64>(13)?,
                        })
                    },
                )
                .map_err(&e)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
        })
    }

    fn votes(&self, fact_id: u64) -> Result<Vec<Vote>> {
        self.with_reader(|c| read_votes(c, &self.path, fact_id))
    }

    fn agent_reputation(&self, agent: &str) -> Result<Option<AgentReputation>> {
        self.with_reader(|c| read_agent(c, &self.path, agent))
    }

    fn fact_history(&self, fact_id: u64) -> Result<Vec<Entry>> {
        self.with_reader(|c| {
            let e = self.err();
            let mut stmt = c
                .prepare_cached(
                    "SELECT e.idx, e.timestamp, e.project, e.action, e.detail \
                     FROM fact_events fe JOIN entries e ON e.idx = fe.entry_index \
                     WHERE fe.fact_id = ?1 ORDER BY fe.entry_index",
                )
                .map_err(&e)?;
            let rows = stmt
                .query_map([to_i64(fact_id)], |r| {
                    Ok(Entry {
                        index: r.get::<_, i64>(0)? as u64,
                        timestamp: r.get(1)?,
                        project: r.get(2)?,
                        action: r.get(3)?,
                        detail: r.get(4)?,
                    })
                })
                .map_err(&e)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
        })
    }

    fn memory_version(&self) -> Result<u64> {
        self.with_reader(|c| {
            c.prepare_cached("SELECT version FROM memory_state WHERE id = 1")
                .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
                .map(|v| v as u64)
                .map_err(self.err())
        })
    }
}

impl SqliteStore {
    /// One append transaction: the ledger batch and, in the same transaction, the memory
    /// changes the builder returns.
    fn commit_append<'a>(
        &self,
        build: &mut dyn FnMut(&mut SqliteTx<'_>) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        let mut conn = self.writer()?;
        let e = sql_err(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let head = read_head(&tx, &self.path)?;
        let (batch, changes) = build(&mut SqliteTx {
            tx: &tx,
            head,
            path: &self.path,
        })?;
        {
            insert_entries(&tx, &batch).map_err(|err| match &err {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "entries from {} already exist: the ledger head is behind its rows \
                             (run `cortex ledger verify`)",
                            batch.first_index
                        ),
                    )
                }
                _ => e(err),
            })?;
            let mut tiles = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO merkle_tiles (level, idx, hashes) VALUES (?1, ?2, ?3)",
                )
                .map_err(&e)?;
            for t in &batch.tiles {
                tiles
                    .execute(params![t.level, to_i64(t.index), t.to_bytes()])
                    .map_err(&e)?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO ledger_head (id, size, last_hash) VALUES (1, ?1, ?2)",
                params![to_i64(batch.new_head.size), &batch.new_head.last_hash.0[..]],
            )
            .map_err(&e)?;
            write_fact_changes(&tx, &self.path, &changes)?;
        }
        tx.commit().map_err(&e)?;
        Ok(batch.new_head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            c.execute_batch(MIGRATIONS[0].2).unwrap();
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

    #[test]
    fn two_handles_on_one_file_share_the_memory_and_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let open = || {
            let store: cortex_core::DynStore =
                Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
            cortex_core::AgentMemory::open(store, Default::default())
                .unwrap()
                .with_search_index()
        };
        let (a, b) = (open(), open());
        b.warm_up().unwrap();
        let v0 = b.version().unwrap();
        let id = a
            .store_fact(&cortex_core::NewFact::new("p", "written by a"))
            .unwrap()
            .facts[0]
            .id;
        assert_eq!(
            b.version().unwrap(),
            v0 + 1,
            "the other handle sees the bump"
        );
        let hits = b.search(&cortex_core::SearchQuery::new("written")).unwrap();
        assert_eq!(hits.len(), 1, "the other handle's index sees the fact");
        assert_eq!(hits[0].fact.id, id);
        b.vote(id, "agent-b", 1, None).unwrap();
        assert!(a.fact(id).unwrap().consensus > 0.0);
        assert_eq!(a.version().unwrap(), v0 + 2);
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
                from_version: 2,
                to_version: 2
            }
        );
    }
}
