//! The memory conformance suite: what [`AgentMemory`] and the [`SearchIndex`](crate::memory::search_index::SearchIndex) rely on from a
//! [`Store`](crate::Store) (a ledger store that also keeps the agent memory).

use super::sample_entries;
use crate::error::ErrorKind;
use crate::ledger::entry::{Entry, NewEntry};
use crate::ledger::verify::{VerifyOptions, verify_store};
use crate::ledger::{Ledger, LedgerOptions};
use crate::memory::consensus::{AgentReputation, Vote};
use crate::memory::fact::{DeprecateDetail, Fact, NewFact, StoreDetail, VoteDetail};
use crate::memory::store::FactChange;
use crate::memory::{AgentMemory, SearchQuery};
use crate::store::DynStore;
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
    concurrent_memory_writes_keep_one_chain(make());
    search_index_matches_the_store(make());
}

fn open_memory(store: &DynStore) -> AgentMemory {
    store.migrate().expect("migrate");
    let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    AgentMemory::new(store.clone(), Arc::new(ledger)).unwrap()
}

fn fact(project: &str, content: &str) -> NewFact {
    NewFact::new(project, content)
}

const PAST: &str = "2020-01-01T00:00:00.000000Z";
const FUTURE: &str = "2999-01-01T00:00:00.000000Z";

/// Facts read back exactly as stored; ids are ledger indices; recall keeps the current facts
/// of one project, by consensus then recency; project history keeps them all, newest first.
pub fn facts_store_and_recall(store: DynStore) {
    let m = open_memory(&store);
    m.ledger().append(&sample_entries(2)).unwrap();
    let full = NewFact {
        fact_type: Some("decision".into()),
        tags: vec!["db".into(), "ops".into()],
        confidence: Some(0.8),
        source: Some("https://example.com/adr/7".into()),
        valid_from: Some("2024-05-06T07:08:09+02:00".into()),
        valid_until: Some(FUTURE.into()),
        ..fact("p", "We use SQLite in WAL mode")
    };
    let s = m.store_fact(&full).unwrap();
    let f = &s.facts[0];
    assert_eq!(f.id, 2, "a fact's id is the index of its fact.store entry");
    assert_eq!(s.append.first_index, 2);
    assert_eq!(f.valid_from, "2024-05-06T05:08:09.000000Z");
    assert_eq!(f.tags, ["db", "ops"]);
    assert_eq!(f.created_at, m.ledger().entry(2).unwrap().entry.timestamp);
    assert_eq!(
        store.fact(2).unwrap().as_ref(),
        Some(f),
        "fact reads back as stored"
    );
    assert_eq!(store.fact(99).unwrap(), None);

    let batch = m
        .store_facts(&[
            fact("p", "second"),
            fact("q", "other project"),
            NewFact {
                valid_until: Some("2021-01-01".into()),
                valid_from: Some(PAST.into()),
                ..fact("p", "expired")
            },
            NewFact {
                valid_from: Some(FUTURE.into()),
                ..fact("p", "not yet valid")
            },
            fact("p", "third"),
        ])
        .unwrap();
    let ids: Vec<u64> = batch.facts.iter().map(|f| f.id).collect();
    assert_eq!(ids, [3, 4, 5, 6, 7], "a batch gets consecutive ids");
    assert_eq!(store.head().unwrap().size, 8);
    let now = crate::ledger::entry::now_timestamp();
    let names = |fs: Vec<Fact>| fs.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(
        names(store.recall("p", &now, 100).unwrap()),
        [7, 3, 2],
        "recall: valid now, newest first when consensus ties"
    );
    m.vote(2, "alice", 1, Some("true")).unwrap();
    m.vote(7, "alice", -1, None).unwrap();
    assert_eq!(
        names(m.recall("p", 100).unwrap()),
        [2, 3, 7],
        "recall orders by consensus first"
    );
    assert_eq!(names(m.recall("p", 2).unwrap()), [2, 3], "recall limit");
    m.deprecate(3, Some("superseded")).unwrap();
    assert_eq!(names(m.recall("p", 100).unwrap()), [2, 7]);
    assert_eq!(
        names(
            store
                .recall("p", "2020-06-01T00:00:00.000000Z", 100)
                .unwrap()
        ),
        [5],
        "recall at another time sees the facts valid then"
    );
    assert_eq!(
        names(m.project_history("p", 100).unwrap()),
        [7, 6, 5, 3, 2],
        "project history: every fact, deprecated ones too, newest first"
    );
    assert_eq!(names(store.project_facts("p", 2).unwrap()), [7, 6]);
    assert_eq!(names(store.project_facts("q", 10).unwrap()), [4]);
    assert!(store.recall("nobody", &now, 10).unwrap().is_empty());
    let d = store.fact(3).unwrap().unwrap();
    assert!(d.deprecated_at.is_some());
    assert_eq!(d.deprecation_reason.as_deref(), Some("superseded"));
}

/// Search ranks by BM25 exactly as `bm25::Bm25Index` does, and filters by project, time,
/// deprecation and `top_k`.
pub fn search_ranks_and_filters(store: DynStore) {
    let m = open_memory(&store);
    let texts: [(&str, &str, &[&str]); 8] = [
        ("a", "The quick brown fox jumps over the lazy dog", &[]),
        ("a", "A fox", &[]),
        ("a", "Foxes are not FOX: fox fox", &["animals"]),
        ("b", "Dogs chase the fox around the yard", &[]),
        ("b", "Nothing to see here", &["fox"]),
        ("a", "Databases: SQLite, Postgres and redb", &["storage"]),
        ("a", "The lazy cat sleeps", &[]),
        ("b", "Ünïcode FÜCHSE und Füchse in İstanbul", &[]),
    ];
    let facts: Vec<NewFact> = texts
        .iter()
        .map(|(p, c, t)| NewFact {
            tags: t.iter().map(|s| s.to_string()).collect(),
            ..fact(p, c)
        })
        .collect();
    m.store_facts(&facts).unwrap();
    let mut ix = crate::memory::bm25::Bm25Index::new();
    for (i, (_, c, t)) in texts.iter().enumerate() {
        let tags: Vec<String> = t.iter().map(|s| s.to_string()).collect();
        ix.add(i as u64, &crate::memory::bm25::index_text(c, &tags));
    }
    for q in [
        "fox",
        "lazy dog",
        "FOX storage",
        "füchse",
        "the",
        "sqlite redb",
        "İSTANBUL",
    ] {
        let mut want = ix.score(&crate::memory::bm25::query_terms(q));
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        let got = m.search(&SearchQuery::new(q)).unwrap();
        assert_eq!(
            got.iter().map(|h| h.fact.id).collect::<Vec<_>>(),
            want.iter().map(|w| w.0).collect::<Vec<_>>(),
            "ranking of {q:?}"
        );
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.score - w.1).abs() <= 1e-9 * w.1.abs().max(1.0),
                "score of fact {} for {q:?}: {} vs {}",
                g.fact.id,
                g.score,
                w.1
            );
        }
    }
    let ids = |q: SearchQuery| {
        m.search(&q)
            .unwrap()
            .into_iter()
            .map(|h| h.fact.id)
            .collect::<Vec<_>>()
    };
    let top = ids(SearchQuery::new("fox"));
    assert_eq!(top[0], 2, "the fact saying fox four times ranks first");
    assert!(top.contains(&4), "tags are searchable");
    assert!(ids(SearchQuery::new("zebra")).is_empty());
    assert_eq!(
        ids(SearchQuery::new("İstanbul")),
        [7],
        "case folds, diacritics do not"
    );
    assert!(ids(SearchQuery::new("istanbul")).is_empty());
    assert_eq!(
        ids(SearchQuery {
            top_k: Some(2),
            ..SearchQuery::new("fox")
        }),
        top[..2]
    );
    let only_b = ids(SearchQuery {
        project: Some("b".into()),
        ..SearchQuery::new("fox")
    });
    assert_eq!(only_b, [4, 3], "project filter");
    m.deprecate(2, None).unwrap();
    assert!(
        !ids(SearchQuery::new("fox")).contains(&2),
        "deprecated facts are excluded"
    );
    assert!(
        ids(SearchQuery {
            include_deprecated: true,
            ..SearchQuery::new("fox")
        })
        .contains(&2)
    );
    // as_of: a fact valid only in 2020 is found then, not now.
    let old = m
        .store_fact(&NewFact {
            valid_from: Some("2020-01-01".into()),
            valid_until: Some("2021-01-01".into()),
            ..fact("a", "fox of the past")
        })
        .unwrap()
        .facts[0]
        .id;
    assert!(!ids(SearchQuery::new("past")).contains(&old));
    assert_eq!(
        ids(SearchQuery {
            as_of: Some("2020-06-01T00:00:00Z".into()),
            ..SearchQuery::new("fox past")
        }),
        [old],
        "as_of sees only the facts valid then"
    );
    for (q, want) in [
        (SearchQuery::new("   "), "no words"),
        (
            SearchQuery {
                top_k: Some(0),
                ..SearchQuery::new("fox")
            },
            "top_k 0",
        ),
        (
            SearchQuery {
                as_of: Some("soon".into()),
                ..SearchQuery::new("fox")
            },
            "as_of",
        ),
    ] {
        let e = m.search(&q).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains(want), "{e}");
    }
}

/// Votes follow the documented formulas, re-votes replace, and reputations persist.
pub fn votes_weigh_by_reputation(store: DynStore) {
    let m = open_memory(&store);
    let id = m
        .store_fact(&fact("p", "water boils at 100 C"))
        .unwrap()
        .facts[0]
        .id;
    let other = m
        .store_fact(&fact("p", "the moon is cheese"))
        .unwrap()
        .facts[0]
        .id;
    let a = m.vote(id, "alice", 1, Some("measured")).unwrap();
    assert_eq!(a.vote.weight, 0.5);
    assert_eq!(a.vote.agreed, None, "nothing to agree with yet");
    assert!((a.consensus - 0.5 / 1.5).abs() < 1e-12);
    let b = m.vote(id, "bob", 1, None).unwrap();
    assert_eq!(b.vote.agreed, Some(true));
    assert!((b.agent.reputation - 2.0 / 3.0).abs() < 1e-12);
    let c = m.vote(id, "carol", -1, Some("at sea level only")).unwrap();
    assert_eq!(c.vote.agreed, Some(false));
    assert!((c.agent.reputation - 1.0 / 3.0).abs() < 1e-12);
    assert!((c.consensus - 0.2).abs() < 1e-12, "{}", c.consensus);
    assert!((store.fact(id).unwrap().unwrap().consensus - 0.2).abs() < 1e-12);
    // Bob's better reputation now weighs more on another fact.
    let b2 = m.vote(other, "bob", -1, None).unwrap();
    assert!((b2.vote.weight - 2.0 / 3.0).abs() < 1e-12);
    assert!((b2.consensus + (2.0 / 3.0) / (5.0 / 3.0)).abs() < 1e-12);
    // Carol changes her mind: her vote is replaced, her old judgment withdrawn.
    let c2 = m.vote(id, "carol", 1, None).unwrap();
    assert_eq!(c2.replaced.as_ref().map(|v| v.vote), Some(-1));
    assert_eq!(c2.vote.agreed, Some(true));
    assert_eq!(
        (c2.agent.votes, c2.agent.judged, c2.agent.agreed),
        (1, 1, 1)
    );
    let votes = store.votes(id).unwrap();
    assert_eq!(
        votes
            .iter()
            .map(|v| (v.agent.as_str(), v.vote))
            .collect::<Vec<_>>(),
        [("alice", 1), ("bob", 1), ("carol", 1)],
        "one vote per agent, in name order"
    );
    assert_eq!(votes[0].reason.as_deref(), Some("measured"));
    assert_eq!(votes[2].entry_index, c2.append.first_index);
    let want = crate::memory::consensus::consensus(votes.iter().map(|v| (v.vote, v.weight)));
    assert!((store.fact(id).unwrap().unwrap().consensus - want).abs() < 1e-12);
    assert_eq!(store.agent_reputation("carol").unwrap(), Some(c2.agent));
    assert_eq!(store.agent_reputation("nobody").unwrap(), None);
    assert_eq!(m.agent("nobody").unwrap(), AgentReputation::new("nobody"));
    let bob = store.agent_reputation("bob").unwrap().unwrap();
    assert_eq!((bob.votes, bob.judged, bob.agreed), (2, 1, 1));
    let e = m.ledger().entry(c2.append.first_index).unwrap().entry;
    assert_eq!(e.action, "fact.vote");
    assert_eq!(
        serde_json::from_str::<VoteDetail>(&e.detail).unwrap(),
        VoteDetail {
            fact_id: id,
            agent: "carol".into(),
            vote: 1,
            reason: None
        }
    );
}

/// A fact's history is its ledger entries in order; the details carry what changed.
pub fn history_lists_every_entry(store: DynStore) {
    let m = open_memory(&store);
    let id = m.store_fact(&fact("p", "first")).unwrap().facts[0].id;
    m.store_fact(&fact("p", "unrelated")).unwrap();
    m.vote(id, "a", 1, None).unwrap();
    m.vote(id, "a", -1, Some("changed my mind")).unwrap();
    m.deprecate(id, Some("obsolete")).unwrap();
    let h = m.fact_history(id).unwrap();
    assert_eq!(
        h.entries
            .iter()
            .map(|e| (e.index, e.action.as_str()))
            .collect::<Vec<_>>(),
        [
            (0, "fact.store"),
            (2, "fact.vote"),
            (3, "fact.vote"),
            (4, "fact.deprecate")
        ]
    );
    assert!(h.entries.iter().all(|e| e.project == "p"));
    assert_eq!(h.votes.len(), 1, "a re-vote replaces the vote");
    assert_eq!(
        serde_json::from_str::<DeprecateDetail>(&h.entries[3].detail).unwrap(),
        DeprecateDetail {
            fact_id: id,
            reason: Some("obsolete".into())
        }
    );
    assert_eq!(
        h.fact.deprecated_at.as_deref(),
        Some(h.entries[3].timestamp.as_str())
    );
    assert_eq!(store.fact_history(77).unwrap(), Vec::<Entry>::new());
    assert_eq!(m.fact_history(77).unwrap_err().kind(), ErrorKind::NotFound);
}

fn snapshot(store: &DynStore) -> (u64, u64, Vec<Fact>, Vec<Vote>) {
    let mut votes = Vec::new();
    let facts = store.project_facts("p", usize::MAX).unwrap();
    for f in &facts {
        votes.extend(store.votes(f.id).unwrap());
    }
    (
        store.head().unwrap().size,
        store.memory_version().unwrap(),
        facts,
        votes,
    )
}

/// Refused mutations (bad batch item, vote on a missing fact, double deprecation, a change
/// the store rejects inside the transaction) leave ledger and memory untouched.
pub fn failed_memory_writes_write_nothing(store: DynStore) {
    let m = open_memory(&store);
    m.store_facts(&[fact("p", "one"), fact("p", "two")])
        .unwrap();
    m.vote(0, "a", 1, None).unwrap();
    let before = snapshot(&store);
    let mut batch = vec![fact("p", "ok"), fact("p", "ok too"), fact("p", "bad")];
    batch[2].confidence = Some(7.0);
    let e = m.store_facts(&batch).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("batch item: 2"), "{e}");
    assert!(e.to_string().contains("confidence 7"), "{e}");
    batch[2] = fact("p", &"x".repeat(70_000));
    let e = m.store_facts(&batch).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(
        m.store_fact(&fact("p", "")).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        m.vote(42, "a", 1, None).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        m.vote(0, "", 1, None).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        m.deprecate(42, None).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(snapshot(&store), before, "refused input writes nothing");

    // The store itself refuses changes that do not apply, and then writes no ledger row.
    let entry = [NewEntry::new("p", "fact.store", "{}")];
    let dup = store.fact(0).unwrap().unwrap();
    for bad in [
        FactChange::Insert(dup),
        FactChange::SetConsensus {
            fact_id: 42,
            consensus: 0.5,
        },
    ] {
        let r = m.append_with(&entry, &mut |_, _| Ok(vec![bad.clone()]));
        assert!(r.is_err(), "{bad:?} must be refused");
    }
    let r = m.append_with(&entry, &mut |tx, _| {
        assert!(
            tx.fact(0)?.is_some(),
            "the transaction sees committed facts"
        );
        assert_eq!(tx.votes(0)?.len(), 1);
        assert!(tx.agent_reputation("a")?.is_some());
        Err(crate::Error::invalid("refused by the caller"))
    });
    assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(
        snapshot(&store),
        before,
        "a failed transaction writes nothing"
    );
    assert_eq!(store.last_entry_index().unwrap(), Some(before.0 - 1));
    m.deprecate(1, None).unwrap();
    assert_eq!(
        m.deprecate(1, None).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        m.vote(1, "a", 1, None).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(store.head().unwrap().size, before.0 + 1);
}

/// Every memory mutation increments the memory version once; failures and plain ledger
/// appends leave it alone.
pub fn memory_version_counts_mutations(store: DynStore) {
    let m = open_memory(&store);
    assert_eq!(store.memory_version().unwrap(), 0);
    m.ledger().append(&sample_entries(3)).unwrap();
    assert_eq!(
        store.memory_version().unwrap(),
        0,
        "plain entries are not memory"
    );
    m.store_fact(&fact("p", "a")).unwrap();
    assert_eq!(store.memory_version().unwrap(), 1);
    m.store_facts(&[fact("p", "b"), fact("p", "c")]).unwrap();
    assert_eq!(
        store.memory_version().unwrap(),
        2,
        "a batch is one mutation"
    );
    m.vote(3, "x", 1, None).unwrap();
    assert_eq!(store.memory_version().unwrap(), 3);
    let _ = m.vote(99, "x", 1, None);
    assert_eq!(store.memory_version().unwrap(), 3);
    m.deprecate(4, None).unwrap();
    assert_eq!(store.memory_version().unwrap(), 4);
    assert_eq!(m.version().unwrap(), 4);
}

/// The state a store derives equals the state rebuilt from the ledger entries alone, with the
/// documented rules (a reference model, independent of the engine's code path).
pub fn memory_replays_from_the_ledger(store: DynStore) {
    let m = open_memory(&store);
    m.store_facts(&[fact("p", "a"), fact("p", "b"), fact("q", "c")])
        .unwrap();
    for (f, agent, v) in [
        (0, "x", 1),
        (0, "y", 1),
        (0, "z", -1),
        (1, "z", 1),
        (1, "x", -1),
        (0, "z", 1),
        (2, "y", -1),
        (1, "y", -1),
    ] {
        m.vote(f, agent, v, Some("r")).unwrap();
    }
    m.deprecate(2, Some("gone")).unwrap();
    m.store_fact(&fact("p", "d")).unwrap();
    let mut entries = Vec::new();
    store
        .scan_entries(0..u64::MAX, &mut |r| {
            entries.push(Entry {
                index: r.entry.index,
                timestamp: r.entry.timestamp.to_owned(),
                project: r.entry.project.to_owned(),
                action: r.entry.action.to_owned(),
                detail: r.entry.detail.to_owned(),
            });
            Ok(())
        })
        .unwrap();
    let (facts, votes, agents) = replay(&entries);
    for f in facts.values() {
        assert_eq!(store.fact(f.id).unwrap().as_ref(), Some(f), "fact {}", f.id);
        let got = store.votes(f.id).unwrap();
        let want: Vec<&Vote> = votes.values().filter(|v| v.fact_id == f.id).collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "votes on {}", f.id);
        assert_eq!(
            store.fact_history(f.id).unwrap(),
            entries
                .iter()
                .filter(|e| about(e) == Some(f.id))
                .cloned()
                .collect::<Vec<_>>()
        );
    }
    for a in agents.values() {
        assert_eq!(store.agent_reputation(&a.agent).unwrap().as_ref(), Some(a));
    }
}

fn about(e: &Entry) -> Option<u64> {
    match e.action.as_str() {
        "fact.store" => Some(e.index),
        "fact.vote" => serde_json::from_str::<VoteDetail>(&e.detail)
            .ok()
            .map(|d| d.fact_id),
        "fact.deprecate" => serde_json::from_str::<DeprecateDetail>(&e.detail)
            .ok()
            .map(|d| d.fact_id),
        _ => None,
    }
}

type Replayed = (
    std::collections::BTreeMap<u64, Fact>,
    std::collections::BTreeMap<(u64, String), Vote>,
    std::collections::BTreeMap<String, AgentReputation>,
);

/// Rebuilds the memory from ledger entries with the rules of `crate::memory::consensus`.
fn replay(entries: &[Entry]) -> Replayed {
    let (mut facts, mut votes, mut agents) = Replayed::default();
    for e in entries {
        match e.action.as_str() {
            "fact.store" => {
                let d: StoreDetail = serde_json::from_str(&e.detail).unwrap();
                facts.insert(e.index, d.into_fact(e.index, &e.project, &e.timestamp));
            }
            "fact.vote" => {
                let d: VoteDetail = serde_json::from_str(&e.detail).unwrap();
                let current: Vec<Vote> = votes
                    .values()
                    .filter(|v: &&Vote| v.fact_id == d.fact_id)
                    .cloned()
                    .collect();
                let fx = crate::memory::consensus::cast(
                    &current,
                    agents.get(&d.agent).cloned(),
                    Vote {
                        fact_id: d.fact_id,
                        agent: d.agent.clone(),
                        vote: d.vote,
                        reason: d.reason,
                        weight: 0.0,
                        agreed: None,
                        entry_index: e.index,
                        voted_at: e.timestamp.clone(),
                    },
                );
                facts.get_mut(&d.fact_id).unwrap().consensus = fx.consensus;
                agents.insert(d.agent.clone(), fx.agent);
                votes.insert((d.fact_id, d.agent), fx.vote);
            }
            "fact.deprecate" => {
                let d: DeprecateDetail = serde_json::from_str(&e.detail).unwrap();
                let f = facts.get_mut(&d.fact_id).unwrap();
                f.deprecated_at = Some(e.timestamp.clone());
                f.deprecation_reason = d.reason;
            }
            _ => {}
        }
    }
    (facts, votes, agents)
}

/// Memory writes from several threads keep one verifiable chain and lose nothing.
pub fn concurrent_memory_writes_keep_one_chain(store: DynStore) {
    let m = open_memory(&store);
    let target = m.store_fact(&fact("p", "shared")).unwrap().facts[0].id;
    std::thread::scope(|s| {
        for t in 0..4 {
            let m = m.clone();
            s.spawn(move || {
                for i in 0..10 {
                    m.store_fact(&fact("p", &format!("thread {t} fact {i}")))
                        .unwrap();
                    m.vote(
                        target,
                        &format!("agent{t}"),
                        if i % 2 == 0 { 1 } else { -1 },
                        None,
                    )
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(store.head().unwrap().size, 81);
    assert_eq!(store.memory_version().unwrap(), 81);
    assert_eq!(store.project_facts("p", 1000).unwrap().len(), 41);
    assert_eq!(store.votes(target).unwrap().len(), 4);
    assert_eq!(m.fact_history(target).unwrap().entries.len(), 41);
    let report = verify_store(
        &*store,
        m.ledger().hasher(),
        None,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(report.valid, "{:?}", report.violations);
}

/// The in-memory search index (`AgentMemory::with_search_index`) returns exactly what the
/// store's own search returns, and sees writes made through another handle at once.
pub fn search_index_matches_the_store(store: DynStore) {
    let plain = open_memory(&store);
    let indexed = AgentMemory::new(store.clone(), plain.ledger().clone())
        .unwrap()
        .with_search_index();
    // Another "process": its own ledger handle and its own index over the same store.
    let other = open_memory(&store).with_search_index();
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    ];
    let mut facts = Vec::new();
    let mut x: u64 = 7;
    for i in 0..300usize {
        let mut content = Vec::new();
        for _ in 0..(3 + i % 9) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Skewed: low words are common, high words rare.
            let r = ((x >> 33) % 1000) as f64 / 1000.0;
            content.push(words[((r * r * r) * words.len() as f64) as usize]);
        }
        let mut f = fact(["p", "q", "r"][i % 3], &content.join(" "));
        if i % 10 == 0 {
            f.valid_from = Some("2020-01-01".into());
            f.valid_until = Some("2021-01-01".into());
        }
        if i % 7 == 0 {
            f.tags = vec!["kappa".into()];
        }
        facts.push(f);
    }
    plain.store_facts(&facts).unwrap();
    indexed.warm_up().unwrap();
    for id in [3, 50, 51, 200] {
        plain.deprecate(id, None).unwrap();
    }
    let same = |m: &AgentMemory, q: &SearchQuery| {
        let want = store.search_facts(&q.resolve().unwrap()).unwrap();
        let got = m.search(q).unwrap();
        assert_eq!(
            got.iter().map(|h| h.fact.id).collect::<Vec<_>>(),
            want.iter().map(|h| h.fact.id).collect::<Vec<_>>(),
            "ranking of {q:?}"
        );
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.score - w.score).abs() <= 1e-12 * w.score.abs().max(1.0),
                "score of {} for {q:?}: {} vs {}",
                g.fact.id,
                g.score,
                w.score
            );
            assert_eq!(g.fact, w.fact);
        }
        got.len()
    };
    let mut total = 0;
    for words_q in [
        "alpha",
        "kappa",
        "iota theta",
        "alpha beta gamma",
        "zeta kappa",
        "nothing",
    ] {
        for project in [None, Some("q")] {
            for as_of in [None, Some("2020-06-01")] {
                for (top_k, include_deprecated) in [(10, false), (1, false), (100, true)] {
                    let q = SearchQuery {
                        query: words_q.into(),
                        project: project.map(String::from),
                        as_of: as_of.map(String::from),
                        top_k: Some(top_k),
                        include_deprecated,
                    };
                    total += same(&indexed, &q);
                    total += same(&other, &q);
                }
            }
        }
    }
    assert!(total > 500, "the queries must find facts ({total})");
    // Writes through one handle are seen by the other's index at once.
    let id = plain.store_fact(&fact("q", "omega arrives")).unwrap().facts[0].id;
    let ids = |m: &AgentMemory| {
        m.search(&SearchQuery::new("omega"))
            .unwrap()
            .into_iter()
            .map(|h| h.fact.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&other), [id]);
    assert_eq!(ids(&indexed), [id]);
    other.deprecate(id, None).unwrap();
    assert!(ids(&indexed).is_empty(), "a deprecation elsewhere is seen");
    same(&indexed, &SearchQuery::new("alpha omega"));
}
