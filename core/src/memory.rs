//! An in-memory [`Store`], always built: for tests, examples and ephemeral ledgers.

use crate::checkpoint::{CheckpointRecord, Receipt};
use crate::entry::{StoredEntry, StoredEntryRef};
use crate::error::{Error, ErrorKind, Result};
use crate::hash::Hash;
use crate::store::{
    AppendBatch, AppendTx, AuditExport, Head, IntegrityCheck, MigrationReport, Store,
};
use crate::tiles::{Tile, TileReader};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct Inner {
    meta: HashMap<String, String>,
    entries: BTreeMap<u64, StoredEntry>,
    tiles: BTreeMap<(u8, u64), Vec<u8>>,
    head: Head,
    checkpoints: BTreeMap<u64, CheckpointRecord>,
    checks: Vec<IntegrityCheck>,
    exports: Vec<AuditExport>,
}

/// A store that lives in memory and is gone when dropped.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::backend("memory store lock poisoned"))
    }
    /// Replaces a stored entry's fields, bypassing the ledger: for tamper-detection tests.
    pub fn tamper_entry(&self, index: u64, f: impl FnOnce(&mut StoredEntry)) -> Result<()> {
        let mut g = self.lock()?;
        let e = g
            .entries
            .get_mut(&index)
            .ok_or_else(|| Error::not_found("no such entry"))?;
        f(e);
        Ok(())
    }
    /// Deletes a stored entry, bypassing the ledger: for tamper-detection tests.
    pub fn delete_entry(&self, index: u64) -> Result<()> {
        self.lock()?.entries.remove(&index);
        Ok(())
    }
}

struct Tx<'a> {
    inner: &'a Inner,
}

impl AppendTx for Tx<'_> {
    fn head(&self) -> Head {
        self.inner.head
    }
    fn read_tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        self.inner
            .tiles
            .get(&(level, index))
            .map(|b| Tile::decode(b))
            .transpose()
    }
}

impl TileReader for MemoryStore {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        self.lock()?
            .tiles
            .get(&(level, index))
            .map(|b| Tile::decode(b))
            .transpose()
    }
}

impl Store for MemoryStore {
    fn scheme(&self) -> &'static str {
        "memory"
    }
    fn migrate(&self) -> Result<MigrationReport> {
        Ok(MigrationReport {
            from_version: 1,
            to_version: 1,
        })
    }
    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.lock()?.meta.get(key).cloned())
    }
    fn init_meta(&self, key: &str, value: &str) -> Result<String> {
        Ok(self
            .lock()?
            .meta
            .entry(key.to_owned())
            .or_insert_with(|| value.to_owned())
            .clone())
    }
    fn head(&self) -> Result<Head> {
        Ok(self.lock()?.head)
    }
    fn append<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn AppendTx) -> Result<AppendBatch<'a>>,
    ) -> Result<Head> {
        let mut g = self.lock()?;
        let batch = build(&mut Tx { inner: &g })?;
        for (i, (e, (prev, hash))) in batch.entries.iter().zip(&batch.links).enumerate() {
            let index = batch.first_index + i as u64;
            let entry = crate::entry::Entry {
                index,
                timestamp: batch.timestamp.clone(),
                project: e.project.clone(),
                action: e.action.clone(),
                detail: e.detail.clone(),
            };
            g.entries.insert(
                index,
                StoredEntry {
                    entry,
                    prev_hash: *prev,
                    hash: *hash,
                },
            );
        }
        for t in batch.tiles {
            g.tiles.insert((t.level, t.index), t.to_bytes());
        }
        g.head = batch.new_head;
        Ok(g.head)
    }
    fn scan_entries(
        &self,
        range: Range<u64>,
        visit: &mut dyn FnMut(StoredEntryRef<'_>) -> Result<()>,
    ) -> Result<()> {
        let g = self.lock()?;
        for e in g.entries.range(range).map(|(_, e)| e) {
            visit(StoredEntryRef {
                entry: e.entry.as_ref(),
                prev_hash: &e.prev_hash.0,
                hash: &e.hash.0,
            })?;
        }
        Ok(())
    }
    fn last_entry_index(&self) -> Result<Option<u64>> {
        Ok(self.lock()?.entries.keys().next_back().copied())
    }
    fn scan_tiles(
        &self,
        level: u8,
        range: Range<u64>,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let g = self.lock()?;
        for ((_, i), b) in g.tiles.range((level, range.start)..(level, range.end)) {
            visit(*i, b)?;
        }
        Ok(())
    }
    fn add_checkpoint(&self, cp: &CheckpointRecord) -> Result<()> {
        let mut g = self.lock()?;
        if g.checkpoints.range(cp.size..).next().is_some() {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a checkpoint of size {} or larger already exists", cp.size),
            ));
        }
        g.checkpoints.insert(cp.size, cp.clone());
        Ok(())
    }
    fn checkpoints(&self) -> Result<Vec<CheckpointRecord>> {
        Ok(self.lock()?.checkpoints.values().cloned().collect())
    }
    fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>> {
        Ok(self.lock()?.checkpoints.values().next_back().cloned())
    }
    fn add_receipt(&self, size: u64, receipt: &Receipt) -> Result<()> {
        let mut g = self.lock()?;
        let cp = g
            .checkpoints
            .get_mut(&size)
            .ok_or_else(|| Error::not_found(format!("no checkpoint of size {size}")))?;
        cp.receipts.push(receipt.clone());
        Ok(())
    }
    fn record_integrity_check(&self, check: &IntegrityCheck) -> Result<()> {
        self.lock()?.checks.push(check.clone());
        Ok(())
    }
    fn integrity_checks(&self, limit: usize) -> Result<Vec<IntegrityCheck>> {
        Ok(self
            .lock()?
            .checks
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }
    fn record_export(&self, export: &AuditExport) -> Result<()> {
        self.lock()?.exports.push(export.clone());
        Ok(())
    }
    fn exports(&self, limit: usize) -> Result<Vec<AuditExport>> {
        Ok(self
            .lock()?
            .exports
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn memory_store_conformance() {
        crate::testkit::store_conformance(&|| Arc::new(MemoryStore::new()));
    }
}
