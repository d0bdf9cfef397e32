//! Erasure and provenance: a forgotten fact's content is gone from every read while every
//! proof and checkpoint stays valid; every write records its author; search and recall filter
//! by author and by consensus.

use super::{fact, open_memory};
use crate::error::ErrorKind;
use crate::ledger::Ledger;
use crate::ledger::LedgerOptions;
use crate::ledger::merkle::{verify_consistency, verify_inclusion};
use crate::memory::fact::{Author, EraseDetail, NewFact, VoteDetail};
use crate::memory::store::DynStore;
use crate::memory::{AgentMemory, RecallQuery, SearchQuery};
use std::sync::Arc;

const SECRET: &str = "bob's home address is 12 Elm Street";

fn search(m: &AgentMemory, q: SearchQuery) -> Vec<u64> {
    m.search(&q).unwrap().iter().map(|h| h.fact.id).collect()
}

/// Forgetting a fact removes its content, tags, source and salt from the store and from every
/// read (fact, search through the store and through the in-memory index, recall, history,
/// project history), appends one `fact.erase` entry, and leaves every entry, root, inclusion
/// and consistency proof as it was; `verify` counts the fact as erased. Refusals write nothing.
pub fn forgetting_keeps_every_proof(store: DynStore) {
    let m = open_memory(&store);
    let indexed = m.clone().with_search_index();
    let mut secret = NewFact::new("people", SECRET);
    secret.tags = vec!["person:bob".into()];
    secret.source = Some("crm export".into());
    let s = m
        .store_facts(&[secret, fact("people", "bob likes elm trees")])
        .unwrap();
    let (id, other) = (s.facts[0].id, s.facts[1].id);
    m.vote(id, "carol", 1, None).unwrap();
    indexed.warm_up().unwrap();
    assert_eq!(search(&indexed, SearchQuery::new("elm")), [other, id]);
    let n1 = m.ledger().head().unwrap().size;
    let root1 = m.ledger().root_at(n1).unwrap();
    let leaf = m
        .ledger()
        .entry(id)
        .unwrap()
        .entry
        .as_ref()
        .leaf_hash(m.ledger().hasher(), &mut Vec::new());
    let proof1 = m.ledger().inclusion_proof(id, n1).unwrap();

    let f = m.forget(id, "erasure request #42").unwrap();
    assert!(f.fact.is_erased());
    assert_eq!(
        (
            f.fact.content.as_str(),
            f.fact.tags.len(),
            f.fact.source.as_deref()
        ),
        ("", 0, None)
    );
    assert_eq!(f.append.first_index, n1, "one fact.erase entry");
    let read = m.fact(id).unwrap();
    assert_eq!(read, f.fact, "the stored fact is the erased one");
    assert_eq!(store.opening(id).unwrap(), None, "content and salt deleted");
    assert!(store.opening(other).unwrap().is_some());
    let sizes = store.project_sizes().unwrap();
    assert_eq!(
        (sizes.len(), sizes[0].project.as_str(), sizes[0].facts),
        (1, "people", 2),
        "an erased fact still counts in its project's size"
    );
    for q in ["elm", "address", "street", "bob"] {
        let hits = search(&m, SearchQuery::new(q));
        assert!(!hits.contains(&id), "store search {q}: {hits:?}");
        let hits = search(&indexed, SearchQuery::new(q));
        assert!(!hits.contains(&id), "index search {q}: {hits:?}");
        let mut all = SearchQuery::new(q);
        all.include_deprecated = true;
        assert!(!search(&m, all).contains(&id));
    }
    assert_eq!(
        m.search(&SearchQuery::new("elm")).unwrap(),
        indexed.search(&SearchQuery::new("elm")).unwrap(),
        "the statistics no longer count the erased fact, in the store and the index alike"
    );
    let recalled = m.recall(&RecallQuery::new("people")).unwrap();
    assert_eq!(recalled.iter().map(|f| f.id).collect::<Vec<_>>(), [other]);
    let h = m.fact_history(id).unwrap();
    assert_eq!(h.fact.content, "");
    assert_eq!(
        h.entries.last().map(|e| (e.index, e.action.as_str())),
        Some((n1, "fact.erase"))
    );
    let d: EraseDetail = serde_json::from_str(&h.entries.last().unwrap().detail).unwrap();
    assert_eq!(d.fact_id, id);
    assert_eq!(d.reason, "erasure request #42");
    assert!(
        m.project_history("people", 10)
            .unwrap()
            .iter()
            .all(|f| !f.content.contains("Elm Street"))
    );
    let mut ledger_text = String::new();
    store
        .scan_entries(0..u64::MAX, &mut |r| {
            ledger_text.push_str(r.entry.detail);
            Ok(())
        })
        .unwrap();
    assert!(
        !ledger_text.contains("Elm Street"),
        "the ledger never held it"
    );
    assert!(!ledger_text.contains("crm export"));

    // Every proof still holds.
    let n2 = m.ledger().head().unwrap().size;
    assert_eq!(m.ledger().root_at(n1).unwrap(), root1);
    let hasher = m.ledger().hasher();
    let leaf_now = m
        .ledger()
        .entry(id)
        .unwrap()
        .entry
        .as_ref()
        .leaf_hash(hasher, &mut Vec::new());
    assert_eq!(leaf_now, leaf, "the fact.store entry is unchanged");
    verify_inclusion(hasher, id, n1, &leaf, &proof1, &root1).unwrap();
    let root2 = m.ledger().root_at(n2).unwrap();
    let proof2 = m.ledger().inclusion_proof(id, n2).unwrap();
    verify_inclusion(hasher, id, n2, &leaf, &proof2, &root2).unwrap();
    let c = m.ledger().consistency_proof(n1, n2).unwrap();
    verify_consistency(hasher, n1, n2, &root1, &root2, &c).unwrap();
    let report = m.verify(&Default::default()).unwrap();
    assert!(report.valid, "{:#?}", report.violations);
    assert_eq!(report.memory.unwrap().facts_erased, 1);

    // Refusals write nothing.
    let size = m.ledger().head().unwrap().size;
    let kind = |e: crate::error::Error| e.kind();
    assert_eq!(
        kind(m.forget(id, "again").unwrap_err()),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(m.vote(id, "a", 1, None).unwrap_err()),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(m.deprecate(id, None).unwrap_err()),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(m.forget(other, "  ").unwrap_err()),
        ErrorKind::InvalidInput
    );
    assert_eq!(kind(m.forget(9_999, "x").unwrap_err()), ErrorKind::NotFound);
    assert_eq!(m.ledger().head().unwrap().size, size);
}

/// Every memory entry records its author and surface; facts carry theirs; search and recall
/// keep only one author's facts, or facts with at least a given consensus, on the store and on
/// the in-memory index alike.
pub fn authors_are_recorded_and_filtered(store: DynStore) {
    let m = open_memory(&store);
    let as_ = |agent: &str, surface: &str| m.as_author(Author::new(Some(agent), surface)).unwrap();
    let (alice, bob) = (as_("alice", "cli"), as_("bob", "mcp-stdio"));
    let f1 = alice.store_fact(&fact("p", "rust is fast")).unwrap().facts[0].id;
    let f2 = bob.store_fact(&fact("p", "rust is slow")).unwrap().facts[0].id;
    let f3 = alice.store_fact(&fact("p", "rust is safe")).unwrap().facts[0].id;
    let read = m.fact(f1).unwrap();
    assert_eq!(
        (read.author.as_deref(), read.surface.as_deref()),
        (Some("alice"), Some("cli"))
    );
    assert_eq!(m.fact(f2).unwrap().author.as_deref(), Some("bob"));
    for (voter, v) in [("carol", -1), ("dave", -1)] {
        as_(voter, "mcp-http")
            .vote(f2, voter, v, Some("wrong"))
            .unwrap();
    }
    alice.vote(f1, "alice", 1, None).unwrap();
    let e = m.fact_history(f2).unwrap().entries;
    let d: VoteDetail = serde_json::from_str(&e[1].detail).unwrap();
    assert_eq!(d.author, Some(Author::new(Some("carol"), "mcp-http")));

    let indexed = m.clone().with_search_index();
    indexed.warm_up().unwrap();
    for mem in [&m, &indexed] {
        let by = |author: Option<&str>, min: Option<f64>| {
            let mut q = SearchQuery::new("rust");
            q.author = author.map(String::from);
            q.min_consensus = min;
            let mut ids = search(mem, q);
            ids.sort_unstable();
            ids
        };
        assert_eq!(by(None, None), [f1, f2, f3]);
        assert_eq!(by(Some("alice"), None), [f1, f3]);
        assert_eq!(by(Some("bob"), None), [f2]);
        assert_eq!(by(Some("nobody"), None), Vec::<u64>::new());
        assert_eq!(
            by(None, Some(0.0)),
            [f1, f3],
            "the voted-down fact is kept out"
        );
        assert_eq!(by(None, Some(0.1)), [f1]);
        assert_eq!(by(Some("bob"), Some(-0.1)), Vec::<u64>::new());
    }
    let recall = |author: Option<&str>, min: Option<f64>| {
        let q = RecallQuery {
            author: author.map(String::from),
            min_consensus: min,
            ..RecallQuery::new("p")
        };
        let mut ids: Vec<u64> = m.recall(&q).unwrap().iter().map(|f| f.id).collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(recall(Some("bob"), None), [f2]);
    assert_eq!(recall(None, Some(0.0)), [f1, f3]);
    assert_eq!(recall(Some("alice"), Some(0.1)), [f1]);

    let bad = |q: SearchQuery| m.search(&q).unwrap_err().kind();
    let mut q = SearchQuery::new("rust");
    q.min_consensus = Some(2.0);
    assert_eq!(bad(q), ErrorKind::InvalidInput);
    let mut q = SearchQuery::new("rust");
    q.min_consensus = Some(f64::NAN);
    assert_eq!(bad(q), ErrorKind::InvalidInput);
    assert_eq!(
        m.as_author(Author::new(Some("a"), "")).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        m.as_author(Author::new(Some("a\nb"), "cli"))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let report = m.verify(&Default::default()).unwrap();
    assert!(report.valid, "{:#?}", report.violations);
}

/// A ledger opened on the store by another handle sees the same authors (they are in the
/// store, not in the handle).
pub fn authors_survive_reopening(store: DynStore) {
    let m = open_memory(&store);
    let id = m
        .as_author(Author::new(Some("eve"), "rest"))
        .unwrap()
        .store_fact(&fact("p", "x marks the spot"))
        .unwrap()
        .facts[0]
        .id;
    let again = AgentMemory::new(
        store.clone(),
        Arc::new(Ledger::open(store.clone(), LedgerOptions::default()).unwrap()),
    )
    .unwrap();
    let f = again.fact(id).unwrap();
    assert_eq!(
        (f.author.as_deref(), f.surface.as_deref()),
        (Some("eve"), Some("rest"))
    );
}
