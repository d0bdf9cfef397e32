//! Measures `verify` of the ledger and the agent memory on PostgreSQL, and the memory scan on
//! its own: `cargo run --release -p cortex-postgres --example verify_memory -- [ENTRIES]
//! [FACTS]` (defaults 1,000,000 and 100,000). Uses `CORTEX_TEST_POSTGRES_URL` or the tests'
//! throwaway cluster, seeds a schema of its own once (`cortex_verify_memory_E_F`, kept for the
//! next run; drop it by hand) and prints what it measured.

use cortex_core::memory::store::MemoryRow;
use cortex_core::{AgentMemory, DynStore, LedgerOptions, NewEntry, NewFact, VerifyOptions};
use cortex_postgres::PostgresStore;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (entries, facts) = (arg(1, 1_000_000), arg(2, 100_000));
    let url = cortex_core::testkit::peers::postgres_url().expect("a PostgreSQL server");
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}schema=cortex_verify_memory_{entries}_{facts}");
    let store: DynStore = Arc::new(PostgresStore::open_url(&url).unwrap());
    let memory = AgentMemory::open(store.clone(), LedgerOptions::default()).unwrap();
    if store.head().unwrap().size == 0 {
        let t = Instant::now();
        for from in (0..entries).step_by(10_000) {
            let batch: Vec<NewEntry> = (from..(from + 10_000).min(entries))
                .map(|i| {
                    NewEntry::new(
                        "bench",
                        "audit.event",
                        format!(r#"{{"event":{i},"detail":"benchmark ledger entry {i}"}}"#),
                    )
                })
                .collect();
            memory.ledger().append(&batch).unwrap();
        }
        for from in (0..facts).step_by(10_000) {
            let batch: Vec<NewFact> = (from..(from + 10_000).min(facts))
                .map(|i| {
                    NewFact::new(
                        format!("project{}", i % 10),
                        format!(
                            "agent note {i} about topic{} w{} w{}",
                            i % 50,
                            i % 997,
                            i % 5003
                        ),
                    )
                })
                .collect();
            memory.store_facts(&batch).unwrap();
        }
        eprintln!("seeded in {:.1} s", t.elapsed().as_secs_f64());
    }
    let size = store.head().unwrap().size;
    for _ in 0..3 {
        let t = Instant::now();
        let mut rows = 0u64;
        store
            .scan_memory(&mut |row| {
                if let MemoryRow::Undecodable { .. } = row {
                    panic!("{row:?}");
                }
                rows += 1;
                Ok(())
            })
            .unwrap();
        let scan = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let ledger = cortex_core::verify_store(
            &*store,
            memory.ledger().hasher(),
            None,
            &VerifyOptions::default(),
        )
        .unwrap();
        let ledger_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let report = memory.verify(&VerifyOptions::default()).unwrap();
        let full = t.elapsed().as_secs_f64();
        assert!(ledger.valid && report.valid, "{:?}", report.violations);
        println!(
            "{size} entries, {facts} facts: memory scan {rows} rows in {scan:.3} s; \
             ledger verify {ledger_s:.3} s ({:.0} entries/s); full verify {full:.3} s \
             ({:.0} entries/s)",
            size as f64 / ledger_s,
            size as f64 / full
        );
    }
}
