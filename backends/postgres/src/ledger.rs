//! The ledger's rows: reading entries, tiles (one by one or many in one round trip), the head,
//! checkpoints with their receipts and the audit records, and the [`LedgerStore`] and
//! [`TileReader`] impls (appends go through `append`).

use crate::pool::pg_err;
use crate::{PostgresStore, SCHEME, to_i64};
use cortex_core::ledger::checkpoint::{
    CheckpointRecord, ExtraSignature, Receipt, check_checkpoint_follows,
};
use cortex_core::ledger::entry::{EntryRef, StoredEntryRef};
use cortex_core::ledger::store::{
    AppendBatch, AuditExport, Head, IntegrityCheck, LedgerStore, LedgerTx, MigrationReport,
};
use cortex_core::ledger::tiles::{Tile, TileReader};
use cortex_core::{Error, Hash, Result};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{GenericClient, Statement, ToStatement};
use std::collections::HashMap;
use std::ops::Range;

impl PostgresStore {
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

pub(crate) const TILE_SQL: &str = "SELECT hashes FROM merkle_tiles WHERE level = $1 AND idx = $2";

pub(crate) fn read_tile_in(
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

const HEAD_SQL: &str = "SELECT size, last_hash FROM ledger_head WHERE id = 1";

pub(crate) fn read_head(
    c: &mut impl GenericClient,
    sql: &(impl ToStatement + ?Sized),
) -> Result<Head> {
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

/// Tiles by key, in one round trip (`UNNEST` join).
pub(crate) const TILES_SQL: &str = "SELECT t.level, t.idx, t.hashes FROM merkle_tiles t \
     JOIN UNNEST($1::SMALLINT[], $2::BIGINT[]) AS k(level, idx) \
     ON t.level = k.level AND t.idx = k.idx";

pub(crate) fn read_tiles_in(
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
        self.apply_migrations()
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
        // Compare-and-set across processes. Under READ COMMITTED (pinned here, whatever the
        // server's default isolation) an insert that meets a concurrent one on the key waits
        // for it to commit and then does nothing, and the next statement's fresh snapshot sees
        // the winner's value; under REPEATABLE READ or SERIALIZABLE the loser would instead get
        // a serialization failure.
        let mut tx = conn
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::ReadCommitted)
            .start()
            .map_err(pg_err)?;
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

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn()?
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &value],
            )
            .map_err(pg_err)?;
        Ok(())
    }

    fn meta_prefixed(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .conn()?
            .query(
                "SELECT key, value FROM meta WHERE left(key, length($1)) = $1 ORDER BY key",
                &[&prefix],
            )
            .map_err(pg_err)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
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
