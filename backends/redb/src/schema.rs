//! The schema: the tables (a key-value schema has no DDL), the keys of the single values, the
//! migrations that create and seed them, and the big-endian keys of ledger rows.

use crate::RedbStore;
use crate::db::{db_err, table};
use cortex_core::ledger::store::MigrationReport;
use cortex_core::{Error, Result};
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// Schema version record: `version` → the newest migration applied.
const SCHEMA: TableDefinition<&str, u32> = TableDefinition::new("cortex_schema");
/// Ledger settings.
pub(crate) const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Single values: `head` (size and last hash), `memory_version` (u64, big-endian).
pub(crate) const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
/// Ledger rows: index (big-endian) → encoded row.
pub(crate) const ENTRIES: TableDefinition<&[u8; 8], &[u8]> = TableDefinition::new("entries");
/// Merkle tiles: (level, index) → concatenated hashes.
pub(crate) const TILES: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("merkle_tiles");
/// Checkpoints by tree size (receipts excluded).
pub(crate) const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
/// Receipts: (tree size, sequence) → receipt.
pub(crate) const RECEIPTS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("checkpoint_receipts");
/// Verification runs by sequence.
pub(crate) const CHECKS: TableDefinition<u64, &[u8]> = TableDefinition::new("integrity_checks");
/// Exports by sequence.
pub(crate) const EXPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_exports");
/// Facts by id.
pub(crate) const FACTS: TableDefinition<u64, &[u8]> = TableDefinition::new("facts");
/// A project's facts: (project, id) → ().
pub(crate) const FACTS_BY_PROJECT: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("facts_by_project");
/// Votes: (fact id, agent) → vote.
pub(crate) const VOTES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("fact_votes");
/// Agent reputations by name.
pub(crate) const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
/// Each fact's ledger entries: (fact id, entry index) → ().
pub(crate) const FACT_EVENTS: TableDefinition<(u64, u64), ()> = TableDefinition::new("fact_events");
/// Openings of the facts' commitments (salt, content, tags, source) by fact id, until erased.
pub(crate) const FACT_OPENINGS: TableDefinition<u64, &[u8]> = TableDefinition::new("fact_openings");
/// Fact vectors for semantic search (a derived index, never signed) by fact id: the model that
/// made it and its components as little-endian `f32`s. Removed when the fact is erased.
pub(crate) const FACT_VECTORS: TableDefinition<u64, (&str, &[u8])> =
    TableDefinition::new("fact_vectors");

pub(crate) const HEAD_KEY: &str = "head";
pub(crate) const MEMORY_VERSION_KEY: &str = "memory_version";

pub(crate) fn be(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub(crate) fn from_be(key: &[u8; 8]) -> u64 {
    u64::from_be_bytes(*key)
}

/// One schema step: creates tables and seeds or rewrites records inside the migration's write
/// transaction.
type MigrationStep = fn(&WriteTransaction) -> std::result::Result<(), redb::Error>;

/// Schema migrations, applied in order inside one write transaction. A key-value schema has no
/// DDL: a migration creates tables and seeds or rewrites records.
const MIGRATIONS: &[(u32, &str, MigrationStep)] = &[
    (
        1,
        "ledger, checkpoints, audit records and agent memory",
        migration_1,
    ),
    (
        2,
        "fact openings; facts gain author, surface and erased_at",
        migration_2,
    ),
    (3, "fact vectors for semantic search", migration_3),
];

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

/// Facts gain an author, a surface and `erased_at` through their record layout (tag 2, see
/// `codec`), not through a rewrite: schema-1 fact records keep their tag and read with those
/// fields unset, so the upgrade costs nothing however many facts there are. The openings get
/// a table of their own.
fn migration_2(tx: &WriteTransaction) -> std::result::Result<(), redb::Error> {
    tx.open_table(FACT_OPENINGS)?;
    Ok(())
}

/// The fact vectors' table. (The keyword index is built in memory at open with this build's
/// tokenizer, so it needs no migration.)
fn migration_3(tx: &WriteTransaction) -> std::result::Result<(), redb::Error> {
    tx.open_table(FACT_VECTORS)?;
    Ok(())
}

/// The newest schema version this build knows.
pub fn latest_schema_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

impl RedbStore {
    /// Applies the pending migrations, in one write transaction
    /// ([`LedgerStore::migrate`](cortex_core::LedgerStore::migrate)).
    pub(crate) fn apply_migrations(&self) -> Result<MigrationReport> {
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
}
