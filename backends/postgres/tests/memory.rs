//! The agent memory's contract on PostgreSQL beyond core's suites: search after erasures ranks
//! bit for bit as core's `Bm25Index` with the erased facts removed, filters apply before the
//! limit, a rebuild's replacement refuses a moved head and keeps the ranking, and the memory
//! scan reads one snapshot while writers run.

mod common;

use common::{Schemas, server_url, with_schema};
use cortex_core::SearchQuery;
use cortex_core::memory::RecallQuery;
use cortex_core::memory::bm25::{Bm25Index, index_text, query_terms};
use cortex_core::memory::fact::Author;
use cortex_core::memory::store::{MemoryRow, MemoryState};
use cortex_core::{AgentMemory, DynStore, ErrorKind, LedgerOptions, NewFact};
use cortex_postgres::PostgresStore;
use std::sync::Arc;

fn open(schemas: &Schemas, url: &str, tag: &str) -> (DynStore, AgentMemory) {
    let store: DynStore =
        Arc::new(PostgresStore::open_url(&with_schema(url, &schemas.fresh(tag))).unwrap());
    let memory = AgentMemory::open(store.clone(), LedgerOptions::default()).unwrap();
    (store, memory)
}

/// `(id, score)` of a search, in its order.
fn hits(memory: &AgentMemory, q: SearchQuery) -> Vec<(u64, f64)> {
    memory
        .search(&q)
        .unwrap()
        .iter()
        .map(|h| (h.fact.id, h.score))
        .collect()
}

/// What core's index ranks for `q` over `ix`, at most `k`.
fn want(ix: &Bm25Index, q: &str, k: usize) -> Vec<(u64, f64)> {
    ix.top_k(&query_terms(q), k, &|_| true)
}

const WORDS: [&str; 8] = [
    "cat", "dog", "bird", "fish", "tree", "rock", "river", "cloud",
];

/// Sixty facts of varied lengths and words, some by alice, the rest by bob.
fn seed(memory: &AgentMemory) -> (Vec<u64>, Bm25Index) {
    let mut ix = Bm25Index::new();
    let mut ids = Vec::new();
    for i in 0..60usize {
        let words: Vec<&str> = (0..(3 + i % 7))
            .map(|j| WORDS[(i * 3 + j * j) % 8])
            .collect();
        let mut f = NewFact::new(if i % 2 == 0 { "even" } else { "odd" }, words.join(" "));
        f.tags = vec![format!("t{}", i % 4)];
        let agent = if i % 3 == 0 { "alice" } else { "bob" };
        let stored = memory
            .as_author(Author::new(Some(agent), "test"))
            .unwrap()
            .store_fact(&f)
            .unwrap()
            .facts
            .remove(0);
        ix.add(stored.id, &index_text(&stored.content, &stored.tags));
        ids.push(stored.id);
    }
    (ids, ix)
}

/// Erased facts leave the index and its statistics: every later search scores exactly as
/// core's index with them removed, in one project or all, for one word or several.
#[test]
fn search_after_erasures_ranks_as_core_does() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let (_, memory) = open(&schemas, &url, "erase");
    let (ids, mut ix) = seed(&memory);
    for &id in ids.iter().step_by(7) {
        memory.forget(id, "asked to").unwrap();
        assert!(ix.remove(id));
    }
    for q in [
        "cat",
        "dog river",
        "t1 cloud fish",
        "rock rock tree",
        "nothing",
    ] {
        let mut sq = SearchQuery::new(q);
        sq.top_k = Some(1000);
        assert_eq!(hits(&memory, sq), want(&ix, q, 1000), "query {q:?}");
        let mut sq = SearchQuery::new(q);
        sq.top_k = Some(3);
        assert_eq!(hits(&memory, sq), want(&ix, q, 3), "query {q:?}, top 3");
    }
    let report = memory.verify(&Default::default()).unwrap();
    assert!(report.valid, "{:#?}", report.violations);
    assert_eq!(report.memory.unwrap().facts_erased, 9);
}

/// The author and consensus filters select before `top_k` and the recall limit: the best of
/// alice's facts come back even when bob's score higher, and the statistics stay those of the
/// whole index.
#[test]
fn filters_apply_before_the_limit() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let (store, memory) = open(&schemas, &url, "filter");
    let (ids, ix) = seed(&memory);
    let alice = |id: u64| ids.iter().position(|x| *x == id).unwrap() % 3 == 0;
    for q in ["cat", "dog river"] {
        let all = want(&ix, q, 1000);
        assert!(!alice(all[0].0), "bob's fact ranks first for {q:?}");
        let mut sq = SearchQuery::new(q);
        sq.top_k = Some(2);
        sq.author = Some("alice".into());
        let theirs: Vec<(u64, f64)> = all.iter().copied().filter(|h| alice(h.0)).take(2).collect();
        assert_eq!(theirs.len(), 2);
        assert_eq!(hits(&memory, sq), theirs, "query {q:?}");
    }
    // Votes put a few facts above the consensus bar, all of them beyond the first recall page.
    let up: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| id % 2 == 0)
        .take(3)
        .collect();
    for &id in &up {
        memory.vote(id, "carol", 1, None).unwrap();
    }
    let recalled: Vec<u64> = memory
        .recall(&RecallQuery {
            limit: Some(2),
            min_consensus: Some(0.1),
            ..RecallQuery::new("even")
        })
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    let mut best = up.clone();
    best.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(recalled, best[..2]);
    let mut sq = SearchQuery::new("t0 t1 t2 t3");
    sq.min_consensus = Some(0.1);
    sq.top_k = Some(1000);
    let mut got: Vec<u64> = hits(&memory, sq).iter().map(|h| h.0).collect();
    got.sort_unstable();
    assert_eq!(got, up);
    assert_eq!(store.project_facts("even", 1000).unwrap().len(), 30);
}

/// `replace_memory` refuses, writing nothing, when the ledger moved past the state's size; a
/// rebuild after erasures leaves the ranking bit for bit as it was.
#[test]
fn replacing_the_memory_checks_the_head_and_keeps_the_ranking() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let (store, memory) = open(&schemas, &url, "replace");
    let (ids, _) = seed(&memory);
    memory.forget(ids[4], "asked to").unwrap();
    memory.vote(ids[5], "carol", -1, None).unwrap();
    let size = store.head().unwrap().size;
    let version = store.memory_version().unwrap();
    let e = store
        .replace_memory(size - 1, &MemoryState::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert_eq!(store.memory_version().unwrap(), version);
    assert_eq!(store.project_facts("even", 1000).unwrap().len(), 30);

    let mut sq = SearchQuery::new("cat dog t2");
    sq.top_k = Some(1000);
    let before = hits(&memory, sq.clone());
    let r = cortex_core::memory::audit::rebuild(&*store, memory.ledger().hasher(), false).unwrap();
    assert_eq!(r.change_count, 0, "{:?}", r.changes);
    assert_eq!((r.facts, r.facts_erased), (60, 1));
    assert_eq!(store.memory_version().unwrap(), version + 1);
    assert_eq!(hits(&memory, sq), before);
    assert!(memory.verify(&Default::default()).unwrap().valid);
}

/// The memory as one scan reads it, and the head of its snapshot.
fn scanned(store: &DynStore) -> (u64, MemoryState, Vec<(u64, String)>) {
    let (mut head, mut state, mut index) = (0, MemoryState::default(), Vec::new());
    store
        .scan_memory(&mut |row| {
            match row {
                MemoryRow::Head(h) => head = h,
                MemoryRow::Fact(f) => state.facts.push(f),
                MemoryRow::Opening(o) => state.openings.push(o),
                MemoryRow::Vote(v) => state.votes.push(v),
                MemoryRow::Agent(a) => state.agents.push(a),
                MemoryRow::Event {
                    fact_id,
                    entry_index,
                } => state.events.push((fact_id, entry_index)),
                MemoryRow::IndexText { fact_id, text } => index.push((fact_id, text)),
                MemoryRow::Undecodable { .. } => panic!("{row:?}"),
            }
            Ok(())
        })
        .unwrap();
    (head, state, index)
}

/// While a writer stores facts, votes and erasures, every scan is one snapshot: its rows are
/// exactly the replay of the ledger up to its head, and its index texts those of the facts
/// not erased. (The ledger half of `verify` is not run here: it reads the head and the last
/// row separately, so an append landing between the two reads as a head moved back.)
#[test]
fn the_memory_scan_is_one_snapshot_under_writes() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let (store, memory) = open(&schemas, &url, "snap");
    seed(&memory);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..150 {
                let f = memory
                    .store_fact(&NewFact::new("w", format!("written {i} cat")))
                    .unwrap()
                    .facts[0]
                    .id;
                if i % 3 == 0 {
                    memory.vote(f, "dave", 1, None).unwrap();
                }
                if i % 5 == 0 {
                    memory.forget(f, "asked to").unwrap();
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut heads = Vec::new();
        while !done.load(std::sync::atomic::Ordering::SeqCst) || heads.len() < 3 {
            let (head, state, index) = scanned(&store);
            let mut replay = cortex_core::memory::replay::Replay::new();
            store
                .scan_entries(0..head, &mut |r| {
                    replay.apply(r.entry);
                    Ok(())
                })
                .unwrap();
            let openings = state.openings.clone();
            let (want, lost) = replay.into_state(memory.ledger().hasher(), &|id| {
                openings.iter().find(|o| o.fact_id == id).cloned()
            });
            assert!(lost.is_empty(), "head {head}: {lost:?}");
            assert_eq!(state, want, "head {head}");
            let texts: Vec<(u64, String)> = want
                .facts
                .iter()
                .filter(|f| !f.is_erased())
                .map(|f| (f.id, index_text(&f.content, &f.tags)))
                .collect();
            assert_eq!(index, texts, "head {head}");
            heads.push(head);
        }
        assert!(heads.windows(2).all(|w| w[0] <= w[1]), "{heads:?}");
    });
    assert!(memory.verify(&Default::default()).unwrap().valid);
}
