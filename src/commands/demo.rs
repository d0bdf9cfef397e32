//! `cortex demo`: the whole flow on a fresh ledger, so a new user sees every part work.

use super::ledger::{open_ledger, proof_text};
use crate::config::{self, Settings};
use crate::output::num;
use clap::Args;
use cortex_core::ledger::export::{ExportFormat, verify_export, write_export};
use cortex_core::{Error, NewEntry, Result, Signer, Verifier, VerifyOptions, verify_store};
use cortex_ed25519::Ed25519Signer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for the demo ledger (default: a new directory under the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How many entries to append.
    #[arg(long, default_value_t = 10_000)]
    entries: u64,
}

fn facts(from: u64, n: u64) -> Vec<NewEntry> {
    const KINDS: [&str; 4] = ["decision", "knowledge", "bug", "preference"];
    (from..from + n)
        .map(|i| {
            NewEntry::new(
                format!("project-{}", i % 7),
                "fact.store",
                format!(
                    r#"{{"fact_id":{i},"fact_type":"{}","content":"agent observation number {i}","confidence":0.9}}"#,
                    KINDS[(i % 4) as usize]
                ),
            )
        })
        .collect()
}

pub fn run(s: &Settings, a: DemoArgs) -> Result<u8> {
    if a.entries == 0 {
        return Err(Error::invalid("--entries must be at least 1"));
    }
    let dir = match a.dir {
        Some(d) => d,
        None => {
            let mut b = [0u8; 4];
            getrandom::fill(&mut b).map_err(|e| Error::backend(e.to_string()))?;
            std::env::temp_dir().join(format!("cortex-demo-{}", hex::encode(b)))
        }
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::config(format!("cannot create {}", dir.display())).with_source(e))?;
    let db = dir.join("cortex.db");
    if db.exists() {
        return Err(Error::invalid(format!(
            "{} already exists; pick an empty --dir",
            db.display()
        )));
    }
    let settings = Settings {
        db: db.display().to_string(),
        hasher: s.hasher,
        key: dir.join("ledger.skey"),
        key_explicit: false,
        json: false,
    };
    let hasher = settings
        .hasher
        .unwrap_or(cortex_core::HashAlgorithm::Sha256);
    let signer = Ed25519Signer::generate(&config::default_origin(hasher)?)?;
    let vkey_path = signer.write_files(&settings.key, false)?;
    let mut ledger = open_ledger(&settings, 1000)?;
    ledger.add_signer(Arc::new(Ed25519Signer::from_skey(&signer.to_skey())?))?;
    println!(
        "✓ Created ledger {} ({} leaves, origin {})",
        db.display(),
        hasher.name(),
        signer.key_name()
    );

    let t = Instant::now();
    let mut checkpoints = 0;
    let batch = a.entries.div_ceil(10).max(1);
    let mut done = 0;
    while done < a.entries {
        let n = batch.min(a.entries - done);
        checkpoints += ledger.append(&facts(done, n))?.checkpoint.is_some() as u64;
        done += n;
    }
    let final_cp = ledger.checkpoint()?;
    checkpoints += final_cp.created as u64;
    println!(
        "✓ Appended {} entries in {:.0} ms ({} entries/s); {} signed checkpoints",
        num(done),
        t.elapsed().as_secs_f64() * 1000.0,
        num(super::ledger::rate(done, t) as u64),
        checkpoints
    );

    let opts = VerifyOptions {
        verifiers: vec![signer.verifier()],
        record: true,
        ..Default::default()
    };
    let report = verify_store(&**ledger.store(), ledger.hasher(), ledger.origin(), &opts)?;
    if !report.valid {
        return Err(Error::integrity(format!(
            "fresh ledger failed verification: {:?}",
            report.violations
        )));
    }
    println!(
        "✓ Chain valid ({} transactions, {} checkpoints) in {:.1} ms",
        num(report.entries_checked),
        num(report.checkpoints_checked),
        report.elapsed_ms
    );

    let verifier = signer.verifier();
    let keys: [&dyn Verifier; 1] = [&*verifier];
    let index = done / 2;
    let (proof, size) = proof_text(&ledger, index)?;
    let proof_path = dir.join(format!("entry-{index}.tlog-proof"));
    std::fs::write(&proof_path, proof.to_text())?;
    let (entry, _) =
        cortex_core::ProofFile::parse(&std::fs::read_to_string(&proof_path)?)?.verify(&keys)?;
    println!(
        "✓ Inclusion proof of entry {} in checkpoint {} verified offline ({})",
        num(entry.index),
        num(size),
        proof_path.display()
    );

    let export_path = dir.join("export.json");
    let mut buf = Vec::new();
    write_export(&ledger, ExportFormat::Json, None, None, &mut buf, &|_| {})?;
    std::fs::write(&export_path, &buf)?;
    let ext = verify_export(&mut &buf[..], &keys, &|_| {})?;
    if !ext.valid {
        return Err(Error::integrity(format!(
            "fresh export failed verification: {:?}",
            ext.violations
        )));
    }
    println!(
        "✓ Export of {} entries verified offline ({})",
        num(ext.entries_checked),
        export_path.display()
    );

    let text = String::from_utf8(buf).map_err(|e| Error::backend(e.to_string()))?;
    // Alter one fact's text inside the export (quotes are escaped in the JSON string).
    let k = (done - 1).min(17);
    let tampered = text.replacen(
        &format!("agent observation number {k}\\\""),
        &format!("agent observation number {k}!\\\""),
        1,
    );
    let bad = verify_export(&mut tampered.as_bytes(), &keys, &|_| {})?;
    match bad.violations.first() {
        Some(v) if !bad.valid => println!(
            "✓ Tampered export rejected: {}{}",
            v.kind.name(),
            v.index
                .map(|i| format!(" at index {i}"))
                .unwrap_or_default()
        ),
        _ => return Err(Error::integrity("a tampered export was not detected")),
    }
    println!("\nTry it yourself:");
    println!("  cortex --db {} ledger status", db.display());
    println!(
        "  cortex --db {} --key {} ledger verify",
        db.display(),
        settings.key.display()
    );
    println!(
        "  cortex ledger verify-external {} --vkey {}",
        export_path.display(),
        vkey_path.display()
    );
    Ok(0)
}
