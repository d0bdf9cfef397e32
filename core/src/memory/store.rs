//! The agent memory's storage trait: what a store must keep, beside the ledger, for
//! [`AgentMemory`](crate::memory::AgentMemory) to run on it.
//!
//! The memory is a view of the ledger: every memory change is a ledger entry, and the state it
//! derives (facts, votes, reputations, the search index, the memory version) is written in the
//! *same* transaction as that entry. That is the one thing [`FactStore::append_facts`] adds to
//! [`LedgerStore::append`]: the ledger's batch is
//! built by the ledger (which never looks at facts), the memory's changes by the agent memory
//! (which never computes a hash), and the store commits both at once or neither.

use crate::error::Result;
use crate::ledger::entry::Entry;
use crate::ledger::store::{AppendBatch, Head, LedgerStore, LedgerTx};
use crate::memory::commitment::FactOpening;
use crate::memory::consensus::{AgentReputation, Vote};
use crate::memory::fact::Fact;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A store holding a ledger and the agent memory built on it: the sum of the two storage
/// traits, implemented automatically for any type that has both. The split is by concern:
/// [`LedgerStore`] is everything the ledger needs and all an audit-ledger-only backend
/// implements; [`FactStore`] is what the agent memory adds. The binary, the MCP tools and the
/// memory need `Store`; the ledger, verification and exports need only `LedgerStore`.
pub trait Store: LedgerStore + FactStore {}

impl<T: LedgerStore + FactStore + ?Sized> Store for T {}

/// A full store shared across threads. `Arc<dyn Store>` coerces to
/// [`DynLedgerStore`](crate::ledger::store::DynLedgerStore) where only the ledger is needed.
pub type DynStore = Arc<dyn Store>;

/// What a memory append sees inside its transaction: the ledger's view (head and tiles) and
/// the memory's current state, locked against other writers until the transaction ends.
pub trait FactTx: LedgerTx {
    /// Reads a fact within the transaction.
    fn fact(&mut self, id: u64) -> Result<Option<Fact>>;
    /// A fact's current votes within the transaction, in agent-name order.
    fn votes(&mut self, fact_id: u64) -> Result<Vec<Vote>>;
    /// An agent's reputation record within the transaction (`None` if it never voted).
    fn agent_reputation(&mut self, agent: &str) -> Result<Option<AgentReputation>>;
}

/// What [`FactStore::append_facts`]'s builder returns: the ledger's batch and, to write in the
/// same transaction, the memory changes derived inside it.
pub type FactBatch<'a> = (AppendBatch<'a>, Vec<FactChange>);

/// Where the agent memory keeps its facts, votes and reputations, beside a ledger.
pub trait FactStore: Send + Sync {
    /// Like [`LedgerStore::append`]: runs `build`
    /// inside one write transaction that excludes other writers and commits durably what it
    /// returns, the ledger batch *and* its memory changes (applied in order; a batch with any
    /// change increments the memory version). Nothing is written if `build` fails.
    fn append_facts<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn FactTx) -> Result<FactBatch<'a>>,
    ) -> Result<Head>;

    /// A fact by id.
    fn fact(&self, id: u64) -> Result<Option<Fact>>;
    /// The facts of `ids` (ascending) that exist, for the search index's catch-up, which needs
    /// the text of every sealed fact of a stretch of ledger. It may also return other facts
    /// whose ids lie between the first and the last of `ids` (a range read). The default reads
    /// them one by one; a store with a range scan does better.
    fn facts_by_id(&self, ids: &[u64]) -> Result<Vec<Fact>> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            out.extend(self.fact(id)?);
        }
        Ok(out)
    }
    /// The opening of a fact's commitment (content, tags, source and salt), stored beside its
    /// `fact.store` entry; `None` if the fact was erased, stored in the plain form, or never
    /// existed.
    fn opening(&self, fact_id: u64) -> Result<Option<FactOpening>>;
    /// A project's current facts: not deprecated, not erased, valid at `as_of` (canonical) and
    /// passing the query's author and consensus filters ([`Fact::passes`]), ordered by
    /// consensus descending then id descending (newest first), at most `limit`.
    fn recall(&self, query: &FactRecall) -> Result<Vec<Fact>>;
    /// A project's facts, deprecated and erased ones included, newest (largest id) first, at
    /// most `limit`.
    fn project_facts(&self, project: &str, limit: usize) -> Result<Vec<Fact>>;
    /// How many facts each project holds (every fact [`FactStore::project_facts`] would list:
    /// deprecated and erased ones included), one [`ProjectSize`] per project with a fact, in
    /// byte order of the project name. One counting read (an index scan where the store has a
    /// project index), for the dashboard's memory size.
    fn project_sizes(&self) -> Result<Vec<ProjectSize>>;
    /// Ranked full-text search, scored and ordered exactly as [`crate::memory::bm25`] defines,
    /// over facts that are not erased (an erased fact is out of the index) and pass the query's
    /// filters. The statistics (document count, average length, document frequencies) are
    /// those of the whole index, whatever the filters.
    fn search_facts(&self, query: &FactSearch) -> Result<Vec<SearchHit>>;
    /// A fact's current votes, in agent-name order.
    fn votes(&self, fact_id: u64) -> Result<Vec<Vote>>;
    /// An agent's reputation record (`None` if it never voted).
    fn agent_reputation(&self, agent: &str) -> Result<Option<AgentReputation>>;
    /// The ledger entries about a fact (its store, votes, deprecation), in index order.
    fn fact_history(&self, fact_id: u64) -> Result<Vec<Entry>>;
    /// The memory version: incremented by every append that changes the memory (one read of
    /// one row or key). A query cache that tags results with the version read *before* the
    /// query is exact, also across processes sharing the store.
    fn memory_version(&self) -> Result<u64>;

    /// Streams every stored memory row, as stored, for `verify` to compare with the replay of
    /// the ledger ([`crate::memory::replay`]), all read in one snapshot whose head comes first
    /// ([`MemoryRow::Head`]); then each kind in key order, kinds in any order. A row that
    /// cannot be decoded is reported as [`MemoryRow::Undecodable`], never an error.
    fn scan_memory(&self, visit: &mut dyn FnMut(MemoryRow) -> Result<()>) -> Result<()>;

    /// Replaces every memory table with `state` (facts, openings, votes, agents, fact events,
    /// the search index built from the facts) in one write transaction that excludes other
    /// writers and increments the memory version; fails with
    /// [`ErrorKind::Conflict`](crate::error::ErrorKind::Conflict), writing nothing, if the
    /// ledger's head size is no longer `ledger_size` (the state was replayed from a ledger that
    /// has grown since). `cortex memory rebuild`.
    fn replace_memory(&self, ledger_size: u64, state: &MemoryState) -> Result<()>;

    /// The vectors of `model` stored for those of `ids` that have one, in no particular order:
    /// a derived index for semantic search ([`crate::embed`]), never signed, never compared by
    /// `verify`.
    fn vectors(&self, model: &str, ids: &[u64]) -> Result<Vec<(u64, Vec<f32>)>>;

    /// Stores each fact's vector of `model`, replacing any vector it had (of any model). Facts
    /// that are absent or erased are skipped: an erased fact keeps nothing derived from its
    /// content. A store deletes a fact's vector when it applies its
    /// [`FactChange::Erase`], and [`FactStore::replace_memory`] keeps only the vectors of facts
    /// that are present and not erased.
    fn put_vectors(&self, model: &str, vectors: &[(u64, Vec<f32>)]) -> Result<()>;

    /// True if [`FactStore::scan_memory`] streams the search index's source text
    /// ([`MemoryRow::IndexText`]) for every indexed fact, so `verify` checks it; false for
    /// stores whose index is derived in memory at open.
    fn keeps_index_text(&self) -> bool {
        false
    }
}

/// One stored memory row, as [`FactStore::scan_memory`] streams it.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // most rows are facts; boxing would add an allocation each
pub enum MemoryRow {
    /// The ledger size (head) the rows are consistent with: the rows are read in one snapshot
    /// and this is the head of that snapshot. Streamed first.
    Head(u64),
    /// A row of the facts table.
    Fact(Fact),
    /// A stored opening.
    Opening(FactOpening),
    /// A vote.
    Vote(Vote),
    /// An agent's reputation record.
    Agent(AgentReputation),
    /// One (fact, ledger entry) pair of a fact's history.
    Event {
        /// The fact.
        fact_id: u64,
        /// The entry.
        entry_index: u64,
    },
    /// The text the store's search index holds for a fact (the source of its postings), for
    /// stores that keep one; it must be [`crate::memory::bm25::index_text`] of the fact's
    /// content, and no erased fact may have one.
    IndexText {
        /// The fact.
        fact_id: u64,
        /// The indexed text.
        text: String,
    },
    /// A row the store could not decode (a value of the wrong type or shape).
    Undecodable {
        /// The table.
        table: &'static str,
        /// The row's key, as text.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

/// The whole memory as the ledger defines it: what [`FactStore::replace_memory`] writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryState {
    /// Facts by id.
    pub facts: Vec<Fact>,
    /// Openings of the facts that have one, by fact id.
    pub openings: Vec<FactOpening>,
    /// Current votes by (fact, agent).
    pub votes: Vec<Vote>,
    /// Agent records by name.
    pub agents: Vec<AgentReputation>,
    /// (fact, entry) history pairs, in order.
    pub events: Vec<(u64, u64)>,
}

/// A change to the memory's state, derived by core inside an append transaction and written
/// by the store in that same transaction, together with the ledger rows.
///
/// A store applies the changes of a batch in order. Changes that concern a fact (`Insert`,
/// `PutVote`, `Deprecate`, `Erase`) also record their entry index in the fact's history. A
/// batch with any change increments the memory version.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // most changes are inserts; boxing would add an allocation
pub enum FactChange {
    /// A new fact; its id is the index of its `fact.store` entry. Index it for search with
    /// [`crate::memory::bm25::index_text`].
    Insert(Fact),
    /// Stores the opening of a new fact's commitment (follows its `Insert`).
    PutOpening(FactOpening),
    /// Adds, or replaces, `agent`'s vote on `fact_id` (recorded at `entry_index`).
    PutVote(Vote),
    /// Sets a fact's consensus score.
    SetConsensus {
        /// The fact.
        fact_id: u64,
        /// The new score.
        consensus: f64,
    },
    /// Adds or replaces an agent's reputation record.
    PutAgent(AgentReputation),
    /// Marks a fact deprecated.
    Deprecate {
        /// The fact.
        fact_id: u64,
        /// Timestamp of the `fact.deprecate` entry.
        at: String,
        /// Why.
        reason: Option<String>,
        /// Index of the `fact.deprecate` entry.
        entry_index: u64,
    },
    /// Erases a fact: deletes its opening, empties its content, tags and source, sets
    /// `erased_at`, and takes it out of the search index.
    Erase {
        /// The fact.
        fact_id: u64,
        /// Timestamp of the `fact.erase` entry.
        at: String,
        /// Index of the `fact.erase` entry.
        entry_index: u64,
    },
}

impl FactChange {
    /// The fact and ledger entry to add to that fact's history, if this change has one.
    pub fn history_event(&self) -> Option<(u64, u64)> {
        match self {
            FactChange::Insert(f) => Some((f.id, f.id)),
            FactChange::PutVote(v) => Some((v.fact_id, v.entry_index)),
            FactChange::Deprecate {
                fact_id,
                entry_index,
                ..
            }
            | FactChange::Erase {
                fact_id,
                entry_index,
                ..
            } => Some((*fact_id, *entry_index)),
            FactChange::SetConsensus { .. }
            | FactChange::PutAgent(_)
            | FactChange::PutOpening(_) => None,
        }
    }
}

/// A ranked full-text query as a store runs it: already tokenized and with every default
/// resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct FactSearch {
    /// Distinct query terms from [`crate::memory::bm25::query_terms`]; a fact matches if it contains
    /// any of them.
    pub terms: Vec<String>,
    /// Only facts of this project.
    pub project: Option<String>,
    /// Only facts valid at this canonical timestamp.
    pub as_of: String,
    /// At most this many results.
    pub top_k: usize,
    /// Include deprecated facts.
    pub include_deprecated: bool,
    /// Only facts stored by this agent.
    pub author: Option<String>,
    /// Only facts whose consensus is at least this.
    pub min_consensus: Option<f64>,
}

/// A recall as a store runs it, with every default resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct FactRecall {
    /// The project.
    pub project: String,
    /// Only facts valid at this canonical timestamp.
    pub as_of: String,
    /// At most this many facts.
    pub limit: usize,
    /// Only facts stored by this agent.
    pub author: Option<String>,
    /// Only facts whose consensus is at least this.
    pub min_consensus: Option<f64>,
}

/// How many facts one project holds, as [`FactStore::project_sizes`] counts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSize {
    /// The project.
    pub project: String,
    /// Its facts, deprecated and erased ones included.
    pub facts: u64,
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The fact.
    pub fact: Fact,
    /// BM25 score (higher is better), as defined in [`crate::memory::bm25`].
    pub score: f64,
}
