//! The ledger's records: reading entries, tiles, the head, checkpoints with their receipts and
//! the audit records (appended by sequence, read newest first), and the [`LedgerStore`] and
//! [`TileReader`] impls (appends go through `append`).

use crate::codec::{self, RawEntry};
use crate::db::{db_err, table};
use crate::schema::{
    CHECKPOINTS, CHECKS, ENTRIES, EXPORTS, HEAD_KEY, META, RECEIPTS, STATE, TILES, be, from_be,
};
use crate::{RedbStore, SCHEME};
use cortex_core::ledger::checkpoint::{CheckpointRecord, Receipt, check_checkpoint_follows};
use cortex_core::ledger::entry::StoredEntryRef;
use cortex_core::ledger::store::{
    AppendBatch, AuditExport, Head, IntegrityCheck, LedgerStore, LedgerTx, MigrationReport,
};
use cortex_core::ledger::tiles::{Tile, TileReader};
use cortex_core::{Error, Hash, Result};
use redb::{ReadableTable, TableDefinition};
use std::ops::Range;
use std::path::Path;

pub(crate) fn read_head_in(
    path: &Path,
    state: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Head> {
    match state.get(HEAD_KEY).map_err(|e| db_err(path, e))? {
        None => Ok(Head::default()),
        Some(v) => codec::decode_head(v.value()),
    }
}

pub(crate) fn read_tile_in(
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
        self.apply_migrations()
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

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let _w = self.lock_writer()?;
        let tx = self.write()?;
        {
            let mut meta = table!(&self.path, tx, META)?;
            meta.insert(key, value).map_err(|e| db_err(&self.path, e))?;
        }
        self.commit(tx)
    }

    fn meta_prefixed(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let tx = self.read()?;
        let meta = table!(&self.path, tx, META)?;
        let e = |x: redb::StorageError| db_err(&self.path, x);
        let mut found = Vec::new();
        for row in meta.range(prefix..).map_err(e)? {
            let (k, v) = row.map_err(e)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            found.push((k.value().to_owned(), v.value().to_owned()));
        }
        Ok(found)
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
