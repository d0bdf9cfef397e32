//! A ledger that someone other than its operator can check: PostgreSQL storage, BLAKE3 leaves,
//! every checkpoint signed by the ledger's Ed25519 note key *and* an SSH key, and anchored at a
//! C2SP tlog-witness, which cosigns each checkpoint only if it extends the last one it saw. A
//! policy then says what a valid checkpoint needs (both signatures, the witness's receipt), and
//! `verify` checks every checkpoint against it, offline.
//!
//! Run: `cargo run --release --example postgres_ssh_witness [POSTGRES_URL]`
//!
//! The URL defaults to `$CORTEX_POSTGRES_URL`, then `$CORTEX_TEST_POSTGRES_URL`, then
//! `postgres://postgres@127.0.0.1:5432/postgres`. The example works in a schema of its own
//! (dropped at the end) unless the URL names one. The SSH key and the witness's state go to a
//! temporary directory. The witness runs in this process on 127.0.0.1 so the example is
//! self-contained; in a deployment it is another party's server (`cortex witness serve`, or any
//! tlog-witness), and only its URL and verifier key appear here.

use cortex_core::ledger::anchoring::anchor_pending;
use cortex_core::ledger::checkpoint::BLAKE3_ORIGIN_SUFFIX;
use cortex_core::ledger::policy::Policy;
use cortex_core::{
    Anchor, HashAlgorithm, Ledger, LedgerOptions, NewEntry, Signer, Verifier, VerifyOptions,
    verify_store,
};
use cortex_ed25519::{Ed25519Signer, Ed25519Verifier};
use cortex_postgres::{PostgresConfig, PostgresStore};
use cortex_ssh::{SshKeyType, SshSigner, SshVerifier};
use cortex_witness::{KnownLogs, WitnessAnchor, WitnessServer, WitnessSigner, WitnessState};
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CORTEX_POSTGRES_URL").ok())
        .or_else(|| std::env::var("CORTEX_TEST_POSTGRES_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut config = PostgresConfig::from_url(&url)?;
    let own_schema = config.schema.is_none();
    if own_schema {
        config.schema = Some(format!("cortex_example_witness_{}", std::process::id()));
    }
    println!(
        "database: {} (schema {})",
        cortex_postgres::redact(&url),
        config.schema.as_deref().unwrap_or("?")
    );
    let dir = tempfile::tempdir()?;
    // Anchors talk HTTP, so they are async; core brings no runtime, the application does.
    let runtime = tokio::runtime::Runtime::new()?;

    // 1. Storage and the ledger: BLAKE3 leaves; checkpoints only when asked for.
    let store = Arc::new(PostgresStore::open(config)?);
    let mut ledger = Ledger::open(
        store.clone(),
        LedgerOptions {
            hasher: Some(HashAlgorithm::Blake3),
            checkpoint_every: 0,
        },
    )?;

    // 2. Two signers. The Ed25519 note key names the log (its origin); the SSH key adds an
    //    SSHSIG signature stored beside each checkpoint, which `ssh-keygen -Y verify` accepts.
    //    A deployment loads both from files (`cortex keys generate --type ed25519|ssh`).
    let note_key = Arc::new(Ed25519Signer::generate(&format!(
        "example.com/audited{BLAKE3_ORIGIN_SUFFIX}"
    ))?);
    let ssh_path = dir.path().join("id_ed25519");
    let ssh_key = Arc::new(SshSigner::generate(
        &ssh_path,
        SshKeyType::Ed25519,
        "audit signer",
        false,
    )?);
    ledger.add_signer(note_key.clone())?;
    ledger.add_signer(ssh_key.clone())?;
    let ledger = Arc::new(ledger);
    println!("log key:  {}", note_key.to_vkey());
    println!(
        "ssh key:  {} ({})",
        ssh_key.key_name(),
        cortex_ssh::public_key_path(&ssh_path).display()
    );

    // 3. The witness. It must know the log's verifier key; it answers with a cosignature.
    let witness_key = WitnessSigner::generate("witness.example.org")?;
    let witness_vkey = witness_key.to_vkey();
    let logs = KnownLogs::parse(&format!("{}\n", note_key.to_vkey()))?;
    let state = WitnessState::open(&dir.path().join("witness.db"))?;
    let witness = Arc::new(WitnessServer::new(witness_key, logs, state));
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let witness_url = format!("http://{}", listener.local_addr()?);
    runtime.spawn(cortex_witness::server::serve(
        witness,
        listener,
        std::future::pending(),
    ));
    println!("witness:  {witness_url} ({witness_vkey})");
    let anchors: Vec<Arc<dyn Anchor>> =
        vec![Arc::new(WitnessAnchor::new(&witness_url, &witness_vkey)?)];

    // 4. Appends, a checkpoint and an anchoring round, three times. `anchor_pending` submits the
    //    newest checkpoint with a consistency proof from the last one the witness cosigned,
    //    checks the cosignature and stores it beside the checkpoint. The `cortex` binary runs it
    //    on a background thread with retry and backoff, so a witness that is down never holds
    //    up appends.
    for round in 0..3u64 {
        let batch: Vec<NewEntry> = (round * 500..(round + 1) * 500)
            .map(|i| {
                NewEntry::new(
                    "billing",
                    "invoice.issued",
                    format!(r#"{{"invoice":{i},"amount_cents":{}}}"#, 1000 + i),
                )
            })
            .collect();
        ledger.append(&batch)?;
        let t = Instant::now();
        let cp = ledger.checkpoint()?.record;
        let signed_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let outcomes = runtime.block_on(anchor_pending(&ledger, &anchors, true))?;
        let anchored_ms = t.elapsed().as_secs_f64() * 1e3;
        for o in &outcomes {
            println!(
                "checkpoint {}: signed and stored in {signed_ms:.1} ms, {} {}: {} in {anchored_ms:.1} ms{}",
                cp.size,
                o.kind,
                o.target,
                o.result,
                o.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            );
            if o.result != "anchored" {
                return Err(format!("the witness did not cosign checkpoint {}", cp.size).into());
            }
        }
    }

    // 5. What is stored for the newest checkpoint: the signed note, the SSH signature beside
    //    it, and the witness's receipt (its cosignature/v1 line). An auditor can check the SSH
    //    signature with OpenSSH alone: the note's text (up to the blank line) is the message,
    //    `ssh-keygen -Y verify -f allowed_signers -I <id> -n cortex-checkpoint -s sig < text`.
    let latest = ledger
        .store()
        .latest_checkpoint()?
        .ok_or("no checkpoint was stored")?;
    println!("checkpoint note:\n{}", latest.note);
    for x in &latest.extra_signatures {
        println!(
            "{} signature by {}: {} lines ({})",
            x.scheme,
            x.key_name,
            x.signature.lines().count(),
            x.signature.lines().next().unwrap_or("")
        );
    }
    for r in &latest.receipts {
        println!("{} receipt from {}: {}", r.anchor, r.target, r.body.trim());
    }

    // 6. The policy an auditor holds: both keys must sign every checkpoint, and the witness's
    //    receipts are checked with its key. Keys are inline or paths (relative to `base`).
    let policy_text = format!(
        "signer ed25519 {}\nsigner ssh {}\nquorum 2\nanchor witness {witness_url} {witness_vkey}\n",
        note_key.to_vkey(),
        cortex_ssh::public_key_path(&ssh_path).display()
    );
    print!("policy:\n{policy_text}");
    let policy = Policy::parse(&policy_text, dir.path(), &resolve_key)?;

    // 7. Full verification against the policy: the chain, the tiles, each checkpoint's two
    //    signatures, and each witness receipt, re-checked offline with the witness's key.
    let report = verify_store(
        &**ledger.store(),
        ledger.hasher(),
        ledger.origin(),
        &VerifyOptions {
            policy: Some(Arc::new(policy)),
            anchors,
            record: true,
            ..Default::default()
        },
    )?;
    println!(
        "verify: valid={} entries={} checkpoints={} receipts verified offline={}",
        report.valid, report.entries_checked, report.checkpoints_checked, report.receipts_checked
    );
    for a in &report.anchors {
        println!(
            "anchor {} {}: {} at size {}, {} entries behind",
            a.kind,
            a.target,
            a.status,
            a.anchored_size.map_or("-".into(), |s| s.to_string()),
            a.lag_entries
        );
    }
    if !report.valid {
        return Err(format!("the ledger does not verify: {:?}", report.violations).into());
    }

    if own_schema {
        store.drop_schema()?;
        println!("dropped the example's schema");
    }
    Ok(())
}

/// Turns a policy's key text into a verifier, per signer kind. The `cortex` binary does the
/// same for every signer plugin compiled in.
fn resolve_key(kind: &str, key: &str) -> cortex_core::Result<Box<dyn Verifier>> {
    match kind {
        "ed25519" => Ok(Box::new(Ed25519Verifier::from_vkey(key)?)),
        "ssh" => Ok(Box::new(SshVerifier::from_public_key(key)?)),
        other => Err(cortex_core::Error::config(format!(
            "this example knows ed25519 and ssh keys, not {other:?}"
        ))),
    }
}
