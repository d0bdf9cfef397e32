//! The agent memory's records: facts (and each project's), their openings, votes, agent
//! reputations, each fact's history, the memory version; the in-memory BM25 index search ranks
//! with; writing an append's [`FactChange`]s; the snapshot scan `verify` compares with the
//! ledger and the replacement `rebuild` writes; the [`FactStore`] impl.
//!
//! The search index lives only in memory (built from the facts table at open), so the store
//! keeps no index text: [`FactStore::keeps_index_text`] is false and there is nothing of the
//! index on disk for `verify` to check or for anyone to tamper with.

use crate::RedbStore;
use crate::codec::{self, RawEntry};
use crate::db::{db_err, table};
use crate::ledger::read_head_in;
use crate::schema::{
    AGENTS, ENTRIES, FACT_EVENTS, FACT_OPENINGS, FACT_VECTORS, FACTS, FACTS_BY_PROJECT,
    MEMORY_VERSION_KEY, STATE, VOTES, be,
};
use cortex_core::embed::{vector_bytes, vector_from_bytes};
use cortex_core::ledger::entry::Entry;
use cortex_core::ledger::store::Head;
use cortex_core::memory::bm25::{Bm25Index, index_text};
use cortex_core::memory::commitment::FactOpening;
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{
    FactBatch, FactChange, FactRecall, FactSearch, FactStore, FactTx, MemoryRow, MemoryState,
    ProjectSize, SearchHit,
};
use cortex_core::{Error, ErrorKind, Result};
use redb::{ReadableTable, WriteTransaction};
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

/// Increments the memory version inside a write transaction.
fn bump_memory_version(path: &Path, tx: &WriteTransaction) -> Result<()> {
    let mut state = table!(path, tx, STATE)?;
    let v = read_u64_in(path, &state, MEMORY_VERSION_KEY)?;
    state
        .insert(MEMORY_VERSION_KEY, &(v + 1).to_be_bytes()[..])
        .map_err(|e| db_err(path, e))?;
    Ok(())
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

/// A change to the in-memory search index, made once the transaction that wrote it commits.
pub(crate) enum IndexChange {
    /// A new fact and its [`index_text`].
    Add(u64, String),
    /// An erased fact.
    Remove(u64),
}

impl IndexChange {
    pub(crate) fn apply(self, index: &mut Bm25Index) {
        match self {
            IndexChange::Add(id, text) => {
                index.add(id, &text);
            }
            IndexChange::Remove(id) => {
                index.remove(id);
            }
        }
    }
}

/// Writes the memory changes of an append, in order, and bumps the memory version. Returns the
/// search-index changes to make once the commit succeeded.
pub(crate) fn write_fact_changes(
    path: &Path,
    tx: &WriteTransaction,
    changes: &[FactChange],
) -> Result<Vec<IndexChange>> {
    let mut index = Vec::new();
    if changes.is_empty() {
        return Ok(index);
    }
    let e = |x: redb::StorageError| db_err(path, x);
    let mut facts = table!(path, tx, FACTS)?;
    let mut by_project = table!(path, tx, FACTS_BY_PROJECT)?;
    let mut openings = table!(path, tx, FACT_OPENINGS)?;
    let mut votes = table!(path, tx, VOTES)?;
    let mut agents = table!(path, tx, AGENTS)?;
    let mut events = table!(path, tx, FACT_EVENTS)?;
    let mut vectors = table!(path, tx, FACT_VECTORS)?;
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
                if !f.is_erased() {
                    index.push(IndexChange::Add(f.id, index_text(&f.content, &f.tags)));
                }
            }
            FactChange::PutOpening(o) => {
                if facts.get(o.fact_id).map_err(e)?.is_none() {
                    return Err(Error::not_found(format!(
                        "no fact {} to store an opening for",
                        o.fact_id
                    )));
                }
                openings
                    .insert(o.fact_id, &codec::encode_opening(o)[..])
                    .map_err(e)?;
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
            FactChange::Erase { fact_id, at, .. } => {
                let Some(mut f) = read_fact_in(path, &facts, *fact_id)? else {
                    return Err(Error::not_found(format!("no fact {fact_id} to erase")));
                };
                if f.is_erased() {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("fact {fact_id} is already erased"),
                    ));
                }
                f.content.clear();
                f.tags.clear();
                f.source = None;
                f.erased_at = Some(at.clone());
                facts.insert(f.id, &codec::encode_fact(&f)[..]).map_err(e)?;
                openings.remove(*fact_id).map_err(e)?;
                vectors.remove(*fact_id).map_err(e)?;
                index.push(IndexChange::Remove(*fact_id));
            }
        }
        if let Some((fact, entry)) = c.history_event() {
            events.insert((fact, entry), ()).map_err(e)?;
        }
    }
    bump_memory_version(path, tx)?;
    Ok(index)
}

/// The search index of `facts`: every one that is not erased.
fn index_of<'f>(facts: impl IntoIterator<Item = &'f Fact>) -> Bm25Index {
    let mut index = Bm25Index::new();
    for f in facts.into_iter().filter(|f| !f.is_erased()) {
        index.add(f.id, &index_text(&f.content, &f.tags));
    }
    index.shrink_to_fit();
    index
}

/// A row of a memory table as `scan_memory` reports it: decoded, or why not.
fn row<T>(
    table: &'static str,
    key: impl FnOnce() -> String,
    decoded: Result<T>,
    matches_key: impl FnOnce(&T) -> bool,
    wrap: impl FnOnce(T) -> MemoryRow,
) -> MemoryRow {
    match decoded {
        Ok(v) if matches_key(&v) => wrap(v),
        Ok(_) => MemoryRow::Undecodable {
            table,
            key: key(),
            problem: "the record names another key than the one it is stored under".into(),
        },
        Err(e) => MemoryRow::Undecodable {
            table,
            key: key(),
            problem: e.to_string(),
        },
    }
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

    fn opening(&self, fact_id: u64) -> Result<Option<FactOpening>> {
        let tx = self.read()?;
        let openings = table!(&self.path, tx, FACT_OPENINGS)?;
        openings
            .get(fact_id)
            .map_err(|e| db_err(&self.path, e))?
            .map(|v| codec::decode_opening(fact_id, v.value()))
            .transpose()
    }

    fn recall(&self, q: &FactRecall) -> Result<Vec<Fact>> {
        let mut out: Vec<Fact> = Vec::new();
        self.each_project_fact(&q.project, false, &mut |f| {
            if !f.is_deprecated()
                && f.is_valid_at(&q.as_of)
                && f.passes(q.author.as_deref(), q.min_consensus)
            {
                out.push(f);
            }
            true
        })?;
        out.sort_by(|a, b| b.consensus.total_cmp(&a.consensus).then(b.id.cmp(&a.id)));
        out.truncate(q.limit);
        Ok(out)
    }

    fn project_facts(&self, project: &str, limit: usize) -> Result<Vec<Fact>> {
        let mut out = Vec::new();
        if limit > 0 {
            self.each_project_fact(project, true, &mut |f| {
                out.push(f);
                out.len() < limit
            })?;
        }
        Ok(out)
    }

    fn project_sizes(&self) -> Result<Vec<ProjectSize>> {
        // Counts the project index's keys ((project, id), in byte order): no fact is decoded.
        let e = |x: redb::StorageError| db_err(&self.path, x);
        let tx = self.read()?;
        let by_project = table!(&self.path, tx, FACTS_BY_PROJECT)?;
        let mut out: Vec<ProjectSize> = Vec::new();
        for row in by_project.iter().map_err(e)? {
            let key = row.map_err(e)?.0;
            let (project, _) = key.value();
            match out.last_mut() {
                Some(last) if last.project == project => last.facts += 1,
                _ => out.push(ProjectSize {
                    project: project.to_owned(),
                    facts: 1,
                }),
            }
        }
        Ok(out)
    }

    fn search_facts(&self, q: &FactSearch) -> Result<Vec<SearchHit>> {
        if q.terms.is_empty() || q.top_k == 0 {
            return Ok(Vec::new());
        }
        // Scores first, then the snapshot: every fact in the index is committed, so the
        // snapshot taken afterwards holds it. A fact erased meanwhile is still scored here but
        // fails `passes` below (the index drops it right after the erasure commits).
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
                && fact.passes(q.author.as_deref(), q.min_consensus)
            {
                hits.push(SearchHit { fact, score });
            }
        }
        // Core's order: score descending, then id descending; the filters ran before the cut.
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

    /// One read transaction (a redb MVCC snapshot, which no later commit changes): its head,
    /// then each table in key order, one pass each.
    fn scan_memory(&self, visit: &mut dyn FnMut(MemoryRow) -> Result<()>) -> Result<()> {
        let path = self.path.as_path();
        let e = |x: redb::StorageError| db_err(path, x);
        let tx = self.read()?;
        visit(MemoryRow::Head(
            read_head_in(path, &table!(path, tx, STATE)?)?.size,
        ))?;
        for r in table!(path, tx, FACTS)?.iter().map_err(e)? {
            let (k, v) = r.map_err(e)?;
            let id = k.value();
            let decoded = codec::decode_fact(v.value());
            visit(row(
                "facts",
                || id.to_string(),
                decoded,
                |f| f.id == id,
                MemoryRow::Fact,
            ))?;
        }
        for r in table!(path, tx, FACT_OPENINGS)?.iter().map_err(e)? {
            let (k, v) = r.map_err(e)?;
            let id = k.value();
            let decoded = codec::decode_opening(id, v.value());
            visit(row(
                "fact_openings",
                || id.to_string(),
                decoded,
                |_| true,
                MemoryRow::Opening,
            ))?;
        }
        for r in table!(path, tx, VOTES)?.iter().map_err(e)? {
            let (k, v) = r.map_err(e)?;
            let (fact_id, agent) = k.value();
            let decoded = codec::decode_vote(v.value());
            visit(row(
                "fact_votes",
                || format!("({fact_id}, {agent:?})"),
                decoded,
                |v| v.fact_id == fact_id && v.agent == agent,
                MemoryRow::Vote,
            ))?;
        }
        for r in table!(path, tx, AGENTS)?.iter().map_err(e)? {
            let (k, v) = r.map_err(e)?;
            let agent = k.value();
            let decoded = codec::decode_agent(v.value());
            visit(row(
                "agents",
                || format!("{agent:?}"),
                decoded,
                |a| a.agent == agent,
                MemoryRow::Agent,
            ))?;
        }
        for r in table!(path, tx, FACT_EVENTS)?.iter().map_err(e)? {
            let (fact_id, entry_index) = r.map_err(e)?.0.value();
            visit(MemoryRow::Event {
                fact_id,
                entry_index,
            })?;
        }
        Ok(())
    }

    fn vectors(&self, model: &str, ids: &[u64]) -> Result<Vec<(u64, Vec<f32>)>> {
        self.read_vectors(model, ids)
    }

    fn put_vectors(&self, model: &str, vectors: &[(u64, Vec<f32>)]) -> Result<()> {
        self.write_vectors(model, vectors)
    }

    fn replace_memory(&self, ledger_size: u64, state: &MemoryState) -> Result<()> {
        let path = self.path.as_path();
        let e = |x: redb::StorageError| db_err(path, x);
        let index = index_of(&state.facts);
        let _w = self.lock_writer()?;
        // Dropping `tx` without committing (any `?` below) aborts it: nothing is written.
        let tx = self.write()?;
        let size = read_head_in(path, &table!(path, tx, STATE)?)?.size;
        if size != ledger_size {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the ledger has {size} entries, not the {ledger_size} the memory was \
                     replayed from"
                ),
            ));
        }
        let t = |x: redb::TableError| db_err(path, x);
        tx.delete_table(FACTS).map_err(t)?;
        tx.delete_table(FACTS_BY_PROJECT).map_err(t)?;
        tx.delete_table(FACT_OPENINGS).map_err(t)?;
        tx.delete_table(VOTES).map_err(t)?;
        tx.delete_table(AGENTS).map_err(t)?;
        tx.delete_table(FACT_EVENTS).map_err(t)?;
        {
            let mut facts = table!(path, tx, FACTS)?;
            let mut by_project = table!(path, tx, FACTS_BY_PROJECT)?;
            for f in &state.facts {
                facts.insert(f.id, &codec::encode_fact(f)[..]).map_err(e)?;
                by_project
                    .insert((f.project.as_str(), f.id), ())
                    .map_err(e)?;
            }
            let mut openings = table!(path, tx, FACT_OPENINGS)?;
            for o in &state.openings {
                openings
                    .insert(o.fact_id, &codec::encode_opening(o)[..])
                    .map_err(e)?;
            }
            let mut votes = table!(path, tx, VOTES)?;
            for v in &state.votes {
                votes
                    .insert((v.fact_id, v.agent.as_str()), &codec::encode_vote(v)[..])
                    .map_err(e)?;
            }
            let mut agents = table!(path, tx, AGENTS)?;
            for a in &state.agents {
                agents
                    .insert(a.agent.as_str(), &codec::encode_agent(a)[..])
                    .map_err(e)?;
            }
            let mut events = table!(path, tx, FACT_EVENTS)?;
            for &pair in &state.events {
                events.insert(pair, ()).map_err(e)?;
            }
            // Vectors only for facts that are present and not erased.
            let mut vectors = table!(path, tx, FACT_VECTORS)?;
            let live: std::collections::HashSet<u64> = state
                .facts
                .iter()
                .filter(|f| !f.is_erased())
                .map(|f| f.id)
                .collect();
            vectors.retain(|id, _| live.contains(&id)).map_err(e)?;
        }
        bump_memory_version(path, &tx)?;
        self.commit(tx)?;
        // Still under the writer lock: no append can extend the old index meanwhile.
        *self
            .search
            .write()
            .map_err(|_| Error::backend("redb search index lock poisoned"))? = index;
        Ok(())
    }
}

impl RedbStore {
    pub(crate) fn read_vectors(&self, model: &str, ids: &[u64]) -> Result<Vec<(u64, Vec<f32>)>> {
        let tx = self.read()?;
        let vectors = table!(&self.path, tx, FACT_VECTORS)?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(v) = vectors.get(id).map_err(|e| db_err(&self.path, e))? {
                let (m, bytes) = v.value();
                if m == model
                    && let Some(v) = vector_from_bytes(bytes)
                {
                    out.push((id, v));
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn write_vectors(&self, model: &str, vectors: &[(u64, Vec<f32>)]) -> Result<()> {
        if vectors.is_empty() {
            return Ok(());
        }
        let path = self.path.as_path();
        let e = |x: redb::StorageError| db_err(path, x);
        let _w = self.lock_writer()?;
        let tx = self.write()?;
        {
            let facts = table!(path, tx, FACTS)?;
            let mut table = table!(path, tx, FACT_VECTORS)?;
            for (id, v) in vectors {
                if read_fact_in(path, &facts, *id)?.is_some_and(|f| !f.is_erased()) {
                    table
                        .insert(*id, (model, &vector_bytes(v)[..]))
                        .map_err(e)?;
                }
            }
        }
        self.commit(tx)
    }

    /// Builds the search index from the facts table: every fact not erased. A record that does
    /// not decode is left out (and reported by `verify`), so a damaged row never keeps the store
    /// from opening.
    pub(crate) fn build_search_index(&self) -> Result<()> {
        let e = |x: redb::StorageError| db_err(&self.path, x);
        let tx = self.read()?;
        let facts = table!(&self.path, tx, FACTS)?;
        let mut index = Bm25Index::new();
        for row in facts.iter().map_err(e)? {
            let (_, v) = row.map_err(e)?;
            if let Ok(f) = codec::decode_fact(v.value())
                && !f.is_erased()
            {
                index.add(f.id, &index_text(&f.content, &f.tags));
            }
        }
        index.shrink_to_fit();
        *self
            .search
            .write()
            .map_err(|_| Error::backend("redb search index lock poisoned"))? = index;
        Ok(())
    }

    /// Calls `visit` with each fact of `project` in one snapshot, in id order (newest first if
    /// `newest_first`), until it returns false.
    fn each_project_fact(
        &self,
        project: &str,
        newest_first: bool,
        visit: &mut dyn FnMut(Fact) -> bool,
    ) -> Result<()> {
        let e = |x: redb::StorageError| db_err(&self.path, x);
        let tx = self.read()?;
        let facts = table!(&self.path, tx, FACTS)?;
        let by_project = table!(&self.path, tx, FACTS_BY_PROJECT)?;
        let rows = by_project
            .range((project, 0u64)..=(project, u64::MAX))
            .map_err(e)?;
        let rows: Box<dyn Iterator<Item = _>> = if newest_first {
            Box::new(rows.rev())
        } else {
            Box::new(rows)
        };
        for row in rows {
            let id = row.map_err(e)?.0.value().1;
            // The project index is derived from the facts table: trust the fact's own project.
            if let Some(f) = read_fact_in(&self.path, &facts, id)?.filter(|f| f.project == project)
                && !visit(f)
            {
                break;
            }
        }
        Ok(())
    }
}
