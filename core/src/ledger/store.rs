//! The ledger's storage trait. Backends persist bytes; all ledger math happens in core.
//!
//! [`LedgerStore`] is deliberately narrow and sync: append a batch inside one transaction, stream
//! ranges, keep checkpoints, receipts and audit records. It was shaped by two unlike engines
//! (SQLite, a SQL database with transactions, and redb, a key-value store), and async callers use
//! `spawn_blocking`. Implementations must be safe to call from several threads at once: `verify`
//! reads ranges in parallel.
//!
//! It knows nothing of the agent memory: a store that also keeps the memory implements the
//! memory's own storage trait as well, whose append writes memory changes in the same
//! transaction as the ledger rows.

use crate::error::Result;
use crate::ledger::checkpoint::{CheckpointRecord, Receipt};
use crate::ledger::entry::{NewEntry, StoredEntryRef};
use crate::ledger::hash::Hash;
use crate::ledger::tiles::{Tile, TileReader};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::Arc;

/// A ledger store shared across threads.
pub type DynLedgerStore = Arc<dyn LedgerStore>;

/// The committed end of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    /// Number of entries (the next index).
    pub size: u64,
    /// Chain hash of the last entry (all zeros when empty).
    pub last_hash: Hash,
}

/// What an append sees inside its transaction: the head and the stored tiles, locked against
/// other writers until the transaction ends.
pub trait LedgerTx {
    /// The head at the start of this transaction.
    fn head(&self) -> Head;
    /// Reads a stored tile within the transaction.
    fn read_tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<Hash>>>;
}

/// What core asks a store to write in one append transaction. Entry `i` of the batch gets index
/// `first_index + i`, the batch's timestamp, and chain link `links[i]`; the entries are borrowed
/// from the caller, so a batch costs no copies.
#[derive(Debug, Clone, Default)]
pub struct AppendBatch<'a> {
    /// Index of the first entry (the head's size).
    pub first_index: u64,
    /// Canonical timestamp shared by the batch.
    pub timestamp: String,
    /// The entries.
    pub entries: &'a [NewEntry],
    /// `(prev_hash, hash)` of each entry.
    pub links: Vec<(Hash, Hash)>,
    /// Tiles to insert or replace.
    pub tiles: Vec<Tile>,
    /// The head after the append.
    pub new_head: Head,
}

/// The seed's `integrity_checks` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityCheck {
    /// `full`, `chain`, `merkle`, `external`.
    pub check_type: String,
    /// `ok`, `violation` or `error`.
    pub status: String,
    /// JSON text with the findings.
    pub details: String,
    /// Canonical timestamp.
    pub started_at: String,
    /// Canonical timestamp.
    pub completed_at: String,
}

/// The seed's `audit_exports` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditExport {
    /// `json`, `csv` or `jsonl`.
    pub export_type: String,
    /// Path written.
    pub filename: String,
    /// SHA-256 of the file, hex.
    pub file_hash: String,
    /// First index exported.
    pub start: u64,
    /// Last index exported.
    pub end: u64,
    /// Canonical timestamp.
    pub exported_at: String,
    /// Who exported (user or API key name).
    pub exported_by: String,
}

/// Result of applying migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Schema version before.
    pub from_version: u32,
    /// Schema version now.
    pub to_version: u32,
}

/// Where a ledger keeps its entries, tiles, head, checkpoints and audit records.
pub trait LedgerStore: TileReader + Send + Sync {
    /// URL scheme of this backend (`sqlite`, `postgres`, `redb`, `memory`).
    fn scheme(&self) -> &'static str;

    /// Applies pending schema migrations.
    fn migrate(&self) -> Result<MigrationReport>;

    /// Reads a ledger setting (hasher, origin, …).
    fn meta(&self, key: &str) -> Result<Option<String>>;
    /// Sets a ledger setting if it is unset, and returns the value now stored (compare-and-set,
    /// so two processes creating one ledger agree on its settings). It must be atomic across
    /// every process that can open the store at once, whatever their isolation defaults: the
    /// first start of many processes fixes the hasher and the origin (the signing key's name)
    /// through it, and each loser must get the winner's value back, not an error.
    fn init_meta(&self, key: &str, value: &str) -> Result<String>;
    /// Sets a piece of operational state (for example an anchor's retry state, under
    /// `anchor.<kind>.<target>`), replacing any value. Never used for settings that fix the
    /// ledger's identity (hasher, origin): those are set once with [`LedgerStore::init_meta`].
    fn set_meta(&self, key: &str, value: &str) -> Result<()>;
    /// Every setting whose key starts with `prefix`, in key order (for example the API keys,
    /// `api_key.<id>`).
    fn meta_prefixed(&self, prefix: &str) -> Result<Vec<(String, String)>>;

    /// The committed head.
    fn head(&self) -> Result<Head>;

    /// Runs `build` inside one write transaction that excludes other writers, and commits what it
    /// returns durably before returning. Nothing is written if `build` fails.
    fn append<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn LedgerTx) -> Result<AppendBatch<'a>>,
    ) -> Result<Head>;

    /// Streams stored rows with `range.start <= index < range.end` in index order, exactly as
    /// stored (gaps and bad bytes included: that is what `verify` looks for).
    fn scan_entries(
        &self,
        range: Range<u64>,
        visit: &mut dyn FnMut(StoredEntryRef<'_>) -> Result<()>,
    ) -> Result<()>;

    /// The largest stored entry index, ignoring the head (`None` when there are no rows).
    fn last_entry_index(&self) -> Result<Option<u64>>;

    /// Streams stored tiles of `level` with index in `range`, in index order (raw bytes).
    fn scan_tiles(
        &self,
        level: u8,
        range: Range<u64>,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()>;

    /// Stores a checkpoint. A [`crate::error::ErrorKind::Conflict`] if one of equal or larger size exists.
    fn add_checkpoint(&self, checkpoint: &CheckpointRecord) -> Result<()>;
    /// All checkpoints, by increasing size (as stored; verify checks them).
    fn checkpoints(&self) -> Result<Vec<CheckpointRecord>>;
    /// The checkpoint with the largest size.
    fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>>;
    /// Adds an anchor receipt to the checkpoint of `size`.
    fn add_receipt(&self, size: u64, receipt: &Receipt) -> Result<()>;

    /// Records a verification run.
    fn record_integrity_check(&self, check: &IntegrityCheck) -> Result<()>;
    /// The last `limit` verification runs, newest first.
    fn integrity_checks(&self, limit: usize) -> Result<Vec<IntegrityCheck>>;
    /// Records an export.
    fn record_export(&self, export: &AuditExport) -> Result<()>;
    /// The last `limit` exports, newest first.
    fn exports(&self, limit: usize) -> Result<Vec<AuditExport>>;
}
