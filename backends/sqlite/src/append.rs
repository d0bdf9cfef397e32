//! The append transaction both appends share: `BEGIN IMMEDIATE`, the head, the builder (which
//! reads tiles and memory state through [`SqliteTx`]), then the entries, tiles, head and memory
//! changes it returns, committed together.

use crate::conn::sql_err;
use crate::ledger::{read_head, read_tile_in};
use crate::memory::{read_agent, read_fact, read_votes, write_fact_changes};
use crate::{SqliteStore, to_i64};
use cortex_core::ledger::store::{AppendBatch, Head, LedgerTx};
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{FactBatch, FactTx};
use cortex_core::{Error, ErrorKind, Hash, Result};
use rusqlite::{TransactionBehavior, params};
use std::path::Path;

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

pub(crate) struct SqliteTx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    head: Head,
    path: &'a Path,
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

impl SqliteStore {
    /// One append transaction: the ledger batch and, in the same transaction, the memory
    /// changes the builder returns.
    pub(crate) fn commit_append<'a>(
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
