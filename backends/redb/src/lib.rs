//! redb storage backend for CORTEX: one pure-Rust, MVCC key-value file, no C and no server.
//!
//! Every ledger row is a value keyed by its index as 8 big-endian bytes (so key order is index
//! order), holding the entry's fields and chain hashes as raw bytes: `verify` reads exactly what
//! is on disk. Tiles, the head, settings, checkpoints and receipts, audit records and the agent
//! memory (facts, votes, agents, each fact's ledger entries, the memory version) are tables of
//! the same file, written in the append's single write transaction, committed with
//! [`redb::Durability::Immediate`] (fsync before the append returns).
//!
//! Search: the BM25 postings are kept in memory ([`cortex_core::memory::bm25::Bm25Index`]), rebuilt from
//! the facts table when the store opens and extended after every committed append, so scores and
//! order are core's. That is exact because every write to the file goes through this handle:
//!
//! **One process per file.** redb locks the file when it is opened (the default
//! `ConcurrencyMode::ExclusiveWriter`), so a second process (or a second `RedbStore` on the same
//! file in one process) gets an [`ErrorKind::Unavailable`] error instead of sharing it. Within
//! the process, appends are serialized (redb allows one write transaction at a time) and reads
//! run in parallel on MVCC snapshots. Several writer processes on one ledger need the SQLite or
//! Postgres backend.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;

use codec::RawEntry;
use cortex_core::ledger::checkpoint::{CheckpointRecord, Receipt, check_checkpoint_follows};
use cortex_core::ledger::entry::{Entry, StoredEntryRef};
use cortex_core::ledger::store::{
    AppendBatch, AuditExport, Head, IntegrityCheck, LedgerStore, LedgerTx, MigrationReport,
};
use cortex_core::ledger::tiles::{Tile, TileReader};
use cortex_core::memory::bm25::{Bm25Index, index_text};
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{FactBatch, FactChange, FactSearch, FactStore, FactTx, SearchHit};
use cortex_core::{Error, ErrorKind, Hash, Result};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// URL scheme of this backend.
pub const SCHEME: &str = "redb";

/// Schema version record: `version` → the newest migration applied.
const SCHEMA: TableDefinition<&str, u32> = TableDefinition::new("cortex_schema");
/// Ledger settings.
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Single values: `head` (size and last hash), `memory_version` (u64, big-endian).
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
/// Ledger rows: index (big-endian) → encoded row.
const ENTRIES: TableDefinition<&[u8; 8], &[u8]> = TableDefinition::new("entries");
/// Merkle tiles: (level, index) → concatenated hashes.
const TILES: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("merkle_tiles");
/// Checkpoints by tree size (receipts excluded).
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
/// Receipts: (tree size, sequence) → receipt.
const RECEIPTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("checkpoint_receipts");
/// Verification runs by sequence.
const CHECKS: TableDefinition<u64, &[u8]> = TableDefinition::new("integrity_checks");
/// Exports by sequence.
const EXPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_exports");
/// Facts by id.
const FACTS: TableDefinition<u64, &[u8]> = TableDefinition::new("facts");
/// A project's facts: (project, id) → ().
const FACTS_BY_PROJECT: TableDefinition<(&str, u64), ()> = TableDefinition::new("facts_by_project");
/// Votes: (fact id, agent) → vote.
const VOTES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("fact_votes");
/// Agent reputations by name.
const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
/// Each fact's ledger entries: (fact id, entry index) → ().
const FACT_EVENTS: TableDefinition<(u64, u64), ()> = TableDefinition::new("fact_events");

const HEAD_KEY: &str = "head";
const MEMORY_VERSION_KEY: &str = "memory_version";

/// Schema migrations, applied in order inside one write transaction. A key-value schema has no
/// DDL: a migration creates tables and seeds or rewrites records.
/// One schema step: creates tables and seeds or rewrites records inside the migration's write
/// transaction.
type MigrationStep = fn(&WriteTransaction) -> std::result::Result<(), redb::Error>;

const MIGRATIONS: &[(u32, &str, MigrationStep)] = &[(
    1,
    "ledger, checkpoints, audit records and agent memory",
    migration_1,
)];

fn migration_1(tx: &WriteTransaction) -> std::result::Result<(), redb::Error> {
    tx.open_table(META)?;
    tx.open_table(ENTRIES)?;
    tx.open_table(TILES)?;
    tx.open_table(CHECKPOINTS)?;
    tx.open_table(RECEIPTS)?;
    tx.open_table(CHECKS)?;
    tx.open_table(EXPORTS)?;
    tx.open_table(FACTS)?;
    tx.open_table(FACTS_BY_PROJECT)?;
    tx.open_table(VOTES)?;
    tx.open_table(AGENTS)?;
    tx.open_table(FACT_EVENTS)?;
    let mut state = tx.open_table(STATE)?;
    if state.get(MEMORY_VERSION_KEY)?.is_none() {
        state.insert(MEMORY_VERSION_KEY, &0u64.to_be_bytes()[..])?;
    }
    Ok(())
}

/// The newest schema version this build knows.
pub fn latest_schema_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// A CORTEX store in one redb file.
pub struct RedbStore {
    path: PathBuf,
    db: Database,
    /// Serializes appends with the search-index update that follows their commit.
    writer: Mutex<()>,
    /// BM25 postings of every fact, deprecated ones included.
    search: RwLock<Bm25Index>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedbStore({})", self.path.display())
    }
}

/// Maps a redb error to a CORTEX error naming the file.
fn db_err(path: &Path, e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    let kind = match &e {
        redb::Error::DatabaseAlreadyOpen
        | redb::Error::LockProtocolMismatch
        | redb::Error::TransactionInProgress => ErrorKind::Unavailable,
        redb::Error::ValueTooLarge(_) => ErrorKind::InvalidInput,
        redb::Error::Corrupted(_) => ErrorKind::Integrity,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("redb error on {}", path.display())).with_source(e)
}

fn be(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn from_be(key: &[u8; 8]) -> u64 {
    u64::from_be_bytes(*key)
}

impl RedbStore {
    /// Parses `redb:///abs/path`, `redb://rel/path` or `redb:path` and opens (creating and
    /// migrating) the file.
    pub fn open_url(url: &str) -> Result<RedbStore> {
        let rest = url
            .strip_prefix("redb://")
            .or_else(|| url.strip_prefix("redb:"))
            .ok_or_else(|| Error::config(format!("{url:?} is not a redb: URL")))?;
        if let Some((_, query)) = rest.split_once('?') {
            return Err(Error::config(format!(
                "unknown redb URL option {query:?}; redb URLs take no options"
            )));
        }
        if rest.is_empty() {
            return Err(Error::config(format!("{url:?} names no database file")));
        }
        Self::open(Path::new(rest))
    }

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

    /// The open redb database, for tamper-detection tests only: redb admits one handle per file,
    /// so a test that plays someone editing the file writes through this one (bypassing the
    /// ledger, as editing the file while the service is down would: this store keeps no ledger
    /// state in memory). Not part of the supported API.
    #[doc(hidden)]
    pub fn raw_database_for_tests(&self) -> &Database {
        &self.db
    }

    fn err(&self) -> impl Fn(redb::Error) -> Error + '_ {
        move |e| db_err(&self.path, e)
    }

    fn read(&self) -> Result<ReadTransaction> {
        self.db.begin_read().map_err(|e| db_err(&self.path, e))
    }

    /// A write transaction that commits durably (fsync) before `commit` returns.
    fn write(&self) -> Result<WriteTransaction> {
        let mut tx = self.db.begin_write().map_err(|e| db_err(&self.path, e))?;
        tx.set_durability(Durability::Immediate)
            .map_err(|e| db_err(&self.path, e))?;
        Ok(tx)
    }

    fn commit(&self, tx: WriteTransaction) -> Result<()> {
        tx.commit().map_err(|e| db_err(&self.path, e))
    }

    fn build_search_index(&self) -> Result<()> {
        let e = self.err();
        let tx = self.read()?;
        let facts = tx.open_table(FACTS).map_err(|x| e(x.into()))?;
        let mut index = Bm25Index::new();
        for row in facts.iter().map_err(|x| e(x.into()))? {
            let (id, v) = row.map_err(|x| e(x.into()))?;
            let f = codec::decode_fact(v.value())?;
            index.add(id.value(), &index_text(&f.content, &f.tags));
        }
        index.shrink_to_fit();
        *self
            .search
            .write()
            .map_err(|_| Error::backend("redb search index lock poisoned"))? = index;
        Ok(())
    }

    fn lock_writer(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.writer
            .lock()
            .map_err(|_| Error::backend("redb writer lock poisoned"))
    }
}

/// Refuses, with a clear message, an existing non-empty file that is not a redb database
/// (before redb sees it: redb would report a storage error, or try to repair it).
fn check_magic(path: &Path) -> Result<()> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::config(format!("cannot open {}", path.display())).with_source(e));
        }
    };
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    f.by_ref()
        .take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::config(format!("cannot read {}", path.display())).with_source(e))?;
    if !head.is_empty() && head != REDB_MAGIC {
        return Err(Error::invalid(format!(
            "{} is not a usable redb database (no redb header)",
            path.display()
        )));
    }
    Ok(())
}

/// Reads a table inside a read or write transaction, mapping errors.
macro_rules! table {
    ($self:expr, $tx:expr, $def:expr) => {
        $tx.open_table($def).map_err(|e| db_err($self, e))
    };
}

fn read_head_in(
    path: &Path,
    state: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Head> {
    match state.get(HEAD_KEY).map_err(|e| db_err(path, e))? {
        None => Ok(Head::default()),
        Some(v) => codec::decode_head(v.value()),
    }
}

fn read_u64_in(
    path: &Path,
    state: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<u64> {
    match state.get(key).map_err(|e| db_err(path, e))? {
        None => Ok(0),
        Some(v) => Ok(u64::from_be_bytes(v.value().try_into().map_err(|_| {
            Error::integrity(format!("stored {key} is not 8 bytes"))
        })?)),
    }
}

fn read_fact_in(
    path: &Path,
    facts: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<Option<Fact>> {
    facts
        .get(id)
        .map_err(|e| db_err(path, e))?
        .map(|v| codec::decode_fact(v.value()))
        .transpose()
}

fn read_votes_in(
    path: &Path,
    votes: &impl ReadableTable<(u64, &'static str), &'static [u8]>,
    fact_id: u64,
) -> Result<Vec<Vote>> {
    let mut out = Vec::new();
    let next = fact_id.checked_add(1);
    let rows = match next {
        Some(n) => votes.range((fact_id, "")..(n, "")),
        None => votes.range((fact_id, "")..),
    }
    .map_err(|e| db_err(path, e))?;
    for row in rows {
        let (_, v) = row.map_err(|e| db_err(path, e))?;
        out.push(codec::decode_vote(v.value())?);
    }
    Ok(out)
}

fn read_agent_in(
    path: &Path,
    agents: &impl ReadableTable<&'static str, &'static [u8]>,
    agent: &str,
) -> Result<Option<AgentReputation>> {
    agents
        .get(agent)
        .map_err(|e| db_err(path, e))?
        .map(|v| codec::decode_agent(v.value()))
        .transpose()
}

fn read_tile_in(
    path: &Path,
    tiles: &impl ReadableTable<(u8, u64), &'static [u8]>,
    level: u8,
    index: u64,
) -> Result<Option<Vec<Hash>>> {
    tiles
        .get((level, index))
        .map_err(|e| db_err(path, e))?
        .map(|v| Tile::decode(v.value()))
        .transpose()
}

/// The next sequence number of a table keyed by sequence.
fn next_seq(path: &Path, t: &impl ReadableTable<u64, &'static [u8]>) -> Result<u64> {
    Ok(t.last()
        .map_err(|e| db_err(path, e))?
        .map_or(0, |(k, _)| k.value() + 1))
}

/// Audit-record tables (integrity checks, exports): records by sequence number, appended at the
/// end and read newest first.
impl RedbStore {
    fn append_record(&self, def: TableDefinition<u64, &[u8]>, bytes: &[u8]) -> Result<()> {
        let _w = self.lock_writer()?;
        let tx = self.write()?;
        {
            let mut t = table!(&self.path, tx, def)?;
            let seq = next_seq(&self.path, &t)?;
            t.insert(seq, bytes).map_err(|e| db_err(&self.path, e))?;
        }
        self.commit(tx)
    }

    fn newest_records<T>(
        &self,
        def: TableDefinition<u64, &[u8]>,
        limit: usize,
        decode: fn(&[u8]) -> Result<T>,
    ) -> Result<Vec<T>> {
        let tx = self.read()?;
        let t = table!(&self.path, tx, def)?;
        let mut out = Vec::new();
        for row in t
            .iter()
            .map_err(|e| db_err(&self.path, e))?
            .rev()
            .take(limit)
        {
            let (_, v) = row.map_err(|e| db_err(&self.path, e))?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }
}

/// What an append's `build` sees: reads inside the append's write transaction.
struct RedbTx<'t> {
    tx: &'t WriteTransaction,
    path: &'t Path,
    head: Head,
}

impl LedgerTx for RedbTx<'_> {
    fn head(&self) -> Head {
        self.head
    }
    fn read_tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        read_tile_in(self.path, &table!(self.path, self.tx, TILES)?, level, index)
    }
}

impl FactTx for RedbTx<'_> {
    fn fact(&mut self, id: u64) -> Result<Option<Fact>> {
        read_fact_in(self.path, &table!(self.path, self.tx, FACTS)?, id)
    }
    fn votes(&mut self, fact_id: u64) -> Result<Vec<Vote>> {
        read_votes_in(self.path, &table!(self.path, self.tx, VOTES)?, fact_id)
    }
    fn agent_reputation(&mut self, agent: &str) -> Result<Option<AgentReputation>> {
        read_agent_in(self.path, &table!(self.path, self.tx, AGENTS)?, agent)
    }
}

/// Writes the memory changes of an append, in order, and bumps the memory version. Returns the
/// `(id, indexed text)` of the inserted facts, for the search index once the commit succeeded.
fn write_fact_changes(
    path: &Path,
    tx: &WriteTransaction,
    changes: &[FactChange],
) -> Result<Vec<(u64, String)>> {
    let mut added = Vec::new();
    if changes.is_empty() {
        return Ok(added);
    }
    let e = |x: redb::StorageError| db_err(path, x);
    let mut facts = table!(path, tx, FACTS)?;
    let mut by_project = table!(path, tx, FACTS_BY_PROJECT)?;
    let mut votes = table!(path, tx, VOTES)?;
    let mut agents = table!(path, tx, AGENTS)?;
    let mut events = table!(path, tx, FACT_EVENTS)?;
    for c in changes {
        match c {
            FactChange::Insert(f) => {
                if facts.get(f.id).map_err(e)?.is_some() {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("fact {} already exists", f.id),
                    ));
                }
                facts.insert(f.id, &codec::encode_fact(f)[..]).map_err(e)?;
                by_project
                    .insert((f.project.as_str(), f.id), ())
                    .map_err(e)?;
                added.push((f.id, index_text(&f.content, &f.tags)));
            }
            FactChange::PutVote(v) => {
                if facts.get(v.fact_id).map_err(e)?.is_none() {
                    return Err(Error::not_found(format!(
                        "no fact {} to vote on",
                        v.fact_id
                    )));
                }
                votes
                    .insert((v.fact_id, v.agent.as_str()), &codec::encode_vote(v)[..])
                    .map_err(e)?;
            }
            FactChange::SetConsensus { fact_id, consensus } => {
                let Some(mut f) = read_fact_in(path, &facts, *fact_id)? else {
                    return Err(Error::not_found(format!("no fact {fact_id}")));
                };
                f.consensus = *consensus;
                facts.insert(f.id, &codec::encode_fact(&f)[..]).map_err(e)?;
            }
            FactChange::PutAgent(a) => {
                agents
                    .insert(a.agent.as_str(), &codec::encode_agent(a)[..])
                    .map_err(e)?;
            }
            FactChange::Deprecate {
                fact_id,
                at,
                reason,
                ..
            } => {
                let f = read_fact_in(path, &facts, *fact_id)?.filter(|f| !f.is_deprecated());
                let Some(mut f) = f else {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("fact {fact_id} is missing or already deprecated"),
                    ));
                };
                f.deprecated_at = Some(at.clone());
                f.deprecation_reason = reason.clone();
                facts.insert(f.id, &codec::encode_fact(&f)[..]).map_err(e)?;
            }
        }
        if let Some((fact, entry)) = c.history_event() {
            events.insert((fact, entry), ()).map_err(e)?;
        }
    }
    let mut state = table!(path, tx, STATE)?;
    let v = read_u64_in(path, &state, MEMORY_VERSION_KEY)?;
    state
        .insert(MEMORY_VERSION_KEY, &(v + 1).to_be_bytes()[..])
        .map_err(e)?;
    Ok(added)
}

impl TileReader for RedbStore {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        let tx = self.read()?;
        read_tile_in(&self.path, &table!(&self.path, tx, TILES)?, level, index)
    }
    fn read_tiles(&self, keys: &[(u8, u64)]) -> Result<Vec<Option<Vec<Hash>>>> {
        let tx = self.read()?;
        let table = table!(&self.path, tx, TILES)?;
        keys.iter()
            .map(|&(l, i)| read_tile_in(&self.path, &table, l, i))
            .collect()
    }
}

impl LedgerStore for RedbStore {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn migrate(&self) -> Result<MigrationReport> {
        let _w = self.lock_writer()?;
        let tx = self.write()?;
        let e = |x: redb::StorageError| db_err(&self.path, x);
        let from = {
            let schema = table!(&self.path, tx, SCHEMA)?;
            schema.get("version").map_err(e)?.map_or(0, |v| v.value())
        };
        let latest = latest_schema_version();
        if from > latest {
            return Err(Error::config(format!(
                "{} has schema version {from}, newer than this cortex supports ({latest}); \
                 upgrade cortex",
                self.path.display()
            )));
        }
        if from == latest {
            return Ok(MigrationReport {
                from_version: from,
                to_version: latest,
            });
        }
        for (version, _description, apply) in MIGRATIONS.iter().filter(|m| m.0 > from) {
            apply(&tx).map_err(self.err())?;
            table!(&self.path, tx, SCHEMA)?
                .insert("version", *version)
                .map_err(e)?;
        }
        self.commit(tx)?;
        Ok(MigrationReport {
            from_version: from,
            to_version: latest,
        })
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        let tx = self.read()?;
        let meta = table!(&self.path, tx, META)?;
        Ok(meta
            .get(key)
            .map_err(|e| db_err(&self.path, e))?
            .map(|v| v.value().to_owned()))
    }

    fn init_meta(&self, key: &str, value: &str) -> Result<String> {
        let _w = self.lock_writer()?;
        let tx = self.write()?;
        let stored = {
            let mut meta = table!(&self.path, tx, META)?;
            let e = |x: redb::StorageError| db_err(&self.path, x);
            let existing = meta.get(key).map_err(e)?.map(|v| v.value().to_owned());
            match existing {
                Some(v) => v,
                None => {
                    meta.insert(key, value).map_err(e)?;
                    value.to_owned()
                }
            }
        };
        self.commit(tx)?;
        Ok(stored)
    }

    fn head(&self) -> Result<Head> {
        let tx = self.read()?;
        read_head_in(&self.path, &table!(&self.path, tx, STATE)?)
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
        let tx = self.read()?;
        let entries = table!(&self.path, tx, ENTRIES)?;
        let (start, end) = (be(range.start), be(range.end));
        let rows = entries
            .range::<&[u8; 8]>(&start..&end)
            .map_err(|e| db_err(&self.path, e))?;
        for row in rows {
            let (k, v) = row.map_err(|e| db_err(&self.path, e))?;
            RawEntry::parse(v.value()).visit(from_be(k.value()), visit)?;
        }
        Ok(())
    }

    fn last_entry_index(&self) -> Result<Option<u64>> {
        let tx = self.read()?;
        let entries = table!(&self.path, tx, ENTRIES)?;
        Ok(entries
            .last()
            .map_err(|e| db_err(&self.path, e))?
            .map(|(k, _)| from_be(k.value())))
    }

    fn scan_tiles(
        &self,
        level: u8,
        range: Range<u64>,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        if range.start >= range.end {
            return Ok(());
        }
        let tx = self.read()?;
        let tiles = table!(&self.path, tx, TILES)?;
        let rows = tiles
            .range((level, range.start)..(level, range.end))
            .map_err(|e| db_err(&self.path, e))?;
        for row in rows {
            let (k, v) = row.map_err(|e| db_err(&self.path, e))?;
            visit(k.value().1, v.value())?;
        }
        Ok(())
    }

    fn add_checkpoint(&self, cp: &CheckpointRecord) -> Result<()> {
        let _w = self.lock_writer()?;
        let tx = self.write()?;
        {
            let e = |x: redb::StorageError| db_err(&self.path, x);
            let mut cps = table!(&self.path, tx, CHECKPOINTS)?;
            let largest = cps.last().map_err(e)?.map(|(m, _)| m.value());
            check_checkpoint_follows(largest, cp)?;
            cps.insert(cp.size, &codec::encode_checkpoint(cp)[..])
                .map_err(e)?;
            let mut receipts = table!(&self.path, tx, RECEIPTS)?;
            for (seq, r) in cp.receipts.iter().enumerate() {
                receipts
                    .insert((cp.size, seq as u64), &codec::encode_receipt(r)[..])
                    .map_err(e)?;
            }
        }
        self.commit(tx)
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointRecord>> {
        let tx = self.read()?;
        let cps = table!(&self.path, tx, CHECKPOINTS)?;
        let receipts = table!(&self.path, tx, RECEIPTS)?;
        let mut out = Vec::new();
        for row in cps.iter().map_err(|e| db_err(&self.path, e))? {
            let (_, v) = row.map_err(|e| db_err(&self.path, e))?;
            out.push(self.with_receipts(&receipts, codec::decode_checkpoint(v.value())?)?);
        }
        Ok(out)
    }

    fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>> {
        let tx = self.read()?;
        let cps = table!(&self.path, tx, CHECKPOINTS)?;
        let receipts = table!(&self.path, tx, RECEIPTS)?;
        match cps.last().map_err(|e| db_err(&self.path, e))? {
            None => Ok(None),
            Some((_, v)) => Ok(Some(
                self.with_receipts(&receipts, codec::decode_checkpoint(v.value())?)?,
            )),
        }
    }

    fn add_receipt(&self, size: u64, r: &Receipt) -> Result<()> {
        let _w = self.lock_writer()?;
        let tx = self.write()?;
        {
            let e = |x: redb::StorageError| db_err(&self.path, x);
            let cps = table!(&self.path, tx, CHECKPOINTS)?;
            if cps.get(size).map_err(e)?.is_none() {
                return Err(Error::not_found(format!("no checkpoint of size {size}")));
            }
            let mut receipts = table!(&self.path, tx, RECEIPTS)?;
            let seq = match size.checked_add(1) {
                Some(n) => receipts.range((size, 0)..(n, 0)),
                None => receipts.range((size, 0)..),
            }
            .map_err(e)?
            .next_back()
            .transpose()
            .map_err(e)?
            .map_or(0, |(k, _)| k.value().1 + 1);
            receipts
                .insert((size, seq), &codec::encode_receipt(r)[..])
                .map_err(e)?;
        }
        self.commit(tx)
    }

    fn record_integrity_check(&self, c: &IntegrityCheck) -> Result<()> {
        self.append_record(CHECKS, &codec::encode_check(c))
    }

    fn integrity_checks(&self, limit: usize) -> Result<Vec<IntegrityCheck>> {
        self.newest_records(CHECKS, limit, codec::decode_check)
    }

    fn record_export(&self, x: &AuditExport) -> Result<()> {
        self.append_record(EXPORTS, &codec::encode_export(x))
    }

    fn exports(&self, limit: usize) -> Result<Vec<AuditExport>> {
        self.newest_records(EXPORTS, limit, codec::decode_export)
    }
}

impl FactStore for RedbStore {
    fn append_facts<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn FactTx) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        self.commit_append(&mut |tx| build(tx))
    }

    fn fact(&self, id: u64) -> Result<Option<Fact>> {
        let tx = self.read()?;
        read_fact_in(&self.path, &table!(&self.path, tx, FACTS)?, id)
    }

    fn recall(&self, project: &str, as_of: &str, limit: usize) -> Result<Vec<Fact>> {
        let tx = self.read()?;
        let facts = table!(&self.path, tx, FACTS)?;
        let mut out: Vec<Fact> = Vec::new();
        for id in self.project_ids(&tx, project)? {
            if let Some(f) = read_fact_in(&self.path, &facts, id)?
                && !f.is_deprecated()
                && f.is_valid_at(as_of)
            {
                out.push(f);
            }
        }
        out.sort_by(|a, b| b.consensus.total_cmp(&a.consensus).then(b.id.cmp(&a.id)));
        out.truncate(limit);
        Ok(out)
    }

    fn project_facts(&self, project: &str, limit: usize) -> Result<Vec<Fact>> {
        let tx = self.read()?;
        let facts = table!(&self.path, tx, FACTS)?;
        let by_project = table!(&self.path, tx, FACTS_BY_PROJECT)?;
        let mut out = Vec::new();
        let rows = by_project
            .range((project, 0u64)..=(project, u64::MAX))
            .map_err(|e| db_err(&self.path, e))?;
        for row in rows.rev().take(limit) {
            let (k, _) = row.map_err(|e| db_err(&self.path, e))?;
            if let Some(f) = read_fact_in(&self.path, &facts, k.value().1)? {
                out.push(f);
            }
        }
        Ok(out)
    }

    fn search_facts(&self, q: &FactSearch) -> Result<Vec<SearchHit>> {
        if q.terms.is_empty() || q.top_k == 0 {
            return Ok(Vec::new());
        }
        // Scores first, then the snapshot: every fact in the index is committed, so the
        // snapshot taken afterwards holds it.
        let scored = self
            .search
            .read()
            .map_err(|_| Error::backend("redb search index lock poisoned"))?
            .score(&q.terms);
        let tx = self.read()?;
        let facts = table!(&self.path, tx, FACTS)?;
        let mut hits = Vec::new();
        for (id, score) in scored {
            let Some(fact) = read_fact_in(&self.path, &facts, id)? else {
                continue;
            };
            if q.project.as_deref().is_none_or(|p| fact.project == p)
                && fact.is_valid_at(&q.as_of)
                && (q.include_deprecated || !fact.is_deprecated())
            {
                hits.push(SearchHit { fact, score });
            }
        }
        // Core's order: score descending, then id descending.
        hits.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(b.fact.id.cmp(&a.fact.id)));
        hits.truncate(q.top_k);
        Ok(hits)
    }

    fn votes(&self, fact_id: u64) -> Result<Vec<Vote>> {
        let tx = self.read()?;
        read_votes_in(&self.path, &table!(&self.path, tx, VOTES)?, fact_id)
    }

    fn agent_reputation(&self, agent: &str) -> Result<Option<AgentReputation>> {
        let tx = self.read()?;
        read_agent_in(&self.path, &table!(&self.path, tx, AGENTS)?, agent)
    }

    fn fact_history(&self, fact_id: u64) -> Result<Vec<Entry>> {
        let tx = self.read()?;
        let events = table!(&self.path, tx, FACT_EVENTS)?;
        let entries = table!(&self.path, tx, ENTRIES)?;
        let e = |x: redb::StorageError| db_err(&self.path, x);
        let mut out = Vec::new();
        for row in events
            .range((fact_id, 0u64)..=(fact_id, u64::MAX))
            .map_err(e)?
        {
            let (k, _) = row.map_err(e)?;
            let index = k.value().1;
            if let Some(v) = entries.get(&be(index)).map_err(e)? {
                out.push(RawEntry::parse(v.value()).to_entry(index));
            }
        }
        Ok(out)
    }

    fn memory_version(&self) -> Result<u64> {
        let tx = self.read()?;
        read_u64_in(
            &self.path,
            &table!(&self.path, tx, STATE)?,
            MEMORY_VERSION_KEY,
        )
    }
}

impl RedbStore {
    fn with_receipts(
        &self,
        receipts: &impl ReadableTable<(u64, u64), &'static [u8]>,
        mut cp: CheckpointRecord,
    ) -> Result<CheckpointRecord> {
        let e = |x: redb::StorageError| db_err(&self.path, x);
        for row in receipts
            .range((cp.size, 0u64)..=(cp.size, u64::MAX))
            .map_err(e)?
        {
            let (_, v) = row.map_err(e)?;
            cp.receipts.push(codec::decode_receipt(v.value())?);
        }
        Ok(cp)
    }

    fn project_ids(&self, tx: &ReadTransaction, project: &str) -> Result<Vec<u64>> {
        let by_project = table!(&self.path, tx, FACTS_BY_PROJECT)?;
        let e = |x: redb::StorageError| db_err(&self.path, x);
        let mut ids = Vec::new();
        for row in by_project
            .range((project, 0u64)..=(project, u64::MAX))
            .map_err(e)?
        {
            ids.push(row.map_err(e)?.0.value().1);
        }
        Ok(ids)
    }
}

impl RedbStore {
    /// One append transaction: the ledger batch and, in the same transaction, the memory
    /// changes the builder returns.
    fn commit_append<'a>(
        &self,
        build: &mut dyn FnMut(&mut RedbTx<'_>) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        let _w = self.lock_writer()?;
        let path = self.path.as_path();
        let e = |x: redb::StorageError| db_err(path, x);
        // Dropping `tx` without committing (any `?` below) aborts it: nothing is written.
        let tx = self.write()?;
        let head = read_head_in(path, &table!(path, tx, STATE)?)?;
        let (batch, changes) = build(&mut RedbTx {
            tx: &tx,
            path,
            head,
        })?;
        {
            let mut entries = table!(path, tx, ENTRIES)?;
            for (i, (entry, (prev, hash))) in batch.entries.iter().zip(&batch.links).enumerate() {
                let index = batch.first_index + i as u64;
                let row = codec::encode_entry(
                    cortex_core::EntryRef {
                        index,
                        timestamp: &batch.timestamp,
                        project: &entry.project,
                        action: &entry.action,
                        detail: &entry.detail,
                    },
                    prev,
                    hash,
                );
                if entries.insert(&be(index), &row[..]).map_err(e)?.is_some() {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "entries from {} already exist: the ledger head is behind its rows \
                             (run `cortex ledger verify`)",
                            batch.first_index
                        ),
                    ));
                }
            }
            let mut tiles = table!(path, tx, TILES)?;
            for t in &batch.tiles {
                tiles
                    .insert((t.level, t.index), &t.to_bytes()[..])
                    .map_err(e)?;
            }
            table!(path, tx, STATE)?
                .insert(HEAD_KEY, &codec::encode_head(&batch.new_head)[..])
                .map_err(e)?;
        }
        let added = write_fact_changes(path, &tx, &changes)?;
        self.commit(tx)?;
        if !added.is_empty() {
            let mut index = self
                .search
                .write()
                .map_err(|_| Error::backend("redb search index lock poisoned"))?;
            for (id, text) in &added {
                index.add(*id, text);
            }
        }
        Ok(batch.new_head)
    }
}
