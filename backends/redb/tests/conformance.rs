//! The redb backend against core's conformance suite, plus what only a file-backed store can
//! show: bad files are refused clearly, and data survives closing and reopening.

use cortex_core::{
    AgentMemory, DynStore, ErrorKind, FactStore, Ledger, LedgerOptions, LedgerStore, NewFact,
    SearchQuery, Signer, VerifyOptions, verify_store,
};
use cortex_ed25519::Ed25519Signer;
use cortex_redb::RedbStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

#[test]
fn redb_store_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicU32::new(0);
    cortex_core::testkit::store_conformance(&|| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        Arc::new(RedbStore::open(&dir.path().join(format!("t{i}.redb"))).unwrap())
    });
}

#[test]
fn corrupt_and_foreign_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // Not a redb file at all.
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let e = RedbStore::open(&junk).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("not a usable redb database"), "{e}");
    // A redb header followed by garbage.
    let bad = dir.path().join("bad.redb");
    let mut bytes = b"redb\x1a\x0a\xa9\x0d\x0a".to_vec();
    bytes.extend(std::iter::repeat_n(0xA5u8, 8192));
    std::fs::write(&bad, bytes).unwrap();
    let e = RedbStore::open(&bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("not a usable redb database"), "{e}");
    // URLs.
    let e = RedbStore::open_url("redb://").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("names no database file"), "{e}");
    let e = RedbStore::open_url("sqlite:///x.db").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let e =
        RedbStore::open_url(&format!("redb://{}/x.redb?fast=1", dir.path().display())).unwrap_err();
    assert!(e.to_string().contains("take no options"), "{e}");
}

#[test]
fn a_second_handle_on_one_file_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.redb");
    let _first = RedbStore::open(&path).unwrap();
    let e = RedbStore::open(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[test]
fn data_survives_close_and_reopen_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redb://{}/sub/ledger.redb", dir.path().display());
    let signer = Arc::new(Ed25519Signer::generate("example.com/redb").unwrap());
    let (head, id, hits) = {
        let store: DynStore = Arc::new(RedbStore::open_url(&url).unwrap());
        let mut ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
        ledger.add_signer(signer.clone()).unwrap();
        let ledger = Arc::new(ledger);
        ledger
            .append(&cortex_core::testkit::sample_entries(40))
            .unwrap();
        ledger.checkpoint().unwrap();
        let memory = AgentMemory::new(store.clone(), ledger).unwrap();
        let id = memory
            .store_fact(&NewFact::new("p", "the redb file keeps this fact"))
            .unwrap()
            .facts[0]
            .id;
        memory
            .store_fact(&NewFact::new("p", "another fact about files"))
            .unwrap();
        memory.vote(id, "agent-a", 1, None).unwrap();
        let hits = store
            .search_facts(&SearchQuery::new("redb fact").resolve().unwrap())
            .unwrap();
        (store.head().unwrap(), id, hits)
    };
    let store = RedbStore::open_url(&url).unwrap();
    assert_eq!(
        store.migrate().unwrap(),
        cortex_core::ledger::store::MigrationReport {
            from_version: cortex_redb::latest_schema_version(),
            to_version: cortex_redb::latest_schema_version()
        }
    );
    assert_eq!(store.head().unwrap(), head);
    assert_eq!(store.memory_version().unwrap(), 3);
    assert_eq!(store.votes(id).unwrap().len(), 1);
    assert_eq!(store.fact_history(id).unwrap().len(), 2);
    assert_eq!(store.checkpoints().unwrap().len(), 1);
    let again = store
        .search_facts(&SearchQuery::new("redb fact").resolve().unwrap())
        .unwrap();
    assert_eq!(again, hits, "the search index is rebuilt identically");
    let store: DynStore = Arc::new(store);
    let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
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
    assert_eq!(report.entries_checked, head.size);
    assert_eq!(report.checkpoints_checked, 1);
}

#[test]
fn a_row_altered_in_the_file_is_reported_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tamper.redb");
    let hasher_origin = {
        let store: DynStore = Arc::new(RedbStore::open(&path).unwrap());
        let ledger = Ledger::open(store, LedgerOptions::default()).unwrap();
        ledger
            .append(&cortex_core::testkit::sample_entries(10))
            .unwrap();
        ledger.origin().map(str::to_owned)
    };
    {
        // Someone with write access to the file changes one byte of row 5's timestamp.
        const ENTRIES: redb::TableDefinition<&[u8; 8], &[u8]> =
            redb::TableDefinition::new("entries");
        use redb::ReadableTable;
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(ENTRIES).unwrap();
            let mut row = t
                .get(&5u64.to_be_bytes())
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            row[1 + 4 + 3] ^= 0x01;
            t.insert(&5u64.to_be_bytes(), &row[..]).unwrap();
        }
        tx.commit().unwrap();
    }
    let store: DynStore = Arc::new(RedbStore::open(&path).unwrap());
    let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    let report = verify_store(
        &*store,
        ledger.hasher(),
        hasher_origin.as_deref(),
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(!report.valid, "tampering must be found");
    assert!(
        report.violations.iter().any(|v| v.index == Some(5)),
        "{:?}",
        report.violations
    );
}
