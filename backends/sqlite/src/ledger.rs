//! The ledger's rows: reading entries, tiles, the head, checkpoints with their receipts and the
//! audit records, and the [`LedgerStore`] and [`TileReader`] impls (appends go through
//! `append`).

use crate::conn::sql_err;
use crate::{SCHEME, SqliteStore, to_i64};
use cortex_core::ledger::checkpoint::{
    CheckpointRecord, ExtraSignature, Receipt, check_checkpoint_follows,
};
use cortex_core::ledger::entry::{EntryRef, StoredEntryRef};
use cortex_core::ledger::store::{
    AppendBatch, AuditExport, Head, IntegrityCheck, LedgerStore, LedgerTx, MigrationReport,
};
use cortex_core::ledger::tiles::{Tile, TileReader};
use cortex_core::{Error, Hash, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::ops::Range;
use std::path::Path;

pub(crate) fn read_tile_in(
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

pub(crate) fn read_head(conn: &Connection, path: &Path) -> Result<Head> {
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
        self.apply_migrations()
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

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )
        .map_err(sql_err(&self.path))?;
        Ok(())
    }

    fn meta_prefixed(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        self.with_reader(|c| {
            let mut s = c
                .prepare_cached(
                    "SELECT key, value FROM meta WHERE substr(key, 1, length(?1)) = ?1 \
                     ORDER BY key",
                )
                .map_err(self.err())?;
            let rows = s
                .query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(self.err())?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(self.err())
        })
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
