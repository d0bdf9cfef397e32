//! A shared deployment: PostgreSQL storage, BLAKE3 leaves, an Ed25519 checkpoint signer, the agent
//! memory with Postgres full-text search, an offline proof and a full verification. Several
//! processes (or hosts) can run this against one database at once: appends serialize on the
//! ledger's head row, so they form one chain.
//!
//! Run: `cargo run --release --example postgres_blake3 [POSTGRES_URL]`
//!
//! The URL defaults to `$CORTEX_POSTGRES_URL`, then to
//! `postgres://postgres@127.0.0.1:5432/postgres`. The example works in a schema of its own
//! (`?schema=cortex_example_<pid>`, dropped at the end) unless the URL names one, in which case
//! it is kept.

use cortex_core::ledger::checkpoint::BLAKE3_ORIGIN_SUFFIX;
use cortex_core::{
    AgentMemory, HashAlgorithm, Ledger, LedgerOptions, NewEntry, NewFact, ProofFile, SearchQuery,
    Signer, VerifyOptions, verify_store,
};
use cortex_ed25519::Ed25519Signer;
use cortex_postgres::{PostgresConfig, PostgresStore};
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CORTEX_POSTGRES_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut config = PostgresConfig::from_url(&url)?;
    let own_schema = config.schema.is_none();
    if own_schema {
        config.schema = Some(format!("cortex_example_{}", std::process::id()));
    }
    println!(
        "database: {} (schema {})",
        cortex_postgres::redact(&url),
        config.schema.as_deref().unwrap_or("?")
    );

    // 1. Storage: a connection pool; `Ledger::open` creates or migrates the tables.
    let store = Arc::new(PostgresStore::open(config)?);

    // 2. The ledger: BLAKE3 leaves, a checkpoint every 1,000 entries.
    let mut ledger = Ledger::open(
        store.clone(),
        LedgerOptions {
            hasher: Some(HashAlgorithm::Blake3),
            checkpoint_every: 1000,
        },
    )?;

    // 3. The checkpoint signer. BLAKE3 origins end in /blake3, so their roots can never be
    //    mistaken for SHA-256 roots. A real deployment loads its key from a file (see
    //    `cortex keys generate`); every process appending to the same ledger signs with it.
    let signer = Arc::new(Ed25519Signer::generate(&format!(
        "example.com/shared{BLAKE3_ORIGIN_SUFFIX}"
    ))?);
    ledger.add_signer(signer.clone())?;
    let ledger = Arc::new(ledger);

    // 4. Audit entries, appended in batches of 1,000 (each batch one transaction).
    let n = 10_000u64;
    let t = Instant::now();
    for start in (0..n).step_by(1000) {
        let batch: Vec<NewEntry> = (start..start + 1000)
            .map(|i| {
                NewEntry::new(
                    "billing",
                    "invoice.issued",
                    format!(r#"{{"invoice":{i},"amount_cents":{}}}"#, 1000 + i),
                )
            })
            .collect();
        ledger.append(&batch)?;
    }
    let append_s = t.elapsed().as_secs_f64();
    println!(
        "appended {n} entries in {:.0} ms ({:.0} entries/s)",
        append_s * 1e3,
        n as f64 / append_s
    );

    // 5. Agent memory on the same ledger: facts are ledger entries too, searchable with BM25
    //    (Postgres full-text search picks the candidates, scores match core's formula).
    let memory = AgentMemory::new(store.clone(), ledger.clone())?;
    let facts: Vec<NewFact> = [
        "invoices are issued on the first business day of the month",
        "refunds over 500 EUR need a second approver",
        "the billing service retries failed card payments three times",
        "late invoices get a reminder after 14 days",
    ]
    .into_iter()
    .map(|c| NewFact::new("billing", c))
    .collect();
    let stored = memory.store_facts(&facts)?;
    println!(
        "stored {} facts (ids {}..={})",
        stored.facts.len(),
        stored.facts[0].id,
        stored.facts[stored.facts.len() - 1].id
    );
    let t = Instant::now();
    let hits = memory.search(&SearchQuery::new("invoices reminder days"))?;
    println!(
        "search \"invoices reminder days\": {} hits in {:.2} ms",
        hits.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    for h in &hits {
        println!("  {:.3}  {}", h.score, h.fact.content);
    }

    // 6. A checkpoint and an offline-verifiable proof for one entry (c2sp.org/tlog-proof@v1).
    let cp = ledger.checkpoint()?.record;
    println!("checkpoint of {} entries:\n{}", cp.size, cp.note);
    let (proof, _) = ledger.proof_file(4242)?;
    let verifier = signer.verifier();
    let (checked, _) = ProofFile::parse(&proof.to_text())?.verify(&[&*verifier])?;
    println!(
        "proof of entry {} verifies: {}",
        checked.index, checked.detail
    );

    // 7. Full verification: every row, the chain, the tiles, every checkpoint signature.
    let report = verify_store(
        &*store,
        ledger.hasher(),
        ledger.origin(),
        &VerifyOptions {
            verifiers: vec![verifier],
            record: true,
            ..Default::default()
        },
    )?;
    println!(
        "verify: valid={} entries={} checkpoints={} ({:.1} ms, {:.0} entries/s)",
        report.valid,
        report.entries_checked,
        report.checkpoints_checked,
        report.elapsed_ms,
        report.entries_checked as f64 / (report.elapsed_ms / 1e3)
    );
    if !report.valid {
        return Err(format!("the ledger does not verify: {:?}", report.violations).into());
    }

    if own_schema {
        store.drop_schema()?;
        println!("dropped the example's schema");
    }
    Ok(())
}
