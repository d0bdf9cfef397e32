//! Votes, history and the rules of writing: votes weighed by reputation, a fact's history,
//! refused writes that write nothing, the memory version, the state replayed from the ledger
//! alone, and concurrent writers on one chain.

use super::{fact, open_memory};
use crate::error::ErrorKind;
use crate::ledger::entry::{Entry, NewEntry};
use crate::ledger::verify::{VerifyOptions, verify_store};
use crate::memory::consensus::{AgentReputation, Vote};
use crate::memory::fact::{DeprecateDetail, Fact, VoteDetail};
use crate::memory::store::DynStore;
use crate::memory::store::FactChange;
use crate::testkit::sample_entries;

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
            reason: None,
            author: Some(m.author().clone()),
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
            reason: Some("obsolete".into()),
            author: Some(m.author().clone()),
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
        Err(crate::error::Error::invalid("refused by the caller"))
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

/// The state a store derives equals the replay of the ledger (`memory::replay`, the rules
/// `verify` and `rebuild` use), row for row: `verify` finds the memory valid, a rebuild from
/// the ledger changes nothing, and the state read back is the replayed one.
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
    m.forget(1, "asked to").unwrap();
    let report = m.verify(&Default::default()).unwrap();
    assert!(report.valid, "{:?}", report.violations);
    let checked = report.memory.unwrap();
    assert_eq!(
        (
            checked.facts,
            checked.facts_erased,
            checked.votes,
            checked.agents
        ),
        (4, 1, 7, 3)
    );
    assert_eq!(checked.commitments_checked, 3);
    let (state, lost) = crate::memory::audit::replayed_state(&*store, m.ledger().hasher()).unwrap();
    assert!(lost.is_empty());
    for f in &state.facts {
        assert_eq!(store.fact(f.id).unwrap().as_ref(), Some(f), "fact {}", f.id);
        let got = store.votes(f.id).unwrap();
        let want: Vec<&Vote> = state.votes.iter().filter(|v| v.fact_id == f.id).collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "votes on {}", f.id);
        assert_eq!(store.opening(f.id).unwrap().is_some(), !f.is_erased());
    }
    for a in &state.agents {
        assert_eq!(store.agent_reputation(&a.agent).unwrap().as_ref(), Some(a));
    }
    let version = store.memory_version().unwrap();
    let r = crate::memory::audit::rebuild(&*store, m.ledger().hasher(), false).unwrap();
    assert_eq!(r.change_count, 0, "{:?}", r.changes);
    assert_eq!(store.memory_version().unwrap(), version + 1);
    assert!(m.verify(&Default::default()).unwrap().valid);
}

/// Memory entries spread over several of verify's scan chunks (16,384 entries each, read in
/// parallel) replay in index order: a fact is voted on two chunks after it was stored,
/// deprecated a chunk later, and another is forgotten there; verify finds it all in order.
pub fn memory_across_scan_chunks_replays_in_order(store: DynStore) {
    let m = open_memory(&store);
    let plain = |n: usize| {
        for _ in 0..n / 10_000 {
            m.ledger().append(&sample_entries(10_000)).unwrap();
        }
    };
    let ids: Vec<u64> = m
        .store_facts(&[fact("p", "early"), fact("p", "forgotten")])
        .unwrap()
        .facts
        .iter()
        .map(|f| f.id)
        .collect();
    plain(40_000);
    m.vote(ids[0], "x", 1, Some("seen")).unwrap();
    plain(20_000);
    m.deprecate(ids[0], Some("old")).unwrap();
    m.forget(ids[1], "asked to").unwrap();
    let report = m.verify(&Default::default()).unwrap();
    assert!(report.valid, "{:?}", report.violations);
    assert!(report.tree_size > 3 * 16_384, "{}", report.tree_size);
    let checked = report.memory.unwrap();
    assert_eq!(
        (
            checked.entries_replayed,
            checked.facts,
            checked.facts_erased,
            checked.votes
        ),
        (5, 2, 1, 1)
    );
    let f = store.fact(ids[0]).unwrap().unwrap();
    assert!(f.deprecated_at.is_some() && f.consensus > 0.0, "{f:?}");
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
