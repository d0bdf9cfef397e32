//! The memory conformance suite: what [`AgentMemory`] and the [`SearchIndex`](crate::memory::search_index::SearchIndex) rely on from a
//! [`Store`](crate::memory::store::Store) (a ledger store that also keeps the agent memory).
//!
//! This module holds [`memory_conformance`], which runs every check, and the helpers they share;
//! the checks are in `facts` (storing, recalling and searching facts), `writes` (votes,
//! history, refused and concurrent writes, the memory version, replay from the ledger) and
//! `erasure` (forgetting, authors and filters).

mod erasure;
mod facts;
mod semantic;
mod writes;

pub use erasure::{
    authors_are_recorded_and_filtered, authors_survive_reopening, forgetting_keeps_every_proof,
};
pub use facts::{facts_store_and_recall, search_index_matches_the_store, search_ranks_and_filters};
pub use semantic::semantic_search_keeps_vectors;
pub use writes::{
    concurrent_memory_writes_keep_one_chain, failed_memory_writes_write_nothing,
    history_lists_every_entry, memory_across_scan_chunks_replays_in_order,
    memory_replays_from_the_ledger, memory_version_counts_mutations, votes_weigh_by_reputation,
};

use crate::ledger::{Ledger, LedgerOptions};
use crate::memory::AgentMemory;
use crate::memory::fact::NewFact;
use crate::memory::store::DynStore;
use std::sync::Arc;

/// Runs every memory-engine check against fresh stores made by `make`.
pub fn memory_conformance(make: &dyn Fn() -> DynStore) {
    facts_store_and_recall(make());
    search_ranks_and_filters(make());
    votes_weigh_by_reputation(make());
    history_lists_every_entry(make());
    failed_memory_writes_write_nothing(make());
    memory_version_counts_mutations(make());
    memory_replays_from_the_ledger(make());
    memory_across_scan_chunks_replays_in_order(make());
    concurrent_memory_writes_keep_one_chain(make());
    search_index_matches_the_store(make());
    forgetting_keeps_every_proof(make());
    authors_are_recorded_and_filtered(make());
    authors_survive_reopening(make());
    semantic_search_keeps_vectors(make());
}

fn open_memory(store: &DynStore) -> AgentMemory {
    store.migrate().expect("migrate");
    let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    AgentMemory::new(store.clone(), Arc::new(ledger)).unwrap()
}

fn fact(project: &str, content: &str) -> NewFact {
    NewFact::new(project, content)
}
