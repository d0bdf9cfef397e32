//! Embedding the ledger as a library: a SQLite store, BLAKE3 leaves, an Ed25519 checkpoint
//! signer, an inclusion proof, and a full verification. Copy this to start a custom deployment.
//!
//! Run: `cargo run --example embedded_blake3 [DB_PATH]`

use cortex_core::ledger::checkpoint::BLAKE3_ORIGIN_SUFFIX;
use cortex_core::{
    HashAlgorithm, Ledger, LedgerOptions, NewEntry, ProofFile, Signer, VerifyOptions, verify_store,
};
use cortex_ed25519::Ed25519Signer;
use cortex_sqlite::{SqliteOptions, SqliteStore};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("cortex-example-{}", std::process::id()));
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| dir.join("ledger.db"), Into::into);

    // 1. Storage: embedded SQLite in WAL mode, power-loss durable commits.
    let store = Arc::new(SqliteStore::open(&path, SqliteOptions::default())?);

    // 2. The ledger: BLAKE3 leaves, a checkpoint every 100 entries.
    let mut ledger = Ledger::open(
        store.clone(),
        LedgerOptions {
            hasher: Some(HashAlgorithm::Blake3),
            checkpoint_every: 100,
        },
    )?;

    // 3. The checkpoint signer. Its key name is the log origin; BLAKE3 origins end in /blake3 so
    //    their roots can never be mistaken for SHA-256 roots.
    let signer = Arc::new(Ed25519Signer::generate(&format!(
        "example.com/audit{BLAKE3_ORIGIN_SUFFIX}"
    ))?);
    ledger.add_signer(signer.clone())?;

    // 4. Append a batch atomically; crossing a multiple of 100 signs a checkpoint on the way.
    let batch: Vec<NewEntry> = (0..250)
        .map(|i| {
            NewEntry::new(
                "billing",
                "invoice.issued",
                format!(r#"{{"invoice":{i},"amount_cents":{}}}"#, 1000 + i),
            )
        })
        .collect();
    let out = ledger.append(&batch)?;
    println!(
        "appended {} entries from index {}",
        out.count, out.first_index
    );
    let cp = ledger.checkpoint()?.record;
    println!("checkpoint of {} entries:\n{}", cp.size, cp.note);

    // 5. An offline-verifiable proof for one entry (c2sp.org/tlog-proof@v1).
    let index = 42;
    let entry = ledger.entry(index)?;
    let proof = ProofFile {
        extra: Some(entry.entry.as_ref().canonical_bytes()),
        index,
        proof: ledger.inclusion_proof(index, cp.size)?,
        note: cp.note.clone(),
    };
    let verifier = signer.verifier();
    let (checked, _) = ProofFile::parse(&proof.to_text())?.verify(&[&*verifier])?;
    println!(
        "proof of entry {} verifies: {}",
        checked.index, checked.detail
    );

    // 6. Full verification: every row, the chain, the tiles, every checkpoint signature.
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
        "verify: valid={} entries={} checkpoints={} ({:.1} ms)",
        report.valid, report.entries_checked, report.checkpoints_checked, report.elapsed_ms
    );
    assert!(report.valid);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
