//! The ledger flow with a real Ed25519 signer on the in-memory store: automatic, on-demand and
//! timed checkpoints, origin rules, and verification.

use cortex_core::testkit::{ledger_with_signer, sample_entries};
use cortex_core::{
    InMemoryStore, Ledger, LedgerOptions, LedgerStore, Signer, VerifyOptions, verify_store,
};
use cortex_ed25519::Ed25519Signer;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn signer_conformance_on_the_memory_store() {
    let signer = Arc::new(Ed25519Signer::generate("example.com/flow").unwrap());
    ledger_with_signer(Arc::new(InMemoryStore::new()), signer);
}

#[test]
fn the_timer_checkpoints_new_entries_and_stops_when_dropped() {
    let store = Arc::new(InMemoryStore::new());
    let signer = Arc::new(Ed25519Signer::generate("example.com/timer").unwrap());
    let mut ledger = Ledger::open(
        store.clone(),
        LedgerOptions {
            hasher: None,
            checkpoint_every: 0,
        },
    )
    .unwrap();
    ledger.add_signer(signer.clone()).unwrap();
    let ledger = Arc::new(ledger);
    let timer = ledger.spawn_checkpoint_timer(Duration::from_millis(20));
    ledger.append(&sample_entries(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let size = || store.latest_checkpoint().unwrap().map(|c| c.size);
    while size() != Some(5) {
        assert!(
            Instant::now() < deadline,
            "the timer made no checkpoint of 5 entries"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    ledger.append(&sample_entries(3)).unwrap();
    while size() != Some(8) {
        assert!(
            Instant::now() < deadline,
            "the timer made no checkpoint of 8 entries"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(timer.made_checkpoint());
    assert_eq!(timer.last_error(), None);
    drop(timer);
    ledger.append(&sample_entries(2)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(size(), Some(8), "a dropped timer must stop");
    let ranges: Vec<_> = store
        .checkpoints()
        .unwrap()
        .iter()
        .map(|c| (c.range_start, c.range_count))
        .collect();
    assert_eq!(ranges, vec![(0, 5), (5, 3)]);
    let opts = VerifyOptions {
        verifiers: vec![signer.verifier()],
        ..Default::default()
    };
    let report = verify_store(&*store, ledger.hasher(), ledger.origin(), &opts).unwrap();
    assert!(report.valid, "{:?}", report.violations);
}

#[test]
fn a_key_named_other_than_the_origin_is_refused() {
    let store = Arc::new(InMemoryStore::new());
    let mut ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    ledger
        .add_signer(Arc::new(
            Ed25519Signer::generate("example.com/one").unwrap(),
        ))
        .unwrap();
    let mut again = Ledger::open(store, LedgerOptions::default()).unwrap();
    let other = Arc::new(Ed25519Signer::generate("example.com/two").unwrap());
    let e = again.add_signer(other).unwrap_err();
    assert!(e.to_string().contains("example.com/one"), "{e}");
    let blake3 = LedgerOptions {
        hasher: Some(cortex_core::HashAlgorithm::Blake3),
        checkpoint_every: 0,
    };
    let mut b = Ledger::open(Arc::new(InMemoryStore::new()), blake3).unwrap();
    let e = b
        .add_signer(Arc::new(
            Ed25519Signer::generate("example.com/sha").unwrap(),
        ))
        .unwrap_err();
    assert!(e.to_string().contains("/blake3"), "{e}");
}

#[test]
fn verify_names_a_row_altered_in_memory() {
    let store = Arc::new(InMemoryStore::new());
    let signer = Arc::new(Ed25519Signer::generate("example.com/short").unwrap());
    let mut ledger = Ledger::open(
        store.clone(),
        LedgerOptions {
            hasher: None,
            checkpoint_every: 0,
        },
    )
    .unwrap();
    ledger.add_signer(signer.clone()).unwrap();
    ledger.append(&sample_entries(10)).unwrap();
    ledger.checkpoint().unwrap();
    store
        .tamper_entry(3, |e| e.entry.detail = "{\"forged\":true}".into())
        .unwrap();
    let opts = VerifyOptions {
        verifiers: vec![signer.verifier()],
        ..Default::default()
    };
    let report = verify_store(&*store, ledger.hasher(), ledger.origin(), &opts).unwrap();
    let first = report.first_violation().map(|v| (v.kind.name(), v.index));
    assert_eq!(first, Some(("altered_entry", Some(3))));
}
