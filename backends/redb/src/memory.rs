//! The agent memory's records: facts (and each project's), votes, agent reputations, each
//! fact's history, the memory version; the in-memory BM25 index search ranks with; writing an
//! append's [`FactChange`]s; the [`FactStore`] impl.

use crate::RedbStore;
use crate::codec::{self, RawEntry};
use crate::db::{db_err, table};
use crate::schema::{
    AGENTS, ENTRIES, FACT_EVENTS, FACTS, FACTS_BY_PROJECT, MEMORY_VERSION_KEY, STATE, VOTES, be,
};
use cortex_core::ledger::entry::Entry;
use cortex_core::ledger::store::Head;
use cortex_core::memory::bm25::{Bm25Index, index_text};
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{FactBatch, FactChange, FactSearch, FactStore, FactTx, SearchHit};
use cortex_core::{Error, ErrorKind, Result};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use std::path::Path;

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

pub(crate) fn read_fact_in(
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

pub(crate) fn read_votes_in(
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

pub(crate) fn read_agent_in(
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

/// Writes the memory changes of an append, in order, and bumps the memory version. Returns the
/// `(id, indexed text)` of the inserted facts, for the search index once the commit succeeded.
pub(crate) fn write_fact_changes(
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
    pub(crate) fn build_search_index(&self) -> Result<()> {
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
