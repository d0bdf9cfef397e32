//! An in-memory [`Store`](crate::memory::store::Store) (ledger and agent memory), always built: for tests,
//! examples and ephemeral ledgers.

use crate::error::{Error, ErrorKind, Result};
use crate::ledger::checkpoint::{CheckpointRecord, Receipt};
use crate::ledger::entry::{Entry, StoredEntry, StoredEntryRef};
use crate::ledger::hash::Hash;
use crate::ledger::store::{
    AppendBatch, AuditExport, Head, IntegrityCheck, LedgerStore, LedgerTx, MigrationReport,
};
use crate::ledger::tiles::{Tile, TileReader};
use crate::memory::bm25::{Bm25Index, index_text};
use crate::memory::commitment::FactOpening;
use crate::memory::consensus::{AgentReputation, Vote};
use crate::memory::fact::Fact;
use crate::memory::store::{
    FactBatch, FactChange, FactRecall, FactSearch, FactStore, FactTx, MemoryRow, MemoryState,
    ProjectSize, SearchHit,
};
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
    facts: BTreeMap<u64, Fact>,
    votes: BTreeMap<(u64, String), Vote>,
    agents: BTreeMap<String, AgentReputation>,
    fact_events: BTreeMap<u64, Vec<u64>>,
    openings: BTreeMap<u64, FactOpening>,
    search: Bm25Index,
    /// Each fact's vector and the model that made it.
    vectors: HashMap<u64, (String, Vec<f32>)>,
    memory_version: u64,
}

impl Inner {
    fn votes_of(&self, fact_id: u64) -> Vec<Vote> {
        self.votes
            .range((fact_id, String::new())..)
            .take_while(|((f, _), _)| *f == fact_id)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Checks that every change applies, before anything is written (all or nothing).
    fn check_changes(&self, changes: &[FactChange]) -> Result<()> {
        let mut new_ids = std::collections::HashSet::new();
        for c in changes {
            let target = match c {
                FactChange::Insert(f) => {
                    if self.facts.contains_key(&f.id) || !new_ids.insert(f.id) {
                        return Err(Error::new(
                            ErrorKind::Conflict,
                            format!("fact {} already exists", f.id),
                        ));
                    }
                    continue;
                }
                FactChange::PutVote(v) => v.fact_id,
                FactChange::PutOpening(o) => o.fact_id,
                FactChange::SetConsensus { fact_id, .. } => *fact_id,
                FactChange::Deprecate { fact_id, .. } | FactChange::Erase { fact_id, .. } => {
                    *fact_id
                }
                FactChange::PutAgent(_) => continue,
            };
            if !self.facts.contains_key(&target) && !new_ids.contains(&target) {
                return Err(Error::not_found(format!("no fact {target}")));
            }
        }
        Ok(())
    }

    fn apply_changes(&mut self, changes: Vec<FactChange>) {
        if changes.is_empty() {
            return;
        }
        for c in changes {
            if let Some((fact, entry)) = c.history_event() {
                self.fact_events.entry(fact).or_default().push(entry);
            }
            match c {
                FactChange::Insert(f) => {
                    self.search.add(f.id, &index_text(&f.content, &f.tags));
                    self.facts.insert(f.id, f);
                }
                FactChange::PutVote(v) => {
                    self.votes.insert((v.fact_id, v.agent.clone()), v);
                }
                FactChange::PutOpening(o) => {
                    self.openings.insert(o.fact_id, o);
                }
                FactChange::Erase { fact_id, at, .. } => {
                    self.openings.remove(&fact_id);
                    self.search.remove(fact_id);
                    self.vectors.remove(&fact_id);
                    if let Some(f) = self.facts.get_mut(&fact_id) {
                        f.content.clear();
                        f.tags.clear();
                        f.source = None;
                        f.erased_at = Some(at);
                    }
                }
                FactChange::SetConsensus { fact_id, consensus } => {
                    if let Some(f) = self.facts.get_mut(&fact_id) {
                        f.consensus = consensus;
                    }
                }
                FactChange::PutAgent(a) => {
                    self.agents.insert(a.agent.clone(), a);
                }
                FactChange::Deprecate {
                    fact_id,
                    at,
                    reason,
                    ..
                } => {
                    if let Some(f) = self.facts.get_mut(&fact_id) {
                        f.deprecated_at = Some(at);
                        f.deprecation_reason = reason;
                    }
                }
            }
        }
        self.memory_version += 1;
    }
}

/// A store that lives in memory and is gone when dropped.
#[derive(Default)]
pub struct InMemoryStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InMemoryStore")
    }
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::backend("in-memory store lock poisoned"))
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

/// Raw writes into the store's maps, for [`crate::testkit::tamper::tamper_conformance`]. Hashes
/// are kept as 32-byte arrays and checkpoint roots as [`Hash`]es, so a row whose hash columns are
/// not 32 bytes and a malformed root cannot be represented: those are not applicable.
#[cfg(any(test, feature = "testkit"))]
impl crate::testkit::tamper::Tamper for InMemoryStore {
    fn apply(&self, ops: &[crate::testkit::tamper::TamperOp]) -> crate::testkit::tamper::Outcome {
        use crate::testkit::tamper::{Outcome, TamperOp};
        let hash = |b: &[u8]| Hash::from_slice(b).ok();
        for op in ops {
            match op {
                TamperOp::PutEntry(r)
                    if hash(&r.prev_hash).is_none() || hash(&r.hash).is_none() =>
                {
                    return Outcome::NotApplicable(
                        "the in-memory store keeps chain hashes as 32-byte arrays".into(),
                    );
                }
                TamperOp::MalformCheckpointRoot(_) => {
                    return Outcome::NotApplicable(
                        "the in-memory store keeps checkpoint roots as 32-byte hashes".into(),
                    );
                }
                TamperOp::SetIndexText(..) => {
                    return Outcome::NotApplicable(
                        "the in-memory store's search index holds no source text".into(),
                    );
                }
                _ => {}
            }
        }
        let mut g = self.lock().expect("in-memory store lock");
        for op in ops {
            match op {
                TamperOp::PutEntry(r) => {
                    let e = StoredEntry {
                        entry: Entry {
                            index: r.index,
                            timestamp: r.timestamp.clone(),
                            project: r.project.clone(),
                            action: r.action.clone(),
                            detail: r.detail.clone(),
                        },
                        prev_hash: hash(&r.prev_hash).expect("checked"),
                        hash: hash(&r.hash).expect("checked"),
                    };
                    g.entries.insert(r.index, e);
                }
                TamperOp::DeleteEntries(range) => {
                    g.entries.retain(|i, _| !range.contains(i));
                }
                TamperOp::SetHead(h) => g.head = *h,
                TamperOp::PutTile {
                    level,
                    index,
                    bytes,
                } => {
                    g.tiles.insert((*level, *index), bytes.clone());
                }
                TamperOp::DeleteTile { level, index } => {
                    g.tiles.remove(&(*level, *index));
                }
                TamperOp::PutCheckpoint(cp) => {
                    let stored = g.checkpoints.entry(cp.size).or_insert_with(|| cp.clone());
                    stored.root = cp.root;
                    stored.range_start = cp.range_start;
                    stored.range_count = cp.range_count;
                    stored.note = cp.note.clone();
                }
                TamperOp::MalformCheckpointRoot(_) => unreachable!("checked"),
                TamperOp::DeleteCheckpoint(size) => {
                    g.checkpoints.remove(size);
                }
                TamperOp::PutFact(f) => {
                    g.facts.insert(f.id, f.clone());
                }
                TamperOp::DeleteFact(id) => {
                    g.facts.remove(id);
                }
                TamperOp::PutOpening(o) => {
                    g.openings.insert(o.fact_id, o.clone());
                }
                TamperOp::DeleteOpening(id) => {
                    g.openings.remove(id);
                }
                TamperOp::PutVote(v) => {
                    g.votes.insert((v.fact_id, v.agent.clone()), v.clone());
                }
                TamperOp::DeleteVote(f, a) => {
                    g.votes.remove(&(*f, a.clone()));
                }
                TamperOp::PutAgent(a) => {
                    g.agents.insert(a.agent.clone(), a.clone());
                }
                TamperOp::PutEvent(f, e) => {
                    let es = g.fact_events.entry(*f).or_default();
                    if !es.contains(e) {
                        es.push(*e);
                        es.sort_unstable();
                    }
                }
                TamperOp::DeleteEvent(f, e) => {
                    if let Some(es) = g.fact_events.get_mut(f) {
                        es.retain(|x| x != e);
                    }
                }
                TamperOp::SetIndexText(..) => unreachable!("checked"),
            }
        }
        Outcome::Done
    }
}

struct Tx<'a> {
    inner: &'a Inner,
}

impl LedgerTx for Tx<'_> {
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

impl FactTx for Tx<'_> {
    fn fact(&mut self, id: u64) -> Result<Option<Fact>> {
        Ok(self.inner.facts.get(&id).cloned())
    }
    fn votes(&mut self, fact_id: u64) -> Result<Vec<Vote>> {
        Ok(self.inner.votes_of(fact_id))
    }
    fn agent_reputation(&mut self, agent: &str) -> Result<Option<AgentReputation>> {
        Ok(self.inner.agents.get(agent).cloned())
    }
}

impl TileReader for InMemoryStore {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        self.lock()?
            .tiles
            .get(&(level, index))
            .map(|b| Tile::decode(b))
            .transpose()
    }
}

impl InMemoryStore {
    /// One append: the ledger batch and the memory changes, checked before anything is written.
    fn commit<'a>(
        &self,
        build: &mut dyn FnMut(&mut Tx<'_>) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        let mut g = self.lock()?;
        let (batch, changes) = build(&mut Tx { inner: &g })?;
        g.check_changes(&changes)?;
        for (i, (e, (prev, hash))) in batch.entries.iter().zip(&batch.links).enumerate() {
            let index = batch.first_index + i as u64;
            let entry = crate::ledger::entry::Entry {
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
        g.apply_changes(changes);
        Ok(g.head)
    }
}

impl LedgerStore for InMemoryStore {
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
    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.lock()?.meta.insert(key.to_owned(), value.to_owned());
        Ok(())
    }
    fn meta_prefixed(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut found: Vec<(String, String)> = (self.lock()?.meta.iter())
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        found.sort();
        Ok(found)
    }
    fn head(&self) -> Result<Head> {
        Ok(self.lock()?.head)
    }
    fn append<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn LedgerTx) -> Result<AppendBatch<'a>>,
    ) -> Result<Head> {
        self.commit(&mut |tx| Ok((build(tx)?, Vec::new())))
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
        let largest = g.checkpoints.keys().next_back().copied();
        crate::ledger::checkpoint::check_checkpoint_follows(largest, cp)?;
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

impl FactStore for InMemoryStore {
    fn append_facts<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn FactTx) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        self.commit(&mut |tx| build(tx))
    }
    fn fact(&self, id: u64) -> Result<Option<Fact>> {
        Ok(self.lock()?.facts.get(&id).cloned())
    }
    fn opening(&self, fact_id: u64) -> Result<Option<FactOpening>> {
        Ok(self.lock()?.openings.get(&fact_id).cloned())
    }
    fn recall(&self, q: &FactRecall) -> Result<Vec<Fact>> {
        let g = self.lock()?;
        let mut out: Vec<Fact> = g
            .facts
            .values()
            .filter(|f| {
                f.project == q.project
                    && !f.is_deprecated()
                    && f.is_valid_at(&q.as_of)
                    && f.passes(q.author.as_deref(), q.min_consensus)
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| b.consensus.total_cmp(&a.consensus).then(b.id.cmp(&a.id)));
        out.truncate(q.limit);
        Ok(out)
    }
    fn project_facts(&self, project: &str, limit: usize) -> Result<Vec<Fact>> {
        let g = self.lock()?;
        Ok(g.facts
            .values()
            .rev()
            .filter(|f| f.project == project)
            .take(limit)
            .cloned()
            .collect())
    }
    fn project_sizes(&self) -> Result<Vec<ProjectSize>> {
        let g = self.lock()?;
        let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
        for f in g.facts.values() {
            *sizes.entry(f.project.as_str()).or_insert(0) += 1;
        }
        Ok(sizes
            .into_iter()
            .map(|(project, facts)| ProjectSize {
                project: project.to_owned(),
                facts,
            })
            .collect())
    }
    fn search_facts(&self, q: &FactSearch) -> Result<Vec<SearchHit>> {
        let g = self.lock()?;
        let accept = |pos: u32| {
            g.facts.get(&g.search.id_at(pos)).is_some_and(|f| {
                q.project.as_deref().is_none_or(|p| f.project == p)
                    && f.is_valid_at(&q.as_of)
                    && (q.include_deprecated || !f.is_deprecated())
                    && f.passes(q.author.as_deref(), q.min_consensus)
            })
        };
        Ok(g.search
            .top_k(&q.terms, q.top_k, &accept)
            .into_iter()
            .map(|(id, score)| SearchHit {
                fact: g.facts[&id].clone(),
                score,
            })
            .collect())
    }
    fn votes(&self, fact_id: u64) -> Result<Vec<Vote>> {
        Ok(self.lock()?.votes_of(fact_id))
    }
    fn agent_reputation(&self, agent: &str) -> Result<Option<AgentReputation>> {
        Ok(self.lock()?.agents.get(agent).cloned())
    }
    fn fact_history(&self, fact_id: u64) -> Result<Vec<Entry>> {
        let g = self.lock()?;
        let Some(events) = g.fact_events.get(&fact_id) else {
            return Ok(Vec::new());
        };
        Ok(events
            .iter()
            .filter_map(|i| g.entries.get(i).map(|e| e.entry.clone()))
            .collect())
    }
    fn memory_version(&self) -> Result<u64> {
        Ok(self.lock()?.memory_version)
    }
    fn scan_memory(&self, visit: &mut dyn FnMut(MemoryRow) -> Result<()>) -> Result<()> {
        let g = self.lock()?;
        visit(MemoryRow::Head(g.head.size))?;
        for f in g.facts.values() {
            visit(MemoryRow::Fact(f.clone()))?;
        }
        for o in g.openings.values() {
            visit(MemoryRow::Opening(o.clone()))?;
        }
        for v in g.votes.values() {
            visit(MemoryRow::Vote(v.clone()))?;
        }
        for a in g.agents.values() {
            visit(MemoryRow::Agent(a.clone()))?;
        }
        for (f, es) in &g.fact_events {
            for e in es {
                visit(MemoryRow::Event {
                    fact_id: *f,
                    entry_index: *e,
                })?;
            }
        }
        Ok(())
    }
    fn replace_memory(&self, ledger_size: u64, state: &MemoryState) -> Result<()> {
        let mut g = self.lock()?;
        if g.head.size != ledger_size {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the ledger has {} entries, not the {ledger_size} the memory was replayed from",
                    g.head.size
                ),
            ));
        }
        g.facts = state.facts.iter().map(|f| (f.id, f.clone())).collect();
        g.openings = state
            .openings
            .iter()
            .map(|o| (o.fact_id, o.clone()))
            .collect();
        g.votes = state
            .votes
            .iter()
            .map(|v| ((v.fact_id, v.agent.clone()), v.clone()))
            .collect();
        g.agents = state
            .agents
            .iter()
            .map(|a| (a.agent.clone(), a.clone()))
            .collect();
        g.fact_events = BTreeMap::new();
        for (f, e) in &state.events {
            g.fact_events.entry(*f).or_default().push(*e);
        }
        let mut search = Bm25Index::new();
        for f in state.facts.iter().filter(|f| !f.is_erased()) {
            search.add(f.id, &index_text(&f.content, &f.tags));
        }
        g.search = search;
        let Inner { vectors, facts, .. } = &mut *g;
        vectors.retain(|id, _| facts.get(id).is_some_and(|f| !f.is_erased()));
        g.memory_version += 1;
        Ok(())
    }

    fn vectors(&self, model: &str, ids: &[u64]) -> Result<Vec<(u64, Vec<f32>)>> {
        let g = self.lock()?;
        Ok(ids
            .iter()
            .filter_map(|id| match g.vectors.get(id) {
                Some((m, v)) if m == model => Some((*id, v.clone())),
                _ => None,
            })
            .collect())
    }

    fn put_vectors(&self, model: &str, vectors: &[(u64, Vec<f32>)]) -> Result<()> {
        let mut g = self.lock()?;
        for (id, v) in vectors {
            if g.facts.get(id).is_some_and(|f| !f.is_erased()) {
                g.vectors.insert(*id, (model.to_owned(), v.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn in_memory_store_conformance() {
        crate::testkit::store_conformance(&|| Arc::new(InMemoryStore::new()));
    }

    #[test]
    fn in_memory_store_tamper_conformance() {
        use crate::testkit::tamper::{Tamper, tamper_conformance, test_signer};
        let report = tamper_conformance(
            &|| {
                let s = Arc::new(InMemoryStore::new());
                (
                    s.clone() as crate::memory::store::DynStore,
                    Box::new(s) as Box<dyn Tamper>,
                )
            },
            &test_signer,
        );
        assert_eq!(
            report.skipped_names(),
            [
                "a_malformed_hash_is_an_altered_entry",
                "a_malformed_root_column_is_a_bad_root"
            ],
            "{report:?}"
        );
    }

    #[test]
    fn in_memory_store_memory_tamper_conformance() {
        use crate::testkit::tamper::{Tamper, memory_tamper_conformance};
        let report = memory_tamper_conformance(&|| {
            let s = Arc::new(InMemoryStore::new());
            (
                s.clone() as crate::memory::store::DynStore,
                Box::new(s) as Box<dyn Tamper>,
            )
        });
        assert_eq!(
            report.skipped_names(),
            [
                "altered_search_index_text",
                "a_fact_removed_from_the_search_index",
                "an_erased_fact_put_back_in_the_search_index"
            ],
            "{report:?}"
        );
    }
}
