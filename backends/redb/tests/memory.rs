//! What the shared suites do not pin down for this engine: the in-memory search index after
//! erasures, reopening and a rebuild (scores bit for bit against core's `Bm25Index` over the
//! facts not erased); the filters applied before the cut; `scan_memory` reading one snapshot;
//! rows that do not decode reported, not failing the scan or the open; `replace_memory`
//! refusing a grown ledger.

use cortex_core::memory::audit;
use cortex_core::memory::bm25::{Bm25Index, index_text};
use cortex_core::memory::fact::Author;
use cortex_core::memory::store::{MemoryRow, MemoryState};
use cortex_core::{
    AgentMemory, DynStore, ErrorKind, FactStore, Ledger, LedgerOptions, LedgerStore, NewFact,
    SearchHit, SearchQuery, VerifyOptions, ViolationKind,
};
use cortex_redb::RedbStore;
use redb::TableDefinition;
use std::path::Path;
use std::sync::Arc;

const WORDS: [&str; 8] = [
    "redb", "file", "fact", "memory", "ledger", "proof", "search", "index",
];

fn open(path: &Path) -> (Arc<RedbStore>, AgentMemory) {
    let redb = Arc::new(RedbStore::open(path).unwrap());
    let store: DynStore = redb.clone();
    let ledger = Arc::new(Ledger::open(store.clone(), LedgerOptions::default()).unwrap());
    (redb, AgentMemory::new(store, ledger).unwrap())
}

/// Forty facts by two agents, words repeated unevenly so that scores differ.
fn seed(m: &AgentMemory) -> Vec<u64> {
    let mut ids = Vec::new();
    for (agent, offset) in [("ann", 0usize), ("ben", 3)] {
        let by = m.as_author(Author::new(Some(agent), "test")).unwrap();
        let facts: Vec<NewFact> = (0..20)
            .map(|i| {
                let text: Vec<&str> = (0..=(i % 7))
                    .map(|k| WORDS[(i * 3 + k * k + offset) % WORDS.len()])
                    .collect();
                NewFact {
                    tags: vec![WORDS[(i + offset) % WORDS.len()].to_owned()],
                    ..NewFact::new(if i % 2 == 0 { "p" } else { "q" }, text.join(" "))
                }
            })
            .collect();
        ids.extend(by.store_facts(&facts).unwrap().facts.iter().map(|f| f.id));
    }
    ids
}

/// What core's index over the facts not erased scores for `query`, best first.
fn expected(store: &RedbStore, ids: &[u64], query: &str) -> Vec<(u64, u64)> {
    let mut ix = Bm25Index::new();
    for id in ids {
        let f = store.fact(*id).unwrap().unwrap();
        if !f.is_erased() {
            ix.add(f.id, &index_text(&f.content, &f.tags));
        }
    }
    let terms = cortex_core::memory::bm25::query_terms(query);
    ix.top_k(&terms, usize::MAX, &|_| true)
        .into_iter()
        .map(|(id, s)| (id, s.to_bits()))
        .collect()
}

fn got(hits: &[SearchHit]) -> Vec<(u64, u64)> {
    hits.iter()
        .map(|h| (h.fact.id, h.score.to_bits()))
        .collect()
}

fn search(store: &RedbStore, q: SearchQuery) -> Vec<SearchHit> {
    store.search_facts(&q.resolve().unwrap()).unwrap()
}

fn everything(query: &str) -> SearchQuery {
    SearchQuery {
        top_k: Some(1000),
        include_deprecated: true,
        ..SearchQuery::new(query)
    }
}

#[test]
fn erased_facts_leave_the_index_and_its_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("erase.redb");
    let (store, m) = open(&path);
    let ids = seed(&m);
    let query = "redb memory proof";
    assert_eq!(
        got(&search(&store, everything(query))),
        expected(&store, &ids, query)
    );
    let ann = m.as_author(Author::new(Some("ann"), "test")).unwrap();
    for id in [ids[0], ids[5], ids[21], ids[33]] {
        ann.forget(id, "test").unwrap();
    }
    let want = expected(&store, &ids, query);
    let erased = [ids[0], ids[5], ids[21], ids[33]];
    assert!(want.iter().all(|(id, _)| !erased.contains(id)));
    assert_eq!(
        got(&search(&store, everything(query))),
        want,
        "after erasing"
    );
    drop(ann);
    drop(m);
    drop(store);
    let (store, _m) = open(&path);
    assert_eq!(
        got(&search(&store, everything(query))),
        want,
        "rebuilt at open"
    );

    // Filters apply before the cut: the best fact by ben is found with top_k 1 even when
    // ann's facts score higher.
    let bens: Vec<(u64, u64)> = want
        .iter()
        .copied()
        .filter(|(id, _)| *id >= ids[20])
        .collect();
    assert_ne!(want[0], bens[0], "the fixture must have ann's fact on top");
    let top_ben = search(
        &store,
        SearchQuery {
            top_k: Some(1),
            author: Some("ben".into()),
            include_deprecated: true,
            ..SearchQuery::new(query)
        },
    );
    assert_eq!(got(&top_ben), bens[..1]);
}

#[test]
fn scan_memory_reads_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m) = open(&dir.path().join("snapshot.redb"));
    seed(&m);
    let size = store.head().unwrap().size;
    let (mut head, mut facts, mut appended) = (None, 0, false);
    store
        .scan_memory(&mut |row| {
            match row {
                MemoryRow::Head(h) => head = Some(h),
                MemoryRow::Fact(_) => {
                    // A commit in the middle of the scan is not seen by it.
                    if !appended {
                        m.store_fact(&NewFact::new("p", "written during the scan"))
                            .unwrap();
                        appended = true;
                    }
                    facts += 1;
                }
                _ => {}
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(head, Some(size));
    assert_eq!(facts, 40);
    assert_eq!(store.head().unwrap().size, size + 1);
}

#[test]
fn rows_that_do_not_decode_are_reported_not_errors() {
    const FACTS: TableDefinition<u64, &[u8]> = TableDefinition::new("facts");
    const OPENINGS: TableDefinition<u64, &[u8]> = TableDefinition::new("fact_openings");
    const VOTES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("fact_votes");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.redb");
    let (store, m) = open(&path);
    let ids = seed(&m);
    m.vote(ids[1], "zed", 1, None).unwrap();
    let hasher = m.ledger().hasher().algorithm().hasher();
    drop(m);
    {
        let tx = store.raw_database_for_tests().begin_write().unwrap();
        {
            use redb::ReadableTable;
            let mut facts = tx.open_table(FACTS).unwrap();
            // An unknown version tag; a record cut short.
            facts.insert(ids[2], &[9u8, 0, 0][..]).unwrap();
            let cut = facts.get(ids[3]).unwrap().unwrap().value().to_vec();
            facts.insert(ids[3], &cut[..cut.len() / 2]).unwrap();
            // A fact record stored under another fact's key.
            let moved = facts.get(ids[4]).unwrap().unwrap().value().to_vec();
            facts.insert(ids[6], &moved[..]).unwrap();
            tx.open_table(OPENINGS)
                .unwrap()
                .insert(ids[7], &[1u8, 0xff][..])
                .unwrap();
            let mut votes = tx.open_table(VOTES).unwrap();
            let v = votes
                .get((ids[1], "zed"))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            votes.insert((ids[1], "mallory"), &v[..]).unwrap();
        }
        tx.commit().unwrap();
    }
    let mut bad = Vec::new();
    store
        .scan_memory(&mut |row| {
            if let MemoryRow::Undecodable { table, key, .. } = row {
                bad.push((table, key));
            }
            Ok(())
        })
        .unwrap();
    let key = |id: u64| id.to_string();
    assert_eq!(
        bad,
        [
            ("facts", key(ids[2])),
            ("facts", key(ids[3])),
            ("facts", key(ids[6])),
            ("fact_openings", key(ids[7])),
            ("fact_votes", format!("({}, \"mallory\")", ids[1])),
        ]
    );
    // The store still opens (the search index skips what it cannot read), and verify reports
    // the rows instead of failing.
    drop(store);
    let store: DynStore = Arc::new(RedbStore::open(&path).unwrap());
    let report = audit::verify(&*store, &*hasher, None, &VerifyOptions::default()).unwrap();
    assert!(!report.valid);
    let unreadable = report
        .violations
        .iter()
        .filter(|v| v.kind == ViolationKind::MemoryMismatch && v.message.contains("cannot be read"))
        .count();
    assert_eq!(unreadable, 5, "{:#?}", report.violations);
}

#[test]
fn replace_memory_refuses_a_grown_ledger_and_rebuilds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m) = open(&dir.path().join("replace.redb"));
    let ids = seed(&m);
    m.forget(ids[9], "test").unwrap();
    let hasher = m.ledger().hasher().algorithm().hasher();
    let (state, lost) = audit::replayed_state(&*store, &*hasher).unwrap();
    assert!(lost.is_empty());
    let size = store.head().unwrap().size;
    let version = store.memory_version().unwrap();
    let e = store.replace_memory(size - 1, &state).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert_eq!(store.memory_version().unwrap(), version, "nothing written");

    // Replacing with only the first ten facts: the rest leave every table and the index.
    let query = "redb memory proof";
    let keep: Vec<u64> = ids[..10].to_vec();
    let small = MemoryState {
        facts: state
            .facts
            .iter()
            .filter(|f| keep.contains(&f.id))
            .cloned()
            .collect(),
        openings: state
            .openings
            .iter()
            .filter(|o| keep.contains(&o.fact_id))
            .cloned()
            .collect(),
        events: state
            .events
            .iter()
            .filter(|e| keep.contains(&e.0))
            .copied()
            .collect(),
        ..MemoryState::default()
    };
    store.replace_memory(size, &small).unwrap();
    assert_eq!(store.memory_version().unwrap(), version + 1);
    assert_eq!(store.fact(ids[10]).unwrap(), None);
    assert_eq!(store.project_facts("p", 100).unwrap().len(), 5);
    assert_eq!(
        got(&search(&store, everything(query))),
        expected(&store, &keep, query)
    );
    let mut rows = Vec::new();
    store
        .scan_memory(&mut |row| {
            rows.push(row);
            Ok(())
        })
        .unwrap();
    let facts = rows
        .iter()
        .filter(|r| matches!(r, MemoryRow::Fact(_)))
        .count();
    assert_eq!(facts, 10);

    // And back to the whole replayed state (a rebuild would refuse now: the dropped facts'
    // openings are gone, and only their commitments are in the ledger), index included.
    let e = audit::rebuild(&*store, &*hasher, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    store.replace_memory(size, &state).unwrap();
    assert_eq!(
        got(&search(&store, everything(query))),
        expected(&store, &ids, query)
    );
    let v = audit::verify(&*store, &*hasher, None, &VerifyOptions::default()).unwrap();
    assert!(v.valid, "{:#?}", v.violations);
}
