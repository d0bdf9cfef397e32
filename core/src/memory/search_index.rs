//! An in-memory BM25 index of the facts for long-running processes (MCP and REST servers),
//! kept in step with the ledger, so it is exact with any [`Store`] and across processes.
//!
//! Why: a store's own full-text engine scores every document that contains a query word
//! (SQLite FTS5's `bm25()` costs about 0.75 µs per matching row), so a query with a common word
//! over 100,000 facts takes tens of milliseconds. Here the postings are plain vectors and a
//! matching fact costs a few nanoseconds. Scores and order are the same as the store's
//! ([`crate::memory::bm25`]); the conformance suite checks it.
//!
//! How it stays exact: every memory mutation is a ledger entry, so before answering the index
//! reads the store's head and applies the entries it has not seen (`fact.store` adds a fact,
//! reading a sealed fact's content from the store; `fact.deprecate` marks one; `fact.vote`
//! refreshes its consensus for the consensus filter; `fact.erase` takes it out). A write acknowledged before a search started is therefore always
//! seen, also when another process made it. The facts returned are read from the store.
//! While the first build of a large ledger is running, searches fall back to the store.

use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::ledger::entry::EntryRef;
use crate::memory::SearchMode;
use crate::memory::bm25::{Bm25Index, index_text};
use crate::memory::fact::{
    ACTION_DEPRECATE, ACTION_ERASE, ACTION_STORE, ACTION_VOTE, DeprecateDetail, EraseDetail,
    StoreRecord, VoteDetail, is_memory_action,
};
use crate::memory::store::Store;
use crate::memory::store::{FactSearch, SearchHit};
use crate::memory::vectors::{QuantizedVectors, reciprocal_rank_fusion};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, TryLockError};

/// Entries behind the head beyond which a search does not wait for another thread's catch-up
/// and asks the store instead.
const WAIT_LIMIT: u64 = 10_000;

#[derive(Debug, Clone, Copy)]
struct DocMeta {
    project: u32,
    /// Interned author; [`NO_AUTHOR`] if none was declared.
    author: u32,
    valid_from: i64,
    valid_until: i64,
    deprecated: bool,
    consensus: f64,
}

const NO_AUTHOR: u32 = u32::MAX;

#[derive(Debug, Default)]
struct State {
    /// Ledger entries `0..synced` are applied.
    synced: u64,
    bm25: Bm25Index,
    meta: Vec<DocMeta>,
    projects: HashMap<String, u32>,
    authors: HashMap<String, u32>,
    /// Each fact's embedding by position, when the index has an embedder.
    vectors: Option<QuantizedVectors>,
}

/// Microseconds since the Unix epoch of a canonical timestamp (`None` if it is not one).
fn micros(ts: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(ts.get(..26)?, "%Y-%m-%dT%H:%M:%S%.6f").ok()?;
    Some(t.and_utc().timestamp_micros())
}

fn intern(map: &mut HashMap<String, u32>, name: &str) -> u32 {
    let next = map.len() as u32;
    *map.entry(name.to_owned()).or_insert(next)
}

impl State {
    /// Applies one memory entry. A sealed fact's content is not in its entry: it is read from
    /// `store` (as it is now: an erased fact is not indexed). A detail that does not parse is
    /// tampering, which `verify` reports; the store's own rows stay authoritative for what is
    /// returned.
    fn apply(
        &mut self,
        e: EntryRef<'_>,
        store: &dyn Store,
        known: &HashMap<u64, crate::memory::fact::Fact>,
    ) -> Result<()> {
        match e.action {
            ACTION_STORE => {
                let Ok(record) = StoreRecord::parse(e.detail) else {
                    return Ok(());
                };
                let (text, author, valid_from, valid_until) = match record {
                    StoreRecord::Plain(d) => (
                        index_text(&d.content, &d.tags),
                        None,
                        d.valid_from,
                        d.valid_until,
                    ),
                    StoreRecord::Sealed(d) => {
                        let read;
                        let f = match known.get(&e.index) {
                            Some(f) => f,
                            None => match store.fact(e.index)? {
                                Some(f) => {
                                    read = f;
                                    &read
                                }
                                None => return Ok(()),
                            },
                        };
                        if f.is_erased() {
                            return Ok(());
                        }
                        (
                            index_text(&f.content, &f.tags),
                            d.author.agent,
                            d.valid_from,
                            d.valid_until,
                        )
                    }
                };
                let project = intern(&mut self.projects, e.project);
                let author = author.map_or(NO_AUTHOR, |a| intern(&mut self.authors, &a));
                let pos = self.bm25.add(e.index, &text) as usize;
                if pos == self.meta.len() {
                    self.meta.push(DocMeta {
                        project,
                        author,
                        valid_from: micros(&valid_from).unwrap_or(i64::MAX),
                        valid_until: valid_until.as_deref().and_then(micros).unwrap_or(i64::MAX),
                        deprecated: false,
                        consensus: 0.0,
                    });
                }
            }
            ACTION_DEPRECATE => {
                if let Ok(d) = serde_json::from_str::<DeprecateDetail>(e.detail)
                    && let Some(pos) = self.bm25.position(d.fact_id)
                {
                    self.meta[pos as usize].deprecated = true;
                }
            }
            ACTION_VOTE => {
                // The consensus after a vote is derived, not in the entry: read it (as it is
                // now, which is at least as new as this entry).
                if let Ok(d) = serde_json::from_str::<VoteDetail>(e.detail)
                    && let Some(pos) = self.bm25.position(d.fact_id)
                    && let Some(f) = store.fact(d.fact_id)?
                {
                    self.meta[pos as usize].consensus = f.consensus;
                }
            }
            ACTION_ERASE => {
                if let Ok(d) = serde_json::from_str::<EraseDetail>(e.detail) {
                    if let (Some(v), Some(pos)) = (&mut self.vectors, self.bm25.position(d.fact_id))
                    {
                        v.remove(pos);
                    }
                    self.bm25.remove(d.fact_id);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The index. Share one per process (it is `Sync`); see the module docs.
#[derive(Default)]
pub struct SearchIndex {
    state: RwLock<State>,
    syncing: Mutex<()>,
    embedder: Option<Arc<dyn Embedder>>,
    /// Query embeddings by query text (cleared when full).
    query_cache: Mutex<HashMap<String, Arc<Vec<f32>>>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("facts", &self.len())
            .field("model", &self.embedder.as_ref().map(|e| e.model_id()))
            .finish()
    }
}

/// Query embeddings kept at most.
const QUERY_CACHE_LIMIT: usize = 4096;
/// Facts embedded in one call when vectors are missing.
const EMBED_BATCH: usize = 64;

fn poisoned<T>(_: T) -> Error {
    Error::backend("search index lock poisoned")
}

impl SearchIndex {
    /// An empty index; it fills itself from the ledger on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty index that also keeps every fact's embedding by `embedder` for semantic search.
    /// Vectors are read from the store; a fact without one (stored by a process with no model,
    /// or before the model was installed) is embedded here and its vector written back.
    pub fn with_embedder(embedder: Arc<dyn Embedder>) -> Self {
        SearchIndex {
            state: RwLock::new(State {
                vectors: Some(QuantizedVectors::new(embedder.dimension())),
                ..State::default()
            }),
            embedder: Some(embedder),
            ..Self::default()
        }
    }

    /// The embedder, if semantic search is on.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }

    /// Number of facts with a vector.
    pub fn vector_count(&self) -> usize {
        self.state
            .read()
            .map_or(0, |s| s.vectors.as_ref().map_or(0, |v| v.len()))
    }

    /// Number of facts indexed.
    pub fn len(&self) -> usize {
        self.state.read().map_or(0, |s| s.bm25.len())
    }

    /// True if no fact is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies every ledger entry up to the store's current head (the first call reads the
    /// whole ledger: call it at startup, off the request path).
    pub fn catch_up(&self, store: &dyn Store) -> Result<()> {
        let head = store.head()?.size;
        self.catch_up_to(store, head, true).map(|_| ())
    }

    /// Brings the index to at least `head`. Returns false (without waiting) if `wait` is false,
    /// the index is far behind and another thread is already catching up.
    fn catch_up_to(&self, store: &dyn Store, head: u64, wait: bool) -> Result<bool> {
        let synced = self.state.read().map_err(poisoned)?.synced;
        if synced >= head {
            return Ok(true);
        }
        let _guard = if wait || head - synced <= WAIT_LIMIT {
            self.syncing.lock().map_err(poisoned)?
        } else {
            match self.syncing.try_lock() {
                Ok(g) => g,
                Err(TryLockError::WouldBlock) => return Ok(false),
                Err(TryLockError::Poisoned(p)) => return Err(poisoned(p)),
            }
        };
        // Apply in chunks so searchers are not blocked for a whole first build; they only use
        // the index once it reaches the head they read.
        const CHUNK: u64 = 65_536;
        loop {
            let from = self.state.read().map_err(poisoned)?.synced;
            if from >= head {
                return Ok(true);
            }
            let to = head.min(from + CHUNK);
            // Read first, apply after: applying a sealed fact reads the store again.
            let mut entries = Vec::new();
            store.scan_entries(from..to, &mut |r| {
                if is_memory_action(r.entry.action) {
                    entries.push(r.entry.to_entry());
                }
                Ok(())
            })?;
            // The sealed facts' texts, read a few thousand at a time (one range read each, and
            // little memory held at once); their vectors read (or made) before the lock.
            for group in entries.chunks(4096) {
                let ids: Vec<u64> = group
                    .iter()
                    .filter(|e| e.action == ACTION_STORE)
                    .map(|e| e.index)
                    .collect();
                let known: HashMap<u64, crate::memory::fact::Fact> = store
                    .facts_by_id(&ids)?
                    .into_iter()
                    .map(|f| (f.id, f))
                    .collect();
                let vectors = self.vectors_of(store, &ids, &known)?;
                let mut st = self.state.write().map_err(poisoned)?;
                for e in group {
                    st.apply(e.as_ref(), store, &known)?;
                }
                let State {
                    bm25, vectors: ix, ..
                } = &mut *st;
                if let Some(ix) = ix {
                    for (id, v) in &vectors {
                        if let Some(pos) = bm25.position(*id) {
                            ix.set(pos, v);
                        }
                    }
                }
            }
            let mut st = self.state.write().map_err(poisoned)?;
            st.synced = to;
            if to - from > 1024 {
                st.bm25.shrink_to_fit();
                st.meta.shrink_to_fit();
                if let Some(v) = &mut st.vectors {
                    v.shrink_to_fit();
                }
            }
        }
    }

    /// The vectors of the facts `ids` (those `known` and not erased): read from the store, and
    /// for any the store lacks, embedded here and written back. Empty without an embedder.
    fn vectors_of(
        &self,
        store: &dyn Store,
        ids: &[u64],
        known: &HashMap<u64, crate::memory::fact::Fact>,
    ) -> Result<Vec<(u64, Vec<f32>)>> {
        let Some(embedder) = &self.embedder else {
            return Ok(Vec::new());
        };
        let mut out = store.vectors(embedder.model_id(), ids)?;
        let have: std::collections::HashSet<u64> = out.iter().map(|v| v.0).collect();
        let missing: Vec<&crate::memory::fact::Fact> = ids
            .iter()
            .filter(|id| !have.contains(id))
            .filter_map(|id| known.get(id))
            .filter(|f| !f.is_erased())
            .collect();
        for batch in missing.chunks(EMBED_BATCH) {
            let made = embed_facts(&**embedder, batch)?;
            store.put_vectors(embedder.model_id(), &made)?;
            out.extend(made);
        }
        Ok(out)
    }

    /// The embedding of a query, from the cache when asked before.
    fn query_vector(&self, embedder: &dyn Embedder, query: &str) -> Result<Arc<Vec<f32>>> {
        if let Some(v) = self.query_cache.lock().map_err(poisoned)?.get(query) {
            return Ok(v.clone());
        }
        let v = Arc::new(
            embedder
                .embed(&[query])?
                .pop()
                .ok_or_else(|| Error::backend("the embedder returned no vector"))?,
        );
        let mut cache = self.query_cache.lock().map_err(poisoned)?;
        if cache.len() >= QUERY_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(query.to_owned(), v.clone());
        Ok(v)
    }

    /// Runs `q` in `mode` on the index (waiting for it to catch up), reading the returned facts
    /// from `store`. Semantic and hybrid modes need an embedder
    /// ([`SearchIndex::with_embedder`]); `query` is the query's text (what is embedded).
    pub fn search_mode(
        &self,
        store: &dyn Store,
        q: &FactSearch,
        query: &str,
        mode: SearchMode,
    ) -> Result<Vec<SearchHit>> {
        let head = store.head()?.size;
        self.catch_up_to(store, head, true)?;
        let embedder = match (mode, &self.embedder) {
            (SearchMode::Keyword, _) => None,
            (_, Some(e)) => Some(e),
            (_, None) => return Err(no_model(mode)),
        };
        // Hybrid fuses deeper lists than it returns, so a fact ranked moderately by both can
        // rise above one ranked first by only one.
        let depth = (q.top_k * 4).max(50);
        // The keyword ranking (a read of the index) runs beside the query's embedding (the
        // model's work): two cores, one search.
        let keyword = |k: usize| -> Result<Option<Vec<(u64, f64)>>> {
            let st = self.state.read().map_err(poisoned)?;
            Ok(st
                .filter(q)?
                .map(|accept| st.bm25.top_k(&q.terms, k, &accept)))
        };
        let (kw, qv) = match (mode, embedder) {
            (SearchMode::Hybrid, Some(e)) => std::thread::scope(|s| {
                // Without a thread to be had, the keyword ranking runs after the embedding.
                let kw = std::thread::Builder::new().spawn_scoped(s, || keyword(depth));
                let qv = self.query_vector(&**e, query);
                let kw = match kw {
                    Ok(h) => h
                        .join()
                        .unwrap_or_else(|_| Err(Error::backend("a search thread panicked"))),
                    Err(_) => keyword(depth),
                };
                (kw, qv)
            }),
            (SearchMode::Keyword, _) => (keyword(q.top_k), Err(no_model(mode))),
            (_, Some(e)) => (Ok(Some(Vec::new())), self.query_vector(&**e, query)),
            (_, None) => return Err(no_model(mode)),
        };
        let Some(kw) = kw? else {
            return Ok(Vec::new());
        };
        let top = match mode {
            SearchMode::Keyword => kw,
            _ => {
                let qv = qv?;
                let st = self.state.read().map_err(poisoned)?;
                let Some(accept) = st.filter(q)? else {
                    return Ok(Vec::new());
                };
                let k = if mode == SearchMode::Hybrid {
                    depth
                } else {
                    q.top_k
                };
                let sem = match &st.vectors {
                    Some(v) => v.top_k(&qv, k, &accept, &|pos| st.bm25.id_at(pos)),
                    None => Vec::new(),
                };
                if mode == SearchMode::Semantic {
                    sem
                } else {
                    let kw: Vec<u64> = kw.into_iter().map(|h| h.0).collect();
                    let sem: Vec<u64> = sem.into_iter().map(|h| h.0).collect();
                    reciprocal_rank_fusion(&[&kw, &sem], q.top_k)
                }
            }
        };
        read_hits(store, q, top)
    }

    /// Runs `q` on the index, reading the returned facts from `store`. `None` if the index is
    /// still being built by another thread (ask the store instead).
    pub fn search(&self, store: &dyn Store, q: &FactSearch) -> Result<Option<Vec<SearchHit>>> {
        let head = store.head()?.size;
        if !self.catch_up_to(store, head, false)? {
            return Ok(None);
        }
        let top = {
            let st = self.state.read().map_err(poisoned)?;
            let Some(accept) = st.filter(q)? else {
                return Ok(Some(Vec::new()));
            };
            st.bm25.top_k(&q.terms, q.top_k, &accept)
        };
        read_hits(store, q, top).map(Some)
    }
}

impl State {
    /// Whether the fact at a position passes `q`'s filters; `None` if no fact can (a project or
    /// author never seen).
    fn filter<'a>(&'a self, q: &'a FactSearch) -> Result<Option<impl Fn(u32) -> bool + Sync + 'a>> {
        let as_of = micros(&q.as_of)
            .ok_or_else(|| Error::invalid(format!("as_of {:?} is not canonical", q.as_of)))?;
        let project = match &q.project {
            Some(p) => match self.projects.get(p) {
                Some(&id) => Some(id),
                None => return Ok(None),
            },
            None => None,
        };
        let author = match &q.author {
            Some(a) => match self.authors.get(a) {
                Some(&id) => Some(id),
                None => return Ok(None),
            },
            None => None,
        };
        Ok(Some(move |pos: u32| {
            let m = &self.meta[pos as usize];
            project.is_none_or(|p| m.project == p)
                && author.is_none_or(|a| m.author == a)
                && q.min_consensus.is_none_or(|c| m.consensus >= c)
                && m.valid_from <= as_of
                && as_of < m.valid_until
                && (q.include_deprecated || !m.deprecated)
        }))
    }
}

/// The facts of ranked ids, read from the store; a change committed after the head the index
/// read may show there, and is honored.
fn read_hits(store: &dyn Store, q: &FactSearch, top: Vec<(u64, f64)>) -> Result<Vec<SearchHit>> {
    let mut hits = Vec::with_capacity(top.len());
    for (id, score) in top {
        if let Some(fact) = store.fact(id)?
            && (q.include_deprecated || !fact.is_deprecated())
            && !fact.is_erased()
            && fact.passes(q.author.as_deref(), q.min_consensus)
        {
            hits.push(SearchHit { fact, score });
        }
    }
    Ok(hits)
}

/// What embedding a fact means: its content, then its tags.
pub fn embedding_text(content: &str, tags: &[String]) -> String {
    if tags.is_empty() {
        content.to_owned()
    } else {
        format!("{content} ({})", tags.join(", "))
    }
}

/// The vectors of `facts`, in one embedder call.
pub fn embed_facts(
    embedder: &dyn Embedder,
    facts: &[&crate::memory::fact::Fact],
) -> Result<Vec<(u64, Vec<f32>)>> {
    let texts: Vec<String> = facts
        .iter()
        .map(|f| embedding_text(&f.content, &f.tags))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&refs)?;
    if vectors.len() != facts.len() || vectors.iter().any(|v| v.len() != embedder.dimension()) {
        return Err(Error::backend(format!(
            "the embedder {} returned {} vectors for {} texts, or of the wrong dimension",
            embedder.model_id(),
            vectors.len(),
            facts.len()
        )));
    }
    Ok(facts.iter().map(|f| f.id).zip(vectors).collect())
}

/// The error for a semantic or hybrid search with no embedding model: the request asks for what
/// this memory cannot do, so it is refused as invalid input (a 400 over REST, not a server
/// error), with how to get a model.
pub fn no_model(mode: SearchMode) -> Error {
    Error::new(
        crate::error::ErrorKind::InvalidInput,
        format!(
            "{} search needs an embedding model and none is installed; install one with \
             `cortex models install` (see `cortex models install --help`), or search with \
             mode keyword",
            mode.as_str()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_timestamps_become_ordered_micros() {
        let a = micros("2026-01-02T03:04:05.000006Z").unwrap();
        let b = micros("2026-01-02T03:04:05.000007Z").unwrap();
        assert_eq!(b - a, 1);
        assert!(micros("0001-01-01T00:00:00.000000Z").unwrap() < a);
        assert_eq!(micros("nope"), None);
    }
}
