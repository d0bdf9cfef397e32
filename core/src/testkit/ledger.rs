//! The ledger conformance suite: what [`Ledger`], [`verify_store`] and the proofs rely on from a
//! [`LedgerStore`](crate::ledger::store::LedgerStore), and the signer checks. A ledger-only store runs
//! [`ledger_conformance`]; a full store runs it through [`super::store_conformance`].

use super::sample_entries;
use crate::error::ErrorKind;
use crate::ledger::checkpoint::{CheckpointRecord, Receipt};
use crate::ledger::entry::NewEntry;
use crate::ledger::hash::Hash;
use crate::ledger::merkle;
use crate::ledger::signer::Signer;
use crate::ledger::store::{DynLedgerStore, IntegrityCheck};
use crate::ledger::tiles::TileNodes;
use crate::ledger::verify::{VerifyOptions, verify_store};
use crate::ledger::{Ledger, LedgerOptions};
use std::sync::Arc;

/// Runs every ledger check against fresh stores made by `make`.
pub fn ledger_conformance(make: &dyn Fn() -> DynLedgerStore) {
    meta_is_set_once(make());
    appends_are_dense_and_chained(make());
    tiles_serve_proofs(make());
    checkpoints_are_ordered(make());
    audit_records_round_trip(make());
    concurrent_appends_keep_one_chain(make());
    group_commit_keeps_one_chain(make());
    checkpoints_while_appending(make());
    failed_append_writes_nothing(make());
}

/// `init_meta` is compare-and-set.
pub fn meta_is_set_once(store: DynLedgerStore) {
    store.migrate().expect("migrate");
    assert_eq!(store.meta("k").unwrap(), None);
    assert_eq!(store.init_meta("k", "a").unwrap(), "a");
    assert_eq!(
        store.init_meta("k", "b").unwrap(),
        "a",
        "init_meta must not overwrite"
    );
    assert_eq!(store.meta("k").unwrap().as_deref(), Some("a"));
    // Prefix listing, in key order, without neighbours on either side.
    for (k, v) in [
        ("p.b", "2"),
        ("p.a", "1"),
        ("p", "x"),
        ("q.a", "y"),
        ("o.z", "z"),
    ] {
        store.set_meta(k, v).unwrap();
    }
    store.set_meta("p.b", "3").unwrap();
    assert_eq!(
        store.meta_prefixed("p.").unwrap(),
        vec![("p.a".into(), "1".into()), ("p.b".into(), "3".into())]
    );
    assert_eq!(store.meta_prefixed("none.").unwrap(), vec![]);
}

/// Appends get consecutive indices, rows read back exactly, and the chain links.
pub fn appends_are_dense_and_chained(store: DynLedgerStore) {
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
pub fn tiles_serve_proofs(store: DynLedgerStore) {
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
        created_at: crate::ledger::entry::now_timestamp(),
        extra_signatures: vec![crate::ledger::checkpoint::ExtraSignature {
            scheme: "sshsig".into(),
            key_name: "k".into(),
            signature: "sig".into(),
        }],
        receipts: Vec::new(),
    }
}

/// Checkpoints come back by size; a smaller or equal one is a conflict; receipts attach.
pub fn checkpoints_are_ordered(store: DynLedgerStore) {
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
pub fn audit_records_round_trip(store: DynLedgerStore) {
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
    let x = crate::ledger::store::AuditExport {
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
pub fn concurrent_appends_keep_one_chain(store: DynLedgerStore) {
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

/// Concurrent single appends through [`crate::ledger::group_commit::GroupCommit`]: every caller gets a
/// distinct index, acknowledged entries are all there, and the chain verifies.
pub fn group_commit_keeps_one_chain(store: DynLedgerStore) {
    store.migrate().expect("migrate");
    let ledger = Arc::new(Ledger::open(store.clone(), LedgerOptions::default()).unwrap());
    let gc = crate::ledger::group_commit::GroupCommit::new(ledger.clone());
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
pub fn checkpoints_while_appending(store: DynLedgerStore) {
    store.migrate().expect("migrate");
    let signer = crate::testkit::tamper::test_signer("example.com/busy");
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
pub fn failed_append_writes_nothing(store: DynLedgerStore) {
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
pub fn ledger_with_signer(store: DynLedgerStore, signer: Arc<dyn Signer>) {
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
