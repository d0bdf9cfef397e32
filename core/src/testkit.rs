//! Conformance suite (feature `testkit`): every backend and signer crate runs these functions
//! against itself, in the manner of object_store's exported integration tests. Each function
//! panics with a message naming the broken promise.

use crate::agent_memory::{AgentMemory, SearchQuery};
use crate::checkpoint::{CheckpointRecord, Receipt};
use crate::entry::{Entry, NewEntry};
use crate::error::ErrorKind;
use crate::fact::{
    AgentReputation, DeprecateDetail, Fact, FactChange, NewFact, StoreDetail, Vote, VoteDetail,
};
use crate::hash::Hash;
use crate::ledger::{Ledger, LedgerOptions};
use crate::merkle;
use crate::signer::Signer;
use crate::store::{DynStore, IntegrityCheck};
use crate::tiles::TileNodes;
use crate::verify::{VerifyOptions, verify_store};
use std::sync::Arc;

/// The variable naming the PostgreSQL server the tests use.
pub const POSTGRES_URL_VAR: &str = "CORTEX_TEST_POSTGRES_URL";

/// Skips a test whose peer (a server, a Python package, the shared vectors) is missing: says
/// so on stderr, past the harness's output capture, so a passing run still shows it; under
/// `CI=true`, where every test must run, it panics instead.
pub fn skip(what: &str, why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} must run, and CI=true makes this a failure: {why}"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what} did not run: {why}");
}

/// The test PostgreSQL server's URL ([`crate::testkit_peers::postgres_url`]: [`POSTGRES_URL_VAR`]
/// or a throwaway cluster), or `None` (after [`skip`], with the cause) when there is none.
pub fn postgres_url(what: &str) -> Option<String> {
    crate::testkit_peers::postgres_url()
        .map_err(|why| skip(what, &why))
        .ok()
}

/// `n` small entries for tests.
pub fn sample_entries(n: usize) -> Vec<NewEntry> {
    (0..n)
        .map(|i| {
            NewEntry::new(
                format!("proj{}", i % 3),
                "test.append",
                format!("{{\"i\":{i}}}"),
            )
        })
        .collect()
}

/// Runs every store check against fresh stores made by `make`.
pub fn store_conformance(make: &dyn Fn() -> DynStore) {
    meta_is_set_once(make());
    appends_are_dense_and_chained(make());
    tiles_serve_proofs(make());
    checkpoints_are_ordered(make());
    audit_records_round_trip(make());
    concurrent_appends_keep_one_chain(make());
    group_commit_keeps_one_chain(make());
    checkpoints_while_appending(make());
    failed_append_writes_nothing(make());
    memory_conformance(make);
}

/// Runs every memory-engine check against fresh stores made by `make` (also part of
/// [`store_conformance`]).
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

/// `init_meta` is compare-and-set.
pub fn meta_is_set_once(store: DynStore) {
    store.migrate().expect("migrate");
    assert_eq!(store.meta("k").unwrap(), None);
    assert_eq!(store.init_meta("k", "a").unwrap(), "a");
    assert_eq!(
        store.init_meta("k", "b").unwrap(),
        "a",
        "init_meta must not overwrite"
    );
    assert_eq!(store.meta("k").unwrap().as_deref(), Some("a"));
}

/// Appends get consecutive indices, rows read back exactly, and the chain links.
pub fn appends_are_dense_and_chained(store: DynStore) {
    store.migrate().expect("migrate");
    let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    let a = ledger.append(&sample_entries(5)).unwrap();
    let b = ledger.append(&sample_entries(40)).unwrap();
    assert_eq!((a.first_index, b.first_index, b.head.size), (0, 5, 45));
    let mut prev = Hash::ZERO;
    let mut n = 0;
    let h = ledger.hasher();
    let mut buf = Vec::new();
    store
        .scan_entries(0..100, &mut |r| {
            assert_eq!(r.entry.index, n, "rows must come back in index order");
            assert_eq!(r.prev_hash, prev.0, "prev_hash of {n}");
            let leaf = r.entry.leaf_hash(h, &mut buf);
            assert_eq!(r.hash, h.chain(&prev, &leaf).0, "hash of {n}");
            prev = Hash::from_slice(r.hash).unwrap();
            n += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 45);
    assert_eq!(store.head().unwrap().last_hash, prev);
    assert_eq!(store.last_entry_index().unwrap(), Some(44));
    let e = ledger.entry(7).unwrap();
    assert_eq!(e.entry.detail, "{\"i\":2}");
    assert_eq!(ledger.entry(99).unwrap_err().kind(), ErrorKind::NotFound);
}

/// Stored tiles give the same roots and proofs as the leaves themselves.
pub fn tiles_serve_proofs(store: DynStore) {
    store.migrate().expect("migrate");
    let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    for n in [1usize, 15, 1, 300, 17] {
        ledger.append(&sample_entries(n)).unwrap();
    }
    let size = store.head().unwrap().size;
    let h = ledger.hasher();
    let mut leaves = Vec::new();
    let mut buf = Vec::new();
    store
        .scan_entries(0..size, &mut |r| {
            leaves.push(r.entry.leaf_hash(h, &mut buf));
            Ok(())
        })
        .unwrap();
    let nodes = TileNodes::new(&*store, h);
    for s in [1, 2, 16, 17, 255, 256, 257, size] {
        assert_eq!(
            merkle::root(&nodes, h, s).unwrap(),
            merkle::root_from_leaves(h, &leaves[..s as usize]),
            "root at {s}"
        );
    }
    let root = ledger.root_at(size).unwrap();
    for i in [0, 1, 16, 200, size - 1] {
        let p = ledger.inclusion_proof(i, size).unwrap();
        merkle::verify_inclusion(h, i, size, &leaves[i as usize], &p, &root).unwrap();
    }
    let old = ledger.root_at(100).unwrap();
    let p = ledger.consistency_proof(100, size).unwrap();
    merkle::verify_consistency(h, 100, size, &old, &root, &p).unwrap();
}

fn record(size: u64, start: u64) -> CheckpointRecord {
    CheckpointRecord {
        size,
        range_start: start,
        range_count: size - start,
        root: Hash([size as u8; 32]),
        note: format!("note {size}\n"),
        created_at: crate::entry::now_timestamp(),
        extra_signatures: vec![crate::ExtraSignature {
            scheme: "sshsig".into(),
            key_name: "k".into(),
            signature: "sig".into(),
        }],
        receipts: Vec::new(),
    }
}

/// Checkpoints come back by size; a smaller or equal one is a conflict; receipts attach.
pub fn checkpoints_are_ordered(store: DynStore) {
    store.migrate().expect("migrate");
    store.add_checkpoint(&record(10, 0)).unwrap();
    store.add_checkpoint(&record(25, 10)).unwrap();
    let e = store.add_checkpoint(&record(25, 10)).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Conflict,
        "equal size must conflict: {e}"
    );
    assert_eq!(
        store.add_checkpoint(&record(20, 10)).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    // Larger, but computed from an older newest checkpoint (another writer stored 25 meanwhile).
    let e = store.add_checkpoint(&record(30, 10)).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Conflict,
        "a stale range must conflict: {e}"
    );
    let all = store.checkpoints().unwrap();
    assert_eq!(all.iter().map(|c| c.size).collect::<Vec<_>>(), vec![10, 25]);
    assert_eq!(all[1], record_like(&all[1], 25, 10));
    let r = Receipt {
        anchor: "memory".into(),
        target: "t".into(),
        body: "b".into(),
        created_at: "x".into(),
    };
    store.add_receipt(25, &r).unwrap();
    assert_eq!(
        store.latest_checkpoint().unwrap().unwrap().receipts,
        vec![r]
    );
    assert_eq!(
        store
            .add_receipt(
                11,
                &Receipt {
                    anchor: "m".into(),
                    target: "t".into(),
                    body: "b".into(),
                    created_at: "x".into()
                }
            )
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

fn record_like(got: &CheckpointRecord, size: u64, start: u64) -> CheckpointRecord {
    CheckpointRecord {
        created_at: got.created_at.clone(),
        ..record(size, start)
    }
}

/// Integrity checks and exports are recorded, newest first.
pub fn audit_records_round_trip(store: DynStore) {
    store.migrate().expect("migrate");
    for s in ["ok", "violation"] {
        store
            .record_integrity_check(&IntegrityCheck {
                check_type: "full".into(),
                status: s.into(),
                details: "{}".into(),
                started_at: "a".into(),
                completed_at: "b".into(),
            })
            .unwrap();
    }
    let c = store.integrity_checks(10).unwrap();
    assert_eq!(
        c.iter().map(|c| c.status.as_str()).collect::<Vec<_>>(),
        ["violation", "ok"]
    );
    let x = crate::store::AuditExport {
        export_type: "json".into(),
        filename: "f".into(),
        file_hash: "00".into(),
        start: 0,
        end: 9,
        exported_at: "t".into(),
        exported_by: "me".into(),
    };
    store.record_export(&x).unwrap();
    assert_eq!(store.exports(5).unwrap(), vec![x]);
}

/// Appends from several threads produce one dense, linear, verifiable chain.
pub fn concurrent_appends_keep_one_chain(store: DynStore) {
    store.migrate().expect("migrate");
    let ledger = Arc::new(Ledger::open(store.clone(), LedgerOptions::default()).unwrap());
    std::thread::scope(|s| {
        for _ in 0..4 {
            let l = ledger.clone();
            s.spawn(move || {
                for _ in 0..25 {
                    l.append(&sample_entries(3)).unwrap();
                }
            });
        }
    });
    assert_eq!(store.head().unwrap().size, 300);
    let report = verify_store(&*store, ledger.hasher(), None, &VerifyOptions::default()).unwrap();
    assert!(report.valid, "{:?}", report.violations);
    assert_eq!(report.entries_checked, 300);
}

/// Concurrent single appends through [`crate::group_commit::GroupCommit`]: every caller gets a
/// distinct index, acknowledged entries are all there, and the chain verifies.
pub fn group_commit_keeps_one_chain(store: DynStore) {
    store.migrate().expect("migrate");
    let ledger = Arc::new(Ledger::open(store.clone(), LedgerOptions::default()).unwrap());
    let gc = crate::group_commit::GroupCommit::new(ledger.clone());
    let mut got: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|t| {
                let gc = &gc;
                s.spawn(move || {
                    (0..25)
                        .map(|i| {
                            gc.append(NewEntry::new(
                                "gc",
                                "test.single",
                                format!("{{\"t\":{t},\"i\":{i}}}"),
                            ))
                            .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    got.sort_unstable();
    assert_eq!(
        got,
        (0..400).collect::<Vec<_>>(),
        "every acknowledged entry has its own index"
    );
    let bad = gc.append(NewEntry::new("", "a", "{}")).unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    assert_eq!(store.head().unwrap().size, 400);
    let report = verify_store(&*store, ledger.hasher(), None, &VerifyOptions::default()).unwrap();
    assert!(report.valid, "{:?}", report.violations);
}

/// Automatic checkpoints signed while other threads, and another `Ledger` on the same store
/// (as another process would be), keep appending: every append succeeds, every checkpoint is
/// made, and they all verify. (A checkpoint once read the head and the stored rows apart and
/// refused to sign when an append landed in between, failing an append already committed.)
pub fn checkpoints_while_appending(store: DynStore) {
    store.migrate().expect("migrate");
    let signer = crate::testkit_tamper::test_signer("example.com/busy");
    let open = || {
        let mut l = Ledger::open(
            store.clone(),
            LedgerOptions {
                hasher: None,
                checkpoint_every: 10,
            },
        )
        .unwrap();
        l.add_signer(signer.clone()).unwrap();
        Arc::new(l)
    };
    let (a, b) = (open(), open());
    std::thread::scope(|s| {
        for t in 0..4 {
            let l = if t % 2 == 0 { a.clone() } else { b.clone() };
            s.spawn(move || {
                for i in 0..100 {
                    let o = l
                        .append(&sample_entries(1))
                        .unwrap_or_else(|e| panic!("writer {t}, append {i}: {e}"));
                    assert_eq!(
                        o.checkpoint_error, None,
                        "writer {t}, append {i}: the automatic checkpoint failed"
                    );
                }
            });
        }
    });
    assert_eq!(store.head().unwrap().size, 400);
    let cps = store.checkpoints().unwrap();
    assert!(cps.len() >= 10, "only {} checkpoints were made", cps.len());
    let report = verify_store(
        &*store,
        a.hasher(),
        None,
        &VerifyOptions {
            verifiers: vec![signer.verifier()],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(report.valid, "{:?}", report.violations);
    assert_eq!(report.checkpoints_checked, cps.len() as u64);
}

/// A batch with one bad entry writes nothing.
pub fn failed_append_writes_nothing(store: DynStore) {
    store.migrate().expect("migrate");
    let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    ledger.append(&sample_entries(2)).unwrap();
    let mut batch = sample_entries(3);
    batch[1].detail = "{broken".into();
    let e = ledger.append(&batch).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("batch item: 1"), "{e}");
    assert_eq!(store.head().unwrap().size, 2);
    assert_eq!(store.last_entry_index().unwrap(), Some(1));
    let mut rows = 0;
    store
        .scan_entries(0..u64::MAX, &mut |_| {
            rows += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(rows, 2, "a failed batch must write no row");
}

/// Checks a signer: signatures verify with its verifier and fail on other bytes.
pub fn signer_conformance(signer: &dyn Signer) {
    let v = signer.verifier();
    assert_eq!(v.key_name(), signer.key_name());
    assert_eq!(v.note_key_id(), signer.note_key_id());
    let msg = b"example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    let sig = signer.sign(msg).unwrap();
    v.verify(msg, &sig).unwrap();
    let mut other = msg.to_vec();
    other[0] ^= 1;
    assert!(
        v.verify(&other, &sig).is_err(),
        "a signature must not verify other bytes"
    );
    let mut bad = sig.clone();
    bad[0] ^= 1;
    assert!(
        v.verify(msg, &bad).is_err(),
        "an altered signature must not verify"
    );
}

/// Runs the hasher-independent ledger flow with a signer on a fresh store: checkpoint, a
/// refused checkpoint after tampering, verify.
pub fn ledger_with_signer(store: DynStore, signer: Arc<dyn Signer>) {
    store.migrate().expect("migrate");
    let mut ledger = Ledger::open(
        store.clone(),
        LedgerOptions {
            checkpoint_every: 10,
            ..Default::default()
        },
    )
    .unwrap();
    ledger.add_signer(signer.clone()).unwrap();
    let out = ledger.append(&sample_entries(25)).unwrap();
    let cp = out
        .checkpoint
        .expect("crossing a multiple of N makes a checkpoint");
    assert_eq!((cp.size, cp.range_start, cp.range_count), (25, 0, 25));
    let again = ledger.checkpoint().unwrap();
    assert!(!again.created, "nothing new to checkpoint");
    ledger.append(&sample_entries(3)).unwrap();
    let c2 = ledger.checkpoint().unwrap();
    assert!(c2.created);
    assert_eq!((c2.record.range_start, c2.record.range_count), (25, 3));
    let report = verify_store(
        &*store,
        ledger.hasher(),
        ledger.origin(),
        &VerifyOptions {
            verifiers: vec![signer.verifier()],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(report.valid, "{:?}", report.violations);
    assert_eq!(report.checkpoints_checked, 2);
}

fn open_memory(store: &DynStore) -> AgentMemory {
    store.migrate().expect("migrate");
    AgentMemory::new(Arc::new(
        Ledger::open(store.clone(), LedgerOptions::default()).unwrap(),
    ))
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
    let now = crate::entry::now_timestamp();
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
    let mut ix = crate::bm25::Bm25Index::new();
    for (i, (_, c, t)) in texts.iter().enumerate() {
        let tags: Vec<String> = t.iter().map(|s| s.to_string()).collect();
        ix.add(i as u64, &crate::bm25::index_text(c, &tags));
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
        let mut want = ix.score(&crate::bm25::query_terms(q));
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
    let want = crate::consensus::consensus(votes.iter().map(|v| (v.vote, v.weight)));
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
        let r = m
            .ledger()
            .append_with(&entry, &mut |_, _| Ok(vec![bad.clone()]));
        assert!(r.is_err(), "{bad:?} must be refused");
    }
    let r = m.ledger().append_with(&entry, &mut |tx, _| {
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

/// Rebuilds the memory from ledger entries with the rules of `crate::consensus`.
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
                let fx = crate::consensus::cast(
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
    let indexed = AgentMemory::new(plain.ledger().clone()).with_search_index();
    // Another "process": its own ledger handle and its own index over the same store.
    let other = AgentMemory::new(Arc::new(
        Ledger::open(store.clone(), LedgerOptions::default()).unwrap(),
    ))
    .with_search_index();
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
