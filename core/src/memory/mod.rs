//! The agent memory: facts, votes and reputations on top of the [`Ledger`].
//!
//! Every mutation is one ledger append whose entries describe it (`fact.store`, `fact.vote`,
//! `fact.deprecate`; see [`fact`]) and whose transaction also writes the derived state
//! ([`FactChange`]s) computed from what the transaction reads: a vote on a missing fact, a bad
//! fact in a batch or a lost race writes nothing, neither ledger rows nor memory rows. Reads go
//! to the [`FactStore`](store::FactStore) directly. The consensus rules are in [`consensus`],
//! the ranking in [`bm25`], the in-process search index in [`search_index`].

pub mod audit;
pub mod bm25;
pub mod commitment;
pub mod consensus;
pub mod fact;
mod group;
pub mod replay;
pub mod search_index;
pub mod store;
pub mod vectors;

use crate::embed::Embedder;
use crate::error::{Error, ErrorKind, Result};
use crate::ledger::entry::{Entry, NewEntry, now_timestamp};
use crate::ledger::{AppendOutcome, Ledger};
use crate::memory::consensus::{AgentReputation, Vote};
use crate::memory::fact::{
    ACTION_DEPRECATE, ACTION_ERASE, ACTION_STORE, ACTION_VOTE, Author, DeprecateDetail,
    EraseDetail, Fact, MAX_LIMIT, MAX_TOP_K, NewFact, VoteDetail, check_agent, normalize_reason,
    parse_timestamp,
};
use crate::memory::search_index::SearchIndex;
use crate::memory::store::DynStore;
use crate::memory::store::{FactChange, FactRecall, FactSearch, FactTx, SearchHit};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Search results asked for when a query does not say.
pub const DEFAULT_TOP_K: usize = 10;
/// Facts recalled when a request does not say (as in the seed).
pub const DEFAULT_RECALL_LIMIT: usize = 20;

/// Checks a recall or history limit (1 to [`MAX_LIMIT`]).
pub fn check_limit(limit: usize) -> Result<()> {
    check_range("limit", limit, MAX_LIMIT)
}

/// How a search ranks facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// BM25 over the facts' words ([`bm25`]): facts sharing a word with the query.
    Keyword,
    /// Cosine similarity of the facts' embeddings to the query's ([`crate::embed`]): facts
    /// close in meaning, sharing words or not.
    Semantic,
    /// Both rankings fused by reciprocal rank ([`vectors::reciprocal_rank_fusion`]).
    Hybrid,
}

impl SearchMode {
    /// The mode's name, as in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Keyword => "keyword",
            SearchMode::Semantic => "semantic",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for SearchMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "keyword" => Ok(SearchMode::Keyword),
            "semantic" => Ok(SearchMode::Semantic),
            "hybrid" => Ok(SearchMode::Hybrid),
            other => Err(Error::invalid(format!(
                "search mode {other:?} is not one of keyword, semantic, hybrid"
            ))),
        }
    }
}

/// A ranked search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// What to look for: words (keyword mode) or a question or statement (semantic, hybrid).
    pub query: String,
    /// How to rank: keyword, semantic or hybrid; default hybrid when an embedding model is
    /// installed, keyword otherwise.
    #[serde(default)]
    pub mode: Option<SearchMode>,
    /// Only this project's facts.
    #[serde(default)]
    pub project: Option<String>,
    /// Only facts valid at this time (RFC 3339 or a date); default now.
    #[serde(default)]
    pub as_of: Option<String>,
    /// At most this many results (1 to 1000; default 10).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Include deprecated facts.
    #[serde(default)]
    pub include_deprecated: bool,
    /// Only facts stored by this agent.
    #[serde(default)]
    pub author: Option<String>,
    /// Only facts whose consensus is at least this (in `-1..=1`).
    #[serde(default)]
    pub min_consensus: Option<f64>,
}

/// Checks a consensus filter: finite and in `-1..=1`.
fn check_min_consensus(m: Option<f64>) -> Result<Option<f64>> {
    match m {
        Some(m) if !(m.is_finite() && (-1.0..=1.0).contains(&m)) => Err(Error::invalid(format!(
            "min_consensus {m} is outside -1..=1"
        ))),
        m => Ok(m),
    }
}

/// Checks an author filter: a blank one means none.
fn check_author_filter(a: Option<&String>) -> Result<Option<String>> {
    match a.map(|a| a.trim()) {
        None | Some("") => Ok(None),
        Some(a) => {
            check_agent(a)?;
            Ok(Some(a.to_owned()))
        }
    }
}

/// Which of a project's facts to recall.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecallQuery {
    /// The project.
    pub project: String,
    /// At most this many (1 to 100,000; default 20).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only facts stored by this agent.
    #[serde(default)]
    pub author: Option<String>,
    /// Only facts whose consensus is at least this (in `-1..=1`).
    #[serde(default)]
    pub min_consensus: Option<f64>,
}

impl RecallQuery {
    /// A project's current facts, 20 at most.
    pub fn new(project: impl Into<String>) -> Self {
        RecallQuery {
            project: project.into(),
            ..Default::default()
        }
    }

    /// Validates and resolves into what a store runs (valid now).
    pub fn resolve(&self) -> Result<FactRecall> {
        let limit = self.limit.unwrap_or(DEFAULT_RECALL_LIMIT);
        check_limit(limit)?;
        Ok(FactRecall {
            project: self.project.clone(),
            as_of: now_timestamp(),
            limit,
            author: check_author_filter(self.author.as_ref())?,
            min_consensus: check_min_consensus(self.min_consensus)?,
        })
    }
}

impl SearchQuery {
    /// A query over every project, valid now, top 10.
    pub fn new(query: impl Into<String>) -> Self {
        SearchQuery {
            query: query.into(),
            ..Default::default()
        }
    }

    /// Validates the query and resolves its defaults (`as_of` now, `top_k` 10, a blank project
    /// means all) into what a store runs. Errors name the bad field.
    pub fn resolve(&self) -> Result<FactSearch> {
        let terms = crate::memory::bm25::query_terms(&self.query);
        if terms.is_empty() {
            return Err(Error::invalid(format!(
                "query {:?} has no words to search for",
                self.query
            )));
        }
        let top_k = self.top_k.unwrap_or(DEFAULT_TOP_K);
        check_range("top_k", top_k, MAX_TOP_K)?;
        let as_of = match &self.as_of {
            Some(t) => parse_timestamp("as_of", t)?,
            None => now_timestamp(),
        };
        let project = match &self.project {
            Some(p) if p.trim().is_empty() => None,
            p => p.clone(),
        };
        Ok(FactSearch {
            terms,
            project,
            as_of,
            top_k,
            include_deprecated: self.include_deprecated,
            author: check_author_filter(self.author.as_ref())?,
            min_consensus: check_min_consensus(self.min_consensus)?,
        })
    }
}

/// What storing facts did.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The facts as stored, in input order (ids are consecutive ledger indices).
    pub facts: Vec<Fact>,
    /// The ledger append.
    pub append: AppendOutcome,
}

/// What a vote did.
#[derive(Debug, Clone)]
pub struct Voted {
    /// The vote as stored, with its weight and judgment.
    pub vote: Vote,
    /// The fact's consensus after the vote.
    pub consensus: f64,
    /// The voter's reputation record after the vote.
    pub agent: AgentReputation,
    /// The voter's earlier vote on this fact, which this one replaced.
    pub replaced: Option<Vote>,
    /// The ledger append.
    pub append: AppendOutcome,
}

/// What a deprecation did.
#[derive(Debug, Clone)]
pub struct Deprecated {
    /// The fact, now deprecated.
    pub fact: Fact,
    /// The ledger append.
    pub append: AppendOutcome,
}

/// What forgetting a fact did.
#[derive(Debug, Clone)]
pub struct Forgotten {
    /// The fact, now erased (content, tags and source empty).
    pub fact: Fact,
    /// The ledger append of its `fact.erase` entry.
    pub append: AppendOutcome,
}

/// A fact with its current votes and its ledger entries in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactHistory {
    /// The fact as it is now.
    pub fact: Fact,
    /// Its current votes, one per agent.
    pub votes: Vec<Vote>,
    /// Its `fact.store` entry, then every `fact.vote`, `fact.deprecate` and `fact.erase` entry,
    /// by index.
    pub entries: Vec<Entry>,
}

/// The agent memory over one ledger.
#[derive(Clone)]
pub struct AgentMemory {
    store: DynStore,
    ledger: Arc<Ledger>,
    index: Option<Arc<SearchIndex>>,
    author: Author,
    group: Option<Arc<group::StoreGroups>>,
}

/// A store checked and sealed, waiting for its transaction.
#[derive(Clone)]
pub(crate) struct PreparedStore {
    entries: Vec<NewEntry>,
    sealed: Vec<(fact::SealedStoreDetail, commitment::FactOpening, String)>,
}

impl std::fmt::Debug for AgentMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentMemory")
            .field("ledger", &self.ledger)
            .field("search_index", &self.index.is_some())
            .finish()
    }
}

/// Where and when a memory append lands, as seen inside its transaction.
#[derive(Debug, Clone, Copy)]
pub struct AppendContext<'a> {
    /// Index of the first entry of the batch (entry `i` gets `first_index + i`).
    pub first_index: u64,
    /// The batch's canonical timestamp.
    pub timestamp: &'a str,
}

/// What a memory mutation runs inside its append transaction: reads the memory's state and
/// returns the changes to write with the entries.
pub type ApplyFn<'f> =
    dyn FnMut(&mut dyn FactTx, &AppendContext<'_>) -> Result<Vec<FactChange>> + 'f;

/// What [`AgentMemory::append_about`] runs in its transaction: the changes derived from the
/// fact as the transaction reads it.
type AboutFn<'f> =
    dyn FnMut(&mut dyn FactTx, Fact, &AppendContext<'_>) -> Result<Vec<FactChange>> + 'f;

fn no_fact(id: u64) -> Error {
    Error::not_found(format!("no fact with id {id}"))
}

fn erased(f: &Fact) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "fact {} was erased at {}",
            f.id,
            f.erased_at.as_deref().unwrap_or("?")
        ),
    )
}

/// A fact that can still be erased: not erased already.
fn not_erased(f: &Fact) -> Result<()> {
    if f.is_erased() {
        return Err(erased(f));
    }
    Ok(())
}

/// A fact that votes and deprecations may still change: not erased, not deprecated.
fn changeable(f: &Fact) -> Result<()> {
    not_erased(f)?;
    if f.is_deprecated() {
        return Err(deprecated(f));
    }
    Ok(())
}

fn deprecated(f: &Fact) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "fact {} was deprecated at {}",
            f.id,
            f.deprecated_at.as_deref().unwrap_or("?")
        ),
    )
}

fn check_range(what: &str, v: usize, max: usize) -> Result<()> {
    if v == 0 || v > max {
        return Err(Error::invalid(format!("{what} {v} is outside 1..={max}")));
    }
    Ok(())
}

impl AgentMemory {
    /// The memory in `store`, over a ledger opened on it with `options` and no signer (for
    /// reads, and for writes whose appends make no checkpoint).
    pub fn open(store: DynStore, options: crate::ledger::LedgerOptions) -> Result<Self> {
        let ledger = Ledger::open(store.clone(), options)?;
        Self::new(store, Arc::new(ledger))
    }

    /// The memory kept in `store` beside `ledger`, which must be the ledger opened on that same
    /// store (a [`ErrorKind::Config`] error otherwise: the memory's rows and the ledger's
    /// entries are written in one transaction of one store).
    pub fn new(store: DynStore, ledger: Arc<Ledger>) -> Result<Self> {
        let same = std::ptr::addr_eq(Arc::as_ptr(&store), Arc::as_ptr(ledger.store()));
        if !same {
            return Err(Error::config(
                "the agent memory and its ledger must use the same store",
            ));
        }
        Ok(AgentMemory {
            store,
            ledger,
            index: None,
            author: Author::new(None, "library"),
            group: None,
        })
    }

    /// The same memory (same store, ledger and search index), writing as `author`: every entry
    /// this handle appends records it. A server makes one per client or request; the handle is
    /// cheap (shared pointers).
    pub fn as_author(&self, author: Author) -> Result<Self> {
        author.check()?;
        Ok(AgentMemory {
            author,
            ..self.clone()
        })
    }

    /// Who this handle writes as (surface `library` unless [`AgentMemory::as_author`] said).
    pub fn author(&self) -> &Author {
        &self.author
    }

    /// Answers searches from an in-memory index kept in step with the ledger
    /// ([`SearchIndex`]): same results as the store's search, far faster for common words.
    /// For long-running processes; call [`AgentMemory::warm_up`] at startup, off the request
    /// path. Until the first build is done, searches go to the store.
    pub fn with_search_index(mut self) -> Self {
        if self.index.is_none() {
            self.index = Some(Arc::new(SearchIndex::new()));
        }
        self
    }

    /// Builds (or brings up to date) the search index, if enabled.
    pub fn warm_up(&self) -> Result<()> {
        match &self.index {
            Some(ix) => ix.catch_up(&**self.store()),
            None => Ok(()),
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The store (ledger and memory).
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// Appends `entries` and, in the same transaction, the memory changes `apply` derives from
    /// what it reads inside that transaction, once the entries' indices and timestamp are fixed.
    /// If `apply` fails, or the store refuses a change, nothing is written. The primitive under
    /// every mutation above; it checks no memory rule itself, so the changes must be the ones
    /// the entries describe (the conformance suite uses it to test the store's own refusals).
    pub fn append_with(
        &self,
        entries: &[NewEntry],
        apply: &mut ApplyFn<'_>,
    ) -> Result<AppendOutcome> {
        let store = &self.store;
        self.ledger.append_via(entries, &mut |build| {
            store.append_facts(&mut |tx| {
                let batch = build(tx)?;
                let changes = apply(
                    tx,
                    &AppendContext {
                        first_index: batch.first_index,
                        timestamp: &batch.timestamp,
                    },
                )?;
                Ok((batch, changes))
            })
        })
    }

    /// Stores one fact. Its id is the index of its `fact.store` entry.
    pub fn store_fact(&self, fact: &NewFact) -> Result<Stored> {
        self.store_facts(std::slice::from_ref(fact))
    }

    /// Stores facts in one transaction: all or none. Errors name the batch item. Each fact's
    /// content, tags and source enter the ledger as a salted commitment
    /// ([`commitment`]); the opening is stored beside the entry. With
    /// [`AgentMemory::with_group_commit`], concurrent calls share one transaction (each still
    /// all or none, and acknowledged only once committed).
    pub fn store_facts(&self, facts: &[NewFact]) -> Result<Stored> {
        let prepared = self.prepare_store(facts)?;
        match &self.group {
            Some(g) => g.submit(prepared),
            None => self
                .commit_stores(vec![prepared])?
                .pop()
                .ok_or_else(|| Error::backend("a store committed nothing")),
        }
    }

    /// Checks and seals `facts` as this handle's author: everything a store does before its
    /// transaction, so a bad fact is refused before it can share a commit with others.
    fn prepare_store(&self, facts: &[NewFact]) -> Result<PreparedStore> {
        if facts.is_empty() {
            return Err(Error::invalid("nothing to store: the batch is empty"));
        }
        let now = now_timestamp();
        let hasher = self.ledger.hasher();
        let mut sealed = Vec::with_capacity(facts.len());
        let mut entries = Vec::with_capacity(facts.len());
        for (i, f) in facts.iter().enumerate() {
            // The limits are the plain form's: a fact must fit in one entry, as it did when
            // its content was in the ledger (so any fact can be exported whole).
            let d = f
                .to_detail(&now)
                .and_then(|d| {
                    NewEntry::new(f.project.clone(), ACTION_STORE, d.to_json()).validate()?;
                    Ok(d)
                })
                .map_err(|e| {
                    if facts.len() > 1 {
                        e.with_context("batch item", i)
                    } else {
                        e
                    }
                })?;
            // The fact id is only known inside the transaction; the opening gets it there.
            let (opening, c) = commitment::seal(hasher, 0, d.content())?;
            let detail = d.seal(c, self.author.clone());
            entries.push(NewEntry::new(
                f.project.clone(),
                ACTION_STORE,
                detail.to_json(),
            ));
            sealed.push((detail, opening, f.project.clone()));
        }
        Ok(PreparedStore { entries, sealed })
    }

    /// Commits prepared stores in one transaction; each gets its own facts and its own slice
    /// of the append.
    fn commit_stores(&self, groups: Vec<PreparedStore>) -> Result<Vec<Stored>> {
        let entries: Vec<NewEntry> = groups.iter().flat_map(|g| g.entries.clone()).collect();
        let mut stored = Vec::new();
        let append = self.append_with(&entries, &mut |_, ctx| {
            let mut changes = Vec::with_capacity(2 * entries.len());
            stored.clear();
            let mut id = ctx.first_index;
            for g in &groups {
                for (d, o, project) in &g.sealed {
                    let fact = d
                        .clone()
                        .into_fact(id, project, ctx.timestamp, o.fields.clone());
                    stored.push(fact.clone());
                    changes.push(FactChange::Insert(fact));
                    changes.push(FactChange::PutOpening(commitment::FactOpening {
                        fact_id: id,
                        ..o.clone()
                    }));
                    id += 1;
                }
            }
            Ok(changes)
        })?;
        // The new facts' vectors, in batches, before any store call returns. They are a derived
        // index: the facts are committed whatever happens here, so a failure is not the
        // store's; the search index embeds whatever has no vector when it next catches up
        // (and reports a failing model then).
        if let Some(embedder) = self.embedder() {
            let refs: Vec<&Fact> = stored.iter().collect();
            for batch in refs.chunks(256) {
                if let Ok(made) = search_index::embed_facts(&**embedder, batch) {
                    let _ = self.store.put_vectors(embedder.model_id(), &made);
                }
            }
        }
        let mut facts = stored.into_iter();
        let mut first = append.first_index;
        Ok(groups
            .iter()
            .map(|g| {
                let n = g.sealed.len();
                let out = Stored {
                    facts: facts.by_ref().take(n).collect(),
                    append: AppendOutcome {
                        first_index: first,
                        count: n as u64,
                        ..append.clone()
                    },
                };
                first += n as u64;
                out
            })
            .collect())
    }

    /// Concurrent [`AgentMemory::store_facts`] calls on this memory (and on every handle made
    /// from it with [`AgentMemory::as_author`]) share durable commits: a committer thread takes
    /// every store queued during the previous commit and writes them in one transaction. For
    /// servers with many concurrent writers; each call still returns only once its facts are
    /// committed, and a bad fact fails only its own call.
    pub fn with_group_commit(mut self) -> Self {
        self.group = Some(Arc::new(group::StoreGroups::new(AgentMemory {
            group: None,
            ..self.clone()
        })));
        self
    }

    /// Appends one entry about fact `fact_id` (in the fact's project; facts never move) and the
    /// changes `apply` derives, inside the transaction, from the fact as it reads it there. The
    /// fact must pass `check` both before the write lock (so a refusal costs no lock) and inside
    /// it (so a racing writer cannot slip past): the shape vote, deprecate and forget share.
    fn append_about(
        &self,
        fact_id: u64,
        check: fn(&Fact) -> Result<()>,
        action: &str,
        detail: String,
        apply: &mut AboutFn<'_>,
    ) -> Result<AppendOutcome> {
        let fact = self.fact(fact_id)?;
        check(&fact)?;
        let entry = NewEntry::new(fact.project, action, detail);
        self.append_with(&[entry], &mut |tx, ctx| {
            let fact = tx.fact(fact_id)?.ok_or_else(|| no_fact(fact_id))?;
            check(&fact)?;
            apply(tx, fact, ctx)
        })
    }

    /// Records `agent`'s vote (+1 or -1) on a fact, replacing its earlier vote on that fact,
    /// and updates the fact's consensus and the agent's reputation ([`crate::memory::consensus`]).
    /// The entry records this memory's [`Author`] (who wrote it, which may differ from the
    /// voting agent's name). A missing fact is [`ErrorKind::NotFound`], a deprecated or erased
    /// one [`ErrorKind::Conflict`]; either way nothing is written.
    pub fn vote(&self, fact_id: u64, agent: &str, vote: i8, reason: Option<&str>) -> Result<Voted> {
        check_agent(agent)?;
        if vote != 1 && vote != -1 {
            return Err(Error::invalid(format!("vote must be +1 or -1, not {vote}")));
        }
        let reason = normalize_reason(reason)?;
        let detail = VoteDetail {
            fact_id,
            agent: agent.to_owned(),
            vote,
            reason: reason.clone(),
            author: Some(self.author.clone()),
        };
        let mut effect = None;
        let append = self.append_about(
            fact_id,
            changeable,
            ACTION_VOTE,
            detail.to_json(),
            &mut |tx, _, ctx| {
                let current = tx.votes(fact_id)?;
                let record = tx.agent_reputation(agent)?;
                let e = crate::memory::consensus::cast(
                    &current,
                    record,
                    Vote {
                        fact_id,
                        agent: agent.to_owned(),
                        vote,
                        reason: reason.clone(),
                        weight: 0.0,
                        agreed: None,
                        entry_index: ctx.first_index,
                        voted_at: ctx.timestamp.to_owned(),
                    },
                );
                let changes = vec![
                    FactChange::PutVote(e.vote.clone()),
                    FactChange::SetConsensus {
                        fact_id,
                        consensus: e.consensus,
                    },
                    FactChange::PutAgent(e.agent.clone()),
                ];
                effect = Some(e);
                Ok(changes)
            },
        )?;
        let e = effect.ok_or_else(|| Error::backend("the store did not run the vote"))?;
        Ok(Voted {
            vote: e.vote,
            consensus: e.consensus,
            agent: e.agent,
            replaced: e.replaced,
            append,
        })
    }

    /// Deprecates a fact: it stays in the history but leaves recall and (by default) search.
    /// A missing fact is [`ErrorKind::NotFound`]; an already deprecated or erased one
    /// [`ErrorKind::Conflict`].
    pub fn deprecate(&self, fact_id: u64, reason: Option<&str>) -> Result<Deprecated> {
        let reason = normalize_reason(reason)?;
        let detail = DeprecateDetail {
            fact_id,
            reason: reason.clone(),
            author: Some(self.author.clone()),
        };
        let mut after = None;
        let append = self.append_about(
            fact_id,
            changeable,
            ACTION_DEPRECATE,
            detail.to_json(),
            &mut |_, mut fact, ctx| {
                fact.deprecated_at = Some(ctx.timestamp.to_owned());
                fact.deprecation_reason = reason.clone();
                after = Some(fact);
                Ok(vec![FactChange::Deprecate {
                    fact_id,
                    at: ctx.timestamp.to_owned(),
                    reason: reason.clone(),
                    entry_index: ctx.first_index,
                }])
            },
        )?;
        let fact = after.ok_or_else(|| Error::backend("the store did not run the deprecation"))?;
        Ok(Deprecated { fact, append })
    }

    /// Forgets a fact (the right to be forgotten): deletes its content, tags, source and salt
    /// and appends a `fact.erase` entry naming it and `reason`. The `fact.store` entry keeps
    /// only its commitment, so every proof and checkpoint stays valid, and `verify` reports the
    /// fact as erased. Search, recall and history never show the content again. A missing fact
    /// is [`ErrorKind::NotFound`]; an erased one, or one stored before erasure existed (its
    /// content is in its own entry, which cannot change), [`ErrorKind::Conflict`].
    pub fn forget(&self, fact_id: u64, reason: &str) -> Result<Forgotten> {
        let reason = normalize_reason(Some(reason))?
            .ok_or_else(|| Error::invalid("a reason is required to forget a fact"))?;
        not_erased(&self.fact(fact_id)?)?;
        let stored = self.ledger.entry(fact_id)?.entry;
        if let fact::StoreRecord::Plain(_) = fact::StoreRecord::parse(&stored.detail)? {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "fact {fact_id} was stored before erasure existed: its content is in ledger \
                     entry {fact_id} itself, which cannot change without breaking every proof \
                     after it; it can only be deprecated"
                ),
            ));
        }
        let detail = EraseDetail {
            fact_id,
            reason,
            author: self.author.clone(),
        };
        let mut after = None;
        let append = self.append_about(
            fact_id,
            not_erased,
            ACTION_ERASE,
            detail.to_json(),
            &mut |_, mut fact, ctx| {
                fact.content.clear();
                fact.tags.clear();
                fact.source = None;
                fact.erased_at = Some(ctx.timestamp.to_owned());
                after = Some(fact);
                Ok(vec![FactChange::Erase {
                    fact_id,
                    at: ctx.timestamp.to_owned(),
                    entry_index: ctx.first_index,
                }])
            },
        )?;
        let fact = after.ok_or_else(|| Error::backend("the store did not run the erasure"))?;
        Ok(Forgotten { fact, append })
    }

    /// Ranked search, valid at `as_of` (default now), not deprecated unless asked, best first:
    /// keyword ([`crate::memory::bm25`]: facts containing any query word), semantic (closest
    /// embeddings) or hybrid (both, fused), as [`SearchQuery::mode`] says ([`AgentMemory::mode`]
    /// when it does not).
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        let q = query.resolve()?;
        let mode = query.mode.unwrap_or(self.mode());
        match (mode, &self.index) {
            (SearchMode::Keyword, Some(ix)) => {
                if let Some(hits) = ix.search(&**self.store(), &q)? {
                    return Ok(hits);
                }
                self.store().search_facts(&q)
            }
            (SearchMode::Keyword, None) => self.store().search_facts(&q),
            (_, Some(ix)) if ix.embedder().is_some() => {
                ix.search_mode(&**self.store(), &q, &query.query, mode)
            }
            (_, _) => Err(search_index::no_model(mode)),
        }
    }

    /// The search mode used when a query names none: hybrid with an embedder, else keyword.
    pub fn mode(&self) -> SearchMode {
        match &self.index {
            Some(ix) if ix.embedder().is_some() => SearchMode::Hybrid,
            _ => SearchMode::Keyword,
        }
    }

    /// Turns on semantic and hybrid search with `embedder`: an in-memory index
    /// ([`SearchIndex::with_embedder`], replacing any keyword-only one) holds every fact's
    /// vector, and facts stored through this memory get theirs before the store returns.
    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.index = Some(Arc::new(SearchIndex::with_embedder(embedder)));
        self
    }

    /// The embedder, if semantic search is on.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.index.as_ref().and_then(|ix| ix.embedder())
    }

    /// Embeds every fact that is not erased and has no vector of the embedder's model, in
    /// batches, calling `progress(done, total)` after each; returns how many were embedded.
    /// `cortex memory rebuild` runs it after replacing the memory.
    pub fn embed_missing(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<u64> {
        let Some(embedder) = self.embedder() else {
            return Ok(0);
        };
        let model = embedder.model_id().to_owned();
        let mut ids = Vec::new();
        self.store.scan_memory(&mut |row| {
            if let store::MemoryRow::Fact(f) = row
                && !f.is_erased()
            {
                ids.push(f.id);
            }
            Ok(())
        })?;
        let mut missing = Vec::new();
        for chunk in ids.chunks(4096) {
            let have: std::collections::HashSet<u64> = self
                .store
                .vectors(&model, chunk)?
                .into_iter()
                .map(|v| v.0)
                .collect();
            missing.extend(chunk.iter().filter(|id| !have.contains(id)));
        }
        let total = missing.len() as u64;
        let mut done = 0u64;
        for chunk in missing.chunks(64) {
            let facts = self.store.facts_by_id(chunk)?;
            let refs: Vec<&Fact> = facts.iter().filter(|f| !f.is_erased()).collect();
            let made = search_index::embed_facts(&**embedder, &refs)?;
            self.store.put_vectors(&model, &made)?;
            done += chunk.len() as u64;
            progress(done, total);
        }
        Ok(total)
    }

    /// A project's current facts (not deprecated, not erased, valid now, passing the query's
    /// author and consensus filters), by consensus then recency.
    pub fn recall(&self, q: &RecallQuery) -> Result<Vec<Fact>> {
        self.store().recall(&q.resolve()?)
    }

    /// A project's facts, deprecated ones included, newest first.
    pub fn project_history(&self, project: &str, limit: usize) -> Result<Vec<Fact>> {
        check_limit(limit)?;
        self.store().project_facts(project, limit)
    }

    /// How many facts each project holds, deprecated and erased ones included, by project
    /// name ([`store::FactStore::project_sizes`]).
    pub fn project_sizes(&self) -> Result<Vec<store::ProjectSize>> {
        self.store().project_sizes()
    }

    /// One fact ([`ErrorKind::NotFound`] if there is none).
    pub fn fact(&self, id: u64) -> Result<Fact> {
        self.store().fact(id)?.ok_or_else(|| no_fact(id))
    }

    /// A fact, its current votes and its ledger entries in order.
    pub fn fact_history(&self, id: u64) -> Result<FactHistory> {
        let fact = self.fact(id)?;
        Ok(FactHistory {
            votes: self.store().votes(id)?,
            entries: self.store().fact_history(id)?,
            fact,
        })
    }

    /// A fact's current votes, in agent-name order.
    pub fn votes(&self, fact_id: u64) -> Result<Vec<Vote>> {
        self.store().votes(fact_id)
    }

    /// An agent's reputation (the default record if it never voted).
    pub fn agent(&self, agent: &str) -> Result<AgentReputation> {
        check_agent(agent)?;
        Ok(self
            .store()
            .agent_reputation(agent)?
            .unwrap_or_else(|| AgentReputation::new(agent)))
    }

    /// Verifies the ledger and this memory against it ([`audit::verify`]).
    pub fn verify(
        &self,
        options: &crate::ledger::verify::VerifyOptions,
    ) -> Result<crate::ledger::verify::VerifyReport> {
        let origin = self.ledger.origin().map(str::to_owned);
        audit::verify(
            &*self.store,
            self.ledger.hasher(),
            origin.as_deref(),
            options,
        )
    }

    /// The memory version (see [`store::FactStore::memory_version`]).
    pub fn version(&self) -> Result<u64> {
        self.store().memory_version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::in_memory::InMemoryStore;
    use crate::ledger::LedgerOptions;

    fn memory() -> AgentMemory {
        let store: DynStore = Arc::new(InMemoryStore::new());
        let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
        AgentMemory::new(store, Arc::new(ledger)).unwrap()
    }

    #[test]
    fn fact_ids_are_ledger_indices_and_details_rebuild_the_fact() {
        let m = memory();
        m.ledger()
            .append(&crate::testkit::sample_entries(3))
            .unwrap();
        let s = m
            .store_facts(&[NewFact::new("p", "alpha"), NewFact::new("q", "beta")])
            .unwrap();
        assert_eq!(s.facts.iter().map(|f| f.id).collect::<Vec<_>>(), [3, 4]);
        let e = m.ledger().entry(4).unwrap().entry;
        assert_eq!((e.action.as_str(), e.project.as_str()), ("fact.store", "q"));
        let d: fact::SealedStoreDetail = serde_json::from_str(&e.detail).unwrap();
        let o = m.store().opening(4).unwrap().unwrap();
        assert!(o.opens(m.ledger().hasher(), &d.commitment));
        assert!(
            !e.detail.contains("beta"),
            "the content is not in the ledger"
        );
        assert_eq!(
            d.into_fact(4, &e.project, &e.timestamp, o.fields),
            m.fact(4).unwrap()
        );
    }

    #[test]
    fn the_memory_and_its_ledger_share_one_store() {
        let store: DynStore = Arc::new(InMemoryStore::new());
        let other: DynStore = Arc::new(InMemoryStore::new());
        let ledger = Arc::new(Ledger::open(other, LedgerOptions::default()).unwrap());
        let e = AgentMemory::new(store, ledger).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("same store"), "{e}");
    }

    #[test]
    fn refused_operations_write_nothing() {
        let m = memory();
        m.store_fact(&NewFact::new("p", "alpha")).unwrap();
        let v = m.version().unwrap();
        let size = m.ledger().head().unwrap().size;
        assert_eq!(
            m.vote(9, "a", 1, None).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            m.vote(0, "a", 2, None).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            m.deprecate(9, None).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        m.deprecate(0, Some("wrong")).unwrap();
        assert_eq!(
            m.deprecate(0, None).unwrap_err().kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            m.vote(0, "a", 1, None).unwrap_err().kind(),
            ErrorKind::Conflict
        );
        assert_eq!(m.version().unwrap(), v + 1);
        assert_eq!(m.ledger().head().unwrap().size, size + 1);
    }
}
