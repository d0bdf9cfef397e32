//! The append transaction both appends share: the writer lock, one durable write transaction,
//! the builder (which reads tiles and memory state through [`RedbTx`]), the entries, tiles,
//! head and memory changes it returns, and, once committed, the search index's changes (new
//! facts in, erased ones out).

use crate::RedbStore;
use crate::codec;
use crate::db::{db_err, table};
use crate::ledger::{read_head_in, read_tile_in};
use crate::memory::{read_agent_in, read_fact_in, read_votes_in, write_fact_changes};
use crate::schema::{AGENTS, ENTRIES, FACTS, HEAD_KEY, STATE, TILES, VOTES, be};
use cortex_core::ledger::store::{Head, LedgerTx};
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{FactBatch, FactTx};
use cortex_core::{Error, ErrorKind, Hash, Result};
use redb::WriteTransaction;
use std::path::Path;

/// What an append's `build` sees: reads inside the append's write transaction.
pub(crate) struct RedbTx<'t> {
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

impl RedbStore {
    /// One append transaction: the ledger batch and, in the same transaction, the memory
    /// changes the builder returns.
    pub(crate) fn commit_append<'a>(
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
        let index_changes = write_fact_changes(path, &tx, &changes)?;
        self.commit(tx)?;
        if !index_changes.is_empty() {
            let mut index = self
                .search
                .write()
                .map_err(|_| Error::backend("redb search index lock poisoned"))?;
            for c in index_changes {
                c.apply(&mut index);
            }
        }
        Ok(batch.new_head)
    }
}
