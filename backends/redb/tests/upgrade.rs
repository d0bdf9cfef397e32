//! A database written by the previous schema (version 1: facts without author, surface or
//! erasure, no openings) is upgraded in place: its facts read back with those fields unset, the
//! whole memory verifies against the ledger, and new facts (sealed, with an author) are stored,
//! voted on, erased and verified beside the old ones.
//!
//! `tests/fixtures/schema-1.redb` was written by the code of commit 3d006a2 (the last with
//! schema 1), with this program run as an example of `cortex-redb`, then compacted with
//! `redb::Database::compact`:
//!
//! ```text
//! let store: DynStore = Arc::new(RedbStore::open(path)?);
//! let ledger = Arc::new(Ledger::open(store.clone(), LedgerOptions::default())?);
//! ledger.append(&cortex_core::testkit::sample_entries(5))?;             // entries 0..5
//! let m = AgentMemory::new(store.clone(), ledger)?;
//! m.store_facts(&[                                                       // facts 5, 6, 7
//!     NewFact { tags: vec!["db".into(), "ops".into()],
//!               source: Some("https://example.com/adr/1".into()),
//!               ..NewFact::new("p", "We use redb for the embedded store") },
//!     NewFact::new("p", "Facts written before authors existed"),
//!     NewFact::new("q", "Another project's fact about redb"),
//! ])?;
//! m.vote(5, "alice", 1, Some("agreed"))?;                                // entry 8
//! m.vote(5, "bob", -1, None)?;                                           // entry 9
//! m.deprecate(6, Some("superseded"))?;                                   // entry 10
//! ```

use cortex_core::memory::audit;
use cortex_core::memory::fact::Author;
use cortex_core::memory::store::MemoryRow;
use cortex_core::{
    AgentMemory, DynStore, ErrorKind, Ledger, LedgerOptions, LedgerStore, NewFact, SearchQuery,
    VerifyOptions,
};
use cortex_redb::{RedbStore, latest_schema_version};
use std::sync::Arc;

fn verify_memory(store: &DynStore, ledger: &Ledger) -> cortex_core::VerifyReport {
    let report = audit::verify(
        &**store,
        ledger.hasher(),
        ledger.origin(),
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(report.valid, "{:#?}", report.violations);
    report
}

#[test]
fn a_schema_1_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    std::fs::copy("tests/fixtures/schema-1.redb", &path).unwrap();
    {
        // The fixture really is at schema 1, with records tagged 1.
        const SCHEMA: redb::TableDefinition<&str, u32> =
            redb::TableDefinition::new("cortex_schema");
        const FACTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("facts");
        use redb::ReadableDatabase;
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_read().unwrap();
        let version = tx.open_table(SCHEMA).unwrap().get("version").unwrap();
        assert_eq!(version.unwrap().value(), 1);
        let facts = tx.open_table(FACTS).unwrap();
        assert_eq!(facts.get(5).unwrap().unwrap().value()[0], 1);
    }

    let redb = RedbStore::open(&path).unwrap();
    let report = redb.migrate().unwrap();
    assert_eq!(report.to_version, latest_schema_version());
    let store: DynStore = Arc::new(redb);
    assert_eq!(store.head().unwrap().size, 11);
    assert_eq!(store.memory_version().unwrap(), 4);

    // Old facts read back with the new fields unset, and no openings (their content is in
    // their own entries).
    let old = store.fact(5).unwrap().unwrap();
    assert_eq!(old.content, "We use redb for the embedded store");
    assert_eq!(old.tags, ["db", "ops"]);
    assert_eq!((old.author, old.surface, old.erased_at), (None, None, None));
    assert_eq!(store.opening(5).unwrap(), None);
    assert!(store.fact(6).unwrap().unwrap().is_deprecated());
    assert_eq!(store.votes(5).unwrap().len(), 2);
    let mut rows = 0;
    store
        .scan_memory(&mut |row| {
            assert!(!matches!(row, MemoryRow::Undecodable { .. }), "{row:?}");
            rows += 1;
            Ok(())
        })
        .unwrap();
    assert!(rows > 1);

    let ledger = Arc::new(Ledger::open(store.clone(), LedgerOptions::default()).unwrap());
    let first = verify_memory(&store, &ledger);
    let checked = first.memory.unwrap();
    assert_eq!((checked.facts, checked.votes, checked.agents), (3, 2, 2));

    // New facts beside the old ones: sealed, with an author; one is erased.
    let m = AgentMemory::new(store.clone(), ledger.clone())
        .unwrap()
        .as_author(Author::new(Some("agent-7"), "test"))
        .unwrap();
    let s = m
        .store_facts(&[
            NewFact::new("p", "A new fact about redb after the upgrade"),
            NewFact::new("p", "A secret about redb to forget"),
        ])
        .unwrap();
    let (kept, secret) = (s.facts[0].id, s.facts[1].id);
    m.vote(kept, "alice", 1, None).unwrap();
    let stored = store.fact(kept).unwrap().unwrap();
    assert_eq!(stored.author.as_deref(), Some("agent-7"));
    assert_eq!(stored.surface.as_deref(), Some("test"));
    assert!(store.opening(kept).unwrap().is_some());
    m.forget(secret, "asked to").unwrap();
    let erased = store.fact(secret).unwrap().unwrap();
    assert!(erased.is_erased() && erased.content.is_empty());
    assert_eq!(store.opening(secret).unwrap(), None);
    // An old (plain) fact cannot be erased: its content is its ledger entry.
    assert_eq!(
        m.forget(5, "asked to").unwrap_err().kind(),
        ErrorKind::Conflict
    );

    let hits = store
        .search_facts(&SearchQuery::new("redb").resolve().unwrap())
        .unwrap();
    let ids: Vec<u64> = hits.iter().map(|h| h.fact.id).collect();
    assert!(
        ids.contains(&kept) && ids.contains(&5) && !ids.contains(&secret),
        "{ids:?}"
    );
    let by_agent = store
        .search_facts(
            &SearchQuery {
                author: Some("agent-7".into()),
                ..SearchQuery::new("redb")
            }
            .resolve()
            .unwrap(),
        )
        .unwrap();
    assert_eq!(
        by_agent.iter().map(|h| h.fact.id).collect::<Vec<_>>(),
        [kept]
    );

    let after = verify_memory(&store, &ledger).memory.unwrap();
    assert_eq!((after.facts, after.facts_erased), (5, 1));
    assert_eq!(after.commitments_checked, 1);

    // Reopened, the search index is built again without the erased fact.
    drop((m, ledger));
    let hits_before = hits;
    drop(store);
    let store: DynStore = Arc::new(RedbStore::open(&path).unwrap());
    let again = store
        .search_facts(&SearchQuery::new("redb").resolve().unwrap())
        .unwrap();
    assert_eq!(again, hits_before);
}
