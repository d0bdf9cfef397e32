//! The append transaction both appends share: lock the head row (`SELECT … FOR UPDATE`), run
//! the builder (which reads tiles and memory state through [`PgTx`]), then write the entries,
//! tiles and head in one statement and the memory changes after them, and commit.

use crate::ledger::{TILE_SQL, TILES_SQL, read_head, read_tile_in, read_tiles_in};
use crate::memory::{
    AGENT_SQL, FACT_SQL, VOTES_SQL, read_agent, read_fact, read_votes, write_fact_changes,
};
use crate::pool::{PgConn, cached, has_code, pg_err};
use crate::{PostgresStore, to_i64};
use cortex_core::ledger::store::{AppendBatch, Head, LedgerTx};
use cortex_core::ledger::tiles::Tile;
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{FactBatch, FactTx};
use cortex_core::{Error, ErrorKind, Hash, Result};
use postgres::error::SqlState;
use postgres::{Statement, Transaction};
use std::collections::HashMap;

const LOCK_HEAD_SQL: &str = "SELECT size, last_hash FROM ledger_head WHERE id = 1 FOR UPDATE";

pub(crate) struct PgTx<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    stmts: &'t mut HashMap<&'static str, Statement>,
    head: Head,
    /// The head's right-edge tiles (the ones an append extends), read in one query on first use.
    edge: Option<HashMap<(u8, u64), Vec<Hash>>>,
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
        let s = cached(self.tx, self.stmts, FACT_SQL)?;
        read_fact(self.tx, &s, id)
    }
    fn votes(&mut self, fact_id: u64) -> Result<Vec<Vote>> {
        let s = cached(self.tx, self.stmts, VOTES_SQL)?;
        read_votes(self.tx, &s, fact_id)
    }
    fn agent_reputation(&mut self, agent: &str) -> Result<Option<AgentReputation>> {
        let s = cached(self.tx, self.stmts, AGENT_SQL)?;
        read_agent(self.tx, &s, agent)
    }
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

/// Locks the head row until the transaction ends and reads it: every other writer (thread or
/// process) waits here, and then, at READ COMMITTED, sees this transaction's rows in its own
/// statements.
pub(crate) fn lock_head(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
) -> Result<Head> {
    let lock = cached(tx, stmts, LOCK_HEAD_SQL)?;
    let head = read_head(tx, &lock)?;
    if head != Head::default() {
        return Ok(head);
    }
    // An empty head may mean a missing head row, which FOR UPDATE cannot lock: put it back
    // (concurrent writers wait on this insert) and lock it.
    tx.execute(
        "INSERT INTO ledger_head (id, size, last_hash) \
         VALUES (1, 0, decode(repeat('00', 32), 'hex')) ON CONFLICT (id) DO NOTHING",
        &[],
    )
    .map_err(pg_err)?;
    read_head(tx, &lock)
}

impl PostgresStore {
    /// One append transaction: the ledger batch and, in the same transaction, the memory
    /// changes the builder returns.
    pub(crate) fn commit_append<'a>(
        &self,
        build: &mut dyn FnMut(&mut PgTx<'_, '_>) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        let mut conn = self.conn()?;
        let PgConn { client, stmts } = &mut *conn;
        let mut tx = client.transaction().map_err(pg_err)?;
        let head = lock_head(&mut tx, stmts)?;
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
